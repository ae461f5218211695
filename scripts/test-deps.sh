#!/usr/bin/env bash
# test-deps.sh: make sure the Debian packages the system tests need are
# installed, before anything long runs (`make test`, `.ci/run`).
#
# The system tests (cluster-test/) drive the real clients against a real
# Keystone, and fail rather than skip without them. If a package is
# missing and we are root, or sudo works without a password, it is
# installed with apt-get (noninteractive, no recommended packages);
# otherwise the script stops at once, printing the one command that
# installs them.
#
# With the argument "compat", the packages of the upstream conformance
# suite (make compat: tempest, zaqar-tempest-plugin, and subunit to read
# tempest's results) are needed too.
#
# TEST_DEPS_PACKAGES and TEST_DEPS_COMPAT_PACKAGES replace the package lists
# (the script's own tests use them); the lists below are the only place that
# names the packages.
set -euo pipefail

packages=${TEST_DEPS_PACKAGES-python3-zaqarclient python3-openstackclient python3-websocket python3-keystone sqlite3}
if [ "${1:-}" = compat ]; then
	packages="$packages ${TEST_DEPS_COMPAT_PACKAGES-python3-tempest zaqar-tempest-plugin subunit}"
elif [ $# -gt 0 ]; then
	echo "usage: test-deps.sh [compat]" >&2
	exit 2
fi

installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing() {
	local p out=()
	for p in $packages; do
		installed "$p" || out+=("$p")
	done
	echo "${out[@]}"
}

if ! command -v dpkg-query >/dev/null; then
	echo "test-deps: dpkg-query not found; the system tests need Debian's packages: $packages" >&2
	exit 1
fi

need=$(missing)
if [ -z "$need" ]; then
	echo "test-deps: the system tests' packages are installed ($packages)"
	exit 0
fi

command="apt-get update && apt-get install -y --no-install-recommends $need"
if [ "$(id -u)" -eq 0 ]; then
	as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
	as_root=(sudo -n)
else
	echo "test-deps: the system tests need Debian packages that are not installed: $need" >&2
	echo "test-deps: install them with:" >&2
	echo "    sudo sh -c '$command'" >&2
	exit 1
fi

echo "test-deps: installing $need"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null

still=$(missing)
if [ -n "$still" ]; then
	echo "test-deps: apt-get did not install: $still" >&2
	exit 1
fi
echo "test-deps: installed $need"
