package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zaqar-raft/zaqar/fsm"
)

// ErrUpgradeInProgress means an entry holds a command type that not every
// voter has reported knowing (a rolling upgrade is under way): it was not
// proposed, so it had no effect.
var ErrUpgradeInProgress = errors.New("raftnode: not every voter runs a version that knows this command yet")

// outcomeUpgrade is the X-Raftnode-Outcome of a forwarded entry the leader
// refused with ErrUpgradeInProgress.
const outcomeUpgrade = "upgrade-in-progress"

// levelRefreshInterval bounds how often the leader asks the members for
// their command levels when a command waits on the gate; levelPollInterval
// is how often it asks anyway while it leads.
const (
	levelRefreshInterval = time.Second
	levelPollInterval    = 5 * time.Second
)

// commandGate is the leader's record of the command level (the highest
// fsm.Type) each member reported. A build applies every type up to its
// level; an entry with a type above fsm.UngatedMax is proposed only when
// every voter's level includes it, so no node is ever handed an entry it
// would stop on. Members that never reported count as fsm.UngatedMax,
// which every build that can join knows.
type commandGate struct {
	mu        sync.Mutex
	levels    map[string]fsm.Type
	refreshed time.Time
}

// level is the command level this node reports.
func (n *Node) level() fsm.Type {
	if n.cfg.CommandLevel != 0 {
		return n.cfg.CommandLevel
	}
	return fsm.MaxType
}

// admitEntry checks an entry against the gate before the leader proposes it.
func (n *Node) admitEntry(ctx context.Context, entry []byte) error {
	typ, err := fsm.EntryMaxType(entry)
	if err != nil {
		return err
	}
	voters := n.voterIDs()
	if missing := n.gate.behind(voters, typ); len(missing) == 0 {
		return nil
	}
	if n.holdsType(ctx, typ) {
		return nil
	}
	n.refreshLevels(ctx)
	if missing := n.gate.behind(voters, typ); len(missing) > 0 {
		return fmt.Errorf("%w: command type %d needs every voter at level %d or later; behind: %s", ErrUpgradeInProgress, typ, typ, strings.Join(missing, ", "))
	}
	return nil
}

// holdsType reports whether the log has committed a command of type typ
// or higher: every voter knew it then, and a node that did not could not
// have applied the log since, so the type is admitted without asking the
// voters. That is what lets a new leader that cannot reach a voter (which
// never reported to it) go on proposing gated types the cluster already
// uses. A new leader may not have applied what it inherited yet: it
// catches up (the read barrier, no log write) before it says no.
func (n *Node) holdsType(ctx context.Context, typ fsm.Type) bool {
	if typ <= n.committedLevel() {
		return true
	}
	idx, err := n.leaderReadIndex(ctx)
	if err != nil || n.waitApplied(ctx, idx) != nil {
		return false
	}
	return typ <= n.committedLevel()
}

// committedLevel is the highest gated type the log has committed, as this
// node's store has applied it (0 if none, or if the store cannot say).
func (n *Node) committedLevel() fsm.Type {
	v := n.store.View()
	defer v.Close()
	lv, err := v.CommandLevel()
	if err != nil {
		return 0
	}
	return fsm.Type(lv)
}

// behind lists the voters not known to apply typ.
func (g *commandGate) behind(voters []string, typ fsm.Type) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, id := range voters {
		lv, ok := g.levels[id]
		if !ok {
			lv = fsm.UngatedMax
		}
		if lv < typ {
			out = append(out, fmt.Sprintf("%s (level %d)", id, lv))
		}
	}
	sort.Strings(out)
	return out
}

// clusterLevel is the lowest command level among the voters as this node
// last learned them (members that never reported count as fsm.UngatedMax):
// every type up to it may be proposed.
func (g *commandGate) clusterLevel(voters []string) fsm.Type {
	g.mu.Lock()
	defer g.mu.Unlock()
	level := fsm.Type(255)
	for _, id := range voters {
		lv, ok := g.levels[id]
		if !ok {
			lv = fsm.UngatedMax
		}
		level = min(level, lv)
	}
	return level
}

// pollLevels keeps the leader's record of the members' levels fresh, so a
// finished upgrade shows in the status and the first new command does not
// wait for a refresh.
func (n *Node) pollLevels() {
	t := time.NewTicker(levelPollInterval)
	defer t.Stop()
	for {
		if n.IsLeader() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			n.refreshLevels(ctx)
			cancel()
		}
		select {
		case <-n.closed:
			return
		case <-t.C:
		}
	}
}

// refreshLevels asks every member for its level, at most once per
// levelRefreshInterval. A member that does not answer keeps what it last
// reported.
func (n *Node) refreshLevels(ctx context.Context) {
	n.gate.mu.Lock()
	if time.Since(n.gate.refreshed) < levelRefreshInterval {
		n.gate.mu.Unlock()
		return
	}
	n.gate.refreshed = time.Now()
	n.gate.mu.Unlock()
	statuses := n.ClusterStatus(ctx)
	n.gate.mu.Lock()
	defer n.gate.mu.Unlock()
	if n.gate.levels == nil {
		n.gate.levels = map[string]fsm.Type{}
	}
	for _, st := range statuses {
		switch {
		case st.Error != "":
		case st.CommandLevel == 0:
			// Builds from before the gate report no level; they know the
			// ungated types.
			n.gate.levels[st.ID] = fsm.UngatedMax
		default:
			n.gate.levels[st.ID] = fsm.Type(st.CommandLevel)
		}
	}
}

func (n *Node) voterIDs() []string {
	var out []string
	for _, m := range n.Members() {
		if m.Suffrage == "Voter" {
			out = append(out, m.ID)
		}
	}
	return out
}
