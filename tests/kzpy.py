#!/usr/bin/env python3
"""kzpy.py - an independent reader and writer of the kz stream (man kz.5),
written from the format description with the standard library only, so
that tests do not check the C code against itself.

  kzpy.py count FILE            number of records
  kzpy.py pixels-md5 FILE       md5 of all pixel bytes, in order
  kzpy.py labels-md5 FILE       md5 of the labels as one byte each
  kzpy.py labels FILE           labels, one per line
  kzpy.py top1 FILE             each record's first prediction, one per line
  kzpy.py preds FILE            each record's predictions, "class:score" with
                                the score to 4 decimals, one record a line
  kzpy.py flags FILE            the header's flags, in decimal
  kzpy.py npz-md5 FILE          md5 of arr_0.npy's data, read by zipfile
  kzpy.py make OUT W H CLASSES LABEL...   a stream of gradient images
  kzpy.py png-size FILE         width and height from a PNG's IHDR
  kzpy.py png-pixels FILE       md5 of the pixels of an 8-bit grey PNG
  kzpy.py kzm OUT META TAG:N...  a model file (man kzm.5) with META's
                                text (\\n for newlines) and zero-filled
                                sections (TAG@FILE: FILE's bytes), closed
                                by a valid CRC
  kzpy.py tar-check TAR STREAM MANIFEST N
                                decodes N PNGs spread over the archive and
                                compares them with the manifest's records
"""
import gzip, hashlib, struct, sys, tarfile, zlib

MAGIC = b"\x8bKZS\r\n\x1a\n"


def records(path):
    for index, label, _, pixels in records_preds(path):
        yield index, label, pixels


def records_preds(path):
    """(index, label, [(class, score)...], pixels) of every record."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == MAGIC, "bad magic"
    ver, hsize, pix, k, w, h, ncls, flags = struct.unpack_from("<HHHHIIII", data, 8)
    assert ver == 1 and hsize == 32 and flags & ~1 == 0
    bpp = 4 if pix == 2 else 1
    size = 12 + 8 * k + w * h * bpp
    off = 32
    while off < len(data):
        if data[off:off + 8] == MAGIC:
            assert data[off:off + 32] == data[:32], "incompatible header"
            off += 32
            continue
        rec = data[off:off + size]
        assert len(rec) == size, "truncated"
        index, label = struct.unpack_from("<Qi", rec, 0)
        preds = [struct.unpack_from("<If", rec, 12 + 8 * i) for i in range(k)]
        yield index, label, preds, rec[12 + 8 * k:]
        off += size


def png_gray_pixels(buf):
    """Decodes a non-interlaced 8-bit greyscale PNG (all the Kanji files)."""
    assert buf[:8] == b"\x89PNG\r\n\x1a\n"
    off, idat = 8, b""
    while off < len(buf):
        n, typ = struct.unpack_from(">I4s", buf, off)
        body = buf[off + 8:off + 8 + n]
        if typ == b"IHDR":
            w, h, depth, ctype, _, _, inter = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype == 0 and inter == 0
        elif typ == b"IDAT":
            idat += body
        off += 12 + n
    raw = zlib.decompress(idat)
    out, prev = bytearray(), bytearray(w)
    for y in range(h):
        ft = raw[y * (w + 1)]
        line = bytearray(raw[y * (w + 1) + 1:(y + 1) * (w + 1)])
        for x in range(w):
            a = line[x - 1] if x else 0
            b = prev[x]
            c = prev[x - 1] if x else 0
            if ft == 1: line[x] = (line[x] + a) & 255
            elif ft == 2: line[x] = (line[x] + b) & 255
            elif ft == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pr) & 255
        out += line
        prev = line
    return bytes(out)


def kzm_sections(path):
    """{tag: payload} of a model file's sections (man kzm.5), its head
    skipped, for the tests' own Python checks (import kzpy)."""
    d = open(path, "rb").read()
    off, out = 12, {}
    while off < len(d):
        tag, n = d[off:off + 4], struct.unpack_from("<Q", d, off + 4)[0]
        out[tag] = d[off + 12:off + 12 + n]
        off += 12 + n
    return out

def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "count":
        print(sum(1 for _ in records(args[0])))
    elif cmd == "pixels-md5":
        # Of every named stream's pixels, in order.
        m = hashlib.md5()
        for path in args:
            for _, _, px in records(path):
                m.update(px)
        print(m.hexdigest())
    elif cmd == "labels-md5":
        m = hashlib.md5()
        for _, label, _ in records(args[0]):
            m.update(bytes([label & 255]))
        print(m.hexdigest())
    elif cmd == "npz-md5":
        import zipfile
        npy = zipfile.ZipFile(args[0]).read("arr_0.npy")
        hlen = struct.unpack_from("<H", npy, 8)[0]
        print(hashlib.md5(npy[10 + hlen:]).hexdigest())
    elif cmd == "labels":
        for _, label, _ in records(args[0]):
            print(label)
    elif cmd == "preds":
        for _, _, preds, _ in records_preds(args[0]):
            print(" ".join("%d:%.4f" % p for p in preds))
    elif cmd == "flags":
        with open(args[0], "rb") as f:
            hdr = f.read(32)
        assert hdr[:8] == MAGIC, "bad magic"
        print(struct.unpack_from("<I", hdr, 28)[0])
    elif cmd == "top1":
        for _, _, preds, _ in records_preds(args[0]):
            print(preds[0][0])
    elif cmd == "make":
        out, w, h, ncls = args[0], int(args[1]), int(args[2]), int(args[3])
        with open(out, "wb") as f:
            f.write(MAGIC + struct.pack("<HHHHIIII", 1, 32, 1, 0, w, h, ncls, 0))
            for i, label in enumerate(args[4:]):
                f.write(struct.pack("<Qi", i, int(label)))
                f.write(bytes((i * 7 + j) & 255 for j in range(w * h)))
    elif cmd == "png-size":
        with open(args[0], "rb") as f:
            buf = f.read(24)
        assert buf[:8] == b"\x89PNG\r\n\x1a\n" and buf[12:16] == b"IHDR"
        print("%d %d" % struct.unpack(">II", buf[16:24]))
    elif cmd == "png-pixels":
        with open(args[0], "rb") as f:
            print(hashlib.md5(png_gray_pixels(f.read())).hexdigest())
    elif cmd == "kzm":
        out = b"\x8bKZM\r\n\x1a\n" + struct.pack("<I", 1)
        meta = args[1].replace("\\n", "\n").encode()
        out += b"META" + struct.pack("<Q", len(meta)) + meta
        for sec in args[2:]:
            if "@" in sec:
                tag, path = sec.split("@", 1)
                data = open(path, "rb").read()
            else:
                tag, n = sec.split(":")
                data = bytes(int(n))
            out += tag.encode() + struct.pack("<Q", len(data)) + data
        out += b"CRC " + struct.pack("<QI", 4, zlib.crc32(out))
        with open(args[0], "wb") as f:
            f.write(out)
    elif cmd == "sections-md5":
        # Of a model file's sections but META (which holds the command
        # and the date) and the CRC: its numbers.
        b = open(args[0], "rb").read()
        m, off = hashlib.md5(), 12
        while off + 12 <= len(b):
            tag, n = b[off:off + 4], struct.unpack_from("<Q", b, off + 4)[0]
            if tag not in (b"META", b"CRC "):
                m.update(b[off:off + 12 + n])
            off += 12 + n
        print(m.hexdigest())
    elif cmd == "tar-check":
        tar, stream, manifest, n = args[0], args[1], args[2], int(args[3])
        with open(manifest, encoding="utf-8") as f:
            rows = [line.rstrip("\n").split("\t") for line in f]
        step = max(1, len(rows) // n)
        want = {rows[i][2]: int(rows[i][0]) for i in range(0, len(rows), step)}
        got = {}
        with tarfile.open(tar) as t:
            for m in t:
                if m.name in want:
                    got[want[m.name]] = png_gray_pixels(t.extractfile(m).read())
        bad = compared = 0
        for idx, (index, label, px) in enumerate(records(stream)):
            if idx in got:
                compared += 1
                bad += got.pop(idx) != px
        print("compared %d of %d, differ %d" % (compared, len(want), bad))
    else:
        sys.exit("kzpy.py: unknown command " + cmd)


if __name__ == "__main__":
    main()
