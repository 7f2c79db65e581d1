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

/* The command line, as parse_command_line leaves it. */
struct cmdline {
	const char *map_path;	/* -c: the class map */
	const char *model;	/* -m: or the one this model holds */
	enum format fmt;	/* -f */
	int mistakes;		/* -x: only records predicted wrong */
	const char *input;	/* the stream, "-" for stdin */
};

static void
usage(void)
{
	fprintf(stderr, "usage: kz-label [-x] -c classmap | -m model "
	    "[-f tsv|char|text] [file]\n");
	version_usage("kz-label");
	exit(2);
}

/* Fills cl from the command line, or exits 2 with the usage or a
 * message naming the format. */
static void
parse_command_line(int argc, char *argv[], struct cmdline *cl)
{
	int ch;

	memset(cl, 0, sizeof(*cl));
	cl->fmt = FMT_TSV;
	while ((ch = getopt(argc, argv, "c:f:m:x")) != -1) {
		switch (ch) {
		case 'x':
			cl->mistakes = 1;
			break;
		case 'c':
			cl->map_path = optarg;
			break;
		case 'm':
			cl->model = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "tsv") == 0)
				cl->fmt = FMT_TSV;
			else if (strcmp(optarg, "char") == 0)
				cl->fmt = FMT_CHAR;
			else if (strcmp(optarg, "text") == 0)
				cl->fmt = FMT_TEXT;
			else
				errx(2, "unknown format \"%s\" (tsv, char or "
				    "text)", optarg);
			break;
		default:
			usage();
		}
	}
	if ((cl->map_path == NULL) == (cl->model == NULL) ||
	    argc - optind > 1)
		usage();
	cl->input = optind < argc ? argv[optind] : "-";
}

/* Prints rec, the record just read from r, in -f's format through the
 * class map, which must hold its label and predicted classes; -x skips
 * it unless its best prediction is wrong. */
static void
print_record(const struct cmdline *cl, struct kz_reader *r,
    const struct kz_record *rec, const struct kz_classmap *map)
{
	const struct kz_header *h = kz_reader_header(r);
	unsigned long long n = kz_reader_count(r) - 1;
	const char *name = kz_reader_name(r);

	if (rec->label >= (int32_t)map->n)
		errx(1, "%s: record %llu: label %d is not in class map %s "
		    "(%zu classes)", name, n, rec->label, cl->map_path,
		    map->n);
	for (unsigned i = 0; i < h->k; i++)
		if (rec->pred[i].cls >= map->n)
			errx(1, "%s: record %llu: predicted class %u is not in "
			    "class map %s (%zu classes)", name, n,
			    rec->pred[i].cls, cl->map_path, map->n);
	/* -x: the same selection as kz-show -x, in the same order. */
	if (cl->mistakes && (h->k == 0 || rec->label < 0 ||
	    (int32_t)rec->pred[0].cls == rec->label))
		return;
	const char *truth = rec->label == KZ_LABEL_UNKNOWN ? "-" :
	    map->utf8[rec->label];
	const char *best = h->k > 0 ? map->utf8[rec->pred[0].cls] : truth;
	switch (cl->fmt) {
	case FMT_TSV:
		printf("%llu\t%s", (unsigned long long)rec->index, truth);
		for (unsigned i = 0; i < h->k; i++)
			printf("\t%s\t%.6f", map->utf8[rec->pred[i].cls],
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

int
main(int argc, char *argv[])
{
	struct cmdline cl;
	struct kz_classmap map = { 0 };
	const char *map_name;
	struct kz_reader *r;
	const struct kz_header *h;
	struct kz_record *rec;
	struct kz_err e;
	int rc;

	kz_ignore_sigpipe();
	version_option(argc, argv);
	parse_command_line(argc, argv, &cl);
	/* The header first, as in kz-info: the map may be written by the
	 * program upstream. */
	if ((r = kz_reader_open(cl.input, &e)) == NULL)
		errx(1, "%s", e.msg);
	class_map(cl.map_path, cl.model, &map, &map_name);
	h = kz_reader_header(r);
	if (h->nclasses > 0 && h->nclasses != map.n)
		errx(1, "%s: %u classes, but class map %s has %zu",
		    kz_reader_name(r), h->nclasses, map_name, map.n);
	if ((rec = kz_record_new(h)) == NULL)
		err(1, NULL);
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	while ((rc = kz_reader_next(r, rec, &e)) == 1)
		print_record(&cl, r, rec, &map);
	if (rc < 0)
		errx(1, "%s", e.msg);
	if (cl.fmt == FMT_TEXT)
		putchar('\n');
	check_stdout(1);
	kz_record_free(rec);
	kz_reader_close(r);
	kz_classmap_free(&map);
	close_stdout();
	return 0;
}
