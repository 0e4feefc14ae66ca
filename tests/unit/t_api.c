/* t_api.c - the public C API (dam.h) end to end.
 *
 *  - XOR (examples/xor.dam, T = 5): the four inputs settle within 0.05 of
 *    a XOR b (the paper's Figure 2 tolerance), from a file and from the same
 *    text compiled from a string (bit-identical); state, activation and
 *    energy readouts agree with the outputs.
 *  - Introspection: names and sizes of inputs, outputs, layers and blocks.
 *  - Error paths return a code and a message in the user's words and never
 *    crash: bad file, syntax error, unknown -D param, unknown input name,
 *    wrong count, token out of range, NaN, missing input, readout before a
 *    run, bad options, static block, NULL handles, a diverging run.
 *  - dam_set_weights on parity_et's attention block: tokens A with the rows
 *    of tokens B programmed directly gives the same logits and state as
 *    setting tokens B (difference 0 expected; tolerance 1e-12), and
 *    dam_clear_weights returns to the tokens-A result.
 *  - Clones run on two threads give bit-identical results.
 *  - A block over a tensor an output also reads: programming the block's
 *    rows leaves the output alone (the JIT shares a block's storage with its
 *    tensor only when nothing else reads the tensor).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dam.h"
#include "tap.h"

#define SRC DAM_SOURCE_DIR
#define WEIGHTS SRC "/../shared/data/published/analog-denseam-parity/model_best.npz"

static const char xor_text[] =
	"import \"lagrangians\"\n"
	"param beta = 8\n"
	"input bits[2]\n"
	"layer v[3] : identity       tau = 1.0\n"
	"layer h[4] : softmax(beta)  tau = 0.1\n"
	"weights xi : h -- v = [[0,0,0], [0,1,1], [1,0,1], [1,1,0]]\n"
	"bias h[mu] = -0.5 * sum(i, xi[mu, i]^2)\n"
	"clamp v[0:2] = bits\n"
	"init  v = [0, 0, 0.5]\n"
	"output y = v[2]\n";

static int contains(const char *s, const char *sub)
{
	return s && sub && strstr(s, sub) != NULL;
}

static void xor_runs(DamModel *m, double y[4])
{
	DamRunOptions o;
	dam_run_options_default(&o);
	o.t_end = 5;
	for (int k = 0; k < 4; k++) {
		double bits[2] = { k >> 1, k & 1 };
		y[k] = NAN;
		if (dam_set_input(m, "bits", bits, 2) == DAM_E_OK && dam_run(m, &o, NULL) == DAM_E_OK)
			dam_get_output(m, "y", &y[k], 1);
	}
}

static void test_xor(void)
{
	char *err = (char *)1;
	DamModel *m = dam_compile_file(SRC "/examples/xor.dam", NULL, &err);
	ok(m != NULL && err == NULL, "xor.dam compiles, err set to NULL");
	if (!m) {
		diag("%s", err ? err : "");
		skip(15, "no model");
		return;
	}
	double y[4], worst = 0;
	xor_runs(m, y);
	for (int k = 0; k < 4; k++) {
		double want = (double)((k >> 1) ^ (k & 1)), e = fabs(y[k] - want);
		worst = fmax(worst, e);
		ok(e < 0.05, "xor(%d,%d) = %.6f, want %g (err %.2e, tol 0.05)", k >> 1, k & 1, y[k], want, e);
	}
	diag("worst |y - xor| = %.3e", worst);

	/* The last run was (1,1): readouts agree with the output.  (Calls
	 * first: the diagnostics below print the values they filled in.) */
	double v[3] = { 0 }, g[3] = { 0 }, all[7] = { 0 };
	DamRunInfo info = { 0 };
	int rs = dam_get_state(m, "v", v, 3), ra = dam_get_activations(m, "v", g, 3);
	int rx = dam_get_state_all(m, all, 7), ri = dam_last_run(m, &info);
	double e = dam_energy(m);
	ok(rs == DAM_E_OK && v[2] == y[3] && v[0] == 1 && v[1] == 1,
	   "state of v: clamped bits and v[2] == y (%g %g %g)", v[0], v[1], v[2]);
	ok(ra == DAM_E_OK && g[2] == v[2], "identity activation == state");
	ok(rx == DAM_E_OK && all[2] == v[2] && all[0] == 1, "flat state, 7 values");
	ok(ri == DAM_E_OK && info.status == DAM_RUN_OK && info.steps == 5000 && info.t == 5 &&
	   info.max_energy_rise == 0, "run info: ok, 5000 steps to t = 5, no energy rise "
	   "(steps %lld, t %g, rise %g)", (long long)info.steps, info.t, info.max_energy_rise);
	ok(e == info.energy_end && e < info.energy_start, "energy %g == energy_end, below start %g",
	   e, info.energy_start);

	DamModel *s = dam_compile_string("xor_inline", xor_text, NULL, &err);
	ok(s != NULL, "the same model compiles from a string");
	if (s) {
		double ys[4];
		xor_runs(s, ys);
		ok(!memcmp(y, ys, sizeof y), "string and file give bit-identical outputs");
	} else {
		diag("%s", err ? err : "");
		skip(1, "no model");
	}
	dam_model_free(s);

	ok(dam_input_count(m) == 1 && !strcmp(dam_input_name(m, 0), "bits") &&
	   dam_input_size(m, "bits") == 2 && dam_input_vocab(m, "bits") == 0, "input bits[2], real");
	ok(dam_output_count(m) == 1 && dam_output_size(m, "y") == 1, "output y, 1 value");
	ok(dam_layer_count(m) == 2 && !strcmp(dam_layer_name(m, 1), "h") && dam_layer_size(m, "h") == 4 &&
	   dam_layer_tau(m, "h") == 0.1 && dam_state_size(m) == 7, "layers v[3], h[4] (tau 0.1)");
	size_t r = 0, c = 0;
	ok(dam_weights_count(m) == 1 && dam_weights_shape(m, "xi", &r, &c) == 0 && r == 4 && c == 3,
	   "block xi: static, 4 x 3");
	dam_model_free(m);
}

static void test_compile_errors(void)
{
	char *err = NULL;
	DamModel *m = dam_compile_file(SRC "/examples/no_such_model.dam", NULL, &err);
	ok(!m && contains(err, "cannot read") && contains(err, "no_such_model.dam"),
	   "missing file: NULL and 'cannot read' (%s)", err ? strtok(err, "\n") : "no message");
	dam_string_free(err);

	err = NULL;
	m = dam_compile_string("bad.dam", "layer v[3] : identity tau = \n", NULL, &err);
	ok(!m && contains(err, "bad.dam:") && contains(err, "error:"),
	   "syntax error: NULL and a located diagnostic");
	if (err)
		diag("%s", strtok(err, "\n"));
	dam_string_free(err);

	const char *defs[] = { "gamma=3" };
	DamCompileOptions co = { .defines = defs, .ndefines = 1, .opt_level = -1 };
	err = NULL;
	m = dam_compile_file(SRC "/examples/xor.dam", &co, &err);
	ok(!m && contains(err, "the model has no param 'gamma'"), "unknown -D param is an error");
	dam_string_free(err);

	ok(dam_compile_file(NULL, NULL, NULL) == NULL && dam_compile_string("x", NULL, NULL, NULL) == NULL,
	   "NULL path / text: NULL, no crash (err may be NULL)");
}

static void test_run_errors(void)
{
	DamModel *m = dam_compile_file(SRC "/examples/xor.dam", NULL, NULL);
	if (!m) {
		skip(12, "xor.dam does not compile");
		return;
	}
	double v2[2] = { 1, 0 }, v3[3] = { 1, 0, 1 }, bad[2] = { 1, NAN }, out[4];
	ok(dam_run(m, NULL, NULL) == DAM_E_MISSING && !strcmp(dam_errmsg(m), "input 'bits' was not set"),
	   "run without inputs: DAM_E_MISSING (%s)", dam_errmsg(m));
	ok(dam_get_output(m, "y", out, 1) == DAM_E_NORUN, "readout before a run: DAM_E_NORUN (%s)",
	   dam_errmsg(m));
	ok(dam_set_input(m, "bitz", v2, 2) == DAM_E_NAME && !strcmp(dam_errmsg(m), "the model has no input 'bitz'"),
	   "unknown input: DAM_E_NAME (%s)", dam_errmsg(m));
	ok(dam_set_input(m, "bits", v3, 3) == DAM_E_COUNT &&
	   !strcmp(dam_errmsg(m), "input 'bits' expects 2 values, got 3"), "wrong count: DAM_E_COUNT (%s)",
	   dam_errmsg(m));
	ok(dam_set_input(m, "bits", bad, 2) == DAM_E_VALUE, "NaN input: DAM_E_VALUE (%s)", dam_errmsg(m));
	ok(dam_set_input(m, "bits", v2, 2) == DAM_E_OK, "valid input accepted");
	DamRunOptions o;
	dam_run_options_default(&o);
	o.dt = 0;
	ok(dam_run(m, &o, NULL) == DAM_E_OPTIONS && contains(dam_errmsg(m), "dt must be positive"),
	   "dt = 0: DAM_E_OPTIONS (%s)", dam_errmsg(m));
	o.dt = 1e-3;
	o.solver = (DamSolverKind)7;
	ok(dam_run(m, &o, NULL) == DAM_E_OPTIONS, "solver 7: DAM_E_OPTIONS (%s)", dam_errmsg(m));
	ok(dam_set_weights(m, "xi", out, 4) == DAM_E_COUNT, "a static block with the wrong count: "
	   "DAM_E_COUNT (%s)", dam_errmsg(m));
	ok(dam_set_weights(m, "nope", out, 1) == DAM_E_NAME && dam_get_state(m, "w", out, 1) == DAM_E_NAME &&
	   dam_get_output(m, "z", out, 1) == DAM_E_NAME, "unknown block, layer, output: DAM_E_NAME");
	ok(dam_run(NULL, NULL, NULL) == DAM_E_ARG && dam_set_input(NULL, "bits", v2, 2) == DAM_E_ARG &&
	   isnan(dam_energy(NULL)) && dam_input_count(NULL) == 0 && dam_input_name(m, 5) == NULL &&
	   dam_model_clone(NULL) == NULL, "NULL handles and bad indices: errors, no crash");
	ok(!strcmp(dam_error_name(DAM_E_COUNT), "DAM_E_COUNT"), "dam_error_name");
	dam_model_free(m);
	dam_model_free(NULL);
}

/* Static blocks are run-time data of the kernels: programming xi of the XOR
 * memory with the XNOR table (third column inverted), with no recompilation,
 * runs exactly as a model compiled with that table and the biases the XOR
 * model compiled from its own xi (bias = -|xi|^2/2 is evaluated at compile
 * time, as a chip's bias generators are set when it is programmed);
 * dam_clear_weights restores XOR; with bake_weights the block is refused. */
static const char xnor_src[] =
	"import \"lagrangians\"\n"
	"param beta = 8\n"
	"input bits[2]\n"
	"layer v[3] : identity tau = 1\n"
	"layer h[4] : softmax(beta) tau = 0.1\n"
	"weights xi : h -- v = [[0, 0, 1], [0, 1, 0], [1, 0, 0], [1, 1, 1]]\n"
	"bias h = [0, -1, -1, -1]\n"
	"clamp v[0:2] = bits\n"
	"init v = [0, 0, 0.5]\n"
	"output y = v[2]\n";

static void test_static_weights(void)
{
	DamModel *m = dam_compile_file(SRC "/examples/xor.dam", NULL, NULL);
	const char *defs[] = { "beta=8" };
	DamCompileOptions bo = { .defines = defs, .ndefines = 1, .opt_level = -1, .bake_weights = 1 };
	DamModel *baked = dam_compile_file(SRC "/examples/xor.dam", &bo, NULL);
	DamModel *want = dam_compile_string("xnor.dam", xnor_src, NULL, NULL);
	if (!m || !baked || !want) {
		skip(5, "xor.dam or the XNOR model does not compile");
		dam_model_free(m);
		dam_model_free(baked);
		dam_model_free(want);
		return;
	}
	const double xnor[12] = { 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1 };
	double got[12], y[4], y1[4], y2[4], y3[4];
	DamRunOptions o;
	dam_run_options_default(&o);
	o.t_end = 5;
	const double in[4][2] = { { 0, 0 }, { 0, 1 }, { 1, 0 }, { 1, 1 } };
	ok(dam_set_weights(m, "xi", xnor, 12) == DAM_E_OK, "program the static block xi (%s)", dam_errmsg(m));
	ok(dam_get_weights(m, "xi", got, 12) == DAM_E_OK && !memcmp(got, xnor, sizeof got),
	   "dam_get_weights reads back the programmed values");
	double worst = 0, worst2 = 0;
	for (int k = 0; k < 4; k++) {
		dam_set_input(m, "bits", in[k], 2);
		dam_run(m, &o, NULL);
		dam_get_output(m, "y", &y[k], 1);
		dam_set_input(want, "bits", in[k], 2);
		dam_run(want, &o, NULL);
		dam_get_output(want, "y", &y1[k], 1);
		worst = fmax(worst, fabs(y[k] - y1[k]));
	}
	diag("programmed XNOR table: y = %.6f %.6f %.6f %.6f, max |y - compiled| = %.3g", y[0], y[1],
	     y[2], y[3], worst);
	ok(worst <= 1e-12, "programmed xi runs as the model compiled with it (tol 1e-12)");
	dam_clear_weights(m, "xi");
	for (int k = 0; k < 4; k++) {
		dam_set_input(m, "bits", in[k], 2);
		dam_run(m, &o, NULL);
		dam_get_output(m, "y", &y2[k], 1);
		dam_set_input(baked, "bits", in[k], 2);
		dam_run(baked, &o, NULL);
		dam_get_output(baked, "y", &y3[k], 1);
		worst2 = fmax(worst2, fabs(y2[k] - y3[k]));
	}
	ok(worst2 == 0, "dam_clear_weights restores the model's xi: same outputs as the baked code "
	   "(max difference %.3g)", worst2);
	ok(dam_set_weights(baked, "xi", xnor, 12) == DAM_E_STATIC && contains(dam_errmsg(baked), "bake_weights"),
	   "bake_weights: a static block is refused, DAM_E_STATIC (%s)", dam_errmsg(baked));
	dam_model_free(m);
	dam_model_free(baked);
	dam_model_free(want);
}

static void test_diverge(void)
{
	static const char text[] =
		"import \"lagrangians\"\n"
		"layer v[1] : identity tau = 1.0\n"
		"weights w : v -- v = [[3]]\n"
		"init v = [1]\n"
		"output y = v[0]\n";
	char *err = NULL;
	DamModel *m = dam_compile_string("grow.dam", text, NULL, &err);
	if (!m) {
		diag("%s", err ? err : "");
		dam_string_free(err);
		skip(2, "growth model does not compile");
		return;
	}
	DamRunOptions o;
	dam_run_options_default(&o);
	o.t_end = 20;
	DamRunInfo info;
	DamError e = dam_run(m, &o, &info);
	ok(e == DAM_E_RUN && info.status == DAM_RUN_DIVERGED &&
	   contains(dam_errmsg(m), "layer 'v' neuron 0 diverged at t = "),
	   "x' = 2x diverges: DAM_E_RUN (%s)", dam_errmsg(m));
	double y = 0;
	int ry = dam_get_output(m, "y", &y, 1);
	ok(ry == DAM_E_OK && y > 100, "readout after divergence: y = %g", y);
	dam_model_free(m);
}

/* ---- parity_et: programming the attention rows --------------------------- */

static const int tok_a[8] = { 1, 1, 1, 0, 0, 0, 1, 1 };
static const int tok_b[8] = { 0, 1, 0, 1, 1, 0, 1, 0 };

static int run_tokens(DamModel *m, const int *tok, double lg[2], double *x, size_t nx)
{
	DamRunOptions o;
	dam_run_options_default(&o);
	o.check_every = 100;
	return dam_set_tokens(m, "tok", tok, 8) || dam_run(m, &o, NULL) ||
	       dam_get_output(m, "logits", lg, 2) || (x && dam_get_state_all(m, x, nx));
}

static double max_diff(const double *a, const double *b, size_t n)
{
	double d = 0;
	for (size_t i = 0; i < n; i++)
		d = fmax(d, fabs(a[i] - b[i]));
	return d;
}

typedef struct Job {
	DamModel *m;
	const int *tok;
	double lg[2];
	int rc;
} Job;

static void *job_run(void *p)
{
	Job *j = p;
	j->rc = run_tokens(j->m, j->tok, j->lg, NULL, 0);
	return NULL;
}

static void test_parity_weights(void)
{
	if (access(WEIGHTS, R_OK) != 0) {
		skip(9, "the published parity checkpoint is not in ../shared");
		return;
	}
	const char *defs[] = { "weights=" WEIGHTS };
	DamCompileOptions co = { .defines = defs, .ndefines = 1, .opt_level = -1 };
	char *err = NULL;
	DamModel *m = dam_compile_file(SRC "/examples/parity_et.dam", &co, &err);
	ok(m != NULL, "parity_et.dam compiles with the published weights");
	if (!m) {
		diag("%s", err ? err : "");
		dam_string_free(err);
		skip(8, "no model");
		return;
	}
	size_t R = 0, D = 0, N = dam_state_size(m);
	ok(dam_weights_shape(m, "attn.xi", &R, &D) == 1 && R == 8 && D == 16 &&
	   dam_weights_shape(m, "hopf.xi", NULL, NULL) == 0 && dam_input_vocab(m, "tok") == 2,
	   "attn.xi is dynamic 8 x 16, hopf.xi static, tok is index(2)");
	double lg_a[2], lg_b[2], lg_p[2], lg_c[2], W_b[128], W_p[128];
	double *x_b = calloc(N, sizeof *x_b), *x_p = calloc(N, sizeof *x_p);
	int rc = run_tokens(m, tok_b, lg_b, x_b, N) || dam_get_weights(m, "attn.xi", W_b, 128) ||
	         run_tokens(m, tok_a, lg_a, NULL, 0);
	ok(!rc && fabs(lg_a[0] - lg_b[0]) > 1e-3, "tokens A and B give different logits (%g, %g vs %g, %g)",
	   lg_a[0], lg_a[1], lg_b[0], lg_b[1]);
	/* Tokens stay A; the rows are those of B. */
	DamError e = dam_set_weights(m, "attn.xi", W_b, 128);
	rc = e || run_tokens(m, tok_a, lg_p, x_p, N) || dam_get_weights(m, "attn.xi", W_p, 128);
	double dl = max_diff(lg_p, lg_b, 2), dx = max_diff(x_p, x_b, N);
	ok(!rc && dl <= 1e-12 && dx <= 1e-12, "tokens A + rows of B == tokens B: max |d logits| = %.3g, "
	   "max |d x| = %.3g (tol 1e-12)", dl, dx);
	ok(!rc && !memcmp(W_p, W_b, sizeof W_b), "the run used the programmed rows");
	ok(dam_set_weights(m, "attn.xi", W_b, 127) == DAM_E_COUNT &&
	   !strcmp(dam_errmsg(m), "weight block 'attn.xi' is 8 x 16 and expects 128 values, got 127"),
	   "wrong size: DAM_E_COUNT (%s)", dam_errmsg(m));
	int bad_tok[8] = { 0, 1, 2, 0, 0, 0, 0, 0 };
	ok(dam_set_tokens(m, "tok", bad_tok, 8) == DAM_E_VALUE &&
	   !strcmp(dam_errmsg(m), "input 'tok' value 2 at position 2 is not a token index in 0..1"),
	   "token out of range: DAM_E_VALUE (%s)", dam_errmsg(m));

	/* A clone keeps the override; clearing it on the original restores A. */
	DamModel *cl = dam_model_clone(m);
	ok(dam_clear_weights(m, "attn.xi") == DAM_E_OK && !run_tokens(m, tok_a, lg_c, NULL, 0) &&
	   !memcmp(lg_c, lg_a, sizeof lg_a), "dam_clear_weights: back to the tokens-A logits");
	Job j1 = { .m = m, .tok = tok_a }, j2 = { .m = cl, .tok = tok_a };
	pthread_t t1, t2;
	pthread_create(&t1, NULL, job_run, &j1);
	pthread_create(&t2, NULL, job_run, &j2);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	ok(!j1.rc && !j2.rc && !memcmp(j1.lg, lg_a, sizeof lg_a) && !memcmp(j2.lg, lg_b, sizeof lg_b),
	   "two threads: original (A) and clone (A + rows of B) bit-identical to sequential runs");
	dam_model_free(m);
	dam_model_free(cl);
	free(x_b);
	free(x_p);
}

/* A block whose weights are a tensor the model also reads elsewhere (an
 * output of keys): the block's rows programmed through the API replace the
 * block's weights, not keys, which the JIT shares with the block only when
 * nothing else reads it. */
static const char keys_text[] =
	"import \"blocks\"\n"
	"tensor emb[2, 3] = [[0.5, 0.2, 0.1], [0.1, 0.4, 0.3]]\n"
	"tensor b[2] = [0, 0]\n"
	"input tok[2] : index(2)\n"
	"layer v[3] : identity  tau = 0.1  init = 0\n"
	"tensor keys[A, i] = emb[tok[A], i]^2\n"
	"use attn = energy_attention(v, 2, keys, 0.1, 0.01, b)\n"
	"output k[i] = keys[0, i]\n";

static void test_block_of_read_tensor(void)
{
	char *err = NULL;
	DamModel *m = dam_compile_string("keys.dam", keys_text, NULL, &err);
	ok(m != NULL, "a block over a tensor an output reads compiles%s%s", err ? ": " : "", err ? err : "");
	dam_string_free(err);
	if (!m)
		return;
	const int tok[2] = { 1, 0 };
	const double rows[6] = { 9, 9, 9, 9, 9, 9 };
	double k[3] = { 0 }, k2[3] = { 0 };
	DamRunOptions o;
	dam_run_options_default(&o);
	o.t_end = 0.01;
	int rc = dam_set_tokens(m, "tok", tok, 2) || dam_run(m, &o, NULL) || dam_get_output(m, "k", k, 3) ||
	         dam_set_weights(m, "attn.xi", rows, 6) || dam_run(m, &o, NULL) || dam_get_output(m, "k", k2, 3);
	ok(!rc && k[0] == 0.1 * 0.1 && k[1] == 0.4 * 0.4 && memcmp(k, k2, sizeof k) == 0,
	   "programmed attn.xi rows leave keys (read by an output) alone: k = %g %g %g, then %g %g %g", k[0], k[1],
	   k[2], k2[0], k2[1], k2[2]);
	dam_model_free(m);
}

int main(void)
{
	plan(50);
	test_xor();
	test_compile_errors();
	test_run_errors();
	test_static_weights();
	test_diverge();
	test_parity_weights();
	test_block_of_read_tensor();
	return done_testing();
}
