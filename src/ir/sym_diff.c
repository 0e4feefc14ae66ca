/* sym_diff.c - exact differentiation and the diagonal-plus-low-rank form.
 *
 * sym_diff(e, t, k) builds d e / d t[k] by the usual rules (memoised per
 * call); sym_diff_at(e, t, k[]) the same for a tensor of any rank, d e / d
 * t[k0, k1, ...] (a weight matrix: an access t[a, b] contributes
 * delta(a, k0) * delta(b, k1)).  Dependence on t shows up as delta(a, k) for an access t[a]; the
 * reduction constructors then eliminate sums over deltas
 * (sum(i, delta(i,k)*f(i)) = f(k)) and distribute sums over a factor that
 * holds a delta, so the derivative of sum(i, f(x[i])) comes out as f'(x[k])
 * with no sum left, and the DAG size never depends on extents.
 *
 * sym_structure(m, j, k) splits a matrix expression m[j,k] into
 * delta(j,k)*diag[j] + sum_r u_r[j]*v_r[k], multiplying out only the
 * factors that depend on both j and k.
 */
#include "sym.h"
#include "sym_impl.h"

#include <assert.h>
#include <math.h>
#include <string.h>

typedef struct SymDiff {
	TensorId t;
	IdxId k[SYM_MAX_RANK];  /* one differentiation index per dimension of t */
	int rank;
	SymId *memo;
	uint8_t *uses;          /* uses[e]: e depends on t */
	uint32_t lim;           /* memo and uses cover ids below lim */
} SymDiff;

static bool sym_is_zero(const SymCtx *c, SymId e)
{
	double v;
	return sym_is_const(c, e, &v) && v == 0;
}

static SymId sym_diff_rec(SymCtx *c, SymDiff *d, SymId e);

/* f'(a) for the elementwise functions. */
static SymId sym_fn_deriv(SymCtx *c, SymFn f, SymId a)
{
	SymId one = sym_const(c, 1), self = sym_fn(c, f, a);
	switch (f) {
	case SYMFN_EXP: return self;
	case SYMFN_LOG: return sym_pow(c, a, sym_const(c, -1));
	case SYMFN_SQRT: return sym_mul(c, sym_const(c, 0.5), sym_pow(c, self, sym_const(c, -1)));
	case SYMFN_RELU: return sym_fn(c, SYMFN_STEP, a);
	case SYMFN_SOFTPLUS: return sym_fn(c, SYMFN_SIGMOID, a);
	case SYMFN_SIGMOID: return sym_mul(c, self, sym_sub(c, one, self));
	case SYMFN_TANH: return sym_sub(c, one, sym_pow(c, self, sym_const(c, 2)));
	case SYMFN_LOGCOSH: return sym_fn(c, SYMFN_TANH, a);
	case SYMFN_ABS: return sym_fn(c, SYMFN_SIGN, a);
	case SYMFN_STEP:
	case SYMFN_SIGN:
	case SYMFN_COUNT: break;
	}
	return sym_const(c, 0);
}

/* Product rule over the kids of a MUL. */
static SymId sym_diff_mul(SymCtx *c, SymDiff *d, const SymNode *n)
{
	int m = n->nkids;
	SymId terms[m], f[m];
	int nt = 0;
	for (int i = 0; i < m; i++) {
		SymId di = sym_diff_rec(c, d, n->kids[i]);
		if (sym_is_zero(c, di))
			continue;
		memcpy(f, n->kids, (size_t)m * sizeof *f);
		f[i] = di;
		terms[nt++] = sym_muln(c, m, f);
	}
	return sym_addn(c, nt, terms);
}

/* d(a^b): constant exponent, else a^b * (db*log a + b*da/a). */
static SymId sym_diff_pow(SymCtx *c, SymDiff *d, SymId e, const SymNode *n)
{
	SymId a = n->kids[0], b = n->kids[1];
	SymId da = sym_diff_rec(c, d, a);
	double y;
	if (sym_is_const(c, b, &y))
		return sym_muln(c, 3, (SymId[]){sym_const(c, y), sym_pow(c, a, sym_const(c, y - 1)), da});
	SymId db = sym_diff_rec(c, d, b);
	SymId t1 = sym_mul(c, db, sym_fn(c, SYMFN_LOG, a));
	SymId t2 = sym_mul(c, b, sym_div(c, da, a));
	return sym_mul(c, e, sym_add(c, t1, t2));
}

/* (da*b - a*db) / b^2 */
static SymId sym_diff_div(SymCtx *c, SymDiff *d, const SymNode *n)
{
	SymId a = n->kids[0], b = n->kids[1];
	SymId num = sym_sub(c, sym_mul(c, sym_diff_rec(c, d, a), b),
	                    sym_mul(c, a, sym_diff_rec(c, d, b)));
	return sym_div(c, num, sym_pow(c, b, sym_const(c, 2)));
}

/* Reductions: sum -> sum of derivatives; lse -> softmax-weighted sum;
 * max -> sum over the arg-max indicator (a subgradient). */
static SymId sym_diff_reduce(SymCtx *c, SymDiff *d, SymId e, const SymNode *n)
{
	for (int r = 0; r < d->rank; r++)
		assert(n->aux != d->k[r] && "bound index captures the differentiation index");
	SymId b = n->kids[0], db = sym_diff_rec(c, d, b);
	if (n->kind == SYM_LSE)
		db = sym_mul(c, sym_fn(c, SYMFN_EXP, sym_sub(c, b, e)), db);
	else if (n->kind == SYM_MAX)
		db = sym_mul(c, sym_eq(c, b, e), db);
	return sym_reduce(c, SYM_SUM, n->aux, db);
}

static SymId sym_diff_node(SymCtx *c, SymDiff *d, SymId e)
{
	const SymNode *n = sym_node(c, e);
	switch ((SymKind)n->kind) {
	case SYM_TENSOR: {
		if (n->aux != d->t)
			return sym_const(c, 0);
		assert(n->nkids == d->rank);
		SymId f[SYM_MAX_RANK];          /* d t[a0, a1] / d t[k0, k1] = delta(a0,k0) delta(a1,k1) */
		for (int r = 0; r < d->rank; r++)
			f[r] = sym_delta(c, n->kids[r], sym_idx(c, d->k[r]));
		return d->rank == 0 ? sym_const(c, 1) : sym_muln(c, d->rank, f);
	}
	case SYM_ADD: {
		SymId t[n->nkids];
		for (int i = 0; i < n->nkids; i++)
			t[i] = sym_diff_rec(c, d, n->kids[i]);
		return sym_addn(c, n->nkids, t);
	}
	case SYM_MUL: return sym_diff_mul(c, d, n);
	case SYM_DIV: return sym_diff_div(c, d, n);
	case SYM_POW: return sym_diff_pow(c, d, e, n);
	case SYM_FN: {
		SymId da = sym_diff_rec(c, d, n->kids[0]);
		if (sym_is_zero(c, da))
			return da;
		return sym_mul(c, sym_fn_deriv(c, (SymFn)n->fn, n->kids[0]), da);
	}
	case SYM_SUM:
	case SYM_LSE:
	case SYM_MAX: return sym_diff_reduce(c, d, e, n);
	default: return sym_const(c, 0);   /* CONST, IDX, DELTA, EQ */
	}
}

static SymId sym_diff_rec(SymCtx *c, SymDiff *d, SymId e)
{
	assert(e < d->lim);
	if (!d->uses[e])
		return sym_const(c, 0);
	if (d->memo[e])
		return d->memo[e];
	SymId r = sym_diff_node(c, d, e);
	d->memo[e] = r;
	return r;
}

/* uses[e] for every node: kids always have smaller ids than their parents. */
static uint8_t *sym_uses_table(const SymCtx *c, TensorId t)
{
	uint32_t n = sym_count(c);
	uint8_t *u = dam_xrealloc(NULL, n);
	u[0] = 0;
	for (SymId e = 1; e < n; e++) {
		const SymNode *x = sym_node(c, e);
		u[e] = x->kind == SYM_TENSOR && x->aux == t;
		for (int i = 0; i < x->nkids && !u[e]; i++)
			u[e] = u[x->kids[i]];
	}
	return u;
}

SymId sym_diff_at(SymCtx *c, SymId e, TensorId t, const IdxId *k)
{
	int rank = sym_tensor_rank(c, t);
	assert(rank >= 0 && rank <= SYM_MAX_RANK);
	uint32_t n = sym_count(c);
	SymDiff d = { .t = t, .rank = rank, .lim = n };
	for (int r = 0; r < rank; r++) {
		assert(!sym_has_free(c, e, k[r]) && "differentiation index must be fresh");
		d.k[r] = k[r];
	}
	d.memo = dam_xrealloc(NULL, n * sizeof(SymId));
	d.uses = sym_uses_table(c, t);
	memset(d.memo, 0, n * sizeof(SymId));
	SymId r = sym_diff_rec(c, &d, e);
	dam_free(d.memo);
	dam_free(d.uses);
	return r;
}

SymId sym_diff(SymCtx *c, SymId e, TensorId t, IdxId k)
{
	assert(sym_tensor_rank(c, t) == 1);
	return sym_diff_at(c, e, t, &k);
}

/* ---- diagonal plus low rank -------------------------------------------- */

typedef struct SymSplit {
	IdxId j, k;
	SymVec diag;             /* diagonal terms (k already replaced by j) */
	SymVec u, v;             /* low-rank pairs */
	int depth;
} SymSplit;

static bool sym_split_sum(SymCtx *c, SymSplit *s, SymId m);

static bool sym_is_delta_jk(const SymCtx *c, SymId e, IdxId j, IdxId k)
{
	const SymNode *n = sym_node(c, e);
	if (n->kind != SYM_DELTA)
		return false;
	const SymNode *a = sym_node(c, n->kids[0]), *b = sym_node(c, n->kids[1]);
	if (a->kind != SYM_IDX || b->kind != SYM_IDX)
		return false;
	return (a->aux == j && b->aux == k) || (a->aux == k && b->aux == j);
}

/* Can factor f be multiplied out into simpler terms? */
static bool sym_expandable(const SymCtx *c, SymId f)
{
	const SymNode *n = sym_node(c, f);
	if (n->kind == SYM_ADD)
		return true;
	double y;
	return n->kind == SYM_POW && sym_node(c, n->kids[0])->kind == SYM_ADD &&
	       sym_is_const(c, n->kids[1], &y) && y >= 2 && y <= 8 && y == floor(y);
}

/* One product term: delta term, separable pair, or multiply out. */
static bool sym_split_term(SymCtx *c, SymSplit *s, SymId t)
{
	const SymNode *n = sym_node(c, t);
	int m = n->kind == SYM_MUL ? n->nkids : 1;
	const SymId *f = n->kind == SYM_MUL ? n->kids : &t;
	SymId uf[m], vf[m];
	int nu = 0, nv = 0;
	for (int i = 0; i < m; i++) {
		if (sym_is_delta_jk(c, f[i], s->j, s->k)) {
			SymId rest = sym_div(c, t, f[i]);
			vec_push(&s->diag, sym_subst_idx(c, rest, s->k, sym_idx(c, s->j)));
			return true;
		}
	}
	for (int i = 0; i < m; i++) {
		bool hj = sym_has_free(c, f[i], s->j), hk = sym_has_free(c, f[i], s->k);
		if (hj && hk) {
			if (!sym_expandable(c, f[i]) || s->depth > 16)
				return false;
			SymId x = sym_distribute(c, sym_div(c, t, f[i]), sym_expand(c, f[i]));
			s->depth++;
			bool r = sym_split_sum(c, s, x);
			s->depth--;
			return r;
		}
		if (hk)
			vf[nv++] = f[i];
		else
			uf[nu++] = f[i];
	}
	vec_push(&s->u, sym_muln(c, nu, uf));
	vec_push(&s->v, sym_muln(c, nv, vf));
	return true;
}

static bool sym_split_sum(SymCtx *c, SymSplit *s, SymId m)
{
	const SymNode *n = sym_node(c, m);
	if (n->kind != SYM_ADD)
		return sym_split_term(c, s, m);
	for (int i = 0; i < n->nkids; i++)
		if (!sym_split_term(c, s, n->kids[i]))
			return false;
	return true;
}

/* Merge pairs with equal a[r] (summing b[r]); returns the new count. */
static size_t sym_merge_pairs(SymCtx *c, SymId *a, SymId *b, size_t n)
{
	size_t m = 0;
	for (size_t r = 0; r < n; r++) {
		size_t q = 0;
		while (q < m && a[q] != a[r])
			q++;
		if (q < m)
			b[q] = sym_add(c, b[q], b[r]);
		else
			a[m] = a[r], b[m] = b[r], m++;
	}
	size_t w = 0;
	for (size_t r = 0; r < m; r++) {
		double x;
		if (sym_is_const(c, b[r], &x) && x == 0)
			continue;
		a[w] = a[r], b[w] = b[r], w++;
	}
	return w;
}

bool sym_structure(SymCtx *c, SymId m, IdxId j, IdxId k, SymStruct *out)
{
	SymSplit s = {.j = j, .k = k};
	bool good = sym_split_sum(c, &s, m);
	if (good) {
		size_t n = sym_merge_pairs(c, s.v.v, s.u.v, s.u.n);
		n = sym_merge_pairs(c, s.u.v, s.v.v, n);
		out->diag = sym_addn(c, (int)s.diag.n, s.diag.v);
		out->nterms = (int)n;
		out->u = arena_alloc(c->arena, (n + 1) * sizeof(SymId));
		out->v = arena_alloc(c->arena, (n + 1) * sizeof(SymId));
		if (n) {
			memcpy(out->u, s.u.v, n * sizeof(SymId));
			memcpy(out->v, s.v.v, n * sizeof(SymId));
		}
	}
	vec_free(&s.diag);
	vec_free(&s.u);
	vec_free(&s.v);
	return good;
}
