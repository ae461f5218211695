package bodycrypt

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpen feeds arbitrary stored bodies and notification payloads to the
// opening paths, which read what the store holds (a damaged disk, a
// restored backup): they must never panic, must return clear input
// untouched, and must open only what authenticates.
func FuzzOpen(f *testing.F) {
	k := mustKeyring(f, testKey(1), testKey(2))
	for _, body := range []string{`{"a":1}`, `"x"`, `null`} {
		sealed, err := k.Seal([]byte(body))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sealed)
		f.Add(append([]byte(`{"body": `), append(sealed, `, "ttl": 60, "queue_name": "q", "Message_Type": "Notification"}`...)...))
	}
	f.Add([]byte{Marker})
	f.Add([]byte{Marker, FormatGCM, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte(`{"body": ` + "\x00\x01"))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		plain, err := k.Open(in)
		switch {
		case !IsSealed(in):
			if err != nil || !bytes.Equal(plain, in) {
				t.Fatalf("clear input changed: %q, %v", plain, err)
			}
		case err == nil:
			// Only a whole, authentic envelope opens.
			if len(in) != len(plain)+Overhead || in[1] != FormatGCM {
				t.Fatalf("opened %d bytes into %d", len(in), len(plain))
			}
		case !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownKey):
			t.Fatalf("unclassified error %v", err)
		}
		out, err := k.OpenPayload(in)
		if err == nil && !bytes.HasPrefix(in, payloadBody) && !bytes.Equal(out, in) {
			t.Fatalf("a payload of another shape changed: %q", out)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("unclassified payload error %v", err)
		}
	})
}
