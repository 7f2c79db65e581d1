/*
 * fuzz.c - libFuzzer harnesses for every parser of the kz library.
 * Built once per target with -DTARGET=n (see the Makefile's fuzz rule);
 * each feeds the fuzzer's bytes to one parser and frees what it made.
 * tests/regress.c includes this file without TARGET to replay every
 * input the fuzzers ever found against the same code.
 * Files are handed over through a memfd, so parsers that take a path
 * read exactly what they would read from disk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kz.h"
#include "model.h"

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
    "tar", "png", "pnm", "classmap", "model", "spec" };

/* Feeds data to the parser of target (1 to 10). */
static void
fuzz_one(int target, const uint8_t *data, size_t size)
{
	struct kz_err e;
	char path[64];
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
