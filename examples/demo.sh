#!/bin/sh
# demo.sh BINDIR - the main job: KMNIST through every program into out/.
set -eu
BIN=$(cd "$1" && pwd)
PATH=$BIN:$PATH
D=${KZ_DATA:-../shared/data}
for f in kmnist-train-imgs.npz kmnist-train-labels.npz kmnist-test-imgs.npz \
    kmnist-test-labels.npz kmnist_classmap.csv; do
	if [ ! -f "$D/$f" ]; then
		echo "demo: $D/$f is missing: run 'make data' or set KZ_DATA" >&2
		exit 1
	fi
done
mkdir -p out
echo "== kz-unpack: KMNIST train and test npz -> out/train.kz, out/test.kz"
kz-unpack -o out/train.kz "$D/kmnist-train-imgs.npz" "$D/kmnist-train-labels.npz"
kz-unpack -o out/test.kz "$D/kmnist-test-imgs.npz" "$D/kmnist-test-labels.npz"
echo "== kz-info out/test.kz"
kz-info -c "$D/kmnist_classmap.csv" out/test.kz
echo "== kz-label: the first test records as text"
kz-label -c "$D/kmnist_classmap.csv" out/test.kz | head -n 5
printf 'first 40 as one line: '
kz-label -f text -c "$D/kmnist_classmap.csv" out/test.kz | cut -c1-120
echo "== kz-show: ten of each class -> out/kmnist-sheet.png"
kz-show -r 10 -s 2 -o out/kmnist-sheet.png out/train.kz
echo "demo: done; see out/"
