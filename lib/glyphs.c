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
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>

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
	uint32_t c;

	/* What the features depend on: the parameters and the BN
	 * statistics (as fp32 in memory, whatever the file stored). */
	c = libdeflate_crc32(0, n->params, n->nparams * sizeof(float));
	return libdeflate_crc32(c, n->state, n->nstate * sizeof(float));
}

void
kz_glyphs_free(struct kz_glyphs *g)
{
	free(g->label);
	free(g->index);
	if (g->file == NULL) {
		free(g->feat);
		free(g->pixels);
	}
	free(g->feat_copy);
	kz_file_close(g->file);
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
	uint32_t crc = 0;
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
		crc = libdeflate_crc32(crc, (p), (len)); \
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
	put_le32(b, crc);
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
	if (KZ_CHECK_SUMS && libdeflate_crc32(0, buf, len - 4) !=
	    get_le32(buf + len - 4))
		return kz_errf(e, "%s: CRC mismatch (damaged)", path);
	return 0;
}

int
kz_glyphs_read(const char *path, struct kz_glyphs *g, struct kz_err *e)
{
	const uint16_t one = 1;
	const uint8_t *buf, *p;
	struct kz_file *f;
	size_t len;

	memset(g, 0, sizeof(*g));
	/* The file is mapped, not read (kz_file), and the features and
	 * images are used where they lie: an index is hundreds of
	 * megabytes, and copying it into fresh memory took seconds. */
	if ((f = kz_file_open(path, e)) == NULL)
		return -1;
	if (kz_file_view(f, GLYPHS_MAX_BYTES, &buf, &len, e) != 0 ||
	    glyphs_header(buf, len, path, g, e) != 0) {
		kz_file_close(f);
		return -1;
	}
	g->file = f;
	if ((g->label = malloc(g->n * sizeof(*g->label))) == NULL ||
	    (g->index = malloc(g->n * sizeof(*g->index))) == NULL) {
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
			kz_glyphs_free(g);
			return -1;
		}
	}
	for (size_t i = 0; i < g->n; i++, p += 8)
		g->index[i] = get_le64(p);
	size_t nfeat = g->n * (size_t)g->F;
	if (*(const uint8_t *)&one == 1 && (uintptr_t)p % sizeof(float) == 0) {
		g->feat = (float *)p;
	} else {
		if ((g->feat_copy = malloc(nfeat * sizeof(float))) == NULL) {
			kz_glyphs_free(g);
			return kz_errf(e, "%s: out of memory", path);
		}
		for (size_t i = 0; i < nfeat; i++)
			g->feat_copy[i] = get_lef32(p + 4 * i);
		g->feat = g->feat_copy;
	}
	for (size_t i = 0; i < nfeat; i++)
		if (!isfinite(g->feat[i])) {
			kz_errf(e, "%s: image %zu: feature %zu is not a finite "
			    "number", path, i / g->F, i % g->F);
			kz_glyphs_free(g);
			return -1;
		}
	g->pixels = (uint8_t *)p + nfeat * 4;
	return 0;
}
