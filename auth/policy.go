package auth

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// Policy maps rule names (Zaqar's operations, e.g. "queues:create") to
// rules in oslo.policy's language, and decides requests against them as
// oslo.policy's Enforcer does. The rule language is in policyrule.go,
// the file formats in policyfile.go; docs/security.md says what is
// supported.
type Policy struct {
	rules map[string]check
}

// Credentials describe the caller, as oslo.context describes it to
// oslo.policy. Checks see them under these names: "roles" (each role),
// "project_id" and "project" (ProjectID), "user_id" and "user" (UserID),
// and "is_admin" ("True" or "False"). An empty ProjectID or UserID is
// absent, so no check matches it.
type Credentials struct {
	Roles     []string
	ProjectID string
	UserID    string
	// IsAdmin is oslo.context's is_admin. Zaqar never sets it (its
	// request context keeps oslo.context's default, False), so
	// "is_admin:True" holds for no API caller there or here; it is for
	// callers inside the service.
	IsAdmin bool
}

// values returns the credential named key rendered as Python's str()
// renders it, every element for a list; nil if there is none.
func (c *Credentials) values(key string) []string {
	switch key {
	case "roles":
		return c.Roles
	case "project_id", "project":
		if c.ProjectID != "" {
			return []string{c.ProjectID}
		}
	case "user_id", "user":
		if c.UserID != "" {
			return []string{c.UserID}
		}
	case "is_admin":
		if c.IsAdmin {
			return []string{"True"}
		}
		return []string{"False"}
	}
	return nil
}

// DefaultRuleName is the rule oslo.policy applies to a rule name nobody
// defined (its policy_default_rule option). No default defines it.
const DefaultRuleName = "default"

// UpstreamDefaults are the rules Zaqar registers in code
// (zaqar/common/policies/*.py): the API behaves as upstream's without a
// policy file.
var UpstreamDefaults = map[string]string{
	// base.py
	"context_is_admin": "role:admin",
	"admin_or_owner":   "is_admin:True or project_id:%(project_id)s",
	// claims.py
	"claims:create": "", "claims:get": "", "claims:delete": "", "claims:update": "",
	// flavors.py
	"flavors:get_all": "", "flavors:create": "role:admin", "flavors:get": "",
	"flavors:delete": "role:admin", "flavors:update": "role:admin",
	// health.py
	"ping:get": "", "health:get": "role:admin",
	// messages.py
	"messages:get_all": "", "messages:create": "", "messages:get": "",
	"messages:delete": "", "messages:delete_all": "",
	// pools.py
	"pools:get_all": "role:admin", "pools:create": "role:admin", "pools:get": "role:admin",
	"pools:delete": "role:admin", "pools:update": "role:admin",
	// queues.py
	"queues:get_all": "", "queues:create": "", "queues:get": "", "queues:delete": "",
	"queues:update": "", "queues:stats": "", "queues:share": "", "queues:purge": "",
	// subscription.py
	"subscription:get_all": "", "subscription:create": "", "subscription:get": "",
	"subscription:delete": "", "subscription:update": "", "subscription:confirm": "",
	// topics.py
	"topics:get_all": "", "topics:create": "", "topics:get": "", "topics:delete": "",
	"topics:update": "", "topics:stats": "", "topics:purge": "",
}

// ServiceDefaults are the rules this service adds to upstream's.
var ServiceDefaults = map[string]string{
	// The /admin/cluster… routes: membership, leadership, drain, backup.
	"cluster:admin": "role:admin",
}

// DefaultPolicy returns upstream's defaults plus this service's.
func DefaultPolicy() *Policy {
	p, err := newPolicy(nil)
	if err != nil {
		panic(err) // the defaults are constants; a test parses them
	}
	return p
}

// defaultRules returns every default rule by name.
func defaultRules() map[string]string {
	d := make(map[string]string, len(UpstreamDefaults)+len(ServiceDefaults))
	for _, m := range []map[string]string{UpstreamDefaults, ServiceDefaults} {
		for name, rule := range m {
			d[name] = rule
		}
	}
	return d
}

// newPolicy lays the parsed rules of a file over the defaults, as oslo's
// Enforcer registers defaults for the names a file leaves out, and refuses
// rules that refer to themselves.
func newPolicy(file map[string]check) (*Policy, error) {
	p := &Policy{rules: make(map[string]check, len(file)+len(UpstreamDefaults)+len(ServiceDefaults))}
	for name, rule := range defaultRules() {
		c, err := parseText(rule)
		if err != nil {
			return nil, fmt.Errorf("default rule %q: %w", name, err)
		}
		p.rules[name] = c
	}
	for name, c := range file {
		p.rules[name] = c
	}
	if cycle := p.findCycle(); cycle != nil {
		return nil, fmt.Errorf("%w: rules refer to each other in a cycle: %s", errSyntax, strings.Join(cycle, " -> "))
	}
	return p, nil
}

// resolve returns the rule named name, or the default rule if name is not
// defined (oslo's Rules.__missing__).
func (p *Policy) resolve(name string) (check, bool) {
	if c, ok := p.rules[name]; ok {
		return c, true
	}
	c, ok := p.rules[DefaultRuleName]
	return c, ok
}

// Enforce reports whether a caller with creds may perform rule on target
// (the values "%(key)s" in a rule refers to). A rule nobody defined is
// decided by the "default" rule if the policy file defines one, and is
// denied otherwise.
func (p *Policy) Enforce(rule string, creds Credentials, target map[string]string) bool {
	c, ok := p.resolve(rule)
	return ok && c.eval(&evaluation{policy: p, creds: &creds, target: target})
}

// Defines reports whether the policy defines rule itself (not through the
// default rule).
func (p *Policy) Defines(rule string) bool {
	_, ok := p.rules[rule]
	return ok
}

// findCycle returns a chain of rule references that comes back to its
// start, or nil. A reference to an undefined rule goes to the default
// rule, as enforcing would. oslo only warns of cycles; enforcing one
// recurses until Python gives up, so here it stops the node.
func (p *Policy) findCycle() []string {
	const (
		unseen = iota
		open
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(name string) []string
	visit = func(name string) []string {
		switch state[name] {
		case open:
			i := slices.Index(path, name)
			return append(slices.Clone(path[i:]), name)
		case done:
			return nil
		}
		c, ok := p.rules[name]
		if !ok {
			return nil
		}
		state[name] = open
		path = append(path, name)
		var found []string
		references(c, func(ref string) {
			if found != nil {
				return
			}
			if _, ok := p.rules[ref]; !ok {
				ref = DefaultRuleName
			}
			found = visit(ref)
		})
		path = path[:len(path)-1]
		state[name] = done
		return found
	}
	for _, name := range sortedKeys(p.rules) {
		if cycle := visit(name); cycle != nil {
			return cycle
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Notes are what a policy file holds that oslo.policy accepts but that is
// probably a mistake. The node starts and logs them.
type Notes struct {
	// Unknown names the rules the file defines that neither this service
	// nor upstream Zaqar asks for, that are not "default", and that no
	// other rule refers to: most likely misspelt, and so without effect.
	Unknown []string
	// Undefined names the rules whose requirement refers ("rule:NAME") to
	// a rule nobody defines; that reference applies the "default" rule, or
	// denies if there is none (oslo warns of these too).
	Undefined []string
}

// LoadPolicy reads a policy file, YAML or JSON (oslo's policy.yaml or the
// older policy.json, with rules as text or as the legacy list of lists),
// and lays it over the defaults. An error (the file cannot be read, is not
// a mapping of rule names to rules, or a rule does not parse) means the
// node must not start; the notes are warnings.
func LoadPolicy(path string) (*Policy, Notes, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, Notes{}, fmt.Errorf("auth: read policy file: %w", err)
	}
	p, notes, err := ParsePolicy(b)
	if err != nil {
		return nil, Notes{}, fmt.Errorf("auth: policy file %s: %w", path, err)
	}
	return p, notes, nil
}

// ParsePolicy is LoadPolicy on the contents of a file.
func ParsePolicy(b []byte) (*Policy, Notes, error) {
	src, err := decodePolicyFile(b)
	if err != nil {
		return nil, Notes{}, err
	}
	file := make(map[string]check, len(src))
	for _, name := range sortedKeys(src) {
		var c check
		switch v := src[name].(type) {
		case string:
			c, err = parseText(v)
		case []any:
			c, err = parseList(v)
		}
		if err != nil {
			return nil, Notes{}, fmt.Errorf("rule %q: %w", name, err)
		}
		file[name] = c
	}
	p, err := newPolicy(file)
	if err != nil {
		return nil, Notes{}, err
	}
	return p, p.notes(file), nil
}

func (p *Policy) notes(file map[string]check) Notes {
	referenced := map[string]bool{}
	undefined := map[string]bool{}
	for name, c := range p.rules {
		references(c, func(ref string) {
			referenced[ref] = true
			if _, ok := p.rules[ref]; !ok {
				undefined[name] = true
			}
		})
	}
	defaults := defaultRules()
	var n Notes
	for _, name := range sortedKeys(file) {
		if _, ok := defaults[name]; !ok && name != DefaultRuleName && !referenced[name] {
			n.Unknown = append(n.Unknown, name)
		}
	}
	n.Undefined = sortedKeys(undefined)
	return n
}

// Rule returns the rule named name as oslo.policy would print it, and
// whether it is defined.
func (p *Policy) Rule(name string) (string, bool) {
	c, ok := p.rules[name]
	if !ok {
		return "", false
	}
	return c.String(), true
}
