# t-shipped.sh - the model in models/ works right after the build:
# kz-classify finds it without -m, and a scan-like PNG goes through
# kz-unpack | kz-norm | kz-classify | kz-label.
D=$KZ_DATA
if [ -f "$TESTS/../models/kmnist.kzm" ] && have_data kmnist-test-imgs.npz kmnist-test-labels.npz kmnist_classmap.csv; then
	kz-unpack "$D/kmnist-test-imgs.npz" "$D/kmnist-test-labels.npz" >"$T/test.kz"
	# count_right FILE: how many records' first prediction is their label,
	# read from the stream by Python, not by kz-eval
	count_right() {
		"$PY" - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read(); k = struct.unpack_from("<H", d, 14)[0]; size = 12 + 8 * k + 784
r = [struct.unpack_from("<iI", d, o + 8) for o in range(32, len(d), size)]
print(sum(a == b for a, b in r))
PY
	}
	kz-classify -s 0 -r 0 -k 1 "$T/test.kz" >"$T/shipped.kz"
	n=$(count_right "$T/shipped.kz")
	t_eq "kz-classify -s 0, no -m: the shipped model alone, above 98% on KMNIST test ($n of 10,000)" yes \
	    "$([ "${n:-0}" -gt 9800 ] && echo yes || echo no)"
	# The shipped recipe's figure as models/README.md states it, 9,920 of
	# 10,000 right, to within two images (the model before it scored
	# 9,923): another CPU may round a sum differently.  With no flags:
	# the model carries -s 2 -z 2 -r 3.  (Thirty views of 10,000 images
	# through three ResNets, one of them wide: the slowest check here,
	# and much slower with SANITIZE=1.)
	t_eq "the shipped model's settings" "shift=2 zoom=2 rotate=3" \
	    "$(kz-model "$TESTS/../models/kmnist.kzm" | awk -F'\t' '$1 == "settings" { print $2 }')"
	kz-classify -t 2 -k 1 "$T/test.kz" >"$T/shipped-views.kz"
	n=$(count_right "$T/shipped-views.kz")
	t_eq "kz-classify with no flags: the shipped model's stored views, 9,920 of 10,000 right on KMNIST test ($n)" yes \
	    "$([ "${n:-0}" -ge 9918 ] && [ "${n:-0}" -le 9922 ] && echo yes || echo no)"
	# The arithmetic paths, on the shipped model's first network alone
	# (the paths are each network's; three would triple the time).
	kz-model -x 1 -s rotate=0 -o "$T/one.kzm" "$TESTS/../models/kmnist.kzm"
	kz-classify -m "$T/one.kzm" -s 0 -k 1 "$T/test.kz" >"$T/one.kz"
	# bfloat16 products: the same predictions but for a few near ties;
	# single precision is the default and -p f32 forces it.
	kz-classify -m "$T/one.kzm" -s 0 -k 1 -p f32 "$T/test.kz" >"$T/f32.kz"
	t_eq "kz-classify -p f32 is the default" "$(md5sum <"$T/one.kz")" "$(md5sum <"$T/f32.kz")"
	kz-classify -m "$T/one.kzm" -s 0 -k 1 -p bf16 -v "$T/test.kz" >"$T/bf16.kz" 2>"$T/bf16.err"
	"$PY" "$TESTS/kzpy.py" top1 "$T/f32.kz" >"$T/f32.top1"
	same=$("$PY" "$TESTS/kzpy.py" top1 "$T/bf16.kz" | paste -d' ' - "$T/f32.top1" | awk '$1 == $2' | wc -l)
	if grep -q 'single precision instead' "$T/bf16.err"; then
		t_eq "kz-classify -p bf16 on a CPU without AVX512_BF16: single precision, said under -v" "$(md5sum <"$T/f32.kz")" "$(md5sum <"$T/bf16.kz")"
	else
		t_eq "kz-classify -p bf16: at least 9,990 of 10,000 top-1 predictions as in single precision ($same)" yes \
		    "$([ "$same" -ge 9990 ] && echo yes || echo no)"
		t_eq "... and not the same bytes (the path ran)" different \
		    "$(cmp -s "$T/f32.kz" "$T/bf16.kz" && echo same || echo different)"
		n=$(count_right "$T/bf16.kz")
		t_eq "... within 5 images of single precision's accuracy ($n)" yes \
		    "$(n0=$(count_right "$T/f32.kz"); [ $((n - n0)) -le 5 ] && [ $((n0 - n)) -le 5 ] && echo yes || echo no)"
	fi
	KZ_NO_BF16=1 kz-classify -m "$T/one.kzm" -s 0 -k 1 -p bf16 -v "$T/test.kz" >"$T/nobf16.kz" 2>"$T/nobf16.err"
	t_eq "-p bf16 where the CPU lacks it (KZ_NO_BF16): single precision's bytes" "$(md5sum <"$T/f32.kz")" "$(md5sum <"$T/nobf16.kz")"
	t_eq "... said in one line under -v" "1" "$(grep -c 'KZ_NO_BF16 is set; single precision instead' "$T/nobf16.err")"
	t_fails "kz-classify -p: an unknown arithmetic" "-p: auto, f32 or bf16" kz-classify -p f64 "$T/test.kz"
	# Single precision by kz's AVX-512 products or by OpenBLAS's: the
	# same sums in another order.  Both stated predictions must agree
	# but for near ties, and the scores to a few units in the last place.
	KZ_NO_AVX512=1 kz-classify -m "$T/one.kzm" -s 0 -k 1 -v "$T/test.kz" >"$T/blas.kz" 2>"$T/blas.err"
	t_eq "KZ_NO_AVX512: OpenBLAS's products, said under -v" 1 "$(grep -c "single precision, OpenBLAS's products" "$T/blas.err")"
	"$PY" - "$T/f32.kz" "$T/blas.kz" <<'PY' >"$T/paths.txt"
import sys
sys.path.insert(0, __import__("os").environ["TESTS"])
import kzpy
a = list(kzpy.records_preds(sys.argv[1])); b = list(kzpy.records_preds(sys.argv[2]))
same = sum(x[2][0][0] == y[2][0][0] for x, y in zip(a, b))
worst = max(abs(x[2][0][1] - y[2][0][1]) for x, y in zip(a, b) if x[2][0][0] == y[2][0][0])
print(len(a) == len(b) == 10000 and same >= 9995, worst < 1e-4)
PY
	t_eq "single precision, either products: 9,995 or more of 10,000 top-1 predictions alike, scores within 1e-4" "True True" "$(cat "$T/paths.txt")"
	kz-classify -m "$T/one.kzm" -s 0 -k 1 -t 1 -b 300 "$T/test.kz" >"$T/f32-t1.kz"
	t_eq "... and each the same bytes with one thread and batches of 300" "$(md5sum <"$T/f32.kz")" "$(md5sum <"$T/f32-t1.kz")"
	t_eq "the shipped model carries the KMNIST class map" "$(kz-label -c "$D/kmnist_classmap.csv" "$T/shipped-views.kz" | md5sum)" \
	    "$(kz-label -m kmnist "$T/shipped-views.kz" | md5sum)"
	# Ten test characters as photos of paper: dark ink on grey, off
	# centre, twice the size; written as PNG by Python's zlib.
	"$PY" - "$T/test.kz" "$T" <<'PY'
import struct, sys, zlib
sys.path.insert(0, __import__("os").environ["TESTS"])
import kzpy
out = sys.argv[2]
for n, (i, label, px) in enumerate(kzpy.records(sys.argv[1])):
    if n == 10:
        break
    W, H = 80, 64
    img = bytearray([200] * (W * H))
    for y in range(56):
        for x in range(56):
            v = px[(y // 2) * 28 + x // 2]
            img[(y + 4) * W + x + 17] = 200 - v * 3 // 4
    raw = b"".join(b"\0" + bytes(img[y * W:(y + 1) * W]) for y in range(H))
    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    open("%s/scan%d.png" % (out, n), "wb").write(png)
    open("%s/scan%d.label" % (out, n), "w").write("%d\n" % label)
PY
	right=0
	for n in 0 1 2 3 4 5 6 7 8 9; do
		got=$(kz-unpack "$T/scan$n.png" | kz-norm --fit 28x28 | kz-classify | kz-label -f char -c "$D/kmnist_classmap.csv")
		want=$(awk -F, -v l="$(cat "$T/scan$n.label")" 'NR > 1 && $1 == l { print $3 }' "$D/kmnist_classmap.csv")
		[ "$got" = "$want" ] && right=$((right + 1))
	done
	t_eq "scan.png | kz-norm --fit 28x28 | kz-classify | kz-label: at least 9 of 10 right ($right)" yes \
	    "$([ $right -ge 9 ] && echo yes || echo no)"
else
	skip "shipped model" "models/kmnist.kzm or KMNIST data missing"
fi
