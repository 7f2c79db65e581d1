/* classmap.c - class maps: CSV "index,codepoint,char". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kz.h"
#include "util.h"

#define CLASSMAP_MAX_BYTES (64u << 20)
#define FIELD_MAX 64

int
kz_utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		out[1] = '\0';
		return cp == 0 ? 0 : 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		out[2] = '\0';
		return 2;
	}
	if (cp >= 0xD800 && cp <= 0xDFFF)
		return 0;
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		out[3] = '\0';
		return 3;
	}
	if (cp <= 0x10FFFF) {
		out[0] = (char)(0xF0 | cp >> 18);
		out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
		out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
		out[3] = (char)(0x80 | (cp & 0x3F));
		out[4] = '\0';
		return 4;
	}
	return 0;
}

/* Decodes one UTF-8 sequence strictly (no overlong forms, no surrogates);
 * returns its length or 0 when invalid. */
static int
utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	int n;
	uint32_t v, min;

	if (len == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if ((s[0] & 0xE0) == 0xC0) {
		n = 2; v = s[0] & 0x1F; min = 0x80;
	} else if ((s[0] & 0xF0) == 0xE0) {
		n = 3; v = s[0] & 0x0F; min = 0x800;
	} else if ((s[0] & 0xF8) == 0xF0) {
		n = 4; v = s[0] & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if ((size_t)n > len)
		return 0;
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return n;
}

void
kz_classmap_free(struct kz_classmap *m)
{
	free(m->codepoint);
	free(m->utf8);
	memset(m, 0, sizeof(*m));
}

/* A data row of a class map, kept until every row is read. */
struct row {
	long idx;
	uint32_t cp;
	size_t line;	/* for messages */
};

/* Skips a UTF-8 byte order mark and the header line at *p (before
 * end), moving *p to the first row.  0, or -1 when the header is not
 * "index,codepoint,char". */
static int
skip_header(const char **p, const char *end, const char *name,
    struct kz_err *e)
{
	const char *s = *p, *nl, *hend;

	kz_csv_skip_bom(&s, end);
	nl = memchr(s, '\n', (size_t)(end - s));
	hend = nl ? nl : end;
	if (hend > s && hend[-1] == '\r')
		hend--;
	if ((size_t)(hend - s) != strlen("index,codepoint,char") ||
	    memcmp(s, "index,codepoint,char", (size_t)(hend - s)) != 0)
		return kz_errf(e, "%s: line 1: header is not "
		    "\"index,codepoint,char\"", name);
	*p = nl ? nl + 1 : end;
	return 0;
}

/* Splits line number line, at *p (before end), into its three fields
 * f and moves *p past its end.  0, or -1 when a field is too long or
 * badly quoted, or the line does not hold exactly three. */
static int
split_row(const char **p, const char *end, char f[][FIELD_MAX + 1],
    const char *name, size_t line, struct kz_err *e)
{
	const char *s = *p;

	for (int i = 0; i < 3; i++) {
		if (kz_csv_field(&s, end, f[i], FIELD_MAX) < 0)
			return kz_errf(e, "%s: line %zu: field %d is too long "
			    "or badly quoted", name, line, i + 1);
		if (i < 2) {
			if (s >= end || *s != ',')
				return kz_errf(e, "%s: line %zu: expected 3 "
				    "fields", name, line);
			s++;
		}
	}
	if (s < end && *s == '\r')
		s++;
	if (s < end && *s != '\n')
		return kz_errf(e, "%s: line %zu: expected 3 fields", name,
		    line);
	if (s < end)
		s++;
	*p = s;
	return 0;
}

/* Checks the fields f of line number line, an index below
 * KZ_MAX_CLASSES, a code point "U+XXXX" and that character in UTF-8,
 * and stores them in *r.  0, or -1 naming the field at fault. */
static int
parse_row(char f[][FIELD_MAX + 1], const char *name, size_t line,
    struct row *r, struct kz_err *e)
{
	char *ep;
	long idx;
	uint32_t cp, ch;
	size_t flen;
	int n;

	errno = 0;
	idx = strtol(f[0], &ep, 10);
	if (f[0][0] == '\0' || *ep != '\0' || idx < 0 ||
	    idx >= KZ_MAX_CLASSES || errno)
		return kz_errf(e, "%s: line %zu: bad index \"%s\"", name,
		    line, f[0]);
	if (kz_parse_codepoint(f[1], strlen(f[1]), &cp) != 0)
		return kz_errf(e, "%s: line %zu: bad codepoint \"%s\" (want "
		    "U+XXXX)", name, line, f[1]);
	flen = strlen(f[2]);
	n = utf8_decode((const unsigned char *)f[2], flen, &ch);
	if (n == 0 || (size_t)n != flen)
		return kz_errf(e, "%s: line %zu: char is not one valid UTF-8 "
		    "character", name, line);
	if (ch != cp)
		return kz_errf(e, "%s: line %zu: char U+%04X does not match "
		    "codepoint %s", name, line, ch, f[1]);
	r->idx = idx;
	r->cp = cp;
	r->line = line;
	return 0;
}

/* Reads the rows from p, just after the header line, to end into
 * *rows, a growing array of *n rows (both start empty), skipping blank
 * lines.  0, or -1 naming the line at fault or running out of memory;
 * the caller frees *rows either way. */
static int
read_rows(const char *p, const char *end, const char *name,
    struct row **rows, size_t *n, struct kz_err *e)
{
	char f[3][FIELD_MAX + 1];
	size_t line = 1, cap = 0;
	struct row r, *nr;

	while (p < end) {
		line++;
		if (kz_csv_skip_blank(&p, end))
			continue;
		if (split_row(&p, end, f, name, line, e) != 0 ||
		    parse_row(f, name, line, &r, e) != 0)
			return -1;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nr = realloc(*rows, cap * sizeof(*nr))) == NULL)
				return kz_errf(e, "%s: out of memory", name);
			*rows = nr;
		}
		(*rows)[(*n)++] = r;
	}
	return 0;
}

/* The smallest of 0..n-1 that no row holds as its index; n when none
 * is missing.  seen (n bytes, some set already) is marked for every
 * row first: a search of the rows for each index in turn took minutes
 * for a map of a million rows. */
static size_t
first_missing(const struct row *row, size_t n, char *seen)
{
	size_t miss = 0;

	for (size_t j = 0; j < n; j++)
		if ((size_t)row[j].idx < n)
			seen[row[j].idx] = 1;
	while (miss < n && seen[miss])
		miss++;
	return miss;
}

/* Fills the empty m from rows (n of them, n > 0), whose indices must
 * be 0..n-1, each exactly once.  0, or -1 naming the first row at
 * fault or running out of memory; m may then hold allocations. */
static int
fill_map(const struct row *row, size_t n, const char *name,
    struct kz_classmap *m, struct kz_err *e)
{
	char *seen;

	m->n = n;
	m->codepoint = calloc(n, sizeof(*m->codepoint));
	m->utf8 = calloc(n, sizeof(*m->utf8));
	seen = calloc(n, 1);
	if (m->codepoint == NULL || m->utf8 == NULL || seen == NULL) {
		free(seen);
		return kz_errf(e, "%s: out of memory", name);
	}
	for (size_t i = 0; i < n; i++) {
		size_t idx = (size_t)row[i].idx;

		if (idx >= n) {
			size_t miss = first_missing(row, n, seen);

			free(seen);
			return kz_errf(e, "%s: line %zu: index %zu, but %zu "
			    "rows (index %zu is missing)", name, row[i].line,
			    idx, n, miss);
		}
		if (seen[idx]) {
			free(seen);
			return kz_errf(e, "%s: line %zu: duplicate index %zu",
			    name, row[i].line, idx);
		}
		seen[idx] = 1;
		m->codepoint[idx] = row[i].cp;
		kz_utf8_encode(row[i].cp, m->utf8[idx]);
	}
	free(seen);
	return 0;
}

int
kz_classmap_from_codepoints(const uint32_t *cp, size_t n, const char *name,
    struct kz_classmap *m, struct kz_err *e)
{
	memset(m, 0, sizeof(*m));
	m->codepoint = calloc(n + 1, sizeof(*m->codepoint));
	m->utf8 = calloc(n + 1, sizeof(*m->utf8));
	if (m->codepoint == NULL || m->utf8 == NULL) {
		kz_classmap_free(m);
		return kz_errf(e, "%s: out of memory", name);
	}
	m->n = n;
	for (size_t i = 0; i < n; i++) {
		if (kz_utf8_encode(cp[i], m->utf8[i]) == 0) {
			kz_errf(e, "%s: class %zu has code point U+%04X, not a "
			    "character", name, i, cp[i]);
			kz_classmap_free(m);
			return -1;
		}
		m->codepoint[i] = cp[i];
	}
	return 0;
}

int
kz_classmap_parse(const char *buf, size_t len, const char *name,
    struct kz_classmap *m, struct kz_err *e)
{
	const char *p = buf, *end = buf + len;
	struct row *row = NULL;
	size_t rows = 0;

	memset(m, 0, sizeof(*m));
	if (skip_header(&p, end, name, e) != 0)
		return -1;
	if (read_rows(p, end, name, &row, &rows, e) != 0)
		goto fail;
	if (rows == 0) {
		kz_errf(e, "%s: no classes", name);
		goto fail;
	}
	if (fill_map(row, rows, name, m, e) != 0)
		goto fail;
	free(row);
	return 0;
fail:
	free(row);
	kz_classmap_free(m);
	return -1;
}

int
kz_classmap_read(const char *path, struct kz_classmap *m, struct kz_err *e)
{
	uint8_t *buf;
	size_t len;
	int rc;

	if (kz_slurp(path, CLASSMAP_MAX_BYTES, &buf, &len, e) != 0)
		return -1;
	rc = kz_classmap_parse((const char *)buf, len, path, m, e);
	free(buf);
	return rc;
}

int
kz_classmap_write(const struct kz_classmap *m, const char *path,
    struct kz_err *e)
{
	struct kz_out o;
	char line[64];

	if (kz_out_open(&o, path, e) != 0)
		return -1;
	if (kz_out_write(&o, "index,codepoint,char\n", 21, e) != 0)
		goto fail;
	for (size_t i = 0; i < m->n; i++) {
		int n = snprintf(line, sizeof(line), "%zu,U+%04X,%s\n", i,
		    m->codepoint[i], m->utf8[i]);
		if (kz_out_write(&o, line, (size_t)n, e) != 0)
			goto fail;
	}
	return kz_out_close(&o, e);
fail:
	kz_out_abort(&o);
	return -1;
}

long
kz_classmap_find(const struct kz_classmap *m, uint32_t cp)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->codepoint[i] == cp)
			return (long)i;
	return -1;
}

long
kz_classmap_lookup(const struct kz_classmap *m, const char *s)
{
	uint32_t cp;

	if (kz_parse_codepoint(s, strlen(s), &cp) == 0)
		return kz_classmap_find(m, cp);
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->utf8[i], s) == 0)
			return (long)i;
	return -1;
}

static int
compare_variant(const void *key, const void *elem)
{
	uint32_t cp = *(const uint32_t *)key;
	const struct kz_variant *v = elem;

	return cp < v->old ? -1 : cp > v->old;
}

/* The index in kz_variants of the pair whose old form is cp, or -1. */
static long
variant_index(uint32_t cp)
{
	const struct kz_variant *v = bsearch(&cp, kz_variants, kz_nvariants,
	    sizeof(*kz_variants), compare_variant);

	return v != NULL ? (long)(v - kz_variants) : -1;
}

uint32_t
kz_modern_form(uint32_t cp)
{
	long i = variant_index(cp);

	return i >= 0 ? kz_variants[i].modern : cp;
}

size_t
kz_classmap_fold(const struct kz_classmap *m, uint32_t *fold)
{
	/* Each pair's modern class is looked for once: a map that
	 * repeats an old form a million times must not cost a million
	 * searches of the map. */
	long modern_class[KZ_VARIANTS_MAX];
	size_t folded = 0;

	for (size_t i = 0; i < kz_nvariants; i++)
		modern_class[i] = -2;		/* not looked for yet */
	for (size_t c = 0; c < m->n; c++) {
		long i = variant_index(m->codepoint[c]), to = -1;

		if (i >= 0) {
			if (modern_class[i] == -2)
				modern_class[i] = kz_classmap_find(m,
				    kz_variants[i].modern);
			to = modern_class[i];
		}
		fold[c] = to >= 0 ? (uint32_t)to : (uint32_t)c;
		folded += to >= 0;
	}
	return folded;
}
