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
	fprintf(stderr, "usage: kz-eval [-t] [-c classmap] [-n pairs] "
	    "[-o heatmap.png] [file]\n");
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

int
main(int argc, char *argv[])
{
	const char *map_path = NULL, *heatmap = NULL;
	struct kz_classmap map = { 0 };
	struct kz_err e;
	int tsv = 0, npairs = 10, ch, rc;

	kz_ignore_sigpipe();
	while ((ch = getopt(argc, argv, "tc:n:o:")) != -1) {
		switch (ch) {
		case 't': tsv = 1; break;
		case 'c': map_path = optarg; break;
		case 'n':
			npairs = (int)integer(optarg, 0, 1000000, "-n");
			break;
		case 'o':
			if (strcmp(optarg, "-") == 0)
				errx(2, "-o: the heat map needs a file name "
				    "(the report is on stdout)");
			heatmap = optarg;
			break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1)
		usage();
	struct kz_reader *r = kz_reader_open(argc ? argv[0] : "-", &e);
	if (r == NULL)
		errx(1, "%s", e.msg);
	const struct kz_header *h = kz_reader_header(r);
	const char *name = kz_reader_name(r);
	if (h->k == 0)
		errx(1, "%s: no predictions (k is 0): pass it through "
		    "kz-classify first", name);
	if (h->nclasses == 0)
		errx(1, "%s: the header gives no class count", name);
	if (map_path != NULL && kz_classmap_read(map_path, &map, &e) != 0)
		errx(1, "%s", e.msg);
	if (map_path != NULL && map.n != h->nclasses)
		errx(1, "%s: %u classes, but class map %s has %zu", name,
		    h->nclasses, map_path, map.n);

	size_t C = h->nclasses, K = h->k;
	uint64_t *conf = calloc(C * C, sizeof(uint64_t));
	uint64_t *topk = calloc(K, sizeof(uint64_t)), labelled = 0, total = 0;
	/* Log loss, when every class has its probability: it still tells
	 * models apart when their accuracies differ by an image or two. */
	int full = K == C;
	double logloss = 0;
	struct kz_record *rec = kz_record_new(h);
	if (conf == NULL || topk == NULL || rec == NULL)
		err(1, "%zu classes", C);
	while ((rc = kz_reader_next(r, rec, &e)) == 1) {
		total++;
		if (rec->label < 0)
			continue;
		labelled++;
		conf[(size_t)rec->label * C + rec->pred[0].cls]++;
		for (size_t j = 0; j < K; j++)
			if ((int32_t)rec->pred[j].cls == rec->label) {
				topk[j]++;
				if (full)
					logloss -= log(fmax(rec->pred[j].score,
					    LOGLOSS_MIN));
				break;
			}
	}
	if (rc < 0)
		errx(1, "%s", e.msg);
	if (labelled == 0)
		errx(1, "%s: no labelled records to score", name);
	for (size_t j = 1; j < K; j++)
		topk[j] += topk[j - 1];

	double bal = 0;
	size_t present = 0;
	for (size_t c = 0; c < C; c++) {
		uint64_t n = 0;

		for (size_t p = 0; p < C; p++)
			n += conf[c * C + p];
		if (n > 0) {
			bal += (double)conf[c * C + c] / n;
			present++;
		}
	}
	bal /= present;
	double acc = (double)topk[0] / labelled;
	logloss /= labelled;

	/* The most confused pairs, off the diagonal. */
	size_t np = 0, pcap = 1024;
	struct pair *pairs = malloc(pcap * sizeof(*pairs));
	if (pairs == NULL)
		err(1, NULL);
	for (size_t t = 0; t < C; t++)
		for (size_t p = 0; p < C; p++)
			if (t != p && conf[t * C + p] > 0) {
				if (np == pcap && (pairs = realloc(pairs,
				    (pcap *= 2) * sizeof(*pairs))) == NULL)
					err(1, NULL);
				pairs[np++] = (struct pair){ (uint32_t)t,
				    (uint32_t)p, conf[t * C + p] };
			}
	qsort(pairs, np, sizeof(*pairs), pair_cmp);

	char b1[16], b2[16];
	if (tsv) {
		printf("records\t%llu\nlabelled\t%llu\naccuracy\t%.6f\n"
		    "balanced_accuracy\t%.6f\n", (unsigned long long)total,
		    (unsigned long long)labelled, acc, bal);
		for (size_t j = 0; j < K; j++)
			printf("top%zu\t%.6f\n", j + 1,
			    (double)topk[j] / labelled);
		if (full)
			printf("log_loss\t%.6f\n", logloss);
		for (size_t c = 0; c < C; c++) {
			uint64_t n = 0;

			for (size_t p = 0; p < C; p++)
				n += conf[c * C + p];
			printf("class\t%zu\t%s\t%llu\t%.6f\n", c,
			    cname(&map, c, b1), (unsigned long long)n,
			    n ? (double)conf[c * C + c] / n : 0.0);
		}
		for (size_t i = 0; i < np && (int)i < npairs; i++)
			printf("confused\t%u\t%u\t%s\t%s\t%llu\n", pairs[i].truth,
			    pairs[i].pred, cname(&map, pairs[i].truth, b1),
			    cname(&map, pairs[i].pred, b2),
			    (unsigned long long)pairs[i].n);
	} else {
		printf("records            %llu (%llu labelled)\n",
		    (unsigned long long)total, (unsigned long long)labelled);
		printf("accuracy           %.2f%%\n", 100 * acc);
		printf("balanced accuracy  %.2f%% (mean over %zu classes)\n",
		    100 * bal, present);
		for (size_t j = 1; j < K; j++)
			if (j + 1 == 2 || j + 1 == 3 || j + 1 == 5 || j + 1 == K)
				printf("top-%zu accuracy     %.2f%%\n", j + 1,
				    100.0 * topk[j] / labelled);
		if (full)
			printf("log loss           %.4f\n", logloss);
		if (C <= 100) {
			printf("per class          class  char  count  "
			    "accuracy\n");
			for (size_t c = 0; c < C; c++) {
				uint64_t n = 0;

				for (size_t p = 0; p < C; p++)
					n += conf[c * C + p];
				if (n == 0)
					continue;
				printf("                   %5zu  %-4s %6llu  "
				    "%6.2f%%\n", c, cname(&map, c, b1),
				    (unsigned long long)n,
				    100.0 * conf[c * C + c] / n);
			}
		}
		if (np > 0 && npairs > 0)
			printf("most confused      true -> predicted  count\n");
		for (size_t i = 0; i < np && (int)i < npairs; i++)
			printf("                   %s -> %s  (%u -> %u)  %llu\n",
			    cname(&map, pairs[i].truth, b1),
			    cname(&map, pairs[i].pred, b2), pairs[i].truth,
			    pairs[i].pred, (unsigned long long)pairs[i].n);
		if (C <= TEXT_MATRIX_MAX) {
			printf("confusion matrix (rows: true, columns: "
			    "predicted)\n      ");
			for (size_t p = 0; p < C; p++)
				print_col(cname(&map, p, b1), 5);
			putchar('\n');
			for (size_t t = 0; t < C; t++) {
				print_col(cname(&map, t, b1), 5);
				putchar(' ');
				for (size_t p = 0; p < C; p++)
					printf("%5llu", (unsigned long long)
					    conf[t * C + p]);
				putchar('\n');
			}
		}
	}
	check_stdout(1);

	if (heatmap != NULL) {
		/* Each cell: the share of class t predicted as p, on a
		 * square-root scale so that rare confusions show. */
		size_t cell = HEATMAP_SIDE / C > 0 ? HEATMAP_SIDE / C : 1;
		size_t side = C * cell;
		if (side > 16384)
			errx(1, "%zu classes are too many for a heat map", C);
		struct kz_image img = { (uint32_t)side, (uint32_t)side,
		    calloc(side * side, 1) };
		if (img.pixels == NULL)
			err(1, NULL);
		for (size_t t = 0; t < C; t++) {
			uint64_t n = 0;

			for (size_t p = 0; p < C; p++)
				n += conf[t * C + p];
			for (size_t p = 0; p < C && n > 0; p++) {
				double v = sqrt((double)conf[t * C + p] / n);
				uint8_t g = (uint8_t)(255 * v + 0.5);

				for (size_t y = 0; y < cell; y++)
					memset(img.pixels + (t * cell + y) * side +
					    p * cell, g, cell);
			}
		}
		uint8_t *png;
		size_t len;
		struct kz_out o;
		if (kz_png_encode(&img, &png, &len, &e) != 0 ||
		    kz_out_open(&o, heatmap, &e) != 0)
			errx(1, "%s: %s", heatmap, e.msg);
		if (kz_out_write(&o, png, len, &e) != 0) {
			kz_out_abort(&o);
			errx(1, "%s", e.msg);
		}
		if (kz_out_close(&o, &e) != 0)
			errx(1, "%s", e.msg);
		free(png);
		free(img.pixels);
	}
	free(conf);
	free(topk);
	free(pairs);
	kz_record_free(rec);
	kz_reader_close(r);
	kz_classmap_free(&map);
	close_stdout();
	return 0;
}
