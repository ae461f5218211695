package auth

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writePolicy writes a policy file and returns its path.
func writePolicy(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustParse(t *testing.T, content string) (*Policy, Notes) {
	t.Helper()
	p, notes, err := ParsePolicy([]byte(content))
	if err != nil {
		t.Fatalf("%s: %v", content, err)
	}
	return p, notes
}

var (
	member      = Credentials{Roles: []string{"member"}, ProjectID: "p1", UserID: "u1"}
	admin       = Credentials{Roles: []string{"admin"}, ProjectID: "p1", UserID: "u2"}
	ownProject  = map[string]string{"project_id": "p1"}
	noTarget    = map[string]string{}
	adminOnlyEx = []string{"health:get", "cluster:admin", "pools:get_all", "pools:get", "pools:create", "pools:update",
		"pools:delete", "flavors:create", "flavors:update", "flavors:delete", "context_is_admin"}
)

func TestDefaultPolicy_AdminOnlyRulesNeedTheAdminRole(t *testing.T) {
	p := DefaultPolicy()
	for _, rule := range adminOnlyEx {
		for _, tc := range []struct {
			roles []string
			allow bool
		}{
			{nil, false},
			{[]string{"member"}, false},
			{[]string{"reader", "member"}, false},
			{[]string{"Admin"}, true}, // oslo compares role names without case
			{[]string{"admin"}, true},
			{[]string{"member", "admin"}, true},
		} {
			if got := p.Enforce(rule, Credentials{Roles: tc.roles, ProjectID: "p1"}, ownProject); got != tc.allow {
				t.Errorf("Enforce(%q, %q) = %v, want %v", rule, tc.roles, got, tc.allow)
			}
		}
	}
}

func TestDefaultPolicy_EveryOtherRuleIsOpenToAuthenticatedCallers(t *testing.T) {
	p := DefaultPolicy()
	open := 0
	for rule := range UpstreamDefaults {
		if slices.Contains(adminOnlyEx, rule) || rule == "admin_or_owner" {
			continue
		}
		open++
		if !p.Enforce(rule, Credentials{}, noTarget) || !p.Enforce(rule, member, ownProject) {
			t.Errorf("%s is not open by default", rule)
		}
	}
	if open != 33 {
		t.Errorf("%d open rules, want upstream's 33", open)
	}
}

func TestEnforce_ARuleNobodyDefinedIsDenied(t *testing.T) {
	p := DefaultPolicy()
	for _, c := range []Credentials{{}, member, admin, {IsAdmin: true, Roles: []string{"admin"}}} {
		if p.Enforce("no:such:rule", c, ownProject) || p.Enforce("", c, ownProject) {
			t.Errorf("an undefined rule allowed %+v", c)
		}
	}
	if p.Defines("no:such:rule") || !p.Defines("queues:create") {
		t.Error("Defines is wrong")
	}
}

func TestEnforce_TheDefaultRuleDecidesRulesNobodyDefined(t *testing.T) {
	p, notes := mustParse(t, `{"default": "rule:admin_or_owner", "x": "rule:missing or role:janitor"}`)
	if p.Enforce("no:such:rule", member, noTarget) {
		t.Error("default = admin_or_owner allowed a member without a target")
	}
	if !p.Enforce("no:such:rule", member, ownProject) {
		t.Error("default = admin_or_owner refused the owner")
	}
	// A reference to an undefined rule goes to the default rule too.
	if !p.Enforce("x", member, ownProject) || p.Enforce("x", member, map[string]string{"project_id": "p2"}) {
		t.Error("rule:missing did not apply the default rule")
	}
	if !slices.Equal(notes.Undefined, []string{"x"}) || len(notes.Unknown) != 1 || notes.Unknown[0] != "x" {
		t.Errorf("notes = %+v, want x undefined and unknown", notes)
	}
}

func TestEnforce_OwnershipComparesTheCallersProjectWithTheTarget(t *testing.T) {
	p, _ := mustParse(t, `
"queues:delete": "rule:admin_or_owner"
"queues:purge": "project_id:%(project_id)s and role:member"
"messages:get": "user_id:u1 or user:u2"
"messages:delete": "is_admin:False"
"claims:create": "project:p1"
"claims:get": "roles:Member"
`)
	other := map[string]string{"project_id": "p2"}
	for _, tc := range []struct {
		rule   string
		creds  Credentials
		target map[string]string
		allow  bool
	}{
		{"queues:delete", member, ownProject, true},
		{"queues:delete", member, other, false},
		{"queues:delete", member, noTarget, false}, // upstream Zaqar passes no target
		{"queues:delete", Credentials{IsAdmin: true}, other, true},
		{"queues:purge", member, ownProject, true},
		{"queues:purge", admin, ownProject, false},
		{"messages:get", member, noTarget, true},
		{"messages:get", admin, noTarget, true},
		{"messages:get", Credentials{ProjectID: "p1"}, noTarget, false},
		{"messages:delete", member, noTarget, true},
		{"messages:delete", Credentials{IsAdmin: true}, noTarget, false},
		{"claims:create", member, noTarget, true},
		{"claims:create", Credentials{}, noTarget, false},
		{"claims:get", member, noTarget, false}, // a generic check on roles is exact
		{"claims:get", Credentials{Roles: []string{"Member"}}, noTarget, true},
	} {
		if got := p.Enforce(tc.rule, tc.creds, tc.target); got != tc.allow {
			r, _ := p.Rule(tc.rule)
			t.Errorf("Enforce(%s = %q, %+v, %v) = %v, want %v", tc.rule, r, tc.creds, tc.target, got, tc.allow)
		}
	}
}

func TestEnforce_RoleNamesCompareAsPythonsLower(t *testing.T) {
	p, _ := mustParse(t, `{"a": "role:ADMIN", "b": "role:\u0130x", "c": "role:i\u0307X"}`)
	if !p.Enforce("a", Credentials{Roles: []string{"aDmIn"}}, noTarget) {
		t.Error("role:ADMIN refused aDmIn")
	}
	// Python lowers İ (U+0130) to "i̇", two runes; Go's ToLower to "i".
	if !p.Enforce("b", Credentials{Roles: []string{"i\u0307x"}}, noTarget) || p.Enforce("b", Credentials{Roles: []string{"ix"}}, noTarget) {
		t.Error("İ is not lowered as Python lowers it")
	}
	if !p.Enforce("c", Credentials{Roles: []string{"\u0130X"}}, noTarget) {
		t.Error("İ is not lowered as Python lowers it")
	}
}

func TestLoadPolicy_ReportsRulesNothingUsesAndReferencesToNothing(t *testing.T) {
	_, notes, err := LoadPolicy(writePolicy(t, "policy.yaml", `
"queues:delete": "rule:owner or rule:typo_rule"
"owner": "project_id:%(project_id)s"
"queues:delet": "!"
"my:helper": "role:ops"
"default": "!"
"cluster:admin": "role:ops"
"queues:purge": "rule:also_missing"
`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"my:helper", "queues:delet"}; !slices.Equal(notes.Unknown, want) {
		t.Errorf("Unknown = %v, want %v (owner is referenced, default and cluster:admin are known)", notes.Unknown, want)
	}
	if want := []string{"queues:delete", "queues:purge"}; !slices.Equal(notes.Undefined, want) {
		t.Errorf("Undefined = %v, want %v", notes.Undefined, want)
	}
}

func TestLoadPolicy_RefusesRulesThatReferToThemselves(t *testing.T) {
	for name, content := range map[string]string{
		"itself":            `{"a": "rule:a"}`,
		"a pair":            `{"queues:get": "role:x or rule:b", "b": "not rule:queues:get"}`,
		"a longer chain":    `{"a": "rule:b", "b": "rule:c", "c": "@ or rule:a"}`,
		"through default":   `{"default": "rule:nobody", "queues:get": "rule:default"}`,
		"a default default": `{"default": "rule:default"}`,
		"a list":            `{"a": [["rule:b"]], "b": ["rule:a"]}`,
	} {
		_, _, err := ParsePolicy([]byte(content))
		if err == nil || !strings.Contains(err.Error(), "cycle") {
			t.Errorf("%s: %s: err = %v, want a cycle", name, content, err)
		}
	}
	// Two rules referring to a third is no cycle.
	mustParse(t, `{"a": "rule:c and rule:b", "b": "rule:c", "c": "@", "default": "rule:c"}`)
}

// The same rules as JSON, block YAML, flow YAML, YAML with anchors, with
// a byte-order mark and with a duplicate key (the last wins), load alike.
func TestLoadPolicy_ReadsJSONAndYAMLAlike(t *testing.T) {
	want := map[string]string{
		"queues:delete": "(role:admin or (project_id:%(project_id)s and not role:reader))",
		"health:get":    "@",
		"pools:get":     "!",
	}
	for name, content := range map[string]string{
		"json":      `{"queues:delete": "role:admin or project_id:%(project_id)s and not role:reader", "health:get": "", "pools:get": "!"}`,
		"yaml":      "# policy.yaml\nqueues:delete: role:admin or project_id:%(project_id)s and not role:reader\nhealth:get: ''\n\"pools:get\": \"!\"\n",
		"flow yaml": `{queues:delete: "role:admin or project_id:%(project_id)s and not role:reader", health:get: "", pools:get: "!"}`,
		"anchors":   "a: &deny '!'\nqueues:delete: 'role:admin or project_id:%(project_id)s and not role:reader'\nhealth:get: \"\"\npools:get: *deny\n",
		"bom json":  "\ufeff" + `{"queues:delete": "role:admin or project_id:%(project_id)s and not role:reader", "health:get": "", "pools:get": "!"}`,
		"duplicate": `{"health:get": "!", "queues:delete": "role:admin or project_id:%(project_id)s and not role:reader", "health:get": "", "pools:get": "!"}`,
	} {
		p, _, err := ParsePolicy([]byte(content))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for rule, w := range want {
			if got, _ := p.Rule(rule); got != w {
				t.Errorf("%s: %s = %q, want %q", name, rule, got, w)
			}
		}
	}
}

func TestLoadPolicy_AnEmptyFileKeepsTheDefaults(t *testing.T) {
	for _, content := range []string{"", "\n", "# nothing yet\n", "{}", "null", "---\n", "~"} {
		p, notes := mustParse(t, content)
		if !p.Enforce("queues:create", member, ownProject) || p.Enforce("pools:get", member, ownProject) ||
			len(notes.Unknown)+len(notes.Undefined) != 0 {
			t.Errorf("%q did not leave the defaults alone", content)
		}
	}
}

func TestLoadPolicy_RefusesWhatOsloCannotEnforceOrWouldMisread(t *testing.T) {
	for name, content := range map[string]string{
		"a dangling or":              `{"queues:delete": "role:admin or "}`,
		"a leading and":              `{"queues:delete": "and role:admin"}`,
		"unbalanced parentheses":     `{"queues:delete": "(role:admin"}`,
		"two checks without an op":   `{"queues:delete": "role:a role:b"}`,
		"no colon":                   `{"queues:delete": "admin"}`,
		"blanks only":                `{"queues:delete": "  "}`,
		"a quoted word":              `{"queues:delete": "'role:admin'"}`,
		"a remote check":             `{"queues:delete": "http://policy.example/check"}`,
		"an empty kind":              `{"queues:delete": ":admin"}`,
		"a keyword kind":             `{"queues:delete": "not:admin"}`,
		"a dotted kind":              `{"queues:delete": "token.user:admin"}`,
		"a %r conversion":            `{"queues:delete": "project_id:%(project_id)r"}`,
		"a lone percent":             `{"queues:delete": "project_id:50%"}`,
		"a null rule (oslo: allow)":  `{"queues:delete": null}`,
		"false (oslo: allow)":        `{"queues:delete": false}`,
		"an object (oslo: its keys)": `{"queues:delete": {"role:admin": 1}}`,
		"a number":                   `{"queues:delete": 1}`,
		"a list of numbers":          `{"queues:delete": [1]}`,
		"a list three deep":          `{"queues:delete": [[["role:admin"]]]}`,
		"an empty check in a list":   `{"queues:delete": [[""]]}`,
		"a JSON list":                `["role:admin"]`,
		"a JSON string":              `"role:admin"`,
		"YAML 1.1 yes":               "queues:delete: yes\n",
		"YAML 1.1 on as a name":      "on: role:admin\n",
		"YAML sexagesimal":           "queues:delete: 1:30\n",
		"YAML empty value":           "queues:delete:\n",
		"YAML null":                  "queues:delete: ~\n",
		"YAML timestamp":             "queues:delete: 2024-01-01\n",
		"YAML merge key":             "base: &b {x: '@'}\n<<: *b\n",
		"YAML two documents":         "a: '@'\n---\nb: '!'\n",
		"YAML a custom tag":          "queues:delete: !admin role:admin\n",
		"YAML a sequence top":        "- role:admin\n",
		"YAML syntax":                "queues:delete: 'role:admin\n",
		"invalid UTF-8":              "{\"queues:delete\": \"role:\xff\"}",
		"a cycle":                    `{"a": "rule:a"}`,
	} {
		p, _, err := ParsePolicy([]byte(content))
		if err == nil {
			r, _ := p.Rule("queues:delete")
			t.Errorf("%s: %q was accepted (queues:delete = %q)", name, content, r)
		} else if !errors.Is(err, errSyntax) {
			t.Errorf("%s: error %v is not marked as a syntax error", name, err)
		}
	}
	if _, _, err := LoadPolicy(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing policy file was accepted")
	}
	_, _, err := LoadPolicy(writePolicy(t, "policy.yaml", "queues:delete: role:admin or\n"))
	if err == nil || !strings.Contains(err.Error(), "policy.yaml") || !strings.Contains(err.Error(), "queues:delete") {
		t.Errorf("the error %v does not name the file and the rule", err)
	}
}

func TestParseTemplate_ReadsPythonsDictFormatting(t *testing.T) {
	target := map[string]string{"project_id": "p1", "": "empty", "a b": "c"}
	for _, tc := range []struct {
		in, out string
		ok      bool
	}{
		{"plain", "plain", true},
		{"", "", true},
		{"%(project_id)s", "p1", true},
		{"x-%(project_id)s-%(project_id)s", "x-p1-p1", true},
		{"100%%", "100%", true},
		{"%%(project_id)s", "%(project_id)s", true},
		{"%()s", "empty", true},
		{"%(a b)s", "c", true},
		{"%(missing)s", "", false},
	} {
		tm, err := parseTemplate(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got, ok := tm.format(target); got != tc.out || ok != tc.ok {
			t.Errorf("%q = %q, %v; want %q, %v", tc.in, got, ok, tc.out, tc.ok)
		}
	}
	for _, bad := range []string{"%", "a%", "%s", "%d", "%(x)", "%(x)r", "%(x", "%(a(b)c)s", "%(x)-5s"} {
		if _, err := parseTemplate(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func TestTokenize_SplitsOnPythonsWhitespace(t *testing.T) {
	for _, sep := range []string{" ", "\t", "\n", "\x1c", "\x1f", "\u0085", "\u00a0", "\u2003", "\u3000", " \t\r\n"} {
		c, err := parseText("role:a" + sep + "or" + sep + "role:b")
		if err != nil || c.String() != "(role:a or role:b)" {
			t.Errorf("separator %q: %v, %v", sep, c, err)
		}
	}
	// Not whitespace to Python: part of the check.
	c, err := parseText("role:a\u200bor")
	if err != nil || c.String() != "role:a\u200bor" {
		t.Errorf("zero-width space: %v, %v", c, err)
	}
}
