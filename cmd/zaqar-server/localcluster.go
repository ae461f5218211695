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
)

// runLocalCluster starts N nodes of this binary on 127.0.0.1 as child
// processes, prints their URLs and stops them all on Ctrl-C.
func runLocalCluster(args []string) int {
	fs := flag.NewFlagSet("zaqar-server local-cluster", flag.ContinueOnError)
	nodes := fs.Int("nodes", 3, "number of nodes")
	dataDir := fs.String("data-dir", "./data", "parent directory of the nodes' data directories")
	apiPort := fs.Int("api-port", 8888, "REST port of the first node; the others follow")
	raftPort := fs.Int("raft-port", 7888, "Raft port of the first node; the others follow")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	extra := fs.Args() // passed through to every node
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "local-cluster:", err)
		return 1
	}
	var peers []string
	for i := 0; i < *nodes; i++ {
		peers = append(peers, fmt.Sprintf("node%d=127.0.0.1:%d", i+1, *raftPort+i))
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
		cmd := exec.Command(self, nodeArgs...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "local-cluster: start", id, err)
			stopAll(procs)
			return 1
		}
		procs = append(procs, cmd)
	}
	fmt.Printf("\nlocal cluster of %d nodes (data under %s):\n", *nodes, *dataDir)
	for i := 0; i < *nodes; i++ {
		fmt.Printf("  node%d  http://127.0.0.1:%d  (raft 127.0.0.1:%d)\n", i+1, *apiPort+i, *raftPort+i)
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

func stopAll(procs []*exec.Cmd) {
	for _, p := range procs {
		if p.Process != nil {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
	}
}
