#!/bin/sh
# valgrind.sh BINDIR - runs the real-data pipelines under valgrind
# memcheck, one command at a time, and fails on any memory error or any
# definitely or indirectly lost block.  `make valgrind` builds BINDIR
# without -march=native first: valgrind does not decode AVX-512.
#
# Each line of the report is: status, errors, bytes definitely lost,
# bytes indirectly lost, and the command.  "Possibly lost" blocks are
# counted too but do not fail the run: OpenBLAS keeps its thread pool's
# buffers until exit, reachable through interior pointers only.
set -u
BIN=$(cd "$1" && pwd)
TOP=$(cd "$(dirname "$0")/.." && pwd)
D=${KZ_DATA:-$TOP/../shared/data}
W=$(mktemp -d "${TMPDIR:-/tmp}/kz-vg.XXXXXX")
trap 'rm -rf "$W"' EXIT
PATH=$BIN:$PATH
export SOURCE_DATE_EPOCH=1764115200
n=0 bad=0
# One set of memcheck options, for single commands and the pipe alike.
VG="valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect"

# vg NAME CMD... : CMD under memcheck; stdin and stdout pass through.
vg() {
	_name=$1; shift
	n=$((n + 1))
	$VG --log-file="$W/vg.$n.log" "$@"
	_s=$?
	_e=$(grep -c '^==[0-9]*== [A-Z]' "$W/vg.$n.log")
	_dl=$(valgrind_summary "definitely lost")
	_il=$(valgrind_summary "indirectly lost")
	if [ "$_s" -ne 0 ] || [ "$_e" -ne 0 ]; then
		bad=$((bad + 1))
		printf 'FAIL %-4s %8s %8s  %s (exit %s)\n' "$_e" "$_dl" "$_il" "$_name" "$_s" >&2
		sed 's/^/    /' "$W/vg.$n.log" | head -40 >&2
	else
		printf 'ok   %-4s %8s %8s  %s\n' 0 "$_dl" "$_il" "$_name" >&2
	fi
}

# The leak lines appear only when something leaked; -q hides the rest.
valgrind_summary() {
	awk -v k="$1" 'index($0, k ":") { gsub(",", "", $5); print $5; f = 1 } END { if (!f) print 0 }' "$W/vg.$n.log"
}

for f in kmnist-test-imgs.npz kmnist-test-labels.npz t10k-images-idx3-ubyte.gz \
    t10k-labels-idx1-ubyte.gz kmnist_classmap.csv kkanji.tar.gz; do
	[ -f "$D/$f" ] || { echo "valgrind.sh: $D/$f: missing; set KZ_DATA" >&2; exit 2; }
done

echo "     errors definite indirect command" >&2
# KMNIST: unpack both encodings, split, train four kinds of model on a
# few thousand records, classify, evaluate, label, show.
vg "unpack npz" kz-unpack -o "$W/t.kz" "$D/kmnist-test-imgs.npz" "$D/kmnist-test-labels.npz"
vg "unpack idx.gz" kz-unpack -o "$W/i.kz" "$D/t10k-images-idx3-ubyte.gz" "$D/t10k-labels-idx1-ubyte.gz"
vg "split" kz-split -f 0.2 -s 1 -o "$W/b.kz" "$W/t.kz" >"$W/a.kz"
vg "split shards" kz-split -n 4 -o "$W/shard" "$W/b.kz"
head -c $((32 + 3000 * 796)) "$W/a.kz" >"$W/a3k.kz"
head -c $((32 + 500 * 796)) "$W/b.kz" >"$W/b500.kz"
vg "norm fit" kz-norm -f 28x28 -d -o "$W/n.kz" "$W/b500.kz"
vg "train knn" kz-train -q -a knn -k 4 -o "$W/knn.kzm" "$W/a3k.kz"
vg "train linear" kz-train -q -a linear -e 1 -o "$W/lin.kzm" "$W/a3k.kz"
vg "train mlp" kz-train -q -a mlp:64,drop0.2 -e 1 --augment shift=2,rotate=5 -o "$W/mlp.kzm" "$W/a3k.kz"
head -c $((32 + 600 * 796)) "$W/a.kz" >"$W/a600.kz"
vg "train cnn" kz-train -q -t 2 -a cnn:conv8k3p1,bn,relu,res8,res16s2,maxpool2,gap,drop0.1 -e 1 \
    --augment shift=2,shear=0.2,elastic=1,stroke=0.5,cutout=6,mixup=0.2 --ema 0.99 --bn-lr 4 --whiten --hard 0.5 --sam 0.05 --val "$W/b500.kz" --keep-best \
    --checkpoint "$W/ck.kzm" -o "$W/cnn.kzm" "$W/a600.kz"
vg "train cnn resume" kz-train -q -t 2 -a cnn:conv8k3p1,bn,relu,res8,res16s2,maxpool2,gap,drop0.1 -e 2 \
    --ema 0.99 --bn-lr 4 --whiten --hard 0.5 --sam 0.05 --resume "$W/ck.kzm" -o "$W/cnn2.kzm" "$W/a600.kz"
vg "train cnn from another" kz-train -q -t 2 -a cnn:conv8k3p1,bn,relu,res8,res16s2,maxpool2,gap,drop0.1 -e 1 \
    --from "$W/cnn.kzm" -o "$W/cnn3.kzm" "$W/a600.kz"
vg "classify knn" kz-classify -k 3 -m "$W/knn.kzm" -o "$W/pk.kz" "$W/b500.kz"
vg "classify ensemble" kz-classify -t 2 -k 3 -m "$W/mlp.kzm" -m "$W/cnn.kzm" -o "$W/pe.kz" "$W/b500.kz"
if [ -f "$TOP/models/kmnist.kzm" ]; then
	# 5 records: three members and ten views run the same code for
	# each image, and under memcheck each takes about 25 s.
	head -c $((32 + 5 * 796)) "$W/b.kz" >"$W/b5.kz"
	vg "classify shipped" kz-classify -t 2 -m "$TOP/models/kmnist.kzm" -o "$W/ps.kz" "$W/b5.kz"
fi
vg "eval" kz-eval -c "$D/kmnist_classmap.csv" -o "$W/heat.png" "$W/pe.kz" >/dev/null
vg "label" kz-label -c "$D/kmnist_classmap.csv" -f text "$W/pe.kz" >/dev/null
vg "label mistakes" kz-label -x -c "$D/kmnist_classmap.csv" "$W/pe.kz" >/dev/null
vg "show" kz-show -x -n 50 -o "$W/sheet.png" "$W/pe.kz"
vg "show pgm" kz-show -P -n 1 -o "$W/one.pgm" "$W/b500.kz"
vg "info" kz-info "$W/pe.kz" >/dev/null

# Single images: a PNG and a PGM back through unpack and the shipped
# model, as in README.
vg "unpack png" kz-unpack -o "$W/png.kz" "$W/sheet.png"
vg "unpack pgm" kz-unpack -o "$W/pgm.kz" "$W/one.pgm"

# Kuzushiji-Kanji: the whole archive, the published split, 32x32.
vg "unpack kanji tar.gz" kz-unpack -C "$W/kanji.csv" -o "$W/k.kz" "$D/kkanji.tar.gz"
vg "split kanji" kz-split -f 0.2 -m 5 -s 0 -o "$W/kt.kz" "$W/k.kz" >/dev/null
head -c $((32 + 2000 * 4108)) "$W/kt.kz" >"$W/kt2k.kz"
vg "norm kanji" kz-norm -p keep -r 32x32 -o "$W/k32.kz" "$W/kt2k.kz"
vg "train kanji knn" kz-train -q -a knn -k 1 -o "$W/kk.kzm" "$W/k32.kz"
vg "classify kanji" kz-classify -k 5 -m "$W/kk.kzm" -o "$W/kp.kz" "$W/k32.kz"
vg "eval kanji" kz-eval -n 10 -c "$W/kanji.csv" "$W/kp.kz" >/dev/null

# A pipeline through pipes, as users run it.
$VG --log-file="$W/p1.log" kz-unpack "$D/kmnist-test-imgs.npz" "$D/kmnist-test-labels.npz" |
    head -c $((32 + 200 * 796)) |
    $VG --log-file="$W/p2.log" kz-norm -f 28x28 |
    $VG --log-file="$W/p3.log" kz-classify -m "$W/mlp.kzm" |
    $VG --log-file="$W/p4.log" kz-label -c "$D/kmnist_classmap.csv" >/dev/null
n=$((n + 1))
if [ -s "$W/p1.log" ] || [ -s "$W/p2.log" ] || [ -s "$W/p3.log" ] || [ -s "$W/p4.log" ]; then
	bad=$((bad + 1)); echo "FAIL pipe unpack | head | norm | classify | label" >&2
	cat "$W"/p?.log >&2
else
	echo "ok   0           0        0  pipe unpack | head | norm | classify | label" >&2
fi

echo "valgrind: $n commands, $((n - bad)) clean, $bad with errors or leaks" >&2
[ "$bad" -eq 0 ]
