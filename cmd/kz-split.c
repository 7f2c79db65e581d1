/*
 * kz-split - split a stream in two, stratified by class and seeded, or
 * cut it into shards.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static void
usage(void)
{
	fprintf(stderr, "usage: kz-split [-f fraction | -c count] [-m min] "
	    "[-s seed] -o second [file]\n"
	    "       kz-split -n shards -o prefix [file]\n");
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

int
main(int argc, char *argv[])
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
	double fraction = -1;
	long count = -1, min = 2, shards = 0;
	uint64_t seed = 0;
	const char *output = NULL;
	struct kz_err e;
	int ch;

	kz_ignore_sigpipe();
	while ((ch = getopt_long(argc, argv, "f:c:m:s:n:o:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'f': fraction = number(optarg, 0, 1, "-f"); break;
		case 'c':
			count = (long)integer(optarg, 0, 1000000000, "-c");
			break;
		case 'm':
			min = (long)integer(optarg, 1, 1000000000, "-m");
			break;
		case 's':
			seed = uinteger(optarg, 0, 1000000000000000000ULL, "-s");
			break;
		case 'n': shards = (long)integer(optarg, 1, 10000, "-n"); break;
		case 'o': output = optarg; break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1 || output == NULL || (shards > 0) ==
	    (fraction >= 0 || count >= 0) || (fraction >= 0 && count >= 0))
		usage();
	if (shards == 0)
		refuse_tty("-");

	struct kz_reader *r = kz_reader_open(argc ? argv[0] : "-", &e);
	if (r == NULL)
		errx(1, "%s", e.msg);
	const struct kz_header *h = kz_reader_header(r);
	struct kz_record *rec = kz_record_new(h);
	struct held s = { 0 };
	int rc;

	s.rsize = 12 + h->k * sizeof(struct kz_pred) +
	    (size_t)h->width * h->height * kz_pixel_size(h);
	if (rec == NULL)
		err(1, NULL);
	while ((rc = kz_reader_next(r, rec, &e)) == 1)
		hold(&s, rec, h);
	if (rc < 0)
		errx(1, "%s", e.msg);

	if (shards > 0) {
		/* Contiguous blocks, so that cat of the shards in order
		 * gives the stream back. */
		for (long i = 0; i < shards; i++) {
			char path[4096];
			size_t lo = s.n * i / shards, hi = s.n * (i + 1) / shards;

			/* Padded, so that the shell sorts them in order. */
			int digits = snprintf(NULL, 0, "%ld", shards - 1);
			snprintf(path, sizeof(path), "%s.%0*ld.kz", output,
			    digits, i);
			struct kz_writer *w = kz_writer_open(path, h, &e);
			if (w == NULL)
				errx(1, "%s: %s", path, e.msg);
			for (size_t j = lo; j < hi; j++) {
				unhold(&s, j, rec, h);
				if (kz_writer_put(w, rec, &e) != 0) {
					kz_writer_abort(w);
					errx(1, "%s", e.msg);
				}
			}
			if (kz_writer_close(w, &e) != 0)
				errx(1, "%s", e.msg);
		}
		free(s.recs);
		free(s.label);
		kz_record_free(rec);
		kz_reader_close(r);
		return 0;
	}

	/* Stratified: per class (unknown labels are a class of their own),
	 * the chosen records go to the second part. */
	uint8_t *second = calloc(s.n + 1, 1);
	uint32_t *pos = malloc((s.n + 1) * sizeof(uint32_t));
	size_t ngroups = (h->nclasses ? h->nclasses : 0) + 1;
	for (size_t i = 0; i < s.n; i++)
		if ((size_t)s.label[i] + 2 > ngroups)
			ngroups = (size_t)s.label[i] + 2;
	size_t *start = calloc(ngroups + 1, sizeof(size_t));
	if (second == NULL || pos == NULL || start == NULL)
		err(1, NULL);
	/* Counting sort by group (label + 1), keeping input order. */
	for (size_t i = 0; i < s.n; i++)
		start[s.label[i] + 1 + 1]++;
	for (size_t g = 1; g <= ngroups; g++)
		start[g] += start[g - 1];
	size_t *fill = calloc(ngroups, sizeof(size_t));
	if (fill == NULL)
		err(1, NULL);
	for (size_t i = 0; i < s.n; i++) {
		size_t g = (size_t)s.label[i] + 1;
		pos[start[g] + fill[g]++] = (uint32_t)i;
	}
	struct kz_rng rng;
	kz_rng_seed(&rng, seed);
	size_t small = 0, small_recs = 0, nsecond = 0;
	for (size_t g = 0; g < ngroups; g++) {
		size_t nc = start[g + 1] - start[g], take;

		if (nc == 0)
			continue;
		take = count >= 0 ? (size_t)count : (size_t)(fraction * nc);
		if ((long)nc < min || take == 0 || take >= nc) {
			small++;
			small_recs += nc;
			continue;
		}
		kz_rng_shuffle(&rng, pos + start[g], nc);
		for (size_t j = 0; j < take; j++)
			second[pos[start[g] + j]] = 1;
		nsecond += take;
	}
	struct kz_writer *w1 = kz_writer_open("-", h, &e), *w2;
	if (w1 == NULL)
		errx(1, "%s", e.msg);
	if ((w2 = kz_writer_open(output, h, &e)) == NULL) {
		kz_writer_abort(w1);
		errx(1, "%s: %s", output, e.msg);
	}
	for (size_t i = 0; i < s.n; i++) {
		unhold(&s, i, rec, h);
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
	if (small > 0 && (fraction > 0 || count > 0))
		fprintf(stderr, "kz-split: %zu classes too small to split "
		    "(%zu records) stay in the first part\n", small, small_recs);
	free(second);
	free(pos);
	free(start);
	free(fill);
	free(s.recs);
	free(s.label);
	kz_record_free(rec);
	kz_reader_close(r);
	return 0;
}
