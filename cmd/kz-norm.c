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

/* The command line, as parse_command_line leaves it. */
struct cmdline {
	struct kz_norm_opts n;	/* the steps, kz_norm_apply's */
	const char *output;	/* -o: "-" for stdout */
	const char *input;	/* the stream, "-" for stdin */
};

static void
usage(void)
{
	fprintf(stderr, "usage: kz-norm [-Ccdls] [-f WxH] [-m margin] "
	    "[-p auto|keep|invert] [-r WxH]\n"
	    "               [-T threshold] [-o file] [file]\n");
	version_usage("kz-norm");
	exit(2);
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
		{ "level", no_argument, NULL, 'l' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	memset(cl, 0, sizeof(*cl));
	kz_norm_defaults(&cl->n);
	cl->output = "-";
	while ((ch = getopt_long(argc, argv, "f:r:m:p:T:cCdlso:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'f': size_arg("-f", optarg, &cl->n.fw, &cl->n.fh); break;
		case 'r': size_arg("-r", optarg, &cl->n.rw, &cl->n.rh); break;
		case 'm':
			cl->n.margin = (uint32_t)integer(optarg, 0, KZ_MAX_DIM,
			    "-m");
			break;
		case 'T':
			cl->n.threshold = (uint8_t)integer(optarg, 0, 254,
			    "-T");
			break;
		case 'p': cl->n.pol = polarity_arg("-p", optarg); break;
		case 'c': cl->n.crop = 1; break;
		case 'C': cl->n.centre = 1; break;
		case 'd': cl->n.deskew = 1; break;
		case 's': cl->n.stretch = 1; break;
		case 'l': cl->n.level = 1; break;
		case 'o': cl->output = optarg; break;
		default: usage();
		}
	}
	if (cl->n.fw && cl->n.rw)
		errx(2, "-f and -r both set the size: give one");
	if (argc - optind > 1)
		usage();
	cl->input = optind < argc ? argv[optind] : "-";
	if (cl->n.crop && !cl->n.fw && !cl->n.rw)
		errx(2, "-c gives every image its own size: add -f or -r");
	refuse_tty(cl->output);
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

		if (img.pixels != NULL)
			memcpy(img.pixels, in->pixels, npix);
		if (img.pixels == NULL || kz_norm_apply(&cl->n, &img) != 0) {
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
	kz_norm_size(&cl.n, h->width, h->height, &oh.width, &oh.height);
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
