package raftnode

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/zaqar-raft/zaqar/internal/tlsconf"
)

// This file is the one node-to-node client: every call one node makes to
// another (forwarded entries and read indexes, membership changes, status,
// other packages' routes such as websocket pushes) goes through peerDialer
// and Node.call, with one body cap, one identity header and one
// classification of failures; the leader-bound calls share one retry loop,
// Node.onLeader.

// Header names of the internal protocol.
const (
	// headerOutcome qualifies an answer: "not-leader" when the receiver
	// refused without effect because it does not lead, "tls-required" when
	// it only speaks mutual TLS.
	headerOutcome = "X-Raftnode-Outcome"
	// headerNode is the id of the node that sends a request. With peer TLS
	// it must equal the name in the sender's certificate.
	headerNode = "X-Raftnode-Node"
)

// maxPeerBody caps every internal request and answer body. The largest are
// forwarded entries and their results, bounded by the message post size.
const maxPeerBody = 64 << 20

// errRetry marks a failure that certainly had no effect (the request never
// reached a leader, or the leader refused it before it entered the log), so
// it may be sent again.
var errRetry = errors.New("raftnode: retry")

// Errors of node-to-node calls that callers switch on.
var (
	// ErrPeerRefused means the receiving node refused the sender: its
	// certificate does not name the node it claims to be, or it is not a
	// member. Retrying does not help.
	ErrPeerRefused = errors.New("raftnode: refused by the peer")
	// ErrPeerTLSRequired means the receiving node speaks mutual TLS on its
	// node port and this node was started without peer TLS.
	ErrPeerTLSRequired = errors.New("raftnode: the peer requires mutual TLS on its node port (start this node with -peer-tls-ca, -peer-tls-cert and -peer-tls-key)")
)

// retryDelayCap bounds the wait between attempts to reach a leader.
const retryDelayCap = 50 * time.Millisecond

// errNotSent marks a call that failed before any byte of the request left
// this node (the dial or the TLS handshake failed), so it had no effect.
var errNotSent = errors.New("raftnode: request not sent")

// peerDialer opens node-to-node connections: TCP from the configured
// source address, mutual TLS when peer TLS is on (the server's certificate
// must come from the CA and, when the configuration names the node at that
// address, be that node's), then the tag.
type peerDialer struct {
	tls    *tlsconf.Source // nil: plain text
	source net.IP
	// expect returns the id the Raft configuration gives the node at addr,
	// or "" if none; nil expects nothing.
	expect func(addr string) string
}

func (d *peerDialer) dial(ctx context.Context, addr string, tag byte) (net.Conn, error) {
	var nd net.Dialer
	if d.source != nil {
		nd.LocalAddr = &net.TCPAddr{IP: d.source}
	}
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNotSent, err)
	}
	if d.tls != nil {
		want := ""
		if d.expect != nil {
			want = d.expect(addr)
		}
		tc := tls.Client(c, d.tls.ClientConfig(want, nodeUsages...))
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			hint := ""
			if errors.Is(err, io.EOF) {
				hint = " (does that node run without peer TLS?)"
			}
			return nil, fmt.Errorf("%w: TLS handshake with %s: %w%s", errNotSent, addr, err, hint)
		}
		c = tc
	}
	if _, err := c.Write([]byte{tag}); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: announce connection to %s: %w", errNotSent, addr, err)
	}
	return c, nil
}

// verifyIdentity checks that the node listening at addr holds a
// certificate for id (a TLS handshake, nothing sent). Without peer TLS
// there is nothing to check.
func (d *peerDialer) verifyIdentity(ctx context.Context, addr, id string) error {
	if d.tls == nil {
		return nil
	}
	var nd net.Dialer
	if d.source != nil {
		nd.LocalAddr = &net.TCPAddr{IP: d.source}
	}
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("raftnode: reach %s to check it is %s: %w", addr, id, err)
	}
	defer c.Close()
	tc := tls.Client(c, d.tls.ClientConfig(id, nodeUsages...))
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("%w: the node at %s is not %s: %w", ErrPeerRefused, addr, id, err)
	}
	return nil
}

// newPeerHTTP is the HTTP client of the internal API over the dialer.
func newPeerHTTP(d *peerDialer) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return d.dial(ctx, addr, tagInternal)
		},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		Proxy:               nil, // node-to-node calls never go through a proxy
	}}
}

// peerAnswer is a node's answer to an internal call.
type peerAnswer struct {
	status  int
	outcome string // the X-Raftnode-Outcome header
	body    []byte
}

// call sends one request to the node at addr. The error is non-nil only
// when no complete answer arrived; it wraps errNotSent when the request
// certainly never left this node.
func (n *Node) call(ctx context.Context, addr, method, path string, body []byte) (peerAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return peerAnswer{}, fmt.Errorf("%w: %w", errNotSent, err)
	}
	req.Header.Set(headerNode, n.cfg.NodeID)
	if id := RequestID(ctx); id != "" {
		req.Header.Set(HeaderRequestID, id)
	}
	resp, err := n.peerHTTP.Do(req)
	if err != nil {
		return peerAnswer{}, fmt.Errorf("raftnode: %s on %s: %w", path, addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerBody))
	if err != nil {
		return peerAnswer{}, fmt.Errorf("raftnode: %s on %s: read answer: %w", path, addr, err)
	}
	return peerAnswer{status: resp.StatusCode, outcome: resp.Header.Get(headerOutcome), body: b}, nil
}

// effect says whether a call may change state, which decides how a failure
// after the request left this node is classified.
type effect bool

const (
	effectFree effect = false // reads: any failure may be retried
	mayAffect  effect = true  // writes: a failure after sending leaves the outcome unknown
)

// classify turns one attempt's outcome into the error a caller acts on:
//
//   - nil: the receiver answered 200;
//   - errRetry: certainly no effect (not sent, or refused as not the
//     leader), or any failure of an effect-free call;
//   - ErrPeerTLSRequired, ErrPeerRefused, ErrUnknownMember, errBadRequest:
//     refused for good, no effect;
//   - ErrUnknownOutcome: anything else from a call that may have had an
//     effect (a broken connection after sending, a 503 from the leader).
func classify(addr string, ans peerAnswer, err error, e effect) error {
	msg := strings.TrimSpace(string(ans.body))
	switch {
	case err != nil && errors.Is(err, errNotSent):
		return fmt.Errorf("%w: %w", errRetry, err)
	case err != nil && e == effectFree:
		return fmt.Errorf("%w: %w", errRetry, err)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
	case ans.status == http.StatusOK:
		return nil
	case ans.outcome == "not-leader":
		return fmt.Errorf("%w: %s is not the leader", errRetry, addr)
	case ans.outcome == outcomeTLSRequired:
		return fmt.Errorf("%w (%s)", ErrPeerTLSRequired, addr)
	case ans.outcome == outcomeUpgrade:
		return fmt.Errorf("%w: %s", ErrUpgradeInProgress, msg)
	case ans.status == http.StatusForbidden:
		return fmt.Errorf("%w: %s: %s", ErrPeerRefused, addr, msg)
	case ans.status == http.StatusNotFound:
		return fmt.Errorf("%w: %s", ErrUnknownMember, msg)
	case ans.status == http.StatusBadRequest:
		return fmt.Errorf("%w: %s: %s", errBadRequest, addr, msg)
	case e == effectFree:
		return fmt.Errorf("%w: %s answered %d: %s", errRetry, addr, ans.status, msg)
	default:
		return fmt.Errorf("%w: %s answered %d: %s", ErrUnknownOutcome, addr, ans.status, msg)
	}
}

// errBadRequest means the receiver refused a malformed request; sending it
// again cannot help.
var errBadRequest = errors.New("raftnode: request refused as malformed")

// onLeader runs one attempt against the current leader until the attempt
// returns anything but errRetry: local runs on this node when it leads,
// remote with the leader's address otherwise. Waits between attempts back
// off from 10 ms to retryDelayCap; when ctx ends the result is ErrNoLeader
// (nothing took effect), when the node closes ErrShutdown.
func (n *Node) onLeader(ctx context.Context, local func() error, remote func(addr string) error) error {
	delay := 10 * time.Millisecond
	for {
		var err error
		if n.IsLeader() {
			err = local()
		} else if _, addr := n.Leader(); addr != "" {
			err = remote(addr)
		} else {
			err = fmt.Errorf("%w: no leader known", errRetry)
		}
		if !errors.Is(err, errRetry) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v (last attempt: %v)", ErrNoLeader, ctx.Err(), err)
		case <-n.closed:
			return ErrShutdown
		case <-time.After(delay):
		}
		// Waiting costs nothing but the check; a short cap finds a new
		// leader soon after it is elected.
		delay = min(2*delay, retryDelayCap)
	}
}
