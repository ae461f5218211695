// Package auth decides who a request comes from and what it may do:
// Keystone token validation (with a bounded, expiring cache) and the
// policy that maps operations to the roles they need.
package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/hashicorp/golang-lru/v2/expirable"
)

// Identity is what a validated token says about its bearer.
type Identity struct {
	Token       string
	ProjectID   string
	ProjectName string
	UserID      string
	UserName    string
	Roles       []string
	ExpiresAt   time.Time
}

// Sentinel errors.
var (
	// ErrInvalidToken means the token is missing, unknown, expired or
	// revoked, or not scoped to a project: the request is unauthenticated.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrUnavailable means Keystone could not be asked.
	ErrUnavailable = errors.New("auth: identity service unavailable")
)

// Validator validates tokens.
type Validator interface {
	Validate(ctx context.Context, token string) (*Identity, error)
}

// KeystoneConfig configures validation against Keystone, like
// keystonemiddleware's [keystone_authtoken] section: the service account
// the node uses to ask Keystone about tokens, and the token cache.
type KeystoneConfig struct {
	AuthURL           string // Keystone's public endpoint, e.g. http://keystone:5000/v3
	Username          string
	Password          string
	UserDomainName    string // default "Default"
	ProjectName       string
	ProjectDomainName string // default "Default"
	// CacheTTL bounds how long a validated token is trusted without asking
	// Keystone again, and so how long a revoked token keeps working
	// (default 60s; keystonemiddleware's default is 300s).
	CacheTTL time.Duration
	// CacheSize bounds the number of cached tokens (default 10000).
	CacheSize int
	// Timeout bounds one call to Keystone (default 5s).
	Timeout time.Duration
	// WWWAuthenticateURI is advertised in 401 answers (default AuthURL).
	WWWAuthenticateURI string
}

// Keystone validates tokens with Keystone's GET /v3/auth/tokens.
type Keystone struct {
	cfg     KeystoneConfig
	valid   *expirable.LRU[[32]byte, *Identity]
	invalid *expirable.LRU[[32]byte, struct{}]

	mu          sync.Mutex
	identity    *gophercloud.ServiceClient // nil until the service account logged in
	serviceUser string                     // the service account's user id, once logged in

	trusts trustTokens
}

// NewKeystone returns a validator. The service account logs in on first
// use (and again after a failure), so a node can start while Keystone is
// unreachable; requests then get 503 until it answers.
func NewKeystone(cfg KeystoneConfig) (*Keystone, error) {
	if cfg.AuthURL == "" || cfg.Username == "" {
		return nil, errors.New("auth: keystone needs an auth URL and a service user")
	}
	if cfg.UserDomainName == "" {
		cfg.UserDomainName = "Default"
	}
	if cfg.ProjectDomainName == "" {
		cfg.ProjectDomainName = "Default"
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = time.Minute
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 10000
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.WWWAuthenticateURI == "" {
		cfg.WWWAuthenticateURI = cfg.AuthURL
	}
	return &Keystone{
		cfg:     cfg,
		valid:   expirable.NewLRU[[32]byte, *Identity](cfg.CacheSize, nil, cfg.CacheTTL),
		invalid: expirable.NewLRU[[32]byte, struct{}](cfg.CacheSize, nil, min(cfg.CacheTTL, 10*time.Second)),
	}, nil
}

// client returns the identity client, logging the service account in if
// needed.
func (k *Keystone) client(ctx context.Context) (*gophercloud.ServiceClient, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.identity != nil {
		return k.identity, nil
	}
	opts := gophercloud.AuthOptions{
		IdentityEndpoint: k.cfg.AuthURL, Username: k.cfg.Username, Password: k.cfg.Password, DomainName: k.cfg.UserDomainName,
		AllowReauth: true,
		Scope:       &gophercloud.AuthScope{ProjectName: k.cfg.ProjectName, DomainName: k.cfg.ProjectDomainName},
	}
	actx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	provider, err := openstack.AuthenticatedClient(actx, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: service account cannot log in to %s: %v", ErrUnavailable, k.cfg.AuthURL, err)
	}
	provider.HTTPClient = http.Client{Timeout: k.cfg.Timeout}
	identity, err := openstack.NewIdentityV3(provider, gophercloud.EndpointOpts{})
	if err != nil {
		return nil, fmt.Errorf("%w: identity client: %v", ErrUnavailable, err)
	}
	// Validate against the URL we were given, not the catalog's view of it.
	base := identityBase(k.cfg.AuthURL)
	identity.Endpoint, identity.ResourceBase = base, base
	k.identity = identity
	if login, ok := provider.GetAuthResult().(tokens.CreateResult); ok {
		if u, err := login.ExtractUser(); err == nil && u != nil {
			k.serviceUser = u.ID
		}
	}
	return identity, nil
}

// WWWAuthenticate is the value of the WWW-Authenticate header of a 401.
func (k *Keystone) WWWAuthenticate() string {
	return fmt.Sprintf("Keystone uri=%q", k.cfg.WWWAuthenticateURI)
}

// Validate returns the identity of a token. Answers are cached for
// CacheTTL (never past the token's own expiry); unknown tokens are
// remembered briefly so a flood of bad tokens does not flood Keystone.
func (k *Keystone) Validate(ctx context.Context, token string) (*Identity, error) {
	if !plausibleToken(token) {
		// Keystone cannot have issued it, and some such values cannot even
		// be sent to Keystone (control characters are refused by the HTTP
		// client, oversized headers by the server): asking would turn a
		// client's garbage into a 503.
		return nil, ErrInvalidToken
	}
	key := sha256.Sum256([]byte(token))
	if id, ok := k.valid.Get(key); ok {
		if time.Now().Before(id.ExpiresAt) {
			return id, nil
		}
		k.valid.Remove(key)
		return nil, ErrInvalidToken
	}
	if _, bad := k.invalid.Get(key); bad {
		return nil, ErrInvalidToken
	}
	client, err := k.client(ctx)
	if err != nil {
		return nil, err
	}
	vctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	res := tokens.Get(vctx, client, token)
	if res.Err != nil {
		// Keystone answers 404 for unknown, expired and revoked subject
		// tokens; a 401 would be about the service account itself.
		if gophercloud.ResponseCodeIs(res.Err, http.StatusNotFound) {
			k.invalid.Add(key, struct{}{})
			return nil, ErrInvalidToken
		}
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, res.Err)
	}
	tok, err := res.ExtractToken()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	id := &Identity{Token: token, ExpiresAt: tok.ExpiresAt}
	if p, err := res.ExtractProject(); err == nil && p != nil {
		id.ProjectID, id.ProjectName = p.ID, p.Name
	}
	if u, err := res.ExtractUser(); err == nil && u != nil {
		id.UserID, id.UserName = u.ID, u.Name
	}
	if roles, err := res.ExtractRoles(); err == nil {
		for _, r := range roles {
			id.Roles = append(id.Roles, r.Name)
		}
	}
	if id.ProjectID == "" || !time.Now().Before(id.ExpiresAt) {
		// Zaqar's resources live in projects: an unscoped token is useless.
		k.invalid.Add(key, struct{}{})
		return nil, ErrInvalidToken
	}
	k.valid.Add(key, id)
	return id, nil
}

// MaxTokenBytes bounds the tokens worth asking Keystone about: Fernet
// tokens are about 200 bytes and JWS tokens under 1 KiB.
const MaxTokenBytes = 16 << 10

// plausibleToken reports whether token could have been issued by Keystone:
// 1 to MaxTokenBytes visible ASCII characters (Keystone's tokens are
// base64url text).
func plausibleToken(token string) bool {
	if token == "" || len(token) > MaxTokenBytes {
		return false
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
