/* sim.h - the simulator object: a compiled model plus one run's workspace.
 *
 * A DamSim pairs a Model with its JIT kernels (jit_compile) and owns a
 * workspace, the state vector and the per-component time constants, so it
 * can run the model once per set of inputs: sim_set_input() for each
 * declared input, then sim_run(), then read the state, activations, outputs
 * and energy.  The Model and the Jit are shared and read-only; sim_clone()
 * makes an independent simulator (fresh workspace, same inputs) for another
 * thread, so a batch on several cores gives bit-identical results to a
 * sequential one (NULL if the copy refused a value the source holds, which
 * the checks on the way in rule out).
 */
#ifndef DAM_SIM_H
#define DAM_SIM_H

#include <stdbool.h>
#include <stddef.h>

#include "dam_integrate.h"
#include "jit.h"
#include "model.h"

typedef struct DamSim DamSim;

/* Called at t = 0, at every integrator check and at the end, with the state
 * x, the activations g (both model_state_size long) and the energy. */
typedef void (*SimTraceFn)(void *user, double t, const double *x, const double *g, double energy);

DamSim *sim_new(const Model *m, const Jit *jit);
DamSim *sim_clone(const DamSim *s);
void sim_free(DamSim *s);

const Model *sim_model(const DamSim *s);
size_t sim_state_size(const DamSim *s);
size_t sim_output_size(const DamSim *s);

/* Index of the input / output / layer named `name`, or -1. */
int sim_find_input(const Model *m, const char *name);
int sim_find_output(const Model *m, const char *name);

/* Set input `input` (model->inputs order) to n values.  Checks the count and,
 * for index inputs, that every value is an integer token in 0..vocab-1.
 * Returns 0, -1 (wrong count or input number) or -2 (a bad value), with a
 * message in err, e.g.
 *   "input 'tok' expects 8 values, got 7"
 *   "input 'tok' value 2 at position 3 is not a token index in 0..1" */
int sim_set_input(DamSim *s, int input, const double *v, size_t n, char *err, size_t errlen);
/* The checks of sim_set_input on their own, for a caller that validates rows
 * before it runs anything: the same return codes and messages; *bad receives
 * the position of the first bad value (-2).  A value that is not finite is
 *   "input 'bits' value at position 0 is not a number" (or "is infinite"). */
int sim_check_input(const MInput *in, const double *v, size_t n, size_t *bad, char *err,
                    size_t errlen);
/* The values last set for input `input` (NULL if never set). */
const double *sim_input(const DamSim *s, int input);
/* -1 if every input is set, else the index of the first one that is not. */
int sim_missing_input(const DamSim *s);

/* Dynamic tensors (MT_DYN, e.g. the attention rows of the Analog ET) are
 * computed from the inputs by the JIT's setup() before each run.  A host can
 * program them itself instead: sim_set_dynamic() keeps a copy of the
 * tensor's values (sym_tensor_size of them) that every later run writes over
 * what setup() computed; sim_clear_dynamic(s, t) forgets it (t = 0: all).
 * sim_tensor() is where the kernels read the tensor (NULL if it has no
 * storage): in the workspace, or for a large static tensor the values it is
 * shared from (the Model's until sim_set_tensor gives the simulator its own
 * copy): read them, change them with sim_set_tensor.  Returns -1 if t is not
 * a dynamic tensor. */
int sim_set_dynamic(DamSim *s, TensorId t, const double *v);
/* Static and learn tensors (weights, bias vectors, ...) are run-time data of
 * the compiled kernels: sim_new fills them from the Model (large ones are
 * shared with it, not copied: jit_ws_by_ref), sim_set_tensor()
 * replaces them (sym_tensor_size values) for every later run of this
 * simulator without recompiling, e.g. quantised or noisy weights.  Returns -1
 * if t is not such a tensor or the JIT baked it in (rank 0, bake_weights). */
int sim_set_tensor(DamSim *s, TensorId t, const double *v);
/* The time constant of every state component (model_state_size values) is
 * run-time data too: sim_new sets each layer's tau, sim_set_tau() replaces
 * them (e.g. R2*C1 as built, with mismatch) for the kernels and the solvers. */
void sim_set_tau(DamSim *s, const double *tau);
const double *sim_tau(const DamSim *s);
void sim_clear_dynamic(DamSim *s, TensorId t);
double *sim_tensor(DamSim *s, TensorId t);

/* The step a fixed-step solver may take on a model: forward Euler's step
 * does not damp the leak term -x/tau of a layer once dt >= 2 tau (it
 * amplifies it beyond), RK4's once dt >= 2.785 tau, so such a step on some
 * layer with free (unclamped) neurons gives a wrong answer or a blow-up.
 * Exponential Euler is exact on the leak and dopri5 controls its own step,
 * so they are never refused.  The step checked is min(dt, t_end) (a run
 * shorter than dt is one step of t_end).  Returns 0, or -1 with lim set to
 * the most restrictive layer (dt_max: its bound) and msg e.g.
 *   "solver 'euler' is unstable with dt = 0.5 on layer 'h' (tau = 0.1): its
 *    leak is stable only for dt < 0.2 (2 tau)"
 * The bound covers the leak only: the couplings can make steps near it
 * unstable too, which the run then shows (energy_rise, divergence). */
typedef struct SimStepLimit {
	int layer;             /* -1: none */
	double tau, dt_max;
} SimStepLimit;
int sim_check_step(const Model *m, const DamRunOpts *o, SimStepLimit *lim, char *msg, size_t len);

/* Setup, initial state and integration from t = 0 (opts as dam_integrate,
 * except that opts->diverge_limit <= 0 means 100 times the initial scale
 * max(1, max_i |x_i(0)|, max_i |tau_i f_i(x(0)) + x_i(0)|)).
 * trace may be NULL.  A step that sim_check_step refuses is not taken: the
 * status is STEP_FAIL at t = 0 with sim_check_step's message.  A run whose
 * state, energy or outputs end up non-finite has status NAN (never OK), so
 * a non-finite number in a result always comes with a failed status.
 * After a DIVERGED / NAN / STEP_FAIL status, `message` (if non-NULL) holds
 * e.g. "layer 'v' neuron 3 diverged at t = 2.716", "layer 'h' neuron 1
 * became infinite at t = 0.5", "the energy is not a number at t = 0";
 * otherwise it is "".  Returns res->status. */
DamStatus sim_run(DamSim *s, const DamRunOpts *opts, DamRunResult *res, SimTraceFn trace,
                  void *user, char *message, size_t msglen);

/* Split every Euler step of later runs over two threads (the kernels must
 * come from jit_compile_flags with JIT_SPLIT): the activations, then each
 * thread half of every layer's dx/dt, then each its half of the update; the
 * same steps as one thread, bit for bit.  Returns whether runs are split. */
bool sim_set_split(DamSim *s, bool on);

/* sim_run(s[i], opts, &res[i], NULL, NULL, msg + i * msglen, msglen) for
 * i in 0..n-1 (msg may be NULL), with the same results bit for bit, but the
 * strings advance together through each chunk of Euler steps in the JIT's
 * batched kernel (euler_batch: the weights are read once per step for a
 * whole block of strings), nthreads blocks at once (0: one per core; each
 * thread a contiguous block).  The batched kernel is used only when
 * everything allows it: solver Euler, every simulator of the same Jit
 * compiled with JIT_BATCH, and the same static and learn tensors in every
 * workspace (as sim_new and sim_clone leave them; sim_set_tensor may change
 * them).  Otherwise each string runs sim_run on its own (on nthreads
 * threads).  Returns 1 if the batched kernel ran, 0 if not. */
int sim_run_batch(DamSim *const *s, size_t n, const DamRunOpts *opts, DamRunResult *res, char *msg,
                  size_t msglen, int nthreads);

/* Readouts of the state the last run ended at. */
const double *sim_state(const DamSim *s);
void sim_acts(DamSim *s, double *g);          /* model_state_size values */
void sim_outputs(DamSim *s, double *out);     /* sum of output sizes */
double sim_energy(DamSim *s);

/* Name the flat state component i: layer number and neuron index. */
void sim_locate(const Model *m, int64_t i, int *layer, int64_t *neuron);

#endif
