/* grad.h - gradients of a forward-Euler run by the discrete adjoint.
 *
 * A DamGrad owns a gradient module (jit_grad.h) and one workspace.  The run
 * is x_0 = init(theta, inputs), x_{n+1} = x_n + dt * M f(x_n, theta) (M: 0 on
 * the clamped neurons), n < N, and the loss L = sum_i (y_i(x_N) - target_i)^2
 * on one declared output y.  grad_run returns L and dL/dtheta for every
 * parameter tensor, computed backwards:
 *
 *   lam_N = dL/dx_N,  g = dL/dtheta (direct, through the output)
 *   lam_n = lam_{n+1} + dt * J_x(x_n)^T M lam_{n+1},  g += dt * J_theta(x_n)^T M lam_{n+1}
 *   g += (d x_0 / d theta)^T lam_0     (init and clamp values that read a parameter)
 *
 * with every vector-Jacobian product a compiled kernel.  The trajectory is
 * kept by checkpointing: the state every K steps, and one segment of K states
 * recomputed forward (with the same Euler kernel, so bit for bit) while going
 * back through it: memory O(N/K + K) states, N extra Euler steps.
 */
#ifndef DAM_GRAD_H
#define DAM_GRAD_H

#include <stddef.h>
#include <stdint.h>

#include "jit_grad.h"
#include "model.h"

typedef struct DamGrad DamGrad;

/* Compiles the gradient module of m (which it extends: jit_grad.h); NULL
 * with a message in err on failure.  flags: JIT_GRAD_CONSTS. */
DamGrad *grad_new(Model *m, unsigned flags, char *err, size_t errlen);
void grad_free(DamGrad *g);

const JitGradKernels *grad_kernels(const DamGrad *g);
/* The parameters: number, tensor and offset in the flat gradient. */
int grad_nparams(const DamGrad *g);
TensorId grad_param(const DamGrad *g, int i);
size_t grad_param_offset(const DamGrad *g, int i);
size_t grad_size(const DamGrad *g);          /* doubles of the flat gradient */

/* Input `input` (model->inputs order) and parameter values, as sim_set_input
 * / sim_set_tensor (no checks of token values here).  -1 on a bad index. */
int grad_set_input(DamGrad *g, int input, const double *v, size_t n);
int grad_set_tensor(DamGrad *g, TensorId t, const double *v);

/* A loss on the state x_N a run ends at: a data term on one output plus an
 * optional settling penalty (workshop App. C: "a penalty to v-dot at time
 * T"), settle * sum over the penalised layers' free neurons of (dx/dt)^2. */
typedef enum { GRAD_LOSS_SQUARED, GRAD_LOSS_XENT } GradLossKind;
typedef struct GradLoss {
	int output;                        /* model->outputs index */
	GradLossKind kind;                 /* squared: sum_i (y_i - target_i)^2;
	                                    * xent: -log softmax(y)_c, c = target[0] */
	const double *target;
	double settle;                     /* weight of the penalty; 0: none */
	const unsigned char *settle_layers;/* per layer, 1 penalised; NULL: all layers */
	const int64_t *readout;            /* steps (ascending, in [1, nsteps)) at which the data term
	                                    * is read as well as at nsteps: the data term is the
	                                    * mean over the nreadout + 1 readouts */
	int nreadout;
} GradLoss;

/* As grad_loss / grad_run with a GradLoss; parts (NULL or 2 doubles) gets
 * the data term and the penalty. */
double grad_loss_ex(DamGrad *g, double dt, int64_t nsteps, const GradLoss *L, double *parts);
double grad_run_ex(DamGrad *g, double dt, int64_t nsteps, int64_t k, const GradLoss *L, double *grad,
                   double *parts);
/* The outputs at the state the last run ended at (noutput doubles, as sim_outputs). */
void grad_outputs(DamGrad *g, double *out);
size_t grad_output_size(const DamGrad *g);
/* The values of tensor t as the module's kernels see them after setup (a
 * constant derived from learned tensors is recomputed from their current
 * values); NULL when t has no place in the workspace.  Valid until the next call. */
const double *grad_eval_tensor(DamGrad *g, TensorId t);

/* The loss only (forward run).  output: model->outputs index; target: its n values. */
double grad_loss(DamGrad *g, double dt, int64_t nsteps, int output, const double *target);
/* The loss and, into grad (grad_size doubles), dL/dtheta; checkpoints every
 * k steps (k <= 0: about sqrt(nsteps)). */
double grad_run(DamGrad *g, double dt, int64_t nsteps, int64_t k, int output, const double *target,
                double *grad);
/* The state x_N the last run ended at. */
const double *grad_state(const DamGrad *g);

#endif
