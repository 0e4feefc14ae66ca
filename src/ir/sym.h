/* sym.h - the symbolic expression language shared by the front end and backends.
 *
 * Expressions form a hash-consed DAG stored in one SymCtx: building the same
 * expression twice yields the same SymId, so common subexpressions are shared
 * for free by every backend (STYLE.md, QBE gvn.c).  Node ids are small
 * integers handed out in creation order, so dumps are stable.
 *
 * Arrays stay arrays: an expression may have *free index variables*
 * (IdxId), e.g. the softmax activation  g[j] = exp(beta*x[j] - lse)  has the
 * free index j; reductions (sum, logsumexp, max) bind an index variable over
 * its extent.  Nothing here ever expands per neuron, so the size of the DAG is
 * independent of layer sizes.
 *
 * Tensors (weights, layer states, activations, inputs, ...) are registered in
 * the context by name, rank and shape; what a tensor *is* (constant data,
 * runtime state, ...) is the Model IR's business (model.h), which keeps a
 * parallel table indexed by the same tensor id.
 *
 * Constructors simplify as they build (constant folding, flattening and
 * sorting of + and *, x*0, x*1, x^1, x+0, exp(log x), ...), so the canonical
 * form of an expression is what the constructors return.
 */
#ifndef DAM_SYM_H
#define DAM_SYM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"

typedef uint32_t SymId;     /* 0 means "no expression" */
typedef uint32_t IdxId;     /* index variable; 0 means none */
typedef uint32_t TensorId;  /* tensor; 0 means none */

/* Node kinds: X(name, printable) */
#define SYM_KINDS(X) \
	X(CONST,  "const")   /* val */ \
	X(IDX,    "idx")     /* the integer value of index variable aux */ \
	X(TENSOR, "tensor")  /* tensor aux indexed by kids[0..rank) */ \
	X(ADD,    "add")     /* n-ary sum of kids (sorted by id) */ \
	X(MUL,    "mul")     /* n-ary product of kids (sorted by id) */ \
	X(DIV,    "div")     /* kids[0] / kids[1] */ \
	X(POW,    "pow")     /* kids[0] ^ kids[1] */ \
	X(FN,     "fn")      /* elementwise function fn of kids[0] */ \
	X(SUM,    "sum")     /* sum over index aux of kids[0] */ \
	X(LSE,    "logsumexp") /* log sum exp over index aux of kids[0] (stable) */ \
	X(MAX,    "max")     /* max over index aux of kids[0] */ \
	X(DELTA,  "delta")   /* 1 if kids[0] == kids[1] (index expressions) else 0 */ \
	X(EQ,     "eq")      /* 1 if kids[0] == kids[1] (reals) else 0 */

typedef enum {
#define X(n, s) SYM_##n,
	SYM_KINDS(X)
#undef X
	SYM_NKINDS
} SymKind;

/* Elementwise functions: X(name, printable) */
#define SYM_FNS(X) \
	X(EXP, "exp") X(LOG, "log") X(SQRT, "sqrt") X(RELU, "relu") \
	X(SOFTPLUS, "softplus") X(SIGMOID, "sigmoid") X(TANH, "tanh") \
	X(LOGCOSH, "logcosh") X(ABS, "abs") X(STEP, "step") X(SIGN, "sign")

typedef enum {
#define X(n, s) SYMFN_##n,
	SYM_FNS(X)
#undef X
	SYMFN_COUNT
} SymFn;

extern const char *const sym_kind_names[SYM_NKINDS];
extern const char *const sym_fn_names[SYMFN_COUNT];

typedef struct SymNode {
	uint8_t kind;          /* SymKind */
	uint8_t fn;            /* SymFn, for SYM_FN */
	uint16_t nkids;
	uint32_t aux;          /* IDX: IdxId; TENSOR: TensorId; SUM/LSE/MAX: bound IdxId */
	double val;            /* CONST */
	const SymId *kids;
	const IdxId *free;     /* free index variables, sorted ascending */
	uint16_t nfree;
} SymNode;

typedef struct SymCtx SymCtx;

SymCtx *sym_new(Arena *arena);
const SymNode *sym_node(const SymCtx *c, SymId e);
uint32_t sym_count(const SymCtx *c);                 /* number of nodes + 1 */

/* Index variables range over 0..extent-1. */
IdxId       sym_index_new(SymCtx *c, const char *name, int64_t extent);
const char *sym_index_name(const SymCtx *c, IdxId i);
int64_t     sym_index_extent(const SymCtx *c, IdxId i);
uint32_t    sym_index_count(const SymCtx *c);        /* number of index vars + 1 */

/* Tensor registry (rank 0..4, row-major). */
#define SYM_MAX_RANK 4
TensorId    sym_tensor_new(SymCtx *c, const char *name, int rank, const int64_t *shape);
const char *sym_tensor_name(const SymCtx *c, TensorId t);
int         sym_tensor_rank(const SymCtx *c, TensorId t);
const int64_t *sym_tensor_shape(const SymCtx *c, TensorId t);
int64_t     sym_tensor_size(const SymCtx *c, TensorId t);  /* number of elements */
uint32_t    sym_tensor_count(const SymCtx *c);       /* number of tensors + 1 */

/* Constructors (simplifying, hash-consed). */
SymId sym_const(SymCtx *c, double v);
SymId sym_idx(SymCtx *c, IdxId i);
SymId sym_at(SymCtx *c, TensorId t, int n, const SymId *idx);   /* t[idx...] */
SymId sym_add(SymCtx *c, SymId a, SymId b);
SymId sym_sub(SymCtx *c, SymId a, SymId b);
SymId sym_mul(SymCtx *c, SymId a, SymId b);
SymId sym_div(SymCtx *c, SymId a, SymId b);
SymId sym_pow(SymCtx *c, SymId a, SymId b);
/* x^y as the JIT computes it: an integer y with |y| <= 64 by binary powering
 * (x^2 = x x, correctly rounded; pow(x, 2) is not always), otherwise pow(). */
double sym_pow_value(double x, double y);
SymId sym_neg(SymCtx *c, SymId a);
SymId sym_addn(SymCtx *c, int n, const SymId *a);
SymId sym_muln(SymCtx *c, int n, const SymId *a);
SymId sym_fn(SymCtx *c, SymFn f, SymId a);
SymId sym_reduce(SymCtx *c, SymKind k, IdxId i, SymId body);     /* SUM, LSE, MAX */
SymId sym_mean(SymCtx *c, IdxId i, SymId body);                  /* sum / extent */
SymId sym_delta(SymCtx *c, SymId a, SymId b);
SymId sym_eq(SymCtx *c, SymId a, SymId b);

bool  sym_is_const(const SymCtx *c, SymId e, double *v);
bool  sym_has_free(const SymCtx *c, SymId e, IdxId i);
bool  sym_uses_tensor(const SymCtx *c, SymId e, TensorId t);

/* Rewriting. */
SymId sym_subst_idx(SymCtx *c, SymId e, IdxId from, SymId to);
SymId sym_subst_tensor(SymCtx *c, SymId e, TensorId from, TensorId to);
/* Replace every access t[a0,a1,..] by repl with the index variables
 * params[0..rank) substituted by the access's index expressions. */
SymId sym_inline_tensor(SymCtx *c, SymId e, TensorId t, const IdxId *params, SymId repl);
SymId sym_expand(SymCtx *c, SymId e);   /* distribute * over + where a factor is a sum */

/* Exact differentiation: d e / d t[k] for a rank-1 tensor t, with k an
 * index variable over t's extent.  The result has the free indices of e plus
 * (where it matters) k; direct dependence shows up through DELTA nodes, and
 * sums over a delta are eliminated: sum(i, delta(i,k)*f(i)) = f(k). */
SymId sym_diff(SymCtx *c, SymId e, TensorId t, IdxId k);
/* The same for a tensor t of any rank r (0..SYM_MAX_RANK): d e / d t[k[0],
 * ..., k[r-1]], with k[] fresh index variables over t's extents; an access
 * t[a, b] contributes delta(a, k0) * delta(b, k1), and the sums over those
 * deltas are eliminated as for rank 1 (so d/dW[p,q] of sum(i, sum(j,
 * W[i,j] x[i] y[j])) is x[p] * y[q]).  Rank 0: k may be NULL. */
SymId sym_diff_at(SymCtx *c, SymId e, TensorId t, const IdxId *k);

/* Structured form of a matrix-valued expression m[j,k] (free indices j, k):
 *     m[j,k] = delta(j,k) * diag[j]  +  sum_r u_r[j] * v_r[k]
 * (diagonal plus low rank), as for the Hessians of elementwise, softmax and
 * layernorm Lagrangians.  Returns false when m has no such form; then the
 * caller keeps m as a dense expression. diag may be the constant 0. */
typedef struct SymStruct {
	SymId diag;
	int nterms;
	SymId *u, *v;          /* arena arrays of nterms entries */
} SymStruct;
bool sym_structure(SymCtx *c, SymId m, IdxId j, IdxId k, SymStruct *out);

/* Reference evaluator (constant folding, tests, sema checks; never the
 * simulation path).  data[t] points at tensor t's row-major values; idx[i]
 * holds the value of index variable i (the evaluator sets bound indices
 * itself).  Out-of-range tensor accesses evaluate to NaN. */
typedef struct SymEnv {
	const double *const *data;   /* indexed by TensorId */
	int64_t *idx;                /* indexed by IdxId, sym_index_count entries */
} SymEnv;
double sym_eval(const SymCtx *c, SymId e, SymEnv *env);

/* Printing: readable math, LaTeX, or (only for debugging: symbolic, with
 * SPICE functions and tensors as name[idx]) the SPICE style. */
typedef enum { SYM_TEXT, SYM_LATEX, SYM_SPICE } SymStyle;
void  sym_print(const SymCtx *c, SymId e, SymStyle style, FILE *out);
char *sym_to_string(const SymCtx *c, SymId e, SymStyle style, Arena *a);

/* SPICE printing (ngspice B-source syntax).  Free index variables take the
 * values idx[i] (indexed by IdxId, sym_index_count(c) entries; the printer
 * works on its own copy; idx may be NULL when e has no free index).
 * Reductions are expanded over their extent:
 * sum -> (a0 + a1 + ...), max -> max(a0, max(a1, ...)), logsumexp -> the
 * stable (m + ln(exp(a0 - m) + exp(a1 - m) + ...)) with m the expanded max,
 * unless hooks->reduction returns a text for that node (the caller computes
 * it elsewhere, e.g. "V(h_lse)").  Tensor accesses are printed by
 * hooks->tensor with their index expressions evaluated to integers (index
 * expressions may read tensors through hooks->data, e.g. tok[A]).  Returns an
 * arena string, or NULL (and a message in err) when a hook fails or an index
 * is out of range.  A hook's text that is not an operand by itself (e.g.
 * "-0.5") is parenthesized.  Powers: pow(x,y) is |x|^y in ngspice, so odd
 * integer exponents print as pwr(x,n); step(x) prints as (x > 0 ? 1 : 0)
 * because ngspice's u(0) is 0.5. */
typedef struct SymSpiceHooks {
	void *user;
	int (*tensor)(void *user, TensorId t, int n, const int64_t *idx, char *buf, size_t len); /* 0 ok, -1 fail */
	const char *(*reduction)(void *user, SymId e);   /* may be NULL; only asked for reductions with no free index */
	const double *const *data;                       /* per TensorId, for index expressions; may be NULL */
} SymSpiceHooks;
char *sym_to_spice(const SymCtx *c, SymId e, const int64_t *idx, const SymSpiceHooks *h,
                   Arena *a, char *err, size_t errlen);

/* Debug dump of the DAG below e, one node per line ("%id = kind ..."). */
void  sym_dump(const SymCtx *c, SymId e, FILE *out);

#endif
