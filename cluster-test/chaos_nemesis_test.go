package clustertest

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"
)

// Fault kinds.
const (
	faultKillLeader      = "kill-leader"      // SIGKILL the leader, restart it with its data
	faultKillFollower    = "kill-follower"    // SIGKILL a follower, restart it with its data
	faultPauseLeader     = "pause-leader"     // SIGSTOP the leader past the election timeout, then SIGCONT
	faultPauseFollower   = "pause-follower"   // the same for a follower
	faultIsolateLeader   = "partition-leader" // the leader alone in a minority, both directions cut
	faultPartitionRandom = "partition-random" // a random minority cut off from the majority
	faultLeaderDeaf      = "asym-leader-deaf" // nothing reaches the leader; it still sends
	faultLeaderMute      = "asym-leader-mute" // nothing from the leader arrives; it still hears
	faultSlowNode        = "slow-links"       // one node's links delayed both ways
	faultReplaceNode     = "replace-node"     // remove a node, wipe it, join a new empty node
	faultRollingRestart  = "rolling-restart"  // SIGTERM and restart every node in turn
)

// allFaults is every kind, in the order a long run first tries them.
var allFaults = []string{
	faultKillLeader, faultPauseLeader, faultIsolateLeader, faultLeaderDeaf, faultKillFollower,
	faultPauseFollower, faultPartitionRandom, faultLeaderMute, faultSlowNode, faultReplaceNode, faultRollingRestart,
}

// shortRunFaults is the fixed opening of a short run: a leader kill, a
// pause and a partition first, then asymmetric links and a replacement
// while time remains.
var shortRunFaults = []string{faultKillLeader, faultPauseLeader, faultIsolateLeader, faultLeaderDeaf, faultReplaceNode}

// shortRunMandatory is how many of shortRunFaults a short run injects even
// when it runs out of time (a leader kill, a pause and a partition).
const shortRunMandatory = 3

// nemesis injects faults into a chaos cluster.
type nemesis struct {
	cc  *chaosCluster
	rng *rand.Rand
	rec *opRecorder
	// recoveryTimeout bounds the wait for a healthy cluster after a fault
	// is healed; only a cluster that never recovers is an anomaly.
	recoveryTimeout time.Duration
	logf            func(format string, args ...any)
}

// between returns a random duration in [lo, hi].
func (n *nemesis) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(n.rng.Int64N(int64(hi-lo)+1))
}

// pick returns a random element of slots.
func (n *nemesis) pick(slots []*chaosSlot) *chaosSlot { return slots[n.rng.IntN(len(slots))] }

// hold waits d, the time a fault stays in place.
func (n *nemesis) hold(d time.Duration) { time.Sleep(d) }

// inject applies one fault, holds it, heals it and waits for the cluster
// to recover. Failures of the harness itself (a process that cannot be
// restarted) are returned; a cluster that does not recover is recorded in
// the fault (Recovered = 0) for the checker.
func (n *nemesis) inject(kind string) (faultRecord, error) {
	cc := n.cc
	f := faultRecord{Kind: kind}
	leader, err := cc.leader(60 * time.Second)
	if err != nil {
		f.Start, f.Heal = n.rec.now(), n.rec.now()
		f.Note = "no leader before the fault: " + err.Error()
		return f, nil
	}
	followers := cc.others(leader)
	var heal func() error
	switch kind {
	case faultKillLeader, faultKillFollower:
		victim := leader
		if kind == faultKillFollower {
			victim = n.pick(followers)
		}
		f.Nodes, f.LeaderLoss = []string{victim.proc.ID}, victim == leader
		down := n.between(2*time.Second, 5*time.Second)
		f.Start = n.rec.now()
		if err := cc.kill(victim); err != nil {
			return f, err
		}
		f.Note = fmt.Sprintf("down %s", down.Round(time.Millisecond))
		n.hold(down)
		heal = func() error { return cc.restart(victim) }
	case faultPauseLeader, faultPauseFollower:
		victim := leader
		if kind == faultPauseFollower {
			victim = n.pick(followers)
		}
		f.Nodes, f.LeaderLoss = []string{victim.proc.ID}, victim == leader
		d := n.between(3*time.Second, 6*time.Second)
		f.Start = n.rec.now()
		if err := victim.proc.send(syscall.SIGSTOP); err != nil {
			return f, err
		}
		f.Note = fmt.Sprintf("stopped %s", d.Round(time.Millisecond))
		n.hold(d)
		heal = func() error { return victim.proc.send(syscall.SIGCONT) }
	case faultIsolateLeader, faultPartitionRandom:
		minority := []*chaosSlot{leader}
		if kind == faultPartitionRandom {
			perm := n.rng.Perm(len(cc.slots))
			minority = nil
			for _, i := range perm[:(len(cc.slots)-1)/2] {
				minority = append(minority, cc.slots[i])
			}
		}
		var majority []*chaosSlot
		for _, s := range cc.slots {
			if !hasSlot(minority, s) {
				majority = append(majority, s)
			}
		}
		f.Nodes, f.LeaderLoss = slotNames(minority), hasSlot(minority, leader)
		d := n.between(4*time.Second, 8*time.Second)
		f.Start = n.rec.now()
		// In a deployment of several pools the minority loses the other
		// pools' nodes too (cc.outside): a node cut off from the network.
		cc.net.partition(slotIndexes(minority), append(slotIndexes(majority), cc.outside...))
		f.Note = fmt.Sprintf("%v | %v for %s", slotNames(minority), slotNames(majority), d.Round(time.Millisecond))
		if len(cc.outside) > 0 {
			f.Note += " (and cut off from the other pools)"
		}
		n.hold(d)
		heal = func() error { cc.net.heal(); return nil }
	case faultLeaderDeaf, faultLeaderMute:
		f.Nodes, f.LeaderLoss = []string{leader.proc.ID}, true
		d := n.between(4*time.Second, 8*time.Second)
		f.Start = n.rec.now()
		if kind == faultLeaderDeaf {
			cc.net.blockOneWay(slotIndexes(followers), []int{leader.idx})
		} else {
			cc.net.blockOneWay([]int{leader.idx}, slotIndexes(followers))
		}
		f.Note = fmt.Sprintf("%s for %s", cc.net.describe(), d.Round(time.Millisecond))
		n.hold(d)
		heal = func() error { cc.net.heal(); return nil }
	case faultSlowNode:
		victim := n.pick(cc.slots)
		f.Nodes = []string{victim.proc.ID}
		delay := n.between(50*time.Millisecond, 250*time.Millisecond)
		d := n.between(4*time.Second, 8*time.Second)
		f.Start = n.rec.now()
		cc.net.slow(victim.idx, append(slotIndexes(cc.others(victim)), cc.outside...), delay)
		f.Note = fmt.Sprintf("+%s each way for %s", delay.Round(time.Millisecond), d.Round(time.Millisecond))
		n.hold(d)
		heal = func() error { cc.net.heal(); return nil }
	case faultReplaceNode:
		victim := n.pick(followers)
		if n.rng.IntN(4) == 0 {
			victim = leader
		}
		f.Nodes, f.LeaderLoss = []string{victim.proc.ID}, victim == leader
		f.Start = n.rec.now()
		note, err := cc.replace(victim)
		if err != nil {
			return f, fmt.Errorf("replace %s: %w", victim.proc.ID, err)
		}
		f.Note = note
		heal = func() error { return nil }
	case faultRollingRestart:
		order := append(append([]*chaosSlot(nil), followers...), leader)
		f.Nodes, f.LeaderLoss = slotNames(order), true
		f.Start = n.rec.now()
		for _, s := range order {
			if s == leader {
				f.LeaderDown = n.rec.now()
			}
			if err := cc.stop(s); err != nil {
				n.logf("chaos: rolling restart: %s did not stop cleanly: %v", s.proc.ID, err)
			}
			if err := cc.restart(s); err != nil {
				return f, fmt.Errorf("rolling restart of %s: %w", s.proc.ID, err)
			}
			if err := cc.waitHealthy(n.recoveryTimeout); err != nil {
				f.Note = fmt.Sprintf("after restarting %s: %v", s.proc.ID, err)
				f.Heal = n.rec.now()
				return f, nil
			}
		}
		f.Note = "SIGTERM + restart, followers first"
		heal = func() error { return nil }
	default:
		return f, fmt.Errorf("unknown fault %q", kind)
	}
	if err := heal(); err != nil {
		return f, fmt.Errorf("heal %s: %w", kind, err)
	}
	f.Heal = n.rec.now()
	if err := cc.waitHealthy(n.recoveryTimeout); err != nil {
		f.Note += "; " + err.Error()
		return f, nil
	}
	f.Recovered = n.rec.now()
	return f, nil
}

func hasSlot(slots []*chaosSlot, s *chaosSlot) bool {
	for _, o := range slots {
		if o == s {
			return true
		}
	}
	return false
}

// schedule returns the fault kinds to inject, in order: the fixed opening,
// then every kind once in a random order, then random kinds.
func (n *nemesis) schedule(opening []string, count int) []string {
	out := append([]string(nil), opening...)
	rest := append([]string(nil), allFaults...)
	n.rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	out = append(out, rest...)
	for len(out) < count {
		out = append(out, allFaults[n.rng.IntN(len(allFaults))])
	}
	return out
}
