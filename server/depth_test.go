package server_test

import (
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// The leader's maintenance loop proposes BuildDepthIndex on its own: a new
// cluster ends with the depth index on every node, and the replicas stay
// byte-identical (store/DESIGN.md, "Depth").
func TestDepthIndex_TheLeaderBuildsItOnEveryNode(t *testing.T) {
	c := testcluster.Start(t, 3)
	waitDepthIndexed(t, c)
	c.WaitConverged(10 * time.Second)
}

// waitDepthIndexed waits until every node of c keeps the depth index.
func waitDepthIndexed(t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	indexed := func(n *testcluster.Node) bool {
		v := n.Server.Store().View()
		defer v.Close()
		ok, err := v.DepthIndexed()
		if err != nil {
			t.Fatalf("%s: %v", n.ID, err)
		}
		return ok
	}
	for _, n := range c.Nodes {
		c.Eventually(10*time.Second, func() bool { return indexed(n) }, "%s holds no depth index", n.ID)
	}
}
