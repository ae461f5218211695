package notify

import (
	"context"
	"errors"
	"time"

	"github.com/zaqar-raft/zaqar/auth"
	"github.com/zaqar-raft/zaqar/fsm"
)

// retiredTrustBatch is how many retired trusts one ForgetTrusts records.
const retiredTrustBatch = 50

// cleanTrusts deletes, in the background, the retired trusts in Keystone
// (trusts no subscription holds any more: store.Txn.HoldTrust lists every
// way a trust is retired) and then forgets them through the log
// (fsm.ForgetTrusts). The list is replicated, so whichever node leads
// deletes what its predecessors had not: every retired trust is deleted
// at least once. One run at a time; a run ends with the leadership (ctx),
// at a Keystone outage (the next resync or the 10 s safety resync tries
// again), or when none are left.
func (n *Notifier) cleanTrusts(ctx context.Context) {
	if !n.cleaning.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer n.cleaning.Store(false)
		n.deleteRetiredTrusts(ctx)
	}()
}

func (n *Notifier) deleteRetiredTrusts(ctx context.Context) {
	m := n.metrics.trustDeletions
	for ctx.Err() == nil {
		v := n.cfg.Store.View()
		ids, err := v.RetiredTrusts(retiredTrustBatch)
		v.Close()
		switch {
		case err != nil:
			n.log.Warn("notifier cannot read the retired trusts", "err", err)
			return
		case len(ids) == 0:
			return
		case n.cfg.Trusts == nil:
			// A cluster that left Keystone mode: nothing can delete them.
			m.WithLabelValues("failed").Add(float64(len(ids)))
			n.log.Warn("Keystone trusts of ended trust subscriptions cannot be deleted: this node has no Keystone configured", "trusts", ids)
			return
		}
		var done []string
		outage := false
		for _, id := range ids {
			err := n.cfg.Trusts.DeleteTrust(ctx, id)
			n.trust.forget(id)
			switch {
			case err == nil:
				m.WithLabelValues("deleted").Inc()
				done = append(done, id)
			case errors.Is(err, auth.ErrTrustRefused):
				m.WithLabelValues("refused").Inc()
				n.log.Warn("the Keystone trust of an ended trust subscription could not be deleted; it stays in Keystone until an administrator deletes it", "trust", id, "err", err)
				done = append(done, id)
			default:
				m.WithLabelValues("failed").Inc()
				if ctx.Err() == nil {
					n.log.Warn("could not delete the Keystone trusts of ended trust subscriptions; trying again later", "err", err)
				}
				outage = true
			}
			if outage {
				break
			}
		}
		if len(done) > 0 {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := n.cfg.Node.Propose(pctx, &fsm.ForgetTrusts{TrustIDs: done})
			cancel()
			if err != nil {
				// Deleted trusts stay listed: the next run finds them gone.
				n.log.Warn("could not record deleted trusts", "err", err)
				return
			}
			n.log.Info("deleted the Keystone trusts of ended trust subscriptions", "count", len(done))
		}
		if outage || len(ids) < retiredTrustBatch {
			return
		}
	}
}
