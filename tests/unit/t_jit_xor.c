/* t_jit_xor.c - the JIT on the XOR DenseAM of paper Sec. 5.1, built by hand.
 *
 * The Model is written out with the sym constructors (no front end):
 * visible v[3] (identity, tau 1), hidden h[4] (softmax beta = 8, tau 0.1),
 * xi = rows {000, 011, 101, 110}, bias_h[mu] = -1/2 sum_i xi[mu,i]^2, input
 * bits[2] clamping v[0:2], v[2](0) = 0.5.  The kernels are compared with a
 * plain C implementation of the same formulas at random states (relative
 * error <= 1e-12), then the fused Euler loop must solve XOR for all four
 * inputs and agree bit for bit with stepping through rhs().
 */
#include <stdlib.h>
#include <string.h>

#include "jit.h"
#include "tap.h"

#define NV 3
#define NH 4
#define BETA 8.0

static const double XI[NH][NV] = {{0, 0, 0}, {0, 1, 1}, {1, 0, 1}, {1, 1, 0}};

typedef struct Xor {
	Arena arena;
	Model m;
	TensorId xi, bits, xv, gv, xh, gh;
	IdxId jv, kv, jh, kh, i, mu, o;
} Xor;

static SymId at1(SymCtx *c, TensorId t, SymId a)
{
	return sym_at(c, t, 1, &a);
}

static SymId at2(SymCtx *c, TensorId t, SymId a, SymId b)
{
	SymId k[2] = {a, b};
	return sym_at(c, t, 2, k);
}

/* bias_h[r] = -1/2 sum_i xi[r,i]^2 */
static SymId xor_bias(Xor *X, IdxId r)
{
	SymCtx *c = X->m.sym;
	SymId sq = sym_pow(c, at2(c, X->xi, sym_idx(c, r), sym_idx(c, X->i)), sym_const(c, 2));
	return sym_mul(c, sym_const(c, -0.5), sym_reduce(c, SYM_SUM, X->i, sq));
}

static SymId xor_lse(Xor *X)
{
	SymCtx *c = X->m.sym;
	return sym_reduce(c, SYM_LSE, X->mu,
	                  sym_mul(c, sym_const(c, BETA), at1(c, X->xh, sym_idx(c, X->mu))));
}

static void xor_tensors(Xor *X)
{
	SymCtx *c = X->m.sym;
	int64_t s2[2] = {NH, NV}, sv = NV, sh = NH, sb = 2;
	X->xi = sym_tensor_new(c, "xi", 2, s2);
	X->bits = sym_tensor_new(c, "bits", 1, &sb);
	X->xv = sym_tensor_new(c, "x_v", 1, &sv);
	X->gv = sym_tensor_new(c, "g_v", 1, &sv);
	X->xh = sym_tensor_new(c, "x_h", 1, &sh);
	X->gh = sym_tensor_new(c, "g_h", 1, &sh);
	X->jv = sym_index_new(c, "j", NV);
	X->kv = sym_index_new(c, "k", NV);
	X->jh = sym_index_new(c, "mu_j", NH);
	X->kh = sym_index_new(c, "mu_k", NH);
	X->i = sym_index_new(c, "i", NV);
	X->mu = sym_index_new(c, "mu", NH);
	X->o = sym_index_new(c, "o", NH);

	Model *m = &X->m;
	m->ntensors = sym_tensor_count(c);
	m->tensors = arena_alloc(&X->arena, m->ntensors * sizeof *m->tensors);
	m->tensors[X->xi].kind = MT_CONST;
	m->tensors[X->xi].data = arena_alloc(&X->arena, sizeof XI);
	memcpy(m->tensors[X->xi].data, XI, sizeof XI);
	m->tensors[X->bits].kind = MT_INPUT;
	m->tensors[X->bits].input = 0;
	m->tensors[X->xv] = (MTensor){.kind = MT_STATE, .layer = 0};
	m->tensors[X->gv] = (MTensor){.kind = MT_ACT, .layer = 0};
	m->tensors[X->xh] = (MTensor){.kind = MT_STATE, .layer = 1};
	m->tensors[X->gh] = (MTensor){.kind = MT_ACT, .layer = 1};
}

static void xor_layers(Xor *X)
{
	SymCtx *c = X->m.sym;
	Model *m = &X->m;
	SymId jv = sym_idx(c, X->jv), jh = sym_idx(c, X->jh), i = sym_idx(c, X->i), mu = sym_idx(c, X->mu);
	m->nlayers = 2;
	m->layers = arena_alloc(&X->arena, 2 * sizeof *m->layers);
	MLayer *v = &m->layers[0], *h = &m->layers[1];

	*v = (MLayer){.name = "v", .n = NV, .tau = 1.0, .x = X->xv, .g = X->gv, .j = X->jv, .k = X->kv};
	v->act = at1(c, X->xv, jv);
	v->L = sym_reduce(c, SYM_SUM, X->i,
	                  sym_mul(c, sym_const(c, 0.5), sym_pow(c, at1(c, X->xv, i), sym_const(c, 2))));
	v->bias = sym_const(c, 0);
	v->rhs = sym_sub(c, sym_reduce(c, SYM_SUM, X->mu, sym_mul(c, at2(c, X->xi, mu, jv), at1(c, X->gh, mu))),
	                 at1(c, X->xv, jv));
	v->clamp = arena_alloc(&X->arena, sizeof *v->clamp);
	v->clamp[0] = (MSeg){0, 2, at1(c, X->bits, jv)};
	v->nclamp = 1;
	v->init = arena_alloc(&X->arena, sizeof *v->init);
	v->init[0] = (MSeg){2, 3, sym_const(c, 0.5)};
	v->ninit = 1;

	*h = (MLayer){.name = "h", .n = NH, .tau = 0.1, .x = X->xh, .g = X->gh, .j = X->jh, .k = X->kh};
	h->act = sym_fn(c, SYMFN_EXP, sym_sub(c, sym_mul(c, sym_const(c, BETA), at1(c, X->xh, jh)), xor_lse(X)));
	h->L = sym_div(c, xor_lse(X), sym_const(c, BETA));
	h->bias = xor_bias(X, X->jh);
	SymId drive = sym_reduce(c, SYM_SUM, X->i, sym_mul(c, at2(c, X->xi, jh, i), at1(c, X->gv, i)));
	h->rhs = sym_sub(c, sym_add(c, drive, h->bias), at1(c, X->xh, jh));
}

/* E = sum_i g_v (x_v - 0) - L_v + sum_mu g_h (x_h - b) - L_h - sum g_h xi g_v */
static void xor_energy_outputs(Xor *X)
{
	SymCtx *c = X->m.sym;
	Model *m = &X->m;
	SymId i = sym_idx(c, X->i), mu = sym_idx(c, X->mu);
	SymId ev = sym_sub(c, sym_reduce(c, SYM_SUM, X->i, sym_mul(c, at1(c, X->gv, i), at1(c, X->xv, i))),
	                   m->layers[0].L);
	SymId eh = sym_sub(c, sym_reduce(c, SYM_SUM, X->mu,
	                                 sym_mul(c, at1(c, X->gh, mu), sym_sub(c, at1(c, X->xh, mu), xor_bias(X, X->mu)))),
	                   m->layers[1].L);
	SymId inner = sym_reduce(c, SYM_SUM, X->i, sym_mul(c, at2(c, X->xi, mu, i), at1(c, X->gv, i)));
	SymId ei = sym_reduce(c, SYM_SUM, X->mu, sym_mul(c, at1(c, X->gh, mu), inner));
	m->energy = sym_sub(c, sym_add(c, ev, eh), ei);

	m->noutputs = 2;
	m->outputs = arena_alloc(&X->arena, 2 * sizeof *m->outputs);
	m->outputs[0] = (MOutput){.name = "y", .rank = 0, .n = 1, .expr = at1(c, X->xv, sym_const(c, 2))};
	m->outputs[1] = (MOutput){.name = "hid", .rank = 1, .n = NH, .i = X->o,
	                          .expr = at1(c, X->gh, sym_idx(c, X->o))};
	m->ninputs = 1;
	m->inputs = arena_alloc(&X->arena, sizeof *m->inputs);
	m->inputs[0] = (MInput){.name = "bits", .n = 2, .t = X->bits};
}

static void xor_build(Xor *X)
{
	memset(X, 0, sizeof *X);
	arena_init(&X->arena);
	X->m.arena = &X->arena;
	X->m.sym = sym_new(&X->arena);
	X->m.path = "xor (by hand)";
	xor_tensors(X);
	xor_layers(X);
	xor_energy_outputs(X);
}

/* ---- the C reference ------------------------------------------------------- */

typedef struct Ref { double gv[NV], gh[NH], dx[NV + NH], E; } Ref;

static double ref_lse(const double *xh)
{
	double m = -INFINITY, s = 0;
	for (int a = 0; a < NH; a++)
		m = fmax(m, BETA * xh[a]);
	for (int a = 0; a < NH; a++)
		s += exp(BETA * xh[a] - m);
	return m + log(s);
}

static void ref_eval(const double *x, Ref *r)
{
	const double *xv = x, *xh = x + NV;
	double lse = ref_lse(xh), bias[NH];
	for (int j = 0; j < NV; j++)
		r->gv[j] = xv[j];
	for (int a = 0; a < NH; a++) {
		r->gh[a] = exp(BETA * xh[a] - lse);
		bias[a] = 0;
		for (int j = 0; j < NV; j++)
			bias[a] += XI[a][j] * XI[a][j];
		bias[a] *= -0.5;
	}
	for (int j = 0; j < NV; j++) {
		double s = 0;
		for (int a = 0; a < NH; a++)
			s += XI[a][j] * r->gh[a];
		r->dx[j] = j < 2 ? 0 : (s - xv[j]) / 1.0;
	}
	for (int a = 0; a < NH; a++) {
		double s = 0;
		for (int j = 0; j < NV; j++)
			s += XI[a][j] * r->gv[j];
		r->dx[NV + a] = (s + bias[a] - xh[a]) / 0.1;
	}
	double ev = 0, lv = 0, eh = 0, ei = 0;
	for (int j = 0; j < NV; j++) {
		ev += r->gv[j] * xv[j];
		lv += 0.5 * xv[j] * xv[j];
	}
	for (int a = 0; a < NH; a++) {
		eh += r->gh[a] * (xh[a] - bias[a]);
		for (int j = 0; j < NV; j++)
			ei += r->gh[a] * XI[a][j] * r->gv[j];
	}
	r->E = (ev - lv) + (eh - lse / BETA) - ei;
}

static double rel_err(double got, double want)
{
	return fabs(got - want) / fmax(1.0, fabs(want));
}

static double urand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (double)((*s >> 8) & 0xffffff) / (double)0x1000000;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_kernels_vs_c(const JitKernels *k, double *ws)
{
	double e_rhs = 0, e_en = 0, e_act = 0, e_out = 0;
	unsigned seed = 12345;
	for (int trial = 0; trial < 50; trial++) {
		double x[NV + NH], d[NV + NH], g[NV + NH], out[1 + NH];
		Ref r;
		ws[k->input_off[0]] = urand(&seed) < 0.5 ? 0 : 1;
		ws[k->input_off[0] + 1] = urand(&seed) < 0.5 ? 0 : 1;
		k->setup(ws);
		for (int i = 0; i < NV + NH; i++)
			x[i] = 4 * urand(&seed) - 2;
		ref_eval(x, &r);
		k->rhs(ws, x, d);
		k->acts(ws, x, g);
		k->outputs(ws, x, out);
		double en = k->energy(ws, x);
		for (int i = 0; i < NV + NH; i++)
			e_rhs = fmax(e_rhs, rel_err(d[i], r.dx[i]));
		for (int i = 0; i < NV; i++)
			e_act = fmax(e_act, rel_err(g[i], r.gv[i]));
		for (int a = 0; a < NH; a++) {
			e_act = fmax(e_act, rel_err(g[NV + a], r.gh[a]));
			e_out = fmax(e_out, rel_err(out[1 + a], r.gh[a]));
		}
		e_out = fmax(e_out, rel_err(out[0], x[2]));
		e_en = fmax(e_en, rel_err(en, r.E));
	}
	diag("max relative error over 50 states: rhs %.3g, energy %.3g, acts %.3g, outputs %.3g",
	     e_rhs, e_en, e_act, e_out);
	ok(e_rhs <= 1e-12, "rhs matches C (rel err %.3g <= 1e-12)", e_rhs);
	ok(e_en <= 1e-12, "energy matches C (rel err %.3g <= 1e-12)", e_en);
	ok(e_act <= 1e-12, "acts match C (rel err %.3g <= 1e-12)", e_act);
	ok(e_out <= 1e-12, "outputs match C (rel err %.3g <= 1e-12)", e_out);
}

static void test_init(const JitKernels *k, double *ws)
{
	double x[NV + NH];
	memset(x, 0xff, sizeof x);
	ws[k->input_off[0]] = 1;
	ws[k->input_off[0] + 1] = 0;
	k->setup(ws);
	k->init_state(ws, x);
	const double want[NV + NH] = {1, 0, 0.5, 0, 0, 0, 0};
	ok(memcmp(x, want, sizeof x) == 0, "init_state: v = (1, 0, 0.5), h = 0");
}

static void test_xor_euler(const JitKernels *k, double *ws)
{
	const double dt = 1e-3;
	const int64_t nsteps = 5000;
	double worst = 0;
	int identical = 1;
	for (int in = 0; in < 4; in++) {
		double x[NV + NH], x2[NV + NH], d[NV + NH];
		int a = in >> 1, b = in & 1;
		ws[k->input_off[0]] = a;
		ws[k->input_off[0] + 1] = b;
		k->setup(ws);
		k->init_state(ws, x);
		memcpy(x2, x, sizeof x);
		k->euler(ws, x, dt, nsteps);
		for (int64_t s = 0; s < nsteps; s++) {
			k->rhs(ws, x2, d);
			for (int i = 0; i < NV + NH; i++)
				x2[i] += dt * d[i];
		}
		double err = fabs(x[2] - (double)(a ^ b));
		diag("XOR(%d,%d): v3(T=5) = %.6f, |v3 - xor| = %.3g", a, b, x[2], err);
		worst = fmax(worst, err);
		identical &= memcmp(x, x2, sizeof x) == 0;
	}
	ok(worst <= 0.05, "fused Euler solves XOR for all inputs (max |v3 - xor| %.3g <= 0.05)", worst);
	ok(identical, "fused Euler equals stepping with rhs(), bit for bit");
}

int main(void)
{
	Xor X;
	char err[256] = "";
	plan(9);
	xor_build(&X);
	JitOptions opt = {.opt_level = 3};
	if (getenv("DAM_JIT_DUMP"))
		opt.dump_ir_unopt = stderr;
	Jit *j = jit_compile(&X.m, &opt, err, sizeof err);
	if (!ok(j != NULL, "jit_compile(xor)"))
		diag("%s", err);
	if (!j) {
		arena_free(&X.arena);
		return done_testing();
	}
	const JitKernels *k = jit_kernels(j);
	ok(k->nstate == NV + NH && k->nact == NV + NH && k->noutput == 1 + NH,
	   "sizes: nstate %zu, nact %zu, noutput %zu", k->nstate, k->nact, k->noutput);
	double *ws = calloc(k->ws_size + 1, sizeof *ws);
	jit_ws_init(j, &X.m, ws);
	test_kernels_vs_c(k, ws);
	test_init(k, ws);
	test_xor_euler(k, ws);
	free(ws);
	jit_free(j);
	arena_free(&X.arena);
	return done_testing();
}
