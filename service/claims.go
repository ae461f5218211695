package service

import (
	"context"
	"strings"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/internal/ids"
)

// ClaimParams are a claim's TTL and grace as read from a request body.
type ClaimParams struct {
	TTL, Grace int64
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
// result (no id) means nothing could be claimed.
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
