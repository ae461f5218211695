package jsonx

import (
	"strings"
	"testing"
)

func BenchmarkCheck_Post10x256B(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"messages": [`)
	for i := 0; i < 10; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"ttl": 300, "body": {"event": "BackupStarted", "n": 12345, "pad": "` + strings.Repeat("x", 200) + `"}}`)
	}
	sb.WriteString("]}")
	doc := []byte(sb.String())
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := Check(doc); err != nil {
			b.Fatal(err)
		}
	}
}
