package auth

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Policy maps operation names (Zaqar's policy rules, e.g. "queues:create")
// to what they require. Rules are a small subset of oslo.policy's syntax:
// "" or "@" (anyone authenticated), "!" (nobody), "role:NAME" (callers
// holding NAME), and alternatives joined with " or ".
type Policy struct {
	rules map[string]string
}

// AdminOnly lists the rules that need the admin role by default (contract
// §14.3), plus this service's cluster administration.
var AdminOnly = []string{
	"health:get", "cluster:admin",
	"pools:get_all", "pools:get", "pools:create", "pools:update", "pools:delete",
	"flavors:create", "flavors:update", "flavors:delete",
}

// DefaultPolicy returns the reference's defaults: every operation open to
// authenticated callers except the admin-only ones.
func DefaultPolicy() *Policy {
	p := &Policy{rules: map[string]string{}}
	for _, r := range AdminOnly {
		p.rules[r] = "role:admin"
	}
	return p
}

// LoadPolicy reads a JSON object of rule → requirement and lays it over
// the defaults.
func LoadPolicy(path string) (*Policy, error) {
	p := DefaultPolicy()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read policy file: %w", err)
	}
	var overrides map[string]string
	if err := json.Unmarshal(b, &overrides); err != nil {
		return nil, fmt.Errorf("auth: policy file %s: %w", path, err)
	}
	for rule, req := range overrides {
		if err := checkRequirement(req); err != nil {
			return nil, fmt.Errorf("auth: policy file %s: rule %q: %w", path, rule, err)
		}
		p.rules[rule] = req
	}
	return p, nil
}

func checkRequirement(req string) error {
	alts := strings.Split(req, " or ")
	for _, alt := range alts {
		alt = strings.TrimSpace(alt)
		switch {
		case alt == "" && len(alts) > 1:
			// "role:admin or " must not silently mean "anyone".
			return fmt.Errorf("empty alternative in %q", req)
		case alt == "" || alt == "@" || alt == "!":
		case strings.HasPrefix(alt, "role:") && len(alt) > len("role:"):
			// A role name with blanks is oslo syntax this subset does not
			// speak ("role:a and role:b", "not role:a"); taken literally it
			// would name a role nobody holds.
			if strings.ContainsAny(alt, " \t\r\n") {
				return fmt.Errorf("unsupported requirement %q (only \"or\" combines requirements)", alt)
			}
		default:
			return fmt.Errorf("unsupported requirement %q (use \"\", \"@\", \"!\" or \"role:NAME\")", alt)
		}
	}
	return nil
}

// Allows reports whether a caller holding roles may perform rule.
func (p *Policy) Allows(rule string, roles []string) bool {
	req, ok := p.rules[rule]
	if !ok {
		return true
	}
	for _, alt := range strings.Split(req, " or ") {
		alt = strings.TrimSpace(alt)
		switch {
		case alt == "" || alt == "@":
			return true
		case alt == "!":
		case strings.HasPrefix(alt, "role:"):
			want := strings.TrimPrefix(alt, "role:")
			for _, r := range roles {
				if r == want {
					return true
				}
			}
		}
	}
	return false
}
