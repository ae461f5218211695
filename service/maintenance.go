package service

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/zaqar-raft/zaqar/fsm"
)

// RunMaintenance runs the leader's periodic duties until ctx ends: it makes
// sure the cluster has a signing secret, and proposes garbage collection of
// expired messages and claims. On followers it does nothing but wait.
func (s *Service) RunMaintenance(ctx context.Context) {
	t := time.NewTicker(s.gcInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.node.IsLeader() {
			continue
		}
		s.ensureSecret(ctx)
		s.collectGarbage(ctx)
	}
}

func (s *Service) ensureSecret(ctx context.Context) {
	v := s.store.View()
	key, err := v.Secret()
	v.Close()
	if err != nil || key != nil {
		return
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.node.Propose(cctx, &fsm.SetSecret{Secret: secret}); err != nil {
		s.log.Warn("could not store the signing secret", "err", err)
	}
}

// collectGarbage proposes GC commands while the leader sees due expiry
// entries, one bounded batch at a time.
func (s *Service) collectGarbage(ctx context.Context) {
	for i := 0; i < 100; i++ {
		v := s.store.View()
		pending, err := v.Pending(time.Now().UnixNano())
		v.Close()
		if err != nil || !pending || !s.node.IsLeader() {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := s.node.Propose(cctx, &fsm.CollectGarbage{Limit: s.gcBatch})
		cancel()
		if err != nil {
			s.log.Warn("garbage collection failed", "err", err)
			return
		}
		if len(res.Results) != 1 || res.Results[0].Count < s.gcBatch {
			return
		}
	}
}
