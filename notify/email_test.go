package notify_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
	"github.com/zaqar-raft/zaqar/notify"
	"github.com/zaqar-raft/zaqar/server"
	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

// receivedMail is one message an SMTP server accepted.
type receivedMail struct {
	From string
	To   []string
	TLS  bool   // the session was TLS (STARTTLS or from the first byte)
	User string // the authenticated user, "" if none
	Msg  *mail.Message
	Body string
}

// smtpSink is a real SMTP server (github.com/emersion/go-smtp) that keeps
// every message it accepts. With a user set it requires PLAIN
// authentication before MAIL.
type smtpSink struct {
	t              testing.TB
	addr           string
	user, password string

	mu   sync.Mutex
	msgs []receivedMail
}

// startSMTP starts an SMTP server on loopback. With tlsConfig it offers
// STARTTLS and allows authentication only after it.
func startSMTP(t testing.TB, user, password string, tlsConfig *tls.Config) *smtpSink {
	t.Helper()
	return serveSMTP(t, user, password, tlsConfig, false)
}

// startSMTPS starts an SMTP server on loopback that speaks TLS from the
// first byte (smtps://, port 465's kind) and offers no STARTTLS: it
// allows authentication only because the connection is TLS.
func startSMTPS(t testing.TB, user, password string, tlsConfig *tls.Config) *smtpSink {
	t.Helper()
	return serveSMTP(t, user, password, tlsConfig, true)
}

func serveSMTP(t testing.TB, user, password string, tlsConfig *tls.Config, implicit bool) *smtpSink {
	t.Helper()
	sink := &smtpSink{t: t, user: user, password: password}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{sink: sink, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = nopLogger{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink.addr = ln.Addr().String()
	if implicit {
		ln = tls.NewListener(ln, tlsConfig)
	} else {
		srv.TLSConfig = tlsConfig
		srv.AllowInsecureAuth = tlsConfig == nil
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sink
}

// relayCertificate issues the SMTP server a certificate for 127.0.0.1 from
// a fresh development CA (internal/tlsconf) and returns the server's TLS
// configuration and a pool holding only that CA, for the client to verify
// the server with.
func relayCertificate(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	ca, err := tlsconf.NewAuthority("smtp test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issued, err := ca.Issue("smtp.test", tlsconf.RoleNode, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(issued.CertPEM, issued.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	return &tls.Config{Certificates: []tls.Certificate{cert}}, roots
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...interface{}) {}
func (nopLogger) Println(...interface{})        {}

// hostPort splits the sink's address for notify.EmailConfig.
func (s *smtpSink) hostPort() (string, int) {
	host, port, _ := net.SplitHostPort(s.addr)
	p, _ := net.LookupPort("tcp", port)
	return host, p
}

func (s *smtpSink) messages() []receivedMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]receivedMail(nil), s.msgs...)
}

// waitMessages waits until the sink holds at least n messages.
func (s *smtpSink) waitMessages(n int) []receivedMail {
	s.t.Helper()
	deadline := time.Now().Add(deliveryTimeout)
	for {
		got := s.messages()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the SMTP server got %d messages within %s, want %d", len(got), deliveryTimeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type smtpSession struct {
	sink *smtpSink
	conn *smtp.Conn
	user string
	from string
	to   []string
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != s.sink.user || password != s.sink.password {
			return errors.New("invalid credentials")
		}
		s.user = user
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.sink.user != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(m.Body)
	_, isTLS := s.conn.TLSConnectionState()
	s.sink.mu.Lock()
	s.sink.msgs = append(s.sink.msgs, receivedMail{From: s.from, To: s.to, TLS: isTLS, User: s.user, Msg: m, Body: strings.TrimSpace(string(body))})
	s.sink.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        { s.from, s.to = "", nil }
func (s *smtpSession) Logout() error { return nil }

// selfSignedTLS returns a server TLS configuration with a fresh
// self-signed certificate for 127.0.0.1.
func selfSignedTLS(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// emailCluster starts a one-node cluster (email settings are per node;
// one node is enough to exercise them) and returns a client of it.
func emailCluster(t *testing.T, email notify.EmailConfig, confirm bool) (*testcluster.Cluster, *api) {
	t.Helper()
	c := testcluster.Start(t, 1, testcluster.WithConfig(func(cfg *server.Config) {
		cfg.Notify.Email = email
		cfg.Notifications.RequireConfirmation = confirm
		cfg.Notifications.PublicURL = "https://zaqar.example.com"
	}))
	return c, clientsOf(t, c, "p-mail")[0]
}

// byRecipient sorts mails by their first recipient.
func byRecipient(ms []receivedMail) []receivedMail {
	sort.Slice(ms, func(i, j int) bool { return ms[i].To[0] < ms[j].To[0] })
	return ms
}

// checkMail fails unless m has the envelope, headers and body wanted.
func checkMail(t *testing.T, m receivedMail, from, to, subject, body string) {
	t.Helper()
	if m.From != from || len(m.To) != 1 || m.To[0] != to {
		t.Fatalf("envelope from %q to %v, want %q to %q", m.From, m.To, from, to)
	}
	h := m.Msg.Header
	if h.Get("From") != from || h.Get("To") != to || h.Get("Subject") != subject {
		t.Fatalf("headers From %q To %q Subject %q, want %q %q %q", h.Get("From"), h.Get("To"), h.Get("Subject"), from, to, subject)
	}
	if !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("Content-Type %q", h.Get("Content-Type"))
	}
	jsonEqual(t, "email body", []byte(m.Body), body)
}

func TestEmail(t *testing.T) {
	// Two subscribers: one names its subject in the URI (which wins over
	// options.subject) and its sender in the options; the other takes its
	// subject from the options and the configured sender.
	subscribeBoth := func(a *api) {
		a.subscribe("/v2/queues/mailq", map[string]any{
			"subscriber": "mailto:ops@example.com?subject=Disk%20alert",
			"options":    map[string]any{"from": "zaqar@example.com", "subject": "not this one"},
		})
		a.subscribe("/v2/queues/mailq", map[string]any{
			"subscriber": "mailto:dev@example.com", "options": map[string]any{"subject": "Hello"},
		})
	}
	checkBoth := func(t *testing.T, got []receivedMail) {
		t.Helper()
		got = byRecipient(got)
		want := payload("mailq", `{"disk": "full"}`, 300)
		checkMail(t, got[0], "noreply@example.com", "dev@example.com", "Hello", want)
		checkMail(t, got[1], "zaqar@example.com", "ops@example.com", "Disk alert", want)
	}
	// deliverThroughTLSRelay posts to both subscribers through a relay
	// that must see TLS (how: the kind) and authentication.
	deliverThroughTLSRelay := func(t *testing.T, sink *smtpSink, cfg notify.EmailConfig, how string) {
		t.Helper()
		c, a := emailCluster(t, cfg, false)
		subscribeBoth(a)
		m := snapshotCounters(t, c, deliveries("mailto", "delivered"))
		a.post("/v2/queues/mailq", `{"body": {"disk": "full"}, "ttl": 300}`)
		got := sink.waitMessages(2)
		checkBoth(t, got)
		for _, m := range got {
			if !m.TLS || m.User != "zaqar" {
				t.Fatalf("session tls %v user %q, want %s and authentication", m.TLS, m.User, how)
			}
		}
		m.waitDelta(deliveries("mailto", "delivered"), 2)
	}

	t.Run("through an SMTP relay with PLAIN authentication", func(t *testing.T) {
		sink := startSMTP(t, "zaqar", "pa55", nil)
		host, port := sink.hostPort()
		_, a := emailCluster(t, notify.EmailConfig{SMTPHost: host, SMTPPort: port, Username: "zaqar", Password: "pa55", From: "noreply@example.com"}, false)
		subscribeBoth(a)
		a.post("/v2/queues/mailq", `{"body": {"disk": "full"}, "ttl": 300}`)
		got := sink.waitMessages(2)
		checkBoth(t, got)
		for _, m := range got {
			if m.User != "zaqar" || m.TLS {
				t.Fatalf("session user %q tls %v, want an authenticated plain session", m.User, m.TLS)
			}
		}
	})

	t.Run("through an SMTP relay with STARTTLS", func(t *testing.T) {
		sink := startSMTP(t, "zaqar", "pa55", selfSignedTLS(t))
		host, port := sink.hostPort()
		deliverThroughTLSRelay(t, sink, notify.EmailConfig{
			SMTPHost: host, SMTPPort: port, StartTLS: true, InsecureSkipVerify: true,
			Username: "zaqar", Password: "pa55", From: "noreply@example.com",
		}, "STARTTLS")
	})

	t.Run("through an SMTP relay with implicit TLS (smtps://), its certificate verified", func(t *testing.T) {
		serverTLS, roots := relayCertificate(t)
		sink := startSMTPS(t, "zaqar", "pa55", serverTLS)
		host, port := sink.hostPort()
		// The relay offers no STARTTLS and allows PLAIN only on TLS: an
		// authenticated session was TLS from its first byte.
		deliverThroughTLSRelay(t, sink, notify.EmailConfig{
			SMTPHost: host, SMTPPort: port, ImplicitTLS: true, RootCAs: roots,
			Username: "zaqar", Password: "pa55", From: "noreply@example.com",
		}, "implicit TLS")
	})

	t.Run("implicit TLS sends nothing to a relay whose certificate the configured CA did not issue", func(t *testing.T) {
		serverTLS, _ := relayCertificate(t)
		_, otherRoots := relayCertificate(t)
		sink := startSMTPS(t, "", "", serverTLS)
		host, port := sink.hostPort()
		c, a := emailCluster(t, notify.EmailConfig{SMTPHost: host, SMTPPort: port, ImplicitTLS: true, RootCAs: otherRoots}, false)
		a.subscribe("/v2/queues/mailq", map[string]any{"subscriber": "mailto:ops@example.com"})
		m := snapshotCounters(t, c, retries("mailto"))
		a.post("/v2/queues/mailq", `{"body": 1}`)
		m.waitDelta(retries("mailto"), 1) // the first attempt failed
		if n := len(sink.messages()); n != 0 {
			t.Fatalf("the relay got %d messages over an unverified connection", n)
		}
	})

	t.Run("confirmation emails are made from the configured templates", func(t *testing.T) {
		sink := startSMTP(t, "", "", nil)
		host, port := sink.hostPort()
		_, a := emailCluster(t, notify.EmailConfig{
			SMTPHost: host, SMTPPort: port, From: "noreply@example.com",
			ExternalConfirmationURL: "https://confirm.example.com/page",
			SubscriptionConfirmation: notify.EmailTemplate{
				Topic: "Confirm {0}, please", Body: "Queue {0} of project {1} {{needs you}}: {2}", Sender: "Ops Team <ops-noreply@example.com>",
			},
			UnsubscribeConfirmation: notify.EmailTemplate{Topic: "Goodbye", Body: "{0} is quiet now; to hear from it again: {2}"},
		}, true)
		id := a.subscribe("/v2/queues/mailq", map[string]any{
			"subscriber": "mailto:ops@example.com?subject=Not%20for%20confirmations", "options": map[string]any{"from": "zaqar@example.com"},
		})
		conf := sink.waitMessages(1)[0]
		// The topic is the subject as written (it has no placeholders
		// upstream either), whatever the URI's subject; the sender is the
		// template's, its address alone on the envelope.
		h := conf.Msg.Header
		if h.Get("Subject") != "Confirm {0}, please" || h.Get("From") != "Ops Team <ops-noreply@example.com>" ||
			conf.From != "ops-noreply@example.com" || conf.To[0] != "ops@example.com" {
			t.Fatalf("confirmation envelope from %q to %v, headers %v", conf.From, conf.To, h)
		}
		const prefix = "Queue mailq of project p-mail {needs you}: https://confirm.example.com/page?"
		if !strings.HasPrefix(conf.Body, prefix) {
			t.Fatalf("confirmation body %q, want it to start %q", conf.Body, prefix)
		}
		link, err := url.Parse(strings.TrimPrefix(conf.Body, "Queue mailq of project p-mail {needs you}: "))
		if err != nil {
			t.Fatal(err)
		}
		q := link.Query()
		path := "/v2/queues/mailq/subscriptions/" + id + "/confirm"
		if q.Get("Paths") != path || q.Get("Queue") != "mailq" {
			t.Fatalf("confirmation link parameters %v", q)
		}
		signed := &api{t: t, http: a.http, base: a.base, clientID: newUUID()}
		signed.expect(204, "PUT", path, `{"confirmed": true}`,
			"X-Project-ID", q.Get("Project"), "URL-Signature", q.Get("Signature"), "URL-Expires", q.Get("Expires"),
			"URL-Methods", q.Get("Methods"), "URL-Paths", q.Get("Paths"))

		// Unsubscribing sends the other template; without a sender of its
		// own it comes from the subscription's options.from.
		a.expect(204, "PUT", path, `{"confirmed": false}`)
		bye := sink.waitMessages(2)[1]
		if bye.Msg.Header.Get("Subject") != "Goodbye" || bye.Msg.Header.Get("From") != "zaqar@example.com" || bye.From != "zaqar@example.com" {
			t.Fatalf("unsubscribe confirmation headers %v, envelope from %q", bye.Msg.Header, bye.From)
		}
		if !strings.HasPrefix(bye.Body, "mailq is quiet now; to hear from it again: https://confirm.example.com/page?") {
			t.Fatalf("unsubscribe confirmation body %q", bye.Body)
		}
	})

	t.Run("a wrong SMTP password fails the delivery without retries", func(t *testing.T) {
		sink := startSMTP(t, "zaqar", "pa55", nil)
		host, port := sink.hostPort()
		c, a := emailCluster(t, notify.EmailConfig{SMTPHost: host, SMTPPort: port, Username: "zaqar", Password: "wrong"}, false)
		a.subscribe("/v2/queues/mailq", map[string]any{"subscriber": "mailto:ops@example.com"})
		m := snapshotCounters(t, c, deliveries("mailto", "failed"), attempts("mailto"))
		a.post("/v2/queues/mailq", `{"body": 1}`)
		m.waitDelta(deliveries("mailto", "failed"), 1)
		if n := m.delta(attempts("mailto")); n != 1 || len(sink.messages()) != 0 {
			t.Fatalf("%v attempts and %d messages, want 1 and 0", n, len(sink.messages()))
		}
	})

	t.Run("through a sendmail command, with a confirmation email first", func(t *testing.T) {
		dir := t.TempDir()
		script := filepath.Join(dir, "sendmail.sh")
		out := filepath.Join(dir, "out")
		if err := os.Mkdir(out, 0o755); err != nil {
			t.Fatal(err)
		}
		// Each message is written whole, then renamed into place.
		if err := os.WriteFile(script, []byte("#!/bin/sh\nf=\"$1/mail.$$\"\ncat > \"$f.tmp\" && mv \"$f.tmp\" \"$f.eml\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, a := emailCluster(t, notify.EmailConfig{
			SendmailCommand: "/bin/sh " + script + " " + out, From: "noreply@example.com",
			ExternalConfirmationURL: "https://confirm.example.com/page",
		}, true)
		id := a.subscribe("/v2/queues/mailq", map[string]any{"subscriber": "mailto:ops@example.com", "options": map[string]any{"from": "zaqar@example.com"}})
		mails := waitMailFiles(t, out, 1)
		conf := mails[0]
		if conf.Header.Get("To") != "ops@example.com" || conf.Header.Get("From") != "zaqar@example.com" ||
			conf.Header.Get("Subject") != "Zaqar Notification - Subscription Confirmation" {
			t.Fatalf("confirmation headers %v", conf.Header)
		}
		body := readBody(t, conf)
		i := strings.Index(body, "https://confirm.example.com/page?")
		if !strings.Contains(body, "You have chosen to subscribe to the queue: mailq") || !strings.Contains(body, "p-mail") || i < 0 {
			t.Fatalf("confirmation body %q", body)
		}
		link, err := url.Parse(strings.Fields(body[i:])[0])
		if err != nil {
			t.Fatal(err)
		}
		q := link.Query()
		path := "/v2/queues/mailq/subscriptions/" + id + "/confirm"
		if q.Get("Paths") != path || q.Get("Methods") != "PUT" || q.Get("Project") != "p-mail" || q.Get("Queue") != "mailq" ||
			q.Get("Signature") == "" || q.Get("Expires") == "" || q.Get("Url") != "https://zaqar.example.com"+path {
			t.Fatalf("confirmation link parameters %v", q)
		}
		// The page would PUT with the signature from the link.
		signed := &api{t: t, http: a.http, base: a.base, clientID: newUUID()}
		signed.expect(204, "PUT", path, `{"confirmed": true}`,
			"X-Project-ID", q.Get("Project"), "URL-Signature", q.Get("Signature"), "URL-Expires", q.Get("Expires"),
			"URL-Methods", q.Get("Methods"), "URL-Paths", q.Get("Paths"))

		a.post("/v2/queues/mailq", `{"body": {"disk": "full"}, "ttl": 300}`)
		mails = waitMailFiles(t, out, 2)
		var note *mail.Message
		for _, m := range mails {
			if m.Header.Get("Subject") != "Zaqar Notification - Subscription Confirmation" {
				note = m
			}
		}
		if note == nil || note.Header.Get("To") != "ops@example.com" || note.Header.Get("From") != "zaqar@example.com" {
			t.Fatalf("notification email %v", note)
		}
		jsonEqual(t, "notification email body", []byte(readBody(t, note)), payload("mailq", `{"disk": "full"}`, 300))
	})
}

// waitMailFiles waits until dir holds at least n finished messages.
func waitMailFiles(t *testing.T, dir string, n int) []*mail.Message {
	t.Helper()
	deadline := time.Now().Add(deliveryTimeout)
	for {
		names, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
		if len(names) >= n {
			var out []*mail.Message
			for _, name := range names {
				f, err := os.Open(name)
				if err != nil {
					t.Fatal(err)
				}
				m, err := mail.ReadMessage(f)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				body, _ := io.ReadAll(m.Body)
				f.Close()
				m.Body = strings.NewReader(string(body))
				out = append(out, m)
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("sendmail wrote %d messages within %s, want %d", len(names), deliveryTimeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readBody(t *testing.T, m *mail.Message) string {
	t.Helper()
	b, err := io.ReadAll(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	m.Body = strings.NewReader(string(b))
	return strings.TrimSpace(string(b))
}
