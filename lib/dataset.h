/*
 * dataset.h - the datasets: uint8 arrays from .npy, .npz and MNIST idx
 * files, the formats kz_detect tells apart, CODH books (page images
 * and character boxes) and Kuzushiji-Kanji trees (U+XXXX/NAME.png in a
 * folder or a tar archive).
 */
#ifndef KZ_DATASET_H
#define KZ_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "files.h"
#include "image.h"
#include "norm.h"

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
/* Reads the array of the file path as kz_array_load does, when path
 * names a regular file (not "-") whose content is npz, npy or idx: 1
 * when read, -1 with e set when reading it failed.  0, e untouched,
 * when path is not such a file, or cannot be opened or peeked at: the
 * caller opens it again to read it otherwise or to say why not. */
int kz_array_load_path(const char *path, size_t limit, struct kz_array *a,
    struct kz_err *e);

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
/* Whether the first line of peek (npeek bytes, as kz_file_peek gives
 * them) is a CODH coordinate file's header: it names the Unicode and
 * Image columns.  Only the first KZ_PEEK_MAX bytes are looked at. */
int kz_book_is_csv(const uint8_t *peek, size_t npeek);
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
/* The size of t's first image, which fixes the tree's geometry: that
 * PNG decoded.  name is the tree's file, for messages; -1 naming the
 * entry when it cannot be decoded. */
int kz_tree_size(const struct kz_tree *t, const char *name, uint32_t *w,
    uint32_t *h, struct kz_err *e);
/* Decodes the PNGs of entries from to to - 1 of t into out, one image
 * after another, on two threads (one if a thread cannot be had): the
 * slow part of a Kanji run.  With o, each image is put through
 * kz_norm_apply(o) and out's images are of the size kz_norm_size gives
 * w x h; without (NULL), each must be w x h, the size of the tree's
 * first image (kz_tree_size).  -1 naming the entry (name: its path). */
int kz_tree_decode(const struct kz_tree *t, const char *name, size_t from,
    size_t to, const struct kz_norm_opts *o, uint32_t w, uint32_t h,
    uint8_t *out, struct kz_err *e);
/* Parses "U+XXXX" (4 to 6 hex digits) into *cp; 0 on success. */
int kz_parse_codepoint(const char *s, size_t len, uint32_t *cp);

#endif
