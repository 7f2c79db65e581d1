/*
 * image.h - 8-bit grey images, and the PNG, JPEG and PNM codecs that
 * read and write them.  The bounds on their sizes are stream.h's.
 */
#ifndef KZ_IMAGE_H
#define KZ_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core.h"
#include "stream.h"

/* ---- images ------------------------------------------------------------- */

/* An 8-bit grey image. */
struct kz_image {
	uint32_t width, height;
	uint8_t *pixels;
};

/* Decodes a PNG (any colour type; colour becomes grey, alpha is
 * composited on white). */
int kz_png_decode(const uint8_t *buf, size_t len, const char *name,
    struct kz_image *img, struct kz_err *e);
/* Encodes an 8-bit grey image as PNG into *out (malloc'ed). */
int kz_png_encode(const struct kz_image *img, uint8_t **out, size_t *len,
    struct kz_err *e);

/* Decodes a baseline or progressive JPEG through libjpeg(-turbo) to
 * its luma (grey), at most KZ_MAX_PAGE_DIM a side: page scans are
 * larger than KZ_MAX_DIM and are cut into characters.  A damaged file
 * (what libjpeg would only warn about, such as a missing end) is an
 * error. */
int kz_jpeg_decode(const uint8_t *buf, size_t len, const char *name,
    struct kz_image *img, struct kz_err *e);

/* Decodes every image of a PBM/PGM/PPM/PAM buffer (concatenated images
 * allowed) through libnetpbm, whose errors become kz_err messages.
 * *imgs is a malloc'ed array of *n images. */
int kz_pnm_decode(const uint8_t *buf, size_t len, const char *name,
    struct kz_image **imgs, size_t *n, struct kz_err *e);
/* Writes img as binary PGM (P5) through libnetpbm. */
int kz_pgm_write(FILE *fp, const struct kz_image *img, struct kz_err *e);
/* Must be called once before any PNM function (wraps pm_init). */
void kz_pnm_init(const char *progname);

#endif
