package raftnode

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ReadBarrier returns once this node's store reflects every write that was
// acknowledged before the call: it learns a read index from the leader
// (which confirms its leadership with a quorum, without writing to the log)
// and waits until the local FSM has applied that index. Reads made after it
// returns are linearizable.
func (n *Node) ReadBarrier(ctx context.Context) error {
	idx, err := n.readIndex(ctx)
	if err != nil {
		return err
	}
	return n.waitApplied(ctx, idx)
}

func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	var idx uint64
	err := n.onLeader(ctx,
		func() (err error) {
			idx, err = n.leaderReadIndex(ctx)
			return err
		},
		func(addr string) (err error) {
			idx, err = n.forwardReadIndex(ctx, addr)
			return err
		})
	return idx, err
}

// leaderReadIndex captures the leader's last log index and then confirms
// leadership with a quorum. Every entry committed before the capture is at
// or below that index (a leader holds all committed entries), and the
// confirmation happens after the capture, so a deposed leader cannot answer.
// Using the last index rather than the commit index also covers a leader
// fresh in its term whose commit index still lags.
func (n *Node) leaderReadIndex(ctx context.Context) (uint64, error) {
	idx := n.raft.LastIndex()
	if err := n.verify.verify(ctx, func() error { return n.raft.VerifyLeader().Error() }); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, fmt.Errorf("%w: %v", errRetry, err)
		}
		return 0, err
	}
	return idx, nil
}

func (n *Node) forwardReadIndex(ctx context.Context, addr string) (uint64, error) {
	ans, err := n.call(ctx, addr, http.MethodPost, "/internal/v1/read-index", nil)
	if err := classify(addr, ans, err, effectFree); err != nil {
		return 0, err
	}
	idx, err := strconv.ParseUint(strings.TrimSpace(string(ans.body)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: read index from %s: %v", errRetry, addr, err)
	}
	return idx, nil
}

func (n *Node) handleReadIndex(w http.ResponseWriter, r *http.Request) {
	if !n.IsLeader() {
		notLeader(w)
		return
	}
	idx, err := n.leaderReadIndex(r.Context())
	if errors.Is(err, errRetry) {
		notLeader(w)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte(strconv.FormatUint(idx, 10)))
}

// waitApplied waits until the FSM has applied everything up to idx. Raft
// does not hand no-op and barrier entries to the FSM, so the FSM's own index
// can stop short of idx; once Raft has dispatched idx, entries above the
// FSM's index that the FSM never sees are read from the log and skipped.
func (n *Node) waitApplied(ctx context.Context, idx uint64) error {
	var poll *time.Ticker
	for {
		advanced := n.fsm.Advanced()
		applied := n.fsm.AppliedIndex()
		if applied >= idx {
			return nil
		}
		if n.raft.AppliedIndex() >= idx && onlyNonFSMEntries(n.logs, applied+1, idx) {
			return nil
		}
		if poll == nil {
			// Raft signals nothing when it skips a no-op, so poll as well.
			poll = time.NewTicker(2 * time.Millisecond)
			defer poll.Stop()
		}
		select {
		case <-advanced:
		case <-poll.C:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting to apply index %d (at %d): %v", ErrNoLeader, idx, applied, ctx.Err())
		case <-n.closed:
			return ErrShutdown
		}
	}
}

// onlyNonFSMEntries reports whether every entry of logs in [from, to] is
// one the FSM never sees (no command, no configuration change); a gap
// longer than 65 537 entries or an entry that cannot be read counts as no.
func onlyNonFSMEntries(logs raft.LogStore, from, to uint64) bool {
	// Normally one entry (a new leader's no-op); the bound only keeps a
	// pathological gap from turning one read into a long log scan.
	if to-from > 1<<16 {
		return false
	}
	var l raft.Log
	for i := from; i <= to; i++ {
		if err := logs.GetLog(i, &l); err != nil {
			return false
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return false
		}
	}
	return true
}

// verifier coalesces concurrent leadership confirmations: callers that
// arrive while no round has started share the next round; a round that has
// started takes no more callers (they would not be covered by it).
type verifier struct {
	mu      sync.Mutex
	pending *verifyRound
}

type verifyRound struct {
	done chan struct{}
	err  error
}

// verify returns the outcome of a confirm round (confirm is
// raft.VerifyLeader) that started after the call, or ctx's error if ctx
// ends first: a round raft never answers (seen once while a server was
// closing, its maintenance loop waiting in a confirm for good) must not
// hold its callers.
func (v *verifier) verify(ctx context.Context, confirm func() error) error {
	v.mu.Lock()
	rd := v.pending
	if rd == nil {
		rd = &verifyRound{done: make(chan struct{})}
		v.pending = rd
		go v.run(confirm, rd)
	}
	v.mu.Unlock()
	select {
	case <-rd.done:
		return rd.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (v *verifier) run(confirm func() error, rd *verifyRound) {
	v.mu.Lock()
	v.pending = nil
	v.mu.Unlock()
	rd.err = confirm()
	close(rd.done)
}
