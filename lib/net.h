/*
 * net.h - neural networks: the spec language, forward and backward
 * passes over mini-batches.  Part of the kz library (see kz.h for the
 * conventions: 0 / -1 returns, struct kz_err messages).  The layers and
 * the plan that runs them are the engine's own (engine.h).
 *
 * Activations are laid out [C][B][H][W]: channel-major over the whole
 * batch, so a convolution of a chunk of samples is one sgemm whose
 * output lands in place, and batch norm sees each channel contiguous.
 * A dense layer's activations are [F][B] (the same with H = W = 1).
 */
#ifndef KZ_NET_H
#define KZ_NET_H

#include "kz.h"

struct kz_shape {
	int c, h, w;
};

struct kz_layer;			/* engine.h */
struct kz_plan;

struct kz_net {
	char *spec;			/* as given, e.g. "cnn:conv32k3,relu" */
	struct kz_shape in;
	int nclasses;
	struct kz_layer *layers;	/* residual blocks expanded */
	int nlayers;
	struct kz_plan *plan[2];	/* compiled: inference, training */
	float *params;			/* trainable, nparams */
	size_t nparams;
	float *state;			/* BN running statistics, nstate */
	size_t nstate;
};

/* Builds a net from an architecture: "linear", "mlp:H[,H...]" (dense
 * ReLU layers; "dropP" tokens allowed), or "cnn:TOKENS" (see kz-train(1)).
 * A final dense layer to nclasses is added.  Parameters are allocated
 * and initialised from seed as kz_net_init(n, KZ_INIT_FANIN, 0, seed)
 * does.  NULL on a bad spec, naming the token. */
struct kz_net *kz_net_new(const char *arch, struct kz_shape in, int nclasses,
    uint64_t seed, struct kz_err *e);

/* How the weights of convolutions and dense layers start. */
enum kz_init {
	KZ_INIT_FANIN,	/* weights and biases uniform in +-1/sqrt(fan_in):
			   PyTorch's default, kaiming_uniform_(a=sqrt 5) */
	KZ_INIT_HE	/* weights normal, sd sqrt(2/fan_in); biases 0 */
};
/* Sets every parameter and statistic of n to its starting value, drawn
 * from seed: convolutions and dense layers as scheme says, batch norms
 * at scale 1 and shift 0.  zero_res: the last convolution of each
 * residual branch starts at zero, so that each block starts as the
 * identity. */
void kz_net_init(struct kz_net *n, enum kz_init scheme, int zero_res,
    uint64_t seed);
void kz_net_free(struct kz_net *n);
/* Copies src's parameters and batch-norm statistics into dst: a
 * trained net as the start of another's training.  The two must have
 * the same layers on the same input, except that the output layer may
 * map to another number of classes; then dst's keeps its own.  -1 when
 * they differ, naming the first layer that does. */
int kz_net_adopt(struct kz_net *dst, const struct kz_net *src,
    struct kz_err *e);
/* The numbers of parameters and of state values (BN statistics) of the
 * net kz_net_new would build, without allocating them: what a model
 * file must hold, checked before it is loaded.  -1 on a bad spec. */
int kz_net_size(const char *arch, struct kz_shape in, int nclasses,
    size_t *nparams, size_t *nstate, struct kz_err *e);
/* Multiply-adds of one forward pass of one sample. */
double kz_net_flops(const struct kz_net *n);

/* Per-thread buffers for batches of up to maxb samples, and gradients.
 * train: also keep what the backward pass reuses from the forward one
 * (more memory; needed only by kz_net_backward, which works either way).
 * NULL when out of memory. */
struct kz_work;
struct kz_work *kz_work_new(const struct kz_net *n, int maxb, int train,
    struct kz_err *e);
void kz_work_free(struct kz_work *w);
/* Whether w's passes take their Winograd products with bfloat16
 * operands (bf16 1; the caller has checked kz_bf16_ok) or in single
 * precision (0, as a new work does: by kz's own AVX-512 kernels where
 * kz_avx512_ok, else by OpenBLAS).  Classifying, the other convolutions'
 * and the dense layers' products follow; training, only the Winograd
 * layers' (forward, input and weight gradients) do. */
void kz_work_math(struct kz_work *w, int bf16);
float *kz_work_grad(struct kz_work *w);	/* nparams, zeroed by backward's
					   caller through kz_work_zero_grad */
void kz_work_zero_grad(struct kz_work *w, const struct kz_net *n);

/* Forward pass of b samples x ([b][in.h*in.w] floats, one channel).
 * train selects batch statistics and dropout (drawn from rng).  Both
 * kinds of pass do some layers together (a batch norm or a pooling
 * with the ReLU beside it; in inference also a convolution or dense
 * layer with its ReLU and a 2x2 max pooling), with the same result as
 * one by one.  Returns the logits, [nclasses][b]. */
const float *kz_net_forward(const struct kz_net *n, struct kz_work *w,
    const float *x, int b, int train, struct kz_rng *rng);
/* Softmax cross-entropy of the last forward pass against labels (or
 * soft, [b][nclasses] target distributions, when not NULL), with
 * optional per-sample weights; the targets are smoothed, (1 - smooth)
 * of them kept and smooth spread evenly over the classes.  Writes the
 * gradient of sum(loss) * scale into the work and returns the summed
 * loss.  correct (may be NULL) receives the number of samples whose
 * top class is the label. */
double kz_net_loss(const struct kz_net *n, struct kz_work *w,
    const int32_t *labels, const float *weights, const float *soft,
    float smooth, int b, float scale, int *correct);
/* Backward pass of the last training forward pass: accumulates
 * parameter gradients into the work. */
void kz_net_backward(const struct kz_net *n, struct kz_work *w, int b);
/* Batch-norm statistics of the last training forward pass: mean and
 * biased variance of every BN channel, laid out as net->state. */
const float *kz_work_batch_stats(const struct kz_work *w);
/* The number of features the output layer reads: the penultimate
 * layer's size. */
int kz_net_nfeatures(const struct kz_net *n);
/* What the output layer read in the last inference pass (train 0) of b
 * samples, into feat ([b][kz_net_nfeatures]): the features in which
 * similar images lie close. */
void kz_net_features(const struct kz_net *n, const struct kz_work *w, int b,
    float *feat);
/* Softmax of the last forward pass into probs ([b][nclasses]). */
void kz_net_softmax(const struct kz_net *n, struct kz_work *w, int b,
    float *probs);

#endif
