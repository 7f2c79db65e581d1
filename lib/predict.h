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

/* A model made ready to classify batches of up to maxb images. */
struct kz_predictor;
struct kz_predictor *kz_predictor_new(const struct kz_model *m, int threads,
    int maxb, struct kz_err *e);
/* Class probabilities ([n][nclasses]) of n <= maxb images of the
 * model's geometry. */
int kz_predict(struct kz_predictor *p, const uint8_t *pixels, size_t n,
    float *probs, struct kz_err *e);
void kz_predictor_free(struct kz_predictor *p);

#endif
