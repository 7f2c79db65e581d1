/*
 * regress.c - replays every input the fuzzers found (tests/regress/NAME/)
 * through the same harness code (fuzz/fuzz.c); under SANITIZE=1 a
 * relapse is a sanitizer report.  Prints one "ok" line per input.
 */
#include <dirent.h>

#include "../fuzz/fuzz.c"

int
main(int argc, char *argv[])
{
	const char *dir = argc > 1 ? argv[1] : "tests/regress";
	char path[4096];
	int n = 0;

	kz_pnm_init(argv[0]);
	for (int t = 1; t <= FUZZ_TARGETS; t++) {
		DIR *d;
		struct dirent *de;

		snprintf(path, sizeof(path), "%s/%s", dir, fuzz_names[t]);
		if ((d = opendir(path)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			uint8_t *buf;
			size_t len;
			struct kz_err e;

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s/%s", dir,
			    fuzz_names[t], de->d_name);
			if (kz_slurp(path, 1 << 24, &buf, &len, &e) != 0) {
				printf("not ok - regress %s: %s\n", path, e.msg);
				continue;
			}
			fuzz_one(t, buf, len);
			free(buf);
			printf("ok - regress %s/%s\n", fuzz_names[t], de->d_name);
			n++;
		}
		closedir(d);
	}
	printf("# %d fuzz findings replayed\n", n);
	return 0;
}
