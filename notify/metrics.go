package notify

import "github.com/prometheus/client_golang/prometheus"

// metrics are the notifier's delivery counters.
type metrics struct {
	outcomes *prometheus.CounterVec
	attempts *prometheus.CounterVec
	retries  *prometheus.CounterVec
	lag      *prometheus.HistogramVec
	// trustStops counts trust subscriptions stopped, by reason
	// (TrustStopReasons); trustDeletions the retired trusts handled, by
	// outcome.
	trustStops     *prometheus.CounterVec
	trustDeletions *prometheus.CounterVec
}

// newMetrics registers the delivery metrics; their scheme labels are the
// registry's schemes (and "other").
func newMetrics(reg *prometheus.Registry, n *Notifier) *metrics {
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zaqar_notify_deliveries_total",
			Help: "Notifications handled, by subscriber scheme and outcome (delivered, failed, expired, withheld, unsubscribed, gone, undecryptable, stopped, confirmation_sent, confirmation_failed).",
		}, []string{"scheme", "outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zaqar_notify_attempts_total", Help: "Delivery attempts, by subscriber scheme.",
		}, []string{"scheme"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zaqar_notify_retries_total", Help: "Delivery attempts that were retried, by subscriber scheme.",
		}, []string{"scheme"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zaqar_notify_delivery_lag_seconds",
			Help:    "Time from a message's commit to its notification's delivery, by subscriber scheme.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 180},
		}, []string{"scheme"}),
		trustStops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zaqar_notify_trust_refusals_total",
			Help: "Trust subscriptions stopped, by reason: Keystone refused the trust (not_found: deleted, revoked or expired; forbidden; unauthorized), counted each time Keystone is asked (at most every 5 minutes per trust); or the subscription has no trust (no_trust) or the node no Keystone (no_keystone), counted once.",
		}, []string{"reason"}),
		trustDeletions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zaqar_notify_trust_deletions_total",
			Help: "Trusts no subscription holds any more, handled by the leader, by outcome (deleted: deleted in Keystone or already gone; refused: Keystone would not let the service delete it; failed: Keystone unavailable, tried again later).",
		}, []string{"outcome"}),
	}
	// Every registered scheme, reason and outcome shows from the start, at
	// zero.
	for _, scheme := range n.registry.Schemes() {
		m.attempts.WithLabelValues(scheme)
		m.retries.WithLabelValues(scheme)
	}
	for _, reason := range TrustStopReasons {
		m.trustStops.WithLabelValues(reason)
	}
	for _, outcome := range []string{"deleted", "refused", "failed"} {
		m.trustDeletions.WithLabelValues(outcome)
	}
	if reg != nil {
		reg.MustRegister(m.outcomes, m.attempts, m.retries, m.lag, m.trustStops, m.trustDeletions,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "zaqar_notify_subscriptions", Help: "Subscriptions this node is delivering to (non-zero on the leader only).",
			}, func() float64 { return float64(n.SubscriptionCount()) }))
	}
	return m
}

func (m *metrics) outcome(scheme, outcome string) { m.outcomes.WithLabelValues(scheme, outcome).Inc() }
