#!/bin/sh
# run.sh BINDIR [TEST...] - runs every tests/t-*.sh (or the named ones)
# with BINDIR first on PATH; ends with "N passed, N failed".
set -u
BIN=$(cd "$1" && pwd) || exit 2
shift
TESTS=$(cd "$(dirname "$0")" && pwd)
PATH=$BIN:$PATH
KZ_DATA=${KZ_DATA:-../shared/data}
[ -d "$KZ_DATA" ] && KZ_DATA=$(cd "$KZ_DATA" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/kz-test.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
# Sanitizer reports exit with 86, never with a status our errors use.
# Reports also go to files, so that a report from a command whose status
# no test looks at still fails the run.
mkdir -p "$T/sanitizer"
ASAN_OPTIONS=exitcode=86:detect_leaks=1:log_path=$T/sanitizer/asan
UBSAN_OPTIONS=exitcode=86:print_stacktrace=1:log_path=$T/sanitizer/ubsan
LSAN_OPTIONS=suppressions=$TESTS/lsan.supp:print_suppressions=0
export PATH KZ_DATA ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS TESTS
# A user's default model must not change what kz-classify without -m
# classifies with here (t-shipped.sh checks the shipped one).
unset KZ_MODEL
. "$TESTS/lib.sh"
if [ $# -eq 0 ]; then
	set -- "$TESTS"/t-*.sh
fi
for t in "$@"; do
	echo "# $(basename "$t")"
	. "$t"
done
if [ -n "$(ls "$T/sanitizer")" ]; then
	not_ok "no sanitizer reports" "$(cat "$T"/sanitizer/* | grep -m 3 -E 'ERROR|runtime error|SUMMARY')"
fi
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
