#!/bin/sh
# fetch-data.sh DIR - downloads the official CODH dataset files into DIR
# and checks the md5 sums recorded for the official releases.
# Data: CC BY-SA 4.0, "KMNIST Dataset" (created by CODH), adapted from
# "Kuzushiji Dataset" (created by NIJL and others), doi:10.20676/00000341.
set -eu
DIR=${1:-data}
BASE=http://codh.rois.ac.jp/kmnist/dataset
mkdir -p "$DIR"
fetch() { # fetch URL FILE [MD5]
	if [ -f "$DIR/$2" ]; then echo "have $2"; return; fi
	echo "fetching $2"
	if command -v curl >/dev/null; then curl -fL --retry 3 -o "$DIR/$2.part" "$1"
	else wget -O "$DIR/$2.part" "$1"; fi
	if [ -n "${3:-}" ] && [ "$(md5sum <"$DIR/$2.part" | cut -d' ' -f1)" != "$3" ]; then
		echo "fetch-data: $2: md5 differs from the official release" >&2
		rm -f "$DIR/$2.part"
		exit 1
	fi
	mv "$DIR/$2.part" "$DIR/$2"
}
fetch $BASE/kmnist/kmnist-train-imgs.npz kmnist-train-imgs.npz a183fbc01ed9a345513b145673d3d0bb
fetch $BASE/kmnist/kmnist-train-labels.npz kmnist-train-labels.npz b0e1d240e8afec72b50437fc3bc5908a
fetch $BASE/kmnist/kmnist-test-imgs.npz kmnist-test-imgs.npz dace6de62ca8b90843cc45366337d02e
fetch $BASE/kmnist/kmnist-test-labels.npz kmnist-test-labels.npz 3ae489a79983d0fe386152684e3b5412
fetch $BASE/kmnist/kmnist_classmap.csv kmnist_classmap.csv 899202f6e8dc29a321ac210a03d0f2f1
fetch $BASE/kmnist/train-images-idx3-ubyte.gz train-images-idx3-ubyte.gz bdb82020997e1d708af4cf47b453dcf7
fetch $BASE/kmnist/train-labels-idx1-ubyte.gz train-labels-idx1-ubyte.gz e144d726b3acfaa3e44228e80efcd344
fetch $BASE/kmnist/t10k-images-idx3-ubyte.gz t10k-images-idx3-ubyte.gz 5c965bf0a639b31b8f53240b1b52f4d7
fetch $BASE/kmnist/t10k-labels-idx1-ubyte.gz t10k-labels-idx1-ubyte.gz 7320c461ea6c1c855c0b718fb2a4b134
fetch $BASE/k49/k49-train-imgs.npz k49-train-imgs.npz 7ac088b20481cf51dcd01ceaab89d821
fetch $BASE/k49/k49-train-labels.npz k49-train-labels.npz 44a8e1b893f81e63ff38d73cad420f7a
fetch $BASE/k49/k49-test-imgs.npz k49-test-imgs.npz d352e201d846ce6b94f42c990966f374
fetch $BASE/k49/k49-test-labels.npz k49-test-labels.npz 4da6f7a62e67a832d5eb1bd85c5ee448
fetch $BASE/k49/k49_classmap.csv k49_classmap.csv f7d0d0391f68bdf0fe4cf160ceb85753
# The Kanji archive is published as an uncompressed tar; kz-unpack reads
# it as it is (or gzipped).
fetch $BASE/kkanji/kkanji.tar kkanji.tar
echo "fetch-data: done: $DIR"
