// Package ids makes and recognises the opaque identifiers the service hands
// out for messages, claims and subscriptions: 32 lowercase hex digits from 16
// random bytes. They never contain the characters clients split hrefs on
// (`/ ? = , &`).
package ids

import (
	"crypto/rand"
	"encoding/hex"
)

// Len is the length of every identifier.
const Len = 32

// New returns a fresh random identifier.
func New() string {
	var b [16]byte
	// crypto/rand.Read never returns an error on supported platforms.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Valid reports whether s has the shape of an identifier made by New.
func Valid(s string) bool {
	if len(s) != Len {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
