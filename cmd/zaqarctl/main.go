// Command zaqarctl administers a cluster through any node's REST port:
//
//	zaqarctl [-addr http://127.0.0.1:8888] status
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
	"text/tabwriter"
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
	var tlsFiles tlsconf.Files
	fs.StringVar(&tlsFiles.CA, "ca", os.Getenv("ZAQAR_CA"), "PEM CA bundle that verifies an https node's certificate (default: the system roots)")
	fs.StringVar(&tlsFiles.Cert, "cert", os.Getenv("ZAQAR_CERT"), "PEM client certificate, for nodes that ask for one (-tls-client-ca)")
	fs.StringVar(&tlsFiles.Key, "key", os.Getenv("ZAQAR_KEY"), "PEM private key of -cert")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: zaqarctl [-addr URL] [-ca FILE [-cert FILE -key FILE]] status | join ID RAFT_ADDR | remove ID | transfer-leader [ID] | drain |")
		fmt.Fprintln(stderr, "                snapshot save FILE | snapshot verify FILE | snapshot restore FILE DATA_DIR PEERS")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
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
		err = c.status(ctx, stdout)
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

func (c *client) do(ctx context.Context, method, path string, body any) ([]byte, error) {
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
			return nil, fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, e.Title, e.Description)
		}
		return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(out))
	}
	return out, nil
}

func (c *client) post(ctx context.Context, path string, body any) error {
	_, err := c.do(ctx, http.MethodPost, path, body)
	return err
}

type nodeStatus struct {
	ID           string `json:"id"`
	Address      string `json:"address"`
	State        string `json:"state"`
	Term         uint64 `json:"term"`
	LeaderID     string `json:"leader_id"`
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	LastContact  string `json:"last_contact"`
	Error        string `json:"error"`
}

type clusterStatus struct {
	Node    string `json:"node"`
	Leader  string `json:"leader"`
	Members []struct {
		ID       string `json:"id"`
		Address  string `json:"address"`
		Suffrage string `json:"suffrage"`
	} `json:"members"`
	Nodes []nodeStatus `json:"nodes"`
}

// status prints the members with each one's state, term, indexes and its
// lag behind the leader's commit index.
func (c *client) status(ctx context.Context, w io.Writer) error {
	b, err := c.do(ctx, http.MethodGet, "/admin/cluster", nil)
	if err != nil {
		return err
	}
	var st clusterStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	if len(st.Nodes) == 0 {
		return errors.New("the node reports no members")
	}
	var leaderCommit uint64
	for _, n := range st.Nodes {
		if n.State == "Leader" {
			leaderCommit = n.CommitIndex
		}
	}
	leader := st.Leader
	if leader == "" {
		leader = "(none)"
	}
	fmt.Fprintf(w, "asked %s; leader %s\n", st.Node, leader)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tSTATE\tTERM\tLAST\tCOMMIT\tAPPLIED\tLAG\tLAST CONTACT")
	for _, n := range st.Nodes {
		// A member whose status could not be read gets a row that says
		// why; a status without a state (a node too old to report its
		// errors) is no status either.
		if n.Error != "" || n.State == "" {
			reason := n.Error
			if reason == "" {
				reason = "the node reported no status for this member"
			}
			fmt.Fprintf(tw, "%s\t%s\tunknown\t-\t-\t-\t-\t-\terror: %s\n", orDash(n.ID), orDash(n.Address), reason)
			continue
		}
		lag := "-"
		if leaderCommit > 0 && leaderCommit >= n.AppliedIndex {
			lag = fmt.Sprint(leaderCommit - n.AppliedIndex)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", n.ID, n.Address, n.State, n.Term, n.LastIndex, n.CommitIndex, n.AppliedIndex, lag, n.LastContact)
	}
	return tw.Flush()
}
