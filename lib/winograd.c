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
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "util.h"
#include "engine.h"

/* The 16 planes of V and M sit this many floats apart beyond their
 * size: planes a multiple of 4 KiB apart would share the same L1 sets,
 * and the transforms read or write all 16 at once. */
#define WINO_SKEW 16
/* A chunk's transformed tiles (V, M, Y) in at most this many floats,
 * 2 MiB: near L2 size ran fastest here. */
#define WINO_FLOATS (1u << 19)
/* The size of product below which OpenBLAS's sgemm skips packing (its
 * sgemm_small_kernel_permit for this machine's kernels). */
#define WINO_SMALL_GEMM 1e6

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

/* Floats of scratch besides the images': the kernels U, cols, a
 * padded input row and the skew. */
static size_t
wino_fixed(int C, int OC, int OH, int OW)
{
	int TH = (OH + 1) / 2, TW = (OW + 1) / 2;

	return (size_t)16 * OC * C + wino_cols_floats(TH, TW) +
	    (size_t)(2 * TW + 2) + 32 * WINO_SKEW;
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

/* V[e][c][n] = (B' d B)[e] for the 4x4 tiles d of images b0..b0+nb-1 of
 * x [C][B][H][W] padded by P, n = (b - b0) * TH * TW + tile; planes vs
 * floats apart.  cols holds wino_cols_floats(TH, TW) floats, line
 * 2 * TW + 2.  B' = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
KZ_HOT static void
wino_tiles(const float *x, int C, int H, int W, int P, int B, int b0,
    int nb, int TH, int TW, float *cols, float *line, float *V, size_t vs)
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

				/* a loop, not memcpy: rows are short */
				for (int ix = 0; ix < W; ix++)
					line[P + ix] = src[(size_t)iy * W + ix];
				wino_cols(line, TW, cols + (size_t)(row & 1) * R +
				    (size_t)(row >> 1) * TW, 2 * R);
			}
			wino_rows(cols, R, TW, T, V + (size_t)c * N + (size_t)b * T,
			    vs);
		}
}

/* Images per chunk for scratch of nscratch floats of which fixed are
 * taken, per floats an image: as many as fit, up to B and within
 * WINO_FLOATS. */
static int
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
	float *cols, *line, *V;
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
	l.cols = scratch + (size_t)16 * OC * C;
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

/* d[n] = the largest of a[n], b[n], c[n] and e[n], n < N; d may be a. */
static void
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
    float *y, int B, float *keep, float *scratch, size_t nscratch)
{
	struct wino_layout l = wino_layout(C, OC, H, W, P, B, scratch,
	    nscratch);
	int OH = l.OH, OW = l.OW, TH = l.TH, TW = l.TW, T = l.T;
	int chunk = l.chunk;
	float *U = scratch, *cols = l.cols, *line = l.line, *V = l.V;

	wino_kernels(g, adjoint, C, OC, U);
	for (int b0 = 0; b0 < B; b0 += chunk) {
		int nb = B - b0 < chunk ? B - b0 : chunk;
		size_t N = (size_t)nb * T;
		size_t vs = (size_t)C * N + WINO_SKEW, ms = (size_t)OC * N +
		    WINO_SKEW;
		float *M = V + 16 * vs, *Y = M + 16 * ms;
		float *v = keep ? keep + (size_t)b0 * 16 * ((size_t)C * T +
		    WINO_SKEW) : V;

		wino_tiles(x, C, H, W, P, B, b0, nb, TH, TW, cols, line, v, vs);
		for (int e = 0; e < 16; e++)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC,
			    N, C, 1.0f, U + (size_t)e * OC * C, C,
			    v + e * vs, N, 0.0f, M + e * ms, N);
		for (int o = 0; o < OC; o++) {
			float bno[4];

			for (int k = 0; bn != NULL && k < 4; k++)
				bno[k] = bn[k * OC + o];
			wino_out(M + (size_t)o * N, ms, N, bias ? bias[o] : 0,
			    bn != NULL ? bno : NULL, fuse & FUSE_RELU, Y);
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
    float *scratch, size_t nscratch)
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
			    vs);
		/* cols is free once the tiles are made; the corners beyond
		 * the edge are zeroed once for every image's tiles. */
		memset(cols, 0, 4 * (size_t)T * sizeof(float));
		for (int o = 0; o < OC; o++)
			for (int b = 0; b < nb; b++)
				wino_grad_tiles(dy + ((size_t)o * B + b0 + b) *
				    OH * OW, OH, OW, TH, TW, cols, D +
				    (size_t)o * N + (size_t)b * T, ds);
		for (int e = 0; e < 16; e++)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC,
			    C, N, 1.0f, D + e * ds, N, v + e * vs, N,
			    b0 > 0 ? 1.0f : 0.0f, S + e * e1, C);
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

/* ---- F(4x4, 3x3), classifying -------------------------------------------
 *
 * When classifying, a 4x4 block of outputs comes from a 6x6 block of
 * input in 36 multiplications (144 for im2col, 64 for four F(2x2) tiles):
 * 36 GEMMs of [OC][C] x [C][tiles], on a quarter of the tiles.  Its
 * transforms have larger coefficients, so it rounds a little worse than
 * F(2x2, 3x3) (about 1e-6 of the output's size, against 1e-7); training
 * keeps F(2x2), whose backward passes exist.  The points are 0, +-1,
 * +-2 and infinity (Lavin and Gray's). */

/* Floats of one image's scratch on the F(4x4) path: tiles V, products
 * M (36 planes each), and outputs Y (16 planes). */
static size_t
wino4_per_image(int C, int OC, int OH, int OW)
{
	return (size_t)((OH + 3) / 4) * ((OW + 3) / 4) * (36 * (C + OC) +
	    32 + (C + 1) / 2);
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
	size_t pairs = (size_t)18 * OC * (C + 1);
	size_t f32 = 36 * gemm_packed_floats(OC, C);

	return pairs > f32 ? pairs : f32;
}

static size_t
wino4_fixed(int C, int OC, int OH, int OW)
{
	int TH = (OH + 3) / 4, TW = (OW + 3) / 4;

	return (size_t)36 * OC * C + wino4_packed_floats(C, OC) +
	    wino4_rows_floats(TH, TW) + (size_t)(4 * TW + 2) + 72 * WINO_SKEW;
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

/* V[e][c][n] = (B' d B)[e] for the 6x6 tiles d (stride 4) of images
 * b0..b0+nb-1 of x [C][B][H][W] padded by P; n = (b - b0) T + tile. */
static void
wino4_tiles(const float *x, int C, int H, int W, int P, int B, int b0,
    int nb, int TH, int TW, float *rows, float *line, float *V, size_t vs)
{
	size_t T = (size_t)TH * TW, R = (size_t)(TH + 1) * TW;
	size_t N = (size_t)nb * T;
	int PH = 4 * TH + 2;
	/* pixels of a row that tiles read */
	int wn = W < 4 * TW + 2 - P ? W : 4 * TW + 2 - P;
	int direct = P == 0 && W >= 4 * TW + 2;

	memset(rows, 0, wino4_rows_floats(TH, TW) * sizeof(float));
	memset(line, 0, (4 * TW + 2) * sizeof(float));
	for (int c = 0; c < C; c++)
		for (int b = 0; b < nb; b++) {
			const float *src = x + ((size_t)c * B + b0 + b) * H * W;

			for (int row = P; row < PH && row < H + P; row++) {
				const float *l = src + (size_t)(row - P) * W;

				/* A row the tiles read whole is read where
				 * it lies; else copied, padded, by a loop:
				 * memcpy's call cost more than rows of 30
				 * floats. */
				if (!direct) {
					KZ_IVDEP
					for (int i = 0; i < wn; i++)
						line[P + i] = l[i];
					l = line;
				}
				wino4_cols(l, TW, rows + (size_t)(row & 3) *
				    R + (size_t)(row >> 2) * TW, 4 * R);
			}
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
 * apart): tile row ty's row i is S TW floats in image order, of which
 * the image has the first YW. */
static void
wino4_scatter(const float *z, size_t N, int S, int TH, int TW, int YH,
    int YW, float *img)
{
	for (int ty = 0; ty < TH; ty++)
		for (int i = 0; i < S && S * ty + i < YH; i++) {
			float *restrict d = img + (size_t)(S * ty + i) * YW;
			const float *restrict r = z + (size_t)S * i * N +
			    (size_t)S * ty * TW;

			KZ_IVDEP
			for (int x = 0; x < YW; x++)
				d[x] = r[x];
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

/* See engine.h.  The 36 products go to OpenBLAS (WINO_BLAS), to
 * gemm_packed with the kernels packed once (WINO_AVX512), or take
 * bfloat16 operands (WINO_BF16, bf16.c): scratch then holds the kernels
 * and one plane of tiles as pairs of them, Ub and Vb. */
KZ_HOT void
wino4_conv(const float *x, int C, int H, int W, int P, const float *g,
    const float *bias, const float *bn, int fuse, int OC, float *y, int B,
    int math, float **packed, float *scratch, size_t nscratch)
{
	int OH = H + 2 * P - 2, OW = W + 2 * P - 2;
	int TH = (OH + 3) / 4, TW = (OW + 3) / 4, T = TH * TW;
	int pool = fuse & FUSE_POOL, YH = pool ? OH / 2 : OH;
	int YW = pool ? OW / 2 : OW, S = pool ? 2 : 4;
	int K2 = (C + 1) / 2, R = 0;
	float *U = scratch, *ub = U + (size_t)36 * OC * C;
	float *rows = ub + wino4_packed_floats(C, OC);
	float *line = rows + wino4_rows_floats(TH, TW);
	float *V = line + (4 * TW + 2);
	uint32_t *Ub = (uint32_t *)ub;
	size_t up = 0;
	int chunk = wino_chunk(nscratch, (size_t)(V - scratch) + 40 *
	    WINO_SKEW, wino4_per_image(C, OC, OH, OW), B);

	if (math == WINO_AVX512) {
		chunk = wino4_chunk_tiles(chunk, T);
		R = gemm_rows((size_t)chunk * T);
		up = gemm_packed_floats(OC, C);
	} else {
		/* OpenBLAS skips packing below WINO_SMALL_GEMM. */
		while (chunk > 1 && (double)OC * C * chunk * T >
		    WINO_SMALL_GEMM)
			chunk--;
	}
	float **kept = math == WINO_AVX512 && packed != NULL ?
	    &packed[R == 12] : NULL;

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
			if (math == WINO_BF16)
				bf16_pack_rows(U + (size_t)e * OC * C, OC, C,
				    Ub + (size_t)e * OC * K2);
			else
				gemm_pack(U + (size_t)e * OC * C, OC, C, R,
				    ub + (size_t)e * up);
	}
	for (int b0 = 0; b0 < B; b0 += chunk) {
		int nb = B - b0 < chunk ? B - b0 : chunk;
		size_t N = (size_t)nb * T;
		size_t vs = (size_t)C * N + WINO_SKEW, ms = (size_t)OC * N +
		    WINO_SKEW;
		float *M = V + 36 * vs, *Y = M + 36 * ms, *Z = Y + 16 * N;
		uint32_t *Vb = (uint32_t *)(Z + 16 * N);

		wino4_tiles(x, C, H, W, P, B, b0, nb, TH, TW, rows, line, V,
		    vs);
		for (int e = 0; e < 36; e++) {
			if (math == WINO_BLAS) {
				cblas_sgemm(CblasRowMajor, CblasNoTrans,
				    CblasNoTrans, OC, N, C, 1.0f, U + (size_t)e *
				    OC * C, C, V + e * vs, N, 0.0f, M + e * ms, N);
			} else if (math == WINO_AVX512) {
				gemm_packed(OC, N, C, R, ub + (size_t)e * up,
				    V + e * vs, N, M + e * ms, N, 0);
			} else {
				bf16_pack_cols(V + e * vs, C, N, Vb);
				bf16_gemm(OC, N, C, Ub + (size_t)e * OC * K2,
				    Vb, M + e * ms, N);
			}
		}
		for (int o = 0; o < OC; o++) {
			float bno[4];

			for (int k = 0; bn != NULL && k < 4; k++)
				bno[k] = bn[k * OC + o];
			wino4_out(M + (size_t)o * N, ms, N, bias ? bias[o] : 0,
			    bn != NULL ? bno : NULL, fuse & FUSE_RELU, Y);
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
			wino4_interleave(Y, N, S, Z);
			for (int b = 0; b < nb; b++)
				wino4_scatter(Z + (size_t)S * b * T, N, S, TH,
				    TW, YH, YW, y + ((size_t)o * B + b0 + b) *
				    YH * YW);
		}
	}
}
