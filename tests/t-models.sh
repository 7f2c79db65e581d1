# t-models.sh - what a model carries (its class map, section CMAP) and
# models found by name (-m NAME, KZ_MODEL_PATH, kz-classify -L).
M=$T/models
mkdir -p "$M"
kzpy make "$T/m3.kz" 8 8 3 0 1 2 0 1 2 0 1 2
printf 'index,codepoint,char\n0,U+304A,お\n2,U+3059,す\n1,U+304D,き\n' >"$T/map3.csv"
kz-train -q -a linear -e 1 -c "$T/map3.csv" -o "$M/three.kzm" "$T/m3.kz"
# The section, read by a reader written from kzm(5), not by our code.
t_eq "kz-train -c: CMAP holds each class's code point, in class order" "304a 304d 3059" "$("$PY" - "$M/three.kzm" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
off = 12
while off < len(d):
    tag, n = d[off:off + 4], struct.unpack_from("<Q", d, off + 4)[0]
    if tag == b"CMAP":
        print(" ".join("%x" % c for c in struct.unpack_from("<%dI" % (n // 4), d, off + 12)))
    off += 12 + n
PY
)"
kz-classify -m "$M/three.kzm" -k 3 "$T/m3.kz" >"$T/p3.kz"
t_eq "kz-label -m: the labels -c gives" "$(kz-label -c "$T/map3.csv" "$T/p3.kz" | md5sum)" \
    "$(kz-label -m "$M/three.kzm" "$T/p3.kz" | md5sum)"
t_eq "kz-eval -m: the report -c gives" "$(kz-eval -c "$T/map3.csv" "$T/p3.kz" | md5sum)" \
    "$(kz-eval -m "$M/three.kzm" "$T/p3.kz" | md5sum)"
t_eq "a model with a class map trains the same weights" \
    "$(kz-train -q -a linear -e 1 -o "$T/plain.kzm" "$T/m3.kz" && kz-classify -m "$T/plain.kzm" -k 3 "$T/m3.kz" | md5sum)" \
    "$(md5sum <"$T/p3.kz")"

# By name, along KZ_MODEL_PATH first.
export KZ_MODEL_PATH="$T/nowhere:$M"
t_eq "-m NAME finds NAME.kzm along KZ_MODEL_PATH" "$(md5sum <"$T/p3.kz")" \
    "$(kz-classify -m three -k 3 "$T/m3.kz" | md5sum)"
t_eq "kz-label -m NAME" "$(kz-label -c "$T/map3.csv" "$T/p3.kz" | md5sum)" "$(kz-label -m three "$T/p3.kz" | md5sum)"
t_eq "kz-classify -L: name, classes, size, version, file" "three 3 8x8 $(kz-train --version | cut -d' ' -f2) $M/three.kzm" \
    "$(kz-classify -L | awk '$1 == "three" { print $1, $2, $3, $4, $5 }')"
t_eq "kz-classify -L: the shipped model too" "kmnist 10 28x28" \
    "$(kz-classify -L | awk '$1 == "kmnist" { print $1, $2, $3; exit }')"
t_fails "a model named but not found: every place searched" "no nope.kzm in $T/nowhere, $M, " \
    kz-classify -m nope "$T/m3.kz"
unset KZ_MODEL_PATH
t_fails "kz-label -m: a model without a class map" "plain.kzm: the model holds no class map" \
    kz-label -m "$T/plain.kzm" "$T/p3.kz"
printf 'index,codepoint,char\n0,U+304A,お\n' >"$T/map1.csv"
t_fails "kz-train -c: a class map of another count" "map1.csv: 1 classes, but the training stream has 3" \
    kz-train -q -a linear -e 1 -c "$T/map1.csv" -o "$T/bad.kzm" "$T/m3.kz"
t_eq "... and no model" "" "$(ls "$T" | grep '^bad')"
t_eq "kz-label: -c and -m together is a usage error" "2" \
    "$(kz-label -c "$T/map3.csv" -m three "$T/p3.kz" >/dev/null 2>&1; echo $?)"
# Crafted sections: wrong size, and code points that are not characters.
kmeta='type=knn\narch=knn\nwidth=2\nheight=2\nclasses=3\nknn_k=1\nknn_weights=uniform\nrecords=1'
kzpy kzm "$T/cmap8.kzm" "$kmeta\n" KNNX:4 KNNY:4 CMAP:8
t_fails "a class map section of 2 classes in a model of 3" "cmap8.kzm: the class map section holds 8 bytes, not 4 for each of 3 classes" \
    kz-label -m "$T/cmap8.kzm" "$T/p3.kz"
kzpy kzm "$T/cmap0.kzm" "$kmeta\n" KNNX:4 KNNY:4 CMAP:12
t_fails "a class map section with code point 0" "cmap0.kzm: class map: class 0 has code point U\+0000" \
    kz-classify -m "$T/cmap0.kzm" "$T/m3.kz"
