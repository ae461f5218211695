#!/usr/bin/env bash
# reference-zaqar.sh DIR PORT: runs the reference OpenStack Zaqar (Debian's
# zaqar-server package) for side-by-side benchmarks: one node, no auth, the
# Redis message and management stores, served by uWSGI with 4 processes on
# 127.0.0.1:PORT. Prints READY when it answers; stops everything on
# SIGINT/SIGTERM or when its parent goes away.
#
# Needs: apt-get install zaqar-server redis-server python3-redis uwsgi uwsgi-plugin-python3
set -euo pipefail
dir=${1:?usage: reference-zaqar.sh DIR PORT}
port=${2:?usage: reference-zaqar.sh DIR PORT}
processes=${ZAQAR_REF_PROCESSES:-4}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
for bin in redis-server uwsgi; do
	command -v "$bin" >/dev/null || { echo "reference-zaqar: $bin is not installed" >&2; exit 1; }
done
zaqar_dir=/usr/lib/python3/dist-packages/zaqar
[ -d "$zaqar_dir" ] || { echo "reference-zaqar: zaqar-server is not installed" >&2; exit 1; }
# Debian's python3-zaqar 15.0.0 leaves out the Redis driver's Lua scripts,
# without which every post and claim is a 503. They are in Zaqar's source
# (tag 15.0.0, zaqar/storage/redis/scripts/).
for f in claim_messages.lua index_messages.lua; do
	if [ ! -f "$zaqar_dir/storage/redis/scripts/$f" ]; then
		echo "reference-zaqar: $zaqar_dir/storage/redis/scripts/$f is missing (a Debian packaging gap);" >&2
		echo "  copy zaqar/storage/redis/scripts/*.lua from Zaqar 15.0.0's source into that directory" >&2
		exit 1
	fi
done

redis_sock="$dir/redis.sock"
cat >"$dir/zaqar.conf" <<CONF
[DEFAULT]
auth_strategy =
unreliable = True
pooling = False
debug = False
use_stderr = False
log_file = $dir/zaqar.log

[drivers]
transport = wsgi
message_store = redis
management_store = redis

[drivers:message_store:redis]
uri = redis:$redis_sock

[drivers:management_store:redis]
uri = redis:$redis_sock

[signed_url]
secret_key = bench-secret
CONF

# Zaqar's WSGI app reads only the standard config paths (/etc/zaqar/...;
# it calls the config parser with no arguments), so a wrapper points the
# parser at this file instead of editing /etc.
cat >"$dir/app.py" <<APP
from oslo_config import cfg

_parse = cfg.ConfigOpts.__call__


def _with_bench_config(self, *args, **kwargs):
    kwargs["default_config_files"] = ["$dir/zaqar.conf"]
    return _parse(self, *args, **kwargs)


cfg.ConfigOpts.__call__ = _with_bench_config
from zaqar.transport.wsgi.app import app  # noqa: E402
APP

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# Redis with its stock persistence (RDB snapshots, no AOF): no write is
# fsynced before Zaqar answers, unlike this service's Raft log.
redis-server --port 0 --unixsocket "$redis_sock" --unixsocketperm 700 --dir "$dir" \
	--daemonize no >"$dir/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$redis_sock" ] && break; sleep 0.1; done

# uWSGI's --http-socket closes the connection after each answer (clients
# must not reuse connections: zaqar-bench -no-keepalive); its keep-alive
# modes either tie a worker to one connection (--http11-socket) or close
# connections after bodiless answers that clients then fail on (--http
# --http-keepalive).
uwsgi --plugin python3 --http-socket "127.0.0.1:$port" --master --processes "$processes" --threads 1 \
	--wsgi-file "$dir/app.py" --callable app --die-on-term --disable-logging \
	>"$dir/uwsgi.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do
	if curl -fs -o /dev/null "http://127.0.0.1:$port/"; then
		echo READY
		wait -n "${pids[@]}" || true
		exit 1
	fi
	sleep 0.2
done
echo "reference-zaqar: no answer on port $port; see $dir/uwsgi.log" >&2
tail -20 "$dir/uwsgi.log" >&2
exit 1
