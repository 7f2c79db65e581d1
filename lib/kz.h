/*
 * kz.h - the kz library: the record stream, dataset readers, images,
 * class maps.  Every program in cmd/ links it.
 *
 * Conventions.  Functions that can fail return 0 on success and -1 on
 * failure, after writing a one-line message into a caller-supplied
 * struct kz_err; the message names the file and the place ("x.npz:
 * member arr_0.npy: truncated").  Library code never prints and never
 * exits.  "-" as a file name means stdin or stdout.
 *
 * This header includes the library's public headers, one a concern:
 *	core.h		errors (struct kz_err), escaping text
 *	stream.h	the record stream, its bounds, reader and writer
 *	files.h		output files published atomically, gunzipping input
 *	dataset.h	npz/npy/idx arrays, format detection, CODH books,
 *			Kuzushiji-Kanji trees
 *	image.h		grey images; PNG, JPEG and PNM
 *	norm.h		normalisation (kz-norm)
 *	classmap.h	class maps, UTF-8
 *	rng.h		random numbers
 */
#ifndef KZ_H
#define KZ_H

#include "core.h"
#include "stream.h"
#include "files.h"
#include "image.h"
#include "norm.h"
#include "dataset.h"
#include "classmap.h"
#include "rng.h"

#endif
