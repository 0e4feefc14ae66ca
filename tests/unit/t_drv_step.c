/* t_drv_step.c - sim_check_step: the leak-limited bound of the fixed steps.
 *
 * On XOR (tau_v = 1, tau_h = 0.1; v partly clamped, h free) the bound is
 * set by h: forward Euler is refused from dt = 2 tau_h = 0.2 on, RK4 from
 * 2.785293563405282 tau_h on (the real root of z^3 - 4z^2 + 12z - 24: where
 * |1 - z + z^2/2 - z^3/6 + z^4/24| reaches 1); just below, both run.
 * Exponential Euler and dopri5 are never refused; the step checked is
 * min(dt, t_end).  The message text is checked exactly.  Run from the
 * repository root.
 */
#include <math.h>
#include <string.h>

#include "frontend.h"
#include "sim.h"
#include "tap.h"

static int check(const Model *m, DamSolver solver, double dt, double t_end, SimStepLimit *lim,
                 char *msg, size_t len)
{
	DamRunOpts o;
	dam_run_opts_default(&o);
	o.solver = solver;
	o.dt = dt;
	o.t_end = t_end;
	return sim_check_step(m, &o, lim, msg, len);
}

int main(void)
{
	plan(11);
	Arena a;
	Diags d;
	arena_init(&a);
	diags_init(&d, &a);
	FrontendOptions fo = { NULL, 0, NULL, NULL, 0 };
	Model *m = dam_frontend_compile("examples/xor.dam", &fo, &d, &a);
	if (!m) {
		diag_render(&d, stdout);
		skip(11, "xor.dam does not compile");
		return done_testing();
	}
	SimStepLimit lim;
	char msg[256];
	const double z4 = 2.785293563405282;
	ok(check(m, DAM_EULER, 0.19999, 5, &lim, msg, sizeof msg) == 0 && msg[0] == '\0',
	   "euler dt 0.19999 < 2 tau_h: accepted");
	int r = check(m, DAM_EULER, 0.2, 5, &lim, msg, sizeof msg);
	ok(r == -1 && lim.layer == 1 && lim.tau == 0.1 && lim.dt_max == 0.2,
	   "euler dt 0.2 = 2 tau_h: refused on layer %d, tau %g, bound %.17g", lim.layer, lim.tau,
	   lim.dt_max);
	check(m, DAM_EULER, 0.5, 5, &lim, msg, sizeof msg);
	is_str(msg, "solver 'euler' is unstable with dt = 0.5 on layer 'h' (tau = 0.1): its leak is "
	       "stable only for dt < 0.2 (2 tau)", "euler message");
	ok(check(m, DAM_RK4, z4 * 0.1 * (1 - 1e-9), 5, &lim, msg, sizeof msg) == 0,
	   "rk4 just below 2.7853 tau_h: accepted");
	ok(check(m, DAM_RK4, z4 * 0.1, 5, &lim, msg, sizeof msg) == -1 &&
	   is_close_rel(lim.dt_max, z4 * 0.1, 1e-15, "rk4 bound 2.7853 tau_h"),
	   "rk4 at the bound: refused");
	check(m, DAM_RK4, 0.3, 5, &lim, msg, sizeof msg);
	is_str(msg, "solver 'rk4' is unstable with dt = 0.3 on layer 'h' (tau = 0.1): its leak is "
	       "stable only for dt < 0.278529 (2.785 tau)", "rk4 message: the bound rounded down");
	ok(check(m, DAM_EXPEULER, 100, 5, &lim, msg, sizeof msg) == 0 &&
	   check(m, DAM_DOPRI5, 100, 5, &lim, msg, sizeof msg) == 0,
	   "expeuler (exact on the leak) and dopri5 (adaptive) are not refused at dt 100");
	ok(check(m, DAM_EULER, 10, 0.1, &lim, msg, sizeof msg) == 0,
	   "dt 10 with t_end 0.1 is one step of 0.1: accepted");
	ok(check(m, DAM_EULER, 10, 0, &lim, msg, sizeof msg) == 0, "t_end 0: no step, accepted");
	check(m, DAM_EULER, 10, 5, &lim, msg, sizeof msg);
	ok(strstr(msg, "with one step of t_end = 5 on layer 'h'") != NULL,
	   "a run shorter than dt names its one step: %s", msg);
	diags_free(&d);
	arena_free(&a);
	return done_testing();
}
