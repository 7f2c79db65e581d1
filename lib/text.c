/* text.c - text that must stay on one line and in one field, and the
 * fields of CSV lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kz.h"
#include "util.h"

char *
kz_escape(const char *s)
{
	size_t n = 1;
	char *out, *d;

	for (const char *p = s; *p; p++)
		n += 4;
	if ((out = malloc(n)) == NULL)
		return NULL;
	for (d = out; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\\' || c == '\t' || c == '\n' || c == '\r') {
			*d++ = '\\';
			*d++ = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ?
			    'r' : '\\';
		} else if (c < 0x20 || c == 0x7f) {
			d += snprintf(d, 5, "\\x%02x", c);
		} else {
			*d++ = (char)c;
		}
	}
	*d = '\0';
	return out;
}

int
kz_csv_field(const char **p, const char *end, char *out, size_t max)
{
	const char *s = *p;
	size_t n = 0;

	if (s < end && *s == '"') {
		for (s++;; s++) {
			if (s >= end)
				return -1;
			if (*s == '"') {
				if (s + 1 < end && s[1] == '"')
					s++;
				else
					break;
			}
			if (n == max)
				return -1;
			out[n++] = *s;
		}
		s++;
	} else {
		for (; s < end && *s != ',' && *s != '\n' && *s != '\r'; s++) {
			if (n == max)
				return -1;
			out[n++] = *s;
		}
	}
	out[n] = '\0';
	*p = s;
	return (int)n;
}

void
kz_csv_skip_bom(const char **p, const char *end)
{
	if (end - *p >= 3 && memcmp(*p, "\xEF\xBB\xBF", 3) == 0)
		*p += 3;
}

int
kz_csv_skip_blank(const char **p, const char *end)
{
	const char *s = *p;

	if (s >= end || (*s != '\n' && *s != '\r'))
		return 0;
	*p = s + ((*s == '\r' && s + 1 < end && s[1] == '\n') ? 2 : 1);
	return 1;
}
