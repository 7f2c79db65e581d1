/*
 * opt.c - optimisers: SGD with momentum (and Nesterov's), AdamW and
 * Adadelta, elementwise over a range of parameters so that callers can
 * split one step over threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "engine.h"
#include "opt.h"

int
kz_opt_init(struct kz_opt *o, const struct kz_net *n, struct kz_err *e)
{
	o->step = 0;
	o->m = calloc(n->nparams + 1, sizeof(float));
	o->v = calloc(n->nparams + 1, sizeof(float));
	o->kind = calloc(n->nparams + 1, 1);
	if (o->m == NULL || o->v == NULL || o->kind == NULL) {
		kz_opt_free(o);
		return kz_errf(e, "out of memory");
	}
	/* The weights of linear maps decay; biases and BN's do not. */
	for (int i = 0; i < n->nlayers; i++) {
		const struct kz_layer *L = &n->layers[i];

		if (kz_layer_types[L->type].linear)
			memset(o->kind + L->w_off, KZ_PARAM_DECAY, L->nw);
		else if (L->type == KZ_BN)
			memset(o->kind + L->b_off, KZ_PARAM_BN_BIAS, L->nb);
	}
	return 0;
}

void
kz_opt_freeze(struct kz_opt *o, const struct kz_layer *L)
{
	memset(o->kind + L->w_off, KZ_PARAM_FROZEN, L->nw);
	memset(o->kind + L->b_off, KZ_PARAM_FROZEN, L->nb);
}

void
kz_opt_free(struct kz_opt *o)
{
	free(o->m);
	free(o->v);
	free(o->kind);
	o->m = o->v = NULL;
	o->kind = NULL;
}

/* The updates of params lo..hi-1, one function per optimiser: through
 * restrict pointers and with the settings in locals, the loops
 * vectorise (a store to m[i] could otherwise change o->rho). */
static void
sgd_update(float *restrict p, float *restrict m, const float *restrict g,
    const uint8_t *restrict kind, const float *rate, float wd,
    float momentum, int nesterov, size_t lo, size_t hi)
{
	for (size_t i = lo; i < hi; i++) {
		float gi = g[i] + (kind[i] == KZ_PARAM_DECAY ? wd * p[i] : 0);

		m[i] = momentum * m[i] + gi;
		p[i] -= rate[kind[i]] * (nesterov ? gi + momentum * m[i] : m[i]);
	}
}

/* AdamW: weight decay decoupled from the adaptive step; rate holds each
 * kind's step size with both bias corrections. */
static void
adam_update(float *restrict p, float *restrict m, float *restrict v,
    const float *restrict g, const uint8_t *restrict kind, const float *rate,
    float lr, float wd, float beta1, float beta2, float eps, size_t lo,
    size_t hi)
{
	for (size_t i = lo; i < hi; i++) {
		m[i] = beta1 * m[i] + (1 - beta1) * g[i];
		v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
		p[i] -= rate[kind[i]] * m[i] / (sqrtf(v[i]) + eps) +
		    (kind[i] == KZ_PARAM_DECAY ? lr * wd * p[i] : 0);
	}
}

/* m: running E[g^2]; v: running E[dx^2] (Zeiler 2012). */
static void
adadelta_update(float *restrict p, float *restrict m, float *restrict v,
    const float *restrict g, const uint8_t *restrict kind, const float *rate,
    float wd, float rho, float eps, size_t lo, size_t hi)
{
	for (size_t i = lo; i < hi; i++) {
		float gi = g[i] + (kind[i] == KZ_PARAM_DECAY ? wd * p[i] : 0);

		m[i] = rho * m[i] + (1 - rho) * gi * gi;
		float dx = sqrtf(v[i] + eps) / sqrtf(m[i] + eps) * gi;
		v[i] = rho * v[i] + (1 - rho) * dx * dx;
		p[i] -= rate[kind[i]] * dx;
	}
}

KZ_HOT void
kz_opt_update(const struct kz_opt *o, struct kz_net *n, const float *g,
    float lr, size_t lo, size_t hi)
{
	/* Each kind's rate, by enum kz_param_kind.  A multiplier of 1
	 * gives lr itself, so the default trains the same bytes as before
	 * the multiplier existed. */
	float mult = o->bn_bias_lr, rate[4] = { lr, lr, lr * mult, 0 };

	switch (o->type) {
	case KZ_SGD:
		sgd_update(n->params, o->m, g, o->kind, rate, o->wd,
		    o->momentum, o->nesterov, lo, hi);
		break;
	case KZ_ADAM: {
		double c1 = 1 - pow(o->beta1, (double)o->step);
		double c2 = 1 - pow(o->beta2, (double)o->step);
		float a = (float)(lr * sqrt(c2) / c1);
		float step[4] = { a, a, a * mult, 0 };

		adam_update(n->params, o->m, o->v, g, o->kind, step, lr, o->wd,
		    o->beta1, o->beta2, o->eps, lo, hi);
		break;
	}
	case KZ_ADADELTA:
		adadelta_update(n->params, o->m, o->v, g, o->kind, rate, o->wd,
		    o->rho, o->eps, lo, hi);
		break;
	}
}
