package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/zaqar-raft/zaqar/internal/testcluster"
)

func TestSmoke_PostOnFollowerReadOnOtherFollower(t *testing.T) {
	c := testcluster.Start(t, 3)
	f := c.Followers()
	do := func(method, url, body string) (int, string) {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Client-ID", "3381af92-2b9e-11e3-b191-718613007343")
		req.Header.Set("X-Project-ID", "p1")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := do("POST", f[0].URL()+"/v2/queues/q/messages", `{"messages":[{"body":{"a":1}}]}`)
	if code != 201 {
		t.Fatalf("post: %d %s", code, body)
	}
	code, body = do("GET", f[1].URL()+"/v2/queues/q/messages?echo=true", "")
	if code != 200 || !strings.Contains(body, `"a":1`) {
		t.Fatalf("list: %d %s", code, body)
	}
	c.WaitConverged(5e9)
}
