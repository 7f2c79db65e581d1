/*
 * kz-classify - add the k most probable classes of a model (or the
 * average of several) to every record of a stream.
 */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "predict.h"

#define MAX_MODELS 32
#define MAX_SHIFT 8
#define MAX_ZOOM 20			/* per cent */
#define MAX_ROTATE 30		/* degrees */

/* The command line, as parse_command_line leaves it. */
struct cmdline {
	char *paths[MAX_MODELS];	/* -m: the models averaged, as
					   files */
	int nmodels;			/* at least one, the default */
	int k;				/* -k: predictions kept; -1: up to 5 */
	int shift;			/* -s: pixels each moved view moves;
					   -1: the first model's setting */
	int zoom;			/* -z: per cent each zoomed view
					   scales by; -1: the first
					   model's setting */
	int rotate;			/* -r: degrees each turned view
					   turns by; -1: the first
					   model's setting */
	int batch;			/* -b: records classified at once */
	int threads;			/* -t: threads of each model */
	enum kz_math math;		/* -p */
	int verbose;			/* -v: say which arithmetic */
	const char *output;		/* -o: "-" for stdout */
	const char *input;		/* the stream, "-" for stdin */
};

/* A batch of records on its way through, and what every batch shares. */
struct batch {
	const struct kz_header *h;	/* the input's */
	size_t npix;			/* pixels per image */
	int C, k;			/* classes; predictions written */
	int nviews;			/* nturns x nzooms x nmoves */
	int nturns, nzooms, nmoves;	/* 1, or 3 with -r; 1, or 2 with -z;
					   1, or 5 with -s */
	double turns[3];		/* each turn's angle, degrees */
	double zooms[2];		/* each zoom's scale */
	int moves[5][2];		/* each move, x and y */
	struct kz_record *in;		/* the record read */
	struct kz_record **out;		/* the records written */
	uint8_t *pix, *warped, *moved;	/* images, and views of them */
	float *probs, *sum;		/* batch x C: one model's; the sum */
	uint32_t *fold;			/* C: where each class's score
					   goes (KZ_FLAG_MODERN), or NULL */
};

static void
usage(void)
{
	fprintf(stderr, "usage: kz-classify [-v] [-m model]... [-k predictions] "
	    "[-s shift] [-z zoom]\n"
	    "                   [-r degrees] [-b batch] [-p auto|f32|bf16] "
	    "[-t threads]\n"
	    "                   [-o file] [file]\n"
	    "       kz-classify -L\n");
	version_usage("kz-classify");
	exit(2);
}

/* -L: every model found by name, one line each, in the order searched:
 * name, classes, input size, the version that wrote it, its file.  A
 * name found twice is listed twice; -m takes the first. */
static void
list_models(void)
{
	char dirs[KZ_MODEL_DIRS][KZ_DIR_MAX];
	int n = kz_model_dirs(getenv("KZ_MODEL_PATH"), KZ_SHAREDIR, dirs,
	    KZ_MODEL_DIRS);

	printf("%-16s %7s %7s %7s  %s\n", "NAME", "CLASSES", "SIZE",
	    "VERSION", "FILE, FIGURES");
	for (int i = 0; i < n; i++) {
		struct dirent **ent;
		int m = scandir(dirs[i], &ent, NULL, alphasort);

		for (int j = 0; j < m; j++) {
			size_t l = strlen(ent[j]->d_name);
			char *path, size[32];
			struct kz_model model;
			struct kz_err e;

			if (l > 4 && strcmp(ent[j]->d_name + l - 4, ".kzm") == 0) {
				if (asprintf(&path, "%s/%s", dirs[i],
				    ent[j]->d_name) < 0)
					err(1, NULL);
				if (kz_model_read(path, &model, &e) != 0) {
					warnx("%s", e.msg);
				} else {
					snprintf(size, sizeof(size), "%ux%u",
					    model.width, model.height);
					printf("%-16.*s %7u %7s %7s  %s%s%s\n",
					    (int)l - 4, ent[j]->d_name,
					    model.nclasses, size,
					    model.version ? model.version :
					    "-", path, model.figures ? ", " :
					    "", model.figures ? model.figures :
					    "");
					kz_model_free(&model);
				}
				free(path);
			}
			free(ent[j]);
		}
		if (m > 0)
			free(ent);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		err(1, "stdout");
	exit(0);
}

/* Fills cl from the command line, or exits 2 with the usage or a
 * message naming the option.  Without -m, KZ_MODEL, else the shipped
 * model, by name. */
static void
parse_command_line(int argc, char *argv[], struct cmdline *cl)
{
	int ch;

	memset(cl, 0, sizeof(*cl));
	cl->k = -1;
	cl->shift = -1;
	cl->zoom = -1;
	cl->rotate = -1;
	cl->batch = 1024;
	cl->threads = kz_ncpu();
	cl->output = "-";
	cl->math = KZ_MATH_F32;
	while ((ch = getopt(argc, argv, "Lm:k:s:z:r:b:p:t:o:v")) != -1) {
		switch (ch) {
		case 'L':
			list_models();
			break;
		case 'm':
			if (cl->nmodels == MAX_MODELS)
				errx(2, "at most %d models", MAX_MODELS);
			cl->paths[cl->nmodels++] = model_file(optarg);
			break;
		case 'k':
			cl->k = (int)integer(optarg, 1, KZ_MAX_K, "-k");
			break;
		case 's':
			cl->shift = (int)integer(optarg, 0, MAX_SHIFT, "-s");
			break;
		case 'z':
			cl->zoom = (int)integer(optarg, 0, MAX_ZOOM, "-z");
			break;
		case 'r':
			cl->rotate = (int)integer(optarg, 0, MAX_ROTATE, "-r");
			break;
		case 'b':
			/* Whole chunks, so that every batch starts where one
			 * would in any other run. */
			cl->batch = (int)integer(optarg, 1, 1 << 20, "-b");
			cl->batch += -cl->batch & (KZ_PREDICT_CHUNK - 1);
			break;
		case 't':
			cl->threads = (int)integer(optarg, 1, 64, "-t");
			break;
		case 'p':
			if (kz_math_parse(optarg, &cl->math) != 0)
				errx(2, "-p: auto, f32 or bf16, not \"%s\"",
				    optarg);
			break;
		case 'o': cl->output = optarg; break;
		case 'v': cl->verbose = 1; break;
		default: usage();
		}
	}
	if (argc - optind > 1)
		usage();
	cl->input = optind < argc ? argv[optind] : "-";
	refuse_tty(cl->output);
	if (cl->nmodels == 0)
		cl->paths[cl->nmodels++] = default_model_file();
}

/* Reads the models into m; they must agree on geometry and classes. */
static void
read_models(const struct cmdline *cl, struct kz_model *m)
{
	struct kz_err e;

	for (int i = 0; i < cl->nmodels; i++) {
		if (kz_model_read(cl->paths[i], &m[i], &e) != 0)
			errx(1, "%s", e.msg);
		if (i > 0 && (m[i].width != m[0].width || m[i].height !=
		    m[0].height || m[i].nclasses != m[0].nclasses))
			errx(1, "%s: a %ux%u model of %u classes cannot join "
			    "%s, %ux%u of %u", cl->paths[i], m[i].width,
			    m[i].height, m[i].nclasses, cl->paths[0],
			    m[0].width, m[0].height, m[0].nclasses);
	}
}

/* Opens the stream, whose images must be 8-bit, of the models' size,
 * and, if it says, of their number of classes. */
static struct kz_reader *
open_input(const struct cmdline *cl, const struct kz_model *m)
{
	struct kz_reader *r = open_model_input(cl->input, m, cl->paths[0]);
	const struct kz_header *h = kz_reader_header(r);

	if (h->nclasses != 0 && h->nclasses != m->nclasses)
		errx(1, "%s: %u classes, model %s has %u", kz_reader_name(r),
		    h->nclasses, cl->paths[0], m->nclasses);
	return r;
}

/* When the stream's labels write old character forms as modern ones
 * (KZ_FLAG_MODERN), each old form's score goes to its modern form's
 * class, so that the answers write them as the labels do: b->fold,
 * from the model's class map, which must be there to know the forms.
 * Fewer classes remain to choose the k from. */
static void
fold_forms(const struct cmdline *cl, const struct kz_model *m,
    struct batch *b)
{
	size_t folded;

	if ((b->h->flags & KZ_FLAG_MODERN) == 0)
		return;
	if (m->classmap.n != (size_t)b->C) {
		if (cl->verbose)
			fprintf(stderr, "kz-classify: %s has no class map: "
			    "old character forms are not read as modern ones\n",
			    cl->paths[0]);
		return;
	}
	if ((b->fold = malloc(b->C * sizeof(uint32_t))) == NULL)
		err(1, NULL);
	folded = kz_classmap_fold(&m->classmap, b->fold);
	if (cl->verbose)
		fprintf(stderr, "kz-classify: the labels write modern forms: "
		    "%zu old form%s read as %s modern form%s\n", folded,
		    folded == 1 ? "" : "s", folded == 1 ? "its" : "their",
		    folded == 1 ? "" : "s");
	if (folded == 0) {
		free(b->fold);
		b->fold = NULL;
	} else if (b->k > b->C - (int)folded) {
		b->k = b->C - (int)folded;
	}
}

/* Sets up b for batches of the stream of header h, with k predictions
 * of model m's classes (k of -1: the default); oh is the output's
 * header. */
static void
new_batch(const struct cmdline *cl, const struct kz_header *h,
    const struct kz_model *m, struct batch *b, struct kz_header *oh)
{
	int C = (int)m->nclasses;
	size_t n = (size_t)cl->batch;
	int shift = cl->shift;
	/* The views averaged: the image as given and, with -r, turned
	 * either way; each of those itself or, with -z, scaled down and up
	 * in its place; each of those unmoved and, with -s, moved by shift
	 * pixels right, left, down and up. */
	int moves[5][2] = { { 0, 0 }, { shift, 0 }, { -shift, 0 },
	    { 0, shift }, { 0, -shift } };

	memset(b, 0, sizeof(*b));
	b->h = h;
	b->npix = (size_t)h->width * h->height;
	b->C = C;
	b->k = cl->k < 0 ? (C < 5 ? C : 5) : cl->k > C ? C : cl->k;
	fold_forms(cl, m, b);
	b->nmoves = shift > 0 ? 5 : 1;
	b->nzooms = cl->zoom > 0 ? 2 : 1;
	b->nturns = cl->rotate > 0 ? 3 : 1;
	b->nviews = b->nturns * b->nzooms * b->nmoves;
	b->turns[0] = 0;
	b->turns[1] = cl->rotate;
	b->turns[2] = -cl->rotate;
	b->zooms[0] = cl->zoom > 0 ? 1 - cl->zoom / 100.0 : 1;
	b->zooms[1] = 1 + cl->zoom / 100.0;
	memcpy(b->moves, moves, sizeof(moves));
	*oh = *h;
	oh->k = (uint16_t)b->k;
	oh->nclasses = (uint32_t)C;
	b->in = kz_record_new(h);
	b->pix = malloc(n * b->npix);
	/* A buffer for the zoomed or turned views only when there are
	 * any. */
	b->warped = b->nviews > b->nmoves ? malloc(n * b->npix) : NULL;
	b->moved = malloc(n * b->npix);
	b->probs = malloc(n * C * sizeof(float));
	b->sum = malloc(n * C * sizeof(float));
	if (b->in == NULL || b->pix == NULL || (b->nviews > b->nmoves &&
	    b->warped == NULL) || b->moved == NULL ||
	    b->probs == NULL || b->sum == NULL ||
	    (b->out = calloc(n, sizeof(*b->out))) == NULL)
		err(1, NULL);
	for (size_t i = 0; i < n; i++)
		if ((b->out[i] = kz_record_new(oh)) == NULL)
			err(1, NULL);
}

/* Adds up in b->sum the probabilities that every model gives every
 * view of the batch's n images.  On an error, aborts w and exits. */
static void
predict(const struct cmdline *cl, struct kz_predictor **pred,
    struct batch *b, int n, struct kz_writer *w)
{
	const struct kz_header *h = b->h;
	struct kz_err e;

	for (int v = 0; v < b->nviews; v++) {
		const uint8_t *x = b->pix;
		double turn = b->turns[v / (b->nzooms * b->nmoves)];
		double zoom = b->zooms[v / b->nmoves % b->nzooms];
		const int *move = b->moves[v % b->nmoves];

		if (zoom != 1 || turn != 0) {
			/* Drawn once, at its first move: the moves of one
			 * zoom and turn are consecutive views. */
			if (v % b->nmoves == 0)
				for (int j = 0; j < n; j++)
					kz_norm_view(x + j * b->npix, h->width,
					    h->height, zoom, turn, b->warped +
					    j * b->npix);
			x = b->warped;
		}
		if (move[0] != 0 || move[1] != 0) {
			for (int j = 0; j < n; j++)
				kz_norm_shift(x + j * b->npix, h->width,
				    h->height, move[0], move[1],
				    b->moved + j * b->npix);
			x = b->moved;
		}
		for (int i = 0; i < cl->nmodels; i++) {
			int first = v == 0 && i == 0;

			if (kz_predict(pred[i], x, n, first ? b->sum :
			    b->probs, &e) != 0) {
				kz_writer_abort(w);
				errx(1, "%s: %s", cl->paths[i], e.msg);
			}
			for (size_t j = 0; !first && j < (size_t)n * b->C;
			    j++)
				b->sum[j] += b->probs[j];
		}
	}
}

/* Record j's k best classes, from the sum of nsum probabilities; the
 * sum is spent: each class taken is marked -1, below every probability,
 * so that each of the k passes is one scan of the classes. */
static void
best_k(struct batch *b, int j, int nsum)
{
	float *p = b->sum + (size_t)j * b->C;
	struct kz_record *out = b->out[j];

	if (b->fold != NULL)
		for (int c = 0; c < b->C; c++)
			if (b->fold[c] != (uint32_t)c) {
				p[b->fold[c]] += p[c];
				p[c] = -1;
			}
	for (int q = 0; q < b->k; q++) {
		int best = 0;

		for (int c = 1; c < b->C; c++)
			if (p[c] > p[best])
				best = c;
		out->pred[q].cls = (uint32_t)best;
		out->pred[q].score = p[best] / nsum;
		p[best] = -1;
	}
}

/* Classifies the stream batch by batch onto w. */
static void
classify(const struct cmdline *cl, struct kz_reader *r,
    struct kz_predictor **pred, struct batch *b, struct kz_writer *w)
{
	struct kz_err e;
	int rc = 1;

	while (rc == 1) {
		int n = 0;

		while (n < cl->batch && (rc = kz_reader_next(r, b->in,
		    &e)) == 1) {
			b->out[n]->index = b->in->index;
			b->out[n]->label = b->in->label;
			memcpy(b->pix + n * b->npix, b->in->pixels, b->npix);
			memcpy(b->out[n]->pixels, b->in->pixels, b->npix);
			n++;
		}
		if (rc < 0) {
			kz_writer_abort(w);
			errx(1, "%s", e.msg);
		}
		if (n == 0)
			break;
		predict(cl, pred, b, n, w);
		for (int j = 0; j < n; j++) {
			best_k(b, j, b->nviews * cl->nmodels);
			if (kz_writer_put(w, b->out[j], &e) != 0) {
				kz_writer_abort(w);
				die_write(&e);
			}
		}
	}
}

/* Sets the predictors' arithmetic as -p says: auto takes bfloat16
 * where the CPU has it; bf16 on a CPU without falls back to single
 * precision, which -v reports, as it reports the choice. */
static void
set_math(const struct cmdline *cl, struct kz_predictor **pred)
{
	const char *why;
	enum kz_math math = kz_math_resolve(cl->math, &why);
	struct kz_err e;

	if (why != NULL && cl->verbose)
		warnx("-p bf16: %s; single precision instead", why);
	for (int i = 0; i < cl->nmodels; i++)
		if (kz_predictor_math(pred[i], math, &e) != 0)
			errx(1, "%s", e.msg);
	if (cl->verbose)
		warnx("3x3 convolutions in %s", math == KZ_MATH_BF16 ?
		    "bfloat16 products, single-precision sums" :
		    kz_avx512_ok() ? "single precision, kz's AVX-512 products" :
		    "single precision, OpenBLAS's products");
}

int
main(int argc, char *argv[])
{
	struct cmdline cl;
	struct kz_model m[MAX_MODELS];
	struct kz_predictor *pred[MAX_MODELS];
	struct kz_reader *r;
	struct kz_writer *w;
	struct kz_header oh;
	struct batch b;
	struct kz_err e;

	kz_ignore_sigpipe();
	/* Our threads each call BLAS: it must not start its own. */
	kz_blas_threads(1);
	version_option(argc, argv);
	parse_command_line(argc, argv, &cl);
	read_models(&cl, m);
	/* The test-time settings the model carries, unless -s, -z or -r
	 * says. */
	if (cl.shift < 0)
		cl.shift = m[0].settings.shift;
	if (cl.zoom < 0)
		cl.zoom = m[0].settings.zoom;
	if (cl.rotate < 0)
		cl.rotate = m[0].settings.rotate;
	r = open_input(&cl, &m[0]);
	for (int i = 0; i < cl.nmodels; i++)
		if ((pred[i] = kz_predictor_new(&m[i], cl.threads, cl.batch,
		    &e)) == NULL)
			errx(1, "%s: %s", cl.paths[i], e.msg);
	set_math(&cl, pred);
	new_batch(&cl, kz_reader_header(r), &m[0], &b, &oh);
	if ((w = kz_writer_open(cl.output, &oh, &e)) == NULL)
		errx(1, "%s", e.msg);
	classify(&cl, r, pred, &b, w);
	if (kz_writer_close(w, &e) != 0)
		die_write(&e);
	for (int i = 0; i < cl.nmodels; i++) {
		kz_predictor_free(pred[i]);
		kz_model_free(&m[i]);
	}
	for (int i = 0; i < cl.batch; i++)
		kz_record_free(b.out[i]);
	free(b.out);
	kz_record_free(b.in);
	free(b.warped);
	free(b.pix);
	free(b.moved);
	free(b.probs);
	free(b.sum);
	free(b.fold);
	kz_reader_close(r);
	for (int i = 0; i < cl.nmodels; i++)
		free(cl.paths[i]);
	return 0;
}
