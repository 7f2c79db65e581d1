# t-unit.sh - the C unit tests of lib/ (tests/unit.c).

# results FILE [PREFIX [NAME]]: FILE's "ok - " lines whose test name
# starts with NAME (all by default) and all its "not ok - " lines as
# this suite's results, their names after PREFIX.
results() {
	while IFS= read -r line; do
		case $line in
		"ok - ${3-}"*) ok "${2-}${line#ok - }" ;;
		"not ok - "*) not_ok "${2-}${line#not ok - }" ;;
		esac
	done <"$1"
}

kz-unit >"$T/unit.out" 2>&1
results "$T/unit.out"
grep -q . "$T/unit.out" || not_ok "kz-unit ran" "$(cat "$T/unit.out")"
# The gradient checks again with every product by OpenBLAS, the path of
# a CPU without AVX-512: training's Winograd products take either.
KZ_NO_AVX512=1 kz-unit >"$T/unit-blas.out" 2>&1
results "$T/unit-blas.out" "OpenBLAS products: " "gradient check "
[ "$(grep -c '^ok - gradient check ' "$T/unit-blas.out")" = \
    "$(grep -c 'gradient check ' "$T/unit.out")" ] ||
	not_ok "kz-unit with KZ_NO_AVX512=1 ran every gradient check" "$(tail -3 "$T/unit-blas.out")"
# Inputs the fuzzers once crashed on, replayed (tests/regress/).
kz-regress "$TESTS/regress" >"$T/regress.out" 2>&1
st=$?
results "$T/regress.out"
[ $st -eq 0 ] || not_ok "kz-regress exit status $st" "$(tail -5 "$T/regress.out")"
