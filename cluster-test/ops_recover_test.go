package clustertest

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// opsRecover runs zaqar-server recover on p's data directory. The command
// must say it is done and exit by itself; if it says it is done but does
// not exit within 10 s, that is a failure, and the process is killed so
// that the rest of the procedure can still be checked.
func opsRecover(t *testing.T, p *proc, peers string) {
	t.Helper()
	cmd := exec.Command(serverBinary, "recover", "-data-dir", p.DataDir, "-node-id", p.ID, "-peers", peers)
	cmd.Env = serverEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out := &opsSyncWriter{}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	const doneLine = "now has the configuration"
	var saidDone time.Time
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("zaqar-server recover on %s: %v\n%s", p.ID, err, out)
			}
			t.Logf("zaqar-server recover on %s took %s: %s", p.ID, time.Since(start).Round(time.Millisecond), strings.TrimSpace(out.String()))
			if !strings.Contains(out.String(), doneLine) {
				t.Errorf("zaqar-server recover on %s said %q", p.ID, out)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if saidDone.IsZero() && strings.Contains(out.String(), doneLine) {
			saidDone = time.Now()
		}
		hung := !saidDone.IsZero() && time.Since(saidDone) > 10*time.Second
		if hung || time.Since(start) > 90*time.Second {
			_ = cmd.Process.Kill()
			<-done
			if !hung {
				t.Fatalf("zaqar-server recover on %s did not finish within 90 s: %q", p.ID, out)
			}
			t.Errorf("zaqar-server recover on %s printed %q but had not exited 10 s later; killed it", p.ID, strings.TrimSpace(out.String()))
			return
		}
	}
}

// opsSyncWriter collects a process's output; it may be read while the
// process writes.
type opsSyncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *opsSyncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(b)
}

func (s *opsSyncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestOps_LostQuorumRecoveryOfTwoSurvivorsOfFive loses three of five
// nodes for good and brings the cluster back from the two survivors with
// zaqar-server recover, as docs/operations.md describes, showing what the
// recovery keeps and what it loses:
//
//   - posts acknowledged while all five nodes were up (and replicated to
//     all of them) survive;
//   - posts acknowledged by the three doomed nodes while the two survivors
//     were down are lost: recovery can only keep what the survivors hold;
//   - the survivors alone have no quorum: they elect no leader and every
//     write fails with 503 after the request timeout;
//   - after recover and a restart, the survivors form a 2-voter cluster
//     that takes writes.
func TestOps_LostQuorumRecoveryOfTwoSurvivorsOfFive(t *testing.T) {
	// A short request timeout, so that the probe without quorum answers
	// sooner.
	c := opsStartCluster(t, 5, "-request-timeout", "5s")
	lb := opsNewBalancer(t, c.Nodes...)
	const project = "p-recover"
	load := opsStartLoad(t, lb, project, 4, "recover-a", "recover-b")
	load.WaitAcked(t, 200, 90*time.Second)
	load.Stop()
	lb.Close()
	opsCheckClientErrors(t, load, nil)
	opsWaitConverged(t, c.Nodes, 60*time.Second)

	leader := c.Leader()
	followers := c.Followers()
	survivors := followers[:2]
	doomed := append([]*proc{leader}, followers[2:]...)
	t.Logf("survivors %s and %s; %s (leader), %s and %s will be lost", survivors[0].ID, survivors[1].ID, doomed[0].ID, doomed[1].ID, doomed[2].ID)

	// The survivors go down; the other three still form a quorum and
	// acknowledge posts the survivors never see.
	for _, p := range survivors {
		c.Stop(p)
	}
	lc := newRESTClient(leader, "0d0d0d0d-1111-4222-8333-444444444444", project)
	var lost []string
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		ids, err := lc.postMessages(ctx, "recover-a", map[string]any{"n": -1 - i})
		cancel()
		if err != nil {
			t.Fatalf("post while the survivors are down (3 of 5 still form a quorum): %v", err)
		}
		lost = append(lost, ids...)
	}

	// The majority is lost for good; the survivors come back alone.
	lostAt := time.Now()
	for _, p := range doomed {
		c.Kill(p)
	}
	for _, p := range survivors {
		c.Restart(p)
	}
	sc := newRESTClient(survivors[0], "0d0d0d0d-1111-4222-8333-444444444444", project)
	probeStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	r, err := sc.do(ctx, http.MethodPost, "/v2/queues/recover-probe/messages", map[string]any{"messages": []map[string]any{{"ttl": 3600, "body": map[string]any{"n": -100}}}})
	cancel()
	if err != nil {
		t.Fatalf("post to a survivor without quorum: %v", err)
	}
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("post to a survivor without quorum answered %s; want 503", r)
	}
	t.Logf("without quorum a post to %s answers after %s: %s", survivors[0].ID, time.Since(probeStart).Round(time.Millisecond), r)
	if st, err := adminStatus(context.Background(), survivors[1]); err != nil || st.Leader != "" {
		t.Errorf("a survivor without quorum names leader %q (%v)", st.Leader, err)
	}

	// Recovery: stop the survivors, rewrite their configuration, start them.
	recoverStart := time.Now()
	peers := opsPeers(survivors)
	for _, p := range survivors {
		c.Stop(p)
		opsRecover(t, p, peers)
	}
	// The harness's bootstrap flags name all five; a node with Raft state
	// ignores them.
	for _, p := range survivors {
		c.Restart(p)
	}
	if _, err := c.waitForLeader(60 * time.Second); err != nil {
		t.Fatalf("the survivors elected no leader after recover: %v", err)
	}
	opsWaitVoters(t, survivors, survivors, 30*time.Second)
	c.waitUntil(60*time.Second, "a post to succeed after recovery", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := sc.postMessages(ctx, "recover-probe", map[string]any{"n": -200})
		return err == nil, fmt.Sprint(err)
	})
	t.Logf("lost quorum recovery: stop + recover + start of the 2 survivors took %s; writes were unavailable for %s from the loss of the majority",
		time.Since(recoverStart).Round(time.Millisecond), time.Since(lostAt).Round(time.Millisecond))

	// Writes work through both survivors.
	rlb := opsNewBalancer(t, survivors...)
	after := opsStartLoad(t, rlb, project, 2, "recover-c")
	after.WaitAcked(t, 50, 60*time.Second)
	after.Stop()
	opsCheckClientErrors(t, after, nil)
	t.Logf("load after recovery: %s", after.Summary())

	// What survived and what did not: everything acknowledged while all
	// five were up is there, once; the posts only the lost majority had
	// are not (opsCheckPresent fails on any message the load did not post).
	opsWaitConverged(t, survivors, 60*time.Second)
	for _, p := range survivors {
		opsCheckAllPresent(t, p, after, true)
		opsCheckPresent(t, p, project, load.queues, load.Acked(), nil, true)
	}
	t.Logf("after recovery: the %d posts acknowledged while all 5 nodes were up are on both survivors; the %d acknowledged only by the lost majority are gone",
		len(load.Acked()), len(lost))
}
