package service

import (
	"container/list"
	"sync"

	"github.com/zaqar-raft/zaqar/fsm"
)

// MaxClaimWait is the longest a claim may wait for a message, in seconds
// (the `wait` of a claim; SQS's WaitTimeSeconds has the same bound).
const MaxClaimWait = 20

// DefaultMaxClaimWaiters bounds the claims waiting on one node when the
// configuration does not.
const DefaultMaxClaimWaiters = 1024

// claimWaiters are the claims waiting on this node for a message, by
// queue, oldest first. An applied command that makes messages claimable
// wakes as many of a queue's waiters as can take them (each takes up to
// its limit), not all of them: a post of one message to a queue with a
// hundred waiting consumers costs one more claim, not a hundred. A waiter
// holds nothing but its place here and a timer: no Raft proposal, no
// store view.
type claimWaiters struct {
	mu      sync.Mutex
	byQueue map[waitQueue]*list.List // of *claimWaiter
	count   int
	max     int
	stopped bool
	stop    chan struct{} // closed by stopAll
	// nextClaimable returns when time next makes one of a queue's
	// messages claimable (unix ns; store.Never: nothing waits; 0: not
	// known). Called with mu held.
	nextClaimable func(project, queue string) int64
}

type waitQueue struct{ project, queue string }

// claimWaiter is one waiting claim.
type claimWaiter struct {
	key   waitQueue
	limit int
	elem  *list.Element
	// wake holds a wake-up not yet taken; owed says the waiter was woken
	// for messages and has not yet tried to claim them, so a waiter that
	// leaves owing passes its wake-up on.
	wake chan struct{}
	owed bool
	// retime says the queue's next time-based change (a delay ending, a
	// claim running out) moved before due: the waiter reads it again
	// without claiming.
	retime chan struct{}
	// due is the time the waiter's timer is set for, as nextClaimable
	// read it (-1: not sleeping yet).
	due int64
}

func newClaimWaiters(max int, nextClaimable func(project, queue string) int64) *claimWaiters {
	if max <= 0 {
		max = DefaultMaxClaimWaiters
	}
	return &claimWaiters{byQueue: map[waitQueue]*list.List{}, max: max, stop: make(chan struct{}), nextClaimable: nextClaimable}
}

// add registers a claim of up to limit messages waiting on a queue; nil
// when the node already holds its most waiters or is stopping (the claim
// then answers at once).
func (ws *claimWaiters) add(project, queue string, limit int) *claimWaiter {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.stopped || ws.count >= ws.max {
		return nil
	}
	k := waitQueue{project, queue}
	l := ws.byQueue[k]
	if l == nil {
		l = list.New()
		ws.byQueue[k] = l
	}
	w := &claimWaiter{key: k, limit: limit, wake: make(chan struct{}, 1), retime: make(chan struct{}, 1), due: -1}
	w.elem = l.PushBack(w)
	ws.count++
	return w
}

// remove unregisters w; a wake-up it owed goes to the next waiter.
func (ws *claimWaiters) remove(w *claimWaiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	l := ws.byQueue[w.key]
	l.Remove(w.elem)
	ws.count--
	if l.Len() == 0 {
		delete(ws.byQueue, w.key)
	}
	if w.owed {
		ws.wakeLocked(w.key, w.limit)
	}
}

// tried records that w has made a claim attempt; a wake-up that came
// during the attempt stays owed until the next one.
func (ws *claimWaiters) tried(w *claimWaiter) {
	ws.mu.Lock()
	if len(w.wake) == 0 {
		w.owed = false
	}
	ws.mu.Unlock()
}

// wakeQueue wakes the oldest waiters of a queue not already woken until
// their limits cover n messages (n < 0: all of them).
func (ws *claimWaiters) wakeQueue(project, queue string, n int) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.wakeLocked(waitQueue{project, queue}, n)
}

func (ws *claimWaiters) wakeLocked(k waitQueue, n int) {
	l := ws.byQueue[k]
	if l == nil {
		return
	}
	for e := l.Front(); e != nil && n != 0; e = e.Next() {
		w := e.Value.(*claimWaiter)
		if w.owed {
			continue // already woken for messages it has not tried yet
		}
		w.owed = true
		select {
		case w.wake <- struct{}{}:
		default:
		}
		if n > 0 {
			n = max(n-w.limit, 0)
		}
	}
}

// sleepUntil returns when w's queue next changes with time (see
// nextClaimable) and records it as w's due time. Read under the lock, it
// is ordered with retimeQueue: a post applied after this read retimes w.
func (ws *claimWaiters) sleepUntil(w *claimWaiter) int64 {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w.due = ws.nextClaimable(w.key.project, w.key.queue)
	return w.due
}

// retimeQueue reads when time next makes one of a queue's messages
// claimable, after a post of delayed messages, and tells the waiters
// whose timers are set later (or not yet) to read it again. Claims and
// renewals never need it: a claim's TTL (60 s at least) outlasts any
// wait (MaxClaimWait).
func (ws *claimWaiters) retimeQueue(project, queue string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	l := ws.byQueue[waitQueue{project, queue}]
	if l == nil {
		return
	}
	at := ws.nextClaimable(project, queue)
	if at <= 0 {
		return // nothing known: no timer can help
	}
	for e := l.Front(); e != nil; e = e.Next() {
		w := e.Value.(*claimWaiter)
		if w.due >= 0 && w.due <= at {
			continue
		}
		select {
		case w.retime <- struct{}{}:
		default:
		}
	}
}

// waiting returns how many claims wait on this node.
func (ws *claimWaiters) waiting() int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.count
}

// stopAll ends every wait at once and refuses new ones (the node is
// draining or stopping).
func (ws *claimWaiters) stopAll() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if !ws.stopped {
		ws.stopped = true
		close(ws.stop)
	}
}

// onApply wakes the waiters of queues whose messages became claimable in
// an applied batch: messages posted without a delay, and the messages of
// a released claim (as many waiters as the queue has: how many the claim
// held is not known here). Time makes messages claimable too (a delay or
// a claim running out) and no apply marks that moment, so each waiter
// keeps a timer for the queue's next one (sleepUntil); a post of delayed
// messages may move it earlier and retimes the queue's waiters.
func (ws *claimWaiters) onApply(results []*fsm.EntryResult) {
	for _, r := range results {
		for i, c := range r.Commands {
			if i >= len(r.Results) || r.Results[i].Status != fsm.StatusOK {
				continue
			}
			switch cmd := c.(type) {
			case *fsm.PostMessages:
				// The store says how many are visible at once (a message's
				// delay counts only on a queue with a default delay).
				if visible := r.Results[i].Count; visible > 0 {
					ws.wakeQueue(cmd.Project, cmd.Queue, visible)
				}
				if r.Results[i].Count < len(cmd.Messages) {
					ws.retimeQueue(cmd.Project, cmd.Queue)
				}
			case *fsm.ReleaseClaim:
				ws.wakeQueue(cmd.Project, cmd.Queue, -1)
			}
		}
	}
}
