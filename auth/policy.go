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
	for _, alt := range strings.Split(req, " or ") {
		alt = strings.TrimSpace(alt)
		switch {
		case alt == "" || alt == "@" || alt == "!":
		case strings.HasPrefix(alt, "role:") && len(alt) > len("role:"):
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
