package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Authority is a certificate authority held in memory, for development
// clusters and tests.
type Authority struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewAuthority creates a self-signed CA named name, valid for validity.
func NewAuthority(name string, validity time.Duration) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"zaqar-raft development"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Authority{Cert: cert, Key: key}, nil
}

// Role is what an issued certificate may be used for.
type Role int

// The roles of issued certificates.
const (
	// RoleNode is a node's certificate: server and client of the node port,
	// and server of the REST port.
	RoleNode Role = iota
	// RoleClient is a client of the REST port (zaqarctl, tests); it cannot
	// serve, so the node port refuses it.
	RoleClient
)

// Issued is a certificate and its key, PEM-encoded.
type Issued struct {
	CertPEM, KeyPEM []byte
}

// Issue signs a certificate whose common name is name (a node's id for
// RoleNode). hosts become its DNS or IP subject alternative names; a node
// certificate also names itself.
func (a *Authority) Issue(name string, role Role, hosts []string, validity time.Duration) (Issued, error) {
	if name == "" {
		return Issued{}, errors.New("tlsconf: a certificate needs a name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Issued{}, fmt.Errorf("tlsconf: key for %s: %w", name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"zaqar-raft development"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	switch role {
	case RoleNode:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		hosts = append([]string{name}, hosts...)
	case RoleClient:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, &key.PublicKey, a.Key)
	if err != nil {
		return Issued{}, fmt.Errorf("tlsconf: certificate for %s: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Issued{}, err
	}
	return Issued{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// CertPEM is the CA's certificate, PEM-encoded.
func (a *Authority) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Cert.Raw})
}

// KeyPEM is the CA's private key, PEM-encoded.
func (a *Authority) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(a.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadAuthority reads a CA written by WriteAuthority.
func LoadAuthority(certFile, keyFile string) (*Authority, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("tlsconf: %s or %s is not PEM", certFile, keyFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %s: %w", certFile, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %s: %w", keyFile, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("tlsconf: %s is not an ECDSA key", keyFile)
	}
	return &Authority{Cert: cert, Key: key}, nil
}

// DevelopmentSet is what WriteDevelopmentSet writes into a directory:
// ca.pem and ca-key.pem, NODE.pem and NODE-key.pem for every node, and
// client.pem and client-key.pem.
type DevelopmentSet struct {
	Dir   string
	Nodes []string
	// Hosts are extra subject alternative names of every node certificate
	// (127.0.0.1, ::1 and localhost are always included).
	Hosts    []string
	Validity time.Duration // default one year
}

// Write creates the directory and the files, using the CA already in the
// directory if there is one (so new node certificates can be added to a
// set, and a rotation keeps the CA).
func (d DevelopmentSet) Write() error {
	if d.Validity == 0 {
		d.Validity = 365 * 24 * time.Hour
	}
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	caCert, caKey := filepath.Join(d.Dir, "ca.pem"), filepath.Join(d.Dir, "ca-key.pem")
	ca, err := LoadAuthority(caCert, caKey)
	if errors.Is(err, os.ErrNotExist) {
		if ca, err = NewAuthority("zaqar-raft development CA", 10*d.Validity); err != nil {
			return err
		}
		keyPEM, err := ca.KeyPEM()
		if err != nil {
			return err
		}
		if err := writeFile(caKey, keyPEM, 0o600); err != nil {
			return err
		}
		if err := writeFile(caCert, ca.CertPEM(), 0o644); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	hosts := append([]string{"localhost", "127.0.0.1", "::1"}, d.Hosts...)
	for _, n := range d.Nodes {
		is, err := ca.Issue(n, RoleNode, hosts, d.Validity)
		if err != nil {
			return err
		}
		if err := is.write(filepath.Join(d.Dir, n)); err != nil {
			return err
		}
	}
	is, err := ca.Issue("client", RoleClient, nil, d.Validity)
	if err != nil {
		return err
	}
	return is.write(filepath.Join(d.Dir, "client"))
}

// write stores the certificate as base.pem and the key as base-key.pem.
func (is Issued) write(base string) error {
	if err := writeFile(base+"-key.pem", is.KeyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(base+".pem", is.CertPEM, 0o644)
}

// writeFile replaces path atomically, so a node watching it never reads a
// half-written file.
func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}
