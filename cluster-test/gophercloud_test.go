package clustertest

import (
	"context"
	"net/http"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/messaging/v2/claims"
	"github.com/gophercloud/gophercloud/v2/openstack/messaging/v2/messages"
	"github.com/gophercloud/gophercloud/v2/openstack/messaging/v2/queues"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// newGophercloudClient builds the messaging ServiceClient that
// openstack.NewMessagingV2 would build, by hand and without Keystone: the
// endpoint is the node's root (gophercloud's messaging paths start with
// "v2/"), Client-ID goes on every request as NewMessagingV2 adds it, and
// X-Project-ID stands in for the project Keystone would put in the token.
func newGophercloudClient(p *proc, clientID, project string) *gophercloud.ServiceClient {
	provider := &gophercloud.ProviderClient{HTTPClient: *p.httpClient(15 * time.Second)}
	return &gophercloud.ServiceClient{
		ProviderClient: provider,
		Endpoint:       p.URL() + "/",
		Type:           "message",
		MoreHeaders:    map[string]string{"Client-ID": clientID, "X-Project-ID": project},
	}
}

func TestGophercloud_MessagingClientWorksAgainstFollowerAndLeader(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.Leader()
	follower := c.Followers()[0]
	for _, tc := range []struct {
		name          string
		target, other *proc
	}{
		{"follower", follower, leader},
		{"leader", leader, follower},
	} {
		t.Run(tc.name, func(t *testing.T) {
			project := "gc-" + tc.name
			sc := newGophercloudClient(tc.target, "8d3b5a2e-6f1c-4b7a-9e0d-2c4f6a8b0d1e", project)
			other := newGophercloudClient(tc.other, "5e7f9a1b-3c5d-4e6f-8a0b-1c2d3e4f5a6b", project)
			runGophercloudScenario(t, sc, other)
		})
	}
}

// runGophercloudScenario drives every queues, messages and claims call of
// gophercloud through sc and checks the effects, some of them through
// other (a client of another node of the same cluster).
func runGophercloudScenario(t *testing.T, sc, other *gophercloud.ServiceClient) {
	ctx := context.Background()
	const main = "gq-main"
	names := []string{"gq-a", "gq-b", "gq-c", "gq-d", main}

	// Queues: create, list with paging, get, update.
	for _, name := range names {
		opts := queues.CreateOpts{QueueName: name, DefaultMessageTTL: 300}
		if name == main {
			opts = queues.CreateOpts{
				QueueName: main, DefaultMessageTTL: 3600, MaxMessagesPostSize: 65536,
				Extra: map[string]any{"description": "gophercloud"},
			}
		}
		r := queues.Create(ctx, sc, opts)
		must(t, "queues.Create "+name, r.Err)
		if loc := r.Header.Get("Location"); loc != "/v2/queues/"+name {
			t.Errorf("queues.Create %s: Location %q", name, loc)
		}
	}
	var listed []string
	var pageSizes []int
	count := -1
	err := queues.List(sc, queues.ListOpts{Limit: 2, Detailed: true, WithCount: true}).EachPage(ctx, func(_ context.Context, page pagination.Page) (bool, error) {
		qs, err := queues.ExtractQueues(page)
		if err != nil {
			return false, err
		}
		if count < 0 {
			if count, err = page.(queues.QueuePage).GetCount(); err != nil {
				return false, err
			}
		}
		pageSizes = append(pageSizes, len(qs))
		for _, q := range qs {
			listed = append(listed, q.Name)
			if q.Name == main && (q.Metadata.DefaultMessageTTL != 3600 || q.Metadata.Extra["description"] != "gophercloud") {
				t.Errorf("queues.List detailed metadata of %s: %+v", main, q.Metadata)
			}
		}
		return true, nil
	})
	must(t, "queues.List", err)
	if !slices.Equal(listed, names) || !slices.Equal(pageSizes, []int{2, 2, 1}) || count != 5 {
		t.Errorf("queues.List with limit 2: names %v in pages %v, count %d; want %v in pages [2 2 1], count 5", listed, pageSizes, count, names)
	}

	details, err := queues.Get(ctx, sc, main).Extract()
	must(t, "queues.Get", err)
	if details.DefaultMessageTTL != 3600 || details.MaxMessagesPostSize != 65536 || details.Extra["description"] != "gophercloud" {
		t.Errorf("queues.Get %s: %+v", main, details)
	}
	updated, err := queues.Update(ctx, sc, main, queues.BatchUpdateOpts{
		{Op: queues.ReplaceOp, Path: "/metadata/description", Value: "updated"},
		{Op: queues.AddOp, Path: "/metadata/owner", Value: "team-a"},
	}).Extract()
	must(t, "queues.Update", err)
	if updated.Extra["description"] != "updated" || updated.Extra["owner"] != "team-a" || updated.DefaultMessageTTL != 3600 {
		t.Errorf("queues.Update result: %+v", updated)
	}
	if seen, err := queues.Get(ctx, other, main).Extract(); err != nil || seen.Extra["owner"] != "team-a" {
		t.Errorf("queues.Get through the other node after the update: %+v, %v", seen, err)
	}

	// Messages: post 25 in three requests, list them over three pages.
	var ids []string
	for _, batch := range [][2]int{{0, 10}, {10, 20}, {20, 25}} {
		var opts messages.BatchCreateOpts
		for i := batch[0]; i < batch[1]; i++ {
			opts = append(opts, messages.CreateOpts{Body: map[string]any{"seq": i}})
		}
		res, err := messages.Create(ctx, sc, main, opts).Extract()
		must(t, "messages.Create", err)
		if len(res.Resources) != len(opts) {
			t.Fatalf("messages.Create: %d resources for %d messages", len(res.Resources), len(opts))
		}
		for _, href := range res.Resources {
			ids = append(ids, path.Base(href))
		}
	}
	var seqs []int
	pageSizes = nil
	err = messages.List(sc, main, messages.ListOpts{Echo: true, Limit: 10}).EachPage(ctx, func(_ context.Context, page pagination.Page) (bool, error) {
		ms, err := messages.ExtractMessages(page)
		if err != nil {
			return false, err
		}
		pageSizes = append(pageSizes, len(ms))
		for i, m := range ms {
			seqs = append(seqs, seqOf(m.Body))
			if want := ids[len(seqs)-1]; m.ID != want || m.TTL != 3600 {
				t.Errorf("messages.List page %d item %d: id %s ttl %d, want id %s ttl 3600", len(pageSizes), i, m.ID, m.TTL, want)
			}
		}
		return true, nil
	})
	must(t, "messages.List", err)
	if !slices.Equal(pageSizes, []int{10, 10, 5}) || !slices.Equal(seqs, intRange(0, 25)) {
		t.Errorf("messages.List echo=true limit=10: pages %v seqs %v; want pages [10 10 5] seqs 0..24", pageSizes, seqs)
	}
	own := 0
	err = messages.List(sc, main, messages.ListOpts{Limit: 10}).EachPage(ctx, func(_ context.Context, page pagination.Page) (bool, error) {
		ms, err := messages.ExtractMessages(page)
		own += len(ms)
		return true, err
	})
	must(t, "messages.List without echo", err)
	if own != 0 {
		t.Errorf("messages.List without echo returned %d of the client's own messages, want 0", own)
	}
	if st := stats(ctx, t, other, main); st.Total != 25 || st.Free != 25 || st.Claimed != 0 {
		t.Errorf("queues.GetStats through the other node after posting 25: %+v", st)
	}

	m, err := messages.Get(ctx, sc, main, ids[3]).Extract()
	must(t, "messages.Get", err)
	if m.ID != ids[3] || seqOf(m.Body) != 3 || m.TTL != 3600 || m.Href != "/v2/queues/"+main+"/messages/"+ids[3] {
		t.Errorf("messages.Get: %+v", m)
	}
	many, err := messages.GetMessages(ctx, sc, main, messages.GetMessagesOpts{IDs: ids[:3]}).Extract()
	must(t, "messages.GetMessages", err)
	var got []string
	for _, m := range many {
		got = append(got, m.ID)
	}
	if !slices.Equal(got, ids[:3]) {
		t.Errorf("messages.GetMessages %v returned %v", ids[:3], got)
	}

	// Claims: claim five, renew, delete one with the claim, release.
	cr := claims.Create(ctx, sc, main, claims.CreateOpts{TTL: 120, Grace: 60, Limit: 5})
	claimed, err := cr.Extract()
	must(t, "claims.Create", err)
	claimID := path.Base(cr.Header.Get("Location"))
	if len(claimed) != 5 || claimID == "" || claimID == "." {
		t.Fatalf("claims.Create: %d messages, Location %q", len(claimed), cr.Header.Get("Location"))
	}
	for i, cm := range claimed {
		if seqOf(cm.Body) != i || !strings.HasSuffix(cm.Href, ids[i]+"?claim_id="+claimID) {
			t.Errorf("claims.Create message %d: %+v (claim %s)", i, cm, claimID)
		}
	}
	if st := stats(ctx, t, sc, main); st.Claimed != 5 || st.Free != 20 || st.Total != 25 {
		t.Errorf("queues.GetStats after claiming 5: %+v", st)
	}
	cl, err := claims.Get(ctx, sc, main, claimID).Extract()
	must(t, "claims.Get", err)
	if cl.TTL != 120 || len(cl.Messages) != 5 || cl.Href != "/v2/queues/"+main+"/claims/"+claimID {
		t.Errorf("claims.Get: %+v", cl)
	}
	must(t, "claims.Update", claims.Update(ctx, sc, main, claimID, claims.UpdateOpts{TTL: 300, Grace: 90}).ExtractErr())
	if cl, err := claims.Get(ctx, other, main, claimID).Extract(); err != nil || cl.TTL != 300 {
		t.Errorf("claims.Get through the other node after renewing to 300: %+v, %v", cl, err)
	}
	err = messages.Delete(ctx, sc, main, ids[1], nil).ExtractErr()
	if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Errorf("messages.Delete of a claimed message without the claim: %v, want 403", err)
	}
	must(t, "messages.Delete with the claim", messages.Delete(ctx, sc, main, ids[0], messages.DeleteOpts{ClaimID: claimID}).ExtractErr())
	if _, err := messages.Get(ctx, sc, main, ids[0]).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("messages.Get of the deleted message: %v, want 404", err)
	}
	must(t, "claims.Delete", claims.Delete(ctx, sc, main, claimID).ExtractErr())
	if _, err := claims.Get(ctx, sc, main, claimID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("claims.Get of the released claim: %v, want 404", err)
	}
	if st := stats(ctx, t, sc, main); st.Claimed != 0 || st.Total != 24 {
		t.Errorf("queues.GetStats after deleting one and releasing the claim: %+v", st)
	}

	// Bulk delete and pop.
	must(t, "messages.DeleteMessages", messages.DeleteMessages(ctx, sc, main, messages.DeleteMessagesOpts{IDs: ids[1:3]}).ExtractErr())
	if st := stats(ctx, t, sc, main); st.Total != 22 {
		t.Errorf("queues.GetStats after deleting 2 more: %+v", st)
	}
	popped, err := messages.PopMessages(ctx, sc, main, messages.PopMessagesOpts{Pop: 3}).Extract()
	must(t, "messages.PopMessages", err)
	var poppedSeqs []int
	for _, pm := range popped {
		poppedSeqs = append(poppedSeqs, seqOf(pm.Body))
		if !slices.Contains(ids, pm.ID) || pm.TTL != 3600 {
			t.Errorf("messages.PopMessages item: %+v", pm)
		}
	}
	if !slices.Equal(poppedSeqs, []int{3, 4, 5}) {
		t.Errorf("messages.PopMessages 3 popped seqs %v, want the oldest [3 4 5]", poppedSeqs)
	}
	if st := stats(ctx, t, other, main); st.Total != 19 || st.Free != 19 {
		t.Errorf("queues.GetStats through the other node after popping 3: %+v", st)
	}

	// Share, purge, delete.
	share, err := queues.Share(ctx, sc, main, queues.ShareOpts{
		Paths:   []queues.SharePath{queues.PathMessages},
		Methods: []queues.ShareMethod{queues.MethodGet, queues.MethodPost},
	}).Extract()
	must(t, "queues.Share", err)
	if share.Signature == "" || share.Expires == "" || share.Project != sc.MoreHeaders["X-Project-ID"] ||
		!slices.Equal(share.Paths, []string{"/v2/queues/" + main + "/messages"}) || !slices.Equal(share.Methods, []string{"GET", "POST"}) {
		t.Errorf("queues.Share: %+v", share)
	}
	must(t, "queues.Purge", queues.Purge(ctx, sc, main, queues.PurgeOpts{ResourceTypes: []queues.PurgeResource{queues.ResourceMessages}}).ExtractErr())
	if st := stats(ctx, t, sc, main); st.Total != 0 {
		t.Errorf("queues.GetStats after purge: %+v", st)
	}
	for _, name := range names {
		must(t, "queues.Delete "+name, queues.Delete(ctx, sc, name).ExtractErr())
	}
	left := 0
	err = queues.List(other, queues.ListOpts{Limit: 20}).EachPage(ctx, func(_ context.Context, page pagination.Page) (bool, error) {
		qs, err := queues.ExtractQueues(page)
		left += len(qs)
		return true, err
	})
	must(t, "queues.List through the other node after deleting all", err)
	if left != 0 {
		t.Errorf("queues.List through the other node after deleting every queue: %d queues left", left)
	}
}

func stats(ctx context.Context, t *testing.T, sc *gophercloud.ServiceClient, queue string) queues.Stats {
	t.Helper()
	st, err := queues.GetStats(ctx, sc, queue).Extract()
	must(t, "queues.GetStats", err)
	return st
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// seqOf returns body["seq"] (JSON numbers decode as float64), or -1.
func seqOf(body map[string]any) int {
	if f, ok := body["seq"].(float64); ok {
		return int(f)
	}
	return -1
}

func intRange(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}
