package notify

import (
	"errors"
	"fmt"
	"net/textproto"
	"reflect"
	"testing"
	"time"
)

func secs(ss ...int) []int { return ss }

func TestPolicy_BackoffFunctionsGiveTheReferenceSequences(t *testing.T) {
	for fn, want := range map[string][]int{
		"linear":      secs(5, 10, 15, 20, 25),
		"arithmetic":  secs(5, 7, 12, 20, 30),
		"geometric":   secs(5, 7, 12, 19, 30),
		"exponential": secs(5, 7, 12, 19, 30),
	} {
		p := DefaultPolicy
		p.BackoffFunction = fn
		if got := p.backoff(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", fn, got, want)
		}
	}
}

func TestPolicy_DefaultScheduleIs14RetriesAnd180Seconds(t *testing.T) {
	s := DefaultPolicy.Schedule()
	var total time.Duration
	for _, d := range s {
		total += d
	}
	if len(s) != 14 || total != 180*time.Second {
		t.Fatalf("default schedule: %d retries, %s total; want 14 and 3m0s", len(s), total)
	}
	if s[0] != 0 || s[2] != 0 || s[3] != 5*time.Second || s[13] != 30*time.Second {
		t.Fatalf("phases out of order: %v", s)
	}
}

func TestPolicy_ChooseHonoursOverrides(t *testing.T) {
	sub := []byte(`{"retries_with_no_delay": 1}`)
	queue := []byte(`{"retries_with_no_delay": 2}`)
	queueIgnores := []byte(`{"retries_with_no_delay": 2, "ignore_subscription_override": true}`)
	subIgnores := []byte(`{"retries_with_no_delay": 1, "ignore_subscription_override": true}`)
	cases := []struct {
		name       string
		sub, queue []byte
		want       int
	}{
		{"subscription policy wins by default", sub, queue, 1},
		{"queue policy when the subscription has none", nil, queue, 2},
		{"queue policy when the queue says to ignore overrides", sub, queueIgnores, 2},
		{"queue policy when the subscription says to ignore itself", subIgnores, queue, 2},
		{"default when neither has one", nil, nil, 3},
		{"a subscription that ignores itself with no queue policy gets the default", subIgnores, nil, 3},
	}
	for _, c := range cases {
		if got := Choose(c.sub, c.queue).RetriesWithNoDelay; got != c.want {
			t.Errorf("%s: retries_with_no_delay %d, want %d", c.name, got, c.want)
		}
	}
}

func TestPolicy_SmallWindowHasNoBackoffPhase(t *testing.T) {
	p := Policy{MinimumDelay: 1, MaximumDelay: 4, MinimumDelayRetries: 1, MaximumDelayRetries: 1}
	if got := p.Schedule(); !reflect.DeepEqual(got, []time.Duration{time.Second, 4 * time.Second}) {
		t.Fatalf("schedule %v", got)
	}
}

func TestSMTPError_OnlyFiveHundredRepliesArePermanent(t *testing.T) {
	cases := []struct {
		err       error
		permanent bool
	}{
		{&textproto.Error{Code: 550, Msg: "mailbox unavailable"}, true},
		{fmt.Errorf("data: %w", &textproto.Error{Code: 554, Msg: "rejected"}), true},
		{&textproto.Error{Code: 451, Msg: "try again later"}, false},
		{errors.New("550 looks like a reply but is not one"), false},
		{errors.New("connection reset"), false},
	}
	for _, c := range cases {
		if got := errors.Is(smtpError(c.err), errPermanent); got != c.permanent {
			t.Errorf("smtpError(%v) permanent = %v, want %v", c.err, got, c.permanent)
		}
	}
}
