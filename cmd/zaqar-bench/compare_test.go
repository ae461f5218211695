package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeResults saves r as -json would, as name in dir.
func writeResults(t *testing.T, dir, name string, r results) string {
	t.Helper()
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

func TestCompareReportsTheRatioOfRates(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, post, claim float64) string {
		return writeResults(t, dir, name, results{Seconds: 10, Ops: []opResult{
			{Op: "post", Requests: 10, MessagesPerS: post, P50Ms: 1, P99Ms: 2},
			{Op: "claim", Requests: 10, MessagesPerS: claim},
		}})
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
	if strings.Contains(out.String(), "CPU") {
		t.Fatalf("CPU is compared although neither run measured its nodes:\n%s", out.String())
	}
	if rc := run([]string{"compare", "only-one.json"}, &out); rc != 2 {
		t.Fatalf("compare with one file exited %d, want 2", rc)
	}
}

func TestCompareReportsTheRatioOfCPUPerRequestOfSpawnedNodes(t *testing.T) {
	dir := t.TempDir()
	// 20 requests in 10 s; nodes busy 30% + 10% of a core: 0.4 core x 10 s
	// / 20 requests = 200 ms per request; the other run 50% x 10 s / 20 =
	// 250 ms.
	write := func(name string, cpu ...float64) string {
		r := results{Seconds: 10, Ops: []opResult{{Op: "post", Requests: 15}, {Op: "claim", Requests: 5}}}
		for _, c := range cpu {
			r.Nodes = append(r.Nodes, nodeResult{Node: "n", CPUPercent: c})
		}
		return writeResults(t, dir, name, r)
	}
	var out bytes.Buffer
	if rc := run([]string{"compare", write("plain.json", 30, 10), write("tls.json", 20, 30)}, &out); rc != 0 {
		t.Fatalf("compare exited %d: %s", rc, out.String())
	}
	if want := "baseline 200000 µs, candidate 250000 µs, ratio 1.25x"; !strings.Contains(out.String(), want) {
		t.Fatalf("comparison lacks %q:\n%s", want, out.String())
	}
}
