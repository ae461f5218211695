package service

import (
	"strings"
	"testing"
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
	}
	for name, change := range cases {
		l := DefaultLimits()
		change(&l)
		err := l.Check()
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: Check() = %v, want an error naming it", name, err)
		}
	}
	l := DefaultLimits()
	l.MaxMessagesPerClaimOrPop = 65535
	if err := l.Check(); err != nil {
		t.Errorf("the largest claim limit the encoding carries is refused: %v", err)
	}
}
