package store_test

import (
	"fmt"
	"testing"

	"github.com/zaqar-raft/zaqar/store"
)

func BenchmarkListMessages_20FromADeepQueue(b *testing.B) {
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	txn := st.Begin(1)
	for i := 0; i < 1000; i++ {
		var msgs []store.NewMessage
		for j := 0; j < 10; j++ {
			msgs = append(msgs, store.NewMessage{ID: fmt.Sprintf("%016x%016x", i, j), TTL: 3600, Delay: -1, Body: []byte(`{"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)})
		}
		txn.PostMessages("p", "q", "c", t0, 3600, msgs)
	}
	if err := txn.Commit(1, 1); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := st.View()
		got, err := v.ListMessages("p", "q", t0, store.ListOptions{Limit: 20, Echo: true, AfterSeq: uint64(i % 9000)})
		v.Close()
		if err != nil || len(got) != 20 {
			b.Fatalf("%d messages, %v", len(got), err)
		}
	}
}
