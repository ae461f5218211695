package notify

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Policy is a notification retry policy (contract §10.6).
type Policy struct {
	RetriesWithNoDelay  int
	MinimumDelayRetries int
	MinimumDelay        int // seconds
	MaximumDelay        int // seconds
	MaximumDelayRetries int
	BackoffFunction     string // linear, arithmetic, geometric or exponential
	// IgnoreSubscriptionOverride makes the queue's policy win over the
	// subscription's.
	IgnoreSubscriptionOverride bool
}

// DefaultPolicy is the reference's default retry policy.
var DefaultPolicy = Policy{
	RetriesWithNoDelay: 3, MinimumDelayRetries: 3, MinimumDelay: 5,
	MaximumDelay: 30, MaximumDelayRetries: 3, BackoffFunction: "linear",
}

// Bounds on what a policy may ask for. The API sets no upper limits
// (neither does the reference), so without them one subscription's policy
// could make the leader build a schedule of billions of retries, or a wait
// that overflows time.Duration. No wait needs to outlast the longest
// message TTL: a notification is given up when its message expires.
const (
	maxPhaseRetries  = 1000
	maxDelaySeconds  = 1209600 // 14 days, the default max_message_ttl
	maxBackoffPhases = maxPhaseRetries
)

// ParsePolicy reads a `_retry_policy` object over the defaults. Missing,
// null or falsy fields keep their default (the service has validated the
// object already). ok is false when raw is not an object.
func ParsePolicy(raw []byte) (Policy, bool) {
	p := DefaultPolicy
	var obj map[string]json.RawMessage
	if len(bytes.TrimSpace(raw)) == 0 || json.Unmarshal(raw, &obj) != nil || obj == nil {
		return p, false
	}
	ints := map[string]*int{
		"retries_with_no_delay": &p.RetriesWithNoDelay, "minimum_delay_retries": &p.MinimumDelayRetries,
		"minimum_delay": &p.MinimumDelay, "maximum_delay": &p.MaximumDelay, "maximum_delay_retries": &p.MaximumDelayRetries,
	}
	for k, dst := range ints {
		if v, ok := obj[k]; ok {
			if n, err := strconv.Atoi(string(bytes.TrimSpace(v))); err == nil && n > 0 {
				*dst = n
			}
			limit := maxPhaseRetries
			if k == "minimum_delay" || k == "maximum_delay" {
				limit = maxDelaySeconds
			}
			*dst = min(*dst, limit)
		}
	}
	if v, ok := obj["retry_backoff_function"]; ok {
		var fn string
		if json.Unmarshal(v, &fn) == nil && fn != "" {
			p.BackoffFunction = fn
		}
	}
	if v, ok := obj["ignore_subscription_override"]; ok {
		var b bool
		_ = json.Unmarshal(v, &b)
		p.IgnoreSubscriptionOverride = b
	}
	return p, true
}

// Choose picks the policy for a subscription (contract §10.6): the
// subscription's own policy, unless it is absent or either side asks to
// ignore the subscription's override, in which case the queue's; if
// neither exists, the default.
func Choose(subscriptionPolicy, queuePolicy []byte) Policy {
	sp, hasSub := ParsePolicy(subscriptionPolicy)
	qp, hasQueue := ParsePolicy(queuePolicy)
	switch {
	case hasSub && !sp.IgnoreSubscriptionOverride && !(hasQueue && qp.IgnoreSubscriptionOverride):
		return sp
	case hasQueue:
		return qp
	}
	return DefaultPolicy
}

// Schedule returns the waits before each retry, in order: the immediate
// retries, the retries at the minimum delay, the backoff phase from the
// minimum towards the maximum delay, and the retries at the maximum delay.
func (p Policy) Schedule() []time.Duration {
	var out []time.Duration
	for i := 0; i < p.RetriesWithNoDelay; i++ {
		out = append(out, 0)
	}
	min, max := p.MinimumDelay, p.MaximumDelay
	for i := 0; i < p.MinimumDelayRetries; i++ {
		out = append(out, time.Duration(min)*time.Second)
	}
	for _, s := range p.backoff() {
		out = append(out, time.Duration(s)*time.Second)
	}
	for i := 0; i < p.MaximumDelayRetries; i++ {
		out = append(out, time.Duration(max)*time.Second)
	}
	return out
}

// backoff returns the backoff phase's waits in seconds: n = (max-min)/5
// attempts, each computed by the policy's function.
func (p Policy) backoff() []int {
	min, max := float64(p.MinimumDelay), float64(p.MaximumDelay)
	n := int((max - min) / 5)
	if n <= 0 {
		return nil
	}
	if n > maxBackoffPhases {
		n = maxBackoffPhases
	}
	out := make([]int, 0, n)
	for a := 1; a <= n; a++ {
		var v float64
		switch p.BackoffFunction {
		case "arithmetic":
			if n == 1 {
				v = min
			} else {
				d := 2 * (max - min) / float64(n*(n-1))
				v = min + float64(a*(a-1))/2*d
			}
		case "geometric", "exponential":
			if n == 1 {
				v = min
			} else {
				k := math.Pow(max/min, 1/float64(n-1))
				v = min * math.Pow(k, float64(a-1))
			}
		default: // linear
			v = min + float64(a-1)*5
		}
		out = append(out, int(math.Floor(v+1e-9)))
	}
	return out
}
