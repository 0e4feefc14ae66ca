/* ngspice.c - run the ngspice binary in batch mode and read its raw file (see ngspice.h).
 *
 * Running: posix_spawnp (no shell) with stdin on /dev/null and stdout and
 * stderr on one pipe; the parent polls the pipe against a monotonic deadline,
 * sends SIGKILL when it passes, and reaps the child with waitpid.  The log is
 * then scanned line by line for trouble words, skipping the banners ngspice
 * 39 prints for every clean batch run.  Reading: the whole raw file is loaded
 * and NUL-terminated, the text header is parsed line by line within bounds,
 * and the data (native doubles after "Binary:", text after "Values:") is
 * sized against the file before any value is copied.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "ngspice.h"

extern char **environ;

#define NG_LOG_MAX ((size_t)16 << 20)   /* keep at most 16 MiB of log; drain the rest */
#define NG_LINE_MAX 1024                 /* longest header line we parse a value from */

static void fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Allocation through the one hook; NULL on failure (we report, not exit). */
static void *ng_alloc(void *p, size_t n)
{
	return dam_alloc_hook(p, n ? n : 1);
}

/* ---------------------------------------------------------------- program */

static int is_exec_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Is `name` (with a slash: that file; else searched on $PATH) executable? */
static int on_path(const char *name)
{
	if (strchr(name, '/'))
		return is_exec_file(name);
	const char *p = getenv("PATH");
	if (!p || !*p)
		p = "/usr/local/bin:/usr/bin:/bin";
	char buf[4096];
	for (;;) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		int w = n ? snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, name)
		          : snprintf(buf, sizeof buf, "./%s", name);
		if (w > 0 && (size_t)w < sizeof buf && is_exec_file(buf))
			return 1;
		if (!colon)
			return 0;
		p = colon + 1;
	}
}

const char *ng_program(void)
{
	const char *env = getenv("DAMC_NGSPICE");
	const char *prog = env && *env ? env : "ngspice";
	return on_path(prog) ? prog : NULL;
}

/* ------------------------------------------------------------ the log */

typedef struct Buf {
	char *p;
	size_t n, cap;
	int oom;             /* an allocation failed: the log is incomplete */
} Buf;

static void buf_add(Buf *b, const char *s, size_t n)
{
	if (b->oom || b->n + n > NG_LOG_MAX)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *q = ng_alloc(b->p, cap);
		if (!q) {
			b->oom = 1;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

/* Case-insensitive: does s[0..n) contain word? */
static int has_word(const char *s, size_t n, const char *word)
{
	size_t w = strlen(word);
	for (size_t i = 0; i + w <= n; i++) {
		size_t k = 0;
		while (k < w && tolower((unsigned char)s[i + k]) == word[k])
			k++;
		if (k == w)
			return 1;
	}
	return 0;
}

static int starts_with(const char *s, size_t n, const char *prefix)
{
	size_t w = strlen(prefix);
	if (n < w)
		return 0;
	for (size_t k = 0; k < w; k++)
		if (tolower((unsigned char)s[k]) != prefix[k])
			return 0;
	return 1;
}

/* Words that mark a line as a warning or an error. */
static const char *const ng_trouble[] = {
	"warning", "error", "unknown", "floating", "singular",
};

/* Lines ngspice 39 prints for every clean batch run, lower-case prefixes
 * (after leading blanks).  Some echo the user's text (the deck's title, the
 * raw file's path), which may well contain a trouble word. */
static const char *const ng_banner[] = {
	"note: no compatibility mode selected",
	"circuit:",
	"binary raw file", "ascii raw file",
	"doing analysis at temp",
	"using sparse",
	"no. of data",
	"using transient initial conditions",
	"initial transient solution",
	"total analysis time", "total elapsed time",
	"total dram available", "dram currently available",
	"maximum ngspice program size", "current ngspice program size",
	"shared ngspice pages", "text (code) pages", "stack =", "library pages",
};

/* A row "name   value" of the initial-solution table (names are the user's). */
static int is_value_row(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && !isspace((unsigned char)s[i]))
		i++;
	if (i == 0 || i == n)
		return 0;
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	char num[64];
	size_t k = n - i;
	if (k == 0 || k >= sizeof num)
		return 0;
	memcpy(num, s + i, k);
	num[k] = '\0';
	char *end;
	strtod(num, &end);
	while (isspace((unsigned char)*end))
		end++;
	return end != num && *end == '\0';
}

/* Is the line (leading blanks stripped) a warning or an error?
 * *table tracks whether we are inside the initial-solution table. */
static int is_trouble(const char *s, size_t n, int *table)
{
	if (starts_with(s, n, "initial transient solution"))
		*table = 1;
	else if (starts_with(s, n, "no. of data"))
		*table = 0;
	int hit = 0;
	for (size_t i = 0; i < sizeof ng_trouble / sizeof *ng_trouble; i++)
		hit |= has_word(s, n, ng_trouble[i]);
	if (!hit)
		return 0;
	for (size_t i = 0; i < sizeof ng_banner / sizeof *ng_banner; i++)
		if (starts_with(s, n, ng_banner[i]))
			return 0;
	if (*table && is_value_row(s, n))
		return 0;
	*table = 0;
	return 1;
}

/* Count the trouble lines of log; *first gets the first one (or NULL). */
static int count_warnings(const char *log, const char **first, size_t *firstlen)
{
	int count = 0, table = 0;
	*first = NULL;
	*firstlen = 0;
	for (const char *s = log; *s;) {
		size_t n = strcspn(s, "\r\n");
		size_t lead = 0;
		while (lead < n && isspace((unsigned char)s[lead]))
			lead++;
		if (is_trouble(s + lead, n - lead, &table)) {
			if (!count++) {
				*first = s + lead;
				*firstlen = n - lead;
			}
		}
		s += n;
		s += strspn(s, "\r\n");
	}
	return count;
}

/* ------------------------------------------------------------- running */

static int now_s(double *t)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return -1;
	*t = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
	return 0;
}

static int set_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);
	return fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0 ? -1 : 0;
}

/* Start `prog -b -r raw deck`; *out is the read end of its stdout+stderr. */
static int spawn_ngspice(const char *prog, const char *deck, const char *raw,
                         pid_t *pid, int *out, char *err, size_t errlen)
{
	int fd[2];
	if (pipe(fd) != 0) {
		fail(err, errlen, "cannot create a pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_t fa;
	int rc = set_cloexec(fd[0]) || set_cloexec(fd[1]) ? errno : 0;
	if (!rc && (rc = posix_spawn_file_actions_init(&fa)) == 0) {
		rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
		if (!rc)
			rc = posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
		if (!rc)
			rc = posix_spawn_file_actions_adddup2(&fa, fd[1], 2);
		char *argv[] = { (char *)prog, "-b", "-r", (char *)raw, (char *)deck, NULL };
		if (!rc)
			rc = posix_spawnp(pid, prog, &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
	}
	if (close(fd[1]) != 0 && !rc)
		rc = errno;
	if (rc) {
		close(fd[0]);
		fail(err, errlen, "cannot run '%s': %s", prog, strerror(rc));
		return -1;
	}
	*out = fd[0];
	return 0;
}

/* Milliseconds to wait in poll() before `deadline` (-1: none). */
static int poll_ms(double deadline, double now)
{
	if (isinf(deadline))
		return -1;
	double ms = ceil((deadline - now) * 1e3);
	return ms < 0 ? 0 : ms > 1e9 ? 1000000000 : (int)ms;
}

/* Read fd into log until EOF or the deadline.  1: EOF, 0: timed out, -1: error. */
static int drain(int fd, Buf *log, double deadline, char *err, size_t errlen)
{
	char chunk[8192];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	for (;;) {
		double now;
		if (now_s(&now) != 0) {
			fail(err, errlen, "clock_gettime: %s", strerror(errno));
			return -1;
		}
		if (now >= deadline)
			return 0;
		int r = poll(&pfd, 1, poll_ms(deadline, now));
		if (r < 0 && errno != EINTR) {
			fail(err, errlen, "poll: %s", strerror(errno));
			return -1;
		}
		if (r <= 0)
			continue;
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno != EINTR && errno != EAGAIN) {
			fail(err, errlen, "reading ngspice's output: %s", strerror(errno));
			return -1;
		}
		if (n == 0)
			return 1;
		if (n > 0)
			buf_add(log, chunk, (size_t)n);
	}
}

static int wait_child(pid_t pid, int *st, int flags)
{
	pid_t r;
	do
		r = waitpid(pid, st, flags);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -1 : r == 0 ? 0 : 1;
}

/* Reap the child, waiting no later than deadline; 1 reaped, 0 timed out, -1 error. */
static int reap(pid_t pid, int *st, double deadline)
{
	for (;;) {
		int r = wait_child(pid, st, WNOHANG);
		double now;
		if (r != 0)
			return r;
		if (now_s(&now) != 0)
			return -1;
		if (now >= deadline)
			return 0;
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
}

/* Kill the child and reap it; 0 or -1. */
static int kill_child(pid_t pid)
{
	int st;
	if (kill(pid, SIGKILL) != 0 && errno != ESRCH)
		return -1;
	return wait_child(pid, &st, 0) == 1 ? 0 : -1;
}

/* Turn a wait status into run->status; 0 when it exited 0.  The message
 * quotes the first trouble line of log. */
static int exit_status(int st, const char *log, NgRun *run, char *err, size_t errlen)
{
	if (WIFEXITED(st)) {
		run->status = WEXITSTATUS(st);
		if (run->status == 0)
			return 0;
		const char *line;
		size_t n;
		count_warnings(log, &line, &n);
		if (line)
			fail(err, errlen, "ngspice exited with status %d: %.*s", run->status, (int)n, line);
		else
			fail(err, errlen, "ngspice exited with status %d", run->status);
		return -1;
	}
	run->status = -1;
	fail(err, errlen, "ngspice was killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return -1;
}

/* Run the child to its end or the deadline; fills log and status. */
static int supervise(pid_t pid, int fd, double timeout_s, Buf *log, NgRun *run,
                     char *err, size_t errlen)
{
	double start, deadline;
	int st = 0, r = now_s(&start) == 0 ? 1 : -1;
	if (r < 0)
		fail(err, errlen, "clock_gettime: %s", strerror(errno));
	deadline = start + timeout_s;
	if (r > 0)
		r = drain(fd, log, deadline, err, errlen);
	if (r > 0 && (r = reap(pid, &st, deadline)) < 0)
		fail(err, errlen, "waitpid: %s", strerror(errno));
	if (close(fd) != 0 && r > 0) {
		fail(err, errlen, "close: %s", strerror(errno));
		r = -1;
	}
	if (r <= 0) {
		if (kill_child(pid) != 0 && r == 0)
			fail(err, errlen, "cannot kill ngspice (pid %ld): %s", (long)pid, strerror(errno));
		else if (r == 0)
			fail(err, errlen, "ngspice timeout: killed after %g s", timeout_s);
		run->status = -1;
		return -1;
	}
	return exit_status(st, log->p, run, err, errlen);
}

static int file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int ng_run(const char *deck, const char *raw, double timeout_s, NgRun *run,
           char *err, size_t errlen)
{
	run->status = -1;
	run->log = NULL;
	run->warnings = 0;
	Buf log = { 0 };
	buf_add(&log, "", 0);
	run->log = log.p;
	if (!log.p) {
		fail(err, errlen, "out of memory");
		return -1;
	}
	const char *prog = ng_program();
	if (!prog) {
		fail(err, errlen, "ngspice not found (set DAMC_NGSPICE or put ngspice on PATH)");
		return -1;
	}
	if (!(timeout_s >= 0)) {
		fail(err, errlen, "bad timeout %g s", timeout_s);
		return -1;
	}
	if (unlink(raw) != 0 && errno != ENOENT) {
		fail(err, errlen, "cannot remove the old raw file '%s': %s", raw, strerror(errno));
		return -1;
	}
	pid_t pid;
	int fd;
	if (spawn_ngspice(prog, deck, raw, &pid, &fd, err, errlen) != 0)
		return -1;
	int rc = supervise(pid, fd, timeout_s, &log, run, err, errlen);
	run->log = log.p;
	const char *first;
	size_t n;
	run->warnings = count_warnings(run->log, &first, &n);
	if (rc == 0 && log.oom) {
		fail(err, errlen, "out of memory while reading ngspice's output");
		rc = -1;
	}
	if (rc == 0 && !file_exists(raw)) {
		fail(err, errlen, "ngspice exited 0 but wrote no raw file '%s'", raw);
		rc = -1;
	}
	return rc;
}

void ng_run_free(NgRun *run)
{
	if (!run)
		return;
	dam_free(run->log);
	run->log = NULL;
}

/* ------------------------------------------------------------ raw files */

typedef struct RawText {
	const char *path;
	char *buf;           /* the file, NUL-terminated */
	size_t len;
	char *err;
	size_t errlen;
} RawText;

static int read_all(int fd, RawText *rt, size_t want)
{
	while (rt->len < want) {
		ssize_t n = read(fd, rt->buf + rt->len, want - rt->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fail(rt->err, rt->errlen, "cannot read raw file '%s': %s", rt->path,
			     n < 0 ? strerror(errno) : "it shrank while being read");
			return -1;
		}
		rt->len += (size_t)n;
	}
	rt->buf[rt->len] = '\0';
	return 0;
}

/* The whole file into rt->buf, NUL-terminated. */
static int load_file(RawText *rt)
{
	struct stat st;
	int fd = open(rt->path, O_RDONLY);
	if (fd < 0) {
		fail(rt->err, rt->errlen, "cannot open raw file '%s': %s", rt->path, strerror(errno));
		return -1;
	}
	int rc = -1;
	if (fstat(fd, &st) != 0)
		fail(rt->err, rt->errlen, "cannot stat raw file '%s': %s", rt->path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		fail(rt->err, rt->errlen, "raw file '%s' is not a regular file", rt->path);
	else if (st.st_size <= 0)
		fail(rt->err, rt->errlen, "raw file '%s' is empty", rt->path);
	else if ((uintmax_t)st.st_size >= SIZE_MAX / 2 ||
	         !(rt->buf = ng_alloc(NULL, (size_t)st.st_size + 1)))
		fail(rt->err, rt->errlen, "raw file '%s' is too large to load", rt->path);
	else
		rc = read_all(fd, rt, (size_t)st.st_size);
	if (close(fd) != 0 && rc == 0) {
		fail(rt->err, rt->errlen, "cannot close raw file '%s': %s", rt->path, strerror(errno));
		rc = -1;
	}
	return rc;
}

/* One header line: [s, s+n), without its newline (or \r\n). */
typedef struct Line {
	const char *s;
	size_t n;
} Line;

/* The line at *pos; advances *pos past it.  0 at the end of the file. */
static int next_line(const RawText *rt, size_t *pos, Line *ln)
{
	if (*pos >= rt->len)
		return 0;
	const char *s = rt->buf + *pos;
	const char *nl = memchr(s, '\n', rt->len - *pos);
	size_t n = nl ? (size_t)(nl - s) : rt->len - *pos;
	*pos += n + (nl ? 1 : 0);
	if (n && s[n - 1] == '\r')
		n--;
	ln->s = s;
	ln->n = n;
	return 1;
}

static int line_is(const Line *ln, const char *key)
{
	size_t k = strlen(key);
	return ln->n >= k && memcmp(ln->s, key, k) == 0;
}

/* Copy the part of a line after `skip` bytes into buf (NUL-terminated). */
static int line_copy(const Line *ln, size_t skip, char *buf, size_t size)
{
	size_t n = ln->n - skip;
	if (n >= size || memchr(ln->s + skip, '\0', n))
		return -1;
	memcpy(buf, ln->s + skip, n);
	buf[n] = '\0';
	return 0;
}

/* "No. Points: 5011" -> 5011; -1 if not a plain count. */
static int line_count(const Line *ln, size_t skip, size_t *out)
{
	char buf[64], *end;
	if (line_copy(ln, skip, buf, sizeof buf) != 0)
		return -1;
	const char *p = buf;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!isdigit((unsigned char)*p))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(p, &end, 10);
	while (*end == ' ' || *end == '\t')
		end++;
	if (errno || *end || v > SIZE_MAX)
		return -1;
	*out = (size_t)v;
	return 0;
}

/* Flags must name "real" and not "complex". */
static int flags_real(const Line *ln)
{
	return has_word(ln->s, ln->n, "real") && !has_word(ln->s, ln->n, "complex");
}

/* "\tINDEX\tNAME\tTYPE..." -> names[i] (lower-cased). */
static int parse_var(const Line *ln, size_t i, char **names)
{
	char buf[NG_LINE_MAX], name[NG_LINE_MAX];
	unsigned long idx;
	if (ln->n == 0 || !isspace((unsigned char)ln->s[0]) || line_copy(ln, 0, buf, sizeof buf) != 0)
		return -1;
	if (sscanf(buf, " %lu %1023s", &idx, name) != 2 || idx != i)
		return -1;
	size_t n = strlen(name);
	if (!(names[i] = ng_alloc(NULL, n + 1)))
		return -1;
	for (size_t k = 0; k <= n; k++)
		names[i][k] = (char)tolower((unsigned char)name[k]);
	return 0;
}

static void raw_clear(NgRaw *raw)
{
	if (raw->names)
		for (size_t i = 0; i < raw->nvars; i++)
			dam_free(raw->names[i]);
	dam_free(raw->names);
	dam_free(raw->data);
	memset(raw, 0, sizeof *raw);
}

/* The "Variables:" list: raw->nvars lines after *pos. */
static int parse_vars(RawText *rt, size_t *pos, NgRaw *raw)
{
	if (raw->nvars == 0 || raw->names) {
		fail(rt->err, rt->errlen, "raw file '%s': %s", rt->path,
		     raw->names ? "two variable lists" : "'Variables:' before a non-zero 'No. Variables:'");
		return -1;
	}
	if (raw->nvars > rt->len / 4 || !(raw->names = ng_alloc(NULL, raw->nvars * sizeof *raw->names))) {
		fail(rt->err, rt->errlen, "raw file '%s': cannot hold %zu variables", rt->path, raw->nvars);
		return -1;
	}
	memset(raw->names, 0, raw->nvars * sizeof *raw->names);
	for (size_t i = 0; i < raw->nvars; i++) {
		Line ln;
		if (!next_line(rt, pos, &ln) || parse_var(&ln, i, raw->names) != 0) {
			fail(rt->err, rt->errlen, "raw file '%s': variable %zu of %zu is missing or malformed",
			     rt->path, i, raw->nvars);
			return -1;
		}
	}
	return 0;
}

enum { HDR_ERR = -1, HDR_BINARY = 1, HDR_VALUES = 2 };

/* One header line other than the data marker; 0 ok, -1 error. */
static int header_line(RawText *rt, const Line *ln, size_t *pos, NgRaw *raw,
                       int *have_flags, int *have_points)
{
	if (line_is(ln, "Flags:")) {
		*have_flags = 1;
		if (flags_real(ln))
			return 0;
		fail(rt->err, rt->errlen, "raw file '%s': flags are not 'real' (%.*s)", rt->path,
		     (int)(ln->n > 80 ? 80 : ln->n), ln->s);
		return -1;
	}
	if (line_is(ln, "No. Variables:")) {
		if (!raw->names && line_count(ln, 14, &raw->nvars) == 0)
			return 0;
		fail(rt->err, rt->errlen, "raw file '%s': bad 'No. Variables:' line", rt->path);
		return -1;
	}
	if (line_is(ln, "No. Points:")) {
		*have_points = 1;
		if (line_count(ln, 11, &raw->npoints) == 0)
			return 0;
		fail(rt->err, rt->errlen, "raw file '%s': bad 'No. Points:' line", rt->path);
		return -1;
	}
	if (line_is(ln, "Variables:"))
		return parse_vars(rt, pos, raw);
	return 0;                            /* Title, Date, Plotname, Command, Option ... */
}

/* Parse the header up to "Binary:" or "Values:"; *pos is then the data's offset. */
static int parse_header(RawText *rt, size_t *pos, NgRaw *raw)
{
	int have_flags = 0, have_points = 0;
	Line ln;
	while (next_line(rt, pos, &ln)) {
		int kind = line_is(&ln, "Binary:") ? HDR_BINARY : line_is(&ln, "Values:") ? HDR_VALUES : 0;
		if (kind) {
			const char *miss = !have_flags ? "'Flags:'" : !have_points ? "'No. Points:'"
			                 : !raw->names ? "the variable list" : NULL;
			if (!miss && raw->npoints > 0)
				return kind;
			if (miss)
				fail(rt->err, rt->errlen, "raw file '%s': the header lacks %s", rt->path, miss);
			else
				fail(rt->err, rt->errlen, "raw file '%s' holds no points", rt->path);
			return HDR_ERR;
		}
		if (header_line(rt, &ln, pos, raw, &have_flags, &have_points) != 0)
			return HDR_ERR;
	}
	fail(rt->err, rt->errlen, "raw file '%s' has no 'Binary:' or 'Values:' section", rt->path);
	return HDR_ERR;
}

/* Total values, or 0 if npoints * nvars overflows a byte count of doubles. */
static size_t value_count(const NgRaw *raw)
{
	if (raw->npoints > SIZE_MAX / sizeof(double) / raw->nvars)
		return 0;
	return raw->npoints * raw->nvars;
}

/* Bytes after the data must be nothing or a further plot. */
static int check_tail(RawText *rt, size_t pos)
{
	if (pos >= rt->len || (rt->len - pos >= 6 && memcmp(rt->buf + pos, "Title:", 6) == 0))
		return 0;
	fail(rt->err, rt->errlen, "raw file '%s' has %zu unexpected bytes after its data",
	     rt->path, rt->len - pos);
	return -1;
}

static int read_binary(RawText *rt, size_t pos, NgRaw *raw)
{
	size_t nval = value_count(raw), avail = rt->len - pos;
	if (nval == 0 || nval * sizeof(double) > avail) {
		fail(rt->err, rt->errlen,
		     "raw file '%s' is truncated: the header claims %zu points of %zu variables, "
		     "the file holds %zu bytes of data", rt->path, raw->npoints, raw->nvars, avail);
		return -1;
	}
	if (!(raw->data = ng_alloc(NULL, nval * sizeof(double)))) {
		fail(rt->err, rt->errlen, "out of memory reading '%s'", rt->path);
		return -1;
	}
	memcpy(raw->data, rt->buf + pos, nval * sizeof(double));
	return check_tail(rt, pos + nval * sizeof(double));
}

/* Point p of an ASCII "Values:" section at *s: "p\tv0\n\tv1\n..." */
static int ascii_point(char **s, size_t p, size_t nvars, double *row)
{
	char *q = *s, *end;
	while (isspace((unsigned char)*q))
		q++;
	if (!isdigit((unsigned char)*q))
		return -1;
	errno = 0;
	unsigned long long idx = strtoull(q, &end, 10);
	if (errno || idx != p || !isspace((unsigned char)*end))
		return -1;
	for (size_t v = 0; v < nvars; v++) {
		q = end;
		row[v] = strtod(q, &end);
		if (end == q)
			return -1;
	}
	*s = end;
	return 0;
}

static int read_ascii(RawText *rt, size_t pos, NgRaw *raw)
{
	size_t nval = value_count(raw);
	if (nval == 0 || nval > (rt->len - pos) / 2) {
		fail(rt->err, rt->errlen,
		     "raw file '%s' is truncated: the header claims %zu points of %zu variables, "
		     "the file holds %zu bytes of values", rt->path, raw->npoints, raw->nvars, rt->len - pos);
		return -1;
	}
	if (!(raw->data = ng_alloc(NULL, nval * sizeof(double)))) {
		fail(rt->err, rt->errlen, "out of memory reading '%s'", rt->path);
		return -1;
	}
	char *s = rt->buf + pos;
	for (size_t p = 0; p < raw->npoints; p++)
		if (ascii_point(&s, p, raw->nvars, raw->data + p * raw->nvars) != 0) {
			fail(rt->err, rt->errlen, "raw file '%s': point %zu of %zu is missing or malformed",
			     rt->path, p, raw->npoints);
			return -1;
		}
	while (isspace((unsigned char)*s))
		s++;
	return check_tail(rt, (size_t)(s - rt->buf));
}

int ng_raw_read(const char *path, NgRaw *raw, char *err, size_t errlen)
{
	char dummy[1];
	RawText rt = { path, NULL, 0, err && errlen ? err : dummy, err && errlen ? errlen : 1 };
	rt.err[0] = '\0';
	memset(raw, 0, sizeof *raw);
	int rc = load_file(&rt);
	size_t pos = 0;
	int kind = rc == 0 ? parse_header(&rt, &pos, raw) : HDR_ERR;
	if (kind == HDR_BINARY)
		rc = read_binary(&rt, pos, raw);
	else if (kind == HDR_VALUES)
		rc = read_ascii(&rt, pos, raw);
	else
		rc = -1;
	dam_free(rt.buf);
	if (rc != 0)
		raw_clear(raw);
	return rc;
}

/* ------------------------------------------------------------- queries */

/* Case-insensitive comparison of n bytes. */
static int ci_eq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
			return 0;
	return 1;
}

int ng_raw_find(const NgRaw *raw, const char *name)
{
	if (!raw || !raw->names || !name || raw->nvars > INT32_MAX)
		return -1;
	size_t n = strlen(name);
	for (size_t i = 0; i < raw->nvars; i++)
		if (strlen(raw->names[i]) == n && ci_eq(raw->names[i], name, n))
			return (int)i;
	for (size_t i = 0; i < raw->nvars; i++) {
		const char *v = raw->names[i];
		if (strlen(v) == n + 3 && ci_eq(v, "v(", 2) && ci_eq(v + 2, name, n) && v[n + 2] == ')')
			return (int)i;
	}
	return -1;
}

double ng_raw_at(const NgRaw *raw, int col, double t)
{
	if (!raw || !raw->data || raw->npoints == 0 || col < 0 || (size_t)col >= raw->nvars || isnan(t))
		return NAN;
	const double *d = raw->data;
	size_t nv = raw->nvars, lo = 0, hi = raw->npoints - 1;
	if (t <= d[0])
		return d[col];
	if (t >= d[hi * nv])
		return d[hi * nv + (size_t)col];
	while (hi - lo > 1) {                /* d[lo*nv] < t < d[hi*nv] */
		size_t mid = lo + (hi - lo) / 2;
		if (d[mid * nv] <= t)
			lo = mid;
		else
			hi = mid;
	}
	double t0 = d[lo * nv], t1 = d[hi * nv];
	double y0 = d[lo * nv + (size_t)col], y1 = d[hi * nv + (size_t)col];
	if (!(t1 > t0))
		return y1;
	return y0 + (y1 - y0) * (t - t0) / (t1 - t0);
}

void ng_raw_free(NgRaw *raw)
{
	if (raw)
		raw_clear(raw);
}
