#!/usr/bin/env bash
# catchup.sh [MESSAGES]: how long a node that was down takes to catch up.
# Starts a 3-node cluster (fsync on), stops node n3, posts MESSAGES
# (default 1,000,000) through n1 and n2 with zaqar-bench in batches of 10,
# restarts n3 and reports the seconds from its start until its applied
# index reaches the leader's commit index at that moment.
set -euo pipefail
want=${1:-1000000}
bin=./bin
dir=$(mktemp -d)
peers="n1=127.0.0.1:7931,n2=127.0.0.1:7932,n3=127.0.0.1:7933"
pids=()
start() {
	local i=$1 level=${2:-warn}
	$bin/zaqar-server -node-id n$i -data-dir "$dir/n$i" -api-addr 127.0.0.1:893$i -raft-addr 127.0.0.1:793$i \
		-bootstrap "$peers" -log-level "$level" -raft-log-level info ${CATCHUP_SERVER_ARGS:-} >>"$dir/n$i.log" 2>&1 &
	pids[$i]=$!
}
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT INT TERM
status() { curl -fsS -H 'X-Roles: admin' "http://127.0.0.1:893$1/admin/cluster"; }
applied() { status "$1" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print([n for n in d["nodes"] if n["id"]==sys.argv[1]][0]["applied_index"])' "n$1"; }
commit() { status "$1" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(max(n.get("commit_index",0) for n in d["nodes"]))'; }

for i in 1 2 3; do start $i; done
leader() { status 1 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])'; }
for _ in $(seq 100); do l=$(leader 2>/dev/null) && [ -n "$l" ] && break; sleep 0.2; done
kill "${pids[3]}"; wait "${pids[3]}" 2>/dev/null || true
echo "n3 stopped; posting $want messages through n1 and n2"
posted=0
while [ "$posted" -lt "$want" ]; do
	$bin/zaqar-bench -targets http://127.0.0.1:8931,http://127.0.0.1:8932 -time 30s -warmup 0s \
		-producers 4 -producer-workers 16 -consumers 0 -messages-per-post 10 -json "$dir/post.json" >/dev/null
	n=$(/usr/bin/python3 -c 'import json,sys; print([o for o in json.load(open(sys.argv[1]))["ops"] if o["op"]=="post"][0]["messages"])' "$dir/post.json")
	posted=$((posted + n))
	echo "  posted $posted"
done
target=$(commit 1)
echo "leader commit index $target; restarting n3"
t0=$(date +%s.%N)
start 3 info
until a=$(applied 3 2>/dev/null) && [ "$a" -ge "$target" ]; do sleep 0.1; done
t1=$(date +%s.%N)
printf 'n3 caught up %d messages (%d log entries) in %.1f s\n' "$posted" "$target" "$(echo "$t1 - $t0" | bc)"
if grep -q -i "installing remote snapshot\|install.*snapshot" "$dir/n3.log"; then
	echo "n3 caught up by installing the leader's snapshot, then the log entries after it"
else
	echo "n3 caught up from the leader's log alone"
fi
du -sh "$dir"/n1 | sed 's/^/leader data: /'
