/* t_spice_plan.c - the SPICE backend's plan, without LLVM and without ngspice.
 *
 * Links the front end and the netlist backend only (the `t_spice_` prefix):
 * netlist.t checks with ldd/nm that no LLVM came along.  On a single RC
 * neuron v driven through one conductance w = 0.5 from a clamped source s,
 *     tau_v dv/dt = 0.5 s - v,
 * the census, the self-term, the deck's component values and the power at a
 * given state are compared with numbers worked out by hand.  On XOR the plan
 * is checked against the paper's crossbar (6 non-zero crosspoints, self-terms
 * = row sums of |xi|).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend.h"
#include "spice.h"
#include "tap.h"

static const char rc_model[] =
	"import \"lagrangians\"\n"
	"input u0[1]\n"
	"layer s[1] : identity tau = 1.0\n"
	"layer v[1] : identity tau = 2.0 init = 0\n"
	"weights w : v -- s = [[0.5]]\n"
	"clamp s[0:1] = u0\n"
	"output y = v[0]\n";

static Model *compile_text(const char *text, char *path, Arena *a, Diags *d)
{
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return NULL;
	close(fd);
	FrontendOptions fo = { NULL, 0, DAM_SOURCE_DIR "/stdlib", NULL, 0 };
	Model *m = dam_frontend_compile(path, &fo, d, a);
	if (!m)
		diag_render(d, stdout);
	return m;
}

static void test_rc(void)
{
	Arena a;
	Diags d;
	arena_init(&a);
	diags_init(&d, &a);
	char path[] = "/tmp/t_spice_rc_XXXXXX";
	Model *m = compile_text(rc_model, path, &a, &d);
	ok(m != NULL, "rc model compiles");
	if (!m)
		return;
	double u = 1;
	BackendOptions o = { &u, 1e-3, 4, LEVEL_BEHAVIOURAL, 0, 0, 0, NULL, NULL };
	SpicePlan *p = spice_plan(m, &o, &d);
	ok(p != NULL, "plan built");
	if (!p)
		return;
	SpiceCensus c;
	spice_census(p, &c);
	ok(c.crosspoints == 1 && c.resistors == 2 && c.capacitors == 1, "census: 1 crosspoint, 2 resistors "
	   "(crosspoint + R2 of v), 1 capacitor (got %lld %lld %lld)", (long long)c.crosspoints,
	   (long long)c.resistors, (long long)c.capacitors);
	ok(c.amplifiers == 3 && c.dac == 1 && c.adc == 1, "census: 3 amplifiers (2 activation buffers, 1 "
	   "summing), 1 DAC (the clamp), 1 ADC (v feeds y) (got %lld %lld %lld)", (long long)c.amplifiers,
	   (long long)c.dac, (long long)c.adc);
	is_close(c.gmin, 5e-6, 1e-18, "conductance used: G0 * 0.5 = 5 uS");
	is_close(p->nr[1].self, 0.5, 0, "self-term gain of v = |w|");
	ok(p->nr[0].clamped && p->nr[0].value == 1, "s is clamped at the input value 1");
	/* At s = 1, v = 0.2: crossbar G0*0.5*(0.1*(0.2-1))^2 = 3.2e-8 W;
	 * leak across R2: (0.1 * (0.5 - 0.2))^2 / 1e5 = 9e-9 W. */
	double x[2] = { 1, 0.2 }, pxb, plk;
	spice_power(p, x, &pxb, &plk);
	is_close(pxb, 3.2e-8, 1e-20, "crossbar power at v = 0.2 (hand: 3.2e-8 W)");
	is_close(plk, 9e-9, 1e-21, "leak power at v = 0.2 (hand: 9e-9 W)");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ok(spice_write(p, f, &d) == 0, "deck written");
	fclose(f);
	ok(buf && strstr(buf, "\nCI_v_0 v_0 0 2e-11\n") && strstr(buf, "\nRX_v_0_s_0 v_0_lp s_0_lp 200000\n") &&
	   strstr(buf, "\nVC_s_0 s_0 0 DC 0.1\n") && strstr(buf, "\n.tran 1e-09 4e-06 0 1e-09 uic\n"),
	   "deck: C1 = tau*1us/100k = 20 pF, R = 100k/0.5, clamp 0.1 V, .tran in seconds");
	if (buf && !strstr(buf, "\nCI_v_0 v_0 0 2e-11\n"))
		diag("%s", buf);
	free(buf);
	spice_plan_free(p);
	unlink(path);
	diags_free(&d);
	arena_free(&a);
}

static void test_xor(void)
{
	Arena a;
	Diags d;
	arena_init(&a);
	diags_init(&d, &a);
	FrontendOptions fo = { NULL, 0, NULL, NULL, 0 };
	Model *m = dam_frontend_compile(DAM_SOURCE_DIR "/examples/xor.dam", &fo, &d, &a);
	double bits[2] = { 1, 0 };
	BackendOptions o = { bits, 1e-3, 5, LEVEL_BEHAVIOURAL, 0, 0, 0, NULL, NULL };
	SpicePlan *p = m ? spice_plan(m, &o, &d) : NULL;
	ok(p != NULL, "xor plan");
	if (!p)
		return;
	ok(p->nxp == 6, "xor: 6 non-zero crosspoints (got %zu)", p->nxp);
	/* h_mu's self-term is the row sum of xi: 0, 2, 2, 2; v_i's the column sum: 2, 2, 2. */
	double want[7] = { 2, 2, 2, 0, 2, 2, 2 };
	int good = 1;
	for (int k = 0; k < 7; k++)
		good &= p->nr[k].self == want[k];
	ok(good, "xor: self-terms are the row and column sums of xi");
	ok(p->nr[0].clamped && p->nr[1].clamped && !p->nr[2].clamped && p->nr[2].value == 0.5,
	   "xor: v_0, v_1 clamped to the bits, v_2 starts at 0.5");
	ok(p->nr[3].bias == 0 && p->nr[4].bias == -1, "xor: biases -|xi_mu|^2/2");
	spice_plan_free(p);
	diags_free(&d);
	arena_free(&a);
}

int main(void)
{
	test_rc();
	test_xor();
	return done_testing();
}
