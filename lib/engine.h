/*
 * engine.h - the network engine's insides, private to lib/ (and to the
 * white-box unit tests).  Programs see struct kz_net and the functions
 * of net.h only.
 *
 * A net is a flat list of layers: each names the layers it reads (src,
 * src2), so a residual block is its layers plus an add that reads the
 * block's input again.  Every layer type is one row of kz_layer_types[]
 * (layers.c): its name in the spec language, its shape, initialisation,
 * buffers, forward and backward.  plan.c compiles the list once into
 * steps, one per layer or per group of layers done together (a fusion),
 * with the gradient buffers of every step assigned; the forward pass
 * walks the steps, the backward pass the same steps in reverse.
 *
 * Activations are [C][B][H*W] (see net.h), each layer's output in its
 * own buffer of the work, kept for the backward pass.
 */
#ifndef KZ_ENGINE_H
#define KZ_ENGINE_H

#include "gemm.h"
#include "net.h"

#define BN_EPS 1e-5f

/* One channel of m values: xh = (x - mu) * inv (stored unless NULL),
 * y = gamma * xh + beta, then max(0, y) if relu: every batch norm, in
 * this order, so that fusions keep the bytes. */
static inline void
bn_apply(const float *restrict x, size_t m, float mu, float inv,
    float gamma, float beta, int relu, float *restrict xh,
    float *restrict y)
{
	for (size_t i = 0; i < m; i++) {
		float h = (x[i] - mu) * inv, v = gamma * h + beta;

		if (xh != NULL)
			xh[i] = h;
		y[i] = !relu || v > 0 ? v : 0;
	}
}
#define MAX_LAYERS 256
/* Bounds that keep a spec from asking for absurd memory: floats of one
 * sample's activation in any layer, and parameters in all. */
#define MAX_ACTIVATION (1u << 24)
#define MAX_PARAMS (1u << 25)
/* im2col scratch per sgemm: 4 MB holds several images of every layer
 * here and stays in this machine's caches; 16 MB and up measured 10%
 * slower (the col matrix no longer fits in L2 + L3 beside the rest). */
#define CHUNK_FLOATS (1u << 20)

enum kz_layer_type {
	KZ_CONV, KZ_BN, KZ_RELU, KZ_MAXPOOL, KZ_AVGPOOL, KZ_GAP, KZ_DROPOUT,
	KZ_DENSE, KZ_FLATTEN, KZ_ADD, KZ_NTYPES
};

struct kz_layer {
	enum kz_layer_type type;
	int src, src2;			/* layers read, -1 = the net's input;
					   src2 only for add */
	struct kz_shape in, out;
	int k, stride, pad;		/* conv, pools */
	float p;			/* dropout probability */
	size_t w_off, nw;		/* weights in the parameter array */
	size_t b_off, nb;		/* biases (BN: beta; gamma is w) */
	size_t s_off, ns;		/* state (BN: running mean, then var) */
};

/* One layer's buffers inside a work. */
struct lbuf {
	float *out;		/* [out.c][B][out.h*out.w], if a step writes it */
	float *aux;		/* BN: x-hat; dropout: mask */
	int32_t *idx;		/* max pool: argmax offsets into the input */
	float *mean, *invstd;	/* BN: batch statistics, per channel */
	float *tiles;		/* Winograd conv, training: the input's V */
};

struct kz_work {
	const struct kz_net *net;	/* outlives w */
	int maxb, b;
	const float *x;		/* the last forward pass's input */
	struct lbuf *lb;	/* one per layer */
	float *grad;		/* nparams */
	float **g;		/* gradient buffers, ng of max activation */
	int ng;
	float *col;		/* convolution scratch, ncol floats */
	size_t ncol;
	float *stats;		/* batch mean and var, laid out as state */
	int math;		/* how Winograd products are taken, a
				   WINO_ value */
	/* A work made for classifying only (kz_work_new's train 0), whose
	 * net's parameters stay as they are: per layer, its weights (a
	 * Winograd layer's F(4x4) kernels; on WINO_BF16 as pairs of
	 * bfloat16s) packed for the tiles of 8 and of 12 rows, made on
	 * first use and dropped when math changes; NULL in a training work,
	 * whose validation passes see the parameters change. */
	float **packed;		/* [nlayers][2] */
};

/* Floats of A [M][K] packed by work_pack in the arithmetic math
 * (WINO_AVX512 or WINO_BF16, a pair of bfloat16s in a float's place). */
size_t work_packed_floats(int math, int M, int K);
/* A [M][K] packed for tiles of R rows (gemm_rows) in the arithmetic
 * math: by gemm_pack on WINO_AVX512, by bf16_pack_rows on WINO_BF16. */
void work_pack(int math, const float *a, int M, int K, int R, float *out);
/* C [M][N] (rows ldc apart) = A B, plus C if add, A from work_pack for
 * the same math and R, B [K][N] floats with rows ldb apart. */
void work_packed_product(int math, int M, size_t N, int K, int R,
    const float *A, const float *B, size_t ldb, float *C, size_t ldc,
    int add);
/* Layer's two slots of w->packed (tiles of 8 rows, of 12), or NULL in
 * a work that keeps none. */
float **work_slots(struct kz_work *w, int layer);
/* C [M][N] (rows ldc apart) = W B, plus C if add: a dense layer's or
 * an im2col convolution's product when classifying, w->math WINO_AVX512
 * (gemm_packed) or WINO_BF16 (bf16_gemm).  The layer's weights W
 * [M][K] are packed on the first call and kept where the work keeps
 * them, else packed into scratch (work_packed_floats(w->math, M, K)
 * floats) each time; B [K][N] has rows ldb apart. */
void work_product(struct kz_work *w, int layer, const float *W, int M,
    int K, const float *B, size_t N, size_t ldb, float *C, size_t ldc,
    int add, float *scratch);

/* The products when classifying: by OpenBLAS, by gemm_packed (where
 * kz_avx512_ok: a new work's choice), or with bfloat16 operands and
 * single-precision sums (kz_predictor_math): the Winograd layers', the
 * other convolutions' and the dense layers' alike (work_product). */
enum { WINO_BLAS, WINO_AVX512, WINO_BF16 };

/* What a step also does besides its layer (a fusion). */
#define FUSE_RELU 1		/* a ReLU on the output (forward); the
				   output's gradient through it (backward) */
#define FUSE_POOL 2		/* conv: 2x2 max pooling after the ReLU */
#define FUSE_BN 4		/* Winograd or direct conv, classifying:
				   the batch norm that follows, before
				   the ReLU */
#define FUSE_PRE 8		/* F(4x4) conv, classifying: the batch norm
				   and ReLU before it, as it reads */
#define FUSE_ADD 16		/* F(4x4) conv, classifying: the add after
				   it (x2, the other addend), as it writes */
#define FUSE_BN_MAX 1024	/* channels of a conv that FUSE_BN or
				   FUSE_PRE takes */

/* What one layer's forward or backward pass works on. */
struct kz_pass {
	const struct kz_net *n;
	const struct kz_layer *L;
	struct lbuf *lb;		/* L's buffers */
	struct kz_work *w;		/* gradients, scratch, statistics */
	const float *x, *x2;		/* inputs (x2: add's second) */
	float *y;			/* output */
	const float *dy;		/* backward: gradient at y */
	float *dx, *dx2;		/* backward: gradients at x, x2, written
					   whole; NULL where not wanted */
	int B, train;
	int fuse;			/* FUSE_* of the step */
	struct kz_rng *rng;		/* dropout's draws */
};

/* What follows a layer's name in a spec token. */
enum kz_arg {
	ARG_NONE,			/* the name alone: "bn" */
	ARG_CHANNELS,			/* output channels: "conv32" */
	ARG_KERNEL,			/* window side, stride the same: "maxpool2" */
	ARG_PROB			/* a probability in [0, 1): "drop0.3" */
};

/* One layer type.  Adding a type is one row in kz_layer_types[] and the
 * functions it names. */
struct kz_layer_ops {
	const char *name;		/* in specs and descriptions; NULL: not
					   written in specs */
	enum kz_arg arg;
	const char *opts;		/* option letters after the argument,
					   of "ksp" (kernel, stride, padding) */
	int linear;			/* weights are a linear map: decayed,
					   counted in flops, initialised by
					   the scheme kz_net_init is given */
	int relu_inside;		/* backward takes FUSE_RELU itself */
	/* Sets L->out, nw, nb, ns from L->in; -1 with a reason in why
	 * when the layer cannot apply to that input. */
	int (*shape)(struct kz_layer *L, char *why, size_t len);
	/* Initial parameters (and state) of L from r, as scheme says for
	 * linear layers; NULL: none. */
	void (*init)(const struct kz_layer *L, float *params, float *state,
	    enum kz_init scheme, struct kz_rng *r);
	/* Allocates L's buffers besides its output in lb, for batches of
	 * B (train: also what training keeps); -1 when out of memory. */
	int (*alloc)(const struct kz_layer *L, struct lbuf *lb, int B,
	    int train);
	void (*forward)(struct kz_pass *p);
	void (*backward)(struct kz_pass *p);
};

extern const struct kz_layer_ops kz_layer_types[KZ_NTYPES];

/* A step of a compiled plan: layer's forward (or backward) from the
 * values in[] to the value out, with the fusion fuse.  Values are layer
 * outputs, named by layer index; -1 is the net's input. */
struct kz_step {
	int layer;
	int in[2];			/* in[1]: add's second input, else -1 */
	int out;			/* where the output goes: the last
					   layer of the group */
	int fwd, bwd;			/* FUSE_* forward and backward */
	/* Backward: gradient buffers (indices into work->g).  gy holds
	 * the output's gradient; gmask the same through the ReLU of
	 * FUSE_RELU (gy itself when no other value shares it); input j's
	 * gradient is written to gx[j] (GRAD_SET), added to it through
	 * gtmp (GRAD_ADD), or is gy itself (GRAD_ALIAS, add only). */
	int gy, gmask, gx[2], gtmp;
	int gmode[2];
};

enum { GRAD_NONE, GRAD_SET, GRAD_ADD, GRAD_ALIAS };

struct kz_plan {
	struct kz_step *steps;
	int nsteps;
	int nslots;			/* gradient buffers the backward needs */
	int loss_slot;			/* where kz_net_loss writes */
};

/* plan.c: the training and the inference plan of n, into n->plans;
 * -1 when out of memory. */
int kz_plan_compile(struct kz_net *n);
void kz_plan_free(struct kz_plan *p);

/* Layer i's output from the last forward pass, [C][B][H*W].  A layer
 * done by another step (a fusion), or a dropout in inference, writes
 * none. */
const float *kz_work_output(const struct kz_work *w, int i);

/* dx = dy where y > 0, else 0: a ReLU's gradient (n floats); and the
 * same in place. */
void relu_grad(const float *restrict y, const float *restrict dy,
    float *restrict dx, size_t n);
void relu_grad_inplace(const float *restrict y, float *restrict g, size_t n);

/* Element count of a shape. */
static inline size_t
shape_size(struct kz_shape s)
{
	return (size_t)s.c * s.h * s.w;
}

/* Sum of n floats in 16 fixed lanes: vectorisable, and the same order
 * every run. */
static inline double
sum_floats(const float *restrict x, size_t n)
{
	float lane[16] = { 0 };
	size_t i = 0;

	for (; i + 16 <= n; i += 16)
		for (int j = 0; j < 16; j++)
			lane[j] += x[i + j];
	double s = 0;
	for (int j = 0; j < 16; j++)
		s += lane[j];
	for (; i < n; i++)
		s += x[i];
	return s;
}

/* Sum of x[i] * y[i], likewise. */
static inline double
dot_floats(const float *restrict x, const float *restrict y, size_t n)
{
	float lane[16] = { 0 };
	size_t i = 0;

	for (; i + 16 <= n; i += 16)
		for (int j = 0; j < 16; j++)
			lane[j] += x[i + j] * y[i + j];
	double s = 0;
	for (int j = 0; j < 16; j++)
		s += lane[j];
	for (; i < n; i++)
		s += (double)x[i] * y[i];
	return s;
}

/* ---- convolution (conv.c, winograd.c) ---------------------------------- */

int conv_shape(struct kz_layer *L, char *why, size_t len);
int conv_alloc(const struct kz_layer *L, struct lbuf *lb, int B, int train);
void conv_forward(struct kz_pass *p);
void conv_backward(struct kz_pass *p);
/* Floats of convolution scratch a work needs for batches of maxb. */
size_t conv_scratch(const struct kz_net *n, int maxb);

/* Whether L takes the Winograd path: 3x3, stride 1, 16 channels up. */
int wino_ok(const struct kz_layer *L);
#define WINO_MIN_CHANNELS 16
/* Floats of scratch one image of L needs on the Winograd path, forward
 * and for the input gradient, and floats of the tiles that training
 * keeps for B images. */
size_t wino_scratch(const struct kz_layer *L);
size_t wino_kept(const struct kz_layer *L, int B);
/* Batch norm L's channel c when classifying: the running mean and
 * 1 / standard deviation, as bn_forward applies them. */
void bn_running(const struct kz_net *n, const struct kz_layer *L, int c,
    float *mu, float *inv);

/* What winograd.c (F(2x2)) and wino4.c (F(4x4)) share.  A chunk's
 * planes sit WINO_SKEW floats apart beyond their size (planes a
 * multiple of 4 KiB apart would share L1 sets, and the transforms touch
 * all at once); its tiles, products and outputs take at most
 * WINO_FLOATS floats (2 MiB: near L2 size ran fastest here); OpenBLAS's
 * sgemm skips packing below WINO_SMALL_GEMM multiply-adds (its
 * sgemm_small_kernel_permit for this machine's kernels). */
#define WINO_SKEW 16
#define WINO_FLOATS (1u << 19)
#define WINO_SMALL_GEMM 1e6
/* Images per chunk for scratch of nscratch floats of which fixed are
 * taken, per floats an image: as many as fit, up to B and within
 * WINO_FLOATS. */
int wino_chunk(size_t nscratch, size_t fixed, size_t per, int B);
/* d[n] = the largest of a[n], b[n], c[n] and e[n], n < N; d may be a. */
void wino_max4(const float *a, const float *b, const float *c,
    const float *e, size_t N, float *d);

/* y [OC][B][OH][OW] = conv(x [C][B][H][W], g) + bias, zero padding P,
 * OH = H + 2P - 2, OW = W + 2P - 2; then max(0, y) if fuse has
 * FUSE_RELU, and the maximum of each 2x2 block if it has FUSE_POOL
 * (OH and OW even: y is then [OC][B][OH/2][OW/2]).  g is
 * [OC][C][3][3]; or, if adjoint, [C][OC][3][3] turned round, which
 * makes this the input gradient of the convolution by g (pass its
 * output's gradient as x and P = 2 - pad).  bias may be NULL.  bn, if
 * not NULL, is a batch norm applied before the ReLU, [4][OC]: each
 * channel's mean, 1 / standard deviation, scale and shift.  keep,
 * if not NULL, receives the transformed input for wino_weight_grad
 * (wino_kept floats).  math: the products by gemm_packed if
 * WINO_AVX512, by bf16_gemm if WINO_BF16, else by OpenBLAS.  scratch
 * holds nscratch floats, at least wino_scratch's. */
void wino_conv(const float *x, int C, int H, int W, int P, const float *g,
    int adjoint, const float *bias, const float *bn, int fuse, int OC,
    float *y, int B, float *keep, int math, float *scratch,
    size_t nscratch);
/* The same convolution by F(4x4, 3x3), classifying only (no adjoint,
 * nothing kept), and the scratch it needs for batches of up to maxb
 * images: at least wino4_scratch.  packed, if not NULL, is the layer's
 * two slots of kz_work's packed (kept there, on WINO_AVX512 and
 * WINO_BF16).  pre, if not NULL, is a batch norm [4][C] (as bn) and a
 * ReLU applied to x as it is read, the padding staying zero; res, if
 * not NULL, [OC][B][YH][YW] as y, is added to y last.  Both give the
 * bytes of the layers one by one. */
size_t wino4_scratch(const struct kz_layer *L, int maxb);
/* The n outputs Y of one channel through the batch norm of bn (mean,
 * 1 / standard deviation, scale, shift; the same arithmetic as
 * bn_forward's) if it is not NULL, then max(0, Y) if relu: the
 * epilogue of the convolutions that fuse them. */
void wino_finish(float *restrict Y, size_t n, const float *bn, int relu);
#if KZ_AVX512_BUILT
/* wino_finish on the 16 lanes of v, the same operations in its order
 * (max gives 0 for -0 and NaN, as its test > 0 does): the same bytes. */
KZ_AVX512_TARGET static inline __m512
wino_finish16(__m512 v, const float *bn, int relu)
{
	if (bn != NULL)
		v = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(bn[2]),
		    _mm512_mul_ps(_mm512_sub_ps(v, _mm512_set1_ps(bn[0])),
		    _mm512_set1_ps(bn[1]))), _mm512_set1_ps(bn[3]));
	return relu ? _mm512_max_ps(v, _mm512_setzero_ps()) : v;
}
#endif
/* bn [4][C] (C = L's channels, at most FUSE_BN_MAX) for batch norm L
 * when classifying: each channel's running mean, 1 / standard
 * deviation, scale and shift. */
void bn_gather(const struct kz_net *n, const struct kz_layer *L, float *bn);
/* Channel o's mean, 1 / standard deviation, scale and shift from bn
 * [4][OC] into bno, which it returns; NULL if bn is. */
const float *wino_bn(const float *bn, int OC, int o, float bno[4]);
/* Whether conv_forward computes L directly (one input channel, stride
 * 1), when it can fuse a batch norm and a 2x2 max pooling as the
 * Winograd convolutions do. */
int conv_direct_ok(const struct kz_layer *L);
void wino4_conv(const float *x, int C, int H, int W, int P, const float *g,
    const float *bias, const float *pre, const float *bn, int fuse, int OC,
    const float *res, float *y, int B, int math, float **packed,
    float *scratch, size_t nscratch);
/* dW [OC][C][3][3] += the weight gradient of the convolution of x
 * [C][B][H][W], padding P, whose output has gradient dy [OC][B][OH][OW].
 * kept: x's tiles as wino_conv kept them, or NULL.  math: the
 * products by gemm_dots if WINO_AVX512, by bf16_dots if WINO_BF16,
 * else by OpenBLAS.  Scratch as for wino_conv. */
void wino_weight_grad(const float *x, int C, int H, int W, int P,
    const float *dy, int OC, float *dW, int B, const float *kept,
    int math, float *scratch, size_t nscratch);

#endif
