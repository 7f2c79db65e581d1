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

/* The command line, as parse_command_line leaves it. */
struct cmdline {
	const char *map_path;	/* -c: the class map, or NULL */
	const char *input;	/* the stream, "-" for stdin */
	int tsv;		/* -t: key-value lines, not the report */
};

/* What the stream's records add up to. */
struct tally {
	size_t nclass;		/* classes: the header's, or as labels go */
	uint64_t *count;	/* records of each class */
	uint64_t unknown;	/* records without a label */
	uint64_t hist[256];	/* u8 streams: pixels of each value */
	double fsum, fsum2;	/* f32 streams: sums of pixels, squares */
	double lo_f, hi_f;	/* f32 streams: extremes */
	uint64_t nonzero;	/* f32 streams: pixels not 0 */
};

/* The pixel statistics of the whole stream. */
struct stats {
	double npixels, mean, sd, min, max;
	uint64_t nonzero;	/* pixels not 0 */
};

static void
usage(void)
{
	fprintf(stderr, "usage: kz-info [-t] [-c classmap] [file]\n");
	version_usage("kz-info");
	exit(2);
}

/* Fills cl from the command line, or exits 2 with the usage. */
static void
parse_command_line(int argc, char *argv[], struct cmdline *cl)
{
	int ch;

	memset(cl, 0, sizeof(*cl));
	while ((ch = getopt(argc, argv, "tc:")) != -1) {
		switch (ch) {
		case 't': cl->tsv = 1; break;
		case 'c': cl->map_path = optarg; break;
		default: usage();
		}
	}
	if (argc - optind > 1)
		usage();
	cl->input = optind < argc ? argv[optind] : "-";
}

/* Counts a record's label into t, growing the counts for a header
 * without a class count. */
static void
count_label(struct tally *t, int32_t label)
{
	if (label == KZ_LABEL_UNKNOWN) {
		t->unknown++;
		return;
	}
	if ((size_t)label >= t->nclass) {
		size_t ncount = (size_t)label + 1;
		uint64_t *grown = realloc(t->count, (ncount + 1) *
		    sizeof(uint64_t));

		if (grown == NULL)
			err(1, NULL);
		memset(grown + t->nclass, 0, (ncount + 1 - t->nclass) *
		    sizeof(uint64_t));
		t->count = grown;
		t->nclass = ncount;
	}
	t->count[label]++;
}

/* Reads the stream to its end into t. */
static void
tally(struct kz_reader *r, struct tally *t)
{
	const struct kz_header *h = kz_reader_header(r);
	struct kz_record *rec = kz_record_new(h);
	size_t npix = (size_t)h->width * h->height;
	struct kz_err e;
	int rc;

	if (rec == NULL)
		err(1, NULL);
	while ((rc = kz_reader_next(r, rec, &e)) == 1) {
		count_label(t, rec->label);
		if (h->pixel == KZ_PIXEL_U8) {
			for (size_t i = 0; i < npix; i++)
				t->hist[rec->pixels[i]]++;
		} else {
			const float *p = (const float *)rec->pixels;

			for (size_t i = 0; i < npix; i++) {
				t->fsum += p[i];
				t->fsum2 += (double)p[i] * p[i];
				t->lo_f = p[i] < t->lo_f ? p[i] : t->lo_f;
				t->hi_f = p[i] > t->hi_f ? p[i] : t->hi_f;
				t->nonzero += p[i] != 0;
			}
		}
	}
	if (rc < 0)
		errx(1, "%s", e.msg);
	kz_record_free(rec);
}

/* The pixel statistics of n records of header h from t. */
static void
pixel_stats(const struct kz_header *h, uint64_t n, const struct tally *t,
    struct stats *st)
{
	double fsum = t->fsum, fsum2 = t->fsum2;

	memset(st, 0, sizeof(*st));
	st->npixels = (double)n * ((size_t)h->width * h->height);
	st->nonzero = t->nonzero;
	if (h->pixel == KZ_PIXEL_U8) {
		double s = 0, s2 = 0;
		int lo = -1, hi = -1;

		for (int v = 0; v < 256; v++) {
			s += (double)t->hist[v] * v;
			s2 += (double)t->hist[v] * v * v;
			if (t->hist[v] && lo < 0)
				lo = v;
			if (t->hist[v])
				hi = v;
		}
		st->nonzero = (uint64_t)st->npixels - t->hist[0];
		fsum = s;
		fsum2 = s2;
		st->min = lo < 0 ? 0 : lo;
		st->max = hi < 0 ? 0 : hi;
	} else if (n > 0) {
		st->min = t->lo_f;
		st->max = t->hi_f;
	}
	if (st->npixels > 0) {
		st->mean = fsum / st->npixels;
		st->sd = sqrt(fmax(0.0, fsum2 / st->npixels -
		    st->mean * st->mean));
	}
}

/* The header, the counts and the pixel statistics: as key-value lines
 * with -t, else for people. */
static void
print_summary(const struct cmdline *cl, struct kz_reader *r,
    const struct tally *t, const struct stats *st)
{
	const struct kz_header *h = kz_reader_header(r);
	const char *pixname = h->pixel == KZ_PIXEL_U8 ? "u8" : "f32";
	unsigned long long n = kz_reader_count(r);

	if (cl->tsv) {
		printf("version\t%d\nwidth\t%u\nheight\t%u\npixel\t%s\nk\t%u\n"
		    "classes\t%u\nrecord_size\t%zu\nrecords\t%llu\n"
		    "unknown\t%llu\nmin\t%g\nmax\t%g\nmean\t%.4f\n"
		    "stddev\t%.4f\nnonzero\t%.6f\nforms\t%s\n",
		    KZ_STREAM_VERSION, h->width, h->height, pixname, h->k,
		    h->nclasses, kz_record_size(h), n,
		    (unsigned long long)t->unknown, st->min, st->max,
		    st->mean, st->sd, st->npixels > 0 ? st->nonzero /
		    st->npixels : 0.0, h->flags & KZ_FLAG_MODERN ? "modern" :
		    "keep");
		return;
	}
	printf("stream     %s (version %d)\n", kz_reader_name(r), KZ_STREAM_VERSION);
	printf("geometry   %ux%u %s, k %u, %u classes, %zu bytes per "
	    "record\n", h->width, h->height, pixname, h->k, h->nclasses,
	    kz_record_size(h));
	printf("records    %llu", n);
	if (t->unknown)
		printf(" (%llu unlabelled)", (unsigned long long)t->unknown);
	if (h->flags & KZ_FLAG_MODERN)
		printf(", labels in modern forms");
	printf("\npixels     min %g, max %g, mean %.4f, sd %.4f, "
	    "non-zero %.2f%%\n", st->min, st->max, st->mean, st->sd,
	    st->npixels > 0 ? 100.0 * st->nonzero / st->npixels : 0.0);
	if (t->nclass > 0)
		printf("classes    index  count%s\n",
		    cl->map_path ? "  codepoint  char" : "");
}

/* A line per class: its count, and with -c its character. */
static void
print_classes(const struct cmdline *cl, const struct tally *t,
    const struct kz_classmap *map)
{
	for (size_t c = 0; c < t->nclass; c++) {
		if (cl->tsv)
			printf("class\t%zu\t%llu", c,
			    (unsigned long long)t->count[c]);
		else
			printf("           %5zu  %5llu", c,
			    (unsigned long long)t->count[c]);
		if (cl->map_path != NULL)
			printf(cl->tsv ? "\tU+%04X\t%s" : "  U+%04X     %s",
			    map->codepoint[c], map->utf8[c]);
		putchar('\n');
	}
}

int
main(int argc, char *argv[])
{
	struct cmdline cl;
	struct kz_classmap map = { 0 };
	struct kz_reader *r;
	struct tally t = { .lo_f = INFINITY, .hi_f = -INFINITY };
	struct stats st;
	struct kz_err e;

	kz_ignore_sigpipe();
	version_option(argc, argv);
	parse_command_line(argc, argv, &cl);
	/* The header first: in "kz-unpack -C map ... | kz-info -c map" the
	 * map exists once the stream has begun. */
	if ((r = kz_reader_open(cl.input, &e)) == NULL)
		errx(1, "%s", e.msg);
	if (cl.map_path != NULL && kz_classmap_read(cl.map_path, &map,
	    &e) != 0)
		errx(1, "%s", e.msg);
	t.nclass = kz_reader_header(r)->nclasses;
	if ((t.count = calloc(t.nclass + 1, sizeof(uint64_t))) == NULL)
		err(1, NULL);
	if (cl.map_path != NULL && t.nclass > 0 && t.nclass != map.n)
		errx(1, "%s: %zu classes, but class map %s has %zu",
		    kz_reader_name(r), t.nclass, cl.map_path, map.n);
	tally(r, &t);
	pixel_stats(kz_reader_header(r), kz_reader_count(r), &t, &st);
	print_summary(&cl, r, &t, &st);
	if (cl.map_path != NULL && t.nclass > map.n)
		errx(1, "%s: labels reach %zu, but class map %s has %zu "
		    "classes", kz_reader_name(r), t.nclass - 1, cl.map_path,
		    map.n);
	print_classes(&cl, &t, &map);
	check_stdout(1);
	kz_reader_close(r);
	free(t.count);
	kz_classmap_free(&map);
	close_stdout();
	return 0;
}
