/*
 * predict.h - classifying batches with a model, and the threads that
 * the library's parallel work runs on.  Part of the kz library.
 */
#ifndef KZ_PREDICT_H
#define KZ_PREDICT_H

#include "model.h"

/* Runs fn(0..threads-1, arg) on threads threads (the caller is one of
 * them) and waits for all. */
void kz_parallel(int threads, void (*fn)(int, void *), void *arg);
/* Sets the BLAS library's own thread count for the whole process.  The
 * library's parallel work (trainer, predictor) runs on kz_parallel's
 * threads, each calling BLAS, and wants 1: a program calls this once,
 * before that work, and owns the setting. */
void kz_blas_threads(int n);
/* Number of online processors. */
int kz_ncpu(void);

/* Converts 8-bit pixels to the net's input: (p / 255 - mean) / std. */
void kz_standardise(const uint8_t *p, size_t n, float mean, float std,
    float *x);

/* A net classifies a batch in chunks of this many images from its
 * start, each on one thread; an image's results depend on its chunk
 * only.  So batches that start at multiples of it (and shards of a
 * stream, kz-split -n) give every image the same bytes.  Small, so
 * that a chunk's activations stay in cache from one layer to the
 * next: on 100,000 images 32 ran the ResNet-20 1.23x and the simple
 * CNN 1.33x as fast as 256 did (16 suits the ResNet alone). */
#define KZ_PREDICT_CHUNK 32

/* A model made ready to classify batches of up to maxb images. */
struct kz_predictor;
struct kz_predictor *kz_predictor_new(const struct kz_model *m, int threads,
    int maxb, struct kz_err *e);
/* Class probabilities ([n][nclasses]) of n <= maxb images of the
 * model's geometry; an ensemble's are the mean of its members'. */
int kz_predict(struct kz_predictor *p, const uint8_t *pixels, size_t n,
    float *probs, struct kz_err *e);
/* The features of n <= maxb images (a net's only): what its output
 * layer reads, each scaled to unit length, into feat ([n][F], F =
 * kz_net_nfeatures); their class probabilities too when probs is not
 * NULL.  An ensemble's features and probabilities here are its first
 * member's (kz_model_features), from the images as that member reads
 * them: one network's work, not every member's. */
int kz_predict_features(struct kz_predictor *p, const uint8_t *pixels,
    size_t n, float *feat, float *probs, struct kz_err *e);
void kz_predictor_free(struct kz_predictor *p);
/* A predictor for kz_predict_features alone: for an ensemble, only its
 * first member is made ready (the others' memory is not taken), and
 * kz_predict fails. */
struct kz_predictor *kz_predictor_features_new(const struct kz_model *m,
    int threads, int maxb, struct kz_err *e);

/* The arithmetic of a predictor's 3x3 convolutions (their Winograd
 * products): single precision, the default, or bfloat16 operands with
 * single-precision sums, twice the products per instruction. */
enum kz_math { KZ_MATH_AUTO = -1, KZ_MATH_F32, KZ_MATH_BF16 };
/* Whether this CPU has what KZ_MATH_BF16 needs (AVX512_BF16). */
int kz_bf16_ok(void);
/* Parses the word of the programs' -p option (auto, f32 or bf16) into
 * *math; -1 for any other word. */
int kz_math_parse(const char *word, enum kz_math *math);
/* The arithmetic to run when asked for this one on this CPU: AUTO is
 * BF16 where kz_bf16_ok(), else F32; BF16 where not kz_bf16_ok() falls
 * back to F32 and sets *why to the reason, else *why is NULL. */
enum kz_math kz_math_resolve(enum kz_math asked, const char **why);
/* Whether KZ_MATH_F32 takes its products with kz's own AVX-512 kernels
 * (the CPU has AVX-512F and VL, and KZ_NO_AVX512 is unset or empty),
 * not with OpenBLAS; the sums are then in another order, so the last
 * bits of the scores differ. */
int kz_avx512_ok(void);
/* Sets p's arithmetic (an ensemble's members' too): KZ_MATH_BF16 only
 * where kz_bf16_ok(), else -1, p keeping single precision. */
int kz_predictor_math(struct kz_predictor *p, enum kz_math math,
    struct kz_err *e);

/* For each of nq query features q ([nq][F]), the count (1 to 1024)
 * nearest of n index features ([n][F]) by dot product (the cosine, for
 * unit features): idx and sim ([nq][count]) get their positions and
 * products, the nearest first, the earlier first among equals.  The
 * products are sgemm's, on threads threads, in blocks of queries. */
int kz_nearest(const float *index, size_t n, const float *q, size_t nq,
    int F, int count, int threads, uint32_t *idx, float *sim,
    struct kz_err *e);

#endif
