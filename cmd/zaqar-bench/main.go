// Command zaqar-bench puts a Zaqar v2 cluster under load through its real
// REST or websocket API and reports throughput and latency, modelled on
// Zaqar's own zaqar-bench: producers post, consumers claim and delete,
// observers list, each role with a number of concurrent workers spread over
// the target nodes.
//
//	zaqar-bench -targets http://n1:8888,http://n2:8888 -time 60s
//	zaqar-bench -spawn 3 -time 2m          # starts a local 3-node cluster (fsync on)
//	zaqar-bench -spawn 3 -tls -time 2m     # the same with https/wss and mutual TLS between nodes
//	zaqar-bench -targets https://n1:8888 -ca ca.pem
//	zaqar-bench pools -duration 12s        # one pool against two, pinned with taskset (pools.go)
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
)

// config holds the knobs; the role/worker names follow zaqar-bench's
// producer/consumer/observer processes and workers.
type config struct {
	targets                    []string
	transport                  string
	duration, warmup           time.Duration
	producers, producerWorkers int
	consumers, consumerWorkers int
	observers, observerWorkers int
	queues                     int
	messageSize                int
	perPost, perClaim, perList int
	// claimWait is the seconds a claim waits for a message (?wait=, an
	// extension of this service); 0 claims as Zaqar does.
	claimWait       int
	project, token  string
	jsonOut         string
	spawn           int
	serverBin       string
	spawnArgs       string
	killLeaderAfter time.Duration
	postRate        float64
	noKeepAlive     bool
	// tls are the client's TLS files for https/wss targets; spawnTLS
	// starts the spawned nodes with TLS on both ports.
	tls      tlsconf.Files
	spawnTLS bool
}

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

// splitTargets reads a comma-separated list of base URLs, trailing
// slashes dropped.
func splitTargets(list string) []string {
	var out []string
	for _, t := range strings.Split(list, ",") {
		if t = strings.TrimRight(strings.TrimSpace(t), "/"); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func run(args []string, out io.Writer) int {
	if len(args) > 0 && args[0] == "compare" {
		return compare(args[1:], out)
	}
	if len(args) > 0 && args[0] == "depth" {
		return depth(args[1:], out)
	}
	if len(args) > 0 && args[0] == "pools" {
		return poolsBench(args[1:], out)
	}
	if len(args) > 0 && args[0] == "push" {
		return pushBench(args[1:], out)
	}
	var c config
	fs := flag.NewFlagSet("zaqar-bench", flag.ContinueOnError)
	targets := fs.String("targets", "http://127.0.0.1:8888", "REST URLs of the nodes to load, comma-separated (workers are spread over them)")
	fs.StringVar(&c.transport, "transport", "rest", "rest or ws")
	fs.DurationVar(&c.duration, "time", 60*time.Second, "measured duration")
	fs.DurationVar(&c.warmup, "warmup", 5*time.Second, "load before measuring starts (excluded from the results)")
	fs.IntVar(&c.producers, "producers", 2, "producer processes (zaqar-bench -pp)")
	fs.IntVar(&c.producerWorkers, "producer-workers", 10, "workers per producer (zaqar-bench -pw)")
	fs.IntVar(&c.consumers, "consumers", 2, "consumer processes (zaqar-bench -cp)")
	fs.IntVar(&c.consumerWorkers, "consumer-workers", 10, "workers per consumer (zaqar-bench -cw)")
	fs.IntVar(&c.observers, "observers", 0, "observer processes (zaqar-bench -op)")
	fs.IntVar(&c.observerWorkers, "observer-workers", 5, "workers per observer (zaqar-bench -ow)")
	fs.IntVar(&c.queues, "queues", 4, "queues the load is spread over")
	fs.IntVar(&c.messageSize, "message-size", 256, "approximate size of each message body in bytes")
	fs.IntVar(&c.perPost, "messages-per-post", 1, "messages per post request (batch size)")
	fs.IntVar(&c.perClaim, "messages-per-claim", 5, "claim limit")
	fs.IntVar(&c.perList, "messages-per-list", 10, "list limit")
	fs.IntVar(&c.claimWait, "wait", 0, "seconds a consumer's claim waits for a message (long-poll, 0-20; this service's extension, not Zaqar's); 0: an empty claim answers at once and the consumer pauses 20 ms")
	fs.StringVar(&c.project, "project", "bench", "X-Project-ID to use")
	fs.StringVar(&c.token, "token", "", "X-Auth-Token (Keystone deployments)")
	fs.StringVar(&c.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.IntVar(&c.spawn, "spawn", 0, "start a local cluster of this many nodes (fsync on) and load it instead of -targets")
	fs.StringVar(&c.serverBin, "server-bin", "./bin/zaqar-server", "zaqar-server binary for -spawn")
	fs.StringVar(&c.spawnArgs, "server-args", "", "extra flags for the spawned nodes, space-separated")
	fs.Float64Var(&c.postRate, "post-rate", 0, "post requests per second across all producers (0: as fast as they can); latency is measured from when a post is sent, so give enough producer workers that none falls behind")
	fs.BoolVar(&c.noKeepAlive, "no-keepalive", false, "a new connection for every REST request (for servers that close connections after each answer, such as uWSGI's --http-socket)")
	fs.DurationVar(&c.killLeaderAfter, "kill-leader-after", 0, "with -spawn: SIGKILL the leader this long into the measurement (shows unavailability)")
	fs.StringVar(&c.tls.CA, "ca", os.Getenv("ZAQAR_CA"), "PEM CA bundle that verifies https/wss targets (default: the system roots)")
	fs.StringVar(&c.tls.Cert, "cert", os.Getenv("ZAQAR_CERT"), "PEM client certificate, for targets that ask for one")
	fs.StringVar(&c.tls.Key, "key", os.Getenv("ZAQAR_KEY"), "PEM private key of -cert")
	fs.BoolVar(&c.spawnTLS, "tls", false, "with -spawn: write a development CA and node certificates and start the nodes with https/wss on the REST ports and mutual TLS on the node ports")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c.targets = splitTargets(*targets)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cl *localCluster
	if c.spawn > 0 {
		var err error
		if cl, err = spawnCluster(ctx, c.serverBin, c.spawn, c.spawnTLS, strings.Fields(c.spawnArgs)); err != nil {
			fmt.Fprintln(os.Stderr, "zaqar-bench:", err)
			return 1
		}
		defer cl.stop()
		c.targets = cl.urls()
		if c.spawnTLS {
			c.tls = cl.clientTLS
		}
	} else if c.spawnTLS {
		fmt.Fprintln(os.Stderr, "zaqar-bench: -tls goes with -spawn (for other targets give -ca, and -cert and -key if they ask for a client certificate)")
		return 2
	}
	if len(c.targets) == 0 {
		fmt.Fprintln(os.Stderr, "zaqar-bench:", errNoTargets)
		return 2
	}
	tr, err := httpTransport(c.tls)
	if err != nil {
		fmt.Fprintln(os.Stderr, "zaqar-bench:", err)
		return 1
	}
	res, err := benchmark(ctx, c, cl, tr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "zaqar-bench:", err)
		return 1
	}
	res.print(out)
	if c.jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(c.jsonOut, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "zaqar-bench:", err)
			return 1
		}
	}
	if res.totalOps() == 0 {
		fmt.Fprintln(os.Stderr, "zaqar-bench: no operation succeeded")
		return 1
	}
	return 0
}

// opStats are one operation type's measurements.
type opStats struct {
	mu       sync.Mutex
	hist     histogram
	messages uint64
	errors   uint64
	empty    uint64 // claims or lists that returned nothing
	lastErr  string
}

func (s *opStats) ok(d time.Duration, msgs int) {
	s.mu.Lock()
	s.hist.record(d)
	s.messages += uint64(msgs)
	if msgs == 0 {
		s.empty++
	}
	s.mu.Unlock()
}

func (s *opStats) fail(err error) {
	s.mu.Lock()
	s.errors++
	s.lastErr = err.Error()
	s.mu.Unlock()
}

// recorder collects measurements once the warm-up is over.
type recorder struct {
	measuring atomic.Bool
	ops       map[string]*opStats
	// lastPost and maxGap track the longest time without a successful
	// post (the service's unavailability, e.g. across a leader change).
	gapMu    sync.Mutex
	lastPost time.Time
	maxGap   time.Duration
}

func (r *recorder) record(op string, start time.Time, msgs int, err error) {
	if !r.measuring.Load() {
		return
	}
	s := r.ops[op]
	if err != nil {
		s.fail(err)
		return
	}
	s.ok(time.Since(start), msgs)
	if op == "post" {
		now := time.Now()
		r.gapMu.Lock()
		if !r.lastPost.IsZero() && now.Sub(r.lastPost) > r.maxGap {
			r.maxGap = now.Sub(r.lastPost)
		}
		r.lastPost = now
		r.gapMu.Unlock()
	}
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func body(size int, n uint64) json.RawMessage {
	pad := size - 40
	if pad < 0 {
		pad = 0
	}
	return json.RawMessage(fmt.Sprintf(`{"n": %d, "pad": "%s"}`, n, strings.Repeat("x", pad)))
}

// httpTransport is the transport of every REST and websocket client, with
// the TLS client configuration when files are given. It speaks HTTP/1.1
// only: websocket upgrades need it, and REST over TLS then opens the same
// connections as without, so that a comparison measures TLS and not
// HTTP/2's multiplexing (python-zaqarclient speaks HTTP/1.1 too).
func httpTransport(f tlsconf.Files) (*http.Transport, error) {
	tr := &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	if f != (tlsconf.Files{}) {
		cfg, err := tlsconf.StaticClientConfig(f)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = cfg
	}
	return tr, nil
}

// benchmark runs the workload over tr and returns the results.
func benchmark(ctx context.Context, c config, cl *localCluster, tr *http.Transport) (*results, error) {
	rec := &recorder{ops: map[string]*opStats{"post": {}, "claim": {}, "delete": {}, "list": {}}}
	restTr := tr.Clone()
	restTr.DisableKeepAlives = c.noKeepAlive
	httpc := &http.Client{Timeout: 30 * time.Second, Transport: restTr}
	// The websocket dial's client has no timeout (the dial's context bounds
	// it) and keeps nothing idle: each connection is hijacked.
	wsc := &http.Client{Transport: tr}
	runID := newID()[:8]
	queue := func(i int) string { return fmt.Sprintf("bench-%s-%d", runID, i%c.queues) }
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	worker := 0
	newClient := func() (client, error) {
		target := c.targets[worker%len(c.targets)]
		worker++
		cid := newID()
		if c.transport == "ws" {
			token := c.token
			if token == "" {
				token = "noauth" // authenticate needs one; ignored without Keystone
			}
			// http -> ws, https -> wss
			return dialWS(wctx, wsc, "ws"+strings.TrimPrefix(target, "http")+"/", cid, c.project, token)
		}
		return &restClient{http: httpc, base: target, clientID: cid, project: c.project, authToken: c.token}, nil
	}
	var seq atomic.Uint64
	start := func(n int, loop func(cl client, id int)) error {
		for i := 0; i < n; i++ {
			cl, err := newClient()
			if err != nil {
				return err
			}
			wg.Add(1)
			go func(cl client, id int) {
				defer wg.Done()
				defer cl.close()
				loop(cl, id)
			}(cl, worker)
		}
		return nil
	}
	limiter := rate.NewLimiter(rate.Inf, 0)
	if c.postRate > 0 {
		limiter = rate.NewLimiter(rate.Limit(c.postRate), 1)
	}
	err := start(c.producers*c.producerWorkers, func(cl client, id int) {
		for i := id; wctx.Err() == nil; i++ {
			if limiter.Wait(wctx) != nil {
				return
			}
			bodies := make([]json.RawMessage, c.perPost)
			for j := range bodies {
				bodies[j] = body(c.messageSize, seq.Add(1))
			}
			t := time.Now()
			err := cl.post(wctx, queue(i), bodies)
			if wctx.Err() != nil {
				return
			}
			rec.record("post", t, len(bodies), err)
			if err != nil {
				// A node that is down refuses at once; do not spin on it.
				sleep(wctx, 5*time.Millisecond)
			}
		}
	})
	if err == nil {
		err = start(c.consumers*c.consumerWorkers, func(cl client, id int) {
			for i := id; wctx.Err() == nil; i++ {
				t := time.Now()
				msgs, err := cl.claim(wctx, queue(i), c.perClaim, c.claimWait)
				if wctx.Err() != nil {
					return
				}
				rec.record("claim", t, len(msgs), err)
				if err != nil || len(msgs) == 0 && c.claimWait == 0 {
					sleep(wctx, 20*time.Millisecond)
					continue
				}
				for _, m := range msgs {
					t := time.Now()
					err := cl.delete(wctx, queue(i), m)
					if wctx.Err() != nil {
						return
					}
					rec.record("delete", t, 1, err)
				}
			}
		})
	}
	if err == nil {
		err = start(c.observers*c.observerWorkers, func(cl client, id int) {
			marker := ""
			for i := id; wctx.Err() == nil; {
				t := time.Now()
				n, next, err := cl.list(wctx, queue(i), c.perList, marker)
				if wctx.Err() != nil {
					return
				}
				rec.record("list", t, n, err)
				if err != nil || n == 0 {
					marker = ""
					i++
					sleep(wctx, 20*time.Millisecond)
					continue
				}
				marker = next
			}
		})
	}
	if err != nil {
		cancel()
		wg.Wait()
		return nil, err
	}
	sleep(ctx, c.warmup)
	rec.measuring.Store(true)
	began := time.Now()
	var sampler *resourceSampler
	if cl != nil {
		sampler = startSampler(cl)
	}
	if c.killLeaderAfter > 0 && cl != nil {
		go func() {
			sleep(wctx, c.killLeaderAfter)
			if wctx.Err() == nil {
				if id, err := cl.killLeader(); err == nil {
					fmt.Fprintf(os.Stderr, "zaqar-bench: killed leader %s at %s\n", id, time.Since(began).Round(time.Millisecond))
				}
			}
		}()
	}
	sleep(ctx, c.duration)
	rec.measuring.Store(false)
	elapsed := time.Since(began)
	cancel()
	wg.Wait()
	res := newResults(c, rec, elapsed)
	if sampler != nil {
		res.Nodes = sampler.stop(elapsed)
	}
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
