/*
 * wino4_lanes.c - wino4.c's tile transforms and output placement with
 * a chunk's images eight at a time, one in each lane of a vector.
 *
 * wino4.c's AVX-512 passes take the tiles of one image in the lanes:
 * seven of 16 at 28 x 28, four at 14 x 14 and two at 7 x 7, the sizes
 * of two thirds of a ResNet-20's transform calls.  Here every vector is
 * full whatever the image size: the images are turned so that a
 * pixel's eight are one vector (an 8 x 8 transposition), transformed,
 * and turned back as they are placed.  Eight-float vectors, not 16:
 * chunks hold 8 to 24 images, and Zen 4 runs 16-float operations as
 * two of eight.  The tiles in V are in the order n = t nb + b (tile t
 * of image b, nb images), not wino4.c's b T + t.  The arithmetic in
 * each lane is the scalar passes' in their order, so the bytes are the
 * same.
 */
#include <string.h>

#include "engine.h"
#include "wino4.h"

/* See engine.h. */
size_t
wino4_lanes_floats(int TH, int TW)
{
	return (size_t)8 * (4 * TH + 2) * (4 * TW + 2 + 12 * TW);
}

#if KZ_AVX512_BUILT
/* max(0, bn applied to v) as bn_apply computes it: channel c's batch
 * norm, pre [4][C] (mean, 1 / standard deviation, scale, shift). */
KZ_AVX512_TARGET static inline __m256
wino4_bn_relu8(__m256 v, const float *pre, int C, int c)
{
	__m256 h = _mm256_mul_ps(_mm256_sub_ps(v, _mm256_set1_ps(pre[c])),
	    _mm256_set1_ps(pre[(size_t)C + c]));

	return _mm256_max_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(
	    pre[2 * (size_t)C + c]), h), _mm256_set1_ps(pre[3 * (size_t)C +
	    c])), _mm256_setzero_ps());
}

/* y = B' x, x and y six vectors: wino4_cols' arithmetic in its order. */
KZ_AVX512_TARGET static inline void
wino4_bt8(const __m256 *x, __m256 *y)
{
	const __m256 two = _mm256_set1_ps(2), four = _mm256_set1_ps(4),
	    five = _mm256_set1_ps(5), m4 = _mm256_set1_ps(-4);

	y[0] = _mm256_add_ps(_mm256_sub_ps(_mm256_mul_ps(four, x[0]),
	    _mm256_mul_ps(five, x[2])), x[4]);
	y[1] = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(m4,
	    _mm256_add_ps(x[1], x[2])), x[3]), x[4]);
	y[2] = _mm256_add_ps(_mm256_sub_ps(_mm256_mul_ps(four,
	    _mm256_sub_ps(x[1], x[2])), x[3]), x[4]);
	y[3] = _mm256_add_ps(_mm256_sub_ps(_mm256_mul_ps(two,
	    _mm256_sub_ps(x[3], x[1])), x[2]), x[4]);
	y[4] = _mm256_add_ps(_mm256_sub_ps(_mm256_mul_ps(two,
	    _mm256_sub_ps(x[1], x[3])), x[2]), x[4]);
	y[5] = _mm256_add_ps(_mm256_sub_ps(_mm256_mul_ps(four, x[1]),
	    _mm256_mul_ps(five, x[3])), x[5]);
}

/* r[i][j] becomes r[j][i]: an 8 x 8 block, rows to columns. */
KZ_AVX512_TARGET static inline void
wino4_transpose8(__m256 *r)
{
	__m256 t[8], s[8];

	for (int i = 0; i < 4; i++) {
		t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
		t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
	}
	/* s[k]: rows 0-3 (k < 4) or 4-7 of columns k mod 4, k mod 4 + 4 */
	for (int h = 0; h < 2; h++)
		for (int k = 0; k < 2; k++) {
			s[4 * h + 2 * k] = _mm256_shuffle_ps(t[4 * h + k],
			    t[4 * h + k + 2], 0x44);
			s[4 * h + 2 * k + 1] = _mm256_shuffle_ps(t[4 * h + k],
			    t[4 * h + k + 2], 0xee);
		}
	for (int k = 0; k < 4; k++) {
		r[k] = _mm256_permute2f128_ps(s[k], s[k + 4], 0x20);
		r[k + 4] = _mm256_permute2f128_ps(s[k], s[k + 4], 0x31);
	}
}

/* xt's and ct's padding zero (each group writes the rest); ct's rows
 * of it for as many channels' buffers as ncts, 48 TW PH floats apart. */
KZ_AVX512_TARGET static void
wino4_lanes_pad(int H, int W, int P, int TH, int TW, float *xt, int ncts)
{
	int PH = 4 * TH + 2, PW = 4 * TW + 2;
	float *ct = xt + (size_t)8 * PH * PW;

	for (int r = 0; r < PH; r++) {
		float *row = xt + (size_t)r * PW * 8;

		if (r >= P && r < H + P) {
			memset(row, 0, (size_t)P * 8 * sizeof(float));
			memset(row + (size_t)(W + P) * 8, 0, (size_t)(PW - W -
			    P) * 8 * sizeof(float));
			continue;
		}
		memset(row, 0, (size_t)PW * 8 * sizeof(float));
		for (int k = 0; k < ncts; k++)
			memset(ct + ((size_t)k * PH + r) * TW * 48, 0,
			    (size_t)TW * 48 * sizeof(float));
	}
}

/* ct [PH][TW][6][8] = the column transforms of each padded row of
 * channel c of images g0 .. g0 + ng - 1 (src), a pixel's eight images
 * one vector of xt [PH][PW][8] on the way. */
KZ_AVX512_TARGET static void
wino4_lanes_rows(const float *src, size_t HW, int C, int c, int H, int W,
    int P, const float *pre, int ng, int TW, float *xt, float *ct)
{
	int PW = 4 * TW + 2;

	for (int r = 0; r < H; r++)
		for (int q0 = 0; q0 < W; q0 += 8) {
			int nq = W - q0 < 8 ? W - q0 : 8;
			__mmask8 kq = (__mmask8)((1u << nq) - 1);
			__m256 v[8];
			float *d = xt + ((size_t)(r + P) * PW + q0 + P) * 8;

			for (int i = 0; i < 8; i++)
				v[i] = i >= ng ? _mm256_setzero_ps() :
				    _mm256_maskz_loadu_ps(kq, src + i * HW +
				    (size_t)r * W + q0);
			for (int i = 0; i < ng && pre != NULL; i++)
				v[i] = wino4_bn_relu8(v[i], pre, C, c);
			wino4_transpose8(v);
			/* (masked: a loop of stores to nq was turned into a
			 * call of memcpy) */
			for (int j = 0; j < 8; j++)
				_mm256_mask_storeu_ps(d + 8 * j, j < nq ? 0xff :
				    0, v[j]);
		}
	for (int r = P; r < H + P; r++)
		for (int tx = 0; tx < TW; tx++) {
			const float *p = xt + ((size_t)r * PW + 4 * tx) * 8;
			float *d = ct + ((size_t)r * TW + tx) * 48;
			__m256 in[6], out[6];

			for (int k = 0; k < 6; k++)
				in[k] = _mm256_loadu_ps(p + 8 * k);
			wino4_bt8(in, out);
			for (int j = 0; j < 6; j++)
				_mm256_storeu_ps(d + 8 * j, out[j]);
		}
}

/* out[i] = B' of column j of tile (ty, tx)'s six ct rows: plane 6 i + j. */
KZ_AVX512_TARGET static inline void
wino4_lanes_tile(const float *ct, int TW, int ty, int tx, int j,
    __m256 *out)
{
	__m256 in[6];

	for (int i = 0; i < 6; i++)
		in[i] = _mm256_loadu_ps(ct + ((size_t)(4 * ty + i) * TW +
		    tx) * 48 + 8 * j);
	wino4_bt8(in, out);
}

/* See engine.h.  Each channel's images, eight at a time, are turned
 * so that a pixel's eight are one vector (xt), then each padded row's
 * column transforms (ct), then each tile's B' (ct rows) into V. */
KZ_AVX512_TARGET void
wino4_tiles_lanes(const float *x, int C, int H, int W, int P,
    const float *pre, int B, int b0, int nb, int TH, int TW, float *xt,
    float *V, size_t vs)
{
	size_t HW = (size_t)H * W, N = (size_t)nb * TH * TW;
	float *ct = xt + (size_t)8 * (4 * TH + 2) * (4 * TW + 2);

	wino4_lanes_pad(H, W, P, TH, TW, xt, 1);
	for (int c = 0; c < C; c++)
		for (int g0 = 0; g0 < nb; g0 += 8) {
			int ng = nb - g0 < 8 ? nb - g0 : 8;
			__mmask8 kg = (__mmask8)((1u << ng) - 1);

			wino4_lanes_rows(x + ((size_t)c * B + b0 + g0) * HW,
			    HW, C, c, H, W, P, pre, ng, TW, xt, ct);
			for (int t = 0; t < TH * TW; t++) {
				float *v = V + (size_t)c * N + (size_t)t * nb +
				    g0;

				for (int j = 0; j < 6; j++) {
					__m256 out[6];

					wino4_lanes_tile(ct, TW, t / TW, t % TW,
					    j, out);
					for (int i = 0; i < 6; i++)
						_mm256_mask_storeu_ps(v +
						    (size_t)(6 * i + j) * vs, kg,
						    out[i]);
				}
			}
		}
}

/* See engine.h.  wino4_tiles_lanes' passes for channels c and c + 1
 * (ct and its second buffer), their B' outputs rounded and interleaved
 * as they are stored: the pairs never go through memory as floats. */
KZ_BF16_TARGET void
wino4_pairs_lanes(const float *x, int C, int H, int W, int P,
    const float *pre, int B, int b0, int nb, int TH, int TW, float *xt,
    uint32_t *Vp, size_t vs, size_t ldp)
{
	int PH = 4 * TH + 2;
	size_t HW = (size_t)H * W;
	float *ct = xt + (size_t)8 * PH * (4 * TW + 2);
	float *ct1 = ct + (size_t)PH * TW * 48;
	/* b0 .. b7 of the low half and a0 .. a7 of the high as
	 * b0 a0 b1 a1 .. b7 a7 */
	const __m256i mix = _mm256_set_epi16(15, 7, 14, 6, 13, 5, 12, 4, 11,
	    3, 10, 2, 9, 1, 8, 0);

	wino4_lanes_pad(H, W, P, TH, TW, xt, 2);
	for (int c = 0; c < C; c += 2)
		for (int g0 = 0; g0 < nb; g0 += 8) {
			int ng = nb - g0 < 8 ? nb - g0 : 8, odd = c + 1 == C;
			__mmask8 kg = (__mmask8)((1u << ng) - 1);

			wino4_lanes_rows(x + ((size_t)c * B + b0 + g0) * HW,
			    HW, C, c, H, W, P, pre, ng, TW, xt, ct);
			if (!odd)
				wino4_lanes_rows(x + ((size_t)(c + 1) * B + b0 +
				    g0) * HW, HW, C, c + 1, H, W, P, pre, ng,
				    TW, xt, ct1);
			for (int t = 0; t < TH * TW; t++) {
				uint32_t *v = Vp + (size_t)(c / 2) * ldp +
				    (size_t)t * nb + g0;

				for (int j = 0; j < 6; j++) {
					__m256 lo[6], hi[6];

					wino4_lanes_tile(ct, TW, t / TW, t % TW,
					    j, lo);
					if (odd)
						for (int i = 0; i < 6; i++)
							hi[i] = _mm256_setzero_ps();
					else
						wino4_lanes_tile(ct1, TW, t / TW,
						    t % TW, j, hi);
					for (int i = 0; i < 6; i++) {
						__m256i p = (__m256i)
						    _mm256_cvtne2ps_pbh(hi[i],
						    lo[i]);

						_mm256_mask_storeu_epi32(v +
						    (size_t)(6 * i + j) * vs, kg,
						    _mm256_permutexvar_epi16(mix,
						    p));
					}
				}
			}
		}
}

/* See engine.h.  Eight pixels of eight images at a time, turned
 * back. */
KZ_AVX512_TARGET void
wino4_place_lanes(const float *Y, size_t N, int S, int TW, int nb, int YH,
    int YW, const float *res, float *img, size_t plane)
{
	/* Pixel x0 + j of a row, x0 a multiple of 8 and so of S, is at
	 * (x0 / S) nb + at[j]: no division per pixel. */
	size_t at[8];

	for (int j = 0; j < 8; j++)
		at[j] = (size_t)(j % S) * N + (size_t)(j / S) * nb;
	for (int g0 = 0; g0 < nb; g0 += 8) {
		int ng = nb - g0 < 8 ? nb - g0 : 8;
		__mmask8 kg = (__mmask8)((1u << ng) - 1);

		for (int yy = 0; yy < YH; yy++) {
			const float *row = Y + (size_t)(yy % S) * S * N +
			    (size_t)(yy / S) * TW * nb + g0;

			for (int x0 = 0; x0 < YW; x0 += 8) {
				int nx = YW - x0 < 8 ? YW - x0 : 8;
				__mmask8 kx = (__mmask8)((1u << nx) - 1);
				__m256 v[8];

				for (int j = 0; j < 8; j++)
					v[j] = j >= nx ? _mm256_setzero_ps() :
					    _mm256_maskz_loadu_ps(kg, row +
					    (size_t)(x0 / S) * nb + at[j]);
				wino4_transpose8(v);
				for (int i = 0; i < ng; i++) {
					size_t p = (size_t)(g0 + i) * plane +
					    (size_t)yy * YW + x0;

					if (res != NULL)
						v[i] = _mm256_add_ps(v[i],
						    _mm256_maskz_loadu_ps(kx,
						    res + p));
					_mm256_mask_storeu_ps(img + p, kx, v[i]);
				}
			}
		}
	}
}
#endif

