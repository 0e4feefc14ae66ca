/* t_drv_ngspice.c - running ngspice in batch mode and reading its raw files.
 *
 * Hand-made raw files (binary and ASCII) check the reader without ngspice:
 * values, names, lookup and interpolation, and that damaged files (empty,
 * truncated, a header claiming more points than present, complex flags) are
 * refused with a message.  With ngspice installed (ng_program), an RC step
 * response is simulated and compared with 1 - exp(-t/RC); bad decks (an
 * unknown element, a model-less transistor, a floating capacitor) must be
 * reported; a clean deck whose title says "floating error" must not; and a
 * long transient must be killed by the timeout.  Everything happens in a
 * mkdtemp directory that is removed at the end.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ngspice.h"
#include "tap.h"

static char dir[] = "/tmp/t_drv_ngspice.XXXXXX";
static char made[64][80];                /* files created in dir, removed at the end */
static int nmade;

static const char *tpath(const char *name)
{
	for (int i = 0; i < nmade; i++)
		if (!strcmp(strrchr(made[i], '/') + 1, name))
			return made[i];
	if (nmade == (int)(sizeof made / sizeof *made))
		abort();
	snprintf(made[nmade], sizeof made[nmade], "%s/%s", dir, name);
	return made[nmade++];
}

static void cleanup(void)
{
	for (int i = 0; i < nmade; i++)
		if (unlink(made[i]) != 0 && errno != ENOENT)
			diag("cannot remove %s: %s", made[i], strerror(errno));
	if (rmdir(dir) != 0)
		diag("cannot remove %s: %s", dir, strerror(errno));
}

static int write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int bad = fwrite(p, 1, n, f) != n;
	bad |= fclose(f) != 0;
	return bad ? -1 : 0;
}

static int write_text(const char *path, const char *text)
{
	return write_bytes(path, text, strlen(text));
}

/* The whole file (malloc'd, NUL-terminated); *n its length. */
static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	*n = 0;
	if (!f)
		return NULL;
	size_t cap = 0;
	for (;;) {
		if (*n + 4096 + 1 > cap) {
			cap = 2 * cap + 8192;
			char *q = realloc(p, cap);
			if (!q)
				break;
			p = q;
		}
		size_t got = fread(p + *n, 1, 4096, f);
		*n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	if (p)
		p[*n] = '\0';
	return p;
}

/* Expect ng_raw_read(path) to fail with a message containing `want`. */
static void refuse(const char *path, const char *want, const char *what)
{
	NgRaw raw;
	char err[512] = "";
	int rc = ng_raw_read(path, &raw, err, sizeof err);
	ok(rc == -1 && err[0] && strstr(err, want) && raw.data == NULL && raw.names == NULL,
	   "%s is refused", what);
	diag("  %s", err);
}

/* --------------------------------------------- reader, without ngspice */

static const char raw_head[] =
	"Title: hand made\n"
	"Date: today\n"
	"Plotname: Transient Analysis\n"
	"Flags: real\n"
	"No. Variables: 3\n"
	"No. Points: %d\n"
	"Variables:\n"
	"\t0\ttime\ttime\n"
	"\t1\tV(A)\tvoltage\n"
	"\t2\ti(vs_v_0)\tcurrent\n"
	"%s";

/* Points (t, a, i): (0, 0, 1), (1, 2, 1), (3, 4, -1). */
static const double hand_pts[3][3] = { { 0, 0, 1 }, { 1, 2, 1 }, { 3, 4, -1 } };

static int write_binary(const char *path, int claim, size_t ndouble)
{
	char head[512];
	int n = snprintf(head, sizeof head, raw_head, claim, "Binary:\n");
	size_t len = (size_t)n + ndouble * sizeof(double);
	char *buf = malloc(len);
	if (!buf)
		return -1;
	memcpy(buf, head, (size_t)n);
	memcpy(buf + n, hand_pts, ndouble * sizeof(double));
	int rc = write_bytes(path, buf, len);
	free(buf);
	return rc;
}

static void check_hand(const NgRaw *raw, const char *what)
{
	ok(raw->nvars == 3 && raw->npoints == 3, "%s: 3 variables, 3 points", what);
	ok(raw->names && !strcmp(raw->names[0], "time") && !strcmp(raw->names[1], "v(a)") &&
	   !strcmp(raw->names[2], "i(vs_v_0)"), "%s: names lower-cased", what);
	ok(ng_raw_find(raw, "a") == 1 && ng_raw_find(raw, "V(a)") == 1 && ng_raw_find(raw, "A") == 1 &&
	   ng_raw_find(raw, "I(VS_V_0)") == 2 && ng_raw_find(raw, "time") == 0 &&
	   ng_raw_find(raw, "b") == -1 && ng_raw_find(raw, "v(") == -1, "%s: ng_raw_find", what);
	ok(raw->data && raw->data[3 * 2 + 1] == 4 && raw->data[3 * 1 + 2] == 1, "%s: data point-major", what);
	is_close(ng_raw_at(raw, 1, 0.5), 1.0, 1e-15, "interpolated inside the first interval");
	is_close(ng_raw_at(raw, 1, 2.0), 3.0, 1e-15, "interpolated inside the second interval");
	is_close(ng_raw_at(raw, 2, 2.5), -0.5, 1e-15, "interpolated current");
	is_close(ng_raw_at(raw, 1, -7), 0.0, 0, "clamped before the first point");
	is_close(ng_raw_at(raw, 1, 99), 4.0, 0, "clamped after the last point");
	ok(isnan(ng_raw_at(raw, 3, 1)) && isnan(ng_raw_at(raw, -1, 1)), "bad column gives NaN");
}

static void test_reader(void)
{
	NgRaw raw;
	char err[512] = "";
	const char *bin = tpath("hand.raw");
	ok(write_binary(bin, 3, 9) == 0, "wrote a binary raw file");
	ok(ng_raw_read(bin, &raw, err, sizeof err) == 0, "read the binary raw file %s", err);
	check_hand(&raw, "binary");
	ng_raw_free(&raw);

	char text[1024];
	snprintf(text, sizeof text, raw_head, 3,
	         "Values:\n 0\t0.0\n\t0\n\t1e0\n\n 1\t1\n\t2.0\n\t1\n\n 2\t3\n\t4\n\t-1\n\n");
	const char *asc = tpath("hand_ascii.raw");
	ok(write_text(asc, text) == 0, "wrote an ASCII raw file");
	ok(ng_raw_read(asc, &raw, err, sizeof err) == 0, "read the ASCII raw file %s", err);
	check_hand(&raw, "ascii");
	ng_raw_free(&raw);

	write_binary(tpath("short.raw"), 3, 8);
	refuse(tpath("short.raw"), "truncated", "binary data one double short");
	write_binary(tpath("claim.raw"), 1000000, 9);
	refuse(tpath("claim.raw"), "truncated", "a header claiming 1000000 points");
	write_binary(tpath("huge.raw"), 2147483647, 9);
	refuse(tpath("huge.raw"), "truncated", "a header claiming 2^31-1 points");
	write_binary(tpath("zero.raw"), 0, 0);
	refuse(tpath("zero.raw"), "no points", "a header with 0 points");
	write_text(tpath("empty.raw"), "");
	refuse(tpath("empty.raw"), "empty", "a zero-length file");
	refuse(tpath("absent.raw"), "cannot open", "a missing file");
	refuse(dir, "not a regular file", "a directory");
	snprintf(text, sizeof text, raw_head, 3, "Values:\n 0\t0\n\t0\n\t1\n 1\t1\n\t2\n");
	write_text(tpath("ascii_short.raw"), text);
	refuse(tpath("ascii_short.raw"), "malformed", "ASCII values one point short");
	write_text(tpath("head.raw"), "Title: x\nFlags: real\nNo. Variables: 3\nNo. Po");
	refuse(tpath("head.raw"), "no 'Binary:'", "a header cut short");
	write_text(tpath("complex.raw"), "Title: x\nFlags: complex\nNo. Variables: 1\n");
	refuse(tpath("complex.raw"), "not 'real'", "complex flags");
	write_text(tpath("vars.raw"), "Flags: real\nNo. Variables: 9\nNo. Points: 1\nVariables:\n"
	           "\t0\ttime\ttime\n\t2\tv(a)\tvoltage\nBinary:\n");
	refuse(tpath("vars.raw"), "variable 1 of 9", "a variable list out of order and short");
	write_text(tpath("novars.raw"), "Flags: real\nNo. Variables: 1\nNo. Points: 1\nBinary:\n12345678");
	refuse(tpath("novars.raw"), "lacks the variable list", "a header without variables");
}

/* ------------------------------------------------------ with ngspice */

static const char rc_deck[] =
	"%s\n"
	"V1 in 0 DC 1\n"
	"R1 in out 1k\n"
	"C1 out 0 1n\n"
	".ic v(out)=0\n"
	".options reltol=1e-6\n"
	".tran 1n 5u 0 1n uic\n"
	".end\n";

static int run_deck(const char *name, const char *text, double timeout, NgRun *run,
                    char *err, size_t errlen)
{
	char deck[64], raw[64];
	snprintf(deck, sizeof deck, "%s.cir", name);
	snprintf(raw, sizeof raw, "%s.raw", name);
	if (write_text(tpath(deck), text) != 0) {
		snprintf(err, errlen, "cannot write the deck");
		return -2;
	}
	return ng_run(tpath(deck), tpath(raw), timeout, run, err, errlen);
}

/* Max |v(out) - (1 - exp(-t/RC))| at t = 0.1, 0.2, ... 5 us (ngspice's first
 * point is at 10 ps, not 0: at t = 0 the clamp would see its 1e-5). */
static double rc_error(const NgRaw *raw, int col)
{
	double rc = 1e3 * 1e-9, worst = 0;
	for (int k = 1; k <= 50; k++) {
		double t = 0.1e-6 * k;
		double e = fabs(ng_raw_at(raw, col, t) - (1 - exp(-t / rc)));
		if (!(e <= worst))
			worst = e;
	}
	return worst;
}

static void check_rc_raw(const char *path, const char *what)
{
	NgRaw raw;
	char err[512] = "";
	int rc = ng_raw_read(path, &raw, err, sizeof err);
	ok(rc == 0, "%s: raw file read %s", what, err);
	ok(raw.nvars == 4 && raw.npoints > 100, "%s: 4 variables, %zu points", what, raw.npoints);
	ok(rc == 0 && !strcmp(raw.names[0], "time") && ng_raw_find(&raw, "time") == 0 &&
	   ng_raw_find(&raw, "in") == 1 && ng_raw_find(&raw, "OUT") == 2 &&
	   ng_raw_find(&raw, "i(v1)") == 3, "%s: names time, v(in), v(out), i(v1)", what);
	int mono = rc == 0;
	for (size_t p = 1; mono && p < raw.npoints; p++)
		mono = raw.data[p * raw.nvars] > raw.data[(p - 1) * raw.nvars];
	ok(mono && raw.data[0] >= 0 && raw.data[0] < 1e-9 &&
	   fabs(raw.data[(raw.npoints - 1) * raw.nvars] - 5e-6) < 1e-15,
	   "%s: time increases from 0 to 5 us", what);
	double worst = rc == 0 ? rc_error(&raw, ng_raw_find(&raw, "out")) : INFINITY;
	diag("%s: max |v(out) - (1 - exp(-t/RC))| at 50 points = %.3g", what, worst);
	ok(worst <= 1e-4, "%s: v(out) follows 1 - exp(-t/RC) within 1e-4", what);
	ng_raw_free(&raw);
}

/* Damaged copies of a real raw file are refused. */
static void test_damaged(const char *path)
{
	size_t n;
	char *buf = slurp(path, &n);
	const char *bin = buf ? strstr(buf, "Binary:\n") : NULL;
	const char *pts = buf ? strstr(buf, "No. Points: ") : NULL;
	const char *eol = pts ? strchr(pts, '\n') : NULL;
	if (!ok(bin && eol && eol < bin, "read back %s", path)) {
		skip(6, "no raw file");
		free(buf);
		return;
	}
	write_bytes(tpath("cut_half.raw"), buf, n / 2);
	refuse(tpath("cut_half.raw"), "truncated", "the RC raw file cut in half");
	write_bytes(tpath("cut_one.raw"), buf, n - 1);
	refuse(tpath("cut_one.raw"), "truncated", "the RC raw file one byte short");
	write_bytes(tpath("cut_head.raw"), buf, (size_t)(bin - buf) + 4);
	refuse(tpath("cut_head.raw"), "no 'Binary:'", "the RC raw file cut inside its header");
	write_bytes(tpath("cut_zero.raw"), buf, 0);
	refuse(tpath("cut_zero.raw"), "empty", "the RC raw file cut to zero length");

	char *more = malloc(n + 64);
	if (!more)
		abort();
	size_t k = (size_t)(pts - buf);
	memcpy(more, buf, k);
	k += (size_t)sprintf(more + k, "No. Points: %ld\n", strtol(pts + 12, NULL, 10) + 1);
	memcpy(more + k, eol + 1, n - (size_t)(eol + 1 - buf));
	k += n - (size_t)(eol + 1 - buf);
	write_bytes(tpath("more.raw"), more, k);
	refuse(tpath("more.raw"), "truncated", "the RC raw file claiming one point more");
	memcpy(more, buf, n);
	memcpy(more + n, "junk", 4);
	write_bytes(tpath("junk.raw"), more, n + 4);
	refuse(tpath("junk.raw"), "unexpected bytes", "the RC raw file with junk after its data");
	free(more);
	free(buf);
}

static void test_rc(void)
{
	NgRun run;
	char err[512] = "", deck[512];
	snprintf(deck, sizeof deck, rc_deck, "rc step");
	int rc = run_deck("rc", deck, 60, &run, err, sizeof err);
	ok(rc == 0 && run.status == 0, "clean RC deck runs (%s)", err);
	ok(run.warnings == 0, "clean RC deck: no warnings (%d)", run.warnings);
	if (run.warnings || rc)
		diag("log:\n%s", run.log);
	ok(run.log && strstr(run.log, "No. of Data Rows"), "the log is captured");
	ng_run_free(&run);
	check_rc_raw(tpath("rc.raw"), "binary");
	test_damaged(tpath("rc.raw"));

	if (setenv("SPICE_ASCIIRAWFILE", "1", 1) != 0)
		diag("setenv: %s", strerror(errno));
	rc = run_deck("rc_ascii", deck, 60, &run, err, sizeof err);
	unsetenv("SPICE_ASCIIRAWFILE");
	ok(rc == 0 && run.warnings == 0, "RC deck with an ASCII raw file (%s)", err);
	ng_run_free(&run);
	check_rc_raw(tpath("rc_ascii.raw"), "ascii");

	/* The title is echoed as "Circuit: ..."; it is no warning. */
	snprintf(deck, sizeof deck, rc_deck, "floating error unknown singular warning");
	rc = run_deck("title", deck, 60, &run, err, sizeof err);
	ok(rc == 0 && run.warnings == 0, "a title with trouble words gives no warnings (%d)",
	   run.warnings);
	ng_run_free(&run);
}

static void bad_deck(const char *name, const char *text, const char *what)
{
	NgRun run;
	char err[512] = "";
	int rc = run_deck(name, text, 60, &run, err, sizeof err);
	ok((rc == -1 && err[0]) || run.warnings > 0, "%s is reported", what);
	ok(run.warnings > 0, "%s: %d warning lines", what, run.warnings);
	diag("  %s: rc %d, status %d, %s", what, rc, run.status, rc ? err : "");
	ng_run_free(&run);
}

static void test_bad(void)
{
	bad_deck("zfoo", "unknown element\nV1 in 0 DC 1\nR1 in out 1k\nZfoo 1 2 3\n"
	         "C1 out 0 1n\n.tran 1n 1u\n.end\n", "an unknown element Zfoo");
	bad_deck("q9", "no model\nV1 in 0 DC 1\nR1 in out 1k\nQ9 a b\nC1 out 0 1n\n"
	         ".tran 1n 1u\n.end\n", "a transistor Q9 without a model");
	bad_deck("float", "floating capacitor\nV1 in 0 DC 1\nR1 in out 1k\nC1 out 0 1n\n"
	         "C2 x y 1n\n.tran 1n 1u\n.end\n", "a floating capacitor");
}

/* 300 transistors without models: a long log (grown several times) with
 * a warning per element, and a failed run whose message quotes the first. */
static void test_long_log(void)
{
	static char deck[300 * 40 + 64];
	size_t k = (size_t)sprintf(deck, "many\nV1 in 0 DC 1\n");
	for (int i = 1; i <= 300; i++)
		k += (size_t)sprintf(deck + k, "R%d in 0 1k\nQ%d a%d b%d\n", i, i, i, i);
	sprintf(deck + k, ".tran 1n 1u\n.end\n");
	NgRun run;
	char err[512] = "";
	int rc = run_deck("many", deck, 60, &run, err, sizeof err);
	ok(rc == -1 && run.status != 0 && strstr(err, "can't find model 'b1'"),
	   "300 bad elements: failure quoting the first warning (%s)", err);
	ok(run.log && strlen(run.log) > 10000 && strstr(run.log, "model 'b300'"),
	   "the whole long log is captured (%zu bytes)", run.log ? strlen(run.log) : 0);
	ok(run.warnings >= 300, "300 bad elements: %d warning lines", run.warnings);
	ng_run_free(&run);
}

static void test_timeout(void)
{
	NgRun run;
	char err[512] = "";
	int rc = run_deck("long", "long\nV1 in 0 SIN(0 1 1meg)\nR1 in out 1k\nC1 out 0 1n\n"
	                  ".tran 1p 1 0 1p\n.end\n", 0.001, &run, err, sizeof err);
	ok(rc == -1 && run.status == -1 && strstr(err, "timeout"), "killed by the timeout: %s", err);
	ng_run_free(&run);
}

static void test_missing(void)
{
	const char *old = getenv("DAMC_NGSPICE");
	char *keep = old ? strdup(old) : NULL;
	setenv("DAMC_NGSPICE", "/nonexistent/ngspice", 1);
	ok(ng_program() == NULL, "ng_program: NULL for a missing DAMC_NGSPICE");
	NgRun run;
	char err[512] = "";
	int rc = ng_run(tpath("rc.cir"), tpath("none.raw"), 5, &run, err, sizeof err);
	ok(rc == -1 && run.status == -1 && strstr(err, "not found"), "ng_run without ngspice: %s", err);
	ng_run_free(&run);
	if (keep)
		setenv("DAMC_NGSPICE", keep, 1);
	else
		unsetenv("DAMC_NGSPICE");
	free(keep);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		printf("1..0 # skip mkdtemp: %s\n", strerror(errno));
		return 0;
	}
	test_reader();
	const char *prog = ng_program();
	if (prog) {
		diag("ngspice: %s", prog);
		test_rc();
		test_bad();
		test_long_log();
		test_timeout();
	} else {
		skip(32, "ngspice not found");
	}
	test_missing();
	cleanup();
	return done_testing();
}
