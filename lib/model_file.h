/*
 * model_file.h - what the model file's reader (model.c) and writer
 * (model_write.c) share.  Private to lib/.
 */
#ifndef KZ_MODEL_FILE_H
#define KZ_MODEL_FILE_H

#include <stddef.h>

#define META_MAX 65536		/* bytes of a META section, at most */

/* The settings a model may carry (META keys "setting_NAME"), by name,
 * with their ranges and their place in struct kz_settings. */
struct kz_setting_def {
	const char *name;
	int lo, hi;
	size_t off;
};
extern const struct kz_setting_def kz_setting_defs[];
extern const size_t kz_nsettings;

#endif
