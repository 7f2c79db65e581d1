#!/usr/bin/env python3
"""fixtures.py DIR - writes the small inputs the tests use, with the
standard library only: every pixel value is known here, independently of
the C code.  Also prints nothing; tests read the files."""
import gzip, io, os, struct, sys, tarfile, zipfile, zlib

d = sys.argv[1]
os.makedirs(d, exist_ok=True)


def w(name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy(shape, data, descr="|u1", fortran=False, version=1):
    hdr = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, "True" if fortran else "False",
        "".join("%d, " % s for s in shape) if len(shape) == 1 else ", ".join(map(str, shape)))
    pre = 10 if version == 1 else 12
    pad = 64 - (pre + len(hdr) + 1) % 64
    hdr = (hdr + " " * pad + "\n").encode()
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr + data
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(hdr)) + hdr + data


def npz(member, payload, method=zipfile.ZIP_DEFLATED):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", method) as z:
        z.writestr(member, payload)
    return b.getvalue()


def chunk(t, body):
    return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body))


def png(w_, h_, pixels, ctype=0):
    """An 8-bit PNG; ctype 0 grey, 2 RGB, 4 grey+alpha."""
    ch = {0: 1, 2: 3, 4: 2}[ctype]
    raw = b"".join(b"\0" + bytes(pixels[y * w_ * ch:(y + 1) * w_ * ch]) for y in range(h_))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w_, h_, 8, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def png_filtered(w_, h_, pixels, filters, extra=b"", split=False):
    """An 8-bit grey PNG whose row y is written with filter filters[y]
    (0 none, 1 sub, 2 up, 3 average, 4 Paeth; the PNG specification's
    definitions); extra chunks go before IDAT; split cuts IDAT in two."""
    raw = b""
    for y in range(h_):
        row = pixels[y * w_:(y + 1) * w_]
        up = pixels[(y - 1) * w_:y * w_] if y else bytes(w_)
        f, out = filters[y], []
        for x in range(w_):
            a = row[x - 1] if x else 0
            c = up[x - 1] if x else 0
            pred = [0, a, up[x], (a + up[x]) // 2, paeth(a, up[x], c)][f] if f < 5 else 0
            out.append((row[x] - pred) & 255)
        raw += bytes([f]) + bytes(out)
    z = zlib.compress(raw)
    idat = chunk(b"IDAT", z[:len(z) // 2]) + chunk(b"IDAT", z[len(z) // 2:]) if split else chunk(b"IDAT", z)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w_, h_, 8, 0, 0, 0, 0))
            + extra + idat + chunk(b"IEND", b""))


N, H, W = 5, 3, 4
imgs = bytes((i * 37 + 11) & 255 for i in range(N * H * W))
labels = bytes([0, 1, 2, 1, 0])
w("imgs.raw", imgs)
w("imgs.npz", npz("arr_0.npy", npy((N, H, W), imgs)))
w("labels.npz", npz("arr_0.npy", npy((N,), labels)))
w("imgs-stored.npz", npz("arr_0.npy", npy((N, H, W), imgs), zipfile.ZIP_STORED))
w("imgs-v2.npy", npy((N, H, W), imgs, version=2))
w("other-member.npz", npz("images.npy", npy((N, H, W), imgs)))
w("fortran.npz", npz("arr_0.npy", npy((N, H, W), imgs, fortran=True)))
w("float.npz", npz("arr_0.npy", npy((N, H, W), imgs * 4, descr="<f4")))
w("badshape.npz", npz("arr_0.npy", npy((N, H * W), imgs)))
w("short.npz", npz("arr_0.npy", npy((N + 1, H, W), imgs)))
w("labels-big.npz", npz("arr_0.npy", npy((N,), bytes([0, 1, 200, 1, 0]))))
w("labels-4.npz", npz("arr_0.npy", npy((4,), labels[:4])))
# Shape (2^32, 2^32) and no data: the product wraps around to 0 in 64 bits.
w("wrap.npy", npy((1 << 32, 1 << 32), b""))

idx_imgs = struct.pack(">BBBBIII", 0, 0, 8, 3, N, H, W) + imgs
idx_labels = struct.pack(">BBBBI", 0, 0, 8, 1, N) + labels
w("imgs.idx", idx_imgs)
w("labels.idx", idx_labels)
w("imgs.idx.gz", gzip.compress(idx_imgs, mtime=0))
w("labels.idx.gz", gzip.compress(idx_labels, mtime=0))
# Absurd dimensions with almost no data: refused before allocation.
w("huge.idx", struct.pack(">BBBBIII", 0, 0, 8, 3, 100000, 100000, 100000) + b"\0" * 16)
w("wide.idx", struct.pack(">BBBBIII", 0, 0, 8, 3, 1, 1, 100000) + b"\0" * 100000)
w("int.idx", struct.pack(">BBBBI", 0, 0, 0x0C, 1, 2) + b"\0" * 8)

# A zip bomb: the central directory claims 2^31 bytes from 100.
bomb = bytearray(npz("arr_0.npy", npy((N, H, W), imgs)))
cd = bomb.rfind(b"PK\x01\x02")
struct.pack_into("<I", bomb, cd + 24, 0x7fffffff)
w("bomb.npz", bytes(bomb))
# A flipped byte in the deflate data: CRC or deflate error.
bad = bytearray(npz("arr_0.npy", npy((N, H, W), imgs)))
bad[45] ^= 0x55
w("corrupt.npz", bytes(bad))

# Images: grey PNG and PGM of the first record; RGB PNG; PPM; two PGMs.
first = imgs[:H * W]
w("a.png", png(W, H, first))
w("a.pgm", b"P5\n%d %d\n255\n" % (W, H) + first)
w("a-plain.pgm", b"P2\n%d %d\n255\n" % (W, H) + " ".join(map(str, first)).encode() + b"\n")
w("two.pgm", b"P5\n%d %d\n255\n" % (W, H) + imgs[H * W:2 * H * W]
  + b"P5\n%d %d\n255\n" % (W, H) + imgs[2 * H * W:3 * H * W])
w("b16.pgm", b"P5\n%d %d\n65535\n" % (W, H) + b"".join(struct.pack(">H", v * 257) for v in first))
rgb = bytes((i * 53 + 7) & 255 for i in range(W * H * 3))
w("c.ppm", b"P6\n%d %d\n255\n" % (W, H) + rgb)
w("c.png", png(W, H, rgb, ctype=2))
grey = bytes(int(0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2] + 0.5)
             for i in range(W * H))
w("c-grey.raw", grey)
w("other-size.pgm", b"P5\n3 3\n255\n" + bytes(9))
w("huge.pgm", b"P5\n100000 100000\n255\n" + bytes(10))
# Headers claiming more than their files hold: 4096x4096 RGB in 68 bytes;
# 4096 tuples of 60000 samples (libnetpbm's row: 2 GB) in 64.
w("huge.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4096, 4096, 8, 2, 0, 0, 0))
  + chunk(b"IDAT", zlib.compress(bytes(16))) + chunk(b"IEND", b""))
w("deep.pam", b"P7\nWIDTH 4096\nHEIGHT 1\nDEPTH 60000\nMAXVAL 255\nTUPLTYPE X\nENDHDR\n")
# A plain PGM cut in its pixels, past what the header check can tell.
w("cut-plain.pgm", b"P2\n%d %d\n255\n" % (W, H) + b" ".join(b"%d" % v for v in first[:W * H - 1]))

# Every row filter, on pixels with edges and ramps: decoded by kz's own
# path for the simplest PNGs, and by libpng when a text chunk or a split
# IDAT sends them there.
FW, FH = 9, 6
fpix = bytes((x * 29 + y * 71 + (x * y) % 7 * 40) & 255 for y in range(FH) for x in range(FW))
ffilters = [4, 1, 2, 3, 4, 0]
w("filters.raw", fpix)
w("filters.png", png_filtered(FW, FH, fpix, ffilters))
w("filters-text.png", png_filtered(FW, FH, fpix, ffilters, extra=chunk(b"tEXt", b"Comment\0kz")))
w("filters-split.png", png_filtered(FW, FH, fpix, ffilters, split=True))
w("filter5.png", png_filtered(FW, FH, fpix, [0, 0, 5, 0, 0, 0]))
badcrc = bytearray(png_filtered(FW, FH, fpix, ffilters))
badcrc[8 + 8 + 13] ^= 1
w("badcrc.png", bytes(badcrc))
# Two gzip members, as `cat a.gz b.gz` makes: one file, read through.
w("imgs2.idx.gz", gzip.compress(idx_imgs[:20], mtime=0) + gzip.compress(idx_imgs[20:], mtime=0))

# Kanji-like trees as tar archives.
def tar(entries, gz=False):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w:gz" if gz else "w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            if data is None:
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return b.getvalue()

tree = [("kkanji2/", None), ("kkanji2/U+5B57/", None),
        ("kkanji2/U+5B57/b.png", png(W, H, imgs[H * W:2 * H * W])),
        ("kkanji2/U+5B57/a.png", png(W, H, imgs[:H * W])),
        ("kkanji2/U+4E00/z.png", png(W, H, imgs[2 * H * W:3 * H * W])),
        ("kkanji2/U+20000/y.png", png(W, H, imgs[3 * H * W:4 * H * W])),
        ("kkanji2/README.txt", b"not an image\n")]
w("tree.tar", tar(tree))
w("tree.tar.gz", tar(tree, gz=True))
# Expected order: U+4E00 z, U+5B57 a, U+5B57 b, U+20000 y -> classes 0 1 1 2.
w("tree-expect.raw", imgs[2 * H * W:3 * H * W] + imgs[:H * W] + imgs[H * W:2 * H * W]
  + imgs[3 * H * W:4 * H * W])
w("evil-dotdot.tar", tar([("kkanji2/U+4E00/../../../tmp/x.png", png(W, H, first))]))
w("evil-abs.tar", tar([("/tmp/kkanji2/U+4E00/x.png", png(W, H, first))]))
bad = bytearray(tar(tree))
bad[150] ^= 1
w("badsum.tar", bytes(bad))

# Archives tarfile would not write, a header at a time.
def tar_header(name, size, typ=b"0"):
    h = bytearray(512)
    h[0:len(name)] = name.encode()
    h[100:124] = b"0000644\0" + b"0000000\0" * 2
    h[124:148] = b"%011o\0" % size + b"00000000000\0"
    h[156:157] = typ
    h[257:265] = b"ustar\x0000"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)

a_png = png(W, H, first)
a_member = tar_header("kkanji2/U+4E00/a.png", len(a_png)) + a_png + bytes(-len(a_png) % 512)
# A pax header of 512 digits: no NUL, newline or space ends its length.
w("pax-digits.tar", tar_header("PaxHeaders/a.png", 512, b"x") + b"1" * 512 + a_member + bytes(1024))
# An image entry claiming 64 MB, in 1 kB.
w("tar-64m.tar", tar_header("kkanji2/U+4E00/a.png", 64 << 20) + a_png + bytes(-len(a_png) % 512))
w("map3.csv", "index,codepoint,char\n0,U+4E00,一\n1,U+5B57,字\n2,U+20000,\U00020000\n".encode())
w("map2.csv", "index,codepoint,char\n0,U+4E00,一\n1,U+5B57,字\n".encode())

# Big enough to outlast a pipe buffer: 3000 images of 28x28.
many = bytes((i * 131 + i // 784) & 255 for i in range(3000 * 784))
w("many.npz", npz("arr_0.npy", npy((3000, 28, 28), many)))

# JPEG, written here: baseline, one grey component, every quantiser 1,
# and every 8x8 block one flat value, so only the DC coefficients are
# coded (8 * (v - 128)) and any decoder gives back exactly v.
def jpeg_flat(w_, h_, block_values, components=1):
    """block_values[by][bx]: each block's value; components 3 gives a
    YCbCr JPEG whose chroma is flat 128 (luma = the same values)."""
    def seg(marker, body):
        return b"\xff" + marker + struct.pack(">H", len(body) + 2) + body
    dqt = seg(b"\xdb", b"\x00" + bytes([1] * 64))
    comps = b"".join(bytes([c + 1, 0x11, 0]) for c in range(components))
    sof = seg(b"\xc0", struct.pack(">BHHB", 8, h_, w_, components) + comps)
    # DC: categories 0..11, each a 4-bit code (code = category).
    dht_dc = seg(b"\xc4", b"\x00" + bytes([0, 0, 0, 12] + [0] * 12) + bytes(range(12)))
    # AC: only end-of-block, the 1-bit code 0.
    dht_ac = seg(b"\xc4", b"\x10" + bytes([1] + [0] * 15) + b"\x00")
    sos = seg(b"\xda", bytes([components]) + b"".join(bytes([c + 1, 0]) for c in range(components))
              + b"\x00\x3f\x00")
    bits = []
    def put(v, n):
        bits.extend((v >> (n - 1 - i)) & 1 for i in range(n))
    prev = [0] * components
    for by in range((h_ + 7) // 8):
        for bx in range((w_ + 7) // 8):
            for c in range(components):
                dc = 8 * ((block_values[by][bx] if c == 0 else 128) - 128)
                diff, prev[c] = dc - prev[c], dc
                s = abs(diff).bit_length()
                put(s, 4)
                if s:
                    put(diff if diff >= 0 else diff - 1 + (1 << s), s)
                put(0, 1)           # end of block
    bits.extend([1] * (-len(bits) % 8))
    data = bytearray()
    for i in range(0, len(bits), 8):
        byte = int("".join(map(str, bits[i:i + 8])), 2)
        data.append(byte)
        if byte == 0xFF:
            data.append(0)          # byte stuffing
    return b"\xff\xd8" + dqt + sof + dht_dc + dht_ac + sos + bytes(data) + b"\xff\xd9"

def flat_pixels(w_, h_, block_values):
    return bytes(block_values[y // 8][x // 8] for y in range(h_) for x in range(w_))

# A 24x16 page of six blocks; 21x13 so the last blocks are cut.
jv = [[10, 200, 60], [255, 0, 128]]
w("flat.jpg", jpeg_flat(24, 16, jv))
w("flat.raw", flat_pixels(24, 16, jv))
w("flat-cut.jpg", jpeg_flat(21, 13, jv))
w("flat-cut.raw", flat_pixels(21, 13, jv))
w("flat-colour.jpg", jpeg_flat(24, 16, jv, components=3))
w("flat-cut-short.jpg", jpeg_flat(24, 16, jv)[:-20])
huge_jpg = bytearray(jpeg_flat(24, 16, jv))
i = huge_jpg.index(b"\xff\xc0")
huge_jpg[i + 5:i + 9] = struct.pack(">HH", 20000, 20000)
w("huge.jpg", bytes(huge_jpg))
w("wide.jpg", jpeg_flat(4104, 8, [[100] * 513]))

# A CODH book: BOOK/BOOK_coordinate.csv and BOOK/images/PAGE.jpg, two
# pages of flat blocks; each box is 2x2 whole blocks, read with
# --resize 16x16 (the size it has).  kz-norm's polarity rule inverts a
# box whose border averages above 128 (dark ink on paper).
os.makedirs(os.path.join(d, "book", "images"), exist_ok=True)
p1 = [[20, 20, 20, 20], [20, 230, 20, 20], [20, 20, 240, 20], [20, 20, 240, 20]]
p2 = [[200, 200, 200], [200, 40, 200], [200, 200, 200]]
w("book/images/pg_1.jpg", jpeg_flat(32, 32, p1))
w("book/images/pg_2.jpg", jpeg_flat(24, 24, p2))
w("book/book_coordinate.csv",
  b"Unicode,Image,X,Y,Block ID,Char ID,Width,Height\n"
  b"U+4E00,pg_1,0,0,B0001,C0001,16,16\n"      # ground 20: kept
  b"U+3042,pg_1,16,16,B0001,C0002,16,16\n"    # border 130: inverted; not in map3
  b"U+5B57,pg_2,8,8,B0002,C0003,16,16\n")     # paper 200: inverted
def box(page, bx, by, invert):
    px = flat_pixels(len(page[0]) * 8, len(page) * 8, page)
    pw = len(page[0]) * 8
    out = bytes(px[(by + y) * pw + bx + x] for y in range(16) for x in range(16))
    return bytes(255 - v for v in out) if invert else out
w("book-expect.raw", box(p1, 0, 0, False) + box(p1, 16, 16, True) + box(p2, 8, 8, True))
w("book-known.raw", box(p1, 0, 0, False) + box(p2, 8, 8, True))
