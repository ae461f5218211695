package raftnode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestClassify_OnlyFailuresWithoutEffectAreRetried(t *testing.T) {
	dialFailed := fmt.Errorf("%w: %w", errNotSent, &net.OpError{Op: "dial", Err: errors.New("refused")})
	brokenAfterSending := errors.New("read: connection reset by peer")
	cases := []struct {
		name string
		ans  peerAnswer
		err  error
		e    effect
		want error // nil: success
	}{
		{"200", peerAnswer{status: 200}, nil, mayAffect, nil},
		{"not sent, a write", peerAnswer{}, dialFailed, mayAffect, errRetry},
		{"not sent, a read", peerAnswer{}, dialFailed, effectFree, errRetry},
		{"broken after sending, a write", peerAnswer{}, brokenAfterSending, mayAffect, ErrUnknownOutcome},
		{"broken after sending, a read", peerAnswer{}, brokenAfterSending, effectFree, errRetry},
		{"not the leader", peerAnswer{status: 421, outcome: "not-leader"}, nil, mayAffect, errRetry},
		{"TLS required", peerAnswer{status: 426, outcome: outcomeTLSRequired}, nil, mayAffect, ErrPeerTLSRequired},
		{"refused sender", peerAnswer{status: 403}, nil, effectFree, ErrPeerRefused},
		{"unknown member", peerAnswer{status: 404}, nil, mayAffect, ErrUnknownMember},
		{"malformed", peerAnswer{status: 400}, nil, mayAffect, errBadRequest},
		{"503 from the leader, a write", peerAnswer{status: 503}, nil, mayAffect, ErrUnknownOutcome},
		{"503 from the leader, a read", peerAnswer{status: 503}, nil, effectFree, errRetry},
		{"500, a write", peerAnswer{status: 500}, nil, mayAffect, ErrUnknownOutcome},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := classify("10.0.0.1:7888", c.ans, c.err, c.e)
			switch {
			case c.want == nil && got != nil:
				t.Fatalf("classify = %v, want success", got)
			case c.want != nil && !errors.Is(got, c.want):
				t.Fatalf("classify = %v, want %v", got, c.want)
			}
			// No refusal is ever both retryable and final.
			if errors.Is(got, errRetry) && (errors.Is(got, ErrUnknownOutcome) || errors.Is(got, ErrPeerRefused)) {
				t.Fatalf("classify = %v is both retryable and final", got)
			}
		})
	}
}

func TestApplyError_RetriesOnlyWhatRaftRefusesBeforeAppending(t *testing.T) {
	cases := map[error]error{
		raft.ErrNotLeader:                    errRetry,
		raft.ErrLeadershipTransferInProgress: errRetry,
		raft.ErrEnqueueTimeout:               errRetry,
		raft.ErrLeadershipLost:               ErrUnknownOutcome,
		raft.ErrRaftShutdown:                 ErrUnknownOutcome,
		errors.New("timed out"):              ErrUnknownOutcome,
	}
	for in, want := range cases {
		if got := applyError(in); !errors.Is(got, want) {
			t.Errorf("applyError(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestVerifier_CallersOfARoundNotYetStartedShareIt(t *testing.T) {
	var v verifier
	// A round that has not started confirming yet.
	rd := &verifyRound{done: make(chan struct{})}
	v.pending = rd
	var calls atomic.Int32
	confirm := func() error { calls.Add(1); return nil }
	want := errors.New("deposed")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = v.verify(context.Background(), confirm)
		}()
	}
	time.Sleep(50 * time.Millisecond) // let every caller join
	rd.err = want
	close(rd.done)
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, want) {
			t.Errorf("caller %d got %v, want the shared round's %v", i, err, want)
		}
	}
	if calls.Load() != 0 {
		t.Fatalf("callers started %d rounds of their own", calls.Load())
	}
}

func TestVerifier_ACallerStopsWaitingWhenItsContextEnds(t *testing.T) {
	var v verifier
	never := make(chan struct{})
	defer close(never)
	confirm := func() error { <-never; return nil } // raft never answers
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := v.verify(ctx, confirm); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("verify with a round that never ends: %v, want the context's deadline", err)
	}
}

func TestVerifier_ARoundThatStartedTakesNoNewCallers(t *testing.T) {
	var v verifier
	entered := make(chan int, 2)
	release := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	var round atomic.Int32
	confirm := func() error {
		r := int(round.Add(1)) - 1
		entered <- r
		<-release[r]
		return fmt.Errorf("round %d", r)
	}
	first := make(chan error, 1)
	go func() { first <- v.verify(context.Background(), confirm) }()
	if r := <-entered; r != 0 {
		t.Fatalf("first round is %d", r)
	}
	// The first round is confirming: a new caller must get a round of its
	// own, whose heartbeats postdate its call.
	second := make(chan error, 1)
	go func() { second <- v.verify(context.Background(), confirm) }()
	select {
	case r := <-entered:
		if r != 1 {
			t.Fatalf("second round is %d", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a caller arriving during a started round did not start a new one")
	}
	close(release[0])
	close(release[1])
	if err := <-first; err == nil || err.Error() != "round 0" {
		t.Fatalf("first caller got %v", err)
	}
	if err := <-second; err == nil || err.Error() != "round 1" {
		t.Fatalf("second caller got %v, want its own round's outcome", err)
	}
}

func TestOnlyNonFSMEntries_SkipsNoOpsAndBarriersOnly(t *testing.T) {
	logs := raft.NewInmemStore()
	kinds := []raft.LogType{raft.LogNoop, raft.LogBarrier, raft.LogCommand, raft.LogNoop, raft.LogConfiguration}
	for i, k := range kinds {
		if err := logs.StoreLog(&raft.Log{Index: uint64(i + 1), Type: k}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		from, to uint64
		want     bool
	}{
		{1, 1, true},        // a new leader's no-op
		{1, 2, true},        // no-op and barrier
		{1, 3, false},       // reaches a command
		{4, 4, true},        // a later no-op
		{4, 5, false},       // reaches a configuration change
		{6, 6, false},       // not in the log
		{1, 1 << 17, false}, // too long a gap to scan
	}
	for _, c := range cases {
		if got := onlyNonFSMEntries(logs, c.from, c.to); got != c.want {
			t.Errorf("onlyNonFSMEntries(%d, %d) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

func TestPeerTLSRefusal_IsAnHTTPAnswerAPlainTextClientCanRead(t *testing.T) {
	a, b := net.Pipe()
	go func() {
		refusePlainText(b)
		b.Close()
	}()
	resp, err := http.ReadResponse(bufio.NewReader(a), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	a.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || resp.Header.Get(headerOutcome) != outcomeTLSRequired {
		t.Fatalf("answer %d %v", resp.StatusCode, resp.Header)
	}
	if err := classify("x", peerAnswer{status: resp.StatusCode, outcome: resp.Header.Get(headerOutcome), body: body}, nil, mayAffect); !errors.Is(err, ErrPeerTLSRequired) {
		t.Fatalf("a plain-text sender reads the refusal as %v", err)
	}
}
