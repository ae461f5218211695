#!/usr/bin/env bash
# Starts a real Keystone (Debian's python3-keystone) on 127.0.0.1:PORT with
# an SQLite database in DIR, bootstrapped with an admin user (password
# ADMIN_PASSWORD) in project "admin", a "service" project, and the roles
# admin, member and reader. Prints "READY" once Keystone answers; keeps
# running until killed (it execs the server, so its pid is Keystone's).
#
# KEYSTONE_TOKEN_EXPIRATION sets the tokens' lifetime (s). KEYSTONE_CACHE=memory
# turns on Keystone's in-process cache: without it, validating one token
# runs hundreds of SQLite queries (a second or more of CPU on a loaded
# machine, and the server is single-threaded), which a long run of many
# requests cannot afford; the default (off) keeps every answer straight from
# the database.
#
# usage: keystone.sh DIR PORT ADMIN_PASSWORD
set -euo pipefail
dir=$1 port=$2 password=$3
mkdir -p "$dir/fernet-keys" "$dir/credential-keys"
cat > "$dir/keystone.conf" <<CONF
[DEFAULT]
log_file = $dir/keystone.log
[database]
connection = sqlite:///$dir/keystone.db
[token]
provider = fernet
expiration = ${KEYSTONE_TOKEN_EXPIRATION:-3600}
[fernet_tokens]
key_repository = $dir/fernet-keys
[fernet_receipts]
key_repository = $dir/fernet-keys
[credential]
key_repository = $dir/credential-keys
[cache]
CONF
if [ "${KEYSTONE_CACHE:-}" = memory ]; then
  printf 'enabled = true\nbackend = dogpile.cache.memory\n' >> "$dir/keystone.conf"
else
  echo 'enabled = false' >> "$dir/keystone.conf"
fi
manage() { keystone-manage --config-file "$dir/keystone.conf" "$@" >>"$dir/manage.log" 2>&1; }
manage db_sync
# WAL lets a write commit while another connection of the same server
# holds a read transaction (SQLite's default journal answers "database is
# locked", which Keystone turns into 500s).
sqlite3 "$dir/keystone.db" 'PRAGMA journal_mode=WAL;' >/dev/null
manage fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
manage credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
manage bootstrap --bootstrap-password "$password" \
  --bootstrap-admin-url "http://127.0.0.1:$port/v3/" \
  --bootstrap-public-url "http://127.0.0.1:$port/v3/" \
  --bootstrap-internal-url "http://127.0.0.1:$port/v3/" \
  --bootstrap-region-id RegionOne
echo READY
exec keystone-wsgi-public --host 127.0.0.1 --port "$port" -- --config-file "$dir/keystone.conf" >>"$dir/server.log" 2>&1
