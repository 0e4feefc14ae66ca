/* sym_print.c - printing of symbolic expressions as readable math or LaTeX,
 * and the node-by-node DAG dump.
 *
 * Output is deterministic and uses minimal parentheses, driven by four
 * precedence levels (sum < negation < product < power < atom).  The
 * canonical forms are undone for reading: a product with factors b^-n is
 * printed as a fraction (a/b, \frac{a}{b}), a term with a negative
 * coefficient in a sum as " - ", and in a sum the terms with positive
 * coefficients come first, the constant last.  Constants use the shortest
 * of %.15g/%.16g/%.17g that reads back exactly ("0.5", "-1", "0.1").
 */
#include "sym.h"
#include "sym_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { PREC_ADD = 1, PREC_NEG, PREC_MUL, PREC_POW, PREC_ATOM };

typedef struct SymBuf {
	char *s;
	size_t n, cap;
} SymBuf;

typedef struct SymPr {
	const SymCtx *c;
	SymStyle st;
	SymBuf b;
} SymPr;

static void sym_put(SymPr *p, const char *s)
{
	size_t n = strlen(s);
	if (p->b.n + n + 1 > p->b.cap) {
		p->b.cap = (p->b.n + n + 1) * 2;
		p->b.s = dam_xrealloc(p->b.s, p->b.cap);
	}
	memcpy(p->b.s + p->b.n, s, n + 1);
	p->b.n += n;
}

static void sym_putf(SymPr *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sym_putf(SymPr *p, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	sym_put(p, tmp);
}

static bool sym_latex(const SymPr *p)
{
	return p->st == SYM_LATEX;
}

/* ---- leaves ------------------------------------------------------------ */

static void sym_put_num(SymPr *p, double v)
{
	if (isnan(v)) {
		sym_put(p, "nan");
		return;
	}
	if (isinf(v)) {
		sym_put(p, v < 0 ? "-inf" : (sym_latex(p) ? "\\infty" : "inf"));
		return;
	}
	char tmp[40];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	sym_put(p, tmp);
}

static const char *const sym_greek[] = {
	"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota",
	"kappa", "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon",
	"phi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi",
	"Sigma", "Upsilon", "Phi", "Psi", "Omega",
};

/* A user name: verbatim in text; \mu, x, \mathrm{name} in LaTeX. */
static void sym_put_name(SymPr *p, const char *name)
{
	if (!sym_latex(p) || !name[0]) {
		sym_put(p, name);
		return;
	}
	for (size_t i = 0; i < sizeof sym_greek / sizeof *sym_greek; i++) {
		if (strcmp(name, sym_greek[i]) == 0) {
			sym_putf(p, "\\%s", name);
			return;
		}
	}
	if (!name[1]) {
		sym_put(p, name);
		return;
	}
	sym_put(p, "\\mathrm{");
	for (const char *s = name; *s; s++) {
		char ch[3] = {*s, 0, 0};
		sym_put(p, *s == '_' ? "\\_" : ch);
	}
	sym_put(p, "}");
}

/* ---- precedence -------------------------------------------------------- */

/* Is e a factor x^-n (printed in a denominator)? */
static bool sym_is_recip(const SymCtx *c, SymId e)
{
	const SymNode *n = sym_node(c, e);
	double y;
	return n->kind == SYM_POW && sym_is_const(c, n->kids[1], &y) && y < 0;
}

static double sym_mul_coef(const SymCtx *c, const SymNode *n)
{
	double k = 1;
	for (int i = 0; i < n->nkids; i++)
		sym_is_const(c, n->kids[i], &k);
	return k;
}

static int sym_prec(const SymCtx *c, SymId e)
{
	const SymNode *n = sym_node(c, e);
	switch ((SymKind)n->kind) {
	case SYM_CONST: return n->val < 0 ? PREC_NEG : PREC_ATOM;
	case SYM_ADD: return PREC_ADD;
	case SYM_MUL: return sym_mul_coef(c, n) < 0 ? PREC_NEG : PREC_MUL;
	case SYM_DIV: return PREC_MUL;
	case SYM_POW: return sym_is_recip(c, e) ? PREC_MUL : PREC_POW;
	default: return PREC_ATOM;
	}
}

static void sym_pr(SymPr *p, SymId e);
static void sym_pr_scaled(SymPr *p, double k, int n, const SymId *f);

static void sym_open(SymPr *p)
{
	sym_put(p, sym_latex(p) ? "\\left(" : "(");
}

static void sym_close(SymPr *p)
{
	sym_put(p, sym_latex(p) ? "\\right)" : ")");
}

static void sym_pr_at(SymPr *p, SymId e, int minprec)
{
	bool paren = sym_prec(p->c, e) < minprec;
	if (paren)
		sym_open(p);
	sym_pr(p, e);
	if (paren)
		sym_close(p);
}

/* ---- sums and products ------------------------------------------------- */

/* One term of a sum with its sign already printed: |coef| * rest. */
static void sym_pr_term(SymPr *p, SymId t, bool first)
{
	double k = 1;
	const SymNode *n = sym_node(p->c, t);
	if (n->kind == SYM_CONST)
		k = n->val;
	else if (n->kind == SYM_MUL)
		k = sym_mul_coef(p->c, n);
	if (!first)
		sym_put(p, k < 0 ? " - " : " + ");
	else if (k < 0)
		sym_put(p, "-");
	if (n->kind == SYM_CONST)
		sym_put_num(p, fabs(k));
	else if (n->kind == SYM_MUL)
		sym_pr_scaled(p, fabs(k), n->nkids, n->kids);
	else
		sym_pr_at(p, t, PREC_MUL);
}

static bool sym_term_negative(const SymCtx *c, SymId t)
{
	const SymNode *n = sym_node(c, t);
	if (n->kind == SYM_CONST)
		return n->val < 0;
	return n->kind == SYM_MUL && sym_mul_coef(c, n) < 0;
}

/* Terms of a sum: positive ones, negative ones, the constant - but a
 * positive constant leads when every other term is negative ("1 - x"). */
static void sym_pr_add(SymPr *p, const SymNode *n)
{
	bool first = true, anypos = false;
	for (int i = 0; i < n->nkids; i++)
		anypos |= !sym_is_const(p->c, n->kids[i], NULL) && !sym_term_negative(p->c, n->kids[i]);
	for (int pass = 0; pass < 4; pass++) {
		for (int i = 0; i < n->nkids; i++) {
			SymId t = n->kids[i];
			bool isc = sym_is_const(p->c, t, NULL), neg = sym_term_negative(p->c, t);
			int want = isc ? (!anypos && !neg ? 0 : 3) : neg ? 2 : 1;
			if (want != pass)
				continue;
			sym_pr_term(p, t, first);
			first = false;
		}
	}
}

/* Print order of factors: scalars (rank-0 tensors, then names), indexed
 * tensors by name, then everything else; ties by id.  Pure presentation. */
static int sym_factor_class(const SymCtx *c, SymId e, const char **name)
{
	const SymNode *n = sym_node(c, e);
	if (n->kind == SYM_POW)
		n = sym_node(c, n->kids[0]);
	*name = "";
	if (n->kind == SYM_TENSOR)
		*name = sym_tensor_name(c, n->aux);
	if (n->kind == SYM_TENSOR && n->nkids == 0)
		return 0;
	if (n->kind == SYM_TENSOR || n->kind == SYM_IDX)
		return 1;
	return 2;
}

static int sym_cmp_factor_print(const SymCtx *c, SymId x, SymId y)
{
	const char *nx, *ny;
	int cx = sym_factor_class(c, x, &nx), cy = sym_factor_class(c, y, &ny);
	if (cx != cy)
		return cx - cy;
	int s = strcmp(nx, ny);
	if (s)
		return s;
	return (x > y) - (x < y);
}

static void sym_sort_factors(const SymCtx *c, SymId *f, int n)
{
	for (int i = 1; i < n; i++) {
		SymId x = f[i];
		int k = i;
		for (; k > 0 && sym_cmp_factor_print(c, f[k - 1], x) > 0; k--)
			f[k] = f[k - 1];
		f[k] = x;
	}
}

/* Factors f (constants skipped) joined by "*"; den: print x^-n as x^n. */
static int sym_pr_factors(SymPr *p, int n, const SymId *f0, bool den, bool started)
{
	int count = 0;
	SymId f[n > 0 ? n : 1];
	memcpy(f, f0, (size_t)n * sizeof *f);
	sym_sort_factors(p->c, f, n);
	for (int i = 0; i < n; i++) {
		if (sym_is_const(p->c, f[i], NULL) || sym_is_recip(p->c, f[i]) != den)
			continue;
		if (started || count)
			sym_put(p, sym_latex(p) ? " " : "*");
		if (den) {
			const SymNode *x = sym_node(p->c, f[i]);
			double y;
			sym_is_const(p->c, x->kids[1], &y);
			sym_pr_at(p, x->kids[0], y == -1 ? PREC_MUL + (sym_latex(p) ? 0 : 1) : PREC_ATOM);
			if (y != -1) {
				sym_put(p, sym_latex(p) ? "^{" : "^");
				sym_put_num(p, -y);
				sym_put(p, sym_latex(p) ? "}" : "");
			}
		} else
			sym_pr_at(p, f[i], PREC_MUL + (den ? 1 : 0));
		count++;
	}
	return count;
}

static int sym_count_den(const SymCtx *c, int n, const SymId *f)
{
	int m = 0;
	for (int i = 0; i < n; i++)
		m += sym_is_recip(c, f[i]);
	return m;
}

/* k * factors, k >= 0 already stripped of its sign. */
static void sym_pr_scaled(SymPr *p, double k, int n, const SymId *f)
{
	int nden = sym_count_den(p->c, n, f);
	bool latex = sym_latex(p);
	if (latex && nden)
		sym_put(p, "\\frac{");
	bool lead = k != 1 || n - nden == 0;
	if (lead)
		sym_put_num(p, k);
	sym_pr_factors(p, n, f, false, lead);
	if (!nden)
		return;
	if (latex) {
		sym_put(p, "}{");
		sym_pr_factors(p, n, f, true, false);
		sym_put(p, "}");
		return;
	}
	sym_put(p, "/");
	if (nden > 1)
		sym_open(p);
	sym_pr_factors(p, n, f, true, false);
	if (nden > 1)
		sym_close(p);
}

static void sym_pr_mul(SymPr *p, SymId e, const SymNode *n)
{
	if (n->kind == SYM_POW) {          /* x^-n alone: 1/x^n */
		sym_pr_scaled(p, 1, 1, &e);
		return;
	}
	double k = sym_mul_coef(p->c, n);
	if (k < 0)
		sym_put(p, "-");
	sym_pr_scaled(p, fabs(k), n->nkids, n->kids);
}

/* ---- other nodes ------------------------------------------------------- */

static void sym_pr_pow(SymPr *p, const SymNode *n)
{
	sym_pr_at(p, n->kids[0], PREC_ATOM);
	if (sym_latex(p)) {
		sym_put(p, "^{");
		sym_pr(p, n->kids[1]);
		sym_put(p, "}");
		return;
	}
	sym_put(p, "^");
	double y;
	if (sym_is_const(p->c, n->kids[1], &y) && y >= 0)
		sym_put_num(p, y);
	else
		sym_pr_at(p, n->kids[1], PREC_ATOM);
}

static const char *sym_fn_latex(SymFn f)
{
	switch (f) {
	case SYMFN_EXP: return "\\exp";
	case SYMFN_LOG: return "\\log";
	case SYMFN_TANH: return "\\tanh";
	default: return NULL;
	}
}

static void sym_pr_fn(SymPr *p, const SymNode *n)
{
	SymFn f = (SymFn)n->fn;
	if (!sym_latex(p)) {
		sym_putf(p, "%s(", sym_fn_names[f]);
		sym_pr(p, n->kids[0]);
		sym_put(p, ")");
		return;
	}
	if (f == SYMFN_SQRT || f == SYMFN_ABS) {
		sym_put(p, f == SYMFN_SQRT ? "\\sqrt{" : "\\left|");
		sym_pr(p, n->kids[0]);
		sym_put(p, f == SYMFN_SQRT ? "}" : "\\right|");
		return;
	}
	const char *name = sym_fn_latex(f);
	if (name)
		sym_put(p, name);
	else
		sym_putf(p, "\\operatorname{%s}", sym_fn_names[f]);
	sym_open(p);
	sym_pr(p, n->kids[0]);
	sym_close(p);
}

static void sym_pr_reduce(SymPr *p, const SymNode *n)
{
	const char *iname = sym_index_name(p->c, n->aux);
	if (!sym_latex(p)) {
		sym_putf(p, "%s(", sym_kind_names[n->kind]);
		sym_put(p, iname);
		sym_put(p, ", ");
		sym_pr(p, n->kids[0]);
		sym_put(p, ")");
		return;
	}
	static const char *const op[] = {"\\sum", "\\operatorname{logsumexp}", "\\max"};
	sym_put(p, op[n->kind - SYM_SUM]);
	sym_put(p, "_{");
	sym_put_name(p, iname);
	sym_put(p, "} ");
	if (n->kind == SYM_SUM) {
		sym_pr_at(p, n->kids[0], PREC_MUL);
		return;
	}
	sym_open(p);
	sym_pr(p, n->kids[0]);
	sym_close(p);
}

/* Index arguments: "a, b" in text, "a b" in a LaTeX subscript. */
static void sym_pr_args(SymPr *p, int n, const SymId *k)
{
	for (int i = 0; i < n; i++) {
		if (i)
			sym_put(p, sym_latex(p) ? " " : ", ");
		sym_pr(p, k[i]);
	}
}

static void sym_pr_tensor(SymPr *p, const SymNode *n)
{
	sym_put_name(p, sym_tensor_name(p->c, n->aux));
	if (!n->nkids)
		return;
	sym_put(p, sym_latex(p) ? "_{" : "[");
	sym_pr_args(p, n->nkids, n->kids);
	sym_put(p, sym_latex(p) ? "}" : "]");
}

static void sym_pr_cmp(SymPr *p, const SymNode *n)
{
	if (!sym_latex(p)) {
		sym_putf(p, "%s(", sym_kind_names[n->kind]);
		sym_pr_args(p, 2, n->kids);
		sym_put(p, ")");
	} else if (n->kind == SYM_DELTA) {
		sym_put(p, "\\delta_{");
		sym_pr_args(p, 2, n->kids);
		sym_put(p, "}");
	} else {
		sym_put(p, "\\left[");
		sym_pr(p, n->kids[0]);
		sym_put(p, " = ");
		sym_pr(p, n->kids[1]);
		sym_put(p, "\\right]");
	}
}

static void sym_pr(SymPr *p, SymId e)
{
	const SymNode *n = sym_node(p->c, e);
	switch ((SymKind)n->kind) {
	case SYM_CONST: sym_put_num(p, n->val); break;
	case SYM_IDX: sym_put_name(p, sym_index_name(p->c, n->aux)); break;
	case SYM_TENSOR: sym_pr_tensor(p, n); break;
	case SYM_ADD: sym_pr_add(p, n); break;
	case SYM_MUL: sym_pr_mul(p, e, n); break;
	case SYM_DIV:
		sym_pr_at(p, n->kids[0], PREC_MUL);
		sym_put(p, "/");
		sym_pr_at(p, n->kids[1], PREC_POW);
		break;
	case SYM_POW:
		if (sym_is_recip(p->c, e))
			sym_pr_mul(p, e, n);
		else
			sym_pr_pow(p, n);
		break;
	case SYM_FN: sym_pr_fn(p, n); break;
	case SYM_SUM:
	case SYM_LSE:
	case SYM_MAX: sym_pr_reduce(p, n); break;
	case SYM_DELTA:
	case SYM_EQ: sym_pr_cmp(p, n); break;
	case SYM_NKINDS: break;
	}
}

/* ---- entry points ------------------------------------------------------ */

static char *sym_render(const SymCtx *c, SymId e, SymStyle style)
{
	SymPr p = {c, style, {0}};
	sym_put(&p, "");
	sym_pr(&p, e);
	return p.b.s;
}

void sym_print(const SymCtx *c, SymId e, SymStyle style, FILE *out)
{
	char *s = sym_render(c, e, style);
	fputs(s, out);
	dam_free(s);
}

char *sym_to_string(const SymCtx *c, SymId e, SymStyle style, Arena *a)
{
	char *s = sym_render(c, e, style);
	char *r = arena_strdup(a, s);
	dam_free(s);
	return r;
}

static void sym_dump_node(const SymCtx *c, SymId e, FILE *out)
{
	const SymNode *n = sym_node(c, e);
	fprintf(out, "%%%u = %s", e, sym_kind_names[n->kind]);
	if (n->kind == SYM_CONST)
		fprintf(out, " %.17g", n->val);
	else if (n->kind == SYM_IDX || n->kind == SYM_SUM || n->kind == SYM_LSE || n->kind == SYM_MAX)
		fprintf(out, " %s", sym_index_name(c, n->aux));
	else if (n->kind == SYM_TENSOR)
		fprintf(out, " %s", sym_tensor_name(c, n->aux));
	else if (n->kind == SYM_FN)
		fprintf(out, " %s", sym_fn_names[n->fn]);
	for (int i = 0; i < n->nkids; i++)
		fprintf(out, " %%%u", n->kids[i]);
	if (n->nfree) {
		fputs("    ; free", out);
		for (int i = 0; i < n->nfree; i++)
			fprintf(out, " %s", sym_index_name(c, n->free[i]));
	}
	fputc('\n', out);
}

void sym_dump(const SymCtx *c, SymId e, FILE *out)
{
	uint32_t n = sym_count(c);
	uint8_t *live = dam_xrealloc(NULL, n);
	memset(live, 0, n);
	live[e] = 1;
	for (SymId x = e; x > 0; x--) {       /* kids have smaller ids */
		if (!live[x])
			continue;
		const SymNode *nd = sym_node(c, x);
		for (int i = 0; i < nd->nkids; i++)
			live[nd->kids[i]] = 1;
	}
	for (SymId x = 1; x <= e; x++)
		if (live[x])
			sym_dump_node(c, x, out);
	dam_free(live);
}
