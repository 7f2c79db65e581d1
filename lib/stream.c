/* stream.c - the kz record stream (man kz.5): header, reader, writer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kz.h"
#include "util.h"

#define IN_BUFFER (1 << 20)

size_t
kz_pixel_size(const struct kz_header *h)
{
	return h->pixel == KZ_PIXEL_F32 ? 4 : 1;
}

size_t
kz_record_size(const struct kz_header *h)
{
	return KZ_RECORD_PREFIX + (size_t)h->k * KZ_PRED_SIZE +
	    (size_t)h->width * h->height * kz_pixel_size(h);
}

int
kz_header_check(const struct kz_header *h, struct kz_err *e)
{
	if (h->width == 0 || h->width > KZ_MAX_DIM)
		return kz_errf(e, "header: width %u is not in 1..%d",
		    h->width, KZ_MAX_DIM);
	if (h->height == 0 || h->height > KZ_MAX_DIM)
		return kz_errf(e, "header: height %u is not in 1..%d",
		    h->height, KZ_MAX_DIM);
	if ((uint64_t)h->width * h->height > KZ_MAX_PIXELS)
		return kz_errf(e, "header: %ux%u is more than %u pixels",
		    h->width, h->height, KZ_MAX_PIXELS);
	if (h->pixel != KZ_PIXEL_U8 && h->pixel != KZ_PIXEL_F32)
		return kz_errf(e, "header: unknown pixel type %u", h->pixel);
	if (h->k > KZ_MAX_K)
		return kz_errf(e, "header: k %u is more than %d", h->k,
		    KZ_MAX_K);
	if (h->nclasses > KZ_MAX_CLASSES)
		return kz_errf(e, "header: %u classes is more than %d",
		    h->nclasses, KZ_MAX_CLASSES);
	if ((h->flags & ~KZ_FLAGS_KNOWN) != 0)
		return kz_errf(e, "header: unknown flags 0x%x",
		    h->flags & ~KZ_FLAGS_KNOWN);
	return 0;
}

void
kz_header_encode(const struct kz_header *h, uint8_t *b)
{
	memset(b, 0, KZ_HEADER_SIZE);
	memcpy(b, KZ_MAGIC, KZ_MAGIC_LEN);
	put_le16(b + 8, KZ_STREAM_VERSION);
	put_le16(b + 10, KZ_HEADER_SIZE);
	put_le16(b + 12, h->pixel);
	put_le16(b + 14, h->k);
	put_le32(b + 16, h->width);
	put_le32(b + 20, h->height);
	put_le32(b + 24, h->nclasses);
	put_le32(b + 28, h->flags);
}

int
kz_header_decode(const uint8_t *b, struct kz_header *h, struct kz_err *e)
{
	unsigned v, size;

	if (memcmp(b, KZ_MAGIC, KZ_MAGIC_LEN) != 0)
		return kz_errf(e, "not a kz stream (bad magic)");
	if ((v = get_le16(b + 8)) != KZ_STREAM_VERSION)
		return kz_errf(e, "header: unknown version %u (this is "
		    "version %d)", v, KZ_STREAM_VERSION);
	if ((size = get_le16(b + 10)) != KZ_HEADER_SIZE)
		return kz_errf(e, "header: size %u, expected %d", size,
		    KZ_HEADER_SIZE);
	h->pixel = get_le16(b + 12);
	h->k = get_le16(b + 14);
	h->width = get_le32(b + 16);
	h->height = get_le32(b + 20);
	h->nclasses = get_le32(b + 24);
	h->flags = get_le32(b + 28);
	return kz_header_check(h, e);
}

struct kz_record *
kz_record_new(const struct kz_header *h)
{
	struct kz_record *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->pred = calloc(h->k ? h->k : 1, sizeof(*r->pred));
	r->pixels = calloc((size_t)h->width * h->height, kz_pixel_size(h));
	if (r->pred == NULL || r->pixels == NULL) {
		kz_record_free(r);
		return NULL;
	}
	r->label = KZ_LABEL_UNKNOWN;
	return r;
}

void
kz_record_free(struct kz_record *r)
{
	if (r == NULL)
		return;
	free(r->pred);
	free(r->pixels);
	free(r);
}

/* ---- reader ----------------------------------------------------------- */

struct kz_reader {
	FILE *fp;
	int own;
	char *name;
	struct kz_header h;
	uint8_t first[KZ_HEADER_SIZE];	/* the first header, as read */
	uint8_t *buf;			/* one record */
	size_t size;			/* record size */
	uint64_t count;
};

/* Names the first field where two encoded headers differ. */
static const char *
header_diff(const uint8_t *a, const uint8_t *b)
{
	static const struct { int off, len; const char *name; } f[] = {
		{ 12, 2, "pixel type" }, { 14, 2, "k" }, { 16, 4, "width" },
		{ 20, 4, "height" }, { 24, 4, "classes" },
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (memcmp(a + f[i].off, b + f[i].off, f[i].len) != 0)
			return f[i].name;
	return "flags";
}

struct kz_reader *
kz_reader_fdopen(FILE *fp, const char *name, struct kz_err *e)
{
	struct kz_reader *r;
	size_t got;

	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->name = strdup(name)) == NULL) {
		free(r);
		kz_errf(e, "%s: out of memory", name);
		return NULL;
	}
	r->fp = fp;
	got = fread(r->first, 1, KZ_HEADER_SIZE, fp);
	if (got < KZ_HEADER_SIZE) {
		if (ferror(fp))
			kz_errf(e, "%s: %s", name, strerror(errno));
		else if (got == 0)
			kz_errf(e, "%s: empty input, not a kz stream", name);
		else if (memcmp(r->first, KZ_MAGIC, got < KZ_MAGIC_LEN ? got :
		    KZ_MAGIC_LEN) != 0)
			kz_errf(e, "%s: not a kz stream (bad magic)", name);
		else
			kz_errf(e, "%s: header truncated (%zu of %d bytes)",
			    name, got, KZ_HEADER_SIZE);
		goto fail;
	}
	if (kz_header_decode(r->first, &r->h, e) != 0) {
		kz_err_prefix(e, name);
		goto fail;
	}
	r->size = kz_record_size(&r->h);
	if ((r->buf = malloc(r->size)) == NULL) {
		kz_errf(e, "%s: out of memory", name);
		goto fail;
	}
	return r;
fail:
	free(r->name);
	free(r);
	return NULL;
}

struct kz_reader *
kz_reader_open(const char *path, struct kz_err *e)
{
	struct kz_reader *r;
	FILE *fp;

	if (path == NULL || strcmp(path, "-") == 0)
		return kz_reader_fdopen(stdin, "stdin", e);
	if ((fp = fopen(path, "rb")) == NULL) {
		kz_errf(e, "%s: %s", path, strerror(errno));
		return NULL;
	}
	setvbuf(fp, NULL, _IOFBF, IN_BUFFER);
	if ((r = kz_reader_fdopen(fp, path, e)) == NULL) {
		fclose(fp);
		return NULL;
	}
	r->own = 1;
	return r;
}

const struct kz_header *
kz_reader_header(const struct kz_reader *r)
{
	return &r->h;
}

const char *
kz_reader_name(const struct kz_reader *r)
{
	return r->name;
}

uint64_t
kz_reader_count(const struct kz_reader *r)
{
	return r->count;
}

/* Reads exactly n bytes; returns the count read (short only at EOF). */
static size_t
read_full(struct kz_reader *r, uint8_t *buf, size_t n)
{
	return fread(buf, 1, n, r->fp);
}

/* Checks rec's index, label and predicted classes against h: what
 * every reader refuses, no writer writes.  The message names the file
 * and record n. */
static int
record_check(const struct kz_header *h, const struct kz_record *rec,
    const char *name, uint64_t n, struct kz_err *e)
{
	uint32_t nl = h->nclasses > 0 ? h->nclasses : KZ_MAX_CLASSES;

	if (rec->index >= KZ_MAX_INDEX)
		return kz_errf(e, "%s: record %llu: index %llu is not below "
		    "2^48", name, (unsigned long long)n,
		    (unsigned long long)rec->index);
	if (rec->label < KZ_LABEL_UNKNOWN || rec->label >= (int64_t)nl)
		return kz_errf(e, "%s: record %llu: label %d is not in "
		    "0..%u", name, (unsigned long long)n, rec->label, nl - 1);
	for (unsigned i = 0; i < h->k; i++)
		if (rec->pred[i].cls >= nl)
			return kz_errf(e, "%s: record %llu: predicted class "
			    "%u is not below %u", name, (unsigned long long)n,
			    rec->pred[i].cls, nl);
	return 0;
}

int
kz_reader_next(struct kz_reader *r, struct kz_record *rec, struct kz_err *e)
{
	const struct kz_header *h = &r->h;
	size_t got, off;
	uint8_t hdr[KZ_HEADER_SIZE];

again:
	got = read_full(r, r->buf, KZ_MAGIC_LEN);
	if (got == 0 && !ferror(r->fp))
		return 0;
	if (got == KZ_MAGIC_LEN && memcmp(r->buf, KZ_MAGIC,
	    KZ_MAGIC_LEN) == 0) {
		/* A repeated header, as "cat a.kz b.kz" makes. */
		memcpy(hdr, r->buf, KZ_MAGIC_LEN);
		got = read_full(r, hdr + KZ_MAGIC_LEN,
		    KZ_HEADER_SIZE - KZ_MAGIC_LEN);
		if (got != KZ_HEADER_SIZE - KZ_MAGIC_LEN)
			return kz_errf(e, "%s: record %llu: repeated header "
			    "truncated", r->name,
			    (unsigned long long)r->count);
		if (memcmp(hdr, r->first, KZ_HEADER_SIZE) != 0) {
			struct kz_header other;

			if (kz_header_decode(hdr, &other, e) != 0)
				return kz_errf(e, "%s: record %llu: repeated "
				    "header is invalid", r->name,
				    (unsigned long long)r->count);
			return kz_errf(e, "%s: record %llu: repeated header "
			    "is incompatible (%s differs)", r->name,
			    (unsigned long long)r->count,
			    header_diff(hdr, r->first));
		}
		goto again;
	}
	if (got == KZ_MAGIC_LEN)
		got += read_full(r, r->buf + KZ_MAGIC_LEN,
		    r->size - KZ_MAGIC_LEN);
	if (got < r->size) {
		if (ferror(r->fp))
			return kz_errf(e, "%s: record %llu: %s", r->name,
			    (unsigned long long)r->count, strerror(errno));
		return kz_errf(e, "%s: record %llu: truncated (%zu of %zu "
		    "bytes)", r->name, (unsigned long long)r->count, got,
		    r->size);
	}
	rec->index = get_le64(r->buf);
	rec->label = (int32_t)get_le32(r->buf + 8);
	off = KZ_RECORD_PREFIX;
	for (unsigned i = 0; i < h->k; i++, off += KZ_PRED_SIZE) {
		rec->pred[i].cls = get_le32(r->buf + off);
		rec->pred[i].score = get_lef32(r->buf + off + 4);
	}
	if (record_check(h, rec, r->name, r->count, e) != 0)
		return -1;
	memcpy(rec->pixels, r->buf + off, r->size - off);
	r->count++;
	return 1;
}

void
kz_reader_close(struct kz_reader *r)
{
	if (r == NULL)
		return;
	if (r->own)
		fclose(r->fp);
	free(r->buf);
	free(r->name);
	free(r);
}

/* ---- writer ----------------------------------------------------------- */

struct kz_writer {
	struct kz_out out;
	struct kz_header h;
	uint8_t *buf;
	size_t size;
	uint64_t count;			/* records written */
};

struct kz_writer *
kz_writer_open(const char *path, const struct kz_header *h, struct kz_err *e)
{
	struct kz_writer *w;
	uint8_t hdr[KZ_HEADER_SIZE];

	if (kz_header_check(h, e) != 0)
		return NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		kz_errf(e, "out of memory");
		return NULL;
	}
	w->h = *h;
	w->size = kz_record_size(h);
	if ((w->buf = malloc(w->size)) == NULL) {
		free(w);
		kz_errf(e, "out of memory");
		return NULL;
	}
	if (kz_out_open(&w->out, path, e) != 0) {
		free(w->buf);
		free(w);
		return NULL;
	}
	kz_header_encode(h, hdr);
	if (kz_out_write(&w->out, hdr, sizeof(hdr), e) != 0) {
		kz_writer_abort(w);
		return NULL;
	}
	return w;
}

int
kz_writer_put(struct kz_writer *w, const struct kz_record *rec,
    struct kz_err *e)
{
	size_t off = KZ_RECORD_PREFIX;

	if (record_check(&w->h, rec, w->out.path ? w->out.path : "stdout",
	    w->count, e) != 0)
		return -1;
	w->count++;
	put_le64(w->buf, rec->index);
	put_le32(w->buf + 8, (uint32_t)rec->label);
	for (unsigned i = 0; i < w->h.k; i++, off += KZ_PRED_SIZE) {
		put_le32(w->buf + off, rec->pred[i].cls);
		put_lef32(w->buf + off + 4, rec->pred[i].score);
	}
	memcpy(w->buf + off, rec->pixels, w->size - off);
	return kz_out_write(&w->out, w->buf, w->size, e);
}

int
kz_writer_close(struct kz_writer *w, struct kz_err *e)
{
	int rc = kz_out_close(&w->out, e);
	int saved = errno;

	free(w->buf);
	free(w);
	errno = saved;
	return rc;
}

void
kz_writer_abort(struct kz_writer *w)
{
	if (w == NULL)
		return;
	kz_out_abort(&w->out);
	free(w->buf);
	free(w);
}
