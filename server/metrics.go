package server

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/service"
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
	gauge("zaqar_pebble_write_stalls", "Write stalls Pebble has had (writes delayed behind flushes or compactions).", func() float64 {
		n, _ := st.WriteStalls()
		return float64(n)
	})
	gauge("zaqar_pebble_write_stall_seconds", "Total time Pebble's writes have been stalled.", func() float64 {
		_, d := st.WriteStalls()
		return d.Seconds()
	})
	reg.MustRegister(&queueCollector{store: st, top: 20})

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

// nodeMetrics are histograms fed by the Raft node's observers.
type nodeMetrics struct {
	commitSeconds  *prometheus.HistogramVec
	snapshotSecs   prometheus.Histogram
	snapshotBytes  prometheus.Gauge
	snapshotsTotal prometheus.Counter
}

func newNodeMetrics(reg *prometheus.Registry) *nodeMetrics {
	m := &nodeMetrics{
		commitSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zaqar_raft_commit_seconds",
			Help:    "Time from proposing an entry on the leader to its applied result, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"outcome"}),
		snapshotSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "zaqar_raft_snapshot_seconds", Help: "Time to stream a Raft snapshot of the store.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		snapshotBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zaqar_raft_snapshot_bytes", Help: "Size of the last Raft snapshot persisted.",
		}),
		snapshotsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zaqar_raft_snapshots_total", Help: "Raft snapshots persisted.",
		}),
	}
	reg.MustRegister(m.commitSeconds, m.snapshotSecs, m.snapshotBytes, m.snapshotsTotal)
	return m
}

func (m *nodeMetrics) commit(d time.Duration, ok bool) {
	outcome := "committed"
	if !ok {
		outcome = "failed"
	}
	m.commitSeconds.WithLabelValues(outcome).Observe(d.Seconds())
}

func (m *nodeMetrics) snapshot(bytes int64, d time.Duration) {
	m.snapshotSecs.Observe(d.Seconds())
	m.snapshotBytes.Set(float64(bytes))
	m.snapshotsTotal.Inc()
}

// queueCollector exports the deepest queues' depth and oldest message age
// (only the top N, so label cardinality stays bounded however many queues
// tenants make) and the number of active claims. Results are computed at
// most every 10 seconds.
type queueCollector struct {
	store *store.Store
	top   int

	mu      sync.Mutex
	at      time.Time
	depths  []store.QueueDepth
	claims  int
	scanErr error
}

var (
	queueDepthDesc = prometheus.NewDesc("zaqar_queue_messages",
		"Messages stored in a queue, for the deepest queues only (topics have queue=\"topics/<name>\").", []string{"project", "queue"}, nil)
	queueAgeDesc = prometheus.NewDesc("zaqar_queue_oldest_message_age_seconds",
		"Age of the oldest unexpired message, for the deepest queues only.", []string{"project", "queue"}, nil)
	claimsDesc = prometheus.NewDesc("zaqar_claims_active", "Claims that have not expired, in every queue.", nil, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- queueAgeDesc
	ch <- claimsDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	if time.Since(c.at) > 10*time.Second {
		now := time.Now()
		v := c.store.View()
		c.depths, c.scanErr = v.DeepestQueues(c.top, now.UnixNano())
		if c.scanErr == nil {
			c.claims, c.scanErr = v.ActiveClaims(now.UnixNano())
		}
		v.Close()
		c.at = now
	}
	depths, claims, err := c.depths, c.claims, c.scanErr
	c.mu.Unlock()
	if err != nil {
		return
	}
	for _, d := range depths {
		project, queue := service.SplitScope(d.Project, d.Queue)
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(d.Messages), project, queue)
		ch <- prometheus.MustNewConstMetric(queueAgeDesc, prometheus.GaugeValue, float64(d.OldestAge), project, queue)
	}
	ch <- prometheus.MustNewConstMetric(claimsDesc, prometheus.GaugeValue, float64(claims))
}
