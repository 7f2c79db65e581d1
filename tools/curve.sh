#!/bin/sh
# curve.sh LOG OUT.png [LOW] - draws validation accuracy per epoch from a
# kz-train log as a PNG: x = epochs, y = LOW% (bottom, default 90) to
# 100% (top), a grey line every tenth of the range, built as a PGM by
# awk and drawn by kz-show.
set -eu
LOG=$1 OUT=$2 LOW=${3:-90}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
grep -o 'val *[0-9.]*%' "$LOG" | tr -d 'val %' >"$TMP/v"
[ -s "$TMP/v" ] || { echo "curve.sh: no validation figures in $LOG" >&2; exit 1; }
awk -v W=600 -v H=300 -v L="$LOW" '
{ v[NR] = $1 } END {
	n = NR
	for (y = 0; y < H; y++) for (x = 0; x < W; x++) p[y, x] = 0
	for (k = 0; k <= 10; k++) {		# grid: a tenth of the range
		y = int((H - 1) * (1 - k / 10))
		for (x = 0; x < W; x++) p[y, x] = (k % 5 ? 48 : 96)
	}
	for (i = 1; i <= n; i++) {		# a tick per epoch
		x = int((W - 1) * (i - 1) / (n > 1 ? n - 1 : 1))
		for (y = H - 6; y < H; y++) p[y, x] = 96
	}
	for (i = 1; i < n; i++) {		# the curve, clipped to L..100
		x0 = (W - 1) * (i - 1) / (n - 1); x1 = (W - 1) * i / (n - 1)
		y0 = (H - 1) * (100 - v[i]) / (100 - L); y1 = (H - 1) * (100 - v[i + 1]) / (100 - L)
		for (s = 0; s <= 100; s++) {
			x = int(x0 + (x1 - x0) * s / 100); y = int(y0 + (y1 - y0) * s / 100)
			for (d = -1; d <= 1; d++) if (y + d >= 0 && y + d < H) p[y + d, x] = 255
		}
	}
	printf "P2\n%d %d\n255\n", W, H
	for (y = 0; y < H; y++) { for (x = 0; x < W; x++) printf "%d ", p[y, x]; printf "\n" }
}' "$TMP/v" >"$TMP/curve.pgm"
kz-unpack "$TMP/curve.pgm" | kz-show -n 1 -o "$OUT"
