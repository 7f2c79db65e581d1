/*
 * conv.c - the convolution layer: im2col + sgemm in general, the
 * Winograd path (winograd.c) for 3x3 stride-1 kernels over 16 channels
 * and more.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "util.h"
#include "engine.h"

/* Samples per im2col chunk for layer L, taken floats of the scratch
 * being in other use. */
static int
conv_chunk(const struct kz_layer *L, const struct kz_work *w, int B,
    size_t taken)
{
	size_t per = (size_t)L->in.c * L->k * L->k * L->out.h * L->out.w;
	size_t c = (w->ncol - taken) / per;

	if (c < 1)
		c = 1;
	return c > (size_t)B ? B : (int)c;
}

#if KZ_AVX512_BUILT
/* One image's rows of im2col for (ki, kj), d [OH][OW] from its plane
 * src [H][W], for strides over 1 where a row of input (W <= 32) fills
 * two vectors and a row of output (OW <= 16) one: each output row one
 * permutation of its input row.  The scalar loop, a bounds test per
 * pixel, took 6% of a ResNet-20's time in its two stride-2 layers. */
KZ_AVX512_TARGET static void
im2col_plane_avx512(const float *src, int H, int W, int OH, int OW,
    int S, int P, int ki, int kj, float *d)
{
	__mmask16 lw = gemm_lanes(W), hw = gemm_lanes(W - 16);
	__mmask16 out = gemm_lanes(OW);
	/* ix = ox S - P + kj, kept where 0 <= ix < W */
	__m512i ix = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_set_epi32(15,
	    14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
	    _mm512_set1_epi32(S)), _mm512_set1_epi32(kj - P));
	__mmask16 in = _mm512_cmpge_epi32_mask(ix, _mm512_setzero_si512()) &
	    _mm512_cmplt_epi32_mask(ix, _mm512_set1_epi32(W)) & out;

	for (int oy = 0; oy < OH; oy++) {
		int iy = oy * S - P + ki;
		__m512 v = _mm512_setzero_ps();

		if (iy >= 0 && iy < H) {
			const float *r = src + (size_t)iy * W;

			v = _mm512_maskz_permutex2var_ps(in,
			    _mm512_maskz_loadu_ps(lw, r), ix,
			    _mm512_maskz_loadu_ps(hw, r + 16));
		}
		_mm512_mask_storeu_ps(d + (size_t)oy * OW, out, v);
	}
}
#endif

/* col[(c*K + ki)*K + kj][(b - b0)*OHW + oy*OW + ox] = x[c][b][iy][ix],
 * zero outside the input.  math: the work's (AVX-512 unless
 * WINO_BLAS). */
KZ_HOT static void
im2col(const struct kz_layer *L, const float *x, int B, int b0, int nb,
    int math, float *col)
{
	int K = L->k, S = L->stride, P = L->pad;
	int H = L->in.h, W = L->in.w, OH = L->out.h, OW = L->out.w;
	size_t ohw = (size_t)OH * OW, ncols = (size_t)nb * ohw;

#if KZ_AVX512_BUILT
	int fast = S > 1 && W <= 32 && OW <= 16 && math != WINO_BLAS;
#endif

	for (int c = 0; c < L->in.c; c++)
		for (int ki = 0; ki < K; ki++)
			for (int kj = 0; kj < K; kj++) {
				float *dst = col + ((size_t)(c * K + ki) * K +
				    kj) * ncols;

				for (int b = 0; b < nb; b++) {
					const float *src = x + ((size_t)c * B +
					    b0 + b) * H * W;

#if KZ_AVX512_BUILT
					if (fast) {
						im2col_plane_avx512(src, H, W,
						    OH, OW, S, P, ki, kj, dst +
						    b * ohw);
						continue;
					}
#endif
					for (int oy = 0; oy < OH; oy++) {
						int iy = oy * S - P + ki;
						float *d = dst + b * ohw +
						    (size_t)oy * OW;

						if (iy < 0 || iy >= H) {
							memset(d, 0, OW *
							    sizeof(float));
							continue;
						}
						const float *srow = src +
						    (size_t)iy * W;
						if (S == 1) {
							/* ix = ox - P + kj: one
							 * copy between zeros; rows
							 * are short, so loops, not
							 * library calls. */
							int lo = P - kj, hi = W +
							    P - kj, ox;

							lo = lo < 0 ? 0 : lo;
							lo = lo > OW ? OW : lo;
							hi = hi > OW ? OW : hi;
							hi = hi < lo ? lo : hi;
							const float *sr = srow - P
							    + kj;
							for (ox = 0; ox < lo; ox++)
								d[ox] = 0;
							for (; ox < hi; ox++)
								d[ox] = sr[ox];
							for (; ox < OW; ox++)
								d[ox] = 0;
							continue;
						}
						for (int ox = 0; ox < OW; ox++) {
							int ix = ox * S - P + kj;

							d[ox] = ix >= 0 && ix < W ?
							    srow[ix] : 0;
						}
					}
				}
			}
}

/* The adjoint of im2col: adds col back into dx. */
KZ_HOT static void
col2im(const struct kz_layer *L, const float *col, int B, int b0, int nb,
    float *dx)
{
	int K = L->k, S = L->stride, P = L->pad;
	int H = L->in.h, W = L->in.w, OH = L->out.h, OW = L->out.w;
	size_t ohw = (size_t)OH * OW, ncols = (size_t)nb * ohw;

	for (int c = 0; c < L->in.c; c++)
		for (int ki = 0; ki < K; ki++)
			for (int kj = 0; kj < K; kj++) {
				const float *src = col + ((size_t)(c * K + ki) *
				    K + kj) * ncols;
				/* Output columns whose input column is inside. */
				int lo = 0, hi = OW;

				while (lo < OW && lo * S - P + kj < 0)
					lo++;
				while (hi > lo && (hi - 1) * S - P + kj >= W)
					hi--;
				for (int b = 0; b < nb; b++) {
					float *dst = dx + ((size_t)c * B + b0 +
					    b) * H * W;

					for (int oy = 0; oy < OH; oy++) {
						int iy = oy * S - P + ki;

						if (iy < 0 || iy >= H)
							continue;
						const float *restrict s = src +
						    b * ohw + (size_t)oy * OW;
						float *restrict d = dst +
						    (size_t)iy * W - P + kj;

						if (S == 1)
							for (int ox = lo; ox < hi;
							    ox++)
								d[ox] += s[ox];
						else
							for (int ox = lo; ox < hi;
							    ox++)
								d[ox * S] += s[ox];
					}
				}
			}
}

int
conv_shape(struct kz_layer *L, char *why, size_t len)
{
	struct kz_shape in = L->in;

	if (in.h + 2 * L->pad < L->k || in.w + 2 * L->pad < L->k) {
		snprintf(why, len, "a %dx%d kernel does not fit a %dx%d input",
		    L->k, L->k, in.h, in.w);
		return -1;
	}
	/* Compared by division: each factor may be up to 2^20, and the
	 * product could wrap around to a small number. */
	if ((size_t)L->k * L->k > MAX_PARAMS / in.c / L->out.c) {
		snprintf(why, len, "a %dx%d kernel from %d to %d channels has "
		    "more than %u weights", L->k, L->k, in.c, L->out.c,
		    MAX_PARAMS);
		return -1;
	}
	L->out.h = (in.h + 2 * L->pad - L->k) / L->stride + 1;
	L->out.w = (in.w + 2 * L->pad - L->k) / L->stride + 1;
	L->nw = (size_t)L->out.c * in.c * L->k * L->k;
	L->nb = L->out.c;
	return 0;
}

/* Training on the Winograd path keeps the input's transformed tiles for
 * the weight gradient. */
int
conv_alloc(const struct kz_layer *L, struct lbuf *lb, int B, int train)
{
	if (train && wino_ok(L) && (lb->tiles = malloc(wino_kept(L, B) *
	    sizeof(float))) == NULL)
		return -1;
	return 0;
}

/* The im2col scratch of one image for every convolution, as many
 * images as fit in CHUNK_FLOATS (at least one); and at least what the
 * Winograd convolutions and the packed weights of a dense layer
 * (dense_forward) need. */
size_t
conv_scratch(const struct kz_net *n, int maxb)
{
	size_t per = 0, wino = 0, ncol;

	for (int i = 0; i < n->nlayers; i++) {
		const struct kz_layer *L = &n->layers[i];

		if (L->type == KZ_DENSE) {
			size_t f = gemm_packed_floats(L->out.c,
			    (int)shape_size(L->in));

			wino = f > wino ? f : wino;
		}
		if (L->type != KZ_CONV)
			continue;
		size_t c = (size_t)L->in.c * L->k * L->k * L->out.h * L->out.w;
		per = c > per ? c : per;
		/* conv_forward's packed weights and one image's patches. */
		size_t g = gemm_packed_floats(L->out.c, L->in.c * L->k *
		    L->k) + c;

		wino = g > wino ? g : wino;
		if (wino_ok(L)) {
			size_t f = wino_scratch(L), f4 = wino4_scratch(L, maxb);

			f = f4 > f ? f4 : f;
			wino = f > wino ? f : wino;
		}
	}
	ncol = per;
	if (ncol < CHUNK_FLOATS)
		ncol = ncol * maxb < CHUNK_FLOATS ? ncol * maxb : CHUNK_FLOATS;
	return wino > ncol ? wino : ncol;
}

/* A one-channel stride-1 convolution (a first layer) is computed
 * directly, not as a patch product: sgemm runs a product of depth 9 at
 * half speed, and im2col copies each pixel 9 times to get there. */

/* Floats of scratch conv_direct needs: the padded image, and the sums
 * over its full width of one output channel. */
static size_t
direct_scratch(const struct kz_layer *L)
{
	size_t PW = (size_t)L->in.w + 2 * L->pad;

	return ((size_t)L->in.h + 2 * L->pad) * PW + (size_t)L->out.h * PW;
}

/* Output channels conv_direct sums at once: as many as the scratch of
 * one image's patches holds (conv_direct_ok: at least one), at most
 * DIRECT_GROUP, so that each input vector loaded serves them all. */
#define DIRECT_GROUP 4
static int
direct_group(const struct kz_layer *L)
{
	size_t one = (size_t)L->out.h * (L->in.w + 2 * L->pad);
	size_t g = ((size_t)L->k * L->k * L->out.h * L->out.w -
	    direct_scratch(L) + one) / one;

	return g > DIRECT_GROUP ? DIRECT_GROUP : (int)g;
}

#if KZ_AVX512_BUILT
/* d[j][oy][ox] (channels dc floats apart, rows dr apart), oy < OH,
 * ox < OW, j < n: channel o0 + j's 3x3 sums over img (rows PW apart)
 * as direct_channel computes them, then its batch norm (bn [4][OC], or
 * NULL) and ReLU as wino_finish's: the same operations in the same
 * order, so the same bytes.  Each input vector is loaded once for the
 * n channels, and only the OW outputs of a row are computed. */
KZ_AVX512_TARGET static void
direct3_avx512(const float *img, int PW, int OH, int OW, const float *W,
    const float *bias, const float *bn, int OC, int relu, int o0, int n,
    float *d, size_t dc, size_t dr)
{
	for (int oy = 0; oy < OH; oy++)
		for (int ox = 0; ox < OW; ox += 16) {
			__mmask16 m = gemm_lanes(OW - ox);
			const float *in = img + (size_t)oy * PW + ox;
			__m512 s[9];

			for (int t = 0; t < 9; t++)
				s[t] = _mm512_maskz_loadu_ps(m, in + (size_t)(t /
				    3) * PW + t % 3);
			for (int j = 0; j < n; j++) {
				int o = o0 + j;
				const float *w9 = W + (size_t)o * 9;
				__m512 a = _mm512_set1_ps(bias[o]);
				float bno[4];

				for (int t = 0; t < 9; t++)
					a = _mm512_add_ps(a, _mm512_mul_ps(
					    _mm512_set1_ps(w9[t]), s[t]));
				_mm512_mask_storeu_ps(d + j * dc + (size_t)oy *
				    dr + ox, m, wino_finish16(a, wino_bn(bn, OC,
				    o, bno), relu));
			}
		}
}
#endif

/* acc [OH * PW] = bias + the convolution of img (rows PW apart) by
 * channel o's K x K kernel, then its batch norm and ReLU.  Each tap is
 * one multiply-add over the padded image taken as a single row of len
 * = (OH - 1) PW + OW sums (the last K - 1 of each line fall beyond the
 * output and are dropped): one long loop that vectorises, where output
 * rows of 26 would leave a scalar tail each. */
static void
direct_channel(const float *img, int PW, size_t len, int K, const float *W,
    const float *bias, const float *bn, int OC, int relu, int o,
    float *restrict a)
{
	float bno[4];

	if (K == 3) {
		/* The nine taps in one pass: a third of the loads and
		 * stores of nine. */
		const float *w9 = W + (size_t)o * 9;
		const float *restrict s0 = img, *restrict s1 = img + PW;
		const float *restrict s2 = img + 2 * PW;

		for (size_t i = 0; i < len; i++)
			a[i] = bias[o] + w9[0] * s0[i] + w9[1] * s0[i + 1] +
			    w9[2] * s0[i + 2] + w9[3] * s1[i] + w9[4] *
			    s1[i + 1] + w9[5] * s1[i + 2] + w9[6] * s2[i] +
			    w9[7] * s2[i + 1] + w9[8] * s2[i + 2];
	} else {
		for (size_t i = 0; i < len; i++)
			a[i] = bias[o];
		for (int ki = 0; ki < K; ki++)
			for (int kj = 0; kj < K; kj++) {
				const float *restrict s = img + (size_t)ki *
				    PW + kj;
				float wv = W[((size_t)o * K + ki) * K + kj];

				for (size_t i = 0; i < len; i++)
					a[i] += wv * s[i];
			}
	}
	wino_finish(a, len, wino_bn(bn, OC, o, bno), relu);
}

/* d [YH][YW] from the sums r (rows PW apart): their first OW of
 * each row, or the maximum of each 2x2 block if pool. */
static void
direct_place(const float *r, int PW, int OW, int YH, int YW, int pool,
    float *restrict d)
{
	for (int oy = 0; oy < YH; oy++, d += YW) {
		const float *restrict r0 = r + (size_t)oy * (pool ? 2 : 1) * PW;
		const float *restrict r1 = r0 + PW;

		for (int ox = 0; !pool && ox < OW; ox++)
			d[ox] = r0[ox];
		for (int ox = 0; pool && ox < YW; ox++) {
			float u = r0[2 * ox] > r0[2 * ox + 1] ? r0[2 * ox] :
			    r0[2 * ox + 1];
			float v = r1[2 * ox] > r1[2 * ox + 1] ? r1[2 * ox] :
			    r1[2 * ox + 1];

			d[ox] = u > v ? u : v;
		}
	}
}

/* y [OC][B][YH][YW] = bias + the convolution of x [1][B][H][W] by W
 * [OC][1][K][K], stride 1, zero padding; then the batch norm of bn if
 * not NULL, max(0, y) if fuse has FUSE_RELU, and the maximum of each
 * 2x2 block if it has FUSE_POOL (YH = OH / 2, YW = OW / 2; else OH,
 * OW).  A group of output channels at a time, their sums over the
 * padded image's full width (direct_channel), then placed.  math: the
 * work's (3x3 kernels on AVX-512 unless WINO_BLAS, the same bytes). */
KZ_HOT static void
conv_direct(const struct kz_layer *L, const float *W, const float *bias,
    const float *bn, int fuse, const float *x, int B, float *y, int math,
    float *scratch)
{
	int H = L->in.h, IW = L->in.w, K = L->k, P = L->pad;
	int OH = L->out.h, OW = L->out.w, PW = IW + 2 * P, OC = L->out.c;
	int pool = fuse & FUSE_POOL, YH = pool ? OH / 2 : OH;
	int YW = pool ? OW / 2 : OW, G = direct_group(L);
	int relu = fuse & FUSE_RELU;
	int fast = KZ_AVX512_BUILT && K == 3 && math != WINO_BLAS;
	size_t len = (size_t)(OH - 1) * PW + OW, ld = (size_t)OH * PW;
	float *pad = scratch, *acc = scratch + (size_t)(H + 2 * P) * PW;

	(void)fast;		/* (where AVX-512 is not built) */
	memset(pad, 0, (size_t)(H + 2 * P) * PW * sizeof(float));
	for (int b = 0; b < B; b++) {
		/* Unpadded, the image is read where it lies. */
		const float *img = P == 0 ? x + (size_t)b * H * IW : pad;

		for (int iy = 0; P > 0 && iy < H; iy++)
			memcpy(pad + (size_t)(iy + P) * PW + P, x + ((size_t)b *
			    H + iy) * IW, (size_t)IW * sizeof(float));
		for (int o0 = 0; o0 < OC; o0 += G) {
			int n = OC - o0 < G ? OC - o0 : G;
			size_t plane = (size_t)B * YH * YW;
			float *out = y + ((size_t)o0 * B + b) * YH * YW;

#if KZ_AVX512_BUILT
			if (fast && !pool) {
				/* Unpooled, straight into y. */
				direct3_avx512(img, PW, OH, OW, W, bias, bn,
				    OC, relu, o0, n, out, plane, OW);
				continue;
			}
			if (fast)
				direct3_avx512(img, PW, OH, OW, W, bias, bn,
				    OC, relu, o0, n, acc, ld, PW);
			else
#endif
				for (int j = 0; j < n; j++)
					direct_channel(img, PW, len, K, W, bias,
					    bn, OC, relu, o0 + j, acc + j * ld);
			for (int j = 0; j < n; j++)
				direct_place(acc + j * ld, PW, OW, YH, YW, pool,
				    out + j * plane);
		}
	}
}

int
conv_direct_ok(const struct kz_layer *L)
{
	/* Within the scratch of one image's patches, which every work
	 * has (conv_scratch). */
	return L->type == KZ_CONV && L->stride == 1 && L->in.c == 1 &&
	    direct_scratch(L) <= (size_t)L->k * L->k * L->out.h * L->out.w;
}

/* x [C][B][H*W] -> y [OC][B][OH*OW]; W [OC][C*K*K], bias [OC].
 * fuse: FUSE_RELU, y = max(0, y); FUSE_BN and FUSE_POOL (Winograd and
 * direct only), the batch norm before the ReLU and a 2x2 max pooling
 * after it. */
void
conv_forward(struct kz_pass *p)
{
	const struct kz_layer *L = p->L;
	struct kz_work *w = p->w;
	const float *W = p->n->params + L->w_off;
	const float *bias = p->n->params + L->b_off, *x = p->x;
	float *y = p->y;
	int B = p->B, ckk = L->in.c * L->k * L->k, chunk = conv_chunk(L, w, B, 0);
	int relu = p->fuse & FUSE_RELU;
	size_t ohw = (size_t)L->out.h * L->out.w;

	/* FUSE_BN: the batch norm after L (the next layer) from its
	 * running statistics, as bn_forward does when classifying;
	 * FUSE_PRE: the one two layers before (a ReLU between). */
	float bn[4 * FUSE_BN_MAX], pre[4 * FUSE_BN_MAX];

	if (p->fuse & FUSE_BN)
		bn_gather(p->n, L + 1, bn);
	if (p->fuse & FUSE_PRE)
		bn_gather(p->n, L - 2, pre);
	if (wino_ok(L)) {
		if (!p->train)
			wino4_conv(x, L->in.c, L->in.h, L->in.w, L->pad, W,
			    bias, p->fuse & FUSE_PRE ? pre : NULL,
			    p->fuse & FUSE_BN ? bn : NULL, p->fuse, L->out.c,
			    p->fuse & FUSE_ADD ? p->x2 : NULL, y, B, w->math,
			    work_slots(w, (int)(L - p->n->layers)), w->col,
			    w->ncol);
		else
			wino_conv(x, L->in.c, L->in.h, L->in.w, L->pad, W, 0,
			    bias, p->fuse & FUSE_BN ? bn : NULL, p->fuse,
			    L->out.c, y, B, p->lb->tiles, w->math, w->col,
			    w->ncol);
		return;
	}
	if (conv_direct_ok(L)) {
		conv_direct(L, W, bias, p->fuse & FUSE_BN ? bn : NULL, p->fuse,
		    x, B, y, w->math, w->col);
		return;
	}
	/* Classifying on AVX-512: the weights packed for work_product (at
	 * the start of the scratch unless the work keeps them), the
	 * patches after them. */
	int packed = !p->train && w->math != WINO_BLAS;
	float *col = w->col;

	if (packed) {
		size_t up = gemm_packed_floats(L->out.c, ckk);

		chunk = conv_chunk(L, w, B, up);
		col += up;
	}
	for (int b0 = 0; b0 < B; b0 += chunk) {
		int nb = B - b0 < chunk ? B - b0 : chunk;
		size_t cols = (size_t)nb * ohw;

		/* The bias goes in first and the products are added to it
		 * (beta 1), and the ReLU follows while the chunk's output
		 * is still in cache: one pass over y in memory, not three. */
		for (int oc = 0; oc < L->out.c; oc++) {
			float *row = y + ((size_t)oc * B + b0) * ohw, bv = bias[oc];

			for (size_t i = 0; i < cols; i++)
				row[i] = bv;
		}
		im2col(L, x, B, b0, nb, w->math, col);
		if (packed)
			work_product(w, (int)(L - p->n->layers), W, L->out.c,
			    ckk, col, cols, cols, y + b0 * ohw, B * ohw, 1,
			    w->col);
		else
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
			    L->out.c, cols, ckk, 1.0f, W, ckk, col, cols,
			    1.0f, y + b0 * ohw, B * ohw);
		for (int oc = 0; relu && oc < L->out.c; oc++) {
			float *row = y + ((size_t)oc * B + b0) * ohw;

			for (size_t i = 0; i < cols; i++)
				row[i] = row[i] > 0 ? row[i] : 0;
		}
	}
}

/* dy [OC][B][OH*OW] -> dW, db (accumulated), dx [C][B][H*W] (may be NULL) */
void
conv_backward(struct kz_pass *p)
{
	const struct kz_layer *L = p->L;
	const struct lbuf *lb = p->lb;
	struct kz_work *w = p->w;
	const float *W = p->n->params + L->w_off, *x = p->x, *dy = p->dy;
	float *dW = w->grad + L->w_off, *db = w->grad + L->b_off, *dx = p->dx;
	int B = p->B, ckk = L->in.c * L->k * L->k, chunk = conv_chunk(L, w, B, 0);
	size_t ohw = (size_t)L->out.h * L->out.w;

	/* 3x3 stride-1 kernels take the Winograd path for the weight
	 * gradient, and for the input gradient too, which is the full
	 * correlation of dy with the kernels turned round: a 3x3 stride-1
	 * convolution of OC channels. */
	int wino_w = wino_ok(L);
	int wino_dx = dx != NULL && wino_w &&
	    L->out.c >= WINO_MIN_CHANNELS && L->pad <= 2;

	for (int oc = 0; oc < L->out.c; oc++)
		db[oc] += (float)sum_floats(dy + (size_t)oc * B * ohw, B * ohw);
	if (wino_w)
		wino_weight_grad(x, L->in.c, L->in.h, L->in.w, L->pad, dy,
		    L->out.c, dW, B, lb->tiles, w->math, w->col, w->ncol);
	if (wino_dx)
		wino_conv(dy, L->out.c, L->out.h, L->out.w, 2 - L->pad, W, 1,
		    NULL, NULL, 0, L->in.c, dx, B, NULL, w->math, w->col,
		    w->ncol);
	if (dx != NULL && !wino_dx)
		memset(dx, 0, shape_size(L->in) * B * sizeof(float));
	/* What is left for the patch products, chunk by chunk. */
	int patches = !wino_w || (dx != NULL && !wino_dx);

	for (int b0 = 0; patches && b0 < B; b0 += chunk) {
		int nb = B - b0 < chunk ? B - b0 : chunk;

		if (!wino_w) {
			im2col(L, x, B, b0, nb, w->math, w->col);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
			    L->out.c, ckk, nb * ohw, 1.0f, dy + b0 * ohw,
			    B * ohw, w->col, nb * ohw, 1.0f, dW, ckk);
		}
		if (dx == NULL || wino_dx)
			continue;
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk,
		    nb * ohw, L->out.c, 1.0f, W, ckk, dy + b0 * ohw, B * ohw,
		    0.0f, w->col, nb * ohw);
		col2im(L, w->col, B, b0, nb, dx);
	}
}
