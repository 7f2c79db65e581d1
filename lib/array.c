/* array.c - uint8 arrays from .npy, .npz (zip) and MNIST idx files. */
#include <stdlib.h>
#include <string.h>
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
		n *= a->dim[i];
		if (n > KZ_MAX_ARRAY_BYTES)
			return kz_errf(e, "%s: array of more than %llu bytes "
			    "refused", name,
			    (unsigned long long)KZ_MAX_ARRAY_BYTES);
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

int
kz_npy_parse(const uint8_t *buf, size_t len, const char *name,
    struct kz_array *a, struct kz_err *e)
{
	size_t hlen, off;
	const char *h, *v, *end;
	char hdr[4096];

	memset(a, 0, sizeof(*a));
	if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
		return kz_errf(e, "%s: not a .npy array (bad magic)", name);
	if (buf[6] == 1) {
		hlen = get_le16(buf + 8);
		off = 10;
	} else if (buf[6] == 2 || buf[6] == 3) {
		if (len < 12)
			return kz_errf(e, "%s: .npy header truncated", name);
		hlen = get_le32(buf + 8);
		off = 12;
	} else {
		return kz_errf(e, "%s: .npy version %u.%u not supported",
		    name, buf[6], buf[7]);
	}
	if (hlen >= sizeof(hdr))
		return kz_errf(e, "%s: .npy header of %zu bytes is too long",
		    name, hlen);
	if (len - off < hlen)
		return kz_errf(e, "%s: .npy header truncated", name);
	memcpy(hdr, buf + off, hlen);
	hdr[hlen] = '\0';
	h = hdr;
	off += hlen;

	if ((v = npy_value(h, hlen, "descr")) == NULL)
		return kz_errf(e, "%s: .npy header has no descr", name);
	if (strncmp(v, "'|u1'", 5) != 0 && strncmp(v, "'<u1'", 5) != 0 &&
	    strncmp(v, "'u1'", 4) != 0 && strncmp(v, "'>u1'", 5) != 0) {
		int n = (int)strcspn(v, ",}");
		return kz_errf(e, "%s: .npy element type %.*s is not uint8 "
		    "('|u1')", name, n > 20 ? 20 : n, v);
	}
	if ((v = npy_value(h, hlen, "fortran_order")) == NULL)
		return kz_errf(e, "%s: .npy header has no fortran_order",
		    name);
	if (strncmp(v, "False", 5) != 0)
		return kz_errf(e, "%s: Fortran-order .npy arrays are not "
		    "supported", name);
	if ((v = npy_value(h, hlen, "shape")) == NULL || *v != '(')
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
	end = v;
	(void)end;
	if (check_dims(a, name, e) != 0)
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

int
kz_npz_parse(const uint8_t *buf, size_t len, const char *name,
    struct kz_array *a, struct kz_err *e)
{
	const char *want = "arr_0.npy";
	size_t eocd, cd, i, nentries;
	struct zip_member m;
	int found = 0;
	char first[64] = "";
	uint8_t *out;
	z_stream z;

	memset(a, 0, sizeof(*a));
	if (len < 22)
		return kz_errf(e, "%s: zip archive truncated (%zu bytes)",
		    name, len);
	/* The end record sits in the last 22 + 65535 (comment) bytes. */
	for (eocd = len - 22;; eocd--) {
		if (get_le32(buf + eocd) == ZIP_END)
			break;
		if (eocd == 0 || len - eocd > 22 + 65535)
			return kz_errf(e, "%s: zip archive truncated or "
			    "damaged (no end of central directory)", name);
	}
	nentries = get_le16(buf + eocd + 10);
	cd = get_le32(buf + eocd + 16);
	if (cd > eocd)
		return kz_errf(e, "%s: zip central directory offset %zu is "
		    "past its end", name, cd);
	for (i = 0; i < nentries; i++) {
		size_t nlen, xlen, clen;

		if (eocd - cd < 46 || get_le32(buf + cd) != ZIP_CENTRAL)
			return kz_errf(e, "%s: zip central directory entry "
			    "%zu damaged", name, i);
		memset(&m, 0, sizeof(m));
		m.flags = get_le16(buf + cd + 8);
		m.method = get_le16(buf + cd + 10);
		m.crc = get_le32(buf + cd + 16);
		m.csize = get_le32(buf + cd + 20);
		m.usize = get_le32(buf + cd + 24);
		nlen = get_le16(buf + cd + 28);
		xlen = get_le16(buf + cd + 30);
		clen = get_le16(buf + cd + 32);
		m.local = get_le32(buf + cd + 42);
		if (eocd - cd - 46 < nlen + xlen + clen)
			return kz_errf(e, "%s: zip central directory entry "
			    "%zu damaged", name, i);
		if (i == 0)
			snprintf(first, sizeof(first), "%.*s",
			    (int)(nlen < 60 ? nlen : 60), buf + cd + 46);
		if (nlen == strlen(want) &&
		    memcmp(buf + cd + 46, want, nlen) == 0) {
			if (zip64_extra(buf + cd + 46 + nlen, xlen, &m) != 0)
				return kz_errf(e, "%s: zip64 extra field "
				    "damaged", name);
			found = 1;
			break;
		}
		cd += 46 + nlen + xlen + clen;
	}
	if (!found)
		return kz_errf(e, "%s: zip archive has no member %s%s%s%s",
		    name, want, *first ? " (first member: " : "", first,
		    *first ? ")" : "");
	if (m.flags & 1)
		return kz_errf(e, "%s: %s is encrypted", name, want);
	if (m.method != 0 && m.method != 8)
		return kz_errf(e, "%s: %s uses compression method %u (only "
		    "stored and deflate are supported)", name, want, m.method);
	if (m.local > len || len - m.local < 30 ||
	    get_le32(buf + m.local) != ZIP_LOCAL)
		return kz_errf(e, "%s: %s: local header damaged", name, want);
	size_t data = m.local + 30 + get_le16(buf + m.local + 26) +
	    get_le16(buf + m.local + 28);
	if (data > len || len - data < m.csize)
		return kz_errf(e, "%s: %s: compressed data truncated", name,
		    want);
	if (m.usize > KZ_MAX_ARRAY_BYTES + 4096)
		return kz_errf(e, "%s: %s claims %llu bytes, beyond the limit "
		    "of %llu", name, want, (unsigned long long)m.usize,
		    (unsigned long long)KZ_MAX_ARRAY_BYTES);
	if ((m.method == 0 && m.usize != m.csize) || (m.method == 8 &&
	    m.usize > m.csize * DEFLATE_MAX_RATIO + 1024))
		return kz_errf(e, "%s: %s claims %llu bytes from %llu "
		    "compressed bytes, more than deflate can produce (zip "
		    "bomb?)", name, want, (unsigned long long)m.usize,
		    (unsigned long long)m.csize);
	if ((out = malloc(m.usize ? m.usize : 1)) == NULL)
		return kz_errf(e, "%s: out of memory", name);
	if (m.method == 0) {
		memcpy(out, buf + data, m.usize);
	} else {
		memset(&z, 0, sizeof(z));
		if (inflateInit2(&z, -MAX_WBITS) != Z_OK) {
			free(out);
			return kz_errf(e, "%s: zlib: out of memory", name);
		}
		uint64_t done_in = 0, done_out = 0;
		int zr = Z_OK;
		/* avail_in/out are 32-bit: feed in chunks. */
		while (zr == Z_OK) {
			uint64_t in_left = m.csize - done_in;
			uint64_t out_left = m.usize - done_out;

			z.next_in = (uint8_t *)buf + data + done_in;
			z.avail_in = in_left > (1u << 30) ? (1u << 30) :
			    (unsigned)in_left;
			z.next_out = out + done_out;
			z.avail_out = out_left > (1u << 30) ? (1u << 30) :
			    (unsigned)out_left;
			unsigned ai = z.avail_in, ao = z.avail_out;
			zr = inflate(&z, Z_NO_FLUSH);
			done_in += ai - z.avail_in;
			done_out += ao - z.avail_out;
			if (zr == Z_BUF_ERROR && (done_in == m.csize ||
			    done_out == m.usize))
				break;
			if (zr == Z_BUF_ERROR)
				zr = Z_OK;
		}
		inflateEnd(&z);
		if (zr != Z_STREAM_END || done_out != m.usize) {
			free(out);
			if (zr == Z_DATA_ERROR)
				return kz_errf(e, "%s: %s: deflate data "
				    "damaged at compressed byte %llu", name,
				    want, (unsigned long long)done_in);
			return kz_errf(e, "%s: %s: deflate data does not "
			    "match its size (%llu of %llu bytes)", name, want,
			    (unsigned long long)done_out,
			    (unsigned long long)m.usize);
		}
	}
	uLong crc = 0;
	for (uint64_t off = 0; off < m.usize; off += 1u << 30) {
		uint64_t n = m.usize - off;
		crc = crc32(crc, out + off, n > (1u << 30) ? (1u << 30) :
		    (unsigned)n);
	}
	if (crc != m.crc) {
		free(out);
		return kz_errf(e, "%s: %s: CRC mismatch (damaged archive)",
		    name, want);
	}
	char member[300];
	snprintf(member, sizeof(member), "%s: %s", name, want);
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
		"PNM"
	};
	return names[f];
}
