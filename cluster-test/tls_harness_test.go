package clustertest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
)

// devTLS is a development CA and the certificates of a test cluster's
// nodes, written by tlsconf.DevelopmentSet into a directory of the test
// (ca.pem, NODE.pem, NODE-key.pem, client.pem, ...), and the client side of
// them. Each node serves its REST port and its node port with the same
// certificate, as zaqar-server local-cluster -tls does.
type devTLS struct {
	dir string
	// hosts are names and addresses the node certificates are valid for
	// besides 127.0.0.1, ::1 and localhost.
	hosts []string
	// client verifies the nodes' REST ports against the CA (host names
	// are checked: the certificates name 127.0.0.1).
	client *tls.Config
	// rest carries REST requests (HTTP/2, which the nodes offer over TLS,
	// as Go's own client negotiates it); ws carries websocket upgrades,
	// which need HTTP/1.1.
	rest, ws *http.Transport
}

// newDevTLS writes a CA (kept if dir has one) and certificates for ids,
// valid for hosts too, into dir.
func newDevTLS(t *testing.T, dir string, hosts []string, ids ...string) *devTLS {
	t.Helper()
	d := &devTLS{dir: dir, hosts: hosts}
	if err := d.issue(ids...); err != nil {
		t.Fatal(err)
	}
	d.trust(t, d.CA())
	return d
}

// trust makes the clients of the nodes verify them with the CA bundle in
// caFile from now on (clients made before keep what they trusted).
func (d *devTLS) trust(t *testing.T, caFile string) {
	t.Helper()
	cfg, err := tlsconf.StaticClientConfig(tlsconf.Files{CA: caFile})
	if err != nil {
		t.Fatal(err)
	}
	d.client = cfg
	d.rest = http.DefaultTransport.(*http.Transport).Clone()
	d.rest.TLSClientConfig = cfg.Clone()
	d.rest.ForceAttemptHTTP2 = true
	d.ws = d.http1Transport()
}

// replaceFile replaces path with b by a rename, as certificate tools
// should: a node never reads a half-written file.
func replaceFile(path string, b []byte) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// http1Transport returns a new transport that verifies the nodes and
// speaks HTTP/1.1 only. (Its TLS configuration is its own: a transport
// that speaks HTTP/2 adds "h2" to the ALPN list of the configuration it
// is given, and an HTTP/1.1 transport sharing that configuration would
// then be answered in HTTP/2.)
func (d *devTLS) http1Transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = d.client.Clone()
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	return tr
}

// issue writes new certificates for ids, from the same CA, replacing the
// files in place (each by a rename): running nodes pick them up within the
// files' polling interval, restarted ones at once.
func (d *devTLS) issue(ids ...string) error {
	return tlsconf.DevelopmentSet{Dir: d.dir, Nodes: ids, Hosts: d.hosts}.Write()
}

// CA is the CA certificate's file.
func (d *devTLS) CA() string { return filepath.Join(d.dir, "ca.pem") }

// certFiles are node id's certificate and key files.
func (d *devTLS) certFiles(id string) (cert, key string) {
	return filepath.Join(d.dir, id+".pem"), filepath.Join(d.dir, id+"-key.pem")
}

// nodeArgs are the flags that give node id TLS on both ports.
func (d *devTLS) nodeArgs(id string) []string {
	cert, key := d.certFiles(id)
	return []string{"-tls-cert", cert, "-tls-key", key, "-peer-tls-ca", d.CA(), "-peer-tls-cert", cert, "-peer-tls-key", key}
}

// clientConfig returns a TLS configuration that verifies the nodes' REST
// ports, for a transport of the caller's own (nil on a nil d: the nodes
// speak plain text).
func (d *devTLS) clientConfig() *tls.Config {
	if d == nil {
		return nil
	}
	return d.client.Clone()
}

// wsDialOptions are the options of a websocket dial to a node (nil on a
// nil d).
func (d *devTLS) wsDialOptions() *websocket.DialOptions {
	if d == nil {
		return nil
	}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: d.ws}}
}

// apiURL is the URL of the REST port at addr for scheme "http" or "ws",
// secured ("https", "wss") when the node has certs.
func apiURL(scheme, addr string, certs *devTLS) string {
	if certs != nil {
		scheme += "s"
	}
	return scheme + "://" + addr
}

// fileSerial returns the serial number of the certificate in node id's
// file.
func (d *devTLS) fileSerial(id string) (string, error) {
	cert, _ := d.certFiles(id)
	b, err := os.ReadFile(cert)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return "", fmt.Errorf("%s holds no PEM block", cert)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", err
	}
	return c.SerialNumber.String(), nil
}

// servedSerial opens a new TLS connection to p's REST port and returns the
// serial number of the certificate p serves on it.
func servedSerial(p *proc) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := (&tls.Dialer{Config: p.tls.clientConfig()}).DialContext(ctx, "tcp", p.APIAddr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// httpClient returns a client of p's REST port; a zero timeout leaves the
// bound to the request's context.
func (p *proc) httpClient(timeout time.Duration) *http.Client {
	if p.tls == nil {
		return &http.Client{Timeout: timeout}
	}
	return &http.Client{Timeout: timeout, Transport: p.tls.rest}
}

// dialWS opens a websocket to p's REST port.
func (p *proc) dialWS(ctx context.Context) (*websocket.Conn, error) {
	conn, _, err := websocket.Dial(ctx, p.WSURL(), p.tls.wsDialOptions())
	return conn, err
}
