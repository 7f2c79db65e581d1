/*
 * kz-norm - make character images look like the datasets': white ink
 * on black, cropped to the ink, deskewed, fitted into a box, centred.
 * The steps run in the order of the option table in kz-norm(1).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

enum polarity { POL_AUTO, POL_KEEP, POL_INVERT };

static void
usage(void)
{
	fprintf(stderr, "usage: kz-norm [-Ccds] [-f WxH] [-m margin] "
	    "[-p auto|keep|invert] [-r WxH]\n"
	    "               [-T threshold] [-o file] [file]\n");
	exit(2);
}

/* A size WxH of option opt (each side 1..KZ_MAX_DIM), or exit 2. */
static void
size_arg(const char *opt, const char *s, uint32_t *w, uint32_t *h)
{
	const char *x = strchr(s, 'x');
	char what[16], *side;

	if (x == NULL)
		errx(2, "size \"%s\": want WxH, each 1..%d", s, KZ_MAX_DIM);
	if ((side = strndup(s, (size_t)(x - s))) == NULL)
		err(1, NULL);
	snprintf(what, sizeof(what), "%s width", opt);
	*w = (uint32_t)integer(side, 1, KZ_MAX_DIM, what);
	free(side);
	snprintf(what, sizeof(what), "%s height", opt);
	*h = (uint32_t)integer(x + 1, 1, KZ_MAX_DIM, what);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "fit", required_argument, NULL, 'f' },
		{ "resize", required_argument, NULL, 'r' },
		{ "margin", required_argument, NULL, 'm' },
		{ "polarity", required_argument, NULL, 'p' },
		{ "threshold", required_argument, NULL, 'T' },
		{ "crop", no_argument, NULL, 'c' },
		{ "centre", no_argument, NULL, 'C' },
		{ "center", no_argument, NULL, 'C' },
		{ "deskew", no_argument, NULL, 'd' },
		{ "stretch", no_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 }
	};
	enum polarity pol = POL_AUTO;
	uint32_t fw = 0, fh = 0, rw = 0, rh = 0, margin = 1, threshold = 32;
	int crop = 0, centre = 0, deskew = 0, stretch = 0, ch, rc;
	const char *output = "-";
	struct kz_err e;

	kz_ignore_sigpipe();
	while ((ch = getopt_long(argc, argv, "f:r:m:p:T:cCdso:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'f': size_arg("-f", optarg, &fw, &fh); break;
		case 'r': size_arg("-r", optarg, &rw, &rh); break;
		case 'm':
			margin = (uint32_t)integer(optarg, 0, KZ_MAX_DIM, "-m");
			break;
		case 'T':
			threshold = (uint32_t)integer(optarg, 0, 254, "-T");
			break;
		case 'p':
			if (strcmp(optarg, "auto") == 0) pol = POL_AUTO;
			else if (strcmp(optarg, "keep") == 0) pol = POL_KEEP;
			else if (strcmp(optarg, "invert") == 0) pol = POL_INVERT;
			else errx(2, "-p: auto, keep or invert");
			break;
		case 'c': crop = 1; break;
		case 'C': centre = 1; break;
		case 'd': deskew = 1; break;
		case 's': stretch = 1; break;
		case 'o': output = optarg; break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (fw && rw)
		errx(2, "-f and -r both set the size: give one");
	if (argc > 1)
		usage();
	if (crop && !fw && !rw)
		errx(2, "-c gives every image its own size: add -f or -r");
	refuse_tty(output);

	struct kz_reader *r = kz_reader_open(argc ? argv[0] : "-", &e);
	if (r == NULL)
		errx(1, "%s", e.msg);
	const struct kz_header *h = kz_reader_header(r);
	if (h->pixel != KZ_PIXEL_U8)
		errx(1, "%s: kz-norm reads 8-bit streams", kz_reader_name(r));
	struct kz_header oh = *h;
	if (fw) { oh.width = fw; oh.height = fh; }
	if (rw) { oh.width = rw; oh.height = rh; }
	struct kz_record *in = kz_record_new(h), *out = kz_record_new(&oh);
	if (in == NULL || out == NULL)
		err(1, NULL);
	struct kz_writer *w = kz_writer_open(output, &oh, &e);
	if (w == NULL)
		errx(1, "%s", e.msg);
	size_t npix = (size_t)h->width * h->height;

	while ((rc = kz_reader_next(r, in, &e)) == 1) {
		struct kz_image img = { h->width, h->height, malloc(npix) };
		uint32_t box[4];
		int fail = img.pixels == NULL;

		if (!fail)
			memcpy(img.pixels, in->pixels, npix);
		if (!fail && (pol == POL_INVERT || (pol == POL_AUTO &&
		    kz_norm_polarity(&img))))
			kz_norm_invert(&img);
		/* --fit levels the background too: a scan's grey paper,
		 * inverted, must become the datasets' black. */
		if (!fail && (stretch || fw))
			kz_norm_stretch(&img);
		if (!fail && deskew)
			fail = kz_norm_deskew(&img);
		/* --fit crops to the ink: the datasets' characters fill
		 * their box. */
		if (!fail && (crop || fw) &&
		    kz_norm_bbox(&img, (uint8_t)threshold, box) == 0)
			fail = kz_norm_crop(&img, box);
		if (!fail && fw)
			fail = kz_norm_fit(&img, fw, fh, margin);
		if (!fail && rw)
			fail = kz_norm_resize(&img, rw, rh);
		if (!fail && centre)
			fail = kz_norm_centre(&img);
		if (fail) {
			kz_writer_abort(w);
			errx(1, "out of memory");
		}
		out->index = in->index;
		out->label = in->label;
		memcpy(out->pred, in->pred, h->k * sizeof(struct kz_pred));
		memcpy(out->pixels, img.pixels, (size_t)oh.width * oh.height);
		free(img.pixels);
		if (kz_writer_put(w, out, &e) != 0) {
			kz_writer_abort(w);
			die_write(&e);
		}
	}
	if (rc < 0) {
		kz_writer_abort(w);
		errx(1, "%s", e.msg);
	}
	if (kz_writer_close(w, &e) != 0)
		die_write(&e);
	kz_record_free(in);
	kz_record_free(out);
	kz_reader_close(r);
	return 0;
}
