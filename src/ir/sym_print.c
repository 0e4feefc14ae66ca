/* sym_print.c - printing of symbolic expressions in three styles (readable
 * math, LaTeX, ngspice B-source expressions), and the node-by-node DAG dump.
 *
 * One printer serves every style.  What differs between the styles is data:
 * one SymStyleDef per SymStyle in sym_styles[] holds the tokens (parentheses,
 * product separator, subscripts, superscripts), the templates of functions,
 * reductions and comparisons, and the few structural choices (fractions as
 * \frac, exponents grouped by braces, TeX names, powers as calls), so the
 * printing code never asks which style it is printing (cproc tokens.h, QBE
 * ops.h).  Output is deterministic and uses minimal parentheses, driven by
 * four precedence levels (sum < negation < product < power < atom).  The
 * canonical forms are undone for reading: a product with factors b^-n is
 * printed as a fraction (a/b, \frac{a}{b}), a term with a negative
 * coefficient in a sum as " - ", and in a sum the terms with positive
 * coefficients come first, the constant last.  Constants use the shortest
 * of %.15g/%.16g/%.17g that reads back exactly ("0.5", "-1", "0.1").
 *
 * sym_to_spice prints *concretely*, for ngspice B-sources: free index
 * variables have values, tensor accesses become what the caller's hook
 * prints for them, reductions are expanded over their extent (or replaced by
 * the caller's text), DELTA folds to 0 or 1 and an index variable prints its
 * value.  sym_print in the SPICE style prints symbolically (names, indices,
 * reductions as in text, SPICE functions) and is only for debugging.
 */
#include "sym.h"
#include "sym_impl.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { PREC_ADD = 1, PREC_NEG, PREC_MUL, PREC_POW, PREC_ATOM };

/* ---- the styles ---------------------------------------------------------- */

/* Templates: "#1".."#9" print argument n as it is (the template delimits
 * it), "@1".."@9" print it as a factor of a product (parenthesized when it
 * is a sum), "#0" prints the bound index of a reduction as a name. */
typedef struct SymStyleDef {
	const char *open, *close;          /* grouping parentheses */
	const char *mul;                   /* between the factors of a product */
	const char *sub_open, *sub_close;  /* around tensor indices */
	const char *sep;                   /* between tensor indices */
	const char *sup_open, *sup_close;  /* around an exponent */
	const char *inf;                   /* +infinity */
	const char *const *fn;             /* per SymFn, template of one argument */
	const char *red[3];                /* SUM, LSE, MAX: #0 index, #1 body */
	const char *delta, *eq;            /* templates of two arguments */
	const char *frac[3];               /* a fraction: open, middle, close; NULL: a/b */
	const char *pow_call, *pwr_call;   /* powers as calls (|x|^y, odd x^n); NULL: x^y */
	bool sup_grouped;                  /* the exponent needs no parentheses */
	bool tex_names;                    /* \mu, x, \mathrm{name} */
} SymStyleDef;

static const char *const sym_fn_text[SYMFN_COUNT] = {
#define X(n, s) [SYMFN_##n] = s "(#1)",
	SYM_FNS(X)
#undef X
};

static const char *const sym_fn_latex[SYMFN_COUNT] = {
	[SYMFN_EXP] = "\\exp\\left(#1\\right)",
	[SYMFN_LOG] = "\\log\\left(#1\\right)",
	[SYMFN_SQRT] = "\\sqrt{#1}",
	[SYMFN_RELU] = "\\operatorname{relu}\\left(#1\\right)",
	[SYMFN_SOFTPLUS] = "\\operatorname{softplus}\\left(#1\\right)",
	[SYMFN_SIGMOID] = "\\operatorname{sigmoid}\\left(#1\\right)",
	[SYMFN_TANH] = "\\tanh\\left(#1\\right)",
	[SYMFN_LOGCOSH] = "\\operatorname{logcosh}\\left(#1\\right)",
	[SYMFN_ABS] = "\\left|#1\\right|",
	[SYMFN_STEP] = "\\operatorname{step}\\left(#1\\right)",
	[SYMFN_SIGN] = "\\operatorname{sign}\\left(#1\\right)",
};

/* ngspice 39: ln is the natural log, u(0) = 0.5 (our step(0) is 0, hence the
 * comparison), sgn(0) = 0; softplus and logcosh in their stable forms. */
static const char *const sym_fn_spice[SYMFN_COUNT] = {
	[SYMFN_EXP] = "exp(#1)",
	[SYMFN_LOG] = "ln(#1)",
	[SYMFN_SQRT] = "sqrt(#1)",
	[SYMFN_RELU] = "max(#1,0)",
	[SYMFN_SOFTPLUS] = "(max(#1,0)+ln(1+exp(-abs(#1))))",
	[SYMFN_SIGMOID] = "(1/(1+exp(-(#1))))",
	[SYMFN_TANH] = "tanh(#1)",
	[SYMFN_LOGCOSH] = "(abs(#1)+ln(1+exp(-2*abs(#1)))-0.69314718055994529)",
	[SYMFN_ABS] = "abs(#1)",
	[SYMFN_STEP] = "(#1 > 0 ? 1 : 0)",
	[SYMFN_SIGN] = "sgn(#1)",
};

static const SymStyleDef sym_styles[] = {
	[SYM_TEXT] = {
		.open = "(", .close = ")", .mul = "*", .sub_open = "[", .sub_close = "]",
		.sep = ", ", .sup_open = "^", .sup_close = "", .inf = "inf", .fn = sym_fn_text,
		.red = {"sum(#0, #1)", "logsumexp(#0, #1)", "max(#0, #1)"},
		.delta = "delta(#1, #2)", .eq = "eq(#1, #2)",
	},
	[SYM_LATEX] = {
		.open = "\\left(", .close = "\\right)", .mul = " ", .sub_open = "_{", .sub_close = "}",
		.sep = " ", .sup_open = "^{", .sup_close = "}", .inf = "\\infty", .fn = sym_fn_latex,
		.red = {"\\sum_{#0} @1", "\\operatorname{logsumexp}_{#0} \\left(#1\\right)",
		        "\\max_{#0} \\left(#1\\right)"},
		.delta = "\\delta_{#1 #2}", .eq = "\\left[#1 = #2\\right]",
		.frac = {"\\frac{", "}{", "}"}, .sup_grouped = true, .tex_names = true,
	},
	[SYM_SPICE] = {
		.open = "(", .close = ")", .mul = "*", .sub_open = "[", .sub_close = "]",
		.sep = ", ", .inf = "inf", .fn = sym_fn_spice,
		.red = {"sum(#0, #1)", "logsumexp(#0, #1)", "max(#0, #1)"},
		.delta = "delta(#1, #2)", .eq = "(#1 == #2 ? 1 : 0)",
		.pow_call = "pow(", .pwr_call = "pwr(",
	},
};

/* ---- the output buffer ---------------------------------------------------- */

typedef struct SymBuf {
	char *s;
	size_t n, cap;
} SymBuf;

typedef struct SymPr {
	const SymCtx *c;
	const SymStyleDef *st;
	SymBuf b;
	/* concrete printing (sym_to_spice); idx is NULL when printing symbolically */
	int64_t *idx;
	const SymSpiceHooks *h;
	char *err;
	size_t errlen;
	bool failed;
} SymPr;

static void sym_putn(SymPr *p, const char *s, size_t n)
{
	if (p->b.n + n + 1 > p->b.cap) {
		p->b.cap = (p->b.n + n + 1) * 2;
		p->b.s = dam_xrealloc(p->b.s, p->b.cap);
	}
	memcpy(p->b.s + p->b.n, s, n);
	p->b.n += n;
	p->b.s[p->b.n] = 0;
}

static void sym_put(SymPr *p, const char *s)
{
	sym_putn(p, s, strlen(s));
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

/* The first failure of a concrete printing wins; printing then stops. */
static void sym_fail(SymPr *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sym_fail(SymPr *p, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = true;
	if (!p->err || !p->errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
}

/* ---- leaves ------------------------------------------------------------ */

static void sym_put_num(SymPr *p, double v)
{
	if (!isfinite(v) && p->idx) {
		sym_fail(p, "the constant %g has no SPICE form", v);
		return;
	}
	if (isnan(v)) {
		sym_put(p, "nan");
		return;
	}
	if (isinf(v)) {
		sym_put(p, v < 0 ? "-inf" : p->st->inf);
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

/* A user name: verbatim, or with TeX names \mu, x, \mathrm{name}. */
static void sym_put_name(SymPr *p, const char *name)
{
	if (!p->st->tex_names || !name[0]) {
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

static void sym_pr_in(SymPr *p, SymId e, int minprec);
static void sym_pr_scaled(SymPr *p, double k, int n, const SymId *f);

static void sym_open(SymPr *p)
{
	sym_put(p, p->st->open);
}

static void sym_close(SymPr *p)
{
	sym_put(p, p->st->close);
}

/* e where the text must bind at least as tightly as minprec.  The
 * requirement reaches the node itself (not its kids) for the texts that
 * sym_to_spice's hooks produce, whose precedence only shows when printed. */
static void sym_pr_at(SymPr *p, SymId e, int minprec)
{
	bool paren = sym_prec(p->c, e) < minprec;
	if (paren)
		sym_open(p);
	sym_pr_in(p, e, paren ? 0 : minprec);
	if (paren)
		sym_close(p);
}

/* e where anything goes: at the top, or delimited by the surrounding text. */
static void sym_pr(SymPr *p, SymId e)
{
	sym_pr_in(p, e, 0);
}

/* A template of the style (see SymStyleDef) with its arguments. */
static void sym_pr_tmpl(SymPr *p, const char *t, const SymId *arg, const char *name)
{
	while (*t) {
		size_t n = strcspn(t, "#@");
		sym_putn(p, t, n);
		t += n;
		if (!*t)
			break;
		if (t[1] < '0' || t[1] > '9') {
			sym_putn(p, t++, 1);
			continue;
		}
		int k = t[1] - '0';
		if (k == 0)
			sym_put_name(p, name);
		else if (*t == '#')
			sym_pr(p, arg[k - 1]);
		else
			sym_pr_at(p, arg[k - 1], PREC_MUL);
		t += 2;
	}
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

/* base^ex, or base^y when ex is 0 (the exponent of a denominator): an
 * infix superscript, or a call where the style has one (odd integer
 * exponents call pwr_call, which keeps the sign of the base). */
static void sym_pr_power(SymPr *p, SymId base, SymId ex, double y)
{
	const SymStyleDef *st = p->st;
	bool isconst = !ex || sym_is_const(p->c, ex, &y);
	if (st->pow_call) {
		bool odd = isconst && y == floor(y) && fmod(y, 2) != 0;
		sym_put(p, odd ? st->pwr_call : st->pow_call);
		sym_pr(p, base);
		sym_put(p, ",");
		if (ex)
			sym_pr(p, ex);
		else
			sym_put_num(p, y);
		sym_put(p, ")");
		return;
	}
	sym_pr_at(p, base, PREC_ATOM);
	sym_put(p, st->sup_open);
	if (!ex || (isconst && y >= 0 && !st->sup_grouped))
		sym_put_num(p, y);
	else if (st->sup_grouped)
		sym_pr(p, ex);
	else
		sym_pr_at(p, ex, PREC_ATOM);
	sym_put(p, st->sup_close);
}

/* Factors f (constants skipped) joined by the product separator; den: print
 * x^-n as x^n. */
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
			sym_put(p, p->st->mul);
		if (den) {
			const SymNode *x = sym_node(p->c, f[i]);
			double y;
			sym_is_const(p->c, x->kids[1], &y);
			if (y == -1)   /* a fraction's braces delimit a product */
				sym_pr_at(p, x->kids[0], p->st->frac[0] ? PREC_MUL : PREC_POW);
			else
				sym_pr_power(p, x->kids[0], 0, -y);
		} else
			sym_pr_at(p, f[i], PREC_MUL);
		count++;
	}
	return count;
}

/* The factors of a numerator (den false) or denominator (den true). */
static int sym_count_factors(const SymCtx *c, int n, const SymId *f, bool den)
{
	int m = 0;
	for (int i = 0; i < n; i++)
		m += !sym_is_const(c, f[i], NULL) && sym_is_recip(c, f[i]) == den;
	return m;
}

/* k * factors, k >= 0 already stripped of its sign; k leads when it is not
 * 1 or when the numerator is empty ("1/x", "-1/x"). */
static void sym_pr_scaled(SymPr *p, double k, int n, const SymId *f)
{
	const char *const *frac = p->st->frac;
	int nden = sym_count_factors(p->c, n, f, true);
	if (frac[0] && nden)
		sym_put(p, frac[0]);
	bool lead = k != 1 || sym_count_factors(p->c, n, f, false) == 0;
	if (lead)
		sym_put_num(p, k);
	sym_pr_factors(p, n, f, false, lead);
	if (!nden)
		return;
	if (frac[0]) {
		sym_put(p, frac[1]);
		sym_pr_factors(p, n, f, true, false);
		sym_put(p, frac[2]);
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

static void sym_pr_tensor(SymPr *p, const SymNode *n)
{
	sym_put_name(p, sym_tensor_name(p->c, n->aux));
	if (!n->nkids)
		return;
	sym_put(p, p->st->sub_open);
	for (int i = 0; i < n->nkids; i++) {
		if (i)
			sym_put(p, p->st->sep);
		sym_pr(p, n->kids[i]);
	}
	sym_put(p, p->st->sub_close);
}

static void sym_pr_reduce(SymPr *p, const SymNode *n)
{
	sym_pr_tmpl(p, p->st->red[n->kind - SYM_SUM], n->kids, sym_index_name(p->c, n->aux));
}

/* ---- concrete printing (sym_to_spice) ---------------------------------- */

/* Can the caller's text s stand as an operand anywhere (a name, a call, an
 * unsigned number, a parenthesized group)? */
static bool sym_text_is_atom(const char *s)
{
	int depth = 0;
	for (const char *q = s; *q; q++) {
		if (*q == '(')
			depth++;
		else if (*q == ')')
			depth--;
		else if (depth == 0 && strchr("+-*/^<>=!?:,& |", *q)) {
			const char *r = q - 1;      /* the sign of an exponent: 1e-5, 2.5E+3 */
			if ((*q != '+' && *q != '-') || r <= s || (*r != 'e' && *r != 'E'))
				return false;
			while (r > s && (isdigit((unsigned char)r[-1]) || r[-1] == '.'))
				r--;
			if (r == q - 1 || (r > s && (isalnum((unsigned char)r[-1]) || r[-1] == '_')))
				return false;
		}
	}
	return *s && depth == 0;
}

/* The caller's text where minprec is required: an atom or a negated atom
 * ("-0.5") stands as it is where its precedence suffices; anything else is
 * always parenthesized. */
static void sym_put_text(SymPr *p, const char *s, int minprec)
{
	int prec = sym_text_is_atom(s) ? PREC_ATOM : s[0] == '-' && sym_text_is_atom(s + 1) ? PREC_NEG : 0;
	bool paren = prec == 0 || prec < minprec;
	if (paren)
		sym_open(p);
	sym_put(p, s);
	if (paren)
		sym_close(p);
}

/* An index expression (may read tensors through hooks->data) as an integer. */
static bool sym_eval_int(SymPr *p, SymId e, int64_t *out)
{
	SymEnv env = {p->h ? p->h->data : NULL, p->idx};
	double v = sym_eval(p->c, e, &env);
	if (!isfinite(v) || fabs(v) > 1e15)
		return false;
	*out = (int64_t)llround(v);
	return true;
}

/* "name[1, 2]" for messages. */
static void sym_format_access(char *buf, size_t len, const char *name, int n, const int64_t *at)
{
	size_t k = (size_t)snprintf(buf, len, "%s", name);
	for (int r = 0; r < n && k < len; r++)
		k += (size_t)snprintf(buf + k, len - k, "%s%lld%s", r ? ", " : "[", (long long)at[r],
		                      r == n - 1 ? "]" : "");
}

static void sym_pr_access(SymPr *p, const SymNode *n, int minprec)
{
	const char *name = sym_tensor_name(p->c, n->aux);
	const int64_t *shape = sym_tensor_shape(p->c, n->aux);
	int64_t at[SYM_MAX_RANK] = {0};
	char buf[256];
	for (int r = 0; r < n->nkids; r++) {
		if (!sym_eval_int(p, n->kids[r], &at[r])) {
			sym_fail(p, "index %d of '%s' does not evaluate to an integer", r + 1, name);
			return;
		}
		if (at[r] < 0 || at[r] >= shape[r]) {
			sym_fail(p, "index %d of '%s' is %lld, outside 0..%lld", r + 1, name,
			         (long long)at[r], (long long)(shape[r] - 1));
			return;
		}
	}
	buf[0] = 0;
	if (!p->h || !p->h->tensor || p->h->tensor(p->h->user, n->aux, n->nkids, at, buf, sizeof buf) != 0) {
		sym_format_access(buf, sizeof buf, name, n->nkids, at);
		sym_fail(p, "no SPICE text for %s", buf);
		return;
	}
	buf[sizeof buf - 1] = 0;
	sym_put_text(p, buf, minprec);
}

/* max(a_0, max(a_1, ... a_n-1)) with the bound index set to each value. */
static void sym_pr_max_terms(SymPr *p, const SymNode *n, int64_t ext, int minprec)
{
	for (int64_t i = 0; i < ext; i++) {
		p->idx[n->aux] = i;
		if (i + 1 < ext) {
			sym_put(p, "max(");
			sym_pr(p, n->kids[0]);
			sym_put(p, ", ");
		} else if (ext == 1)
			sym_pr_at(p, n->kids[0], minprec);
		else
			sym_pr(p, n->kids[0]);
	}
	for (int64_t i = 1; i < ext; i++)
		sym_put(p, ")");
}

/* (m + ln(exp(a_0 - m) + exp(a_1 - m) + ...)) with m the expanded max. */
static void sym_pr_lse_terms(SymPr *p, const SymNode *n, int64_t ext)
{
	sym_put(p, "(");
	size_t at = p->b.n;
	sym_pr_max_terms(p, n, ext, PREC_ATOM);
	size_t len = p->b.n - at;
	char *m = dam_xrealloc(NULL, len + 1);
	memcpy(m, p->b.s + at, len);
	m[len] = 0;
	sym_put(p, " + ln(");
	for (int64_t i = 0; i < ext; i++) {
		p->idx[n->aux] = i;
		sym_put(p, i ? " + exp(" : "exp(");
		sym_pr(p, n->kids[0]);
		sym_put(p, " - ");
		sym_put(p, m);
		sym_put(p, ")");
	}
	sym_put(p, "))");
	dam_free(m);
}

static void sym_pr_sum_terms(SymPr *p, const SymNode *n, int64_t ext)
{
	if (!ext) {
		sym_put(p, "0");
		return;
	}
	sym_open(p);
	for (int64_t i = 0; i < ext; i++) {
		p->idx[n->aux] = i;
		sym_pr_term(p, n->kids[0], i == 0);
	}
	sym_close(p);
}

static void sym_pr_expand(SymPr *p, SymId e, const SymNode *n, int minprec)
{
	if (!n->nfree && p->h && p->h->reduction) {
		const char *s = p->h->reduction(p->h->user, e);
		if (s) {
			sym_put_text(p, s, minprec);
			return;
		}
	}
	int64_t ext = sym_index_extent(p->c, n->aux), saved = p->idx[n->aux];
	if (ext <= 0 && n->kind != SYM_SUM) {
		sym_fail(p, "%s over '%s' has no terms", sym_kind_names[n->kind], sym_index_name(p->c, n->aux));
		return;
	}
	if (n->kind == SYM_SUM)
		sym_pr_sum_terms(p, n, ext);
	else if (n->kind == SYM_MAX)
		sym_pr_max_terms(p, n, ext, minprec);
	else
		sym_pr_lse_terms(p, n, ext);
	p->idx[n->aux] = saved;
}

static void sym_pr_delta_value(SymPr *p, const SymNode *n)
{
	int64_t a, b;
	if (!sym_eval_int(p, n->kids[0], &a) || !sym_eval_int(p, n->kids[1], &b)) {
		sym_fail(p, "the arguments of a delta do not evaluate to integers");
		return;
	}
	sym_put(p, a == b ? "1" : "0");
}

/* The nodes that print differently when indices have values. */
static bool sym_pr_concrete(SymPr *p, SymId e, const SymNode *n, int minprec)
{
	switch ((SymKind)n->kind) {
	case SYM_IDX: sym_putf(p, "%lld", (long long)p->idx[n->aux]); return true;
	case SYM_TENSOR: sym_pr_access(p, n, minprec); return true;
	case SYM_SUM:
	case SYM_LSE:
	case SYM_MAX: sym_pr_expand(p, e, n, minprec); return true;
	case SYM_DELTA: sym_pr_delta_value(p, n); return true;
	default: return false;
	}
}

/* ---- the dispatcher ---------------------------------------------------- */

static void sym_pr_in(SymPr *p, SymId e, int minprec)
{
	const SymNode *n = sym_node(p->c, e);
	if (p->failed || (p->idx && sym_pr_concrete(p, e, n, minprec)))
		return;
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
			sym_pr_power(p, n->kids[0], n->kids[1], 0);
		break;
	case SYM_FN: sym_pr_tmpl(p, p->st->fn[n->fn], n->kids, NULL); break;
	case SYM_SUM:
	case SYM_LSE:
	case SYM_MAX: sym_pr_reduce(p, n); break;
	case SYM_DELTA: sym_pr_tmpl(p, p->st->delta, n->kids, NULL); break;
	case SYM_EQ: sym_pr_tmpl(p, p->st->eq, n->kids, NULL); break;
	case SYM_NKINDS: break;
	}
}

/* ---- entry points ------------------------------------------------------ */

static char *sym_render(const SymCtx *c, SymId e, SymStyle style)
{
	SymPr p = {.c = c, .st = &sym_styles[style]};
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

/* Every free index of e needs a value inside its extent. */
static void sym_check_free(SymPr *p, const SymNode *n, bool given)
{
	for (int i = 0; i < n->nfree; i++) {
		IdxId v = n->free[i];
		int64_t ext = sym_index_extent(p->c, v);
		if (!given)
			sym_fail(p, "free index '%s' has no value", sym_index_name(p->c, v));
		else if (p->idx[v] < 0 || p->idx[v] >= ext)
			sym_fail(p, "index %s = %lld is outside 0..%lld", sym_index_name(p->c, v),
			         (long long)p->idx[v], (long long)(ext - 1));
	}
}

char *sym_to_spice(const SymCtx *c, SymId e, const int64_t *idx, const SymSpiceHooks *h,
                   Arena *a, char *err, size_t errlen)
{
	uint32_t nidx = sym_index_count(c);
	SymPr p = {.c = c, .st = &sym_styles[SYM_SPICE], .h = h, .err = err, .errlen = errlen};
	p.idx = dam_xrealloc(NULL, nidx * sizeof *p.idx);
	for (uint32_t i = 0; i < nidx; i++)
		p.idx[i] = idx ? idx[i] : 0;
	if (err && errlen)
		err[0] = 0;
	sym_check_free(&p, sym_node(c, e), idx != NULL);
	sym_put(&p, "");
	sym_pr(&p, e);
	char *r = p.failed ? NULL : arena_strdup(a, p.b.s);
	dam_free(p.b.s);
	dam_free(p.idx);
	return r;
}

/* ---- the DAG dump ------------------------------------------------------ */

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
