package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/coder/websocket"
)

// claimed is a message taken by a claim.
type claimed struct{ id, claimID string }

// client is one worker's connection to the service.
type client interface {
	post(ctx context.Context, queue string, bodies []json.RawMessage) error
	// claim takes up to limit messages, waiting up to wait seconds for
	// one when none can be claimed (0: Zaqar's claim).
	claim(ctx context.Context, queue string, limit, wait int) ([]claimed, error)
	delete(ctx context.Context, queue string, m claimed) error
	list(ctx context.Context, queue string, limit int, marker string) (n int, next string, err error)
	close()
}

// errStatus is an unexpected HTTP-like status.
type errStatus struct {
	code int
	body string
}

func (e *errStatus) Error() string { return fmt.Sprintf("status %d: %s", e.code, e.body) }

// restClient speaks the REST API.
type restClient struct {
	http      *http.Client
	base      string
	clientID  string
	project   string
	authToken string
}

func (c *restClient) do(ctx context.Context, method, path string, body []byte, want ...int) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Client-ID", c.clientID)
	req.Header.Set("X-Project-ID", c.project)
	req.Header.Set("Content-Type", "application/json")
	if c.authToken != "" {
		req.Header.Set("X-Auth-Token", c.authToken)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, resp.StatusCode, err
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return out, resp.StatusCode, nil
		}
	}
	return nil, resp.StatusCode, &errStatus{resp.StatusCode, strings.TrimSpace(string(out))}
}

func (c *restClient) post(ctx context.Context, queue string, bodies []json.RawMessage) error {
	doc := postDoc(bodies)
	_, _, err := c.do(ctx, http.MethodPost, "/v2/queues/"+queue+"/messages", doc, http.StatusCreated)
	return err
}

func postDoc(bodies []json.RawMessage) []byte {
	var b bytes.Buffer
	b.WriteString(`{"messages": [`)
	for i, body := range bodies {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"ttl": 3600, "body": `)
		b.Write(body)
		b.WriteByte('}')
	}
	b.WriteString("]}")
	return b.Bytes()
}

func (c *restClient) claim(ctx context.Context, queue string, limit, wait int) ([]claimed, error) {
	path := "/v2/queues/" + queue + "/claims?limit=" + strconv.Itoa(limit)
	if wait > 0 {
		path += "&wait=" + strconv.Itoa(wait)
	}
	out, code, err := c.do(ctx, http.MethodPost, path,
		[]byte(`{"ttl": 60, "grace": 60}`), http.StatusCreated, http.StatusNoContent)
	if err != nil || code == http.StatusNoContent {
		return nil, err
	}
	var doc struct {
		Messages []struct{ ID, Href string } `json:"messages"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, err
	}
	msgs := make([]claimed, len(doc.Messages))
	for i, m := range doc.Messages {
		_, cid, _ := strings.Cut(m.Href, "?claim_id=")
		msgs[i] = claimed{id: m.ID, claimID: cid}
	}
	return msgs, nil
}

func (c *restClient) delete(ctx context.Context, queue string, m claimed) error {
	_, _, err := c.do(ctx, http.MethodDelete, "/v2/queues/"+queue+"/messages/"+m.id+"?claim_id="+m.claimID, nil, http.StatusNoContent)
	return err
}

func (c *restClient) list(ctx context.Context, queue string, limit int, marker string) (int, string, error) {
	path := "/v2/queues/" + queue + "/messages?echo=true&include_claimed=true&limit=" + strconv.Itoa(limit)
	if marker != "" {
		path += "&marker=" + marker
	}
	out, _, err := c.do(ctx, http.MethodGet, path, nil, http.StatusOK)
	if err != nil {
		return 0, "", err
	}
	var doc struct {
		Messages []json.RawMessage       `json:"messages"`
		Links    []struct{ Href string } `json:"links"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return 0, "", err
	}
	next := ""
	if len(doc.Links) > 0 {
		if _, m, ok := strings.Cut(doc.Links[0].Href, "marker="); ok {
			next, _, _ = strings.Cut(m, "&")
		}
	}
	return len(doc.Messages), next, nil
}

func (c *restClient) close() {}

// wsClient speaks the websocket API over one connection.
type wsClient struct {
	mu       sync.Mutex
	conn     *websocket.Conn
	clientID string
	project  string
}

func dialWS(ctx context.Context, hc *http.Client, url, clientID, project, token string) (*wsClient, error) {
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(16 << 20)
	c := &wsClient{conn: conn, clientID: clientID, project: project}
	if _, err := c.call(ctx, "authenticate", nil, map[string]string{"X-Auth-Token": token}, 200); err != nil {
		conn.CloseNow()
		return nil, err
	}
	return c, nil
}

func (c *wsClient) call(ctx context.Context, action string, body any, extra map[string]string, want ...int) (json.RawMessage, error) {
	headers := map[string]string{"Client-ID": c.clientID, "X-Project-ID": c.project}
	for k, v := range extra {
		headers[k] = v
	}
	frame, err := json.Marshal(map[string]any{"action": action, "headers": headers, "body": body})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.conn.Write(ctx, websocket.MessageText, frame); err != nil {
		return nil, err
	}
	_, resp, err := c.conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	var env struct {
		Headers struct{ Status int } `json:"headers"`
		Body    json.RawMessage      `json:"body"`
	}
	if err := json.Unmarshal(resp, &env); err != nil {
		return nil, err
	}
	for _, w := range want {
		if env.Headers.Status == w {
			return env.Body, nil
		}
	}
	return nil, &errStatus{env.Headers.Status, string(env.Body)}
}

func (c *wsClient) post(ctx context.Context, queue string, bodies []json.RawMessage) error {
	msgs := make([]map[string]any, len(bodies))
	for i, b := range bodies {
		msgs[i] = map[string]any{"ttl": 3600, "body": b}
	}
	_, err := c.call(ctx, "message_post", map[string]any{"queue_name": queue, "messages": msgs}, nil, 201)
	return err
}

func (c *wsClient) claim(ctx context.Context, queue string, limit, wait int) ([]claimed, error) {
	body := map[string]any{"queue_name": queue, "limit": limit, "ttl": 60, "grace": 60}
	if wait > 0 {
		body["wait"] = wait
	}
	out, err := c.call(ctx, "claim_create", body, nil, 201, 204)
	if err != nil {
		return nil, err
	}
	var doc struct {
		ClaimID  *string `json:"claim_id"`
		Messages []struct {
			ID string `json:"id"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || doc.ClaimID == nil {
		return nil, err
	}
	msgs := make([]claimed, len(doc.Messages))
	for i, m := range doc.Messages {
		msgs[i] = claimed{id: m.ID, claimID: *doc.ClaimID}
	}
	return msgs, nil
}

func (c *wsClient) delete(ctx context.Context, queue string, m claimed) error {
	_, err := c.call(ctx, "message_delete", map[string]any{"queue_name": queue, "message_id": m.id, "claim_id": m.claimID}, nil, 204)
	return err
}

func (c *wsClient) list(ctx context.Context, queue string, limit int, marker string) (int, string, error) {
	body := map[string]any{"queue_name": queue, "limit": limit, "echo": true, "include_claimed": true}
	if marker != "" {
		body["marker"] = marker
	}
	out, err := c.call(ctx, "message_list", body, nil, 200)
	if err != nil {
		return 0, "", err
	}
	var doc struct {
		Messages []json.RawMessage `json:"messages"`
		Marker   string            `json:"marker"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return 0, "", err
	}
	return len(doc.Messages), doc.Marker, nil
}

func (c *wsClient) close() { _ = c.conn.Close(websocket.StatusNormalClosure, "") }

var errNoTargets = errors.New("no targets")
