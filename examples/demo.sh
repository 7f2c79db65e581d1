#!/bin/sh
# demo.sh BINDIR - the main job: KMNIST through every program into out/.
# Trains a short CNN (a few minutes on two cores), evaluates it, then
# evaluates the shipped model and draws its mistakes.
set -eu
BIN=$(cd "$1" && pwd)
PATH=$BIN:$PATH
D=${KZ_DATA:-../shared/data}
MAP=$D/kmnist_classmap.csv
for f in kmnist-train-imgs.npz kmnist-train-labels.npz kmnist-test-imgs.npz \
    kmnist-test-labels.npz kmnist_classmap.csv; do
	if [ ! -f "$D/$f" ]; then
		echo "demo: $D/$f is missing: run 'make data' or set KZ_DATA" >&2
		exit 1
	fi
done
mkdir -p out
echo "== kz-unpack: KMNIST train and test -> out/train.kz, out/test.kz"
kz-unpack -o out/train.kz "$D/kmnist-train-imgs.npz" "$D/kmnist-train-labels.npz"
kz-unpack -o out/test.kz "$D/kmnist-test-imgs.npz" "$D/kmnist-test-labels.npz"
kz-info -c "$MAP" out/test.kz | head -n 4
echo "== kz-split: 10% of train for validation"
kz-split -f 0.1 --seed 1 -o out/val.kz out/train.kz >out/fit.kz
echo "== kz-train: a short CNN recipe (3 epochs)"
kz-train -a cnn:conv32k3p1,bn,relu,maxpool2,conv64k3p1,bn,relu,maxpool2,dense128,relu,drop0.3 \
    -e 3 --opt nesterov --lr 0.05 --schedule cosine --augment shift=1.5,rotate=8 \
    --val out/val.kz -o out/demo.kzm out/fit.kz
echo "== kz-classify | kz-eval: the short recipe on the test set"
kz-classify -m out/demo.kzm -k 3 out/test.kz | kz-eval -n 5 -c "$MAP" | head -n 6
echo "== kz-label: the first test records in Unicode (true, then predictions)"
kz-classify -m out/demo.kzm -k 2 out/test.kz | kz-label -c "$MAP" | head -n 5
if [ -f models/kmnist.kzm ]; then
	echo "== the shipped model, kmnist (models/kmnist.kzm), with no flags: it carries its"
	echo "   test-time setting (shift=1: the image and four one-pixel shifts, averaged)"
	echo "   and its class map (kz-model kmnist)"
	kz-classify -k 5 out/test.kz >out/test-shipped.kz
	kz-eval -m kmnist -n 8 -o out/confusion.png out/test-shipped.kz
	kz-show -x -n 100 -w 10 -s 2 -o out/mistakes.png out/test-shipped.kz
	kz-label -x -m kmnist out/test-shipped.kz >out/mistakes.tsv
	echo "its mistakes: out/mistakes.png, listed in order (true, predictions) in out/mistakes.tsv:"
	head -n 5 out/mistakes.tsv
fi
echo "== kz-show: ten of each class -> out/kmnist-sheet.png"
kz-show -r 10 -s 2 -o out/kmnist-sheet.png out/train.kz
echo "demo: done; see out/"
