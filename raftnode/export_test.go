package raftnode

import (
	"fmt"

	"github.com/hashicorp/raft"
)

// CommandsAfter returns the indexes of the command entries (entries an
// FSM applies; not the no-op a new leader writes, configurations or
// barriers) in n's log after index after, for tests that check that
// nothing entered the log without failing on an election's no-op.
func CommandsAfter(n *Node, after uint64) ([]uint64, error) {
	last, err := n.logs.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("last index: %w", err)
	}
	var found []uint64
	for i := after + 1; i <= last; i++ {
		var l raft.Log
		if err := n.logs.GetLog(i, &l); err != nil {
			return nil, fmt.Errorf("log entry %d: %w", i, err)
		}
		if l.Type == raft.LogCommand {
			found = append(found, i)
		}
	}
	return found, nil
}
