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

/* A transposed copy already planned that holds the same values in the same
 * order as the copy of tensor read e with j last would: a read of the same
 * tensor, j's axis last, the same extent on every axis (the attention's
 * xi[j, i] in a right-hand side and xi[mu, i] in the energy), or 0. */
static SymId jit_axpy_same_copy(JitEmit *E, const JitCachePlan *P, SymId e, IdxId j)
{
	const SymNode *n = sym_node(E->sym, e);
	int kj = 0;
	while (kj < n->nkids && !jit_axpy_is_var(E, n->kids[kj], j))
		kj++;
	for (int i = 0; i < P->n; i++) {
		SymId c = P->list[i];
		const SymNode *cn = sym_node(E->sym, c);
		if (!E->relayout[c] || cn->kind != SYM_TENSOR || cn->aux != n->aux || cn->nkids != n->nkids ||
		    !E->cache_ord_set[c] || kj == n->nkids)
			continue;
		bool same = jit_axpy_is_var(E, cn->kids[kj], E->cache_ord[(size_t)c * SYM_MAX_RANK + cn->nfree - 1]);
		for (int k = 0; k < n->nkids && same; k++)
			same = sym_index_extent(E->sym, sym_node(E->sym, n->kids[k])->aux) ==
			       sym_index_extent(E->sym, sym_node(E->sym, cn->kids[k])->aux);
		if (same)
			return c;
	}
	return 0;
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
			SymId same = jit_axpy_same_copy(E, P, e, j);
			if (same) {            /* the same copy under other index names: share it */
				E->cache_off[e] = E->cache_off[same];
				E->cache_sb[e] = E->cache_sb[same];
			} else {
				jit_cache_add(E, P, e, sym_tensor_size(E->sym, n->aux));
				E->relayout[e] = 1;
			}
			jit_axpy_order_last(E, e, vars, n->nkids, j);
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

static bool jit_axpy_batch_only(JitEmit *E, SymId s);
static bool jit_axpy_keyed(JitEmit *E, SymId s, IdxId j, SymId *a, SymId *g, TensorId *key);
static bool jit_axpy_blockable(JitEmit *E, SymId s, SymId *a, SymId *g);
static bool jit_axpy_matrix(JitEmit *E, SymId s, SymId a, LLVMValueRef *base, int64_t *off, int64_t *stride);
static int64_t jit_axpy_nblocks(const JitEmit *E, SymId s);

static void jit_axpy_plan_walk(JitEmit *E, SymId e, IdxId j, int64_t *cur, JitCachePlan *P, bool bonly)
{
	if (!e || E->axmark[e] == E->axstamp)
		return;
	E->axmark[e] = E->axstamp;
	const SymNode *n = sym_node(E->sym, e);
	if (E->cache_off[e] >= 0 || !jit_dep_state(E, e))
		return;
	if (E->axbuf_off[e] < 0 && !E->axbonly[e] && jit_axpy_candidate(E, e, j)) {
		SymId ka, kg;
		TensorId key;
		bool keyed = jit_axpy_keyed(E, e, j, &ka, &kg, &key);
		bool both = keyed || jit_axpy_layout(E, n->kids[0], n->aux, j, NULL, 0);
		if (both || (bonly && E->want_batch && jit_axpy_batch_only(E, e))) {
			if (both) {
				if (!keyed)        /* keyed dots read T[j, mu] in place: no copy */
					jit_axpy_layout(E, n->kids[0], n->aux, j, P, 0);
				E->axbuf_off[e] = *cur;        /* the column buffer, then the factors g */
				*cur += sym_index_extent(E->sym, j) + sym_index_extent(E->sym, n->aux);
			} else {
				E->axbonly[e] = 1;
			}
			E->axscr_off[e] = E->axscr_size;   /* the column buffer, then the factors g (batch) */
			E->axscr_size += sym_index_extent(E->sym, j) + sym_index_extent(E->sym, n->aux);
			return;
		}
	}
	for (int k = 0; k < n->nkids; k++)
		jit_axpy_plan_walk(E, n->kids[k], j, cur, P, bonly);
}

void jit_axpy_plan(JitEmit *E, SymId rhs, IdxId j, int64_t *cur, JitCachePlan *P)
{
	E->axstamp++;
	jit_axpy_plan_walk(E, rhs, j, cur, P, true);
}

/* The reductions of a scalar expression (the energy), each reduction over mu
 * taken as a statement over mu: with P, plans the sums of its body with
 * statement variable mu (jit_axpy_plan); without, emits their column
 * buffers over the whole range of mu. */
static void jit_axpy_scalar_walk(JitEmit *E, SymId e, uint8_t *seen, int64_t *cur, JitCachePlan *P)
{
	if (!e || seen[e])
		return;
	seen[e] = 1;
	const SymNode *n = sym_node(E->sym, e);
	if (E->cache_off[e] >= 0 || !jit_dep_state(E, e) || (!P && E->axready[e]))
		return;
	if (n->kind == SYM_SUM || n->kind == SYM_LSE || n->kind == SYM_MAX) {
		IdxId mu = n->aux;
		if (P) {
			E->axstamp++;
			jit_axpy_plan_walk(E, n->kids[0], mu, cur, P, true);
		} else {
			jit_axpy_emit(E, n->kids[0], mu, 0, sym_index_extent(E->sym, mu));
		}
	}
	for (int k = 0; k < n->nkids; k++)
		jit_axpy_scalar_walk(E, n->kids[k], seen, cur, P);
}

/* What identifies the panels of a blockable sum s: the storage of its
 * matrix (a cache: its offset in the workspace or the static block; a
 * tensor: its id), the element offset and row stride there, the
 * orientation, and the panels' shape. */
static bool jit_axpy_panel_key(JitEmit *E, SymId s, int64_t key[7])
{
	SymId a, g;
	int64_t off = 0, stride = 0;
	if (!jit_axpy_blockable(E, s, &a, &g) || jit_axpy_nblocks(E, s) == 0)
		return false;
	const SymNode *n = sym_node(E->sym, s);
	jit_axpy_matrix(E, s, a, NULL, &off, &stride);
	bool cache = E->cache_off[a] >= 0;
	int64_t k[7] = { cache ? -1 : (int64_t)sym_node(E->sym, a)->aux, cache && E->cache_sb[a], off, stride,
	                 E->axbonly[s], sym_index_extent(E->sym, n->aux), jit_axpy_nblocks(E, s) };
	memcpy(key, k, sizeof k);
	return true;
}

/* A sum for the batched kernel alone in the energy reads the weights of a
 * right-hand side's (the same W^T of the Hopfield block): it uses that
 * sum's panels in the static block.  Without such panels it is not
 * interchanged after all (the plain nest would read T across its rows). */
static void jit_axpy_share_panels(JitEmit *E, const uint8_t *was_bonly)
{
	int64_t k1[7], k2[7];
	for (SymId s = 1; s < E->nsym; s++) {
		if (!E->axbonly[s] || was_bonly[s])
			continue;
		if (jit_axpy_panel_key(E, s, k1))
			for (SymId t = 1; t < E->nsym && E->axpack_off[s] < 0; t++)
				if (E->axpack_sb[t] && jit_axpy_panel_key(E, t, k2) && memcmp(k1, k2, sizeof k1) == 0) {
					E->axpack_off[s] = E->axpack_off[t];
					E->axpack_sb[s] = 1;
				}
		if (E->axpack_off[s] < 0)
			E->axbonly[s] = 0;
	}
}

void jit_axpy_plan_scalar(JitEmit *E, SymId e, int64_t *cur, JitCachePlan *P)
{
	uint8_t *seen = memset(dam_xrealloc(NULL, E->nsym), 0, E->nsym);
	uint8_t *was_bonly = memcpy(dam_xrealloc(NULL, E->nsym), E->axbonly, E->nsym);
	jit_axpy_scalar_walk(E, e, seen, cur, P);
	jit_axpy_share_panels(E, was_bonly);
	dam_free(was_bonly);
	dam_free(seen);
}

void jit_axpy_emit_scalar(JitEmit *E, SymId e)
{
	uint8_t *seen = memset(dam_xrealloc(NULL, E->nsym), 0, E->nsym);
	jit_axpy_scalar_walk(E, e, seen, NULL, NULL);
	dam_free(seen);
	jit_stmt_begin(E);
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

/* Base pointer and offset of the factors g(mu) of a register-blocked sum s
 * (after its column buffer). */
static LLVMValueRef jit_axpy_gbuf(JitEmit *E, SymId s, int64_t *off)
{
	LLVMValueRef base = jit_axpy_buf(E, s, off);
	const SymNode *n = sym_node(E->sym, s);
	*off += sym_index_extent(E->sym, n->free[0]);
	return base;
}

/* g(mu) of the body A(mu, j) * g(mu) of s into its buffer, for every string. */
static void jit_axpy_gpass(JitEmit *E, SymId s, SymId g)
{
	const SymNode *n = sym_node(E->sym, s);
	IdxId mu = n->aux;
	int64_t goff;
	jit_stmt_begin(E);
	jit_batch_open(E);
	jit_loop_open(E, mu, jit_i64(E, 0), jit_i64(E, sym_index_extent(E->sym, mu)), sym_index_name(E->sym, mu));
	if (E->failed)
		return;
	LLVMValueRef gv = jit_emit(E, g);
	jit_position_top(E);
	LLVMValueRef gb = jit_axpy_gbuf(E, s, &goff);
	LLVMValueRef gi = LLVMBuildNSWAdd(E->b, E->lv[E->depth - 1].iv, jit_i64(E, goff), "gi");
	LLVMBuildStore(E->b, gv, jit_elem_ptr(E, gb, gi, "gp"));
	jit_loop_close(E);
	jit_batch_close(E);
}

/* Products extent(mu) * extent(j) from which a sum of the form
 * sum(mu, A(mu, j) g(mu)) is accumulated with fused multiply-adds (acc =
 * fma(A, g, acc), one rounding per term) and gets the row blocks below;
 * smaller sums keep the separate multiply and add of the source-order fold
 * (bit for bit the plain C of tests/run_optlevels.t), which LLVM unrolls and
 * vectorises whole.  Every kernel (one string, the batch, its tails)
 * decides by the same rule, so a batch still gives one-by-one results bit
 * for bit. */
#define JIT_AXPY_FUSED_MIN 4096

/* Is s = sum(mu, A(mu, j) g(mu)), A depending on j and g not?  Gives A and g. */
static bool jit_axpy_split(JitEmit *E, SymId s, SymId *a, SymId *g)
{
	const SymNode *n = sym_node(E->sym, s);
	SymId k0, k1;
	if (n->nfree != 1 || !jit_product2(E, n->kids[0], &k0, &k1))
		return false;
	IdxId j = n->free[0];
	*a = sym_has_free(E->sym, k1, j) ? k1 : k0;
	*g = *a == k1 ? k0 : k1;
	return sym_has_free(E->sym, *a, j) && !sym_has_free(E->sym, *g, j);
}

/* Is s such a sum and large?  Gives A and g. */
static bool jit_axpy_fused(JitEmit *E, SymId s, SymId *a, SymId *g)
{
	const SymNode *n = sym_node(E->sym, s);
	return n->nfree == 1 &&
	       sym_index_extent(E->sym, n->aux) * sym_index_extent(E->sym, n->free[0]) >= JIT_AXPY_FUSED_MIN &&
	       jit_axpy_split(E, s, a, g);
}

/* Does s get fused multiply-adds?  Its weights' own rule, except for a sum
 * only the batched kernel interchanges: the one-string kernel folds it in
 * source order with a multiply and an add per term, and so must the batch. */
static bool jit_axpy_fma(JitEmit *E, SymId s, SymId *a, SymId *g)
{
	return jit_axpy_fused(E, s, a, g) && !E->axbonly[s];
}

/* A sum sum(mu, T[j, mu] g(mu)) with the statement variable j first, T shared
 * by the strings and too large to copy transposed (JIT_AXPY_COPY_MAX: the
 * Hopfield projection W v at D = M = 4096): the one-string kernel keeps its
 * dot products, the batched kernel packs panels of T transposed. */
static bool jit_axpy_batch_only(JitEmit *E, SymId s)
{
	const SymNode *n = sym_node(E->sym, s);
	SymId a, g;
	int64_t off, stride;
	return jit_axpy_fused(E, s, &a, &g) && jit_rows_t(E, a, n->aux, n->free[0], NULL, &off, &stride);
}

/* ---- register blocks ----------------------------------------------------------- */

/* Rows of mu per pass over a register block: 256 rows of a packed panel (2
 * vectors wide) stay in the L1 cache while the groups of strings go over it. */
#define JIT_AXPY_KBLK 128

/* Strings per register block and vectors of columns per block (sb x nv
 * accumulators, nv vectors of A and one broadcast in registers). */
static int jit_axpy_sb(const JitEmit *E) { return E->vlen == 8 ? 8 : 6; }
#define JIT_AXPY_NV 2

/* The matrix a of the planned sum s as the panels read it: shared by the
 * strings, rows along mu with j contiguous, or for a sum of the batched
 * kernel alone T[j, mu] with its rows along j (jit_rows, jit_rows_t). */
static bool jit_axpy_matrix(JitEmit *E, SymId s, SymId a, LLVMValueRef *base, int64_t *off, int64_t *stride)
{
	const SymNode *n = sym_node(E->sym, s);
	return E->axbonly[s] ? jit_rows_t(E, a, n->aux, n->free[0], base, off, stride)
	                     : jit_rows(E, a, n->aux, n->free[0], true, base, off, stride);
}

/* Is the planned sum s fused (above) with A shared by the strings and read
 * row-major with j contiguous (the Hopfield patterns, a transposed copy of
 * them)?  Gives A and g. */
static bool jit_axpy_blockable(JitEmit *E, SymId s, SymId *a, SymId *g)
{
	int64_t off, stride;
	return jit_axpy_fused(E, s, a, g) && jit_axpy_matrix(E, s, *a, NULL, &off, &stride);
}

/* Full blocks of columns of s's statement variable. */
static int64_t jit_axpy_nblocks(const JitEmit *E, SymId s)
{
	const SymNode *n = sym_node(E->sym, s);
	return sym_index_extent(E->sym, n->free[0]) / ((int64_t)E->vlen * JIT_AXPY_NV);
}

/* Is A a large weight matrix the static block can pack from: a cache in
 * the block, or a static tensor read by reference? */
static bool jit_axpy_panel_static(JitEmit *E, SymId a)
{
	if (E->cache_off[a] >= 0)
		return E->cache_sb[a] != 0;
	const SymNode *n = sym_node(E->sym, a);
	return n->kind == SYM_TENSOR && E->by_ref[n->aux] &&
	       (E->m->tensors[n->aux].kind == MT_CONST || E->m->tensors[n->aux].kind == MT_LEARN);
}

/* The panels of large weight matrices (jit_axpy_panel_static) are packed
 * into the static block, once per set of weights (setup_static), and
 * shared by every call and thread; the others are packed into the scratch
 * by each call of a batched kernel. */
void jit_axpy_pack_plan(JitEmit *E)
{
	SymId a, g;
	E->axpack_size = 0;
	for (SymId s = 1; s < E->nsym; s++)
		if ((E->axbuf_off[s] >= 0 || E->axbonly[s]) && jit_axpy_nblocks(E, s) > 0 &&
		    jit_axpy_blockable(E, s, &a, &g)) {
			int64_t size = jit_axpy_nblocks(E, s) * E->vlen * JIT_AXPY_NV *
			               sym_index_extent(E->sym, sym_node(E->sym, s)->aux);
			size = (size + 7) / 8 * 8;
			int64_t *at = &E->axpack_size;
			if (E->want_batch && jit_axpy_panel_static(E, a)) {
				E->axpack_sb[s] = 1;
				at = &E->sb_size;
			}
			E->axpack_off[s] = *at;
			*at += size;
		}
}

/* The base pointer of the panels of s. */
static LLVMValueRef jit_axpy_panels(JitEmit *E, SymId s)
{
	return E->axpack_sb[s] ? jit_static_block(E) : E->scratch;
}

/* acc + a g: one fma (fused sums), or a multiply and an add (the source
 * fold of the others). */
static LLVMValueRef jit_axpy_term(JitEmit *E, bool fma, LLVMValueRef a, LLVMValueRef g, LLVMValueRef acc)
{
	return fma ? jit_fma(E, a, g, acc) : LLVMBuildFAdd(E->b, acc, LLVMBuildFMul(E->b, a, g, "rp"), "racc");
}

static LLVMValueRef jit_min_i64(JitEmit *E, LLVMValueRef a, LLVMValueRef b, const char *name)
{
	return LLVMBuildSelect(E->b, LLVMBuildICmp(E->b, LLVMIntSLT, a, b, "lt"), a, b, name);
}

static LLVMValueRef jit_vec_ptr(JitEmit *E, LLVMValueRef base, LLVMValueRef off, int64_t k)
{
	LLVMValueRef o = k ? LLVMBuildNSWAdd(E->b, off, jit_i64(E, k), "vo") : off;
	return jit_elem_ptr(E, base, o, "vp");
}

static LLVMValueRef jit_vec_load(JitEmit *E, LLVMTypeRef vt, LLVMValueRef base, LLVMValueRef off, int64_t k)
{
	LLVMValueRef v = LLVMBuildLoad2(E->b, vt, jit_vec_ptr(E, base, off, k), "vl");
	LLVMSetAlignment(v, 8);
	return v;
}

/* The packed panels: block q of columns of A (jw = 2 vectors wide) is
 * stored row after row, panel[q][mu][0..jw), so the kernel reads it
 * contiguously; rows of A itself are a power of two apart at the usual
 * sizes, and read in place they fall into the same sets of the caches. */
void jit_axpy_pack_emit(JitEmit *E, bool static_block)
{
	SymId a, g;
	const int64_t jw = (int64_t)E->vlen * JIT_AXPY_NV;
	LLVMTypeRef vt = LLVMVectorType(E->f64, (unsigned)E->vlen);
	for (SymId s = 1; s < E->nsym; s++) {
		if (E->axpack_off[s] < 0 || (E->axpack_sb[s] != 0) != static_block || !jit_axpy_blockable(E, s, &a, &g))
			continue;
		const SymNode *n = sym_node(E->sym, s);
		LLVMValueRef abase;
		int64_t aoff, astride, nmu = sym_index_extent(E->sym, n->aux);
		bool tr = E->axbonly[s] != 0;
		jit_axpy_matrix(E, s, a, &abase, &aoff, &astride);
		jit_stmt_begin(E);
		jit_loop_open(E, 0, jit_i64(E, 0), jit_i64(E, jit_axpy_nblocks(E, s)), "pkq");
		LLVMValueRef q = E->lv[E->depth - 1].iv;
		jit_loop_open(E, 0, jit_i64(E, 0), jit_i64(E, nmu), "pkmu");
		if (E->failed)
			return;
		jit_position_top(E);
		LLVMValueRef r = E->lv[E->depth - 1].iv;
		LLVMValueRef from = LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, r, jit_i64(E, astride), "pr"),
		                                    LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, q, jit_i64(E, jw), "pc"),
		                                                    jit_i64(E, aoff), "pco"), "pfrom");
		LLVMValueRef to = LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, LLVMBuildNSWAdd(E->b,
		                                  LLVMBuildNSWMul(E->b, q, jit_i64(E, nmu), "pq"), r, "pqr"), jit_i64(E, jw), "pto"),
		                                  jit_i64(E, E->axpack_off[s]), "ptoo");
		if (tr) {      /* column c of the panel: row q jw + c of T, element r */
			LLVMValueRef tfrom = LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, LLVMBuildNSWMul(E->b, q,
			                                     jit_i64(E, jw), "tq"), jit_i64(E, astride), "tqs"),
			                                     LLVMBuildNSWAdd(E->b, r, jit_i64(E, aoff), "tro"), "tfrom");
			for (int64_t c = 0; c < jw; c++) {
				LLVMValueRef x = LLVMBuildLoad2(E->b, E->f64, jit_vec_ptr(E, abase, tfrom, c * astride), "tx");
				LLVMBuildStore(E->b, x, jit_vec_ptr(E, jit_axpy_panels(E, s), to, c));
			}
		} else {
			for (int v = 0; v < JIT_AXPY_NV; v++)
				LLVMSetAlignment(LLVMBuildStore(E->b, jit_vec_load(E, vt, abase, from, (int64_t)v * E->vlen),
				                                jit_vec_ptr(E, jit_axpy_panels(E, s), to, (int64_t)v * E->vlen)), 8);
		}
		jit_loop_close(E);
		jit_loop_close(E);
	}
	jit_stmt_begin(E);
}

/* The fixed parts of a register block of jit_axpy_blocked. */
typedef struct JitAxBlock {
	bool fma;
	int vl, nv, sb;
	int64_t boff, goff;                 /* the column buffer and the factors g in a string's scratch */
	LLVMValueRef panels;                /* the base of the panels */
	LLVMValueRef jcol, pbase, klo, khi; /* first column, its panel, rows [klo, khi) */
} JitAxBlock;

/* The groups [g0, g1) of sb strings over rows [klo, khi) of the panel.
 * Full groups address the strings' scratch rows at constant distances from
 * the first one's (one induction variable for all the factors g); the
 * last group, when partial, repeats its last string. */
static void jit_axpy_group(JitEmit *E, const JitAxBlock *K, LLVMValueRef g0, LLVMValueRef g1, bool full)
{
	const int vl = K->vl, nv = K->nv, sb = K->sb;
	const int64_t jw = (int64_t)vl * nv;
	LLVMTypeRef vt = LLVMVectorType(E->f64, (unsigned)vl);
	LLVMValueRef zero = jit_i64(E, 0);
	LLVMValueRef mask = LLVMConstNull(LLVMVectorType(LLVMInt32TypeInContext(E->ctx), (unsigned)vl));
	jit_loop_open(E, 0, g0, g1, full ? "rsb" : "rst");
	if (E->failed)
		return;
	jit_position_top(E);
	LLVMValueRef last = LLVMBuildNSWSub(E->b, E->nb, jit_i64(E, 1), "lastb");
	LLVMValueRef s0 = LLVMBuildNSWMul(E->b, E->lv[E->depth - 1].iv, jit_i64(E, sb), "s0");
	LLVMValueRef gp[12], bp[12], acc[12 * JIT_AXPY_NV], init[12 * JIT_AXPY_NV], next[12 * JIT_AXPY_NV];
	LLVMValueRef row0 = NULL;
	for (int k = 0; k < sb; k++) {
		LLVMValueRef row;
		if (full && k > 0) {
			row = jit_elem_ptr(E, row0, jit_i64(E, k * E->axscr_size), "srowk");
		} else {
			LLVMValueRef sk = full ? s0 : jit_min_i64(E, LLVMBuildNSWAdd(E->b, s0, jit_i64(E, k), "sk"), last, "sc");
			LLVMValueRef so = LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, sk, jit_i64(E, E->axscr_size), "so"),
			                                  jit_i64(E, E->axpack_size), "sop");
			row = row0 = jit_elem_ptr(E, E->scratch, so, "srow");
		}
		gp[k] = jit_elem_ptr(E, row, jit_i64(E, K->goff), "gk");
		bp[k] = jit_elem_ptr(E, row, LLVMBuildNSWAdd(E->b, K->jcol, jit_i64(E, K->boff), "bo"), "bk");
		for (int v = 0; v < nv; v++)
			init[k * nv + v] = jit_vec_load(E, vt, bp[k], zero, (int64_t)v * vl);
	}
	jit_loop_open(E, 0, K->klo, K->khi, "rmu");
	if (E->failed)
		return;
	for (int k = 0; k < sb * nv; k++)
		acc[k] = jit_loop_phi_ty(E, vt, "racc");
	jit_position_top(E);
	LLVMValueRef imu = E->lv[E->depth - 1].iv;
	LLVMValueRef aat = LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, imu, jit_i64(E, jw), "ar"), K->pbase, "aat");
	LLVMValueRef av[JIT_AXPY_NV];
	for (int v = 0; v < nv; v++)
		av[v] = jit_vec_load(E, vt, K->panels, aat, (int64_t)v * vl);
	for (int k = 0; k < sb; k++) {
		LLVMValueRef gk = LLVMBuildLoad2(E->b, E->f64, jit_elem_ptr(E, gp[k], imu, "gm"), "g");
		LLVMValueRef gs = LLVMBuildInsertElement(E->b, LLVMGetUndef(vt), gk, LLVMConstInt(E->i64, 0, 0), "gi");
		gs = LLVMBuildShuffleVector(E->b, gs, LLVMGetUndef(vt), mask, "gs");
		for (int v = 0; v < nv; v++)
			next[k * nv + v] = jit_axpy_term(E, K->fma, av[v], gs, acc[k * nv + v]);
	}
	jit_loop_close_acc(E, sb * nv, acc, init, next);
	jit_position_top(E);
	for (int k = 0; k < sb; k++)
		for (int v = 0; v < nv; v++)
			LLVMSetAlignment(LLVMBuildStore(E->b, acc[k * nv + v], jit_vec_ptr(E, bp[k], zero, (int64_t)v * vl)), 8);
	jit_loop_close(E);
}

/* Register blocks for the planned sum s = sum(mu, A(mu, j) g(mu)) over the
 * columns [lo, hi) of its buffers (zero on entry): g is computed first into
 * each string's scratch; then for every packed block of columns inside
 * [lo, hi) and every group of sb strings, the sb x 2 vector accumulators
 * stay in registers while mu runs over a panel of rows (acc += A[mu, j..] *
 * g_s[mu]), so a row of A is loaded once per group and each column of each
 * string still receives its additions in the order mu = 0, 1, ... (the fmul
 * and fadd of the plain loop: bit-identical).  A group past the last string
 * repeats the last one (the same values stored twice).  Gives the columns
 * covered, [*clo, *chi) (empty: none). */
static void jit_axpy_blocked(JitEmit *E, SymId s, IdxId j, int64_t lo, int64_t hi, int64_t *clo, int64_t *chi)
{
	const SymNode *n = sym_node(E->sym, s);
	IdxId mu = n->aux;
	SymId a, g;
	const int vl = E->vlen, nv = JIT_AXPY_NV, sb = jit_axpy_sb(E);
	const int64_t jw = (int64_t)vl * nv, q0 = (lo + jw - 1) / jw;
	int64_t q1 = hi / jw;
	if (q1 > jit_axpy_nblocks(E, s))
		q1 = jit_axpy_nblocks(E, s);
	*clo = *chi = lo;
	if (!E->batch || E->axpack_off[s] < 0 || q1 <= q0 || !jit_axpy_blockable(E, s, &a, &g))
		return;
	bool fma = jit_axpy_fma(E, s, &a, &g);
	int64_t nmu = sym_index_extent(E->sym, mu);
	int64_t boff = E->axscr_off[s], goff = boff + sym_index_extent(E->sym, j);
	jit_axpy_gpass(E, s, g);

	LLVMValueRef zero = jit_i64(E, 0);
	jit_stmt_begin(E);
	jit_loop_open(E, 0, jit_i64(E, q0), jit_i64(E, q1), "rq");
	jit_position_top(E);
	LLVMValueRef q = E->lv[E->depth - 1].iv;
	LLVMValueRef jcol = LLVMBuildNSWMul(E->b, q, jit_i64(E, jw), "jcol");
	LLVMValueRef pbase = LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, q, jit_i64(E, nmu * jw), "pq"),
	                                     jit_i64(E, E->axpack_off[s]), "pbase");
	jit_loop_open(E, 0, zero, jit_i64(E, (nmu + JIT_AXPY_KBLK - 1) / JIT_AXPY_KBLK), "rkb");
	jit_position_top(E);
	LLVMValueRef klo = LLVMBuildNSWMul(E->b, E->lv[E->depth - 1].iv, jit_i64(E, JIT_AXPY_KBLK), "klo");
	LLVMValueRef khi = jit_min_i64(E, LLVMBuildNSWAdd(E->b, klo, jit_i64(E, JIT_AXPY_KBLK), "kend"),
	                               jit_i64(E, nmu), "khi");
	LLVMValueRef nfg = LLVMBuildSDiv(E->b, E->nb, jit_i64(E, sb), "nfgrp");
	LLVMValueRef ngrp = LLVMBuildSDiv(E->b, LLVMBuildNSWAdd(E->b, E->nb, jit_i64(E, sb - 1), "nbr"),
	                                  jit_i64(E, sb), "ngrp");
	JitAxBlock K = { fma, vl, nv, sb, boff, goff, jit_axpy_panels(E, s), jcol, pbase, klo, khi };
	jit_axpy_group(E, &K, zero, nfg, true);
	jit_axpy_group(E, &K, nfg, ngrp, false);
	jit_loop_close(E);
	jit_loop_close(E);
	*clo = q0 * jw;
	*chi = q1 * jw;
}

/* ---- rows keyed by an input ------------------------------------------------- */

/* Is a = T[r, c] a read of a tensor whose rows r an input keys (jit_row_key,
 * in *key), with rows of at least twice as many columns as there are rows
 * (a row's sum is one dependent chain of fma: a short one does not pay for
 * the row-by-row form)? */
static bool jit_axpy_keyed_matrix(JitEmit *E, SymId a, IdxId r, IdxId c, TensorId *key)
{
	int64_t off, stride;
	return E->keyed_off >= 0 && E->cache_off[a] < 0 &&
	       2 * sym_index_extent(E->sym, r) <= sym_index_extent(E->sym, c) &&
	       jit_rows_keyed(E, a, r, c, key, NULL, &off, &stride);
}

/* setup: for every input `in` that keys rows, map[r] = the first position
 * whose value has the same bits as in[r] (q <= r), as doubles, in the run's
 * workspace.  Rows with equal keys hold equal values, so the kernels read
 * the first of them: the attention keys of a string, L rows of D, come from
 * as many distinct rows as there are distinct tokens (2 for parity), which
 * stay in the L1 cache, where L x D doubles per string would stream from
 * memory every step. */
void jit_axpy_emit_keymaps(JitEmit *E)
{
	for (TensorId in = 1; in < E->m->ntensors && !E->failed; in++) {
		if (E->keymap_off[in] < 0)
			continue;
		LLVMValueRef ioff = jit_i64(E, E->ws_off[in]);
		jit_stmt_begin(E);
		jit_loop_open(E, 0, jit_i64(E, 0), jit_i64(E, sym_tensor_size(E->sym, in)), "kr");
		if (E->failed)
			return;
		jit_position_top(E);
		LLVMValueRef r = E->lv[E->depth - 1].iv;
		LLVMValueRef kr = LLVMBuildLoad2(E->b, E->f64,
		                                 jit_elem_ptr(E, E->ws, LLVMBuildNSWAdd(E->b, r, ioff, "kro"), "krp"), "key");
		jit_loop_open(E, 0, jit_i64(E, 0), r, "kq");
		if (E->failed)
			return;
		LLVMValueRef lead = jit_loop_phi_ty(E, E->i64, "lead"), next;
		jit_position_top(E);
		LLVMValueRef q = E->lv[E->depth - 1].iv;
		LLVMValueRef kq = LLVMBuildLoad2(E->b, E->f64,
		                                 jit_elem_ptr(E, E->ws, LLVMBuildNSWAdd(E->b, q, ioff, "kqo"), "kqp"), "keyq");
		LLVMValueRef same = LLVMBuildICmp(E->b, LLVMIntEQ, LLVMBuildBitCast(E->b, kq, E->i64, "kqb"),
		                                  LLVMBuildBitCast(E->b, kr, E->i64, "krb"), "same");
		LLVMValueRef first = LLVMBuildAnd(E->b, same, LLVMBuildICmp(E->b, LLVMIntEQ, lead, r, "unset"), "first");
		next = LLVMBuildSelect(E->b, first, q, lead, "lnext");
		jit_loop_close_acc(E, 1, &lead, &r, &next);
		jit_position_top(E);
		LLVMValueRef at = LLVMBuildNSWAdd(E->b, r, jit_i64(E, E->keymap_off[in]), "kmo");
		LLVMBuildStore(E->b, LLVMBuildSIToFP(E->b, lead, E->f64, "leadf"), jit_elem_ptr(E, E->ws, at, "kmp"));
		jit_loop_close(E);
	}
	jit_stmt_begin(E);
}

/* Do the rows still follow their keys (ws[keyed_off] != 0: the host
 * programmed none)?  At the current position (the string's workspace). */
static LLVMValueRef jit_axpy_follow(JitEmit *E)
{
	jit_position_top(E);
	LLVMValueRef f = LLVMBuildLoad2(E->b, E->f64, jit_elem_ptr(E, E->ws, jit_i64(E, E->keyed_off), "kfp"), "kf");
	return LLVMBuildFCmp(E->b, LLVMRealONE, f, jit_f64(E, 0.0), "follow");
}

/* The row row r is read as: its key's first row while the rows follow the
 * keys, else r itself (programmed rows are read each on its own). */
static LLVMValueRef jit_axpy_leader(JitEmit *E, TensorId key, LLVMValueRef follow, LLVMValueRef r)
{
	LLVMValueRef at = LLVMBuildNSWAdd(E->b, r, jit_i64(E, E->keymap_off[key]), "kmo");
	LLVMValueRef lead = LLVMBuildFPToSI(E->b, LLVMBuildLoad2(E->b, E->f64, jit_elem_ptr(E, E->ws, at, "kmp"), "leadf"),
	                                    E->i64, "lead");
	return LLVMBuildSelect(E->b, follow, lead, r, "row");
}

/* Is s such a sum (below)?  Gives A = T[j, mu], g and the key.  It is
 * planned without a transposed copy of T: the keyed dots read T's rows in
 * place. */
static bool jit_axpy_keyed(JitEmit *E, SymId s, IdxId j, SymId *a, SymId *g, TensorId *key)
{
	return jit_axpy_fma(E, s, a, g) && jit_axpy_keyed_matrix(E, *a, j, sym_node(E->sym, s)->aux, key);
}

/* The dot-product form of a fused sum s = sum(mu, T[j, mu] g(mu)) in every
 * kernel, T a string's own tensor whose rows an input keys (the attention's
 * sum(i, xi[A, i] g_v[i])): for each j in [lo, hi) the first row with its
 * key computes acc = fma(T[j, mu], g(mu), acc) for mu = 0, 1, ... (what the
 * plain nest would do over a transposed copy, the same bits), the others
 * copy its result.  Gives the columns covered, [*clo, *chi). */
static void jit_axpy_keyed_dots(JitEmit *E, SymId s, IdxId j, int64_t lo, int64_t hi, int64_t *clo, int64_t *chi)
{
	const SymNode *n = sym_node(E->sym, s);
	IdxId mu = n->aux;
	SymId a, g;
	TensorId key;
	int64_t toff, tstride, o, goff, nmu = sym_index_extent(E->sym, mu);
	*clo = *chi = lo;
	if (lo >= hi || !jit_axpy_keyed(E, s, j, &a, &g, &key))
		return;
	LLVMValueRef tbase;
	jit_axpy_gpass(E, s, g);
	jit_stmt_begin(E);
	jit_batch_open(E);
	LLVMValueRef follow = jit_axpy_follow(E);
	jit_rows_keyed(E, a, j, mu, &key, &tbase, &toff, &tstride);
	LLVMValueRef gb = jit_axpy_gbuf(E, s, &goff), bb = jit_axpy_buf(E, s, &o);
	jit_loop_open(E, 0, jit_i64(E, lo), jit_i64(E, hi), "kj");
	if (E->failed)
		return;
	jit_position_top(E);
	LLVMValueRef jj = E->lv[E->depth - 1].iv, lead = jit_axpy_leader(E, key, follow, jj);
	LLVMValueRef own = LLVMBuildOr(E->b, LLVMBuildICmp(E->b, LLVMIntEQ, lead, jj, "lead1"),
	                               LLVMBuildICmp(E->b, LLVMIntSLT, lead, jit_i64(E, lo), "leadout"), "own");
	LLVMValueRef trow = LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, jj, jit_i64(E, tstride), "ktr"),
	                                    jit_i64(E, toff), "ktro");
	jit_loop_open(E, 0, jit_i64(E, 0), LLVMBuildSelect(E->b, own, jit_i64(E, nmu), jit_i64(E, 0), "kn"), "kmu");
	if (E->failed)
		return;
	LLVMValueRef acc = jit_loop_phi_ty(E, E->f64, "kacc"), init = jit_f64(E, 0.0);
	jit_position_top(E);
	LLVMValueRef m = E->lv[E->depth - 1].iv;
	LLVMValueRef tv = LLVMBuildLoad2(E->b, E->f64, jit_elem_ptr(E, tbase, LLVMBuildNSWAdd(E->b, trow, m, "kto"), "ktp"),
	                                 "kt");
	LLVMValueRef gv = LLVMBuildLoad2(E->b, E->f64,
	                                 jit_elem_ptr(E, gb, LLVMBuildNSWAdd(E->b, m, jit_i64(E, goff), "kgo"), "kgp"), "kg");
	LLVMValueRef next = jit_fma(E, tv, gv, acc);
	jit_loop_close_acc(E, 1, &acc, &init, &next);
	jit_position_top(E);
	LLVMValueRef copied = LLVMBuildLoad2(E->b, E->f64,
	                                     jit_elem_ptr(E, bb, LLVMBuildNSWAdd(E->b, lead, jit_i64(E, o), "kbl"), "kbp"),
	                                     "kcopy");
	LLVMBuildStore(E->b, LLVMBuildSelect(E->b, own, acc, copied, "kval"),
	               jit_elem_ptr(E, bb, LLVMBuildNSWAdd(E->b, jj, jit_i64(E, o), "kbj"), "kbq"));
	jit_loop_close(E);
	jit_batch_close(E);
	*clo = lo;
	*chi = hi;
}

/* Vectors of columns per row block. */
#define JIT_AXPY_RNV 8

static void jit_splat(JitEmit *E, LLVMTypeRef vt, LLVMValueRef x, LLVMValueRef *out)
{
	LLVMValueRef mask = LLVMConstNull(LLVMVectorType(LLVMInt32TypeInContext(E->ctx), LLVMGetVectorSize(vt)));
	LLVMValueRef v = LLVMBuildInsertElement(E->b, LLVMGetUndef(vt), x, LLVMConstInt(E->i64, 0, 0), "gi");
	*out = LLVMBuildShuffleVector(E->b, v, LLVMGetUndef(vt), mask, "gs");
}

/* Row blocks for a sum s = sum(mu, A(mu, j) g(mu)): for every block of up
 * to 8 vectors of columns the accumulators stay in registers while mu runs
 * over all rows, instead of loading and storing the column buffer for every
 * row; the same operations in the same order as the plain nest (an fma per
 * term for fused sums, a multiply and an add for the others), so the bits
 * are the same.
 * - The batched kernel, fused sums, one string at a time, A the string's
 *   own (attention keys, read by the first row with the same token) or
 *   shared with a packed panel (the others: the plain nest reads each row
 *   once for all strings).
 * - The one-string kernel, sums whose columns fit one block (at most 8
 *   vectors: the D = 16 Analog ET's 16 columns are 2 AVX-512 vectors), for
 *   which LLVM's own vectorisation of the plain nest keeps the buffer in
 *   memory and gathers.  Wider sums keep the plain nest there: the shared
 *   weights come from memory once per step anyway, and the rows of A, a
 *   power of two apart, stream worse than the nest's contiguous rows.
 * Gives the columns covered, [*clo, *chi) (empty: none). */
static void jit_axpy_rows(JitEmit *E, SymId s, IdxId j, int64_t lo, int64_t hi, int64_t *clo, int64_t *chi)
{
	const SymNode *n = sym_node(E->sym, s);
	IdxId mu = n->aux;
	SymId a, g;
	int64_t aoff, astride, o, goff;
	const int vl = E->vlen;
	const int nv = E->batch ? JIT_AXPY_RNV : (int)((hi - lo) / vl);
	const int64_t jw = (int64_t)vl * nv, nmu = sym_index_extent(E->sym, mu);
	const int64_t nfull = nv > 0 && nv <= JIT_AXPY_RNV ? (hi - lo) / jw : 0;
	const bool fused = jit_axpy_fma(E, s, &a, &g);
	*clo = *chi = lo;
	if (nfull == 0 || !(fused || (!E->batch && jit_axpy_split(E, s, &a, &g))) ||
	    !jit_rows(E, a, mu, j, false, NULL, &aoff, &astride))
		return;
	if (E->batch && jit_rows(E, a, mu, j, true, NULL, &aoff, &astride))
		return;                /* shared weights without a packed panel (the energy's) */
	TensorId key = 0;
	bool keyed = E->batch && jit_axpy_keyed_matrix(E, a, mu, j, &key);
	LLVMValueRef gb;
	bool gread = !E->batch && jit_vector_read(E, g, mu, &gb, &goff);   /* g read in place */
	if (!gread)
		jit_axpy_gpass(E, s, g);
	LLVMTypeRef vt = LLVMVectorType(E->f64, (unsigned)vl);
	LLVMValueRef abase, acc[JIT_AXPY_RNV], init[JIT_AXPY_RNV], next[JIT_AXPY_RNV];
	jit_stmt_begin(E);
	jit_batch_open(E);
	LLVMValueRef follow = keyed ? jit_axpy_follow(E) : NULL;
	jit_loop_open(E, 0, jit_i64(E, 0), jit_i64(E, nfull), "wq");
	if (E->failed)
		return;
	jit_position_top(E);
	LLVMValueRef jcol = LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, E->lv[E->depth - 1].iv, jit_i64(E, jw), "wj"),
	                                    jit_i64(E, lo), "wcol");
	jit_rows(E, a, mu, j, false, &abase, &aoff, &astride);
	if (!gread)
		gb = jit_axpy_gbuf(E, s, &goff);
	LLVMValueRef bb = jit_axpy_buf(E, s, &o);
	LLVMValueRef acol = LLVMBuildNSWAdd(E->b, jcol, jit_i64(E, aoff), "wacol");
	jit_loop_open(E, 0, jit_i64(E, 0), jit_i64(E, nmu), "wmu");
	if (E->failed)
		return;
	E->lv[E->depth - 1].rolled = !E->batch;   /* the one-string kernel: LLVM would unroll the
	                                           * short loop whole, for compile time and nothing else */
	for (int v = 0; v < nv; v++) {
		acc[v] = jit_loop_phi_ty(E, vt, "wacc");
		init[v] = LLVMConstNull(vt);
	}
	jit_position_top(E);
	LLVMValueRef r = E->lv[E->depth - 1].iv;
	LLVMValueRef row = keyed ? jit_axpy_leader(E, key, follow, r) : r;
	LLVMValueRef at = LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, row, jit_i64(E, astride), "wr"), acol, "wat");
	LLVMValueRef gk = LLVMBuildLoad2(E->b, E->f64,
	                                 jit_elem_ptr(E, gb, LLVMBuildNSWAdd(E->b, r, jit_i64(E, goff), "wg"), "wgp"), "g");
	LLVMValueRef gs;
	jit_splat(E, vt, gk, &gs);
	for (int v = 0; v < nv; v++)
		next[v] = jit_axpy_term(E, fused, jit_vec_load(E, vt, abase, at, (int64_t)v * vl), gs, acc[v]);
	jit_loop_close_acc(E, nv, acc, init, next);
	jit_position_top(E);
	LLVMValueRef bo = LLVMBuildNSWAdd(E->b, jcol, jit_i64(E, o), "wbo");
	for (int v = 0; v < nv; v++)
		LLVMSetAlignment(LLVMBuildStore(E->b, acc[v], jit_vec_ptr(E, bb, bo, (int64_t)v * vl)), 8);
	jit_loop_close(E);
	jit_batch_close(E);
	*clo = lo;
	*chi = lo + nfull * jw;
}

/* The plain nest over the columns [lo, hi): for mu: for j: buf[j] += body.
 * In the batched kernel the strings loop sits between mu and j, and j runs
 * in blocks of JIT_AXPY_BLOCK: a piece of row mu of the weights is read once
 * for all strings of the batch, whose pieces of the buffers stay in the L1
 * cache over all mu (the order of the additions into each buf[j] is still
 * mu = 0, 1, ...). */
static void jit_axpy_plain(JitEmit *E, SymId s, IdxId j, int64_t lo, int64_t hi)
{
	const SymNode *n = sym_node(E->sym, s);
	IdxId mu = n->aux;
	int64_t o;
	if (lo >= hi)
		return;
	jit_stmt_begin(E);
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
	SymId fa, fg;
	bool fused = jit_axpy_fma(E, s, &fa, &fg);
	LLVMValueRef b = fused ? NULL : jit_emit(E, n->kids[0]);
	LLVMValueRef va = fused ? jit_emit(E, fa) : NULL, vg = fused ? jit_emit(E, fg) : NULL;
	jit_position_top(E);
	LLVMValueRef base = jit_axpy_buf(E, s, &o);
	LLVMValueRef at = LLVMBuildNSWAdd(E->b, E->lv[E->depth - 1].iv, jit_i64(E, o), "colj");
	LLVMValueRef p = jit_elem_ptr(E, base, at, "col");
	LLVMValueRef acc = LLVMBuildLoad2(E->b, E->f64, p, "colacc");
	LLVMBuildStore(E->b, fused ? jit_fma(E, va, vg, acc) : LLVMBuildFAdd(E->b, acc, b, "acc"), p);
	jit_loop_close(E);
	jit_batch_close(E);
	jit_loop_close(E);
	if (E->batch)
		jit_loop_close(E);
}

/* buf[j] = 0 for j in [lo, hi). */
static void jit_axpy_zero(JitEmit *E, SymId s, int64_t lo, int64_t hi)
{
	int64_t o;
	if (lo >= hi)
		return;
	jit_stmt_begin(E);
	jit_batch_open(E);
	LLVMValueRef base = jit_axpy_buf(E, s, &o), boff = jit_i64(E, o);
	jit_loop_open(E, 0, jit_i64(E, lo), jit_i64(E, hi), "axz");
	jit_position_top(E);
	LLVMValueRef z = LLVMBuildNSWAdd(E->b, E->lv[E->depth - 1].iv, boff, "colz");
	LLVMBuildStore(E->b, jit_f64(E, 0.0), jit_elem_ptr(E, base, z, "col"));
	jit_loop_close(E);
	jit_batch_close(E);
}

/* buf[j] for j in [lo, hi): the register blocks of the batched kernel, which
 * add to a zeroed buffer, or the keyed dots or the row blocks, which write
 * their columns, and the plain nest (buf[j] = 0; for mu: buf[j] += body)
 * for the columns left.  The one-string kernel zeroes only those (no dead
 * stores for LLVM to find). */
static void jit_axpy_nest(JitEmit *E, SymId s, IdxId j, int64_t lo, int64_t hi)
{
	int64_t clo = lo, chi = lo;
	jit_stmt_begin(E);
	if (E->batch) {
		jit_axpy_zero(E, s, lo, hi);
		jit_axpy_blocked(E, s, j, lo, hi, &clo, &chi);
	}
	if (clo == chi)
		jit_axpy_keyed_dots(E, s, j, lo, hi, &clo, &chi);
	if (clo == chi)
		jit_axpy_rows(E, s, j, lo, hi, &clo, &chi);
	if (clo == chi)
		clo = chi = hi;
	if (!E->batch) {
		jit_axpy_zero(E, s, lo, clo);
		jit_axpy_zero(E, s, chi, hi);
	}
	jit_axpy_plain(E, s, j, lo, clo);
	jit_axpy_plain(E, s, j, chi, hi);
}

static void jit_axpy_emit_walk(JitEmit *E, SymId e, IdxId var, int64_t lo, int64_t hi)
{
	if (!e || E->axmark[e] == E->axstamp)
		return;
	E->axmark[e] = E->axstamp;
	const SymNode *n = sym_node(E->sym, e);
	if (E->cache_off[e] >= 0 || !jit_dep_state(E, e))
		return;
	if ((E->axbuf_off[e] >= 0 || (E->batch && E->axbonly[e])) && n->nfree == 1 && n->free[0] == var) {
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
