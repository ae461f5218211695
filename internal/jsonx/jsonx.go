// Package jsonx checks request documents the way Zaqar does before any field
// is looked at: valid UTF-8, valid JSON, and no integer outside the signed
// 64-bit range anywhere in the document.
package jsonx

import (
	"bytes"
	"errors"
	"strconv"
	"unicode/utf8"

	"encoding/json"
)

// Errors returned by Check. Callers map them to Zaqar's 400 bodies.
var (
	// ErrInvalid means the bytes are not valid UTF-8 JSON.
	ErrInvalid = errors.New("request body could not be parsed")
	// ErrIntegerTooLarge means an integer literal does not fit in int64.
	ErrIntegerTooLarge = errors.New("JSON contains integer that is too large")
)

// Check validates b as a JSON document and rejects integers outside int64.
func Check(b []byte) error {
	if !utf8.Valid(b) || !json.Valid(b) {
		return ErrInvalid
	}
	return checkIntegers(b)
}

// checkIntegers scans valid JSON for integer literals (numbers without a
// fraction or exponent) and parses each one. It relies on b being valid JSON,
// so it only has to tell string contents from everything else.
func checkIntegers(b []byte) error {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			// Skip the string, honouring escapes.
			for i++; i < len(b); i++ {
				if b[i] == '\\' {
					i++
					continue
				}
				if b[i] == '"' {
					break
				}
			}
		case c == '-' || (c >= '0' && c <= '9'):
			j := i
			for j < len(b) && isNumberByte(b[j]) {
				j++
			}
			lit := b[i:j]
			if bytes.IndexAny(lit, ".eE") < 0 && len(lit) > 18 {
				if _, err := strconv.ParseInt(string(lit), 10, 64); err != nil {
					return ErrIntegerTooLarge
				}
			}
			i = j - 1
		}
	}
	return nil
}

func isNumberByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// Kind reports the JSON type of the first token of a valid document:
// '{', '[', '"', 'n' (null), 't'/'f' (bool) or '0' (number).
func Kind(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	switch c := b[0]; c {
	case '{', '[', '"', 'n', 't', 'f':
		return c
	default:
		return '0'
	}
}

// Compact returns b without insignificant whitespace. b must be valid JSON.
func Compact(b []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(b))
	if err := json.Compact(&out, b); err != nil {
		return b
	}
	return out.Bytes()
}
