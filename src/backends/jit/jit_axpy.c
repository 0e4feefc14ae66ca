/* jit_axpy.c - loop interchange of the large matrix-vector sums of a statement.
 *
 * A statement dst[j] = F(j, sum(mu, body(mu, j)), ...) folds the sum for
 * each j in source order: acc = 0; acc += body(0, j); ...  When the weights
 * are laid out row-major as T[mu, j] (the back-projections of Hopfield and
 * attention layers onto the visible layer), that inner loop walks memory
 * with the stride of a whole row, and without fast-math LLVM cannot
 * vectorise a reduction.  Interchanged, the sum becomes a column buffer
 * computed before the statement:
 *
 *     buf[j] = 0 for all j;  for mu: for j: buf[j] = buf[j] + body(mu, j)
 *
 * Every buf[j] receives the same additions in the same order as the source
 * fold, so the result is bit-identical, and the inner loop is independent
 * across j and contiguous, so the loop vectoriser turns it into SIMD code
 * with no reassociation.  Accesses whose layout puts j first (a dot product
 * sum(i, T[j, i] g[i])) are made contiguous the same way: a setup-time cache
 * of the access is flattened with j innermost (the cache of hopf_raw^2 in
 * the Analog ET), or a tensor read gets a transposed copy, a "layout cache"
 * that setup() and, after the host programs dynamic tensors, relayout()
 * compute.  The buffers live in the workspace, one per planned sum.
 */
#include <string.h>

#include "jit_internal.h"

/* Products (extent(mu) * extent(j)) from which a sum is interchanged: all of
 * them (parity_et, D = M = 16: 1416 instructions per Euler step instead of
 * 1681 under callgrind; and the code does not depend on the sizes). */
#define JIT_AXPY_MIN 1

/* Columns per block in the batched kernel: 32 strings' pieces of a buffer
 * take 16 KiB. */
#define JIT_AXPY_BLOCK 64

/* Largest transposed copy (doubles) of a tensor worth keeping. */
#define JIT_AXPY_COPY_MAX ((int64_t)1 << 22)

static bool jit_axpy_is_var(JitEmit *E, SymId k, IdxId v)
{
	const SymNode *n = sym_node(E->sym, k);
	return n->kind == SYM_IDX && n->aux == v;
}

static const IdxId *jit_axpy_order(JitEmit *E, SymId c)
{
	return E->cache_ord_set[c] ? E->cache_ord + (size_t)c * SYM_MAX_RANK : sym_node(E->sym, c)->free;
}

/* Reorders cache c so that j is flattened last (the other indices keep
 * their order). */
static void jit_axpy_order_last(JitEmit *E, SymId c, const IdxId *vars, int nv, IdxId j)
{
	IdxId *ord = E->cache_ord + (size_t)c * SYM_MAX_RANK;
	int k = 0;
	for (int i = 0; i < nv; i++)
		if (vars[i] != j)
			ord[k++] = vars[i];
	ord[k] = j;
	E->cache_ord_set[c] = 1;
}

/* A tensor read T[i0, ..., j, ...] whose indices are distinct plain index
 * variables, a state-free tensor small enough to copy transposed. */
static bool jit_axpy_copyable(JitEmit *E, SymId e, IdxId *vars)
{
	const SymNode *n = sym_node(E->sym, e);
	MTensorKind kind = E->m->tensors[n->aux].kind;
	if (kind == MT_STATE || kind == MT_ACT || kind == MT_FORMAL || n->nkids > SYM_MAX_RANK ||
	    n->nkids != n->nfree || jit_dep_state(E, e) || sym_tensor_size(E->sym, n->aux) > JIT_AXPY_COPY_MAX)
		return false;
	for (int k = 0; k < n->nkids; k++) {
		const SymNode *kn = sym_node(E->sym, n->kids[k]);
		if (kn->kind != SYM_IDX)
			return false;
		vars[k] = kn->aux;
	}
	return true;
}

/* Does every memory access of e that depends on both mu and j read
 * contiguously in j?  With P (fix), arranges the layouts that make it so:
 * cache orders and transposed copies; without, tells whether it can. */
static bool jit_axpy_layout(JitEmit *E, SymId e, IdxId mu, IdxId j, JitCachePlan *P, int depth)
{
	if (!sym_has_free(E->sym, e, mu) || !sym_has_free(E->sym, e, j))
		return true;
	const SymNode *n = sym_node(E->sym, e);
	IdxId vars[SYM_MAX_RANK];
	if (depth > 256)
		return false;
	if (E->cache_off[e] >= 0) {
		if (n->nfree > SYM_MAX_RANK)
			return false;
		if (jit_axpy_order(E, e)[n->nfree - 1] == j)
			return true;
		if (E->cache_ord_set[e])
			return false;
		if (P) {
			memcpy(vars, n->free, (size_t)n->nfree * sizeof *vars);
			jit_axpy_order_last(E, e, vars, n->nfree, j);
		}
		return true;
	}
	if (n->kind == SYM_TENSOR) {
		bool j_last = n->nkids > 0 && jit_axpy_is_var(E, n->kids[n->nkids - 1], j);
		for (int k = 0; k + 1 < n->nkids && j_last; k++)
			j_last = !sym_has_free(E->sym, n->kids[k], j);
		if (j_last)
			return true;
		if (!jit_axpy_copyable(E, e, vars))
			return false;
		if (P) {
			jit_cache_add(E, P, e, sym_tensor_size(E->sym, n->aux));
			jit_axpy_order_last(E, e, vars, n->nkids, j);
			E->relayout[e] = 1;
		}
		return true;
	}
	if (n->kind == SYM_SUM || n->kind == SYM_LSE || n->kind == SYM_MAX)
		return false;
	for (int k = 0; k < n->nkids; k++)
		if (!jit_axpy_layout(E, n->kids[k], mu, j, P, depth + 1))
			return false;
	return true;
}

/* Is s a sum over mu with the statement variable j as its only free index,
 * state-dependent and large? */
static bool jit_axpy_candidate(JitEmit *E, SymId s, IdxId j)
{
	const SymNode *n = sym_node(E->sym, s);
	if (n->kind != SYM_SUM || n->nfree != 1 || n->free[0] != j || !jit_dep_state(E, s))
		return false;
	return sym_index_extent(E->sym, n->aux) * sym_index_extent(E->sym, j) >= JIT_AXPY_MIN;
}

static void jit_axpy_plan_walk(JitEmit *E, SymId e, IdxId j, int64_t *cur, JitCachePlan *P)
{
	if (!e || E->axmark[e] == E->axstamp)
		return;
	E->axmark[e] = E->axstamp;
	const SymNode *n = sym_node(E->sym, e);
	if (E->cache_off[e] >= 0 || !jit_dep_state(E, e))
		return;
	if (E->axbuf_off[e] < 0 && jit_axpy_candidate(E, e, j) &&
	    jit_axpy_layout(E, n->kids[0], n->aux, j, NULL, 0)) {
		jit_axpy_layout(E, n->kids[0], n->aux, j, P, 0);
		E->axbuf_off[e] = *cur;
		*cur += sym_index_extent(E->sym, j);
		E->axscr_off[e] = E->axscr_size;
		E->axscr_size += sym_index_extent(E->sym, j);
		return;
	}
	for (int k = 0; k < n->nkids; k++)
		jit_axpy_plan_walk(E, n->kids[k], j, cur, P);
}

void jit_axpy_plan(JitEmit *E, SymId rhs, IdxId j, int64_t *cur, JitCachePlan *P)
{
	E->axstamp++;
	jit_axpy_plan_walk(E, rhs, j, cur, P);
}

/* The stride of the strings' scratch in the batched kernel: whole cache
 * lines plus one, so that the strings' buffers do not all fall into the same
 * sets of the L1 cache (as they would at equal offsets of page-aligned
 * workspaces). */
int64_t jit_axpy_scratch_stride(const JitEmit *E)
{
	return (E->axscr_size + 7) / 8 * 8 + 8;
}

/* Base pointer and offset of the column buffer of s: the workspace, or in
 * the batched kernel the string's scratch. */
static LLVMValueRef jit_axpy_buf(JitEmit *E, SymId s, int64_t *off)
{
	*off = E->batch ? E->axscr_off[s] : E->axbuf_off[s];
	return E->batch ? E->scr : E->ws;
}

/* ---- emission ---------------------------------------------------------------- */

/* buf[j] = 0 for j in [lo, hi); for mu: for j in [lo, hi): buf[j] += body. */
static void jit_axpy_nest(JitEmit *E, SymId s, IdxId j, int64_t lo, int64_t hi)
{
	const SymNode *n = sym_node(E->sym, s);
	IdxId mu = n->aux;
	int64_t o;
	jit_stmt_begin(E);
	jit_batch_open(E);
	LLVMValueRef base = jit_axpy_buf(E, s, &o), boff = jit_i64(E, o);
	jit_loop_open(E, 0, jit_i64(E, lo), jit_i64(E, hi), "axz");
	jit_position_top(E);
	LLVMValueRef z = LLVMBuildNSWAdd(E->b, E->lv[E->depth - 1].iv, boff, "colz");
	LLVMBuildStore(E->b, jit_f64(E, 0.0), jit_elem_ptr(E, base, z, "col"));
	jit_loop_close(E);
	jit_batch_close(E);
	/* In the batched kernel the strings loop sits between mu and j, and j
	 * runs in blocks of JIT_AXPY_BLOCK: a piece of row mu of the weights is
	 * read once for all strings of the batch, whose pieces of the buffers
	 * stay in the L1 cache over all mu (the order of the additions into
	 * each buf[j] is still mu = 0, 1, ...). */
	LLVMValueRef jlo = jit_i64(E, lo), jhi = jit_i64(E, hi);
	if (E->batch) {
		int64_t nblk = (hi - lo + JIT_AXPY_BLOCK - 1) / JIT_AXPY_BLOCK;
		jit_loop_open(E, 0, jit_i64(E, 0), jit_i64(E, nblk), "jblk");
		jit_position_top(E);
		LLVMValueRef blk = E->lv[E->depth - 1].iv;
		jlo = LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, blk, jit_i64(E, JIT_AXPY_BLOCK), "jb"), jlo, "jlo");
		LLVMValueRef jend = LLVMBuildNSWAdd(E->b, jlo, jit_i64(E, JIT_AXPY_BLOCK), "jend");
		LLVMValueRef inr = LLVMBuildICmp(E->b, LLVMIntSLT, jend, jhi, "inr");
		jhi = LLVMBuildSelect(E->b, inr, jend, jhi, "jhi");
	}
	jit_loop_open(E, mu, jit_i64(E, 0), jit_i64(E, sym_index_extent(E->sym, mu)), sym_index_name(E->sym, mu));
	jit_batch_open(E);
	jit_loop_open(E, j, jlo, jhi, sym_index_name(E->sym, j));
	if (E->failed)
		return;
	LLVMValueRef b = jit_emit(E, n->kids[0]);
	jit_position_top(E);
	LLVMValueRef at = LLVMBuildNSWAdd(E->b, E->lv[E->depth - 1].iv, boff, "colj");
	LLVMValueRef p = jit_elem_ptr(E, jit_axpy_buf(E, s, &o), at, "col");
	LLVMValueRef acc = LLVMBuildLoad2(E->b, E->f64, p, "colacc");
	LLVMBuildStore(E->b, LLVMBuildFAdd(E->b, acc, b, "acc"), p);
	jit_loop_close(E);
	jit_batch_close(E);
	jit_loop_close(E);
	if (E->batch)
		jit_loop_close(E);
}

static void jit_axpy_emit_walk(JitEmit *E, SymId e, IdxId var, int64_t lo, int64_t hi)
{
	if (!e || E->axmark[e] == E->axstamp)
		return;
	E->axmark[e] = E->axstamp;
	const SymNode *n = sym_node(E->sym, e);
	if (E->cache_off[e] >= 0 || !jit_dep_state(E, e))
		return;
	if (E->axbuf_off[e] >= 0 && n->nfree == 1 && n->free[0] == var) {
		jit_axpy_nest(E, e, var, lo, hi);
		E->axready[e] = 1;
		return;
	}
	for (int k = 0; k < n->nkids; k++)
		jit_axpy_emit_walk(E, n->kids[k], var, lo, hi);
}

void jit_axpy_emit(JitEmit *E, SymId e, IdxId var, int64_t lo, int64_t hi)
{
	E->axstamp++;
	jit_axpy_emit_walk(E, e, var, lo, hi);
	jit_stmt_begin(E);
}

static void jit_axpy_done_walk(JitEmit *E, SymId e)
{
	if (!e || E->axmark[e] == E->axstamp)
		return;
	E->axmark[e] = E->axstamp;
	E->axready[e] = 0;
	const SymNode *n = sym_node(E->sym, e);
	for (int k = 0; k < n->nkids; k++)
		jit_axpy_done_walk(E, n->kids[k]);
}

void jit_axpy_done(JitEmit *E, SymId e)
{
	E->axstamp++;
	jit_axpy_done_walk(E, e);
}

LLVMValueRef jit_axpy_load(JitEmit *E, SymId e, int level)
{
	const SymNode *n = sym_node(E->sym, e);
	int64_t o;
	jit_at_level(E, level);
	LLVMValueRef base = jit_axpy_buf(E, e, &o);
	LLVMValueRef at = LLVMBuildNSWAdd(E->b, E->lv[E->var_level[n->free[0]]].iv, jit_i64(E, o), "colk");
	return LLVMBuildLoad2(E->b, E->f64, jit_elem_ptr(E, base, at, "col"), "colsum");
}
