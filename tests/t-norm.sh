# t-norm.sh - kz-norm on synthetic shapes whose answers are known.
# A dark 10x10 square (20) on a light 40x30 ground (230) at (4, 2).
"$PY" - "$T/sq.pgm" <<'PY'
import sys
w, h = 40, 30
px = bytearray([230] * (w * h))
for y in range(2, 12):
    for x in range(4, 14):
        px[y * w + x] = 20
open(sys.argv[1], "wb").write(b"P5\n%d %d\n255\n" % (w, h) + bytes(px))
PY
# The expected 20x20 result: inverted, levelled (ink 255 on black),
# fitted into 16x16 inside a margin of 2.
"$PY" - "$T/want.raw" <<'PY'
import sys
out = bytearray(400)
for y in range(2, 18):
    for x in range(2, 18):
        out[y * 20 + x] = 255
open(sys.argv[1], "wb").write(bytes(out))
PY
kz-unpack "$T/sq.pgm" | kz-norm -f 20x20 -m 2 >"$T/n.kz"
t_eq "kz-norm --fit: inverted, levelled, cropped, scaled, centred" \
    "$(md5sum <"$T/want.raw" | cut -d' ' -f1)" "$(kzpy pixels-md5 "$T/n.kz")"
t_eq "kz-norm --fit: header says 20x20" "20 20" "$(info width "$T/n.kz") $(info height "$T/n.kz")"
kz-unpack "$T/sq.pgm" | kz-norm -s -r 40x30 >"$T/s.kz"
t_eq "kz-norm -s: the paper becomes 0, the ink 255" "0 255" "$(info min "$T/s.kz") $(info max "$T/s.kz")"
kz-unpack "$T/sq.pgm" | kz-norm -p keep -r 20x15 >"$T/k.kz"
t_eq "kz-norm -p keep -r: no inversion, background stays light" 230 "$(info max "$T/k.kz")"
t_eq "kz-norm -r 20x15 halves each side: the square becomes 5x5 of 20" \
    "$((20 * 15 - 25))" "$("$PY" -c "
import sys; sys.path.insert(0, '$TESTS'); import kzpy
px = next(kzpy.records('$T/k.kz'))[2]; print(sum(v == 230 for v in px))")"
# Centre of mass: a 4x4 blob in a corner of a black 28x28 image moves to
# the middle (pixels 12..15).
"$PY" - "$T/c.pgm" <<'PY'
import sys
px = bytearray(28 * 28)
for y in range(2, 6):
    for x in range(20, 24):
        px[y * 28 + x] = 200
open(sys.argv[1], "wb").write(b"P5\n28 28\n255\n" + bytes(px))
PY
kz-unpack "$T/c.pgm" | kz-norm -p keep -C >"$T/c.kz"
t_eq "kz-norm -C: the blob moves to the centre" "12 15 12 15" "$("$PY" -c "
import sys; sys.path.insert(0, '$TESTS'); import kzpy
px = next(kzpy.records('$T/c.kz'))[2]
ys = [i // 28 for i in range(784) if px[i] > 100]; xs = [i % 28 for i in range(784) if px[i] > 100]
print(min(ys), max(ys), min(xs), max(xs))")"
# Deskew: a slanted bar (x = 10 + y/2) becomes upright (one column range).
"$PY" - "$T/d.pgm" <<'PY'
import sys
px = bytearray(28 * 28)
for y in range(4, 24):
    x = 8 + y // 2
    px[y * 28 + x] = px[y * 28 + x + 1] = 255
open(sys.argv[1], "wb").write(b"P5\n28 28\n255\n" + bytes(px))
PY
kz-unpack "$T/d.pgm" | kz-norm -p keep -d >"$T/d.kz"
t_eq "kz-norm -d: a slanted bar stands upright (spread of columns <= 3)" ok "$("$PY" -c "
import sys; sys.path.insert(0, '$TESTS'); import kzpy
px = next(kzpy.records('$T/d.kz'))[2]
cols = [sum(i % 28 * px[i] for i in range(y * 28, y * 28 + 28)) / max(1, sum(px[y * 28:y * 28 + 28])) for y in range(6, 22)]
print('ok' if max(cols) - min(cols) <= 3 else 'spread %.1f' % (max(cols) - min(cols)))")"
t_fails "kz-norm -c alone is refused" "add -f or -r" kz-norm -c "$T/n.kz"
t_fails "kz-norm: bad size" "want WxH" kz-norm -f 20 "$T/n.kz"
# Levelling (-l, and part of --fit): dark ink A (20), grey ink B (150)
# and a faint smudge C (200) on paper (230).  Inverted and stretched
# (paper 0, A 255), B is 97 and C 36; the ink's 30th percentile is B's
# 97, which becomes 255: C becomes 36 * 255 / 97 = 94, above the floor
# of 80, and stays.
"$PY" - "$T/lv.pgm" <<'PY'
import sys
w, h = 40, 30
px = bytearray([230] * (w * h))
for y in range(5, 15):
    for x in range(5, 15):
        px[y * w + x] = 20
        px[y * w + x + 15] = 150
for y in range(20, 24):
    for x in range(5, 9):
        px[y * w + x] = 200
open(sys.argv[1], "wb").write(b"P5\n%d %d\n255\n" % (w, h) + bytes(px))
PY
kz-unpack "$T/lv.pgm" | kz-norm -s -l -r 40x30 >"$T/lv.kz"
t_eq "kz-norm -s -l: paper 0, grey ink as white as dark ink, a smudge scaled with them" "0:984 94:16 255:200" \
    "$("$PY" -c "
import sys, collections; sys.path.insert(0, '$TESTS'); import kzpy
px = next(kzpy.records('$T/lv.kz'))[2]; c = collections.Counter(px)
print(' '.join('%d:%d' % kv for kv in sorted(c.items())))")"
t_eq "kz-norm -f: the longer side fills the box, as in both datasets (margin 0)" "0 27 0 27" "$(kz-unpack "$T/sq.pgm" | kz-norm -f 28x28 | "$PY" -c "
import sys; sys.path.insert(0, '$TESTS'); import kzpy
px = next(kzpy.records('/dev/stdin'))[2]
ys = [i // 28 for i in range(784) if px[i] > 100]; xs = [i % 28 for i in range(784) if px[i] > 100]
print(min(ys), max(ys), min(xs), max(xs))")"
