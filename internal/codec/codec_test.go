package codec_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/zaqar-raft/zaqar/internal/codec"
)

func TestEncoder_RoundTripsEveryType(t *testing.T) {
	ints := []int64{0, 1, -1, 63, -64, 64, 1 << 40, math.MaxInt64, math.MinInt64}
	uints := []uint64{0, 1, 127, 128, 1 << 40, math.MaxUint64}
	strs := []string{"", "a", "\x00\xff", string(make([]byte, 300))}

	var e codec.Encoder
	for _, v := range ints {
		e.Varint(v)
		e.Int64(v)
	}
	for _, v := range uints {
		e.Uvarint(v)
		e.Uint64(v)
	}
	for _, s := range strs {
		e.String(s)
		e.Bytes([]byte(s))
	}
	e.Bool(true)
	e.Bool(false)
	e.Byte(0xAB)
	e.Strings(strs)
	e.Strings(nil)

	d := codec.NewDecoder(e.Buf)
	for _, v := range ints {
		if got := d.Varint(); got != v {
			t.Fatalf("Varint = %d, want %d", got, v)
		}
		if got := d.Int64(); got != v {
			t.Fatalf("Int64 = %d, want %d", got, v)
		}
	}
	for _, v := range uints {
		if got := d.Uvarint(); got != v {
			t.Fatalf("Uvarint = %d, want %d", got, v)
		}
		if got := d.Uint64(); got != v {
			t.Fatalf("Uint64 = %d, want %d", got, v)
		}
	}
	for _, s := range strs {
		if got := d.String(); got != s {
			t.Fatalf("String = %q, want %q", got, s)
		}
		if got := d.Bytes(); string(got) != s {
			t.Fatalf("Bytes = %q, want %q", got, s)
		}
	}
	if !d.Bool() || d.Bool() || d.Byte() != 0xAB {
		t.Fatal("Bool/Byte did not round trip")
	}
	if got := d.Strings(); !reflect.DeepEqual(got, strs) {
		t.Fatalf("Strings = %q, want %q", got, strs)
	}
	if got := d.Strings(); got != nil {
		t.Fatalf("empty Strings = %q, want nil", got)
	}
	if err := d.Done(); err != nil {
		t.Fatalf("Done: %v", err)
	}
}

func TestInt64_SortsAsUnsignedBigEndian(t *testing.T) {
	var a, b codec.Encoder
	a.Int64(1)
	b.Int64(256)
	if bytes.Compare(a.Buf, b.Buf) >= 0 || len(a.Buf) != 8 {
		t.Fatalf("fixed-width encodings %x and %x do not sort numerically", a.Buf, b.Buf)
	}
}

func TestDecoder_FirstErrorSticks(t *testing.T) {
	d := codec.NewDecoder([]byte{5, 'a'})
	if s := d.String(); s != "" || !errors.Is(d.Err(), codec.ErrShort) {
		t.Fatalf("String over 1 of 5 bytes = %q, err %v; want ErrShort", s, d.Err())
	}
	first := d.Err()
	if d.Byte() != 0 || d.Uvarint() != 0 || d.Varint() != 0 || d.Uint64() != 0 || d.Bool() || d.Bytes() != nil || d.Strings() != nil || d.Count(1) != 0 || d.Len() != 0 {
		t.Fatal("reads after a failure returned non-zero values")
	}
	if d.Err() != first || d.Done() != first || len(d.Remaining()) != 0 {
		t.Fatalf("error changed from %v to %v / %v", first, d.Err(), d.Done())
	}
}

func TestDecoder_RejectsMalformedInput(t *testing.T) {
	overflow := bytes.Repeat([]byte{0xFF}, 10)
	overflow = append(overflow, 0x01)
	tests := []struct {
		name string
		in   []byte
		read func(d *codec.Decoder)
	}{
		{"empty byte", nil, func(d *codec.Decoder) { d.Byte() }},
		{"bool of 2", []byte{2}, func(d *codec.Decoder) { d.Bool() }},
		{"bool of 0xFF", []byte{0xFF}, func(d *codec.Decoder) { d.Bool() }},
		{"unterminated uvarint", []byte{0x80, 0x80}, func(d *codec.Decoder) { d.Uvarint() }},
		{"overflowing uvarint", overflow, func(d *codec.Decoder) { d.Uvarint() }},
		{"overflowing varint", overflow, func(d *codec.Decoder) { d.Varint() }},
		{"short uint64", []byte{1, 2, 3, 4, 5, 6, 7}, func(d *codec.Decoder) { d.Uint64() }},
		{"length past the end", []byte{3, 'a', 'b'}, func(d *codec.Decoder) { d.Bytes() }},
		{"huge length", append([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0x0F}, 'x'), func(d *codec.Decoder) { d.Len() }},
		{"count past the end", []byte{3, 0, 0}, func(d *codec.Decoder) { d.Count(1) }},
		{"count past the end for wide elements", []byte{2, 0, 0, 0}, func(d *codec.Decoder) { d.Count(3) }},
		{"strings count past the end", []byte{200, 1, 0}, func(d *codec.Decoder) { d.Strings() }},
		{"trailing bytes", []byte{1, 2}, func(d *codec.Decoder) { d.Byte() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := codec.NewDecoder(tc.in)
			tc.read(d)
			if d.Done() == nil {
				t.Fatal("malformed input accepted")
			}
		})
	}
}

func TestDecoder_CountAcceptsWhatFits(t *testing.T) {
	d := codec.NewDecoder([]byte{2, 0, 0, 0, 0})
	if n := d.Count(2); n != 2 || d.Err() != nil {
		t.Fatalf("Count(2) over 4 bytes = %d, %v", n, d.Err())
	}
	d = codec.NewDecoder([]byte{1, 0})
	if n := d.Count(0); n != 1 || d.Err() != nil {
		t.Fatalf("Count(0) = %d, %v; a minimum below 1 counts as 1", n, d.Err())
	}
}

func TestDecoder_BytesAliasesInputAndCannotGrowIntoIt(t *testing.T) {
	in := []byte{2, 'a', 'b', 'c'}
	d := codec.NewDecoder(in)
	b := d.Bytes()
	if string(b) != "ab" || cap(b) != 2 {
		t.Fatalf("Bytes = %q cap %d, want \"ab\" cap 2", b, cap(b))
	}
	_ = append(b, 'X')
	if in[3] != 'c' {
		t.Fatal("appending to a decoded slice overwrote the input")
	}
	if string(d.Remaining()) != "c" {
		t.Fatalf("Remaining = %q", d.Remaining())
	}
}

// FuzzDecoder drives a decoder over arbitrary input with an arbitrary
// sequence of reads. No read may panic, hand out more than the input holds,
// or recover after a failure.
func FuzzDecoder(f *testing.F) {
	var e codec.Encoder
	e.Uvarint(3)
	e.String("abc")
	e.Strings([]string{"x", "yz"})
	e.Int64(-5)
	e.Bool(true)
	f.Add([]byte{1, 7, 9, 10, 2, 6}, e.Buf)
	f.Add([]byte{8, 8, 8}, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0x0F})
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, []byte{})
	f.Fuzz(func(t *testing.T, ops, in []byte) {
		d := codec.NewDecoder(in)
		var failed error
		for _, op := range ops {
			before := len(d.Remaining())
			switch op % 12 {
			case 0:
				d.Byte()
			case 1:
				d.Bool()
			case 2:
				d.Uvarint()
			case 3:
				d.Varint()
			case 4:
				d.Uint64()
			case 5:
				d.Int64()
			case 6:
				if n := d.Len(); n > before {
					t.Fatalf("Len = %d with %d bytes left", n, before)
				}
			case 7:
				if n, m := d.Count(int(op>>4)), max(int(op>>4), 1); n > before/m {
					t.Fatalf("Count(%d) = %d with %d bytes left", m, n, before)
				}
			case 8:
				if b := d.Bytes(); len(b) > before || cap(b) != len(b) {
					t.Fatalf("Bytes of len %d cap %d with %d bytes left", len(b), cap(b), before)
				}
			case 9:
				if s := d.String(); len(s) > before {
					t.Fatalf("String of %d bytes with %d left", len(s), before)
				}
			case 10:
				if ss := d.Strings(); len(ss) > before {
					t.Fatalf("Strings of %d with %d bytes left", len(ss), before)
				}
			case 11:
				d.Done()
			}
			if len(d.Remaining()) > before {
				t.Fatal("input grew")
			}
			if failed != nil && d.Err() != failed {
				t.Fatalf("error changed from %v to %v", failed, d.Err())
			}
			if failed == nil && d.Err() != nil {
				failed = d.Err()
				if len(d.Remaining()) != 0 {
					t.Fatal("input left after a failure")
				}
			}
		}
	})
}

func TestDone_TrailingBytesFailLaterReads(t *testing.T) {
	d := codec.NewDecoder([]byte{1, 2, 3})
	d.Byte()
	if err := d.Done(); err == nil {
		t.Fatal("Done with two bytes left = nil")
	}
	if b := d.Byte(); b != 0 || len(d.Remaining()) != 0 {
		t.Fatalf("read after Done failed returned %d with %d bytes left", b, len(d.Remaining()))
	}
}
