package service

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/zaqar-raft/zaqar/auth"
	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/raftnode"
)

// TrustMaker creates and deletes the Keystone trusts of trust subscribers
// (auth.Keystone implements it).
type TrustMaker interface {
	// CreateTrust delegates the caller's roles in their project to the
	// service account and returns the trust id.
	CreateTrust(ctx context.Context, r auth.TrustRequest) (string, error)
	// DeleteTrust deletes a trust; nil if Keystone no longer knows it.
	DeleteTrust(ctx context.Context, trustID string) error
}

// trustFor creates the trust a trust subscriber delivers with, as
// upstream does when a trust subscription is made: the caller (trustor)
// delegates the roles of their token in their project to the service
// account, with impersonation. It is made before anything is proposed, so
// the entry holds everything its apply needs.
func (s *Service) trustFor(ctx context.Context, c Caller, what string) (string, *Error) {
	if s.trusts == nil {
		return "", badRequest("Trust subscribers need Keystone authentication (auth strategy keystone), which this deployment does not use.")
	}
	if c.Token == "" || c.UserID == "" {
		return "", &Error{Status: http.StatusForbidden, Title: TitleNotAuthorized,
			Description: "A trust subscriber needs a request authenticated with a Keystone token: the subscription delivers with a trust from the requesting user."}
	}
	id, err := s.trusts.CreateTrust(ctx, auth.TrustRequest{Token: c.Token, UserID: c.UserID, ProjectID: c.Project, Roles: c.Roles})
	var refusal *auth.TrustRefusal
	switch {
	case errors.As(err, &refusal):
		return "", &Error{Status: http.StatusForbidden, Title: TitleNotAuthorized,
			Description: "Keystone refused to create the trust the subscription would deliver with: " + refusal.Message}
	case err != nil:
		s.log.Warn("could not create a trust for a trust subscriber", "err", err)
		return "", &Error{Status: http.StatusServiceUnavailable, Title: TitleServiceUnavailable,
			Description: what + " The identity service could not create the trust the subscription delivers with. Please try again in a few seconds."}
	}
	return id, nil
}

// proposeWithTrust proposes cmd, followed in the same entry by hold when a
// trust was made for it, and returns cmd's result. An entry that fails
// leaves the trust to releaseTrust.
func (s *Service) proposeWithTrust(ctx context.Context, what string, cmd fsm.Command, hold *fsm.HoldTrust) (fsm.Result, *Error) {
	if hold == nil {
		res, _, e := s.propose(ctx, what, cmd)
		return res, e
	}
	res, err := s.node.Propose(ctx, cmd, hold)
	if err != nil {
		s.log.Warn("propose failed", "what", what, "err", err)
		s.releaseTrust(hold, err)
		return fsm.Result{}, unavailable(what, err)
	}
	if len(res.Results) != 2 {
		return fsm.Result{}, &Error{Status: 500, Title: TitleInternalServerError, Description: "command produced no result"}
	}
	if res.Results[0].Status == fsm.StatusMisplaced {
		return fsm.Result{}, errMisplaced
	}
	return res.Results[0], nil
}

// releaseTrust deals with the trust of an entry that failed. Refused by
// the command gate, the entry was never proposed: the trust is deleted
// here. Otherwise it may still commit (a leader change with the entry in
// flight), so HoldTrust is proposed again: behind the first entry in the
// log if that ever commits, it keeps the trust the subscription then
// holds and retires it otherwise, for the leader to delete. If even that
// fails, the trust is left in Keystone, and logged so.
func (s *Service) releaseTrust(hold *fsm.HoldTrust, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if errors.Is(cause, raftnode.ErrUpgradeInProgress) {
		if err := s.trusts.DeleteTrust(ctx, hold.TrustID); err != nil {
			s.log.Warn("a trust made for a subscription that was not created is left in Keystone", "trust", hold.TrustID, "err", err)
		}
		return
	}
	if _, err := s.node.Propose(ctx, hold); err != nil {
		s.log.Warn("a trust made for a subscription that may not exist is left in Keystone", "trust", hold.TrustID, "err", err)
	}
}
