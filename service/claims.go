package service

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/internal/ids"
	"github.com/zaqar-raft/zaqar/store"
)

// ClaimParams are a claim's TTL and grace as read from a request body,
// and how long a claim may wait for a message.
type ClaimParams struct {
	TTL, Grace int64
	// Wait, if set, is how many seconds (0 to MaxClaimWait) a claim that
	// finds nothing to claim waits for a message (REST's `?wait=`, the
	// websocket's `wait`; an extension of Zaqar's API).
	Wait *int
}

// ParseClaimBody reads `{"ttl": x, "grace": y}`; missing fields take the
// configured defaults. An empty body is all defaults unless required.
func (s *Service) ParseClaimBody(body []byte, required bool) (ClaimParams, *Error) {
	p := ClaimParams{TTL: s.limits.DefaultClaimTTL, Grace: s.limits.DefaultClaimGrace}
	if len(strings.TrimSpace(string(body))) == 0 {
		if required {
			return p, badBody("Request body can not be empty")
		}
		return p, nil
	}
	obj, e := parseObject(body, "Document type not supported.")
	if e != nil {
		return p, e
	}
	if v, ok, e := intField(obj, "ttl"); e != nil {
		return p, e
	} else if ok {
		p.TTL = v
	}
	if v, ok, e := intField(obj, "grace"); e != nil {
		return p, e
	} else if ok {
		p.Grace = v
	}
	return p, nil
}

// validateClaim checks claim TTL, grace and (if non-nil) limit.
func (s *Service) validateClaim(p ClaimParams, limit *int) *Error {
	if p.TTL < MinClaimTTL || p.TTL > s.limits.MaxClaimTTL {
		return badRequest("The TTL for a claim may not exceed %d seconds, and must be at least %d seconds long.", s.limits.MaxClaimTTL, MinClaimTTL)
	}
	if limit != nil && (*limit < 1 || *limit > s.limits.MaxMessagesPerClaimOrPop) {
		return badRequest("Limit must be at least 1 and may not be greater than %d.", s.limits.MaxMessagesPerClaimOrPop)
	}
	if p.Grace < MinClaimGrace || p.Grace > s.limits.MaxClaimGrace {
		return badRequest("The grace for a claim may not exceed %d seconds, and must be at least %d seconds long.", s.limits.MaxClaimGrace, MinClaimGrace)
	}
	if p.Wait != nil && (*p.Wait < 0 || *p.Wait > MaxClaimWait) {
		return &Error{Status: http.StatusBadRequest, Title: TitleInvalidParameter,
			Description: fmt.Sprintf(`The "wait" parameter is invalid. The value must be an integer from 0 to %d.`, MaxClaimWait)}
	}
	return nil
}

// ClaimResult is what CreateClaim and GetClaim return.
type ClaimResult struct {
	ID       string // "" when CreateClaim found nothing to claim
	TTL      int64  // GetClaim only
	Age      int64  // GetClaim only: seconds since the claim was made or renewed
	Messages []Message
}

// CreateClaim claims up to limit messages (contract §7.2). An empty
// result (no id) means nothing could be claimed. With p.Wait, a claim that
// finds nothing waits up to that many seconds for a message it can claim
// (claimWaiters says what wakes it), then tries again through the same
// path; it answers empty when the wait ends, ctx ends or the node stops.
func (s *Service) CreateClaim(ctx context.Context, c Caller, queue string, limit *int, p ClaimParams) (ClaimResult, *Error) {
	if e := s.validateClaim(p, limit); e != nil {
		return ClaimResult{}, e
	}
	n := defaultPageSize
	if limit != nil {
		n = *limit
	}
	const what = "Messages could not be claimed."
	if e := s.checkKeysBeforeTake(c, queue, n, what); e != nil {
		return ClaimResult{}, e
	}
	if p.Wait == nil || *p.Wait == 0 {
		return s.claimOnce(ctx, c, queue, n, p)
	}
	// The waiter is registered before the first attempt: a message posted
	// after that attempt's entry applies after the registration, on every
	// node, and so wakes it.
	w := s.waiters.add(c.scope(), queue, n)
	if w == nil {
		return s.claimOnce(ctx, c, queue, n, p)
	}
	defer s.waiters.remove(w)
	deadline := time.NewTimer(time.Duration(*p.Wait) * time.Second)
	defer deadline.Stop()
	due := time.NewTimer(time.Hour)
	defer due.Stop()
	for {
		res, e := s.claimOnce(ctx, c, queue, n, p)
		s.waiters.tried(w)
		if e != nil || res.ID != "" {
			return res, e
		}
		if !s.sleep(ctx, w, due, deadline) {
			return ClaimResult{}, nil
		}
	}
}

// sleep holds a waiting claim until it may find something: a wake-up
// from an apply, or the time its queue's next delayed or claimed message
// becomes claimable (read again on a retime). It reports false when the
// wait is over: its deadline, ctx or the node's stop.
func (s *Service) sleep(ctx context.Context, w *claimWaiter, due, deadline *time.Timer) bool {
	for {
		due.Reset(untilTime(s.waiters.sleepUntil(w)))
		select {
		case <-w.wake:
			return true
		case <-due.C:
			return true
		case <-w.retime:
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		case <-s.waiters.stop:
			return false
		}
	}
}

// nextClaimable returns, from this node's depth index, when time alone (a
// delay ending, a claim running out) next makes one of the queue's
// messages claimable: store.Never if nothing waits, 0 if not known. No
// apply marks that moment, so a waiting claim's own timer must.
func (s *Service) nextClaimable(project, queue string) int64 {
	v := s.store.View()
	defer v.Close()
	at, err := v.NextClaimable(project, queue)
	if err != nil {
		return 0
	}
	return at
}

// untilTime is how long to sleep for a moment nextClaimable returned: an
// hour when there is none (the wait ends long before), else a little
// after it, so that the claim's own clock has passed it.
func untilTime(at int64) time.Duration {
	if at <= 0 || at == store.Never {
		return time.Hour
	}
	return max(time.Until(time.Unix(0, at)), 0) + 5*time.Millisecond
}

// claimOnce proposes one claim of up to n messages.
func (s *Service) claimOnce(ctx context.Context, c Caller, queue string, n int, p ClaimParams) (ClaimResult, *Error) {
	const what = "Messages could not be claimed."
	cid := ids.New()
	res, now, e := s.propose(ctx, what, &fsm.CreateClaim{
		Project: c.scope(), Queue: queue, ClaimID: cid, TTL: p.TTL, Grace: p.Grace, Limit: n,
	})
	if e != nil {
		return ClaimResult{}, e
	}
	if len(res.Messages) == 0 {
		return ClaimResult{}, nil
	}
	msgs, err := s.messagesAt(res.Messages, now)
	if err != nil {
		// The claim is committed; its id lets the client release it.
		e := s.sealedFailure(what, err)
		e.Description += " The messages are held by claim " + cid + " until it expires or is released."
		return ClaimResult{}, e
	}
	return ClaimResult{ID: cid, Messages: msgs}, nil
}

// ClaimWaitBudget is how much time a claim asking to wait `wait` seconds
// needs on top of the request timeout: the wait, or nothing for a value
// CreateClaim refuses (such a request is answered 400 at once).
// Transports extend the request's deadline by it.
func ClaimWaitBudget(wait *int) time.Duration {
	if wait == nil || *wait < 0 || *wait > MaxClaimWait {
		return 0
	}
	return time.Duration(*wait) * time.Second
}

// OnApply is the service's FSM hook: it wakes the waiting claims of queues
// whose messages an applied batch made claimable, and drops the pools the
// node read when the batch changed them. It runs on Raft's FSM goroutine,
// on every node, and never blocks.
func (s *Service) OnApply(results []*fsm.EntryResult) {
	s.waiters.onApply(results)
	s.catalogApplied(results)
}

// ClaimWaiters returns how many claims wait for a message on this node.
func (s *Service) ClaimWaiters() int { return s.waiters.waiting() }

// StopWaiting ends every waiting claim at once (each answers that nothing
// was claimed) and makes later claims answer without waiting: the node is
// draining or stopping.
func (s *Service) StopWaiting() { s.waiters.stopAll() }

// GetClaim returns an active claim and its remaining messages.
func (s *Service) GetClaim(ctx context.Context, c Caller, queue, claimID string) (ClaimResult, *Error) {
	const what = "Claim could not be queried."
	missing := notFound("Claim %s does not exist in queue %s for project %s", claimID, queue, c.Project)
	if !ids.Valid(claimID) {
		return ClaimResult{}, missing
	}
	v, now, e := s.view(ctx, c, what)
	if e != nil {
		return ClaimResult{}, e
	}
	defer v.Close()
	cl, msgs, err := v.Claim(c.scope(), queue, claimID, now)
	if err != nil {
		return ClaimResult{}, storeFailure(what, err)
	}
	if cl == nil {
		return ClaimResult{}, missing
	}
	out, err := s.messagesAt(msgs, now)
	if err != nil {
		return ClaimResult{}, s.sealedFailure(what, err)
	}
	return ClaimResult{ID: claimID, TTL: cl.TTL, Age: cl.Age(now), Messages: out}, nil
}

// RenewClaim restarts an active claim (contract §7.4).
func (s *Service) RenewClaim(ctx context.Context, c Caller, queue, claimID string, p ClaimParams) *Error {
	if e := s.validateClaim(p, nil); e != nil {
		return e
	}
	missing := notFound("Claim %s does not exist in queue %s for project %s", claimID, queue, c.Project)
	if !ids.Valid(claimID) {
		return missing
	}
	res, _, e := s.propose(ctx, "Claim could not be updated.", &fsm.RenewClaim{
		Project: c.scope(), Queue: queue, ClaimID: claimID, TTL: p.TTL, Grace: p.Grace,
	})
	if e != nil {
		return e
	}
	if res.Status == fsm.StatusNotFound {
		return missing
	}
	return nil
}

// ReleaseClaim ends a claim; releasing an unknown claim succeeds.
func (s *Service) ReleaseClaim(ctx context.Context, c Caller, queue, claimID string) *Error {
	if !ids.Valid(claimID) {
		return nil
	}
	_, _, e := s.propose(ctx, "Claim could not be deleted.", &fsm.ReleaseClaim{Project: c.scope(), Queue: queue, ClaimID: claimID})
	return e
}
