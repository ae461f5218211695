package auth

import (
	"os"
	"path/filepath"
	"testing"
)

// writePolicy writes a policy file and returns its path.
func writePolicy(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultPolicy_AdminOnlyRulesNeedTheAdminRole(t *testing.T) {
	p := DefaultPolicy()
	want := []string{"health:get", "cluster:admin", "pools:get_all", "pools:get", "pools:create", "pools:update",
		"pools:delete", "flavors:create", "flavors:update", "flavors:delete"}
	for _, rule := range want {
		for _, tc := range []struct {
			roles []string
			allow bool
		}{
			{nil, false},
			{[]string{"member"}, false},
			{[]string{"reader", "member"}, false},
			{[]string{"Admin"}, false}, // role names are exact
			{[]string{"admin"}, true},
			{[]string{"member", "admin"}, true},
		} {
			if got := p.Allows(rule, tc.roles); got != tc.allow {
				t.Errorf("Allows(%q, %q) = %v, want %v", rule, tc.roles, got, tc.allow)
			}
		}
	}
	if len(AdminOnly) != len(want) {
		t.Errorf("AdminOnly = %v, want exactly %v", AdminOnly, want)
	}
}

func TestDefaultPolicy_EveryOtherRuleIsOpenToAuthenticatedCallers(t *testing.T) {
	p := DefaultPolicy()
	for _, rule := range []string{
		"queues:get_all", "queues:create", "queues:get", "queues:delete", "queues:update", "queues:stats",
		"queues:share", "queues:purge", "messages:create", "messages:get", "messages:get_all", "messages:delete",
		"messages:delete_all", "claims:create", "claims:get", "claims:update", "claims:delete",
		"subscription:create", "subscription:get", "subscription:get_all", "subscription:update",
		"subscription:delete", "subscription:confirm", "topics:create", "topics:get_all", "ping:get",
		"flavors:get_all", "flavors:get", "no-such-rule",
	} {
		if !p.Allows(rule, nil) || !p.Allows(rule, []string{"member"}) {
			t.Errorf("%s is not open by default", rule)
		}
	}
}

func TestLoadPolicy_OverridesAreLaidOverTheDefaults(t *testing.T) {
	p, err := LoadPolicy(writePolicy(t, `{
		"queues:delete": "role:admin",
		"messages:delete_all": "role:admin or role:janitor",
		"queues:purge": "!",
		"health:get": "",
		"pools:get_all": "@"
	}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rule  string
		roles []string
		allow bool
	}{
		{"queues:delete", []string{"member"}, false},
		{"queues:delete", []string{"admin"}, true},
		{"messages:delete_all", []string{"member"}, false},
		{"messages:delete_all", []string{"janitor"}, true},
		{"messages:delete_all", []string{"admin"}, true},
		{"queues:purge", []string{"admin"}, false}, // "!" denies everybody
		{"health:get", nil, true},                  // opened by the file
		{"pools:get_all", []string{"member"}, true},
		{"pools:create", []string{"member"}, false}, // untouched defaults stay
		{"pools:create", []string{"admin"}, true},
		{"queues:create", nil, true},
	} {
		if got := p.Allows(tc.rule, tc.roles); got != tc.allow {
			t.Errorf("Allows(%q, %q) = %v, want %v", tc.rule, tc.roles, got, tc.allow)
		}
	}
}

func TestLoadPolicy_RejectsWhatItCannotEnforce(t *testing.T) {
	for name, content := range map[string]string{
		"not JSON":                  `queues:delete: role:admin`,
		"a list":                    `["role:admin"]`,
		"a non-string requirement":  `{"queues:delete": true}`,
		"a nested rule":             `{"queues:delete": {"role": "admin"}}`,
		"oslo's is_admin":           `{"queues:delete": "is_admin:True"}`,
		"oslo's rule reference":     `{"queues:delete": "rule:context_is_admin"}`,
		"an empty role name":        `{"queues:delete": "role:"}`,
		"an and expression":         `{"queues:delete": "role:admin and role:member"}`,
		"a dangling or":             `{"queues:delete": "role:admin or "}`,
		"an empty middle or":        `{"queues:delete": "role:admin or  or role:x"}`,
		"a leading or":              `{"queues:delete": " or role:admin"}`,
		"project match (unchecked)": `{"queues:delete": "project_id:%(project_id)s"}`,
	} {
		if p, err := LoadPolicy(writePolicy(t, content)); err == nil {
			t.Errorf("%s: %s was accepted (%+v)", name, content, p.rules)
		}
	}
	if _, err := LoadPolicy(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("a missing policy file was accepted")
	}
}

func TestLoadPolicy_AcceptsEverySupportedForm(t *testing.T) {
	for _, req := range []string{"", "@", "!", "role:admin", "role:admin or role:member", "  role:admin  or @", "role:a or !"} {
		content := `{"queues:delete": ` + quoteJSON(req) + `}`
		if _, err := LoadPolicy(writePolicy(t, content)); err != nil {
			t.Errorf("%s: %v", content, err)
		}
	}
}

func quoteJSON(s string) string {
	out := []byte{'"'}
	for _, c := range []byte(s) {
		if c == '"' || c == '\\' {
			out = append(out, '\\')
		}
		out = append(out, c)
	}
	return string(append(out, '"'))
}
