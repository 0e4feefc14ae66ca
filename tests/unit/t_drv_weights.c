/* t_drv_weights.c - weights are run-time data of the compiled kernels.
 *
 * One compile of examples/xor.dam runs the ideal weights, then the same
 * simulator object is given other weights with sim_set_tensor (memory row 2,
 * the pattern 1 0 1, replaced by 1 0 0, so that input (1, 0) now recalls 0),
 * and the result is compared with a second compile whose Model carries those
 * weights baked in as constants (bake_weights): the two must agree to 1e-12,
 * and the reprogrammed run must differ from the ideal one.  A clone keeps the
 * programmed weights; a rank-0 or non-weight tensor is refused.
 */
#include <math.h>
#include <string.h>

#include "frontend.h"
#include "jit.h"
#include "sim.h"
#include "tap.h"

static double run_y(DamSim *s)
{
	double bits[2] = { 1, 0 }, out[8];
	sim_set_input(s, 0, bits, 2, NULL, 0);
	DamRunOpts o;
	dam_run_opts_default(&o);
	o.t_end = 5;
	DamRunResult r;
	sim_run(s, &o, &r, NULL, NULL, NULL, 0);
	sim_outputs(s, out);
	return out[0];
}

int main(void)
{
	Arena a;
	Diags d;
	arena_init(&a);
	diags_init(&d, &a);
	FrontendOptions fo = { NULL, 0, NULL, NULL, 0 };
	Model *m = dam_frontend_compile(DAM_SOURCE_DIR "/examples/xor.dam", &fo, &d, &a);
	char err[512] = "";
	Jit *j = m ? jit_compile(m, &(JitOptions){ .opt_level = 3 }, err, sizeof err) : NULL;
	if (!ok(j != NULL, "xor compiles with run-time weights")) {
		diag("%s", err);
		return done_testing();
	}
	int b = model_find(m, MODEL_BLOCK, "xi");
	TensorId w = m->blocks[b].w;
	ok(jit_ws_offset(j, w) >= 0, "the weight block 'xi' lives in the workspace");
	DamSim *s = sim_new(m, j);
	double y0 = run_y(s);
	double w2[12];
	memcpy(w2, m->tensors[w].data, sizeof w2);
	w2[2 * 3 + 2] = 0;                   /* row 2: 1 0 1 -> 1 0 0 */
	ok(sim_set_tensor(s, w, w2) == 0, "sim_set_tensor accepts the weight block");
	double y1 = run_y(s);
	DamSim *c = sim_clone(s);
	double y2 = run_y(c);
	/* The same weights baked into a second compile. */
	double *orig = m->tensors[w].data;
	m->tensors[w].data = w2;
	Jit *jb = jit_compile(m, &(JitOptions){ .opt_level = 3, .bake_weights = 1 }, err, sizeof err);
	ok(jb && jit_ws_offset(jb, w) < 0, "bake_weights compiles the weights in");
	DamSim *sb = jb ? sim_new(m, jb) : NULL;
	double yb = sb ? run_y(sb) : NAN;
	m->tensors[w].data = orig;
	diag("ideal y = %.12g, reprogrammed y = %.12g, baked y = %.12g, clone y = %.12g", y0, y1, yb, y2);
	ok(fabs(y0 - 1) < 0.01, "ideal weights: XOR(1, 0) = 1");
	ok(fabs(y1 - yb) <= 1e-12, "reprogrammed run equals the baked compile of the same weights (tol 1e-12)");
	ok(y1 < 0.9 && fabs(y1 - y0) > 0.1, "the new weights change the answer (y %.3g -> %.3g)", y0, y1);
	ok(y2 == y1, "a clone keeps the programmed weights (bit for bit)");
	int bad = sim_set_tensor(s, m->layers[0].x, w2);
	ok(bad == -1, "a state tensor is refused");
	sim_free(s);
	sim_free(c);
	sim_free(sb);
	jit_free(j);
	jit_free(jb);
	diags_free(&d);
	arena_free(&a);
	return done_testing();
}
