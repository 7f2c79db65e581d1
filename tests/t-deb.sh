# t-deb.sh - the Debian package (make deb, tools/deb.sh): built from the
# tree by dpkg-buildpackage, no lintian errors or warnings, and a smoke
# test of it unpacked.  Installs the packaging tools when they are
# missing and it can (root or sudo).  Once per run, from the default
# build only, and not inside a package build's own tests.
ROOT=$(cd "$TESTS/.." && pwd)
if [ -n "${KZ_IN_PACKAGE_BUILD:-}" ]; then
	skip "Debian package" "inside a package build"
elif [ "$BIN" != "$ROOT/build/bin" ]; then
	skip "Debian package" "built from the default build only, not $BIN"
elif ! command -v dpkg-buildpackage >/dev/null && ! command -v apt-get >/dev/null; then
	skip "Debian package" "not a Debian system"
elif sh "$ROOT/tools/deb.sh" >"$T/deb.out" 2>&1; then
	ok "Debian package: built ($(sed -n 's/^deb.sh: built //p' "$T/deb.out"))"
	ok "Debian package: lintian, no errors or warnings"
	ok "Debian package: $(sed -n 's/^deb.sh: \(smoke test passed.*\)/\1/p' "$T/deb.out")"
else
	not_ok "Debian package" "$(grep '^deb.sh' "$T/deb.out" | tail -3 | tr '\n' ' ')"
fi
