/* tests/test-disk-lock: a file-backed disk is opened by one holder at a time, as
 * O_EXCL makes a block device: while an array holds its disks, opening one of them
 * again (in this process, or an offline `bkstorctl array show` in another) fails
 * with EBUSY and says the disk is in use; after arr_close the disks open again.
 * Without the lock the second opener got the disk, and an offline command and a
 * running bkstord could write the same file. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

#define N 6

int main(void)
{
	const char *dir = tu_tmpdir("disk-lock");
	char *paths[N];
	bks_err e = {0};
	disk *d = NULL;

	arr *a = tu_make_array(dir, N, 32, NULL, paths);
	int r = disk_open(paths[2], &d, &e);
	CHECK(r == -EBUSY && !d, "second open of a held disk: %d (%s)", r, e.msg);
	CHECK(strstr(e.msg, "in use") != NULL, "the error says the disk is in use: %s", e.msg);
	disk_close(d);
	d = NULL;

	/* Every member is held, not only the one tried. */
	int held = 0;
	for (int i = 0; i < N; i++) {
		r = disk_open(paths[i], &d, &e);
		held += r == -EBUSY;
		disk_close(d);
		d = NULL;
	}
	CHECK(held == N, "all %d members are held (%d refused)", N, held);

	/* Another process: the offline CLI, as a user would run it beside bkstord. */
	const char *top = getenv("top_builddir");
	char cmd[4096], errf[700];
	snprintf(errf, sizeof(errf), "%s/cli.err", dir);
	int n = snprintf(cmd, sizeof(cmd), "'%s/cli/bkstorctl' array show", top ? top : ".");
	for (int i = 0; i < N; i++)
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " '%s'", paths[i]);
	snprintf(cmd + n, sizeof(cmd) - (size_t)n, " >/dev/null 2>'%s'", errf);
	int st = system(cmd);
	size_t len = 0;
	uint8_t *err = tu_read_file(errf, &len);
	CHECK(st != 0 && err && strstr((char *)err, "in use"),
	      "bkstorctl array show on held disks fails and says in use (status %d: %.*s)", st,
	      err ? (int)len : 0, err ? (char *)err : "");
	free(err);

	/* Released with the array. */
	arr_close(a);
	r = disk_open(paths[2], &d, &e);
	CHECK(r == 0, "after arr_close the disk opens: %d (%s)", r, e.msg);
	disk_close(d);
	a = tu_import_array(paths, N, NULL);
	CHECK(a != NULL, "and the array imports again");
	arr_close(a);
	return tu_finish();
}
