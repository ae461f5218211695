package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
)

// runCerts writes a development CA and node certificates (no openssl
// needed). A directory that already holds ca.pem and ca-key.pem keeps its
// CA, so running it again issues new node certificates from the same CA (a
// rotation) or adds nodes.
func runCerts(args []string) int {
	fs := flag.NewFlagSet("zaqar-server certs", flag.ContinueOnError)
	out := fs.String("out", "./tls", "directory to write ca.pem, ca-key.pem, NODE.pem, NODE-key.pem, client.pem and client-key.pem into")
	nodes := fs.String("nodes", "node1,node2,node3", "node ids, comma-separated: each gets a certificate whose common name is its id")
	hosts := fs.String("hosts", "", "extra host names and IP addresses every node certificate is valid for, comma-separated (127.0.0.1, ::1 and localhost always are)")
	validity := fs.Duration("validity", 365*24*time.Hour, "how long the node and client certificates are valid")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	set := tlsconf.DevelopmentSet{Dir: *out, Nodes: splitList(*nodes), Hosts: splitList(*hosts), Validity: *validity}
	if len(set.Nodes) == 0 {
		fmt.Fprintln(os.Stderr, "certs: -nodes names no node")
		return 2
	}
	if err := set.Write(); err != nil {
		fmt.Fprintln(os.Stderr, "certs:", err)
		return 1
	}
	fmt.Printf("wrote a CA and certificates for %s to %s (development only: the CA key is beside them)\n", strings.Join(set.Nodes, ", "), *out)
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
