/* dam_integrate.h - ODE integrators for energy-based circuits (libdam runtime).
 *
 * A DamSystem is a state vector x of n components with per-component time
 * constants tau[i] and a right-hand side dx/dt = f(x) supplied by a backend
 * (the JIT).  Clamped components have f = 0 (the rhs guarantees it) and are
 * never moved.  The integrators here know nothing about models.
 *
 * Solvers
 *   DAM_EULER     forward Euler, fixed dt (the papers' method)
 *   DAM_RK4       classical Runge-Kutta 4, fixed dt
 *   DAM_DOPRI5    Dormand-Prince 5(4), adaptive, rtol/atol, FSAL
 *   DAM_EXPEULER  exponential Euler on the linear leak: with F = tau*f + x,
 *                 x' = x + (1 - exp(-dt/tau)) * tau * f(x)   (exact for the leak;
 *                 stable for dt >> tau_h, for stiff tau_h << tau_v)
 */
#ifndef DAM_INTEGRATE_H
#define DAM_INTEGRATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct DamSystem {
	size_t n;
	const double *tau;                 /* n entries, > 0 */
	void *ctx;                         /* passed to the callbacks */
	void (*rhs)(void *ctx, const double *x, double *dxdt);
	double (*energy)(void *ctx, const double *x);      /* may be NULL */
	/* Optional fused fast path: nsteps forward-Euler steps in place. */
	void (*euler_steps)(void *ctx, double *x, double dt, int64_t nsteps);
} DamSystem;

typedef enum { DAM_EULER, DAM_RK4, DAM_DOPRI5, DAM_EXPEULER } DamSolver;

typedef enum {
	DAM_OK = 0,        /* reached t_end or steady state */
	DAM_DIVERGED = 1,  /* some |x_i| exceeded diverge_limit */
	DAM_NAN = 2,       /* a non-finite value appeared (in the state, or in the energy: bad_index -1) */
	DAM_STEP_FAIL = 3, /* adaptive step size underflow / too many steps */
} DamStatus;

typedef void (*DamTraceFn)(void *user, double t, const double *x, double energy);

typedef struct DamRunOpts {
	DamSolver solver;
	double dt;             /* fixed step; initial step for DOPRI5 (0: automatic) */
	double t_end;
	double rtol, atol;     /* DOPRI5 */
	double steady_tol;     /* > 0: stop once max_i |dx_i/dt| < steady_tol (checked every check_every steps) */
	double diverge_limit;  /* |x_i| above this is divergence (default 1e6 when 0) */
	int64_t max_steps;     /* 0: unlimited for fixed-step, 10^7 for adaptive */
	int64_t check_every;   /* fixed-step: steps between energy/steady/divergence checks (0: 1) */
	double energy_tol;     /* relative energy increase tolerated as round-off (default 1e-9) */
	DamTraceFn trace;      /* called at t = 0, at every check and at the end; may be NULL */
	void *trace_user;
} DamRunOpts;

typedef struct DamRunResult {
	DamStatus status;
	double t;              /* time reached */
	double t_converged;    /* first time steady; < 0 if never */
	double t_converged_tau;/* t_converged / max tau */
	int64_t steps;         /* accepted steps */
	int64_t rhs_evals;
	double energy_start, energy_end;
	double max_energy_rise;/* largest increase of E between checks (0 if none) */
	double t_energy_rise;  /* when the largest rise happened */
	int64_t bad_index;     /* DIVERGED/NAN: component that went bad, else -1 (NAN: the energy) */
	double t_bad;          /* when */
} DamRunResult;

void dam_run_opts_default(DamRunOpts *o);   /* Euler, dt 1e-3, t_end 1, rtol 1e-6, atol 1e-9 */
/* Integrate x in place from t = 0.  Returns res->status. */
DamStatus dam_integrate(const DamSystem *sys, double *x, const DamRunOpts *o, DamRunResult *res);
const char *dam_solver_name(DamSolver s);
int dam_solver_parse(const char *name, DamSolver *out);   /* 0 ok, -1 unknown */

/* Forward Euler in pieces, for a host that advances several systems in
 * lockstep with its own batched kernel (sim_run_batch).  dam_euler_begin()
 * does what dam_integrate() does up to the first step (the checks at t = 0);
 * then, while dam_euler_chunk() returns 1, the host takes *full steps of
 * o->dt and, if *last > 0, one more step of *last on x, and calls
 * dam_euler_after() (the checks); dam_euler_end() finishes res and frees the
 * run.  res then equals what dam_integrate() with solver Euler and the
 * euler_steps fast path gives, bit for bit.  NULL if out of memory. */
typedef struct DamEulerRun DamEulerRun;
DamEulerRun *dam_euler_begin(const DamSystem *sys, double *x, const DamRunOpts *o, DamRunResult *res);
int dam_euler_chunk(DamEulerRun *r, int64_t *full, double *last);
void dam_euler_after(DamEulerRun *r);
DamStatus dam_euler_end(DamEulerRun *r);

/* Batch: run job(i, user) for i in 0..count-1 on nthreads threads (0: number
 * of cores).  Jobs must be independent; each job writes only its own results,
 * so results are identical to a sequential run. */
void dam_parallel_for(int64_t count, int nthreads, void (*job)(int64_t i, void *user), void *user);

#endif
