package notify

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/store"
)

// worker delivers one subscription's notifications in sequence order, up
// to PerSubscriber at a time, and tracks its cursor: the highest sequence
// number such that every notification up to it has been handled (delivered,
// or given up after its retry policy, or withheld).
type worker struct {
	n   *Notifier
	key subKey

	mu          sync.Mutex
	sub         *store.Subscription
	queuePolicy []byte
	cursor      uint64   // every notification <= cursor is handled
	fetched     uint64   // highest sequence number taken from the outbox
	pending     []uint64 // fetched and not yet handled, ascending
	lastFlushed uint64   // cursor value last recorded through Raft

	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

func newWorker(n *Notifier, k subKey, s store.Subscriber, queuePolicy []byte) *worker {
	return &worker{
		n: n, key: k, sub: s.Subscription, queuePolicy: queuePolicy,
		cursor: s.Cursor, fetched: s.Cursor, lastFlushed: s.Cursor,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

func (w *worker) wakeup() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) update(s *store.Subscription, queuePolicy []byte) {
	w.mu.Lock()
	w.sub, w.queuePolicy = s, queuePolicy
	w.mu.Unlock()
	w.wakeup()
}

func (w *worker) stop() {
	w.mu.Lock()
	if w.cancel != nil {
		w.cancel()
	}
	w.mu.Unlock()
}

// progress returns the cursor if it moved since the last flush.
func (w *worker) progress() (uint64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cursor, w.cursor > w.lastFlushed
}

func (w *worker) proposed(seq uint64) {
	w.mu.Lock()
	if seq > w.lastFlushed {
		w.lastFlushed = seq
	}
	w.mu.Unlock()
}

// job is a notification to deliver with the subscription as the store
// held it in the snapshot the notification was read from.
type job struct {
	note        *store.Notification
	sub         *store.Subscription // nil: deleted or expired
	queuePolicy []byte
}

func (w *worker) run(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	w.mu.Lock()
	w.cancel = cancel
	w.mu.Unlock()
	defer cancel()
	// PerSubscriber senders live as long as the worker, so a notification
	// costs no goroutine of its own; one sender keeps them in order.
	jobs := make(chan job)
	for range w.n.cfg.PerSubscriber {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-jobs:
					if w.deliver(ctx, j.note, j.sub, j.queuePolicy) {
						w.handled(j.note.Seq)
					}
				}
			}
		}()
	}
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	for ctx.Err() == nil {
		w.mu.Lock()
		after := w.fetched
		w.mu.Unlock()
		batch, sub, queuePolicy := w.fetch(after)
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
			case <-w.wake:
			case <-poll.C:
			}
			continue
		}
		for _, note := range batch {
			w.mu.Lock()
			w.fetched = note.Seq
			w.pending = append(w.pending, note.Seq)
			w.mu.Unlock()
			select {
			case jobs <- job{note, sub, queuePolicy}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// fetch reads the notifications after a sequence number and, from the
// same snapshot, the subscription with the queue's retry policy: whatever
// applied before those posts (a confirmation, a PATCH, a deletion) is
// seen, even if the resync that refreshes the worker has not run. One
// read per batch, not per notification: a snapshot costs more than a
// loopback delivery.
func (w *worker) fetch(after uint64) ([]*store.Notification, *store.Subscription, []byte) {
	v := w.n.cfg.Store.View()
	defer v.Close()
	batch, err := v.Notifications(w.key.project, w.key.queue, after, 64)
	if err != nil {
		w.n.log.Warn("notifier cannot read notifications", "queue", w.key.queue, "err", err)
	}
	if len(batch) == 0 {
		return nil, nil, nil
	}
	sub, queuePolicy := w.current(v)
	return batch, sub, queuePolicy
}

// handled records that a notification needs no more work.
func (w *worker) handled(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, s := range w.pending {
		if s == seq {
			w.pending = append(w.pending[:i], w.pending[i+1:]...)
			break
		}
	}
	if len(w.pending) == 0 {
		w.cursor = w.fetched
	} else {
		w.cursor = w.pending[0] - 1
	}
}

// deliver makes the attempts the retry policy allows to sub (nil: the
// subscription is gone) with the queue's policy. It reports whether
// the notification is handled; an attempt cut short because this node
// stopped leading is not, so the next leader delivers it.
func (w *worker) deliver(ctx context.Context, note *store.Notification, sub *store.Subscription, queuePolicy []byte) bool {
	m := w.n.metrics
	if sub == nil {
		w.mu.Lock()
		scheme := w.n.registry.metricScheme(w.sub.Subscriber)
		w.mu.Unlock()
		m.outcome(scheme, "unsubscribed")
		return true
	}
	scheme := w.n.registry.metricScheme(sub.Subscriber)
	if w.n.cfg.RequireConfirmation && !sub.Confirmed {
		m.outcome(scheme, "withheld")
		return true
	}
	// A payload whose body this leader cannot open is not handled: the
	// subscription's cursor stays before it, so a leader with the key
	// delivers it (at least once, as across any leader change).
	payload, err := w.n.cfg.MessageKeys.OpenPayload(note.Payload)
	if err != nil {
		m.outcome(scheme, "undecryptable")
		w.n.log.Error("notification not delivered: its message body cannot be decrypted on this leader; it waits for a leader with the key",
			"queue", w.key.queue, "subscriber", redactSubscriber(sub.Subscriber), "err", err)
		return false
	}
	var opts struct {
		RetryPolicy json.RawMessage `json:"_retry_policy"`
	}
	_ = json.Unmarshal(sub.Options, &opts)
	schedule := Choose(opts.RetryPolicy, queuePolicy).Schedule()
	for attempt := 0; ; attempt++ {
		if time.Now().UnixNano() >= note.ExpiresAt {
			m.outcome(scheme, "expired")
			return true
		}
		select {
		case w.n.global <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		m.attempts.WithLabelValues(scheme).Inc()
		err := w.n.attempt(ctx, sub, payload)
		<-w.n.global
		if ctx.Err() != nil {
			return false
		}
		switch {
		case err == nil:
			m.outcome(scheme, "delivered")
			m.lag.WithLabelValues(scheme).Observe(time.Since(time.Unix(0, note.CreatedAt)).Seconds())
			return true
		case errors.Is(err, ErrGone):
			m.outcome(scheme, "gone")
			w.end(ctx)
			return false
		case errors.Is(err, errStopped):
			m.outcome(scheme, "stopped") // the transport logged why, once
			return true
		case errors.Is(err, errPermanent) || attempt >= len(schedule):
			m.outcome(scheme, "failed")
			msg := "notification not delivered"
			if errors.Is(err, ErrRefusedAddress) {
				msg = "notification not delivered: the subscriber's address is refused"
			}
			w.n.log.Warn(msg, "subscriber", redactSubscriber(sub.Subscriber), "attempts", attempt+1, "err", err)
			return true
		}
		m.retries.WithLabelValues(scheme).Inc()
		// Never wait past the message's expiry: it is given up then.
		wait := min(schedule[attempt], time.Until(time.Unix(0, note.ExpiresAt)))
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// current returns the subscription as v holds it (nil once it is deleted
// or expired) with the queue's retry policy.
func (w *worker) current(v *store.View) (*store.Subscription, []byte) {
	s, err := v.Subscription(w.key.project, w.key.queue, w.key.id, time.Now().UnixNano())
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.n.log.Warn("notifier cannot read a subscription", "id", w.key.id, "err", err)
		return w.sub, w.queuePolicy
	}
	if s != nil {
		w.sub = s
	}
	return s, w.queuePolicy
}

// end deletes a subscription whose subscriber is gone (a websocket
// connection that closed); its worker stops when the deletion applies.
func (w *worker) end(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := w.n.cfg.Node.Propose(pctx, &fsm.DeleteSubscription{Project: w.key.project, Queue: w.key.queue, ID: w.key.id}); err != nil {
		w.n.log.Warn("could not end the subscription of a gone subscriber", "id", w.key.id, "err", err)
		return
	}
	w.stop()
}
