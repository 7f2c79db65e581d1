/* tree.c - Kuzushiji-Kanji trees (kkanji2/U+XXXX/NAME.png) from a tar
 * archive or a directory. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kz.h"
#include "util.h"

#define TAR_BLOCK 512
#define PNG_MAX_BYTES (64u << 20)	/* one character image */
#define TREE_MAX_DEPTH 4

int
kz_parse_codepoint(const char *s, size_t len, uint32_t *cp)
{
	uint32_t v = 0;

	if (len < 6 || len > 8 || s[0] != 'U' || s[1] != '+')
		return -1;
	for (size_t i = 2; i < len; i++) {
		int c = s[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return -1;
		v = v * 16 + (uint32_t)d;
	}
	if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return -1;
	*cp = v;
	return 0;
}

/* If path ends in "U+XXXX/NAME.png", stores the code point: 1; else 0. */
static int
tree_member(const char *path, uint32_t *cp)
{
	size_t len = strlen(path);
	const char *base, *dir;

	while (len > 0 && path[len - 1] == '/')
		return 0;
	if (len < 4 || strcmp(path + len - 4, ".png") != 0)
		return 0;
	base = strrchr(path, '/');
	if (base == NULL || base == path)
		return 0;
	for (dir = base - 1; dir > path && dir[-1] != '/'; dir--)
		;
	return kz_parse_codepoint(dir, (size_t)(base - dir), cp) == 0;
}

/* A path is unsafe when absolute or when any component is "..". */
static int
unsafe_path(const char *p)
{
	if (p[0] == '/')
		return 1;
	for (const char *c = p; *c != '\0';) {
		size_t n = strcspn(c, "/");

		if (n == 2 && c[0] == '.' && c[1] == '.')
			return 1;
		c += n;
		while (*c == '/')
			c++;
	}
	return 0;
}

/* Appends an entry for png (len bytes, which t then owns) at path to t,
 * whose array has room for *cap.  0, or -1 when out of memory (png is
 * then still the caller's). */
static int
tree_add(struct kz_tree *t, size_t *cap, uint32_t cp, const char *path,
    const uint8_t *png, size_t len)
{
	if (t->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4096;
		struct kz_tree_entry *ne = realloc(t->entries,
		    ncap * sizeof(*ne));

		if (ne == NULL)
			return -1;
		t->entries = ne;
		*cap = ncap;
	}
	struct kz_tree_entry *en = &t->entries[t->n];
	if ((en->path = strdup(path)) == NULL)
		return -1;
	en->codepoint = cp;
	en->png = png;
	en->png_len = len;
	t->n++;
	return 0;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct kz_tree_entry *x = a, *y = b;

	if (x->codepoint != y->codepoint)
		return x->codepoint < y->codepoint ? -1 : 1;
	return strcmp(x->path, y->path);
}

void
kz_tree_free(struct kz_tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->entries[i].path);
		if (!t->borrowed)
			free((void *)t->entries[i].png);
	}
	free(t->entries);
	memset(t, 0, sizeof(*t));
}

/* ---- tar ------------------------------------------------------------------ */

/* Parses a numeric tar field: octal, or base-256 when the high bit is set. */
static int
tar_number(const uint8_t *f, size_t n, uint64_t *v)
{
	*v = 0;
	if (f[0] & 0x80) {
		if (f[0] != 0x80)
			return -1;
		for (size_t i = 1; i < n; i++) {
			if (*v >> 55)
				return -1;
			*v = *v << 8 | f[i];
		}
		return 0;
	}
	size_t i = 0;
	while (i < n && f[i] == ' ')
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		if (*v >> 60)
			return -1;
		*v = *v * 8 + (f[i] - '0');
	}
	for (; i < n; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return -1;
	return 0;
}

/* 1 when header h's checksum field matches its bytes, else 0. */
static int
tar_checksum_ok(const uint8_t *h)
{
	uint64_t want;
	unsigned sum = 0;

	if (tar_number(h + 148, 8, &want) != 0)
		return 0;
	for (int i = 0; i < TAR_BLOCK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	return sum == want;
}

/* The bytes an entry of size bytes takes in the archive: whole blocks. */
static uint64_t
tar_padded(uint64_t size)
{
	return (size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
}

/* Reads an entry's data, padded to whole blocks, into a new buffer,
 * with a NUL after its size bytes: the text of an extended header has
 * none of its own, and strtoul would read on past it.  The buffer grows
 * as the data comes, doubling from 64 kB: size is only what the header
 * claims (up to PNG_MAX_BYTES), and an archive of a few bytes must not
 * get an allocation of that size before the data is there. */
static int
tar_data(struct kz_file *f, uint64_t size, uint8_t **out, struct kz_err *e,
    const char *what)
{
	uint64_t padded = tar_padded(size);
	size_t len = 0, cap = 0, got;
	uint8_t *buf = NULL, *nbuf;

	do {
		cap = cap == 0 ? 65536 : cap * 2;
		if (cap > padded)
			cap = padded;
		if ((nbuf = realloc(buf, cap + 1)) == NULL) {
			free(buf);
			return kz_errf(e, "%s: out of memory",
			    kz_file_name(f));
		}
		buf = nbuf;
		if (kz_file_read(f, buf + len, cap - len, &got, e) != 0) {
			free(buf);
			return -1;
		}
		len += got;
		if (len < cap) {
			free(buf);
			return kz_errf(e, "%s: tar entry %s truncated",
			    kz_file_name(f), what);
		}
	} while (len < padded);
	buf[size] = '\0';
	*out = buf;
	return 0;
}

/* Reads past an entry's data, padded to whole blocks.  0, or -1 when
 * the archive is cut short. */
static int
tar_skip(struct kz_file *f, uint64_t size, struct kz_err *e, const char *what)
{
	uint64_t left = tar_padded(size);
	uint8_t buf[1 << 16];
	size_t got;

	while (left > 0) {
		size_t n = left > sizeof(buf) ? sizeof(buf) : left;

		if (kz_file_read(f, buf, n, &got, e) != 0)
			return -1;
		if (got < n)
			return kz_errf(e, "%s: tar entry %s truncated",
			    kz_file_name(f), what);
		left -= n;
	}
	return 0;
}

/* Finds "path=" in a pax extended header's records. */
static char *
pax_path(const uint8_t *d, uint64_t size)
{
	uint64_t off = 0;

	while (off < size) {
		char *end;
		unsigned long len = strtoul((const char *)d + off, &end, 10);
		const char *kv = end + 1;

		if (len == 0 || len > size - off || *end != ' ')
			return NULL;
		if ((uint64_t)((const uint8_t *)kv - d) + 5 < off + len &&
		    strncmp(kv, "path=", 5) == 0) {
			size_t n = off + len - (uint64_t)((const uint8_t *)kv -
			    d) - 5 - 1;
			return strndup(kv + 5, n);
		}
		off += len;
	}
	return NULL;
}

/* Reads the next header block of f into h.  *offset, the archive's
 * bytes read so far, moves past it.  Returns 1 for an entry's header,
 * whose checksum is right and whose data size goes into *size; 0 for
 * an end-of-archive block; -1 when the archive ends first or the
 * header is damaged. */
static int
tar_header(struct kz_file *f, uint8_t *h, uint64_t *offset, uint64_t *size,
    struct kz_err *e)
{
	const char *name = kz_file_name(f);
	uint64_t at = *offset;
	size_t got;
	int zero = 1;

	if (kz_file_read(f, h, TAR_BLOCK, &got, e) != 0)
		return -1;
	/* Every entry whole, but a half-copied archive ends like this too:
	 * only the end block tells. */
	if (got == 0)
		return kz_errf(e, "%s: tar archive truncated at byte %llu "
		    "(no end-of-archive block)", name, (unsigned long long)at);
	if (got < TAR_BLOCK)
		return kz_errf(e, "%s: tar header at byte %llu truncated",
		    name, (unsigned long long)at);
	*offset = at + TAR_BLOCK;
	for (int i = 0; i < TAR_BLOCK && zero; i++)
		zero = h[i] == 0;
	if (zero)
		return 0;
	if (KZ_CHECK_SUMS && !tar_checksum_ok(h))
		return kz_errf(e, "%s: tar header at byte %llu damaged (bad "
		    "checksum)", name, (unsigned long long)at);
	if (tar_number(h + 124, 12, size) != 0 || *size > ((uint64_t)1 << 40))
		return kz_errf(e, "%s: tar header at byte %llu: bad size",
		    name, (unsigned long long)at);
	return 1;
}

/* Writes the path of the entry whose header is h into path (size
 * bytes): the one an extended header before it gave, *longname, which
 * is freed and cleared; else ustar's prefix and name; else the name. */
static void
tar_path(const uint8_t *h, char **longname, char *path, size_t size)
{
	if (*longname != NULL) {
		snprintf(path, size, "%s", *longname);
		free(*longname);
		*longname = NULL;
	} else if (memcmp(h + 257, "ustar", 5) == 0 && h[345] != 0) {
		snprintf(path, size, "%.155s/%.100s", (const char *)h + 345,
		    (const char *)h);
	} else {
		snprintf(path, size, "%.100s", (const char *)h);
	}
}

/* Reads the data (size bytes) of a GNU long name ('L') or pax ('x')
 * header, whose block is at byte at, for the entry after it: that
 * entry's path goes into *longname, NULL when a pax header has none.
 * 0, or -1 when the data is too large or cut short. */
static int
tar_extended(struct kz_file *f, char type, uint64_t size, const char *path,
    uint64_t at, char **longname, struct kz_err *e)
{
	uint8_t *d;

	if (size > 65536)
		return kz_errf(e, "%s: tar header at byte %llu: extended "
		    "header of %llu bytes", kz_file_name(f),
		    (unsigned long long)at, (unsigned long long)size);
	if (tar_data(f, size, &d, e, path) != 0)
		return -1;
	*longname = type == 'L' ? strndup((char *)d, size) :
	    pax_path(d, size);
	free(d);
	return 0;
}

/* Reads the data (size bytes) of the entry at path, of tar type type:
 * into t when it is a regular file of the tree, else nowhere.  0, or
 * -1 when the path is unsafe, the image too large, the archive cut
 * short or memory runs out. */
static int
tar_entry(struct kz_file *f, char type, uint64_t size, const char *path,
    struct kz_tree *t, size_t *cap, struct kz_err *e)
{
	const char *name = kz_file_name(f);
	uint32_t cp;

	if (unsafe_path(path))
		return kz_errf(e, "%s: tar entry \"%s\" refused (absolute "
		    "path or \"..\")", name, path);
	if ((type != '0' && type != '\0') || !tree_member(path, &cp))
		return tar_skip(f, size, e, path);
	if (size > PNG_MAX_BYTES)
		return kz_errf(e, "%s: %s: %llu bytes is too large for a "
		    "character image", name, path, (unsigned long long)size);
	/* A tar held in memory lends its PNGs: 140,000 copies of
	 * Kuzushiji-Kanji's, in fresh memory, cost more than decoding. */
	const uint8_t *png;
	uint8_t *copy = NULL;
	size_t got;
	int rc = kz_file_borrow(f, tar_padded(size), &png, &got, e);

	if (rc < 0)
		return -1;
	if (rc == 1 && got < tar_padded(size))
		return kz_errf(e, "%s: tar entry %s truncated", name, path);
	if (rc == 0) {
		if (tar_data(f, size, &copy, e, path) != 0)
			return -1;
		png = copy;
	}
	t->borrowed = rc == 1;
	if (tree_add(t, cap, cp, path, png, size) != 0) {
		free(copy);
		return kz_errf(e, "%s: out of memory", name);
	}
	return 0;
}

/* Reads f to its end after the end-of-archive block, so that a
 * damaged or cut gzip layer is noticed even there.  0, or -1. */
static int
tar_drain(struct kz_file *f, struct kz_err *e)
{
	uint8_t buf[TAR_BLOCK];
	size_t got;

	do {
		if (kz_file_read(f, buf, TAR_BLOCK, &got, e) != 0)
			return -1;
	} while (got == TAR_BLOCK);
	return 0;
}

int
kz_tree_from_tar(struct kz_file *f, struct kz_tree *t, struct kz_err *e)
{
	uint8_t h[TAR_BLOCK];
	char path[TAR_BLOCK + 2];
	char *longname = NULL;
	size_t cap = 0;
	uint64_t offset = 0, size = 0;
	int rc;

	memset(t, 0, sizeof(*t));
	while ((rc = tar_header(f, h, &offset, &size, e)) == 1) {
		char type = (char)h[156];

		tar_path(h, &longname, path, sizeof(path));
		if (type == 'L' || type == 'x') {
			if (tar_extended(f, type, size, path,
			    offset - TAR_BLOCK, &longname, e) != 0)
				goto fail;
		} else if (tar_entry(f, type, size, path, t, &cap, e) != 0) {
			goto fail;
		}
		offset += tar_padded(size);
	}
	if (rc != 0 || tar_drain(f, e) != 0)
		goto fail;
	free(longname);
	if (t->n > 0)
		qsort(t->entries, t->n, sizeof(*t->entries), entry_cmp);
	return 0;
fail:
	free(longname);
	kz_tree_free(t);
	return -1;
}

/* ---- directories ---------------------------------------------------------- */

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
walk(const char *root, const char *rel, int depth, struct kz_tree *t,
    size_t *cap, struct kz_err *e)
{
	char full[8192], sub[4096];
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, ncap = 0;
	int rc = 0;

	snprintf(full, sizeof(full), "%s%s%s", root, *rel ? "/" : "", rel);
	if ((d = opendir(full)) == NULL)
		return kz_errf(e, "%s: %s", full, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == ncap) {
			ncap = ncap ? ncap * 2 : 64;
			char **nn = realloc(names, ncap * sizeof(*nn));
			if (nn == NULL) {
				rc = kz_errf(e, "%s: out of memory", full);
				goto done;
			}
			names = nn;
		}
		if ((names[n] = strdup(de->d_name)) == NULL) {
			rc = kz_errf(e, "%s: out of memory", full);
			goto done;
		}
		n++;
	}
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct stat st;
		uint32_t cp;

		if ((size_t)snprintf(sub, sizeof(sub), "%s%s%s", rel,
		    *rel ? "/" : "", names[i]) >= sizeof(sub) ||
		    (size_t)snprintf(full, sizeof(full), "%s/%s", root,
		    sub) >= sizeof(full)) {
			rc = kz_errf(e, "%s/%s: path too long", root, rel);
		} else if (stat(full, &st) != 0) {
			rc = kz_errf(e, "%s: %s", full, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			if (depth < TREE_MAX_DEPTH)
				rc = walk(root, sub, depth + 1, t, cap, e);
		} else if (S_ISREG(st.st_mode) && tree_member(sub, &cp)) {
			uint8_t *png;
			size_t len;

			if ((size_t)st.st_size > PNG_MAX_BYTES) {
				rc = kz_errf(e, "%s: too large for a character "
				    "image", full);
			} else if (kz_slurp(full, PNG_MAX_BYTES, &png, &len,
			    e) != 0) {
				rc = -1;
			} else if (tree_add(t, cap, cp, sub, png, len) != 0) {
				free(png);
				rc = kz_errf(e, "%s: out of memory", full);
			}
		}
	}
done:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

int
kz_tree_from_dir(const char *dir, struct kz_tree *t, struct kz_err *e)
{
	size_t cap = 0;

	memset(t, 0, sizeof(*t));
	if (walk(dir, "", 0, t, &cap, e) != 0) {
		kz_tree_free(t);
		return -1;
	}
	if (t->n > 0)
		qsort(t->entries, t->n, sizeof(*t->entries), entry_cmp);
	return 0;
}

/* ---- decoding ------------------------------------------------------------- */

int
kz_tree_size(const struct kz_tree *t, const char *name, uint32_t *w,
    uint32_t *h, struct kz_err *e)
{
	struct kz_image img;
	char where[1024];

	if (t->n == 0)
		return kz_errf(e, "%s: no images", name);
	snprintf(where, sizeof(where), "%s: %s", name, t->entries[0].path);
	if (kz_png_decode(t->entries[0].png, t->entries[0].png_len, where,
	    &img, e) != 0)
		return -1;
	*w = img.width;
	*h = img.height;
	free(img.pixels);
	return 0;
}

/* Decodes tree PNGs in parallel batches: a thread's share. */
struct decode_job {
	const struct kz_tree *t;
	const char *name;		/* the tree's file, for messages */
	const struct kz_norm_opts *o;	/* NULL: every image w x h */
	uint32_t w, h;
	size_t from, to;
	uint8_t *out;		/* (to - from) images of npix */
	size_t npix;
	struct kz_err e;
	int failed;
};

static void *
decode_range(void *arg)
{
	struct decode_job *job = arg;
	struct kz_image img;

	for (size_t j = job->from; j < job->to; j++) {
		const struct kz_tree_entry *en = &job->t->entries[j];
		char where[1024];

		snprintf(where, sizeof(where), "%s: %s", job->name, en->path);
		if (kz_png_decode(en->png, en->png_len, where, &img,
		    &job->e) != 0) {
			job->failed = 1;
			return NULL;
		}
		if (job->o != NULL && kz_norm_apply(job->o, &img) != 0) {
			kz_errf(&job->e, "%s: out of memory", where);
			free(img.pixels);
			job->failed = 1;
			return NULL;
		}
		if (job->o == NULL && (img.width != job->w ||
		    img.height != job->h)) {
			kz_errf(&job->e, "%s is %ux%u, the tree's first image "
			    "is %ux%u; give --fit or --resize for one size",
			    where, img.width, img.height, job->w, job->h);
			free(img.pixels);
			job->failed = 1;
			return NULL;
		}
		memcpy(job->out + (j - job->from) * job->npix, img.pixels,
		    job->npix);
		free(img.pixels);
	}
	return NULL;
}

int
kz_tree_decode(const struct kz_tree *t, const char *name, size_t from,
    size_t to, const struct kz_norm_opts *o, uint32_t w, uint32_t h,
    uint8_t *out, struct kz_err *e)
{
	struct decode_job job[2];
	size_t n = to - from, npix = (size_t)w * h;
	pthread_t tid;

	if (o != NULL) {
		uint32_t ow, oh;

		kz_norm_size(o, w, h, &ow, &oh);
		npix = (size_t)ow * oh;
	}
	for (int i = 0; i < 2; i++) {
		memset(&job[i], 0, sizeof(job[i]));
		job[i].t = t;
		job[i].name = name;
		job[i].o = o;
		job[i].w = w;
		job[i].h = h;
		job[i].from = from + n * i / 2;
		job[i].to = from + n * (i + 1) / 2;
		job[i].out = out + n * i / 2 * npix;
		job[i].npix = npix;
	}
	if (pthread_create(&tid, NULL, decode_range, &job[1]) != 0) {
		decode_range(&job[0]);
		decode_range(&job[1]);
	} else {
		decode_range(&job[0]);
		pthread_join(tid, NULL);
	}
	if (job[0].failed || job[1].failed) {
		if (e != NULL)
			*e = (job[0].failed ? &job[0] : &job[1])->e;
		return -1;
	}
	return 0;
}
