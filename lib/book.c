/*
 * book.c - a CODH book: page images and the coordinate file that
 * gives each character's box and code point.
 *
 * The layout CODH publishes: BOOK/BOOK_coordinate.csv, whose header is
 * "Unicode,Image,X,Y,Block ID,Char ID,Width,Height" (columns found by
 * name, so their order may change), and BOOK/images/IMAGE.jpg.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kz.h"
#include "util.h"

#define BOOK_CSV_MAX_BYTES ((size_t)1 << 30)
#define BOOK_FIELD_MAX 255
#define BOOK_FIELDS_MAX 32
#define COORDINATE_SUFFIX "_coordinate.csv"

/* The columns a box needs, by header name. */
enum { COL_UNICODE, COL_IMAGE, COL_X, COL_Y, COL_W, COL_H, NCOLS };
static const char *const col_name[NCOLS] = {
	"Unicode", "Image", "X", "Y", "Width", "Height"
};

void
kz_book_free(struct kz_book *b)
{
	for (size_t i = 0; i < b->npages; i++)
		free(b->page[i]);
	free(b->page);
	free(b->box);
	free(b->dir);
	free(b->csv);
	memset(b, 0, sizeof(*b));
}

/* Splits the line at *p into at most BOOK_FIELDS_MAX fields f, moving
 * *p past it.  The number of fields, or -1 when one is too long or
 * badly quoted. */
static int
split_line(const char **p, const char *end, char f[][BOOK_FIELD_MAX + 1])
{
	const char *s = *p;
	int n = 0;

	for (;;) {
		if (n == BOOK_FIELDS_MAX ||
		    kz_csv_field(&s, end, f[n], BOOK_FIELD_MAX) < 0)
			return -1;
		n++;
		if (s < end && *s == ',') {
			s++;
			continue;
		}
		break;
	}
	if (s < end && *s == '\r')
		s++;
	if (s < end && *s != '\n')
		return -1;
	*p = s < end ? s + 1 : s;
	return n;
}

/* Finds each needed column in the header's fields f (n of them). */
static int
find_columns(char f[][BOOK_FIELD_MAX + 1], int n, int col[NCOLS],
    const char *name, struct kz_err *e)
{
	for (int c = 0; c < NCOLS; c++) {
		col[c] = -1;
		for (int i = 0; i < n; i++)
			if (strcmp(f[i], col_name[c]) == 0)
				col[c] = i;
		if (col[c] < 0)
			return kz_errf(e, "%s: line 1: no \"%s\" column (a CODH "
			    "coordinate file has Unicode,Image,X,Y,...,Width,"
			    "Height)", name, col_name[c]);
	}
	return 0;
}

/* A non-negative integer field below 2^31, or -1. */
static long
coordinate(const char *s)
{
	char *ep;
	long v;

	errno = 0;
	v = strtol(s, &ep, 10);
	if (s[0] < '0' || s[0] > '9' || *ep != '\0' || errno || v > INT_MAX)
		return -1;
	return v;
}

/* An image id names a file in images/: no path separators, no
 * leading dot, so that a hostile file cannot reach beyond it. */
static int
safe_id(const char *s)
{
	if (s[0] == '\0' || s[0] == '.')
		return 0;
	for (; *s; s++)
		if (*s == '/' || *s == '\\' || (unsigned char)*s < 0x20)
			return 0;
	return 1;
}

/* The index of page id in b, added (and its file checked) when new. */
static long
page_index(struct kz_book *b, const char *id, size_t line, struct kz_err *e)
{
	struct stat st;
	char *path;

	/* A book lists its boxes page by page: try the last page first. */
	if (b->npages > 0 && strcmp(b->page[b->npages - 1], id) == 0)
		return (long)b->npages - 1;
	for (size_t i = 0; i < b->npages; i++)
		if (strcmp(b->page[i], id) == 0)
			return (long)i;
	if (!safe_id(id))
		return kz_errf(e, "%s: line %zu: image \"%s\" is not a file "
		    "name", b->csv, line, id);
	char **np = realloc(b->page, (b->npages + 1) * sizeof(*np));
	if (np == NULL)
		return kz_errf(e, "%s: out of memory", b->csv);
	b->page = np;
	if ((b->page[b->npages] = strdup(id)) == NULL)
		return kz_errf(e, "%s: out of memory", b->csv);
	b->npages++;
	if ((path = kz_book_page_path(b, b->npages - 1)) == NULL)
		return kz_errf(e, "%s: out of memory", b->csv);
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		const char *why = S_ISREG(st.st_mode) || errno != 0 ?
		    strerror(errno) : "not a file";

		kz_errf(e, "%s: line %zu: image %s: %s", b->csv, line, path,
		    why);
		free(path);
		return -1;
	}
	free(path);
	return (long)b->npages - 1;
}

/* Reads one data line's fields f (n of them) into a box of b. */
static int
add_box(struct kz_book *b, char f[][BOOK_FIELD_MAX + 1], int n,
    const int col[NCOLS], size_t line, size_t *cap, struct kz_err *e)
{
	struct kz_box box = { 0 };
	long v[4];
	long page;

	for (int c = 0; c < NCOLS; c++)
		if (col[c] >= n)
			return kz_errf(e, "%s: line %zu: %d fields, no \"%s\"",
			    b->csv, line, n, col_name[c]);
	if (kz_parse_codepoint(f[col[COL_UNICODE]],
	    strlen(f[col[COL_UNICODE]]), &box.codepoint) != 0)
		return kz_errf(e, "%s: line %zu: bad code point \"%s\" (want "
		    "U+XXXX)", b->csv, line, f[col[COL_UNICODE]]);
	for (int i = 0; i < 4; i++)
		if ((v[i] = coordinate(f[col[COL_X + i]])) < 0)
			return kz_errf(e, "%s: line %zu: bad %s \"%s\"",
			    b->csv, line, col_name[COL_X + i],
			    f[col[COL_X + i]]);
	if (v[2] == 0 || v[3] == 0)
		return kz_errf(e, "%s: line %zu: box of zero size (%ldx%ld)",
		    b->csv, line, v[2], v[3]);
	if (v[0] + v[2] > KZ_MAX_PAGE_DIM || v[1] + v[3] > KZ_MAX_PAGE_DIM)
		return kz_errf(e, "%s: line %zu: box %ld,%ld %ldx%ld is "
		    "beyond any page (%d pixels a side)", b->csv, line, v[0],
		    v[1], v[2], v[3], KZ_MAX_PAGE_DIM);
	if ((page = page_index(b, f[col[COL_IMAGE]], line, e)) < 0)
		return -1;
	box.page = (uint32_t)page;
	box.x = (uint32_t)v[0];
	box.y = (uint32_t)v[1];
	box.w = (uint32_t)v[2];
	box.h = (uint32_t)v[3];
	box.line = line;
	if (b->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct kz_box *nb = realloc(b->box, nc * sizeof(*nb));

		if (nb == NULL)
			return kz_errf(e, "%s: out of memory", b->csv);
		b->box = nb;
		*cap = nc;
	}
	b->box[b->n++] = box;
	return 0;
}

/* Parses the coordinate file's text into b's boxes and pages. */
static int
parse_coordinates(struct kz_book *b, const char *p, const char *end,
    struct kz_err *e)
{
	static char f[BOOK_FIELDS_MAX][BOOK_FIELD_MAX + 1];
	int col[NCOLS], n;
	size_t line = 1, cap = 0;

	kz_csv_skip_bom(&p, end);
	if ((n = split_line(&p, end, f)) < 0)
		return kz_errf(e, "%s: line 1: not a CSV header", b->csv);
	if (find_columns(f, n, col, b->csv, e) != 0)
		return -1;
	while (p < end) {
		line++;
		if (kz_csv_skip_blank(&p, end))
			continue;
		if ((n = split_line(&p, end, f)) < 0)
			return kz_errf(e, "%s: line %zu: a field is too long "
			    "or badly quoted", b->csv, line);
		if (add_box(b, f, n, col, line, &cap, e) != 0)
			return -1;
	}
	if (b->n == 0)
		return kz_errf(e, "%s: no boxes", b->csv);
	return 0;
}

/* Whether name is a coordinate file's: NAME_coordinate.csv. */
static int
coordinate_name(const char *name)
{
	size_t n = strlen(name), sl = strlen(COORDINATE_SUFFIX);

	return n > sl && strcmp(name + n - sl, COORDINATE_SUFFIX) == 0;
}

int
kz_book_is_csv(const uint8_t *peek, size_t npeek)
{
	const uint8_t *nl = memchr(peek, '\n', npeek);
	size_t n = nl ? (size_t)(nl - peek) : npeek;
	char line[KZ_PEEK_MAX + 1];

	if (n > KZ_PEEK_MAX)
		n = KZ_PEEK_MAX;
	memcpy(line, peek, n);
	line[n] = '\0';
	return strstr(line, "Unicode,") != NULL && strstr(line, "Image") !=
	    NULL;
}

int
kz_book_is_folder(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;

	if (d == NULL)
		return 0;
	while (!found && (de = readdir(d)) != NULL)
		found = coordinate_name(de->d_name);
	closedir(d);
	return found;
}

/* The coordinate file of the book folder dir: DIR/NAME_coordinate.csv
 * for DIR's own NAME, else the folder's only *_coordinate.csv. */
static char *
find_coordinates(const char *dir, struct kz_err *e)
{
	const char *base;
	size_t dl = strlen(dir);
	struct stat st;
	char *path, *found = NULL;
	int many = 0;
	DIR *d;
	struct dirent *de;

	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	base = dir + dl;
	while (base > dir && base[-1] != '/')
		base--;
	if (asprintf(&path, "%.*s/%.*s" COORDINATE_SUFFIX, (int)dl, dir,
	    (int)(dir + dl - base), base) < 0) {
		kz_errf(e, "%s: out of memory", dir);
		return NULL;
	}
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
		return path;
	free(path);
	if ((d = opendir(dir)) == NULL) {
		kz_errf(e, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		if (!coordinate_name(de->d_name))
			continue;
		if (found != NULL) {
			many = 1;
			break;
		}
		if (asprintf(&found, "%.*s/%s", (int)dl, dir, de->d_name) < 0)
			found = NULL;
	}
	closedir(d);
	if (found == NULL || many) {
		free(found);
		kz_errf(e, "%s: %s", dir, many ? "more than one "
		    "*_coordinate.csv: name the one to read" :
		    "no *_coordinate.csv (not a CODH book folder)");
		return NULL;
	}
	return found;
}

int
kz_book_open(const char *path, struct kz_book *b, struct kz_err *e)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t len;
	int rc;

	memset(b, 0, sizeof(*b));
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		if ((b->csv = find_coordinates(path, e)) == NULL)
			return -1;
		b->dir = strdup(path);
	} else {
		const char *slash = strrchr(path, '/');

		b->csv = strdup(path);
		b->dir = slash == NULL ? strdup(".") :
		    strndup(path, (size_t)(slash - path) + (slash == path));
	}
	if (b->csv == NULL || b->dir == NULL) {
		kz_book_free(b);
		return kz_errf(e, "%s: out of memory", path);
	}
	if (kz_slurp(b->csv, BOOK_CSV_MAX_BYTES, &buf, &len, e) != 0) {
		kz_book_free(b);
		return -1;
	}
	rc = parse_coordinates(b, (const char *)buf, (const char *)buf + len,
	    e);
	free(buf);
	if (rc != 0)
		kz_book_free(b);
	return rc;
}

char *
kz_book_page_path(const struct kz_book *b, size_t page)
{
	char *path;

	if (asprintf(&path, "%s/images/%s.jpg", b->dir, b->page[page]) < 0)
		return NULL;
	return path;
}

int
kz_book_page_read(const struct kz_book *b, size_t page,
    struct kz_image *img, struct kz_err *e)
{
	char *path = kz_book_page_path(b, page);
	uint8_t *buf;
	size_t len;
	int rc;

	if (path == NULL)
		return kz_errf(e, "%s: out of memory", b->csv);
	if (kz_slurp(path, (size_t)256 << 20, &buf, &len, e) != 0) {
		free(path);
		return -1;
	}
	switch (kz_detect(buf, len)) {
	case KZ_FMT_JPEG:
		rc = kz_jpeg_decode(buf, len, path, img, e);
		break;
	case KZ_FMT_PNG:
		rc = kz_png_decode(buf, len, path, img, e);
		break;
	default:
		rc = kz_errf(e, "%s: not a JPEG", path);
	}
	free(buf);
	free(path);
	return rc;
}

int
kz_book_cut(const struct kz_book *b, size_t i, const struct kz_image *page,
    struct kz_image *crop, struct kz_err *e)
{
	const struct kz_box *x = &b->box[i];

	if ((uint64_t)x->x + x->w > page->width ||
	    (uint64_t)x->y + x->h > page->height)
		return kz_errf(e, "%s: line %u: box %u,%u %ux%u is beyond its "
		    "page %s (%ux%u)", b->csv, x->line, x->x, x->y, x->w, x->h,
		    b->page[x->page], page->width, page->height);
	crop->width = x->w;
	crop->height = x->h;
	if ((crop->pixels = malloc((size_t)x->w * x->h)) == NULL)
		return kz_errf(e, "%s: out of memory", b->csv);
	for (uint32_t y = 0; y < x->h; y++)
		memcpy(crop->pixels + (size_t)y * x->w, page->pixels +
		    (size_t)(x->y + y) * page->width + x->x, x->w);
	return 0;
}
