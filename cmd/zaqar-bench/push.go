package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// pushConfig are the knobs of `zaqar-bench push`.
type pushConfig struct {
	targets          []string
	spawn            int
	serverBin        string
	spawnArgs        string
	subscribers      int
	subscriberKind   string // webhook or ws
	posts            int
	postWorkers      int
	postRate         float64
	project, token   string
	settle, deadline time.Duration
	jsonOut          string
}

// pushResults are a push run's report: the time from sending a post to
// each subscriber's first receipt of its notification, and for reference
// the posts' own latency (until their 201).
type pushResults struct {
	Started     time.Time    `json:"started"`
	Subscribers int          `json:"subscribers"`
	Kind        string       `json:"subscriber_kind"`
	Targets     []string     `json:"targets"`
	Posts       int          `json:"posts"`
	PostErrors  uint64       `json:"post_errors"`
	PostP50Ms   float64      `json:"post_p50_ms"`
	PostP99Ms   float64      `json:"post_p99_ms"`
	LastError   string       `json:"last_post_error,omitempty"`
	PostRate    float64      `json:"post_rate_limit,omitempty"`
	Seconds     float64      `json:"seconds"`
	Expected    int          `json:"expected_notifications"`
	Delivered   int          `json:"delivered"`
	Duplicates  uint64       `json:"duplicates"`
	P50Ms       float64      `json:"p50_ms"`
	P90Ms       float64      `json:"p90_ms"`
	P99Ms       float64      `json:"p99_ms"`
	MaxMs       float64      `json:"max_ms"`
	Nodes       []nodeResult `json:"nodes,omitempty"`
	CPUPerNote  float64      `json:"node_cpu_us_per_notification,omitempty"`
}

// pushBench runs `zaqar-bench push`: it subscribes receivers on this
// machine (a loopback HTTP server for webhooks, or websocket connections
// that subscribe themselves) to one queue, posts single messages through
// every target, and measures post → delivery.
func pushBench(args []string, out io.Writer) int {
	var c pushConfig
	fs := flag.NewFlagSet("zaqar-bench push", flag.ContinueOnError)
	targets := fs.String("targets", "http://127.0.0.1:8888", "REST URLs of the nodes, comma-separated (posts are spread over them)")
	fs.IntVar(&c.spawn, "spawn", 0, "start a local cluster of this many nodes (fsync on) instead of -targets")
	fs.StringVar(&c.serverBin, "server-bin", "./bin/zaqar-server", "zaqar-server binary for -spawn")
	fs.StringVar(&c.spawnArgs, "server-args", "", "extra flags for the spawned nodes, space-separated")
	fs.IntVar(&c.subscribers, "subscribers", 5, "subscribers of the queue")
	fs.StringVar(&c.subscriberKind, "subscriber", "webhook", "webhook (a loopback HTTP receiver that answers at once) or ws (websocket connections, spread over the nodes)")
	fs.IntVar(&c.posts, "posts", 2000, "single-message posts")
	fs.IntVar(&c.postWorkers, "post-workers", 6, "concurrent posters, spread over the targets")
	fs.Float64Var(&c.postRate, "post-rate", 0, "posts per second across all posters (0: as fast as they can)")
	fs.StringVar(&c.project, "project", "bench", "X-Project-ID to use")
	fs.StringVar(&c.token, "token", "", "X-Auth-Token (Keystone deployments)")
	fs.DurationVar(&c.deadline, "deadline", 60*time.Second, "how long to wait for the notifications after the last post")
	fs.StringVar(&c.jsonOut, "json", "", "also write the results as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if c.subscriberKind != "webhook" && c.subscriberKind != "ws" {
		fmt.Fprintln(os.Stderr, "zaqar-bench push: -subscriber is webhook or ws")
		return 2
	}
	c.targets = splitTargets(*targets)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cl *localCluster
	if c.spawn > 0 {
		var err error
		if cl, err = spawnCluster(ctx, c.serverBin, c.spawn, false, strings.Fields(c.spawnArgs)); err != nil {
			fmt.Fprintln(os.Stderr, "zaqar-bench push:", err)
			return 1
		}
		defer cl.stop()
		c.targets = cl.urls()
	}
	res, err := runPush(ctx, c, cl)
	if err != nil {
		fmt.Fprintln(os.Stderr, "zaqar-bench push:", err)
		return 1
	}
	res.print(out)
	if c.jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(c.jsonOut, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "zaqar-bench push:", err)
			return 1
		}
	}
	if res.Delivered < res.Expected {
		fmt.Fprintf(os.Stderr, "zaqar-bench push: %d of %d notifications arrived\n", res.Delivered, res.Expected)
		return 1
	}
	return 0
}

// pushReceipts records each (subscriber, post) pair's first arrival.
type pushReceipts struct {
	mu         sync.Mutex
	seen       map[[2]int]bool
	hist       histogram
	duplicates atomic.Uint64
	all        chan struct{} // closed when every expected receipt is in
	closed     bool
	expected   int
}

// checkAll closes all once every expected receipt is in; r.mu is held.
func (r *pushReceipts) checkAll() {
	if !r.closed && len(r.seen) >= r.expected {
		r.closed = true
		close(r.all)
	}
}

// receive records a notification payload that subscriber got now.
func (r *pushReceipts) receive(subscriber int, payload []byte) {
	now := time.Now()
	var doc struct {
		Body struct {
			N    int   `json:"n"`
			Sent int64 `json:"sent"`
		} `json:"body"`
	}
	if json.Unmarshal(payload, &doc) != nil || doc.Body.Sent == 0 {
		return // not one of the bench's notifications (a confirmation)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := [2]int{subscriber, doc.Body.N}
	if r.seen[k] {
		r.duplicates.Add(1)
		return
	}
	r.seen[k] = true
	r.hist.record(now.Sub(time.Unix(0, doc.Body.Sent)))
	r.checkAll()
}

func runPush(ctx context.Context, c pushConfig, cl *localCluster) (*pushResults, error) {
	httpc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	queue := "push-" + newID()[:8]
	rec := &pushReceipts{seen: map[[2]int]bool{}, all: make(chan struct{}), expected: c.subscribers * c.posts}
	rest := func(i int) *restClient {
		return &restClient{http: httpc, base: c.targets[i%len(c.targets)], clientID: newID(), project: c.project, authToken: c.token}
	}
	admin := rest(0)
	if _, _, err := admin.do(ctx, http.MethodPut, "/v2/queues/"+queue, nil, http.StatusCreated, http.StatusNoContent); err != nil {
		return nil, fmt.Errorf("create queue: %w", err)
	}
	switch c.subscriberKind {
	case "webhook":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var i int
			_, _ = fmt.Sscanf(r.URL.Path, "/s/%d", &i)
			b, _ := io.ReadAll(r.Body)
			w.WriteHeader(http.StatusNoContent)
			rec.receive(i, b)
		})}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		for i := 0; i < c.subscribers; i++ {
			doc := fmt.Sprintf(`{"subscriber": "http://%s/s/%d", "ttl": 3600}`, ln.Addr(), i)
			if _, _, err := admin.do(ctx, http.MethodPost, "/v2/queues/"+queue+"/subscriptions", []byte(doc), http.StatusCreated); err != nil {
				return nil, fmt.Errorf("subscribe: %w", err)
			}
		}
	case "ws":
		wsc := &http.Client{Transport: &http.Transport{}}
		token := c.token
		if token == "" {
			token = "noauth"
		}
		for i := 0; i < c.subscribers; i++ {
			target := c.targets[i%len(c.targets)]
			conn, err := dialWS(ctx, wsc, "ws"+strings.TrimPrefix(target, "http")+"/", newID(), c.project, token)
			if err != nil {
				return nil, fmt.Errorf("websocket: %w", err)
			}
			defer conn.close()
			if _, err := conn.call(ctx, "subscription_create", map[string]any{"queue_name": queue, "ttl": 3600}, nil, 201); err != nil {
				return nil, fmt.Errorf("subscribe a connection: %w", err)
			}
			go func(i int, conn *websocket.Conn) {
				for {
					_, b, err := conn.Read(ctx)
					if err != nil {
						return
					}
					rec.receive(i, b)
				}
			}(i, conn.conn)
		}
	}
	var sampler *resourceSampler
	if cl != nil {
		sampler = startSampler(cl)
	}
	began := time.Now()
	limiter := rate.NewLimiter(rate.Inf, 0)
	if c.postRate > 0 {
		limiter = rate.NewLimiter(rate.Limit(c.postRate), 1)
	}
	var next atomic.Int64
	var postErrs atomic.Uint64
	var lastErr atomic.Value
	var postMu sync.Mutex
	var postHist histogram
	var wg sync.WaitGroup
	for w := 0; w < c.postWorkers; w++ {
		wg.Add(1)
		go func(p *restClient) {
			defer wg.Done()
			for ctx.Err() == nil {
				n := int(next.Add(1))
				if n > c.posts || limiter.Wait(ctx) != nil {
					return
				}
				body := json.RawMessage(fmt.Sprintf(`{"n": %d, "sent": %d}`, n, time.Now().UnixNano()))
				sent := time.Now()
				err := p.post(ctx, queue, []json.RawMessage{body})
				if err == nil {
					postMu.Lock()
					postHist.record(time.Since(sent))
					postMu.Unlock()
				}
				if err != nil {
					postErrs.Add(1)
					lastErr.Store(err.Error())
					rec.mu.Lock()
					rec.expected -= c.subscribers // not known to be posted: not expected
					rec.checkAll()
					rec.mu.Unlock()
				}
			}
		}(rest(w))
	}
	wg.Wait()
	select {
	case <-rec.all:
	case <-time.After(c.deadline):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	elapsed := time.Since(began)
	res := &pushResults{
		Started: began.UTC(), Subscribers: c.subscribers, Kind: c.subscriberKind, Targets: c.targets, Posts: c.posts,
		PostErrors: postErrs.Load(), PostRate: c.postRate, Seconds: elapsed.Seconds(), Duplicates: rec.duplicates.Load(),
	}
	postMu.Lock()
	res.PostP50Ms, res.PostP99Ms = ms(postHist.quantile(.5)), ms(postHist.quantile(.99))
	postMu.Unlock()
	if e, ok := lastErr.Load().(string); ok {
		res.LastError = e
	}
	rec.mu.Lock()
	res.Expected, res.Delivered = rec.expected, len(rec.seen)
	h := &rec.hist
	res.P50Ms, res.P90Ms, res.P99Ms, res.MaxMs = ms(h.quantile(.5)), ms(h.quantile(.9)), ms(h.quantile(.99)), ms(h.max)
	rec.mu.Unlock()
	if sampler != nil {
		res.Nodes = sampler.stop(elapsed)
		cores := nodesCPUPercent(res.Nodes) / 100
		if res.Delivered > 0 {
			res.CPUPerNote = cores * elapsed.Seconds() / float64(res.Delivered) * 1e6
		}
	}
	if res.Delivered == 0 {
		return res, errors.New("no notification arrived")
	}
	return res, nil
}

func (r *pushResults) print(w io.Writer) {
	fmt.Fprintf(w, "zaqar-bench push: %d %s subscribers of one queue, %d single-message posts over %s in %.1fs",
		r.Subscribers, r.Kind, r.Posts, r.Targets, r.Seconds)
	if r.PostRate > 0 {
		fmt.Fprintf(w, " (paced at %.0f/s)", r.PostRate)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "notifications\tarrived\tduplicates\tpost errors\tp50 ms\tp90 ms\tp99 ms\tmax ms\tpost p50 ms\tpost p99 ms\t")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.1f\t%.2f\t%.2f\t\n", r.Expected, r.Delivered, r.Duplicates, r.PostErrors,
		r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs, r.PostP50Ms, r.PostP99Ms)
	tw.Flush()
	if r.LastError != "" {
		fmt.Fprintf(w, "  last post error: %.200s\n", r.LastError)
	}
	if r.CPUPerNote > 0 {
		fmt.Fprintf(w, "nodes' CPU per notification (all nodes, posts included): %.0f µs\n", r.CPUPerNote)
	}
}
