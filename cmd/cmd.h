/* cmd.h - what every kz program does the same way: report and exit.
 * Programs only (library code never exits or prints). */
#ifndef KZ_CMD_H
#define KZ_CMD_H

#include <err.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kz.h"
#include "model.h"

#ifndef KZ_SHAREDIR
#define KZ_SHAREDIR "/usr/local/share/kz"	/* the Makefile defines it */
#endif

/* The date a model is made, for its META: now, or SOURCE_DATE_EPOCH
 * as reproducible builds set it, so that a deterministic run writes
 * the same bytes.  The string is the caller's. */
static inline char *
model_date(void)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	time_t t = sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
	char buf[32], *s;

	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	if ((s = strdup(buf)) == NULL)
		err(1, NULL);
	return s;
}

/* The file of the model that -m names, a path or a name looked up
 * along KZ_MODEL_PATH and the share directories (kz_model_find), or
 * exit 1 naming every directory searched.  The string is the caller's. */
static inline char *
model_file(const char *name)
{
	char path[KZ_DIR_MAX + 300], *s;
	struct kz_err e;

	if (kz_model_find(name, getenv("KZ_MODEL_PATH"), KZ_SHAREDIR, path,
	    sizeof(path), &e) != 0)
		errx(1, "%s", e.msg);
	if ((s = strdup(path)) == NULL)
		err(1, NULL);
	return s;
}

/* Opens the stream input for the model at path m: 8-bit images of
 * its size, or exit 1 saying how to make them so. */
static inline struct kz_reader *
open_model_input(const char *input, const struct kz_model *m,
    const char *path)
{
	struct kz_reader *r;
	const struct kz_header *h;
	struct kz_err e;

	if ((r = kz_reader_open(input, &e)) == NULL)
		errx(1, "%s", e.msg);
	h = kz_reader_header(r);
	if (h->pixel != KZ_PIXEL_U8)
		errx(1, "%s: models read 8-bit streams", kz_reader_name(r));
	if (h->width != m->width || h->height != m->height)
		errx(1, "%s: %ux%u images do not fit model %s (%ux%u); pass "
		    "them through kz-norm --fit %ux%u", kz_reader_name(r),
		    h->width, h->height, path, m->width, m->height, m->width,
		    m->height);
	return r;
}

#define DEFAULT_MODEL "kmnist"

/* The file of the model used without -m: $KZ_MODEL, else
 * DEFAULT_MODEL, found as model_file finds a name. */
static inline char *
default_model_file(void)
{
	const char *env = getenv("KZ_MODEL");

	return model_file(env != NULL && *env != '\0' ? env : DEFAULT_MODEL);
}

#ifndef KZ_VERSION
#define KZ_VERSION "unknown"	/* the Makefile defines it */
#endif

/* The last line of every usage message, as of every SYNOPSIS. */
static inline void
version_usage(const char *prog)
{
	fprintf(stderr, "       %s -V | --version\n", prog);
}

/* The class map of -c (a CSV file) or, without it, the one stored in
 * the model -m names (path or name); exits 1 naming the file when
 * neither holds one.  *name: what to call the map in messages, until
 * the next call. */
static inline void
class_map(const char *csv, const char *model, struct kz_classmap *map,
    const char **name)
{
	static char model_path[KZ_DIR_MAX + 300];
	struct kz_model m;
	struct kz_err e;
	char *path;

	if (csv != NULL) {
		if (kz_classmap_read(csv, map, &e) != 0)
			errx(1, "%s", e.msg);
		*name = csv;
		return;
	}
	path = model_file(model);
	if (kz_model_read(path, &m, &e) != 0)
		errx(1, "%s", e.msg);
	if (m.classmap.n == 0)
		errx(1, "%s: the model holds no class map (kz-train -c); "
		    "give one with -c", path);
	*map = m.classmap;
	memset(&m.classmap, 0, sizeof(m.classmap));
	kz_model_free(&m);
	snprintf(model_path, sizeof(model_path), "%s", path);
	free(path);
	*name = model_path;
}

/* -V or --version as an argument of its own, anywhere before "--":
 * prints "kz VERSION" and exits 0, whatever else the command line
 * holds, as GNU tools' --version does. */
static inline void
version_option(int argc, char *argv[])
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "-V") == 0 ||
		    strcmp(argv[i], "--version") == 0) {
			if (printf("kz %s\n", KZ_VERSION) < 0 ||
			    fflush(stdout) != 0)
				err(1, "stdout");
			exit(0);
		}
}

/* Exits after a failed write: quietly with status 0 when the reader of
 * our pipe went away (as in "kz-unpack ... | head"), else with the
 * message and status 1. */
static inline void
die_write(const struct kz_err *e)
{
	if (errno == EPIPE)
		exit(0);
	errx(1, "%s", e->msg);
}

/* An option's numeric argument, or exit 2 naming the option and range. */
static inline double
number(const char *s, double lo, double hi, const char *what)
{
	char *end;
	double v = strtod(s, &end);

	if (*s == '\0' || *end != '\0' || !(v >= lo && v <= hi))
		errx(2, "%s must be a number in %g..%g, not \"%s\"", what, lo,
		    hi, s);
	return v;
}

/*
 * An option's whole-number argument in lo..hi, or exit 2 naming the
 * option and the range.  Decimal digits after an optional sign, and
 * nothing else: "", " 5", "5.0", "1e3" and "0x10" are refused rather
 * than read some other way, and a value beyond the range is refused
 * rather than clamped.
 */
static inline long long
integer(const char *s, long long lo, long long hi, const char *what)
{
	const char *digits = s + (*s == '-' || *s == '+');
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*digits < '0' || *digits > '9' || *end != '\0' ||
	    errno == ERANGE || v < lo || v > hi)
		errx(2, "%s must be a whole number in %lld..%lld, not \"%s\"",
		    what, lo, hi, s);
	return v;
}

/* The same for 64 unsigned bits, so that every seed up to UINT64_MAX
 * is taken exactly; a minus sign is refused (strtoull would wrap it). */
static inline uint64_t
uinteger(const char *s, uint64_t lo, uint64_t hi, const char *what)
{
	const char *digits = s + (*s == '+');
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*digits < '0' || *digits > '9' || *end != '\0' ||
	    errno == ERANGE || v < lo || v > hi)
		errx(2, "%s must be a whole number in %llu..%llu, not \"%s\"",
		    what, (unsigned long long)lo, (unsigned long long)hi, s);
	return v;
}

/* For the programs that print text: after a failed or final write to
 * stdout, exit quietly with 0 if the reader went away, else report. */
static inline void
check_stdout(int flush)
{
	if ((flush && fflush(stdout) != 0) || ferror(stdout)) {
		if (errno == EPIPE)
			exit(0);
		err(1, "stdout");
	}
}

/* Closes stdout at the end of a text program, with the same policy. */
static inline void
close_stdout(void)
{
	if (fclose(stdout) != 0 && errno != EPIPE)
		err(1, "stdout");
}

/* A size WxH of option opt (each side 1..KZ_MAX_DIM), or exit 2. */
static inline void
size_arg(const char *opt, const char *s, uint32_t *w, uint32_t *h)
{
	const char *x = strchr(s, 'x');
	char what[16], *side;

	if (x == NULL)
		errx(2, "size \"%s\": want WxH, each 1..%d", s, KZ_MAX_DIM);
	if ((side = strndup(s, (size_t)(x - s))) == NULL)
		err(1, NULL);
	snprintf(what, sizeof(what), "%s width", opt);
	*w = (uint32_t)integer(side, 1, KZ_MAX_DIM, what);
	free(side);
	snprintf(what, sizeof(what), "%s height", opt);
	*h = (uint32_t)integer(x + 1, 1, KZ_MAX_DIM, what);
}

/* A polarity of option opt: auto, keep or invert, or exit 2. */
static inline enum kz_polarity
polarity_arg(const char *opt, const char *s)
{
	if (strcmp(s, "auto") == 0)
		return KZ_POL_AUTO;
	if (strcmp(s, "keep") == 0)
		return KZ_POL_KEEP;
	if (strcmp(s, "invert") == 0)
		return KZ_POL_INVERT;
	errx(2, "%s: auto, keep or invert", opt);
}

/* Refuses to pour binary data onto a terminal. */
static inline void
refuse_tty(const char *path)
{
	if ((path == NULL || (path[0] == '-' && path[1] == '\0')) &&
	    isatty(STDOUT_FILENO))
		errx(1, "refusing to write binary data to a terminal; "
		    "redirect stdout or use -o");
}

#endif
