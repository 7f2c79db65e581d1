/*
 * rng.h - random numbers: a small seeded generator that gives the same
 * numbers for a seed on every machine.
 */
#ifndef KZ_RNG_H
#define KZ_RNG_H

#include <stddef.h>
#include <stdint.h>

/* ---- random numbers ---------------------------------------------------- */

/* xoshiro256**: deterministic across machines for a given seed. */
struct kz_rng {
	uint64_t s[4];
};

void kz_rng_seed(struct kz_rng *r, uint64_t seed);

/* The next 64 random bits.  Inline: dropout draws one per activation. */
static inline uint64_t
kz_rng_next(struct kz_rng *r)
{
	uint64_t *s = r->s, t = s[1] << 17;
	uint64_t x = s[1] * 5, result = ((x << 7) | (x >> 57)) * 9;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return result;
}

double kz_rng_uniform(struct kz_rng *r);		/* [0, 1) */
uint64_t kz_rng_below(struct kz_rng *r, uint64_t n);	/* [0, n) */
double kz_rng_normal(struct kz_rng *r);			/* N(0, 1) */
void kz_rng_shuffle(struct kz_rng *r, uint32_t *a, size_t n);

#endif
