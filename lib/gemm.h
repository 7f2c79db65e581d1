/*
 * gemm.h - the register-tile matrix products of the Winograd
 * convolutions (and of the dense layers when classifying), and the
 * weight gradients' dot products: single precision on AVX-512 (gemm.c)
 * and bfloat16 operands with single-precision sums on AVX512_BF16
 * (bf16.c).  Both take A packed once in panels of 8 or
 * 12 rows; B is read where it lies (single precision) or converted
 * to pairs (bfloat16), a panel of it at a time in L1.
 */
#ifndef KZ_GEMM_H
#define KZ_GEMM_H

#include <stddef.h>
#include <stdint.h>

/* kz's AVX-512 code (gemm.c, wino4.c): built where the compiler can
 * target it, run where kz_avx512_ok().  VL gives eight-lane vectors
 * their masks (every AVX-512 CPU but the Xeon Phi has it). */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define KZ_AVX512_BUILT 1
#define KZ_AVX512_TARGET __attribute__((target("avx512f,avx512vl")))
/* bf16.c's and wino4_lanes.c's bfloat16: run where kz_bf16_ok(). */
#define KZ_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl," \
    "avx512bf16")))
/* c + the products of a's and b's pairs of bfloat16s, summed by pairs
 * (vdpbf16ps).  In asm because GCC 12 stores each accumulator of the
 * builtin back to the stack on every step of a tile's loop, which
 * made the products slower than single precision's. */
KZ_BF16_TARGET static inline __m512
bf16_dot(__m512 c, __m512i a, __m512i b)
{
	__asm__("vdpbf16ps %2, %1, %0" : "+v"(c) : "v"(a), "v"(b));
	return c;
}
#else
#define KZ_AVX512_BUILT 0
#endif

/* The lanes of a vector of 16 floats that hold the first r of a row
 * (none where r <= 0, all where r >= 16), as a mask for its loads and
 * stores. */
static inline uint16_t
gemm_lanes(ptrdiff_t r)
{
	return r >= 16 ? 0xffff : r > 0 ? (uint16_t)((1u << r) - 1) : 0;
}

/* ---- bfloat16 products (bf16.c) ------------------------------------------ */

/* Pairs of A [M][K] packed for tiles of either size: M rounded up to
 * 8 or to 12, whichever is larger, by (K + 1) / 2. */
size_t bf16_packed_pairs(int M, int K);
/* A [M][K] floats as pairs of bfloat16 (k even in the low half, rounded
 * to nearest even; an odd K's last pair padded with 0), in panels of R
 * rows (8 or 12, gemm_rows) as bf16_gemm reads them. */
void bf16_pack_rows(const float *a, int M, int K, int R, uint32_t *out);
/* C [M][N] (rows ldc apart) = A B, plus C if add, A from bf16_pack_rows
 * with the same R, B [K][N] floats (rows ldb apart) converted to pairs
 * (rounded as bf16_pack_rows does) a panel at a time, summed in single
 * precision; only where kz_bf16_ok(). */
void bf16_gemm(int M, size_t N, int K, int R, const uint32_t *A,
    const float *B, size_t ldb, float *C, size_t ldc, int add);
/* C [M][N] (rows ldc apart) = A B, A as for bf16_gemm, B [(K + 1) / 2]
 * [ldb] pairs already (rows 2k, low, and 2k + 1), read as whole
 * vectors: ldb at least N rounded up to gemm_cols(R), the columns past
 * N any finite or not (their sums are not stored). */
void bf16_gemm_pairs(int M, size_t N, int K, int R, const uint32_t *A,
    const uint32_t *B, size_t ldb, float *C, size_t ldc);
/* dst's rows (ldd apart) = the first n floats of src's (lds apart) in
 * bfloat16, rounded to nearest even; dst may be src itself, each row
 * converted where it starts (ldd = 2 lds). */
void bf16_rows(const float *src, size_t lds, int rows, size_t n,
    uint16_t *dst, size_t ldd);
/* gemm_dots (below) for A [M][K] and B [N][K] in bfloat16 (bf16_rows;
 * rows lda and ldb apart), with single-precision sums; in gemm.c,
 * beside it. */
void bf16_dots(int M, int N, size_t K, const uint16_t *A, size_t lda,
    const uint16_t *B, size_t ldb, float *C, size_t ldc, int add);

/* ---- single-precision products on AVX-512 (gemm.c) ----------------------- */

/* The columns of the register tile of R rows (8 or 12), in either
 * precision: 48 or 32. */
static inline int
gemm_cols(int R)
{
	return R == 8 ? 48 : 32;
}
/* The rows R of the register tile for products of M rows by N
 * columns: 8 or 12, whichever computes fewer padded products. */
int gemm_rows(int M, size_t N);
/* Floats of A [M][K] packed for tiles of either size: M rounded up to
 * 8 or to 12, whichever is larger, by K. */
size_t gemm_packed_floats(int M, int K);
/* out = A [M][K] as [M / R][K][R], the rows past M zero. */
void gemm_pack(const float *a, int M, int K, int R, float *out);
/* C [M][N] (rows ldc apart) = A B, plus C if add; A packed by
 * gemm_pack for R, B [K][N] (rows ldb apart); only where the CPU has
 * AVX-512F: kz_avx512_ok(), or kz_bf16_ok(), which implies it (the
 * WINO_BF16 path takes it whatever KZ_NO_AVX512 says). */
void gemm_packed(int M, size_t N, int K, int R, const float *A,
    const float *B, size_t ldb, float *C, size_t ldc, int add);

/* C [M][N] (rows ldc apart) = A B', plus C if add, for A [M][K] and B
 * [N][K] (rows lda and ldb apart): each entry the dot product of a row
 * of A and a row of B, summed in 16 lanes.  For the weight gradients,
 * whose depth K (tiles) is long and M, N (channels) short; only where
 * kz_avx512_ok(). */
void gemm_dots(int M, int N, size_t K, const float *A, size_t lda,
    const float *B, size_t ldb, float *C, size_t ldc, int add);

#endif
