package raftnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/fsm"
)

// errRetry marks a failure that certainly had no effect (the entry never
// reached a leader's log), so the entry may be sent again.
var errRetry = errors.New("raftnode: retry")

// retryDelayCap bounds the wait between attempts to reach a leader.
const retryDelayCap = 50 * time.Millisecond

// Propose commits cmds as one log entry and returns their results. On a
// follower the entry is forwarded to the leader over the internal channel.
// A nil error means the entry is committed on a quorum and applied.
func (n *Node) Propose(ctx context.Context, cmds ...fsm.Command) (*fsm.EntryResult, error) {
	return n.proposeEntry(ctx, fsm.EncodeEntry(0, cmds...))
}

func (n *Node) proposeEntry(ctx context.Context, entry []byte) (*fsm.EntryResult, error) {
	delay := 10 * time.Millisecond
	for {
		var (
			res *fsm.EntryResult
			err error
		)
		if n.IsLeader() {
			res, err = n.applyLocal(ctx, entry)
		} else if _, addr := n.Leader(); addr != "" {
			res, err = n.forwardApply(ctx, addr, entry)
		} else {
			err = errRetry
		}
		if !errors.Is(err, errRetry) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
		case <-n.closed:
			return nil, ErrShutdown
		case <-time.After(delay):
		}
		// Waiting costs nothing but the check; a short cap finds a new
		// leader soon after it is elected.
		delay = min(2*delay, retryDelayCap)
	}
}

// applyLocal stamps the entry with this leader's clock and commits it.
func (n *Node) applyLocal(ctx context.Context, entry []byte) (*fsm.EntryResult, error) {
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
		switch {
		case err == nil:
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrEnqueueTimeout):
			// Refused before the entry entered the log.
			return nil, fmt.Errorf("%w: %v", errRetry, err)
		case errors.Is(err, raft.ErrRaftShutdown):
			// Raft reports shutdown to every pending future, including
			// entries already appended (and possibly committed).
			return nil, fmt.Errorf("%w: %v", ErrUnknownOutcome, err)
		default:
			return nil, fmt.Errorf("%w: %v", ErrUnknownOutcome, err)
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

// Header names of the internal protocol.
const (
	headerOutcome = "X-Raftnode-Outcome" // "not-leader" when the receiver refused without effect
)

// forwardApply sends the entry to the leader at addr.
func (n *Node) forwardApply(ctx context.Context, addr string, entry []byte) (*fsm.EntryResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/internal/v1/apply", bytes.NewReader(entry))
	if err != nil {
		return nil, err
	}
	if id := RequestID(ctx); id != "" {
		req.Header.Set(HeaderRequestID, id)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		if isDialError(err) {
			return nil, fmt.Errorf("%w: %v", errRetry, err)
		}
		return nil, fmt.Errorf("%w: forward to %s: %v", ErrUnknownOutcome, addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: forward to %s: %v", ErrUnknownOutcome, addr, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		res, err := fsm.DecodeEntryResult(body)
		if err != nil {
			// The leader applied the entry; only its answer is unreadable.
			return nil, fmt.Errorf("%w: result from %s: %v", ErrUnknownOutcome, addr, err)
		}
		return res, nil
	case resp.Header.Get(headerOutcome) == "not-leader":
		return nil, fmt.Errorf("%w: %s is not the leader", errRetry, addr)
	case resp.StatusCode == http.StatusBadRequest:
		return nil, fmt.Errorf("raftnode: leader rejected entry: %s", bytes.TrimSpace(body))
	default:
		return nil, fmt.Errorf("%w: leader %s: %s", ErrUnknownOutcome, addr, bytes.TrimSpace(body))
	}
}

// handleApply is the leader side of forwarding.
func (n *Node) handleApply(w http.ResponseWriter, r *http.Request) {
	entry, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
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
	if err != nil {
		n.log.Warn("forwarded entry failed", "request_id", r.Header.Get(HeaderRequestID), "err", err)
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
