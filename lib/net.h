/*
 * net.h - neural networks: layers, the spec language, training and
 * inference over mini-batches.  Part of the kz library (see kz.h for
 * the conventions: 0 / -1 returns, struct kz_err messages).
 *
 * Activations are laid out [C][B][H][W]: channel-major over the whole
 * batch, so a convolution of a chunk of samples is one sgemm whose
 * output lands in place, and batch norm sees each channel contiguous.
 * A dense layer's activations are [F][B] (the same with H = W = 1).
 */
#ifndef KZ_NET_H
#define KZ_NET_H

#include "kz.h"

enum kz_layer_type {
	KZ_CONV, KZ_BN, KZ_RELU, KZ_MAXPOOL, KZ_AVGPOOL, KZ_GAP, KZ_DROPOUT,
	KZ_DENSE, KZ_FLATTEN, KZ_RES
};

struct kz_shape {
	int c, h, w;
};

struct kz_layer {
	enum kz_layer_type type;
	struct kz_shape in, out;
	int k, stride, pad;		/* conv, pools */
	float p;			/* dropout probability */
	size_t w_off, nw;		/* weights in the parameter array */
	size_t b_off, nb;		/* biases (BN: beta; gamma is w) */
	size_t s_off;			/* BN running mean, then var */
	struct kz_layer *sub;		/* KZ_RES: bn, relu, conv, bn, relu,
					   conv[, projection conv] */
	int nsub;
};

struct kz_net {
	char *spec;			/* as given, e.g. "cnn:conv32k3,relu" */
	struct kz_shape in;
	int nclasses;
	struct kz_layer *layers;
	int nlayers;
	float *params;			/* trainable, nparams */
	size_t nparams;
	float *state;			/* BN running statistics, nstate */
	size_t nstate;
};

/* Builds a net from an architecture: "linear", "mlp:H[,H...]" (dense
 * ReLU layers; "dropP" tokens allowed), or "cnn:TOKENS" (see kz-train(1)).
 * A final dense layer to nclasses is added.  Parameters are allocated
 * and initialised from seed.  NULL on a bad spec, naming the token. */
struct kz_net *kz_net_new(const char *arch, struct kz_shape in, int nclasses,
    uint64_t seed, struct kz_err *e);
void kz_net_free(struct kz_net *n);
/* Multiply-adds of one forward pass of one sample. */
double kz_net_flops(const struct kz_net *n);
/* One line per layer describing shapes, into buf. */
void kz_net_describe(const struct kz_net *n, char *buf, size_t len);

/* Per-thread buffers for batches of up to maxb samples, and gradients. */
struct kz_work;
struct kz_work *kz_work_new(const struct kz_net *n, int maxb);
void kz_work_free(struct kz_work *w);
float *kz_work_grad(struct kz_work *w);	/* nparams, zeroed by backward's
					   caller through kz_work_zero_grad */
void kz_work_zero_grad(struct kz_work *w, const struct kz_net *n);

/* Forward pass of b samples x ([b][in.h*in.w] floats, one channel).
 * train selects batch statistics and dropout (drawn from rng).
 * Returns the logits, [nclasses][b]. */
const float *kz_net_forward(const struct kz_net *n, struct kz_work *w,
    const float *x, int b, int train, struct kz_rng *rng);
/* Softmax cross-entropy of the last forward pass against labels (and
 * optional per-sample weights); writes the gradient of sum(loss) *
 * scale into the work and returns the summed loss.  correct (may be
 * NULL) receives the number of samples whose top class is the label. */
double kz_net_loss(const struct kz_net *n, struct kz_work *w,
    const int32_t *labels, const float *weights, const float *soft,
    int b, float scale, int *correct);
/* Backward pass: accumulates parameter gradients into the work. */
void kz_net_backward(const struct kz_net *n, struct kz_work *w, int b);
/* Batch-norm statistics of the last training forward pass: mean and
 * biased variance of every BN channel, laid out as net->state. */
const float *kz_work_batch_stats(const struct kz_work *w);
/* Softmax of the last forward pass into probs ([b][nclasses]). */
void kz_net_softmax(const struct kz_net *n, struct kz_work *w, int b,
    float *probs);

/* ---- optimisers ------------------------------------------------------ */

enum kz_opt_type { KZ_SGD, KZ_ADAM, KZ_ADADELTA };

struct kz_opt {
	enum kz_opt_type type;
	float lr, momentum, wd, beta1, beta2, eps, rho;
	int nesterov;
	uint64_t step;
	float *m, *v;			/* nparams each */
	uint8_t *decay;			/* 1 for weights that decay */
};

int kz_opt_init(struct kz_opt *o, const struct kz_net *n, struct kz_err *e);
/* One update of net->params with gradient g at learning rate lr. */
void kz_opt_step(struct kz_opt *o, struct kz_net *n, const float *g, float lr);
void kz_opt_free(struct kz_opt *o);

#endif
