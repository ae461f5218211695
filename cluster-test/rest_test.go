package clustertest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// restClient speaks the Zaqar v2 REST API to one node as one client.
type restClient struct {
	base     string // http://host:port
	clientID string
	project  string
	http     *http.Client
	stale    bool // send X-Read-Consistency: stale
}

func newRESTClient(p *proc, clientID, project string) *restClient {
	return &restClient{base: p.URL(), clientID: clientID, project: project, http: p.httpClient(10 * time.Second)}
}

// response is a REST answer read in full.
type response struct {
	Status int
	Header http.Header
	Body   []byte
	TLS    *tls.ConnectionState // nil over plain HTTP
}

func (r *response) String() string {
	return fmt.Sprintf("%d %s", r.Status, strings.TrimSpace(string(r.Body)))
}

// do sends one request; path is relative to the node (starts with '/').
func (c *restClient) do(ctx context.Context, method, path string, body any) (*response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Client-ID", c.clientID)
	if c.project != "" {
		req.Header.Set("X-Project-ID", c.project)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.stale {
		req.Header.Set("X-Read-Consistency", "stale")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b, TLS: resp.TLS}, nil
}

// postMessages posts the bodies (each with ttl) and returns the message
// ids the server assigned.
func (c *restClient) postMessages(ctx context.Context, queue string, bodies ...map[string]any) ([]string, error) {
	var msgs []map[string]any
	for _, b := range bodies {
		msgs = append(msgs, map[string]any{"ttl": 3600, "body": b})
	}
	r, err := c.do(ctx, http.MethodPost, "/v2/queues/"+queue+"/messages", map[string]any{"messages": msgs})
	if err != nil {
		return nil, err
	}
	if r.Status != http.StatusCreated {
		return nil, fmt.Errorf("post messages: %s", r)
	}
	var out struct {
		Resources []string `json:"resources"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		return nil, fmt.Errorf("post messages: %w in %s", err, r.Body)
	}
	var ids []string
	for _, res := range out.Resources {
		ids = append(ids, res[strings.LastIndex(res, "/")+1:])
	}
	if len(ids) != len(bodies) {
		return nil, fmt.Errorf("post messages: %d resources for %d messages: %s", len(ids), len(bodies), r.Body)
	}
	return ids, nil
}

// listedMessage is one message of a listing.
type listedMessage struct {
	ID   string         `json:"id"`
	Href string         `json:"href"`
	TTL  int            `json:"ttl"`
	Age  int            `json:"age"`
	Body map[string]any `json:"body"`
}

// listAll lists every message of queue (echo and claimed included) by
// following the next links until a page comes back empty.
func (c *restClient) listAll(ctx context.Context, queue string) ([]listedMessage, error) {
	var all []listedMessage
	path := "/v2/queues/" + queue + "/messages?echo=true&include_claimed=true&limit=20"
	for page := 0; ; page++ {
		if page > 10000 {
			return nil, fmt.Errorf("list %s: more than 10000 pages; the next links do not advance", queue)
		}
		r, err := c.do(ctx, http.MethodGet, path, nil)
		if err != nil {
			return nil, err
		}
		if r.Status == http.StatusNoContent {
			return all, nil
		}
		if r.Status != http.StatusOK {
			return nil, fmt.Errorf("list %s: GET %s: %s", queue, path, r)
		}
		var out struct {
			Messages []listedMessage `json:"messages"`
			Links    []struct {
				Rel  string `json:"rel"`
				Href string `json:"href"`
			} `json:"links"`
		}
		if err := json.Unmarshal(r.Body, &out); err != nil {
			return nil, fmt.Errorf("list %s: %w in %s", queue, err, r.Body)
		}
		if len(out.Messages) == 0 {
			return all, nil
		}
		all = append(all, out.Messages...)
		next := ""
		for _, l := range out.Links {
			if l.Rel == "next" {
				next = l.Href
			}
		}
		if next == "" {
			return nil, fmt.Errorf("list %s: a non-empty page without a next link: %s", queue, r.Body)
		}
		u, err := url.Parse(next)
		if err != nil {
			return nil, fmt.Errorf("list %s: next link %q: %w", queue, next, err)
		}
		path = u.RequestURI()
	}
}

// nodeStatus is one node's Raft view as /admin/cluster reports it.
type nodeStatus struct {
	ID           string `json:"id"`
	Address      string `json:"address"`
	State        string `json:"state"`
	Term         uint64 `json:"term"`
	LeaderID     string `json:"leader_id"`
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	Reachable    bool   `json:"reachable"`
	Error        string `json:"error"`
}

// clusterStatus is the body of GET /admin/cluster.
type clusterStatus struct {
	Node   string       `json:"node"`
	Leader string       `json:"leader"`
	Nodes  []nodeStatus `json:"nodes"`
}

// adminGet sends GET path with the admin role to node p and decodes its
// JSON answer into out.
func adminGet(ctx context.Context, p *proc, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Roles", "admin")
	resp, err := p.httpClient(0).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s on %s: %d %s", path, p.ID, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("GET %s on %s: %w in %s", path, p.ID, err, b)
	}
	return nil
}

// adminStatus asks p for GET /admin/cluster.
func adminStatus(ctx context.Context, p *proc) (*clusterStatus, error) {
	var st clusterStatus
	if err := adminGet(ctx, p, "/admin/cluster", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// nodeDigest is one node's answer to GET /admin/cluster/digest.
type nodeDigest struct {
	AppliedIndex uint64 `json:"applied_index"`
	Digest       string `json:"digest"`
}

// ownStatus returns p's view of itself.
func ownStatus(ctx context.Context, p *proc) (*nodeStatus, error) {
	st, err := adminStatus(ctx, p)
	if err != nil {
		return nil, err
	}
	for i := range st.Nodes {
		if st.Nodes[i].ID == p.ID {
			return &st.Nodes[i], nil
		}
	}
	return nil, fmt.Errorf("%s does not list itself in /admin/cluster: %+v", p.ID, st)
}

// metric reads one unlabelled sample from p's /metrics.
func metric(ctx context.Context, p *proc, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := p.httpClient(0).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %d", resp.StatusCode)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found in /metrics", name)
}
