/*
 * kz-eval - score a classified stream against its true labels.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define TEXT_MATRIX_MAX 20	/* classes up to which the matrix is shown */
#define HEATMAP_SIDE 800
/* Probabilities are clipped here for the log loss, so that a kNN
 * model's zero gives a large but finite loss. */
#define LOGLOSS_MIN 1e-7

static void
usage(void)
{
	fprintf(stderr, "usage: kz-eval [-t] [-c classmap | -m model] "
	    "[-n pairs] [-o heatmap.png] [file]\n");
	version_usage("kz-eval");
	exit(2);
}

struct pair {
	uint32_t truth, pred;
	uint64_t n;
};

static int
pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	if (x->truth != y->truth)
		return x->truth < y->truth ? -1 : 1;
	return x->pred < y->pred ? -1 : x->pred > y->pred;
}

/* Prints s right-aligned in width columns; CJK characters (3 or 4
 * UTF-8 bytes) take two columns. */
static void
print_col(const char *s, int width)
{
	size_t b = strlen(s);
	int cols = b >= 3 && (unsigned char)s[0] >= 0xE0 ? 2 : (int)b;

	printf("%*s%s", width - cols > 0 ? width - cols : 0, "", s);
}

static const char *
cname(const struct kz_classmap *m, uint32_t c, char *buf)
{
	if (m->n > c)
		return m->utf8[c];
	snprintf(buf, 16, "#%u", c);
	return buf;
}

/* The command line, as parse_command_line leaves it. */
struct cmdline {
	const char *map_path;	/* -c: the class map, or NULL */
	const char *model;	/* -m: or the one this model holds */
	const char *heatmap;	/* -o: the heat map's PNG, or NULL */
	const char *input;	/* the classified stream, "-" for stdin */
	int tsv;		/* -t: key-value lines, not the report */
	int npairs;		/* -n: confused pairs listed */
};

/* What the stream adds up to. */
struct scores {
	size_t C, K;		/* classes; predictions per record */
	uint64_t *conf;		/* C x C: true class by best prediction */
	uint64_t *topk;		/* K: right within the j + 1 best */
	uint64_t labelled, total;	/* records */
	int full;		/* each class has its probability: K == C */
	double logloss;		/* mean, when full */
	double acc, bal;	/* accuracy and balanced accuracy */
	size_t present;		/* classes with labelled records */
	struct pair *pairs;	/* the confusions off the diagonal, */
	size_t np;		/* most frequent first */
};

/* Fills cl from the command line, or exits 2 with the usage or a
 * message naming the option. */
static void
parse_command_line(int argc, char *argv[], struct cmdline *cl)
{
	int ch;

	memset(cl, 0, sizeof(*cl));
	cl->npairs = 10;
	while ((ch = getopt(argc, argv, "tc:m:n:o:")) != -1) {
		switch (ch) {
		case 't': cl->tsv = 1; break;
		case 'c': cl->map_path = optarg; break;
		case 'm': cl->model = optarg; break;
		case 'n':
			cl->npairs = (int)integer(optarg, 0, 1000000, "-n");
			break;
		case 'o':
			if (strcmp(optarg, "-") == 0)
				errx(2, "-o: the heat map needs a file name "
				    "(the report is on stdout)");
			cl->heatmap = optarg;
			break;
		default: usage();
		}
	}
	if (argc - optind > 1 || (cl->map_path != NULL && cl->model != NULL))
		usage();
	cl->input = optind < argc ? argv[optind] : "-";
}

/* Opens the stream, which must hold predictions and a class count, and
 * reads the class map, which must have as many classes. */
static struct kz_reader *
open_predictions(const struct cmdline *cl, struct kz_classmap *map)
{
	struct kz_reader *r;
	const struct kz_header *h;
	const char *name;
	struct kz_err e;

	if ((r = kz_reader_open(cl->input, &e)) == NULL)
		errx(1, "%s", e.msg);
	h = kz_reader_header(r);
	name = kz_reader_name(r);
	if (h->k == 0)
		errx(1, "%s: no predictions (k is 0): pass it through "
		    "kz-classify first", name);
	if (h->nclasses == 0)
		errx(1, "%s: the header gives no class count", name);
	if (cl->map_path != NULL || cl->model != NULL) {
		const char *map_name;

		class_map(cl->map_path, cl->model, map, &map_name);
		if (map->n != h->nclasses)
			errx(1, "%s: %u classes, but class map %s has %zu",
			    name, h->nclasses, map_name, map->n);
	}
	return r;
}

/* The labelled records of class c. */
static uint64_t
class_count(const struct scores *s, size_t c)
{
	uint64_t n = 0;

	for (size_t p = 0; p < s->C; p++)
		n += s->conf[c * s->C + p];
	return n;
}

/* Reads the stream to its end into s: the confusion matrix, the top-k
 * hits and the log loss. */
static void
tally(struct kz_reader *r, struct scores *s)
{
	const struct kz_header *h = kz_reader_header(r);
	struct kz_record *rec = kz_record_new(h);
	struct kz_err e;
	size_t C, K;
	int rc;

	memset(s, 0, sizeof(*s));
	C = s->C = h->nclasses;
	K = s->K = h->k;
	s->conf = calloc(C * C, sizeof(uint64_t));
	s->topk = calloc(K, sizeof(uint64_t));
	/* Log loss, when every class has its probability: it still tells
	 * models apart when their accuracies differ by an image or two. */
	s->full = K == C;
	if (s->conf == NULL || s->topk == NULL || rec == NULL)
		err(1, "%zu classes", C);
	while ((rc = kz_reader_next(r, rec, &e)) == 1) {
		s->total++;
		if (rec->label < 0)
			continue;
		s->labelled++;
		s->conf[(size_t)rec->label * C + rec->pred[0].cls]++;
		for (size_t j = 0; j < K; j++)
			if ((int32_t)rec->pred[j].cls == rec->label) {
				s->topk[j]++;
				if (s->full)
					s->logloss -= log(fmax(
					    rec->pred[j].score, LOGLOSS_MIN));
				break;
			}
	}
	if (rc < 0)
		errx(1, "%s", e.msg);
	kz_record_free(rec);
}

/* From the counts of a stream with labelled records: the accuracies,
 * the mean log loss, the confused pairs in order. */
static void
score(struct scores *s)
{
	size_t C = s->C, cap = 1024;

	for (size_t j = 1; j < s->K; j++)
		s->topk[j] += s->topk[j - 1];
	for (size_t c = 0; c < C; c++) {
		uint64_t n = class_count(s, c);

		if (n > 0) {
			s->bal += (double)s->conf[c * C + c] / n;
			s->present++;
		}
	}
	s->bal /= s->present;
	s->acc = (double)s->topk[0] / s->labelled;
	s->logloss /= s->labelled;

	/* The most confused pairs, off the diagonal. */
	if ((s->pairs = malloc(cap * sizeof(*s->pairs))) == NULL)
		err(1, NULL);
	for (size_t t = 0; t < C; t++)
		for (size_t p = 0; p < C; p++)
			if (t != p && s->conf[t * C + p] > 0) {
				if (s->np == cap && (s->pairs = realloc(
				    s->pairs, (cap *= 2) *
				    sizeof(*s->pairs))) == NULL)
					err(1, NULL);
				s->pairs[s->np++] = (struct pair){ (uint32_t)t,
				    (uint32_t)p, s->conf[t * C + p] };
			}
	qsort(s->pairs, s->np, sizeof(*s->pairs), pair_cmp);
}

/* -t: the figures as key-value lines, for scripts. */
static void
print_tsv(const struct scores *s, const struct kz_classmap *map,
    int npairs)
{
	char b1[16], b2[16];

	printf("records\t%llu\nlabelled\t%llu\naccuracy\t%.6f\n"
	    "balanced_accuracy\t%.6f\n", (unsigned long long)s->total,
	    (unsigned long long)s->labelled, s->acc, s->bal);
	for (size_t j = 0; j < s->K; j++)
		printf("top%zu\t%.6f\n", j + 1,
		    (double)s->topk[j] / s->labelled);
	if (s->full)
		printf("log_loss\t%.6f\n", s->logloss);
	for (size_t c = 0; c < s->C; c++) {
		uint64_t n = class_count(s, c);

		printf("class\t%zu\t%s\t%llu\t%.6f\n", c, cname(map, c, b1),
		    (unsigned long long)n,
		    n ? (double)s->conf[c * s->C + c] / n : 0.0);
	}
	for (size_t i = 0; i < s->np && (int)i < npairs; i++)
		printf("confused\t%u\t%u\t%s\t%s\t%llu\n", s->pairs[i].truth,
		    s->pairs[i].pred, cname(map, s->pairs[i].truth, b1),
		    cname(map, s->pairs[i].pred, b2),
		    (unsigned long long)s->pairs[i].n);
}

/* The confusion matrix as text, when the classes are few enough. */
static void
print_matrix(const struct scores *s, const struct kz_classmap *map)
{
	char b[16];

	printf("confusion matrix (rows: true, columns: predicted)\n      ");
	for (size_t p = 0; p < s->C; p++)
		print_col(cname(map, p, b), 5);
	putchar('\n');
	for (size_t t = 0; t < s->C; t++) {
		print_col(cname(map, t, b), 5);
		putchar(' ');
		for (size_t p = 0; p < s->C; p++)
			printf("%5llu", (unsigned long long)
			    s->conf[t * s->C + p]);
		putchar('\n');
	}
}

/* The report for people. */
static void
print_report(const struct scores *s, const struct kz_classmap *map,
    int npairs)
{
	size_t C = s->C, K = s->K;
	char b1[16], b2[16];

	printf("records            %llu (%llu labelled)\n",
	    (unsigned long long)s->total, (unsigned long long)s->labelled);
	printf("accuracy           %.2f%%\n", 100 * s->acc);
	printf("balanced accuracy  %.2f%% (mean over %zu classes)\n",
	    100 * s->bal, s->present);
	for (size_t j = 1; j < K; j++)
		if (j + 1 == 2 || j + 1 == 3 || j + 1 == 5 || j + 1 == K)
			printf("top-%zu accuracy     %.2f%%\n", j + 1,
			    100.0 * s->topk[j] / s->labelled);
	if (s->full)
		printf("log loss           %.4f\n", s->logloss);
	if (C <= 100) {
		printf("per class          class  char  count  accuracy\n");
		for (size_t c = 0; c < C; c++) {
			uint64_t n = class_count(s, c);

			if (n == 0)
				continue;
			printf("                   %5zu  %-4s %6llu  %6.2f%%\n",
			    c, cname(map, c, b1), (unsigned long long)n,
			    100.0 * s->conf[c * C + c] / n);
		}
	}
	if (s->np > 0 && npairs > 0)
		printf("most confused      true -> predicted  count\n");
	for (size_t i = 0; i < s->np && (int)i < npairs; i++)
		printf("                   %s -> %s  (%u -> %u)  %llu\n",
		    cname(map, s->pairs[i].truth, b1),
		    cname(map, s->pairs[i].pred, b2), s->pairs[i].truth,
		    s->pairs[i].pred, (unsigned long long)s->pairs[i].n);
	if (C <= TEXT_MATRIX_MAX)
		print_matrix(s, map);
}

/* -o: the confusion matrix as a grey PNG.  Each cell: the share of
 * class t predicted as p, on a square-root scale so that rare
 * confusions show. */
static void
write_heatmap(const struct scores *s, const char *path)
{
	size_t C = s->C;
	size_t cell = HEATMAP_SIDE / C > 0 ? HEATMAP_SIDE / C : 1;
	size_t side = C * cell;
	struct kz_err e;
	struct kz_out o;
	uint8_t *png;
	size_t len;

	if (side > 16384)
		errx(1, "%zu classes are too many for a heat map", C);
	struct kz_image img = { (uint32_t)side, (uint32_t)side,
	    calloc(side * side, 1) };
	if (img.pixels == NULL)
		err(1, NULL);
	for (size_t t = 0; t < C; t++) {
		uint64_t n = class_count(s, t);

		for (size_t p = 0; p < C && n > 0; p++) {
			double v = sqrt((double)s->conf[t * C + p] / n);
			uint8_t g = (uint8_t)(255 * v + 0.5);

			for (size_t y = 0; y < cell; y++)
				memset(img.pixels + (t * cell + y) * side +
				    p * cell, g, cell);
		}
	}
	if (kz_png_encode(&img, &png, &len, &e) != 0 ||
	    kz_out_open(&o, path, &e) != 0)
		errx(1, "%s: %s", path, e.msg);
	if (kz_out_write(&o, png, len, &e) != 0) {
		kz_out_abort(&o);
		errx(1, "%s", e.msg);
	}
	if (kz_out_close(&o, &e) != 0)
		errx(1, "%s", e.msg);
	free(png);
	free(img.pixels);
}

int
main(int argc, char *argv[])
{
	struct cmdline cl;
	struct kz_classmap map = { 0 };
	struct kz_reader *r;
	struct scores s;

	kz_ignore_sigpipe();
	version_option(argc, argv);
	parse_command_line(argc, argv, &cl);
	r = open_predictions(&cl, &map);
	tally(r, &s);
	if (s.labelled == 0)
		errx(1, "%s: no labelled records to score", kz_reader_name(r));
	score(&s);
	if (cl.tsv)
		print_tsv(&s, &map, cl.npairs);
	else
		print_report(&s, &map, cl.npairs);
	check_stdout(1);
	if (cl.heatmap != NULL)
		write_heatmap(&s, cl.heatmap);
	free(s.conf);
	free(s.topk);
	free(s.pairs);
	kz_reader_close(r);
	kz_classmap_free(&map);
	close_stdout();
	return 0;
}
