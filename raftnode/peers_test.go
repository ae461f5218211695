package raftnode_test

import (
	"reflect"
	"testing"

	"github.com/zaqar-raft/zaqar/raftnode"
)

func TestParsePeers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []raftnode.Peer
		bad  bool
	}{
		{in: "", want: nil},
		{in: "n1=127.0.0.1:7001", want: []raftnode.Peer{{ID: "n1", Address: "127.0.0.1:7001"}}},
		{in: " n1=a:1 , n2=b:2,", want: []raftnode.Peer{{ID: "n1", Address: "a:1"}, {ID: "n2", Address: "b:2"}}},
		{in: "n1=[::1]:7001", want: []raftnode.Peer{{ID: "n1", Address: "[::1]:7001"}}},
		{in: "n1", bad: true},
		{in: "=a:1", bad: true},
		{in: "n1=", bad: true},
		{in: "n1=a", bad: true},
		{in: "n1=a:1,n1=b:2", bad: true},
		{in: "n1=a:1,n2=a:1", bad: true},
	} {
		got, err := raftnode.ParsePeers(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParsePeers(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParsePeers(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}
