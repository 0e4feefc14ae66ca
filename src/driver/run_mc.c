/* run_mc.c - `damc run --device P --mc N --seed S`: what many chips built
 * from one device technology compute.
 *
 * Each draw programs every simulator with its own copy of the weights (the
 * image's quantised conductances with --image, else the model's), perturbed
 * as the profile's `noise` table says: every programmed cell's conductance
 * is multiplied by 1 + program * N(0, 1); a cell is stuck at Gmin or Gmax
 * with probability stuck_min / stuck_max (a stuck-on open cell conducts
 * Gmax); read noise N(0, read) is added to every output value.  The noise is
 * in the weights the ODE integrates (sim_set_tensor / sim_set_dynamic on the
 * compiled kernels; nothing is recompiled), not a perturbation of results.
 * Draw k uses its own generator, seeded from (seed, k), so the output does
 * not depend on the number of threads: the same seed gives the same bytes.
 * noise.tau draws each neuron's time constant R2*C1 as tau * (1 + tau_sigma
 * N(0, 1)) (at least 5% of tau), also run-time data of the kernels.
 * Conductance drift (phase-change and resistive memories relax after
 * programming): a programmed cell read drift_time seconds later conducts
 * G * (drift_time / 1 s)^-nu, nu drawn per cell from N(drift, drift_sigma)
 * (at least 0); stuck and open cells do not drift.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dam_dataset.h"
#include "run.h"
#include "run_image.h"
#include "xbar.h"

typedef struct McRng {
	uint64_t s;
} McRng;

static uint64_t mc_next(McRng *r)            /* splitmix64 */
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static double mc_uniform(McRng *r)           /* (0, 1) */
{
	return ((double)(mc_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

static double mc_normal(McRng *r)            /* Box-Muller, one value per call */
{
	double u = mc_uniform(r), v = mc_uniform(r);
	return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* One cell of weight w as built: stuck, or programmed with noise. */
static double mc_cell(McRng *r, const DevProfile *dev, double w, double gmax_w)
{
	double u = mc_uniform(r);
	double sign = w < 0 ? -1 : 1;
	if (u < dev->noise.stuck_min)
		return sign * (dev->xbar.gmin > 0 && dev->xbar.gmax > 0 ? dev->xbar.gmin / dev->xbar.gmax * gmax_w : 0);
	if (u < dev->noise.stuck_min + dev->noise.stuck_max)
		return sign * gmax_w;
	if (w == 0)
		return 0;
	double g = w * (1 + dev->noise.program * mc_normal(r));
	if (dev->noise.drift_time > 1 && (dev->noise.drift > 0 || dev->noise.drift_sigma > 0)) {
		double nu = fmax(0, dev->noise.drift + dev->noise.drift_sigma * mc_normal(r));
		g *= pow(dev->noise.drift_time, -nu);
	}
	return g;
}

static void mc_perturb(McRng *r, const DevProfile *dev, double gmax_w, const double *w, double *out,
                       size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = mc_cell(r, dev, w[i], gmax_w);
}

/* The weights every draw starts from: the image's, else the model's static blocks. */
static void mc_base(const Model *m, const RunImage *img, RunImage *base, double *wmax)
{
	memset(base, 0, sizeof *base);
	*wmax = 0;
	if (img) {
		*base = *img;
	} else {
		base->st = run_xcalloc((size_t)m->nblocks + 1, sizeof *base->st);
		for (int b = 0; b < m->nblocks; b++) {
			const MBlock *B = &m->blocks[b];
			const MTensor *T = &m->tensors[B->w];
			if (B->dynamic || !T->data)
				continue;
			base->st[base->nst].t = B->w;
			base->st[base->nst++].w = T->data;
		}
	}
	for (int k = 0; k < base->nst; k++) {
		if (base->st[k].bias)
			continue;
		int64_t n = sym_tensor_size(m->sym, base->st[k].t);
		for (int64_t i = 0; i < n; i++)
			*wmax = fmax(*wmax, fabs(base->st[k].w[i]));
	}
}

/* A draw's weights: same tensors as base, values perturbed. */
static void mc_draw(const Model *m, const RunImage *base, const DevProfile *dev, double gmax_w, McRng *r,
                    RunImage *out)
{
	out->nst = base->nst;
	out->ndy = base->ndy;
	out->tau = NULL;
	if (base->tau && !(dev->noise.tau > 0)) {   /* the image's time constants */
		size_t ns = (size_t)model_state_size(m);
		out->tau = run_xcalloc(ns, sizeof *out->tau);
		memcpy(out->tau, base->tau, ns * sizeof *out->tau);
	}
	out->st = run_xcalloc((size_t)base->nst + 1, sizeof *out->st);
	out->dy = run_xcalloc((size_t)base->ndy + 1, sizeof *out->dy);
	for (int k = 0; k < base->nst; k++) {
		size_t n = (size_t)sym_tensor_size(m->sym, base->st[k].t);
		out->st[k].t = base->st[k].t;
		out->st[k].w = run_xcalloc(n, sizeof(double));
		out->st[k].bias = base->st[k].bias;
		if (base->st[k].bias)             /* a bias vector: set by DACs, not cells */
			memcpy(out->st[k].w, base->st[k].w, n * sizeof(double));
		else
			mc_perturb(r, dev, gmax_w, base->st[k].w, out->st[k].w, n);
	}
	if (dev->noise.tau > 0) {                 /* R2*C1 as built, neuron by neuron */
		int64_t n = model_state_size(m), i = 0;
		out->tau = run_xcalloc((size_t)n, sizeof *out->tau);
		for (int l = 0; l < m->nlayers; l++)
			for (int64_t j = 0; j < m->layers[l].n; j++, i++)
				out->tau[i] = (base->tau ? base->tau[i] : m->layers[l].tau) *
				              fmax(0.05, 1 + dev->noise.tau * mc_normal(r));
	}
	for (int k = 0; k < base->ndy; k++) {
		out->dy[k] = base->dy[k];
		size_t n = (size_t)(base->dy[k].vocab * base->dy[k].cols);
		out->dy[k].table = run_xcalloc(n, sizeof(double));
		mc_perturb(r, dev, gmax_w, base->dy[k].table, out->dy[k].table, n);
	}
}

static int mc_labels(const Model *m, const char *path, size_t nrows, double **labels, int *out_idx,
                     Diags *d)
{
	*out_idx = -1;
	for (int o = 0; o < m->noutputs && *out_idx < 0; o++)
		if (m->outputs[o].rank == 1 && m->outputs[o].n >= 2)
			*out_idx = o;
	if (*out_idx < 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "--labels needs a vector output to take the argmax of");
		return -1;
	}
	DamDataset ds;
	DamDatasetError e;
	if (dam_dataset_read(path, 1, &ds, &e) < 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "%s:%d: %s", path, e.line, e.msg);
		return -1;
	}
	if (ds.rows != nrows) {
		diag_error(d, (Loc){ 0, 0, 0 }, "%s has %zu labels for %zu input rows", path, ds.rows, nrows);
		dam_dataset_free(&ds);
		return -1;
	}
	*labels = ds.v;            /* taken over */
	return 0;
}

int run_mc(const Model *m, const Jit *jit, const RunConfig *rc, const RunArgs *ra, RunBatch *b,
           const RunImage *img, const int *sel, int nsel, Diags *d, Arena *a)
{
	(void)sel;
	(void)nsel;
	if (!rc->device) {
		diag_error(d, (Loc){ 0, 0, 0 }, "--mc needs a device profile with a noise table: --device P");
		return RUN_EXIT_INPUT;
	}
	DevProfile dev;
	if (cfg_load_device(rc->device, &dev, a, d) < 0)
		return RUN_EXIT_INPUT;
	double *labels = NULL;
	int oidx = -1;
	if (ra->labels && mc_labels(m, ra->labels, b->nrows, &labels, &oidx, d) < 0)
		return RUN_EXIT_INPUT;
	RunImage base;
	double wmax;
	mc_base(m, img, &base, &wmax);
	/* a cell stuck at Gmax: the largest weight under the tile scale (each
	 * tile's largest weight sits at Gmax), gmax / g0 under the global one */
	double gmax_w = dev.xbar.scale == DEV_SCALE_GLOBAL && dev.xbar.gmax > 0 ? dev.xbar.gmax / XBAR_G0
	                                                                      : wmax;
	b->m = m;
	b->jit = jit;
	b->nout = jit_kernels(jit)->noutput;
	const JitKernels *k = jit_kernels(jit);
	size_t nval = b->nrows * (b->nout ? b->nout : 1);
	b->outputs = run_xcalloc(nval, sizeof(double));
	b->res = run_xcalloc(b->nrows, sizeof *b->res);
	b->msg = run_xcalloc(b->nrows, sizeof *b->msg);
	b->refused = run_xcalloc(b->nrows, sizeof *b->refused);
	/* Sums of (value - the first draw's value), so the spread has no cancellation. */
	double *sum = run_xcalloc(nval, sizeof *sum), *sq = run_xcalloc(nval, sizeof *sq);
	double *first = run_xcalloc(nval, sizeof *first);
	double acc_sum = 0, worst = 2, best = -1;
	long worst_draw = 0, bad_runs = 0;
	RepBuf out;
	rep_init(&out);
	if (!rc->json)
		rep_printf(&out, "mc: %ld draws of device '%s' (seed %llu): program sigma %g, stuck at Gmin %g / "
		           "Gmax %g, read sigma %g, tau sigma %g, drift nu %g (sigma %g) at %g s\n", ra->mc,
		           dev.name, ra->seed, dev.noise.program, dev.noise.stuck_min, dev.noise.stuck_max,
		           dev.noise.read, dev.noise.tau, dev.noise.drift, dev.noise.drift_sigma,
		           dev.noise.drift_time);
	for (long draw = 0; draw < ra->mc; draw++) {
		McRng r = { ra->seed * 0x2545f4914f6cdd1du + (uint64_t)draw * 0x9e3779b97f4a7c15u + 1 };
		RunImage noisy;
		mc_draw(m, &base, &dev, gmax_w, &r, &noisy);
		b->img = &noisy;
		run_batch_run(b, rc->threads > 0 ? rc->threads : 0);
		size_t correct = 0;
		for (size_t row = 0; row < b->nrows; row++) {
			bad_runs += b->res[row].status != DAM_OK;
			double *o = b->outputs + row * b->nout;
			for (size_t v = 0; v < b->nout; v++)
				o[v] += dev.noise.read * mc_normal(&r);
			for (size_t v = 0; v < b->nout; v++) {
				size_t i = row * b->nout + v;
				if (draw == 0)
					first[i] = o[v];
				sum[i] += o[v] - first[i];
				sq[i] += (o[v] - first[i]) * (o[v] - first[i]);
			}
			if (labels) {
				const double *lo = o + k->output_off[oidx];
				int64_t arg = 0;
				for (int64_t c = 1; c < m->outputs[oidx].n; c++)
					if (lo[c] > lo[arg])
						arg = c;
				correct += b->res[row].status == DAM_OK && (double)arg == labels[row];
			}
		}
		double acc = b->nrows ? (double)correct / (double)b->nrows : 0;
		acc_sum += acc;
		if (acc < worst) {
			worst = acc;
			worst_draw = draw;
		}
		best = fmax(best, acc);
		if (rc->json && labels)
			rep_printf(&out, "{\"draw\":%ld,\"correct\":%zu,\"rows\":%zu,\"accuracy\":%.17g}\n", draw,
			           correct, b->nrows, acc);
		run_image_free(&noisy);
	}
	double n = (double)ra->mc;
	if (labels) {
		if (rc->json)
			rep_printf(&out, "{\"mc\":%ld,\"seed\":%llu,\"device\":", ra->mc, ra->seed);
		if (rc->json) {
			rep_json_string(&out, dev.name);
			rep_printf(&out, ",\"accuracy_mean\":%.17g,\"accuracy_worst\":%.17g,\"worst_draw\":%ld,"
			           "\"accuracy_best\":%.17g,\"runs_not_ok\":%ld}\n", acc_sum / n, worst, worst_draw,
			           best, bad_runs);
		} else {
			rep_printf(&out, "accuracy over %ld draws of %zu rows: mean %.4f, worst %.4f (draw %ld), best "
			           "%.4f; runs not ok: %ld\n", ra->mc, b->nrows, acc_sum / n, worst, worst_draw, best,
			           bad_runs);
		}
	} else {
		for (size_t row = 0; row < b->nrows; row++) {
			rep_printf(&out, rc->json ? "{\"row\":%zu,\"mean\":[" : "row %zu: mean", row);
			for (size_t v = 0; v < b->nout; v++)
				rep_printf(&out, rc->json ? "%s%.17g" : "%s%.6g", rc->json ? (v ? "," : "") : " ",
				           first[row * b->nout + v] + sum[row * b->nout + v] / n);
			rep_printf(&out, rc->json ? "],\"std\":[" : "   std");
			for (size_t v = 0; v < b->nout; v++) {
				double mu = sum[row * b->nout + v] / n, var = sq[row * b->nout + v] / n - mu * mu;
				rep_printf(&out, rc->json ? "%s%.17g" : "%s%.3g", rc->json ? (v ? "," : "") : " ",
				           var > 0 ? sqrt(var) : 0);
			}
			rep_printf(&out, rc->json ? "]}\n" : "\n");
		}
	}
	fwrite(out.s ? out.s : "", 1, out.n, stdout);
	fflush(stdout);
	rep_free(&out);
	free(sum);
	free(sq);
	free(first);
	free(labels);
	if (!img)
		free(base.st);
	b->img = NULL;
	return RUN_EXIT_OK;        /* the distribution is the answer; not-ok runs are counted */
}
