# t-data.sh - the readers on the real datasets, checked against facts
# known independently of this code (SOURCES.txt md5s, the published
# counts) and against tests/kzpy.py, a separate reader.
D=$KZ_DATA
if have_data kmnist-train-imgs.npz kmnist-train-labels.npz \
    kmnist-test-imgs.npz kmnist-test-labels.npz \
    t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz kmnist_classmap.csv; then
	kz-unpack "$D/kmnist-train-imgs.npz" "$D/kmnist-train-labels.npz" >"$T/train.kz"
	t_eq "kmnist train: 60000 records" 60000 "$(kzpy count "$T/train.kz")"
	t_eq "kmnist train: kz-info counts 60000" 60000 "$(info records "$T/train.kz")"
	t_eq "kmnist train: 6000 per class" "6000 6000 6000 6000 6000 6000 6000 6000 6000 6000" \
	    "$(kz-info -t "$T/train.kz" | awk -F'\t' '$1 == "class" { printf "%s%s", s, $3; s = " " }')"
	t_eq "kmnist train: 10 classes in header" 10 "$(info classes "$T/train.kz")"
	# The train labels npz holds exactly the official idx labels (SOURCES.txt).
	t_eq "kmnist train labels equal the idx file" \
	    "$(gzip -dc "$D/train-labels-idx1-ubyte.gz" | tail -c +9 | md5sum | cut -d' ' -f1)" \
	    "$(kzpy labels-md5 "$T/train.kz")"
	t_eq "kmnist train pixels equal Python's zipfile reading of the npz" \
	    "$(kzpy npz-md5 "$D/kmnist-train-imgs.npz")" "$(kzpy pixels-md5 "$T/train.kz")"

	kz-unpack "$D/kmnist-test-imgs.npz" "$D/kmnist-test-labels.npz" >"$T/test-npz.kz"
	kz-unpack "$D/t10k-images-idx3-ubyte.gz" "$D/t10k-labels-idx1-ubyte.gz" >"$T/test-idx.kz"
	t_eq "kmnist test: 10000 records" 10000 "$(info records "$T/test-npz.kz")"
	t_eq "kmnist test: 1000 per class" "1000 1000 1000 1000 1000 1000 1000 1000 1000 1000" \
	    "$(kz-info -t "$T/test-npz.kz" | awk -F'\t' '$1 == "class" { printf "%s%s", s, $3; s = " " }')"
	# md5 of the uncompressed official t10k-images content is
	# bf305b8cd328700fbc17f5acbc2856d2 (SOURCES.txt); its 16-byte header
	# stripped, the pixels' md5 is computed here with gzip and md5sum.
	px=$(gzip -dc "$D/t10k-images-idx3-ubyte.gz" | tail -c +17 | md5sum | cut -d' ' -f1)
	t_eq "idx test file is the official one" bf305b8cd328700fbc17f5acbc2856d2 \
	    "$(gzip -dc "$D/t10k-images-idx3-ubyte.gz" | md5sum | cut -d' ' -f1)"
	t_eq "idx test pixels decode exactly" "$px" "$(kzpy pixels-md5 "$T/test-idx.kz")"
	t_eq "npz test pixels equal idx pixels" "$px" "$(kzpy pixels-md5 "$T/test-npz.kz")"
	t_eq "npz and idx test streams are byte-identical" \
	    "$(md5sum <"$T/test-idx.kz")" "$(md5sum <"$T/test-npz.kz")"
	t_eq "idx test labels decode exactly" \
	    "$(gzip -dc "$D/t10k-labels-idx1-ubyte.gz" | tail -c +9 | md5sum | cut -d' ' -f1)" \
	    "$(kzpy labels-md5 "$T/test-idx.kz")"
	# Raw (not gzipped) idx input is the same.
	gzip -dc "$D/t10k-images-idx3-ubyte.gz" >"$T/t10k-images"
	gzip -dc "$D/t10k-labels-idx1-ubyte.gz" >"$T/t10k-labels"
	t_eq "raw idx equals gzipped idx" "$(md5sum <"$T/test-idx.kz")" \
	    "$(kz-unpack "$T/t10k-images" "$T/t10k-labels" | md5sum)"
	# Several pairs in one call concatenate, numbered on.
	kz-unpack "$D/kmnist-train-imgs.npz" "$D/kmnist-train-labels.npz" \
	    "$D/kmnist-test-imgs.npz" "$D/kmnist-test-labels.npz" >"$T/all.kz"
	t_eq "train+test in one call: 70000 records" 70000 "$(info records "$T/all.kz")"
	t_eq "train+test in one call = cat of both" \
	    "$(cat "$T/train.kz" "$T/test-npz.kz" | kzpy pixels-md5 /dev/stdin)" \
	    "$(kzpy pixels-md5 "$T/all.kz")"
	t_eq "cat of two streams reads as one" 70000 \
	    "$(cat "$T/train.kz" "$T/test-npz.kz" | kz-info -t | awk -F'\t' '$1 == "records" { print $2 }')"
	# kz-label turns labels into the class map's characters; awk looks
	# them up in the CSV independently.
	kzpy labels "$T/test-npz.kz" >"$T/labels"
	awk -F, 'NR == FNR { if (FNR > 1) c[$1] = $3; next } { print FNR - 1 "\t" c[$1] }' \
	    "$D/kmnist_classmap.csv" "$T/labels" >"$T/want.tsv"
	t_eq "kz-label: 10000 lines as the class map says" "$(md5sum <"$T/want.tsv")" \
	    "$(kz-label -c "$D/kmnist_classmap.csv" "$T/test-npz.kz" | md5sum)"
	t_eq "kz-label -f char: 10000 lines" 10000 \
	    "$(kz-label -f char -c "$D/kmnist_classmap.csv" "$T/test-npz.kz" | wc -l)"
	t_eq "kz-label -f text: one line of the same characters" \
	    "$(cut -f2 "$T/want.tsv" | tr -d '\n' | md5sum)" \
	    "$(kz-label -f text -c "$D/kmnist_classmap.csv" "$T/test-npz.kz" | tr -d '\n' | md5sum)"
	rm -f "$T/train.kz" "$T/all.kz"
else
	skip "KMNIST readers" "data not in $D"
fi

KANJI=$D/kkanji.tar.gz
[ -f "$KANJI" ] || KANJI=$D/kkanji.tar	# as "make data" fetches it
if [ -f "$KANJI" ]; then
	kz-unpack -C "$T/kanji.csv" -M "$T/kanji.man" "$KANJI" >"$T/kanji.kz"
	t_eq "kanji: 140424 records" 140424 "$(info records "$T/kanji.kz")"
	t_eq "kanji: 3832 classes" 3832 "$(info classes "$T/kanji.kz")"
	t_eq "kanji: 64x64" "64 64" "$(info width "$T/kanji.kz") $(info height "$T/kanji.kz")"
	t_eq "kanji: class map has 3832 rows" 3833 "$(wc -l <"$T/kanji.csv")"
	t_eq "kanji: 1768 images of U+4E00" 1768 \
	    "$(kz-info -t -c "$T/kanji.csv" "$T/kanji.kz" | awk -F'\t' '$4 == "U+4E00" { print $3 }')"
	t_eq "kanji: 815 classes with one image" 815 \
	    "$(kz-info -t "$T/kanji.kz" | awk -F'\t' '$1 == "class" && $3 == 1' | wc -l)"
	t_eq "kanji: classes follow sorted code points" "$(tail -n +2 "$T/kanji.csv" | cut -d, -f2 |
	    sed 's/U+//' | while read -r h; do printf '%d\n' "0x$h"; done | sort -n | md5sum)" \
	    "$(tail -n +2 "$T/kanji.csv" | cut -d, -f2 | sed 's/U+//' |
	    while read -r h; do printf '%d\n' "0x$h"; done | md5sum)"
	t_eq "kanji: manifest has a line per record" 140424 "$(wc -l <"$T/kanji.man")"
	t_eq "kanji: over 100 decoded PNGs, all found, equal an independent decoder" "ok" \
	    "$(kzpy tar-check "$KANJI" "$T/kanji.kz" "$T/kanji.man" 140 |
	    awk '{ gsub(",", ""); print ($2 == $4 && $2 > 100 && $6 == 0 ? "ok" : $0) }')"
	# -c maps the tree onto an existing class map: the same stream.
	t_eq "kanji: -c with the written map gives the same stream" \
	    "$(md5sum <"$T/kanji.kz")" \
	    "$(kz-unpack -c "$T/kanji.csv" "$KANJI" | md5sum)"
	# A directory tree gives the same records as the archive.
	mkdir -p "$T/tree"
	tar -xf "$KANJI" -C "$T/tree" kkanji2/U+4E00 kkanji2/U+241C6 kkanji2/U+5B57
	kz-unpack "$T/tree" >"$T/dir.kz"
	t_eq "kanji dir: 3 classes" 3 "$(info classes "$T/dir.kz")"
	t_eq "kanji dir: U+4E00 is class 0 with 1768 images" 1768 \
	    "$(kz-info -t "$T/dir.kz" | awk -F'\t' '$1 == "class" && $2 == 0 { print $3 }')"
	# The published split (examples/kanji): the counts follow from the
	# class sizes alone, and are those the issue computed with numpy.
	kz-split -f 0.2 -m 5 -s 0 -o "$T/ktest.kz" "$T/kanji.kz" >"$T/ktrain.kz" 2>/dev/null
	split_counts="$(info records "$T/ktrain.kz") $(info records "$T/ktest.kz") $(kz-info -t "$T/ktest.kz" | awk -F'\t' '$1 == "class" && $3 > 0' | wc -l)"
	t_eq "kanji split: train, test, test classes as the class sizes say" \
	    "$(kz-info -t "$T/kanji.kz" | awk -F'\t' '$1 == "class" && $3 >= 5 { t += int($3 / 5); c++ } END { print 140424 - t, t, c }')" \
	    "$split_counts"
	t_eq "kanji split: 113796 train, 26628 test in 2107 classes" "113796 26628 2107" "$split_counts"
	# The Kanji model (built by examples/kanji) through the whole pipeline, scored from
	# kz-label's characters: true == first guess.
	M=$TESTS/../models
	if [ -f "$M/kanji.kzm" ]; then
		# At the model's input size, the 64x64 images averaged down
		# if it is smaller.
		ks=$(kz-model "$M/kanji.kzm" | awk -F'\t' '$1 == "size" { print $2 }')
		head -c $((32 + 3000 * 4108)) "$T/ktest.kz" | kz-norm -p keep -r "$ks" |
		    kz-classify -m "$M/kanji.kzm" | kz-label -c "$M/kanji_classmap.csv" >"$T/klab.tsv"
		t_eq "kanji: shipped model, 3000 test images at its size ($ks), over 95% by kz-label" "3000 yes" \
		    "$(awk -F'\t' '{ n++; r += $2 == $3 } END { print n, (r / n > 0.95 ? "yes" : r / n) }' "$T/klab.tsv")"
	else
		skip "Kanji model" "models/kanji.kzm not built (examples/kanji)"
	fi
	rm -rf "$T/tree" "$T/kanji.kz" "$T/dir.kz" "$T/ktest.kz" "$T/ktrain.kz"
else
	skip "Kanji reader" "kkanji.tar(.gz) not in $D"
fi

FASHION=/usr/share/datasets/fashion-mnist
if [ -f "$FASHION/train-images-idx3-ubyte.gz" ]; then
	kz-unpack "$FASHION/train-images-idx3-ubyte.gz" "$FASHION/train-labels-idx1-ubyte.gz" >"$T/f.kz"
	t_eq "fashion-mnist: 60000 records" 60000 "$(info records "$T/f.kz")"
	t_eq "fashion-mnist: pixels equal the idx content" \
	    "$(gzip -dc "$FASHION/train-images-idx3-ubyte.gz" | tail -c +17 | md5sum | cut -d' ' -f1)" \
	    "$(kzpy pixels-md5 "$T/f.kz")"
	rm -f "$T/f.kz"
else
	skip "Fashion-MNIST reader" "package dataset-fashion-mnist not installed"
fi

if have_data k49-test-imgs.first100.npz k49-test-labels.npz k49_classmap.csv; then
	t_eq "k49: 100 images" 100 "$(kz-unpack "$D/k49-test-imgs.first100.npz" | kz-info -t | awk -F'\t' '$1 == "records" { print $2 }')"
	t_fails "k49: 100 images with 38547 labels" "38547 labels for the 100 images" \
	    kz-unpack "$D/k49-test-imgs.first100.npz" "$D/k49-test-labels.npz"
	t_eq "k49 class map reads (49 classes)" 49 \
	    "$(kz-unpack -c "$D/k49_classmap.csv" "$D/k49-test-imgs.first100.npz" | kz-info -t | awk -F'\t' '$1 == "classes" { print $2 }')"
fi
