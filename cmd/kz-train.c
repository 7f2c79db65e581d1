/*
 * kz-train - train a model (knn, linear, mlp, cnn) on a kz stream.
 *
 * Built with MPI (make MPI=1), it trains data-parallel under mpirun:
 * every rank reads the stream, computes its threads' shards of each
 * batch, and the trainer sums every shard's gradients in shard order
 * (kz_dist); rank 0 alone validates and writes the checkpoints and the
 * model.
 */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "predict.h"
#include "train.h"

#ifdef KZ_MPI
#include <mpi.h>

/* kz_dist's exchange, over every rank of the job. */
static int
mpi_allgather(void *ctx, const void *mine, void *all, size_t n)
{
	(void)ctx;
	if (n > INT_MAX)
		return -1;
	return MPI_Allgather(mine, (int)n, MPI_BYTE, all, (int)n, MPI_BYTE,
	    MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
}
#endif

/* This process's place among the job's (rank 0 of 1 without MPI). */
static struct kz_dist dist = { 0, 1, NULL, NULL };

/* Joins the MPI job when built for it; a rank that exits early, with
 * an error, ends the whole job (mpirun's default), so no rank is left
 * waiting and no model is written. */
static void
join_job(int *argc, char ***argv)
{
#ifdef KZ_MPI
	MPI_Init(argc, argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &dist.rank);
	MPI_Comm_size(MPI_COMM_WORLD, &dist.size);
	dist.allgather = mpi_allgather;
#else
	(void)argc;
	(void)argv;
#endif
}

static void
leave_job(void)
{
#ifdef KZ_MPI
	MPI_Finalize();
#endif
}

/* The command line, as parse_command_line leaves it. */
struct cmdline {
	const char *arch;	/* -a: the spec, NULL to take --resume's */
	char *arch_buf;		/* -a @file: the spec read, to free */
	const char *output;	/* -o: the model written */
	const char *classmap;	/* -c: the class map stored in it */
	const char *input;	/* the training stream, "-" for stdin */
	const char *val;	/* --val: the stream scored each epoch */
	long long val_every;	/* --val-every: also every this many
				   training images, 0 = at epochs' ends */
	const char *checkpoint;	/* --checkpoint: rewritten each epoch */
	const char *resume;	/* --resume: the checkpoint to go on from */
	const char *from;	/* --from: a trained net to start from */
	struct kz_train_opts o;	/* all that the trainer is told */
	int quiet;		/* -q: no report on stderr */
	int keep_best;		/* --keep-best: write the best epoch */
	int knn_k;		/* -k: neighbours that vote */
	int knn_distance;	/* --weights: distance (1) or uniform (0) */
	int init;		/* --init: enum kz_init */
	int zero_res;		/* --zero-res: blocks start as identity */
};

/* One of the words an option takes, and what it stands for. */
struct word {
	const char *name;
	int value;
};

#define NESTEROV -1	/* --opt nesterov: SGD with Nesterov momentum */

static const struct word balances[] = {
	{ "none", KZ_BALANCE_NONE }, { "sample", KZ_BALANCE_SAMPLE },
	{ "weight", KZ_BALANCE_WEIGHT }, { NULL, 0 }
};
static const struct word optimisers[] = {
	{ "sgd", KZ_SGD }, { "nesterov", NESTEROV }, { "adam", KZ_ADAM },
	{ "adadelta", KZ_ADADELTA }, { NULL, 0 }
};
static const struct word inits[] = {
	{ "fanin", KZ_INIT_FANIN }, { "he", KZ_INIT_HE }, { NULL, 0 }
};
static const struct word weights[] = {
	{ "distance", 1 }, { "uniform", 0 }, { NULL, 0 }
};

static void
usage(void)
{
	fprintf(stderr, "usage: kz-train -a arch -o model [-q] [-b batch] "
	    "[-c classmap] [-e epochs] [-k neighbours]\n"
	    "                [-p auto|f32|bf16] [-t threads]\n"
	    "                [--augment spec] [--balance none|sample|weight] "
	    "[--bn-lr factor]\n"
	    "                [--checkpoint file] [--ema decay] "
	    "[--from model] [--hard fraction]\n"
	    "                [--init fanin|he] [--keep-best] [--lr rate] "
	    "[--momentum m]\n"
	    "                [--opt sgd|nesterov|adam|adadelta] "
	    "[--resume file] [--sam radius]\n"
	    "                [--schedule const|cosine|step:N[:G]] [--seed n] "
	    "[--smooth eps]\n"
	    "                [--val file] [--val-every images] "
	    "[--warmup epochs] [--wd decay]\n"
	    "                [--weights distance|uniform] [--whiten] "
	    "[--zero-res] [file]\n");
	version_usage("kz-train");
	exit(2);
}

/* The value of s in words, or exit 2 with msg, which lists them. */
static int
word(const char *s, const struct word *words, const char *msg)
{
	for (; words->name != NULL; words++)
		if (strcmp(s, words->name) == 0)
			return words->value;
	errx(2, "%s", msg);
}

/* --schedule const|cosine|step:N[:G]: N epochs between steps, each
 * multiplying the rate by G. */
static void
schedule(const char *s, struct kz_train_opts *o)
{
	if (strcmp(s, "const") == 0) {
		o->sched = KZ_SCHED_CONST;
	} else if (strcmp(s, "cosine") == 0) {
		o->sched = KZ_SCHED_COSINE;
	} else if (strncmp(s, "step:", 5) == 0) {
		size_t len = strcspn(s + 5, ":");
		const char *g = s + 5 + len;
		char *n, *end = NULL;

		if ((n = strndup(s + 5, len)) == NULL)
			err(1, NULL);
		o->sched = KZ_SCHED_STEP;
		o->step_epochs = (int)integer(n, 1, INT_MAX,
		    "--schedule step:N");
		free(n);
		if (*g == ':')
			o->gamma = strtof(g + 1, &end);
		if ((end != NULL && *end != '\0') || !(o->gamma > 0))
			errx(2, "--schedule step:N[:G], N >= 1, G > 0");
	} else {
		errx(2, "--schedule: const, cosine or step:N[:G]");
	}
}

/* Takes one option, ch as getopt_long returns it, into cl. */
static void
option(int ch, char *arg, struct cmdline *cl)
{
	struct kz_train_opts *o = &cl->o;
	struct kz_err e;
	int v;

	switch (ch) {
	case 'a': cl->arch = arg; break;
	case 'o': cl->output = arg; break;
	case 'c': cl->classmap = arg; break;
	case 'b': o->batch = (int)integer(arg, 1, 65536, "-b"); break;
	case 'e': o->epochs = (int)integer(arg, 0, 100000, "-e"); break;
	case 'k': cl->knn_k = (int)integer(arg, 1, 1024, "-k"); break;
	case 'p':
		if (kz_math_parse(arg, &o->math) != 0)
			errx(2, "-p: auto, f32 or bf16, not \"%s\"", arg);
		break;
	case 'q': cl->quiet = 1; break;
	case 't': o->threads = (int)integer(arg, 1, 64, "-t"); break;
	case 'A':
		if (kz_augment_parse(arg, &o->aug, &e) != 0)
			errx(2, "%s", e.msg);
		break;
	case 'B':
		o->balance = word(arg, balances,
		    "--balance: none, sample or weight");
		break;
	case 'C': cl->checkpoint = arg; break;
	case 'E': o->ema = (float)number(arg, 0, 0.999999, "--ema"); break;
	case 'I': cl->init = word(arg, inits, "--init: fanin or he"); break;
	case 'K': cl->keep_best = 1; break;
	case 'L': o->lr = (float)number(arg, 0, 100, "--lr"); break;
	case 'M': o->momentum = (float)number(arg, 0, 1, "--momentum"); break;
	case 'O':
		v = word(arg, optimisers,
		    "--opt: sgd, nesterov, adam or adadelta");
		if (v == NESTEROV) {
			o->opt = KZ_SGD;
			o->nesterov = 1;
		} else {
			o->opt = v;
		}
		break;
	case 'R': cl->resume = arg; break;
	case 'F': cl->from = arg; break;
	case 'S': schedule(arg, o); break;
	case 's': o->seed = uinteger(arg, 0, UINT64_MAX, "--seed"); break;
	case 'l': o->smooth = (float)number(arg, 0, 0.5, "--smooth"); break;
	case 'h': o->hard = (float)number(arg, 0.01, 1, "--hard"); break;
	case 'x': o->sam = (float)number(arg, 1e-6, 10, "--sam"); break;
	case 'N': o->bn_bias_lr = (float)number(arg, 0.01, 1000, "--bn-lr");
		break;
	case 'V': cl->val = arg; break;
	case 'v': cl->val_every = integer(arg, 1, LLONG_MAX, "--val-every");
		break;
	case 'W': o->warmup = (int)integer(arg, 0, 1000, "--warmup"); break;
	case 'D': o->wd = (float)number(arg, 0, 1, "--wd"); break;
	case 'Z': cl->zero_res = 1; break;
	case 'H': o->whiten = 1; break;
	case 'w':
		cl->knn_distance = word(arg, weights,
		    "--weights: distance or uniform");
		break;
	default: usage();
	}
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

/* Fills cl from the command line, with the defaults of kz-train(1), or
 * exits 2 with the usage or a message naming the option.  Refuses a
 * terminal for the model before reading "-a @file". */
static void
parse_command_line(int argc, char *argv[], struct cmdline *cl)
{
	static const struct option longopts[] = {
		{ "arch", required_argument, NULL, 'a' },
		{ "output", required_argument, NULL, 'o' },
		{ "precision", required_argument, NULL, 'p' },
		{ "classmap", required_argument, NULL, 'c' },
		{ "batch", required_argument, NULL, 'b' },
		{ "epochs", required_argument, NULL, 'e' },
		{ "threads", required_argument, NULL, 't' },
		{ "augment", required_argument, NULL, 'A' },
		{ "balance", required_argument, NULL, 'B' },
		{ "bn-lr", required_argument, NULL, 'N' },
		{ "checkpoint", required_argument, NULL, 'C' },
		{ "ema", required_argument, NULL, 'E' },
		{ "from", required_argument, NULL, 'F' },
		{ "hard", required_argument, NULL, 'h' },
		{ "init", required_argument, NULL, 'I' },
		{ "keep-best", no_argument, NULL, 'K' },
		{ "lr", required_argument, NULL, 'L' },
		{ "momentum", required_argument, NULL, 'M' },
		{ "opt", required_argument, NULL, 'O' },
		{ "resume", required_argument, NULL, 'R' },
		{ "sam", required_argument, NULL, 'x' },
		{ "schedule", required_argument, NULL, 'S' },
		{ "seed", required_argument, NULL, 's' },
		{ "smooth", required_argument, NULL, 'l' },
		{ "val", required_argument, NULL, 'V' },
		{ "val-every", required_argument, NULL, 'v' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "wd", required_argument, NULL, 'D' },
		{ "weights", required_argument, NULL, 'w' },
		{ "whiten", no_argument, NULL, 'H' },
		{ "zero-res", no_argument, NULL, 'Z' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	memset(cl, 0, sizeof(*cl));
	cl->o = (struct kz_train_opts){
		.epochs = 10, .batch = 128, .opt = KZ_ADAM, .lr = -1,
		.momentum = 0.9f, .sched = KZ_SCHED_CONST, .gamma = 0.1f,
		.seed = 1, .threads = kz_ncpu(),
	};
	cl->knn_k = 4;
	cl->knn_distance = 1;
	while ((ch = getopt_long(argc, argv, "a:o:b:c:e:k:p:qt:", longopts,
	    NULL)) != -1)
		option(ch, optarg, cl);
	if (argc - optind > 1 || cl->output == NULL ||
	    (cl->arch == NULL && cl->resume == NULL))
		usage();
	cl->input = optind < argc ? argv[optind] : "-";
	if (cl->keep_best && cl->val == NULL)
		errx(2, "--keep-best needs --val to tell the best epoch");
	if (cl->val_every > 0 && cl->val == NULL)
		errx(2, "--val-every needs --val");
	if (cl->from != NULL && (cl->o.whiten || cl->init != KZ_INIT_FANIN ||
	    cl->zero_res || (cl->arch && strcmp(cl->arch, "knn") == 0)))
		errx(2, "--from: a network's weights, not --whiten's, "
		    "--init's, --zero-res's or a kNN model's");
	refuse_tty(cl->output);
	if (cl->arch != NULL && cl->arch[0] == '@')
		cl->arch = cl->arch_buf = arch_from_file(cl->arch + 1);
	if (cl->o.lr < 0)
		cl->o.lr = cl->o.opt == KZ_ADAM ? 1e-3f :
		    cl->o.opt == KZ_ADADELTA ? 1.0f : 0.05f;
}

/* The training command, without the options that only name files,
 * silence output or only report (--val-every), so that two runs
 * differing only there give the same model bytes; each argument
 * escaped (kz_escape), so that none can start a line of its own in the
 * model's metadata. */
static char *
command_line(int argc, char *argv[])
{
	static const char *drop[] = { "-o", "--output", "-c", "--classmap",
	    "--checkpoint", "--resume", "--val-every", NULL };
	size_t len = 1;
	char *s;

	for (int i = 0; i < argc; i++)
		len += 4 * strlen(argv[i]) + 1;
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
			} else if (n == 2 && strncmp(argv[i], drop[j], 2) ==
			    0 && argv[i][2]) {
				skip = 1;
			}
		}
		if (strcmp(argv[i], "-q") == 0)
			skip = 1;
		if (skip) {
			i += skip - 1;
			continue;
		}
		char *arg = kz_escape(argv[i]);
		if (arg == NULL)
			err(1, NULL);
		strcat(s, " ");
		strcat(s, arg);
		free(arg);
	}
	return s;
}

/* A network's training: the model written at the end, its trainer, and
 * for --keep-best the best epoch so far. */
struct run {
	struct kz_model *m;
	struct kz_trainer *t;
	double best;		/* the best validation accuracy; -1: none */
	uint32_t best_epoch;	/* its epoch, from 1 */
	float *best_params;	/* its parameters and statistics */
	float *best_state;
};

/* A kNN model is its training set: written at once, taking the
 * stream's images and labels over. */
static void
write_knn(const struct cmdline *cl, struct kz_model *m,
    struct kz_dataset *data)
{
	struct kz_err e;

	m->type = KZ_MODEL_KNN;
	m->arch = strdup("knn");
	m->knn_k = (uint32_t)cl->knn_k;
	m->knn_distance = cl->knn_distance;
	m->n = data->n;
	m->pixels = data->pixels;
	m->labels = data->labels;
	m->std = 1;
	data->pixels = NULL;
	data->labels = NULL;
	if (kz_model_write(m, cl->output, &e) != 0)
		die_write(&e);
	if (!cl->quiet)
		fprintf(stderr, "kz-train: knn, k %d, %s weights, %zu "
		    "records of %ux%u in %u classes\n", cl->knn_k,
		    cl->knn_distance ? "distance" : "uniform", (size_t)m->n,
		    m->width, m->height, m->nclasses);
}

/* --val: the validation stream, which must fit the training stream. */
static void
read_val(const char *path, const struct kz_dataset *data,
    struct kz_dataset *val)
{
	struct kz_err e;

	if (kz_dataset_read(path, val, &e) != 0)
		errx(1, "%s", e.msg);
	if (val->width != data->width || val->height != data->height ||
	    val->nclasses != data->nclasses)
		errx(1, "%s: %ux%u with %u classes does not fit the "
		    "training stream's %ux%u with %u", path, val->width,
		    val->height, val->nclasses, data->width, data->height,
		    data->nclasses);
}

/* --resume: reads the checkpoint into ck, which must be one, trained as
 * -a says if given, for the stream's geometry and classes.  Returns its
 * architecture. */
static const char *
read_checkpoint(const struct cmdline *cl, const struct kz_dataset *data,
    struct kz_model *ck)
{
	struct kz_err e;

	if (kz_model_read(cl->resume, ck, &e) != 0)
		errx(1, "%s", e.msg);
	if (ck->type != KZ_MODEL_NET || !ck->ts.present)
		errx(1, "%s: not a training checkpoint", cl->resume);
	if (cl->arch != NULL && strcmp(cl->arch, ck->arch) != 0)
		errx(1, "%s: trained as \"%s\", not \"%s\"", cl->resume,
		    ck->arch, cl->arch);
	if (ck->width != data->width || ck->height != data->height ||
	    ck->nclasses != data->nclasses)
		errx(1, "%s: a %ux%u model of %u classes does not fit "
		    "this %ux%u stream of %u", cl->resume, ck->width,
		    ck->height, ck->nclasses, data->width, data->height,
		    data->nclasses);
	return ck->arch;
}

/* --from: m's net starts as path's trained one, and reads its input
 * on the same scale, which the first layer learned. */
static void
adopt(const char *path, struct kz_model *m)
{
	struct kz_model src;
	struct kz_err e;

	if (kz_model_read(path, &src, &e) != 0)
		errx(1, "%s", e.msg);
	if (src.type != KZ_MODEL_NET || kz_net_adopt(m->net, src.net, &e))
		errx(1, "%s: %s", path, src.type != KZ_MODEL_NET ?
		    "not a single network" : e.msg);
	m->mean = src.mean;
	m->std = src.std;
	kz_model_free(&src);
}

/* Sets up r: a new network of cl->arch, or the checkpoint's (whose net
 * it takes over), its trainer, and room for the best epoch. */
static void
start_net(const struct cmdline *cl, const struct kz_dataset *data,
    struct kz_model *ck, struct run *r)
{
	struct kz_model *m = r->m;
	struct kz_shape in = { 1, (int)data->height, (int)data->width };
	struct kz_err e;

	m->type = KZ_MODEL_NET;
	m->arch = strdup(cl->arch);
	if (cl->resume != NULL) {
		m->net = ck->net;
		ck->net = NULL;
		m->mean = ck->mean;
		m->std = ck->std;
	} else {
		if ((m->net = kz_net_new(cl->arch, in, (int)data->nclasses,
		    cl->o.seed, &e)) == NULL)
			errx(2, "%s", e.msg);
		if (cl->init != KZ_INIT_FANIN || cl->zero_res)
			kz_net_init(m->net, cl->init, cl->zero_res,
			    cl->o.seed);
		kz_dataset_stats(data, &m->mean, &m->std);
		if (cl->from != NULL)
			adopt(cl->from, m);
		if (cl->o.whiten && kz_net_whiten(m->net, data, m->mean,
		    m->std, &e) != 0)
			errx(2, "%s", e.msg);
	}
	if (cl->resume != NULL) {
		/* Whitening is not recorded in the checkpoint: its first
		 * layer, untouched by training, shows it. */
		int whitened = kz_net_whitened(m->net, data, m->mean, m->std);

		if (whitened < 0)
			err(1, NULL);
		if (whitened && !cl->o.whiten)
			errx(1, "%s: trained with --whiten; resume with it",
			    cl->resume);
		if (!whitened && cl->o.whiten)
			errx(1, "%s: its first layer does not whiten this "
			    "stream's patches (trained without --whiten, or "
			    "on other data)", cl->resume);
	}
	if ((r->t = kz_trainer_new(m->net, data, &cl->o, m->mean, m->std,
	    &e)) == NULL)
		errx(1, "%s", e.msg);
	if (cl->keep_best) {
		r->best_params = malloc(m->net->nparams * sizeof(float) + 4);
		r->best_state = malloc(m->net->nstate * sizeof(float) + 4);
		if (r->best_params == NULL || r->best_state == NULL)
			err(1, NULL);
	}
}

/* Continues the checkpoint ck: the trainer's state, and the best epoch
 * when --keep-best has one to go on from. */
static void
restore(const struct cmdline *cl, const struct kz_model *ck, struct run *r)
{
	const struct kz_net *net = r->m->net;
	struct kz_err e;

	if (kz_trainer_restore(r->t, &ck->ts, &e) != 0)
		errx(1, "%s: %s", cl->resume, e.msg);
	r->best = ck->ts.best;
	r->best_epoch = ck->ts.best_epoch;
	if (cl->keep_best && ck->ts.best_params != NULL) {
		memcpy(r->best_params, ck->ts.best_params,
		    net->nparams * sizeof(float));
		memcpy(r->best_state, ck->ts.best_state,
		    net->nstate * sizeof(float));
	} else if (cl->keep_best) {
		r->best = -1;
	}
}

/* The lines on stderr before the first epoch. */
static void
announce(const struct cmdline *cl, const struct run *r, size_t n)
{
	char ranks[32] = "";

	if (dist.size > 1)
		snprintf(ranks, sizeof(ranks), "%d ranks x ", dist.size);
	fprintf(stderr, "kz-train: %s, %zu parameters, %.1f MFLOP per image "
	    "forward; %zu training records%s; %s%d threads%s\n", cl->arch,
	    r->m->net->nparams, kz_net_flops(r->m->net) * 2 / 1e6, n,
	    !cl->val ? "" : cl->o.ema > 0 ? ", validation of the weight "
	    "average" : ", validation on", ranks, cl->o.threads,
	    cl->o.math == KZ_MATH_BF16 ? "; 3x3 convolutions in bfloat16 "
	    "products" : "");
	if (cl->resume != NULL)
		fprintf(stderr, "kz-train: resuming %s after epoch %u\n",
		    cl->resume, kz_trainer_epochs_done(r->t));
}

/* --checkpoint: everything needed to go on after the epoch just done,
 * the best epoch's weights included. */
static void
save_checkpoint(const struct cmdline *cl, const struct run *r)
{
	struct kz_model c = *r->m;
	struct kz_err e;
	int rc;

	memset(&c.ts, 0, sizeof(c.ts));
	if ((rc = kz_trainer_save(r->t, &c.ts, &e)) != 0)
		kz_err_prefix(&e, cl->checkpoint);
	c.ts.best = r->best;
	c.ts.best_epoch = r->best_epoch;
	c.ts.best_params = cl->keep_best && r->best >= 0 ? r->best_params :
	    NULL;
	c.ts.best_state = r->best_state;
	if (rc == 0)
		rc = kz_model_write(&c, cl->checkpoint, &e);
	free(c.ts.opt_m);
	free(c.ts.opt_v);
	free(c.ts.ema_params);
	free(c.ts.ema_state);
	if (rc != 0)
		errx(1, "%s", e.msg);
}

/* The accuracy on val of what would be written now.  With --ema, the
 * average is what is validated, kept and written; the weights it
 * follows train on. */
static double
val_accuracy(struct run *r, const struct kz_dataset *val)
{
	double acc;

	kz_trainer_swap_ema(r->t);
	acc = kz_trainer_accuracy(r->t, val);
	kz_trainer_swap_ema(r->t);
	return acc;
}

/* Validates the epoch just trained on val (when given) and keeps it if
 * it is the best so far.  Returns the accuracy, or -1 without val. */
static double
validate(const struct cmdline *cl, const struct kz_dataset *val,
    uint32_t epoch, struct run *r)
{
	const struct kz_net *net = r->m->net;
	double acc = cl->val != NULL ? val_accuracy(r, val) : -1;

	/* Ties go to the later epoch: further along its schedule. */
	if (cl->keep_best && acc >= r->best) {
		r->best = acc;
		r->best_epoch = epoch;
		kz_trainer_swap_ema(r->t);
		memcpy(r->best_params, net->params,
		    net->nparams * sizeof(float));
		memcpy(r->best_state, net->state, net->nstate * sizeof(float));
		kz_trainer_swap_ema(r->t);
	}
	return acc;
}

/* Seconds on a clock that only goes forward. */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* What the trainer's progress calls see: the bar, and --val-every. */
struct progress {
	const struct cmdline *cl;
	const struct kz_dataset *val;
	struct run *r;
	int tty, epoch;
	double last, n;			/* last fraction shown; records */
	double start, val_s;		/* when training began; seconds spent
					   validating since, and in this epoch */
	double epoch_val_s;
	long long next_val;		/* --val-every: images done at the
					   next validation */
};

/* Training seconds so far, validation not counted. */
static double
training_seconds(const struct progress *p)
{
	return now() - p->start - p->val_s;
}

/* --val-every: one line on stderr, the accuracy on val after epochs
 * (fractional) of training and the training time so far: a curve of
 * accuracy against time. */
static void
show_point(const struct progress *p, double epochs, double acc,
    double train_s)
{
	if (!p->cl->quiet)
		fprintf(stderr, "%sval  epoch %.3f  %6.2f%%  %.1f s\n",
		    p->tty ? "\r\033[K" : "", epochs, 100 * acc, train_s);
}

/* --val-every within an epoch: the weights (the average with --ema)
 * scored on val and shown; not kept by --keep-best, which chooses
 * among whole epochs. */
static void
validate_point(struct progress *p, double epochs)
{
	double t = now(), train_s = training_seconds(p), acc;

	acc = val_accuracy(p->r, p->val);
	show_point(p, epochs, acc, train_s);
	t = now() - t;
	p->val_s += t;
	p->epoch_val_s += t;
}

static void
show_progress(void *arg, double done, double loss, double acc, double img_s)
{
	struct progress *p = arg;
	const struct cmdline *cl = p->cl;
	long long seen = (long long)((p->epoch - 1) * p->n + done * p->n +
	    0.5);

	if (cl->val_every > 0 && done < 1 && seen >= p->next_val) {
		validate_point(p, seen / p->n);
		while (p->next_val <= seen)
			p->next_val += cl->val_every;
	}
	if (cl->quiet || !p->tty || done - p->last < 0.01)
		return;
	p->last = done;
	/* ETA from this epoch's speed; validation passes are not counted. */
	double eta = ((1 - done) + (cl->o.epochs - p->epoch)) * p->n / img_s;
	fprintf(stderr, "\repoch %d/%d %3.0f%%  loss %.4f  acc %6.2f%%  "
	    "%6.0f img/s  ETA %d:%02d ", p->epoch, cl->o.epochs, 100 * done,
	    loss, 100 * acc, img_s, (int)eta / 60, (int)eta % 60);
}

/* Trains the epochs still to do, each validated, reported and
 * checkpointed as the options say. */
static void
train(const struct cmdline *cl, const struct kz_dataset *data,
    const struct kz_dataset *val, struct run *r)
{
	int tty = isatty(STDERR_FILENO);
	struct progress pr = { .cl = cl, .val = val, .r = r, .tty = tty,
	    .n = (double)data->n, .start = now() };

	pr.next_val = (long long)kz_trainer_epochs_done(r->t) * data->n +
	    cl->val_every;
	while ((int)kz_trainer_epochs_done(r->t) < cl->o.epochs) {
		struct kz_epoch_stats st;
		double vacc;
		char v[32] = "";

		pr.epoch = (int)kz_trainer_epochs_done(r->t) + 1;
		pr.last = 0;
		pr.epoch_val_s = 0;
		if (kz_trainer_epoch(r->t, &st, show_progress, &pr) != 0)
			errx(1, "rank %d: exchanging gradients with the other "
			    "ranks failed", dist.rank);
		/* The epoch's figures without its validation points. */
		st.seconds -= pr.epoch_val_s;
		st.images_per_s = data->n / (st.seconds > 0 ? st.seconds :
		    1e-9);
		double train_s = training_seconds(&pr), t = now();
		vacc = validate(cl, val, (uint32_t)pr.epoch, r);
		pr.val_s += now() - t;
		if (cl->val_every > 0)
			show_point(&pr, pr.epoch, vacc, train_s);
		while (cl->val_every > 0 &&
		    pr.next_val <= pr.epoch * (long long)data->n)
			pr.next_val += cl->val_every;
		if (!cl->quiet) {
			if (vacc >= 0)
				snprintf(v, sizeof(v), "  val %6.2f%%",
				    100 * vacc);
			fprintf(stderr, "%sepoch %d/%d  loss %.4f  acc "
			    "%6.2f%%%s  %.0f img/s  %.1f s  lr %.3g\n", tty ?
			    "\r\033[K" : "", pr.epoch, cl->o.epochs, st.loss,
			    100 * st.acc, v, st.images_per_s, st.seconds,
			    st.lr);
		}
		if (cl->checkpoint != NULL)
			save_checkpoint(cl, r);
	}
}

/* Puts the weights to be written in the net: the best epoch's with
 * --keep-best, else those the trainer holds (the average with --ema). */
static void
finish(const struct cmdline *cl, struct run *r)
{
	struct kz_net *net = r->m->net;

	if (cl->keep_best && r->best >= 0) {
		memcpy(net->params, r->best_params,
		    net->nparams * sizeof(float));
		memcpy(net->state, r->best_state, net->nstate * sizeof(float));
		if (!cl->quiet)
			fprintf(stderr, "kz-train: keeping epoch %u "
			    "(validation %.2f%%)\n", r->best_epoch,
			    100 * r->best);
	} else {
		kz_trainer_swap_ema(r->t);
	}
}

int
main(int argc, char *argv[])
{
	struct cmdline cl;
	struct kz_dataset data, val = { 0 };
	struct kz_model m = { 0 }, ck = { 0 };
	struct run r = { &m, NULL, -1, 0, NULL, NULL };
	struct kz_err e;

	kz_ignore_sigpipe();
	/* Our threads each call BLAS: it must not start its own. */
	kz_blas_threads(1);
	version_option(argc, argv);
	join_job(&argc, &argv);
	parse_command_line(argc, argv, &cl);
	{
		const char *why;

		cl.o.math = kz_math_resolve(cl.o.math, &why);
		if (why != NULL && !cl.quiet)
			warnx("-p bf16: %s; single precision instead", why);
	}
	if (dist.size > 1) {
		cl.o.dist = &dist;
		/* Rank 0 reports, validates and writes; the others train. */
		if (dist.rank != 0) {
			cl.quiet = 1;
			cl.val = NULL;
			cl.val_every = 0;
			cl.checkpoint = NULL;
		}
	}
	if (kz_dataset_read(cl.input, &data, &e) != 0)
		errx(1, "%s", e.msg);
	m.width = data.width;
	m.height = data.height;
	m.nclasses = data.nclasses;
	/* argv as getopt_long permuted it, as the command always was. */
	m.command = command_line(argc, argv);
	m.date = model_date();
	m.version = strdup(KZ_VERSION);
	if (cl.classmap != NULL) {
		if (kz_classmap_read(cl.classmap, &m.classmap, &e) != 0)
			errx(1, "%s", e.msg);
		if (m.classmap.n != data.nclasses)
			errx(1, "%s: %zu classes, but the training stream has "
			    "%u", cl.classmap, m.classmap.n, data.nclasses);
	}
	if (cl.arch != NULL && strcmp(cl.arch, "knn") == 0) {
		if (dist.rank == 0)
			write_knn(&cl, &m, &data);
	} else {
		if (cl.val != NULL)
			read_val(cl.val, &data, &val);
		if (cl.resume != NULL)
			cl.arch = read_checkpoint(&cl, &data, &ck);
		start_net(&cl, &data, &ck, &r);
		if (cl.resume != NULL)
			restore(&cl, &ck, &r);
		if (!cl.quiet)
			announce(&cl, &r, data.n);
		train(&cl, &data, &val, &r);
		finish(&cl, &r);
		if (dist.rank == 0 && kz_model_write(&m, cl.output, &e) != 0)
			die_write(&e);
		kz_trainer_free(r.t);
	}
	kz_model_free(&m);
	kz_model_free(&ck);
	kz_dataset_free(&data);
	kz_dataset_free(&val);
	free(r.best_params);
	free(r.best_state);
	free(cl.arch_buf);
	leave_job();
	return 0;
}
