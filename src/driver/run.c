/* run.c - `damc run MODEL.dam [options]`: compile a model and simulate it.
 *
 * The command is a flat list of steps: parse the flags into a RunConfig,
 * load the Lua config (-c) and let the flags override it, compile the model
 * (front end, then JIT), turn the named inputs or the dataset rows into a
 * list of runs and check every value before anything runs (as the input
 * setters check them), refuse a fixed step that the model's fastest free
 * layer makes unstable (sim_check_step), run them on all cores (one fresh
 * simulator per run, so a batch is bit-identical to one-by-one runs), then
 * print one line per run in run order and write the
 * trace and plot of the first run.  Exit status: 0 all runs ok, 1 errors in
 * the inputs or an unstable step (diagnostics printed), 2 usage, 3 some run
 * diverged or produced a non-finite number.
 */
#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "dam_dataset.h"
#include "frontend.h"
#include "jit.h"
#include "report.h"
#include "runcfg.h"
#include "sim.h"

#include "run.h"
#include "run_image.h"

static const char run_usage[] =
	"usage: damc run MODEL.dam [options]\n"
	"\n"
	"Compile MODEL.dam and simulate it once per input set.\n"
	"\n"
	"  -c RUN.lua             read settings from a Lua config (flags override it)\n"
	"  -D NAME=VALUE          override a model parameter (repeatable)\n"
	"  --input NAME=V1,V2,..  set a declared input (repeatable)\n"
	"  --dataset FILE         one run per row; a row holds all inputs' values\n"
	"                         in declaration order, separated by spaces or commas\n"
	"  --solver S             euler (default), rk4, dopri5, expeuler\n"
	"  --dt X                 step (fixed-step solvers; first step for dopri5), default 1e-3;\n"
	"                         euler refuses dt >= 2 tau, rk4 dt >= 2.785 tau of a free layer\n"
	"  --t-end X              end time (default: until the model settles, max |dx/dt| <\n"
	"                         1e-4 / tau_slowest, at most 100 tau_slowest)\n"
	"  --rtol X, --atol X     dopri5 tolerances, default 1e-6 and 1e-9\n"
	"  --steady-tol X         stop once max |dx/dt| < X (default: never)\n"
	"  --diverge-limit X      a run diverges when some |x_i| > X (default: 100 times\n"
	"                         the initial scale max(1, |x(0)|, |tau f(x(0)) + x(0)|))\n"
	"  --threads N            worker threads (default: all cores)\n"
	"  --trace FILE           write t, states, activations, energy of the first run\n"
	"                         (.csv or .npy)\n"
	"  --plot FILE            plot the first run with gnuplot (.png or .svg)\n"
	"  --json                 one JSON object per run per line\n"
	"  --dump-ir              print the optimised LLVM IR\n"
	"  --image chip.img       run the weights a crossbar image holds (quantised conductances,\n"
	"                         token tables; `damc image`); refused for another model unless --force\n"
	"  --device P             device profile (for --mc; see docs/netlist.md)\n"
	"  --mc N --seed S        N Monte Carlo draws of the device's noise (programming noise,\n"
	"                         stuck cells, read noise) in the weights the ODE runs with\n"
	"  --labels FILE          one class per row: accuracy of every draw (argmax of the first\n"
	"                         vector output)\n"
	"  --bake-weights         compile static and learn tensors into the code as constants\n"
	"                         (default: run-time data of the kernels; see bench/README.md)\n"
	"  --fast-exp             exp as inline code that vectorises, within 1 ulp of the C library's\n"
	"                         (default: the C library's exp; docs/cli.md)\n"
	"  -O0 .. -O3             LLVM optimisation level (default -O3; -O1 compiles faster, runs slower)\n"
	"  --batch on|off|auto    Euler rows advance together through the batched kernel (weights\n"
	"                         read once per step for many rows; results bit-identical); auto\n"
	"                         (default) is off until it pays (docs/cli.md)\n"
	"  --check-every N        fixed-step solvers: steps between energy, divergence and steady-state\n"
	"                         checks (default max(40, tau_fastest / (4 dt)): checks cost < 10%;\n"
	"                         1 with --trace/--plot)\n"
	"  -h, --help             show this help\n"
	"\n"
	"Exit status: 0 all runs ok, 1 input errors (or an unstable step), 2 usage, 3 some run\n"
	"diverged, became non-finite or failed to step.\n";

void *run_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p) {
		fputs("damc: out of memory\n", stderr);
		exit(3);
	}
	return p;
}

char *run_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(run_xcalloc(n, 1), s, n);
}

int run_usage_error(const char *fmt, const char *arg)
{
	fputs("damc run: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\ntry 'damc run --help'\n", stderr);
	return RUN_EXIT_USAGE;
}

/* ---- flags ----------------------------------------------------------------- */

int run_parse_number(const char *flag, const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v) || v < 0) {
		fprintf(stderr, "damc run: %s expects a non-negative number, got '%s'\n"
		        "try 'damc run --help'\n", flag, s);
		return -1;
	}
	*out = v;
	return 0;
}

static void run_add_str(char ***v, size_t *n, const char *s)
{
	*v = realloc(*v, (*n + 1) * sizeof **v);
	if (!*v)
		exit(3);
	(*v)[(*n)++] = run_strdup(s);
}

void run_add_define(RunConfig *rc, const char *def)
{
	run_add_str(&rc->defines, &rc->ndefines, def);
}

/* --input NAME=V1,V2: kept as text until the model is known. */
static int run_add_input(RunConfig *rc, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return run_usage_error("--input expects NAME=V1,V2,..., got '%s'", arg);
	CfgValues cv = { NULL, NULL, 0 };
	DamDataset ds;
	DamDatasetError e;
	if (dam_dataset_parse_row(eq + 1, 0, &ds, &e) < 0) {
		fprintf(stderr, "damc: error: --input %.*s: %s\n", (int)(eq - arg), arg, e.msg);
		return RUN_EXIT_INPUT;
	}
	cv.v = ds.v;
	cv.n = ds.cols;
	cv.name = run_xcalloc((size_t)(eq - arg) + 1, 1);
	memcpy(cv.name, arg, (size_t)(eq - arg));
	rc->inputs = realloc(rc->inputs, (rc->ninputs + 1) * sizeof *rc->inputs);
	if (!rc->inputs)
		exit(3);
	rc->inputs[rc->ninputs++] = cv;
	return 0;
}

/* Match "--name VALUE", "--name=VALUE" (and "-DVALUE" for short flags). */
static const char *run_flag_value(int argc, char **argv, int *i, const char *name)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=' && name[1] == '-')
		return a + n + 1;
	if (a[n] != '\0')
		return name[1] != '-' ? a + n : NULL;
	if (*i + 1 >= argc)
		return "";
	return argv[++*i];
}

static int run_set_string(char **dst, const char *flag, const char *v)
{
	if (!*v)
		return run_usage_error("%s expects a value", flag);
	free(*dst);
	*dst = run_strdup(v);
	return 0;
}

int run_parse_flag(RunArgs *ra, int argc, char **argv, int *i)
{
	static const struct { const char *flag; size_t off; } nums[] = {
		{ "--dt", offsetof(RunConfig, dt) }, { "--t-end", offsetof(RunConfig, t_end) },
		{ "--rtol", offsetof(RunConfig, rtol) }, { "--atol", offsetof(RunConfig, atol) },
		{ "--steady-tol", offsetof(RunConfig, steady_tol) },
		{ "--diverge-limit", offsetof(RunConfig, diverge_limit) },
	};
	RunConfig *rc = &ra->cli;
	const char *v;
	for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++)
		if ((v = run_flag_value(argc, argv, i, nums[k].flag)))
			return run_parse_number(nums[k].flag, v, (double *)((char *)rc + nums[k].off)) < 0
			       ? RUN_EXIT_USAGE : 0;
	if ((v = run_flag_value(argc, argv, i, "-c"))) {
		if (!*v)
			return run_usage_error("%s expects a file", "-c");
		ra->config = v;
		return 0;
	}
	if ((v = run_flag_value(argc, argv, i, "-D"))) {
		if (!strchr(v, '=') || *v == '=')
			return run_usage_error("-D expects NAME=VALUE, got '%s'", v);
		run_add_str(&rc->defines, &rc->ndefines, v);
		return 0;
	}
	if ((v = run_flag_value(argc, argv, i, "--input"))) {
		ra->have_inputs_flag = true;
		return run_add_input(rc, v);
	}
	if ((v = run_flag_value(argc, argv, i, "--dataset")))
		return run_set_string(&rc->dataset_path, "--dataset", v);
	if ((v = run_flag_value(argc, argv, i, "--device")))
		return run_set_string(&rc->device, "--device", v);
	if ((v = run_flag_value(argc, argv, i, "--trace")))
		return run_set_string(&rc->trace_path, "--trace", v);
	if ((v = run_flag_value(argc, argv, i, "--plot")))
		return run_set_string(&rc->plot_path, "--plot", v);
	if ((v = run_flag_value(argc, argv, i, "--solver"))) {
		DamSolver s;
		if (dam_solver_parse(v, &s) < 0)
			return run_usage_error("unknown solver '%s' (solvers: euler, rk4, dopri5, expeuler)", v);
		return run_set_string(&rc->solver, "--solver", v);
	}
	if ((v = run_flag_value(argc, argv, i, "--threads"))) {
		char *end;
		long n = strtol(v, &end, 10);
		if (end == v || *end || n < 0 || n > 1024)
			return run_usage_error("--threads expects a number in 0..1024, got '%s'", v);
		rc->threads = (int)n;
		return 0;
	}
	return run_usage_error("unknown option '%s'", argv[*i]);
}

static int run_parse_args(RunArgs *ra, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int rc = 0;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			ra->help = true;
		else if (strcmp(a, "--json") == 0)
			ra->cli.json = true;
		else if (strcmp(a, "--dump-ir") == 0)
			ra->dump_ir = true;
		else if (strcmp(a, "--bake-weights") == 0)
			ra->bake_weights = true;
		else if (strcmp(a, "--fast-exp") == 0)
			ra->fast_exp = true;
		else if (strcmp(a, "--force") == 0)
			ra->force = true;
		else if (strcmp(a, "--batch") == 0) {
			const char *v = i + 1 < argc ? argv[++i] : "";
			if (!strcmp(v, "on") || !strcmp(v, "off") || !strcmp(v, "auto"))
				ra->batch = !strcmp(v, "on") ? 1 : !strcmp(v, "off") ? 0 : -1;
			else
				return run_usage_error("--batch takes on, off or auto, got '%s'", v);
		}
		else if (strcmp(a, "--mc") == 0 || strcmp(a, "--seed") == 0) {
			const char *v = i + 1 < argc ? argv[++i] : "";
			char *end;
			errno = 0;
			unsigned long long x = strtoull(v, &end, 10);
			if (end == v || *end || errno || *v == '-' || (a[2] == 'm' && (x < 1 || x > 1000000)))
				rc = run_usage_error(a[2] == 'm' ? "--mc expects a number of draws in 1..1000000, got '%s'"
				                                 : "--seed expects a non-negative integer, got '%s'", v);
			else if (a[2] == 'm')
				ra->mc = (long)x;
			else
				ra->seed = x;
		} else if (strcmp(a, "--labels") == 0) {
			ra->labels = i + 1 < argc ? argv[++i] : "";
			if (!*ra->labels)
				rc = run_usage_error("%s expects a file", "--labels");
		}
		else if (strcmp(a, "--image") == 0 || strncmp(a, "--image=", 8) == 0) {
			ra->image = a[7] == '=' ? a + 8 : (i + 1 < argc ? argv[++i] : "");
			if (!*ra->image)
				rc = run_usage_error("%s expects an image file", "--image");
		}
		else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3])
			ra->opt_level = a[2] - '0';
		else if (strcmp(a, "--check-every") == 0 || strncmp(a, "--check-every=", 14) == 0) {
			const char *v = a[13] == '=' ? a + 14 : (i + 1 < argc ? argv[++i] : "");
			char *end;
			ra->check_every = strtol(v, &end, 10);
			if (end == v || *end || ra->check_every < 1)
				rc = run_usage_error("--check-every expects a positive number of steps, got '%s'", v);
		}
		else if (a[0] == '-' && a[1] != '\0')
			rc = run_parse_flag(ra, argc, argv, &i);
		else if (!ra->model)
			ra->model = a;
		else
			rc = run_usage_error("more than one model given ('%s')", a);
		if (rc)
			return rc;
	}
	if (!ra->help && !ra->model)
		return run_usage_error("%s", "no model given");
	return 0;
}

/* ---- merging the flags over the config file --------------------------------- */

static void run_take_str(char **dst, char **src)
{
	if (*src) {
		free(*dst);
		*dst = *src;
		*src = NULL;
	}
}

void run_merge(RunConfig *rc, RunConfig *cli, bool cli_inputs)
{
	run_take_str(&rc->solver, &cli->solver);
	run_take_str(&rc->device, &cli->device);
	run_take_str(&rc->level, &cli->level);
	double *dst[] = { &rc->dt, &rc->t_end, &rc->rtol, &rc->atol, &rc->steady_tol,
	                  &rc->diverge_limit, &rc->volts_per_unit, &rc->seconds_per_time_unit };
	double src[] = { cli->dt, cli->t_end, cli->rtol, cli->atol, cli->steady_tol,
	                 cli->diverge_limit, cli->volts_per_unit, cli->seconds_per_time_unit };
	for (size_t i = 0; i < sizeof src / sizeof src[0]; i++)
		if (src[i] >= 0)
			*dst[i] = src[i];
	for (size_t i = 0; i < cli->ndefines; i++)
		run_add_str(&rc->defines, &rc->ndefines, cli->defines[i]);
	/* What to run: flags (--input / --dataset) replace the file's choice. */
	if (cli_inputs || cli->dataset_path) {
		RunConfig old = *rc;
		for (size_t i = 0; i < old.ninputs; i++) {
			free(old.inputs[i].name);
			free(old.inputs[i].v);
		}
		free(old.inputs);
		free(old.dataset);
		free(old.dataset_path);
		rc->inputs = cli->inputs; rc->ninputs = cli->ninputs;
		cli->inputs = NULL; cli->ninputs = 0;
		rc->dataset = NULL; rc->dataset_rows = rc->dataset_cols = 0;
		rc->dataset_path = cli->dataset_path;
		cli->dataset_path = NULL;
	}
	run_take_str(&rc->trace_path, &cli->trace_path);
	run_take_str(&rc->plot_path, &cli->plot_path);
	rc->json |= cli->json;
	if (cli->threads >= 0)
		rc->threads = cli->threads;
}

int run_make_opts(const RunConfig *rc, DamRunOpts *o, Diags *d)
{
	dam_run_opts_default(o);
	if (rc->solver && dam_solver_parse(rc->solver, &o->solver) < 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "unknown solver '%s' (solvers: euler, rk4, dopri5, "
		           "expeuler)", rc->solver);
		return -1;
	}
	if (rc->dt >= 0) o->dt = rc->dt;
	if (rc->t_end >= 0) o->t_end = rc->t_end;
	if (rc->rtol >= 0) o->rtol = rc->rtol;
	if (rc->atol >= 0) o->atol = rc->atol;
	if (rc->steady_tol >= 0) o->steady_tol = rc->steady_tol;
	o->diverge_limit = rc->diverge_limit > 0 ? rc->diverge_limit : 0;   /* 0: relative */
	if (o->solver != DAM_DOPRI5 && !(o->dt > 0)) {
		diag_error(d, (Loc){ 0, 0, 0 }, "the step dt must be positive for solver '%s'",
		           dam_solver_name(o->solver));
		return -1;
	}
	if (!isfinite(o->dt) || !isfinite(o->t_end)) {
		diag_error(d, (Loc){ 0, 0, 0 }, "dt and t_end must be finite");
		return -1;
	}
	double steps = o->t_end / o->dt;
	if (o->solver != DAM_DOPRI5 && steps > 1e10) {
		if (isfinite(steps))
			diag_error(d, (Loc){ 0, 0, 0 }, "t_end / dt = %g steps is too many", steps);
		else                  /* a subnormal dt: print the operands, not "inf" */
			diag_error(d, (Loc){ 0, 0, 0 }, "t_end / dt = %g / %g steps is too many", o->t_end,
			           o->dt);
		return -1;
	}
	return 0;
}

int run_check_step(const Model *m, const DamRunOpts *o, Diags *d)
{
	SimStepLimit lim;
	char why[256];
	if (sim_check_step(m, o, &lim, why, sizeof why) == 0)
		return 0;
	const MLayer *L = &m->layers[lim.layer];
	diag_error(d, (Loc){ 0, 0, 0 }, "%s", why);
	if (L->loc.line)
		diag_note(d, (Loc){ L->loc.file, L->loc.line, L->loc.col }, "layer '%s' is declared here",
		          L->name);
	diag_note(d, (Loc){ 0, 0, 0 }, "use a --dt well below it (the couplings make steps near it "
	          "unstable too), or --solver dopri5 (adaptive step) or --solver expeuler (exact on "
	          "the leak)");
	return -1;
}

/* ---- rows: named inputs or a dataset ---------------------------------------- */

size_t run_input_width(const Model *m)
{
	size_t n = 0;
	for (int i = 0; i < m->ninputs; i++)
		n += (size_t)m->inputs[i].n;
	return n;
}

static char *run_name_list(const char *const *names, int n)
{
	RepBuf b;
	rep_init(&b);
	for (int i = 0; i < n; i++)
		rep_printf(&b, "%s%s", i ? ", " : "", names[i]);
	if (!n)
		rep_printf(&b, "none");
	return b.s;
}

static char *run_input_names(const Model *m)
{
	const char **v = run_xcalloc((size_t)m->ninputs, sizeof *v);
	for (int i = 0; i < m->ninputs; i++)
		v[i] = m->inputs[i].name;
	char *s = run_name_list(v, m->ninputs);
	free(v);
	return s;
}

/* One row from the named inputs. */
static int run_rows_from_inputs(const Model *m, const RunConfig *rc, RunBatch *b, Diags *d)
{
	size_t width = run_input_width(m);
	double *row = run_xcalloc(width, sizeof *row);
	bool *set = run_xcalloc((size_t)m->ninputs, sizeof *set);
	int bad = 0;
	for (size_t k = 0; k < rc->ninputs; k++) {
		const CfgValues *cv = &rc->inputs[k];
		int i = sim_find_input(m, cv->name);
		if (i < 0) {
			char *names = run_input_names(m);
			diag_error(d, (Loc){ 0, 0, 0 }, "model has no input '%s' (inputs: %s)", cv->name,
			           names);
			free(names);
			bad = 1;
			continue;
		}
		if ((int64_t)cv->n != m->inputs[i].n) {
			diag_error(d, (Loc){ 0, 0, 0 }, "input '%s' expects %lld value%s, got %zu",
			           cv->name, (long long)m->inputs[i].n, m->inputs[i].n == 1 ? "" : "s",
			           cv->n);
			bad = 1;
			continue;
		}
		size_t off = 0;
		for (int p = 0; p < i; p++)
			off += (size_t)m->inputs[p].n;
		memcpy(row + off, cv->v, cv->n * sizeof *cv->v);
		set[i] = true;
	}
	for (int i = 0; i < m->ninputs && !bad; i++)
		if (!set[i]) {
			diag_error(d, (Loc){ 0, 0, 0 }, "input '%s' is not set (use --input %s=... or "
			           "--dataset FILE)", m->inputs[i].name, m->inputs[i].name);
			bad = 1;
		}
	free(set);
	if (bad) {
		free(row);
		return -1;
	}
	b->rows = run_xcalloc(1, sizeof *b->rows);
	b->rows[0].v = row;
	b->nrows = 1;
	return 0;
}

static void run_push_row(RunBatch *b, size_t *cap, RunRow r)
{
	if (b->nrows == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		b->rows = realloc(b->rows, *cap * sizeof *b->rows);
		if (!b->rows)
			exit(3);
	}
	b->rows[b->nrows++] = r;
}

static int run_rows_inline(const Model *m, const RunConfig *rc, RunBatch *b, Diags *d)
{
	size_t width = run_input_width(m), cap = 0;
	if (rc->dataset_rows && rc->dataset_cols != width) {
		char *names = run_input_names(m);
		diag_error(d, (Loc){ 0, 0, 0 }, "dataset rows have %zu values, but the inputs (%s) take %zu",
		           rc->dataset_cols, names, width);
		free(names);
		return -1;
	}
	for (size_t r = 0; r < rc->dataset_rows; r++) {
		RunRow row = { run_xcalloc(width, sizeof(double)) };
		memcpy(row.v, rc->dataset + r * width, width * sizeof(double));
		run_push_row(b, &cap, row);
	}
	return 0;
}

/* Report a dataset reader error at its place in the file. */
static void run_dataset_error(Diags *d, uint32_t file, const char *path, const DamDatasetError *e,
                              const Model *m)
{
	if (e->line <= 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "%s: %s", path, e->msg);
		return;
	}
	diag_error(d, (Loc){ file, (uint32_t)e->line, e->col > 0 ? (uint32_t)e->col : 1 }, "%s",
	           e->msg);
	if (e->col <= 0) {
		RepBuf b;
		rep_init(&b);
		for (int i = 0; i < m->ninputs; i++)
			rep_printf(&b, "%s%s[%lld]", i ? ", " : "", m->inputs[i].name,
			           (long long)m->inputs[i].n);
		diag_note(d, (Loc){ 0, 0, 0 }, "a row holds the values of the inputs %s, in that order",
		          b.s ? b.s : "(none)");
		rep_free(&b);
	}
}

static bool run_blank_line(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r')
		p++;
	return *p == '\n' || *p == '\0' || *p == '#';
}

/* Where value `c` of data row `r` sits in the dataset text (same rules as
 * the reader: blank and '#' lines skipped, values split at blanks/commas). */
static Loc run_value_loc(const Diags *d, uint32_t file, size_t r, size_t c)
{
	const Source *src = diag_source(d, file);
	Loc loc = { file, 0, 0 };
	if (!src)
		return loc;
	const char *line = src->text;
	uint32_t lineno = 1;
	for (; line; lineno++) {
		if (!run_blank_line(line) && r-- == 0)
			break;
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	if (!line)
		return loc;
	const char *p = line;
	for (size_t k = 0;; k++) {
		while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\r')
			p++;
		if (k == c || *p == '\n' || *p == '\0')
			break;
		p += strcspn(p, " \t,\r\n");
	}
	loc.line = lineno;
	loc.col = (uint32_t)(p - line) + 1;
	return loc;
}

/* Rows of a dataset file; problems are reported at file:line:col. */
static int run_rows_from_file(const Model *m, const char *path, RunBatch *b, Diags *d)
{
	uint32_t file = diag_add_file(d, path);      /* for the caret lines */
	if (!file) {
		diag_error(d, (Loc){ 0, 0, 0 }, "cannot read dataset '%s': %s", path, strerror(errno));
		return -1;
	}
	size_t width = run_input_width(m);
	if (width == 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "%s: the model has no inputs, so a dataset has nothing "
		           "to set", path);
		return -1;
	}
	DamDataset ds;
	DamDatasetError e;
	if (dam_dataset_read(path, width, &ds, &e) < 0) {
		run_dataset_error(d, file, path, &e, m);
		return -1;
	}
	if (ds.rows == 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "%s: the dataset has no rows", path);
		dam_dataset_free(&ds);
		return -1;
	}
	b->rows = run_xcalloc(ds.rows, sizeof *b->rows);
	for (size_t r = 0; r < ds.rows; r++) {
		b->rows[r].v = run_xcalloc(width, sizeof(double));
		memcpy(b->rows[r].v, ds.v + r * width, width * sizeof(double));
	}
	b->nrows = ds.rows;
	b->file = file;
	dam_dataset_free(&ds);
	return 0;
}

/* Check every row against the model's inputs with the setter's own checks
 * (sim_check_input: counts, finite values, token indices), so that no run
 * starts with a value its simulator would refuse. */
static int run_check_rows(const Model *m, RunBatch *b, Diags *d)
{
	int bad = 0;
	b->inputs = run_xcalloc(b->nrows * (size_t)(m->ninputs ? m->ninputs : 1), sizeof *b->inputs);
	for (size_t r = 0; r < b->nrows && bad < 10; r++) {
		size_t off = 0;
		for (int i = 0; i < m->ninputs; i++) {
			const MInput *in = &m->inputs[i];
			const double *v = b->rows[r].v + off;
			char err[256];
			size_t pos = 0;
			b->inputs[r * (size_t)m->ninputs + (size_t)i] = v;
			if (sim_check_input(in, v, (size_t)in->n, &pos, err, sizeof err) < 0) {
				if (b->file)
					diag_error(d, run_value_loc(d, b->file, r, off + pos), "%s", err);
				else if (b->nrows > 1)
					diag_error(d, (Loc){ 0, 0, 0 }, "%s (dataset row %zu)", err, r + 1);
				else
					diag_error(d, (Loc){ 0, 0, 0 }, "%s", err);
				bad++;
			}
			off += (size_t)in->n;
		}
	}
	return bad ? -1 : 0;
}

int run_build_rows(const Model *m, const RunConfig *rc, RunBatch *b, Diags *d)
{
	int r;
	if (rc->dataset_path)
		r = run_rows_from_file(m, rc->dataset_path, b, d);
	else if (rc->dataset_rows)
		r = run_rows_inline(m, rc, b, d);
	else
		r = run_rows_from_inputs(m, rc, b, d);
	return r < 0 ? -1 : run_check_rows(m, b, d);
}

/* ---- outputs ------------------------------------------------------------- */

int run_select_outputs(const Model *m, const RunConfig *rc, int **sel, int *nsel, Diags *d)
{
	*sel = run_xcalloc((size_t)(m->noutputs + (int)rc->noutputs), sizeof **sel);
	*nsel = 0;
	if (rc->noutputs == 0) {
		for (int i = 0; i < m->noutputs; i++)
			(*sel)[(*nsel)++] = i;
		return 0;
	}
	int bad = 0;
	for (size_t k = 0; k < rc->noutputs; k++) {
		int i = sim_find_output(m, rc->outputs[k]);
		if (i >= 0) {
			(*sel)[(*nsel)++] = i;
			continue;
		}
		const char **names = run_xcalloc((size_t)m->noutputs, sizeof *names);
		for (int o = 0; o < m->noutputs; o++)
			names[o] = m->outputs[o].name;
		char *list = run_name_list(names, m->noutputs);
		diag_error(d, (Loc){ 0, 0, 0 }, "model has no output '%s' (outputs: %s)", rc->outputs[k],
		           list);
		free(list);
		free(names);
		bad = 1;
	}
	return bad ? -1 : 0;
}

/* ---- running ---------------------------------------------------------------- */

static void run_trace_cb(void *user, double t, const double *x, const double *g, double e)
{
	report_trace_add(user, t, x, g, e);
}

/* Program simulator s for row r: its inputs (and the image); -1 if a value
 * is refused (b->msg[r] says why). */
static int run_row_set(RunBatch *b, size_t r, DamSim *s)
{
	size_t off = 0;
	for (int i = 0; i < b->m->ninputs; i++) {
		if (sim_set_input(s, i, b->rows[r].v + off, (size_t)b->m->inputs[i].n, b->msg[r],
		                  sizeof b->msg[r]) < 0) {
			b->refused[r] = 1;
			return -1;
		}
		off += (size_t)b->m->inputs[i].n;
	}
	if (b->img && run_image_apply(b->img, b->m, s, b->rows[r].v) < 0) {
		snprintf(b->msg[r], sizeof b->msg[r], "the image's weights do not fit the compiled model");
		b->refused[r] = 1;
		return -1;
	}
	return 0;
}

/* A new simulator for row r, or NULL (refused). */
static DamSim *run_row_sim(RunBatch *b, size_t r)
{
	DamSim *s = sim_new(b->m, b->jit);
	if (run_row_set(b, r, s) < 0) {
		sim_free(s);
		return NULL;
	}
	return s;
}

/* The simulators of finished rows, for the next row a thread takes: a row
 * sets all its inputs (and image) again, and a simulator keeps the caches of
 * the static tensors between runs (sim.c setup_run), so a dataset does not
 * recompute them for every row. */
typedef struct RunPool {
	pthread_mutex_t lock;
	DamSim **idle;
	size_t n, cap;
} RunPool;

static DamSim *run_pool_take(RunBatch *b)
{
	RunPool *p = b->pool;
	DamSim *s = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->n)
		s = p->idle[--p->n];
	pthread_mutex_unlock(&p->lock);
	if (!s) {
		s = sim_new(b->m, b->jit);
		sim_set_split(s, b->split);
	}
	return s;
}

static void run_pool_give(RunBatch *b, DamSim *s)
{
	RunPool *p = b->pool;
	pthread_mutex_lock(&p->lock);
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 8;
		p->idle = realloc(p->idle, p->cap * sizeof *p->idle);
		if (!p->idle)
			abort();
	}
	p->idle[p->n++] = s;
	pthread_mutex_unlock(&p->lock);
}

static void run_job(int64_t idx, void *user)
{
	RunBatch *b = user;
	size_t r = (size_t)idx;
	DamSim *s = run_pool_take(b);
	if (run_row_set(b, r, s) == 0) {
		RepTrace *tr = r == 0 ? b->trace : NULL;
		sim_run(s, &b->opts, &b->res[r], tr ? run_trace_cb : NULL, tr, b->msg[r], sizeof b->msg[r]);
		sim_outputs(s, b->outputs + r * b->nout);
	}
	run_pool_give(b, s);
}

/* Every row of b, one run_job each, on the given number of threads. */
static void run_rows(RunBatch *b, int threads)
{
	RunPool pool = { .n = 0 };
	pthread_mutex_init(&pool.lock, NULL);
	b->pool = &pool;
	dam_parallel_for((int64_t)b->nrows, threads, run_job, b);
	for (size_t k = 0; k < pool.n; k++)
		sim_free(pool.idle[k]);
	free(pool.idle);
	pthread_mutex_destroy(&pool.lock);
	b->pool = NULL;
}

void run_batch_run(RunBatch *b, int threads)
{
	run_rows(b, threads);
}

/* ---- batched runs -------------------------------------------------------------- */

/* Auto batches rows once the weights outgrow the caches: on parity_et at
 * D = M = 1024 (1.1M static weights), 64 rows, 500 steps, 2 threads, the
 * batched kernel takes 10.1 s against 23.5 s one row per thread at a time;
 * at D = M = 256 (66k) it is slower (1.46 s against 1.14 s for 1000
 * steps: 64 workspaces set up and walked in lockstep for small products),
 * and at the published D = 16 twice as slow (bench/README.md).  --batch on
 * forces it, off forbids it. */
#define RUN_BATCH_MIN_ROWS 8
#define RUN_BATCH_MIN_WEIGHTS ((int64_t)1 << 19)   /* doubles of static weights */
#define RUN_BATCH_CHUNK_BYTES (512u << 20)   /* workspaces of one chunk of rows */
#define RUN_BATCH_CHUNK_MAX 64

static bool run_want_batch(const Model *m, const DamRunOpts *o, const RunArgs *ra, size_t nrows,
                           bool trace)
{
	if (ra->batch == 0 || o->solver != DAM_EULER || trace || ra->mc > 0 || ra->bake_weights ||
	    nrows < 2)
		return false;
	if (ra->batch == 1)
		return true;
	int64_t w = 0;
	for (TensorId t = 1; t < (TensorId)m->ntensors; t++)
		if (m->tensors[t].kind == MT_CONST || m->tensors[t].kind == MT_LEARN)
			w += sym_tensor_size(m->sym, t);
	return nrows >= RUN_BATCH_MIN_ROWS && w >= RUN_BATCH_MIN_WEIGHTS;
}

/* A single row of a large model on a machine with two cores or more: its
 * Euler steps are split over two threads (the same bits as one thread).  At
 * D = M = 4096 (33.6M static weights) a step takes 14.5 ms instead of 32.5;
 * at 1024 (2.1M) 1.25 ms instead of 1.46, not worth the 0.2 s the halves add
 * to the compile. */
#define RUN_SPLIT_MIN_WEIGHTS ((int64_t)1 << 23)
static bool run_want_split(const Model *m, const DamRunOpts *o, const RunArgs *ra, int threads, size_t nrows,
                           bool batched)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (threads <= 0)
		threads = (int)(cores > 0 ? cores : 1);
	if (batched || nrows != 1 || threads < 2 || o->solver != DAM_EULER || ra->mc > 0)
		return false;
	int64_t w = 0;
	for (TensorId t = 1; t < (TensorId)m->ntensors; t++)
		if (m->tensors[t].kind == MT_CONST || m->tensors[t].kind == MT_LEARN)
			w += sym_tensor_size(m->sym, t);
	return w >= RUN_SPLIT_MIN_WEIGHTS;
}

/* The rows in chunks (the workspaces of a chunk bounded in memory), each
 * chunk through sim_run_batch on all threads: the same results, bit for bit,
 * as one sim_run per row. */
static void run_batched(RunBatch *b, int threads)
{
	size_t ws = jit_kernels(b->jit)->ws_size * sizeof(double) + 1;
	size_t chunk = RUN_BATCH_CHUNK_BYTES / ws;
	chunk = chunk < 2 ? 2 : chunk > RUN_BATCH_CHUNK_MAX ? RUN_BATCH_CHUNK_MAX : chunk;
	/* Chunks of equal size: every chunk reads all the weights once per step,
	 * so 64 rows at D = M = 4096 (59 workspaces fit) run as 32 + 32, not
	 * 59 + 5. */
	size_t nchunks = (b->nrows + chunk - 1) / chunk;
	if (nchunks > 0)
		chunk = (b->nrows + nchunks - 1) / nchunks;
	DamSim **sims = run_xcalloc(chunk, sizeof *sims);
	size_t *rows = run_xcalloc(chunk, sizeof *rows);
	DamRunResult *res = run_xcalloc(chunk, sizeof *res);
	char (*msg)[256] = run_xcalloc(chunk, sizeof *msg);
	for (size_t r0 = 0; r0 < b->nrows; r0 += chunk) {
		size_t n = 0;
		for (size_t r = r0; r < b->nrows && r < r0 + chunk; r++) {
			DamSim *s = run_row_sim(b, r);
			if (s) {
				rows[n] = r;
				sims[n++] = s;
			}
		}
		sim_run_batch(sims, n, &b->opts, res, msg[0], sizeof msg[0], threads);
		for (size_t k = 0; k < n; k++) {
			b->res[rows[k]] = res[k];
			memcpy(b->msg[rows[k]], msg[k], sizeof msg[k]);
			sim_outputs(sims[k], b->outputs + rows[k] * b->nout);
			sim_free(sims[k]);
		}
	}
	free(sims);
	free(rows);
	free(res);
	free(msg);
}

static int run_print(const RunBatch *b, const RunConfig *rc, const int *sel, int nsel)
{
	const JitKernels *k = jit_kernels(b->jit);
	RepBuf out;
	rep_init(&out);
	if (!rc->json)
		report_text_header(&out);
	int status = RUN_EXIT_OK;
	for (size_t r = 0; r < b->nrows; r++) {
		ReportRun rr = {
			(int64_t)r, (const double *const *)b->inputs + r * (size_t)b->m->ninputs,
			b->outputs + r * b->nout, k->output_off, sel, nsel, &b->res[r], b->msg[r],
		};
		if (rc->json)
			report_json_run(&out, b->m, &rr);
		else
			report_text_run(&out, b->m, &rr);
		if (b->res[r].status != DAM_OK)
			status = RUN_EXIT_DIVERGED;
	}
	fwrite(out.s ? out.s : "", 1, out.n, stdout);
	fflush(stdout);
	rep_free(&out);
	return status;
}

static int run_write_trace(const RunBatch *b, const RunConfig *rc)
{
	char err[512];
	if (rc->trace_path && report_trace_write(rc->trace_path, b->m, b->trace, err, sizeof err) < 0) {
		fprintf(stderr, "damc run: error: %s\n", err);
		return -1;
	}
	if (rc->plot_path && report_plot(rc->plot_path, b->m, b->trace, err, sizeof err) < 0) {
		fprintf(stderr, "damc run: error: %s\n", err);
		return -1;
	}
	return 0;
}

void run_batch_free(RunBatch *b)
{
	for (size_t r = 0; r < b->nrows; r++) {
		free(b->rows[r].v);
	}
	free(b->rows);
	free(b->outputs);
	free(b->res);
	free(b->msg);
	free(b->refused);
	free(b->inputs);
	if (b->trace)
		report_trace_free(b->trace);
}

/* Rows whose inputs a simulator refused: errors, and no results printed. */
static int run_refused(const RunBatch *b, Diags *d)
{
	int bad = 0;
	for (size_t r = 0; r < b->nrows; r++)
		if (b->refused[r]) {
			diag_error(d, (Loc){ 0, 0, 0 }, "run %zu: %s", r, b->msg[r]);
			bad = 1;
		}
	return bad;
}

/* Simulate every row and report; returns the exit status. */
static int run_simulate(const Model *m, const Jit *jit, const RunConfig *rc, RunBatch *b,
                        const int *sel, int nsel, Diags *d)
{
	RepTrace trace;
	b->m = m;
	b->jit = jit;
	b->nout = jit_kernels(jit)->noutput;
	b->outputs = run_xcalloc(b->nrows * (b->nout ? b->nout : 1), sizeof(double));
	b->res = run_xcalloc(b->nrows, sizeof *b->res);
	b->msg = run_xcalloc(b->nrows, sizeof *b->msg);
	b->refused = run_xcalloc(b->nrows, sizeof *b->refused);
	if (rc->trace_path || rc->plot_path) {
		report_trace_init(&trace, jit_kernels(jit)->nstate);
		b->trace = &trace;
	}
	if (b->batched && !b->trace)
		run_batched(b, rc->threads > 0 ? rc->threads : 0);
	else
		run_rows(b, rc->threads > 0 ? rc->threads : 0);
	int status = run_refused(b, d) ? RUN_EXIT_INPUT : run_print(b, rc, sel, nsel);
	if (b->trace && status != RUN_EXIT_INPUT && run_write_trace(b, rc) < 0)
		status = RUN_EXIT_INPUT;
	if (b->trace) {
		report_trace_free(b->trace);
		b->trace = NULL;
	}
	return status;
}

/* ---- the command ----------------------------------------------------------- */

Model *run_compile(const char *path, const RunConfig *rc, Diags *d, Arena *a)
{
	FrontendOptions fo = { (const char *const *)rc->defines, (int)rc->ndefines, NULL, NULL, 0 };
	return dam_frontend_compile(path, &fo, d, a);
}

/* No end time given: run until the model settles, max |dx/dt| < RUN_SETTLE_TOL
 * / tau_slowest (unless --steady-tol says otherwise), for at most
 * RUN_SETTLE_CAP slowest time constants; a run that has not settled by then
 * ends there with status ok and t_converged null (docs/cli.md). */
#define RUN_SETTLE_TOL 1e-4
#define RUN_SETTLE_CAP 100

void run_settle_defaults(const Model *m, const RunConfig *rc, DamRunOpts *o)
{
	if (rc->t_end >= 0)
		return;
	double tmax = 0;
	for (int l = 0; l < m->nlayers; l++)
		tmax = fmax(tmax, m->layers[l].tau);
	if (!(tmax > 0))
		return;
	o->t_end = RUN_SETTLE_CAP * tmax;
	if (rc->steady_tol < 0)
		o->steady_tol = RUN_SETTLE_TOL / tmax;
}

/* Steps between the checks of a fixed-step run when --check-every is not
 * given (and no trace is taken, whose points are the checks): every check
 * evaluates the energy and, when settling, the right-hand side, each about
 * as costly as a step or more, so RUN_CHECK_MIN_STEPS = 40 steps between checks
 * keeps them under 10% of the run (9.7% on parity_et, dt 1e-4: callgrind); the interval also stays
 * within a quarter of the fastest time constant when steps are that small,
 * so a divergence is reported within one interval of when it happens. */
#define RUN_CHECK_MIN_STEPS 40
#define RUN_CHECK_MAX_STEPS 1000

long run_check_interval(const Model *m, const DamRunOpts *o)
{
	if (o->solver == DAM_DOPRI5 || !(o->dt > 0))
		return 1;                    /* adaptive: a check per accepted step */
	double tmin = INFINITY;
	for (int l = 0; l < m->nlayers; l++)
		if (m->layers[l].tau > 0)
			tmin = fmin(tmin, m->layers[l].tau);
	double k = isfinite(tmin) ? floor(tmin / (4 * o->dt)) : RUN_CHECK_MIN_STEPS;
	return k < RUN_CHECK_MIN_STEPS ? RUN_CHECK_MIN_STEPS : k > RUN_CHECK_MAX_STEPS ? RUN_CHECK_MAX_STEPS
	                                                                                : (long)k;
}

void run_model_defaults(const RunArgs *ra, const RunConfig *rc, const Model *m, DamRunOpts *o)
{
	if (ra->check_every > 0)
		o->check_every = ra->check_every;
	else if (!rc->trace_path && !rc->plot_path)
		o->check_every = run_check_interval(m, o);
	run_settle_defaults(m, rc, o);
}

static int run_with_model(const RunArgs *ra, const RunConfig *rc, Diags *d, Arena *a, void *user)
{
	(void)user;
	DamRunOpts opts;
	int *sel = NULL, nsel = 0;
	RunBatch b;
	memset(&b, 0, sizeof b);
	if (run_make_opts(rc, &opts, d) < 0)
		return RUN_EXIT_INPUT;
	Model *m = run_compile(ra->model, rc, d, a);
	if (!m || diag_errors(d))
		return RUN_EXIT_INPUT;
	if (m->nlayers == 0) {
		diag_error(d, (Loc){0, 0, 0}, "'%s' declares no layers: there is nothing to simulate", ra->model);
		return RUN_EXIT_INPUT;
	}
	run_model_defaults(ra, rc, m, &opts);
	if (run_check_step(m, &opts, d) < 0)
		return RUN_EXIT_INPUT;
	if (run_select_outputs(m, rc, &sel, &nsel, d) < 0 || run_build_rows(m, rc, &b, d) < 0) {
		free(sel);
		run_batch_free(&b);
		return RUN_EXIT_INPUT;
	}
	RunImage img;
	memset(&img, 0, sizeof img);
	if (ra->image) {
		if (ra->bake_weights) {
			diag_error(d, (Loc){ 0, 0, 0 }, "--image programs the weights at run time: it cannot be "
			           "combined with --bake-weights");
			free(sel);
			run_batch_free(&b);
			return RUN_EXIT_INPUT;
		}
		if (run_image_load(m, ra->image, ra->force, &img, d) < 0) {
			free(sel);
			run_batch_free(&b);
			return RUN_EXIT_INPUT;
		}
		b.img = &img;
	}
	char err[1024];
	JitOptions jo = { ra->opt_level, ra->dump_ir ? stdout : NULL, NULL, ra->bake_weights, ra->fast_exp, .cache = 1 };
	b.batched = run_want_batch(m, &opts, ra, b.nrows, rc->trace_path || rc->plot_path);
	b.split = run_want_split(m, &opts, ra, rc->threads, b.nrows, b.batched);
	Jit *jit = jit_compile_flags(m, &jo, (b.batched ? JIT_BATCH : 0) | (b.split ? JIT_SPLIT : 0), err, sizeof err);
	int status;
	if (!jit) {
		fprintf(stderr, "%s: error: %s\n", ra->model, err);
		status = RUN_EXIT_INPUT;
	} else {
		b.opts = opts;
		if (ra->mc > 0)
			status = run_mc(m, jit, rc, ra, &b, ra->image ? &img : NULL, sel, nsel, d, a);
		else
			status = run_simulate(m, jit, rc, &b, sel, nsel, d);
		jit_free(jit);
	}
	run_image_free(&img);
	free(sel);
	run_batch_free(&b);
	return status;
}

int cmd_run(int argc, char **argv)
{
	RunArgs ra;
	memset(&ra, 0, sizeof ra);
	ra.opt_level = 3;
	ra.batch = -1;
	runcfg_init(&ra.cli);
	int status = run_parse_args(&ra, argc, argv);
	if (status || ra.help) {
		if (ra.help && !status)
			fputs(run_usage, stdout);
		runcfg_free(&ra.cli);
		return status;
	}
	status = run_configured(&ra, run_with_model, NULL);
	runcfg_free(&ra.cli);
	return status;
}

int run_configured(RunArgs *ra, RunBody body, void *user)
{
	Arena a;
	Diags d;
	RunConfig rc;
	int status;
	arena_init(&a);
	diags_init(&d, &a);
	runcfg_init(&rc);
	if (ra->config && cfg_load_lua(ra->config, &rc, &d) < 0) {
		status = RUN_EXIT_INPUT;
	} else {
		run_merge(&rc, &ra->cli, ra->have_inputs_flag);
		status = body(ra, &rc, &d, &a, user);
	}
	diag_render(&d, stderr);
	diags_free(&d);
	arena_free(&a);
	runcfg_free(&rc);
	return status;
}
