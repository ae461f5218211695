package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The pools of docs/pools.md with real processes: two Raft groups of three
// zaqar-server processes each, the second started with -catalog naming the
// first (the catalog pool), both registered through the REST API. Where a
// queue lives is read from the X-Zaqar-Pool header every routed per-queue
// answer carries.

// poolHeader names the pool that answered a per-queue request.
const poolHeader = "X-Zaqar-Pool"

// pools is a deployment of several pools.
type pools struct {
	Names    []string   // as registered: pool-a, pool-b, ...
	Clusters []*cluster // Clusters[0] is the catalog pool
}

// All returns every node of every pool, pool by pool.
func (ps *pools) All() []*proc {
	var out []*proc
	for _, c := range ps.Clusters {
		out = append(out, c.Nodes...)
	}
	return out
}

// Running returns the running nodes of every pool.
func (ps *pools) Running() []*proc {
	var out []*proc
	for _, c := range ps.Clusters {
		out = append(out, c.Running()...)
	}
	return out
}

// startPools starts n pools of three processes each with the harness's
// startCluster: the first as any cluster (it holds the catalog), the
// others with -catalog naming its Raft addresses. Once every group has a
// leader it registers every pool, weight 100, through the REST API of the
// catalog pool's first node as an admin (no-auth mode: X-Roles).
func startPools(t *testing.T, n int, extraArgs ...string) *pools {
	t.Helper()
	ps := &pools{}
	for i := 0; i < n; i++ {
		args := extraArgs
		if i > 0 {
			args = append([]string{"-catalog", opsRaftAddrs(ps.Clusters[0].Nodes)}, extraArgs...)
		}
		ps.Clusters = append(ps.Clusters, startCluster(t, 3, args...))
		ps.Names = append(ps.Names, fmt.Sprintf("pool-%c", 'a'+i))
	}
	for i, c := range ps.Clusters {
		var nodes []string
		for _, p := range c.Nodes {
			nodes = append(nodes, fmt.Sprintf("%s (api %s, raft %s)", p.ID, p.APIAddr, p.RaftAddr))
		}
		t.Logf("%s: %s", ps.Names[i], strings.Join(nodes, ", "))
	}
	admin := adminREST(ps.Clusters[0].Nodes[0], "p-pools-admin")
	for i, c := range ps.Clusters {
		body := map[string]any{"uri": "zaqar+raft://" + opsRaftAddrs(c.Nodes), "weight": 100}
		c.waitUntil(30*time.Second, "registering "+ps.Names[i], func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := admin.do(ctx, http.MethodPut, "/v2/pools/"+ps.Names[i], body)
			switch {
			case err != nil:
				return false, err.Error()
			case r.Status == http.StatusCreated:
				return true, ""
			case r.Status >= 500:
				return false, r.String()
			}
			t.Fatalf("PUT /v2/pools/%s %v: %s", ps.Names[i], body, r)
			return false, ""
		})
	}
	return ps
}

// adminREST returns a REST client of p that sends X-Roles: admin (no-auth
// mode's admin), a Client-ID and project.
func adminREST(p *proc, project string) *restClient {
	rc := newRESTClient(p, newClientID(), project)
	rc.http.Transport = rolesTransport{roles: "admin", base: rc.http.Transport}
	return rc
}

// rolesTransport adds X-Roles to every request.
type rolesTransport struct {
	roles string
	base  http.RoundTripper
}

func (rt rolesTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Roles", rt.roles)
	base := rt.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// placeQueues creates the queues with PUT, round-robin over nodes, and
// returns the pool each one's answer names (empty when the header is
// missing, which is an error).
func placeQueues(t *testing.T, nodes []*proc, project string, names []string) map[string]string {
	t.Helper()
	placed := map[string]string{}
	missing := 0
	for i, q := range names {
		p := nodes[i%len(nodes)]
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		r, err := newRESTClient(p, newClientID(), project).do(ctx, http.MethodPut, "/v2/queues/"+q, map[string]any{})
		cancel()
		if err != nil || r.Status != http.StatusCreated {
			t.Fatalf("PUT /v2/queues/%s on %s: %v %v", q, p.ID, r, err)
		}
		placed[q] = r.Header.Get(poolHeader)
		if placed[q] == "" {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d PUT /v2/queues answers have no %s header", missing, len(names), poolHeader)
	}
	return placed
}

// poolOf creates queue through p and returns the pool its answer names,
// or if it names none (TestPools_PlacementRoutingAndListingAcrossTwoPools
// checks that it does) the pool a GET through other names.
func poolOf(t *testing.T, p, other *proc, project, queue string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r, err := newRESTClient(p, newClientID(), project).do(ctx, http.MethodPut, "/v2/queues/"+queue, map[string]any{})
	if err != nil || r.Status != http.StatusCreated {
		t.Fatalf("PUT /v2/queues/%s on %s: %v %v", queue, p.ID, r, err)
	}
	if pool := r.Header.Get(poolHeader); pool != "" {
		return pool
	}
	r, err = newRESTClient(other, newClientID(), project).do(ctx, http.MethodGet, "/v2/queues/"+queue, nil)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("GET /v2/queues/%s on %s: %v %v", queue, other.ID, r, err)
	}
	if pool := r.Header.Get(poolHeader); pool != "" {
		return pool
	}
	t.Fatalf("neither PUT /v2/queues/%s on %s nor GET on %s names a pool (%s)", queue, p.ID, other.ID, poolHeader)
	return ""
}

// queueOn returns a new queue of project placed on pool, creating queues
// named prefix-N until one lands there.
func queueOn(t *testing.T, ps *pools, project, prefix, pool string) string {
	t.Helper()
	all := ps.All()
	for i := 0; i < 40; i++ {
		q := fmt.Sprintf("%s-%d", prefix, i)
		placed := placeQueues(t, all[i%len(all):i%len(all)+1], project, []string{q})
		if t.Failed() {
			t.FailNow()
		}
		if placed[q] == pool {
			return q
		}
	}
	t.Fatalf("none of 40 new queues was placed on %s", pool)
	return ""
}

func TestPools_PlacementRoutingAndListingAcrossTwoPools(t *testing.T) {
	ps := startPools(t, 2)
	all := ps.All()

	t.Run("queues are spread over the pools by weight", func(t *testing.T) {
		const project = "p-spread"
		var names []string
		for i := 0; i < 100; i++ {
			names = append(names, fmt.Sprintf("q-%03d", i))
		}
		placed := placeQueues(t, all, project, names)
		counts := map[string]int{}
		for _, pool := range placed {
			counts[pool]++
		}
		t.Logf("placements: %v", counts)
		for _, name := range ps.Names {
			if n := counts[name]; n < 35 || n > 65 {
				t.Errorf("%s holds %d of 100 queues; equal weights should give 50±15", name, n)
			}
		}
		for pool := range counts {
			if pool != "" && pool != ps.Names[0] && pool != ps.Names[1] {
				t.Errorf("a queue was placed on %q, which is not a registered pool", pool)
			}
		}
		// Every node finds each queue on the same pool.
		wrong := 0
		for i, q := range names {
			p := all[(i+1)%len(all)]
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, err := newRESTClient(p, newClientID(), project).do(ctx, http.MethodGet, "/v2/queues/"+q, nil)
			cancel()
			if err != nil || r.Status != http.StatusOK {
				t.Fatalf("GET /v2/queues/%s on %s: %v %v", q, p.ID, r, err)
			}
			if got := r.Header.Get(poolHeader); got != placed[q] && wrong < 5 {
				wrong++
				t.Errorf("GET /v2/queues/%s on %s names pool %q; the PUT named %q", q, p.ID, got, placed[q])
			}
		}
	})

	t.Run("messages and claims through a node of the other pool", func(t *testing.T) {
		const project = "p-routed"
		a, b := ps.Clusters[0], ps.Clusters[1]
		qA := queueOn(t, ps, project, "on-a", ps.Names[0])
		qB := queueOn(t, ps, project, "on-b", ps.Names[1])
		messageRoundTrip(t, project, qB, ps.Names[1], a.Nodes[1], b.Nodes[2])
		messageRoundTrip(t, project, qA, ps.Names[0], b.Nodes[0], a.Nodes[2])
	})

	t.Run("listing queues spans the pools with markers", func(t *testing.T) {
		const project = "p-spread"
		var want []string
		for i := 0; i < 100; i++ {
			want = append(want, fmt.Sprintf("q-%03d", i))
		}
		for _, p := range all {
			got, err := listQueues(project, []*proc{p}, 10)
			if err != nil {
				t.Fatalf("listing through %s: %v", p.ID, err)
			}
			if d := firstDifference(got, want); d != "none" {
				t.Fatalf("GET /v2/queues?limit=10 pages through %s (%d names): %s", p.ID, len(got), d)
			}
		}
		// Each page from another node, alternating between the pools.
		rotate := []*proc{all[0], all[3], all[1], all[4], all[2], all[5]}
		got, err := listQueues(project, rotate, 10)
		if err != nil {
			t.Fatalf("listing page by page through every node: %v", err)
		}
		if d := firstDifference(got, want); d != "none" {
			t.Fatalf("GET /v2/queues?limit=10 pages through every node in turn: %s", d)
		}
	})
}

// messageRoundTrip posts, reads, claims and deletes messages of queue
// (placed on pool) through via, a node of another pool, and checks what
// it did from home, a node of the queue's pool.
func messageRoundTrip(t *testing.T, project, queue, pool string, via, home *proc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	producer := newRESTClient(via, newClientID(), project)
	consumer := newRESTClient(via, newClientID(), project)
	reader := newRESTClient(home, newClientID(), project)
	what := fmt.Sprintf("queue %s of %s through %s", queue, pool, via.ID)
	check := func(op string, r *response, err error, status int) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %s: %v", what, op, err)
		}
		if r.Status != status {
			t.Fatalf("%s: %s: %s, want %d", what, op, r, status)
		}
		if got := r.Header.Get(poolHeader); got != pool {
			t.Errorf("%s: %s: %s is %q, want %q", what, op, poolHeader, got, pool)
		}
	}

	r, err := producer.do(ctx, http.MethodPost, "/v2/queues/"+queue+"/messages", map[string]any{"messages": []map[string]any{
		{"ttl": 300, "body": map[string]any{"n": 1}}, {"ttl": 300, "body": map[string]any{"n": 2}}, {"ttl": 300, "body": map[string]any{"n": 3}},
	}})
	check("post 3 messages", r, err, http.StatusCreated)
	var posted struct {
		Resources []string `json:"resources"`
	}
	if err := json.Unmarshal(r.Body, &posted); err != nil || len(posted.Resources) != 3 {
		t.Fatalf("%s: post answered %s", what, r.Body)
	}
	var ids []string
	for _, res := range posted.Resources {
		if !strings.HasPrefix(res, "/v2/queues/"+queue+"/messages/") {
			t.Fatalf("%s: resource %q", what, res)
		}
		ids = append(ids, res[strings.LastIndex(res, "/")+1:])
	}

	r, err = consumer.do(ctx, http.MethodGet, "/v2/queues/"+queue+"/messages/"+ids[0], nil)
	check("get a message", r, err, http.StatusOK)
	var one listedMessage
	if err := json.Unmarshal(r.Body, &one); err != nil || one.ID != ids[0] || one.Body["n"] != float64(1) {
		t.Fatalf("%s: GET message %s: %s", what, ids[0], r.Body)
	}

	// Posted through via, listed from home.
	listed, err := reader.listAll(ctx, queue)
	if err != nil {
		t.Fatalf("%s: listing from %s: %v", what, home.ID, err)
	}
	sortedIDs := append([]string{}, ids...)
	sort.Strings(sortedIDs)
	if d := firstDifference(messageIDs(listed), sortedIDs); d != "none" {
		t.Fatalf("%s: messages listed from %s: %s", what, home.ID, d)
	}

	r, err = consumer.do(ctx, http.MethodPost, "/v2/queues/"+queue+"/claims?limit=2", map[string]any{"ttl": 60, "grace": 60})
	check("claim 2", r, err, http.StatusCreated)
	var claimed struct {
		Messages []listedMessage `json:"messages"`
	}
	if err := json.Unmarshal(r.Body, &claimed); err != nil || len(claimed.Messages) != 2 {
		t.Fatalf("%s: claim answered %s", what, r.Body)
	}
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, "/v2/queues/"+queue+"/claims/") {
		t.Fatalf("%s: claim Location %q", what, loc)
	}
	claimID := loc[strings.LastIndex(loc, "/")+1:]
	for _, m := range claimed.Messages {
		if !strings.Contains(m.Href, "claim_id="+claimID) {
			t.Fatalf("%s: claimed message href %q does not name claim %s", what, m.Href, claimID)
		}
	}

	// The claim is visible from home.
	r, err = reader.do(ctx, http.MethodGet, loc, nil)
	check("get the claim from "+home.ID, r, err, http.StatusOK)

	// Delete one claimed message with its claim, release the claim, delete
	// the unclaimed message.
	u, err := url.Parse(claimed.Messages[0].Href)
	if err != nil {
		t.Fatal(err)
	}
	r, err = consumer.do(ctx, http.MethodDelete, u.RequestURI(), nil)
	check("delete a claimed message", r, err, http.StatusNoContent)
	r, err = consumer.do(ctx, http.MethodDelete, loc, nil)
	check("release the claim", r, err, http.StatusNoContent)
	claimedIDs := map[string]bool{claimed.Messages[0].ID: true, claimed.Messages[1].ID: true}
	var unclaimed string
	for _, id := range ids {
		if !claimedIDs[id] {
			unclaimed = id
		}
	}
	r, err = consumer.do(ctx, http.MethodDelete, "/v2/queues/"+queue+"/messages/"+unclaimed, nil)
	check("delete an unclaimed message", r, err, http.StatusNoContent)

	// What is left, seen from home: the released message.
	listed, err = reader.listAll(ctx, queue)
	if err != nil {
		t.Fatalf("%s: listing from %s: %v", what, home.ID, err)
	}
	if d := firstDifference(messageIDs(listed), []string{claimed.Messages[1].ID}); d != "none" {
		t.Fatalf("%s: messages left, listed from %s: %s", what, home.ID, d)
	}

	// And the other way: posted from home, listed through via.
	if _, err := newRESTClient(home, newClientID(), project).postMessages(ctx, queue, map[string]any{"n": 4}); err != nil {
		t.Fatalf("%s: post from %s: %v", what, home.ID, err)
	}
	listed, err = consumer.listAll(ctx, queue)
	if err != nil {
		t.Fatalf("%s: listing: %v", what, err)
	}
	if len(listed) != 2 {
		t.Fatalf("%s: %d messages listed after a post from %s, want 2: %v", what, len(listed), home.ID, messageIDs(listed))
	}
}

// messageIDs returns the ids of ms, sorted.
func messageIDs(ms []listedMessage) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	sort.Strings(out)
	return out
}

// listQueues pages through GET /v2/queues?limit=limit of project, asking
// the nodes in turn, and returns the names in the order served. A page
// larger than limit or a next link that does not advance is an error.
func listQueues(project string, nodes []*proc, limit int) ([]string, error) {
	var out []string
	path := fmt.Sprintf("/v2/queues?limit=%d", limit)
	for page := 0; ; page++ {
		if page > 1000 {
			return nil, fmt.Errorf("more than 1000 pages; the next links do not advance")
		}
		p := nodes[page%len(nodes)]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := newRESTClient(p, newClientID(), project).do(ctx, http.MethodGet, path, nil)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("GET %s on %s: %w", path, p.ID, err)
		}
		if r.Status != http.StatusOK {
			return nil, fmt.Errorf("GET %s on %s: %s", path, p.ID, r)
		}
		var body struct {
			Queues []struct {
				Name string `json:"name"`
			} `json:"queues"`
			Links []struct {
				Rel  string `json:"rel"`
				Href string `json:"href"`
			} `json:"links"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			return nil, fmt.Errorf("GET %s on %s: %w in %s", path, p.ID, err, r.Body)
		}
		if len(body.Queues) == 0 {
			return out, nil
		}
		if len(body.Queues) > limit {
			return nil, fmt.Errorf("GET %s on %s: %d queues", path, p.ID, len(body.Queues))
		}
		for _, q := range body.Queues {
			out = append(out, q.Name)
		}
		next := ""
		for _, l := range body.Links {
			if l.Rel == "next" {
				next = l.Href
			}
		}
		if next == "" {
			return out, nil
		}
		u, err := url.Parse(next)
		if err != nil {
			return nil, fmt.Errorf("next link %q: %w", next, err)
		}
		path = u.RequestURI()
	}
}

func TestPools_APoolWithoutQuorumAnswers503AndTheOthersKeepServing(t *testing.T) {
	// A short request timeout: requests for the pool without a quorum
	// wait this long for it before answering 503.
	ps := startPools(t, 2, "-request-timeout", "3s")
	a, b := ps.Clusters[0], ps.Clusters[1]
	all := ps.All()
	const project = "p-isolation"

	// Queues on both pools, a few messages each.
	onPool := map[string][]string{}
	for i := 0; i < 40 && (len(onPool[ps.Names[0]]) < 3 || len(onPool[ps.Names[1]]) < 3); i++ {
		q := fmt.Sprintf("iso-%02d", i)
		pool := poolOf(t, all[i%len(all)], all[(i+1)%len(all)], project, q)
		onPool[pool] = append(onPool[pool], q)
	}
	qsA, qsB := onPool[ps.Names[0]], onPool[ps.Names[1]]
	if len(qsA) < 3 || len(qsB) < 3 {
		t.Fatalf("40 new queues gave %d on %s and %d on %s", len(qsA), ps.Names[0], len(qsB), ps.Names[1])
	}
	var mu sync.Mutex
	acked := map[string][]string{} // queue -> acknowledged message ids
	ack := func(q string, ids ...string) {
		mu.Lock()
		defer mu.Unlock()
		acked[q] = append(acked[q], ids...)
	}
	for i, q := range append(append([]string{}, qsA...), qsB...) {
		p := all[i%len(all)]
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		ids, err := newRESTClient(p, newClientID(), project).postMessages(ctx, q, map[string]any{"before": 1}, map[string]any{"before": 2})
		cancel()
		if err != nil {
			t.Fatalf("post to %s through %s: %v", q, p.ID, err)
		}
		ack(q, ids...)
	}

	// Pool B loses its quorum: its leader and one follower are killed.
	leaderB := b.Leader()
	killed := []*proc{leaderB, b.Followers()[0]}
	for _, p := range killed {
		b.Kill(p)
	}
	survivor := b.Running()[0]
	t.Logf("killed %s and %s of %s; %s survives", killed[0].ID, killed[1].ID, ps.Names[1], survivor.ID)
	serving := append(append([]*proc{}, a.Nodes...), survivor)

	// Until the survivor notices, pool B may still answer; it must not
	// answer anything but 2xx or 503.
	b.waitUntil(20*time.Second, ps.Names[1]+"'s queues to answer 503", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := newRESTClient(a.Nodes[0], newClientID(), project).do(ctx, http.MethodGet, "/v2/queues/"+qsB[0]+"/messages?echo=true", nil)
		if err != nil {
			return false, err.Error()
		}
		if r.Status != http.StatusServiceUnavailable && r.Status/100 != 2 {
			t.Fatalf("GET messages of %s (on %s, without quorum) through %s: %s, want 2xx or 503", qsB[0], ps.Names[1], a.Nodes[0].ID, r)
		}
		return r.Status == http.StatusServiceUnavailable, r.String()
	})

	// Every surviving node, every queue, at once: pool A's answer 2xx,
	// pool B's 503.
	var wg sync.WaitGroup
	errs := make(chan string, 1000)
	for _, p := range serving {
		for _, q := range append(append([]string{}, qsA...), qsB...) {
			wantOK := contains(qsA, q)
			for _, op := range []string{"list", "post"} {
				wg.Add(1)
				go func(p *proc, q, op string, wantOK bool) {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
					defer cancel()
					rc := newRESTClient(p, newClientID(), project)
					var r *response
					var err error
					if op == "list" {
						r, err = rc.do(ctx, http.MethodGet, "/v2/queues/"+q+"/messages?echo=true", nil)
					} else {
						r, err = rc.do(ctx, http.MethodPost, "/v2/queues/"+q+"/messages",
							map[string]any{"messages": []map[string]any{{"ttl": 3600, "body": map[string]any{"during": p.ID}}}})
						if err == nil && r.Status == http.StatusCreated {
							var out struct {
								Resources []string `json:"resources"`
							}
							if json.Unmarshal(r.Body, &out) == nil {
								for _, res := range out.Resources {
									ack(q, res[strings.LastIndex(res, "/")+1:])
								}
							}
						}
					}
					switch {
					case err != nil:
						errs <- fmt.Sprintf("%s %s through %s: %v", op, q, p.ID, err)
					case wantOK && r.Status/100 != 2:
						errs <- fmt.Sprintf("%s %s (on %s) through %s: %s, want 2xx", op, q, ps.Names[0], p.ID, r)
					case !wantOK && r.Status != http.StatusServiceUnavailable:
						errs <- fmt.Sprintf("%s %s (on %s, without quorum) through %s: %s, want 503", op, q, ps.Names[1], p.ID, r)
					}
				}(p, q, op, wantOK)
			}
		}
		// A listing needs every pool (docs/pools.md): 503, not a partial
		// page.
		wg.Add(1)
		go func(p *proc) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			r, err := newRESTClient(p, newClientID(), project).do(ctx, http.MethodGet, "/v2/queues", nil)
			if err != nil || r.Status != http.StatusServiceUnavailable {
				errs <- fmt.Sprintf("GET /v2/queues through %s while %s has no quorum: %v %v, want 503", p.ID, ps.Names[1], r, err)
			}
		}(p)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	// Back: every acknowledged message is there, listed through a node of
	// the other pool.
	for _, p := range killed {
		b.Restart(p)
	}
	if _, err := b.waitForLeader(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, q := range append(append([]string{}, qsA...), qsB...) {
		via := b.Nodes[0]
		if contains(qsB, q) {
			via = a.Nodes[0]
		}
		rc := newRESTClient(via, newClientID(), project)
		var listed []listedMessage
		b.waitUntil(30*time.Second, "listing "+q+" through "+via.ID, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var err error
			listed, err = rc.listAll(ctx, q)
			return err == nil, fmt.Sprint(err)
		})
		have := map[string]bool{}
		for _, m := range listed {
			have[m.ID] = true
		}
		for _, id := range acked[q] {
			if !have[id] {
				t.Errorf("acknowledged message %s of %s is missing after the restart", id, q)
			}
		}
	}
}
