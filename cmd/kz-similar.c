/*
 * kz-similar - similar glyphs: for each character image, the images of
 * an index (a training set) nearest in a net model's features.
 *
 * With -w, reads a stream (the training images) and writes the index:
 * their features, images and labels.  With -i, reads a stream of
 * queries and writes, for each, the query and its nearest images, as
 * records that kz-show draws as a sheet and kz-label names.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "predict.h"

#define BATCH 1024		/* records whose features are taken at once */
#define MAX_COUNT 1024

/* The command line, as parse_command_line leaves it. */
struct cmdline {
	char *model;		/* -m, as a file */
	const char *write;	/* -w: the index to write */
	const char *index;	/* -i: the index to search */
	int count;		/* -n: neighbours per query */
	int threads;		/* -t */
	const char *output;	/* -o: "-" for stdout */
	const char *input;	/* the stream, "-" for stdin */
};

static void
usage(void)
{
	fprintf(stderr, "usage: kz-similar [-m model] [-t threads] -w index "
	    "[file]\n"
	    "       kz-similar [-m model] [-n count] [-t threads] -i index "
	    "[-o file] [file]\n");
	version_usage("kz-similar");
	exit(2);
}

/* Fills cl from the command line, or exits 2 with the usage. */
static void
parse_command_line(int argc, char *argv[], struct cmdline *cl)
{
	static const struct option longopts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "write", required_argument, NULL, 'w' },
		{ "index", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "threads", required_argument, NULL, 't' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 }
	};
	const char *model = NULL;
	int ch;

	memset(cl, 0, sizeof(*cl));
	cl->count = 8;
	cl->threads = kz_ncpu();
	cl->output = "-";
	while ((ch = getopt_long(argc, argv, "m:w:i:n:t:o:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'm': model = optarg; break;
		case 'w': cl->write = optarg; break;
		case 'i': cl->index = optarg; break;
		case 'n':
			cl->count = (int)integer(optarg, 1, MAX_COUNT, "-n");
			break;
		case 't':
			cl->threads = (int)integer(optarg, 1, 64, "-t");
			break;
		case 'o': cl->output = optarg; break;
		default: usage();
		}
	}
	if (argc - optind > 1 || (cl->write == NULL) == (cl->index == NULL))
		usage();
	cl->input = optind < argc ? argv[optind] : "-";
	if (cl->index != NULL)
		refuse_tty(cl->output);
	cl->model = model != NULL ? model_file(model) : default_model_file();
}

/* Reads the model, which must be a net. */
static void
read_model(const struct cmdline *cl, struct kz_model *m)
{
	struct kz_err e;

	if (kz_model_read(cl->model, m, &e) != 0)
		errx(1, "%s", e.msg);
	if (kz_model_features(m) == NULL)
		errx(1, "%s: a kNN model has no features to compare (train "
		    "a net)", cl->model);
}

/* Reads up to BATCH records of r into pix, their labels and indices;
 * the number read.  Exits on a bad stream (after abort, when not
 * NULL). */
static size_t
read_batch(struct kz_reader *r, struct kz_record *rec, size_t npix,
    uint8_t *pix, int32_t *label, uint64_t *index, struct kz_writer *abort)
{
	struct kz_err e;
	size_t n = 0;
	int rc = 1;

	while (n < BATCH && (rc = kz_reader_next(r, rec, &e)) == 1) {
		memcpy(pix + n * npix, rec->pixels, npix);
		label[n] = rec->label;
		index[n] = rec->index;
		n++;
	}
	if (rc < 0) {
		if (abort != NULL)
			kz_writer_abort(abort);
		errx(1, "%s", e.msg);
	}
	return n;
}

/* Grows g to hold at least n images of F features. */
static void
reserve(struct kz_glyphs *g, size_t n, size_t *cap, size_t npix)
{
	if (n <= *cap)
		return;
	*cap = *cap ? *cap * 2 : 4 * BATCH;
	if ((g->label = realloc(g->label, *cap * sizeof(*g->label))) ==
	    NULL || (g->index = realloc(g->index, *cap *
	    sizeof(*g->index))) == NULL || (g->feat = realloc(g->feat,
	    *cap * g->F * sizeof(float))) == NULL || (g->pixels =
	    realloc(g->pixels, *cap * npix)) == NULL)
		err(1, NULL);
}

/* -w: the features of every record of the stream, into the index. */
static void
write_index(const struct cmdline *cl, const struct kz_model *m,
    struct kz_predictor *p)
{
	struct kz_reader *r = open_model_input(cl->input, m, cl->model);
	const struct kz_header *h = kz_reader_header(r);
	struct kz_glyphs g = { 0 };
	struct kz_record *rec = kz_record_new(h);
	size_t npix = (size_t)m->width * m->height, cap = 0, n;
	struct kz_err e;

	if (rec == NULL)
		err(1, NULL);
	g.model_crc = kz_model_params_crc(kz_model_features(m));
	g.F = kz_net_nfeatures(kz_model_features(m)->net);
	g.width = m->width;
	g.height = m->height;
	g.nclasses = m->nclasses;
	do {
		reserve(&g, g.n + BATCH, &cap, npix);
		n = read_batch(r, rec, npix, g.pixels + g.n * npix,
		    g.label + g.n, g.index + g.n, NULL);
		for (size_t i = 0; i < n; i++)
			if (g.label[g.n + i] >= (int32_t)m->nclasses)
				errx(1, "%s: record %zu: label %d is not one "
				    "of the model's %u classes",
				    kz_reader_name(r), g.n + i,
				    g.label[g.n + i], m->nclasses);
		if (n > 0 && kz_predict_features(p, g.pixels + g.n * npix, n,
		    g.feat + g.n * (size_t)g.F, NULL, &e) != 0)
			errx(1, "%s: %s", cl->model, e.msg);
		g.n += n;
	} while (n == BATCH);
	if (g.n == 0)
		errx(1, "%s: no records to index", kz_reader_name(r));
	if (kz_glyphs_write(&g, cl->write, &e) != 0)
		errx(1, "%s", e.msg);
	kz_record_free(rec);
	kz_glyphs_free(&g);
	kz_reader_close(r);
}

/* Reads the index and checks it was made by this model. */
static void
read_index(const struct cmdline *cl, const struct kz_model *m,
    struct kz_glyphs *g)
{
	const struct kz_model *fm = kz_model_features(m);
	struct kz_err e;

	if (kz_glyphs_read(cl->index, g, &e) != 0)
		errx(1, "%s", e.msg);
	if (g->model_crc != kz_model_params_crc(fm) ||
	    g->F != kz_net_nfeatures(fm->net) || g->width != m->width ||
	    g->height != m->height || g->nclasses != m->nclasses)
		errx(1, "%s: made with another model than %s (make it again "
		    "with kz-similar -w)", cl->index, cl->model);
	if ((size_t)cl->count > g->n)
		errx(1, "-n %d: the index %s holds %zu images", cl->count,
		    cl->index, g->n);
}

/* The query record and its neighbours, from the batch. */
struct answer {
	const uint8_t *pix;
	int32_t label;
	uint64_t index;
	const float *probs;	/* the model's, nclasses */
	const uint32_t *near;	/* count positions in the index */
	const float *sim;	/* and their cosines */
};

/* Writes the query (its label, the model's best class and its
 * probability) and each neighbour (its label, its label again as the
 * prediction with the cosine as score). */
static void
write_answer(const struct answer *a, const struct kz_glyphs *g, int count,
    struct kz_record *out, struct kz_writer *w)
{
	size_t npix = (size_t)g->width * g->height;
	struct kz_err e;
	uint32_t best = 0;

	for (uint32_t c = 1; c < g->nclasses; c++)
		if (a->probs[c] > a->probs[best])
			best = c;
	for (int j = -1; j < count; j++) {
		size_t i = j < 0 ? 0 : a->near[j];

		out->index = j < 0 ? a->index : g->index[i];
		out->label = j < 0 ? a->label : g->label[i];
		out->pred[0].cls = j < 0 ? best : (uint32_t)(g->label[i] < 0 ?
		    0 : g->label[i]);
		out->pred[0].score = j < 0 ? a->probs[best] : a->sim[j];
		memcpy(out->pixels, j < 0 ? a->pix : g->pixels + i * npix,
		    npix);
		if (kz_writer_put(w, out, &e) != 0) {
			kz_writer_abort(w);
			die_write(&e);
		}
	}
}

/* -i: each query of the stream and its nearest images of the index. */
static void
search(const struct cmdline *cl, const struct kz_model *m,
    struct kz_predictor *p, const struct kz_glyphs *g)
{
	struct kz_reader *r = open_model_input(cl->input, m, cl->model);
	struct kz_header oh = *kz_reader_header(r);
	size_t npix = (size_t)m->width * m->height, C = m->nclasses, n;
	uint8_t *pix = malloc(BATCH * npix);
	int32_t *label = malloc(BATCH * sizeof(*label));
	uint64_t *index = malloc(BATCH * sizeof(*index));
	float *feat = malloc((size_t)BATCH * g->F * sizeof(float));
	float *probs = malloc(BATCH * C * sizeof(float));
	uint32_t *near = malloc((size_t)BATCH * cl->count * sizeof(*near));
	float *sim = malloc((size_t)BATCH * cl->count * sizeof(*sim));
	struct kz_record *in = kz_record_new(&oh), *out;
	struct kz_writer *w;
	struct kz_err e;

	oh.k = 1;
	oh.nclasses = m->nclasses;
	/* The neighbours' labels are the index's, in the forms its
	 * images show (氣 stays 氣), so the output cannot say that its
	 * labels write old forms as modern ones, whatever the input
	 * says. */
	oh.flags = 0;
	if (pix == NULL || label == NULL || index == NULL || feat == NULL ||
	    probs == NULL || near == NULL || sim == NULL || in == NULL ||
	    (out = kz_record_new(&oh)) == NULL)
		err(1, NULL);
	if ((w = kz_writer_open(cl->output, &oh, &e)) == NULL)
		errx(1, "%s", e.msg);
	while ((n = read_batch(r, in, npix, pix, label, index, w)) > 0) {
		if (kz_predict_features(p, pix, n, feat, probs, &e) != 0 ||
		    kz_nearest(g->feat, g->n, feat, n, g->F, cl->count,
		    cl->threads, near, sim, &e) != 0) {
			kz_writer_abort(w);
			errx(1, "%s: %s", cl->model, e.msg);
		}
		for (size_t i = 0; i < n; i++) {
			struct answer a = { pix + i * npix, label[i], index[i],
			    probs + i * C, near + i * cl->count,
			    sim + i * cl->count };

			write_answer(&a, g, cl->count, out, w);
		}
	}
	if (kz_writer_close(w, &e) != 0)
		die_write(&e);
	kz_record_free(in);
	kz_record_free(out);
	free(pix);
	free(label);
	free(index);
	free(feat);
	free(probs);
	free(near);
	free(sim);
	kz_reader_close(r);
}

int
main(int argc, char *argv[])
{
	struct cmdline cl;
	struct kz_model m;
	struct kz_predictor *p;
	struct kz_glyphs g;
	struct kz_err e;

	kz_ignore_sigpipe();
	/* Our threads each call BLAS: it must not start its own. */
	kz_blas_threads(1);
	version_option(argc, argv);
	parse_command_line(argc, argv, &cl);
	read_model(&cl, &m);
	/* The network whose features are compared is an ensemble's first
	 * member, whose guess the query's line shows too (the other
	 * members' would double the time for a line of the sheet); the
	 * ensemble's predictor gives it the images at its size. */
	if ((p = kz_predictor_features_new(&m, cl.threads, BATCH, &e)) ==
	    NULL)
		errx(1, "%s: %s", cl.model, e.msg);
	if (cl.write != NULL) {
		write_index(&cl, &m, p);
	} else {
		read_index(&cl, &m, &g);
		search(&cl, &m, p, &g);
		kz_glyphs_free(&g);
	}
	kz_predictor_free(p);
	kz_model_free(&m);
	free(cl.model);
	return 0;
}
