/* sema.c - names, imports, blocks, shapes: from the AST to the Model skeleton.
 *
 * Statements are processed in order (a name must be declared before it is
 * used).  Every expression is lowered to the symbolic IR (sym.h) in a
 * lowering context that knows the index variables in scope, the local names
 * of a Lagrangian being instantiated, and the *implicit indices* of the
 * declaration: a tensor named without brackets where a tensor of rank r is
 * expected stands for the tensor indexed by the declaration's indices
 * (`bias = a` is `bias[j] = a[j]`, `weights xi : h -- v = K^2` is
 * `xi[r,c] = K[r,c]^2`).
 *
 * Blocks are macros with hygiene: `use inst = blk(args)` processes the body of
 * `blk` in a scope whose declared names are prefixed with "inst." and whose
 * parameters stand for the argument expressions, resolved in the caller's
 * scope.  Constant tensors are evaluated here (sym_eval over their elements);
 * tensors that depend on inputs become MT_DYN with their definition.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dam_npy.h"
#include "sema.h"

#define MAX_SIZE    16777216      /* neurons per layer, elements per tensor dim */
#define MAX_ELEMS   (1LL << 28)   /* elements per tensor */
#define MAX_BINDS   32
#define MAX_DEPTH   64            /* block nesting / import depth */
#define EVAL_LIMIT  (1LL << 31)   /* default work of a tensor evaluated at compile time */

typedef enum { SY_PARAM, SY_TENSOR, SY_LAYER, SY_WEIGHTS, SY_LAGR, SY_BLOCK, SY_INPUT, SY_OUTPUT } SyKind;

static const char *const sy_kind_names[] = {
	"param", "tensor", "layer", "weight block", "lagrangian", "block", "input", "output",
};

typedef struct Sy {
	SyKind kind;
	const char *name;
	Loc loc;
	bool is_str;
	double num;
	const char *str;
	const char *dir;       /* string params: base directory for relative paths */
	TensorId t;
	int index;             /* layer / block / input / output number */
	Stmt *def;             /* lagrangian, block */
} Sy;

typedef struct Scope Scope;
struct Scope {
	const char *prefix;    /* "" at top level, "inst." inside a block instance */
	Stmt *block;
	Expr **args;
	int nargs;
	Scope *caller;
	int depth;
	Loc use_loc;           /* outermost `use` statement of this instance */
};

typedef struct Bind {
	const char *name;
	enum { B_INDEX, B_CONST, B_TENSOR } kind;
	IdxId idx;
	double val;
	TensorId t;
} Bind;

typedef struct LCtx {
	Scope *scope;
	Bind binds[MAX_BINDS];
	int nb;
	IdxId implicit[SYM_MAX_RANK];
	int nimplicit;
	bool in_lagrangian;
} LCtx;

typedef struct LayerSegs {
	VEC(MSeg) init;
	VEC(MSeg) clamp;
	bool has_bias;
} LayerSegs;

typedef struct Sema {
	Arena *a;
	Diags *d;
	Interner *in;
	SymCtx *sym;
	Model *m;
	const SemaOptions *o;
	VEC(MTensor) tens;
	VEC(MLayer) layers;
	VEC(LayerSegs) segs;
	VEC(Loc) layer_locs;
	VEC(MBlock) blocks;
	VEC(Loc) block_locs;
	VEC(MInput) inputs;
	VEC(MOutput) outputs;
	VEC(MParam) params;
	Sy **tab;              /* open addressing on interned pointers */
	size_t tabcap, tabn;
	bool *define_used;
	uint32_t import_stack[MAX_DEPTH];
	Loc import_locs[MAX_DEPTH];   /* where import_stack[i] was imported (i >= 1) */
	int nimport;
	bool syntax_errors;
	VEC(uint32_t) imported;
	int anon;              /* counter for anonymous tensors */
	double eval_elems;     /* elements of the tensors evaluated at compile time so far */
} Sema;

/* ---- symbol table ------------------------------------------------------ */

static size_t sema_hash(const char *p)
{
	uintptr_t v = (uintptr_t)p;
	v ^= v >> 17;
	v *= 0x9E3779B97F4A7C15ull;
	return (size_t)(v >> 7);
}

static Sy *sema_lookup(Sema *S, const char *name)
{
	if (!S->tabcap)
		return NULL;
	size_t mask = S->tabcap - 1;
	for (size_t i = sema_hash(name) & mask;; i = (i + 1) & mask) {
		if (!S->tab[i])
			return NULL;
		if (S->tab[i]->name == name)
			return S->tab[i];
	}
}

static void sema_insert(Sema *S, Sy *sy)
{
	if (2 * (S->tabn + 1) > S->tabcap) {
		size_t ncap = S->tabcap ? 2 * S->tabcap : 64;
		Sy **nt = arena_alloc(S->a, ncap * sizeof *nt);
		for (size_t i = 0; i < S->tabcap; i++) {
			Sy *e = S->tab[i];
			if (!e)
				continue;
			size_t j = sema_hash(e->name) & (ncap - 1);
			while (nt[j])
				j = (j + 1) & (ncap - 1);
			nt[j] = e;
		}
		S->tab = nt;
		S->tabcap = ncap;
	}
	size_t mask = S->tabcap - 1;
	size_t i = sema_hash(sy->name) & mask;
	while (S->tab[i])
		i = (i + 1) & mask;
	S->tab[i] = sy;
	S->tabn++;
}

static const char *qualify(Sema *S, Scope *sc, const char *name)
{
	if (!sc->prefix[0])
		return name;
	char *q = arena_printf(S->a, "%s%s", sc->prefix, name);
	return intern(S->in, q, strlen(q));
}

/* Declare `name` in scope sc; reports duplicates. */
static Sy *declare(Sema *S, Scope *sc, SyKind kind, const char *name, Loc loc)
{
	const char *q = qualify(S, sc, name);
	Sy *old = sema_lookup(S, q);
	if (old) {
		diag_error(S->d, loc, "'%s' is already declared as a %s", q, sy_kind_names[old->kind]);
		diag_note(S->d, old->loc, "previous declaration of '%s' is here", q);
		return NULL;
	}
	Sy *sy = arena_alloc(S->a, sizeof *sy);
	sy->kind = kind;
	sy->name = q;
	sy->loc = loc;
	sema_insert(S, sy);
	return sy;
}

/* Find the block parameter `name` of scope sc, or -1. */
static int scope_param(Scope *sc, const char *name)
{
	if (!sc->block)
		return -1;
	for (int i = 0; i < sc->block->nparams; i++)
		if (sc->block->params[i] == name)
			return i;
	return -1;
}

/* Inside a block instance a name means the instance's own declaration
 * ("inst.name") if there is one, else the top-level name (hygiene: the
 * caller's block-local names are not visible). */
static Sy *resolve_name(Sema *S, Scope *sc, const char *name)
{
	if (sc->prefix[0]) {
		Sy *sy = sema_lookup(S, qualify(S, sc, name));
		if (sy)
			return sy;
	}
	return sema_lookup(S, name);
}

/* ---- tensors ----------------------------------------------------------- */

static TensorId new_tensor(Sema *S, const char *name, MTensorKind kind, int rank, const int64_t *shape)
{
	TensorId t = sym_tensor_new(S->sym, name, rank, shape);
	MTensor mt = {0};
	mt.kind = kind;
	mt.layer = -1;
	mt.input = -1;
	while (S->tens.n <= t)
		vec_push(&S->tens, mt);
	S->tens.v[t] = mt;
	return t;
}

static int64_t tensor_elems(Sema *S, TensorId t)
{
	return sym_tensor_size(S->sym, t);
}

/* Which kinds of tensors does e depend on? bit (1 << kind). */
static unsigned deps_rec(Sema *S, SymId e, unsigned char *seen)
{
	if (seen[e])
		return 0;
	seen[e] = 1;
	const SymNode *nd = sym_node(S->sym, e);
	unsigned bits = 0;
	if (nd->kind == SYM_TENSOR)
		bits |= 1u << S->tens.v[nd->aux].kind;
	int nk = nd->nkids;
	const SymId *kids = nd->kids;
	for (int i = 0; i < nk; i++)
		bits |= deps_rec(S, kids[i], seen);
	return bits;
}

static unsigned deps(Sema *S, SymId e)
{
	uint32_t n = sym_count(S->sym);
	unsigned char *seen = dam_xrealloc(NULL, n);
	memset(seen, 0, n);
	unsigned b = deps_rec(S, e, seen);
	dam_free(seen);
	return b;
}

#define DEP_DYNAMIC ((1u << MT_INPUT) | (1u << MT_DYN))
#define DEP_STATE   ((1u << MT_STATE) | (1u << MT_ACT))

static const double **env_data(Sema *S)
{
	const double **data = dam_xrealloc(NULL, (S->tens.n + 1) * sizeof *data);
	for (size_t i = 0; i < S->tens.n; i++)
		data[i] = S->tens.v[i].data;
	return data;
}

/* The number of elements of a tensor of this shape, or -1 when it is more
 * than MAX_ELEMS (checked before each multiplication, so it cannot overflow). */
static int64_t shape_elems(int rank, const int64_t *shape)
{
	int64_t n = 1;
	for (int d = 0; d < rank; d++) {
		if (shape[d] > 0 && n > MAX_ELEMS / shape[d])
			return -1;
		n *= shape[d];
	}
	return n;
}

/* Evaluate e over all values of idx[0..rank) into a fresh array; NULL when
 * the shape is over the limit (the declarations check it first, with a
 * located error). */
/* t[i0, ..., i(r-1)] with exactly the declared index variables, in order,
 * over a tensor of the declared shape: its data (NULL otherwise). */
static const double *plain_access(Sema *S, SymId e, int rank, const IdxId *idx, const int64_t *shape)
{
	const SymNode *n = sym_node(S->sym, e);
	if (n->kind != SYM_TENSOR || n->nkids != rank || sym_tensor_rank(S->sym, n->aux) != rank ||
	    n->aux >= S->tens.n || !S->tens.v[n->aux].data)
		return NULL;
	for (int d = 0; d < rank; d++) {
		const SymNode *k = sym_node(S->sym, n->kids[d]);
		if (k->kind != SYM_IDX || k->aux != idx[d] || sym_tensor_shape(S->sym, n->aux)[d] != shape[d])
			return NULL;
	}
	return S->tens.v[n->aux].data;
}

/* The common forms c (a constant: t[i, j] = 0), t[i, j] and t[i, j]^c (the
 * squared-weight reparametrisation) element by element without the
 * evaluator: the same sym_pow_value on the same values, so the same bits, at
 * a fraction of the cost of a sym_eval per element (D = M = 4096 weights).
 * 0 if e has another form. */
static int eval_fast(Sema *S, SymId e, int rank, const IdxId *idx, const int64_t *shape, int64_t n,
                     double *out)
{
	const SymNode *p = sym_node(S->sym, e);
	double c = 1;
	if (sym_is_const(S->sym, e, &c)) {
		for (int64_t f = 0; f < n; f++)
			out[f] = c;
		return 1;
	}
	const double *src = plain_access(S, e, rank, idx, shape);
	if (!src && p->kind == SYM_POW && sym_is_const(S->sym, p->kids[1], &c))
		src = plain_access(S, p->kids[0], rank, idx, shape);
	else if (!src)
		return 0;
	if (!src)
		return 0;
	for (int64_t f = 0; f < n; f++)
		out[f] = p->kind == SYM_POW ? sym_pow_value(src[f], c) : src[f];
	return 1;
}

/* Nodes sym_eval visits to evaluate e once (a reduction: its body's times
 * its extent), saturating above cap. */
static double eval_work(Sema *S, SymId e, double cap, int depth)
{
	const SymNode *p = sym_node(S->sym, e);
	double w = 1;
	for (int k = 0; k < p->nkids && w <= cap; k++)
		w += depth > 256 ? cap : eval_work(S, p->kids[k], cap, depth + 1);
	if (p->kind == SYM_SUM || p->kind == SYM_LSE || p->kind == SYM_MAX)
		w *= (double)sym_index_extent(S->sym, p->aux);
	return w > cap ? cap + 1 : w;
}

/* The values of e over shape, row-major; NULL if too costly (reported at
 * loc unless NULL) or too large. */
static double *eval_tensor(Sema *S, SymId e, int rank, const IdxId *idx, const int64_t *shape, const Loc *loc)
{
	int64_t n = shape_elems(rank, shape);
	if (n < 0)
		return NULL;
	double limit = (double)(S->o && S->o->eval_limit > 0 ? S->o->eval_limit : EVAL_LIMIT);
	/* Writing the elements is work too, even for a constant fill: at most
	 * `limit` per tensor and 4 x limit in all (with the default limit, 2^31,
	 * only MAX_ELEMS binds; a smaller one, e.g. the fuzzer's, bounds memory). */
	if ((double)n > limit || S->eval_elems + (double)n > 4.0 * limit) {
		if (loc)
			diag_error(S->d, *loc, "this tensor has %lld elements, more than the %.0f that compile-time "
			           "tensors may hold %s: give a smaller tensor or load it from a file", (long long)n,
			           (double)n > limit ? limit : 4.0 * limit, (double)n > limit ? "each" : "in all");
		return NULL;
	}
	S->eval_elems += (double)n;
	double *out = arena_alloc(S->a, (size_t)n * sizeof *out);
	if (rank >= 1 && eval_fast(S, e, rank, idx, shape, n, out))
		return out;
	if ((double)n * eval_work(S, e, limit / (double)(n ? n : 1), 0) > limit) {
		if (loc)
			diag_error(S->d, *loc, "evaluating this tensor at compile time takes more than %.0f "
			           "operations (%lld elements): give a smaller tensor or load it from a file",
			           limit, (long long)n);
		return NULL;
	}
	const double **data = env_data(S);
	int64_t *iv = dam_xrealloc(NULL, (sym_index_count(S->sym) + 1) * sizeof *iv);
	memset(iv, 0, (sym_index_count(S->sym) + 1) * sizeof *iv);
	SymEnv env = { data, iv };
	for (int64_t f = 0; f < n; f++) {
		int64_t rem = f;
		for (int d = rank - 1; d >= 0; d--) {
			iv[idx[d]] = rem % shape[d];
			rem /= shape[d];
		}
		out[f] = sym_eval(S->sym, e, &env);
	}
	dam_free(iv);
	dam_free(data);
	return out;
}

static bool all_finite(const double *v, int64_t n, int64_t *bad)
{
	for (int64_t i = 0; i < n; i++)
		if (!isfinite(v[i])) {
			*bad = i;
			return false;
		}
	return true;
}

/* ---- forward declarations --------------------------------------------- */

static SymId lower(Sema *S, LCtx *cx, Expr *e);
static void sema_stmts(Sema *S, Scope *sc, Stmt **stmts, int n);

/* ---- constant evaluation of scalar expressions --------------------------- */

static bool const_value(Sema *S, LCtx *cx, Expr *e, double *out)
{
	LCtx c2 = *cx;
	c2.nimplicit = 0;
	SymId s = lower(S, &c2, e);
	if (!s)
		return false;
	if (sym_node(S->sym, s)->nfree) {
		diag_error(S->d, e->loc, "expected a scalar, but this expression depends on index '%s'",
		           sym_index_name(S->sym, sym_node(S->sym, s)->free[0]));
		return false;
	}
	if (deps(S, s) & (DEP_DYNAMIC | DEP_STATE)) {
		diag_error(S->d, e->loc, "expected a constant, but this expression depends on inputs or neuron states");
		return false;
	}
	const double **data = env_data(S);
	int64_t *iv = dam_xrealloc(NULL, (sym_index_count(S->sym) + 1) * sizeof *iv);
	memset(iv, 0, (sym_index_count(S->sym) + 1) * sizeof *iv);
	SymEnv env = { data, iv };
	*out = sym_eval(S->sym, s, &env);
	dam_free(iv);
	dam_free(data);
	if (!isfinite(*out)) {
		diag_error(S->d, e->loc, "this constant expression does not evaluate to a finite number");
		return false;
	}
	return true;
}

static bool const_size(Sema *S, LCtx *cx, Expr *e, const char *what, int64_t *out)
{
	double v;
	if (!const_value(S, cx, e, &v))
		return false;
	if (v != floor(v) || v < 1) {
		diag_error(S->d, e->loc, "%s must be a positive integer, got %g", what, v);
		return false;
	}
	if (v > MAX_SIZE) {
		diag_error(S->d, e->loc, "%s of %.17g is too large (the limit is %d)", what, v, MAX_SIZE);
		return false;
	}
	*out = (int64_t)v;
	return true;
}

/* ---- shapes of names ----------------------------------------------------- */

/* The tensor a name stands for in expressions, with the scope in which an
 * argument expression must be resolved when the name is a block param. */
static TensorId name_tensor(Sema *S, Sy *sy)
{
	switch (sy->kind) {
	case SY_TENSOR:
	case SY_WEIGHTS:
	case SY_INPUT:
		return sy->t;
	case SY_LAYER:
		return S->layers.v[sy->index].x;
	default:
		return 0;
	}
}

/* Look through block parameters: the expression and scope a name denotes. */
static Expr *deref_param(Scope **sc, Expr *e)
{
	int guard = 0;
	while (e && e->kind == E_IDENT && guard++ < MAX_DEPTH) {
		int p = scope_param(*sc, e->str);
		if (p < 0)
			break;
		if (p >= (*sc)->nargs)
			return NULL;
		e = (*sc)->args[p];
		*sc = (*sc)->caller;
	}
	return e;
}

/* Shape of a bare identifier in scope (for index extent inference); 0 if unknown. */
static TensorId ident_tensor(Sema *S, LCtx *cx, const char *name)
{
	for (int i = cx->nb - 1; i >= 0; i--)
		if (cx->binds[i].name == name)
			return cx->binds[i].kind == B_TENSOR ? cx->binds[i].t : 0;
	Scope *sc = cx->scope;
	Expr tmp = { .kind = E_IDENT, .str = name };
	Expr *e = deref_param(&sc, &tmp);
	if (!e || e->kind != E_IDENT)
		return 0;
	Sy *sy = resolve_name(S, sc, e->str);
	return sy ? name_tensor(S, sy) : 0;
}

/* Combine two inferred extents (-1 unknown, -2 error already reported). */
static int64_t merge_extent(Sema *S, const char *name, int64_t a, int64_t b, Loc where)
{
	if (a == -2 || b == -2)
		return -2;
	if (a >= 0 && b >= 0 && a != b) {
		diag_error(S->d, where, "index '%s' is used with ranges %lld and %lld", name, (long long)a, (long long)b);
		return -2;
	}
	return a >= 0 ? a : b;
}

/* act(L): the activation tensor g of layer L, or 0 (reporting when loc given). */
static TensorId act_tensor(Sema *S, LCtx *cx, Expr *call, bool report)
{
	if (!call || call->kind != E_CALL || strcmp(call->str, "act"))
		return 0;
	Scope *sc = cx->scope;
	Expr *arg = call->nargs == 1 ? deref_param(&sc, call->args[0]) : NULL;
	Sy *sy = arg && arg->kind == E_IDENT ? resolve_name(S, sc, arg->str) : NULL;
	if (!sy || sy->kind != SY_LAYER) {
		if (report)
			diag_error(S->d, call->loc, "act takes one layer, e.g. act(h)");
		return 0;
	}
	return S->layers.v[sy->index].g;
}

/* Infer the extent of index `name` from its uses `T[..., name, ...]` in e.
 * Returns -1 when there is no such use, -2 after reporting a conflict. */
static int64_t infer_extent(Sema *S, LCtx *cx, Expr *e, const char *name, Loc *where)
{
	if (!e)
		return -1;
	int64_t found = -1;
	if (e->kind == E_INDEX && e->a && (e->a->kind == E_IDENT || e->a->kind == E_CALL)) {
		TensorId t = e->a->kind == E_IDENT ? ident_tensor(S, cx, e->a->str) : act_tensor(S, cx, e->a, false);
		if (t) {
			int r = sym_tensor_rank(S->sym, t);
			const int64_t *sh = sym_tensor_shape(S->sym, t);
			for (int d = 0; d < e->nargs && d < r; d++) {
				Expr *ar = e->args[d];
				if (ar && ar->kind == E_IDENT && ar->str == name) {
					if (found >= 0 && found != sh[d]) {
						diag_error(S->d, ar->loc, "index '%s' would range over %lld here but over %lld elsewhere",
						           name, (long long)sh[d], (long long)found);
						return -2;
					}
					found = sh[d];
					*where = ar->loc;
				}
			}
		}
	}
	Expr *kids[2] = { e->a, e->b };
	for (int k = 0; k < 2 && found != -2; k++)
		found = merge_extent(S, name, found, infer_extent(S, cx, kids[k], name, where), *where);
	for (int i = 0; i < e->nargs && found != -2; i++) {
		/* A nested reduction rebinding the same name shadows it. */
		if (e->kind == E_CALL && i == 0 && e->nargs == 2 && e->args[0] &&
		    ((e->args[0]->kind == E_IDENT && e->args[0]->str == name) ||
		     (e->args[0]->kind == E_RANGE && e->args[0]->a && e->args[0]->a->kind == E_IDENT &&
		      e->args[0]->a->str == name)))
			return found;
		found = merge_extent(S, name, found, infer_extent(S, cx, e->args[i], name, where), *where);
	}
	return found;
}

static bool push_bind(Sema *S, LCtx *cx, Bind b, Loc loc)
{
	if (cx->nb >= MAX_BINDS) {
		diag_error(S->d, loc, "too many nested index variables (the limit is %d)", MAX_BINDS);
		return false;
	}
	cx->binds[cx->nb++] = b;
	return true;
}

/* ---- lowering ------------------------------------------------------------ */

static SymId err0(void) { return 0; }

/* t accessed with the implicit indices of the context; desc names it in
 * messages ("tensor 'xi'", "the list literal", "argument 'x'"). */
static SymId implicit_access(Sema *S, LCtx *cx, TensorId t, Loc loc, const char *desc)
{
	int r = sym_tensor_rank(S->sym, t);
	if (r == 0)
		return sym_at(S->sym, t, 0, NULL);
	if (r != cx->nimplicit) {
		if (cx->nimplicit == 0)
			diag_error(S->d, loc, "%s has %d dimension%s, but a scalar is expected here (index it)", desc, r,
			           r == 1 ? "" : "s");
		else
			diag_error(S->d, loc, "%s has %d dimension%s but is used where %d %s expected", desc, r,
			           r == 1 ? "" : "s", cx->nimplicit, cx->nimplicit == 1 ? "is" : "are");
		return err0();
	}
	const int64_t *sh = sym_tensor_shape(S->sym, t);
	SymId args[SYM_MAX_RANK];
	for (int d = 0; d < r; d++) {
		int64_t ext = sym_index_extent(S->sym, cx->implicit[d]);
		if (ext != sh[d]) {
			diag_error(S->d, loc, "%s has %lld element%s in dimension %d but %lld are expected here", desc,
			           (long long)sh[d], sh[d] == 1 ? "" : "s", d + 1, (long long)ext);
			return err0();
		}
		args[d] = sym_idx(S->sym, cx->implicit[d]);
	}
	return sym_at(S->sym, t, r, args);
}

static const char *describe(Sema *S, const char *what, const char *name)
{
	return arena_printf(S->a, "%s '%s'", what, name);
}

static SymId lower_ident(Sema *S, LCtx *cx, Expr *e)
{
	for (int i = cx->nb - 1; i >= 0; i--) {
		Bind *b = &cx->binds[i];
		if (b->name != e->str)
			continue;
		if (b->kind == B_INDEX)
			return sym_idx(S->sym, b->idx);
		if (b->kind == B_CONST)
			return sym_const(S->sym, b->val);
		return implicit_access(S, cx, b->t, e->loc, describe(S, "argument", b->name));
	}
	int p = scope_param(cx->scope, e->str);
	if (p >= 0) {
		if (p >= cx->scope->nargs) {
			diag_error(S->d, e->loc, "block parameter '%s' has no argument", e->str);
			return err0();
		}
		LCtx c2 = *cx;
		c2.scope = cx->scope->caller;
		c2.nb = 0;
		c2.in_lagrangian = false;
		return lower(S, &c2, cx->scope->args[p]);
	}
	Sy *sy = resolve_name(S, cx->scope, e->str);
	if (!sy) {
		diag_error(S->d, e->loc, "undefined name '%s'", e->str);
		return err0();
	}
	switch (sy->kind) {
	case SY_PARAM:
		if (sy->is_str) {
			diag_error(S->d, e->loc, "param '%s' is a string, but a number is expected here", sy->name);
			return err0();
		}
		return sym_const(S->sym, sy->num);
	case SY_TENSOR:
	case SY_WEIGHTS:
	case SY_INPUT:
	case SY_LAYER:
		return implicit_access(S, cx, name_tensor(S, sy), e->loc, describe(S, sy_kind_names[sy->kind], sy->name));
	default:
		diag_error(S->d, e->loc, "'%s' is a %s and cannot be used in an expression", sy->name,
		           sy_kind_names[sy->kind]);
		return err0();
	}
}

/* Tensor named by a base expression of an index expression. */
static TensorId base_tensor(Sema *S, LCtx *cx, Expr *base, const char **what)
{
	if (base && base->kind == E_CALL && !strcmp(base->str, "act")) {
		*what = "activation";
		return act_tensor(S, cx, base, true);
	}
	if (!base || base->kind != E_IDENT) {
		diag_error(S->d, base ? base->loc : (Loc){0, 0, 0}, "only named tensors, layers and inputs can be indexed");
		return 0;
	}
	for (int i = cx->nb - 1; i >= 0; i--) {
		if (cx->binds[i].name != base->str)
			continue;
		if (cx->binds[i].kind == B_TENSOR) {
			*what = "argument";
			return cx->binds[i].t;
		}
		diag_error(S->d, base->loc, "'%s' is %s and cannot be indexed", base->str,
		           cx->binds[i].kind == B_INDEX ? "an index variable" : "a number");
		return 0;
	}
	Scope *sc = cx->scope;
	Expr *e = deref_param(&sc, base);
	if (!e || e->kind != E_IDENT) {
		diag_error(S->d, base->loc, "block argument for '%s' is not a name and cannot be indexed", base->str);
		return 0;
	}
	Sy *sy = resolve_name(S, sc, e->str);
	if (!sy) {
		diag_error(S->d, base->loc, "undefined name '%s'", e->str);
		return 0;
	}
	TensorId t = name_tensor(S, sy);
	if (!t)
		diag_error(S->d, base->loc, "'%s' is a %s and cannot be indexed", sy->name, sy_kind_names[sy->kind]);
	*what = sy_kind_names[sy->kind];
	return t;
}

static SymId lower_index(Sema *S, LCtx *cx, Expr *e)
{
	const char *what = "tensor";
	TensorId t = base_tensor(S, cx, e->a, &what);
	if (!t)
		return err0();
	int r = sym_tensor_rank(S->sym, t);
	const int64_t *sh = sym_tensor_shape(S->sym, t);
	if (e->nargs != r) {
		diag_error(S->d, e->loc, "%s '%s' has %d dimension%s but is indexed with %d", what,
		           sym_tensor_name(S->sym, t), r, r == 1 ? "" : "s", e->nargs);
		return err0();
	}
	SymId args[SYM_MAX_RANK];
	LCtx c2 = *cx;
	c2.nimplicit = 0;
	for (int d = 0; d < r; d++) {
		Expr *ar = e->args[d];
		if (ar->kind == E_RANGE) {
			diag_error(S->d, ar->loc, "a slice is not allowed here; use an index");
			return err0();
		}
		args[d] = lower(S, &c2, ar);
		if (!args[d])
			return err0();
		const SymNode *nd = sym_node(S->sym, args[d]);
		double v;
		if (sym_is_const(S->sym, args[d], &v)) {
			if (v != floor(v) || v < 0 || v >= (double)sh[d]) {
				diag_error(S->d, ar->loc, "index %g is out of range for dimension %d of '%s' (size %lld)",
				           v, d + 1, sym_tensor_name(S->sym, t), (long long)sh[d]);
				return err0();
			}
		} else if (nd->kind == SYM_IDX) {
			int64_t ext = sym_index_extent(S->sym, nd->aux);
			if (ext > sh[d]) {
				diag_error(S->d, ar->loc, "index '%s' ranges over %lld values but dimension %d of '%s' has %lld",
				           sym_index_name(S->sym, nd->aux), (long long)ext, d + 1,
				           sym_tensor_name(S->sym, t), (long long)sh[d]);
				return err0();
			}
		}
	}
	return sym_at(S->sym, t, r, args);
}

static const struct { const char *name; SymFn fn; } builtin_fns[] = {
	{ "exp", SYMFN_EXP }, { "log", SYMFN_LOG }, { "sqrt", SYMFN_SQRT }, { "relu", SYMFN_RELU },
	{ "softplus", SYMFN_SOFTPLUS }, { "sigmoid", SYMFN_SIGMOID }, { "tanh", SYMFN_TANH },
	{ "logcosh", SYMFN_LOGCOSH }, { "abs", SYMFN_ABS }, { "step", SYMFN_STEP }, { "sign", SYMFN_SIGN },
};

static SymId lower_reduce(Sema *S, LCtx *cx, Expr *e, const char *fname)
{
	if (e->nargs != 2) {
		diag_error(S->d, e->loc, "%s takes 2 arguments (an index and an expression), got %d", fname, e->nargs);
		return err0();
	}
	Expr *iv = e->args[0], *body = e->args[1];
	const char *iname = NULL;
	int64_t ext = -1;
	Loc where = iv->loc;
	if (iv->kind == E_IDENT) {
		iname = iv->str;
	} else if (iv->kind == E_RANGE && iv->a && iv->a->kind == E_IDENT && iv->b) {
		iname = iv->a->str;
		if (!const_size(S, cx, iv->b, "the range of an index", &ext))
			return err0();
	} else {
		diag_error(S->d, iv->loc, "the first argument of %s must be an index name (like i or i: 4)", fname);
		return err0();
	}
	if (ext < 0) {
		ext = infer_extent(S, cx, body, iname, &where);
		if (ext == -2)
			return err0();
		if (ext < 0) {
			diag_error(S->d, iv->loc, "cannot infer the range of index '%s'; write %s(%s: N, ...)", iname,
			           fname, iname);
			return err0();
		}
	}
	IdxId i = sym_index_new(S->sym, iname, ext);
	LCtx c2 = *cx;
	c2.nimplicit = 0;
	if (!push_bind(S, &c2, (Bind){ .name = iname, .kind = B_INDEX, .idx = i }, iv->loc))
		return err0();
	SymId b = lower(S, &c2, body);
	if (!b)
		return err0();
	if (!strcmp(fname, "mean"))
		return sym_mean(S->sym, i, b);
	SymKind k = !strcmp(fname, "sum") ? SYM_SUM : !strcmp(fname, "max") ? SYM_MAX : SYM_LSE;
	return sym_reduce(S->sym, k, i, b);
}

static const char *path_dir(Sema *S, uint32_t file)
{
	const Source *src = diag_source(S->d, file);
	const char *p = src ? src->path : ".";
	const char *slash = strrchr(p, '/');
	if (!slash)
		return ".";
	return arena_strndup(S->a, p, (size_t)(slash - p));
}

/* A string argument: literal or string param; returns the resolved path. */
static const char *string_arg(Sema *S, LCtx *cx, Expr *e, bool is_path)
{
	Scope *sc = cx->scope;
	Expr *x = deref_param(&sc, e);
	if (!x)
		return NULL;
	const char *s = NULL, *dir = ".";
	if (x->kind == E_STR) {
		s = x->str;
		dir = path_dir(S, x->loc.file);
	} else if (x->kind == E_IDENT) {
		Sy *sy = resolve_name(S, sc, x->str);
		if (sy && sy->kind == SY_PARAM && sy->is_str) {
			s = sy->str;
			dir = sy->dir;
		}
	}
	if (!s) {
		diag_error(S->d, e->loc, "expected a string (a literal or a string param)");
		return NULL;
	}
	if (is_path && s[0] && s[0] != '/' && strcmp(dir, "."))
		return arena_printf(S->a, "%s/%s", dir, s);
	return s;
}

static TensorId tensor_from_array(Sema *S, const char *name, DamArray *arr, MTensorKind kind)
{
	TensorId t = new_tensor(S, name, kind, arr->rank, arr->shape);
	double *d = arena_alloc(S->a, (arr->count ? arr->count : 1) * sizeof *d);
	memcpy(d, arr->data, arr->count * sizeof *d);
	S->tens.v[t].data = d;
	return t;
}

static TensorId load_tensor(Sema *S, LCtx *cx, Expr *e)
{
	if (e->nargs < 1 || e->nargs > 2) {
		diag_error(S->d, e->loc, "load takes a file name and, for .npz files, an array name; got %d arguments",
		           e->nargs);
		return 0;
	}
	const char *path = string_arg(S, cx, e->args[0], true);
	const char *key = e->nargs == 2 ? string_arg(S, cx, e->args[1], false) : NULL;
	if (!path || (e->nargs == 2 && !key))
		return 0;
	if (!path[0]) {
		diag_error(S->d, e->args[0]->loc, "empty file name; set it with -D");
		return 0;
	}
	struct stat stb;
	if (stat(path, &stb) == 0 && S_ISDIR(stb.st_mode)) {
		diag_error(S->d, e->args[0]->loc, "cannot load '%s': it is a directory", path);
		return 0;
	}
	size_t len = strlen(path);
	bool npz = len > 4 && !strcmp(path + len - 4, ".npz");
	char err[512];
	DamArray arr;
	int rc;
	if (npz) {
		if (!key) {
			diag_error(S->d, e->loc, "'%s' is an .npz archive: name the array, load(\"%s\", \"NAME\")", path, path);
			return 0;
		}
		rc = dam_npz_read(path, key, &arr, err, sizeof err);
	} else {
		rc = dam_npy_read(path, &arr, err, sizeof err);
	}
	if (rc) {
		diag_error(S->d, e->loc, "cannot load '%s'%s%s%s: %s", path, key ? " (array '" : "", key ? key : "",
		           key ? "')" : "", err);
		return 0;
	}
	if (arr.rank > SYM_MAX_RANK) {
		diag_error(S->d, e->loc, "'%s' has %d dimensions; at most %d are supported", path, arr.rank, SYM_MAX_RANK);
		dam_array_free(&arr);
		return 0;
	}
	int64_t bad;
	if (!all_finite(arr.data, (int64_t)arr.count, &bad)) {
		diag_error(S->d, e->loc, "'%s'%s%s%s holds a non-finite value at element %lld", path,
		           key ? " (array '" : "", key ? key : "", key ? "')" : "", (long long)bad);
		dam_array_free(&arr);
		return 0;
	}
	char *nm = key ? arena_printf(S->a, "%s:%s", path, key) : arena_strdup(S->a, path);
	TensorId t = tensor_from_array(S, nm, &arr, MT_CONST);
	dam_array_free(&arr);
	return t;
}

static SymId lower_call(Sema *S, LCtx *cx, Expr *e)
{
	const char *f = e->str;
	if (!strcmp(f, "sum") || !strcmp(f, "logsumexp") || !strcmp(f, "mean") || !strcmp(f, "max"))
		return lower_reduce(S, cx, e, f);
	for (size_t i = 0; i < sizeof builtin_fns / sizeof builtin_fns[0]; i++) {
		if (strcmp(f, builtin_fns[i].name))
			continue;
		if (e->nargs != 1) {
			diag_error(S->d, e->loc, "%s takes 1 argument, got %d", f, e->nargs);
			return err0();
		}
		SymId a = lower(S, cx, e->args[0]);
		return a ? sym_fn(S->sym, builtin_fns[i].fn, a) : 0;
	}
	if (!strcmp(f, "len")) {
		TensorId t = 0;
		if (e->nargs == 1 && e->args[0]->kind == E_IDENT)
			t = ident_tensor(S, cx, e->args[0]->str);
		if (!t || sym_tensor_rank(S->sym, t) != 1) {
			diag_error(S->d, e->loc, "len takes one vector (a layer, an input or a rank-1 tensor)");
			return err0();
		}
		return sym_const(S->sym, (double)sym_tensor_shape(S->sym, t)[0]);
	}
	if (!strcmp(f, "act")) {
		TensorId t = act_tensor(S, cx, e, true);
		return t ? implicit_access(S, cx, t, e->loc, describe(S, "activation", sym_tensor_name(S->sym, t))) : 0;
	}
	if (!strcmp(f, "delta")) {
		if (e->nargs != 2) {
			diag_error(S->d, e->loc, "delta takes 2 arguments (two indices), got %d", e->nargs);
			return err0();
		}
		SymId x = lower(S, cx, e->args[0]), y = lower(S, cx, e->args[1]);
		return x && y ? sym_delta(S->sym, x, y) : 0;
	}
	if (!strcmp(f, "load")) {
		TensorId t = load_tensor(S, cx, e);
		return t ? implicit_access(S, cx, t, e->loc, describe(S, "the array loaded from", sym_tensor_name(S->sym, t))) : 0;
	}
	Sy *sy = resolve_name(S, cx->scope, f);
	if (sy && sy->kind == SY_LAGR)
		diag_error(S->d, e->loc, "Lagrangian '%s' can only be used as the type of a layer", f);
	else
		diag_error(S->d, e->loc, "unknown function '%s'", f);
	return err0();
}

/* A list literal: an anonymous constant tensor. */
static bool list_shape(Sema *S, Expr *e, int depth, int64_t *shape, int *rank)
{
	if (e->kind != E_LIST) {
		if (*rank < 0)
			*rank = depth;
		else if (*rank != depth) {
			diag_error(S->d, e->loc, "ragged list literal: expected a list nested %d deep here", *rank);
			return false;
		}
		return true;
	}
	if (depth >= SYM_MAX_RANK) {
		diag_error(S->d, e->loc, "list literal nested deeper than %d", SYM_MAX_RANK);
		return false;
	}
	if (e->nargs == 0) {
		diag_error(S->d, e->loc, "empty list literal");
		return false;
	}
	if (shape[depth] == 0)
		shape[depth] = e->nargs;
	else if (shape[depth] != e->nargs) {
		diag_error(S->d, e->loc, "ragged list literal: %d elements here but %lld in the first row", e->nargs,
		           (long long)shape[depth]);
		return false;
	}
	for (int i = 0; i < e->nargs; i++)
		if (!list_shape(S, e->args[i], depth + 1, shape, rank))
			return false;
	return true;
}

static bool list_fill(Sema *S, LCtx *cx, Expr *e, double *out, int64_t *pos)
{
	if (e->kind != E_LIST) {
		double v;
		if (!const_value(S, cx, e, &v))
			return false;
		out[(*pos)++] = v;
		return true;
	}
	for (int i = 0; i < e->nargs; i++)
		if (!list_fill(S, cx, e->args[i], out, pos))
			return false;
	return true;
}

static TensorId list_tensor(Sema *S, LCtx *cx, Expr *e)
{
	int64_t shape[SYM_MAX_RANK] = {0};
	int rank = -1;
	if (!list_shape(S, e, 0, shape, &rank))
		return 0;
	int64_t n = shape_elems(rank, shape);
	if (n < 0) {
		diag_error(S->d, e->loc, "list literal is too large");
		return 0;
	}
	char *nm = arena_printf(S->a, "list%d", ++S->anon);
	TensorId t = new_tensor(S, nm, MT_CONST, rank, shape);
	double *d = arena_alloc(S->a, (size_t)n * sizeof *d);
	int64_t pos = 0;
	if (!list_fill(S, cx, e, d, &pos))
		return 0;
	S->tens.v[t].data = d;
	return t;
}

/* 1 for + and -, 2 for * and /, 0 for anything else. */
static int chain_class(const Expr *e)
{
	if (e->kind != E_BINOP)
		return 0;
	return e->op == '+' || e->op == '-' ? 1 : e->op == '*' || e->op == '/' ? 2 : 0;
}

/* The operand b of `... op b` as a term (a - b: -b) or a factor (a / b: b^-1). */
static SymId chain_operand(Sema *S, int op, SymId b)
{
	double x;
	if (op == '-')
		return sym_neg(S->sym, b);
	if (op != '/')
		return b;
	if (sym_is_const(S->sym, b, &x))
		return sym_const(S->sym, 1 / x);
	return sym_pow(S->sym, b, sym_const(S->sym, -1));
}

/* A chain a op b op c ... of + and - (or of * and /) becomes one sym_addn
 * (sym_muln) of all its operands, lowered left to right: one call per
 * operator would flatten and merge all the terms so far each time, which is
 * quadratic (with like-term merging, cubic) in the length of the chain. */
static SymId lower_chain(Sema *S, LCtx *cx, Expr *e)
{
	int cls = chain_class(e), n = 0;
	for (Expr *x = e; chain_class(x) == cls; x = x->a)
		n++;
	Expr **spine = dam_xrealloc(NULL, (size_t)n * sizeof *spine);
	SymId *v = dam_xrealloc(NULL, ((size_t)n + 1) * sizeof *v);
	int k = n;
	for (Expr *x = e; k > 0; x = x->a)
		spine[--k] = x;              /* spine[0] is the innermost operator */
	v[0] = lower(S, cx, spine[0]->a);
	bool okay = v[0] != 0;
	for (int i = 0; i < n; i++) {
		SymId b = lower(S, cx, spine[i]->b);
		okay = okay && b;
		v[i + 1] = b ? chain_operand(S, spine[i]->op, b) : 0;
	}
	SymId r = !okay ? err0() : cls == 1 ? sym_addn(S->sym, n + 1, v) : sym_muln(S->sym, n + 1, v);
	dam_free(v);
	dam_free(spine);
	return r;
}

static SymId lower(Sema *S, LCtx *cx, Expr *e)
{
	if (!e)
		return err0();
	switch (e->kind) {
	case E_NUM:
		return sym_const(S->sym, e->num);
	case E_STR:
		diag_error(S->d, e->loc, "a string is not allowed here; a number is expected");
		return err0();
	case E_IDENT:
		return lower_ident(S, cx, e);
	case E_NEG: {
		SymId a = lower(S, cx, e->a);
		return a ? sym_neg(S->sym, a) : 0;
	}
	case E_BINOP: {
		if (e->op != '^')
			return lower_chain(S, cx, e);
		SymId a = lower(S, cx, e->a);
		SymId b = lower(S, cx, e->b);
		return a && b ? sym_pow(S->sym, a, b) : err0();
	}
	case E_CALL:
		return lower_call(S, cx, e);
	case E_INDEX:
		return lower_index(S, cx, e);
	case E_LIST: {
		TensorId t = list_tensor(S, cx, e);
		return t ? implicit_access(S, cx, t, e->loc, "the list literal") : 0;
	}
	case E_RANGE:
		diag_error(S->d, e->loc, "a range is not allowed here");
		return err0();
	}
	return err0();
}

/* ---- declarations with index heads ---------------------------------------- */

/* The bracket list of a declaration: each item is a size (number or numeric
 * param), a fresh index name, or name: extent.  Index extents not given are
 * inferred from `value`.  Fills shape and idx; returns false on error. */
static bool decl_head(Sema *S, LCtx *cx, Expr **dims, int ndims, Expr *value, int64_t *shape, IdxId *idx,
                      const char **names)
{
	if (ndims > SYM_MAX_RANK) {
		diag_error(S->d, dims[SYM_MAX_RANK]->loc, "at most %d dimensions are supported", SYM_MAX_RANK);
		return false;
	}
	for (int d = 0; d < ndims; d++) {
		Expr *it = dims[d];
		names[d] = NULL;
		const char *nm = NULL;
		Expr *ext = NULL;
		if (it->kind == E_RANGE && it->a && it->a->kind == E_IDENT && it->b) {
			nm = it->a->str;
			ext = it->b;
		} else if (it->kind == E_IDENT && !resolve_name(S, cx->scope, it->str) && scope_param(cx->scope, it->str) < 0) {
			nm = it->str;
		}
		if (nm) {
			names[d] = nm;
			if (ext) {
				if (!const_size(S, cx, ext, "the range of an index", &shape[d]))
					return false;
			} else {
				Loc where = it->loc;
				shape[d] = infer_extent(S, cx, value, nm, &where);
				if (shape[d] == -2)
					return false;
				if (shape[d] < 0) {
					diag_error(S->d, it->loc, "cannot infer the range of index '%s'; write %s: N", nm, nm);
					return false;
				}
			}
		} else if (!const_size(S, cx, it, "a dimension", &shape[d])) {
			return false;
		}
		idx[d] = sym_index_new(S->sym, nm ? nm : "_", shape[d]);
	}
	int64_t n = 1;
	for (int d = 0; d < ndims; d++) {
		n *= shape[d];
		if (n > MAX_ELEMS) {
			diag_error(S->d, dims[0]->loc, "a tensor of %lld or more elements is too large (the limit is %lld)",
			           (long long)n, (long long)MAX_ELEMS);
			return false;
		}
	}
	return true;
}

/* Lower `value` over the declared indices: named ones are bound, all are implicit. */
static SymId lower_over(Sema *S, Scope *sc, Expr *value, int rank, const IdxId *idx, const char **names)
{
	LCtx cx = { .scope = sc };
	for (int d = 0; d < rank; d++) {
		cx.implicit[d] = idx[d];
		if (names && names[d])
			push_bind(S, &cx, (Bind){ .name = names[d], .kind = B_INDEX, .idx = idx[d] }, value->loc);
	}
	cx.nimplicit = rank;
	return lower(S, &cx, value);
}

/* ---- statements ---------------------------------------------------------- */

/* Is v a decimal number as a .dam file writes one, with an optional sign
 * (-3, 0.5, .5, 1e-3)?  strtod also reads hexadecimal, "inf" and "nan". */
static bool decimal_syntax(const char *v)
{
	const char *p = v + (*v == '+' || *v == '-');
	size_t ni = strspn(p, "0123456789"), nf = 0;
	p += ni;
	if (*p == '.') {
		nf = strspn(p + 1, "0123456789");
		p += 1 + nf;
	}
	if (ni + nf == 0)
		return false;
	if (*p == 'e' || *p == 'E') {
		p += 1 + (p[1] == '+' || p[1] == '-');
		size_t ne = strspn(p, "0123456789");
		if (ne == 0)
			return false;
		p += ne;
	}
	return *p == 0;
}

/* -D name=value: a finite decimal number is a number, other text a string,
 * as documented.  Text that strtod would take for a number (0x10, inf, nan,
 * 1e400) is an error for a param the model declares as a number; for a
 * string param it is a string like any other. */
static void define_value(Sema *S, Sy *sy, const char *def, const char *v)
{
	char *end;
	double num = strtod(v, &end);
	bool decimal = decimal_syntax(v);
	if (!*v) {
		diag_error(S->d, (Loc){0, 0, 0}, "-D %s has no value", def);
	} else if (decimal && isfinite(num)) {
		sy->is_str = false;
		sy->num = num;
	} else if (!sy->is_str && decimal) {
		diag_error(S->d, (Loc){0, 0, 0}, "-D %s: the number is out of range", def);
	} else if (!sy->is_str && end != v && !*end) {
		diag_error(S->d, (Loc){0, 0, 0}, "-D %s: not a decimal number", def);
	} else {
		sy->is_str = true;
		sy->str = arena_strdup(S->a, v);
		sy->dir = ".";
	}
}

static void define_override(Sema *S, Sy *sy)
{
	for (int i = 0; i < S->o->ndefines; i++) {
		const char *def = S->o->defines[i];
		const char *eq = strchr(def, '=');
		if (!eq || (size_t)(eq - def) != strlen(sy->name) || strncmp(def, sy->name, (size_t)(eq - def)))
			continue;
		S->define_used[i] = true;
		define_value(S, sy, def, eq + 1);
	}
}

static void stmt_param(Sema *S, Scope *sc, Stmt *st)
{
	Sy *sy = declare(S, sc, SY_PARAM, st->name, st->name_loc);
	if (!sy)
		return;
	Scope *vs = sc;
	Expr *v = deref_param(&vs, st->value);
	if (v && v->kind == E_STR) {
		sy->is_str = true;
		sy->str = v->str;
		sy->dir = path_dir(S, v->loc.file);
	} else {
		LCtx cx = { .scope = sc };
		if (!const_value(S, &cx, st->value, &sy->num))
			sy->num = 0;
	}
	if (!sc->prefix[0])
		define_override(S, sy);
	MParam p = { sy->name, sy->is_str, sy->num, sy->str };
	vec_push(&S->params, p);
}

/* Where a declared tensor was written, and for a learned tensor the name of
 * its array in a checkpoint: the key of load(FILE, "KEY"), else its own name
 * (damc train writes the learned tensors under these keys). */
static void tensor_meta(Sema *S, LCtx *cx, Stmt *st, TensorId t)
{
	MTensor *mt = &S->tens.v[t];
	mt->loc = (MLoc){ st->name_loc.file, st->name_loc.line, st->name_loc.col };
	mt->key = sym_tensor_name(S->sym, t);
	Expr *v = st->value;
	if (st->kind == S_LEARN && v && v->kind == E_CALL && !strcmp(v->str, "load") && v->nargs == 2) {
		const char *k = string_arg(S, cx, v->args[1], false);
		if (k)
			mt->key = k;
	}
}

static void stmt_tensor(Sema *S, Scope *sc, Stmt *st)
{
	bool learn = st->kind == S_LEARN;
	int64_t shape[SYM_MAX_RANK];
	IdxId idx[SYM_MAX_RANK];
	const char *names[SYM_MAX_RANK];
	int rank = st->ndims < 0 ? -1 : st->ndims;
	LCtx cx = { .scope = sc };
	if (rank < 0) {
		/* tensor NAME = expr: the shape comes from the value (a load or a list). */
		if (!st->value) {
			diag_error(S->d, st->name_loc, "learn tensor '%s' needs a shape, e.g. %s[4, 3]", st->name, st->name);
			return;
		}
		TensorId src = 0;
		if (st->value->kind == E_CALL && !strcmp(st->value->str, "load"))
			src = load_tensor(S, &cx, st->value);
		else if (st->value->kind == E_LIST)
			src = list_tensor(S, &cx, st->value);
		else {
			double v;
			if (!const_value(S, &cx, st->value, &v))
				return;
			src = new_tensor(S, "scalar", MT_CONST, 0, NULL);
			S->tens.v[src].data = arena_alloc(S->a, sizeof(double));
			S->tens.v[src].data[0] = v;
		}
		if (!src)
			return;
		Sy *sy = declare(S, sc, SY_TENSOR, st->name, st->name_loc);
		if (!sy)
			return;
		TensorId t = new_tensor(S, sy->name, learn ? MT_LEARN : MT_CONST, sym_tensor_rank(S->sym, src),
		                        sym_tensor_shape(S->sym, src));
		S->tens.v[t].data = S->tens.v[src].data;
		sy->t = t;
		tensor_meta(S, &cx, st, t);
		return;
	}
	if (!decl_head(S, &cx, st->dims, rank, st->value, shape, idx, names))
		return;
	Sy *sy = declare(S, sc, SY_TENSOR, st->name, st->name_loc);
	if (!sy)
		return;
	TensorId t = new_tensor(S, sy->name, learn ? MT_LEARN : MT_CONST, rank, shape);
	sy->t = t;
	tensor_meta(S, &cx, st, t);
	MTensor *mt = &S->tens.v[t];
	if (!st->value) {
		mt->data = arena_alloc(S->a, (size_t)tensor_elems(S, t) * sizeof(double));
		return;
	}
	SymId v = lower_over(S, sc, st->value, rank, idx, names);
	if (!v)
		return;
	unsigned dp = deps(S, v);
	if (dp & DEP_STATE) {
		diag_error(S->d, st->value->loc, "tensor '%s' must not depend on neuron states", sy->name);
		return;
	}
	mt = &S->tens.v[t];
	if (dp & DEP_DYNAMIC) {
		if (learn) {
			diag_error(S->d, st->value->loc, "learn tensor '%s' must not depend on inputs", sy->name);
			return;
		}
		mt->kind = MT_DYN;
		mt->def = v;
		memcpy(mt->idx, idx, sizeof idx);
		return;
	}
	/* t[i, j] = load(...): the loaded array itself (one copy of the weights, not two) */
	double *data = rank >= 1 ? (double *)plain_access(S, v, rank, idx, shape) : NULL;
	if (!data)
		data = eval_tensor(S, v, rank, idx, shape, &st->value->loc);
	int64_t bad;
	if (!data)
		return;
	if (!all_finite(data, tensor_elems(S, t), &bad)) {
		diag_error(S->d, st->value->loc, "tensor '%s' has a non-finite value at element %lld", sy->name,
		           (long long)bad);
		return;
	}
	mt = &S->tens.v[t];
	mt->data = data;
	mt->def = v;
	memcpy(mt->idx, idx, sizeof idx);
}

/* Layer reference: ident (whole layer) or ident[lo:hi] / ident[i] (a range),
 * or ident[name] (whole layer, binding an index name). */
typedef struct LayerRef {
	int layer;
	int64_t lo, hi;
	const char *iname;     /* bound index name, if any */
	Loc loc;
} LayerRef;

static bool layer_ref(Sema *S, Scope *sc, Expr *e, LayerRef *r, bool allow_range)
{
	Expr *base = e && e->kind == E_INDEX ? e->a : e;
	Scope *bs = sc;
	Expr *b = deref_param(&bs, base);
	r->loc = e ? e->loc : (Loc){0, 0, 0};
	if (!b || b->kind != E_IDENT) {
		diag_error(S->d, r->loc, "expected a layer name");
		return false;
	}
	Sy *sy = resolve_name(S, bs, b->str);
	if (!sy) {
		diag_error(S->d, base->loc, "undefined layer '%s'", b->str);
		return false;
	}
	if (sy->kind != SY_LAYER) {
		diag_error(S->d, base->loc, "'%s' is a %s, not a layer", sy->name, sy_kind_names[sy->kind]);
		return false;
	}
	r->layer = sy->index;
	int64_t n = S->layers.v[sy->index].n;
	r->lo = 0;
	r->hi = n;
	r->iname = NULL;
	if (e->kind != E_INDEX)
		return true;
	if (e->nargs != 1) {
		diag_error(S->d, e->loc, "layer '%s' is a vector; use one index or slice", sy->name);
		return false;
	}
	Expr *it = e->args[0];
	LCtx cx = { .scope = sc };
	if (it->kind == E_IDENT && !resolve_name(S, sc, it->str) && scope_param(sc, it->str) < 0) {
		r->iname = it->str;
		return true;
	}
	if (!allow_range) {
		diag_error(S->d, it->loc, "expected an index name for layer '%s'", sy->name);
		return false;
	}
	double lo = 0, hi = (double)n;
	if (it->kind == E_RANGE) {
		if (it->a && !const_value(S, &cx, it->a, &lo))
			return false;
		if (it->b && !const_value(S, &cx, it->b, &hi))
			return false;
	} else {
		if (!const_value(S, &cx, it, &lo))
			return false;
		hi = lo + 1;
	}
	if (lo != floor(lo) || hi != floor(hi) || lo < 0 || hi > (double)n || lo >= hi) {
		diag_error(S->d, it->loc, "range %g:%g is out of bounds for layer '%s' of %lld neurons", lo, hi,
		           sy->name, (long long)n);
		return false;
	}
	r->lo = (int64_t)lo;
	r->hi = (int64_t)hi;
	return true;
}

/* Value of a layer segment [lo, hi) as an expression in the layer index j. */
static SymId seg_value(Sema *S, Scope *sc, const LayerRef *r, Expr *value, bool allow_state)
{
	MLayer *L = &S->layers.v[r->layer];
	IdxId s = sym_index_new(S->sym, r->iname ? r->iname : "s", r->hi - r->lo);
	const char *names[1] = { r->iname };
	SymId v = lower_over(S, sc, value, 1, &s, names);
	if (!v)
		return 0;
	if (!allow_state && (deps(S, v) & DEP_STATE)) {
		diag_error(S->d, value->loc, "this value must not depend on neuron states");
		return 0;
	}
	SymId jj = sym_add(S->sym, sym_idx(S->sym, L->j), sym_const(S->sym, (double)-r->lo));
	return sym_subst_idx(S->sym, v, s, jj);
}

/* Turn a constant per-neuron expression into a tensor so backends read data. */
static SymId fold_vector(Sema *S, const char *name, SymId v, IdxId j, int64_t n)
{
	unsigned dp = deps(S, v);
	if (dp & (DEP_DYNAMIC | DEP_STATE))
		return v;
	const SymNode *nd = sym_node(S->sym, v);
	if (!nd->nfree)
		return v;   /* a scalar broadcast: nothing to fold */
	if (nd->kind == SYM_TENSOR && nd->nkids == 1 && sym_node(S->sym, nd->kids[0])->kind == SYM_IDX)
		return v;   /* already a vector, e.g. bias = a */
	double *data = eval_tensor(S, v, 1, &j, &n, NULL);
	if (!data)
		return v;
	TensorId t = new_tensor(S, name, MT_CONST, 1, &n);
	S->tens.v[t].data = data;
	S->tens.v[t].def = v;
	S->tens.v[t].idx[0] = j;
	SymId a = sym_idx(S->sym, j);
	return sym_at(S->sym, t, 1, &a);
}

static void set_bias(Sema *S, Scope *sc, int layer, Expr *target, Expr *value)
{
	LayerRef r = { .layer = layer, .lo = 0, .hi = S->layers.v[layer].n };
	if (target && !layer_ref(S, sc, target, &r, false))
		return;
	MLayer *L = &S->layers.v[r.layer];
	if (S->segs.v[r.layer].has_bias) {
		diag_error(S->d, value->loc, "layer '%s' already has a bias", L->name);
		return;
	}
	SymId v = seg_value(S, sc, &r, value, false);
	if (!v)
		return;
	L = &S->layers.v[r.layer];
	S->segs.v[r.layer].has_bias = true;
	L->bias = fold_vector(S, arena_printf(S->a, "bias_%s", L->name), v, L->j, L->n);
}

static void add_seg(Sema *S, Scope *sc, int layer, Expr *target, Expr *value, bool clamp)
{
	LayerRef r = { .layer = layer, .lo = 0, .hi = layer >= 0 ? S->layers.v[layer].n : 0 };
	if (target && !layer_ref(S, sc, target, &r, true))
		return;
	SymId v = seg_value(S, sc, &r, value, false);
	if (!v)
		return;
	MSeg seg = { r.lo, r.hi, v };
	if (clamp)
		vec_push(&S->segs.v[r.layer].clamp, seg);
	else
		vec_push(&S->segs.v[r.layer].init, seg);
}

/* Instantiate a Lagrangian for layer L: L's state tensor replaces the formal. */
static SymId instantiate_lagrangian(Sema *S, Scope *sc, MLayer *L, Expr *type, const char **lname)
{
	const char *fname = type->kind == E_CALL ? type->str : type->kind == E_IDENT ? type->str : NULL;
	if (!fname) {
		diag_error(S->d, type->loc, "expected a Lagrangian name, like identity or softmax(beta)");
		return 0;
	}
	Sy *sy = resolve_name(S, sc, fname);
	if (!sy) {
		diag_error(S->d, type->loc, "undefined Lagrangian '%s'", fname);
		return 0;
	}
	if (sy->kind != SY_LAGR) {
		diag_error(S->d, type->loc, "'%s' is a %s, not a Lagrangian", fname, sy_kind_names[sy->kind]);
		return 0;
	}
	Stmt *def = sy->def;
	int nformal = def->nsemi < 0 ? def->nparams : def->nsemi;
	int nparams = def->nparams - nformal;
	int nargs = type->kind == E_CALL ? type->nargs : 0;
	if (nformal != 1) {
		diag_error(S->d, type->loc, "Lagrangian '%s' must take exactly one state argument", fname);
		return 0;
	}
	if (nargs != nparams) {
		diag_error(S->d, type->loc, "Lagrangian '%s' takes %d parameter%s, got %d", fname, nparams,
		           nparams == 1 ? "" : "s", nargs);
		diag_note(S->d, def->name_loc, "'%s' is defined here", fname);
		return 0;
	}
	LCtx cx = { .scope = sc };
	char *desc = arena_printf(S->a, "%s", fname);
	Bind binds[MAX_BINDS];
	int nb = 0;
	binds[nb++] = (Bind){ .name = def->params[0], .kind = B_TENSOR, .t = L->x };
	for (int i = 0; i < nparams && nb < MAX_BINDS; i++) {
		double v;
		if (!const_value(S, &cx, type->args[i], &v))
			return 0;
		binds[nb++] = (Bind){ .name = def->params[nformal + i], .kind = B_CONST, .val = v };
		desc = arena_printf(S->a, "%s%s%s=%g", desc, i ? ", " : "(", def->params[nformal + i], v);
	}
	if (nparams)
		desc = arena_printf(S->a, "%s)", desc);
	*lname = desc;
	Scope top = { .prefix = "" };
	LCtx lx = { .scope = &top, .in_lagrangian = true };
	for (int i = 0; i < nb; i++)
		lx.binds[lx.nb++] = binds[i];
	SymId Lx = lower(S, &lx, def->value);
	if (!Lx)
		return 0;
	const SymNode *nd = sym_node(S->sym, Lx);
	if (nd->nfree) {
		diag_error(S->d, type->loc, "Lagrangian '%s' is not a scalar: it has the free index '%s'", fname,
		           sym_index_name(S->sym, nd->free[0]));
		diag_note(S->d, def->value->loc, "a Lagrangian must reduce over its neurons, e.g. sum(i, ...)");
		return 0;
	}
	if (deps(S, Lx) & ((1u << MT_INPUT) | (1u << MT_DYN))) {
		diag_error(S->d, type->loc, "Lagrangian '%s' must not depend on inputs", fname);
		return 0;
	}
	for (uint32_t t = 1; t < S->tens.n; t++) {
		MTensorKind k = S->tens.v[t].kind;
		if ((k == MT_STATE || k == MT_ACT) && t != L->x && sym_uses_tensor(S->sym, Lx, t)) {
			diag_error(S->d, type->loc, "Lagrangian '%s' may depend only on its own layer's state, not on '%s'",
			           fname, sym_tensor_name(S->sym, t));
			return 0;
		}
	}
	if (!sym_uses_tensor(S->sym, Lx, L->x)) {
		diag_error(S->d, type->loc, "Lagrangian '%s' does not depend on its argument '%s'", fname, def->params[0]);
		return 0;
	}
	return Lx;
}

static void stmt_layer(Sema *S, Scope *sc, Stmt *st)
{
	LCtx cx = { .scope = sc };
	if (st->ndims != 1) {
		diag_error(S->d, st->name_loc, "layer '%s' needs a size, e.g. layer %s[4]", st->name, st->name);
		return;
	}
	int64_t n;
	if (!const_size(S, &cx, st->dims[0], "the size of a layer", &n))
		return;
	Sy *sy = declare(S, sc, SY_LAYER, st->name, st->name_loc);
	if (!sy)
		return;
	MLayer L = {0};
	L.name = sy->name;
	L.n = n;
	L.tau = 1.0;
	L.x = new_tensor(S, sy->name, MT_STATE, 1, &n);
	L.g = new_tensor(S, arena_printf(S->a, "g_%s", sy->name), MT_ACT, 1, &n);
	L.j = sym_index_new(S->sym, "j", n);
	L.k = sym_index_new(S->sym, "k", n);
	L.bias = sym_const(S->sym, 0);
	sy->index = (int)S->layers.n;
	S->tens.v[L.x].layer = sy->index;
	S->tens.v[L.g].layer = sy->index;
	vec_push(&S->layers, L);
	LayerSegs ls = {0};
	vec_push(&S->segs, ls);
	vec_push(&S->layer_locs, sc->prefix[0] ? sc->use_loc : st->name_loc);
	MLayer *lp = &S->layers.v[sy->index];
	lp->L = instantiate_lagrangian(S, sc, lp, st->type, &lp->lagr_name);
	for (int i = 0; i < st->nattrs; i++) {
		Attr *at = &st->attrs[i];
		lp = &S->layers.v[sy->index];
		if (!strcmp(at->name, "tau")) {
			double tau;
			if (!const_value(S, &cx, at->value, &tau))
				continue;
			if (!(tau > 0)) {
				diag_error(S->d, at->value->loc, "tau of layer '%s' must be positive, got %g", lp->name, tau);
				continue;
			}
			lp->tau = tau;
		} else if (!strcmp(at->name, "bias")) {
			set_bias(S, sc, sy->index, NULL, at->value);
		} else if (!strcmp(at->name, "init")) {
			add_seg(S, sc, sy->index, NULL, at->value, false);
		} else {
			diag_error(S->d, at->loc, "unknown layer attribute '%s' (expected tau, bias or init)", at->name);
		}
	}
}

static void stmt_weights(Sema *S, Scope *sc, Stmt *st)
{
	LayerRef ra, rb;
	if (!layer_ref(S, sc, st->lhs, &ra, false) || !layer_ref(S, sc, st->rhs, &rb, false))
		return;
	if (!st->value) {
		diag_error(S->d, st->name_loc, "weight block '%s' needs a value: weights %s : ... = MATRIX", st->name,
		           st->name);
		return;
	}
	int64_t shape[2] = { S->layers.v[ra.layer].n, S->layers.v[rb.layer].n };
	if (shape_elems(2, shape) < 0) {
		/* Both sides are layers of at most MAX_SIZE neurons: the product fits. */
		diag_error(S->d, st->name_loc, "weight block '%s' would have %lld entries (%lld x %lld), more than the "
		           "limit of %lld", qualify(S, sc, st->name), (long long)(shape[0] * shape[1]),
		           (long long)shape[0], (long long)shape[1], (long long)MAX_ELEMS);
		return;
	}
	IdxId idx[2] = { sym_index_new(S->sym, ra.iname ? ra.iname : "r", shape[0]),
	                 sym_index_new(S->sym, rb.iname ? rb.iname : "c", shape[1]) };
	if (ra.iname && rb.iname && ra.iname == rb.iname) {
		diag_error(S->d, st->rhs->loc, "the two sides of weight block '%s' need different index names", st->name);
		return;
	}
	const char *names[2] = { ra.iname, rb.iname };
	SymId v = lower_over(S, sc, st->value, 2, idx, names);
	if (!v)
		return;
	unsigned dp = deps(S, v);
	if (dp & DEP_STATE) {
		diag_error(S->d, st->value->loc, "weights of '%s' must not depend on neuron states", st->name);
		return;
	}
	Sy *sy = declare(S, sc, SY_WEIGHTS, st->name, st->name_loc);
	if (!sy)
		return;
	for (int i = 0; i < st->nattrs; i++)
		diag_error(S->d, st->attrs[i].loc, "unknown weight block attribute '%s'", st->attrs[i].name);
	TensorId t = new_tensor(S, sy->name, MT_CONST, 2, shape);
	sy->t = t;
	MTensor *mt = &S->tens.v[t];
	mt->def = v;
	memcpy(mt->idx, idx, sizeof idx);
	bool dynamic = (dp & DEP_DYNAMIC) != 0;
	if (dynamic) {
		mt->kind = MT_DYN;
	} else {
		double *data = eval_tensor(S, v, 2, idx, shape, &st->value->loc);
		int64_t bad;
		if (!data)
			return;
		if (!all_finite(data, shape[0] * shape[1], &bad)) {
			diag_error(S->d, st->value->loc, "weight block '%s' has a non-finite value at [%lld, %lld]", sy->name,
			           (long long)(bad / shape[1]), (long long)(bad % shape[1]));
			return;
		}
		S->tens.v[t].data = data;
	}
	MBlock b = { sy->name, ra.layer, rb.layer, t, ra.layer == rb.layer, dynamic, { 0, 0, 0 } };
	sy->index = (int)S->blocks.n;
	vec_push(&S->blocks, b);
	vec_push(&S->block_locs, sc->prefix[0] ? sc->use_loc : st->name_loc);
}

static void stmt_input(Sema *S, Scope *sc, Stmt *st)
{
	LCtx cx = { .scope = sc };
	if (st->ndims != 1) {
		diag_error(S->d, st->name_loc, "input '%s' needs a size, e.g. input %s[2]", st->name, st->name);
		return;
	}
	int64_t n, vocab = 0;
	if (!const_size(S, &cx, st->dims[0], "the size of an input", &n))
		return;
	bool is_index = false;
	if (st->type) {
		if (st->type->kind != E_CALL || strcmp(st->type->str, "index") || st->type->nargs != 1) {
			diag_error(S->d, st->type->loc, "unknown input type; expected index(N) for token indices");
			return;
		}
		if (!const_size(S, &cx, st->type->args[0], "the vocabulary size", &vocab))
			return;
		is_index = true;
	}
	Sy *sy = declare(S, sc, SY_INPUT, st->name, st->name_loc);
	if (!sy)
		return;
	sy->t = new_tensor(S, sy->name, MT_INPUT, 1, &n);
	sy->index = (int)S->inputs.n;
	S->tens.v[sy->t].input = sy->index;
	MInput in = { sy->name, n, is_index, vocab, sy->t };
	vec_push(&S->inputs, in);
}

/* Rank and extent of a dimensionless output: the common shape of the bare
 * vector names in e (layers, inputs, tensors of rank 1), or scalar. */
static int64_t bare_vector_extent(Sema *S, Scope *sc, Expr *e, bool *conflict)
{
	if (!e)
		return 0;
	int64_t n = 0;
	if (e->kind == E_IDENT) {
		Scope *s2 = sc;
		Expr *x = deref_param(&s2, e);
		if (x && x->kind == E_IDENT) {
			Sy *sy = resolve_name(S, s2, x->str);
			TensorId t = sy ? name_tensor(S, sy) : 0;
			if (t && sym_tensor_rank(S->sym, t) == 1)
				return sym_tensor_shape(S->sym, t)[0];
		}
		return 0;
	}
	if (e->kind == E_INDEX || e->kind == E_CALL) {
		if (e->kind == E_CALL && (!strcmp(e->str, "sum") || !strcmp(e->str, "mean") ||
		                          !strcmp(e->str, "max") || !strcmp(e->str, "logsumexp")))
			return 0;
		if (e->kind == E_INDEX)
			return 0;
	}
	Expr *kids[2] = { e->a, e->b };
	for (int k = 0; k < 2; k++) {
		int64_t m = bare_vector_extent(S, sc, kids[k], conflict);
		if (m && n && m != n)
			*conflict = true;
		if (m)
			n = m;
	}
	for (int i = 0; i < e->nargs; i++) {
		int64_t m = bare_vector_extent(S, sc, e->args[i], conflict);
		if (m && n && m != n)
			*conflict = true;
		if (m)
			n = m;
	}
	return n;
}

static void stmt_output(Sema *S, Scope *sc, Stmt *st)
{
	MOutput o = {0};
	IdxId idx[SYM_MAX_RANK];
	int64_t shape[SYM_MAX_RANK];
	const char *names[SYM_MAX_RANK] = {0};
	SymId v;
	if (st->ndims > 1) {
		diag_error(S->d, st->dims[1]->loc, "outputs are scalars or vectors");
		return;
	}
	if (st->ndims == 1) {
		LCtx cx = { .scope = sc };
		if (!decl_head(S, &cx, st->dims, 1, st->value, shape, idx, names))
			return;
		v = lower_over(S, sc, st->value, 1, idx, names);
		o.rank = 1;
		o.n = shape[0];
		o.i = idx[0];
	} else {
		bool conflict = false;
		int64_t n = bare_vector_extent(S, sc, st->value, &conflict);
		if (conflict) {
			diag_error(S->d, st->value->loc, "output '%s' combines vectors of different sizes", st->name);
			return;
		}
		if (n) {
			idx[0] = sym_index_new(S->sym, "i", n);
			v = lower_over(S, sc, st->value, 1, idx, NULL);
			o.rank = 1;
			o.n = n;
			o.i = idx[0];
		} else {
			v = lower_over(S, sc, st->value, 0, idx, NULL);
			o.n = 1;
		}
	}
	if (!v)
		return;
	Sy *sy = declare(S, sc, SY_OUTPUT, st->name, st->name_loc);
	if (!sy)
		return;
	o.name = sy->name;
	o.expr = v;
	sy->index = (int)S->outputs.n;
	vec_push(&S->outputs, o);
}

static bool import_file(Sema *S, Stmt *st);

static void stmt_use(Sema *S, Scope *sc, Stmt *st)
{
	Expr *call = st->value;
	if (!call || call->kind != E_CALL) {
		diag_error(S->d, st->loc, "expected a block instance: use NAME = BLOCK(arguments)");
		return;
	}
	Sy *sy = resolve_name(S, sc, call->str);
	if (!sy) {
		diag_error(S->d, call->loc, "undefined block '%s'", call->str);
		return;
	}
	if (sy->kind != SY_BLOCK) {
		diag_error(S->d, call->loc, "'%s' is a %s, not a block", call->str, sy_kind_names[sy->kind]);
		return;
	}
	Stmt *blk = sy->def;
	if (call->nargs != blk->nparams) {
		diag_error(S->d, call->loc, "block '%s' takes %d argument%s, got %d", call->str, blk->nparams,
		           blk->nparams == 1 ? "" : "s", call->nargs);
		diag_note(S->d, blk->name_loc, "'%s' is defined here", call->str);
		return;
	}
	if (sc->depth + 1 >= MAX_DEPTH) {
		diag_error(S->d, st->loc, "blocks nested too deeply (recursive block?)");
		return;
	}
	const char *q = qualify(S, sc, st->name);
	if (sema_lookup(S, q)) {
		diag_error(S->d, st->name_loc, "'%s' is already declared", q);
		return;
	}
	Sy *inst = declare(S, sc, SY_BLOCK, st->name, st->name_loc);
	(void)inst;
	Scope inner = {
		.prefix = arena_printf(S->a, "%s.", q),
		.block = blk,
		.args = call->args,
		.nargs = call->nargs,
		.caller = sc,
		.depth = sc->depth + 1,
		.use_loc = sc->prefix[0] ? sc->use_loc : st->name_loc,
	};
	sema_stmts(S, &inner, blk->body, blk->nbody);
}

static int layer_of_target(Sema *S, Scope *sc, Expr *target)
{
	LayerRef r;
	if (!layer_ref(S, sc, target, &r, true))
		return -1;
	return r.layer;
}

static void sema_stmt(Sema *S, Scope *sc, Stmt *st)
{
	switch (st->kind) {
	case S_IMPORT:
		if (sc->prefix[0])
			diag_error(S->d, st->loc, "import is only allowed at the top level of a file");
		else
			import_file(S, st);
		break;
	case S_PARAM:
		stmt_param(S, sc, st);
		break;
	case S_TENSOR:
	case S_LEARN:
		stmt_tensor(S, sc, st);
		break;
	case S_LAGRANGIAN: {
		Sy *sy = declare(S, sc, SY_LAGR, st->name, st->name_loc);
		if (sy)
			sy->def = st;
		break;
	}
	case S_BLOCK: {
		Sy *sy = declare(S, sc, SY_BLOCK, st->name, st->name_loc);
		if (sy)
			sy->def = st;
		break;
	}
	case S_LAYER:
		stmt_layer(S, sc, st);
		break;
	case S_WEIGHTS:
		stmt_weights(S, sc, st);
		break;
	case S_BIAS: {
		int l = layer_of_target(S, sc, st->target);
		if (l >= 0)
			set_bias(S, sc, l, st->target, st->value);
		break;
	}
	case S_INIT:
	case S_CLAMP: {
		int l = layer_of_target(S, sc, st->target);
		if (l >= 0)
			add_seg(S, sc, l, st->target, st->value, st->kind == S_CLAMP);
		break;
	}
	case S_INPUT:
		stmt_input(S, sc, st);
		break;
	case S_OUTPUT:
		stmt_output(S, sc, st);
		break;
	case S_USE:
		stmt_use(S, sc, st);
		break;
	}
}

static void sema_stmts(Sema *S, Scope *sc, Stmt **stmts, int n)
{
	for (int i = 0; i < n; i++)
		if (stmts[i])
			sema_stmt(S, sc, stmts[i]);
}

/* ---- files and imports ----------------------------------------------------- */

static void sema_file(Sema *S, uint32_t file, bool main_file);

static bool import_file(Sema *S, Stmt *st)
{
	const char *p = st->str;
	const char *path;
	if (!p || !p[0]) {
		diag_error(S->d, st->loc, "empty import path");
		return false;
	}
	size_t len = strlen(p);
	bool relative = strchr(p, '/') || (len > 4 && !strcmp(p + len - 4, ".dam"));
	if (relative) {
		const char *dir = path_dir(S, st->file);
		path = p[0] == '/' || !strcmp(dir, ".") ? p : arena_printf(S->a, "%s/%s", dir, p);
	} else {
		const char *dir = S->o->stdlib_dir;
		if (!dir || !dir[0])
			dir = getenv("DAMC_STDLIB");
#ifdef DAM_STDLIB_DIR
		if (!dir || !dir[0])
			dir = DAM_STDLIB_DIR;
#endif
		if (!dir || !dir[0])
			dir = "stdlib";
		path = arena_printf(S->a, "%s/%s.dam", dir, p);
	}
	uint32_t f = diag_add_file(S->d, path);
	if (!f) {
		diag_error(S->d, st->loc, "cannot read '%s': %s", path, strerror(errno));
		return false;
	}
	for (int i = 0; i < S->nimport; i++) {
		if (S->import_stack[i] == f) {
			diag_error(S->d, st->loc, "import cycle: '%s' imports itself through this chain",
			           diag_source(S->d, f)->path);
			for (int k = i + 1; k < S->nimport; k++)
				diag_note(S->d, S->import_locs[k], "'%s' is imported here",
				          diag_source(S->d, S->import_stack[k])->path);
			return false;
		}
	}
	for (size_t i = 0; i < S->imported.n; i++)
		if (S->imported.v[i] == f)
			return true;
	if (S->nimport >= MAX_DEPTH) {
		diag_error(S->d, st->loc, "imports nested too deeply");
		return false;
	}
	S->import_locs[S->nimport] = st->loc;
	sema_file(S, f, false);
	return true;
}

static void sema_file(Sema *S, uint32_t file, bool main_file)
{
	S->import_stack[S->nimport++] = file;
	int before = diag_errors(S->d);
	Module *mod = parse_module(S->d, S->in, file);
	if (main_file && S->o->dump_ast)
		ast_print(mod, S->o->dump_ast);
	/* After a syntax error the statements that failed are missing: checking
	 * the rest would only report cascades (undefined names). */
	if (diag_errors(S->d) > before)
		S->syntax_errors = true;
	Scope top = { .prefix = "" };
	if (!S->syntax_errors)
		sema_stmts(S, &top, mod->stmts, mod->nstmts);
	S->nimport--;
	vec_push(&S->imported, file);
}

static void finish_layers(Sema *S)
{
	for (size_t l = 0; l < S->layers.n; l++) {
		MLayer *L = &S->layers.v[l];
		LayerSegs *sg = &S->segs.v[l];
		L->ninit = (int)sg->init.n;
		L->init = arena_alloc(S->a, (sg->init.n + 1) * sizeof *L->init);
		if (sg->init.n)
			memcpy(L->init, sg->init.v, sg->init.n * sizeof *L->init);
		L->nclamp = (int)sg->clamp.n;
		L->clamp = arena_alloc(S->a, (sg->clamp.n + 1) * sizeof *L->clamp);
		if (sg->clamp.n)
			memcpy(L->clamp, sg->clamp.v, sg->clamp.n * sizeof *L->clamp);
		vec_free(&sg->init);
		vec_free(&sg->clamp);
	}
}

#define MOVE_VEC(dst, cnt, vec) do { \
	(cnt) = (int)(vec).n; \
	(dst) = arena_alloc(S->a, ((vec).n + 1) * sizeof *(vec).v); \
	if ((vec).n) memcpy((dst), (vec).v, (vec).n * sizeof *(vec).v); \
	vec_free(&(vec)); \
} while (0)

Model *sema_program(const char *path, const SemaOptions *o, Diags *d, Arena *a, Loc **layer_locs,
                    Loc **block_locs)
{
	Sema S0 = {0}, *S = &S0;
	S->a = a;
	S->d = d;
	S->o = o;
	S->in = intern_new(a);
	S->sym = sym_new(a);
	S->m = arena_alloc(a, sizeof *S->m);
	S->define_used = arena_alloc(a, (size_t)(o->ndefines + 1) * sizeof *S->define_used);
	MTensor zero = {0};
	vec_push(&S->tens, zero);
	for (int i = 0; i < o->ndefines; i++) {
		if (!strchr(o->defines[i], '=') || o->defines[i][0] == '=')
			diag_error(d, (Loc){0, 0, 0}, "-D expects name=value, got '%s'", o->defines[i]);
	}
	uint32_t f = diag_add_file(d, path);
	if (!f) {
		diag_error(d, (Loc){0, 0, 0}, "cannot read '%s': %s", path, strerror(errno));
		vec_free(&S->tens);
		return NULL;
	}
	sema_file(S, f, true);
	/* A file of params, tensors, Lagrangians or blocks only is a library; one
	 * that declares nothing at all (empty, or only comments) is probably a
	 * mistake. */
	if (!diag_errors(d) && S->tabn == 0)
		diag_warning(d, (Loc){ f, 1, 1 }, "'%s' declares nothing", diag_source(d, f)->path);
	for (int i = 0; i < o->ndefines; i++) {
		const char *eq = strchr(o->defines[i], '=');
		if (eq && eq != o->defines[i] && !S->define_used[i])
			diag_error(d, (Loc){0, 0, 0}, "-D %.*s: the model has no param '%.*s'", (int)(eq - o->defines[i]),
			           o->defines[i], (int)(eq - o->defines[i]), o->defines[i]);
	}
	finish_layers(S);
	Model *m = S->m;
	m->arena = a;
	m->sym = S->sym;
	m->path = diag_source(d, f)->path;
	while (S->tens.n < sym_tensor_count(S->sym))
		vec_push(&S->tens, zero);
	m->ntensors = (uint32_t)S->tens.n;
	int nt;
	MOVE_VEC(m->tensors, nt, S->tens);
	(void)nt;
	MOVE_VEC(m->layers, m->nlayers, S->layers);
	MOVE_VEC(m->blocks, m->nblocks, S->blocks);
	MOVE_VEC(m->inputs, m->ninputs, S->inputs);
	MOVE_VEC(m->outputs, m->noutputs, S->outputs);
	MOVE_VEC(m->params, m->nparams, S->params);
	int nlocs;
	MOVE_VEC(*layer_locs, nlocs, S->layer_locs);
	MOVE_VEC(*block_locs, nlocs, S->block_locs);
	(void)nlocs;
	vec_free(&S->segs);
	vec_free(&S->imported);
	/* A file without layers is a library of definitions (like the stdlib):
	 * valid to check, nothing to simulate (damc run says so). */
	return m;
}
