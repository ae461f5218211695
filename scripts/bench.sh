#!/usr/bin/env bash
# bench.sh: the standard benchmark (make bench). In one run, on this machine:
#   1. the reference Zaqar (scripts/reference-zaqar.sh: Debian's zaqar-server,
#      Redis, uWSGI with 4 processes, one node) under the mixed workload, then
#      producers only, when it is installed;
#   2. a local 3-node cluster of this service (fsync on) under the same two
#      workloads, then posts in batches of 10;
#   3. the ratios of (2) to (1);
#   4. push latency (post -> delivery) to 5 webhook subscribers (a loopback
#      receiver) and to 5 websocket subscribers, 2,000 single-message posts
#      through all nodes, paced and then as fast as 20 posters go;
#   5. the nodes' CPU while 1, then 100, consumers wait on empty queues
#      (long-poll claims, -wait 20): the difference is what waiting costs.
# Every run's table is printed and its JSON kept as bench-*.json.
set -euo pipefail
T=${BENCH_TIME:-60s}
BENCH=./bin/zaqar-bench
MIXED=(-producers 2 -producer-workers 10 -consumers 2 -consumer-workers 10)
PRODUCERS=(-producers 2 -producer-workers 10 -consumers 0)
BATCH=(-producers 4 -producer-workers 16 -consumers 0 -messages-per-post 10)

reference=""
if [ "${BENCH_REFERENCE:-auto}" != "off" ]; then
	dir=$(mktemp -d)
	port=${BENCH_REFERENCE_PORT:-8788}
	scripts/reference-zaqar.sh "$dir" "$port" >"$dir/out" 2>&1 &
	ref_pid=$!
	for _ in $(seq 300); do
		grep -q READY "$dir/out" 2>/dev/null && { reference="http://127.0.0.1:$port"; break; }
		kill -0 "$ref_pid" 2>/dev/null || break
		sleep 0.2
	done
	if [ -z "$reference" ]; then
		echo "== reference Zaqar not available, comparison skipped:"; cat "$dir/out"
	else
		echo "== reference Zaqar (Redis, uWSGI x4, one node) at $reference: mixed workload"
		$BENCH -targets "$reference" -no-keepalive -time "$T" "${MIXED[@]}" -json bench-reference-mixed.json
		echo "== reference Zaqar: producers only"
		$BENCH -targets "$reference" -no-keepalive -time "$T" "${PRODUCERS[@]}" -json bench-reference-producers.json
	fi
	kill "$ref_pid" 2>/dev/null || true
	wait "$ref_pid" 2>/dev/null || true
	rm -rf "$dir"
fi

echo "== this service, 3 nodes, fsync on: mixed workload"
$BENCH -spawn 3 -time "$T" "${MIXED[@]}" -json bench-mixed.json
echo "== this service: producers only"
$BENCH -spawn 3 -time "$T" "${PRODUCERS[@]}" -json bench-producers.json
echo "== this service: posts in batches of 10"
$BENCH -spawn 3 -time "$T" "${BATCH[@]}" -json bench-batch.json

for kind in webhook ws; do
	echo "== this service: push latency, 5 $kind subscribers, 2,000 posts paced at 250/s"
	$BENCH push -spawn 3 -subscriber $kind -post-rate 250 -post-workers 10 -json bench-push-$kind-paced.json
	echo "== this service: push latency, 5 $kind subscribers, 2,000 posts from 20 posters unpaced (saturates 2 cores)"
	$BENCH push -spawn 3 -subscriber $kind -post-workers 20 -json bench-push-$kind-unpaced.json
done
echo "== this service: 1 consumer waiting on an empty queue (claims with -wait 20): the idle cluster's floor"
$BENCH -spawn 3 -time "$T" -producers 0 -consumers 1 -consumer-workers 1 -wait 20 -json bench-idle-1.json
echo "== this service: 100 consumers waiting on empty queues (claims with -wait 20); their cost is the difference"
$BENCH -spawn 3 -time "$T" -producers 0 -consumers 10 -consumer-workers 10 -wait 20 -json bench-idle-100.json

if [ -n "$reference" ]; then
	echo "== this service against the reference, same workload, same machine, same run"
	$BENCH compare bench-reference-mixed.json bench-mixed.json
	$BENCH compare bench-reference-producers.json bench-producers.json
fi
