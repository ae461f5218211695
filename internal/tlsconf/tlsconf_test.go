package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nodeUsages are what the node port asks of a peer certificate.
var nodeUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}

func devSet(t *testing.T, nodes ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := (DevelopmentSet{Dir: dir, Nodes: nodes}).Write(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func nodeSource(t *testing.T, dir, node string) *Source {
	t.Helper()
	s, err := Load(Files{Cert: filepath.Join(dir, node+".pem"), Key: filepath.Join(dir, node+"-key.pem"), CA: filepath.Join(dir, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// handshake runs a TLS handshake between the two configurations over a
// pipe and returns the client's and the server's errors and the server's
// view of the client's certificate.
func handshake(t *testing.T, client, server *tls.Config) (clientErr, serverErr error, peer string) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	_ = a.SetDeadline(time.Now().Add(5 * time.Second))
	_ = b.SetDeadline(time.Now().Add(5 * time.Second))
	done := make(chan error, 1)
	srv := tls.Server(b, server)
	go func() {
		err := srv.Handshake()
		if err != nil {
			b.Close()
		}
		done <- err
	}()
	cl := tls.Client(a, client)
	clientErr = cl.Handshake()
	if clientErr != nil {
		a.Close()
	} else {
		// With TLS 1.3 the client is done before the server has judged its
		// certificate; reading takes the server's alert off the pipe.
		go func() { _, _ = cl.Read(make([]byte, 1)) }()
	}
	serverErr = <-done
	if serverErr == nil {
		if pc := srv.ConnectionState().PeerCertificates; len(pc) > 0 {
			peer = PeerName(pc[0])
		}
	}
	return clientErr, serverErr, peer
}

func TestMutualTLS_NodesOfOneCAAuthenticateEachOther(t *testing.T) {
	dir := devSet(t, "node1", "node2")
	n1, n2 := nodeSource(t, dir, "node1"), nodeSource(t, dir, "node2")
	cErr, sErr, peer := handshake(t, n1.ClientConfig("node2", nodeUsages...), n2.ServerConfig(RequireClientCert, nodeUsages...))
	if cErr != nil || sErr != nil {
		t.Fatalf("handshake: client %v, server %v", cErr, sErr)
	}
	if peer != "node1" {
		t.Fatalf("server sees the client as %q, want node1", peer)
	}
}

func TestMutualTLS_ClientRefusesAServerWithAnotherName(t *testing.T) {
	dir := devSet(t, "node1", "node2")
	n1, n2 := nodeSource(t, dir, "node1"), nodeSource(t, dir, "node2")
	cErr, _, _ := handshake(t, n1.ClientConfig("node3", nodeUsages...), n2.ServerConfig(RequireClientCert, nodeUsages...))
	if cErr == nil || !strings.Contains(cErr.Error(), `"node2", not "node3"`) {
		t.Fatalf("client error = %v, want a name mismatch", cErr)
	}
}

func TestMutualTLS_ServerRefusesStrangers(t *testing.T) {
	dir := devSet(t, "node1", "node2")
	other := devSet(t, "node1")
	n2 := nodeSource(t, dir, "node2")
	server := n2.ServerConfig(RequireClientCert, nodeUsages...)

	// No certificate at all.
	noCert := &tls.Config{InsecureSkipVerify: true}
	if _, sErr, _ := handshake(t, noCert, server); sErr == nil {
		t.Error("a client without a certificate was accepted")
	}
	// A node certificate from another CA.
	foreign := nodeSource(t, other, "node1")
	if _, sErr, _ := handshake(t, foreign.ClientConfig(""), server); sErr == nil {
		t.Error("a certificate from another CA was accepted")
	}
	// A self-signed certificate.
	ca, err := NewAuthority("node1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	self := tls.Certificate{Certificate: [][]byte{ca.Cert.Raw}, PrivateKey: ca.Key}
	if _, sErr, _ := handshake(t, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{self}}, server); sErr == nil {
		t.Error("a self-signed certificate was accepted")
	}
	// A client-only certificate of the right CA cannot act as a node.
	client, err := Load(Files{Cert: filepath.Join(dir, "client.pem"), Key: filepath.Join(dir, "client-key.pem"), CA: filepath.Join(dir, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	if _, sErr, _ := handshake(t, client.ClientConfig(""), server); sErr == nil {
		t.Error("a client certificate was accepted on the node port")
	}
}

func TestReload_NewFilesServeTheNextHandshake(t *testing.T) {
	dir := devSet(t, "node1")
	s := nodeSource(t, dir, "node1")
	before := s.Certificate().Leaf.SerialNumber
	if changed, err := s.Reload(); err != nil || changed {
		t.Fatalf("Reload of unchanged files = %v, %v; want false, nil", changed, err)
	}
	// A rotation: the same CA issues a new certificate under the same names.
	if err := (DevelopmentSet{Dir: dir, Nodes: []string{"node1"}}).Write(); err != nil {
		t.Fatal(err)
	}
	changed, err := s.Reload()
	if err != nil || !changed {
		t.Fatalf("Reload after rotation = %v, %v; want true, nil", changed, err)
	}
	after := s.Certificate().Leaf.SerialNumber
	if before.Cmp(after) == 0 {
		t.Fatal("the certificate did not change")
	}
	var served *x509.Certificate
	client := &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
		served = cs.PeerCertificates[0]
		return nil
	}}
	if cErr, sErr, _ := handshake(t, client, s.ServerConfig(NoClientCert)); cErr != nil || sErr != nil {
		t.Fatalf("handshake: %v %v", cErr, sErr)
	}
	if served.SerialNumber.Cmp(after) != 0 {
		t.Fatal("the server still presents the old certificate")
	}
}

func TestReload_BrokenFilesKeepTheOldCertificate(t *testing.T) {
	dir := devSet(t, "node1")
	s := nodeSource(t, dir, "node1")
	before := s.Certificate().Leaf.SerialNumber
	if err := os.WriteFile(filepath.Join(dir, "node1.pem"), []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reload(); err == nil {
		t.Fatal("Reload accepted a broken certificate")
	}
	if s.Certificate().Leaf.SerialNumber.Cmp(before) != 0 {
		t.Fatal("a failed reload replaced the certificate")
	}
}

func TestStaticClientConfig_VerifiesHostNames(t *testing.T) {
	dir := devSet(t, "node1")
	s := nodeSource(t, dir, "node1")
	cfg, err := StaticClientConfig(Files{CA: filepath.Join(dir, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ServerName = "127.0.0.1"
	if cErr, sErr, _ := handshake(t, cfg, s.ServerConfig(NoClientCert)); cErr != nil || sErr != nil {
		t.Fatalf("handshake with a name the certificate holds: %v %v", cErr, sErr)
	}
	cfg.ServerName = "example.org"
	if cErr, _, _ := handshake(t, cfg, s.ServerConfig(NoClientCert)); cErr == nil {
		t.Fatal("a certificate without the server's name was accepted")
	}
}

func TestLoad_RefusesHalfAnIdentity(t *testing.T) {
	if _, err := Load(Files{Cert: "x.pem"}); err == nil {
		t.Fatal("a certificate without a key was accepted")
	}
	if _, err := Load(Files{}); err == nil {
		t.Fatal("an empty identity was accepted")
	}
}
