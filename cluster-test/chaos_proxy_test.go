package clustertest

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The chaos suite injects network faults with a TCP proxy per node instead
// of network namespaces: namespaces need root and iproute2/iptables on every
// machine that runs `make test`, the proxy needs nothing. Node i listens for
// Raft on 127.0.0.(10+i):R, dials other nodes from 127.0.0.(10+i)
// (-raft-source-ip) and advertises its proxy 127.0.0.(10+i):P instead of R.
// Linux routes all of 127/8 to lo, so every node-to-node connection arrives
// at the destination's proxy from the source node's own address: the proxy
// knows both ends of every connection and can block or delay each directed
// link. Raft and the follower→leader forwarding channel share the node port,
// so a partition cuts both.

// linkRule is what happens to bytes sent from one node to another.
type linkRule struct {
	Blocked bool          // bytes are discarded (a one-way black hole)
	Delay   time.Duration // bytes are delivered this much later
}

// chaosNet holds the link rules of one test cluster and its proxies.
type chaosNet struct {
	mu      sync.Mutex
	slotOf  map[string]int      // source IP -> slot
	rules   map[[2]int]linkRule // {from, to} -> rule; absent = healthy
	proxies []*linkProxy
	cuts    atomic.Int64 // established connections cut by rule changes
}

func newChaosNet() *chaosNet {
	return &chaosNet{slotOf: map[string]int{}, rules: map[[2]int]linkRule{}}
}

// linkProxy forwards connections for one node's Raft port.
type linkProxy struct {
	net    *chaosNet
	slot   int
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns map[*proxyConn]struct{}
	wg    sync.WaitGroup
}

// proxyConn is one proxied connection from node src to node dst (src is -1
// for a client that is not a node of the cluster).
type proxyConn struct {
	src, dst int
	client   net.Conn

	mu     sync.Mutex
	server net.Conn
	closed bool
}

// setServer attaches the backend connection; false if the connection was
// cut meanwhile (server is then closed).
func (pc *proxyConn) setServer(server net.Conn) bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closed {
		server.Close()
		return false
	}
	pc.server = server
	return true
}

func (pc *proxyConn) close() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closed {
		return
	}
	pc.closed = true
	pc.client.Close()
	if pc.server != nil {
		pc.server.Close()
	}
}

// addProxy starts the proxy of slot, listening on listenAddr and forwarding
// to target; ip is the address the node of that slot dials from.
func (n *chaosNet) addProxy(slot int, ip, listenAddr, target string) (*linkProxy, error) {
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, err
	}
	p := &linkProxy{net: n, slot: slot, ln: ln, target: target, conns: map[*proxyConn]struct{}{}}
	n.mu.Lock()
	n.slotOf[ip] = slot
	n.proxies = append(n.proxies, p)
	n.mu.Unlock()
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the address other nodes dial to reach this proxy's node.
func (p *linkProxy) Addr() string { return p.ln.Addr().String() }

func (p *linkProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		src := -1
		if host, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
			p.net.mu.Lock()
			if s, ok := p.net.slotOf[host]; ok {
				src = s
			}
			p.net.mu.Unlock()
		}
		pc := &proxyConn{src: src, dst: p.slot, client: c}
		p.mu.Lock()
		p.conns[pc] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.run(pc)
	}
}

// run dials the node behind the proxy and pumps bytes both ways until
// either side ends or the connection is cut. A node that is down (killed)
// refuses the backend dial; its peers then see an accepted connection that
// is closed at once.
func (p *linkProxy) run(pc *proxyConn) {
	defer p.wg.Done()
	defer func() {
		pc.close()
		p.mu.Lock()
		delete(p.conns, pc)
		p.mu.Unlock()
	}()
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !pc.setServer(server) {
		return
	}
	done := make(chan struct{}, 2)
	go func() { p.net.pump(pc.client, server, pc.src, pc.dst); done <- struct{}{} }()
	go func() { p.net.pump(server, pc.client, pc.dst, pc.src); done <- struct{}{} }()
	<-done
	pc.close()
	<-done
}

// delayedChunk is a piece of a byte stream waiting for its delivery time.
type delayedChunk struct {
	data []byte
	due  time.Time
}

// pump copies from → to, applying the rule of the link from→to to every
// chunk when it is read. Blocked bytes are discarded; such a connection is
// cut when the rule changes again, so a damaged stream is never resumed.
func (n *chaosNet) pump(from, to net.Conn, src, dst int) {
	queue := make(chan delayedChunk, 1024)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for c := range queue {
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d)
			}
			if _, err := to.Write(c.data); err != nil {
				from.Close()
				for range queue {
				}
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		k, err := from.Read(buf)
		if k > 0 {
			rule := n.rule(src, dst)
			if !rule.Blocked {
				queue <- delayedChunk{data: append([]byte(nil), buf[:k]...), due: time.Now().Add(rule.Delay)}
			}
		}
		if err != nil {
			break
		}
	}
	close(queue)
	<-writerDone
}

func (n *chaosNet) rule(src, dst int) linkRule {
	if src < 0 || dst < 0 {
		return linkRule{}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rules[[2]int{src, dst}]
}

// setRules replaces every rule and cuts the established connections of
// each link whose rule changed (in either direction, since a TCP
// connection between two nodes carries bytes both ways).
func (n *chaosNet) setRules(rules map[[2]int]linkRule) {
	n.mu.Lock()
	changed := map[[2]int]bool{}
	for k, r := range rules {
		if n.rules[k] != r {
			changed[pairKey(k[0], k[1])] = true
		}
	}
	for k, r := range n.rules {
		if rules[k] != r {
			changed[pairKey(k[0], k[1])] = true
		}
	}
	n.rules = map[[2]int]linkRule{}
	for k, r := range rules {
		if r != (linkRule{}) {
			n.rules[k] = r
		}
	}
	proxies := append([]*linkProxy(nil), n.proxies...)
	n.mu.Unlock()
	for _, p := range proxies {
		p.mu.Lock()
		var cut []*proxyConn
		for pc := range p.conns {
			if pc.src >= 0 && changed[pairKey(pc.src, pc.dst)] {
				cut = append(cut, pc)
			}
		}
		p.mu.Unlock()
		for _, pc := range cut {
			pc.close()
		}
		n.cuts.Add(int64(len(cut)))
	}
}

func pairKey(a, b int) [2]int {
	if a > b {
		a, b = b, a
	}
	return [2]int{a, b}
}

// heal removes every rule.
func (n *chaosNet) heal() { n.setRules(nil) }

// partition blocks every link between the two groups, both ways.
func (n *chaosNet) partition(a, b []int) {
	rules := map[[2]int]linkRule{}
	for _, x := range a {
		for _, y := range b {
			rules[[2]int{x, y}] = linkRule{Blocked: true}
			rules[[2]int{y, x}] = linkRule{Blocked: true}
		}
	}
	n.setRules(rules)
}

// blockOneWay blocks the links from every node of from to every node of
// to; the opposite direction keeps working.
func (n *chaosNet) blockOneWay(from, to []int) {
	rules := map[[2]int]linkRule{}
	for _, x := range from {
		for _, y := range to {
			rules[[2]int{x, y}] = linkRule{Blocked: true}
		}
	}
	n.setRules(rules)
}

// slow delays every link of node by d, both ways.
func (n *chaosNet) slow(node int, others []int, d time.Duration) {
	rules := map[[2]int]linkRule{}
	for _, y := range others {
		rules[[2]int{node, y}] = linkRule{Delay: d}
		rules[[2]int{y, node}] = linkRule{Delay: d}
	}
	n.setRules(rules)
}

// describe renders the current rules, e.g. "1->2 blocked, 2->1 +200ms".
func (n *chaosNet) describe() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var parts []string
	for k, r := range n.rules {
		s := fmt.Sprintf("%d->%d", k[0]+1, k[1]+1)
		if r.Blocked {
			s += " blocked"
		}
		if r.Delay > 0 {
			s += " +" + r.Delay.String()
		}
		parts = append(parts, s)
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "healthy"
	}
	return strings.Join(parts, ", ")
}

// close stops every proxy and cuts its connections.
func (n *chaosNet) close() {
	n.mu.Lock()
	proxies := append([]*linkProxy(nil), n.proxies...)
	n.mu.Unlock()
	for _, p := range proxies {
		p.ln.Close()
		p.mu.Lock()
		for pc := range p.conns {
			pc.close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	}
}
