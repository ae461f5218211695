package auth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"
)

// trustCtx returns a bounded context for one call.
func trustCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// aliceTrust makes alice (member and reader of alpha) known to the fake
// and returns her trust request.
func aliceTrust(ks *fakeKeystone) TrustRequest {
	ks.issue("alice-token", fakeToken{project: "alpha", user: "alice", roles: []string{"member", "reader"}, expires: time.Now().Add(time.Hour)})
	return TrustRequest{Token: "alice-token", UserID: "uid-alice", ProjectID: "pid-alpha", Roles: []string{"member", "reader"}}
}

func TestCreateTrust_DelegatesTheCallersRolesToTheServiceAccount(t *testing.T) {
	ks := newFakeKeystone(t)
	k := newValidator(t, ks.config())
	id, err := k.CreateTrust(trustCtx(t), aliceTrust(ks))
	if err != nil {
		t.Fatalf("CreateTrust: %v", err)
	}
	ks.mu.Lock()
	tr := ks.trusts[id]
	ks.mu.Unlock()
	if tr == nil {
		t.Fatalf("Keystone has no trust %q", id)
	}
	if tr.trustor != "alice" || tr.trustee != "zaqar" || tr.project != "alpha" || !tr.impersonation || !slices.Equal(tr.roles, []string{"member", "reader"}) {
		t.Fatalf("trust %+v: want alice's member and reader roles in alpha delegated to zaqar with impersonation", tr)
	}
}

func TestCreateTrust_RefusalsAreTrustRefusalsAndOutagesAreNot(t *testing.T) {
	ks := newFakeKeystone(t)
	k := newValidator(t, ks.config())
	req := aliceTrust(ks)
	for _, tc := range []struct {
		name   string
		change func(*TrustRequest)
		status int
	}{
		{"another user's token", func(r *TrustRequest) { r.UserID = "uid-bob" }, http.StatusForbidden},
		{"a role the caller lacks", func(r *TrustRequest) { r.Roles = []string{"admin"} }, http.StatusNotFound},
		{"an unknown token", func(r *TrustRequest) { r.Token = "nope" }, http.StatusUnauthorized},
		{"no token (a signed URL)", func(r *TrustRequest) { r.Token = "" }, http.StatusBadRequest},
	} {
		r := req
		tc.change(&r)
		_, err := k.CreateTrust(trustCtx(t), r)
		var refusal *TrustRefusal
		if !errors.Is(err, ErrTrustRefused) || !errors.As(err, &refusal) || refusal.Status != tc.status {
			t.Errorf("%s: %v, want a %d refusal", tc.name, err, tc.status)
		}
	}
	ks.set(func(k *fakeKeystone) { k.down = true })
	if _, err := k.CreateTrust(trustCtx(t), req); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTrustRefused) {
		t.Fatalf("Keystone down: %v, want ErrUnavailable", err)
	}
}

func TestTrustToken_IsCachedUntilShortlyBeforeItExpires(t *testing.T) {
	ks := newFakeKeystone(t)
	k := newValidator(t, ks.config())
	id, err := k.CreateTrust(trustCtx(t), aliceTrust(ks))
	if err != nil {
		t.Fatal(err)
	}
	first, err := k.TrustToken(trustCtx(t), id)
	if err != nil {
		t.Fatalf("TrustToken: %v", err)
	}
	ks.mu.Lock()
	ft := ks.tokens[first]
	ks.mu.Unlock()
	if ft.trust != id || ft.user != "alice" || ft.project != "alpha" {
		t.Fatalf("the token %q is %+v, want alice's, scoped to trust %s", first, ft, id)
	}
	for i := 0; i < 5; i++ {
		if tok, err := k.TrustToken(trustCtx(t), id); err != nil || tok != first {
			t.Fatalf("TrustToken again = %q, %v; want the cached %q", tok, err, first)
		}
	}
	ks.mu.Lock()
	logins := ks.trustLogins
	ks.mu.Unlock()
	if logins != 1 {
		t.Fatalf("%d trust logins for six tokens of an hour, want 1", logins)
	}

	// A token of 800 ms is replaced from 200 ms (a quarter) before expiry.
	ks.set(func(k *fakeKeystone) { k.trustLifetime = 800 * time.Millisecond })
	k.ForgetTrustToken(id)
	short, err := k.TrustToken(trustCtx(t), id)
	if err != nil || short == first {
		t.Fatalf("after ForgetTrustToken: %q, %v; want a new token", short, err)
	}
	issued := time.Now()
	if tok, _ := k.TrustToken(trustCtx(t), id); tok != short && time.Since(issued) < 500*time.Millisecond {
		t.Fatalf("a fresh 800 ms token was replaced at once")
	}
	time.Sleep(time.Until(issued.Add(650 * time.Millisecond)))
	if tok, err := k.TrustToken(trustCtx(t), id); err != nil || tok == short {
		t.Fatalf("650 ms into an 800 ms token: %q, %v; want a new one", tok, err)
	}
}

func TestRefreshMargin_AMinuteOrAQuarterOfAShortLifetime(t *testing.T) {
	for _, tc := range []struct{ lifetime, want time.Duration }{
		{time.Hour, time.Minute},
		{4 * time.Minute, time.Minute},
		{2 * time.Minute, 30 * time.Second},
		{20 * time.Second, 5 * time.Second},
		{0, 0},
		{-time.Second, 0},
	} {
		if got := refreshMargin(tc.lifetime); got != tc.want {
			t.Errorf("refreshMargin(%s) = %s, want %s", tc.lifetime, got, tc.want)
		}
	}
}

func TestTrustToken_KeystoneRefusalsAreClassifiedAndTheServiceAccountIsNotBlamedOnTheTrust(t *testing.T) {
	ks := newFakeKeystone(t)
	k := newValidator(t, ks.config())
	id, err := k.CreateTrust(trustCtx(t), aliceTrust(ks))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		setup  func(*fakeKeystone)
		reason string // "" : not a refusal, ErrUnavailable
	}{
		{"an unknown trust", func(f *fakeKeystone) { f.trusts["gone"] = nil }, "not_found"},
		{"a disabled trustor", func(f *fakeKeystone) { f.trustFail = http.StatusForbidden }, "forbidden"},
		{"a trust Keystone will not authenticate", func(f *fakeKeystone) { f.trustFail = http.StatusUnauthorized }, "unauthorized"},
		{"a wrong service password", func(f *fakeKeystone) { f.trustFail = http.StatusUnauthorized; f.password = "rotated" }, ""},
		{"Keystone failing", func(f *fakeKeystone) { f.trustFail = http.StatusInternalServerError }, ""},
	} {
		ks.set(func(f *fakeKeystone) { f.trustFail, f.password = 0, fakeServicePassword })
		ks.set(tc.setup)
		trust := id
		if tc.reason == "not_found" {
			trust = "gone"
		}
		k.ForgetTrustToken(trust)
		_, err := k.TrustToken(trustCtx(t), trust)
		var refusal *TrustRefusal
		switch {
		case tc.reason == "" && (!errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTrustRefused)):
			t.Errorf("%s: %v, want ErrUnavailable and no refusal", tc.name, err)
		case tc.reason != "" && (!errors.As(err, &refusal) || refusal.Reason() != tc.reason):
			t.Errorf("%s: %v, want a refusal for %s", tc.name, err, tc.reason)
		}
	}
}

func TestDeleteTrust_DeletesWithATokenOfTheTrustAndAGoneTrustIsDone(t *testing.T) {
	ks := newFakeKeystone(t)
	k := newValidator(t, ks.config())
	id, err := k.CreateTrust(trustCtx(t), aliceTrust(ks))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.TrustToken(trustCtx(t), id); err != nil {
		t.Fatal(err)
	}
	// The cached token is revoked behind the cache's back: the deletion
	// asks for a new one.
	ks.set(func(f *fakeKeystone) {
		for tok, ft := range f.tokens {
			if ft.trust == id {
				delete(f.tokens, tok)
			}
		}
	})
	if err := k.DeleteTrust(trustCtx(t), id); err != nil {
		t.Fatalf("DeleteTrust: %v", err)
	}
	ks.mu.Lock()
	by := ks.trusts[id].deletedBy
	ks.mu.Unlock()
	if by != "alice" {
		t.Fatalf("the trust was deleted by %q, want a token acting as alice (the trustor)", by)
	}
	if err := k.DeleteTrust(trustCtx(t), id); err != nil {
		t.Fatalf("deleting a deleted trust: %v, want nil", err)
	}
	var refusal *TrustRefusal
	if _, err := k.TrustToken(trustCtx(t), id); !errors.As(err, &refusal) || refusal.Reason() != "not_found" {
		t.Fatalf("a token of a deleted trust: %v, want a not_found refusal", err)
	}

	other, err := k.CreateTrust(trustCtx(t), aliceTrust(ks))
	if err != nil {
		t.Fatal(err)
	}
	ks.set(func(f *fakeKeystone) { f.trustFail = http.StatusForbidden })
	if err := k.DeleteTrust(trustCtx(t), other); !errors.Is(err, ErrTrustRefused) {
		t.Fatalf("deleting a trust whose trustor is disabled: %v, want the refusal", err)
	}
	ks.set(func(f *fakeKeystone) { f.trustFail, f.down = 0, true })
	if err := k.DeleteTrust(trustCtx(t), other); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("deleting with Keystone down: %v, want ErrUnavailable", err)
	}
}
