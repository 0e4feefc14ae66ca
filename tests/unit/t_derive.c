/* t_derive.c - the derivation against the papers' equations, numerically.
 *
 * For xor, hamming74 and parity_et, at seeded random states, the derived
 * activations, energy and right-hand sides (evaluated with the reference
 * evaluator) are compared with formulas written out by hand from the papers
 * (Eq. 1-2 for XOR/Hamming, Eq. 6-11 for the Analog ET): relative error at
 * most 1e-12.  Then the Lyapunov identity of every example:
 *     dE/dt = -sum_P tau_P xdot^T H_P xdot <= 0
 * with dE/dt from a central difference of E along xdot (tolerance 1e-6
 * relative) and H_P from the derived structured Hessians.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dam_npy.h"
#include "frontend.h"
#include "tap.h"

#define SRC DAM_SOURCE_DIR
#define PARITY SRC "/../shared/data/published/analog-denseam-parity/model_best.npz"

static uint64_t rng = 88172645463325252ull;
static double urand(double lo, double hi)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return lo + (hi - lo) * (double)(rng >> 11) / 9007199254740992.0;
}

static Model *compile(const char *path, const char *def, Arena *a, Diags *d)
{
	const char *defs[1] = { def };
	FrontendOptions fo = { defs, def ? 1 : 0, SRC "/stdlib", NULL, 0 };
	diags_init(d, a);
	Model *m = dam_frontend_compile(path, &fo, d, a);
	if (!m || diag_errors(d))
		diag_render(d, stdout);
	return m;
}

static double relerr(double got, double want)
{
	return fabs(got - want) / fmax(1.0, fabs(want));
}

/* ---- hand-written DenseAM with identity visible and softmax hidden (Eq. 1-2) */
static void dam_hand(int nv, int nh, const double *xi, double beta, double tauv, double tauh, const double *v,
                     const double *h, double *dv, double *dh, double *E)
{
	double mx = -INFINITY, s = 0, f[64], b[64];
	for (int mu = 0; mu < nh; mu++)
		mx = fmax(mx, beta * h[mu]);
	for (int mu = 0; mu < nh; mu++)
		s += exp(beta * h[mu] - mx);
	double lse = mx + log(s);
	for (int mu = 0; mu < nh; mu++) {
		f[mu] = exp(beta * h[mu] - lse);
		b[mu] = 0;
		for (int i = 0; i < nv; i++)
			b[mu] -= 0.5 * xi[mu * nv + i] * xi[mu * nv + i];
	}
	double e = 0;
	for (int i = 0; i < nv; i++) {
		double acc = 0;
		for (int mu = 0; mu < nh; mu++)
			acc += xi[mu * nv + i] * f[mu];
		dv[i] = (acc - v[i]) / tauv;
		e += v[i] * v[i] - 0.5 * v[i] * v[i];
	}
	for (int mu = 0; mu < nh; mu++) {
		double acc = 0;
		for (int i = 0; i < nv; i++)
			acc += xi[mu * nv + i] * v[i];
		dh[mu] = (acc + b[mu] - h[mu]) / tauh;
		e += f[mu] * (h[mu] - b[mu]) - f[mu] * acc;
	}
	*E = e - lse / beta;
}

static void check_dam(const char *name, Model *m, int nv, int nh, const double *xi)
{
	int64_t ns = model_state_size(m);
	double inputs[16] = {0}, x[64], got[64], dv[64], dh[64], E;
	double worst_rhs = 0, worst_E = 0, worst_g = 0;
	for (int trial = 0; trial < 20; trial++) {
		for (int i = 0; i < 16; i++)
			inputs[i] = urand(0, 1);
		ModelEval ev;
		model_eval_init(&ev, m, inputs);
		for (int64_t i = 0; i < ns; i++)
			x[i] = urand(-2, 2);
		model_eval_state(&ev, x);
		model_eval_rhs(&ev, got);
		dam_hand(nv, nh, xi, 8, 1.0, 0.1, x, x + nv, dv, dh, &E);
		for (int i = 0; i < nv; i++)
			worst_rhs = fmax(worst_rhs, relerr(got[i], dv[i]));
		for (int mu = 0; mu < nh; mu++)
			worst_rhs = fmax(worst_rhs, relerr(got[nv + mu], dh[mu]));
		worst_E = fmax(worst_E, relerr(model_eval_energy(&ev), E));
		for (int i = 0; i < nv; i++)
			worst_g = fmax(worst_g, relerr(ev.act[i], x[i]));
		model_eval_free(&ev);
	}
	ok(worst_g <= 1e-12, "%s: activations match g = v, softmax (max rel err %.3g, tol 1e-12)", name, worst_g);
	ok(worst_rhs <= 1e-12, "%s: right-hand sides match paper Eq. 1 (max rel err %.3g, tol 1e-12)", name, worst_rhs);
	ok(worst_E <= 1e-12, "%s: energy matches paper Eq. 2 (max rel err %.3g, tol 1e-12)", name, worst_E);
}

/* ---- hand-written Analog ET (paper Eq. 6-11) --------------------------------- */
typedef struct Et {
	double emb[2][16], hopf[16][16], a[16], b[8], c[16], Wd[2][16], bd[2];
} Et;

static int load(const char *key, double *dst, size_t n)
{
	DamArray arr;
	char err[256];
	if (dam_npz_read(PARITY, key, &arr, err, sizeof err))
		return -1;
	if (arr.count != n) {
		dam_array_free(&arr);
		return -1;
	}
	memcpy(dst, arr.data, n * sizeof *dst);
	dam_array_free(&arr);
	return 0;
}

static void et_hand(const Et *p, const int *tok, const double *x, double *dx, double *E, double *logits)
{
	const double beta = 0.1, tv = 0.1, th = 0.01;
	const double *v = x, *ha = x + 16, *hh = x + 24;
	double keys[8][16], W[16][16], fa[8], fh[16];
	for (int A = 0; A < 8; A++)
		for (int i = 0; i < 16; i++)
			keys[A][i] = p->emb[tok[A]][i] * p->emb[tok[A]][i];
	for (int mu = 0; mu < 16; mu++)
		for (int i = 0; i < 16; i++)
			W[mu][i] = p->hopf[mu][i] * p->hopf[mu][i];
	double mx = -INFINITY, s = 0;
	for (int A = 0; A < 8; A++)
		mx = fmax(mx, beta * ha[A]);
	for (int A = 0; A < 8; A++)
		s += exp(beta * ha[A] - mx);
	double lse = mx + log(s);
	for (int A = 0; A < 8; A++)
		fa[A] = exp(beta * ha[A] - lse);
	for (int mu = 0; mu < 16; mu++)
		fh[mu] = hh[mu] > 0 ? hh[mu] : 0;
	double e = 0;
	for (int i = 0; i < 16; i++) {       /* Eq. 9 */
		double acc = p->a[i] - v[i];
		for (int A = 0; A < 8; A++)
			acc += keys[A][i] * fa[A];
		for (int mu = 0; mu < 16; mu++)
			acc += W[mu][i] * fh[mu];
		dx[i] = acc / tv;
		e += v[i] * (v[i] - p->a[i]) - 0.5 * v[i] * v[i];
	}
	for (int A = 0; A < 8; A++) {        /* Eq. 10 */
		double acc = 0;
		for (int i = 0; i < 16; i++)
			acc += keys[A][i] * v[i];
		dx[16 + A] = (acc + p->b[A] - ha[A]) / th;
		e += fa[A] * (ha[A] - p->b[A]) - fa[A] * acc;
	}
	e -= lse / beta;
	for (int mu = 0; mu < 16; mu++) {    /* Eq. 11 */
		double acc = 0;
		for (int i = 0; i < 16; i++)
			acc += W[mu][i] * v[i];
		dx[24 + mu] = (acc + p->c[mu] - hh[mu]) / th;
		e += fh[mu] * (hh[mu] - p->c[mu]) - 0.5 * fh[mu] * fh[mu] - fh[mu] * acc;
	}
	*E = e;
	for (int k = 0; k < 2; k++) {
		logits[k] = p->bd[k];
		for (int i = 0; i < 16; i++)
			logits[k] += p->Wd[k][i] * v[i];
	}
}

static void check_et(Model *m)
{
	Et p;
	if (load("xi_attn_embed_raw", &p.emb[0][0], 32) || load("xi_hopf_raw", &p.hopf[0][0], 256) ||
	    load("a", p.a, 16) || load("b", p.b, 8) || load("c", p.c, 16) || load("W_dec", &p.Wd[0][0], 32) ||
	    load("b_dec", p.bd, 2)) {
		skip(3, "published checkpoint not found");
		return;
	}
	double worst_rhs = 0, worst_E = 0, worst_o = 0;
	for (int trial = 0; trial < 20; trial++) {
		int tok[8];
		double in[8], x[40], got[40], want[40], E, logits[2];
		for (int A = 0; A < 8; A++) {
			tok[A] = urand(0, 1) < 0.5;
			in[A] = tok[A];
		}
		for (int i = 0; i < 40; i++)
			x[i] = urand(-1, 1);
		ModelEval ev;
		model_eval_init(&ev, m, in);
		model_eval_state(&ev, x);
		model_eval_rhs(&ev, got);
		et_hand(&p, tok, x, want, &E, logits);
		for (int i = 0; i < 40; i++)
			worst_rhs = fmax(worst_rhs, relerr(got[i], want[i]));
		worst_E = fmax(worst_E, relerr(model_eval_energy(&ev), E));
		const MOutput *o = &m->outputs[0];
		for (int k = 0; k < 2; k++)
			worst_o = fmax(worst_o, relerr(model_eval_expr(&ev, o->expr, o->i, k), logits[k]));
		model_eval_free(&ev);
	}
	ok(worst_rhs <= 1e-12, "parity_et: right-hand sides match paper Eq. 9-11 (max rel err %.3g, tol 1e-12)", worst_rhs);
	ok(worst_E <= 1e-12, "parity_et: energy matches paper Eq. 6 (max rel err %.3g, tol 1e-12)", worst_E);
	ok(worst_o <= 1e-12, "parity_et: logits = W_dec v + b_dec (max rel err %.3g, tol 1e-12)", worst_o);
}

/* ---- Lyapunov identity ----------------------------------------------------- */
static void check_lyapunov(const char *name, Model *m, double spread)
{
	int64_t ns = model_state_size(m);
	double *x = calloc((size_t)ns, sizeof *x), *xd = calloc((size_t)ns, sizeof *xd);
	double *xp = calloc((size_t)ns, sizeof *xp), *hv = calloc((size_t)ns, sizeof *hv);
	double in[64];
	double worst = 0, maxdot = -INFINITY;
	for (int trial = 0; trial < 20; trial++) {
		for (int i = 0; i < 64; i++)
			in[i] = urand(0, 1) < 0.5;
		ModelEval ev;
		model_eval_init(&ev, m, in);
		for (int64_t i = 0; i < ns; i++)
			x[i] = urand(-spread, spread);
		model_eval_state(&ev, x);
		model_eval_rhs(&ev, xd);
		double quad = 0;
		for (int l = 0; l < m->nlayers; l++) {
			int64_t off = model_layer_offset(m, l);
			model_eval_hess_mv(&ev, l, xd + off, hv + off);
			for (int64_t j = 0; j < m->layers[l].n; j++)
				quad += m->layers[l].tau * xd[off + j] * hv[off + j];
		}
		double h = 1e-6;
		for (int64_t i = 0; i < ns; i++)
			xp[i] = x[i] + h * xd[i];
		model_eval_state(&ev, xp);
		double ep = model_eval_energy(&ev);
		for (int64_t i = 0; i < ns; i++)
			xp[i] = x[i] - h * xd[i];
		model_eval_state(&ev, xp);
		double em = model_eval_energy(&ev);
		double dEdt = (ep - em) / (2 * h);
		worst = fmax(worst, fabs(dEdt + quad) / fmax(1.0, fabs(quad)));
		maxdot = fmax(maxdot, dEdt);
		model_eval_free(&ev);
	}
	ok(worst <= 1e-6, "%s: dE/dt = -sum tau xdot^T H xdot (max rel err %.3g, tol 1e-6)", name, worst);
	ok(maxdot <= 0, "%s: dE/dt <= 0 at all sampled states (max %.3g)", name, maxdot);
	free(x);
	free(xd);
	free(xp);
	free(hv);
}

int main(void)
{
	static const double xor_xi[12] = { 0,0,0, 0,1,1, 1,0,1, 1,1,0 };
	static const double ham_xi[16 * 7] = {
		0,0,0,0,0,0,0, 0,0,0,1,1,1,1, 0,0,1,0,1,1,0, 0,0,1,1,0,0,1,
		0,1,0,0,1,0,1, 0,1,0,1,0,1,0, 0,1,1,0,0,1,1, 0,1,1,1,1,0,0,
		1,0,0,0,0,1,1, 1,0,0,1,1,0,0, 1,0,1,0,1,0,1, 1,0,1,1,0,1,0,
		1,1,0,0,1,1,0, 1,1,0,1,0,0,1, 1,1,1,0,0,0,0, 1,1,1,1,1,1,1,
	};
	Arena a1, a2, a3;
	arena_init(&a1);
	arena_init(&a2);
	arena_init(&a3);
	Diags d1, d2, d3;
	Model *xr = compile(SRC "/examples/xor.dam", NULL, &a1, &d1);
	Model *hm = compile(SRC "/examples/hamming74.dam", NULL, &a2, &d2);
	FILE *f = fopen(PARITY, "rb");
	Model *et = NULL;
	if (f) {
		fclose(f);
		et = compile(SRC "/examples/parity_et.dam", "weights=" PARITY, &a3, &d3);
	}
	ok(xr != NULL, "xor.dam compiles");
	ok(hm != NULL, "hamming74.dam compiles");
	if (xr) {
		check_dam("xor", xr, 3, 4, xor_xi);
		check_lyapunov("xor", xr, 2);
	} else {
		skip(5, "xor did not compile");
	}
	if (hm) {
		check_dam("hamming74", hm, 7, 16, ham_xi);
		check_lyapunov("hamming74", hm, 2);
	} else {
		skip(5, "hamming did not compile");
	}
	if (et) {
		check_et(et);
		check_lyapunov("parity_et", et, 1);
	} else {
		skip(5, "published checkpoint not found");
	}
	diags_free(&d1);
	diags_free(&d2);
	if (et)
		diags_free(&d3);
	arena_free(&a1);
	arena_free(&a2);
	arena_free(&a3);
	return done_testing();
}
