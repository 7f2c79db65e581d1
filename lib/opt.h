/*
 * opt.h - optimisers of a net's parameters.  Part of the kz library.
 */
#ifndef KZ_OPT_H
#define KZ_OPT_H

#include "net.h"

enum kz_opt_type { KZ_SGD, KZ_ADAM, KZ_ADADELTA };

struct kz_opt {
	enum kz_opt_type type;
	float lr, momentum, wd, beta1, beta2, eps, rho;
	int nesterov;
	uint64_t step;
	float *m, *v;			/* nparams each */
	uint8_t *decay;			/* 1 for weights that decay */
};

/* Allocates o's moments for n (zero) and marks the weights that decay
 * (convolution and dense weights); the settings are the caller's. */
int kz_opt_init(struct kz_opt *o, const struct kz_net *n, struct kz_err *e);
/* The update of parameters lo..hi-1 of net->params with gradient g at
 * learning rate lr, for step o->step, which the caller increments once
 * per step: callers split one step over threads.  Elementwise, so the
 * result is the same however it is split. */
void kz_opt_update(const struct kz_opt *o, struct kz_net *n, const float *g,
    float lr, size_t lo, size_t hi);
void kz_opt_free(struct kz_opt *o);

#endif
