package store

import (
	"fmt"
	"testing"
)

func TestDeepestQueues_ReturnsTheTopNByDepthWithTheirOldestAge(t *testing.T) {
	st, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const sec = int64(1e9)
	now := int64(1_000_000) * sec
	txn := st.Begin(1)
	for i := 0; i < 6; i++ {
		var msgs []NewMessage
		for j := 0; j <= i; j++ {
			msgs = append(msgs, NewMessage{ID: fmt.Sprintf("%032d", i*100+j), TTL: 3600, Delay: -1, Body: []byte("1")})
		}
		txn.PostMessages(fmt.Sprintf("p%d", i%2), fmt.Sprintf("q%d", i), "c", now-int64(i)*sec, 3600, msgs)
	}
	txn.CreateClaim("p1", "q5", "c1", 60, 60, 2, now)
	if err := txn.Commit(1, 1); err != nil {
		t.Fatal(err)
	}
	v := st.View()
	defer v.Close()
	top, err := v.DeepestQueues(3, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []QueueDepth{{"p1", "q5", 6, 5}, {"p0", "q4", 5, 4}, {"p1", "q3", 4, 3}}
	if fmt.Sprint(top) != fmt.Sprint(want) {
		t.Fatalf("DeepestQueues = %v, want %v", top, want)
	}
	if n, err := v.ActiveClaims(now); err != nil || n != 1 {
		t.Fatalf("ActiveClaims = %d, %v; want 1", n, err)
	}
	if n, _ := v.ActiveClaims(now + 61*sec); n != 0 {
		t.Fatalf("ActiveClaims after expiry = %d, want 0", n)
	}
}
