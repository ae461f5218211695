package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
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

// Confirmation renders a confirmation as the reference's email: a text
// with a link to the confirmation page, under its subject.
func (d *emailDeliverer) Confirmation(sub store.Subscription, project string, payload []byte) (store.Subscription, []byte) {
	sub.Options = confirmationEmailOptions(sub.Options, payload)
	return sub, []byte(confirmationEmail(d.cfg.ExternalConfirmationURL, project, payload))
}

// EmailConfig says how email notifications leave the node.
type EmailConfig struct {
	// SMTPHost and SMTPPort name the relay; with SMTPHost empty, email goes
	// through SendmailCommand instead.
	SMTPHost string
	SMTPPort int
	// StartTLS upgrades the SMTP session with STARTTLS (the server
	// certificate is verified unless InsecureSkipVerify).
	StartTLS           bool
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
	fmt.Fprintf(&b, "To: %s\r\nSubject: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n", clean(m.To), clean(m.Subject))
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
	}
	addr := net.JoinHostPort(cfg.SMTPHost, strconv.Itoa(port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
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
		if err := c.StartTLS(&tls.Config{ServerName: cfg.SMTPHost, InsecureSkipVerify: cfg.InsecureSkipVerify}); err != nil {
			return err
		}
	}
	if cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", cfg.Username, cfg.Password, cfg.SMTPHost)); err != nil {
			return permanent(err)
		}
	}
	from := m.From
	if from == "" {
		from = "zaqar@localhost"
	}
	if err := c.Mail(from); err != nil {
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
