/* rng.c - a small seeded generator (xoshiro256**, seeded by splitmix64):
 * the same seed gives the same numbers on every machine. */
#include <math.h>

#include "kz.h"

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void
kz_rng_seed(struct kz_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

double
kz_rng_uniform(struct kz_rng *r)
{
	return (kz_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t
kz_rng_below(struct kz_rng *r, uint64_t n)
{
	/* Lemire's multiply-shift; the bias for n << 2^64 is negligible
	 * and, above all, identical on every machine. */
	return (uint64_t)(((unsigned __int128)kz_rng_next(r) * n) >> 64);
}

double
kz_rng_normal(struct kz_rng *r)
{
	double u1 = kz_rng_uniform(r), u2 = kz_rng_uniform(r);

	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void
kz_rng_shuffle(struct kz_rng *r, uint32_t *a, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = kz_rng_below(r, i);
		uint32_t t = a[i - 1];

		a[i - 1] = a[j];
		a[j] = t;
	}
}
