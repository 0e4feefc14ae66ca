/* sym_rewrite.c - rewriting of symbolic expressions: substitution of index
 * variables and tensors, inlining of tensor definitions and expansion of
 * products over sums.
 *
 * Every rewrite walks the DAG once (memoised per call by node id) and
 * rebuilds changed nodes through the simplifying constructors, so results
 * are canonical and rules such as the delta rule fire again after
 * substitution.  Index substitution is simultaneous and capture-avoiding: a
 * reduction whose bound index occurs free in a replacement is renamed to a
 * fresh index variable (name with a prime) first.
 */
#include "sym.h"
#include "sym_impl.h"

#include <assert.h>
#include <math.h>
#include <string.h>

/* Rebuild a node of n's kind with new kids, through the constructors. */
SymId sym_rebuild(SymCtx *c, const SymNode *n, const SymId *kids)
{
	switch ((SymKind)n->kind) {
	case SYM_CONST: return sym_const(c, n->val);
	case SYM_IDX: return sym_idx(c, n->aux);
	case SYM_TENSOR: return sym_at(c, n->aux, n->nkids, kids);
	case SYM_ADD: return sym_addn(c, n->nkids, kids);
	case SYM_MUL: return sym_muln(c, n->nkids, kids);
	case SYM_DIV: return sym_div(c, kids[0], kids[1]);
	case SYM_POW: return sym_pow(c, kids[0], kids[1]);
	case SYM_FN: return sym_fn(c, (SymFn)n->fn, kids[0]);
	case SYM_SUM:
	case SYM_LSE:
	case SYM_MAX: return sym_reduce(c, (SymKind)n->kind, n->aux, kids[0]);
	case SYM_DELTA: return sym_delta(c, kids[0], kids[1]);
	case SYM_EQ: return sym_eq(c, kids[0], kids[1]);
	case SYM_NKINDS: break;
	}
	assert(!"bad node kind");
	return 0;
}

static SymId *sym_memo_new(const SymCtx *c)
{
	uint32_t n = sym_count(c);
	SymId *m = dam_xrealloc(NULL, n * sizeof *m);
	memset(m, 0, n * sizeof *m);
	return m;
}

/* ---- index substitution ------------------------------------------------ */

typedef struct SymSubst {
	int n;
	const IdxId *from;
	const SymId *to;
	SymId *memo;
	uint32_t lim;           /* memo covers ids below lim */
} SymSubst;

static SymId sym_subst_rec(SymCtx *c, SymSubst *s, SymId e);

static bool sym_subst_touches(const SymCtx *c, const SymSubst *s, SymId e)
{
	for (int r = 0; r < s->n; r++)
		if (sym_has_free(c, e, s->from[r]))
			return true;
	return false;
}

static SymId sym_subst_run(SymCtx *c, int n, const IdxId *from, const SymId *to, SymId e)
{
	SymSubst s = {n, from, to, sym_memo_new(c), sym_count(c)};
	SymId r = sym_subst_rec(c, &s, e);
	dam_free(s.memo);
	return r;
}

/* A fresh index variable like i (same extent, name i'). */
static IdxId sym_fresh_like(SymCtx *c, IdxId i)
{
	char *name = arena_printf(c->arena, "%s'", sym_index_name(c, i));
	return sym_index_new(c, name, sym_index_extent(c, i));
}

/* Substitute inside a reduction node e, renaming its bound index if a
 * replacement mentions it. */
static SymId sym_subst_binder(SymCtx *c, SymSubst *s, SymId e)
{
	const SymNode *n = sym_node(c, e);
	IdxId b = n->aux;
	SymId body = n->kids[0];
	IdxId from[s->n];
	SymId to[s->n];
	int m = 0;
	bool bound_is_from = false, capture = false;
	for (int r = 0; r < s->n; r++) {
		if (s->from[r] == b)
			bound_is_from = true;
		else if (sym_has_free(c, e, s->from[r])) {
			from[m] = s->from[r], to[m] = s->to[r], m++;
			capture |= sym_has_free(c, s->to[r], b);
		}
	}
	if (capture) {
		IdxId nb = sym_fresh_like(c, b);
		body = sym_subst_idx(c, body, b, sym_idx(c, nb));
		b = nb;
	}
	SymId nbody;
	if (capture || bound_is_from)
		nbody = sym_subst_run(c, m, from, to, body);
	else
		nbody = sym_subst_rec(c, s, body);
	return sym_reduce(c, (SymKind)n->kind, b, nbody);
}

static SymId sym_subst_node(SymCtx *c, SymSubst *s, SymId e)
{
	const SymNode *n = sym_node(c, e);
	switch ((SymKind)n->kind) {
	case SYM_IDX:
		for (int r = 0; r < s->n; r++)
			if (s->from[r] == n->aux)
				return s->to[r];
		return e;
	case SYM_SUM:
	case SYM_LSE:
	case SYM_MAX:
		return sym_subst_binder(c, s, e);
	default:
		break;
	}
	SymId k[n->nkids ? n->nkids : 1];
	for (int i = 0; i < n->nkids; i++)
		k[i] = sym_subst_rec(c, s, n->kids[i]);
	return sym_rebuild(c, n, k);
}

static SymId sym_subst_rec(SymCtx *c, SymSubst *s, SymId e)
{
	if (!sym_subst_touches(c, s, e))
		return e;
	if (e < s->lim && s->memo[e])
		return s->memo[e];
	SymId r = sym_subst_node(c, s, e);
	if (e < s->lim)
		s->memo[e] = r;
	return r;
}

SymId sym_subst_idx(SymCtx *c, SymId e, IdxId from, SymId to)
{
	return sym_subst_run(c, 1, &from, &to, e);
}

SymId sym_subst_idxn(SymCtx *c, SymId e, int n, const IdxId *from, const SymId *to)
{
	return sym_subst_run(c, n, from, to, e);
}

/* ---- tensor substitution and inlining ---------------------------------- */

typedef struct SymInline {
	TensorId t, to;          /* to != 0: rename t -> to */
	const IdxId *params;     /* else: inline repl with params */
	SymId repl;
	SymId *memo;
	uint32_t lim;
} SymInline;

static SymId sym_inline_rec(SymCtx *c, SymInline *s, SymId e)
{
	if (e < s->lim && s->memo[e])
		return s->memo[e];
	const SymNode *n = sym_node(c, e);
	SymId k[n->nkids ? n->nkids : 1];
	for (int i = 0; i < n->nkids; i++)
		k[i] = sym_inline_rec(c, s, n->kids[i]);
	SymId r;
	if (n->kind == SYM_TENSOR && n->aux == s->t && s->to)
		r = sym_at(c, s->to, n->nkids, k);
	else if (n->kind == SYM_TENSOR && n->aux == s->t)
		r = sym_subst_idxn(c, s->repl, n->nkids, s->params, k);
	else
		r = n->nkids ? sym_rebuild(c, n, k) : e;
	if (e < s->lim)
		s->memo[e] = r;
	return r;
}

SymId sym_subst_tensor(SymCtx *c, SymId e, TensorId from, TensorId to)
{
	assert(sym_tensor_rank(c, from) == sym_tensor_rank(c, to));
	SymInline s = {from, to, NULL, 0, sym_memo_new(c), sym_count(c)};
	SymId r = sym_inline_rec(c, &s, e);
	dam_free(s.memo);
	return r;
}

SymId sym_inline_tensor(SymCtx *c, SymId e, TensorId t, const IdxId *params, SymId repl)
{
	SymInline s = {t, 0, params, repl, sym_memo_new(c), sym_count(c)};
	SymId r = sym_inline_rec(c, &s, e);
	dam_free(s.memo);
	return r;
}

/* ---- expansion --------------------------------------------------------- */

/* Multiply out a product whose factors may be sums. */
static SymId sym_expand_product(SymCtx *c, int n, const SymId *f)
{
	SymId acc = sym_const(c, 1);
	for (int i = 0; i < n; i++) {
		const SymNode *a = sym_node(c, acc);
		if (a->kind != SYM_ADD) {
			acc = sym_distribute(c, acc, f[i]);
			continue;
		}
		SymId t[a->nkids];
		for (int k = 0; k < a->nkids; k++)
			t[k] = sym_distribute(c, a->kids[k], f[i]);
		acc = sym_addn(c, a->nkids, t);
	}
	return acc;
}

/* (a + b)^n for a small positive integer n, multiplied out. */
static SymId sym_expand_pow(SymCtx *c, SymId base, SymId expo)
{
	double y;
	if (sym_node(c, base)->kind != SYM_ADD || !sym_is_const(c, expo, &y) ||
	    y < 2 || y > 8 || y != floor(y))
		return sym_pow(c, base, expo);
	SymId f[8];
	for (int i = 0; i < (int)y; i++)
		f[i] = base;
	return sym_expand_product(c, (int)y, f);
}

static SymId sym_expand_rec(SymCtx *c, SymId *memo, uint32_t lim, SymId e)
{
	if (e < lim && memo[e])
		return memo[e];
	const SymNode *n = sym_node(c, e);
	SymId k[n->nkids ? n->nkids : 1];
	for (int i = 0; i < n->nkids; i++)
		k[i] = sym_expand_rec(c, memo, lim, n->kids[i]);
	SymId r;
	if (n->kind == SYM_MUL)
		r = sym_expand_product(c, n->nkids, k);
	else if (n->kind == SYM_POW)
		r = sym_expand_pow(c, k[0], k[1]);
	else
		r = n->nkids ? sym_rebuild(c, n, k) : e;
	if (e < lim)
		memo[e] = r;
	return r;
}

SymId sym_expand(SymCtx *c, SymId e)
{
	SymId *memo = sym_memo_new(c);
	SymId r = sym_expand_rec(c, memo, sym_count(c), e);
	dam_free(memo);
	return r;
}
