# t-unit.sh - the C unit tests of lib/ (tests/unit.c).
kz-unit >"$T/unit.out" 2>&1
while IFS= read -r line; do
	case $line in
	"ok - "*) ok "${line#ok - }" ;;
	"not ok - "*) not_ok "${line#not ok - }" ;;
	esac
done <"$T/unit.out"
grep -q . "$T/unit.out" || not_ok "kz-unit ran" "$(cat "$T/unit.out")"
