package server

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Drain makes the node stop taking client traffic before it is shut down:
// REST requests other than administration and metrics answer 503 (so
// /v2/ping tells load balancers to stop sending), waiting claims answer
// that nothing was claimed, websocket clients are
// closed with 1001 and new ones refused, and if the node leads, leadership
// moves to another voter. Raft keeps running: the node stays a voter until
// it stops.
func (s *Server) Drain(ctx context.Context) error {
	if s.draining.Swap(true) {
		return nil
	}
	s.log.Info("draining: refusing client traffic")
	s.svc.StopWaiting()
	s.ws.Drain()
	if s.node.IsLeader() && len(s.node.Members()) > 1 {
		if err := s.node.HandOver(ctx); err != nil {
			return fmt.Errorf("server: drain: hand over leadership: %w", err)
		}
	}
	return nil
}

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// Backup writes a consistent snapshot of the replicated state to w: it
// passes the read barrier first, so the backup holds every write
// acknowledged before the call, and streams a point-in-time copy (with a
// SHA-256 trailer) while traffic goes on. It returns the applied index the
// backup holds.
func (s *Server) Backup(ctx context.Context, w io.Writer) (uint64, error) {
	if err := s.node.ReadBarrier(ctx); err != nil {
		return 0, fmt.Errorf("server: backup: %w", err)
	}
	snap, err := s.store.Snapshot()
	if err != nil {
		return 0, err
	}
	defer snap.Close()
	start := time.Now()
	n, err := snap.WriteTo(w)
	if err != nil {
		return 0, fmt.Errorf("server: backup: %w", err)
	}
	s.log.Info("backup written", "applied_index", snap.AppliedIndex(), "bytes", n, "took", time.Since(start))
	return snap.AppliedIndex(), nil
}
