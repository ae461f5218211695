// Package tlsconf holds the TLS material of a node: a certificate and key
// (and optionally a CA bundle) loaded from PEM files, reloaded when the
// files change or when asked, and the tls.Config shapes the REST port, the
// node port and their clients need. It also issues throwaway development
// certificates (certgen.go).
package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Files names the PEM files of one TLS identity.
type Files struct {
	Cert string // certificate chain, leaf first
	Key  string // private key of the leaf
	// CA is a bundle of CA certificates that verify the other side ("": the
	// system roots for a client, no client verification for a server). During
	// a CA change it holds both the old and the new CA.
	CA string
}

// material is one loaded generation of the files.
type material struct {
	cert *tls.Certificate // nil when Files.Cert is empty
	pool *x509.CertPool   // nil when Files.CA is empty
}

// Source is a reloadable TLS identity. The zero value is not usable; call
// Load.
type Source struct {
	files   Files
	current atomic.Pointer[material]

	mu     sync.Mutex // serialises reloads
	stamps []fileStamp
}

// fileStamp is what a file looked like when it was last loaded.
type fileStamp struct {
	path    string
	size    int64
	modTime time.Time
}

// Load reads the files. A certificate without its key, or a key without its
// certificate, is an error.
func Load(f Files) (*Source, error) {
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("tlsconf: a certificate needs its key and a key its certificate")
	}
	if f.Cert == "" && f.CA == "" {
		return nil, errors.New("tlsconf: no certificate and no CA given")
	}
	s := &Source{files: f}
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Files returns the files this source reads.
func (s *Source) Files() Files { return s.files }

// Reload reads the files again if any of them changed since the last load
// and reports whether it installed new material. On error the previous
// material stays in use.
func (s *Source) Reload() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stamps, err := s.stat()
	if err != nil {
		return false, err
	}
	if s.current.Load() != nil && sameStamps(stamps, s.stamps) {
		return false, nil
	}
	m, err := s.load()
	if err != nil {
		return false, err
	}
	s.current.Store(m)
	s.stamps = stamps
	return true, nil
}

func (s *Source) stat() ([]fileStamp, error) {
	var out []fileStamp
	for _, p := range []string{s.files.Cert, s.files.Key, s.files.CA} {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: %w", err)
		}
		out = append(out, fileStamp{path: p, size: fi.Size(), modTime: fi.ModTime()})
	}
	return out, nil
}

// sameStamps compares paths, sizes and modification times (nanoseconds on
// the file systems nodes run on): writing new files changes them.
func sameStamps(a, b []fileStamp) bool {
	return slices.EqualFunc(a, b, func(x, y fileStamp) bool {
		return x.path == y.path && x.size == y.size && x.modTime.Equal(y.modTime)
	})
}

func (s *Source) load() (*material, error) {
	read := func(p string) ([]byte, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: %w", err)
		}
		return b, nil
	}
	m := &material{}
	if s.files.Cert != "" {
		certPEM, err := read(s.files.Cert)
		if err != nil {
			return nil, err
		}
		keyPEM, err := read(s.files.Key)
		if err != nil {
			return nil, err
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: %s and %s: %w", s.files.Cert, s.files.Key, err)
		}
		m.cert = &cert
	}
	if s.files.CA != "" {
		pool, err := LoadCAPool(s.files.CA)
		if err != nil {
			return nil, err
		}
		m.pool = pool
	}
	return m, nil
}

// Watch reloads the files whenever they change, checking every interval,
// until ctx ends. Failed reloads are logged and the old material kept (a
// rotation that writes the certificate and the key one after the other is
// seen half-done once, then whole).
func (s *Source) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := s.Reload()
		switch {
		case err != nil:
			if err.Error() != lastErr {
				log.Warn("TLS files changed but could not be loaded; the previous certificate stays in use", "err", err)
			}
			lastErr = err.Error()
		case changed:
			lastErr = ""
			log.Info("TLS certificate reloaded", "cert", s.files.Cert, "subject", s.Subject())
		}
	}
}

// Certificate returns the current certificate (nil if none is configured).
func (s *Source) Certificate() *tls.Certificate { return s.current.Load().cert }

// Subject returns the current leaf certificate's subject, for logs.
func (s *Source) Subject() string {
	c := s.Certificate()
	if c == nil || c.Leaf == nil {
		return ""
	}
	return c.Leaf.Subject.String()
}

// Name returns the identity of the current certificate: its subject common
// name (see PeerName).
func (s *Source) Name() string {
	c := s.Certificate()
	if c == nil || c.Leaf == nil {
		return ""
	}
	return PeerName(c.Leaf)
}

// PeerName is the identity a certificate proves: its subject common name.
// On the node port this is the node id.
func PeerName(cert *x509.Certificate) string { return cert.Subject.CommonName }

// ClientAuth says what a server asks of the clients' certificates.
type ClientAuth int

// The client certificate policies of a server.
const (
	// NoClientCert asks for none.
	NoClientCert ClientAuth = iota
	// VerifyIfGiven verifies a certificate a client presents against the CA
	// bundle; clients without one are served.
	VerifyIfGiven
	// RequireClientCert refuses clients without a certificate from the CA.
	RequireClientCert
)

// ServerConfig is a server configuration over the current material:
// TLS 1.2 at least, Go's default cipher suites, the certificate looked up
// on every handshake (so a reload applies to the next connection and never
// to one in progress). usages are the extended key usages a client
// certificate must allow (ExtKeyUsageClientAuth if none are given).
func (s *Source) ServerConfig(auth ClientAuth, usages ...x509.ExtKeyUsage) *tls.Config {
	if len(usages) == 0 {
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := s.Certificate(); c != nil {
				return c, nil
			}
			return nil, errors.New("tlsconf: no server certificate configured")
		},
	}
	switch auth {
	case NoClientCert:
	case VerifyIfGiven, RequireClientCert:
		cfg.ClientAuth = tls.RequestClientCert
		if auth == RequireClientCert {
			cfg.ClientAuth = tls.RequireAnyClientCert
		}
		// Verified here rather than by crypto/tls so that a reloaded CA
		// bundle applies to the next handshake.
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return nil // only reachable with VerifyIfGiven
			}
			_, err := s.verify(raw, usages)
			return err
		}
	}
	return cfg
}

// ClientConfig is a client configuration that presents the current
// certificate (if any) and verifies the server's chain against the CA
// bundle with the given usages; the server's host name is not checked, its
// certificate's identity is (expect, if not empty, must equal PeerName).
// Use it between nodes, whose addresses need not appear in certificates;
// use StaticClientConfig for clients of the REST port.
func (s *Source) ClientConfig(expect string, usages ...x509.ExtKeyUsage) *tls.Config {
	if len(usages) == 0 {
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c := s.Certificate(); c != nil {
				return c, nil
			}
			return &tls.Certificate{}, nil
		},
		// The chain is verified in VerifyConnection against the current
		// bundle, without the host name check crypto/tls would make.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			leaf, err := s.verify(rawChain(cs.PeerCertificates), usages)
			if err != nil {
				return err
			}
			if expect != "" && PeerName(leaf) != expect {
				return fmt.Errorf("tlsconf: the server's certificate is for %q, not %q", PeerName(leaf), expect)
			}
			return nil
		},
	}
}

func rawChain(certs []*x509.Certificate) [][]byte {
	out := make([][]byte, len(certs))
	for i, c := range certs {
		out[i] = c.Raw
	}
	return out
}

// verify checks a presented chain against the CA bundle: the leaf must be
// signed by it, valid now, and allow every one of usages.
func (s *Source) verify(raw [][]byte, usages []x509.ExtKeyUsage) (*x509.Certificate, error) {
	pool := s.current.Load().pool
	if pool == nil {
		return nil, errors.New("tlsconf: no CA bundle to verify the peer with")
	}
	if len(raw) == 0 {
		return nil, errors.New("tlsconf: the peer presented no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: peer certificate: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	// x509 accepts a chain if the leaf allows any one of the requested
	// usages; each must hold, so verify once per usage.
	for _, u := range usages {
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			return nil, fmt.Errorf("tlsconf: peer certificate %q: %w", certs[0].Subject.CommonName, err)
		}
	}
	return certs[0], nil
}

// LoadCAPool reads a PEM bundle of CA certificates; a file that holds
// none is an error.
func LoadCAPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tlsconf: %s holds no PEM certificate", path)
	}
	return pool, nil
}

// StaticClientConfig is a client configuration for the REST port, read
// once: the server's chain is verified against f.CA (the system roots if
// empty) with the usual host name check, and f.Cert, if given, is presented.
func StaticClientConfig(f Files) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		pool, err := LoadCAPool(f.CA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("tlsconf: a certificate needs its key and a key its certificate")
	}
	if f.Cert != "" {
		c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

// LooksLikeTLS reports whether b starts a TLS handshake record (a
// ClientHello's first byte), which lets a plain-text listener tell a TLS
// client apart from its own protocol.
func LooksLikeTLS(b []byte) bool { return len(b) > 0 && b[0] == 0x16 }
