/* classmap.c - class maps: CSV "index,codepoint,char". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kz.h"

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

/* Splits the next CSV field off *p (up to end or the line's end);
 * handles double quotes.  Returns the field length or -1. */
static int
csv_field(const char **p, const char *end, char *out)
{
	const char *s = *p;
	size_t n = 0;

	if (s < end && *s == '"') {
		for (s++;; s++) {
			if (s >= end)
				return -1;
			if (*s == '"') {
				if (s + 1 < end && s[1] == '"')
					s++;
				else
					break;
			}
			if (n == FIELD_MAX)
				return -1;
			out[n++] = *s;
		}
		s++;
	} else {
		for (; s < end && *s != ',' && *s != '\n' && *s != '\r'; s++) {
			if (n == FIELD_MAX)
				return -1;
			out[n++] = *s;
		}
	}
	out[n] = '\0';
	*p = s;
	return (int)n;
}

void
kz_classmap_free(struct kz_classmap *m)
{
	free(m->codepoint);
	free(m->utf8);
	memset(m, 0, sizeof(*m));
}

int
kz_classmap_parse(const char *buf, size_t len, const char *name,
    struct kz_classmap *m, struct kz_err *e)
{
	const char *p = buf, *end = buf + len;
	size_t line = 1, rows = 0, cap = 0;
	struct { long idx; uint32_t cp; size_t line; } *row = NULL, *nr;
	char f[3][FIELD_MAX + 1];

	memset(m, 0, sizeof(*m));
	if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	const char *hend = nl ? nl : end;
	if (hend > p && hend[-1] == '\r')
		hend--;
	if ((size_t)(hend - p) != strlen("index,codepoint,char") ||
	    memcmp(p, "index,codepoint,char", (size_t)(hend - p)) != 0)
		return kz_errf(e, "%s: line 1: header is not "
		    "\"index,codepoint,char\"", name);
	p = nl ? nl + 1 : end;
	while (p < end) {
		line++;
		if (*p == '\n' || *p == '\r') {	/* blank line */
			p += (*p == '\r' && p + 1 < end && p[1] == '\n') ? 2 : 1;
			continue;
		}
		for (int i = 0; i < 3; i++) {
			if (csv_field(&p, end, f[i]) < 0) {
				kz_errf(e, "%s: line %zu: field %d is too long "
				    "or badly quoted", name, line, i + 1);
				goto fail;
			}
			if (i < 2) {
				if (p >= end || *p != ',') {
					kz_errf(e, "%s: line %zu: expected 3 "
					    "fields", name, line);
					goto fail;
				}
				p++;
			}
		}
		if (p < end && *p == '\r')
			p++;
		if (p < end && *p != '\n') {
			kz_errf(e, "%s: line %zu: expected 3 fields", name,
			    line);
			goto fail;
		}
		if (p < end)
			p++;
		char *ep;
		errno = 0;
		long idx = strtol(f[0], &ep, 10);
		if (f[0][0] == '\0' || *ep != '\0' || idx < 0 ||
		    idx >= KZ_MAX_CLASSES || errno) {
			kz_errf(e, "%s: line %zu: bad index \"%s\"", name,
			    line, f[0]);
			goto fail;
		}
		uint32_t cp, ch;
		if (kz_parse_codepoint(f[1], strlen(f[1]), &cp) != 0) {
			kz_errf(e, "%s: line %zu: bad codepoint \"%s\" (want "
			    "U+XXXX)", name, line, f[1]);
			goto fail;
		}
		size_t flen = strlen(f[2]);
		int n = utf8_decode((const unsigned char *)f[2], flen, &ch);
		if (n == 0 || (size_t)n != flen) {
			kz_errf(e, "%s: line %zu: char is not one valid UTF-8 "
			    "character", name, line);
			goto fail;
		}
		if (ch != cp) {
			kz_errf(e, "%s: line %zu: char U+%04X does not match "
			    "codepoint %s", name, line, ch, f[1]);
			goto fail;
		}
		if (rows == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nr = realloc(row, cap * sizeof(*row))) == NULL) {
				kz_errf(e, "%s: out of memory", name);
				goto fail;
			}
			row = nr;
		}
		row[rows].idx = idx;
		row[rows].cp = cp;
		row[rows].line = line;
		rows++;
	}
	if (rows == 0) {
		kz_errf(e, "%s: no classes", name);
		goto fail;
	}
	m->n = rows;
	m->codepoint = calloc(rows, sizeof(*m->codepoint));
	m->utf8 = calloc(rows, sizeof(*m->utf8));
	char *seen = calloc(rows, 1);
	if (m->codepoint == NULL || m->utf8 == NULL || seen == NULL) {
		free(seen);
		kz_errf(e, "%s: out of memory", name);
		goto fail;
	}
	for (size_t i = 0; i < rows; i++) {
		size_t idx = (size_t)row[i].idx;

		if (idx >= rows) {
			size_t miss = 0;
			while (miss < rows) {
				size_t j;
				for (j = 0; j < rows && (size_t)row[j].idx !=
				    miss; j++)
					;
				if (j == rows)
					break;
				miss++;
			}
			kz_errf(e, "%s: line %zu: index %zu, but %zu rows "
			    "(index %zu is missing)", name, row[i].line, idx,
			    rows, miss);
			free(seen);
			goto fail;
		}
		if (seen[idx]) {
			kz_errf(e, "%s: line %zu: duplicate index %zu", name,
			    row[i].line, idx);
			free(seen);
			goto fail;
		}
		seen[idx] = 1;
		m->codepoint[idx] = row[i].cp;
		kz_utf8_encode(row[i].cp, m->utf8[idx]);
	}
	free(seen);
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
