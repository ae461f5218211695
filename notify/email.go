package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os/exec"
	"strconv"
	"strings"

	"github.com/zaqar-raft/zaqar/store"
)

// emailDeliverer sends notifications to mailto subscribers.
type emailDeliverer struct{ cfg EmailConfig }

func newEmailDeliverer(cfg EmailConfig) *emailDeliverer { return &emailDeliverer{cfg: cfg} }

func (d *emailDeliverer) Schemes() []string { return []string{"mailto"} }

func (d *emailDeliverer) Check(subscriber string) error {
	if addr, _, _ := strings.Cut(strings.TrimPrefix(subscriber, "mailto:"), "?"); !strings.Contains(addr, "@") {
		return errors.New("The mailto subscriber needs an email address.")
	}
	return nil
}

func (d *emailDeliverer) Deliver(ctx context.Context, sub *store.Subscription, payload []byte) error {
	m, err := buildEmail(sub.Subscriber, sub.Options, payload, d.cfg)
	if err != nil {
		return err
	}
	return sendEmail(ctx, d.cfg, m)
}

// DeliverConfirmation sends a confirmation as the reference does: an
// email made from the configured template, with a link to the
// confirmation page (contract §10.5).
func (d *emailDeliverer) DeliverConfirmation(ctx context.Context, sub *store.Subscription, project string, payload []byte) error {
	m, err := confirmationMessage(sub.Subscriber, sub.Options, project, payload, d.cfg)
	if err != nil {
		return err
	}
	return sendEmail(ctx, d.cfg, m)
}

// EmailConfig says how email notifications leave the node. The zero value
// sends through the sendmail command with the reference's templates.
type EmailConfig struct {
	// SMTPHost and SMTPPort name the relay; with SMTPHost empty, email goes
	// through SendmailCommand instead. SMTPPort 0 is 465 with ImplicitTLS,
	// else 25.
	SMTPHost string
	SMTPPort int
	// ImplicitTLS speaks TLS from the first byte (smtps://, the
	// reference's smtp_mode self_local); StartTLS upgrades a plain session
	// with STARTTLS. Either way the relay's certificate is verified
	// against RootCAs (nil: the system's roots) for SMTPHost, unless
	// InsecureSkipVerify.
	ImplicitTLS        bool
	StartTLS           bool
	RootCAs            *x509.CertPool
	InsecureSkipVerify bool
	Username, Password string
	// From is the sender when the subscription's options give none.
	From string
	// SendmailCommand is a command that reads a message with headers on
	// its standard input (default "/usr/sbin/sendmail -t -oi").
	SendmailCommand string
	// ExternalConfirmationURL is the page subscribers open to confirm an
	// email subscription; the link carries the signature as parameters.
	ExternalConfirmationURL string
	// SubscriptionConfirmation and UnsubscribeConfirmation are the emails
	// confirmations are sent as (the reference's
	// subscription_confirmation_email_template and
	// unsubscribe_confirmation_email_template); empty fields are the
	// reference's defaults.
	SubscriptionConfirmation, UnsubscribeConfirmation EmailTemplate
}

// Check refuses settings that cannot work: both kinds of TLS at once, or
// a template body with a placeholder the reference does not fill.
func (c EmailConfig) Check() error {
	var errs []error
	if c.ImplicitTLS && c.StartTLS {
		errs = append(errs, errors.New("email: implicit TLS (smtps://) and STARTTLS exclude each other"))
	}
	if c.SMTPPort < 0 || c.SMTPPort > 65535 {
		errs = append(errs, fmt.Errorf("email: SMTP port %d", c.SMTPPort))
	}
	for name, t := range map[string]EmailTemplate{"subscription-confirmation-email-body": c.SubscriptionConfirmation, "unsubscribe-confirmation-email-body": c.UnsubscribeConfirmation} {
		if _, err := formatTemplate(t.Body, "q", "p", "https://x"); err != nil {
			errs = append(errs, fmt.Errorf("email: %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// ParseSMTPURL reads an SMTP relay URL: smtp://host[:port] (port 25) or
// smtps://host[:port] (implicit TLS, port 465). Credentials and paths are
// refused: they have flags of their own.
func ParseSMTPURL(s string) (host string, port int, implicitTLS bool, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", 0, false, fmt.Errorf("SMTP URL %q: %w", s, err)
	}
	switch u.Scheme {
	case "smtp":
		port = 25
	case "smtps":
		port, implicitTLS = 465, true
	default:
		return "", 0, false, fmt.Errorf("SMTP URL %q: the scheme must be smtp or smtps", s)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", 0, false, fmt.Errorf("SMTP URL %q: only smtp[s]://host[:port] (credentials go in -smtp-user and -smtp-password)", s)
	}
	if host = u.Hostname(); host == "" {
		return "", 0, false, fmt.Errorf("SMTP URL %q has no host", s)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, false, fmt.Errorf("SMTP URL %q: bad port", s)
		}
		port = n
	}
	return host, port, implicitTLS, nil
}

// emailMessage is one email to send.
type emailMessage struct {
	From, To, Subject, Body string
}

// buildEmail builds the email of a notification for a mailto subscriber:
// the recipient is the URI's address, the subject its "subject" parameter
// or options.subject, the sender options.from or the configured default.
func buildEmail(subscriber string, options, payload []byte, cfg EmailConfig) (emailMessage, error) {
	addr := strings.TrimPrefix(subscriber, "mailto:")
	addr, query, _ := strings.Cut(addr, "?")
	to, err := url.PathUnescape(addr)
	if err != nil || !strings.Contains(to, "@") {
		return emailMessage{}, permanent(fmt.Errorf("bad mailto address %q", subscriber))
	}
	var opts struct {
		From    string `json:"from"`
		Subject string `json:"subject"`
	}
	_ = json.Unmarshal(options, &opts)
	m := emailMessage{From: opts.From, To: to, Subject: opts.Subject, Body: string(payload)}
	if q, err := url.ParseQuery(query); err == nil && q.Get("subject") != "" {
		m.Subject = q.Get("subject")
	}
	if m.From == "" {
		m.From = cfg.From
	}
	return m, nil
}

func (m emailMessage) bytes() []byte {
	var b bytes.Buffer
	clean := func(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
	if m.From != "" {
		fmt.Fprintf(&b, "From: %s\r\n", clean(m.From))
	}
	// A subject that is not plain ASCII (a configured topic, say) is sent
	// as an RFC 2047 encoded word; plain ASCII is left as it is.
	fmt.Fprintf(&b, "To: %s\r\nSubject: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n", clean(m.To), mime.QEncoding.Encode("utf-8", clean(m.Subject)))
	b.WriteString(strings.ReplaceAll(m.Body, "\n", "\r\n"))
	b.WriteString("\r\n")
	return b.Bytes()
}

// sendEmail sends m through the SMTP relay or the sendmail command.
func sendEmail(ctx context.Context, cfg EmailConfig, m emailMessage) error {
	if cfg.SMTPHost == "" {
		return sendmail(ctx, cfg.SendmailCommand, m)
	}
	port := cfg.SMTPPort
	if port == 0 {
		port = 25
		if cfg.ImplicitTLS {
			port = 465
		}
	}
	addr := net.JoinHostPort(cfg.SMTPHost, strconv.Itoa(port))
	tlsConfig := &tls.Config{ServerName: cfg.SMTPHost, RootCAs: cfg.RootCAs, InsecureSkipVerify: cfg.InsecureSkipVerify}
	var conn net.Conn
	var err error
	if cfg.ImplicitTLS {
		// smtp.NewClient sees a *tls.Conn and treats the session as
		// encrypted, so PLAIN authentication is allowed on it.
		d := tls.Dialer{Config: tlsConfig}
		conn, err = d.DialContext(ctx, "tcp", addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, cfg.SMTPHost)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if cfg.StartTLS {
		if err := c.StartTLS(tlsConfig); err != nil {
			return err
		}
	}
	if cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", cfg.Username, cfg.Password, cfg.SMTPHost)); err != nil {
			return permanent(err)
		}
	}
	if err := c.Mail(envelopeSender(m.From)); err != nil {
		return smtpError(err)
	}
	if err := c.Rcpt(m.To); err != nil {
		return smtpError(err)
	}
	w, err := c.Data()
	if err != nil {
		return smtpError(err)
	}
	if _, err := w.Write(m.bytes()); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return smtpError(err)
	}
	return c.Quit()
}

// envelopeSender is the SMTP envelope sender (MAIL FROM) of an email from
// the From header from: its address alone, without a display name
// ("Zaqar Notifications <no-reply@example.com>" is no-reply@example.com),
// or zaqar@localhost when there is none.
func envelopeSender(from string) string {
	if a, err := mail.ParseAddress(from); err == nil {
		return a.Address
	}
	if from == "" {
		return "zaqar@localhost"
	}
	return from
}

// smtpError makes 5xx SMTP replies permanent; 4xx and others are retried.
func smtpError(err error) error {
	var reply *textproto.Error
	if errors.As(err, &reply) && reply.Code >= 500 && reply.Code < 600 {
		return permanent(err)
	}
	return err
}

func sendmail(ctx context.Context, command string, m emailMessage) error {
	if command == "" {
		command = "/usr/sbin/sendmail -t -oi"
	}
	args := strings.Fields(command)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin = bytes.NewReader(m.bytes())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
