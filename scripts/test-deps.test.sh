#!/usr/bin/env bash
# test-deps.test.sh: tests of test-deps.sh. The "missing" paths run with
# stand-ins for id, sudo, apt-get and dpkg-query first on PATH, so nothing
# is installed or removed; the "all present" path runs for real.
set -euo pipefail
cd "$(dirname "$0")"
script=$PWD/test-deps.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# stand_ins DIR UID SUDO: id prints UID; sudo -n works if SUDO is "yes";
# apt-get logs its arguments and environment and marks the packages it
# installs; dpkg-query reports a package installed if marked, and asks the
# real dpkg-query otherwise.
stand_ins() {
	local dir=$1 uid=$2 sudo=$3
	mkdir -p "$dir/bin" "$dir/marks"
	cat >"$dir/bin/id" <<-END
		#!/bin/sh
		echo $uid
	END
	if [ "$sudo" = yes ]; then
		cat >"$dir/bin/sudo" <<-END
			#!/bin/sh
			echo "sudo \$*" >>"$dir/log"
			[ "\$1" = -n ] && shift
			exec "\$@"
		END
	else
		cat >"$dir/bin/sudo" <<-END
			#!/bin/sh
			echo "sudo \$*" >>"$dir/log"
			echo "sudo: a password is required" >&2
			exit 1
		END
	fi
	cat >"$dir/bin/apt-get" <<-END
		#!/bin/sh
		echo "apt-get \$* DEBIAN_FRONTEND=\$DEBIAN_FRONTEND" >>"$dir/log"
		[ -n "\${APT_FAIL:-}" ] && exit 100
		for a in "\$@"; do case "\$a" in fake-*) touch "$dir/marks/\$a" ;; esac; done
		exit 0
	END
	cat >"$dir/bin/dpkg-query" <<-END
		#!/bin/sh
		for a in "\$@"; do p=\$a; done
		if [ -e "$dir/marks/\$p" ]; then printf 'install ok installed'; exit 0; fi
		exec $(command -v dpkg-query) "\$@"
	END
	chmod +x "$dir/bin/"*
	: >"$dir/log"
}

run() { # run DIR PACKAGES [ENV...]: the script with DIR's stand-ins; sets out, err, code
	local dir=$1 pkgs=$2
	shift 2
	code=0
	env "$@" PATH="$dir/bin:$PATH" TEST_DEPS_PACKAGES="$pkgs" "$script" >"$dir/out" 2>"$dir/err" || code=$?
	out=$(cat "$dir/out")
	err=$(cat "$dir/err")
}

# All present, for real: no stand-ins, packages every Debian has. (make
# test runs the script with its real list before anything else.)
code=0
out=$(TEST_DEPS_PACKAGES="bash dpkg" "$script" 2>&1) || code=$?
[ $code -eq 0 ] && [[ $out == *"installed (bash dpkg)"* ]] || fail "all present: exit $code: $out"

# Missing, not root, no passwordless sudo: stop at once with the command.
d=$tmp/user
stand_ins "$d" 1000 no
run "$d" "bash fake-zaqar-no-such-package"
[ $code -ne 0 ] || fail "missing as a user: exit 0"
[[ $err == *"sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends fake-zaqar-no-such-package'"* ]] ||
	fail "missing as a user: no install command in: $err"
[[ $err != *"bash"* ]] || fail "missing as a user: names an installed package: $err"
grep -q '^apt-get' "$d/log" && fail "missing as a user: apt-get ran: $(cat "$d/log")"

# Missing, as root: apt-get installs them, noninteractive, without recommends.
d=$tmp/root
stand_ins "$d" 0 no
run "$d" "bash fake-a fake-b"
[ $code -eq 0 ] || fail "missing as root: exit $code: $err"
grep -qx 'apt-get update -qq DEBIAN_FRONTEND=noninteractive' "$d/log" || fail "missing as root: no apt-get update: $(cat "$d/log")"
grep -qx 'apt-get install -y -qq --no-install-recommends fake-a fake-b DEBIAN_FRONTEND=noninteractive' "$d/log" ||
	fail "missing as root: wrong install: $(cat "$d/log")"
grep -q '^sudo' "$d/log" && fail "missing as root: used sudo: $(cat "$d/log")"
[[ $out == *"installed fake-a fake-b"* ]] || fail "missing as root: $out"

# Missing, passwordless sudo: apt-get through sudo.
d=$tmp/sudo
stand_ins "$d" 1000 yes
run "$d" "fake-c"
[ $code -eq 0 ] || fail "missing with sudo: exit $code: $err"
grep -q '^sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fake-c' "$d/log" ||
	fail "missing with sudo: apt-get not run through sudo: $(cat "$d/log")"

# apt-get fails: the script fails.
d=$tmp/aptfails
stand_ins "$d" 0 no
run "$d" "fake-d" APT_FAIL=1
[ $code -ne 0 ] || fail "a failing apt-get: exit 0"

# apt-get succeeds but the package is still missing: the script says so.
d=$tmp/notinstalled
stand_ins "$d" 0 no
run "$d" "zaqar-raft-no-such-package"
[ $code -ne 0 ] && [[ $err == *"did not install: zaqar-raft-no-such-package"* ]] || fail "still missing: exit $code: $err"

# compat: the conformance suite's packages are added to the list.
d=$tmp/compat
stand_ins "$d" 1000 no
code=0
env PATH="$d/bin:$PATH" TEST_DEPS_PACKAGES=bash TEST_DEPS_COMPAT_PACKAGES=fake-compat-pkg "$script" compat >"$d/out" 2>"$d/err" || code=$?
[ $code -ne 0 ] && grep -q 'not installed: fake-compat-pkg' "$d/err" || fail "compat: exit $code: $(cat "$d/err")"
code=0
env PATH="$d/bin:$PATH" TEST_DEPS_PACKAGES=bash TEST_DEPS_COMPAT_PACKAGES=fake-compat-pkg "$script" >"$d/out" 2>"$d/err" || code=$?
[ $code -eq 0 ] || fail "without compat: the compat packages are asked for: $(cat "$d/err")"
code=0
"$script" bogus >/dev/null 2>&1 || code=$?
[ $code -eq 2 ] || fail "an unknown argument: exit $code"

if [ $failures -gt 0 ]; then
	echo "test-deps.test.sh: $failures failures" >&2
	exit 1
fi
echo "ok   test-deps.sh"
