/*
 * plan.c - a net's layers compiled once into steps, and the passes that
 * walk them: the forward pass in order, the backward pass the same
 * steps in reverse.
 *
 * Fusions are decided here, once per plan.  Both kinds of pass do a
 * batch norm with the ReLU after it (while the values are in
 * registers), and a ReLU before a max pooling after the pooling, on a
 * quarter of the values.  Inference also does a ReLU after a
 * convolution or dense layer inside it, and a 2x2 max pooling after a
 * Winograd convolution and its ReLU (each tile is a pooling block), and
 * leaves dropout out.  In a pre-activation residual block, an F(4x4)
 * convolution also takes the batch norm and ReLU before it, as it reads
 * its input, and the sum after it, as it writes its output: neither the
 * normalised input nor the sum's addend goes to memory.  Every
 * fusion gives the result of the layers one by one, bit for bit.
 *
 * The backward pass needs a gradient buffer per value still waiting for
 * its producer's backward.  They are assigned here by walking the steps
 * in reverse: a value's gradient is written by its first reader to come
 * (in reverse), and later readers add theirs; an add passes its output's
 * gradient to both inputs by sharing its buffer, without a copy.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "engine.h"

/* ---- compiling ------------------------------------------------------------ */

/* How many layers read each value, and the last of them. */
static void
count_readers(const struct kz_net *n, int *readers, int *reader)
{
	for (int i = 0; i < n->nlayers; i++)
		readers[i] = 0;
	for (int i = 0; i < n->nlayers; i++) {
		const struct kz_layer *L = &n->layers[i];

		if (L->src >= 0) {
			readers[L->src]++;
			reader[L->src] = i;
		}
		if (L->type == KZ_ADD && L->src2 >= 0) {
			readers[L->src2]++;
			reader[L->src2] = i;
		}
	}
}

/* Whether layer i's output goes to layer i + 1 alone, of type t. */
static int
feeds(const struct kz_net *n, const int *readers, const int *reader, int i,
    enum kz_layer_type t)
{
	return i + 1 < n->nlayers && readers[i] == 1 && reader[i] == i + 1 &&
	    n->layers[i + 1].type == t;
}

/* The step for the layers from i: one, or a group done together.
 * Returns the number of layers it takes. */
static int
group(const struct kz_net *n, const int *readers, const int *reader, int i,
    int train, struct kz_step *s)
{
	const struct kz_layer *L = &n->layers[i];

	*s = (struct kz_step){ .layer = i, .in = { L->src, -1 }, .out = i };
	if (L->type == KZ_ADD)
		s->in[1] = L->src2;
	if (!train && L->type == KZ_BN && L->in.c <= FUSE_BN_MAX &&
	    feeds(n, readers, reader, i, KZ_RELU) &&
	    feeds(n, readers, reader, i + 1, KZ_CONV) &&
	    wino_ok(&n->layers[i + 2])) {
		/* A pre-activation block's batch norm and ReLU, done by
		 * the F(4x4) convolution as it reads its input: the
		 * normalised values never go to memory. */
		int k = group(n, readers, reader, i + 2, train, s);

		s->in[0] = L->src;
		s->fwd |= FUSE_PRE;
		return k + 2;
	}
	if (L->type == KZ_BN && feeds(n, readers, reader, i, KZ_RELU)) {
		s->out = i + 1;
		s->fwd = s->bwd = FUSE_RELU;
		return 2;
	}
	if (L->type == KZ_RELU && feeds(n, readers, reader, i, KZ_MAXPOOL)) {
		s->layer = s->out = i + 1;
		s->fwd = s->bwd = FUSE_RELU;
		return 2;
	}
	if (!train && (L->type == KZ_CONV || L->type == KZ_DENSE)) {
		/* When classifying, a layer also does the ReLU that
		 * follows; a Winograd or direct convolution's last pass
		 * also the batch norm before it (from its running
		 * statistics, in the same arithmetic) and a 2x2 max pooling
		 * after it: one pass over the output, not several. */
		int j = i, wino = L->type == KZ_CONV && (wino_ok(L) ||
		    conv_direct_ok(L));

		if (wino && L->out.c <= FUSE_BN_MAX &&
		    feeds(n, readers, reader, j, KZ_BN)) {
			s->fwd |= FUSE_BN;
			j++;
		}
		if (feeds(n, readers, reader, j, KZ_RELU)) {
			s->fwd |= FUSE_RELU;
			j++;
			if (wino && L->out.h % 2 == 0 && L->out.w % 2 == 0 &&
			    feeds(n, readers, reader, j, KZ_MAXPOOL) &&
			    n->layers[j + 1].k == 2 &&
			    n->layers[j + 1].stride == 2) {
				s->fwd |= FUSE_POOL;
				j++;
			}
		}
		/* A residual block's sum, in the same pass, when the
		 * other addend is ready (a projection shortcut comes after
		 * the body). */
		if (L->type == KZ_CONV && wino_ok(L) && !(s->fwd & FUSE_POOL) &&
		    feeds(n, readers, reader, j, KZ_ADD)) {
			const struct kz_layer *A = &n->layers[j + 1];
			int other = A->src == j ? A->src2 : A->src;

			if (other < i) {
				s->in[1] = other;
				s->fwd |= FUSE_ADD;
				j++;
			}
		}
		s->out = j;
		return j - i + 1;
	}
	return 1;
}

/* A batch norm's ReLU before a max pooling: the pooling's backward
 * takes the ReLU's gradient as it scatters its own, on a quarter of the
 * values, and the batch norm's backward skips it. */
static void
pool_takes_relu(const struct kz_net *n, const int *readers,
    struct kz_step *st, int ns)
{
	for (int i = 1; i < ns; i++) {
		struct kz_step *q = &st[i - 1], *s = &st[i];

		if (n->layers[s->layer].type == KZ_MAXPOOL && s->fwd == 0 &&
		    n->layers[q->layer].type == KZ_BN && (q->fwd & FUSE_RELU) &&
		    s->in[0] == q->out && readers[q->out] == 1) {
			q->bwd &= ~FUSE_RELU;
			s->bwd |= FUSE_RELU;
		}
	}
}

/* Gradient buffers while compiling: how many values share each. */
struct slots {
	int *refs;
	int n;
};

/* The lowest buffer that no value holds and that is not in held[0..2]. */
static int
take_slot(struct slots *sl, const int *held)
{
	int k = 0;

	while (k < sl->n && (sl->refs[k] > 0 || k == held[0] ||
	    k == held[1] || k == held[2]))
		k++;
	if (k == sl->n)
		sl->refs[sl->n++] = 0;
	return k;
}

/* Assigns step s's gradient buffers; gslot[v] is value v's buffer, -1
 * before its first reader's backward.  -1 when an input's buffer is
 * shared with another value still waiting (no net built by spec.c). */
static int
assign_step(const struct kz_net *n, struct kz_step *s, int *gslot,
    struct slots *sl)
{
	const struct kz_layer_ops *ops = &kz_layer_types[n->layers[s->layer].type];
	int add = n->layers[s->layer].type == KZ_ADD;
	int held[3] = { -1, -1, -1 };

	s->gy = s->gmask = held[0] = gslot[s->out];
	s->gtmp = -1;
	if ((s->bwd & FUSE_RELU) && !ops->relu_inside && sl->refs[s->gy] > 1)
		s->gmask = held[1] = take_slot(sl, held);
	for (int j = 0; j < 2; j++) {
		int v = s->in[j];

		s->gx[j] = -1;
		s->gmode[j] = GRAD_NONE;
		if (v < 0)
			continue;
		if (gslot[v] < 0) {
			gslot[v] = add ? s->gy : take_slot(sl, held);
			s->gmode[j] = add ? GRAD_ALIAS : GRAD_SET;
			sl->refs[gslot[v]]++;
			if (!add)
				held[2] = gslot[v];
		} else {
			if (sl->refs[gslot[v]] > 1)
				return -1;
			s->gmode[j] = GRAD_ADD;
			if (!add)
				s->gtmp = take_slot(sl, held);
		}
		s->gx[j] = gslot[v];
	}
	sl->refs[s->gy]--;
	return 0;
}

/* The training plan's gradient buffers, by a walk in reverse. */
static int
assign_grads(const struct kz_net *n, struct kz_plan *P)
{
	int *gslot = malloc(n->nlayers * sizeof(int));
	struct slots sl = { calloc(2 * (size_t)P->nsteps + 4, sizeof(int)), 0 };
	int rc = -1;

	if (gslot == NULL || sl.refs == NULL)
		goto out;
	for (int i = 0; i < n->nlayers; i++)
		gslot[i] = -1;
	P->loss_slot = gslot[n->nlayers - 1] = sl.n++;
	sl.refs[P->loss_slot] = 1;
	for (int i = P->nsteps - 1; i >= 0; i--)
		if (assign_step(n, &P->steps[i], gslot, &sl) != 0)
			goto out;
	P->nslots = sl.n;
	rc = 0;
out:
	free(gslot);
	free(sl.refs);
	return rc;
}

/* Compiles one plan: steps by group(), inference without dropout (its
 * readers read its input instead). */
static struct kz_plan *
compile(const struct kz_net *n, int train, int *readers, int *reader,
    int *alias)
{
	struct kz_plan *P = calloc(1, sizeof(*P));

	if (P == NULL || (P->steps = calloc(n->nlayers,
	    sizeof(*P->steps))) == NULL) {
		kz_plan_free(P);
		return NULL;
	}
	for (int i = 0; i < n->nlayers;) {
		struct kz_step *s = &P->steps[P->nsteps];
		int src = n->layers[i].src;

		if (!train && n->layers[i].type == KZ_DROPOUT) {
			alias[i] = src < 0 ? src : alias[src];
			i++;
			continue;
		}
		int took = group(n, readers, reader, i, train, s);
		for (int j = 0; j < 2; j++)
			if (s->in[j] >= 0)
				s->in[j] = alias[s->in[j]];
		for (int j = i; j < i + took; j++)
			alias[j] = s->out;
		i += took;
		P->nsteps++;
	}
	if (train) {
		pool_takes_relu(n, readers, P->steps, P->nsteps);
		if (assign_grads(n, P) != 0) {
			kz_plan_free(P);
			return NULL;
		}
	}
	return P;
}

int
kz_plan_compile(struct kz_net *n)
{
	int *v = malloc(3 * (size_t)n->nlayers * sizeof(int));

	if (v == NULL)
		return -1;
	count_readers(n, v, v + n->nlayers);
	n->plan[0] = compile(n, 0, v, v + n->nlayers, v + 2 * n->nlayers);
	n->plan[1] = compile(n, 1, v, v + n->nlayers, v + 2 * n->nlayers);
	free(v);
	return n->plan[0] && n->plan[1] ? 0 : -1;
}

void
kz_plan_free(struct kz_plan *p)
{
	if (p == NULL)
		return;
	free(p->steps);
	free(p);
}

/* ---- running ------------------------------------------------------------- */

/* Value v of the last forward pass: layer v's output, or the input. */
static const float *
value(const struct kz_work *w, int v)
{
	return v < 0 ? w->x : w->lb[v].out;
}

/* What step s's layer works on, but for the gradients. */
static struct kz_pass
step_pass(const struct kz_net *n, struct kz_work *w, const struct kz_step *s,
    int B, int train)
{
	return (struct kz_pass){ .n = n, .L = &n->layers[s->layer],
	    .lb = &w->lb[s->layer], .w = w, .x = value(w, s->in[0]),
	    .x2 = s->in[1] >= 0 ? value(w, s->in[1]) : NULL,
	    .y = w->lb[s->out].out, .B = B, .train = train };
}

const float *
kz_net_forward(const struct kz_net *n, struct kz_work *w, const float *x,
    int b, int train, struct kz_rng *rng)
{
	const struct kz_plan *P = n->plan[train != 0];

	w->x = x;
	w->b = b;
	for (int i = 0; i < P->nsteps; i++) {
		const struct kz_step *s = &P->steps[i];
		struct kz_pass p = step_pass(n, w, s, b, train != 0);

		p.fuse = s->fwd;
		p.rng = rng;
		kz_layer_types[p.L->type].forward(&p);
	}
	return w->lb[n->nlayers - 1].out;
}

/* a[i] += b[i], i < n. */
static void
add_floats(float *restrict a, const float *restrict b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		a[i] += b[i];
}

/* Step s backward: its output's gradient through the step's ReLU, then
 * its layer's backward into its inputs' gradients (an add's: shared,
 * or added). */
static void
step_backward(const struct kz_net *n, struct kz_work *w,
    const struct kz_step *s, int B)
{
	struct kz_pass p = step_pass(n, w, s, B, 1);
	const struct kz_layer_ops *ops = &kz_layer_types[p.L->type];
	size_t nin = shape_size(p.L->in) * B;
	float *dy = w->g[s->gy];

	p.fuse = s->bwd;
	if ((s->bwd & FUSE_RELU) && !ops->relu_inside) {
		size_t ny = shape_size(n->layers[s->out].out) * B;

		if (s->gmask == s->gy)
			relu_grad_inplace(p.y, dy, ny);
		else
			relu_grad(p.y, dy, w->g[s->gmask], ny);
		dy = w->g[s->gmask];
		p.fuse &= ~FUSE_RELU;
	}
	if (p.L->type == KZ_ADD) {
		for (int j = 0; j < 2; j++)
			if (s->gmode[j] == GRAD_ADD)
				add_floats(w->g[s->gx[j]], dy, nin);
		return;
	}
	p.dy = dy;
	p.dx = s->gmode[0] == GRAD_SET ? w->g[s->gx[0]] :
	    s->gmode[0] == GRAD_ADD ? w->g[s->gtmp] : NULL;
	if (p.dx == NULL && p.L->nw + p.L->nb == 0)
		return;
	ops->backward(&p);
	if (s->gmode[0] == GRAD_ADD)
		add_floats(w->g[s->gx[0]], w->g[s->gtmp], nin);
}

void
kz_net_backward(const struct kz_net *n, struct kz_work *w, int B)
{
	const struct kz_plan *P = n->plan[1];

	for (int i = P->nsteps - 1; i >= 0; i--)
		step_backward(n, w, &P->steps[i], B);
}

double
kz_net_loss(const struct kz_net *n, struct kz_work *w, const int32_t *labels,
    const float *weights, const float *soft, float smooth, int B, float scale,
    int *correct)
{
	const float *z = w->lb[n->nlayers - 1].out;
	float *dz = w->g[n->plan[1]->loss_slot];
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

			t = (1 - smooth) * t + smooth / C;

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

/* The value the inference plan's last step, the output layer, reads:
 * a layer's index, or -1 for the net's input. */
static int
output_input(const struct kz_net *n)
{
	const struct kz_plan *P = n->plan[0];

	return P->steps[P->nsteps - 1].in[0];
}

int
kz_net_nfeatures(const struct kz_net *n)
{
	int i = output_input(n);

	return (int)(i < 0 ? shape_size(n->in) : shape_size(n->layers[i].out));
}

void
kz_net_features(const struct kz_net *n, const struct kz_work *w, int B,
    float *feat)
{
	int i = output_input(n);
	struct kz_shape s = i < 0 ? n->in : n->layers[i].out;
	const float *v = i < 0 ? w->x : w->lb[i].out;
	size_t hw = (size_t)s.h * s.w, F = shape_size(s);

	/* [C][B][H*W] to [B][C*H*W]. */
	for (int b = 0; b < B; b++)
		for (int c = 0; c < s.c; c++)
			memcpy(feat + b * F + c * hw, v + ((size_t)c * B + b) *
			    hw, hw * sizeof(float));
}
