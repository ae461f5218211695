package fsm_test

import (
	"reflect"
	"testing"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/store"
)

func sampleEntryResult() *fsm.EntryResult {
	m1 := &store.Message{Seq: 1, ID: mid(1), CreatedAt: t0, ExpiresAt: t0 + 60*sec, VisibleAt: t0, TTL: 60, Delay: 0,
		ClaimID: cid(1), ClaimExpiresAt: t0 + 30*sec, ClaimCount: 2, ClientID: "c", Checksum: "MD5:1", Body: []byte(`{"a":1}`)}
	m2 := &store.Message{Seq: 1 << 50, ID: mid(2), CreatedAt: -1, ExpiresAt: 1<<63 - 1, TTL: 1, Delay: 900, Body: []byte(`"s"`)}
	return &fsm.EntryResult{Index: 1<<64 - 1, Now: t0, Results: []fsm.Result{
		{Status: fsm.StatusOK, Changed: true},
		{Status: fsm.StatusNotFound},
		{Status: fsm.StatusConflict},
		{Status: fsm.StatusClaimed},
		{Status: fsm.StatusNotClaimed},
		{Status: fsm.StatusBadClaim},
		{Count: 2000},
		{Messages: []*store.Message{m1, m2}},
		{Status: fsm.Status(200), Count: 1<<32 - 1},
	}}
}

func TestEncodeEntryResult_RoundTrips(t *testing.T) {
	for _, r := range []*fsm.EntryResult{sampleEntryResult(), {Index: 1, Now: 2}} {
		got, err := fsm.DecodeEntryResult(fsm.EncodeEntryResult(r))
		if err != nil {
			t.Fatalf("DecodeEntryResult: %v", err)
		}
		if len(r.Results) == 0 {
			r.Results = []fsm.Result{} // decoded as an empty slice
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip = %#v, want %#v", got, r)
		}
	}
}

func TestDecodeEntryResult_RejectsDamagedInput(t *testing.T) {
	good := fsm.EncodeEntryResult(sampleEntryResult())
	for cut := 0; cut < len(good); cut++ {
		if _, err := fsm.DecodeEntryResult(good[:cut]); err == nil {
			t.Fatalf("result truncated to %d of %d bytes decoded", cut, len(good))
		}
	}
	if _, err := fsm.DecodeEntryResult(append(append([]byte(nil), good...), 0)); err == nil {
		t.Fatal("result with a trailing byte decoded")
	}
}

func TestStatus_String(t *testing.T) {
	tests := map[fsm.Status]string{
		fsm.StatusOK: "ok", fsm.StatusNotFound: "not found", fsm.StatusConflict: "conflict",
		fsm.StatusClaimed: "claimed", fsm.StatusNotClaimed: "not claimed", fsm.StatusBadClaim: "bad claim id",
		fsm.Status(99): "status(99)",
	}
	for s, want := range tests {
		if got := s.String(); got != want {
			t.Errorf("Status(%d).String() = %q, want %q", byte(s), got, want)
		}
	}
}
