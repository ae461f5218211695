package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
	"github.com/zaqar-raft/zaqar/server"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// tlsCluster starts n nodes serving REST over TLS and speaking mutual TLS
// on the node port, with certificates from a development CA in dir.
func tlsCluster(t *testing.T, n int, auth tlsconf.ClientAuth) (*testcluster.Cluster, string) {
	t.Helper()
	dir := t.TempDir()
	var ids []string
	for i := 1; i <= n; i++ {
		ids = append(ids, fmt.Sprintf("node%d", i))
	}
	if err := (tlsconf.DevelopmentSet{Dir: dir, Nodes: ids}).Write(); err != nil {
		t.Fatal(err)
	}
	c := testcluster.Start(t, n, testcluster.WithConfig(func(cfg *server.Config) {
		files := tlsconf.Files{Cert: filepath.Join(dir, cfg.NodeID+".pem"), Key: filepath.Join(dir, cfg.NodeID+"-key.pem")}
		rest := files
		if auth != tlsconf.NoClientCert {
			rest.CA = filepath.Join(dir, "ca.pem")
		}
		var err error
		if cfg.TLS, err = tlsconf.Load(rest); err != nil {
			t.Fatal(err)
		}
		cfg.TLSClientAuth = auth
		files.CA = filepath.Join(dir, "ca.pem")
		if cfg.Raft.PeerTLS, err = tlsconf.Load(files); err != nil {
			t.Fatal(err)
		}
	}))
	return c, dir
}

// httpsClient trusts the development CA and presents cert (a file base
// name in dir, "" for none).
func httpsClient(t *testing.T, dir, cert string) *http.Client {
	t.Helper()
	f := tlsconf.Files{CA: filepath.Join(dir, "ca.pem")}
	if cert != "" {
		f.Cert, f.Key = filepath.Join(dir, cert+".pem"), filepath.Join(dir, cert+"-key.pem")
	}
	cfg, err := tlsconf.StaticClientConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}, Timeout: 10 * time.Second}
}

func do(t *testing.T, client *http.Client, method, url, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Client-ID", "6f0b2a4c-0d6e-4b53-9a77-5b2d1b3b7e01")
	req.Header.Set("X-Project-ID", "tls")
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestTLS_RESTAndWebsocketOverTLSBetweenNodesOverMutualTLS(t *testing.T) {
	c, dir := tlsCluster(t, 3, tlsconf.NoClientCert)
	client := httpsClient(t, dir, "")
	follower := c.Followers()[0]
	resp, body := do(t, client, "POST", "https://"+follower.APIAddr+"/v2/queues/secure/messages", `{"messages":[{"body":"hello"}]}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("post through a follower: %d %s", resp.StatusCode, body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("REST over TLS used %s, want HTTP/2", resp.Proto)
	}
	other := c.Followers()[1]
	if resp, body := do(t, client, "GET", "https://"+other.APIAddr+"/v2/queues/secure/messages?echo=true", ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, "hello") {
		t.Fatalf("read on another node: %d %s", resp.StatusCode, body)
	}

	// wss:// on the same port.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tlsCfg, err := tlsconf.StaticClientConfig(tlsconf.Files{CA: filepath.Join(dir, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := websocket.Dial(ctx, "wss://"+other.APIAddr+"/", &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}},
	})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer conn.CloseNow()
	req := `{"action":"message_list","headers":{"Client-ID":"6f0b2a4c-0d6e-4b53-9a77-5b2d1b3b7e01","X-Project-ID":"tls"},"body":{"queue_name":"secure","echo":true}}`
	if err := conn.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
		t.Fatal(err)
	}
	_, frame, err := conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Headers struct{ Status int } `json:"headers"`
	}
	if err := json.Unmarshal(frame, &answer); err != nil || answer.Headers.Status != http.StatusOK || !strings.Contains(string(frame), "hello") {
		t.Fatalf("message_list over wss: %s", frame)
	}

	// Plain HTTP on the TLS port is refused.
	plain, err := http.Get("http://" + other.APIAddr + "/v2/queues")
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if plain.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP on the TLS port: %d, want 400", plain.StatusCode)
	}
}

func TestTLS_RequiredClientCertificatesAreEnforced(t *testing.T) {
	c, dir := tlsCluster(t, 1, tlsconf.RequireClientCert)
	url := "https://" + c.Nodes[0].APIAddr + "/v2/queues"
	req, _ := http.NewRequest("GET", url, nil)
	if resp, err := httpsClient(t, dir, "").Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a certificate got %d", resp.StatusCode)
	}
	if resp, body := do(t, httpsClient(t, dir, "client"), "GET", url, ""); resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		t.Fatalf("a client with a certificate from the CA: %d %s", resp.StatusCode, body)
	}
}

func TestTLS_ARotatedCertificateServesNewConnectionsAndKeepsOpenOnes(t *testing.T) {
	c, dir := tlsCluster(t, 1, tlsconf.NoClientCert)
	node := c.Nodes[0]
	var served []*x509.Certificate
	cfg, err := tlsconf.StaticClientConfig(tlsconf.Files{CA: filepath.Join(dir, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		served = append(served, cs.PeerCertificates[0])
		return nil
	}
	keepAlive := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg.Clone(), ForceAttemptHTTP2: true}}
	url := "https://" + node.APIAddr + "/v2/queues"
	if resp, body := do(t, keepAlive, "GET", url, ""); resp.StatusCode >= 300 {
		t.Fatalf("before rotation: %d %s", resp.StatusCode, body)
	}
	if err := (tlsconf.DevelopmentSet{Dir: dir, Nodes: []string{node.ID}}).Write(); err != nil {
		t.Fatal(err)
	}
	if err := node.Server.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	// The open connection keeps working with the certificate it started with.
	if resp, body := do(t, keepAlive, "GET", url, ""); resp.StatusCode >= 300 {
		t.Fatalf("the open connection after rotation: %d %s", resp.StatusCode, body)
	}
	if len(served) != 1 {
		t.Fatalf("the open connection was replaced (%d handshakes)", len(served))
	}
	fresh := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg.Clone(), ForceAttemptHTTP2: true}}
	if resp, body := do(t, fresh, "GET", url, ""); resp.StatusCode >= 300 {
		t.Fatalf("a new connection after rotation: %d %s", resp.StatusCode, body)
	}
	if len(served) != 2 || served[0].SerialNumber.Cmp(served[1].SerialNumber) == 0 {
		t.Fatal("a new connection was not served the new certificate")
	}
}
