package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/store"
)

// runRecover rewrites a stopped node's Raft configuration to the surviving
// peers after the cluster lost its quorum for good (see docs/operations.md).
func runRecover(args []string) int {
	fs := flag.NewFlagSet("zaqar-server recover", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./data", "the stopped node's data directory")
	nodeID := fs.String("node-id", "", "the stopped node's id")
	peers := fs.String("peers", "", "the surviving voters as id=host:port,... (this node included)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ps, err := raftnode.ParsePeers(*peers)
	if err != nil || *nodeID == "" || len(ps) == 0 {
		fmt.Fprintln(os.Stderr, "usage: zaqar-server recover -data-dir DIR -node-id ID -peers id=host:port,...")
		return 2
	}
	st, err := store.Open(filepath.Join(*dataDir, "pebble"), store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "zaqar-server recover:", err)
		return 1
	}
	defer st.Close()
	if err := raftnode.Recover(*dataDir, *nodeID, st, ps); err != nil {
		fmt.Fprintln(os.Stderr, "zaqar-server recover:", err)
		return 1
	}
	fmt.Printf("node %s now has the configuration %s; start it (and the other survivors) normally\n", *nodeID, *peers)
	return 0
}
