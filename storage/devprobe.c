/* storage/devprobe.c: see devprobe.h. The signatures are those blkid looks for
 * first (util-linux libblkid/src/superblocks), at the same offsets. */
#include <config.h>

#include "storage/devprobe.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "storage/label.h"

#define PROBE_LEN ARR_DATA_OFF

/* ---- in use ---- */

/* The device and its partitions (when it is a whole disk), from sysfs. */
#define MAX_DEVS 64
static int dev_and_parts(dev_t dev, dev_t *out, char names[][64])
{
	char p[128], link[512];
	int n = 0;
	out[n] = dev;
	snprintf(names[n++], 64, "%u:%u", major(dev), minor(dev));
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	ssize_t l = readlink(p, link, sizeof(link) - 1);
	if (l <= 0)
		return n;
	link[l] = 0;
	DIR *d = opendir(p);
	struct dirent *de;
	while (d && (de = readdir(d)) && n < MAX_DEVS) {
		char f[600];
		unsigned ma, mi;
		snprintf(f, sizeof(f), "%s/%s/dev", p, de->d_name);
		FILE *fp = de->d_name[0] != '.' ? fopen(f, "re") : NULL;
		if (fp && fscanf(fp, "%u:%u", &ma, &mi) == 2) {
			out[n] = makedev(ma, mi);
			snprintf(names[n++], 64, "%.63s", de->d_name);
		}
		if (fp)
			fclose(fp);
	}
	if (d)
		closedir(d);
	return n;
}

static int in_set(dev_t x, const dev_t *set, int n)
{
	for (int i = 0; i < n; i++)
		if (set[i] == x)
			return i;
	return -1;
}

/* Unescape mountinfo's octal escapes (\040 for a space) in place. */
static void unoctal(char *s)
{
	char *o = s;
	for (; *s; s++)
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	*o = 0;
}

int devprobe_in_use(const char *path, char *why, size_t cap)
{
	struct stat st, rt;
	dev_t set[MAX_DEVS];
	char names[MAX_DEVS][64];
	int n, i, r = 0;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISBLK(st.st_mode))
		return 0;
	n = dev_and_parts(st.st_rdev, set, names);
	if (stat("/", &rt) == 0 && (i = in_set(rt.st_dev, set, n)) >= 0) {
		snprintf(why, cap, "%s holds the root file system /", i ? names[i] : path);
		return 1;
	}
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t lcap = 0;
	while (f && getline(&line, &lcap, f) > 0) {
		unsigned ma, mi;
		char mnt[1024], fstype[64] = "?";
		if (sscanf(line, "%*s %*s %u:%u %*s %1023s", &ma, &mi, mnt) != 3)
			continue;
		if ((i = in_set(makedev(ma, mi), set, n)) < 0)
			continue;
		const char *dash = strstr(line, " - ");
		if (dash)
			sscanf(dash + 3, "%63s", fstype);
		unoctal(mnt);
		snprintf(why, cap, "%s%s is mounted on %s (%s)", i ? "its partition " : "",
		         i ? names[i] : path, mnt, fstype);
		r = 1;
		break;
	}
	free(line);
	if (f)
		fclose(f);
	if (r)
		return r;
	/* device-mapper (LVM, LUKS), md and the like list themselves as holders. */
	for (i = 0; i < n && !r; i++) {
		char p[128];
		snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/holders", major(set[i]), minor(set[i]));
		DIR *d = opendir(p);
		struct dirent *de;
		while (d && (de = readdir(d)))
			if (de->d_name[0] != '.') {
				snprintf(why, cap, "%s%s is in use by %s (device-mapper, md or the "
				         "like)", i ? "its partition " : "", i ? names[i] : path,
				         de->d_name);
				r = 1;
				break;
			}
		if (d)
			closedir(d);
	}
	if (r)
		return r;
	f = fopen("/proc/swaps", "re");
	while (f && getline(&line, &lcap, f) > 0) {
		char sw[1024];
		struct stat ss;
		if (sscanf(line, "%1023s", sw) == 1 && sw[0] == '/' && stat(sw, &ss) == 0 &&
		    S_ISBLK(ss.st_mode) && (i = in_set(ss.st_rdev, set, n)) >= 0) {
			snprintf(why, cap, "%s%s is active swap", i ? "its partition " : "",
			         i ? names[i] : path);
			r = 1;
			break;
		}
	}
	free(line);
	if (f)
		fclose(f);
	return r;
}

/* ---- content ---- */

static const struct sig {
	uint64_t off;
	const char *magic;
	size_t len;
	const char *what;
} sigs[] = {
	{1080, "\x53\xef", 2, "an ext2/3/4 file system (superblock at 1 KiB)"},
	{0, "XFSB", 4, "an XFS file system"},
	{65600, "_BHRfS_M", 8, "a btrfs file system"},
	{0, "LUKS\xba\xbe", 6, "a LUKS encrypted volume"},
	{512, "LABELONE", 8, "an LVM physical volume"},
	{4096, "\xfc\x4e\x2b\xa9", 4, "an md RAID member (superblock 1.2)"},
	{0, "\xfc\x4e\x2b\xa9", 4, "an md RAID member (superblock 1.1)"},
	{512, "EFI PART", 8, "a GPT partition table"},
	{4096, "EFI PART", 8, "a GPT partition table (4 KiB sectors)"},
	{4086, "SWAPSPACE2", 10, "a swap area"},
	{4086, "SWAP-SPACE", 10, "a swap area"},
	{3, "NTFS    ", 8, "an NTFS file system"},
	{82, "FAT32   ", 8, "a FAT32 file system"},
	{54, "FAT1", 4, "a FAT file system"},
	{3, "EXFAT   ", 8, "an exFAT file system"},
	{32769, "CD001", 5, "an ISO 9660 image"},
	{65536, "ReIsEr", 6, "a ReiserFS file system"},
	{510, "\x55\xaa", 2, "an MBR partition table or boot sector"},
};

int devprobe_content(disk *d, char *what, size_t cap)
{
	const disk_info *in = disk_get_info(d);
	uint64_t len = in->size < PROBE_LEN ? in->size & ~(uint64_t)(DISK_ALIGN - 1) : PROBE_LEN;
	uint8_t *b = bks_alloc_aligned(DISK_ALIGN, PROBE_LEN);
	lbl_disk l;
	int r = 0;

	if (!b)
		return -ENOMEM;
	if (len && (r = disk_pread(d, b, len, 0)) < 0)
		goto out;
	if ((len >= LBL_OFF0 + LBL_SIZE && lbl_decode(b + LBL_OFF0, LBL_SIZE, &l, NULL) == 0) ||
	    (len >= LBL_OFF1 + LBL_SIZE && lbl_decode(b + LBL_OFF1, LBL_SIZE, &l, NULL) == 0))
		goto out; /* bkstor's: the array's checks decide (r = 0) */
	for (size_t i = 0; i < BKS_ARRAY_SIZE(sigs); i++)
		if (sigs[i].off + sigs[i].len <= len &&
		    !memcmp(b + sigs[i].off, sigs[i].magic, sigs[i].len)) {
			snprintf(what, cap, "%s", sigs[i].what);
			r = 1;
			goto out;
		}
	for (uint64_t i = 0; i < len; i++)
		if (b[i]) {
			uint64_t nz = 0;
			for (uint64_t j = i; j < len; j++)
				nz += b[j] != 0;
			snprintf(what, cap, "data: %llu non-zero bytes in its first %llu KiB, the first "
			         "at byte %llu (no known signature)", (unsigned long long)nz,
			         (unsigned long long)(len >> 10), (unsigned long long)i);
			r = 1;
			break;
		}
out:
	free(b);
	return r;
}
