package auth

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzPolicyFile loads arbitrary policy files and asks arbitrary questions
// of them. LoadPolicy must never panic; a file it accepts must be a JSON
// object of strings, and the loaded policy must answer every rule the way
// an independent reading of the requirement grammar does (defaults for
// rules the file does not name). Seeds: testdata/fuzz/FuzzPolicyFile.
func FuzzPolicyFile(f *testing.F) {
	f.Add([]byte(`{"queues:delete": "role:admin"}`), "queues:delete", "member,admin")
	f.Add([]byte(`{"health:get": ""}`), "health:get", "")
	f.Add([]byte(`{"x": "role:a or role:b"}`), "x", "b")
	f.Add([]byte(`{"x": "!"}`), "x", "admin")
	f.Add([]byte(`{"x": "role:admin or "}`), "x", "")
	f.Add([]byte(`[]`), "pools:get", "admin")
	path := filepath.Join(f.TempDir(), "policy.json")
	f.Fuzz(func(t *testing.T, file []byte, rule, roleList string) {
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		var roles []string
		if roleList != "" {
			roles = strings.Split(roleList, ",")
		}
		p, err := LoadPolicy(path)
		var overrides map[string]string
		jsonErr := json.Unmarshal(file, &overrides)
		if err != nil {
			if p != nil {
				t.Fatalf("LoadPolicy returned a policy with error %v", err)
			}
			if jsonErr == nil && allSupported(overrides) {
				t.Fatalf("LoadPolicy refused %q, whose every requirement is supported: %v", file, err)
			}
			return
		}
		if jsonErr != nil {
			t.Fatalf("LoadPolicy accepted %q, which is not a JSON object of strings (%v)", file, jsonErr)
		}
		if !allSupported(overrides) {
			t.Fatalf("LoadPolicy accepted unsupported requirements in %q", file)
		}
		for r := range overrides {
			if got, want := p.Allows(r, roles), reference(overrides[r], roles); got != want {
				t.Fatalf("rule %q = %q, roles %q: Allows = %v, want %v", r, overrides[r], roles, got, want)
			}
		}
		want := true
		if req, ok := overrides[rule]; ok {
			want = reference(req, roles)
		} else if isAdminOnly(rule) {
			want = reference("role:admin", roles)
		}
		if got := p.Allows(rule, roles); got != want {
			t.Fatalf("rule %q, roles %q: Allows = %v, want %v (file %q)", rule, roles, got, want, file)
		}
	})
}

func isAdminOnly(rule string) bool {
	for _, r := range AdminOnly {
		if r == rule {
			return true
		}
	}
	return false
}

// allSupported reads the requirement grammar independently of policy.go.
func allSupported(overrides map[string]string) bool {
	for _, req := range overrides {
		alts := strings.Split(req, " or ")
		for _, a := range alts {
			a = strings.TrimSpace(a)
			switch {
			case a == "":
				if len(alts) > 1 {
					return false
				}
			case a == "@", a == "!":
			case strings.HasPrefix(a, "role:") && len(a) > 5 && !strings.ContainsAny(a, " \t\r\n"):
			default:
				return false
			}
		}
	}
	return true
}

// reference evaluates a supported requirement.
func reference(req string, roles []string) bool {
	for _, a := range strings.Split(req, " or ") {
		a = strings.TrimSpace(a)
		if a == "" || a == "@" {
			return true
		}
		if name, ok := strings.CutPrefix(a, "role:"); ok {
			for _, r := range roles {
				if r == name {
					return true
				}
			}
		}
	}
	return false
}

// FuzzKeystoneToken validates arbitrary tokens against a healthy
// (fake) Keystone that knows one token. Validate must never panic and,
// since Keystone is up and answers, must never report ErrUnavailable: a
// client's garbage is an invalid token (401), not an outage (503). Only the
// known token validates. Seeds: testdata/fuzz/FuzzKeystoneToken.
func FuzzKeystoneToken(f *testing.F) {
	f.Add("gAAAAABnknowntoken")
	f.Add("")
	f.Add("a\nb")
	f.Add("tok with spaces")
	f.Add(strings.Repeat("x", MaxTokenBytes+1))
	ks := newFakeKeystone(f)
	const known = "gAAAAABnknowntoken"
	ks.issue(known, fakeToken{project: "alpha", user: "alice", roles: []string{"member"}, expires: time.Now().Add(24 * time.Hour)})
	cfg := ks.config()
	cfg.CacheSize = 64
	k, err := NewKeystone(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		id, err := k.Validate(ctx, token)
		switch {
		case token == known:
			if err != nil || id.ProjectName != "alpha" {
				t.Fatalf("the known token: %+v, %v", id, err)
			}
		case !errors.Is(err, ErrInvalidToken):
			t.Fatalf("Validate(%q) = %+v, %v; want ErrInvalidToken", token, id, err)
		}
	})
}
