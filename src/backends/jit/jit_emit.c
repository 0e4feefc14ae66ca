/* jit_emit.c - the expression emitter: symbolic expressions -> LLVM loop nests.
 *
 * An expression with free index variables is compiled inside a stack of
 * loops (jit_internal.h, "Loop scopes").  Every node is emitted at the
 * outermost level where all its free indices are bound -- and, inside the
 * fused Euler loop, not above the time-step loop when it reads the state --
 * and memoised per (SymId, level instance), so a hash-consed subexpression is
 * computed once per evaluation of its level: the log-sum-exp of a softmax
 * activation is computed before the neuron loop, a bias that only depends on
 * constants before any loop.  Reductions (sum, logsumexp, max) become inner
 * loops with accumulator phis; logsumexp is the stable two-pass form (max,
 * then sum of exp(b - max)) with the first pass' values kept in a stack
 * buffer.  Tensor accesses compute row-major offsets; index expressions that
 * are not plain index variables are rounded and clamped into range.  Nothing
 * is expanded per neuron: the code size depends on the expression DAG only.
 *
 * Floating point: no fast-math flags, so results agree with plain C
 * evaluation of the same formulas in the same order.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/DebugInfo.h>

#include "jit_internal.h"

/* Above this extent a logsumexp recomputes its body instead of buffering it
 * on the stack. */
#define JIT_LSE_BUF_MAX 1024

#define JIT_LN2 0.69314718055994530942

void jit_fail(JitEmit *E, const char *fmt, ...)
{
	va_list ap;
	if (E->failed)
		return;
	E->failed = true;
	va_start(ap, fmt);
	vsnprintf(E->err, sizeof E->err, fmt, ap);
	va_end(ap);
}

static void *jit_zalloc(size_t n, size_t size)
{
	size_t bytes = (n ? n : 1) * size;
	void *p = dam_xrealloc(NULL, bytes);
	memset(p, 0, bytes);
	return p;
}

void jit_emit_init(JitEmit *E, LLVMModuleRef mod, const Model *m)
{
	memset(E, 0, sizeof *E);
	E->mod = mod;
	E->ctx = LLVMGetModuleContext(mod);
	E->b = LLVMCreateBuilderInContext(E->ctx);
	E->m = m;
	E->sym = m->sym;
	E->f64 = LLVMDoubleTypeInContext(E->ctx);
	E->i64 = LLVMInt64TypeInContext(E->ctx);
	E->i1 = LLVMInt1TypeInContext(E->ctx);
	E->ptr = LLVMPointerTypeInContext(E->ctx, 0);

	uint32_t nt = sym_tensor_count(E->sym);
	E->gconst = jit_zalloc(nt, sizeof *E->gconst);
	E->ws_off = jit_zalloc(nt, sizeof *E->ws_off);
	E->x_off = jit_zalloc(nt, sizeof *E->x_off);
	E->by_ref = jit_zalloc(nt, sizeof *E->by_ref);
	E->sb_slot = -1;
	E->keyed_off = -1;
	E->wptr = jit_zalloc(nt, sizeof *E->wptr);
	E->wptr_from = jit_zalloc(nt, sizeof *E->wptr_from);
	E->rowkey = jit_zalloc(nt, sizeof *E->rowkey);
	E->rowkey_state = jit_zalloc(nt, sizeof *E->rowkey_state);
	E->keymap_off = jit_zalloc(nt, sizeof *E->keymap_off);
	E->dyn_alias = jit_zalloc(nt, sizeof *E->dyn_alias);
	for (uint32_t t = 0; t < nt; t++)
		E->ws_off[t] = E->x_off[t] = E->keymap_off[t] = -1;

	E->nsym = sym_count(E->sym);
	E->dep = jit_zalloc(E->nsym, sizeof *E->dep);
	E->cache_off = jit_zalloc(E->nsym, sizeof *E->cache_off);
	E->memo = jit_zalloc(E->nsym, sizeof *E->memo);
	E->memo_gen = jit_zalloc(E->nsym, sizeof *E->memo_gen);
	E->lse = jit_zalloc(E->nsym, sizeof *E->lse);
	E->cache_ord = jit_zalloc((size_t)E->nsym * SYM_MAX_RANK, sizeof *E->cache_ord);
	E->cache_ord_set = jit_zalloc(E->nsym, sizeof *E->cache_ord_set);
	E->relayout = jit_zalloc(E->nsym, sizeof *E->relayout);
	E->axbuf_off = jit_zalloc(E->nsym, sizeof *E->axbuf_off);
	E->axready = jit_zalloc(E->nsym, sizeof *E->axready);
	E->axmark = jit_zalloc(E->nsym, sizeof *E->axmark);
	E->pstr = jit_zalloc(E->nsym, sizeof *E->pstr);
	E->axscr_off = jit_zalloc(E->nsym, sizeof *E->axscr_off);
	E->axpack_off = jit_zalloc(E->nsym, sizeof *E->axpack_off);
	E->axpack_sb = jit_zalloc(E->nsym, sizeof *E->axpack_sb);
	E->axbonly = jit_zalloc(E->nsym, sizeof *E->axbonly);
	E->cache_sb = jit_zalloc(E->nsym, sizeof *E->cache_sb);
	E->rin_memo = jit_zalloc(E->nsym, sizeof *E->rin_memo);
	E->vlen = jit_host_vlen();
	for (uint32_t s = 0; s < E->nsym; s++)
		E->cache_off[s] = E->axbuf_off[s] = E->axpack_off[s] = -1;

	uint32_t ni = sym_index_count(E->sym);
	E->var_level = jit_zalloc(ni, sizeof *E->var_level);
	for (uint32_t i = 0; i < ni; i++)
		E->var_level[i] = -1;
}

void jit_emit_fini(JitEmit *E)
{
	if (E->b)
		LLVMDisposeBuilder(E->b);
	dam_free(E->gconst);
	dam_free(E->ws_off);
	dam_free(E->x_off);
	dam_free(E->by_ref);
	dam_free(E->wptr);
	dam_free(E->wptr_from);
	dam_free(E->rowkey);
	dam_free(E->rowkey_state);
	dam_free(E->keymap_off);
	dam_free(E->dyn_alias);
	dam_free(E->dep);
	dam_free(E->cache_off);
	dam_free(E->memo);
	dam_free(E->memo_gen);
	dam_free(E->lse);
	dam_free(E->cache_ord);
	dam_free(E->cache_ord_set);
	dam_free(E->relayout);
	dam_free(E->axbuf_off);
	dam_free(E->axready);
	dam_free(E->axmark);
	dam_free(E->pstr);
	dam_free(E->axscr_off);
	dam_free(E->axpack_off);
	dam_free(E->axpack_sb);
	dam_free(E->axbonly);
	dam_free(E->cache_sb);
	dam_free(E->rin_memo);
	dam_free(E->var_level);
	E->b = NULL;
}

LLVMValueRef jit_i64(JitEmit *E, int64_t v)
{
	return LLVMConstInt(E->i64, (unsigned long long)v, 1);
}

LLVMValueRef jit_f64(JitEmit *E, double v)
{
	return LLVMConstReal(E->f64, v);
}

/* ---- functions and loop levels ------------------------------------------ */

LLVMValueRef jit_fn_begin(JitEmit *E, const char *name, LLVMTypeRef type)
{
	E->fn = LLVMAddFunction(E->mod, name, type);
	unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
	LLVMAddAttributeAtIndex(E->fn, LLVMAttributeFunctionIndex,
	                        LLVMCreateEnumAttribute(E->ctx, nounwind, 0));
	E->entry = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "entry");
	E->depth = 1;
	E->lv[0] = (JitLevel){0};
	E->lv[0].ins = E->body = LLVMAppendBasicBlockInContext(E->ctx, E->fn, "body");
	E->lv[0].gen = ++E->gen_counter;
	E->floor = 0;
	E->nbuf = 0;
	return E->fn;
}

/* Closes the function: the entry block (allocas) falls through to the body,
 * whose final block returns ret (NULL: void). */
void jit_fn_end(JitEmit *E, LLVMValueRef ret)
{
	if (E->depth != 1)
		jit_fail(E, "internal: %d loop levels left open in a function", E->depth - 1);
	LLVMPositionBuilderAtEnd(E->b, E->entry);
	LLVMBuildBr(E->b, E->body);
	LLVMPositionBuilderAtEnd(E->b, E->lv[0].ins);
	if (ret)
		LLVMBuildRet(E->b, ret);
	else
		LLVMBuildRetVoid(E->b);
	E->depth = 0;
}

/* A new statement: values memoised so far are not reused (the statement
 * before may have written memory they were loaded from). */
void jit_stmt_begin(JitEmit *E)
{
	for (int l = 0; l < E->depth; l++)
		E->lv[l].gen = ++E->gen_counter;
}

void jit_position_top(JitEmit *E)
{
	LLVMPositionBuilderAtEnd(E->b, E->lv[E->depth - 1].ins);
}

static void jit_block_name(JitEmit *E, char *buf, size_t n, const char *base, const char *what)
{
	(void)E;
	snprintf(buf, n, "%s.%s", base, what);
}

/* Opens a loop for var (0: an anonymous counter) over [lo, hi) below the
 * current innermost level.  The loop is top-tested, so empty ranges and
 * run-time bounds are fine. */
void jit_loop_open(JitEmit *E, IdxId var, LLVMValueRef lo, LLVMValueRef hi, const char *name)
{
	char buf[96];
	if (E->depth >= JIT_MAX_DEPTH) {
		jit_fail(E, "expression nests more than %d loops", JIT_MAX_DEPTH - 1);
		return;
	}
	JitLevel *L = &E->lv[E->depth];
	*L = (JitLevel){0};
	L->var = var;
	L->lo = lo;
	L->hi = hi;
	jit_block_name(E, buf, sizeof buf, name, "head");
	L->head = LLVMAppendBasicBlockInContext(E->ctx, E->fn, buf);
	jit_block_name(E, buf, sizeof buf, name, "body");
	L->ins = LLVMAppendBasicBlockInContext(E->ctx, E->fn, buf);
	jit_block_name(E, buf, sizeof buf, name, "exit");
	L->exit = LLVMAppendBasicBlockInContext(E->ctx, E->fn, buf);

	LLVMPositionBuilderAtEnd(E->b, L->head);
	L->iv = LLVMBuildPhi(E->b, E->i64, name);
	jit_block_name(E, buf, sizeof buf, name, "more");
	L->check = LLVMBuildICmp(E->b, LLVMIntSLT, L->iv, hi, buf);
	LLVMBuildCondBr(E->b, L->check, L->ins, L->exit);

	L->gen = ++E->gen_counter;
	L->shadow = -1;
	if (var) {
		L->shadow = E->var_level[var];
		E->var_level[var] = E->depth;
	}
	E->depth++;
}

/* An accumulator of the innermost loop: a phi in its header. */
LLVMValueRef jit_loop_phi_ty(JitEmit *E, LLVMTypeRef ty, const char *name)
{
	JitLevel *L = &E->lv[E->depth - 1];
	LLVMPositionBuilderBefore(E->b, L->check);
	return LLVMBuildPhi(E->b, ty, name);
}

static LLVMValueRef jit_loop_phi(JitEmit *E, const char *name)
{
	return jit_loop_phi_ty(E, E->f64, name);
}

/* Closes the innermost loop; accumulator k goes from init[k] (entry) to
 * next[k] (back edge).  The enclosing level continues in the exit block. */
/* Unroll and jam (LLVM's loop-unroll-and-jam, asked for by loop metadata):
 * a loop of at least JIT_JAM_OUTER iterations around an innermost loop of at
 * least JIT_JAM_INNER runs JIT_JAM_COUNT of its iterations' inner loops as one,
 * so that the inner loop carries that many independent accumulators.  A dot
 * product in source order (sum(j, W[mu, j] v[j]) for each mu, where no
 * transposed copy is kept, and the energy's) is one dependent add after
 * another, bound by the add's latency; jammed, 4 rows advance at once.  Each
 * sum still adds its terms in the same order: the same bits.  The seed models'
 * loops are all shorter, so their code does not change. */
#define JIT_JAM_INNER 512
#define JIT_JAM_OUTER 16
#define JIT_JAM_COUNT 4

static int64_t jit_trip(const JitLevel *L)
{
	if (!L->lo || !L->hi || !LLVMIsAConstantInt(L->lo) || !LLVMIsAConstantInt(L->hi))
		return -1;
	return LLVMConstIntGetSExtValue(L->hi) - LLVMConstIntGetSExtValue(L->lo);
}

/* Loop metadata on the back edge br: the loop ID (which refers to itself)
 * with the properties props[0..n). */
static void jit_mark_loop(JitEmit *E, LLVMValueRef br, LLVMMetadataRef *props, int n)
{
	LLVMMetadataRef self = LLVMTemporaryMDNode(E->ctx, NULL, 0);
	LLVMMetadataRef ops[3] = {self};
	for (int k = 0; k < n; k++)
		ops[k + 1] = props[k];
	LLVMMetadataRef id = LLVMMDNodeInContext2(E->ctx, ops, (size_t)n + 1);
	LLVMMetadataReplaceAllUsesWith(self, id);
	LLVMSetMetadata(br, LLVMGetMDKindIDInContext(E->ctx, "llvm.loop", 9), LLVMMetadataAsValue(E->ctx, id));
}

static void jit_mark_jam(JitEmit *E, LLVMValueRef br)
{
	LLVMTypeRef i32 = LLVMInt32TypeInContext(E->ctx);
	const char *en = "llvm.loop.unroll_and_jam.enable", *ct = "llvm.loop.unroll_and_jam.count";
	LLVMMetadataRef e1[1] = {LLVMMDStringInContext2(E->ctx, en, strlen(en))};
	LLVMMetadataRef c2[2] = {LLVMMDStringInContext2(E->ctx, ct, strlen(ct)),
	                         LLVMValueAsMetadata(LLVMConstInt(i32, JIT_JAM_COUNT, 0))};
	LLVMMetadataRef props[2] = {LLVMMDNodeInContext2(E->ctx, e1, 1), LLVMMDNodeInContext2(E->ctx, c2, 2)};
	jit_mark_loop(E, br, props, 2);
}

static void jit_mark_rolled(JitEmit *E, LLVMValueRef br)
{
	const char *d = "llvm.loop.unroll.disable";
	LLVMMetadataRef e1[1] = {LLVMMDStringInContext2(E->ctx, d, strlen(d))};
	LLVMMetadataRef props[1] = {LLVMMDNodeInContext2(E->ctx, e1, 1)};
	jit_mark_loop(E, br, props, 1);
}

void jit_loop_close_acc(JitEmit *E, int nacc, LLVMValueRef *phi,
                        LLVMValueRef *init, LLVMValueRef *next)
{
	if (E->depth < 2 || E->failed) {
		if (E->depth >= 2)
			E->depth--;
		return;
	}
	JitLevel *L = &E->lv[E->depth - 1];
	JitLevel *up = &E->lv[E->depth - 2];
	LLVMBasicBlockRef latch = L->ins, pre = up->ins;

	LLVMPositionBuilderAtEnd(E->b, latch);
	LLVMValueRef inc = LLVMBuildNSWAdd(E->b, L->iv, jit_i64(E, 1), "next");
	LLVMValueRef back = LLVMBuildBr(E->b, L->head);
	int64_t trip = jit_trip(L);
	if (L->jam && trip >= JIT_JAM_OUTER)
		jit_mark_jam(E, back);
	else if (L->rolled)
		jit_mark_rolled(E, back);
	if (E->depth >= 3 && !L->has_inner && trip >= JIT_JAM_INNER)
		up->jam = true;
	up->has_inner = true;
	LLVMPositionBuilderAtEnd(E->b, pre);
	LLVMBuildBr(E->b, L->head);

	LLVMValueRef vals[2] = {L->lo, inc};
	LLVMBasicBlockRef from[2] = {pre, latch};
	LLVMAddIncoming(L->iv, vals, from, 2);
	for (int k = 0; k < nacc; k++) {
		LLVMValueRef v2[2] = {init[k], next[k]};
		LLVMAddIncoming(phi[k], v2, from, 2);
	}
	up->ins = L->exit;
	if (L->var)
		E->var_level[L->var] = L->shadow;
	E->depth--;
}

void jit_loop_close(JitEmit *E)
{
	jit_loop_close_acc(E, 0, NULL, NULL, NULL);
}

/* ---- node placement -------------------------------------------------------- */

bool jit_dep_state(JitEmit *E, SymId e)
{
	if (E->dep[e])
		return E->dep[e] == 2;
	const SymNode *n = sym_node(E->sym, e);
	bool dep = false;
	if (n->kind == SYM_TENSOR) {
		MTensorKind k = E->m->tensors[n->aux].kind;
		dep = k == MT_STATE || k == MT_ACT;
	}
	for (int i = 0; i < n->nkids && !dep; i++)
		dep = jit_dep_state(E, n->kids[i]);
	E->dep[e] = dep ? 2 : 1;
	return dep;
}

/* Does e read data of one string (state, activations, inputs, dynamic
 * tensors), as opposed to weights that all strings of a batch share? */
static bool jit_per_string(JitEmit *E, SymId e)
{
	if (E->pstr[e])
		return E->pstr[e] == 2;
	const SymNode *n = sym_node(E->sym, e);
	bool per = false;
	if (n->kind == SYM_TENSOR) {
		MTensorKind k = E->m->tensors[n->aux].kind;
		per = k == MT_STATE || k == MT_ACT || k == MT_INPUT || k == MT_DYN;
	}
	for (int i = 0; i < n->nkids && !per; i++)
		per = jit_per_string(E, n->kids[i]);
	E->pstr[e] = per ? 2 : 1;
	return per;
}

/* The outermost level at which e can be computed. */
static int jit_level_of(JitEmit *E, SymId e)
{
	const SymNode *n = sym_node(E->sym, e);
	int level = 0;
	for (int i = 0; i < n->nfree; i++) {
		int vl = E->var_level[n->free[i]];
		if (vl < 0) {
			jit_fail(E, "index '%s' is not bound where it is used",
			         sym_index_name(E->sym, n->free[i]));
			return E->depth - 1;
		}
		if (vl > level)
			level = vl;
	}
	if (E->floor > level && jit_dep_state(E, e))
		level = E->floor;
	if (E->bfloor > level && jit_per_string(E, e))
		level = E->bfloor;
	return level;
}

static void jit_at(JitEmit *E, int level)
{
	LLVMPositionBuilderAtEnd(E->b, E->lv[level].ins);
}

void jit_at_level(JitEmit *E, int level)
{
	jit_at(E, level);
}

/* ---- the loop over the strings of a batch ------------------------------------ */

void jit_batch_open(JitEmit *E)
{
	if (!E->batch || E->failed)
		return;
	jit_loop_open(E, 0, jit_i64(E, 0), E->nb, "str");
	if (E->failed)
		return;
	E->bfloor = E->depth - 1;
	jit_position_top(E);
	LLVMValueRef b = E->lv[E->bfloor].iv;
	LLVMValueRef pw = LLVMBuildInBoundsGEP2(E->b, E->ptr, E->wsv, &b, 1, "pws");
	LLVMValueRef px = LLVMBuildInBoundsGEP2(E->b, E->ptr, E->xv, &b, 1, "px");
	E->ws = LLVMBuildLoad2(E->b, E->ptr, pw, "wsb");
	E->x = LLVMBuildLoad2(E->b, E->ptr, px, "xb");
	LLVMValueRef so = LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, b, jit_i64(E, E->axscr_size), "scroff"),
	                                  jit_i64(E, E->axpack_size), "scrpk");
	E->scr = jit_elem_ptr(E, E->scratch, so, "scrb");
}

void jit_batch_close(JitEmit *E)
{
	if (!E->batch || E->failed)
		return;
	jit_loop_close(E);
	E->bfloor = 0;
	E->ws = E->wsw;
	E->x = NULL;
}

LLVMValueRef jit_elem_ptr(JitEmit *E, LLVMValueRef base, LLVMValueRef off, const char *name)
{
	return LLVMBuildInBoundsGEP2(E->b, E->f64, base, &off, 1, name);
}

/* ---- calls ------------------------------------------------------------------- */

static LLVMValueRef jit_intrin(JitEmit *E, const char *name, int nargs, LLVMValueRef *args,
                               const char *vname)
{
	unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
	LLVMValueRef f = LLVMGetIntrinsicDeclaration(E->mod, id, &E->f64, 1);
	LLVMTypeRef ft = LLVMIntrinsicGetType(E->ctx, id, &E->f64, 1);
	return LLVMBuildCall2(E->b, ft, f, args, (unsigned)nargs, vname);
}

static LLVMValueRef jit_intrin1(JitEmit *E, const char *name, LLVMValueRef a, const char *vname)
{
	return jit_intrin(E, name, 1, &a, vname);
}

/* A double(double) function of the C library, resolved in the process. */
static LLVMValueRef jit_libm(JitEmit *E, const char *name, LLVMValueRef a, const char *vname)
{
	LLVMTypeRef ft = LLVMFunctionType(E->f64, &E->f64, 1, 0);
	LLVMValueRef f = LLVMGetNamedFunction(E->mod, name);
	if (!f) {
		f = LLVMAddFunction(E->mod, name, ft);
		unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
		LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
		                        LLVMCreateEnumAttribute(E->ctx, nounwind, 0));
	}
	return LLVMBuildCall2(E->b, ft, f, &a, 1, vname);
}

/* ---- exp ------------------------------------------------------------------------ */

/* JitOptions.fast_exp: exp(x) as straight-line IR without a call, so loops
 * around it vectorise (glibc's exp is scalar: llvm.exp.v8f64 becomes eight
 * calls).  Range reduction x = k ln2 + r, k = round(x / ln2) by the 1.5 * 2^52
 * shift (the integer k is then in the low bits, no fptosi), r = (x - k L1) -
 * k L2 with ln2 = L1 + L2 split Cody-Waite style (L1 = ln2 rounded down to a
 * multiple of 2^-32, L2 = ln2 - L1 rounded: k L1 is exact for |k| < 2^21 and
 * x - k L1 is exact).  e^r on |r| <= ln2/2 (a hair beyond when x / ln2
 * rounds) by its Taylor polynomial of degree 13, coefficients 1/n!
 * (truncation < 6e-18 relative), as 1 + (rhi + (r^2 s(r) - k L2)) with s in
 * Estrin's form.  Then the scale 2^k in two steps, 2^k1 * 2^k2 with k1 + k2
 * = k built from integer exponent fields, so that results in the subnormal
 * range are rounded once instead of flushed (p 2^k1 is exact, the second
 * product rounds), and k = 1024 (x just below the overflow threshold) needs
 * no special case.  x > 709.78 gives +inf, x < -745.13 gives 0 (glibc's
 * thresholds exactly), NaN gives NaN.  Plain fmul/fadd without fast-math
 * flags or fma: the same bits on every host.  Error (t_jit_fastexp.c, 2 *
 * 10^6 points over [-745.2, 709.8] and special values): < 1 ulp from the
 * exact value (0.946 observed), <= 1 ulp from glibc's exp. */
#define JIT_EXP_DEG 13
#define JIT_EXP_XMAX 0x1.62e42fefa39efp+9    /* largest x with exp(x) finite (709.78) */
#define JIT_EXP_XMIN -0x1.74910d52d3051p+9   /* smallest x with exp(x) > 0 (-745.13) */

static LLVMValueRef jit_fsel(JitEmit *E, LLVMRealPredicate p, LLVMValueRef a, double c,
                             LLVMValueRef t, LLVMValueRef f, const char *name)
{
	LLVMValueRef cmp = LLVMBuildFCmp(E->b, p, a, jit_f64(E, c), name);
	return LLVMBuildSelect(E->b, cmp, t, f, name);
}

/* 2^(e - 1023) for an i64 biased exponent e in [1, 2046]. */
static LLVMValueRef jit_pow2_biased(JitEmit *E, LLVMValueRef e, const char *name)
{
	LLVMValueRef bits = LLVMBuildShl(E->b, e, jit_i64(E, 52), name);
	return LLVMBuildBitCast(E->b, bits, E->f64, name);
}

/* s(r) = (e^r - 1 - r) / r^2 for |r| <= ln2/2: the sum of a_i r^i, a_i =
 * 1/(i+2)!, i < JIT_EXP_DEG - 1, in Estrin's scheme (pairs, then r^2, r^4,
 * r^8): 7 dependent operations instead of Horner's 22, for the latency of
 * a lone vector in a loop of 8 or 16 neurons.  r2 = r * r. */
static LLVMValueRef jit_exp_poly(JitEmit *E, LLVMValueRef r, LLVMValueRef r2)
{
	enum { NA = JIT_EXP_DEG - 1 };
	LLVMValueRef t[NA];
	double fact = 1;
	int n = 0;
	for (int i = 0; i < NA; i += 2) {
		double a0 = 1 / (fact *= i + 2), a1 = 1 / (fact *= i + 3);   /* (i+2)!, exact */
		LLVMValueRef hi = LLVMBuildFMul(E->b, r, jit_f64(E, a1), "exp.a");
		t[n++] = LLVMBuildFAdd(E->b, jit_f64(E, a0), hi, "exp.b");
	}
	for (LLVMValueRef pw = r2; n > 1; pw = LLVMBuildFMul(E->b, pw, pw, "exp.rp")) {
		int m = 0;
		for (int i = 0; i < n; i += 2)
			t[m++] = i + 1 < n ? LLVMBuildFAdd(E->b, t[i], LLVMBuildFMul(E->b, t[i + 1], pw, "exp.c"), "exp.d")
			                   : t[i];
		n = m;
	}
	return t[0];
}

static LLVMValueRef jit_exp_inline(JitEmit *E, LLVMValueRef x, const char *vname)
{
	const double shift = 0x1.8p52, l1 = 0x1.62e42fee00000p-1, l2 = 0x1.a39ef35793c76p-33;
	/* Clamp so that k stays in [-1077, 1025] (NaN becomes 710: replaced below). */
	LLVMValueRef xc = jit_fsel(E, LLVMRealOLT, x, 710.0, x, jit_f64(E, 710.0), "exp.hi");
	xc = jit_fsel(E, LLVMRealOGT, xc, -746.0, xc, jit_f64(E, -746.0), "exp.lo");
	LLVMValueRef t = LLVMBuildFMul(E->b, xc, jit_f64(E, 0x1.71547652b82fep0), "exp.xl2e");
	t = LLVMBuildFAdd(E->b, t, jit_f64(E, shift), "exp.ks");
	LLVMValueRef kf = LLVMBuildFSub(E->b, t, jit_f64(E, shift), "exp.kf");
	/* r = rhi - c, rhi exact; e^r = 1 + (rhi + (r^2 s(r) - c)), so the
	 * rounding of r itself does not reach the result. */
	LLVMValueRef rhi = LLVMBuildFSub(E->b, xc, LLVMBuildFMul(E->b, kf, jit_f64(E, l1), "exp.kl1"), "exp.rhi");
	LLVMValueRef c = LLVMBuildFMul(E->b, kf, jit_f64(E, l2), "exp.kl2");
	LLVMValueRef r = LLVMBuildFSub(E->b, rhi, c, "exp.r");
	LLVMValueRef r2 = LLVMBuildFMul(E->b, r, r, "exp.r2");
	LLVMValueRef q = LLVMBuildFMul(E->b, r2, jit_exp_poly(E, r, r2), "exp.q");
	LLVMValueRef u = LLVMBuildFAdd(E->b, rhi, LLVMBuildFSub(E->b, q, c, "exp.qc"), "exp.u");
	LLVMValueRef p = LLVMBuildFAdd(E->b, jit_f64(E, 1.0), u, "exp.er");

	/* k = bits(t) - bits(shift); e = k + 2046 = (k1 + 1023) + (k2 + 1023). */
	LLVMValueRef tb = LLVMBuildBitCast(E->b, t, E->i64, "exp.tbits");
	int64_t sbits;
	memcpy(&sbits, &shift, sizeof sbits);
	LLVMValueRef e = LLVMBuildAdd(E->b, tb, jit_i64(E, 2046 - sbits), "exp.e");
	LLVMValueRef e1 = LLVMBuildLShr(E->b, e, jit_i64(E, 1), "exp.e1");
	LLVMValueRef e2 = LLVMBuildSub(E->b, e, e1, "exp.e2");
	LLVMValueRef y = LLVMBuildFMul(E->b, p, jit_pow2_biased(E, e1, "exp.s1"), "exp.y1");
	y = LLVMBuildFMul(E->b, y, jit_pow2_biased(E, e2, "exp.s2"), "exp.y");

	y = jit_fsel(E, LLVMRealOGT, x, JIT_EXP_XMAX, jit_f64(E, INFINITY), y, "exp.ovf");
	y = jit_fsel(E, LLVMRealOLT, x, JIT_EXP_XMIN, jit_f64(E, 0.0), y, "exp.unf");
	LLVMValueRef nan = LLVMBuildFCmp(E->b, LLVMRealUNO, x, x, "exp.isnan");
	return LLVMBuildSelect(E->b, nan, x, y, vname);
}

/* exp: the C library's (llvm.exp), or inline with JitOptions.fast_exp. */
static LLVMValueRef jit_exp(JitEmit *E, LLVMValueRef a, const char *vname)
{
	if (E->fast_exp)
		return jit_exp_inline(E, a, vname);
	return jit_intrin1(E, "llvm.exp", a, vname);
}

/* ---- elementwise functions --------------------------------------------------- */

static LLVMValueRef jit_relu(JitEmit *E, LLVMValueRef a)
{
	LLVMValueRef pos = LLVMBuildFCmp(E->b, LLVMRealOGT, a, jit_f64(E, 0.0), "pos");
	return LLVMBuildSelect(E->b, pos, a, jit_f64(E, 0.0), "relu");
}

/* log1p(exp(-k*|a|)), the tail of softplus and logcosh. */
static LLVMValueRef jit_log1p_exp_neg(JitEmit *E, LLVMValueRef absa, double k)
{
	LLVMValueRef t = LLVMBuildFMul(E->b, absa, jit_f64(E, -k), "negabs");
	LLVMValueRef ex = jit_exp(E, t, "expneg");
	return jit_libm(E, "log1p", ex, "log1p");
}

static LLVMValueRef jit_fn_value(JitEmit *E, SymFn fn, LLVMValueRef a)
{
	LLVMValueRef zero = jit_f64(E, 0.0), one = jit_f64(E, 1.0), t, absa;
	switch (fn) {
	case SYMFN_EXP:  return jit_exp(E, a, "exp");
	case SYMFN_LOG:  return jit_intrin1(E, "llvm.log", a, "log");
	case SYMFN_SQRT: return jit_intrin1(E, "llvm.sqrt", a, "sqrt");
	case SYMFN_ABS:  return jit_intrin1(E, "llvm.fabs", a, "abs");
	case SYMFN_RELU: return jit_relu(E, a);
	case SYMFN_STEP:
		t = LLVMBuildFCmp(E->b, LLVMRealOGT, a, zero, "pos");
		return LLVMBuildUIToFP(E->b, t, E->f64, "step");
	case SYMFN_SIGN:
		t = LLVMBuildSelect(E->b, LLVMBuildFCmp(E->b, LLVMRealOLT, a, zero, "neg"),
		                    jit_f64(E, -1.0), zero, "signneg");
		return LLVMBuildSelect(E->b, LLVMBuildFCmp(E->b, LLVMRealOGT, a, zero, "pos"),
		                       one, t, "sign");
	case SYMFN_SOFTPLUS:
		absa = jit_intrin1(E, "llvm.fabs", a, "abs");
		return LLVMBuildFAdd(E->b, jit_relu(E, a), jit_log1p_exp_neg(E, absa, 1.0), "softplus");
	case SYMFN_SIGMOID:
		t = jit_exp(E, LLVMBuildFNeg(E->b, a, "neg"), "expneg");
		return LLVMBuildFDiv(E->b, one, LLVMBuildFAdd(E->b, one, t, "den"), "sigmoid");
	case SYMFN_TANH: return jit_libm(E, "tanh", a, "tanh");
	case SYMFN_LOGCOSH:
		absa = jit_intrin1(E, "llvm.fabs", a, "abs");
		t = LLVMBuildFAdd(E->b, absa, jit_log1p_exp_neg(E, absa, 2.0), "lc");
		return LLVMBuildFSub(E->b, t, jit_f64(E, JIT_LN2), "logcosh");
	case SYMFN_COUNT: break;
	}
	jit_fail(E, "unknown elementwise function %d", (int)fn);
	return zero;
}

/* a^k for an integer k by repeated squaring. */
static LLVMValueRef jit_powi(JitEmit *E, LLVMValueRef a, int64_t k)
{
	uint64_t u = (uint64_t)(k < 0 ? -k : k);
	LLVMValueRef r = NULL, base = a;
	while (u) {
		if (u & 1)
			r = r ? LLVMBuildFMul(E->b, r, base, "powi") : base;
		u >>= 1;
		if (u)
			base = LLVMBuildFMul(E->b, base, base, "sq");
	}
	if (!r)
		r = jit_f64(E, 1.0);
	if (k < 0)
		r = LLVMBuildFDiv(E->b, jit_f64(E, 1.0), r, "recip");
	return r;
}

/* ---- tensor access ------------------------------------------------------- */

/* The i64 value of index expression e for an axis of length dim, in range. */
static LLVMValueRef jit_index(JitEmit *E, SymId e, int64_t dim, int level)
{
	const SymNode *n = sym_node(E->sym, e);
	LLVMValueRef lim = jit_i64(E, dim > 0 ? dim - 1 : 0);
	if (n->kind == SYM_IDX && E->var_level[n->aux] >= 0) {
		LLVMValueRef iv = E->lv[E->var_level[n->aux]].iv;
		if (sym_index_extent(E->sym, n->aux) <= dim)
			return iv;
		jit_at(E, level);
		LLVMValueRef in = LLVMBuildICmp(E->b, LLVMIntSLT, iv, lim, "inrange");
		return LLVMBuildSelect(E->b, in, iv, lim, "clampidx");
	}
	if (n->kind == SYM_CONST) {
		double r = round(n->val);
		int64_t k = r > 0 ? (r < (double)dim ? (int64_t)r : dim - 1) : 0;
		return jit_i64(E, k < 0 ? 0 : k);
	}
	LLVMValueRef v = jit_emit(E, e);
	jit_at(E, jit_level_of(E, e));   /* convert where v lives, not per use */
	LLVMValueRef r = jit_intrin1(E, "llvm.round", v, "round");
	LLVMValueRef lo = LLVMBuildFCmp(E->b, LLVMRealOGE, r, jit_f64(E, 0.0), "nonneg");
	r = LLVMBuildSelect(E->b, lo, r, jit_f64(E, 0.0), "clamplo");
	LLVMValueRef hi = LLVMBuildFCmp(E->b, LLVMRealOLE, r, jit_f64(E, (double)(dim - 1)), "below");
	r = LLVMBuildSelect(E->b, hi, r, jit_f64(E, (double)(dim > 0 ? dim - 1 : 0)), "clamphi");
	return LLVMBuildFPToSI(E->b, r, E->i64, "index");
}

/* The values of a tensor held by reference: the pointer in its slot of
 * wsw, loaded once per function right where wsw becomes known (the entry
 * block for an argument), so it dominates every use. */
static LLVMValueRef jit_slot_load(JitEmit *E, int64_t slot, const char *name);

static LLVMValueRef jit_weight_ptr(JitEmit *E, TensorId t)
{
	if (!E->wptr[t] || E->wptr_from[t] != E->wsw) {
		E->wptr[t] = jit_slot_load(E, E->ws_off[t], sym_tensor_name(E->sym, t));
		E->wptr_from[t] = E->wsw;
	}
	return E->wptr[t];
}

/* The static block's pointer (E->sb_slot), loaded once per function. */
LLVMValueRef jit_static_block(JitEmit *E)
{
	if (!E->sbptr || E->sbptr_from != E->wsw) {
		E->sbptr = jit_slot_load(E, E->sb_slot, "static");
		E->sbptr_from = E->wsw;
	}
	return E->sbptr;
}

/* The pointer in ws[slot] of wsw, loaded right where wsw becomes known. */
static LLVMValueRef jit_slot_load(JitEmit *E, int64_t slot, const char *name)
{
	LLVMBasicBlockRef at = LLVMGetInsertBlock(E->b);
	if (LLVMIsAArgument(E->wsw)) {
		LLVMPositionBuilderAtEnd(E->b, E->entry);
	} else {
		LLVMValueRef next = LLVMGetNextInstruction(E->wsw);
		if (next)
			LLVMPositionBuilderBefore(E->b, next);
		else
			LLVMPositionBuilderAtEnd(E->b, LLVMGetInstructionParent(E->wsw));
	}
	LLVMValueRef p = jit_elem_ptr(E, E->wsw, jit_i64(E, slot), "slot");
	LLVMValueRef v = LLVMBuildLoad2(E->b, E->ptr, p, name);
	if (at)
		LLVMPositionBuilderAtEnd(E->b, at);
	return v;
}

/* Base pointer and element offset of tensor t. */
static LLVMValueRef jit_tensor_base(JitEmit *E, TensorId t, int64_t *off)
{
	const MTensor *mt = &E->m->tensors[t];
	*off = 0;
	switch (mt->kind) {
	case MT_CONST:
	case MT_LEARN:
		if (E->gconst[t])
			return E->gconst[t];
		if (E->by_ref[t])
			return E->ws_off[t] >= 0 && E->wsw ? jit_weight_ptr(E, t) : NULL;
		*off = E->ws_off[t];
		return *off >= 0 ? E->wsw : NULL;
	case MT_INPUT:
	case MT_DYN:
	case MT_ACT:
		*off = E->ws_off[t];
		return *off >= 0 ? E->ws : NULL;
	case MT_STATE:
		*off = E->x_off[t];
		return *off >= 0 ? E->x : NULL;
	case MT_FORMAL:
		break;
	}
	return NULL;
}

static LLVMValueRef jit_emit_tensor(JitEmit *E, SymId e, int level)
{
	const SymNode *n = sym_node(E->sym, e);
	TensorId t = n->aux;
	const char *name = sym_tensor_name(E->sym, t);
	int rank = sym_tensor_rank(E->sym, t);
	const int64_t *shape = sym_tensor_shape(E->sym, t);
	LLVMValueRef idx[SYM_MAX_RANK];
	int64_t off;

	LLVMValueRef base = jit_tensor_base(E, t, &off);
	if (!base || n->nkids != rank) {
		size_t len = 0;
		const char *fn = LLVMGetValueName2(E->fn, &len);
		jit_fail(E, "tensor '%s' (%s) cannot be read in %s", name,
		         E->m->tensors[t].kind == MT_STATE ? "layer state" : "no storage", fn);
		return jit_f64(E, 0.0);
	}
	for (int k = 0; k < rank; k++)
		idx[k] = jit_index(E, n->kids[k], shape[k], level);
	jit_at(E, level);
	LLVMValueRef flat = jit_i64(E, off);
	if (rank > 0) {
		LLVMValueRef acc = idx[0];
		for (int k = 1; k < rank; k++) {
			acc = LLVMBuildNSWMul(E->b, acc, jit_i64(E, shape[k]), "rowoff");
			acc = LLVMBuildNSWAdd(E->b, acc, idx[k], "flat");
		}
		flat = off ? LLVMBuildNSWAdd(E->b, acc, flat, "off") : acc;
	}
	LLVMValueRef p = jit_elem_ptr(E, base, flat, name);
	return LLVMBuildLoad2(E->b, E->f64, p, name);
}

/* The flat offset of e's cache entry at the bound counters: row-major over
 * its free indices in the cache's order. */
LLVMValueRef jit_cache_flat(JitEmit *E, SymId e)
{
	const SymNode *n = sym_node(E->sym, e);
	const IdxId *ord = E->cache_ord_set[e] ? E->cache_ord + (size_t)e * SYM_MAX_RANK : n->free;
	LLVMValueRef acc = NULL;
	for (int k = 0; k < n->nfree; k++) {
		LLVMValueRef iv = E->lv[E->var_level[ord[k]]].iv;
		if (acc) {
			int64_t ext = sym_index_extent(E->sym, ord[k]);
			acc = LLVMBuildNSWMul(E->b, acc, jit_i64(E, ext), "rowoff");
			acc = LLVMBuildNSWAdd(E->b, acc, iv, "flat");
		} else {
			acc = iv;
		}
	}
	LLVMValueRef off = jit_i64(E, E->cache_off[e]);
	return acc ? LLVMBuildNSWAdd(E->b, acc, off, "off") : off;
}

/* Where the cache of e lives: the static block, this string's workspace, or
 * (shared by the strings of a batch) the first string's. */
LLVMValueRef jit_cache_base(JitEmit *E, SymId e)
{
	if (E->cache_sb[e])
		return jit_static_block(E);
	return jit_per_string(E, e) ? E->ws : E->wsw;
}

/* Load of a setup-time cache of e (state-free, computed by setup()). */
static LLVMValueRef jit_emit_cached(JitEmit *E, SymId e, int level)
{
	jit_at(E, level);
	LLVMValueRef off = jit_cache_flat(E, e);
	LLVMValueRef base = jit_cache_base(E, e);
	return LLVMBuildLoad2(E->b, E->f64, jit_elem_ptr(E, base, off, "cache"), "cached");
}

static int64_t jit_divisor_power(JitEmit *E, SymId f, SymId *base);

/* Is e a read T[r, c] of a rank-2 tensor with storage (weights; with
 * dynamic, also dynamic and input tensors) whose extents fit its shape?
 * Gives its base pointer (NULL outside a function), the offset of T[0, 0]
 * and the row stride. */
static bool jit_matrix_read(JitEmit *E, SymId e, IdxId r, IdxId c, bool dynamic, LLVMValueRef *base,
                            int64_t *off, int64_t *stride)
{
	const SymNode *n = sym_node(E->sym, e);
	if (n->kind != SYM_TENSOR || n->nkids != 2)
		return false;
	MTensorKind kind = E->m->tensors[n->aux].kind;
	const SymNode *k0 = sym_node(E->sym, n->kids[0]), *k1 = sym_node(E->sym, n->kids[1]);
	const int64_t *shape = sym_tensor_shape(E->sym, n->aux);
	bool kind_ok = kind == MT_CONST || kind == MT_LEARN || (dynamic && (kind == MT_DYN || kind == MT_INPUT));
	if (!kind_ok || k0->kind != SYM_IDX || k0->aux != r || k1->kind != SYM_IDX || k1->aux != c ||
	    sym_index_extent(E->sym, r) > shape[0] || sym_index_extent(E->sym, c) > shape[1])
		return false;
	if (!E->gconst[n->aux] && E->ws_off[n->aux] < 0)
		return false;
	LLVMValueRef b = jit_tensor_base(E, n->aux, off);
	if (base)
		*base = b;
	*stride = shape[1];
	return true;
}

/* Is e a read X[mu] of an activation or a state (stored where the kernel
 * finds it: the workspace, the state vector) within its extent?  Gives its
 * base pointer and the offset of X[0]. */
bool jit_vector_read(JitEmit *E, SymId e, IdxId mu, LLVMValueRef *base, int64_t *off)
{
	const SymNode *n = sym_node(E->sym, e);
	if (n->kind != SYM_TENSOR || n->nkids != 1)
		return false;
	MTensorKind kind = E->m->tensors[n->aux].kind;
	const SymNode *k0 = sym_node(E->sym, n->kids[0]);
	if ((kind != MT_ACT && kind != MT_STATE) || k0->kind != SYM_IDX || k0->aux != mu ||
	    sym_index_extent(E->sym, mu) > sym_tensor_shape(E->sym, n->aux)[0])
		return false;
	*base = jit_tensor_base(E, n->aux, off);
	return *base != NULL;
}

/* Is e a matrix A(mu, j) stored row-major with j contiguous: a cache
 * flattened (mu, j) or a tensor read T[mu, j] whose extents fit its shape,
 * shared by the strings of a batch (or, unless shared, a string's own)?
 * Gives its base pointer (where ws and wsw are valid: NULL outside a
 * function), the element offset of A(0, 0) and the row stride. */
bool jit_rows(JitEmit *E, SymId e, IdxId mu, IdxId j, bool shared, LLVMValueRef *base, int64_t *off,
              int64_t *stride)
{
	const SymNode *n = sym_node(E->sym, e);
	bool per = jit_per_string(E, e);
	if ((shared && per) || n->nfree != 2)
		return false;
	if (E->cache_off[e] >= 0) {
		const IdxId *ord = E->cache_ord_set[e] ? E->cache_ord + (size_t)e * SYM_MAX_RANK : n->free;
		if (ord[0] != mu || ord[1] != j)
			return false;
		if (base)
			*base = E->cache_sb[e] && !E->wsw ? NULL : jit_cache_base(E, e);
		*off = E->cache_off[e];
		*stride = sym_index_extent(E->sym, j);
		return true;
	}
	return jit_matrix_read(E, e, mu, j, true, base, off, stride);
}

bool jit_rows_t(JitEmit *E, SymId e, IdxId mu, IdxId j, LLVMValueRef *base, int64_t *off, int64_t *stride)
{
	return sym_node(E->sym, e)->nfree == 2 && !jit_per_string(E, e) &&
	       jit_matrix_read(E, e, j, mu, false, base, off, stride);
}

/* Does e depend on the index r only through reads X[r, ...] whose rows are
 * keyed by one input (the input itself, X = in, or a dynamic tensor whose
 * rows it keys), r not in their other indices?  Collects that input in *in. */
static bool jit_row_key_walk(JitEmit *E, SymId e, IdxId r, TensorId *in, int depth)
{
	if (!sym_has_free(E->sym, e, r))
		return true;
	const SymNode *n = sym_node(E->sym, e);
	if (depth > 256 || n->kind == SYM_IDX)
		return false;
	if (n->kind == SYM_TENSOR && n->nkids >= 1 && sym_node(E->sym, n->kids[0])->kind == SYM_IDX &&
	    sym_node(E->sym, n->kids[0])->aux == r) {
		for (int k = 1; k < n->nkids; k++)
			if (sym_has_free(E->sym, n->kids[k], r))
				return false;
		MTensorKind kind = E->m->tensors[n->aux].kind;
		TensorId key = kind == MT_INPUT && n->nkids == 1 ? n->aux : kind == MT_DYN ? jit_row_key(E, n->aux) : 0;
		if (!key || (*in && *in != key))
			return false;
		*in = key;
		return true;
	}
	for (int k = 0; k < n->nkids; k++)
		if (!jit_row_key_walk(E, n->kids[k], r, in, depth + 1))
			return false;
	return true;
}

TensorId jit_row_key(JitEmit *E, TensorId t)
{
	const MTensor *mt = &E->m->tensors[t];
	if (mt->kind != MT_DYN || !mt->def || sym_tensor_rank(E->sym, t) < 1)
		return 0;
	if (E->rowkey_state[t])
		return E->rowkey_state[t] == 2 ? E->rowkey[t] : 0;
	E->rowkey_state[t] = 1;
	TensorId in = 0;
	if (!jit_row_key_walk(E, mt->def, mt->idx[0], &in, 0))
		in = 0;
	E->rowkey[t] = in;
	E->rowkey_state[t] = 2;
	return in;
}

bool jit_rows_keyed(JitEmit *E, SymId e, IdxId r, IdxId c, TensorId *key, LLVMValueRef *base, int64_t *off,
                    int64_t *stride)
{
	const SymNode *n = sym_node(E->sym, e);
	if (n->kind != SYM_TENSOR || E->m->tensors[n->aux].kind != MT_DYN || !(*key = jit_row_key(E, n->aux)) ||
	    E->ws_off[*key] < 0)
		return false;
	return jit_matrix_read(E, e, r, c, true, base, off, stride);
}

/* fma(a, b, c) = a b + c rounded once (llvm.fma: fused on every host), of
 * doubles or of vectors of them. */
LLVMValueRef jit_fma(JitEmit *E, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c)
{
	LLVMTypeRef ty = LLVMTypeOf(a);
	unsigned id = LLVMLookupIntrinsicID("llvm.fma", 8);
	LLVMValueRef f = LLVMGetIntrinsicDeclaration(E->mod, id, &ty, 1);
	LLVMTypeRef ft = LLVMIntrinsicGetType(E->ctx, id, &ty, 1);
	LLVMValueRef args[3] = {a, b, c};
	return LLVMBuildCall2(E->b, ft, f, args, 3, "fma");
}

/* Is e a product of exactly two ordinary factors (emitted as one fmul)? */
bool jit_product2(JitEmit *E, SymId e, SymId *k0, SymId *k1)
{
	const SymNode *n = sym_node(E->sym, e);
	SymId base;
	if (n->kind != SYM_MUL || n->nkids != 2 || jit_divisor_power(E, n->kids[0], &base) ||
	    jit_divisor_power(E, n->kids[1], &base))
		return false;
	*k0 = n->kids[0];
	*k1 = n->kids[1];
	return true;
}

/* ---- reductions ---------------------------------------------------------- */

/* Hides levels above `level` so a reduction can be emitted at `level`; the
 * hidden levels are restored by jit_unhide. */
static int jit_hide(JitEmit *E, int level, JitLevel *saved)
{
	int nhidden = E->depth - (level + 1);
	for (int l = E->depth - 1; l > level; l--)
		if (E->lv[l].var)
			E->var_level[E->lv[l].var] = E->lv[l].shadow;
	memcpy(saved, &E->lv[level + 1], (size_t)nhidden * sizeof *saved);
	E->depth = level + 1;
	return nhidden;
}

static void jit_unhide(JitEmit *E, int level, const JitLevel *saved, int nhidden)
{
	memcpy(&E->lv[level + 1], saved, (size_t)nhidden * sizeof *saved);
	E->depth = level + 1 + nhidden;
	for (int l = level + 1; l < E->depth; l++)
		if (E->lv[l].var)
			E->var_level[E->lv[l].var] = l;
}

static void jit_open_reduction(JitEmit *E, IdxId var)
{
	int64_t n = sym_index_extent(E->sym, var);
	jit_loop_open(E, var, jit_i64(E, 0), jit_i64(E, n), sym_index_name(E->sym, var));
}

/* sum or max over var of body; the result is the header phi. */
static LLVMValueRef jit_emit_fold(JitEmit *E, SymKind kind, IdxId var, SymId body)
{
	char name[64];
	bool is_sum = kind == SYM_SUM;
	snprintf(name, sizeof name, "%s.%s", is_sum ? "sum" : "max", sym_index_name(E->sym, var));
	jit_open_reduction(E, var);
	if (E->failed)
		return jit_f64(E, 0.0);
	LLVMValueRef acc = jit_loop_phi(E, name);
	LLVMValueRef b = jit_emit(E, body);
	jit_position_top(E);
	LLVMValueRef next;
	if (is_sum) {
		next = LLVMBuildFAdd(E->b, acc, b, "acc");
	} else {
		LLVMValueRef args[2] = {acc, b};
		next = jit_intrin(E, "llvm.maxnum", 2, args, "acc");
	}
	LLVMValueRef init = jit_f64(E, is_sum ? 0.0 : -INFINITY);
	jit_loop_close_acc(E, 1, &acc, &init, &next);
	return acc;
}

LLVMValueRef jit_stack_array(JitEmit *E, int64_t n)
{
	char name[32];
	snprintf(name, sizeof name, "buf%d", E->nbuf++);
	LLVMPositionBuilderAtEnd(E->b, E->entry);
	LLVMTypeRef at = LLVMArrayType(E->f64, (unsigned)n);
	LLVMValueRef buf = LLVMBuildAlloca(E->b, at, name);
	LLVMSetAlignment(buf, 32);
	return buf;
}

/* Stable logsumexp: pass 1 finds the max m (keeping the values in a stack
 * buffer when small), pass 2 sums exp(b - m); result m + log(sum).  An all
 * -inf (or empty) range shifts by 0 instead of m. */
static LLVMValueRef jit_emit_lse(JitEmit *E, SymId e, IdxId var, SymId body, int level)
{
	char name[64];
	const char *vn = sym_index_name(E->sym, var);
	int64_t n = sym_index_extent(E->sym, var);
	LLVMValueRef buf = n > 0 && n <= JIT_LSE_BUF_MAX ? jit_stack_array(E, n) : NULL;

	snprintf(name, sizeof name, "lsemax.%s", vn);
	jit_open_reduction(E, var);
	if (E->failed)
		return jit_f64(E, 0.0);
	LLVMValueRef m = jit_loop_phi(E, name);
	LLVMValueRef b = jit_emit(E, body);
	jit_position_top(E);
	if (buf)
		LLVMBuildStore(E->b, b, jit_elem_ptr(E, buf, E->lv[E->depth - 1].iv, "slot"));
	LLVMValueRef args[2] = {m, b};
	LLVMValueRef mnext = jit_intrin(E, "llvm.maxnum", 2, args, "m");
	LLVMValueRef init = jit_f64(E, -INFINITY);
	jit_loop_close_acc(E, 1, &m, &init, &mnext);

	jit_at(E, level);
	LLVMValueRef isinf = LLVMBuildFCmp(E->b, LLVMRealOEQ, m, init, "allneginf");
	LLVMValueRef shift = LLVMBuildSelect(E->b, isinf, jit_f64(E, 0.0), m, "shift");

	snprintf(name, sizeof name, "lsesum.%s", vn);
	/* With fast_exp the exponentials get a loop of their own, which
	 * vectorises (an in-order sum does not), and a second loop sums the
	 * buffer: the same additions in the same order. */
	bool split = buf && E->fast_exp;
	jit_open_reduction(E, var);
	if (E->failed)
		return jit_f64(E, 0.0);
	LLVMValueRef s = split ? NULL : jit_loop_phi(E, name);
	LLVMValueRef b2;
	if (buf) {
		jit_position_top(E);
		b2 = LLVMBuildLoad2(E->b, E->f64,
		                    jit_elem_ptr(E, buf, E->lv[E->depth - 1].iv, "slot"), "b");
	} else {
		b2 = jit_emit(E, body);
		jit_position_top(E);
	}
	LLVMValueRef t = jit_exp(E, LLVMBuildFSub(E->b, b2, shift, "d"), "e");
	if (buf)   /* keep exp(b_i - shift) for softmax activations (jit_emit_softmax) */
		LLVMBuildStore(E->b, t, jit_elem_ptr(E, buf, E->lv[E->depth - 1].iv, "eslot"));
	if (split) {
		jit_loop_close(E);
		jit_at(E, level);
		jit_open_reduction(E, var);
		if (E->failed)
			return jit_f64(E, 0.0);
		s = jit_loop_phi(E, name);
		jit_position_top(E);
		t = LLVMBuildLoad2(E->b, E->f64, jit_elem_ptr(E, buf, E->lv[E->depth - 1].iv, "eslot"), "e");
	}
	LLVMValueRef snext = LLVMBuildFAdd(E->b, s, t, "s");
	LLVMValueRef zero = jit_f64(E, 0.0);
	jit_loop_close_acc(E, 1, &s, &zero, &snext);

	jit_at(E, level);
	LLVMValueRef lg = jit_intrin1(E, "llvm.log", s, "logsum");
	snprintf(name, sizeof name, "lse.%s", vn);
	LLVMValueRef r = LLVMBuildFAdd(E->b, shift, lg, name);
	if (buf)
		E->lse[e] = (JitLse){ E->fn, r, buf, s };
	return r;
}

static LLVMValueRef jit_emit_reduce(JitEmit *E, SymId e, int level)
{
	const SymNode *n = sym_node(E->sym, e);
	JitLevel saved[JIT_MAX_DEPTH];
	int nhidden = jit_hide(E, level, saved);
	LLVMValueRef r;
	if (n->kind == SYM_LSE)
		r = jit_emit_lse(E, e, n->aux, n->kids[0], level);
	else
		r = jit_emit_fold(E, (SymKind)n->kind, n->aux, n->kids[0]);
	jit_unhide(E, level, saved, nhidden);
	return r;
}

/* ---- the node switch ------------------------------------------------------ */

/* The k > 0 of a factor b^-k (a divisor), else 0. */
static int64_t jit_divisor_power(JitEmit *E, SymId f, SymId *base)
{
	const SymNode *n = sym_node(E->sym, f);
	double k;
	if (n->kind != SYM_POW || !sym_is_const(E->sym, n->kids[1], &k) || k >= 0 ||
	    k != floor(k) || k < -64)
		return 0;
	*base = n->kids[0];
	return (int64_t)-k;
}

/* If e is -1 * y, returns y (so a sum can subtract it), else 0. */
static SymId jit_negated(JitEmit *E, SymId e)
{
	const SymNode *n = sym_node(E->sym, e);
	double k;
	if (n->kind != SYM_MUL || n->nkids != 2)
		return 0;
	for (int i = 0; i < 2; i++)
		if (sym_is_const(E->sym, n->kids[i], &k) && k == -1.0)
			return n->kids[1 - i];
	return 0;
}

/* Sums fold left in kid order (a term -1*y is subtracted: the same IEEE
 * result as adding -y); products multiply the ordinary factors, then
 * divide by each b^k of a factor b^-k (sym keeps a/b as a*b^-1), so a/b is
 * one correctly rounded division as in C. */
static LLVMValueRef jit_emit_nary(JitEmit *E, const SymNode *n, int level)
{
	bool add = n->kind == SYM_ADD;
	LLVMValueRef v[64], *kids = n->nkids <= 64 ? v : dam_xrealloc(NULL, n->nkids * sizeof *kids);
	int64_t pv[64], *pw = n->nkids <= 64 ? pv : dam_xrealloc(NULL, n->nkids * sizeof *pw);
	for (int i = 0; i < n->nkids; i++) {
		SymId base = n->kids[i], neg = add ? jit_negated(E, base) : 0;
		pw[i] = add ? (neg != 0) : jit_divisor_power(E, base, &base);
		kids[i] = jit_emit(E, neg ? neg : base);
	}
	jit_at(E, level);
	LLVMValueRef acc = NULL;
	for (int i = 0; i < n->nkids; i++) {
		if (add && pw[i])
			acc = acc ? LLVMBuildFSub(E->b, acc, kids[i], "sub") : LLVMBuildFNeg(E->b, kids[i], "neg");
		else if (pw[i])
			continue;
		else if (!acc)
			acc = kids[i];
		else
			acc = add ? LLVMBuildFAdd(E->b, acc, kids[i], "add")
			          : LLVMBuildFMul(E->b, acc, kids[i], "mul");
	}
	if (!acc)
		acc = jit_f64(E, add ? 0.0 : 1.0);
	for (int i = 0; i < n->nkids && !add; i++)
		if (pw[i])
			acc = LLVMBuildFDiv(E->b, acc, jit_powi(E, kids[i], pw[i]), "div");
	if (kids != v)
		dam_free(kids);
	if (pw != pv)
		dam_free(pw);
	return acc;
}

static LLVMValueRef jit_emit_pow(JitEmit *E, const SymNode *n, int level)
{
	double k;
	LLVMValueRef a = jit_emit(E, n->kids[0]);
	if (sym_is_const(E->sym, n->kids[1], &k) && k == floor(k) && fabs(k) <= 64) {
		jit_at(E, level);
		return jit_powi(E, a, (int64_t)k);
	}
	LLVMValueRef args[2] = {a, jit_emit(E, n->kids[1])};
	jit_at(E, level);
	return jit_intrin(E, "llvm.pow", 2, args, "pow");
}

static bool jit_is_int_index(JitEmit *E, const SymNode *n)
{
	if (n->kind == SYM_IDX)
		return E->var_level[n->aux] >= 0;
	return n->kind == SYM_CONST && n->val == floor(n->val) && fabs(n->val) < 9e15;
}

static LLVMValueRef jit_emit_delta(JitEmit *E, const SymNode *n, int level)
{
	const SymNode *a = sym_node(E->sym, n->kids[0]), *b = sym_node(E->sym, n->kids[1]);
	LLVMValueRef c;
	if (jit_is_int_index(E, a) && jit_is_int_index(E, b)) {
		LLVMValueRef ia = a->kind == SYM_IDX ? E->lv[E->var_level[a->aux]].iv
		                                     : jit_i64(E, (int64_t)a->val);
		LLVMValueRef ib = b->kind == SYM_IDX ? E->lv[E->var_level[b->aux]].iv
		                                     : jit_i64(E, (int64_t)b->val);
		jit_at(E, level);
		c = LLVMBuildICmp(E->b, LLVMIntEQ, ia, ib, "same");
	} else {
		LLVMValueRef va = jit_emit(E, n->kids[0]), vb = jit_emit(E, n->kids[1]);
		jit_at(E, level);
		c = LLVMBuildFCmp(E->b, LLVMRealOEQ, jit_intrin1(E, "llvm.round", va, "ra"),
		                  jit_intrin1(E, "llvm.round", vb, "rb"), "same");
	}
	return LLVMBuildUIToFP(E->b, c, E->f64, "delta");
}

/* Is a the same expression as b with index variable i renamed to j?  (A
 * structural walk: the backend never builds new expressions.) */
static bool jit_same_renamed(JitEmit *E, SymId a, SymId b, IdxId i, IdxId j, int depth)
{
	if (a == b && !sym_has_free(E->sym, a, i))
		return true;
	const SymNode *x = sym_node(E->sym, a), *y = sym_node(E->sym, b);
	if (depth > 64 || x->kind != y->kind || x->fn != y->fn || x->nkids != y->nkids)
		return false;
	if (x->kind == SYM_IDX)
		return x->aux == i ? y->aux == j : x->aux == y->aux;
	if (x->kind == SYM_CONST)
		return x->val == y->val;
	if (x->aux != y->aux || ((x->kind == SYM_SUM || x->kind == SYM_LSE || x->kind == SYM_MAX) && x->aux == i))
		return false;
	for (int k = 0; k < x->nkids; k++)
		if (!jit_same_renamed(E, x->kids[k], y->kids[k], i, j, depth + 1))
			return false;
	return true;
}

/* exp(b_j - logsumexp(i, b_i)), the softmax of a Lagrangian like
 * log sum exp(beta x)/beta, is buf[j] / s with the exponentials the
 * logsumexp already computed (one exp per neuron instead of two; the value
 * differs from exp(b_j - lse) only in rounding).  NULL when e has another
 * shape or the logsumexp kept no buffer. */
static LLVMValueRef jit_emit_softmax(JitEmit *E, SymId arg, int level)
{
	const SymNode *a = sym_node(E->sym, arg);
	if (a->kind != SYM_ADD || a->nkids != 2)
		return NULL;
	for (int k = 0; k < 2; k++) {
		SymId lse = jit_negated(E, a->kids[k]), bj = a->kids[1 - k];
		const SymNode *ln = lse ? sym_node(E->sym, lse) : NULL;
		const SymNode *bn = sym_node(E->sym, bj);
		if (!ln || ln->kind != SYM_LSE || bn->nfree != 1)
			continue;
		IdxId j = bn->free[0];
		if (E->var_level[j] < 0 || sym_index_extent(E->sym, j) != sym_index_extent(E->sym, ln->aux) ||
		    !jit_same_renamed(E, ln->kids[0], bj, ln->aux, j, 0))
			continue;
		LLVMValueRef v = jit_emit(E, lse);
		const JitLse *info = &E->lse[lse];
		if (E->failed || info->fn != E->fn || info->value != v)
			return NULL;
		jit_at(E, level);
		LLVMValueRef slot = jit_elem_ptr(E, info->buf, E->lv[E->var_level[j]].iv, "eslot");
		LLVMValueRef ej = LLVMBuildLoad2(E->b, E->f64, slot, "ej");
		return LLVMBuildFDiv(E->b, ej, info->sum, "softmax");
	}
	return NULL;
}

static LLVMValueRef jit_emit_node(JitEmit *E, SymId e, int level)
{
	const SymNode *n = sym_node(E->sym, e);
	LLVMValueRef a, b;
	if (E->use_cache && E->cache_off[e] >= 0)
		return jit_emit_cached(E, e, level);
	if (E->axready[e])
		return jit_axpy_load(E, e, level);
	switch ((SymKind)n->kind) {
	case SYM_CONST:
		return jit_f64(E, n->val);
	case SYM_IDX:
		jit_at(E, level);
		return LLVMBuildSIToFP(E->b, E->lv[E->var_level[n->aux]].iv, E->f64,
		                       sym_index_name(E->sym, n->aux));
	case SYM_TENSOR:
		return jit_emit_tensor(E, e, level);
	case SYM_ADD:
	case SYM_MUL:
		return jit_emit_nary(E, n, level);
	case SYM_DIV:
		a = jit_emit(E, n->kids[0]);
		b = jit_emit(E, n->kids[1]);
		jit_at(E, level);
		return LLVMBuildFDiv(E->b, a, b, "div");
	case SYM_POW:
		return jit_emit_pow(E, n, level);
	case SYM_FN:
		if (n->fn == SYMFN_EXP && (a = jit_emit_softmax(E, n->kids[0], level)))
			return a;
		a = jit_emit(E, n->kids[0]);
		jit_at(E, level);
		return jit_fn_value(E, (SymFn)n->fn, a);
	case SYM_SUM:
	case SYM_LSE:
	case SYM_MAX:
		return jit_emit_reduce(E, e, level);
	case SYM_DELTA:
		return jit_emit_delta(E, n, level);
	case SYM_EQ:
		a = jit_emit(E, n->kids[0]);
		b = jit_emit(E, n->kids[1]);
		jit_at(E, level);
		return LLVMBuildUIToFP(E->b, LLVMBuildFCmp(E->b, LLVMRealOEQ, a, b, "eq"), E->f64, "eqv");
	case SYM_NKINDS:
		break;
	}
	jit_fail(E, "unknown expression kind %d", (int)n->kind);
	return jit_f64(E, 0.0);
}

/* The value of e (a double) at the current innermost level.  The builder's
 * position afterwards is unspecified: callers re-position (jit_position_top). */
LLVMValueRef jit_emit(JitEmit *E, SymId e)
{
	if (E->failed || e == 0 || e >= E->nsym) {
		if (!E->failed)
			jit_fail(E, "internal: invalid expression id %u", e);
		return jit_f64(E, 0.0);
	}
	int level = jit_level_of(E, e);
	if (E->failed)
		return jit_f64(E, 0.0);
	if (E->memo[e] && E->memo_gen[e] == E->lv[level].gen)
		return E->memo[e];
	LLVMValueRef v = jit_emit_node(E, e, level);
	E->memo[e] = v;
	E->memo_gen[e] = E->lv[level].gen;
	return v;
}

/* ---- statements ---------------------------------------------------------- */

/* base[off + j] = e / tau for j in [lo, hi), var bound to j; with tau_ws >= 0
 * the divisor is ws[tau_ws + j], the run-time time constant of component j.
 * base NULL: the workspace (of each string, in the batched kernel). */
void jit_assign_range(JitEmit *E, LLVMValueRef base, int64_t off, IdxId var,
                      int64_t lo, int64_t hi, SymId e, double tau, int64_t tau_ws, const char *name)
{
	if (hi <= lo || E->failed)
		return;
	jit_stmt_begin(E);
	if (E->axpy_on)
		jit_axpy_emit(E, e, var, lo, hi);
	jit_batch_open(E);
	if (!base)
		base = E->ws;
	jit_loop_open(E, var, jit_i64(E, lo), jit_i64(E, hi), name);
	if (E->failed)
		return;
	LLVMValueRef v = jit_emit(E, e);
	jit_position_top(E);
	if (tau_ws >= 0) {
		LLVMValueRef ti = LLVMBuildNSWAdd(E->b, E->lv[E->depth - 1].iv, jit_i64(E, tau_ws), "taui");
		LLVMValueRef tv = LLVMBuildLoad2(E->b, E->f64, jit_elem_ptr(E, E->ws, ti, "tau"), "tau");
		v = LLVMBuildFDiv(E->b, v, tv, "overtau");
	} else if (tau != 1.0) {
		v = LLVMBuildFDiv(E->b, v, jit_f64(E, tau), "overtau");
	}
	LLVMValueRef at = LLVMBuildNSWAdd(E->b, E->lv[E->depth - 1].iv, jit_i64(E, off), "dst");
	LLVMBuildStore(E->b, v, jit_elem_ptr(E, base, at, name));
	jit_loop_close(E);
	jit_batch_close(E);
	if (E->axpy_on)
		jit_axpy_done(E, e);
}

/* base[off + flat(vars)] = e over the full extents of vars (row-major). */
void jit_assign_nd(JitEmit *E, LLVMValueRef base, int64_t off, int rank,
                   const IdxId *vars, SymId e, const char *name)
{
	if (E->failed)
		return;
	jit_stmt_begin(E);
	int top = E->depth;
	for (int k = 0; k < rank; k++) {
		int64_t ext = sym_index_extent(E->sym, vars[k]);
		jit_loop_open(E, vars[k], jit_i64(E, 0), jit_i64(E, ext),
		              sym_index_name(E->sym, vars[k]));
	}
	if (E->failed)
		return;
	LLVMValueRef v = jit_emit(E, e);
	jit_position_top(E);
	LLVMValueRef flat = NULL;
	for (int k = 0; k < rank; k++) {
		LLVMValueRef iv = E->lv[top + k].iv;
		if (flat) {
			int64_t ext = sym_index_extent(E->sym, vars[k]);
			flat = LLVMBuildNSWMul(E->b, flat, jit_i64(E, ext), "rowoff");
			flat = LLVMBuildNSWAdd(E->b, flat, iv, "flat");
		} else {
			flat = iv;
		}
	}
	LLVMValueRef at = jit_i64(E, off);
	if (flat)
		at = LLVMBuildNSWAdd(E->b, flat, at, "dst");
	LLVMBuildStore(E->b, v, jit_elem_ptr(E, base, at, name));
	for (int k = 0; k < rank; k++)
		jit_loop_close(E);
}
