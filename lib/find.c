/* find.c - models by name: the directories searched, in order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"

/* Appends dir to dirs (at most max, each KZ_DIR_MAX bytes) unless it is
 * empty, too long or already there. */
static void
add_dir(char dirs[][KZ_DIR_MAX], int *n, int max, const char *dir,
    size_t len)
{
	if (len == 0 || len >= KZ_DIR_MAX || *n >= max)
		return;
	for (int i = 0; i < *n; i++)
		if (strlen(dirs[i]) == len && memcmp(dirs[i], dir, len) == 0)
			return;
	memcpy(dirs[*n], dir, len);
	dirs[*n][len] = '\0';
	(*n)++;
}

/* Whether path is a file we may read. */
static int
readable_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    access(path, R_OK) == 0;
}

int
kz_model_dirs(const char *search_path, const char *sharedir,
    char dirs[][KZ_DIR_MAX], int max)
{
	char exe[KZ_DIR_MAX] = "", buf[KZ_DIR_MAX + 32], *slash = NULL;
	ssize_t len;
	int n = 0;

	for (const char *p = search_path; p != NULL && *p != '\0';) {
		size_t l = strcspn(p, ":");

		add_dir(dirs, &n, max, p, l);
		p += l + (p[l] == ':');
	}
	/* The running program's own tree: bin/../share/kz once installed
	 * anywhere; build/bin/../../models when run from its build in the
	 * source tree, which holds cmd/kz-classify.c. */
	if ((len = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
		exe[len] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL)
			*slash = '\0';
	}
	snprintf(buf, sizeof(buf), "%s/../share/kz", exe);
	if (slash != NULL && access(buf, X_OK) == 0)
		add_dir(dirs, &n, max, buf, strlen(buf));
	if (sharedir != NULL)
		add_dir(dirs, &n, max, sharedir, strlen(sharedir));
	snprintf(buf, sizeof(buf), "%s/../../cmd/kz-classify.c", exe);
	if (slash != NULL && readable_file(buf)) {
		snprintf(buf, sizeof(buf), "%s/../../models", exe);
		add_dir(dirs, &n, max, buf, strlen(buf));
	}
	return n;
}

int
kz_model_find(const char *name, const char *search_path,
    const char *sharedir, char *path, size_t size, struct kz_err *e)
{
	char dirs[KZ_MODEL_DIRS][KZ_DIR_MAX], tried[1024] = "";
	size_t nl = strlen(name), tl = 0;
	int n;

	/* A path, or a file of that name here, is taken as it is. */
	if (strchr(name, '/') != NULL || (nl > 4 &&
	    strcmp(name + nl - 4, ".kzm") == 0) || readable_file(name)) {
		if (nl >= size)
			return kz_errf(e, "%s: name too long", name);
		memcpy(path, name, nl + 1);
		return 0;
	}
	if (nl == 0 || nl > 255)
		return kz_errf(e, "\"%s\": not a model name", name);
	n = kz_model_dirs(search_path, sharedir, dirs, KZ_MODEL_DIRS);
	for (int i = 0; i < n; i++) {
		if ((size_t)snprintf(path, size, "%s/%s.kzm", dirs[i], name) <
		    size && readable_file(path))
			return 0;
		if (tl < sizeof(tried))
			tl += (size_t)snprintf(tried + tl, sizeof(tried) - tl,
			    "%s%s", i ? ", " : "", dirs[i]);
	}
	return kz_errf(e, "model \"%s\": no %s.kzm in %s", name, name,
	    n ? tried : "any directory (set KZ_MODEL_PATH)");
}
