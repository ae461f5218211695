package wsapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// FuzzDecodeRequest feeds arbitrary frames, as JSON text and as
// MessagePack binary, to the frame decoder. It must never panic; a frame
// it rejects must be a frame-level error; a frame it accepts must yield a
// request whose echo is a valid JSON object with exactly the four echo
// keys, a response carrying that echo must encode in the frame's encoding
// (and a MessagePack response must decode back to the same document), and
// checking the body against every action's fields must not panic either.
// Seeds are in testdata/fuzz/FuzzDecodeRequest.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(false, []byte(`{"action": "queue_list", "headers": {"Client-ID": "3381af922b9e11e3b191718613007343", "X-Project-ID": "p"}}`))
	f.Add(true, []byte{0x81, 0xa6, 'a', 'c', 't', 'i', 'o', 'n', 0xa1, 'x'})
	f.Fuzz(func(t *testing.T, binary bool, frame []byte) {
		enc := JSON
		if binary {
			enc = MsgPack
		}
		req, err := DecodeRequest(enc, frame)
		if err != nil {
			var fe *frameError
			if !errors.As(err, &fe) || fe.msg == "" {
				t.Fatalf("rejected with %T %v, want a frame-level error", err, err)
			}
			return
		}
		echo := req.echo()
		var parts map[string]json.RawMessage
		if err := json.Unmarshal(echo, &parts); err != nil {
			t.Fatalf("echo is not a JSON object (%v): %s", err, echo)
		}
		if len(parts) != 4 || string(parts["api"]) != `"v2"` || parts["action"] == nil || parts["body"] == nil || parts["headers"] == nil {
			t.Fatalf("echo %s lacks action/body/headers/api", echo)
		}

		doc := []byte(fmt.Sprintf(`{"request":%s,"headers":{"status":400},"body":{"error":"x"}}`, echo))
		out, err := encodeFrame(enc, doc)
		if err != nil {
			t.Fatalf("response with echo %s does not encode as %s: %v", echo, enc, err)
		}
		if enc == MsgPack {
			back, err := DecodeMsgPack(out)
			if err != nil {
				t.Fatalf("MessagePack response does not decode: %v", err)
			}
			var want, got any
			_ = json.Unmarshal(doc, &want)
			if err := json.Unmarshal(back, &got); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("MessagePack response decodes to %s, want %s", back, doc)
			}
		}

		for name, a := range actions {
			c := &call{name: name, raw: req.Body}
			if c.decodeBody(a) != "" {
				continue
			}
			for field, k := range a.fields {
				switch k {
				case kString:
					_ = c.str(field)
				case kInt:
					_ = c.int(field)
				case kBool:
					_ = c.boolean(field)
				case kStrings:
					_ = c.strings(field)
				}
			}
		}
	})
}
