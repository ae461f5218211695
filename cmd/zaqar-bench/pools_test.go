package main

import (
	"slices"
	"testing"
	"time"
)

func TestParseCPUBusy_CountsAllButIdleAndIOWait(t *testing.T) {
	stat := "cpu  10 1 20 300 40 5 6 7 0 0\n" +
		"cpu0 4 1 10 100 20 2 3 4 9 9\n" +
		"cpu1 6 0 10 200 20 3 3 3 0 0\n" +
		"intr 123\nctxt 456\n"
	// user nice system irq softirq steal; guest columns are in user.
	if got, want := parseCPUBusy(stat), []uint64{4 + 1 + 10 + 2 + 3 + 4, 6 + 10 + 3 + 3 + 3}; !slices.Equal(got, want) {
		t.Fatalf("parseCPUBusy = %v, want %v", got, want)
	}
}

func TestLoadResult_PerMessageAndTheRestOfTheMachine(t *testing.T) {
	r := &loadResult{elapsed: 10 * time.Second, msgs: []uint64{600, 400}, ticks: []uint64{300, 200}, selfTick: 100, busy: []uint64{800, 900}}
	// 500 ticks of 10 ms over 1,000 messages: 5,000 µs each.
	if got := r.nodeUS(); got != 5000 {
		t.Errorf("nodeUS = %v, want 5000", got)
	}
	if got := r.rate(); got != 100 {
		t.Errorf("rate = %v, want 100", got)
	}
	// 1,700 busy ticks less 600 of ours.
	if got := r.others(); got != 1100 {
		t.Errorf("others = %v, want 1100", got)
	}
	if got := r.coreShare(r.others()); got != 1.1 {
		t.Errorf("coreShare(others) = %v, want 1.1", got)
	}
	r.busy = []uint64{100, 100}
	if got := r.others(); got != 0 {
		t.Errorf("others with less busy time than ours = %v, want 0", got)
	}
}
