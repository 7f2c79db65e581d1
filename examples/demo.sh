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
	echo "   test-time settings (shift=2 zoom=2 rotate=3: the image as given and turned"
	echo "   3 degrees either way, each scaled by 0.98 and 1.02, each of those also moved"
	echo "   two pixels four ways, 30 views averaged)"
	echo "   and its class map (kz-model kmnist)"
	kz-classify -k 5 out/test.kz >out/test-shipped.kz
	kz-eval -m kmnist -n 8 -o out/confusion.png out/test-shipped.kz
	kz-show -x -n 100 -w 10 -s 2 -o out/mistakes.png out/test-shipped.kz
	kz-label -x -m kmnist out/test-shipped.kz >out/mistakes.tsv
	echo "its mistakes: out/mistakes.png, listed in order (true, predictions) in out/mistakes.tsv:"
	head -n 5 out/mistakes.tsv
fi
R=$D/real-pages/100241706
if [ -f models/kanji.kzm ] && [ -d "$R" ]; then
	# The Kanji model's input size, which the crops are fitted to.
	ks=$(kz-model models/kanji.kzm | awk -F'\t' '$1 == "size" { print $2 }')
	echo "== the reader's path: two real pages of a CODH book (100241706), every box cut out,"
	echo "   levelled and fitted to $ks, read by the Kanji model (kanji: 3,832 characters)"
	kz-unpack -c models/kanji_classmap.csv --fit "$ks" -M out/boxes.tsv "$R" >out/boxes.kz
	kz-classify -m kanji -k 5 out/boxes.kz >out/boxes-read.kz
	kz-eval -m kanji out/boxes-read.kz | head -n 6
	kz-show -w 15 -s 2 -o out/boxes.png out/boxes-read.kz
	echo "the crops: out/boxes.png; a box, its page and place, then index, true, five guesses:"
	head -n 1 out/boxes.tsv
	kz-label -m kanji out/boxes-read.kz | head -n 1
	if [ -f "$D/kkanji.tar.gz" ]; then
		echo "== similar glyphs: the Kanji training images nearest the first kanji box"
		kz-unpack "$D/kkanji.tar.gz" | kz-split -f 0.2 -m 5 -s 0 -o /dev/null |
		    kz-norm -p keep -r "$ks" >out/kanji-train.kz
		kz-similar -m kanji -w out/kanji.kzg out/kanji-train.kz
		kz-unpack -u -c models/kanji_classmap.csv --fit "$ks" "$R" 2>/dev/null |
		    head -c $((32 + 12 + ${ks%x*} * ${ks#*x})) >out/first.kz
		kz-similar -m kanji -i out/kanji.kzg -n 8 out/first.kz >out/near.kz
		kz-show -w 9 -s 3 -o out/near.png out/near.kz
		kz-label -m kanji out/near.kz | cut -f1-4
		echo "the sheet: out/near.png (the query first)"
		rm -f out/kanji-train.kz out/kanji.kzg
	fi
fi
echo "== kz-show: ten of each class -> out/kmnist-sheet.png"
kz-show -r 10 -s 2 -o out/kmnist-sheet.png out/train.kz
echo "demo: done; see out/"
