/* web/static_files.h: the dashboard's files (web/static/), built into bkstord by
 * web/embed at build time, so the appliance serves them with no files on disk and no
 * external network. */
#ifndef BKS_STATIC_FILES_H
#define BKS_STATIC_FILES_H

#include <stddef.h>

typedef struct web_file {
	const char *name;        /* "index.html" */
	const char *type;        /* Content-Type */
	const unsigned char *data;
	size_t len;
} web_file;

extern const web_file web_files[];
extern const size_t web_nfiles;

#endif /* BKS_STATIC_FILES_H */
