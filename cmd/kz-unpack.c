/*
 * kz-unpack - turn datasets and images into a kz record stream.
 *
 * Formats are told by content: npz/npy/idx arrays (an image array
 * optionally followed by its label array), Kuzushiji-Kanji trees as
 * directories or tar(.gz) archives, CODH books (a coordinate file and
 * its page images, one record per character box), PNG, JPEG and PNM
 * images.  --fit and --resize give every image one size as it is
 * read, with kz-norm's code.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"

#define ARRAY_MAX_BYTES ((size_t)KZ_MAX_ARRAY_BYTES + 65536)
#define IMAGE_MAX_BYTES ((size_t)256 << 20)
#define DECODE_BATCH 4096

enum kind { IN_ARRAY, IN_TREE, IN_IMAGES, IN_BOOK };

struct input {
	enum kind kind;
	const char *name;
	uint32_t width, height;
	size_t n;
	struct kz_array images;		/* IN_ARRAY */
	struct kz_array labels;		/* IN_ARRAY, ndim 0 when absent */
	const char *labels_name;
	struct kz_tree tree;		/* IN_TREE */
	struct kz_file *tar;		/* IN_TREE from a tar: its PNGs may
					   lie in it, so it stays open */
	int32_t *tree_label;		/* IN_TREE: class of each entry */
	struct kz_image *imgs;		/* IN_IMAGES */
	struct kz_book book;		/* IN_BOOK */
	int32_t *box_label;		/* IN_BOOK: class of each box */
};

static struct input *inputs;
static size_t ninputs;

/* --fit or --resize: each image's steps as it is read (kz_norm_apply). */
static struct kz_norm_opts geom;
static int geometry;

/* -F: how the labels write old character forms (氣 or 気). */
enum forms { FORMS_AUTO, FORMS_KEEP, FORMS_MODERN };

/* The command line, as parse_command_line leaves it. */
struct cmdline {
	const char *map_path;	/* -c: the class map of the labels */
	const char *map_out;	/* -C: where to write the class map */
	const char *manifest;	/* -M: where each record came from */
	const char *output;	/* -o: the stream, "-" for stdout */
	int drop_unknown;	/* -u: leave out boxes the class map lacks */
	int forms;		/* -F: enum forms */
	char **files;		/* the inputs, in order */
	int nfiles;		/* at least one */
};

/* What the records go to, and how far they have got. */
struct sink {
	struct kz_writer *w;	/* the stream */
	struct kz_out man;	/* -M: the manifest, when given */
	int manifest;		/* whether -M was given */
	struct kz_record *rec;	/* the record being written */
	size_t npix;		/* pixels per image */
	uint64_t seq;		/* index of the next record */
	uint8_t *batch;		/* decoded tree images, DECODE_BATCH */
};

static void
usage(void)
{
	fprintf(stderr, "usage: kz-unpack [-u] [-c classmap] [-C classmap-out] "
	    "[-F keep|modern]\n"
	    "                 [-f WxH | -r WxH] [-M manifest] [-o file] "
	    "file ...\n");
	version_usage("kz-unpack");
	exit(2);
}

static struct input *
new_input(enum kind kind, const char *name)
{
	struct input *in;

	if ((in = realloc(inputs, (ninputs + 1) * sizeof(*in))) == NULL)
		err(1, NULL);
	inputs = in;
	in = &inputs[ninputs++];
	memset(in, 0, sizeof(*in));
	in->kind = kind;
	in->name = name;
	return in;
}

/* Adds an array: (N,H,W) images start an input; (N,) labels complete
 * the image array just before them. */
static void
add_array(const char *name, struct kz_array *a)
{
	struct input *prev = ninputs ? &inputs[ninputs - 1] : NULL;

	if (a->ndim == 3) {
		struct input *in = new_input(IN_ARRAY, name);

		if (a->dim[1] == 0 || a->dim[2] == 0 ||
		    a->dim[1] > KZ_MAX_DIM || a->dim[2] > KZ_MAX_DIM)
			errx(1, "%s: images of %llux%llu are beyond the limit "
			    "of %dx%d", name, (unsigned long long)a->dim[2],
			    (unsigned long long)a->dim[1], KZ_MAX_DIM,
			    KZ_MAX_DIM);
		in->images = *a;
		in->n = a->dim[0];
		in->height = (uint32_t)a->dim[1];
		in->width = (uint32_t)a->dim[2];
	} else if (a->ndim == 1) {
		if (prev == NULL || prev->kind != IN_ARRAY ||
		    prev->labels.ndim != 0)
			errx(1, "%s: a label array must follow the image array "
			    "it labels", name);
		if (a->dim[0] != prev->n)
			errx(1, "%s: %llu labels for the %zu images of %s",
			    name, (unsigned long long)a->dim[0], prev->n,
			    prev->name);
		prev->labels = *a;
		prev->labels_name = name;
	} else {
		errx(1, "%s: array of %d dimensions is neither images (N,H,W) "
		    "nor labels (N,)", name, a->ndim);
	}
}

static void
add_images(const char *name, struct kz_image *imgs, size_t n)
{
	struct input *in = new_input(IN_IMAGES, name);

	in->imgs = imgs;
	in->n = n;
	in->width = imgs[0].width;
	in->height = imgs[0].height;
	for (size_t i = 0; i < n && !geometry; i++) {
		if (imgs[i].width > KZ_MAX_DIM || imgs[i].height > KZ_MAX_DIM)
			errx(1, "%s: image %zu is %ux%u, beyond the limit of "
			    "%dx%d for a record; give --fit or --resize", name,
			    i, imgs[i].width, imgs[i].height, KZ_MAX_DIM,
			    KZ_MAX_DIM);
		if (imgs[i].width != in->width || imgs[i].height != in->height)
			errx(1, "%s: image %zu is %ux%u, image 0 is %ux%u; "
			    "give --fit or --resize for one size", name, i,
			    imgs[i].width, imgs[i].height, in->width,
			    in->height);
	}
}

static void
add_book(const char *name)
{
	struct input *in = new_input(IN_BOOK, name);
	struct kz_err e;

	if (kz_book_open(name, &in->book, &e) != 0)
		errx(1, "%s", e.msg);
}

/*
 * Arrays named on the command line are read two at a time before
 * anything else (a KMNIST set is four npz files, and inflating them is
 * most of the work), into preloaded[]; read_input then takes each in
 * its turn, so inputs are added, and errors reported, in command-line
 * order as before.  A file that is not an array, or cannot be opened,
 * is left to read_input.
 */
struct preload {
	int state;		/* PRELOAD_NONE, _DONE or _FAILED */
	struct kz_array a;
	struct kz_err e;
};
enum { PRELOAD_NONE, PRELOAD_DONE, PRELOAD_FAILED };
static struct preload *preloaded;
static char **preload_names;
static int npreload, preload_next;
static pthread_mutex_t preload_lock = PTHREAD_MUTEX_INITIALIZER;

static void *
preload_worker(void *arg)
{
	(void)arg;
	for (;;) {
		int i, rc;

		pthread_mutex_lock(&preload_lock);
		i = preload_next++;
		pthread_mutex_unlock(&preload_lock);
		if (i >= npreload)
			return NULL;
		struct preload *p = &preloaded[i];

		rc = kz_array_load_path(preload_names[i], ARRAY_MAX_BYTES,
		    &p->a, &p->e);
		p->state = rc > 0 ? PRELOAD_DONE : rc < 0 ? PRELOAD_FAILED :
		    PRELOAD_NONE;
	}
}

/* Reads the arrays among the n files on two threads (one if a thread
 * cannot be had). */
static void
preload_arrays(char **names, int n)
{
	pthread_t tid;
	int helper;

	if (n < 2)
		return;
	if ((preloaded = calloc((size_t)n, sizeof(*preloaded))) == NULL)
		err(1, NULL);
	preload_names = names;
	npreload = n;
	helper = pthread_create(&tid, NULL, preload_worker, NULL) == 0;
	preload_worker(NULL);
	if (helper)
		pthread_join(tid, NULL);
}

static void
read_input(const char *name, int i)
{
	struct kz_err e;
	struct kz_file *f;
	struct stat st;
	const uint8_t *peek;
	size_t npeek, len;
	uint8_t *buf;

	if (preloaded != NULL && preloaded[i].state == PRELOAD_FAILED)
		errx(1, "%s", preloaded[i].e.msg);
	if (preloaded != NULL && preloaded[i].state == PRELOAD_DONE) {
		add_array(name, &preloaded[i].a);
		return;
	}
	if (stat(name, &st) == 0 && S_ISDIR(st.st_mode) &&
	    kz_book_is_folder(name)) {
		add_book(name);
		return;
	}
	if (stat(name, &st) == 0 && S_ISDIR(st.st_mode)) {
		struct input *in = new_input(IN_TREE, name);

		if (kz_tree_from_dir(name, &in->tree, &e) != 0)
			errx(1, "%s", e.msg);
		if (in->tree.n == 0)
			errx(1, "%s: no U+XXXX/*.png files in this directory",
			    name);
		return;
	}
	if ((f = kz_file_open(name, &e)) == NULL ||
	    kz_file_peek(f, &peek, &npeek, &e) != 0)
		errx(1, "%s", e.msg);
	enum kz_format fmt = kz_detect(peek, npeek);
	if (fmt == KZ_FMT_TAR) {
		struct input *in = new_input(IN_TREE, name);

		if (kz_tree_from_tar(f, &in->tree, &e) != 0)
			errx(1, "%s", e.msg);
		if (in->tree.n == 0)
			errx(1, "%s: no U+XXXX/*.png files in this archive",
			    name);
		in->tar = f;
		return;
	}
	if (fmt == KZ_FMT_UNKNOWN && kz_book_is_csv(peek, npeek)) {
		kz_file_close(f);
		add_book(name);
		return;
	}
	if (fmt == KZ_FMT_UNKNOWN)
		errx(1, "%s: unrecognised format (not npz, npy, idx, tar, "
		    "PNG, JPEG, PNM or a CODH coordinate file)", name);
	if (fmt == KZ_FMT_STREAM)
		errx(1, "%s: already a kz stream", name);
	struct kz_array a;
	struct kz_image *imgs;
	size_t n;
	if (fmt == KZ_FMT_NPZ || fmt == KZ_FMT_NPY || fmt == KZ_FMT_IDX) {
		if (kz_array_load(f, fmt, ARRAY_MAX_BYTES, &a, &e) != 0)
			errx(1, "%s", e.msg);
		add_array(name, &a);
		return;
	}
	if (kz_file_slurp(f, IMAGE_MAX_BYTES, &buf, &len, &e) != 0)
		errx(1, "%s", e.msg);
	kz_file_close(f);

	switch (fmt) {
	case KZ_FMT_PNG:
	case KZ_FMT_JPEG:
		if ((imgs = malloc(sizeof(*imgs))) == NULL)
			err(1, NULL);
		if ((fmt == KZ_FMT_PNG ? kz_png_decode : kz_jpeg_decode)(buf,
		    len, name, imgs, &e) != 0)
			errx(1, "%s", e.msg);
		free(buf);
		add_images(name, imgs, 1);
		break;
	case KZ_FMT_PNM:
		if (kz_pnm_decode(buf, len, name, &imgs, &n, &e) != 0)
			errx(1, "%s", e.msg);
		free(buf);
		add_images(name, imgs, n);
		break;
	default:
		errx(1, "%s: %s input is not supported", name,
		    kz_format_name(fmt));
	}
}

/* The code point of item j of a tree or a book. */
static uint32_t
item_codepoint(const struct input *in, size_t j)
{
	return in->kind == IN_TREE ? in->tree.entries[j].codepoint :
	    in->book.box[j].codepoint;
}

static size_t
item_count(const struct input *in)
{
	return in->kind == IN_TREE ? in->tree.n : in->book.n;
}

static int
compare_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Without a class map, the classes are the code points of every tree
 * and book, sorted: class i is the i-th smallest. */
static void
classes_from_codepoints(struct kz_classmap *map)
{
	struct kz_classmap found = { 0 };
	size_t cap = 0;

	for (size_t i = 0; i < ninputs; i++) {
		struct input *in = &inputs[i];

		if (in->kind != IN_TREE && in->kind != IN_BOOK)
			continue;
		for (size_t j = 0; j < item_count(in); j++) {
			uint32_t cp = item_codepoint(in, j);

			/* Items come grouped: most repeat the last one. */
			if (found.n > 0 && (found.codepoint[found.n - 1] ==
			    cp || kz_classmap_find(&found, cp) >= 0))
				continue;
			if (found.n == cap) {
				cap = cap ? cap * 2 : 1024;
				found.codepoint = realloc(found.codepoint,
				    cap * sizeof(uint32_t));
				if (found.codepoint == NULL)
					err(1, NULL);
			}
			found.codepoint[found.n++] = cp;
		}
	}
	if (found.n == 0)
		return;
	qsort(found.codepoint, found.n, sizeof(uint32_t), compare_u32);
	if ((found.utf8 = calloc(found.n, sizeof(*found.utf8))) == NULL)
		err(1, NULL);
	for (size_t i = 0; i < found.n; i++)
		kz_utf8_encode(found.codepoint[i], found.utf8[i]);
	*map = found;
}

/* Counts the labels of trees and books that are old forms, keeping the
 * first and its input; *books: every input is a book. */
static size_t
old_forms(uint32_t *first, const char **where, int *books)
{
	size_t n = 0;

	*books = ninputs > 0;
	for (size_t i = 0; i < ninputs; i++) {
		const struct input *in = &inputs[i];
		size_t count = in->kind == IN_TREE ? in->tree.n :
		    in->kind == IN_BOOK ? in->book.n : 0;

		*books &= in->kind == IN_BOOK;
		for (size_t j = 0; j < count; j++) {
			uint32_t cp = in->kind == IN_TREE ?
			    in->tree.entries[j].codepoint :
			    in->book.box[j].codepoint;

			if (kz_modern_form(cp) != cp && n++ == 0) {
				*first = cp;
				*where = in->name;
			}
		}
	}
	return n;
}

/* Whether the labels write old forms as modern ones (KZ_FLAG_MODERN):
 * as -F says; without it, when every input is a CODH book and no box
 * is an old form (a transcription that never writes 氣 writes 気, as
 * book 100241706's does).  -F modern over old-form labels warns: each
 * is a certain miss, as kz-classify will not answer it. */
static int
modern_labels(int forms)
{
	uint32_t first = 0;
	const char *where = NULL;
	char u[8];
	int books;
	size_t n = old_forms(&first, &where, &books);

	if (forms == FORMS_MODERN && n > 0) {
		kz_utf8_encode(first, u);
		warnx("-F modern, but %zu labels are old forms (the first: "
		    "%s U+%04X in %s)", n, u, (unsigned)first, where);
	}
	return forms != FORMS_AUTO ? forms == FORMS_MODERN : books && n == 0;
}

/* Gives every tree entry and book box its class: through the class
 * map when given, else the rank of its code point among all of them.
 * A tree's code point must be in the map; a book's box whose code
 * point is not gets KZ_LABEL_UNKNOWN (or, with drop, is left out),
 * counted on stderr. */
static void
assign_classes(struct kz_classmap *map, int have_map, int drop)
{
	size_t unknown = 0;

	if (!have_map)
		classes_from_codepoints(map);
	for (size_t i = 0; i < ninputs; i++) {
		struct input *in = &inputs[i];
		size_t n = item_count(in), kept = 0;
		uint32_t last_cp = 0;
		long last = -1;
		int32_t *label;

		if (in->kind != IN_TREE && in->kind != IN_BOOK)
			continue;
		if ((label = malloc((n ? n : 1) * sizeof(int32_t))) == NULL)
			err(1, NULL);
		for (size_t j = 0; j < n; j++) {
			uint32_t cp = item_codepoint(in, j);

			/* Items come grouped: look up each run once. */
			if (j == 0 || cp != last_cp) {
				last = kz_classmap_find(map, cp);
				last_cp = cp;
			}
			if (last < 0 && in->kind == IN_TREE)
				errx(1, "%s: %s: code point U+%04X is not in the "
				    "class map", in->name,
				    in->tree.entries[j].path, cp);
			if (last < 0)
				unknown++;
			if (last < 0 && drop)
				continue;
			/* Dropping compacts the boxes and their labels. */
			if (in->kind == IN_BOOK)
				in->book.box[kept] = in->book.box[j];
			label[kept++] = (int32_t)last;
		}
		in->n = kept;
		if (in->kind == IN_TREE) {
			in->tree_label = label;
		} else {
			in->box_label = label;
			in->book.n = kept;
		}
	}
	if (unknown > 0)
		fprintf(stderr, "kz-unpack: %zu box%s of code points not in the "
		    "class map %s\n", unknown, unknown == 1 ? "" : "es",
		    drop ? "left out" : "labelled unknown (-1)");
}

/* Fills cl from the command line, or exits 2 with the usage. */
static void
parse_command_line(int argc, char *argv[], struct cmdline *cl)
{
	static const struct option longopts[] = {
		{ "classmap", required_argument, NULL, 'c' },
		{ "classmap-out", required_argument, NULL, 'C' },
		{ "manifest", required_argument, NULL, 'M' },
		{ "output", required_argument, NULL, 'o' },
		{ "fit", required_argument, NULL, 'f' },
		{ "resize", required_argument, NULL, 'r' },
		{ "drop-unknown", no_argument, NULL, 'u' },
		{ "forms", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	memset(cl, 0, sizeof(*cl));
	cl->output = "-";
	kz_norm_defaults(&geom);
	while ((ch = getopt_long(argc, argv, "c:C:F:M:o:f:r:u", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c': cl->map_path = optarg; break;
		case 'C': cl->map_out = optarg; break;
		case 'M': cl->manifest = optarg; break;
		case 'o': cl->output = optarg; break;
		case 'f': size_arg("-f", optarg, &geom.fw, &geom.fh); break;
		case 'r': size_arg("-r", optarg, &geom.rw, &geom.rh); break;
		case 'u': cl->drop_unknown = 1; break;
		case 'F':
			if (strcmp(optarg, "keep") == 0)
				cl->forms = FORMS_KEEP;
			else if (strcmp(optarg, "modern") == 0)
				cl->forms = FORMS_MODERN;
			else
				errx(2, "-F %s: want keep or modern", optarg);
			break;
		default: usage();
		}
	}
	if (geom.fw && geom.rw)
		errx(2, "-f and -r both set the size: give one");
	geometry = geom.fw || geom.rw;
	cl->files = argv + optind;
	cl->nfiles = argc - optind;
	if (cl->nfiles == 0)
		usage();
	refuse_tty(cl->output);
}

/* The stream's header from the inputs, which must agree on the image
 * size; checks array labels against the class map (map_path, when
 * given). */
static void
stream_header(const struct kz_classmap *map, const char *map_path,
    struct kz_header *h)
{
	int have_labels = 0;
	uint32_t max_label = 0;
	struct kz_err e;

	memset(h, 0, sizeof(*h));
	h->pixel = KZ_PIXEL_U8;
	for (size_t i = 0; i < ninputs; i++) {
		struct input *in = &inputs[i];

		if (in->kind == IN_TREE) {
			/* The first image of a tree fixes its geometry. */
			if (kz_tree_size(&in->tree, in->name, &in->width,
			    &in->height, &e) != 0)
				errx(1, "%s", e.msg);
			have_labels = 1;
		}
		if (in->kind == IN_BOOK) {
			if (!geometry)
				errx(1, "%s: its boxes differ in size: give "
				    "--fit or --resize", in->name);
			have_labels = 1;
		}
		if (in->kind == IN_ARRAY && in->labels.ndim == 1) {
			have_labels = 1;
			for (size_t j = 0; j < in->n; j++) {
				uint8_t l = in->labels.data[j];

				if (map_path != NULL && l >= map->n)
					errx(1, "%s: label %u of item %zu is "
					    "not in class map %s (%zu classes)",
					    in->labels_name, l, j, map_path,
					    map->n);
				if (l > max_label)
					max_label = l;
			}
		}
		if (geometry) {
			kz_norm_size(&geom, 0, 0, &h->width, &h->height);
		} else if (i == 0) {
			h->width = in->width;
			h->height = in->height;
		} else if (in->width != h->width || in->height != h->height) {
			errx(1, "%s: images are %ux%u but %s holds %ux%u; give "
			    "--fit or --resize for one size", in->name,
			    in->width, in->height, inputs[0].name, h->width,
			    h->height);
		}
	}
	if (map->n > 0)
		h->nclasses = (uint32_t)map->n;
	else if (have_labels)
		h->nclasses = max_label + 1;
}

/* Gives up: removes the partial stream and manifest, says why. */
static void
abandon(struct sink *o, const char *msg)
{
	kz_writer_abort(o->w);
	kz_out_abort(&o->man);
	errx(1, "%s", msg);
}

/* Decodes the n tree images of in from done on into o->batch, on two
 * threads (one if a thread cannot be had). */
static void
decode_batch(struct input *in, size_t done, size_t n, struct sink *o)
{
	struct kz_err e;

	if (o->batch == NULL && (o->batch = malloc(DECODE_BATCH *
	    o->npix)) == NULL)
		err(1, NULL);
	if (kz_tree_decode(&in->tree, in->name, done, done + n, geometry ?
	    &geom : NULL, in->width, in->height, o->batch, &e) != 0)
		abandon(o, e.msg);
}

/* Writes s to the manifest escaped (kz_escape), so that any file name
 * stays one field of one line. */
static void
manifest_field(struct sink *o, const char *s)
{
	struct kz_err e;
	char *t = kz_escape(s);

	if (t == NULL)
		abandon(o, "out of memory");
	if (kz_out_write(&o->man, t, strlen(t), &e) != 0) {
		free(t);
		abandon(o, e.msg);
	}
	free(t);
}

/* -M: the line of the record just written: its index, the input, and
 * the tree entry's path, the book's page and box, or the item's number
 * in the input. */
static void
manifest_line(struct sink *o, const struct input *in, size_t j)
{
	struct kz_err e;
	char num[96];
	int len;

	len = snprintf(num, sizeof(num), "%llu\t", (unsigned long long)o->seq);
	if (kz_out_write(&o->man, num, (size_t)len, &e) != 0)
		abandon(o, e.msg);
	manifest_field(o, in->name);
	if (in->kind == IN_TREE || in->kind == IN_BOOK) {
		if (kz_out_write(&o->man, "\t", 1, &e) != 0)
			abandon(o, e.msg);
		manifest_field(o, in->kind == IN_TREE ?
		    in->tree.entries[j].path :
		    in->book.page[in->book.box[j].page]);
	}
	if (in->kind == IN_TREE) {
		len = snprintf(num, sizeof(num), "\n");
	} else if (in->kind == IN_BOOK) {
		const struct kz_box *b = &in->book.box[j];

		len = snprintf(num, sizeof(num), "\t%u\t%u\t%u\t%u\n", b->x,
		    b->y, b->w, b->h);
	} else {
		len = snprintf(num, sizeof(num), "\t%zu\n", j);
	}
	if (kz_out_write(&o->man, num, (size_t)len, &e) != 0)
		abandon(o, e.msg);
}

/* Writes o->rec, labelled label, as item j of in, and its manifest
 * line. */
static void
emit(struct sink *o, const struct input *in, size_t j, int32_t label)
{
	struct kz_err e;

	o->rec->index = o->seq;
	o->rec->label = label;
	if (kz_writer_put(o->w, o->rec, &e) != 0) {
		kz_out_abort(&o->man);
		kz_writer_abort(o->w);
		die_write(&e);
	}
	if (o->manifest)
		manifest_line(o, in, j);
	o->seq++;
}

/* Puts img through --fit or --resize (freeing its pixels) into the
 * record's. */
static void
put_normalised(struct sink *o, struct kz_image *img)
{
	if (kz_norm_apply(&geom, img) != 0) {
		free(img->pixels);
		abandon(o, "out of memory");
	}
	memcpy(o->rec->pixels, img->pixels, o->npix);
	free(img->pixels);
}

/* The same for a w x h image that stays the caller's. */
static void
put_copy_normalised(struct sink *o, const uint8_t *src, uint32_t w,
    uint32_t h)
{
	struct kz_image img = { w, h, malloc((size_t)w * h) };

	if (img.pixels == NULL)
		abandon(o, "out of memory");
	memcpy(img.pixels, src, (size_t)w * h);
	put_normalised(o, &img);
}

/* Cuts a book's boxes out of its pages, decoding each page once when
 * its boxes come together (as they do in CODH's files). */
static void
write_book(struct input *in, struct sink *o)
{
	struct kz_image page = { 0 }, crop;
	struct kz_err e;
	long cur = -1;

	for (size_t j = 0; j < in->book.n; j++) {
		const struct kz_box *b = &in->book.box[j];

		if ((long)b->page != cur) {
			free(page.pixels);
			page.pixels = NULL;
			if (kz_book_page_read(&in->book, b->page, &page,
			    &e) != 0)
				abandon(o, e.msg);
			cur = (long)b->page;
		}
		if (kz_book_cut(&in->book, j, &page, &crop, &e) != 0) {
			free(page.pixels);
			abandon(o, e.msg);
		}
		put_normalised(o, &crop);
		emit(o, in, j, in->box_label[j]);
	}
	free(page.pixels);
}

/* Writes the records of one input, in batches for trees. */
static void
write_input(struct input *in, struct sink *o)
{
	size_t done = 0, inpix = (size_t)in->width * in->height;

	if (in->kind == IN_BOOK) {
		write_book(in, o);
		return;
	}
	while (done < in->n) {
		size_t n = in->n - done;

		if (in->kind == IN_TREE) {
			if (n > DECODE_BATCH)
				n = DECODE_BATCH;
			decode_batch(in, done, n, o);
		}
		for (size_t j = done; j < done + n; j++) {
			int32_t label = KZ_LABEL_UNKNOWN;
			const struct kz_image *im;
			const uint8_t *src;

			switch (in->kind) {
			case IN_ARRAY:
				src = in->images.data + j * inpix;
				if (in->labels.ndim == 1)
					label = in->labels.data[j];
				if (geometry)
					put_copy_normalised(o, src, in->width,
					    in->height);
				else
					memcpy(o->rec->pixels, src, o->npix);
				break;
			case IN_TREE:
				/* Decoded, and normalised, by the batch. */
				memcpy(o->rec->pixels, o->batch + (j - done) *
				    o->npix, o->npix);
				label = in->tree_label[j];
				break;
			default:
				im = &in->imgs[j];
				if (geometry)
					put_copy_normalised(o, im->pixels,
					    im->width, im->height);
				else
					memcpy(o->rec->pixels, im->pixels,
					    o->npix);
				break;
			}
			emit(o, in, j, label);
		}
		done += n;
	}
}

/* Writes every input's records to the stream, and the manifest. */
static void
write_stream(const struct cmdline *cl, const struct kz_header *h)
{
	struct sink o = { 0 };
	struct kz_err e;

	o.manifest = cl->manifest != NULL;
	o.npix = (size_t)h->width * h->height;
	if (o.manifest && kz_out_open(&o.man, cl->manifest, &e) != 0)
		errx(1, "%s", e.msg);
	if ((o.w = kz_writer_open(cl->output, h, &e)) == NULL)
		errx(1, "%s: %s", cl->output, e.msg);
	if ((o.rec = kz_record_new(h)) == NULL)
		err(1, NULL);
	for (size_t i = 0; i < ninputs; i++)
		write_input(&inputs[i], &o);
	if (o.manifest && kz_out_close(&o.man, &e) != 0) {
		kz_writer_abort(o.w);
		errx(1, "%s", e.msg);
	}
	if (kz_writer_close(o.w, &e) != 0)
		die_write(&e);
	free(o.batch);
	kz_record_free(o.rec);
}

/* Frees what the inputs hold, before exit as a leak checker wants. */
static void
free_inputs(void)
{
	for (size_t i = 0; i < ninputs; i++) {
		struct input *in = &inputs[i];

		kz_array_free(&in->images);
		kz_array_free(&in->labels);
		kz_tree_free(&in->tree);
		kz_file_close(in->tar);
		free(in->tree_label);
		kz_book_free(&in->book);
		free(in->box_label);
		if (in->kind == IN_IMAGES) {
			for (size_t j = 0; j < in->n; j++)
				free(in->imgs[j].pixels);
			free(in->imgs);
		}
	}
	free(inputs);
}

int
main(int argc, char *argv[])
{
	struct cmdline cl;
	struct kz_classmap map = { 0 };
	struct kz_header h;
	struct kz_err e;
	int modern;

	kz_pnm_init(argv[0]);
	kz_ignore_sigpipe();
	version_option(argc, argv);
	parse_command_line(argc, argv, &cl);
	if (cl.map_path != NULL && kz_classmap_read(cl.map_path, &map,
	    &e) != 0)
		errx(1, "%s", e.msg);
	preload_arrays(cl.files, cl.nfiles);
	for (int i = 0; i < cl.nfiles; i++)
		read_input(cl.files[i], i);
	free(preloaded);
	modern = modern_labels(cl.forms);
	assign_classes(&map, cl.map_path != NULL, cl.drop_unknown);
	stream_header(&map, cl.map_path, &h);
	if (modern)
		h.flags |= KZ_FLAG_MODERN;
	if (cl.map_out != NULL) {
		if (map.n == 0)
			errx(1, "-C needs a Kanji tree or -c classmap to take "
			    "the classes from");
		if (kz_classmap_write(&map, cl.map_out, &e) != 0)
			errx(1, "%s", e.msg);
	}
	write_stream(&cl, &h);
	free_inputs();
	kz_classmap_free(&map);
	return 0;
}
