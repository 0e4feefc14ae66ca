/* jit.h - native code for a Model through the LLVM C API (ORC LLJIT).
 *
 * This header is deliberately free of llvm-c types: only the .c files in this
 * directory include llvm-c.  jit_compile() emits one LLVM module specialised
 * on the model's sizes and static weights, runs LLVM's optimisation pipeline
 * and returns native entry points.
 *
 * Workspace: every compiled entry point takes `double *ws`, a per-run buffer
 * of ws_size doubles laid out by the JIT (inputs, weights and other static or
 * learn tensors of rank >= 1, dynamic tensors, activations, scratch).  The
 * weights are run-time data, so one compiled model runs any weights of the
 * same shapes without recompiling; bake_weights compiles them in instead.  Inputs are written at input_off[i] (token indices as
 * doubles); the flat state x (model_state_size doubles, layers in order) is
 * passed separately.  Different ws buffers may be used from different threads
 * at the same time.
 */
#ifndef DAM_JIT_H
#define DAM_JIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model.h"

typedef struct JitKernels {
	size_t ws_size;                /* doubles */
	size_t nstate;                 /* model_state_size */
	size_t noutput;                /* sum of output sizes */
	size_t nact;                   /* == nstate: activations, flat, layers in order */
	size_t tau_off;                /* ws offset of the time constants, one per state component */
	const size_t *input_off;       /* ws offset of each input (model->inputs order) */
	const size_t *output_off;      /* offset of each output inside the out[] array */
	/* After the inputs are in ws: compute dynamic tensors and biases. */
	void (*setup)(double *ws);
	/* The part of setup that depends on the inputs: enough for a further
	 * run with other inputs when the static tensors are unchanged since the
	 * last setup() (the caches computed from them alone are still in ws). */
	void (*setup_run)(double *ws);
	/* The caches in the static block (jit_static_size; none: a no-op), from
	 * the static tensors ws points at, into the block ws points at. */
	void (*setup_static)(double *ws);
	/* Initial state (init segments, then clamps). Call after setup. */
	void (*init_state)(double *ws, double *x);
	/* dx/dt for all layers (rhs/tau; 0 for clamped neurons). */
	void (*rhs)(double *ws, const double *x, double *dxdt);
	/* Global energy at x. */
	double (*energy)(double *ws, const double *x);
	/* Activations g of all layers at x, flat. */
	void (*acts)(double *ws, const double *x, double *g);
	/* All outputs at x, concatenated in declaration order. */
	void (*outputs)(double *ws, const double *x, double *out);
	/* nsteps forward-Euler steps of size dt in place (fused loop). */
	void (*euler)(double *ws, double *x, double dt, int64_t nsteps);
	/* The transposed copies setup() keeps of tensors the hot kernels read
	 * (jit_axpy.c), again: call after overwriting dynamic tensors in ws. */
	void (*relayout)(double *ws);
	/* nsteps forward-Euler steps of nb strings at once (jit_compile_flags
	 * with JIT_BATCH; NULL otherwise): string b's workspace ws[b] and state x[b].  The
	 * static and learn tensors are read from ws[0]: every workspace must
	 * hold the same (sim_run_batch checks).  Bit-identical to nb calls of
	 * euler, and the same whatever nb. */
	void (*euler_batch)(double *const *ws, double *const *x, int64_t nb, double dt, int64_t nsteps,
	                    double *scratch);
	/* One run split over two threads (jit_compile_flags with JIT_SPLIT; NULL
	 * otherwise): after acts(ws, x, g), rhs_half[0] and rhs_half[1] (one
	 * per thread) compute dx/dt for the two halves of every layer into ws;
	 * once both are done, update_half[h] moves half h by dt dx.  The same
	 * step as euler(ws, x, dt, 1), bit for bit. */
	void (*rhs_half[2])(double *ws, const double *x);
	void (*update_half[2])(double *ws, double *x, double dt, int64_t unused);
	/* With JIT_BATCH: the activations and dx/dt of nb strings at state x[b]
	 * into ws[b] + dx_off (the free neurons; what rhs gives, bit for bit),
	 * the weights read once for all; dt and nsteps are unused (pass 0, 1). */
	void (*rhs_batch)(double *const *ws, double *const *x, int64_t nb, double dt, int64_t nsteps,
	                  double *scratch);
	/* With JIT_BATCH: the energies of nb strings at state x[b] into out[b]
	 * (what energy gives, bit for bit), the weights read once for all. */
	void (*energy_batch)(double *const *ws, double *const *x, int64_t nb, double *out, double *scratch);
	size_t dx_off;                 /* where rhs_batch leaves dx/dt in each ws */
	size_t batch_scratch;          /* doubles of scratch per string that euler_batch needs */
	size_t batch_pack;             /* doubles of packed weight panels euler_batch keeps at the
	                                * start of its scratch (scratch: batch_pack + nb *
	                                * batch_scratch doubles) */
	int64_t keyed_off;             /* ws slot (-1: none): 1 (jit_ws_init) while the rows of
	                                * dynamic tensors follow the inputs that key them (tok in
	                                * keys[A, i] = embed[tok[A], i]^2), so that the kernels read
	                                * each row as the first row with the same key; the host
	                                * sets 0 after it programmed dynamic tensors
	                                * (sim_set_dynamic) */
	double codegen_ms;             /* wall time of building, optimising, emitting and linking
	                                * the code (or loading it from the object cache), without
	                                * the data work of the compile (the static block) */
} JitKernels;

typedef struct JitOptions {
	int opt_level;                 /* 0..3, default 3 */
	FILE *dump_ir;                 /* non-NULL: print the optimised LLVM IR here */
	FILE *dump_ir_unopt;           /* non-NULL: print the IR before optimisation */
	int bake_weights;              /* 1: static and learn tensors become constants in the code;
	                                * 0 (default): run-time data in ws (sim_set_tensor) */
	int fast_exp;                  /* 1: exp inline (jit_emit.c, "exp"), vectorisable, < 1 ulp
	                                * (<= 1 from glibc's); 0 (default): the C library's exp */
	int cache;                     /* 1: keep and reuse the object code in the cache directory
	                                * ($DAMC_CACHE_DIR, $XDG_CACHE_HOME/damc or ~/.cache/damc;
	                                * DAMC_CACHE=0 turns it off); 0 (default): always compile */
} JitOptions;

typedef struct Jit Jit;

/* Returns NULL on failure with a message in err. */
Jit *jit_compile(const Model *m, const JitOptions *opt, char *err, size_t errlen);
/* jit_compile with flags: JIT_BATCH also compiles euler_batch (for
 * sim_run_batch; a second copy of the Euler loop, so more compile time). */
#define JIT_BATCH 1u
/* JIT_SPLIT also compiles the halves of a step (rhs_half, update_half) for
 * one run on two threads. */
#define JIT_SPLIT 2u
Jit *jit_compile_flags(const Model *m, const JitOptions *opt, unsigned flags, char *err, size_t errlen);
const JitKernels *jit_kernels(const Jit *j);
/* Offset in ws of an input, dynamic or activation tensor (e.g. to read the
 * rows setup() computed, or to reprogram them), and of a static or learn
 * tensor of rank >= 1 unless bake_weights was set (its values are then data:
 * the caller fills them, see sim_new); -1 for other tensors. */
int64_t jit_ws_offset(const Jit *j, TensorId t);
/* Write the values of every run-time static or learn tensor (m's data) and
 * the layers' time constants (tau_off) into a fresh workspace of ws_size
 * doubles; call once after allocating it.  A tensor of JIT_BY_REF_MIN
 * elements or more (jit_ws_by_ref) is not copied: its slot at the offset
 * points at m's data, which must outlive the workspace (or at values the
 * host keeps itself: jit_ws_point). */
void jit_ws_init(const Jit *j, const Model *m, double *ws);
/* The static block: caches of static tensors alone, large ones (jit_internal.h,
 * JIT_STATIC_CACHE_MIN), behind a pointer slot of ws.  jit_ws_init points it
 * at the block the Jit computed for the model's own weights (shared: only
 * read by the kernels, except setup_static).  A host that changes static
 * tensors points the slot at a block of its own (jit_static_size doubles)
 * and calls setup_static.  0 if the kernels have no static block. */
size_t jit_static_size(const Jit *j);
void jit_ws_point_static(const Jit *j, double *ws, double *block);
/* Is t held by reference (one pointer slot in ws instead of its values)? */
bool jit_ws_by_ref(const Jit *j, TensorId t);
/* Point t's slot in ws at v (sym_tensor_size(t) doubles that outlive the
 * runs); no-op unless jit_ws_by_ref. */
void jit_ws_point(const Jit *j, double *ws, TensorId t, const double *v);
/* Where the kernels read t's values for workspace ws: ws + offset, or the
 * values its slot points at; NULL if t has no storage. */
double *jit_ws_values(const Jit *j, double *ws, TensorId t);
void jit_free(Jit *j);

#endif
