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

# kz-model: half-precision parameters, checked against Python's own
# IEEE half (struct "e", round to nearest even), and read back exactly.
kz-model -p f16 -o "$M/half.kzm" "$M/three.kzm"
kz-model -p f32 -o "$T/back.kzm" "$M/half.kzm"
t_eq "kz-model -p f16: PF16 is each parameter rounded as IEEE half; -p f32 reads them back exactly" "195 same same" "$("$PY" - "$M/three.kzm" "$M/half.kzm" "$T/back.kzm" <<'PY'
import os, struct, sys
sys.path.insert(0, os.environ["TESTS"]); from kzpy import kzm_sections as sections
f32 = struct.unpack("<%df" % (len(sections(sys.argv[1])[b"PARM"]) // 4), sections(sys.argv[1])[b"PARM"])
half = sections(sys.argv[2])[b"PF16"]
mine = b"".join(struct.pack("<e", x) for x in f32)
back = sections(sys.argv[3])[b"PARM"]
want = struct.pack("<%df" % len(f32), *struct.unpack("<%de" % len(f32), half))
print(len(f32), "same" if mine == half else "different", "same" if back == want else "different")
PY
)"
t_eq "kz-model: a half-precision model is smaller" "yes" \
    "$([ "$(stat -c %s "$M/half.kzm")" -lt "$(stat -c %s "$M/three.kzm")" ] && echo yes)"
t_eq "kz-model describes: precision, class map, settings" "f16 おきす none" \
    "$(kz-model "$M/half.kzm" | awk -F'\t' '$1 == "precision" || $1 == "classmap" || $1 == "settings" { printf "%s%s", s, $2; s = " " }')"
# A stored test-time setting is kz-classify's default; -s overrides it.
kzpy make "$T/m28.kz" 28 28 10 0 1 2 3 4 5 6 7 8 9
# (shift0.kzm: the shipped model with every setting at its default)
kz-model -s shift=0 -s zoom=0 -s rotate=0 -o "$T/shift0.kzm" "$TESTS/../models/kmnist.kzm"
# Each setting NAME=VALUE stored is kz-classify's default of its FLAG,
# which overrides it; the two outputs differ.
for set in shift=1:-s zoom=5:-z rotate=5:-r; do
	nv=${set%:*} flag=${set#*:}
	kz-model -s "$nv" -o "$T/$nv.kzm" "$T/shift0.kzm"
	plain=$(kz-classify -m "$T/shift0.kzm" "$T/m28.kz" | md5sum)
	t_eq "a model's setting $nv is kz-classify's default $flag ${nv#*=}" \
	    "$(kz-classify -m "$T/shift0.kzm" "$flag" "${nv#*=}" "$T/m28.kz" | md5sum)" \
	    "$(kz-classify -m "$T/$nv.kzm" "$T/m28.kz" | md5sum)"
	t_eq "... and $flag 0 overrides it" "$plain" \
	    "$(kz-classify -m "$T/$nv.kzm" "$flag" 0 "$T/m28.kz" | md5sum)"
	t_eq "... and the two differ" "different" \
	    "$([ "$plain" = "$(kz-classify -m "$T/$nv.kzm" "$T/m28.kz" | md5sum)" ] && echo same || echo different)"
done
kzpy kzm "$T/zoom21.kzm" "$kmeta\nsetting_zoom=21\n" KNNX:4 KNNY:4
t_fails "a stored zoom out of range" "zoom21.kzm: setting zoom is not a whole number in 0..20" \
    kz-classify -m "$T/zoom21.kzm" "$T/m3.kz"
t_fails "kz-model -s: an unknown setting" "unknown setting \"bogus\"" \
    kz-model -s bogus=1 -o "$T/x.kzm" "$M/three.kzm"
kzpy kzm "$T/unknown.kzm" "$kmeta\nsetting_sharpen=1\n" KNNX:4 KNNY:4
t_fails "a stored setting this kz does not know" "unknown.kzm: unknown setting \"sharpen\"" \
    kz-classify -m "$T/unknown.kzm" "$T/m3.kz"
kzpy kzm "$T/shift99.kzm" "$kmeta\nsetting_shift=99\n" KNNX:4 KNNY:4
t_fails "a stored setting out of range" "shift99.kzm: setting shift is not a whole number in 0..8" \
    kz-classify -m "$T/shift99.kzm" "$T/m3.kz"
kzpy kzm "$T/pf16.kzm" 'type=net\narch=linear\nwidth=2\nheight=2\nclasses=3\n' PF16:10 STAT:0
t_fails "a PF16 section of the wrong size" "pf16.kzm: sections PF16 and STAT hold 10 and 0 bytes, the architecture needs 30 and 0" \
    kz-classify -m "$T/pf16.kzm" "$T/m3.kz"

# kz-model -p q8: checked from kzm(5) by Python, not by our reader: each
# block of 32 has the scale max|w|/127 (as a float), every integer is
# within 127 and times its scale within half a step of its parameter;
# -p f32 reads back exactly scale times integer.
kz-model -p q8 -o "$M/q8.kzm" "$M/three.kzm"
kz-model -p f32 -o "$T/q8back.kzm" "$M/q8.kzm"
t_eq "kz-model -p q8: PQ8 is each block of 32 parameters as 8-bit integers and a scale; -p f32 reads back scale x integer" "195 7 ok ok" "$("$PY" - "$M/three.kzm" "$M/q8.kzm" "$T/q8back.kzm" <<'PY'
import os, struct, sys
sys.path.insert(0, os.environ["TESTS"]); from kzpy import kzm_sections as sections
f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
w = struct.unpack("<%df" % (len(sections(sys.argv[1])[b"PARM"]) // 4), sections(sys.argv[1])[b"PARM"])
q8 = sections(sys.argv[2])[b"PQ8 "]
nb = (len(w) + 31) // 32
scale = struct.unpack_from("<%df" % nb, q8)
q = struct.unpack_from("<%db" % len(w), q8, 4 * nb)
ok = len(q8) == 4 * nb + len(w)
for k in range(nb):
    blk = w[32 * k:32 * k + 32]
    ok = ok and scale[k] == f32(max(abs(x) for x in blk) / 127)
    for i, x in enumerate(blk):
        v = q[32 * k + i]
        ok = ok and -127 <= v <= 127 and abs(v * scale[k] - x) <= scale[k] * 0.5001
back = struct.unpack("<%df" % len(w), sections(sys.argv[3])[b"PARM"])
same = all(back[i] == f32(scale[i // 32] * q[i]) for i in range(len(w)))
print(len(w), nb, "ok" if ok else "bad", "ok" if same else "bad")
PY
)"
t_eq "kz-model describes a q8 model" "q8" "$(kz-model "$M/q8.kzm" | awk -F'\t' '$1 == "precision" { print $2 }')"
kzpy kzm "$T/pq8.kzm" 'type=net\narch=linear\nwidth=2\nheight=2\nclasses=3\n' 'PQ8 :30' STAT:0
t_fails "a PQ8 section of the wrong size" "pq8.kzm: sections PQ8 and STAT hold 30 and 0 bytes, the architecture needs 19 and 0" \
    kz-classify -m "$T/pq8.kzm" "$T/m3.kz"
printf '\377\377\377\377' >"$T/nanscale"
head -c 15 /dev/zero >>"$T/nanscale"
kzpy kzm "$T/pq8nan.kzm" 'type=net\narch=linear\nwidth=2\nheight=2\nclasses=3\n' "PQ8 @$T/nanscale" STAT:0
t_fails "a PQ8 scale that is not a number" "pq8nan.kzm: section PQ8: scale 0 is" \
    kz-classify -m "$T/pq8nan.kzm" "$T/m3.kz"

# kz-model -p qD,C, from kzm(5) by Python too: PQN gives each block of
# 32 a 16-bit head, its width less one in the top 3 bits and its scale
# in the low 13 (a half-precision float's bits 14 to 2), then the
# blocks' integers packed from the low bit up.  The blocks of dense
# layers' weights are D bits wide, those of convolutions' C, the rest
# 8.  Each integer is within +-(2^(width-1) - 1); -p f32 reads back
# scale times integer; the scales, chosen for the least squared error,
# lose no more than the largest magnitude over the top integer does
# (computed here at the exact scale, so within 1%).
cat >"$T/pqn.py" <<'PY'
import os, struct, sys
sys.path.insert(0, os.environ["TESTS"]); from kzpy import kzm_sections as sections
f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
w = struct.unpack("<%df" % (len(sections(sys.argv[1])[b"PARM"]) // 4), sections(sys.argv[1])[b"PARM"])
pq = sections(sys.argv[2])[b"PQN "]
nb = (len(w) + 31) // 32
heads = struct.unpack_from("<%dH" % nb, pq)
at, q, scales, ok, err, plain = 2 * nb, [], [], True, 0.0, 0.0
for k in range(nb):
    blk = w[32 * k:32 * k + 32]
    bits = (heads[k] >> 13) + 1
    top = 2 ** (bits - 1) - 1
    s = struct.unpack("<e", struct.pack("<H", (heads[k] & 0x1FFF) << 2))[0]
    scales.append(s)
    word = int.from_bytes(pq[at:at + (len(blk) * bits + 7) // 8], "little")
    for i, x in enumerate(blk):
        v = (word >> (i * bits)) & (2 ** bits - 1)
        v = v - 2 ** bits if v >= 2 ** (bits - 1) else v
        q.append(v)
        ok = ok and -top <= v <= top
        err += (x - s * v) ** 2
    m = max(abs(x) for x in blk)
    plain += sum((x - m / top * max(-top, min(top, round(x / (m / top))))) ** 2 for x in blk) if m > 0 else 0
    at += (len(blk) * bits + 7) // 8
ok = ok and at == len(pq) and err <= 1.01 * plain
back = struct.unpack("<%df" % len(w), sections(sys.argv[3])[b"PARM"])
same = all(back[i] == f32(scales[i // 32] * q[i]) for i in range(len(w)))
print(len(w), "".join(str((h >> 13) + 1) for h in heads), "ok" if ok else "bad", "ok" if same else "bad")
PY
kz-model -p q4 -o "$M/q4.kzm" "$M/three.kzm"
kz-model -p f32 -o "$T/q4back.kzm" "$M/q4.kzm"
t_eq "kz-model -p q4: PQN, the linear layer's weights 4 bits wide, the block with its biases 8; -p f32 reads back scale x integer" \
    "195 4444448 ok ok" "$("$PY" "$T/pqn.py" "$M/three.kzm" "$M/q4.kzm" "$T/q4back.kzm")"
t_eq "kz-model describes a q4 model" "q4" "$(kz-model "$M/q4.kzm" | awk -F'\t' '$1 == "precision" { print $2 }')"
# 288 convolution weights (9 blocks), 32 biases, 32 + 32 batch-norm
# parameters (a block each), 96 dense weights (3 blocks), 3 biases.
kz-train -q -a cnn:conv32k3p1,bn,relu,gap -e 1 -o "$T/conv.kzm" "$T/m3.kz"
kz-model -p q4,6 -o "$T/q46.kzm" "$T/conv.kzm"
kz-model -p f32 -o "$T/q46back.kzm" "$T/q46.kzm"
t_eq "kz-model -p q4,6: convolutions' weights 6 bits wide, dense weights 4, the rest 8" \
    "483 6666666668884448 ok ok" "$("$PY" "$T/pqn.py" "$T/conv.kzm" "$T/q46.kzm" "$T/q46back.kzm")"
t_eq "kz-model describes a q4,6 model" "q4,6" "$(kz-model "$T/q46.kzm" | awk -F'\t' '$1 == "precision" { print $2 }')"
kz-model -p q3,2 -o "$T/q32.kzm" "$T/conv.kzm"
kz-model -p f32 -o "$T/q32back.kzm" "$T/q32.kzm"
t_eq "kz-model -p q3,2: 3 and 2 bits, packed across bytes" \
    "483 2222222228883338 ok ok" "$("$PY" "$T/pqn.py" "$T/conv.kzm" "$T/q32.kzm" "$T/q32back.kzm")"
for bad in q9 q4,1 q4, q4,6x f8 q; do
    t_fails "kz-model -p $bad" "-p: f32, f16, q8, or qD or qD,C with D and C from 2 to 8, not \"$bad\"" \
        kz-model -p "$bad" -o "$T/bad.kzm" "$T/conv.kzm"
done
# linear_kzm NAME TAG: $T/NAME.kzm, a linear model of 2x2 images and 3
# classes (one block of 15 parameters) whose parameters are section TAG
# holding $T/NAME.bin.
linear_kzm() {
	kzpy kzm "$T/$1.kzm" 'type=net\narch=linear\nwidth=2\nheight=2\nclasses=3\n' "$2 @$T/$1.bin" STAT:0
}
# PQN: a head of 0xe000 (8 bits, scale 0) and 15 bytes.
{ printf '\000\340'; head -c 15 /dev/zero; } >"$T/pqn.bin"
linear_kzm pqn PQN
kzpy make "$T/m2.kz" 2 2 3 0 1 2
t_eq "a PQN section as kzm(5) describes it reads" "3" "$(kz-classify -m "$T/pqn.kzm" "$T/m2.kz" | kzpy count /dev/stdin)"
head -c 16 "$T/pqn.bin" >"$T/pqnshort.bin"
linear_kzm pqnshort PQN
t_fails "a PQN section of the wrong size" "pqnshort.kzm: section PQN holds 16 bytes, the architecture and the blocks' widths need 17" \
    kz-classify -m "$T/pqnshort.kzm" "$T/m2.kz"
{ printf '\000\000'; head -c 2 /dev/zero; } >"$T/pqnw.bin"
linear_kzm pqnw PQN
t_fails "a PQN block 1 bit wide" "pqnw.kzm: section PQN: block 0 is 1 bit wide, not 2 to 8" \
    kz-classify -m "$T/pqnw.kzm" "$T/m2.kz"
{ printf '\000\377'; head -c 15 /dev/zero; } >"$T/pqnnan.bin"
linear_kzm pqnnan PQN
t_fails "a PQN scale whose exponent is 31 (infinity, not a number)" "pqnnan.kzm: section PQN: scale 0 is not finite" \
    kz-classify -m "$T/pqnnan.kzm" "$T/m2.kz"
# PQ4, the older form, still reads.  The linear model again: one
# block; 8 bits wide, it needs 1 + 4 + 15 bytes.
printf '\010' >"$T/pq4.bin"
head -c 19 /dev/zero >>"$T/pq4.bin"
linear_kzm pq4 PQ4
t_eq "a PQ4 section as kzm(5) describes it reads" "3" "$(kz-classify -m "$T/pq4.kzm" "$T/m2.kz" | kzpy count /dev/stdin)"
head -c 19 "$T/pq4.bin" >"$T/pq4short.bin"
linear_kzm pq4short PQ4
t_fails "a PQ4 section of the wrong size" "pq4short.kzm: section PQ4 holds 19 bytes, the architecture and the blocks' widths need 20" \
    kz-classify -m "$T/pq4short.kzm" "$T/m3.kz"
{ printf '\006'; head -c 19 /dev/zero; } >"$T/pq4w.bin"
linear_kzm pq4w PQ4
t_fails "a PQ4 block neither 4 nor 8 bits wide" "pq4w.kzm: section PQ4: block 0 is 6 bits wide, not 4 or 8" \
    kz-classify -m "$T/pq4w.kzm" "$T/m3.kz"
{ printf '\010\377\377\377\377'; head -c 15 /dev/zero; } >"$T/pq4nan.bin"
linear_kzm pq4nan PQ4
t_fails "a PQ4 scale that is not a number" "pq4nan.kzm: section PQ4: scale 0 is" \
    kz-classify -m "$T/pq4nan.kzm" "$T/m3.kz"

# Ensembles: several models in one file, their probabilities averaged
# as kz-classify averages the models -m names.
kz-model -c "$T/map3.csv" -o "$M/ens.kzm" "$M/three.kzm" "$M/q8.kzm" "$T/plain.kzm"
t_eq "kz-model: an ensemble classifies as kz-classify -m A -m B -m C" \
    "$(kz-classify -m "$M/three.kzm" -m "$M/q8.kzm" -m "$T/plain.kzm" -k 3 "$T/m3.kz" | md5sum)" \
    "$(kz-classify -m "$M/ens.kzm" -k 3 "$T/m3.kz" | md5sum)"
t_eq "... each member a whole model file in a section MEMB, in order (read from kzm(5) by Python)" "3 PARM PQ8 PARM crc-ok" "$("$PY" - "$M/ens.kzm" <<'PY'
import struct, sys, zlib
def walk(d):
    off, out = 12, []
    while off < len(d):
        tag, n = d[off:off + 4], struct.unpack_from("<Q", d, off + 4)[0]
        out.append((tag, d[off + 12:off + 12 + n], off)); off += 12 + n
    return out
d = open(sys.argv[1], "rb").read()
members = [p for t, p, _ in walk(d) if t == b"MEMB"]
ok = all(m[:8] == b"\x8bKZM\r\n\x1a\n" and struct.unpack_from("<I", m, len(m) - 4)[0] == zlib.crc32(m[:len(m) - 16]) for m in members)
kinds = [[t.decode().strip() for t, _, _ in walk(m) if t in (b"PARM", b"PQ8 ")][0] for m in members]
print(len(members), " ".join(kinds), "crc-ok" if ok else "crc-bad")
PY
)"
t_eq "kz-model describes an ensemble: its members" "ensemble 3 q8" \
    "$(kz-model "$M/ens.kzm" | awk -F'\t' '$1 == "type" { t = $2 } $1 == "member" { n++; if ($2 == 2) p = $5 } END { print t, n, p }')"
t_eq "kz-label -m: an ensemble's class map" "$(kz-label -c "$T/map3.csv" "$T/p3.kz" | md5sum)" \
    "$(kz-label -m "$M/ens.kzm" "$T/p3.kz" | md5sum)"
kz-model -o "$T/m0.kzm" "$M/three.kzm"
kz-model -o "$T/m1.kzm" "$M/q8.kzm"
emeta='type=ensemble\narch=ensemble\nwidth=8\nheight=8\nclasses=3\n'
kzpy kzm "$T/ens-count.kzm" "${emeta}members=3\n" "MEMB@$T/m0.kzm" "MEMB@$T/m1.kzm"
t_fails "an ensemble with fewer members than it names" "ens-count.kzm: 2 members, it names 3" \
    kz-classify -m "$T/ens-count.kzm" "$T/m3.kz"
kzpy kzm "$T/ens-geom.kzm" 'type=ensemble\narch=ensemble\nwidth=28\nheight=28\nclasses=3\nmembers=1\n' "MEMB@$T/m0.kzm"
t_fails "an ensemble member of another size" "ens-geom.kzm: member 1 is 8x8 of 3 classes, the ensemble 28x28 of 3" \
    kz-classify -m "$T/ens-geom.kzm" "$T/m3.kz"
kzpy kzm "$T/ens-nest.kzm" "${emeta}members=1\n" "MEMB@$M/ens.kzm"
t_fails "an ensemble inside an ensemble" "ens-nest.kzm: member 1: an ensemble inside an ensemble" \
    kz-classify -m "$T/ens-nest.kzm" "$T/m3.kz"
kz-train -q -a linear -e 1 --checkpoint "$T/ck.kzm" -o "$T/ckm.kzm" "$T/m3.kz"
kzpy kzm "$T/ens-ck.kzm" "${emeta}members=1\n" "MEMB@$T/ck.kzm"
t_fails "a checkpoint as a member" "ens-ck.kzm: member 1 is a checkpoint, not a model" \
    kz-classify -m "$T/ens-ck.kzm" "$T/m3.kz"
head -c 200 "$T/m0.kzm" >"$T/m0cut"
kzpy kzm "$T/ens-cut.kzm" "${emeta}members=1\n" "MEMB@$T/m0cut"
t_fails "a member cut short, though the ensemble's CRC holds" "ens-cut.kzm: member 1: truncated" \
    kz-classify -m "$T/ens-cut.kzm" "$T/m3.kz"
t_fails "kz-model: models of other sizes cannot form an ensemble" "cannot join" \
    kz-model -o "$T/mixed.kzm" "$M/three.kzm" kmnist
t_eq "... and no file" "" "$(ls "$T" | grep '^mixed')"

# A smaller member reads the ensemble's images averaged down to its
# size, as kz-norm -r gives them: the ensemble's scores are the mean of
# the 8x8 model's on the stream and the 4x4 model's on kz-norm's.
kz-norm -p keep -r 4x4 "$T/m3.kz" >"$T/m3-4.kz"
kz-train -q -a linear -e 2 --seed 3 -o "$T/four.kzm" "$T/m3-4.kz"
kz-model -o "$T/mix.kzm" "$T/four.kzm" "$M/three.kzm"
t_eq "kz-model: a 4x4 and an 8x8 model make an 8x8 ensemble, each member its size" "8x8 4x4 8x8" \
    "$(kz-model "$T/mix.kzm" | awk -F'\t' '$1 == "size" { s = $2 } $1 == "member" { s = s " " $6 } END { print s }')"
kz-classify -m "$T/mix.kzm" -k 3 "$T/m3.kz" >"$T/pmix.kz"
kz-classify -m "$T/four.kzm" -k 3 "$T/m3-4.kz" >"$T/pfour.kz"
t_eq "... its scores: the mean of the 8x8 model's and the 4x4 model's on kz-norm -r 4x4" "9 records agree" \
    "$("$PY" - "$TESTS" "$T/pmix.kz" "$T/pfour.kz" "$T/p3.kz" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from kzpy import records_preds
mix, four, eight = ([dict(p) for _, _, p, _ in records_preds(f)] for f in sys.argv[2:])
ok = sum(all(abs(m[c] - (a[c] + b[c]) / 2) < 1e-6 for c in range(3))
         for m, a, b in zip(mix, four, eight))
print(ok, "records agree")
PY
)"
t_eq "... unlike the 4x4 model's alone" "different" \
    "$([ "$(kzpy preds "$T/pmix.kz")" = "$(kzpy preds "$T/pfour.kz")" ] && echo same || echo different)"
kz-train -q -a linear -e 2 --seed 4 -o "$T/four4.kzm" "$T/m3-4.kz"
kz-model -o "$T/mix3.kzm" "$T/mix.kzm" "$T/four4.kzm"
kz-model -x 1,3 -o "$T/mix-x.kzm" "$T/mix3.kzm"
t_eq "kz-model -x: the members kept make an ensemble of the largest size among them" "8x8 4x4" \
    "$(kz-model "$T/mix3.kzm" | awk -F'\t' '$1 == "size" { print $2 }') $(kz-model "$T/mix-x.kzm" | awk -F'\t' '$1 == "size" { print $2 }')"
t_eq "... and classify as the two 4x4 models together" "$(kz-classify -m "$T/four.kzm" -m "$T/four4.kzm" -k 3 "$T/m3-4.kz" | kzpy preds /dev/stdin)" \
    "$(kz-classify -m "$T/mix-x.kzm" -k 3 "$T/m3-4.kz" | kzpy preds /dev/stdin)"

# Members out of an ensemble (-x), and an ensemble joining as its members.
kz-model -s shift=1 -o "$T/ens-s1.kzm" "$M/ens.kzm"
kz-model -x 2 -o "$T/x2.kzm" "$T/ens-s1.kzm"
t_eq "kz-model -x 2: member 2 alone classifies as the model it was made from" \
    "$(kz-classify -s 0 -m "$M/q8.kzm" -k 3 "$T/m3.kz" | md5sum)" \
    "$(kz-classify -s 0 -m "$T/x2.kzm" -k 3 "$T/m3.kz" | md5sum)"
t_eq "... a q8 net, with the ensemble's class map and setting, no figures" \
    "net q8 shift=1 . $(kz-label -c "$T/map3.csv" "$T/p3.kz" | md5sum)" \
    "$(kz-model "$T/x2.kzm" | awk -F'\t' '$1 == "type" || $1 == "precision" || $1 == "settings" { printf "%s ", $2 } $1 == "figures" { printf "%s.", $2 }') $(kz-label -m "$T/x2.kzm" "$T/p3.kz" | md5sum)"
kz-model -x 2,1 -o "$T/x21.kzm" "$M/ens.kzm"
kz-model -o "$T/join.kzm" "$T/x21.kzm" "$T/plain.kzm"
t_eq "kz-model -x 2,1, then joined with a third: three members, in that order" \
    "$(kz-classify -m "$M/q8.kzm" -m "$M/three.kzm" -m "$T/plain.kzm" -k 3 "$T/m3.kz" | md5sum) q8 f32 f32" \
    "$(kz-classify -m "$T/join.kzm" -k 3 "$T/m3.kz" | md5sum) $(kz-model "$T/join.kzm" | awk -F'\t' '$1 == "member" { printf "%s%s", sep, $5; sep = " " }')"
kz-model -F "test 50%" -o "$T/ens-f.kzm" "$M/ens.kzm"
kz-model -o "$T/join-f.kzm" "$T/ens-f.kzm" "$T/plain.kzm"
t_eq "... an ensemble's figures are not carried to a new ensemble" "" \
    "$(kz-model "$T/join-f.kzm" | awk -F'\t' '$1 == "figures" { print $2 }')"
t_fails "kz-model -x: a member the ensemble lacks" "ens.kzm: -x: no member 4 .it has 3." \
    kz-model -x 4 -o "$T/x4.kzm" "$M/ens.kzm"
t_fails "kz-model -x: a model that is not an ensemble" "three.kzm: -x: not an ensemble" \
    kz-model -x 1 -o "$T/x4.kzm" "$M/three.kzm"
t_fails "kz-model -x: not a number" "-x: member numbers from 1 to 32" \
    kz-model -x 1,a -o "$T/x4.kzm" "$M/ens.kzm"
t_fails "kz-model -x: a member twice" "-x: member 1 twice" \
    kz-model -x 1,2,1 -o "$T/x4.kzm" "$M/ens.kzm"
t_eq "... and no file" "" "$(ls "$T" | grep '^x4')"

# Figures: the maker's words on what the model scored, listed by -L.
kz-model -F "test 33.33%" -o "$M/fig.kzm" "$M/three.kzm"
t_eq "kz-model -F: the figures, in the description" "test 33.33%" \
    "$(kz-model "$M/fig.kzm" | awk -F'\t' '$1 == "figures" { print $2 }')"
t_eq "kz-classify -L: the figures after the file" "$M/fig.kzm, test 33.33%" \
    "$(KZ_MODEL_PATH=$M kz-classify -L | awk '$1 == "fig" { sub(/^[^\/]*/, ""); print }')"
t_fails "kz-model -F: a control character is refused" "the model's figures has a control character" \
    kz-model -F "$(printf 'a\nb')" -o "$T/x.kzm" "$M/three.kzm"
t_eq "the shipped model states its figures" "yes" \
    "$(kz-model kmnist | awk -F'\t' '$1 == "figures" && /99.20%/ { print "yes" }')"
