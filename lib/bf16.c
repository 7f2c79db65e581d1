/*
 * bf16.c - matrix products in bfloat16 with single-precision sums, for
 * the Winograd convolutions when classifying on CPUs with AVX512_BF16.
 *
 * A bfloat16 is a float's upper 16 bits (8 bits of mantissa): products
 * of two of them summed in single precision by vdpbf16ps, 32 to an
 * instruction where an FMA does 16.  The operands are rounded to
 * nearest even, each by at most 2^-9 of its size; the sums keep single
 * precision.  Functions built for AVX512_BF16 run only where
 * kz_bf16_ok() says the CPU has it: the rest of the library stays
 * portable.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "util.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BF16_BUILT 1
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#else
#define BF16_BUILT 0
#endif

int
kz_bf16_ok(void)
{
	if (kz_env_set("KZ_NO_BF16"))
		return 0;
#if BF16_BUILT
	return __builtin_cpu_supports("avx512bf16") &&
	    __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl");
#else
	return 0;
#endif
}

#if BF16_BUILT
BF16_TARGET void
bf16_pack_rows(const float *a, int M, int K, uint32_t *out)
{
	int K2 = (K + 1) / 2;

	/* Pair k of a row is its floats 2k and 2k + 1: the row's
	 * bfloat16s in order, a zero after an odd K. */
	for (int m = 0; m < M; m++) {
		const float *r = a + (size_t)m * K;
		uint16_t *o = (uint16_t *)(out + (size_t)m * K2);

		for (int k = 0; k < K; k += 16) {
			__mmask16 mk = K - k >= 16 ? 0xffff :
			    (__mmask16)((1u << (K - k)) - 1);
			__m256bh h = _mm512_cvtneps_pbh(
			    _mm512_maskz_loadu_ps(mk, r + k));

			_mm256_mask_storeu_epi16(o + k, mk, (__m256i)h);
		}
		if (K & 1)
			o[K] = 0;
	}
}

BF16_TARGET void
bf16_pack_cols(const float *restrict b, int K, size_t N,
    uint32_t *restrict out)
{
	/* cvtne2ps gives the 16 bfloat16s of row 2k, then those of row
	 * 2k + 1; the permutation interleaves them into pairs. */
	const __m512i mix = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12,
	    27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3,
	    18, 2, 17, 1, 16, 0);
	int K2 = (K + 1) / 2;

	for (int k = 0; k < K2; k++) {
		const float *r0 = b + (size_t)2 * k * N, *r1 = r0 + N;
		uint32_t *o = out + (size_t)k * N;
		int odd = 2 * k + 1 == K;

		for (size_t n = 0; n < N; n += 16) {
			__mmask16 mk = N - n >= 16 ? 0xffff :
			    (__mmask16)((1u << (N - n)) - 1);
			__m512 lo = _mm512_maskz_loadu_ps(mk, r0 + n);
			__m512 hi = odd ? _mm512_setzero_ps() :
			    _mm512_maskz_loadu_ps(mk, r1 + n);
			__m512i p = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);

			_mm512_mask_storeu_epi32(o + n, mk,
			    _mm512_permutexvar_epi16(mix, p));
		}
	}
}

/* C[8][nn] (rows ldc apart, nn <= 32 columns) = A[8][K2] B[K2][nn]:
 * 16 accumulators, two vectors of 16 columns for each row. */
BF16_TARGET static void
bf16_tile8(int K2, const uint32_t *A, const uint32_t *B, size_t N,
    int nn, float *C, size_t ldc)
{
	__mmask16 k0 = nn >= 16 ? 0xffff : (__mmask16)((1u << nn) - 1);
	__mmask16 k1 = nn >= 32 ? 0xffff : nn > 16 ?
	    (__mmask16)((1u << (nn - 16)) - 1) : 0;
	__m512 c[8][2];

	for (int i = 0; i < 8; i++)
		c[i][0] = c[i][1] = _mm512_setzero_ps();
	for (int k = 0; k < K2; k++) {
		__m512bh b0 = (__m512bh)_mm512_maskz_loadu_epi32(k0,
		    B + (size_t)k * N);
		__m512bh b1 = (__m512bh)_mm512_maskz_loadu_epi32(k1,
		    B + (size_t)k * N + 16);

		for (int i = 0; i < 8; i++) {
			__m512bh a = (__m512bh)_mm512_set1_epi32((int)
			    A[(size_t)i * K2 + k]);

			c[i][0] = _mm512_dpbf16_ps(c[i][0], a, b0);
			c[i][1] = _mm512_dpbf16_ps(c[i][1], a, b1);
		}
	}
	for (int i = 0; i < 8; i++) {
		_mm512_mask_storeu_ps(C + (size_t)i * ldc, k0, c[i][0]);
		_mm512_mask_storeu_ps(C + (size_t)i * ldc + 16, k1, c[i][1]);
	}
}

/* The same for one row. */
BF16_TARGET static void
bf16_tile1(int K2, const uint32_t *A, const uint32_t *B, size_t N,
    int nn, float *C)
{
	__mmask16 k0 = nn >= 16 ? 0xffff : (__mmask16)((1u << nn) - 1);
	__mmask16 k1 = nn >= 32 ? 0xffff : nn > 16 ?
	    (__mmask16)((1u << (nn - 16)) - 1) : 0;
	__m512 c0 = _mm512_setzero_ps(), c1 = _mm512_setzero_ps();

	for (int k = 0; k < K2; k++) {
		__m512bh a = (__m512bh)_mm512_set1_epi32((int)A[k]);

		c0 = _mm512_dpbf16_ps(c0, a, (__m512bh)_mm512_maskz_loadu_epi32(
		    k0, B + (size_t)k * N));
		c1 = _mm512_dpbf16_ps(c1, a, (__m512bh)_mm512_maskz_loadu_epi32(
		    k1, B + (size_t)k * N + 16));
	}
	_mm512_mask_storeu_ps(C, k0, c0);
	_mm512_mask_storeu_ps(C + 16, k1, c1);
}

BF16_TARGET void
bf16_gemm(int M, size_t N, int K, const uint32_t *A, const uint32_t *B,
    float *C, size_t ldc)
{
	int K2 = (K + 1) / 2;

	/* A panel of 32 columns of B (K2 pairs by 128 bytes) stays in L1
	 * while every row of A goes by. */
	for (size_t n0 = 0; n0 < N; n0 += 32) {
		int nn = N - n0 < 32 ? (int)(N - n0) : 32;
		int m = 0;

		for (; m + 8 <= M; m += 8)
			bf16_tile8(K2, A + (size_t)m * K2, B + n0, N, nn,
			    C + (size_t)m * ldc + n0, ldc);
		for (; m < M; m++)
			bf16_tile1(K2, A + (size_t)m * K2, B + n0, N, nn,
			    C + (size_t)m * ldc + n0);
	}
}
#else
/* Never called: kz_bf16_ok() is 0 where this is built. */
void
bf16_pack_rows(const float *a, int M, int K, uint32_t *out)
{
	(void)a, (void)M, (void)K, (void)out;
}

void
bf16_pack_cols(const float *restrict b, int K, size_t N,
    uint32_t *restrict out)
{
	(void)b, (void)K, (void)N, (void)out;
}

void
bf16_gemm(int M, size_t N, int K, const uint32_t *A, const uint32_t *B,
    float *C, size_t ldc)
{
	(void)M, (void)N, (void)K, (void)A, (void)B, (void)C, (void)ldc;
}
#endif
