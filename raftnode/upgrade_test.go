package raftnode_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/store"
)

// waitClusterLevel waits until the leader reports the cluster's command
// level as want.
func waitClusterLevel(t *testing.T, c *peerCluster, want fsm.Type) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := c.leader().node.LocalStatus()
		if fsm.Type(st.ClusterLevel) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader's cluster level is %d, want %d", st.ClusterLevel, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestMixedVersions_ANewCommandWaitsUntilEveryVoterKnowsIt(t *testing.T) {
	// node3 stands in for a build from before AdvanceCursors existed.
	old := fsm.TypeAdvanceCursors - 1
	upgraded := false
	c := &peerCluster{t: t, configure: func(id string, cfg *raftnode.Config) {
		if id == "node3" && !upgraded {
			cfg.CommandLevel = old
		}
	}}
	c.startAll(3, false)
	waitClusterLevel(t, c, old)

	// The cluster keeps running: older commands go through every node.
	for _, n := range c.nodes {
		c.propose(n, &fsm.CreateQueue{Project: "p", Queue: "q-" + n.id})
	}
	before := c.state()
	advance := &fsm.AdvanceCursors{Advances: []store.CursorAdvance{{Project: "p", Queue: "q-node1", ID: "s", Seq: 1}}}
	for _, n := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := n.node.Propose(ctx, advance)
		cancel()
		if !errors.Is(err, raftnode.ErrUpgradeInProgress) {
			t.Fatalf("a command node3 does not know, proposed through %s: %v, want ErrUpgradeInProgress", n.id, err)
		}
	}
	c.unchanged(before)

	// node3 is upgraded (restarted with this build's level): the command goes through.
	upgraded = true
	c.restart(c.nodes[2])
	waitClusterLevel(t, c, fsm.MaxType)
	c.propose(c.nodes[2], advance)
	c.propose(c.nodes[0], &fsm.CreateQueue{Project: "p", Queue: "after"})
}

func TestGate_ATypeTheLogHoldsIsAdmittedByANewLeaderWithAVoterDown(t *testing.T) {
	c := &peerCluster{t: t}
	c.startAll(3, false)
	waitClusterLevel(t, c, fsm.MaxType)
	leader := c.leader()
	c.propose(leader, &fsm.HoldTrust{Project: "p", Queue: "q", ID: "s", Subscriber: "trust+http://h/", TrustID: "t"})

	// A follower goes down and leadership moves to the other one, which
	// has never heard the stopped node's level.
	var down, next *peerNode
	for _, n := range c.nodes {
		switch {
		case n == leader:
		case down == nil:
			down = n
		default:
			next = n
		}
	}
	c.stop(down)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := leader.node.TransferLeadership(ctx, next.id); err != nil {
		t.Fatalf("transfer leadership to %s: %v", next.id, err)
	}
	if got := c.leader(); got != next {
		t.Fatalf("leader %s, want %s", got.id, next.id)
	}
	// The gated types the log holds (and those below them) go through.
	c.propose(next, &fsm.ForgetTrusts{TrustIDs: []string{"u"}})
	c.propose(leader, &fsm.HoldTrust{Project: "p", Queue: "q", ID: "s", Subscriber: "trust+http://h/", TrustID: "v"})
}

func TestMixedVersions_SubscriptionsPast2262WaitForBuildsThatSaturateExpiries(t *testing.T) {
	// node3 stands in for a build from before expiries saturated: it knows
	// every ungated type and would wrap Heat's TTL into the past.
	upgraded := false
	c := &peerCluster{t: t, configure: func(id string, cfg *raftnode.Config) {
		if id == "node3" && !upgraded {
			cfg.CommandLevel = fsm.UngatedMax
		}
	}}
	c.startAll(3, false)
	waitClusterLevel(t, c, fsm.UngatedMax)

	sub := fsm.Subscribe{Project: "p", Queue: "q", ID: "s1", Subscriber: "http://h/x", TTL: fsm.MaxShortTTL, Options: []byte(`{}`)}
	c.propose(c.nodes[0], &sub) // a short TTL travels as before
	before := c.state()
	long := sub
	long.ID, long.Subscriber, long.TTL = "s2", "http://h/y", 220367260800
	ttl := long.TTL
	for _, cmd := range []fsm.Command{
		&fsm.SubscribeLong{Subscribe: long},
		&fsm.UpdateSubscriptionLong{UpdateSubscription: fsm.UpdateSubscription{Project: "p", Queue: "q", ID: "s1", TTL: &ttl}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.nodes[1].node.Propose(ctx, cmd)
		cancel()
		if !errors.Is(err, raftnode.ErrUpgradeInProgress) {
			t.Fatalf("%T proposed with a voter at level %d: %v, want ErrUpgradeInProgress", cmd, fsm.UngatedMax, err)
		}
	}
	c.unchanged(before)

	upgraded = true
	c.restart(c.nodes[2])
	waitClusterLevel(t, c, fsm.MaxType)
	c.propose(c.nodes[2], &fsm.SubscribeLong{Subscribe: long})
}
