/*
 * kz.h - the kz library: the record stream, dataset readers, images,
 * class maps.  Every program in cmd/ links it.
 *
 * Conventions.  Functions that can fail return 0 on success and -1 on
 * failure, after writing a one-line message into a caller-supplied
 * struct kz_err; the message names the file and the place ("x.npz:
 * member arr_0.npy: truncated").  Library code never prints and never
 * exits.  "-" as a file name means stdin or stdout.
 */
#ifndef KZ_H
#define KZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- errors ---------------------------------------------------------- */

struct kz_err {
	char msg[512];
};

/* Formats a message into e (may be NULL) and returns -1, so that
 * "return kz_errf(e, ...)" reports and fails in one statement. */
int kz_errf(struct kz_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes e's message with "prefix: " (e.g. a file name). Returns -1. */
int kz_err_prefix(struct kz_err *e, const char *prefix);

/* ---- the record stream (man kz.5) ----------------------------------- */

#define KZ_MAGIC "\x8bKZS\r\n\x1a\n"	/* 8 bytes */
#define KZ_MAGIC_LEN 8
#define KZ_STREAM_VERSION 1
#define KZ_HEADER_SIZE 32
#define KZ_RECORD_PREFIX 12		/* u64 index + i32 label */
#define KZ_PRED_SIZE 8			/* u32 class + f32 score */

enum kz_pixel {
	KZ_PIXEL_U8 = 1,	/* 8-bit grey, 0 = background, 255 = ink */
	KZ_PIXEL_F32 = 2	/* 32-bit IEEE float grey, little-endian */
};

/* Bounds every reader enforces before it allocates anything. */
#define KZ_MAX_DIM 4096		/* width and height */
#define KZ_MAX_PAGE_DIM 16384	/* of a page image cut into boxes */
#define KZ_MAX_PIXELS (4096u * 4096u)
#define KZ_MAX_K 64		/* predictions per record */
#define KZ_MAX_CLASSES 1000000
#define KZ_MAX_INDEX ((uint64_t)1 << 48)	/* record indices */
#define KZ_LABEL_UNKNOWN (-1)

struct kz_header {
	uint32_t width, height;
	uint16_t pixel;		/* enum kz_pixel */
	uint16_t k;		/* (class, score) pairs per record */
	uint32_t nclasses;	/* 0 when unknown */
};

struct kz_pred {
	uint32_t cls;
	float score;
};

struct kz_record {
	uint64_t index;		/* sequence number or source index */
	int32_t label;		/* KZ_LABEL_UNKNOWN or 0..nclasses-1 */
	struct kz_pred *pred;	/* k entries */
	uint8_t *pixels;	/* width * height * bytes per pixel */
};

/* Bytes per pixel of h's pixel type. */
size_t kz_pixel_size(const struct kz_header *h);
/* Size in bytes of one record of a stream with header h. */
size_t kz_record_size(const struct kz_header *h);
/* Checks h against the bounds above; the message names the field. */
int kz_header_check(const struct kz_header *h, struct kz_err *e);
/* Encodes h into KZ_HEADER_SIZE bytes / decodes and checks them. */
void kz_header_encode(const struct kz_header *h, uint8_t *buf);
int kz_header_decode(const uint8_t *buf, struct kz_header *h,
    struct kz_err *e);
/* Allocates a record whose pred and pixels fit h; NULL when out of
 * memory.  kz_record_free accepts NULL. */
struct kz_record *kz_record_new(const struct kz_header *h);
void kz_record_free(struct kz_record *r);

/* A reader over one stream.  Repeated headers at record boundaries (as
 * from "cat a.kz b.kz") are accepted when they equal the first. */
struct kz_reader;

/* Opens path ("-" for stdin) and reads its header.  NULL on failure. */
struct kz_reader *kz_reader_open(const char *path, struct kz_err *e);
/* Same, over an open FILE that the reader does not close. */
struct kz_reader *kz_reader_fdopen(FILE *fp, const char *name,
    struct kz_err *e);
const struct kz_header *kz_reader_header(const struct kz_reader *r);
const char *kz_reader_name(const struct kz_reader *r);
/* Number of records read so far. */
uint64_t kz_reader_count(const struct kz_reader *r);
/* Reads the next record into rec (allocated for this header): 1 when a
 * record was read, 0 at the end of the stream, -1 on error (truncated
 * record, incompatible repeated header, label >= nclasses, ...). */
int kz_reader_next(struct kz_reader *r, struct kz_record *rec,
    struct kz_err *e);
void kz_reader_close(struct kz_reader *r);

/* A writer.  Output goes through a large buffer.  When writing to a
 * named file, data goes to a temporary file in the same directory (see
 * kz_out_open), published under path by kz_writer_close only if every
 * write succeeded, so a failed run never leaves a partial file under
 * the target name. */
struct kz_writer;

struct kz_writer *kz_writer_open(const char *path, const struct kz_header *h,
    struct kz_err *e);
int kz_writer_put(struct kz_writer *w, const struct kz_record *rec,
    struct kz_err *e);
/* Flushes, closes, publishes; 0 on success.  After a failure the
 * temporary file is removed.  errno is kept from the failing call so
 * that callers can tell EPIPE from other errors. */
int kz_writer_close(struct kz_writer *w, struct kz_err *e);
/* Removes the temporary file and frees w without publishing anything. */
void kz_writer_abort(struct kz_writer *w);

/* ---- output files in general ---------------------------------------- */

/* An output file published atomically: opens an unnamed file in the
 * target's directory where Linux has them (O_TMPFILE), else
 * "path.tmpXXXXXX", or stdout for "-" or NULL; with a large buffer. */
struct kz_out {
	FILE *fp;
	char *path;	/* target, NULL for stdout */
	char *tmp;	/* temporary name, NULL for stdout */
	int unnamed;	/* fp is an O_TMPFILE file: tmp is not on disk */
	char *buf;	/* fp's buffer, for a file; freed after fclose */
	int failed;
};

int kz_out_open(struct kz_out *o, const char *path, struct kz_err *e);
/* fwrite that records failure; returns 0 or -1 (errno set). */
int kz_out_write(struct kz_out *o, const void *buf, size_t n,
    struct kz_err *e);
/* Flushes and closes; renames the temporary over the target on success,
 * removes it on failure.  Returns 0 or -1 with errno from the failure. */
int kz_out_close(struct kz_out *o, struct kz_err *e);
void kz_out_abort(struct kz_out *o);

/* Installs the SIGPIPE policy of every kz program: ignore the signal,
 * so a closed pipe surfaces as EPIPE from a write. */
void kz_ignore_sigpipe(void);

/* ---- input files ------------------------------------------------------ */

/* An input file read through zlib, so gzip data is gunzipped on the fly
 * and anything else passes through unchanged. */
struct kz_file;
#define KZ_PEEK_MAX 1024

struct kz_file *kz_file_open(const char *path, struct kz_err *e);
/* Points *buf at the first bytes of the (gunzipped) content without
 * consuming them: up to KZ_PEEK_MAX, fewer only for a shorter file. */
int kz_file_peek(struct kz_file *f, const uint8_t **buf, size_t *len,
    struct kz_err *e);
/* Reads up to n bytes; *got < n only at the end of the content.  A
 * truncated gzip member is an error, not an early end. */
int kz_file_read(struct kz_file *f, void *buf, size_t n, size_t *got,
    struct kz_err *e);
/* Reads the rest of f into *buf (malloc'ed), refusing more than limit. */
int kz_file_slurp(struct kz_file *f, size_t limit, uint8_t **buf,
    size_t *len, struct kz_err *e);
/* Points *buf at the rest of f, consuming it, without a copy where f
 * is held in memory; valid until kz_file_close.  Refuses more than
 * limit bytes. */
int kz_file_view(struct kz_file *f, size_t limit, const uint8_t **buf,
    size_t *len, struct kz_err *e);
/* Points *p at the next n bytes of f (fewer only at the end),
 * consuming them, without a copy: valid until kz_file_close.  1 when
 * done so; 0, nothing consumed, when f is streamed and must be read
 * with kz_file_read; -1 on error. */
int kz_file_borrow(struct kz_file *f, size_t n, const uint8_t **p,
    size_t *got, struct kz_err *e);
const char *kz_file_name(const struct kz_file *f);
void kz_file_close(struct kz_file *f);

/* Reads all of path ("-" = stdin) into *buf (malloc'ed; caller frees),
 * transparently gunzipping gzip data.  Refuses files whose content
 * exceeds limit bytes. */
int kz_slurp(const char *path, size_t limit, uint8_t **buf, size_t *len,
    struct kz_err *e);

/* ---- datasets ----------------------------------------------------------- */

/* An n-dimensional uint8 array read from .npy, .npz or MNIST idx. */
struct kz_array {
	int ndim;
	uint64_t dim[4];
	uint8_t *data;	/* product of dims bytes, C order */
	uint8_t *base;	/* the allocation holding data; freed by
			   kz_array_free */
};

/* Number of elements: the product of the dimensions. */
uint64_t kz_array_count(const struct kz_array *a);

#define KZ_MAX_ARRAY_BYTES ((uint64_t)4 << 30)	/* 4 GiB */

/* Parses a .npy (v1, v2, v3) buffer holding a C-order uint8 ('|u1')
 * array of 1 to 4 dimensions; a->data points into buf, a->base is NULL. */
int kz_npy_parse(const uint8_t *buf, size_t len, const char *name,
    struct kz_array *a, struct kz_err *e);
/* Reads member arr_0.npy from the zip archive in buf. */
int kz_npz_parse(const uint8_t *buf, size_t len, const char *name,
    struct kz_array *a, struct kz_err *e);
/* Parses an uncompressed idx buffer (type 0x08, 1 to 4 dimensions). */
int kz_idx_parse(const uint8_t *buf, size_t len, const char *name,
    struct kz_array *a, struct kz_err *e);
void kz_array_free(struct kz_array *a);

/* What kz_detect finds at the start of a (gunzipped) buffer. */
enum kz_format {
	KZ_FMT_UNKNOWN, KZ_FMT_STREAM, KZ_FMT_NPZ, KZ_FMT_NPY, KZ_FMT_IDX,
	KZ_FMT_TAR, KZ_FMT_PNG, KZ_FMT_PNM, KZ_FMT_JPEG
};
enum kz_format kz_detect(const uint8_t *buf, size_t len);
const char *kz_format_name(enum kz_format f);

/* Reads the array of f, whose content is of format fmt (KZ_FMT_NPZ,
 * KZ_FMT_NPY or KZ_FMT_IDX, as kz_detect tells from a peek), at most
 * limit bytes of it, and closes f.  0, or -1 with e set. */
int kz_array_load(struct kz_file *f, enum kz_format fmt, size_t limit,
    struct kz_array *a, struct kz_err *e);

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

/* ---- CODH books: page images and character boxes ----------------------- */

/* One line of a book's coordinate file. */
struct kz_box {
	uint32_t page;		/* index into the book's pages */
	uint32_t x, y, w, h;	/* top-left corner and size, in pixels */
	uint32_t codepoint;
	uint32_t line;		/* of the coordinate file, for messages */
};
struct kz_book {
	char *dir;		/* the folder that holds images/ */
	char *csv;		/* the coordinate file */
	size_t npages;
	char **page;		/* image ids, in order of first mention */
	size_t n;
	struct kz_box *box;	/* in the file's order */
};
/* Reads a book from its folder (holding BOOK_coordinate.csv and
 * images/) or its coordinate file.  Columns are found by their header
 * names; every box must have a size, and every page named must be a
 * file in images/ (its id a plain file name).  -1 naming the line. */
int kz_book_open(const char *path, struct kz_book *b, struct kz_err *e);
/* Whether the folder dir holds a file NAME_coordinate.csv: a book. */
int kz_book_is_folder(const char *dir);
/* DIR/images/ID.jpg of page (malloc'ed), or NULL when out of memory. */
char *kz_book_page_path(const struct kz_book *b, size_t page);
/* Decodes page's image (JPEG, or PNG) to grey. */
int kz_book_page_read(const struct kz_book *b, size_t page,
    struct kz_image *img, struct kz_err *e);
/* Copies box i out of page (its decoded image) into crop (allocated
 * here); -1 naming the coordinate file's line when the box reaches
 * beyond the page. */
int kz_book_cut(const struct kz_book *b, size_t i,
    const struct kz_image *page, struct kz_image *crop, struct kz_err *e);
void kz_book_free(struct kz_book *b);

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
/* The functions returning int give -1 only when out of memory. */

/* ---- Kuzushiji-Kanji trees: kkanji2/U+XXXX/NAME.png ---------------------- */

struct kz_tree_entry {
	uint32_t codepoint;
	char *path;		/* path inside the tree or archive */
	const uint8_t *png;	/* the file's bytes: the tree's own, or
				   in the tar's kz_file (borrowed) */
	size_t png_len;
};

struct kz_tree {
	struct kz_tree_entry *entries;	/* sorted by codepoint, then path */
	size_t n;
	int borrowed;	/* the PNGs lie in the tar's kz_file */
};

/* Collects the PNG files of the tar archive read from f (gunzipped on
 * the fly) whose paths end in U+XXXX/NAME.png.  Nothing is written to
 * disk; entries with absolute paths or ".." components are refused.
 * When f is held in memory, the entries point into it: f must stay
 * open until the tree is freed. */
int kz_tree_from_tar(struct kz_file *f, struct kz_tree *t, struct kz_err *e);
/* Same, from a directory on disk holding U+XXXX folders (or a single
 * kkanji2 folder holding them). */
int kz_tree_from_dir(const char *dir, struct kz_tree *t, struct kz_err *e);
void kz_tree_free(struct kz_tree *t);
/* Parses "U+XXXX" (4 to 6 hex digits) into *cp; 0 on success. */
int kz_parse_codepoint(const char *s, size_t len, uint32_t *cp);

/* ---- class maps: CSV "index,codepoint,char" ------------------------------ */

struct kz_classmap {
	size_t n;
	uint32_t *codepoint;	/* n entries, by class index */
	char (*utf8)[8];	/* NUL-terminated UTF-8 of each character */
};

/* Reads a class map; rows must hold indices 0..n-1 each exactly once,
 * with a codepoint whose UTF-8 encoding is the char column. */
int kz_classmap_read(const char *path, struct kz_classmap *m,
    struct kz_err *e);
int kz_classmap_parse(const char *buf, size_t len, const char *name,
    struct kz_classmap *m, struct kz_err *e);
/* Fills the empty m from n code points, class by class: a model's
 * stored map.  -1 naming the first class whose code point is not a
 * Unicode scalar value (or 0), or when out of memory. */
int kz_classmap_from_codepoints(const uint32_t *cp, size_t n,
    const char *name, struct kz_classmap *m, struct kz_err *e);
/* Writes m as CSV with its header line. */
int kz_classmap_write(const struct kz_classmap *m, const char *path,
    struct kz_err *e);
/* Class index of codepoint cp, or -1. */
long kz_classmap_find(const struct kz_classmap *m, uint32_t cp);
/* Class index of s, a character ("之") or a code point ("U+4E4B"), or
 * -1. */
long kz_classmap_lookup(const struct kz_classmap *m, const char *s);
void kz_classmap_free(struct kz_classmap *m);
/* Encodes cp as UTF-8 into out (>= 5 bytes, NUL-terminated); returns
 * its length, 0 for an invalid code point. */
int kz_utf8_encode(uint32_t cp, char *out);

/* ---- random numbers ---------------------------------------------------- */

/* xoshiro256**: deterministic across machines for a given seed. */
struct kz_rng {
	uint64_t s[4];
};

void kz_rng_seed(struct kz_rng *r, uint64_t seed);

/* The next 64 random bits.  Inline: dropout draws one per activation. */
static inline uint64_t
kz_rng_next(struct kz_rng *r)
{
	uint64_t *s = r->s, t = s[1] << 17;
	uint64_t x = s[1] * 5, result = ((x << 7) | (x >> 57)) * 9;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return result;
}

double kz_rng_uniform(struct kz_rng *r);		/* [0, 1) */
uint64_t kz_rng_below(struct kz_rng *r, uint64_t n);	/* [0, n) */
double kz_rng_normal(struct kz_rng *r);			/* N(0, 1) */
void kz_rng_shuffle(struct kz_rng *r, uint32_t *a, size_t n);

/* ---- text -------------------------------------------------------------- */

/* A copy of s (malloc'd; NULL when out of memory) with a backslash
 * before a backslash, and tab, newline, carriage return and the other
 * control characters as \t, \n, \r and \xHH: any name, kept on one line
 * and in one tab-separated field. */
char *kz_escape(const char *s);

#endif
