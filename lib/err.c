/* err.c - error messages carried back to the programs. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kz.h"

int
kz_errf(struct kz_err *e, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int
kz_err_prefix(struct kz_err *e, const char *prefix)
{
	char tmp[sizeof(e->msg)];
	size_t n;

	if (e == NULL)
		return -1;
	/* Built in pieces: snprintf of msg into itself would overlap. */
	n = strlen(prefix);
	if (n > sizeof(tmp) - 3)
		n = sizeof(tmp) - 3;
	memcpy(tmp, prefix, n);
	memcpy(tmp + n, ": ", 2);
	n += 2;
	size_t m = strnlen(e->msg, sizeof(e->msg) - 1);
	if (m > sizeof(tmp) - 1 - n)
		m = sizeof(tmp) - 1 - n;
	memcpy(tmp + n, e->msg, m);
	tmp[n + m] = '\0';
	memcpy(e->msg, tmp, sizeof(tmp));
	return -1;
}
