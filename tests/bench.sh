#!/bin/sh
# bench.sh BINDIR - speed figures, each side by side with its peer in one
# run on this machine.  Not a test: nothing here passes or fails.
set -eu
BIN=$(cd "$1" && pwd)
PATH=$BIN:$PATH
D=${KZ_DATA:-../shared/data}
D=$(cd "$D" && pwd)
sh "$(dirname "$0")/../tools/deps.sh" bench
echo "== kz-unpack: KMNIST train+test npz pairs (4 files) vs numpy np.load(...)['arr_0'] inside Python; target >= 1.5x"
NPZ="$D/kmnist-train-imgs.npz $D/kmnist-train-labels.npz $D/kmnist-test-imgs.npz $D/kmnist-test-labels.npz"
PYLOAD="import numpy as np, sys; [np.load(f)['arr_0'] for f in sys.argv[1:]]"
hyperfine -N -w 2 -r 10 --export-json /tmp/kz-bench-unpack.json \
    -n kz-unpack "kz-unpack -o /dev/null $NPZ" \
    -n numpy "/usr/bin/python3 -c \"$PYLOAD\" $NPZ"
/usr/bin/python3 - "$NPZ" <<'PY'
import json, sys, time
import numpy as np
r = {x["command"]: x for x in json.load(open("/tmp/kz-bench-unpack.json"))["results"]}
files = sys.argv[1].split()
best = 1e9
for _ in range(10):
    t = time.perf_counter(); [np.load(f)["arr_0"] for f in files]; best = min(best, time.perf_counter() - t)
kz = r["kz-unpack"]
print("kz-unpack (whole process) mean %.3f s, best %.3f s; numpy whole command %.3f s; "
      "numpy inside Python (no start-up) best of 10 %.3f s"
      % (kz["mean"], min(kz["times"]), r["numpy"]["mean"], best))
print("speed-up of kz-unpack over numpy inside Python: %.2fx (best against best), %.2fx (kz mean); target >= 1.5x"
      % (best / min(kz["times"]), best / kz["mean"]))
PY
if [ -f "$D/kkanji.tar.gz" ]; then
	echo "== kz-unpack: Kuzushiji-Kanji kkanji.tar.gz (140,424 PNGs) to a stream; target <= 3 s"
	hyperfine -N -w 1 -r 5 -n kanji "kz-unpack -o /dev/null $D/kkanji.tar.gz"
fi

B=$(mktemp -d "${TMPDIR:-/tmp}/kz-bench.XXXXXX")
trap 'rm -rf "$B"' EXIT

R=$D/real-pages/100241706
if [ -d "$R" ]; then
	echo "== Real pages (issue 22): JPEG pages cut into their boxes, levelled and fitted to 32x32"
	# A page of 200 boxes: the 67 of page 00004_2, three times over.
	mkdir -p "$B/page/images"
	ln -s "$R/images/100241706_00004_2.jpg" "$B/page/images/"
	{ head -1 "$R/100241706_coordinate.csv"
	  for i in 1 2 3; do grep ',100241706_00004_2,' "$R/100241706_coordinate.csv"; done | head -200
	} >"$B/page/page_coordinate.csv"
	hyperfine -N -w 1 -r 10 \
	    -n "two pages, 147 boxes (target < 1 s)" "kz-unpack -f 32x32 -o /dev/null $R" \
	    -n "one page, 200 boxes (target < 0.5 s)" "kz-unpack -f 32x32 -o /dev/null $B/page"
fi
if [ -f "$D/kkanji.tar.gz" ] && kz-classify -L 2>/dev/null | grep -q '^kanji'; then
	echo "== Similar glyphs (issue 19): 10,000 queries against the 113,796 Kanji training images; target <= 10 s"
	# At the shipped model's input size; 32x32 for the Kanji CNN below.
	KS=$(kz-model "$(dirname "$0")/../models/kanji.kzm" | awk -F'\t' '$1 == "size" { print $2 }')
	kz-unpack "$D/kkanji.tar.gz" | kz-split -f 0.2 -m 5 -s 0 -o "$B/ktest64.kz" | kz-norm -p keep -r "$KS" >"$B/ktrain.kz"
	# The first 10,000 test images: a stream cuts at any record.
	kz-norm -p keep -r "$KS" "$B/ktest64.kz" | head -c $((32 + 10000 * (12 + ${KS%x*} * ${KS#*x}))) >"$B/kq.kz"
	if [ "$KS" = 32x32 ]; then
		ln -s kq.kz "$B/kq32.kz"
	else
		kz-norm -p keep -r 32x32 "$B/ktest64.kz" | head -c $((32 + 10000 * 1036)) >"$B/kq32.kz"
	fi
	s=$(date +%s.%N)
	kz-similar -m kanji -t 2 -w "$B/kanji.kzg" "$B/ktrain.kz"
	e=$(date +%s.%N)
	echo "index of $(kz-info -t "$B/ktrain.kz" | awk -F'\t' '$1 == "records" { print $2 }') images ($KS): $(printf %.1f "$(echo "$e - $s" | bc)") s, $(du -m "$B/kanji.kzg" | cut -f1) MB"
	hyperfine -N -w 1 -r 3 -n "kz-similar -n 8: $(kz-info -t "$B/kq.kz" | awk -F'\t' '$1 == "records" { print $2 }') queries" \
	    "kz-similar -m kanji -t 2 -n 8 -i $B/kanji.kzg -o /dev/null $B/kq.kz"
fi
PEER="/usr/bin/python3 $(dirname "$0")/bench_peer.py"
kz-unpack -o "$B/train.kz" "$D/kmnist-train-imgs.npz" "$D/kmnist-train-labels.npz"
kz-unpack -o "$B/test.kz" "$D/kmnist-test-imgs.npz" "$D/kmnist-test-labels.npz"

echo "== kNN, k 4, distance-weighted, full KMNIST: kz (unpack + train + classify) vs scikit-learn; target >= 3x"
s=$(date +%s.%N)
kz-unpack "$D/kmnist-train-imgs.npz" "$D/kmnist-train-labels.npz" | kz-train -q -a knn -k 4 -o "$B/knn.kzm"
acc=$(kz-unpack "$D/kmnist-test-imgs.npz" "$D/kmnist-test-labels.npz" | kz-classify -m "$B/knn.kzm" | kz-eval -t |
    awk -F'\t' '$1 == "accuracy" { printf "%.2f", 100 * $2 }')
e=$(date +%s.%N)
kzt=$(echo "$e - $s" | bc)
echo "kz knn: $acc% in $kzt s"
pk=$($PEER knn "$D")
echo "$pk"
skt=$(echo "$pk" | sed 's/.* in \([0-9.]*\) s.*/\1/')
echo "speed-up: $(echo "scale=2; $skt / $kzt" | bc)x"

SIMPLE=cnn:conv32k3,relu,conv64k3,relu,maxpool2,drop0.25,dense128,relu,drop0.5
echo "== Keras simple CNN: training images/s, kz-train vs PyTorch (Adadelta, batch 128, 2 threads); target >= 1.75x"
kz-split -n 4 -o "$B/q" "$B/train.kz"
# This machine's speed drifts by 10-15% over minutes (it shares its
# host), so each side runs three times, alternating, and the medians
# are compared.
# median A B C: the middle one of three figures
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
kzs_all= pts_all= kzi_all= pis_all=
for i in 1 2 3; do
	line=$(kz-train -t 2 -a $SIMPLE --opt adadelta -e 1 -b 128 -o "$B/simple.kzm" "$B/q.0.kz" 2>&1 | grep '^epoch')
	kzs_all="$kzs_all $(echo "$line" | sed 's/.*  \([0-9]*\) img\/s.*/\1/')"
	pts_all="$pts_all $($PEER torch-train "$D" 15000 | sed 's/torch train: \([0-9]*\) img.*/\1/')"
done
kzs=$(median $kzs_all)
pts=$(median $pts_all)
echo "kz train: $kzs img/s (median of$kzs_all; 15000 images), $(echo "scale=1; $kzs * 72 / 1000" | bc) GFLOP/s at 72 MFLOP per image (as im2col counts it: Winograd does fewer)"
echo "torch train: $pts img/s (median of$pts_all; 15000 images, batch 128, 2 threads)"
echo "training speed-up: $(echo "scale=2; $kzs / $pts" | bc)x"

echo "== Keras simple CNN: inference images/s (batch 1000), kz-classify vs PyTorch; target >= 3x"
for i in 1 2 3; do
	s=$(date +%s.%N)
	kz-classify -t 2 -b 1000 -m "$B/simple.kzm" "$B/test.kz" >/dev/null
	e=$(date +%s.%N)
	kzi_all="$kzi_all $(echo "10000 / ($e - $s)" | bc)"
	pis_all="$pis_all $($PEER torch-infer "$D" | sed 's/torch infer: \([0-9]*\) img.*/\1/')"
done
kzi=$(median $kzi_all)
pis=$(median $pis_all)
echo "kz infer: $kzi img/s (median of$kzi_all; 10000 images end to end: model and stream read included), $(echo "scale=1; $kzi * 24 / 1000" | bc) GFLOP/s at 24 MFLOP per image (as im2col counts it)"
echo "torch infer: $pis img/s (median of$pis_all; 10000 images, batch 1000, 2 threads)"
echo "inference speed-up: $(echo "scale=2; $kzi / $pis" | bc)x"

for i in 1 2 3 4 5 6 7 8 9 10; do cat "$B/test.kz"; done >"$B/test100k.kz"

# ONNX Runtime (issue 21): the strongest CPU inference peer, run through
# Node with the onnxruntime-node package pinned at 1.16.3 (it carries
# its own libonnxruntime.so; later versions fetch it at install time).
# Each kz model is rebuilt in torch from its file and exported to ONNX
# by bench_peer.py, so both sides run the same network with the same
# weights: the bench checks that they agree on every prediction.
ORT=${XDG_CACHE_HOME:-$HOME/.cache}/kz-bench/ort-1.16.3
[ -d "$ORT/node_modules/onnxruntime-node" ] ||
    npm install --prefix "$ORT" --no-audit --no-fund --silent onnxruntime-node@1.16.3
# kz_rate PROG N ARGS...: images a second of PROG (a kz-classify) ARGS
# on N records, end to end.
kz_rate() {
	prog=$1
	n=$2
	shift 2
	s=$(date +%s.%N)
	"$prog" "$@"
	e=$(date +%s.%N)
	echo "$n / ($e - $s)" | bc
}
# Issue 21 asks bfloat16 for twice the single precision of its day:
# kz-classify as of REF_REV (2026-12-01), built in a worktree and run in
# the same alternation.  Without the revision (a shallow clone), left out.
REF_REV=a5bdc7e
TOP=$(cd "$(dirname "$0")/.." && pwd)
REF=
if git -C "$TOP" cat-file -e "$REF_REV^{commit}" 2>/dev/null &&
    git -C "$TOP" worktree add -q --detach "$B/ref" "$REF_REV" 2>/dev/null; then
	trap 'git -C "$TOP" worktree remove --force "$B/ref" 2>/dev/null; rm -rf "$B"' EXIT
	make -s -C "$B/ref" all >/dev/null 2>&1 && REF=$B/ref/build/bin/kz-classify
fi
# ort_vs_kz NAME MODEL STREAM10K STREAM100K: kz-classify end to end, in
# single precision and with bfloat16 products (-p bf16, where the CPU
# has them), against ONNX Runtime in-process, medians of three,
# alternating.
ort_vs_kz() {
	$PEER onnx "$2" "$B/$1.onnx"
	for f in "$3" "$4"; do
		n=$(kz-info -t "$f" | awk -F'\t' '$1 == "records" { print $2 }')
		kz_all= bf_all= ort_all= ref_all=
		for i in 1 2 3; do
			[ -z "$REF" ] || ref_all="$ref_all $(kz_rate "$REF" "$n" -t 2 -b 1000 -s 0 -m "$2" -o "$B/kzr.kz" "$f")"
			kz_all="$kz_all $(kz_rate kz-classify "$n" -t 2 -b 1000 -s 0 -m "$2" -o "$B/kzp.kz" "$f")"
			bf_all="$bf_all $(kz_rate kz-classify "$n" -p bf16 -t 2 -b 1000 -s 0 -m "$2" -o "$B/kzb.kz" "$f")"
			ort_all="$ort_all $(NODE_PATH=$ORT/node_modules node "$(dirname "$0")/bench_ort.js" "$B/$1.onnx" "$f" 2 "$B/ort.cls" |
			    sed 's/ort infer: \([0-9]*\) img.*/\1/')"
		done
		same=$(/usr/bin/python3 "$(dirname "$0")/kzpy.py" top1 "$B/kzp.kz" | paste -d' ' - "$B/ort.cls" | awk '$1 == $2' | wc -l)
		bsame=$(/usr/bin/python3 "$(dirname "$0")/kzpy.py" top1 "$B/kzb.kz" | paste -d' ' - "$B/ort.cls" | awk '$1 == $2' | wc -l)
		echo "$1, $n images: kz-classify $(median $kz_all) img/s end to end (median of$kz_all);" \
		    "ONNX Runtime $(median $ort_all) img/s in-process (median of$ort_all);" \
		    "kz / ORT $(echo "scale=2; $(median $kz_all) / $(median $ort_all)" | bc)x; top-1 agree on $same of $n"
		echo "$1, $n images: kz-classify -p bf16 $(median $bf_all) img/s (median of$bf_all);" \
		    "bf16 / ORT $(echo "scale=2; $(median $bf_all) / $(median $ort_all)" | bc)x;" \
		    "bf16 / kz single precision $(echo "scale=2; $(median $bf_all) / $(median $kz_all)" | bc)x; top-1 agree with ORT on $bsame of $n"
		[ -z "$REF" ] || echo "$1, $n images: kz-classify as of $REF_REV (the single precision of issue 21's day) $(median $ref_all) img/s" \
		    "(median of$ref_all); bf16 / that $(echo "scale=2; $(median $bf_all) / $(median $ref_all)" | bc)x (target 2x);" \
		    "single precision / that $(echo "scale=2; $(median $kz_all) / $(median $ref_all)" | bc)x"
	done
}
echo "== Inference, kz-classify vs ONNX Runtime 1.16.3 (batch 1000, 2 threads, no test-time shifts); target >= 1.3x"
ort_vs_kz simple "$B/simple.kzm" "$B/test.kz" "$B/test100k.kz"
# first_net MODEL NAME: MODEL, or its first member when it is an ensemble
# (both sides then run that one network), as $B/NAME.kzm in single
# precision: the export reads PARM, not a compact model's PQ4 or PQN
# (kz dequantises as it loads, so its speed is the same).
first_net() {
	if kz-model "$1" | grep -q '^type.ensemble'; then
		$PEER member "$1" 1 "$B/$2.member.kzm"
		kz-model -p f32 -o "$B/$2.kzm" "$B/$2.member.kzm"
	else
		kz-model -p f32 -o "$B/$2.kzm" "$1"
	fi
	echo "$B/$2.kzm"
}
ort_vs_kz resnet20 "$(first_net "$(cd "$(dirname "$0")/../models" && pwd)/kmnist.kzm" resnet1)" "$B/test.kz" "$B/test100k.kz"
if [ -f "$B/kq32.kz" ]; then
	# The Kanji CNN: the shipped model's first network.
	KM=$(first_net "$(cd "$(dirname "$0")/../models" && pwd)/kanji.kzm" kanji1)
	for i in 1 2 3 4 5 6 7 8 9 10; do cat "$B/kq32.kz"; done >"$B/kq100k.kz"
	ort_vs_kz kanji-cnn "$KM" "$B/kq32.kz" "$B/kq100k.kz"
fi

echo "== kz-classify memory: flat with stream length (10,000 vs 100,000 records)"
for f in test test100k; do
	/usr/bin/time -f "%M" -o "$B/rss" kz-classify -m "$B/simple.kzm" "$B/$f.kz" >/dev/null
	echo "$f: $(kz-info -t "$B/$f.kz" | awk -F'\t' '$1 == "records" { print $2 }') records, peak RSS $(cat "$B/rss") KiB"
done

RECIPE=cnn:conv32k3p1,bn,relu,maxpool2,conv64k3p1,bn,relu,maxpool2,dense128,relu,drop0.3
echo "== The demo's recipe, kz-train vs PyTorch (issue 18): 3 epochs, Nesterov 0.05, cosine, batch 128, 2 threads;"
echo "   54,000 training images, validation on the other 6,000 every 5,400 images; target: the same test accuracy"
kz-split -f 0.1 --seed 1 -o "$B/val.kz" "$B/train.kz" >"$B/fit.kz"
# first95 FILE: the training seconds of the first validation point at or above 95%
first95() { awk '$1 == "val" && $4 + 0 >= 95 { print $5; exit }' "$1"; }
s=$(date +%s.%N)
kz-train -t 2 --seed 1 -a $RECIPE -e 3 --opt nesterov --lr 0.05 --schedule cosine \
    --val "$B/val.kz" --val-every 5400 -o "$B/recipe.kzm" "$B/fit.kz" 2>"$B/kz-curve"
e=$(date +%s.%N)
kzw=$(echo "$e - $s" | bc)
kza=$(kz-classify -m "$B/recipe.kzm" "$B/test.kz" | kz-eval -t | awk -F'\t' '$1 == "accuracy" { printf "%.2f", 100 * $2 }')
s=$(date +%s.%N)
$PEER torch-recipe "$B/fit.kz" "$B/val.kz" "$B/test.kz" 5400 1 >"$B/torch-curve"
e=$(date +%s.%N)
ptw=$(echo "$e - $s" | bc)
pta=$(sed -n 's/^torch test: \([0-9.]*\)%.*/\1/p' "$B/torch-curve")
echo "kz:    test $kza%, wall $(printf %.1f "$kzw") s (validation included), 95% validation after $(first95 "$B/kz-curve") s of training"
echo "torch: test $pta%, wall $(printf %.1f "$ptw") s (validation included), 95% validation after $(first95 "$B/torch-curve") s of training"
echo "time to 95%: kz $(echo "scale=1; $(first95 "$B/torch-curve") / $(first95 "$B/kz-curve")" | bc)x faster"

echo "== ResNet-preact-20 training (issue 18's bfloat16 lever): kz-train -p f32 and -p bf16 vs PyTorch;"
echo "   15,000 images, batch 128, Nesterov, 2 threads, no augmentation, medians of three, alternating"
RES="@$(cd "$(dirname "$0")/../examples/kmnist" && pwd)/res20.arch"
# res_rate PRECISION: kz-train's images a second over one epoch
res_rate() {
	kz-train -t 2 -a "$RES" -e 1 -b 128 --opt nesterov --lr 0.1 --wd 5e-4 -p "$1" \
	    -o "$B/res.kzm" "$B/q.0.kz" 2>&1 | sed -n 's/^epoch.*  \([0-9]*\) img\/s.*/\1/p'
}
r32_all= r16_all= rpt_all=
for i in 1 2 3; do
	r32_all="$r32_all $(res_rate f32)"
	r16_all="$r16_all $(res_rate bf16)"
	rpt_all="$rpt_all $($PEER torch-train-model "$B/res.kzm" "$B/q.0.kz" | sed 's/torch train: \([0-9]*\) img.*/\1/')"
done
r32=$(median $r32_all) r16=$(median $r16_all) rpt=$(median $rpt_all)
echo "kz -p f32:  $r32 img/s (median of$r32_all)"
echo "kz -p bf16: $r16 img/s (median of$r16_all)$(grep -qw avx512_bf16 /proc/cpuinfo || echo ' (no AVX512_BF16 here: single precision)')"
echo "torch:      $rpt img/s (median of$rpt_all)"
echo "bf16 / f32: $(echo "scale=2; $r16 / $r32" | bc)x; f32 / torch: $(echo "scale=2; $r32 / $rpt" | bc)x; bf16 / torch: $(echo "scale=2; $r16 / $rpt" | bc)x"

if [ -x "$(dirname "$0")/../build-mpi/bin/kz-train" ] && command -v mpirun >/dev/null; then
	echo "== Data-parallel training (issue 20): 1 process x 2 threads vs 2 MPI ranks x 1 thread, ResNet-preact-20, 15,000 images"
	export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
	MT=$(cd "$(dirname "$0")/../build-mpi/bin" && pwd)/kz-train
	one_all= two_all=
	for i in 1 2 3; do
		one_all="$one_all $(kz-train -t 2 -a "$RES" -e 1 -b 128 --opt nesterov -o "$B/r1.kzm" "$B/q.0.kz" 2>&1 |
		    sed -n 's/^epoch.*  \([0-9]*\) img\/s.*/\1/p')"
		two_all="$two_all $(mpirun --oversubscribe -np 2 "$MT" -t 1 -a "$RES" -e 1 -b 128 --opt nesterov -o "$B/r2.kzm" "$B/q.0.kz" 2>&1 |
		    sed -n 's/^epoch.*  \([0-9]*\) img\/s.*/\1/p')"
	done
	echo "1 process x 2 threads: $(median $one_all) img/s (median of$one_all)"
	echo "2 ranks x 1 thread:    $(median $two_all) img/s (median of$two_all)"
	echo "ranks / threads: $(echo "scale=2; $(median $two_all) / $(median $one_all)" | bc) (the same model, number for number)"
fi
