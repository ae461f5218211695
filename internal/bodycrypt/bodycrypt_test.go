package bodycrypt

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// testKey returns a key whose bytes are seed, seed+1, ...
func testKey(seed byte) []byte {
	k := make([]byte, KeySize)
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

func mustKeyring(t testing.TB, keys ...[]byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKey_AcceptsBase64AndHexOf32BytesOnly(t *testing.T) {
	key := testKey(7)
	good := map[string]string{
		"padded base64":         base64.StdEncoding.EncodeToString(key),
		"unpadded base64":       base64.RawStdEncoding.EncodeToString(key),
		"lower hex":             hex.EncodeToString(key),
		"upper hex":             strings.ToUpper(hex.EncodeToString(key)),
		"a file's last newline": base64.StdEncoding.EncodeToString(key) + "\n",
		"surrounding blanks":    "  " + hex.EncodeToString(key) + " \t\n",
	}
	for name, text := range good {
		got, err := ParseKey(text)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("%s: ParseKey = %x, %v; want the key", name, got, err)
		}
	}
	secret := base64.StdEncoding.EncodeToString(testKey(100)[:16])
	bad := map[string]string{
		"empty":                   "",
		"16 bytes of base64":      secret,
		"48 bytes of base64":      base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 48)),
		"63 hex digits":           hex.EncodeToString(key)[:63],
		"hex of 31 bytes":         hex.EncodeToString(key[:31]),
		"URL-safe base64":         strings.Repeat("-_", 22),
		"a pass phrase":           "correct horse battery staple",
		"base64 with inner space": base64.StdEncoding.EncodeToString(key)[:20] + " " + base64.StdEncoding.EncodeToString(key)[20:],
	}
	for name, text := range bad {
		_, err := ParseKey(text)
		if err == nil {
			t.Errorf("%s: ParseKey accepted %q", name, text)
			continue
		}
		if text != "" && strings.Contains(err.Error(), strings.TrimSpace(text)) {
			t.Errorf("%s: the error quotes the secret: %v", name, err)
		}
	}
}

func TestNewKeyring_RefusesWrongSizesAndRepeatedKeys(t *testing.T) {
	for name, keys := range map[string][][]byte{
		"no key":          nil,
		"16 bytes":        {testKey(1)[:16]},
		"33 bytes":        {append(testKey(1), 0)},
		"the same key":    {testKey(1), testKey(1)},
		"second key size": {testKey(1), testKey(2)[:31]},
	} {
		if _, err := NewKeyring(keys...); err == nil {
			t.Errorf("%s: NewKeyring accepted it", name)
		}
	}
}

// The envelope format is in Raft logs, snapshots and stores: a change to it
// must be a new format byte, never a silent change of this one.
func TestSeal_EnvelopeFormatIsFixed(t *testing.T) {
	k := mustKeyring(t, testKey(0))
	k.rand = bytes.NewReader(bytes.Repeat([]byte{0xAB}, nonceLen))
	got, err := k.Seal([]byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	// Computed independently with Python's cryptography (AESGCM).
	const want = "0001" + "ec279fb9" + "00000017" + "abababababababababababab" +
		"b7fad56b9e296c" + "4ef43ebce433bd3887bbf8602d45466b"
	if hex.EncodeToString(got) != want {
		t.Fatalf("envelope\n got %x\nwant %s", got, want)
	}
	if id := IDOf(testKey(0)); id.String() != "ec279fb9" || k.SealingKeyID() != id {
		t.Fatalf("key id %s, sealing id %s", id, k.SealingKeyID())
	}
}

func TestSeal_OpenReturnsTheBodyAndTheEnvelopeHidesIt(t *testing.T) {
	k := mustKeyring(t, testKey(1))
	for _, body := range []string{`"plain text secret"`, `{"card":"4111111111111111","n":[1,2,3]}`, `null`, `0`, `""`, `"` + strings.Repeat("x", 300000) + `"`} {
		sealed, err := k.Seal([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if !IsSealed(sealed) || len(sealed) != len(body)+Overhead {
			t.Fatalf("%s: sealed %x (%d bytes)", body, sealed, len(sealed))
		}
		if len(body) >= 4 && bytes.Contains(sealed, []byte(body[1:len(body)-1])) {
			t.Fatalf("%s: the envelope holds the body in clear", body)
		}
		if id, ok := SealedKeyID(sealed); !ok || id != k.SealingKeyID() {
			t.Fatalf("%s: key id %s %v", body, id, ok)
		}
		got, err := k.Open(sealed)
		if err != nil || string(got) != body {
			t.Fatalf("%s: Open = %q, %v", body, got, err)
		}
		again, _ := k.Seal([]byte(body))
		if bytes.Equal(again, sealed) {
			t.Fatalf("%s: two seals are identical; the nonce is not fresh", body)
		}
	}
}

func TestOpen_ReturnsEveryClearBodyAsItIs(t *testing.T) {
	var none *Keyring
	k := mustKeyring(t, testKey(1))
	// Every JSON text starts with one of these; none is the marker.
	for _, body := range []string{`{}`, `[]`, `"AAECAwQF"`, `"\u0000"`, `true`, `false`, `null`, `-1`, `0`, `9`, ``} {
		for _, ring := range []*Keyring{none, k} {
			got, err := ring.Open([]byte(body))
			if err != nil || string(got) != body {
				t.Errorf("Open(%q) = %q, %v", body, got, err)
			}
			if IsSealed([]byte(body)) {
				t.Errorf("%q is taken for an envelope", body)
			}
		}
	}
}

func TestOpen_AnotherNodesKeyIsNamedNotGuessed(t *testing.T) {
	sealed, err := mustKeyring(t, testKey(1)).Seal([]byte(`"s"`))
	if err != nil {
		t.Fatal(err)
	}
	var none *Keyring
	for name, ring := range map[string]*Keyring{"no key": none, "another key": mustKeyring(t, testKey(2))} {
		_, err := ring.Open(sealed)
		if !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("%s: Open error %v, want ErrUnknownKey", name, err)
		}
		if !strings.Contains(err.Error(), IDOf(testKey(1)).String()) {
			t.Fatalf("%s: the error does not name the key the body needs: %v", name, err)
		}
	}
}

func TestOpen_RotationOpensWhatEitherKeySealed(t *testing.T) {
	oldRing := mustKeyring(t, testKey(1))
	rotated := mustKeyring(t, testKey(2), testKey(1))
	byOld, _ := oldRing.Seal([]byte(`"old"`))
	byNew, _ := rotated.Seal([]byte(`"new"`))
	if id, _ := SealedKeyID(byNew); id != IDOf(testKey(2)) {
		t.Fatalf("the rotated keyring seals with %s, want its first key", id)
	}
	for body, sealed := range map[string][]byte{`"old"`: byOld, `"new"`: byNew} {
		if got, err := rotated.Open(sealed); err != nil || string(got) != body {
			t.Fatalf("Open = %q, %v; want %s", got, err, body)
		}
	}
	if _, err := oldRing.Open(byNew); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("a keyring without the new key opened its body: %v", err)
	}
}

func TestOpen_EveryAlteredByteIsRefused(t *testing.T) {
	k := mustKeyring(t, testKey(1))
	sealed, _ := k.Seal([]byte(`{"amount":100}`))
	for i := range sealed {
		if i == 0 {
			continue // the marker: without it the bytes are not an envelope
		}
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if got, err := k.Open(bad); err == nil {
			t.Fatalf("byte %d altered: Open = %q", i, got)
		} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("byte %d altered: error %v", i, err)
		}
	}
	for n := 1; n < len(sealed); n++ {
		if _, err := k.Open(sealed[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: error %v", n, err)
		}
	}
	if _, err := k.Open(append(bytes.Clone(sealed), '1')); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a byte after the envelope: error %v", err)
	}
}

func TestOpenPayload_OpensTheBodyTheStoreBuiltThePayloadAround(t *testing.T) {
	k := mustKeyring(t, testKey(1))
	sealed, _ := k.Seal([]byte(`{"k":"v"}`))
	// The store's payload around a sealed body (store.notificationPayload),
	// with a tail that could be mistaken for the end of the body.
	tail := `, "ttl": 300, "queue_name": "q", "Message_Type": "Notification"}`
	payload := append(append([]byte(`{"body": `), sealed...), tail...)
	got, err := k.OpenPayload(payload)
	if err != nil || string(got) != `{"body": {"k":"v"}`+tail {
		t.Fatalf("OpenPayload = %s, %v", got, err)
	}
	clear := []byte(`{"body": "x", "ttl": 60, "queue_name": "q", "Message_Type": "Notification"}`)
	if got, err := k.OpenPayload(clear); err != nil || !bytes.Equal(got, clear) {
		t.Fatalf("clear payload changed: %s, %v", got, err)
	}
	if _, err := mustKeyring(t, testKey(2)).OpenPayload(payload); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("another key: %v", err)
	}
	if _, err := k.OpenPayload(payload[:len(payload)-len(tail)-1]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated envelope: %v", err)
	}
}
