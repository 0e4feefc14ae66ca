/* report.c - result lines, trace files and gnuplot plots for `damc run`.
 *
 * Text is built in a RepBuf and written in one go, so results of a batch
 * come out in run order whatever thread computed them.  JSON numbers use
 * %.17g (round-trip exact); a non-finite number is written as null, in the
 * table as "n/a", in a CSV trace as an empty field: no output prints "nan"
 * or "inf" (only .npy traces hold such values, as data).  Trace
 * files and plots are written atomically: a temp file beside the target,
 * then rename().  A plot writes the trace as a whitespace-separated data
 * file and a gnuplot script into a private temp directory, runs `gnuplot`
 * on it (posix_spawnp, its messages captured to a log we echo on failure)
 * and moves the picture into place.  The panels follow the papers' figures:
 * visible states, hidden activations, energy, against time.
 */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dam_npy.h"

extern char **environ;

/* ---- text buffer -------------------------------------------------------- */

void rep_init(RepBuf *b)
{
	b->s = NULL;
	b->n = b->cap = 0;
}

void rep_free(RepBuf *b)
{
	free(b->s);
	rep_init(b);
}

static void rep_reserve(RepBuf *b, size_t extra)
{
	if (b->n + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->n + extra + 1)
		cap *= 2;
	char *s = realloc(b->s, cap);
	if (!s) {
		fputs("damc: out of memory\n", stderr);
		exit(3);
	}
	b->s = s;
	b->cap = cap;
}

void rep_printf(RepBuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	rep_reserve(b, (size_t)len);
	va_start(ap, fmt);
	vsnprintf(b->s + b->n, (size_t)len + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)len;
}

void rep_json_string(RepBuf *b, const char *s)
{
	rep_printf(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			rep_printf(b, "\\%c", *p);
		else if (*p == '\n')
			rep_printf(b, "\\n");
		else if (*p == '\t')
			rep_printf(b, "\\t");
		else if (*p < 0x20)
			rep_printf(b, "\\u%04x", *p);
		else
			rep_printf(b, "%c", *p);
	}
	rep_printf(b, "\"");
}

void rep_json_number(RepBuf *b, double v)
{
	if (!isfinite(v))
		rep_printf(b, "null");
	else if (v == 0)
		rep_printf(b, "0");                   /* no "-0" */
	else
		rep_printf(b, "%.17g", v);
}

static void rep_json_array(RepBuf *b, const double *v, int64_t n)
{
	rep_printf(b, "[");
	for (int64_t i = 0; i < n; i++) {
		if (i)
			rep_printf(b, ",");
		rep_json_number(b, v[i]);
	}
	rep_printf(b, "]");
}

/* ---- result lines ----------------------------------------------------------- */

const char *report_status_name(DamStatus s)
{
	switch (s) {
	case DAM_OK: return "ok";
	case DAM_DIVERGED: return "diverged";
	case DAM_NAN: return "nan";
	case DAM_STEP_FAIL: return "step_fail";
	}
	return "unknown";
}

static void rep_json_inputs(RepBuf *b, const Model *m, const ReportRun *r)
{
	rep_printf(b, "{");
	for (int i = 0; i < m->ninputs; i++) {
		if (i)
			rep_printf(b, ",");
		rep_json_string(b, m->inputs[i].name);
		rep_printf(b, ":");
		if (r->inputs[i])
			rep_json_array(b, r->inputs[i], m->inputs[i].n);
		else
			rep_printf(b, "null");
	}
	rep_printf(b, "}");
}

static void rep_json_outputs(RepBuf *b, const Model *m, const ReportRun *r)
{
	rep_printf(b, "{");
	for (int k = 0; k < r->nsel; k++) {
		const MOutput *o = &m->outputs[r->sel[k]];
		if (k)
			rep_printf(b, ",");
		rep_json_string(b, o->name);
		rep_printf(b, ":");
		rep_json_array(b, r->outputs + r->output_off[r->sel[k]], o->n);
	}
	rep_printf(b, "}");
}

/* A time that is "not reached" (< 0) is null. */
static void rep_json_time(RepBuf *b, double t)
{
	if (t < 0)
		rep_printf(b, "null");
	else
		rep_json_number(b, t);
}

void report_json_run(RepBuf *b, const Model *m, const ReportRun *r)
{
	const DamRunResult *res = r->res;
	rep_printf(b, "{\"index\":%lld,\"inputs\":", (long long)r->index);
	rep_json_inputs(b, m, r);
	rep_printf(b, ",\"outputs\":");
	rep_json_outputs(b, m, r);
	rep_printf(b, ",\"energy_start\":");
	rep_json_number(b, res->energy_start);
	rep_printf(b, ",\"energy_end\":");
	rep_json_number(b, res->energy_end);
	rep_printf(b, ",\"t_end\":");
	rep_json_number(b, res->t);
	rep_printf(b, ",\"t_converged\":");
	rep_json_time(b, res->t_converged);
	rep_printf(b, ",\"t_converged_tau\":");
	rep_json_time(b, res->t_converged_tau);
	rep_printf(b, ",\"steps\":%lld,\"status\":", (long long)res->steps);
	rep_json_string(b, report_status_name(res->status));
	rep_printf(b, ",\"message\":");
	if (r->message && r->message[0])
		rep_json_string(b, r->message);
	else
		rep_printf(b, "null");
	rep_printf(b, ",\"energy_rise\":");
	rep_json_number(b, res->max_energy_rise);
	rep_printf(b, "}\n");
}

void report_text_header(RepBuf *b)
{
	rep_printf(b, "%5s  %-9s  %13s  %13s  %s\n", "run", "status", "energy_start", "energy_end",
	           "outputs");
}

/* A number of the table; a non-finite one is "n/a" (the run's status then
 * says why: nan, diverged, step_fail), never "nan" or "inf". */
static void rep_text_number(RepBuf *b, int width, double v)
{
	if (!isfinite(v))
		rep_printf(b, "%*s", width, REPORT_NOT_A_VALUE);
	else
		rep_printf(b, "%*.6g", width, v);
}

void report_text_run(RepBuf *b, const Model *m, const ReportRun *r)
{
	rep_printf(b, "%5lld  %-9s  ", (long long)r->index, report_status_name(r->res->status));
	rep_text_number(b, 13, r->res->energy_start);
	rep_printf(b, "  ");
	rep_text_number(b, 13, r->res->energy_end);
	rep_printf(b, " ");
	for (int k = 0; k < r->nsel; k++) {
		const MOutput *o = &m->outputs[r->sel[k]];
		const double *v = r->outputs + r->output_off[r->sel[k]];
		rep_printf(b, " %s=", o->name);
		if (o->rank == 0) {
			rep_text_number(b, 0, v[0]);
			continue;
		}
		rep_printf(b, "[");
		for (int64_t i = 0; i < o->n; i++) {
			if (i)
				rep_printf(b, " ");
			rep_text_number(b, 0, v[i]);
		}
		rep_printf(b, "]");
	}
	if (r->message && r->message[0])
		rep_printf(b, "  (%s)", r->message);
	rep_printf(b, "\n");
}

/* ---- files --------------------------------------------------------------- */

/* A writable temp file beside path; *tmp receives its malloc'd name. */
static FILE *rep_open_temp(const char *path, char **tmp)
{
	size_t n = strlen(path) + 16;
	*tmp = malloc(n);
	if (!*tmp)
		return NULL;
	snprintf(*tmp, n, "%s.tmp-XXXXXX", path);
	int fd = mkstemp(*tmp);
	if (fd < 0) {
		free(*tmp);
		*tmp = NULL;
		return NULL;
	}
	mode_t mask = umask(0);           /* mkstemp makes 0600: give the usual 0666 & ~umask */
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	FILE *f = fdopen(fd, "wb");
	if (!f) {
		close(fd);
		unlink(*tmp);
		free(*tmp);
		*tmp = NULL;
	}
	return f;
}

int report_write_file(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
	char *tmp;
	FILE *f = rep_open_temp(path, &tmp);
	if (!f) {
		snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
		return -1;
	}
	int bad = fwrite(data, 1, len, f) != len;
	bad |= fclose(f) != 0;
	if (bad || rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}

static int rep_copy_file(const char *from, const char *to, char *err, size_t errlen)
{
	FILE *f = fopen(from, "rb");
	if (!f) {
		snprintf(err, errlen, "gnuplot wrote no picture");
		return -1;
	}
	RepBuf b;
	rep_init(&b);
	char chunk[8192];
	size_t got;
	while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
		rep_reserve(&b, got);
		memcpy(b.s + b.n, chunk, got);
		b.n += got;
	}
	fclose(f);
	int r = report_write_file(to, b.s ? b.s : "", b.n, err, errlen);
	rep_free(&b);
	return r;
}

/* ---- traces ------------------------------------------------------------- */

void report_trace_init(RepTrace *t, size_t nstate)
{
	memset(t, 0, sizeof *t);
	t->nstate = nstate;
	t->ncols = 2 * nstate + 2;
}

void report_trace_free(RepTrace *t)
{
	free(t->rows);
	report_trace_init(t, t->nstate);
}

void report_trace_add(RepTrace *t, double time, const double *x, const double *g, double energy)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 256;
		t->rows = realloc(t->rows, t->cap * t->ncols * sizeof *t->rows);
		if (!t->rows) {
			fputs("damc: out of memory\n", stderr);
			exit(3);
		}
	}
	double *r = t->rows + t->nrows++ * t->ncols;
	r[0] = time;
	memcpy(r + 1, x, t->nstate * sizeof *x);
	memcpy(r + 1 + t->nstate, g, t->nstate * sizeof *g);
	r[t->ncols - 1] = energy;
}

static bool rep_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void rep_csv_header(RepBuf *b, const Model *m)
{
	rep_printf(b, "t");
	for (int pass = 0; pass < 2; pass++)
		for (int l = 0; l < m->nlayers; l++)
			for (int64_t j = 0; j < m->layers[l].n; j++)
				rep_printf(b, ",%s%s[%lld]", pass ? "g_" : "", m->layers[l].name, (long long)j);
	rep_printf(b, ",E\n");
}

/* A CSV field; a non-finite value is an empty (missing) field, which CSV
 * readers take as NaN: "nan" is never printed.  Only a run that did not end
 * ok has such values. */
static void rep_csv_number(RepBuf *b, double v)
{
	if (isfinite(v))
		rep_printf(b, "%.17g", v);
}

/* The data file gnuplot reads (private, deleted after the plot): a
 * non-finite value is its 'missing' marker. */
static void rep_plot_number(RepBuf *b, double v)
{
	if (isfinite(v))
		rep_printf(b, "%.17g", v);
	else
		rep_printf(b, "nan");
}

int report_trace_write(const char *path, const Model *m, const RepTrace *t, char *err,
                       size_t errlen)
{
	if (rep_has_suffix(path, ".npy")) {
		int64_t shape[2] = { (int64_t)t->nrows, (int64_t)t->ncols };
		char e[256];
		if (dam_npy_write(path, 2, shape, t->rows, e, sizeof e) == 0)
			return 0;
		snprintf(err, errlen, "cannot write '%s': %s", path, e);
		return -1;
	}
	if (!rep_has_suffix(path, ".csv")) {
		snprintf(err, errlen, "trace file '%s' must end in .csv or .npy", path);
		return -1;
	}
	RepBuf b;
	rep_init(&b);
	rep_csv_header(&b, m);
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			rep_csv_number(&b, t->rows[r * t->ncols + c]);
			rep_printf(&b, c + 1 == t->ncols ? "\n" : ",");
		}
	int rc = report_write_file(path, b.s ? b.s : "", b.n, err, errlen);
	rep_free(&b);
	return rc;
}

/* ---- plots ---------------------------------------------------------------- */

/* Visible layers are those that appear only on the column side of the
 * weight blocks ("h -- v": v is visible); without blocks, the first layer. */
static bool rep_is_visible(const Model *m, int l)
{
	bool col = false, row = false;
	for (int b = 0; b < m->nblocks; b++) {
		if (m->blocks[b].self)
			continue;
		col |= m->blocks[b].b == l;
		row |= m->blocks[b].a == l;
	}
	if (!col && !row)
		return l == 0;
	return col && !row;
}

/* One panel: every neuron of the selected layers; x (pass 0) or g (pass 1). */
static void rep_plot_panel(RepBuf *b, const Model *m, const RepTrace *t, bool visible, int pass,
                           const char *ylabel)
{
	int64_t nseries = 0;
	for (int l = 0; l < m->nlayers; l++)
		if (rep_is_visible(m, l) == visible)
			nseries += m->layers[l].n;
	rep_printf(b, "set ylabel '%s'\n", ylabel);
	rep_printf(b, nseries > 12 ? "unset key\n" : "set key outside right\n");
	if (nseries == 0) {
		rep_printf(b, "plot 'trace.dat' using 1:(NaN) notitle\n");
		return;
	}
	const char *sep = "plot ";
	size_t col = 2;
	for (int l = 0; l < m->nlayers; l++) {
		for (int64_t j = 0; j < m->layers[l].n; j++, col++) {
			if (rep_is_visible(m, l) != visible)
				continue;
			rep_printf(b, "%s'trace.dat' using 1:%zu with lines title '%s%s[%lld]'", sep,
			           col + (size_t)pass * t->nstate, pass ? "g_" : "", m->layers[l].name,
			           (long long)j);
			sep = ", \\\n     ";
		}
	}
	rep_printf(b, "\n");
}

static void rep_plot_script(RepBuf *b, const Model *m, const RepTrace *t)
{
	rep_printf(b, "set datafile missing 'nan'\nset grid\n");
	rep_printf(b, "set multiplot layout 3,1\nset lmargin 12\nset rmargin 16\n");
	rep_plot_panel(b, m, t, true, 0, "visible state x");
	rep_plot_panel(b, m, t, false, 1, "hidden activation g");
	rep_printf(b, "set xlabel 't'\nset ylabel 'energy E'\nunset key\n");
	rep_printf(b, "plot 'trace.dat' using 1:%zu with lines lw 2 title 'E'\n", t->ncols);
	rep_printf(b, "unset multiplot\n");
}

/* Run gnuplot in dir on plot.gp; its stderr goes to dir/gnuplot.log. */
static int rep_run_gnuplot(const char *dir, char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	char log[4200], script[4200];
	snprintf(log, sizeof log, "%s/gnuplot.log", dir);
	snprintf(script, sizeof script, "%s/plot.gp", dir);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char *argv[] = { "gnuplot", "-e", NULL, script, NULL };
	char cd[4200];
	snprintf(cd, sizeof cd, "cd '%s'", dir);
	argv[2] = cd;
	pid_t pid;
	int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		snprintf(err, errlen, "cannot run gnuplot (needed for --plot): %s%s", strerror(rc),
		         rc == ENOENT ? " (is gnuplot installed and on PATH?)" : "");
		return -1;
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		snprintf(err, errlen, "cannot run gnuplot (needed for --plot): not found");
		return -1;
	}
	FILE *f = fopen(log, "r");
	char line[512] = "";
	if (f) {
		while (fgets(line, sizeof line, f) && line[0] == '\n')
			;
		fclose(f);
		line[strcspn(line, "\n")] = '\0';
	}
	snprintf(err, errlen, "gnuplot failed%s%s", line[0] ? ": " : "", line);
	return -1;
}

static void rep_rmdir(const char *dir)
{
	static const char *const names[] = { "trace.dat", "plot.gp", "plot.out", "gnuplot.log" };
	char p[4200];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
}

int report_gnuplot(const char *path, const char *body, const char *data, size_t ndata, char *err,
                   size_t errlen)
{
	bool svg = rep_has_suffix(path, ".svg");
	if (!svg && !rep_has_suffix(path, ".png")) {
		snprintf(err, errlen, "plot file '%s' must end in .png or .svg", path);
		return -1;
	}
	const char *tmpdir = getenv("TMPDIR");
	char dir[4096], p[4200];
	snprintf(dir, sizeof dir, "%s/damc-plot-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (strchr(dir, '\'') || !mkdtemp(dir)) {
		snprintf(err, errlen, "cannot create a temporary directory for the plot: %s",
		         strerror(errno));
		return -1;
	}
	RepBuf script;
	rep_init(&script);
	if (svg)
		rep_printf(&script, "set terminal svg noenhanced size 900,1000 dynamic\nset output 'plot.out'\n");
	else
		rep_printf(&script, "set terminal pngcairo noenhanced size 900,1000\nset output 'plot.out'\n");
	rep_printf(&script, "%s", body);
	snprintf(p, sizeof p, "%s/trace.dat", dir);
	int rc = report_write_file(p, data, ndata, err, errlen);
	snprintf(p, sizeof p, "%s/plot.gp", dir);
	if (rc == 0)
		rc = report_write_file(p, script.s, script.n, err, errlen);
	if (rc == 0)
		rc = rep_run_gnuplot(dir, err, errlen);
	snprintf(p, sizeof p, "%s/plot.out", dir);
	if (rc == 0)
		rc = rep_copy_file(p, path, err, errlen);
	rep_free(&script);
	rep_rmdir(dir);
	return rc;
}

int report_plot(const char *path, const Model *m, const RepTrace *t, char *err, size_t errlen)
{
	RepBuf script, data;
	rep_init(&script);
	rep_init(&data);
	rep_plot_script(&script, m, t);
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			rep_plot_number(&data, t->rows[r * t->ncols + c]);
			rep_printf(&data, c + 1 == t->ncols ? "\n" : " ");
		}
	int rc = report_gnuplot(path, script.s, data.s ? data.s : "", data.n, err, errlen);
	rep_free(&script);
	rep_free(&data);
	return rc;
}
