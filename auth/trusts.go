package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/trusts"
	"golang.org/x/sync/singleflight"
)

// Keystone trusts, for trust subscribers (trust+http(s)), as upstream
// Zaqar uses them (zaqar/common/auth.py): the subscribing user delegates
// their roles in their project to the service account (the trustee), with
// impersonation; to notify, the service account asks Keystone for a token
// scoped to that trust and sends it with the webhook. The service account
// is the one that validates tokens (KeystoneConfig), so no second set of
// credentials is needed.

// TrustRequest is a trust a caller delegates to the service account.
type TrustRequest struct {
	// Token is the trustor's own token: Keystone lets only the trustor
	// create a trust.
	Token     string
	UserID    string
	ProjectID string
	// Roles are role names, delegated as they are.
	Roles []string
}

// ErrTrustRefused means Keystone refused a trust: to create it (the caller
// may not delegate those roles, or a delegated token may not create
// trusts), or to issue a token with it (deleted, expired, the trustor
// disabled or stripped of the roles). Such errors are *TrustRefusal.
var ErrTrustRefused = errors.New("auth: Keystone refused the trust")

// TrustRefusal is Keystone's refusal of a trust.
type TrustRefusal struct {
	Status  int    // Keystone's status: 400, 401, 403 or 404
	Message string // Keystone's own explanation
}

func (e *TrustRefusal) Error() string {
	return fmt.Sprintf("Keystone refused the trust (%d %s): %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Is makes a refusal ErrTrustRefused.
func (e *TrustRefusal) Is(target error) bool { return target == ErrTrustRefused }

// Reason names the refusal for metric labels: not_found (the trust was
// deleted, revoked or expired), forbidden, unauthorized or bad_request.
func (e *TrustRefusal) Reason() string {
	switch e.Status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusUnauthorized:
		return "unauthorized"
	}
	return "bad_request"
}

// trustTokens caches the tokens issued with each trust.
type trustTokens struct {
	mu     sync.Mutex
	tokens map[string]trustToken // by trust id
	flight singleflight.Group
}

// trustToken is a cached trust-scoped token, used until refreshAt.
type trustToken struct {
	token     string
	refreshAt time.Time
}

// CreateTrust creates a trust from the caller to the service account: the
// caller's roles in the caller's project, impersonation on, no expiry (the
// service deletes the trust when the subscription ends). It returns the
// trust id.
func (k *Keystone) CreateTrust(ctx context.Context, r TrustRequest) (string, error) {
	if r.Token == "" || r.UserID == "" || r.ProjectID == "" {
		return "", &TrustRefusal{Status: http.StatusBadRequest, Message: "a trust needs the trustor's token, user and project"}
	}
	trustee, err := k.serviceUserID(ctx)
	if err != nil {
		return "", err
	}
	roles := make([]trusts.Role, 0, len(r.Roles))
	for _, name := range r.Roles {
		roles = append(roles, trusts.Role{Name: name})
	}
	cctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	trust, err := trusts.Create(cctx, k.clientWithToken(r.Token), trusts.CreateOpts{
		TrustorUserID: r.UserID, TrusteeUserID: trustee, ProjectID: r.ProjectID, Roles: roles, Impersonation: true,
	}).Extract()
	if err != nil {
		return "", classifyTrustError(err, http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound)
	}
	if trust == nil || trust.ID == "" {
		return "", fmt.Errorf("%w: Keystone created a trust without an id", ErrUnavailable)
	}
	return trust.ID, nil
}

// TrustToken returns a token for the service account scoped to a trust,
// cached until shortly before it expires. A trust Keystone refuses gives a
// *TrustRefusal (its tokens are forgotten); if the service account itself
// cannot log in, the error is ErrUnavailable, not a refusal.
func (k *Keystone) TrustToken(ctx context.Context, trustID string) (string, error) {
	now := time.Now()
	k.trusts.mu.Lock()
	cached, ok := k.trusts.tokens[trustID]
	k.trusts.mu.Unlock()
	if ok && now.Before(cached.refreshAt) {
		return cached.token, nil
	}
	v, err, _ := k.trusts.flight.Do(trustID, func() (any, error) {
		tok, expires, err := k.issueTrustToken(ctx, trustID)
		if err != nil {
			if errors.Is(err, ErrTrustRefused) {
				k.ForgetTrustToken(trustID)
			}
			return "", err
		}
		issued := time.Now()
		k.trusts.mu.Lock()
		if k.trusts.tokens == nil {
			k.trusts.tokens = map[string]trustToken{}
		}
		k.trusts.tokens[trustID] = trustToken{token: tok, refreshAt: expires.Add(-refreshMargin(expires.Sub(issued)))}
		k.trusts.mu.Unlock()
		return tok, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// refreshMargin is how long before its expiry a trust token is replaced:
// a minute, or a quarter of a shorter lifetime, so a token handed to a
// delivery is still valid when the receiver checks it.
func refreshMargin(lifetime time.Duration) time.Duration {
	return max(0, min(time.Minute, lifetime/4))
}

// ForgetTrustToken drops the cached token of a trust (a receiver refused
// it, or the trust is being deleted).
func (k *Keystone) ForgetTrustToken(trustID string) {
	k.trusts.mu.Lock()
	delete(k.trusts.tokens, trustID)
	k.trusts.mu.Unlock()
}

// issueTrustToken asks Keystone for a trust-scoped token: the service
// account's password with the trust as the scope.
func (k *Keystone) issueTrustToken(ctx context.Context, trustID string) (string, time.Time, error) {
	cctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	res := tokens.Create(cctx, k.clientWithToken(""), &tokens.AuthOptions{
		Username: k.cfg.Username, Password: k.cfg.Password, DomainName: k.cfg.UserDomainName,
		Scope: tokens.Scope{TrustID: trustID},
	})
	if res.Err != nil {
		err := classifyTrustError(res.Err, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound)
		var refusal *TrustRefusal
		if errors.As(err, &refusal) && refusal.Status == http.StatusUnauthorized {
			// 401 is also Keystone's answer to a wrong service password:
			// then the trust is not to blame, and must not be given up.
			if lerr := k.checkServiceLogin(ctx); lerr != nil {
				return "", time.Time{}, lerr
			}
			// Keystone answers 401, not 404, to a login scoped to a trust
			// it no longer has; the trustee may look the trust up.
			if gone, gerr := k.trustGone(ctx, trustID); gerr != nil {
				return "", time.Time{}, gerr
			} else if gone {
				return "", time.Time{}, &TrustRefusal{Status: http.StatusNotFound, Message: "the trust no longer exists (deleted, revoked or expired): " + refusal.Message}
			}
		}
		return "", time.Time{}, err
	}
	tok, err := res.ExtractToken()
	if err != nil || tok.ID == "" {
		return "", time.Time{}, fmt.Errorf("%w: trust token answer: %v", ErrUnavailable, err)
	}
	return tok.ID, tok.ExpiresAt, nil
}

// trustGone reports whether Keystone no longer has a trust, asking as the
// service account (the trustee may read its trusts).
func (k *Keystone) trustGone(ctx context.Context, trustID string) (bool, error) {
	client, err := k.client(ctx)
	if err != nil {
		return false, err
	}
	cctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	_, err = trusts.Get(cctx, client, trustID).Extract()
	switch {
	case err == nil:
		return false, nil
	case gophercloud.ResponseCodeIs(err, http.StatusNotFound):
		return true, nil
	}
	return false, fmt.Errorf("%w: look up trust: %v", ErrUnavailable, err)
}

// checkServiceLogin logs the service account in afresh, scoped as
// configured: nil if Keystone accepts its credentials.
func (k *Keystone) checkServiceLogin(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	res := tokens.Create(cctx, k.clientWithToken(""), &tokens.AuthOptions{
		Username: k.cfg.Username, Password: k.cfg.Password, DomainName: k.cfg.UserDomainName,
		Scope: tokens.Scope{ProjectName: k.cfg.ProjectName, DomainName: k.cfg.ProjectDomainName},
	})
	if res.Err != nil {
		return fmt.Errorf("%w: the service account cannot log in to %s: %v", ErrUnavailable, k.cfg.AuthURL, res.Err)
	}
	return nil
}

// DeleteTrust deletes a trust in Keystone with a token of the trust
// itself: Keystone lets the trustor (or an administrator) delete a trust,
// and a token of an impersonating trust is the trustor's. A trust Keystone
// no longer has (deleted, revoked, expired) is deleted already: nil. A
// trust it refuses a token for otherwise (a disabled trustor) cannot be
// deleted by the service: the *TrustRefusal is returned.
func (k *Keystone) DeleteTrust(ctx context.Context, trustID string) error {
	defer k.ForgetTrustToken(trustID)
	for attempt := 0; ; attempt++ {
		tok, err := k.TrustToken(ctx, trustID)
		var refusal *TrustRefusal
		switch {
		case errors.As(err, &refusal) && refusal.Status == http.StatusNotFound:
			return nil
		case err != nil:
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
		err = trusts.Delete(cctx, k.clientWithToken(tok), trustID).ExtractErr()
		cancel()
		switch {
		case err == nil, gophercloud.ResponseCodeIs(err, http.StatusNotFound):
			return nil
		case gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) && attempt == 0:
			// The cached token was revoked: ask for a new one once.
			k.ForgetTrustToken(trustID)
			continue
		}
		return classifyTrustError(err, http.StatusUnauthorized, http.StatusForbidden)
	}
}

// serviceUserID returns the service account's user id (the trustee),
// logging it in if needed.
func (k *Keystone) serviceUserID(ctx context.Context) (string, error) {
	if _, err := k.client(ctx); err != nil {
		return "", err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.serviceUser == "" {
		return "", fmt.Errorf("%w: Keystone's login answer named no user", ErrUnavailable)
	}
	return k.serviceUser, nil
}

// clientWithToken returns an identity client at the configured endpoint
// that sends token ("" for none) and never re-authenticates.
func (k *Keystone) clientWithToken(token string) *gophercloud.ServiceClient {
	provider := &gophercloud.ProviderClient{HTTPClient: http.Client{Timeout: k.cfg.Timeout}}
	if token != "" {
		provider.SetToken(token)
	}
	base := identityBase(k.cfg.AuthURL)
	return &gophercloud.ServiceClient{ProviderClient: provider, Endpoint: base, ResourceBase: base}
}

// identityBase is the v3 base URL of an auth URL, ending in "v3/".
func identityBase(authURL string) string {
	base := gophercloud.NormalizeURL(authURL)
	if !strings.HasSuffix(base, "v3/") {
		base += "v3/"
	}
	return base
}

// classifyTrustError makes a Keystone answer with one of the refusal
// statuses a *TrustRefusal and anything else ErrUnavailable.
func classifyTrustError(err error, refusals ...int) error {
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		for _, s := range refusals {
			if code.Actual == s {
				return &TrustRefusal{Status: s, Message: keystoneMessage(code.Body)}
			}
		}
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// keystoneMessage extracts the message of a Keystone error body.
func keystoneMessage(body []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return strings.TrimSpace(string(body[:min(len(body), 200)]))
}
