package fsm_test

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/store"
)

// claimLog claims one message under cid(i).
func claimLog(index uint64, now int64, i int) *raft.Log {
	return cmdLog(index, now, &fsm.CreateClaim{Project: "p", Queue: "q", ClaimID: cid(i), TTL: 300, Grace: 60, Limit: 1})
}

func TestApplyBatch_AfterRestartSkipsEntriesTheStoreAlreadyHas(t *testing.T) {
	const applied, added = 6, 3
	// Entry 1 posts ten messages; every later entry claims one more. A
	// claim applied twice would claim a second message, so the store
	// shows exactly which entries took effect.
	posts := make([]store.NewMessage, 10)
	for i := range posts {
		posts[i] = newMsg(mid(i), 3600)
	}
	logs := []*raft.Log{cmdLog(1, t0, &fsm.PostMessages{Project: "p", Queue: "q", ClientID: "c", DefaultTTL: 3600, Messages: posts})}
	for i := 2; i <= applied+added; i++ {
		logs = append(logs, claimLog(uint64(i), t0+int64(i)*sec, i))
	}

	n := newNode(t)
	n.fsm.ApplyBatch(logs[:2])
	n.fsm.ApplyBatch(logs[2:applied])
	if got := n.fsm.AppliedIndex(); got != applied {
		t.Fatalf("AppliedIndex = %d, want %d", got, applied)
	}
	before := n.digest()

	n.restart()
	if got := n.fsm.AppliedIndex(); got != applied {
		t.Fatalf("AppliedIndex after restart = %d, want %d", got, applied)
	}
	if n.digest() != before {
		t.Fatal("restart changed the store")
	}
	// Raft replays its whole log after a restart without snapshot restore.
	out := n.fsm.ApplyBatch(logs)
	for i, o := range out {
		if skipped := i < applied; skipped != (o == nil) {
			t.Fatalf("result %d (index %d) = %v; entries up to %d must be skipped", i, i+1, o, applied)
		}
	}
	if got := n.fsm.EntriesApplied(); got != added {
		t.Fatalf("EntriesApplied = %d, want %d", got, added)
	}
	if got := n.fsm.AppliedIndex(); got != applied+added {
		t.Fatalf("AppliedIndex = %d, want %d", got, applied+added)
	}

	now := t0 + 20*sec
	msgs := n.listAll("p", "q", now)
	if len(msgs) != 10 {
		t.Fatalf("queue holds %d messages, want 10 (posts re-applied?)", len(msgs))
	}
	for i, m := range msgs {
		claimed := i < applied+added-1
		if m.Claimed(now) != claimed || (claimed && (m.ClaimID != cid(i+2) || m.ClaimCount != 1)) || (!claimed && m.ClaimCount != 0) {
			t.Fatalf("message %d: claim %q count %d claimed %v; want claimed=%v by %s once", i, m.ClaimID, m.ClaimCount, m.Claimed(now), claimed, cid(i+2))
		}
	}
	var stats store.Stats
	n.view(func(v *store.View) (err error) { stats, err = v.QueueStats("p", "q", now); return })
	if stats.Claimed != applied+added-1 {
		t.Fatalf("claimed messages = %d, want %d", stats.Claimed, applied+added-1)
	}
	if idx, _, err := n.st.Applied(); err != nil || idx != applied+added {
		t.Fatalf("store Applied = %d, %v; want %d", idx, err, applied+added)
	}
}

func TestApplyBatch_NonCommandEntriesAdvanceTheIndex(t *testing.T) {
	n := newNode(t)
	out := n.fsm.ApplyBatch([]*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogConfiguration},
		cmdLog(2, t0, &fsm.CreateQueue{Project: "p", Queue: "q"}),
		{Index: 3, Term: 2, Type: raft.LogConfiguration},
	})
	if out[0] != nil || out[2] != nil {
		t.Fatalf("non-command entries returned %v, %v", out[0], out[2])
	}
	if r := entryResult(t, out[1]); r.Index != 2 || r.Now != t0 || len(r.Results) != 1 || !r.Results[0].Changed {
		t.Fatalf("command result = %+v", r)
	}
	if idx, term, _ := n.st.Applied(); idx != 3 || term != 2 || n.fsm.AppliedIndex() != 3 {
		t.Fatalf("applied = %d/%d (store), %d (FSM); want 3/2", idx, term, n.fsm.AppliedIndex())
	}
	// A batch with no command at all still moves the index, and only it.
	before := n.digest()
	n.fsm.ApplyBatch([]*raft.Log{{Index: 4, Term: 3, Type: raft.LogConfiguration}})
	if idx, term, _ := n.st.Applied(); idx != 4 || term != 3 || n.fsm.AppliedIndex() != 4 {
		t.Fatalf("applied = %d/%d, want 4/3", idx, term)
	}
	if n.digest() != before {
		t.Fatal("a configuration entry changed the data")
	}
	if n.fsm.EntriesApplied() != 1 {
		t.Fatalf("EntriesApplied = %d, want 1", n.fsm.EntriesApplied())
	}
	n.restart()
	if n.fsm.AppliedIndex() != 4 {
		t.Fatalf("AppliedIndex after restart = %d, want 4", n.fsm.AppliedIndex())
	}
}

func TestApply_SingleEntryReturnsItsResult(t *testing.T) {
	n := newNode(t)
	r := entryResult(t, n.fsm.Apply(cmdLog(1, t0, &fsm.CreateQueue{Project: "p", Queue: "q"})))
	if r.Index != 1 || !r.Results[0].Changed {
		t.Fatalf("Apply = %+v", r)
	}
	if out := n.fsm.Apply(cmdLog(1, t0, &fsm.DeleteQueue{Project: "p", Queue: "q"})); out != nil {
		t.Fatalf("re-applying index 1 returned %v, want nil (skipped)", out)
	}
	var q *store.Queue
	n.view(func(v *store.View) (err error) { q, err = v.Queue("p", "q"); return })
	if q == nil {
		t.Fatal("a skipped entry took effect")
	}
}

func TestApply_ResultsReportEachCommandsOutcome(t *testing.T) {
	n := newNode(t)
	n.fsm.ApplyBatch([]*raft.Log{
		cmdLog(1, t0, &fsm.CreateQueue{Project: "p", Queue: "q", Metadata: []byte(`{}`)},
			&fsm.PostMessages{Project: "p", Queue: "q", ClientID: "c", DefaultTTL: 3600, Messages: []store.NewMessage{newMsg(mid(1), 600), newMsg(mid(2), 600)}}),
		cmdLog(2, t0, &fsm.CreateClaim{Project: "p", Queue: "q", ClaimID: cid(1), TTL: 300, Grace: 60, Limit: 1}),
	})
	now := t0 + sec
	r := entryResult(t, n.fsm.Apply(cmdLog(3, now,
		&fsm.CreateQueue{Project: "p", Queue: "q"},
		&fsm.SetQueueMetadata{Project: "p", Queue: "missing", ExpectVersion: 1},
		&fsm.SetQueueMetadata{Project: "p", Queue: "q", ExpectVersion: 99},
		&fsm.SetQueueMetadata{Project: "p", Queue: "q", ExpectVersion: 1, Metadata: []byte(`{"a":1}`)},
		&fsm.DeleteMessage{Project: "p", Queue: "q", ID: mid(1)},
		&fsm.DeleteMessage{Project: "p", Queue: "q", ID: mid(1), ClaimID: "not-a-claim-id"},
		&fsm.DeleteMessage{Project: "p", Queue: "q", ID: mid(2), ClaimID: cid(1)},
		&fsm.DeleteMessages{Project: "p", Queue: "q", IDs: []string{mid(1)}, RequireClaims: true},
		&fsm.RenewClaim{Project: "p", Queue: "q", ClaimID: cid(9), TTL: 300, Grace: 60},
		&fsm.RenewClaim{Project: "p", Queue: "q", ClaimID: cid(1), TTL: 300, Grace: 60},
		&fsm.PopMessages{Project: "p", Queue: "q", Limit: 5},
		&fsm.CreateClaim{Project: "p", Queue: "q", ClaimID: cid(2), TTL: 300, Grace: 60, Limit: 5},
		&fsm.ReleaseClaim{Project: "p", Queue: "q", ClaimID: cid(1)},
		&fsm.CollectGarbage{Limit: 10},
		&fsm.SetSecret{Secret: []byte("s1")},
		&fsm.SetSecret{Secret: []byte("s2")},
		&fsm.DeleteMessage{Project: "p", Queue: "q", ID: mid(1), ClaimID: cid(1)},
		&fsm.PurgeQueue{Project: "p", Queue: "q", Messages: true},
		&fsm.DeleteQueue{Project: "p", Queue: "q"},
	)))
	want := []fsm.Result{
		{},                             // queue exists
		{Status: fsm.StatusNotFound},   // metadata of a missing queue
		{Status: fsm.StatusConflict},   // stale version
		{Changed: true},                // current version
		{Status: fsm.StatusClaimed},    // claimed, no claim id
		{Status: fsm.StatusBadClaim},   // malformed claim id
		{Status: fsm.StatusNotClaimed}, // mid(2) is not claimed
		{Status: fsm.StatusClaimed},    // bulk delete without the claim
		{Status: fsm.StatusNotFound},   // renew an unknown claim
		{Changed: true},                // renew
		{Messages: nil},                // pop: checked below
		{Messages: nil},                // claim: nothing left
		{},                             // release
		{Count: 0},                     // nothing due
		{Changed: true},                // secret stored
		{},                             // secret kept
		{Status: fsm.StatusNotClaimed}, // mid(1) was released: its old claim id no longer holds it
		{},                             // purge
		{},                             // delete queue
	}
	if len(r.Results) != len(want) {
		t.Fatalf("%d results, want %d", len(r.Results), len(want))
	}
	popped := r.Results[10].Messages
	if got := msgIDs(popped); len(got) != 1 || got[0] != mid(2) || popped[0].Body == nil {
		t.Fatalf("pop returned %q, want %s with its body", got, mid(2))
	}
	r.Results[10].Messages = nil
	for i := range want {
		if !reflect.DeepEqual(r.Results[i], want[i]) {
			t.Errorf("result %d = %+v, want %+v", i, r.Results[i], want[i])
		}
	}
}

func TestApplyBatch_PanicsOnAnEntryItCannotDecode(t *testing.T) {
	n := newNode(t)
	n.fsm.Apply(cmdLog(1, t0, &fsm.CreateQueue{Project: "p", Queue: "q"}))
	for name, data := range map[string][]byte{
		"unknown command": rawEntry(t0, rawCommand{250, nil}),
		"garbage":         []byte("not an entry"),
	} {
		t.Run(name, func(t *testing.T) {
			func() {
				defer func() {
					r := recover()
					if r == nil || !strings.Contains(r.(string), "entry 2") {
						t.Fatalf("ApplyBatch recovered %v, want a panic naming entry 2", r)
					}
				}()
				n.fsm.ApplyBatch([]*raft.Log{{Index: 2, Term: 1, Type: raft.LogCommand, Data: data}})
			}()
			if n.fsm.AppliedIndex() != 1 {
				t.Fatalf("AppliedIndex moved to %d past an entry that was not applied", n.fsm.AppliedIndex())
			}
		})
	}
	// Nothing is left locked: the store still applies and closes.
	if r := entryResult(t, n.fsm.Apply(cmdLog(2, t0, &fsm.DeleteQueue{Project: "p", Queue: "q"}))); r.Index != 2 {
		t.Fatalf("apply after a refused entry = %+v", r)
	}
}

func TestApplyBatch_CallsOnApplyAndObserveWithNewEntriesOnly(t *testing.T) {
	n := newNode(t)
	var (
		seen     []uint64
		observed []int
	)
	n.fsm.OnApply = func(results []*fsm.EntryResult) {
		for _, r := range results {
			seen = append(seen, r.Index)
		}
	}
	n.fsm.Observe = func(entries int, d time.Duration) {
		if d < 0 {
			t.Errorf("negative duration %v", d)
		}
		observed = append(observed, entries)
	}
	n.fsm.ApplyBatch([]*raft.Log{cmdLog(1, t0, &fsm.CollectGarbage{Limit: 1}), cmdLog(2, t0, &fsm.CollectGarbage{Limit: 1})})
	n.fsm.ApplyBatch([]*raft.Log{
		cmdLog(2, t0, &fsm.CollectGarbage{Limit: 1}),
		{Index: 3, Term: 1, Type: raft.LogConfiguration},
		cmdLog(4, t0, &fsm.CollectGarbage{Limit: 1}),
	})
	n.fsm.ApplyBatch([]*raft.Log{cmdLog(4, t0, &fsm.CollectGarbage{Limit: 1})}) // all skipped
	if !reflect.DeepEqual(seen, []uint64{1, 2, 4}) {
		t.Fatalf("OnApply saw indexes %v, want [1 2 4]", seen)
	}
	if !reflect.DeepEqual(observed, []int{2, 3}) {
		t.Fatalf("Observe saw batches %v, want [2 3]", observed)
	}
}

func TestAdvanced_ClosesWhenTheAppliedIndexMoves(t *testing.T) {
	n := newNode(t)
	n.fsm.Apply(cmdLog(1, t0, &fsm.CollectGarbage{Limit: 1}))
	advanced := n.fsm.Advanced()
	select {
	case <-advanced:
		t.Fatal("Advanced is closed before the index moves")
	default:
	}
	n.fsm.Apply(cmdLog(2, t0, &fsm.CollectGarbage{Limit: 1}))
	select {
	case <-advanced:
	case <-time.After(30 * time.Second):
		t.Fatal("Advanced channel not closed when the index moved")
	}
	// A configuration entry moves the index too, without a command.
	again := n.fsm.Advanced()
	n.fsm.ApplyBatch([]*raft.Log{{Index: 3, Term: 1, Type: raft.LogConfiguration}})
	select {
	case <-again:
	case <-time.After(30 * time.Second):
		t.Fatal("Advanced channel not closed by a configuration entry")
	}
	if got := n.fsm.AppliedIndex(); got != 3 {
		t.Fatalf("applied index %d, want 3", got)
	}
}

func TestSnapshotRestore_CarriesStoreAndAppliedIndex(t *testing.T) {
	a := newNode(t)
	a.fsm.ApplyBatch([]*raft.Log{
		cmdLog(1, t0, &fsm.PostMessages{Project: "p", Queue: "q", ClientID: "c", DefaultTTL: 60, Messages: []store.NewMessage{newMsg(mid(1), 0)}}),
		cmdLog(2, t0, &fsm.CreateClaim{Project: "p", Queue: "q", ClaimID: cid(1), TTL: 300, Grace: 60, Limit: 1}),
		{Index: 3, Term: 2, Type: raft.LogConfiguration},
	})
	stream := a.snapshotBytes()

	b := newNode(t)
	b.fsm.Apply(cmdLog(1, t0, &fsm.CreateQueue{Project: "other", Queue: "x"}))
	advanced := b.fsm.Advanced()
	if err := b.fsm.Restore(io.NopCloser(strings.NewReader(string(stream)))); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if b.fsm.AppliedIndex() != 3 {
		t.Fatalf("AppliedIndex after restore = %d, want 3", b.fsm.AppliedIndex())
	}
	select {
	case <-advanced:
	default:
		t.Fatal("restore did not signal the applied index change")
	}
	if a.digest() != b.digest() {
		t.Fatal("restored store differs from the snapshot's")
	}
	// Entries the snapshot covers are skipped; later ones apply.
	if out := b.fsm.Apply(claimLog(2, t0, 2)); out != nil {
		t.Fatalf("entry covered by the snapshot returned %v", out)
	}
	for _, n := range []*node{a, b} {
		n.fsm.Apply(cmdLog(4, t0+sec, &fsm.PostMessages{Project: "p", Queue: "q", ClientID: "c", DefaultTTL: 60, Messages: []store.NewMessage{newMsg(mid(2), 0)}}))
	}
	if a.digest() != b.digest() {
		t.Fatal("nodes diverge after applying the same entry")
	}

	if err := b.fsm.Restore(io.NopCloser(strings.NewReader(string(stream[:len(stream)-1])))); err == nil {
		t.Fatal("Restore of a truncated snapshot succeeded")
	}
	if b.fsm.AppliedIndex() != 4 || a.digest() != b.digest() {
		t.Fatal("a failed restore changed the FSM or store")
	}
}

func TestSnapshotPersist_CancelsTheSinkOnWriteError(t *testing.T) {
	n := newNode(t)
	n.fsm.Apply(cmdLog(1, t0, &fsm.PostMessages{Project: "p", Queue: "q", ClientID: "c", DefaultTTL: 60, Messages: []store.NewMessage{newMsg(mid(1), 0)}}))
	snap, err := n.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	sink := &memSink{failAfter: 10}
	if err := snap.Persist(sink); err == nil {
		t.Fatal("Persist succeeded on a failing sink")
	}
	if !sink.canceled || sink.closed {
		t.Fatalf("sink canceled=%v closed=%v, want canceled only", sink.canceled, sink.closed)
	}
}

func TestApplyBatch_RecordsTheHighestGatedTypeTheLogHolds(t *testing.T) {
	n := newNode(t)
	level := func() byte {
		var lv byte
		n.view(func(v *store.View) (err error) { lv, err = v.CommandLevel(); return })
		return lv
	}
	before := n.digest()
	n.fsm.ApplyBatch([]*raft.Log{cmdLog(1, t0, &fsm.CreateQueue{Project: "p", Queue: "q"}, &fsm.AdvanceCursors{})})
	if got := level(); got != 0 {
		t.Fatalf("ungated types recorded level %d", got)
	}
	if n.digest() == before {
		t.Fatal("the queue was not created")
	}
	n.fsm.ApplyBatch([]*raft.Log{cmdLog(2, t0, &fsm.ForgetTrusts{}), cmdLog(3, t0, &fsm.HoldTrust{Project: "p", Queue: "q", ID: "s", TrustID: "t"})})
	if got := level(); got != byte(fsm.TypeHoldTrust) {
		t.Fatalf("level %d after ForgetTrusts and HoldTrust, want %d", got, fsm.TypeHoldTrust)
	}
	n.fsm.ApplyBatch([]*raft.Log{cmdLog(4, t0, &fsm.ForgetTrusts{})})
	n.restart()
	if got := level(); got != byte(fsm.TypeHoldTrust) {
		t.Fatalf("level %d after a restart", got)
	}
}
