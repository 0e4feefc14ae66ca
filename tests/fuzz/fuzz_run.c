/* fuzz_run.c - libFuzzer harness: the whole run path on small models.
 *
 * Each input is the text of a .dam model (registered in memory as in
 * fuzz_frontend.c).  Inputs that do not get to the JIT return -1, which
 * asks libFuzzer to keep them out of the corpus (fuzz_frontend covers them;
 * clang 14's libFuzzer ignores the request, so bench/fuzz.sh also focuses
 * the run on jit_compile).  After the front end, models that are too big
 * for a fast execution are skipped: more than FUZZ_MAX_STATE state variables,
 * FUZZ_MAX_TENSOR values in all tensors or FUZZ_MAX_NODES expression
 * nodes, since each execution JIT-compiles.  The rest is what `damc run`
 * does for one row: jit_compile at -O0 or -O1, with the weights as run-time
 * data or baked in as constants (bits 0 and 1 of the last input byte pick),
 * every input set to zeros (token 0), FUZZ_STEPS forward-Euler steps with
 * energy checks and a trace, then the outputs, activations and energy read
 * back and formatted with the report functions (JSON and text) into a
 * buffer.  Everything is freed per input, so LeakSanitizer sees any leak.
 * With DAM_FUZZ_STATS set, the harness prints at exit how many inputs got
 * how far (front end, small enough, JIT, simulated), to judge the corpus.
 * Built by `scripts/build.sh --fuzz` (build-fuzz/fuzz/fuzz_run).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "jit.h"
#include "report.h"
#include "sim.h"

#define FUZZ_NAME DAM_STDLIB_DIR "/../tests/errors/fuzz_input.dam"
#define FUZZ_MAX_LEN    4096
#define FUZZ_MAX_STATE  64
#define FUZZ_MAX_TENSOR 16384
#define FUZZ_MAX_NODES  20000u
#define FUZZ_STEPS      20

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* How far the inputs got: all, front end passed, small, JIT-compiled, run. */
static long fuzz_count[5];

static void fuzz_stats(void)
{
	fprintf(stderr, "fuzz_run stats: %ld inputs, %ld through the front end, %ld small enough, "
	        "%ld JIT-compiled, %ld simulated\n", fuzz_count[0], fuzz_count[1], fuzz_count[2],
	        fuzz_count[3], fuzz_count[4]);
}

static void fuzz_note(int stage)
{
	if (fuzz_count[0] == 0 && stage == 0 && getenv("DAM_FUZZ_STATS"))
		atexit(fuzz_stats);
	fuzz_count[stage]++;
}

/* Small enough to JIT-compile and run quickly. */
static int fuzz_small(const Model *m)
{
	if (m->nlayers == 0 || model_state_size(m) > FUZZ_MAX_STATE)
		return 0;
	if (sym_count(m->sym) > FUZZ_MAX_NODES)
		return 0;
	int64_t total = 0;
	for (uint32_t t = 1; t < sym_tensor_count(m->sym); t++) {
		int64_t n = sym_tensor_size(m->sym, t);
		if (n < 0 || n > FUZZ_MAX_TENSOR - total)
			return 0;
		total += n;
	}
	return 1;
}

/* Zeros (token 0) for every input; -1 if the simulator refuses them. */
static int fuzz_inputs(DamSim *s, const Model *m, double **vals)
{
	int64_t n = 1;
	for (int i = 0; i < m->ninputs; i++)
		n = m->inputs[i].n > n ? m->inputs[i].n : n;
	*vals = calloc((size_t)n, sizeof **vals);
	if (!*vals)
		return -1;
	char err[256];
	for (int i = 0; i < m->ninputs; i++)
		if (sim_set_input(s, i, *vals, (size_t)m->inputs[i].n, err, sizeof err) < 0)
			return -1;
	return sim_missing_input(s) < 0 ? 0 : -1;
}

static void fuzz_trace(void *user, double t, const double *x, const double *g, double energy)
{
	report_trace_add(user, t, x, g, energy);
}

/* Run FUZZ_STEPS Euler steps and format the results as `damc run` does. */
static void fuzz_simulate(const Model *m, const Jit *jit)
{
	const JitKernels *k = jit_kernels(jit);
	DamSim *s = sim_new(m, jit);
	double *vals = NULL;
	if (fuzz_inputs(s, m, &vals) == 0) {
		DamRunOpts o;
		dam_run_opts_default(&o);
		o.dt = 1e-2;
		o.t_end = FUZZ_STEPS * o.dt;
		o.max_steps = 2 * FUZZ_STEPS;
		o.check_every = 5;
		DamRunResult res;
		RepTrace tr;
		char msg[256] = "";
		report_trace_init(&tr, k->nstate);
		sim_run(s, &o, &res, fuzz_trace, &tr, msg, sizeof msg);
		fuzz_note(4);
		double *out = calloc(k->noutput + 1, sizeof *out);
		double *g = calloc(k->nstate + 1, sizeof *g);
		int *sel = calloc((size_t)m->noutputs + 1, sizeof *sel);
		const double **in = calloc((size_t)m->ninputs + 1, sizeof *in);
		if (out && g && sel && in) {
			sim_outputs(s, out);
			sim_acts(s, g);
			(void)sim_energy(s);
			for (int i = 0; i < m->noutputs; i++)
				sel[i] = i;
			for (int i = 0; i < m->ninputs; i++)
				in[i] = sim_input(s, i);
			ReportRun rr = { 0, in, out, k->output_off, sel, m->noutputs, &res, msg };
			RepBuf b;
			rep_init(&b);
			report_json_run(&b, m, &rr);
			report_text_header(&b);
			report_text_run(&b, m, &rr);
			rep_free(&b);
		}
		free(in);
		free(sel);
		free(g);
		free(out);
		report_trace_free(&tr);
	}
	free(vals);
	sim_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FUZZ_MAX_LEN)
		return -1;
	fuzz_note(0);
	Arena a;
	Diags d;
	arena_init(&a);
	diags_init(&d, &a);
	diag_add_text(&d, FUZZ_NAME, (const char *)data, size);
	FrontendOptions fo = { NULL, 0, DAM_STDLIB_DIR, NULL, (int64_t)1 << 24 };
	Model *m = dam_frontend_compile(FUZZ_NAME, &fo, &d, &a);
	int keep = m && fuzz_small(m);
	if (m)
		fuzz_note(1);
	if (keep) {
		fuzz_note(2);
		char err[1024] = "";
		unsigned last = size ? data[size - 1] : 0;
		JitOptions jo = { .opt_level = last & 1, .bake_weights = (last >> 1) & 1 };
		Jit *jit = jit_compile(m, &jo, err, sizeof err);
		if (jit) {
			fuzz_note(3);
			fuzz_simulate(m, jit);
			jit_free(jit);
		}
	}
	diags_free(&d);
	arena_free(&a);
	return keep ? 0 : -1;     /* fuzz_frontend covers the rest: keep the corpus runnable */
}
