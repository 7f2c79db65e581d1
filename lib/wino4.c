/*
 * wino4.c - 3x3 stride-1 convolutions by Winograd F(4x4, 3x3), when
 * classifying.
 *
 * A 4x4 block of outputs comes from a 6x6 block of input in 36
 * multiplications (144 for im2col, 64 for four F(2x2) tiles): 36 GEMMs
 * of [OC][C] x [C][tiles], on a quarter of the tiles.  Its
 * transforms have larger coefficients, so it rounds a little worse than
 * F(2x2, 3x3) (about 1e-6 of the output's size, against 1e-7); training
 * keeps F(2x2), whose backward passes exist.  The points are 0, +-1,
 * +-2 and infinity (Lavin and Gray's).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "util.h"
#include "engine.h"
#include "predict.h"
#include "wino4.h"

/* Floats of one image's scratch on the F(4x4) path: tiles V, products
 * M (36 planes each), outputs Y and their rows Z (16 planes each). */
static size_t
wino4_per_image(int C, int OC, int OH, int OW)
{
	return (size_t)((OH + 3) / 4) * ((OW + 3) / 4) * (36 * (C + OC) +
	    32);
}

/* Floats of wino4_tiles' rows for TH x TW tiles: 6 transforms of each
 * of 4 TH + 2 padded rows, TW tiles each. */
static size_t
wino4_rows_floats(int TH, int TW)
{
	return (size_t)6 * (4 * TH + 4) * TW;
}

/* Floats of the packed kernels: as bfloat16 pairs or for gemm_packed's
 * tiles, whichever is larger. */
static size_t
wino4_packed_floats(int C, int OC)
{
	size_t pairs = 36 * bf16_packed_pairs(OC, C);
	size_t f32 = 36 * gemm_packed_floats(OC, C);

	return pairs > f32 ? pairs : f32;
}

/* Floats of the F(4x4) path's scratch that do not grow with the chunk:
 * the kernels, their packing, wino4_tiles' rows and line,
 * wino4_tiles_lanes' buffers, the planes' skews, and the rows of
 * wino4_pairs_lanes' planes past N (to whole register tiles: at most
 * 47 columns of (C + 1) / 2 pairs in each of 36). */
static size_t
wino4_fixed(int C, int OC, int OH, int OW)
{
	int TH = (OH + 3) / 4, TW = (OW + 3) / 4;

	return (size_t)36 * OC * C + wino4_packed_floats(C, OC) +
	    wino4_rows_floats(TH, TW) + (size_t)(4 * TW + 2) +
	    wino4_lanes_floats(TH, TW) + 72 * WINO_SKEW +
	    (size_t)36 * 47 * ((C + 1) / 2);
}

size_t
wino4_scratch(const struct kz_layer *L, int maxb)
{
	size_t per = wino4_per_image(L->in.c, L->out.c, L->out.h, L->out.w);
	size_t c = WINO_FLOATS / per;

	/* Room for a chunk as large as WINO_FLOATS allows: with one
	 * image, a small layer's products had a column or two. */
	c = c < 1 ? 1 : c > (size_t)maxb ? (size_t)maxb : c;
	return wino4_fixed(L->in.c, L->out.c, L->out.h, L->out.w) +
	    c * per;
}

/* U[e][o][c] = (G g G')[e], e < 36, for g [OC][C][3][3];
 * G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6;
 * 1/24 -1/12 1/6; 0 0 1]. */
static void
wino4_kernels(const float *g, int C, int OC, float *U)
{
	static const float G[6][3] = { { 1 / 4.f, 0, 0 },
	    { -1 / 6.f, -1 / 6.f, -1 / 6.f }, { -1 / 6.f, 1 / 6.f, -1 / 6.f },
	    { 1 / 24.f, 1 / 12.f, 1 / 6.f }, { 1 / 24.f, -1 / 12.f, 1 / 6.f },
	    { 0, 0, 1 } };
	enum { CB = 64 };
	size_t e1 = (size_t)OC * C;

	/* CB channels at a time, taps turned into rows: every loop runs
	 * over channels and vectorises (one kernel at a time, stores 36
	 * planes apart, took a tenth of the Kanji CNN's time). */
	for (int o = 0; o < OC; o++)
		for (int c0 = 0; c0 < C; c0 += CB) {
			int nc = C - c0 < CB ? C - c0 : CB;
			const float *k = g + ((size_t)o * C + c0) * 9;
			float kt[9][CB], t[6][3][CB];

			for (int c = 0; c < nc; c++)
				for (int r = 0; r < 9; r++)
					kt[r][c] = k[(size_t)c * 9 + r];
			for (int i = 0; i < 6; i++)
				for (int j = 0; j < 3; j++)
					KZ_IVDEP
					for (int c = 0; c < nc; c++)
						t[i][j][c] = G[i][0] *
						    kt[j][c] + G[i][1] *
						    kt[3 + j][c] + G[i][2] *
						    kt[6 + j][c];
			for (int i = 0; i < 6; i++)
				for (int j = 0; j < 6; j++) {
					float *u = U + (size_t)(6 * i + j) *
					    e1 + (size_t)o * C + c0;

					KZ_IVDEP
					for (int c = 0; c < nc; c++)
						u[c] = t[i][0][c] * G[j][0] +
						    t[i][1][c] * G[j][1] +
						    t[i][2][c] * G[j][2];
				}
		}
}

/* d[j * js + tx] = (l B)[j] for the TW tiles' 6 columns of one padded
 * input row l, 4 * TW + 2 floats: tile tx has columns 4tx .. 4tx+5.
 * B' = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0;
 * 0 2 -1 -2 1 0; 0 4 0 -5 0 1]. */
static void
wino4_cols(const float *restrict l, int TW, float *restrict d, size_t js)
{
	KZ_IVDEP
	for (int tx = 0; tx < TW; tx++) {
		const float *p = l + 4 * tx;

		d[tx] = 4 * p[0] - 5 * p[2] + p[4];
		d[js + tx] = -4 * (p[1] + p[2]) + p[3] + p[4];
		d[2 * js + tx] = 4 * (p[1] - p[2]) - p[3] + p[4];
		d[3 * js + tx] = 2 * (p[3] - p[1]) - p[2] + p[4];
		d[4 * js + tx] = 2 * (p[1] - p[3]) - p[2] + p[4];
		d[5 * js + tx] = 4 * p[1] - 5 * p[3] + p[5];
	}
}

/* V[(6i + j) vs + n] = (B' r)[i] for the T tiles n of an image, r their
 * 6 rows of column j: rows holds, for each j, the padded rows by their
 * remainder mod 4 (R floats apart), TW floats each, so that tile n's
 * row k is at (k mod 4) R + (k / 4) TW + n: one loop over every tile. */
static void
wino4_rows(const float *restrict rows, size_t R, int TW, size_t T,
    float *restrict v, size_t vs)
{
	for (int j = 0; j < 6; j++) {
		const float *r0 = rows + 4 * j * R, *r1 = r0 + R, *r2 = r1 + R,
		    *r3 = r2 + R, *r4 = r0 + TW, *r5 = r1 + TW;
		float *d = v + j * vs;

		KZ_IVDEP
		for (size_t n = 0; n < T; n++) {
			float a = r0[n], b = r1[n], c = r2[n], e = r3[n];
			float f = r4[n], h = r5[n];

			d[n] = 4 * a - 5 * c + f;
			d[6 * vs + n] = -4 * (b + c) + e + f;
			d[12 * vs + n] = 4 * (b - c) - e + f;
			d[18 * vs + n] = 2 * (e - b) - c + f;
			d[24 * vs + n] = 2 * (b - e) - c + f;
			d[30 * vs + n] = 4 * b - 5 * e + h;
		}
	}
}

#if KZ_AVX512_BUILT
/* max(0, bn applied to v) as bn_apply computes it, in the lanes of m;
 * 0 in the others (the padding stays zero, as the layers one by one
 * have it).  bn: mean, 1 / standard deviation, scale, shift. */
KZ_AVX512_TARGET static inline __m512
wino4_bn_relu(__m512 v, __mmask16 m, const float *bn)
{
	__m512 h = _mm512_mul_ps(_mm512_sub_ps(v, _mm512_set1_ps(bn[0])),
	    _mm512_set1_ps(bn[1]));

	return _mm512_maskz_max_ps(m, _mm512_add_ps(_mm512_mul_ps(
	    _mm512_set1_ps(bn[2]), h), _mm512_set1_ps(bn[3])),
	    _mm512_setzero_ps());
}

/* 2 (a - b) - c + e, in that order: rows 3 and 4 of B'. */
KZ_AVX512_TARGET static inline __m512
wino4_twice(__m512 a, __m512 b, __m512 c, __m512 e)
{
	return _mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(2),
	    _mm512_sub_ps(a, b)), c), e);
}

/* The six rows of B' x, x[0] .. x[5] as in wino4_cols' p[0] .. p[5],
 * each stored in the lanes of k at d + i stride: that loop's
 * arithmetic in its order, without fused multiply-adds (C11 does not
 * contract them), so both passes give the bytes of the scalar ones. */
KZ_AVX512_TARGET static inline void
wino4_bt_store(const __m512 *x, __mmask16 k, float *d, size_t stride)
{
	const __m512 four = _mm512_set1_ps(4), five = _mm512_set1_ps(5),
	    m4 = _mm512_set1_ps(-4);

	_mm512_mask_storeu_ps(d, k, _mm512_add_ps(_mm512_sub_ps(
	    _mm512_mul_ps(four, x[0]), _mm512_mul_ps(five, x[2])), x[4]));
	_mm512_mask_storeu_ps(d + stride, k, _mm512_add_ps(_mm512_add_ps(
	    _mm512_mul_ps(m4, _mm512_add_ps(x[1], x[2])), x[3]), x[4]));
	_mm512_mask_storeu_ps(d + 2 * stride, k, _mm512_add_ps(_mm512_sub_ps(
	    _mm512_mul_ps(four, _mm512_sub_ps(x[1], x[2])), x[3]), x[4]));
	_mm512_mask_storeu_ps(d + 3 * stride, k,
	    wino4_twice(x[3], x[1], x[2], x[4]));
	_mm512_mask_storeu_ps(d + 4 * stride, k,
	    wino4_twice(x[1], x[3], x[2], x[4]));
	_mm512_mask_storeu_ps(d + 5 * stride, k, _mm512_add_ps(_mm512_sub_ps(
	    _mm512_mul_ps(four, x[1]), _mm512_mul_ps(five, x[3])), x[5]));
}

/* wino4_cols for a row of the padded image whose pixels lo .. hi - 1
 * are l[lo] .. l[hi - 1] and the rest zero (l itself may lie before
 * the row: masked loads do not touch what they leave out), through
 * the batch norm bn (mean, 1 / standard deviation, scale, shift) and a
 * ReLU first if bn is not NULL, as bn_apply does them.  Seven
 * tiles at a time: their 30 columns in two registers, each of the six
 * columns of a tile gathered by one permutation. */
KZ_AVX512_TARGET static void
wino4_cols_avx512(const float *l, int lo, int hi, int TW,
    const float *bn, float *restrict d, size_t js)
{
	const __m512i step = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0,
	    24, 20, 16, 12, 8, 4, 0);

	for (int t0 = 0; t0 < TW; t0 += 7) {
		int base = 4 * t0, nt = TW - t0 < 7 ? TW - t0 : 7;
		/* pixels base .. base + 31 that the row has */
		int a = lo - base > 0 ? lo - base : 0;
		int z = hi - base < 32 ? hi - base : 32;
		uint32_t m = z <= a ? 0 : (uint32_t)((((uint64_t)1 << z) - 1) &
		    ~(((uint64_t)1 << a) - 1));
		__m512 r0 = _mm512_maskz_loadu_ps((__mmask16)m, l + base);
		__m512 r1 = _mm512_maskz_loadu_ps((__mmask16)(m >> 16),
		    l + base + 16);

		if (bn != NULL) {
			r0 = wino4_bn_relu(r0, (__mmask16)m, bn);
			r1 = wino4_bn_relu(r1, (__mmask16)(m >> 16), bn);
		}
		__m512 p[6];
		__mmask16 st = gemm_lanes(nt);

		for (int k = 0; k < 6; k++)
			p[k] = _mm512_permutex2var_ps(r0, _mm512_add_epi32(step,
			    _mm512_set1_epi32(k)), r1);
		wino4_bt_store(p, st, d + t0, js);
	}
}

/* wino4_rows sixteen tiles at a time, the last sixteen masked: an
 * image has few tiles (4 at 7 x 7, 16 at 14 x 14), which the loop
 * above leaves to scalar code. */
KZ_AVX512_TARGET static void
wino4_rows_avx512(const float *rows, size_t R, int TW, size_t T, float *v,
    size_t vs)
{
	for (int j = 0; j < 6; j++) {
		const float *r0 = rows + 4 * j * R;
		/* tile n's rows 0 .. 5: remainders 0 .. 3, then 0 and 1 of
		 * the next block of four */
		const float *r[6] = { r0, r0 + R, r0 + 2 * R, r0 + 3 * R,
		    r0 + TW, r0 + R + TW };

		for (size_t n = 0; n < T; n += 16) {
			__mmask16 k = gemm_lanes((ptrdiff_t)(T - n));
			__m512 x[6];

			for (int i = 0; i < 6; i++)
				x[i] = _mm512_maskz_loadu_ps(k, r[i] + n);
			wino4_bt_store(x, k, v + j * vs + n, 6 * vs);
		}
	}
}
#endif

/* V[e][c][n] = (B' d B)[e] for the 6x6 tiles d (stride 4) of images
 * b0..b0+nb-1 of x [C][B][H][W] padded by P, through the batch norm
 * pre [4][C] and a ReLU if pre is not NULL; n = (b - b0) T + tile.
 * avx: by wino4_cols_avx512 and wino4_rows_avx512 (the CPU has AVX-512). */
static void
wino4_tiles(const float *x, int C, int H, int W, int P, const float *pre,
    int B, int b0, int nb, int TH, int TW, float *rows, float *line,
    float *V, size_t vs, int avx)
{
	size_t T = (size_t)TH * TW, R = (size_t)(TH + 1) * TW;
	size_t N = (size_t)nb * T;
	int PH = 4 * TH + 2;
	/* pixels of a row that tiles read */
	int wn = W < 4 * TW + 2 - P ? W : 4 * TW + 2 - P;
	int direct = pre == NULL && P == 0 && W >= 4 * TW + 2;

	memset(rows, 0, wino4_rows_floats(TH, TW) * sizeof(float));
	memset(line, 0, (4 * TW + 2) * sizeof(float));
	for (int c = 0; c < C; c++)
		for (int b = 0; b < nb; b++) {
			const float *src = x + ((size_t)c * B + b0 + b) * H * W;
			float bn[4];

			if (pre != NULL)
				for (int k = 0; k < 4; k++)
					bn[k] = pre[(size_t)k * C + c];

			for (int row = P; row < PH && row < H + P; row++) {
				const float *l = src + (size_t)(row - P) * W;
				float *d = rows + (size_t)(row & 3) * R +
				    (size_t)(row >> 2) * TW;

#if KZ_AVX512_BUILT
				if (avx) {
					/* The same row of the next plane:
					 * the 36 planes this writes hide
					 * the one it reads from the
					 * hardware's prefetcher (7%). */
					const char *next = (const char *)(l +
					    (size_t)H * W);

					_mm_prefetch(next, _MM_HINT_T0);
					_mm_prefetch(next + 64, _MM_HINT_T0);
					wino4_cols_avx512(l - P, P, P + wn, TW,
					    pre != NULL ? bn : NULL, d, 4 * R);
					continue;
				}
#endif
				/* A row the tiles read whole is read where
				 * it lies; else copied, padded, by a loop:
				 * memcpy's call cost more than rows of 30
				 * floats. */
				if (pre != NULL) {
					bn_apply(l, wn, bn[0], bn[1], bn[2],
					    bn[3], 1, NULL, line + P);
					l = line;
				} else if (!direct) {
					KZ_IVDEP
					for (int i = 0; i < wn; i++)
						line[P + i] = l[i];
					l = line;
				}
				wino4_cols(l, TW, d, 4 * R);
			}
#if KZ_AVX512_BUILT
			if (avx) {
				wino4_rows_avx512(rows, R, TW, T, V + (size_t)c *
				    N + (size_t)b * T, vs);
				continue;
			}
#endif
			wino4_rows(rows, R, TW, T, V + (size_t)c * N +
			    (size_t)b * T, vs);
		}
}

/* Y[4i + j][n] = (A' m A)[i][j] + bv, then bn (as wino_out's) and the
 * ReLU, for the 36 planes of m ms floats apart; A' = [1 1 1 1 1 0;
 * 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]. */
static void
wino4_out(const float *restrict m, size_t ms, size_t N, float bv,
    const float *bn, int relu, float *restrict Y)
{
	KZ_IVDEP
	for (size_t n = 0; n < N; n++) {
		float s[4][6];

		for (int j = 0; j < 6; j++) {
			float m0 = m[j * ms + n], m1 = m[(6 + j) * ms + n];
			float m2 = m[(12 + j) * ms + n], m3 = m[(18 + j) * ms + n];
			float m4 = m[(24 + j) * ms + n], m5 = m[(30 + j) * ms + n];
			float p12 = m1 + m2, d12 = m1 - m2;
			float p34 = m3 + m4, d34 = m3 - m4;

			s[0][j] = m0 + p12 + p34;
			s[1][j] = d12 + 2 * d34;
			s[2][j] = p12 + 4 * p34;
			s[3][j] = d12 + 8 * d34 + m5;
		}
		for (int i = 0; i < 4; i++) {
			float p12 = s[i][1] + s[i][2], d12 = s[i][1] - s[i][2];
			float p34 = s[i][3] + s[i][4], d34 = s[i][3] - s[i][4];

			Y[(4 * i) * N + n] = s[i][0] + p12 + p34 + bv;
			Y[(4 * i + 1) * N + n] = d12 + 2 * d34 + bv;
			Y[(4 * i + 2) * N + n] = p12 + 4 * p34 + bv;
			Y[(4 * i + 3) * N + n] = d12 + 8 * d34 + s[i][5] + bv;
		}
	}
	wino_finish(Y, 16 * N, bn, relu);
}

#if KZ_AVX512_BUILT
/* wino4_out's arithmetic in its order, sixteen tiles a step, and
 * wino_finish's batch norm and ReLU in registers: the same bytes, in
 * one pass.  Each plane is reached by stepping a pointer from the
 * last: with 36 planes' addresses and 16 outputs' live at once, GCC
 * reloaded them from the stack on every step of the plain loop. */
KZ_AVX512_TARGET static void
wino4_out_avx512(const float *m, size_t ms, size_t N, float bv,
    const float *bn, int relu, float *Y)
{
	const __m512 two = _mm512_set1_ps(2), four = _mm512_set1_ps(4);
	const __m512 eight = _mm512_set1_ps(8), b = _mm512_set1_ps(bv);
	size_t step = 6 * ms;

	for (size_t n = 0; n < N; n += 16) {
		__mmask16 k = gemm_lanes((ptrdiff_t)(N - n));
		__m512 s[4][6], y[4];
		float *d = Y + n;

		for (int j = 0; j < 6; j++) {
			const float *q = m + j * ms + n;
			__m512 v[6];

			for (int i = 0; i < 6; i++, q += step)
				v[i] = _mm512_maskz_loadu_ps(k, q);

			__m512 p12 = _mm512_add_ps(v[1], v[2]);
			__m512 d12 = _mm512_sub_ps(v[1], v[2]);
			__m512 p34 = _mm512_add_ps(v[3], v[4]);
			__m512 d34 = _mm512_sub_ps(v[3], v[4]);

			s[0][j] = _mm512_add_ps(_mm512_add_ps(v[0], p12), p34);
			s[1][j] = _mm512_add_ps(d12, _mm512_mul_ps(two, d34));
			s[2][j] = _mm512_add_ps(p12, _mm512_mul_ps(four, p34));
			s[3][j] = _mm512_add_ps(_mm512_add_ps(d12,
			    _mm512_mul_ps(eight, d34)), v[5]);
		}
		for (int i = 0; i < 4; i++) {
			__m512 p12 = _mm512_add_ps(s[i][1], s[i][2]);
			__m512 d12 = _mm512_sub_ps(s[i][1], s[i][2]);
			__m512 p34 = _mm512_add_ps(s[i][3], s[i][4]);
			__m512 d34 = _mm512_sub_ps(s[i][3], s[i][4]);

			y[0] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(
			    s[i][0], p12), p34), b);
			y[1] = _mm512_add_ps(_mm512_add_ps(d12, _mm512_mul_ps(
			    two, d34)), b);
			y[2] = _mm512_add_ps(_mm512_add_ps(p12, _mm512_mul_ps(
			    four, p34)), b);
			y[3] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(d12,
			    _mm512_mul_ps(eight, d34)), s[i][5]), b);
			for (int j = 0; j < 4; j++, d += N)
				_mm512_mask_storeu_ps(d, k, wino_finish16(y[j],
				    bn, relu));
		}
	}
}
#endif

/* Z[i][S n + j] = t[S i + j][n] (planes N floats apart), i, j < S,
 * n < N: every tile's rows in image order at once, which vectorises
 * where one tile row (7 tiles of 28 x 28) did not. */
static void
wino4_interleave(const float *restrict t, size_t N, int S,
    float *restrict Z)
{
	for (int i = 0; i < S; i++) {
		const float *restrict a = t + (size_t)S * i * N;
		float *restrict z = Z + (size_t)S * i * N;

		if (S == 4) {
			const float *restrict b = a + N, *restrict c = b + N,
			    *restrict e = c + N;

			KZ_IVDEP
			for (size_t n = 0; n < N; n++) {
				z[4 * n] = a[n];
				z[4 * n + 1] = b[n];
				z[4 * n + 2] = c[n];
				z[4 * n + 3] = e[n];
			}
		} else {
			const float *restrict b = a + N;

			KZ_IVDEP
			for (size_t n = 0; n < N; n++) {
				z[2 * n] = a[n];
				z[2 * n + 1] = b[n];
			}
		}
	}
}

/* One image's outputs img (YH x YW) from its interleaved tiles z
 * (wino4_interleave's, from the image's first tile; rows S N floats
 * apart), plus res (the same image of a residual block's other
 * addend) if it is not NULL: tile row ty's row i is S TW floats in
 * image order, of which the image has the first YW. */
static void
wino4_scatter(const float *z, size_t N, int S, int TH, int TW, int YH,
    int YW, const float *res, float *img)
{
	for (int ty = 0; ty < TH; ty++)
		for (int i = 0; i < S && S * ty + i < YH; i++) {
			float *restrict d = img + (size_t)(S * ty + i) * YW;
			const float *restrict r = z + (size_t)S * i * N +
			    (size_t)S * ty * TW;

			if (res != NULL) {
				const float *restrict a = res + (size_t)(S *
				    ty + i) * YW;

				KZ_IVDEP
				for (int x = 0; x < YW; x++)
					d[x] = r[x] + a[x];
			} else {
				KZ_IVDEP
				for (int x = 0; x < YW; x++)
					d[x] = r[x];
			}
		}
}

#if KZ_AVX512_BUILT
/* wino4_interleave and wino4_scatter in one pass, for one image: its
 * outputs img (YH x YW), plus res if it is not NULL, from the planes
 * of y (N floats apart, from the image's first tile): row S ty + i is
 * planes S i .. S i + S - 1 at tiles ty TW .. ty TW + TW - 1, taken
 * eight tiles at a time and interleaved by two permutations (S = 4)
 * or one (S = 2). */
KZ_AVX512_TARGET static void
wino4_place_avx512(const float *y, size_t N, int S, int TH, int TW, int YH,
    int YW, const float *res, float *img)
{
	/* a0 b0 a1 b1 .. a7 b7 of a (lanes 0-7) and b (16-23) */
	const __m512i pairs = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4,
	    19, 3, 18, 2, 17, 1, 16, 0);
	/* a0 b0 c0 d0 a1 b1 c1 d1 .. from the pairs of a, b and of c, d:
	 * tiles 0-3 (lo), 4-7 (hi) */
	const __m512i lo = _mm512_set_epi32(23, 22, 7, 6, 21, 20, 5, 4, 19,
	    18, 3, 2, 17, 16, 1, 0);
	const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));

	for (int ty = 0; ty < TH; ty++)
		for (int i = 0; i < S && S * ty + i < YH; i++) {
			const float *p = y + (size_t)S * i * N + (size_t)ty * TW;
			size_t row = (size_t)(S * ty + i) * YW;

			for (int t0 = 0; t0 < TW && S * t0 < YW; t0 += 8) {
				int nt = TW - t0 < 8 ? TW - t0 : 8;
				int n = YW - S * t0 < 8 * S ? YW - S * t0 :
				    8 * S;
				__mmask16 in = gemm_lanes(nt);
				__m512 v[2];

				v[0] = _mm512_maskz_loadu_ps(in, p + t0);
				v[1] = _mm512_maskz_loadu_ps(in, p + N + t0);
				v[0] = _mm512_permutex2var_ps(v[0], pairs, v[1]);
				if (S == 4) {
					__m512 c = _mm512_maskz_loadu_ps(in, p +
					    2 * N + t0);
					__m512 d = _mm512_maskz_loadu_ps(in, p +
					    3 * N + t0);
					__m512 cd = _mm512_permutex2var_ps(c,
					    pairs, d);

					v[1] = _mm512_permutex2var_ps(v[0], hi,
					    cd);
					v[0] = _mm512_permutex2var_ps(v[0], lo,
					    cd);
				}
				for (int k = 0; k < 2 && 16 * k < n; k++) {
					__mmask16 out = gemm_lanes(n - 16 * k);
					size_t at = row + (size_t)S * t0 + 16 * k;

					if (res != NULL)
						v[k] = _mm512_add_ps(v[k],
						    _mm512_maskz_loadu_ps(out,
						    res + at));
					_mm512_mask_storeu_ps(img + at, out, v[k]);
				}
			}
		}
}
#endif

/* How wino4_place places a chunk's outputs. */
enum wino4_how {
	WINO4_SCATTER,		/* wino4_interleave into Z, wino4_scatter */
	WINO4_AVX512,		/* wino4_place_avx512, an image at a time */
	WINO4_LANES		/* wino4_place_lanes: V in its tiles' order */
};

/* One channel's outputs of images b0 .. b0 + nb - 1 of a chunk, from
 * their 16 planes Y (N floats apart) into y [B][YH][YW], plus res (the
 * same places) if it is not NULL, as how says. */
static void
wino4_place(const float *Y, size_t N, int S, int TH, int TW, int YH,
    int YW, int b0, int nb, const float *res, float *y, enum wino4_how how,
    float *Z)
{
	size_t plane = (size_t)YH * YW, T = (size_t)TH * TW;

#if KZ_AVX512_BUILT
	if (how == WINO4_LANES) {
		wino4_place_lanes(Y, N, S, TW, nb, YH, YW, res != NULL ? res +
		    b0 * plane : NULL, y + b0 * plane, plane);
		return;
	}
#endif
	if (how == WINO4_SCATTER)
		wino4_interleave(Y, N, S, Z);
	for (int b = b0; b < b0 + nb; b++) {
		const float *r = res != NULL ? res + b * plane : NULL;

#if KZ_AVX512_BUILT
		if (how == WINO4_AVX512) {
			wino4_place_avx512(Y + (b - b0) * T, N, S, TH, TW, YH,
			    YW, r, y + b * plane);
			continue;
		}
#endif
		wino4_scatter(Z + S * (b - b0) * T, N, S, TH, TW, YH, YW, r,
		    y + b * plane);
	}
}

/* Images per chunk on gemm_packed's path: at most chunk, and where
 * one as large as half of it does, a multiple of 96 / T or else of
 * 32 / T, so that the products' columns fill its register tiles. */
static int
wino4_chunk_tiles(int chunk, int T)
{
	for (int m = 96; m >= 32; m -= 64)
		for (int c = chunk; c > 0 && 2 * c >= chunk; c--)
			if ((size_t)c * T % m == 0)
				return c;
	return chunk;
}

/* Images per chunk of wino4_conv: as many as the scratch holds; for
 * kz's own products (math not WINO_BLAS) as wino4_chunk_tiles says and
 * in whole groups of eight for the eight-lane passes, for OpenBLAS's
 * few enough for its small-matrix kernel. */
static int
wino4_chunk(size_t nscratch, int C, int OC, int OH, int OW, int B, int math)
{
	int T = (OH + 3) / 4 * ((OW + 3) / 4);
	/* (wino_chunk keeps 32 skews of its own.) */
	int chunk = wino_chunk(nscratch, wino4_fixed(C, OC, OH, OW) - 32 *
	    WINO_SKEW, wino4_per_image(C, OC, OH, OW), B);

	if (math == WINO_BLAS) {
		/* OpenBLAS skips packing below WINO_SMALL_GEMM. */
		while (chunk > 1 && (double)OC * C * chunk * T >
		    WINO_SMALL_GEMM)
			chunk--;
		return chunk;
	}
	chunk = wino4_chunk_tiles(chunk, T);
	/* A chunk of 9 ran a second group's eight lanes for one image
	 * (the ResNet-20's first stage, about 1.07x slower than chunks
	 * of 8). */
	if (KZ_AVX512_BUILT && chunk > 8)
		chunk -= chunk % 8;
	return chunk;
}

/* See engine.h.  The 36 products go to OpenBLAS (WINO_BLAS), to
 * gemm_packed with the kernels packed once (WINO_AVX512), or take
 * bfloat16 operands (WINO_BF16, bf16.c): the kernels packed once as
 * pairs of them (Ub), each plane of tiles converted as it is read. */
KZ_HOT void
wino4_conv(const float *x, int C, int H, int W, int P, const float *g,
    const float *bias, const float *pre, const float *bn, int fuse, int OC,
    const float *res, float *y, int B, int math, float **packed,
    float *scratch, size_t nscratch)
{
	int OH = H + 2 * P - 2, OW = W + 2 * P - 2;
	int TH = (OH + 3) / 4, TW = (OW + 3) / 4, T = TH * TW;
	int pool = fuse & FUSE_POOL, YH = pool ? OH / 2 : OH;
	int YW = pool ? OW / 2 : OW, S = pool ? 2 : 4;
	int R = 0, place = KZ_AVX512_BUILT && math != WINO_BLAS;
	float *U = scratch, *ub = U + (size_t)36 * OC * C;
	float *rows = ub + wino4_packed_floats(C, OC);
	float *line = rows + wino4_rows_floats(TH, TW);
	float *xt = line + (4 * TW + 2);
	float *V = xt + wino4_lanes_floats(TH, TW);
	size_t up = 0;
	int chunk = wino4_chunk(nscratch, C, OC, OH, OW, B, math);

	if (math != WINO_BLAS) {
		R = gemm_rows(OC, (size_t)chunk * T);
		up = work_packed_floats(math, OC, C);
	}
	/* (A pair of bfloat16s takes a float's 4 bytes.) */
	float **kept = math != WINO_BLAS && packed != NULL ?
	    &packed[R == 12] : NULL;
	uint32_t *Ub;

	if (kept != NULL && *kept != NULL) {
		ub = *kept;
	} else {
		/* Packed where they are kept for the next batches; out of
		 * memory, into scratch, and made again next time. */
		if (kept != NULL && (*kept = malloc(36 * up *
		    sizeof(float))) != NULL)
			ub = *kept;
		wino4_kernels(g, C, OC, U);
		for (int e = 0; e < 36 && math != WINO_BLAS; e++)
			work_pack(math, U + (size_t)e * OC * C, OC, C, R,
			    ub + (size_t)e * up);
	}
	Ub = (uint32_t *)ub;
	for (int b0 = 0; b0 < B; b0 += chunk) {
		int nb = B - b0 < chunk ? B - b0 : chunk;
		size_t N = (size_t)nb * T;
		/* Eight images fill the eight-lane passes' vectors; on
		 * WINO_BF16 they write the tiles as pairs of bfloat16s, V's
		 * planes vs 4-byte units apart and their rows ldp. */
		int lanes = place && nb >= 8, pairs = lanes && math == WINO_BF16;
		size_t ldp = (N + gemm_cols(R) - 1) / gemm_cols(R) * gemm_cols(R);
		size_t vs = (pairs ? (size_t)(C + 1) / 2 * ldp : (size_t)C * N) +
		    WINO_SKEW, ms = (size_t)OC * N + WINO_SKEW;
		float *M = V + 36 * vs, *Y = M + 36 * ms, *Z = Y + 16 * N;

#if KZ_AVX512_BUILT
		if (pairs)
			wino4_pairs_lanes(x, C, H, W, P, pre, B, b0, nb, TH,
			    TW, xt, (uint32_t *)V, vs, ldp);
		else if (lanes)
			wino4_tiles_lanes(x, C, H, W, P, pre, B, b0, nb, TH,
			    TW, xt, V, vs);
		else
#endif
			wino4_tiles(x, C, H, W, P, pre, B, b0, nb, TH, TW,
			    rows, line, V, vs, math != WINO_BLAS);
		for (int e = 0; e < 36; e++) {
			if (pairs) {
				bf16_gemm_pairs(OC, N, C, R, Ub + (size_t)e *
				    up, (uint32_t *)V + e * vs, ldp, M + e * ms,
				    N);
			} else if (math == WINO_BLAS) {
				cblas_sgemm(CblasRowMajor, CblasNoTrans,
				    CblasNoTrans, OC, N, C, 1.0f, U + (size_t)e *
				    OC * C, C, V + e * vs, N, 0.0f, M + e * ms, N);
			} else {
				work_packed_product(math, OC, N, C, R, ub +
				    (size_t)e * up, V + e * vs, N, M + e * ms,
				    N, 0);
			}
		}
		for (int o = 0; o < OC; o++) {
			float bno[4];

#if KZ_AVX512_BUILT
			if (place)
				wino4_out_avx512(M + (size_t)o * N, ms, N,
				    bias ? bias[o] : 0, wino_bn(bn, OC, o, bno),
				    fuse & FUSE_RELU, Y);
			else
#endif
				wino4_out(M + (size_t)o * N, ms, N, bias ?
				    bias[o] : 0, wino_bn(bn, OC, o, bno),
				    fuse & FUSE_RELU, Y);
			if (pool)
				/* Each tile's four 2x2 blocks, in place: Y's
				 * first four planes become the pooled ones. */
				for (int a = 0; a < 2; a++)
					for (int c2 = 0; c2 < 2; c2++) {
						const float *q = Y + (size_t)(8 *
						    a + 2 * c2) * N;

						wino_max4(q, q + N, q + 4 * N,
						    q + 5 * N, N, Y + (size_t)(2 *
						    a + c2) * N);
					}
			size_t at = (size_t)o * B * YH * YW;

			wino4_place(Y, N, S, TH, TW, YH, YW, b0, nb, res != NULL ?
			    res + at : NULL, y + at, lanes ? WINO4_LANES :
			    place ? WINO4_AVX512 : WINO4_SCATTER, Z);
		}
	}
}
