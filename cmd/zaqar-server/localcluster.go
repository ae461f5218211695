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
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
)

// localNode is one child process of a local cluster.
type localNode struct {
	ID   string
	Pool int // 1-based; pool 1 is the catalog pool
	API  string
	Raft string
	Args []string
}

// localPool is one Raft group of a local cluster and the name it is
// registered under.
type localPool struct {
	Name  string
	Nodes []localNode
}

// URI is the pool's uri for PUT /v2/pools: every member's Raft address.
func (p localPool) URI() string {
	var addrs []string
	for _, n := range p.Nodes {
		addrs = append(addrs, n.Raft)
	}
	return "zaqar+raft://" + strings.Join(addrs, ",")
}

// localClusterPlan lays out pools groups of nodes nodes each on 127.0.0.1:
// node k (1-based, across the pools) has id nodek, REST port apiPort+k-1
// and Raft port raftPort+k-1, and bootstraps with the members of its own
// pool. Nodes of pools after the first name the first pool's members with
// -catalog. extra is passed through to every node; with tlsDir set every
// node gets its development certificate from there.
func localClusterPlan(nodes, pools, apiPort, raftPort int, dataDir, tlsDir string, extra []string) []localPool {
	var out []localPool
	for p := 0; p < pools; p++ {
		pool := localPool{Name: fmt.Sprintf("pool%d", p+1)}
		for i := 0; i < nodes; i++ {
			k := p*nodes + i
			pool.Nodes = append(pool.Nodes, localNode{
				ID: fmt.Sprintf("node%d", k+1), Pool: p + 1,
				API: fmt.Sprintf("127.0.0.1:%d", apiPort+k), Raft: fmt.Sprintf("127.0.0.1:%d", raftPort+k),
			})
		}
		out = append(out, pool)
	}
	var catalog []string
	for _, n := range out[0].Nodes {
		catalog = append(catalog, n.Raft)
	}
	for p := range out {
		var peers []string
		for _, n := range out[p].Nodes {
			peers = append(peers, n.ID+"="+n.Raft)
		}
		for i := range out[p].Nodes {
			n := &out[p].Nodes[i]
			n.Args = []string{
				"-node-id", n.ID,
				"-data-dir", filepath.Join(dataDir, n.ID),
				"-api-addr", n.API,
				"-raft-addr", n.Raft,
				"-bootstrap", strings.Join(peers, ","),
			}
			if p > 0 {
				n.Args = append(n.Args, "-catalog", strings.Join(catalog, ","))
			}
			n.Args = append(n.Args, extra...)
			if tlsDir != "" {
				cert, key := filepath.Join(tlsDir, n.ID+".pem"), filepath.Join(tlsDir, n.ID+"-key.pem")
				n.Args = append(n.Args, "-tls-cert", cert, "-tls-key", key,
					"-peer-tls-ca", filepath.Join(tlsDir, "ca.pem"), "-peer-tls-cert", cert, "-peer-tls-key", key)
			}
		}
	}
	return out
}

// runLocalCluster starts N nodes of this binary on 127.0.0.1 as child
// processes, prints their URLs and stops them all on Ctrl-C. With -pools
// above 1 it starts that many groups of N nodes, the later ones pointed at
// the first (the catalog pool) with -catalog, and registers them all as
// pools once every group has a leader.
func runLocalCluster(args []string) int {
	fs := flag.NewFlagSet("zaqar-server local-cluster", flag.ContinueOnError)
	nodes := fs.Int("nodes", 3, "number of nodes (of each pool)")
	pools := fs.Int("pools", 1, "number of pools (Raft groups of -nodes nodes each); the first is the catalog pool, the others run with -catalog naming its nodes, and all are registered through the REST API of node1 (docs/pools.md)")
	dataDir := fs.String("data-dir", "./data", "parent directory of the nodes' data directories")
	apiPort := fs.Int("api-port", 8888, "REST port of the first node; the others follow")
	raftPort := fs.Int("raft-port", 7888, "Raft port of the first node; the others follow")
	useTLS := fs.Bool("tls", false, "write a development CA and node certificates under <data-dir>/tls (kept if there) and serve https/wss on the REST ports and mutual TLS on the Raft ports")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *nodes < 1 || *pools < 1 {
		fmt.Fprintln(os.Stderr, "local-cluster: -nodes and -pools must be at least 1")
		return 2
	}
	extra := fs.Args() // passed through to every node
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "local-cluster:", err)
		return 1
	}
	tlsDir := filepath.Join(*dataDir, "tls")
	planTLSDir := ""
	if *useTLS {
		planTLSDir = tlsDir
	}
	plan := localClusterPlan(*nodes, *pools, *apiPort, *raftPort, *dataDir, planTLSDir, extra)
	var all []localNode
	for _, p := range plan {
		all = append(all, p.Nodes...)
	}
	if *useTLS {
		var ids []string
		for _, n := range all {
			ids = append(ids, n.ID)
		}
		// One CA for every pool: the nodes of a pool admit the others'
		// certificates on the pool routes of the node port.
		if err := (tlsconf.DevelopmentSet{Dir: tlsDir, Nodes: ids}).Write(); err != nil {
			fmt.Fprintln(os.Stderr, "local-cluster:", err)
			return 1
		}
	}
	var procs []*exec.Cmd
	for _, n := range all {
		cmd := exec.Command(self, n.Args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "local-cluster: start", n.ID, err)
			stopAll(procs)
			return 1
		}
		procs = append(procs, cmd)
	}
	scheme := "http"
	if *useTLS {
		scheme = "https"
	}
	if *pools == 1 {
		fmt.Printf("\nlocal cluster of %d nodes (data under %s):\n", *nodes, *dataDir)
	} else {
		fmt.Printf("\nlocal deployment of %d pools of %d nodes (data under %s):\n", *pools, *nodes, *dataDir)
	}
	for i, p := range plan {
		if *pools > 1 {
			role := ""
			if i == 0 {
				role = " (catalog pool)"
			}
			fmt.Printf("  %s%s:\n", p.Name, role)
		}
		for _, n := range p.Nodes {
			indent := "  "
			if *pools > 1 {
				indent = "    "
			}
			fmt.Printf("%s%s  %s://%s  (raft %s)\n", indent, n.ID, scheme, n.API, n.Raft)
		}
	}
	if *useTLS {
		fmt.Printf("TLS: the CA is %s; the node ports speak mutual TLS. Try:\n  %s\n",
			filepath.Join(tlsDir, "ca.pem"), curlExample(filepath.Join(tlsDir, "ca.pem"), fmt.Sprintf("https://127.0.0.1:%d", *apiPort)))
	}
	fmt.Printf("press Ctrl-C to stop all nodes\n\n")

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	// Registration stops when a node exits or on Ctrl-C.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Add(1)
		go func(id string, p *exec.Cmd) {
			defer wg.Done()
			err := p.Wait()
			fmt.Fprintf(os.Stderr, "local-cluster: %s exited: %v\n", id, err)
			cancel()
		}(all[i].ID, p)
	}
	if *pools > 1 {
		hc := &http.Client{Timeout: 10 * time.Second}
		if *useTLS {
			cfg, err := tlsconf.StaticClientConfig(tlsconf.Files{CA: filepath.Join(tlsDir, "ca.pem")})
			if err != nil {
				fmt.Fprintln(os.Stderr, "local-cluster:", err)
				stopAll(procs)
				wg.Wait()
				return 1
			}
			hc.Transport = &http.Transport{TLSClientConfig: cfg}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			summary, err := registerLocalPools(ctx, hc, scheme, plan, 100, 2*time.Minute)
			if err != nil {
				if ctx.Err() == nil {
					fmt.Fprintf(os.Stderr, "local-cluster: registering the pools: %v\n", err)
					for _, p := range plan {
						fmt.Fprintf(os.Stderr, "  register it yourself as an admin: PUT %s://%s/v2/pools/%s {\"uri\": %q, \"weight\": 100}\n",
							scheme, plan[0].Nodes[0].API, p.Name, p.URI())
					}
				}
				return
			}
			fmt.Print(summary)
		}()
	}
	<-sig
	cancel()
	stopAll(procs)
	wg.Wait()
	return 0
}

// localAdminClientID and localAdminProject are what local-cluster sends
// as an admin in no-auth mode: the pool API is admin-only and, like every
// /v2 route, needs a Client-ID and a project.
const (
	localAdminClientID = "3381af92-2b9e-11e3-b191-718613007343"
	localAdminProject  = "admin"
)

// localAdminRequest sends one request as an admin in no-auth mode (X-Roles)
// and returns the status and body.
func localAdminRequest(ctx context.Context, hc *http.Client, method, url string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Roles", "admin")
	req.Header.Set("X-Project-ID", localAdminProject)
	req.Header.Set("Client-ID", localAdminClientID)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// registerLocalPools waits until every pool has a leader, registers every
// pool with weight through the REST API of the first node and returns a
// summary of the pools the catalog then holds. A pool registered already
// under the same uri (a restart on kept data) counts as registered.
func registerLocalPools(ctx context.Context, hc *http.Client, scheme string, plan []localPool, weight int, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	base := func(n localNode) string { return scheme + "://" + n.API }
	retry := func(what string, try func() (bool, error)) error {
		var last error
		for {
			done, err := try()
			if done {
				return err
			}
			last = err
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: %v (last: %v)", what, ctx.Err(), last)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	for _, p := range plan {
		err := retry(p.Name+" to elect a leader", func() (bool, error) {
			for _, n := range p.Nodes {
				status, body, err := localAdminRequest(ctx, hc, http.MethodGet, base(n)+"/admin/cluster", nil)
				if err == nil && (status == http.StatusUnauthorized || status == http.StatusForbidden) {
					// Not no-auth mode (-auth-strategy keystone): X-Roles is
					// not believed.
					return true, fmt.Errorf("GET %s/admin/cluster: %d %s", base(n), status, bytes.TrimSpace(body))
				}
				if err != nil || status != http.StatusOK {
					continue
				}
				var st struct {
					Leader string `json:"leader"`
				}
				if json.Unmarshal(body, &st) == nil && st.Leader != "" {
					return true, nil
				}
			}
			return false, errors.New("no node names a leader")
		})
		if err != nil {
			return "", err
		}
	}
	entry := base(plan[0].Nodes[0])
	for _, p := range plan {
		url := entry + "/v2/pools/" + p.Name
		err := retry("registering "+p.Name, func() (bool, error) {
			status, body, err := localAdminRequest(ctx, hc, http.MethodPut, url, map[string]any{"uri": p.URI(), "weight": weight})
			switch {
			case err != nil:
				return false, err
			case status == http.StatusCreated:
				return true, nil
			case status == http.StatusConflict:
				// Registered by an earlier run on the same data?
				st, got, err := localAdminRequest(ctx, hc, http.MethodGet, url, nil)
				var have struct {
					URI string `json:"uri"`
				}
				if err == nil && st == http.StatusOK && json.Unmarshal(got, &have) == nil && have.URI == p.URI() {
					return true, nil
				}
				return true, fmt.Errorf("PUT %s: %d %s", url, status, bytes.TrimSpace(body))
			case status >= 500:
				return false, fmt.Errorf("PUT %s: %d %s", url, status, bytes.TrimSpace(body))
			default:
				return true, fmt.Errorf("PUT %s: %d %s", url, status, bytes.TrimSpace(body))
			}
		})
		if err != nil {
			return "", err
		}
	}
	status, body, err := localAdminRequest(ctx, hc, http.MethodGet, entry+"/v2/pools?detailed=true", nil)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("GET /v2/pools: %d %s", status, bytes.TrimSpace(body))
	}
	var list struct {
		Pools []struct {
			Name   string `json:"name"`
			URI    string `json:"uri"`
			Weight int    `json:"weight"`
		} `json:"pools"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return "", fmt.Errorf("GET /v2/pools: %v in %s", err, body)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nregistered pools (GET %s/v2/pools as an admin):\n", entry)
	for _, reg := range list.Pools {
		fmt.Fprintf(&b, "  %-8s weight %-4d %s\n", reg.Name, reg.Weight, reg.URI)
		for _, p := range plan {
			if p.Name != reg.Name {
				continue
			}
			for _, n := range p.Nodes {
				fmt.Fprintf(&b, "           %s  %s\n", n.ID, base(n))
			}
		}
	}
	fmt.Fprintf(&b, "new queues are placed on the pools by weight; every node serves every queue\n\n")
	return b.String(), nil
}

// curlExample is a request a local cluster with TLS answers: every /v2
// request needs a Client-ID and a project.
func curlExample(caFile, baseURL string) string {
	return fmt.Sprintf(`curl --cacert %s -H "Client-ID: 3381af92-2b9e-11e3-b191-718613007343" -H "X-Project-ID: demo" %s/v2/queues`, caFile, baseURL)
}

func stopAll(procs []*exec.Cmd) {
	for _, p := range procs {
		if p.Process != nil {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
	}
}
