# t-similar.sh - kz-similar: an index of a net's features, and each
# query's nearest images in it.
F=$T/fx
[ -f "$F/many.npz" ] || "$PY" "$TESTS/fixtures.py" "$F"
S=$T/sim; mkdir -p "$S"
M=$TESTS/../models/kmnist.kzm

if have_data kmnist-train-imgs.npz kmnist-train-labels.npz; then
	kz-unpack "$KZ_DATA/kmnist-train-imgs.npz" "$KZ_DATA/kmnist-train-labels.npz" |
	    kz-split -f 0.05 -s 4 -o "$S/idx.kz" >/dev/null
	t_ok "index written from 3,000 training images" kz-similar -m "$M" -t 2 -w "$S/idx.kzg" "$S/idx.kz"
	kz-split -f 0.01 -s 5 -o "$S/q.kz" "$S/idx.kz" >/dev/null
	kz-similar -m "$M" -n 4 -i "$S/idx.kzg" "$S/q.kz" >"$S/out.kz"
	nq=$(info records "$S/q.kz")
	t_eq "a query and its 4 neighbours each" "$((nq * 5))" "$(info records "$S/out.kz")"
	# Labels written in modern forms (header flag 1): the neighbours'
	# are not, so the output's flags are 0.
	"$PY" -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[28] = 1; open(sys.argv[2], "wb").write(d)' "$S/q.kz" "$S/qm.kz"
	t_eq "a query stream in modern forms (flag 1) gives an output with flags 0" "1 0" \
	    "$(kzpy flags "$S/qm.kz") $(kz-similar -m "$M" -n 4 -i "$S/idx.kzg" -o "$S/qm-out.kz" "$S/qm.kz" && kzpy flags "$S/qm-out.kz")"
	# Queries taken from the index find themselves first, at cosine 1.
	kz-label -m "$M" "$S/out.kz" >"$S/out.tsv"
	t_eq "a query from the index is its own nearest, cosine 1" "$nq" \
	    "$(awk -F'\t' 'NR % 5 == 1 { q = $1 } NR % 5 == 2 && $1 == q && $4 > 0.9999 { n++ } END { print n + 0 }' "$S/out.tsv")"
	t_eq "neighbours come nearest first" 0 \
	    "$(awk -F'\t' 'NR % 5 == 2 { last = $4 } NR % 5 > 2 || NR % 5 == 0 { if ($4 > last + 1e-6) bad++; last = $4 } END { print bad + 0 }' "$S/out.tsv")"
	# Each neighbour carries its own index and label from the stream
	# indexed.
	kz-label -m "$M" "$S/idx.kz" | cut -f1,3 | sort >"$S/truth.tsv"
	t_eq "neighbours carry their own label" 0 \
	    "$(awk -F'\t' 'NR % 5 != 1 { print $1 "\t" $3 }' "$S/out.tsv" | sort -u | join -t "$(printf '\t')" -v 1 - "$S/truth.tsv" | wc -l)"
	t_eq "the query's line is the model's guess" \
	    "$(kz-classify -m "$M" -k 1 "$S/q.kz" | kz-label -m "$M" | cut -f1,2)" \
	    "$(awk -F'\t' 'NR % 5 == 1' "$S/out.tsv" | cut -f1,2)"
	# An ensemble: the first member's features (the same index) and
	# guess for the query.
	kz-model -p q8 -o "$S/m8.kzm" "$M"
	kz-model -o "$S/ens.kzm" "$M" "$S/m8.kzm"
	kz-similar -m "$S/ens.kzm" -w "$S/ens.kzg" "$S/q.kz"
	kz-similar -m "$M" -w "$S/one.kzg" "$S/q.kz"
	t_eq "an ensemble's index is its first member's" "$(md5sum <"$S/one.kzg")" "$(md5sum <"$S/ens.kzg")"
	kz-similar -m "$S/ens.kzm" -n 4 -i "$S/idx.kzg" "$S/q.kz" | kz-label -m "$M" >"$S/ens.tsv"
	t_eq "... its neighbours are the first member's" "$(awk -F'\t' 'NR % 5 != 1' "$S/out.tsv" | md5sum)" \
	    "$(awk -F'\t' 'NR % 5 != 1' "$S/ens.tsv" | md5sum)"
	t_eq "... and so is the query's guess" "$(awk -F'\t' 'NR % 5 == 1' "$S/out.tsv" | md5sum)" \
	    "$(awk -F'\t' 'NR % 5 == 1' "$S/ens.tsv" | md5sum)"
	# An ensemble whose first member is smaller than it: the member's
	# features of each image averaged down, as kz-norm -r makes it.
	kz-norm -p keep -r 56x56 "$S/q.kz" >"$S/q56.kz"
	kz-norm -p keep -r 28x28 "$S/q56.kz" >"$S/q28.kz"
	kz-train -q -a linear -e 1 -o "$S/big.kzm" "$S/q56.kz"
	kz-model -o "$S/mixed.kzm" "$M" "$S/big.kzm"
	kz-similar -m "$S/mixed.kzm" -w "$S/mixed.kzg" "$S/q56.kz"
	kz-similar -m "$M" -w "$S/q28.kzg" "$S/q28.kz"
	t_eq "a 56x56 ensemble of the 28x28 model: its neighbours are the model's on the images kz-norm averages down" \
	    "$(kz-similar -m "$M" -n 3 -i "$S/q28.kzg" "$S/q28.kz" | kz-label -m "$M" | awk 'NR % 4 != 1' | md5sum)" \
	    "$(kz-similar -m "$S/mixed.kzm" -n 3 -i "$S/mixed.kzg" "$S/q56.kz" | kz-label -m "$M" | awk 'NR % 4 != 1' | md5sum)"
	kz-similar -m "$M" -w "$S/small.kzg" "$S/q.kz"
	t_fails "more neighbours than the index holds" "-n 100: the index .* holds $nq" \
	    kz-similar -m "$M" -n 100 -i "$S/small.kzg" "$S/q.kz"
	# Damage.
	cp "$S/idx.kzg" "$S/bad.kzg"
	printf '\377' | dd of="$S/bad.kzg" bs=1 seek=5000 conv=notrunc 2>/dev/null
	t_fails "a damaged index" "bad.kzg: CRC mismatch" kz-similar -m "$M" -i "$S/bad.kzg" "$S/q.kz"
	head -c 100000 "$S/idx.kzg" >"$S/cut.kzg"
	t_fails "a truncated index" "cut.kzg: 100000 bytes, its header needs" kz-similar -m "$M" -i "$S/cut.kzg" "$S/q.kz"
	kz-train -q -a mlp:8 -e 1 -o "$S/other.kzm" "$S/q.kz"
	t_fails "an index of another model" "made with another model" \
	    kz-similar -m "$S/other.kzm" -i "$S/idx.kzg" -o "$S/partial.kz" "$S/q.kz"
	t_eq "no partial output left behind" "" "$(ls "$S/partial.kz" 2>/dev/null)"
else
	skip "kz-similar on Kuzushiji-MNIST" "no kmnist-train-*.npz in $KZ_DATA"
fi
kz-unpack "$F/imgs.npz" "$F/labels.npz" >"$S/small.kz"
kz-train -q -a knn -o "$S/knn.kzm" "$S/small.kz"
t_fails "a kNN model has no features" "a kNN model has no features" kz-similar -m "$S/knn.kzm" -w "$S/x.kzg" "$S/small.kz"
t_fails "images of another size" "4x3 images do not fit model" kz-similar -m "$M" -w "$S/x.kzg" "$S/small.kz"
t_fails "not an index" "not a similar-glyphs index" kz-similar -m "$M" -i "$F/imgs.npz" "$S/small.kz"
kz-similar -Z >/dev/null 2>"$S/usage"
t_eq "bad option: status 2 and the usage" "2 usage: kz-similar" "$? $(grep '^usage:' "$S/usage" | cut -d' ' -f1-2)"
