package wsapi

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// maxMsgpackDepth bounds the nesting of maps and arrays in a MessagePack
// frame (the outer map counts).
const maxMsgpackDepth = 1024

// msgpackReader translates one MessagePack document into JSON text, byte
// by byte, so that nothing is lost or made up on the way: every map key is
// checked against the keys before it, extension types (which have no JSON
// form) are refused, and so are bytes left after the document. A decoder
// into Go maps would keep the last of two equal keys, turn extensions into
// structs and stop at the end of the first document.
type msgpackReader struct {
	in  []byte
	pos int
	out []byte
}

// msgpackToJSON returns the JSON text of frame, which must hold exactly one
// MessagePack document. Map keys must be strings (str or bin); bin values
// become strings; NaN and infinite floats become null.
func msgpackToJSON(frame []byte) ([]byte, error) {
	r := &msgpackReader{in: frame, out: make([]byte, 0, 2*len(frame))}
	if err := r.value(0); err != nil {
		return nil, err
	}
	if r.pos < len(r.in) {
		return nil, fmt.Errorf("ExtraData: extra data after the object (from byte %d of %d)", r.pos, len(r.in))
	}
	return r.out, nil
}

// errTruncated is a document that ends early.
var errTruncated = errors.New("UnpackValueError: the data ends inside an object")

// take returns the next n bytes.
func (r *msgpackReader) take(n int) ([]byte, error) {
	if n < 0 || n > len(r.in)-r.pos {
		return nil, errTruncated
	}
	b := r.in[r.pos : r.pos+n]
	r.pos += n
	return b, nil
}

// size reads a big-endian length of width 1, 2 or 4 bytes.
func (r *msgpackReader) size(width int) (int, error) {
	b, err := r.take(width)
	if err != nil {
		return 0, err
	}
	switch width {
	case 1:
		return int(b[0]), nil
	case 2:
		return int(binary.BigEndian.Uint16(b)), nil
	default:
		return int(binary.BigEndian.Uint32(b)), nil
	}
}

// value translates the value at r.pos, nested depth containers deep.
func (r *msgpackReader) value(depth int) error {
	tb, err := r.take(1)
	if err != nil {
		return err
	}
	switch t := tb[0]; {
	case t <= 0x7f:
		r.out = strconv.AppendInt(r.out, int64(t), 10)
	case t >= 0xe0:
		r.out = strconv.AppendInt(r.out, int64(int8(t)), 10)
	case t >= 0x80 && t <= 0x8f:
		return r.object(int(t&0x0f), depth)
	case t >= 0x90 && t <= 0x9f:
		return r.array(int(t&0x0f), depth)
	case t >= 0xa0 && t <= 0xbf:
		return r.text(int(t & 0x1f))
	default:
		return r.typed(t, depth)
	}
	return nil
}

// typed translates a value whose type byte is 0xc0..0xdf.
func (r *msgpackReader) typed(t byte, depth int) error {
	switch t {
	case 0xc0:
		r.out = append(r.out, "null"...)
	case 0xc2:
		r.out = append(r.out, "false"...)
	case 0xc3:
		r.out = append(r.out, "true"...)
	case 0xc4, 0xc5, 0xc6: // bin 8/16/32: read as a string
		n, err := r.size(1 << (t - 0xc4))
		if err != nil {
			return err
		}
		return r.text(n)
	case 0xd9, 0xda, 0xdb: // str 8/16/32
		n, err := r.size(1 << (t - 0xd9))
		if err != nil {
			return err
		}
		return r.text(n)
	case 0xca:
		b, err := r.take(4)
		if err != nil {
			return err
		}
		r.float(float64(math.Float32frombits(binary.BigEndian.Uint32(b))))
	case 0xcb:
		b, err := r.take(8)
		if err != nil {
			return err
		}
		r.float(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case 0xcc, 0xcd, 0xce, 0xcf: // uint 8/16/32/64
		b, err := r.take(1 << (t - 0xcc))
		if err != nil {
			return err
		}
		r.out = strconv.AppendUint(r.out, bigEndian(b), 10)
	case 0xd0, 0xd1, 0xd2, 0xd3: // int 8/16/32/64
		b, err := r.take(1 << (t - 0xd0))
		if err != nil {
			return err
		}
		shift := 64 - 8*len(b) // sign-extend
		r.out = strconv.AppendInt(r.out, int64(bigEndian(b)<<shift)>>shift, 10)
	case 0xdc, 0xdd: // array 16/32
		n, err := r.size(2 << (t - 0xdc))
		if err != nil {
			return err
		}
		return r.array(n, depth)
	case 0xde, 0xdf: // map 16/32
		n, err := r.size(2 << (t - 0xde))
		if err != nil {
			return err
		}
		return r.object(n, depth)
	case 0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return r.extension(t)
	default: // 0xc1 is never used
		return fmt.Errorf("UnpackValueError: invalid type byte 0x%02x", t)
	}
	return nil
}

// extension refuses an extension value (ext 8/16/32, fixext 1..16): JSON
// has no form for it, and a timestamp or an application type read as
// something else would change what the client sent.
func (r *msgpackReader) extension(t byte) error {
	if t >= 0xc7 && t <= 0xc9 {
		if _, err := r.size(1 << (t - 0xc7)); err != nil {
			return err
		}
	}
	tag, err := r.take(1)
	if err != nil {
		return err
	}
	return fmt.Errorf("ValueError: MessagePack extension type %d is not supported", int8(tag[0]))
}

func bigEndian(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// float writes f as encoding/json does; NaN and infinities, which JSON
// cannot carry, become null.
func (r *msgpackReader) float(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		r.out = append(r.out, "null"...)
		return
	}
	b, _ := json.Marshal(f)
	r.out = append(r.out, b...)
}

// text writes the next n bytes as a JSON string (invalid UTF-8 becomes
// U+FFFD, as encoding/json writes it).
func (r *msgpackReader) text(n int) error {
	b, err := r.take(n)
	if err != nil {
		return err
	}
	s, _ := json.Marshal(string(b))
	r.out = append(r.out, s...)
	return nil
}

// key reads a map key, which must be a str or bin.
func (r *msgpackReader) key() (string, error) {
	tb, err := r.take(1)
	if err != nil {
		return "", err
	}
	n := 0
	switch t := tb[0]; {
	case t >= 0xa0 && t <= 0xbf:
		n = int(t & 0x1f)
	case t == 0xd9 || t == 0xda || t == 0xdb:
		n, err = r.size(1 << (t - 0xd9))
	case t == 0xc4 || t == 0xc5 || t == 0xc6:
		n, err = r.size(1 << (t - 0xc4))
	default:
		return "", errors.New("UnpackValueError: map keys must be strings")
	}
	if err != nil {
		return "", err
	}
	b, err := r.take(n)
	return string(b), err
}

// enter checks that n members of a container at depth can exist: each
// takes at least one byte, so a length beyond the bytes left is a lie
// that must not size an allocation.
func (r *msgpackReader) enter(n, depth int) error {
	if depth >= maxMsgpackDepth {
		return fmt.Errorf("UnpackValueError: nesting deeper than %d", maxMsgpackDepth)
	}
	if n > len(r.in)-r.pos {
		return errTruncated
	}
	return nil
}

func (r *msgpackReader) array(n, depth int) error {
	if err := r.enter(n, depth); err != nil {
		return err
	}
	r.out = append(r.out, '[')
	for i := 0; i < n; i++ {
		if i > 0 {
			r.out = append(r.out, ',')
		}
		if err := r.value(depth + 1); err != nil {
			return err
		}
	}
	r.out = append(r.out, ']')
	return nil
}

func (r *msgpackReader) object(n, depth int) error {
	if err := r.enter(2*n, depth); err != nil {
		return err
	}
	seen := make(map[string]bool, n)
	r.out = append(r.out, '{')
	for i := 0; i < n; i++ {
		if i > 0 {
			r.out = append(r.out, ',')
		}
		k, err := r.key()
		if err != nil {
			return err
		}
		// Compare the keys as written in JSON: two different invalid
		// UTF-8 keys both become "\ufffd".
		s, _ := json.Marshal(k)
		if seen[string(s)] {
			return fmt.Errorf("ValueError: duplicate key %s", s)
		}
		seen[string(s)] = true
		r.out = append(append(r.out, s...), ':')
		if err := r.value(depth + 1); err != nil {
			return err
		}
	}
	r.out = append(r.out, '}')
	return nil
}
