/* io.c - whole-file input and atomically published output. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libdeflate.h>
#include <zlib.h>

#include "kz.h"
#include "util.h"

/* glibc ignores setvbuf's size when it allocates the buffer itself
 * (it takes st_blksize, 4 KiB): a stream of 55 MB then took 13,600
 * write calls.  So the buffer is ours: static for stdout, which stays
 * open to the end, and malloc'ed, freed after fclose, for files. */
#define OUT_BUFFER (1 << 20)
static char stdout_buffer[OUT_BUFFER];
static int stdout_buffered;	/* setvbuf only before the first output */
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
	if (o->fp == stdout && !stdout_buffered++)
		setvbuf(o->fp, stdout_buffer, _IOFBF, OUT_BUFFER);
	else if ((o->buf = malloc(OUT_BUFFER)) != NULL)
		setvbuf(o->fp, o->buf, _IOFBF, OUT_BUFFER);
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
	free(o->buf);
	o->path = o->tmp = NULL;
	o->buf = NULL;
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

/*
 * A regular file of at most WHOLE_MAX bytes is read whole, in one read,
 * into memory advised for huge pages, and a single gzip member is then
 * inflated in one call of libdeflate: about twice zlib's streaming
 * speed, with a page fault per 2 MiB rather than per 4 KiB (inflating
 * and page faults were most of the time spent reading the KMNIST npz
 * files and the Kuzushiji-Kanji tar.gz).  Anything else (stdin, a pipe,
 * a larger file, several gzip members, a damaged one) is streamed
 * through zlib's gzread, which passes data that is not gzip through
 * unchanged and words the errors.  A plain file is read only when its
 * content is first asked for, so that peeking at a large file to refuse
 * it reads 1 KiB.
 */
#define WHOLE_MAX ((uint64_t)1 << 30)
/* Files from this size on are mapped rather than read, which needs no
 * fresh memory: on this project's virtual machines, memory touched
 * for the first time costs more than inflating into it. */
#define MAP_MIN ((uint64_t)1 << 20)
/* The most bytes deflate makes of one compressed byte, and some. */
#define GZIP_MAX_RATIO 1032

enum file_mode { FILE_STREAM, FILE_PENDING, FILE_WHOLE };

struct kz_file {
	enum file_mode mode;
	int fd;			/* FILE_PENDING: the file, not read yet */
	uint64_t size;		/* FILE_PENDING: its size */
	gzFile gz;		/* FILE_STREAM */
	uint8_t *mem;		/* FILE_WHOLE: the content; or what
				   kz_file_view slurped */
	size_t memlen, pos;
	int mapped;		/* mem is the file, mapped */
	char *name;
	uint8_t peek[KZ_PEEK_MAX];
	size_t npeek, peekpos;
	uint64_t offset;	/* FILE_STREAM: bytes consumed so far */
};

int
kz_env_set(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0';
}

void *
kz_alloc_big(size_t n)
{
	const size_t huge = (size_t)2 << 20;
	void *p;

	if (n < 2 * huge)
		return malloc(n ? n : 1);
	if (posix_memalign(&p, huge, n) != 0)
		return NULL;
	madvise(p, n, MADV_HUGEPAGE);	/* advice: failure is harmless */
	return p;
}

/* Switches f to streaming through zlib, from the start of the file when
 * rewind is set (after it was read whole in vain). */
static int
file_stream(struct kz_file *f, int rewind, struct kz_err *e)
{
	if (rewind && lseek(f->fd, 0, SEEK_SET) != 0)
		return kz_errf(e, "%s: %s", f->name, strerror(errno));
	if ((f->gz = gzdopen(f->fd, "rb")) == NULL)
		return kz_errf(e, "%s: out of memory", f->name);
	gzbuffer(f->gz, 1 << 18);
	f->fd = -1;
	f->mode = FILE_STREAM;
	return 0;
}

/* The content of the gzip data z (len bytes) if it is one member whose
 * size its trailer tells, inflated whole; NULL for anything else. */
static uint8_t *
gunzip_whole(const uint8_t *z, size_t len, size_t *out_len)
{
	struct libdeflate_decompressor *d;
	size_t isize, used = 0, got = 0;
	enum libdeflate_result r;
	uint8_t *out;

	if (len < 18)
		return NULL;
	isize = get_le32(z + len - 4);
	if (isize > WHOLE_MAX || isize > (uint64_t)len * GZIP_MAX_RATIO)
		return NULL;
	if ((out = kz_alloc_big(isize)) == NULL)
		return NULL;
	if ((d = libdeflate_alloc_decompressor()) == NULL) {
		free(out);
		return NULL;
	}
	r = libdeflate_gzip_decompress_ex(d, z, len, out, isize, &used, &got);
	libdeflate_free_decompressor(d);
	if (r != LIBDEFLATE_SUCCESS || used != len || got != isize) {
		free(out);
		return NULL;
	}
	*out_len = got;
	return out;
}

/* Reads a FILE_PENDING file whole (and inflates it) or, failing that,
 * switches it to streaming. */
static int
file_load(struct kz_file *f, struct kz_err *e)
{
	size_t len = 0, inflated_len;
	uint8_t *buf, *inflated;
	int mapped = 0;
	ssize_t r;

	if (f->mode != FILE_PENDING)
		return 0;
	buf = MAP_FAILED;
	if (f->size >= MAP_MIN)
		buf = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE |
		    MAP_POPULATE, f->fd, 0);
	if (buf != MAP_FAILED) {
		mapped = 1;
		len = f->size;
	} else if ((buf = kz_alloc_big(f->size)) == NULL) {
		return file_stream(f, 1, e);
	}
	while (!mapped && len < f->size && (r = pread(f->fd, buf + len,
	    f->size - len, (off_t)len)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return kz_errf(e, "%s: %s", f->name, strerror(errno));
		}
		len += (size_t)r;
	}
	if (len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
		inflated = gunzip_whole(buf, len, &inflated_len);
		if (mapped)
			munmap(buf, len);
		else
			free(buf);
		if (inflated == NULL)
			return file_stream(f, 1, e);
		buf = inflated;
		len = inflated_len;
		mapped = 0;
	}
	close(f->fd);
	f->fd = -1;
	f->mem = buf;
	f->memlen = len;
	f->mapped = mapped;
	f->mode = FILE_WHOLE;
	return 0;
}

/* Frees or unmaps the content held in f->mem. */
static void
file_release(struct kz_file *f)
{
	if (f->mapped)
		munmap(f->mem, f->memlen);
	else
		free(f->mem);
	f->mem = NULL;
	f->mapped = 0;
}

struct kz_file *
kz_file_open(const char *path, struct kz_err *e)
{
	struct kz_file *f;
	struct stat st;
	int fd, is_stdin = strcmp(path, "-") == 0;

	fd = is_stdin ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		kz_errf(e, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0) {
		kz_errf(e, "%s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
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
	f->fd = fd;
	f->mode = FILE_PENDING;
	f->size = (uint64_t)st.st_size;
	if (!is_stdin && S_ISREG(st.st_mode) && st.st_size > 0 &&
	    f->size <= WHOLE_MAX)
		return f;
	if (file_stream(f, 0, e) != 0) {
		close(fd);
		free(f->name);
		free(f);
		return NULL;
	}
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
	ssize_t r;

	if (f->mode == FILE_PENDING) {
		/* Plain data is peeked at without reading the file. */
		if ((r = pread(f->fd, f->peek, sizeof(f->peek), 0)) < 0)
			return kz_errf(e, "%s: %s", f->name, strerror(errno));
		if (r < 2 || f->peek[0] != 0x1f || f->peek[1] != 0x8b) {
			*buf = f->peek;
			*len = (size_t)r;
			return 0;
		}
		if (file_load(f, e) != 0)
			return -1;
	}
	if (f->mode == FILE_WHOLE) {
		*buf = f->mem + f->pos;
		*len = f->memlen - f->pos;
		if (*len > KZ_PEEK_MAX)
			*len = KZ_PEEK_MAX;
		return 0;
	}
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
	size_t from_peek, more;

	if (file_load(f, e) != 0)
		return -1;
	if (f->mode == FILE_WHOLE) {
		*got = f->memlen - f->pos < n ? f->memlen - f->pos : n;
		memcpy(buf, f->mem + f->pos, *got);
		f->pos += *got;
		return 0;
	}
	from_peek = f->npeek - f->peekpos;
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

int
kz_file_borrow(struct kz_file *f, size_t n, const uint8_t **p, size_t *got,
    struct kz_err *e)
{
	if (file_load(f, e) != 0)
		return -1;
	if (f->mode != FILE_WHOLE)
		return 0;
	*got = f->memlen - f->pos < n ? f->memlen - f->pos : n;
	*p = f->mem + f->pos;
	f->pos += *got;
	return 1;
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
	if (f->gz != NULL)
		gzclose(f->gz);
	if (f->fd != -1)
		close(f->fd);
	file_release(f);
	free(f->name);
	free(f);
}

/* Streams the rest of f into a new buffer. */
static int
file_slurp_stream(struct kz_file *f, size_t limit, uint8_t **bufp,
    size_t *lenp, struct kz_err *e)
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
kz_file_slurp(struct kz_file *f, size_t limit, uint8_t **bufp, size_t *lenp,
    struct kz_err *e)
{
	size_t n;

	if (file_load(f, e) != 0)
		return -1;
	if (f->mode != FILE_WHOLE)
		return file_slurp_stream(f, limit, bufp, lenp, e);
	if ((n = f->memlen - f->pos) > limit)
		return kz_errf(e, "%s: larger than the limit of %zu bytes",
		    f->name, limit);
	if (f->pos == 0 && !f->mapped) {
		/* The content changes hands rather than being copied. */
		*bufp = f->mem;
		f->mem = NULL;
		f->memlen = 0;
	} else {
		if ((*bufp = malloc(n ? n : 1)) == NULL)
			return kz_errf(e, "%s: out of memory", f->name);
		memcpy(*bufp, f->mem + f->pos, n);
	}
	f->pos = f->memlen;
	*lenp = n;
	return 0;
}

int
kz_file_view(struct kz_file *f, size_t limit, const uint8_t **bufp,
    size_t *lenp, struct kz_err *e)
{
	if (file_load(f, e) != 0)
		return -1;
	if (f->mode == FILE_WHOLE) {
		if ((*lenp = f->memlen - f->pos) > limit)
			return kz_errf(e, "%s: larger than the limit of %zu "
			    "bytes", f->name, limit);
		*bufp = f->mem + f->pos;
		f->pos = f->memlen;
		return 0;
	}
	file_release(f);
	if (file_slurp_stream(f, limit, &f->mem, lenp, e) != 0)
		return -1;
	*bufp = f->mem;
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
