/*
 * kz-model - describe a model file, or write a copy of it with a class
 * map, a test-time setting or a storage precision of its parameters;
 * given several models, write them as one ensemble; keep some members
 * of an ensemble.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define MAX_SETTINGS 16

/* The command line, as parse_command_line leaves it. */
struct cmdline {
	const char *map_path;		/* -c: the class map to store */
	const char *figures;		/* -F: what it scored, as text */
	int precision;			/* -p: enum kz_precision, -1 kept */
	int qdense, qconv;		/* -p qD,C: KZ_QN's widths */
	const char *settings[MAX_SETTINGS];	/* -s: "name=value" */
	int nsettings;
	const char *output;		/* -o: the copy written */
	int keep[KZ_MAX_MEMBERS];	/* -x: members kept, from 0 */
	int nkeep;			/* 0: no -x */
	char **models;			/* files or names: one, or with -o
					   up to KZ_MAX_MEMBERS */
	int nmodels;
};

static void
usage(void)
{
	fprintf(stderr, "usage: kz-model [-c classmap] [-F figures] "
	    "[-p f32|f16|q8|qD[,C]] [-s setting=value]...\n"
	    "                [-x member[,member ...]] -o file model...\n"
	    "       kz-model model\n");
	version_usage("kz-model");
	exit(2);
}

/* Fills keep with the 1-based member numbers of list ("1,3"), as
 * indices from 0; returns how many, or exits 2 naming the word. */
static int
parse_members(const char *list, int keep[KZ_MAX_MEMBERS])
{
	const char *p = list;
	int n = 0;

	for (;;) {
		char *end;
		long v = strtol(p, &end, 10);

		if (end == p || v < 1 || v > KZ_MAX_MEMBERS ||
		    (*end != ',' && *end != '\0'))
			errx(2, "-x: member numbers from 1 to %d, separated "
			    "by commas, not \"%s\"", KZ_MAX_MEMBERS, list);
		if (n == KZ_MAX_MEMBERS)
			errx(2, "-x: at most %d members", KZ_MAX_MEMBERS);
		for (int i = 0; i < n; i++)
			if (keep[i] == (int)v - 1)
				errx(2, "-x: member %ld twice", v);
		keep[n++] = (int)v - 1;
		if (*end == '\0')
			return n;
		p = end + 1;
	}
}

/* -p qD or qD,C: KZ_QN with D bits for dense layers' weights and C
 * (8 unless given) for convolutions', each 2 to 8; exits 2 otherwise. */
static void
parse_narrow(const char *arg, struct cmdline *cl)
{
	char *end;
	long dense = -1, conv = 8;

	if (arg[0] == 'q' && isdigit((unsigned char)arg[1])) {
		dense = strtol(arg + 1, &end, 10);
		if (*end == ',' && isdigit((unsigned char)end[1]))
			conv = strtol(end + 1, &end, 10);
		if (*end != '\0')
			dense = -1;
	}
	if (dense < 2 || dense > 8 || conv < 2 || conv > 8)
		errx(2, "-p: f32, f16, q8, or qD or qD,C with D and C "
		    "from 2 to 8, not \"%s\"", arg);
	cl->qdense = (int)dense;
	cl->qconv = (int)conv;
	cl->precision = KZ_QN;
}

/* Fills cl from the command line, or exits 2 with the usage or a
 * message naming the option. */
static void
parse_command_line(int argc, char *argv[], struct cmdline *cl)
{
	int ch;

	memset(cl, 0, sizeof(*cl));
	cl->precision = -1;
	while ((ch = getopt(argc, argv, "c:F:p:s:x:o:")) != -1) {
		switch (ch) {
		case 'c': cl->map_path = optarg; break;
		case 'F': cl->figures = optarg; break;
		case 'p':
			if (strcmp(optarg, "f32") == 0)
				cl->precision = KZ_F32;
			else if (strcmp(optarg, "f16") == 0)
				cl->precision = KZ_F16;
			else if (strcmp(optarg, "q8") == 0)
				cl->precision = KZ_Q8;
			else
				parse_narrow(optarg, cl);
			break;
		case 's':
			if (cl->nsettings == MAX_SETTINGS)
				errx(2, "at most %d settings", MAX_SETTINGS);
			cl->settings[cl->nsettings++] = optarg;
			break;
		case 'x': cl->nkeep = parse_members(optarg, cl->keep); break;
		case 'o': cl->output = optarg; break;
		default: usage();
		}
	}
	cl->models = argv + optind;
	cl->nmodels = argc - optind;
	if (cl->nmodels < 1 || (cl->nmodels > 1 && cl->output == NULL))
		usage();
	if (cl->nmodels > KZ_MAX_MEMBERS)
		errx(2, "at most %d models in an ensemble", KZ_MAX_MEMBERS);
	if ((cl->map_path != NULL || cl->figures != NULL ||
	    cl->precision >= 0 || cl->nsettings > 0 || cl->nkeep > 0) &&
	    cl->output == NULL)
		usage();
	if (cl->nkeep > 0 && cl->nmodels > 1)
		errx(2, "-x: one ensemble, not %d models", cl->nmodels);
}

/* How m's parameters are stored, as -p names it, into buf. */
static const char *
precision_name(const struct kz_model *m, char buf[16])
{
	static const char *const names[] = { "f32", "f16", "q8" };

	if (m->precision != KZ_QN)
		return names[m->precision];
	if (m->qconv == 8)
		snprintf(buf, 16, "q%d", m->qdense);
	else
		snprintf(buf, 16, "q%d,%d", m->qdense, m->qconv);
	return buf;
}

/* The description: one "key<TAB>value" line per field; an ensemble's
 * members add "member<TAB>N<TAB>arch<TAB>parameters<TAB>precision<TAB>
 * size". */
static void
describe(const char *path, const struct kz_model *m)
{
	char s[KZ_SETTINGS_TEXT], buf[16];

	printf("file\t%s\n", path);
	printf("type\t%s\n", m->type == KZ_MODEL_KNN ? "knn" :
	    m->type == KZ_MODEL_NET ? "net" : "ensemble");
	printf("arch\t%s\n", m->arch);
	printf("size\t%ux%u\n", m->width, m->height);
	printf("classes\t%u\n", m->nclasses);
	if (m->type == KZ_MODEL_KNN)
		printf("records\t%llu\n", (unsigned long long)m->n);
	else if (m->type == KZ_MODEL_NET)
		printf("parameters\t%zu\nprecision\t%s\n", m->net->nparams,
		    precision_name(m, buf));
	for (int i = 0; i < m->nmembers; i++) {
		const struct kz_model *mm = &m->members[i];

		if (mm->type == KZ_MODEL_NET)
			printf("member\t%d\t%s\t%zu\t%s\t%ux%u\n", i + 1,
			    mm->arch, mm->net->nparams,
			    precision_name(mm, buf), mm->width, mm->height);
		else
			printf("member\t%d\tknn\t%llu records\t-\t%ux%u\n",
			    i + 1, (unsigned long long)mm->n, mm->width,
			    mm->height);
	}
	printf("classmap\t");
	for (size_t i = 0; i < m->classmap.n && i < 10; i++)
		printf("%s", m->classmap.utf8[i]);
	printf("%s\n", m->classmap.n > 10 ? "..." : m->classmap.n ? "" :
	    "none");
	kz_settings_format(&m->settings, s, sizeof(s));
	printf("settings\t%s\n", *s ? s : "none");
	printf("figures\t%s\n", m->figures ? m->figures : "");
	printf("version\t%s\n", m->version ? m->version : "unknown");
	printf("date\t%s\n", m->date ? m->date : "");
	printf("command\t%s\n", m->command ? m->command : "");
}

/* Sets the storage precision of m's parameters (its members' for an
 * ensemble) to cl's -p; exits naming path for a kNN model asked to store
 * anything but f32. */
static void
set_precision(struct kz_model *m, const struct cmdline *cl, const char *path)
{
	enum kz_precision p = (enum kz_precision)cl->precision;

	if (m->type == KZ_MODEL_ENSEMBLE) {
		for (int i = 0; i < m->nmembers; i++)
			set_precision(&m->members[i], cl, path);
		return;
	}
	if (m->type != KZ_MODEL_NET && p != KZ_F32)
		errx(1, "%s: a kNN model stores pixels, not parameters",
		    path);
	m->precision = p;
	m->qdense = cl->qdense;
	m->qconv = cl->qconv;
}

/* The largest width and height among n models: an ensemble's size. */
static void
largest_size(const struct kz_model *ms, int n, uint32_t *w, uint32_t *h)
{
	*w = *h = 0;
	for (int i = 0; i < n; i++) {
		*w = ms[i].width > *w ? ms[i].width : *w;
		*h = ms[i].height > *h ? ms[i].height : *h;
	}
}

/* Keeps the members of ensemble m (read from path) that keep lists, in
 * the order given; one left is written as a model of its own, with m's
 * class map and settings.  The figures were the whole ensemble's, so
 * they go, and the date is this run's. */
static void
keep_members(struct kz_model *m, const int *keep, int nkeep,
    const char *path)
{
	struct kz_model *kept;

	if (m->type != KZ_MODEL_ENSEMBLE)
		errx(1, "%s: -x: not an ensemble", path);
	for (int i = 0; i < nkeep; i++)
		if (keep[i] >= m->nmembers)
			errx(1, "%s: -x: no member %d (it has %d)", path,
			    keep[i] + 1, m->nmembers);
	free(m->figures);
	m->figures = NULL;
	if ((kept = calloc(nkeep, sizeof(*kept))) == NULL)
		err(1, NULL);
	for (int i = 0; i < nkeep; i++) {
		kept[i] = m->members[keep[i]];
		memset(&m->members[keep[i]], 0, sizeof(m->members[0]));
	}
	for (int i = 0; i < m->nmembers; i++)
		kz_model_free(&m->members[i]);
	free(m->members);
	m->members = kept;
	m->nmembers = nkeep;
	if (nkeep > 1) {
		/* The largest size of those kept, as a new ensemble of
		 * them would take: each divides the old, so each divides
		 * this. */
		largest_size(kept, nkeep, &m->width, &m->height);
		free(m->date);
		m->date = model_date();
		return;
	}
	kz_classmap_free(&kept[0].classmap);
	kept[0].classmap = m->classmap;
	memset(&m->classmap, 0, sizeof(m->classmap));
	kept[0].settings = m->settings;
	m->nmembers = 0;
	m->members = NULL;
	kz_model_free(m);
	*m = kept[0];
	free(kept);
}

/* The ensemble of the n models read into ms (freed into it), an
 * ensemble among them joining as its members: its class map and
 * settings are the first model's, and so are its figures unless that
 * was an ensemble (whose figures were for other members); its date is
 * this run's. */
static void
make_ensemble(struct kz_model *ms, int n, char **paths, struct kz_model *m)
{
	struct kz_model *flat;
	int nflat = 0;

	uint32_t w, h;

	/* The ensemble takes the largest size, which the others must
	 * divide.  Checked before anything moves out of ms, so that an
	 * error leaves every member whole (and freed by exit). */
	largest_size(ms, n, &w, &h);
	for (int i = 0; i < n; i++) {
		nflat += ms[i].type == KZ_MODEL_ENSEMBLE ? ms[i].nmembers : 1;
		if (nflat > KZ_MAX_MEMBERS)
			errx(1, "%s: more than %d members in all", paths[i],
			    KZ_MAX_MEMBERS);
		if (!kz_model_member_fits(&ms[i], w, h, ms[0].nclasses))
			errx(1, "%s: a %ux%u model of %u classes cannot join "
			    "an ensemble of %u classes (%s's) and size %ux%u "
			    "(a member's size divides the ensemble's)",
			    paths[i], ms[i].width, ms[i].height,
			    ms[i].nclasses, ms[0].nclasses, paths[0], w, h);
	}
	memset(m, 0, sizeof(*m));
	m->type = KZ_MODEL_ENSEMBLE;
	m->width = w;
	m->height = h;
	m->nclasses = ms[0].nclasses;
	m->std = 1;
	m->classmap = ms[0].classmap;
	memset(&ms[0].classmap, 0, sizeof(ms[0].classmap));
	m->settings = ms[0].settings;
	if (ms[0].type != KZ_MODEL_ENSEMBLE) {
		m->figures = ms[0].figures;
		ms[0].figures = NULL;
	}
	if ((flat = calloc(nflat, sizeof(*flat))) == NULL)
		err(1, NULL);
	nflat = 0;
	for (int i = 0; i < n; i++) {
		if (ms[i].type != KZ_MODEL_ENSEMBLE) {
			flat[nflat++] = ms[i];
			continue;
		}
		for (int j = 0; j < ms[i].nmembers; j++)
			flat[nflat++] = ms[i].members[j];
		free(ms[i].members);
		ms[i].members = NULL;
		ms[i].nmembers = 0;
		kz_model_free(&ms[i]);
	}
	m->nmembers = nflat;
	m->members = flat;
	free(ms);
	if ((m->arch = strdup("ensemble")) == NULL)
		err(1, NULL);
	m->date = model_date();
}

int
main(int argc, char *argv[])
{
	struct cmdline cl;
	struct kz_model m;
	/* Static, so that what they hold stays reachable when an error
	 * exits from deep inside (LeakSanitizer looks from here). */
	static struct kz_model *ms;
	static char **paths;
	struct kz_err e;

	version_option(argc, argv);
	parse_command_line(argc, argv, &cl);
	if ((paths = calloc(cl.nmodels, sizeof(*paths))) == NULL ||
	    (ms = calloc(cl.nmodels, sizeof(*ms))) == NULL)
		err(1, NULL);
	for (int i = 0; i < cl.nmodels; i++) {
		paths[i] = model_file(cl.models[i]);
		if (kz_model_read(paths[i], &ms[i], &e) != 0)
			errx(1, "%s", e.msg);
	}
	if (cl.nmodels > 1) {
		make_ensemble(ms, cl.nmodels, paths, &m);
	} else {
		m = ms[0];
		free(ms);
		if (cl.nkeep > 0)
			keep_members(&m, cl.keep, cl.nkeep, paths[0]);
	}
	if (cl.output == NULL) {
		describe(paths[0], &m);
		check_stdout(0);
	} else {
		for (int i = 0; i < cl.nsettings; i++)
			if (kz_settings_set(&m.settings, cl.settings[i],
			    &e) != 0)
				errx(2, "-s: %s", e.msg);
		if (cl.map_path != NULL) {
			kz_classmap_free(&m.classmap);
			if (kz_classmap_read(cl.map_path, &m.classmap,
			    &e) != 0)
				errx(1, "%s", e.msg);
			if (m.classmap.n != m.nclasses)
				errx(1, "%s: %zu classes, but model %s has %u",
				    cl.map_path, m.classmap.n, paths[0],
				    m.nclasses);
		}
		if (cl.figures != NULL) {
			free(m.figures);
			if ((m.figures = strdup(cl.figures)) == NULL)
				err(1, NULL);
		}
		if (cl.precision >= 0)
			set_precision(&m, &cl,
			    paths[0]);
		/* The version that wrote the file: this one. */
		free(m.version);
		if ((m.version = strdup(KZ_VERSION)) == NULL)
			err(1, NULL);
		if (kz_model_write(&m, cl.output, &e) != 0)
			errx(1, "%s", e.msg);
	}
	kz_model_free(&m);
	for (int i = 0; i < cl.nmodels; i++)
		free(paths[i]);
	free(paths);
	return 0;
}
