/* infer.c - classifying batches: nets sharded over threads, and exact
 * k-nearest-neighbour search with sgemm. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "norm.h"
#include "util.h"
#include "predict.h"

#define NET_CHUNK KZ_PREDICT_CHUNK
#define KNN_QUERY 512		/* queries per distance sgemm */
#define KNN_MARGIN 16		/* float candidates beyond k */

void openblas_set_num_threads(int);

void
kz_blas_threads(int n)
{
	openblas_set_num_threads(n < 1 ? 1 : n);
}

int
kz_ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

struct par {
	void (*fn)(int, void *);
	void *arg;
	int tid;
};

static void *
par_main(void *p)
{
	struct par *q = p;

	q->fn(q->tid, q->arg);
	return NULL;
}

void
kz_parallel(int threads, void (*fn)(int, void *), void *arg)
{
	pthread_t tid[256];
	struct par p[256];
	int started[256] = { 0 };

	if (threads > 256)
		threads = 256;
	for (int t = 1; t < threads; t++) {
		p[t] = (struct par){ fn, arg, t };
		started[t] = pthread_create(&tid[t], NULL, par_main, &p[t]) == 0;
		if (!started[t])
			fn(t, arg);	/* no thread: do its share here */
	}
	fn(0, arg);
	for (int t = 1; t < threads; t++)
		if (started[t])
			pthread_join(tid[t], NULL);
}

KZ_HOT void
kz_standardise(const uint8_t *p, size_t n, float mean, float std, float *x)
{
	float a = 1.0f / (255.0f * std), b = -mean / std;

	for (size_t i = 0; i < n; i++)
		x[i] = p[i] * a + b;
}

struct kz_predictor {
	const struct kz_model *m;
	int threads, maxb;
	struct kz_work **work;		/* nets: one per thread */
	float **x;			/* nets: input per thread */
	float *train;			/* kNN: [n][d] as floats */
	float *tnorm;			/* kNN: squared norms */
	float *gram;			/* kNN: [KNN_QUERY][n] */
	float *qx;			/* kNN: [KNN_QUERY][d] */
	struct kz_predictor **member;	/* ensembles: one per member */
	float *member_probs;		/* ensembles: [maxb][classes] */
	uint8_t **member_pixels;	/* ensembles: a smaller member's
					   images, [maxb][its size]; NULL
					   for members of the ensemble's */
	/* the current batch */
	const uint8_t *pixels;
	size_t n;
	float *probs;			/* may be NULL for features alone */
	float *feat;			/* features wanted, [n][F], or NULL */
};

void
kz_predictor_free(struct kz_predictor *p)
{
	if (p == NULL)
		return;
	for (int t = 0; p->work && t < p->threads; t++) {
		kz_work_free(p->work[t]);
		free(p->x[t]);
	}
	free(p->work);
	free(p->x);
	free(p->train);
	free(p->tnorm);
	free(p->gram);
	free(p->qx);
	for (int i = 0; p->member != NULL && i < p->m->nmembers; i++)
		kz_predictor_free(p->member[i]);
	for (int i = 0; p->member_pixels != NULL && i < p->m->nmembers; i++)
		free(p->member_pixels[i]);
	free(p->member);
	free(p->member_probs);
	free(p->member_pixels);
	free(p);
}

int
kz_predictor_math(struct kz_predictor *p, enum kz_math math,
    struct kz_err *e)
{
	if (math == KZ_MATH_BF16 && !kz_bf16_ok())
		return kz_errf(e, "this CPU lacks AVX512_BF16 for bfloat16 "
		    "products");
	for (int i = 0; p->member != NULL && i < p->m->nmembers; i++)
		if (p->member[i] != NULL &&
		    kz_predictor_math(p->member[i], math, e) != 0)
			return -1;
	for (int t = 0; p->work != NULL && t < p->threads; t++)
		kz_work_math(p->work[t], math == KZ_MATH_BF16);
	return 0;
}

/* kz_predictor_new, or with features_only the predictor that
 * kz_predictor_features_new describes. */
static struct kz_predictor *
predictor_new(const struct kz_model *m, int threads, int maxb,
    int features_only, struct kz_err *e)
{
	struct kz_predictor *p = calloc(1, sizeof(*p));
	size_t d = (size_t)m->width * m->height;

	if (p == NULL)
		goto oom;
	p->m = m;
	p->threads = threads < 1 ? 1 : threads;
	p->maxb = maxb;
	if (m->type == KZ_MODEL_ENSEMBLE) {
		if ((p->member = calloc(m->nmembers, sizeof(*p->member))) ==
		    NULL || (p->member_pixels = calloc(m->nmembers,
		    sizeof(*p->member_pixels))) == NULL ||
		    (p->member_probs = malloc((size_t)maxb * m->nclasses *
		    sizeof(float))) == NULL)
			goto oom;
		for (int i = 0; i < (features_only ? 1 : m->nmembers); i++) {
			const struct kz_model *mm = &m->members[i];

			if ((p->member[i] = kz_predictor_new(mm, threads,
			    maxb, e)) == NULL) {
				kz_predictor_free(p);
				return NULL;
			}
			if ((mm->width != m->width || mm->height !=
			    m->height) && (p->member_pixels[i] =
			    malloc((size_t)maxb * mm->width * mm->height)) ==
			    NULL)
				goto oom;
		}
		return p;
	}
	if (m->type == KZ_MODEL_NET) {
		if ((p->work = calloc(p->threads, sizeof(*p->work))) == NULL ||
		    (p->x = calloc(p->threads, sizeof(*p->x))) == NULL)
			goto oom;
		for (int t = 0; t < p->threads; t++) {
			if ((p->work[t] = kz_work_new(m->net, NET_CHUNK, 0,
			    e)) == NULL) {
				kz_predictor_free(p);
				return NULL;
			}
			if ((p->x[t] = malloc(NET_CHUNK * d * sizeof(float))) ==
			    NULL)
				goto oom;
		}
		return p;
	}
	if ((p->train = malloc(m->n * d * sizeof(float))) == NULL ||
	    (p->tnorm = malloc(m->n * sizeof(float))) == NULL ||
	    (p->gram = malloc((size_t)KNN_QUERY * m->n * sizeof(float))) ==
	    NULL || (p->qx = malloc((size_t)KNN_QUERY * d * sizeof(float))) ==
	    NULL)
		goto oom;
	for (size_t i = 0; i < m->n; i++) {
		const uint8_t *s = m->pixels + i * d;
		uint64_t nn = 0;

		for (size_t j = 0; j < d; j++) {
			p->train[i * d + j] = s[j];
			nn += (uint64_t)s[j] * s[j];
		}
		p->tnorm[i] = (float)nn;
	}
	return p;
oom:
	kz_predictor_free(p);
	kz_errf(e, "out of memory");
	return NULL;
}

struct kz_predictor *
kz_predictor_new(const struct kz_model *m, int threads, int maxb,
    struct kz_err *e)
{
	return predictor_new(m, threads, maxb, 0, e);
}

struct kz_predictor *
kz_predictor_features_new(const struct kz_model *m, int threads, int maxb,
    struct kz_err *e)
{
	return predictor_new(m, threads, maxb, 1, e);
}

/* ---- nets ----------------------------------------------------------- */

/* The net's features of the last pass of b images, each scaled to
 * unit length, so that a dot product is the cosine of their angle. */
static void
unit_features(const struct kz_net *n, const struct kz_work *w, int b,
    float *feat)
{
	size_t F = (size_t)kz_net_nfeatures(n);

	kz_net_features(n, w, b, feat);
	for (int i = 0; i < b; i++) {
		float *f = feat + i * F;
		double s = 0;

		for (size_t j = 0; j < F; j++)
			s += (double)f[j] * f[j];
		float r = s > 0 ? (float)(1 / sqrt(s)) : 0;
		for (size_t j = 0; j < F; j++)
			f[j] *= r;
	}
}

static void
net_shard(int t, void *arg)
{
	struct kz_predictor *p = arg;
	const struct kz_model *m = p->m;
	size_t d = (size_t)m->width * m->height, C = m->nclasses;

	/* Whole chunks of KZ_PREDICT_CHUNK from the batch's start, dealt
	 * round: a record's bytes depend on the chunk it is computed in
	 * (BLAS picks its kernels by size), so the chunks are the same
	 * whatever the number of threads. */
	for (size_t i = (size_t)t * NET_CHUNK; i < p->n; i += (size_t)p->threads *
	    NET_CHUNK) {
		int b = p->n - i < NET_CHUNK ? (int)(p->n - i) : NET_CHUNK;

		kz_standardise(p->pixels + i * d, b * d, m->mean, m->std,
		    p->x[t]);
		kz_net_forward(m->net, p->work[t], p->x[t], b, 0, NULL);
		if (p->probs != NULL)
			kz_net_softmax(m->net, p->work[t], b, p->probs + i *
			    C);
		if (p->feat != NULL)
			unit_features(m->net, p->work[t], b, p->feat + i *
			    (size_t)kz_net_nfeatures(m->net));
	}
}

/* ---- kNN ------------------------------------------------------------ */

struct cand {
	float d;
	uint32_t i;
};

/* Keeps in heap (h of at most M entries, a max-heap) the M smallest v
 * seen, with their i. */
static void
cand_keep(struct cand *heap, int *h, int M, float v, uint32_t i)
{
	if (*h < M) {
		int c = (*h)++;

		while (c > 0 && heap[(c - 1) / 2].d < v) {
			heap[c] = heap[(c - 1) / 2];
			c = (c - 1) / 2;
		}
		heap[c] = (struct cand){ v, i };
	} else if (v < heap[0].d) {
		int c = 0;

		for (;;) {
			int l = 2 * c + 1, r = l + 1, big = c;
			float bv = v;

			if (l < *h && heap[l].d > bv) {
				big = l;
				bv = heap[l].d;
			}
			if (r < *h && heap[r].d > bv)
				big = r;
			if (big == c)
				break;
			heap[c] = heap[big];
			c = big;
		}
		heap[c] = (struct cand){ v, i };
	}
}

/* Exact squared distance in integers. */
static uint64_t
dist2(const uint8_t *a, const uint8_t *b, size_t d)
{
	uint64_t s = 0;

	for (size_t j = 0; j < d; j++) {
		int x = (int)a[j] - (int)b[j];
		s += (uint64_t)(x * x);
	}
	return s;
}

struct exact {
	uint64_t d;
	uint32_t i;
};

static int
exact_cmp(const void *a, const void *b)
{
	const struct exact *x = a, *y = b;

	if (x->d != y->d)
		return x->d < y->d ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* Queries q0..q1 of the current sgemm block starting at query base. */
struct knn_job {
	struct kz_predictor *p;
	size_t base, nq;
};

/* Rows lo..hi-1 of the Gram matrix of the block's queries (from query
 * base) and the training images: one thread's share, with BLAS
 * single-threaded in each of the library's threads. */
static void
knn_gram(struct kz_predictor *p, size_t base, size_t lo, size_t hi)
{
	const struct kz_model *m = p->m;
	size_t d = (size_t)m->width * m->height;

	for (size_t i = lo * d; i < hi * d; i++)
		p->qx[i] = p->pixels[base * d + i];
	if (hi > lo)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
		    (int)(hi - lo), (int)m->n, (int)d, 1.0f, p->qx + lo * d,
		    (int)d, p->train, (int)d, 0.0f, p->gram + lo * m->n,
		    (int)m->n);
}

/* Thread t's queries of the block: their Gram rows, then the k nearest
 * by the Gram distances and a margin, ranked again exactly. */
static void
knn_select(int t, void *arg)
{
	struct knn_job *job = arg;
	struct kz_predictor *p = job->p;
	const struct kz_model *m = p->m;
	size_t d = (size_t)m->width * m->height, C = m->nclasses;
	int k = (int)m->knn_k;
	int M = k + KNN_MARGIN;
	struct cand heap[1024 + KNN_MARGIN];
	struct exact ex[1024 + KNN_MARGIN];
	size_t lo = job->nq * t / p->threads, hi = job->nq * (t + 1) /
	    p->threads;

	knn_gram(p, job->base, lo, hi);
	if ((uint64_t)M > m->n)
		M = (int)m->n;
	if (k > M)
		k = M;
	for (size_t q = lo; q < hi; q++) {
		const float *g = p->gram + q * m->n;
		const uint8_t *qp = p->pixels + (job->base + q) * d;
		int h = 0;

		/* The M smallest ||t||^2 - 2 x.t (||x||^2 is the same
		 * for every t of this query). */
		for (uint32_t i = 0; i < m->n; i++)
			cand_keep(heap, &h, M, p->tnorm[i] - 2 * g[i], i);
		for (int j = 0; j < h; j++) {
			ex[j].i = heap[j].i;
			ex[j].d = dist2(qp, m->pixels + (size_t)heap[j].i * d, d);
		}
		qsort(ex, h, sizeof(*ex), exact_cmp);

		float *pr = p->probs + (job->base + q) * C;
		double wsum = 0;
		int zero = 0;
		memset(pr, 0, C * sizeof(float));
		for (int j = 0; j < k; j++)
			zero += ex[j].d == 0;
		for (int j = 0; j < k; j++) {
			double w = 1;

			if (m->knn_distance)
				w = zero ? (ex[j].d == 0) : 1.0 /
				    sqrt((double)ex[j].d);
			pr[m->labels[ex[j].i]] += (float)w;
			wsum += w;
		}
		for (size_t c = 0; c < C; c++)
			pr[c] = (float)(pr[c] / wsum);
	}
}

static void
knn_predict(struct kz_predictor *p)
{
	for (size_t base = 0; base < p->n; base += KNN_QUERY) {
		size_t nq = p->n - base < KNN_QUERY ? p->n - base : KNN_QUERY;
		struct knn_job job = { p, base, nq };

		kz_parallel(p->threads, knn_select, &job);
	}
}

/* The n images of the batch pixels as member i of ensemble p reads
 * them: the batch itself, or each image averaged down to the member's
 * size (kz_model_member_fits); NULL when out of memory. */
static const uint8_t *
member_input(struct kz_predictor *p, int i, const uint8_t *pixels, size_t n,
    struct kz_err *e)
{
	const struct kz_model *m = p->m, *mm = &m->members[i];

	if (p->member_pixels[i] == NULL)
		return pixels;
	if (kz_norm_resize_pixels(pixels, n, m->width, m->height,
	    p->member_pixels[i], mm->width, mm->height) != 0) {
		kz_errf(e, "out of memory");
		return NULL;
	}
	return p->member_pixels[i];
}

/* An ensemble's probabilities: the mean of its members'. */
static int
ensemble_predict(struct kz_predictor *p, struct kz_err *e)
{
	size_t len = p->n * p->m->nclasses;
	int nm = p->m->nmembers;

	if (p->member[nm - 1] == NULL)
		return kz_errf(e, "a predictor made for features only");
	for (int i = 0; i < nm; i++) {
		const uint8_t *in = member_input(p, i, p->pixels, p->n, e);

		if (in == NULL || kz_predict(p->member[i], in, p->n, i ?
		    p->member_probs : p->probs, e) != 0)
			return -1;
		for (size_t j = 0; i > 0 && j < len; j++)
			p->probs[j] += p->member_probs[j];
	}
	for (size_t j = 0; nm > 1 && j < len; j++)
		p->probs[j] /= (float)nm;
	return 0;
}

int
kz_predict(struct kz_predictor *p, const uint8_t *pixels, size_t n,
    float *probs, struct kz_err *e)
{
	if (n > (size_t)p->maxb)
		return kz_errf(e, "batch of %zu is more than %d", n, p->maxb);
	if (p->m->type == KZ_MODEL_KNN && p->m->knn_k > 1024)
		return kz_errf(e, "k of %u neighbours is more than 1024",
		    p->m->knn_k);
	p->pixels = pixels;
	p->n = n;
	p->probs = probs;
	p->feat = NULL;
	if (p->m->type == KZ_MODEL_ENSEMBLE)
		return ensemble_predict(p, e);
	if (p->m->type == KZ_MODEL_KNN)
		knn_predict(p);
	else
		kz_parallel(p->threads, net_shard, p);
	return 0;
}

int
kz_predict_features(struct kz_predictor *p, const uint8_t *pixels, size_t n,
    float *feat, float *probs, struct kz_err *e)
{
	if (p->m->type == KZ_MODEL_ENSEMBLE) {
		/* The first member's features and probabilities, from
		 * the images as it reads them. */
		const uint8_t *in;

		if (kz_model_features(p->m) == NULL)
			return kz_errf(e, "an ensemble whose first member is "
			    "a kNN model has no features");
		if (n > (size_t)p->maxb)
			return kz_errf(e, "batch of %zu is more than %d", n,
			    p->maxb);
		if ((in = member_input(p, 0, pixels, n, e)) == NULL)
			return -1;
		return kz_predict_features(p->member[0], in, n, feat, probs,
		    e);
	}
	if (p->m->type != KZ_MODEL_NET)
		return kz_errf(e, "a kNN model has no features (it is its "
		    "images)");
	if (n > (size_t)p->maxb)
		return kz_errf(e, "batch of %zu is more than %d", n, p->maxb);
	p->pixels = pixels;
	p->n = n;
	p->probs = probs;
	p->feat = feat;
	kz_parallel(p->threads, net_shard, p);
	return 0;
}

/* ---- nearest features ------------------------------------------------ */

/* A thread's dot products are taken NEAR_QUERY queries by NEAR_BLOCK
 * images at a time: 2 MiB, which stays in cache while its rows go
 * through the heaps.  One sgemm over all the images (a 58 MB block for
 * the Kanji index) went to memory and back, and had OpenBLAS clear it
 * and repack the whole index for every 128 queries. */
#define NEAR_QUERY 256
#define NEAR_BLOCK 2048
#define NEAR_RUN 64		/* products checked at once against a
				   full heap's least */

/* Nearest first; the earlier image first among equals. */
static int
cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->d != y->d)
		return x->d < y->d ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

struct near_job {
	const float *index, *q;
	size_t n, nq;
	int F, count, threads;
	uint32_t *idx;
	float *sim;
	float **gram;		/* per thread, [NEAR_QUERY][NEAR_BLOCK] */
	struct cand **heap;	/* per thread, [NEAR_QUERY][count] */
};

/* Thread t's queries: blocks of NEAR_QUERY, each against the images
 * NEAR_BLOCK at a time (a Gram sgemm), keeping the count largest dot
 * products of each query.  The images come in their order, as in one
 * pass over all of them, so ties go the same way. */
static void
near_shard(int t, void *arg)
{
	struct near_job *j = arg;
	size_t lo = j->nq * t / j->threads, hi = j->nq * (t + 1) / j->threads;
	struct cand *heaps = j->heap[t];
	int h[NEAR_QUERY];

	for (size_t b = lo; b < hi; b += NEAR_QUERY) {
		size_t rows = hi - b < NEAR_QUERY ? hi - b : NEAR_QUERY;

		memset(h, 0, sizeof(h));
		for (size_t ib = 0; ib < j->n; ib += NEAR_BLOCK) {
			size_t nb = j->n - ib < NEAR_BLOCK ? j->n - ib :
			    NEAR_BLOCK;

			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
			    (int)rows, (int)nb, j->F, 1.0f, j->q + b * j->F,
			    j->F, j->index + ib * j->F, j->F, 0.0f,
			    j->gram[t], NEAR_BLOCK);
			for (size_t r = 0; r < rows; r++) {
				const float *g = j->gram[t] + r * NEAR_BLOCK;
				struct cand *heap = heaps + r * j->count;

				/* Largest similarity: smallest negation.  Once
				 * the heap is full, most runs of NEAR_RUN
				 * products hold none above its least, which
				 * one vectorised pass over them tells. */
				for (uint32_t i = 0; i < nb; i += NEAR_RUN) {
					uint32_t end = nb - i < NEAR_RUN ? nb :
					    i + NEAR_RUN;
					int any = h[r] < j->count;
					float least = any ? 0 : -heap[0].d;

					for (uint32_t k = i; h[r] == j->count &&
					    k < end; k++)
						any |= g[k] > least;
					for (uint32_t k = i; any && k < end; k++)
						if (h[r] < j->count ||
						    -g[k] < heap[0].d)
							cand_keep(heap, &h[r],
							    j->count, -g[k],
							    (uint32_t)(ib + k));
				}
			}
		}
		for (size_t r = 0; r < rows; r++) {
			struct cand *heap = heaps + r * j->count;

			qsort(heap, h[r], sizeof(*heap), cand_cmp);
			for (int k = 0; k < h[r]; k++) {
				size_t o = (b + r) * j->count + k;

				j->idx[o] = heap[k].i;
				j->sim[o] = -heap[k].d;
			}
		}
	}
}

int
kz_nearest(const float *index, size_t n, const float *q, size_t nq, int F,
    int count, int threads, uint32_t *idx, float *sim, struct kz_err *e)
{
	struct near_job j = { index, q, n, nq, F, count, 0, idx, sim, NULL,
	    NULL };
	int rc = 0;

	if (count < 1 || count > 1024 || (size_t)count > n)
		return kz_errf(e, "%d neighbours asked of %zu images (1 to "
		    "1024, at most all)", count, n);
	j.threads = threads < 1 ? 1 : threads;
	if ((size_t)j.threads > nq)
		j.threads = nq ? (int)nq : 1;
	if ((j.gram = calloc(j.threads, sizeof(*j.gram))) == NULL ||
	    (j.heap = calloc(j.threads, sizeof(*j.heap))) == NULL) {
		free(j.gram);
		return kz_errf(e, "out of memory");
	}
	for (int t = 0; t < j.threads; t++)
		if ((j.gram[t] = malloc((size_t)NEAR_QUERY * NEAR_BLOCK *
		    sizeof(float))) == NULL || (j.heap[t] =
		    malloc((size_t)NEAR_QUERY * count *
		    sizeof(struct cand))) == NULL)
			rc = kz_errf(e, "out of memory");
	if (rc == 0 && nq > 0)
		kz_parallel(j.threads, near_shard, &j);
	for (int t = 0; t < j.threads; t++) {
		free(j.gram[t]);
		free(j.heap[t]);
	}
	free(j.gram);
	free(j.heap);
	return rc;
}
