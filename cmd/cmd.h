/* cmd.h - what every kz program does the same way: report and exit.
 * Programs only (library code never exits or prints). */
#ifndef KZ_CMD_H
#define KZ_CMD_H

#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kz.h"

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

/* The same for a whole number. */
static inline long
integer(const char *s, long lo, long hi, const char *what)
{
	double v = number(s, (double)lo, (double)hi, what);

	if (v != (double)(long)v)
		errx(2, "%s must be a whole number, not \"%s\"", what, s);
	return (long)v;
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
