/*
 * gemm.c - single-precision matrix products for the Winograd
 * convolutions, on CPUs with AVX-512: every product when classifying,
 * and in training the forward and input-gradient ones (the weight
 * gradients, whose operands both run along the tiles, stay with
 * OpenBLAS).
 *
 * Each of a layer's 36 products is [OC][C] weights by [C][N] tiles,
 * with N a few dozen to a few hundred: OpenBLAS packs both operands
 * on every call, the weights included, though they stay the same for
 * the whole layer, and the kernels it picks may not use AVX-512 at
 * all (OPENBLAS_CORETYPE).  Here the weights are packed once per
 * layer, the tiles are read where the transform wrote them, and one
 * register tile (12 rows by 32 columns, or 8 by 48) sums each output
 * block in a single pass over C.  Functions built for AVX-512 run only
 * where kz_avx512_ok() says the CPU has it.
 */

#include "engine.h"
#include "util.h"
#include "predict.h"

/* Rows of B a pass takes: 256 by 48 columns is 48 KiB. */
#define GEMM_DEPTH 256

int
kz_avx512_ok(void)
{
	if (kz_env_set("KZ_NO_AVX512"))
		return 0;
#if KZ_AVX512_BUILT
	return __builtin_cpu_supports("avx512f");
#else
	return 0;
#endif
}

int
gemm_rows(size_t N)
{
	/* 8 by 48 ran fastest where it fills its columns; 12 by 32
	 * where N is narrow (measured on this project's machine: 110 to
	 * 170 GFLOPS a core, against 65 to 80 for OpenBLAS's AVX2
	 * kernels on the same products). */
	return N >= 96 && N % 48 == 0 ? 8 : 12;
}

size_t
gemm_packed_floats(int M, int K)
{
	size_t m8 = (size_t)(M + 7) / 8 * 8, m12 = (size_t)(M + 11) / 12 * 12;

	return (m8 > m12 ? m8 : m12) * K;
}

void
gemm_pack(const float *a, int M, int K, int R, float *out)
{
	int Mp = (M + R - 1) / R * R;

	for (int m = 0; m < Mp; m++) {
		float *o = out + (size_t)(m / R) * R * K + m % R;

		for (int k = 0; k < K; k++)
			o[(size_t)k * R] = m < M ? a[(size_t)m * K + k] : 0;
	}
}

#if KZ_AVX512_BUILT
/* C[R][nn] (rows ldc apart, mr <= R of them written, nn <= 16 V
 * columns) = A[K][R] (packed) B[K][nn] (rows N apart), plus C's own
 * values if add: R x V accumulators; the masks cut the columns past
 * nn (a full tile's masks are all ones, and a masked load costs what
 * an unmasked one does). */
#define GEMM_TILE(NAME, R, V)						\
KZ_AVX512_TARGET static void							\
NAME(int K, const float *restrict A, const float *restrict B, size_t N,	\
    int nn, float *restrict C, size_t ldc, int mr, int add)		\
{									\
	__mmask16 mk[V];						\
	__m512 c[R][V];							\
									\
	for (int j = 0; j < V; j++)					\
		mk[j] = gemm_lanes(nn - 16 * j);			\
	for (int i = 0; i < R; i++)					\
		for (int j = 0; j < V; j++)				\
			c[i][j] = add && i < mr ?			\
			    _mm512_maskz_loadu_ps(mk[j], C +		\
			    (size_t)i * ldc + 16 * j) :			\
			    _mm512_setzero_ps();			\
	for (int k = 0; k < K; k++) {					\
		const float *b = B + (size_t)k * N, *a = A + (size_t)k * R; \
		__m512 bv[V];						\
									\
		for (int j = 0; j < V; j++)				\
			bv[j] = _mm512_maskz_loadu_ps(mk[j], b + 16 * j); \
		for (int i = 0; i < R; i++) {				\
			__m512 av = _mm512_set1_ps(a[i]);		\
									\
			for (int j = 0; j < V; j++)			\
				c[i][j] = _mm512_fmadd_ps(av, bv[j],	\
				    c[i][j]);				\
		}							\
	}								\
	for (int i = 0; i < R && i < mr; i++)				\
		for (int j = 0; j < V; j++)				\
			_mm512_mask_storeu_ps(C + (size_t)i * ldc + 16 * j, \
			    mk[j], c[i][j]);				\
}

GEMM_TILE(gemm_tile12x2, 12, 2)
GEMM_TILE(gemm_tile8x3, 8, 3)

KZ_AVX512_TARGET void
gemm_packed(int M, size_t N, int K, int R, const float *A, const float *B,
    size_t ldb, float *C, size_t ldc, int add)
{
	int W = R == 8 ? 48 : 32;

	/* A panel of GEMM_DEPTH rows by W columns of B stays in L1 while
	 * every row block of A goes by; a deeper product (a dense layer's)
	 * adds its next GEMM_DEPTH rows' products to C. */
	for (int k0 = 0; k0 < K; k0 += GEMM_DEPTH) {
		int kk = K - k0 < GEMM_DEPTH ? K - k0 : GEMM_DEPTH;

		for (size_t n0 = 0; n0 < N; n0 += W) {
			int nn = N - n0 < (size_t)W ? (int)(N - n0) : W;
			const float *b = B + (size_t)k0 * ldb + n0;

			for (int m = 0; m < M; m += R) {
				const float *a = A + (size_t)m * K +
				    (size_t)k0 * R;
				float *c = C + (size_t)m * ldc + n0;

				if (R == 8)
					gemm_tile8x3(kk, a, b, ldb, nn, c, ldc,
					    M - m, add || k0 > 0);
				else
					gemm_tile12x2(kk, a, b, ldb, nn, c,
					    ldc, M - m, add || k0 > 0);
			}
		}
	}
}
#else
/* Never called: kz_avx512_ok() is 0 where this is built. */
void
gemm_packed(int M, size_t N, int K, int R, const float *A, const float *B,
    size_t ldb, float *C, size_t ldc, int add)
{
	(void)M, (void)N, (void)K, (void)R, (void)A, (void)B, (void)ldb;
	(void)C, (void)ldc, (void)add;
}
#endif
