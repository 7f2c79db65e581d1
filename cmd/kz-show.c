/*
 * kz-show - draw records of a kz stream as a grid image (PNG or PGM).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define BORDER 1
#define BORDER_GREY 96
#define MAX_SIDE 32768	/* pixels per side of the sheet */
#define MAX_BYTES 2e9	/* records kept for one sheet */

/* The command line, as parse_command_line leaves it. */
struct cmdline {
	long count;		/* -n: records shown at most */
	long cols;		/* -w: columns of the sheet */
	long scale;		/* -s: pixels per pixel */
	long per_class;		/* -r: a row per class, this many long */
	long only_class;	/* -l: the only class shown; -1: all */
	const char *only;	/* -l as given, for messages */
	int pgm;		/* -P: PGM, not PNG */
	int mistakes;		/* -x: only records predicted wrong */
	const char *output;	/* -o: "-" for stdout */
	const char *input;	/* the stream, "-" for stdin */
};

/* The records kept for the sheet, in the order read. */
struct kept {
	struct kz_record *rec;	/* up to -n of them */
	uint8_t *pix;		/* their pixels */
	long n;
	long *filled;		/* -r: records kept of each class */
};

/* Where the kept records go on the sheet. */
struct layout {
	long cols, rows;
	long *row_of;		/* -r: each class's row; -1: none */
};

static void
usage(void)
{
	fprintf(stderr, "usage: kz-show [-Px] [-n count] [-w columns] "
	    "[-s scale] [-r per-class] [-l class [-c classmap]]\n"
	    "               [-o file] [file]\n");
	version_usage("kz-show");
	exit(2);
}

/* Copies a record's pixels into cell (row, col) of the sheet, scaled. */
static void
draw(struct kz_image *sheet, const struct kz_header *h,
    const struct kz_record *rec, long row, long col, long scale)
{
	size_t cw = h->width * scale + BORDER, chh = h->height * scale + BORDER;
	size_t x0 = BORDER + col * cw, y0 = BORDER + row * chh;

	for (size_t y = 0; y < h->height * (size_t)scale; y++) {
		uint8_t *out = sheet->pixels + (y0 + y) * sheet->width + x0;
		size_t sy = y / scale;

		for (size_t x = 0; x < h->width * (size_t)scale; x++) {
			size_t i = sy * h->width + x / scale;
			float v;

			if (h->pixel == KZ_PIXEL_U8) {
				out[x] = rec->pixels[i];
				continue;
			}
			memcpy(&v, rec->pixels + 4 * i, 4);
			v = v < 0 ? 0 : v > 255 ? 255 : v;
			out[x] = (uint8_t)(v + 0.5f);
		}
	}
}

/* -l: the class named, through the class map of -c if given, else a
 * class index. */
static long
class_arg(const char *only, const char *cmap_path)
{
	struct kz_classmap m;
	struct kz_err e;
	long c;

	if (cmap_path == NULL)
		return (long)integer(only, 0, INT32_MAX, "-l");
	if (kz_classmap_read(cmap_path, &m, &e) != 0)
		errx(1, "%s", e.msg);
	if ((c = kz_classmap_lookup(&m, only)) < 0)
		errx(1, "%s: no class for -l %s", cmap_path, only);
	kz_classmap_free(&m);
	return c;
}

/* Fills cl from the command line, or exits 2 with the usage or a
 * message naming the option. */
static void
parse_command_line(int argc, char *argv[], struct cmdline *cl)
{
	const char *cmap_path = NULL;
	int ch;

	memset(cl, 0, sizeof(*cl));
	cl->count = 100;
	cl->cols = 10;
	cl->scale = 1;
	cl->only_class = -1;
	cl->output = "-";
	while ((ch = getopt(argc, argv, "Pxn:w:s:r:l:c:o:")) != -1) {
		switch (ch) {
		case 'P': cl->pgm = 1; break;
		case 'x': cl->mistakes = 1; break;
		case 'n':
			cl->count = (long)integer(optarg, 1, 1000000, "-n");
			break;
		case 'w':
			cl->cols = (long)integer(optarg, 1, 10000, "-w");
			break;
		case 's':
			cl->scale = (long)integer(optarg, 1, 16, "-s");
			break;
		case 'r':
			cl->per_class = (long)integer(optarg, 1, 10000, "-r");
			break;
		case 'l': cl->only = optarg; break;
		case 'c': cmap_path = optarg; break;
		case 'o': cl->output = optarg; break;
		default: usage();
		}
	}
	if (argc - optind > 1)
		usage();
	cl->input = optind < argc ? argv[optind] : "-";
	refuse_tty(cl->output);
	if (cmap_path != NULL && cl->only == NULL)
		usage();
	if (cl->only != NULL)
		cl->only_class = class_arg(cl->only, cmap_path);
}

/* Reads the records to show into k: up to -n of those that -x, -l and
 * -r (cols of each class) let through. */
static void
keep_records(const struct cmdline *cl, struct kz_reader *r, long cols,
    size_t cell, struct kept *k)
{
	const struct kz_header *h = kz_reader_header(r);
	struct kz_record *rec;
	struct kz_err e;
	int rc = 0;

	/* The stream's header is checked before anything is allocated:
	 * an exit must leave nothing that a leak checker counts. */
	if (cl->only_class >= 0 && h->nclasses > 0 &&
	    cl->only_class >= (long)h->nclasses)
		errx(1, "%s: -l %s: class %ld, but the stream has %u classes",
		    kz_reader_name(r), cl->only, cl->only_class, h->nclasses);
	if (cl->mistakes && h->k == 0)
		errx(1, "%s: -x needs predictions: pass the stream through "
		    "kz-classify", kz_reader_name(r));
	rec = kz_record_new(h);
	memset(k, 0, sizeof(*k));
	k->rec = calloc(cl->count, sizeof(*k->rec));
	k->pix = malloc(cl->count * cell);
	if (cl->per_class)
		k->filled = calloc(h->nclasses, sizeof(long));
	if (rec == NULL || k->rec == NULL || k->pix == NULL ||
	    (cl->per_class && k->filled == NULL))
		err(1, NULL);
	while (k->n < cl->count && (rc = kz_reader_next(r, rec, &e)) == 1) {
		/* -x: only records whose best prediction is wrong. */
		if (cl->mistakes && (rec->label < 0 ||
		    (int32_t)rec->pred[0].cls == rec->label))
			continue;
		if (cl->only_class >= 0 && rec->label != cl->only_class)
			continue;
		if (cl->per_class) {
			if (rec->label < 0 || k->filled[rec->label] == cols)
				continue;
			/* Which row a class gets depends on the classes
			 * still to come: laid out after reading. */
			k->filled[rec->label]++;
		}
		/* Only the label and the pixels are drawn. */
		k->rec[k->n] = *rec;
		k->rec[k->n].pred = NULL;
		k->rec[k->n].pixels = k->pix + k->n * cell;
		memcpy(k->rec[k->n].pixels, rec->pixels, cell);
		k->n++;
	}
	if (k->n < cl->count && rc < 0)
		errx(1, "%s", e.msg);
	if (k->n == 0)
		errx(1, "%s: no records to show", kz_reader_name(r));
	kz_record_free(rec);
}

/* The rows and columns of the sheet: with -r one row per class that
 * has records, in class order; else the records row by row. */
static void
lay_out(const struct kz_header *h, long cols, struct kept *k,
    struct layout *l)
{
	memset(l, 0, sizeof(*l));
	l->cols = cols;
	if (k->filled != NULL) {
		if ((l->row_of = calloc(h->nclasses, sizeof(long))) == NULL)
			err(1, NULL);
		for (uint32_t c = 0; c < h->nclasses; c++)
			l->row_of[c] = k->filled[c] ? l->rows++ : -1;
		memset(k->filled, 0, h->nclasses * sizeof(long));
	} else {
		if (l->cols > k->n)
			l->cols = k->n;
		l->rows = (k->n + l->cols - 1) / l->cols;
	}
}

/* Draws the kept records on a new sheet as l lays them out. */
static void
draw_sheet(const struct kz_header *h, long scale, struct kept *k,
    const struct layout *l, struct kz_image *sheet)
{
	size_t sw = (size_t)l->cols * (h->width * scale + BORDER) + BORDER;
	size_t sh = (size_t)l->rows * (h->height * scale + BORDER) + BORDER;
	size_t iw = h->width * scale, ih = h->height * scale;	/* a cell */

	if (sw > MAX_SIDE || sh > MAX_SIDE)
		errx(1, "a sheet of %zux%zu pixels is too large (at most %d "
		    "per side): lower -n, -w or -s", sw, sh, MAX_SIDE);
	sheet->width = (uint32_t)sw;
	sheet->height = (uint32_t)sh;
	if ((sheet->pixels = malloc(sw * sh)) == NULL)
		err(1, NULL);
	memset(sheet->pixels, BORDER_GREY, sw * sh);
	for (long y = 0; y < l->rows; y++)	/* empty cells stay black */
		for (long x = 0; x < l->cols; x++)
			for (size_t yy = 0; yy < ih; yy++)
				memset(sheet->pixels + (BORDER + y * (ih +
				    BORDER) + yy) * sw + BORDER + x * (iw +
				    BORDER), 0, iw);
	for (long i = 0; i < k->n; i++) {
		if (l->row_of != NULL) {
			int32_t c = k->rec[i].label;
			draw(sheet, h, &k->rec[i], l->row_of[c],
			    k->filled[c]++, scale);
		} else {
			draw(sheet, h, &k->rec[i], i / l->cols, i % l->cols,
			    scale);
		}
	}
}

/* Writes the sheet as PNG, or PGM with -P.  Encoded in memory first,
 * so that every format reaches the output through one checked write. */
static void
write_sheet(const struct cmdline *cl, const struct kz_image *sheet)
{
	uint8_t *img = NULL;
	size_t len = 0;
	struct kz_err e;
	struct kz_out o;

	if (cl->pgm) {
		FILE *mem = open_memstream((char **)&img, &len);

		if (mem == NULL)
			err(1, NULL);
		if (kz_pgm_write(mem, sheet, &e) != 0)
			errx(1, "%s", e.msg);
		if (fclose(mem) != 0)
			err(1, "PGM");
	} else if (kz_png_encode(sheet, &img, &len, &e) != 0) {
		errx(1, "%s", e.msg);
	}
	if (kz_out_open(&o, cl->output, &e) != 0)
		errx(1, "%s", e.msg);
	if (kz_out_write(&o, img, len, &e) != 0) {
		kz_out_abort(&o);
		die_write(&e);
	}
	free(img);
	if (kz_out_close(&o, &e) != 0)
		die_write(&e);
}

int
main(int argc, char *argv[])
{
	struct cmdline cl;
	struct kz_reader *r;
	const struct kz_header *h;
	struct kz_image sheet;
	struct layout l;
	struct kept k;
	struct kz_err e;
	long cols;

	kz_pnm_init(argv[0]);
	kz_ignore_sigpipe();
	version_option(argc, argv);
	parse_command_line(argc, argv, &cl);
	if ((r = kz_reader_open(cl.input, &e)) == NULL)
		errx(1, "%s", e.msg);
	h = kz_reader_header(r);
	size_t cell = (size_t)h->width * h->height * kz_pixel_size(h);
	cols = cl.cols;
	if (cl.per_class) {
		if (h->nclasses == 0)
			errx(1, "%s: -r needs a stream whose header gives the "
			    "number of classes", kz_reader_name(r));
		cols = cl.per_class;
	}
	if ((double)cl.count * cell > MAX_BYTES)
		errx(1, "-n %ld records of %ux%u are more than a sheet can "
		    "hold", cl.count, h->width, h->height);
	/* Records are kept until the end, so the sheet fits what came. */
	keep_records(&cl, r, cols, cell, &k);
	lay_out(h, cols, &k, &l);
	draw_sheet(h, cl.scale, &k, &l, &sheet);
	write_sheet(&cl, &sheet);
	free(sheet.pixels);
	free(k.filled);
	free(l.row_of);
	free(k.rec);
	free(k.pix);
	kz_reader_close(r);
	return 0;
}
