/* cli/cmd_passwd.c: `passwd`: the dashboard's password, set through a running
 * bkstord (read without echo from the terminal, twice, or once from stdin with
 * --stdin; the buffers are wiped after the request). */
#include <config.h>

#include "cli/dcmd.h"

#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* One line from the terminal without echo, or from stdin (--stdin). */
static int read_password(const char *prompt, int from_stdin, char *out, size_t cap)
{
	struct termios old, quiet;
	int tty = !from_stdin && isatty(STDIN_FILENO);
	if (tty) {
		fputs(prompt, stderr);
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	char *ok = fgets(out, (int)cap, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (!ok)
		return -1;
	out[strcspn(out, "\r\n")] = 0;
	return 0;
}

int cmd_passwd(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {DCMD_COMMON_OPTS, {"--stdin", 0, O_STDIN}, {0}};
	dcmd d;
	int r = dcmd_init(&d, c, argc, argv, opts, 0, 0, "");
	char pw[512], again[512];
	if (r)
		return r;
	int from_stdin = d.from_stdin;
	if (read_password("New dashboard password: ", from_stdin, pw, sizeof(pw)) < 0) {
		cli_err(c, "passwd: no password given");
		return CLI_FAIL;
	}
	if (!from_stdin && isatty(STDIN_FILENO)) {
		if (read_password("Again: ", 0, again, sizeof(again)) < 0 || strcmp(pw, again)) {
			cli_err(c, "passwd: the two passwords differ");
			return CLI_FAIL;
		}
	}
	cli_body b;
	char *body = NULL;
	if (cli_body_begin(&b) == 0) {
		json_str(&b.j, "password", pw);
		body = cli_body_end(&b);
	}
	memset(pw, 0, sizeof(pw));
	memset(again, 0, sizeof(again));
	if (!body) {
		cli_err(c, "passwd: out of memory");
		return CLI_FAIL;
	}
	r = dcmd_post(&d, "/api/v1/passwd", body);
	memset(body, 0, strlen(body));
	free(body);
	return r;
}
