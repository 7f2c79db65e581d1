/* io.c - whole-file input and atomically published output. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "kz.h"

#define OUT_BUFFER (1 << 20)
/* Room after the target's name for ".tmpXXXXXX" and ".tmp<pid>.<n>". */
#define TMP_SUFFIX_MAX 32

void
kz_ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}

/*
 * An unnamed file (O_TMPFILE) in the directory of path, or -1 where the
 * system or the file system has none.  Until it is given a name, a kill
 * -9 or a crash leaves nothing behind: a training run killed while it
 * writes a checkpoint would otherwise leave "path.tmpXXXXXX".  Naming
 * it goes through /proc, so without /proc the named temporary is used.
 */
static int
open_unnamed(const char *path)
{
#ifdef O_TMPFILE
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd;

	if (access("/proc/self/fd", X_OK) != 0)
		return -1;
	if (slash == NULL)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, slash - path);
	if (dir == NULL)
		return -1;
	fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
	free(dir);
	return fd;
#else
	(void)path;
	return -1;
#endif
}

/*
 * Gives the unnamed file of o its name: linked straight to the target
 * when there is none yet, else linked under a fresh temporary name and
 * renamed over it, so that readers see the old file or the new one.
 */
static int
publish_unnamed(struct kz_out *o)
{
	char proc[64];
	size_t n = strlen(o->path) + TMP_SUFFIX_MAX;
	unsigned int i;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fileno(o->fp));
	if (linkat(AT_FDCWD, proc, AT_FDCWD, o->path, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != EEXIST)
		return -1;
	for (i = 0; i < 100; i++) {
		snprintf(o->tmp, n, "%s.tmp%ld.%u", o->path, (long)getpid(), i);
		if (linkat(AT_FDCWD, proc, AT_FDCWD, o->tmp,
		    AT_SYMLINK_FOLLOW) == 0) {
			if (rename(o->tmp, o->path) == 0)
				return 0;
			int saved = errno;
			unlink(o->tmp);
			errno = saved;
			return -1;
		}
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

int
kz_out_open(struct kz_out *o, const char *path, struct kz_err *e)
{
	int fd;

	struct stat st;

	memset(o, 0, sizeof(*o));
	if (path == NULL || strcmp(path, "-") == 0) {
		o->fp = stdout;
	} else if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		/* A device or FIFO (/dev/null, a named pipe) is written in
		 * place: renaming a file over it would replace it. */
		if ((o->fp = fopen(path, "wb")) == NULL)
			return kz_errf(e, "%s: %s", path, strerror(errno));
		if ((o->path = strdup(path)) == NULL) {
			fclose(o->fp);
			return kz_errf(e, "%s: out of memory", path);
		}
	} else {
		size_t n = strlen(path) + TMP_SUFFIX_MAX;

		if ((o->path = strdup(path)) == NULL ||
		    (o->tmp = malloc(n)) == NULL) {
			free(o->path);
			return kz_errf(e, "%s: out of memory", path);
		}
		snprintf(o->tmp, n, "%s.tmpXXXXXX", path);
		if ((fd = open_unnamed(path)) != -1) {
			o->unnamed = 1;
		} else if ((fd = mkstemp(o->tmp)) == -1) {
			kz_errf(e, "%s: %s", o->tmp, strerror(errno));
			free(o->path);
			free(o->tmp);
			return -1;
		}
		if (!o->unnamed) {
			/* mkstemp makes 0600; give the file the usual mode. */
			mode_t mask = umask(0);
			umask(mask);
			fchmod(fd, 0666 & ~mask);
		}
		if ((o->fp = fdopen(fd, "wb")) == NULL) {
			kz_errf(e, "%s: %s", o->unnamed ? path : o->tmp,
			    strerror(errno));
			close(fd);
			if (!o->unnamed)
				unlink(o->tmp);
			free(o->path);
			free(o->tmp);
			return -1;
		}
	}
	setvbuf(o->fp, NULL, _IOFBF, OUT_BUFFER);
	return 0;
}

int
kz_out_write(struct kz_out *o, const void *buf, size_t n, struct kz_err *e)
{
	if (o->failed)
		return -1;
	if (n > 0 && fwrite(buf, 1, n, o->fp) != n) {
		int saved = errno;

		o->failed = 1;
		kz_errf(e, "%s: write: %s", o->path ? o->path : "stdout",
		    strerror(saved));
		errno = saved;
		return -1;
	}
	return 0;
}

static void
out_release(struct kz_out *o)
{
	free(o->path);
	free(o->tmp);
	o->path = o->tmp = NULL;
	o->fp = NULL;
}

int
kz_out_close(struct kz_out *o, struct kz_err *e)
{
	const char *name = o->path ? o->path : "stdout";
	int saved = 0;

	if (o->fp == NULL)
		return 0;
	if (fflush(o->fp) != 0 && !o->failed) {
		saved = errno;
		o->failed = 1;
		kz_errf(e, "%s: write: %s", name, strerror(saved));
	}
	if (o->tmp != NULL) {
		if (!o->failed && fsync(fileno(o->fp)) != 0 && errno != EINVAL) {
			saved = errno;
			o->failed = 1;
			kz_errf(e, "%s: fsync: %s", name, strerror(saved));
		}
		if (o->unnamed && !o->failed && publish_unnamed(o) != 0) {
			saved = errno;
			o->failed = 1;
			kz_errf(e, "%s: link: %s", name, strerror(saved));
		}
		if (fclose(o->fp) != 0 && !o->failed) {
			saved = errno;
			o->failed = 1;
			kz_errf(e, "%s: close: %s", name, strerror(saved));
		}
		if (!o->unnamed && !o->failed && rename(o->tmp, o->path) != 0) {
			saved = errno;
			o->failed = 1;
			kz_errf(e, "%s: rename: %s", name, strerror(saved));
		}
		if (o->failed && !o->unnamed)
			unlink(o->tmp);
	} else if (fclose(o->fp) != 0 && !o->failed) {
		saved = errno;
		o->failed = 1;
		kz_errf(e, "%s: close: %s", name, strerror(saved));
	}
	out_release(o);
	if (o->failed) {
		if (saved != 0)
			errno = saved;
		return -1;
	}
	return 0;
}

void
kz_out_abort(struct kz_out *o)
{
	if (o->fp == NULL)
		return;
	if (o->tmp != NULL) {
		fclose(o->fp);
		if (!o->unnamed)
			unlink(o->tmp);
	} else if (o->path != NULL) {
		fclose(o->fp);
	} else {
		fflush(o->fp);
	}
	out_release(o);
}

struct kz_file {
	gzFile gz;
	char *name;
	uint8_t peek[KZ_PEEK_MAX];
	size_t npeek, peekpos;
	uint64_t offset;	/* bytes consumed so far */
};

struct kz_file *
kz_file_open(const char *path, struct kz_err *e)
{
	struct kz_file *f;
	struct stat st;
	int fd;

	fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY);
	if (fd == -1) {
		kz_errf(e, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		kz_errf(e, "%s: is a directory", path);
		return NULL;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->name = strdup(path)) == NULL) {
		free(f);
		close(fd);
		kz_errf(e, "%s: out of memory", path);
		return NULL;
	}
	/* gzread passes data that is not gzip through unchanged. */
	if ((f->gz = gzdopen(fd, "rb")) == NULL) {
		free(f->name);
		free(f);
		close(fd);
		kz_errf(e, "%s: out of memory", path);
		return NULL;
	}
	gzbuffer(f->gz, 1 << 18);
	return f;
}

/* Reads up to n bytes from the gzip layer; a short count means the end. */
static int
file_fill(struct kz_file *f, uint8_t *buf, size_t n, size_t *got,
    struct kz_err *e)
{
	int zerr;
	const char *msg;

	*got = 0;
	while (*got < n) {
		size_t want = n - *got;
		int r;

		if (want > (1u << 30))
			want = 1u << 30;
		r = gzread(f->gz, buf + *got, (unsigned)want);
		if (r < 0) {
			msg = gzerror(f->gz, &zerr);
			return kz_errf(e, "%s: %s", f->name,
			    zerr == Z_ERRNO ? strerror(errno) : msg);
		}
		if (r == 0)
			break;
		*got += (size_t)r;
	}
	if (*got < n) {
		/* gzread hands out what it could of a truncated member. */
		msg = gzerror(f->gz, &zerr);
		if (zerr == Z_BUF_ERROR)
			return kz_errf(e, "%s: gzip data truncated at byte "
			    "%llu of its content", f->name,
			    (unsigned long long)(f->offset + *got));
		if (zerr != Z_OK)
			return kz_errf(e, "%s: %s", f->name, msg);
	}
	return 0;
}

int
kz_file_peek(struct kz_file *f, const uint8_t **buf, size_t *len,
    struct kz_err *e)
{
	size_t got;

	if (f->npeek == 0 && f->peekpos == 0) {
		if (file_fill(f, f->peek, sizeof(f->peek), &got, e) != 0)
			return -1;
		f->npeek = got;
	}
	*buf = f->peek + f->peekpos;
	*len = f->npeek - f->peekpos;
	return 0;
}

int
kz_file_read(struct kz_file *f, void *buf, size_t n, size_t *got,
    struct kz_err *e)
{
	size_t from_peek = f->npeek - f->peekpos, more;

	if (from_peek > n)
		from_peek = n;
	memcpy(buf, f->peek + f->peekpos, from_peek);
	f->peekpos += from_peek;
	*got = from_peek;
	if (from_peek < n) {
		if (file_fill(f, (uint8_t *)buf + from_peek, n - from_peek,
		    &more, e) != 0)
			return -1;
		*got += more;
	}
	f->offset += *got;
	return 0;
}

const char *
kz_file_name(const struct kz_file *f)
{
	return f->name;
}

void
kz_file_close(struct kz_file *f)
{
	if (f == NULL)
		return;
	gzclose(f->gz);
	free(f->name);
	free(f);
}

int
kz_file_slurp(struct kz_file *f, size_t limit, uint8_t **bufp, size_t *lenp,
    struct kz_err *e)
{
	uint8_t *buf = NULL, *nbuf;
	size_t len = 0, cap = 0, got;

	for (;;) {
		if (len == cap) {
			size_t ncap = cap < (1 << 16) ? (1 << 16) : cap * 2;

			if (ncap > limit + 1)
				ncap = limit + 1;
			if (ncap <= len) {
				free(buf);
				return kz_errf(e, "%s: larger than the limit of "
				    "%zu bytes", f->name, limit);
			}
			if ((nbuf = realloc(buf, ncap)) == NULL) {
				free(buf);
				return kz_errf(e, "%s: out of memory", f->name);
			}
			buf = nbuf;
			cap = ncap;
		}
		if (kz_file_read(f, buf + len, cap - len, &got, e) != 0) {
			free(buf);
			return -1;
		}
		len += got;
		if (len < cap)
			break;
	}
	*bufp = buf;
	*lenp = len;
	return 0;
}

int
kz_slurp(const char *path, size_t limit, uint8_t **bufp, size_t *lenp,
    struct kz_err *e)
{
	struct kz_file *f;
	int rc;

	if ((f = kz_file_open(path, e)) == NULL)
		return -1;
	rc = kz_file_slurp(f, limit, bufp, lenp, e);
	kz_file_close(f);
	return rc;
}
