package jsonx_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/zaqar-raft/zaqar/internal/jsonx"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"object", `{"a": [1, 2, {"b": null}], "c": "d"}`, nil},
		{"scalar", `42`, nil},
		{"string", `"x"`, nil},
		{"whitespace around", " \n\t{}\r\n ", nil},
		{"max int64", `{"n": 9223372036854775807}`, nil},
		{"min int64", `[-9223372036854775808]`, nil},
		{"int64 max plus one", `{"n": 9223372036854775808}`, jsonx.ErrIntegerTooLarge},
		{"int64 min minus one", `[-9223372036854775809]`, jsonx.ErrIntegerTooLarge},
		{"huge integer deep inside", `{"a":[{"b":[1,2,{"c":123456789012345678901234567890}]}]}`, jsonx.ErrIntegerTooLarge},
		{"huge integer as a top-level value", `99999999999999999999`, jsonx.ErrIntegerTooLarge},
		{"huge float is fine", `[1.5e300, 123456789012345678901234567890.0, 1E400]`, nil},
		{"huge number inside a string is fine", `{"n": "123456789012345678901234567890"}`, nil},
		{"escaped quote before digits in a string", `["\"12345678901234567890123", "\\", 1]`, nil},
		{"huge integer as a key is fine", `{"123456789012345678901234567890": 1}`, nil},
		{"huge integer after an escaped string", `["a\"b", 123456789012345678901234567890]`, jsonx.ErrIntegerTooLarge},
		{"nineteen digits that fit", `1000000000000000000`, nil},
		{"empty", ``, jsonx.ErrInvalid},
		{"only whitespace", `   `, jsonx.ErrInvalid},
		{"syntax error", `{"a":}`, jsonx.ErrInvalid},
		{"two documents", `{} {}`, jsonx.ErrInvalid},
		{"trailing comma", `[1,]`, jsonx.ErrInvalid},
		{"leading zero", `01`, jsonx.ErrInvalid},
		{"plus sign", `+1`, jsonx.ErrInvalid},
		{"NaN", `NaN`, jsonx.ErrInvalid},
		{"invalid UTF-8 in a string", "{\"a\": \"\xff\"}", jsonx.ErrInvalid},
		{"invalid UTF-8 after the document", "{}\xff", jsonx.ErrInvalid},
		{"byte order mark", "\xef\xbb\xbf{}", jsonx.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := jsonx.Check([]byte(tc.in)); !errors.Is(got, tc.want) || (tc.want == nil && got != nil) {
				t.Fatalf("Check(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestKind(t *testing.T) {
	tests := map[string]byte{
		`{"a":1}`: '{', ` [1]`: '[', "\n\"s\"": '"', `null`: 'n', `true`: 't', `false`: 'f',
		`-1`: '0', `3.5`: '0', ``: 0, "  \t": 0,
	}
	for in, want := range tests {
		if got := jsonx.Kind([]byte(in)); got != want {
			t.Errorf("Kind(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCompact(t *testing.T) {
	if got := string(jsonx.Compact([]byte("{ \"a\" : [ 1 , \"b c\" ] ,\n \"d\":null }"))); got != `{"a":[1,"b c"],"d":null}` {
		t.Fatalf("Compact = %s", got)
	}
	bad := []byte(`{"a":`)
	if got := jsonx.Compact(bad); !bytes.Equal(got, bad) {
		t.Fatalf("Compact of invalid JSON = %q, want the input back", got)
	}
}

// FuzzCheck compares Check with an independent oracle: encoding/json for
// validity, and a decode with UseNumber for the integer range.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,2,{"b":null}],"c":"d"}`, `9223372036854775807`, `9223372036854775808`, `-9223372036854775809`,
		`["\"1234567890123456789012", 12345678901234567890123]`, `1e400`, `{"k\\":"v"}`, "\"\xff\"", `[1,]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := jsonx.Check(b)
		if !utf8.Valid(b) || !json.Valid(b) {
			if got != jsonx.ErrInvalid {
				t.Fatalf("Check(%q) = %v, want ErrInvalid", b, got)
			}
			return
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var v interface{}
		if err := d.Decode(&v); err != nil {
			t.Fatalf("valid JSON %q does not decode: %v", b, err)
		}
		var want error
		if hasHugeInteger(v) {
			want = jsonx.ErrIntegerTooLarge
		}
		if got != want {
			t.Fatalf("Check(%q) = %v, want %v", b, got, want)
		}
	})
}

func hasHugeInteger(v interface{}) bool {
	switch v := v.(type) {
	case json.Number:
		s := string(v)
		if strings.ContainsAny(s, ".eE") {
			return false
		}
		_, err := strconv.ParseInt(s, 10, 64)
		return err != nil
	case []interface{}:
		for _, e := range v {
			if hasHugeInteger(e) {
				return true
			}
		}
	case map[string]interface{}:
		for _, e := range v {
			if hasHugeInteger(e) {
				return true
			}
		}
	}
	return false
}
