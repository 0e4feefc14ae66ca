/* netlist_cmds.c - `damc netlist` and `damc verify`: the circuit as a deck,
 * and the deck checked against the JIT.
 *
 *   damc netlist MODEL.dam [run options] [--row N] [--level L] [--device P] [-o deck.cir]
 *   damc verify  MODEL.dam [same options] [--row A:B] [--tol X] [--json] [--plot FILE]
 *
 * Both take the flags of `damc run` (-c, -D, --input, --dataset, --dt,
 * --t-end, --solver) and build one backend input per row.  netlist asks the
 * SPICE backend for the deck and writes it atomically.  verify writes the
 * deck of each row to a temp directory, runs the ngspice binary on it
 * (batch mode, real ngspice), runs the JIT on the same inputs with a trace
 * of every step, interpolates the ngspice node voltages at the JIT's times,
 * maps them back to model units (x = V / volts_per_unit) and reports, per
 * layer, the largest deviation over the trajectory and at t_end, and the
 * outputs decoded from both.  Exit 0 when every row is within the
 * tolerance, 1 otherwise.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "netlist.h"
#include "ngspice.h"
#include "outfile.h"
#include "sim.h"
#include "spice.h"

/* ---- flags shared by netlist, verify and report -------------------------- */

static const char net_flags_help[] =
	"  -c RUN.lua, -D NAME=VALUE, --input NAME=V1,.., --dataset FILE, --dt X, --t-end X,\n"
	"  --solver S            as for `damc run` (the run the circuit performs)\n"
	"  --row N               the dataset row to use (default 0)\n"
	"  --level L             behavioural (ideal amplifiers, default) or amplifier\n"
	"                        (op-amp macromodels from the device profile)\n"
	"  --device P            device profile: a shipped name (discrete, integrated, slow)\n"
	"                        or a .lua path (also --profile)\n"
	"  --volts-per-unit X    state scale, volts per model unit (default 0.1)\n"
	"  --seconds-per-time-unit X   time scale (default 1e-6: tau = 1 is 1 us)\n";

static int net_parse_number(const char *cmd, const char *flag, const char *v, double *out)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (end == v || *end || errno || !isfinite(x) || !(x > 0)) {
		fprintf(stderr, "damc %s: %s expects a positive number, got '%s'\ntry 'damc %s --help'\n", cmd,
		        flag, v, cmd);
		return RUN_EXIT_USAGE;
	}
	*out = x;
	return 0;
}

static int net_parse_range(const char *v, NetArgs *na)
{
	char *end;
	errno = 0;
	long a = strtol(v, &end, 10), b = a + 1;
	if (end != v && *end == ':') {
		const char *s = end + 1;
		b = strtol(s, &end, 10);
		if (end == s)
			b = -1;       /* "A:" to the end */
	}
	if (end == v || *end || errno || a < 0 || (b >= 0 && b <= a))
		return run_usage_error("--row expects N or A:B (0-based, half-open), got '%s'", v);
	na->row_lo = a;
	na->row_hi = b;
	return 0;
}

/* Match "--flag VALUE" or "--flag=VALUE"; NULL if argv[*i] is not flag. */
static const char *net_value(int argc, char **argv, int *i, const char *flag)
{
	size_t n = strlen(flag);
	if (strncmp(argv[*i], flag, n))
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n])
		return NULL;
	return *i + 1 < argc ? argv[++*i] : "";
}

static int net_parse_one(NetArgs *na, int argc, char **argv, int *i)
{
	RunConfig *rc = &na->ra.cli;
	const char *v;
	if ((v = net_value(argc, argv, i, "-o")))
		return *v ? (na->out = v, 0) : run_usage_error("%s expects a file", "-o");
	if ((v = net_value(argc, argv, i, "--row")) || (v = net_value(argc, argv, i, "--rows")))
		return net_parse_range(v, na);
	if ((v = net_value(argc, argv, i, "--level"))) {
		free(rc->level);
		rc->level = run_strdup(v);
		return 0;
	}
	if ((v = net_value(argc, argv, i, "--device")) || (v = net_value(argc, argv, i, "--profile"))) {
		if (!*v)
			return run_usage_error("%s expects a profile name or path", "--device");
		free(rc->device);
		rc->device = run_strdup(v);
		return 0;
	}
	if ((v = net_value(argc, argv, i, "--volts-per-unit")))
		return net_parse_number(na->cmd, "--volts-per-unit", v, &rc->volts_per_unit);
	if ((v = net_value(argc, argv, i, "--seconds-per-time-unit")))
		return net_parse_number(na->cmd, "--seconds-per-time-unit", v, &rc->seconds_per_time_unit);
	if ((v = net_value(argc, argv, i, "--plot")))
		return *v ? (na->plot = v, 0) : run_usage_error("%s expects a file", "--plot");
	if ((v = net_value(argc, argv, i, "--tol")))
		return net_parse_number(na->cmd, "--tol", v, &na->tol);
	return run_parse_flag(&na->ra, argc, argv, i);
}

int net_parse_args(NetArgs *na, const char *cmd, int argc, char **argv)
{
	memset(na, 0, sizeof *na);
	na->cmd = cmd;
	na->ra.opt_level = 3;
	na->row_lo = -1;
	na->tol = -1;
	runcfg_init(&na->ra.cli);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int rc = 0;
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			na->ra.help = true;
		else if (!strcmp(a, "--json"))
			na->json = true;
		else if (!strcmp(a, "--sweep"))
			na->sweep = true;
		else if (!strcmp(a, "--input") || !strncmp(a, "--input=", 8))
			rc = run_parse_flag(&na->ra, argc, argv, &i);
		else if (a[0] == '-' && a[1])
			rc = net_parse_one(na, argc, argv, &i);
		else if (!na->ra.model)
			na->ra.model = a;
		else
			rc = run_usage_error("more than one model given ('%s')", a);
		if (rc)
			return rc;
	}
	if (!na->ra.help && !na->ra.model)
		return run_usage_error("%s", "no model given");
	return 0;
}

void net_args_free(NetArgs *na)
{
	runcfg_free(&na->ra.cli);
}

/* ---- the session: config, model, rows, device, backend options ------------ */

static int net_level(const char *s, BackendLevel *out, Diags *d)
{
	if (!s || !strcmp(s, "behavioural") || !strcmp(s, "behavioral")) {
		*out = LEVEL_BEHAVIOURAL;
		return 0;
	}
	if (!strcmp(s, "amplifier")) {
		*out = LEVEL_AMPLIFIER;
		return 0;
	}
	diag_error(d, (Loc){ 0, 0, 0 }, "unknown level '%s' (levels: behavioural, amplifier)", s);
	return -1;
}

static int net_select_rows(NetSession *s, Diags *d)
{
	NetArgs *na = s->args;
	long lo = na->row_lo < 0 ? 0 : na->row_lo;
	long hi = na->row_lo < 0 ? (s->multi ? (long)s->batch.nrows : 1) : na->row_hi;
	if (hi < 0)
		hi = (long)s->batch.nrows;
	if ((size_t)lo >= s->batch.nrows || (size_t)hi > s->batch.nrows) {
		diag_error(d, (Loc){ 0, 0, 0 }, "--row %ld%s%s is out of range: there %s %zu input row%s "
		           "(0..%zu)", lo, na->row_hi != lo + 1 ? ":" : "", na->row_hi != lo + 1 ? "..." : "",
		           s->batch.nrows == 1 ? "is" : "are", s->batch.nrows, s->batch.nrows == 1 ? "" : "s",
		           s->batch.nrows - 1);
		return -1;
	}
	s->lo = (size_t)lo;
	s->hi = (size_t)hi;
	return 0;
}

/* The amplifier model needs every key of the profile's amplifier table. */
static int net_check_amp(const DevProfile *dev, Diags *d)
{
	const DevAmp *A = &dev->amp;
	const char *missing = !(A->gain > 0) ? "gain" : !(A->gbw > 0) ? "gbw" : !(A->slew > 0) ? "slew"
	                      : !(A->vmax > A->vmin) ? "vmax > vmin" : NULL;
	if (!missing)
		return 0;
	diag_error(d, (Loc){ 0, 0, 0 }, "device profile '%s' (%s) does not set amplifier.%s, which the "
	           "amplifier model needs", dev->name, dev->path, missing);
	return -1;
}

int net_open(NetSession *s, NetArgs *na, bool multi, Diags *d, Arena *a)
{
	memset(s, 0, sizeof *s);
	s->args = na;
	s->multi = multi;
	runcfg_init(&s->rc);
	if (na->ra.config && cfg_load_lua(na->ra.config, &s->rc, d) < 0)
		return RUN_EXIT_INPUT;
	run_merge(&s->rc, &na->ra.cli, na->ra.have_inputs_flag);
	if (run_make_opts(&s->rc, &s->opts, d) < 0)
		return RUN_EXIT_INPUT;
	s->m = run_compile(na->ra.model, &s->rc, d, a);
	if (!s->m || diag_errors(d))
		return RUN_EXIT_INPUT;
	if (s->m->nlayers == 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "'%s' declares no layers: there is no circuit to emit",
		           na->ra.model);
		return RUN_EXIT_INPUT;
	}
	if (run_build_rows(s->m, &s->rc, &s->batch, d) < 0 || net_select_rows(s, d) < 0)
		return RUN_EXIT_INPUT;
	memset(&s->bo, 0, sizeof s->bo);
	if (net_level(s->rc.level, &s->bo.level, d) < 0)
		return RUN_EXIT_INPUT;
	if (s->rc.device) {
		if (cfg_load_device(s->rc.device, &s->dev, a, d) < 0)
			return RUN_EXIT_INPUT;
		s->bo.device = &s->dev;
	}
	if (s->bo.device && (s->bo.level == LEVEL_AMPLIFIER || !strcmp(na->cmd, "report")) &&
	    net_check_amp(&s->dev, d) < 0)
		return RUN_EXIT_INPUT;
	if (s->bo.level == LEVEL_AMPLIFIER && !s->bo.device) {
		diag_error(d, (Loc){ 0, 0, 0 }, "--level amplifier needs a device profile: --device NAME "
		           "(shipped: %s)", DAM_DEVICE_NAMES);
		return RUN_EXIT_INPUT;
	}
	s->bo.dt = s->opts.dt;
	s->bo.t_end = s->opts.t_end;
	s->bo.volts_per_unit = s->rc.volts_per_unit;
	s->bo.seconds_per_time_unit = s->rc.seconds_per_time_unit;
	return 0;
}

void net_close(NetSession *s)
{
	run_batch_free(&s->batch);
	runcfg_free(&s->rc);
}

SpicePlan *net_plan(NetSession *s, size_t row, Diags *d)
{
	s->bo.inputs = s->batch.rows[row].v;
	return spice_plan(s->m, &s->bo, d);
}

Jit *net_jit(NetSession *s, Diags *d)
{
	char err[1024];
	JitOptions jo = { .opt_level = s->args->ra.opt_level, .bake_weights = s->args->ra.bake_weights, .cache = 1 };
	Jit *jit = jit_compile(s->m, &jo, err, sizeof err);
	if (!jit)
		diag_error(d, (Loc){ 0, 0, 0 }, "%s", err);
	return jit;
}

static void net_trace(void *user, double t, const double *x, const double *g, double e)
{
	report_trace_add(user, t, x, g, e);
}

DamStatus net_run_jit(NetSession *s, const Jit *jit, size_t row, const DamRunOpts *opts, RepTrace *tr,
                      DamRunResult *res, char *msg, size_t msglen, double *outputs)
{
	const Model *m = s->m;
	DamSim *sim = sim_new(m, jit);
	size_t off = 0;
	for (int i = 0; i < m->ninputs; i++) {
		sim_set_input(sim, i, s->batch.rows[row].v + off, (size_t)m->inputs[i].n, NULL, 0);
		off += (size_t)m->inputs[i].n;
	}
	DamRunOpts o = *opts;
	o.check_every = 1;
	DamStatus st = sim_run(sim, &o, res, net_trace, tr, msg, msglen);
	if (outputs)
		sim_outputs(sim, outputs);
	sim_free(sim);
	return st;
}

/* The skeleton of netlist, verify and report: flags, help, session, body, diagnostics. */
int net_main(const char *cmd, int argc, char **argv, NetCommand *c)
{
	NetArgs na;
	int status = net_parse_args(&na, cmd, argc, argv);
	c->help_shown = na.ra.help;
	if (status || na.ra.help) {
		if (na.ra.help && !status)
			printf(c->help, net_flags_help);
		net_args_free(&na);
		return status;
	}
	if (c->prepare)
		c->prepare(&na, c->user);
	Arena a;
	Diags d;
	arena_init(&a);
	diags_init(&d, &a);
	NetSession s;
	status = net_open(&s, &na, c->multi, &d, &a);
	if (!status)
		status = c->body(&s, &d, c->user);
	diag_render(&d, stderr);
	net_close(&s);
	diags_free(&d);
	arena_free(&a);
	net_args_free(&na);
	return status;
}

/* ---- damc netlist ------------------------------------------------------------- */

/* The file-producing backends (backend.h); the image backend joins this table. */
static const Backend *const net_backends[] = { &spice_backend };

static const Backend *backend_find(const char *name)
{
	for (size_t i = 0; i < sizeof net_backends / sizeof *net_backends; i++)
		if (!strcmp(net_backends[i]->name, name))
			return net_backends[i];
	return NULL;
}

static int netlist_body(NetSession *s, Diags *d, void *user)
{
	(void)user;
	if (s->hi - s->lo != 1) {
		diag_error(d, (Loc){ 0, 0, 0 }, "a deck is one inference: choose one row with --row N");
		return RUN_EXIT_INPUT;
	}
	const Backend *be = backend_find("spice");
	s->bo.inputs = s->batch.rows[s->lo].v;
	OutFile of;
	FILE *out = outfile_open(&of, s->args->out);
	if (!out)
		return RUN_EXIT_INPUT;
	if (be->emit(s->m, &s->bo, d, out) < 0) {
		outfile_abort(&of);
		return RUN_EXIT_INPUT;
	}
	return outfile_close(&of) ? RUN_EXIT_INPUT : 0;
}

int cmd_netlist(int argc, char **argv)
{
	NetCommand c = { "usage: damc netlist MODEL.dam [options]\n\nWrite the analog circuit of MODEL.dam "
	                "for one input set as an ngspice deck\n(docs/netlist.md).\n\n%s"
	                "  -o FILE               write the deck to FILE (atomically; default stdout)\n"
	                 "  -h, --help            show this help\n", false, NULL, netlist_body, NULL, false };
	return net_main("netlist", argc, argv, &c);
}

/* ---- damc verify -------------------------------------------------------------- */

typedef struct VerifyRow {
	double *dev_max, *dev_end;   /* per layer, model units */
	double scale;                /* max(1, max |x|) over the JIT trajectory */
	double *out_jit, *out_spice;
	DamStatus status;
	char msg[256];
	size_t nspice;               /* ngspice time points */
	bool plot;                   /* this row is the one plotted */
} VerifyRow;

/* JIT run of one row with a trace of every step. */
static int verify_jit(NetSession *s, const Jit *jit, size_t row, RepTrace *tr, VerifyRow *vr)
{
	DamRunResult res;
	vr->status = net_run_jit(s, jit, row, &s->opts, tr, &res, vr->msg, sizeof vr->msg, vr->out_jit);
	return vr->status == DAM_OK ? 0 : -1;
}

static void verify_decode(const Model *m, const double *inputs, const double *x, double *out)
{
	ModelEval ev;
	model_eval_init(&ev, m, inputs);
	model_eval_state(&ev, x);
	size_t k = 0;
	for (int o = 0; o < m->noutputs; o++)
		for (int64_t i = 0; i < m->outputs[o].n; i++)
			out[k++] = model_eval_expr(&ev, m->outputs[o].expr, m->outputs[o].rank ? m->outputs[o].i : 0, i);
	model_eval_free(&ev);
}

static int verify_plot(const char *path, const SpicePlan *p, const RepTrace *tr, const NgRaw *raw,
                       const int *col, Diags *d);

/* Compare the raw file with the trace. */
static int verify_compare(NetSession *s, SpicePlan *p, const NgRaw *raw, const RepTrace *tr,
                          VerifyRow *vr, Diags *d)
{
	const Model *m = s->m;
	int64_t n = p->n;
	int *col = run_xcalloc((size_t)n, sizeof *col);
	char node[200];
	for (int64_t k = 0; k < n; k++) {
		spice_node(p, k, node, sizeof node);
		col[k] = ng_raw_find(raw, node);
		if (col[k] < 0) {
			diag_error(d, (Loc){ 0, 0, 0 }, "ngspice's output has no node '%s'", node);
			free(col);
			return -1;
		}
	}
	double *xs = run_xcalloc((size_t)n, sizeof *xs);
	vr->scale = 1;
	for (size_t r = 0; r < tr->nrows; r++) {
		const double *row = tr->rows + r * tr->ncols;
		double t = row[0];
		bool last = r + 1 == tr->nrows;
		for (int64_t k = 0; k < n; k++) {
			double x = row[1 + k];
			double xsp = ng_raw_at(raw, col[k], t * p->spu) / p->vpu;
			double dev = fabs(xsp - x);
			if (!(dev == dev))
				dev = INFINITY;
			int l = p->nr[k].layer;
			vr->dev_max[l] = fmax(vr->dev_max[l], dev);
			if (last)
				vr->dev_end[l] = fmax(vr->dev_end[l], dev);
			vr->scale = fmax(vr->scale, fabs(x));
			if (last)
				xs[k] = xsp;
		}
	}
	verify_decode(m, p->opt.inputs, xs, vr->out_spice);
	vr->nspice = raw->npoints;
	if (s->args->plot && vr->plot && verify_plot(s->args->plot, p, tr, raw, col, d) < 0) {
		free(xs);
		free(col);
		return -1;
	}
	free(xs);
	free(col);
	return 0;
}

static int verify_spice(SpicePlan *p, const char *dir, size_t row, NgRaw *raw, Diags *d)
{
	char deck[4096], rawp[4096], err[512];
	snprintf(deck, sizeof deck, "%s/row%zu.cir", dir, row);
	snprintf(rawp, sizeof rawp, "%s/row%zu.raw", dir, row);
	FILE *f = fopen(deck, "w");
	if (!f) {
		diag_error(d, (Loc){ 0, 0, 0 }, "cannot write '%s': %s", deck, strerror(errno));
		return -1;
	}
	int rc = spice_write(p, f, d);
	if (fclose(f) || rc < 0)
		return -1;
	NgRun run;
	rc = ng_run(deck, rawp, 600, &run, err, sizeof err);
	if (rc == 0 && run.warnings) {
		diag_warning(d, (Loc){ 0, 0, 0 }, "ngspice printed %d warning line%s for row %zu", run.warnings,
		             run.warnings == 1 ? "" : "s", row);
		fprintf(stderr, "%s", run.log ? run.log : "");
	}
	if (rc < 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "ngspice failed on row %zu: %s", row, err);
		if (run.log)
			fprintf(stderr, "%s", run.log);
	}
	ng_run_free(&run);
	if (rc == 0 && ng_raw_read(rawp, raw, err, sizeof err) < 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "cannot read ngspice's output: %s", err);
		rc = -1;
	}
	unlink(deck);
	unlink(rawp);
	return rc;
}

/* --plot: one panel per layer (at most 6), JIT solid, ngspice dashed. */
static int verify_plot(const char *path, const SpicePlan *p, const RepTrace *tr, const NgRaw *raw,
                       const int *col, Diags *d)
{
	const Model *m = p->m;
	RepBuf data, body;
	rep_init(&data);
	rep_init(&body);
	for (size_t r = 0; r < tr->nrows; r++) {
		const double *row = tr->rows + r * tr->ncols;
		rep_printf(&data, "%.17g", row[0]);
		for (int64_t k = 0; k < p->n; k++)
			rep_printf(&data, " %.17g", row[1 + k]);
		for (int64_t k = 0; k < p->n; k++)
			rep_printf(&data, " %.17g", ng_raw_at(raw, col[k], row[0] * p->spu) / p->vpu);
		rep_printf(&data, "\n");
	}
	int panels = m->nlayers < 6 ? m->nlayers : 6;
	rep_printf(&body, "set grid\nset key outside right\nset multiplot layout %d,1 title 'JIT (lines) "
	           "and ngspice (dashes): %s'\nset lmargin 12\nset rmargin 18\n", panels,
	           m->path ? m->path : "");
	for (int l = 0; l < panels; l++) {
		const MLayer *L = &m->layers[l];
		int64_t off = model_layer_offset(m, l), shown = L->n < 8 ? L->n : 8;
		rep_printf(&body, "set ylabel 'x of %s'\n%s", L->name, l == panels - 1 ? "set xlabel 't'\n" : "");
		for (int64_t i = 0; i < shown; i++)
			rep_printf(&body, "%s'trace.dat' using 1:%lld with lines lc %lld title '%s[%lld]', "
			           "'trace.dat' using 1:%lld with lines dt 2 lw 2 lc %lld notitle", i ? ", \\\n  " : "plot ",
			           (long long)(2 + off + i), (long long)(i + 1), L->name, (long long)i,
			           (long long)(2 + p->n + off + i), (long long)(i + 1));
		rep_printf(&body, "\n");
	}
	rep_printf(&body, "unset multiplot\n");
	char err[512];
	int rc = report_gnuplot(path, body.s, data.s ? data.s : "", data.n, err, sizeof err);
	if (rc < 0)
		diag_error(d, (Loc){ 0, 0, 0 }, "--plot: %s", err);
	rep_free(&data);
	rep_free(&body);
	return rc;
}

static void verify_print(const NetSession *s, const SpicePlan *p, size_t row, const VerifyRow *vr,
                         double tol, bool pass, RepBuf *b)
{
	const Model *m = s->m;
	double worst = 0;
	for (int l = 0; l < m->nlayers; l++)
		worst = fmax(worst, vr->dev_max[l]);
	if (s->args->json) {
		rep_printf(b, "{\"row\": %zu, \"pass\": %s, \"status\": ", row, pass ? "true" : "false");
		rep_json_string(b, report_status_name(vr->status));
		rep_printf(b, ", \"tol\": ");
		rep_json_number(b, tol);
		rep_printf(b, ", \"scale\": ");
		rep_json_number(b, vr->scale);
		rep_printf(b, ", \"max_dev\": ");
		rep_json_number(b, worst);
		rep_printf(b, ", \"spice_points\": %zu, \"layers\": {", vr->nspice);
		for (int l = 0; l < m->nlayers; l++) {
			rep_printf(b, "%s", l ? ", " : "");
			rep_json_string(b, m->layers[l].name);
			rep_printf(b, ": {\"max_dev\": ");
			rep_json_number(b, vr->dev_max[l]);
			rep_printf(b, ", \"end_dev\": ");
			rep_json_number(b, vr->dev_end[l]);
			rep_printf(b, "}");
		}
		for (int side = 0; side < 2; side++) {
			rep_printf(b, "}, \"%s\": {", side ? "outputs_spice" : "outputs_jit");
			size_t k = 0;
			for (int o = 0; o < m->noutputs; o++) {
				rep_printf(b, "%s", o ? ", " : "");
				rep_json_string(b, m->outputs[o].name);
				rep_printf(b, ": %s", m->outputs[o].rank ? "[" : "");
				for (int64_t i = 0; i < m->outputs[o].n; i++, k++) {
					rep_printf(b, "%s", i ? ", " : "");
					rep_json_number(b, side ? vr->out_spice[k] : vr->out_jit[k]);
				}
				rep_printf(b, "%s", m->outputs[o].rank ? "]" : "");
			}
		}
		rep_printf(b, "}}\n");
		return;
	}
	rep_printf(b, "row %zu: %s (max deviation %.3g model units = %.3g V; tolerance %.3g = %g x "
	           "state scale %.3g)\n", row, pass ? "PASS" : "FAIL", worst, worst * p->vpu, tol,
	           tol / vr->scale, vr->scale);
	for (int l = 0; l < m->nlayers; l++)
		rep_printf(b, "  layer %-12s max |x_spice - x_jit| %.3e   at t_end %.3e\n", m->layers[l].name,
		           vr->dev_max[l], vr->dev_end[l]);
	size_t k = 0;
	for (int o = 0; o < m->noutputs; o++) {
		rep_printf(b, "  output %-11s jit", m->outputs[o].name);
		for (int64_t i = 0; i < m->outputs[o].n; i++)
			rep_printf(b, " %.6g", vr->out_jit[k + (size_t)i]);
		rep_printf(b, "   spice");
		for (int64_t i = 0; i < m->outputs[o].n; i++)
			rep_printf(b, " %.6g", vr->out_spice[k + (size_t)i]);
		rep_printf(b, "\n");
		k += (size_t)m->outputs[o].n;
	}
	if (vr->status != DAM_OK)
		rep_printf(b, "  jit run: %s %s\n", report_status_name(vr->status), vr->msg);
}

static int verify_row(NetSession *s, const Jit *jit, const char *dir, size_t row, RepBuf *out,
                      Diags *d)
{
	const Model *m = s->m;
	SpicePlan *p = net_plan(s, row, d);
	if (!p)
		return -1;
	size_t nout = jit_kernels(jit)->noutput;
	VerifyRow vr;
	memset(&vr, 0, sizeof vr);
	vr.dev_max = run_xcalloc((size_t)m->nlayers, sizeof(double));
	vr.dev_end = run_xcalloc((size_t)m->nlayers, sizeof(double));
	vr.out_jit = run_xcalloc(nout, sizeof(double));
	vr.out_spice = run_xcalloc(nout, sizeof(double));
	vr.plot = row == s->lo;
	RepTrace tr;
	report_trace_init(&tr, (size_t)p->n);
	NgRaw raw;
	memset(&raw, 0, sizeof raw);
	int rc = verify_spice(p, dir, row, &raw, d);
	if (rc == 0) {
		verify_jit(s, jit, row, &tr, &vr);
		rc = verify_compare(s, p, &raw, &tr, &vr, d);
	}
	if (rc == 0) {
		double tol = (s->args->tol > 0 ? s->args->tol : 1e-3) * vr.scale;
		bool pass = vr.status == DAM_OK;
		for (int l = 0; l < m->nlayers; l++)
			pass &= vr.dev_max[l] <= tol;
		verify_print(s, p, row, &vr, tol, pass, out);
		const DevProfile *dev = s->bo.device;
		double swing = dev ? fmin(dev->amp.vmax, -dev->amp.vmin) : 0;
		if (s->bo.level == LEVEL_AMPLIFIER && swing > 0 && vr.scale * p->vpu > swing)
			diag_warning(d, (Loc){ 0, 0, 0 }, "row %zu: states reach %.3g V, beyond the output swing "
			             "+-%g V of device '%s': lower --volts-per-unit", row, vr.scale * p->vpu, swing,
			             dev->name);
		rc = pass ? 0 : 1;
	}
	ng_raw_free(&raw);
	report_trace_free(&tr);
	free(vr.dev_max);
	free(vr.dev_end);
	free(vr.out_jit);
	free(vr.out_spice);
	spice_plan_free(p);
	return rc;
}

static int verify_all(NetSession *s, Diags *d, void *user)
{
	(void)user;
	if (!ng_program()) {
		diag_error(d, (Loc){ 0, 0, 0 }, "ngspice is not installed (apt-get install ngspice, or set "
		           "$DAMC_NGSPICE)");
		return RUN_EXIT_INPUT;
	}
	Jit *jit = net_jit(s, d);
	if (!jit)
		return RUN_EXIT_INPUT;
	char dir[] = "/tmp/damc-verify-XXXXXX";
	if (!mkdtemp(dir)) {
		diag_error(d, (Loc){ 0, 0, 0 }, "cannot make a temp directory: %s", strerror(errno));
		jit_free(jit);
		return RUN_EXIT_INPUT;
	}
	int status = RUN_EXIT_OK;
	bool failed = false;
	size_t npass = 0;
	for (size_t r = s->lo; r < s->hi; r++) {
		RepBuf out;
		rep_init(&out);
		int rc = verify_row(s, jit, dir, r, &out, d);
		fwrite(out.s ? out.s : "", 1, out.n, stdout);
		fflush(stdout);
		rep_free(&out);
		if (rc < 0) {
			failed = true;
			status = RUN_EXIT_INPUT;
			break;
		}
		npass += rc == 0;
		if (rc)
			status = 1;         /* a row outside the tolerance */
	}
	if (!s->args->json && !failed)
		printf("verify: %zu/%zu rows within tolerance\n", npass, s->hi - s->lo);
	rmdir(dir);
	jit_free(jit);
	return status;
}

int cmd_verify(int argc, char **argv)
{
	NetCommand c = { "usage: damc verify MODEL.dam [options]\n\nRun the same inference through the JIT "
	                "and through ngspice (the deck of\n`damc netlist`), and compare the trajectories of "
	                "every neuron.\n\n%s"
	                "  --row A:B             rows A..B-1 (default: every row)\n"
	                "  --tol X               pass when every deviation <= X * state scale, where the\n"
	                "                        state scale is max(1, max |x|) (default 1e-3)\n"
	                "  --json                one JSON object per row\n"
	                "  --plot FILE           JIT and ngspice trajectories of the first row overlaid (.png/.svg)\n"
	                "  -h, --help            show this help\n\n"
	                "Exit status: 0 every row within tolerance, 1 some row is not (or input errors).\n",
	                 true, NULL, verify_all, NULL, false };
	return net_main("verify", argc, argv, &c);
}
