package wsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

func TestMsgpack_TranslatesEveryTypeToTheJSONItMeans(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"fixints", []byte{0x93, 0x00, 0x7f, 0xff}, `[0,127,-1]`},
		{"negative fixint bound", []byte{0xe0}, `-32`},
		{"nil and booleans", []byte{0x93, 0xc0, 0xc2, 0xc3}, `[null,false,true]`},
		{"unsigned widths", []byte{0x94, 0xcc, 0xff, 0xcd, 0xff, 0xff, 0xce, 0xff, 0xff, 0xff, 0xff, 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			`[255,65535,4294967295,9223372036854775807]`},
		{"uint64 beyond int64 stays exact", []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, `18446744073709551615`},
		{"signed widths", []byte{0x94, 0xd0, 0x80, 0xd1, 0x80, 0x00, 0xd2, 0x80, 0x00, 0x00, 0x00, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0},
			`[-128,-32768,-2147483648,-9223372036854775808]`},
		{"floats", []byte{0x92, 0xca, 0x3f, 0xc0, 0x00, 0x00, 0xcb, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a}, `[1.5,0.1]`},
		{"NaN and infinity become null", []byte{0x92, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1, 0xca, 0x7f, 0x80, 0x00, 0x00}, `[null,null]`},
		{"strings of every width", []byte{0x93, 0xa1, 'a', 0xd9, 0x01, 'b', 0xda, 0x00, 0x01, 'c'}, `["a","b","c"]`},
		{"str 32", []byte{0xdb, 0, 0, 0, 2, 'h', 'i'}, `"hi"`},
		{"bin is a string", []byte{0x92, 0xc4, 0x01, 'x', 0xc5, 0x00, 0x01, 'y'}, `["x","y"]`},
		{"escapes and invalid UTF-8", []byte{0xa4, '"', '\n', 0xff, '<'}, `"\"\n\ufffd\u003c"`},
		{"maps keep their order", []byte{0x82, 0xa1, 'b', 0x01, 0xc4, 0x01, 'a', 0x90}, `{"b":1,"a":[]}`},
		{"map 16 and array 16", []byte{0xde, 0x00, 0x01, 0xa1, 'k', 0xdc, 0x00, 0x01, 0x80}, `{"k":[{}]}`},
		{"map 32 and array 32", []byte{0xdf, 0, 0, 0, 1, 0xa1, 'k', 0xdd, 0, 0, 0, 0}, `{"k":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := msgpackToJSON(tc.in)
			if err != nil || string(got) != tc.want {
				t.Fatalf("msgpackToJSON(% x) = %s, %v; want %s", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestMsgpack_RefusesWhatJSONCannotCarryOrWouldLose(t *testing.T) {
	nested := func(depth int) []byte { return append(bytes.Repeat([]byte{0x91}, depth-1), 0x90) }
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"fixext 1", []byte{0x81, 0xa1, 'e', 0xd4, 0x05, 0x01}, "ValueError: MessagePack extension type 5 is not supported"},
		{"fixext 16", append([]byte{0xd8, 0x7f}, make([]byte, 16)...), "ValueError: MessagePack extension type 127 is not supported"},
		{"ext 8", []byte{0x91, 0xc7, 0x01, 0x02, 0x00}, "ValueError: MessagePack extension type 2 is not supported"},
		{"ext 32", []byte{0xc9, 0, 0, 0, 0, 0x80}, "ValueError: MessagePack extension type -128 is not supported"},
		{"a timestamp", []byte{0xd6, 0xff, 0, 0, 0, 1}, "ValueError: MessagePack extension type -1 is not supported"},
		{"duplicate top-level keys", []byte{0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02}, `ValueError: duplicate key "a"`},
		{"a bin and a str key that are equal", []byte{0x82, 0xc4, 0x01, 'a', 0x01, 0xa1, 'a', 0x02}, `ValueError: duplicate key "a"`},
		{"invalid UTF-8 keys that read alike", []byte{0x82, 0xa1, 0xff, 0x01, 0xa1, 0xfe, 0x02}, `ValueError: duplicate key "\ufffd"`},
		{"duplicate nested keys", []byte{0x81, 0xa1, 'b', 0x91, 0x82, 0xa1, 'k', 0xc0, 0xa1, 'k', 0xc0}, `ValueError: duplicate key "k"`},
		{"trailing bytes", []byte{0x80, 0x00}, "ExtraData: extra data after the object (from byte 1 of 2)"},
		{"a second document", []byte{0x81, 0xa1, 'a', 0x01, 0x81, 0xa1, 'a', 0x02}, "ExtraData: extra data after the object (from byte 4 of 8)"},
		{"an integer key", []byte{0x81, 0x01, 0x01}, "UnpackValueError: map keys must be strings"},
		{"a nil key", []byte{0x81, 0xc0, 0x01}, "UnpackValueError: map keys must be strings"},
		{"the unused type byte", []byte{0xc1}, "UnpackValueError: invalid type byte 0xc1"},
		{"nothing", nil, "UnpackValueError: the data ends inside an object"},
		{"a truncated string", []byte{0xa5, 'a'}, "UnpackValueError: the data ends inside an object"},
		{"a truncated integer", []byte{0xcf, 0x01}, "UnpackValueError: the data ends inside an object"},
		{"an array longer than the frame", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, "UnpackValueError: the data ends inside an object"},
		{"a map longer than the frame", []byte{0xdf, 0x7f, 0xff, 0xff, 0xff, 0xc0}, "UnpackValueError: the data ends inside an object"},
		{"nesting past 1024", nested(1025), "UnpackValueError: nesting deeper than 1024"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := msgpackToJSON(tc.in)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("msgpackToJSON(% x) = %s, %v; want the error %q", tc.in, got, err, tc.want)
			}
		})
	}
	if _, err := msgpackToJSON(nested(1024)); err != nil {
		t.Fatalf("nesting of 1024 refused: %v", err)
	}
}

// FuzzMsgpackToJSON checks the MessagePack reader against go-msgpack: a
// document the reader accepts must be one go-msgpack decodes (unless only
// its depth limit, one level lower, stops it) to the same value, with no
// bytes left over.
func FuzzMsgpackToJSON(f *testing.F) {
	for _, seed := range [][]byte{
		{0x81, 0xa6, 'a', 'c', 't', 'i', 'o', 'n', 0xaa, 'q', 'u', 'e', 'u', 'e', '_', 'l', 'i', 's', 't'},
		{0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02},
		{0x81, 0xa1, 'e', 0xd4, 0x05, 0x01},
		{0x80, 0x00},
		{0x93, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1, 0xca, 0x3f, 0xc0, 0x00, 0x00, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0},
		{0x82, 0xc4, 0x01, 'a', 0x01, 0xa1, 'a', 0x02},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, err := msgpackToJSON(frame)
		if err != nil {
			return
		}
		if !json.Valid(got) {
			t.Fatalf("accepted % x as invalid JSON %s", frame, got)
		}
		want, more, oerr := oracleMsgpack(frame)
		if oerr != nil {
			if strings.Contains(oerr.Error(), "depth") {
				return
			}
			t.Fatalf("accepted % x as %s; go-msgpack refuses it: %v", frame, got, oerr)
		}
		if more {
			t.Fatalf("accepted % x as %s; go-msgpack finds more after the document", frame, got)
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("% x reads as %s; go-msgpack reads %s", frame, got, want)
		}
	})
}

// oracleMsgpack decodes frame with go-msgpack as this package did before,
// and returns the JSON of the value and whether anything follows it.
func oracleMsgpack(frame []byte) ([]byte, bool, error) {
	h := &codec.MsgpackHandle{}
	h.MapType = reflect.TypeOf(map[string]any(nil))
	h.RawToString = true
	var v, next any
	dec := codec.NewDecoderBytes(frame, h)
	if err := dec.Decode(&v); err != nil {
		return nil, false, err
	}
	more := !errors.Is(dec.Decode(&next), io.EOF)
	b, err := json.Marshal(oracleNormalize(v))
	return b, more, err
}

func oracleNormalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = oracleNormalize(e)
		}
	case []any:
		for i, e := range t {
			t[i] = oracleNormalize(e)
		}
	case []byte:
		return string(t)
	case float32:
		return oracleNormalize(float64(t))
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil
		}
	}
	return v
}
