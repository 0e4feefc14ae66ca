/* t_drv_sim.c - the simulator object: input validation texts, runs, clones.
 *
 * Compiles examples/xor.dam and examples/parity_et.dam (run from the repo
 * root; the parity weights come from ../shared) and checks the exact error
 * texts of sim_set_input, that a run reaches the XOR answer, that a clone and
 * a second run give bit-identical results, and that sim_locate maps a flat
 * state index to its layer and neuron.
 */
#include <string.h>

#include "frontend.h"
#include "jit.h"
#include "sim.h"
#include "tap.h"

typedef struct Compiled {
	Arena a;
	Diags d;
	Model *m;
	Jit *jit;
} Compiled;

static int compile(Compiled *c, const char *path, const char *define)
{
	const char *defs[1] = { define };
	FrontendOptions fo = { defs, define ? 1 : 0, NULL, NULL, 0 };
	char err[512] = "";
	arena_init(&c->a);
	diags_init(&c->d, &c->a);
	c->m = dam_frontend_compile(path, &fo, &c->d, &c->a);
	c->jit = c->m ? jit_compile(c->m, &(JitOptions){ .opt_level = 3 }, err, sizeof err) : NULL;
	if (!c->jit) {
		diag_render(&c->d, stdout);
		diag("%s: %s", path, err);
	}
	return c->jit ? 0 : -1;
}

static void release(Compiled *c)
{
	if (c->jit)
		jit_free(c->jit);
	diags_free(&c->d);
	arena_free(&c->a);
}

static void test_xor(void)
{
	Compiled c;
	if (compile(&c, "examples/xor.dam", NULL) < 0) {
		skip(9, "xor.dam does not compile");
		release(&c);
		return;
	}
	DamSim *s = sim_new(c.m, c.jit);
	char err[256] = "";
	int in = sim_find_input(c.m, "bits");
	ok(in == 0 && sim_find_input(c.m, "nope") == -1, "sim_find_input");
	ok(sim_missing_input(s) == 0, "bits not set yet");
	ok(sim_set_input(s, in, (double[]){ 1, 0, 1 }, 3, err, sizeof err) == -1, "three values refused");
	is_str(err, "input 'bits' expects 2 values, got 3", "count error text");
	ok(sim_set_input(s, in, (double[]){ 1, 0 }, 2, err, sizeof err) == 0 && sim_missing_input(s) == -1,
	   "two values accepted");
	DamRunOpts o;
	dam_run_opts_default(&o);
	o.t_end = 5;
	DamRunResult r1, r2, r3;
	char msg[256];
	double y1, y2, y3;
	sim_run(s, &o, &r1, NULL, NULL, msg, sizeof msg);
	sim_outputs(s, &y1);
	is_close(y1, 1.0, 0.05, "xor(1,0) settles at 1 (tol 0.05)");
	DamSim *t = sim_clone(s);
	sim_run(t, &o, &r2, NULL, NULL, msg, sizeof msg);
	sim_outputs(t, &y2);
	sim_run(s, &o, &r3, NULL, NULL, msg, sizeof msg);
	sim_outputs(s, &y3);
	ok(memcmp(&y1, &y2, sizeof y1) == 0 && memcmp(&y1, &y3, sizeof y1) == 0 &&
	   r1.energy_end == r2.energy_end && r1.energy_end == r3.energy_end,
	   "clone and rerun are bit-identical (%.17g %.17g %.17g)", y1, y2, y3);
	ok(r1.status == DAM_OK && msg[0] == '\0' && r1.max_energy_rise == 0, "status ok, no message, no energy rise");
	int layer;
	int64_t neuron;
	sim_locate(c.m, 4, &layer, &neuron);
	ok(layer == 1 && neuron == 1, "state index 4 is h[1] (layer %d neuron %lld)", layer, (long long)neuron);
	sim_free(t);
	sim_free(s);
	release(&c);
}

static void test_parity_tokens(void)
{
	Compiled c;
	if (compile(&c, "examples/parity_et.dam",
	            "weights=../shared/data/published/analog-denseam-parity/model_best.npz") < 0) {
		skip(3, "parity_et.dam does not compile");
		release(&c);
		return;
	}
	DamSim *s = sim_new(c.m, c.jit);
	char err[256] = "";
	int in = sim_find_input(c.m, "tok");
	ok(sim_set_input(s, in, (double[]){ 0, 1, 0, 2, 0, 0, 1, 1 }, 8, err, sizeof err) == -2 &&
	   strcmp(err, "input 'tok' value 2 at position 3 is not a token index in 0..1") == 0,
	   "token 2 refused: %s", err);
	ok(sim_set_input(s, in, (double[]){ 0, 1, 0, 0.5, 0, 0, 1, 1 }, 8, err, sizeof err) == -2 &&
	   strcmp(err, "input 'tok' value 0.5 at position 3 is not a token index in 0..1") == 0,
	   "token 0.5 refused: %s", err);
	ok(sim_set_input(s, in, (double[]){ 1, 1, 1, 0, 0, 0, 1, 1 }, 8, err, sizeof err) == 0,
	   "a valid context is accepted");
	sim_free(s);
	release(&c);
}

int main(void)
{
	plan(12);
	test_xor();
	test_parity_tokens();
	return done_testing();
}
