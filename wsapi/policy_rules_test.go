package wsapi

import (
	"testing"

	"github.com/zaqar-raft/zaqar/auth"
)

// A rule nobody defined is denied, so every rule an action asks for must
// be one the default policy defines (upstream's or cluster:admin).
func TestActions_EveryPolicyRuleIsDefinedByDefault(t *testing.T) {
	p := auth.DefaultPolicy()
	for name, a := range actions {
		if a.rule != "" && !p.Defines(a.rule) {
			t.Errorf("action %s asks for rule %q, which the default policy does not define", name, a.rule)
		}
	}
}
