package main

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// TestLocalCluster_TLSExampleRequestIsAnswered sends the request that
// local-cluster -tls prints (its headers, URL path and CA) to a node
// serving https with a development set, and expects it answered 2xx.
func TestLocalCluster_TLSExampleRequestIsAnswered(t *testing.T) {
	dir := t.TempDir()
	if err := (tlsconf.DevelopmentSet{Dir: dir, Nodes: []string{"node1"}}).Write(); err != nil {
		t.Fatal(err)
	}
	c := testcluster.Start(t, 1, testcluster.WithRESTTLS(t, dir, tlsconf.NoClientCert))
	ca := filepath.Join(dir, "ca.pem")
	example := curlExample(ca, c.Nodes[0].URL())
	m := regexp.MustCompile(`^curl --cacert (\S+) ((?:-H "[^"]+" )*)(https://\S+)$`).FindStringSubmatch(example)
	if m == nil || m[1] != ca {
		t.Fatalf("the example is not a curl request with the CA: %s", example)
	}
	req, err := http.NewRequest(http.MethodGet, m[3], nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range regexp.MustCompile(`-H "([^"]+)"`).FindAllStringSubmatch(m[2], -1) {
		k, v, _ := strings.Cut(h[1], ": ")
		req.Header.Set(k, v)
	}
	cfg, err := tlsconf.StaticClientConfig(tlsconf.Files{CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s: %s", example, resp.Status)
	}
}
