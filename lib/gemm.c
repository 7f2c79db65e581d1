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
#include <string.h>

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
	return __builtin_cpu_supports("avx512f") &&
	    __builtin_cpu_supports("avx512vl");
#else
	return 0;
#endif
}

/* x rounded up to a multiple of m. */
static size_t
round_up(size_t x, size_t m)
{
	return (x + m - 1) / m * m;
}

int
gemm_rows(int M, size_t N)
{
	/* A tile computes all its rows and columns, the padding too: 16
	 * rows in tiles of 12 are 24 rows of products, a third of them
	 * thrown away.  So the size that computes fewer wins; on a tie,
	 * 8 by 48 where it fills its columns, which ran fastest, and 12
	 * by 32 where N is narrow (measured on this project's machine:
	 * 110 to 170 GFLOPS a core, against 65 to 80 for OpenBLAS's
	 * AVX2 kernels on the same products). */
	size_t w8 = round_up((size_t)M, 8) * round_up(N, gemm_cols(8));
	size_t w12 = round_up((size_t)M, 12) * round_up(N, gemm_cols(12));

	if (w8 != w12)
		return w8 < w12 ? 8 : 12;
	return N >= 96 && N % 48 == 0 ? 8 : 12;
}

size_t
gemm_packed_floats(int M, int K)
{
	size_t m8 = round_up((size_t)M, 8), m12 = round_up((size_t)M, 12);

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
	int W = gemm_cols(R);

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

/* Depth of gemm_dots' passes: rows of 512 floats, a 4 x 4 tile's
 * eight in 16 KiB of L1, every row of a 64-channel product in L2. */
#define GEMM_DOTS_DEPTH 512
/* Bytes ahead that gemm_dots asks for its rows: the tiles it reads were
 * kept since the forward pass, and come from memory. */
#define GEMM_DOTS_AHEAD 1024

/* One round of gemm_sum_lanes on the pair a, b, whose lanes hold sums
 * in segments of 2h lanes: into segments of h, output lane L the sum of
 * lanes L + (L & -h) and h further, of a, or of b from output lane 8
 * on (permutex2var numbers b's lanes 16 to 31). */
KZ_AVX512_TARGET static inline __m512
gemm_sum_pair(__m512 a, __m512 b, int h)
{
	__m512i L = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5,
	    4, 3, 2, 1, 0);
	__m512i lo = _mm512_add_epi32(L, _mm512_and_si512(L,
	    _mm512_set1_epi32(-h)));
	__m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(h));

	return _mm512_add_ps(_mm512_permutex2var_ps(a, lo, b),
	    _mm512_permutex2var_ps(a, hi, b));
}

/* Lane k = the sum of s[k]'s lanes, k < 16: four rounds that each add
 * the halves of every sum's segment, two sums to a vector (segments of
 * 8 lanes, then 4, 2, 1), so that sixteen sums take 15 additions where
 * one alone takes 4. */
/* (Spelt out: as loops, GCC kept the sums in memory.) */
KZ_AVX512_TARGET static inline __m512
gemm_sum_lanes(const __m512 *s)
{
	__m512 t0 = gemm_sum_pair(s[0], s[1], 8);
	__m512 t1 = gemm_sum_pair(s[2], s[3], 8);
	__m512 t2 = gemm_sum_pair(s[4], s[5], 8);
	__m512 t3 = gemm_sum_pair(s[6], s[7], 8);
	__m512 t4 = gemm_sum_pair(s[8], s[9], 8);
	__m512 t5 = gemm_sum_pair(s[10], s[11], 8);
	__m512 t6 = gemm_sum_pair(s[12], s[13], 8);
	__m512 t7 = gemm_sum_pair(s[14], s[15], 8);

	t0 = gemm_sum_pair(t0, t1, 4);
	t2 = gemm_sum_pair(t2, t3, 4);
	t4 = gemm_sum_pair(t4, t5, 4);
	t6 = gemm_sum_pair(t6, t7, 4);
	t0 = gemm_sum_pair(t0, t2, 2);
	t4 = gemm_sum_pair(t4, t6, 2);
	return gemm_sum_pair(t0, t4, 1);
}

/* C[i][j] (rows ldc apart) += the sum of s[4 i + j]'s lanes, i < mr,
 * j < nr. */
KZ_AVX512_TARGET static inline void
gemm_dots_store(const __m512 *s, float *C, size_t ldc, int mr, int nr)
{
	/* lane 4 i + j: row i's four sums to lanes 0-3 */
	__m512 sum = gemm_sum_lanes(s);
	__mmask16 row = gemm_lanes(nr < 4 ? nr : 4);

	for (int i = 0; i < mr && i < 4; i++) {
		float *d = C + (size_t)i * ldc;
		__m512 v = _mm512_maskz_compress_ps((__mmask16)(0xf << 4 * i),
		    sum);

		_mm512_mask_storeu_ps(d, row, _mm512_add_ps(v,
		    _mm512_maskz_loadu_ps(row, d)));
	}
}

/* C[i][j] (rows ldc apart) += a[i] . b[j] over K floats, i < mr,
 * j < nr: sixteen sums in registers, eight loads to sixteen
 * multiply-adds. */
KZ_AVX512_TARGET static void
gemm_dots4x4(size_t K, const void *const *av, const void *const *bv,
    float *C, size_t ldc, int mr, int nr)
{
	const float *const *a = (const float *const *)av;
	const float *const *b = (const float *const *)bv;
	__m512 s[16];

	for (int i = 0; i < 16; i++)
		s[i] = _mm512_setzero_ps();
	for (size_t k = 0; k < K; k += 16) {
		__mmask16 m = gemm_lanes((ptrdiff_t)(K - k));
		__m512 bv[4];

		for (int j = 0; j < 4; j++) {
			bv[j] = _mm512_maskz_loadu_ps(m, b[j] + k);
			_mm_prefetch((const char *)(b[j] + k) +
			    GEMM_DOTS_AHEAD, _MM_HINT_T0);
		}
		for (int i = 0; i < 4; i++) {
			__m512 av = _mm512_maskz_loadu_ps(m, a[i] + k);

			_mm_prefetch((const char *)(a[i] + k) +
			    GEMM_DOTS_AHEAD, _MM_HINT_T0);

			for (int j = 0; j < 4; j++)
				s[4 * i + j] = _mm512_fmadd_ps(av, bv[j],
				    s[4 * i + j]);
		}
	}
	gemm_dots_store(s, C, ldc, mr, nr);
}

/* gemm_dots4x4 for rows of bfloat16s (bf16_rows), 32 at a time,
 * multiplied in pairs by vdpbf16ps: half the loads and multiply-add
 * instructions.  The pairs are the rows' neighbours, the same in a and
 * in b, so the sums are the dot products' whatever the pairing. */
KZ_BF16_TARGET static void
bf16_dots4x4(size_t K, const void *const *av, const void *const *bv,
    float *C, size_t ldc, int mr, int nr)
{
	const uint16_t *const *a = (const uint16_t *const *)av;
	const uint16_t *const *b = (const uint16_t *const *)bv;
	__m512 s[16];

	for (int i = 0; i < 16; i++)
		s[i] = _mm512_setzero_ps();
	for (size_t k = 0; k < K; k += 32) {
		size_t r = K - k;
		__mmask32 m = r >= 32 ? ~(__mmask32)0 : ((__mmask32)1 << r) - 1;
		__m512i bw[4];

		for (int j = 0; j < 4; j++) {
			bw[j] = _mm512_maskz_loadu_epi16(m, b[j] + k);
			_mm_prefetch((const char *)(b[j] + k) +
			    GEMM_DOTS_AHEAD, _MM_HINT_T0);
		}
		for (int i = 0; i < 4; i++) {
			__m512i aw = _mm512_maskz_loadu_epi16(m, a[i] + k);

			_mm_prefetch((const char *)(a[i] + k) +
			    GEMM_DOTS_AHEAD, _MM_HINT_T0);
			for (int j = 0; j < 4; j++)
				s[4 * i + j] = bf16_dot(s[4 * i + j], aw,
				    bw[j]);
		}
	}
	gemm_dots_store(s, C, ldc, mr, nr);
}

/* The tiles of gemm_dots and bf16_dots over elements of esz bytes,
 * rows lda and ldb elements apart. */
KZ_AVX512_TARGET static void
dots_tiles(int M, int N, size_t K, const char *A, size_t lda,
    const char *B, size_t ldb, size_t esz, float *C, size_t ldc, int add,
    void (*tile)(size_t, const void *const *, const void *const *,
    float *, size_t, int, int))
{
	for (int i = 0; !add && i < M; i++)
		memset(C + (size_t)i * ldc, 0, (size_t)N * sizeof(float));
	for (size_t k0 = 0; k0 < K; k0 += GEMM_DOTS_DEPTH) {
		size_t kk = K - k0 < GEMM_DOTS_DEPTH ? K - k0 :
		    GEMM_DOTS_DEPTH;

		for (int i0 = 0; i0 < M; i0 += 4)
			for (int j0 = 0; j0 < N; j0 += 4) {
				/* A partial tile repeats its last row of A or
				 * B; those sums are not stored. */
				const void *a[4], *b[4];

				for (int k = 0; k < 4; k++) {
					int i = i0 + k, j = j0 + k;

					a[k] = A + ((size_t)(i < M ? i : M - 1) *
					    lda + k0) * esz;
					b[k] = B + ((size_t)(j < N ? j : N - 1) *
					    ldb + k0) * esz;
				}
				tile(kk, a, b, C + (size_t)i0 * ldc + j0, ldc,
				    M - i0, N - j0);
			}
	}
}

KZ_AVX512_TARGET void
gemm_dots(int M, int N, size_t K, const float *A, size_t lda,
    const float *B, size_t ldb, float *C, size_t ldc, int add)
{
	dots_tiles(M, N, K, (const char *)A, lda, (const char *)B, ldb,
	    sizeof(float), C, ldc, add, gemm_dots4x4);
}

KZ_AVX512_TARGET void
bf16_dots(int M, int N, size_t K, const uint16_t *A, size_t lda,
    const uint16_t *B, size_t ldb, float *C, size_t ldc, int add)
{
	dots_tiles(M, N, K, (const char *)A, lda, (const char *)B, ldb,
	    sizeof(uint16_t), C, ldc, add, bf16_dots4x4);
}
#else
/* Never called: kz_avx512_ok() is 0 where these are built. */
void
gemm_dots(int M, int N, size_t K, const float *A, size_t lda,
    const float *B, size_t ldb, float *C, size_t ldc, int add)
{
	(void)M, (void)N, (void)K, (void)A, (void)lda, (void)B, (void)ldb;
	(void)C, (void)ldc, (void)add;
}

void
bf16_dots(int M, int N, size_t K, const uint16_t *A, size_t lda,
    const uint16_t *B, size_t ldb, float *C, size_t ldc, int add)
{
	(void)M, (void)N, (void)K, (void)A, (void)lda, (void)B, (void)ldb;
	(void)C, (void)ldc, (void)add;
}

void
gemm_packed(int M, size_t N, int K, int R, const float *A, const float *B,
    size_t ldb, float *C, size_t ldc, int add)
{
	(void)M, (void)N, (void)K, (void)R, (void)A, (void)B, (void)ldb;
	(void)C, (void)ldc, (void)add;
}
#endif
