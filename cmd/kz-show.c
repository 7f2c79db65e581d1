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

static void
usage(void)
{
	fprintf(stderr, "usage: kz-show [-Px] [-n count] [-w columns] "
	    "[-s scale] [-r per-class] [-l class [-c classmap]]\n"
	    "               [-o file] [file]\n");
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

int
main(int argc, char *argv[])
{
	long count = 100, cols = 10, scale = 1, per_class = 0;
	int pgm = 0, mistakes = 0, ch, rc = 0;
	const char *output = "-", *only = NULL, *cmap_path = NULL;
	long only_class = -1;
	struct kz_err e;

	kz_pnm_init(argv[0]);
	kz_ignore_sigpipe();
	while ((ch = getopt(argc, argv, "Pxn:w:s:r:l:c:o:")) != -1) {
		switch (ch) {
		case 'P': pgm = 1; break;
		case 'x': mistakes = 1; break;
		case 'n': count = (long)integer(optarg, 1, 1000000, "-n"); break;
		case 'w': cols = (long)integer(optarg, 1, 10000, "-w"); break;
		case 's': scale = (long)integer(optarg, 1, 16, "-s"); break;
		case 'r': per_class = (long)integer(optarg, 1, 10000, "-r"); break;
		case 'l': only = optarg; break;
		case 'c': cmap_path = optarg; break;
		case 'o': output = optarg; break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1)
		usage();
	refuse_tty(output);
	if (cmap_path != NULL && only == NULL)
		usage();
	if (only != NULL && cmap_path != NULL) {
		struct kz_classmap m;

		if (kz_classmap_read(cmap_path, &m, &e) != 0)
			errx(1, "%s", e.msg);
		if ((only_class = kz_classmap_lookup(&m, only)) < 0)
			errx(1, "%s: no class for -l %s", cmap_path, only);
		kz_classmap_free(&m);
	} else if (only != NULL) {
		only_class = (long)integer(only, 0, INT32_MAX, "-l");
	}

	struct kz_reader *r = kz_reader_open(argc ? argv[0] : "-", &e);
	if (r == NULL)
		errx(1, "%s", e.msg);
	const struct kz_header *h = kz_reader_header(r);
	size_t cell = (size_t)h->width * h->height * kz_pixel_size(h);
	if (per_class) {
		if (h->nclasses == 0)
			errx(1, "%s: -r needs a stream whose header gives the "
			    "number of classes", kz_reader_name(r));
		cols = per_class;
	}
	if ((double)count * cell > MAX_BYTES)
		errx(1, "-n %ld records of %ux%u are more than a sheet can "
		    "hold", count, h->width, h->height);

	/* Records are kept until the end, so the sheet fits what came. */
	struct kz_record *rec = kz_record_new(h);
	struct kz_record *kept = calloc(count, sizeof(*kept));
	uint8_t *pix = malloc(count * cell);
	long nkept = 0, rows = 0, *filled = NULL;
	if (per_class)
		filled = calloc(h->nclasses, sizeof(long));
	if (rec == NULL || kept == NULL || pix == NULL ||
	    (per_class && filled == NULL))
		err(1, NULL);
	if (only_class >= 0 && h->nclasses > 0 &&
	    only_class >= (long)h->nclasses)
		errx(1, "%s: -l %s: class %ld, but the stream has %u classes",
		    kz_reader_name(r), only, only_class, h->nclasses);
	if (mistakes && h->k == 0)
		errx(1, "%s: -x needs predictions: pass the stream through "
		    "kz-classify", kz_reader_name(r));
	while (nkept < count && (rc = kz_reader_next(r, rec, &e)) == 1) {
		/* -x: only records whose best prediction is wrong. */
		if (mistakes && (rec->label < 0 ||
		    (int32_t)rec->pred[0].cls == rec->label))
			continue;
		if (only_class >= 0 && rec->label != only_class)
			continue;
		if (per_class) {
			if (rec->label < 0 || filled[rec->label] == cols)
				continue;
			/* Which row a class gets depends on the classes
			 * still to come: laid out after reading. */
			filled[rec->label]++;
		}
		kept[nkept] = *rec;
		kept[nkept].pixels = pix + nkept * cell;
		memcpy(kept[nkept].pixels, rec->pixels, cell);
		nkept++;
	}
	if (nkept < count && rc < 0)
		errx(1, "%s", e.msg);
	if (nkept == 0)
		errx(1, "%s: no records to show", kz_reader_name(r));

	long *row_of = NULL;
	if (per_class) {
		/* One row per class that has records, in class order. */
		if ((row_of = calloc(h->nclasses, sizeof(long))) == NULL)
			err(1, NULL);
		for (uint32_t c = 0; c < h->nclasses; c++)
			row_of[c] = filled[c] ? rows++ : -1;
		memset(filled, 0, h->nclasses * sizeof(long));
	} else {
		if (cols > nkept)
			cols = nkept;
		rows = (nkept + cols - 1) / cols;
	}
	size_t sw = (size_t)cols * (h->width * scale + BORDER) + BORDER;
	size_t sh = (size_t)rows * (h->height * scale + BORDER) + BORDER;
	if (sw > MAX_SIDE || sh > MAX_SIDE)
		errx(1, "a sheet of %zux%zu pixels is too large (at most %d "
		    "per side): lower -n, -w or -s", sw, sh, MAX_SIDE);
	struct kz_image sheet = { (uint32_t)sw, (uint32_t)sh, NULL };
	if ((sheet.pixels = malloc(sw * sh)) == NULL)
		err(1, NULL);
	memset(sheet.pixels, BORDER_GREY, sw * sh);
	for (long y = 0; y < rows; y++)	/* empty cells stay black */
		for (long x = 0; x < cols; x++)
			for (size_t yy = 0; yy < h->height * (size_t)scale; yy++)
				memset(sheet.pixels + (BORDER + y * (h->height *
				    scale + BORDER) + yy) * sw + BORDER + x *
				    (h->width * scale + BORDER), 0,
				    h->width * scale);
	for (long i = 0; i < nkept; i++) {
		if (per_class) {
			int32_t c = kept[i].label;
			draw(&sheet, h, &kept[i], row_of[c], filled[c]++, scale);
		} else {
			draw(&sheet, h, &kept[i], i / cols, i % cols, scale);
		}
	}

	/* Encoded in memory first, so that every format reaches the output
	 * through one checked write. */
	uint8_t *img = NULL;
	size_t len = 0;
	if (pgm) {
		FILE *mem = open_memstream((char **)&img, &len);

		if (mem == NULL)
			err(1, NULL);
		if (kz_pgm_write(mem, &sheet, &e) != 0)
			errx(1, "%s", e.msg);
		if (fclose(mem) != 0)
			err(1, "PGM");
	} else if (kz_png_encode(&sheet, &img, &len, &e) != 0) {
		errx(1, "%s", e.msg);
	}
	struct kz_out o;
	if (kz_out_open(&o, output, &e) != 0)
		errx(1, "%s", e.msg);
	if (kz_out_write(&o, img, len, &e) != 0) {
		kz_out_abort(&o);
		die_write(&e);
	}
	free(img);
	if (kz_out_close(&o, &e) != 0)
		die_write(&e);
	free(sheet.pixels);
	free(filled);
	free(row_of);
	free(kept);
	free(pix);
	kz_record_free(rec);
	kz_reader_close(r);
	return 0;
}
