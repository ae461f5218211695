package clustertest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// raftMaxAppendEntries is raftnode's default batch limit: Raft hands the
// FSM at most this many entries at once, so a restarted node that skips
// the entries its store already holds still "observes" at most this many
// skipped entries in the one batch that straddles its applied index.
const raftMaxAppendEntries = 256

func TestRestart_NodeCatchesUpFromItsOwnStore(t *testing.T) {
	c := startCluster(t, 3)
	const queue = "restart"
	const project = "p-restart"
	ctx := context.Background()

	// Post enough messages, one log entry each, that the store's applied
	// index is well above one Raft apply batch: then a node that replays
	// its whole log and a node that resumes from its store are told apart
	// by how many entries its FSM was handed.
	const before = 400
	postInParallel(t, c.Running(), project, queue, "before", before)
	c.WaitApplied(60 * time.Second)

	f := c.Followers()[0]
	st, err := ownStatus(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	storeApplied := st.AppliedIndex
	if storeApplied <= raftMaxAppendEntries+50 {
		t.Fatalf("setup: %s applied only %d entries; the replay check below needs more than %d", f.ID, storeApplied, raftMaxAppendEntries+50)
	}
	c.Stop(f)
	if !strings.Contains(f.LogOfRun(1), `msg="node stopped"`) {
		t.Errorf("%s exited on SIGTERM without logging a clean stop", f.ID)
	}
	t.Logf("stopped follower %s with SIGTERM at applied index %d", f.ID, storeApplied)

	// Write while it is down, through the leader and the other follower.
	const whileDown = 40
	postInParallel(t, c.Running(), project, queue, "while-down", whileDown)
	leaderStatus, err := ownStatus(ctx, c.Leader())
	if err != nil {
		t.Fatal(err)
	}

	c.Restart(f)
	first, err := ownStatus(ctx, f)
	if err != nil {
		t.Fatalf("status of %s right after the restart: %v", f.ID, err)
	}
	t.Logf("first status of %s after the restart: applied %d, commit %d, last %d, state %s (leader applied %d)",
		f.ID, first.AppliedIndex, first.CommitIndex, first.LastIndex, first.State, leaderStatus.AppliedIndex)
	if first.CommitIndex == 0 && first.AppliedIndex >= storeApplied {
		t.Logf("%s reported applied index %d before Raft had learned any commit index: the index came from its store", f.ID, first.AppliedIndex)
	}
	if first.AppliedIndex < storeApplied {
		t.Errorf("%s came back at applied index %d, below the %d its store held when it stopped", f.ID, first.AppliedIndex, storeApplied)
	}
	run2 := f.LogOfRun(2)
	if countLines(run2, `msg="raft node started"`, "existing_state=true") != 1 {
		t.Errorf("%s did not log \"raft node started ... existing_state=true\" on restart", f.ID)
	}
	if strings.Contains(run2, "restoring it") {
		t.Errorf("%s restored a snapshot on restart instead of resuming from its store", f.ID)
	}

	// It catches up: a local (stale) read on it serves everything,
	// including what was written while it was down.
	stale := newRESTClient(f, "33333333-4444-4555-8666-777777777777", project)
	stale.stale = true
	c.waitUntil(30*time.Second, f.ID+" to serve the messages posted while it was down", func() (bool, string) {
		ms, err := stale.listAll(ctx, queue)
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, m := range ms {
			if m.Body["phase"] == "while-down" {
				n++
			}
		}
		return len(ms) == before+whileDown && n == whileDown,
			fmt.Sprintf("%d messages, %d of them posted while it was down", len(ms), n)
	})
	applied := c.WaitApplied(60 * time.Second)
	linear := newRESTClient(f, "33333333-4444-4555-8666-777777777777", project)
	if ms, err := linear.listAll(ctx, queue); err != nil || len(ms) != before+whileDown {
		t.Errorf("linearizable listing on %s: %d messages, %v; want %d", f.ID, len(ms), err, before+whileDown)
	}

	// The FSM of the restarted process was handed only the entries its
	// store lacked (plus at most one batch's worth it skipped); a full
	// replay would have handed it all of them.
	handed, err := metric(ctx, f, "zaqar_fsm_apply_batch_entries_sum")
	if err != nil {
		t.Fatal(err)
	}
	missed := float64(applied - storeApplied)
	t.Logf("%s: store applied %d before the stop, %d now; its FSM was handed %.0f entries since the restart",
		f.ID, storeApplied, applied, handed)
	if handed < missed {
		t.Errorf("%s's FSM was handed %.0f entries, fewer than the %.0f it missed: it did not catch up through its own log", f.ID, handed, missed)
	}
	if handed > missed+raftMaxAppendEntries-1 {
		t.Errorf("%s's FSM was handed %.0f entries for %.0f missed ones: it replayed entries its store already had (a full replay hands %d)",
			f.ID, handed, missed, applied)
	}
}

// postInParallel posts n single-message posts (one log entry each) spread
// over the given nodes; the bodies are {"phase": phase, "n": i}.
func postInParallel(t *testing.T, nodes []*proc, project, queue, phase string, n int) {
	t.Helper()
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			clients := make([]*restClient, len(nodes))
			for i, p := range nodes {
				clients[i] = newRESTClient(p, fmt.Sprintf("44444444-5555-4666-8777-%012d", w), project)
			}
			for i := w; i < n; i += workers {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, err := clients[i%len(clients)].postMessages(ctx, queue, map[string]any{"phase": phase, "n": i})
				cancel()
				if err != nil {
					errs <- fmt.Errorf("post %s #%d to %s: %w", phase, i, nodes[i%len(nodes)].ID, err)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
