package service

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/store"
)

// RunMaintenance runs the leader's periodic duties until ctx ends: it makes
// sure the cluster has a signing secret, and proposes garbage collection of
// expired messages and claims. On followers it does nothing but wait.
func (s *Service) RunMaintenance(ctx context.Context) {
	// Poll leadership quickly at first so a new cluster gets its secret
	// within moments of electing a leader, then settle to the GC interval.
	t := time.NewTicker(min(s.gcInterval, 50*time.Millisecond))
	defer t.Stop()
	// The watermark-only GC (watermarkEvery) counts from the start, not
	// from the zero time: a node that becomes leader proposes GC when
	// something is due, not merely because it never proposed one.
	s.lastGC = time.Now()
	haveSecret, haveDepthIndex := false, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.node.IsLeader() {
			continue
		}
		if !haveSecret {
			haveSecret = s.ensureSecret(ctx)
			if haveSecret {
				t.Reset(s.gcInterval)
			}
		}
		if !haveDepthIndex {
			haveDepthIndex = s.ensureDepthIndex(ctx)
		}
		s.collectGarbage(ctx)
	}
}

// ensureDepthIndex proposes building the store's depth index if the log
// has not built it yet, and reports whether it exists. During a rolling
// upgrade the command gate refuses the command until every voter knows
// it; the next tick asks again.
func (s *Service) ensureDepthIndex(ctx context.Context) bool {
	v := s.store.View()
	built, err := v.DepthIndexed()
	v.Close()
	if err != nil {
		return false
	}
	if built {
		return true
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := s.node.Propose(cctx, &fsm.BuildDepthIndex{Format: store.DepthIndexFormat}); err != nil {
		s.log.Debug("depth index not built yet", "err", err)
		return false
	}
	return true
}

// ensureSecret proposes a signing secret if the cluster has none yet and
// reports whether one is known to exist.
func (s *Service) ensureSecret(ctx context.Context) bool {
	v := s.store.View()
	key, err := v.Secret()
	v.Close()
	if err != nil {
		return false
	}
	if key != nil {
		return true
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if !s.holdsCatalog() {
		// Every pool signs with the catalog pool's secret, so a URL that a
		// node of one pool signed is honoured by the nodes of every pool.
		ans, e := s.callCatalog(cctx, catalogRequest{Op: "secret"})
		if e != nil || len(ans.Secret) == 0 {
			s.log.Debug("the catalog's signing secret is not available yet", "err", e)
			return false
		}
		secret = ans.Secret
	}
	if _, err := s.node.Propose(cctx, &fsm.SetSecret{Secret: secret}); err != nil {
		s.log.Warn("could not store the signing secret", "err", err)
		return false
	}
	return true
}

// watermarkEvery is how often GC runs even with nothing due, to move the
// GC watermark past the tombstones of entries deleted before they were
// due (expiry scans start at the watermark).
const watermarkEvery = 30 * time.Second

// collectGarbage proposes GC commands while the leader sees due expiry
// entries, one bounded batch at a time.
func (s *Service) collectGarbage(ctx context.Context) {
	for i := 0; i < 100; i++ {
		v := s.store.View()
		pending, err := v.Pending(time.Now().UnixNano())
		v.Close()
		if err != nil || !s.node.IsLeader() {
			return
		}
		if !pending && time.Since(s.lastGC) < watermarkEvery {
			return
		}
		s.lastGC = time.Now()
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
