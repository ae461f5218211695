package auth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
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
}

// fakeToken is what the fake knows about one subject token.
type fakeToken struct {
	project string // "" for an unscoped token
	user    string
	roles   []string
	expires time.Time
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
	if r.URL.Path != "/v3/auth/tokens" {
		writeKeystoneError(w, http.StatusNotFound, "no such path")
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch r.Method {
	case http.MethodPost:
		k.logins++
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
			} `json:"auth"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeKeystoneError(w, http.StatusBadRequest, err.Error())
			return
		}
		if u := req.Auth.Identity.Password.User; u.Name != "zaqar" || u.Password != k.password {
			writeKeystoneError(w, http.StatusUnauthorized, "The request you have made requires authentication.")
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
