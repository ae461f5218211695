package service

import (
	"context"
	"testing"

	"github.com/zaqar-raft/zaqar/testkit/fsmnode"
)

func TestSubscriberTypes_OnlyTheConfiguredSchemesAreAcceptedWithUpstreamsRefusal(t *testing.T) {
	open := func(t *testing.T, types []string) *Service {
		n, st := fsmnode.OpenForTest(t)
		return New(n, st, Config{SubscriberTypes: types})
	}
	c := Caller{Project: "p-types", ClientID: "3381af922b9e11e3b191718613007343"}
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		types    []string
		accepted []string
		refused  []string
		list     string // as upstream renders the Python list
	}{
		{"default", nil,
			[]string{"http://127.0.0.1:9/a", "https://example.com/b", "mailto:ops@example.com"},
			[]string{"ftp://example.com/x", "HTTP://example.com/x", "wsconn://node1/c1", "example.com"},
			"['http', 'https', 'mailto', 'trust+http', 'trust+https']"},
		{"https and mailto only", []string{"https", "mailto"},
			[]string{"https://example.com/b", "mailto:ops@example.com"},
			[]string{"http://127.0.0.1:9/a", "trust+https://example.com/x"},
			"['https', 'mailto']"},
		{"none", []string{},
			nil,
			[]string{"https://example.com/b", "mailto:ops@example.com"},
			"[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := open(t, tc.types)
			want := "The subscriber type of subscription must be supported in the list " + tc.list + "."
			for _, sub := range tc.accepted {
				if _, e := svc.CreateSubscription(ctx, c, "q", []byte(`{"subscriber": "`+sub+`"}`)); e != nil {
					t.Errorf("%s refused: %v", sub, e)
				}
			}
			for _, sub := range tc.refused {
				_, e := svc.CreateSubscription(ctx, c, "q", []byte(`{"subscriber": "`+sub+`"}`))
				if e == nil || e.Status != 400 || e.Title != "Invalid API request" || e.Description != want {
					t.Errorf("%s: %+v, want 400 %q", sub, e, want)
				}
				// A PATCH to such a subscriber is refused alike.
				if e := svc.UpdateSubscription(ctx, c, "q", "0000", []byte(`{"subscriber": "`+sub+`"}`)); e == nil || e.Description != want {
					t.Errorf("PATCH to %s: %+v, want 400 %q", sub, e, want)
				}
			}
		})
	}
}
