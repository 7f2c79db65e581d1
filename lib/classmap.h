/*
 * classmap.h - class maps, CSV "index,codepoint,char": the character
 * of each class, read, written, looked up; and UTF-8 encoding.
 */
#ifndef KZ_CLASSMAP_H
#define KZ_CLASSMAP_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

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
/* ---- old and modern character forms ------------------------------------ */

/* An old or variant kanji form and its modern form: 氣 and 気. */
struct kz_variant {
	uint32_t old, modern;
};
/* The old and variant forms that Japan's Jinmeiyo list gives beside a
 * Joyo or Jinmeiyo kanji, sorted by old, no modern form itself an old
 * one (lib/variants.c, made by tools/variants.sh from Unihan's
 * kJinmeiyoKanji; tests/unit.c holds it to both). */
#define KZ_VARIANTS_MAX 512	/* pairs, at most (a static assertion) */
extern const struct kz_variant kz_variants[];
extern const size_t kz_nvariants;
/* The modern form of cp, or cp when the table has none. */
uint32_t kz_modern_form(uint32_t cp);
/* Fills fold (m->n entries): for each class, the class of its modern
 * form when m has that class (its first, if the map repeats it), else
 * the class itself.  Returns how many classes fold onto another.  Time
 * linear in m->n, whatever the map holds. */
size_t kz_classmap_fold(const struct kz_classmap *m, uint32_t *fold);

/* Encodes cp as UTF-8 into out (>= 5 bytes, NUL-terminated); returns
 * its length, 0 for an invalid code point. */
int kz_utf8_encode(uint32_t cp, char *out);

#endif
