/*
 * model_file.h - what the model file's reader (model.c) and writer
 * (model_write.c) share.  Private to lib/.
 */
#ifndef KZ_MODEL_FILE_H
#define KZ_MODEL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct kz_err;
struct kz_model;
struct kz_net;

#define META_MAX 65536		/* bytes of a META section, at most */

/* The settings a model may carry (META keys "setting_NAME"), by name,
 * with their ranges and their place in struct kz_settings. */
struct kz_setting_def {
	const char *name;
	int lo, hi;
	size_t off;
};
extern const struct kz_setting_def kz_setting_defs[];
extern const size_t kz_nsettings;

/* What parameters i .. j of net are, which sets the width of their
 * block in PQN: KZ_PARAM_DENSE when all are weights of one dense layer,
 * KZ_PARAM_CONV when all are weights of one convolution, else
 * KZ_PARAM_OTHER (biases, normalisation, a block across layers). */
enum kz_param_kind { KZ_PARAM_OTHER, KZ_PARAM_DENSE, KZ_PARAM_CONV };
enum kz_param_kind kz_param_kind(const struct kz_net *net, size_t i,
    size_t j);

/* ---- parameters in fewer bits (quant.c) ---------------------------- */

/* IEEE half precision from a float, rounded to nearest, ties to even;
 * beyond the range, infinity. */
uint16_t kz_half_from_float(float f);
/* The float a half-precision value stands for, exactly. */
float kz_float_from_half(uint16_t h);

/* The payload of section PQ8 for net's parameters, *len bytes; NULL
 * naming a parameter that is not finite, or when memory runs out. */
uint8_t *kz_pq8_encode(const struct kz_net *net, size_t *len,
    struct kz_err *e);
/* The payload of section PQN: dense bits in the blocks of dense layers'
 * weights, conv in those of convolutions', 8 in the rest, each block's
 * scale chosen for the least squared error; NULL as kz_pq8_encode. */
uint8_t *kz_pqn_encode(const struct kz_net *net, int dense, int conv,
    size_t *len, struct kz_err *e);
/* The np parameters a PQ8 payload of the right size holds; NULL naming
 * (with path) a scale that is negative or not finite, or when memory
 * runs out. */
float *kz_pq8_decode(const uint8_t *q, size_t np, const char *path,
    struct kz_err *e);
/* The parameters of m's net (built) from a PQ4 or PQN payload of len
 * bytes at q: the blocks' widths, which give the size, checked first;
 * m's qdense and qconv noted from them (0 where no block is of that
 * kind).  NULL naming a width, a scale or the size that is wrong. */
float *kz_pq4_decode(const uint8_t *q, uint64_t len, struct kz_model *m,
    const char *path, struct kz_err *e);
float *kz_pqn_decode(const uint8_t *q, uint64_t len, struct kz_model *m,
    const char *path, struct kz_err *e);

/* A PQN block's 16-bit head (kzm(5)): its width less one in the top 3
 * bits, its scale in the low 13, as the half-precision float whose
 * bits are those 13 shifted left by 2 (no sign, the mantissa's two low
 * bits 0); exponent 31 (infinity, NaN) is not a scale. */
#define KZ_PQN_SCALE(head)	kz_float_from_half((uint16_t)(((head) & \
				    0x1fff) << 2))
#define KZ_PQN_WIDTH(head)	(((head) >> 13) + 1)
#define KZ_PQN_FINITE(head)	(((head) >> 8 & 0x1f) != 0x1f)

/* The blocks of KZ_Q8_BLOCK that np parameters make, the last one
 * shorter where np is not a multiple. */
static inline size_t
kz_nblocks(size_t np)
{
	return (np + KZ_Q8_BLOCK - 1) / KZ_Q8_BLOCK;
}

#endif
