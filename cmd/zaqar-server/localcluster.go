package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
)

// runLocalCluster starts N nodes of this binary on 127.0.0.1 as child
// processes, prints their URLs and stops them all on Ctrl-C.
func runLocalCluster(args []string) int {
	fs := flag.NewFlagSet("zaqar-server local-cluster", flag.ContinueOnError)
	nodes := fs.Int("nodes", 3, "number of nodes")
	dataDir := fs.String("data-dir", "./data", "parent directory of the nodes' data directories")
	apiPort := fs.Int("api-port", 8888, "REST port of the first node; the others follow")
	raftPort := fs.Int("raft-port", 7888, "Raft port of the first node; the others follow")
	useTLS := fs.Bool("tls", false, "write a development CA and node certificates under <data-dir>/tls (kept if there) and serve https/wss on the REST ports and mutual TLS on the Raft ports")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	extra := fs.Args() // passed through to every node
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "local-cluster:", err)
		return 1
	}
	var peers, ids []string
	for i := 0; i < *nodes; i++ {
		peers = append(peers, fmt.Sprintf("node%d=127.0.0.1:%d", i+1, *raftPort+i))
		ids = append(ids, fmt.Sprintf("node%d", i+1))
	}
	tlsDir := filepath.Join(*dataDir, "tls")
	if *useTLS {
		if err := (tlsconf.DevelopmentSet{Dir: tlsDir, Nodes: ids}).Write(); err != nil {
			fmt.Fprintln(os.Stderr, "local-cluster:", err)
			return 1
		}
	}
	var procs []*exec.Cmd
	for i := 0; i < *nodes; i++ {
		id := fmt.Sprintf("node%d", i+1)
		nodeArgs := append([]string{
			"-node-id", id,
			"-data-dir", filepath.Join(*dataDir, id),
			"-api-addr", fmt.Sprintf("127.0.0.1:%d", *apiPort+i),
			"-raft-addr", fmt.Sprintf("127.0.0.1:%d", *raftPort+i),
			"-bootstrap", strings.Join(peers, ","),
		}, extra...)
		if *useTLS {
			cert, key := filepath.Join(tlsDir, id+".pem"), filepath.Join(tlsDir, id+"-key.pem")
			nodeArgs = append(nodeArgs, "-tls-cert", cert, "-tls-key", key,
				"-peer-tls-ca", filepath.Join(tlsDir, "ca.pem"), "-peer-tls-cert", cert, "-peer-tls-key", key)
		}
		cmd := exec.Command(self, nodeArgs...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "local-cluster: start", id, err)
			stopAll(procs)
			return 1
		}
		procs = append(procs, cmd)
	}
	scheme := "http"
	if *useTLS {
		scheme = "https"
	}
	fmt.Printf("\nlocal cluster of %d nodes (data under %s):\n", *nodes, *dataDir)
	for i := 0; i < *nodes; i++ {
		fmt.Printf("  node%d  %s://127.0.0.1:%d  (raft 127.0.0.1:%d)\n", i+1, scheme, *apiPort+i, *raftPort+i)
	}
	if *useTLS {
		fmt.Printf("TLS: the CA is %s; the node ports speak mutual TLS. Try:\n  %s\n",
			filepath.Join(tlsDir, "ca.pem"), curlExample(filepath.Join(tlsDir, "ca.pem"), fmt.Sprintf("https://127.0.0.1:%d", *apiPort)))
	}
	fmt.Printf("press Ctrl-C to stop all nodes\n\n")

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Add(1)
		go func(i int, p *exec.Cmd) {
			defer wg.Done()
			err := p.Wait()
			fmt.Fprintf(os.Stderr, "local-cluster: node%d exited: %v\n", i+1, err)
		}(i, p)
	}
	<-sig
	stopAll(procs)
	wg.Wait()
	return 0
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
