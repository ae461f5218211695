package fsm_test

import (
	"testing"

	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/fsm"
)

// applyOne applies cmd as the entry at index and returns its result.
func (n *node) applyOne(index uint64, cmd fsm.Command) fsm.Result {
	n.t.Helper()
	out := n.fsm.ApplyBatch([]*raft.Log{cmdLog(index, t0, cmd)})
	return out[0].(*fsm.EntryResult).Results[0]
}

func TestCatalogCommands_ReportWhyTheCatalogRefusedAChange(t *testing.T) {
	n := newNode(t)
	pool := func(name, addr string) *fsm.CreatePool {
		return &fsm.CreatePool{Name: name, URI: "zaqar+raft://" + addr, Addresses: []string{addr}, Weight: 10, Options: []byte(`{}`)}
	}
	steps := []struct {
		name string
		cmd  fsm.Command
		want fsm.Result
	}{
		{"create a", pool("a", "n1:7001"), fsm.Result{Changed: true}},
		{"create a again", pool("a", "n2:7001"), fsm.Result{Status: fsm.StatusConflict}},
		{"create b on a's address", pool("b", "n1:7001"), fsm.Result{Status: fsm.StatusConflict, ID: "a"}},
		{"update a missing pool", &fsm.UpdatePool{Name: "zz"}, fsm.Result{Status: fsm.StatusNotFound}},
		{"flavor naming a missing pool", &fsm.PutFlavor{Project: "p", Name: "f", SetPools: true, Pools: []string{"a", "nope"}}, fsm.Result{Status: fsm.StatusNotFound, ID: "nope"}},
		{"flavor of a", &fsm.PutFlavor{Project: "p", Name: "f", SetPools: true, Pools: []string{"a"}}, fsm.Result{Changed: true}},
		{"delete a in a flavor", &fsm.DeletePool{Name: "a"}, fsm.Result{Status: fsm.StatusInUse, ID: "f"}},
		{"delete the flavor", &fsm.DeleteFlavor{Project: "p", Name: "f"}, fsm.Result{Changed: true}},
		{"delete it again", &fsm.DeleteFlavor{Project: "p", Name: "f"}, fsm.Result{Status: fsm.StatusNotFound}},
		{"delete a", &fsm.DeletePool{Name: "a"}, fsm.Result{Changed: true}},
	}
	for i, s := range steps {
		got := n.applyOne(uint64(i+1), s.cmd)
		if got.Status != s.want.Status || got.Changed != s.want.Changed || got.ID != s.want.ID {
			t.Fatalf("%s: %+v, want %+v", s.name, got, s.want)
		}
	}
}
