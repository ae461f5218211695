package fsm_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/store"
)

// workload generates a recorded Raft log from a seeded random source: a
// mix of every command, aimed at a small set of queues so that commands
// interact (claims on posted messages, deletes with real and stale claim
// ids, dead-letter moves, GC of expired messages and of deleted queues'
// leftovers), with time advancing unevenly.
type workload struct {
	r      *rand.Rand
	now    int64
	index  uint64
	nextID int

	queues   []queueRef
	messages map[queueRef][]string // ids posted, deleted ones included
	claims   map[queueRef][]string // claim ids proposed
	versions map[queueRef][]uint64 // indexes that may be a queue's MetaVersion
	pending  []fsm.Command         // commands to add to the current entry
	postedTo map[string]queueRef   // where each message id was first posted
	subs     map[queueRef][]string // subscription ids proposed
	trusts   []string              // trust ids proposed
}

type queueRef struct{ project, queue string }

func newWorkload(seed int64) *workload {
	w := &workload{
		r: rand.New(rand.NewSource(seed)), now: t0,
		messages: map[queueRef][]string{}, claims: map[queueRef][]string{}, versions: map[queueRef][]uint64{},
		postedTo: map[string]queueRef{}, subs: map[queueRef][]string{},
	}
	for _, p := range []string{"p1", "p2\x00/x"} {
		for _, q := range []string{"q0", "q1", "q2", "q3", "dlq0", "dlq1"} {
			w.queues = append(w.queues, queueRef{p, q})
		}
	}
	return w
}

func (w *workload) id() string {
	w.nextID++
	return fmt.Sprintf("%016x%016x", w.r.Uint64(), uint64(w.nextID))
}

func (w *workload) pick(ss []string) string {
	if len(ss) == 0 || w.r.Intn(10) == 0 {
		return w.id() // unknown
	}
	// Prefer recent ones: they are more likely to still exist.
	from := len(ss) - 1 - w.r.Intn(min(len(ss), 8))
	return ss[from]
}

func (w *workload) settings(q queueRef) store.QueueSettings {
	var s store.QueueSettings
	if w.r.Intn(3) == 0 {
		s.DefaultTTL = 60 + w.r.Int63n(600)
	}
	if w.r.Intn(4) == 0 {
		s.DefaultDelay = 1 + w.r.Int63n(30)
	}
	if q.queue != "dlq0" && q.queue != "dlq1" && w.r.Intn(4) != 0 {
		s.MaxClaimCount = 1 + w.r.Int63n(3)
		s.DeadLetter = fmt.Sprintf("dlq%d", w.r.Intn(2))
		if w.r.Intn(2) == 0 {
			s.DeadLetterTTL = 60 + w.r.Int63n(900)
		}
	}
	return s
}

func (w *workload) create(q queueRef) fsm.Command {
	w.versions[q] = append(w.versions[q], w.index)
	return &fsm.CreateQueue{Project: q.project, Queue: q.queue, Settings: w.settings(q), Metadata: []byte(fmt.Sprintf(`{"i":%d}`, w.index))}
}

func (w *workload) body() []byte {
	switch w.r.Intn(4) {
	case 0:
		return []byte("null")
	case 1:
		return []byte(fmt.Sprintf(`"%x"`, w.r.Uint32()))
	default:
		return []byte(fmt.Sprintf(`{"n":%d,"pad":"%s"}`, w.r.Int63(), bytes.Repeat([]byte{'x'}, w.r.Intn(200))))
	}
}

func (w *workload) command() fsm.Command {
	// Half the traffic goes to three hot queues, so that messages are
	// claimed, released and claimed again until they are dead-lettered.
	q := w.queues[w.r.Intn(len(w.queues))]
	if w.r.Intn(2) == 0 {
		q = w.queues[w.r.Intn(3)]
	}
	p, name := q.project, q.queue
	if w.r.Intn(8) == 0 {
		return w.subscriptionCommand(q)
	}
	switch k := w.r.Intn(100); {
	case k < 5:
		return w.create(q)
	case k < 9:
		// The version is right only if the last command that may have
		// written the queue's metadata did; a wrong guess is a conflict.
		v := w.index - uint64(w.r.Intn(3))
		if vs := w.versions[q]; len(vs) > 0 && w.r.Intn(4) != 0 {
			v = vs[len(vs)-1-w.r.Intn(min(len(vs), 2))]
		}
		w.versions[q] = append(w.versions[q], w.index)
		return &fsm.SetQueueMetadata{Project: p, Queue: name, ExpectVersion: v, Settings: w.settings(q), Metadata: []byte(`{"patched":true}`)}
	case k < 11:
		return &fsm.DeleteQueue{Project: p, Queue: name}
	case k < 12:
		// Delete and re-create in one entry, with fresh settings.
		w.pending = append(w.pending, w.create(q))
		return &fsm.DeleteQueue{Project: p, Queue: name}
	case k < 13:
		return &fsm.PurgeQueue{Project: p, Queue: name, Messages: w.r.Intn(4) != 0, Subscriptions: w.r.Intn(2) == 0}
	case k < 42:
		w.versions[q] = append(w.versions[q], w.index) // may create the queue
		c := &fsm.PostMessages{Project: p, Queue: name, ClientID: fmt.Sprintf("client-%d", w.r.Intn(3)), DefaultTTL: 300}
		for i := 1 + w.r.Intn(5); i > 0; i-- {
			m := store.NewMessage{ID: w.id(), Delay: -1, Body: w.body()}
			if w.r.Intn(3) != 0 {
				m.TTL = 60 + w.r.Int63n(600)
			}
			if w.r.Intn(3) == 0 {
				m.Delay = w.r.Int63n(60)
			}
			if w.r.Intn(2) == 0 {
				m.Checksum = fmt.Sprintf("MD5:%x", w.r.Uint64())
			}
			if w.r.Intn(20) == 0 {
				m.ID = w.pick(w.messages[q]) // a repeated id is skipped
			}
			w.messages[q] = append(w.messages[q], m.ID)
			if _, seen := w.postedTo[m.ID]; !seen {
				w.postedTo[m.ID] = q
			}
			c.Messages = append(c.Messages, m)
		}
		return c
	case k < 52:
		c := &fsm.DeleteMessage{Project: p, Queue: name, ID: w.pick(w.messages[q])}
		switch w.r.Intn(4) {
		case 1:
			c.ClaimID = w.pick(w.claims[q])
		case 2:
			c.ClaimID = "bogus"
		}
		return c
	case k < 56:
		c := &fsm.DeleteMessages{Project: p, Queue: name, RequireClaims: w.r.Intn(2) == 0}
		for i := 1 + w.r.Intn(5); i > 0; i-- {
			c.IDs = append(c.IDs, w.pick(w.messages[q]))
		}
		for i := w.r.Intn(3); i > 0; i-- {
			c.ClaimIDs = append(c.ClaimIDs, w.pick(w.claims[q]))
		}
		return c
	case k < 61:
		return &fsm.PopMessages{Project: p, Queue: name, Limit: 1 + w.r.Intn(5)}
	case k < 78:
		c := &fsm.CreateClaim{Project: p, Queue: name, ClaimID: w.id(), TTL: 60 + w.r.Int63n(240), Grace: w.r.Int63n(120), Limit: 1 + w.r.Intn(10)}
		w.claims[q] = append(w.claims[q], c.ClaimID)
		return c
	case k < 84:
		return &fsm.RenewClaim{Project: p, Queue: name, ClaimID: w.pick(w.claims[q]), TTL: 60 + w.r.Int63n(240), Grace: w.r.Int63n(120)}
	case k < 90:
		return &fsm.ReleaseClaim{Project: p, Queue: name, ClaimID: w.pick(w.claims[q])}
	case k < 99:
		return &fsm.CollectGarbage{Limit: 1 + w.r.Intn(40)}
	default:
		if w.r.Intn(2) == 0 {
			// Before it replicas scan, after it they keep the depth index.
			return &fsm.BuildDepthIndex{Format: store.DepthIndexFormat}
		}
		if w.r.Intn(2) == 0 {
			return &fsm.SetSecret{Secret: []byte(w.id())}
		}
		return w.catalogCommand()
	}
}

// catalogCommand changes a small catalog whose pools share addresses and
// flavors, so that refusals (taken names and addresses, pools in flavors,
// missing pools) happen as often as changes.
func (w *workload) catalogCommand() fsm.Command {
	pool := func() string { return fmt.Sprintf("pool%d", w.r.Intn(4)) }
	addrs := func() []string {
		out := []string{fmt.Sprintf("n%d:7001", w.r.Intn(6))}
		if w.r.Intn(2) == 0 {
			out = append(out, fmt.Sprintf("n%d:7001", w.r.Intn(6)))
		}
		return out
	}
	flavor := fmt.Sprintf("f%d", w.r.Intn(2))
	project := fmt.Sprintf("p%d", w.r.Intn(2))
	switch w.r.Intn(6) {
	case 0, 1:
		a := addrs()
		return &fsm.CreatePool{Name: pool(), URI: "zaqar+raft://" + a[0], Addresses: a, Weight: uint64(w.r.Intn(3)), Options: []byte(`{}`)}
	case 2:
		c := &fsm.UpdatePool{Name: pool()}
		if w.r.Intn(2) == 0 {
			a := addrs()
			uri := "zaqar+raft://" + a[0]
			c.URI, c.Addresses = &uri, a
		}
		if w.r.Intn(2) == 0 {
			weight := uint64(w.r.Intn(3))
			c.Weight = &weight
		}
		if w.r.Intn(3) == 0 {
			c.Flavor = &flavor
		}
		return c
	case 3:
		if w.r.Intn(2) == 0 {
			return &fsm.PlaceQueue{Project: project, Queue: fmt.Sprintf("q%d", w.r.Intn(4)), Pool: pool(), CatalogPool: "pool0"}
		}
		return &fsm.DeletePool{Name: pool()}
	case 4:
		c := &fsm.PutFlavor{Project: project, Name: flavor, SetPools: w.r.Intn(4) != 0, MustExist: w.r.Intn(3) == 0}
		for i := w.r.Intn(3); i > 0; i-- {
			c.Pools = append(c.Pools, pool())
		}
		return c
	default:
		return &fsm.DeleteFlavor{Project: project, Name: flavor}
	}
}

// subscriptionCommand makes subscriptions, their changes and delivery
// progress interact with posts, purges and queue deletes.
func (w *workload) subscriptionCommand(q queueRef) fsm.Command {
	p, name := q.project, q.queue
	subscriber := fmt.Sprintf("http://h%d/hook", w.r.Intn(4)) // few subscribers: duplicates happen
	if w.r.Intn(2) == 0 {
		subscriber = "trust+" + subscriber
	}
	switch k := w.r.Intn(12); {
	case k < 3:
		c := &fsm.Subscribe{Project: p, Queue: name, ID: w.id(), Subscriber: subscriber, TTL: 60 + w.r.Int63n(600), Options: []byte(`{}`), Confirmed: w.r.Intn(3) == 0}
		w.subs[q] = append(w.subs[q], c.ID)
		if w.r.Intn(5) == 0 { // Heat's TTL: an expiry past 2262, saturated
			c.TTL = 220367260800
			return &fsm.SubscribeLong{Subscribe: *c}
		}
		return c
	case k < 5:
		c := &fsm.UpdateSubscription{Project: p, Queue: name, ID: w.pick(w.subs[q])}
		if w.r.Intn(2) == 0 {
			c.Subscriber = &subscriber
		}
		if w.r.Intn(2) == 0 {
			ttl := 60 + w.r.Int63n(600)
			c.TTL = &ttl
		}
		if w.r.Intn(2) == 0 {
			c.Options = []byte(`{"post_headers":{"X":"1"}}`)
		}
		if w.r.Intn(8) == 0 {
			ttl := int64(220367260800)
			c.TTL = &ttl
			return &fsm.UpdateSubscriptionLong{UpdateSubscription: *c}
		}
		return c
	case k < 6:
		return &fsm.DeleteSubscription{Project: p, Queue: name, ID: w.pick(w.subs[q])}
	case k < 7:
		return &fsm.ConfirmSubscription{Project: p, Queue: name, ID: w.pick(w.subs[q]), Confirmed: w.r.Intn(2) == 0}
	case k < 9:
		c := &fsm.HoldTrust{Project: p, Queue: name, ID: w.pick(w.subs[q]), Subscriber: subscriber, TrustID: w.id()}
		w.trusts = append(w.trusts, c.TrustID)
		return c
	case k < 10:
		c := &fsm.ForgetTrusts{}
		for i := w.r.Intn(3); i > 0; i-- {
			c.TrustIDs = append(c.TrustIDs, w.pick(w.trusts))
		}
		return c
	default:
		c := &fsm.AdvanceCursors{}
		for i := 1 + w.r.Intn(3); i > 0; i-- {
			c.Advances = append(c.Advances, store.CursorAdvance{Project: p, Queue: name, ID: w.pick(w.subs[q]), Seq: uint64(w.r.Intn(len(w.messages[q]) + 2))})
		}
		return c
	}
}

// log returns n log entries: mostly commands (one to three per entry),
// with an occasional configuration entry, each stamped with a time that
// advances by up to 5 s, sometimes not at all, sometimes by minutes.
func (w *workload) log(n int) []*raft.Log {
	logs := make([]*raft.Log, 0, n)
	for len(logs) < n {
		w.index++
		switch k := w.r.Intn(100); {
		case k < 2:
			w.now += w.r.Int63n(900) * sec // everything expires
		case k < 20: // same instant as the previous entry
		default:
			w.now += w.r.Int63n(5 * sec)
		}
		if w.r.Intn(100) == 0 {
			logs = append(logs, &raft.Log{Index: w.index, Term: 1, Type: raft.LogConfiguration, Data: []byte("config")})
			continue
		}
		var cmds []fsm.Command
		if w.index == 1 {
			// Start with every queue created with settings, dead-letter
			// queues included, so that settings matter from the start.
			for _, q := range w.queues {
				cmds = append(cmds, w.create(q))
			}
		}
		cmds = append(cmds, w.command())
		for w.r.Intn(4) == 0 && len(cmds) < 3 {
			cmds = append(cmds, w.command())
		}
		cmds = append(cmds, w.pending...)
		w.pending = w.pending[:0]
		data := fsm.EncodeEntry(0, cmds...)
		if err := fsm.StampEntry(data, w.now); err != nil {
			panic(err)
		}
		logs = append(logs, &raft.Log{Index: w.index, Term: 1, Type: raft.LogCommand, Data: data})
	}
	return logs
}

// applyInBatches applies logs in batches whose sizes come from sizes, and
// returns every entry's result by index. after, if set, runs after each
// batch.
func applyInBatches(n *node, logs []*raft.Log, sizes func() int, after func()) map[uint64]interface{} {
	results := map[uint64]interface{}{}
	for len(logs) > 0 {
		k := min(sizes(), len(logs))
		out := n.fsm.ApplyBatch(logs[:k])
		for i, o := range out {
			if o != nil {
				results[logs[i].Index] = o
			}
		}
		logs = logs[k:]
		if after != nil {
			after()
		}
	}
	return results
}

func TestDeterminism_ReplicasApplyingTheSameLogAreIdentical(t *testing.T) {
	const entries = 2500
	w := newWorkload(20240601)
	logs := w.log(entries)

	a := newNode(t)
	emptyDigest := a.digest()
	// Dead-lettered messages expire long before the end of the log, so
	// look for them along the way.
	var deadLettered, batches int
	resultsA := applyInBatches(a, logs, func() int { return 1 }, func() {
		if batches++; batches%25 == 0 {
			deadLettered += countDeadLettered(a, w)
		}
	})

	batchRand := rand.New(rand.NewSource(7))
	b := newNode(t)
	resultsB := applyInBatches(b, logs, func() int { return 1 + batchRand.Intn(64) }, nil)

	digestA := a.digest()
	if digestA == emptyDigest {
		t.Fatal("the workload left the store empty")
	}
	if b.digest() != digestA {
		t.Fatal("stores that applied the same log in different batches differ")
	}
	if a.fsm.AppliedIndex() != logs[len(logs)-1].Index || b.fsm.AppliedIndex() != a.fsm.AppliedIndex() {
		t.Fatalf("applied indexes %d and %d, want %d", a.fsm.AppliedIndex(), b.fsm.AppliedIndex(), logs[len(logs)-1].Index)
	}
	if !reflect.DeepEqual(resultsA, resultsB) {
		for idx, ra := range resultsA {
			if !reflect.DeepEqual(ra, resultsB[idx]) {
				t.Fatalf("results of entry %d differ between batch splits:\n%+v\n%+v", idx, ra, resultsB[idx])
			}
		}
		t.Fatal("results differ between batch splits")
	}
	checkWorkloadCoverage(t, resultsA, deadLettered)

	t.Run("snapshot restored into a fresh store", func(t *testing.T) {
		c := newNode(t)
		if err := c.fsm.Restore(io.NopCloser(bytes.NewReader(a.snapshotBytes()))); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		if c.digest() != digestA {
			t.Fatal("restored store differs from the snapshot's source")
		}
		if c.fsm.AppliedIndex() != a.fsm.AppliedIndex() {
			t.Fatalf("restored AppliedIndex = %d, want %d", c.fsm.AppliedIndex(), a.fsm.AppliedIndex())
		}
	})

	t.Run("applying the log again changes nothing", func(t *testing.T) {
		before := a.fsm.EntriesApplied()
		again := applyInBatches(a, logs, func() int { return 100 }, nil)
		if len(again) != 0 {
			t.Fatalf("%d entries returned results when applied a second time", len(again))
		}
		if a.digest() != digestA || a.fsm.EntriesApplied() != before {
			t.Fatal("applying the same log twice changed the store")
		}
	})

	t.Run("restarts in the middle replay only what is missing", func(t *testing.T) {
		d := newNode(t)
		cut := rand.New(rand.NewSource(11))
		for from := 0; from < len(logs); {
			to := min(from+1+cut.Intn(700), len(logs))
			// Raft replays from the start of its log after a restart.
			applyInBatches(d, logs[:to], func() int { return 1 + cut.Intn(32) }, nil)
			d.restart()
			from = to
		}
		if d.digest() != digestA {
			t.Fatal("a node restarted several times differs from one that was not")
		}
	})
}

// checkWorkloadCoverage fails unless the workload produced the outcomes the
// test means to compare: every status, claims, pops, dead-letter moves and
// GC work. Without them equal digests would prove little.
func checkWorkloadCoverage(t *testing.T, results map[uint64]interface{}, deadLettered int) {
	t.Helper()
	statuses := map[fsm.Status]int{}
	var claimed, gcEntries, changed, commands int
	for _, o := range results {
		for _, r := range o.(*fsm.EntryResult).Results {
			commands++
			statuses[r.Status]++
			claimed += len(r.Messages)
			gcEntries += r.Count
			if r.Changed {
				changed++
			}
		}
	}
	for _, s := range []fsm.Status{fsm.StatusOK, fsm.StatusNotFound, fsm.StatusConflict, fsm.StatusClaimed, fsm.StatusNotClaimed, fsm.StatusBadClaim} {
		if statuses[s] < 5 {
			t.Errorf("the workload produced status %v only %d times", s, statuses[s])
		}
	}
	if claimed < 500 || gcEntries < 500 || changed < 50 || deadLettered < 20 {
		t.Errorf("workload too tame: %d messages claimed or popped, %d GC entries, %d changes, %d dead-lettered messages seen",
			claimed, gcEntries, changed, deadLettered)
	}
	t.Logf("%d commands; statuses %v; %d messages claimed or popped; %d GC entries; %d changes; %d dead-lettered messages seen",
		commands, statuses, claimed, gcEntries, changed, deadLettered)
}

// countDeadLettered counts the messages stored in dead-letter queues under
// an id the workload posted to another queue: they got there by a move.
func countDeadLettered(n *node, w *workload) int {
	count := 0
	n.view(func(v *store.View) error {
		for _, dlq := range w.queues {
			if !strings.HasPrefix(dlq.queue, "dlq") {
				continue
			}
			// At time 0 nothing has expired: every stored message is listed.
			msgs, err := v.ListMessages(dlq.project, dlq.queue, 0, store.ListOptions{Limit: 1 << 20, Echo: true, IncludeClaimed: true, IncludeDelayed: true})
			if err != nil {
				return err
			}
			for _, m := range msgs {
				if w.postedTo[m.ID] != dlq && w.postedTo[m.ID].project == dlq.project && m.ClaimCount > 0 {
					count++
				}
			}
		}
		return nil
	})
	return count
}
