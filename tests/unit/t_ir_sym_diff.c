/* t_ir_sym_diff.c - tests of exact differentiation (sym_diff) and of the
 * diagonal-plus-low-rank Hessian form (sym_structure) on the stdlib
 * Lagrangians: identity, relu, softmax(beta), sigmoid, tanh, layernorm and
 * repu(n).  For each: the derived activation is compared as text (where the
 * canonical form is known) and against a central finite difference of L at
 * 20 seeded random states; the Hessian d g[j]/d x[k] is compared against a
 * central finite difference of g, both evaluated directly and through its
 * structured form delta(j,k) diag[j] + sum_r u_r[j] v_r[k].  Last, the DAG
 * size of the softmax Hessian must not depend on the layer size.
 */
#include "sym.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 5, NSTATES = 20 };

typedef struct Lab {
	Arena arena;
	SymCtx *c;
	IdxId i, j, k, l;
	TensorId x, beta, gamma, eps;
} Lab;

static double xv[N], betav = 1.7, gammav = 0.8, epsv = 0.05;
static const double *data[8];
static int64_t idxv[16];
static SymEnv env = {data, idxv};

static void lab_init(Lab *b, int64_t n)
{
	arena_init(&b->arena);
	b->c = sym_new(&b->arena);
	b->i = sym_index_new(b->c, "i", n);
	b->j = sym_index_new(b->c, "j", n);
	b->k = sym_index_new(b->c, "k", n);
	b->l = sym_index_new(b->c, "l", n);
	b->x = sym_tensor_new(b->c, "x", 1, &n);
	b->beta = sym_tensor_new(b->c, "beta", 0, NULL);
	b->gamma = sym_tensor_new(b->c, "gamma", 0, NULL);
	b->eps = sym_tensor_new(b->c, "eps", 0, NULL);
	data[b->x] = xv, data[b->beta] = &betav, data[b->gamma] = &gammav, data[b->eps] = &epsv;
}

static SymId xi(Lab *b, IdxId i)
{
	SymId a = sym_idx(b->c, i);
	return sym_at(b->c, b->x, 1, &a);
}

static SymId scalar(Lab *b, TensorId t)
{
	return sym_at(b->c, t, 0, NULL);
}

static SymId num(Lab *b, double v)
{
	return sym_const(b->c, v);
}

/* sum(i, f(x[i])) for an elementwise f given as a function */
static SymId sum_fn(Lab *b, SymFn f)
{
	return sym_reduce(b->c, SYM_SUM, b->i, sym_fn(b->c, f, xi(b, b->i)));
}

static SymId l_identity(Lab *b)
{
	SymCtx *c = b->c;
	return sym_reduce(c, SYM_SUM, b->i, sym_mul(c, num(b, 0.5), sym_pow(c, xi(b, b->i), num(b, 2))));
}

static SymId l_relu(Lab *b)
{
	SymCtx *c = b->c;
	SymId r = sym_fn(c, SYMFN_RELU, xi(b, b->i));
	return sym_reduce(c, SYM_SUM, b->i, sym_mul(c, num(b, 0.5), sym_pow(c, r, num(b, 2))));
}

static SymId l_softmax(Lab *b)
{
	SymCtx *c = b->c;
	SymId lse = sym_reduce(c, SYM_LSE, b->i, sym_mul(c, scalar(b, b->beta), xi(b, b->i)));
	return sym_div(c, lse, scalar(b, b->beta));
}

static SymId l_sigmoid(Lab *b) { return sum_fn(b, SYMFN_SOFTPLUS); }
static SymId l_tanh(Lab *b) { return sum_fn(b, SYMFN_LOGCOSH); }

/* gamma * n * sqrt(mean(i, (x[i] - mean(l, x[l]))^2) + eps) */
static SymId l_layernorm(Lab *b)
{
	SymCtx *c = b->c;
	SymId m = sym_mean(c, b->l, xi(b, b->l));
	SymId var = sym_mean(c, b->i, sym_pow(c, sym_sub(c, xi(b, b->i), m), num(b, 2)));
	SymId s = sym_fn(c, SYMFN_SQRT, sym_add(c, var, scalar(b, b->eps)));
	double n = (double)sym_index_extent(c, b->i);
	return sym_muln(c, 3, (SymId[]){scalar(b, b->gamma), num(b, n), s});
}

/* sum(i, relu(x[i])^(p+1) / (p+1)) */
static SymId l_repu(Lab *b, double p)
{
	SymCtx *c = b->c;
	SymId r = sym_pow(c, sym_fn(c, SYMFN_RELU, xi(b, b->i)), num(b, p + 1));
	return sym_reduce(c, SYM_SUM, b->i, sym_div(c, r, num(b, p + 1)));
}
static SymId l_repu2(Lab *b) { return l_repu(b, 2); }
static SymId l_repu3(Lab *b) { return l_repu(b, 3); }

typedef struct Case {
	const char *name;
	SymId (*build)(Lab *);
	const char *act;       /* expected activation text, NULL: numeric only */
	int maxterms;          /* low-rank terms allowed in the Hessian */
} Case;

static const Case cases[] = {
	{"identity", l_identity, "x[j]", 0},
	{"relu", l_relu, "relu(x[j])", 0},
	{"softmax", l_softmax, "exp(beta*x[j] - logsumexp(i, beta*x[i]))", 1},
	{"sigmoid", l_sigmoid, "sigmoid(x[j])", 0},
	{"tanh", l_tanh, "tanh(x[j])", 0},
	{"layernorm", l_layernorm, NULL, 3},
	{"repu(2)", l_repu2, "relu(x[j])^2", 0},
	{"repu(3)", l_repu3, "relu(x[j])^3", 0},
};

static uint64_t rng = 12345;

static double uniform(void)
{
	rng = rng * 6364136223846793005u + 1442695040888963407u;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static double eval_at(Lab *b, SymId e, int j, int k)
{
	idxv[b->j] = j, idxv[b->k] = k;
	return sym_eval(b->c, e, &env);
}

/* central difference of e (free index j) w.r.t. x[k] */
static double fd(Lab *b, SymId e, int j, int k, double h)
{
	double x0 = xv[k];
	xv[k] = x0 + h;
	double up = eval_at(b, e, j, 0);
	xv[k] = x0 - h;
	double dn = eval_at(b, e, j, 0);
	xv[k] = x0;
	return (up - dn) / (2 * h);
}

static double rel_err(double got, double want)
{
	return fabs(got - want) / fmax(1, fabs(want));
}

static double eval_struct(Lab *b, const SymStruct *s, int j, int k)
{
	double v = j == k ? eval_at(b, s->diag, j, k) : 0;
	for (int r = 0; r < s->nterms; r++)
		v += eval_at(b, s->u[r], j, k) * eval_at(b, s->v[r], j, k);
	return v;
}

static void check_case(const Case *cs)
{
	Lab b;
	lab_init(&b, N);
	SymCtx *c = b.c;
	SymId L = cs->build(&b);
	SymId g = sym_diff(c, L, b.x, b.j);
	SymId H = sym_diff(c, g, b.x, b.k);
	const char *gs = sym_to_string(c, g, SYM_TEXT, &b.arena);
	diag("%s: g[j] = %s", cs->name, gs);
	if (cs->act)
		is_str(gs, cs->act, "activation text");
	SymStruct st = {0};
	bool good = sym_structure(c, H, b.j, b.k, &st);
	ok(good && st.nterms <= cs->maxterms, "%s: Hessian is structured with %d low-rank terms (<= %d)",
	   cs->name, st.nterms, cs->maxterms);
	if (good) {
		diag("  diag = %s", sym_to_string(c, st.diag, SYM_TEXT, &b.arena));
		for (int r = 0; r < st.nterms; r++)
			diag("  u%d = %s ; v%d = %s", r, sym_to_string(c, st.u[r], SYM_TEXT, &b.arena), r,
			     sym_to_string(c, st.v[r], SYM_TEXT, &b.arena));
	}
	double eg = 0, eh = 0, es = 0;
	for (int s = 0; s < NSTATES; s++) {
		for (int a = 0; a < N; a++)
			xv[a] = 4 * uniform() - 2;
		for (int j = 0; j < N; j++) {
			eg = fmax(eg, rel_err(eval_at(&b, g, j, 0), fd(&b, L, 0, j, 1e-5)));
			for (int k = 0; k < N; k++) {
				double want = fd(&b, g, j, k, 1e-5);
				eh = fmax(eh, rel_err(eval_at(&b, H, j, k), want));
				es = good ? fmax(es, rel_err(eval_struct(&b, &st, j, k), want)) : INFINITY;
			}
		}
	}
	ok(eg <= 1e-7, "%s: activation vs finite difference of L (max err %.3g, tol 1e-7)", cs->name, eg);
	ok(eh <= 1e-6, "%s: Hessian vs finite difference of g (max err %.3g, tol 1e-6)", cs->name, eh);
	ok(es <= 1e-6, "%s: structured Hessian vs finite difference (max err %.3g, tol 1e-6)", cs->name, es);
	arena_free(&b.arena);
}

/* Expected canonical forms of some Hessians. */
static void check_forms(void)
{
	Lab b;
	lab_init(&b, N);
	SymCtx *c = b.c;
	SymId g = sym_diff(c, l_softmax(&b), b.x, b.j);
	SymStruct st;
	ok(sym_structure(c, sym_diff(c, g, b.x, b.k), b.j, b.k, &st) && st.nterms == 1,
	   "softmax Hessian: one low-rank term");
	SymId gk = sym_subst_idx(c, g, b.j, sym_idx(c, b.k));
	ok(st.diag == sym_mul(c, scalar(&b, b.beta), g), "softmax diag = beta*g[j]");
	ok(st.nterms == 1 && st.u[0] == sym_neg(c, sym_mul(c, scalar(&b, b.beta), g)) && st.v[0] == gk,
	   "softmax u = -beta*g[j], v = g[k]");
	SymId gi = sym_diff(c, l_identity(&b), b.x, b.j);
	ok(sym_structure(c, sym_diff(c, gi, b.x, b.k), b.j, b.k, &st) && st.nterms == 0 &&
	   sym_is_const(c, st.diag, NULL), "identity Hessian: diag 1, no terms");
	is_str(sym_to_string(c, st.diag, SYM_TEXT, &b.arena), "1", "identity diag text");
	SymId gr = sym_diff(c, l_relu(&b), b.x, b.j);
	ok(sym_structure(c, sym_diff(c, gr, b.x, b.k), b.j, b.k, &st) && st.nterms == 0, "relu: no terms");
	is_str(sym_to_string(c, st.diag, SYM_TEXT, &b.arena), "step(x[j])", "relu diag = step(x[j])");
	SymId gs = sym_diff(c, l_sigmoid(&b), b.x, b.j);
	ok(sym_structure(c, sym_diff(c, gs, b.x, b.k), b.j, b.k, &st) && st.nterms == 0, "sigmoid: no terms");
	is_str(sym_to_string(c, st.diag, SYM_TEXT, &b.arena), "sigmoid(x[j])*(1 - sigmoid(x[j]))",
	       "sigmoid diag = s*(1-s)");
	/* a dense matrix has no structure */
	int64_t nn[2] = {N, N};
	TensorId w = sym_tensor_new(c, "W", 2, nn);
	SymId wjk = sym_at(c, w, 2, (SymId[]){sym_idx(c, b.j), sym_idx(c, b.k)});
	ok(!sym_structure(c, wjk, b.j, b.k, &st), "W[j, k] is not diagonal plus low rank");
	arena_free(&b.arena);
}

/* max (subgradient through eq) and a general power a^b, checked numerically */
static void check_max_pow(void)
{
	Lab b;
	lab_init(&b, N);
	SymCtx *c = b.c;
	SymId mx = sym_reduce(c, SYM_MAX, b.i, xi(&b, b.i));
	SymId gm = sym_diff(c, mx, b.x, b.j);
	is_str(sym_to_string(c, gm, SYM_TEXT, &b.arena), "eq(max(i, x[i]), x[j])", "d max / dx[j] (kids of eq in id order)");
	SymId base = sym_add(c, num(&b, 2), sym_pow(c, xi(&b, b.i), num(&b, 2)));
	SymId L = sym_reduce(c, SYM_SUM, b.i, sym_pow(c, base, sym_fn(c, SYMFN_SIGMOID, xi(&b, b.i))));
	SymId g = sym_diff(c, L, b.x, b.j);
	double em = 0, ep = 0;
	for (int s = 0; s < NSTATES; s++) {
		for (int a = 0; a < N; a++)
			xv[a] = 4 * uniform() - 2;
		for (int j = 0; j < N; j++) {
			em = fmax(em, rel_err(eval_at(&b, gm, j, 0), fd(&b, mx, 0, j, 1e-5)));
			ep = fmax(ep, rel_err(eval_at(&b, g, j, 0), fd(&b, L, 0, j, 1e-5)));
		}
	}
	ok(em <= 1e-7, "max: derivative vs finite difference (max err %.3g, tol 1e-7)", em);
	ok(ep <= 1e-7, "a^b: derivative vs finite difference (max err %.3g, tol 1e-7)", ep);
	arena_free(&b.arena);
}

static uint32_t softmax_hessian_size(int64_t n)
{
	Lab b;
	lab_init(&b, n);
	uint32_t before = sym_count(b.c);
	SymId g = sym_diff(b.c, l_softmax(&b), b.x, b.j);
	SymStruct st;
	sym_structure(b.c, sym_diff(b.c, g, b.x, b.k), b.j, b.k, &st);
	uint32_t grew = sym_count(b.c) - before;
	arena_free(&b.arena);
	return grew;
}

/* Rank-2 (and rank-0) differentiation, sym_diff_at: weight matrices W[M, N]
 * in the forms the models use, against central differences of the same
 * expression in every entry W[p, q]:
 *   bilinear   sum(i, sum(j, W[i,j] x[i] y[j]))          (exact: x[p] y[q], no sum)
 *   hopfield   -sum(mu, relu(sum(i, W[mu,i]^2 y[i]))^2 / 2)   (squared weights)
 *   attention  -logsumexp(mu, beta sum(i, W[mu,i] y[i])) / beta
 * and d/d beta (rank 0) of the attention energy. */
enum { RM = 3, RN = 4 };

static void check_rank2(void)
{
	Arena arena;
	arena_init(&arena);
	SymCtx *c = sym_new(&arena);
	int64_t shp[2] = { RM, RN }, m = RM, n = RN;
	IdxId i = sym_index_new(c, "i", RM), j = sym_index_new(c, "j", RN), mu = sym_index_new(c, "mu", RM);
	IdxId p = sym_index_new(c, "p", RM), q = sym_index_new(c, "q", RN), jj = sym_index_new(c, "jj", RN);
	TensorId W = sym_tensor_new(c, "W", 2, shp), x = sym_tensor_new(c, "x", 1, &m);
	TensorId y = sym_tensor_new(c, "y", 1, &n), beta = sym_tensor_new(c, "beta", 0, NULL);
	static double Wv[RM * RN], xv2[RM], yv[RN], bv = 1.3;
	for (int k = 0; k < RM * RN; k++)
		Wv[k] = uniform() * 2 - 1;
	for (int k = 0; k < RM; k++)
		xv2[k] = uniform() * 2 - 1;
	for (int k = 0; k < RN; k++)
		yv[k] = uniform() + 0.1;   /* positive: the relu of the hopfield form is active */
	const double *d2[8] = { 0 };
	d2[W] = Wv, d2[x] = xv2, d2[y] = yv, d2[beta] = &bv;
	int64_t iv[16] = { 0 };
	SymEnv e2 = { d2, iv };
	SymId I = sym_idx(c, i), J = sym_idx(c, j), MU = sym_idx(c, mu), JJ = sym_idx(c, jj);
	SymId Wij = sym_at(c, W, 2, (SymId[]){ I, J }), xi_ = sym_at(c, x, 1, &I), yj = sym_at(c, y, 1, &J);
	SymId bilinear = sym_reduce(c, SYM_SUM, i, sym_reduce(c, SYM_SUM, j, sym_muln(c, 3, (SymId[]){ Wij, xi_, yj })));
	SymId Wmu = sym_at(c, W, 2, (SymId[]){ MU, JJ }), yjj = sym_at(c, y, 1, &JJ);
	SymId h = sym_reduce(c, SYM_SUM, jj, sym_mul(c, sym_pow(c, Wmu, sym_const(c, 2)), yjj));
	SymId hopfield = sym_mul(c, sym_const(c, -0.5),
	                         sym_reduce(c, SYM_SUM, mu, sym_pow(c, sym_fn(c, SYMFN_RELU, h), sym_const(c, 2))));
	SymId B = sym_at(c, beta, 0, NULL);
	SymId s = sym_reduce(c, SYM_SUM, jj, sym_mul(c, Wmu, yjj));
	SymId attention = sym_div(c, sym_mul(c, sym_const(c, -1), sym_reduce(c, SYM_LSE, mu, sym_mul(c, B, s))), B);
	const struct { const char *name; SymId e; } ex[] = {
		{ "bilinear", bilinear }, { "hopfield", hopfield }, { "attention", attention },
	};
	IdxId k2[2] = { p, q };
	SymId gb = sym_diff_at(c, bilinear, W, k2);
	const char *gbs = sym_to_string(c, gb, SYM_TEXT, &arena);
	ok(!strstr(gbs, "sum"), "d bilinear / d W[p,q] has no sum left: %s", gbs);
	for (size_t t = 0; t < sizeof ex / sizeof *ex; t++) {
		SymId g = sym_diff_at(c, ex[t].e, W, k2);
		double worst = 0;
		for (int a = 0; a < RM; a++)
			for (int b2 = 0; b2 < RN; b2++) {
				iv[p] = a, iv[q] = b2;
				double got = sym_eval(c, g, &e2), w0 = Wv[a * RN + b2], hh = 1e-6;
				Wv[a * RN + b2] = w0 + hh;
				double up = sym_eval(c, ex[t].e, &e2);
				Wv[a * RN + b2] = w0 - hh;
				double dn = sym_eval(c, ex[t].e, &e2);
				Wv[a * RN + b2] = w0;
				worst = fmax(worst, rel_err(got, (up - dn) / (2 * hh)));
			}
		ok(worst < 1e-7, "d %s / d W[p,q] matches central differences at all %d entries (worst %.2g)",
		   ex[t].name, RM * RN, worst);
	}
	SymId gbeta = sym_diff_at(c, attention, beta, NULL);
	double got = sym_eval(c, gbeta, &e2), b0 = bv;
	bv = b0 + 1e-6;
	double up = sym_eval(c, attention, &e2);
	bv = b0 - 1e-6;
	double dn = sym_eval(c, attention, &e2);
	bv = b0;
	ok(rel_err(got, (up - dn) / 2e-6) < 1e-7, "d attention / d beta (rank 0) matches a central difference "
	   "(%.6g vs %.6g)", got, (up - dn) / 2e-6);
	arena_free(&arena);
}

int main(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		check_case(&cases[i]);
	check_forms();
	check_max_pow();
	check_rank2();
	uint32_t s4 = softmax_hessian_size(4), s4000 = softmax_hessian_size(4000);
	ok(s4 == s4000, "softmax Hessian DAG size does not depend on the extent (%u vs %u nodes)", s4, s4000);
	return done_testing();
}
