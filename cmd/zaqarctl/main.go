// Command zaqarctl administers a cluster through any node's REST port:
//
//	zaqarctl [-addr http://127.0.0.1:8888] [-endpoints URL,...] status
//	                                        (the group of the node at -addr, then every registered
//	                                        pool with the members -addr or an -endpoints node reports)
//	zaqarctl join ID RAFT_ADDR
//	zaqarctl remove ID
//	zaqarctl transfer-leader [ID]
//	zaqarctl drain                          (the node at -addr stops taking client traffic)
//	zaqarctl snapshot save FILE             (consistent online backup, checksummed)
//	zaqarctl snapshot verify FILE
//	zaqarctl snapshot restore FILE DATA_DIR PEERS
//	                                        (into a new node's empty data directory; PEERS are the
//	                                        new cluster's voters, id=host:port,...)
//
// Every request carries X-Roles: admin (trusted in no-auth mode) or the
// token given with -token. Against a node that serves https, -ca names the
// CA bundle that verifies its certificate (the system roots if not given),
// and -cert/-key a client certificate for nodes that ask for one
// (-tls-client-ca); ZAQAR_CA, ZAQAR_CERT and ZAQAR_KEY are their
// environment spellings (a flag wins).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zaqarctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr("ZAQAR_ADDR", "http://127.0.0.1:8888"), "REST URL of any node")
	token := fs.String("token", os.Getenv("ZAQAR_TOKEN"), "Keystone token (auth mode keystone)")
	timeout := fs.Duration("timeout", 15*time.Second, "request timeout")
	endpoints := fs.String("endpoints", os.Getenv("ZAQAR_ENDPOINTS"), "status: comma-separated REST URLs of nodes of other pools, asked for their pool's members")
	var tlsFiles tlsconf.Files
	fs.StringVar(&tlsFiles.CA, "ca", os.Getenv("ZAQAR_CA"), "PEM CA bundle that verifies an https node's certificate (default: the system roots)")
	fs.StringVar(&tlsFiles.Cert, "cert", os.Getenv("ZAQAR_CERT"), "PEM client certificate, for nodes that ask for one (-tls-client-ca)")
	fs.StringVar(&tlsFiles.Key, "key", os.Getenv("ZAQAR_KEY"), "PEM private key of -cert")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: zaqarctl [-addr URL] [-ca FILE [-cert FILE -key FILE]] [-endpoints URL,...] status | join ID RAFT_ADDR | remove ID |")
		fmt.Fprintln(stderr, "                transfer-leader [ID] | drain |")
		fmt.Fprintln(stderr, "                snapshot save FILE | snapshot verify FILE | snapshot restore FILE DATA_DIR PEERS")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	eps, err := splitEndpoints(*endpoints)
	if err != nil {
		fmt.Fprintln(stderr, "zaqarctl:", err)
		return 2
	}
	hc, err := httpClient(tlsFiles, *timeout)
	if err != nil {
		fmt.Fprintln(stderr, "zaqarctl:", err)
		return 1
	}
	c := &client{base: strings.TrimRight(*addr, "/"), token: *token, http: hc}
	ctx := context.Background()
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}
	switch cmd := rest[0]; {
	case cmd == "status" && len(rest) == 1:
		err = c.status(ctx, stdout, eps)
	case cmd == "join" && len(rest) == 3:
		err = c.post(ctx, "/admin/cluster/join", map[string]string{"id": rest[1], "address": rest[2]})
	case cmd == "remove" && len(rest) == 2:
		err = c.post(ctx, "/admin/cluster/remove", map[string]string{"id": rest[1]})
	case cmd == "transfer-leader" && len(rest) <= 2:
		body := map[string]string{}
		if len(rest) == 2 {
			body["id"] = rest[1]
		}
		err = c.post(ctx, "/admin/cluster/transfer-leadership", body)
	case cmd == "drain" && len(rest) == 1:
		err = c.post(ctx, "/admin/node/drain", map[string]string{})
	case cmd == "snapshot" && len(rest) == 3 && rest[1] == "save":
		err = c.saveSnapshot(ctx, rest[2], stdout)
	case cmd == "snapshot" && len(rest) == 3 && rest[1] == "verify":
		err = verifySnapshot(rest[2], stdout)
	case cmd == "snapshot" && len(rest) == 5 && rest[1] == "restore":
		err = restoreSnapshot(rest[2], rest[3], rest[4], stdout)
	default:
		fs.Usage()
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "zaqarctl:", err)
		return 1
	}
	if rest[0] != "status" && rest[0] != "snapshot" {
		fmt.Fprintln(stdout, "ok")
	}
	return 0
}

// splitEndpoints reads -endpoints: URLs separated by commas, each with
// its scheme (as -addr).
func splitEndpoints(s string) ([]string, error) {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		if !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") {
			return nil, fmt.Errorf("-endpoints: %q is not a URL (http://host:port or https://host:port)", e)
		}
		out = append(out, e)
	}
	return out, nil
}

// orDash returns s, or "-" when it is empty, so a table cell is never
// blank.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// httpClient is the client of the nodes' REST ports: TLS settings from
// files (read once) only when any is given, so that plain http:// and
// https:// with the system roots work without flags.
func httpClient(f tlsconf.Files, timeout time.Duration) (*http.Client, error) {
	if f == (tlsconf.Files{}) {
		return &http.Client{Timeout: timeout}, nil
	}
	cfg, err := tlsconf.StaticClientConfig(f)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	// HTTP/1.1: a refused client certificate then surfaces as the server's
	// alert ("certificate required", "bad certificate"), which HTTP/2's
	// client reports only as "client conn could not be established".
	tr.ForceAttemptHTTP2 = false
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}

type client struct {
	base, token string
	http        *http.Client
}

// statusError is an answer other than 2xx: its status code, for callers
// that treat some (404, 501) as "this server does not have it".
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// hasStatus reports whether err is an answer with one of the codes.
func hasStatus(err error, codes ...int) bool {
	var se *statusError
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.code == c {
			return true
		}
	}
	return false
}

// Identity headers of the /v2 calls (pool listing): a /v2 route needs a
// Client-ID, and in no-auth mode a project. With a token the project is
// the token's, so none is sent (a different one would be refused).
const (
	ctlClientID = "6f1d2a4e-3c8b-4d7e-9a51-0b2c7e9f4d13"
	ctlProject  = "zaqarctl"
)

func (c *client) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	return c.doWith(ctx, method, path, body, nil)
}

// v2 is a GET of a /v2 path, with the identity headers it needs.
func (c *client) v2(ctx context.Context, path string) ([]byte, error) {
	h := http.Header{}
	h.Set("Client-ID", ctlClientID)
	if c.token == "" {
		h.Set("X-Project-ID", ctlProject)
	}
	return c.doWith(ctx, http.MethodGet, path, nil, h)
}

func (c *client) doWith(ctx context.Context, method, path string, body any, hdr http.Header) ([]byte, error) {
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
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Roles", "admin")
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode >= 300 {
		var e struct{ Title, Description string }
		if json.Unmarshal(out, &e) == nil && e.Title != "" {
			return nil, &statusError{resp.StatusCode, fmt.Sprintf("%s %s: %d %s: %s", method, path, resp.StatusCode, e.Title, e.Description)}
		}
		return nil, &statusError{resp.StatusCode, fmt.Sprintf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(out))}
	}
	return out, nil
}

func (c *client) post(ctx context.Context, path string, body any) error {
	_, err := c.do(ctx, http.MethodPost, path, body)
	return err
}
