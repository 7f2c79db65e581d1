/*
 * model.h - model files (man kzm.5): kNN and net models, and the
 * checkpoints that continue training.  Part of the kz library.
 */
#ifndef KZ_MODEL_H
#define KZ_MODEL_H

#include "net.h"

#define KZM_MAGIC "\x8bKZM\r\n\x1a\n"
#define KZM_VERSION 1

enum kz_model_type { KZ_MODEL_KNN = 1, KZ_MODEL_NET = 2,
    KZ_MODEL_ENSEMBLE = 3 };

#define KZ_MAX_MEMBERS 32	/* models in an ensemble, at most */
#define KZ_Q8_BLOCK 32		/* parameters per scale in PQ8 */

/* What a checkpoint adds to a model: enough to continue training. */
struct kz_train_state {
	int present;
	uint32_t epoch;			/* epochs completed */
	struct kz_rng rng;
	uint64_t opt_step;
	float *opt_m, *opt_v;		/* nparams each */
	double best;			/* best validation accuracy so far */
	float *best_params, *best_state;	/* NULL unless kept */
	uint32_t best_epoch;
	float *ema_params, *ema_state;	/* NULL unless --ema */
	float ema;			/* its decay */
};

/* How a net's parameters are stored: as floats (PARM), as IEEE
 * half-precision floats (PF16), as 8-bit integers with a float scale
 * for each block of KZ_Q8_BLOCK (PQ8), or as integers 2 to 8 bits wide
 * with a width and a 13-bit scale for each block (PQN; files of PQ4,
 * its older form, read as KZ_QN too); converted to float when read.
 * A KZ_QN model's qdense and qconv give the widths of the blocks that
 * hold only dense layers' weights and only convolutions' weights; the
 * other blocks (biases, normalisation) take 8 bits. */
enum kz_precision { KZ_F32, KZ_F16, KZ_Q8, KZ_QN };

/* What kz-classify does with a model unless told otherwise: META keys
 * "setting_NAME".  0 for each is what kz-classify does without it. */
struct kz_settings {
	int shift;			/* "shift": -s, average the image
					   and its moves by this, 0 to 8 */
	int zoom;			/* "zoom": -z, read the image scaled
					   by 1 - zoom% and 1 + zoom%, 0 to
					   20, in place of it as given */
	int rotate;			/* "rotate": -r, read the image also
					   turned by this many degrees
					   either way, 0 to 30 */
};
#define KZ_SETTINGS_TEXT 256
/* Sets one setting from "name=value"; -1 naming an unknown name or a
 * value out of range. */
int kz_settings_set(struct kz_settings *s, const char *nv,
    struct kz_err *e);
/* The settings not at 0, as "name=value" separated by spaces, into buf
 * (size bytes); "" when none. */
void kz_settings_format(const struct kz_settings *s, char *buf,
    size_t size);

struct kz_model {
	enum kz_model_type type;
	char *arch;			/* "knn" or a net architecture */
	uint32_t width, height, nclasses;
	float mean, std;		/* input: (pixel / 255 - mean) / std */
	char *command, *date;		/* how and when it was trained */
	char *version;			/* by which kz ("kz_version"), NULL:
					   unknown (older files) */
	char *figures;			/* what it scored, as its maker
					   states it ("figures"), or NULL */
	struct kz_classmap classmap;	/* the characters of the classes
					   (section CMAP); n 0: none stored */
	struct kz_settings settings;	/* test-time defaults */
	enum kz_precision precision;	/* of PARM in the file (a
					   checkpoint is always KZ_F32) */
	int qdense, qconv;		/* KZ_QN: bits, 2 to 8 */
	uint32_t knn_k;			/* kNN: neighbours */
	int knn_distance;		/* kNN: 1 = weights 1/distance */
	uint64_t n;			/* kNN: training records */
	uint8_t *pixels;		/* kNN: n * width * height */
	int32_t *labels;		/* kNN: n */
	struct kz_net *net;		/* net models */
	struct kz_train_state ts;	/* checkpoints only */
	/* Ensembles: nets and kNN models of the same classes, whose
	 * probabilities are averaged; each stored whole, as a model file,
	 * in a section MEMB.  A member's size is the ensemble's or divides
	 * it (kz_model_member_fits). */
	int nmembers;
	struct kz_model *members;
};

/* Whether member can join an ensemble of w x h images and nclasses:
 * the same classes, and a width and height that divide w and h.  A
 * smaller member reads each image averaged over blocks down to its
 * size, as kz_norm_resize gives it (a 32x32 net in a 64x64 ensemble
 * sees what kz-norm -r 32x32 makes of the image). */
int kz_model_member_fits(const struct kz_model *member, uint32_t w,
    uint32_t h, uint32_t nclasses);

/* The net whose penultimate features stand for m (kz-similar): m
 * itself for a net, an ensemble's first member when that is a net;
 * NULL otherwise. */
const struct kz_model *kz_model_features(const struct kz_model *m);

/* Writes m atomically (temporary file renamed over path); the last
 * section holds a CRC-32 of everything before it. */
int kz_model_write(const struct kz_model *m, const char *path,
    struct kz_err *e);
/* Reads and checks a model: magic, version, CRC, every section's size
 * against the architecture, before anything is allocated from it. */
int kz_model_read(const char *path, struct kz_model *m, struct kz_err *e);
void kz_model_free(struct kz_model *m);

/* ---- models by name ------------------------------------------------ */

#define KZ_DIR_MAX 4096		/* bytes of a directory's name */
#define KZ_MODEL_DIRS 32	/* directories searched, at most */

/* The directories where models are looked for by name, in order, into
 * dirs (at most max): each of search_path (KZ_MODEL_PATH's value:
 * colon-separated, may be NULL), ../share/kz beside the running program
 * (where make install or a package put it), sharedir (compiled in, may
 * be NULL), and models/ of the source tree when the program runs from
 * its build there.  Returns how many; no directory twice. */
int kz_model_dirs(const char *search_path, const char *sharedir,
    char dirs[][KZ_DIR_MAX], int max);
/* The file of the model called name, into path (size bytes): name
 * itself when it is a path (it holds a '/' or ends in ".kzm") or a
 * readable file here; else NAME.kzm in the first of kz_model_dirs that
 * has it.  -1 naming every directory searched. */
int kz_model_find(const char *name, const char *search_path,
    const char *sharedir, char *path, size_t size, struct kz_err *e);

/* A similar-glyphs index (kz-similar(1)): the features a net model
 * gives n images, with the images and their labels. */
struct kz_glyphs {
	uint32_t model_crc;		/* kz_model_params_crc of the model */
	size_t n;
	int F;				/* features per image */
	uint32_t width, height, nclasses;
	int32_t *label;			/* n */
	uint64_t *index;		/* n: the records' index fields */
	float *feat;			/* [n][F], each of unit length */
	uint8_t *pixels;		/* [n][width * height] */
	/* Read from a file: feat and pixels lie in it, read-only (feat in
	 * feat_copy where the file's floats cannot be used as they are). */
	struct kz_file *file;
	float *feat_copy;
};
/* A CRC-32 of a net model's parameters and statistics: what ties an
 * index to the model whose features it holds. */
uint32_t kz_model_params_crc(const struct kz_model *m);
/* Writes g atomically, with a CRC-32 at the end. */
int kz_glyphs_write(const struct kz_glyphs *g, const char *path,
    struct kz_err *e);
/* Reads an index, its size checked against its header before anything
 * is allocated, labels against its classes, features finite. */
int kz_glyphs_read(const char *path, struct kz_glyphs *g, struct kz_err *e);
void kz_glyphs_free(struct kz_glyphs *g);

#endif
