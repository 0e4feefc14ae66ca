/* sym.c - storage, hash-consing and the simplifying constructors of the
 * symbolic expression language (see sym.h for the contract).
 *
 * A SymCtx owns three tables (nodes, index variables, tensors) and an
 * open-addressing hash table over the node contents (kind, fn, aux, bits of
 * val, kids).  Every table lives in the context's arena and grows by
 * doubling: the old copy is simply abandoned in the arena, never freed.  The
 * contract has no sym_free(), and the arena is what callers free, so tables
 * taken from dam_xrealloc would leak; with arena tables the waste is at most
 * the final table size, and - a useful consequence - a pointer returned by
 * sym_node() stays valid (its node is immutable and the old copy remains)
 * until the arena is freed, even while new nodes are being built.
 *
 * The constructors return canonical forms: n-ary ADD/MUL are flattened,
 * their kids sorted by id, constants folded into one, like terms combined
 * (c1*t + c2*t -> (c1+c2)*t), repeated factors combined into powers, a/b is
 * represented as a*b^-1 (printed as a/b), and reductions are simplified
 * (linearity, factoring out, the delta rule sum(i, delta(i,e)*f) = f[i:=e]).
 * Because substitution and differentiation rebuild through the same
 * constructors, their results are canonical too.
 */
#include "sym.h"
#include "sym_impl.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const sym_kind_names[SYM_NKINDS] = {
#define X(n, s) s,
	SYM_KINDS(X)
#undef X
};

const char *const sym_fn_names[SYMFN_COUNT] = {
#define X(n, s) s,
	SYM_FNS(X)
#undef X
};

/* ---- tables ------------------------------------------------------------ */

/* Grow an arena array of `size`-byte items to hold at least `need` items. */
static void *sym_grow(Arena *a, void *old, uint32_t n, uint32_t *cap, uint32_t need, size_t size)
{
	if (need <= *cap)
		return old;
	uint32_t ncap = *cap ? *cap : 16;
	while (ncap < need)
		ncap *= 2;
	void *p = arena_alloc(a, (size_t)ncap * size);
	if (old && n)
		memcpy(p, old, (size_t)n * size);
	*cap = ncap;
	return p;
}

SymCtx *sym_new(Arena *arena)
{
	SymCtx *c = arena_alloc(arena, sizeof *c);
	c->arena = arena;
	c->nodes = sym_grow(arena, NULL, 0, &c->capnodes, 256, sizeof *c->nodes);
	c->nnodes = 1;                       /* id 0 = none */
	c->hcap = 512;
	c->htab = arena_alloc(arena, c->hcap * sizeof *c->htab);
	c->idx = sym_grow(arena, NULL, 0, &c->capidx, 16, sizeof *c->idx);
	c->nidx = 1;
	c->tens = sym_grow(arena, NULL, 0, &c->captens, 16, sizeof *c->tens);
	c->ntens = 1;
	return c;
}

const SymNode *sym_node(const SymCtx *c, SymId e)
{
	assert(e > 0 && e < c->nnodes);
	return &c->nodes[e];
}

uint32_t sym_count(const SymCtx *c)
{
	return c->nnodes;
}

IdxId sym_index_new(SymCtx *c, const char *name, int64_t extent)
{
	c->idx = sym_grow(c->arena, c->idx, c->nidx, &c->capidx, c->nidx + 1, sizeof *c->idx);
	SymIndex *x = &c->idx[c->nidx];
	x->name = arena_strdup(c->arena, name);
	x->extent = extent;
	return c->nidx++;
}

const char *sym_index_name(const SymCtx *c, IdxId i)
{
	assert(i > 0 && i < c->nidx);
	return c->idx[i].name;
}

int64_t sym_index_extent(const SymCtx *c, IdxId i)
{
	assert(i > 0 && i < c->nidx);
	return c->idx[i].extent;
}

uint32_t sym_index_count(const SymCtx *c)
{
	return c->nidx;
}

TensorId sym_tensor_new(SymCtx *c, const char *name, int rank, const int64_t *shape)
{
	assert(rank >= 0 && rank <= SYM_MAX_RANK);
	c->tens = sym_grow(c->arena, c->tens, c->ntens, &c->captens, c->ntens + 1, sizeof *c->tens);
	SymTensor *t = &c->tens[c->ntens];
	t->name = arena_strdup(c->arena, name);
	t->rank = rank;
	for (int r = 0; r < rank; r++)
		t->shape[r] = shape[r];
	return c->ntens++;
}

const char *sym_tensor_name(const SymCtx *c, TensorId t)
{
	assert(t > 0 && t < c->ntens);
	return c->tens[t].name;
}

int sym_tensor_rank(const SymCtx *c, TensorId t)
{
	assert(t > 0 && t < c->ntens);
	return c->tens[t].rank;
}

const int64_t *sym_tensor_shape(const SymCtx *c, TensorId t)
{
	assert(t > 0 && t < c->ntens);
	return c->tens[t].shape;
}

int64_t sym_tensor_size(const SymCtx *c, TensorId t)
{
	int64_t n = 1;
	for (int k = 0; k < sym_tensor_rank(c, t); k++)
		n *= sym_tensor_shape(c, t)[k];
	return n;
}

uint32_t sym_tensor_count(const SymCtx *c)
{
	return c->ntens;
}

/* ---- hash-consing ------------------------------------------------------ */

static uint64_t sym_mix(uint64_t h, uint64_t x)
{
	h ^= x + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdu;
}

static uint64_t sym_hash(const SymNode *k)
{
	uint64_t bits;
	memcpy(&bits, &k->val, sizeof bits);
	uint64_t h = sym_mix(k->kind, (uint64_t)k->fn << 8 | k->nkids);
	h = sym_mix(h, k->aux);
	h = sym_mix(h, bits);
	for (int i = 0; i < k->nkids; i++)
		h = sym_mix(h, k->kids[i]);
	return h ^ (h >> 29);
}

static bool sym_same(const SymNode *a, const SymNode *b)
{
	return a->kind == b->kind && a->fn == b->fn && a->aux == b->aux &&
	       memcmp(&a->val, &b->val, sizeof a->val) == 0 && a->nkids == b->nkids &&
	       (a->nkids == 0 || memcmp(a->kids, b->kids, a->nkids * sizeof *a->kids) == 0);
}

static void sym_rehash(SymCtx *c)
{
	uint32_t ncap = c->hcap * 2;
	uint32_t *t = arena_alloc(c->arena, ncap * sizeof *t);
	for (SymId e = 1; e < c->nnodes; e++) {
		uint32_t h = (uint32_t)sym_hash(&c->nodes[e]) & (ncap - 1);
		while (t[h])
			h = (h + 1) & (ncap - 1);
		t[h] = e;
	}
	c->htab = t;
	c->hcap = ncap;
}

static void sym_sorted_union(IdxId *out, uint16_t *n, const IdxId *b, uint16_t nb)
{
	IdxId tmp[2 * SYM_MAX_FREE];
	uint16_t i = 0, j = 0, m = 0;
	while (i < *n || j < nb) {
		IdxId x;
		if (j >= nb || (i < *n && out[i] < b[j]))
			x = out[i++];
		else if (i >= *n || b[j] < out[i])
			x = b[j++];
		else
			x = out[i++], j++;
		tmp[m++] = x;
	}
	assert(m <= SYM_MAX_FREE);
	memcpy(out, tmp, m * sizeof *tmp);
	*n = m;
}

/* Free index set of a node about to be created. */
static void sym_free_set(const SymCtx *c, SymNode *k)
{
	IdxId buf[2 * SYM_MAX_FREE];
	uint16_t n = 0;
	if (k->kind == SYM_IDX)
		buf[n++] = k->aux;
	for (int i = 0; i < k->nkids; i++) {
		const SymNode *kid = &c->nodes[k->kids[i]];
		sym_sorted_union(buf, &n, kid->free, kid->nfree);
	}
	if (k->kind == SYM_SUM || k->kind == SYM_LSE || k->kind == SYM_MAX) {
		uint16_t m = 0;
		for (uint16_t i = 0; i < n; i++)
			if (buf[i] != k->aux)
				buf[m++] = buf[i];
		n = m;
	}
	IdxId *f = n ? arena_alloc(c->arena, n * sizeof *f) : NULL;
	if (n)
		memcpy(f, buf, n * sizeof *f);
	k->free = f;
	k->nfree = n;
}

SymId sym_mk(SymCtx *c, SymKind kind, int fn, uint32_t aux, double val, int n, const SymId *kids)
{
	assert(n >= 0 && n <= UINT16_MAX);
	SymNode key = {.kind = (uint8_t)kind, .fn = (uint8_t)fn, .nkids = (uint16_t)n,
	               .aux = aux, .val = val, .kids = kids};
	uint32_t h = (uint32_t)sym_hash(&key) & (c->hcap - 1);
	for (; c->htab[h]; h = (h + 1) & (c->hcap - 1))
		if (sym_same(&c->nodes[c->htab[h]], &key))
			return c->htab[h];
	SymId *k = n ? arena_alloc(c->arena, (size_t)n * sizeof *k) : NULL;
	if (n)
		memcpy(k, kids, (size_t)n * sizeof *k);
	key.kids = k;
	sym_free_set(c, &key);
	c->nodes = sym_grow(c->arena, c->nodes, c->nnodes, &c->capnodes, c->nnodes + 1, sizeof *c->nodes);
	SymId id = c->nnodes++;
	c->nodes[id] = key;
	c->htab[h] = id;
	if (2 * c->nnodes > c->hcap)
		sym_rehash(c);
	return id;
}

/* ---- queries ----------------------------------------------------------- */

bool sym_is_const(const SymCtx *c, SymId e, double *v)
{
	const SymNode *n = sym_node(c, e);
	if (n->kind != SYM_CONST)
		return false;
	if (v)
		*v = n->val;
	return true;
}

bool sym_has_free(const SymCtx *c, SymId e, IdxId i)
{
	const SymNode *n = sym_node(c, e);
	int lo = 0, hi = n->nfree;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (n->free[mid] == i)
			return true;
		if (n->free[mid] < i)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static bool sym_uses_rec(const SymCtx *c, SymId e, TensorId t, uint8_t *seen)
{
	if (seen[e])
		return false;
	seen[e] = 1;
	const SymNode *n = sym_node(c, e);
	if (n->kind == SYM_TENSOR && n->aux == t)
		return true;
	for (int i = 0; i < n->nkids; i++)
		if (sym_uses_rec(c, n->kids[i], t, seen))
			return true;
	return false;
}

bool sym_uses_tensor(const SymCtx *c, SymId e, TensorId t)
{
	uint8_t *seen = dam_xrealloc(NULL, c->nnodes);
	memset(seen, 0, c->nnodes);
	bool r = sym_uses_rec(c, e, t, seen);
	dam_free(seen);
	return r;
}

bool sym_is_fn(const SymCtx *c, SymId e, SymFn f)
{
	const SymNode *n = sym_node(c, e);
	return n->kind == SYM_FN && n->fn == f;
}

/* ---- alpha-equivalence ------------------------------------------------- */

typedef struct SymAlpha {
	IdxId a[SYM_MAX_FREE], b[SYM_MAX_FREE];   /* bound index pairs, innermost last */
	int n;
} SymAlpha;

/* Does the pairing rename an index free in x (or y)? */
static bool sym_alpha_renames(const SymCtx *c, const SymAlpha *m, SymId x, SymId y)
{
	for (int r = 0; r < m->n; r++)
		if (m->a[r] != m->b[r] && (sym_has_free(c, x, m->a[r]) || sym_has_free(c, y, m->b[r])))
			return true;
	return false;
}

static bool sym_alpha_idx(const SymAlpha *m, IdxId x, IdxId y)
{
	for (int r = m->n - 1; r >= 0; r--)
		if (m->a[r] == x || m->b[r] == y)
			return m->a[r] == x && m->b[r] == y;
	return x == y;
}

static bool sym_alpha_rec(const SymCtx *c, SymAlpha *m, SymId x, SymId y)
{
	if (x == y && !sym_alpha_renames(c, m, x, y))
		return true;
	const SymNode *p = sym_node(c, x), *q = sym_node(c, y);
	if (p->kind != q->kind || p->fn != q->fn || p->nkids != q->nkids ||
	    memcmp(&p->val, &q->val, sizeof p->val) != 0)
		return false;
	bool binder = p->kind == SYM_SUM || p->kind == SYM_LSE || p->kind == SYM_MAX;
	if (p->kind == SYM_IDX)
		return sym_alpha_idx(m, p->aux, q->aux);
	if (binder) {
		if (c->idx[p->aux].extent != c->idx[q->aux].extent || m->n == SYM_MAX_FREE)
			return false;
		m->a[m->n] = p->aux, m->b[m->n] = q->aux, m->n++;
	} else if (p->aux != q->aux)
		return false;
	bool same = true;
	for (int i = 0; i < p->nkids && same; i++)
		same = sym_alpha_rec(c, m, p->kids[i], q->kids[i]);
	if (binder)
		m->n--;
	return same;
}

/* Equal up to the names of bound indices (kids compared in stored order, so
 * this may miss some equivalences; it never reports a false one). */
bool sym_alpha_eq(const SymCtx *c, SymId x, SymId y)
{
	if (x == y)
		return true;
	const SymNode *p = sym_node(c, x), *q = sym_node(c, y);
	if (p->kind != q->kind || p->nfree != q->nfree)
		return false;
	SymAlpha m = {.n = 0};
	return sym_alpha_rec(c, &m, x, y);
}

/* ---- scalar functions (shared with the evaluator) ---------------------- */

double sym_apply_fn(SymFn f, double x)
{
	switch (f) {
	case SYMFN_EXP: return exp(x);
	case SYMFN_LOG: return log(x);
	case SYMFN_SQRT: return sqrt(x);
	case SYMFN_RELU: return x > 0 ? x : 0;
	case SYMFN_SOFTPLUS: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
	case SYMFN_SIGMOID:
		return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
	case SYMFN_TANH: return tanh(x);
	case SYMFN_LOGCOSH: return fabs(x) + log1p(exp(-2 * fabs(x))) - log(2.0);
	case SYMFN_ABS: return fabs(x);
	case SYMFN_STEP: return x > 0 ? 1 : 0;
	case SYMFN_SIGN: return x > 0 ? 1 : x < 0 ? -1 : 0;
	case SYMFN_COUNT: break;
	}
	return NAN;
}

/* ---- leaves ------------------------------------------------------------ */

SymId sym_const(SymCtx *c, double v)
{
	if (v == 0)
		v = 0;     /* -0 -> +0: one zero */
	return sym_mk(c, SYM_CONST, 0, 0, v, 0, NULL);
}

SymId sym_idx(SymCtx *c, IdxId i)
{
	assert(i > 0 && i < c->nidx);
	return sym_mk(c, SYM_IDX, 0, i, 0, 0, NULL);
}

SymId sym_at(SymCtx *c, TensorId t, int n, const SymId *idx)
{
	assert(t > 0 && t < c->ntens && n == c->tens[t].rank);
	return sym_mk(c, SYM_TENSOR, 0, t, 0, n, idx);
}

/* ---- small helpers ----------------------------------------------------- */

static int sym_cmp_id(const void *a, const void *b)
{
	SymId x = *(const SymId *)a, y = *(const SymId *)b;
	return (x > y) - (x < y);
}

void sym_sort_ids(SymId *a, int n)
{
	qsort(a, (size_t)n, sizeof *a, sym_cmp_id);
}

/* Append the kids of e (if e has kind k) or e itself to v. */
static void sym_flatten(const SymCtx *c, SymVec *v, SymId e, SymKind k)
{
	const SymNode *n = sym_node(c, e);
	if (n->kind == k)
		for (int i = 0; i < n->nkids; i++)
			vec_push(v, n->kids[i]);
	else
		vec_push(v, e);
}

/* A product term as coefficient * rest (rest = 0 for a pure constant). */
static SymId sym_split_coef(SymCtx *c, SymId e, double *coef)
{
	const SymNode *n = sym_node(c, e);
	*coef = 1;
	if (n->kind == SYM_CONST) {
		*coef = n->val;
		return 0;
	}
	if (n->kind != SYM_MUL)
		return e;
	SymId rest[n->nkids];
	int m = 0;
	for (int i = 0; i < n->nkids; i++)
		if (!sym_is_const(c, n->kids[i], coef))
			rest[m++] = n->kids[i];
	if (m == n->nkids)
		return e;
	return m == 1 ? rest[0] : sym_mk(c, SYM_MUL, 0, 0, 0, m, rest);
}

SymId sym_coef_rest(SymCtx *c, SymId e, double *coef)
{
	SymId r = sym_split_coef(c, e, coef);
	return r ? r : sym_const(c, 1);
}

/* ---- ADD --------------------------------------------------------------- */

typedef struct { SymId rest; double coef, mag; } SymTerm;

static int sym_cmp_term(const void *a, const void *b)
{
	SymId x = ((const SymTerm *)a)->rest, y = ((const SymTerm *)b)->rest;
	return (x > y) - (x < y);
}

/* A sum of coefficients that cancels to within rounding is exactly 0
 * (0.4*0.2 - 0.08 must not leave 1e-17*t behind). */
static double sym_snap(double sum, double mag)
{
	return fabs(sum) <= 8 * DBL_EPSILON * mag ? 0 : sum;
}

/* Combine like terms of terms[0..n): equal rests, or rests equal up to the
 * names of bound indices (sum(i, x[i]) and sum(l, x[l])).  Returns the new
 * count; the first (smallest id) rest represents its class. */
static int sym_merge_terms(const SymCtx *c, SymTerm *t, int n)
{
	qsort(t, (size_t)n, sizeof *t, sym_cmp_term);
	int m = 0;
	for (int i = 0; i < n; i++) {
		int q = m - 1;
		if (!(m && t[q].rest == t[i].rest))
			for (q = 0; q < m && !sym_alpha_eq(c, t[q].rest, t[i].rest); q++)
				;
		if (q >= 0 && q < m) {
			t[q].coef += t[i].coef;
			t[q].mag = fmax(t[q].mag, fabs(t[i].coef));
		} else
			t[m++] = t[i];
	}
	for (int i = 0; i < m; i++)
		t[i].coef = sym_snap(t[i].coef, t[i].mag);
	return m;
}

/* const * (a + b + ...) -> const*a + const*b + ... */
static SymId sym_scale_sum(SymCtx *c, double k, SymId sum)
{
	const SymNode *n = sym_node(c, sum);
	SymId t[n->nkids];
	for (int i = 0; i < n->nkids; i++)
		t[i] = sym_mul(c, sym_const(c, k), n->kids[i]);
	return sym_addn(c, n->nkids, t);
}

SymId sym_addn(SymCtx *c, int n, const SymId *a)
{
	SymVec v = {0};
	for (int i = 0; i < n; i++)
		sym_flatten(c, &v, a[i], SYM_ADD);
	SymTerm *t = dam_xrealloc(NULL, (v.n + 1) * sizeof *t);
	double k = 0, kmag = 0;
	int m = 0;
	for (size_t i = 0; i < v.n; i++) {
		double coef;
		SymId rest = sym_split_coef(c, v.v[i], &coef);
		if (rest)
			t[m++] = (SymTerm){rest, coef, fabs(coef)};
		else
			k += coef, kmag = fmax(kmag, fabs(coef));
	}
	vec_free(&v);
	k = sym_snap(k, kmag);
	m = sym_merge_terms(c, t, m);
	SymId *out = dam_xrealloc(NULL, ((size_t)m + 1) * sizeof *out);
	int no = 0;
	for (int i = 0; i < m; i++) {
		if (t[i].coef == 0)
			continue;
		out[no++] = t[i].coef == 1 ? t[i].rest : sym_mul(c, sym_const(c, t[i].coef), t[i].rest);
	}
	if (k != 0 || no == 0)
		out[no++] = sym_const(c, k);
	SymId r = out[0];
	if (no > 1) {
		sym_sort_ids(out, no);
		r = sym_mk(c, SYM_ADD, 0, 0, 0, no, out);
	}
	dam_free(t);
	dam_free(out);
	return r;
}

SymId sym_add(SymCtx *c, SymId a, SymId b)
{
	SymId k[2] = {a, b};
	return sym_addn(c, 2, k);
}

SymId sym_sub(SymCtx *c, SymId a, SymId b)
{
	return sym_add(c, a, sym_neg(c, b));
}

SymId sym_neg(SymCtx *c, SymId a)
{
	return sym_mul(c, sym_const(c, -1), a);
}

/* ---- MUL --------------------------------------------------------------- */

typedef struct { SymId base; double expo; SymId whole; } SymFactor;

static int sym_cmp_factor(const void *a, const void *b)
{
	SymId x = ((const SymFactor *)a)->base, y = ((const SymFactor *)b)->base;
	return (x > y) - (x < y);
}

/* Factor e as base^expo with a constant exponent. */
static SymFactor sym_as_power(const SymCtx *c, SymId e)
{
	const SymNode *n = sym_node(c, e);
	double x;
	if (n->kind == SYM_POW && sym_is_const(c, n->kids[1], &x))
		return (SymFactor){n->kids[0], x, e};
	return (SymFactor){e, 1, e};
}

/* Is there a factor relu(a)^p, p > 0, among f[0..n)? */
static bool sym_has_relu_of(const SymCtx *c, const SymFactor *f, int n, SymId a)
{
	for (int i = 0; i < n; i++) {
		const SymNode *b = sym_node(c, f[i].base);
		if (b->kind == SYM_FN && b->fn == SYMFN_RELU && b->kids[0] == a && f[i].expo > 0)
			return true;
	}
	return false;
}

/* Finish a product: constant k times the factors f[0..n) (already powered). */
static SymId sym_mul_finish(SymCtx *c, double k, SymId *f, int n)
{
	if (k == 0)
		return sym_const(c, 0);
	if (n == 0)
		return sym_const(c, k);
	if (k == 1 && n == 1)
		return f[0];
	if (k != 1 && n == 1 && sym_node(c, f[0])->kind == SYM_ADD)
		return sym_scale_sum(c, k, f[0]);
	if (k != 1)
		f[n++] = sym_const(c, k);
	sym_sort_ids(f, n);
	return sym_mk(c, SYM_MUL, 0, 0, 0, n, f);
}

SymId sym_muln(SymCtx *c, int n, const SymId *a)
{
	SymVec v = {0};
	for (int i = 0; i < n; i++)
		sym_flatten(c, &v, a[i], SYM_MUL);
	SymFactor *f = dam_xrealloc(NULL, (v.n + 1) * sizeof *f);
	double k = 1;
	int m = 0;
	for (size_t i = 0; i < v.n; i++) {
		double x;
		if (sym_is_const(c, v.v[i], &x))
			k *= x;
		else
			f[m++] = sym_as_power(c, v.v[i]);
	}
	vec_free(&v);
	if (k == 0) {
		dam_free(f);
		return sym_const(c, 0);
	}
	qsort(f, (size_t)m, sizeof *f, sym_cmp_factor);
	int w = 0;
	for (int i = 0; i < m; i++) {
		if (w && f[w - 1].base == f[i].base)
			f[w - 1].expo += f[i].expo, f[w - 1].whole = 0;
		else
			f[w++] = f[i];
	}
	SymId *out = dam_xrealloc(NULL, ((size_t)w + 2) * sizeof *out);
	int no = 0;
	bool reflatten = false;
	for (int i = 0; i < w; i++) {
		const SymNode *b = sym_node(c, f[i].base);
		if (b->kind == SYM_FN && b->fn == SYMFN_STEP && f[i].expo > 0 &&
		    sym_has_relu_of(c, f, w, b->kids[0]))
			continue;                        /* relu(x)*step(x) = relu(x) */
		SymId p = f[i].whole ? f[i].whole : sym_pow(c, f[i].base, sym_const(c, f[i].expo));
		double x;
		if (sym_is_const(c, p, &x))
			k *= x;
		else {
			reflatten |= sym_node(c, p)->kind == SYM_MUL;
			out[no++] = p;
		}
	}
	dam_free(f);
	SymId r;
	if (reflatten) {
		out[no++] = sym_const(c, k);
		r = sym_muln(c, no, out);
	} else
		r = sym_mul_finish(c, k, out, no);
	dam_free(out);
	return r;
}

SymId sym_mul(SymCtx *c, SymId a, SymId b)
{
	SymId k[2] = {a, b};
	return sym_muln(c, 2, k);
}

/* a/b is represented as a * b^-1 (printed as a/b). */
SymId sym_div(SymCtx *c, SymId a, SymId b)
{
	double x;
	if (sym_is_const(c, b, &x))
		return sym_mul(c, sym_const(c, 1 / x), a);
	return sym_mul(c, a, sym_pow(c, b, sym_const(c, -1)));
}

/* ---- POW --------------------------------------------------------------- */

static bool sym_is_int(double x)
{
	return isfinite(x) && x == nearbyint(x);
}

/* (a*b*...)^n = a^n * b^n * ... for integer n. */
static SymId sym_pow_product(SymCtx *c, SymId prod, SymId e)
{
	const SymNode *n = sym_node(c, prod);
	SymId f[n->nkids];
	for (int i = 0; i < n->nkids; i++)
		f[i] = sym_pow(c, n->kids[i], e);
	return sym_muln(c, n->nkids, f);
}

/* The same multiplications in the same order as jit_powi (jit_emit.c). */
double sym_pow_value(double x, double y)
{
	if (y != floor(y) || fabs(y) > 64)
		return pow(x, y);
	uint64_t u = (uint64_t)fabs(y);
	double r = 1, base = x;
	bool any = false;
	while (u) {
		if (u & 1) {
			r = any ? r * base : base;
			any = true;
		}
		u >>= 1;
		if (u)
			base = base * base;
	}
	return y < 0 ? 1.0 / r : r;
}

SymId sym_pow(SymCtx *c, SymId a, SymId b)
{
	double x, y;
	bool ca = sym_is_const(c, a, &x), cb = sym_is_const(c, b, &y);
	if (ca && cb)
		return sym_const(c, sym_pow_value(x, y));
	if ((cb && y == 0) || (ca && x == 1))
		return sym_const(c, 1);
	if (!cb)
		return sym_mk(c, SYM_POW, 0, 0, 0, 2, (SymId[]){a, b});
	if (y == 1)
		return a;
	const SymNode *n = sym_node(c, a);
	double e;
	if (n->kind == SYM_POW && sym_is_int(y) && sym_is_const(c, n->kids[1], &e))
		return sym_pow(c, n->kids[0], sym_const(c, e * y));
	if (n->kind == SYM_MUL && sym_is_int(y))
		return sym_pow_product(c, a, b);
	bool indicator = n->kind == SYM_DELTA || n->kind == SYM_EQ ||
	                 (n->kind == SYM_FN && n->fn == SYMFN_STEP);
	if (indicator && y > 0)
		return a;                            /* 0/1-valued: t^n = t */
	if (n->kind == SYM_FN && n->fn == SYMFN_SQRT && sym_is_int(y) && fmod(y, 2) == 0)
		return sym_pow(c, n->kids[0], sym_const(c, y / 2));
	return sym_mk(c, SYM_POW, 0, 0, 0, 2, (SymId[]){a, b});
}

/* ---- FN ---------------------------------------------------------------- */

SymId sym_fn(SymCtx *c, SymFn f, SymId a)
{
	double x;
	if (sym_is_const(c, a, &x))
		return sym_const(c, sym_apply_fn(f, x));
	if (f == SYMFN_EXP && sym_is_fn(c, a, SYMFN_LOG))
		return sym_node(c, a)->kids[0];
	if (f == SYMFN_LOG && sym_is_fn(c, a, SYMFN_EXP))
		return sym_node(c, a)->kids[0];
	return sym_mk(c, SYM_FN, (int)f, 0, 0, 1, &a);
}

/* ---- DELTA, EQ --------------------------------------------------------- */

SymId sym_delta(SymCtx *c, SymId a, SymId b)
{
	double x, y;
	if (a == b)
		return sym_const(c, 1);
	if (sym_is_const(c, a, &x) && sym_is_const(c, b, &y))
		return sym_const(c, llround(x) == llround(y) ? 1 : 0);
	SymId k[2] = {a < b ? a : b, a < b ? b : a};
	return sym_mk(c, SYM_DELTA, 0, 0, 0, 2, k);
}

SymId sym_eq(SymCtx *c, SymId a, SymId b)
{
	double x, y;
	if (a == b)
		return sym_const(c, 1);
	if (sym_is_const(c, a, &x) && sym_is_const(c, b, &y))
		return sym_const(c, x == y ? 1 : 0);
	SymId k[2] = {a < b ? a : b, a < b ? b : a};
	return sym_mk(c, SYM_EQ, 0, 0, 0, 2, k);
}

/* ---- reductions -------------------------------------------------------- */

/* If e is delta(i, x) or delta(x, i) with x free of i, return x. */
static SymId sym_delta_partner(const SymCtx *c, SymId e, IdxId i)
{
	const SymNode *n = sym_node(c, e);
	if (n->kind != SYM_DELTA)
		return 0;
	for (int s = 0; s < 2; s++) {
		const SymNode *k = sym_node(c, n->kids[s]);
		SymId other = n->kids[1 - s];
		if (k->kind == SYM_IDX && k->aux == i && !sym_has_free(c, other, i))
			return other;
	}
	return 0;
}

/* Does term t (a product or a single factor) have a delta(i, x) factor? */
static bool sym_term_has_delta(const SymCtx *c, SymId t, IdxId i)
{
	const SymNode *n = sym_node(c, t);
	if (n->kind != SYM_MUL)
		return sym_delta_partner(c, t, i) != 0;
	for (int f = 0; f < n->nkids; f++)
		if (sym_delta_partner(c, n->kids[f], i))
			return true;
	return false;
}

/* Index of a factor of prod that is a sum with a delta(i, .) term, or -1. */
static int sym_delta_sum_factor(const SymCtx *c, const SymNode *prod, IdxId i)
{
	for (int f = 0; f < prod->nkids; f++) {
		const SymNode *s = sym_node(c, prod->kids[f]);
		if (s->kind != SYM_ADD)
			continue;
		for (int t = 0; t < s->nkids; t++)
			if (sym_term_has_delta(c, s->kids[t], i))
				return f;
	}
	return -1;
}

/* sum(i, a + b) = sum(i, a) + sum(i, b) */
static SymId sym_sum_of_add(SymCtx *c, IdxId i, SymId body)
{
	const SymNode *n = sym_node(c, body);
	SymId t[n->nkids];
	for (int k = 0; k < n->nkids; k++)
		t[k] = sym_reduce(c, SYM_SUM, i, n->kids[k]);
	return sym_addn(c, n->nkids, t);
}

/* Product of all kids of prod except kid `skip`. */
static SymId sym_mul_except(SymCtx *c, const SymNode *prod, int skip)
{
	SymId f[prod->nkids];
	int m = 0;
	for (int k = 0; k < prod->nkids; k++)
		if (k != skip)
			f[m++] = prod->kids[k];
	return sym_muln(c, m, f);
}

/* f * (a + b + ...) -> f*a + f*b + ... (one level, no recursion). */
SymId sym_distribute(SymCtx *c, SymId f, SymId sum)
{
	const SymNode *n = sym_node(c, sum);
	if (n->kind != SYM_ADD)
		return sym_mul(c, f, sum);
	SymId t[n->nkids];
	for (int i = 0; i < n->nkids; i++)
		t[i] = sym_mul(c, f, n->kids[i]);
	return sym_addn(c, n->nkids, t);
}

/* Sum over i of a product: the delta rule, distribution of a sum factor that
 * holds a delta, then moving factors free of i outside.  0 = no rule. */
static SymId sym_sum_of_mul(SymCtx *c, IdxId i, SymId body)
{
	const SymNode *n = sym_node(c, body);
	for (int f = 0; f < n->nkids; f++) {
		SymId x = sym_delta_partner(c, n->kids[f], i);
		if (x)
			return sym_subst_idx(c, sym_mul_except(c, n, f), i, x);
	}
	int s = sym_delta_sum_factor(c, n, i);
	if (s >= 0)
		return sym_reduce(c, SYM_SUM, i, sym_distribute(c, sym_mul_except(c, n, s), n->kids[s]));
	SymId in[n->nkids], out[n->nkids];
	int ni = 0, no = 0;
	for (int f = 0; f < n->nkids; f++) {
		if (sym_has_free(c, n->kids[f], i))
			in[ni++] = n->kids[f];
		else
			out[no++] = n->kids[f];
	}
	if (no == 0)
		return 0;
	out[no++] = sym_reduce(c, SYM_SUM, i, sym_muln(c, ni, in));
	return sym_muln(c, no, out);
}

/* lse/max(i, a + b(i)) = a + lse/max(i, b(i)).  0 = no rule. */
static SymId sym_shift_out(SymCtx *c, SymKind k, IdxId i, SymId body)
{
	const SymNode *n = sym_node(c, body);
	SymId in[n->nkids], out[n->nkids + 1];
	int ni = 0, no = 0;
	for (int t = 0; t < n->nkids; t++) {
		if (sym_has_free(c, n->kids[t], i))
			in[ni++] = n->kids[t];
		else
			out[no++] = n->kids[t];
	}
	if (no == 0)
		return 0;
	out[no++] = sym_reduce(c, k, i, sym_addn(c, ni, in));
	return sym_addn(c, no, out);
}

SymId sym_reduce(SymCtx *c, SymKind k, IdxId i, SymId body)
{
	assert(k == SYM_SUM || k == SYM_LSE || k == SYM_MAX);
	if (!sym_has_free(c, body, i)) {
		double n = (double)sym_index_extent(c, i);
		if (k == SYM_SUM)
			return sym_mul(c, sym_const(c, n), body);
		if (k == SYM_LSE)
			return sym_add(c, body, sym_const(c, log(n)));
		return body;
	}
	const SymNode *b = sym_node(c, body);
	SymId r = 0;
	if (k == SYM_SUM && b->kind == SYM_ADD)
		r = sym_sum_of_add(c, i, body);
	else if (k == SYM_SUM && b->kind == SYM_MUL)
		r = sym_sum_of_mul(c, i, body);
	else if (k == SYM_SUM && sym_delta_partner(c, body, i))
		r = sym_const(c, 1);
	else if (k != SYM_SUM && b->kind == SYM_ADD)
		r = sym_shift_out(c, k, i, body);
	return r ? r : sym_mk(c, k, 0, i, 0, 1, &body);
}

SymId sym_mean(SymCtx *c, IdxId i, SymId body)
{
	double n = (double)sym_index_extent(c, i);
	return sym_mul(c, sym_reduce(c, SYM_SUM, i, body), sym_const(c, 1 / n));
}
