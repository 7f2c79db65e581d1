/*
 * kz-info - describe a kz stream: header, record count, per-class
 * counts, pixel statistics.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void
usage(void)
{
	fprintf(stderr, "usage: kz-info [-t] [-c classmap] [file]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	const char *map_path = NULL;
	struct kz_classmap map = { 0 };
	struct kz_err e;
	int ch, tsv = 0;

	kz_ignore_sigpipe();
	while ((ch = getopt(argc, argv, "tc:")) != -1) {
		switch (ch) {
		case 't': tsv = 1; break;
		case 'c': map_path = optarg; break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1)
		usage();
	/* The header first: in "kz-unpack -C map ... | kz-info -c map" the
	 * map exists once the stream has begun. */
	struct kz_reader *r = kz_reader_open(argc ? argv[0] : "-", &e);
	if (r == NULL)
		errx(1, "%s", e.msg);
	if (map_path != NULL && kz_classmap_read(map_path, &map, &e) != 0)
		errx(1, "%s", e.msg);
	const struct kz_header *h = kz_reader_header(r);
	struct kz_record *rec = kz_record_new(h);
	size_t npix = (size_t)h->width * h->height;
	size_t nclass = h->nclasses;
	uint64_t *count = calloc(nclass + 1, sizeof(uint64_t));
	uint64_t unknown = 0, nonzero = 0, hist[256] = { 0 };
	double fsum = 0, fsum2 = 0, lo_f = INFINITY, hi_f = -INFINITY;
	int rc;

	if (rec == NULL || count == NULL)
		err(1, NULL);
	if (map_path != NULL && nclass > 0 && nclass != map.n)
		errx(1, "%s: %zu classes, but class map %s has %zu",
		    kz_reader_name(r), nclass, map_path, map.n);
	while ((rc = kz_reader_next(r, rec, &e)) == 1) {
		if (rec->label == KZ_LABEL_UNKNOWN) {
			unknown++;
		} else {
			if ((size_t)rec->label >= nclass) {
				/* A header without a class count: grow. */
				size_t ncount = (size_t)rec->label + 1;
				uint64_t *grown = realloc(count, (ncount + 1) *
				    sizeof(uint64_t));

				if (grown == NULL)
					err(1, NULL);
				memset(grown + nclass, 0, (ncount + 1 - nclass) *
				    sizeof(uint64_t));
				count = grown;
				nclass = ncount;
			}
			count[rec->label]++;
		}
		if (h->pixel == KZ_PIXEL_U8) {
			for (size_t i = 0; i < npix; i++)
				hist[rec->pixels[i]]++;
		} else {
			const float *p = (const float *)rec->pixels;

			for (size_t i = 0; i < npix; i++) {
				fsum += p[i];
				fsum2 += (double)p[i] * p[i];
				lo_f = p[i] < lo_f ? p[i] : lo_f;
				hi_f = p[i] > hi_f ? p[i] : hi_f;
				nonzero += p[i] != 0;
			}
		}
	}
	if (rc < 0)
		errx(1, "%s", e.msg);

	uint64_t n = kz_reader_count(r);
	double npixels = (double)n * npix, mean = 0, sd = 0, min = 0, max = 0;
	if (h->pixel == KZ_PIXEL_U8) {
		double s = 0, s2 = 0;
		int lo = -1, hi = -1;

		for (int v = 0; v < 256; v++) {
			s += (double)hist[v] * v;
			s2 += (double)hist[v] * v * v;
			if (hist[v] && lo < 0)
				lo = v;
			if (hist[v])
				hi = v;
		}
		nonzero = (uint64_t)npixels - hist[0];
		fsum = s;
		fsum2 = s2;
		min = lo < 0 ? 0 : lo;
		max = hi < 0 ? 0 : hi;
	} else if (n > 0) {
		min = lo_f;
		max = hi_f;
	}
	if (npixels > 0) {
		mean = fsum / npixels;
		sd = sqrt(fmax(0.0, fsum2 / npixels - mean * mean));
	}
	const char *pixname = h->pixel == KZ_PIXEL_U8 ? "u8" : "f32";
	if (tsv) {
		printf("version\t%d\nwidth\t%u\nheight\t%u\npixel\t%s\nk\t%u\n"
		    "classes\t%u\nrecord_size\t%zu\nrecords\t%llu\n"
		    "unknown\t%llu\nmin\t%g\nmax\t%g\nmean\t%.4f\n"
		    "stddev\t%.4f\nnonzero\t%.6f\n", KZ_VERSION, h->width,
		    h->height, pixname, h->k, h->nclasses, kz_record_size(h),
		    (unsigned long long)n, (unsigned long long)unknown, min,
		    max, mean, sd, npixels > 0 ? nonzero / npixels : 0.0);
	} else {
		printf("stream     %s (version %d)\n", kz_reader_name(r),
		    KZ_VERSION);
		printf("geometry   %ux%u %s, k %u, %u classes, %zu bytes per "
		    "record\n", h->width, h->height, pixname, h->k,
		    h->nclasses, kz_record_size(h));
		printf("records    %llu", (unsigned long long)n);
		if (unknown)
			printf(" (%llu unlabelled)", (unsigned long long)unknown);
		printf("\npixels     min %g, max %g, mean %.4f, sd %.4f, "
		    "non-zero %.2f%%\n", min, max, mean, sd,
		    npixels > 0 ? 100.0 * nonzero / npixels : 0.0);
		if (nclass > 0)
			printf("classes    index  count%s\n",
			    map_path ? "  codepoint  char" : "");
	}
	if (map_path != NULL && nclass > map.n)
		errx(1, "%s: labels reach %zu, but class map %s has %zu classes",
		    kz_reader_name(r), nclass - 1, map_path, map.n);
	for (size_t c = 0; c < nclass; c++) {
		if (tsv)
			printf("class\t%zu\t%llu", c,
			    (unsigned long long)count[c]);
		else
			printf("           %5zu  %5llu", c,
			    (unsigned long long)count[c]);
		if (map_path != NULL)
			printf(tsv ? "\tU+%04X\t%s" : "  U+%04X     %s",
			    map.codepoint[c], map.utf8[c]);
		putchar('\n');
	}
	check_stdout(1);
	kz_record_free(rec);
	kz_reader_close(r);
	free(count);
	kz_classmap_free(&map);
	close_stdout();
	return 0;
}
