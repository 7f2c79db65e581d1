#!/bin/sh
# norm-pictures.sh - remakes docs/norm-before.png and docs/norm-after.png:
# KMNIST test characters made to look like phone photos of a page (dark
# ink on grey paper, off-centre, smaller or larger, slanted), then
# kz-norm --fit 28x28 -d.  Needs the build (make) and KZ_DATA.
set -eu
cd "$(dirname "$0")/.."
PATH=$PWD/build/bin:$PATH
D=${KZ_DATA:-../shared/data}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
kz-unpack "$D/kmnist-test-imgs.npz" "$D/kmnist-test-labels.npz" >"$T/test.kz"
python3 - "$T/test.kz" "$T/scans.pgm" <<'PY'
import random, struct, sys
data = open(sys.argv[1], "rb").read()
random.seed(3)
out = b""
for n in range(10):
    off = 32 + (n * 37) * 796
    px = data[off + 12:off + 796]
    W, H = 72, 56
    s = random.uniform(0.9, 1.7)            # size on the page
    sh = random.uniform(-0.35, 0.35)        # slant
    ox = random.uniform(4, W - 28 * s - 4); oy = random.uniform(2, H - 28 * s - 2)
    img = bytearray()
    for y in range(H):
        for x in range(W):
            u = (x - ox - sh * (y - oy - 14 * s)) / s; v = (y - oy) / s
            ink = px[int(v) * 28 + int(u)] if 0 <= u < 28 and 0 <= v < 28 else 0
            paper = 205 + random.randint(-12, 12)
            img.append(max(0, min(255, int(paper - ink * 0.75))))
    out += b"P5\n%d %d\n255\n" % (W, H) + bytes(img)
open(sys.argv[2], "wb").write(out)
PY
kz-unpack "$T/scans.pgm" >"$T/scans.kz"
kz-show -w 5 -s 2 -o docs/norm-before.png "$T/scans.kz"
kz-norm --fit 28x28 -d "$T/scans.kz" | kz-show -w 5 -s 4 -o docs/norm-after.png
