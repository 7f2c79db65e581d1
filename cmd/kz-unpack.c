/*
 * kz-unpack - turn datasets and images into a kz record stream.
 *
 * Formats are told by content: npz/npy/idx arrays (an image array
 * optionally followed by its label array), Kuzushiji-Kanji trees as
 * directories or tar(.gz) archives, PNG and PNM images.
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

enum kind { IN_ARRAY, IN_TREE, IN_IMAGES };

struct input {
	enum kind kind;
	const char *name;
	uint32_t width, height;
	size_t n;
	struct kz_array images;		/* IN_ARRAY */
	struct kz_array labels;		/* IN_ARRAY, ndim 0 when absent */
	const char *labels_name;
	struct kz_tree tree;		/* IN_TREE */
	int32_t *tree_label;		/* IN_TREE: class of each entry */
	struct kz_image *imgs;		/* IN_IMAGES */
};

static struct input *inputs;
static size_t ninputs;

/* The command line, as parse_command_line leaves it. */
struct cmdline {
	const char *map_path;	/* -c: the class map of the labels */
	const char *map_out;	/* -C: where to write the class map */
	const char *manifest;	/* -M: where each record came from */
	const char *output;	/* -o: the stream, "-" for stdout */
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
	fprintf(stderr, "usage: kz-unpack [-c classmap] [-C classmap-out] "
	    "[-M manifest] [-o file] file ...\n");
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
	for (size_t i = 1; i < n; i++)
		if (imgs[i].width != in->width || imgs[i].height != in->height)
			errx(1, "%s: image %zu is %ux%u, image 0 is %ux%u; "
			    "pass them through kz-norm, one size per stream",
			    name, i, imgs[i].width, imgs[i].height,
			    in->width, in->height);
}

static void
read_input(const char *name)
{
	struct kz_err e;
	struct kz_file *f;
	struct stat st;
	const uint8_t *peek;
	size_t npeek, len;
	uint8_t *buf;

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
		kz_file_close(f);
		return;
	}
	if (fmt == KZ_FMT_UNKNOWN)
		errx(1, "%s: unrecognised format (not npz, npy, idx, tar, "
		    "PNG or PNM)", name);
	if (fmt == KZ_FMT_STREAM)
		errx(1, "%s: already a kz stream", name);
	if (kz_file_slurp(f, fmt == KZ_FMT_PNG || fmt == KZ_FMT_PNM ?
	    IMAGE_MAX_BYTES : ARRAY_MAX_BYTES, &buf, &len, &e) != 0)
		errx(1, "%s", e.msg);
	kz_file_close(f);

	struct kz_array a;
	struct kz_image *imgs;
	size_t n;
	switch (fmt) {
	case KZ_FMT_NPZ:
		if (kz_npz_parse(buf, len, name, &a, &e) != 0)
			errx(1, "%s", e.msg);
		free(buf);
		add_array(name, &a);
		break;
	case KZ_FMT_NPY:
	case KZ_FMT_IDX:
		if ((fmt == KZ_FMT_NPY ? kz_npy_parse : kz_idx_parse)(buf,
		    len, name, &a, &e) != 0)
			errx(1, "%s", e.msg);
		a.base = buf;
		add_array(name, &a);
		break;
	case KZ_FMT_PNG:
		if ((imgs = malloc(sizeof(*imgs))) == NULL)
			err(1, NULL);
		if (kz_png_decode(buf, len, name, imgs, &e) != 0)
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

/* Gives every tree entry its class: through the class map when given,
 * else the rank of its code point among all trees' code points. */
static void
assign_tree_classes(struct kz_classmap *map, int have_map)
{
	struct kz_classmap found = { 0 };
	size_t cap = 0;

	for (size_t i = 0; i < ninputs; i++) {
		struct input *in = &inputs[i];

		if (in->kind != IN_TREE)
			continue;
		if ((in->tree_label = malloc(in->tree.n *
		    sizeof(int32_t))) == NULL)
			err(1, NULL);
		in->n = in->tree.n;
		for (size_t j = 0; j < in->tree.n; j++) {
			uint32_t cp = in->tree.entries[j].codepoint;

			if (have_map)
				continue;
			if (found.n > 0 && kz_classmap_find(&found, cp) >= 0)
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
	if (!have_map && found.n > 0) {
		/* Sorted code points, so class i is the i-th smallest. */
		for (size_t i = 1; i < found.n; i++)
			for (size_t j = i; j > 0 && found.codepoint[j - 1] >
			    found.codepoint[j]; j--) {
				uint32_t t = found.codepoint[j];
				found.codepoint[j] = found.codepoint[j - 1];
				found.codepoint[j - 1] = t;
			}
		if ((found.utf8 = calloc(found.n, sizeof(*found.utf8))) ==
		    NULL)
			err(1, NULL);
		for (size_t i = 0; i < found.n; i++)
			kz_utf8_encode(found.codepoint[i], found.utf8[i]);
		*map = found;
	}
	for (size_t i = 0; i < ninputs; i++) {
		struct input *in = &inputs[i];
		uint32_t last_cp = 0;
		long last = -1;

		if (in->kind != IN_TREE)
			continue;
		for (size_t j = 0; j < in->tree.n; j++) {
			uint32_t cp = in->tree.entries[j].codepoint;

			/* Entries are sorted: look up each code point once. */
			if (last < 0 || cp != last_cp) {
				last = kz_classmap_find(map, cp);
				last_cp = cp;
			}
			if (last < 0)
				errx(1, "%s: %s: code point U+%04X is not in the "
				    "class map", in->name,
				    in->tree.entries[j].path, cp);
			in->tree_label[j] = (int32_t)last;
		}
	}
}

/* Decodes tree PNGs in parallel batches: the slow part of a Kanji run. */
struct decode_job {
	struct input *in;
	size_t from, to;
	uint8_t *out;		/* (to - from) * width * height */
	struct kz_err e;
	int failed;
};

static void *
decode_range(void *arg)
{
	struct decode_job *job = arg;
	struct input *in = job->in;
	size_t npix = (size_t)in->width * in->height;
	struct kz_image img;

	for (size_t j = job->from; j < job->to; j++) {
		struct kz_tree_entry *en = &in->tree.entries[j];
		char where[1024];

		snprintf(where, sizeof(where), "%s: %s", in->name, en->path);
		if (kz_png_decode(en->png, en->png_len, where, &img,
		    &job->e) != 0) {
			job->failed = 1;
			return NULL;
		}
		if (img.width != in->width || img.height != in->height) {
			kz_errf(&job->e, "%s is %ux%u, the tree's first image "
			    "is %ux%u; pass them through kz-norm", where,
			    img.width, img.height, in->width, in->height);
			free(img.pixels);
			job->failed = 1;
			return NULL;
		}
		memcpy(job->out + (j - job->from) * npix, img.pixels, npix);
		free(img.pixels);
	}
	return NULL;
}

/* The first image of a tree fixes its geometry. */
static void
tree_geometry(struct input *in)
{
	struct kz_image img;
	struct kz_err e;
	char where[1024];

	snprintf(where, sizeof(where), "%s: %s", in->name,
	    in->tree.entries[0].path);
	if (kz_png_decode(in->tree.entries[0].png,
	    in->tree.entries[0].png_len, where, &img, &e) != 0)
		errx(1, "%s", e.msg);
	in->width = img.width;
	in->height = img.height;
	free(img.pixels);
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
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	memset(cl, 0, sizeof(*cl));
	cl->output = "-";
	while ((ch = getopt_long(argc, argv, "c:C:M:o:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c': cl->map_path = optarg; break;
		case 'C': cl->map_out = optarg; break;
		case 'M': cl->manifest = optarg; break;
		case 'o': cl->output = optarg; break;
		default: usage();
		}
	}
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

	memset(h, 0, sizeof(*h));
	h->pixel = KZ_PIXEL_U8;
	for (size_t i = 0; i < ninputs; i++) {
		struct input *in = &inputs[i];

		if (in->kind == IN_TREE) {
			tree_geometry(in);
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
		if (i == 0) {
			h->width = in->width;
			h->height = in->height;
		} else if (in->width != h->width || in->height != h->height) {
			errx(1, "%s: images are %ux%u but %s holds %ux%u; pass "
			    "them through kz-norm, one size per stream",
			    in->name, in->width, in->height, inputs[0].name,
			    h->width, h->height);
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
	struct decode_job job[2];
	pthread_t tid;

	if (o->batch == NULL && (o->batch = malloc(DECODE_BATCH *
	    o->npix)) == NULL)
		err(1, NULL);
	for (int t = 0; t < 2; t++) {
		memset(&job[t], 0, sizeof(job[t]));
		job[t].in = in;
		job[t].from = done + n * t / 2;
		job[t].to = done + n * (t + 1) / 2;
		job[t].out = o->batch + n * t / 2 * o->npix;
	}
	if (pthread_create(&tid, NULL, decode_range, &job[1]) != 0) {
		decode_range(&job[1]);
	} else {
		decode_range(&job[0]);
		pthread_join(tid, NULL);
	}
	if (job[0].failed || job[1].failed)
		abandon(o, (job[0].failed ? &job[0] : &job[1])->e.msg);
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
 * the tree entry's path or the item's number in the input. */
static void
manifest_line(struct sink *o, const struct input *in, size_t j)
{
	struct kz_err e;
	char num[48];
	int len;

	len = snprintf(num, sizeof(num), "%llu\t", (unsigned long long)o->seq);
	if (kz_out_write(&o->man, num, (size_t)len, &e) != 0)
		abandon(o, e.msg);
	manifest_field(o, in->name);
	if (in->kind == IN_TREE) {
		if (kz_out_write(&o->man, "\t", 1, &e) != 0)
			abandon(o, e.msg);
		manifest_field(o, in->tree.entries[j].path);
		len = snprintf(num, sizeof(num), "\n");
	} else {
		len = snprintf(num, sizeof(num), "\t%zu\n", j);
	}
	if (kz_out_write(&o->man, num, (size_t)len, &e) != 0)
		abandon(o, e.msg);
}

/* Writes the records of one input, in batches for trees. */
static void
write_input(struct input *in, struct sink *o)
{
	struct kz_record *rec = o->rec;
	struct kz_err e;
	size_t done = 0;

	while (done < in->n) {
		size_t n = in->n - done;
		const uint8_t *pix;

		if (in->kind == IN_TREE) {
			if (n > DECODE_BATCH)
				n = DECODE_BATCH;
			decode_batch(in, done, n, o);
		}
		for (size_t j = done; j < done + n; j++) {
			rec->index = o->seq;
			rec->label = KZ_LABEL_UNKNOWN;
			switch (in->kind) {
			case IN_ARRAY:
				pix = in->images.data + j * o->npix;
				if (in->labels.ndim == 1)
					rec->label = in->labels.data[j];
				break;
			case IN_TREE:
				pix = o->batch + (j - done) * o->npix;
				rec->label = in->tree_label[j];
				break;
			default:
				pix = in->imgs[j].pixels;
				break;
			}
			memcpy(rec->pixels, pix, o->npix);
			if (kz_writer_put(o->w, rec, &e) != 0) {
				kz_out_abort(&o->man);
				kz_writer_abort(o->w);
				die_write(&e);
			}
			if (o->manifest)
				manifest_line(o, in, j);
			o->seq++;
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
		free(in->tree_label);
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

	kz_pnm_init(argv[0]);
	kz_ignore_sigpipe();
	version_option(argc, argv);
	parse_command_line(argc, argv, &cl);
	if (cl.map_path != NULL && kz_classmap_read(cl.map_path, &map,
	    &e) != 0)
		errx(1, "%s", e.msg);
	for (int i = 0; i < cl.nfiles; i++)
		read_input(cl.files[i]);
	assign_tree_classes(&map, cl.map_path != NULL);
	stream_header(&map, cl.map_path, &h);
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
