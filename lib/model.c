/* model.c - model files (man kzm.5) read: tagged sections, checked
 * against the closing CRC-32 and against the architecture before
 * anything is allocated from them; and the test-time settings. */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>

#include "model.h"
#include "model_file.h"
#include "util.h"

#define MODEL_MAX_BYTES ((size_t)16 << 30)
#define META_VALUE_MAX 4096	/* longer values are cut when read */

/* The sections a reader knows, by tag; it skips any other. */
static const char *const tags[] = { "META", "KNNX", "KNNY", "PARM", "STAT",
    "OPTM", "OPTV", "BSTP", "BSTS", "EMAP", "EMAS", "CMAP", "PF16", "PQ8 ",
    "PQ4 ", "PQN ", "MEMB" };
enum { SEC_META, SEC_KNNX, SEC_KNNY, SEC_PARM, SEC_STAT, SEC_OPTM, SEC_OPTV,
    SEC_BSTP, SEC_BSTS, SEC_EMAP, SEC_EMAS, SEC_CMAP, SEC_PF16, SEC_PQ8,
    SEC_PQ4, SEC_PQN, SEC_MEMB, NTAGS };

/* See model_file.h. */
const struct kz_setting_def kz_setting_defs[] = {
	{ "shift", 0, 8, offsetof(struct kz_settings, shift) },
	{ "zoom", 0, 20, offsetof(struct kz_settings, zoom) },
	{ "rotate", 0, 30, offsetof(struct kz_settings, rotate) },
};
const size_t kz_nsettings = sizeof(kz_setting_defs) /
    sizeof(kz_setting_defs[0]);

/* The names of the settings this kz knows, as "shift, zoom, rotate",
 * into buf (size bytes): for the messages that refuse an unknown one. */
static const char *
known_settings(char *buf, size_t size)
{
	size_t n = 0;

	*buf = '\0';
	for (size_t i = 0; i < kz_nsettings && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "",
		    kz_setting_defs[i].name);
	return buf;
}

/* The setting called name (len bytes), or -1. */
static int
setting_index(const char *name, size_t len)
{
	for (size_t i = 0; i < kz_nsettings; i++)
		if (strlen(kz_setting_defs[i].name) == len &&
		    memcmp(kz_setting_defs[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

/* value (len bytes) as a whole number in lo..hi: digits only. */
static int
setting_value(const char *v, size_t len, int lo, int hi, int *out)
{
	long n = 0;

	if (len == 0 || len > 6)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (v[i] - '0');
	}
	if (n < lo || n > hi)
		return -1;
	*out = (int)n;
	return 0;
}

int
kz_settings_set(struct kz_settings *s, const char *nv, struct kz_err *e)
{
	const char *eq = strchr(nv, '=');
	char known[64];
	int i, v;

	if (eq == NULL)
		return kz_errf(e, "\"%s\": not name=value", nv);
	if ((i = setting_index(nv, (size_t)(eq - nv))) < 0)
		return kz_errf(e, "unknown setting \"%.*s\" (known: %s)",
		    (int)(eq - nv), nv, known_settings(known, sizeof(known)));
	if (setting_value(eq + 1, strlen(eq + 1), kz_setting_defs[i].lo,
	    kz_setting_defs[i].hi, &v) != 0)
		return kz_errf(e, "setting %s must be a whole number in "
		    "%d..%d, not \"%s\"", kz_setting_defs[i].name, kz_setting_defs[i].lo,
		    kz_setting_defs[i].hi, eq + 1);
	*(int *)((char *)s + kz_setting_defs[i].off) = v;
	return 0;
}

void
kz_settings_format(const struct kz_settings *s, char *buf, size_t size)
{
	size_t n = 0;

	if (size > 0)
		*buf = '\0';
	for (size_t i = 0; i < kz_nsettings && n < size; i++) {
		int v = *(const int *)((const char *)s + kz_setting_defs[i].off);

		if (v != 0)
			n += (size_t)snprintf(buf + n, size - n, "%s%s=%d",
			    n ? " " : "", kz_setting_defs[i].name, v);
	}
}

void
kz_model_free(struct kz_model *m)
{
	free(m->arch);
	free(m->command);
	free(m->date);
	free(m->version);
	free(m->figures);
	kz_classmap_free(&m->classmap);
	free(m->pixels);
	free(m->labels);
	kz_net_free(m->net);
	free(m->ts.opt_m);
	free(m->ts.opt_v);
	free(m->ts.best_params);
	free(m->ts.best_state);
	free(m->ts.ema_params);
	free(m->ts.ema_state);
	for (int i = 0; m->members != NULL && i < m->nmembers; i++)
		kz_model_free(&m->members[i]);
	free(m->members);
	memset(m, 0, sizeof(*m));
}

/* Finds key's value in the META text; copies it into out. */
static int
meta_get(const char *meta, size_t len, const char *key, char *out,
    size_t outlen)
{
	size_t klen = strlen(key);

	for (const char *p = meta; p < meta + len;) {
		const char *nl = memchr(p, '\n', meta + len - p);
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(meta + len - p);

		if (ll > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t vl = ll - klen - 1;

			if (vl >= outlen)
				vl = outlen - 1;
			memcpy(out, p + klen + 1, vl);
			out[vl] = '\0';
			return 0;
		}
		p += ll + 1;
	}
	return -1;
}

/* s as a decimal number of digits only, at most max, into *v; -1 for
 * anything else (a sign, a space, nothing, a value beyond max). */
static int
parse_count(const char *s, uint64_t max, uint64_t *v)
{
	uint64_t x = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || x > (max - (*s - '0')) / 10)
			return -1;
		x = 10 * x + (uint64_t)(*s - '0');
	}
	*v = x;
	return 0;
}

/* Key's value in the META text as a decimal number up to max into *v.
 * 0; 1 when it is missing and optional; or -1 when it is missing and
 * required, or out of range. */
static int
meta_count(const char *meta, size_t len, const char *key, uint64_t max,
    int required, uint64_t *v, const char *path, struct kz_err *e)
{
	char buf[64];

	if (meta_get(meta, len, key, buf, sizeof(buf)) != 0)
		return required ? kz_errf(e, "%s: model lacks \"%s\"", path,
		    key) : 1;
	/* meta_get cuts a value to fit buf: one that fills it may have
	 * had anything after (a digit, a letter), and no count needs 63
	 * digits. */
	if (strlen(buf) == sizeof(buf) - 1 || parse_count(buf, max, v) != 0)
		return kz_errf(e, "%s: model field %s=\"%s\" is out of range",
		    path, key, buf);
	return 0;
}

/* The same, for a required field of at most 32 bits. */
static int
meta_u32(const char *meta, size_t len, const char *key, uint32_t max,
    uint32_t *v, const char *path, struct kz_err *e)
{
	uint64_t x;

	if (meta_count(meta, len, key, max, 1, &x, path, e) != 0)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

struct section {
	const uint8_t *data;
	uint64_t len;
};

/* Copies a float section of exactly count floats into a new array. */
static float *
float_section(const struct section *s, size_t count, const char *path,
    const char *tag, struct kz_err *e)
{
	float *f;

	if (s->data == NULL) {
		kz_errf(e, "%s: no section %s", path, tag);
		return NULL;
	}
	if (s->len != count * 4) {
		kz_errf(e, "%s: section %s holds %llu bytes, the architecture "
		    "needs %zu", path, tag, (unsigned long long)s->len,
		    count * 4);
		return NULL;
	}
	if ((f = malloc(count * 4 + 4)) == NULL) {
		kz_errf(e, "%s: out of memory", path);
		return NULL;
	}
	memcpy(f, s->data, count * 4);
	return f;
}

/* An optional pair of sections laid out as PARM and STAT (sec[p] and
 * sec[s]) into *pp and *sp; 0 and nothing read when sec[p] is absent. */
static int
net_pair(const struct section *sec, int p, int s, const struct kz_net *net,
    const char *path, float **pp, float **sp, struct kz_err *e)
{
	if (sec[p].data == NULL)
		return 0;
	if ((*pp = float_section(&sec[p], net->nparams, path, tags[p],
	    e)) == NULL || (*sp = float_section(&sec[s], net->nstate, path,
	    tags[s], e)) == NULL)
		return -1;
	return 0;
}

/* Checks the closing CRC section at byte off of buf (len bytes), whose
 * header claims slen bytes: it must be the last thing in the file and
 * hold the CRC-32 of every byte before it.  0, or -1. */
static int
check_crc(const uint8_t *buf, size_t len, size_t off, uint64_t slen,
    const char *path, struct kz_err *e)
{
	uint32_t crc;

	if (slen != 4 || off + 16 != len)
		return kz_errf(e, "%s: damaged CRC section at byte %zu",
		    path, off);
	crc = libdeflate_crc32(0, buf, off);
	if (KZ_CHECK_SUMS && get_le32(buf + off + 12) != crc)
		return kz_errf(e, "%s: CRC mismatch: the model file is "
		    "damaged", path);
	return 0;
}

/* Checks the magic and version of the model file in buf (len bytes)
 * and walks its sections to the closing CRC, which must be there and
 * match.  Points sec[t] at the data of the last section tagged tags[t]
 * (sec[t].data stays NULL when there is none).  0, or -1 naming the
 * first problem. */
static int
model_sections(const uint8_t *buf, size_t len, const char *path,
    struct section *sec, struct kz_err *e)
{
	uint32_t version;

	if (len < 12 || memcmp(buf, KZM_MAGIC, 8) != 0)
		return kz_errf(e, "%s: not a kz model (bad magic)", path);
	if ((version = get_le32(buf + 8)) != KZM_VERSION)
		return kz_errf(e, "%s: model version %u (this is %d)", path,
		    version, KZM_VERSION);
	for (size_t off = 12; off < len;) {
		uint64_t slen;

		if (len - off < 12)
			return kz_errf(e, "%s: truncated at byte %zu (section "
			    "header)", path, off);
		slen = get_le64(buf + off + 4);
		if (slen > len - off - 12)
			return kz_errf(e, "%s: truncated: section %.4s at byte "
			    "%zu claims %llu bytes", path, buf + off, off,
			    (unsigned long long)slen);
		if (memcmp(buf + off, "CRC ", 4) == 0)
			return check_crc(buf, len, off, slen, path, e);
		for (int t = 0; t < NTAGS; t++)
			if (memcmp(buf + off, tags[t], 4) == 0) {
				sec[t].data = buf + off + 12;
				sec[t].len = slen;
			}
		off += 12 + slen;
	}
	return kz_errf(e, "%s: truncated (no CRC section at the end)", path);
}

/* Reads every "setting_NAME=VALUE" line of meta into s; -1 naming the
 * file and the line for a setting this version does not know (the
 * model asks for a behaviour we would not give) or a bad value. */
static int
read_settings(const char *meta, size_t ml, const char *path,
    struct kz_settings *s, struct kz_err *e)
{
	for (const char *p = meta, *end = meta + ml; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *eq = memchr(p, '=', len);
		char known[64];
		int i, v;

		if (len > 8 && memcmp(p, "setting_", 8) == 0 && eq != NULL) {
			if ((i = setting_index(p + 8, (size_t)(eq - p - 8))) < 0)
				return kz_errf(e, "%s: unknown setting \"%.*s\" "
				    "(this kz knows %s)", path,
				    (int)(eq - p - 8), p + 8,
				    known_settings(known, sizeof(known)));
			if (setting_value(eq + 1, (size_t)(p + len - eq - 1),
			    kz_setting_defs[i].lo, kz_setting_defs[i].hi, &v) != 0)
				return kz_errf(e, "%s: setting %s is not a whole "
				    "number in %d..%d", path, kz_setting_defs[i].name,
				    kz_setting_defs[i].lo, kz_setting_defs[i].hi);
			*(int *)((char *)s + kz_setting_defs[i].off) = v;
		}
		p += len + 1;
	}
	return 0;
}

/* Reads the fields of meta (ml bytes) that every model has into m:
 * geometry, input standardisation, provenance, architecture.  0, or -1
 * when one is missing or out of range; m may then hold allocations
 * that kz_model_free releases. */
static int
read_meta(const char *meta, size_t ml, const char *path, struct kz_model *m,
    struct kz_err *e)
{
	char v[META_VALUE_MAX];

	if (meta_u32(meta, ml, "width", KZ_MAX_DIM, &m->width, path, e) ||
	    meta_u32(meta, ml, "height", KZ_MAX_DIM, &m->height, path, e) ||
	    meta_u32(meta, ml, "classes", KZ_MAX_CLASSES, &m->nclasses, path,
	    e))
		return -1;
	if (m->width == 0 || m->height == 0 || m->nclasses == 0)
		return kz_errf(e, "%s: model geometry %ux%u with %u classes",
		    path, m->width, m->height, m->nclasses);
	if (meta_get(meta, ml, "mean", v, sizeof(v)) == 0)
		m->mean = strtof(v, NULL);
	m->std = 1;
	if (meta_get(meta, ml, "std", v, sizeof(v)) == 0)
		m->std = strtof(v, NULL);
	if (!(m->std > 0) || !(m->mean == m->mean))
		return kz_errf(e, "%s: bad standardisation statistics", path);
	if (meta_get(meta, ml, "command", v, sizeof(v)) == 0)
		m->command = strdup(v);
	if (meta_get(meta, ml, "date", v, sizeof(v)) == 0)
		m->date = strdup(v);
	if (meta_get(meta, ml, "kz_version", v, sizeof(v)) == 0)
		m->version = strdup(v);
	if (meta_get(meta, ml, "figures", v, sizeof(v)) == 0)
		m->figures = strdup(v);
	if (read_settings(meta, ml, path, &m->settings, e) != 0)
		return -1;
	if (meta_get(meta, ml, "arch", v, sizeof(v)) != 0 ||
	    (m->arch = strdup(v)) == NULL)
		return kz_errf(e, "%s: model lacks its architecture", path);
	return 0;
}

/* Reads a kNN model, whose geometry read_meta has set: its parameters
 * from meta, its records from sections KNNX (pixels) and KNNY (labels,
 * each below the number of classes).  0, or -1 when they disagree or
 * memory runs out; m may then hold allocations. */
static int
read_knn(const char *meta, size_t ml, const struct section *sec,
    const char *path, struct kz_model *m, struct kz_err *e)
{
	size_t npix = (size_t)m->width * m->height;
	char v[META_VALUE_MAX];

	m->type = KZ_MODEL_KNN;
	if (meta_u32(meta, ml, "knn_k", 1024, &m->knn_k, path, e))
		return -1;
	m->knn_distance = meta_get(meta, ml, "knn_weights", v,
	    sizeof(v)) == 0 && strcmp(v, "distance") == 0;
	/* Compared by division: a count times the record size could wrap
	 * around to the size of the sections. */
	/* At most INT_MAX: BLAS takes the count as an int. */
	if (meta_count(meta, ml, "records", INT_MAX, 1, &m->n, path,
	    e) != 0)
		return -1;
	if (m->n == 0 || m->knn_k == 0 ||
	    sec[SEC_KNNX].len % npix != 0 || sec[SEC_KNNX].len / npix != m->n ||
	    sec[SEC_KNNY].len % 4 != 0 || sec[SEC_KNNY].len / 4 != m->n)
		return kz_errf(e, "%s: kNN sections do not match %llu records "
		    "of %ux%u", path, (unsigned long long)m->n, m->width,
		    m->height);
	m->pixels = malloc(sec[SEC_KNNX].len);
	m->labels = malloc(sec[SEC_KNNY].len);
	if (m->pixels == NULL || m->labels == NULL)
		return kz_errf(e, "%s: out of memory", path);
	memcpy(m->pixels, sec[SEC_KNNX].data, sec[SEC_KNNX].len);
	for (uint64_t i = 0; i < m->n; i++) {
		m->labels[i] = (int32_t)get_le32(sec[SEC_KNNY].data + 4 * i);
		if (m->labels[i] < 0 || (uint32_t)m->labels[i] >= m->nclasses)
			return kz_errf(e, "%s: kNN record %llu has label %d "
			    "of %u classes", path, (unsigned long long)i,
			    m->labels[i], m->nclasses);
	}
	return 0;
}

/* Reads what a checkpoint adds to a net model, when meta has an epoch:
 * counters, the random state (required), the optimiser's moments and
 * the optional best and average weights, all sized for m->net.  0 when
 * read or absent, or -1; m may then hold allocations. */
static int
read_train_state(const char *meta, size_t ml, const struct section *sec,
    const char *path, struct kz_model *m, struct kz_err *e)
{
	struct kz_train_state *ts = &m->ts;
	unsigned long long r[4];
	char v[META_VALUE_MAX];
	uint64_t x;
	int rc;

	if ((rc = meta_count(meta, ml, "epoch", UINT32_MAX, 0, &x, path,
	    e)) != 0)
		return rc < 0 ? -1 : 0;
	ts->present = 1;
	ts->epoch = (uint32_t)x;
	if (meta_count(meta, ml, "opt_step", UINT64_MAX, 0, &ts->opt_step,
	    path, e) < 0 ||
	    (rc = meta_count(meta, ml, "best_epoch", UINT32_MAX, 0, &x, path,
	    e)) < 0)
		return -1;
	ts->best_epoch = rc == 0 ? (uint32_t)x : 0;
	if (meta_get(meta, ml, "rng", v, sizeof(v)) != 0 ||
	    sscanf(v, "%llx,%llx,%llx,%llx", &r[0], &r[1], &r[2],
	    &r[3]) != 4)
		return kz_errf(e, "%s: checkpoint lacks its random state",
		    path);
	for (int i = 0; i < 4; i++)
		ts->rng.s[i] = r[i];
	if (meta_get(meta, ml, "best", v, sizeof(v)) == 0)
		ts->best = strtod(v, NULL);
	if (meta_get(meta, ml, "ema", v, sizeof(v)) == 0)
		ts->ema = strtof(v, NULL);
	if ((ts->opt_m = float_section(&sec[SEC_OPTM], m->net->nparams, path,
	    tags[SEC_OPTM], e)) == NULL ||
	    (ts->opt_v = float_section(&sec[SEC_OPTV], m->net->nparams, path,
	    tags[SEC_OPTV], e)) == NULL)
		return -1;
	if (net_pair(sec, SEC_BSTP, SEC_BSTS, m->net, path, &ts->best_params,
	    &ts->best_state, e) != 0 ||
	    net_pair(sec, SEC_EMAP, SEC_EMAS, m->net, path, &ts->ema_params,
	    &ts->ema_state, e) != 0)
		return -1;
	return 0;
}

/* Reads a net model, whose geometry and architecture read_meta has
 * set: builds the net, loads its parameters (PARM) and statistics
 * (STAT), then a checkpoint's training state.  0, or -1 when the
 * architecture is bad or a section's size is not the one it needs; m
 * may then hold allocations. */
static int
read_net(const char *meta, size_t ml, const struct section *sec,
    const char *path, struct kz_model *m, struct kz_err *e)
{
	struct kz_shape in = { 1, (int)m->height, (int)m->width };
	size_t np, ns, nb;
	float *p, *s;

	m->type = KZ_MODEL_NET;
	/* The sections' sizes first: the file must hold the parameters
	 * before any are allocated. */
	if (kz_net_size(m->arch, in, (int)m->nclasses, &np, &ns, e) != 0)
		return kz_err_prefix(e, path);
	nb = kz_nblocks(np);
	if (sec[SEC_PARM].data == NULL && sec[SEC_PF16].data != NULL) {
		m->precision = KZ_F16;
		if (sec[SEC_PF16].len != np * 2 || sec[SEC_STAT].len != ns * 4)
			return kz_errf(e, "%s: sections PF16 and STAT hold "
			    "%llu and %llu bytes, the architecture needs %zu "
			    "and %zu", path,
			    (unsigned long long)sec[SEC_PF16].len,
			    (unsigned long long)sec[SEC_STAT].len, np * 2,
			    ns * 4);
	} else if (sec[SEC_PARM].data == NULL && sec[SEC_PQ8].data != NULL) {
		m->precision = KZ_Q8;
		if (sec[SEC_PQ8].len != nb * 4 + np ||
		    sec[SEC_STAT].len != ns * 4)
			return kz_errf(e, "%s: sections PQ8 and STAT hold "
			    "%llu and %llu bytes, the architecture needs %zu "
			    "and %zu", path,
			    (unsigned long long)sec[SEC_PQ8].len,
			    (unsigned long long)sec[SEC_STAT].len, nb * 4 + np,
			    ns * 4);
	} else if (sec[SEC_PARM].data == NULL &&
	    (sec[SEC_PQ4].data != NULL || sec[SEC_PQN].data != NULL)) {
		/* (PQ4's and PQN's own sizes are checked as they are
		 * read.) */
		m->precision = KZ_QN;
		if (sec[SEC_STAT].len != ns * 4)
			return kz_errf(e, "%s: section STAT holds %llu bytes, "
			    "the architecture needs %zu", path,
			    (unsigned long long)sec[SEC_STAT].len, ns * 4);
	} else if (sec[SEC_PARM].len != np * 4 || sec[SEC_STAT].len != ns * 4) {
		return kz_errf(e, "%s: sections PARM and STAT hold %llu and "
		    "%llu bytes, the architecture needs %zu and %zu", path,
		    (unsigned long long)sec[SEC_PARM].len,
		    (unsigned long long)sec[SEC_STAT].len, np * 4, ns * 4);
	}
	if ((m->net = kz_net_new(m->arch, in, (int)m->nclasses, 0,
	    e)) == NULL)
		return kz_err_prefix(e, path);
	if (m->precision == KZ_F16) {
		if ((p = malloc(np * sizeof(float) + 4)) == NULL)
			return kz_errf(e, "%s: out of memory", path);
		for (size_t i = 0; i < np; i++)
			p[i] = kz_float_from_half(get_le16(sec[SEC_PF16].data +
			    2 * i));
	} else if (m->precision == KZ_Q8) {
		if ((p = kz_pq8_decode(sec[SEC_PQ8].data, np, path,
		    e)) == NULL)
			return -1;
	} else if (m->precision == KZ_QN) {
		if ((p = sec[SEC_PQN].data != NULL ?
		    kz_pqn_decode(sec[SEC_PQN].data, sec[SEC_PQN].len, m,
		    path, e) : kz_pq4_decode(sec[SEC_PQ4].data,
		    sec[SEC_PQ4].len, m, path, e)) == NULL)
			return -1;
		m->qdense = m->qdense ? m->qdense : 8;
		m->qconv = m->qconv ? m->qconv : 8;
	} else if ((p = float_section(&sec[SEC_PARM], m->net->nparams, path,
	    tags[SEC_PARM], e)) == NULL) {
		return -1;
	}
	free(m->net->params);
	m->net->params = p;
	if ((s = float_section(&sec[SEC_STAT], m->net->nstate, path,
	    tags[SEC_STAT], e)) == NULL)
		return -1;
	free(m->net->state);
	m->net->state = s;
	return read_train_state(meta, ml, sec, path, m, e);
}

/* The class map of section CMAP, if there is one: a code point per
 * class of the model, each a character.  0, or -1. */
static int
read_classmap(const struct section *sec, const char *path,
    struct kz_model *m, struct kz_err *e)
{
	uint32_t *cp;
	char name[4200];
	int rc;

	if (sec->data == NULL)
		return 0;
	/* Compared by division: the count times 4 could wrap around. */
	if (sec->len % 4 != 0 || sec->len / 4 != m->nclasses)
		return kz_errf(e, "%s: the class map section holds %llu bytes, "
		    "not 4 for each of %u classes", path,
		    (unsigned long long)sec->len, m->nclasses);
	if ((cp = malloc(m->nclasses * sizeof(*cp) + 4)) == NULL)
		return kz_errf(e, "%s: out of memory", path);
	for (uint32_t i = 0; i < m->nclasses; i++)
		cp[i] = get_le32(sec->data + 4 * (size_t)i);
	snprintf(name, sizeof(name), "%s: class map", path);
	rc = kz_classmap_from_codepoints(cp, m->nclasses, name, &m->classmap,
	    e);
	free(cp);
	return rc;
}

static int model_parse(const uint8_t *buf, size_t len, const char *path,
    int depth, struct kz_model *m, struct kz_err *e);

/* Reads an ensemble's members, whose META is meta: its sections MEMB
 * in file order (buf, len bytes, its sections already walked), as many
 * as "members" says, each a net or kNN model that fits the ensemble
 * (kz_model_member_fits).  0, or -1 naming the member; m may then hold
 * allocations. */
static int
read_members(const char *meta, size_t ml, const uint8_t *buf, size_t len,
    const char *path, struct kz_model *m, struct kz_err *e)
{
	uint32_t n;
	size_t off;
	int i = 0;

	m->type = KZ_MODEL_ENSEMBLE;
	if (meta_u32(meta, ml, "members", KZ_MAX_MEMBERS, &n, path, e) != 0)
		return -1;
	if (n == 0)
		return kz_errf(e, "%s: an ensemble of no models", path);
	if ((m->members = calloc(n, sizeof(*m->members))) == NULL)
		return kz_errf(e, "%s: out of memory", path);
	m->nmembers = (int)n;
	/* model_sections checked every section's length up to the CRC. */
	for (off = 12; memcmp(buf + off, "CRC ", 4) != 0;
	    off += 12 + get_le64(buf + off + 4)) {
		char name[4200];
		struct kz_model *mm;

		if (memcmp(buf + off, "MEMB", 4) != 0)
			continue;
		if (i == m->nmembers)
			return kz_errf(e, "%s: more than the %d members it "
			    "names", path, m->nmembers);
		mm = &m->members[i++];
		snprintf(name, sizeof(name), "%s: member %d", path, i);
		if (model_parse(buf + off + 12, get_le64(buf + off + 4), name,
		    1, mm, e) != 0)
			return -1;
		if (mm->ts.present)
			return kz_errf(e, "%s is a checkpoint, not a model",
			    name);
		if (!kz_model_member_fits(mm, m->width, m->height,
		    m->nclasses))
			return kz_errf(e, "%s is %ux%u of %u classes, the "
			    "ensemble %ux%u of %u (a member's size divides "
			    "the ensemble's)", name, mm->width,
			    mm->height, mm->nclasses, m->width, m->height,
			    m->nclasses);
	}
	(void)len;
	if (i != m->nmembers)
		return kz_errf(e, "%s: %d members, it names %d", path, i,
		    m->nmembers);
	return 0;
}

/* Parses the model file in buf (len bytes) into m, naming it path in
 * errors; depth 1 for an ensemble's member, which cannot be one. */
static int
model_parse(const uint8_t *buf, size_t len, const char *path, int depth,
    struct kz_model *m, struct kz_err *e)
{
	struct section sec[NTAGS] = { { 0 } };
	size_t ml;
	const char *meta;
	char type[META_VALUE_MAX];

	memset(m, 0, sizeof(*m));
	if (model_sections(buf, len, path, sec, e) != 0)
		return -1;
	if (sec[SEC_META].data == NULL)
		return kz_errf(e, "%s: no META section", path);
	meta = (const char *)sec[SEC_META].data;
	ml = sec[SEC_META].len;
	if (read_meta(meta, ml, path, m, e) != 0 ||
	    read_classmap(&sec[SEC_CMAP], path, m, e) != 0)
		return -1;
	if (meta_get(meta, ml, "type", type, sizeof(type)) != 0)
		return kz_errf(e, "%s: model lacks its type", path);
	if (strcmp(type, "knn") == 0)
		return read_knn(meta, ml, sec, path, m, e);
	if (strcmp(type, "net") == 0)
		return read_net(meta, ml, sec, path, m, e);
	if (strcmp(type, "ensemble") == 0 && depth == 0)
		return read_members(meta, ml, buf, len, path, m, e);
	if (strcmp(type, "ensemble") == 0)
		return kz_errf(e, "%s: an ensemble inside an ensemble", path);
	return kz_errf(e, "%s: unknown model type \"%s\"", path, type);
}

int
kz_model_read(const char *path, struct kz_model *m, struct kz_err *e)
{
	uint8_t *buf;
	size_t len;
	int rc;

	memset(m, 0, sizeof(*m));
	if (kz_slurp(path, MODEL_MAX_BYTES, &buf, &len, e) != 0)
		return -1;
	rc = model_parse(buf, len, path, 0, m, e);
	free(buf);
	if (rc != 0)
		kz_model_free(m);
	return rc;
}

int
kz_model_member_fits(const struct kz_model *member, uint32_t w, uint32_t h,
    uint32_t nclasses)
{
	return member->nclasses == nclasses && member->width > 0 &&
	    member->height > 0 && w % member->width == 0 &&
	    h % member->height == 0;
}

const struct kz_model *
kz_model_features(const struct kz_model *m)
{
	if (m->type == KZ_MODEL_ENSEMBLE)
		m = &m->members[0];
	return m->type == KZ_MODEL_NET ? m : NULL;
}
