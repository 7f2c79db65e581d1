/*
 * norm.c - making a character image look like the datasets' images:
 * white ink on black, cropped, deskewed, fitted and centred.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kz.h"

int
kz_norm_polarity(const struct kz_image *img)
{
	uint64_t s = 0, n = 0;
	uint32_t w = img->width, h = img->height;

	for (uint32_t x = 0; x < w; x++) {
		s += img->pixels[x] + img->pixels[(size_t)(h - 1) * w + x];
		n += 2;
	}
	for (uint32_t y = 0; y < h; y++) {
		s += img->pixels[(size_t)y * w] + img->pixels[(size_t)y * w +
		    w - 1];
		n += 2;
	}
	/* A light border means dark ink on paper. */
	return s > 128 * n;
}

void
kz_norm_invert(struct kz_image *img)
{
	size_t n = (size_t)img->width * img->height;

	for (size_t i = 0; i < n; i++)
		img->pixels[i] = 255 - img->pixels[i];
}

void
kz_norm_stretch(struct kz_image *img)
{
	size_t n = (size_t)img->width * img->height;
	uint32_t w = img->width, h = img->height;
	uint64_t hist[256] = { 0 }, nb = 0, seen = 0;
	uint8_t lo = 0, hi = 0;

	/* The background level: 90% of the border is at or below it, so
	 * that the paper's grain goes to black too. */
	for (uint32_t x = 0; x < w; x++) {
		hist[img->pixels[x]]++;
		hist[img->pixels[(size_t)(h - 1) * w + x]]++;
		nb += 2;
	}
	for (uint32_t y = 0; y < h; y++) {
		hist[img->pixels[(size_t)y * w]]++;
		hist[img->pixels[(size_t)y * w + w - 1]]++;
		nb += 2;
	}
	for (int v = 0; v < 256; v++) {
		seen += hist[v];
		if (seen * 10 >= nb * 9) {
			lo = (uint8_t)v;
			break;
		}
	}
	for (size_t i = 0; i < n; i++)
		hi = img->pixels[i] > hi ? img->pixels[i] : hi;
	if (hi <= lo)
		return;
	for (size_t i = 0; i < n; i++)
		img->pixels[i] = img->pixels[i] <= lo ? 0 :
		    (uint8_t)((img->pixels[i] - lo) * 255 / (hi - lo));
}

void
kz_norm_level(struct kz_image *img, uint8_t threshold, int percent,
    uint8_t floor)
{
	size_t n = (size_t)img->width * img->height;
	uint64_t hist[256] = { 0 }, ink = 0, seen = 0;
	int level = 255;

	for (size_t i = 0; i < n; i++)
		hist[img->pixels[i]]++;
	for (int v = threshold + 1; v < 256; v++)
		ink += hist[v];
	if (ink == 0)
		return;
	/* The ink's percent-th percentile becomes white. */
	for (int v = threshold + 1; v < 256; v++) {
		seen += hist[v];
		if (seen * 100 >= ink * (uint64_t)percent) {
			level = v;
			break;
		}
	}
	for (size_t i = 0; i < n; i++) {
		unsigned v = img->pixels[i] * 255u / (unsigned)level;

		img->pixels[i] = v <= floor ? 0 : v > 255 ? 255 : (uint8_t)v;
	}
}

int
kz_norm_bbox(const struct kz_image *img, uint8_t threshold, uint32_t box[4])
{
	uint32_t x0 = img->width, y0 = img->height, x1 = 0, y1 = 0;

	for (uint32_t y = 0; y < img->height; y++)
		for (uint32_t x = 0; x < img->width; x++)
			if (img->pixels[(size_t)y * img->width + x] > threshold) {
				x0 = x < x0 ? x : x0;
				x1 = x > x1 ? x : x1;
				y0 = y < y0 ? y : y0;
				y1 = y > y1 ? y : y1;
			}
	if (x0 > x1)
		return -1;
	box[0] = x0;
	box[1] = y0;
	box[2] = x1 - x0 + 1;
	box[3] = y1 - y0 + 1;
	return 0;
}

int
kz_norm_crop(struct kz_image *img, const uint32_t box[4])
{
	uint8_t *p = malloc((size_t)box[2] * box[3]);

	if (p == NULL)
		return -1;
	for (uint32_t y = 0; y < box[3]; y++)
		memcpy(p + (size_t)y * box[2], img->pixels + (size_t)(box[1] +
		    y) * img->width + box[0], box[2]);
	free(img->pixels);
	img->pixels = p;
	img->width = box[2];
	img->height = box[3];
	return 0;
}

/* Resamples one axis: n source samples (stride ss) into m (stride ds).
 * Shrinking averages the covered area; growing interpolates linearly. */
static void
resample_line(const float *s, size_t n, size_t ss, float *d, size_t m,
    size_t ds)
{
	if (m <= n) {
		double scale = (double)n / m;

		for (size_t j = 0; j < m; j++) {
			double a = j * scale, b = a + scale, sum = 0;

			for (size_t i = (size_t)a; i < n && i < b; i++) {
				double lo = i > a ? i : a, hi = i + 1 < b ? i + 1 : b;

				sum += (hi - lo) * s[i * ss];
			}
			d[j * ds] = (float)(sum / scale);
		}
		return;
	}
	double scale = (double)n / m;
	for (size_t j = 0; j < m; j++) {
		double x = (j + 0.5) * scale - 0.5;
		long i = (long)floor(x);
		double f = x - i;
		float a = s[(size_t)(i < 0 ? 0 : i) * ss];
		float b = s[(size_t)(i + 1 >= (long)n ? (long)n - 1 : i + 1) * ss];

		d[j * ds] = (float)((1 - f) * a + f * b);
	}
}

int
kz_norm_resize_pixels(const uint8_t *src, size_t n, uint32_t sw,
    uint32_t sh, uint8_t *dst, uint32_t w, uint32_t h)
{
	size_t sd = (size_t)sw * sh, d = (size_t)w * h;
	float *a = malloc(sd * sizeof(float));
	float *b = malloc((size_t)w * sh * sizeof(float));
	float *c = malloc(d * sizeof(float));

	if (a == NULL || b == NULL || c == NULL) {
		free(a); free(b); free(c);
		return -1;
	}
	for (size_t k = 0; k < n; k++, src += sd, dst += d) {
		for (size_t i = 0; i < sd; i++)
			a[i] = src[i];
		for (size_t y = 0; y < sh; y++)
			resample_line(a + y * sw, sw, 1, b + y * w, w, 1);
		for (size_t x = 0; x < w; x++)
			resample_line(b + x, sh, w, c + x, h, w);
		for (size_t i = 0; i < d; i++) {
			float v = c[i] + 0.5f;
			dst[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
		}
	}
	free(a);
	free(b);
	free(c);
	return 0;
}

int
kz_norm_resize(struct kz_image *img, uint32_t w, uint32_t h)
{
	uint8_t *p = malloc((size_t)w * h);

	if (p == NULL || kz_norm_resize_pixels(img->pixels, 1, img->width,
	    img->height, p, w, h) != 0) {
		free(p);
		return -1;
	}
	free(img->pixels);
	img->pixels = p;
	img->width = w;
	img->height = h;
	return 0;
}

/* Bilinear sample, black outside. */
static float
sample(const struct kz_image *img, double x, double y)
{
	long x0 = (long)floor(x), y0 = (long)floor(y);
	double fx = x - x0, fy = y - y0, v = 0;

	for (int j = 0; j < 2; j++)
		for (int i = 0; i < 2; i++) {
			long xi = x0 + i, yi = y0 + j;

			if (xi >= 0 && xi < (long)img->width && yi >= 0 &&
			    yi < (long)img->height)
				v += (i ? fx : 1 - fx) * (j ? fy : 1 - fy) *
				    img->pixels[(size_t)yi * img->width + xi];
		}
	return (float)v;
}

/* Centre of mass and central second moments of the ink. */
static int
moments(const struct kz_image *img, double *cx, double *cy, double *mu11,
    double *mu02)
{
	double m = 0, sx = 0, sy = 0, sxy = 0, syy = 0;

	for (uint32_t y = 0; y < img->height; y++)
		for (uint32_t x = 0; x < img->width; x++) {
			double v = img->pixels[(size_t)y * img->width + x];

			m += v;
			sx += v * x;
			sy += v * y;
			sxy += v * x * y;
			syy += v * y * y;
		}
	if (m == 0)
		return -1;
	*cx = sx / m;
	*cy = sy / m;
	*mu11 = sxy / m - *cx * *cy;
	*mu02 = syy / m - *cy * *cy;
	return 0;
}

int
kz_norm_deskew(struct kz_image *img)
{
	double cx, cy, mu11, mu02;
	size_t n = (size_t)img->width * img->height;

	if (moments(img, &cx, &cy, &mu11, &mu02) != 0 || mu02 < 1e-6)
		return 0;
	/* Shear x by the slant so that the ink's principal axis stands
	 * upright: x' = x + skew * (y - cy). */
	double skew = mu11 / mu02;
	uint8_t *p = malloc(n);
	if (p == NULL)
		return -1;
	for (uint32_t y = 0; y < img->height; y++)
		for (uint32_t x = 0; x < img->width; x++) {
			float v = sample(img, x + skew * (y - cy), y) + 0.5f;
			p[(size_t)y * img->width + x] = (uint8_t)(v > 255 ? 255 : v);
		}
	free(img->pixels);
	img->pixels = p;
	return 0;
}

int
kz_norm_fit(struct kz_image *img, uint32_t w, uint32_t h, uint32_t margin)
{
	uint32_t iw = w > 2 * margin ? w - 2 * margin : 1;
	uint32_t ih = h > 2 * margin ? h - 2 * margin : 1;
	double s = (double)iw / img->width;
	uint32_t nw, nh;

	if ((double)ih / img->height < s)
		s = (double)ih / img->height;
	nw = (uint32_t)(img->width * s + 0.5);
	nh = (uint32_t)(img->height * s + 0.5);
	nw = nw < 1 ? 1 : nw > w ? w : nw;
	nh = nh < 1 ? 1 : nh > h ? h : nh;
	if (kz_norm_resize(img, nw, nh) != 0)
		return -1;
	uint8_t *p = calloc((size_t)w * h, 1);
	if (p == NULL)
		return -1;
	uint32_t ox = (w - nw) / 2, oy = (h - nh) / 2;
	for (uint32_t y = 0; y < nh; y++)
		memcpy(p + (size_t)(oy + y) * w + ox, img->pixels +
		    (size_t)y * nw, nw);
	free(img->pixels);
	img->pixels = p;
	img->width = w;
	img->height = h;
	return 0;
}

int
kz_norm_centre(struct kz_image *img)
{
	double cx, cy, mu11, mu02;
	size_t n = (size_t)img->width * img->height;

	if (moments(img, &cx, &cy, &mu11, &mu02) != 0)
		return 0;
	double dx = cx - (img->width - 1) / 2.0, dy = cy - (img->height - 1) /
	    2.0;
	uint8_t *p = malloc(n);
	if (p == NULL)
		return -1;
	for (uint32_t y = 0; y < img->height; y++)
		for (uint32_t x = 0; x < img->width; x++) {
			float v = sample(img, x + dx, y + dy) + 0.5f;
			p[(size_t)y * img->width + x] = (uint8_t)(v > 255 ? 255 : v);
		}
	free(img->pixels);
	img->pixels = p;
	return 0;
}

void
kz_norm_shift(const uint8_t *src, uint32_t w, uint32_t h, int dx, int dy,
    uint8_t *dst)
{
	for (uint32_t y = 0; y < h; y++) {
		long sy = (long)y - dy;
		uint8_t *d = dst + (size_t)y * w;

		memset(d, 0, w);
		if (sy < 0 || sy >= (long)h)
			continue;
		for (uint32_t x = 0; x < w; x++) {
			long sx = (long)x - dx;

			if (sx >= 0 && sx < (long)w)
				d[x] = src[(size_t)sy * w + sx];
		}
	}
}

/* The value at (sx, sy) of src (w x h), bilinear from the four pixels
 * about it; those beyond the edge count as 0. */
static double
bilinear(const uint8_t *src, uint32_t w, uint32_t h, double sx, double sy)
{
	long x0 = (long)floor(sx), y0 = (long)floor(sy);
	double fx = sx - x0, fy = sy - y0, v = 0;

	for (int j = 0; j < 2; j++)
		for (int i = 0; i < 2; i++) {
			long xi = x0 + i, yi = y0 + j;
			double wgt = (i ? fx : 1 - fx) * (j ? fy : 1 - fy);

			if (xi >= 0 && xi < (long)w && yi >= 0 && yi < (long)h)
				v += wgt * src[(size_t)yi * w + xi];
		}
	return v;
}

/* Adds to (*sx, *sy) the bend at grid position (u, v), 0 to
 * KZ_BEND_CELLS each.  The last row and column of pixels sit on the
 * far edge of the last cell, not in a cell beyond the grid. */
static void
bend_at(const float *bend, double u, double v, double *sx, double *sy)
{
	int i = u < KZ_BEND_CELLS ? (int)u : KZ_BEND_CELLS - 1;
	int j = v < KZ_BEND_CELLS ? (int)v : KZ_BEND_CELLS - 1;
	double fu = u - i, fv = v - j;
	const float *p = bend + 2 * (j * (KZ_BEND_CELLS + 1) + i);
	const float *q = p + 2 * (KZ_BEND_CELLS + 1);
	double w00 = (1 - fu) * (1 - fv), w10 = fu * (1 - fv);
	double w01 = (1 - fu) * fv, w11 = fu * fv;

	*sx += w00 * p[0] + w10 * p[2] + w01 * q[0] + w11 * q[2];
	*sy += w00 * p[1] + w10 * p[3] + w01 * q[1] + w11 * q[3];
}

void
kz_norm_warp(const uint8_t *src, uint32_t w, uint32_t h, double c,
    double s, double sh, double tx, double ty, const float *bend,
    float *dst)
{
	double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
	double gu = w > 1 ? (double)KZ_BEND_CELLS / (w - 1) : 0;
	double gv = h > 1 ? (double)KZ_BEND_CELLS / (h - 1) : 0;

	/* Each output pixel reads the input where the inverse map sends
	 * it: unmoved, unrotated and unscaled, then unsheared; the bend,
	 * looked up at the output pixel, moves that point. */
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			double dx = x - cx - tx, dy = y - cy - ty;
			double ry = -s * dx + c * dy;
			double sx = c * dx + s * dy - sh * ry + cx;
			double sy = ry + cy;

			if (bend != NULL)
				bend_at(bend, x * gu, y * gv, &sx, &sy);
			dst[(size_t)y * w + x] = (float)bilinear(src, w, h, sx,
			    sy);
		}
}

void
kz_norm_stroke(float *img, uint32_t w, uint32_t h, float weight)
{
	/* Rows y - 1 and y as they were; row y + 1 is not written yet. */
	float above[KZ_MAX_DIM], here[KZ_MAX_DIM];
	float k = fabsf(weight);
	int thicken = weight > 0;

	if (w == 0 || w > KZ_MAX_DIM || k == 0)
		return;
	for (uint32_t y = 0; y < h; y++) {
		float *row = img + (size_t)y * w;
		const float *below = y + 1 < h ? row + w : NULL;

		memcpy(here, row, w * sizeof(float));
		for (uint32_t x = 0; x < w; x++) {
			uint32_t x0 = x > 0 ? x - 1 : 0;
			uint32_t x1 = x + 1 < w ? x + 1 : x;
			float m = here[x];

			for (uint32_t i = x0; i <= x1; i++) {
				float v[3] = { here[i], y > 0 ? above[i] :
				    here[i], below ? below[i] : here[i] };

				for (int j = 0; j < 3; j++)
					m = thicken ? fmaxf(m, v[j]) :
					    fminf(m, v[j]);
			}
			row[x] = here[x] + k * (m - here[x]);
		}
		memcpy(above, here, w * sizeof(float));
	}
}

void
kz_norm_view(const uint8_t *src, uint32_t w, uint32_t h, double factor,
    double degrees, uint8_t *dst)
{
	double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
	double a = degrees * M_PI / 180, c = cos(a), s = sin(a);

	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			/* unturned, (x - cx) / factor + cx to the bit */
			double dx = x - cx, dy = y - cy;
			double v = bilinear(src, w, h, (c * dx + s * dy) /
			    factor + cx, (c * dy - s * dx) / factor + cy);

			dst[(size_t)y * w + x] = (uint8_t)lrint(v > 255 ? 255 : v);
		}
}

void
kz_norm_defaults(struct kz_norm_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->pol = KZ_POL_AUTO;
	o->margin = 0;
	o->threshold = 32;
}

void
kz_norm_size(const struct kz_norm_opts *o, uint32_t w, uint32_t h,
    uint32_t *ow, uint32_t *oh)
{
	*ow = o->fw ? o->fw : o->rw ? o->rw : w;
	*oh = o->fw ? o->fh : o->rw ? o->rh : h;
}

int
kz_norm_apply(const struct kz_norm_opts *o, struct kz_image *img)
{
	uint32_t box[4];
	int fail = 0;

	if (o->pol == KZ_POL_INVERT || (o->pol == KZ_POL_AUTO &&
	    kz_norm_polarity(img)))
		kz_norm_invert(img);
	/* Fitting levels the background too: a scan's grey paper,
	 * inverted, must become the datasets' black. */
	if (o->stretch || o->fw)
		kz_norm_stretch(img);
	/* And makes the ink as white as theirs: a scan's strokes are
	 * grey where the datasets' are saturated. */
	if (o->level || o->fw)
		kz_norm_level(img, o->threshold, KZ_LEVEL_PERCENT,
		    KZ_LEVEL_FLOOR);
	if (o->deskew)
		fail = kz_norm_deskew(img);
	/* Fitting crops to the ink: the datasets' characters fill their
	 * box. */
	if (!fail && (o->crop || o->fw) &&
	    kz_norm_bbox(img, o->threshold, box) == 0)
		fail = kz_norm_crop(img, box);
	if (!fail && o->fw)
		fail = kz_norm_fit(img, o->fw, o->fh, o->margin);
	if (!fail && o->rw)
		fail = kz_norm_resize(img, o->rw, o->rh);
	if (!fail && o->centre)
		fail = kz_norm_centre(img);
	return fail;
}
