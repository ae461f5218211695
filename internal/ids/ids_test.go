package ids_test

import (
	"strings"
	"testing"

	"github.com/zaqar-raft/zaqar/internal/ids"
)

func TestNew_MakesValidDistinctIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := ids.New()
		if len(id) != ids.Len || !ids.Valid(id) {
			t.Fatalf("New() = %q, not a valid %d-character id", id, ids.Len)
		}
		if strings.ContainsAny(id, "/?=,&") {
			t.Fatalf("New() = %q contains a character clients split on", id)
		}
		if seen[id] {
			t.Fatalf("New() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"0123456789abcdef0123456789abcdef", true},
		{"ffffffffffffffffffffffffffffffff", true},
		{"00000000000000000000000000000000", true},
		{"", false},
		{"a", false},
		{"0123456789abcdef0123456789abcde", false},   // 31
		{"0123456789abcdef0123456789abcdef0", false}, // 33
		{"0123456789ABCDEF0123456789ABCDEF", false},  // upper case
		{"0123456789abcdef0123456789abcdeg", false},
		{"01234567-89ab-cdef-0123-456789ab", false},
		{"0123456789abcdef0123456789abcd/f", false},
		{"0123456789abcdef0123456789abcde\x00", false},
		{"0123456789abcdef0123456789abcd\u00e9", false}, // 32 bytes, not hex
	}
	for _, tc := range tests {
		if got := ids.Valid(tc.in); got != tc.want {
			t.Errorf("Valid(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
