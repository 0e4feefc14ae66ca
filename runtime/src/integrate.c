/* integrate.c - the ODE integrators of the libdam runtime (dam_integrate.h).
 *
 * dam_integrate() advances a DamSystem from t = 0 to t_end with one of four
 * solvers: forward Euler (optionally through the backend's fused
 * euler_steps fast path), classical RK4, adaptive Dormand-Prince 5(4) with
 * FSAL, and exponential Euler on the linear leak.  The fixed-step solvers
 * share one driver loop that takes ceil(t_end/dt) steps, the last one
 * shortened to land on t_end, and runs the checks every check_every steps;
 * DOPRI5 runs them after every accepted step.  A check looks for non-finite
 * and diverging components and a non-finite energy, records energy rises
 * and detects steady state, then calls the trace callback.  Nothing here
 * knows about models: the right-hand side, the energy and the fast path are
 * callbacks.
 */
#include "dam_integrate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define INTEG_DEFAULT_DIVERGE 1e6
#define INTEG_DEFAULT_ENERGY_TOL 1e-9
#define INTEG_DEFAULT_MAX_ADAPTIVE 10000000

/* What a check decided: keep going, stop normally, or stop on a failure. */
typedef enum { INTEG_GO, INTEG_STEADY, INTEG_BAD } IntegVerdict;

typedef struct Integ {
	const DamSystem *sys;
	const DamRunOpts *o;
	DamRunResult *res;
	size_t n;
	double diverge_limit, energy_tol, max_tau;
	double *fx;          /* f(x) at the current state when fx_valid */
	int fx_valid;
	double *work;        /* solver scratch: 8 vectors of n */
	double e_prev;       /* energy at the previous check */
	double t_traced;     /* time of the last trace call (-1: none) */
} Integ;

/* ---- small vector helpers ------------------------------------------------ */

static void integ_rhs(Integ *I, const double *x, double *f)
{
	I->sys->rhs(I->sys->ctx, x, f);
	I->res->rhs_evals++;
}

/* f(x) for the current state, evaluated at most once per state. */
static const double *integ_fx(Integ *I, const double *x)
{
	if (!I->fx_valid) {
		integ_rhs(I, x, I->fx);
		I->fx_valid = 1;
	}
	return I->fx;
}

static double integ_max_abs(const double *v, size_t n)
{
	double m = 0.0;
	for (size_t i = 0; i < n; i++)
		if (fabs(v[i]) > m)
			m = fabs(v[i]);
	return m;
}

static double integ_energy(const Integ *I, const double *x)
{
	return I->sys->energy ? I->sys->energy(I->sys->ctx, x) : NAN;
}

/* ---- checks ------------------------------------------------------------- */

/* Non-finite or diverging components; records the first offender. */
static IntegVerdict integ_check_state(Integ *I, const double *x, double t)
{
	for (size_t i = 0; i < I->n; i++) {
		DamStatus st = DAM_OK;
		if (!isfinite(x[i]))
			st = DAM_NAN;
		else if (fabs(x[i]) > I->diverge_limit)
			st = DAM_DIVERGED;
		if (st != DAM_OK) {
			I->res->status = st;
			I->res->bad_index = (int64_t)i;
			I->res->t_bad = t;
			return INTEG_BAD;
		}
	}
	return INTEG_GO;
}

/* Records the rise since the previous check when it exceeds round-off. */
static void integ_check_energy(Integ *I, double e, double t)
{
	DamRunResult *r = I->res;
	if (t == 0.0 && I->t_traced < 0.0) {
		r->energy_start = e;
	} else {
		double rise = e - I->e_prev;
		double allowed = I->energy_tol * fmax(1.0, fabs(I->e_prev));
		if (rise > allowed && rise > r->max_energy_rise) {
			r->max_energy_rise = rise;
			r->t_energy_rise = t;
		}
	}
	I->e_prev = e;
}

static IntegVerdict integ_check_steady(Integ *I, const double *x, double t)
{
	if (I->o->steady_tol <= 0.0)
		return INTEG_GO;
	if (integ_max_abs(integ_fx(I, x), I->n) >= I->o->steady_tol)
		return INTEG_GO;
	I->res->t_converged = t;
	I->res->t_converged_tau = t / I->max_tau;
	return INTEG_STEADY;
}

static void integ_trace(Integ *I, double t, const double *x, double e)
{
	if (I->o->trace && t != I->t_traced)
		I->o->trace(I->o->trace_user, t, x, e);
	I->t_traced = t;
}

/* A non-finite energy at a finite state (say E = inf - inf for inputs near
 * the overflow range) is a NAN run too, with bad_index -1: a result never
 * holds a non-finite number under an OK status. */
static IntegVerdict integ_check_energy_finite(Integ *I, double e, double t)
{
	if (isfinite(e))
		return INTEG_GO;
	I->res->status = DAM_NAN;
	I->res->bad_index = -1;
	I->res->t_bad = t;
	return INTEG_BAD;
}

/* All checks at time t, then the trace. */
static IntegVerdict integ_check(Integ *I, const double *x, double t)
{
	IntegVerdict v = integ_check_state(I, x, t);
	double e = integ_energy(I, x);
	if (v == INTEG_GO && I->sys->energy)
		v = integ_check_energy_finite(I, e, t);
	if (v == INTEG_GO && I->sys->energy)
		integ_check_energy(I, e, t);
	if (v == INTEG_GO)
		v = integ_check_steady(I, x, t);
	integ_trace(I, t, x, e);
	I->res->energy_end = e;
	I->res->t = t;
	return v;
}

/* ---- fixed-step solvers --------------------------------------------------- */

static void integ_euler_step(Integ *I, double *x, double h)
{
	const double *f = integ_fx(I, x);
	for (size_t i = 0; i < I->n; i++)
		x[i] += h * f[i];
}

static void integ_rk4_step(Integ *I, double *x, double h)
{
	size_t n = I->n;
	double *k2 = I->work, *k3 = k2 + n, *k4 = k3 + n, *y = k4 + n;
	const double *k1 = integ_fx(I, x);
	for (size_t i = 0; i < n; i++)
		y[i] = x[i] + 0.5 * h * k1[i];
	integ_rhs(I, y, k2);
	for (size_t i = 0; i < n; i++)
		y[i] = x[i] + 0.5 * h * k2[i];
	integ_rhs(I, y, k3);
	for (size_t i = 0; i < n; i++)
		y[i] = x[i] + h * k3[i];
	integ_rhs(I, y, k4);
	for (size_t i = 0; i < n; i++)
		x[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
}

/* Factors (1 - exp(-h/tau_i)) * tau_i, computed once per distinct h. */
static void integ_expeuler_factors(const Integ *I, double h, double *phi)
{
	for (size_t i = 0; i < I->n; i++)
		phi[i] = -expm1(-h / I->sys->tau[i]) * I->sys->tau[i];
}

static void integ_expeuler_step(Integ *I, double *x, const double *phi)
{
	const double *f = integ_fx(I, x);
	for (size_t i = 0; i < I->n; i++)
		x[i] += phi[i] * f[i];
}

/* One fixed step of length h (h_is_dt: the full step, whose exp-Euler
 * factors are precomputed in work[0..n); the short last step uses work[n..2n)). */
static void integ_fixed_step(Integ *I, double *x, double h, int h_is_dt)
{
	switch (I->o->solver) {
	case DAM_RK4:
		integ_rk4_step(I, x, h);
		break;
	case DAM_EXPEULER:
		integ_expeuler_step(I, x, I->work + (h_is_dt ? 0 : I->n));
		break;
	default:
		integ_euler_step(I, x, h);
		break;
	}
	I->fx_valid = 0;
}

/* Steps k0+1 .. k1 (all full steps of dt except possibly the last one of
 * the run, of length h_last). */
static void integ_fixed_chunk(Integ *I, double *x, int64_t k0, int64_t k1, int64_t nsteps,
                              double dt, double h_last)
{
	const DamSystem *s = I->sys;
	int64_t full = k1 < nsteps || h_last == dt ? k1 - k0 : k1 - k0 - 1;
	if (I->o->solver == DAM_EULER && s->euler_steps) {
		if (full > 0)
			s->euler_steps(s->ctx, x, dt, full);
		if (full < k1 - k0)
			s->euler_steps(s->ctx, x, h_last, 1);
		I->res->rhs_evals += k1 - k0;
		I->fx_valid = 0;
		return;
	}
	for (int64_t k = 0; k < full; k++)
		integ_fixed_step(I, x, dt, 1);
	if (full < k1 - k0)
		integ_fixed_step(I, x, h_last, h_last == dt);
}

static DamStatus integ_fixed(Integ *I, double *x)
{
	const DamRunOpts *o = I->o;
	double dt = o->dt;
	if (!(dt > 0.0)) {
		I->res->status = DAM_STEP_FAIL;
		return DAM_STEP_FAIL;
	}
	int64_t nsteps = (int64_t)ceil(o->t_end / dt - 1e-9);
	double h_last = o->t_end - (double)(nsteps - 1) * dt;
	if (fabs(h_last - dt) <= 1e-9 * dt)
		h_last = dt;
	int64_t limit = o->max_steps > 0 && o->max_steps < nsteps ? o->max_steps : nsteps;
	int64_t every = o->check_every > 0 ? o->check_every : 1;
	if (o->solver == DAM_EXPEULER) {
		integ_expeuler_factors(I, dt, I->work);
		integ_expeuler_factors(I, h_last, I->work + I->n);
	}
	for (int64_t k = 0; k < limit;) {
		int64_t k1 = k + every < limit ? k + every : limit;
		integ_fixed_chunk(I, x, k, k1, nsteps, dt, h_last);
		k = k1;
		I->res->steps = k;
		double t = k == nsteps ? o->t_end : (double)k * dt;
		IntegVerdict v = integ_check(I, x, t);
		if (v != INTEG_GO)
			return I->res->status;
	}
	if (limit < nsteps)
		I->res->status = DAM_STEP_FAIL;
	return I->res->status;
}

/* ---- Dormand-Prince 5(4) ----------------------------------------------- */

/* Butcher tableau (Dormand & Prince 1980); the 5th-order weights are row 7. */
static const double dp_a[7][6] = {
	{0},
	{1.0 / 5},
	{3.0 / 40, 9.0 / 40},
	{44.0 / 45, -56.0 / 15, 32.0 / 9},
	{19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
	{9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
	{35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84},
};
/* Difference between the 5th- and the embedded 4th-order weights. */
static const double dp_e[7] = {
	71.0 / 57600, 0, -71.0 / 16695, 71.0 / 1920, -17253.0 / 339200, 22.0 / 525, -1.0 / 40,
};

/* Root-mean-square of v_i / (atol + rtol * max(|a_i|, |b_i|)). */
static double dp_norm(const Integ *I, const double *v, const double *a, const double *b)
{
	double sum = 0.0;
	for (size_t i = 0; i < I->n; i++) {
		double sc = I->o->atol + I->o->rtol * fmax(fabs(a[i]), fabs(b[i]));
		double q = v[i] / sc;
		sum += q * q;
	}
	return I->n ? sqrt(sum / (double)I->n) : 0.0;
}

/* Initial step (Hairer, Norsett & Wanner, Solving ODEs I, II.4). */
static double dp_initial_step(Integ *I, const double *x, const double *f0)
{
	size_t n = I->n;
	double *x1 = I->work + 6 * n, *f1 = x1 + n, *d = f1 + n;   /* k[6], xn, err */
	double d0 = dp_norm(I, x, x, x), d1 = dp_norm(I, f0, x, x);
	double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
	for (size_t i = 0; i < n; i++)
		x1[i] = x[i] + h0 * f0[i];
	integ_rhs(I, x1, f1);
	for (size_t i = 0; i < n; i++)
		d[i] = (f1[i] - f0[i]) / h0;
	double d2 = dp_norm(I, d, x, x);
	double dm = fmax(d1, d2);
	double h1 = dm <= 1e-15 ? fmax(1e-6, h0 * 1e-3) : pow(0.01 / dm, 0.2);
	return fmin(100.0 * h0, h1);
}

/* One trial step of size h from x with k[0] = f(x): fills xn, k[1..6]
 * (k[6] = f(xn), the FSAL stage) and returns the error norm. */
static double dp_try(Integ *I, const double *x, double h, double **k, double *xn, double *err)
{
	size_t n = I->n;
	for (int s = 1; s < 7; s++) {
		double *y = s == 6 ? xn : err;
		for (size_t i = 0; i < n; i++) {
			double acc = 0.0;
			for (int j = 0; j < s; j++)
				acc += dp_a[s][j] * k[j][i];
			y[i] = x[i] + h * acc;
		}
		integ_rhs(I, y, k[s]);
	}
	for (size_t i = 0; i < n; i++) {
		double acc = 0.0;
		for (int j = 0; j < 7; j++)
			acc += dp_e[j] * k[j][i];
		err[i] = h * acc;
	}
	return dp_norm(I, err, x, xn);
}

static double dp_factor(double errn, int after_reject)
{
	double fac = errn > 0.0 ? 0.9 * pow(errn, -0.2) : 5.0;
	fac = fmin(5.0, fmax(0.2, fac));
	return after_reject ? fmin(1.0, fac) : fac;
}

/* A non-finite f(x) at an accepted state: no step size can help. */
static int dp_nonfinite(Integ *I, const double *f, double t)
{
	for (size_t i = 0; i < I->n; i++) {
		if (!isfinite(f[i])) {
			I->res->status = DAM_NAN;
			I->res->bad_index = (int64_t)i;
			I->res->t_bad = t;
			return 1;
		}
	}
	return 0;
}

/* The step size underflowed or the step budget ran out.  When the last
 * trial produced non-finite values (err), that is what stopped the run. */
static DamStatus dp_fail(Integ *I, const double *err, double t)
{
	if (err && dp_nonfinite(I, err, t))
		return DAM_NAN;
	I->res->status = DAM_STEP_FAIL;
	return DAM_STEP_FAIL;
}

static DamStatus integ_dopri5(Integ *I, double *x)
{
	size_t n = I->n;
	double *k[7], *xn = I->work + 7 * n, *err = I->work + 8 * n;
	for (int s = 0; s < 7; s++)
		k[s] = I->work + (size_t)s * n;
	const double *f0 = integ_fx(I, x);
	memcpy(k[0], f0, n * sizeof *x);
	double t = 0.0, t_end = I->o->t_end;
	double h = I->o->dt > 0.0 ? I->o->dt : dp_initial_step(I, x, k[0]);
	int64_t max_steps = I->o->max_steps > 0 ? I->o->max_steps : INTEG_DEFAULT_MAX_ADAPTIVE;
	int64_t tries = 0;
	int rejected = 0, rejected_nan = 0;
	while (t < t_end) {
		if (tries++ >= max_steps || !(h > 1e-14 * fmax(1.0, fabs(t))))
			return dp_fail(I, rejected_nan ? err : NULL, t);
		int last = h >= t_end - t;
		double hs = last ? t_end - t : h;
		double errn = dp_try(I, x, hs, k, xn, err);
		if (isnan(errn) && dp_nonfinite(I, k[0], t))
			return DAM_NAN;
		rejected_nan = isnan(errn);
		if (!(errn <= 1.0)) {
			h = hs * (isfinite(errn) ? dp_factor(errn, 1) : 0.2);
			rejected = 1;
			continue;
		}
		memcpy(x, xn, n * sizeof *x);
		memcpy(k[0], k[6], n * sizeof *x);
		memcpy(I->fx, k[6], n * sizeof *x);
		I->fx_valid = 1;
		t = last ? t_end : t + hs;
		I->res->steps++;
		if (integ_check(I, x, t) != INTEG_GO)
			return I->res->status;
		h = hs * dp_factor(errn, rejected);
		rejected = 0;
	}
	return I->res->status;
}

/* ---- driver ----------------------------------------------------------- */

void dam_run_opts_default(DamRunOpts *o)
{
	memset(o, 0, sizeof *o);
	o->solver = DAM_EULER;
	o->dt = 1e-3;
	o->t_end = 1.0;
	o->rtol = 1e-6;
	o->atol = 1e-9;
	o->diverge_limit = INTEG_DEFAULT_DIVERGE;
	o->check_every = 1;
	o->energy_tol = INTEG_DEFAULT_ENERGY_TOL;
}

static void integ_result_init(DamRunResult *r)
{
	memset(r, 0, sizeof *r);
	r->status = DAM_OK;
	r->t_converged = -1.0;
	r->t_converged_tau = -1.0;
	r->energy_start = NAN;
	r->energy_end = NAN;
	r->t_energy_rise = -1.0;
	r->bad_index = -1;
	r->t_bad = -1.0;
}

static void integ_setup(Integ *I, const DamSystem *sys, const DamRunOpts *o, DamRunResult *res)
{
	memset(I, 0, sizeof *I);
	I->sys = sys;
	I->o = o;
	I->res = res;
	I->n = sys->n;
	I->diverge_limit = o->diverge_limit > 0.0 ? o->diverge_limit : INTEG_DEFAULT_DIVERGE;
	I->energy_tol = o->energy_tol > 0.0 ? o->energy_tol : INTEG_DEFAULT_ENERGY_TOL;
	I->max_tau = 0.0;
	for (size_t i = 0; i < sys->n; i++)
		I->max_tau = fmax(I->max_tau, sys->tau[i]);
	if (!(I->max_tau > 0.0))
		I->max_tau = 1.0;
	I->t_traced = -1.0;
}

DamStatus dam_integrate(const DamSystem *sys, double *x, const DamRunOpts *o, DamRunResult *res)
{
	Integ I;
	integ_result_init(res);
	integ_setup(&I, sys, o, res);
	size_t nvec = sys->n ? sys->n : 1;
	I.fx = malloc(nvec * sizeof(double));
	I.work = malloc(9 * nvec * sizeof(double));
	if (!I.fx || !I.work) {
		free(I.fx);
		free(I.work);
		res->status = DAM_STEP_FAIL;
		return DAM_STEP_FAIL;
	}
	if (integ_check(&I, x, 0.0) == INTEG_GO && o->t_end > 0.0) {
		if (o->solver == DAM_DOPRI5)
			integ_dopri5(&I, x);
		else
			integ_fixed(&I, x);
	}
	if (I.t_traced != res->t) {
		double e = integ_energy(&I, x);
		integ_trace(&I, res->t, x, e);
		res->energy_end = e;
	}
	free(I.fx);
	free(I.work);
	return res->status;
}

/* ---- forward Euler in pieces (dam_euler_begin) ---------------------------- */

struct DamEulerRun {
	Integ I;
	double *x;
	double dt, h_last;
	int64_t nsteps, limit, every, k, k1;
	int done;
};

DamEulerRun *dam_euler_begin(const DamSystem *sys, double *x, const DamRunOpts *o, DamRunResult *res)
{
	DamEulerRun *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	integ_result_init(res);
	integ_setup(&r->I, sys, o, res);
	size_t nvec = sys->n ? sys->n : 1;
	r->I.fx = malloc(nvec * sizeof(double));
	r->I.work = malloc(9 * nvec * sizeof(double));
	r->x = x;
	if (!r->I.fx || !r->I.work) {
		free(r->I.fx);
		free(r->I.work);
		free(r);
		res->status = DAM_STEP_FAIL;
		return NULL;
	}
	r->done = integ_check(&r->I, x, 0.0) != INTEG_GO || !(o->t_end > 0.0);
	if (!r->done && !(o->dt > 0.0)) {             /* as integ_fixed */
		res->status = DAM_STEP_FAIL;
		r->done = 1;
	}
	if (r->done)
		return r;
	r->dt = o->dt;
	r->nsteps = (int64_t)ceil(o->t_end / r->dt - 1e-9);
	r->h_last = o->t_end - (double)(r->nsteps - 1) * r->dt;
	if (fabs(r->h_last - r->dt) <= 1e-9 * r->dt)
		r->h_last = r->dt;
	r->limit = o->max_steps > 0 && o->max_steps < r->nsteps ? o->max_steps : r->nsteps;
	r->every = o->check_every > 0 ? o->check_every : 1;
	return r;
}

int dam_euler_chunk(DamEulerRun *r, int64_t *full, double *last)
{
	if (r->done)
		return 0;
	if (r->k >= r->limit) {
		if (r->limit < r->nsteps)
			r->I.res->status = DAM_STEP_FAIL;
		r->done = 1;
		return 0;
	}
	int64_t k0 = r->k;
	r->k1 = k0 + r->every < r->limit ? k0 + r->every : r->limit;
	*full = r->k1 < r->nsteps || r->h_last == r->dt ? r->k1 - k0 : r->k1 - k0 - 1;
	*last = *full < r->k1 - k0 ? r->h_last : 0.0;
	return 1;
}

void dam_euler_after(DamEulerRun *r)
{
	Integ *I = &r->I;
	I->res->rhs_evals += r->k1 - r->k;
	I->fx_valid = 0;
	r->k = r->k1;
	I->res->steps = r->k;
	double t = r->k == r->nsteps ? I->o->t_end : (double)r->k * r->dt;
	if (integ_check(I, r->x, t) != INTEG_GO)
		r->done = 1;
}

DamStatus dam_euler_end(DamEulerRun *r)
{
	Integ *I = &r->I;
	DamRunResult *res = I->res;
	if (I->t_traced != res->t) {
		double e = integ_energy(I, r->x);
		integ_trace(I, res->t, r->x, e);
		res->energy_end = e;
	}
	free(I->fx);
	free(I->work);
	free(r);
	return res->status;
}

/* ---- solver names ------------------------------------------------------- */

static const struct {
	const char *name;
	DamSolver solver;
} integ_names[] = {
	{"euler", DAM_EULER},      {"rk4", DAM_RK4},           {"dopri5", DAM_DOPRI5},
	{"expeuler", DAM_EXPEULER}, {"adaptive", DAM_DOPRI5}, {"exp-euler", DAM_EXPEULER},
};

const char *dam_solver_name(DamSolver s)
{
	for (size_t i = 0; i < sizeof integ_names / sizeof integ_names[0]; i++)
		if (integ_names[i].solver == s)
			return integ_names[i].name;
	return "unknown";
}

int dam_solver_parse(const char *name, DamSolver *out)
{
	for (size_t i = 0; i < sizeof integ_names / sizeof integ_names[0]; i++) {
		if (strcmp(integ_names[i].name, name) == 0) {
			*out = integ_names[i].solver;
			return 0;
		}
	}
	return -1;
}
