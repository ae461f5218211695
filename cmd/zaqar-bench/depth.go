package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// depth measures what a claim, a stats call and a listing cost as a queue
// fills with claimed messages: `zaqar-bench depth` fills one queue per
// message count, claims up to each claimed count (claims of 20 held for an
// hour) and then times 20 sequential requests of each kind, reporting
// medians and the cluster's CPU per request (all nodes, from /proc).
func depth(args []string, out io.Writer) int {
	fs := flag.NewFlagSet("zaqar-bench depth", flag.ContinueOnError)
	target := fs.String("target", "http://127.0.0.1:8888", "REST URL of the node to send every request to")
	spawn := fs.Int("spawn", 0, "start a local cluster of this many nodes (fsync on) instead of using -target")
	serverBin := fs.String("server-bin", "./bin/zaqar-server", "zaqar-server binary for -spawn")
	messages := fs.String("messages", "0,100000,1000000", "message counts, comma-separated (one queue each)")
	claimedList := fs.String("claimed", "0,100000", "claimed counts, comma-separated, ascending (claims are added)")
	rounds := fs.Int("requests", 20, "sequential requests per measurement (the median is reported)")
	workers := fs.Int("fill-workers", 8, "concurrent posters and claimers while filling")
	project := fs.String("project", "depth", "X-Project-ID to use")
	settle := fs.Duration("settle", 2*time.Minute, "before measuring, wait up to this long for the spawned nodes to go quiet (the compactions a fill leaves behind); a fixed pause with -target")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ns, err1 := parseCounts(*messages)
	cs, err2 := parseCounts(*claimedList)
	if err1 != nil || err2 != nil || !slices.IsSorted(cs) {
		fmt.Fprintln(os.Stderr, "zaqar-bench depth: -messages and -claimed take ascending counts, comma-separated")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	base := strings.TrimRight(*target, "/")
	var cl *localCluster
	if *spawn > 0 {
		var err error
		if cl, err = spawnCluster(ctx, *serverBin, *spawn, false, nil); err != nil {
			fmt.Fprintln(os.Stderr, "zaqar-bench depth:", err)
			return 1
		}
		defer cl.stop()
		base = cl.urls()[0]
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 5 * time.Minute}
	mk := func(clientID string) *restClient {
		return &restClient{http: hc, base: base, clientID: clientID, project: *project}
	}
	producer, consumer, observer := mk("3f1c2a70-0000-4000-8000-000000000001"), mk("3f1c2a70-0000-4000-8000-000000000002"), mk("3f1c2a70-0000-4000-8000-000000000003")
	fmt.Fprintf(out, "| messages | claimed | claim 10 + release | stats | list 10 (claimed excluded) | node CPU per request (claim+release / stats / list) |\n|---|---|---|---|---|---|\n")
	for _, n := range ns {
		queue := fmt.Sprintf("depth-%d", n)
		start := time.Now()
		if err := fill(ctx, producer, queue, n, *workers); err != nil {
			fmt.Fprintln(os.Stderr, "zaqar-bench depth: fill:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "filled %s with %d messages in %s\n", queue, n, time.Since(start).Round(time.Second))
		have := 0
		for _, c := range cs {
			if c > n {
				continue
			}
			start := time.Now()
			got, err := claimUpTo(ctx, consumer, queue, c-have, *workers)
			have += got
			if err != nil {
				fmt.Fprintln(os.Stderr, "zaqar-bench depth: claim:", err)
				return 1
			}
			fmt.Fprintf(os.Stderr, "claimed %d of %s in %s\n", have, queue, time.Since(start).Round(time.Second))
			quiet, waited := settleDown(ctx, cl, *settle)
			fmt.Fprintf(os.Stderr, "waited %s for the nodes to go quiet (quiet: %v)\n", waited.Round(time.Second), quiet)
			row := make([]time.Duration, 3)
			cpu := make([]float64, 3)
			ops := []func() error{
				func() error { return claimRelease(ctx, consumer, queue) },
				func() error {
					_, _, err := observer.do(ctx, http.MethodGet, "/v2/queues/"+queue+"/stats", nil, http.StatusOK)
					return err
				},
				func() error {
					_, _, err := observer.do(ctx, http.MethodGet, "/v2/queues/"+queue+"/messages?limit=10", nil, http.StatusOK, http.StatusNoContent)
					return err
				},
			}
			for i, op := range ops {
				var err error
				if row[i], cpu[i], err = measure(cl, *rounds, op); err != nil {
					fmt.Fprintln(os.Stderr, "zaqar-bench depth:", err)
					return 1
				}
			}
			fmt.Fprintf(out, "| %d | %d | %s | %s | %s | %.0f / %.0f / %.0f µs |\n", n, have, msStr(row[0]), msStr(row[1]), msStr(row[2]), cpu[0], cpu[1], cpu[2])
		}
	}
	return 0
}

// settleDown waits until the spawned nodes together use under 15% of a
// core for two seconds in a row (three idle nodes use about 10%), or at most limit, and reports whether they
// did and how long it waited. Without spawned nodes it pauses for limit.
func settleDown(ctx context.Context, cl *localCluster, limit time.Duration) (bool, time.Duration) {
	start := time.Now()
	if cl == nil {
		select {
		case <-ctx.Done():
		case <-time.After(limit):
		}
		return false, time.Since(start)
	}
	const window = 2 * time.Second
	for time.Since(start) < limit && ctx.Err() == nil {
		before := clusterTicks(cl)
		time.Sleep(window)
		// /proc counts in clock ticks of 10 ms: 15% of a core over 2 s
		// is 30 ticks.
		if clusterTicks(cl)-before < uint64(window.Seconds()*clockTicks*0.15) {
			return true, time.Since(start)
		}
	}
	return false, time.Since(start)
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func msStr(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// measure runs op rounds times in sequence and returns the median latency
// and the CPU the cluster's nodes spent per request (µs; 0 without -spawn).
func measure(cl *localCluster, rounds int, op func() error) (time.Duration, float64, error) {
	before := clusterTicks(cl)
	var ds []time.Duration
	for i := 0; i < rounds; i++ {
		start := time.Now()
		if err := op(); err != nil {
			return 0, 0, err
		}
		ds = append(ds, time.Since(start))
	}
	ticks := clusterTicks(cl) - before
	slices.Sort(ds)
	// /proc counts in clock ticks of 10 ms (USER_HZ 100 on Linux).
	return ds[len(ds)/2], float64(ticks) * 10000 / float64(rounds), nil
}

func clusterTicks(cl *localCluster) uint64 {
	if cl == nil {
		return 0
	}
	var t uint64
	for _, nd := range cl.nodes {
		if nd.cmd == nil || nd.cmd.Process == nil {
			continue
		}
		if st, err := readProc(nd.cmd.Process.Pid); err == nil {
			t += st.cpuTicks
		}
	}
	return t
}

// fill posts n messages (a day's TTL, batches of 10) to queue.
func fill(ctx context.Context, c *restClient, queue string, n, workers int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := int(next.Add(10)) - 10
				if from >= n {
					return
				}
				var bodies []json.RawMessage
				for i := from; i < min(from+10, n); i++ {
					bodies = append(bodies, json.RawMessage(`{"n":`+strconv.Itoa(i)+`,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`))
				}
				doc := strings.Replace(string(postDoc(bodies)), `"ttl": 3600`, `"ttl": 86400`, -1)
				if _, _, err := c.do(ctx, http.MethodPost, "/v2/queues/"+queue+"/messages", []byte(doc), http.StatusCreated); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// claimUpTo claims n more messages of queue in claims of 20 held for an
// hour, and returns how many it claimed.
func claimUpTo(ctx context.Context, c *restClient, queue string, n, workers int) (int, error) {
	var left, got atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				want := min(20, left.Add(-20)+20)
				if want <= 0 {
					return
				}
				out, code, err := c.do(ctx, http.MethodPost, "/v2/queues/"+queue+"/claims?limit="+strconv.Itoa(int(want)),
					[]byte(`{"ttl": 3600, "grace": 60}`), http.StatusCreated, http.StatusNoContent)
				if err != nil {
					errs <- err
					return
				}
				if code == http.StatusNoContent {
					return
				}
				var doc struct {
					Messages []json.RawMessage `json:"messages"`
				}
				if err := json.Unmarshal(out, &doc); err != nil {
					errs <- err
					return
				}
				got.Add(int64(len(doc.Messages)))
			}
		}()
	}
	wg.Wait()
	close(errs)
	return int(got.Load()), <-errs
}

// claimRelease claims up to 10 messages (60 s) and releases the claim.
func claimRelease(ctx context.Context, c *restClient, queue string) error {
	msgs, err := c.claim(ctx, queue, 10, 0)
	if err != nil || len(msgs) == 0 {
		return err
	}
	_, _, err = c.do(ctx, http.MethodDelete, "/v2/queues/"+queue+"/claims/"+msgs[0].claimID, nil, http.StatusNoContent)
	return err
}
