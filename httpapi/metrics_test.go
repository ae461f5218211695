package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/zaqar-raft/zaqar/testkit/testcluster"
)

func TestMetrics_CountRequestsByRoutePatternAndExportRaftState(t *testing.T) {
	c := testcluster.Start(t, 3)
	f := c.Followers()[0]
	req, _ := http.NewRequest(http.MethodPut, f.URL()+"/v2/queues/metered", nil)
	req.Header.Set("Client-ID", newUUID())
	req.Header.Set("X-Project-ID", "metrics")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = http.Get(f.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`zaqar_http_requests_total{code="201",method="PUT",route="/v2/queues/{queue_name}"} 1`,
		`zaqar_http_request_duration_seconds_count{method="PUT",route="/v2/queues/{queue_name}"} 1`,
		"zaqar_raft_state 0",
		"zaqar_raft_voters 3",
		"zaqar_raft_applied_index ",
		"zaqar_pebble_disk_usage_bytes ",
		"go_goroutines ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
