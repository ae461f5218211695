#!/usr/bin/env bash
# bench-tls.sh: the cost of TLS (make bench-tls). In one run, on this
# machine, a local 3-node cluster of this service (fsync on) under the mixed
# workload of make bench (2x10 producers, 2x10 consumers), over REST and
# over websocket, each first without TLS and then with TLS on both ports
# (zaqar-bench -spawn 3 -tls: https/wss from the clients, mutual TLS between
# the nodes), BENCH_TIME each. Each pair is compared: rates, latencies and
# the ratio of the nodes' CPU time per request. BENCH_ROUNDS repeats the
# pairs (plain and TLS alternate, so that drift on a shared machine hits
# both). Every run's table is printed and its JSON kept as bench-*.json.
set -euo pipefail
T=${BENCH_TIME:-20s}
ROUNDS=${BENCH_ROUNDS:-1}
BENCH=./bin/zaqar-bench
MIXED=(-producers 2 -producer-workers 10 -consumers 2 -consumer-workers 10)

for round in $(seq "$ROUNDS"); do
	for transport in rest ws; do
		base=bench-tls-$transport-r$round
		echo "== round $round, $transport, 3 nodes, fsync on: without TLS"
		$BENCH -spawn 3 -transport "$transport" -time "$T" "${MIXED[@]}" -json "$base-plain.json"
		echo "== round $round, $transport: with TLS on both ports"
		$BENCH -spawn 3 -tls -transport "$transport" -time "$T" "${MIXED[@]}" -json "$base-tls.json"
		echo "== round $round, $transport: with TLS (candidate) against without (baseline)"
		$BENCH compare "$base-plain.json" "$base-tls.json"
	done
done
