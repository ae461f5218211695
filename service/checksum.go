package service

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
)

// checksum returns "MD5:" and the MD5 of the body serialised the way
// Python's json.dumps does by default (contract §6.10), so it matches the
// reference byte for byte for ordinary bodies.
func checksum(body json.RawMessage) string {
	var buf bytes.Buffer
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := pythonJSON(&buf, dec); err != nil {
		buf.Reset()
		buf.Write(body)
	}
	sum := md5.Sum(buf.Bytes())
	return "MD5:" + hex.EncodeToString(sum[:])
}

func pythonJSON(w *bytes.Buffer, dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	return pythonValue(w, dec, tok)
}

func pythonValue(w *bytes.Buffer, dec *json.Decoder, tok json.Token) error {
	switch t := tok.(type) {
	case json.Delim:
		closer := byte('}')
		if t == '[' {
			closer = ']'
		}
		w.WriteByte(byte(t))
		first := true
		for dec.More() {
			if !first {
				w.WriteString(", ")
			}
			first = false
			if t == '{' {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				pythonString(w, fmt.Sprint(k))
				w.WriteString(": ")
			}
			if err := pythonJSON(w, dec); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
		w.WriteByte(closer)
	case string:
		pythonString(w, t)
	case json.Number:
		w.WriteString(pythonNumber(string(t)))
	case bool:
		w.WriteString(strconv.FormatBool(t))
	case nil:
		w.WriteString("null")
	}
	return nil
}

func pythonString(w *bytes.Buffer, s string) {
	w.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			w.WriteString(`\"`)
		case r == '\\':
			w.WriteString(`\\`)
		case r == '\n':
			w.WriteString(`\n`)
		case r == '\r':
			w.WriteString(`\r`)
		case r == '\t':
			w.WriteString(`\t`)
		case r == '\b':
			w.WriteString(`\b`)
		case r == '\f':
			w.WriteString(`\f`)
		case r >= 0x20 && r <= 0x7e:
			w.WriteRune(r)
		case r > 0xFFFF:
			a, b := utf16.EncodeRune(r)
			fmt.Fprintf(w, `\u%04x\u%04x`, a, b)
		default:
			fmt.Fprintf(w, `\u%04x`, r)
		}
	}
	w.WriteByte('"')
}

// pythonNumber renders a JSON number as Python re-serialises it: integers
// unchanged, floats in repr() form.
func pythonNumber(n string) string {
	if !strings.ContainsAny(n, ".eE") {
		return n
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil || math.IsInf(f, 0) {
		return n
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	if exp >= -4 && exp < 16 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	sign := "+"
	if exp < 0 {
		sign, exp = "-", -exp
	}
	return fmt.Sprintf("%se%s%02d", mant, sign, exp)
}
