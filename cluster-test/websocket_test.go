package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsScenarioResult is what testdata/zaqarclient_ws_scenario.py prints.
// Pairs are [status, body]; refusals are [error class, error text].
type wsScenarioResult struct {
	Ping             int             `json:"ping"`
	QueueCreate      [2]any          `json:"queue_create"`
	QueueCreateAgain [2]any          `json:"queue_create_again"`
	QueueList        [2]any          `json:"queue_list"`
	QueueGet         [2]any          `json:"queue_get"`
	PostStatus       int             `json:"post_status"`
	PostedIDs        []string        `json:"posted_ids"`
	ListWithoutEcho  json.RawMessage `json:"list_without_echo"`
	ListPaged        []struct {
		ID   string         `json:"id"`
		TTL  int            `json:"ttl"`
		Body map[string]any `json:"body"`
	} `json:"list_paged"`
	Get struct {
		Messages struct {
			ID      string         `json:"id"`
			ClaimID *string        `json:"claim_id"`
			Body    map[string]any `json:"body"`
		} `json:"messages"`
	} `json:"get"`
	GetMany []string `json:"get_many"`
	Claim   struct {
		Status   int      `json:"status"`
		ID       string   `json:"id"`
		IDs      []string `json:"ids"`
		ClaimIDs []string `json:"claim_ids"`
	} `json:"claim"`
	ClaimUpdate               [2]any    `json:"claim_update"`
	ClaimGet                  int       `json:"claim_get"`
	ListUnclaimed             []string  `json:"list_unclaimed"`
	ListIncludeClaimed        []string  `json:"list_include_claimed"`
	DeleteClaimedWithoutClaim [2]string `json:"delete_claimed_without_claim"`
	DeleteWithClaim           int       `json:"delete_with_claim"`
	StatsAfterDelete          wsStats   `json:"stats_after_delete"`
	ClaimDelete               [2]any    `json:"claim_delete"`
	ClaimGetAfterDelete       [2]string `json:"claim_get_after_delete"`
	Pop                       []struct {
		ID         string         `json:"id"`
		Body       map[string]any `json:"body"`
		ClaimCount int            `json:"claim_count"`
	} `json:"pop"`
	DeleteMany            int             `json:"delete_many"`
	StatsAfterDeletes     wsStats         `json:"stats_after_deletes"`
	BadRequest            [2]string       `json:"bad_request"`
	QueueDelete           [2]any          `json:"queue_delete"`
	StatsAfterQueueDelete [2]string       `json:"stats_after_queue_delete"`
	QueueListAfterDelete  json.RawMessage `json:"queue_list_after_delete"`
	Kept                  []string        `json:"kept"`
}

// wsStats is queue_get_stats's body.
type wsStats struct {
	Messages struct {
		queueStats
		Oldest *struct {
			ID string `json:"id"`
		} `json:"oldest"`
		Newest *struct {
			ID string `json:"id"`
		} `json:"newest"`
	} `json:"messages"`
}

// TestWebsocket_PythonZaqarclientScenarioWorksAgainstFollowerAndLeader runs
// testdata/zaqarclient_ws_scenario.py (python-zaqarclient's websocket
// transport) against a follower and the leader of three zaqar-server
// processes, checks what REST on another node serves afterwards, and that
// SIGTERM closes a node's websocket clients with 1001.
func TestWebsocket_PythonZaqarclientScenarioWorksAgainstFollowerAndLeader(t *testing.T) {
	requirePython(t, "websocket", "python3-websocket")
	requirePython(t, "zaqarclient.transport.ws", "python3-zaqarclient")
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
			queue, project := "wsq-"+tc.name, "ws-"+tc.name
			var r wsScenarioResult
			runScenarioScript(t, "zaqarclient_ws_scenario.py", tc.target.WSURL(), tc.target, queue, project, &r)
			checkWSScenario(t, &r, queue)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			// What the scenario wrote over the websocket of one node is
			// what REST serves on another; the queue it deleted is gone.
			rc := newRESTClient(tc.other, "6c7d8e9f-0a1b-4c2d-8e3f-4a5b6c7d8e9f", project)
			if resp, err := rc.do(ctx, http.MethodHead, "/v2/queues/"+queue, nil); err != nil || resp.Status != http.StatusNotFound {
				t.Errorf("HEAD /v2/queues/%s on %s after the scenario deleted it: %v %v, want 404", queue, tc.other.ID, resp, err)
			}
			kept, err := rc.listAll(ctx, queue+"-kept")
			if err != nil {
				t.Fatal(err)
			}
			if len(kept) != 1 || kept[0].ID != r.Kept[0] || kept[0].Body["kept"] != true {
				t.Errorf("REST on %s lists %+v in %s-kept, want the message %v posted over websocket", tc.other.ID, kept, queue, r.Kept)
			}
		})
	}

	t.Run("stopping a node closes its websocket clients with 1001", func(t *testing.T) {
		node := c.Followers()[0]
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := node.dialWS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		if err := conn.Write(ctx, websocket.MessageText, []byte(`{"action": "ping_node", "headers": {"Client-ID": "6c7d8e9f-0a1b-4c2d-8e3f-4a5b6c7d8e9f", "X-Project-ID": "p"}}`)); err != nil {
			t.Fatal(err)
		}
		if _, b, err := conn.Read(ctx); err != nil || !strings.Contains(string(b), `"status":204`) {
			t.Fatalf("ping_node: %s %v", b, err)
		}
		// The scenario's connection to this node closed a moment ago; only
		// this one stays open.
		c.waitUntil(10*time.Second, "zaqar_ws_connections_open of "+node.ID+" to be 1", func() (bool, string) {
			n, err := metric(ctx, node, "zaqar_ws_connections_open")
			return err == nil && n == 1, fmt.Sprint(n, err)
		})
		closed := make(chan error, 1)
		go func() {
			_, _, err := conn.Read(ctx)
			closed <- err
		}()
		c.Stop(node)
		err = <-closed
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
			t.Fatalf("after SIGTERM the client read %v, want a close frame with 1001", err)
		}
	})
}

func checkWSScenario(t *testing.T, r *wsScenarioResult, queue string) {
	t.Helper()
	pairIs := func(name string, got [2]any, status int, body string) {
		t.Helper()
		gb, _ := json.Marshal(got[1])
		var g, w any
		_ = json.Unmarshal(gb, &g)
		if err := json.Unmarshal([]byte(body), &w); err != nil {
			t.Fatalf("bad expectation %s", body)
		}
		if got[0] != float64(status) || !jsonSame(g, w) {
			t.Errorf("%s: %d %s, want %d %s", name, got[0], gb, status, body)
		}
	}
	refusalIs := func(name string, got [2]string, class, text string) {
		t.Helper()
		if got[0] != class || !strings.Contains(got[1], text) {
			t.Errorf("%s: %s %q, want %s mentioning %q", name, got[0], got[1], class, text)
		}
	}
	if r.Ping != http.StatusNoContent {
		t.Errorf("ping_node: %d, want 204", r.Ping)
	}
	pairIs("queue_create", r.QueueCreate, 201, `"Queue `+queue+` created."`)
	pairIs("queue_create again", r.QueueCreateAgain, 204, `"Queue `+queue+` created."`)
	pairIs("queue_list detailed", r.QueueList, 200, `{"queues": [{"name": "`+queue+`", "metadata": {"description": "websocket"}}]}`)
	pairIs("queue_get", r.QueueGet, 200, `{"description": "websocket"}`)
	if r.PostStatus != http.StatusCreated || len(r.PostedIDs) != 5 {
		t.Fatalf("message_post: %d %v, want 201 and 5 ids", r.PostStatus, r.PostedIDs)
	}
	ids := r.PostedIDs
	if string(r.ListWithoutEcho) != `{"messages": []}` {
		t.Errorf("message_list without echo showed the producer its own messages: %s", r.ListWithoutEcho)
	}
	var pagedIDs []string
	var pagedSeqs []int
	for _, m := range r.ListPaged {
		pagedIDs = append(pagedIDs, m.ID)
		pagedSeqs = append(pagedSeqs, seqOf(m.Body))
		if m.TTL != 600 {
			t.Errorf("listed message %s has ttl %d, want 600", m.ID, m.TTL)
		}
	}
	if !slices.Equal(pagedIDs, ids) || !slices.Equal(pagedSeqs, intRange(0, 5)) {
		t.Errorf("message_list paged by marker: %v %v, want the posted ids %v with seqs 0..4", pagedIDs, pagedSeqs, ids)
	}
	if m := r.Get.Messages; m.ID != ids[4] || m.ClaimID != nil || seqOf(m.Body) != 4 {
		t.Errorf("message_get: %+v, want %s with seq 4 and claim_id null", m, ids[4])
	}
	if !slices.Equal(r.GetMany, ids[:2]) {
		t.Errorf("message_get_many: %v, want %v", r.GetMany, ids[:2])
	}
	if r.Claim.Status != http.StatusCreated || r.Claim.ID == "" || !slices.Equal(r.Claim.IDs, ids[:2]) ||
		!slices.Equal(r.Claim.ClaimIDs, []string{r.Claim.ID, r.Claim.ID}) {
		t.Errorf("claim_create: %+v, want 201 claiming %v", r.Claim, ids[:2])
	}
	pairIs("claim_update", r.ClaimUpdate, 204, `"Claim `+r.Claim.ID+` updated."`)
	if r.ClaimGet != 120 {
		t.Errorf("claim_get ttl after claim_update: %d, want 120", r.ClaimGet)
	}
	if !slices.Equal(r.ListUnclaimed, ids[2:]) || !slices.Equal(r.ListIncludeClaimed, ids) {
		t.Errorf("message_list: unclaimed %v (want %v), include_claimed %v (want %v)", r.ListUnclaimed, ids[2:], r.ListIncludeClaimed, ids)
	}
	refusalIs("message_delete of a claimed message without its claim", r.DeleteClaimedWithoutClaim, "ForbiddenError",
		"This message is claimed; it cannot be deleted without a valid claim ID.")
	if r.DeleteWithClaim != http.StatusNoContent {
		t.Errorf("message_delete with the claim: %d, want 204", r.DeleteWithClaim)
	}
	st := r.StatsAfterDelete.Messages
	if st.queueStats != (queueStats{Claimed: 1, Free: 3, Total: 4}) || st.Oldest == nil || st.Oldest.ID != ids[1] || st.Newest == nil || st.Newest.ID != ids[4] {
		t.Errorf("queue_get_stats after deleting a claimed message: %+v", r.StatsAfterDelete)
	}
	pairIs("claim_delete", r.ClaimDelete, 204, `"Claim `+r.Claim.ID+` deleted."`)
	refusalIs("claim_get after claim_delete", r.ClaimGetAfterDelete, "ResourceNotFound", "does not exist")
	if len(r.Pop) != 1 || r.Pop[0].ID != ids[1] || seqOf(r.Pop[0].Body) != 1 || r.Pop[0].ClaimCount != 1 {
		t.Errorf("pop 1: %+v, want %s (seq 1, claimed once)", r.Pop, ids[1])
	}
	if r.DeleteMany != http.StatusNoContent {
		t.Errorf("message_delete_many: %d, want 204", r.DeleteMany)
	}
	st = r.StatsAfterDeletes.Messages
	if st.queueStats != (queueStats{Free: 1, Total: 1}) || st.Oldest == nil || st.Oldest.ID != ids[4] {
		t.Errorf("queue_get_stats after pop and bulk delete: %+v", r.StatsAfterDeletes)
	}
	refusalIs("message_post without messages", r.BadRequest, "MalformedRequest", "Schema validation failed.")
	pairIs("queue_delete", r.QueueDelete, 204, `"Queue `+queue+` removed."`)
	refusalIs("queue_get_stats of the deleted queue", r.StatsAfterQueueDelete, "ResourceNotFound", `"total": 0`)
	if string(r.QueueListAfterDelete) != `{"queues": []}` {
		t.Errorf("queue_list after queue_delete: %s", r.QueueListAfterDelete)
	}
	if len(r.Kept) != 1 {
		t.Errorf("message_post to the kept queue: %v", r.Kept)
	}
}

// jsonSame compares two decoded JSON values.
func jsonSame(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
