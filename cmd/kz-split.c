/*
 * kz-split - split a stream in two, stratified by class and seeded, or
 * cut it into shards.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "predict.h"

/* The command line, as parse_command_line leaves it. */
struct cmdline {
	double fraction;	/* -f: of each class to the second part */
	long count;		/* -c: of each class to the second part */
	long min;		/* -m: smaller classes stay whole */
	uint64_t seed;		/* -s: of the shuffles */
	long shards;		/* -n: shards to cut; 0: split in two */
	const char *output;	/* -o: the second part, or shards' prefix */
	const char *input;	/* the stream, "-" for stdin */
};

static void
usage(void)
{
	fprintf(stderr, "usage: kz-split [-f fraction | -c count] [-m min] "
	    "[-s seed] -o second [file]\n"
	    "       kz-split -n shards -o prefix [file]\n");
	version_usage("kz-split");
	exit(2);
}

struct held {
	size_t n, cap, rsize;
	uint8_t *recs;			/* records as written, in order */
	int32_t *label;
};

static void
hold(struct held *s, const struct kz_record *r, const struct kz_header *h)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4096;
		s->recs = realloc(s->recs, s->cap * s->rsize);
		s->label = realloc(s->label, s->cap * sizeof(int32_t));
		if (s->recs == NULL || s->label == NULL)
			err(1, NULL);
	}
	/* Keep the decoded parts; re-encoding through the writer keeps one
	 * encoder.  Layout: index, label, preds, pixels. */
	uint8_t *p = s->recs + s->n * s->rsize;
	size_t npix = s->rsize - sizeof(uint64_t) - sizeof(int32_t) -
	    h->k * sizeof(struct kz_pred);
	memcpy(p, &r->index, sizeof(uint64_t));
	memcpy(p + 8, &r->label, sizeof(int32_t));
	memcpy(p + 12, r->pred, h->k * sizeof(struct kz_pred));
	memcpy(p + 12 + h->k * sizeof(struct kz_pred), r->pixels, npix);
	s->label[s->n++] = r->label;
}

static void
unhold(const struct held *s, size_t i, struct kz_record *r,
    const struct kz_header *h)
{
	const uint8_t *p = s->recs + i * s->rsize;
	size_t npix = s->rsize - 12 - h->k * sizeof(struct kz_pred);

	memcpy(&r->index, p, sizeof(uint64_t));
	memcpy(&r->label, p + 8, sizeof(int32_t));
	memcpy(r->pred, p + 12, h->k * sizeof(struct kz_pred));
	memcpy(r->pixels, p + 12 + h->k * sizeof(struct kz_pred), npix);
}

/* Fills cl from the command line, or exits 2 with the usage or a
 * message naming the option.  Unset, -f and -c are -1. */
static void
parse_command_line(int argc, char *argv[], struct cmdline *cl)
{
	static const struct option longopts[] = {
		{ "fraction", required_argument, NULL, 'f' },
		{ "count", required_argument, NULL, 'c' },
		{ "min", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 's' },
		{ "shards", required_argument, NULL, 'n' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	memset(cl, 0, sizeof(*cl));
	cl->fraction = -1;
	cl->count = -1;
	cl->min = 2;
	while ((ch = getopt_long(argc, argv, "f:c:m:s:n:o:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'f': cl->fraction = number(optarg, 0, 1, "-f"); break;
		case 'c':
			cl->count = (long)integer(optarg, 0, 1000000000, "-c");
			break;
		case 'm':
			cl->min = (long)integer(optarg, 1, 1000000000, "-m");
			break;
		case 's':
			cl->seed = uinteger(optarg, 0, 1000000000000000000ULL,
			    "-s");
			break;
		case 'n':
			cl->shards = (long)integer(optarg, 1, 10000, "-n");
			break;
		case 'o': cl->output = optarg; break;
		default: usage();
		}
	}
	if (argc - optind > 1 || cl->output == NULL || (cl->shards > 0) ==
	    (cl->fraction >= 0 || cl->count >= 0) ||
	    (cl->fraction >= 0 && cl->count >= 0))
		usage();
	cl->input = optind < argc ? argv[optind] : "-";
	if (cl->shards == 0)
		refuse_tty("-");
}

/* -n: cuts the held records into contiguous shards, so that cat of the
 * shards in order gives the stream back.  Shards start at multiples of
 * KZ_PREDICT_CHUNK records, so that kz-classify gives their records
 * the same bytes as the whole stream's. */
static void
write_shards(const struct cmdline *cl, const struct held *s,
    const struct kz_header *h, struct kz_record *rec)
{
	/* Padded, so that the shell sorts them in order. */
	int digits = snprintf(NULL, 0, "%ld", cl->shards - 1);
	struct kz_err e;

	for (long i = 0; i < cl->shards; i++) {
		char path[4096];
		size_t chunks = (s->n + KZ_PREDICT_CHUNK - 1) / KZ_PREDICT_CHUNK;
		size_t lo = chunks * i / cl->shards * KZ_PREDICT_CHUNK;
		size_t hi = chunks * (i + 1) / cl->shards * KZ_PREDICT_CHUNK;
		struct kz_writer *w;

		snprintf(path, sizeof(path), "%s.%0*ld.kz", cl->output,
		    digits, i);
		if ((w = kz_writer_open(path, h, &e)) == NULL)
			errx(1, "%s: %s", path, e.msg);
		for (size_t j = lo; j < hi && j < s->n; j++) {
			unhold(s, j, rec, h);
			if (kz_writer_put(w, rec, &e) != 0) {
				kz_writer_abort(w);
				errx(1, "%s", e.msg);
			}
		}
		if (kz_writer_close(w, &e) != 0)
			errx(1, "%s", e.msg);
	}
}

/* Chooses the records of the second part: per class (unknown labels
 * are a class of their own), -f or -c of them, shuffled by the seed;
 * classes smaller than -m, or too small to split, stay whole.  Returns
 * a flag per record, and the classes left whole in *small and their
 * records in *small_recs. */
static uint8_t *
choose_second(const struct cmdline *cl, const struct held *s,
    const struct kz_header *h, size_t *small, size_t *small_recs)
{
	uint8_t *second = calloc(s->n + 1, 1);
	uint32_t *pos = malloc((s->n + 1) * sizeof(uint32_t));
	size_t ngroups = (h->nclasses ? h->nclasses : 0) + 1, *start, *fill;
	struct kz_rng rng;

	for (size_t i = 0; i < s->n; i++)
		if ((size_t)s->label[i] + 2 > ngroups)
			ngroups = (size_t)s->label[i] + 2;
	start = calloc(ngroups + 1, sizeof(size_t));
	fill = calloc(ngroups, sizeof(size_t));
	if (second == NULL || pos == NULL || start == NULL || fill == NULL)
		err(1, NULL);
	/* Counting sort by group (label + 1), keeping input order. */
	for (size_t i = 0; i < s->n; i++)
		start[s->label[i] + 1 + 1]++;
	for (size_t g = 1; g <= ngroups; g++)
		start[g] += start[g - 1];
	for (size_t i = 0; i < s->n; i++) {
		size_t g = (size_t)s->label[i] + 1;
		pos[start[g] + fill[g]++] = (uint32_t)i;
	}
	kz_rng_seed(&rng, cl->seed);
	*small = *small_recs = 0;
	for (size_t g = 0; g < ngroups; g++) {
		size_t nc = start[g + 1] - start[g], take;

		if (nc == 0)
			continue;
		take = cl->count >= 0 ? (size_t)cl->count :
		    (size_t)(cl->fraction * nc);
		if ((long)nc < cl->min || take == 0 || take >= nc) {
			(*small)++;
			*small_recs += nc;
			continue;
		}
		kz_rng_shuffle(&rng, pos + start[g], nc);
		for (size_t j = 0; j < take; j++)
			second[pos[start[g] + j]] = 1;
	}
	free(pos);
	free(start);
	free(fill);
	return second;
}

/* Writes the held records in order: the chosen to -o, the rest to
 * stdout. */
static void
write_parts(const struct cmdline *cl, const struct held *s,
    const struct kz_header *h, struct kz_record *rec,
    const uint8_t *second)
{
	struct kz_writer *w1, *w2;
	struct kz_err e;

	if ((w1 = kz_writer_open("-", h, &e)) == NULL)
		errx(1, "%s", e.msg);
	if ((w2 = kz_writer_open(cl->output, h, &e)) == NULL) {
		kz_writer_abort(w1);
		errx(1, "%s: %s", cl->output, e.msg);
	}
	for (size_t i = 0; i < s->n; i++) {
		unhold(s, i, rec, h);
		if (kz_writer_put(second[i] ? w2 : w1, rec, &e) != 0) {
			kz_writer_abort(w2);
			if (second[i])
				errx(1, "%s", e.msg);
			die_write(&e);
		}
	}
	if (kz_writer_close(w2, &e) != 0) {
		kz_writer_abort(w1);
		errx(1, "%s", e.msg);
	}
	if (kz_writer_close(w1, &e) != 0)
		die_write(&e);
}

int
main(int argc, char *argv[])
{
	struct cmdline cl;
	struct kz_reader *r;
	const struct kz_header *h;
	struct kz_record *rec;
	struct held s = { 0 };
	struct kz_err e;
	int rc;

	kz_ignore_sigpipe();
	version_option(argc, argv);
	parse_command_line(argc, argv, &cl);
	if ((r = kz_reader_open(cl.input, &e)) == NULL)
		errx(1, "%s", e.msg);
	h = kz_reader_header(r);
	rec = kz_record_new(h);
	s.rsize = 12 + h->k * sizeof(struct kz_pred) +
	    (size_t)h->width * h->height * kz_pixel_size(h);
	if (rec == NULL)
		err(1, NULL);
	while ((rc = kz_reader_next(r, rec, &e)) == 1)
		hold(&s, rec, h);
	if (rc < 0)
		errx(1, "%s", e.msg);
	if (cl.shards > 0) {
		write_shards(&cl, &s, h, rec);
	} else {
		size_t small, small_recs;
		uint8_t *second = choose_second(&cl, &s, h, &small,
		    &small_recs);

		write_parts(&cl, &s, h, rec, second);
		if (small > 0 && (cl.fraction > 0 || cl.count > 0))
			fprintf(stderr, "kz-split: %zu classes too small to "
			    "split (%zu records) stay in the first part\n",
			    small, small_recs);
		free(second);
	}
	free(s.recs);
	free(s.label);
	kz_record_free(rec);
	kz_reader_close(r);
	return 0;
}
