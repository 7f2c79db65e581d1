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

/* The command line, as parse_command_line leaves it. */
struct cmdline {
	uint32_t fw, fh;	/* -f: the box fitted into; 0: none */
	uint32_t rw, rh;	/* -r: the size resized to; 0: none */
	uint32_t margin;	/* -m: black pixels around -f's ink */
	uint32_t threshold;	/* -T: ink is above it, for -c and -f */
	enum polarity pol;	/* -p */
	int crop, centre, deskew, stretch;	/* -c, -C, -d, -s */
	const char *output;	/* -o: "-" for stdout */
	const char *input;	/* the stream, "-" for stdin */
};

static void
usage(void)
{
	fprintf(stderr, "usage: kz-norm [-Ccds] [-f WxH] [-m margin] "
	    "[-p auto|keep|invert] [-r WxH]\n"
	    "               [-T threshold] [-o file] [file]\n");
	version_usage("kz-norm");
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

/* Fills cl from the command line, or exits 2 with the usage or a
 * message naming the option. */
static void
parse_command_line(int argc, char *argv[], struct cmdline *cl)
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
	int ch;

	memset(cl, 0, sizeof(*cl));
	cl->pol = POL_AUTO;
	cl->margin = 1;
	cl->threshold = 32;
	cl->output = "-";
	while ((ch = getopt_long(argc, argv, "f:r:m:p:T:cCdso:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'f': size_arg("-f", optarg, &cl->fw, &cl->fh); break;
		case 'r': size_arg("-r", optarg, &cl->rw, &cl->rh); break;
		case 'm':
			cl->margin = (uint32_t)integer(optarg, 0, KZ_MAX_DIM,
			    "-m");
			break;
		case 'T':
			cl->threshold = (uint32_t)integer(optarg, 0, 254, "-T");
			break;
		case 'p':
			if (strcmp(optarg, "auto") == 0)
				cl->pol = POL_AUTO;
			else if (strcmp(optarg, "keep") == 0)
				cl->pol = POL_KEEP;
			else if (strcmp(optarg, "invert") == 0)
				cl->pol = POL_INVERT;
			else
				errx(2, "-p: auto, keep or invert");
			break;
		case 'c': cl->crop = 1; break;
		case 'C': cl->centre = 1; break;
		case 'd': cl->deskew = 1; break;
		case 's': cl->stretch = 1; break;
		case 'o': cl->output = optarg; break;
		default: usage();
		}
	}
	if (cl->fw && cl->rw)
		errx(2, "-f and -r both set the size: give one");
	if (argc - optind > 1)
		usage();
	cl->input = optind < argc ? argv[optind] : "-";
	if (cl->crop && !cl->fw && !cl->rw)
		errx(2, "-c gives every image its own size: add -f or -r");
	refuse_tty(cl->output);
}

/* Copies pixels into img, allocated at its size, and puts it through
 * the steps cl asks for, in the order of kz-norm(1).  Returns non-zero
 * when out of memory. */
static int
normalise(const struct cmdline *cl, const uint8_t *pixels,
    struct kz_image *img)
{
	uint32_t box[4];
	int fail = 0;

	memcpy(img->pixels, pixels, (size_t)img->width * img->height);
	if (cl->pol == POL_INVERT || (cl->pol == POL_AUTO &&
	    kz_norm_polarity(img)))
		kz_norm_invert(img);
	/* --fit levels the background too: a scan's grey paper,
	 * inverted, must become the datasets' black. */
	if (cl->stretch || cl->fw)
		kz_norm_stretch(img);
	if (cl->deskew)
		fail = kz_norm_deskew(img);
	/* --fit crops to the ink: the datasets' characters fill their
	 * box. */
	if (!fail && (cl->crop || cl->fw) &&
	    kz_norm_bbox(img, (uint8_t)cl->threshold, box) == 0)
		fail = kz_norm_crop(img, box);
	if (!fail && cl->fw)
		fail = kz_norm_fit(img, cl->fw, cl->fh, cl->margin);
	if (!fail && cl->rw)
		fail = kz_norm_resize(img, cl->rw, cl->rh);
	if (!fail && cl->centre)
		fail = kz_norm_centre(img);
	return fail;
}

/* Writes each record of r to w, normalised into the output's header
 * oh: in and out are records of the input's and of oh. */
static void
convert(const struct cmdline *cl, struct kz_reader *r,
    const struct kz_header *oh, struct kz_record *in,
    struct kz_record *out, struct kz_writer *w)
{
	const struct kz_header *h = kz_reader_header(r);
	size_t npix = (size_t)h->width * h->height;
	size_t onpix = (size_t)oh->width * oh->height;
	struct kz_err e;
	int rc;

	while ((rc = kz_reader_next(r, in, &e)) == 1) {
		struct kz_image img = { h->width, h->height, malloc(npix) };

		if (img.pixels == NULL ||
		    normalise(cl, in->pixels, &img) != 0) {
			kz_writer_abort(w);
			errx(1, "out of memory");
		}
		out->index = in->index;
		out->label = in->label;
		memcpy(out->pred, in->pred, h->k * sizeof(struct kz_pred));
		memcpy(out->pixels, img.pixels, onpix);
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
}

int
main(int argc, char *argv[])
{
	struct cmdline cl;
	struct kz_reader *r;
	const struct kz_header *h;
	struct kz_header oh;
	struct kz_record *in, *out;
	struct kz_writer *w;
	struct kz_err e;

	kz_ignore_sigpipe();
	version_option(argc, argv);
	parse_command_line(argc, argv, &cl);
	if ((r = kz_reader_open(cl.input, &e)) == NULL)
		errx(1, "%s", e.msg);
	h = kz_reader_header(r);
	if (h->pixel != KZ_PIXEL_U8)
		errx(1, "%s: kz-norm reads 8-bit streams", kz_reader_name(r));
	oh = *h;
	if (cl.fw) {
		oh.width = cl.fw;
		oh.height = cl.fh;
	}
	if (cl.rw) {
		oh.width = cl.rw;
		oh.height = cl.rh;
	}
	if ((in = kz_record_new(h)) == NULL ||
	    (out = kz_record_new(&oh)) == NULL)
		err(1, NULL);
	if ((w = kz_writer_open(cl.output, &oh, &e)) == NULL)
		errx(1, "%s", e.msg);
	convert(&cl, r, &oh, in, out, w);
	if (kz_writer_close(w, &e) != 0)
		die_write(&e);
	kz_record_free(in);
	kz_record_free(out);
	kz_reader_close(r);
	return 0;
}
