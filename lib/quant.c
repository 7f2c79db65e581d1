/*
 * quant.c - a net's parameters in fewer bits than a float's (kzm(5)):
 * halves (PF16), 8-bit integers with a scale a block (PQ8), and
 * integers 2 to 8 bits wide with a width and a scale a block (PQN; PQ4,
 * its older form, read only); what model.c reads and model_write.c
 * writes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "model.h"
#include "model_file.h"
#include "util.h"

/* See model_file.h. */
uint16_t
kz_half_from_float(float f)
{
	uint32_t x, sign, mant;
	int exp;

	memcpy(&x, &f, 4);
	sign = x >> 16 & 0x8000;
	exp = (int)(x >> 23 & 0xff) - 127 + 15;
	mant = x & 0x7fffff;
	if ((x & 0x7fffffff) > 0x7f800000)		/* NaN */
		return (uint16_t)(sign | 0x7e00);
	if (exp >= 31)					/* too large, inf */
		return (uint16_t)(sign | 0x7c00);
	if (exp <= 0) {					/* subnormal or 0 */
		if (exp < -10)
			return (uint16_t)sign;
		mant |= 0x800000;
		uint32_t shift = (uint32_t)(14 - exp);
		uint32_t h = mant >> shift, rest = mant & ((1u << shift) - 1);
		uint32_t half = 1u << (shift - 1);

		if (rest > half || (rest == half && (h & 1)))
			h++;
		return (uint16_t)(sign | h);
	}
	uint32_t h = (uint32_t)exp << 10 | mant >> 13, rest = mant & 0x1fff;

	/* A carry out of the mantissa rounds into the exponent, as it
	 * should, up to infinity. */
	if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
		h++;
	return (uint16_t)(sign | h);
}

/* See model_file.h. */
float
kz_float_from_half(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = h >> 10 & 0x1f;
	uint32_t mant = h & 0x3ff, x;
	float f;

	if (exp == 0) {
		/* 0 or subnormal: mant * 2^-24, exact in a float. */
		f = (float)mant * 0x1p-24f;
		return sign ? -f : f;
	}
	if (exp == 31)
		x = sign | 0x7f800000 | mant << 13;
	else
		x = sign | (exp - 15 + 127) << 23 | mant << 13;
	memcpy(&f, &x, 4);
	return f;
}

/* See model_file.h. */
enum kz_param_kind
kz_param_kind(const struct kz_net *net, size_t i, size_t j)
{
	for (int l = 0; l < net->nlayers; l++) {
		const struct kz_layer *L = &net->layers[l];

		if (i >= L->w_off && j < L->w_off + L->nw)
			return L->type == KZ_DENSE ? KZ_PARAM_DENSE :
			    L->type == KZ_CONV ? KZ_PARAM_CONV :
			    KZ_PARAM_OTHER;
	}
	return KZ_PARAM_OTHER;
}

/* The length of block k of the np parameters. */
static size_t
block_len(size_t np, size_t k)
{
	return np - k * KZ_Q8_BLOCK < KZ_Q8_BLOCK ? np - k * KZ_Q8_BLOCK :
	    KZ_Q8_BLOCK;
}

/* A zeroed payload of size bytes for net's parameters; NULL naming the
 * first parameter that is not finite, or when memory runs out. */
static uint8_t *
payload_new(const struct kz_net *net, size_t size, struct kz_err *e)
{
	uint8_t *b;

	for (size_t i = 0; i < net->nparams; i++)
		if (!isfinite(net->params[i])) {
			kz_errf(e, "parameter %zu is not finite", i);
			return NULL;
		}
	if ((b = calloc(size, 1)) == NULL)
		kz_errf(e, "out of memory");
	return b;
}

uint8_t *
kz_pq8_encode(const struct kz_net *net, size_t *len, struct kz_err *e)
{
	size_t np = net->nparams, nb = kz_nblocks(np);
	uint8_t *b;

	if ((b = payload_new(net, 4 * nb + np + 1, e)) == NULL)
		return NULL;
	for (size_t k = 0; k < nb; k++) {
		const float *w = net->params + k * KZ_Q8_BLOCK;
		size_t n = block_len(np, k);
		float max = 0, scale, inv;
		uint32_t u;

		for (size_t i = 0; i < n; i++)
			max = fabsf(w[i]) > max ? fabsf(w[i]) : max;
		scale = max / 127;
		inv = max > 0 ? 127 / max : 0;
		memcpy(&u, &scale, 4);
		put_le32(b + 4 * k, u);
		for (size_t i = 0; i < n; i++) {
			long q = lrintf(w[i] * inv);

			q = q > 127 ? 127 : q < -127 ? -127 : q;
			b[4 * nb + k * KZ_Q8_BLOCK + i] = (uint8_t)(int8_t)q;
		}
	}
	*len = 4 * nb + np;
	return b;
}

/* The 13-bit PQN scale nearest s (KZ_PQN_SCALE), finite. */
static uint16_t
pqn_scale(float s)
{
	uint16_t h = kz_half_from_float(s);
	uint16_t v = (uint16_t)((h >> 2) + ((h & 3) >= 2));

	/* (Exponent 31 is infinity: the largest finite scale instead.) */
	return KZ_PQN_FINITE(v) ? v : 0x1eff;
}

/* The integers of n weights w at scale s, within +-top, into q; their
 * squared error. */
static double
pqn_round(const float *w, size_t n, float s, int top, int *q)
{
	double err = 0;

	for (size_t i = 0; i < n; i++) {
		long v = s > 0 ? lrintf(w[i] / s) : 0;

		q[i] = v > top ? top : v < -top ? -top : (int)v;
		err += ((double)w[i] - (double)s * q[i]) *
		    ((double)w[i] - (double)s * q[i]);
	}
	return err;
}

/* One PQN block: n weights w (n <= KZ_Q8_BLOCK) as bits-wide integers
 * within +-(2^(bits-1) - 1) and a scale, chosen for the least squared
 * error.  The largest magnitude over the top integer, the plain choice,
 * wastes levels on one outlier, which at 4 bits costs much: so scales
 * down to 0.55 of it are tried, each refined by least squares for the
 * integers it gives, and every try is measured at the scale as
 * stored.  Returns the block's head; the integers go to q. */
static uint16_t
pqn_block(const float *w, size_t n, int bits, int *q)
{
	int top = (1 << (bits - 1)) - 1, t[KZ_Q8_BLOCK];
	float max = 0;
	double best;
	uint16_t head;

	for (size_t i = 0; i < n; i++)
		max = fabsf(w[i]) > max ? fabsf(w[i]) : max;
	head = pqn_scale(max / (float)top);
	best = pqn_round(w, n, KZ_PQN_SCALE(head), top, q);
	for (int r = 0; r <= 18; r++) {
		float s = max / (float)top * (1.0f - 0.025f * (float)r);
		double wq = 0, qq = 0;

		pqn_round(w, n, s, top, t);
		for (size_t i = 0; i < n; i++) {
			wq += (double)w[i] * t[i];
			qq += (double)t[i] * t[i];
		}
		for (int pass = 0; pass < 2; pass++) {
			uint16_t h = pqn_scale(pass == 0 || qq == 0 ? s :
			    (float)(wq / qq));
			double err = pqn_round(w, n, KZ_PQN_SCALE(h), top, t);

			if (err < best) {
				best = err;
				head = h;
				memcpy(q, t, n * sizeof(int));
			}
		}
	}
	return (uint16_t)((bits - 1) << 13 | head);
}

uint8_t *
kz_pqn_encode(const struct kz_net *net, int dense, int conv, size_t *len,
    struct kz_err *e)
{
	size_t np = net->nparams, nb = kz_nblocks(np);
	size_t at = 2 * nb;
	uint8_t *b;
	int q[KZ_Q8_BLOCK];

	if ((b = payload_new(net, 2 * nb + np + 2, e)) == NULL)
		return NULL;
	for (size_t k = 0; k < nb; k++) {
		size_t n = block_len(np, k), i0 = k * KZ_Q8_BLOCK;
		enum kz_param_kind kind = kz_param_kind(net, i0, i0 + n - 1);
		int bits = kind == KZ_PARAM_DENSE ? dense :
		    kind == KZ_PARAM_CONV ? conv : 8;
		uint16_t head = pqn_block(net->params + i0, n, bits, q);

		put_le16(b + 2 * k, head);
		for (size_t i = 0; i < n; i++) {
			size_t bit = i * (size_t)bits;
			unsigned u = (unsigned)q[i] & ((1u << bits) - 1);

			b[at + bit / 8] |= (uint8_t)(u << bit % 8);
			if (bit % 8 + (size_t)bits > 8)
				b[at + bit / 8 + 1] |= (uint8_t)(u >>
				    (8 - bit % 8));
		}
		at += (n * (size_t)bits + 7) / 8;
	}
	*len = at;
	return b;
}

/* The np parameters of blocks of KZ_Q8_BLOCK stored as kzm(5)'s PQ8 and
 * PQ4 store them (their sizes checked): each block's width in bits at
 * width (4 or 8; all 8 where width is NULL), its scale at scale, its
 * integers from ints on.  NULL naming a scale that is negative or not
 * finite, or when memory runs out. */
static float *
block_params(const uint8_t *width, const uint8_t *scale, const uint8_t *ints,
    size_t np, const char *tag, const char *path, struct kz_err *e)
{
	size_t nb = kz_nblocks(np);
	float *p = malloc(np * sizeof(float) + 4);

	if (p == NULL) {
		kz_errf(e, "%s: out of memory", path);
		return NULL;
	}
	for (size_t k = 0; k < nb; k++) {
		size_t i0 = k * KZ_Q8_BLOCK, n = block_len(np, k);
		int bits = width != NULL ? width[k] : 8;
		uint32_t u = get_le32(scale + 4 * k);
		float f;

		memcpy(&f, &u, 4);
		if (!isfinite(f) || f < 0) {
			free(p);
			kz_errf(e, "%s: section %.3s: scale %zu is %g", path,
			    tag, k, f);
			return NULL;
		}
		for (size_t i = 0; i < n; i++) {
			int x;

			if (bits == 8)
				x = (int8_t)ints[i];
			else	/* a signed nibble: 8 to 15 are -8 to -1 */
				x = (((ints[i / 2] >> (4 * (i % 2))) & 15) ^
				    8) - 8;
			p[i0 + i] = f * (float)x;
		}
		ints += bits == 8 ? n : (n + 1) / 2;
	}
	return p;
}

float *
kz_pq8_decode(const uint8_t *q, size_t np, const char *path,
    struct kz_err *e)
{
	return block_params(NULL, q, q + 4 * kz_nblocks(np), np, "PQ8", path,
	    e);
}

/* 0 when section tag's len bytes are need, else -1 naming them: the
 * head alone (at_least) or the head and the blocks' widths. */
static int
section_size(const char *path, const char *tag, uint64_t len, size_t need,
    int at_least, struct kz_err *e)
{
	if (at_least ? len >= need : len == need)
		return 0;
	return kz_errf(e, "%s: section %s holds %llu bytes, the architecture "
	    "%s %zu", path, tag, (unsigned long long)len, at_least ?
	    "needs at least" : "and the blocks' widths need", need);
}

/* Notes the width of a block of m's parameters, i0 and the n after
 * it: the first block of dense layers' weights gives m's qdense, the
 * first of convolutions' weights its qconv. */
static void
note_width(struct kz_model *m, size_t i0, size_t n, int bits)
{
	enum kz_param_kind kind;

	if (m->qdense != 0 && m->qconv != 0)
		return;
	kind = kz_param_kind(m->net, i0, i0 + n - 1);
	if (kind == KZ_PARAM_DENSE && m->qdense == 0)
		m->qdense = bits;
	else if (kind == KZ_PARAM_CONV && m->qconv == 0)
		m->qconv = bits;
}

float *
kz_pq4_decode(const uint8_t *q, uint64_t len, struct kz_model *m,
    const char *path, struct kz_err *e)
{
	size_t np = m->net->nparams, nb = kz_nblocks(np);
	size_t need = 5 * nb;

	if (section_size(path, "PQ4", len, need, 1, e) != 0)
		return NULL;
	for (size_t k = 0; k < nb; k++) {
		size_t n = block_len(np, k);

		if (q[k] != 4 && q[k] != 8) {
			kz_errf(e, "%s: section PQ4: block %zu is %u bits "
			    "wide, not 4 or 8", path, k, q[k]);
			return NULL;
		}
		need += q[k] == 8 ? n : (n + 1) / 2;
		note_width(m, k * KZ_Q8_BLOCK, n, q[k]);
	}
	if (section_size(path, "PQ4", len, need, 0, e) != 0)
		return NULL;
	return block_params(q, q + nb, q + 5 * nb, np, "PQ4", path, e);
}

float *
kz_pqn_decode(const uint8_t *q, uint64_t len, struct kz_model *m,
    const char *path, struct kz_err *e)
{
	size_t np = m->net->nparams, nb = kz_nblocks(np);
	size_t need = 2 * nb;
	const uint8_t *ints = q + 2 * nb;
	float *p;

	if (section_size(path, "PQN", len, need, 1, e) != 0)
		return NULL;
	for (size_t k = 0; k < nb; k++) {
		unsigned head = get_le16(q + 2 * k);
		size_t n = block_len(np, k);

		if (KZ_PQN_WIDTH(head) < 2) {
			kz_errf(e, "%s: section PQN: block %zu is 1 bit "
			    "wide, not 2 to 8", path, k);
			return NULL;
		}
		if (!KZ_PQN_FINITE(head)) {
			kz_errf(e, "%s: section PQN: scale %zu is not "
			    "finite", path, k);
			return NULL;
		}
		need += (n * KZ_PQN_WIDTH(head) + 7) / 8;
		note_width(m, k * KZ_Q8_BLOCK, n, (int)KZ_PQN_WIDTH(head));
	}
	if (section_size(path, "PQN", len, need, 0, e) != 0)
		return NULL;
	if ((p = malloc(np * sizeof(float) + 4)) == NULL) {
		kz_errf(e, "%s: out of memory", path);
		return NULL;
	}
	for (size_t k = 0; k < nb; k++) {
		unsigned head = get_le16(q + 2 * k), bits = KZ_PQN_WIDTH(head);
		unsigned sign = 1u << (bits - 1), mask = (1u << bits) - 1;
		float scale = KZ_PQN_SCALE(head);
		size_t i0 = k * KZ_Q8_BLOCK, n = block_len(np, k);

		for (size_t i = 0; i < n; i++) {
			size_t bit = i * bits;
			unsigned v = ints[bit / 8] >> bit % 8;

			if (bit % 8 + bits > 8)
				v |= (unsigned)ints[bit / 8 + 1] <<
				    (8 - bit % 8);
			v &= mask;
			p[i0 + i] = scale * (float)((int)(v ^ sign) -
			    (int)sign);
		}
		ints += (n * bits + 7) / 8;
	}
	return p;
}
