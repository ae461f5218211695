package notify_test

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// postStream posts unique message bodies round-robin over fixed node
// addresses until stopped, recording which posts were acknowledged.
type postStream struct {
	mu        sync.Mutex
	acked     map[string]time.Time // body → when the acknowledged post was sent
	attempted map[string]bool
	failures  int

	stop chan struct{}
	done sync.WaitGroup
}

func startPostStream(nodes []*api, writers int, collection string) *postStream {
	s := &postStream{acked: map[string]time.Time{}, attempted: map[string]bool{}, stop: make(chan struct{})}
	for w := 0; w < writers; w++ {
		s.done.Add(1)
		go func(w int) {
			defer s.done.Done()
			for i := 0; ; i++ {
				select {
				case <-s.stop:
					return
				default:
				}
				body := fmt.Sprintf(`"w%d-%06d"`, w, i)
				s.mu.Lock()
				s.attempted[body] = true
				s.mu.Unlock()
				sent := time.Now()
				r, err := nodes[(w+i)%len(nodes)].request("POST", collection+"/messages", `{"messages": [{"body": `+body+`, "ttl": 3600}]}`)
				if err != nil || r.Status != http.StatusCreated {
					s.mu.Lock()
					s.failures++
					s.mu.Unlock()
					time.Sleep(10 * time.Millisecond) // a stopped node refuses at once
					continue
				}
				s.mu.Lock()
				s.acked[body] = sent
				s.mu.Unlock()
			}
		}(w)
	}
	return s
}

func (s *postStream) ackedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

func (s *postStream) finish() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.done.Wait()
}

// deliveryReport compares what a receiver got with what was acknowledged.
type deliveryReport struct {
	missing    []string
	duplicates int // extra copies of messages delivered more than once
	dupBodies  int // messages delivered more than once
	phantoms   []string
	lags       []time.Duration
}

func compareDeliveries(acked map[string]time.Time, attempted map[string]bool, got []delivery) deliveryReport {
	first := map[string]time.Time{}
	copies := map[string]int{}
	var rep deliveryReport
	for _, d := range got {
		b := messageBody(d.Body)
		copies[b]++
		if _, ok := first[b]; !ok {
			first[b] = d.At
		}
		if !attempted[b] && copies[b] == 1 {
			rep.phantoms = append(rep.phantoms, b)
		}
	}
	for b, at := range acked {
		f, ok := first[b]
		if !ok {
			rep.missing = append(rep.missing, b)
			continue
		}
		rep.lags = append(rep.lags, max(0, f.Sub(at)))
	}
	for _, n := range copies {
		if n > 1 {
			rep.dupBodies++
			rep.duplicates += n - 1
		}
	}
	sort.Strings(rep.missing)
	sort.Slice(rep.lags, func(i, j int) bool { return rep.lags[i] < rep.lags[j] })
	return rep
}

func (r deliveryReport) lagSummary() string {
	if len(r.lags) == 0 {
		return "no deliveries"
	}
	q := func(p float64) time.Duration { return r.lags[int(p*float64(len(r.lags)-1))].Round(time.Millisecond) }
	return fmt.Sprintf("p50 %s, p99 %s, max %s", q(0.5), q(0.99), q(1))
}

func TestDelivery_EveryPostArrivesAtLeastOnceAcrossAGracefulLeaderChange(t *testing.T) {
	c := testcluster.Start(t, 3)
	nodes := clientsOf(t, c, "p-failover")
	r := newReceiver(t, nil)
	const coll = "/v2/queues/stream"
	nodes[1].subscribe(coll, map[string]any{"subscriber": r.URL("/stream")})

	stream := startPostStream(nodes, 2, coll)
	t.Cleanup(stream.finish)
	waitAcked := func(n int) {
		deadline := time.Now().Add(60 * time.Second)
		for stream.ackedCount() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d posts acknowledged within 60 s, want %d", stream.ackedCount(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcked(150)
	victim := c.Leader()
	before := stream.ackedCount()
	stoppedAt := time.Now()
	c.Stop(victim)
	newLeader := c.Leader()
	t.Logf("stopped leader %s after %d acknowledged posts; %s leads %s later", victim.ID, before, newLeader.ID, time.Since(stoppedAt).Round(time.Millisecond))
	waitAcked(before + 150)
	stream.finish()

	stream.mu.Lock()
	acked, attempted, failures := stream.acked, stream.attempted, stream.failures
	stream.mu.Unlock()
	var rep deliveryReport
	deadline := time.Now().Add(60 * time.Second)
	for {
		rep = compareDeliveries(acked, attempted, r.deliveries())
		if len(rep.missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d posts acknowledged (%d failed attempts); %d notifications received; %d messages delivered more than once (%d extra copies); lag from sending the post to its first delivery %s",
		len(acked), failures, len(r.deliveries()), rep.dupBodies, rep.duplicates, rep.lagSummary())
	if len(rep.missing) > 0 {
		t.Fatalf("%d acknowledged posts were never delivered, e.g. %v", len(rep.missing), rep.missing[:min(10, len(rep.missing))])
	}
	if len(rep.phantoms) > 0 {
		t.Fatalf("notifications of messages never posted: %v", rep.phantoms)
	}
	// Every notification is the exact payload of its message.
	for _, d := range r.deliveries()[:20] {
		jsonEqual(t, "payload", d.Body, payload("stream", messageBody(d.Body), 3600))
	}
}
