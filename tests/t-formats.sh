# t-formats.sh - every input format on small fixtures whose pixels
# tests/fixtures.py wrote, so the expected values are known.
F=$T/fx
"$PY" "$TESTS/fixtures.py" "$F"
md5() { md5sum <"$1" | cut -d' ' -f1; }
pixmd5() { kzpy pixels-md5 "$1"; }

kz-unpack "$F/imgs.npz" "$F/labels.npz" >"$T/a.kz"
t_eq "npz: pixels as written" "$(md5 "$F/imgs.raw")" "$(pixmd5 "$T/a.kz")"
t_eq "npz: labels as written" "0 1 2 1 0" "$(kzpy labels "$T/a.kz" | tr '\n' ' ' | sed 's/ $//')"
t_eq "npz: 3 classes (max label + 1)" 3 "$(info classes "$T/a.kz")"
t_eq "npz: geometry 4x3" "4 3" "$(info width "$T/a.kz") $(info height "$T/a.kz")"
t_eq "npz stored (not deflated) member" "$(md5sum <"$T/a.kz")" \
    "$(kz-unpack "$F/imgs-stored.npz" "$F/labels.npz" | md5sum)"
t_eq "npy v2 file" "$(md5 "$F/imgs.raw")" "$(kz-unpack "$F/imgs-v2.npy" >"$T/b.kz"; pixmd5 "$T/b.kz")"
t_eq "idx raw = npz" "$(md5sum <"$T/a.kz")" "$(kz-unpack "$F/imgs.idx" "$F/labels.idx" | md5sum)"
t_eq "idx gzip = npz" "$(md5sum <"$T/a.kz")" "$(kz-unpack "$F/imgs.idx.gz" "$F/labels.idx.gz" | md5sum)"
t_eq "images without labels: label -1" "-1 -1 -1 -1 -1" \
    "$(kz-unpack "$F/imgs.npz" >"$T/c.kz"; kzpy labels "$T/c.kz" | tr '\n' ' ' | sed 's/ $//')"
t_eq "images without labels: 0 classes" 0 "$(info classes "$T/c.kz")"
cat "$F/imgs.npz" | kz-unpack - "$F/labels.npz" >"$T/d.kz"
t_eq "- reads stdin" "$(md5sum <"$T/a.kz")" "$(md5sum <"$T/d.kz")"
kz-unpack -o "$T/o.kz" "$F/imgs.npz" "$F/labels.npz"
t_eq "-o writes the same stream" "$(md5sum <"$T/a.kz")" "$(md5sum <"$T/o.kz")"
t_eq "-o leaves no temporary file" "" "$(ls "$T" | grep tmp)"
kz-unpack -o "$T/o.kz" "$F/imgs.idx" "$F/labels.npz"
t_eq "-o replaces an existing file" "$(md5sum <"$T/a.kz")" "$(md5sum <"$T/o.kz")"
t_eq "-o: the file's mode follows the umask" "-rw-r----- -rw-------" \
    "$( (umask 027; kz-unpack -o "$T/m1.kz" "$F/imgs.npz"); (umask 077; kz-unpack -o "$T/m2.kz" "$F/imgs.npz"); stat -c %A "$T/m1.kz" "$T/m2.kz" | tr '\n' ' ' | sed 's/ $//')"
# kill -9 while the output is open: kz-norm waits for the last byte of
# its input, its output already open; nothing may be left behind where
# the file system has unnamed files (O_TMPFILE; Linux 3.11, most local
# file systems).
mkdir "$T/k"
if "$PY" -c "import os, sys; os.open(sys.argv[1], os.O_TMPFILE | os.O_WRONLY)" "$T/k" 2>/dev/null; then
	mkfifo "$T/k.fifo"
	(head -c $(($(wc -c <"$T/a.kz") - 1)) "$T/a.kz"; exec sleep 30) >"$T/k.fifo" &
	feeder=$!
	kz-norm -o "$T/k/out.kz" "$T/k.fifo" &
	pid=$!
	i=0
	while ! ls -l /proc/$pid/fd 2>/dev/null | grep -q "$T/k/" && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	t_eq "kill -9: the output was open" 1 "$(ls -l /proc/$pid/fd 2>/dev/null | grep -c "$T/k/")"
	kill -9 $pid $feeder 2>/dev/null
	wait $pid $feeder 2>/dev/null
	t_eq "kill -9 with the output open leaves no file" "" "$(ls -A "$T/k")"
else
	skip "kill -9 with the output open" "no O_TMPFILE in $T"
fi
mkfifo "$T/fifo"
md5sum <"$T/fifo" >"$T/fifo.md5" &
kz-unpack -o "$T/fifo" "$F/imgs.npz" "$F/labels.npz"
wait
t_eq "-o FIFO is written in place" "$(md5sum <"$T/a.kz")" "$(cat "$T/fifo.md5")"
t_eq "-o FIFO is still a FIFO" "fifo" "$(stat -c %F "$T/fifo" | cut -d' ' -f1)"
kz-unpack -o /dev/null "$F/imgs.npz"
t_eq "-o /dev/null stays the device" "character special file" "$(stat -c %F /dev/null)"
kz-unpack -M "$T/m.tsv" "$F/imgs.npz" "$F/labels.npz" "$F/imgs.idx" >/dev/null
t_eq "manifest: source and position" "$(printf '5\t%s\t0' "$F/imgs.idx")" "$(sed -n 6p "$T/m.tsv")"
t_eq "manifest: a line per record" 10 "$(wc -l <"$T/m.tsv")"

# Single images.
kz-unpack "$F/a.png" >"$T/p.kz"
t_eq "PNG grey: pixels" "$(head -c 12 "$F/imgs.raw" | md5sum | cut -d' ' -f1)" "$(pixmd5 "$T/p.kz")"
t_eq "PGM = PNG" "$(md5sum <"$T/p.kz")" "$(kz-unpack "$F/a.pgm" | md5sum)"
t_eq "plain PGM = PNG" "$(md5sum <"$T/p.kz")" "$(kz-unpack "$F/a-plain.pgm" | md5sum)"
t_eq "16-bit PGM scaled to 8 bits" "$(md5sum <"$T/p.kz")" "$(kz-unpack "$F/b16.pgm" | md5sum)"
# The five row filters: kz's own decoder of the simplest PNGs, and
# libpng for the same pixels with a text chunk or a split IDAT.
t_eq "PNG row filters (kz's decoder)" "$(md5 "$F/filters.raw")" "$(kz-unpack "$F/filters.png" | pixmd5 /dev/stdin)"
t_eq "PNG row filters (libpng, text chunk)" "$(md5 "$F/filters.raw")" "$(kz-unpack "$F/filters-text.png" | pixmd5 /dev/stdin)"
t_eq "PNG row filters (libpng, split IDAT)" "$(md5 "$F/filters.raw")" "$(kz-unpack "$F/filters-split.png" | pixmd5 /dev/stdin)"
t_fails "PNG with filter type 5" "filter5.png: PNG: .*filter" kz-unpack "$F/filter5.png"
t_fails "PNG with a bad CRC" "badcrc.png: PNG: .*CRC" kz-unpack "$F/badcrc.png"
t_eq "two gzip members read through" "$(md5 "$F/imgs.raw")" "$(kz-unpack "$F/imgs2.idx.gz" | pixmd5 /dev/stdin)"
kz-unpack "$F/two.pgm" "$F/a.png" >"$T/two.kz"
t_eq "concatenated PGM: 2 images + 1 PNG" 3 "$(kzpy count "$T/two.kz")"
t_eq "concatenated PGM: pixels in order" \
    "$({ head -c 36 "$F/imgs.raw" | tail -c 24; head -c 12 "$F/imgs.raw"; } | md5sum | cut -d' ' -f1)" \
    "$(pixmd5 "$T/two.kz")"
kz-unpack "$F/c.ppm" >"$T/ppm.kz"
t_eq "PPM colour becomes luminance" "$(md5 "$F/c-grey.raw")" "$(pixmd5 "$T/ppm.kz")"
kz-unpack "$F/c.png" >"$T/cpng.kz"
t_eq "PNG colour becomes luminance, as PPM does" "$(md5 "$F/c-grey.raw")" "$(pixmd5 "$T/cpng.kz")"

# Trees.
kz-unpack -C "$T/tree.csv" "$F/tree.tar" >"$T/tree.kz"
t_eq "tar tree: sorted by code point, then name" "$(md5 "$F/tree-expect.raw")" "$(pixmd5 "$T/tree.kz")"
t_eq "tar tree: classes by code point" "0 1 1 2" "$(kzpy labels "$T/tree.kz" | tr '\n' ' ' | sed 's/ $//')"
t_eq "tar tree: class map" "$(md5 "$F/map3.csv")" "$(md5 "$T/tree.csv")"
t_eq "tar.gz = tar" "$(md5sum <"$T/tree.kz")" "$(kz-unpack "$F/tree.tar.gz" | md5sum)"
mkdir -p "$T/treedir" && tar -xf "$F/tree.tar" -C "$T/treedir"
t_eq "directory = tar" "$(md5sum <"$T/tree.kz")" "$(kz-unpack "$T/treedir" | md5sum)"
t_eq "-c maps onto an existing class map" "$(md5sum <"$T/tree.kz")" \
    "$(kz-unpack -c "$F/map3.csv" "$F/tree.tar" | md5sum)"
t_fails "-c: a code point missing from the map" "U\+20000 is not in the class map" \
    kz-unpack -c "$F/map2.csv" "$F/tree.tar"
t_fails "-c: array labels beyond the map" "label 2 of item 2 is not in class map" \
    kz-unpack -c "$F/map2.csv" "$F/imgs.npz" "$F/labels.npz"

# kz-show draws the grid it says.
kz-unpack "$F/imgs.npz" "$F/labels.npz" | kz-show -w 2 -s 3 >"$T/s.png"
t_eq "kz-show: 5 records in 2 columns at scale 3" "27 31" "$(kzpy png-size "$T/s.png")"
kz-unpack "$F/a.png" | kz-show -s 1 -o "$T/one.png"
t_eq "kz-show: cell holds the pixels" "$("$PY" -c "
import sys, hashlib; sys.path.insert(0, '$TESTS'); import kzpy
px = kzpy.png_gray_pixels(open('$T/one.png', 'rb').read())
print(hashlib.md5(bytes(px[(1 + y) * 6 + 1:(1 + y) * 6 + 5][i] for y in range(3) for i in range(4))).hexdigest())")" \
    "$(head -c 12 "$F/imgs.raw" | md5sum | cut -d' ' -f1)"
kz-unpack "$F/imgs.npz" "$F/labels.npz" | kz-show -r 2 -P >"$T/s.pgm"
t_eq "kz-show -r 2 -P: a row per class, PGM" "P5 11 13" "$(head -c 9 "$T/s.pgm" | tr '\n' ' ' | sed 's/ $//')"
# -l: one class's records only (items 1 and 3 of the fixture), by index
# or, through the class map, by character or code point.
kz-unpack "$F/imgs.npz" "$F/labels.npz" | kz-show -l 1 -P >"$T/l.pgm"
t_eq "kz-show -l 1: the class's two records, in order" \
    "P5 11 5 $(dd if="$F/imgs.raw" bs=12 skip=1 count=1 2>/dev/null | md5sum | cut -c1-32) $(dd if="$F/imgs.raw" bs=12 skip=3 count=1 2>/dev/null | md5sum | cut -c1-32)" \
    "$("$PY" -c "
import hashlib
d = open('$T/l.pgm', 'rb').read()
hdr = d.split(b'\\n')[:3]
px = d[len(b'\\n'.join(hdr)) + 1:]
cell = lambda x0: hashlib.md5(bytes(px[(1 + y) * 11 + x0 + i] for y in range(3) for i in range(4))).hexdigest()
print(hdr[0].decode(), hdr[1].decode(), cell(1), cell(6))")"
t_eq "kz-show -l 字 -c map = -l 1" "$(md5sum <"$T/l.pgm")" \
    "$(kz-unpack "$F/imgs.npz" "$F/labels.npz" | kz-show -l 字 -c "$F/map3.csv" -P | md5sum)"
t_eq "kz-show -l U+5B57 -c map = -l 1" "$(md5sum <"$T/l.pgm")" \
    "$(kz-unpack "$F/imgs.npz" "$F/labels.npz" | kz-show -l U+5B57 -c "$F/map3.csv" -P | md5sum)"
kz-unpack "$F/imgs.npz" "$F/labels.npz" >"$T/l.kz"
t_fails "kz-show -l: a character not in the map" "map2.csv: no class for -l 丁" \
    kz-show -l 丁 -c "$F/map2.csv" "$T/l.kz"
t_fails "kz-show -l: a class beyond the stream's" "-l 7: class 7, but the stream has 3 classes" \
    kz-show -l 7 "$T/l.kz"

# kz-info: statistics computed independently by Python.
t_eq "kz-info: mean pixel" "$("$PY" -c "d = open('$F/imgs.raw', 'rb').read(); print('%.4f' % (sum(d) / len(d)))")" \
    "$(info mean "$T/a.kz")"
t_eq "kz-info: class counts" "2 2 1" \
    "$(kz-info -t "$T/a.kz" | awk -F'\t' '$1 == "class" { printf "%s%s", s, $3; s = " " }')"
