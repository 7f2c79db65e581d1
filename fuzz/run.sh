#!/bin/sh
# run.sh BINDIR SECONDS TARGET... - makes seed corpora from the test
# fixtures and small cuts of the real data, runs each harness for
# SECONDS, and prints executions and findings per harness.
set -u
BIN=$(cd "$1" && pwd) SECONDS_EACH=$2
shift 2
PATH=$BIN:$PATH
TOP=$(cd "$(dirname "$0")/.." && pwd)
D=${KZ_DATA:-$TOP/../shared/data}
S=$TOP/build-fuzz/seeds
rm -rf "$S"
mkdir -p "$S"
# Every harness's seeds are made, whichever run.
for t in stream npz npy idx tar png pnm classmap model spec modelx jpeg book glyphs; do
	mkdir -p "$S/$t" "$TOP/build-fuzz/corpus/$t" "$TOP/build-fuzz/crashes/$t"
done
F=$S/fx
python3 "$TOP/tests/fixtures.py" "$F"
cp "$F"/*.npz "$S/npz/"
cp "$F"/*.npy "$S/npy/"
cp "$F"/*.idx* "$S/idx/"
cp "$F"/*.tar* "$S/tar/"
cp "$F"/*.png "$S/png/"
cp "$F"/*.pgm "$F"/*.ppm "$S/pnm/"
cp "$F"/*.jpg "$F"/book/images/*.jpg "$S/jpeg/"
printf 'Unicode,Image,X,Y,Block ID,Char ID,Width,Height\nU+4E00,a,0,0,B,C,16,16\nU+3042,b,8,8,B,C,8,24\n' >"$S/book/a.csv"
printf 'Image,Height,Width,Unicode,Y,X\n"a",1,2,U+20000,3,4\r\nb,5,6,U+4E00,7,8\n' >"$S/book/b.csv"
cp "$F"/*.csv "$S/classmap/"
[ -f "$D/kmnist_classmap.csv" ] && cp "$D/kmnist_classmap.csv" "$D/k49_classmap.csv" "$S/classmap/"
kz-unpack "$F/imgs.npz" "$F/labels.npz" >"$S/stream/a.kz"
python3 "$TOP/tests/kzpy.py" make "$S/stream/b.kz" 4 3 3 0 1 2 1
cat "$S/stream/a.kz" "$S/stream/a.kz" >"$S/stream/c.kz"
kz-train -q -a knn -k 2 -o "$S/model/knn.kzm" "$S/stream/a.kz"
kz-train -q -a cnn:conv2k3,bn,relu,maxpool1,drop0.1 -e 1 -o "$S/model/cnn.kzm" "$S/stream/a.kz"
kz-similar -t 1 -m "$S/model/cnn.kzm" -w "$S/glyphs/a.kzg" "$S/stream/a.kz"
kz-train -q -a cnn:conv2k2,res2 -e 1 --checkpoint "$S/model/ck.kzm" -o "$S/model/res.kzm" "$S/stream/a.kz"
# A class map, a setting and half-precision parameters (sections CMAP,
# PF16; META's setting_shift).
python3 "$TOP/tests/kzpy.py" make "$S/stream/m3.kz" 2 2 3 0 1 2
printf 'index,codepoint,char\n0,U+304A,お\n1,U+304D,き\n2,U+3059,す\n' >"$S/classmap/m3.csv"
kz-train -q -a linear -e 1 -c "$S/classmap/m3.csv" -o "$S/model/m3.kzm" "$S/stream/m3.kz"
kz-model -s shift=2 -p f16 -o "$S/model/half.kzm" "$S/model/m3.kzm"
kz-model -p q8 -o "$S/model/q8.kzm" "$S/model/m3.kzm"
kz-train -q -a cnn:conv8k3p1,bn,relu,gap -e 1 -o "$S/model/conv.kzm" "$S/stream/m3.kz"
kz-model -p q4,3 -o "$S/model/q43.kzm" "$S/model/conv.kzm"
# modelx: the same models as parts (fuzz/fuzz.c, modelx_build).
python3 - "$S/model" "$S/modelx" <<'PY'
import os, struct, sys
tags = [b"KNNX", b"KNNY", b"PARM", b"STAT", b"OPTM", b"OPTV", b"BSTP", b"BSTS", b"EMAP", b"EMAS", b"CMAP", b"PF16", b"PQ8 ", b"PQ4 ", b"PQN "]
for name in os.listdir(sys.argv[1]):
    b = open(os.path.join(sys.argv[1], name), "rb").read()
    off, meta, parts = 12, b"", b""
    while off + 12 <= len(b):
        tag, n = b[off:off + 4], struct.unpack_from("<Q", b, off + 4)[0]
        data = b[off + 12:off + 12 + n]
        if tag == b"META":
            meta = data
        elif tag in tags and n < 1 << 24:
            parts += bytes([tags.index(tag)]) + n.to_bytes(3, "little") + data
        off += 12 + n
    open(os.path.join(sys.argv[2], name), "wb").write(struct.pack("<H", len(meta)) + meta + parts)
PY
for spec in linear mlp:10,drop0.5,5 cnn:conv32k3,relu,conv64k3,relu,maxpool2,drop0.25,dense128,relu,drop0.5 \
    cnn:conv8k3p1,bn,relu,res8,res16s2,gap cnn:conv4k5s2p2,avgpool2s1,gap; do
	printf '%s' "$spec" >"$S/spec/$(printf '%s' "$spec" | md5sum | cut -c1-8)"
done
if [ -f "$D/kmnist-test-imgs.npz" ]; then
	# Small real files: 20 KMNIST images as npz/idx, a cut of the Kanji
	# archive with its first 8 PNGs.
	python3 - "$D" "$S" <<'PY'
import gzip, io, sys, tarfile, zipfile
d, s = sys.argv[1], sys.argv[2]
npy = zipfile.ZipFile(d + "/kmnist-test-imgs.npz").read("arr_0.npy")
hl = int.from_bytes(npy[8:10], "little")
hdr = npy[:10 + hl].replace(b"(10000, 28, 28)", b"(20, 28, 28)  ")
b = io.BytesIO()
with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("arr_0.npy", hdr + npy[10 + hl:10 + hl + 20 * 784])
open(s + "/npz/kmnist20.npz", "wb").write(b.getvalue())
idx = gzip.open(d + "/t10k-images-idx3-ubyte.gz").read()
open(s + "/idx/t20.idx", "wb").write(b"\0\0\x08\x03" + (20).to_bytes(4, "big") + idx[8:16] + idx[16:16 + 20 * 784])
kanji = d + "/kkanji.tar.gz"
try:
    out = io.BytesIO()
    with tarfile.open(kanji) as t, tarfile.open(fileobj=out, mode="w") as o:
        n = 0
        for m in t:
            o.addfile(m, t.extractfile(m) if m.isfile() else None)
            if m.isfile():
                open(s + "/png/k%d.png" % n, "wb").write(t.extractfile(m).read())
                n += 1
            if n == 8:
                break
    open(s + "/tar/kanji8.tar", "wb").write(out.getvalue())
except FileNotFoundError:
    pass
PY
fi
export LSAN_OPTIONS=suppressions=$TOP/tests/lsan.supp:print_suppressions=0
# fuzz_one NAME: runs one harness and prints its line of the table.
fuzz_one() {
	# Findings are the artifacts this run writes; older ones stay.
	touch "$TOP/build-fuzz/$1.start"
	"$TOP/build-fuzz/fuzz-$1" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
	    -artifact_prefix="$TOP/build-fuzz/crashes/$1/" -print_final_stats=1 \
	    "$TOP/build-fuzz/corpus/$1" "$S/$1" >"$TOP/build-fuzz/$1.log" 2>&1
	execs=$(grep -a 'stat::number_of_executed_units' "$TOP/build-fuzz/$1.log" | awk '{ print $2 }')
	found=$(find "$TOP/build-fuzz/crashes/$1" -type f -newer "$TOP/build-fuzz/$1.start" | wc -l)
	printf '%-8s %7s  %10s  %s\n' "$1" "$SECONDS_EACH" "${execs:-?}" "$found"
}

# FUZZ_JOBS harnesses at a time, each on its own core; the table keeps
# the order of the arguments.
JOBS=${FUZZ_JOBS:-1}
echo "harness  seconds  executions  findings"
while [ $# -gt 0 ]; do
	batch=
	i=0
	while [ $# -gt 0 ] && [ "$i" -lt "$JOBS" ]; do
		fuzz_one "$1" >"$TOP/build-fuzz/$1.row" &
		batch="$batch $1"
		i=$((i + 1))
		shift
	done
	wait
	for t in $batch; do cat "$TOP/build-fuzz/$t.row"; done
done
