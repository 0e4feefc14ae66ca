/* jit_grad.c - the reverse-mode kernels of jit_grad.h.
 *
 * Derivation (all symbolic, sym_diff_at): for a scalar S (F, O or I of
 * jit_grad.h) that reads states x, activations g, dynamic tensors D and
 * parameters theta, the total
 *
 *   T = S + sum_l sum_j gbar_l[j] act_l[j] + sum_{D} sum_idx Dbar_D[idx] def_D[idx]
 *
 * with gbar_l = dS/dg_l and Dbar_D = dT/dD (opaque adjoint tensors in ws)
 * has dT/dx = dS/dx and dT/dtheta = dS/dtheta, the chain rule through the
 * activations and through the definitions of the dynamic tensors in reverse
 * mode: every derivative is of an expression with the free indices of one
 * tensor, emitted as one loop nest (reductions stay loops).  The dynamic
 * tensors that depend on no parameter (e.g. on the inputs only) are data.
 *
 * Emission: a copy of the Model with the adjoint vectors (lam, mu, seg) and
 * the adjoint tensors (gbar, Dbar) registered as extra inputs, so the JIT's
 * own layout gives them room in ws; the model's kernels (JIT_PART_ALL) and
 * the adjoint kernels go into one module, optimised and linked by an LLJIT
 * of its own (the same steps as jit.c, on one thread).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "jit_grad.h"
#include "jit_internal.h"

/* The derivatives of one scalar (arrays per layer / tensor / parameter). */
typedef struct GradExprs {
	SymId *gbar;               /* per layer: dS/dg_l[kv], 0 when S does not read g_l */
	IdxId *gbar_k;
	SymId *dbar;               /* per TensorId: dT/dD[k...] for D in Dstar */
	IdxId *dbar_k;             /* SYM_MAX_RANK per TensorId */
	SymId *dx;                 /* per layer */
	IdxId *dx_k;
	SymId *dth;                /* per parameter */
	IdxId *dth_k;              /* SYM_MAX_RANK per parameter */
} GradExprs;

typedef struct GradBuild {
	Model *m;                  /* the model with derived constants promoted (grad_promote) */
	Model pm;
	SymCtx *c;
	Model gm;                  /* the copy with the adjoint inputs */
	TensorId *lam, *gbar, *mu; /* per layer, per layer, per output */
	TensorId *dbar;            /* per TensorId: adjoint of a parameter-dependent dynamic tensor */
	TensorId *dyn_order;       /* dynamic tensors in dependency order */
	int ndyn;
	uint8_t *dstar;            /* per TensorId: dynamic and depends on a parameter */
	TensorId *theta;
	int ntheta;
	JitGradSeg *seg;
	TensorId *seg_t;
	int nseg;
	VEC(MInput) extra;
	GradExprs ex[3];           /* F, O, I */
} GradBuild;

struct JitGrad {
	JitGradKernels k;
	LLVMOrcLLJITRef lljit;
	JitLayout lay;
	TensorId *theta;
	size_t *theta_off;
	JitGradSeg *seg;
};

static void *grad_zalloc(size_t n)
{
	void *p = dam_xrealloc(NULL, n ? n : 1);
	memset(p, 0, n ? n : 1);
	return p;
}

/* ---- symbolic helpers ------------------------------------------------------ */

/* Fresh index variables over the axes of t. */
static void grad_fresh(SymCtx *c, TensorId t, const char *base, IdxId *k)
{
	const int64_t *shape = sym_tensor_shape(c, t);
	for (int r = 0; r < sym_tensor_rank(c, t); r++) {
		char name[48];
		snprintf(name, sizeof name, "%s%d", base, r);
		k[r] = sym_index_new(c, name, shape[r]);
	}
}

static SymId grad_at(SymCtx *c, TensorId t, int rank, const IdxId *idx)
{
	SymId a[SYM_MAX_RANK];
	for (int r = 0; r < rank; r++)
		a[r] = sym_idx(c, idx[r]);
	return sym_at(c, t, rank, a);
}

/* sum over idx[0..rank) of body. */
static SymId grad_sum_all(SymCtx *c, SymId body, int rank, const IdxId *idx)
{
	for (int r = rank - 1; r >= 0; r--)
		body = sym_reduce(c, SYM_SUM, idx[r], body);
	return body;
}

static TensorId grad_input(GradBuild *B, const char *name, int rank, const int64_t *shape)
{
	TensorId t = sym_tensor_new(B->c, name, rank, shape);
	MInput in = { arena_strdup(B->m->arena, name), sym_tensor_size(B->c, t), false, 0, t };
	vec_push(&B->extra, in);
	return t;
}

/* ---- what is a parameter ----------------------------------------------------- */

/* Constants that the front end computed from learned tensors (a weight block
 * `= hopf_raw^2`, a bias over `xi`) keep their definition; in the gradient
 * module they become dynamic tensors that setup computes from the learned
 * values, so the chain through def reaches the learned tensor itself.  The
 * promotion is transitive (a constant defined over a promoted one). */
static void grad_promote(GradBuild *B, Model *m)
{
	B->pm = *m;
	B->pm.tensors = arena_alloc(m->arena, m->ntensors * sizeof *B->pm.tensors);
	memcpy(B->pm.tensors, m->tensors, m->ntensors * sizeof *m->tensors);
	MTensor *T = B->pm.tensors;
	for (bool more = true; more;) {
		more = false;
		for (TensorId t = 1; t < m->ntensors; t++) {
			if (T[t].kind != MT_CONST || !T[t].def)
				continue;
			for (TensorId u = 1; u < m->ntensors; u++)
				if ((T[u].kind == MT_LEARN || (T[u].kind == MT_DYN && m->tensors[u].kind == MT_CONST)) &&
				    sym_uses_tensor(m->sym, T[t].def, u)) {
					T[t].kind = MT_DYN;
					more = true;
					break;
				}
		}
	}
	B->m = &B->pm;
}

static void grad_params(GradBuild *B, unsigned flags)
{
	const Model *m = B->m;
	uint8_t *used = jit_used_tensors(m);
	B->theta = grad_zalloc(m->ntensors * sizeof *B->theta);
	for (TensorId t = 1; t < m->ntensors; t++) {
		MTensorKind k = m->tensors[t].kind;
		if (used[t] && sym_tensor_rank(m->sym, t) >= 1 &&
		    (k == MT_LEARN || (k == MT_CONST && (flags & JIT_GRAD_CONSTS))))
			B->theta[B->ntheta++] = t;
	}
	dam_free(used);
}

static bool grad_reads_param(GradBuild *B, SymId e)
{
	for (int i = 0; i < B->ntheta; i++)
		if (sym_uses_tensor(B->c, e, B->theta[i]))
			return true;
	for (int i = 0; i < B->ndyn; i++)
		if (B->dstar[B->dyn_order[i]] && sym_uses_tensor(B->c, e, B->dyn_order[i]))
			return true;
	return false;
}

static void grad_dyn_visit(GradBuild *B, TensorId t, uint8_t *state)
{
	const Model *m = B->m;
	if (state[t])
		return;
	state[t] = 1;
	for (TensorId u = 1; u < m->ntensors; u++)
		if (u != t && m->tensors[u].kind == MT_DYN && sym_uses_tensor(B->c, m->tensors[t].def, u))
			grad_dyn_visit(B, u, state);
	B->dyn_order[B->ndyn++] = t;
}

/* Dynamic tensors in dependency order, and which depend on a parameter. */
static void grad_dyn(GradBuild *B)
{
	const Model *m = B->m;
	uint8_t *state = grad_zalloc(m->ntensors);
	B->dyn_order = grad_zalloc(m->ntensors * sizeof *B->dyn_order);
	B->dstar = grad_zalloc(m->ntensors);
	B->dbar = grad_zalloc(m->ntensors * sizeof *B->dbar);
	for (TensorId t = 1; t < m->ntensors; t++)
		if (m->tensors[t].kind == MT_DYN)
			grad_dyn_visit(B, t, state);
	for (int i = 0; i < B->ndyn; i++) {
		TensorId t = B->dyn_order[i];
		B->dstar[t] = grad_reads_param(B, m->tensors[t].def);
	}
	dam_free(state);
}

/* ---- the adjoint tensors and the scalars -------------------------------------- */

static void grad_register(GradBuild *B)
{
	const Model *m = B->m;
	char name[160];
	B->lam = grad_zalloc((size_t)m->nlayers * sizeof *B->lam);
	B->gbar = grad_zalloc((size_t)m->nlayers * sizeof *B->gbar);
	B->mu = grad_zalloc((size_t)(m->noutputs + 1) * sizeof *B->mu);
	for (int l = 0; l < m->nlayers; l++) {    /* consecutive inputs: one flat lam */
		snprintf(name, sizeof name, "adj.lam.%s", m->layers[l].name);
		B->lam[l] = grad_input(B, name, 1, &m->layers[l].n);
	}
	for (int o = 0; o < m->noutputs; o++) {
		snprintf(name, sizeof name, "adj.mu.%s", m->outputs[o].name);
		B->mu[o] = grad_input(B, name, 1, &m->outputs[o].n);
	}
	for (int l = 0; l < m->nlayers; l++) {
		snprintf(name, sizeof name, "adj.gbar.%s", m->layers[l].name);
		B->gbar[l] = grad_input(B, name, 1, &m->layers[l].n);
	}
	for (int i = 0; i < B->ndyn; i++) {
		TensorId t = B->dyn_order[i];
		if (!B->dstar[t])
			continue;
		snprintf(name, sizeof name, "adj.dbar.%s", sym_tensor_name(B->c, t));
		int rank = sym_tensor_rank(B->c, t);
		B->dbar[t] = grad_input(B, name, rank, sym_tensor_shape(B->c, t));
	}
}

static void grad_add_seg(GradBuild *B, int l, const MSeg *s, bool clamp, int index)
{
	const MLayer *L = &B->m->layers[l];
	int64_t lo = s->lo < 0 ? 0 : s->lo, hi = s->hi > L->n ? L->n : s->hi;
	if (hi <= lo || !grad_reads_param(B, s->value))
		return;
	char name[160];
	snprintf(name, sizeof name, "adj.seg.%s.%d", L->name, B->nseg);
	int64_t n = hi - lo;
	JitGradSeg *g = &B->seg[B->nseg];
	*g = (JitGradSeg){ l, lo, hi, clamp, index, 0 };
	B->seg_t[B->nseg++] = grad_input(B, name, 1, &n);
}

static void grad_segs(GradBuild *B)
{
	const Model *m = B->m;
	int n = 0;
	for (int l = 0; l < m->nlayers; l++)
		n += m->layers[l].ninit + m->layers[l].nclamp;
	B->seg = grad_zalloc((size_t)n * sizeof *B->seg);
	B->seg_t = grad_zalloc((size_t)n * sizeof *B->seg_t);
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		for (int s = 0; s < L->ninit; s++)
			grad_add_seg(B, l, &L->init[s], false, s);
		for (int s = 0; s < L->nclamp; s++)
			grad_add_seg(B, l, &L->clamp[s], true, s);
	}
}

static SymId grad_scalar_f(GradBuild *B)
{
	SymCtx *c = B->c;
	SymId s = sym_const(c, 0.0);
	for (int l = 0; l < B->m->nlayers; l++) {
		const MLayer *L = &B->m->layers[l];
		SymId j = sym_idx(c, L->j);
		SymId term = sym_mul(c, sym_at(c, B->lam[l], 1, &j), sym_mul(c, sym_const(c, 1.0 / L->tau), L->rhs));
		s = sym_add(c, s, sym_reduce(c, SYM_SUM, L->j, term));
	}
	return s;
}

static SymId grad_scalar_o(GradBuild *B)
{
	SymCtx *c = B->c;
	SymId s = sym_const(c, 0.0);
	for (int o = 0; o < B->m->noutputs; o++) {
		const MOutput *O = &B->m->outputs[o];
		if (O->rank == 0) {
			SymId zero = sym_const(c, 0.0);
			s = sym_add(c, s, sym_mul(c, sym_at(c, B->mu[o], 1, &zero), O->expr));
		} else {
			SymId i = sym_idx(c, O->i);
			s = sym_add(c, s, sym_reduce(c, SYM_SUM, O->i, sym_mul(c, sym_at(c, B->mu[o], 1, &i), O->expr)));
		}
	}
	return s;
}

static SymId grad_scalar_i(GradBuild *B)
{
	SymCtx *c = B->c;
	SymId s = sym_const(c, 0.0);
	for (int k = 0; k < B->nseg; k++) {
		const JitGradSeg *g = &B->seg[k];
		const MLayer *L = &B->m->layers[g->layer];
		const MSeg *sg = g->clamp ? &L->clamp[g->index] : &L->init[g->index];
		IdxId i = sym_index_new(c, "segk", g->hi - g->lo);
		SymId iv = sym_idx(c, i);
		SymId at = g->lo ? sym_add(c, sym_const(c, (double)g->lo), iv) : iv;
		SymId val = sym_subst_idx(c, sg->value, L->j, at);
		s = sym_add(c, s, sym_reduce(c, SYM_SUM, i, sym_mul(c, sym_at(c, B->seg_t[k], 1, &iv), val)));
	}
	return s;
}

/* The derivatives of scalar S (see the file comment). */
static void grad_derive(GradBuild *B, SymId S, GradExprs *X)
{
	const Model *m = B->m;
	SymCtx *c = B->c;
	size_t nl = (size_t)m->nlayers;
	X->gbar = grad_zalloc(nl * sizeof *X->gbar);
	X->gbar_k = grad_zalloc(nl * sizeof *X->gbar_k);
	X->dx = grad_zalloc(nl * sizeof *X->dx);
	X->dx_k = grad_zalloc(nl * sizeof *X->dx_k);
	X->dbar = grad_zalloc(m->ntensors * sizeof *X->dbar);
	X->dbar_k = grad_zalloc(m->ntensors * SYM_MAX_RANK * sizeof *X->dbar_k);
	X->dth = grad_zalloc((size_t)(B->ntheta + 1) * sizeof *X->dth);
	X->dth_k = grad_zalloc((size_t)(B->ntheta + 1) * SYM_MAX_RANK * sizeof *X->dth_k);
	SymId T = S;
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		if (!sym_uses_tensor(c, S, L->g))
			continue;
		grad_fresh(c, L->g, "gk", &X->gbar_k[l]);
		X->gbar[l] = sym_diff_at(c, S, L->g, &X->gbar_k[l]);
		SymId j = sym_idx(c, L->j);
		SymId term = sym_mul(c, sym_at(c, B->gbar[l], 1, &j), L->act);
		T = sym_add(c, T, sym_reduce(c, SYM_SUM, L->j, term));
	}
	for (int i = 0; i < B->ndyn; i++) {
		TensorId t = B->dyn_order[i];
		if (!B->dstar[t])
			continue;
		const MTensor *mt = &m->tensors[t];
		int rank = sym_tensor_rank(c, t);
		SymId term = sym_mul(c, grad_at(c, B->dbar[t], rank, mt->idx), mt->def);
		T = sym_add(c, T, grad_sum_all(c, term, rank, mt->idx));
	}
	for (int i = 0; i < B->ndyn; i++) {
		TensorId t = B->dyn_order[i];
		if (!B->dstar[t])
			continue;
		IdxId *k = X->dbar_k + (size_t)t * SYM_MAX_RANK;
		grad_fresh(c, t, "dk", k);
		X->dbar[t] = sym_diff_at(c, T, t, k);
	}
	for (int l = 0; l < m->nlayers; l++) {
		grad_fresh(c, m->layers[l].x, "xk", &X->dx_k[l]);
		X->dx[l] = sym_diff_at(c, T, m->layers[l].x, &X->dx_k[l]);
	}
	for (int i = 0; i < B->ntheta; i++) {
		IdxId *k = X->dth_k + (size_t)i * SYM_MAX_RANK;
		grad_fresh(c, B->theta[i], "pk", k);
		X->dth[i] = sym_diff_at(c, T, B->theta[i], k);
	}
}

static void grad_exprs_free(GradExprs *X)
{
	dam_free(X->gbar);
	dam_free(X->gbar_k);
	dam_free(X->dx);
	dam_free(X->dx_k);
	dam_free(X->dbar);
	dam_free(X->dbar_k);
	dam_free(X->dth);
	dam_free(X->dth_k);
}

/* The model copy: the model's tensors, then the adjoint inputs. */
static void grad_model(GradBuild *B)
{
	const Model *m = B->m;
	Model *g = &B->gm;
	*g = *m;
	g->ntensors = sym_tensor_count(B->c);
	g->tensors = arena_alloc(m->arena, g->ntensors * sizeof *g->tensors);
	memcpy(g->tensors, m->tensors, m->ntensors * sizeof *g->tensors);
	g->ninputs = m->ninputs + (int)B->extra.n;
	g->inputs = arena_alloc(m->arena, (size_t)(g->ninputs + 1) * sizeof *g->inputs);
	memcpy(g->inputs, m->inputs, (size_t)m->ninputs * sizeof *g->inputs);
	for (size_t i = 0; i < B->extra.n; i++) {
		MInput *in = &g->inputs[m->ninputs + (int)i];
		*in = B->extra.v[i];
		g->tensors[in->t] = (MTensor){ .kind = MT_INPUT, .layer = -1, .input = m->ninputs + (int)i };
	}
}

/* ---- emission ---------------------------------------------------------------- */

static LLVMValueRef grad_kernel_begin(JitEmit *E, const char *name, int nptr)
{
	static const char *const pname[3] = {"ws", "x", "out"};
	LLVMTypeRef p[3] = {E->ptr, E->ptr, E->ptr};
	LLVMTypeRef ty = LLVMFunctionType(LLVMVoidTypeInContext(E->ctx), p, (unsigned)nptr, 0);
	LLVMValueRef fn = jit_fn_begin(E, name, ty);
	unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
	for (int i = 0; i < nptr; i++) {
		LLVMSetValueName2(LLVMGetParam(fn, (unsigned)i), pname[i], strlen(pname[i]));
		LLVMAddAttributeAtIndex(fn, (unsigned)i + 1, LLVMCreateEnumAttribute(E->ctx, noalias, 0));
	}
	E->ws = E->wsw = LLVMGetParam(fn, 0);
	E->x = LLVMGetParam(fn, 1);
	E->use_cache = true;
	return fn;
}

/* pre: activations, gbar, then Dbar in reverse dependency order. */
static void grad_emit_pre(JitEmit *E, const GradBuild *B, const GradExprs *X, const JitLayout *lay,
                          const char *name)
{
	const Model *m = B->m;
	grad_kernel_begin(E, name, 2);
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		jit_assign_range(E, E->ws, lay->act_off + model_layer_offset(m, l), L->j, 0, L->n, L->act,
		                 1.0, -1, "g");
	}
	for (int l = 0; l < m->nlayers; l++)
		if (X->gbar[l])
			jit_assign_range(E, E->ws, E->ws_off[B->gbar[l]], X->gbar_k[l], 0, m->layers[l].n,
			                 X->gbar[l], 1.0, -1, "gbar");
	for (int i = B->ndyn - 1; i >= 0; i--) {
		TensorId t = B->dyn_order[i];
		if (B->dstar[t])
			jit_assign_nd(E, E->ws, E->ws_off[B->dbar[t]], sym_tensor_rank(B->c, t),
			              X->dbar_k + (size_t)t * SYM_MAX_RANK, X->dbar[t], "dbar");
	}
	jit_fn_end(E, NULL);
}

static void grad_emit_dx(JitEmit *E, const GradBuild *B, const GradExprs *X, const char *name)
{
	const Model *m = B->m;
	LLVMValueRef fn = grad_kernel_begin(E, name, 3);
	for (int l = 0; l < m->nlayers; l++)
		jit_assign_range(E, LLVMGetParam(fn, 2), model_layer_offset(m, l), X->dx_k[l], 0, m->layers[l].n,
		                 X->dx[l], 1.0, -1, "dx");
	jit_fn_end(E, NULL);
}

static void grad_emit_dtheta(JitEmit *E, const GradBuild *B, const GradExprs *X, const size_t *off,
                             const char *name)
{
	LLVMValueRef fn = grad_kernel_begin(E, name, 3);
	for (int i = 0; i < B->ntheta; i++)
		jit_assign_nd(E, LLVMGetParam(fn, 2), (int64_t)off[i], sym_tensor_rank(B->c, B->theta[i]),
		              X->dth_k + (size_t)i * SYM_MAX_RANK, X->dth[i], "dtheta");
	jit_fn_end(E, NULL);
}

static const char *const grad_prefix[3] = {"dam_grad_f", "dam_grad_o", "dam_grad_i"};

static int grad_emit(LLVMModuleRef mod, GradBuild *B, JitGrad *g, const JitOptions *opt, char *err,
                     size_t errlen)
{
	JitEmit E;
	jit_emit_init(&E, mod, &B->gm);
	E.bake = false;
	E.fast_exp = opt->fast_exp != 0;
	int rc = jit_build_kernels(&E, &g->lay, JIT_PART_ALL);
	for (int s = 0; s < 3 && !rc; s++) {
		char name[64];
		snprintf(name, sizeof name, "%s_pre", grad_prefix[s]);
		grad_emit_pre(&E, B, &B->ex[s], &g->lay, name);
		snprintf(name, sizeof name, "%s_dx", grad_prefix[s]);
		grad_emit_dx(&E, B, &B->ex[s], name);
		snprintf(name, sizeof name, "%s_dtheta", grad_prefix[s]);
		grad_emit_dtheta(&E, B, &B->ex[s], g->theta_off, name);
		rc = E.failed ? -1 : 0;
	}
	if (rc)
		jit_errf(err, errlen, "jit (gradient): %s", E.err);
	for (int k = 0; k < B->nseg && !rc; k++)
		g->seg[k].ws_off = (size_t)E.ws_off[B->seg_t[k]];
	g->k.lam_off = B->m->nlayers ? (size_t)E.ws_off[B->lam[0]] : 0;
	g->k.mu_off = B->m->noutputs ? (size_t)E.ws_off[B->mu[0]] : 0;
	jit_emit_fini(&E);
	return rc;
}

/* ---- LLVM: verify, optimise, link (as jit.c, one module, one thread) ------------ */

/* Verify mod, then jit.c's pipeline. */
static int grad_optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt, char *err, size_t errlen)
{
	char *msg = NULL;
	if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
		jit_errf(err, errlen, "jit (gradient): invalid LLVM IR: %s", msg ? msg : "?");
		LLVMDisposeMessage(msg);
		return -1;
	}
	LLVMDisposeMessage(msg);
	return jit_optimise(mod, tm, opt, err, errlen);
}

/* jit.c's LLJIT, linking the object code of mod; consumes tm and obj. */
static LLVMOrcLLJITRef grad_link(LLVMTargetMachineRef tm, LLVMMemoryBufferRef obj, char *err, size_t errlen)
{
	LLVMOrcLLJITRef lljit = jit_create_lljit(tm, err, errlen);
	if (!lljit) {
		LLVMDisposeMemoryBuffer(obj);
		return NULL;
	}
	/* consumes obj, even on error */
	if (jit_check(LLVMOrcLLJITAddObjectFile(lljit, LLVMOrcLLJITGetMainJITDylib(lljit), obj),
	              "jit (gradient): adding object code", err, errlen)) {
		LLVMOrcDisposeLLJIT(lljit);
		return NULL;
	}
	return lljit;
}

static int grad_lookup(JitGrad *g, const char *name, void *fnptr_out, char *err, size_t errlen)
{
	LLVMOrcExecutorAddress addr = 0;
	if (jit_check(LLVMOrcLLJITLookup(g->lljit, &addr, name), "jit (gradient): lookup", err, errlen))
		return -1;
	void *p = (void *)(uintptr_t)addr;
	memcpy(fnptr_out, &p, sizeof p);
	return 0;
}

static int grad_lookup_all(JitGrad *g, char *err, size_t errlen)
{
	JitKernels *k = &g->k.fwd;
	JitGradScalar *sc[3] = {&g->k.f, &g->k.o, &g->k.i};
	int rc = grad_lookup(g, JIT_FN_SETUP, &k->setup, err, errlen) ||
	         grad_lookup(g, JIT_FN_INIT, &k->init_state, err, errlen) ||
	         grad_lookup(g, JIT_FN_RHS, &k->rhs, err, errlen) ||
	         grad_lookup(g, JIT_FN_ENERGY, &k->energy, err, errlen) ||
	         grad_lookup(g, JIT_FN_ACTS, &k->acts, err, errlen) ||
	         grad_lookup(g, JIT_FN_OUTPUTS, &k->outputs, err, errlen) ||
	         grad_lookup(g, JIT_FN_EULER, &k->euler, err, errlen) ||
	         grad_lookup(g, JIT_FN_RELAYOUT, &k->relayout, err, errlen);
	for (int s = 0; s < 3 && !rc; s++) {
		char name[64];
		snprintf(name, sizeof name, "%s_pre", grad_prefix[s]);
		rc = grad_lookup(g, name, &sc[s]->pre, err, errlen);
		snprintf(name, sizeof name, "%s_dx", grad_prefix[s]);
		rc = rc || grad_lookup(g, name, &sc[s]->dx, err, errlen);
		snprintf(name, sizeof name, "%s_dtheta", grad_prefix[s]);
		rc = rc || grad_lookup(g, name, &sc[s]->dtheta, err, errlen);
	}
	return rc ? -1 : 0;
}

static void grad_fill_kernels(JitGrad *g, const GradBuild *B)
{
	JitKernels *k = &g->k.fwd;
	const JitLayout *lay = &g->lay;
	k->ws_size = lay->ws_size;
	k->nstate = lay->nstate;
	k->noutput = lay->noutput;
	k->nact = lay->nact;
	k->tau_off = (size_t)lay->tau_off;
	k->keyed_off = lay->keyed_off;     /* -1: the gradient's kernels read no rows by key */
	k->input_off = lay->input_off;
	k->output_off = lay->output_off;
	g->k.ntheta = B->ntheta;
	g->k.theta = g->theta;
	g->k.theta_off = g->theta_off;
	g->k.nseg = B->nseg;
	g->k.seg = g->seg;
}

static void grad_build_free(GradBuild *B)
{
	for (int s = 0; s < 3; s++)
		grad_exprs_free(&B->ex[s]);
	dam_free(B->lam);
	dam_free(B->gbar);
	dam_free(B->mu);
	dam_free(B->dbar);
	dam_free(B->dyn_order);
	dam_free(B->dstar);
	dam_free(B->theta);
	dam_free(B->seg);
	dam_free(B->seg_t);
	vec_free(&B->extra);
}

/* Derivation into B and the parameter table of g. */
static void grad_prepare(GradBuild *B, JitGrad *g, Model *m, unsigned flags)
{
	B->c = m->sym;
	grad_promote(B, m);
	grad_params(B, flags);
	grad_dyn(B);
	grad_register(B);
	grad_segs(B);
	grad_derive(B, grad_scalar_f(B), &B->ex[0]);
	grad_derive(B, grad_scalar_o(B), &B->ex[1]);
	grad_derive(B, grad_scalar_i(B), &B->ex[2]);
	grad_model(B);
	g->theta = grad_zalloc((size_t)(B->ntheta + 1) * sizeof *g->theta);
	g->theta_off = grad_zalloc((size_t)(B->ntheta + 1) * sizeof *g->theta_off);
	g->seg = grad_zalloc((size_t)(B->nseg + 1) * sizeof *g->seg);
	size_t off = 0;
	for (int i = 0; i < B->ntheta; i++) {
		g->theta[i] = B->theta[i];
		g->theta_off[i] = off;
		off += (size_t)sym_tensor_size(B->c, B->theta[i]);
	}
	g->k.ntheta_total = off;
	memcpy(g->seg, B->seg, (size_t)B->nseg * sizeof *g->seg);
}

JitGrad *jit_grad_compile(Model *m, const JitOptions *opt, unsigned flags, char *err, size_t errlen)
{
	JitOptions defaults = {.opt_level = 2};
	GradBuild B;
	JitGrad *g = grad_zalloc(sizeof *g);
	LLVMTargetMachineRef tm = NULL;
	LLVMContextRef ctx = NULL;
	LLVMModuleRef mod = NULL;
	LLVMMemoryBufferRef obj = NULL;
	char *msg = NULL;
	if (!opt)
		opt = &defaults;
	memset(&B, 0, sizeof B);
	if (jit_llvm_init(err, errlen))
		goto fail;
	grad_prepare(&B, g, m, flags);
	if (!(tm = jit_host_tm(2, err, errlen)))
		goto fail;
	ctx = jit_context_new();
	mod = LLVMModuleCreateWithNameInContext("dam.grad", ctx);
	char *triple = LLVMGetTargetMachineTriple(tm);
	LLVMSetTarget(mod, triple);
	LLVMDisposeMessage(triple);
	LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
	LLVMSetModuleDataLayout(mod, td);
	LLVMDisposeTargetData(td);
	if (grad_emit(mod, &B, g, opt, err, errlen))
		goto fail;
	if (opt->dump_ir_unopt) {
		char *s = LLVMPrintModuleToString(mod);
		fputs(s, opt->dump_ir_unopt);
		LLVMDisposeMessage(s);
	}
	if (grad_optimise(mod, tm, opt->opt_level, err, errlen))
		goto fail;
	if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg, &obj)) {
		jit_errf(err, errlen, "jit (gradient): code generation: %s", msg ? msg : "?");
		LLVMDisposeMessage(msg);
		goto fail;
	}
	LLVMDisposeMessage(msg);
	g->lljit = grad_link(tm, obj, err, errlen);   /* consumes tm and obj */
	tm = NULL;
	if (!g->lljit || grad_lookup_all(g, err, errlen))
		goto fail;
	grad_fill_kernels(g, &B);
	LLVMDisposeModule(mod);
	LLVMContextDispose(ctx);
	grad_build_free(&B);
	return g;

fail:
	if (mod)
		LLVMDisposeModule(mod);
	if (ctx)
		LLVMContextDispose(ctx);
	if (tm)
		LLVMDisposeTargetMachine(tm);
	grad_build_free(&B);
	jit_grad_free(g);
	return NULL;
}

const JitGradKernels *jit_grad_kernels(const JitGrad *g)
{
	return g ? &g->k : NULL;
}

int64_t jit_grad_ws_offset(const JitGrad *g, TensorId t)
{
	if (!g || t == 0 || t >= g->lay.ntensors)
		return -1;
	return g->lay.tensor_ws_off[t];
}

void jit_grad_ws_init(const JitGrad *g, const Model *m, double *ws)
{
	size_t i = 0;
	memset(ws, 0, g->lay.ws_size * sizeof *ws);
	for (int l = 0; l < m->nlayers; l++)
		for (int64_t n = 0; n < m->layers[l].n && i < g->lay.nstate; n++)
			ws[(size_t)g->lay.tau_off + i++] = m->layers[l].tau;
	for (TensorId t = 1; t < m->ntensors && t < g->lay.ntensors; t++) {
		const MTensor *mt = &m->tensors[t];
		int64_t off = g->lay.tensor_ws_off[t];
		if ((mt->kind == MT_CONST || mt->kind == MT_LEARN) && off >= 0 && mt->data)
			memcpy(ws + off, mt->data, (size_t)sym_tensor_size(m->sym, t) * sizeof *ws);
	}
}

void jit_grad_free(JitGrad *g)
{
	if (!g)
		return;
	if (g->lljit)
		jit_check(LLVMOrcDisposeLLJIT(g->lljit), "jit (gradient): disposing", NULL, 0);
	dam_free(g->lay.input_off);
	dam_free(g->lay.output_off);
	dam_free(g->lay.tensor_ws_off);
	dam_free(g->lay.tensor_by_ref);
	dam_free(g->theta);
	dam_free(g->theta_off);
	dam_free(g->seg);
	dam_free(g);
}
