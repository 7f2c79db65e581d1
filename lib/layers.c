/*
 * layers.c - every layer type but the convolution (conv.c), each a
 * _shape and a _forward/_backward pair over whole mini-batches, and the
 * table of layer types that the spec parser, the work buffers and the
 * plan read.
 *
 * Shapes: activations are [C][B][H*W] (see net.h); a dense layer's are
 * [F][B] (the same with H = W = 1).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "util.h"
#include "engine.h"

/* ---- parameters and buffers ------------------------------------------ */

/* An array of elem-byte items, one per output value of L for B
 * samples: a mask, argmaxes, normalised values.  NULL when out of
 * memory. */
static void *
per_output(const struct kz_layer *L, int B, size_t elem)
{
	return malloc(shape_size(L->out) * B * elem);
}

/* A convolution's or dense layer's weights and biases.  He's normal
 * keeps a deep ReLU stack's activations at unit variance; the fan-in
 * uniform is about 2.4 times smaller, which behind a batch norm is a
 * larger effective step for the same rate, and learns faster in the
 * first epochs (issue 18: 92% rather than 88% after 3 epochs of the
 * demo's recipe). */
static void
linear_init(const struct kz_layer *L, float *params, float *state,
    enum kz_init scheme, struct kz_rng *r)
{
	float *w = params + L->w_off, *b = params + L->b_off;
	double fan_in = (double)L->nw / L->out.c;

	(void)state;
	if (scheme == KZ_INIT_HE) {
		double sd = sqrt(2.0 / fan_in);

		for (size_t j = 0; j < L->nw; j++)
			w[j] = (float)(kz_rng_normal(r) * sd);
		memset(b, 0, L->nb * sizeof(float));
		return;
	}
	double bound = 1 / sqrt(fan_in);

	for (size_t j = 0; j < L->nw; j++)
		w[j] = (float)((2 * kz_rng_uniform(r) - 1) * bound);
	for (size_t j = 0; j < L->nb; j++)
		b[j] = (float)((2 * kz_rng_uniform(r) - 1) * bound);
}

/* ---- dense ------------------------------------------------------------ */

static int
dense_shape(struct kz_layer *L, char *why, size_t len)
{
	(void)why;
	(void)len;
	L->out.h = L->out.w = 1;
	L->nw = (size_t)L->out.c * shape_size(L->in);
	L->nb = L->out.c;
	return 0;
}

/* x [F][B] -> y [N][B]; W [N][F], bias [N]; max(0, y) with FUSE_RELU. */
static void
dense_forward(struct kz_pass *p)
{
	const struct kz_layer *L = p->L;
	const float *W = p->n->params + L->w_off;
	const float *bias = p->n->params + L->b_off;
	float *y = p->y;
	int F = (int)shape_size(L->in), N = L->out.c, B = p->B;
	int relu = p->fuse & FUSE_RELU;

	if (!p->train && p->w->math != WINO_BLAS) {
		/* As the Winograd products, from packed weights. */
		work_product(p->w, (int)(L - p->n->layers), W, N, F, p->x,
		    (size_t)B, (size_t)B, y, (size_t)B, 0, p->w->col);
	} else {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, B,
		    F, 1.0f, W, F, p->x, B, 0.0f, y, B);
	}
	for (int i = 0; i < N; i++)
		for (int b = 0; b < B; b++) {
			float v = y[(size_t)i * B + b] + bias[i];

			y[(size_t)i * B + b] = relu && v < 0 ? 0 : v;
		}
}

static void
dense_backward(struct kz_pass *p)
{
	const struct kz_layer *L = p->L;
	const float *W = p->n->params + L->w_off, *dy = p->dy;
	float *dW = p->w->grad + L->w_off, *db = p->w->grad + L->b_off;
	int F = (int)shape_size(L->in), N = L->out.c, B = p->B;

	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, F, B, 1.0f,
	    dy, B, p->x, B, 1.0f, dW, F);
	for (int i = 0; i < N; i++)
		db[i] += (float)sum_floats(dy + (size_t)i * B, B);
	if (p->dx != NULL)
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, B, N,
		    1.0f, W, F, dy, B, 0.0f, p->dx, B);
}

/* ---- flatten: [C][B][HW] <-> [C*HW][B] -------------------------------- */

static int
flatten_shape(struct kz_layer *L, char *why, size_t len)
{
	(void)why;
	(void)len;
	L->out = (struct kz_shape){ (int)shape_size(L->in), 1, 1 };
	return 0;
}


/* dst[i][b] = src[b][i] for a rows x cols block, in tiles, so that
 * neither side walks memory with a stride on every element. */
#define TILE 16
static void
transpose(const float *restrict src, size_t rows, size_t cols,
    float *restrict dst)
{
	for (size_t r0 = 0; r0 < rows; r0 += TILE)
		for (size_t c0 = 0; c0 < cols; c0 += TILE) {
			size_t r1 = r0 + TILE < rows ? r0 + TILE : rows;
			size_t c1 = c0 + TILE < cols ? c0 + TILE : cols;

			for (size_t c = c0; c < c1; c++)
				for (size_t r = r0; r < r1; r++)
					dst[c * rows + r] = src[r * cols + c];
		}
}

/* x [C][B][HW] -> y [C*HW][B]: per channel, [B][HW] transposed. */
static void
flatten_forward(struct kz_pass *p)
{
	const struct kz_layer *L = p->L;
	size_t HW = (size_t)L->in.h * L->in.w;

	for (int c = 0; c < L->in.c; c++)
		transpose(p->x + (size_t)c * p->B * HW, p->B, HW,
		    p->y + (size_t)c * HW * p->B);
}

static void
flatten_backward(struct kz_pass *p)
{
	const struct kz_layer *L = p->L;
	size_t HW = (size_t)L->in.h * L->in.w;

	for (int c = 0; c < L->in.c; c++)
		transpose(p->dy + (size_t)c * HW * p->B, HW, p->B,
		    p->dx + (size_t)c * p->B * HW);
}

/* ---- element-wise: ReLU, dropout, add --------------------------------- */

/* The layers whose output is their input's shape. */
static int
same_shape(struct kz_layer *L, char *why, size_t len)
{
	(void)why;
	(void)len;
	L->out = L->in;
	return 0;
}

static void
relu_forward(struct kz_pass *p)
{
	const float *restrict x = p->x;
	float *restrict y = p->y;
	size_t n = shape_size(p->L->out) * p->B;

	for (size_t i = 0; i < n; i++)
		y[i] = x[i] > 0 ? x[i] : 0;
}

void
relu_grad(const float *restrict y, const float *restrict dy,
    float *restrict dx, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dx[i] = y[i] > 0 ? dy[i] : 0;
}

void
relu_grad_inplace(const float *restrict y, float *restrict g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		g[i] = y[i] > 0 ? g[i] : 0;
}

static void
relu_backward(struct kz_pass *p)
{
	relu_grad(p->y, p->dy, p->dx, shape_size(p->L->out) * p->B);
}

static int
dropout_alloc(const struct kz_layer *L, struct lbuf *lb, int B, int train)
{
	(void)train;
	return (lb->aux = per_output(L, B, sizeof(float))) ? 0 : -1;
}

/* Inference plans leave dropout out; a training pass draws the mask. */
static void
dropout_forward(struct kz_pass *p)
{
	const struct kz_layer *L = p->L;
	const float *x = p->x;
	float *y = p->y, *mask = p->lb->aux;
	size_t n = shape_size(L->out) * p->B;

	if (!p->train || L->p == 0) {
		memcpy(y, x, n * sizeof(float));
		for (size_t i = 0; i < n; i++)
			mask[i] = 1;
		return;
	}
	/* 24 random bits per element are plenty. */
	uint64_t cut = (uint64_t)(L->p * 16777216.0);
	float keep = 1.0f / (1.0f - L->p);
	for (size_t i = 0; i < n; i++) {
		mask[i] = (kz_rng_next(p->rng) >> 40) >= cut ? keep : 0;
		y[i] = x[i] * mask[i];
	}
}

static void
dropout_backward(struct kz_pass *p)
{
	size_t n = shape_size(p->L->out) * p->B;

	for (size_t i = 0; i < n; i++)
		p->dx[i] = p->dy[i] * p->lb->aux[i];
}

/* y = x + x2: a residual block's sum.  Its backward passes dy to both
 * inputs, which the plan does by sharing the gradient buffer. */
static void
add_forward(struct kz_pass *p)
{
	const float *restrict a = p->x, *restrict b = p->x2;
	float *restrict y = p->y;
	size_t n = shape_size(p->L->out) * p->B;

	for (size_t i = 0; i < n; i++)
		y[i] = a[i] + b[i];
}

/* ---- pooling ------------------------------------------------------------- */

static int
pool_shape(struct kz_layer *L, char *why, size_t len)
{
	struct kz_shape in = L->in;

	if (in.h < L->k || in.w < L->k) {
		snprintf(why, len, "a %dx%d pool does not fit a %dx%d input",
		    L->k, L->k, in.h, in.w);
		return -1;
	}
	L->out.c = in.c;
	L->out.h = (in.h - L->k) / L->stride + 1;
	L->out.w = (in.w - L->k) / L->stride + 1;
	return 0;
}

static int
maxpool_alloc(const struct kz_layer *L, struct lbuf *lb, int B, int train)
{
	(void)train;
	return (lb->idx = per_output(L, B, sizeof(int32_t))) ? 0 : -1;
}

/* One output row of a 2x2, stride-2 max pooling: d[ox] is the maximum
 * of block ox of rows r and r + W, idx[ox] its offset (the block's
 * first at o0 + 2 ox), the first of equals as the general loop takes. */
static void
pool2_row(const float *restrict r, int W, int OW, int o0,
    float *restrict d, int32_t *restrict idx)
{
	for (int ox = 0; ox < OW; ox++) {
		int o = 2 * ox, arg = o0 + o;
		float v = r[o];

		if (r[o + 1] > v) { v = r[o + 1]; arg = o0 + o + 1; }
		if (r[o + W] > v) { v = r[o + W]; arg = o0 + o + W; }
		if (r[o + W + 1] > v) { v = r[o + W + 1]; arg = o0 + o + W + 1; }
		d[ox] = v;
		idx[ox] = arg;
	}
}

/* The gradient of the two input rows d and d + W under one output row
 * of pool2_row, gradients g: each block's maximum takes g[ox], unless
 * out (the pooled outputs, for a ReLU before the pooling) is not
 * positive there, and the others take 0. */
static void
pool2_row_backward(const float *restrict g, const int32_t *restrict idx,
    const float *restrict out, int W, int OW, int o0, float *restrict d)
{
	for (int ox = 0; ox < OW; ox++) {
		int a = idx[ox] - o0 - 2 * ox;
		float v = out == NULL || out[ox] > 0 ? g[ox] : 0;

		d[2 * ox] = a == 0 ? v : 0;
		d[2 * ox + 1] = a == 1 ? v : 0;
		d[W + 2 * ox] = a == W ? v : 0;
		d[W + 2 * ox + 1] = a == W + 1 ? v : 0;
	}
}

/* FUSE_RELU: a ReLU before the max pooling, done after it on a quarter
 * of the values (the maximum of the ReLUs is the ReLU of the maximum). */
KZ_HOT static void
pool_forward(struct kz_pass *p)
{
	const struct kz_layer *L = p->L;
	const float *x = p->x;
	float *y = p->y;
	int32_t *index = p->lb->idx;
	int B = p->B, K = L->k, S = L->stride, H = L->in.h, W = L->in.w;
	int OH = L->out.h, OW = L->out.w;
	float inv = 1.0f / (K * K);

	for (size_t q = 0; q < (size_t)L->in.c * B; q++) {
		const float *src = x + q * H * W;
		float *dst = y + q * OH * OW;

		if (L->type == KZ_MAXPOOL && K == 2 && S == 2 && !p->train) {
			/* Inference keeps no argmax, and the loop vectorises. */
			for (int oy = 0; oy < OH; oy++) {
				const float *r0 = src + 2 * oy * W, *r1 = r0 + W;

				for (int ox = 0; ox < OW; ox++) {
					float a = r0[2 * ox] > r0[2 * ox + 1] ?
					    r0[2 * ox] : r0[2 * ox + 1];
					float b = r1[2 * ox] > r1[2 * ox + 1] ?
					    r1[2 * ox] : r1[2 * ox + 1];

					dst[oy * OW + ox] = a > b ? a : b;
				}
			}
			continue;
		}
		if (L->type == KZ_MAXPOOL && K == 2 && S == 2) {
			/* The common case, without the general loops. */
			for (int oy = 0; oy < OH; oy++)
				pool2_row(src + 2 * oy * W, W, OW, 2 * oy * W,
				    dst + oy * OW, index + q * OH * OW +
				    oy * OW);
			continue;
		}
		for (int oy = 0; oy < OH; oy++)
			for (int ox = 0; ox < OW; ox++) {
				int base = oy * S * W + ox * S;
				float best = src[base], sum = 0;
				int arg = base;

				for (int i = 0; i < K; i++)
					for (int j = 0; j < K; j++) {
						int o = base + i * W + j;

						sum += src[o];
						if (src[o] > best) {
							best = src[o];
							arg = o;
						}
					}
				if (L->type == KZ_MAXPOOL) {
					dst[oy * OW + ox] = best;
					index[q * OH * OW + oy * OW + ox] = arg;
				} else {
					dst[oy * OW + ox] = sum * inv;
				}
			}
	}
	for (size_t i = 0; p->fuse & FUSE_RELU && i < shape_size(L->out) * B;
	    i++)
		y[i] = y[i] > 0 ? y[i] : 0;
}

/* FUSE_RELU (max pooling): pass no gradient where the output is not
 * positive, for the ReLU before the pooling that it did. */
KZ_HOT static void
pool_backward(struct kz_pass *p)
{
	const struct kz_layer *L = p->L;
	const int32_t *index = p->lb->idx;
	const float *dy = p->dy, *out = p->y;
	float *dx = p->dx;
	int B = p->B, K = L->k, S = L->stride, H = L->in.h, W = L->in.w;
	int OH = L->out.h, OW = L->out.w, relu = p->fuse & FUSE_RELU;
	float inv = 1.0f / (K * K);

	if (L->type == KZ_MAXPOOL && K == 2 && S == 2 && H == 2 * OH &&
	    W == 2 * OW) {
		/* The blocks tile the input: every input is written once,
		 * and nothing needs zeroing first. */
		for (size_t q = 0; q < (size_t)L->in.c * B; q++)
			for (int oy = 0; oy < OH; oy++) {
				size_t o = q * OH * OW + oy * OW;

				pool2_row_backward(dy + o, index + o,
				    relu ? out + o : NULL, W, OW,
				    2 * oy * W, dx + q * H * W + 2 * oy * W);
			}
		return;
	}
	memset(dx, 0, shape_size(L->in) * B * sizeof(float));
	for (size_t q = 0; q < (size_t)L->in.c * B; q++) {
		float *d = dx + q * H * W;
		const float *g = dy + q * OH * OW;

		for (int o = 0; o < OH * OW; o++) {
			if (L->type == KZ_MAXPOOL) {
				if (!relu || out[q * OH * OW + o] > 0)
					d[index[q * OH * OW + o]] += g[o];
				continue;
			}
			int base = (o / OW) * S * W + (o % OW) * S;
			for (int i = 0; i < K; i++)
				for (int j = 0; j < K; j++)
					d[base + i * W + j] += g[o] * inv;
		}
	}
}

static int
gap_shape(struct kz_layer *L, char *why, size_t len)
{
	(void)why;
	(void)len;
	L->out = (struct kz_shape){ L->in.c, 1, 1 };
	return 0;
}

static void
gap_forward(struct kz_pass *p)
{
	size_t hw = (size_t)p->L->in.h * p->L->in.w;

	for (size_t q = 0; q < (size_t)p->L->in.c * p->B; q++) {
		double s = 0;

		for (size_t i = 0; i < hw; i++)
			s += p->x[q * hw + i];
		p->y[q] = (float)(s / hw);
	}
}

static void
gap_backward(struct kz_pass *p)
{
	size_t hw = (size_t)p->L->in.h * p->L->in.w;

	for (size_t q = 0; q < (size_t)p->L->in.c * p->B; q++)
		for (size_t i = 0; i < hw; i++)
			p->dx[q * hw + i] = p->dy[q] / hw;
}

/* ---- batch normalisation, per channel over batch and space ----------- */

static int
bn_shape(struct kz_layer *L, char *why, size_t len)
{
	(void)why;
	(void)len;
	L->out = L->in;
	L->nw = L->nb = L->in.c;
	L->ns = 2 * (size_t)L->in.c;
	return 0;
}

/* Scale 1, shift 0; running mean 0, variance 1. */
static void
bn_init(const struct kz_layer *L, float *params, float *state,
    enum kz_init scheme, struct kz_rng *r)
{
	float *w = params + L->w_off, *b = params + L->b_off;
	float *s = state + L->s_off;

	(void)scheme;
	(void)r;
	for (int c = 0; c < L->in.c; c++) {
		w[c] = 1;
		b[c] = 0;
		s[c] = 0;
		s[L->in.c + c] = 1;
	}
}

static int
bn_alloc(const struct kz_layer *L, struct lbuf *lb, int B, int train)
{
	/* x-hat is kept for the backward pass only. */
	lb->aux = train ? per_output(L, B, sizeof(float)) : NULL;
	lb->mean = malloc(L->in.c * sizeof(float));
	lb->invstd = malloc(L->in.c * sizeof(float));
	return (lb->aux || !train) && lb->mean && lb->invstd ? 0 : -1;
}

void
bn_running(const struct kz_net *n, const struct kz_layer *L, int c,
    float *mu, float *inv)
{
	const float *rmean = n->state + L->s_off;
	double mean = rmean[c], var = rmean[L->in.c + c];

	*mu = (float)mean;
	*inv = (float)(1.0 / sqrt(var + BN_EPS));
}

/* See engine.h. */
void
bn_gather(const struct kz_net *n, const struct kz_layer *L, float *bn)
{
	int C = L->in.c;

	for (int c = 0; c < C; c++) {
		bn_running(n, L, c, &bn[c], &bn[C + c]);
		bn[2 * C + c] = n->params[L->w_off + c];
		bn[3 * C + c] = n->params[L->b_off + c];
	}
}

/* Training: the batch's statistics (kept in the work for the running
 * ones); inference: the running ones.  FUSE_RELU: max(0, y). */
KZ_HOT static void
bn_forward(struct kz_pass *p)
{
	const struct kz_layer *L = p->L;
	const float *gamma = p->n->params + L->w_off;
	const float *beta = p->n->params + L->b_off;
	struct lbuf *lb = p->lb;
	float *stats = p->w->stats;
	size_t m = (size_t)p->B * L->in.h * L->in.w;

	for (int c = 0; c < L->in.c; c++) {
		const float *xc = p->x + c * m;
		float *yc = p->y + c * m;
		float *xh = lb->aux != NULL ? lb->aux + c * m : NULL;
		float mu, inv;

		if (p->train) {
			/* E[x^2] - mean^2 in double over float lanes; the
			 * inputs here are O(1), so no cancellation to fear. */
			double mean = sum_floats(xc, m) / m;
			double var = dot_floats(xc, xc, m) / m - mean * mean;

			if (var < 0)
				var = 0;
			stats[L->s_off + c] = (float)mean;
			stats[L->s_off + L->in.c + c] = (float)var;
			mu = (float)mean;
			inv = (float)(1.0 / sqrt(var + BN_EPS));
		} else {
			bn_running(p->n, L, c, &mu, &inv);
		}
		lb->mean[c] = mu;
		lb->invstd[c] = inv;
		/* Two calls, so that each inlined loop is compiled for its
		 * case (-O2 does not unswitch loops). */
		if (xh != NULL)
			bn_apply(xc, m, mu, inv, gamma[c], beta[c],
			    p->fuse & FUSE_RELU, xh, yc);
		else
			bn_apply(xc, m, mu, inv, gamma[c], beta[c],
			    p->fuse & FUSE_RELU, NULL, yc);
	}
}

KZ_HOT static void
bn_backward(struct kz_pass *p)
{
	const struct kz_layer *L = p->L;
	const struct lbuf *lb = p->lb;
	const float *gamma = p->n->params + L->w_off;
	float *dgamma = p->w->grad + L->w_off, *dbeta = p->w->grad + L->b_off;
	float *dx = p->dx;
	size_t m = (size_t)p->B * L->in.h * L->in.w;

	for (int c = 0; c < L->in.c; c++) {
		const float *g = p->dy + c * m, *xh = lb->aux + c * m;
		double sg = sum_floats(g, m), sgx = dot_floats(g, xh, m);
		dgamma[c] += (float)sgx;
		dbeta[c] += (float)sg;
		if (dx == NULL)
			continue;
		float k = gamma[c] * lb->invstd[c] / m;
		float a = (float)sg, bb = (float)sgx;
		for (size_t i = 0; i < m; i++)
			dx[c * m + i] = k * (m * g[i] - a - xh[i] * bb);
	}
}

/* ---- the table ----------------------------------------------------------- */

const struct kz_layer_ops kz_layer_types[KZ_NTYPES] = {
	[KZ_CONV] = { .name = "conv", .arg = ARG_CHANNELS, .opts = "ksp",
	    .linear = 1, .shape = conv_shape, .init = linear_init,
	    .alloc = conv_alloc, .forward = conv_forward,
	    .backward = conv_backward },
	[KZ_BN] = { .name = "bn", .shape = bn_shape, .init = bn_init,
	    .alloc = bn_alloc, .forward = bn_forward, .backward = bn_backward },
	[KZ_RELU] = { .name = "relu", .shape = same_shape,
	    .forward = relu_forward, .backward = relu_backward },
	[KZ_MAXPOOL] = { .name = "maxpool", .arg = ARG_KERNEL, .opts = "s",
	    .relu_inside = 1, .shape = pool_shape, .alloc = maxpool_alloc,
	    .forward = pool_forward, .backward = pool_backward },
	[KZ_AVGPOOL] = { .name = "avgpool", .arg = ARG_KERNEL, .opts = "s",
	    .shape = pool_shape, .forward = pool_forward,
	    .backward = pool_backward },
	[KZ_GAP] = { .name = "gap", .shape = gap_shape,
	    .forward = gap_forward, .backward = gap_backward },
	[KZ_DROPOUT] = { .name = "drop", .arg = ARG_PROB, .shape = same_shape,
	    .alloc = dropout_alloc, .forward = dropout_forward,
	    .backward = dropout_backward },
	[KZ_DENSE] = { .name = "dense", .arg = ARG_CHANNELS, .linear = 1,
	    .shape = dense_shape, .init = linear_init, .forward = dense_forward,
	    .backward = dense_backward },
	/* Added by the parser, never written in a spec. */
	[KZ_FLATTEN] = { .shape = flatten_shape, .forward = flatten_forward,
	    .backward = flatten_backward },
	/* The plan passes an add's gradient on itself. */
	[KZ_ADD] = { .shape = same_shape, .forward = add_forward },
};
