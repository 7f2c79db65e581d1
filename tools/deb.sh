#!/bin/sh
# deb.sh - builds the Debian package from the files git knows (committed
# or not) in build-deb/, runs lintian on it, and smoke tests it unpacked
# into a scratch root: every man page opens, kz-classify with no -m uses
# the packaged model, a four-program pipe works.  Exits non-zero on any
# failure, lintian errors and warnings included.
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh deb
VERSION=$(sed -n 's/^VERSION = //p' Makefile)
OUT=build-deb
rm -rf "$OUT"
mkdir -p "$OUT/kz-$VERSION"
# The files git knows, committed or not; outside a git work tree (a
# tarball), everything but build products.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -co --exclude-standard
else
	find . \( -path './build*' -o -path './.git' -o -path './debian/kz' -o -path './out' \) -prune -o \
	    -type f -print | sed 's|^\./||'
fi | grep -v '^debian/kz/' | tar -cf - -T - | tar -xf - -C "$OUT/kz-$VERSION"
(cd "$OUT/kz-$VERSION" && dpkg-buildpackage -us -uc -b -j2) >"$OUT/build.log" 2>&1 || {
	tail -20 "$OUT/build.log"; echo "deb.sh: dpkg-buildpackage failed (log: $OUT/build.log)" >&2; exit 1; }
DEB=$OUT/kz_${VERSION}_amd64.deb
[ -f "$DEB" ] || { echo "deb.sh: no $DEB" >&2; exit 1; }
echo "deb.sh: built $DEB"
lintian --info "$DEB" | tee "$OUT/lintian.log"
if grep -qE '^(E|W):' "$OUT/lintian.log"; then
	echo "deb.sh: lintian reports errors or warnings" >&2
	exit 1
fi
echo "deb.sh: lintian: no errors, no warnings"

# The smoke test, in the package's own layout (dpkg -x: no root needed).
R=$OUT/root
dpkg -x "$DEB" "$R"
fail=0
for m in "$R"/usr/share/man/man*/*; do
	mandoc -Tutf8 "$m" >/dev/null 2>&1 || man -l "$m" >/dev/null 2>&1 || {
		echo "deb.sh: man page $m does not open" >&2; fail=1; }
done
python3 tests/kzpy.py make "$OUT/few.kz" 28 28 10 0 1 2 3 4 5 6 7 8 9
env -u KZ_MODEL "$R/usr/bin/kz-classify" "$OUT/few.kz" >"$OUT/got.kz" || fail=1
KZ_MODEL=models/kmnist.kzm build/bin/kz-classify "$OUT/few.kz" >"$OUT/want.kz" 2>/dev/null ||
    KZ_MODEL=models/kmnist.kzm "$R/usr/bin/kz-classify" "$OUT/few.kz" >"$OUT/want.kz"
cmp -s "$OUT/got.kz" "$OUT/want.kz" || { echo "deb.sh: kz-classify without -m does not use the packaged model" >&2; fail=1; }
# A scanned character as a user has it: a 40x30 PGM, dark ink on paper.
python3 -c 'import sys; sys.stdout.buffer.write(b"P5 40 30 255\n" + bytes(0 if 10 < x < 30 and 8 < y < 22 else 230 for y in range(30) for x in range(40)))' >"$OUT/scan.pgm"
n=$("$R/usr/bin/kz-unpack" "$OUT/scan.pgm" | "$R/usr/bin/kz-norm" -p auto -f 28x28 |
    env -u KZ_MODEL "$R/usr/bin/kz-classify" | "$R/usr/bin/kz-info" -t | awk -F'\t' '$1 == "records" { print $2 }') || true
[ "$n" = 1 ] || { echo "deb.sh: kz-unpack | kz-norm | kz-classify | kz-info gives '$n' records, not 1" >&2; fail=1; }
v=$("$R/usr/bin/kz-train" --version)
[ "$v" = "kz $VERSION" ] || { echo "deb.sh: kz-train --version says '$v'" >&2; fail=1; }
[ $fail -eq 0 ] && echo "deb.sh: smoke test passed ($v; man pages, default model, pipe)"
exit $fail
