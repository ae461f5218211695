package auth

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// oracle is testdata/policy/oracle.json, written by gen_oracle.py from
// Zaqar's source and Debian's oslo.policy.
type oracle struct {
	ZaqarCommit string                       `json:"zaqar_commit"`
	OsloPolicy  string                       `json:"oslo_policy"`
	Callers     map[string]oracleCaller      `json:"callers"`
	Targets     map[string]map[string]string `json:"targets"`
	Decisions   [][]any                      `json:"decisions"`
	Parses      []oracleParse                `json:"parses"`
	Defaults    map[string]string            `json:"defaults"`
}

type oracleCaller struct {
	Roles     []string `json:"roles"`
	ProjectID string   `json:"project_id"`
	UserID    string   `json:"user_id"`
	IsAdmin   bool     `json:"is_admin"`
}

type oracleParse struct {
	Text        *string `json:"text"`
	List        []any   `json:"list"`
	Oslo        *string `json:"oslo"` // nil: oslo fails on it
	RefusedHere string  `json:"refused_here"`
}

func loadOracle(t *testing.T) *oracle {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "policy", "oracle.json"))
	if err != nil {
		t.Fatal(err)
	}
	var o oracle
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	return &o
}

func TestDefaultPolicy_IsExactlyUpstreamsDefaultsPlusClusterAdmin(t *testing.T) {
	o := loadOracle(t)
	if len(o.Defaults) == 0 {
		t.Fatal("the oracle lists no upstream defaults")
	}
	for name, rule := range o.Defaults {
		if got, ok := UpstreamDefaults[name]; !ok || got != rule {
			t.Errorf("upstream %q = %q; UpstreamDefaults has %q (defined: %v)", name, rule, got, ok)
		}
	}
	for name := range UpstreamDefaults {
		if _, ok := o.Defaults[name]; !ok {
			t.Errorf("UpstreamDefaults has %q, which upstream (commit %s) does not define", name, o.ZaqarCommit)
		}
	}
	p := DefaultPolicy()
	for name, rule := range defaultRules() {
		want, err := parseText(rule)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := p.Rule(name); got != want.String() {
			t.Errorf("DefaultPolicy %q = %q, want %q", name, got, want)
		}
	}
	if got, _ := p.Rule("cluster:admin"); got != "role:admin" {
		t.Errorf("cluster:admin = %q, want role:admin", got)
	}
	if len(p.rules) != len(UpstreamDefaults)+1 {
		t.Errorf("DefaultPolicy defines %d rules, want upstream's %d and cluster:admin", len(p.rules), len(UpstreamDefaults))
	}
}

// Every row of the table: Go decides as oslo.policy decided, for each
// policy file, rule (every rule the file and the defaults define, and some
// nobody defines), caller and target.
func TestEnforce_DecidesAsOsloPolicyOnEveryRowOfTheOracle(t *testing.T) {
	o := loadOracle(t)
	if len(o.Decisions) < 1000 {
		t.Fatalf("only %d decisions in the oracle", len(o.Decisions))
	}
	policies := map[string]*Policy{"": DefaultPolicy()}
	files := map[string]bool{}
	for _, row := range o.Decisions {
		file, rule, caller, target, want := row[0].(string), row[1].(string), row[2].(string), row[3].(string), row[4].(bool)
		files[file] = true
		p, ok := policies[file]
		if !ok {
			var err error
			p, _, err = LoadPolicy(filepath.Join("testdata", "policy", file))
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			policies[file] = p
		}
		c, ok := o.Callers[caller]
		tgt, ok2 := o.Targets[target]
		if !ok || !ok2 {
			t.Fatalf("row %v names an unknown caller or target", row)
		}
		creds := Credentials{Roles: c.Roles, ProjectID: c.ProjectID, UserID: c.UserID, IsAdmin: c.IsAdmin}
		if got := p.Enforce(rule, creds, tgt); got != want {
			r, _ := p.Rule(rule)
			t.Errorf("%s: Enforce(%q = %q, %s, target %s) = %v, oslo.policy says %v", file, rule, r, caller, target, got, want)
		}
	}
	for _, f := range []string{"", "zaqar.policy.yaml", "zaqar.policy.json", "zaqar-2017.policy.json", "operators.yaml", "legacy-lists.json", "random.yaml"} {
		if !files[f] {
			t.Errorf("the oracle has no decisions for policy file %q", f)
		}
	}
}

// Every rule text of the table parses to the tree oslo.policy builds (the
// same str()), and is refused when oslo fails on it (cannot understand it,
// or raises when enforcing it) or where this service is deliberately
// stricter.
func TestParse_BuildsOsloPolicysTreeOrRefusesWhereOsloFails(t *testing.T) {
	o := loadOracle(t)
	stricter := 0
	for _, row := range o.Parses {
		var c check
		var err error
		var what any
		if row.Text != nil {
			what = *row.Text
			c, err = parseText(*row.Text)
		} else {
			what = row.List
			c, err = parseList(row.List)
		}
		switch {
		case row.Oslo == nil:
			if err == nil {
				t.Errorf("%q: oslo fails on it, Go parsed it as %q", what, c)
			}
		case row.RefusedHere != "":
			stricter++
			if err == nil {
				t.Errorf("%q (%s): accepted as %q, should be refused", what, row.RefusedHere, c)
			}
		case err != nil:
			t.Errorf("%q: oslo reads %q, Go refuses: %v", what, *row.Oslo, err)
		case c.String() != *row.Oslo:
			t.Errorf("%q: Go reads %q, oslo %q", what, c, *row.Oslo)
		}
	}
	if stricter == 0 {
		t.Error("the oracle lists no deliberately stricter cases")
	}
}

func TestLoadPolicy_ZaqarsSamplePoliciesLoadUnchanged(t *testing.T) {
	for file, unknown := range map[string][]string{
		"zaqar.policy.yaml.sample": nil,
		"zaqar.policy.yaml":        nil,
		"zaqar.policy.json":        nil,
		// The last policy.json upstream shipped (2017) defines a rule no
		// code ever asked for.
		"zaqar-2017.policy.json": {"claims:get_all"},
	} {
		p, notes, err := LoadPolicy(filepath.Join("testdata", "policy", file))
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if !slices.Equal(notes.Unknown, unknown) || len(notes.Undefined) != 0 {
			t.Errorf("%s: notes %+v, want unknown %v", file, notes, unknown)
		}
		if file == "zaqar-2017.policy.json" {
			continue // its rules differ in form ("rule:context_is_admin"); the oracle checks their decisions
		}
		for name := range UpstreamDefaults {
			got, _ := p.Rule(name)
			want, _ := DefaultPolicy().Rule(name)
			if got != want {
				t.Errorf("%s: %q = %q, want the default %q", file, name, got, want)
			}
		}
	}
}

// The random rules of the oracle print as rules that read back to the same
// tree.
func TestPolicy_PrintedRulesParseBackToThemselves(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "policy", "random.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := mustParse(t, string(b))
	for name, c := range p.rules {
		again, err := parseText(c.String())
		if err != nil || again.String() != c.String() {
			t.Errorf("%s: %q printed, read back as %v (%v)", name, c, again, err)
		}
	}
}
