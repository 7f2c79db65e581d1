/*
 * unit.c - tests of lib/ functions that no program reaches alone.
 * Prints "ok - name" or "not ok - name" lines, counted by tests/run.sh.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kz.h"
#include "engine.h"
#include "predict.h"
#include "train.h"

static int failed;

static void
check(int cond, const char *name)
{
	printf("%s - %s\n", cond ? "ok" : "not ok", name);
	failed |= !cond;
}

static void
test_utf8(void)
{
	char b[8];

	/* Encodings from the Unicode tables, not from this code. */
	check(kz_utf8_encode(0x304A, b) == 3 &&
	    memcmp(b, "\xE3\x81\x8A", 4) == 0, "utf8: U+304A is E3 81 8A");
	check(kz_utf8_encode(0x20000, b) == 4 &&
	    memcmp(b, "\xF0\xA0\x80\x80", 5) == 0, "utf8: U+20000 is F0 A0 80 80");
	check(kz_utf8_encode(0xE9, b) == 2 && memcmp(b, "\xC3\xA9", 3) == 0,
	    "utf8: U+00E9 is C3 A9");
	check(kz_utf8_encode(0xD800, b) == 0, "utf8: surrogates refused");
	check(kz_utf8_encode(0x110000, b) == 0, "utf8: beyond U+10FFFF refused");
}

static void
test_shift(void)
{
	/* A 3x2 image moved one column right and one row up, by hand. */
	const uint8_t src[6] = { 1, 2, 3, 4, 5, 6 };
	const uint8_t want[6] = { 0, 4, 5, 0, 0, 0 };
	uint8_t got[6];

	kz_norm_shift(src, 3, 2, 1, -1, got);
	check(memcmp(got, want, 6) == 0, "shift: 3x2 by (1, -1)");
	kz_norm_shift(src, 3, 2, 3, 0, got);
	check(memcmp(got, "\0\0\0\0\0\0", 6) == 0,
	    "shift: by the width, all background");
}

static void
test_codepoint(void)
{
	uint32_t cp = 0;

	check(kz_parse_codepoint("U+4E00", 6, &cp) == 0 && cp == 0x4E00,
	    "codepoint: U+4E00");
	check(kz_parse_codepoint("U+241C6", 7, &cp) == 0 && cp == 0x241C6,
	    "codepoint: U+241C6");
	check(kz_parse_codepoint("U+4E0", 5, &cp) != 0, "codepoint: 3 digits refused");
	check(kz_parse_codepoint("U+4G00", 6, &cp) != 0, "codepoint: non-hex refused");
	check(kz_parse_codepoint("X+4E00", 6, &cp) != 0, "codepoint: no U+ refused");
	check(kz_parse_codepoint("U+110000", 8, &cp) != 0, "codepoint: beyond Unicode refused");
}

static void
test_header(void)
{
	struct kz_header h = { 28, 28, KZ_PIXEL_U8, 3, 10, 0 }, d;
	struct kz_err e;
	uint8_t b[KZ_HEADER_SIZE];

	kz_header_encode(&h, b);
	/* Bytes as kz.5 lays them out, written out by hand. */
	static const uint8_t want[KZ_HEADER_SIZE] = {
		0x8b, 'K', 'Z', 'S', 0x0d, 0x0a, 0x1a, 0x0a, 1, 0, 32, 0,
		1, 0, 3, 0, 28, 0, 0, 0, 28, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0
	};
	check(memcmp(b, want, sizeof(want)) == 0, "header: bytes as kz.5 says");
	check(kz_header_decode(b, &d, &e) == 0 && d.width == 28 &&
	    d.height == 28 && d.k == 3 && d.nclasses == 10 &&
	    d.pixel == KZ_PIXEL_U8, "header: round trip");
	check(kz_record_size(&h) == 12 + 3 * 8 + 784, "header: record size");
	h.flags = KZ_FLAG_MODERN;
	kz_header_encode(&h, b);
	check(b[28] == 1 && kz_header_decode(b, &d, &e) == 0 &&
	    d.flags == KZ_FLAG_MODERN, "header: the modern-forms flag, bit 0 "
	    "of byte 28, round trip");
	b[28] = 3;
	check(kz_header_decode(b, &d, &e) != 0 && strstr(e.msg,
	    "unknown flags 0x2"), "header: an unknown flag named");
	h.flags = 0;
	h.pixel = KZ_PIXEL_F32;
	check(kz_record_size(&h) == 12 + 3 * 8 + 4 * 784,
	    "header: f32 record size");
	h.width = 5000;
	check(kz_header_check(&h, &e) != 0 && strstr(e.msg, "width 5000"),
	    "header: width beyond the bound named");
	/* The magic read as a record's u64 index is >= 2^56 > 2^48. */
	uint64_t as_index = 0;
	for (int i = 7; i >= 0; i--)
		as_index = as_index << 8 | (uint8_t)KZ_MAGIC[i];
	check(as_index >= KZ_MAX_INDEX, "header: magic can never be an index");
}

static void
test_classmap(void)
{
	struct kz_classmap m;
	struct kz_err e;
	const char *ok = "index,codepoint,char\r\n1,U+5B57,\"字\"\r\n0,U+4E00,一\r\n";

	check(kz_classmap_parse(ok, strlen(ok), "m", &m, &e) == 0 && m.n == 2 &&
	    m.codepoint[0] == 0x4E00 && strcmp(m.utf8[1], "字") == 0 &&
	    kz_classmap_find(&m, 0x5B57) == 1 && kz_classmap_find(&m, 1) == -1,
	    "classmap: CRLF, quotes, rows out of order");
	kz_classmap_free(&m);
	const char *empty = "index,codepoint,char\n";
	check(kz_classmap_parse(empty, strlen(empty), "m", &m, &e) != 0 &&
	    strstr(e.msg, "no classes"), "classmap: no rows refused");
}

static void
test_variants(void)
{
	struct kz_classmap m;
	struct kz_err e;
	int sorted = 1, chained = 0;
	uint32_t fold[5];

	for (size_t i = 0; i < kz_nvariants; i++) {
		if (i > 0 && kz_variants[i].old <= kz_variants[i - 1].old)
			sorted = 0;
		if (kz_modern_form(kz_variants[i].modern) !=
		    kz_variants[i].modern)
			chained = 1;
	}
	check(kz_nvariants >= 200 && sorted,
	    "variants: the table is sorted by old form, no form twice");
	check(!chained, "variants: no modern form is an old form itself");
	check(kz_modern_form(0x6C23) == 0x6C17 &&
	    kz_modern_form(0x570B) == 0x56FD && kz_modern_form(0x6C17) ==
	    0x6C17 && kz_modern_form(0x4E00) == 0x4E00,
	    "variants: 氣 -> 気, 國 -> 国; 気 and 一 stay");
	/* 氣 twice (a map may repeat), 國 without 国 in the map. */
	const char *map = "index,codepoint,char\n0,U+6C23,氣\n1,U+4E00,一\n"
	    "2,U+6C17,気\n3,U+6C23,氣\n4,U+570B,國\n";
	check(kz_classmap_parse(map, strlen(map), "m", &m, &e) == 0 &&
	    kz_classmap_fold(&m, fold) == 2 && fold[0] == 2 && fold[1] == 1 &&
	    fold[2] == 2 && fold[3] == 2 && fold[4] == 4,
	    "variants: fold sends both 氣 to 気 and keeps 國 without 国");
	kz_classmap_free(&m);
}

static void
test_detect(void)
{
	uint8_t tar[512] = { 0 };

	memcpy(tar + 257, "ustar", 5);
	check(kz_detect((const uint8_t *)"PK\3\4", 4) == KZ_FMT_NPZ, "detect: zip");
	check(kz_detect((const uint8_t *)"\0\0\x08\x03", 4) == KZ_FMT_IDX, "detect: idx3");
	check(kz_detect((const uint8_t *)"P5\n", 3) == KZ_FMT_PNM, "detect: PGM");
	check(kz_detect(tar, sizeof(tar)) == KZ_FMT_TAR, "detect: tar");
	check(kz_detect((const uint8_t *)KZ_MAGIC, 8) == KZ_FMT_STREAM, "detect: stream");
	check(kz_detect((const uint8_t *)"hello", 5) == KZ_FMT_UNKNOWN, "detect: text");
}

/* Label smoothing of the gradient checks' loss. */
static float check_smooth;

/* Sum of the loss over a batch, for finite differences. */
static double
net_loss(struct kz_net *n, struct kz_work *w, const float *x,
    const int32_t *y, int B)
{
	struct kz_rng r;

	kz_rng_seed(&r, 7);	/* the same dropout masks every time */
	kz_net_forward(n, w, x, B, 1, &r);
	return kz_net_loss(n, w, y, NULL, NULL, check_smooth, B, 1.0f, NULL);
}

/* Every parameter's gradient (up to 400 spread over the net) against
 * central differences, in double-checked float: the relative error of
 * the whole vector and the worst single one. */
static void
gradcheck_work(const char *arch, int h, int wd, int B, int C, int train)
{
	struct kz_err e;
	struct kz_shape in = { 1, h, wd };
	struct kz_net *n = kz_net_new(arch, in, C, 3, &e);
	char name[200];

	snprintf(name, sizeof(name), "gradient check %s%s", arch, train ? "" :
	    " (inference work: nothing kept from the forward pass)");
	if (n == NULL) {
		printf("# %s\n", e.msg);
		check(0, name);
		return;
	}
	struct kz_work *w = kz_work_new(n, B, train, &e);
	float *x = malloc(sizeof(float) * B * h * wd);
	int32_t *y = malloc(sizeof(int32_t) * B);
	struct kz_rng r;
	kz_rng_seed(&r, 11);
	for (int i = 0; i < B * h * wd; i++)
		x[i] = (float)kz_rng_normal(&r);
	for (int b = 0; b < B; b++)
		y[b] = (int32_t)kz_rng_below(&r, C);
	/* Random biases and BN parameters too, so that no gradient is
	 * trivially zero. */
	for (size_t i = 0; i < n->nparams; i++)
		if (n->params[i] == 0 || n->params[i] == 1)
			n->params[i] += 0.3f * (float)kz_rng_normal(&r);

	kz_work_zero_grad(w, n);
	net_loss(n, w, x, y, B);
	kz_net_backward(n, w, B);
	float *g = kz_work_grad(w);
	double num2 = 0, den2 = 0, worst = 0;
	size_t step = n->nparams / 400 + 1, tried = 0, kinked = 0;
	for (size_t i = 0; i < n->nparams; i += step) {
		float keep = n->params[i];
		double fd[2];

		/* Two step sizes: where they disagree, a ReLU or max-pool
		 * kink lies within reach and the difference says nothing. */
		for (int k = 0; k < 2; k++) {
			double h2 = k ? 5e-4 : 1e-3;

			n->params[i] = keep + (float)h2;
			double lp = net_loss(n, w, x, y, B);
			n->params[i] = keep - (float)h2;
			double lm = net_loss(n, w, x, y, B);
			n->params[i] = keep;
			fd[k] = (lp - lm) / (2 * h2);
		}
		tried++;
		if (fabs(fd[0] - fd[1]) > 0.02 * fabs(fd[1]) + 2e-5) {
			kinked++;
			continue;
		}
		double d = fd[1] - g[i];
		num2 += d * d;
		den2 += (fd[1] + g[i]) * (fd[1] + g[i]);
		double rel = fabs(d) / (fabs(fd[1]) + fabs(g[i]) + 1e-2);
		worst = rel > worst ? rel : worst;
	}
	double rel = sqrt(num2 / (den2 + 1e-30));
	printf("# %s: %zu params, %zu checked (%zu near a kink), relative "
	    "error %.2e, worst %.2e\n", arch, n->nparams, tried, kinked, rel,
	    worst);
	check(rel < 5e-3 && kinked * 4 < tried, name);
	free(x);
	free(y);
	kz_work_free(w);
	kz_net_free(n);
}

/* A training step with bfloat16 products (kz-train -p bf16) against the
 * same step in single precision, which gradcheck checks against the
 * loss itself: every gradient within the rounding of the operands
 * (2^-9 of each), and not the same bytes (the bfloat16 path ran).
 * Odd outputs (7 x 9) leave partial tiles, 40 channels partial register
 * tiles, and 3 images an odd depth in the weight gradient's sums. */
static void
test_bf16_training(void)
{
	const char *arch = "cnn:conv16k3p1,bn,relu,conv40k3p1,relu,conv16k3,"
	    "dense5";
	struct kz_shape in = { 1, 7, 9 };
	struct kz_err e;
	struct kz_net *n;
	struct kz_work *w[2];
	float x[3 * 7 * 9];
	int32_t y[3] = { 0, 3, 4 };
	double loss[2], num2 = 0, den2 = 0;
	struct kz_rng r;
	int same = 1;

	if (!kz_bf16_ok()) {
		check(1, "training in bfloat16: (no AVX512_BF16 here: not run)");
		return;
	}
	n = kz_net_new(arch, in, 5, 3, &e);
	kz_rng_seed(&r, 12);
	for (int i = 0; i < 3 * 7 * 9; i++)
		x[i] = (float)kz_rng_normal(&r);
	for (int k = 0; k < 2; k++) {
		w[k] = kz_work_new(n, 3, 1, &e);
		kz_work_math(w[k], k);
		kz_work_zero_grad(w[k], n);
		loss[k] = net_loss(n, w[k], x, y, 3);
		kz_net_backward(n, w[k], 3);
	}
	for (size_t i = 0; i < n->nparams; i++) {
		double a = kz_work_grad(w[0])[i], b = kz_work_grad(w[1])[i];

		num2 += (a - b) * (a - b);
		den2 += a * a;
		same &= a == b;
	}
	printf("# training in bfloat16: loss %.6f against %.6f, gradient's "
	    "relative difference %.2e\n", loss[1], loss[0], sqrt(num2 /
	    den2));
	check(sqrt(num2 / den2) < 2e-2 && fabs(loss[1] - loss[0]) < 1e-2 *
	    loss[0] && !same, "training in bfloat16: the loss and gradient "
	    "of single precision, to the operands' rounding");
	kz_work_free(w[0]);
	kz_work_free(w[1]);
	kz_net_free(n);
}

static void
gradcheck(const char *arch, int h, int wd, int B, int C)
{
	gradcheck_work(arch, h, wd, B, C, 1);
}

/* Smoothed loss against the cross-entropy written out from the
 * softmax: (1 - s) of the label's -log p, s spread over all classes'. */
static void
test_smooth(void)
{
	struct kz_err e;
	struct kz_shape in = { 1, 3, 3 };
	int B = 4, C = 5;
	float s = 0.1f, x[4 * 9], probs[4 * 5];
	int32_t y[4] = { 0, 3, 4, 3 };
	struct kz_net *n = kz_net_new("linear", in, C, 3, &e);
	struct kz_work *w = kz_work_new(n, B, 1, &e);
	struct kz_rng r;

	kz_rng_seed(&r, 5);
	for (int i = 0; i < B * 9; i++)
		x[i] = (float)kz_rng_normal(&r);
	kz_net_forward(n, w, x, B, 1, &r);
	double got = kz_net_loss(n, w, y, NULL, NULL, s, B, 1.0f, NULL);
	kz_net_softmax(n, w, B, probs);
	double want = 0;
	for (int b = 0; b < B; b++) {
		want -= (1 - s) * log(probs[b * C + y[b]]);
		for (int c = 0; c < C; c++)
			want -= s / C * log(probs[b * C + c]);
	}
	printf("# smoothed loss %.6f, from the softmax %.6f\n", got, want);
	check(fabs(got - want) < 1e-4 * want, "loss: label smoothing");
	kz_work_free(w);
	kz_net_free(n);
	check_smooth = 0.1f;
	gradcheck("mlp:7,5", 5, 4, 6, 3);
	check_smooth = 0;
}

/* conv -> conv -> dense logits against direct loops over the formula. */
static void
test_conv_direct(void)
{
	struct kz_err e;
	struct kz_shape in = { 1, 9, 8 };
	int B = 3, C = 4;
	struct kz_net *n = kz_net_new("cnn:conv4k3p1,conv3k3s2p1", in, C, 5, &e);
	struct kz_work *w = kz_work_new(n, B, 0, &e);
	struct kz_rng r;
	float x[3 * 72];

	kz_rng_seed(&r, 1);
	for (int i = 0; i < B * 72; i++)
		x[i] = (float)kz_rng_normal(&r);
	for (size_t i = 0; i < n->nparams; i++)
		n->params[i] += 0.1f * (float)kz_rng_normal(&r);
	const float *z = kz_net_forward(n, w, x, B, 0, &r);

	/* Direct: a1[c][y][x] (9x8), a2[c][y][x] (5x4), logits. */
	const struct kz_layer *L1 = &n->layers[0], *L2 = &n->layers[1];
	const struct kz_layer *D = &n->layers[3];
	double worst = 0;
	for (int b = 0; b < B; b++) {
		double a1[4][9][8], a2[3][5][4];
		for (int c = 0; c < 4; c++)
			for (int i = 0; i < 9; i++)
				for (int j = 0; j < 8; j++) {
					double s = n->params[L1->b_off + c];
					for (int ki = 0; ki < 3; ki++)
						for (int kj = 0; kj < 3; kj++) {
							int yy = i - 1 + ki, xx = j - 1 + kj;
							if (yy < 0 || yy >= 9 || xx < 0 || xx >= 8)
								continue;
							s += n->params[L1->w_off + c * 9 + ki * 3 + kj] *
							    x[b * 72 + yy * 8 + xx];
						}
					a1[c][i][j] = s;
				}
		for (int c = 0; c < 3; c++)
			for (int i = 0; i < 5; i++)
				for (int j = 0; j < 4; j++) {
					double s = n->params[L2->b_off + c];
					for (int ci = 0; ci < 4; ci++)
						for (int ki = 0; ki < 3; ki++)
							for (int kj = 0; kj < 3; kj++) {
								int yy = 2 * i - 1 + ki, xx = 2 * j - 1 + kj;
								if (yy < 0 || yy >= 9 || xx < 0 || xx >= 8)
									continue;
								s += n->params[L2->w_off + ((c * 4 + ci) * 3 + ki) * 3 + kj] *
								    a1[ci][yy][xx];
							}
					a2[c][i][j] = s;
				}
		for (int k = 0; k < C; k++) {
			double s = n->params[D->b_off + k];
			for (int f = 0; f < 60; f++)
				s += n->params[D->w_off + k * 60 + f] *
				    a2[f / 20][(f % 20) / 4][f % 4];
			double d = fabs(s - z[k * B + b]);
			worst = d > worst ? d : worst;
		}
	}
	printf("# conv direct: worst logit difference %.2e\n", worst);
	check(worst < 1e-4, "convolution (stride 1 and 2, padding) equals direct loops");
	kz_work_free(w);
	kz_net_free(n);
}

/* One image through convolution L by the formula: in [C][H][W] ->
 * out [OC][OH][OW], in double. */
static void
direct_conv(const struct kz_net *n, const struct kz_layer *L,
    const double *in, double *out)
{
	int C = L->in.c, H = L->in.h, W = L->in.w, K = L->k;

	for (int o = 0; o < L->out.c; o++)
		for (int i = 0; i < L->out.h; i++)
			for (int j = 0; j < L->out.w; j++) {
				double s = n->params[L->b_off + o];

				for (int c = 0; c < C; c++)
					for (int ki = 0; ki < K; ki++)
						for (int kj = 0; kj < K; kj++) {
							int yy = i * L->stride - L->pad + ki;
							int xx = j * L->stride - L->pad + kj;

							if (yy < 0 || yy >= H || xx < 0 || xx >= W)
								continue;
							s += n->params[L->w_off + ((size_t)(o * C + c) * K + ki) * K + kj] *
							    in[(c * H + yy) * W + xx];
						}
				out[(o * L->out.h + i) * L->out.w + j] = s;
			}
}

/* Convolutions wide enough for the Winograd path (3x3, stride 1, 16
 * channels and up; padding 0, 1 and 2; odd and even output sizes) and
 * one that is not (stride 2), each layer's output against the formula
 * applied to the previous layer's output: classifying (F(4x4)) and
 * training (F(2x2)), on rows of 38 pixels (F(2x2)'s AVX-512 passes
 * take sixteen tiles at a time, and these have 19 and 20). */
static void
test_conv_wide(void)
{
	struct kz_err e;
	struct kz_shape in = { 1, 9, 38 };
	int B = 3;
	struct kz_net *n = kz_net_new("cnn:conv16k3p1,conv17k3p1,conv16k3,"
	    "conv18k3p2,conv16k3s2p1", in, 4, 5, &e);
	struct kz_work *w = kz_work_new(n, B, 1, &e);
	struct kz_rng r;
	float x[3 * 9 * 38];
	double worst[2] = { 0, 0 };

	kz_rng_seed(&r, 3);
	for (int i = 0; i < B * 9 * 38; i++)
		x[i] = (float)kz_rng_normal(&r);
	for (size_t i = 0; i < n->nparams; i++)
		n->params[i] += 0.1f * (float)kz_rng_normal(&r);
	for (int train = 0; train < 2; train++) {
		kz_net_forward(n, w, x, B, train, &r);
		for (int l = 1; l < 5; l++) {
			const struct kz_layer *L = &n->layers[l];
			size_t isz = (size_t)L->in.c * L->in.h * L->in.w;
			size_t osz = (size_t)L->out.c * L->out.h * L->out.w;
			const float *a = kz_work_output(w, l - 1);
			const float *z = kz_work_output(w, l);
			double *din = malloc(isz * sizeof(double));
			double *dout = malloc(osz * sizeof(double));

			for (int b = 0; b < B; b++) {
				size_t ihw = (size_t)L->in.h * L->in.w;
				size_t ohw = (size_t)L->out.h * L->out.w;

				for (size_t c = 0; c < (size_t)L->in.c; c++)
					for (size_t i = 0; i < ihw; i++)
						din[c * ihw + i] = a[(c * B + b) * ihw + i];
				direct_conv(n, L, din, dout);
				for (size_t c = 0; c < (size_t)L->out.c; c++)
					for (size_t i = 0; i < ohw; i++) {
						double d = fabs(dout[c * ohw + i] -
						    z[(c * B + b) * ohw + i]) /
						    (1 + fabs(dout[c * ohw + i]));

						worst[train] = d > worst[train] ? d :
						    worst[train];
					}
			}
			free(din);
			free(dout);
		}
	}
	printf("# conv wide: worst relative difference %.2e classifying, "
	    "%.2e training\n", worst[0], worst[1]);
	check(worst[0] < 1e-4 && worst[1] < 1e-4, "convolution over 16+ "
	    "channels (Winograd F(4x4) and F(2x2), pads 0-2) equals direct "
	    "loops");
	kz_work_free(w);
	kz_net_free(n);
}

/* Inference does a ReLU, and a 2x2 max pooling after a Winograd
 * convolution, inside the layer before; training does neither.
 * Without dropout or batch norm the two give the same logits but for
 * rounding: inference takes F(4x4, 3x3), training F(2x2, 3x3).  Rows
 * of 36 pooled to 18 take the AVX-512 placement's eight tiles and a
 * ninth that gives two outputs, which the next layer reads.  A batch
 * of 4 takes those passes; of 11, the eight-lane ones, with a group
 * of eight images and one of three. */
static void
test_fused_inference(int B)
{
	struct kz_err e;
	struct kz_shape in = { 1, 10, 36 };
	int C = 5;
	struct kz_net *n = kz_net_new("cnn:conv16k3p1,relu,conv16k3p1,relu,"
	    "maxpool2,conv16k3,relu,maxpool2,dense7,relu", in, C, 9, &e);
	struct kz_work *w = kz_work_new(n, B, 0, &e);
	struct kz_rng r;
	float x[11 * 360], z[5 * 11];

	kz_rng_seed(&r, 5);
	for (int i = 0; i < B * 360; i++)
		x[i] = (float)kz_rng_normal(&r);
	for (size_t i = 0; i < n->nparams; i++)
		n->params[i] += 0.1f * (float)kz_rng_normal(&r);
	memcpy(z, kz_net_forward(n, w, x, B, 1, &r), (size_t)C * B *
	    sizeof(float));
	/* A work of its own, so that no output the training pass left
	 * behind stands in for one the fused pass fails to write. */
	struct kz_work *w2 = kz_work_new(n, B, 0, &e);
	const float *f = kz_net_forward(n, w2, x, B, 0, &r);
	double worst = 0;
	for (int i = 0; i < C * B; i++) {
		double d = fabs(z[i] - f[i]);
		worst = d > worst ? d : worst;
	}
	printf("# fused inference, %d images: worst logit difference %.2e\n",
	    B, worst);
	check(worst < 1e-4, "inference with ReLU and max pooling fused (F(4x4)) equals the layer-by-layer pass (F(2x2))");
	kz_work_free(w);
	kz_work_free(w2);
	kz_net_free(n);
}

/* A one-channel first layer computed directly (conv_direct) with the
 * batch norm and ReLU after it fused, pooled (into its sums, then 2x2
 * maxima) and unpooled (straight into the output), against the formula
 * in double: six channels (a group of four and one of two), rows of 38
 * outputs (three vectors, the last partial), 10 rows (even: pooled). */
static void
test_direct_fused(void)
{
	static const char *spec[] = { "cnn:conv6k3p1,bn,relu,maxpool2",
	    "cnn:conv6k3,bn,relu" };
	struct kz_err e;
	struct kz_shape in = { 1, 10, 38 };
	int B = 3, HW = 10 * 38;
	float x[3 * 10 * 38];
	double worst = 0;
	int shaped = 1;

	for (int s = 0; s < 2; s++) {
		struct kz_net *n = kz_net_new(spec[s], in, 4, 3, &e);
		struct kz_work *w = kz_work_new(n, B, 0, &e);
		const struct kz_layer *L = &n->layers[0], *N = &n->layers[1];
		int last = s == 0 ? 3 : 2, OC = L->out.c;
		int OH = L->out.h, OW = L->out.w, S = s == 0 ? 2 : 1;
		struct kz_rng r;

		kz_rng_seed(&r, 21 + s);
		for (int i = 0; i < B * HW; i++)
			x[i] = (float)kz_rng_normal(&r);
		for (size_t i = 0; i < n->nparams; i++)
			n->params[i] += 0.1f * (float)kz_rng_normal(&r);
		for (int c = 0; c < OC; c++) {
			n->state[N->s_off + c] = 0.3f * (float)kz_rng_normal(&r);
			n->state[N->s_off + OC + c] = 0.5f +
			    (float)kz_rng_uniform(&r);
		}
		kz_net_forward(n, w, x, B, 0, &r);
		const float *z = kz_work_output(w, last);
		const struct kz_layer *Z = &n->layers[last];

		shaped &= Z->out.c == OC && Z->out.h == OH / S &&
		    Z->out.w == OW / S;
		for (int b = 0; b < B; b++) {
			double *in0 = malloc(sizeof(double) * HW);
			double *o = malloc(sizeof(double) * OC * OH * OW);

			for (int i = 0; i < HW; i++)
				in0[i] = x[b * HW + i];
			direct_conv(n, L, in0, o);
			for (int i = 0; i < OC * OH * OW; i++) {
				int c = i / (OH * OW);
				double v = n->params[N->w_off + c] * (o[i] -
				    n->state[N->s_off + c]) / sqrt(n->state[
				    N->s_off + OC + c] + BN_EPS) +
				    n->params[N->b_off + c];

				o[i] = v > 0 ? v : 0;
			}
			for (int c = 0; c < OC; c++)
				for (int i = 0; i < OH / S; i++)
					for (int j = 0; j < OW / S; j++) {
						double m = 0, d;

						for (int u = 0; u < S * S; u++) {
							double t = o[(c * OH + S * i + u / S) * OW + S * j + u % S];

							m = t > m ? t : m;
						}
						d = fabs(m - z[((size_t)(c * B + b) * (OH / S) + i) * (OW / S) + j]);
						worst = d > worst ? d : worst;
					}
			free(in0);
			free(o);
		}
		kz_work_free(w);
		kz_net_free(n);
	}
	printf("# direct first layer, fused: worst difference %.2e\n", worst);
	check(shaped && worst < 1e-4, "a one-channel first layer with its batch norm and ReLU fused, pooled and not, equals the formula");
}

/* With bfloat16 operands, a batch of 11 takes the eight-lane passes
 * that write the tiles as pairs (wino4_pairs_lanes, for eight images)
 * and a batch of 7 the per-image passes whose floats bf16_gemm pairs
 * itself: the same roundings and sums, so the same bytes for the seven
 * images both hold.  An odd channel count (17) leaves a pair half
 * empty.  Where the CPU lacks AVX512_BF16, nothing runs. */
static void
test_bf16_pairs(void)
{
	struct kz_err e;
	struct kz_shape in = { 1, 12, 20 };
	int C = 5, HW = 12 * 20;
	struct kz_net *n;
	struct kz_work *w[2];
	struct kz_rng r;
	float x[11 * 12 * 20], z[5 * 11];
	int differ = 0;

	if (!kz_bf16_ok()) {
		check(1, "bf16 pairs: (no AVX512_BF16 here: not run)");
		return;
	}
	n = kz_net_new("cnn:conv17k3p1,relu,conv16k3p1,relu,conv16k3,relu,"
	    "gap", in, C, 3, &e);
	kz_rng_seed(&r, 31);
	for (int i = 0; i < 11 * HW; i++)
		x[i] = (float)kz_rng_normal(&r);
	for (size_t i = 0; i < n->nparams; i++)
		n->params[i] += 0.1f * (float)kz_rng_normal(&r);
	w[0] = kz_work_new(n, 11, 0, &e);
	w[1] = kz_work_new(n, 7, 0, &e);
	kz_work_math(w[0], 1);
	kz_work_math(w[1], 1);
	memcpy(z, kz_net_forward(n, w[0], x, 11, 0, &r), sizeof(z));
	const float *f = kz_net_forward(n, w[1], x, 7, 0, &r);

	for (int c = 0; c < C; c++)
		for (int b = 0; b < 7; b++)
			differ += memcmp(&z[c * 11 + b], &f[c * 7 + b],
			    sizeof(float)) != 0;
	check(differ == 0, "bf16: the eight-lane passes' pairs give the per-image passes' bytes (17 channels: a pair half empty)");
	kz_work_free(w[0]);
	kz_work_free(w[1]);
	kz_net_free(n);
}

/* Pre-activation residual blocks when classifying, where the F(4x4)
 * convolutions take the batch norm and ReLU before them and the sum
 * after them into their own passes, against the layers by the formula
 * in double.  Rows of 33 take the AVX-512 row transform's seven tiles
 * twice and a remainder; a batch of 11, the eight-lane passes. */
static void
test_res_inference(int B)
{
	struct kz_err e;
	struct kz_shape in = { 1, 9, 33 };
	int HW = 9 * 33;
	struct kz_net *n = kz_net_new("cnn:conv16k3p1,res16,res16,bn,relu,gap",
	    in, 4, 7, &e);
	struct kz_work *w = kz_work_new(n, B, 0, &e);
	struct kz_rng r;
	float x[11 * 9 * 33];
	int last = -1;

	kz_rng_seed(&r, 11);
	for (int i = 0; i < B * HW; i++)
		x[i] = (float)kz_rng_normal(&r);
	for (size_t i = 0; i < n->nparams; i++)
		n->params[i] += 0.1f * (float)kz_rng_normal(&r);
	for (int l = 0; l < n->nlayers; l++) {
		const struct kz_layer *L = &n->layers[l];

		if (L->type == KZ_ADD)
			last = l;
		for (int c = 0; L->type == KZ_BN && c < L->in.c; c++) {
			n->state[L->s_off + c] = 0.3f * (float)kz_rng_normal(&r);
			n->state[L->s_off + L->in.c + c] = 0.5f +
			    (float)kz_rng_uniform(&r);
		}
	}
	kz_net_forward(n, w, x, B, 0, &r);
	const float *z = kz_work_output(w, last);
	double worst = 0;

	for (int b = 0; b < B; b++) {
		double **v = calloc(n->nlayers, sizeof(*v));

		for (int l = 0; l <= last; l++) {
			const struct kz_layer *L = &n->layers[l];
			size_t sz = (size_t)L->out.c * L->out.h * L->out.w;
			size_t hw = (size_t)L->out.h * L->out.w;
			double *in0, *o = v[l] = calloc(sz, sizeof(double));

			if (L->src < 0) {
				in0 = calloc(HW, sizeof(double));
				for (int i = 0; i < HW; i++)
					in0[i] = x[b * HW + i];
			} else
				in0 = v[L->src];
			if (L->type == KZ_CONV)
				direct_conv(n, L, in0, o);
			for (size_t i = 0; i < sz && L->type != KZ_CONV; i++) {
				size_t c = i / hw;

				if (L->type == KZ_RELU)
					o[i] = in0[i] > 0 ? in0[i] : 0;
				else if (L->type == KZ_ADD)
					o[i] = in0[i] + v[L->src2][i];
				else if (L->type == KZ_BN)
					o[i] = n->params[L->w_off + c] * (in0[i] -
					    n->state[L->s_off + c]) / sqrt(
					    n->state[L->s_off + L->in.c + c] +
					    BN_EPS) + n->params[L->b_off + c];
			}
			if (L->src < 0)
				free(in0);
		}
		const struct kz_layer *L = &n->layers[last];
		size_t sz = (size_t)L->out.c * L->out.h * L->out.w;
		size_t hw = (size_t)L->out.h * L->out.w;

		for (size_t i = 0; i < sz; i++) {
			double d = fabs(v[last][i] - z[(i / hw * B + b) * hw +
			    i % hw]) / (1 + fabs(v[last][i]));

			worst = d > worst ? d : worst;
		}
		for (int l = 0; l <= last; l++)
			free(v[l]);
		free(v);
	}
	printf("# residual inference, %d images: worst relative difference "
	    "%.2e\n", B, worst);
	check(last > 0 && worst < 1e-4, "residual blocks classifying (batch norm, ReLU and sum inside F(4x4)) equal the formula");
	kz_work_free(w);
	kz_net_free(n);
}

/* The weight gradient from the Winograd tiles the forward pass kept
 * (a training work) equals the one that transforms the input again (an
 * inference work), over a batch of several chunks. */
static void
test_kept_tiles(void)
{
	struct kz_err e;
	struct kz_shape in = { 1, 12, 12 };
	int B = 100, C = 5;
	struct kz_net *n = kz_net_new("cnn:conv16k3p1,relu,conv16k3,relu,"
	    "conv16k3p1,dense5", in, C, 4, &e);
	struct kz_work *w[2] = { kz_work_new(n, B, 1, &e), kz_work_new(n, B, 0, &e) };
	float *x = malloc(sizeof(float) * B * 144);
	int32_t y[100];
	struct kz_rng r;

	kz_rng_seed(&r, 9);
	for (int i = 0; i < B * 144; i++)
		x[i] = (float)kz_rng_normal(&r);
	for (int b = 0; b < B; b++)
		y[b] = (int32_t)kz_rng_below(&r, C);
	/* and in bfloat16, whose kept tiles are bfloat16 already */
	for (int bf = 0; bf <= kz_bf16_ok(); bf++) {
		size_t differ = 0;

		for (int k = 0; k < 2; k++) {
			kz_work_math(w[k], bf);
			kz_work_zero_grad(w[k], n);
			kz_net_forward(n, w[k], x, B, 1, &r);
			kz_net_loss(n, w[k], y, NULL, NULL, 0, B, 1.0f, NULL);
			kz_net_backward(n, w[k], B);
		}
		for (size_t i = 0; i < n->nparams; i++)
			differ += kz_work_grad(w[0])[i] !=
			    kz_work_grad(w[1])[i];
		printf("# kept tiles%s: %zu of %zu gradients differ\n", bf ?
		    " (bfloat16)" : "", differ, n->nparams);
		check(differ == 0, bf ? "weight gradient from kept Winograd "
		    "tiles equals the recomputed one, in bfloat16" : "weight "
		    "gradient from kept Winograd tiles equals the recomputed "
		    "one");
	}
	free(x);
	kz_work_free(w[0]);
	kz_work_free(w[1]);
	kz_net_free(n);
}

/* The weight average after two steps (one batch per epoch), against
 * the formula of kz-train(1): a = 1 - min(decay, (1 + step) / (10 +
 * step)), average += a * (weights - average), from the initial weights;
 * BN statistics alike.  Swapping twice gives the weights back. */
/* Mean and variance of n floats. */
static void
moments(const float *x, size_t n, double *mean, double *var)
{
	double s = 0, ss = 0;

	for (size_t i = 0; i < n; i++)
		s += x[i];
	*mean = s / n;
	for (size_t i = 0; i < n; i++)
		ss += (x[i] - *mean) * (x[i] - *mean);
	*var = ss / n;
}

/* The starting weights, from the distributions kz-train(1) states:
 * fan-in uniform (bound 1/sqrt(fan_in), variance bound^2 / 3, biases
 * too), He normal (variance 2 / fan_in, biases 0); --zero-res zeroes
 * the convolution each residual add takes first. */
static void
test_init(void)
{
	struct kz_err e;
	struct kz_shape in = { 1, 8, 8 };
	/* conv64k5 on one channel: fan-in 25, 1,600 weights. */
	struct kz_net *n = kz_net_new("cnn:conv64k5,res64", in, 10, 7, &e);
	const struct kz_layer *L;
	double mean, var, bound = 1 / sqrt(25.0), max = 0;
	int adds = 0;

	if (n == NULL) {
		check(0, "init: set up");
		return;
	}
	L = &n->layers[0];
	for (size_t i = 0; i < L->nw; i++)
		max = fmax(max, fabs(n->params[L->w_off + i]));
	moments(n->params + L->w_off, L->nw, &mean, &var);
	check(L->nw == 1600 && max <= bound && max > 0.95 * bound &&
	    fabs(mean) < 0.015 && fabs(var / (bound * bound / 3) - 1) < 0.1,
	    "init: fan-in uniform weights: bound, mean, variance");
	fprintf(stderr, "init: fan-in uniform: bound %.3f, max %.4f, mean "
	    "%.4f, variance %.5f against %.5f\n", bound, max, mean, var,
	    bound * bound / 3);
	max = 0;
	for (size_t i = 0; i < L->nb; i++)
		max = fmax(max, fabs(n->params[L->b_off + i]));
	check(max <= bound && max > 0.5 * bound,
	    "init: fan-in uniform biases");
	kz_net_init(n, KZ_INIT_HE, 1, 7);
	moments(n->params + L->w_off, L->nw, &mean, &var);
	check(fabs(mean) < 0.025 && fabs(var / (2 / 25.0) - 1) < 0.1 &&
	    n->params[L->b_off] == 0 && n->params[L->b_off + 63] == 0,
	    "init: He normal: mean, variance, zero biases");
	fprintf(stderr, "init: He: mean %.4f, variance %.5f against %.5f\n",
	    mean, var, 2 / 25.0);
	for (int i = 0; i < n->nlayers; i++) {
		const struct kz_layer *A = &n->layers[i], *C;
		int zero = 1;

		if (A->type != KZ_ADD)
			continue;
		adds++;
		C = &n->layers[A->src];
		for (size_t j = 0; j < C->nw + C->nb; j++)
			zero &= n->params[C->w_off + j] == 0;
		/* The block's first convolution is not touched. */
		check(C->type == KZ_CONV && zero && A->src >= 3 &&
		    n->layers[A->src - 3].type == KZ_CONV &&
		    n->params[n->layers[A->src - 3].w_off] != 0,
		    "init: --zero-res zeroes the block's last convolution only");
	}
	check(adds == 1, "init: one residual block, one add");
	kz_net_free(n);
}

/* x rounded to bfloat16, to nearest even (finite x): written from the
 * format, not from bf16.c. */
static float
bf16_round(float x)
{
	uint32_t u;

	memcpy(&u, &x, sizeof(u));
	u += 0x7fff + ((u >> 16) & 1);
	u &= 0xffff0000u;
	memcpy(&x, &u, sizeof(x));
	return x;
}

/* Entries of C [M][N] (rows ldc apart) off by more than 1e-6 of the
 * terms' sizes from add plus a loop in double over A [M][K] by B [K][N],
 * each operand through rnd where it is not NULL, and floats past each
 * row (to ldc) that are not pad.  The rounding of single-precision
 * sums grows with the terms' sizes, not the sum's: a missed block of
 * terms is thousands of times more. */
static int
products_off(const float *a, const float *b, int M, int N, int K,
    float (*rnd)(float), const float *c, int ldc, float add, float pad)
{
	int bad = 0;

	for (int m = 0; m < M; m++) {
		for (int n = 0; n < N; n++) {
			double d = 0, mag = 0;

			for (int k = 0; k < K; k++) {
				float x = a[m * K + k], y = b[k * N + n];
				double t = rnd != NULL ? (double)rnd(x) *
				    rnd(y) : (double)x * y;

				d += t;
				mag += fabs(t);
			}
			bad += fabs(c[m * ldc + n] - add - d) > 1e-6 *
			    (8 + mag);
		}
		for (int n = N; n < ldc; n++)
			bad += c[m * ldc + n] != pad;
	}
	return bad;
}

/* gemm_packed against a loop in double, on shapes that leave partial
 * row and column tiles, for both register tiles; where the CPU lacks
 * AVX-512, the packing alone. */
static void
test_gemm(void)
{
	static const int shapes[][3] = { { 13, 70, 5 }, { 24, 96, 33 },
	    { 1, 1, 1 }, { 25, 144, 64 }, { 12, 32, 7 }, { 10, 50, 700 } };
	struct kz_rng r;
	int bad = 0, packed = 1;

	kz_rng_seed(&r, 5);
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
		float *a = malloc(sizeof(float) * M * K);
		float *b = malloc(sizeof(float) * K * N);
		float *c = malloc(sizeof(float) * M * (N + 3));

		for (int i = 0; i < M * K; i++)
			a[i] = (float)kz_rng_normal(&r);
		for (int i = 0; i < K * N; i++)
			b[i] = (float)kz_rng_normal(&r);
		for (int R = 8; R <= 12; R += 4) {
			float *ap = malloc(sizeof(float) *
			    gemm_packed_floats(M, K));

			gemm_pack(a, M, K, R, ap);
			/* Row m of A is column m % R of block m / R. */
			for (int m = 0; m < (M + R - 1) / R * R; m++)
				for (int k = 0; k < K; k++)
					packed &= ap[(size_t)(m / R) * R * K +
					    (size_t)k * R + m % R] == (m < M ?
					    a[(size_t)m * K + k] : 0);
			if (kz_avx512_ok()) {
				/* ldc N + 3: the three floats past each
				 * row stay as they were. */
				for (int i = 0; i < M * (N + 3); i++)
					c[i] = 7;
				/* R 8 adds to C: 7 more, the pad kept. */
				gemm_packed(M, N, K, R, ap, b, N, c, N + 3,
				    R == 8);
				bad += products_off(a, b, M, N, K, NULL, c,
				    N + 3, R == 8 ? 7 : 0, 7);
			}
			free(ap);
		}
		free(a);
		free(b);
		free(c);
	}
	check(packed, "gemm: packed rows in tiles of 8 and 12, the rest zero");
	check(bad == 0, kz_avx512_ok() ? "gemm: AVX-512 products equal a "
	    "loop in double, partial tiles included" : "gemm: (no AVX-512 "
	    "here: products not run)");
}

/* gemm_dots against a loop in double, on shapes whose rows and columns
 * leave partial 4 x 4 tiles and whose depth leaves a partial vector,
 * with C's own values added or not; where the CPU lacks AVX-512,
 * nothing runs. */
static void
test_gemm_dots(void)
{
	static const int shapes[][3] = { { 16, 16, 196 }, { 5, 7, 33 },
	    { 1, 1, 1 }, { 64, 32, 240 }, { 3, 18, 16 }, { 17, 9, 2000 } };
	struct kz_rng r;
	int bad = 0, bad16 = 0, nbf = 0;

	kz_rng_seed(&r, 6);
	for (size_t s = 0; kz_avx512_ok() && s < sizeof(shapes) /
	    sizeof(shapes[0]); s++) {
		int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
		/* rows K + 1 apart, and C's N + 3: the padding is not read,
		 * and not written */
		float *a = malloc(sizeof(float) * M * (K + 1));
		float *bt = malloc(sizeof(float) * N * (K + 1));
		float *b = malloc(sizeof(float) * K * N);
		float *ac = malloc(sizeof(float) * M * K);
		float *c = malloc(sizeof(float) * M * (N + 3));

		for (int i = 0; i < M * (K + 1); i++)
			a[i] = (float)kz_rng_normal(&r);
		for (int i = 0; i < N * (K + 1); i++)
			bt[i] = (float)kz_rng_normal(&r);
		/* products_off's operands: A [M][K], B [K][N] */
		for (int m = 0; m < M; m++)
			for (int k = 0; k < K; k++)
				ac[m * K + k] = a[m * (K + 1) + k];
		for (int k = 0; k < K; k++)
			for (int n = 0; n < N; n++)
				b[k * N + n] = bt[n * (K + 1) + k];
		for (int add = 0; add < 2; add++) {
			for (int i = 0; i < M * (N + 3); i++)
				c[i] = 7;
			gemm_dots(M, N, K, a, K + 1, bt, K + 1, c, N + 3, add);
			bad += products_off(ac, b, M, N, K, NULL, c, N + 3,
			    add ? 7 : 0, 7);
		}
		/* bfloat16: A's rows converted in place, B's elsewhere
		 * (K + 5 apart), as wino_weight_grad does */
		if (kz_bf16_ok()) {
			uint16_t *bb = malloc(sizeof(uint16_t) * N * (K + 5));

			bf16_rows(a, K + 1, M, K, (uint16_t *)a, 2 * (K + 1));
			bf16_rows(bt, K + 1, N, K, bb, K + 5);
			for (int add = 0; add < 2; add++) {
				for (int i = 0; i < M * (N + 3); i++)
					c[i] = 7;
				bf16_dots(M, N, K, (uint16_t *)a, 2 * (K + 1),
				    bb, K + 5, c, N + 3, add);
				bad16 += products_off(ac, b, M, N, K,
				    bf16_round, c, N + 3, add ? 7 : 0, 7);
				nbf++;
			}
			free(bb);
		}
		free(a);
		free(bt);
		free(b);
		free(ac);
		free(c);
	}
	check(bad == 0, kz_avx512_ok() ? "gemm_dots: AVX-512 dot products "
	    "equal a loop in double, partial tiles included" : "gemm_dots: "
	    "(no AVX-512 here: products not run)");
	/* (KZ_NO_AVX512 skips the shapes above, bfloat16 too.) */
	int ran = kz_avx512_ok() && kz_bf16_ok();

	check(bad16 == 0 && nbf == (ran ? 12 : 0), ran ? "bf16_dots: equal "
	    "a loop in double over operands rounded to bfloat16 (bf16_rows, "
	    "in place and not), partial tiles and vectors included" :
	    "bf16_dots: (no AVX512_BF16, or KZ_NO_AVX512: not run)");
}

/* bf16_gemm against a loop in double over the operands rounded to
 * bfloat16 (their products are exact in single precision, so only the
 * sums' order differs), on shapes with an odd depth, a depth of several
 * panels and partial tiles of both sizes, B's rows apart by more than
 * N, and C's own values added (R 8) or not; where the CPU lacks
 * AVX512_BF16, nothing runs. */
static void
test_bf16_gemm(void)
{
	static const int shapes[][3] = { { 13, 70, 5 }, { 24, 96, 33 },
	    { 1, 1, 1 }, { 64, 145, 64 }, { 12, 32, 16 }, { 9, 49, 31 },
	    { 10, 50, 301 } };
	struct kz_rng r;
	int bad = 0;

	if (!kz_bf16_ok()) {
		check(1, "bf16 gemm: (no AVX512_BF16 here: not run)");
		return;
	}
	kz_rng_seed(&r, 6);
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
		int ldb = N + 5;
		float *a = malloc(sizeof(float) * M * K);
		float *b = malloc(sizeof(float) * K * N);
		float *bl = malloc(sizeof(float) * K * ldb);
		float *c = malloc(sizeof(float) * M * (N + 3));
		uint32_t *ap = malloc(sizeof(uint32_t) * bf16_packed_pairs(M,
		    K));

		for (int i = 0; i < M * K; i++)
			a[i] = (float)kz_rng_normal(&r);
		for (int i = 0; i < K * N; i++)
			b[i] = (float)kz_rng_normal(&r);
		/* Past N in each of B's rows, values that must not count. */
		for (int k = 0; k < K; k++)
			for (int n = 0; n < ldb; n++)
				bl[k * ldb + n] = n < N ? b[k * N + n] : 1e30f;
		for (int R = 8; R <= 12; R += 4) {
			bf16_pack_rows(a, M, K, R, ap);
			for (int i = 0; i < M * (N + 3); i++)
				c[i] = 7;
			bf16_gemm(M, N, K, R, ap, bl, ldb, c, N + 3, R == 8);
			bad += products_off(a, b, M, N, K, bf16_round, c,
			    N + 3, R == 8 ? 7 : 0, 7);
		}
		free(a);
		free(b);
		free(bl);
		free(c);
		free(ap);
	}
	check(bad == 0, "bf16 gemm: products equal a loop in double over "
	    "operands rounded to bfloat16, partial tiles, odd depths and "
	    "several panels included, C added to or not, nothing written "
	    "past each row");
}

/* kz_nearest against a loop over every pair, in double. */
static void
test_nearest(void)
{
	enum { N = 300, F = 7, Q = 5, K = 4 };
	float idx_f[N * F], q[Q * F], sim[Q * K];
	uint32_t near[Q * K];
	struct kz_rng r;
	struct kz_err e;
	int bad = 0;

	kz_rng_seed(&r, 3);
	for (int i = 0; i < N * F; i++)
		idx_f[i] = (float)kz_rng_normal(&r);
	for (int i = 0; i < Q * F; i++)
		q[i] = (float)kz_rng_normal(&r);
	/* A query that is an index row: its nearest is that row. */
	memcpy(q, idx_f + 123 * F, F * sizeof(float));
	check(kz_nearest(idx_f, N, q, Q, F, K, 2, near, sim, &e) == 0,
	    "nearest: runs");
	for (int j = 0; j < Q; j++) {
		int taken[N] = { 0 };

		for (int k = 0; k < K; k++) {
			int best = -1;
			double bv = 0;

			for (int i = 0; i < N; i++) {
				double d = 0;

				for (int f = 0; f < F; f++)
					d += (double)q[j * F + f] *
					    idx_f[i * F + f];
				if (!taken[i] && (best < 0 || d > bv)) {
					best = i;
					bv = d;
				}
			}
			taken[best] = 1;
			bad += near[j * K + k] != (uint32_t)best ||
			    fabs(sim[j * K + k] - bv) > 1e-4 * (1 + fabs(bv));
		}
	}
	check(bad == 0 && near[0] == 123, "nearest: the K largest products, "
	    "in order, as a loop over every pair finds them");
	check(kz_nearest(idx_f, N, q, Q, F, N + 1, 2, near, sim, &e) != 0 &&
	    strstr(e.msg, "neighbours") != NULL, "nearest: more than the "
	    "index holds is an error");
}

/* -p's words, and the arithmetic each resolves to with and without
 * KZ_NO_BF16 (which makes kz_bf16_ok() false on any CPU). */
static void
test_math_choice(void)
{
	struct kz_err e;
	struct kz_shape in = { 1, 4, 4 };
	struct kz_net *n = kz_net_new("cnn:conv2k3p1,relu,gap", in, 2, 3, &e);
	uint8_t pix[2 * 16] = { 0 };
	int32_t lab[2] = { 0, 1 };
	struct kz_dataset d = { 2, 4, 4, 2, pix, lab };
	struct kz_train_opts o = { .epochs = 1, .batch = 2, .threads = 1,
	    .opt = KZ_SGD, .lr = 0.1f, .seed = 1, .math = KZ_MATH_BF16 };
	enum kz_math m[3] = { KZ_MATH_F32, KZ_MATH_F32, KZ_MATH_F32 };
	const char *why[3] = { "x", "x", "x" };
	char *was = getenv("KZ_NO_BF16");
	struct kz_trainer *t;

	check(kz_math_parse("auto", &m[0]) == 0 && m[0] == KZ_MATH_AUTO &&
	    kz_math_parse("bf16", &m[1]) == 0 && m[1] == KZ_MATH_BF16 &&
	    kz_math_parse("f32", &m[2]) == 0 && m[2] == KZ_MATH_F32 &&
	    kz_math_parse("f16", &m[0]) == -1 && kz_math_parse("", &m[0]) ==
	    -1, "math: -p's three words parse, others do not");
	was = was != NULL ? strdup(was) : NULL;
	setenv("KZ_NO_BF16", "1", 1);
	m[0] = kz_math_resolve(KZ_MATH_AUTO, &why[0]);
	m[1] = kz_math_resolve(KZ_MATH_BF16, &why[1]);
	m[2] = kz_math_resolve(KZ_MATH_F32, &why[2]);
	check(m[0] == KZ_MATH_F32 && why[0] == NULL && m[1] == KZ_MATH_F32 &&
	    why[1] != NULL && strstr(why[1], "KZ_NO_BF16") != NULL &&
	    m[2] == KZ_MATH_F32 && why[2] == NULL, "math: under KZ_NO_BF16, "
	    "auto is f32 silently, bf16 falls back to f32 and says why");
	t = n != NULL ? kz_trainer_new(n, &d, &o, 0.5f, 0.3f, &e) : NULL;
	check(n != NULL && t == NULL && strstr(e.msg, "AVX512_BF16") != NULL,
	    "math: a trainer asked for bfloat16 where the CPU lacks it is "
	    "an error, not an illegal instruction");
	kz_trainer_free(t);
	if (was != NULL)
		setenv("KZ_NO_BF16", was, 1);
	else
		unsetenv("KZ_NO_BF16");
	free(was);
	m[0] = kz_math_resolve(KZ_MATH_AUTO, &why[0]);
	m[1] = kz_math_resolve(KZ_MATH_BF16, &why[1]);
	check(m[0] == (kz_bf16_ok() ? KZ_MATH_BF16 : KZ_MATH_F32) &&
	    why[0] == NULL && m[1] == m[0] && (why[1] == NULL) ==
	    (kz_bf16_ok() != 0), "math: auto and bf16 are bfloat16 exactly "
	    "where kz_bf16_ok()");
	kz_net_free(n);
}

/* One optimiser step from rest, written from the update rules:
 * Nesterov SGD (g' = g + wd p where p decays, m = g'; p -= rate (g' +
 * momentum m)) and AdamW (p -= rate g / (|g| + eps') + rate wd p where
 * p decays: m^ = g and v^ = g^2 after the bias corrections, and eps' =
 * eps / sqrt(1 - beta2), since the correction goes into the step).
 * The BN shifts step at --bn-lr times the rate; the convolution's and
 * dense layer's weights decay, nothing else does. */
static void
test_bn_bias_lr(void)
{
	struct kz_err e;
	struct kz_shape in = { 1, 4, 4 };
	struct kz_net *n = kz_net_new("cnn:conv3k3p1,bn,relu,gap", in, 2, 5,
	    &e);
	struct kz_opt o = { .momentum = 0.9f, .wd = 0.01f, .beta1 = 0.9f,
	    .beta2 = 0.999f, .eps = 1e-8f, .nesterov = 1, .bn_bias_lr = 4 };
	float *p0 = NULL, *g = NULL;
	double worst[2] = { 0, 0 };
	int bn_biases = 0, frozen_layer = -1;

	if (n == NULL || (p0 = malloc(n->nparams * sizeof(float))) == NULL ||
	    (g = malloc(n->nparams * sizeof(float))) == NULL) {
		check(0, "bn-lr: set up");
		goto done;
	}
	memcpy(p0, n->params, n->nparams * sizeof(float));
	for (size_t i = 0; i < n->nparams; i++)
		g[i] = 0.01f * (float)((int)(i % 7) - 3) + 0.002f;
	for (int adam = 0; adam <= 1; adam++) {
		o.type = adam ? KZ_ADAM : KZ_SGD;
		if (kz_opt_init(&o, n, &e) != 0) {
			check(0, "bn-lr: set up");
			goto done;
		}
		o.step = 1;
		/* The last layer, dense, frozen as --whiten freezes the
		 * first: no step and no decay. */
		kz_opt_freeze(&o, &n->layers[n->nlayers - 1]);
		memcpy(n->params, p0, n->nparams * sizeof(float));
		kz_opt_update(&o, n, g, 0.1f, 0, n->nparams);
		for (int l = 0; l < n->nlayers; l++) {
			const struct kz_layer *L = &n->layers[l];
			size_t w = L->nw, b = L->nb;
			int frozen = l == n->nlayers - 1;

			for (size_t i = L->w_off; i < L->w_off + w + b; i++) {
				int bias = i >= L->w_off + w;
				int decays = !frozen && !bias &&
				    (L->type == KZ_CONV || L->type == KZ_DENSE);
				double rate = frozen ? 0 : L->type == KZ_BN &&
				    bias ? 0.4 : 0.1, want;

				if (adam)
					want = p0[i] - rate * g[i] /
					    (fabs(g[i]) + 1e-8 / sqrt(0.001)) -
					    (decays ? 0.1 * 0.01 * p0[i] : 0);
				else
					want = p0[i] - rate * 1.9 * (g[i] +
					    (decays ? 0.01 * p0[i] : 0));
				double d = fabs(n->params[i] - want);

				if (!(d <= worst[adam]))	/* NaN too */
					worst[adam] = d;
				bn_biases += !adam && L->type == KZ_BN && bias;
			}
		}
		frozen_layer = (int)n->layers[n->nlayers - 1].type;
		kz_opt_free(&o);
	}
	fprintf(stderr, "bn-lr: worst error sgd %.2g, adam %.2g\n", worst[0],
	    worst[1]);
	check(bn_biases == 3 && frozen_layer == KZ_DENSE && worst[0] < 1e-6 &&
	    worst[1] < 1e-6, "bn-lr: BN shifts step at 4 times the rate, "
	    "frozen parameters not at all, the rest at the rate");
done:
	free(p0);
	free(g);
	kz_net_free(n);
}

/* kz_net_whiten's filters against what defines a whitening, from a
 * second moment computed here: scaled to unit length, the rows u_j are
 * orthonormal, u_i C u_j is 0 off the diagonal and lambda_j on it, with
 * lambda_j = 1 / |w_j|^2 - 5e-4 falling and summing to C's trace; the
 * second half negates the first; the biases are 0. */
static void
test_whiten(void)
{
	enum { N = 300, S = 8, K = 2, D = K * K };
	static uint8_t pix[N * S * S];
	static int32_t lab[N];
	struct kz_dataset d = { N, S, S, 2, pix, lab };
	struct kz_shape in = { 1, S, S };
	struct kz_err e;
	struct kz_net *n = kz_net_new("cnn:conv8k2,gap", in, 2, 3, &e);
	struct kz_net *odd = kz_net_new("cnn:conv3k2,gap", in, 2, 3, &e);
	struct kz_net *wide = kz_net_new("cnn:conv10k2,gap", in, 2, 3, &e);
	uint32_t r = 12345;
	double c[D][D] = { { 0 } }, count = 0, worst = 0, lambda[D];
	float mean, std;

	/* Pixels that share a random base with their right and lower
	 * neighbours, so the patches' directions have unequal variances. */
	for (int i = 0; i < N; i++) {
		int base[S + 1][S + 1];

		for (int y = 0; y <= S; y++)
			for (int x = 0; x <= S; x++) {
				r = r * 1103515245u + 12345u;
				base[y][x] = (int)(r >> 16) % 64;
			}
		for (int y = 0; y < S; y++)
			for (int x = 0; x < S; x++)
				pix[(i * S + y) * S + x] = (uint8_t)(base[y][x] +
				    base[y][x + 1] + base[y + 1][x] +
				    (x + y) % 3 * 20);
		lab[i] = i % 2;
	}
	if (n == NULL || odd == NULL || wide == NULL) {
		check(0, "whiten: set up");
		goto done;
	}
	kz_dataset_stats(&d, &mean, &std);
	for (int i = 0; i < N; i++)
		for (int y = 0; y + K <= S; y++)
			for (int x = 0; x + K <= S; x++) {
				double p[D];

				for (int j = 0; j < D; j++)
					p[j] = (pix[(i * S + y + j / K) * S + x +
					    j % K] / 255.0 - mean) / std;
				for (int a = 0; a < D; a++)
					for (int b = 0; b < D; b++)
						c[a][b] += p[a] * p[b];
				count++;
			}
	if (kz_net_whiten(n, &d, mean, std, &e) != 0) {
		check(0, "whiten: whitens");
		goto done;
	}
	const struct kz_layer *L = &n->layers[0];
	const float *w = n->params + L->w_off;
	double u[D][D], trace = 0, sum = 0;

	for (int j = 0; j < D; j++) {
		double len2 = 0;

		for (int k = 0; k < D; k++) {
			len2 += (double)w[j * D + k] * w[j * D + k];
			if (w[(j + D) * D + k] != -w[j * D + k])
				worst = INFINITY;
		}
		lambda[j] = 1 / len2 - 5e-4;
		sum += lambda[j];
		trace += c[j][j] / count;
		for (int k = 0; k < D; k++)
			u[j][k] = w[j * D + k] / sqrt(len2);
		if (j > 0 && lambda[j] > lambda[j - 1])
			worst = INFINITY;
	}
	for (int i = 0; i < D; i++)
		for (int j = 0; j < D; j++) {
			double dot = 0, quad = 0;

			for (int a = 0; a < D; a++) {
				dot += u[i][a] * u[j][a];
				for (int b = 0; b < D; b++)
					quad += u[i][a] * c[a][b] / count *
					    u[j][b];
			}
			double err = fmax(fabs(dot - (i == j)),
			    fabs(quad - (i == j ? lambda[i] : 0)) / trace);

			if (!(err <= worst))	/* NaN too */
				worst = err;
		}
	for (int j = 0; j < L->out.c; j++)
		if (n->params[L->b_off + j] != 0)
			worst = INFINITY;
	fprintf(stderr, "whiten: variances %.3g %.3g %.3g %.3g, worst error "
	    "%.2g\n", lambda[0], lambda[1], lambda[2], lambda[3], worst);
	check(worst < 1e-4 && fabs(sum - trace) < 1e-4 * trace &&
	    lambda[D - 1] > 0, "whiten: the first layer whitens the patches");
	check(kz_net_whitened(n, &d, mean, std) == 1, "whiten: recognised");
	n->params[L->w_off + 5] += 1e-6f;
	check(kz_net_whitened(n, &d, mean, std) == 0, "whiten: a changed "
	    "filter is not a whitening");
	check(kz_net_whiten(odd, &d, mean, std, &e) != 0 &&
	    kz_net_whiten(wide, &d, mean, std, &e) != 0, "whiten: refuses an "
	    "odd count of outputs and more than 2 k^2");
done:
	kz_net_free(n);
	kz_net_free(odd);
	kz_net_free(wide);
}

/* kz_hard_weights against selections made by hand. */
static void
test_hard_weights(void)
{
	float cost[6] = { 0.5f, 2, 2, 0.1f, 3, 1 }, w[6] = { 1, 1, 1, 1, 1, 3 };
	float want[6] = { 0, 2, 2, 0, 2, 0 };
	float tie[5] = { 1, 1, 1, 1, 1 }, tw[5] = { 1, 1, 1, 1, 1 };
	float twant[5] = { 5 / 3.0f, 5 / 3.0f, 5 / 3.0f, 0, 0 };

	kz_hard_weights(cost, 6, 0.5f, w);
	kz_hard_weights(tie, 5, 0.5f, tw);
	check(memcmp(w, want, sizeof(w)) == 0 && memcmp(tw, twant,
	    sizeof(tw)) == 0, "hard: the largest losses kept, ties to the "
	    "earlier, weights scaled by b over the count");
}

static void
test_ema(void)
{
	struct kz_err e;
	struct kz_shape in = { 1, 4, 4 };
	struct kz_net *n = kz_net_new("cnn:conv2k3p1,bn,relu,gap", in, 2, 3,
	    &e);
	uint8_t pix[8 * 16];
	int32_t lab[8];
	struct kz_dataset d = { 8, 4, 4, 2, pix, lab };
	struct kz_train_opts o = { .epochs = 2, .batch = 8, .threads = 1,
	    .opt = KZ_SGD, .lr = 0.5f, .momentum = 0.9f, .seed = 1,
	    .ema = 0.2f };
	struct kz_epoch_stats st;

	for (int i = 0; i < 8 * 16; i++)
		pix[i] = (uint8_t)(i * 37 % 256);
	for (int i = 0; i < 8; i++)
		lab[i] = i % 2;
	struct kz_trainer *t = n ? kz_trainer_new(n, &d, &o, 0.5f, 0.3f,
	    &e) : NULL;
	size_t np = n ? n->nparams : 0, ns = n ? n->nstate : 0;
	double *avg = malloc((np + ns) * sizeof(double));
	float *w2 = malloc((np + ns) * sizeof(float) + 4);

	if (t == NULL || avg == NULL || w2 == NULL) {
		check(0, "ema: set up");
		goto done;
	}
	for (size_t i = 0; i < np + ns; i++)
		avg[i] = i < np ? n->params[i] : n->state[i - np];
	for (int step = 1; step <= 2; step++) {
		/* Step 1 takes the warm-up's 2/11, step 2 the decay. */
		double a = 1 - fmin(0.2, (1.0 + step) / (10.0 + step));

		kz_trainer_epoch(t, &st, NULL, NULL);
		for (size_t i = 0; i < np + ns; i++) {
			double w = i < np ? n->params[i] : n->state[i - np];

			avg[i] += a * (w - avg[i]);
		}
	}
	memcpy(w2, n->params, np * sizeof(float));
	memcpy(w2 + np, n->state, ns * sizeof(float));
	kz_trainer_swap_ema(t);
	double worst = 0, moved = 0;
	for (size_t i = 0; i < np + ns; i++) {
		double got = i < np ? n->params[i] : n->state[i - np];

		worst = fmax(worst, fabs(got - avg[i]));
		moved = fmax(moved, fabs(got - w2[i]));
	}
	kz_trainer_swap_ema(t);
	check(worst < 1e-6 && moved > 1e-3 && ns > 0,
	    "ema: the average after two steps follows the formula");
	check(memcmp(n->params, w2, np * sizeof(float)) == 0 &&
	    memcmp(n->state, w2 + np, ns * sizeof(float)) == 0,
	    "ema: swapping twice gives the weights back");
done:
	free(avg);
	free(w2);
	kz_trainer_free(t);
	kz_net_free(n);
}

/* Softmax regression's mean cross-entropy gradient over the batch,
 * written out here: dW = (p - y) x^T / n, db = (p - y) / n, for W
 * [C][F] then b [C] in w. */
static void
linear_grad(const double *w, const float *x, const int32_t *y, int n, int F,
    int C, double *g)
{
	memset(g, 0, (size_t)(C * F + C) * sizeof(double));
	for (int i = 0; i < n; i++) {
		double z[4], m = -1e300, sum = 0;

		for (int c = 0; c < C; c++) {
			z[c] = w[C * F + c];
			for (int f = 0; f < F; f++)
				z[c] += w[c * F + f] * x[i * F + f];
			m = fmax(m, z[c]);
		}
		for (int c = 0; c < C; c++)
			sum += exp(z[c] - m);
		for (int c = 0; c < C; c++) {
			double d = (exp(z[c] - m) / sum - (c == y[i])) / n;

			for (int f = 0; f < F; f++)
				g[c * F + f] += d * x[i * F + f];
			g[C * F + c] += d;
		}
	}
}

/* One step of --sam on softmax regression, the whole set one batch, by
 * the rule: g0 the gradient at w0, e = rho g0 / |g0|, w1 = w0 - lr
 * g(w0 + e) (SGD without momentum or decay). */
static void
test_sam(void)
{
	enum { N = 8, F = 16, C = 3 };
	struct kz_err e;
	struct kz_shape in = { 1, 4, 4 };
	struct kz_net *n = kz_net_new("linear", in, C, 4, &e);
	uint8_t pix[N * F];
	int32_t lab[N];
	float x[N * F];
	struct kz_dataset d = { N, 4, 4, C, pix, lab };
	struct kz_train_opts o = { .epochs = 1, .batch = N, .threads = 1,
	    .opt = KZ_SGD, .lr = 0.5f, .seed = 1, .sam = 0.3f };
	struct kz_epoch_stats st;
	double w0[C * F + C], g[C * F + C], w[C * F + C], g1[C * F + C];
	double norm = 0;
	double worst = 0, plain = 0;

	for (int i = 0; i < N * F; i++)
		pix[i] = (uint8_t)(i * 53 % 256);
	for (int i = 0; i < N; i++)
		lab[i] = i % C;
	kz_standardise(pix, N * F, 0.5f, 0.3f, x);
	struct kz_trainer *t = n ? kz_trainer_new(n, &d, &o, 0.5f, 0.3f,
	    &e) : NULL;
	if (t == NULL || n->nparams != C * F + C) {
		check(0, "sam: set up");
		goto done;
	}
	for (int i = 0; i < C * F + C; i++)
		w0[i] = n->params[i];
	linear_grad(w0, x, lab, N, F, C, g);
	for (int i = 0; i < C * F + C; i++)
		norm += g[i] * g[i];
	for (int i = 0; i < C * F + C; i++)
		w[i] = w0[i] + 0.3 * g[i] / sqrt(norm);
	linear_grad(w, x, lab, N, F, C, g1);
	kz_trainer_epoch(t, &st, NULL, NULL);
	for (int i = 0; i < C * F + C; i++) {
		worst = fmax(worst, fabs(n->params[i] - (w0[i] - 0.5 * g1[i])));
		plain = fmax(plain, fabs(n->params[i] - (w0[i] - 0.5 * g[i])));
	}
	fprintf(stderr, "sam: worst error %.2g; %.2g from a plain step\n",
	    worst, plain);
	check(worst < 1e-5 && plain > 1e-3, "sam: the step takes the "
	    "gradient at w + rho g / |g| and steps from w");
done:
	kz_trainer_free(t);
	kz_net_free(n);
}

/* Shear moves each row sideways in proportion to its distance from the
 * centre row: dots at (4, 0) and (4, 8) of a 9 x 9 image land at
 * 4 -+ 4k, k the shear drawn after the four draws of rotation, scale
 * and shift.  Without shear, only those four are drawn. */
static void
test_shear(void)
{
	struct kz_augment a;
	struct kz_err e;
	struct kz_rng r, q;
	uint8_t src[81] = { 0 };
	float dst[81];

	src[4] = 255;
	src[8 * 9 + 4] = 255;
	kz_augment_parse("shear=0.5", &a, &e);
	kz_rng_seed(&r, 7);
	q = r;
	for (int i = 0; i < 4; i++)
		kz_rng_uniform(&q);
	double k = (2 * kz_rng_uniform(&q) - 1) * 0.5;
	kz_augment_image(src, 9, 9, &a, &r, 0, 1 / 255.0f, dst);
	double worst = 0, other = 0;
	for (int row = 0; row <= 8; row += 8) {
		double m = 0, mx = 0;

		for (int x = 0; x < 9; x++) {
			m += dst[row * 9 + x];
			mx += x * dst[row * 9 + x];
		}
		double want = 4 + (row ? 4 : -4) * k;
		worst = fmax(worst, fabs(mx / m - want) + fabs(m - 255) / 255);
	}
	for (int i = 9; i < 72; i++)
		other += fabs(dst[i]);
	check(fabs(k) > 0.05 && worst < 1e-4 && other < 1e-4,
	    "augment: shear moves rows by k times their offset");
	kz_augment_parse("shift=2,rotate=5", &a, &e);
	kz_rng_seed(&r, 7);
	q = r;
	for (int i = 0; i < 4; i++)
		kz_rng_uniform(&q);
	kz_augment_image(src, 9, 9, &a, &r, 0, 1 / 255.0f, dst);
	check(kz_rng_next(&r) == kz_rng_next(&q),
	    "augment: without shear, four draws, as before it existed");
}

/* Seeds r and draws into grid, from a copy of r, what kz_augment_image
 * draws for elastic=E alone: four for the warp, then the bend's (dx, dy)
 * for each of the 5 x 5 grid points, row by row.  Returns the copy,
 * which should then match r. */
static struct kz_rng
elastic_grid(struct kz_rng *r, uint64_t seed, double E, float grid[5][5][2])
{
	struct kz_rng q;

	kz_rng_seed(r, seed);
	q = *r;
	for (int i = 0; i < 4; i++)
		kz_rng_uniform(&q);
	for (int j = 0; j < 5; j++)
		for (int i = 0; i < 5; i++)
			for (int c = 0; c < 2; c++)
				grid[j][i][c] = (float)((2 *
				    kz_rng_uniform(&q) - 1) * E);
	return q;
}

/* elastic=E alone: after the four warp draws, (dx, dy) for each point
 * of a 5 x 5 grid over the corner pixels, uniform in [-E, E]; a pixel
 * reads the source moved by those bilinear between its cell's corners.
 * A ramp shows the move: 20 * x read at x + dx is 20 * (x + dx).  The
 * image is 9 x 5, so that the grid's columns (every 2 pixels) and rows
 * (every pixel) differ; a 1 x 5 column has a single grid column. */
static void
test_elastic(void)
{
	struct kz_augment a;
	struct kz_err e;
	struct kz_rng r, q;
	uint8_t ramp[2][45];
	float dst[45], grid[5][5][2];
	double worst = 0, most = 0;
	int seen = 0;

	for (int i = 0; i < 45; i++) {
		ramp[0][i] = (uint8_t)(20 * (i % 9));
		ramp[1][i] = (uint8_t)(20 * (i / 9));
	}
	check(kz_augment_parse("elastic=1.5", &a, &e) == 0 && a.elastic == 1.5f
	    && kz_augment_parse("elastic=17", &a, &e) != 0,
	    "augment: elastic from 0 to 16 pixels");
	kz_augment_parse("elastic=1.5", &a, &e);
	for (int k = 0; k < 2; k++) {
		q = elastic_grid(&r, 11, 1.5, grid);
		kz_augment_image(ramp[k], 9, 5, &a, &r, 0, 1 / 255.0f, dst);
		check(kz_rng_next(&r) == kz_rng_next(&q),
		    "augment: elastic draws 50 numbers after the warp's four");
		for (int y = 0; y < 5; y++)
			for (int x = 0; x < 9; x++) {
				int i = x / 2 < 4 ? x / 2 : 3;
				int j = y < 4 ? y : 3;
				double fu = x / 2.0 - i, fv = y - j, m[2];

				for (int c = 0; c < 2; c++)
					m[c] = (1 - fv) * ((1 - fu) *
					    grid[j][i][c] + fu *
					    grid[j][i + 1][c]) + fv * ((1 - fu) *
					    grid[j + 1][i][c] + fu *
					    grid[j + 1][i + 1][c]);
				double sx = x + m[0], sy = y + m[1];

				if (sx < 0 || sx > 8 || sy < 0 || sy > 4)
					continue;
				seen++;
				most = fmax(most, fabs(m[k]));
				worst = fmax(worst, fabs(dst[y * 9 + x] -
				    20 * (k ? sy : sx)));
			}
	}
	check(seen > 30 && most > 0.5 && worst < 1e-3,
	    "augment: elastic moves each pixel by the grid's bilinear bend");
	/* A column: every pixel reads grid column 0, moved down by dy. */
	elastic_grid(&r, 12, 1.5, grid);
	uint8_t col[5] = { 0, 20, 40, 60, 80 };
	kz_augment_image(col, 1, 5, &a, &r, 0, 1 / 255.0f, dst);
	worst = 0;
	for (int y = 0; y < 5; y++) {
		double sy = y + grid[y][0][1];

		/* Off the column (x moved) the pixel fades to the
		 * background in proportion: bilinear with 0 beyond. */
		double wx = fmax(0, 1 - fabs(grid[y][0][0]));
		if (sy >= 0 && sy <= 4)
			worst = fmax(worst, fabs(dst[y] - wx * 20 * sy));
	}
	check(worst < 1e-3, "augment: elastic on a one-pixel-wide image");
}

/* stroke=W alone: one draw, t uniform in [-W, W]; t > 0 moves each
 * pixel t of the way to its 3 x 3 neighbourhood's largest value, t < 0
 * |t| of the way to its smallest.  An ink dot spreads over its
 * neighbours (clipped at the edge) at t times its ink; a bar three
 * pixels wide keeps its middle column and loses |t| of its sides.  The
 * bar is also standardised (mean 0.3, std 0.4), where the same bend
 * holds of (x / 255 - 0.3) / 0.4. */
static void
test_stroke(void)
{
	struct kz_augment a;
	struct kz_err e;
	struct kz_rng r, q;
	uint8_t dot[20] = { 0 }, bar[25] = { 0 };
	float dst[25];
	int thick = 0, thin = 0, bad = 0;

	check(kz_augment_parse("stroke=0.5", &a, &e) == 0 && a.stroke == 0.5f
	    && kz_augment_parse("stroke=1.5", &a, &e) != 0,
	    "augment: stroke from 0 to 1");
	dot[0 * 5 + 4] = 200;		/* the top right corner */
	dot[2 * 5 + 1] = 100;		/* row 2, column 1 */
	for (int i = 0; i < 25; i++)
		bar[i] = i % 5 >= 1 && i % 5 <= 3 ? 100 : 0;
	kz_augment_parse("stroke=1", &a, &e);
	for (uint64_t seed = 1; seed <= 40; seed++) {
		kz_rng_seed(&r, seed);
		q = r;
		double t = 2 * kz_rng_uniform(&q) - 1, worst = 0;

		kz_augment_image(dot, 5, 4, &a, &r, 0, 1 / 255.0f, dst);
		if (kz_rng_next(&r) != kz_rng_next(&q))
			worst = 1e9;
		for (int y = 0; y < 4; y++)
			for (int x = 0; x < 5; x++) {
				int near1 = abs(x - 1) <= 1 && abs(y - 2) <= 1;
				int near4 = x >= 3 && y <= 1;
				double want = dot[y * 5 + x];

				if (t > 0 && near4)
					want = want + t * (200 - want);
				if (t > 0 && near1 && !near4)
					want = want + t * (100 - want);
				if (t < 0 && want > 0)
					want *= 1 + t;
				worst = fmax(worst, fabs(dst[y * 5 + x] - want));
			}
		for (int scaled = 0; scaled < 2; scaled++) {
			float mean = scaled ? 0.3f : 0;
			float sd = scaled ? 0.4f : 1 / 255.0f;

			kz_rng_seed(&r, seed);
			kz_augment_image(bar, 5, 5, &a, &r, mean, sd, dst);
			for (int i = 0; i < 25; i++) {
				int x = i % 5;
				double want = x == 2 ? 100 : x == 0 || x == 4 ?
				    (t > 0 ? 100 * t : 0) :
				    (t < 0 ? 100 * (1 + t) : 100);

				want = (want / 255 - mean) / sd;
				worst = fmax(worst, fabs(dst[i] - want));
			}
		}
		if (worst >= 1e-3)
			bad = 1;
		else if (fabs(t) > 0.1)
			*(t > 0 ? &thick : &thin) += 1;
	}
	check(!bad && thick > 3 && thin > 3,
	    "augment: stroke thickens and thins by its drawn weight");
}

static void
test_spec_errors(void)
{
	struct kz_err e;
	struct kz_shape in = { 1, 28, 28 };

	check(kz_net_new("cnn:conv32k3,relu,bogus7", in, 10, 1, &e) == NULL &&
	    strstr(e.msg, "\"bogus7\"") != NULL, "spec: bad token named");
	check(kz_net_new("cnn:maxpool64", in, 10, 1, &e) == NULL &&
	    strstr(e.msg, "does not fit") != NULL, "spec: pool larger than input");
	check(kz_net_new("cnn:drop1.5", in, 10, 1, &e) == NULL,
	    "spec: dropout probability beyond 1");
	check(kz_net_new("rnn:5", in, 10, 1, &e) == NULL &&
	    strstr(e.msg, "expected linear") != NULL, "spec: unknown family");
}

int
main(void)
{
	kz_blas_threads(1);
	gradcheck("linear", 5, 4, 6, 3);
	gradcheck("mlp:7,drop0.3,5", 5, 4, 6, 3);
	gradcheck("cnn:conv3k3,relu,conv4k3s2p1,maxpool2,dense5,relu", 9, 8, 4, 3);
	gradcheck("cnn:conv3k3p1,bn,relu,avgpool2,conv2k1,gap", 8, 8, 5, 3);
	gradcheck("cnn:conv3k2s2,maxpool2s1,dense4,bn,relu", 9, 9, 6, 3);
	gradcheck("cnn:conv4k3p1,res4,res6s2,bn,relu,gap", 8, 8, 4, 3);
	test_conv_direct();
	test_direct_fused();
	test_conv_wide();
	test_fused_inference(4);
	test_fused_inference(11);
	test_res_inference(3);
	test_res_inference(11);
	test_kept_tiles();
	gradcheck("cnn:conv16k3p1,relu,maxpool2,conv16k3,relu,conv16k3p2,dense5", 8, 8, 3, 3);
	gradcheck_work("cnn:conv16k3p1,relu,maxpool2,conv16k3,relu,conv16k3p2,dense5", 8, 8, 3, 3, 0);
	/* Winograd layers with odd outputs (7 x 9, 5 x 7): the last row
	 * and column of tiles reach beyond the edge, as at a ResNet's 7 x 7. */
	gradcheck("cnn:conv16k3p1,relu,conv16k3p1,relu,conv16k3,dense5", 7, 9, 3, 3);
	test_smooth();
	test_nearest();
	test_gemm();
	test_gemm_dots();
	test_bf16_gemm();
	test_bf16_pairs();
	test_bf16_training();
	test_math_choice();
	test_init();
	test_ema();
	test_whiten();
	test_hard_weights();
	test_sam();
	test_bn_bias_lr();
	test_shear();
	test_elastic();
	test_stroke();
	test_spec_errors();
	test_utf8();
	test_shift();
	test_codepoint();
	test_header();
	test_classmap();
	test_variants();
	test_detect();
	return failed;
}
