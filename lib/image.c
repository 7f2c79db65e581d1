/*
 * image.c - PNG through libpng's simplified API (the simplest PNGs
 * through libdeflate), JPEG through libjpeg (libjpeg-turbo), PNM
 * through libnetpbm.
 */
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <libdeflate.h>
#include <png.h>
#include <zlib.h>
#include <pam.h>

#include "kz.h"
#include "util.h"

/* Deflate gives at most about 1032 bytes for one (a length and a
 * distance code of one bit each, for 258 bytes). */
#define DEFLATE_MAX_RATIO 1032

/* ITU-R BT.601 luma, the weights of ppmtopgm. */
static double
luma(double r, double g, double b)
{
	return 0.299 * r + 0.587 * g + 0.114 * b;
}

static uint8_t
luma_u8(uint8_t r, uint8_t g, uint8_t b)
{
	return (uint8_t)(luma(r, g, b) + 0.5);
}


/* Rows of up to this many bytes (filter byte and pixels) are inflated
 * on the stack. */
#define GREY8_STACK 16384

static uint8_t
paeth(uint8_t a, uint8_t b, uint8_t c)
{
	int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);

	return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/*
 * The 140,000 PNGs of Kuzushiji-Kanji are of the simplest kind: 8-bit
 * grey, not interlaced, and the chunks IHDR, one IDAT and IEND alone.
 * Those are decoded here, in one call of libdeflate and the five row
 * filters: libpng's set-up of its structures and of zlib for each image
 * cost more than the pixels.  Anything else, and any fault at all
 * (a CRC, the deflate data, a filter type), goes to libpng, which
 * decodes it or words the error.  0 with img filled, or 1 with nothing
 * allocated.
 */
static int
png_decode_grey8(const uint8_t *buf, size_t len, struct kz_image *img)
{
	static const uint8_t signature[8] = { 0x89, 'P', 'N', 'G', '\r',
	    '\n', 0x1a, '\n' };
	const uint8_t *idat = NULL;
	size_t off = 8, idat_len = 0;
	uint32_t w = 0, h = 0;
	int ended = 0;

	if (len < 8 || memcmp(buf, signature, 8) != 0)
		return 1;
	while (!ended && len >= 12 && off <= len - 12) {
		uint32_t n = get_be32(buf + off);
		const uint8_t *type = buf + off + 4, *data = buf + off + 8;

		if (n > len - off - 12 || (KZ_CHECK_SUMS &&
		    libdeflate_crc32(0, type, n + 4) != get_be32(data + n)))
			return 1;
		if (off == 8) {
			if (memcmp(type, "IHDR", 4) != 0 || n != 13)
				return 1;
			w = get_be32(data);
			h = get_be32(data + 4);
			if (w == 0 || h == 0 || w > KZ_MAX_DIM ||
			    h > KZ_MAX_DIM || data[8] != 8 || data[9] != 0 ||
			    data[10] != 0 || data[11] != 0 || data[12] != 0)
				return 1;
		} else if (memcmp(type, "IDAT", 4) == 0 && idat == NULL) {
			idat = data;
			idat_len = n;
		} else if (memcmp(type, "IEND", 4) == 0 && n == 0 &&
		    off + 12 == len) {
			ended = 1;
		} else {
			return 1;
		}
		off += 12 + (size_t)n;
	}
	if (!ended || idat == NULL)
		return 1;

	size_t stride = (size_t)w + 1, rawlen = stride * h;
	uint8_t stack[GREY8_STACK], *raw = stack, *pix;
	struct libdeflate_decompressor *d;
	enum libdeflate_result r;

	if (rawlen > sizeof(stack) && (raw = malloc(rawlen)) == NULL)
		return 1;
	if ((pix = malloc((size_t)w * h)) == NULL ||
	    (d = libdeflate_alloc_decompressor()) == NULL) {
		free(pix);
		if (raw != stack)
			free(raw);
		return 1;
	}
	r = libdeflate_zlib_decompress(d, idat, idat_len, raw, rawlen, NULL);
	libdeflate_free_decompressor(d);
	for (uint32_t y = 0; r == LIBDEFLATE_SUCCESS && y < h; y++) {
		const uint8_t *in = raw + y * stride + 1;
		const uint8_t *up = y ? pix + (size_t)(y - 1) * w : NULL;
		uint8_t *out = pix + (size_t)y * w;
		uint8_t left = 0, upleft = 0;

		switch (in[-1]) {
		case 0:
			memcpy(out, in, w);
			break;
		case 1:
			for (uint32_t x = 0; x < w; x++)
				left = out[x] = (uint8_t)(in[x] + left);
			break;
		case 2:
			for (uint32_t x = 0; x < w; x++)
				out[x] = (uint8_t)(in[x] + (up ? up[x] : 0));
			break;
		case 3:
			for (uint32_t x = 0; x < w; x++)
				left = out[x] = (uint8_t)(in[x] +
				    ((left + (up ? up[x] : 0)) >> 1));
			break;
		case 4:
			for (uint32_t x = 0; x < w; x++) {
				uint8_t above = up ? up[x] : 0;

				left = out[x] = (uint8_t)(in[x] +
				    paeth(left, above, upleft));
				upleft = above;
			}
			break;
		default:
			r = LIBDEFLATE_BAD_DATA;
		}
	}
	if (raw != stack)
		free(raw);
	if (r != LIBDEFLATE_SUCCESS) {
		free(pix);
		return 1;
	}
	img->pixels = pix;
	img->width = w;
	img->height = h;
	return 0;
}

/* kz_png_decode's work, on buf as it is. */
static int
png_decode(const uint8_t *buf, size_t len, const char *name,
    struct kz_image *img, struct kz_err *e)
{
	png_image pi;
	png_color white = { 255, 255, 255 };


	memset(img, 0, sizeof(*img));
	if (png_decode_grey8(buf, len, img) == 0)
		return 0;
	memset(&pi, 0, sizeof(pi));
	/* libpng stops after the pixels and would take a file cut before
	 * its IEND chunk as whole. */
	if (len < 8 + 12 || memcmp(buf + len - 8, "IEND\xAE\x42\x60\x82", 8) != 0)
		return kz_errf(e, "%s: PNG truncated (no IEND chunk at the "
		    "end)", name);
	pi.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_memory(&pi, buf, len))
		return kz_errf(e, "%s: PNG: %s", name, pi.message);
	if (pi.width == 0 || pi.height == 0 || pi.width > KZ_MAX_DIM ||
	    pi.height > KZ_MAX_DIM) {
		png_image_free(&pi);
		return kz_errf(e, "%s: PNG is %ux%u, beyond the limit of "
		    "%dx%d", name, pi.width, pi.height, KZ_MAX_DIM,
		    KZ_MAX_DIM);
	}
	/* Every row inflates to a filter byte and at least a bit a pixel:
	 * a PNG too short to hold its size is refused before the pixels
	 * are allocated (48 MB for 4096x4096 RGB, from 68 bytes). */
	if ((uint64_t)pi.height * (1 + (pi.width + 7) / 8) >
	    (uint64_t)len * DEFLATE_MAX_RATIO) {
		png_image_free(&pi);
		return kz_errf(e, "%s: PNG truncated (%ux%u pixels cannot "
		    "come from %zu bytes)", name, pi.width, pi.height, len);
	}
	/* Colour is read as RGB and weighted here, as libnetpbm's PPM path
	 * does, so a PNG and a PPM of one picture give the same grey;
	 * libpng's own conversion works in linear light and differs. */
	int colour = (pi.format & PNG_FORMAT_FLAG_COLOR) != 0;
	size_t npix = (size_t)pi.width * pi.height;
	pi.format = colour ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
	uint8_t *buf8 = malloc(PNG_IMAGE_SIZE(pi));
	if (buf8 == NULL) {
		png_image_free(&pi);
		return kz_errf(e, "%s: out of memory", name);
	}
	if (!png_image_finish_read(&pi, &white, buf8, 0, NULL)) {
		free(buf8);
		return kz_errf(e, "%s: PNG: %s", name, pi.message);
	}
	if (colour) {
		for (size_t i = 0; i < npix; i++)
			buf8[i] = luma_u8(buf8[3 * i], buf8[3 * i + 1],
			    buf8[3 * i + 2]);
	}
	img->pixels = buf8;
	img->width = pi.width;
	img->height = pi.height;
	return 0;
}

int
kz_png_decode(const uint8_t *buf, size_t len, const char *name,
    struct kz_image *img, struct kz_err *e)
{
#if KZ_CHECK_SUMS
	return png_decode(buf, len, name, img, e);
#else
	/* The fuzz build decodes a copy with every chunk's CRC made right:
	 * libpng's simplified API offers no way to skip them
	 * (png_set_crc_action needs the png_struct it hides). */
	uint8_t *copy = malloc(len ? len : 1);
	size_t off = 8;
	int rc;

	if (copy == NULL)
		return kz_errf(e, "%s: out of memory", name);
	memcpy(copy, buf, len);
	while (len >= 12 && off <= len - 12) {
		uint32_t n = get_be32(copy + off);

		if (n > len - off - 12)
			break;
		put_be32(copy + off + 8 + n, (uint32_t)crc32(0, copy + off + 4,
		    n + 4));
		off += 12 + (size_t)n;
	}
	rc = png_decode(copy, len, name, img, e);
	free(copy);
	return rc;
#endif
}

/* libjpeg's error manager, made to return: its default exits on an
 * error and only prints a warning, such as data cut short, which a
 * damaged page must not pass as a picture padded with grey. */
struct jpeg_failure {
	struct jpeg_error_mgr mgr;
	jmp_buf back;
	char msg[JMSG_LENGTH_MAX];
};

static void
jpeg_fail(j_common_ptr cinfo)
{
	struct jpeg_failure *f = (struct jpeg_failure *)cinfo->err;

	(*cinfo->err->format_message)(cinfo, f->msg);
	longjmp(f->back, 1);
}

static void
jpeg_message(j_common_ptr cinfo, int level)
{
	/* level -1 is a warning: corrupt data; higher levels are traces. */
	if (level < 0)
		jpeg_fail(cinfo);
}

int
kz_jpeg_decode(const uint8_t *buf, size_t len, const char *name,
    struct kz_image *img, struct kz_err *e)
{
	struct jpeg_decompress_struct d;
	struct jpeg_failure f;
	uint8_t *volatile pixels = NULL;

	memset(img, 0, sizeof(*img));
	d.err = jpeg_std_error(&f.mgr);
	f.mgr.error_exit = jpeg_fail;
	f.mgr.emit_message = jpeg_message;
	if (setjmp(f.back)) {
		jpeg_destroy_decompress(&d);
		free(pixels);
		return kz_errf(e, "%s: JPEG: %s", name, f.msg);
	}
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, buf, (unsigned long)len);
	jpeg_read_header(&d, TRUE);
	if (d.image_width == 0 || d.image_height == 0 ||
	    d.image_width > KZ_MAX_PAGE_DIM ||
	    d.image_height > KZ_MAX_PAGE_DIM) {
		kz_errf(e, "%s: JPEG is %ux%u, beyond the limit of %dx%d",
		    name, d.image_width, d.image_height, KZ_MAX_PAGE_DIM,
		    KZ_MAX_PAGE_DIM);
		jpeg_destroy_decompress(&d);
		return -1;
	}
	/* Luma straight from YCbCr: no chroma decoded, the weights of
	 * BT.601 as for PNG and PPM. */
	if (d.jpeg_color_space == JCS_YCbCr || d.jpeg_color_space ==
	    JCS_GRAYSCALE)
		d.out_color_space = JCS_GRAYSCALE;
	else
		d.out_color_space = JCS_RGB;
	jpeg_start_decompress(&d);
	size_t w = d.output_width, h = d.output_height;
	int nc = d.output_components;
	pixels = malloc(w * h * (size_t)nc);
	if (pixels == NULL) {
		jpeg_destroy_decompress(&d);
		return kz_errf(e, "%s: out of memory for a %zux%zu JPEG", name,
		    w, h);
	}
	while (d.output_scanline < h) {
		JSAMPROW row = pixels + (size_t)d.output_scanline * w * nc;

		jpeg_read_scanlines(&d, &row, 1);
	}
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	if (nc == 3)
		for (size_t i = 0; i < w * h; i++)
			pixels[i] = luma_u8(pixels[3 * i], pixels[3 * i + 1],
			    pixels[3 * i + 2]);
	img->width = (uint32_t)w;
	img->height = (uint32_t)h;
	img->pixels = pixels;
	return 0;
}

int
kz_png_encode(const struct kz_image *img, uint8_t **out, size_t *len,
    struct kz_err *e)
{
	png_image pi;
	png_alloc_size_t size = 0;

	memset(&pi, 0, sizeof(pi));
	pi.version = PNG_IMAGE_VERSION;
	pi.width = img->width;
	pi.height = img->height;
	pi.format = PNG_FORMAT_GRAY;
	if (!png_image_write_get_memory_size(pi, size, 0, img->pixels, 0,
	    NULL))
		return kz_errf(e, "PNG: %s", pi.message);
	if ((*out = malloc(size)) == NULL)
		return kz_errf(e, "out of memory");
	if (!png_image_write_to_memory(&pi, *out, &size, 0, img->pixels, 0,
	    NULL)) {
		free(*out);
		*out = NULL;
		return kz_errf(e, "PNG: %s", pi.message);
	}
	*len = size;
	return 0;
}

/* ---- PNM: libnetpbm exits on error unless given a jmp_buf ----------- */

/* PAM_STRUCT_SIZE(tuple_type) without its null-pointer member access. */
#define PAM_LEN (offsetof(struct pam, tuple_type) + \
    sizeof(((struct pam *)NULL)->tuple_type))

static char pnm_message[256];

static void
pnm_capture(const char *msg)
{
	snprintf(pnm_message, sizeof(pnm_message), "%s", msg);
}

static void
pnm_silent(const char *msg)
{
	(void)msg;
}

void
kz_pnm_init(const char *progname)
{
	pm_init(progname, 0);
	pm_setusererrormsgfn(pnm_capture);
	pm_setusermessagefn(pnm_silent);
}

/* Converts one row of tuples to grey: luminance for colour, alpha
 * composited on white, scaled from maxval to 255. */
static void
pam_row_to_grey(const struct pam *p, tuple *row, uint8_t *out)
{
	unsigned depth = p->depth;
	int has_alpha = depth == 2 || depth == 4;
	double max = (double)p->maxval;

	for (int x = 0; x < p->width; x++) {
		double v, a = 1.0;

		if (depth >= 3)
			v = luma(row[x][0], row[x][1], row[x][2]);
		else
			v = row[x][0];
		v /= max;
		if (has_alpha) {
			a = row[x][depth - 1] / max;
			v = v * a + (1.0 - a);
		}
		out[x] = (uint8_t)(v * 255.0 + 0.5);
	}
}

int
kz_pnm_decode(const uint8_t *buf, size_t len, const char *name,
    struct kz_image **imgsp, size_t *np, struct kz_err *e)
{
	jmp_buf jb, *prev = NULL;
	FILE *volatile fp = NULL;
	struct kz_image *volatile imgs = NULL;
	volatile size_t n = 0, at = 0;	/* images read; the one being read */
	tuple *volatile row = NULL;
	struct pam p;
	int eof = 0;

	*imgsp = NULL;
	*np = 0;
	if ((fp = fmemopen((void *)buf, len, "rb")) == NULL)
		return kz_errf(e, "%s: out of memory", name);
	/* Registered before setjmp so that prev is never written after it. */
	pm_setjmpbufsave(&jb, &prev);
	if (setjmp(jb) != 0) {
		pm_setjmpbuf(prev);
		kz_errf(e, "%s: image %zu: %s", name, (size_t)at,
		    pnm_message[0] ? pnm_message : "unreadable PNM data");
		goto fail;
	}
	pnm_message[0] = '\0';
	while (!eof) {
		at = n;
		pnm_readpaminit(fp, &p, PAM_LEN);
		if (p.width <= 0 || p.height <= 0 || p.width > KZ_MAX_DIM ||
		    p.height > KZ_MAX_DIM) {
			pm_setjmpbuf(prev);
			kz_errf(e, "%s: image %zu is %dx%d, beyond the limit "
			    "of %dx%d", name, (size_t)n, p.width, p.height,
			    KZ_MAX_DIM, KZ_MAX_DIM);
			goto fail;
		}
		/* Every row takes at least width * depth bits (a raw PBM's
		 * bit a pixel, a byte a sample elsewhere): an image claiming
		 * more than the bytes left is refused before its pixels and
		 * libnetpbm's row of 8-byte samples are allocated (2 GB for
		 * a PAM of 4096 tuples of depth 60000, in 64 bytes). */
		long pos = ftell(fp);
		if (pos >= 0 && (uint64_t)p.height * (((uint64_t)p.width *
		    p.depth + 7) / 8) > len - (size_t)pos) {
			pm_setjmpbuf(prev);
			kz_errf(e, "%s: image %zu truncated (%dx%d of depth %u "
			    "in %zu bytes)", name, (size_t)n, p.width,
			    p.height, p.depth, len - (size_t)pos);
			goto fail;
		}
		struct kz_image *grown = realloc(imgs, (n + 1) *
		    sizeof(*imgs));
		if (grown == NULL)
			goto oom;
		imgs = grown;
		imgs[n].width = (uint32_t)p.width;
		imgs[n].height = (uint32_t)p.height;
		imgs[n].pixels = malloc((size_t)p.width * p.height);
		if (imgs[n].pixels == NULL)
			goto oom;
		n++;
		row = pnm_allocpamrow(&p);
		for (int y = 0; y < p.height; y++) {
			pnm_readpamrow(&p, row);
			pam_row_to_grey(&p, row, imgs[n - 1].pixels +
			    (size_t)y * p.width);
		}
		pnm_freepamrow(row);
		row = NULL;
		pnm_nextimage(fp, &eof);
	}
	pm_setjmpbuf(prev);
	fclose(fp);
	*imgsp = imgs;
	*np = n;
	return 0;
oom:
	pm_setjmpbuf(prev);
	kz_errf(e, "%s: out of memory", name);
fail:
	if (row != NULL)
		pnm_freepamrow(row);
	for (size_t i = 0; i < n; i++)
		free(imgs[i].pixels);
	free(imgs);
	fclose(fp);
	return -1;
}

int
kz_pgm_write(FILE *fp, const struct kz_image *img, struct kz_err *e)
{
	jmp_buf jb, *prev = NULL;
	struct pam p;
	tuple *volatile row = NULL;

	memset(&p, 0, sizeof(p));
	p.size = sizeof(p);
	p.len = PAM_LEN;
	p.file = fp;
	p.format = PGM_FORMAT;
	p.plainformat = 0;
	p.width = (int)img->width;
	p.height = (int)img->height;
	p.depth = 1;
	p.maxval = 255;
	strcpy(p.tuple_type, PAM_PGM_TUPLETYPE);
	/* Registered before setjmp so that prev is never written after it. */
	pm_setjmpbufsave(&jb, &prev);
	if (setjmp(jb) != 0) {
		pm_setjmpbuf(prev);
		if (row != NULL)
			pnm_freepamrow(row);
		return kz_errf(e, "PGM: %s", pnm_message[0] ? pnm_message :
		    "write failed");
	}
	pnm_writepaminit(&p);
	row = pnm_allocpamrow(&p);
	for (uint32_t y = 0; y < img->height; y++) {
		for (uint32_t x = 0; x < img->width; x++)
			row[x][0] = img->pixels[(size_t)y * img->width + x];
		pnm_writepamrow(&p, row);
	}
	pnm_freepamrow(row);
	pm_setjmpbuf(prev);
	return 0;
}
