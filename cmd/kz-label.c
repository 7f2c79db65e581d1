/*
 * kz-label - turn a kz stream into UTF-8 text through a class map.
 *
 * Formats: tsv (index, true char, k x (predicted char, score)), char
 * (one character per line), text (all characters on one line).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

enum format { FMT_TSV, FMT_CHAR, FMT_TEXT };

static void
usage(void)
{
	fprintf(stderr, "usage: kz-label [-x] -c classmap [-f tsv|char|text] "
	    "[file]\n");
	exit(2);
}


int
main(int argc, char *argv[])
{
	const char *map_path = NULL;
	enum format fmt = FMT_TSV;
	struct kz_classmap map = { 0 };
	struct kz_err e;
	int ch, rc, mistakes = 0;

	kz_ignore_sigpipe();
	while ((ch = getopt(argc, argv, "c:f:x")) != -1) {
		switch (ch) {
		case 'x':
			mistakes = 1;
			break;
		case 'c':
			map_path = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "tsv") == 0)
				fmt = FMT_TSV;
			else if (strcmp(optarg, "char") == 0)
				fmt = FMT_CHAR;
			else if (strcmp(optarg, "text") == 0)
				fmt = FMT_TEXT;
			else
				errx(2, "unknown format \"%s\" (tsv, char or "
				    "text)", optarg);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (map_path == NULL || argc > 1)
		usage();
	/* The header first, as in kz-info: the map may be written by the
	 * program upstream. */
	struct kz_reader *r = kz_reader_open(argc ? argv[0] : "-", &e);
	if (r == NULL)
		errx(1, "%s", e.msg);
	if (kz_classmap_read(map_path, &map, &e) != 0)
		errx(1, "%s", e.msg);
	const struct kz_header *h = kz_reader_header(r);
	if (h->nclasses > 0 && h->nclasses != map.n)
		errx(1, "%s: %u classes, but class map %s has %zu",
		    kz_reader_name(r), h->nclasses, map_path, map.n);
	const char *name = kz_reader_name(r);
	struct kz_record *rec = kz_record_new(h);
	if (rec == NULL)
		err(1, NULL);
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);

	while ((rc = kz_reader_next(r, rec, &e)) == 1) {
		unsigned long long n = kz_reader_count(r) - 1;

		if (rec->label >= (int32_t)map.n)
			errx(1, "%s: record %llu: label %d is not in class map "
			    "%s (%zu classes)", name, n, rec->label, map_path,
			    map.n);
		for (unsigned i = 0; i < h->k; i++)
			if (rec->pred[i].cls >= map.n)
				errx(1, "%s: record %llu: predicted class %u is "
				    "not in class map %s (%zu classes)", name, n,
				    rec->pred[i].cls, map_path, map.n);
		/* -x: the same selection as kz-show -x, in the same order. */
		if (mistakes && (h->k == 0 || rec->label < 0 ||
		    (int32_t)rec->pred[0].cls == rec->label))
			continue;
		const char *truth = rec->label == KZ_LABEL_UNKNOWN ? "-" :
		    map.utf8[rec->label];
		const char *best = h->k > 0 ? map.utf8[rec->pred[0].cls] :
		    truth;
		switch (fmt) {
		case FMT_TSV:
			printf("%llu\t%s", (unsigned long long)rec->index,
			    truth);
			for (unsigned i = 0; i < h->k; i++)
				printf("\t%s\t%.6f", map.utf8[rec->pred[i].cls],
				    rec->pred[i].score);
			putchar('\n');
			break;
		case FMT_CHAR:
			printf("%s\n", best);
			break;
		case FMT_TEXT:
			fputs(strcmp(best, "-") == 0 ? "\xE3\x80\x93" : best,
			    stdout);	/* U+3013 GETA MARK for unknown */
			break;
		}
		check_stdout(0);
	}
	if (rc < 0)
		errx(1, "%s", e.msg);
	if (fmt == FMT_TEXT)
		putchar('\n');
	check_stdout(1);
	kz_record_free(rec);
	kz_reader_close(r);
	kz_classmap_free(&map);
	close_stdout();
	return 0;
}
