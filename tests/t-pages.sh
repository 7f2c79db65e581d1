# t-pages.sh - JPEG input, CODH books cut into boxes, and kz-unpack's
# --fit and --resize, on fixtures whose pixels tests/fixtures.py knows
# (flat 8x8 blocks, which every JPEG decoder gives back exactly); then
# the real pages of ../shared/data/real-pages when they are there.
F=$T/fx
[ -f "$F/flat.jpg" ] || "$PY" "$TESTS/fixtures.py" "$F"
md5() { md5sum <"$1" | cut -d' ' -f1; }
pixmd5() { kzpy pixels-md5 "$@"; }
labels() { kzpy labels "$1" | tr '\n' ' ' | sed 's/ $//'; }

# JPEG.
kz-unpack "$F/flat.jpg" >"$T/j.kz"
t_eq "JPEG: pixels as written" "$(md5 "$F/flat.raw")" "$(pixmd5 "$T/j.kz")"
t_eq "JPEG: geometry 24x16" "24 16" "$(info width "$T/j.kz") $(info height "$T/j.kz")"
kz-unpack "$F/flat-cut.jpg" >"$T/jc.kz"
t_eq "JPEG of 21x13: partial blocks cut" "$(md5 "$F/flat-cut.raw")" "$(pixmd5 "$T/jc.kz")"
kz-unpack "$F/flat-colour.jpg" >"$T/jy.kz"
t_eq "colour JPEG becomes its luma" "$(md5 "$F/flat.raw")" "$(pixmd5 "$T/jy.kz")"
t_fails "JPEG cut short" "flat-cut-short.jpg: JPEG: Premature end" kz-unpack "$F/flat-cut-short.jpg"
t_fails "JPEG of absurd size" "huge.jpg: JPEG is 20000x20000, beyond the limit" kz-unpack "$F/huge.jpg"
t_fails "a page-sized JPEG is no record without --fit" \
    "wide.jpg: image 0 is 4104x8, beyond the limit of 4096x4096 for a record; give --fit" kz-unpack "$F/wide.jpg"
t_eq "a page-sized JPEG with --resize" "3 2" \
    "$(kz-unpack -r 3x2 "$F/wide.jpg" >"$T/w.kz"; info width "$T/w.kz") $(info height "$T/w.kz")"

# --fit and --resize: kz-norm's code, as the images are read.
kz-unpack "$F/a.png" | kz-norm -r 5x7 >"$T/r1.kz"
kz-unpack "$F/other-size.pgm" | kz-norm -r 5x7 >"$T/r2.kz"
kz-unpack -r 5x7 "$F/a.png" "$F/other-size.pgm" >"$T/r.kz"
t_eq "--resize: images of two sizes in one stream, as kz-norm -r makes them" \
    "$(pixmd5 "$T/r1.kz" "$T/r2.kz")" "$(pixmd5 "$T/r.kz")"
t_eq "--fit on a tree = kz-norm -f after it" \
    "$(kz-unpack "$F/tree.tar" | kz-norm -f 9x9 | md5sum)" "$(kz-unpack -f 9x9 "$F/tree.tar" | md5sum)"
t_eq "--fit on an array = kz-norm -f after it" \
    "$(kz-unpack "$F/imgs.npz" "$F/labels.npz" | kz-norm -f 6x6 | md5sum)" \
    "$(kz-unpack -f 6x6 "$F/imgs.npz" "$F/labels.npz" | md5sum)"
t_fails "--fit and --resize together" "give one" kz-unpack -f 8x8 -r 8x8 "$F/a.png"

# A CODH book.
kz-unpack -c "$F/map3.csv" -r 16x16 -M "$T/book.tsv" "$F/book" >"$T/b.kz" 2>"$T/b.err"
t_eq "book: every box cut, in the file's order" "$(md5 "$F/book-expect.raw")" "$(pixmd5 "$T/b.kz")"
t_eq "book: labels through the class map, -1 when it lacks the code point" "0 -1 1" "$(labels "$T/b.kz")"
t_eq "book: the unknown boxes counted on stderr" \
    "kz-unpack: 1 box of code points not in the class map labelled unknown (-1)" "$(cat "$T/b.err")"
t_eq "book: the manifest names page and box" "$(printf '2\t%s\tpg_2\t8\t8\t16\t16' "$F/book")" "$(sed -n 3p "$T/book.tsv")"
t_eq "book: its coordinate file reads as the folder does" "$(md5sum <"$T/b.kz")" \
    "$(kz-unpack -c "$F/map3.csv" -r 16x16 "$F/book/book_coordinate.csv" 2>/dev/null | md5sum)"
kz-unpack -u -c "$F/map3.csv" -r 16x16 "$F/book" >"$T/bu.kz" 2>/dev/null
t_eq "book -u: boxes the map lacks left out" "$(md5 "$F/book-known.raw") 0 1" "$(pixmd5 "$T/bu.kz") $(labels "$T/bu.kz")"
kz-unpack -r 16x16 -C "$T/book.csv" "$F/book" >"$T/bn.kz"
t_eq "book without -c: classes are its code points, sorted" "1 0 2" "$(labels "$T/bn.kz")"
t_eq "book without -c: -C writes them" "U+3042 U+4E00 U+5B57" "$(tail -n +2 "$T/book.csv" | cut -d, -f2 | tr '\n' ' ' | sed 's/ $//')"
t_eq "book and images in one stream" 4 \
    "$(kz-unpack -r 16x16 "$F/book" "$F/flat.jpg" 2>/dev/null >"$T/bi.kz"; kzpy count "$T/bi.kz")"

# Old character forms (kz.5's flag 1): a book that writes none of them
# writes modern forms; -F says so outright; images and arrays keep.
t_eq "book without old forms: the header says modern forms (flag 1)" 1 "$(kzpy flags "$T/b.kz")"
t_eq "book -F keep: flag 0" 0 "$(kz-unpack -F keep -c "$F/map3.csv" -r 16x16 "$F/book" 2>/dev/null >"$T/bk.kz"; kzpy flags "$T/bk.kz")"
t_eq "book and an image: flag 0" 0 "$(kzpy flags "$T/bi.kz")"
t_eq "kz-info -t names the forms" "modern keep" "$(info forms "$T/b.kz") $(info forms "$T/bk.kz")"
O=$T/book-old; mkdir -p "$O/images"; cp "$F/book/images/"* "$O/images/"
sed 's/^U+5B57/U+6C23/' "$F/book/book_coordinate.csv" >"$O/old_coordinate.csv"
t_eq "book that writes an old form (U+6C23): flag 0" 0 "$(kz-unpack -r 16x16 "$O" 2>/dev/null >"$T/bo.kz"; kzpy flags "$T/bo.kz")"
kz-unpack -F modern -r 16x16 "$O" 2>"$T/bo.err" >"$T/bom.kz"
t_eq "... -F modern all the same: flag 1, and a warning naming the old labels" \
    "1 $(grep -c '^U+5B57' "$F/book/book_coordinate.csv")" \
    "$(kzpy flags "$T/bom.kz") $(sed -n 's/.*-F modern, but \([0-9]*\) labels are old forms.*氣 U+6C23 in .*/\1/p' "$T/bo.err")"
t_eq "array -F modern: flag 1, kept by kz-norm" 1 \
    "$(kz-unpack -F modern "$F/imgs.npz" "$F/labels.npz" | kz-norm -r 8x8 >"$T/am.kz"; kzpy flags "$T/am.kz")"
t_fails "-F of an unknown word" "-F old: want keep or modern" kz-unpack -F old "$F/a.png"
# kz-classify folds: a 1-nearest-neighbour model of 3 classes, 気 (0),
# its old form 氣 (1) and 一 (2), reading its own training images.
printf 'index,codepoint,char\n0,U+6C17,\346\260\227\n1,U+6C23,\346\260\243\n2,U+4E00,\344\270\200\n' >"$T/fold.csv"
kz-unpack "$F/imgs.npz" "$F/labels.npz" | kz-train -q -a knn -k 1 -c "$T/fold.csv" -o "$T/fold.kzm"
kz-unpack -F keep "$F/imgs.npz" "$F/labels.npz" | kz-classify -m "$T/fold.kzm" -k 3 >"$T/fk.kz"
t_eq "old forms kept: each image its own class (labels 0 1 2 1 0)" \
    "0:1.0000 1:0.0000 2:0.0000|1:1.0000 0:0.0000 2:0.0000|2:1.0000 0:0.0000 1:0.0000|1:1.0000 0:0.0000 2:0.0000|0:1.0000 1:0.0000 2:0.0000" \
    "$(kzpy preds "$T/fk.kz" | tr '\n' '|' | sed 's/|$//')"
kz-unpack -F modern "$F/imgs.npz" "$F/labels.npz" | kz-classify -v -m "$T/fold.kzm" -k 3 >"$T/fm.kz" 2>"$T/fm.err"
t_eq "modern forms: 氣's score goes to 気, 氣 never named, k 3 -> 2" \
    "0:1.0000 2:0.0000|0:1.0000 2:0.0000|2:1.0000 0:0.0000|0:1.0000 2:0.0000|0:1.0000 2:0.0000" \
    "$(kzpy preds "$T/fm.kz" | tr '\n' '|' | sed 's/|$//')"
t_eq "modern forms: -v says how many classes fold" \
    "kz-classify: the labels write modern forms: 1 old form read as its modern form" "$(grep forms "$T/fm.err")"
t_eq "modern forms: the flag passes to the predictions" 1 "$(kzpy flags "$T/fm.kz")"

# A book's bad input: one line naming the file and the line.
B=$T/book-bad; mkdir -p "$B/images"
cp "$F/book/images/"* "$B/images/"
hdr="Unicode,Image,X,Y,Block ID,Char ID,Width,Height"
bad() { printf '%s\n' "$@" >"$B/bad_coordinate.csv"; }
bad "Unicode,Image,X,Y,Width" "U+4E00,pg_1,0,0,8"
t_fails "book: a missing column" "bad_coordinate.csv: line 1: no \"Height\" column" kz-unpack -f 8x8 "$B"
bad "$hdr" "U+4E00,pg_1,0,0,B,C,16,16" "U+4E00,pg_1,24,24,B,C,16,16"
t_fails "book: a box beyond its page" "bad_coordinate.csv: line 3: box 24,24 16x16 is beyond its page pg_1 \(32x32\)" \
    kz-unpack -f 8x8 -o "$T/partial.kz" "$B"
t_eq "book: no partial output left behind" "" "$(ls "$T/partial.kz" 2>/dev/null)"
bad "$hdr" "U+4E00,pg_1,0,0,B,C,0,16"
t_fails "book: a box of zero size" "line 2: box of zero size" kz-unpack -f 8x8 "$B"
bad "$hdr" "U+4E00,pg_1,0,0,B,C,8,8" "U+4E00,pg_9,0,0,B,C,8,8"
t_fails "book: a page the folder lacks" "line 3: image .*images/pg_9.jpg: No such file" kz-unpack -f 8x8 "$B"
bad "$hdr" "U+4E00,../pg_1,0,0,B,C,8,8"
t_fails "book: an image id with a path" "line 2: image \"../pg_1\" is not a file name" kz-unpack -f 8x8 "$B"
bad "$hdr" "U+4E00,pg_1,0,x,B,C,8,8"
t_fails "book: a coordinate that is no number" "line 2: bad Y \"x\"" kz-unpack -f 8x8 "$B"
bad "$hdr" "4E00,pg_1,0,0,B,C,8,8"
t_fails "book: a bad code point" "line 2: bad code point \"4E00\"" kz-unpack -f 8x8 "$B"
bad "$hdr" "U+4E00,pg_1,0,0,B,C,8,8"
head -c 100 "$F/book/images/pg_1.jpg" >"$B/images/pg_1.jpg"
t_fails "book: a damaged page" "images/pg_1.jpg: JPEG: " kz-unpack -f 8x8 "$B"
t_fails "book: boxes of many sizes need --fit or --resize" "give --fit or --resize" kz-unpack "$F/book"

# The real pages: two pages of a CODH book, 147 boxes.
R=$KZ_DATA/real-pages/100241706
if [ -d "$R" ]; then
	# Fitted to the shipped Kanji model's input size (32x32 without it).
	ks=32x32
	[ -f "$TESTS/../models/kanji.kzm" ] &&
	    ks=$(kz-model "$TESTS/../models/kanji.kzm" | awk -F'\t' '$1 == "size" { print $2 }')
	kz-unpack -c "$TESTS/../models/kanji_classmap.csv" --fit "$ks" -M "$T/real.tsv" "$R" >"$T/real.kz" 2>"$T/real.err"
	t_eq "real pages: 147 boxes, the kanji of the class map labelled" "147 52" \
	    "$(info records "$T/real.kz") $(kzpy labels "$T/real.kz" | grep -cv '^-1$')"
	t_eq "real pages: the manifest's last box is the CSV's last line" \
	    "$(tail -1 "$R/100241706_coordinate.csv" | awk -F, '{ print $2, $3, $4, $7, $8 }')" \
	    "$(tail -1 "$T/real.tsv" | cut -f3-7 | tr '\t' ' ')"
	# The reader's path with the shipped model: the issue's target on
	# the 52 kanji, and the old forms the pages show (氣, 疊, 樂) read
	# as the modern forms their transcription writes.
	if [ -f "$TESTS/../models/kanji.kzm" ]; then
		kz-classify -m "$TESTS/../models/kanji.kzm" -k 5 "$T/real.kz" >"$T/real-o.kz"
		t_eq "real pages: the transcription writes modern forms (flag 1)" 1 "$(kzpy flags "$T/real.kz")"
		top1=$(kz-eval -t "$T/real-o.kz" | awk -F'\t' '$1 == "top1" { printf "%d", $2 * 52 + 0.5 }')
		t_eq "real pages: the shipped Kanji model reads 48 or more of the 52 kanji (92%)" yes \
		    "$([ "$top1" -ge 48 ] && echo yes || echo "no, $top1")"
		top5=$(kz-eval -t "$T/real-o.kz" | awk -F'\t' '$1 == "top5" { printf "%d", $2 * 52 + 0.5 }')
		t_eq "real pages: ... and has 51 or more of them among its five guesses (98%)" yes \
		    "$([ "$top5" -ge 51 ] && echo yes || echo "no, $top5")"
		kz-label -m "$TESTS/../models/kanji.kzm" "$T/real-o.kz" >"$T/real-o.tsv"
		t_eq "real pages: no old form in any of the five answers of any box" \
		    "$(info records "$T/real.kz") 0" \
		    "$(wc -l <"$T/real-o.tsv" | tr -d ' ') $(cut -f3,5,7,9,11 "$T/real-o.tsv" | tr '\t' '\n' | grep -cxF -e 氣 -e 疊 -e 樂)"
		kz-unpack -F keep -c "$TESTS/../models/kanji_classmap.csv" --fit "$ks" "$R" 2>/dev/null |
		    kz-classify -m "$TESTS/../models/kanji.kzm" -k 5 >"$T/real-k.kz"
		t_eq "real pages -F keep: the old forms the pages show" 3 \
		    "$(kz-label -m "$TESTS/../models/kanji.kzm" "$T/real-k.kz" | cut -f3 | grep -cxF -e 氣 -e 疊 -e 樂)"
	fi
else
	skip "real pages" "no $R"
fi
