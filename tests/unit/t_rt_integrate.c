/* t_rt_integrate.c - tests of the libdam integrators and the batch runner.
 *
 * Reference problems with known answers: the linear leak tau dx/dt = b - x
 * (exact solution b + (x0 - b) exp(-t/tau)) checks the order and accuracy
 * of every solver; a 2-D nonlinear system x' = -x + tanh(2y),
 * y' = -y + tanh(2x) with the steady state x = y = s, s = tanh(2s), checks
 * the solvers against each other; x' = x checks divergence detection, and
 * small hand-made systems check NaN detection, energy bookkeeping, clamped
 * components, the fused Euler path, the trace calls and dam_parallel_for.
 */
#include "dam_integrate.h"
#include "tap.h"

#include <stdlib.h>

/* ---- the linear leak ---------------------------------------------------- */

typedef struct Leak {
	size_t n;
	const double *tau, *b;
	int energy_sign;   /* E = sign * 0.5 * sum (x - b)^2 */
} Leak;

static void leak_rhs(void *ctx, const double *x, double *f)
{
	const Leak *L = ctx;
	for (size_t i = 0; i < L->n; i++)
		f[i] = (L->b[i] - x[i]) / L->tau[i];
}

static double leak_energy(void *ctx, const double *x)
{
	const Leak *L = ctx;
	double e = 0.0;
	for (size_t i = 0; i < L->n; i++)
		e += 0.5 * (x[i] - L->b[i]) * (x[i] - L->b[i]);
	return L->energy_sign * e;
}

static const double leak_tau[2] = {1.0, 2.0}, leak_b[2] = {1.0, -2.0}, leak_x0[2] = {0.0, 3.0};

static DamSystem leak_system(Leak *L)
{
	L->n = 2;
	L->tau = leak_tau;
	L->b = leak_b;
	L->energy_sign = 1;
	DamSystem s = {.n = 2, .tau = leak_tau, .ctx = L, .rhs = leak_rhs};
	return s;
}

/* Max error against the exact solution after integrating to o->t_end. */
static double leak_error(const DamRunOpts *o, DamRunResult *r)
{
	Leak L;
	DamSystem s = leak_system(&L);
	double x[2] = {leak_x0[0], leak_x0[1]};
	dam_integrate(&s, x, o, r);
	double err = 0.0;
	for (int i = 0; i < 2; i++) {
		double exact = leak_b[i] + (leak_x0[i] - leak_b[i]) * exp(-o->t_end / leak_tau[i]);
		err = fmax(err, fabs(x[i] - exact));
	}
	return err;
}

static void test_leak_accuracy(void)
{
	DamRunOpts o;
	DamRunResult r;
	dam_run_opts_default(&o);
	o.dt = 1e-3;
	double e3 = leak_error(&o, &r);
	ok(r.status == DAM_OK && r.steps == 1000 && r.t == 1.0, "euler: 1000 steps to t = 1");
	o.dt = 1e-4;
	double e4 = leak_error(&o, &r);
	diag("euler leak error: dt 1e-3 %.3g, dt 1e-4 %.3g, ratio %.4f", e3, e4, e3 / e4);
	is_close(e3 / e4, 10.0, 0.2, "euler error is O(dt): ratio of errors at dt 1e-3 / 1e-4 within 0.2 of 10");

	o.solver = DAM_RK4;
	o.dt = 1e-2;
	double erk = leak_error(&o, &r);
	diag("rk4 leak error at dt 1e-2: %.3g", erk);
	ok(erk < 1e-10, "rk4 error < 1e-10 at dt 1e-2 (%.3g)", erk);

	o.solver = DAM_DOPRI5;
	o.dt = 0.0;
	o.rtol = 1e-8;
	o.atol = 1e-10;
	double edp = leak_error(&o, &r);
	diag("dopri5 leak error at rtol 1e-8: %.3g in %lld steps", edp, (long long)r.steps);
	ok(edp < 1e-7 && r.status == DAM_OK && r.t == 1.0, "dopri5 (rtol 1e-8) error < 1e-7 (%.3g)", edp);
	ok(r.steps > 3 && r.steps < 1000, "dopri5 takes a modest number of steps (%lld)", (long long)r.steps);

	/* dt = 10 tau_0, and the last step (5) is shortened to land on t = 35. */
	o.solver = DAM_EXPEULER;
	o.dt = 10.0;
	o.t_end = 35.0;
	double eex = leak_error(&o, &r);
	diag("expeuler leak error at dt = 10 tau: %.3g", eex);
	ok(eex < 1e-12 && r.steps == 4 && r.t == 35.0, "expeuler is exact for the leak, dt = 10 tau (%.3g)", eex);
}

/* ---- a nonlinear 2-D system ------------------------------------------- */

static void tanh2_rhs(void *ctx, const double *x, double *f)
{
	(void)ctx;
	f[0] = -x[0] + tanh(2.0 * x[1]);
	f[1] = -x[1] + tanh(2.0 * x[0]);
}

/* The same arithmetic fused: nsteps Euler steps x[i] += dt * f[i]. */
static int tanh2_fused_calls;
static void tanh2_euler_steps(void *ctx, double *x, double dt, int64_t nsteps)
{
	double f[2];
	tanh2_fused_calls++;
	for (int64_t k = 0; k < nsteps; k++) {
		tanh2_rhs(ctx, x, f);
		x[0] += dt * f[0];
		x[1] += dt * f[1];
	}
}

static const double tanh2_tau[2] = {1.0, 1.0};

static void tanh2_run(DamSolver solver, double dt, double t_end, double *x)
{
	DamSystem s = {.n = 2, .tau = tanh2_tau, .rhs = tanh2_rhs};
	DamRunOpts o;
	DamRunResult r;
	dam_run_opts_default(&o);
	o.solver = solver;
	o.dt = dt;
	o.t_end = t_end;
	o.rtol = 1e-11;
	o.atol = 1e-13;
	x[0] = 0.3;
	x[1] = 0.1;
	dam_integrate(&s, x, &o, &r);
}

static double tanh2_fixed_point(void)
{
	double s = 1.0;
	for (int k = 0; k < 50; k++) {
		double th = tanh(2.0 * s);
		s -= (s - th) / (1.0 - 2.0 * (1.0 - th * th));
	}
	return s;
}

static void test_nonlinear(void)
{
	double xd[2], xr[2], xe[2], xx[2];
	tanh2_run(DAM_DOPRI5, 0.0, 3.0, xd);
	tanh2_run(DAM_RK4, 1e-2, 3.0, xr);
	tanh2_run(DAM_EULER, 1e-4, 3.0, xe);
	tanh2_run(DAM_EXPEULER, 1e-4, 3.0, xx);
	double drk = fmax(fabs(xr[0] - xd[0]), fabs(xr[1] - xd[1]));
	double deu = fmax(fabs(xe[0] - xd[0]), fabs(xe[1] - xd[1]));
	double dex = fmax(fabs(xx[0] - xd[0]), fabs(xx[1] - xd[1]));
	diag("nonlinear t=3 vs dopri5: rk4 %.3g, euler %.3g, expeuler %.3g", drk, deu, dex);
	ok(drk < 1e-8, "rk4 (dt 1e-2) agrees with dopri5 (rtol 1e-11) within 1e-8");
	ok(deu < 1e-4, "euler (dt 1e-4) agrees with dopri5 within 1e-4");
	ok(dex < 1e-4, "expeuler (dt 1e-4) agrees with dopri5 within 1e-4");
	double s = tanh2_fixed_point();
	tanh2_run(DAM_DOPRI5, 0.0, 40.0, xd);
	diag("fixed point s = %.15f, dopri5 at t=40: %.15f %.15f", s, xd[0], xd[1]);
	ok(fabs(xd[0] - s) < 1e-9 && fabs(xd[1] - s) < 1e-9, "dopri5 settles at s = tanh(2s) within 1e-9");
}

/* ---- steady state ------------------------------------------------------ */

static void test_steady(void)
{
	static const double tau[1] = {2.0}, b[1] = {1.0};
	Leak L = {.n = 1, .tau = tau, .b = b};
	DamSystem s = {.n = 1, .tau = tau, .ctx = &L, .rhs = leak_rhs};
	DamRunOpts o;
	DamRunResult r;
	dam_run_opts_default(&o);
	o.t_end = 100.0;
	o.steady_tol = 1e-3;
	double x[1] = {0.0};
	dam_integrate(&s, x, &o, &r);
	/* |f| = |b - x0| / tau * exp(-t / tau) drops below tol at t = tau ln(|b-x0|/(tau tol)). */
	double want = 2.0 * log(1.0 / (2.0 * 1e-3));
	diag("steady: t_converged %.6f, analytic %.6f, err %.3g", r.t_converged, want, fabs(r.t_converged - want));
	ok(r.status == DAM_OK, "steady: status OK");
	is_close(r.t_converged, want, 0.01, "steady: t_converged within 0.01 of the analytic time (dt 1e-3)");
	ok(r.t == r.t_converged, "steady: the run stops at t_converged");
	is_close(r.t_converged_tau, r.t_converged / 2.0, 1e-15, "steady: t_converged_tau = t_converged / max tau");
	ok(fabs((b[0] - x[0]) / tau[0]) < 1e-3, "steady: |f| < tol at the stop");

	x[0] = 0.0;
	o.t_end = 1.0;
	o.steady_tol = 0.0;
	dam_integrate(&s, x, &o, &r);
	ok(r.t_converged == -1.0 && r.t == 1.0, "steady_tol 0: t_converged = -1, runs to t_end");

	x[0] = 0.0;
	o.solver = DAM_DOPRI5;
	o.t_end = 100.0;
	o.steady_tol = 1e-3;
	dam_integrate(&s, x, &o, &r);
	diag("dopri5 steady: t_converged %.6f", r.t_converged);
	ok(r.status == DAM_OK && r.t_converged >= want && r.t_converged < want + 2.0,
	   "dopri5 steady: t_converged just after the analytic time");
}

/* ---- failures -------------------------------------------------------- */

static void grow_rhs(void *ctx, const double *x, double *f)
{
	(void)ctx;
	f[0] = 0.0;
	f[1] = x[1];
}

static void test_diverge(void)
{
	static const double tau[2] = {1.0, 1.0};
	DamSystem s = {.n = 2, .tau = tau, .rhs = grow_rhs};
	DamRunOpts o;
	DamRunResult r;
	dam_run_opts_default(&o);
	o.t_end = 20.0;
	o.diverge_limit = 1e3;
	double x[2] = {5.0, 1.0};
	dam_integrate(&s, x, &o, &r);
	diag("diverge: t_bad %.6f, ln 1000 = %.6f", r.t_bad, log(1000.0));
	ok(r.status == DAM_DIVERGED && r.bad_index == 1, "x' = x with limit 1e3: DAM_DIVERGED on component 1");
	is_close(r.t_bad, log(1000.0), 0.01, "diverge: t_bad within 0.01 of ln 1000 (dt 1e-3)");

	o.solver = DAM_DOPRI5;
	x[0] = 5.0;
	x[1] = 1.0;
	dam_integrate(&s, x, &o, &r);
	diag("dopri5 diverge: t_bad %.6f", r.t_bad);
	ok(r.status == DAM_DIVERGED && r.t_bad >= log(1000.0) - 1e-6 && r.t_bad < log(1000.0) + 1.0,
	   "dopri5 diverge: detected at the first accepted step past ln 1000");
}

static void nan_rhs(void *ctx, const double *x, double *f)
{
	(void)ctx;
	f[0] = x[0] > 0.5 ? NAN : 1.0;
}

static void test_nan(void)
{
	static const double tau[1] = {1.0};
	DamSystem s = {.n = 1, .tau = tau, .rhs = nan_rhs};
	DamRunOpts o;
	DamRunResult r;
	dam_run_opts_default(&o);
	o.dt = 0.01;
	double x[1] = {0.0};
	dam_integrate(&s, x, &o, &r);
	diag("nan: t_bad %.6f", r.t_bad);
	ok(r.status == DAM_NAN && r.bad_index == 0, "rhs producing NaN: DAM_NAN on component 0");
	/* x reaches 0.5 at t = 0.5 (give or take round-off), f is NaN one step later. */
	is_close(r.t_bad, 0.52, 0.015, "nan: t_bad within 0.015 of 0.52");

	x[0] = 0.0;
	o.solver = DAM_DOPRI5;
	o.dt = 0.0;
	dam_integrate(&s, x, &o, &r);
	diag("dopri5 nan: status %d t_bad %.6f", (int)r.status, r.t_bad);
	ok(r.status == DAM_NAN && r.bad_index == 0, "dopri5: rhs producing NaN gives DAM_NAN");
}

/* ---- energy bookkeeping -------------------------------------------------- */

static void test_energy(void)
{
	Leak L;
	DamSystem s = leak_system(&L);
	s.energy = leak_energy;
	DamRunOpts o;
	DamRunResult r;
	dam_run_opts_default(&o);
	double x[2] = {leak_x0[0], leak_x0[1]};
	dam_integrate(&s, x, &o, &r);
	double e0 = 0.5 * (1.0 + 25.0);
	double e1 = 0.5 * (exp(-2.0) + 25.0 * exp(-1.0));
	diag("energy: start %.15g end %.15g (exact %.15g)", r.energy_start, r.energy_end, e1);
	ok(r.energy_start == e0, "energy_start is E(x0)");
	is_close(r.energy_end, e1, 1e-2, "energy_end within 1e-2 of the exact E(x(1)) (euler dt 1e-3)");
	ok(r.max_energy_rise == 0.0 && r.t_energy_rise < 0.0, "a decreasing energy reports no rise");

	L.energy_sign = -1;
	x[0] = leak_x0[0];
	x[1] = leak_x0[1];
	dam_integrate(&s, x, &o, &r);
	/* -E falls fastest at the start, so the largest rise is the first step. */
	double y0 = leak_x0[0] + 1e-3 * (leak_b[0] - leak_x0[0]) / leak_tau[0] - leak_b[0];
	double y1 = leak_x0[1] + 1e-3 * (leak_b[1] - leak_x0[1]) / leak_tau[1] - leak_b[1];
	double rise = -0.5 * (y0 * y0 + y1 * y1) + e0;
	diag("rising energy: max rise %.6g at t %.6g (want %.6g at 1e-3)", r.max_energy_rise, r.t_energy_rise, rise);
	ok(r.status == DAM_OK && r.max_energy_rise > 0.0, "an increasing energy is reported");
	is_close(r.max_energy_rise, rise, 1e-12, "largest rise is the first step's");
	ok(r.t_energy_rise == 1e-3, "largest rise at t = dt");
}

/* ---- clamped components -------------------------------------------------- */

static void clamp_rhs(void *ctx, const double *x, double *f)
{
	(void)ctx;
	f[0] = 0.0;
	f[1] = (-x[1] + tanh(3.0 * x[0])) / 0.1;
}

static void test_clamped(void)
{
	static const double tau[2] = {1.0, 0.1};
	DamSystem s = {.n = 2, .tau = tau, .rhs = clamp_rhs};
	static const DamSolver solvers[4] = {DAM_EULER, DAM_RK4, DAM_DOPRI5, DAM_EXPEULER};
	for (int k = 0; k < 4; k++) {
		DamRunOpts o;
		DamRunResult r;
		dam_run_opts_default(&o);
		o.solver = solvers[k];
		o.dt = solvers[k] == DAM_DOPRI5 ? 0.0 : 1e-2;
		o.t_end = 2.0;
		double x[2] = {0.3712345678901234, -0.5};
		dam_integrate(&s, x, &o, &r);
		ok(x[0] == 0.3712345678901234 && fabs(x[1] - tanh(3.0 * x[0])) < 1e-3,
		   "%s: a clamped component (f = 0) stays exactly fixed", dam_solver_name(solvers[k]));
	}
}

/* ---- fused Euler path and trace ---------------------------------------- */

static void test_fused(void)
{
	DamSystem s = {.n = 2, .tau = tanh2_tau, .rhs = tanh2_rhs};
	DamRunOpts o;
	DamRunResult r;
	dam_run_opts_default(&o);
	o.dt = 1e-3;
	o.t_end = 2.0005;     /* 2001 steps, the last one half long */
	o.check_every = 7;
	double a[2] = {0.3, 0.1}, b[2] = {0.3, 0.1};
	dam_integrate(&s, a, &o, &r);
	s.euler_steps = tanh2_euler_steps;
	tanh2_fused_calls = 0;
	dam_integrate(&s, b, &o, &r);
	diag("fused euler: %d calls, states %.17g %.17g vs %.17g %.17g", tanh2_fused_calls, a[0], a[1], b[0], b[1]);
	ok(tanh2_fused_calls == 287 && r.steps == 2001, "fused path: one call per chunk of 7 plus the short last step");
	ok(memcmp(a, b, sizeof a) == 0, "fused and unfused Euler give bit-identical states");
}

typedef struct TraceLog {
	int calls, ordered;
	double first, last;
} TraceLog;

static void trace_cb(void *user, double t, const double *x, double e)
{
	TraceLog *T = user;
	(void)x;
	(void)e;
	if (T->calls == 0)
		T->first = t;
	else if (!(t > T->last))
		T->ordered = 0;
	T->last = t;
	T->calls++;
}

static void test_trace(void)
{
	Leak L;
	DamSystem s = leak_system(&L);
	DamRunOpts o;
	DamRunResult r;
	TraceLog T = {.ordered = 1};
	dam_run_opts_default(&o);
	o.dt = 0.01;
	o.t_end = 1.005;      /* 101 steps: checks at 10, 20, ..., 100 and 101 */
	o.check_every = 10;
	o.trace = trace_cb;
	o.trace_user = &T;
	double x[2] = {0.0, 3.0};
	dam_integrate(&s, x, &o, &r);
	diag("trace: %d calls, first %g, last %.17g", T.calls, T.first, T.last);
	ok(T.calls == 12 && T.ordered && T.first == 0.0 && T.last == 1.005,
	   "trace at t = 0, at each of 11 checks and once at the end");
}

/* ---- step budgets ----------------------------------------------------- */

static void test_limits(void)
{
	Leak L;
	DamSystem s = leak_system(&L);
	DamRunOpts o;
	DamRunResult r;
	dam_run_opts_default(&o);
	o.max_steps = 10;
	double x[2] = {0.0, 3.0};
	dam_integrate(&s, x, &o, &r);
	ok(r.status == DAM_STEP_FAIL && r.steps == 10 && fabs(r.t - 0.01) < 1e-15,
	   "euler with max_steps 10 of 1000: DAM_STEP_FAIL at t = 0.01 (t %.17g)", r.t);
	o.solver = DAM_DOPRI5;
	o.rtol = 1e-12;
	o.atol = 1e-14;
	o.max_steps = 3;
	x[0] = 0.0;
	x[1] = 3.0;
	dam_integrate(&s, x, &o, &r);
	ok(r.status == DAM_STEP_FAIL && r.t < 1.0, "dopri5 with max_steps 3 at rtol 1e-12: DAM_STEP_FAIL before t_end");
}

/* ---- names and the batch runner ---------------------------------------- */

static void test_names(void)
{
	DamSolver s = DAM_EULER;
	int good = dam_solver_parse("adaptive", &s) == 0 && s == DAM_DOPRI5 &&
	           dam_solver_parse("exp-euler", &s) == 0 && s == DAM_EXPEULER &&
	           dam_solver_parse("rk4", &s) == 0 && s == DAM_RK4 &&
	           dam_solver_parse("euler", &s) == 0 && s == DAM_EULER &&
	           dam_solver_parse("rk5", &s) == -1;
	ok(good, "dam_solver_parse accepts the names and aliases, rejects 'rk5'");
	is_str(dam_solver_name(DAM_DOPRI5), "dopri5", "dam_solver_name(DAM_DOPRI5)");
	is_str(dam_solver_name(DAM_EXPEULER), "expeuler", "dam_solver_name(DAM_EXPEULER)");
}

static void square_job(int64_t i, void *user)
{
	int64_t *out = user;
	out[i] = i * i;
}

static void test_parallel(void)
{
	enum { N = 1000 };
	static int64_t seq[N], par[N];
	for (int64_t i = 0; i < N; i++)
		seq[i] = i * i;
	static const int threads[3] = {4, 0, 1};
	for (int k = 0; k < 3; k++) {
		for (int i = 0; i < N; i++)
			par[i] = -1;
		dam_parallel_for(N, threads[k], square_job, par);
		ok(memcmp(seq, par, sizeof seq) == 0, "parallel_for over 1000 jobs (nthreads %d) equals sequential", threads[k]);
	}
}

int main(void)
{
	plan(44);
	test_leak_accuracy();
	test_nonlinear();
	test_steady();
	test_diverge();
	test_nan();
	test_energy();
	test_clamped();
	test_fused();
	test_trace();
	test_limits();
	test_names();
	test_parallel();
	return done_testing();
}
