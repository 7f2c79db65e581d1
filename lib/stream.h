/*
 * stream.h - the kz record stream (man kz.5): its header, its records,
 * the bounds every reader enforces, and the stream reader and writer.
 */
#ifndef KZ_STREAM_H
#define KZ_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core.h"

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
	uint32_t flags;		/* KZ_FLAG_* */
};

/* The labels write old character forms as their modern forms (氣 as
 * 気), as the transcription of a book may: kz-classify then gives a
 * class's score to the class of its modern form (kz_classmap_fold). */
#define KZ_FLAG_MODERN 1u
#define KZ_FLAGS_KNOWN KZ_FLAG_MODERN

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

#endif
