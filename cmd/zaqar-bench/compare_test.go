package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompareReportsTheRatioOfRates(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, post, claim float64) string {
		r := results{Seconds: 10, Ops: []opResult{
			{Op: "post", Requests: 10, MessagesPerS: post, P50Ms: 1, P99Ms: 2},
			{Op: "claim", Requests: 10, MessagesPerS: claim},
		}}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	var out bytes.Buffer
	if rc := run([]string{"compare", write("ref.json", 200, 160), write("ours.json", 2000, 800)}, &out); rc != 0 {
		t.Fatalf("compare exited %d: %s", rc, out.String())
	}
	for _, want := range []string{"10.0x", "5.0x"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("comparison lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "delete") {
		t.Fatalf("an operation neither run made is listed:\n%s", out.String())
	}
	if rc := run([]string{"compare", "only-one.json"}, &out); rc != 2 {
		t.Fatalf("compare with one file exited %d, want 2", rc)
	}
}
