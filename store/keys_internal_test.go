package store

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/zaqar-raft/zaqar/internal/codec"
)

// keyStrings are component values that stress the escaping: empty, the
// escape bytes themselves, and strings that prefix each other.
var keyStrings = []string{
	"", "\x00", "\x00\x00", "\x00\x01", "\x00\xff", "\x01", "\xff", "\xff\xff",
	"a", "a\x00", "a\x00\x00", "a\x00b", "a\x01", "a\xff", "aa", "ab", "b",
	"p/x", "p x", "queue-1", "queue_1",
}

func TestAppendString_RoundTrips(t *testing.T) {
	for _, s := range keyStrings {
		enc := appendString([]byte("prefix"), s)
		got, rest, ok := readString(append(enc[len("prefix"):], "tail"...))
		if !ok || got != s || string(rest) != "tail" {
			t.Errorf("readString(appendString(%q)) = %q, rest %q, ok %v", s, got, rest, ok)
		}
	}
}

func TestAppendString_PreservesOrderAndNoEncodingPrefixesAnother(t *testing.T) {
	for _, a := range keyStrings {
		for _, b := range keyStrings {
			ea, eb := appendString(nil, a), appendString(nil, b)
			if got, want := bytes.Compare(ea, eb), strings.Compare(a, b); got != want {
				t.Errorf("compare(enc(%q), enc(%q)) = %d, want %d", a, b, got, want)
			}
			if a != b && bytes.HasPrefix(eb, ea) {
				t.Errorf("enc(%q) is a prefix of enc(%q)", a, b)
			}
		}
	}
}

func TestCompositeKeys_SortByProjectThenQueue(t *testing.T) {
	type pq struct{ p, q string }
	var pairs []pq
	for _, p := range keyStrings {
		for _, q := range []string{"", "\x00", "a", "a\x00", "ab"} {
			pairs = append(pairs, pq{p, q})
		}
	}
	sorted := append([]pq(nil), pairs...)
	sort.Slice(sorted, func(i, j int) bool {
		return bytes.Compare(queueKey(sorted[i].p, sorted[i].q), queueKey(sorted[j].p, sorted[j].q)) < 0
	})
	for i := 1; i < len(sorted); i++ {
		a, b := sorted[i-1], sorted[i]
		if a.p > b.p || (a.p == b.p && a.q >= b.q) {
			t.Fatalf("key order puts %q before %q", a, b)
		}
	}
	// Every queue key of a project lies inside the project's list range
	// and outside every other project's.
	for _, x := range pairs {
		k := queueKey(x.p, x.q)
		for _, p := range keyStrings {
			lo, hi := queuePrefix(p), prefixEnd(queuePrefix(p))
			inside := bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0
			if inside != (p == x.p) {
				t.Fatalf("queue key of %q in range of project %q: %v", x, p, inside)
			}
		}
	}
}

func TestReadString_RejectsUnterminatedAndBadEscapes(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("abc"), {'a', 0}, {'a', 0, 2}, {0, 0}, {0, 0xFF}} {
		if s, _, ok := readString(b); ok {
			t.Errorf("readString(%q) = %q, ok", b, s)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct{ in, want []byte }{
		{[]byte{1, 2, 3}, []byte{1, 2, 4}},
		{[]byte{1, 2, 0xFF}, []byte{1, 3}},
		{[]byte{0xFF, 0xFF}, nil},
		{[]byte{'q', 0, 1}, []byte{'q', 0, 2}},
	}
	for _, tc := range tests {
		if got := prefixEnd(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("prefixEnd(%x) = %x, want %x", tc.in, got, tc.want)
		}
	}
	// The input is not modified.
	in := []byte{1, 0xFF}
	prefixEnd(in)
	if !bytes.Equal(in, []byte{1, 0xFF}) {
		t.Fatal("prefixEnd modified its argument")
	}
}

func TestExpiryKeys_DecodeAndSortByTime(t *testing.T) {
	k := msgExpiryKey(42, "p\x00", "q", 7)
	e, ok := decodeExpiryKey(k)
	if !ok || e.at != 42 || e.project != "p\x00" || e.queue != "q" || binary.BigEndian.Uint64(e.tail) != 7 {
		t.Fatalf("decodeExpiryKey(msg) = %+v, %v", e, ok)
	}
	k = claimExpiryKey(43, "", "q\x00", "claim")
	e, ok = decodeExpiryKey(k)
	if !ok || e.at != 43 || e.project != "" || e.queue != "q\x00" || string(e.tail) != "claim" {
		t.Fatalf("decodeExpiryKey(claim) = %+v, %v", e, ok)
	}
	if bytes.Compare(msgExpiryKey(5, "z", "z", 99), msgExpiryKey(6, "a", "a", 1)) >= 0 {
		t.Fatal("expiry keys do not sort by time first")
	}
	if bytes.Compare(msgExpiryKey(6, "z", "z", 1), expiryUpTo(spaceMsgExpiry, 6)) >= 0 ||
		bytes.Compare(msgExpiryKey(7, "", "", 0), expiryUpTo(spaceMsgExpiry, 6)) < 0 {
		t.Fatal("expiryUpTo(6) must include time 6 and exclude time 7")
	}
	for _, bad := range [][]byte{nil, {spaceMsgExpiry, 0, 0}, msgExpiryKey(1, "p", "q", 1)[:12]} {
		if _, ok := decodeExpiryKey(bad); ok {
			t.Errorf("decodeExpiryKey(%x) accepted a malformed key", bad)
		}
	}
}

func FuzzKeyString(f *testing.F) {
	for _, s := range keyStrings {
		f.Add(s, "a")
	}
	f.Add("a\x00", "a")
	f.Fuzz(func(t *testing.T, a, b string) {
		ea, eb := appendString(nil, a), appendString(nil, b)
		if got, want := bytes.Compare(ea, eb), strings.Compare(a, b); got != want {
			t.Fatalf("compare(enc(%q), enc(%q)) = %d, want %d", a, b, got, want)
		}
		if a != b && (bytes.HasPrefix(ea, eb) || bytes.HasPrefix(eb, ea)) {
			t.Fatalf("enc(%q) and enc(%q): one is a prefix of the other", a, b)
		}
		got, rest, ok := readString(append(ea, eb...))
		if !ok || got != a || !bytes.Equal(rest, eb) {
			t.Fatalf("readString(enc(%q)+enc(%q)) = %q, %q, %v", a, b, got, rest, ok)
		}
	})
}

func TestRecords_RoundTrip(t *testing.T) {
	q := &Queue{Name: "q", CreatedAt: -5, MetaVersion: 1 << 40,
		Settings: QueueSettings{DefaultTTL: 1, DefaultDelay: 2, MaxPostSize: 3, MaxClaimCount: 4, DeadLetter: "d\x00", DeadLetterTTL: 6},
		Metadata: []byte(`{"x":[1,2]}`)}
	gq, err := decodeQueue("q", encodeQueue(q))
	if err != nil || !reflect.DeepEqual(gq, q) {
		t.Fatalf("queue round trip = %+v, %v; want %+v", gq, err, q)
	}

	m := &Message{Seq: 9, ID: "id", CreatedAt: 1, ExpiresAt: 2, VisibleAt: 3, TTL: 4, Delay: 5,
		ClaimID: "cid", ClaimExpiresAt: 6, ClaimCount: 7, ClientID: "client", Checksum: "MD5:x", Body: []byte(`"body"`)}
	rec := encodeMessage(m)
	gm, err := decodeMessage(9, rec)
	if err != nil || !reflect.DeepEqual(gm, m) {
		t.Fatalf("message round trip = %+v, %v; want %+v", gm, err, m)
	}
	h := msgHeader(rec)
	if !h.valid() || h.createdAt() != 1 || h.expiresAt() != 2 || h.visibleAt() != 3 || h.claimExpiresAt() != 6 {
		t.Fatalf("message header reads %d %d %d %d", h.createdAt(), h.expiresAt(), h.visibleAt(), h.claimExpiresAt())
	}

	b := AppendMessage([]byte("x"), m)
	d := codec.NewDecoder(b[1:])
	gm, err = ReadMessage(d)
	if err != nil || !reflect.DeepEqual(gm, m) || d.Done() != nil {
		t.Fatalf("AppendMessage/ReadMessage = %+v, %v", gm, err)
	}

	c := &Claim{ID: "c", UpdatedAt: 1, ExpiresAt: 2, TTL: 3, Grace: 4, Seqs: []uint64{1, 1 << 60, 3}}
	gc, err := decodeClaim("c", encodeClaim(c))
	if err != nil || !reflect.DeepEqual(gc, c) {
		t.Fatalf("claim round trip = %+v, %v; want %+v", gc, err, c)
	}

	cn := counters{NextSeq: 5, Stored: 3}
	if got, err := decodeCounters(encodeCounters(cn)); err != nil || got != cn {
		t.Fatalf("counters round trip = %+v, %v", got, err)
	}
}

func TestRecords_RejectOtherVersionsAndDamage(t *testing.T) {
	q := encodeQueue(&Queue{Metadata: []byte("{}")})
	m := encodeMessage(&Message{ID: "x"})
	c := encodeClaim(&Claim{Seqs: []uint64{1}})
	bump := func(b []byte) []byte { b = append([]byte(nil), b...); b[0]++; return b }
	if _, err := decodeQueue("q", bump(q)); err == nil {
		t.Error("queue record of another version accepted")
	}
	if _, err := decodeQueue("q", append(append([]byte(nil), q...), 0)); err == nil {
		t.Error("queue record with trailing bytes accepted")
	}
	if _, err := decodeMessage(1, bump(m)); err == nil {
		t.Error("message record of another version accepted")
	}
	if _, err := decodeMessage(1, m[:msgHeaderLen]); err == nil {
		t.Error("truncated message record accepted")
	}
	if msgHeader(m[:msgHeaderLen-1]).valid() || msgHeader(bump(m)).valid() {
		t.Error("short or foreign message header reported valid")
	}
	if _, err := decodeClaim("c", bump(c)); err == nil {
		t.Error("claim record of another version accepted")
	}
	if _, err := decodeClaim("c", c[:len(c)-1]); err == nil {
		t.Error("truncated claim record accepted")
	}
	if _, err := decodeCounters(make([]byte, 15)); err == nil {
		t.Error("short counters record accepted")
	}
}

func TestEncodeSubscription_WithoutATrustIsTheFirstVersion(t *testing.T) {
	plain := &Subscription{ID: "s", Source: "q", Subscriber: "http://h/", TTL: 60, CreatedAt: 1, ExpiresAt: 2, Options: []byte(`{}`)}
	b := encodeSubscription(plain)
	if b[0] != subscriptionRecordV {
		t.Fatalf("a subscription without a trust is written as version %d", b[0])
	}
	held := *plain
	held.TrustID = "0123abcd"
	hb := encodeSubscription(&held)
	if hb[0] != subscriptionTrustRecordV || !bytes.Equal(hb[1:len(b)], b[1:]) {
		t.Fatalf("a subscription holding a trust is not version 2 with the trust after the version 1 fields")
	}
	for _, s := range []*Subscription{plain, &held} {
		got, err := decodeSubscription(s.ID, s.Source, encodeSubscription(s))
		if err != nil || !reflect.DeepEqual(got, s) {
			t.Fatalf("round trip %+v = %+v, %v", s, got, err)
		}
	}
	if _, err := decodeSubscription("s", "q", append([]byte{3}, b[1:]...)); err == nil {
		t.Fatal("version 3 decoded")
	}
}
