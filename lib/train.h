/*
 * train.h - training nets: datasets in memory, augmentation, the
 * trainer.  Part of the kz library.
 */
#ifndef KZ_TRAIN_H
#define KZ_TRAIN_H

#include "model.h"
#include "opt.h"
#include "predict.h"

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
/* Sets n's first layer, a convolution of the image into an even number
 * of outputs up to 2 k^2, to whiten the k x k patches of d's images
 * standardised by mean and std, with biases 0: output j < half is the
 * j-th direction of most variance (of the patches' second moment, over
 * at most 10,000 images spread evenly over d) over the root of its
 * variance plus 5e-4, output half + j its negation, so that a ReLU
 * passes both signs.  The same data give the same bytes. */
int kz_net_whiten(struct kz_net *n, const struct kz_dataset *d, float mean,
    float std, struct kz_err *e);
/* 1 when n's first layer holds what kz_net_whiten would set from these
 * data, 0 when not, -1 when out of memory. */
int kz_net_whitened(const struct kz_net *n, const struct kz_dataset *d,
    float mean, float std);

/* On-the-fly augmentation, drawn per sample from the trainer's seeds. */
struct kz_augment {
	float shift;			/* pixels, uniform in [-shift, shift] */
	float rotate;			/* degrees, uniform in [-r, r] */
	float scale;			/* relative, uniform in [1-s, 1+s] */
	float shear;			/* x += k * (y from the centre row), k
					 * uniform in [-shear, shear] */
	float elastic;			/* pixels: each point of a bend grid
					 * moves uniform in [-e, e] in x, in y */
	float stroke;			/* kz_norm_stroke's weight, uniform in
					 * [-stroke, stroke], at most 1 */
	int cutout;			/* side of a zeroed square, 0 = off */
	float mixup;			/* Beta(a, a) mixing, 0 = off */
};
/* Parses a spec such as "shift=2,rotate=10,elastic=1,cutout=8"; the
 * names are those of struct kz_augment. */
int kz_augment_parse(const char *s, struct kz_augment *a, struct kz_err *e);
/* Writes W x H pixels src, standardised as kz_standardise does, into dst:
 * warped by a random shear, scale, rotation and shift (about the centre,
 * bilinear, background outside), with the point each pixel reads bent
 * by kz_norm_warp's bend, then its strokes thickened or thinned
 * (kz_norm_stroke), then with a random cutout.  Draws from r four
 * numbers for any warp (elastic alone is a warp), a fifth for a shear,
 * KZ_BEND_FLOATS for an elastic bend ((dx, dy) for each grid point, row
 * by row), one for a stroke weight, two for a cutout.  Mixup works on
 * batches, not here. */
void kz_augment_image(const uint8_t *src, int W, int H,
    const struct kz_augment *a, struct kz_rng *r, float mean, float std,
    float *dst);

/* Data-parallel training over processes (kz-train built with MPI):
 * each batch is cut into size * threads shards, process rank computes
 * shards rank * threads to rank * threads + threads - 1, and every
 * process sums all shards' gradients in shard order, so that the model
 * is the one a single process with size * threads threads trains, to
 * the byte.  allgather is MPI_Allgather: n bytes from every process
 * into all (size * n bytes, in rank order); 0, or -1 when it failed. */
struct kz_dist {
	int rank, size;
	int (*allgather)(void *ctx, const void *mine, void *all, size_t n);
	void *ctx;
};

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
	float smooth;			/* label smoothing, 0 = off */
	float bn_bias_lr;		/* the BN biases' learning rate over
					   lr; 0 = 1, the same */
	int whiten;			/* the first layer is not trained (its
					   filters: kz_net_whiten) */
	float hard;			/* the fraction of each shard, the
					   largest losses, that gives
					   gradient; 0 = 1, all */
	float sam;			/* sharpness-aware minimisation: the
					   radius of each step's ascent, 0 =
					   off */
	enum kz_math math;		/* the 3x3 convolutions' products;
					   KZ_MATH_BF16 where not kz_bf16_ok()
					   fails */
	const struct kz_dist *dist;	/* other processes; NULL: none */
};

struct kz_epoch_stats {
	double loss, acc;		/* training, over the epoch */
	double seconds, images_per_s;
	double lr;			/* of the epoch's last step */
};

/* --hard: of b samples with losses cost, keeps the ceil(frac b) largest
 * (on ties, the earlier) by multiplying their weights in wts by b over
 * their count, so that a step keeps its scale, and the others' by 0. */
void kz_hard_weights(const float *cost, int b, float frac, float *wts);

struct kz_trainer;
/* Prepares to train net on data (standardisation from the data); under
 * o->whiten, net's first layer must be what kz_net_whiten sets. */
struct kz_trainer *kz_trainer_new(struct kz_net *net,
    const struct kz_dataset *data, const struct kz_train_opts *o,
    float mean, float std, struct kz_err *e);
/* Runs one epoch; progress (may be NULL) is called after each batch
 * with the fraction done and the running loss and accuracy.  -1 when
 * exchanging with the other processes failed. */
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
 * still NULL (the caller frees them either way); -1 when out of memory.
 * restore fails when the state's moving average (none, or its decay) is
 * not the one the options ask for. */
int kz_trainer_save(const struct kz_trainer *t, struct kz_train_state *ts,
    struct kz_err *e);
int kz_trainer_restore(struct kz_trainer *t, const struct kz_train_state *ts,
    struct kz_err *e);
uint32_t kz_trainer_epochs_done(const struct kz_trainer *t);
void kz_trainer_free(struct kz_trainer *t);

#endif
