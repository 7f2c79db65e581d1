/*
 * fuzz.c - libFuzzer harnesses for every parser of the kz library.
 * Built once per target with -DTARGET=n (see the Makefile's fuzz rule);
 * each feeds the fuzzer's bytes to one parser and frees what it made.
 * tests/regress.c includes this file without TARGET to replay every
 * input the fuzzers ever found against the same code.
 * Files are handed over through a memfd, so parsers that take a path
 * read exactly what they would read from disk.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "kz.h"
#include "model.h"
#include "util.h"

/* Writes data to an anonymous file; its /proc path goes into path. */
static int
memfile(const uint8_t *data, size_t size, char *path, size_t len)
{
	int fd = memfd_create("kz-fuzz", 0);

	if (fd < 0)
		return -1;
	if (size > 0 && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return -1;
	}
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

static const char *fuzz_names[] = { NULL, "stream", "npz", "npy", "idx",
    "tar", "png", "pnm", "classmap", "model", "spec", "modelx", "jpeg",
    "book", "glyphs" };
#define FUZZ_TARGETS 14

/* A book folder for the book harness: images/a.jpg and images/b.jpg
 * (empty: the parser only checks that they are files), made once; the
 * coordinate file is written into it for each input. */
static const char *
book_dir(void)
{
	static char dir[64];
	char path[128];
	FILE *f;

	if (dir[0] != '\0')
		return dir;
	snprintf(dir, sizeof(dir), "/tmp/kz-fuzz-book.%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/images", dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return NULL;
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return NULL;
	for (const char *id = "ab"; *id; id++) {
		snprintf(path, sizeof(path), "%s/images/%c.jpg", dir, *id);
		if ((f = fopen(path, "w")) == NULL)
			return NULL;
		fclose(f);
	}
	return dir;
}

/* The modelx harness's input: META's length (2 bytes, little-endian)
 * and text, then sections, each a tag number (1 byte, one of these, the
 * last unknown to the reader), a length (3 bytes) and as many bytes,
 * cut at the end of the input.  It becomes a model file of valid
 * structure, sizes and CRC: mutations then change what the sections
 * say, not whether the file holds together. */
static const char *const modelx_tags[] = { "KNNX", "KNNY", "PARM", "STAT",
    "OPTM", "OPTV", "BSTP", "BSTS", "EMAP", "EMAS", "CMAP", "PF16", "PQ8 ", "PQ4 ",
    "PQN ", "MEMB", "XTRA" };
#define MODELX_NTAGS (sizeof(modelx_tags) / sizeof(modelx_tags[0]))

/* Appends a section to the model being built in *out (len, cap). */
static int
modelx_put(uint8_t **out, size_t *len, size_t *cap, const char *tag,
    const uint8_t *data, size_t n)
{
	if (*len + 12 + n > *cap) {
		size_t c = 2 * (*len + 12 + n);
		uint8_t *p = realloc(*out, c);
		if (p == NULL)
			return -1;
		*out = p;
		*cap = c;
	}
	memcpy(*out + *len, tag, 4);
	put_le64(*out + *len + 4, n);
	memcpy(*out + *len + 12, data, n);
	*len += 12 + n;
	return 0;
}

/* The model file that modelx input data stands for (malloc'd, *len
 * bytes), or NULL. */
static uint8_t *
modelx_build(const uint8_t *data, size_t size, size_t *len)
{
	size_t cap = 4096, at, ml;
	uint8_t *out = malloc(cap);

	if (out == NULL)
		return NULL;
	memcpy(out, KZM_MAGIC, 8);
	put_le32(out + 8, KZM_VERSION);
	*len = 12;
	ml = size >= 2 ? (size_t)(data[0] | data[1] << 8) : 0;
	at = size >= 2 ? 2 : size;
	ml = ml < size - at ? ml : size - at;
	if (modelx_put(&out, len, &cap, "META", data + at, ml) != 0)
		goto fail;
	at += ml;
	while (size - at >= 4) {
		const char *tag = modelx_tags[data[at] % MODELX_NTAGS];
		size_t n = data[at + 1] | data[at + 2] << 8 |
		    (size_t)data[at + 3] << 16;

		at += 4;
		n = n < size - at ? n : size - at;
		if (modelx_put(&out, len, &cap, tag, data + at, n) != 0)
			goto fail;
		at += n;
	}
	uint8_t tail[4];
	put_le32(tail, (uint32_t)crc32(0, out, (uInt)*len));
	if (modelx_put(&out, len, &cap, "CRC ", tail, 4) != 0)
		goto fail;
	return out;
fail:
	free(out);
	return NULL;
}

/* Feeds data to the parser of target (1 to FUZZ_TARGETS). */
static void
fuzz_one(int target, const uint8_t *data, size_t size)
{
	struct kz_err e;
	char path[128];
	int fd;

	switch (target) {
	case 1: {	/* stream */
		FILE *fp = fmemopen((void *)data, size, "rb");
		if (fp == NULL)
			break;
		struct kz_reader *r = kz_reader_fdopen(fp, "fuzz", &e);
		if (r != NULL) {
			struct kz_record *rec = kz_record_new(kz_reader_header(r));
			while (rec && kz_reader_next(r, rec, &e) == 1)
				;
			kz_record_free(rec);
			kz_reader_close(r);
		}
		fclose(fp);
		break;
	}
	case 2: {	/* npz (zip + npy) */
		struct kz_array a;
		if (kz_npz_parse(data, size, "fuzz", &a, &e) == 0)
			kz_array_free(&a);
		break;
	}
	case 3: {	/* npy */
		struct kz_array a;
		kz_npy_parse(data, size, "fuzz", &a, &e);
		break;
	}
	case 4: {	/* idx, through the gzip layer */
		if ((fd = memfile(data, size, path, sizeof(path))) < 0)
			break;
		uint8_t *buf;
		size_t len;
		if (kz_slurp(path, 1 << 26, &buf, &len, &e) == 0) {
			struct kz_array a;
			kz_idx_parse(buf, len, "fuzz", &a, &e);
			free(buf);
		}
		close(fd);
		break;
	}
	case 5: {	/* tar (+gzip) */
		if ((fd = memfile(data, size, path, sizeof(path))) < 0)
			break;
		struct kz_file *f = kz_file_open(path, &e);
		if (f != NULL) {
			struct kz_tree t;
			if (kz_tree_from_tar(f, &t, &e) == 0)
				kz_tree_free(&t);
			kz_file_close(f);
		}
		close(fd);
		break;
	}
	case 6: {	/* PNG */
		struct kz_image img;
		if (kz_png_decode(data, size, "fuzz", &img, &e) == 0)
			free(img.pixels);
		break;
	}
	case 7: {	/* PNM */
		struct kz_image *imgs;
		size_t n;
		if (kz_pnm_decode(data, size, "fuzz", &imgs, &n, &e) == 0) {
			for (size_t i = 0; i < n; i++)
				free(imgs[i].pixels);
			free(imgs);
		}
		break;
	}
	case 8: {	/* class map */
		struct kz_classmap m;
		if (kz_classmap_parse((const char *)data, size, "fuzz", &m, &e) == 0)
			kz_classmap_free(&m);
		break;
	}
	case 9: {	/* model file */
		if ((fd = memfile(data, size, path, sizeof(path))) < 0)
			break;
		struct kz_model m;
		if (kz_model_read(path, &m, &e) == 0)
			kz_model_free(&m);
		close(fd);
		break;
	}
	case 10: {	/* CNN spec */
		char spec[512];
		struct kz_shape in = { 1, 28, 28 };
		size_t n = size < sizeof(spec) - 1 ? size : sizeof(spec) - 1;
		memcpy(spec, data, n);
		spec[n] = '\0';
		struct kz_net *net = kz_net_new(spec, in, 10, 1, &e);
		kz_net_free(net);
		break;
	}
	case 11: {	/* model file built from its parts */
		size_t len;
		uint8_t *file = modelx_build(data, size, &len);
		if (file == NULL)
			break;
		if ((fd = memfile(file, len, path, sizeof(path))) >= 0) {
			struct kz_model m;
			if (kz_model_read(path, &m, &e) == 0)
				kz_model_free(&m);
			close(fd);
		}
		free(file);
		break;
	}
	case 12: {	/* JPEG */
		struct kz_image img;
		if (kz_jpeg_decode(data, size, "fuzz", &img, &e) == 0)
			free(img.pixels);
		break;
	}
	case 13: {	/* a CODH book's coordinate file */
		const char *dir = book_dir();
		struct kz_book b;
		FILE *f;
		if (dir == NULL)
			break;
		snprintf(path, sizeof(path), "%s/x_coordinate.csv", dir);
		if ((f = fopen(path, "w")) == NULL)
			break;
		fwrite(data, 1, size, f);
		fclose(f);
		if (kz_book_open(path, &b, &e) == 0)
			kz_book_free(&b);
		break;
	}
	case 14: {	/* similar-glyphs index */
		if ((fd = memfile(data, size, path, sizeof(path))) < 0)
			break;
		struct kz_glyphs g;
		if (kz_glyphs_read(path, &g, &e) == 0)
			kz_glyphs_free(&g);
		close(fd);
		break;
	}
	}
	(void)e;
	(void)path;
	(void)fd;
}

#ifdef TARGET
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	kz_pnm_init((*argv)[0]);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_one(TARGET, data, size);
	return 0;
}
#endif
