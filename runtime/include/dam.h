/* dam.h - the public C API of damc: compile a .dam model to native code and
 * run it from a host program (a controller, a test bench, a Python binding).
 *
 *     char *err = NULL;
 *     DamModel *m = dam_compile_file("examples/xor.dam", NULL, &err);
 *     if (!m) { fputs(err, stderr); dam_string_free(err); return 1; }
 *     double bits[2] = {1, 0}, y;
 *     dam_set_input(m, "bits", bits, 2);
 *     DamRunOptions o; dam_run_options_default(&o); o.t_end = 5;
 *     if (dam_run(m, &o, NULL) != DAM_E_OK) fputs(dam_errmsg(m), stderr);
 *     dam_get_output(m, "y", &y, 1);
 *     dam_model_free(m);
 *
 * Everything is reached through the opaque handle DamModel: the compiled
 * code (shared, read-only, reference counted) plus one simulator instance
 * (a workspace, the state, the inputs set, the weight overrides, the last
 * error).  Names are the ones of the .dam source: inputs ("tok"), outputs
 * ("logits"), layers and weight blocks, with block instances prefixed by
 * their `use` name ("attn.h", "attn.xi").
 *
 * Errors.  Functions that can fail return a DamError (0 on success); the
 * handle then holds a one-line message in the user's words, e.g.
 *   "input 'tok' expects 8 values, got 7"
 * until the next failing call (dam_errmsg).  Compilation returns NULL and a
 * malloc'd string with the rendered diagnostics (file:line:col: error: ...,
 * source line and caret).  No function aborts or exits on bad arguments.
 *
 * Thread safety.  A DamModel handle must not be used by two threads at the
 * same time.  dam_model_clone() makes another handle on the same compiled code
 * with its own workspace, inputs and overrides; different handles (clones
 * included) may be used concurrently from different threads, and a run on a
 * clone gives bit-identical results to the same run on the original.
 * dam_compile_* may be called from several threads; compilations are
 * serialised internally.  dam_model_free() of one clone never affects the others
 * (the code is released with the last handle).
 *
 * This header includes no other damc, LLVM or Lua header; link with the
 * static libraries damdrv, damjit, damfront, damir, damrt and with LLVM 16,
 * Lua 5.4, zlib, pthread and libm (docs/api.md).
 */
#ifndef DAM_H
#define DAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct DamModel DamModel;

typedef enum DamError {
	DAM_E_OK = 0,
	DAM_E_NAME = 1,       /* no input / output / layer / weight block of that name */
	DAM_E_COUNT = 2,      /* wrong number of values */
	DAM_E_VALUE = 3,      /* a value is not finite, or not a token index in range */
	DAM_E_STATIC = 4,     /* the weight block is static (compiled into the code) */
	DAM_E_MISSING = 5,    /* an input was never set */
	DAM_E_OPTIONS = 6,    /* bad run options (dt <= 0, t_end < 0, too many steps) */
	DAM_E_RUN = 7,        /* the run diverged, became NaN or the step size failed */
	DAM_E_NORUN = 8,      /* a readout was asked for before any successful dam_run */
	DAM_E_ARG = 9,        /* NULL handle or buffer, index out of range */
} DamError;

/* Same values as the runtime's DamSolver (dam_integrate.h). */
typedef enum DamSolverKind {
	DAM_SOLVER_EULER = 0,     /* forward Euler, fixed dt (the papers' method) */
	DAM_SOLVER_RK4 = 1,       /* classical Runge-Kutta 4, fixed dt */
	DAM_SOLVER_DOPRI5 = 2,    /* adaptive Dormand-Prince 5(4), rtol/atol */
	DAM_SOLVER_EXPEULER = 3,  /* exponential Euler on the leak (stiff tau) */
} DamSolverKind;

typedef enum DamRunStatus {
	DAM_RUN_OK = 0,           /* reached t_end or a steady state */
	DAM_RUN_DIVERGED = 1,
	DAM_RUN_NAN = 2,
	DAM_RUN_STEP_FAIL = 3,
} DamRunStatus;

/* ---- compiling ------------------------------------------------------------ */

typedef struct DamCompileOptions {
	const char *const *defines;   /* "name=value" param overrides, like damc -D */
	int ndefines;
	const char *stdlib_dir;       /* NULL: $DAMC_STDLIB, then the built-in stdlib */
	int opt_level;                /* LLVM optimisation 0..3; < 0: default (3) */
	int bake_weights;             /* 1: weights compiled in as constants; 0: run-time data */
	int fast_exp;                 /* 1: exp inline and vectorisable, within 1 ulp of the C
	                               * library's (damc run --fast-exp); 0: the C library's exp */
	int cache;                    /* 1: reuse machine code from the object cache directory,
	                               * as damc run does (docs/cli.md); 0: always compile */
} DamCompileOptions;

/* Compile a .dam file to native code.  opts may be NULL.  Relative paths in
 * the model (imports, load()) are resolved against the file's directory, as
 * in damc.  On failure returns NULL and, if err is non-NULL, stores a
 * malloc'd string with the rendered diagnostics (free it with
 * dam_string_free).  On success *err is set to NULL. */
DamModel *dam_compile_file(const char *path, const DamCompileOptions *opts, char **err);
/* The same from text in memory; `name` is used in diagnostics and relative
 * paths are resolved against its directory ("." when it has no slash). */
DamModel *dam_compile_string(const char *name, const char *text, const DamCompileOptions *opts,
                             char **err);
/* Warnings of the compilation (convexity, boundedness...), rendered; "" if none. */
const char *dam_warnings(const DamModel *m);
void dam_string_free(char *s);

/* Another handle on the same compiled code: fresh workspace, a copy of the
 * inputs set and of the weight overrides.  NULL if out of memory. */
DamModel *dam_model_clone(const DamModel *m);
void dam_model_free(DamModel *m);

/* The message of the last failing call on this handle ("" if none). */
const char *dam_errmsg(const DamModel *m);
const char *dam_error_name(DamError e);   /* "DAM_E_NAME", ... */

/* ---- what the model declares ------------------------------------------------ */

int dam_input_count(const DamModel *m);
int dam_output_count(const DamModel *m);
int dam_layer_count(const DamModel *m);
int dam_weights_count(const DamModel *m);
/* Name of item i (declaration order), or NULL if i is out of range.  The
 * strings live as long as the compiled code. */
const char *dam_input_name(const DamModel *m, int i);
const char *dam_output_name(const DamModel *m, int i);
const char *dam_layer_name(const DamModel *m, int i);
const char *dam_weights_name(const DamModel *m, int i);
/* Sizes by name; 0 if there is no such item. */
size_t dam_input_size(const DamModel *m, const char *name);
size_t dam_output_size(const DamModel *m, const char *name);
size_t dam_layer_size(const DamModel *m, const char *name);
/* Token inputs (`input tok[L] : index(V)`): V; real-valued inputs: 0. */
int64_t dam_input_vocab(const DamModel *m, const char *name);
double dam_layer_tau(const DamModel *m, const char *name);   /* 0 if none */
/* Shape of a weight block: rows (neurons of the first layer) and columns;
 * returns 1 if the block is dynamic (computed from the inputs), 0 if static,
 * -1 if there is no such block. */
int dam_weights_shape(const DamModel *m, const char *name, size_t *rows, size_t *cols);
/* Total number of state variables (sum of the layer sizes). */
size_t dam_state_size(const DamModel *m);

/* ---- inputs and weights ------------------------------------------------------ */

/* Set input `name` to n values (token ids as doubles for index inputs).
 * The values are checked: DAM_E_NAME, DAM_E_COUNT, DAM_E_VALUE. */
DamError dam_set_input(DamModel *m, const char *name, const double *v, size_t n);
/* The same for token inputs from integers. */
DamError dam_set_tokens(DamModel *m, const char *name, const int *tok, size_t n);

/* Program a weight block (rows * cols values, row-major) directly, as a
 * controller writing crossbar cells itself, for every following run of this
 * handle until dam_clear_weights() (which restores the model's values).
 * Dynamic block: the values replace what the block's definition computes
 * from the inputs; quantities the model derives from the block at setup (say
 * a bias defined as a function of the same rows) keep their input-derived
 * values.  Static block: the values replace the block's tensor in the
 * compiled kernels' data (no recompilation; e.g. the quantised weights of a
 * crossbar image); what the model computes from the block when it is
 * compiled (a bias defined as -|xi|^2/2, say) keeps its compiled value, as a
 * chip's bias generators keep theirs.  A model compiled with bake_weights gives DAM_E_STATIC for static
 * blocks (their values are constants in the code). */
DamError dam_set_weights(DamModel *m, const char *block, const double *data, size_t n);
DamError dam_clear_weights(DamModel *m, const char *block);   /* NULL: all blocks */
/* The values of a block as the last run used them (after overrides); for a
 * static block, its compiled values (no run needed). */
DamError dam_get_weights(DamModel *m, const char *block, double *out, size_t n);

/* ---- running ------------------------------------------------------------------ */

typedef struct DamRunOptions {
	DamSolverKind solver;  /* default DAM_SOLVER_EULER */
	double dt;             /* fixed step; DOPRI5: initial step (0: automatic). default 1e-3 */
	double t_end;          /* default 1 */
	double rtol, atol;     /* DOPRI5; default 1e-6, 1e-9 */
	double steady_tol;     /* > 0: stop once max_i |dx_i/dt| < steady_tol; default 0 (never) */
	double diverge_limit;  /* |x_i| above this is divergence; 0 (default): 100 x the initial scale */
	int64_t max_steps;     /* 0: unlimited for fixed-step, 10^7 for adaptive */
	int64_t check_every;   /* fixed-step: steps between energy/steady/divergence checks;
	                          default 1.  Larger values let Euler run in the JIT's fused
	                          loop for longer stretches (faster, coarser checks). */
} DamRunOptions;

typedef struct DamRunInfo {
	DamRunStatus status;
	double t;              /* time reached */
	double t_converged;    /* first time max |dx/dt| < steady_tol; < 0 if never */
	int64_t steps;         /* accepted steps */
	int64_t rhs_evals;
	double energy_start, energy_end;
	double max_energy_rise;/* largest increase of the energy between checks (0: none) */
} DamRunInfo;

void dam_run_options_default(DamRunOptions *o);
/* Compute the dynamic weights and biases from the inputs, apply the weight
 * overrides, set the initial state and integrate from t = 0.  opts NULL:
 * defaults; info may be NULL.  Returns DAM_E_OK, DAM_E_MISSING,
 * DAM_E_OPTIONS, or DAM_E_RUN with a message such as
 *   "layer 'v' neuron 3 diverged at t = 2.716".
 * After DAM_E_RUN the readouts show the state the run stopped at. */
DamError dam_run(DamModel *m, const DamRunOptions *opts, DamRunInfo *info);

/* ---- readouts of the last run ---------------------------------------------------- */

/* Copy n values (n must equal the item's size) into out. */
DamError dam_get_output(DamModel *m, const char *name, double *out, size_t n);
DamError dam_get_state(DamModel *m, const char *layer, double *out, size_t n);
DamError dam_get_activations(DamModel *m, const char *layer, double *out, size_t n);
/* The whole flat state (layers in declaration order), dam_state_size() values. */
DamError dam_get_state_all(DamModel *m, double *out, size_t n);
/* Energy at the final state; NaN before any run. */
double dam_energy(DamModel *m);
/* Status of the last run (DAM_E_NORUN before any). */
DamError dam_last_run(const DamModel *m, DamRunInfo *info);

#ifdef __cplusplus
}
#endif

#endif
