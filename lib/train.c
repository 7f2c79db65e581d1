/*
 * train.c - mini-batch training, data-parallel over threads.
 *
 * Each step splits the batch into one shard per thread; every shard
 * runs forward and backward with single-threaded BLAS on its own work
 * buffers, and the gradients are summed in shard order, so that the
 * same seed and thread count give the same model bit for bit.  Batch
 * norm sees per-shard statistics ("ghost" batches, as data-parallel
 * training elsewhere does).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"
#include "engine.h"
#include "predict.h"
#include "train.h"

/* Gamma(shape, 1) by Marsaglia and Tsang; Beta from two of them. */
static double
gamma_draw(struct kz_rng *r, double shape)
{
	if (shape < 1)
		return gamma_draw(r, shape + 1) *
		    pow(kz_rng_uniform(r) + 1e-300, 1 / shape);
	double d = shape - 1.0 / 3, c = 1 / sqrt(9 * d);
	for (;;) {
		double x = kz_rng_normal(r), v = 1 + c * x;

		if (v <= 0)
			continue;
		v = v * v * v;
		double u = kz_rng_uniform(r);
		if (log(u + 1e-300) < 0.5 * x * x + d - d * v + d * log(v))
			return d * v;
	}
}

/* ---- the trainer ---------------------------------------------------------- */

struct shard {
	struct kz_work *work;
	float *x, *soft, *wts;
	float *first;			/* mixup: the shard's first image */
	float *probs, *cost;		/* --hard: each sample's softmax and
					   loss */
	int32_t *y;
	uint64_t seed;
	int lo, hi;			/* positions in the batch */
	double loss;
	int correct;
};

struct kz_trainer {
	struct kz_net *net;
	const struct kz_dataset *data;
	struct kz_train_opts o;
	struct kz_opt opt;
	int T;
	struct shard *sh;
	struct kz_rng rng;
	uint32_t epoch;			/* epochs completed */
	float mean, std;
	float *class_w;			/* KZ_BALANCE_WEIGHT */
	double *cdf;			/* KZ_BALANCE_SAMPLE */
	uint32_t *order;		/* this epoch's sample indices */
	int batch_n;			/* samples in the current batch */
	int batch_T;			/* shards of the current batch, in all
					   processes */
	/* Each shard's results, in shard order over all processes: the
	 * local shards' own, or what the exchange brought. */
	float **grad, **stats;
	double *loss;
	int64_t *correct;
	int R, rank;			/* processes (o.dist), and this one */
	uint8_t *send, *recv;		/* the exchange: T slots, R * T */
	size_t slot;			/* bytes of a shard's slot */
	float batch_lr;
	float *ema_params, *ema_state;	/* o.ema > 0: the moving average */
	float *sam_w, *sam_g;		/* o.sam > 0: the weights before the
					   ascent, and its gradient */
	/* evaluation */
	const struct kz_dataset *eval;
	size_t eval_correct[256];
};

void
kz_trainer_free(struct kz_trainer *t)
{
	if (t == NULL)
		return;
	for (int s = 0; t->sh && s < t->T; s++) {
		kz_work_free(t->sh[s].work);
		free(t->sh[s].x);
		free(t->sh[s].first);
		free(t->sh[s].soft);
		free(t->sh[s].probs);
		free(t->sh[s].cost);
		free(t->sh[s].wts);
		free(t->sh[s].y);
	}
	free(t->sh);
	kz_opt_free(&t->opt);
	free(t->class_w);
	free(t->cdf);
	free(t->order);
	free(t->ema_params);
	free(t->ema_state);
	free(t->sam_w);
	free(t->sam_g);
	free(t->grad);
	free(t->stats);
	free(t->loss);
	free(t->correct);
	free(t->send);
	free(t->recv);
	free(t);
}

/* n floats of src into *dst, allocated first if NULL; -1 if out of
 * memory. */
static int
copy_floats(float **dst, const float *src, size_t n)
{
	if (*dst == NULL && (*dst = malloc(n * sizeof(float) + 4)) == NULL)
		return -1;
	memcpy(*dst, src, n * sizeof(float));
	return 0;
}

/* The trainer's optimiser: o's settings and the defaults of the rest;
 * under --whiten the first layer, which must be what kz_net_whiten
 * sets from data, stays as it is. */
static int
start_opt(struct kz_opt *opt, const struct kz_net *net,
    const struct kz_dataset *data, float mean, float std,
    const struct kz_train_opts *o, struct kz_err *e)
{
	int whitened = o->whiten ? kz_net_whitened(net, data, mean, std) : 0;

	opt->type = o->opt;
	opt->lr = o->lr;
	opt->momentum = o->momentum;
	opt->wd = o->wd;
	opt->nesterov = o->nesterov;
	opt->bn_bias_lr = o->bn_bias_lr > 0 ? o->bn_bias_lr : 1;
	opt->beta1 = 0.9f;
	opt->beta2 = 0.999f;
	opt->eps = o->eps > 0 ? o->eps : (o->opt == KZ_ADADELTA ? 1e-6f :
	    1e-8f);
	opt->rho = o->rho > 0 ? o->rho : 0.95f;
	if (whitened < 0)
		return kz_errf(e, "out of memory");
	if (o->whiten && !whitened)
		return kz_errf(e, "--whiten: the first layer is not the "
		    "whitening of these images (kz_net_whiten)");
	if (kz_opt_init(opt, net, e) != 0)
		return -1;
	if (o->whiten)
		kz_opt_freeze(opt, &net->layers[0]);
	return 0;
}

struct kz_trainer *
kz_trainer_new(struct kz_net *net, const struct kz_dataset *data,
    const struct kz_train_opts *o, float mean, float std, struct kz_err *e)
{
	struct kz_trainer *t;
	size_t npix = (size_t)data->width * data->height;

	/* Asked anyway, AVX512_BF16's instructions would kill the process. */
	if (o->math == KZ_MATH_BF16 && !kz_bf16_ok()) {
		kz_errf(e, "bfloat16 products need AVX512_BF16, which this "
		    "CPU lacks");
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto oom;
	t->net = net;
	t->data = data;
	t->o = *o;
	t->T = o->threads < 1 ? 1 : o->threads > 64 ? 64 : o->threads;
	if (t->T > o->batch)
		t->T = o->batch;
	t->mean = mean;
	t->std = std;
	kz_rng_seed(&t->rng, o->seed);
	if (start_opt(&t->opt, net, data, mean, std, o, e) != 0) {
		free(t);
		return NULL;
	}
	t->R = o->dist != NULL && o->dist->size > 1 ? o->dist->size : 1;
	t->rank = t->R > 1 ? o->dist->rank : 0;
	int G = t->R * t->T, per;
	if (G > o->batch)
		G = o->batch;
	per = (o->batch + G - 1) / G;
	if ((t->sh = calloc(t->T, sizeof(*t->sh))) == NULL ||
	    (t->order = malloc(data->n * sizeof(uint32_t))) == NULL ||
	    (t->grad = calloc((size_t)t->R * t->T, sizeof(*t->grad))) ==
	    NULL || (t->stats = calloc((size_t)t->R * t->T,
	    sizeof(*t->stats))) == NULL || (t->loss = calloc((size_t)t->R *
	    t->T, sizeof(*t->loss))) == NULL || (t->correct =
	    calloc((size_t)t->R * t->T, sizeof(*t->correct))) == NULL)
		goto oom;
	if (t->R > 1) {
		/* A slot: gradients, BN batch statistics, loss, correct. */
		t->slot = (net->nparams + net->nstate) * sizeof(float);
		t->slot = (t->slot + 7) / 8 * 8 + 16;
		if ((t->send = calloc(t->T, t->slot)) == NULL ||
		    (t->recv = calloc((size_t)t->R * t->T, t->slot)) == NULL)
			goto oom;
	}
	for (int s = 0; s < t->T; s++) {
		struct shard *sh = &t->sh[s];

		if ((sh->work = kz_work_new(net, per, 1, e)) == NULL) {
			kz_trainer_free(t);
			return NULL;
		}
		kz_work_math(sh->work, o->math == KZ_MATH_BF16);
		if ((sh->x = malloc(per * npix * sizeof(float))) == NULL ||
		    (o->aug.mixup > 0 && (sh->first = malloc(npix *
		    sizeof(float))) == NULL) ||
		    (sh->soft = malloc((size_t)per * net->nclasses *
		    sizeof(float))) == NULL ||
		    (sh->wts = malloc(per * sizeof(float))) == NULL ||
		    (o->hard > 0 && o->hard < 1 && ((sh->probs =
		    malloc((size_t)per * net->nclasses * sizeof(float))) ==
		    NULL || (sh->cost = malloc(per * sizeof(float))) ==
		    NULL)) ||
		    (sh->y = malloc(per * sizeof(int32_t))) == NULL)
			goto oom;
	}
	if (o->ema > 0) {
		/* The average starts at the initial weights; the warm-up
		 * of its decay (ema_update) soon forgets them. */
		if (copy_floats(&t->ema_params, net->params,
		    net->nparams) != 0 || copy_floats(&t->ema_state,
		    net->state, net->nstate) != 0)
			goto oom;
	}
	if (o->sam > 0 && ((t->sam_w = malloc(net->nparams * sizeof(float) +
	    4)) == NULL || (t->sam_g = malloc(net->nparams * sizeof(float) +
	    4)) == NULL))
		goto oom;
	if (o->balance != KZ_BALANCE_NONE) {
		size_t *count = calloc(data->nclasses, sizeof(size_t));
		size_t present = 0;

		if (count == NULL)
			goto oom;
		for (size_t i = 0; i < data->n; i++)
			count[data->labels[i]]++;
		for (uint32_t c = 0; c < data->nclasses; c++)
			present += count[c] > 0;
		if ((t->class_w = calloc(data->nclasses, sizeof(float))) ==
		    NULL) {
			free(count);
			goto oom;
		}
		/* Weight n / (classes * count): 1 on average over samples. */
		for (uint32_t c = 0; c < data->nclasses; c++)
			t->class_w[c] = count[c] ? (float)((double)data->n /
			    (present * count[c])) : 0;
		if (o->balance == KZ_BALANCE_SAMPLE) {
			if ((t->cdf = malloc(data->n * sizeof(double))) == NULL) {
				free(count);
				goto oom;
			}
			double acc = 0;
			for (size_t i = 0; i < data->n; i++) {
				acc += 1.0 / count[data->labels[i]];
				t->cdf[i] = acc;
			}
		}
		free(count);
	}
	return t;
oom:
	kz_trainer_free(t);
	kz_errf(e, "out of memory");
	return NULL;
}

uint32_t
kz_trainer_epochs_done(const struct kz_trainer *t)
{
	return t->epoch;
}

int
kz_trainer_save(const struct kz_trainer *t, struct kz_train_state *ts,
    struct kz_err *e)
{
	size_t np = t->net->nparams, ns = t->net->nstate;

	ts->present = 1;
	ts->epoch = t->epoch;
	ts->rng = t->rng;
	ts->opt_step = t->opt.step;
	ts->ema = t->o.ema;
	if (copy_floats(&ts->opt_m, t->opt.m, np) != 0 ||
	    copy_floats(&ts->opt_v, t->opt.v, np) != 0)
		return kz_errf(e, "out of memory");
	if (t->ema_params != NULL && (copy_floats(&ts->ema_params,
	    t->ema_params, np) != 0 || copy_floats(&ts->ema_state,
	    t->ema_state, ns) != 0))
		return kz_errf(e, "out of memory");
	return 0;
}

int
kz_trainer_restore(struct kz_trainer *t, const struct kz_train_state *ts,
    struct kz_err *e)
{
	size_t np = t->net->nparams;

	/* An average dropped or begun half-way, or another decay, would
	 * not be the run the options describe. */
	if (t->ema_params != NULL && ts->ema_params == NULL)
		return kz_errf(e, "no weight average in this checkpoint; "
		    "resume without --ema");
	if (ts->ema_params != NULL && (t->ema_params == NULL ||
	    ts->ema != t->o.ema))
		return kz_errf(e, "trained with --ema %g; resume with it",
		    ts->ema);
	t->epoch = ts->epoch;
	t->rng = ts->rng;
	t->opt.step = ts->opt_step;
	memcpy(t->opt.m, ts->opt_m, np * sizeof(float));
	memcpy(t->opt.v, ts->opt_v, np * sizeof(float));
	if (t->ema_params != NULL) {
		memcpy(t->ema_params, ts->ema_params, np * sizeof(float));
		memcpy(t->ema_state, ts->ema_state, t->net->nstate *
		    sizeof(float));
	}
	return 0;
}

static void
swap_floats(float *a, float *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		float v = a[i];

		a[i] = b[i];
		b[i] = v;
	}
}

void
kz_trainer_swap_ema(struct kz_trainer *t)
{
	if (t->ema_params == NULL)
		return;
	swap_floats(t->net->params, t->ema_params, t->net->nparams);
	swap_floats(t->net->state, t->ema_state, t->net->nstate);
}

/* Thread s's share of the moving average after step t->opt.step:
 * parameters lo..hi-1 and its share of the BN statistics.  The decay
 * ramps up as (1 + step) / (10 + step) to o.ema, so that the early
 * average follows the weights instead of keeping the random start (the
 * warm-up of TensorFlow's ExponentialMovingAverage). */
static void
ema_update(struct kz_trainer *t, int s, size_t lo, size_t hi)
{
	const struct kz_net *net = t->net;
	double ramp = (1.0 + t->opt.step) / (10.0 + t->opt.step);
	float a = 1 - (float)(ramp < t->o.ema ? ramp : t->o.ema);
	size_t ns = net->nstate;

	for (size_t i = lo; i < hi; i++)
		t->ema_params[i] += a * (net->params[i] - t->ema_params[i]);
	for (size_t i = ns * s / t->T; i < ns * (s + 1) / t->T; i++)
		t->ema_state[i] += a * (net->state[i] - t->ema_state[i]);
}

/* Learning rate at a fractional epoch position. */
static double
schedule_lr(const struct kz_train_opts *o, double epoch)
{
	double lr = o->lr;

	if (o->warmup > 0 && epoch < o->warmup)
		return lr * (epoch + 1e-3) / o->warmup;
	switch (o->sched) {
	case KZ_SCHED_STEP:
		return lr * pow(o->gamma, floor(epoch / o->step_epochs));
	case KZ_SCHED_COSINE: {
		double span = o->epochs - o->warmup;
		double pos = (epoch - o->warmup) / (span > 0 ? span : 1);
		return lr * 0.5 * (1 + cos(M_PI * (pos > 1 ? 1 : pos)));
	}
	default:
		return lr;
	}
}

/* --hard frac: only the shard's hardest samples give gradient
 * (kz_hard_weights), ranked by their cross-entropy with the label (or
 * mixup's mixed target), label smoothing left out.  The forward pass
 * and the batch normalisations still see all b, so it saves no time
 * here; it only turns the step towards what the net gets wrong. */
static void
keep_hardest(const struct kz_net *net, struct shard *sh, const float *soft,
    int b, float frac)
{
	int C = net->nclasses;
	const float *p = sh->probs;

	kz_net_softmax(net, sh->work, b, sh->probs);
	for (int i = 0; i < b; i++) {
		double cost = 0;

		for (int c = 0; c < C; c++) {
			double target = soft ? soft[(size_t)i * C + c] :
			    c == sh->y[i];

			if (target > 0)
				cost -= target * log(p[(size_t)i * C + c] +
				    1e-30);
		}
		sh->cost[i] = (float)cost;
	}
	kz_hard_weights(sh->cost, b, frac, sh->wts);
}

void
kz_hard_weights(const float *cost, int b, float frac, float *wts)
{
	int kept = (int)ceilf(frac * b);

	for (int i = 0; i < b; i++) {
		int harder = 0;

		for (int j = 0; j < b; j++)
			harder += cost[j] > cost[i] || (cost[j] == cost[i] &&
			    j < i);
		wts[i] *= harder < kept ? (float)b / kept : 0;
	}
}

/* dst[lo..hi) = the sum of the G shards' gradients, added in shard
 * order so that the sum does not depend on how the work is split; dst
 * may be shard 0's own. */
static void
sum_shard_grads(const struct kz_trainer *t, int G, float *dst, size_t lo,
    size_t hi)
{
	if (dst != t->grad[0])
		memcpy(dst + lo, t->grad[0] + lo, (hi - lo) * sizeof(float));
	for (int k = 1; k < G; k++) {
		const float *gs = t->grad[k];

		for (size_t i = lo; i < hi; i++)
			dst[i] += gs[i];
	}
}

/* Thread s's share of the parameters: sums the shards' gradients into
 * shard 0's, then applies the optimiser's update.  Every parameter is
 * handled alike whatever the split, so the model's bytes do not depend
 * on it. */
static void
reduce_update(int s, void *arg)
{
	struct kz_trainer *t = arg;
	size_t np = t->net->nparams;
	/* Cache-line multiples, so that threads never share a line. */
	size_t lo = np * s / t->T & ~(size_t)15;
	size_t hi = s == t->T - 1 ? np : np * (s + 1) / t->T & ~(size_t)15;
	float *g = t->grad[0];

	sum_shard_grads(t, t->batch_T, g, lo, hi);
	kz_opt_update(&t->opt, t->net, g, t->batch_lr, lo, hi);
	if (t->ema_params != NULL)
		ema_update(t, s, lo, hi);
}

static void
shard_step(int s, void *arg)
{
	struct kz_trainer *t = arg;
	struct shard *sh = &t->sh[s];
	const struct kz_dataset *d = t->data;
	const struct kz_net *net = t->net;
	size_t npix = (size_t)d->width * d->height;
	int b = sh->hi - sh->lo, C = net->nclasses;
	struct kz_rng r;
	const float *soft = NULL;

	kz_rng_seed(&r, sh->seed);
	for (int i = 0; i < b; i++) {
		uint32_t idx = t->order[sh->lo + i];

		kz_augment_image(d->pixels + idx * npix, (int)d->width,
		    (int)d->height, &t->o.aug, &r, t->mean, t->std,
		    sh->x + i * npix);
		sh->y[i] = d->labels[idx];
		sh->wts[i] = t->class_w && t->o.balance == KZ_BALANCE_WEIGHT ?
		    t->class_w[sh->y[i]] : 1.0f;
	}
	if (t->o.aug.mixup > 0 && b > 1) {
		/* Mix each sample with the next one (cyclically) of this
		 * shard, the labels likewise: a shuffled batch's neighbour
		 * is a random partner. */
		double a = t->o.aug.mixup;
		float *mixed = sh->soft;

		memset(mixed, 0, (size_t)b * C * sizeof(float));
		float *first = sh->first;

		memcpy(first, sh->x, npix * sizeof(float));
		for (int i = 0; i < b; i++) {
			double g1 = gamma_draw(&r, a), g2 = gamma_draw(&r, a);
			float lam = (float)(g1 / (g1 + g2));
			const float *other = i + 1 < b ? sh->x + (i + 1) * npix :
			    first;
			float *xi = sh->x + i * npix;

			for (size_t j = 0; j < npix; j++)
				xi[j] = lam * xi[j] + (1 - lam) * other[j];
			mixed[(size_t)i * C + sh->y[i]] += lam;
			mixed[(size_t)i * C + sh->y[(i + 1) % b]] += 1 - lam;
		}
		soft = mixed;
	}
	kz_work_zero_grad(sh->work, net);
	kz_net_forward(net, sh->work, sh->x, b, 1, &r);
	if (sh->probs != NULL)
		keep_hardest(net, sh, soft, b, t->o.hard);
	sh->loss = kz_net_loss(net, sh->work, sh->y, sh->wts, soft,
	    t->o.smooth, b, 1.0f / t->batch_n, &sh->correct);
	kz_net_backward(net, sh->work, b);
}

/* Points the batch's shard results (t->grad, stats, loss, correct) at
 * the G shards of all processes: this one's L shards directly, and
 * with other processes, every process's through an exchange of slots.
 * -1 when the exchange failed. */
static int
gather_shards(struct kz_trainer *t, int G, int L)
{
	const struct kz_net *net = t->net;
	size_t np = net->nparams, ns = net->nstate;

	if (t->R == 1) {
		for (int s = 0; s < L; s++) {
			t->grad[s] = kz_work_grad(t->sh[s].work);
			t->stats[s] = (float *)kz_work_batch_stats(
			    t->sh[s].work);
			t->loss[s] = t->sh[s].loss;
			t->correct[s] = t->sh[s].correct;
		}
		return 0;
	}
	for (int s = 0; s < L; s++) {
		uint8_t *p = t->send + s * t->slot;
		double loss = t->sh[s].loss;
		int64_t right = t->sh[s].correct;

		memcpy(p, kz_work_grad(t->sh[s].work), np * sizeof(float));
		memcpy(p + np * sizeof(float),
		    kz_work_batch_stats(t->sh[s].work), ns * sizeof(float));
		memcpy(p + t->slot - 16, &loss, 8);
		memcpy(p + t->slot - 8, &right, 8);
	}
	if (t->o.dist->allgather(t->o.dist->ctx, t->send, t->recv,
	    (size_t)t->T * t->slot) != 0)
		return -1;
	/* Global shard g is slot g - rank * T of process rank: the
	 * shards are dealt to the processes T at a time, so the slots
	 * arrive in shard order. */
	for (int g = 0; g < G; g++) {
		uint8_t *p = t->recv + (size_t)g * t->slot;

		t->grad[g] = (float *)p;
		t->stats[g] = (float *)(p + np * sizeof(float));
		memcpy(&t->loss[g], p + t->slot - 16, 8);
		memcpy(&t->correct[g], p + t->slot - 8, 8);
	}
	return 0;
}

/* Sharpness-aware minimisation (Foret et al., 2021): moves the weights
 * rho along the batch's gradient (summed from the G shards in shard
 * order, so every process moves alike; the frozen layer stays), takes
 * the batch's gradient again there, with the same images, and moves
 * back.  The optimiser then steps from the first point with the
 * second gradient, which is large where the loss rises steeply nearby.
 * The running BN statistics come from the first pass only.  -1 when
 * exchanging with the other processes failed. */
static int
sam_regrad(struct kz_trainer *t, int G, int L)
{
	struct kz_net *net = t->net;
	size_t np = net->nparams;
	float *g = t->sam_g;
	double norm = 0;

	sum_shard_grads(t, G, g, 0, np);
	for (size_t i = 0; i < np; i++)
		if (t->opt.kind[i] != KZ_PARAM_FROZEN)
			norm += (double)g[i] * g[i];
	memcpy(t->sam_w, net->params, np * sizeof(float));
	if (norm > 0) {
		float k = (float)(t->o.sam / sqrt(norm));

		for (size_t i = 0; i < np; i++)
			if (t->opt.kind[i] != KZ_PARAM_FROZEN)
				net->params[i] += k * g[i];
	}
	if (L > 0)
		kz_parallel(L, shard_step, t);
	int rc = gather_shards(t, G, L);
	memcpy(net->params, t->sam_w, np * sizeof(float));
	return rc;
}

int
kz_trainer_epoch(struct kz_trainer *t, struct kz_epoch_stats *st,
    void (*progress)(void *, double, double, double, double), void *arg)
{
	const struct kz_dataset *d = t->data;
	struct kz_net *net = t->net;
	size_t n = d->n, done = 0;
	double loss = 0;
	size_t correct = 0;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	st->lr = schedule_lr(&t->o, t->epoch);
	if (t->cdf != NULL) {
		/* Class-balanced: draw with replacement, each class alike. */
		double total = t->cdf[n - 1];

		for (size_t i = 0; i < n; i++) {
			double u = kz_rng_uniform(&t->rng) * total;
			size_t lo = 0, hi = n - 1;

			while (lo < hi) {
				size_t mid = (lo + hi) / 2;

				if (t->cdf[mid] > u) hi = mid;
				else lo = mid + 1;
			}
			t->order[i] = (uint32_t)lo;
		}
	} else {
		for (size_t i = 0; i < n; i++)
			t->order[i] = (uint32_t)i;
		kz_rng_shuffle(&t->rng, t->order, n);
	}
	for (size_t start = 0; start < n; start += t->o.batch) {
		int B = n - start < (size_t)t->o.batch ? (int)(n - start) :
		    t->o.batch;
		/* G shards in all processes; this one's are first..first +
		 * L - 1, its threads'. */
		int G = t->R * t->T < B ? t->R * t->T : B;
		int first = t->rank * t->T;
		int L = G - first < t->T ? G - first : t->T;

		if (L < 0)
			L = 0;
		t->batch_n = B;
		for (int g = 0; g < G; g++) {
			uint64_t seed = kz_rng_next(&t->rng);
			int s = g - first;

			if (s < 0 || s >= L)
				continue;
			t->sh[s].lo = (int)start + B * g / G;
			t->sh[s].hi = (int)start + B * (g + 1) / G;
			t->sh[s].seed = seed;
		}
		if (L > 0)
			kz_parallel(L, shard_step, t);
		if (gather_shards(t, G, L) != 0)
			return -1;
		/* Running BN statistics from the shards' batch statistics. */
		if (net->nstate > 0) {
			for (size_t i = 0; i < net->nstate; i++) {
				double v = 0;

				for (int s = 0; s < G; s++)
					v += t->stats[s][i];
				v /= G;
				net->state[i] = 0.9f * net->state[i] +
				    0.1f * (float)v;
			}
		}
		for (int s = 0; s < G; s++) {
			loss += t->loss[s];
			correct += (size_t)t->correct[s];
		}
		if (t->o.sam > 0 && sam_regrad(t, G, L) != 0)
			return -1;
		double epos = t->epoch + (double)start / n;
		st->lr = schedule_lr(&t->o, epos);
		t->batch_T = G;
		t->batch_lr = (float)st->lr;
		t->opt.step++;
		kz_parallel(t->T, reduce_update, t);
		done += B;
		if (progress != NULL) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			double el = (t1.tv_sec - t0.tv_sec) +
			    (t1.tv_nsec - t0.tv_nsec) * 1e-9;
			progress(arg, (double)done / n, loss / done,
			    (double)correct / done, done / (el > 0 ? el : 1e-9));
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	st->seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) *
	    1e-9;
	st->loss = loss / n;
	st->acc = (double)correct / n;
	st->images_per_s = n / (st->seconds > 0 ? st->seconds : 1e-9);
	t->epoch++;
	return 0;
}

static void
eval_shard(int s, void *arg)
{
	struct kz_trainer *t = arg;
	const struct kz_dataset *d = t->eval;
	struct shard *sh = &t->sh[s];
	size_t npix = (size_t)d->width * d->height;
	size_t lo = d->n * s / t->T, hi = d->n * (s + 1) / t->T;
	int per = (t->o.batch + t->T - 1) / t->T, C = t->net->nclasses;
	size_t right = 0;

	for (size_t i = lo; i < hi; i += per) {
		int b = hi - i < (size_t)per ? (int)(hi - i) : per;
		const float *z;

		kz_standardise(d->pixels + i * npix, b * npix, t->mean, t->std,
		    sh->x);
		z = kz_net_forward(t->net, sh->work, sh->x, b, 0, NULL);
		for (int j = 0; j < b; j++) {
			int arg = 0;

			for (int c = 1; c < C; c++)
				if (z[(size_t)c * b + j] > z[(size_t)arg * b + j])
					arg = c;
			right += arg == d->labels[i + j];
		}
	}
	t->eval_correct[s] = right;
}

double
kz_trainer_accuracy(struct kz_trainer *t, const struct kz_dataset *d)
{
	size_t right = 0;

	t->eval = d;
	kz_parallel(t->T, eval_shard, t);
	for (int s = 0; s < t->T; s++)
		right += t->eval_correct[s];
	return d->n ? (double)right / d->n : 0;
}
