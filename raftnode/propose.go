package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/fsm"
)

// Propose commits cmds as one log entry and returns their results. On a
// follower the entry is forwarded to the leader over the internal channel.
// A nil error means the entry is committed on a quorum and applied.
func (n *Node) Propose(ctx context.Context, cmds ...fsm.Command) (*fsm.EntryResult, error) {
	return n.proposeEntry(ctx, fsm.EncodeEntry(0, cmds...))
}

func (n *Node) proposeEntry(ctx context.Context, entry []byte) (*fsm.EntryResult, error) {
	var res *fsm.EntryResult
	err := n.onLeader(ctx,
		func() (err error) {
			res, err = n.applyLocal(ctx, entry)
			return err
		},
		func(addr string) (err error) {
			res, err = n.forwardApply(ctx, addr, entry)
			return err
		})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// applyLocal stamps the entry with this leader's clock and commits it.
func (n *Node) applyLocal(ctx context.Context, entry []byte) (*fsm.EntryResult, error) {
	if err := n.admitEntry(ctx, entry); err != nil {
		return nil, err
	}
	stamped := append([]byte(nil), entry...)
	if err := fsm.StampEntry(stamped, time.Now().UnixNano()); err != nil {
		return nil, err
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	start := time.Now()
	f := n.raft.Apply(stamped, timeout)
	done := make(chan error, 1)
	go func() {
		err := f.Error()
		if obs := n.cfg.ObserveCommit; obs != nil {
			obs(time.Since(start), err == nil)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return nil, applyError(err)
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrUnknownOutcome, ctx.Err())
	}
	res, ok := f.Response().(*fsm.EntryResult)
	if !ok || res == nil {
		return nil, fmt.Errorf("%w: entry applied without a result", ErrUnknownOutcome)
	}
	return res, nil
}

// applyError classifies a failed raft.Apply: errRetry for the errors
// hashicorp/raft returns before it appends the entry, ErrUnknownOutcome for
// everything else (including shutdown, which Raft reports to every pending
// future, entries already appended and possibly committed among them).
func applyError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %v", errRetry, err)
	default:
		return fmt.Errorf("%w: %v", ErrUnknownOutcome, err)
	}
}

// forwardApply sends the entry to the leader at addr.
func (n *Node) forwardApply(ctx context.Context, addr string, entry []byte) (*fsm.EntryResult, error) {
	ans, err := n.call(ctx, addr, http.MethodPost, "/internal/v1/apply", entry)
	if err := classify(addr, ans, err, mayAffect); err != nil {
		if errors.Is(err, errBadRequest) {
			return nil, fmt.Errorf("raftnode: leader rejected entry: %w", err)
		}
		return nil, err
	}
	res, err := fsm.DecodeEntryResult(ans.body)
	if err != nil {
		// The leader applied the entry; only its answer is unreadable.
		return nil, fmt.Errorf("%w: result from %s: %v", ErrUnknownOutcome, addr, err)
	}
	return res, nil
}

// handleApply is the leader side of forwarding.
func (n *Node) handleApply(w http.ResponseWriter, r *http.Request) {
	entry, err := io.ReadAll(io.LimitReader(r.Body, maxPeerBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// Never put an entry in the log that the FSM would refuse.
	if _, _, err := fsm.DecodeEntry(entry); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !n.IsLeader() {
		notLeader(w)
		return
	}
	res, err := n.applyLocal(r.Context(), entry)
	if errors.Is(err, errRetry) {
		notLeader(w)
		return
	}
	if errors.Is(err, ErrUpgradeInProgress) {
		w.Header().Set(headerOutcome, outcomeUpgrade)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		n.log.Warn("forwarded entry failed", "request_id", r.Header.Get(HeaderRequestID), "from", r.Header.Get(headerNode), "err", err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(fsm.EncodeEntryResult(res))
}

func notLeader(w http.ResponseWriter) {
	w.Header().Set(headerOutcome, "not-leader")
	http.Error(w, "not the leader", http.StatusMisdirectedRequest)
}
