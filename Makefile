# Zaqar-compatible replicated messaging service.
SHELL := /bin/bash
GO       ?= go
BIN      := bin
PKGS     := ./...
STATICCHECK_VERSION := 2025.1.1

.PHONY: all build run test test-deps test-scripts test-unit test-system fuzz-smoke compat compat-smoke compat-deps chaos chaos-tls bench bench-tls bench-smoke bench-micro bench-core bench-depth bench-pools lint fmt vet clean

all: build

build:
	$(GO) build -o $(BIN)/zaqar-server ./cmd/zaqar-server
	$(GO) build -o $(BIN)/zaqarctl ./cmd/zaqarctl
	$(GO) build -o $(BIN)/zaqar-bench ./cmd/zaqar-bench

## run: a local three-node cluster on 127.0.0.1 (REST 8888-8890, data in ./data); Ctrl-C stops it
run: build
	./$(BIN)/zaqar-server local-cluster -nodes 3 -data-dir ./data

## test: first the Debian packages the system tests and the conformance suite need (scripts/test-deps.sh compat:
## installed if root or passwordless sudo, else it stops with the command), formatting and vet checks, a short run
## of every fuzz target, unit and in-process cluster tests with -race (the committed fuzz seeds run there as
## ordinary tests), the system tests, the upstream conformance suite without its 140 s sleeper (compat-smoke)
test: compat-deps fmt vet test-scripts fuzz-smoke test-unit test-system compat-smoke bench-smoke

## test-deps: check (and if possible install) the Debian packages the system tests need
test-deps:
	scripts/test-deps.sh

## test-scripts: tests of the scripts make test relies on
test-scripts:
	scripts/test-deps.test.sh

test-unit:
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v /cluster-test)

test-system: test-deps
	$(GO) test -count=1 -timeout 20m -v ./cluster-test/ 2>&1 | scripts/gotest-summary.sh cluster-test.out chaos: ; exit $${PIPESTATUS[0]}

## fuzz-smoke: every fuzz target (package:Target) for FUZZTIME each, seeds from testdata/fuzz first; a failure
## prints the fuzzer's output and leaves the failing input in that package's testdata/fuzz/<Target>/
FUZZTIME ?= 3s
FUZZ_TARGETS := ./auth:FuzzPolicyFile ./auth:FuzzKeystoneToken \
	./service:FuzzRequestBodies ./service:FuzzParsePatch ./service:FuzzIdentityHeaders ./service:FuzzSignedURL \
	./httpapi:FuzzRESTRequest ./wsapi:FuzzDecodeRequest ./wsapi:FuzzMsgpackToJSON ./wsapi:FuzzActionFrames \
	./fsm:FuzzDecodeEntry ./fsm:FuzzDecodeEntryResult ./store:FuzzKeyString \
	./internal/codec:FuzzDecoder ./internal/jsonx:FuzzCheck ./internal/bodycrypt:FuzzOpen
fuzz-smoke:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; start=$$(date +%s); \
		if ! out=$$($(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg 2>&1); then \
			echo "$$out"; echo "FAIL fuzz $$pkg $$fn"; exit 1; fi; \
		echo "ok   fuzz $$pkg $$fn ($$(( $$(date +%s) - start ))s)"; \
	done

## compat: the upstream conformance suite: zaqar-tempest-plugin's 135 v2 tests, run by tempest against a 3-node
## cluster in Keystone mode with a real Keystone (cluster-test/compat_test.go); prints pass/fail counts; the tests
## known not to pass yet are in cluster-test/testdata/compat/expected-failures.txt; COMPAT_KEEP=1 keeps the workspace
compat: compat-deps
	COMPAT=full $(GO) test -count=1 -timeout 30m -v -run '^TestCompat_' ./cluster-test/ 2>&1 | scripts/gotest-summary.sh compat.out compat: ; exit $${PIPESTATUS[0]}

## compat-smoke: the same without test_dead_letter_queue, which sleeps 140 s
compat-smoke: compat-deps
	COMPAT=smoke $(GO) test -count=1 -timeout 30m -v -run '^TestCompat_' ./cluster-test/ 2>&1 | scripts/gotest-summary.sh compat.out compat: ; exit $${PIPESTATUS[0]}

## compat-deps: the system tests' Debian packages and tempest's (scripts/test-deps.sh compat)
compat-deps:
	scripts/test-deps.sh compat

## chaos: the chaos suite (docs/testing.md) on a 3-node and a 5-node cluster, CHAOS_DURATION split between them, then
## on two pools of 3 nodes for one size's share (TestChaos_TwoPools, CHAOS_POOLS_DURATION); CHAOS_SEED=<n> reproduces
## a run; the report is printed and the history and logs are kept (path in the report)
CHAOS_DURATION ?= 10m
CHAOS_TIMEOUT  ?= 90m
chaos:
	CHAOS_DURATION=$(CHAOS_DURATION) CHAOS_KEEP=1 $(GO) test -count=1 -timeout $(CHAOS_TIMEOUT) -v -run '^TestChaos' ./cluster-test/ 2>&1 | scripts/gotest-summary.sh chaos.out chaos: ; exit $${PIPESTATUS[0]}

## chaos-tls: the chaos suite with TLS on every port (CHAOS_TLS=1): the load over https and wss, mutual TLS between
## the nodes through the fault proxies, a certificate issued for every replacement node
chaos-tls:
	CHAOS_TLS=1 $(MAKE) chaos

## bench: in one run, the reference Zaqar (Debian's zaqar-server on Redis, if installed; scripts/reference-zaqar.sh)
## and a local 3-node cluster with fsync on under the same workloads (mixed 2x10 producers + 2x10 consumers,
## producers only, batches of 10), BENCH_TIME each; then push latency (5 webhook, then websocket, subscribers;
## 2,000 posts) and the CPU of 100 consumers waiting (-wait 20) on empty queues; prints the tables and the ratios,
## writes bench-*.json
BENCH_TIME ?= 20s
bench: build
	BENCH_TIME=$(BENCH_TIME) scripts/bench.sh

## bench-tls: the cost of TLS: in one run a local 3-node cluster (fsync on) under the mixed workload over REST and over
## websocket, each without TLS and then with TLS on both ports (https/wss, mutual TLS between the nodes), BENCH_TIME
## each; prints every table and, per pair, the ratios of the rates and of the nodes' CPU time per request
bench-tls: build
	BENCH_TIME=$(BENCH_TIME) scripts/bench-tls.sh

## bench-smoke: short runs of the tool (the load, push, pools) and one iteration of every Go benchmark, which fail only
## if the tool, the cluster or a benchmark breaks (no timing checks)
bench-smoke: build
	./$(BIN)/zaqar-bench -spawn 3 -time 7s -warmup 1s -producers 1 -producer-workers 4 -consumers 1 -consumer-workers 4 -observers 1 -observer-workers 2 -json /dev/null
	./$(BIN)/zaqar-bench -spawn 3 -time 4s -warmup 1s -transport ws -producers 1 -producer-workers 2 -consumers 1 -consumer-workers 2 -json /dev/null
	./$(BIN)/zaqar-bench -spawn 3 -time 4s -warmup 1s -producers 1 -producer-workers 2 -consumers 1 -consumer-workers 2 -wait 2 -json /dev/null
	./$(BIN)/zaqar-bench push -spawn 3 -posts 50 -subscriber webhook -json /dev/null
	./$(BIN)/zaqar-bench push -spawn 3 -posts 50 -subscriber ws -json /dev/null
	./$(BIN)/zaqar-bench pools -duration 2s -warmup 500ms -workers 4 -queues 4 -skip-shared >/dev/null
	BENCH_DEPTH_MESSAGES=0,1000 BENCH_DEPTH_CLAIMED=0,100 $(GO) test -run '^$$' -bench . -benchtime 1x $(MICRO_PKGS) ./raftnode/

## bench-micro: Go micro-benchmarks of the hot paths (command encoding, FSM apply, store scans, JSON checks)
MICRO_PKGS := ./fsm/ ./store/ ./internal/jsonx/ ./httpapi/
## (BenchmarkDepth: BENCH_DEPTH_MESSAGES, BENCH_DEPTH_CLAIMED and BENCH_DEPTH_MODES choose its cases; see store/bench_test.go)
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s $(MICRO_PKGS)

## bench-depth: claim 10 + release, stats and list 10 (claimed excluded) on queues of DEPTH_MESSAGES messages with
## DEPTH_CLAIMED claimed, against a local 3-node cluster of this build (DEPTH_SERVER to use another binary);
## medians of 20 sequential requests and node CPU per request
DEPTH_MESSAGES ?= 0,100000,1000000
DEPTH_CLAIMED ?= 0,100000
DEPTH_SERVER ?= ./$(BIN)/zaqar-server
bench-depth: build
	./$(BIN)/zaqar-bench depth -spawn 3 -server-bin $(DEPTH_SERVER) -messages $(DEPTH_MESSAGES) -claimed $(DEPTH_CLAIMED)

## bench-pools: does throughput scale with pools? In one run (zaqar-bench pools; docs/performance.md "Pools"): one pool
## of three nodes pinned to CPU 0 (taskset), loaded with single-message posts (fsync on) by the tool pinned to CPU 1
## and then to CPU 0; two pools, pinned one per CPU, under the same load per pool with each request sent to the
## queue's own pool; then the same requests paced, sent to the queue's pool and to the other one (proxied).
## POOLS_TIME per phase; prints msgs/s, the ratio, nodes' and the tool's CPU per message, and proxied/direct
POOLS_TIME ?= 12s
bench-pools: build
	./$(BIN)/zaqar-bench pools -duration $(POOLS_TIME)

## bench-core: the replicated core without HTTP or a load generator (three in-process nodes, real Raft over
## loopback TCP, fsync on, both log stores): peak proposals and CPU per message, and latency at a fixed rate
bench-core:
	$(GO) test -run '^$$' -bench . -benchtime 10s ./raftnode/

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

lint: fmt vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

clean:
	rm -rf $(BIN) data cluster-test.out chaos.out compat.out bench-*.json
