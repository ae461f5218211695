package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// validate calls k.Validate with a bounded context.
func validate(t *testing.T, k *Keystone, token string) (*Identity, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return k.Validate(ctx, token)
}

func newValidator(t *testing.T, cfg KeystoneConfig) *Keystone {
	t.Helper()
	k, err := NewKeystone(cfg)
	if err != nil {
		t.Fatalf("NewKeystone: %v", err)
	}
	return k
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNewKeystone_NeedsAnAuthURLAndAServiceUser(t *testing.T) {
	for name, cfg := range map[string]KeystoneConfig{
		"no auth URL": {Username: "zaqar"},
		"no username": {AuthURL: "http://127.0.0.1:1/v3"},
	} {
		if _, err := NewKeystone(cfg); err == nil {
			t.Errorf("%s: NewKeystone accepted %+v", name, cfg)
		}
	}
}

func TestNewKeystone_DoesNotContactKeystoneUntilATokenIsValidated(t *testing.T) {
	ks := newFakeKeystone(t)
	k := newValidator(t, ks.config())
	if logins, validations := ks.counts(); logins != 0 || validations != 0 {
		t.Fatalf("NewKeystone contacted Keystone: %d logins, %d validations", logins, validations)
	}
	ks.issue("tok", fakeToken{project: "alpha", user: "alice", roles: []string{"member"}, expires: time.Now().Add(time.Hour)})
	if _, err := validate(t, k, "tok"); err != nil {
		t.Fatal(err)
	}
	if logins, validations := ks.counts(); logins != 1 || validations != 1 {
		t.Fatalf("after one validation: %d logins, %d validations; want 1 and 1", logins, validations)
	}
}

func TestKeystone_ValidTokenYieldsItsProjectUserRolesAndExpiry(t *testing.T) {
	ks := newFakeKeystone(t)
	k := newValidator(t, ks.config())
	expires := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	ks.issue("tok-alice", fakeToken{project: "alpha", user: "alice", roles: []string{"member", "reader"}, expires: expires})
	id, err := validate(t, k, "tok-alice")
	if err != nil {
		t.Fatal(err)
	}
	if id.Token != "tok-alice" || id.ProjectID != "pid-alpha" || id.ProjectName != "alpha" || id.UserID != "uid-alice" ||
		id.UserName != "alice" || !slices.Equal(id.Roles, []string{"member", "reader"}) || !id.ExpiresAt.Equal(expires) {
		t.Fatalf("identity %+v, want project pid-alpha/alpha, user uid-alice/alice, roles [member reader], expiry %s", id, expires)
	}
}

func TestKeystone_InvalidTokensAreErrInvalidToken(t *testing.T) {
	ks := newFakeKeystone(t)
	ks.issue("unscoped", fakeToken{user: "alice", roles: []string{"member"}, expires: time.Now().Add(time.Hour)})
	ks.issue("expired", fakeToken{project: "alpha", user: "alice", expires: time.Now().Add(-time.Minute)})
	for _, tc := range []struct {
		name, token  string
		asksKeystone bool
	}{
		{"empty", "", false},
		{"unknown to Keystone", "no-such-token", true},
		{"expired (Keystone answers 404)", "expired", true},
		{"not scoped to a project", "unscoped", true},
		{"with a newline", "abc\ndef", false},
		{"with a control character", "abc\x00def", false},
		{"with a space", "abc def", false},
		{"not ASCII", "tökén", false},
		{"longer than any Keystone token", strings.Repeat("a", MaxTokenBytes+1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newValidator(t, ks.config())
			_, before := ks.counts()
			id, err := validate(t, k, tc.token)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Validate(%.40q) = %+v, %v; want ErrInvalidToken", tc.token, id, err)
			}
			if _, after := ks.counts(); (after > before) != tc.asksKeystone {
				t.Fatalf("Validate(%.40q) asked Keystone %d times; want asked: %v", tc.token, after-before, tc.asksKeystone)
			}
		})
	}
}

func TestKeystone_LongestPlausibleTokenIsStillAskedAbout(t *testing.T) {
	ks := newFakeKeystone(t)
	k := newValidator(t, ks.config())
	token := strings.Repeat("A", MaxTokenBytes)
	ks.issue(token, fakeToken{project: "alpha", user: "alice", expires: time.Now().Add(time.Hour)})
	if id, err := validate(t, k, token); err != nil || id.ProjectName != "alpha" {
		t.Fatalf("a %d-byte token Keystone knows: %+v, %v", len(token), id, err)
	}
}

func TestKeystone_UnknownTokenIsRememberedBrieflySoAFloodDoesNotReachKeystone(t *testing.T) {
	ks := newFakeKeystone(t)
	cfg := ks.config()
	cfg.CacheTTL = 300 * time.Millisecond // the negative cache lives min(CacheTTL, 10s)
	k := newValidator(t, cfg)
	for i := 0; i < 20; i++ {
		if _, err := validate(t, k, "bogus"); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("attempt %d: %v, want ErrInvalidToken", i, err)
		}
	}
	if _, v := ks.counts(); v != 1 {
		t.Fatalf("20 validations of one unknown token reached Keystone %d times, want 1", v)
	}
	// Once forgotten, Keystone is asked again: a token Keystone learns
	// about later (clock skew between issuing and first use) works then.
	ks.issue("bogus", fakeToken{project: "alpha", user: "alice", expires: time.Now().Add(time.Hour)})
	waitFor(t, 10*time.Second, "the negative cache entry to expire", func() bool {
		_, err := validate(t, k, "bogus")
		return err == nil
	})
}

func TestKeystone_ValidTokenIsCachedForCacheTTLThenAskedAboutAgain(t *testing.T) {
	ks := newFakeKeystone(t)
	cfg := ks.config()
	cfg.CacheTTL = time.Second
	k := newValidator(t, cfg)
	ks.issue("tok", fakeToken{project: "alpha", user: "alice", roles: []string{"member"}, expires: time.Now().Add(time.Hour)})
	start := time.Now()
	if _, err := validate(t, k, "tok"); err != nil {
		t.Fatal(err)
	}
	ks.revoke("tok")
	// Within the TTL the cached answer stands (the documented window in
	// which a revoked token keeps working)...
	if _, err := validate(t, k, "tok"); err != nil && time.Since(start) < cfg.CacheTTL {
		t.Fatalf("revoked token refused %s after validation, inside the %s cache TTL: %v", time.Since(start), cfg.CacheTTL, err)
	}
	// ...and once it lapses Keystone is asked again and the token is refused.
	waitFor(t, 15*time.Second, "the revoked token to be refused", func() bool {
		_, err := validate(t, k, "tok")
		return errors.Is(err, ErrInvalidToken)
	})
	if elapsed := time.Since(start); elapsed < cfg.CacheTTL {
		t.Fatalf("revoked token refused after %s, before the cache TTL of %s", elapsed, cfg.CacheTTL)
	}
	if _, err := validate(t, k, "tok"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("revoked token accepted again: %v", err)
	}
}

func TestKeystone_CachedTokenStopsWorkingAtItsOwnExpiry(t *testing.T) {
	ks := newFakeKeystone(t)
	cfg := ks.config()
	cfg.CacheTTL = time.Hour
	k := newValidator(t, cfg)
	expires := time.Now().Add(700 * time.Millisecond)
	ks.issue("short", fakeToken{project: "alpha", user: "alice", expires: expires})
	if _, err := validate(t, k, "short"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the token's expiry", func() bool { return time.Now().After(expires) })
	_, before := ks.counts()
	if _, err := validate(t, k, "short"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired cached token: %v, want ErrInvalidToken", err)
	}
	if _, after := ks.counts(); after != before {
		t.Fatalf("an expired cached token was sent to Keystone (%d calls)", after-before)
	}
}

func TestKeystone_CacheSizeBoundsTheCachedTokens(t *testing.T) {
	ks := newFakeKeystone(t)
	cfg := ks.config()
	cfg.CacheSize = 2
	k := newValidator(t, cfg)
	for _, tok := range []string{"t1", "t2", "t3"} {
		ks.issue(tok, fakeToken{project: "alpha", user: tok, expires: time.Now().Add(time.Hour)})
		if _, err := validate(t, k, tok); err != nil {
			t.Fatal(err)
		}
	}
	_, before := ks.counts()
	for _, tok := range []string{"t2", "t3"} {
		if _, err := validate(t, k, tok); err != nil {
			t.Fatal(err)
		}
	}
	if _, after := ks.counts(); after != before {
		t.Fatalf("the two most recent tokens were not cached: %d Keystone calls", after-before)
	}
	if _, err := validate(t, k, "t1"); err != nil {
		t.Fatal(err)
	}
	if _, after := ks.counts(); after != before+1 {
		t.Fatalf("the evicted token t1 was answered without Keystone (%d calls), the cache holds more than 2", after-before)
	}
}

func TestKeystone_KeystoneFailuresAreErrUnavailableAndNotCached(t *testing.T) {
	for _, status := range []int{500, 502, 503, 403} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			ks := newFakeKeystone(t)
			k := newValidator(t, ks.config())
			ks.issue("tok", fakeToken{project: "alpha", user: "alice", expires: time.Now().Add(time.Hour)})
			ks.set(func(k *fakeKeystone) { k.failStatus = status })
			if _, err := validate(t, k, "tok"); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Keystone answering %d: %v, want ErrUnavailable", status, err)
			}
			ks.set(func(k *fakeKeystone) { k.failStatus = 0 })
			if _, err := validate(t, k, "tok"); err != nil {
				t.Fatalf("after Keystone recovered: %v (a failure must not be remembered as an invalid token)", err)
			}
		})
	}
}

func TestKeystone_UnreachableKeystoneIsErrUnavailable(t *testing.T) {
	ks := newFakeKeystone(t)
	cfg := ks.config()
	ks.srv.Close()
	cfg.Timeout = 2 * time.Second
	k := newValidator(t, cfg)
	if _, err := validate(t, k, "tok"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Keystone down: %v, want ErrUnavailable", err)
	}
}

func TestKeystone_ServiceAccountThatCannotLogInIsRetriedOnTheNextValidation(t *testing.T) {
	ks := newFakeKeystone(t)
	ks.set(func(k *fakeKeystone) { k.password = "rotated" })
	k := newValidator(t, ks.config())
	ks.issue("tok", fakeToken{project: "alpha", user: "alice", expires: time.Now().Add(time.Hour)})
	if _, err := validate(t, k, "tok"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("service account refused: %v, want ErrUnavailable", err)
	}
	ks.set(func(k *fakeKeystone) { k.password = fakeServicePassword })
	if _, err := validate(t, k, "tok"); err != nil {
		t.Fatalf("after the password was fixed: %v", err)
	}
	if logins, _ := ks.counts(); logins != 2 {
		t.Fatalf("%d logins, want 2 (one refused, one retried)", logins)
	}
}

func TestKeystone_ExpiredServiceTokenIsRenewedTransparently(t *testing.T) {
	ks := newFakeKeystone(t)
	k := newValidator(t, ks.config())
	ks.issue("t1", fakeToken{project: "alpha", user: "alice", expires: time.Now().Add(time.Hour)})
	ks.issue("t2", fakeToken{project: "beta", user: "bob", expires: time.Now().Add(time.Hour)})
	if _, err := validate(t, k, "t1"); err != nil {
		t.Fatal(err)
	}
	// Keystone forgets the service account's token (expiry, revocation):
	// the next validation gets 401, logs in again and succeeds.
	ks.set(func(k *fakeKeystone) { k.serviceToken = "forgotten" })
	id, err := validate(t, k, "t2")
	if err != nil || id.ProjectName != "beta" {
		t.Fatalf("after the service token expired: %+v, %v", id, err)
	}
	if logins, _ := ks.counts(); logins != 2 {
		t.Fatalf("%d logins, want 2", logins)
	}
}

func TestKeystone_SubjectTokenIsSentAsGiven(t *testing.T) {
	ks := newFakeKeystone(t)
	k := newValidator(t, ks.config())
	token := "gAAAAABk-_0123456789abcdefABCDEF~.+/="
	ks.issue(token, fakeToken{project: "alpha", user: "alice", expires: time.Now().Add(time.Hour)})
	if _, err := validate(t, k, token); err != nil {
		t.Fatal(err)
	}
	ks.set(func(k *fakeKeystone) {
		if k.lastSubject != token {
			t.Errorf("Keystone was asked about %q, want %q", k.lastSubject, token)
		}
	})
}

func TestKeystone_WWWAuthenticateNamesTheAdvertisedURI(t *testing.T) {
	k := newValidator(t, KeystoneConfig{AuthURL: "http://keystone.example:5000/v3", Username: "zaqar"})
	if got, want := k.WWWAuthenticate(), `Keystone uri="http://keystone.example:5000/v3"`; got != want {
		t.Errorf("default: %s, want %s", got, want)
	}
	k = newValidator(t, KeystoneConfig{AuthURL: "http://10.0.0.1:5000/v3", Username: "zaqar", WWWAuthenticateURI: "https://identity.example/v3"})
	if got, want := k.WWWAuthenticate(), `Keystone uri="https://identity.example/v3"`; got != want {
		t.Errorf("configured: %s, want %s", got, want)
	}
}

func TestKeystone_ConcurrentValidationsAgree(t *testing.T) {
	ks := newFakeKeystone(t)
	cfg := ks.config()
	cfg.CacheTTL = 50 * time.Millisecond
	k := newValidator(t, cfg)
	for i := 0; i < 4; i++ {
		ks.issue(fmt.Sprint("tok", i), fakeToken{project: fmt.Sprint("p", i), user: "u", expires: time.Now().Add(time.Hour)})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				n := (g + i) % 5
				id, err := k.Validate(context.Background(), fmt.Sprint("tok", n))
				switch {
				case n == 4 && !errors.Is(err, ErrInvalidToken):
					errs <- fmt.Errorf("unknown token tok4: %+v, %v", id, err)
				case n < 4 && (err != nil || id.ProjectName != fmt.Sprint("p", n)):
					errs <- fmt.Errorf("tok%d: %+v, %v", n, id, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
