package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/zaqar-raft/zaqar/auth"
	"github.com/zaqar-raft/zaqar/httpapi"
	"github.com/zaqar-raft/zaqar/internal/bodycrypt"
	"github.com/zaqar-raft/zaqar/internal/tlsconf"
	"github.com/zaqar-raft/zaqar/notify"
	"github.com/zaqar-raft/zaqar/raftnode"
	"github.com/zaqar-raft/zaqar/server"
	"github.com/zaqar-raft/zaqar/service"
	"github.com/zaqar-raft/zaqar/wsapi"
)

// options are every setting of a node. Each has a flag; ZAQAR_<FLAG> in the
// environment and the same key in the JSON config file are its other
// spellings (precedence: flag, environment, file, default).
type options struct {
	configFile    string
	nodeID        string
	dataDir       string
	apiAddr       string
	wsAddr        string
	raftAddr      string
	raftAdvertise string
	raftSourceIP  string
	pprofAddr     string
	bootstrap     string
	join          string
	catalog       string
	authStrategy  string
	signedSecret  string
	logLevel      string
	logFormat     string
	raftLogLevel  string

	// messageKey and messageKeyFile are the message encryption key
	// (bodycrypt.ParseKey), given inline or in a file.
	messageKey, messageKeyFile string

	heartbeat, election, snapshotInterval, requestTimeout, gcInterval time.Duration
	wsMaxFrame                                                        int64
	wsMaxInFlight                                                     int
	wsWriteTimeout, wsPingInterval, wsPongTimeout, wsIdleTimeout      time.Duration
	snapshotThreshold, trailingLogs                                   uint64
	noFsync                                                           bool
	raftLogStore                                                      string
	cacheBytes                                                        int64
	gcPercent                                                         int

	limits service.Limits

	requireConfirmation         bool
	publicURL, publicWSURL      string
	notifyWorkers, notifyPerSub int
	notifyDeny                  cidrList
	email                       notify.EmailConfig
	smtpURL, smtpCA             string
	subscriberTypes             stringList

	keystone       auth.KeystoneConfig
	policyFile     string
	corsOrigins    string
	cors           httpapi.CORSConfig
	maxHeaderBytes int
	maxConcurrent  int
	maxWaiters     int
	rateLimit      service.RateLimit

	// tls is the REST port's certificate (and the CA of client
	// certificates); peerTLS the node port's mutual TLS.
	tls           tlsconf.Files
	tlsClientAuth string
	peerTLS       tlsconf.Files
	insecurePeers bool
}

func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("zaqar-server", flag.ContinueOnError)
	fs.StringVar(&o.configFile, "config", "", "JSON file of settings (keys are these flag names)")
	fs.StringVar(&o.nodeID, "node-id", "node1", "this node's id, unique in the cluster")
	fs.StringVar(&o.dataDir, "data-dir", "./data", "directory for the Raft log, snapshots and Pebble")
	fs.StringVar(&o.apiAddr, "api-addr", "127.0.0.1:8888", "REST API listen address")
	fs.StringVar(&o.wsAddr, "ws-addr", "", "extra listen address for the websocket API on any path (it is always served at ws://<api-addr>/ too)")
	fs.StringVar(&o.raftAddr, "raft-addr", "127.0.0.1:7888", "Raft and node-to-node listen address")
	fs.StringVar(&o.raftAdvertise, "raft-advertise", "", "Raft address other nodes dial (default: -raft-addr)")
	fs.StringVar(&o.pprofAddr, "pprof-addr", "", "serve Go's profiler (/debug/pprof/) on this address; keep it private (default: off)")
	fs.StringVar(&o.raftSourceIP, "raft-source-ip", "", "local IP to dial other nodes from (default: the system's choice)")
	fs.StringVar(&o.bootstrap, "bootstrap", "", "initial voters as id=host:port,... (default: this node alone, unless -join is set)")
	fs.StringVar(&o.join, "join", "", "Raft addresses of existing members to join through, comma-separated")
	fs.StringVar(&o.catalog, "catalog", "", "node (Raft) addresses of members of the catalog pool, comma-separated, for the nodes of every other pool (docs/pools.md; default: this node's group holds the catalog)")
	fs.StringVar(&o.tls.Cert, "tls-cert", "", "PEM certificate chain of the REST and websocket port: https:// and wss:// instead of http:// and ws:// (reloaded when the file changes and on SIGHUP)")
	fs.StringVar(&o.tls.Key, "tls-key", "", "PEM private key of -tls-cert")
	fs.StringVar(&o.tls.CA, "tls-client-ca", "", "PEM CA bundle that verifies certificates REST clients present (see -tls-client-auth)")
	fs.StringVar(&o.tlsClientAuth, "tls-client-auth", "verify-if-given", `with -tls-client-ca: "verify-if-given" (clients without a certificate are served) or "require"`)
	fs.StringVar(&o.peerTLS.CA, "peer-tls-ca", "", "PEM CA bundle of node certificates: with -peer-tls-cert and -peer-tls-key the node port speaks only mutual TLS and admits only nodes holding a certificate from this CA")
	fs.StringVar(&o.peerTLS.Cert, "peer-tls-cert", "", "PEM certificate of this node on the node port; its common name must be -node-id (reloaded when the file changes and on SIGHUP)")
	fs.StringVar(&o.peerTLS.Key, "peer-tls-key", "", "PEM private key of -peer-tls-cert")
	fs.BoolVar(&o.insecurePeers, "insecure-peers", false, "run the node port in plain text on a non-loopback address without the warning (whoever reaches the port can write to the log; only on a network nothing else can reach)")
	fs.StringVar(&o.authStrategy, "auth-strategy", "", `authentication: "" or "noauth" (trust X-Project-ID and X-Roles), or "keystone"`)
	fs.StringVar(&o.keystone.AuthURL, "keystone-auth-url", "", "Keystone v3 URL, e.g. http://keystone:5000/v3 (auth-strategy keystone)")
	fs.StringVar(&o.keystone.Username, "keystone-username", "", "service user that validates tokens")
	fs.StringVar(&o.keystone.Password, "keystone-password", "", "service user's password")
	fs.StringVar(&o.keystone.UserDomainName, "keystone-user-domain", "Default", "service user's domain")
	fs.StringVar(&o.keystone.ProjectName, "keystone-project", "service", "service user's project")
	fs.StringVar(&o.keystone.ProjectDomainName, "keystone-project-domain", "Default", "service project's domain")
	fs.DurationVar(&o.keystone.CacheTTL, "keystone-cache-ttl", time.Minute, "how long a validated token is trusted before Keystone is asked again (bounds how long a revoked token works)")
	fs.IntVar(&o.keystone.CacheSize, "keystone-cache-size", 10000, "validated tokens kept in the cache")
	fs.StringVar(&o.keystone.WWWAuthenticateURI, "www-authenticate-uri", "", "Keystone URL advertised in 401 answers (default: -keystone-auth-url)")
	fs.StringVar(&o.policyFile, "policy-file", "", "oslo.policy file (policy.yaml or policy.json) laid over the default rules")
	fs.StringVar(&o.corsOrigins, "cors-allowed-origin", "", "origins allowed by CORS, comma-separated (empty: CORS off)")
	fs.BoolVar(&o.cors.AllowCredentials, "cors-allow-credentials", true, "CORS: allow credentials")
	fs.IntVar(&o.cors.MaxAge, "cors-max-age", 3600, "CORS: preflight cache seconds")
	fs.IntVar(&o.maxHeaderBytes, "max-header-bytes", 64<<10, "cap on a request's line and headers (431 beyond)")
	fs.IntVar(&o.maxConcurrent, "max-concurrent-requests", 2048, "REST requests a node serves at once before answering 503 (0: no cap)")
	fs.IntVar(&o.maxWaiters, "max-claim-waiters", service.DefaultMaxClaimWaiters, "claims waiting for a message (?wait=) on a node at once; beyond it a claim answers at once (waiting REST claims count toward -max-concurrent-requests)")
	fs.Float64Var(&o.rateLimit.PerSecond, "rate-limit", 0, "requests per second allowed per project (0: no limit)")
	fs.IntVar(&o.rateLimit.Burst, "rate-limit-burst", 0, "burst allowed above -rate-limit (default: one second's worth)")
	fs.StringVar(&o.signedSecret, "signed-url-secret", "", "secret for pre-signed URLs (default: generated once per cluster and replicated)")
	fs.StringVar(&o.messageKey, "message-encryption-key", "", "AES-256 key that encrypts the messages of queues with _enable_encrypt_messages: 32 bytes as base64 or 64 hex digits, the same on every node (prefer -message-encryption-key-file or the environment: a flag shows in the process list; default: none, and the queue flag is refused)")
	fs.StringVar(&o.messageKeyFile, "message-encryption-key-file", "", "file holding the message encryption key, as -message-encryption-key")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.raftLogLevel, "raft-log-level", "warn", "hashicorp/raft's own log level")
	fs.DurationVar(&o.heartbeat, "raft-heartbeat-timeout", 500*time.Millisecond, "Raft heartbeat timeout: a follower that hears nothing from the leader for this long (to twice this) starts an election")
	fs.DurationVar(&o.election, "raft-election-timeout", 500*time.Millisecond, "Raft election timeout")
	fs.DurationVar(&o.snapshotInterval, "raft-snapshot-interval", 60*time.Second, "how often Raft considers taking a snapshot")
	fs.Uint64Var(&o.snapshotThreshold, "raft-snapshot-threshold", 16384, "log entries since the last snapshot that trigger one")
	fs.Uint64Var(&o.trailingLogs, "raft-trailing-logs", 10240, "log entries kept after a snapshot for followers to catch up from")
	fs.IntVar(&o.gcPercent, "gc-percent", 400, "Go's GC target (as GOGC, which wins when set): the Go heap is small next to Pebble's off-heap cache and memtables, and collecting less often saves CPU for a few tens of MB (docs/performance.md)")
	fs.Int64Var(&o.cacheBytes, "cache-bytes", 256<<20, "Pebble block cache; it holds the tables' index and filter blocks every write looks up (too small and each lookup reads disk)")
	fs.BoolVar(&o.noFsync, "unsafe-no-fsync", false, "do not fsync the Raft log (loses acknowledged writes on power loss; tests only)")
	fs.StringVar(&o.raftLogStore, "raft-log-store", raftnode.LogStoreBolt, "Raft log store of a new data directory: bolt (raft-boltdb, two fsyncs per append) or wal (hashicorp/raft-wal, one fsync per append; the library calls itself experimental; docs/performance.md); an existing directory keeps its kind")
	fs.DurationVar(&o.requestTimeout, "request-timeout", 10*time.Second, "upper bound on the work of one request")
	fs.DurationVar(&o.gcInterval, "gc-interval", time.Second, "how often the leader collects expired messages and claims")

	fs.Int64Var(&o.wsMaxFrame, "ws-max-frame-bytes", 0, "largest websocket frame accepted (default 1 MiB plus the message post limit)")
	fs.IntVar(&o.wsMaxInFlight, "ws-max-in-flight", 32, "requests a websocket connection may queue before the node stops reading from it")
	fs.DurationVar(&o.wsWriteTimeout, "ws-write-timeout", 10*time.Second, "a websocket client that does not read a frame for this long is disconnected")
	fs.DurationVar(&o.wsPingInterval, "ws-ping-interval", 20*time.Second, "how often the node pings websocket clients")
	fs.DurationVar(&o.wsPongTimeout, "ws-pong-timeout", 30*time.Second, "a ping unanswered for this long closes the connection")
	fs.DurationVar(&o.wsIdleTimeout, "ws-idle-timeout", 30*time.Minute, "close websocket connections silent for this long (and holding no subscriptions); negative disables")

	fs.BoolVar(&o.requireConfirmation, "require-confirmation", false, "subscriptions receive notifications only after the subscriber confirms through the signed URL it is sent")
	fs.StringVar(&o.publicURL, "public-url", "", "this service's public REST URL, used in subscription confirmation links")
	fs.StringVar(&o.publicWSURL, "public-ws-url", "", "this service's public websocket URL, used in subscription confirmations")
	fs.IntVar(&o.notifyWorkers, "notify-workers", 10, "notification deliveries in progress at once on the leader")
	fs.IntVar(&o.notifyPerSub, "notify-per-subscriber", 4, "notification deliveries in progress at once per subscription (1 keeps them in order)")
	fs.Var(&o.notifyDeny, "notify-deny-cidrs", "address ranges webhooks are never sent to, comma-separated (e.g. 127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7); link-local and unspecified addresses are always refused")
	o.subscriberTypes = append(stringList{}, service.DefaultSubscriberTypes...)
	fs.Var(&o.subscriberTypes, "subscriber-types", "subscriber URI schemes clients may subscribe, comma-separated, each served by a notification transport of this build (empty: none)")
	fs.StringVar(&o.smtpURL, "smtp-url", "", "SMTP relay for email notifications as a URL: smtp://host[:port] (port 25; -smtp-starttls upgrades the session) or smtps://host[:port] (TLS from the first byte, port 465); instead of -smtp-host and -smtp-port")
	fs.StringVar(&o.email.SMTPHost, "smtp-host", "", "SMTP relay for email notifications, plain or with -smtp-starttls (empty, and no -smtp-url: use -sendmail-command)")
	fs.IntVar(&o.email.SMTPPort, "smtp-port", 25, "SMTP relay port of -smtp-host")
	fs.BoolVar(&o.email.StartTLS, "smtp-starttls", false, "upgrade SMTP sessions with STARTTLS (certificate verified)")
	fs.StringVar(&o.smtpCA, "smtp-ca", "", "PEM CA bundle that verifies the SMTP relay's certificate, with smtps:// or -smtp-starttls (default: the system's roots)")
	fs.StringVar(&o.email.Username, "smtp-user", "", "SMTP user (PLAIN auth; needs TLS, smtps:// or STARTTLS, unless the relay is on loopback)")
	fs.StringVar(&o.email.Password, "smtp-password", "", "SMTP password")
	fs.StringVar(&o.email.From, "smtp-from", "", "sender of email notifications when a subscription's options give none")
	fs.StringVar(&o.email.SendmailCommand, "sendmail-command", "/usr/sbin/sendmail -t -oi", "command that sends an email read from its standard input, when -smtp-host is empty")
	fs.StringVar(&o.email.ExternalConfirmationURL, "external-confirmation-url", "", "page that email subscribers open to confirm a subscription")
	sub, unsub := &o.email.SubscriptionConfirmation, &o.email.UnsubscribeConfirmation
	fs.StringVar(&sub.Topic, "subscription-confirmation-email-topic", notify.DefaultSubscriptionConfirmationEmail.Topic, "subject of subscription confirmation emails")
	fs.StringVar(&sub.Body, "subscription-confirmation-email-body", notify.DefaultSubscriptionConfirmationEmail.Body, "text of subscription confirmation emails: {0} is the queue, {1} the project, {2} the confirmation link; {{ and }} are braces")
	fs.StringVar(&sub.Sender, "subscription-confirmation-email-sender", "", "From of subscription confirmation emails (empty: the subscription's options.from, else -smtp-from)")
	fs.StringVar(&unsub.Topic, "unsubscribe-confirmation-email-topic", notify.DefaultUnsubscribeConfirmationEmail.Topic, "subject of unsubscribe confirmation emails")
	fs.StringVar(&unsub.Body, "unsubscribe-confirmation-email-body", notify.DefaultUnsubscribeConfirmationEmail.Body, "text of unsubscribe confirmation emails: {0} is the queue, {1} the project, {2} the link to subscribe again; {{ and }} are braces")
	fs.StringVar(&unsub.Sender, "unsubscribe-confirmation-email-sender", "", "From of unsubscribe confirmation emails (empty: the subscription's options.from, else -smtp-from)")

	o.limits = service.DefaultLimits()
	l := &o.limits
	fs.Int64Var(&l.DefaultMessageTTL, "default-message-ttl", l.DefaultMessageTTL, "message TTL when neither message nor queue sets one (s)")
	fs.Int64Var(&l.DefaultMessageDelay, "default-message-delay", l.DefaultMessageDelay, "reserved-metadata default delay (s)")
	fs.Int64Var(&l.DefaultClaimTTL, "default-claim-ttl", l.DefaultClaimTTL, "claim TTL when omitted (s)")
	fs.Int64Var(&l.DefaultClaimGrace, "default-claim-grace", l.DefaultClaimGrace, "claim grace when omitted (s)")
	fs.Int64Var(&l.DefaultSubscriptionTTL, "default-subscription-ttl", l.DefaultSubscriptionTTL, "subscription TTL when omitted (s)")
	fs.IntVar(&l.MaxQueuesPerPage, "max-queues-per-page", l.MaxQueuesPerPage, "queue list limit")
	fs.IntVar(&l.MaxMessagesPerPage, "max-messages-per-page", l.MaxMessagesPerPage, "message list limit and ids per request")
	fs.IntVar(&l.MaxSubscriptionsPerPage, "max-subscriptions-per-page", l.MaxSubscriptionsPerPage, "subscription list limit")
	fs.IntVar(&l.MaxMessagesPerClaimOrPop, "max-messages-per-claim-or-pop", l.MaxMessagesPerClaimOrPop, "claim limit and pop count")
	fs.IntVar(&l.MaxQueueMetadata, "max-queue-metadata", l.MaxQueueMetadata, "queue metadata bytes")
	fs.IntVar(&l.MaxMessagesPostSize, "max-messages-post-size", l.MaxMessagesPostSize, "message POST body bytes")
	fs.Int64Var(&l.MaxMessageTTL, "max-message-ttl", l.MaxMessageTTL, "maximum message TTL (s)")
	fs.Int64Var(&l.MaxMessageDelay, "max-message-delay", l.MaxMessageDelay, "maximum message delay (s)")
	fs.Int64Var(&l.MaxClaimTTL, "max-claim-ttl", l.MaxClaimTTL, "maximum claim TTL (s)")
	fs.Int64Var(&l.MaxClaimGrace, "max-claim-grace", l.MaxClaimGrace, "maximum claim grace (s)")
	fs.StringVar(&l.ClientIDMode, "client-id-uuid-safe", l.ClientIDMode, `Client-ID rule: "strict" (a UUID) or "off" (any string of the allowed length)`)
	fs.IntVar(&l.MinClientIDLength, "min-length-client-id", l.MinClientIDLength, "shortest Client-ID when -client-id-uuid-safe=off")
	fs.IntVar(&l.MaxClientIDLength, "max-length-client-id", l.MaxClientIDLength, "longest Client-ID when -client-id-uuid-safe=off")
	fs.BoolVar(&l.DeleteWithClaimID, "message-delete-with-claim-id", l.DeleteWithClaimID, "bulk deletes must name the claims of the messages")
	fs.BoolVar(&l.EnableChecksum, "enable-checksum", l.EnableChecksum, "store and return an MD5 checksum of each message body")
	fs.IntVar(&l.MaxBodyBytes, "max-body-bytes", l.MaxBodyBytes, "cap on request bodies Zaqar leaves uncapped")
	return fs
}

// parseOptions reads flags, then fills unset ones from the environment and
// the config file.
func parseOptions(args []string, getenv func(string) string) (*options, error) {
	o := &options{}
	fs := newFlagSet(o)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["config"] {
		if v := getenv(envName("config")); v != "" {
			o.configFile = v
		}
	}
	file := map[string]any{}
	if o.configFile != "" {
		b, err := os.ReadFile(o.configFile)
		if err != nil {
			return nil, fmt.Errorf("read config file: %w", err)
		}
		if err := json.Unmarshal(b, &file); err != nil {
			return nil, fmt.Errorf("parse config file %s: %w", o.configFile, err)
		}
		for k := range file {
			if fs.Lookup(k) == nil {
				return nil, fmt.Errorf("config file %s: unknown setting %q", o.configFile, k)
			}
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] || f.Name == "config" {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("environment %s: %w", envName(f.Name), e)
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			s := fmt.Sprint(v)
			switch v := v.(type) {
			case float64:
				s = strconv.FormatFloat(v, 'f', -1, 64)
			case []any: // a list setting written as a JSON array
				items := make([]string, len(v))
				for i, item := range v {
					items[i] = fmt.Sprint(item)
				}
				s = strings.Join(items, ",")
			}
			if e := f.Value.Set(s); e != nil {
				err = fmt.Errorf("config file setting %s: %w", f.Name, e)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return o, o.check()
}

// corsConfig is Zaqar's CORS defaults with the configured origins and
// options.
func (o *options) corsConfig() httpapi.CORSConfig {
	c := httpapi.DefaultCORS()
	for _, origin := range strings.Split(o.corsOrigins, ",") {
		if origin = strings.TrimSpace(origin); origin != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, origin)
		}
	}
	c.AllowCredentials, c.MaxAge = o.cors.AllowCredentials, o.cors.MaxAge
	return c
}

// cidrList is a flag of comma-separated CIDR prefixes (notify.ParseCIDRs).
type cidrList []netip.Prefix

func (l *cidrList) String() string {
	parts := make([]string, len(*l))
	for i, p := range *l {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

func (l *cidrList) Set(s string) error {
	p, err := notify.ParseCIDRs(s)
	if err != nil {
		return err
	}
	*l = p
	return nil
}

// stringList is a flag of comma-separated words (spaces around them and
// empty entries are dropped); an empty value is the empty list.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	out := stringList{}
	for _, w := range strings.Split(s, ",") {
		if w = strings.TrimSpace(w); w != "" {
			out = append(out, w)
		}
	}
	*l = out
	return nil
}

func envName(flagName string) string {
	return "ZAQAR_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (o *options) check() error {
	switch o.authStrategy {
	case "", "noauth":
		o.keystone.AuthURL = ""
	case "keystone":
		if o.keystone.AuthURL == "" || o.keystone.Username == "" {
			return errors.New("auth-strategy keystone needs -keystone-auth-url and -keystone-username")
		}
	default:
		return fmt.Errorf("unknown auth-strategy %q", o.authStrategy)
	}
	if o.tls.CA != "" && o.tls.Cert == "" {
		return errors.New("-tls-client-ca needs -tls-cert and -tls-key")
	}
	if (o.tls.Cert == "") != (o.tls.Key == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	switch o.tlsClientAuth {
	case "verify-if-given", "require":
	default:
		return fmt.Errorf("tls-client-auth must be verify-if-given or require, not %q", o.tlsClientAuth)
	}
	if p := o.peerTLS; (p.CA != "" || p.Cert != "" || p.Key != "") && (p.CA == "" || p.Cert == "" || p.Key == "") {
		return errors.New("peer TLS needs all of -peer-tls-ca, -peer-tls-cert and -peer-tls-key")
	}
	switch o.limits.ClientIDMode {
	case "strict", "off":
	default:
		return fmt.Errorf("client-id-uuid-safe must be strict or off, not %q", o.limits.ClientIDMode)
	}
	if err := o.limits.Check(); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	if err := notify.NewRegistry(notify.Config{}).CheckSubscriberTypes(o.subscriberTypes); err != nil {
		return fmt.Errorf("subscriber-types: %w", err)
	}
	if o.smtpURL != "" {
		if o.email.SMTPHost != "" || o.email.SMTPPort != 25 {
			return errors.New("-smtp-url names the relay and its port: leave -smtp-host and -smtp-port out")
		}
		host, port, implicitTLS, err := notify.ParseSMTPURL(o.smtpURL)
		if err != nil {
			return err
		}
		o.email.SMTPHost, o.email.SMTPPort, o.email.ImplicitTLS = host, port, implicitTLS
	}
	if o.messageKey != "" && o.messageKeyFile != "" {
		return errors.New("give the message encryption key once: -message-encryption-key or -message-encryption-key-file")
	}
	return o.email.Check()
}

// messageKeys reads the message encryption key, if one is configured.
// Errors name the setting, never the key.
func (o *options) messageKeys() (*bodycrypt.Keyring, error) {
	text, from := o.messageKey, "-message-encryption-key"
	if o.messageKeyFile != "" {
		b, err := os.ReadFile(o.messageKeyFile)
		if err != nil {
			return nil, fmt.Errorf("message encryption key file: %w", err)
		}
		text, from = string(b), "-message-encryption-key-file "+o.messageKeyFile
	}
	if text == "" {
		return nil, nil
	}
	key, err := bodycrypt.ParseKey(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return bodycrypt.NewKeyring(key)
}

// serverConfig turns options into a server configuration. It reads the TLS
// files, so that a missing or broken one stops the start with a clear error.
func (o *options) serverConfig() (server.Config, error) {
	cfg := server.Config{
		NodeID: o.nodeID, DataDir: o.dataDir, APIAddr: o.apiAddr,
		WSAddr: o.wsAddr, PprofAddr: o.pprofAddr, CatalogAddrs: splitList(o.catalog),
		Raft: raftnode.Config{
			RaftAddr: o.raftAddr, Advertise: o.raftAdvertise, SourceIP: o.raftSourceIP,
			HeartbeatTimeout: o.heartbeat, ElectionTimeout: o.election, SnapshotInterval: o.snapshotInterval,
			SnapshotThreshold: o.snapshotThreshold, TrailingLogs: o.trailingLogs, NoFsync: o.noFsync,
			LogStore: o.raftLogStore, RaftLogLevel: o.raftLogLevel,
		},
		WS: wsapi.Config{
			MaxFrameBytes: o.wsMaxFrame, MaxInFlight: o.wsMaxInFlight, WriteTimeout: o.wsWriteTimeout,
			PingInterval: o.wsPingInterval, PongTimeout: o.wsPongTimeout, IdleTimeout: o.wsIdleTimeout,
		},
		Keystone: o.keystone, PolicyFile: o.policyFile, CORS: o.corsConfig(), MaxHeaderBytes: o.maxHeaderBytes,
		MaxConcurrentRequests: o.maxConcurrent, MaxClaimWaiters: o.maxWaiters, RateLimit: o.rateLimit,
		Notify: notify.Config{Workers: o.notifyWorkers, PerSubscriber: o.notifyPerSub, DenyCIDRs: o.notifyDeny, Email: o.email},
		Notifications: service.NotificationConfig{
			RequireConfirmation: o.requireConfirmation, PublicURL: o.publicURL, PublicWebsocketURL: o.publicWSURL,
		},
		Limits: o.limits, SignedURLSecret: o.signedSecret, RequestTimeout: o.requestTimeout, GCInterval: o.gcInterval,
		CacheBytes: o.cacheBytes, InsecurePeers: o.insecurePeers, SubscriberTypes: append([]string{}, o.subscriberTypes...),
	}
	for _, j := range strings.Split(o.join, ",") {
		if j = strings.TrimSpace(j); j != "" {
			cfg.Raft.Join = append(cfg.Raft.Join, j)
		}
	}
	peers, err := raftnode.ParsePeers(o.bootstrap)
	if err != nil {
		return cfg, err
	}
	if len(peers) == 0 && len(cfg.Raft.Join) == 0 {
		adv := o.raftAdvertise
		if adv == "" {
			adv = o.raftAddr
		}
		peers = []raftnode.Peer{{ID: o.nodeID, Address: adv}}
	}
	cfg.Raft.Bootstrap = peers
	if cfg.MessageKeys, err = o.messageKeys(); err != nil {
		return cfg, err
	}
	if o.tls.Cert != "" {
		if cfg.TLS, err = tlsconf.Load(o.tls); err != nil {
			return cfg, fmt.Errorf("REST TLS: %w", err)
		}
		cfg.TLSClientAuth = tlsconf.NoClientCert
		if o.tls.CA != "" {
			cfg.TLSClientAuth = tlsconf.VerifyIfGiven
			if o.tlsClientAuth == "require" {
				cfg.TLSClientAuth = tlsconf.RequireClientCert
			}
		}
	}
	if o.peerTLS.Cert != "" {
		if cfg.Raft.PeerTLS, err = tlsconf.Load(o.peerTLS); err != nil {
			return cfg, fmt.Errorf("peer TLS: %w", err)
		}
	}
	if o.smtpCA != "" {
		if cfg.Notify.Email.RootCAs, err = tlsconf.LoadCAPool(o.smtpCA); err != nil {
			return cfg, fmt.Errorf("smtp-ca: %w", err)
		}
	}
	return cfg, nil
}
