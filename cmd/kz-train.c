/*
 * kz-train - train a model (knn, linear, mlp, cnn) on a kz stream.
 */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "net.h"

static void
usage(void)
{
	fprintf(stderr, "usage: kz-train -a arch -o model [-q] [-b batch] "
	    "[-e epochs] [-k neighbours] [-t threads]\n"
	    "                [--augment spec] [--balance none|sample|weight] "
	    "[--checkpoint file]\n"
	    "                [--ema decay] [--keep-best] [--lr rate] "
	    "[--momentum m]\n"
	    "                [--opt sgd|nesterov|adam|adadelta] "
	    "[--resume file]\n"
	    "                [--schedule const|cosine|step:N[:G]] [--seed n] "
	    "[--val file]\n"
	    "                [--warmup epochs] [--wd decay] "
	    "[--weights distance|uniform] [file]\n");
	exit(2);
}


/* "-a @file": the architecture from a file, tokens separated by commas
 * or white space, "#" to the end of a line a comment. */
static char *
arch_from_file(const char *path)
{
	struct kz_err e;
	uint8_t *buf;
	size_t len, n = 0;
	char *out;
	int comment = 0, gap = 0;

	if (kz_slurp(path, 1 << 20, &buf, &len, &e) != 0)
		errx(1, "%s", e.msg);
	if ((out = malloc(len + 1)) == NULL)
		err(1, NULL);
	for (size_t i = 0; i < len; i++) {
		char c = (char)buf[i];

		if (c == '#')
			comment = 1;
		if (c == '\n')
			comment = 0;
		if (comment)
			continue;
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',') {
			gap = 1;
			continue;
		}
		if (gap && n > 0 && out[n - 1] != ':')
			out[n++] = ',';
		gap = 0;
		out[n++] = c;
	}
	out[n] = '\0';
	free(buf);
	if (n == 0)
		errx(1, "%s: no architecture in this file", path);
	return out;
}

/* The training command, without the options that only name files or
 * silence output, so that two runs differing only there give the same
 * model bytes. */
static char *
command_line(int argc, char *argv[])
{
	static const char *drop[] = { "-o", "--output", "--checkpoint",
	    "--resume", NULL };
	size_t len = 1;
	char *s;

	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if ((s = calloc(len, 1)) == NULL)
		err(1, NULL);
	strcat(s, "kz-train");
	for (int i = 1; i < argc; i++) {
		int skip = 0;

		for (int j = 0; drop[j]; j++) {
			size_t n = strlen(drop[j]);

			if (strcmp(argv[i], drop[j]) == 0) {
				skip = 2;
			} else if (strncmp(argv[i], drop[j], n) == 0 &&
			    argv[i][n] == '=') {
				skip = 1;
			} else if (strcmp(drop[j], "-o") == 0 &&
			    strncmp(argv[i], "-o", 2) == 0 && argv[i][2]) {
				skip = 1;
			}
		}
		if (strcmp(argv[i], "-q") == 0)
			skip = 1;
		if (skip) {
			i += skip - 1;
			continue;
		}
		strcat(s, " ");
		strcat(s, argv[i]);
	}
	return s;
}

static char *
train_date(void)
{
	/* SOURCE_DATE_EPOCH, as reproducible builds do, makes the date
	 * part of a deterministic run too. */
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	time_t t = sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
	char buf[32];

	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	return strdup(buf);
}

struct progress {
	int tty, quiet, epoch, epochs;
	double last, n;			/* last fraction shown; records */
};

static void
show_progress(void *arg, double done, double loss, double acc, double img_s)
{
	struct progress *p = arg;

	if (p->quiet || !p->tty || done - p->last < 0.01)
		return;
	p->last = done;
	/* ETA from this epoch's speed; validation passes are not counted. */
	double eta = ((1 - done) + (p->epochs - p->epoch)) * p->n / img_s;
	fprintf(stderr, "\repoch %d/%d %3.0f%%  loss %.4f  acc %6.2f%%  "
	    "%6.0f img/s  ETA %d:%02d ", p->epoch, p->epochs, 100 * done, loss,
	    100 * acc, img_s, (int)eta / 60, (int)eta % 60);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "arch", required_argument, NULL, 'a' },
		{ "output", required_argument, NULL, 'o' },
		{ "batch", required_argument, NULL, 'b' },
		{ "epochs", required_argument, NULL, 'e' },
		{ "threads", required_argument, NULL, 't' },
		{ "augment", required_argument, NULL, 'A' },
		{ "balance", required_argument, NULL, 'B' },
		{ "checkpoint", required_argument, NULL, 'C' },
		{ "ema", required_argument, NULL, 'E' },
		{ "keep-best", no_argument, NULL, 'K' },
		{ "lr", required_argument, NULL, 'L' },
		{ "momentum", required_argument, NULL, 'M' },
		{ "opt", required_argument, NULL, 'O' },
		{ "resume", required_argument, NULL, 'R' },
		{ "schedule", required_argument, NULL, 'S' },
		{ "seed", required_argument, NULL, 's' },
		{ "val", required_argument, NULL, 'V' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "wd", required_argument, NULL, 'D' },
		{ "weights", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 }
	};
	const char *arch = NULL, *output = NULL, *val_path = NULL;
	const char *checkpoint = NULL, *resume = NULL;
	struct kz_train_opts o = {
		.epochs = 10, .batch = 128, .opt = KZ_ADAM, .lr = -1,
		.momentum = 0.9f, .sched = KZ_SCHED_CONST, .gamma = 0.1f,
		.seed = 1, .threads = kz_ncpu(),
	};
	int quiet = 0, keep_best = 0, knn_k = 4, knn_distance = 1, ch;
	char *arch_buf = NULL;
	struct kz_err e;

	kz_ignore_sigpipe();
	while ((ch = getopt_long(argc, argv, "a:o:b:e:k:qt:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'a': arch = optarg; break;
		case 'o': output = optarg; break;
		case 'b': o.batch = (int)integer(optarg, 1, 65536, "-b"); break;
		case 'e': o.epochs = (int)integer(optarg, 0, 100000, "-e"); break;
		case 'k': knn_k = (int)integer(optarg, 1, 1024, "-k"); break;
		case 'q': quiet = 1; break;
		case 't': o.threads = (int)integer(optarg, 1, 64, "-t"); break;
		case 'A':
			if (kz_augment_parse(optarg, &o.aug, &e) != 0)
				errx(2, "%s", e.msg);
			break;
		case 'B':
			if (strcmp(optarg, "none") == 0)
				o.balance = KZ_BALANCE_NONE;
			else if (strcmp(optarg, "sample") == 0)
				o.balance = KZ_BALANCE_SAMPLE;
			else if (strcmp(optarg, "weight") == 0)
				o.balance = KZ_BALANCE_WEIGHT;
			else
				errx(2, "--balance: none, sample or weight");
			break;
		case 'C': checkpoint = optarg; break;
		case 'E': o.ema = (float)number(optarg, 0, 0.999999, "--ema");
			break;
		case 'K': keep_best = 1; break;
		case 'L': o.lr = (float)number(optarg, 0, 100, "--lr"); break;
		case 'M': o.momentum = (float)number(optarg, 0, 1, "--momentum");
			break;
		case 'O':
			if (strcmp(optarg, "sgd") == 0)
				o.opt = KZ_SGD;
			else if (strcmp(optarg, "nesterov") == 0) {
				o.opt = KZ_SGD;
				o.nesterov = 1;
			} else if (strcmp(optarg, "adam") == 0)
				o.opt = KZ_ADAM;
			else if (strcmp(optarg, "adadelta") == 0)
				o.opt = KZ_ADADELTA;
			else
				errx(2, "--opt: sgd, nesterov, adam or adadelta");
			break;
		case 'R': resume = optarg; break;
		case 'S':
			if (strcmp(optarg, "const") == 0)
				o.sched = KZ_SCHED_CONST;
			else if (strcmp(optarg, "cosine") == 0)
				o.sched = KZ_SCHED_COSINE;
			else if (strncmp(optarg, "step:", 5) == 0) {
				size_t len = strcspn(optarg + 5, ":");
				const char *g = optarg + 5 + len;
				char *n, *end = NULL;

				if ((n = strndup(optarg + 5, len)) == NULL)
					err(1, NULL);
				o.sched = KZ_SCHED_STEP;
				o.step_epochs = (int)integer(n, 1, INT_MAX,
				    "--schedule step:N");
				free(n);
				if (*g == ':')
					o.gamma = strtof(g + 1, &end);
				if ((end != NULL && *end != '\0') ||
				    !(o.gamma > 0))
					errx(2, "--schedule step:N[:G], N >= 1, "
					    "G > 0");
			} else
				errx(2, "--schedule: const, cosine or step:N[:G]");
			break;
		case 's':
			o.seed = uinteger(optarg, 0, UINT64_MAX, "--seed");
			break;
		case 'V': val_path = optarg; break;
		case 'W': o.warmup = (int)integer(optarg, 0, 1000, "--warmup");
			break;
		case 'D': o.wd = (float)number(optarg, 0, 1, "--wd"); break;
		case 'w':
			if (strcmp(optarg, "distance") == 0)
				knn_distance = 1;
			else if (strcmp(optarg, "uniform") == 0)
				knn_distance = 0;
			else
				errx(2, "--weights: distance or uniform");
			break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1 || output == NULL || (arch == NULL && resume == NULL))
		usage();
	if (keep_best && val_path == NULL)
		errx(2, "--keep-best needs --val to tell the best epoch");
	refuse_tty(output);
	if (arch != NULL && arch[0] == '@')
		arch = arch_buf = arch_from_file(arch + 1);
	if (o.lr < 0)
		o.lr = o.opt == KZ_ADAM ? 1e-3f : o.opt == KZ_ADADELTA ? 1.0f :
		    0.05f;
	int progress_tty = isatty(STDERR_FILENO);

	struct kz_dataset data;
	if (kz_dataset_read(argc ? argv[0] : "-", &data, &e) != 0)
		errx(1, "%s", e.msg);
	struct kz_model m = { 0 };
	m.width = data.width;
	m.height = data.height;
	m.nclasses = data.nclasses;
	m.command = command_line(argc + optind, argv - optind);
	m.date = train_date();

	if (arch != NULL && strcmp(arch, "knn") == 0) {
		/* A kNN model is its training set. */
		m.type = KZ_MODEL_KNN;
		m.arch = strdup("knn");
		m.knn_k = (uint32_t)knn_k;
		m.knn_distance = knn_distance;
		m.n = data.n;
		m.pixels = data.pixels;
		m.labels = data.labels;
		m.std = 1;
		data.pixels = NULL;
		data.labels = NULL;
		if (kz_model_write(&m, output, &e) != 0)
			die_write(&e);
		if (!quiet)
			fprintf(stderr, "kz-train: knn, k %d, %s weights, %zu "
			    "records of %ux%u in %u classes\n", knn_k,
			    knn_distance ? "distance" : "uniform", (size_t)m.n,
			    m.width, m.height, m.nclasses);
		kz_model_free(&m);
		kz_dataset_free(&data);
		free(arch_buf);
		return 0;
	}

	struct kz_dataset val = { 0 };
	if (val_path != NULL) {
		if (kz_dataset_read(val_path, &val, &e) != 0)
			errx(1, "%s", e.msg);
		if (val.width != data.width || val.height != data.height ||
		    val.nclasses != data.nclasses)
			errx(1, "%s: %ux%u with %u classes does not fit the "
			    "training stream's %ux%u with %u", val_path,
			    val.width, val.height, val.nclasses, data.width,
			    data.height, data.nclasses);
	}

	struct kz_model ck = { 0 };
	if (resume != NULL) {
		if (kz_model_read(resume, &ck, &e) != 0)
			errx(1, "%s", e.msg);
		if (ck.type != KZ_MODEL_NET || !ck.ts.present)
			errx(1, "%s: not a training checkpoint", resume);
		if (arch != NULL && strcmp(arch, ck.arch) != 0)
			errx(1, "%s: trained as \"%s\", not \"%s\"", resume,
			    ck.arch, arch);
		if (ck.width != data.width || ck.height != data.height ||
		    ck.nclasses != data.nclasses)
			errx(1, "%s: a %ux%u model of %u classes does not fit "
			    "this %ux%u stream of %u", resume, ck.width,
			    ck.height, ck.nclasses, data.width, data.height,
			    data.nclasses);
		arch = ck.arch;
	}

	m.type = KZ_MODEL_NET;
	m.arch = strdup(arch);
	struct kz_shape in = { 1, (int)data.height, (int)data.width };
	if (resume != NULL) {
		m.net = ck.net;
		ck.net = NULL;
		m.mean = ck.mean;
		m.std = ck.std;
	} else {
		if ((m.net = kz_net_new(arch, in, (int)data.nclasses, o.seed,
		    &e)) == NULL)
			errx(2, "%s", e.msg);
		kz_dataset_stats(&data, &m.mean, &m.std);
	}
	struct kz_trainer *t = kz_trainer_new(m.net, &data, &o, m.mean, m.std,
	    &e);
	if (t == NULL)
		errx(1, "%s", e.msg);
	double best = -1;
	uint32_t best_epoch = 0;
	float *best_params = NULL, *best_state = NULL;
	if (keep_best) {
		best_params = malloc(m.net->nparams * sizeof(float) + 4);
		best_state = malloc(m.net->nstate * sizeof(float) + 4);
		if (best_params == NULL || best_state == NULL)
			err(1, NULL);
	}
	if (resume != NULL) {
		if (kz_trainer_restore(t, &ck.ts) != 0) {
			if (ck.ts.ema_params == NULL)
				errx(1, "%s: no weight average in this "
				    "checkpoint; resume without --ema", resume);
			errx(1, "%s: trained with --ema %g; resume with it",
			    resume, ck.ts.ema);
		}
		best = ck.ts.best;
		best_epoch = ck.ts.best_epoch;
		if (keep_best && ck.ts.best_params != NULL) {
			memcpy(best_params, ck.ts.best_params,
			    m.net->nparams * sizeof(float));
			memcpy(best_state, ck.ts.best_state,
			    m.net->nstate * sizeof(float));
		} else if (keep_best) {
			best = -1;
		}
	}
	if (!quiet) {
		fprintf(stderr, "kz-train: %s, %zu parameters, %.1f MFLOP per "
		    "image forward; %zu training records%s; %d threads\n",
		    arch, m.net->nparams, kz_net_flops(m.net) * 2 / 1e6, data.n,
		    !val_path ? "" : o.ema > 0 ? ", validation of the weight "
		    "average" : ", validation on", t ? o.threads : 0);
		if (resume != NULL)
			fprintf(stderr, "kz-train: resuming %s after epoch %u\n",
			    resume, kz_trainer_epochs_done(t));
	}

	struct progress pr = { progress_tty, quiet, 0, o.epochs, 0,
	    (double)data.n };
	while ((int)kz_trainer_epochs_done(t) < o.epochs) {
		struct kz_epoch_stats st;

		pr.epoch = (int)kz_trainer_epochs_done(t) + 1;
		pr.last = 0;
		kz_trainer_epoch(t, &st, show_progress, &pr);
		/* With --ema, the average is what is validated, kept and
		 * written; the weights it follows train on. */
		kz_trainer_swap_ema(t);
		double vacc = val_path ? kz_trainer_accuracy(t, &val) : -1;
		/* Ties go to the later epoch: further along its schedule. */
		if (keep_best && vacc >= best) {
			best = vacc;
			best_epoch = (uint32_t)pr.epoch;
			memcpy(best_params, m.net->params,
			    m.net->nparams * sizeof(float));
			memcpy(best_state, m.net->state,
			    m.net->nstate * sizeof(float));
		}
		kz_trainer_swap_ema(t);
		if (!quiet) {
			char v[32] = "";

			if (vacc >= 0)
				snprintf(v, sizeof(v), "  val %6.2f%%",
				    100 * vacc);
			fprintf(stderr, "%sepoch %d/%d  loss %.4f  acc %6.2f%%%s  "
			    "%.0f img/s  %.1f s  lr %.3g\n", progress_tty ?
			    "\r\033[K" : "", pr.epoch, o.epochs, st.loss,
			    100 * st.acc, v, st.images_per_s, st.seconds, st.lr);
		}
		if (checkpoint != NULL) {
			struct kz_model c = m;

			memset(&c.ts, 0, sizeof(c.ts));
			int rc = kz_trainer_save(t, &c.ts);
			c.ts.best = best;
			c.ts.best_epoch = best_epoch;
			c.ts.best_params = keep_best && best >= 0 ?
			    best_params : NULL;
			c.ts.best_state = best_state;
			if (rc != 0)
				kz_errf(&e, "%s: out of memory", checkpoint);
			else
				rc = kz_model_write(&c, checkpoint, &e);
			free(c.ts.opt_m);
			free(c.ts.opt_v);
			free(c.ts.ema_params);
			free(c.ts.ema_state);
			if (rc != 0)
				errx(1, "%s", e.msg);
		}
	}
	if (keep_best && best >= 0) {
		memcpy(m.net->params, best_params, m.net->nparams *
		    sizeof(float));
		memcpy(m.net->state, best_state, m.net->nstate * sizeof(float));
		if (!quiet)
			fprintf(stderr, "kz-train: keeping epoch %u (validation "
			    "%.2f%%)\n", best_epoch, 100 * best);
	} else {
		kz_trainer_swap_ema(t);
	}
	if (kz_model_write(&m, output, &e) != 0)
		die_write(&e);
	kz_trainer_free(t);
	kz_model_free(&m);
	kz_model_free(&ck);
	kz_dataset_free(&data);
	kz_dataset_free(&val);
	free(best_params);
	free(best_state);
	free(arch_buf);
	return 0;
}
