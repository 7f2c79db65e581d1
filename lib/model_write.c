/* model_write.c - model files (man kzm.5) written: META, the class
 * map, parameters as floats, halves or 8-bit integers, a checkpoint's
 * training state, an ensemble's members, and the closing CRC-32. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>

#include "engine.h"
#include "model.h"
#include "model_file.h"
#include "util.h"

/* Where a model file goes: a file being written (o), or memory (buf,
 * len bytes of cap), for an ensemble's members; crc is the running
 * CRC-32 of what went in. */
struct sink {
	struct kz_out *o;
	uint8_t *buf;
	size_t len, cap;
	uint32_t crc;
};

/* Adds n bytes to s and, unless tail, to its CRC.  0, or -1 when a
 * write fails or memory runs out. */
static int
sink_put(struct sink *s, const void *p, size_t n, int tail,
    struct kz_err *e)
{
	if (!tail)
		s->crc = libdeflate_crc32(s->crc, p, n);
	if (s->o != NULL)
		return kz_out_write(s->o, p, n, e);
	if (n > s->cap - s->len) {
		size_t cap = s->cap ? s->cap : 1 << 20;
		uint8_t *b;

		while (n > cap - s->len)
			cap *= 2;
		if ((b = realloc(s->buf, cap)) == NULL)
			return kz_errf(e, "out of memory");
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return 0;
}

/* Writes a section: tag (4 bytes), len as a u64, then len bytes of
 * data.  0, or -1 when a write fails. */
static int
put_section(struct sink *s, const char *tag, const void *data, size_t len,
    struct kz_err *e)
{
	uint8_t hdr[12];

	memcpy(hdr, tag, 4);
	put_le64(hdr + 4, len);
	if (sink_put(s, hdr, sizeof(hdr), 0, e) != 0 ||
	    sink_put(s, data, len, 0, e) != 0)
		return -1;
	return 0;
}

/* Floats as little-endian bytes (the host order on every target we
 * build for; checked at compile time below). */
_Static_assert(sizeof(float) == 4, "float must be IEEE single");

/* Sections ptag and stag laid out as PARM and STAT, unless p is NULL. */
static int
put_net_pair(struct sink *o, const char *ptag, const char *stag,
    const float *p, const float *st, const struct kz_net *net,
    struct kz_err *e)
{
	if (p == NULL)
		return 0;
	if (put_section(o, ptag, p, net->nparams * 4, e) != 0 ||
	    put_section(o, stag, st, net->nstate * 4, e) != 0)
		return -1;
	return 0;
}

/* Formats m's META section, one "key=value" line per field, into meta
 * (size bytes).  Returns the length of the whole text, size or more
 * when it did not fit (then meta holds a part of it). */
static size_t
meta_format(const struct kz_model *m, char *meta, size_t size)
{
	size_t n;

	n = (size_t)snprintf(meta, size,
	    "type=%s\narch=%s\nwidth=%u\nheight=%u\nclasses=%u\n"
	    "mean=%.9g\nstd=%.9g\ncommand=%s\ndate=%s\n",
	    m->type == KZ_MODEL_KNN ? "knn" : m->type == KZ_MODEL_NET ?
	    "net" : "ensemble", m->arch, m->width,
	    m->height, m->nclasses, m->mean, m->std,
	    m->command ? m->command : "", m->date ? m->date : "");
	if (n < size && m->version != NULL)
		n += (size_t)snprintf(meta + n, size - n, "kz_version=%s\n",
		    m->version);
	if (n < size && m->figures != NULL)
		n += (size_t)snprintf(meta + n, size - n, "figures=%s\n",
		    m->figures);
	for (size_t i = 0; i < kz_nsettings && n < size; i++) {
		int v = *(const int *)((const char *)&m->settings +
		    kz_setting_defs[i].off);

		if (v != 0)
			n += (size_t)snprintf(meta + n, size - n,
			    "setting_%s=%d\n", kz_setting_defs[i].name, v);
	}
	if (n < size && m->type == KZ_MODEL_ENSEMBLE)
		n += (size_t)snprintf(meta + n, size - n, "members=%d\n",
		    m->nmembers);
	if (n < size && m->type == KZ_MODEL_KNN)
		n += (size_t)snprintf(meta + n, size - n,
		    "knn_k=%u\nknn_weights=%s\nrecords=%llu\n", m->knn_k,
		    m->knn_distance ? "distance" : "uniform",
		    (unsigned long long)m->n);
	if (n < size && m->ts.present)
		n += (size_t)snprintf(meta + n, size - n,
		    "epoch=%u\nopt_step=%llu\nrng=%llx,%llx,%llx,%llx\n"
		    "best=%.9g\nbest_epoch=%u\n", m->ts.epoch,
		    (unsigned long long)m->ts.opt_step,
		    (unsigned long long)m->ts.rng.s[0],
		    (unsigned long long)m->ts.rng.s[1],
		    (unsigned long long)m->ts.rng.s[2],
		    (unsigned long long)m->ts.rng.s[3], m->ts.best,
		    m->ts.best_epoch);
	if (n < size && m->ts.present && m->ts.ema_params != NULL)
		n += (size_t)snprintf(meta + n, size - n, "ema=%.9g\n",
		    m->ts.ema);
	return n;
}

/* The first of m's text fields with a control character in it, which
 * would end its line of META and start another key; NULL if none. */
static const char *
meta_unsafe(const struct kz_model *m)
{
	const char *names[] = { "arch", "command", "date", "kz_version",
	    "figures" };
	const char *vals[] = { m->arch, m->command, m->date, m->version,
	    m->figures };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		for (const char *p = vals[i]; p != NULL && *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return names[i];
	return NULL;
}

/* Writes the sections that follow META: a kNN model's records, or a
 * net's parameters and statistics and, in a checkpoint, the
 * optimiser's moments and the optional best and average weights.
 * 0, or -1 when a write fails. */
static int
put_body(struct sink *o, const struct kz_model *m, struct kz_err *e)
{
	const struct kz_net *net = m->net;
	const struct kz_train_state *ts = &m->ts;

	if (m->type == KZ_MODEL_KNN) {
		if (put_section(o, "KNNX", m->pixels, m->n * m->width *
		    m->height, e) != 0 ||
		    put_section(o, "KNNY", m->labels, m->n * sizeof(int32_t),
		    e) != 0)
			return -1;
		return 0;
	}
	if (m->precision == KZ_F16 && !ts->present) {
		uint8_t *h = malloc(net->nparams * 2 + 2);
		int rc;

		if (h == NULL)
			return kz_errf(e, "out of memory");
		for (size_t i = 0; i < net->nparams; i++)
			put_le16(h + 2 * i, kz_half_from_float(net->params[i]));
		rc = put_section(o, "PF16", h, net->nparams * 2, e);
		free(h);
		if (rc != 0)
			return -1;
	} else if ((m->precision == KZ_Q8 || m->precision == KZ_QN) &&
	    !ts->present) {
		size_t len;
		uint8_t *q = m->precision == KZ_Q8 ?
		    kz_pq8_encode(net, &len, e) :
		    kz_pqn_encode(net, m->qdense, m->qconv, &len, e);
		int rc;

		if (q == NULL)
			return -1;
		rc = put_section(o, m->precision == KZ_Q8 ? "PQ8 " : "PQN ",
		    q, len, e);
		free(q);
		if (rc != 0)
			return -1;
	} else if (put_section(o, "PARM", net->params, net->nparams * 4,
	    e) != 0) {
		return -1;
	}
	if (put_section(o, "STAT", net->state, net->nstate * 4, e) != 0)
		return -1;
	if (!ts->present)
		return 0;
	if (put_section(o, "OPTM", ts->opt_m, net->nparams * 4, e) != 0 ||
	    put_section(o, "OPTV", ts->opt_v, net->nparams * 4, e) != 0 ||
	    put_net_pair(o, "BSTP", "BSTS", ts->best_params, ts->best_state,
	    net, e) != 0 ||
	    put_net_pair(o, "EMAP", "EMAS", ts->ema_params, ts->ema_state,
	    net, e) != 0)
		return -1;
	return 0;
}

/* Section CMAP: each class's code point, a u32, little-endian; none
 * for an empty map.  0, or -1 when a write fails. */
static int
put_classmap(struct sink *o, const struct kz_classmap *map,
    struct kz_err *e)
{
	uint8_t *b;
	int rc;

	if (map->n == 0)
		return 0;
	if ((b = malloc(map->n * 4)) == NULL)
		return kz_errf(e, "out of memory");
	for (size_t i = 0; i < map->n; i++)
		put_le32(b + 4 * i, map->codepoint[i]);
	rc = put_section(o, "CMAP", b, map->n * 4, e);
	free(b);
	return rc;
}

static int put_model(struct sink *o, const struct kz_model *m,
    const char *path, int depth, struct kz_err *e);

/* An ensemble's members, each a whole model file in a section MEMB,
 * without the class map and settings that the ensemble holds once. */
static int
put_members(struct sink *o, const struct kz_model *m, const char *path,
    struct kz_err *e)
{
	if (m->nmembers < 1 || m->nmembers > KZ_MAX_MEMBERS)
		return kz_errf(e, "%s: an ensemble of %d models (1 to %d)",
		    path, m->nmembers, KZ_MAX_MEMBERS);
	for (int i = 0; i < m->nmembers; i++) {
		struct kz_model member = m->members[i];
		struct sink ms = { 0 };
		int rc;

		if (member.type == KZ_MODEL_ENSEMBLE || member.ts.present)
			return kz_errf(e, "%s: an ensemble's members are nets "
			    "or kNN models, not %s", path,
			    member.ts.present ? "checkpoints" : "ensembles");
		if (!kz_model_member_fits(&member, m->width, m->height,
		    m->nclasses))
			return kz_errf(e, "%s: member %d is %ux%u of %u "
			    "classes, the ensemble %ux%u of %u (a member's "
			    "size divides the ensemble's)", path, i + 1,
			    member.width, member.height, member.nclasses,
			    m->width, m->height, m->nclasses);
		member.classmap.n = 0;
		memset(&member.settings, 0, sizeof(member.settings));
		rc = put_model(&ms, &member, path, 1, e);
		if (rc == 0)
			rc = put_section(o, "MEMB", ms.buf, ms.len, e);
		free(ms.buf);
		if (rc != 0)
			return -1;
	}
	return 0;
}

/* The whole file of m into o: head, META, CMAP, the body or the
 * members, and the closing CRC.  depth is 1 for an ensemble's member. */
static int
put_model(struct sink *o, const struct kz_model *m, const char *path,
    int depth, struct kz_err *e)
{
	char meta[META_MAX];
	uint8_t head[12], tail[16];
	const char *bad;
	size_t n;

	if ((bad = meta_unsafe(m)) != NULL)
		return kz_errf(e, "%s: the model's %s has a control character "
		    "(write it escaped)", path, bad);
	n = meta_format(m, meta, sizeof(meta));
	if (n >= sizeof(meta))
		return kz_errf(e, "%s: model description too long", path);
	if (m->classmap.n != 0 && m->classmap.n != m->nclasses)
		return kz_errf(e, "%s: a class map of %zu classes for a model "
		    "of %u", path, m->classmap.n, m->nclasses);
	if (m->type == KZ_MODEL_ENSEMBLE && depth > 0)
		return kz_errf(e, "%s: an ensemble cannot hold an ensemble",
		    path);
	memcpy(head, KZM_MAGIC, 8);
	put_le32(head + 8, KZM_VERSION);
	if (sink_put(o, head, sizeof(head), 0, e) != 0 ||
	    put_section(o, "META", meta, n, e) != 0 ||
	    put_classmap(o, &m->classmap, e) != 0 ||
	    (m->type == KZ_MODEL_ENSEMBLE ? put_members(o, m, path, e) :
	    put_body(o, m, e)) != 0)
		return -1;
	/* The CRC covers every byte before its own section. */
	memcpy(tail, "CRC ", 4);
	put_le64(tail + 4, 4);
	put_le32(tail + 12, (uint32_t)o->crc);
	return sink_put(o, tail, sizeof(tail), 1, e);
}

int
kz_model_write(const struct kz_model *m, const char *path, struct kz_err *e)
{
	struct kz_out o;
	struct sink s = { &o, NULL, 0, 0, 0 };

	if (kz_out_open(&o, path, e) != 0)
		return -1;
	if (put_model(&s, m, path, 0, e) != 0) {
		kz_out_abort(&o);
		return -1;
	}
	return kz_out_close(&o, e);
}

