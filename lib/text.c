/* text.c - text that must stay on one line and in one field. */
#include <stdio.h>
#include <stdlib.h>

#include "kz.h"

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
