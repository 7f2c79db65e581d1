/*
 * net.c - layers as _forward/_backward pairs over whole mini-batches.
 *
 * Shapes: activations are [C][B][H*W] (see net.h).  Every layer writes
 * its output into its own buffer, kept for the backward pass; gradients
 * flow through two ping-pong buffers of the largest activation size.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "net.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f
/* im2col scratch per sgemm: 4 MB holds several images of every layer
 * here and stays in this machine's caches; 16 MB and up measured 10%
 * slower (the col matrix no longer fits in L2 + L3 beside the rest). */
#define CHUNK_FLOATS (1u << 20)
#define MAX_LAYERS 256
/* Bounds that keep a spec from asking for absurd memory: floats of one
 * sample's activation in any layer, and parameters in all. */
#define MAX_ACTIVATION (1u << 24)
#define MAX_PARAMS (1u << 25)

/* One layer's buffers inside a work. */
struct lbuf {
	float *out;		/* [out.c][B][out.h*out.w] */
	float *aux;		/* BN: x-hat; dropout: mask; flatten: none */
	int32_t *idx;		/* max pool: argmax offsets into the input */
	float *mean, *invstd;	/* BN: batch statistics, per channel */
	float *tiles;		/* Winograd conv, training: the input's V */
	struct lbuf *sub;	/* KZ_RES */
	float *g[3];		/* KZ_RES: scratch gradients */
};

struct kz_work {
	const struct kz_layer *layers;	/* the net's, which outlives w */
	int nlayers;
	int maxb, b;
	const float *x;
	struct lbuf *lb;
	float *grad;
	float *d[2];		/* ping-pong gradients */
	float *col;		/* im2col scratch, CHUNK_FLOATS at least */
	size_t ncol;
	float *stats;		/* batch mean and var, laid out as state */
};

/* Sum of n floats in 16 fixed lanes: vectorisable, and the same order
 * every run. */
static double
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
static double
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

static size_t
shape_size(struct kz_shape s)
{
	return (size_t)s.c * s.h * s.w;
}

/* ---- building -------------------------------------------------------- */

static int
parse_int(const char **p, int *v)
{
	char *end;
	long x;

	if (!isdigit((unsigned char)**p))
		return -1;
	x = strtol(*p, &end, 10);
	if (x <= 0 || x > 1 << 20)
		return -1;
	*v = (int)x;
	*p = end;
	return 0;
}

/* Parses options like k3 s2 p1 after a layer name. */
static int
parse_opts(const char *p, int *k, int *s, int *pad)
{
	while (*p) {
		int *dst, v;
		char c = *p++;

		if (c == 'k' && k) dst = k;
		else if (c == 's' && s) dst = s;
		else if (c == 'p' && pad) dst = pad;
		else return -1;
		if (c == 'p' && *p == '0') {
			v = 0;
			p++;
		} else if (parse_int(&p, &v) != 0) {
			return -1;
		}
		*dst = v;
	}
	return 0;
}

/* Fills L from one token; shapes are set later. */
static int
parse_token(const char *tok, int mlp, struct kz_layer *L)
{
	const char *p;

	memset(L, 0, sizeof(*L));
	L->k = 3;
	L->stride = 1;
	if (mlp && isdigit((unsigned char)tok[0])) {
		p = tok;
		L->type = KZ_DENSE;
		return parse_int(&p, &L->out.c) != 0 || *p ? -1 : 0;
	}
	if (strncmp(tok, "conv", 4) == 0) {
		p = tok + 4;
		L->type = KZ_CONV;
		if (parse_int(&p, &L->out.c) != 0)
			return -1;
		return parse_opts(p, &L->k, &L->stride, &L->pad);
	}
	if (strncmp(tok, "res", 3) == 0) {
		p = tok + 3;
		L->type = KZ_RES;
		if (parse_int(&p, &L->out.c) != 0)
			return -1;
		return parse_opts(p, NULL, &L->stride, NULL);
	}
	if (strncmp(tok, "maxpool", 7) == 0 || strncmp(tok, "avgpool", 7) == 0) {
		L->type = tok[0] == 'm' ? KZ_MAXPOOL : KZ_AVGPOOL;
		p = tok + 7;
		if (parse_int(&p, &L->k) != 0)
			return -1;
		L->stride = L->k;
		return parse_opts(p, NULL, &L->stride, NULL);
	}
	if (strncmp(tok, "dense", 5) == 0) {
		p = tok + 5;
		L->type = KZ_DENSE;
		return parse_int(&p, &L->out.c) != 0 || *p ? -1 : 0;
	}
	if (strncmp(tok, "drop", 4) == 0) {
		char *end;

		L->type = KZ_DROPOUT;
		L->p = strtof(tok + 4, &end);
		return end == tok + 4 || *end || !(L->p >= 0 && L->p < 1) ?
		    -1 : 0;
	}
	if (strcmp(tok, "bn") == 0) { L->type = KZ_BN; return 0; }
	if (strcmp(tok, "relu") == 0) { L->type = KZ_RELU; return 0; }
	if (strcmp(tok, "gap") == 0) { L->type = KZ_GAP; return 0; }
	return -1;
}

/* Sets L's output shape from its input; -1 when it cannot apply. */
static int
layer_shape(struct kz_layer *L, struct kz_shape in, char *why, size_t len)
{
	L->in = in;
	switch (L->type) {
	case KZ_CONV:
		if (in.h + 2 * L->pad < L->k || in.w + 2 * L->pad < L->k) {
			snprintf(why, len, "a %dx%d kernel does not fit a %dx%d "
			    "input", L->k, L->k, in.h, in.w);
			return -1;
		}
		L->out.h = (in.h + 2 * L->pad - L->k) / L->stride + 1;
		L->out.w = (in.w + 2 * L->pad - L->k) / L->stride + 1;
		L->nw = (size_t)L->out.c * in.c * L->k * L->k;
		L->nb = L->out.c;
		return 0;
	case KZ_RES:
		L->out.h = (in.h - 1) / L->stride + 1;
		L->out.w = (in.w - 1) / L->stride + 1;
		return 0;
	case KZ_MAXPOOL:
	case KZ_AVGPOOL:
		if (in.h < L->k || in.w < L->k) {
			snprintf(why, len, "a %dx%d pool does not fit a %dx%d "
			    "input", L->k, L->k, in.h, in.w);
			return -1;
		}
		L->out.c = in.c;
		L->out.h = (in.h - L->k) / L->stride + 1;
		L->out.w = (in.w - L->k) / L->stride + 1;
		return 0;
	case KZ_GAP:
		L->out = (struct kz_shape){ in.c, 1, 1 };
		return 0;
	case KZ_DENSE:
		L->out.h = L->out.w = 1;
		L->nw = (size_t)L->out.c * shape_size(in);
		L->nb = L->out.c;
		return 0;
	case KZ_FLATTEN:
		L->out = (struct kz_shape){ (int)shape_size(in), 1, 1 };
		return 0;
	case KZ_BN:
		L->nw = L->nb = in.c;
		/* fall through */
	default:
		L->out = in;
		return 0;
	}
}

/* Lays out a pre-activation residual block's sub-layers. */
static int
res_build(struct kz_layer *L)
{
	int proj = L->stride != 1 || L->in.c != L->out.c;
	struct kz_shape s = L->in;
	char why[8];

	L->nsub = proj ? 7 : 6;
	if ((L->sub = calloc(L->nsub, sizeof(*L->sub))) == NULL)
		return -1;
	L->sub[0].type = KZ_BN;
	L->sub[1].type = KZ_RELU;
	L->sub[2] = (struct kz_layer){ .type = KZ_CONV, .k = 3, .pad = 1,
	    .stride = L->stride, .out.c = L->out.c };
	L->sub[3].type = KZ_BN;
	L->sub[4].type = KZ_RELU;
	L->sub[5] = (struct kz_layer){ .type = KZ_CONV, .k = 3, .pad = 1,
	    .stride = 1, .out.c = L->out.c };
	for (int i = 0; i < 6; i++) {
		layer_shape(&L->sub[i], s, why, sizeof(why));
		s = L->sub[i].out;
	}
	if (proj) {
		L->sub[6] = (struct kz_layer){ .type = KZ_CONV, .k = 1,
		    .pad = 0, .stride = L->stride, .out.c = L->out.c };
		layer_shape(&L->sub[6], L->sub[1].out, why, sizeof(why));
	}
	return 0;
}

/* Gives every parameterised layer its offsets; returns the totals. */
static void
assign_offsets(struct kz_layer *L, int n, size_t *np, size_t *ns)
{
	for (int i = 0; i < n; i++) {
		if (L[i].type == KZ_RES) {
			assign_offsets(L[i].sub, L[i].nsub, np, ns);
			continue;
		}
		L[i].w_off = *np;
		*np += L[i].nw;
		L[i].b_off = *np;
		*np += L[i].nb;
		if (L[i].type == KZ_BN) {
			L[i].s_off = *ns;
			*ns += 2 * (size_t)L[i].in.c;
		}
	}
}

static void
init_params(struct kz_net *n, struct kz_layer *L, int nl, struct kz_rng *r)
{
	for (int i = 0; i < nl; i++) {
		if (L[i].type == KZ_RES) {
			init_params(n, L[i].sub, L[i].nsub, r);
			continue;
		}
		float *w = n->params + L[i].w_off, *b = n->params + L[i].b_off;
		if (L[i].type == KZ_BN) {
			float *s = n->state + L[i].s_off;

			for (int c = 0; c < L[i].in.c; c++) {
				w[c] = 1;
				b[c] = 0;
				s[c] = 0;
				s[L[i].in.c + c] = 1;
			}
			continue;
		}
		if (L[i].nw == 0)
			continue;
		/* He initialisation: keeps ReLU activations' variance. */
		double fan_in = (double)L[i].nw / L[i].out.c;
		double sd = sqrt(2.0 / fan_in);
		for (size_t j = 0; j < L[i].nw; j++)
			w[j] = (float)(kz_rng_normal(r) * sd);
		memset(b, 0, L[i].nb * sizeof(float));
	}
}

struct kz_net *
kz_net_new(const char *arch, struct kz_shape in, int nclasses, uint64_t seed,
    struct kz_err *e)
{
	struct kz_net *n;
	struct kz_layer L[MAX_LAYERS];
	int nl = 0, mlp;
	const char *body;
	char tok[64], why[128];

	if (strcmp(arch, "linear") == 0) {
		body = "";
		mlp = 1;
	} else if (strncmp(arch, "mlp:", 4) == 0) {
		body = arch + 4;
		mlp = 1;
	} else if (strncmp(arch, "cnn:", 4) == 0) {
		body = arch + 4;
		mlp = 0;
	} else {
		kz_errf(e, "architecture \"%s\": expected linear, mlp:H,... or "
		    "cnn:SPEC", arch);
		return NULL;
	}
	struct kz_shape s = in;
	for (const char *p = body; *p;) {
		size_t len = strcspn(p, ",");

		if (len == 0 || len >= sizeof(tok)) {
			kz_errf(e, "architecture \"%s\": empty or over-long "
			    "token at offset %td", arch, p - arch);
			return NULL;
		}
		memcpy(tok, p, len);
		tok[len] = '\0';
		p += len + (p[len] == ',');
		if (nl + 3 >= MAX_LAYERS) {
			kz_errf(e, "architecture \"%s\": more than %d layers",
			    arch, MAX_LAYERS - 3);
			return NULL;
		}
		if (parse_token(tok, mlp, &L[nl]) != 0) {
			kz_errf(e, "architecture \"%s\": bad token \"%s\"", arch,
			    tok);
			return NULL;
		}
		/* A dense layer after spatial ones reads them flattened. */
		if (L[nl].type == KZ_DENSE && (s.h > 1 || s.w > 1)) {
			struct kz_layer d = L[nl];

			L[nl] = (struct kz_layer){ .type = KZ_FLATTEN };
			layer_shape(&L[nl], s, why, sizeof(why));
			s = L[nl++].out;
			L[nl] = d;
		}
		if (layer_shape(&L[nl], s, why, sizeof(why)) != 0) {
			kz_errf(e, "architecture \"%s\": token \"%s\": %s", arch,
			    tok, why);
			return NULL;
		}
		if (shape_size(L[nl].out) > MAX_ACTIVATION ||
		    L[nl].nw > MAX_PARAMS) {
			kz_errf(e, "architecture \"%s\": token \"%s\" makes a "
			    "layer too large", arch, tok);
			return NULL;
		}
		s = L[nl++].out;
		if (mlp && L[nl - 1].type == KZ_DENSE) {
			L[nl] = (struct kz_layer){ .type = KZ_RELU };
			layer_shape(&L[nl], s, why, sizeof(why));
			nl++;
		}
	}
	if (s.h > 1 || s.w > 1) {
		L[nl] = (struct kz_layer){ .type = KZ_FLATTEN };
		layer_shape(&L[nl], s, why, sizeof(why));
		s = L[nl++].out;
	}
	L[nl] = (struct kz_layer){ .type = KZ_DENSE, .out.c = nclasses };
	layer_shape(&L[nl], s, why, sizeof(why));
	nl++;

	if ((n = calloc(1, sizeof(*n))) == NULL ||
	    (n->layers = calloc(nl, sizeof(*L))) == NULL ||
	    (n->spec = strdup(arch)) == NULL)
		goto oom;
	memcpy(n->layers, L, nl * sizeof(*L));
	n->nlayers = nl;
	n->in = in;
	n->nclasses = nclasses;
	for (int i = 0; i < nl; i++)
		if (n->layers[i].type == KZ_RES && res_build(&n->layers[i]) != 0)
			goto oom;
	assign_offsets(n->layers, n->nlayers, &n->nparams, &n->nstate);
	if (n->nparams > MAX_PARAMS) {
		kz_errf(e, "architecture \"%s\": %zu parameters are more than "
		    "%u", arch, n->nparams, MAX_PARAMS);
		kz_net_free(n);
		return NULL;
	}
	if ((n->params = calloc(n->nparams + 1, sizeof(float))) == NULL ||
	    (n->state = calloc(n->nstate + 1, sizeof(float))) == NULL)
		goto oom;
	struct kz_rng r;
	kz_rng_seed(&r, seed);
	init_params(n, n->layers, n->nlayers, &r);
	return n;
oom:
	kz_net_free(n);
	kz_errf(e, "out of memory");
	return NULL;
}

void
kz_net_free(struct kz_net *n)
{
	if (n == NULL)
		return;
	for (int i = 0; n->layers && i < n->nlayers; i++)
		free(n->layers[i].sub);
	free(n->layers);
	free(n->params);
	free(n->state);
	free(n->spec);
	free(n);
}

static double
layers_flops(const struct kz_layer *L, int nl)
{
	double f = 0;

	for (int i = 0; i < nl; i++) {
		if (L[i].type == KZ_RES)
			f += layers_flops(L[i].sub, L[i].nsub);
		else if (L[i].type == KZ_CONV || L[i].type == KZ_DENSE)
			f += (double)L[i].nw * L[i].out.h * L[i].out.w;
	}
	return f;
}

double
kz_net_flops(const struct kz_net *n)
{
	return layers_flops(n->layers, n->nlayers);
}

void
kz_net_describe(const struct kz_net *n, char *buf, size_t len)
{
	static const char *names[] = { "conv", "bn", "relu", "maxpool",
	    "avgpool", "gap", "dropout", "dense", "flatten", "res" };
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < n->nlayers && off < len; i++) {
		const struct kz_layer *L = &n->layers[i];
		int w = snprintf(buf + off, len - off, "%-8s %4dx%-3dx%-3d -> "
		    "%4dx%-3dx%-3d %8zu params\n", names[L->type], L->in.c,
		    L->in.h, L->in.w, L->out.c, L->out.h, L->out.w,
		    L->nw + L->nb);
		off += w > 0 ? (size_t)w : 0;
	}
}

/* ---- convolution: Winograd F(2x2, 3x3) --------------------------------
 *
 * A 3x3 stride-1 convolution gives each 2x2 block of outputs from a 4x4
 * block of input in 16 multiplications, where im2col's GEMM takes 36
 * (Lavin and Gray, "Fast algorithms for convolutional neural networks",
 * 2016): the 4x4 input tiles are transformed (V = B'dB), multiplied by
 * the transformed kernels (U = GgG') as 16 GEMMs of [OC][C] x [C][tiles],
 * and transformed back (Y = A'MA).  Worth it from 16 input channels:
 * below that the GEMMs are too thin to run at speed. */
#define WINO_MIN_CHANNELS 16
/* What an inference pass does in the layer before, while its output is
 * in cache (see layers_forward). */
#define FUSE_RELU 1
#define FUSE_POOL 2
/* The 16 planes of V and M sit this many floats apart beyond their
 * size: planes a multiple of 4 KiB apart would share the same L1 sets,
 * and the transforms read or write all 16 at once. */
#define WINO_SKEW 16
/* A chunk's transformed tiles (V, M, Y) in at most this many floats,
 * 2 MiB: near L2 size ran fastest here. */
#define WINO_FLOATS (1u << 19)
/* The size of product below which OpenBLAS's sgemm skips packing (its
 * sgemm_small_kernel_permit for this machine's kernels). */
#define WINO_SMALL_GEMM 1e6

static int
wino_ok(const struct kz_layer *L)
{
	return L->k == 3 && L->stride == 1 && L->in.c >= WINO_MIN_CHANNELS;
}

/* Floats of scratch for one image of a C -> OC convolution with OH x OW
 * outputs: its tiles V, their products M and the outputs Y. */
static size_t
wino_per_image(int C, int OC, int OH, int OW)
{
	return (size_t)((OH + 1) / 2) * ((OW + 1) / 2) * (16 * (C + OC) + 4);
}

/* Floats that keep a convolution's transformed input tiles, B images,
 * in chunks of any size: the chunk from image b0 starts at
 * b0 * 16 * (C * T + WINO_SKEW). */
static size_t
wino_kept(const struct kz_layer *L, int B)
{
	size_t T = (size_t)((L->out.h + 1) / 2) * ((L->out.w + 1) / 2);

	return (size_t)B * 16 * (L->in.c * T + WINO_SKEW);
}

/* Floats of wino_tiles' cols for TH x TW tiles: 4 tile columns, each
 * row's parity, TH + 1 rows of TW tiles. */
static size_t
wino_cols_floats(int TH, int TW)
{
	return (size_t)8 * (TH + 1) * TW;
}

/* Floats of scratch besides the images': the kernels U, cols, a
 * padded input row and the skew. */
static size_t
wino_fixed(int C, int OC, int OH, int OW)
{
	int TH = (OH + 1) / 2, TW = (OW + 1) / 2;

	return (size_t)16 * OC * C + wino_cols_floats(TH, TW) +
	    (size_t)(2 * TW + 2) + 32 * WINO_SKEW;
}

/* ---- work buffers ---------------------------------------------------- */

static size_t
max_act(const struct kz_layer *L, int nl, size_t m)
{
	for (int i = 0; i < nl; i++) {
		size_t s = shape_size(L[i].out), t = shape_size(L[i].in);

		m = s > m ? s : m;
		m = t > m ? t : m;
		if (L[i].type == KZ_RES)
			m = max_act(L[i].sub, L[i].nsub, m);
	}
	return m;
}

static int
lbuf_alloc(const struct kz_layer *L, int nl, struct lbuf *lb, int B,
    int train)
{
	for (int i = 0; i < nl; i++) {
		size_t o = shape_size(L[i].out) * B;

		if ((lb[i].out = malloc(o * sizeof(float))) == NULL)
			return -1;
		switch (L[i].type) {
		case KZ_BN:
			lb[i].aux = malloc(o * sizeof(float));
			lb[i].mean = malloc(L[i].in.c * sizeof(float));
			lb[i].invstd = malloc(L[i].in.c * sizeof(float));
			if (!lb[i].aux || !lb[i].mean || !lb[i].invstd)
				return -1;
			break;
		case KZ_DROPOUT:
			if ((lb[i].aux = malloc(o * sizeof(float))) == NULL)
				return -1;
			break;
		case KZ_MAXPOOL:
			if ((lb[i].idx = malloc(o * sizeof(int32_t))) == NULL)
				return -1;
			break;
		case KZ_CONV:
			if (train && wino_ok(&L[i]) && (lb[i].tiles = malloc(
			    wino_kept(&L[i], B) * sizeof(float))) == NULL)
				return -1;
			break;
		case KZ_RES: {
			size_t m = max_act(L[i].sub, L[i].nsub, 0) * B;

			if ((lb[i].sub = calloc(L[i].nsub,
			    sizeof(struct lbuf))) == NULL ||
			    lbuf_alloc(L[i].sub, L[i].nsub, lb[i].sub, B,
			    train) != 0)
				return -1;
			for (int g = 0; g < 3; g++)
				if ((lb[i].g[g] = malloc(m * sizeof(float))) ==
				    NULL)
					return -1;
			break;
		}
		default:
			break;
		}
	}
	return 0;
}

static void
lbuf_free(const struct kz_layer *L, int nl, struct lbuf *lb)
{
	if (lb == NULL)
		return;
	for (int i = 0; i < nl; i++) {
		free(lb[i].out);
		free(lb[i].aux);
		free(lb[i].idx);
		free(lb[i].mean);
		free(lb[i].invstd);
		free(lb[i].tiles);
		for (int g = 0; g < 3; g++)
			free(lb[i].g[g]);
		if (L[i].type == KZ_RES)
			lbuf_free(L[i].sub, L[i].nsub, lb[i].sub);
		free(lb[i].sub);
	}
}

static size_t
conv_scratch(const struct kz_layer *L, int nl, size_t m)
{
	for (int i = 0; i < nl; i++) {
		if (L[i].type == KZ_RES)
			m = conv_scratch(L[i].sub, L[i].nsub, m);
		if (L[i].type != KZ_CONV)
			continue;
		size_t per = (size_t)L[i].in.c * L[i].k * L[i].k *
		    L[i].out.h * L[i].out.w;
		m = per > m ? per : m;
	}
	return m;
}

/* Floats of scratch the Winograd convolutions need at least: one image
 * forward, and one image of the input gradient. */
static size_t
wino_scratch(const struct kz_layer *L, int nl, size_t m)
{
	for (int i = 0; i < nl; i++) {
		if (L[i].type == KZ_RES)
			m = wino_scratch(L[i].sub, L[i].nsub, m);
		if (L[i].type != KZ_CONV || !wino_ok(&L[i]))
			continue;
		int C = L[i].in.c, OC = L[i].out.c;
		size_t f = wino_fixed(C, OC, L[i].out.h, L[i].out.w) +
		    wino_per_image(C, OC, L[i].out.h, L[i].out.w);
		size_t b = wino_fixed(OC, C, L[i].in.h, L[i].in.w) +
		    wino_per_image(OC, C, L[i].in.h, L[i].in.w);

		m = f > m ? f : m;
		m = b > m ? b : m;
	}
	return m;
}

struct kz_work *
kz_work_new(const struct kz_net *n, int maxb, int train)
{
	struct kz_work *w = calloc(1, sizeof(*w));
	size_t m;

	if (w == NULL)
		return NULL;
	w->maxb = maxb;
	w->layers = n->layers;
	w->nlayers = n->nlayers;
	m = max_act(n->layers, n->nlayers, shape_size(n->in)) * maxb;
	w->ncol = conv_scratch(n->layers, n->nlayers, 0);
	if (w->ncol < CHUNK_FLOATS)
		w->ncol = w->ncol * maxb < CHUNK_FLOATS ? w->ncol * maxb :
		    CHUNK_FLOATS;
	size_t wino = wino_scratch(n->layers, n->nlayers, 0);
	w->ncol = wino > w->ncol ? wino : w->ncol;
	if ((w->lb = calloc(n->nlayers, sizeof(*w->lb))) == NULL ||
	    lbuf_alloc(n->layers, n->nlayers, w->lb, maxb, train) != 0 ||
	    (w->grad = calloc(n->nparams + 1, sizeof(float))) == NULL ||
	    (w->d[0] = malloc(m * sizeof(float))) == NULL ||
	    (w->d[1] = malloc(m * sizeof(float))) == NULL ||
	    (w->col = malloc((w->ncol + 1) * sizeof(float))) == NULL ||
	    (w->stats = calloc(n->nstate + 1, sizeof(float))) == NULL) {
		kz_work_free(w);
		return NULL;
	}
	return w;
}

void
kz_work_free(struct kz_work *w)
{
	if (w == NULL)
		return;
	lbuf_free(w->layers, w->nlayers, w->lb);
	free(w->lb);
	free(w->grad);
	free(w->d[0]);
	free(w->d[1]);
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

/* ---- convolution: im2col + sgemm ------------------------------------- */

/* Samples per im2col chunk for layer L. */
static int
conv_chunk(const struct kz_layer *L, const struct kz_work *w, int B)
{
	size_t per = (size_t)L->in.c * L->k * L->k * L->out.h * L->out.w;
	size_t c = w->ncol / per;

	if (c < 1)
		c = 1;
	return c > (size_t)B ? B : (int)c;
}

/* col[(c*K + ki)*K + kj][(b - b0)*OHW + oy*OW + ox] = x[c][b][iy][ix],
 * zero outside the input. */
static void
im2col(const struct kz_layer *L, const float *x, int B, int b0, int nb,
    float *col)
{
	int K = L->k, S = L->stride, P = L->pad;
	int H = L->in.h, W = L->in.w, OH = L->out.h, OW = L->out.w;
	size_t ohw = (size_t)OH * OW, ncols = (size_t)nb * ohw;

	for (int c = 0; c < L->in.c; c++)
		for (int ki = 0; ki < K; ki++)
			for (int kj = 0; kj < K; kj++) {
				float *dst = col + ((size_t)(c * K + ki) * K +
				    kj) * ncols;

				for (int b = 0; b < nb; b++) {
					const float *src = x + ((size_t)c * B +
					    b0 + b) * H * W;

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
static void
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

/* U[e][o][c] = (G g G')[e] for g [OC][C][3][3], or, if adjoint, for g
 * [C][OC][3][3] turned round by 180 degrees;
 * G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]. */
static void
wino_kernels(const float *g, int adjoint, int C, int OC, float *U)
{
	size_t e1 = (size_t)OC * C;

	for (int o = 0; o < OC; o++)
		for (int c = 0; c < C; c++) {
			float k[3][3], t[4][3];

			for (int i = 0; i < 3; i++)
				for (int j = 0; j < 3; j++)
					k[i][j] = adjoint ? g[(((size_t)c * OC +
					    o) * 3 + 2 - i) * 3 + 2 - j] :
					    g[(((size_t)o * C + c) * 3 + i) * 3
					    + j];
			for (int j = 0; j < 3; j++) {
				t[0][j] = k[0][j];
				t[1][j] = 0.5f * (k[0][j] + k[1][j] + k[2][j]);
				t[2][j] = 0.5f * (k[0][j] - k[1][j] + k[2][j]);
				t[3][j] = k[2][j];
			}
			for (int i = 0; i < 4; i++) {
				float *u = U + (size_t)(4 * i) * e1 +
				    (size_t)o * C + c;

				u[0] = t[i][0];
				u[e1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
				u[2 * e1] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
				u[3 * e1] = t[i][2];
			}
		}
}

/* The transform's two passes run over contiguous floats; restrict lets
 * them vectorise (through plain float pointers the compiler must assume
 * each store may change the next load). */

/* d[j * js + tx] = (l B)[j] for the TW tiles' 4 columns of one padded
 * input row l, 2 * TW + 2 floats: tile tx has columns 2tx .. 2tx+3. */
static void
wino_cols(const float *restrict l, int TW, float *restrict d, size_t js)
{
	for (int tx = 0; tx < TW; tx++) {
		d[tx] = l[2 * tx] - l[2 * tx + 2];
		d[js + tx] = l[2 * tx + 1] + l[2 * tx + 2];
		d[2 * js + tx] = l[2 * tx + 2] - l[2 * tx + 1];
		d[3 * js + tx] = l[2 * tx + 1] - l[2 * tx + 3];
	}
}

/* v[(4i + j) * vs + n] = (B' r)[i] for the T tiles n of an image, r
 * their 4 rows of column j: cols[2j] and cols[2j + 1] (R floats apart)
 * hold the even and odd padded rows, TW floats each, so that tile n's
 * rows are even[n], odd[n], even[n + TW], odd[n + TW]. */
static void
wino_rows(const float *restrict cols, size_t R, int TW, size_t T,
    float *restrict v, size_t vs)
{
	for (int j = 0; j < 4; j++) {
		const float *ev = cols + 2 * j * R, *od = ev + R;
		float *d = v + j * vs;

		for (size_t n = 0; n < T; n++) {
			d[n] = ev[n] - ev[n + TW];
			d[4 * vs + n] = od[n] + ev[n + TW];
			d[8 * vs + n] = ev[n + TW] - od[n];
			d[12 * vs + n] = od[n] - od[n + TW];
		}
	}
}

/* V[e][c][n] = (B' d B)[e] for the 4x4 tiles d of images b0..b0+nb-1 of
 * x [C][B][H][W] padded by P, n = (b - b0) * TH * TW + tile; planes vs
 * floats apart.  cols holds wino_cols_floats(TH, TW) floats, line
 * 2 * TW + 2.  B' = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
static void
wino_tiles(const float *x, int C, int H, int W, int P, int B, int b0,
    int nb, int TH, int TW, float *cols, float *line, float *V, size_t vs)
{
	size_t T = (size_t)TH * TW, R = (size_t)(TH + 1) * TW;
	size_t N = (size_t)nb * T;

	/* The padding is zero once: rows of it transform to zero rows of
	 * cols, which no image writes, and every image writes the same
	 * columns of line. */
	memset(cols, 0, 8 * R * sizeof(float));
	memset(line, 0, (2 * TW + 2) * sizeof(float));
	for (int c = 0; c < C; c++)
		for (int b = 0; b < nb; b++) {
			const float *src = x + ((size_t)c * B + b0 + b) * H * W;

			/* B along each row first, into cols by the row's
			 * parity: then B' along the columns is one loop over
			 * every tile of the image, long enough to vectorise
			 * where a tile row (7 tiles of 14 pixels, say) is
			 * not. */
			for (int iy = 0; iy < H; iy++) {
				int row = iy + P;

				/* a loop, not memcpy: rows are short */
				for (int ix = 0; ix < W; ix++)
					line[P + ix] = src[(size_t)iy * W + ix];
				wino_cols(line, TW, cols + (size_t)(row & 1) * R +
				    (size_t)(row >> 1) * TW, 2 * R);
			}
			wino_rows(cols, R, TW, T, V + (size_t)c * N + (size_t)b * T,
			    vs);
		}
}

/* Images per chunk for scratch of nscratch floats of which fixed are
 * taken, per floats an image: as many as fit, up to B and within
 * WINO_FLOATS. */
static int
wino_chunk(size_t nscratch, size_t fixed, size_t per, int B)
{
	size_t room = nscratch - fixed - 32 * WINO_SKEW, c = room / per;

	if (c * per > WINO_FLOATS)
		c = WINO_FLOATS / per;
	return c < 1 ? 1 : c > (size_t)B ? B : (int)c;
}

/* Where the pieces of a C -> OC Winograd convolution of H x W inputs,
 * padding P, sit in its scratch (after the 16 * OC * C kernels), and
 * its images per chunk.  wino_conv and wino_weight_grad share it, so
 * that the tiles the one keeps are chunked as the other reads them. */
struct wino_layout {
	int OH, OW, TH, TW, T, chunk;
	float *cols, *line, *V;
};

static struct wino_layout
wino_layout(int C, int OC, int H, int W, int P, int B, float *scratch,
    size_t nscratch)
{
	struct wino_layout l;
	int WP;

	l.OH = H + 2 * P - 2;
	l.OW = W + 2 * P - 2;
	l.TH = (l.OH + 1) / 2;
	l.TW = (l.OW + 1) / 2;
	l.T = l.TH * l.TW;
	WP = 2 * l.TW + 2;
	l.cols = scratch + (size_t)16 * OC * C;
	l.line = l.cols + wino_cols_floats(l.TH, l.TW);
	l.V = l.line + (size_t)WP;
	l.chunk = wino_chunk(nscratch, l.V - scratch,
	    wino_per_image(C, OC, l.OH, l.OW), B);
	/* OpenBLAS takes its small-matrix kernel, without packing, for
	 * products of at most 10^6 multiply-adds: 110 GFLOP/s here against
	 * 87-92 for the same shapes just above. */
	while (l.chunk > 1 && (double)OC * C * l.chunk * l.T > WINO_SMALL_GEMM)
		l.chunk--;
	return l;
}

/* Y[k][n] = (A' m A)[k] + bv, k < 4, n < N, for the 16 planes of m ms
 * floats apart (one output channel's tiles), then max(0, Y) if relu.
 * A' = [1 1 1 0; 0 1 -1 -1].  Over all the tiles at once, so the loop
 * vectorises. */
static void
wino_out(const float *restrict m, size_t ms, size_t N, float bv, int relu,
    float *restrict Y)
{
	for (size_t n = 0; n < N; n++) {
		float s0[4], s1[4];

		for (int j = 0; j < 4; j++) {
			float m0 = m[j * ms + n];
			float m1 = m[(4 + j) * ms + n];
			float m2 = m[(8 + j) * ms + n];
			float m3 = m[(12 + j) * ms + n];

			s0[j] = m0 + m1 + m2;
			s1[j] = m1 - m2 - m3;
		}
		Y[n] = s0[0] + s0[1] + s0[2] + bv;
		Y[N + n] = s0[1] - s0[2] - s0[3] + bv;
		Y[2 * N + n] = s1[0] + s1[1] + s1[2] + bv;
		Y[3 * N + n] = s1[1] - s1[2] - s1[3] + bv;
	}
	for (size_t n = 0; relu && n < 4 * N; n++)
		Y[n] = Y[n] > 0 ? Y[n] : 0;
}

/* d[n] = the maximum of tile n's four outputs Y[k][n], n < N. */
static void
wino_pool(const float *restrict Y, size_t N, float *restrict d)
{
	for (size_t n = 0; n < N; n++) {
		float a = Y[n] > Y[N + n] ? Y[n] : Y[N + n];
		float c = Y[2 * N + n] > Y[3 * N + n] ? Y[2 * N + n] :
		    Y[3 * N + n];

		d[n] = a > c ? a : c;
	}
}

/* One output row d of OW floats from its tiles' left outputs y0 and
 * right outputs y0 + N. */
static void
wino_interleave(const float *restrict y0, size_t N, int OW,
    float *restrict d)
{
	const float *y1 = y0 + N;

	for (int k = 0; k < OW / 2; k++) {
		d[2 * k] = y0[k];
		d[2 * k + 1] = y1[k];
	}
	if (OW & 1)
		d[OW - 1] = y0[OW / 2];
}

/* y [OC][B][OH][OW] = conv(x [C][B][H][W], g) + bias, zero padding P,
 * OH = H + 2P - 2, OW = W + 2P - 2; then max(0, y) if fuse has
 * FUSE_RELU, and the maximum of each 2x2 block if it has FUSE_POOL
 * (OH and OW even: y is then [OC][B][OH/2][OW/2]).  g is
 * [OC][C][3][3]; or, if adjoint, [C][OC][3][3] turned round, which
 * makes this the input gradient of the convolution by g (pass its
 * output's gradient as x and P = 2 - pad).  bias may be NULL.  keep,
 * if not NULL, receives the transformed input for wino_weight_grad
 * (wino_kept floats).  scratch holds nscratch floats, at least
 * wino_fixed + wino_per_image. */
static void
wino_conv(const float *x, int C, int H, int W, int P, const float *g,
    int adjoint, const float *bias, int fuse, int OC, float *y, int B,
    float *keep, float *scratch, size_t nscratch)
{
	struct wino_layout l = wino_layout(C, OC, H, W, P, B, scratch,
	    nscratch);
	int OH = l.OH, OW = l.OW, TH = l.TH, TW = l.TW, T = l.T;
	int chunk = l.chunk;
	float *U = scratch, *cols = l.cols, *line = l.line, *V = l.V;

	wino_kernels(g, adjoint, C, OC, U);
	for (int b0 = 0; b0 < B; b0 += chunk) {
		int nb = B - b0 < chunk ? B - b0 : chunk;
		size_t N = (size_t)nb * T;
		size_t vs = (size_t)C * N + WINO_SKEW, ms = (size_t)OC * N +
		    WINO_SKEW;
		float *M = V + 16 * vs, *Y = M + 16 * ms;
		float *v = keep ? keep + (size_t)b0 * 16 * ((size_t)C * T +
		    WINO_SKEW) : V;

		wino_tiles(x, C, H, W, P, B, b0, nb, TH, TW, cols, line, v, vs);
		for (int e = 0; e < 16; e++)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC,
			    N, C, 1.0f, U + (size_t)e * OC * C, C,
			    v + e * vs, N, 0.0f, M + e * ms, N);
		for (int o = 0; o < OC; o++) {
			wino_out(M + (size_t)o * N, ms, N, bias ? bias[o] : 0,
			    fuse & FUSE_RELU, Y);
			if (fuse & FUSE_POOL) {
				/* A tile is a pooling block, and the pooled
				 * chunk is contiguous. */
				wino_pool(Y, N, y + ((size_t)o * B + b0) * T);
				continue;
			}
			for (int b = 0; b < nb; b++)
				for (int oy = 0; oy < OH; oy++)
					wino_interleave(Y + (size_t)(oy & 1) * 2 *
					    N + (size_t)b * T + (size_t)(oy / 2) *
					    TW, N, OW, y + ((size_t)o * B + b0 +
					    b) * OH * OW + (size_t)oy * OW);
		}
	}
}

/* d[e * ds + n] = (A g A')[e] for the T = TH * TW 2x2 tiles g of an
 * output gradient r, OH x OW, n = ty * TW + tx; q holds 4 * T floats,
 * zero where a tile reaches beyond the edge (never written here).
 * A' = [1 1 1 0; 0 1 -1 -1].  The tiles' corners are gathered into q
 * first, so that the transform is one loop over every tile of the
 * image. */
static void
wino_grad_tiles(const float *restrict r, int OH, int OW, int TH, int TW,
    float *restrict q, float *restrict d, size_t ds)
{
	size_t T = (size_t)TH * TW;
	float *g0 = q, *g1 = q + T, *g2 = q + 2 * T, *g3 = q + 3 * T;

	for (int ty = 0; ty < TH; ty++) {
		const float *r0 = r + (size_t)2 * ty * OW, *r1 = r0 + OW;
		size_t n = (size_t)ty * TW;

		for (int k = 0; 2 * k < OW; k++)
			g0[n + k] = r0[2 * k];
		for (int k = 0; 2 * k + 1 < OW; k++)
			g1[n + k] = r0[2 * k + 1];
		for (int k = 0; 2 * ty + 1 < OH && 2 * k < OW; k++)
			g2[n + k] = r1[2 * k];
		for (int k = 0; 2 * ty + 1 < OH && 2 * k + 1 < OW; k++)
			g3[n + k] = r1[2 * k + 1];
	}
	/* Row j of the tile's A g A' is t0[j], t0[j] + t1[j], t0[j] -
	 * t1[j], -t1[j] for t0 = (g0, g0 + g1, g0 - g1, -g1) and t1 the
	 * same of g2, g3. */
	/* Four planes at a time: sixteen store streams at once ran slower. */
	for (size_t n = 0; n < T; n++) {
		d[n] = g0[n];
		d[4 * ds + n] = g0[n] + g2[n];
		d[8 * ds + n] = g0[n] - g2[n];
		d[12 * ds + n] = -g2[n];
	}
	for (size_t n = 0; n < T; n++) {
		float a = g0[n] + g1[n], b = g2[n] + g3[n];

		d[ds + n] = a;
		d[5 * ds + n] = a + b;
		d[9 * ds + n] = a - b;
		d[13 * ds + n] = -b;
	}
	for (size_t n = 0; n < T; n++) {
		float a = g0[n] - g1[n], b = g2[n] - g3[n];

		d[2 * ds + n] = a;
		d[6 * ds + n] = a + b;
		d[10 * ds + n] = a - b;
		d[14 * ds + n] = -b;
	}
	for (size_t n = 0; n < T; n++) {
		d[3 * ds + n] = -g1[n];
		d[7 * ds + n] = -g1[n] - g3[n];
		d[11 * ds + n] = -g1[n] + g3[n];
		d[15 * ds + n] = g3[n];
	}
}

/* dW [OC][C][3][3] += the weight gradient of the convolution of x
 * [C][B][H][W], padding P, whose output has gradient dy [OC][B][OH][OW]:
 * each tile's 3x3 correlation of its 4x4 input with its 2x2 output
 * gradient is Winograd F(3x3, 2x2), the transpose of F(2x2, 3x3), and
 * the sum over tiles is taken inside the transform as 16 GEMMs of
 * [OC][tiles] x [tiles][C].  kept: x's tiles as wino_conv kept them,
 * or NULL.  Scratch as for wino_conv. */
static void
wino_weight_grad(const float *x, int C, int H, int W, int P,
    const float *dy, int OC, float *dW, int B, const float *kept,
    float *scratch, size_t nscratch)
{
	struct wino_layout l = wino_layout(C, OC, H, W, P, B, scratch,
	    nscratch);
	int OH = l.OH, OW = l.OW, TH = l.TH, TW = l.TW, T = l.T;
	int chunk = l.chunk;
	float *S = scratch, *cols = l.cols, *line = l.line, *V = l.V;
	size_t e1 = (size_t)OC * C;

	for (int b0 = 0; b0 < B; b0 += chunk) {
		int nb = B - b0 < chunk ? B - b0 : chunk;
		size_t N = (size_t)nb * T;
		size_t vs = (size_t)C * N + WINO_SKEW, ds = (size_t)OC * N +
		    WINO_SKEW;
		float *D = V + 16 * vs;
		const float *v = kept ? kept + (size_t)b0 * 16 * ((size_t)C * T +
		    WINO_SKEW) : V;

		if (kept == NULL)
			wino_tiles(x, C, H, W, P, B, b0, nb, TH, TW, cols, line, V,
			    vs);
		/* cols is free once the tiles are made; the corners beyond
		 * the edge are zeroed once for every image's tiles. */
		memset(cols, 0, 4 * (size_t)T * sizeof(float));
		for (int o = 0; o < OC; o++)
			for (int b = 0; b < nb; b++)
				wino_grad_tiles(dy + ((size_t)o * B + b0 + b) *
				    OH * OW, OH, OW, TH, TW, cols, D +
				    (size_t)o * N + (size_t)b * T, ds);
		for (int e = 0; e < 16; e++)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC,
			    C, N, 1.0f, D + e * ds, N, v + e * vs, N,
			    b0 > 0 ? 1.0f : 0.0f, S + e * e1, C);
	}
	/* dW += G' S G, G' = [1 .5 .5 0; 0 .5 -.5 0; 0 .5 .5 1] */
	for (size_t oc = 0; oc < e1; oc++) {
		float m[4][4], t[3][4];

		for (int e = 0; e < 16; e++)
			m[e / 4][e % 4] = S[e * e1 + oc];
		for (int j = 0; j < 4; j++) {
			t[0][j] = m[0][j] + 0.5f * (m[1][j] + m[2][j]);
			t[1][j] = 0.5f * (m[1][j] - m[2][j]);
			t[2][j] = 0.5f * (m[1][j] + m[2][j]) + m[3][j];
		}
		for (int i = 0; i < 3; i++) {
			float *w = dW + oc * 9 + i * 3;

			w[0] += t[i][0] + 0.5f * (t[i][1] + t[i][2]);
			w[1] += 0.5f * (t[i][1] - t[i][2]);
			w[2] += 0.5f * (t[i][1] + t[i][2]) + t[i][3];
		}
	}
}

/* x [C][B][H*W] -> y [OC][B][OH*OW]; W [OC][C*K*K], bias [OC].
 * fuse: FUSE_RELU, y = max(0, y); FUSE_POOL (Winograd only), 2x2 max
 * pooling after it. */
static void
conv_forward(const struct kz_net *n, const struct kz_layer *L,
    struct lbuf *lb, struct kz_work *w, const float *x, float *y, int B,
    int fuse, int train)
{
	const float *W = n->params + L->w_off, *bias = n->params + L->b_off;
	int ckk = L->in.c * L->k * L->k, chunk = conv_chunk(L, w, B);
	int relu = fuse & FUSE_RELU;
	size_t ohw = (size_t)L->out.h * L->out.w;

	if (wino_ok(L)) {
		wino_conv(x, L->in.c, L->in.h, L->in.w, L->pad, W, 0, bias,
		    fuse, L->out.c, y, B, train ? lb->tiles : NULL, w->col,
		    w->ncol);
		return;
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
		im2col(L, x, B, b0, nb, w->col);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
		    L->out.c, cols, ckk, 1.0f, W, ckk, w->col, cols,
		    1.0f, y + b0 * ohw, B * ohw);
		for (int oc = 0; relu && oc < L->out.c; oc++) {
			float *row = y + ((size_t)oc * B + b0) * ohw;

			for (size_t i = 0; i < cols; i++)
				row[i] = row[i] > 0 ? row[i] : 0;
		}
	}
}

/* dy [OC][B][OH*OW] -> dW, db (accumulated), dx [C][B][H*W] (may be NULL) */
static void
conv_backward(const struct kz_net *n, const struct kz_layer *L,
    const struct lbuf *lb, struct kz_work *w, const float *x,
    const float *dy, float *dx, int B)
{
	const float *W = n->params + L->w_off;
	float *dW = w->grad + L->w_off, *db = w->grad + L->b_off;
	int ckk = L->in.c * L->k * L->k, chunk = conv_chunk(L, w, B);
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
		    L->out.c, dW, B, lb->tiles, w->col, w->ncol);
	if (wino_dx)
		wino_conv(dy, L->out.c, L->out.h, L->out.w, 2 - L->pad, W, 1,
		    NULL, 0, L->in.c, dx, B, NULL, w->col, w->ncol);
	if (dx != NULL && !wino_dx)
		memset(dx, 0, shape_size(L->in) * B * sizeof(float));
	/* What is left for the patch products, chunk by chunk. */
	int patches = !wino_w || (dx != NULL && !wino_dx);

	for (int b0 = 0; patches && b0 < B; b0 += chunk) {
		int nb = B - b0 < chunk ? B - b0 : chunk;

		if (!wino_w) {
			im2col(L, x, B, b0, nb, w->col);
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

/* ---- dense ------------------------------------------------------------ */

/* x [F][B] -> y [N][B]; W [N][F], bias [N] */
static void
dense_forward(const struct kz_net *n, const struct kz_layer *L,
    const float *x, float *y, int B, int relu)
{
	const float *W = n->params + L->w_off, *bias = n->params + L->b_off;
	int F = (int)shape_size(L->in), N = L->out.c;

	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, B, F, 1.0f,
	    W, F, x, B, 0.0f, y, B);
	for (int i = 0; i < N; i++)
		for (int b = 0; b < B; b++) {
			float v = y[(size_t)i * B + b] + bias[i];

			y[(size_t)i * B + b] = relu && v < 0 ? 0 : v;
		}
}

static void
dense_backward(const struct kz_net *n, const struct kz_layer *L,
    struct kz_work *w, const float *x, const float *dy, float *dx, int B)
{
	const float *W = n->params + L->w_off;
	float *dW = w->grad + L->w_off, *db = w->grad + L->b_off;
	int F = (int)shape_size(L->in), N = L->out.c;

	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, F, B, 1.0f,
	    dy, B, x, B, 1.0f, dW, F);
	for (int i = 0; i < N; i++)
		db[i] += (float)sum_floats(dy + (size_t)i * B, B);
	if (dx != NULL)
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, B, N,
		    1.0f, W, F, dy, B, 0.0f, dx, B);
}

/* ---- flatten: [C][B][HW] <-> [C*HW][B] -------------------------------- */

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
flatten_forward(const struct kz_layer *L, const float *x, float *y, int B)
{
	size_t HW = (size_t)L->in.h * L->in.w;

	for (int c = 0; c < L->in.c; c++)
		transpose(x + (size_t)c * B * HW, B, HW, y + (size_t)c * HW * B);
}

static void
flatten_backward(const struct kz_layer *L, const float *dy, float *dx, int B)
{
	size_t HW = (size_t)L->in.h * L->in.w;

	for (int c = 0; c < L->in.c; c++)
		transpose(dy + (size_t)c * HW * B, HW, B, dx + (size_t)c * B * HW);
}

/* ---- element-wise: ReLU, dropout ------------------------------------- */

static void
relu_forward(const float *restrict x, float *restrict y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = x[i] > 0 ? x[i] : 0;
}

static void
relu_backward(const float *restrict y, const float *restrict dy,
    float *restrict dx, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dx[i] = y[i] > 0 ? dy[i] : 0;
}

static void
dropout_forward(const struct kz_layer *L, struct lbuf *lb, const float *x,
    float *y, size_t n, int train, struct kz_rng *rng)
{
	if (!train || L->p == 0) {
		memcpy(y, x, n * sizeof(float));
		for (size_t i = 0; i < n; i++)
			lb->aux[i] = 1;
		return;
	}
	/* 24 random bits per element are plenty. */
	uint64_t cut = (uint64_t)(L->p * 16777216.0);
	float keep = 1.0f / (1.0f - L->p);
	for (size_t i = 0; i < n; i++) {
		lb->aux[i] = (kz_rng_next(rng) >> 40) >= cut ? keep : 0;
		y[i] = x[i] * lb->aux[i];
	}
}

/* ---- pooling ------------------------------------------------------------- */

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

static void
pool_forward(const struct kz_layer *L, struct lbuf *lb, const float *x,
    float *y, int B, int train, int relu)
{
	int K = L->k, S = L->stride, H = L->in.h, W = L->in.w;
	int OH = L->out.h, OW = L->out.w;
	float inv = 1.0f / (K * K);

	for (size_t p = 0; p < (size_t)L->in.c * B; p++) {
		const float *src = x + p * H * W;
		float *dst = y + p * OH * OW;

		if (L->type == KZ_MAXPOOL && K == 2 && S == 2 && !train) {
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
				    dst + oy * OW, lb->idx + p * OH * OW +
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
					lb->idx[p * OH * OW + oy * OW + ox] = arg;
				} else {
					dst[oy * OW + ox] = sum * inv;
				}
			}
	}
	/* A ReLU before max pooling, done after it on a quarter of the
	 * values: the maximum of the ReLUs is the ReLU of the maximum. */
	for (size_t i = 0; relu && i < shape_size(L->out) * B; i++)
		y[i] = y[i] > 0 ? y[i] : 0;
}

/* relu: pass no gradient where the output is not positive (a ReLU
 * before the pooling, done by it). */
static void
pool_backward(const struct kz_layer *L, const struct lbuf *lb,
    const float *dy, float *dx, int B, int relu)
{
	int K = L->k, S = L->stride, H = L->in.h, W = L->in.w;
	int OH = L->out.h, OW = L->out.w;
	float inv = 1.0f / (K * K);

	if (L->type == KZ_MAXPOOL && K == 2 && S == 2 && H == 2 * OH &&
	    W == 2 * OW) {
		/* The blocks tile the input: every input is written once,
		 * and nothing needs zeroing first. */
		for (size_t p = 0; p < (size_t)L->in.c * B; p++)
			for (int oy = 0; oy < OH; oy++) {
				size_t o = p * OH * OW + oy * OW;

				pool2_row_backward(dy + o, lb->idx + o,
				    relu ? lb->out + o : NULL, W, OW,
				    2 * oy * W, dx + p * H * W + 2 * oy * W);
			}
		return;
	}
	memset(dx, 0, shape_size(L->in) * B * sizeof(float));
	for (size_t p = 0; p < (size_t)L->in.c * B; p++) {
		float *d = dx + p * H * W;
		const float *g = dy + p * OH * OW;

		for (int o = 0; o < OH * OW; o++) {
			if (L->type == KZ_MAXPOOL) {
				if (!relu || lb->out[p * OH * OW + o] > 0)
					d[lb->idx[p * OH * OW + o]] += g[o];
				continue;
			}
			int base = (o / OW) * S * W + (o % OW) * S;
			for (int i = 0; i < K; i++)
				for (int j = 0; j < K; j++)
					d[base + i * W + j] += g[o] * inv;
		}
	}
}

static void
gap_forward(const struct kz_layer *L, const float *x, float *y, int B)
{
	size_t hw = (size_t)L->in.h * L->in.w;

	for (size_t p = 0; p < (size_t)L->in.c * B; p++) {
		double s = 0;

		for (size_t i = 0; i < hw; i++)
			s += x[p * hw + i];
		y[p] = (float)(s / hw);
	}
}

static void
gap_backward(const struct kz_layer *L, const float *dy, float *dx, int B)
{
	size_t hw = (size_t)L->in.h * L->in.w;

	for (size_t p = 0; p < (size_t)L->in.c * B; p++)
		for (size_t i = 0; i < hw; i++)
			dx[p * hw + i] = dy[p] / hw;
}

/* ---- batch normalisation, per channel over batch and space ----------- */

/* One channel of m values: xh = (x - mu) * inv, y = gamma * xh + beta,
 * then max(0, y) if relu (a ReLU after the batch norm, done here while
 * the values are in registers). */
static void
bn_apply(const float *restrict x, size_t m, float mu, float inv,
    float gamma, float beta, int relu, float *restrict xh,
    float *restrict y)
{
	for (size_t i = 0; i < m; i++) {
		float v;

		xh[i] = (x[i] - mu) * inv;
		v = gamma * xh[i] + beta;
		y[i] = !relu || v > 0 ? v : 0;
	}
}

static void
bn_forward(const struct kz_net *n, const struct kz_layer *L, struct lbuf *lb,
    struct kz_work *w, const float *x, float *y, int B, int train, int relu)
{
	const float *gamma = n->params + L->w_off, *beta = n->params + L->b_off;
	const float *rmean = n->state + L->s_off;
	const float *rvar = rmean + L->in.c;
	size_t m = (size_t)B * L->in.h * L->in.w;

	for (int c = 0; c < L->in.c; c++) {
		const float *xc = x + c * m;
		float *yc = y + c * m, *xh = lb->aux + c * m;
		double mean, var;

		if (train) {
			/* E[x^2] - mean^2 in double over float lanes; the
			 * inputs here are O(1), so no cancellation to fear. */
			mean = sum_floats(xc, m) / m;
			var = dot_floats(xc, xc, m) / m - mean * mean;
			if (var < 0)
				var = 0;
			w->stats[L->s_off + c] = (float)mean;
			w->stats[L->s_off + L->in.c + c] = (float)var;
		} else {
			mean = rmean[c];
			var = rvar[c];
		}
		float inv = (float)(1.0 / sqrt(var + BN_EPS)), mu = (float)mean;
		lb->mean[c] = mu;
		lb->invstd[c] = inv;
		bn_apply(xc, m, mu, inv, gamma[c], beta[c], relu, xh, yc);
	}
}

static void
bn_backward(const struct kz_net *n, const struct kz_layer *L,
    const struct lbuf *lb, struct kz_work *w, const float *dy, float *dx,
    int B)
{
	const float *gamma = n->params + L->w_off;
	float *dgamma = w->grad + L->w_off, *dbeta = w->grad + L->b_off;
	size_t m = (size_t)B * L->in.h * L->in.w;

	for (int c = 0; c < L->in.c; c++) {
		const float *g = dy + c * m, *xh = lb->aux + c * m;
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

/* ---- dispatch ------------------------------------------------------------ */

static const float *layers_forward(const struct kz_net *,
    const struct kz_layer *, int, struct lbuf *, struct kz_work *,
    const float *, int, int, struct kz_rng *);

static void
res_forward(const struct kz_net *n, const struct kz_layer *L,
    struct lbuf *lb, struct kz_work *w, const float *x, float *y, int B,
    int train, struct kz_rng *rng)
{
	const struct kz_layer *S = L->sub;
	struct lbuf *sb = lb->sub;
	size_t size = shape_size(L->out) * B;

	/* main: bn relu conv bn relu conv; shortcut: x or conv1x1(relu(bn x)) */
	layers_forward(n, S, 6, sb, w, x, B, train, rng);
	if (L->nsub == 7)
		layers_forward(n, S + 6, 1, sb + 6, w, sb[1].out, B, train, rng);
	const float *body = sb[5].out, *sc = L->nsub == 7 ? sb[6].out : x;
	for (size_t i = 0; i < size; i++)
		y[i] = body[i] + sc[i];
}

/* fuse: the layers after a convolution or dense layer that it does
 * itself (FUSE_RELU, FUSE_POOL). */
static void
layer_forward(const struct kz_net *n, const struct kz_layer *L,
    struct lbuf *lb, struct kz_work *w, const float *x, int B, int train,
    int fuse, struct kz_rng *rng)
{
	size_t on = shape_size(L->out) * B;

	switch (L->type) {
	case KZ_CONV: conv_forward(n, L, lb, w, x, lb->out, B, fuse, train);
		break;
	case KZ_DENSE: dense_forward(n, L, x, lb->out, B, fuse & FUSE_RELU);
		break;
	case KZ_FLATTEN: flatten_forward(L, x, lb->out, B); break;
	case KZ_RELU: relu_forward(x, lb->out, on); break;
	case KZ_DROPOUT: dropout_forward(L, lb, x, lb->out, on, train, rng);
		break;
	case KZ_MAXPOOL:
	case KZ_AVGPOOL: pool_forward(L, lb, x, lb->out, B, train, 0);
		break;
	case KZ_GAP: gap_forward(L, x, lb->out, B); break;
	case KZ_BN: bn_forward(n, L, lb, w, x, lb->out, B, train, 0); break;
	case KZ_RES: res_forward(n, L, lb, w, x, lb->out, B, train, rng);
		break;
	}
}

/* Returns the last layer's output.  A ReLU before a max pooling is
 * done by the pooling, after it (kz_net_backward does the same).  In
 * inference a dropout layer is the identity and passes its input on
 * without a copy; a ReLU after a convolution or dense layer is done by
 * that layer, and so is a 2x2 max pooling after a Winograd convolution
 * and its ReLU, each tile being a pooling block.  The layers done by
 * another leave their own buffers unwritten (the backward pass reads
 * the others', and runs only after a training pass).  A list's last
 * layer is always written: callers read it. */
static const float *
layers_forward(const struct kz_net *n, const struct kz_layer *L, int nl,
    struct lbuf *lb, struct kz_work *w, const float *x, int B, int train,
    struct kz_rng *rng)
{
	for (int i = 0; i < nl; i++) {
		if (!train && L[i].type == KZ_DROPOUT)
			continue;
		int fuse = 0;

		if (!train && i + 2 < nl && L[i + 1].type == KZ_RELU &&
		    (L[i].type == KZ_CONV || L[i].type == KZ_DENSE))
			fuse = FUSE_RELU;
		if (fuse && i + 3 < nl && L[i].type == KZ_CONV &&
		    wino_ok(&L[i]) && L[i].out.h % 2 == 0 &&
		    L[i].out.w % 2 == 0 && L[i + 2].type == KZ_MAXPOOL &&
		    L[i + 2].k == 2 && L[i + 2].stride == 2)
			fuse |= FUSE_POOL;
		if (L[i].type == KZ_BN && i + 1 < nl &&
		    L[i + 1].type == KZ_RELU) {
			/* The ReLU's output, written by the batch norm: its
			 * own output is read by no backward pass. */
			bn_forward(n, &L[i], &lb[i], w, x, lb[i + 1].out, B,
			    train, 1);
			x = lb[++i].out;
			continue;
		}
		if (L[i].type == KZ_RELU && i + 1 < nl &&
		    L[i + 1].type == KZ_MAXPOOL) {
			pool_forward(&L[i + 1], &lb[i + 1], x, lb[i + 1].out, B,
			    train, 1);
			x = lb[++i].out;
			continue;
		}
		layer_forward(n, &L[i], &lb[i], w, x, B, train, fuse, rng);
		x = lb[i].out;
		i += (fuse & FUSE_RELU) + (fuse & FUSE_POOL ? 1 : 0);
	}
	return x;
}

static void layer_backward(const struct kz_net *, const struct kz_layer *,
    struct lbuf *, struct kz_work *, const float *, const float *, float *,
    int);

static void
res_backward(const struct kz_net *n, const struct kz_layer *L,
    struct lbuf *lb, struct kz_work *w, const float *x, const float *dy,
    float *dx, int B)
{
	const struct kz_layer *S = L->sub;
	struct lbuf *sb = lb->sub;
	float *g0 = lb->g[0], *g1 = lb->g[1], *ga = lb->g[2];
	size_t na = shape_size(S[1].out) * B;

	/* main path back to a = relu(bn(x)): dy -> conv2 -> relu -> bn -> conv1 */
	layer_backward(n, &S[5], &sb[5], w, sb[4].out, dy, g0, B);
	layer_backward(n, &S[4], &sb[4], w, sb[3].out, g0, g1, B);
	layer_backward(n, &S[3], &sb[3], w, sb[2].out, g1, g0, B);
	layer_backward(n, &S[2], &sb[2], w, sb[1].out, g0, ga, B);
	if (L->nsub == 7) {
		layer_backward(n, &S[6], &sb[6], w, sb[1].out, dy, g0, B);
		for (size_t i = 0; i < na; i++)
			ga[i] += g0[i];
	}
	if (dx == NULL) {
		/* still needed for the BN parameter gradients */
		layer_backward(n, &S[1], &sb[1], w, sb[0].out, ga, g1, B);
		layer_backward(n, &S[0], &sb[0], w, x, g1, NULL, B);
		return;
	}
	layer_backward(n, &S[1], &sb[1], w, sb[0].out, ga, g1, B);
	layer_backward(n, &S[0], &sb[0], w, x, g1, dx, B);
	if (L->nsub == 6) {
		size_t nx = shape_size(L->in) * B;

		for (size_t i = 0; i < nx; i++)
			dx[i] += dy[i];
	}
}

/* dy: gradient at L's output; x: L's input; writes dx (if not NULL). */
static void
layer_backward(const struct kz_net *n, const struct kz_layer *L,
    struct lbuf *lb, struct kz_work *w, const float *x, const float *dy,
    float *dx, int B)
{
	size_t on = shape_size(L->out) * B;

	switch (L->type) {
	case KZ_CONV: conv_backward(n, L, lb, w, x, dy, dx, B); return;
	case KZ_DENSE: dense_backward(n, L, w, x, dy, dx, B); return;
	case KZ_BN: bn_backward(n, L, lb, w, dy, dx, B); return;
	case KZ_RES: res_backward(n, L, lb, w, x, dy, dx, B); return;
	default: break;
	}
	if (dx == NULL)
		return;
	switch (L->type) {
	case KZ_FLATTEN: flatten_backward(L, dy, dx, B); break;
	case KZ_RELU: relu_backward(lb->out, dy, dx, on); break;
	case KZ_DROPOUT:
		for (size_t i = 0; i < on; i++)
			dx[i] = dy[i] * lb->aux[i];
		break;
	case KZ_MAXPOOL:
	case KZ_AVGPOOL: pool_backward(L, lb, dy, dx, B, 0); break;
	case KZ_GAP: gap_backward(L, dy, dx, B); break;
	default: break;
	}
}

/* ---- the whole net ---------------------------------------------------- */

const float *
kz_net_forward(const struct kz_net *n, struct kz_work *w, const float *x,
    int b, int train, struct kz_rng *rng)
{
	w->x = x;
	w->b = b;
	return layers_forward(n, n->layers, n->nlayers, w->lb, w, x, b, train,
	    rng);
}

double
kz_net_loss(const struct kz_net *n, struct kz_work *w, const int32_t *labels,
    const float *weights, const float *soft, int B, float scale, int *correct)
{
	const float *z = w->lb[n->nlayers - 1].out;
	float *dz = w->d[0];
	int C = n->nclasses, right = 0;
	double loss = 0;

	for (int b = 0; b < B; b++) {
		float mx = z[b];
		int arg = 0;

		for (int c = 1; c < C; c++)
			if (z[(size_t)c * B + b] > mx) {
				mx = z[(size_t)c * B + b];
				arg = c;
			}
		right += arg == labels[b];
		double s = 0;
		for (int c = 0; c < C; c++)
			s += exp(z[(size_t)c * B + b] - mx);
		double lse = mx + log(s), wb = weights ? weights[b] : 1.0;
		for (int c = 0; c < C; c++) {
			double p = exp(z[(size_t)c * B + b] - lse);
			double t = soft ? soft[(size_t)b * C + c] :
			    (c == labels[b]);

			if (t > 0)
				loss -= wb * t * (z[(size_t)c * B + b] - lse);
			dz[(size_t)c * B + b] = (float)(scale * wb * (p - t));
		}
	}
	if (correct)
		*correct = right;
	return loss;
}

void
kz_net_backward(const struct kz_net *n, struct kz_work *w, int B)
{
	float *dy = w->d[0], *dx = w->d[1];

	for (int i = n->nlayers - 1; i >= 0; i--) {
		const struct kz_layer *L = &n->layers[i];
		const float *x = i > 0 ? w->lb[i - 1].out : w->x;
		float *out = i > 0 ? dx : NULL;

		if (L->type == KZ_MAXPOOL && i > 0 &&
		    n->layers[i - 1].type == KZ_RELU) {
			/* The ReLU before a max pooling, done by the pooling
			 * (layers_forward), takes its gradient as the pooling
			 * scatters it. */
			out = i > 1 ? dx : NULL;
			if (out != NULL)
				pool_backward(L, &w->lb[i], dy, out, B, 1);
			i--;
		} else {
			layer_backward(n, L, &w->lb[i], w, x, dy, out, B);
		}
		float *t = dy;
		dy = dx;
		dx = t;
	}
}

void
kz_net_softmax(const struct kz_net *n, struct kz_work *w, int B, float *probs)
{
	const float *z = w->lb[n->nlayers - 1].out;
	int C = n->nclasses;

	for (int b = 0; b < B; b++) {
		float mx = z[b];
		double s = 0;

		for (int c = 1; c < C; c++)
			mx = z[(size_t)c * B + b] > mx ? z[(size_t)c * B + b] : mx;
		for (int c = 0; c < C; c++) {
			float e = expf(z[(size_t)c * B + b] - mx);

			probs[(size_t)b * C + c] = e;
			s += e;
		}
		for (int c = 0; c < C; c++)
			probs[(size_t)b * C + c] /= (float)s;
	}
}

/* ---- optimisers ------------------------------------------------------ */

static void
mark_decay(const struct kz_layer *L, int nl, uint8_t *d)
{
	for (int i = 0; i < nl; i++) {
		if (L[i].type == KZ_RES)
			mark_decay(L[i].sub, L[i].nsub, d);
		else if (L[i].type == KZ_CONV || L[i].type == KZ_DENSE)
			memset(d + L[i].w_off, 1, L[i].nw);
	}
}

int
kz_opt_init(struct kz_opt *o, const struct kz_net *n, struct kz_err *e)
{
	o->step = 0;
	o->m = calloc(n->nparams + 1, sizeof(float));
	o->v = calloc(n->nparams + 1, sizeof(float));
	o->decay = calloc(n->nparams + 1, 1);
	if (o->m == NULL || o->v == NULL || o->decay == NULL) {
		kz_opt_free(o);
		return kz_errf(e, "out of memory");
	}
	mark_decay(n->layers, n->nlayers, o->decay);
	return 0;
}

void
kz_opt_free(struct kz_opt *o)
{
	free(o->m);
	free(o->v);
	free(o->decay);
	o->m = o->v = NULL;
	o->decay = NULL;
}

void
kz_opt_step(struct kz_opt *o, struct kz_net *n, const float *g, float lr)
{
	o->step++;
	kz_opt_update(o, n, g, lr, 0, n->nparams);
}

/* The updates of params lo..hi-1, one function per optimiser: through
 * restrict pointers and with the settings in locals, the loops
 * vectorise (a store to m[i] could otherwise change o->rho). */
static void
sgd_update(float *restrict p, float *restrict m, const float *restrict g,
    const uint8_t *restrict decay, float lr, float wd, float momentum,
    int nesterov, size_t lo, size_t hi)
{
	for (size_t i = lo; i < hi; i++) {
		float gi = g[i] + (decay[i] ? wd * p[i] : 0);

		m[i] = momentum * m[i] + gi;
		p[i] -= lr * (nesterov ? gi + momentum * m[i] : m[i]);
	}
}

/* AdamW: weight decay decoupled from the adaptive step; a is the step
 * size with both bias corrections. */
static void
adam_update(float *restrict p, float *restrict m, float *restrict v,
    const float *restrict g, const uint8_t *restrict decay, float a,
    float lr, float wd, float beta1, float beta2, float eps, size_t lo,
    size_t hi)
{
	for (size_t i = lo; i < hi; i++) {
		m[i] = beta1 * m[i] + (1 - beta1) * g[i];
		v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
		p[i] -= a * m[i] / (sqrtf(v[i]) + eps) +
		    (decay[i] ? lr * wd * p[i] : 0);
	}
}

/* m: running E[g^2]; v: running E[dx^2] (Zeiler 2012). */
static void
adadelta_update(float *restrict p, float *restrict m, float *restrict v,
    const float *restrict g, const uint8_t *restrict decay, float lr,
    float wd, float rho, float eps, size_t lo, size_t hi)
{
	for (size_t i = lo; i < hi; i++) {
		float gi = g[i] + (decay[i] ? wd * p[i] : 0);

		m[i] = rho * m[i] + (1 - rho) * gi * gi;
		float dx = sqrtf(v[i] + eps) / sqrtf(m[i] + eps) * gi;
		v[i] = rho * v[i] + (1 - rho) * dx * dx;
		p[i] -= lr * dx;
	}
}

void
kz_opt_update(const struct kz_opt *o, struct kz_net *n, const float *g,
    float lr, size_t lo, size_t hi)
{
	switch (o->type) {
	case KZ_SGD:
		sgd_update(n->params, o->m, g, o->decay, lr, o->wd,
		    o->momentum, o->nesterov, lo, hi);
		break;
	case KZ_ADAM: {
		double c1 = 1 - pow(o->beta1, (double)o->step);
		double c2 = 1 - pow(o->beta2, (double)o->step);

		adam_update(n->params, o->m, o->v, g, o->decay,
		    (float)(lr * sqrt(c2) / c1), lr, o->wd, o->beta1, o->beta2,
		    o->eps, lo, hi);
		break;
	}
	case KZ_ADADELTA:
		adadelta_update(n->params, o->m, o->v, g, o->decay, lr, o->wd,
		    o->rho, o->eps, lo, hi);
		break;
	}
}
