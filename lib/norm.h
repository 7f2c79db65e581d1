/*
 * norm.h - normalisation (kz-norm(1)): making a character image look
 * like the datasets' images, white ink on black, cropped, deskewed,
 * fitted and centred, step by step or as kz-norm's steps in one call.
 */
#ifndef KZ_NORM_H
#define KZ_NORM_H

#include <stdint.h>

#include "image.h"

/* ---- normalisation (kz-norm) ------------------------------------------ */

/* 1 when the image is dark ink on a light ground (a light border). */
int kz_norm_polarity(const struct kz_image *img);
void kz_norm_invert(struct kz_image *img);
/* Maps the background (the 90th percentile of the border) and below
 * to 0, and the lightest pixel to 255. */
void kz_norm_stretch(struct kz_image *img);
/* Makes the ink as white as the datasets': the percent-th percentile
 * of the pixels above threshold (the ink) becomes 255, the others
 * scale with it, and what is then floor or less becomes 0.  Fitting
 * uses KZ_LEVEL_PERCENT and KZ_LEVEL_FLOOR, which bring real crops'
 * ink to the datasets' (kz-norm(1)). */
#define KZ_LEVEL_PERCENT 30
#define KZ_LEVEL_FLOOR 80
void kz_norm_level(struct kz_image *img, uint8_t threshold, int percent,
    uint8_t floor);
/* Bounding box {x, y, w, h} of pixels above threshold; -1 if none. */
int kz_norm_bbox(const struct kz_image *img, uint8_t threshold,
    uint32_t box[4]);
int kz_norm_crop(struct kz_image *img, const uint32_t box[4]);
/* Resizes to w x h: area averaging down, bilinear up, per axis. */
int kz_norm_resize(struct kz_image *img, uint32_t w, uint32_t h);
/* The same for n images of sw x sh pixels, one after another in src,
 * into n of w x h in dst. */
int kz_norm_resize_pixels(const uint8_t *src, size_t n, uint32_t sw,
    uint32_t sh, uint8_t *dst, uint32_t w, uint32_t h);
/* Shears the ink upright by its second moments (mu11 / mu02). */
int kz_norm_deskew(struct kz_image *img);
/* Scales to fit inside w x h less margin on each side, keeping the
 * aspect ratio, and centres the result on a black w x h image. */
int kz_norm_fit(struct kz_image *img, uint32_t w, uint32_t h,
    uint32_t margin);
/* Shifts the ink's centre of mass to the image centre. */
int kz_norm_centre(struct kz_image *img);
/* The steps of kz-norm(1), in its order: polarity, levelling,
 * deskewing, cropping to the ink, fitting or resizing, centring. */
enum kz_polarity { KZ_POL_AUTO, KZ_POL_KEEP, KZ_POL_INVERT };
struct kz_norm_opts {
	uint32_t fw, fh;	/* fit into this box; 0: no fitting */
	uint32_t rw, rh;	/* resize to this; 0: no resizing */
	uint32_t margin;	/* black pixels around the fitted ink */
	uint8_t threshold;	/* ink is above it, for cropping */
	enum kz_polarity pol;
	int crop, centre, deskew, stretch, level;
};
/* kz-norm's defaults: polarity auto, margin 0, threshold 32. */
void kz_norm_defaults(struct kz_norm_opts *o);
/* The size o gives an image of w x h. */
void kz_norm_size(const struct kz_norm_opts *o, uint32_t w, uint32_t h,
    uint32_t *ow, uint32_t *oh);
/* Puts img through the steps o asks for; its pixels may be replaced
 * (and its size changed).  -1 when out of memory. */
int kz_norm_apply(const struct kz_norm_opts *o, struct kz_image *img);
/* dst (w x h) = src moved dx columns right and dy rows down; what comes
 * in from beyond the edge is 0, the background. */
void kz_norm_shift(const uint8_t *src, uint32_t w, uint32_t h, int dx,
    int dy, uint8_t *dst);
/* Cells per side of kz_norm_warp's bend grid, and floats in a bend. */
#define KZ_BEND_CELLS 4
#define KZ_BEND_FLOATS (2 * (KZ_BEND_CELLS + 1) * (KZ_BEND_CELLS + 1))
/* dst (w x h, floats 0 to 255) = src drawn through a map about the
 * centre that shears rows by sh, then scales and rotates (c and s are
 * the cosine and sine of the angle over the scale), then moves tx
 * columns right and ty rows down: each pixel bilinear from the four
 * it falls among, 0 beyond the edge.  Training's augmentation.  bend,
 * unless NULL, bends the map smoothly: (KZ_BEND_CELLS + 1)^2 (dx, dy)
 * pairs, row by row, on a grid whose corners are the image's corner
 * pixels; the point an output pixel reads moves by the pair bilinear
 * between the four grid points about that pixel. */
void kz_norm_warp(const uint8_t *src, uint32_t w, uint32_t h, double c,
    double s, double sh, double tx, double ty, const float *bend,
    float *dst);
/* Thickens (weight > 0) or thins (weight < 0) the strokes of img (w x h
 * floats, ink the larger values, w at most KZ_MAX_DIM), in place: each
 * pixel moves by |weight|, 0 to 1, of the way to the largest (or the
 * smallest) value of its 3 x 3 neighbourhood within the image.
 * Training's augmentation: brushes and hands differ in stroke width. */
void kz_norm_stroke(float *img, uint32_t w, uint32_t h, float weight);
/* dst (w x h) = src scaled by factor and turned by degrees (clockwise
 * as the image is shown, rows running down) about its centre, bilinear
 * as kz_norm_warp draws, 0 beyond the edge, rounded to the nearest
 * byte: kz-classify's zoomed and turned views, drawn as training's
 * augmentation draws its images. */
void kz_norm_view(const uint8_t *src, uint32_t w, uint32_t h,
    double factor, double degrees, uint8_t *dst);
/* The functions returning int give -1 only when out of memory. */

#endif
