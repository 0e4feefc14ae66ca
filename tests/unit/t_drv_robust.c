/* t_drv_robust.c - the run path refuses what would give a wrong "ok" (issue 10).
 *
 *  - run_build_rows checks inline rows (as a Lua config or a caller of the
 *    shared row builder hands them over) with the input setter's own checks:
 *    a NaN or an infinite value is refused before anything runs, in words
 *    ("is not a number", "is infinite"), never printed as "nan".
 *  - sim_run and the public dam_run refuse a forward-Euler step of 10 time
 *    units on XOR (tau_h = 0.1, stable only below 0.2): status STEP_FAIL, no
 *    step taken, a message naming the layer; a stable step still runs.
 *  - A run whose energy is not finite (inputs of 1e200: E = inf - inf) has
 *    status NAN and says so, through sim_run and through dam_run.
 * Uses only functions that existed before the fix, so it fails on the old
 * code instead of failing to compile.  Run from the repository root.
 */
#include <math.h>
#include <string.h>

#include "dam.h"
#include "frontend.h"
#include "jit.h"
#include "run.h"
#include "sim.h"
#include "tap.h"

typedef struct Compiled {
	Arena a;
	Diags d;
	Model *m;
	Jit *jit;
} Compiled;

static int compile(Compiled *c, const char *path)
{
	FrontendOptions fo = { NULL, 0, NULL, NULL, 0 };
	char err[512] = "";
	arena_init(&c->a);
	diags_init(&c->d, &c->a);
	c->m = dam_frontend_compile(path, &fo, &c->d, &c->a);
	c->jit = c->m ? jit_compile(c->m, &(JitOptions){ .opt_level = 3 }, err, sizeof err) : NULL;
	if (!c->jit)
		diag("%s: %s", path, err);
	return c->jit ? 0 : -1;
}

static void release(Compiled *c)
{
	if (c->jit)
		jit_free(c->jit);
	diags_free(&c->d);
	arena_free(&c->a);
}

static int has_nan_word(const char *s)
{
	return strstr(s, "nan") || strstr(s, "NaN") || strstr(s, "inf ") || strstr(s, "-inf");
}

/* run_build_rows on inline rows (nrows x ncols); the first error's text. */
static int build_inline(const Model *m, const double *v, size_t nrows, size_t ncols, char *msg,
                        size_t len)
{
	Arena a;
	Diags d;
	RunConfig rc;
	RunBatch b;
	arena_init(&a);
	diags_init(&d, &a);
	runcfg_init(&rc);
	memset(&b, 0, sizeof b);
	rc.dataset = run_xcalloc(nrows * ncols, sizeof *rc.dataset);
	memcpy(rc.dataset, v, nrows * ncols * sizeof *v);
	rc.dataset_rows = nrows;
	rc.dataset_cols = ncols;
	int r = run_build_rows(m, &rc, &b, &d);
	snprintf(msg, len, "%s", d.n ? d.v[0].msg : "");
	run_batch_free(&b);
	runcfg_free(&rc);
	diags_free(&d);
	arena_free(&a);
	return r;
}

static void test_rows(const Compiled *xor)
{
	char msg[512];
	int r = build_inline(xor->m, (double[]){ 1, 0, NAN, 1 }, 2, 2, msg, sizeof msg);
	ok(r == -1 && !strcmp(msg, "input 'bits' value at position 0 is not a number (dataset row 2)"),
	   "a NaN in inline row 2 is refused before running (%d: %s)", r, msg);
	r = build_inline(xor->m, (double[]){ 1, -INFINITY }, 1, 2, msg, sizeof msg);
	ok(r == -1 && !strcmp(msg, "input 'bits' value at position 1 is infinite"),
	   "-inf is refused, in words (%d: %s)", r, msg);
	r = build_inline(xor->m, (double[]){ 1, 0, 0, 1 }, 2, 2, msg, sizeof msg);
	ok(r == 0 && msg[0] == '\0', "finite rows are accepted (%d: %s)", r, msg);
}

static void test_tokens(void)
{
	Compiled c;
	if (compile(&c, "examples/parity_et.dam") < 0) {
		skip(1, "parity_et.dam does not compile");
		release(&c);
		return;
	}
	char msg[512];
	int r = build_inline(c.m, (double[]){ NAN, 0, 0, 0, 0, 0, 0, 0 }, 1, 8, msg, sizeof msg);
	ok(r == -1 && !has_nan_word(msg) && strstr(msg, "is not a number"),
	   "a NaN token is refused without printing it (%d: %s)", r, msg);
	release(&c);
}

static void test_sim_step(const Compiled *xor)
{
	DamSim *s = sim_new(xor->m, xor->jit);
	char msg[256] = "";
	DamRunOpts o;
	DamRunResult res;
	dam_run_opts_default(&o);
	ok(sim_set_input(s, 0, (double[]){ 1, 0 }, 2, msg, sizeof msg) == 0, "bits = 1, 0");
	o.dt = 10;
	o.t_end = 5;
	DamStatus st = sim_run(s, &o, &res, NULL, NULL, msg, sizeof msg);
	ok(st == DAM_STEP_FAIL && res.steps == 0 && strstr(msg, "layer 'h' (tau = 0.1)"),
	   "sim_run: Euler dt 10 on tau 0.1 is refused (status %d, %lld steps: %s)", (int)st,
	   (long long)res.steps, msg);
	o.dt = 0.1;
	st = sim_run(s, &o, &res, NULL, NULL, msg, sizeof msg);
	double y = NAN;
	sim_outputs(s, &y);
	ok(st == DAM_OK && fabs(y - 1) < 6e-3, "sim_run: Euler dt 0.1 runs: y = %.6f (status %d)", y,
	   (int)st);
	ok(sim_set_input(s, 0, (double[]){ 1e200, 0 }, 2, msg, sizeof msg) == 0, "bits = 1e200, 0");
	o.dt = 1e-3;
	o.diverge_limit = 0;       /* relative to the initial scale, as damc run sets it */
	st = sim_run(s, &o, &res, NULL, NULL, msg, sizeof msg);
	ok(st == DAM_NAN && !strcmp(msg, "the energy is not a number at t = 0"),
	   "sim_run: a non-finite energy is status NAN, never OK (status %d: %s)", (int)st, msg);
	sim_free(s);
}

static void test_api(void)
{
	char *err = NULL;
	DamModel *m = dam_compile_file("examples/xor.dam", NULL, &err);
	if (!m) {
		diag("%s", err ? err : "");
		dam_string_free(err);
		skip(2, "xor.dam does not compile");
		return;
	}
	DamRunOptions o;
	dam_run_options_default(&o);
	o.dt = 10;
	o.t_end = 5;
	dam_set_input(m, "bits", (double[]){ 1, 0 }, 2);
	DamError e = dam_run(m, &o, NULL);
	ok(e != DAM_E_OK && strstr(dam_errmsg(m), "unstable") && strstr(dam_errmsg(m), "layer 'h'"),
	   "dam_run: Euler dt 10 is refused (%s: %s)", dam_error_name(e), dam_errmsg(m));
	o.dt = 1e-3;
	dam_set_input(m, "bits", (double[]){ 1e200, 0 }, 2);
	e = dam_run(m, &o, NULL);
	ok(e == DAM_E_RUN && !strcmp(dam_errmsg(m), "the energy is not a number at t = 0"),
	   "dam_run: a non-finite energy is a failed run (%s: %s)", dam_error_name(e), dam_errmsg(m));
	dam_model_free(m);
}

int main(void)
{
	plan(11);
	Compiled xor;
	if (compile(&xor, "examples/xor.dam") < 0) {
		skip(8, "xor.dam does not compile");
	} else {
		test_rows(&xor);
		test_sim_step(&xor);
	}
	test_tokens();
	test_api();
	release(&xor);
	return done_testing();
}
