/*
 * core.h - what every part of the kz library uses: errors carried back
 * to the programs (the conventions are kz.h's), and text kept on one
 * line and in one field.
 */
#ifndef KZ_CORE_H
#define KZ_CORE_H

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

/* ---- text -------------------------------------------------------------- */

/* A copy of s (malloc'd; NULL when out of memory) with a backslash
 * before a backslash, and tab, newline, carriage return and the other
 * control characters as \t, \n, \r and \xHH: any name, kept on one line
 * and in one tab-separated field. */
char *kz_escape(const char *s);

#endif
