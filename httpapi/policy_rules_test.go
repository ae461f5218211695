package httpapi

import (
	"os"
	"regexp"
	"testing"

	"github.com/zaqar-raft/zaqar/auth"
)

// A rule nobody defined is denied, so every rule a route asks for must be
// one the default policy defines (upstream's or cluster:admin). The routes
// name their rules as literals in these files.
func TestRoutes_EveryPolicyRuleIsDefinedByDefault(t *testing.T) {
	p := auth.DefaultPolicy()
	// Every string literal shaped like a rule name ("queues:get",
	// "cluster:admin") in the route table is one a route asks for.
	ruleRef := regexp.MustCompile(`"([a-z_]+:[a-z_]+)"`)
	found := 0
	for _, file := range []string{"router.go"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ruleRef.FindAllStringSubmatch(string(src), -1) {
			found++
			if m[1] != "" && !p.Defines(m[1]) {
				t.Errorf("%s asks for rule %q, which the default policy does not define", file, m[1])
			}
		}
	}
	if found < 40 {
		t.Errorf("found only %d rule references; has the way routes name their rules changed?", found)
	}
}
