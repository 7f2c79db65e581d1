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
#include "predict.h"
#include "util.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BF16_BUILT 1
#define BF16_TARGET KZ_BF16_TARGET
#else
#define BF16_BUILT 0
#endif
#if BF16_BUILT && !KZ_AVX512_BUILT
/* The bfloat16 path takes the other products from gemm_packed. */
#error "AVX512_BF16 built without AVX-512F: see engine.h"
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

int
kz_math_parse(const char *word, enum kz_math *math)
{
	static const struct { const char *word; enum kz_math math; } w[] = {
		{ "auto", KZ_MATH_AUTO }, { "f32", KZ_MATH_F32 },
		{ "bf16", KZ_MATH_BF16 }
	};

	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
		if (strcmp(word, w[i].word) == 0) {
			*math = w[i].math;
			return 0;
		}
	return -1;
}

enum kz_math
kz_math_resolve(enum kz_math asked, const char **why)
{
	*why = NULL;
	if (asked == KZ_MATH_AUTO)
		return kz_bf16_ok() ? KZ_MATH_BF16 : KZ_MATH_F32;
	if (asked == KZ_MATH_BF16 && !kz_bf16_ok()) {
		*why = kz_env_set("KZ_NO_BF16") ? "KZ_NO_BF16 is set" :
		    "this CPU has no AVX512_BF16";
		return KZ_MATH_F32;
	}
	return asked;
}

size_t
bf16_packed_pairs(int M, int K)
{
	/* A pair takes a float's place in gemm_pack's layout. */
	return gemm_packed_floats(M, (K + 1) / 2);
}

#if BF16_BUILT
BF16_TARGET void
bf16_pack_rows(const float *a, int M, int K, int R, uint32_t *out)
{
	int K2 = (K + 1) / 2, Mp = (M + R - 1) / R * R;

	/* Pair k of row m holds its floats 2k (low half) and 2k + 1, at
	 * out[(m / R) R K2 + k R + m % R]: the R pairs a step of the
	 * tile broadcasts lie together, as gemm_pack lays out floats. */
	for (int m = 0; m < Mp; m++) {
		uint32_t *o = out + (size_t)(m / R) * R * K2 + m % R;

		for (int k = 0; k < K2; k++) {
			float lo = m < M ? a[(size_t)m * K + 2 * k] : 0;
			float hi = m < M && 2 * k + 1 < K ?
			    a[(size_t)m * K + 2 * k + 1] : 0;
			__m128bh h = _mm_cvtneps_pbh(_mm_set_ps(0, 0, hi, lo));

			o[(size_t)k * R] = (uint32_t)_mm_cvtsi128_si32(
			    (__m128i)h);
		}
	}
}

BF16_TARGET void
bf16_rows(const float *src, size_t lds, int rows, size_t n, uint16_t *dst,
    size_t ldd)
{
	for (int r = 0; r < rows; r++) {
		const float *s = src + (size_t)r * lds;
		uint16_t *d = dst + (size_t)r * ldd;

		/* Both halves are loaded before the store, which lies at or
		 * before them: converting in place is safe. */
		for (size_t k = 0; k < n; k += 32) {
			__mmask16 m0 = gemm_lanes((ptrdiff_t)(n - k));
			__mmask16 m1 = gemm_lanes((ptrdiff_t)(n - k) - 16);
			__m512 lo = _mm512_maskz_loadu_ps(m0, s + k);
			__m512 hi = _mm512_maskz_loadu_ps(m1, s + k + 16);

			_mm512_mask_storeu_epi16(d + k, (__mmask32)m0 |
			    (__mmask32)m1 << 16, (__m512i)_mm512_cvtne2ps_pbh(hi,
			    lo));
		}
	}
}

/* Pairs of B a panel of bf16_gemm holds: BF16_DEPTH by up to 48
 * columns, 12 KiB of L1 beside A's rows. */
#define BF16_DEPTH 64

/* out [kk][W] = the pairs of rows 2k and 2k + 1 of b (rows ldb apart;
 * row 2k + 1 zero where it is row K, columns from nn zero): the panel
 * the tiles read, made in L1 where they read it. */
BF16_TARGET static void
bf16_panel(const float *restrict b, size_t ldb, int K, int kk, int nn,
    int W, uint32_t *restrict out)
{
	/* cvtne2ps gives the 16 bfloat16s of row 2k, then those of row
	 * 2k + 1; the permutation interleaves them into pairs. */
	const __m512i mix = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12,
	    27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3,
	    18, 2, 17, 1, 16, 0);

	for (int k = 0; k < kk; k++) {
		const float *r0 = b + (size_t)2 * k * ldb, *r1 = r0 + ldb;
		int odd = 2 * k + 1 == K;

		for (int n = 0; n < W; n += 16) {
			__mmask16 mk = gemm_lanes(nn - n);
			__m512 lo = _mm512_maskz_loadu_ps(mk, r0 + n);
			__m512 hi = odd ? _mm512_setzero_ps() :
			    _mm512_maskz_loadu_ps(mk, r1 + n);
			__m512i p = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);

			_mm512_storeu_si512(out + (size_t)k * W + n,
			    _mm512_permutexvar_epi16(mix, p));
		}
	}
}

/* C[R][nn] (rows ldc apart, mr <= R of them written, nn <= 16 V
 * columns) = A[K2][R] pairs (packed) by B[K2][16 V] pairs (rows N
 * apart, zeros past nn), plus C if add: gemm.c's register tile, with
 * one vdpbf16ps doing the 32 products of two FMAs.  B's loads take
 * whole vectors: masked, they too made GCC 12 keep the accumulators
 * on the stack. */
#define BF16_TILE(NAME, R, V)						\
BF16_TARGET static inline __attribute__((always_inline)) void		\
NAME(int K2, const uint32_t *restrict A, const uint32_t *restrict B,	\
    size_t N, int nn, float *restrict C, size_t ldc, int mr, int add)	\
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
	for (int k = 0; k < K2; k++) {					\
		const uint32_t *b = B + (size_t)k * N;			\
		const uint32_t *a = A + (size_t)k * R;			\
		__m512i bv[V];						\
									\
		for (int j = 0; j < V; j++)				\
			bv[j] = _mm512_loadu_si512(b + 16 * j);		\
		for (int i = 0; i < R; i++) {				\
			__m512i av = _mm512_set1_epi32((int)a[i]);	\
									\
			for (int j = 0; j < V; j++)			\
				c[i][j] = bf16_dot(c[i][j], av, bv[j]);	\
		}							\
	}								\
	/* Rows from mr on are stored with no lanes (at row 0, in	\
	 * bounds): a test that skipped them had GCC keep the		\
	 * accumulators on the stack for it. */				\
	for (int i = 0; i < R; i++)					\
		for (int j = 0; j < V; j++)				\
			_mm512_mask_storeu_ps(C + (size_t)(i < mr ? i : 0) * \
			    ldc + 16 * j, i < mr ? mk[j] : 0, c[i][j]);	\
}

BF16_TILE(bf16_tile12x2, 12, 2)
BF16_TILE(bf16_tile8x3, 8, 3)

/* C's columns from B's (nn of them, B's rows ldb apart) += or = the
 * products of every row block of A (R rows, pairs k0 .. k0 + kk - 1 of
 * K2) with them: the register tiles over one panel of columns. */
BF16_TARGET static inline __attribute__((always_inline)) void
bf16_row_blocks(int M, int K2, int R, int k0, int kk, const uint32_t *A,
    const uint32_t *B, size_t ldb, int nn, float *C, size_t ldc, int add)
{
	for (int m = 0; m < M; m += R) {
		const uint32_t *a = A + (size_t)m * K2 + (size_t)k0 * R;
		float *c = C + (size_t)m * ldc;

		if (R == 8)
			bf16_tile8x3(kk, a, B, ldb, nn, c, ldc, M - m, add);
		else
			bf16_tile12x2(kk, a, B, ldb, nn, c, ldc, M - m, add);
	}
}

BF16_TARGET void
bf16_gemm(int M, size_t N, int K, int R, const uint32_t *A,
    const float *B, size_t ldb, float *C, size_t ldc, int add)
{
	int K2 = (K + 1) / 2, W = gemm_cols(R);
	uint32_t panel[BF16_DEPTH * 48] __attribute__((aligned(64)));

	/* Each panel of B is converted once, in L1, and every row block
	 * of A goes by it; a deeper product (a dense layer's) adds its
	 * next BF16_DEPTH pairs' products to C.  Made here, not in a
	 * pass of its own over B, the pairs never reach memory. */
	for (int k0 = 0; k0 < K2; k0 += BF16_DEPTH) {
		int kk = K2 - k0 < BF16_DEPTH ? K2 - k0 : BF16_DEPTH;

		for (size_t n0 = 0; n0 < N; n0 += W) {
			int nn = N - n0 < (size_t)W ? (int)(N - n0) : W;

			bf16_panel(B + (size_t)2 * k0 * ldb + n0, ldb,
			    K - 2 * k0, kk, nn, W, panel);
			bf16_row_blocks(M, K2, R, k0, kk, A, panel, W, nn,
			    C + n0, ldc, add || k0 > 0);
		}
	}
}

BF16_TARGET void
bf16_gemm_pairs(int M, size_t N, int K, int R, const uint32_t *A,
    const uint32_t *B, size_t ldb, float *C, size_t ldc)
{
	int K2 = (K + 1) / 2, W = gemm_cols(R);

	for (size_t n0 = 0; n0 < N; n0 += W)
		bf16_row_blocks(M, K2, R, 0, K2, A, B + n0, ldb, N - n0 <
		    (size_t)W ? (int)(N - n0) : W, C + n0, ldc, 0);
}
#else
/* Never called: kz_bf16_ok() is 0 where this is built. */
void
bf16_pack_rows(const float *a, int M, int K, int R, uint32_t *out)
{
	(void)a, (void)M, (void)K, (void)R, (void)out;
}

void
bf16_gemm(int M, size_t N, int K, int R, const uint32_t *A,
    const float *B, size_t ldb, float *C, size_t ldc, int add)
{
	(void)M, (void)N, (void)K, (void)R, (void)A, (void)B, (void)ldb;
	(void)C, (void)ldc, (void)add;
}

void
bf16_gemm_pairs(int M, size_t N, int K, int R, const uint32_t *A,
    const uint32_t *B, size_t ldb, float *C, size_t ldc)
{
	(void)M, (void)N, (void)K, (void)R, (void)A, (void)B, (void)ldb;
	(void)C, (void)ldc;
}

void
bf16_rows(const float *src, size_t lds, int rows, size_t n, uint16_t *dst,
    size_t ldd)
{
	(void)src, (void)lds, (void)rows, (void)n, (void)dst, (void)ldd;
}
#endif
