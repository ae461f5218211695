package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLocalClusterPlan_OnePoolIsTodaysCluster checks that -pools 1 (the
// default) starts the nodes with exactly the flags local-cluster always
// gave them, and no -catalog.
func TestLocalClusterPlan_OnePoolIsTodaysCluster(t *testing.T) {
	plan := localClusterPlan(3, 1, 8888, 7888, "data", "", []string{"-log-level", "debug"})
	if len(plan) != 1 || len(plan[0].Nodes) != 3 {
		t.Fatalf("plan: %+v", plan)
	}
	want := []string{"-node-id", "node2", "-data-dir", "data/node2", "-api-addr", "127.0.0.1:8889", "-raft-addr", "127.0.0.1:7889",
		"-bootstrap", "node1=127.0.0.1:7888,node2=127.0.0.1:7889,node3=127.0.0.1:7890", "-log-level", "debug"}
	if got := plan[0].Nodes[1].Args; !reflect.DeepEqual(got, want) {
		t.Fatalf("node2's flags:\n got %q\nwant %q", got, want)
	}
}

// TestLocalClusterPlan_TwoPools checks the second pool's ports, ids,
// bootstrap, -catalog and certificates.
func TestLocalClusterPlan_TwoPools(t *testing.T) {
	plan := localClusterPlan(3, 2, 8888, 7888, "data", "data/tls", nil)
	if len(plan) != 2 || plan[0].Name != "pool1" || plan[1].Name != "pool2" {
		t.Fatalf("plan: %+v", plan)
	}
	if got := plan[0].URI(); got != "zaqar+raft://127.0.0.1:7888,127.0.0.1:7889,127.0.0.1:7890" {
		t.Fatalf("pool1 uri %s", got)
	}
	if got := plan[1].URI(); got != "zaqar+raft://127.0.0.1:7891,127.0.0.1:7892,127.0.0.1:7893" {
		t.Fatalf("pool2 uri %s", got)
	}
	for _, n := range plan[0].Nodes {
		if strings.Contains(strings.Join(n.Args, " "), "-catalog") {
			t.Fatalf("%s of the catalog pool runs with -catalog: %q", n.ID, n.Args)
		}
	}
	n := plan[1].Nodes[0]
	want := []string{"-node-id", "node4", "-data-dir", "data/node4", "-api-addr", "127.0.0.1:8891", "-raft-addr", "127.0.0.1:7891",
		"-bootstrap", "node4=127.0.0.1:7891,node5=127.0.0.1:7892,node6=127.0.0.1:7893",
		"-catalog", "127.0.0.1:7888,127.0.0.1:7889,127.0.0.1:7890",
		"-tls-cert", "data/tls/node4.pem", "-tls-key", "data/tls/node4-key.pem",
		"-peer-tls-ca", "data/tls/ca.pem", "-peer-tls-cert", "data/tls/node4.pem", "-peer-tls-key", "data/tls/node4-key.pem"}
	if !reflect.DeepEqual(n.Args, want) {
		t.Fatalf("node4's flags:\n got %q\nwant %q", n.Args, want)
	}
	if plan[1].Nodes[2].API != "127.0.0.1:8893" || plan[1].Nodes[2].Raft != "127.0.0.1:7893" {
		t.Fatalf("node6: %+v", plan[1].Nodes[2])
	}
}

// TestRegisterLocalPools_WaitsForLeadersAndRegistersAsAdmin runs the
// registration against a stand-in for the nodes: it waits for a leader in
// every pool, sends the pool API the no-auth admin headers, retries a 503,
// accepts a pool already registered with the same uri and prints the
// catalog's pools.
func TestRegisterLocalPools_WaitsForLeadersAndRegistersAsAdmin(t *testing.T) {
	var mu sync.Mutex
	registered := map[string]map[string]any{"pool1": nil}
	leaderPolls, puts := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("X-Roles") != "admin" || r.Header.Get("Client-ID") == "" || r.Header.Get("X-Project-ID") == "" {
			http.Error(w, "not an admin", http.StatusForbidden)
			return
		}
		switch {
		case r.URL.Path == "/admin/cluster":
			leaderPolls++
			leader := ""
			if leaderPolls > 2 {
				leader = "node1"
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"leader": leader})
		case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v2/pools/"):
			puts++
			if puts == 1 {
				http.Error(w, `{"title": "Service temporarily unavailable"}`, http.StatusServiceUnavailable)
				return
			}
			name := strings.TrimPrefix(r.URL.Path, "/v2/pools/")
			b, _ := io.ReadAll(r.Body)
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if _, ok := registered[name]; ok {
				if registered[name] == nil {
					registered[name] = doc // as if an earlier run had registered it
				}
				w.WriteHeader(http.StatusConflict)
				return
			}
			registered[name] = doc
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v2/pools/"):
			_ = json.NewEncoder(w).Encode(registered[strings.TrimPrefix(r.URL.Path, "/v2/pools/")])
		case r.URL.Path == "/v2/pools":
			var list []map[string]any
			for _, name := range []string{"pool1", "pool2"} {
				if d := registered[name]; d != nil {
					list = append(list, map[string]any{"name": name, "uri": d["uri"], "weight": d["weight"]})
				}
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"pools": list})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	plan := localClusterPlan(3, 2, 8888, 7888, "data", "", nil)
	for p := range plan {
		for i := range plan[p].Nodes {
			plan[p].Nodes[i].API = addr
		}
	}
	summary, err := registerLocalPools(context.Background(), srv.Client(), "http", plan, 100, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range plan {
		d := registered[p.Name]
		if d == nil || d["uri"] != p.URI() || d["weight"] != float64(100) {
			t.Fatalf("%s registered as %v", p.Name, d)
		}
		if !strings.Contains(summary, p.Name) || !strings.Contains(summary, p.URI()) {
			t.Fatalf("the summary does not show %s: %s", p.Name, summary)
		}
	}
	if !strings.Contains(summary, "node6") {
		t.Fatalf("the summary does not list pool2's nodes: %s", summary)
	}
	t.Logf("summary:%s", summary)
}

// TestRegisterLocalPools_StopsAtOnceWhenNotAnAdmin checks that a cluster
// that does not believe X-Roles (Keystone mode) ends the registration at
// once instead of waiting for a leader it is not allowed to see.
func TestRegisterLocalPools_StopsAtOnceWhenNotAnAdmin(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error": "Authentication required"}`, http.StatusUnauthorized)
	}))
	defer srv.Close()
	plan := localClusterPlan(3, 2, 8888, 7888, "data", "", nil)
	for p := range plan {
		for i := range plan[p].Nodes {
			plan[p].Nodes[i].API = strings.TrimPrefix(srv.URL, "http://")
		}
	}
	start := time.Now()
	_, err := registerLocalPools(context.Background(), srv.Client(), "http", plan, 100, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("registration against a Keystone-mode cluster: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the refusal took %s", d)
	}
}
