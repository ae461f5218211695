package auth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeKeystone is an in-process stand-in for Keystone's v3 token API, just
// what Keystone-the-validator uses: POST /v3/auth/tokens (the service
// account's password login) and GET /v3/auth/tokens (validate a subject
// token). It counts calls so tests can see what the cache saved, and can
// be told to fail. The real Keystone is exercised by cluster-test.
type fakeKeystone struct {
	srv *httptest.Server

	mu           sync.Mutex
	password     string               // the service account's password
	tokens       map[string]fakeToken // subject tokens Keystone knows
	serviceToken string               // the service account's current token
	logins       int                  // POST /v3/auth/tokens
	validations  int                  // GET /v3/auth/tokens
	failStatus   int                  // if set, validations answer this status
	lastSubject  string               // X-Subject-Token of the last validation

	trusts        map[string]*fakeTrust // trusts by id
	trustLogins   int                   // trust-scoped token requests
	trustFail     int                   // if set, trust-scoped token requests answer this status
	trustLifetime time.Duration         // of trust-scoped tokens (default an hour)
	down          bool                  // if set, every request answers 503
}

// fakeTrust is a trust the fake created.
type fakeTrust struct {
	trustor, trustee, project string
	roles                     []string
	impersonation             bool
	deletedBy                 string // the user whose token deleted it
}

// fakeToken is what the fake knows about one subject token.
type fakeToken struct {
	project string // "" for an unscoped token
	user    string
	roles   []string
	expires time.Time
	trust   string // the trust of a trust-scoped token
}

const fakeServicePassword = "service-secret"

// newFakeKeystone starts a fake Keystone for the test.
func newFakeKeystone(t testing.TB) *fakeKeystone {
	t.Helper()
	k := &fakeKeystone{password: fakeServicePassword, tokens: map[string]fakeToken{}}
	k.srv = httptest.NewServer(http.HandlerFunc(k.serve))
	t.Cleanup(k.srv.Close)
	return k
}

// config returns a validator configuration pointing at the fake.
func (k *fakeKeystone) config() KeystoneConfig {
	return KeystoneConfig{AuthURL: k.srv.URL + "/v3", Username: "zaqar", Password: fakeServicePassword, ProjectName: "service"}
}

// issue makes Keystone know token.
func (k *fakeKeystone) issue(token string, ft fakeToken) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tokens[token] = ft
}

// revoke makes Keystone forget token (DELETE /v3/auth/tokens).
func (k *fakeKeystone) revoke(token string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.tokens, token)
}

// counts returns how often the service account logged in and how many
// validations Keystone answered.
func (k *fakeKeystone) counts() (logins, validations int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.logins, k.validations
}

func (k *fakeKeystone) set(fn func(k *fakeKeystone)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	fn(k)
}

func (k *fakeKeystone) serve(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	down := k.down
	k.mu.Unlock()
	if down {
		writeKeystoneError(w, http.StatusServiceUnavailable, "induced outage")
		return
	}
	if strings.HasPrefix(r.URL.Path, "/v3/OS-TRUST/trusts") {
		k.serveTrusts(w, r)
		return
	}
	if r.URL.Path != "/v3/auth/tokens" {
		writeKeystoneError(w, http.StatusNotFound, "no such path")
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch r.Method {
	case http.MethodPost:
		var req struct {
			Auth struct {
				Identity struct {
					Password struct {
						User struct {
							Name     string `json:"name"`
							Password string `json:"password"`
						} `json:"user"`
					} `json:"password"`
				} `json:"identity"`
				Scope struct {
					Trust struct {
						ID string `json:"id"`
					} `json:"OS-TRUST:trust"`
				} `json:"scope"`
			} `json:"auth"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeKeystoneError(w, http.StatusBadRequest, err.Error())
			return
		}
		trust := req.Auth.Scope.Trust.ID
		if trust == "" {
			k.logins++
		}
		if u := req.Auth.Identity.Password.User; u.Name != "zaqar" || u.Password != k.password {
			writeKeystoneError(w, http.StatusUnauthorized, "The request you have made requires authentication.")
			return
		}
		if trust != "" {
			k.issueTrustToken(w, trust)
			return
		}
		k.serviceToken = fmt.Sprintf("service-token-%d", k.logins)
		w.Header().Set("X-Subject-Token", k.serviceToken)
		body := k.tokenBody(fakeToken{project: "service", user: "zaqar", roles: []string{"service"}, expires: time.Now().Add(time.Hour)})
		body["catalog"] = []any{map[string]any{
			"id": "identity-service", "type": "identity", "name": "keystone",
			"endpoints": []any{map[string]any{"id": "e1", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": k.srv.URL + "/v3/"}},
		}}
		writeJSONBody(w, http.StatusCreated, map[string]any{"token": body})
	case http.MethodGet:
		if r.Header.Get("X-Auth-Token") == "" || r.Header.Get("X-Auth-Token") != k.serviceToken {
			writeKeystoneError(w, http.StatusUnauthorized, "The request you have made requires authentication.")
			return
		}
		k.validations++
		subject := r.Header.Get("X-Subject-Token")
		k.lastSubject = subject
		if k.failStatus != 0 {
			writeKeystoneError(w, k.failStatus, "induced failure")
			return
		}
		ft, ok := k.tokens[subject]
		if !ok || !time.Now().Before(ft.expires) {
			writeKeystoneError(w, http.StatusNotFound, "Could not recognize Fernet token")
			return
		}
		writeJSONBody(w, http.StatusOK, map[string]any{"token": k.tokenBody(ft)})
	default:
		writeKeystoneError(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

func (k *fakeKeystone) tokenBody(ft fakeToken) map[string]any {
	domain := map[string]any{"id": "default", "name": "Default"}
	roles := []any{}
	for _, r := range ft.roles {
		roles = append(roles, map[string]any{"id": "id-" + r, "name": r})
	}
	body := map[string]any{
		"methods":    []string{"password"},
		"issued_at":  time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"),
		"expires_at": ft.expires.UTC().Format("2006-01-02T15:04:05.000000Z"),
		"user":       map[string]any{"id": "uid-" + ft.user, "name": ft.user, "domain": domain},
		"roles":      roles,
	}
	if ft.project != "" {
		body["project"] = map[string]any{"id": "pid-" + ft.project, "name": ft.project, "domain": domain}
	}
	return body
}

func writeKeystoneError(w http.ResponseWriter, status int, msg string) {
	writeJSONBody(w, status, map[string]any{"error": map[string]any{"code": status, "title": http.StatusText(status), "message": msg}})
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// issueTrustToken answers a trust-scoped login of the service account.
// The caller holds k.mu.
func (k *fakeKeystone) issueTrustToken(w http.ResponseWriter, id string) {
	k.trustLogins++
	if k.trustFail != 0 {
		writeKeystoneError(w, k.trustFail, "induced trust failure")
		return
	}
	tr := k.trusts[id]
	if tr == nil || tr.deletedBy != "" {
		// As Keystone: its TrustNotFound becomes Unauthorized at login.
		writeKeystoneError(w, http.StatusUnauthorized, "The request you have made requires authentication.")
		return
	}
	lifetime := k.trustLifetime
	if lifetime == 0 {
		lifetime = time.Hour
	}
	tok := fmt.Sprintf("trust-token-%d", k.trustLogins)
	ft := fakeToken{project: tr.project, user: tr.trustor, roles: tr.roles, expires: time.Now().Add(lifetime), trust: id}
	k.tokens[tok] = ft
	body := k.tokenBody(ft)
	body["OS-TRUST:trust"] = map[string]any{"id": id, "impersonation": tr.impersonation,
		"trustor_user": map[string]any{"id": "uid-" + tr.trustor}, "trustee_user": map[string]any{"id": "uid-" + tr.trustee}}
	w.Header().Set("X-Subject-Token", tok)
	writeJSONBody(w, http.StatusCreated, map[string]any{"token": body})
}

// serveTrusts answers POST /v3/OS-TRUST/trusts (only the trustor's own
// token may create a trust) and DELETE /v3/OS-TRUST/trusts/ID (only a
// token of the trustor, an impersonating trust token included).
func (k *fakeKeystone) serveTrusts(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if r.Method == http.MethodGet && r.Header.Get("X-Auth-Token") == k.serviceToken && k.serviceToken != "" {
		// The trustee (the service account) looks a trust up.
		tr := k.trusts[strings.TrimPrefix(r.URL.Path, "/v3/OS-TRUST/trusts/")]
		if tr == nil || tr.deletedBy != "" {
			writeKeystoneError(w, http.StatusNotFound, "Could not find trust.")
			return
		}
		writeJSONBody(w, http.StatusOK, map[string]any{"trust": map[string]any{"id": strings.TrimPrefix(r.URL.Path, "/v3/OS-TRUST/trusts/")}})
		return
	}
	caller, ok := k.tokens[r.Header.Get("X-Auth-Token")]
	if !ok || !time.Now().Before(caller.expires) {
		writeKeystoneError(w, http.StatusUnauthorized, "The request you have made requires authentication.")
		return
	}
	switch id := strings.TrimPrefix(r.URL.Path, "/v3/OS-TRUST/trusts/"); {
	case r.Method == http.MethodPost && r.URL.Path == "/v3/OS-TRUST/trusts":
		var req struct {
			Trust struct {
				Trustor       string `json:"trustor_user_id"`
				Trustee       string `json:"trustee_user_id"`
				Project       string `json:"project_id"`
				Impersonation bool   `json:"impersonation"`
				Roles         []struct {
					Name string `json:"name"`
				} `json:"roles"`
			} `json:"trust"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeKeystoneError(w, http.StatusBadRequest, err.Error())
			return
		}
		if caller.trust != "" || req.Trust.Trustor != "uid-"+caller.user {
			writeKeystoneError(w, http.StatusForbidden, "The authenticated user should match the trustor")
			return
		}
		tr := &fakeTrust{trustor: caller.user, trustee: strings.TrimPrefix(req.Trust.Trustee, "uid-"),
			project: strings.TrimPrefix(req.Trust.Project, "pid-"), impersonation: req.Trust.Impersonation}
		for _, role := range req.Trust.Roles {
			if !slices.Contains(caller.roles, role.Name) {
				writeKeystoneError(w, http.StatusNotFound, "Could not find role: "+role.Name+".")
				return
			}
			tr.roles = append(tr.roles, role.Name)
		}
		if k.trusts == nil {
			k.trusts = map[string]*fakeTrust{}
		}
		id := fmt.Sprintf("trust%d", len(k.trusts)+1)
		k.trusts[id] = tr
		writeJSONBody(w, http.StatusCreated, map[string]any{"trust": map[string]any{
			"id": id, "trustor_user_id": req.Trust.Trustor, "trustee_user_id": req.Trust.Trustee,
			"project_id": req.Trust.Project, "impersonation": tr.impersonation,
		}})
	case r.Method == http.MethodDelete:
		tr := k.trusts[id]
		if tr == nil || tr.deletedBy != "" {
			writeKeystoneError(w, http.StatusNotFound, "Could not find trust: "+id+".")
			return
		}
		if caller.user != tr.trustor {
			writeKeystoneError(w, http.StatusForbidden, "You are not authorized to perform the requested action: identity:delete_trust.")
			return
		}
		tr.deletedBy = caller.user
		for tok, ft := range k.tokens {
			if ft.trust == id {
				delete(k.tokens, tok)
			}
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeKeystoneError(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}
