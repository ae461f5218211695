package clustertest

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The verdict of the tempest run is only as good as its reading of the
// results: these tests feed it hand-made results and check that every kind
// of deviation fails the run.

const (
	compatTestA = "zaqar_tempest_plugin.tests.v2.test_queues.TestQueues.test_create_delete_queue"
	compatTestB = "zaqar_tempest_plugin.tests.v2.test_claims.TestClaims.test_post_claim"
	compatTestC = "zaqar_tempest_plugin.tests.v2.test_subscriptions.TestSubscriptions.test_trust_subscription"
)

func TestCompatJudge_FailsOnEveryDeviationAndOnlyThen(t *testing.T) {
	selected := []string{compatTestA, compatTestB, compatTestC}
	expected := map[string]string{compatTestC: "not implemented"}
	for _, tc := range []struct {
		name    string
		results map[string]string
		ok      bool
		failed  []string
	}{
		{"all pass but the expected failure", map[string]string{compatTestA: "success", compatTestB: "success", compatTestC: "fail"}, true, nil},
		{"the expected failure never reports", map[string]string{compatTestA: "success", compatTestB: "success"}, true, nil},
		{"a test fails", map[string]string{compatTestA: "success", compatTestB: "fail", compatTestC: "fail"}, false, []string{compatTestB}},
		{"a test is skipped", map[string]string{compatTestA: "skip", compatTestB: "success", compatTestC: "fail"}, false, []string{compatTestA}},
		{"a class set-up fails and its tests never report", map[string]string{
			"setUpClass (zaqar_tempest_plugin.tests.v2.test_claims.TestClaims)": "fail",
			compatTestA: "success", compatTestC: "fail",
		}, false, []string{compatTestB}},
		{"an expected failure passes", map[string]string{compatTestA: "success", compatTestB: "success", compatTestC: "success"}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := judgeCompat(selected, tc.results, expected)
			if rep.ok() != tc.ok {
				t.Fatalf("ok() = %v, want %v: %+v", rep.ok(), tc.ok, rep)
			}
			var failed []string
			for id := range rep.Failed {
				failed = append(failed, id)
			}
			slices.Sort(failed)
			if !slices.Equal(failed, tc.failed) {
				t.Fatalf("failed %v, want %v", failed, tc.failed)
			}
			if got := len(rep.Passed) + len(rep.ExpectedFailures) + len(rep.Failed) + len(rep.UnexpectedPasses); got != len(selected) {
				t.Fatalf("%d tests judged, want every one of %d", got, len(selected))
			}
			report := rep.format("regex x", 0, 0)
			if verdict := strings.Fields(report)[1]; (verdict == "PASS") != tc.ok {
				t.Fatalf("report says %s:\n%s", verdict, report)
			}
		})
	}
}

func TestCompatResults_ReadSubunitCSVWithoutAttributes(t *testing.T) {
	in := `test,status,start_time,stop_time
"` + compatTestA + `[id-f2db96f3-fa02-426a-9b42-5806e12f14d4]",success,2026-12-05 12:33:07+00:00,2026-12-05 12:33:07+00:00
"` + compatTestB + `[id-1,negative]",failure,2026-12-05 12:33:07+00:00,2026-12-05 12:33:08+00:00
"` + compatTestB + `[id-1,negative]",success,2026-12-05 12:33:09+00:00,2026-12-05 12:33:10+00:00
setUpClass (zaqar_tempest_plugin.tests.v2.test_messages.TestMessages),failure,2026-12-05 12:31:43+00:00,2026-12-05 12:31:43+00:00
`
	got, err := parseSubunitCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		compatTestA: "success",
		compatTestB: "failure", // reported twice: the failure counts
		"setUpClass (zaqar_tempest_plugin.tests.v2.test_messages.TestMessages)": "failure",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for id, status := range want {
		if got[id] != status {
			t.Fatalf("%s: %q, want %q (all: %v)", id, got[id], status, got)
		}
	}
}

func TestCompatExpectedFailures_EveryLineNamesAV2TestAndAReason(t *testing.T) {
	expected, err := readExpectedFailures(compatExpectedList)
	if err != nil {
		t.Fatal(err)
	}
	for id := range expected {
		if !strings.HasPrefix(id, "zaqar_tempest_plugin.tests.v2.") || strings.Contains(id, "[") {
			t.Errorf("%q is not a bare v2 test id", id)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.txt")
	if err := os.WriteFile(bad, []byte(compatTestA+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readExpectedFailures(bad); err == nil {
		t.Fatal("a line without a reason was accepted")
	}
}

func TestCompatRoundRobin_SpreadsConnectionsOverEveryBackend(t *testing.T) {
	var backends []string
	for i := 0; i < 3; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		name := string(rune('a' + i))
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = io.WriteString(c, name)
				c.Close()
			}
		}()
		backends = append(backends, ln.Addr().String())
	}
	rr, err := startRoundRobin(backends)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.close()
	var got string
	for i := 0; i < 6; i++ {
		c, err := net.Dial("tcp", rr.Addr())
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		got += string(b)
	}
	if got != "abcabc" {
		t.Fatalf("backends answered %q, want abcabc", got)
	}
	if served := rr.Served(); !slices.Equal(served, []int{2, 2, 2}) {
		t.Fatalf("served %v", served)
	}
}
