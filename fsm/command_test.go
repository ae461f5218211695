package fsm_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/internal/codec"
	"github.com/zaqar-raft/zaqar/store"
)

// sampleCommands has one command of every type with every field set to a
// non-zero value (empty slices would decode as nil or empty, not as they
// were written, which is immaterial but defeats reflect.DeepEqual).
func sampleCommands() []fsm.Command {
	settings := store.QueueSettings{DefaultTTL: 3600, DefaultDelay: -2, MaxPostSize: 65536, MaxClaimCount: 4, DeadLetter: "dlq\x00", DeadLetterTTL: 1 << 40}
	return []fsm.Command{
		&fsm.CreateQueue{Project: "p\x00/ x", Queue: "q", Settings: settings, Metadata: []byte(`{"a":1}`)},
		&fsm.SetQueueMetadata{Project: "p", Queue: "q", ExpectVersion: 1<<64 - 1, Settings: settings, Metadata: []byte(`{"b":[]}`)},
		&fsm.DeleteQueue{Project: "p", Queue: "q"},
		&fsm.PurgeQueue{Project: "p", Queue: "q", Messages: true, Subscriptions: false},
		&fsm.PurgeQueue{Project: "p", Queue: "q", Messages: false, Subscriptions: true},
		&fsm.PostMessages{Project: "p", Queue: "q", ClientID: "client", DefaultTTL: 3600, Messages: []store.NewMessage{
			{ID: mid(1), TTL: 60, Delay: -1, Body: []byte(`{"x":1}`), Checksum: "MD5:00"},
			{ID: mid(2), TTL: -9223372036854775808, Delay: 9223372036854775807, Body: []byte(`null`), Checksum: "c"},
		}},
		&fsm.DeleteMessage{Project: "p", Queue: "q", ID: mid(1), ClaimID: cid(1)},
		&fsm.DeleteMessages{Project: "p", Queue: "q", IDs: []string{mid(1), mid(2), ""}, ClaimIDs: []string{cid(1)}, RequireClaims: true},
		&fsm.PopMessages{Project: "p", Queue: "q", Limit: 20},
		&fsm.CreateClaim{Project: "p", Queue: "q", ClaimID: cid(1), TTL: 300, Grace: 60, Limit: 65535},
		&fsm.RenewClaim{Project: "p", Queue: "q", ClaimID: cid(1), TTL: 43200, Grace: -1},
		&fsm.ReleaseClaim{Project: "p", Queue: "q", ClaimID: cid(1)},
		&fsm.CollectGarbage{Limit: 2000},
		&fsm.SetSecret{Secret: []byte{0, 1, 2, 0xFF}},
		&fsm.Subscribe{Project: "p", Queue: "q", ID: cid(2), Subscriber: "http://h:1/x?y=1", TTL: 3600, Options: []byte(`{"post_data":"$zaqar_message$"}`), Confirmed: true},
		&fsm.UpdateSubscription{Project: "p", Queue: "q", ID: cid(2), Subscriber: ptr("mailto:a@b.c"), TTL: ptr(int64(60)), Options: []byte(`{}`)},
		&fsm.UpdateSubscription{Project: "p", Queue: "q", ID: cid(2)},
		&fsm.DeleteSubscription{Project: "p", Queue: "q", ID: cid(2)},
		&fsm.ConfirmSubscription{Project: "p", Queue: "q", ID: cid(2), Confirmed: true},
		&fsm.SubscribeLong{Subscribe: fsm.Subscribe{Project: "p", Queue: "q", ID: cid(3), Subscriber: "mailto:a@b.c", TTL: 220367260800, Options: []byte(`{}`), Confirmed: true}},
		&fsm.UpdateSubscriptionLong{UpdateSubscription: fsm.UpdateSubscription{Project: "p", Queue: "q", ID: cid(3), TTL: ptr(int64(220367260800))}},
		&fsm.AdvanceCursors{Advances: []store.CursorAdvance{{Project: "p", Queue: "q", ID: cid(2), Seq: 1<<64 - 1}, {Project: "", Queue: "r", ID: "", Seq: 0}}},
		&fsm.HoldTrust{Project: "p", Queue: "q", ID: cid(2), Subscriber: "trust+https://h/x", TrustID: "0f1e2d3c4b5a69788796a5b4c3d2e1f0"},
		&fsm.ForgetTrusts{TrustIDs: []string{"a", "", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"}},
		&fsm.BuildDepthIndex{Format: store.DepthIndexFormat},
		&fsm.CreatePool{Name: "pool\x00a", URI: "zaqar+raft://n1:7001,n2:7001", Addresses: []string{"n1:7001", "n2:7001"}, Weight: 1<<32 - 1, Flavor: "fast", Options: []byte(`{"k":1}`)},
		&fsm.UpdatePool{Name: "a", URI: ptr("zaqar+raft://n3:7001"), Addresses: []string{"n3:7001"}, Weight: ptr(uint64(0)), Flavor: ptr(""), Options: []byte(`{}`)},
		&fsm.UpdatePool{Name: "a"},
		&fsm.DeletePool{Name: "a"},
		&fsm.PutFlavor{Project: "p", Name: "fast", Capabilities: []byte(`{"durable":true}`), SetPools: true, Pools: []string{"a", "b"}, MustExist: true},
		&fsm.PutFlavor{Project: "p", Name: "fast"},
		&fsm.DeleteFlavor{Project: "p", Name: "fast"},
		&fsm.PlaceQueue{Project: "\x00topics\x00p", Queue: "q", Pool: "b", CatalogPool: ""},
	}
}

func ptr[T any](v T) *T { return &v }

func TestEncodeEntry_RoundTripsEveryCommandType(t *testing.T) {
	for _, c := range sampleCommands() {
		t.Run(reflect.TypeOf(c).Elem().Name(), func(t *testing.T) {
			now, cmds, err := fsm.DecodeEntry(fsm.EncodeEntry(t0, c))
			if err != nil {
				t.Fatalf("DecodeEntry: %v", err)
			}
			if now != t0 || len(cmds) != 1 || !reflect.DeepEqual(cmds[0], c) {
				t.Fatalf("decoded %d, %#v; want %d, %#v", now, cmds, t0, c)
			}
			if cmds[0].Type() != c.Type() {
				t.Fatalf("decoded type %d, want %d", cmds[0].Type(), c.Type())
			}
		})
	}
}

func TestEncodeEntry_RoundTripsSeveralCommandsInOrder(t *testing.T) {
	all := sampleCommands()
	for _, now := range []int64{0, -1, t0, 1<<63 - 1} {
		gotNow, cmds, err := fsm.DecodeEntry(fsm.EncodeEntry(now, all...))
		if err != nil || gotNow != now || !reflect.DeepEqual(cmds, all) {
			t.Fatalf("round trip at %d = %d, %#v, %v", now, gotNow, cmds, err)
		}
	}
	_, cmds, err := fsm.DecodeEntry(fsm.EncodeEntry(t0))
	if err != nil || len(cmds) != 0 {
		t.Fatalf("entry without commands = %#v, %v", cmds, err)
	}
}

func TestDecodeEntry_KnowsExactlyTheSampledTypes(t *testing.T) {
	sampled := map[fsm.Type]bool{}
	for _, c := range sampleCommands() {
		sampled[c.Type()] = true
	}
	for typ := 0; typ < 256; typ++ {
		_, _, err := fsm.DecodeEntry(rawEntry(t0, rawCommand{byte(typ), nil}))
		unknown := errors.Is(err, fsm.ErrUnknownCommand)
		if err == nil {
			t.Fatalf("type %d with an empty body decoded", typ)
		}
		if unknown == sampled[fsm.Type(typ)] {
			t.Errorf("type %d: unknown=%v but sampled=%v; add new command types to sampleCommands", typ, unknown, sampled[fsm.Type(typ)])
		}
	}
}

func TestMaxType_IsTheLevelOfAContiguousRangeOfKnownTypes(t *testing.T) {
	for typ := fsm.Type(1); typ <= fsm.MaxType; typ++ {
		if _, _, err := fsm.DecodeEntry(rawEntry(t0, rawCommand{byte(typ), nil})); errors.Is(err, fsm.ErrUnknownCommand) {
			t.Errorf("type %d is below MaxType %d but unknown: a build's level must cover every type up to it", typ, fsm.MaxType)
		}
	}
	if _, _, err := fsm.DecodeEntry(rawEntry(t0, rawCommand{byte(fsm.MaxType + 1), nil})); !errors.Is(err, fsm.ErrUnknownCommand) {
		t.Errorf("type %d above MaxType is known: raise MaxType", fsm.MaxType+1)
	}
	if fsm.UngatedMax > fsm.MaxType {
		t.Errorf("UngatedMax %d above MaxType %d", fsm.UngatedMax, fsm.MaxType)
	}
}

func TestEntryMaxType_ReadsOnlyTheHeaders(t *testing.T) {
	cmds := sampleCommands()
	want := fsm.Type(0)
	for _, c := range cmds {
		want = max(want, c.Type())
	}
	got, err := fsm.EntryMaxType(fsm.EncodeEntry(t0, cmds...))
	if err != nil || got != want {
		t.Fatalf("EntryMaxType = %d, %v; want %d", got, err, want)
	}
	got, err = fsm.EntryMaxType(fsm.EncodeEntry(t0, &fsm.DeleteQueue{Project: "p", Queue: "q"}, &fsm.CreateQueue{Project: "p", Queue: "q"}))
	if err != nil || got != fsm.TypeDeleteQueue {
		t.Fatalf("EntryMaxType of DeleteQueue+CreateQueue = %d, %v", got, err)
	}
	// An unknown type is reported, not refused: the gate, not the decoder,
	// decides about types above this build's level.
	if got, err := fsm.EntryMaxType(rawEntry(t0, rawCommand{200, []byte{1, 2}})); err != nil || got != 200 {
		t.Fatalf("EntryMaxType of type 200 = %d, %v", got, err)
	}
	if _, err := fsm.EntryMaxType([]byte{9, 9}); err == nil {
		t.Fatal("EntryMaxType accepted garbage")
	}
}

func TestDecodeEntry_UnknownCommandTypeIsErrUnknownCommand(t *testing.T) {
	good := fsm.EncodeEntry(t0, &fsm.DeleteQueue{Project: "p", Queue: "q"})
	for _, typ := range []byte{0, 99, 200, 255} {
		// The unknown command follows a valid one.
		var body codec.Encoder
		body.String("p")
		entry := rawEntry(t0, rawCommand{byte(fsm.TypeDeleteQueue), mustBody(good)}, rawCommand{typ, body.Buf})
		if _, _, err := fsm.DecodeEntry(entry); !errors.Is(err, fsm.ErrUnknownCommand) {
			t.Errorf("type %d: DecodeEntry = %v, want ErrUnknownCommand", typ, err)
		}
	}
}

func TestDecodeEntry_RejectsDamagedEntries(t *testing.T) {
	good := fsm.EncodeEntry(t0, sampleCommands()...)
	for cut := 0; cut < len(good); cut++ {
		if _, _, err := fsm.DecodeEntry(good[:cut]); err == nil {
			t.Fatalf("entry truncated to %d of %d bytes decoded", cut, len(good))
		}
	}
	bad := map[string][]byte{
		"other version":  append([]byte{2}, good[1:]...),
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"body not consumed": rawEntry(t0, rawCommand{byte(fsm.TypeDeleteQueue),
			append(mustBody(fsm.EncodeEntry(t0, &fsm.DeleteQueue{Project: "p", Queue: "q"})), 'x')}),
		"body too short": rawEntry(t0, rawCommand{byte(fsm.TypeCollectGarbage), nil}),
		"bad bool":       rawEntry(t0, rawCommand{byte(fsm.TypePurgeQueue), []byte{1, 'p', 1, 'q', 2, 0}}),
		"count too large": func() []byte {
			var e codec.Encoder
			e.Byte(1)
			e.Int64(t0)
			e.Uvarint(1 << 40)
			return e.Buf
		}(),
	}
	for name, b := range bad {
		if _, _, err := fsm.DecodeEntry(b); err == nil {
			t.Errorf("%s: DecodeEntry accepted it", name)
		}
	}
}

func TestDecodeEntry_ClampsLimitsAsDocumented(t *testing.T) {
	entry := fsm.EncodeEntry(t0,
		&fsm.PopMessages{Project: "p", Queue: "q", Limit: 1<<16 + 5},
		&fsm.CreateClaim{Project: "p", Queue: "q", ClaimID: cid(1), TTL: 60, Grace: 60, Limit: 1<<16 + 6},
		&fsm.CollectGarbage{Limit: 1<<24 + 7},
	)
	_, cmds, err := fsm.DecodeEntry(entry)
	if err != nil {
		t.Fatal(err)
	}
	if got := cmds[0].(*fsm.PopMessages).Limit; got != 5 {
		t.Errorf("PopMessages.Limit = %d, want 5 (low 16 bits)", got)
	}
	if got := cmds[1].(*fsm.CreateClaim).Limit; got != 6 {
		t.Errorf("CreateClaim.Limit = %d, want 6 (low 16 bits)", got)
	}
	if got := cmds[2].(*fsm.CollectGarbage).Limit; got != 7 {
		t.Errorf("CollectGarbage.Limit = %d, want 7 (low 24 bits)", got)
	}
}

func TestStampEntry_OverwritesOnlyTheTimestamp(t *testing.T) {
	cmds := sampleCommands()
	entry := fsm.EncodeEntry(0, cmds...)
	size := len(entry)
	if err := fsm.StampEntry(entry, t0+123); err != nil {
		t.Fatalf("StampEntry: %v", err)
	}
	now, got, err := fsm.DecodeEntry(entry)
	if err != nil || now != t0+123 || !reflect.DeepEqual(got, cmds) || len(entry) != size {
		t.Fatalf("stamped entry decodes to %d, %v (len %d → %d)", now, err, size, len(entry))
	}
	if !bytes.Equal(entry, fsm.EncodeEntry(t0+123, cmds...)) {
		t.Fatal("stamped entry differs from one encoded with that time")
	}
	for name, b := range map[string][]byte{
		"nil":           nil,
		"short":         entry[:fsm.EntryHeaderLen-1],
		"other version": append([]byte{9}, entry[1:]...),
	} {
		before := append([]byte(nil), b...)
		if err := fsm.StampEntry(b, 1); err == nil {
			t.Errorf("%s: StampEntry accepted it", name)
		}
		if !bytes.Equal(b, before) {
			t.Errorf("%s: a refused StampEntry modified the input", name)
		}
	}
}

// rawCommand is a command's type byte and body, for building entries by hand.
type rawCommand struct {
	typ  byte
	body []byte
}

func rawEntry(now int64, cmds ...rawCommand) []byte {
	var e codec.Encoder
	e.Byte(1)
	e.Int64(now)
	e.Uvarint(uint64(len(cmds)))
	for _, c := range cmds {
		e.Byte(c.typ)
		e.Bytes(c.body)
	}
	return e.Buf
}

// mustBody returns the body of the only command of an encoded entry.
func mustBody(entry []byte) []byte {
	d := codec.NewDecoder(entry[fsm.EntryHeaderLen:])
	if d.Uvarint() != 1 {
		panic("mustBody: not one command")
	}
	d.Byte()
	return append([]byte(nil), d.Bytes()...)
}

func TestSubscribeLong_AppliesExactlyAsSubscribeAndUpdateSubscription(t *testing.T) {
	const heatTTL int64 = 220367260800
	sub := fsm.Subscribe{Project: "p", Queue: "q", ID: cid(1), Subscriber: "http://h/x", TTL: heatTTL, Options: []byte(`{}`)}
	upd := fsm.UpdateSubscription{Project: "p", Queue: "q", ID: cid(1), TTL: ptr(heatTTL)}
	plain, long := newNode(t), newNode(t)
	plain.fsm.ApplyBatch([]*raft.Log{cmdLog(1, t0, &sub), cmdLog(2, t0+sec, &upd)})
	rs := long.fsm.ApplyBatch([]*raft.Log{cmdLog(1, t0, &fsm.SubscribeLong{Subscribe: sub}), cmdLog(2, t0+sec, &fsm.UpdateSubscriptionLong{UpdateSubscription: upd})})
	// The long commands leave the state the plain ones do, and record in
	// it that the log holds a gated type (which the command gate reads).
	var subs [2]*store.Subscription
	var levels [2]byte
	for i, n := range []*node{plain, long} {
		n.view(func(v *store.View) (err error) {
			if subs[i], err = v.Subscription("p", "q", cid(1), t0+2*sec); err != nil {
				return err
			}
			levels[i], err = v.CommandLevel()
			return err
		})
	}
	if subs[0] == nil || subs[1] == nil || !reflect.DeepEqual(*subs[0], *subs[1]) {
		t.Fatalf("the long commands left subscription %+v, Subscribe and UpdateSubscription %+v", subs[1], subs[0])
	}
	if levels[0] != 0 || levels[1] != byte(fsm.TypeUpdateSubscriptionLong) {
		t.Fatalf("recorded command levels: plain %d, long %d; want 0 and %d", levels[0], levels[1], fsm.TypeUpdateSubscriptionLong)
	}
	if r := entryResult(t, rs[0]).Results[0]; !r.Changed || r.ID != cid(1) {
		t.Fatalf("SubscribeLong result %+v", r)
	}
	if r := entryResult(t, rs[1]).Results[0]; !r.Changed || r.Status != fsm.StatusOK {
		t.Fatalf("UpdateSubscriptionLong result %+v", r)
	}
	var got *store.Subscription
	long.view(func(v *store.View) (err error) { got, err = v.Subscription("p", "q", cid(1), store.Never-1); return })
	if got == nil || got.TTL != heatTTL || got.ExpiresAt != store.Never {
		t.Fatalf("subscription %+v, want ttl %d expiring at Never", got, heatTTL)
	}
}
