package raftnode_test

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/raftnode"
)

func memberIDs(id raftnode.GroupIdentity) []string {
	var out []string
	for _, m := range id.Members {
		out = append(out, m.ID)
	}
	sort.Strings(out)
	return out
}

func TestProbeGroup_NodesOfTwoGroupsOfOneCATellEachOtherTheirMembersAndNothingElse(t *testing.T) {
	c := startPeerCluster(t, 2, true) // certificates node1..node4 from one CA
	leader := c.leader()
	// node4 is a group of its own: another pool of the same deployment.
	ln := listenLoopback(t)
	other := c.start("node4", ln, []raftnode.Peer{{ID: "node4", Address: ln.Addr().String()}}, nil, c.peerTLS("node4"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	for !other.node.IsLeader() {
		if ctx.Err() != nil {
			t.Fatal("the one-node group did not elect itself")
		}
		time.Sleep(10 * time.Millisecond)
	}
	id, err := other.node.ProbeGroup(ctx, []string{"127.0.0.1:1", leader.addr})
	if err != nil {
		t.Fatalf("node4 probing the first group: %v", err)
	}
	if got := memberIDs(id); len(got) != 2 || got[0] != "node1" || got[1] != "node2" || id.Node != leader.id {
		t.Fatalf("node4 sees %v answered by %s, want node1 and node2 answered by %s", got, id.Node, leader.id)
	}
	id, err = leader.node.ProbeGroup(ctx, []string{other.addr})
	if got := memberIDs(id); err != nil || len(got) != 1 || got[0] != "node4" {
		t.Fatalf("the first group probing node4: %v, %v", got, err)
	}
	if _, err := leader.node.ProbeGroup(ctx, []string{"127.0.0.1:1"}); !errors.Is(err, raftnode.ErrGroupUnreachable) {
		t.Fatalf("probing an address nobody listens on: %v, want ErrGroupUnreachable", err)
	}

	// The pool routes are all a non-member may use.
	answer, _ := send(t, dialAs(t, c, "node4", leader.addr), 'F', internalRequest("GET", "/internal/v1/status", "node4", nil))
	if !bytes.HasPrefix(answer, []byte("HTTP/1.1 403")) || !bytes.Contains(answer, []byte("not a member")) {
		t.Errorf("status as node4: %q, want 403", answer)
	}
	answer, _ = send(t, dialAs(t, c, "node4", leader.addr), 'F', internalRequest("GET", "/internal/v1/pool/identity", "node3", nil))
	if !bytes.HasPrefix(answer, []byte("HTTP/1.1 403")) {
		t.Errorf("identity as node3 with node4's certificate: %q, want 403", answer)
	}
}
