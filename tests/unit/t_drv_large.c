/* t_drv_large.c - the JIT on large layers: interchanged sums and batches.
 *
 * examples/parity_et.dam at D = M = 256 (L = 32) and D = M = 1024 (L = 64)
 * with random weights (et_npz.h, fixed seed).  The compiled model computes
 * its back-projections sum(mu, xi[mu, j] g[mu]) as column sums (jit_axpy.c)
 * and its dot products over transposed copies of the weights; a plain C
 * Euler loop in source order here is the reference: one step agrees to
 * 1e-12 relative, 1000 steps (100 at 1024) to 1e-9.  sim_run_batch with the
 * batched kernel (JIT_BATCH) on 2 threads gives the results of one sim_run
 * per string bit for bit (states, energies, step counts), also with checks
 * every 7 steps and a short last step; a string with other static weights
 * makes it fall back to one run per string, with the same results.  One
 * run split over two threads (JIT_SPLIT, sim_set_split) gives the state of
 * the one-thread run bit for bit, with a short last step too.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dam_npy.h"
#include "et_npz.h"
#include "frontend.h"
#include "jit.h"
#include "sim.h"
#include "tap.h"

#define BETA 0.1
#define TAU_V 0.1
#define TAU_H 0.01

typedef struct Ref {
	int64_t D, M, L;
	double *emb, *hopf, *a, *b, *c;    /* as in the .npz */
} Ref;

static double *ref_load(const char *npz, const char *key)
{
	DamArray arr;
	char err[256];
	if (dam_npz_read(npz, key, &arr, err, sizeof err)) {
		diag("%s: %s", key, err);
		exit(1);
	}
	return arr.data;                  /* malloc'd */
}

/* nsteps of forward Euler, plainly: x = [v, attn.h, hopf.h]. */
static void ref_run(const Ref *R, const double *tok, double dt, int nsteps, double *x)
{
	int64_t D = R->D, M = R->M, L = R->L;
	double *keys = malloc((size_t)(L * D) * sizeof *keys), *W = malloc((size_t)(M * D) * sizeof *W);
	double *ga = malloc((size_t)L * sizeof *ga), *gh = malloc((size_t)M * sizeof *gh);
	double *f = malloc((size_t)(D + L + M) * sizeof *f);
	double *v = x, *ha = x + D, *hh = x + D + L;
	for (int64_t A = 0; A < L; A++)
		for (int64_t i = 0; i < D; i++) {
			double e = R->emb[(int64_t)tok[A] * D + i];
			keys[A * D + i] = e * e;
		}
	for (int64_t k = 0; k < M * D; k++)
		W[k] = R->hopf[k] * R->hopf[k];
	memset(v, 0, (size_t)D * sizeof *v);
	memcpy(ha, R->b, (size_t)L * sizeof *ha);
	memcpy(hh, R->c, (size_t)M * sizeof *hh);
	for (int s = 0; s < nsteps; s++) {
		double mx = -INFINITY, sum = 0;
		for (int64_t j = 0; j < L; j++)
			mx = fmax(mx, BETA * ha[j]);
		for (int64_t j = 0; j < L; j++)
			sum += exp(BETA * ha[j] - mx);
		double lse = mx + log(sum);
		for (int64_t j = 0; j < L; j++)
			ga[j] = exp(BETA * ha[j] - lse);
		for (int64_t j = 0; j < M; j++)
			gh[j] = hh[j] > 0 ? hh[j] : 0;
		for (int64_t j = 0; j < D; j++) {
			double s1 = 0, s2 = 0;
			for (int64_t mu = 0; mu < L; mu++)
				s1 += keys[mu * D + j] * ga[mu];
			for (int64_t mu = 0; mu < M; mu++)
				s2 += gh[mu] * W[mu * D + j];
			f[j] = (R->a[j] + s1 + s2 - v[j]) / TAU_V;
		}
		for (int64_t j = 0; j < L; j++) {
			double s1 = 0;
			for (int64_t i = 0; i < D; i++)
				s1 += keys[j * D + i] * v[i];
			f[D + j] = (R->b[j] + s1 - ha[j]) / TAU_H;
		}
		for (int64_t j = 0; j < M; j++) {
			double s1 = 0;
			for (int64_t i = 0; i < D; i++)
				s1 += v[i] * W[j * D + i];
			f[D + L + j] = (R->c[j] + s1 - hh[j]) / TAU_H;
		}
		for (int64_t k = 0; k < D + L + M; k++)
			x[k] += dt * f[k];
	}
	free(keys);
	free(W);
	free(ga);
	free(gh);
	free(f);
}

/* Largest |a - b| / max(1, |b|). */
static double rel_err(const double *a, const double *b, size_t n)
{
	double e = 0;
	for (size_t i = 0; i < n; i++)
		e = fmax(e, fabs(a[i] - b[i]) / fmax(1.0, fabs(b[i])));
	return e;
}

static void tokens(double *tok, int64_t L, uint64_t *seed)
{
	for (int64_t k = 0; k < L; k++)
		tok[k] = et_urand(seed) < 0.5 ? 0 : 1;
}

static void run_n(DamSim *s, double dt, int nsteps)
{
	DamRunOpts o;
	dam_run_opts_default(&o);
	o.dt = dt;
	o.t_end = dt * nsteps;
	o.check_every = nsteps;
	DamRunResult r;
	sim_run(s, &o, &r, NULL, NULL, NULL, 0);
}

static bool same_result(const DamRunResult *a, const DamRunResult *b)
{
	return a->status == b->status && a->steps == b->steps && a->rhs_evals == b->rhs_evals &&
	       memcmp(&a->energy_end, &b->energy_end, sizeof(double)) == 0 &&
	       memcmp(&a->energy_start, &b->energy_start, sizeof(double)) == 0 &&
	       memcmp(&a->max_energy_rise, &b->max_energy_rise, sizeof(double)) == 0 && a->t == b->t;
}

/* s[0..nb) through sim_run_batch (2 threads), r[0..nb) one by one through
 * sim_run; *same: equal states and results, bit for bit.  Gives whether the
 * batched kernel ran. */
static int batch_vs_one(DamSim **s, DamSim **r, int nb, const DamRunOpts *o, DamRunResult *rb, char *msg,
                        size_t msglen, int *same)
{
	DamRunResult rs;
	int batched = sim_run_batch(s, (size_t)nb, o, rb, msg, msglen, 2);
	size_t n = sim_state_size(s[0]);
	*same = 1;
	for (int i = 0; i < nb; i++) {
		sim_run(r[i], o, &rs, NULL, NULL, NULL, 0);
		*same = *same && memcmp(sim_state(s[i]), sim_state(r[i]), n * sizeof(double)) == 0 &&
		        same_result(&rb[i], &rs);
	}
	return batched;
}

/* n strings through sim_run_batch and through sim_run, compared bit for bit. */
static void test_batch(Model *m, Jit *j, int64_t L, const char *what, double t_end, int64_t every)
{
	enum { NB = 9 };
	DamSim *s[NB], *r[NB];
	DamRunResult rb[NB];
	char msg[NB][256];
	uint64_t seed = 7;
	double tok[64];
	for (int i = 0; i < NB; i++) {
		tokens(tok, L, &seed);
		s[i] = sim_new(m, j);
		sim_set_input(s[i], 0, tok, (size_t)L, NULL, 0);
		r[i] = sim_clone(s[i]);
	}
	DamRunOpts o;
	dam_run_opts_default(&o);
	o.dt = 1e-3;
	o.t_end = t_end;
	o.check_every = every;
	int same;
	int batched = batch_vs_one(s, r, NB, &o, rb, msg[0], sizeof msg[0], &same);
	ok(batched == 1, "%s: the batched kernel ran", what);
	ok(same, "%s: %d strings in a batch (2 threads) = one by one, bit for bit (%lld steps, energy %.17g)",
	   what, NB, (long long)rb[0].steps, rb[0].energy_end);
	/* Other weights in one string: no batched kernel, the same results. */
	TensorId w = 0;
	for (TensorId t = 1; t < m->ntensors && !w; t++)
		if ((m->tensors[t].kind == MT_LEARN || m->tensors[t].kind == MT_CONST) &&
		    sym_tensor_size(m->sym, t) > 1000 && sim_tensor(s[0], t) != NULL)
			w = t;                  /* a weight the kernels read (the Hopfield block) */
	double *wd = malloc((size_t)sym_tensor_size(m->sym, w) * sizeof *wd);
	memcpy(wd, m->tensors[w].data, (size_t)sym_tensor_size(m->sym, w) * sizeof *wd);
	wd[3] *= 0.5;
	sim_set_tensor(s[NB - 1], w, wd);
	sim_set_tensor(r[NB - 1], w, wd);
	batched = batch_vs_one(s, r, NB, &o, rb, NULL, 0, &same);
	ok(batched == 0 && same, "%s: other weights in one string: one run per string, same results", what);
	/* The same other weights in every string: batched again, the panels
	 * packed from each simulator's own static block (jit_axpy.c). */
	for (int i = 0; i < NB - 1; i++) {
		sim_set_tensor(s[i], w, wd);
		sim_set_tensor(r[i], w, wd);
	}
	batched = batch_vs_one(s, r, NB, &o, rb, NULL, 0, &same);
	ok(batched == 1 && same, "%s: the same other weights in every string: batched, = one by one, bit for bit", what);
	free(wd);
	/* The kernels read a row of the attention's weights as the first row with
	 * the same token (jit_row_key) while the rows follow the tokens; rows a
	 * host programmed need not, and are read each on its own: tokens A with
	 * the rows of tokens B programmed run exactly as tokens B, one by one
	 * and in a batch. */
	TensorId dyn = 0, keys = 0;
	for (TensorId t = 1; t < m->ntensors; t++)
		if (m->tensors[t].kind == MT_DYN && strcmp(sym_tensor_name(m->sym, t), "attn.xi") == 0)
			dyn = t;
		else if (m->tensors[t].kind == MT_DYN && strcmp(sym_tensor_name(m->sym, t), "keys") == 0)
			keys = t;
	/* attn.xi[r, c] = keys[r, c], and nothing else reads keys: one storage */
	ok(dyn && keys && sim_tensor(s[0], dyn) == sim_tensor(s[0], keys),
	   "%s: attn.xi shares the workspace storage of keys", what);
	DamSim *q[4];
	for (int i = 0; i < 4; i++) {
		tokens(tok, L, &seed);
		if (i % 2 == 0)
			tokens(tok, L, &seed);       /* A and B differ */
		q[i] = sim_new(m, j);
		sim_set_input(q[i], 0, tok, (size_t)L, NULL, 0);
	}
	DamRunResult rq[4];
	sim_run(q[1], &o, &rq[1], NULL, NULL, NULL, 0);              /* tokens B: its rows */
	size_t nd = dyn ? (size_t)sym_tensor_size(m->sym, dyn) : 0, n = sim_state_size(q[0]);
	int prog = dyn && sim_set_dynamic(q[0], dyn, sim_tensor(q[1], dyn)) == 0;
	sim_run(q[0], &o, &rq[0], NULL, NULL, NULL, 0);
	ok(prog && nd && memcmp(sim_state(q[0]), sim_state(q[1]), n * sizeof(double)) == 0 && same_result(&rq[0], &rq[1]),
	   "%s: tokens A with the attention rows of tokens B programmed = tokens B, bit for bit (one by one)", what);
	/* the same in a batch: q[2] gets q[1]'s rows, q[3] keeps its own tokens' */
	sim_set_dynamic(q[2], dyn, sim_tensor(q[1], dyn));
	DamSim *pair[3] = { q[2], q[3], q[1] };
	DamRunResult rp[3];
	int bt = sim_run_batch(pair, 3, &o, rp, NULL, 0, 2);
	ok(bt == 1 && memcmp(sim_state(q[2]), sim_state(q[1]), n * sizeof(double)) == 0 && same_result(&rp[0], &rq[1]),
	   "%s: the same in a batch with strings that keep their tokens' rows (batched: %d)", what, bt);
	for (int i = 0; i < 4; i++)
		sim_free(q[i]);
	for (int i = 0; i < NB; i++) {
		sim_free(s[i]);
		sim_free(r[i]);
	}
}

/* One run with its steps split over two threads = the same run on one. */
static void test_split(Model *m, Jit *j, int64_t L, const char *what)
{
	uint64_t seed = 11;
	double tok[64];
	tokens(tok, L, &seed);
	DamSim *s = sim_new(m, j), *r;
	sim_set_input(s, 0, tok, (size_t)L, NULL, 0);
	r = sim_clone(s);
	bool on = sim_set_split(s, true);
	DamRunOpts o;
	dam_run_opts_default(&o);
	o.dt = 1e-3;
	o.t_end = 0.0305;                          /* 31 steps, the last one short */
	o.check_every = 10;
	DamRunResult a, b;
	sim_run(s, &o, &a, NULL, NULL, NULL, 0);
	sim_run(r, &o, &b, NULL, NULL, NULL, 0);
	size_t n = sim_state_size(s);
	ok(on && a.status == DAM_OK && memcmp(sim_state(s), sim_state(r), n * sizeof(double)) == 0 &&
	   same_result(&a, &b), "%s: a run split over two threads = one thread, bit for bit (%lld steps)", what,
	   (long long)a.steps);
	sim_free(s);
	sim_free(r);
}

static void test_size(int64_t D, int64_t L, int nsteps)
{
	char dir[] = "/tmp/t_drv_large.XXXXXX", npz[64], defs[4][128], what[64];
	if (!mkdtemp(dir)) {
		ok(0, "temporary directory");
		return;
	}
	snprintf(npz, sizeof npz, "%s/w.npz", dir);
	snprintf(what, sizeof what, "D = M = %lld, L = %lld", (long long)D, (long long)L);
	ok(et_npz_write(npz, D, D, L, 2024) == 0, "%s: random weights written", what);
	snprintf(defs[0], sizeof defs[0], "D=%lld", (long long)D);
	snprintf(defs[1], sizeof defs[1], "M=%lld", (long long)D);
	snprintf(defs[2], sizeof defs[2], "L=%lld", (long long)L);
	snprintf(defs[3], sizeof defs[3], "weights=%s", npz);
	const char *dv[4] = {defs[0], defs[1], defs[2], defs[3]};
	Arena a;
	Diags d;
	arena_init(&a);
	diags_init(&d, &a);
	FrontendOptions fo = { dv, 4, NULL, NULL, 0 };
	Model *m = dam_frontend_compile(DAM_SOURCE_DIR "/examples/parity_et.dam", &fo, &d, &a);
	char err[512] = "";
	Jit *j = m ? jit_compile_flags(m, &(JitOptions){ .opt_level = 3 }, JIT_BATCH | JIT_SPLIT, err, sizeof err) : NULL;
	if (!ok(j != NULL, "%s: parity_et compiles", what)) {
		diag("%s", err);
		diags_free(&d);
		arena_free(&a);
		return;
	}
	Ref R = { D, D, L, ref_load(npz, "xi_attn_embed_raw"), ref_load(npz, "xi_hopf_raw"), ref_load(npz, "a"),
	          ref_load(npz, "b"), ref_load(npz, "c") };
	size_t n = (size_t)(D + L + D);
	double *want = malloc(n * sizeof *want), tok[64];
	uint64_t seed = 3;
	tokens(tok, L, &seed);
	DamSim *s = sim_new(m, j);
	sim_set_input(s, 0, tok, (size_t)L, NULL, 0);
	ok(sim_state_size(s) == n, "%s: %zu state components", what, n);

	run_n(s, 1e-3, 1);
	ref_run(&R, tok, 1e-3, 1, want);
	double e1 = rel_err(sim_state(s), want, n);
	diag("%s: one Euler step: largest relative error %.3g", what, e1);
	ok(e1 <= 1e-12, "%s: one step agrees with plain C to 1e-12", what);

	run_n(s, 1e-3, nsteps);
	ref_run(&R, tok, 1e-3, nsteps, want);
	double en = rel_err(sim_state(s), want, n);
	diag("%s: %d Euler steps: largest relative error %.3g", what, nsteps, en);
	ok(en <= 1e-9, "%s: %d steps agree with plain C to 1e-9", what, nsteps);

	/* Reprogrammed Hopfield weights (hopf.xi = (0.9 raw)^2 through
	 * sim_set_tensor): the simulator gets its own copy and its own static
	 * caches (the transposed copy of the block), and agrees with plain C on
	 * those weights; a fresh simulator still runs the model's. */
	TensorId xi = 0;
	for (TensorId t = 1; t < m->ntensors && !xi; t++)
		if (strcmp(sym_tensor_name(m->sym, t), "hopf.xi") == 0)
			xi = t;
	if (ok(xi && sim_tensor(s, xi), "%s: hopf.xi is run-time data", what)) {
		size_t nw = (size_t)(D * D);
		double *w9 = malloc(nw * sizeof *w9), *raw = R.hopf;
		for (size_t i = 0; i < nw; i++) {
			double r9 = 0.9 * raw[i];
			w9[i] = r9 * r9;
			raw[i] = r9;                  /* the reference squares it the same way */
		}
		DamSim *p = sim_new(m, j);
		sim_set_input(p, 0, tok, (size_t)L, NULL, 0);
		sim_set_tensor(p, xi, w9);
		run_n(p, 1e-3, 10);
		ref_run(&R, tok, 1e-3, 10, want);
		double ep = rel_err(sim_state(p), want, n);
		diag("%s: reprogrammed weights, 10 steps: largest relative error %.3g", what, ep);
		ok(ep <= 1e-10, "%s: reprogrammed Hopfield weights agree with plain C to 1e-10", what);
		DamSim *f = sim_new(m, j);
		sim_set_input(f, 0, tok, (size_t)L, NULL, 0);
		run_n(f, 1e-3, 10);
		double ef = rel_err(sim_state(f), want, n);
		ok(ef > 1e-6, "%s: a fresh simulator still runs the model's weights (differs by %.3g)", what, ef);
		for (size_t i = 0; i < nw; i++)
			raw[i] /= 0.9;
		sim_free(p);
		sim_free(f);
		free(w9);
	}

	test_batch(m, j, L, what, 0.02, 20);
	test_batch(m, j, L, what, 0.0205, 7);      /* 21 steps, the last one short, checks every 7 */
	test_split(m, j, L, what);

	sim_free(s);
	free(want);
	free(R.emb);
	free(R.hopf);
	free(R.a);
	free(R.b);
	free(R.c);
	jit_free(j);
	diags_free(&d);
	arena_free(&a);
	unlink(npz);
	rmdir(dir);
}

int main(void)
{
	test_size(256, 32, 1000);
	test_size(1024, 64, 100);
	return done_testing();
}
