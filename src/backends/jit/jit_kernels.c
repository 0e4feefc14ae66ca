/* jit_kernels.c - workspace layout and the kernel functions of JitKernels.
 *
 * Lays out the workspace (inputs, dynamic tensors, activations, the Euler
 * scratch dx and setup-time caches), emits the static weights as private
 * constant globals and builds every entry point out of statements
 * (jit_assign_*):
 *
 *   setup      dynamic tensors in dependency order, then the caches
 *   init_state 0, init segments, clamp segments
 *   rhs        activations into ws, then rhs/tau per layer (0 when clamped)
 *   energy     activations, then the energy expression
 *   acts       activations, copied out
 *   outputs    activations, then each output
 *   euler      one native loop over the steps: activations, rhs into dx,
 *              x += dt*dx on the free neurons
 *
 * The activations and the right-hand sides are emitted once, as private
 * helpers (dam.acts, dam.rhs) that the kernels call: the module stays small,
 * which keeps optimisation and code generation fast.
 *
 * Caches: a state-free subexpression of the activations, ODEs, energy or
 * outputs that costs something (contains a reduction, a function call, a
 * power or a division), e.g. the bias  -1/2 sum_i xi[mu,i]^2  or the squared
 * weights of the Analog ET, is computed once by setup() into ws (an array
 * over its free indices) and loaded from there by the other kernels.
 *
 * Pointer arguments are declared noalias: ws, x and the output array of a
 * call must not overlap.  (dam.rhs writes the Euler scratch through its dst
 * argument, which points into ws; it never touches that part through ws,
 * which is what noalias requires.)
 */
#include <stdlib.h>
#include <string.h>

#include "jit_internal.h"

/* Largest cache (in doubles) worth keeping in ws. */
#define JIT_CACHE_MAX ((int64_t)1 << 22)

static int64_t jit_tensor_size(JitEmit *E, TensorId t)
{
	return sym_tensor_size(E->sym, t);
}

/* ---- constants ------------------------------------------------------------ */

/* A private constant global with the tensor's data: a [n x double] array
 * when small (readable dumps), raw bytes otherwise (fast to build). */
static void jit_emit_const_tensor(JitEmit *E, TensorId t)
{
	const MTensor *mt = &E->m->tensors[t];
	int64_t n = jit_tensor_size(E, t);
	char name[128];
	LLVMValueRef init;
	LLVMTypeRef ty;
	snprintf(name, sizeof name, "c.%s", sym_tensor_name(E->sym, t));
	if (n < 0 || (uint64_t)n > UINT32_MAX / sizeof(double)) {
		jit_fail(E, "constant tensor '%s' is too large to embed (%lld values)",
		         sym_tensor_name(E->sym, t), (long long)n);
		return;
	}
	if (n <= 64) {
		LLVMValueRef vals[64];
		for (int64_t i = 0; i < n; i++)
			vals[i] = jit_f64(E, mt->data ? mt->data[i] : 0.0);
		ty = LLVMArrayType(E->f64, (unsigned)n);
		init = LLVMConstArray(E->f64, vals, (unsigned)n);
	} else if (mt->data) {
		unsigned bytes = (unsigned)((size_t)n * sizeof(double));
		init = LLVMConstStringInContext(E->ctx, (const char *)mt->data, bytes, 1);
		ty = LLVMTypeOf(init);
	} else {
		ty = LLVMArrayType(E->f64, (unsigned)n);
		init = LLVMConstNull(ty);
	}
	LLVMValueRef g = LLVMAddGlobal(E->mod, ty, name);
	LLVMSetInitializer(g, init);
	LLVMSetGlobalConstant(g, 1);
	LLVMSetLinkage(g, LLVMPrivateLinkage);
	LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
	LLVMSetAlignment(g, 64);
	E->gconst[t] = g;
}

/* ---- layout -------------------------------------------------------------- */

static bool jit_costly(JitEmit *E, SymId e, uint8_t *memo)
{
	if (memo[e])
		return memo[e] == 2;
	const SymNode *n = sym_node(E->sym, e);
	bool c = n->kind == SYM_SUM || n->kind == SYM_LSE || n->kind == SYM_MAX ||
	         n->kind == SYM_FN || n->kind == SYM_POW || n->kind == SYM_DIV;
	for (int i = 0; i < n->nkids && !c; i++)
		c = jit_costly(E, n->kids[i], memo);
	memo[e] = c ? 2 : 1;
	return c;
}

static bool jit_reads_formal(JitEmit *E, SymId e)
{
	const SymNode *n = sym_node(E->sym, e);
	if (n->kind == SYM_TENSOR && E->m->tensors[n->aux].kind == MT_FORMAL)
		return true;
	for (int i = 0; i < n->nkids; i++)
		if (jit_reads_formal(E, n->kids[i]))
			return true;
	return false;
}

static bool jit_reads_inputs(JitEmit *E, SymId e, uint8_t *memo);

void jit_cache_add(JitEmit *E, JitCachePlan *P, SymId e, int64_t size)
{
	if (E->by_ref_ok && size >= JIT_STATIC_CACHE_MIN && !jit_reads_inputs(E, e, E->rin_memo)) {
		E->cache_sb[e] = 1;        /* in the static block, shared (jit_internal.h) */
		E->cache_off[e] = E->sb_size;
		E->sb_size += size;
	} else {
		E->cache_off[e] = *P->cur;
		*P->cur += size;
	}
	P->list[P->n++] = e;
}

static void jit_plan_cache(JitEmit *E, JitCachePlan *P, SymId e)
{
	if (!e || P->seen[e])
		return;
	P->seen[e] = 1;
	const SymNode *n = sym_node(E->sym, e);
	if (n->kind != SYM_CONST && !jit_dep_state(E, e) && jit_costly(E, e, P->costly)) {
		int64_t size = 1;
		for (int k = 0; k < n->nfree; k++)
			size *= sym_index_extent(E->sym, n->free[k]);
		if (size <= JIT_CACHE_MAX && !jit_reads_formal(E, e)) {
			jit_cache_add(E, P, e, size);
			return;
		}
	}
	for (int i = 0; i < n->nkids; i++)
		jit_plan_cache(E, P, n->kids[i]);
}

static void jit_plan_caches(JitEmit *E, JitCachePlan *P)
{
	const Model *m = E->m;
	P->costly = dam_xrealloc(NULL, E->nsym);
	P->seen = dam_xrealloc(NULL, E->nsym);
	memset(P->costly, 0, E->nsym);
	memset(P->seen, 0, E->nsym);
	P->list = dam_xrealloc(NULL, E->nsym * sizeof *P->list);
	P->n = 0;
	for (int l = 0; l < m->nlayers; l++) {
		jit_plan_cache(E, P, m->layers[l].act);
		jit_plan_cache(E, P, m->layers[l].rhs);
	}
	jit_plan_cache(E, P, m->energy);
	for (int o = 0; o < m->noutputs; o++)
		jit_plan_cache(E, P, m->outputs[o].expr);
	for (int l = 0; l < m->nlayers; l++)    /* after the caches: it may fix their order */
		jit_axpy_plan(E, m->layers[l].rhs, m->layers[l].j, P->cur, P);
}

/* Mark in used[] every tensor that expression e reads (seen: SymIds visited). */
static void jit_mark_used(const SymCtx *c, SymId e, uint8_t *seen, uint8_t *used)
{
	if (!e || seen[e])
		return;
	seen[e] = 1;
	const SymNode *n = sym_node(c, e);
	if (n->kind == SYM_TENSOR)
		used[n->aux] = 1;
	for (int i = 0; i < n->nkids; i++)
		jit_mark_used(c, n->kids[i], seen, used);
}

/* The tensors any kernel reads: what activations, right-hand sides, biases,
 * initial and clamped values, the energy, the outputs and the definitions of
 * the dynamic tensors (but that of `except`, 0: none) refer to.  A static
 * tensor that only the front end used (the raw array a load() returned, a
 * block's materialised weights that the kernels compute from their factors)
 * takes no room in the workspace. */
static uint8_t *jit_used_except(const Model *m, TensorId except)
{
	size_t nsym = sym_count(m->sym);
	uint8_t *seen = dam_xrealloc(NULL, nsym), *used = dam_xrealloc(NULL, (size_t)m->ntensors + 1);
	memset(seen, 0, nsym);
	memset(used, 0, (size_t)m->ntensors + 1);
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		jit_mark_used(m->sym, L->act, seen, used);
		jit_mark_used(m->sym, L->rhs, seen, used);
		jit_mark_used(m->sym, L->bias, seen, used);
		for (int k = 0; k < L->ninit; k++)
			jit_mark_used(m->sym, L->init[k].value, seen, used);
		for (int k = 0; k < L->nclamp; k++)
			jit_mark_used(m->sym, L->clamp[k].value, seen, used);
	}
	jit_mark_used(m->sym, m->energy, seen, used);
	for (int o = 0; o < m->noutputs; o++)
		jit_mark_used(m->sym, m->outputs[o].expr, seen, used);
	for (TensorId t = 1; t < m->ntensors; t++)
		if (m->tensors[t].kind == MT_DYN && t != except)
			jit_mark_used(m->sym, m->tensors[t].def, seen, used);
	dam_free(seen);
	return used;
}

uint8_t *jit_used_tensors(const Model *m)
{
	return jit_used_except(m, 0);
}

/* The dynamic tensor whose storage dynamic tensor t shares: t is defined as
 * u[i, j, ...] over its own indices in order, u has t's shape and nothing
 * else reads u (a weight block `= keys` of a tensor the model declares: the
 * attention's attn.xi[r, c] = keys[r, c]); 0 if none.  Not in the gradient's
 * modules (by_ref_ok), whose adjoints follow each definition. */
static TensorId jit_dyn_alias_d(JitEmit *E, TensorId t, int depth)
{
	const Model *m = E->m;
	const MTensor *mt = &m->tensors[t];
	if (!E->by_ref_ok || mt->kind != MT_DYN || !mt->def || depth > 64)
		return 0;
	const SymNode *n = sym_node(E->sym, mt->def);
	int rank = sym_tensor_rank(E->sym, t);
	if (n->kind != SYM_TENSOR || n->aux == t || m->tensors[n->aux].kind != MT_DYN || n->nkids != rank ||
	    sym_tensor_rank(E->sym, n->aux) != rank)
		return 0;
	const int64_t *st = sym_tensor_shape(E->sym, t), *su = sym_tensor_shape(E->sym, n->aux);
	for (int k = 0; k < rank; k++) {
		const SymNode *kn = sym_node(E->sym, n->kids[k]);
		if (kn->kind != SYM_IDX || kn->aux != mt->idx[k] || st[k] != su[k])
			return 0;
	}
	if (jit_dyn_alias_d(E, n->aux, depth + 1))
		return 0;
	uint8_t *used = jit_used_except(m, t);
	TensorId u = used[n->aux] ? 0 : n->aux;
	dam_free(used);
	return u;
}

static TensorId jit_dyn_alias(JitEmit *E, TensorId t)
{
	return jit_dyn_alias_d(E, t, 0);
}

static int jit_layout(JitEmit *E, JitLayout *lay, JitCachePlan *P)
{
	const Model *m = E->m;
	int64_t cur = 0;
	lay->nstate = (size_t)model_state_size(m);
	lay->nact = lay->nstate;
	lay->input_off = dam_xrealloc(NULL, (size_t)(m->ninputs ? m->ninputs : 1) * sizeof(size_t));
	lay->output_off = dam_xrealloc(NULL, (size_t)(m->noutputs ? m->noutputs : 1) * sizeof(size_t));
	for (int i = 0; i < m->ninputs; i++) {
		TensorId t = m->inputs[i].t;
		if (!t || t >= m->ntensors || m->tensors[t].kind != MT_INPUT) {
			jit_fail(E, "input '%s' has no input tensor", m->inputs[i].name);
			return -1;
		}
		E->ws_off[t] = cur;
		lay->input_off[i] = (size_t)cur;
		cur += jit_tensor_size(E, t);
	}
	lay->act_off = cur;
	cur += (int64_t)lay->nstate;
	lay->dx_off = cur;
	cur += (int64_t)lay->nstate;
	lay->tau_off = E->tau_off = cur;       /* time constants: run-time data (jit_ws_init) */
	cur += (int64_t)lay->nstate;
	uint8_t *used = jit_used_tensors(m);
	for (TensorId t = 1; t < m->ntensors; t++)
		E->dyn_alias[t] = jit_dyn_alias(E, t);
	for (TensorId t = 1; t < m->ntensors; t++) {
		const MTensor *mt = &m->tensors[t];
		if (mt->kind == MT_DYN) {
			if (!E->dyn_alias[t]) {
				E->ws_off[t] = cur;
				cur += jit_tensor_size(E, t);
			}
		} else if (mt->kind == MT_ACT || mt->kind == MT_STATE) {
			if (mt->layer < 0 || mt->layer >= m->nlayers) {
				jit_fail(E, "tensor '%s' belongs to no layer", sym_tensor_name(E->sym, t));
				return -1;
			}
			int64_t lo = model_layer_offset(m, mt->layer);
			if (mt->kind == MT_ACT)
				E->ws_off[t] = lay->act_off + lo;
			else
				E->x_off[t] = lo;
		} else if ((mt->kind == MT_CONST || mt->kind == MT_LEARN) && used[t]) {
			if (E->bake || sym_tensor_rank(E->sym, t) == 0) {
				jit_emit_const_tensor(E, t);
			} else if (E->by_ref_ok && jit_tensor_size(E, t) >= JIT_BY_REF_MIN) {
				E->by_ref[t] = 1;  /* a pointer to the values (jit_ws_init, sim_set_tensor) */
				E->ws_off[t] = cur;
				cur += 1;
			} else {               /* run-time data: the host fills it (sim_new) */
				E->ws_off[t] = cur;
				cur += jit_tensor_size(E, t);
			}
		}
	}
	for (TensorId t = 1; t < m->ntensors; t++)
		if (E->dyn_alias[t])
			E->ws_off[t] = E->ws_off[E->dyn_alias[t]];
	for (TensorId t = 1; t < m->ntensors && E->by_ref_ok; t++) {
		TensorId key = jit_row_key(E, t);
		if (key && E->keyed_off < 0)
			E->keyed_off = cur++;  /* jit_ws_init sets it to 1, sim_setup to 0 when programmed */
		if (key && E->keymap_off[key] < 0) {
			E->keymap_off[key] = cur;
			cur += jit_tensor_size(E, key);
		}
	}
	P->cur = &cur;
	dam_free(used);
	jit_plan_caches(E, P);
	size_t nout = 0;
	for (int o = 0; o < m->noutputs; o++) {
		lay->output_off[o] = nout;
		nout += (size_t)(m->outputs[o].rank == 0 ? 1 : m->outputs[o].n);
	}
	lay->noutput = nout;
	jit_axpy_pack_plan(E);
	if (m->energy)             /* after the panels: the energy's sums get none of their own */
		jit_axpy_plan_scalar(E, m->energy, &cur, P);
	if (E->sb_size > 0)
		E->sb_slot = cur++;        /* the pointer to the static block */
	lay->sb_size = E->sb_size;
	lay->sb_slot = E->sb_slot;
	lay->ws_size = (size_t)cur;
	lay->batch_scratch = jit_axpy_scratch_stride(E);
	lay->batch_pack = E->axpack_size;
	lay->keyed_off = E->keyed_off;
	lay->ntensors = sym_tensor_count(E->sym);
	lay->tensor_ws_off = dam_xrealloc(NULL, lay->ntensors * sizeof *lay->tensor_ws_off);
	memcpy(lay->tensor_ws_off, E->ws_off, lay->ntensors * sizeof *lay->tensor_ws_off);
	lay->tensor_by_ref = dam_xrealloc(NULL, lay->ntensors);
	memcpy(lay->tensor_by_ref, E->by_ref, lay->ntensors);
	return E->failed ? -1 : 0;
}

/* ---- dynamic tensors ------------------------------------------------------ */

static void jit_dyn_visit(JitEmit *E, TensorId t, uint8_t *state, TensorId *order, int *n)
{
	const Model *m = E->m;
	if (state[t] == 2)
		return;
	if (state[t] == 1) {
		jit_fail(E, "dynamic tensor '%s' depends on itself", sym_tensor_name(E->sym, t));
		return;
	}
	state[t] = 1;
	for (TensorId u = 1; u < m->ntensors; u++)
		if (u != t && m->tensors[u].kind == MT_DYN && sym_uses_tensor(E->sym, m->tensors[t].def, u))
			jit_dyn_visit(E, u, state, order, n);
	state[t] = 2;
	order[(*n)++] = t;
}

static void jit_emit_dyn(JitEmit *E)
{
	const Model *m = E->m;
	uint8_t *state = dam_xrealloc(NULL, m->ntensors);
	TensorId *order = dam_xrealloc(NULL, m->ntensors * sizeof *order);
	int n = 0;
	memset(state, 0, m->ntensors);
	for (TensorId t = 1; t < m->ntensors; t++)
		if (m->tensors[t].kind == MT_DYN)
			jit_dyn_visit(E, t, state, order, &n);
	for (int i = 0; i < n && !E->failed; i++) {
		TensorId t = order[i];
		const MTensor *mt = &m->tensors[t];
		if (E->dyn_alias[t])
			continue;          /* its storage is that of the tensor it reads */
		int rank = sym_tensor_rank(E->sym, t);
		const int64_t *shape = sym_tensor_shape(E->sym, t);
		for (int k = 0; k < rank; k++)
			if (sym_index_extent(E->sym, mt->idx[k]) != shape[k])
				jit_fail(E, "dynamic tensor '%s': index %d ranges over %lld, axis has %lld",
				         sym_tensor_name(E->sym, t), k,
				         (long long)sym_index_extent(E->sym, mt->idx[k]), (long long)shape[k]);
		jit_assign_nd(E, E->ws, E->ws_off[t], rank, mt->idx, mt->def, sym_tensor_name(E->sym, t));
	}
	dam_free(state);
	dam_free(order);
}

/* ---- small loops ------------------------------------------------------------- */

/* base[off + k] = v for k in [lo, hi). */
static void jit_fill(JitEmit *E, LLVMValueRef base, int64_t off, int64_t lo, int64_t hi,
                     double v, const char *name)
{
	if (hi <= lo)
		return;
	jit_stmt_begin(E);
	jit_loop_open(E, 0, jit_i64(E, lo + off), jit_i64(E, hi + off), "k");
	jit_position_top(E);
	LLVMBuildStore(E->b, jit_f64(E, v), jit_elem_ptr(E, base, E->lv[E->depth - 1].iv, name));
	jit_loop_close(E);
}

/* dst[doff + k] = src[soff + k] for k in [0, n). */
static void jit_copy(JitEmit *E, LLVMValueRef dst, int64_t doff, LLVMValueRef src, int64_t soff, int64_t n)
{
	if (n <= 0)
		return;
	jit_stmt_begin(E);
	jit_loop_open(E, 0, jit_i64(E, 0), jit_i64(E, n), "k");
	jit_position_top(E);
	LLVMValueRef k = E->lv[E->depth - 1].iv;
	LLVMValueRef s = LLVMBuildNSWAdd(E->b, k, jit_i64(E, soff), "src");
	LLVMValueRef d = LLVMBuildNSWAdd(E->b, k, jit_i64(E, doff), "dst");
	LLVMValueRef v = LLVMBuildLoad2(E->b, E->f64, jit_elem_ptr(E, src, s, "from"), "v");
	LLVMBuildStore(E->b, v, jit_elem_ptr(E, dst, d, "to"));
	jit_loop_close(E);
}

/* x[k] += dt * ws[dx_off + k] for k in [lo, hi) (state offsets). */
static void jit_euler_update(JitEmit *E, LLVMValueRef dt, int64_t dx_off, int64_t lo, int64_t hi)
{
	if (hi <= lo)
		return;
	jit_stmt_begin(E);
	jit_loop_open(E, 0, jit_i64(E, lo), jit_i64(E, hi), "k");
	jit_position_top(E);
	LLVMValueRef k = E->lv[E->depth - 1].iv;
	LLVMValueRef px = jit_elem_ptr(E, E->x, k, "px");
	LLVMValueRef d = LLVMBuildNSWAdd(E->b, k, jit_i64(E, dx_off), "dxk");
	LLVMValueRef dx = LLVMBuildLoad2(E->b, E->f64, jit_elem_ptr(E, E->ws, d, "pdx"), "dx");
	LLVMValueRef xv = LLVMBuildLoad2(E->b, E->f64, px, "x");
	LLVMValueRef step = LLVMBuildFMul(E->b, dt, dx, "step");
	LLVMBuildStore(E->b, LLVMBuildFAdd(E->b, xv, step, "xnew"), px);
	jit_loop_close(E);
}

/* ---- clamps ---------------------------------------------------------------- */

/* The free (unclamped) ranges of a layer, sorted; returns their number.
 * r must hold nclamp + 1 pairs. */
static int jit_free_ranges(const MLayer *L, int64_t (*r)[2])
{
	int nseg = L->nclamp, nr = 0;
	int64_t (*seg)[2] = dam_xrealloc(NULL, (size_t)(nseg ? nseg : 1) * sizeof *seg);
	for (int s = 0; s < nseg; s++) {
		seg[s][0] = L->clamp[s].lo < 0 ? 0 : L->clamp[s].lo;
		seg[s][1] = L->clamp[s].hi > L->n ? L->n : L->clamp[s].hi;
		for (int u = s; u > 0 && seg[u][0] < seg[u - 1][0]; u--) {
			int64_t a = seg[u][0], b = seg[u][1];
			seg[u][0] = seg[u - 1][0], seg[u][1] = seg[u - 1][1];
			seg[u - 1][0] = a, seg[u - 1][1] = b;
		}
	}
	int64_t pos = 0;
	for (int s = 0; s < nseg; s++) {
		if (seg[s][0] > pos) {
			r[nr][0] = pos, r[nr][1] = seg[s][0];
			nr++;
		}
		if (seg[s][1] > pos)
			pos = seg[s][1];
	}
	if (pos < L->n) {
		r[nr][0] = pos, r[nr][1] = L->n;
		nr++;
	}
	dam_free(seg);
	return nr;
}

/* ---- kernel bodies ---------------------------------------------------------- */

static void jit_emit_acts(JitEmit *E, const JitLayout *lay)
{
	const Model *m = E->m;
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		char name[80];
		snprintf(name, sizeof name, "g_%s", L->name);
		jit_assign_range(E, E->ws, lay->act_off + model_layer_offset(m, l), L->j, 0, L->n,
		                 L->act, 1.0, -1, name);
	}
}

/* rhs/tau of every free neuron into dst[off + ...]. */
static void jit_emit_rhs_into(JitEmit *E, LLVMValueRef dst, int64_t off)
{
	const Model *m = E->m;
	for (int l = 0; l < m->nlayers && !E->failed; l++) {
		const MLayer *L = &m->layers[l];
		int64_t lo = off + model_layer_offset(m, l);
		int64_t (*r)[2] = dam_xrealloc(NULL, (size_t)(L->nclamp + 1) * sizeof *r);
		int nr = jit_free_ranges(L, r);
		char name[80];
		snprintf(name, sizeof name, "dx_%s", L->name);
		for (int k = 0; k < nr; k++)
			jit_assign_range(E, dst, lo, L->j, r[k][0], r[k][1], L->rhs, L->tau,
			                 E->tau_off + model_layer_offset(m, l), name);
		dam_free(r);
	}
}

static LLVMTypeRef jit_fn_type(JitEmit *E, LLVMTypeRef ret, int nptr, bool with_dt)
{
	LLVMTypeRef p[4] = {E->ptr, E->ptr, E->ptr, E->ptr};
	if (with_dt) {
		p[2] = E->f64;
		p[3] = E->i64;
		return LLVMFunctionType(ret, p, 4, 0);
	}
	return LLVMFunctionType(ret, p, (unsigned)nptr, 0);
}

/* Starts kernel `name` with nptr pointer parameters (ws, x, out), noalias. */
static LLVMValueRef jit_kernel_begin(JitEmit *E, const char *name, LLVMTypeRef ret, int nptr, bool with_dt)
{
	static const char *const pname[3] = {"ws", "x", "out"};
	LLVMValueRef fn = jit_fn_begin(E, name, jit_fn_type(E, ret, nptr, with_dt));
	unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
	for (int i = 0; i < nptr; i++) {
		LLVMValueRef p = LLVMGetParam(fn, (unsigned)i);
		LLVMSetValueName2(p, pname[i], strlen(pname[i]));
		LLVMAddAttributeAtIndex(fn, (unsigned)i + 1, LLVMCreateEnumAttribute(E->ctx, noalias, 0));
	}
	E->ws = E->wsw = LLVMGetParam(fn, 0);
	E->x = nptr > 1 ? LLVMGetParam(fn, 1) : NULL;
	E->use_cache = true;
	return fn;
}

/* Marks a kernel that is not on the integration hot path (setup, init,
 * energy, acts, outputs): optimised for size, which keeps LLVM from unrolling
 * its small loops and so shortens compile time. */
static void jit_cold(JitEmit *E, LLVMValueRef fn)
{
	unsigned optsize = LLVMGetEnumAttributeKindForName("optsize", 7);
	LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(E->ctx, optsize, 0));
}

/* A module-private helper shared by several kernels.  Its body is emitted
 * once; LLVM's inliner decides where to copy it (measured: on the XOR and
 * ET-like models it inlines into the Euler loop, which then runs as fast as
 * with the bodies written inline, for ~20% less compile time). */
static LLVMValueRef jit_helper_begin(JitEmit *E, const char *name, int nptr)
{
	LLVMValueRef fn = jit_kernel_begin(E, name, LLVMVoidTypeInContext(E->ctx), nptr, false);
	LLVMSetLinkage(fn, LLVMPrivateLinkage);
	return fn;
}

/* Calls helper fn(ws, x[, dst]) at the innermost level.  Only the Euler
 * loop may inline the helpers: elsewhere a call keeps one copy of the code
 * and shortens compile time (bench/README.md). */
static void jit_call_ex(JitEmit *E, LLVMValueRef fn, LLVMValueRef dst, bool may_inline)
{
	LLVMValueRef args[3] = {E->ws, E->x, dst};
	jit_position_top(E);
	LLVMValueRef call = LLVMBuildCall2(E->b, LLVMGlobalGetValueType(fn), fn, args, dst ? 3 : 2, "");
	if (!may_inline) {
		unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
		LLVMAddCallSiteAttribute(call, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(E->ctx, noinline, 0));
	}
}

static void jit_call(JitEmit *E, LLVMValueRef fn, LLVMValueRef dst)
{
	jit_call_ex(E, fn, dst, false);
}

typedef struct JitHelpers {
	LLVMValueRef acts;         /* dam.acts(ws, x): activations into ws */
	LLVMValueRef rhs;          /* dam.rhs(ws, x, dst): rhs/tau of the free neurons */
} JitHelpers;

static void jit_build_helpers(JitEmit *E, const JitLayout *lay, JitHelpers *H, bool with_rhs)
{
	H->acts = jit_helper_begin(E, "dam.acts", 2);
	jit_emit_acts(E, lay);
	jit_fn_end(E, NULL);
	H->rhs = NULL;
	if (!with_rhs)
		return;
	H->rhs = jit_helper_begin(E, "dam.rhs", 3);
	E->axpy_on = true;
	jit_emit_rhs_into(E, LLVMGetParam(H->rhs, 2), 0);
	E->axpy_on = false;
	jit_fn_end(E, NULL);
}

/* 1 if e reads an input or a dynamic tensor (memo: 0 unknown, 1 no, 2 yes). */
static bool jit_reads_inputs(JitEmit *E, SymId e, uint8_t *memo)
{
	if (memo[e])
		return memo[e] == 2;
	const SymNode *n = sym_node(E->sym, e);
	bool dep = n->kind == SYM_TENSOR && n->aux < (uint32_t)E->m->ntensors &&
	           (E->m->tensors[n->aux].kind == MT_DYN || E->m->tensors[n->aux].kind == MT_INPUT);
	for (int i = 0; i < n->nkids && !dep; i++)
		dep = jit_reads_inputs(E, n->kids[i], memo);
	memo[e] = dep ? 2 : 1;
	return dep;
}

typedef enum { JIT_CACHES_ALL, JIT_CACHES_RELAYOUT, JIT_CACHES_PER_RUN, JIT_CACHES_STATIC } JitCacheSet;

/* The caches of the plan, each flattened in its order: those in the
 * workspace (setup), the layout copies of what the inputs give (relayout:
 * the copy of a static tensor does not change when dynamic ones are
 * programmed), those that depend on the inputs (the per-run setup: a cache
 * of static tensors alone keeps its value), or those of the static block
 * (setup_static). */
static void jit_emit_caches(JitEmit *E, const JitCachePlan *P, JitCacheSet which)
{
	for (int i = 0; i < P->n && !E->failed; i++) {
		SymId c = P->list[i];
		const SymNode *n = sym_node(E->sym, c);
		if ((which == JIT_CACHES_STATIC) != (E->cache_sb[c] != 0))
			continue;
		if (which == JIT_CACHES_RELAYOUT && (!E->relayout[c] || !jit_reads_inputs(E, c, E->rin_memo)))
			continue;
		if (which == JIT_CACHES_PER_RUN && !jit_reads_inputs(E, c, E->rin_memo))
			continue;
		const IdxId *ord = E->cache_ord_set[c] ? E->cache_ord + (size_t)c * SYM_MAX_RANK : n->free;
		jit_assign_nd(E, jit_cache_base(E, c), E->cache_off[c], n->nfree, ord, c, "cache");
	}
}

static void jit_build_setup(JitEmit *E, const JitCachePlan *P)
{
	jit_cold(E, jit_kernel_begin(E, JIT_FN_SETUP, LLVMVoidTypeInContext(E->ctx), 1, false));
	E->use_cache = false;
	jit_emit_dyn(E);
	jit_axpy_emit_keymaps(E);
	jit_emit_caches(E, P, JIT_CACHES_ALL);
	jit_fn_end(E, NULL);
}

/* setup_static: the caches of the static block (jit_internal.h). */
static void jit_build_setup_static(JitEmit *E, const JitCachePlan *P)
{
	jit_cold(E, jit_kernel_begin(E, JIT_FN_SETUP_STATIC, LLVMVoidTypeInContext(E->ctx), 1, false));
	E->use_cache = false;
	jit_emit_caches(E, P, JIT_CACHES_STATIC);
	jit_axpy_pack_emit(E, true);
	jit_fn_end(E, NULL);
}

/* setup_run: what setup computes from the inputs, once the static caches
 * are in ws (a setup() since the static tensors last changed). */
static void jit_build_setup_run(JitEmit *E, const JitCachePlan *P)
{
	jit_cold(E, jit_kernel_begin(E, JIT_FN_SETUP_RUN, LLVMVoidTypeInContext(E->ctx), 1, false));
	E->use_cache = false;
	jit_emit_dyn(E);
	jit_axpy_emit_keymaps(E);
	jit_emit_caches(E, P, JIT_CACHES_PER_RUN);
	jit_fn_end(E, NULL);
}

/* relayout: the layout copies again, after a host programmed the dynamic
 * tensors they copy (sim_set_dynamic). */
static void jit_build_relayout(JitEmit *E, const JitCachePlan *P)
{
	jit_cold(E, jit_kernel_begin(E, JIT_FN_RELAYOUT, LLVMVoidTypeInContext(E->ctx), 1, false));
	E->use_cache = false;
	jit_emit_caches(E, P, JIT_CACHES_RELAYOUT);
	jit_fn_end(E, NULL);
}

static void jit_build_init(JitEmit *E)
{
	const Model *m = E->m;
	jit_cold(E, jit_kernel_begin(E, JIT_FN_INIT, LLVMVoidTypeInContext(E->ctx), 2, false));
	E->use_cache = false;
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		int64_t off = model_layer_offset(m, l);
		char name[80];
		snprintf(name, sizeof name, "x0_%s", L->name);
		jit_fill(E, E->x, off, 0, L->n, 0.0, name);
		for (int s = 0; s < L->ninit; s++)
			jit_assign_range(E, E->x, off, L->j, L->init[s].lo < 0 ? 0 : L->init[s].lo,
			                 L->init[s].hi > L->n ? L->n : L->init[s].hi, L->init[s].value, 1.0, -1, name);
		for (int s = 0; s < L->nclamp; s++)
			jit_assign_range(E, E->x, off, L->j, L->clamp[s].lo < 0 ? 0 : L->clamp[s].lo,
			                 L->clamp[s].hi > L->n ? L->n : L->clamp[s].hi, L->clamp[s].value, 1.0, -1, name);
	}
	jit_fn_end(E, NULL);
}

/* rhs: activations, rhs/tau of the free neurons, 0 for the clamped ones. */
static void jit_build_rhs(JitEmit *E, const JitHelpers *H)
{
	const Model *m = E->m;
	LLVMValueRef fn = jit_kernel_begin(E, JIT_FN_RHS, LLVMVoidTypeInContext(E->ctx), 3, false);
	LLVMValueRef out = LLVMGetParam(fn, 2);
	jit_call(E, H->acts, NULL);
	jit_call(E, H->rhs, out);
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		int64_t off = model_layer_offset(m, l);
		for (int c = 0; c < L->nclamp; c++)
			jit_fill(E, out, off, L->clamp[c].lo < 0 ? 0 : L->clamp[c].lo,
			         L->clamp[c].hi > L->n ? L->n : L->clamp[c].hi, 0.0, "clamped");
	}
	jit_fn_end(E, NULL);
}

/* The energy at the innermost level (of each string, in the batched
 * kernel), its planned sums interchanged: the same operations in every
 * energy kernel.  In the batched kernel, stores string b's at out[b]. */
static LLVMValueRef jit_emit_energy(JitEmit *E, LLVMValueRef out)
{
	SymId en = E->m->energy;
	E->axpy_on = true;
	jit_axpy_emit_scalar(E, en);
	jit_batch_open(E);
	LLVMValueRef v = jit_emit(E, en);
	jit_position_top(E);
	if (out)
		LLVMBuildStore(E->b, v, jit_elem_ptr(E, out, E->lv[E->bfloor].iv, "eb"));
	jit_batch_close(E);
	jit_axpy_done(E, en);
	E->axpy_on = false;
	return v;
}

static void jit_build_energy(JitEmit *E, const JitHelpers *H)
{
	jit_cold(E, jit_kernel_begin(E, JIT_FN_ENERGY, E->f64, 2, false));
	jit_call(E, H->acts, NULL);
	jit_stmt_begin(E);
	LLVMValueRef v = E->m->energy ? jit_emit_energy(E, NULL) : jit_f64(E, 0.0);
	jit_fn_end(E, v);
}

static void jit_build_acts(JitEmit *E, const JitLayout *lay, const JitHelpers *H)
{
	LLVMValueRef fn = jit_kernel_begin(E, JIT_FN_ACTS, LLVMVoidTypeInContext(E->ctx), 3, false);
	jit_cold(E, fn);
	jit_call(E, H->acts, NULL);
	jit_copy(E, LLVMGetParam(fn, 2), 0, E->ws, lay->act_off, (int64_t)lay->nact);
	jit_fn_end(E, NULL);
}

static void jit_build_outputs(JitEmit *E, const JitLayout *lay, const JitHelpers *H)
{
	const Model *m = E->m;
	LLVMValueRef fn = jit_kernel_begin(E, JIT_FN_OUTPUTS, LLVMVoidTypeInContext(E->ctx), 3, false);
	jit_cold(E, fn);
	LLVMValueRef out = LLVMGetParam(fn, 2);
	jit_call(E, H->acts, NULL);
	for (int o = 0; o < m->noutputs; o++) {
		const MOutput *O = &m->outputs[o];
		int64_t off = (int64_t)lay->output_off[o];
		if (O->rank == 0)
			jit_assign_nd(E, out, off, 0, NULL, O->expr, O->name);
		else
			jit_assign_range(E, out, off, O->i, 0, O->n, O->expr, 1.0, -1, O->name);
	}
	jit_fn_end(E, NULL);
}

/* euler: one loop over the steps; each step computes the activations and
 * rhs/tau into the scratch dx (calls to dam.acts / dam.rhs, which LLVM's
 * inliner may inline), then moves the free neurons by dt*dx. */
static void jit_build_euler(JitEmit *E, const JitLayout *lay, const JitHelpers *H)
{
	const Model *m = E->m;
	LLVMValueRef fn = jit_kernel_begin(E, JIT_FN_EULER, LLVMVoidTypeInContext(E->ctx), 2, true);
	LLVMValueRef dt = LLVMGetParam(fn, 2), nsteps = LLVMGetParam(fn, 3);
	LLVMSetValueName2(dt, "dt", 2);
	LLVMSetValueName2(nsteps, "nsteps", 6);
	jit_position_top(E);
	LLVMValueRef dx = jit_elem_ptr(E, E->ws, jit_i64(E, lay->dx_off), "dx");
	jit_loop_open(E, 0, jit_i64(E, 0), nsteps, "step");
	E->floor = 1;
	jit_call_ex(E, H->acts, NULL, true);
	jit_call_ex(E, H->rhs, dx, true);
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		int64_t off = model_layer_offset(m, l);
		int64_t (*r)[2] = dam_xrealloc(NULL, (size_t)(L->nclamp + 1) * sizeof *r);
		int nr = jit_free_ranges(L, r);
		for (int k = 0; k < nr; k++)
			jit_euler_update(E, dt, lay->dx_off, off + r[k][0], off + r[k][1]);
		dam_free(r);
	}
	jit_loop_close(E);
	E->floor = 0;
	jit_fn_end(E, NULL);
}

/* Opens batched kernel `name` of parameters (wsv, xv, nb, ..., scratch) (p,
 * pname: np of them): string b's workspace wsv[b] and state xv[b], the
 * shared weights read from wsv[0].  Gives the function; *stride keeps the
 * planned scratch size for jit_batch_kernel_end. */
static LLVMValueRef jit_batch_kernel_begin(JitEmit *E, const char *name, LLVMTypeRef *p, unsigned np,
                                           const char *const *pname, int64_t *stride)
{
	LLVMValueRef fn = jit_fn_begin(E, name, LLVMFunctionType(LLVMVoidTypeInContext(E->ctx), p, np, 0));
	for (unsigned i = 0; i < np; i++)
		LLVMSetValueName2(LLVMGetParam(fn, i), pname[i], strlen(pname[i]));
	unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
	LLVMAddAttributeAtIndex(fn, np, LLVMCreateEnumAttribute(E->ctx, noalias, 0));
	if (E->vlen == 8) {        /* the register blocks of jit_axpy.c use 512-bit vectors */
		static const char *const attr[2] = {"min-legal-vector-width", "prefer-vector-width"};
		for (int i = 0; i < 2; i++)
			LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
			                        LLVMCreateStringAttribute(E->ctx, attr[i], (unsigned)strlen(attr[i]), "512", 3));
	}
	E->scratch = LLVMGetParam(fn, np - 1);
	*stride = E->axscr_size;
	E->axscr_size = jit_axpy_scratch_stride(E);   /* the stride from here on */
	E->batch = true;
	E->wsv = LLVMGetParam(fn, 0);
	E->xv = LLVMGetParam(fn, 1);
	E->nb = LLVMGetParam(fn, 2);
	E->use_cache = true;
	jit_position_top(E);
	E->ws = E->wsw = LLVMBuildLoad2(E->b, E->ptr, E->wsv, "ws0");
	E->x = NULL;
	return fn;
}

static void jit_batch_kernel_end(JitEmit *E, int64_t stride)
{
	E->batch = false;
	E->axscr_size = stride;
	jit_fn_end(E, NULL);
}

/* euler_batch(wsv, xv, nb, dt, nsteps): the Euler loop of dam_euler for nb
 * strings at once, string b's workspace wsv[b] and state xv[b].  The
 * weights and the caches computed from them are read from wsv[0] (the
 * caller guarantees that every string holds the same); each step computes
 * the activations string by string, then each statement of the rhs for all
 * strings, the interchanged sums with the strings loop inside the loop over
 * the rows of the weights (jit_axpy.c), so a row is read once per step for
 * the whole batch.  Every string gets the operations of dam_euler in the
 * same order: the results are those of nb separate calls, bit for bit.
 * Without update, rhs_batch: the activations and dx/dt of every string into
 * its ws (the rhs kernel's values, bit for bit), no step taken. */
static void jit_build_euler_batch(JitEmit *E, const JitLayout *lay, const JitHelpers *H, bool update)
{
	const Model *m = E->m;
	LLVMTypeRef p[6] = {E->ptr, E->ptr, E->i64, E->f64, E->i64, E->ptr};
	static const char *const pname[6] = {"wsv", "xv", "nb", "dt", "nsteps", "scratch"};
	int64_t stride;
	LLVMValueRef fn = jit_batch_kernel_begin(E, update ? JIT_FN_EULER_BATCH : JIT_FN_RHS_BATCH, p, 6, pname,
	                                         &stride);
	LLVMValueRef dt = LLVMGetParam(fn, 3), nsteps = LLVMGetParam(fn, 4);
	jit_axpy_pack_emit(E, false);
	jit_position_top(E);
	jit_loop_open(E, 0, jit_i64(E, 0), nsteps, "step");
	E->floor = 1;
	jit_batch_open(E);
	jit_call_ex(E, H->acts, NULL, true);
	jit_batch_close(E);
	E->axpy_on = true;
	jit_emit_rhs_into(E, NULL, lay->dx_off);
	E->axpy_on = false;
	for (int l = 0; l < m->nlayers && update; l++) {
		const MLayer *L = &m->layers[l];
		int64_t off = model_layer_offset(m, l);
		int64_t (*r)[2] = dam_xrealloc(NULL, (size_t)(L->nclamp + 1) * sizeof *r);
		int nr = jit_free_ranges(L, r);
		for (int k = 0; k < nr; k++) {
			jit_batch_open(E);
			jit_euler_update(E, dt, lay->dx_off, off + r[k][0], off + r[k][1]);
			jit_batch_close(E);
		}
		dam_free(r);
	}
	jit_loop_close(E);
	E->floor = 0;
	jit_batch_kernel_end(E, stride);
}

/* energy_batch(wsv, xv, nb, out, scratch): the energy of nb strings into
 * out[b], the energy kernel's value bit for bit; the planned sums of the
 * energy (the bilinear forms of the weight blocks) computed for all strings
 * at once, a row of the shared weights read once for the batch. */
static void jit_build_energy_batch(JitEmit *E, const JitHelpers *H)
{
	LLVMTypeRef p[5] = {E->ptr, E->ptr, E->i64, E->ptr, E->ptr};
	static const char *const pname[5] = {"wsv", "xv", "nb", "out", "scratch"};
	int64_t stride;
	LLVMValueRef fn = jit_batch_kernel_begin(E, JIT_FN_ENERGY_BATCH, p, 5, pname, &stride);
	jit_batch_open(E);
	jit_call_ex(E, H->acts, NULL, true);
	jit_batch_close(E);
	if (E->m->energy) {
		jit_emit_energy(E, LLVMGetParam(fn, 3));
	} else {
		jit_batch_open(E);
		LLVMBuildStore(E->b, jit_f64(E, 0.0), jit_elem_ptr(E, LLVMGetParam(fn, 3), E->lv[E->bfloor].iv, "eb"));
		jit_batch_close(E);
	}
	jit_batch_kernel_end(E, stride);
}

/* The two halves of a step for a run split over two threads (JIT_SPLIT):
 * rhs_p<h>(ws, x) computes dx/dt into ws for half h of every layer's free
 * neurons (the activations already in ws: acts), update_p<h>(ws, x, dt)
 * moves that half by dt dx.  Each half computes its elements exactly as the
 * fused Euler kernel does (the same statements over a part of their range),
 * so acts; both rhs halves; both updates gives the fused step bit for bit. */
static void jit_split_range(int64_t lo, int64_t hi, int half, int64_t *a, int64_t *b)
{
	int64_t mid = lo + (hi - lo) / 2;
	*a = half ? mid : lo;
	*b = half ? hi : mid;
}

static void jit_build_split(JitEmit *E, const JitLayout *lay, int half)
{
	const Model *m = E->m;
	char name[32];
	snprintf(name, sizeof name, "%s%d", JIT_FN_RHS_HALF, half);
	jit_kernel_begin(E, name, LLVMVoidTypeInContext(E->ctx), 2, false);
	E->axpy_on = true;
	for (int l = 0; l < m->nlayers && !E->failed; l++) {
		const MLayer *L = &m->layers[l];
		int64_t off = model_layer_offset(m, l), a, b;
		int64_t (*r)[2] = dam_xrealloc(NULL, (size_t)(L->nclamp + 1) * sizeof *r);
		int nr = jit_free_ranges(L, r);
		char dname[80];
		snprintf(dname, sizeof dname, "dx_%s", L->name);
		for (int k = 0; k < nr; k++) {
			jit_split_range(r[k][0], r[k][1], half, &a, &b);
			if (a < b)
				jit_assign_range(E, E->ws, lay->dx_off + off, L->j, a, b, L->rhs, L->tau, E->tau_off + off, dname);
		}
		dam_free(r);
	}
	E->axpy_on = false;
	jit_fn_end(E, NULL);
	snprintf(name, sizeof name, "%s%d", JIT_FN_UPDATE_HALF, half);
	LLVMValueRef fn = jit_kernel_begin(E, name, LLVMVoidTypeInContext(E->ctx), 2, true);
	LLVMValueRef dt = LLVMGetParam(fn, 2);
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		int64_t off = model_layer_offset(m, l), a, b;
		int64_t (*r)[2] = dam_xrealloc(NULL, (size_t)(L->nclamp + 1) * sizeof *r);
		int nr = jit_free_ranges(L, r);
		for (int k = 0; k < nr; k++) {
			jit_split_range(r[k][0], r[k][1], half, &a, &b);
			jit_euler_update(E, dt, lay->dx_off, off + a, off + b);
		}
		dam_free(r);
	}
	jit_fn_end(E, NULL);
}

int jit_build_kernels(JitEmit *E, JitLayout *lay, JitPart part)
{
	JitCachePlan P = {0};
	if (jit_layout(E, lay, &P) == 0) {
		JitHelpers H;
		jit_build_helpers(E, lay, &H, part != JIT_PART_COLD);
		if (part != JIT_PART_HOT) {
			jit_build_setup(E, &P);
			jit_build_setup_static(E, &P);
			jit_build_setup_run(E, &P);
			jit_build_relayout(E, &P);
			jit_build_init(E);
			jit_build_energy(E, &H);
			jit_build_acts(E, lay, &H);
			jit_build_outputs(E, lay, &H);
		}
		if (part != JIT_PART_COLD) {
			jit_build_rhs(E, &H);
			jit_build_euler(E, lay, &H);
			if (E->want_batch) {
				jit_build_euler_batch(E, lay, &H, true);
				jit_build_euler_batch(E, lay, &H, false);
				jit_build_energy_batch(E, &H);
			}
			for (int h = 0; h < 2 && E->want_split; h++)
				jit_build_split(E, lay, h);
		}
	}
	dam_free(P.costly);
	dam_free(P.seen);
	dam_free(P.list);
	return E->failed ? -1 : 0;
}
