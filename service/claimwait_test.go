package service

import (
	"testing"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/store"
)

// signalled takes a pending signal from ch, reporting whether there was one.
func signalled(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func woken(w *claimWaiter) bool   { return signalled(w.wake) }
func retimed(w *claimWaiter) bool { return signalled(w.retime) }

// posted is the applied post of messages with these delays to a queue
// with a default delay (where a message's delay counts): the store's
// result counts those visible at once.
func posted(project, queue string, delays ...int64) []*fsm.EntryResult {
	cmd := &fsm.PostMessages{Project: project, Queue: queue}
	visible := 0
	for _, d := range delays {
		cmd.Messages = append(cmd.Messages, store.NewMessage{Delay: d})
		if d == 0 {
			visible++
		}
	}
	return []*fsm.EntryResult{{Commands: []fsm.Command{cmd}, Results: []fsm.Result{{Count: visible}}}}
}

func TestClaimWaiters_APostWakesTheOldestWaitersItsMessagesFill(t *testing.T) {
	ws := newClaimWaiters(10, noTimes)
	a, b, c := ws.add("p", "q", 1), ws.add("p", "q", 1), ws.add("p", "q", 1)
	ws.onApply(posted("p", "q", 0, 0))
	if !woken(a) || !woken(b) || woken(c) {
		t.Fatal("two messages must wake the two oldest of three waiters of limit 1, and only them")
	}
	// A waiter with a larger limit covers several messages.
	ws.tried(a)
	ws.tried(b)
	ws.remove(a)
	ws.remove(b)
	d, e := ws.add("p", "q", 5), ws.add("p", "q", 1)
	ws.onApply(posted("p", "q", 0, 0, 0))
	if !woken(c) || !woken(d) || woken(e) {
		t.Fatal("three messages must wake the oldest waiter (limit 1) and the next (limit 5), which covers the other two")
	}
	ws.onApply(posted("p", "q", 0))
	if !woken(e) {
		t.Fatal("a post must skip waiters woken for messages they have not tried yet")
	}
	ws.tried(c)
	ws.onApply(posted("p", "q", 0))
	if !woken(c) {
		t.Fatal("a waiter that tried is woken again by the next post")
	}
}

func TestClaimWaiters_OnlyMessagesClaimableNowInTheSameQueueAndProjectWake(t *testing.T) {
	ws := newClaimWaiters(10, noTimes)
	w := ws.add("p", "q", 10)
	ws.onApply(posted("p", "q", 30))
	ws.onApply(posted("other", "q", 0))
	ws.onApply(posted("p", "other", 0))
	refused := posted("p", "q", 0)
	refused[0].Results[0].Status = fsm.StatusNotFound
	ws.onApply(refused)
	if woken(w) {
		t.Fatal("a delayed message, another project's or queue's post, or a refused post woke the waiter")
	}
	ws.onApply([]*fsm.EntryResult{{Commands: []fsm.Command{&fsm.ReleaseClaim{Project: "p", Queue: "q"}}, Results: []fsm.Result{{}}}})
	if !woken(w) {
		t.Fatal("a released claim must wake the queue's waiters")
	}
}

func TestClaimWaiters_AWaiterThatLeavesOwingAWakeUpPassesItOn(t *testing.T) {
	ws := newClaimWaiters(10, noTimes)
	a, b := ws.add("p", "q", 1), ws.add("p", "q", 1)
	ws.onApply(posted("p", "q", 0))
	if woken(b) {
		t.Fatal("one message woke two waiters")
	}
	ws.remove(a) // its client went away before it claimed
	if !woken(b) {
		t.Fatal("the wake-up of a waiter that left without claiming must go to the next one")
	}
	if ws.waiting() != 1 {
		t.Fatalf("%d waiting, want 1", ws.waiting())
	}
}

func TestClaimWaiters_BoundAndStopRefuseNewWaiters(t *testing.T) {
	ws := newClaimWaiters(2, noTimes)
	a := ws.add("p", "q", 1)
	if ws.add("p", "q", 1) == nil || ws.add("p", "r", 1) != nil {
		t.Fatal("the bound of 2 waiters per node must admit two and refuse the third")
	}
	ws.remove(a)
	if ws.add("p", "q", 1) == nil {
		t.Fatal("a place freed must be taken again")
	}
	ws.stopAll()
	select {
	case <-ws.stop:
	default:
		t.Fatal("stopAll must end the waits")
	}
	ws.stopAll() // twice is harmless
	if ws.add("p", "q", 1) != nil {
		t.Fatal("a stopped node must not admit waiters")
	}
}

// noTimes is a store that knows of no time-based change.
func noTimes(string, string) int64 { return 0 }

func TestClaimWaiters_ADelayedPostRetimesTheWaitersWhoseTimersAreLater(t *testing.T) {
	next := store.Never
	ws := newClaimWaiters(10, func(string, string) int64 { return next })
	early, late, other := ws.add("p", "q", 1), ws.add("p", "q", 1), ws.add("p", "r", 1)
	ws.onApply(posted("p", "q", 30))
	if !retimed(early) || !retimed(late) || retimed(other) {
		t.Fatal("a delayed post must retime the queue's waiters not asleep yet, and only that queue's")
	}
	next = 100
	if ws.sleepUntil(early) != 100 {
		t.Fatal("sleepUntil must return the store's time")
	}
	next = store.Never
	if ws.sleepUntil(late) != store.Never {
		t.Fatal("sleepUntil must return the store's time")
	}
	next = 50
	ws.onApply(posted("p", "q", 0))
	if retimed(early) || retimed(late) {
		t.Fatal("a post of nothing delayed retimed a waiter")
	}
	if !woken(early) {
		t.Fatal("a post of a visible message must wake the oldest waiter")
	}
	ws.onApply(posted("p", "q", 30))
	if !retimed(early) || !retimed(late) {
		t.Fatal("a delayed post that moves the time earlier must retime waiters set for later or for nothing")
	}
	next = 200
	ws.sleepUntil(early)
	ws.sleepUntil(late)
	next = 300
	ws.onApply(posted("p", "q", 30))
	if retimed(early) || retimed(late) {
		t.Fatal("a delayed post that does not move the time earlier retimed a waiter")
	}
	for name, applied := range map[string][]*fsm.EntryResult{
		"a claim": {{Commands: []fsm.Command{&fsm.CreateClaim{Project: "p", Queue: "q"}},
			Results: []fsm.Result{{Messages: []*store.Message{{}}}}}},
		"a renewal": {{Commands: []fsm.Command{&fsm.RenewClaim{Project: "p", Queue: "q"}}, Results: []fsm.Result{{}}}},
	} {
		next = 1
		ws.onApply(applied)
		if retimed(early) || retimed(late) || woken(late) {
			t.Fatalf("%s retimed or woke a waiter: its claim outlasts any wait", name)
		}
	}
}
