package store_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/zaqar-raft/zaqar/store"
)

// populate fills s with a bit of everything: queues in two projects with
// metadata and settings, messages (delayed, claimed, expired), claims, a
// dead-letter move, a deleted queue's stale index entries, and the secret.
func populate(s *testStore) {
	s.t.Helper()
	s.apply(func(tx *store.Txn) {
		tx.CreateQueue(proj, "meta", t0, store.QueueSettings{DefaultTTL: 300, DefaultDelay: 5}, []byte(`{"_default_message_ttl":300}`))
		tx.CreateQueue(proj, "src", t0, store.QueueSettings{MaxClaimCount: 1, DeadLetter: "dlq", DeadLetterTTL: 900}, nil)
		tx.SetSecretIfAbsent([]byte("secret"))
	})
	for i := 0; i < 30; i++ {
		s.post(proj, "meta", "client", t0+int64(i)*sec, msg(mid(i), 60+int64(i)*10))
	}
	s.post("other\x00project", "q", "client", t0, msg(mid(100), 600), msg(mid(101), 600))
	s.post(proj, "src", "client", t0, msg(mid(200), 600), msg(mid(201), 600))
	s.claim(proj, "src", cid(1), 60, 60, 1, t0+sec)
	s.apply(func(tx *store.Txn) { tx.ReleaseClaim(proj, "src", cid(1), t0+sec) })
	s.claim(proj, "src", cid(2), 60, 60, 2, t0+2*sec) // moves mid(200), claims mid(201)
	s.claim(proj, "meta", cid(3), 120, 30, 5, t0+40*sec)
	s.post(proj, "gone", "client", t0, msg(mid(300), 60))
	s.apply(func(tx *store.Txn) { tx.DeleteQueue(proj, "gone") })
}

func TestSnapshot_RestoreIntoAFreshStoreGivesAnIdenticalStore(t *testing.T) {
	a := openTestStore(t)
	populate(a)
	stream := a.snapshot()

	applied, err := store.ReadSnapshotHeader(bytes.NewReader(stream))
	if err != nil || applied != a.index {
		t.Fatalf("ReadSnapshotHeader = %d, %v; want %d", applied, err, a.index)
	}

	b := openTestStore(t)
	if err := b.st.Restore(bytes.NewReader(stream)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if a.digest() != b.digest() {
		t.Fatal("restored store's digest differs from the source's")
	}
	if idx, term, err := b.st.Applied(); err != nil || idx != a.index || term != 1 {
		t.Fatalf("restored Applied = %d, %d, %v; want %d, 1", idx, term, err, a.index)
	}
	now := t0 + 50*sec
	if got, want := msgIDs(b.listAll(proj, "meta", now)), msgIDs(a.listAll(proj, "meta", now)); !slices.Equal(got, want) || len(got) == 0 {
		t.Fatalf("restored listing %q, source %q", got, want)
	}
	if st := b.stats(proj, "dlq", now); st.Total != 1 {
		t.Fatalf("restored dead-letter queue stats = %+v", st)
	}
	// The restored store keeps working and stays in step with the source.
	for _, s := range []*testStore{a, b} {
		s.index = a.index
		s.post(proj, "meta", "c", now, msg(mid(999), 60))
		s.gc(t0+1000*sec, 1000)
	}
	if a.digest() != b.digest() {
		t.Fatal("source and restored store diverge after applying the same mutations")
	}
}

func TestSnapshot_RestoreReplacesExistingContents(t *testing.T) {
	a := openTestStore(t)
	a.post(proj, "a", "c", t0, msg(mid(1), 600))
	b := openTestStore(t)
	populate(b)
	if err := b.st.Restore(bytes.NewReader(a.snapshot())); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if a.digest() != b.digest() {
		t.Fatal("restore kept contents of the store it replaced")
	}
	if idx, _, _ := b.st.Applied(); idx != a.index {
		t.Fatalf("Applied after restore = %d, want the snapshot's %d", idx, a.index)
	}
	// A snapshot of an empty store empties a store.
	empty := openTestStore(t)
	if err := b.st.Restore(bytes.NewReader(empty.snapshot())); err != nil {
		t.Fatalf("Restore of an empty snapshot: %v", err)
	}
	if b.digest() != empty.digest() || b.queueCount(proj) != 0 {
		t.Fatal("restoring an empty snapshot left data behind")
	}
	if idx, _, _ := b.st.Applied(); idx != 0 {
		t.Fatalf("Applied after restoring an empty snapshot = %d, want 0", idx)
	}
}

func TestSnapshot_IsAPointInTimeCopy(t *testing.T) {
	a := openTestStore(t)
	a.post(proj, "q", "c", t0, msg(mid(1), 600))
	want := a.digest()
	sn, err := a.st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if sn.AppliedIndex() != a.index {
		t.Fatalf("AppliedIndex = %d, want %d", sn.AppliedIndex(), a.index)
	}
	a.post(proj, "q", "c", t0, msg(mid(2), 600))
	var buf bytes.Buffer
	n, err := sn.WriteTo(&buf)
	sn.Close()
	sn.Close() // idempotent
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v; wrote %d bytes", n, err, buf.Len())
	}
	b := openTestStore(t)
	if err := b.st.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if b.digest() != want {
		t.Fatal("snapshot contains a write made after it was taken")
	}
}

func TestRestore_CorruptOrTruncatedStreamFailsAndLeavesTheStoreUntouched(t *testing.T) {
	src := openTestStore(t)
	populate(src)
	stream := src.snapshot()

	dst := openTestStore(t)
	dst.post(proj, "mine", "c", t0, msg(mid(1), 600))
	want := dst.digest()
	wantIdx, _, _ := dst.st.Applied()

	type variant struct {
		name   string
		stream []byte
	}
	var variants []variant
	mutate := func(name string, fn func(b []byte) []byte) {
		variants = append(variants, variant{name, fn(append([]byte(nil), stream...))})
	}
	for _, cut := range []int{0, 3, 8, 15, 16, 17, 40, len(stream) / 3, len(stream) / 2, len(stream) - 33, len(stream) - 32, len(stream) - 1} {
		mutate("truncated at "+strconv.Itoa(cut), func(b []byte) []byte { return b[:cut] })
	}
	for _, at := range []int{0, 7, 10, 16, 17, 30, len(stream) / 2, len(stream) - 40, len(stream) - 33, len(stream) - 1} {
		mutate("byte flipped at "+strconv.Itoa(at), func(b []byte) []byte { b[at] ^= 0x5a; return b })
	}
	mutate("extra record after the end marker", func(b []byte) []byte {
		end := len(b) - 32
		return append(append(append([]byte(nil), b[:end]...), 1, 'z', 0), b[end:]...)
	})
	mutate("empty", func([]byte) []byte { return nil })
	mutate("future format version", func(b []byte) []byte { b[6] = '2'; return b })

	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			err := dst.st.Restore(bytes.NewReader(v.stream))
			if !errors.Is(err, store.ErrBadSnapshot) {
				t.Fatalf("Restore = %v, want ErrBadSnapshot", err)
			}
			if dst.digest() != want {
				t.Fatal("a failed restore changed the store")
			}
			if idx, _, _ := dst.st.Applied(); idx != wantIdx {
				t.Fatalf("Applied after a failed restore = %d, want %d", idx, wantIdx)
			}
		})
	}
	// The store is still usable, and a good stream still restores.
	dst.post(proj, "mine", "c", t0, msg(mid(2), 600))
	if err := dst.st.Restore(bytes.NewReader(stream)); err != nil {
		t.Fatalf("Restore of the intact stream after failures: %v", err)
	}
	if dst.digest() != src.digest() {
		t.Fatal("intact stream did not restore the source")
	}
}

func TestRestore_HugeRecordLengthFailsWithoutAllocatingIt(t *testing.T) {
	var stream []byte
	stream = append(stream, "ZQSNAP1\n"...)
	stream = binary.BigEndian.AppendUint64(stream, 7)
	stream = binary.AppendUvarint(stream, 1<<30) // a 1 GiB key that is not there
	stream = append(stream, "abc"...)

	s := openTestStore(t)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := s.st.Restore(bytes.NewReader(stream))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, store.ErrBadSnapshot) {
		t.Fatalf("Restore = %v, want ErrBadSnapshot", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<20 {
		t.Fatalf("Restore of a stream claiming a 1 GiB key allocated %d MiB", grew>>20)
	}
}

func TestReadSnapshotHeader_RejectsForeignAndShortStreams(t *testing.T) {
	good := append([]byte("ZQSNAP1\n"), 0, 0, 0, 0, 0, 0, 1, 2)
	if idx, err := store.ReadSnapshotHeader(bytes.NewReader(good)); err != nil || idx != 258 {
		t.Fatalf("ReadSnapshotHeader = %d, %v; want 258", idx, err)
	}
	for name, b := range map[string][]byte{
		"empty":        nil,
		"short":        good[:12],
		"wrong magic":  append([]byte("ZQSNAP2\n"), good[8:]...),
		"another file": []byte("{\"not\":\"a snapshot\"}"),
	} {
		if _, err := store.ReadSnapshotHeader(bytes.NewReader(b)); !errors.Is(err, store.ErrBadSnapshot) {
			t.Errorf("%s: ReadSnapshotHeader = %v, want ErrBadSnapshot", name, err)
		}
	}
	// Only the header is read.
	r := bytes.NewReader(append(good, "rest"...))
	if _, err := store.ReadSnapshotHeader(r); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "rest" {
		t.Fatalf("ReadSnapshotHeader consumed past the header; left %q", rest)
	}
}

func TestDigest_DependsOnDataButNotOnTheAppliedIndex(t *testing.T) {
	a, b, c := openTestStore(t), openTestStore(t), openTestStore(t)
	empty := a.digest()
	if b.digest() != empty {
		t.Fatal("two empty stores differ")
	}
	for _, s := range []*testStore{a, b, c} {
		s.post(proj, "q", "c", t0, msg(mid(1), 60))
	}
	if a.digest() == empty {
		t.Fatal("digest did not change with the data")
	}
	b.apply(func(*store.Txn) {}) // moves only the applied index
	if a.digest() != b.digest() {
		t.Fatal("digest depends on the applied index")
	}
	c.post(proj, "q", "c", t0, msg(mid(2), 60))
	if a.digest() == c.digest() {
		t.Fatal("digest ignores a posted message")
	}
}

func TestStore_ReopenKeepsDataAndTheAppliedIndex(t *testing.T) {
	s := openTestStore(t)
	populate(s)
	want := s.digest()
	if err := s.st.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(s.dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.st = st
	if s.digest() != want {
		t.Fatal("reopened store differs")
	}
	if idx, term, err := st.Applied(); err != nil || idx != s.index || term != 1 {
		t.Fatalf("Applied after reopen = %d, %d, %v; want %d, 1", idx, term, err, s.index)
	}
	if st.Metrics() == nil {
		t.Fatal("Metrics returned nil")
	}
}

func TestTxn_AbortWritesNothing(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 60))
	want := s.digest()
	wantIdx, _, _ := s.st.Applied()
	tx := s.st.Begin(100)
	tx.PostMessages(proj, "q", "c", t0, 60, []store.NewMessage{msg(mid(2), 60)})
	tx.DeleteQueue(proj, "q")
	tx.Abort()
	if s.digest() != want {
		t.Fatal("an aborted transaction changed the store")
	}
	if idx, _, _ := s.st.Applied(); idx != wantIdx {
		t.Fatalf("Applied after abort = %d, want %d", idx, wantIdx)
	}
}
