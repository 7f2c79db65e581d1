#!/bin/sh
# bench-engine.sh BINDIR REV - this build's engine against git revision
# REV's, built here in a temporary worktree: training and inference of
# the Keras simple CNN, and training of the ResNet-preact-20, each side
# three times, alternating, medians compared.  Not a test.
set -eu
BIN=$(cd "$1" && pwd)
REV=$2
D=${KZ_DATA:-../shared/data}
D=$(cd "$D" && pwd)
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=$(mktemp -d "${TMPDIR:-/tmp}/kz-bench-engine.XXXXXX")
trap 'git -C "$TOP" worktree remove --force "$B/base" 2>/dev/null; rm -rf "$B"' EXIT
git -C "$TOP" worktree add -q --detach "$B/base" "$REV"
make -s -C "$B/base" all >/dev/null
BASE=$B/base/build/bin
# The same date in both models, so that their bytes compare.
export SOURCE_DATE_EPOCH=1700000000
"$BIN/kz-unpack" "$D/kmnist-train-imgs.npz" "$D/kmnist-train-labels.npz" |
    head -c $((32 + 796 * 15000)) >"$B/train.kz"
"$BIN/kz-unpack" -o "$B/test.kz" "$D/kmnist-test-imgs.npz" "$D/kmnist-test-labels.npz"
SIMPLE=cnn:conv32k3,relu,conv64k3,relu,maxpool2,drop0.25,dense128,relu,drop0.5
RES="-a @$TOP/examples/kmnist/res20.arch -b 128 --opt nesterov --lr 0.1 --wd 5e-4 --schedule cosine --augment shift=2,cutout=12"
# img_s LINE: the images per second of kz-train's epoch line
img_s() { sed -n 's/^epoch.*  \([0-9]*\) img\/s.*/\1/p'; }
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
for side in base new; do eval "${side}_st= ${side}_si= ${side}_rt="; done
for i in 1 2 3; do
	for side in base new; do
		P=$BIN; [ $side = base ] && P=$BASE
		st=$("$P/kz-train" -t 2 -a $SIMPLE --opt adadelta -e 1 -b 128 \
		    -o "$B/s.$side.kzm" "$B/train.kz" 2>&1 | img_s)
		s=$(date +%s.%N)
		"$P/kz-classify" -t 2 -b 1000 -m "$B/s.$side.kzm" "$B/test.kz" >/dev/null
		e=$(date +%s.%N)
		si=$(echo "10000 / ($e - $s)" | bc)
		rt=$("$P/kz-train" -t 2 $RES -e 1 -o "$B/r.$side.kzm" "$B/train.kz" 2>&1 | img_s)
		eval "${side}_st=\"\$${side}_st $st\" ${side}_si=\"\$${side}_si $si\" ${side}_rt=\"\$${side}_rt $rt\""
	done
	cmp -s "$B/s.base.kzm" "$B/s.new.kzm" && same=same || same=DIFFERENT
	echo "run $i: simple CNN model bytes $same"
done
row() { # name base-figures new-figures
	b=$(median $2) n=$(median $3)
	printf '%-34s %6s %6s  %sx   (base:%s; new:%s)\n' "$1" "$b" "$n" \
	    "$(echo "scale=3; $n / $b" | bc)" "$2" "$3"
}
echo "engine against $REV: images/s, medians of three, 2 threads     base    new  new/base"
row "simple CNN training (15,000)" "$base_st" "$new_st"
row "simple CNN inference (10,000)" "$base_si" "$new_si"
row "ResNet-preact-20 training (15,000)" "$base_rt" "$new_rt"
