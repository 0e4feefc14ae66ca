/* jit_internal.h - private interface between the JIT's emitter and its drivers.
 *
 * jit_emit.c compiles symbolic expressions (sym.h) with free index variables
 * into LLVM loop nests; jit_kernels.c lays out the workspace and builds the
 * kernel functions of JitKernels out of "statements" (dst[...] = expr over
 * index variables); jit.c owns the LLVM context, optimisation and the LLJIT.
 * Only files in this directory include this header (and llvm-c).
 *
 * Loop scopes.  While a function is emitted the emitter keeps a stack of
 * levels: level 0 is the function body, level k >= 1 a loop binding one index
 * variable.  Every level has an insertion block `ins` that stays open (no
 * terminator) while deeper loops exist, so a subexpression can be emitted at
 * the outermost level where all its free indices are bound (loop-invariant
 * hoisting) and memoised per (SymId, level instance).  A loop is closed by
 * branching from its level's final `ins` block into the header, so code
 * hoisted into the enclosing level while the loop was open still dominates it.
 */
#ifndef DAM_JIT_INTERNAL_H
#define DAM_JIT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/TargetMachine.h>

#include "jit.h"

#define JIT_MAX_DEPTH 64

typedef struct JitLevel {
	IdxId var;                 /* index variable bound here (0: none) */
	LLVMValueRef iv;           /* i64 value of the loop counter */
	LLVMValueRef hi;           /* i64 exclusive upper bound */
	LLVMBasicBlockRef head;    /* loop header (phis, bound check) */
	LLVMValueRef check;        /* the bound check in head: phis go before it */
	LLVMBasicBlockRef exit;    /* block after the loop */
	LLVMBasicBlockRef ins;     /* open block where this level's code goes */
	LLVMValueRef lo;           /* i64 start value */
	uint64_t gen;              /* instance number (memo validity) */
	int shadow;                /* var_level[var] before this level bound var */
	bool has_inner;            /* a loop was nested in this one */
	bool jam;                  /* ... a long innermost one: unroll and jam this loop */
	bool rolled;               /* keep this loop rolled (llvm.loop.unroll.disable) */
} JitLevel;

/* What the last emission of a logsumexp node left behind: a stack buffer
 * holding exp(b_i - shift) for every i, and their sum s, so that the softmax
 * exp(b_j - logsumexp) is emitted as buf[j] / s (no second exp). */
typedef struct JitLse {
	LLVMValueRef fn;           /* function the buffer lives in */
	LLVMValueRef value;        /* the logsumexp value it belongs to */
	LLVMValueRef buf, sum;
} JitLse;

typedef struct JitEmit {
	LLVMContextRef ctx;
	LLVMModuleRef mod;
	LLVMBuilderRef b;
	const Model *m;
	SymCtx *sym;
	LLVMTypeRef f64, i64, i1, ptr;

	/* Per tensor (indexed by TensorId). */
	LLVMValueRef *gconst;      /* MT_CONST / MT_LEARN baked in: private constant global */
	int64_t *ws_off;           /* MT_INPUT / MT_DYN / MT_ACT, run-time weights: offset in ws, -1 none */
	bool bake;                 /* static and learn tensors as constants (JitOptions.bake_weights) */
	bool by_ref_ok;            /* large run-time weights by reference (jit.c's kernels, not the
	                            * gradient's): ws[ws_off] holds a pointer to the values */
	uint8_t *by_ref;           /* per tensor: 1 if read through its pointer slot */
	TensorId *rowkey;          /* per tensor: jit_row_key's memo (the input, 0 none) ... */
	uint8_t *rowkey_state;     /* ... 0 unknown, 1 being computed, 2 known */
	int64_t keyed_off;         /* ws slot: 1 while the keyed rows follow their keys (the host
	                            * programmed none), else 0; -1: no keyed rows */
	int64_t *keymap_off;       /* per input that keys rows: ws offset of its map of first rows
	                            * (jit_axpy_emit_keymaps), -1 none */
	TensorId *dyn_alias;       /* per dynamic tensor: the one whose storage it shares, 0 none */
	uint8_t *cache_sb;         /* per SymId: a cache of static tensors alone, JIT_STATIC_CACHE_MIN
	                            * doubles or more, kept in the static block: cache_off is its
	                            * offset there (jit.c computes the block once per Jit for the
	                            * model's weights; simulators share it) */
	int64_t sb_size;           /* doubles of the static block (0: none) */
	int64_t sb_slot;           /* ws offset of the pointer to it */
	uint8_t *rin_memo;         /* per SymId: jit_reads_inputs' memo (0 unknown, 1 no, 2 yes) */
	LLVMValueRef sbptr, sbptr_from;   /* the block's pointer loaded in this function, from wsw */
	LLVMValueRef *wptr;        /* per tensor: the pointer loaded from its slot ... */
	LLVMValueRef *wptr_from;   /* ... and the wsw it was loaded from (memo validity) */
	bool fast_exp;             /* exp as inline straight-line code (JitOptions.fast_exp) */
	int vlen;                  /* doubles per vector register of the host (2, 4 or 8) */
	int64_t tau_off;           /* ws offset of the time constants, one per state component */
	int64_t *x_off;            /* MT_STATE: offset in x, -1 none */

	/* Per SymId. */
	uint32_t nsym;
	uint8_t *dep;              /* 0 unknown, 1 state-free, 2 reads x or g */
	int64_t *cache_off;        /* ws offset of a setup-time cache, -1 none */
	LLVMValueRef *memo;
	uint64_t *memo_gen;
	struct JitLse *lse;        /* logsumexp nodes: buffer of exp(b_i - shift) */
	IdxId *cache_ord;          /* SYM_MAX_RANK per SymId: the order its cache is flattened in */
	uint8_t *cache_ord_set;    /* 1: cache_ord holds a chosen order (else n->free, ascending) */
	uint8_t *relayout;         /* 1: the cache is a layout copy (of a tensor, recomputed by relayout()) */
	int64_t *axbuf_off;        /* interchanged sums (jit_axpy.c): ws offset of the column buffer, -1 none */
	uint8_t *axready;          /* 1 while the statement being emitted reads the sum from its buffer */
	bool axpy_on;              /* statements interchange their planned sums (the hot kernels) */
	uint32_t *axmark;          /* per SymId: walk stamp (jit_axpy.c) */
	uint32_t axstamp;

	/* Per IdxId. */
	int *var_level;            /* level binding the variable, -1 unbound */

	/* The function being emitted. */
	LLVMValueRef fn;
	LLVMBasicBlockRef entry;   /* allocas; branches to the body at the end */
	LLVMBasicBlockRef body;    /* first block of the body */
	LLVMValueRef ws, x;        /* base pointers (x NULL where there is no state) */
	LLVMValueRef wsw;          /* where the weights and shared caches are read: ws, or the
	                            * first string's workspace in the batched kernel */
	/* The batched Euler kernel (jit_build_euler_batch): its arrays of
	 * workspaces and states and their number; jit_batch_open() opens a loop
	 * over the strings that points ws and x at string b's. */
	bool want_batch;           /* emit the batched kernel too (JIT_BATCH) */
	bool want_split;           /* emit the halves of a step for two threads (JIT_SPLIT) */
	bool batch;
	LLVMValueRef wsv, xv, nb;
	LLVMValueRef scratch, scr;  /* the batch's column buffers; string b's (in the string loop) */
	int64_t *axscr_off;        /* per SymId: offset of its column buffer in a string's scratch */
	int64_t axscr_size;        /* doubles of scratch per string (padded: jit_axpy.c) */
	int64_t *axpack_off;       /* per SymId: offset of its packed weight panels in the scratch (or
	                            * with axpack_sb in the static block), -1 none */
	uint8_t *axpack_sb;        /* per SymId: its panels are in the static block (setup_static) */
	uint8_t *axbonly;          /* per SymId: a sum only the batched kernel interchanges (its
	                            * weights read T[j, mu], too large for a transposed copy: their
	                            * panels are packed transposed; separate multiply and add, as
	                            * the one-string kernel's source-order fold) */
	int64_t axpack_size;       /* doubles of packed panels at the start of the scratch */
	int bfloor;                /* level of the open string loop (0: none) */
	uint8_t *pstr;             /* per SymId: 0 unknown, 1 shared by the strings, 2 per string */
	bool use_cache;
	int floor;                 /* lowest level state-dependent values may live at */
	JitLevel lv[JIT_MAX_DEPTH];
	int depth;
	uint64_t gen_counter;
	int nbuf;                  /* stack buffers allocated so far (naming) */

	bool failed;
	char err[256];
} JitEmit;

/* jit_emit.c */
void jit_emit_init(JitEmit *E, LLVMModuleRef mod, const Model *m);
void jit_emit_fini(JitEmit *E);
void jit_fail(JitEmit *E, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
LLVMValueRef jit_fn_begin(JitEmit *E, const char *name, LLVMTypeRef type);
void jit_fn_end(JitEmit *E, LLVMValueRef ret);
void jit_stmt_begin(JitEmit *E);
void jit_loop_open(JitEmit *E, IdxId var, LLVMValueRef lo, LLVMValueRef hi, const char *name);
void jit_loop_close(JitEmit *E);
void jit_position_top(JitEmit *E);
void jit_at_level(JitEmit *E, int level);   /* the builder at the end of level's open block */
/* In the batched kernel: a loop over the strings, ws and x pointing at string
 * b's (no-ops elsewhere). */
void jit_batch_open(JitEmit *E);
void jit_batch_close(JitEmit *E);
LLVMValueRef jit_emit(JitEmit *E, SymId e);
LLVMValueRef jit_elem_ptr(JitEmit *E, LLVMValueRef base, LLVMValueRef off, const char *name);
LLVMValueRef jit_i64(JitEmit *E, int64_t v);
LLVMValueRef jit_f64(JitEmit *E, double v);
/* tau_ws >= 0: divide by ws[tau_ws + j] (run-time time constants) instead of tau. */
void jit_assign_range(JitEmit *E, LLVMValueRef base, int64_t off, IdxId var,
                      int64_t lo, int64_t hi, SymId e, double tau, int64_t tau_ws, const char *name);
void jit_assign_nd(JitEmit *E, LLVMValueRef base, int64_t off, int rank,
                   const IdxId *vars, SymId e, const char *name);
bool jit_dep_state(JitEmit *E, SymId e);
/* The i64 flat offset of a cache of e at the loop counters bound now. */
LLVMValueRef jit_cache_flat(JitEmit *E, SymId e);
/* Emits the memoised-per-statement node switch's fallback for sums: the
 * column buffer load of an interchanged sum (jit_axpy.c). */
LLVMValueRef jit_axpy_load(JitEmit *E, SymId e, int level);
/* A phi of type ty in the innermost loop's header; jit_loop_close_acc closes
 * the loop with phi[k] going from init[k] to next[k]. */
LLVMValueRef jit_loop_phi_ty(JitEmit *E, LLVMTypeRef ty, const char *name);
void jit_loop_close_acc(JitEmit *E, int nacc, LLVMValueRef *phi, LLVMValueRef *init, LLVMValueRef *next);
/* e = A(mu, j) row-major with j contiguous (shared: the same for all strings
 * of a batch): base pointer, offset of A(0, 0) and row stride (jit_axpy.c's
 * register blocks). */
bool jit_rows(JitEmit *E, SymId e, IdxId mu, IdxId j, bool shared, LLVMValueRef *base, int64_t *off,
              int64_t *stride);
/* e = X[mu], an activation or a state: its base pointer and the offset of X[0]. */
bool jit_vector_read(JitEmit *E, SymId e, IdxId mu, LLVMValueRef *base, int64_t *off);
/* e = T[j, mu], a tensor shared by the strings of a batch, read with its rows
 * along j: element (mu, j) at offset off + j * stride + mu of base. */
bool jit_rows_t(JitEmit *E, SymId e, IdxId mu, IdxId j, LLVMValueRef *base, int64_t *off, int64_t *stride);
/* The input tensor whose values key the rows of dynamic tensor t: row r of
 * t is a function of in[r] alone, so rows with equal keys are equal (the
 * attention keys[A, i] = embed_raw[tok[A], i]^2); 0 if there is none. */
TensorId jit_row_key(JitEmit *E, TensorId t);
/* setup: for every input that keys rows, the map of first rows of the run
 * (jit_axpy.c). */
void jit_axpy_emit_keymaps(JitEmit *E);
/* e = T[r, c], T a dynamic tensor in the string's workspace whose rows are
 * keyed by an input (jit_row_key, given in *key): as jit_rows. */
bool jit_rows_keyed(JitEmit *E, SymId e, IdxId r, IdxId c, TensorId *key, LLVMValueRef *base, int64_t *off,
                    int64_t *stride);
/* The static block's pointer in the function being emitted; the base of
 * e's cache (the static block, the string's ws or the shared wsw). */
LLVMValueRef jit_static_block(JitEmit *E);
LLVMValueRef jit_cache_base(JitEmit *E, SymId e);
/* A stack array of n doubles in the function's entry block (32-byte aligned). */
LLVMValueRef jit_stack_array(JitEmit *E, int64_t n);
/* a b + c with one rounding (llvm.fma), scalars or vectors of doubles. */
LLVMValueRef jit_fma(JitEmit *E, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c);
/* e = k0 * k1, two ordinary factors (one fmul when emitted). */
bool jit_product2(JitEmit *E, SymId e, SymId *k0, SymId *k1);

/* jit_axpy.c: loop interchange of large matrix-vector sums.  A sum over mu of
 * a body with the free index j of a statement (dst[j] = ... sum(mu, T[mu, j]
 * g[mu]) ...) is computed before the statement as buf[j] = 0; for mu: for j:
 * buf[j] += body(mu, j): the same additions in the same order for every j
 * (bit-identical to the source-order fold), with an inner loop that is
 * independent across j, contiguous in memory, and so vectorises without
 * reassociation.  Accesses whose layout puts j first get a transposed
 * setup-time copy (a cache flattened with j innermost). */
typedef struct JitCachePlan JitCachePlan;
void jit_axpy_plan(JitEmit *E, SymId rhs, IdxId j, int64_t *cur, JitCachePlan *P);
/* Emits the column buffers of the planned sums in e (statement variable var,
 * range [lo, hi)) at the innermost level and marks them ready. */
void jit_axpy_emit(JitEmit *E, SymId e, IdxId var, int64_t lo, int64_t hi);
void jit_axpy_done(JitEmit *E, SymId e);
/* A scalar expression (the energy): each of its reductions, over mu say,
 * is a statement over mu for the planned sums of its body.  plan_scalar
 * plans them, after jit_axpy_pack_plan: they get no panels of their own,
 * a sum for the batched kernel alone uses the static block's panels of the
 * same weights; emit_scalar emits their buffers (then jit_emit the
 * expression and jit_axpy_done). */
void jit_axpy_plan_scalar(JitEmit *E, SymId e, int64_t *cur, JitCachePlan *P);
void jit_axpy_emit_scalar(JitEmit *E, SymId e);
int64_t jit_axpy_scratch_stride(const JitEmit *E);   /* doubles per string */
/* Chooses the planned sums the batched kernel computes in register blocks
 * and places their packed weight panels at the start of its scratch
 * (E->axpack_size doubles); after the layout. */
void jit_axpy_pack_plan(JitEmit *E);
/* Packs the panels from the shared weights: those of the static block
 * (in setup_static, after its caches) or those of the scratch (in a batched
 * kernel, before the steps). */
void jit_axpy_pack_emit(JitEmit *E, bool static_block);

/* jit_kernels.c */
struct JitCachePlan {
	uint8_t *costly, *seen;
	SymId *list;               /* the caches setup() computes, in order */
	int n;
	int64_t *cur;
};
/* Adds e as a cache (size doubles at *P->cur) to the plan. */
void jit_cache_add(JitEmit *E, JitCachePlan *P, SymId e, int64_t size);

typedef struct JitLayout {
	size_t ws_size;
	size_t nstate, noutput, nact;
	size_t *input_off;         /* model->ninputs entries (malloc) */
	size_t *output_off;        /* model->noutputs entries (malloc) */
	int64_t act_off, dx_off;
	int64_t tau_off;           /* ws offset of the per-component time constants */
	int64_t batch_scratch;     /* doubles of scratch per string of euler_batch */
	int64_t batch_pack;        /* doubles of packed weight panels before the strings' scratch */
	int64_t *tensor_ws_off;    /* copy of ws_off per tensor (malloc) */
	uint8_t *tensor_by_ref;    /* copy of by_ref per tensor (malloc) */
	int64_t keyed_off;         /* JitEmit.keyed_off */
	int64_t sb_size, sb_slot;  /* the static block (JitEmit) */
	uint32_t ntensors;
} JitLayout;

/* Run-time static and learn tensors of at least this many elements are not
 * copied into each workspace: one slot of ws holds a pointer to the values
 * (the Model's, or a simulator's own after sim_set_tensor), so simulators
 * share one copy of large weights (a batch of 64 at D = M = 4096 would hold
 * 64 copies of 134 MB).  Smaller ones stay inline, where LLVM sees that they
 * do not alias the workspace's other contents. */
#define JIT_BY_REF_MIN 65536

/* A cache that depends on static tensors alone and has at least this many
 * doubles (the transposed copy of the Hopfield block at D = M = 1024: 1M) is
 * not kept per workspace either: it lives in a static block behind one more
 * pointer slot, computed once per Jit (setup_static) and shared by the
 * simulators that hold the model's weights; one that programs its own gets
 * its own block. */
#define JIT_STATIC_CACHE_MIN 65536

/* Which kernels a module holds: all of them, the hot half (the fused Euler
 * loop and the rhs kernel, with the helpers they call) or the cold half (the
 * others).  jit.c compiles the two halves on two threads; the layout is the
 * same in both. */
typedef enum { JIT_PART_ALL, JIT_PART_HOT, JIT_PART_COLD } JitPart;

/* The tensors some kernel of m reads (used[t] = 1; ntensors + 1 entries,
 * dam_free them): activations, right-hand sides, biases, initial and clamped
 * values, the energy, the outputs, the dynamic tensors' definitions.  Static
 * tensors outside it take no room in the workspace. */
uint8_t *jit_used_tensors(const Model *m);

/* Lays out ws, emits the kernels of `part` into E->mod; 0 on success. */
int jit_build_kernels(JitEmit *E, JitLayout *lay, JitPart part);

/* ---- the LLVM plumbing of jit.c, shared with jit_grad.c ---- */
/* LLVM's native target initialised once per process; 0 ok, -1 if none. */
int jit_llvm_init(char *err, size_t errlen);
void jit_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The message of e (if any) into err, e disposed; -1 on error, 0 for NULL. */
int jit_check(LLVMErrorRef e, const char *what, char *err, size_t errlen);
/* A TargetMachine for the host CPU and its features, at optimisation level opt. */
LLVMTargetMachineRef jit_host_tm(int opt, char *err, size_t errlen);
/* A context whose optimisation remarks and warnings are not printed. */
LLVMContextRef jit_context_new(void);
/* Doubles per vector register of the host CPU: 8 (AVX-512), 4 (AVX) or 2. */
int jit_host_vlen(void);
/* The default<O1..3> pipeline with loop and SLP vectorisation (opt 0: none). */
int jit_optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt, char *err, size_t errlen);
/* An LLJIT that resolves the process' symbols (libm); consumes tm. */
LLVMOrcLLJITRef jit_create_lljit(LLVMTargetMachineRef tm, char *err, size_t errlen);

/* Names of the emitted functions, in JitKernels order. */
#define JIT_FN_SETUP   "dam_setup"
#define JIT_FN_SETUP_RUN "dam_setup_run"
#define JIT_FN_SETUP_STATIC "dam_setup_static"
#define JIT_FN_INIT    "dam_init_state"
#define JIT_FN_RHS     "dam_rhs"
#define JIT_FN_ENERGY  "dam_energy"
#define JIT_FN_ACTS    "dam_acts"
#define JIT_FN_OUTPUTS "dam_outputs"
#define JIT_FN_EULER   "dam_euler"
#define JIT_FN_RELAYOUT "dam_relayout"
#define JIT_FN_EULER_BATCH "dam_euler_batch"
#define JIT_FN_RHS_BATCH "dam_rhs_batch"
#define JIT_FN_ENERGY_BATCH "dam_energy_batch"
#define JIT_FN_RHS_HALF "dam_rhs_half"        /* + 0 or 1 */
#define JIT_FN_UPDATE_HALF "dam_update_half"  /* + 0 or 1 */

#endif
