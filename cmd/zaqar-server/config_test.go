package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/internal/bodycrypt"
	"github.com/zaqar-raft/zaqar/internal/tlsconf"
	"github.com/zaqar-raft/zaqar/notify"
	"github.com/zaqar-raft/zaqar/raftnode"
)

func envFrom(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestOptions_NoArgumentsIsASingleNodeClusterInDotData(t *testing.T) {
	o, err := parseOptions(nil, envFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := o.serverConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NodeID != "node1" || cfg.DataDir != "./data" || cfg.APIAddr != "127.0.0.1:8888" || cfg.Raft.RaftAddr != "127.0.0.1:7888" {
		t.Fatalf("defaults: %+v", cfg)
	}
	if want := []raftnode.Peer{{ID: "node1", Address: "127.0.0.1:7888"}}; !reflect.DeepEqual(cfg.Raft.Bootstrap, want) {
		t.Fatalf("bootstrap %v, want %v", cfg.Raft.Bootstrap, want)
	}
	if cfg.Limits.MaxMessagesPostSize != 262144 || cfg.Limits.ClientIDMode != "strict" {
		t.Fatalf("limits: %+v", cfg.Limits)
	}
}

func TestOptions_FlagBeatsEnvironmentBeatsFileBeatsDefault(t *testing.T) {
	file := filepath.Join(t.TempDir(), "zaqar.json")
	if err := os.WriteFile(file, []byte(`{"node-id": "from-file", "data-dir": "/file", "api-addr": "127.0.0.1:1111",
		"max-messages-post-size": 1000, "enable-checksum": true, "join": "10.0.0.1:7888,10.0.0.2:7888"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := envFrom(map[string]string{"ZAQAR_CONFIG": file, "ZAQAR_DATA_DIR": "/env", "ZAQAR_API_ADDR": "127.0.0.1:2222"})
	o, err := parseOptions([]string{"-api-addr", "127.0.0.1:3333"}, env)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := o.serverConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.APIAddr != "127.0.0.1:3333" {
		t.Errorf("flag lost: api-addr %s", cfg.APIAddr)
	}
	if cfg.DataDir != "/env" {
		t.Errorf("environment lost to the file: data-dir %s", cfg.DataDir)
	}
	if cfg.NodeID != "from-file" || cfg.Limits.MaxMessagesPostSize != 1000 || !cfg.Limits.EnableChecksum {
		t.Errorf("file settings not applied: %+v", cfg)
	}
	if !reflect.DeepEqual(cfg.Raft.Join, []string{"10.0.0.1:7888", "10.0.0.2:7888"}) || len(cfg.Raft.Bootstrap) != 0 {
		t.Errorf("a joining node must not bootstrap: join %v bootstrap %v", cfg.Raft.Join, cfg.Raft.Bootstrap)
	}
}

func TestOptions_RejectsWhatCannotWork(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.json")
	_ = os.WriteFile(file, []byte(`{"no-such-setting": 1}`), 0o600)
	for name, args := range map[string][]string{
		"unknown file key":                   {"-config", file},
		"keystone not yet":                   {"-auth-strategy", "keystone"},
		"bad client id mode":                 {"-client-id-uuid-safe", "maybe"},
		"malformed bootstrap":                {"-bootstrap", "node1"},
		"stray argument":                     {"serve"},
		"missing config file":                {"-config", filepath.Join(t.TempDir(), "absent.json")},
		"a claim limit the log cannot carry": {"-max-messages-per-claim-or-pop", "70000"},
		"a default above its bound":          {"-default-claim-ttl", "50000"},
		"half a peer TLS identity":           {"-peer-tls-cert", "node1.pem"},
		"a REST key without a certificate":   {"-tls-key", "key.pem"},
		"a missing certificate file":         {"-tls-cert", "/nonexistent/cert.pem", "-tls-key", "/nonexistent/key.pem"},
		"an unknown client auth":             {"-tls-client-auth", "sometimes"},
		"bad deny CIDR":                      {"-notify-deny-cidrs", "10.0.0.0/8,intranet"},
		"a subscriber type nothing serves":   {"-subscriber-types", "https,gopher"},
		"websocket connections as a type":    {"-subscriber-types", "wsconn"},
		"a subscriber type twice":            {"-subscriber-types", "https,https"},
		"an SMTP URL of another scheme":      {"-smtp-url", "https://relay.example.com"},
		"an SMTP URL with credentials":       {"-smtp-url", "smtps://user:pw@relay.example.com"},
		"an SMTP URL and an SMTP host":       {"-smtp-url", "smtps://relay.example.com", "-smtp-host", "other.example.com"},
		"an SMTP URL and an SMTP port":       {"-smtp-url", "smtps://relay.example.com", "-smtp-port", "587"},
		"implicit TLS and STARTTLS":          {"-smtp-url", "smtps://relay.example.com", "-smtp-starttls"},
		"a missing SMTP CA file":             {"-smtp-ca", "/nonexistent/ca.pem"},
		"a template field upstream lacks":    {"-subscription-confirmation-email-body", "see {3}"},
		"a lone brace in a template":         {"-unsubscribe-confirmation-email-body", "{0} {"},
	} {
		t.Run(name, func(t *testing.T) {
			o, err := parseOptions(args, envFrom(nil))
			if err == nil {
				_, err = o.serverConfig()
			}
			if err == nil {
				t.Fatalf("%v accepted", args)
			}
		})
	}
	if _, err := parseOptions(nil, envFrom(map[string]string{"ZAQAR_MAX_MESSAGE_TTL": "lots"})); err == nil || !strings.Contains(err.Error(), "ZAQAR_MAX_MESSAGE_TTL") {
		t.Fatalf("bad environment value: %v", err)
	}
}

func TestOptions_NotifyDenyCIDRsReachTheNotifierFromEverySpelling(t *testing.T) {
	file := filepath.Join(t.TempDir(), "zaqar.json")
	if err := os.WriteFile(file, []byte(`{"notify-deny-cidrs": "192.168.0.0/16"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"default":     {nil, nil, ""},
		"flag":        {[]string{"-notify-deny-cidrs", "127.0.0.0/8, ::1/128,10.1.2.3"}, nil, "127.0.0.0/8 ::1/128 10.1.2.3/32"},
		"environment": {nil, map[string]string{"ZAQAR_NOTIFY_DENY_CIDRS": "fc00::/7,172.16.0.0/12"}, "fc00::/7 172.16.0.0/12"},
		"file":        {[]string{"-config", file}, nil, "192.168.0.0/16"},
	} {
		t.Run(name, func(t *testing.T) {
			o, err := parseOptions(tc.args, envFrom(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := o.serverConfig()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range cfg.Notify.DenyCIDRs {
				got = append(got, p.String())
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("deny list %v, want %q", got, tc.want)
			}
		})
	}
}

func TestOptions_SubscriberTypesReachTheServiceFromEverySpelling(t *testing.T) {
	dir := t.TempDir()
	asString := filepath.Join(dir, "string.json")
	asList := filepath.Join(dir, "list.json")
	if err := os.WriteFile(asString, []byte(`{"subscriber-types": "https, mailto"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(asList, []byte(`{"subscriber-types": ["https", "trust+https"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want []string
	}{
		// The default is upstream's [transport] subscriber_types.
		"default":          {nil, nil, []string{"http", "https", "mailto", "trust+http", "trust+https"}},
		"flag":             {[]string{"-subscriber-types", "https,mailto"}, nil, []string{"https", "mailto"}},
		"flag, empty":      {[]string{"-subscriber-types", ""}, nil, []string{}},
		"environment":      {nil, map[string]string{"ZAQAR_SUBSCRIBER_TYPES": " http , https "}, []string{"http", "https"}},
		"file, string":     {[]string{"-config", asString}, nil, []string{"https", "mailto"}},
		"file, JSON array": {[]string{"-config", asList}, nil, []string{"https", "trust+https"}},
	} {
		t.Run(name, func(t *testing.T) {
			o, err := parseOptions(tc.args, envFrom(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := o.serverConfig()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.SubscriberTypes == nil || !reflect.DeepEqual(cfg.SubscriberTypes, tc.want) {
				t.Fatalf("subscriber types %#v, want %#v", cfg.SubscriberTypes, tc.want)
			}
		})
	}
}

func TestOptions_EmailRelayAndTemplatesReachTheNotifier(t *testing.T) {
	o, err := parseOptions(nil, envFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := o.serverConfig()
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Notify.Email
	// The defaults are the reference's templates, no relay (sendmail).
	if e.SMTPHost != "" || e.ImplicitTLS || e.RootCAs != nil ||
		e.SubscriptionConfirmation != notify.DefaultSubscriptionConfirmationEmail || e.UnsubscribeConfirmation != notify.DefaultUnsubscribeConfirmationEmail {
		t.Fatalf("default email settings %+v", e)
	}

	ca, err := tlsconf.NewAuthority("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err = parseOptions([]string{
		"-smtp-url", "smtps://relay.example.com", "-smtp-ca", caFile,
		"-subscription-confirmation-email-topic", "Confirm", "-subscription-confirmation-email-body", "{0}: {2}",
		"-subscription-confirmation-email-sender", "Ops <ops@example.com>",
	}, envFrom(map[string]string{"ZAQAR_UNSUBSCRIBE_CONFIRMATION_EMAIL_BODY": "bye {0}"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err = o.serverConfig(); err != nil {
		t.Fatal(err)
	}
	e = cfg.Notify.Email
	if e.SMTPHost != "relay.example.com" || e.SMTPPort != 465 || !e.ImplicitTLS || e.StartTLS || e.RootCAs == nil {
		t.Fatalf("smtps relay settings %+v", e)
	}
	if e.SubscriptionConfirmation != (notify.EmailTemplate{Topic: "Confirm", Body: "{0}: {2}", Sender: "Ops <ops@example.com>"}) ||
		e.UnsubscribeConfirmation != (notify.EmailTemplate{Topic: notify.DefaultUnsubscribeConfirmationEmail.Topic, Body: "bye {0}"}) {
		t.Fatalf("templates %+v %+v", e.SubscriptionConfirmation, e.UnsubscribeConfirmation)
	}

	o, err = parseOptions([]string{"-smtp-url", "smtp://relay.example.com:587", "-smtp-starttls"}, envFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	if o.email.SMTPHost != "relay.example.com" || o.email.SMTPPort != 587 || o.email.ImplicitTLS || !o.email.StartTLS {
		t.Fatalf("smtp URL with STARTTLS: %+v", o.email)
	}
}

func TestOptions_MessageEncryptionKeyFromEverySpelling(t *testing.T) {
	key := bytes.Repeat([]byte{0x5a}, bodycrypt.KeySize)
	b64, hexKey := base64.StdEncoding.EncodeToString(key), hex.EncodeToString(key)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "message.key")
	if err := os.WriteFile(keyFile, []byte(b64+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	configFile := filepath.Join(dir, "zaqar.json")
	if err := os.WriteFile(configFile, []byte(`{"message-encryption-key": "`+hexKey+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"flag, base64":   {[]string{"-message-encryption-key", b64}, nil},
		"flag, hex":      {[]string{"-message-encryption-key", hexKey}, nil},
		"environment":    {nil, map[string]string{"ZAQAR_MESSAGE_ENCRYPTION_KEY": b64}},
		"key file":       {[]string{"-message-encryption-key-file", keyFile}, nil},
		"key file, env":  {nil, map[string]string{"ZAQAR_MESSAGE_ENCRYPTION_KEY_FILE": keyFile}},
		"config file":    {[]string{"-config", configFile}, nil},
		"no key is none": {nil, nil},
	} {
		t.Run(name, func(t *testing.T) {
			o, err := parseOptions(tc.args, envFrom(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := o.serverConfig()
			if err != nil {
				t.Fatal(err)
			}
			if name == "no key is none" {
				if cfg.MessageKeys != nil {
					t.Fatal("a keyring without a key")
				}
				return
			}
			if cfg.MessageKeys == nil || cfg.MessageKeys.SealingKeyID() != bodycrypt.IDOf(key) {
				t.Fatalf("keyring %v, want key id %s", cfg.MessageKeys, bodycrypt.IDOf(key))
			}
		})
	}
}

func TestOptions_RefusesABadMessageEncryptionKeyWithoutQuotingIt(t *testing.T) {
	dir := t.TempDir()
	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 16))
	shortFile := filepath.Join(dir, "short.key")
	_ = os.WriteFile(shortFile, []byte(short), 0o600)
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	for name, args := range map[string][]string{
		"16 bytes":         {"-message-encryption-key", short},
		"a pass phrase":    {"-message-encryption-key", "hunter2hunter2"},
		"a short key file": {"-message-encryption-key-file", shortFile},
		"a missing file":   {"-message-encryption-key-file", filepath.Join(dir, "absent.key")},
		"both spellings":   {"-message-encryption-key", good, "-message-encryption-key-file", shortFile},
	} {
		t.Run(name, func(t *testing.T) {
			o, err := parseOptions(args, envFrom(nil))
			if err == nil {
				_, err = o.serverConfig()
			}
			if err == nil {
				t.Fatalf("%v accepted", args)
			}
			for _, secret := range []string{short, good, "hunter2"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the error quotes the key: %v", err)
				}
			}
		})
	}
}
