/*
 * files.h - files in general: output published atomically (kz_out),
 * the SIGPIPE policy, and input gunzipped on the fly (kz_file,
 * kz_slurp).
 */
#ifndef KZ_FILES_H
#define KZ_FILES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core.h"

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

#endif
