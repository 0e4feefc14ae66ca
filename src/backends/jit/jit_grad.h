/* jit_grad.h - compiled vector-Jacobian products for the discrete adjoint.
 *
 * jit_grad_compile() derives, with sym_diff_at, the reverse-mode pieces of a
 * forward-Euler run of a Model and compiles them through the JIT's emitter
 * (jit_emit.c) next to the model's own kernels, in one module and so with one
 * workspace layout.  Three scalars are differentiated:
 *
 *   F = sum_l sum_j lam_l[j] * rhs_l[j] / tau_l     (the Euler right-hand side)
 *   O = sum_o sum_i mu_o[i] * output_o[i]           (a loss on the outputs)
 *   I = sum_s sum_j seg_s[j] * value_s[j]           (init / clamp values)
 *
 * where lam, mu and seg are adjoint vectors the host writes into ws.  For
 * each scalar S the kernels give dS/dx (all layers, flat, like x) and dS/dtheta
 * for every parameter tensor theta (flat, the tensors one after the other).
 * Activations and dynamic tensors are chained in reverse mode: the "pre"
 * kernel computes the activations, gbar_l = dS/dg_l and, in reverse
 * dependency order, Dbar_t = dS/dD_t of every dynamic tensor that depends on
 * a parameter (e.g. the attention keys computed from embed_raw); the other
 * kernels read them from ws.  Call pre before x / theta at the same x.
 *
 * Parameters are the MT_LEARN tensors of rank >= 1 that some kernel reads
 * (directly or through a dynamic tensor's definition), and with
 * JIT_GRAD_CONSTS also the MT_CONST ones.  Rank-0 tensors are baked into the
 * code and are not parameters.
 *
 * The forward kernels (setup, init_state, euler, outputs, ...) of the same
 * module are those of jit_compile on this model; the workspace is this
 * module's (jit_grad_ws_init), not a DamSim's.  jit_grad_compile registers
 * the adjoint tensors in m->sym (so m->ntensors < sym_tensor_count(m->sym)
 * afterwards; the Model is otherwise unchanged): compile the model's other
 * Jits before it, or parse the model twice.
 */
#ifndef DAM_JIT_GRAD_H
#define DAM_JIT_GRAD_H

#include <stddef.h>
#include <stdint.h>

#include "jit.h"
#include "model.h"

#define JIT_GRAD_CONSTS 1u       /* MT_CONST tensors of rank >= 1 are parameters too */

typedef void (*JitGradFn)(double *ws, const double *x);
typedef void (*JitGradOutFn)(double *ws, const double *x, double *out);

typedef struct JitGradScalar {
	JitGradFn pre;             /* activations, gbar, Dbar into ws */
	JitGradOutFn dx;           /* out[nstate] = dS/dx */
	JitGradOutFn dtheta;       /* out[ntheta_total] = dS/dtheta */
} JitGradScalar;

/* An init or clamp segment whose value depends on a parameter: its adjoint
 * seg[k] (k = 0..hi-lo-1) stands for neuron lo + k of the layer. */
typedef struct JitGradSeg {
	int layer;
	int64_t lo, hi;
	bool clamp;                /* a clamp (else an init segment) */
	int index;                 /* number among the layer's init (or clamp) segments */
	size_t ws_off;
} JitGradSeg;

typedef struct JitGradKernels {
	JitKernels fwd;            /* the model's kernels in this workspace */
	size_t lam_off;            /* ws: lam, nstate doubles (layers in order) */
	size_t mu_off;             /* ws: mu, noutput doubles (outputs in order) */
	int ntheta;
	const TensorId *theta;     /* the parameter tensors */
	const size_t *theta_off;   /* offset of each in the flat gradient */
	size_t ntheta_total;
	int nseg;
	const JitGradSeg *seg;
	JitGradScalar f, o, i;
} JitGradKernels;

typedef struct JitGrad JitGrad;

JitGrad *jit_grad_compile(Model *m, const JitOptions *opt, unsigned flags, char *err, size_t errlen);
const JitGradKernels *jit_grad_kernels(const JitGrad *g);
/* As jit_ws_offset / jit_ws_init for this module's workspace. */
int64_t jit_grad_ws_offset(const JitGrad *g, TensorId t);
void jit_grad_ws_init(const JitGrad *g, const Model *m, double *ws);
void jit_grad_free(JitGrad *g);

#endif
