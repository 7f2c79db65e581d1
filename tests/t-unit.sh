# t-unit.sh - the C unit tests of lib/ (tests/unit.c).
kz-unit >"$T/unit.out" 2>&1
while IFS= read -r line; do
	case $line in
	"ok - "*) ok "${line#ok - }" ;;
	"not ok - "*) not_ok "${line#not ok - }" ;;
	esac
done <"$T/unit.out"
grep -q . "$T/unit.out" || not_ok "kz-unit ran" "$(cat "$T/unit.out")"
# Inputs the fuzzers once crashed on, replayed (tests/regress/).
kz-regress "$TESTS/regress" >"$T/regress.out" 2>&1
st=$?
while IFS= read -r line; do
	case $line in
	"ok - "*) ok "${line#ok - }" ;;
	"not ok - "*) not_ok "${line#not ok - }" ;;
	esac
done <"$T/regress.out"
[ $st -eq 0 ] || not_ok "kz-regress exit status $st" "$(tail -5 "$T/regress.out")"
