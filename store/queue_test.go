package store_test

import (
	"errors"
	"slices"
	"sort"
	"testing"

	"github.com/zaqar-raft/zaqar/store"
)

func TestCreateQueue_StoresRecordWithCreationIndexAsMetaVersion(t *testing.T) {
	s := openTestStore(t)
	settings := store.QueueSettings{DefaultTTL: 120, DefaultDelay: 5, MaxPostSize: 1000, MaxClaimCount: 3, DeadLetter: "dlq", DeadLetterTTL: 90}
	var created bool
	idx := s.apply(func(tx *store.Txn) { created = tx.CreateQueue(proj, "q", t0, settings, []byte(`{"a":1}`)) })
	if !created {
		t.Fatal("CreateQueue of a new queue reported false")
	}
	q := s.queue(proj, "q")
	if q == nil {
		t.Fatal("queue not found after CreateQueue")
	}
	if q.Name != "q" || q.CreatedAt != t0 || q.MetaVersion != idx || q.Settings != settings || string(q.Metadata) != `{"a":1}` {
		t.Fatalf("queue record = %+v, want name q, created %d, version %d, settings %+v, metadata {\"a\":1}", q, t0, idx, settings)
	}
}

func TestCreateQueue_EmptyMetadataIsStoredAsEmptyObject(t *testing.T) {
	s := openTestStore(t)
	s.createQueue(proj, "q", t0, store.QueueSettings{})
	if got := string(s.queue(proj, "q").Metadata); got != "{}" {
		t.Fatalf("metadata = %q, want {}", got)
	}
}

func TestCreateQueue_ExistingQueueIsReportedAndKeepsItsMetadata(t *testing.T) {
	s := openTestStore(t)
	s.apply(func(tx *store.Txn) {
		tx.CreateQueue(proj, "q", t0, store.QueueSettings{DefaultTTL: 60}, []byte(`{"v":1}`))
	})
	before := s.digest()
	var created bool
	s.apply(func(tx *store.Txn) {
		created = tx.CreateQueue(proj, "q", t0+sec, store.QueueSettings{DefaultTTL: 99}, []byte(`{"v":2}`))
	})
	if created {
		t.Fatal("CreateQueue of an existing queue reported true")
	}
	if s.digest() != before {
		t.Fatal("CreateQueue of an existing queue changed the store")
	}
	if q := s.queue(proj, "q"); string(q.Metadata) != `{"v":1}` || q.Settings.DefaultTTL != 60 || q.CreatedAt != t0 {
		t.Fatalf("queue after second create = %+v, want the first create's record", q)
	}
}

func TestQueue_MissingQueueIsNil(t *testing.T) {
	s := openTestStore(t)
	if q := s.queue(proj, "nope"); q != nil {
		t.Fatalf("Queue of a missing queue = %+v, want nil", q)
	}
}

func TestSetQueueMetadata_IsACompareAndSetOnMetaVersion(t *testing.T) {
	s := openTestStore(t)
	createdAt := s.apply(func(tx *store.Txn) { tx.CreateQueue(proj, "q", t0, store.QueueSettings{}, []byte(`{"v":0}`)) })

	tests := []struct {
		name    string
		queue   string
		expect  uint64
		wantErr error
	}{
		{"missing queue", "other", createdAt, store.ErrNotFound},
		{"older version", "q", createdAt - 1, store.ErrConflict},
		{"newer version", "q", createdAt + 100, store.ErrConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.digest()
			var err error
			s.apply(func(tx *store.Txn) {
				err = tx.SetQueueMetadata(proj, tc.queue, tc.expect, store.QueueSettings{DefaultTTL: 77}, []byte(`{"v":1}`))
			})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SetQueueMetadata = %v, want %v", err, tc.wantErr)
			}
			if s.digest() != before {
				t.Fatal("a failed SetQueueMetadata changed the store")
			}
		})
	}

	t.Run("current version replaces metadata and moves the version", func(t *testing.T) {
		var err error
		setAt := s.apply(func(tx *store.Txn) {
			err = tx.SetQueueMetadata(proj, "q", createdAt, store.QueueSettings{DefaultTTL: 77}, []byte(`{"v":1}`))
		})
		if err != nil {
			t.Fatalf("SetQueueMetadata at the current version: %v", err)
		}
		q := s.queue(proj, "q")
		if q.MetaVersion != setAt || string(q.Metadata) != `{"v":1}` || q.Settings.DefaultTTL != 77 || q.CreatedAt != t0 {
			t.Fatalf("queue = %+v, want version %d, metadata {\"v\":1}, default TTL 77, created %d", q, setAt, t0)
		}
		// The version it was read at is now stale.
		s.apply(func(tx *store.Txn) {
			err = tx.SetQueueMetadata(proj, "q", createdAt, store.QueueSettings{}, []byte(`{}`))
		})
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second update at the old version = %v, want ErrConflict", err)
		}
	})
}

func TestSetQueueMetadata_UpdatesInOneBatchSeeEachOther(t *testing.T) {
	s := openTestStore(t)
	createdAt := s.apply(func(tx *store.Txn) { tx.CreateQueue(proj, "q", t0, store.QueueSettings{}, nil) })
	first, second := createdAt+1, createdAt+2
	tx := s.st.Begin(first)
	errFirst := tx.SetQueueMetadata(proj, "q", createdAt, store.QueueSettings{}, []byte(`{"a":1}`))
	tx.SetIndex(second)
	errStale := tx.SetQueueMetadata(proj, "q", createdAt, store.QueueSettings{}, []byte(`{"b":1}`))
	errSecond := tx.SetQueueMetadata(proj, "q", first, store.QueueSettings{}, []byte(`{"c":1}`))
	if err := tx.Commit(second, 1); err != nil {
		t.Fatal(err)
	}
	s.index = second
	if errFirst != nil || !errors.Is(errStale, store.ErrConflict) || errSecond != nil {
		t.Fatalf("updates = %v, %v, %v; want nil, ErrConflict, nil", errFirst, errStale, errSecond)
	}
	if q := s.queue(proj, "q"); string(q.Metadata) != `{"c":1}` || q.MetaVersion != second {
		t.Fatalf("queue = %+v, want metadata {\"c\":1} at version %d", q, second)
	}
}

func TestQueueCount_FollowsCreatesDeletesAndLazyCreation(t *testing.T) {
	s := openTestStore(t)
	check := func(step string, want uint64) {
		t.Helper()
		if got := s.queueCount(proj); got != want {
			t.Fatalf("%s: QueueCount = %d, want %d", step, got, want)
		}
	}
	check("empty", 0)
	s.createQueue(proj, "a", t0, store.QueueSettings{})
	s.createQueue(proj, "b", t0, store.QueueSettings{})
	check("two created", 2)
	s.apply(func(tx *store.Txn) { tx.CreateQueue(proj, "a", t0, store.QueueSettings{}, nil) })
	check("existing re-created", 2)
	s.post(proj, "lazy", "c", t0, msg(mid(1), 60))
	check("created by a post", 3)
	s.apply(func(tx *store.Txn) { tx.DeleteQueue(proj, "a") })
	check("one deleted", 2)
	s.apply(func(tx *store.Txn) { tx.DeleteQueue(proj, "a") })
	check("deleted twice", 2)
	s.apply(func(tx *store.Txn) { tx.PurgeQueue(proj, "b", true, true) })
	check("purged", 2)
	if got := s.queueCount("other"); got != 0 {
		t.Fatalf("QueueCount of another project = %d, want 0", got)
	}
	s.apply(func(tx *store.Txn) {
		tx.DeleteQueue(proj, "b")
		tx.DeleteQueue(proj, "lazy")
	})
	check("all deleted", 0)
}

func TestListQueues_OrdersByNameAcrossNamesThatPrefixEachOther(t *testing.T) {
	s := openTestStore(t)
	names := []string{"b", "a", "ab", "a-b", "aa", "aab", "a_", "A", "a\x00", "a\x00b", "a\x01", "z", "0", "\xff"}
	for _, n := range names {
		s.createQueue(proj, n, t0, store.QueueSettings{})
	}
	want := append([]string(nil), names...)
	sort.Strings(want)

	if got := s.queueNames(proj, "", 100, nil); !slices.Equal(got, want) {
		t.Fatalf("ListQueues = %q, want %q", got, want)
	}

	// Paging with the last name as marker visits every queue once, in order.
	for _, limit := range []int{1, 2, 3, 5} {
		var paged []string
		marker := ""
		for pages := 0; ; pages++ {
			if pages > len(names)+1 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			page := s.queueNames(proj, marker, limit, nil)
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			marker = page[len(page)-1]
		}
		if !slices.Equal(paged, want) {
			t.Fatalf("limit %d: paged listing = %q, want %q", limit, paged, want)
		}
	}
}

func TestListQueues_MarkerNeedNotExist(t *testing.T) {
	s := openTestStore(t)
	for _, n := range []string{"a", "aa", "ab", "b"} {
		s.createQueue(proj, n, t0, store.QueueSettings{})
	}
	tests := []struct {
		marker string
		want   []string
	}{
		{"", []string{"a", "aa", "ab", "b"}},
		{"a", []string{"aa", "ab", "b"}},
		{"a\x00", []string{"aa", "ab", "b"}},
		{"aa", []string{"ab", "b"}},
		{"aaa", []string{"ab", "b"}},
		{"ab", []string{"b"}},
		{"b", []string{}},
		{"c", []string{}},
		{"A", []string{"a", "aa", "ab", "b"}},
	}
	for _, tc := range tests {
		if got := s.queueNames(proj, tc.marker, 10, nil); !slices.Equal(got, tc.want) {
			t.Errorf("marker %q: ListQueues = %q, want %q", tc.marker, got, tc.want)
		}
	}
}

func TestListQueues_KeepFilterSkipsWithoutUsingUpTheLimit(t *testing.T) {
	s := openTestStore(t)
	for i, n := range []string{"a", "b", "c", "d", "e", "f"} {
		s.createQueue(proj, n, t0, store.QueueSettings{DefaultTTL: int64(60 + i%2)})
	}
	odd := func(q *store.Queue) bool { return q.Settings.DefaultTTL == 61 }
	if got, want := s.queueNames(proj, "", 2, odd), []string{"b", "d"}; !slices.Equal(got, want) {
		t.Fatalf("filtered page 1 = %q, want %q", got, want)
	}
	if got, want := s.queueNames(proj, "d", 2, odd), []string{"f"}; !slices.Equal(got, want) {
		t.Fatalf("filtered page 2 = %q, want %q", got, want)
	}
	if got := s.queueNames(proj, "", 0, nil); len(got) != 0 {
		t.Fatalf("limit 0 returned %q", got)
	}
}

func TestListQueues_KeepsProjectsWithOddBytesApart(t *testing.T) {
	s := openTestStore(t)
	projects := []string{"", "p", "p\x00", "p\x00x", "p\x00\x01", "p\x01", "p/x", "p x", "p\xff", "pp", "p/"}
	for i, p := range projects {
		for j := 0; j <= i%3; j++ {
			s.createQueue(p, string(rune('a'+j)), t0, store.QueueSettings{})
		}
		s.post(p, "m", "c", t0, msg(mid(i), 60))
	}
	for i, p := range projects {
		want := []string{}
		for j := 0; j <= i%3; j++ {
			want = append(want, string(rune('a'+j)))
		}
		want = append(want, "m")
		if got := s.queueNames(p, "", 100, nil); !slices.Equal(got, want) {
			t.Errorf("project %q: ListQueues = %q, want %q", p, got, want)
		}
		if got := s.queueCount(p); got != uint64(len(want)) {
			t.Errorf("project %q: QueueCount = %d, want %d", p, got, len(want))
		}
		if got := msgIDs(s.listAll(p, "m", t0)); !slices.Equal(got, []string{mid(i)}) {
			t.Errorf("project %q: messages = %q, want only its own", p, got)
		}
	}
	// Deleting a queue in one project leaves same-named queues elsewhere.
	s.apply(func(tx *store.Txn) { tx.DeleteQueue("p", "m") })
	for _, p := range projects[2:] {
		if s.queue(p, "m") == nil || len(s.listAll(p, "m", t0)) != 1 {
			t.Errorf("project %q lost its queue m when project \"p\" deleted its own", p)
		}
	}
}

func TestDeleteQueue_RemovesEverythingAndARecreatedQueueStartsClean(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 600), msg(mid(2), 600), msg(mid(3), 600))
	s.claim(proj, "q", cid(1), 300, 60, 2, t0)
	s.post(proj, "keep", "c", t0, msg(mid(9), 600))

	s.apply(func(tx *store.Txn) { tx.DeleteQueue(proj, "q") })
	now := t0 + sec
	if q := s.queue(proj, "q"); q != nil {
		t.Fatalf("queue still exists: %+v", q)
	}
	if got := s.listAll(proj, "q", now); len(got) != 0 {
		t.Fatalf("messages of a deleted queue: %q", msgIDs(got))
	}
	if m := s.message(proj, "q", mid(3), now); m != nil {
		t.Fatal("Message finds a message of a deleted queue")
	}
	if c, _ := s.getClaim(proj, "q", cid(1), now); c != nil {
		t.Fatal("Claim finds a claim of a deleted queue")
	}
	if st := s.stats(proj, "q", now); st.Total != 0 || st.Claimed != 0 || st.Oldest != nil {
		t.Fatalf("stats of a deleted queue = %+v", st)
	}
	if got := msgIDs(s.listAll(proj, "keep", now)); !slices.Equal(got, []string{mid(9)}) {
		t.Fatalf("other queue's messages = %q", got)
	}

	// Re-created: no metadata carried over, sequence restarts, no old claim.
	s.post(proj, "q", "c", now, msg(mid(4), 600))
	q := s.queue(proj, "q")
	if q == nil || string(q.Metadata) != "{}" || q.CreatedAt != now {
		t.Fatalf("re-created queue = %+v", q)
	}
	got := s.listAll(proj, "q", now)
	if len(got) != 1 || got[0].ID != mid(4) || got[0].Seq != 1 || got[0].Claimed(now) {
		t.Fatalf("re-created queue messages = %+v, want only %s at seq 1, unclaimed", got, mid(4))
	}
	if st := s.stats(proj, "q", now); st.Total != 1 || st.Claimed != 0 {
		t.Fatalf("re-created queue stats = %+v, want 1 message, none claimed", st)
	}
}

func TestDeleteQueue_MissingQueueWritesNothing(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 60))
	before := s.digest()
	s.apply(func(tx *store.Txn) { tx.DeleteQueue(proj, "nope") })
	if s.digest() != before {
		t.Fatal("deleting a missing queue changed the store")
	}
}

func TestPurgeQueue_RemovesMessagesAndClaimsButKeepsQueueAndSequence(t *testing.T) {
	s := openTestStore(t)
	s.apply(func(tx *store.Txn) {
		tx.CreateQueue(proj, "q", t0, store.QueueSettings{DefaultTTL: 100}, []byte(`{"k":"v"}`))
	})
	s.post(proj, "q", "c", t0, msg(mid(1), 600), msg(mid(2), 600))
	s.claim(proj, "q", cid(1), 300, 60, 1, t0)

	s.apply(func(tx *store.Txn) { tx.PurgeQueue(proj, "q", true, false) })
	if got := s.listAll(proj, "q", t0); len(got) != 0 {
		t.Fatalf("messages after purge: %q", msgIDs(got))
	}
	if c, _ := s.getClaim(proj, "q", cid(1), t0); c != nil {
		t.Fatal("claim survived a purge")
	}
	if st := s.stats(proj, "q", t0); st.Total != 0 {
		t.Fatalf("stats after purge = %+v", st)
	}
	q := s.queue(proj, "q")
	if q == nil || string(q.Metadata) != `{"k":"v"}` || q.Settings.DefaultTTL != 100 {
		t.Fatalf("queue after purge = %+v, want it kept with its metadata", q)
	}
	s.post(proj, "q", "c", t0, msg(mid(3), 600))
	got := s.listAll(proj, "q", t0)
	if len(got) != 1 || got[0].Seq != 3 {
		t.Fatalf("message posted after purge = %+v, want seq 3 (sequence kept)", got)
	}
	if st := s.stats(proj, "q", t0); st.Total != 1 {
		t.Fatalf("stats after purge and post = %+v, want 1", st)
	}
}

func TestPurgeQueue_SubscriptionsOnlyKeepsMessages(t *testing.T) {
	s := openTestStore(t)
	s.post(proj, "q", "c", t0, msg(mid(1), 600))
	s.apply(func(tx *store.Txn) { tx.PurgeQueue(proj, "q", false, true) })
	if got := msgIDs(s.listAll(proj, "q", t0)); !slices.Equal(got, []string{mid(1)}) {
		t.Fatalf("messages after a subscriptions-only purge = %q", got)
	}
}

func TestPurgeQueue_MissingQueueIsNotCreated(t *testing.T) {
	s := openTestStore(t)
	before := s.digest()
	s.apply(func(tx *store.Txn) { tx.PurgeQueue(proj, "q", true, true) })
	if s.digest() != before || s.queue(proj, "q") != nil {
		t.Fatal("purging a missing queue changed the store")
	}
}

func TestSetSecretIfAbsent_KeepsTheFirstSecret(t *testing.T) {
	s := openTestStore(t)
	var secret []byte
	s.read(func(v *store.View) (err error) { secret, err = v.Secret(); return })
	if secret != nil {
		t.Fatalf("secret of an empty store = %q", secret)
	}
	var first, second bool
	s.apply(func(tx *store.Txn) { first = tx.SetSecretIfAbsent([]byte("one")) })
	before := s.digest()
	s.apply(func(tx *store.Txn) { second = tx.SetSecretIfAbsent([]byte("two")) })
	if !first || second {
		t.Fatalf("SetSecretIfAbsent = %v then %v, want true then false", first, second)
	}
	if s.digest() != before {
		t.Fatal("a refused SetSecretIfAbsent changed the store")
	}
	s.read(func(v *store.View) (err error) { secret, err = v.Secret(); return })
	if string(secret) != "one" {
		t.Fatalf("secret = %q, want one", secret)
	}
}
