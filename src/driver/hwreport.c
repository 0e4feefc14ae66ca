/* hwreport.c - `damc report`: the hardware a model needs and how fast and
 * how frugal it can be under a device profile.
 *
 *   damc report MODEL.dam [run options] [--device P] [--row N] [--json]
 *               [--sweep PARAM=V1,V2,... [--plot FILE]]
 *
 * Counts come from the SPICE backend's plan (spice_census).  Speed follows
 * the blog post's estimate (physical-inference-blog, last section): an
 * amplifier of gain-bandwidth product GBW at closed-loop (noise) gain k
 * bounds a time constant by k / (2 pi GBW); its slew rate SR bounds it by
 * the voltage rate the dynamics demand, vpu * max |tau dx/dt| / tau <= SR;
 * the smallest usable tau is 10x the more restrictive bound.  Two
 * refinements, both stated in the output: k is each summing amplifier's
 * actual noise gain 1 + sum |w| (not a generic gain), and instead of the
 * blog's "about 10 time constants" the settle time is measured by a JIT run
 * to steady state (max |dx/dt| < 1e-3 / tau_slowest, capped at 100
 * tau_slowest).  Energy of one inference: the power in the crossbar
 * conductances and the integrators' resistors (spice_power, sum G dV^2)
 * integrated along that JIT trajectory in physical time, plus every
 * amplifier's static power over the latency.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "netlist.h"
#include "sim.h"

#define HW_SETTLE_TOL 1e-3     /* max |dx/dt| * tau_slowest at steady state */
#define HW_CAP_TAU 100         /* run at most this many slowest time constants */
#define HW_POWER_SAMPLES 4000  /* power evaluations along the trajectory, at most */

typedef struct HwReport {
	SpiceCensus c;
	double tau_min, tau_max;        /* model time units, over layers with free neurons */
	const char *fast_layer;
	double kmax;                    /* largest noise gain */
	double rate_max;                /* max over neurons and time of |tau dx/dt| / (tau/tau_min) */
	double xmax;                    /* max |x| along the trajectory (model units) */
	double tau_gbw, tau_sr, tau_use;   /* seconds */
	bool slew_limited;
	double spu;                     /* seconds per model time unit at tau_use */
	double t_settle;                /* model units; < 0 never settled within the cap */
	DamStatus status;
	char msg[256];
	double e_xbar, e_leak, e_amp;   /* joules */
	double latency, latency_blog;   /* seconds */
	double jit_seconds;             /* wall time of the settle run */
} HwReport;

static void hw_taus(const SpicePlan *p, HwReport *h)
{
	const Model *m = p->m;
	h->tau_min = INFINITY;
	h->tau_max = 0;
	for (int l = 0; l < m->nlayers; l++) {
		bool free_neuron = false;
		for (int64_t i = 0; i < m->layers[l].n && !free_neuron; i++)
			free_neuron = !p->nr[model_layer_offset(m, l) + i].clamped;
		if (!free_neuron)
			continue;
		if (m->layers[l].tau < h->tau_min) {
			h->tau_min = m->layers[l].tau;
			h->fast_layer = m->layers[l].name;
		}
		h->tau_max = fmax(h->tau_max, m->layers[l].tau);
	}
	if (!(h->tau_max > 0)) {
		h->tau_min = h->tau_max = 1;
		h->fast_layer = m->layers[0].name;
	}
	h->kmax = 1;
	for (int64_t k = 0; k < p->n; k++)
		if (!p->nr[k].clamped)
			h->kmax = fmax(h->kmax, 1 + p->nr[k].absum);
}

/* Settle run: trace every step, stop at steady state. */
static int hw_settle(NetSession *s, const Jit *jit, size_t row, RepTrace *tr, HwReport *h)
{
	DamRunOpts o = s->opts;
	o.t_end = HW_CAP_TAU * h->tau_max;
	o.steady_tol = HW_SETTLE_TOL / h->tau_max;
	DamRunResult res;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	h->status = net_run_jit(s, jit, row, &o, tr, &res, h->msg, sizeof h->msg, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	h->jit_seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
	h->t_settle = res.t_converged;
	return h->status == DAM_OK ? 0 : -1;
}

/* Largest |tau dx/dt| along the trajectory, per unit of the fastest tau. */
static void hw_rates(SpicePlan *p, const RepTrace *tr, HwReport *h)
{
	const Model *m = p->m;
	double *dx = run_xcalloc((size_t)p->n, sizeof *dx);
	size_t stride = tr->nrows > HW_POWER_SAMPLES ? (tr->nrows + HW_POWER_SAMPLES - 1) / HW_POWER_SAMPLES : 1;
	h->rate_max = 0;
	for (size_t r = 0; r < tr->nrows; r += stride) {
		model_eval_state(&p->ev, tr->rows + r * tr->ncols + 1);
		model_eval_rhs(&p->ev, dx);
		for (int64_t k = 0; k < p->n; k++) {
			h->xmax = fmax(h->xmax, fabs(tr->rows[r * tr->ncols + 1 + (size_t)k]));
			if (p->nr[k].clamped)
				continue;
			/* |dx/dt| * tau_min is the rate at which a neuron of any layer moves
			 * in units of the fastest time constant. */
			h->rate_max = fmax(h->rate_max, fabs(dx[k]) * h->tau_min);
		}
	}
	(void)m;
	free(dx);
}

/* Trapezoid rule over (subsampled) trace rows, in physical seconds. */
static void hw_energy(SpicePlan *p, const RepTrace *tr, HwReport *h)
{
	size_t n = tr->nrows, stride = n > HW_POWER_SAMPLES ? (n + HW_POWER_SAMPLES - 1) / HW_POWER_SAMPLES : 1;
	double tprev = 0, pxprev = 0, plprev = 0;
	bool first = true;
	for (size_t r = 0; r < n; r = (r + stride < n || r == n - 1) ? r + stride : n - 1) {
		const double *row = tr->rows + r * tr->ncols;
		double px, pl;
		spice_power(p, row + 1, &px, &pl);
		double t = row[0] * h->spu;
		if (!first) {
			h->e_xbar += 0.5 * (px + pxprev) * (t - tprev);
			h->e_leak += 0.5 * (pl + plprev) * (t - tprev);
		}
		first = false;
		tprev = t;
		pxprev = px;
		plprev = pl;
		if (r == n - 1)
			break;
	}
}

static int hw_compute(NetSession *s, const Jit *jit, size_t row, HwReport *h, Diags *d)
{
	memset(h, 0, sizeof *h);
	SpicePlan *p = net_plan(s, row, d);
	if (!p)
		return -1;
	spice_census(p, &h->c);
	hw_taus(p, h);
	RepTrace tr;
	report_trace_init(&tr, (size_t)p->n);
	int rc = hw_settle(s, jit, row, &tr, h);
	if (rc < 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "the settle run of row %zu did not finish: %s %s", row,
		           report_status_name(h->status), h->msg);
	} else {
		const DevAmp *A = &s->bo.device->amp;
		hw_rates(p, &tr, h);
		h->tau_gbw = h->kmax / (2 * 3.14159265358979323846 * A->gbw);
		h->tau_sr = p->vpu * h->rate_max / A->slew;
		h->slew_limited = h->tau_sr > h->tau_gbw;
		h->tau_use = 10 * fmax(h->tau_gbw, h->tau_sr);
		h->spu = h->tau_use / h->tau_min;
		double t_run = h->t_settle >= 0 ? h->t_settle : tr.rows[(tr.nrows - 1) * tr.ncols];
		h->latency = t_run * h->spu;
		h->latency_blog = 10 * h->tau_max * h->spu;
		hw_energy(p, &tr, h);
		h->e_amp = (double)h->c.amplifiers * A->power * h->latency;
		double swing = fmin(A->vmax, -A->vmin);
		if (h->xmax * p->vpu > swing)
			diag_warning(d, (Loc){ 0, 0, 0 }, "the states reach %.3g V, beyond the output swing +-%g V "
			             "of device '%s': lower --volts-per-unit (now %g)", h->xmax * p->vpu, swing,
			             s->bo.device->name, p->vpu);
	}
	report_trace_free(&tr);
	spice_plan_free(p);
	return rc;
}

/* ---- printing -------------------------------------------------------------- */

static void hw_json(const NetSession *s, size_t row, const HwReport *h, const char *sweep, RepBuf *b)
{
	const SpiceCensus *c = &h->c;
	rep_printf(b, "{\"model\": ");
	rep_json_string(b, s->m->path);
	if (sweep) {
		rep_printf(b, ", \"sweep\": ");
		rep_json_string(b, sweep);
	}
	rep_printf(b, ", \"row\": %zu, \"device\": ", row);
	rep_json_string(b, s->bo.device->name);
	rep_printf(b, ", \"neurons\": %lld, \"crosspoints\": %lld, \"dynamic_crosspoints\": %lld, "
	           "\"resistors\": %lld, \"capacitors\": %lld, \"amplifiers\": %lld, \"dac\": %lld, "
	           "\"adc\": %lld", (long long)model_state_size(s->m), (long long)c->crosspoints,
	           (long long)c->dynamic_xp, (long long)c->resistors, (long long)c->capacitors,
	           (long long)c->amplifiers, (long long)c->dac, (long long)c->adc);
	const char *k[] = { "gmin", "gmax", "tau_gbw", "tau_sr", "tau_min_usable", "seconds_per_time_unit",
	                    "settle_time", "settle_tau", "latency", "latency_blog", "energy_crossbar",
	                    "energy_leak", "energy_amplifiers", "energy", "jit_seconds" };
	double v[] = { c->gmin, c->gmax, h->tau_gbw, h->tau_sr, h->tau_use, h->spu,
	               h->t_settle >= 0 ? h->t_settle : NAN, h->t_settle >= 0 ? h->t_settle / h->tau_max : NAN,
	               h->latency, h->latency_blog, h->e_xbar, h->e_leak, h->e_amp,
	               h->e_xbar + h->e_leak + h->e_amp, h->jit_seconds };
	for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
		rep_printf(b, ", \"%s\": ", k[i]);
		rep_json_number(b, v[i]);
	}
	rep_printf(b, ", \"limited_by\": \"%s\"}\n", h->slew_limited ? "slew rate" : "gain-bandwidth");
}

static void hw_text(const NetSession *s, size_t row, const HwReport *h, RepBuf *b)
{
	const SpiceCensus *c = &h->c;
	const DevProfile *dev = s->bo.device;
	double vpu = s->bo.volts_per_unit > 0 ? s->bo.volts_per_unit : SPICE_VOLTS_PER_UNIT;
	double e = h->e_xbar + h->e_leak + h->e_amp;
	rep_printf(b, "damc report: %s (row %zu), device '%s': %s\n", s->m->path, row, dev->name, dev->what);
	rep_printf(b, "hardware\n  neurons               %lld\n", (long long)model_state_size(s->m));
	rep_printf(b, "  crosspoints           %lld (%lld on dynamic rows, programmed per inference)\n",
	           (long long)c->crosspoints, (long long)c->dynamic_xp);
	rep_printf(b, "  resistors             %lld (crosspoints + one R2 per free neuron)\n",
	           (long long)c->resistors);
	rep_printf(b, "  capacitors            %lld\n  amplifiers            %lld\n", (long long)c->capacitors,
	           (long long)c->amplifiers);
	rep_printf(b, "  DAC channels          %lld (clamps + dynamic crosspoints)\n  ADC channels          "
	           "%lld (neurons the outputs read)\n", (long long)c->dac, (long long)c->adc);
	rep_printf(b, "  conductances          %.3g .. %.3g S", c->gmin, c->gmax);
	if (dev->xbar.gmax > 0)
		rep_printf(b, " (device %.3g .. %.3g S%s)", dev->xbar.gmin, dev->xbar.gmax,
		           c->gmin < dev->xbar.gmin || c->gmax > dev->xbar.gmax ? ": OUT OF RANGE" : "");
	rep_printf(b, "\nspeed (blog estimate, refined)\n");
	rep_printf(b, "  gain-bandwidth limit  tau >= k/(2 pi GBW) = %.3g s (largest noise gain k = %.3g)\n",
	           h->tau_gbw, h->kmax);
	rep_printf(b, "  slew-rate limit       tau >= vpu*max|tau dx/dt|/SR = %.3g s (%.3g units = %.3g V)\n",
	           h->tau_sr, h->rate_max, h->rate_max * vpu);
	rep_printf(b, "  limited by            %s\n", h->slew_limited ? "slew rate (slew-limited)" : "gain-bandwidth");
	rep_printf(b, "  smallest usable tau   %.3g s (10x the limit) for layer '%s' (tau = %g)\n",
	           h->tau_use, h->fast_layer, h->tau_min);
	if (h->t_settle >= 0)
		rep_printf(b, "  settle time           %.4g time units = %.3g tau_slowest (measured, JIT)\n",
		           h->t_settle, h->t_settle / h->tau_max);
	else
		rep_printf(b, "  settle time           not settled within %d tau_slowest\n", HW_CAP_TAU);
	rep_printf(b, "  latency               %.3g s (blog heuristic, 10 tau_slowest: %.3g s)\n", h->latency,
	           h->latency_blog);
	rep_printf(b, "energy per inference\n");
	const char *what[3] = { "crossbar", "leak/integration R2", "amplifiers (static)" };
	double part[3] = { h->e_xbar, h->e_leak, h->e_amp };
	for (int i = 0; i < 3; i++)
		rep_printf(b, "  %-21s %.3g J (%.1f%%)\n", what[i], part[i], e > 0 ? 100 * part[i] / e : 0);
	rep_printf(b, "  total                 %.3g J\n", e);
}

/* ---- the command ------------------------------------------------------------ */

static int hw_one(NetSession *s, const char *sweep, RepBuf *plot, Diags *d)
{
	Jit *jit = net_jit(s, d);
	if (!jit)
		return RUN_EXIT_INPUT;
	HwReport h;
	int rc = hw_compute(s, jit, s->lo, &h, d);
	jit_free(jit);
	if (rc < 0)
		return RUN_EXIT_INPUT;
	if (plot)
		rep_printf(plot, "%lld %.17g %.17g %.17g %.17g\n", (long long)model_state_size(s->m),
		           h.t_settle >= 0 ? h.t_settle / h.tau_max : NAN, h.latency,
		           h.e_xbar + h.e_leak + h.e_amp, h.jit_seconds);
	RepBuf b;
	rep_init(&b);
	if (s->args->json)
		hw_json(s, s->lo, &h, sweep, &b);
	else if (sweep)
		rep_printf(&b, "%-12s %8lld %11lld %10lld %10.3g %10.3g %12.3g %10.3g %10.3g\n", sweep,
		           (long long)model_state_size(s->m), (long long)h.c.crosspoints, (long long)h.c.amplifiers,
		           h.t_settle >= 0 ? h.t_settle / h.tau_max : NAN, h.latency,
		           h.e_xbar + h.e_leak + h.e_amp, h.jit_seconds, h.tau_use);
	else
		hw_text(s, s->lo, &h, &b);
	fwrite(b.s ? b.s : "", 1, b.n, stdout);
	fflush(stdout);
	rep_free(&b);
	return 0;
}

static const char hw_usage[] =
	"usage: damc report MODEL.dam [options]%.0s\n"
	"\n"
	"The hardware MODEL.dam needs (crosspoints, resistors, capacitors, amplifiers,\n"
	"DAC/ADC channels, conductance range), the smallest usable time constant under\n"
	"the device's gain-bandwidth and slew rate, the measured settle time, the latency\n"
	"and the energy of one inference (docs/netlist.md).\n"
	"\n"
	"  -c, -D, --input, --dataset, --row, --solver, --dt  as for `damc netlist`\n"
	"  --device P            device profile (default: integrated)\n"
	"  --volts-per-unit X    state scale (default 0.1)\n"
	"  --sweep PARAM=V1,V2,..  one line per value of model parameter PARAM (e.g. D=16,64,256)\n"
	"  --json                one JSON object (per sweep value)\n"
	"  --plot FILE           with --sweep: settle time, latency and JIT wall time against size\n"
	"  -h, --help            show this help\n";

/* --plot of a sweep: settle time in tau units, latency and JIT wall time against size. */
static int hw_plot(const char *path, const char *sweep, const RepBuf *data)
{
	if (!sweep) {
		fputs("damc report: error: --plot draws a sweep: give --sweep PARAM=V1,V2,...\n", stderr);
		return RUN_EXIT_USAGE;
	}
	RepBuf body;
	rep_init(&body);
	rep_printf(&body, "set grid\nset logscale x\nset multiplot layout 2,1 title 'damc report --sweep %.*s'\n"
	           "set ylabel 'settle time / tau'\nset yrange [0:*]\n"
	           "plot 'trace.dat' using 1:2 with linespoints lw 2 title 'settle time (tau units)'\n"
	           "set logscale y\nset format y '%%g'\nset yrange [*:*]\nset xlabel 'neurons'\nset ylabel 'seconds'\n"
	           "plot 'trace.dat' using 1:3 with linespoints lw 2 title 'analog latency', "
	           "'trace.dat' using 1:5 with linespoints lw 2 title 'JIT wall time'\nunset multiplot\n",
	           (int)strcspn(sweep, "="), sweep);
	char err[512];
	int rc = report_gnuplot(path, body.s, data->s ? data->s : "", data->n, err, sizeof err);
	if (rc < 0)
		fprintf(stderr, "damc report: error: --plot: %s\n", err);
	rep_free(&body);
	return rc < 0 ? RUN_EXIT_INPUT : 0;
}

/* One report: the sweep value v (or none) and the plot rows. */
typedef struct HwRun {
	const char *param;
	size_t plen;
	const char *v;
	char def[256];
	RepBuf *plot;
} HwRun;

static void hw_prepare(NetArgs *na, void *user)
{
	HwRun *r = user;
	if (!na->ra.cli.device)
		na->ra.cli.device = run_strdup("integrated");
	if (r->v) {
		snprintf(r->def, sizeof r->def, "%.*s=%s", (int)r->plen, r->param, r->v);
		run_add_define(&na->ra.cli, r->def);
	}
}

static int hw_body(NetSession *s, Diags *d, void *user)
{
	HwRun *r = user;
	return hw_one(s, r->v ? r->def : NULL, r->plot, d);
}

/* Flags are parsed afresh for each sweep value, since the session takes
 * ownership of what they set. */
static int hw_run(int argc, char **argv, const char *param, size_t plen, const char *v, bool *help,
                  RepBuf *plot)
{
	HwRun r = { param, plen, v, "", plot };
	NetCommand c = { hw_usage, false, hw_prepare, hw_body, &r, false };
	int status = net_main("report", argc, argv, &c);
	*help = c.help_shown;
	return status;
}

int cmd_report(int argc, char **argv)
{
	const char *sweep = NULL;
	char **args = run_xcalloc((size_t)argc + 1, sizeof *args);
	int nargs = 0;
	for (int i = 0; i < argc; i++) {       /* take --sweep out before the common flags */
		if (!strcmp(argv[i], "--sweep") && i + 1 < argc)
			sweep = argv[++i];
		else if (!strncmp(argv[i], "--sweep=", 8))
			sweep = argv[i] + 8;
		else
			args[nargs++] = argv[i];
	}
	if (sweep && (!strchr(sweep, '=') || sweep[0] == '=' || !strchr(sweep, '=')[1])) {
		free(args);
		return run_usage_error("--sweep expects PARAM=V1,V2,..., got '%s'", sweep);
	}
	bool json = false, help = false;
	const char *plot = NULL;
	for (int i = 1; i < nargs; i++) {
		json |= !strcmp(args[i], "--json");
		if (!strcmp(args[i], "--plot") && i + 1 < nargs)
			plot = args[i + 1];
	}
	RepBuf pdata;
	rep_init(&pdata);
	size_t plen = sweep ? (size_t)(strchr(sweep, '=') - sweep) : 0;
	char *vals = sweep ? run_strdup(sweep + plen + 1) : NULL, *save = NULL;
	char *v = vals ? strtok_r(vals, ",", &save) : NULL;
	int status = 0;
	bool header = sweep && !json;
	do {
		if (header) {
			printf("%-12s %8s %11s %10s %10s %10s %12s %10s %10s\n", "sweep", "neurons", "crosspoints",
			       "amplifiers", "settle/tau", "latency_s", "energy_J", "jit_s", "tau_min_s");
			header = false;
		}
		status = hw_run(nargs, args, sweep, plen, v, &help, &pdata);
		v = vals ? strtok_r(NULL, ",", &save) : NULL;
	} while (v && !status && !help);
	if (!status && !help && plot)
		status = hw_plot(plot, sweep, &pdata);
	rep_free(&pdata);
	free(vals);
	free(args);
	return status;
}
