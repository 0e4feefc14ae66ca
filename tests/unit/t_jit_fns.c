/* t_jit_fns.c - every elementwise function and expression kind through the JIT.
 *
 * One identity layer x[8] and one output per construct, read back with the
 * outputs() kernel at random states (including large |x|, where softplus,
 * sigmoid and logcosh must stay finite) and compared with plain C formulas:
 * exp, log, sqrt, abs, relu, step, sign, softplus, sigmoid, tanh, logcosh,
 * integer and real powers, division, max and logsumexp reductions, delta of
 * indices, eq of reals and an index used as a value.  Tolerance: relative
 * error <= 1e-12 (the JIT evaluates the same formulas, so the observed error
 * is at round-off level or 0).
 */
#include <stdlib.h>
#include <string.h>

#include "jit.h"
#include "tap.h"

enum { N = 8 };

typedef enum {
	F_EXP, F_LOG, F_SQRT, F_ABS, F_RELU, F_STEP, F_SIGN, F_SOFTPLUS, F_SIGMOID, F_TANH,
	F_LOGCOSH, F_POW3, F_POWR, F_DIV, F_DELTA, F_EQ, F_IDX, NVEC
} VecOut;

static const char *const vec_names[NVEC] = {
	"exp", "log", "sqrt", "abs", "relu", "step", "sign", "softplus", "sigmoid", "tanh",
	"logcosh", "pow3", "powr", "div", "delta", "eq", "idx"};

typedef struct Fns {
	Arena arena;
	Model m;
	SymCtx *c;
	TensorId x, g;
	IdxId j, k, i, o;
} Fns;

static SymId xo(Fns *F)
{
	SymId a = sym_idx(F->c, F->o);
	return sym_at(F->c, F->x, 1, &a);
}

static SymId fn(Fns *F, SymFn f, SymId a)
{
	return sym_fn(F->c, f, a);
}

static SymId vec_expr(Fns *F, VecOut v)
{
	SymCtx *c = F->c;
	SymId x = xo(F), ax = fn(F, SYMFN_ABS, x);
	SymId zero = sym_const(c, 0);
	switch (v) {
	case F_EXP: return fn(F, SYMFN_EXP, x);
	case F_LOG: return fn(F, SYMFN_LOG, sym_add(c, ax, sym_const(c, 0.25)));
	case F_SQRT: return fn(F, SYMFN_SQRT, ax);
	case F_ABS: return ax;
	case F_RELU: return fn(F, SYMFN_RELU, x);
	case F_STEP: return fn(F, SYMFN_STEP, x);
	case F_SIGN: return fn(F, SYMFN_SIGN, x);
	case F_SOFTPLUS: return fn(F, SYMFN_SOFTPLUS, x);
	case F_SIGMOID: return fn(F, SYMFN_SIGMOID, x);
	case F_TANH: return fn(F, SYMFN_TANH, x);
	case F_LOGCOSH: return fn(F, SYMFN_LOGCOSH, x);
	case F_POW3: return sym_pow(c, x, sym_const(c, 3));
	case F_POWR: return sym_pow(c, ax, sym_const(c, 2.5));
	case F_DIV: return sym_div(c, x, sym_add(c, ax, sym_const(c, 1)));
	case F_DELTA: return sym_delta(c, sym_idx(c, F->o), sym_const(c, 2));
	case F_EQ: {
		SymId first = sym_at(c, F->x, 1, &zero);
		return sym_eq(c, x, first);
	}
	case F_IDX: return sym_mul(c, sym_idx(c, F->o), x);
	case NVEC: break;
	}
	return zero;
}

static void fns_build(Fns *F)
{
	memset(F, 0, sizeof *F);
	arena_init(&F->arena);
	F->m.arena = &F->arena;
	F->m.sym = F->c = sym_new(&F->arena);
	SymCtx *c = F->c;
	int64_t n = N;
	F->x = sym_tensor_new(c, "x", 1, &n);
	F->g = sym_tensor_new(c, "g", 1, &n);
	F->j = sym_index_new(c, "j", N);
	F->k = sym_index_new(c, "k", N);
	F->i = sym_index_new(c, "i", N);
	F->o = sym_index_new(c, "o", N);
	Model *m = &F->m;
	m->ntensors = sym_tensor_count(c);
	m->tensors = arena_alloc(&F->arena, m->ntensors * sizeof *m->tensors);
	m->tensors[F->x] = (MTensor){.kind = MT_STATE, .layer = 0};
	m->tensors[F->g] = (MTensor){.kind = MT_ACT, .layer = 0};
	m->nlayers = 1;
	m->layers = arena_alloc(&F->arena, sizeof *m->layers);
	SymId xj = sym_idx(c, F->j), xi = sym_idx(c, F->i);
	m->layers[0] = (MLayer){.name = "x", .n = N, .tau = 1, .x = F->x, .g = F->g, .j = F->j, .k = F->k,
	                        .act = sym_at(c, F->x, 1, &xj)};
	m->layers[0].rhs = sym_neg(c, sym_at(c, F->x, 1, &xj));

	m->noutputs = NVEC + 2;
	m->outputs = arena_alloc(&F->arena, (size_t)m->noutputs * sizeof *m->outputs);
	for (int v = 0; v < NVEC; v++)
		m->outputs[v] = (MOutput){.name = vec_names[v], .rank = 1, .n = N, .i = F->o,
		                          .expr = vec_expr(F, (VecOut)v)};
	SymId x_i = sym_at(c, F->x, 1, &xi);
	m->outputs[NVEC] = (MOutput){.name = "max", .rank = 0, .n = 1, .expr = sym_reduce(c, SYM_MAX, F->i, x_i)};
	m->outputs[NVEC + 1] = (MOutput){.name = "lse", .rank = 0, .n = 1,
	                                 .expr = sym_reduce(c, SYM_LSE, F->i, sym_mul(c, sym_const(c, 3), x_i))};
	m->energy = sym_const(c, 0);
}

static double c_sign(double x)
{
	return x > 0 ? 1 : x < 0 ? -1 : 0;
}

static double ref_vec(VecOut v, const double *x, int o)
{
	double a = x[o], ax = fabs(a);
	switch (v) {
	case F_EXP: return exp(a);
	case F_LOG: return log(ax + 0.25);
	case F_SQRT: return sqrt(ax);
	case F_ABS: return ax;
	case F_RELU: return a > 0 ? a : 0;
	case F_STEP: return a > 0;
	case F_SIGN: return c_sign(a);
	case F_SOFTPLUS: return fmax(a, 0) + log1p(exp(-ax));
	case F_SIGMOID: return 1 / (1 + exp(-a));
	case F_TANH: return tanh(a);
	case F_LOGCOSH: return ax + log1p(exp(-2 * ax)) - log(2.0);
	case F_POW3: return a * a * a;
	case F_POWR: return pow(ax, 2.5);
	case F_DIV: return a / (ax + 1);
	case F_DELTA: return o == 2;
	case F_EQ: return a == x[0];
	case F_IDX: return o * a;
	case NVEC: break;
	}
	return NAN;
}

static double ref_lse(const double *x)
{
	double m = -INFINITY, s = 0;
	for (int i = 0; i < N; i++)
		m = fmax(m, 3 * x[i]);
	for (int i = 0; i < N; i++)
		s += exp(3 * x[i] - m);
	return m + log(s);
}

static double urand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (double)((*s >> 8) & 0xffffff) / (double)0x1000000;
}

int main(void)
{
	Fns F;
	char err[256] = "";
	plan(NVEC + 4);
	fns_build(&F);
	Jit *j = jit_compile(&F.m, NULL, err, sizeof err);
	if (!ok(j != NULL, "jit_compile(fns)"))
		diag("%s", err);
	const JitKernels *k = j ? jit_kernels(j) : NULL;
	double worst[NVEC + 2] = {0};
	double *ws = calloc(k ? k->ws_size + 1 : 1, sizeof *ws);
	if (j)
		jit_ws_init(j, &F.m, ws);
	unsigned seed = 4242;
	for (int trial = 0; trial < 40 && k; trial++) {
		double x[N], out[NVEC * N + 2];
		double scale = trial % 4 == 3 ? 400 : 3;   /* every 4th state: huge |x| */
		for (int i = 0; i < N; i++)
			x[i] = scale * (2 * urand(&seed) - 1);
		if (trial % 5 == 0)
			x[3] = x[0];                       /* eq must fire */
		if (trial == 1)
			x[4] = 0;                          /* step/sign at 0 */
		k->outputs(ws, x, out);
		for (int v = 0; v < NVEC; v++)
			for (int o = 0; o < N; o++) {
				double want = ref_vec((VecOut)v, x, o), got = out[k->output_off[v] + (size_t)o];
				double e = got == want ? 0 : fabs(got - want) / fmax(1, fabs(want));
				worst[v] = fmax(worst[v], e != e ? INFINITY : e);
			}
		double mx = -INFINITY;
		for (int i = 0; i < N; i++)
			mx = fmax(mx, x[i]);
		worst[NVEC] = fmax(worst[NVEC], fabs(out[k->output_off[NVEC]] - mx));
		double l = ref_lse(x);
		worst[NVEC + 1] = fmax(worst[NVEC + 1], fabs(out[k->output_off[NVEC + 1]] - l) / fmax(1, fabs(l)));
	}
	for (int v = 0; v < NVEC; v++)
		ok(k && worst[v] <= 1e-12, "%s matches C (max rel err %.3g <= 1e-12)", vec_names[v], worst[v]);
	ok(k && worst[NVEC] == 0, "max reduction is exact (err %.3g)", worst[NVEC]);
	ok(k && worst[NVEC + 1] <= 1e-12, "logsumexp matches C, stable at |x| = 1200 (rel err %.3g)",
	   worst[NVEC + 1]);
	ok(k && k->noutput == (size_t)(NVEC * N + 2), "outputs concatenated: %zu values", k ? k->noutput : 0);
	free(ws);
	jit_free(j);
	arena_free(&F.arena);
	return done_testing();
}
