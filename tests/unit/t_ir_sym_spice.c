/* t_ir_sym_spice.c - unit tests of SPICE printing (sym_to_spice): for a
 * handful of expressions (the softmax activation, relu, sigmoid, powers, a
 * sum over a 3-element layer, negative coefficients and tensor values,
 * delta, the stable functions, tensors indexed by data) the exact ngspice
 * B-source text, and its value: the deck "B<n> o<n> 0 V=<expr>" is solved
 * by the real ngspice (.op) and each node voltage must agree with sym_eval
 * within 1e-9 relative (skipped when ngspice is not installed).  Also the
 * errors (index out of range, missing value, failing hook) and the symbolic
 * SPICE style of sym_to_string.
 */
#include "sym.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { NC = 40 };

static Arena arena;
static SymCtx *c;
static IdxId I, J, K, A;
static TensorId X, V, W, BETA, TOK;
static double xv[3] = {0.3, -0.5, 1.25}, vv[3] = {0.2, 1.5, -2}, wv[9], betav = 2.5, tokv[2] = {2, 0};
static const double *data[8];

typedef struct Case {
	const char *name;
	SymId e;
	int64_t j, k, a;       /* values of the free indices */
	bool lse_hook;         /* the logsumexp comes from V(h_lse) */
	const char *want;      /* the exact SPICE text */
	const char *spice;     /* what sym_to_spice printed */
	double value;          /* sym_eval */
} Case;

static Case cases[NC];
static int ncases;
static SymId lse_node;

/* ---- building expressions ---------------------------------------------- */

static SymId num(double v) { return sym_const(c, v); }
static SymId ix(IdxId i) { return sym_idx(c, i); }
static SymId at1(TensorId t, SymId i) { return sym_at(c, t, 1, &i); }
static SymId x_(IdxId i) { return at1(X, ix(i)); }
static SymId beta(void) { return sym_at(c, BETA, 0, NULL); }
static SymId w_(IdxId a, IdxId b) { SymId k[2] = {ix(a), ix(b)}; return sym_at(c, W, 2, k); }

static void setup(void)
{
	arena_init(&arena);
	c = sym_new(&arena);
	I = sym_index_new(c, "i", 3);
	J = sym_index_new(c, "j", 3);
	K = sym_index_new(c, "k", 3);
	A = sym_index_new(c, "A", 2);
	int64_t three = 3, two = 2, nn[2] = {3, 3};
	X = sym_tensor_new(c, "x", 1, &three);
	V = sym_tensor_new(c, "v", 1, &three);
	W = sym_tensor_new(c, "w", 2, nn);
	BETA = sym_tensor_new(c, "beta", 0, NULL);
	TOK = sym_tensor_new(c, "tok", 1, &two);
	for (int a = 0; a < 9; a++)
		wv[a] = 0.25 * a - 0.75;
	data[X] = xv, data[V] = vv, data[W] = wv, data[BETA] = &betav, data[TOK] = tokv;
}

/* ---- hooks ------------------------------------------------------------- */

/* Shortest round-trip form, as the printer's own constants. */
static void put_num(char *buf, size_t len, double v)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/* Tensor values as constants. */
static int tensor_hook(void *user, TensorId t, int n, const int64_t *idx, char *buf, size_t len)
{
	(void)user;
	int64_t off = 0;
	for (int r = 0; r < n; r++)
		off = off * sym_tensor_shape(c, t)[r] + idx[r];
	put_num(buf, len, data[t][off]);
	return 0;
}

/* The same, but with no text for v[2]. */
static int failing_hook(void *user, TensorId t, int n, const int64_t *idx, char *buf, size_t len)
{
	if (t == V && idx[0] == 2)
		return -1;
	return tensor_hook(user, t, n, idx, buf, len);
}

static const char *reduction_hook(void *user, SymId e)
{
	(void)user;
	return e == lse_node ? "V(h_lse)" : NULL;
}

static char *spice(SymId e, int64_t j, int64_t k, int64_t a, bool lse_hook, char *err, size_t len)
{
	int64_t idx[8] = {0};
	idx[J] = j, idx[K] = k, idx[A] = a;
	SymSpiceHooks h = {NULL, tensor_hook, lse_hook ? reduction_hook : NULL, data};
	return sym_to_spice(c, e, idx, &h, &arena, err, len);
}

static double eval(SymId e, int64_t j, int64_t k, int64_t a)
{
	int64_t idx[8] = {0};
	idx[J] = j, idx[K] = k, idx[A] = a;
	SymEnv env = {data, idx};
	return sym_eval(c, e, &env);
}

/* ---- the cases --------------------------------------------------------- */

static void add_case(const char *name, SymId e, int64_t j, int64_t k, const char *want)
{
	cases[ncases++] = (Case){name, e, j, k, 0, false, want, NULL, 0};
}

static void build_cases(void)
{
	SymId bx = sym_mul(c, beta(), x_(K));
	lse_node = sym_reduce(c, SYM_LSE, K, bx);
	SymId softmax = sym_fn(c, SYMFN_EXP, sym_sub(c, sym_mul(c, beta(), x_(J)), lse_node));
	add_case("softmax", softmax, 2, 0, "exp(2.5*1.25 - (max(2.5*0.3, max(2.5*(-0.5), 2.5*1.25)) + ln(exp(2.5*0.3 - max(2.5*0.3, max(2.5*(-0.5), 2.5*1.25))) + exp(2.5*(-0.5) - max(2.5*0.3, max(2.5*(-0.5), 2.5*1.25))) + exp(2.5*1.25 - max(2.5*0.3, max(2.5*(-0.5), 2.5*1.25))))))");
	add_case("softmax, logsumexp from a node", softmax, 0, 0, "exp(2.5*0.3 - V(h_lse))");
	cases[ncases - 1].lse_hook = true;
	add_case("relu", sym_fn(c, SYMFN_RELU, x_(J)), 1, 0, "max(-0.5,0)");
	add_case("relu positive", sym_fn(c, SYMFN_RELU, x_(J)), 2, 0, "max(1.25,0)");
	add_case("sigmoid", sym_fn(c, SYMFN_SIGMOID, x_(J)), 1, 0, "(1/(1+exp(-(-0.5))))");
	add_case("x^2", sym_pow(c, x_(J), num(2)), 1, 0, "pow(-0.5,2)");
	add_case("x^3", sym_pow(c, x_(J), num(3)), 1, 0, "pwr(-0.5,3)");
	add_case("x^-1", sym_pow(c, x_(J), num(-1)), 1, 0, "1/(-0.5)");
	add_case("x^-3 * beta", sym_mul(c, beta(), sym_pow(c, x_(J), num(-3))), 1, 0, "2.5/pwr(-0.5,3)");
	add_case("(x - beta)^0.5", sym_pow(c, sym_sub(c, beta(), x_(J)), num(0.5)), 2, 0, "pow(2.5 - 1.25,0.5)");
	SymId wv_ = sym_mul(c, w_(J, I), at1(V, ix(I)));
	add_case("sum over a 3-element layer", sym_reduce(c, SYM_SUM, I, wv_), 1, 0, "(0.2*0 + 1.5*0.25 + (-2)*0.5)");
	add_case("sum with negative terms", sym_reduce(c, SYM_SUM, I, sym_mul(c, num(-2), at1(V, ix(I)))), 0, 0, "-2*(0.2 + 1.5 + (-2))");
	add_case("negative coefficient", sym_sub(c, beta(), sym_mul(c, num(3), x_(J))), 1, 0, "2.5 - 3*(-0.5)");
	add_case("positive coefficient, negative value", sym_mul(c, num(2), x_(J)), 1, 0, "2*(-0.5)");
	add_case("negated negative value", sym_neg(c, x_(J)), 1, 0, "-(-0.5)");
	SymId d = sym_mul(c, sym_delta(c, ix(J), ix(K)), x_(K));
	add_case("delta, equal", d, 1, 1, "(-0.5)*1");
	add_case("delta, different", d, 1, 2, "1.25*0");
	add_case("max", sym_reduce(c, SYM_MAX, I, sym_mul(c, w_(I, J), x_(I))), 2, 0, "max((-0.25)*0.3, max(0.5*(-0.5), 1.25*1.25))");
	add_case("softplus", sym_fn(c, SYMFN_SOFTPLUS, sym_mul(c, num(4), x_(J))), 1, 0, "(max(4*(-0.5),0)+ln(1+exp(-abs(4*(-0.5)))))");
	add_case("logcosh", sym_fn(c, SYMFN_LOGCOSH, x_(J)), 2, 0, "(abs(1.25)+ln(1+exp(-2*abs(1.25)))-0.69314718055994529)");
	add_case("step(0)", sym_fn(c, SYMFN_STEP, sym_sub(c, x_(J), num(0.3))), 0, 0, "(0.3 - 0.3 > 0 ? 1 : 0)");
	add_case("step", sym_fn(c, SYMFN_STEP, x_(J)), 2, 0, "(1.25 > 0 ? 1 : 0)");
	add_case("sign", sym_fn(c, SYMFN_SIGN, x_(J)), 1, 0, "sgn(-0.5)");
	add_case("tanh, sqrt, abs, log", sym_add(c, sym_fn(c, SYMFN_TANH, x_(J)),
	         sym_fn(c, SYMFN_SQRT, sym_fn(c, SYMFN_ABS, sym_fn(c, SYMFN_LOG, beta())))), 1, 0, "sqrt(abs(ln(2.5))) + tanh(-0.5)");
	add_case("eq", sym_eq(c, x_(J), sym_reduce(c, SYM_MAX, I, x_(I))), 2, 0, "(1.25 == max(0.3, max(-0.5, 1.25)) ? 1 : 0)");
	add_case("index as a value", sym_mul(c, ix(J), x_(J)), 2, 0, "2*1.25");
	SymId xtok = sym_mul(c, beta(), at1(X, at1(TOK, ix(A))));
	add_case("x[tok[A]], A = 0", xtok, 0, 0, "2.5*1.25");
	add_case("x[tok[A]], A = 1", xtok, 0, 0, "2.5*0.3");
	cases[ncases - 1].a = 1;
	add_case("division", sym_div(c, x_(J), sym_add(c, beta(), x_(J))), 1, 0, "(-0.5)/(2.5 + (-0.5))");
}

/* ---- ngspice ----------------------------------------------------------- */

static bool have_ngspice(void)
{
	return system("command -v ngspice >/dev/null 2>&1") == 0;
}

/* Solve "B<n> o<n> 0 V=<case n>" for every case with one ngspice -b run; got[n]
 * is NAN where no value was printed.  Returns false when the run failed. */
static bool run_ngspice(double *got)
{
	char path[] = "/tmp/t_ir_sym_spice_XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f)
		return false;
	fprintf(f, "t_ir_sym_spice\nVlse h_lse 0 DC %.17g\n", eval(lse_node, 0, 0, 0));
	for (int n = 0; n < ncases; n++)
		fprintf(f, "B%d o%d 0 V=%s\n", n, n, cases[n].spice ? cases[n].spice : "0");
	fputs(".control\nset numdgt=17\nop\n", f);
	for (int n = 0; n < ncases; n++)
		fprintf(f, "print v(o%d)\n", n);
	fputs(".endc\n.end\n", f);
	fclose(f);
	for (int n = 0; n < ncases; n++)
		got[n] = NAN;
	char cmd[128], line[512];
	snprintf(cmd, sizeof cmd, "ngspice -b %s 2>/dev/null", path);
	fflush(stdout);
	FILE *out = popen(cmd, "r");
	if (!out) {
		remove(path);
		return false;
	}
	while (fgets(line, sizeof line, out)) {
		int n;
		double v;
		if (sscanf(line, "v(o%d) = %lf", &n, &v) == 2 && n >= 0 && n < ncases)
			got[n] = v;
	}
	pclose(out);
	remove(path);
	return true;
}

/* ---- the tests --------------------------------------------------------- */

static void test_cases(void)
{
	bool caret = false;
	for (int n = 0; n < ncases; n++) {
		Case *t = &cases[n];
		char err[200] = "";
		t->spice = spice(t->e, t->j, t->k, t->a, t->lse_hook, err, sizeof err);
		t->value = eval(t->e, t->j, t->k, t->a);
		if (!is_str(t->spice, t->want, t->name) && !t->spice)
			diag("error: %s", err);
		caret |= t->spice && (strchr(t->spice, '^') || strstr(t->spice, "**"));
	}
	ok(!caret, "no ^ and no ** in SPICE output");
}

static void test_ngspice(void)
{
	double got[NC];
	if (!have_ngspice()) {
		skip(ncases, "ngspice is not installed");
		return;
	}
	if (!run_ngspice(got)) {
		for (int n = 0; n < ncases; n++)
			ok(0, "ngspice ran for %s", cases[n].name);
		return;
	}
	double worst = 0;
	for (int n = 0; n < ncases; n++) {
		const Case *t = &cases[n];
		double err = fabs(got[n] - t->value), rel = t->value != 0 ? err / fabs(t->value) : err;
		char what[160];
		snprintf(what, sizeof what, "ngspice agrees with sym_eval: %s", t->name);
		is_close(got[n], t->value, 1e-9 * fabs(t->value), what);
		diag("%s: relative error %.3g", t->name, rel);
		if (rel > worst)
			worst = rel;
	}
	diag("largest relative error ngspice vs sym_eval: %.3g (tolerance 1e-9)", worst);
}

static const char *any_reduction(void *user, SymId e)
{
	(void)e;
	++*(int *)user;
	return "V(r)";
}

static void test_errors(void)
{
	char err[200];
	SymId xj = x_(J);
	int64_t idx[8] = {0};
	idx[J] = 3;
	SymSpiceHooks h = {NULL, tensor_hook, NULL, data};
	ok(!sym_to_spice(c, xj, idx, &h, &arena, err, sizeof err), "free index out of range fails");
	is_str(err, "index j = 3 is outside 0..2", "... with a message");
	ok(!sym_to_spice(c, xj, NULL, &h, &arena, err, sizeof err), "free index without a value fails");
	is_str(err, "free index 'j' has no value", "... with a message");
	is_str(sym_to_spice(c, sym_mul(c, num(2), beta()), NULL, &h, &arena, err, sizeof err), "2*2.5",
	       "no free index: idx may be NULL");
	ok(!spice(at1(X, sym_add(c, ix(J), num(1))), 2, 0, 0, false, err, sizeof err),
	   "tensor index out of range fails");
	is_str(err, "index 1 of 'x' is 3, outside 0..2", "... with a message");
	SymId layer = sym_reduce(c, SYM_SUM, I, sym_mul(c, w_(J, I), at1(V, ix(I))));
	SymSpiceHooks fh = {NULL, failing_hook, NULL, data};
	idx[J] = 1;
	ok(!sym_to_spice(c, layer, idx, &fh, &arena, err, sizeof err), "a failing tensor hook fails");
	is_str(err, "no SPICE text for v[2]", "... with a message");

	int calls = 0;
	SymSpiceHooks r = {&calls, tensor_hook, any_reduction, data};
	idx[J] = 0;
	is_str(sym_to_spice(c, layer, idx, &r, &arena, err, sizeof err), "(0.2*(-0.75) + 1.5*(-0.5) + (-2)*(-0.25))",
	       "the reduction hook is not asked for a reduction with a free index");
	ok(calls == 0, "... and was not called");
	SymId vsum = sym_reduce(c, SYM_SUM, I, at1(V, ix(I)));
	is_str(sym_to_spice(c, sym_mul(c, num(-2), vsum), idx, &r, &arena, err, sizeof err), "-2*V(r)",
	       "the reduction hook replaces a closed reduction");
}

static void test_symbolic(void)
{
	SymId lse = sym_reduce(c, SYM_LSE, K, sym_mul(c, beta(), x_(K)));
	SymId softmax = sym_fn(c, SYMFN_EXP, sym_sub(c, sym_mul(c, beta(), x_(J)), lse));
	is_str(sym_to_string(c, softmax, SYM_SPICE, &arena), "exp(beta*x[j] - logsumexp(k, beta*x[k]))",
	       "SPICE style, symbolic: softmax");
	is_str(sym_to_string(c, sym_pow(c, x_(J), num(3)), SYM_SPICE, &arena), "pwr(x[j],3)",
	       "SPICE style, symbolic: odd power");
	is_str(sym_to_string(c, sym_mul(c, beta(), sym_pow(c, sym_add(c, x_(J), num(1)), num(-2))), SYM_SPICE, &arena),
	       "beta/pow(x[j] + 1,2)", "SPICE style, symbolic: even power in a denominator");
	is_str(sym_to_string(c, sym_fn(c, SYMFN_LOG, sym_fn(c, SYMFN_STEP, x_(J))), SYM_SPICE, &arena),
	       "ln((x[j] > 0 ? 1 : 0))", "SPICE style, symbolic: ln and step");
	is_str(sym_to_string(c, sym_mul(c, sym_delta(c, ix(J), ix(K)), sym_eq(c, x_(J), beta())), SYM_SPICE, &arena),
	       "delta(k, j)*(beta == x[j] ? 1 : 0)", "SPICE style, symbolic: delta and eq");
	/* Shared printer: a lone reciprocal with a negative coefficient. */
	SymId r = sym_neg(c, sym_pow(c, x_(J), num(-2)));
	is_str(sym_to_string(c, r, SYM_TEXT, &arena), "-1/x[j]^2", "text: -1/x^2 keeps its 1");
	is_str(sym_to_string(c, r, SYM_LATEX, &arena), "-\\frac{1}{x_{j}^{2}}", "LaTeX: -1/x^2 keeps its 1");
}

int main(void)
{
	setup();
	build_cases();
	plan(2 * ncases + 1 + 12 + 7);
	test_cases();
	test_ngspice();
	test_errors();
	test_symbolic();
	arena_free(&arena);
	return done_testing();
}
