/* t_jit_et.c - the JIT on an Analog-ET-like model with dynamic weights (paper Eq. 9-11).
 *
 * Built by hand with the sym constructors: visible v[D] (identity, bias a),
 * attention hidden ha[L] (softmax beta, bias b) whose weights are the MT_DYN
 * tensor keys[A,i] = emb[tok[A], i]^2 computed by setup() from the token
 * input tok[L], and Hopfield hidden hh[M] (ReLU, bias c) with the static
 * weights hopf[mu,i]^2.  Checks: setup() computes keys (including clamping
 * of out-of-range tokens), init_state, rhs, energy and outputs agree with a
 * plain C implementation (relative error <= 1e-12), for two token contexts.
 */
#include <stdlib.h>
#include <string.h>

#include "jit.h"
#include "tap.h"

enum { D = 4, L = 3, V = 5, M = 6, NOUT = 2, N = D + L + M };
#define BETA 0.5
#define TAU_V 0.1
#define TAU_H 0.01

typedef struct Et {
	Arena arena;
	Model m;
	SymCtx *c;
	TensorId emb, hopf, a, b, cc, wdec, bdec, tok, keys, xv, gv, xa, ga, xm, gm;
	IdxId jv, kv, ja, ka, jm, km, i, A, mu, kA, kd, o;
	double w_emb[V * D], w_hopf[M * D], w_a[D], w_b[L], w_c[M], w_dec[NOUT * D], w_bdec[NOUT];
} Et;

static double urand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (double)((*s >> 8) & 0xffffff) / (double)0x1000000;
}

static SymId at1(Et *E, TensorId t, SymId a)
{
	return sym_at(E->c, t, 1, &a);
}

static SymId at2(Et *E, TensorId t, SymId a, SymId b)
{
	SymId k[2] = {a, b};
	return sym_at(E->c, t, 2, k);
}

static SymId ix(Et *E, IdxId i)
{
	return sym_idx(E->c, i);
}

static SymId sq(Et *E, SymId a)
{
	return sym_pow(E->c, a, sym_const(E->c, 2));
}

static TensorId tensor(Et *E, const char *name, int rank, int64_t d0, int64_t d1)
{
	int64_t shape[2] = {d0, d1};
	return sym_tensor_new(E->c, name, rank, shape);
}

static void et_data(Et *E, MTensorKind kind, TensorId t, double *data, int n, unsigned *seed, double scale)
{
	for (int k = 0; k < n; k++)
		data[k] = scale * (2 * urand(seed) - 1);
	E->m.tensors[t].kind = kind;
	E->m.tensors[t].data = data;
}

static void et_tensors(Et *E)
{
	E->emb = tensor(E, "emb", 2, V, D);
	E->hopf = tensor(E, "hopf", 2, M, D);
	E->a = tensor(E, "a", 1, D, 0);
	E->b = tensor(E, "b", 1, L, 0);
	E->cc = tensor(E, "c", 1, M, 0);
	E->wdec = tensor(E, "Wdec", 2, NOUT, D);
	E->bdec = tensor(E, "bdec", 1, NOUT, 0);
	E->tok = tensor(E, "tok", 1, L, 0);
	E->keys = tensor(E, "keys", 2, L, D);
	E->xv = tensor(E, "x_v", 1, D, 0);
	E->gv = tensor(E, "g_v", 1, D, 0);
	E->xa = tensor(E, "x_ha", 1, L, 0);
	E->ga = tensor(E, "g_ha", 1, L, 0);
	E->xm = tensor(E, "x_hh", 1, M, 0);
	E->gm = tensor(E, "g_hh", 1, M, 0);
	E->jv = sym_index_new(E->c, "j", D);
	E->kv = sym_index_new(E->c, "k", D);
	E->ja = sym_index_new(E->c, "A_j", L);
	E->ka = sym_index_new(E->c, "A_k", L);
	E->jm = sym_index_new(E->c, "mu_j", M);
	E->km = sym_index_new(E->c, "mu_k", M);
	E->i = sym_index_new(E->c, "i", D);
	E->A = sym_index_new(E->c, "A", L);
	E->mu = sym_index_new(E->c, "mu", M);
	E->kA = sym_index_new(E->c, "kA", L);
	E->kd = sym_index_new(E->c, "kd", D);
	E->o = sym_index_new(E->c, "o", NOUT);

	Model *m = &E->m;
	unsigned seed = 777;
	m->ntensors = sym_tensor_count(E->c);
	m->tensors = arena_alloc(&E->arena, m->ntensors * sizeof *m->tensors);
	et_data(E, MT_CONST, E->emb, E->w_emb, V * D, &seed, 1.0);
	et_data(E, MT_CONST, E->hopf, E->w_hopf, M * D, &seed, 0.7);
	et_data(E, MT_LEARN, E->a, E->w_a, D, &seed, 0.3);
	et_data(E, MT_LEARN, E->b, E->w_b, L, &seed, 0.3);
	et_data(E, MT_LEARN, E->cc, E->w_c, M, &seed, 0.3);
	et_data(E, MT_LEARN, E->wdec, E->w_dec, NOUT * D, &seed, 1.0);
	et_data(E, MT_LEARN, E->bdec, E->w_bdec, NOUT, &seed, 0.1);
	m->tensors[E->tok] = (MTensor){.kind = MT_INPUT, .input = 0};
	m->tensors[E->keys] = (MTensor){.kind = MT_DYN, .idx = {E->kA, E->kd},
	                                .def = sq(E, at2(E, E->emb, at1(E, E->tok, ix(E, E->kA)), ix(E, E->kd)))};
	m->tensors[E->xv] = (MTensor){.kind = MT_STATE, .layer = 0};
	m->tensors[E->gv] = (MTensor){.kind = MT_ACT, .layer = 0};
	m->tensors[E->xa] = (MTensor){.kind = MT_STATE, .layer = 1};
	m->tensors[E->ga] = (MTensor){.kind = MT_ACT, .layer = 1};
	m->tensors[E->xm] = (MTensor){.kind = MT_STATE, .layer = 2};
	m->tensors[E->gm] = (MTensor){.kind = MT_ACT, .layer = 2};
}

static SymId lse_a(Et *E)
{
	return sym_reduce(E->c, SYM_LSE, E->A, sym_mul(E->c, sym_const(E->c, BETA), at1(E, E->xa, ix(E, E->A))));
}

/* sum(red, w[row, red] * g[red]) */
static SymId matvec(Et *E, SymId w_row_red, IdxId red, TensorId g)
{
	return sym_reduce(E->c, SYM_SUM, red, sym_mul(E->c, w_row_red, at1(E, g, ix(E, red))));
}

static MSeg *seg(Et *E, int64_t lo, int64_t hi, SymId v)
{
	MSeg *s = arena_alloc(&E->arena, sizeof *s);
	*s = (MSeg){lo, hi, v};
	return s;
}

static void et_layers(Et *E)
{
	SymCtx *c = E->c;
	Model *m = &E->m;
	SymId jv = ix(E, E->jv), ja = ix(E, E->ja), jm = ix(E, E->jm), i = ix(E, E->i);
	m->nlayers = 3;
	m->layers = arena_alloc(&E->arena, 3 * sizeof *m->layers);
	MLayer *v = &m->layers[0], *ha = &m->layers[1], *hh = &m->layers[2];

	*v = (MLayer){.name = "v", .n = D, .tau = TAU_V, .x = E->xv, .g = E->gv, .j = E->jv, .k = E->kv};
	v->act = at1(E, E->xv, jv);
	v->bias = at1(E, E->a, jv);
	SymId attn = matvec(E, at2(E, E->keys, ix(E, E->A), jv), E->A, E->ga);
	SymId hop = matvec(E, sq(E, at2(E, E->hopf, ix(E, E->mu), jv)), E->mu, E->gm);
	SymId t4[4] = {attn, hop, v->bias, sym_neg(c, at1(E, E->xv, jv))};
	v->rhs = sym_addn(c, 4, t4);

	*ha = (MLayer){.name = "ha", .n = L, .tau = TAU_H, .x = E->xa, .g = E->ga, .j = E->ja, .k = E->ka};
	ha->act = sym_fn(c, SYMFN_EXP, sym_sub(c, sym_mul(c, sym_const(c, BETA), at1(E, E->xa, ja)), lse_a(E)));
	ha->bias = at1(E, E->b, ja);
	SymId t3[3] = {matvec(E, at2(E, E->keys, ja, i), E->i, E->gv), ha->bias, sym_neg(c, at1(E, E->xa, ja))};
	ha->rhs = sym_addn(c, 3, t3);
	ha->init = seg(E, 0, L, ha->bias);
	ha->ninit = 1;

	*hh = (MLayer){.name = "hh", .n = M, .tau = TAU_H, .x = E->xm, .g = E->gm, .j = E->jm, .k = E->km};
	hh->act = sym_fn(c, SYMFN_RELU, at1(E, E->xm, jm));
	hh->bias = at1(E, E->cc, jm);
	SymId h3[3] = {matvec(E, sq(E, at2(E, E->hopf, jm, i)), E->i, E->gv), hh->bias, sym_neg(c, at1(E, E->xm, jm))};
	hh->rhs = sym_addn(c, 3, h3);
	hh->init = seg(E, 0, M, hh->bias);
	hh->ninit = 1;
}

/* sum(r, g[r] * (x[r] - bias[r])) */
static SymId legendre(Et *E, IdxId r, TensorId g, TensorId x, TensorId bias)
{
	SymId k = ix(E, r);
	return sym_reduce(E->c, SYM_SUM, r,
	                  sym_mul(E->c, at1(E, g, k), sym_sub(E->c, at1(E, x, k), at1(E, bias, k))));
}

static void et_energy_outputs(Et *E)
{
	SymCtx *c = E->c;
	Model *m = &E->m;
	SymId i = ix(E, E->i), A = ix(E, E->A), mu = ix(E, E->mu), half = sym_const(c, 0.5);
	SymId Lv = sym_reduce(c, SYM_SUM, E->i, sym_mul(c, half, sq(E, at1(E, E->xv, i))));
	SymId La = sym_div(c, lse_a(E), sym_const(c, BETA));
	SymId Lm = sym_reduce(c, SYM_SUM, E->mu, sym_mul(c, half, sq(E, sym_fn(c, SYMFN_RELU, at1(E, E->xm, mu)))));
	SymId ia = sym_reduce(c, SYM_SUM, E->A, sym_mul(c, at1(E, E->ga, A), matvec(E, at2(E, E->keys, A, i), E->i, E->gv)));
	SymId im = sym_reduce(c, SYM_SUM, E->mu,
	                      sym_mul(c, at1(E, E->gm, mu), matvec(E, sq(E, at2(E, E->hopf, mu, i)), E->i, E->gv)));
	SymId t[8] = {legendre(E, E->i, E->gv, E->xv, E->a), sym_neg(c, Lv),
	              legendre(E, E->A, E->ga, E->xa, E->b), sym_neg(c, La),
	              legendre(E, E->mu, E->gm, E->xm, E->cc), sym_neg(c, Lm),
	              sym_neg(c, ia), sym_neg(c, im)};
	m->energy = sym_addn(c, 8, t);

	SymId o = ix(E, E->o);
	m->noutputs = 1;
	m->outputs = arena_alloc(&E->arena, sizeof *m->outputs);
	m->outputs[0] = (MOutput){.name = "logits", .rank = 1, .n = NOUT, .i = E->o,
	                          .expr = sym_add(c, matvec(E, at2(E, E->wdec, o, i), E->i, E->xv), at1(E, E->bdec, o))};
	m->ninputs = 1;
	m->inputs = arena_alloc(&E->arena, sizeof *m->inputs);
	m->inputs[0] = (MInput){.name = "tok", .n = L, .is_index = true, .vocab = V, .t = E->tok};
}

static void et_build(Et *E)
{
	memset(E, 0, sizeof *E);
	arena_init(&E->arena);
	E->m.arena = &E->arena;
	E->m.sym = E->c = sym_new(&E->arena);
	E->m.path = "et (by hand)";
	et_tensors(E);
	et_layers(E);
	et_energy_outputs(E);
}

/* ---- the C reference ------------------------------------------------------- */

typedef struct Ref { double keys[L][D], dx[N], E, logits[NOUT]; } Ref;

static void ref_keys(const Et *E, const double *tok, Ref *r)
{
	for (int A = 0; A < L; A++) {
		double t = round(tok[A]);
		int row = t < 0 ? 0 : t > V - 1 ? V - 1 : (int)t;
		for (int d = 0; d < D; d++)
			r->keys[A][d] = E->w_emb[row * D + d] * E->w_emb[row * D + d];
	}
}

static double hw(const Et *E, int mu, int i)
{
	return E->w_hopf[mu * D + i] * E->w_hopf[mu * D + i];
}

static void ref_eval(const Et *E, const double *x, Ref *r)
{
	const double *xv = x, *xa = x + D, *xm = x + D + L;
	double ga[L], gm[M], mx = -INFINITY, s = 0;
	for (int A = 0; A < L; A++)
		mx = fmax(mx, BETA * xa[A]);
	for (int A = 0; A < L; A++)
		s += exp(BETA * xa[A] - mx);
	double lse = mx + log(s);
	for (int A = 0; A < L; A++)
		ga[A] = exp(BETA * xa[A] - lse);
	for (int mu = 0; mu < M; mu++)
		gm[mu] = xm[mu] > 0 ? xm[mu] : 0;
	double ev = 0, ea = 0, em = 0, ia = 0, im = 0, lv = 0, lm = 0;
	for (int j = 0; j < D; j++) {
		double at = 0, hp = 0;
		for (int A = 0; A < L; A++)
			at += r->keys[A][j] * ga[A];
		for (int mu = 0; mu < M; mu++)
			hp += hw(E, mu, j) * gm[mu];
		r->dx[j] = (at + hp + E->w_a[j] - xv[j]) / TAU_V;
		ev += xv[j] * (xv[j] - E->w_a[j]);
		lv += 0.5 * xv[j] * xv[j];
	}
	for (int A = 0; A < L; A++) {
		double d = 0;
		for (int i = 0; i < D; i++)
			d += r->keys[A][i] * xv[i];
		r->dx[D + A] = (d + E->w_b[A] - xa[A]) / TAU_H;
		ea += ga[A] * (xa[A] - E->w_b[A]);
		ia += ga[A] * d;
	}
	for (int mu = 0; mu < M; mu++) {
		double d = 0;
		for (int i = 0; i < D; i++)
			d += hw(E, mu, i) * xv[i];
		r->dx[D + L + mu] = (d + E->w_c[mu] - xm[mu]) / TAU_H;
		em += gm[mu] * (xm[mu] - E->w_c[mu]);
		lm += 0.5 * gm[mu] * gm[mu];
		im += gm[mu] * d;
	}
	r->E = ev - lv + ea - lse / BETA + em - lm - ia - im;
	for (int o = 0; o < NOUT; o++) {
		double d = 0;
		for (int i = 0; i < D; i++)
			d += E->w_dec[o * D + i] * xv[i];
		r->logits[o] = d + E->w_bdec[o];
	}
}

static double rel_err(double got, double want)
{
	return fabs(got - want) / fmax(1.0, fabs(want));
}

/* ---- tests ------------------------------------------------------------------ */

static void test_context(Et *E, Jit *j, const double *tok, const char *what)
{
	const JitKernels *k = jit_kernels(j);
	double *ws = calloc(k->ws_size + 1, sizeof *ws);
	jit_ws_init(j, &E->m, ws);
	Ref r;
	memcpy(ws + k->input_off[0], tok, L * sizeof *tok);
	k->setup(ws);
	ref_keys(E, tok, &r);
	int64_t koff = jit_ws_offset(j, E->keys);
	int keys_ok = koff >= 0 && memcmp(ws + koff, r.keys, sizeof r.keys) == 0;
	ok(keys_ok, "%s: setup() computes keys[A,i] = emb[tok[A],i]^2", what);

	double x[N];
	k->init_state(ws, x);
	int init_ok = 1;
	for (int q = 0; q < N; q++) {
		double want = q < D ? 0 : q < D + L ? E->w_b[q - D] : E->w_c[q - D - L];
		init_ok &= x[q] == want;
	}
	ok(init_ok, "%s: init_state (v = 0, ha = b, hh = c)", what);

	double e_rhs = 0, e_en = 0, e_out = 0;
	unsigned seed = 99;
	for (int trial = 0; trial < 30; trial++) {
		double d[N], out[NOUT];
		for (int q = 0; q < N; q++)
			x[q] = 4 * urand(&seed) - 2;
		ref_eval(E, x, &r);
		k->rhs(ws, x, d);
		k->outputs(ws, x, out);
		double en = k->energy(ws, x);
		for (int q = 0; q < N; q++)
			e_rhs = fmax(e_rhs, rel_err(d[q], r.dx[q]));
		for (int o = 0; o < NOUT; o++)
			e_out = fmax(e_out, rel_err(out[o], r.logits[o]));
		e_en = fmax(e_en, rel_err(en, r.E));
	}
	diag("%s: max relative error over 30 states: rhs %.3g, energy %.3g, logits %.3g",
	     what, e_rhs, e_en, e_out);
	ok(e_rhs <= 1e-12, "%s: rhs matches C (rel err %.3g <= 1e-12)", what, e_rhs);
	ok(e_en <= 1e-12, "%s: energy matches C (rel err %.3g <= 1e-12)", what, e_en);
	ok(e_out <= 1e-12, "%s: logits match C (rel err %.3g <= 1e-12)", what, e_out);
	free(ws);
}

int main(void)
{
	Et E;
	char err[256] = "";
	plan(12);
	et_build(&E);
	JitOptions opt = {.opt_level = 3};
	if (getenv("DAM_JIT_DUMP"))
		opt.dump_ir_unopt = stderr;
	Jit *j = jit_compile(&E.m, &opt, err, sizeof err);
	if (!ok(j != NULL, "jit_compile(et)"))
		diag("%s", err);
	if (j) {
		const JitKernels *k = jit_kernels(j);
		ok(k->nstate == N && k->noutput == NOUT && jit_ws_offset(j, E.keys) >= 0,
		   "sizes: nstate %zu, noutput %zu, keys in ws", k->nstate, k->noutput);
		const double tok1[L] = {1, 4, 0};
		const double tok2[L] = {3, 9, -2};   /* out of range: rows 4 and 0 */
		test_context(&E, j, tok1, "tokens 1 4 0");
		test_context(&E, j, tok2, "tokens 3 9 -2");
		jit_free(j);
	}
	arena_free(&E.arena);
	return done_testing();
}
