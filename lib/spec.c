/*
 * spec.c - building a net from its architecture string: tokens parsed
 * by the table of layer types, residual blocks expanded into layers,
 * shapes, parameter offsets and initial values.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* Layers one layer as written may become: a residual block is 7, or 8
 * with its projection. */
#define LAYERS_PER_BLOCK 8

/* A positive integer at *p, at most 2^20; advances *p past it. */
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

/* Options like k3 s2 p1 after a layer's argument, of the letters in
 * allowed; "p0" is the one zero allowed. */
static int
parse_opts(const char *p, const char *allowed, struct kz_layer *L)
{
	while (*p) {
		int *dst, v;
		char c = *p++;

		if (allowed == NULL || strchr(allowed, c) == NULL)
			return -1;
		dst = c == 'k' ? &L->k : c == 's' ? &L->stride : &L->pad;
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

/* The argument after a layer's name at p, by kind, then its options. */
static int
parse_arg(const char *p, const struct kz_layer_ops *ops, struct kz_layer *L)
{
	char *end;

	switch (ops->arg) {
	case ARG_NONE:
		return *p ? -1 : 0;
	case ARG_CHANNELS:
		if (parse_int(&p, &L->out.c) != 0)
			return -1;
		break;
	case ARG_KERNEL:
		if (parse_int(&p, &L->k) != 0)
			return -1;
		L->stride = L->k;
		break;
	case ARG_PROB:
		L->p = strtof(p, &end);
		return end == p || *end || !(L->p >= 0 && L->p < 1) ? -1 : 0;
	}
	return parse_opts(p, ops->opts, L);
}

/* Fills L from one token (shapes are set later); *block is set for a
 * residual block, "resC[sS]", whose channels and stride land in L.
 * In an MLP a bare number is a dense layer. */
static int
parse_token(const char *tok, int mlp, struct kz_layer *L, int *block)
{
	memset(L, 0, sizeof(*L));
	L->k = 3;
	L->stride = 1;
	*block = 0;
	if (mlp && isdigit((unsigned char)tok[0])) {
		L->type = KZ_DENSE;
		return parse_arg(tok, &kz_layer_types[KZ_DENSE], L);
	}
	if (strncmp(tok, "res", 3) == 0) {
		static const struct kz_layer_ops res = { .arg = ARG_CHANNELS,
		    .opts = "s" };

		*block = 1;
		return parse_arg(tok + 3, &res, L);
	}
	for (int t = 0; t < KZ_NTYPES; t++) {
		const struct kz_layer_ops *ops = &kz_layer_types[t];
		size_t len = ops->name ? strlen(ops->name) : 0;

		if (len == 0 || strncmp(tok, ops->name, len) != 0 ||
		    (ops->arg == ARG_NONE && tok[len] != '\0'))
			continue;
		L->type = t;
		return parse_arg(tok + len, ops, L);
	}
	return -1;
}

/* The net being built: its layers so far. */
struct build {
	const char *arch;
	struct kz_shape input;
	struct kz_layer *L;
	int n;
	int written;			/* layers as written, a block one, with
					   the flatten and ReLUs added */
	struct kz_err *e;
};

/* The shape of value v: layer v's output, or the net's input for -1. */
static struct kz_shape
value_shape(const struct build *b, int v)
{
	return v < 0 ? b->input : b->L[v].out;
}

/* Appends layer l reading src (and src2), its shape from src's; -1
 * naming tok when it cannot apply or (tok not NULL: a layer the spec
 * asked for) is too large.  Returns the new layer's index otherwise. */
static int
append(struct build *b, struct kz_layer l, int src, int src2,
    const char *tok)
{
	char why[128];
	struct kz_layer *L = &b->L[b->n];

	*L = l;
	L->src = src;
	L->src2 = src2;
	L->in = value_shape(b, src);
	if (kz_layer_types[L->type].shape(L, why, sizeof(why)) != 0)
		return kz_errf(b->e, "architecture \"%s\": token \"%s\": %s",
		    b->arch, tok ? tok : "(added)", why);
	if (tok != NULL && (shape_size(L->out) > MAX_ACTIVATION ||
	    L->nw > MAX_PARAMS))
		return kz_errf(b->e, "architecture \"%s\": token \"%s\" makes "
		    "a layer too large", b->arch, tok);
	return b->n++;
}

/* A pre-activation residual block of C channels, stride S, on value x:
 * bn relu conv3 bn relu conv3, added to x, or where the shape changes
 * to a 1x1 convolution (stride S) of the first ReLU's output.  The
 * layers' order is the parameters' order in model files. */
static int
append_block(struct build *b, int C, int S, int x, const char *tok)
{
	struct kz_layer bn = { .type = KZ_BN }, relu = { .type = KZ_RELU };
	struct kz_layer c1 = { .type = KZ_CONV, .k = 3, .pad = 1, .stride = S,
	    .out.c = C };
	struct kz_layer c2 = { .type = KZ_CONV, .k = 3, .pad = 1, .stride = 1,
	    .out.c = C };
	struct kz_layer proj = { .type = KZ_CONV, .k = 1, .pad = 0,
	    .stride = S, .out.c = C };
	struct kz_layer add = { .type = KZ_ADD };
	int a, body, sc = x;

	if (append(b, bn, x, -1, tok) < 0 ||
	    (a = append(b, relu, b->n - 1, -1, tok)) < 0 ||
	    append(b, c1, a, -1, tok) < 0 ||
	    append(b, bn, b->n - 1, -1, tok) < 0 ||
	    append(b, relu, b->n - 1, -1, tok) < 0 ||
	    (body = append(b, c2, b->n - 1, -1, tok)) < 0)
		return -1;
	if ((S != 1 || value_shape(b, x).c != C) &&
	    (sc = append(b, proj, a, -1, tok)) < 0)
		return -1;
	return append(b, add, body, sc, tok);
}

/* Appends what one token stands for: a layer (after a flatten when a
 * dense layer follows spatial ones, and before a ReLU in an MLP), or
 * a residual block. */
static int
append_token(struct build *b, const char *tok, int mlp)
{
	struct kz_layer l;
	int block;

	if (parse_token(tok, mlp, &l, &block) != 0)
		return kz_errf(b->e, "architecture \"%s\": bad token \"%s\"",
		    b->arch, tok);
	b->written++;
	if (block)
		return append_block(b, l.out.c, l.stride, b->n - 1, tok);
	struct kz_shape s = value_shape(b, b->n - 1);
	if (l.type == KZ_DENSE && (s.h > 1 || s.w > 1)) {
		b->written++;
		append(b, (struct kz_layer){ .type = KZ_FLATTEN }, b->n - 1,
		    -1, NULL);
	}
	if (append(b, l, b->n - 1, -1, tok) < 0)
		return -1;
	if (mlp && l.type == KZ_DENSE) {
		b->written++;
		append(b, (struct kz_layer){ .type = KZ_RELU }, b->n - 1, -1,
		    NULL);
	}
	return 0;
}

/* Parses body, comma-separated tokens, into b's layers; then the
 * classifier: a flatten if needed and a dense layer to nclasses. */
static int
build_layers(struct build *b, const char *body, int mlp, int nclasses)
{
	char tok[64];

	for (const char *p = body; *p;) {
		size_t len = strcspn(p, ",");

		if (len == 0 || len >= sizeof(tok))
			return kz_errf(b->e, "architecture \"%s\": empty or "
			    "over-long token at offset %td", b->arch, p - b->arch);
		memcpy(tok, p, len);
		tok[len] = '\0';
		p += len + (p[len] == ',');
		if (b->written + 3 >= MAX_LAYERS)
			return kz_errf(b->e, "architecture \"%s\": more than %d "
			    "layers", b->arch, MAX_LAYERS - 3);
		if (append_token(b, tok, mlp) < 0)
			return -1;
	}
	struct kz_shape s = value_shape(b, b->n - 1);
	if (s.h > 1 || s.w > 1)
		append(b, (struct kz_layer){ .type = KZ_FLATTEN }, b->n - 1, -1,
		    NULL);
	append(b, (struct kz_layer){ .type = KZ_DENSE, .out.c = nclasses },
	    b->n - 1, -1, NULL);
	return 0;
}

/* Gives every layer its offsets in the parameters and the state, in
 * layer order. */
static void
assign_offsets(struct kz_net *n)
{
	for (int i = 0; i < n->nlayers; i++) {
		struct kz_layer *L = &n->layers[i];

		L->w_off = n->nparams;
		n->nparams += L->nw;
		L->b_off = n->nparams;
		n->nparams += L->nb;
		L->s_off = n->nstate;
		n->nstate += L->ns;
	}
}

/* The architecture's kind: its tokens after the prefix, and whether a
 * bare number is a dense layer. */
static int
arch_body(const char *arch, const char **body, int *mlp, struct kz_err *e)
{
	if (strcmp(arch, "linear") == 0) {
		*body = "";
		*mlp = 1;
	} else if (strncmp(arch, "mlp:", 4) == 0) {
		*body = arch + 4;
		*mlp = 1;
	} else if (strncmp(arch, "cnn:", 4) == 0) {
		*body = arch + 4;
		*mlp = 0;
	} else {
		return kz_errf(e, "architecture \"%s\": expected linear, "
		    "mlp:H,... or cnn:SPEC", arch);
	}
	return 0;
}

/* Parses arch into b's layers (allocated; the caller frees b->L). */
static int
parse_arch(struct build *b, const char *arch, int nclasses, struct kz_err *e)
{
	const char *body = "";
	int mlp = 0;

	if (arch_body(arch, &body, &mlp, e) != 0)
		return -1;
	/* Room for every token to be a block, and the classifier: at
	 * most MAX_LAYERS tokens get this far. */
	size_t ntok = 1;
	for (const char *p = body; *p; p++)
		ntok += *p == ',';
	if (ntok > MAX_LAYERS)
		ntok = MAX_LAYERS;
	if ((b->L = calloc(ntok * LAYERS_PER_BLOCK + 4, sizeof(*b->L))) ==
	    NULL)
		return kz_errf(e, "out of memory");
	return build_layers(b, body, mlp, nclasses);
}

void
kz_net_init(struct kz_net *n, enum kz_init scheme, int zero_res,
    uint64_t seed)
{
	struct kz_rng r;

	kz_rng_seed(&r, seed);
	for (int i = 0; i < n->nlayers; i++)
		if (kz_layer_types[n->layers[i].type].init != NULL)
			kz_layer_types[n->layers[i].type].init(&n->layers[i],
			    n->params, n->state, scheme, &r);
	/* An add's first input is its block's last convolution (see
	 * append_block): zero, the block adds nothing at first, and a
	 * deep net starts as a shallow one. */
	for (int i = 0; zero_res && i < n->nlayers; i++) {
		const struct kz_layer *L;

		if (n->layers[i].type != KZ_ADD)
			continue;
		L = &n->layers[n->layers[i].src];
		memset(n->params + L->w_off, 0, L->nw * sizeof(float));
		memset(n->params + L->b_off, 0, L->nb * sizeof(float));
	}
}

int
kz_net_size(const char *arch, struct kz_shape in, int nclasses,
    size_t *nparams, size_t *nstate, struct kz_err *e)
{
	struct build b = { .arch = arch, .input = in, .e = e };
	int rc = parse_arch(&b, arch, nclasses, e);

	*nparams = *nstate = 0;
	for (int i = 0; rc == 0 && i < b.n; i++) {
		*nparams += b.L[i].nw + b.L[i].nb;
		*nstate += b.L[i].ns;
	}
	free(b.L);
	return rc;
}

struct kz_net *
kz_net_new(const char *arch, struct kz_shape in, int nclasses, uint64_t seed,
    struct kz_err *e)
{
	struct build b = { .arch = arch, .input = in, .e = e };
	struct kz_net *n = NULL;

	if (parse_arch(&b, arch, nclasses, e) != 0) {
		free(b.L);
		return NULL;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL ||
	    (n->layers = calloc(b.n, sizeof(*b.L))) == NULL ||
	    (n->spec = strdup(arch)) == NULL)
		goto oom;
	memcpy(n->layers, b.L, b.n * sizeof(*b.L));
	free(b.L);
	b.L = NULL;
	n->nlayers = b.n;
	n->in = in;
	n->nclasses = nclasses;
	assign_offsets(n);
	if (n->nparams > MAX_PARAMS) {
		kz_errf(e, "architecture \"%s\": %zu parameters are more than "
		    "%u", arch, n->nparams, MAX_PARAMS);
		kz_net_free(n);
		return NULL;
	}
	if ((n->params = calloc(n->nparams + 1, sizeof(float))) == NULL ||
	    (n->state = calloc(n->nstate + 1, sizeof(float))) == NULL ||
	    kz_plan_compile(n) != 0)
		goto oom;
	kz_net_init(n, KZ_INIT_FANIN, 0, seed);
	return n;
oom:
	free(b.L);
	kz_net_free(n);
	kz_errf(e, "out of memory");
	return NULL;
}

void
kz_net_free(struct kz_net *n)
{
	if (n == NULL)
		return;
	kz_plan_free(n->plan[0]);
	kz_plan_free(n->plan[1]);
	free(n->layers);
	free(n->params);
	free(n->state);
	free(n->spec);
	free(n);
}

int
kz_net_adopt(struct kz_net *dst, const struct kz_net *src, struct kz_err *e)
{
	int last = dst->nlayers - 1;

	if (src->nlayers != dst->nlayers || src->in.c != dst->in.c ||
	    src->in.h != dst->in.h || src->in.w != dst->in.w)
		return kz_errf(e, "%d layers reading %dx%d, not the %d "
		    "layers reading %dx%d of \"%s\"", src->nlayers,
		    src->in.w, src->in.h, dst->nlayers, dst->in.w,
		    dst->in.h, dst->spec);
	for (int i = 0; i <= last; i++) {
		const struct kz_layer *a = &src->layers[i];
		const struct kz_layer *b = &dst->layers[i];
		/* The output layer alone may map to another number of
		 * classes: then its weights are not taken. */
		int out_c = i == last ? b->out.c : a->out.c;

		if (a->type != b->type || a->src != b->src ||
		    a->src2 != b->src2 || a->k != b->k ||
		    a->stride != b->stride || a->pad != b->pad ||
		    a->in.c != b->in.c || a->in.h != b->in.h ||
		    a->in.w != b->in.w || out_c != b->out.c ||
		    a->out.h != b->out.h || a->out.w != b->out.w)
			return kz_errf(e, "its layer %d is not that of \"%s\"",
			    i + 1, dst->spec);
	}
	for (int i = 0; i <= last; i++) {
		const struct kz_layer *a = &src->layers[i];
		const struct kz_layer *b = &dst->layers[i];

		if (i == last && a->out.c != b->out.c)
			break;
		memcpy(dst->params + b->w_off, src->params + a->w_off,
		    b->nw * sizeof(float));
		memcpy(dst->params + b->b_off, src->params + a->b_off,
		    b->nb * sizeof(float));
		memcpy(dst->state + b->s_off, src->state + a->s_off,
		    b->ns * sizeof(float));
	}
	return 0;
}

double
kz_net_flops(const struct kz_net *n)
{
	double f = 0;

	for (int i = 0; i < n->nlayers; i++) {
		const struct kz_layer *L = &n->layers[i];

		if (kz_layer_types[L->type].linear)
			f += (double)L->nw * L->out.h * L->out.w;
	}
	return f;
}
