# lib.sh - assertions for the shell tests, sourced by run.sh.
PASSED=0 FAILED=0 SKIPPED=0

ok() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
not_ok() { FAILED=$((FAILED + 1)); echo "not ok - $1${2:+: $2}"; }
skip() { SKIPPED=$((SKIPPED + 1)); echo "skip - $1${2:+: $2}"; }

# t_eq NAME EXPECTED ACTUAL
t_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected '$2', got '$3'"; fi
}

# t_ok NAME CMD... : CMD exits 0
t_ok() {
	_n=$1; shift
	if "$@" >"$T/out" 2>"$T/err"; then ok "$_n"
	else not_ok "$_n" "exit $?: $(head -c 300 "$T/err")"; fi
}

# t_fails NAME PATTERN CMD... : CMD exits 1 or 2 (never a signal or a
# sanitizer's 86), says one line on stderr, prefixed with the program
# name, matching the grep -E PATTERN.
t_fails() {
	_n=$1 _p=$2; shift 2
	"$@" >"$T/out" 2>"$T/err"
	_s=$?
	_l=$(wc -l <"$T/err")
	_m=$(head -c 400 "$T/err")
	if [ "$_s" -ne 1 ] && [ "$_s" -ne 2 ]; then
		not_ok "$_n" "exit status $_s: $_m"
	elif [ "$_l" -ne 1 ]; then
		not_ok "$_n" "$_l lines on stderr: $_m"
	elif ! grep -q '^kz-[a-z]*: ' "$T/err"; then
		not_ok "$_n" "no program name: $_m"
	elif ! grep -Eq -- "$_p" "$T/err"; then
		not_ok "$_n" "message does not match /$_p/: $_m"
	else
		ok "$_n"
	fi
}

# have_data FILE... : all present in $KZ_DATA
have_data() {
	for _f; do [ -f "$KZ_DATA/$_f" ] || return 1; done
}

# info KEY FILE : one value of kz-info -t
info() { kz-info -t "$2" | awk -F'\t' -v k="$1" '$1 == k { print $2 }'; }

PY=${PYTHON:-python3}
kzpy() { "$PY" "$TESTS/kzpy.py" "$@"; }
