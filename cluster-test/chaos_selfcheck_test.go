package clustertest

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"
)

// The checkers must catch real bugs: each hand-made bad history in
// testdata/chaos is flagged with the anomaly it was made to show, and the
// correct one passes.
func TestChaosCheckers_FlagEveryHandMadeBadHistory(t *testing.T) {
	tests := []struct {
		file string
		want []string // anomaly kinds, exactly
		// ghosts: projections that needed a claim with unknown outcome
		ghosts int
	}{
		{file: "clean.jsonl", want: nil, ghosts: 1},
		{file: "lost-ack.jsonl", want: []string{anomalyLost, anomalyNonLinearizable}},
		{file: "double-claim.jsonl", want: []string{anomalyDoubleClaim, anomalyNonLinearizable}},
		{file: "resurrected-delete.jsonl", want: []string{anomalyResurrected, anomalyNonLinearizable}},
		{file: "stale-read.jsonl", want: []string{anomalyNonLinearizable}},
		{file: "phantom-write.jsonl", want: []string{anomalyPhantom, anomalyNonLinearizable}},
		{file: "digest-mismatch.jsonl", want: []string{anomalyDigest}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			h, err := readHistoryFile(filepath.Join("testdata", "chaos", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			r := checkHistory(h, 10*time.Second)
			var got []string
			for _, a := range r.Anomalies {
				got = append(got, a.Kind)
				t.Logf("flagged: %s", a)
			}
			sort.Strings(got)
			want := slices.Clone(tt.want)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("anomaly kinds %v, want %v", got, want)
			}
			if r.Lin.WithGhosts != tt.ghosts {
				t.Errorf("%d projections needed ghost claims, want %d", r.Lin.WithGhosts, tt.ghosts)
			}
			if wantLin := !slices.Contains(tt.want, anomalyNonLinearizable); (r.Lin.Verdict == "linearizable") != wantLin {
				t.Errorf("linearizability verdict %q; want linearizable=%v", r.Lin.Verdict, wantLin)
			}
		})
	}
}

// A history in which every claim, delete and read is legal when claims
// expire on time must stay legal; the same history with the second claim
// moved inside the first claim's TTL must not.
func TestChaosCheckers_ClaimExpiryIsJudgedByTheClaimTTL(t *testing.T) {
	sec := int64(time.Second)
	build := func(secondClaimAt int64) *chaosHistory {
		h := &chaosHistory{Header: runHeader{Queues: []string{"q0"}, ClaimTTL: 60}}
		h.Ops = []opRecord{
			{ID: 0, Kind: opPost, Queue: "q0", Call: 1 * sec, Return: 1*sec + 1, Outcome: outcomeOK, Status: 201, Bodies: []string{"b1"}, TTL: 3600, IDs: []string{"m1"}},
			{ID: 1, Kind: opClaim, Queue: "q0", Call: 2 * sec, Return: 2*sec + 1, Outcome: outcomeOK, Status: 201, TTL: 60, ClaimID: "c1",
				Seen: []seenMessage{{ID: "m1", Body: "b1", Claim: "c1", ClaimShown: true}}},
			{ID: 2, Kind: opGet, Queue: "q0", Call: 30 * sec, Return: 30*sec + 1, Outcome: outcomeOK, Status: 200, IDs: []string{"m1"},
				Seen: []seenMessage{{ID: "m1", Body: "b1", Claim: "c1", ClaimShown: true}}},
			{ID: 3, Kind: opClaim, Queue: "q0", Call: secondClaimAt, Return: secondClaimAt + 1, Outcome: outcomeOK, Status: 201, TTL: 60, ClaimID: "c2",
				Seen: []seenMessage{{ID: "m1", Body: "b1", Claim: "c2", ClaimShown: true}}},
		}
		return h
	}
	if r := checkHistory(build(63*sec), 10*time.Second); len(r.Anomalies) != 0 {
		t.Errorf("a claim taken after the first one expired was flagged: %v", r.Anomalies)
	}
	r := checkHistory(build(40*sec), 10*time.Second)
	if r.count(anomalyDoubleClaim) != 1 || r.count(anomalyNonLinearizable) != 1 {
		t.Errorf("a claim taken 38 s into a 60 s claim was not flagged as a double claim and non-linearizable: %v", r.Anomalies)
	}
}

// Saved histories can be checked again offline: CHAOS_CHECK names one
// (history.jsonl of a failed run); without it the correct hand-made history
// is checked.
func TestChaos_RecheckHistory(t *testing.T) {
	path := os.Getenv("CHAOS_CHECK")
	if path == "" {
		path = filepath.Join("testdata", "chaos", "clean.jsonl")
	}
	h, err := readHistoryFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := checkHistory(h, time.Minute)
	d, _ := time.ParseDuration(h.Header.Duration)
	rep := &chaosReport{cfg: chaosConfig{Seed: h.Header.Seed, Nodes: h.Header.Nodes, Duration: d}, hist: h, result: r}
	for _, line := range rep.lines() {
		t.Log(line)
	}
	for _, a := range r.Anomalies {
		t.Errorf("anomaly: %s", a)
	}
}

// echoBackend accepts connections, echoes what it reads, and reports every
// chunk it received.
func echoBackend(t *testing.T, addr string) (net.Listener, chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	got := make(chan []byte, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 1024)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						got <- append([]byte(nil), buf[:n]...)
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln, got
}

// dialFrom connects to addr from the local IP src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads the echo, waiting at most wait.
func roundTrip(c net.Conn, msg string, wait time.Duration) (string, error) {
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

// received drains what the backend got within wait.
func received(got chan []byte, wait time.Duration) string {
	var b bytes.Buffer
	deadline := time.After(wait)
	for {
		select {
		case chunk := <-got:
			b.Write(chunk)
		case <-deadline:
			return b.String()
		}
	}
}

func TestChaosProxy_BlocksEachDirectionSeparatelyAndCutsConnectionsOnChange(t *testing.T) {
	const a, b = "127.0.0.41", "127.0.0.42" // node 0 dials from a; node 1 lives on b
	backend, got := echoBackend(t, b+":0")
	n := newChaosNet()
	t.Cleanup(n.close)
	n.slotOf[a] = 0
	p, err := n.addProxy(1, b, b+":0", backend.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	c := dialFrom(t, a, p.Addr())
	if echo, err := roundTrip(c, "hello", 5*time.Second); err != nil || echo != "hello" {
		t.Fatalf("healthy link: echo %q, %v", echo, err)
	}
	received(got, 100*time.Millisecond)

	n.blockOneWay([]int{0}, []int{1})
	if _, err := roundTrip(c, "cut?", 2*time.Second); err == nil {
		t.Errorf("a connection established before the partition still works after it")
	}
	c2 := dialFrom(t, a, p.Addr())
	if echo, err := roundTrip(c2, "lost", 500*time.Millisecond); err == nil {
		t.Errorf("0->1 blocked: got echo %q", echo)
	}
	if r := received(got, 300*time.Millisecond); r != "" {
		t.Errorf("0->1 blocked: node 1 received %q", r)
	}

	n.blockOneWay([]int{1}, []int{0})
	c3 := dialFrom(t, a, p.Addr())
	if echo, err := roundTrip(c3, "one-way", 500*time.Millisecond); err == nil {
		t.Errorf("1->0 blocked: got echo %q", echo)
	}
	if r := received(got, 2*time.Second); r != "one-way" {
		t.Errorf("1->0 blocked: node 1 received %q, want the bytes 0 sent (only the other direction is blocked)", r)
	}

	n.slow(1, []int{0}, 300*time.Millisecond)
	c4 := dialFrom(t, a, p.Addr())
	began := time.Now()
	if echo, err := roundTrip(c4, "slow", 5*time.Second); err != nil || echo != "slow" {
		t.Errorf("slow link: echo %q, %v", echo, err)
	} else if d := time.Since(began); d < 600*time.Millisecond {
		t.Errorf("slow link (300ms each way): round trip took only %s", d)
	}

	n.heal()
	c5 := dialFrom(t, a, p.Addr())
	if echo, err := roundTrip(c5, "healed", 5*time.Second); err != nil || echo != "healed" {
		t.Errorf("after heal: echo %q, %v", echo, err)
	}
	if n.cuts.Load() == 0 {
		t.Errorf("no established connection was cut by the rule changes")
	}
}

// A 403 to a delete says the message is claimed. With no claim anybody
// made it is not linearizable; a claim whose answer was lost (a ghost)
// explains it, but only while that claim can still be live.
func TestChaosCheckers_ForbiddenDeleteNeedsAClaim(t *testing.T) {
	sec := int64(time.Second)
	tests := []struct {
		name         string
		unknownClaim bool
		finalAt      int64
		want         []string
	}{
		{"no claim at all", false, 70 * sec, []string{anomalyNonLinearizable}},
		{"a ghost claim, read after it expired", true, 70 * sec, nil},
		{"a ghost claim, read unclaimed while it is live", true, 10 * sec, []string{anomalyNonLinearizable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &chaosHistory{Header: runHeader{Queues: []string{"q0"}, ClaimTTL: 60}}
			h.Ops = []opRecord{
				{ID: 0, Kind: opPost, Queue: "q0", Call: 1 * sec, Return: 1*sec + 1, Outcome: outcomeOK, Status: 201, Bodies: []string{"b1"}, TTL: 3600, IDs: []string{"m1"}},
				{ID: 1, Kind: opDelete, Queue: "q0", Call: 5 * sec, Return: 5*sec + 1, Outcome: outcomeOK, Status: 403, IDs: []string{"m1"}},
				{ID: 2, Kind: opList, Queue: "q0", Call: tt.finalAt, Return: tt.finalAt + 1, Outcome: outcomeOK, Status: 200, Final: true,
					Seen: []seenMessage{{ID: "m1", Body: "b1", ClaimShown: true}}},
				{ID: 3, Kind: opList, Queue: "q0", Call: tt.finalAt + 2, Return: tt.finalAt + 3, Outcome: outcomeOK, Status: 200, Final: true, FinalComplete: true},
			}
			if tt.unknownClaim {
				h.Ops = append(h.Ops, opRecord{ID: 4, Kind: opClaim, Queue: "q0", Call: 2 * sec, Return: 17 * sec, Outcome: outcomeUnknown, TTL: 60, Limit: 1})
			}
			r := checkHistory(h, 10*time.Second)
			var got []string
			for _, a := range r.Anomalies {
				got = append(got, a.Kind)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("anomalies %v, want kinds %v", r.Anomalies, tt.want)
			}
		})
	}
}
