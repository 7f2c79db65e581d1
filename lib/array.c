/* array.c - uint8 arrays from .npy, .npz (zip) and MNIST idx files. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <libdeflate.h>
#include <zlib.h>

#include "kz.h"
#include "util.h"

/* Deflate cannot expand better than about 1032:1; an npz member that
 * claims more is a zip bomb or a lie, refused before allocation. */
#define DEFLATE_MAX_RATIO 1032

uint64_t
kz_array_count(const struct kz_array *a)
{
	uint64_t n = 1;

	for (int i = 0; i < a->ndim; i++)
		n *= a->dim[i];
	return n;
}

void
kz_array_free(struct kz_array *a)
{
	free(a->base);
	memset(a, 0, sizeof(*a));
}

/* Checks the dimensions and that their product is below the limit. */
static int
check_dims(const struct kz_array *a, const char *name, struct kz_err *e)
{
	uint64_t n = 1;

	if (a->ndim < 1 || a->ndim > 4)
		return kz_errf(e, "%s: %d dimensions (1 to 4 supported)",
		    name, a->ndim);
	for (int i = 0; i < a->ndim; i++) {
		if (a->dim[i] > KZ_MAX_ARRAY_BYTES)
			return kz_errf(e, "%s: dimension %d is %llu, beyond "
			    "the limit", name, i,
			    (unsigned long long)a->dim[i]);
		/* Compared by division, before the product: n and a
		 * dimension can each be 2^32, whose product wraps around
		 * to 0 (a .npy of shape (2^32, 2^32) holding no data). */
		if (a->dim[i] != 0 && n > KZ_MAX_ARRAY_BYTES / a->dim[i])
			return kz_errf(e, "%s: array of more than %llu bytes "
			    "refused", name,
			    (unsigned long long)KZ_MAX_ARRAY_BYTES);
		n *= a->dim[i];
	}
	return 0;
}

/* ---- .npy ------------------------------------------------------------- */

/* Finds 'key' in the header dict and returns the text after its colon. */
static const char *
npy_value(const char *h, size_t len, const char *key)
{
	size_t klen = strlen(key);

	for (size_t i = 0; i + klen + 2 < len; i++) {
		if ((h[i] == '\'' || h[i] == '"') &&
		    memcmp(h + i + 1, key, klen) == 0 &&
		    h[i + 1 + klen] == h[i]) {
			const char *p = h + i + klen + 2;

			while (p < h + len && (*p == ' ' || *p == ':'))
				p++;
			return p < h + len ? p : NULL;
		}
	}
	return NULL;
}

/* Reads the header of the .npy file in buf (len bytes): copies its
 * dict, NUL-terminated, into hdr (size bytes), its length into *hlen,
 * and where the data starts into *off.  0, or -1 for a bad magic, an
 * unknown version, or a header too long for hdr or cut short. */
static int
npy_header(const uint8_t *buf, size_t len, const char *name, char *hdr,
    size_t size, size_t *hlen, size_t *off, struct kz_err *e)
{
	size_t n, start;

	if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
		return kz_errf(e, "%s: not a .npy array (bad magic)", name);
	if (buf[6] == 1) {
		n = get_le16(buf + 8);
		start = 10;
	} else if (buf[6] == 2 || buf[6] == 3) {
		if (len < 12)
			return kz_errf(e, "%s: .npy header truncated", name);
		n = get_le32(buf + 8);
		start = 12;
	} else {
		return kz_errf(e, "%s: .npy version %u.%u not supported",
		    name, buf[6], buf[7]);
	}
	if (n >= size)
		return kz_errf(e, "%s: .npy header of %zu bytes is too long",
		    name, n);
	if (len - start < n)
		return kz_errf(e, "%s: .npy header truncated", name);
	memcpy(hdr, buf + start, n);
	hdr[n] = '\0';
	*hlen = n;
	*off = start + n;
	return 0;
}

/* Checks that the header dict h (len bytes) describes uint8 elements
 * in C order.  0, or -1 naming the field that says otherwise. */
static int
npy_check_type(const char *h, size_t len, const char *name,
    struct kz_err *e)
{
	const char *v;

	if ((v = npy_value(h, len, "descr")) == NULL)
		return kz_errf(e, "%s: .npy header has no descr", name);
	if (strncmp(v, "'|u1'", 5) != 0 && strncmp(v, "'<u1'", 5) != 0 &&
	    strncmp(v, "'u1'", 4) != 0 && strncmp(v, "'>u1'", 5) != 0) {
		int n = (int)strcspn(v, ",}");
		return kz_errf(e, "%s: .npy element type %.*s is not uint8 "
		    "('|u1')", name, n > 20 ? 20 : n, v);
	}
	if ((v = npy_value(h, len, "fortran_order")) == NULL)
		return kz_errf(e, "%s: .npy header has no fortran_order",
		    name);
	if (strncmp(v, "False", 5) != 0)
		return kz_errf(e, "%s: Fortran-order .npy arrays are not "
		    "supported", name);
	return 0;
}

/* Parses the tuple of the header dict h (len bytes, NUL-terminated)
 * under "shape" into a->dim and a->ndim, which start at 0.  0, or -1
 * when it is missing, malformed or longer than 4; the dimensions
 * themselves are left to check_dims. */
static int
npy_shape(const char *h, size_t len, const char *name, struct kz_array *a,
    struct kz_err *e)
{
	const char *v;

	if ((v = npy_value(h, len, "shape")) == NULL || *v != '(')
		return kz_errf(e, "%s: .npy header has no shape", name);
	for (v++;;) {
		char *next;
		unsigned long long d;

		while (*v == ' ')
			v++;
		if (*v == ')')
			break;
		if (*v < '0' || *v > '9')
			return kz_errf(e, "%s: .npy shape is malformed", name);
		d = strtoull(v, &next, 10);
		if (a->ndim == 4)
			return kz_errf(e, "%s: .npy array has more than 4 "
			    "dimensions", name);
		a->dim[a->ndim++] = d;
		v = next;
		while (*v == ' ')
			v++;
		if (*v == ',')
			v++;
		else if (*v != ')')
			return kz_errf(e, "%s: .npy shape is malformed", name);
	}
	return 0;
}

int
kz_npy_parse(const uint8_t *buf, size_t len, const char *name,
    struct kz_array *a, struct kz_err *e)
{
	/* Set for gcc, which cannot see that kz_errf returns -1. */
	size_t hlen = 0, off = 0;
	char hdr[4096];

	memset(a, 0, sizeof(*a));
	if (npy_header(buf, len, name, hdr, sizeof(hdr), &hlen, &off,
	    e) != 0 ||
	    npy_check_type(hdr, hlen, name, e) != 0 ||
	    npy_shape(hdr, hlen, name, a, e) != 0 ||
	    check_dims(a, name, e) != 0)
		return -1;
	if (len - off != kz_array_count(a))
		return kz_errf(e, "%s: .npy holds %zu data bytes, its shape "
		    "needs %llu", name, len - off,
		    (unsigned long long)kz_array_count(a));
	a->data = (uint8_t *)buf + off;
	return 0;
}

/* ---- .npz: a zip archive of .npy members ------------------------------ */

#define ZIP_LOCAL 0x04034b50
#define ZIP_CENTRAL 0x02014b50
#define ZIP_END 0x06054b50
/* The member numpy.savez names its first unnamed array. */
#define NPZ_MEMBER "arr_0.npy"

struct zip_member {
	uint16_t method, flags;
	uint32_t crc;
	uint64_t csize, usize, local;
};

/* Reads the zip64 extended sizes that replace 0xffffffff fields. */
static int
zip64_extra(const uint8_t *x, size_t n, struct zip_member *m)
{
	while (n >= 4) {
		unsigned id = get_le16(x), len = get_le16(x + 2);
		const uint8_t *p = x + 4;

		if (len > n - 4)
			return -1;
		if (id == 1) {
			size_t left = len;

			if (m->usize == 0xffffffff) {
				if (left < 8) return -1;
				m->usize = get_le64(p); p += 8; left -= 8;
			}
			if (m->csize == 0xffffffff) {
				if (left < 8) return -1;
				m->csize = get_le64(p); p += 8; left -= 8;
			}
			if (m->local == 0xffffffff) {
				if (left < 8) return -1;
				m->local = get_le64(p);
			}
			return 0;
		}
		x += 4 + len;
		n -= 4 + len;
	}
	return 0;
}

/* Finds the end of central directory record of the zip archive in buf
 * (len bytes), in its last 22 + 65535 (comment) bytes, and stores its
 * offset in *eocd.  0, or -1 when there is none. */
static int
zip_end(const uint8_t *buf, size_t len, const char *name, size_t *eocd,
    struct kz_err *e)
{
	size_t off;

	if (len < 22)
		return kz_errf(e, "%s: zip archive truncated (%zu bytes)",
		    name, len);
	for (off = len - 22;; off--) {
		if (get_le32(buf + off) == ZIP_END)
			break;
		if (off == 0 || len - off > 22 + 65535)
			return kz_errf(e, "%s: zip archive truncated or "
			    "damaged (no end of central directory)", name);
	}
	*eocd = off;
	return 0;
}

/* Looks NPZ_MEMBER up in the central directory of the archive in buf
 * whose end record is at eocd, and stores its entry, zip64 sizes
 * applied, in *m.  0, or -1 when the directory is damaged or lacks the
 * member (the message then names the first member, a hint to what the
 * archive holds instead). */
static int
zip_find(const uint8_t *buf, size_t eocd, const char *name,
    struct zip_member *m, struct kz_err *e)
{
	const char *want = NPZ_MEMBER;
	size_t cd, nentries;
	char first[64] = "";

	nentries = get_le16(buf + eocd + 10);
	cd = get_le32(buf + eocd + 16);
	if (cd > eocd)
		return kz_errf(e, "%s: zip central directory offset %zu is "
		    "past its end", name, cd);
	for (size_t i = 0; i < nentries; i++) {
		size_t nlen, xlen, clen;

		if (eocd - cd < 46 || get_le32(buf + cd) != ZIP_CENTRAL)
			return kz_errf(e, "%s: zip central directory entry "
			    "%zu damaged", name, i);
		memset(m, 0, sizeof(*m));
		m->flags = get_le16(buf + cd + 8);
		m->method = get_le16(buf + cd + 10);
		m->crc = get_le32(buf + cd + 16);
		m->csize = get_le32(buf + cd + 20);
		m->usize = get_le32(buf + cd + 24);
		nlen = get_le16(buf + cd + 28);
		xlen = get_le16(buf + cd + 30);
		clen = get_le16(buf + cd + 32);
		m->local = get_le32(buf + cd + 42);
		if (eocd - cd - 46 < nlen + xlen + clen)
			return kz_errf(e, "%s: zip central directory entry "
			    "%zu damaged", name, i);
		if (i == 0)
			snprintf(first, sizeof(first), "%.*s",
			    (int)(nlen < 60 ? nlen : 60), buf + cd + 46);
		if (nlen == strlen(want) &&
		    memcmp(buf + cd + 46, want, nlen) == 0) {
			if (zip64_extra(buf + cd + 46 + nlen, xlen, m) != 0)
				return kz_errf(e, "%s: zip64 extra field "
				    "damaged", name);
			return 0;
		}
		cd += 46 + nlen + xlen + clen;
	}
	return kz_errf(e, "%s: zip archive has no member %s%s%s%s", name,
	    want, *first ? " (first member: " : "", first,
	    *first ? ")" : "");
}

/* Checks that member m of the archive in buf (len bytes) can be
 * extracted: not encrypted, stored or deflated, its local header and
 * data inside buf, and the size it claims within KZ_MAX_ARRAY_BYTES and
 * what its compressed size can give.  Stores where its data starts in
 * *data.  0, or -1. */
static int
zip_check(const uint8_t *buf, size_t len, const struct zip_member *m,
    const char *name, size_t *data, struct kz_err *e)
{
	const char *want = NPZ_MEMBER;

	if (m->flags & 1)
		return kz_errf(e, "%s: %s is encrypted", name, want);
	if (m->method != 0 && m->method != 8)
		return kz_errf(e, "%s: %s uses compression method %u (only "
		    "stored and deflate are supported)", name, want,
		    m->method);
	if (m->local > len || len - m->local < 30 ||
	    get_le32(buf + m->local) != ZIP_LOCAL)
		return kz_errf(e, "%s: %s: local header damaged", name, want);
	*data = m->local + 30 + get_le16(buf + m->local + 26) +
	    get_le16(buf + m->local + 28);
	if (*data > len || len - *data < m->csize)
		return kz_errf(e, "%s: %s: compressed data truncated", name,
		    want);
	if (m->usize > KZ_MAX_ARRAY_BYTES + 4096)
		return kz_errf(e, "%s: %s claims %llu bytes, beyond the limit "
		    "of %llu", name, want, (unsigned long long)m->usize,
		    (unsigned long long)KZ_MAX_ARRAY_BYTES);
	if ((m->method == 0 && m->usize != m->csize) || (m->method == 8 &&
	    m->usize > m->csize * DEFLATE_MAX_RATIO + 1024))
		return kz_errf(e, "%s: %s claims %llu bytes from %llu "
		    "compressed bytes, more than deflate can produce (zip "
		    "bomb?)", name, want, (unsigned long long)m->usize,
		    (unsigned long long)m->csize);
	return 0;
}

/* Inflates member m's raw deflate data at src (m->csize bytes) into
 * out (m->usize bytes).  0, or -1 when zlib runs out of memory or the
 * data is damaged or does not give exactly m->usize bytes. */
static int
zip_inflate(const uint8_t *src, const struct zip_member *m, uint8_t *out,
    const char *name, struct kz_err *e)
{
	const char *want = NPZ_MEMBER;
	uint64_t done_in = 0, done_out = 0;
	int zr = Z_OK;
	z_stream z;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, -MAX_WBITS) != Z_OK)
		return kz_errf(e, "%s: zlib: out of memory", name);
	/* avail_in/out are 32-bit: feed in chunks. */
	while (zr == Z_OK) {
		uint64_t in_left = m->csize - done_in;
		uint64_t out_left = m->usize - done_out;

		z.next_in = (uint8_t *)src + done_in;
		z.avail_in = in_left > (1u << 30) ? (1u << 30) :
		    (unsigned)in_left;
		z.next_out = out + done_out;
		z.avail_out = out_left > (1u << 30) ? (1u << 30) :
		    (unsigned)out_left;
		unsigned ai = z.avail_in, ao = z.avail_out;
		zr = inflate(&z, Z_NO_FLUSH);
		done_in += ai - z.avail_in;
		done_out += ao - z.avail_out;
		if (zr == Z_BUF_ERROR && (done_in == m->csize ||
		    done_out == m->usize))
			break;
		if (zr == Z_BUF_ERROR)
			zr = Z_OK;
	}
	inflateEnd(&z);
	if (zr == Z_STREAM_END && done_out == m->usize)
		return 0;
	if (zr == Z_DATA_ERROR)
		return kz_errf(e, "%s: %s: deflate data damaged at compressed "
		    "byte %llu", name, want, (unsigned long long)done_in);
	return kz_errf(e, "%s: %s: deflate data does not match its size "
	    "(%llu of %llu bytes)", name, want, (unsigned long long)done_out,
	    (unsigned long long)m->usize);
}

/* Copies or inflates member m, whose data zip_check found at src, into
 * a new buffer *out of m->usize bytes and checks its CRC.  0, or -1
 * with nothing allocated.  libdeflate inflates the member in one call,
 * about twice as fast as zlib; zlib, run again only when libdeflate
 * fails, words the error (the place of the damage, or the size). */
static int
zip_extract(const uint8_t *src, const struct zip_member *m,
    const char *name, uint8_t **out, struct kz_err *e)
{
	struct libdeflate_decompressor *d;
	enum libdeflate_result r;
	uint8_t *b;

	if ((b = kz_alloc_big(m->usize)) == NULL)
		return kz_errf(e, "%s: out of memory", name);
	if (m->method == 0) {
		memcpy(b, src, m->usize);
	} else {
		if ((d = libdeflate_alloc_decompressor()) == NULL) {
			free(b);
			return kz_errf(e, "%s: out of memory", name);
		}
		r = libdeflate_deflate_decompress(d, src, m->csize, b,
		    m->usize, NULL);
		libdeflate_free_decompressor(d);
		if (r != LIBDEFLATE_SUCCESS && zip_inflate(src, m, b, name,
		    e) != 0) {
			free(b);
			return -1;
		}
	}
	if (KZ_CHECK_SUMS && libdeflate_crc32(0, b, m->usize) != m->crc) {
		free(b);
		return kz_errf(e, "%s: %s: CRC mismatch (damaged archive)",
		    name, NPZ_MEMBER);
	}
	*out = b;
	return 0;
}

int
kz_npz_parse(const uint8_t *buf, size_t len, const char *name,
    struct kz_array *a, struct kz_err *e)
{
	/* Set for gcc, which cannot see that kz_errf returns -1. */
	struct zip_member m = { 0 };
	size_t eocd = 0, data = 0;
	uint8_t *out = NULL;
	char member[300];

	memset(a, 0, sizeof(*a));
	if (zip_end(buf, len, name, &eocd, e) != 0 ||
	    zip_find(buf, eocd, name, &m, e) != 0 ||
	    zip_check(buf, len, &m, name, &data, e) != 0 ||
	    zip_extract(buf + data, &m, name, &out, e) != 0)
		return -1;
	snprintf(member, sizeof(member), "%s: %s", name, NPZ_MEMBER);
	if (kz_npy_parse(out, m.usize, member, a, e) != 0) {
		free(out);
		return -1;
	}
	a->base = out;
	return 0;
}

/* ---- MNIST idx ---------------------------------------------------------- */

int
kz_idx_parse(const uint8_t *buf, size_t len, const char *name,
    struct kz_array *a, struct kz_err *e)
{
	memset(a, 0, sizeof(*a));
	if (len < 4 || buf[0] != 0 || buf[1] != 0)
		return kz_errf(e, "%s: not an idx file (bad magic)", name);
	if (buf[2] != 0x08)
		return kz_errf(e, "%s: idx element type 0x%02x is not "
		    "unsigned byte (0x08)", name, buf[2]);
	a->ndim = buf[3];
	if (a->ndim < 1 || a->ndim > 4)
		return kz_errf(e, "%s: idx file has %d dimensions (1 to 4 "
		    "supported)", name, a->ndim);
	if (len < 4 + 4 * (size_t)a->ndim)
		return kz_errf(e, "%s: idx header truncated", name);
	for (int i = 0; i < a->ndim; i++)
		a->dim[i] = get_be32(buf + 4 + 4 * i);
	if (check_dims(a, name, e) != 0)
		return -1;
	size_t off = 4 + 4 * (size_t)a->ndim;
	if (len - off != kz_array_count(a))
		return kz_errf(e, "%s: idx file holds %zu data bytes, its "
		    "dimensions need %llu%s", name, len - off,
		    (unsigned long long)kz_array_count(a),
		    len - off < kz_array_count(a) ? " (truncated)" : "");
	a->data = (uint8_t *)buf + off;
	return 0;
}

/* ---- detection ---------------------------------------------------------- */

enum kz_format
kz_detect(const uint8_t *b, size_t len)
{
	if (len >= KZ_MAGIC_LEN && memcmp(b, KZ_MAGIC, KZ_MAGIC_LEN) == 0)
		return KZ_FMT_STREAM;
	if (len >= 4 && (memcmp(b, "PK\3\4", 4) == 0 ||
	    memcmp(b, "PK\5\6", 4) == 0))
		return KZ_FMT_NPZ;
	if (len >= 6 && memcmp(b, "\x93NUMPY", 6) == 0)
		return KZ_FMT_NPY;
	if (len >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0)
		return KZ_FMT_PNG;
	/* JPEG: start of image, then any marker (JFIF, Exif, tables). */
	if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
		return KZ_FMT_JPEG;
	/* idx: 0, 0, element type (0x08 ubyte ... 0x0E double), dims. */
	if (len >= 4 && b[0] == 0 && b[1] == 0 && b[2] >= 0x08 &&
	    b[2] <= 0x0E && b[2] != 0x0A && b[3] >= 1 && b[3] <= 4)
		return KZ_FMT_IDX;
	if (len >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7')
		return KZ_FMT_PNM;
	if (len >= 262 && memcmp(b + 257, "ustar", 5) == 0)
		return KZ_FMT_TAR;
	return KZ_FMT_UNKNOWN;
}

const char *
kz_format_name(enum kz_format f)
{
	static const char *names[] = {
		"unknown", "kz stream", "npz", "npy", "idx", "tar", "PNG",
		"PNM", "JPEG"
	};
	return names[f];
}

int
kz_array_load(struct kz_file *f, enum kz_format fmt, size_t limit,
    struct kz_array *a, struct kz_err *e)
{
	const char *name = kz_file_name(f);
	const uint8_t *zip;
	uint8_t *buf;
	size_t len;
	int rc;

	memset(a, 0, sizeof(*a));
	if (fmt == KZ_FMT_NPZ) {
		/* The archive is only read: parsed where it lies. */
		rc = kz_file_view(f, limit, &zip, &len, e) != 0 ||
		    kz_npz_parse(zip, len, name, a, e) != 0 ? -1 : 0;
	} else if ((rc = kz_file_slurp(f, limit, &buf, &len, e)) == 0) {
		if ((fmt == KZ_FMT_NPY ? kz_npy_parse : kz_idx_parse)(buf, len,
		    name, a, e) != 0) {
			free(buf);
			rc = -1;
		} else {
			a->base = buf;
		}
	}
	kz_file_close(f);
	return rc;
}

int
kz_array_load_path(const char *path, size_t limit, struct kz_array *a,
    struct kz_err *e)
{
	struct kz_file *f;
	struct stat st;
	const uint8_t *peek;
	size_t npeek;
	struct kz_err skip;	/* what is left for the caller to find */

	if (strcmp(path, "-") == 0 || stat(path, &st) != 0 ||
	    !S_ISREG(st.st_mode) || (f = kz_file_open(path, &skip)) == NULL)
		return 0;
	enum kz_format fmt = kz_file_peek(f, &peek, &npeek, &skip) == 0 ?
	    kz_detect(peek, npeek) : KZ_FMT_UNKNOWN;
	if (fmt != KZ_FMT_NPZ && fmt != KZ_FMT_NPY && fmt != KZ_FMT_IDX) {
		kz_file_close(f);
		return 0;
	}
	return kz_array_load(f, fmt, limit, a, e) == 0 ? 1 : -1;
}
