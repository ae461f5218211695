package fsm_test

import (
	"reflect"
	"testing"

	"github.com/zaqar-raft/zaqar/fsm"
)

// FuzzDecodeEntry feeds arbitrary bytes to DecodeEntry, which parses what
// followers forward to the leader. It must never panic, and whatever it
// accepts must survive re-encoding unchanged.
func FuzzDecodeEntry(f *testing.F) {
	for _, c := range sampleCommands() {
		f.Add(fsm.EncodeEntry(t0, c))
	}
	f.Add(fsm.EncodeEntry(0, sampleCommands()...))
	f.Add(fsm.EncodeEntry(t0))
	f.Add(rawEntry(t0, rawCommand{250, nil}))
	f.Fuzz(func(t *testing.T, b []byte) {
		now, cmds, err := fsm.DecodeEntry(b)
		if err != nil {
			return
		}
		again := fsm.EncodeEntry(now, cmds...)
		now2, cmds2, err := fsm.DecodeEntry(again)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if now2 != now || !reflect.DeepEqual(cmds2, cmds) {
			t.Fatalf("re-encoded entry decodes to %d %#v, want %d %#v", now2, cmds2, now, cmds)
		}
		if len(again) > len(b) {
			t.Fatalf("canonical encoding of %d bytes grew to %d", len(b), len(again))
		}
	})
}

// FuzzDecodeEntryResult feeds arbitrary bytes to DecodeEntryResult, which
// parses the leader's answer to a forwarded entry.
func FuzzDecodeEntryResult(f *testing.F) {
	f.Add(fsm.EncodeEntryResult(sampleEntryResult()))
	f.Add(fsm.EncodeEntryResult(&fsm.EntryResult{Index: 1, Now: t0, Results: []fsm.Result{{Changed: true}}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := fsm.DecodeEntryResult(b)
		if err != nil {
			return
		}
		again, err := fsm.DecodeEntryResult(fsm.EncodeEntryResult(r))
		if err != nil {
			t.Fatalf("re-encoded result does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, r) {
			t.Fatalf("re-encoded result decodes to %#v, want %#v", again, r)
		}
	})
}
