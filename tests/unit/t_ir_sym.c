/* t_ir_sym.c - unit tests of the symbolic expression language (sym.h):
 * hash-consing, canonical forms of the simplifying constructors, the
 * reference evaluator against libm, text and LaTeX printing, substitution,
 * inlining and expansion.  Differentiation and the structured Hessians are
 * tested in t_ir_sym_diff.c.
 */
#include "sym.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>

enum { N = 5 };

static Arena arena;
static SymCtx *c;
static IdxId I, J, K;
static TensorId X, Y, BETA, W;
static double xv[N], yv[N], betav = 2.5, wv[N * N];
static const double *data[8];
static int64_t idxv[16];
static SymEnv env = {data, idxv};

static const char *str(SymId e)
{
	return sym_to_string(c, e, SYM_TEXT, &arena);
}

static const char *tex(SymId e)
{
	return sym_to_string(c, e, SYM_LATEX, &arena);
}

static SymId num(double v) { return sym_const(c, v); }
static SymId ix(IdxId i) { return sym_idx(c, i); }
static SymId x_(IdxId i) { SymId a = ix(i); return sym_at(c, X, 1, &a); }
static SymId y_(IdxId i) { SymId a = ix(i); return sym_at(c, Y, 1, &a); }
static SymId beta(void) { return sym_at(c, BETA, 0, NULL); }

static void setup(void)
{
	arena_init(&arena);
	c = sym_new(&arena);
	I = sym_index_new(c, "i", N);
	J = sym_index_new(c, "j", N);
	K = sym_index_new(c, "k", N);
	int64_t n = N, nn[2] = {N, N};
	X = sym_tensor_new(c, "x", 1, &n);
	Y = sym_tensor_new(c, "y", 1, &n);
	BETA = sym_tensor_new(c, "beta", 0, NULL);
	W = sym_tensor_new(c, "W", 2, nn);
	for (int a = 0; a < N; a++) {
		xv[a] = 0.3 * a - 0.7;
		yv[a] = 1.0 / (a + 1);
		for (int b = 0; b < N; b++)
			wv[a * N + b] = a - 0.5 * b;
	}
	data[X] = xv, data[Y] = yv, data[BETA] = &betav, data[W] = wv;
}

static void test_registry(void)
{
	is_str(sym_index_name(c, J), "j", "index name");
	ok(sym_index_extent(c, K) == N && sym_index_count(c) == 4, "index extent and count");
	ok(sym_tensor_rank(c, W) == 2 && sym_tensor_shape(c, W)[1] == N, "tensor rank and shape");
	is_str(sym_tensor_name(c, BETA), "beta", "tensor name");
	ok(sym_tensor_count(c) == 5, "tensor count");
}

static void test_hashcons(void)
{
	SymId a = sym_add(c, x_(I), y_(I)), b = sym_add(c, y_(I), x_(I));
	ok(a == b, "a+b == b+a (same id %u)", a);
	SymId e1 = sym_fn(c, SYMFN_EXP, sym_mul(c, beta(), x_(J)));
	SymId e2 = sym_fn(c, SYMFN_EXP, sym_mul(c, x_(J), beta()));
	ok(e1 == e2, "same expression built twice gives the same id");
	uint32_t before = sym_count(c);
	sym_fn(c, SYMFN_EXP, sym_mul(c, beta(), x_(J)));
	ok(sym_count(c) == before, "rebuilding creates no node");
	ok(sym_mul(c, x_(I), y_(I)) == sym_mul(c, y_(I), x_(I)), "a*b == b*a");
	ok(sym_const(c, -0.0) == sym_const(c, 0.0), "-0 and 0 are one constant");
	const SymNode *n = sym_node(c, sym_add(c, x_(I), sym_mul(c, y_(J), x_(K))));
	ok(n->nfree == 3 && n->free[0] == I && n->free[1] == J && n->free[2] == K,
	   "free indices are the sorted union");
	SymId s = sym_reduce(c, SYM_SUM, I, sym_mul(c, x_(I), y_(J)));
	ok(sym_has_free(c, s, J) && !sym_has_free(c, s, I), "sum removes its bound index");
	ok(sym_uses_tensor(c, s, X) && !sym_uses_tensor(c, s, W), "sym_uses_tensor");
}

static void check(SymId e, const char *want, const char *what)
{
	is_str(str(e), want, what);
}

static void test_simplify(void)
{
	SymId x = x_(I), y = y_(I);
	check(sym_add(c, num(2), num(3)), "5", "2+3 folds");
	check(sym_add(c, x, num(0)), "x[i]", "x+0 = x");
	check(sym_mul(c, x, num(1)), "x[i]", "x*1 = x");
	check(sym_mul(c, x, num(0)), "0", "x*0 = 0");
	check(sym_add(c, sym_mul(c, num(2), x), sym_mul(c, num(3), x)), "5*x[i]", "like terms");
	check(sym_sub(c, x, x), "0", "x - x = 0");
	check(sym_mul(c, x, x), "x[i]^2", "x*x = x^2");
	check(sym_mul(c, sym_pow(c, x, num(2)), sym_pow(c, x, num(3))), "x[i]^5", "x^2*x^3 = x^5");
	check(sym_div(c, x, x), "1", "x/x = 1");
	check(sym_div(c, x, num(4)), "0.25*x[i]", "x/4 = 0.25*x");
	check(sym_div(c, x, y), "x[i]/y[i]", "a/b prints as a/b");
	check(sym_div(c, num(1), sym_mul(c, x, y)), "1/(x[i]*y[i])", "1/(a*b)");
	check(sym_sub(c, x, y), "x[i] - y[i]", "sub prints with minus");
	check(sym_neg(c, x), "-x[i]", "neg");
	check(sym_sub(c, num(1), x), "1 - x[i]", "1 - x: a positive constant leads a negative sum");
	check(sym_pow(c, x, num(0)), "1", "x^0 = 1");
	check(sym_pow(c, x, num(1)), "x[i]", "x^1 = x");
	check(sym_pow(c, num(2), num(10)), "1024", "2^10 folds");
	check(sym_pow(c, sym_pow(c, x, num(0.5)), num(4)), "x[i]^2", "(x^0.5)^4 = x^2");
	check(sym_pow(c, sym_pow(c, x, num(2)), num(0.5)), "(x[i]^2)^0.5", "(x^2)^0.5 kept");
	check(sym_fn(c, SYMFN_EXP, sym_fn(c, SYMFN_LOG, x)), "x[i]", "exp(log x) = x");
	check(sym_fn(c, SYMFN_LOG, sym_fn(c, SYMFN_EXP, x)), "x[i]", "log(exp x) = x");
	check(sym_fn(c, SYMFN_EXP, num(0)), "1", "exp(0) folds");
	SymId r = sym_fn(c, SYMFN_RELU, x), st = sym_fn(c, SYMFN_STEP, x);
	check(sym_mul(c, r, st), "relu(x[i])", "relu*step = relu");
	check(sym_mul(c, sym_pow(c, r, num(3)), st), "relu(x[i])^3", "relu^3*step = relu^3");
	check(sym_pow(c, st, num(3)), "step(x[i])", "step^3 = step");
	check(sym_delta(c, ix(J), ix(J)), "1", "delta(j,j) = 1");
	check(sym_delta(c, num(2), num(3)), "0", "delta(2,3) = 0");
	check(sym_delta(c, num(2), num(2.0000001)), "1", "delta compares rounded ints");
	ok(sym_delta(c, ix(J), ix(K)) == sym_delta(c, ix(K), ix(J)), "delta is symmetric");
	check(sym_mul(c, num(2), sym_add(c, x, y)), "2*x[i] + 2*y[i]", "const * sum distributes");
	check(sym_sub(c, x, sym_sub(c, y, num(1))), "x[i] - y[i] + 1", "x - (y - 1)");
}

static void test_reduce(void)
{
	SymId xj = x_(J);
	check(sym_reduce(c, SYM_SUM, I, xj), "5*x[j]", "sum of body without i");
	check(sym_reduce(c, SYM_MAX, I, xj), "x[j]", "max of body without i");
	check(sym_reduce(c, SYM_LSE, I, xj), "x[j] + 1.6094379124341003", "lse of body without i");
	check(sym_reduce(c, SYM_SUM, I, sym_add(c, x_(I), y_(I))), "sum(i, x[i]) + sum(i, y[i])",
	      "sum is linear");
	check(sym_reduce(c, SYM_SUM, I, sym_mul(c, xj, x_(I))), "x[j]*sum(i, x[i])",
	      "factors without i move outside");
	SymId d = sym_mul(c, sym_delta(c, ix(I), ix(K)), sym_fn(c, SYMFN_TANH, x_(I)));
	check(sym_reduce(c, SYM_SUM, I, d), "tanh(x[k])", "delta rule");
	check(sym_reduce(c, SYM_SUM, I, sym_delta(c, ix(K), ix(I))), "1", "sum of a delta is 1");
	check(sym_reduce(c, SYM_LSE, I, sym_add(c, xj, x_(I))), "x[j] + logsumexp(i, x[i])",
	      "lse shifts out a constant term");
	check(sym_mean(c, I, x_(I)), "0.2*sum(i, x[i])", "mean = sum/extent");
	SymId wij[2] = {ix(I), ix(J)};
	SymId mv = sym_reduce(c, SYM_SUM, J, sym_mul(c, sym_at(c, W, 2, wij), x_(J)));
	check(mv, "sum(j, W[i, j]*x[j])", "matrix-vector product");
}

static double libm_fn(SymFn f, double v)
{
	switch (f) {
	case SYMFN_EXP: return exp(v);
	case SYMFN_LOG: return log(v);
	case SYMFN_SQRT: return sqrt(v);
	case SYMFN_RELU: return v > 0 ? v : 0;
	case SYMFN_SOFTPLUS: return log(1 + exp(v));
	case SYMFN_SIGMOID: return 1 / (1 + exp(-v));
	case SYMFN_TANH: return tanh(v);
	case SYMFN_LOGCOSH: return log(cosh(v));
	case SYMFN_ABS: return fabs(v);
	case SYMFN_STEP: return v > 0;
	case SYMFN_SIGN: return (v > 0) - (v < 0);
	default: return NAN;
	}
}

static void test_eval_fns(void)
{
	double worst = 0;
	int bad = 0;
	for (int f = 0; f < SYMFN_COUNT; f++) {
		for (int a = 0; a < N; a++) {
			idxv[I] = a;
			double v = xv[a] + (f == SYMFN_LOG || f == SYMFN_SQRT ? 1 : 0);
			SymId arg = f == SYMFN_LOG || f == SYMFN_SQRT ? sym_add(c, x_(I), num(1)) : x_(I);
			double got = sym_eval(c, sym_fn(c, (SymFn)f, arg), &env);
			double err = fabs(got - libm_fn((SymFn)f, v)) / fmax(1, fabs(got));
			worst = fmax(worst, err);
			bad += !(err <= 1e-14);
		}
	}
	ok(bad == 0, "all functions match libm to 1e-14 relative (max err %.3g)", worst);
	is_close(sym_eval(c, sym_fn(c, SYMFN_LOGCOSH, num(800)), &env), 800 - log(2), 1e-12,
	         "logcosh(800) is stable (tol 1e-12)");
	is_close(sym_eval(c, sym_fn(c, SYMFN_SOFTPLUS, num(-800)), &env), 0, 1e-300,
	         "softplus(-800) is stable");
}

static void test_eval_reduce(void)
{
	double s = 0, m = -INFINITY, l = 0;
	for (int a = 0; a < N; a++)
		s += xv[a] * xv[a], m = fmax(m, xv[a]), l += exp(betav * xv[a]);
	SymId sq = sym_mul(c, x_(I), x_(I));
	is_close(sym_eval(c, sym_reduce(c, SYM_SUM, I, sq), &env), s, 1e-14, "sum of squares (tol 1e-14)");
	is_close(sym_eval(c, sym_reduce(c, SYM_MAX, I, x_(I)), &env), m, 0, "max (exact)");
	SymId lse = sym_reduce(c, SYM_LSE, I, sym_mul(c, beta(), x_(I)));
	is_close(sym_eval(c, lse, &env), log(l), 1e-14, "logsumexp (tol 1e-14)");
	SymId big = sym_reduce(c, SYM_LSE, I, sym_mul(c, num(1000), x_(I)));
	is_close(sym_eval(c, big, &env), 1000 * m + log(1 + exp(-300)), 1e-12,
	         "logsumexp is max-shifted (no overflow, tol 1e-12)");
	idxv[J] = 2;
	SymId wij[2] = {ix(J), ix(I)};
	SymId mv = sym_reduce(c, SYM_SUM, I, sym_mul(c, sym_at(c, W, 2, wij), x_(I)));
	double want = 0;
	for (int a = 0; a < N; a++)
		want += wv[2 * N + a] * xv[a];
	is_close(sym_eval(c, mv, &env), want, 1e-14, "W x at row j=2 (tol 1e-14)");
	SymId oob = sym_at(c, X, 1, (SymId[]){sym_add(c, ix(J), num(N))});
	ok(isnan(sym_eval(c, oob, &env)), "out-of-range access is NaN");
	ok(sym_eval(c, sym_delta(c, ix(J), num(2)), &env) == 1, "delta(j, 2) at j = 2");
	ok(sym_eval(c, sym_eq(c, x_(J), num(xv[2])), &env) == 1, "eq compares reals");
	ok(sym_eval(c, sym_eq(c, x_(J), num(xv[2] + 1e-15)), &env) == 0, "eq is exact");
}

static void test_latex(void)
{
	SymId g = sym_fn(c, SYMFN_EXP, sym_sub(c, sym_mul(c, beta(), x_(J)),
	                 sym_reduce(c, SYM_LSE, I, sym_mul(c, beta(), x_(I)))));
	is_str(tex(g), "\\exp\\left(\\beta x_{j} - \\operatorname{logsumexp}_{i} \\left(\\beta x_{i}\\right)\\right)",
	       "LaTeX softmax");
	IdxId mu = sym_index_new(c, "mu", 3);
	SymId w = sym_at(c, W, 2, (SymId[]){ix(mu), ix(I)});
	is_str(tex(w), "W_{\\mu i}", "LaTeX W_{mu i}");
	is_str(tex(sym_div(c, x_(I), sym_fn(c, SYMFN_SQRT, y_(I)))), "\\frac{x_{i}}{\\sqrt{y_{i}}}",
	       "LaTeX fraction and sqrt");
	is_str(tex(sym_reduce(c, SYM_SUM, I, sym_mul(c, sym_delta(c, ix(I), ix(J)), sym_fn(c, SYMFN_RELU, x_(I))))),
	       "\\operatorname{relu}\\left(x_{j}\\right)", "LaTeX relu (after the delta rule)");
	is_str(tex(sym_delta(c, ix(J), ix(K))), "\\delta_{j k}", "LaTeX delta");
	is_str(tex(sym_reduce(c, SYM_SUM, I, sym_pow(c, x_(I), num(2)))), "\\sum_{i} x_{i}^{2}", "LaTeX sum");
}

static void test_rewrite(void)
{
	SymId e = sym_add(c, x_(I), sym_mul(c, y_(J), x_(I)));
	check(sym_subst_idx(c, e, I, ix(K)), "x[k] + x[k]*y[j]", "subst i := k");
	check(sym_subst_idx(c, e, I, ix(J)), "x[j] + x[j]*y[j]", "subst i := j");
	SymId wij = sym_at(c, W, 2, (SymId[]){ix(I), ix(J)});
	SymId s = sym_reduce(c, SYM_SUM, I, sym_mul(c, x_(I), wij));
	check(sym_subst_idx(c, s, J, ix(I)), "sum(i', W[i', i]*x[i'])", "subst avoids capture");
	check(sym_subst_tensor(c, e, X, Y), "y[i] + y[i]*y[j]", "subst tensor x := y");
	/* inline a[p] := W[p, p] + 1 into a[i] * a[j]  (a is y here) */
	IdxId p = sym_index_new(c, "p", N);
	SymId repl = sym_add(c, sym_at(c, W, 2, (SymId[]){ix(p), ix(p)}), num(1));
	check(sym_inline_tensor(c, sym_mul(c, y_(I), y_(J)), Y, &p, repl),
	      "(W[i, i] + 1)*(W[j, j] + 1)", "inline tensor");
	SymId prod = sym_mul(c, sym_add(c, x_(I), num(1)), sym_sub(c, y_(I), num(2)));
	SymId ex = sym_expand(c, prod);
	check(ex, "y[i] + x[i]*y[i] - 2*x[i] - 2", "expand (x+1)*(y-2)");
	idxv[I] = 3;
	is_close(sym_eval(c, ex, &env), sym_eval(c, prod, &env), 1e-14, "expansion keeps the value");
	check(sym_expand(c, sym_pow(c, sym_add(c, x_(I), num(1)), num(2))), "2*x[i] + x[i]^2 + 1",
	      "expand (x+1)^2");
}

static void test_dump(void)
{
	SymId e = sym_mul(c, num(0.5), sym_pow(c, x_(I), num(2)));
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	sym_dump(c, e, f);
	fclose(f);
	ok(buf && strstr(buf, "= const 0.5\n") && strstr(buf, "= tensor x %") &&
	   strstr(buf, "= pow %") && strstr(buf, "    ; free i\n"), "dump lists the nodes");
	diag("dump:\n%s", buf ? buf : "");
	free(buf);
}

int main(void)
{
	setup();
	test_registry();
	test_hashcons();
	test_simplify();
	test_reduce();
	test_eval_fns();
	test_eval_reduce();
	test_latex();
	test_rewrite();
	test_dump();
	arena_free(&arena);
	return done_testing();
}
