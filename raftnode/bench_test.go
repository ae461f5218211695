package raftnode_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/internal/ids"
	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/server"
	"github.com/zaqar-raft/zaqar/store"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// BenchmarkPropose_ThreeNodes measures the replicated core without HTTP:
// three nodes in this process (real Raft over loopback TCP, fsync on, real
// Pebble), and proposers calling Node.Propose on the leader with posts of 1
// or 10 messages of 256 bytes, once with each Raft log store. One op is
// one proposal.
//
// Besides the rate it reports the process's CPU time (user + system, every
// node together) per message: the cost of replicating and applying a
// message three times, before any request parsing, forwarding or load
// generator. docs/performance.md uses it as the floor under the REST
// figures.
func BenchmarkPropose_ThreeNodes(b *testing.B) {
	for _, logStore := range []string{raftnode.LogStoreBolt, raftnode.LogStoreWAL} {
		for _, c := range []struct{ perPost, proposers int }{{1, 40}, {10, 64}} {
			b.Run(fmt.Sprintf("log=%s/msgs=%d/proposers=%d", logStore, c.perPost, c.proposers), func(b *testing.B) {
				benchPropose(b, logStore, c.perPost, c.proposers)
			})
		}
	}
}

func benchPropose(b *testing.B, logStore string, perPost, proposers int) {
	node := benchCluster(b, logStore)
	body := []byte(fmt.Sprintf(`{"pad":"%0*d"}`, 256-10, 0))
	ctx := context.Background()

	var next atomic.Int64
	cpu0 := cpuTime(b)
	b.ResetTimer()
	var g errgroup.Group
	for w := 0; w < proposers; w++ {
		g.Go(func() error {
			for next.Add(1) <= int64(b.N) {
				post := &fsm.PostMessages{Project: "bench", Queue: fmt.Sprintf("q%d", w%4),
					ClientID: "0123456789abcdef0123456789abcdef", DefaultTTL: 3600}
				for i := 0; i < perPost; i++ {
					post.Messages = append(post.Messages, store.NewMessage{ID: ids.New(), TTL: 3600, Delay: -1, Body: body})
				}
				if err := propose(ctx, node, post); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := g.Wait()
	b.StopTimer()
	if err != nil {
		b.Fatalf("propose: %v", err)
	}
	msgs := float64(b.N * perPost)
	b.ReportMetric(msgs/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/msgs, "cpu-µs/msg")
}

// BenchmarkPropose_PacedLatency measures the latency of single-message
// posts proposed on the leader at a fixed rate (open loop: each proposal
// starts on schedule whatever the earlier ones are doing): at 650/s, about
// half the REST peak of single posts in docs/performance.md, and at about
// half of what BenchmarkPropose_ThreeNodes reaches with each log store. It
// reports the p50, p99 and max latency: what a write costs in the
// replicated core before HTTP and the load generator add theirs.
func BenchmarkPropose_PacedLatency(b *testing.B) {
	for _, c := range []struct {
		logStore string
		perSec   int
	}{{raftnode.LogStoreBolt, 650}, {raftnode.LogStoreBolt, 3000}, {raftnode.LogStoreWAL, 650}, {raftnode.LogStoreWAL, 5500}} {
		b.Run(fmt.Sprintf("log=%s/rate=%d", c.logStore, c.perSec), func(b *testing.B) {
			benchPaced(b, c.logStore, c.perSec)
		})
	}
}

func benchPaced(b *testing.B, logStore string, perSec int) {
	node := benchCluster(b, logStore)
	body := []byte(`{"pad":"x"}`)
	latencies := make([]time.Duration, b.N)
	var g errgroup.Group
	interval := time.Second / time.Duration(perSec)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		g.Go(func() error {
			post := &fsm.PostMessages{Project: "bench", Queue: fmt.Sprintf("q%d", i%4),
				ClientID: "0123456789abcdef0123456789abcdef", DefaultTTL: 3600,
				Messages: []store.NewMessage{{ID: ids.New(), TTL: 3600, Delay: -1, Body: body}}}
			t0 := time.Now()
			err := propose(context.Background(), node, post)
			latencies[i] = time.Since(t0)
			return err
		})
	}
	err := g.Wait()
	b.StopTimer()
	if err != nil {
		b.Fatalf("propose: %v", err)
	}
	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "posts/s")
	b.ReportMetric(ms(latencies[len(latencies)/2]), "p50-ms")
	b.ReportMetric(ms(latencies[len(latencies)*99/100]), "p99-ms")
	b.ReportMetric(ms(latencies[len(latencies)-1]), "max-ms")
}

// benchCluster starts three nodes with fsync on and the given log store
// and returns the leader.
func benchCluster(b *testing.B, logStore string) *raftnode.Node {
	cl := testcluster.Start(b, 3, testcluster.WithConfig(func(cfg *server.Config) {
		cfg.Raft.NoFsync = false
		cfg.Raft.LogStore = logStore
		cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout = time.Second, time.Second
		cfg.Raft.RaftLogLevel = "off" // shutdown chatter would interleave with the results
	}))
	return cl.Leader().Server.Node()
}

// propose proposes post and fails unless it was committed and applied.
func propose(ctx context.Context, node *raftnode.Node, post *fsm.PostMessages) error {
	res, err := node.Propose(ctx, post)
	if err != nil {
		return err
	}
	if st := res.Results[0].Status; st != fsm.StatusOK {
		return fmt.Errorf("post refused: %v", st)
	}
	return nil
}

// cpuTime is the user plus system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
