/*
 * glyphs.c - a similar-glyphs index: the features a net gives its
 * training images, kept with the images and their labels, so that a
 * character's look-alikes are one sgemm away (kz-similar(1)).
 *
 * The file, little-endian:
 *   "KZGLYPH1"  magic
 *   u32 × 6     model CRC, n, features F, width, height, classes
 *   i32[n]      labels
 *   u64[n]      the records' indices in the stream indexed
 *   f32[n][F]   features, each of unit length
 *   u8[n][w*h]  images
 *   u32         CRC-32 of everything before
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "model.h"
#include "net.h"
#include "util.h"

#define GLYPHS_MAGIC "KZGLYPH1"
#define GLYPHS_HEADER (8 + 6 * 4)
#define GLYPHS_MAX_BYTES ((size_t)16 << 30)
#define GLYPHS_MAX_FEATURES 65536

uint32_t
kz_model_params_crc(const struct kz_model *m)
{
	const struct kz_net *n = m->net;
	uLong c = crc32(0, Z_NULL, 0);

	/* What the features depend on: the parameters and the BN
	 * statistics (as fp32 in memory, whatever the file stored). */
	c = crc32_z(c, (const Bytef *)n->params, n->nparams * sizeof(float));
	c = crc32_z(c, (const Bytef *)n->state, n->nstate * sizeof(float));
	return (uint32_t)c;
}

void
kz_glyphs_free(struct kz_glyphs *g)
{
	free(g->label);
	free(g->index);
	free(g->feat);
	free(g->pixels);
	memset(g, 0, sizeof(*g));
}

/* Bytes of the file of g's counts, or 0 when it would overflow. */
static size_t
glyphs_size(uint64_t n, uint64_t F, uint64_t npix)
{
	uint64_t per = 4 + 8 + 4 * F + npix;

	if (n > GLYPHS_MAX_BYTES / per)
		return 0;
	return (size_t)(GLYPHS_HEADER + n * per + 4);
}

int
kz_glyphs_write(const struct kz_glyphs *g, const char *path,
    struct kz_err *e)
{
	struct kz_out o;
	uint8_t h[GLYPHS_HEADER], b[8];
	uLong crc = crc32(0, Z_NULL, 0);
	size_t npix = (size_t)g->width * g->height;
	uint32_t v[6] = { g->model_crc, (uint32_t)g->n, (uint32_t)g->F,
	    g->width, g->height, g->nclasses };
	int rc = 0;

	memcpy(h, GLYPHS_MAGIC, 8);
	for (int i = 0; i < 6; i++)
		put_le32(h + 8 + 4 * i, v[i]);
	if (kz_out_open(&o, path, e) != 0)
		return -1;
#define PUT(p, len) do { \
	if (rc == 0) { \
		crc = crc32_z(crc, (const Bytef *)(p), (len)); \
		rc = kz_out_write(&o, (p), (len), e); \
	} \
} while (0)
	PUT(h, sizeof(h));
	for (size_t i = 0; i < g->n; i++) {
		put_le32(b, (uint32_t)g->label[i]);
		PUT(b, 4);
	}
	for (size_t i = 0; i < g->n; i++) {
		put_le64(b, g->index[i]);
		PUT(b, 8);
	}
	for (size_t i = 0; i < g->n * (size_t)g->F; i++) {
		put_lef32(b, g->feat[i]);
		PUT(b, 4);
	}
	PUT(g->pixels, g->n * npix);
#undef PUT
	put_le32(b, (uint32_t)crc);
	if (rc == 0)
		rc = kz_out_write(&o, b, 4, e);
	if (rc != 0) {
		kz_out_abort(&o);
		return -1;
	}
	return kz_out_close(&o, e);
}

/* Checks the header of a file of len bytes at buf and fills g's
 * counts from it. */
static int
glyphs_header(const uint8_t *buf, size_t len, const char *path,
    struct kz_glyphs *g, struct kz_err *e)
{
	if (len < GLYPHS_HEADER + 4 || memcmp(buf, GLYPHS_MAGIC, 8) != 0)
		return kz_errf(e, "%s: not a similar-glyphs index (no %s "
		    "magic)", path, GLYPHS_MAGIC);
	g->model_crc = get_le32(buf + 8);
	g->n = get_le32(buf + 12);
	g->F = (int)get_le32(buf + 16);
	g->width = get_le32(buf + 20);
	g->height = get_le32(buf + 24);
	g->nclasses = get_le32(buf + 28);
	if (g->n == 0 || g->F < 1 || g->F > GLYPHS_MAX_FEATURES ||
	    g->width < 1 || g->width > KZ_MAX_DIM || g->height < 1 ||
	    g->height > KZ_MAX_DIM || g->nclasses > KZ_MAX_CLASSES)
		return kz_errf(e, "%s: header: %zu images of %d features, "
		    "%ux%u, %u classes: out of range", path, g->n, g->F,
		    g->width, g->height, g->nclasses);
	size_t want = glyphs_size(g->n, (uint64_t)g->F,
	    (uint64_t)g->width * g->height);
	if (want != len)
		return kz_errf(e, "%s: %zu bytes, its header needs %zu "
		    "(truncated or damaged)", path, len, want);
	if (KZ_CHECK_SUMS && crc32_z(crc32(0, Z_NULL, 0), buf, len - 4) !=
	    get_le32(buf + len - 4))
		return kz_errf(e, "%s: CRC mismatch (damaged)", path);
	return 0;
}

/* Reads the file at path, of at most GLYPHS_MAX_BYTES, in one buffer
 * of its size: an index is hundreds of megabytes, never gzipped, and
 * kz_slurp's growing buffer through zlib took seconds. */
static int
read_whole(const char *path, uint8_t **bufp, size_t *lenp, struct kz_err *e)
{
	struct stat st;
	uint8_t *buf;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return kz_errf(e, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > GLYPHS_MAX_BYTES) {
		close(fd);
		return kz_errf(e, "%s: not a regular file of at most %zu bytes",
		    path, GLYPHS_MAX_BYTES);
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return kz_errf(e, "%s: out of memory", path);
	}
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			kz_errf(e, "%s: %s", path, r < 0 ? strerror(errno) :
			    "shorter than its size");
			free(buf);
			close(fd);
			return -1;
		}
		len += (size_t)r;
	}
	close(fd);
	*bufp = buf;
	*lenp = len;
	return 0;
}

int
kz_glyphs_read(const char *path, struct kz_glyphs *g, struct kz_err *e)
{
	uint8_t *buf = NULL;
	size_t len = 0, npix;
	const uint8_t *p;

	memset(g, 0, sizeof(*g));
	if (read_whole(path, &buf, &len, e) != 0)
		return -1;
	if (glyphs_header(buf, len, path, g, e) != 0) {
		free(buf);
		return -1;
	}
	npix = (size_t)g->width * g->height;
	if ((g->label = malloc(g->n * sizeof(*g->label))) == NULL ||
	    (g->index = malloc(g->n * sizeof(*g->index))) == NULL ||
	    (g->feat = malloc(g->n * (size_t)g->F * sizeof(float))) ==
	    NULL || (g->pixels = malloc(g->n * npix)) == NULL) {
		free(buf);
		kz_glyphs_free(g);
		return kz_errf(e, "%s: out of memory", path);
	}
	p = buf + GLYPHS_HEADER;
	for (size_t i = 0; i < g->n; i++, p += 4) {
		g->label[i] = (int32_t)get_le32(p);
		if (g->label[i] < -1 || (g->label[i] >= 0 &&
		    (uint32_t)g->label[i] >= g->nclasses)) {
			kz_errf(e, "%s: image %zu: label %d is not one of its "
			    "%u classes", path, i, g->label[i], g->nclasses);
			free(buf);
			kz_glyphs_free(g);
			return -1;
		}
	}
	for (size_t i = 0; i < g->n; i++, p += 8)
		g->index[i] = get_le64(p);
	for (size_t i = 0; i < g->n * (size_t)g->F; i++, p += 4)
		if (!isfinite(g->feat[i] = get_lef32(p))) {
			kz_errf(e, "%s: image %zu: feature %zu is not a finite "
			    "number", path, i / g->F, i % g->F);
			free(buf);
			kz_glyphs_free(g);
			return -1;
		}
	memcpy(g->pixels, p, g->n * npix);
	free(buf);
	return 0;
}
