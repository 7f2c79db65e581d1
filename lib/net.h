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

/* Per-thread buffers for batches of up to maxb samples, and gradients.
 * train: also keep what the backward pass reuses from the forward one
 * (more memory; needed only by kz_net_backward, which works either way). */
struct kz_work;
struct kz_work *kz_work_new(const struct kz_net *n, int maxb, int train);
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
/* Layer i's output from the last forward pass, [C][B][H*W].  In
 * inference a dropout layer writes none, and a convolution or dense
 * layer may do the ReLU and 2x2 max pooling after it: it then holds
 * their output, and they write none. */
const float *kz_work_output(const struct kz_work *w, int i);
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
/* The update of parameters lo..hi-1 alone, for the step that
 * kz_opt_step would count: callers split one step over threads, after
 * incrementing o->step once.  Elementwise, so the result is the same. */
void kz_opt_update(const struct kz_opt *o, struct kz_net *n, const float *g,
    float lr, size_t lo, size_t hi);
void kz_opt_free(struct kz_opt *o);

/* ---- model files (man kzm.5) ---------------------------------------- */

#define KZM_MAGIC "\x8bKZM\r\n\x1a\n"
#define KZM_VERSION 1

enum kz_model_type { KZ_MODEL_KNN = 1, KZ_MODEL_NET = 2 };

/* What a checkpoint adds to a model: enough to continue training. */
struct kz_train_state {
	int present;
	uint32_t epoch;			/* epochs completed */
	struct kz_rng rng;
	uint64_t opt_step;
	float *opt_m, *opt_v;		/* nparams each */
	double best;			/* best validation accuracy so far */
	float *best_params, *best_state;	/* NULL unless kept */
	uint32_t best_epoch;
	float *ema_params, *ema_state;	/* NULL unless --ema */
	float ema;			/* its decay */
};

struct kz_model {
	enum kz_model_type type;
	char *arch;			/* "knn" or a net architecture */
	uint32_t width, height, nclasses;
	float mean, std;		/* input: (pixel / 255 - mean) / std */
	char *command, *date;		/* how and when it was trained */
	uint32_t knn_k;			/* kNN: neighbours */
	int knn_distance;		/* kNN: 1 = weights 1/distance */
	uint64_t n;			/* kNN: training records */
	uint8_t *pixels;		/* kNN: n * width * height */
	int32_t *labels;		/* kNN: n */
	struct kz_net *net;		/* net models */
	struct kz_train_state ts;	/* checkpoints only */
};

/* Writes m atomically (temporary file renamed over path); the last
 * section holds a CRC-32 of everything before it. */
int kz_model_write(const struct kz_model *m, const char *path,
    struct kz_err *e);
/* Reads and checks a model: magic, version, CRC, every section's size
 * against the architecture, before anything is allocated from it. */
int kz_model_read(const char *path, struct kz_model *m, struct kz_err *e);
void kz_model_free(struct kz_model *m);

/* ---- training ------------------------------------------------------- */

/* A labelled stream held in memory as 8-bit pixels. */
struct kz_dataset {
	size_t n;
	uint32_t width, height, nclasses;
	uint8_t *pixels;		/* n * width * height */
	int32_t *labels;		/* n */
};

/* Reads a whole stream ("-" for stdin); every record must be labelled
 * and 8-bit.  nclasses comes from the header, else max label + 1. */
int kz_dataset_read(const char *path, struct kz_dataset *d,
    struct kz_err *e);
void kz_dataset_free(struct kz_dataset *d);
/* Mean and standard deviation of all pixels / 255. */
void kz_dataset_stats(const struct kz_dataset *d, float *mean, float *std);

/* On-the-fly augmentation, drawn per sample from the trainer's seeds. */
struct kz_augment {
	float shift;			/* pixels, uniform in [-shift, shift] */
	float rotate;			/* degrees, uniform in [-r, r] */
	float scale;			/* relative, uniform in [1-s, 1+s] */
	float shear;			/* x += k * (y from the centre row), k
					 * uniform in [-shear, shear] */
	int cutout;			/* side of a zeroed square, 0 = off */
	float mixup;			/* Beta(a, a) mixing, 0 = off */
};
/* Parses "shift=2,rotate=10,scale=0.1,shear=0.2,cutout=8,mixup=0.2". */
int kz_augment_parse(const char *s, struct kz_augment *a, struct kz_err *e);
/* Writes W x H pixels src, standardised as kz_standardise does, into dst:
 * warped by a random shear, scale, rotation and shift (about the centre,
 * bilinear, background outside), then with a random cutout.  Draws from
 * r four numbers for any warp, a fifth for a shear, two for a cutout.
 * Mixup works on batches, not here. */
void kz_augment_image(const uint8_t *src, int W, int H,
    const struct kz_augment *a, struct kz_rng *r, float mean, float std,
    float *dst);

enum kz_schedule { KZ_SCHED_CONST, KZ_SCHED_STEP, KZ_SCHED_COSINE };
enum kz_balance { KZ_BALANCE_NONE, KZ_BALANCE_SAMPLE, KZ_BALANCE_WEIGHT };

struct kz_train_opts {
	int epochs, batch, threads;
	enum kz_opt_type opt;
	float lr, momentum, wd, eps, rho;
	int nesterov;
	enum kz_schedule sched;
	int step_epochs;		/* KZ_SCHED_STEP: every this many */
	float gamma;			/* KZ_SCHED_STEP: factor */
	int warmup;			/* epochs of linear warm-up */
	enum kz_balance balance;
	uint64_t seed;
	struct kz_augment aug;
	float ema;			/* decay of the weight average, 0 = off */
};

struct kz_epoch_stats {
	double loss, acc;		/* training, over the epoch */
	double seconds, images_per_s;
	double lr;			/* of the epoch's last step */
};

struct kz_trainer;
/* Prepares to train net on data (standardisation from the data). */
struct kz_trainer *kz_trainer_new(struct kz_net *net,
    const struct kz_dataset *data, const struct kz_train_opts *o,
    float mean, float std, struct kz_err *e);
/* Runs one epoch; progress (may be NULL) is called after each batch
 * with the fraction done and the running loss and accuracy. */
int kz_trainer_epoch(struct kz_trainer *t, struct kz_epoch_stats *st,
    void (*progress)(void *, double done, double loss, double acc,
    double img_s), void *arg);
/* Accuracy of the net (inference mode) on d. */
double kz_trainer_accuracy(struct kz_trainer *t, const struct kz_dataset *d);
/* Exchanges the net's parameters and BN statistics with their moving
 * average (o->ema > 0, else does nothing): call it once to evaluate or
 * write the average, and again before training on. */
void kz_trainer_swap_ema(struct kz_trainer *t);
/* Checkpoint state in and out.  save fills ts, allocating the arrays
 * still NULL (the caller frees them either way), and returns -1 when
 * out of memory; restore returns -1 when the state's moving average
 * (none, or its decay) is not the one the options ask for. */
int kz_trainer_save(const struct kz_trainer *t, struct kz_train_state *ts);
int kz_trainer_restore(struct kz_trainer *t, const struct kz_train_state *ts);
uint32_t kz_trainer_epochs_done(const struct kz_trainer *t);
void kz_trainer_free(struct kz_trainer *t);

/* ---- inference ------------------------------------------------------- */

/* Runs fn(0..threads-1, arg) on threads threads (the caller is one of
 * them) and waits for all. */
void kz_parallel(int threads, void (*fn)(int, void *), void *arg);
/* Number of online processors. */
int kz_ncpu(void);

/* Converts 8-bit pixels to the net's input: (p / 255 - mean) / std. */
void kz_standardise(const uint8_t *p, size_t n, float mean, float std,
    float *x);

/* A model made ready to classify batches of up to maxb images. */
struct kz_predictor;
struct kz_predictor *kz_predictor_new(const struct kz_model *m, int threads,
    int maxb, struct kz_err *e);
/* Class probabilities ([n][nclasses]) of n <= maxb images of the
 * model's geometry. */
int kz_predict(struct kz_predictor *p, const uint8_t *pixels, size_t n,
    float *probs, struct kz_err *e);
void kz_predictor_free(struct kz_predictor *p);

#endif
