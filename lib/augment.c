/*
 * augment.c - training sets in memory and the random changes made to
 * their images as they are drawn.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "norm.h"
#include "train.h"

/* ---- datasets ---------------------------------------------------------- */

int
kz_dataset_read(const char *path, struct kz_dataset *d, struct kz_err *e)
{
	struct kz_reader *r;
	struct kz_record *rec;
	size_t cap = 0, npix;
	int rc;
	int32_t maxl = -1;

	memset(d, 0, sizeof(*d));
	if ((r = kz_reader_open(path, e)) == NULL)
		return -1;
	const struct kz_header *h = kz_reader_header(r);
	if (h->pixel != KZ_PIXEL_U8) {
		kz_errf(e, "%s: training needs 8-bit pixels", kz_reader_name(r));
		kz_reader_close(r);
		return -1;
	}
	d->width = h->width;
	d->height = h->height;
	npix = (size_t)h->width * h->height;
	if ((rec = kz_record_new(h)) == NULL) {
		kz_reader_close(r);
		return kz_errf(e, "out of memory");
	}
	while ((rc = kz_reader_next(r, rec, e)) == 1) {
		if (rec->label == KZ_LABEL_UNKNOWN) {
			kz_errf(e, "%s: record %zu has no label", kz_reader_name(r),
			    d->n);
			rc = -1;
			break;
		}
		if (d->n == cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			uint8_t *np = realloc(d->pixels, ncap * npix);
			int32_t *nl = np ? realloc(d->labels, ncap * 4) : NULL;

			if (np) d->pixels = np;
			if (nl) d->labels = nl;
			if (np == NULL || nl == NULL) {
				kz_errf(e, "out of memory");
				rc = -1;
				break;
			}
			cap = ncap;
		}
		memcpy(d->pixels + d->n * npix, rec->pixels, npix);
		d->labels[d->n++] = rec->label;
		maxl = rec->label > maxl ? rec->label : maxl;
	}
	d->nclasses = h->nclasses ? h->nclasses : (uint32_t)(maxl + 1);
	kz_record_free(rec);
	kz_reader_close(r);
	if (rc < 0) {
		kz_dataset_free(d);
		return -1;
	}
	if (d->n == 0) {
		kz_dataset_free(d);
		return kz_errf(e, "%s: no records", path);
	}
	return 0;
}

void
kz_dataset_free(struct kz_dataset *d)
{
	free(d->pixels);
	free(d->labels);
	memset(d, 0, sizeof(*d));
}

void
kz_dataset_stats(const struct kz_dataset *d, float *mean, float *std)
{
	uint64_t hist[256] = { 0 };
	size_t total = d->n * d->width * d->height;
	double s = 0, s2 = 0;

	for (size_t i = 0; i < total; i++)
		hist[d->pixels[i]]++;
	for (int v = 0; v < 256; v++) {
		double x = v / 255.0;

		s += hist[v] * x;
		s2 += hist[v] * x * x;
	}
	double m = s / total, var = s2 / total - m * m;
	*mean = (float)m;
	*std = var > 1e-12 ? (float)sqrt(var) : 1.0f;
}

/* ---- augmentation -------------------------------------------------------- */

int
kz_augment_parse(const char *s, struct kz_augment *a, struct kz_err *e)
{
	memset(a, 0, sizeof(*a));
	while (*s) {
		char key[32];
		size_t n = strcspn(s, "=");
		char *end;

		if (n == 0 || n >= sizeof(key) || s[n] != '=')
			return kz_errf(e, "augmentation \"%s\": expected "
			    "name=value", s);
		memcpy(key, s, n);
		key[n] = '\0';
		double v = strtod(s + n + 1, &end);
		if (end == s + n + 1 || (*end && *end != ',') || v < 0)
			return kz_errf(e, "augmentation %s: bad value", key);
		if (strcmp(key, "shift") == 0 && v <= 64) a->shift = (float)v;
		else if (strcmp(key, "rotate") == 0 && v <= 180) a->rotate = (float)v;
		else if (strcmp(key, "scale") == 0 && v < 1) a->scale = (float)v;
		else if (strcmp(key, "shear") == 0 && v <= 1) a->shear = (float)v;
		else if (strcmp(key, "elastic") == 0 && v <= 16) a->elastic = (float)v;
		else if (strcmp(key, "stroke") == 0 && v <= 1) a->stroke = (float)v;
		else if (strcmp(key, "cutout") == 0 && v <= 256) a->cutout = (int)v;
		else if (strcmp(key, "mixup") == 0 && v <= 10) a->mixup = (float)v;
		else
			return kz_errf(e, "augmentation \"%s\": unknown or out "
			    "of range (shift, rotate, scale, shear, elastic, "
			    "stroke, cutout, mixup)", key);
		s = *end ? end + 1 : end;
	}
	return 0;
}

KZ_HOT void
kz_augment_image(const uint8_t *src, int W, int H, const struct kz_augment *a,
    struct kz_rng *r, float mean, float std, float *dst)
{
	float bg = -mean / std, k = 1.0f / (255.0f * std);
	int warp = a->shift > 0 || a->rotate > 0 || a->scale > 0 ||
	    a->shear > 0 || a->elastic > 0;

	if (!warp) {
		kz_standardise(src, (size_t)W * H, mean, std, dst);
	} else {
		double th = (2 * kz_rng_uniform(r) - 1) * a->rotate * M_PI / 180;
		double sc = 1 + (2 * kz_rng_uniform(r) - 1) * a->scale;
		double tx = (2 * kz_rng_uniform(r) - 1) * a->shift;
		double ty = (2 * kz_rng_uniform(r) - 1) * a->shift;
		/* Drawn only when asked for, so that recipes without it
		 * keep their random sequences (and models). */
		double sh = a->shear > 0 ? (2 * kz_rng_uniform(r) - 1) *
		    a->shear : 0;
		float bend[KZ_BEND_FLOATS];

		if (a->elastic > 0)
			for (int i = 0; i < KZ_BEND_FLOATS; i++)
				bend[i] = (float)((2 * kz_rng_uniform(r) - 1) *
				    a->elastic);
		kz_norm_warp(src, (uint32_t)W, (uint32_t)H, cos(th) / sc,
		    sin(th) / sc, sh, tx, ty, a->elastic > 0 ? bend : NULL,
		    dst);
		for (size_t i = 0; i < (size_t)W * H; i++)
			dst[i] = dst[i] * k + bg;
	}
	/* After standardising, which is x * k + bg with k > 0: it keeps
	 * which pixel of a neighbourhood has the most or least ink, and
	 * moving part of the way commutes with it. */
	if (a->stroke > 0)
		kz_norm_stroke(dst, (uint32_t)W, (uint32_t)H,
		    (float)((2 * kz_rng_uniform(r) - 1) * a->stroke));
	if (a->cutout > 0) {
		int cx = (int)kz_rng_below(r, W), cy = (int)kz_rng_below(r, H);
		int h = a->cutout / 2;

		for (int y = cy - h; y < cy - h + a->cutout; y++)
			for (int x = cx - h; x < cx - h + a->cutout; x++)
				if (x >= 0 && x < W && y >= 0 && y < H)
					dst[y * W + x] = bg;
	}
}
