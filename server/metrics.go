package server

import (
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/store"
)

// registerNodeMetrics exports Raft and Pebble state as gauges read at
// scrape time, and the FSM's batch sizes and durations as histograms.
func registerNodeMetrics(reg *prometheus.Registry, node *raftnode.Node, st *store.Store) {
	r := node.Raft()
	gauge := func(name, help string, fn func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
	}
	gauge("zaqar_raft_state", "Raft state: 0 follower, 1 candidate, 2 leader, 3 shutdown.", func() float64 {
		switch r.State() {
		case raft.Candidate:
			return 1
		case raft.Leader:
			return 2
		case raft.Shutdown:
			return 3
		}
		return 0
	})
	gauge("zaqar_raft_is_leader", "1 if this node is the Raft leader.", func() float64 {
		if r.State() == raft.Leader {
			return 1
		}
		return 0
	})
	gauge("zaqar_raft_term", "Current Raft term.", func() float64 { return float64(r.CurrentTerm()) })
	gauge("zaqar_raft_last_index", "Index of the last entry in the Raft log.", func() float64 { return float64(r.LastIndex()) })
	gauge("zaqar_raft_commit_index", "Raft commit index.", func() float64 { return float64(r.CommitIndex()) })
	gauge("zaqar_raft_applied_index", "Index of the last entry applied to the store.", func() float64 { return float64(node.FSM().AppliedIndex()) })
	gauge("zaqar_raft_last_contact_seconds", "Seconds since this follower last heard from the leader (0 on the leader).", func() float64 {
		if r.State() == raft.Leader {
			return 0
		}
		lc := r.LastContact()
		if lc.IsZero() {
			return -1
		}
		return time.Since(lc).Seconds()
	})
	gauge("zaqar_raft_voters", "Voters in the Raft configuration.", func() float64 {
		n := 0
		for _, m := range node.Members() {
			if m.Suffrage == "Voter" {
				n++
			}
		}
		return float64(n)
	})

	gauge("zaqar_pebble_disk_usage_bytes", "Bytes Pebble uses on disk.", func() float64 { return float64(st.Metrics().DiskSpaceUsage()) })
	gauge("zaqar_pebble_l0_files", "Files in Pebble's level 0.", func() float64 { return float64(st.Metrics().Levels[0].TablesCount) })
	gauge("zaqar_pebble_read_amplification", "Pebble read amplification.", func() float64 { return float64(st.Metrics().ReadAmp()) })
	gauge("zaqar_pebble_memtable_bytes", "Bytes in Pebble memtables.", func() float64 { return float64(st.Metrics().MemTable.Size) })
	gauge("zaqar_pebble_compactions", "Compactions Pebble has run.", func() float64 { return float64(st.Metrics().Compact.Count) })

}

// newApplyMetrics registers the FSM's batch histograms and returns the
// observer the FSM reports each applied batch to.
func newApplyMetrics(reg *prometheus.Registry) func(entries int, d time.Duration) {
	batch := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "zaqar_fsm_apply_batch_entries", Help: "Raft entries per applied FSM batch.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10),
	})
	dur := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "zaqar_fsm_apply_batch_seconds", Help: "Time to apply one FSM batch to the store.",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14),
	})
	reg.MustRegister(batch, dur)
	return func(entries int, d time.Duration) {
		batch.Observe(float64(entries))
		dur.Observe(d.Seconds())
	}
}
