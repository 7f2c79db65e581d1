/*
 * kz-model - describe a model file, or write a copy of it with a class
 * map, a test-time setting or a storage precision of its parameters.
 */
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
	const char *settings[MAX_SETTINGS];	/* -s: "name=value" */
	int nsettings;
	const char *output;		/* -o: the copy written */
	const char *model;		/* a file or a name */
};

static void
usage(void)
{
	fprintf(stderr, "usage: kz-model [-c classmap] [-F figures] "
	    "[-p f32|f16] [-s setting=value]...\n"
	    "                -o file model\n"
	    "       kz-model model\n");
	version_usage("kz-model");
	exit(2);
}

/* Fills cl from the command line, or exits 2 with the usage or a
 * message naming the option. */
static void
parse_command_line(int argc, char *argv[], struct cmdline *cl)
{
	int ch;

	memset(cl, 0, sizeof(*cl));
	cl->precision = -1;
	while ((ch = getopt(argc, argv, "c:F:p:s:o:")) != -1) {
		switch (ch) {
		case 'c': cl->map_path = optarg; break;
		case 'F': cl->figures = optarg; break;
		case 'p':
			if (strcmp(optarg, "f32") == 0)
				cl->precision = KZ_F32;
			else if (strcmp(optarg, "f16") == 0)
				cl->precision = KZ_F16;
			else
				errx(2, "-p: f32 or f16, not \"%s\"", optarg);
			break;
		case 's':
			if (cl->nsettings == MAX_SETTINGS)
				errx(2, "at most %d settings", MAX_SETTINGS);
			cl->settings[cl->nsettings++] = optarg;
			break;
		case 'o': cl->output = optarg; break;
		default: usage();
		}
	}
	if (argc - optind != 1)
		usage();
	cl->model = argv[optind];
	if ((cl->map_path != NULL || cl->figures != NULL ||
	    cl->precision >= 0 || cl->nsettings > 0) != (cl->output != NULL))
		usage();
}

/* The description: one "key<TAB>value" line per field. */
static void
describe(const char *path, const struct kz_model *m)
{
	char s[KZ_SETTINGS_TEXT];

	printf("file\t%s\n", path);
	printf("type\t%s\n", m->type == KZ_MODEL_KNN ? "knn" : "net");
	printf("arch\t%s\n", m->arch);
	printf("size\t%ux%u\n", m->width, m->height);
	printf("classes\t%u\n", m->nclasses);
	if (m->type == KZ_MODEL_KNN)
		printf("records\t%llu\n", (unsigned long long)m->n);
	else
		printf("parameters\t%zu\nprecision\t%s\n", m->net->nparams,
		    m->precision == KZ_F16 ? "f16" : "f32");
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

int
main(int argc, char *argv[])
{
	struct cmdline cl;
	struct kz_model m;
	struct kz_err e;
	char *path;

	version_option(argc, argv);
	parse_command_line(argc, argv, &cl);
	path = model_file(cl.model);
	if (kz_model_read(path, &m, &e) != 0)
		errx(1, "%s", e.msg);
	if (cl.output == NULL) {
		describe(path, &m);
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
				    cl.map_path, m.classmap.n, path,
				    m.nclasses);
		}
		if (cl.figures != NULL) {
			free(m.figures);
			if ((m.figures = strdup(cl.figures)) == NULL)
				err(1, NULL);
		}
		if (cl.precision >= 0) {
			if (m.type != KZ_MODEL_NET && cl.precision != KZ_F32)
				errx(1, "%s: a kNN model stores pixels, not "
				    "parameters", path);
			m.precision = cl.precision;
		}
		/* The version that wrote the file: this one. */
		free(m.version);
		if ((m.version = strdup(KZ_VERSION)) == NULL)
			err(1, NULL);
		if (kz_model_write(&m, cl.output, &e) != 0)
			errx(1, "%s", e.msg);
	}
	kz_model_free(&m);
	free(path);
	return 0;
}
