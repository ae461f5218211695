package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

func TestZaqarctl_StatusListsEveryMemberWithTheLeader(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := c.Leader()
	var out, errb bytes.Buffer
	if code := run([]string{"-addr", c.Followers()[0].URL(), "status"}, &out, &errb); code != 0 {
		t.Fatalf("status exited %d: %s", code, errb.String())
	}
	text := out.String()
	if !strings.Contains(text, "leader "+leader.ID) {
		t.Errorf("status does not name leader %s:\n%s", leader.ID, text)
	}
	for _, n := range c.Nodes {
		if !strings.Contains(text, n.ID) || !strings.Contains(text, n.RaftAddr) {
			t.Errorf("status lacks %s at %s:\n%s", n.ID, n.RaftAddr, text)
		}
	}
	if strings.Count(text, "Follower") != 2 || strings.Count(text, "Leader ") < 1 {
		t.Errorf("want one leader and two followers:\n%s", text)
	}
}

// TestZaqarctl_StatusShowsWhyAMemberHasNoStatus joins two members that
// answer the status call badly: one with an error page whose body is JSON,
// one claiming to be another node. Each row must still name the member and
// say what went wrong, not come out blank or as the impostor.
func TestZaqarctl_StatusShowsWhyAMemberHasNoStatus(t *testing.T) {
	c := testcluster.Start(t, 3)
	fake := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	broken := fake(http.StatusInternalServerError, `{}`)
	impostor := fake(http.StatusOK, `{"id": "node1", "state": "Leader", "term": 99}`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for id, addr := range map[string]string{"broken": broken, "ghost": impostor} {
		if err := c.Leader().Server.Node().Join(ctx, id, addr); err != nil {
			t.Fatalf("join %s: %v", id, err)
		}
	}

	var out, errb bytes.Buffer
	if code := run([]string{"-addr", c.Followers()[0].URL(), "status"}, &out, &errb); code != 0 {
		t.Fatalf("status exited %d: %s", code, errb.String())
	}
	rows := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = line
		}
	}
	for id, want := range map[string][]string{
		"broken": {broken, "unknown", "error: status call answered 500 Internal Server Error"},
		"ghost":  {impostor, "unknown", `error: the node at ` + impostor + ` answered as "node1", not "ghost"`},
	} {
		row := rows[id]
		for _, w := range want {
			if !strings.Contains(row, w) {
				t.Errorf("row of %s lacks %q:\n%s", id, w, out.String())
			}
		}
	}
	if strings.Count(out.String(), "Leader") != 1 {
		t.Errorf("the impostor's status was shown as a member's:\n%s", out.String())
	}
}

func TestZaqarctl_TransferLeaderMovesLeadership(t *testing.T) {
	c := testcluster.Start(t, 3)
	target := c.Followers()[1]
	var out, errb bytes.Buffer
	if code := run([]string{"-addr", c.Followers()[0].URL(), "transfer-leader", target.ID}, &out, &errb); code != 0 {
		t.Fatalf("transfer-leader exited %d: %s", code, errb.String())
	}
	c.Eventually(10*time.Second, func() bool { return target.Server.Node().IsLeader() }, "leadership did not move to %s", target.ID)

	// Without an ID it sends {} (any successor): the node refuses an
	// empty body.
	out.Reset()
	if code := run([]string{"-addr", target.URL(), "transfer-leader"}, &out, &errb); code != 0 {
		t.Fatalf("transfer-leader without an ID exited %d: %s", code, errb.String())
	}
	c.Eventually(10*time.Second, func() bool { l := c.Leader(); return l != nil && l != target }, "leadership did not move away from %s", target.ID)
}

func TestZaqarctl_RemoveUnknownMemberFailsClearly(t *testing.T) {
	c := testcluster.Start(t, 3)
	var out, errb bytes.Buffer
	if code := run([]string{"-addr", c.Leader().URL(), "remove", "nobody"}, &out, &errb); code != 1 {
		t.Fatalf("remove of an unknown member exited %d, want 1", code)
	}
	if !strings.Contains(errb.String(), "404") || !strings.Contains(errb.String(), "nobody") {
		t.Fatalf("error does not say the member is unknown: %s", errb.String())
	}
}

func TestZaqarctl_UnreachableNodeAndBadUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-addr", "http://127.0.0.1:1", "status"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "cannot reach") {
		t.Fatalf("unreachable node: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"join", "only-an-id"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage") {
		t.Fatalf("bad usage: exit %d, %q", code, errb.String())
	}
}

func TestZaqarctl_SnapshotSaveVerifyAndRestoreIntoAnEmptyDirectoryOnly(t *testing.T) {
	c := testcluster.Start(t, 3)
	dir := t.TempDir()
	file := filepath.Join(dir, "b.snap")
	var out, errb bytes.Buffer
	// The leader writes on its own now and then (GC, the signing secret):
	// the backup is compared with the source only if the source's state
	// did not change around it.
	var digest [32]byte
	for attempt := 1; ; attempt++ {
		digest = c.WaitConverged(30 * time.Second)
		out.Reset()
		if code := run([]string{"-addr", c.Followers()[0].URL(), "snapshot", "save", file}, &out, &errb); code != 0 {
			t.Fatalf("snapshot save exited %d: %s", code, errb.String())
		}
		if !strings.Contains(out.String(), "checksum verified") {
			t.Fatalf("snapshot save said %q", out.String())
		}
		if c.WaitConverged(30*time.Second) == digest {
			break
		}
		if attempt == 5 {
			t.Fatal("the source's state kept changing around the backup")
		}
	}
	out.Reset()
	if code := run([]string{"snapshot", "verify", file}, &out, &errb); code != 0 || !strings.Contains(out.String(), "valid, state at index") {
		t.Fatalf("snapshot verify exited %d: %q %q", code, out.String(), errb.String())
	}

	target := filepath.Join(dir, "node1")
	errb.Reset()
	if code := run([]string{"snapshot", "restore", file, target, "not-a-peer"}, &out, &errb); code != 1 {
		t.Fatalf("restore with a bad peer list exited %d: %s", code, errb.String())
	}
	if code := run([]string{"snapshot", "restore", file, target}, &out, &errb); code != 2 {
		t.Fatalf("restore without a peer list exited %d, want the usage", code)
	}
	out.Reset()
	if code := run([]string{"snapshot", "restore", file, target, "node1=127.0.0.1:1"}, &out, &errb); code != 0 {
		t.Fatalf("restore exited %d: %s", code, errb.String())
	}
	if want := fmt.Sprintf("digest %x", digest); !strings.Contains(out.String(), want) {
		t.Errorf("restore said %q; want the source's %s", out.String(), want)
	}
	if snaps, _ := filepath.Glob(filepath.Join(target, "raft", "snapshots", "*", "state.bin")); len(snaps) != 1 {
		t.Errorf("restore left %d Raft snapshots, want 1", len(snaps))
	}
	errb.Reset()
	if code := run([]string{"snapshot", "restore", file, target, "node1=127.0.0.1:1"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "existing node") {
		t.Fatalf("a second restore into the same directory exited %d: %s", code, errb.String())
	}
}
