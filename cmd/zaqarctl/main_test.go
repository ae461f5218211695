package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/internal/testcluster"
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

func TestZaqarctl_TransferLeaderMovesLeadership(t *testing.T) {
	c := testcluster.Start(t, 3)
	target := c.Followers()[1]
	var out, errb bytes.Buffer
	if code := run([]string{"-addr", c.Followers()[0].URL(), "transfer-leader", target.ID}, &out, &errb); code != 0 {
		t.Fatalf("transfer-leader exited %d: %s", code, errb.String())
	}
	c.Eventually(10*time.Second, func() bool { return target.Server.Node().IsLeader() }, "leadership did not move to %s", target.ID)
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
