/*
 * opt.h - optimisers of a net's parameters.  Part of the kz library.
 */
#ifndef KZ_OPT_H
#define KZ_OPT_H

#include "net.h"

enum kz_opt_type { KZ_SGD, KZ_ADAM, KZ_ADADELTA };

/* What a parameter is, for the update: a weight that decays, a batch
 * norm's bias (which may learn faster), one that stays as it is, or
 * none of these. */
enum kz_param_kind {
	KZ_PARAM_PLAIN, KZ_PARAM_DECAY, KZ_PARAM_BN_BIAS, KZ_PARAM_FROZEN
};

struct kz_opt {
	enum kz_opt_type type;
	float lr, momentum, wd, beta1, beta2, eps, rho;
	float bn_bias_lr;		/* the BN biases' learning rate over lr */
	int nesterov;
	uint64_t step;
	float *m, *v;			/* nparams each */
	uint8_t *kind;			/* enum kz_param_kind, nparams */
};

/* Allocates o's moments for n (zero) and marks each parameter's kind
 * (convolution and dense weights decay; batch norms' shifts are BN
 * biases); the settings are the caller's. */
int kz_opt_init(struct kz_opt *o, const struct kz_net *n, struct kz_err *e);
/* Marks layer L's weights and biases as not trained (nor decayed). */
void kz_opt_freeze(struct kz_opt *o, const struct kz_layer *L);
/* The update of parameters lo..hi-1 of net->params with gradient g at
 * learning rate lr (BN biases at lr * o->bn_bias_lr, frozen ones at 0),
 * for step o->step, which the caller increments once per step: callers
 * split one step over threads.  Elementwise, so the result is the same
 * however it is split. */
void kz_opt_update(const struct kz_opt *o, struct kz_net *n, const float *g,
    float lr, size_t lo, size_t hi);
void kz_opt_free(struct kz_opt *o);

#endif
