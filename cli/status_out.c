/* cli/status_out.c: an array's status for people (a zpool-status-like report) and
 * for scripts (one JSON object with the same information). */
#include <config.h>

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "storage/arr_json.h"
#include "common/bks.h"
#include "storage/array.h"

double cli_job_pct(const arr_job_status *j)
{
	if (!j->total_rows)
		return 100.0;
	return 100.0 * (double)BKS_MIN(j->done_rows, j->total_rows) / (double)j->total_rows;
}

char *cli_fmt_wall(uint64_t ns, char *out, size_t cap)
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;
	if (!ns || !localtime_r(&t, &tm) || !strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(out, cap, "?");
	return out;
}

/* "label: text" with the text wrapped at 80 columns, aligned as array show does;
 * label "" continues the field above; label NULL: a paragraph of its own (later
 * lines indented by two). Control characters are shown as '?'. */
void cli_print_field(const char *label, const char *raw)
{
	int col = 0, ind = label ? 9 : 2, width = 80 - ind;
	char text[1024];

	arr_json_clean_str(text, sizeof(text), raw); /* the daemon's words reach a terminal */
	if (!label)
		width += ind; /* the first line starts at column 0 */
	else if (label[0])
		printf("%7s: ", label);
	else
		printf("%9s", "");
	for (const char *p = text; *p;) {
		while (*p == ' ')
			p++;
		int w = (int)strcspn(p, " ");
		if (!w)
			break;
		if (col && col + 1 + w > width) {
			printf("\n%*s", ind, "");
			col = 0;
			width = 80 - ind;
		} else if (col) {
			putchar(' ');
			col++;
		}
		printf("%.*s", w, p);
		col += w;
		p += w;
	}
	putchar('\n');
}

static void print_scan(const arr_status *st)
{
	const arr_scrub_status *sc = &st->last_scrub;
	char line[512], eta[32], when[64], took[32];
	int any = 0;

	for (int i = 0; i < st->njobs; i++) {
		const arr_job_status *j = &st->jobs[i];
		int n;
		if (!strcmp(j->state, "done"))
			continue;
		n = snprintf(line, sizeof(line), "%s %s: %.1f%% (%llu of %llu rows)", j->kind,
		             strcmp(j->state, "running") ? j->state : "in progress", cli_job_pct(j),
		             (unsigned long long)j->done_rows, (unsigned long long)j->total_rows);
		n = BKS_MIN(BKS_MAX(n, 0), (int)sizeof(line) - 1);
		if (j->rate_bps > 0)
			n += snprintf(line + n, sizeof(line) - (size_t)n, ", %.1f MiB/s, ETA %s",
			              j->rate_bps / (1024.0 * 1024.0),
			              cli_fmt_duration(j->eta_s, eta, sizeof(eta)));
		n = BKS_MIN(BKS_MAX(n, 0), (int)sizeof(line) - 1);
		if (!strcmp(j->kind, "scrub"))
			snprintf(line + n, sizeof(line) - (size_t)n, ", %llu errors found, %llu "
			         "repaired, %llu unrecoverable so far",
			         (unsigned long long)sc->errors_found,
			         (unsigned long long)sc->repaired,
			         (unsigned long long)sc->unrecoverable);
		cli_print_field(any++ ? "" : "scan", line);
	}
	if (sc->state == ARR_SCRUB_IDLE && sc->started_ns) {
		cli_fmt_wall(sc->finished_ns, when, sizeof(when));
		cli_fmt_duration(sc->finished_ns >= sc->started_ns
		                     ? (double)(sc->finished_ns - sc->started_ns) / 1e9 : -1,
		                 took, sizeof(took));
		/* Completed or stopped: the status does not say which (the cursor is no
		 * proof: rows written after a completed scrub raise hwm above it). */
		snprintf(line, sizeof(line), "last scrub ended %s after %s: %llu rows checked, "
		         "%llu errors found, %llu repaired, %llu unrecoverable", when, took,
		         (unsigned long long)sc->rows_checked, (unsigned long long)sc->errors_found,
		         (unsigned long long)sc->repaired, (unsigned long long)sc->unrecoverable);
		cli_print_field(any++ ? "" : "scan", line);
	}
	if (!any)
		cli_print_field("scan", "none requested");
}

enum { COL_SLOT, COL_ROLE, COL_STATE, COL_SIZE, COL_SERIAL, COL_READ, COL_WRITE, COL_CKSUM,
       COL_PATH, NCOL };

typedef struct trow {
	int heading;      /* a "spares" line, not a disk */
	char col[NCOL][DISK_SERIAL_MAX + 8];
	char path[400];
} trow;

static void fill_row(trow *t, const arr_disk_status *d, const char *state)
{
	memset(t, 0, sizeof(*t));
	if (d->slot >= 0)
		snprintf(t->col[COL_SLOT], sizeof(t->col[0]), "%d", d->slot);
	else
		snprintf(t->col[COL_SLOT], sizeof(t->col[0]), "-");
	snprintf(t->col[COL_ROLE], sizeof(t->col[0]), "%s", arr_role_name(d->role));
	snprintf(t->col[COL_STATE], sizeof(t->col[0]), "%s", state);
	if (d->size)
		bks_fmt_bytes(d->size, t->col[COL_SIZE], sizeof(t->col[0]));
	else
		snprintf(t->col[COL_SIZE], sizeof(t->col[0]), "-");
	snprintf(t->col[COL_SERIAL], sizeof(t->col[0]), "%s", d->serial[0] ? d->serial : "-");
	snprintf(t->col[COL_READ], sizeof(t->col[0]), "%llu", (unsigned long long)d->read_errors);
	snprintf(t->col[COL_WRITE], sizeof(t->col[0]), "%llu",
	         (unsigned long long)d->write_errors);
	snprintf(t->col[COL_CKSUM], sizeof(t->col[0]), "%llu",
	         (unsigned long long)d->cksum_errors);
	if (d->path[0])
		snprintf(t->path, sizeof(t->path), "%s", d->path);
	else if (!arr_uuid_str_is_zero(d->uuid))
		snprintf(t->path, sizeof(t->path), "(not present: uuid %s)", d->uuid);
	else
		snprintf(t->path, sizeof(t->path), "(empty slot)");
}

/* Members (with the disks being filled under their slot), then the spares: AVAIL,
 * UNAVAIL, and INUSE for a spare that is being rebuilt into a slot. */
static void print_table(const arr_status *st)
{
	static const char *const head[NCOL] = {"SLOT", "ROLE", "STATE", "SIZE", "SERIAL",
	                                       "READ", "WRITE", "CKSUM", "PATH"};
	trow *t = calloc((size_t)st->ndisks * 2 + 2, sizeof(*t));
	int n = 0, w[NCOL] = {0}, nspare = 0;

	if (!t)
		return;
	for (int i = 0; i < st->ndisks; i++) {
		const arr_disk_status *d = &st->disks[i];
		if (d->role == ARR_ROLE_SPARE)
			continue;
		fill_row(&t[n], d, d->state);
		if (d->role == ARR_ROLE_INCOMING) {
			size_t l = strlen(t[n].path);
			snprintf(t[n].path + l, sizeof(t[n].path) - l, " (%llu of %llu rows)",
			         (unsigned long long)d->cursor, (unsigned long long)d->rows_total);
		}
		n++;
	}
	int spares_at = n++;
	t[spares_at].heading = 1;
	for (int i = 0; i < st->ndisks; i++) {
		const arr_disk_status *d = &st->disks[i];
		if (d->role == ARR_ROLE_SPARE) {
			fill_row(&t[n++], d, d->state);
			nspare++;
		} else if (d->role == ARR_ROLE_INCOMING && !strcmp(d->state, "REBUILDING")) {
			/* The array does not say whether this disk came from the spare list
			 * or from a replace onto a failed slot; either way it is spoken for. */
			fill_row(&t[n], d, "INUSE");
			snprintf(t[n].col[COL_SLOT], sizeof(t[n].col[0]), "-");
			snprintf(t[n].col[COL_ROLE], sizeof(t[n].col[0]), "spare");
			size_t l = strlen(t[n].path);
			snprintf(t[n].path + l, sizeof(t[n].path) - l, " (in slot %d)", d->slot);
			n++;
			nspare++;
		}
	}
	for (int k = 0; k < NCOL; k++)
		w[k] = (int)strlen(head[k]);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < NCOL - 1 && !t[i].heading; k++)
			w[k] = BKS_MAX(w[k], (int)strlen(t[i].col[k]));
	putchar('\n');
	printf("\t");
	for (int k = 0; k < NCOL - 1; k++)
		printf(k >= COL_READ ? "%*s " : "%-*s ", w[k], head[k]);
	printf("%s\n", head[COL_PATH]);
	for (int i = 0; i < n; i++) {
		if (t[i].heading) {
			if (nspare)
				printf("\tspares\n");
			continue;
		}
		printf("\t");
		for (int k = 0; k < NCOL - 1; k++)
			printf(k >= COL_READ ? "%*s " : "%-*s ", w[k], t[i].col[k]);
		printf("%s\n", t[i].path);
	}
	free(t);
}

void cli_print_status_human(const arr_status *st)
{
	char line[512], cap[32], strip[32];

	printf("%7s: %s\n", "array", st->name);
	printf("%7s: %s\n", "uuid", st->uuid);
	printf("%7s: %s\n", "state", arr_health_name(st->health));
	if (st->action[0])
		cli_print_field("action", st->action);
	print_scan(st);
	snprintf(line, sizeof(line), "%d disks (%d+2), strip %s, capacity %s, %llu of %llu rows "
	         "used", st->width, st->data_strips,
	         bks_fmt_bytes(st->strip_size, strip, sizeof(strip)),
	         bks_fmt_bytes(st->capacity_bytes, cap, sizeof(cap)),
	         (unsigned long long)st->hwm, (unsigned long long)st->rows);
	cli_print_field("config", line);
	print_table(st);
}

int cli_print_status_json(const arr_status *st)
{
	json j;
	json_init(&j, stdout, 1);
	arr_status_json(&j, NULL, st);
	return json_finish(&j);
}
