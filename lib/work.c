/*
 * work.c - a thread's buffers for running a net: the outputs the plans
 * write, each layer type's own buffers, gradients and scratch.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "predict.h"

/* Floats of the largest activation of one sample, input included. */
static size_t
max_activation(const struct kz_net *n)
{
	size_t m = shape_size(n->in);

	for (int i = 0; i < n->nlayers; i++) {
		size_t s = shape_size(n->layers[i].out);
		size_t t = shape_size(n->layers[i].in);

		m = s > m ? s : m;
		m = t > m ? t : m;
	}
	return m;
}

/* The buffers plan P's steps write and use, those not yet allocated
 * (done[layer] marks a layer's own).  Any work runs both plans: train
 * only adds what the backward pass would otherwise recompute. */
static int
alloc_steps(const struct kz_net *n, const struct kz_plan *P,
    struct kz_work *w, int train, char *done)
{
	int B = w->maxb;

	for (int i = 0; i < P->nsteps; i++) {
		const struct kz_step *s = &P->steps[i];
		const struct kz_layer *L = &n->layers[s->layer];
		struct lbuf *lb = &w->lb[s->layer];
		int (*alloc)(const struct kz_layer *, struct lbuf *, int, int) =
		    kz_layer_types[L->type].alloc;

		if (w->lb[s->out].out == NULL && (w->lb[s->out].out = malloc(
		    shape_size(n->layers[s->out].out) * B * sizeof(float))) ==
		    NULL)
			return -1;
		if (done[s->layer])
			continue;
		done[s->layer] = 1;
		if (alloc != NULL && alloc(L, lb, B, train) != 0)
			return -1;
	}
	return 0;
}

struct kz_work *
kz_work_new(const struct kz_net *n, int maxb, int train, struct kz_err *e)
{
	struct kz_work *w = calloc(1, sizeof(*w));
	char *done = calloc(n->nlayers, 1);
	size_t m = max_activation(n) * maxb;

	if (w == NULL || done == NULL)
		goto fail;
	w->net = n;
	w->maxb = maxb;
	kz_work_math(w, 0);
	w->ncol = conv_scratch(n, maxb);
	w->ng = n->plan[1]->nslots;
	if ((w->lb = calloc(n->nlayers, sizeof(*w->lb))) == NULL ||
	    (w->g = calloc(w->ng, sizeof(*w->g))) == NULL ||
	    alloc_steps(n, n->plan[0], w, train, done) != 0 ||
	    alloc_steps(n, n->plan[1], w, train, done) != 0 ||
	    (w->grad = calloc(n->nparams + 1, sizeof(float))) == NULL ||
	    (w->col = malloc((w->ncol + 1) * sizeof(float))) == NULL ||
	    (w->stats = calloc(n->nstate + 1, sizeof(float))) == NULL ||
	    (!train && (w->packed = calloc(2 * (size_t)n->nlayers,
	    sizeof(*w->packed))) == NULL))
		goto fail;
	for (int i = 0; i < w->ng; i++)
		if ((w->g[i] = malloc(m * sizeof(float))) == NULL)
			goto fail;
	free(done);
	return w;
fail:
	free(done);
	kz_work_free(w);
	kz_errf(e, "out of memory for the buffers of %s over batches of %d",
	    n->spec, maxb);
	return NULL;
}

void
kz_work_free(struct kz_work *w)
{
	if (w == NULL)
		return;
	for (int i = 0; w->lb != NULL && i < w->net->nlayers; i++) {
		struct lbuf *lb = &w->lb[i];

		free(lb->out);
		free(lb->aux);
		free(lb->idx);
		free(lb->mean);
		free(lb->invstd);
		free(lb->tiles);
	}
	for (int i = 0; w->g != NULL && i < w->ng; i++)
		free(w->g[i]);
	for (int i = 0; w->packed != NULL && i < 2 * w->net->nlayers; i++)
		free(w->packed[i]);
	free(w->packed);
	free(w->lb);
	free(w->g);
	free(w->grad);
	free(w->col);
	free(w->stats);
	free(w);
}

float *
kz_work_grad(struct kz_work *w)
{
	return w->grad;
}

void
kz_work_zero_grad(struct kz_work *w, const struct kz_net *n)
{
	memset(w->grad, 0, n->nparams * sizeof(float));
}

const float *
kz_work_batch_stats(const struct kz_work *w)
{
	return w->stats;
}

const float *
kz_work_output(const struct kz_work *w, int i)
{
	return w->lb[i].out;
}

float **
work_slots(struct kz_work *w, int layer)
{
	return w->packed == NULL ? NULL : w->packed + 2 * (size_t)layer;
}

void
work_product(struct kz_work *w, int layer, const float *W, int M, int K,
    const float *B, size_t N, size_t ldb, float *C, size_t ldc, int add,
    float *scratch)
{
	int R = gemm_rows(M, N);
	float **slots = work_slots(w, layer), *p = scratch;
	size_t n = work_packed_floats(w->math, M, K);

	if (slots != NULL && slots[R == 12] != NULL) {
		p = slots[R == 12];
	} else {
		/* Out of memory, they are packed into scratch again next
		 * time. */
		if (slots != NULL && (slots[R == 12] = malloc(n *
		    sizeof(float))) != NULL)
			p = slots[R == 12];
		work_pack(w->math, W, M, K, R, p);
	}
	work_packed_product(w->math, M, N, K, R, p, B, ldb, C, ldc, add);
}

size_t
work_packed_floats(int math, int M, int K)
{
	return math == WINO_BF16 ? bf16_packed_pairs(M, K) :
	    gemm_packed_floats(M, K);
}

void
work_pack(int math, const float *a, int M, int K, int R, float *out)
{
	if (math == WINO_BF16)
		bf16_pack_rows(a, M, K, R, (uint32_t *)out);
	else
		gemm_pack(a, M, K, R, out);
}

void
work_packed_product(int math, int M, size_t N, int K, int R,
    const float *A, const float *B, size_t ldb, float *C, size_t ldc,
    int add)
{
	if (math == WINO_BF16)
		bf16_gemm(M, N, K, R, (const uint32_t *)A, B, ldb, C, ldc,
		    add);
	else
		gemm_packed(M, N, K, R, A, B, ldb, C, ldc, add);
}

void
kz_work_math(struct kz_work *w, int bf16)
{
	int math = bf16 ? WINO_BF16 : kz_avx512_ok() ? WINO_AVX512 : WINO_BLAS;

	/* Weights kept packed for one arithmetic are not the other's
	 * (floats or pairs of bfloat16s): packed again at the next call. */
	if (math != w->math && w->packed != NULL)
		for (int i = 0; i < 2 * w->net->nlayers; i++) {
			free(w->packed[i]);
			w->packed[i] = NULL;
		}
	w->math = math;
}
