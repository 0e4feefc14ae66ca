/* sym_impl.h - internals shared by the sym_*.c files (not for other modules).
 *
 * The SymCtx layout, the raw hash-consing constructor sym_mk (no
 * simplification: callers must pass canonical kids) and a few helpers used
 * by the rewriting, differentiation, evaluation and printing files.
 */
#ifndef DAM_SYM_IMPL_H
#define DAM_SYM_IMPL_H

#include "sym.h"

#define SYM_MAX_FREE 64          /* free index variables of one node */

typedef struct SymIndex {
	const char *name;
	int64_t extent;
} SymIndex;

typedef struct SymTensor {
	const char *name;
	int rank;
	int64_t shape[SYM_MAX_RANK];
} SymTensor;

struct SymCtx {
	Arena *arena;
	SymNode *nodes;              /* [1, nnodes); arena, grows by doubling */
	uint32_t nnodes, capnodes;
	uint32_t *htab;              /* open addressing over node ids, 0 = empty */
	uint32_t hcap;               /* power of two, kept > 2 * nnodes */
	SymIndex *idx;
	uint32_t nidx, capidx;
	SymTensor *tens;
	uint32_t ntens, captens;
};

typedef VEC(SymId) SymVec;

SymId  sym_mk(SymCtx *c, SymKind kind, int fn, uint32_t aux, double val, int n, const SymId *kids);
double sym_apply_fn(SymFn f, double x);
void   sym_sort_ids(SymId *a, int n);
bool   sym_is_fn(const SymCtx *c, SymId e, SymFn f);
SymId  sym_coef_rest(SymCtx *c, SymId e, double *coef);
SymId  sym_distribute(SymCtx *c, SymId f, SymId sum);
bool   sym_alpha_eq(const SymCtx *c, SymId x, SymId y);
SymId  sym_rebuild(SymCtx *c, const SymNode *n, const SymId *kids);
SymId  sym_subst_idxn(SymCtx *c, SymId e, int n, const IdxId *from, const SymId *to);

#endif
