/*
 * kz-classify - add the k most probable classes of a model (or the
 * average of several) to every record of a stream.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "predict.h"

#ifndef KZ_SHAREDIR
#define KZ_SHAREDIR "/usr/local/share/kz"
#endif
#define DEFAULT_MODEL "kmnist.kzm"
#define MAX_MODELS 32
#define MAX_SHIFT 8

/* The shipped model: $KZ_MODEL, else models/ of the source tree this
 * program was built in (build/bin/../../models), else the installed
 * share directory. */
static const char *
default_model(void)
{
	static char path[4096 + 64];
	const char *env = getenv("KZ_MODEL");
	char exe[4096];
	ssize_t n;

	if (env != NULL && *env != '\0')
		return env;
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			snprintf(path, sizeof(path), "%s/../../models/%s", exe,
			    DEFAULT_MODEL);
			if (access(path, R_OK) == 0)
				return path;
		}
	}
	snprintf(path, sizeof(path), "%s/%s", KZ_SHAREDIR, DEFAULT_MODEL);
	return path;
}

static void
usage(void)
{
	fprintf(stderr, "usage: kz-classify [-m model]... [-k predictions] "
	    "[-s shift] [-b batch] [-t threads]\n"
	    "                   [-o file] [file]\n");
	exit(2);
}


int
main(int argc, char *argv[])
{
	const char *paths[MAX_MODELS], *output = "-";
	int nmodels = 0, k = -1, batch = 1000, threads = kz_ncpu(), ch;
	int shift = 0;
	struct kz_err e;

	kz_ignore_sigpipe();
	/* Our threads each call BLAS: it must not start its own. */
	kz_blas_threads(1);
	while ((ch = getopt(argc, argv, "m:k:s:b:t:o:")) != -1) {
		switch (ch) {
		case 'm':
			if (nmodels == MAX_MODELS)
				errx(2, "at most %d models", MAX_MODELS);
			paths[nmodels++] = optarg;
			break;
		case 'k': k = (int)integer(optarg, 1, KZ_MAX_K, "-k"); break;
		case 's':
			shift = (int)integer(optarg, 0, MAX_SHIFT, "-s");
			break;
		case 'b': batch = (int)integer(optarg, 1, 1 << 20, "-b"); break;
		case 't': threads = (int)integer(optarg, 1, 64, "-t"); break;
		case 'o': output = optarg; break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1)
		usage();
	refuse_tty(output);
	if (nmodels == 0)
		paths[nmodels++] = default_model();

	struct kz_model m[MAX_MODELS];
	struct kz_predictor *pred[MAX_MODELS];
	for (int i = 0; i < nmodels; i++) {
		if (kz_model_read(paths[i], &m[i], &e) != 0)
			errx(1, "%s", e.msg);
		if (i > 0 && (m[i].width != m[0].width || m[i].height !=
		    m[0].height || m[i].nclasses != m[0].nclasses))
			errx(1, "%s: a %ux%u model of %u classes cannot join %s, "
			    "%ux%u of %u", paths[i], m[i].width, m[i].height,
			    m[i].nclasses, paths[0], m[0].width, m[0].height,
			    m[0].nclasses);
	}
	struct kz_reader *r = kz_reader_open(argc ? argv[0] : "-", &e);
	if (r == NULL)
		errx(1, "%s", e.msg);
	const struct kz_header *h = kz_reader_header(r);
	const char *name = kz_reader_name(r);
	if (h->pixel != KZ_PIXEL_U8)
		errx(1, "%s: models read 8-bit streams", name);
	if (h->width != m[0].width || h->height != m[0].height)
		errx(1, "%s: %ux%u images do not fit model %s (%ux%u); pass them "
		    "through kz-norm --fit %ux%u", name, h->width, h->height,
		    paths[0], m[0].width, m[0].height, m[0].width, m[0].height);
	if (h->nclasses != 0 && h->nclasses != m[0].nclasses)
		errx(1, "%s: %u classes, model %s has %u", name, h->nclasses,
		    paths[0], m[0].nclasses);
	for (int i = 0; i < nmodels; i++)
		if ((pred[i] = kz_predictor_new(&m[i], threads, batch, &e)) ==
		    NULL)
			errx(1, "%s: %s", paths[i], e.msg);

	int C = (int)m[0].nclasses;
	if (k < 0)
		k = C < 5 ? C : 5;
	if (k > C)
		k = C;
	struct kz_header oh = *h;
	oh.k = (uint16_t)k;
	oh.nclasses = (uint32_t)C;
	struct kz_record *in = kz_record_new(h), **out;
	size_t npix = (size_t)h->width * h->height;
	uint8_t *pix = malloc(batch * npix), *moved = malloc(batch * npix);
	/* The views averaged: the image, and with -s, the image moved by
	 * shift pixels right, left, down and up. */
	int views[5][2] = { { 0, 0 }, { shift, 0 }, { -shift, 0 },
	    { 0, shift }, { 0, -shift } };
	int nviews = shift > 0 ? 5 : 1, nsum = nviews * nmodels;
	float *probs = malloc((size_t)batch * C * sizeof(float));
	float *sum = malloc((size_t)batch * C * sizeof(float));
	if (in == NULL || pix == NULL || moved == NULL || probs == NULL ||
	    sum == NULL ||
	    (out = calloc(batch, sizeof(*out))) == NULL)
		err(1, NULL);
	for (int i = 0; i < batch; i++)
		if ((out[i] = kz_record_new(&oh)) == NULL)
			err(1, NULL);
	struct kz_writer *w = kz_writer_open(output, &oh, &e);
	if (w == NULL)
		errx(1, "%s", e.msg);

	int rc = 1;
	while (rc == 1) {
		int n = 0;

		while (n < batch && (rc = kz_reader_next(r, in, &e)) == 1) {
			out[n]->index = in->index;
			out[n]->label = in->label;
			memcpy(pix + n * npix, in->pixels, npix);
			memcpy(out[n]->pixels, in->pixels, npix);
			n++;
		}
		if (rc < 0) {
			kz_writer_abort(w);
			errx(1, "%s", e.msg);
		}
		if (n == 0)
			break;
		for (int v = 0; v < nviews; v++) {
			const uint8_t *x = pix;

			if (v > 0) {
				for (int j = 0; j < n; j++)
					kz_norm_shift(pix + j * npix, h->width,
					    h->height, views[v][0], views[v][1],
					    moved + j * npix);
				x = moved;
			}
			for (int i = 0; i < nmodels; i++) {
				int first = v == 0 && i == 0;

				if (kz_predict(pred[i], x, n, first ? sum : probs,
				    &e) != 0) {
					kz_writer_abort(w);
					errx(1, "%s: %s", paths[i], e.msg);
				}
				for (size_t j = 0; !first && j < (size_t)n * C;
				    j++)
					sum[j] += probs[j];
			}
		}
		for (int j = 0; j < n; j++) {
			float *p = sum + (size_t)j * C;

			/* The k best by selection: k is small. */
			for (int q = 0; q < k; q++) {
				int best = -1;

				for (int c = 0; c < C; c++) {
					int taken = 0;

					for (int t = 0; t < q && !taken; t++)
						taken = (int)out[j]->pred[t].cls == c;
					if (!taken && (best < 0 || p[c] > p[best]))
						best = c;
				}
				out[j]->pred[q].cls = (uint32_t)best;
				out[j]->pred[q].score = p[best] / nsum;
			}
			if (kz_writer_put(w, out[j], &e) != 0) {
				kz_writer_abort(w);
				die_write(&e);
			}
		}
	}
	if (kz_writer_close(w, &e) != 0)
		die_write(&e);
	for (int i = 0; i < nmodels; i++) {
		kz_predictor_free(pred[i]);
		kz_model_free(&m[i]);
	}
	for (int i = 0; i < batch; i++)
		kz_record_free(out[i]);
	free(out);
	kz_record_free(in);
	free(pix);
	free(moved);
	free(probs);
	free(sum);
	kz_reader_close(r);
	return 0;
}
