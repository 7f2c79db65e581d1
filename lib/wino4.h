/*
 * wino4.h - the eight-lane passes of wino4.c's F(4x4, 3x3) convolution
 * (wino4_lanes.c): for wino4.c only.  AVX-512 only, and
 * wino4_pairs_lanes AVX512_BF16 too: called where the work's math says
 * the CPU has them.
 */
#ifndef KZ_WINO4_H
#define KZ_WINO4_H

#include <stddef.h>
#include <stdint.h>

/* Floats of the passes' buffers, xt, for TH x TW tiles (two channels'
 * column transforms: wino4_pairs_lanes). */
size_t wino4_lanes_floats(int TH, int TW);
/* V[e][c][n] = (B' d B)[e] as wino4_conv's own passes compute them, for
 * images b0 .. b0 + nb - 1 of x [C][B][H][W] padded by P, through the
 * batch norm pre [4][C] and a ReLU if pre is not NULL; but n = t nb + b
 * - b0 for tile t (of TH x TW) of image b. */
void wino4_tiles_lanes(const float *x, int C, int H, int W, int P,
    const float *pre, int B, int b0, int nb, int TH, int TW, float *xt,
    float *V, size_t vs);
/* The same tiles as pairs of bfloat16 (kz_bf16_ok() only), as
 * bf16_gemm_pairs reads them: Vp[e][k][n] holds channels 2k (low half)
 * and 2k + 1 (zero past C), rounded as bf16_pack_rows rounds; planes
 * vs and rows ldp apart (4-byte units). */
void wino4_pairs_lanes(const float *x, int C, int H, int W, int P,
    const float *pre, int B, int b0, int nb, int TH, int TW, float *xt,
    uint32_t *Vp, size_t vs, size_t ldp);
/* One channel's outputs of nb images, from their 16 planes Y (N floats
 * apart; n as wino4_tiles_lanes'; S x S outputs a tile, the first S x
 * S planes) into img's planes (plane floats apart; YH x YW each), plus
 * res's (the same places) if it is not NULL. */
void wino4_place_lanes(const float *Y, size_t N, int S, int TW, int nb,
    int YH, int YW, const float *res, float *img, size_t plane);

#endif
