package service

import (
	"strings"
	"testing"
	"time"

	"github.com/zaqar-raft/zaqar/fsm"
)

func TestLimitsCheck_AcceptsTheDefaults(t *testing.T) {
	if err := DefaultLimits().Check(); err != nil {
		t.Fatal(err)
	}
}

func TestLimitsCheck_RefusesWhatWouldBeClampedOrWrapped(t *testing.T) {
	cases := map[string]func(*Limits){
		"max-messages-per-claim-or-pop": func(l *Limits) { l.MaxMessagesPerClaimOrPop = 70000 },
		"default-message-ttl":           func(l *Limits) { l.DefaultMessageTTL = l.MaxMessageTTL + 1 },
		"default-claim-grace":           func(l *Limits) { l.DefaultClaimGrace = 10 },
		"max-messages-per-page":         func(l *Limits) { l.MaxMessagesPerPage = 0 },
		"max-messages-post-size":        func(l *Limits) { l.MaxMessagesPostSize = 64 << 20 },
		"max-length-client-id":          func(l *Limits) { l.MinClientIDLength, l.MaxClientIDLength = 20, 10 },
		"max-message-ttl":               func(l *Limits) { l.MaxMessageTTL = 59 },
		// Deadlines of ungated commands stay within fsm.MaxShortTTL.
		"max-message-ttl ":         func(l *Limits) { l.MaxMessageTTL = fsm.MaxShortTTL + 1 },
		"max-message-delay":        func(l *Limits) { l.MaxMessageDelay = fsm.MaxShortTTL + 1 },
		"max-claim-ttl":            func(l *Limits) { l.MaxClaimTTL = fsm.MaxShortTTL + 1 },
		"max-claim-grace":          func(l *Limits) { l.MaxClaimGrace = fsm.MaxShortTTL + 1 },
		"default-subscription-ttl": func(l *Limits) { l.DefaultSubscriptionTTL = maxSubscriptionTTL(time.Now()) + 60 },
	}
	for name, change := range cases {
		l := DefaultLimits()
		change(&l)
		err := l.Check()
		if err == nil || !strings.Contains(err.Error(), strings.TrimSpace(name)) {
			t.Errorf("%s: Check() = %v, want an error naming it", name, err)
		}
	}
	l := DefaultLimits()
	l.MaxMessagesPerClaimOrPop = 65535
	if err := l.Check(); err != nil {
		t.Errorf("the largest claim limit the encoding carries is refused: %v", err)
	}
	l = DefaultLimits()
	l.MaxMessageTTL, l.DefaultMessageTTL, l.MaxMessageDelay = fsm.MaxShortTTL, fsm.MaxShortTTL, fsm.MaxShortTTL
	l.MaxClaimTTL, l.MaxClaimGrace = fsm.MaxShortTTL, fsm.MaxShortTTL
	l.DefaultSubscriptionTTL = heatTTL
	if err := l.Check(); err != nil {
		t.Errorf("limits at their largest refused: %v", err)
	}
}
