#!/usr/bin/env bash
# gotest-summary.sh OUT PREFIX... -- reads `go test -v` output on stdin,
# keeps all of it in OUT, and prints the summary lines (test starts and
# ends, PASS/FAIL, panics, and lines starting with one of the PREFIXes,
# such as "chaos:"). If any test failed, it then prints, for each failing
# test or subtest, the 40 lines of output before its "--- FAIL" line,
# where its t.Error and t.Fatal messages are, so that a CI log names the
# cause and not only the test. It always exits 0: the caller takes go
# test's status from ${PIPESTATUS[0]}.
set -uo pipefail
out=$1
shift
extra=""
for p in "$@"; do extra="$extra|$p"; done
tee "$out" | grep -E "^(=== RUN|--- |PASS|FAIL|ok|panic$extra)"
if grep -qE '^\s*--- FAIL' "$out"; then
	echo "----- output before each failure (all of it in $out) -----"
	grep -B40 -E '^\s*--- FAIL' "$out"
fi
exit 0
