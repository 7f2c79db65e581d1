/*
 * whiten.c - a fixed first convolution that whitens the images'
 * patches (issue 18's "patch-whitening first layer", after the fast
 * CIFAR-10 trainers): the network starts from decorrelated inputs of
 * unit variance instead of learning that map.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "engine.h"
#include "train.h"

/* At most this many images, spread evenly over the data, give the
 * patches' second moment: more change it by little and cost time. */
#define WHITEN_IMAGES 10000
/* Added to each direction's variance before the root is taken, so that
 * directions of almost no variance (flat patches) are not blown up into
 * noise; the fast CIFAR-10 trainers' value for inputs of unit scale. */
#define WHITEN_EPS 5e-4

/* Eigenvalues (val) and unit eigenvectors (rows of vec) of the
 * symmetric n x n matrix a, which it overwrites, by cyclic Jacobi
 * rotations: n is at most a few dozen here, so clarity beats LAPACK. */
static void
jacobi_eigen(double *a, int n, double *val, double *vec)
{
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			vec[i * n + j] = i == j;
	for (int sweep = 0; sweep < 100; sweep++) {
		double off = 0, diag = 0;

		for (int i = 0; i < n; i++) {
			diag += a[i * n + i] * a[i * n + i];
			for (int j = i + 1; j < n; j++)
				off += a[i * n + j] * a[i * n + j];
		}
		if (off <= 1e-30 * diag || off == 0)
			break;
		for (int p = 0; p < n; p++)
			for (int q = p + 1; q < n; q++) {
				double apq = a[p * n + q];

				if (apq == 0)
					continue;
				double theta = (a[q * n + q] - a[p * n + p]) /
				    (2 * apq);
				double t = (theta >= 0 ? 1 : -1) /
				    (fabs(theta) + sqrt(theta * theta + 1));
				double c = 1 / sqrt(t * t + 1), s = t * c;

				/* a = J^T a J with J the rotation in the
				 * (p, q) plane that zeroes a[p][q]. */
				for (int k = 0; k < n; k++) {
					double akp = a[k * n + p],
					    akq = a[k * n + q];

					a[k * n + p] = c * akp - s * akq;
					a[k * n + q] = s * akp + c * akq;
				}
				for (int k = 0; k < n; k++) {
					double apk = a[p * n + k],
					    aqk = a[q * n + k];

					a[p * n + k] = c * apk - s * aqk;
					a[q * n + k] = s * apk + c * aqk;
				}
				for (int k = 0; k < n; k++) {
					double vp = vec[p * n + k],
					    vq = vec[q * n + k];

					vec[p * n + k] = c * vp - s * vq;
					vec[q * n + k] = s * vp + c * vq;
				}
			}
	}
	for (int i = 0; i < n; i++)
		val[i] = a[i * n + i];
}

/* The second moment (dim x dim, dim = k * k) of every k x k patch that
 * lies inside an image, over the images standardised by mean and std. */
static int
patch_moment(const struct kz_dataset *d, int k, float mean, float std,
    double *c)
{
	int W = (int)d->width, H = (int)d->height, dim = k * k;
	size_t step = d->n > WHITEN_IMAGES ? d->n / WHITEN_IMAGES : 1;
	float *x = malloc((size_t)W * H * sizeof(float));
	double *patch = malloc((size_t)dim * sizeof(double)), count = 0;

	if (x == NULL || patch == NULL) {
		free(x);
		free(patch);
		return -1;
	}
	memset(c, 0, (size_t)dim * dim * sizeof(double));
	for (size_t i = 0; i < d->n; i += step) {
		kz_standardise(d->pixels + i * W * H, (size_t)W * H, mean, std,
		    x);
		for (int y = 0; y + k <= H; y++)
			for (int xo = 0; xo + k <= W; xo++) {
				for (int u = 0; u < k; u++)
					for (int v = 0; v < k; v++)
						patch[u * k + v] =
						    x[(y + u) * W + xo + v];
				for (int a = 0; a < dim; a++)
					for (int b = a; b < dim; b++)
						c[a * dim + b] +=
						    patch[a] * patch[b];
				count++;
			}
	}
	for (int a = 0; a < dim; a++)
		for (int b = a; b < dim; b++)
			c[b * dim + a] = c[a * dim + b] /= count;
	free(x);
	free(patch);
	return 0;
}

/* Into w (L->nw floats), the filters kz_net_whiten gives L. */
static int
whiten_filters(const struct kz_layer *L, const struct kz_dataset *d,
    float mean, float std, float *w, struct kz_err *e)
{
	if (L->type != KZ_CONV || L->src != -1 || L->in.c != 1)
		return kz_errf(e, "--whiten: the first layer must be a "
		    "convolution of the image");
	int k = L->k, dim = k * k, half = L->out.c / 2;

	if (L->out.c % 2 != 0 || half > dim)
		return kz_errf(e, "--whiten: a %dx%d convolution whitens into "
		    "an even number of outputs up to %d, not %d", k, k,
		    2 * dim, L->out.c);
	if ((int)d->width < k || (int)d->height < k || d->n == 0)
		return kz_errf(e, "--whiten: no %dx%d patches in the images",
		    k, k);
	double *c = malloc((size_t)dim * dim * sizeof(double));
	double *vec = malloc((size_t)dim * dim * sizeof(double));
	double *val = malloc((size_t)dim * sizeof(double));
	int *order = malloc((size_t)dim * sizeof(int)), rc = 0;

	if (c == NULL || vec == NULL || val == NULL || order == NULL ||
	    patch_moment(d, k, mean, std, c) != 0) {
		rc = kz_errf(e, "out of memory");
		goto done;
	}
	jacobi_eigen(c, dim, val, vec);
	/* The directions of most variance first; ties by index, so the
	 * order does not depend on the sort. */
	for (int i = 0; i < dim; i++)
		order[i] = i;
	for (int i = 1; i < dim; i++)
		for (int j = i; j > 0 && val[order[j]] > val[order[j - 1]];
		    j--) {
			int t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (int j = 0; j < half; j++) {
		const double *v = vec + (size_t)order[j] * dim;
		double lambda = val[order[j]] > 0 ? val[order[j]] : 0;
		double scale = 1 / sqrt(lambda + WHITEN_EPS);

		for (int i = 0; i < dim; i++) {
			w[(size_t)j * dim + i] = (float)(v[i] * scale);
			w[(size_t)(j + half) * dim + i] = (float)(-v[i] * scale);
		}
	}
done:
	free(c);
	free(vec);
	free(val);
	free(order);
	return rc;
}

int
kz_net_whiten(struct kz_net *n, const struct kz_dataset *d, float mean,
    float std, struct kz_err *e)
{
	const struct kz_layer *L = &n->layers[0];

	if (whiten_filters(L, d, mean, std, n->params + L->w_off, e) != 0)
		return -1;
	memset(n->params + L->b_off, 0, L->nb * sizeof(float));
	return 0;
}

int
kz_net_whitened(const struct kz_net *n, const struct kz_dataset *d,
    float mean, float std)
{
	const struct kz_layer *L = &n->layers[0];
	const float *b = n->params + L->b_off;
	float *w = malloc(L->nw * sizeof(float) + 1);
	struct kz_err e;
	int same;

	if (w == NULL)
		return -1;
	same = whiten_filters(L, d, mean, std, w, &e) == 0 &&
	    memcmp(w, n->params + L->w_off, L->nw * sizeof(float)) == 0;
	for (size_t i = 0; same && i < L->nb; i++)
		same = b[i] == 0;
	free(w);
	return same;
}
