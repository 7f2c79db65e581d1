#!/bin/sh
# bench-pair.sh NAME_A BINDIR_A NAME_B BINDIR_B - two builds of kz side by
# side: training and inference of the Keras simple CNN, and training of
# the ResNet-preact-20, each side three times, alternating, medians
# compared; and whether both train the same model bytes.  Not a test.
set -eu
NA=$1 A=$(cd "$2" && pwd) NB=$3 BB=$(cd "$4" && pwd)
D=${KZ_DATA:-../shared/data}
D=$(cd "$D" && pwd)
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=$(mktemp -d "${TMPDIR:-/tmp}/kz-bench-pair.XXXXXX")
trap 'rm -rf "$B"' EXIT
# The same date in both models, so that their bytes compare.
export SOURCE_DATE_EPOCH=1700000000
"$BB/kz-unpack" "$D/kmnist-train-imgs.npz" "$D/kmnist-train-labels.npz" |
    head -c $((32 + 796 * 15000)) >"$B/train.kz"
"$BB/kz-unpack" -o "$B/test.kz" "$D/kmnist-test-imgs.npz" "$D/kmnist-test-labels.npz"
SIMPLE=cnn:conv32k3,relu,conv64k3,relu,maxpool2,drop0.25,dense128,relu,drop0.5
RES="-a @$TOP/examples/kmnist/res20.arch -b 128 --opt nesterov --lr 0.1 --wd 5e-4 --schedule cosine --augment shift=2,cutout=12"
# img_s LINE: the images per second of kz-train's epoch line
img_s() { sed -n 's/^epoch.*  \([0-9]*\) img\/s.*/\1/p'; }
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
for side in a b; do eval "${side}_st= ${side}_si= ${side}_rt="; done
for i in 1 2 3; do
	for side in a b; do
		P=$A; [ $side = b ] && P=$BB
		st=$("$P/kz-train" -t 2 -a $SIMPLE --opt adadelta -e 1 -b 128 \
		    -o "$B/s.$side.kzm" "$B/train.kz" 2>&1 | img_s)
		s=$(date +%s.%N)
		"$P/kz-classify" -t 2 -b 1000 -m "$B/s.$side.kzm" "$B/test.kz" >/dev/null
		e=$(date +%s.%N)
		si=$(echo "10000 / ($e - $s)" | bc)
		rt=$("$P/kz-train" -t 2 $RES -e 1 -o "$B/r.$side.kzm" "$B/train.kz" 2>&1 | img_s)
		eval "${side}_st=\"\$${side}_st $st\" ${side}_si=\"\$${side}_si $si\" ${side}_rt=\"\$${side}_rt $rt\""
	done
	cmp -s "$B/s.a.kzm" "$B/s.b.kzm" && same=same || same=different
	echo "run $i: simple CNN model bytes $same"
done
row() { # name a-figures b-figures
	a=$(median $2) b=$(median $3)
	printf '%-34s %8s %8s  %sx   (%s:%s; %s:%s)\n' "$1" "$a" "$b" \
	    "$(echo "scale=3; $b / $a" | bc)" "$NA" "$2" "$NB" "$3"
}
printf '%-34s %8s %8s  %s\n' "images/s, medians of three, 2 threads" "$NA" "$NB" "$NB/$NA"
row "simple CNN training (15,000)" "$a_st" "$b_st"
row "simple CNN inference (10,000)" "$a_si" "$b_si"
row "ResNet-preact-20 training (15,000)" "$a_rt" "$b_rt"
