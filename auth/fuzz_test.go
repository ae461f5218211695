package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzPolicyFile parses arbitrary policy files (JSON or YAML, any rule
// text) and asks arbitrary questions of them. ParsePolicy must never
// panic, and a policy it accepts must be internally consistent: every rule
// of the file and every default is defined; each text rule prints as a
// rule that parses back to the same tree and decides the same; the file's
// rules re-encoded as JSON and as YAML load to the same trees; the notes
// name only rules of the file; and every rule decides, without panicking,
// for the caller and target the fuzzer makes up. Seeds:
// testdata/fuzz/FuzzPolicyFile.
func FuzzPolicyFile(f *testing.F) {
	f.Add([]byte(`{"queues:delete": "role:admin"}`), "queues:delete", "member,admin", "p1", "u1", false)
	f.Add([]byte("queues:delete: rule:admin_or_owner\n"), "queues:delete", "member", "p1", "", true)
	f.Add([]byte(`{"x": "not (role:a or role:b) and project_id:%(project_id)s"}`), "x", "b", "p1", "", false)
	f.Add([]byte(`{"x": [["role:a", "role:b"], ["is_admin:True"]]}`), "x", "a,b", "", "", false)
	f.Fuzz(func(t *testing.T, file []byte, rule, roleList, project, user string, isAdmin bool) {
		p, notes, err := ParsePolicy(file)
		if err != nil {
			if p != nil {
				t.Fatalf("ParsePolicy returned a policy with error %v", err)
			}
			return
		}
		src, err := decodePolicyFile(file)
		if err != nil {
			t.Fatalf("ParsePolicy accepted %q, which does not decode: %v", file, err)
		}
		var roles []string
		if roleList != "" {
			roles = strings.Split(roleList, ",")
		}
		creds := Credentials{Roles: roles, ProjectID: project, UserID: user, IsAdmin: isAdmin}
		targets := []map[string]string{{}, {"project_id": project}, {"project_id": user}}

		for name := range defaultRules() {
			if !p.Defines(name) {
				t.Fatalf("default rule %q is gone", name)
			}
		}
		for name, s := range src {
			printed, ok := p.Rule(name)
			if !ok {
				t.Fatalf("rule %q of the file is not defined", name)
			}
			text, isText := s.(string)
			if !isText {
				continue
			}
			// parse → print → parse is stable, and the reprint decides alike.
			again, err := parseText(printed)
			if err != nil || again.String() != printed {
				t.Fatalf("rule %q = %q prints as %q, which reads back as %v (%v)", name, text, printed, again, err)
			}
			for _, tg := range targets {
				ev := &evaluation{policy: p, creds: &creds, target: tg}
				if got, want := again.eval(ev), p.Enforce(name, creds, tg); got != want {
					t.Fatalf("rule %q: the reprint %q decides %v, the rule %v", name, printed, got, want)
				}
			}
		}
		for _, reencoded := range reencode(t, src) {
			p2, _, err := ParsePolicy(reencoded)
			if err != nil {
				t.Fatalf("%q loads, but its rules re-encoded as %q do not: %v", file, reencoded, err)
			}
			for name := range src {
				a, _ := p.Rule(name)
				b, _ := p2.Rule(name)
				if a != b {
					t.Fatalf("rule %q reads %q from %q but %q from %q", name, a, file, b, reencoded)
				}
			}
		}
		for _, list := range [][]string{notes.Unknown, notes.Undefined} {
			if !slices.IsSorted(list) {
				t.Fatalf("notes not sorted: %+v", notes)
			}
			for _, name := range list {
				if _, ok := src[name]; !ok {
					t.Fatalf("notes %+v name %q, which the file does not define", notes, name)
				}
			}
		}
		for _, tg := range targets {
			for name := range src {
				p.Enforce(name, creds, tg)
			}
			got := p.Enforce(rule, creds, tg)
			if !p.Defines(rule) && !p.Defines(DefaultRuleName) && got {
				t.Fatalf("undefined rule %q was allowed", rule)
			}
		}
	})
}

// reencode writes a file's rules as JSON and as double-quoted YAML.
func reencode(t *testing.T, src map[string]any) [][]byte {
	j, err := json.Marshal(src)
	if err != nil {
		t.Fatal(err)
	}
	var y bytes.Buffer
	for _, name := range sortedKeys(src) {
		k, _ := json.Marshal(name)
		v, _ := json.Marshal(src[name])
		// JSON strings are YAML double-quoted scalars, JSON lists flow
		// sequences, except that YAML reads only \u escapes of the BMP
		// and refuses DEL and the C1 controls unescaped, which JSON
		// writes as they are.
		fmt.Fprintf(&y, "%s: %s\n", yamlEscapeControls(k), yamlEscapeControls(v))
	}
	return [][]byte{j, y.Bytes()}
}

// yamlEscapeControls writes DEL and the C1 controls (U+007F–U+009F) of
// JSON text as \u escapes, which both JSON and YAML read. They can only
// be inside strings, where an escape means the same character.
func yamlEscapeControls(b []byte) string {
	var out strings.Builder
	for _, r := range string(b) {
		if r >= 0x7f && r <= 0x9f {
			fmt.Fprintf(&out, "\\u%04x", r)
			continue
		}
		out.WriteRune(r)
	}
	return out.String()
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
