/*
 * winograd.c - 3x3 stride-1 convolutions by Winograd F(2x2, 3x3).
 *
 * A 3x3 stride-1 convolution gives each 2x2 block of outputs from a 4x4
 * block of input in 16 multiplications, where im2col's GEMM takes 36
 * (Lavin and Gray, "Fast algorithms for convolutional neural networks",
 * 2016): the 4x4 input tiles are transformed (V = B'dB), multiplied by
 * the transformed kernels (U = GgG') as 16 GEMMs of [OC][C] x [C][tiles],
 * and transformed back (Y = A'MA).  Worth it from 16 input channels
 * (WINO_MIN_CHANNELS): below that the GEMMs are too thin to run at
 * speed.  The input gradient is the same convolution with the kernels
 * turned round; the weight gradient is F(3x3, 2x2), its transpose.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "util.h"
#include "engine.h"

int
wino_ok(const struct kz_layer *L)
{
	return L->k == 3 && L->stride == 1 && L->in.c >= WINO_MIN_CHANNELS;
}

/* Floats of scratch for one image of a C -> OC convolution with OH x OW
 * outputs: its tiles V, their products M and the outputs Y. */
static size_t
wino_per_image(int C, int OC, int OH, int OW)
{
	return (size_t)((OH + 1) / 2) * ((OW + 1) / 2) * (16 * (C + OC) + 4);
}

/* Floats that keep a convolution's transformed input tiles, B images,
 * in chunks of any size: the chunk from image b0 starts at
 * b0 * 16 * (C * T + WINO_SKEW). */
size_t
wino_kept(const struct kz_layer *L, int B)
{
	size_t T = (size_t)((L->out.h + 1) / 2) * ((L->out.w + 1) / 2);

	return (size_t)B * 16 * (L->in.c * T + WINO_SKEW);
}

/* Floats of wino_tiles' cols for TH x TW tiles: 4 tile columns, each
 * row's parity, TH + 1 rows of TW tiles. */
static size_t
wino_cols_floats(int TH, int TW)
{
	return (size_t)8 * (TH + 1) * TW;
}

/* Floats of scratch besides the images': the kernels U, U packed for
 * gemm_packed, cols, a padded input row and the skew. */
static size_t
wino_fixed(int C, int OC, int OH, int OW)
{
	int TH = (OH + 1) / 2, TW = (OW + 1) / 2;

	return (size_t)16 * OC * C + 16 * gemm_packed_floats(OC, C) +
	    wino_cols_floats(TH, TW) + (size_t)(2 * TW + 2) + 32 * WINO_SKEW;
}

/* Scratch for one image forward, and one image of the input gradient
 * (the convolution of OC channels back to C). */
size_t
wino_scratch(const struct kz_layer *L)
{
	int C = L->in.c, OC = L->out.c;
	size_t f = wino_fixed(C, OC, L->out.h, L->out.w) +
	    wino_per_image(C, OC, L->out.h, L->out.w);
	size_t b = wino_fixed(OC, C, L->in.h, L->in.w) +
	    wino_per_image(OC, C, L->in.h, L->in.w);

	return f > b ? f : b;
}

/* U[e][o][c] = (G g G')[e] for g [OC][C][3][3], or, if adjoint, for g
 * [C][OC][3][3] turned round by 180 degrees;
 * G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]. */
KZ_HOT static void
wino_kernels(const float *g, int adjoint, int C, int OC, float *U)
{
	size_t e1 = (size_t)OC * C;

	for (int o = 0; o < OC; o++)
		for (int c = 0; c < C; c++) {
			float k[3][3], t[4][3];

			for (int i = 0; i < 3; i++)
				for (int j = 0; j < 3; j++)
					k[i][j] = adjoint ? g[(((size_t)c * OC +
					    o) * 3 + 2 - i) * 3 + 2 - j] :
					    g[(((size_t)o * C + c) * 3 + i) * 3
					    + j];
			for (int j = 0; j < 3; j++) {
				t[0][j] = k[0][j];
				t[1][j] = 0.5f * (k[0][j] + k[1][j] + k[2][j]);
				t[2][j] = 0.5f * (k[0][j] - k[1][j] + k[2][j]);
				t[3][j] = k[2][j];
			}
			for (int i = 0; i < 4; i++) {
				float *u = U + (size_t)(4 * i) * e1 +
				    (size_t)o * C + c;

				u[0] = t[i][0];
				u[e1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
				u[2 * e1] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
				u[3 * e1] = t[i][2];
			}
		}
}

/* The transform's two passes run over contiguous floats; restrict lets
 * them vectorise (through plain float pointers the compiler must assume
 * each store may change the next load). */

/* d[j * js + tx] = (l B)[j] for the TW tiles' 4 columns of one padded
 * input row l, 2 * TW + 2 floats: tile tx has columns 2tx .. 2tx+3. */
static void
wino_cols(const float *restrict l, int TW, float *restrict d, size_t js)
{
	for (int tx = 0; tx < TW; tx++) {
		d[tx] = l[2 * tx] - l[2 * tx + 2];
		d[js + tx] = l[2 * tx + 1] + l[2 * tx + 2];
		d[2 * js + tx] = l[2 * tx + 2] - l[2 * tx + 1];
		d[3 * js + tx] = l[2 * tx + 1] - l[2 * tx + 3];
	}
}

/* v[(4i + j) * vs + n] = (B' r)[i] for the T tiles n of an image, r
 * their 4 rows of column j: cols[2j] and cols[2j + 1] (R floats apart)
 * hold the even and odd padded rows, TW floats each, so that tile n's
 * rows are even[n], odd[n], even[n + TW], odd[n + TW]. */
static void
wino_rows(const float *restrict cols, size_t R, int TW, size_t T,
    float *restrict v, size_t vs)
{
	for (int j = 0; j < 4; j++) {
		const float *ev = cols + 2 * j * R, *od = ev + R;
		float *d = v + j * vs;

		for (size_t n = 0; n < T; n++) {
			d[n] = ev[n] - ev[n + TW];
			d[4 * vs + n] = od[n] + ev[n + TW];
			d[8 * vs + n] = ev[n + TW] - od[n];
			d[12 * vs + n] = od[n] - od[n + TW];
		}
	}
}

#if KZ_AVX512_BUILT
/* wino_cols for a row of the padded image whose pixels lo .. hi - 1 are
 * l[lo] .. l[hi - 1] and the rest zero (l itself may lie before the
 * row: masked loads do not touch what they leave out), without the
 * copy into a padded line.  Sixteen tiles at a time: their 34 columns
 * as two pairs of vectors, from column 0 and from column 2, whose even
 * and odd lanes are each tile's columns 0 to 3; the same arithmetic,
 * so the same bytes. */
KZ_AVX512_TARGET static void
wino_cols_avx512(const float *l, int lo, int hi, int TW, float *restrict d,
    size_t js)
{
	const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16,
	    14, 12, 10, 8, 6, 4, 2, 0);
	const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));

	for (int t0 = 0; t0 < TW; t0 += 16) {
		int base = 2 * t0;
		/* pixels base .. base + 33 that the row has */
		int a = lo - base > 0 ? lo - base : 0;
		int z = hi - base < 34 ? hi - base : 34;
		uint64_t m = z <= a ? 0 : (((uint64_t)1 << z) - 1) &
		    ~(((uint64_t)1 << a) - 1);
		__m512 r0 = _mm512_maskz_loadu_ps((__mmask16)m, l + base);
		__m512 r1 = _mm512_maskz_loadu_ps((__mmask16)(m >> 16),
		    l + base + 16);
		__m512 s0 = _mm512_maskz_loadu_ps((__mmask16)(m >> 2),
		    l + base + 2);
		__m512 s1 = _mm512_maskz_loadu_ps((__mmask16)(m >> 18),
		    l + base + 18);
		/* columns 0 to 3 of tiles t0 .. t0 + 15 */
		__m512 p0 = _mm512_permutex2var_ps(r0, even, r1);
		__m512 p1 = _mm512_permutex2var_ps(r0, odd, r1);
		__m512 p2 = _mm512_permutex2var_ps(s0, even, s1);
		__m512 p3 = _mm512_permutex2var_ps(s0, odd, s1);
		__mmask16 st = gemm_lanes(TW - t0);

		_mm512_mask_storeu_ps(d + t0, st, _mm512_sub_ps(p0, p2));
		_mm512_mask_storeu_ps(d + js + t0, st, _mm512_add_ps(p1, p2));
		_mm512_mask_storeu_ps(d + 2 * js + t0, st, _mm512_sub_ps(p2,
		    p1));
		_mm512_mask_storeu_ps(d + 3 * js + t0, st, _mm512_sub_ps(p1,
		    p3));
	}
}

/* wino_rows sixteen tiles at a time, the last sixteen masked (an image
 * of 7 x 7 tiles leaves the loop above a scalar tail of a third). */
KZ_AVX512_TARGET static void
wino_rows_avx512(const float *cols, size_t R, int TW, size_t T, float *v,
    size_t vs)
{
	for (int j = 0; j < 4; j++) {
		const float *ev = cols + 2 * j * R, *od = ev + R;
		float *d = v + j * vs;

		for (size_t n = 0; n < T; n += 16) {
			__mmask16 k = gemm_lanes((ptrdiff_t)(T - n));
			__m512 a = _mm512_maskz_loadu_ps(k, ev + n);
			__m512 b = _mm512_maskz_loadu_ps(k, od + n);
			__m512 c = _mm512_maskz_loadu_ps(k, ev + n + TW);
			__m512 e = _mm512_maskz_loadu_ps(k, od + n + TW);

			_mm512_mask_storeu_ps(d + n, k, _mm512_sub_ps(a, c));
			_mm512_mask_storeu_ps(d + 4 * vs + n, k,
			    _mm512_add_ps(b, c));
			_mm512_mask_storeu_ps(d + 8 * vs + n, k,
			    _mm512_sub_ps(c, b));
			_mm512_mask_storeu_ps(d + 12 * vs + n, k,
			    _mm512_sub_ps(b, e));
		}
	}
}
#endif

/* V[e][c][n] = (B' d B)[e] for the 4x4 tiles d of images b0..b0+nb-1 of
 * x [C][B][H][W] padded by P, n = (b - b0) * TH * TW + tile; planes vs
 * floats apart.  cols holds wino_cols_floats(TH, TW) floats, line
 * 2 * TW + 2.  B' = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].  avx: by
 * wino_cols_avx512 and wino_rows_avx512 (the CPU has AVX-512). */
KZ_HOT static void
wino_tiles(const float *x, int C, int H, int W, int P, int B, int b0,
    int nb, int TH, int TW, float *cols, float *line, float *V, size_t vs,
    int avx)
{
	size_t T = (size_t)TH * TW, R = (size_t)(TH + 1) * TW;
	size_t N = (size_t)nb * T;

	/* The padding is zero once: rows of it transform to zero rows of
	 * cols, which no image writes, and every image writes the same
	 * columns of line. */
	memset(cols, 0, 8 * R * sizeof(float));
	memset(line, 0, (2 * TW + 2) * sizeof(float));
	for (int c = 0; c < C; c++)
		for (int b = 0; b < nb; b++) {
			const float *src = x + ((size_t)c * B + b0 + b) * H * W;

			/* B along each row first, into cols by the row's
			 * parity: then B' along the columns is one loop over
			 * every tile of the image, long enough to vectorise
			 * where a tile row (7 tiles of 14 pixels, say) is
			 * not. */
			for (int iy = 0; iy < H; iy++) {
				int row = iy + P;
				float *d = cols + (size_t)(row & 1) * R +
				    (size_t)(row >> 1) * TW;

#if KZ_AVX512_BUILT
				if (avx) {
					wino_cols_avx512(src + (size_t)iy * W -
					    P, P, P + W, TW, d, 2 * R);
					continue;
				}
#endif
				/* a loop, not memcpy: rows are short */
				for (int ix = 0; ix < W; ix++)
					line[P + ix] = src[(size_t)iy * W + ix];
				wino_cols(line, TW, d, 2 * R);
			}
#if KZ_AVX512_BUILT
			if (avx) {
				wino_rows_avx512(cols, R, TW, T, V + (size_t)c *
				    N + (size_t)b * T, vs);
				continue;
			}
#endif
			wino_rows(cols, R, TW, T, V + (size_t)c * N + (size_t)b * T,
			    vs);
		}
}

/* See engine.h. */
int
wino_chunk(size_t nscratch, size_t fixed, size_t per, int B)
{
	size_t room = nscratch - fixed - 32 * WINO_SKEW, c = room / per;

	if (c * per > WINO_FLOATS)
		c = WINO_FLOATS / per;
	return c < 1 ? 1 : c > (size_t)B ? B : (int)c;
}

/* Where the pieces of a C -> OC Winograd convolution of H x W inputs,
 * padding P, sit in its scratch (after the 16 * OC * C kernels), and
 * its images per chunk.  wino_conv and wino_weight_grad share it, so
 * that the tiles the one keeps are chunked as the other reads them. */
struct wino_layout {
	int OH, OW, TH, TW, T, chunk;
	float *packed, *cols, *line, *V;
};

static struct wino_layout
wino_layout(int C, int OC, int H, int W, int P, int B, float *scratch,
    size_t nscratch)
{
	struct wino_layout l;
	int WP;

	l.OH = H + 2 * P - 2;
	l.OW = W + 2 * P - 2;
	l.TH = (l.OH + 1) / 2;
	l.TW = (l.OW + 1) / 2;
	l.T = l.TH * l.TW;
	WP = 2 * l.TW + 2;
	l.packed = scratch + (size_t)16 * OC * C;
	l.cols = l.packed + 16 * gemm_packed_floats(OC, C);
	l.line = l.cols + wino_cols_floats(l.TH, l.TW);
	l.V = l.line + (size_t)WP;
	l.chunk = wino_chunk(nscratch, l.V - scratch,
	    wino_per_image(C, OC, l.OH, l.OW), B);
	/* OpenBLAS takes its small-matrix kernel, without packing, for
	 * products of at most 10^6 multiply-adds: 110 GFLOP/s here against
	 * 87-92 for the same shapes just above. */
	while (l.chunk > 1 && (double)OC * C * l.chunk * l.T > WINO_SMALL_GEMM)
		l.chunk--;
	return l;
}

/* See engine.h. */
const float *
wino_bn(const float *bn, int OC, int o, float bno[4])
{
	for (int k = 0; bn != NULL && k < 4; k++)
		bno[k] = bn[k * OC + o];
	return bn != NULL ? bno : NULL;
}

/* See engine.h. */
void
wino_finish(float *restrict Y, size_t n, const float *bn, int relu)
{
	for (size_t i = 0; bn != NULL && i < n; i++) {
		float h = (Y[i] - bn[0]) * bn[1];

		Y[i] = bn[2] * h + bn[3];
	}
	for (size_t i = 0; relu && i < n; i++)
		Y[i] = Y[i] > 0 ? Y[i] : 0;
}

/* See engine.h. */
void
wino_max4(const float *a, const float *b, const float *c, const float *e,
    size_t N, float *d)
{
	KZ_IVDEP
	for (size_t n = 0; n < N; n++) {
		float u = a[n] > b[n] ? a[n] : b[n];
		float v = c[n] > e[n] ? c[n] : e[n];

		d[n] = u > v ? u : v;
	}
}

/* Y[k][n] = (A' m A)[k] + bv, k < 4, n < N, for the 16 planes of m ms
 * floats apart (one output channel's tiles), then the batch norm of bn
 * (mean, 1 / standard deviation, scale, shift; the same arithmetic as
 * bn_forward's) if it is not NULL, then max(0, Y) if relu.
 * A' = [1 1 1 0; 0 1 -1 -1].  Over all the tiles at once, so the loop
 * vectorises. */
static void
wino_out(const float *restrict m, size_t ms, size_t N, float bv,
    const float *bn, int relu, float *restrict Y)
{
	for (size_t n = 0; n < N; n++) {
		float s0[4], s1[4];

		for (int j = 0; j < 4; j++) {
			float m0 = m[j * ms + n];
			float m1 = m[(4 + j) * ms + n];
			float m2 = m[(8 + j) * ms + n];
			float m3 = m[(12 + j) * ms + n];

			s0[j] = m0 + m1 + m2;
			s1[j] = m1 - m2 - m3;
		}
		Y[n] = s0[0] + s0[1] + s0[2] + bv;
		Y[N + n] = s0[1] - s0[2] - s0[3] + bv;
		Y[2 * N + n] = s1[0] + s1[1] + s1[2] + bv;
		Y[3 * N + n] = s1[1] - s1[2] - s1[3] + bv;
	}
	wino_finish(Y, 4 * N, bn, relu);
}

/* One output row d of OW floats from its tiles' left outputs y0 and
 * right outputs y0 + N. */
static void
wino_interleave(const float *restrict y0, size_t N, int OW,
    float *restrict d)
{
	const float *y1 = y0 + N;

	for (int k = 0; k < OW / 2; k++) {
		d[2 * k] = y0[k];
		d[2 * k + 1] = y1[k];
	}
	if (OW & 1)
		d[OW - 1] = y0[OW / 2];
}

/* See engine.h. */
KZ_HOT void
wino_conv(const float *x, int C, int H, int W, int P, const float *g,
    int adjoint, const float *bias, const float *bn, int fuse, int OC,
    float *y, int B, float *keep, int math, float *scratch,
    size_t nscratch)
{
	struct wino_layout l = wino_layout(C, OC, H, W, P, B, scratch,
	    nscratch);
	int OH = l.OH, OW = l.OW, TH = l.TH, TW = l.TW, T = l.T;
	int chunk = l.chunk;
	float *U = scratch, *cols = l.cols, *line = l.line, *V = l.V;

	/* kz's tiles take the products from kernels packed once a call;
	 * as pairs of bfloat16 on WINO_BF16 (they take a float's place). */
	int R = math != WINO_BLAS ? gemm_rows(OC, (size_t)chunk * T) : 0;
	size_t up = gemm_packed_floats(OC, C);

	wino_kernels(g, adjoint, C, OC, U);
	for (int e = 0; R != 0 && e < 16; e++)
		work_pack(math, U + (size_t)e * OC * C, OC, C, R,
		    l.packed + e * up);
	for (int b0 = 0; b0 < B; b0 += chunk) {
		int nb = B - b0 < chunk ? B - b0 : chunk;
		size_t N = (size_t)nb * T;
		size_t vs = (size_t)C * N + WINO_SKEW, ms = (size_t)OC * N +
		    WINO_SKEW;
		float *M = V + 16 * vs, *Y = M + 16 * ms;
		float *v = keep ? keep + (size_t)b0 * 16 * ((size_t)C * T +
		    WINO_SKEW) : V;

		wino_tiles(x, C, H, W, P, B, b0, nb, TH, TW, cols, line, v, vs,
		    math != WINO_BLAS);
		for (int e = 0; e < 16; e++)
			if (R != 0)
				work_packed_product(math, OC, N, C, R,
				    l.packed + e * up, v + e * vs, N,
				    M + e * ms, N, 0);
			else
				cblas_sgemm(CblasRowMajor, CblasNoTrans,
				    CblasNoTrans, OC, N, C, 1.0f, U +
				    (size_t)e * OC * C, C, v + e * vs, N,
				    0.0f, M + e * ms, N);
		for (int o = 0; o < OC; o++) {
			float bno[4];

			wino_out(M + (size_t)o * N, ms, N, bias ? bias[o] : 0,
			    wino_bn(bn, OC, o, bno), fuse & FUSE_RELU, Y);
			if (fuse & FUSE_POOL) {
				/* A tile is a pooling block, and the pooled
				 * chunk is contiguous. */
				wino_max4(Y, Y + N, Y + 2 * N, Y + 3 * N, N,
				    y + ((size_t)o * B + b0) * T);
				continue;
			}
			for (int b = 0; b < nb; b++)
				for (int oy = 0; oy < OH; oy++)
					wino_interleave(Y + (size_t)(oy & 1) * 2 *
					    N + (size_t)b * T + (size_t)(oy / 2) *
					    TW, N, OW, y + ((size_t)o * B + b0 +
					    b) * OH * OW + (size_t)oy * OW);
		}
	}
}

/* d[e * ds + n] = (A g A')[e] for the T = TH * TW 2x2 tiles g of an
 * output gradient r, OH x OW, n = ty * TW + tx; q holds 4 * T floats,
 * zero where a tile reaches beyond the edge (never written here).
 * A' = [1 1 1 0; 0 1 -1 -1].  The tiles' corners are gathered into q
 * first, so that the transform is one loop over every tile of the
 * image. */
KZ_HOT static void
wino_grad_tiles(const float *restrict r, int OH, int OW, int TH, int TW,
    float *restrict q, float *restrict d, size_t ds)
{
	size_t T = (size_t)TH * TW;
	float *g0 = q, *g1 = q + T, *g2 = q + 2 * T, *g3 = q + 3 * T;

	for (int ty = 0; ty < TH; ty++) {
		const float *r0 = r + (size_t)2 * ty * OW, *r1 = r0 + OW;
		size_t n = (size_t)ty * TW;

		for (int k = 0; 2 * k < OW; k++)
			g0[n + k] = r0[2 * k];
		for (int k = 0; 2 * k + 1 < OW; k++)
			g1[n + k] = r0[2 * k + 1];
		for (int k = 0; 2 * ty + 1 < OH && 2 * k < OW; k++)
			g2[n + k] = r1[2 * k];
		for (int k = 0; 2 * ty + 1 < OH && 2 * k + 1 < OW; k++)
			g3[n + k] = r1[2 * k + 1];
	}
	/* Row j of the tile's A g A' is t0[j], t0[j] + t1[j], t0[j] -
	 * t1[j], -t1[j] for t0 = (g0, g0 + g1, g0 - g1, -g1) and t1 the
	 * same of g2, g3. */
	/* Four planes at a time: sixteen store streams at once ran slower. */
	for (size_t n = 0; n < T; n++) {
		d[n] = g0[n];
		d[4 * ds + n] = g0[n] + g2[n];
		d[8 * ds + n] = g0[n] - g2[n];
		d[12 * ds + n] = -g2[n];
	}
	for (size_t n = 0; n < T; n++) {
		float a = g0[n] + g1[n], b = g2[n] + g3[n];

		d[ds + n] = a;
		d[5 * ds + n] = a + b;
		d[9 * ds + n] = a - b;
		d[13 * ds + n] = -b;
	}
	for (size_t n = 0; n < T; n++) {
		float a = g0[n] - g1[n], b = g2[n] - g3[n];

		d[2 * ds + n] = a;
		d[6 * ds + n] = a + b;
		d[10 * ds + n] = a - b;
		d[14 * ds + n] = -b;
	}
	for (size_t n = 0; n < T; n++) {
		d[3 * ds + n] = -g1[n];
		d[7 * ds + n] = -g1[n] - g3[n];
		d[11 * ds + n] = -g1[n] + g3[n];
		d[15 * ds + n] = g3[n];
	}
}

/* Each tile's 3x3 correlation of its 4x4 input with its 2x2 output
 * gradient is Winograd F(3x3, 2x2), the transpose of F(2x2, 3x3), and
 * the sum over tiles is taken inside the transform as 16 GEMMs of
 * [OC][tiles] x [tiles][C].  See engine.h. */
KZ_HOT void
wino_weight_grad(const float *x, int C, int H, int W, int P,
    const float *dy, int OC, float *dW, int B, const float *kept,
    int math, float *scratch, size_t nscratch)
{
	struct wino_layout l = wino_layout(C, OC, H, W, P, B, scratch,
	    nscratch);
	int OH = l.OH, OW = l.OW, TH = l.TH, TW = l.TW, T = l.T;
	int chunk = l.chunk;
	float *S = scratch, *cols = l.cols, *line = l.line, *V = l.V;
	size_t e1 = (size_t)OC * C;

	for (int b0 = 0; b0 < B; b0 += chunk) {
		int nb = B - b0 < chunk ? B - b0 : chunk;
		size_t N = (size_t)nb * T;
		size_t vs = (size_t)C * N + WINO_SKEW, ds = (size_t)OC * N +
		    WINO_SKEW;
		float *D = V + 16 * vs;
		const float *v = kept ? kept + (size_t)b0 * 16 * ((size_t)C * T +
		    WINO_SKEW) : V;

		if (kept == NULL)
			wino_tiles(x, C, H, W, P, B, b0, nb, TH, TW, cols, line, V,
			    vs, math != WINO_BLAS);
		/* cols is free once the tiles are made; the corners beyond
		 * the edge are zeroed once for every image's tiles. */
		memset(cols, 0, 4 * (size_t)T * sizeof(float));
		for (int o = 0; o < OC; o++)
			for (int b = 0; b < nb; b++)
				wino_grad_tiles(dy + ((size_t)o * B + b0 + b) *
				    OH * OW, OH, OW, TH, TW, cols, D +
				    (size_t)o * N + (size_t)b * T, ds);
		for (int e = 0; e < 16; e++)
			if (math == WINO_BF16) {
				/* Both operands' planes in bfloat16, each row
				 * where its floats start: D's where they lie,
				 * the tiles' in V (where they lie unless
				 * kept), so the dot products read half the
				 * bytes and convert nothing. */
				uint16_t *db = (uint16_t *)(D + e * ds);
				uint16_t *vb = (uint16_t *)(V + e * vs);

				bf16_rows(D + e * ds, N, OC, N, db, 2 * N);
				bf16_rows(v + e * vs, N, C, N, vb, 2 * N);
				bf16_dots(OC, C, N, db, 2 * N, vb, 2 * N,
				    S + e * e1, C, b0 > 0);
			} else if (math == WINO_AVX512)
				gemm_dots(OC, C, N, D + e * ds, N, v + e * vs,
				    N, S + e * e1, C, b0 > 0);
			else
				cblas_sgemm(CblasRowMajor, CblasNoTrans,
				    CblasTrans, OC, C, N, 1.0f, D + e * ds, N,
				    v + e * vs, N, b0 > 0 ? 1.0f : 0.0f,
				    S + e * e1, C);
	}
	/* dW += G' S G, G' = [1 .5 .5 0; 0 .5 -.5 0; 0 .5 .5 1] */
	for (size_t oc = 0; oc < e1; oc++) {
		float m[4][4], t[3][4];

		for (int e = 0; e < 16; e++)
			m[e / 4][e % 4] = S[e * e1 + oc];
		for (int j = 0; j < 4; j++) {
			t[0][j] = m[0][j] + 0.5f * (m[1][j] + m[2][j]);
			t[1][j] = 0.5f * (m[1][j] - m[2][j]);
			t[2][j] = 0.5f * (m[1][j] + m[2][j]) + m[3][j];
		}
		for (int i = 0; i < 3; i++) {
			float *w = dW + oc * 9 + i * 3;

			w[0] += t[i][0] + 0.5f * (t[i][1] + t[i][2]);
			w[1] += 0.5f * (t[i][1] - t[i][2]);
			w[2] += 0.5f * (t[i][1] + t[i][2]) + t[i][3];
		}
	}
}
