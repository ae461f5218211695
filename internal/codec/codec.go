// Package codec is the small binary encoding shared by Raft commands, their
// results and the store's records: varints, fixed-width integers and
// length-prefixed byte strings appended to a byte slice, and a decoder that
// remembers its first error so callers check once at the end.
//
// The encoding is not self-describing: a reader must know the layout it reads.
// Every layout that reaches disk or the Raft log begins with a version byte
// owned by the package that defines it.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrShort is returned when a decoder runs out of input.
var ErrShort = errors.New("codec: input too short")

// Encoder appends values to Buf. The zero value is ready to use.
type Encoder struct {
	Buf []byte
}

// Byte appends one byte.
func (e *Encoder) Byte(b byte) { e.Buf = append(e.Buf, b) }

// Bool appends a boolean as one byte.
func (e *Encoder) Bool(v bool) {
	if v {
		e.Buf = append(e.Buf, 1)
	} else {
		e.Buf = append(e.Buf, 0)
	}
}

// Uvarint appends an unsigned varint.
func (e *Encoder) Uvarint(v uint64) { e.Buf = binary.AppendUvarint(e.Buf, v) }

// Varint appends a signed (zig-zag) varint.
func (e *Encoder) Varint(v int64) { e.Buf = binary.AppendVarint(e.Buf, v) }

// Uint64 appends a fixed-width big-endian uint64.
func (e *Encoder) Uint64(v uint64) { e.Buf = binary.BigEndian.AppendUint64(e.Buf, v) }

// Int64 appends a fixed-width big-endian int64.
func (e *Encoder) Int64(v int64) { e.Uint64(uint64(v)) }

// Bytes appends a length-prefixed byte string.
func (e *Encoder) Bytes(b []byte) {
	e.Uvarint(uint64(len(b)))
	e.Buf = append(e.Buf, b...)
}

// String appends a length-prefixed string.
func (e *Encoder) String(s string) {
	e.Uvarint(uint64(len(s)))
	e.Buf = append(e.Buf, s...)
}

// Strings appends a count followed by each string.
func (e *Encoder) Strings(ss []string) {
	e.Uvarint(uint64(len(ss)))
	for _, s := range ss {
		e.String(s)
	}
}

// Decoder reads values from a byte slice. After the first failure every
// further read returns a zero value; Err reports that first failure.
type Decoder struct {
	buf []byte
	err error
}

// NewDecoder returns a decoder over b. It does not copy b.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// Err returns the first error met, if any.
func (d *Decoder) Err() error { return d.err }

// Remaining returns the bytes not yet read.
func (d *Decoder) Remaining() []byte { return d.buf }

// Done returns the first error, or an error if input is left over. Left
// over input is a failure like any other: later reads return zero values.
func (d *Decoder) Done() error {
	if d.err == nil && len(d.buf) != 0 {
		d.fail(fmt.Errorf("codec: %d trailing bytes", len(d.buf)))
	}
	return d.err
}

func (d *Decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.buf = nil
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if len(d.buf) < 1 {
		d.fail(ErrShort)
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

// Bool reads a boolean byte; any value other than 0 or 1 is an error.
func (d *Decoder) Bool() bool {
	switch d.Byte() {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail(errors.New("codec: invalid bool"))
		return false
	}
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail(errors.New("codec: bad uvarint"))
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// Varint reads a signed varint.
func (d *Decoder) Varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail(errors.New("codec: bad varint"))
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// Uint64 reads a fixed-width big-endian uint64.
func (d *Decoder) Uint64() uint64 {
	if len(d.buf) < 8 {
		d.fail(ErrShort)
		return 0
	}
	v := binary.BigEndian.Uint64(d.buf)
	d.buf = d.buf[8:]
	return v
}

// Int64 reads a fixed-width big-endian int64.
func (d *Decoder) Int64() int64 { return int64(d.Uint64()) }

// Len reads a uvarint length and checks it against the remaining input, so a
// corrupt length can never cause a huge allocation.
func (d *Decoder) Len() int {
	n := d.Uvarint()
	if n > uint64(len(d.buf)) || n > math.MaxInt32 {
		d.fail(ErrShort)
		return 0
	}
	return int(n)
}

// Count reads a uvarint element count; each element takes at least minSize
// bytes, which bounds the count by the remaining input.
func (d *Decoder) Count(minSize int) int {
	n := d.Uvarint()
	if minSize < 1 {
		minSize = 1
	}
	if n > uint64(len(d.buf)/minSize) {
		d.fail(ErrShort)
		return 0
	}
	return int(n)
}

// Bytes reads a length-prefixed byte string. The result aliases the input.
func (d *Decoder) Bytes() []byte {
	n := d.Len()
	if d.err != nil {
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}

// String reads a length-prefixed string (copied).
func (d *Decoder) String() string { return string(d.Bytes()) }

// Strings reads a count followed by that many strings.
func (d *Decoder) Strings() []string {
	n := d.Count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.String()
	}
	return out
}
