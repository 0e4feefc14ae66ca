/* et_scale.c - the Analog ET family at growing sizes (not a test: run by
 * bench/et_scale.sh).
 *
 *   et_scale weights OUT.npz D L M SEED       random weights for parity_et.dam
 *   et_scale bench D L M NSTEPS REPS CREPS NPZ
 *   et_scale mem damc|hand|blas D L M NPZ     one pass of 1 step; prints the peak RSS
 *   et_scale e2e-hand NPZ DATASET             parity_et by hand, dt 1e-4, T = 1 (hand_parity.c)
 *   et_scale e2e-cmp NPZ DATASET DAMC.json    the same, compared with `damc run --json`
 *
 * bench: examples/parity_et.dam with -D D=.. -D L=.. -D M=.. -D weights=NPZ on
 * 64 random token strings (fixed seed), forward Euler dt = 1e-3, NSTEPS
 * steps from the model's initial state, REPS passes alternating in this
 * process:
 *   damc      the public API (dam.h): one handle, per string dam_set_tokens +
 *             dam_run (check_every = NSTEPS: one fused Euler call) + readouts;
 *   damc 1    the same pass with 1 step (what a run costs besides its steps);
 *   batch     the driver's batched kernel (sim_run_batch, JIT_BATCH, 1 thread;
 *             not in dam.h: what `damc run` uses for a dataset), if 64
 *             workspaces fit in DAM_ET_BATCH_MB (default 3000) MB;
 *   plain C   hand_et_run (dot products + axpy), hand_et_run_axpy (axpy only);
 *   OpenBLAS  hand_et_run_blas with 1 and with 2 threads (DAM_ET_NO_BLAS2: 1 only,
 *             for callgrind, which would not count the second thread's work).
 * Every pass's logits and final v are compared with the plain C loop's.
 * CREPS: dam_compile_file calls timed (median).  FLOPs of one Euler step of
 * one string, counted from the equations (hand_et.c; exp = 1, compares = 0):
 *   F = 4 D (L + M) + 3 D + 8 L + 3 M
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_util.h"
#include "dam.h"
#include "dam_image.h"
#include "frontend.h"
#include "hand_et.h"
#include "hand_parity.h"
#include "jit.h"
#include "sim.h"

#define NB 64
#define DT 1e-3
#define MAXREPS 32

static double median(const double *v, int n)
{
	double s[MAXREPS];
	memcpy(s, v, (size_t)n * sizeof *s);
	qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
	return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static double max_rss_mb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss / 1024.0;   /* Linux: KiB */
}

static uint64_t es_lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 11;
}

static double es_urand(uint64_t *s)
{
	return (double)es_lcg(s) / 9007199254740992.0;
}

static double flops_per_step(int64_t D, int64_t L, int64_t M)
{
	return 4.0 * (double)D * (double)(L + M) + 3.0 * (double)D + 8.0 * (double)L + 3.0 * (double)M;
}

/* ---- weights ------------------------------------------------------------------ */

/* Raw couplings U(0, 1/sqrt(D)) (squared by the model: mean 1/(3D), so the
 * Hopfield block's spectral norm is about sqrt(M D)/(3 D) = 1/3 at M = D);
 * a, b, c U(-0.5, 0.5); W_dec, b_dec U(-1, 1). */
static int cmd_weights(const char *out, int64_t D, int64_t L, int64_t M, uint64_t seed)
{
	const int64_t V = 2;
	int64_t n[7] = { V * D, M * D, D, L, M, 2 * D, 2 };
	double lo[7] = { 0, 0, -0.5, -0.5, -0.5, -1, -1 };
	double hi[7] = { 1 / sqrt((double)D), 1 / sqrt((double)D), 0.5, 0.5, 0.5, 1, 1 };
	int64_t shp[7][2] = { { V, D }, { M, D }, { D }, { L }, { M }, { 2, D }, { 2 } };
	const char *names[7] = { "xi_attn_embed_raw", "xi_hopf_raw", "a", "b", "c", "W_dec", "b_dec" };
	int rank[7] = { 2, 2, 1, 1, 1, 2, 1 };
	const int64_t *shape[7];
	double *data[7];
	for (int k = 0; k < 7; k++) {
		data[k] = malloc((size_t)n[k] * sizeof(double));
		if (!data[k])
			return 1;
		for (int64_t i = 0; i < n[k]; i++)
			data[k][i] = lo[k] + (hi[k] - lo[k]) * es_urand(&seed);
		shape[k] = shp[k];
	}
	char err[256];
	int rc = dam_npz_write(out, 7, names, rank, shape, (const double *const *)data, err, sizeof err);
	if (rc)
		fprintf(stderr, "et_scale: %s: %s\n", out, err);
	for (int k = 0; k < 7; k++)
		free(data[k]);
	return rc ? 1 : 0;
}

/* ---- bench ---------------------------------------------------------------------- */

typedef struct Bench {
	int64_t D, L, M, nsteps;
	int reps, creps;
	const char *npz;
	char defs[4][4200];
	const char *dv[4];
	int *tok;                 /* NB * L */
	HandEt he;
	DamModel *m;
	double ref_logits[2 * NB], *ref_v;   /* plain C, the reference */
} Bench;

/* One row of results: times of the passes, the differences to plain C. */
typedef struct Side {
	const char *name;
	double t[MAXREPS];
	double dlog, dv;          /* max |logit - ref| / max(1, |ref|), the same for v */
	int on;
} Side;

static void bench_defs(Bench *B)
{
	snprintf(B->defs[0], sizeof B->defs[0], "D=%lld", (long long)B->D);
	snprintf(B->defs[1], sizeof B->defs[1], "L=%lld", (long long)B->L);
	snprintf(B->defs[2], sizeof B->defs[2], "M=%lld", (long long)B->M);
	snprintf(B->defs[3], sizeof B->defs[3], "weights=%s", B->npz);
	for (int i = 0; i < 4; i++)
		B->dv[i] = B->defs[i];
}

static void bench_tokens(Bench *B)
{
	uint64_t seed = 12345;
	B->tok = malloc((size_t)(NB * B->L) * sizeof *B->tok);
	for (int64_t k = 0; k < NB * B->L; k++)
		B->tok[k] = es_urand(&seed) < 0.5 ? 0 : 1;
}

static DamModel *bench_compile(Bench *B, double *ms)
{
	DamCompileOptions co = { .defines = B->dv, .ndefines = 4, .opt_level = -1 };
	char *err = NULL;
	double t0 = bench_now_ms();
	DamModel *m = dam_compile_file("examples/parity_et.dam", &co, &err);
	*ms = bench_now_ms() - t0;
	if (!m) {
		fprintf(stderr, "%s", err ? err : "et_scale: compile failed\n");
		dam_string_free(err);
	}
	return m;
}

static double rel_diff(const double *a, const double *b, size_t n)
{
	double e = 0;
	for (size_t i = 0; i < n; i++)
		e = fmax(e, fabs(a[i] - b[i]) / fmax(1.0, fabs(b[i])));
	return e;
}

/* The public API pass: returns 0, or -1 after printing the error. */
static int damc_pass(Bench *B, int64_t nsteps, double *logits, double *v)
{
	DamRunOptions o;
	dam_run_options_default(&o);
	o.dt = DT;
	o.t_end = DT * (double)nsteps;
	o.check_every = nsteps;
	o.diverge_limit = 1e6;
	for (int b = 0; b < NB; b++) {
		DamRunInfo info;
		if (dam_set_tokens(B->m, "tok", B->tok + b * B->L, (size_t)B->L) ||
		    dam_run(B->m, &o, &info) || dam_get_output(B->m, "logits", logits + 2 * b, 2) ||
		    dam_get_state(B->m, "v", v + b * B->D, (size_t)B->D)) {
			fprintf(stderr, "et_scale: string %d: %s\n", b, dam_errmsg(B->m));
			return -1;
		}
		if (info.steps != nsteps) {
			fprintf(stderr, "et_scale: string %d: %lld steps, expected %lld\n", b,
			        (long long)info.steps, (long long)nsteps);
			return -1;
		}
	}
	return 0;
}

/* The two timed uses of damc_pass, apart for callgrind --toggle-collect. */
__attribute__((noinline, noclone)) static int damc_steps(Bench *B, double *logits, double *v)
{
	return damc_pass(B, B->nsteps, logits, v);
}

__attribute__((noinline, noclone)) static int damc_one_step(Bench *B, double *logits, double *v)
{
	return damc_pass(B, 1, logits, v);
}

/* The driver's batched kernel (internal API), one thread. */
typedef struct Batch {
	Arena a;
	Diags d;
	Model *model;
	Jit *jit;
	DamSim *s[NB];
	int ok;
	double fe_ms, jit_ms;
} Batch;

static void batch_open(Batch *T, Bench *B)
{
	memset(T, 0, sizeof *T);
	arena_init(&T->a);
	diags_init(&T->d, &T->a);
	FrontendOptions fo = { .defines = B->dv, .ndefines = 4 };
	double t0 = bench_now_ms();
	T->model = dam_frontend_compile("examples/parity_et.dam", &fo, &T->d, &T->a);
	double t1 = bench_now_ms();
	char err[512] = "";
	JitOptions jo = { .opt_level = 3 };
	T->jit = T->model ? jit_compile_flags(T->model, &jo, JIT_BATCH, err, sizeof err) : NULL;
	T->fe_ms = t1 - t0;
	T->jit_ms = bench_now_ms() - t1;
	if (!T->jit) {
		fprintf(stderr, "et_scale: batch compile: %s\n", err);
		return;
	}
	double mb = (double)NB * (double)jit_kernels(T->jit)->ws_size * 8.0 / 1048576.0;
	const char *lim = getenv("DAM_ET_BATCH_MB");
	if (mb > (lim ? atof(lim) : 3000.0)) {
		printf("    batch: skipped (64 workspaces of %.0f MB each = %.0f MB; DAM_ET_BATCH_MB)\n",
		       mb / NB, mb);
		return;
	}
	double *tk = malloc((size_t)B->L * sizeof *tk);
	for (int b = 0; b < NB; b++) {
		T->s[b] = sim_new(T->model, T->jit);
		for (int64_t k = 0; k < B->L; k++)
			tk[k] = B->tok[b * B->L + k];
		sim_set_input(T->s[b], 0, tk, (size_t)B->L, err, sizeof err);
	}
	free(tk);
	T->ok = 1;
}

static int batch_pass(Batch *T, Bench *B, double *logits, double *v, int64_t nsteps, int threads)
{
	DamRunOpts o;
	dam_run_opts_default(&o);
	o.dt = DT;
	o.t_end = DT * (double)nsteps;
	o.check_every = nsteps;
	static DamRunResult res[NB];
	int batched = sim_run_batch(T->s, NB, &o, res, NULL, 0, threads);
	for (int b = 0; b < NB; b++) {
		sim_outputs(T->s[b], logits + 2 * b);
		memcpy(v + b * B->D, sim_state(T->s[b]), (size_t)B->D * sizeof *v);
	}
	return batched;
}

static void batch_close(Batch *T)
{
	for (int b = 0; b < NB; b++)
		sim_free(T->s[b]);
	jit_free(T->jit);
	diags_free(&T->d);
	arena_free(&T->a);
}

static void side_check(Side *s, const Bench *B, const double *logits, const double *v)
{
	s->dlog = fmax(s->dlog, rel_diff(logits, B->ref_logits, 2 * NB));
	s->dv = fmax(s->dv, rel_diff(v, B->ref_v, (size_t)(NB * B->D)));
}

static void side_print(const Side *s, const Bench *B, const Side *ref)
{
	if (!s->on)
		return;
	double med = median(s->t, B->reps), n = (double)B->nsteps;
	double ns = 1e6 * med / (NB * n), gf = flops_per_step(B->D, B->L, B->M) * NB * n / (med * 1e6);
	printf("    %-22s median %10.2f ms  %12.1f ns/step/string  %7.2f GFLOP/s  x%6.2f vs plain C"
	       "  max rel diff logits %.1e  v %.1e\n",
	       s->name, med, ns, gf, med / median(ref->t, B->reps), s->dlog, s->dv);
	printf("row D=%lld %s ns=%.1f gflops=%.3f ms=%.3f dlog=%.2e\n", (long long)B->D, s->name, ns, gf,
	       med, s->dlog);
}

enum { S_DAMC, S_DAMC1, S_BATCH, S_BATCH1, S_BATCH2, S_BATCH21, S_HAND, S_AXPY, S_BLAS1, S_BLAS2, S_BLAS21, S_N };

static int bench_passes(Bench *B, Side *S, Batch *T)
{
	size_t nv = (size_t)(NB * B->D);
	double lg[2 * NB], *v = malloc(nv * sizeof *v);
	for (int r = 0; r < B->reps; r++) {
		double t0 = bench_now_ms();
		hand_et_run(&B->he, B->tok, NB, DT, B->nsteps, B->ref_logits, B->ref_v);
		S[S_HAND].t[r] = bench_now_ms() - t0;
		t0 = bench_now_ms();
		if (damc_steps(B, lg, v))
			return -1;
		S[S_DAMC].t[r] = bench_now_ms() - t0;
		side_check(&S[S_DAMC], B, lg, v);
		t0 = bench_now_ms();
		if (damc_one_step(B, lg, v))
			return -1;
		S[S_DAMC1].t[r] = bench_now_ms() - t0;
		if (T->ok) {
			t0 = bench_now_ms();
			int used = batch_pass(T, B, lg, v, B->nsteps, 1);
			S[S_BATCH].t[r] = bench_now_ms() - t0;
			side_check(&S[S_BATCH], B, lg, v);
			if (!used)
				S[S_BATCH].name = "damc batch (FALLBACK)";
			t0 = bench_now_ms();
			batch_pass(T, B, lg, v, B->nsteps, 2);
			S[S_BATCH2].t[r] = bench_now_ms() - t0;
			side_check(&S[S_BATCH2], B, lg, v);
			t0 = bench_now_ms();
			batch_pass(T, B, lg, v, 1, 1);
			S[S_BATCH1].t[r] = bench_now_ms() - t0;
			t0 = bench_now_ms();
			batch_pass(T, B, lg, v, 1, 2);
			S[S_BATCH21].t[r] = bench_now_ms() - t0;
		}
		t0 = bench_now_ms();
		hand_et_run_axpy(&B->he, B->tok, NB, DT, B->nsteps, lg, v);
		S[S_AXPY].t[r] = bench_now_ms() - t0;
		side_check(&S[S_AXPY], B, lg, v);
		for (int th = 1; th <= 2 && S[S_BLAS1 + th - 1].on; th++) {
			t0 = bench_now_ms();
			hand_et_run_blas(&B->he, B->tok, NB, DT, B->nsteps, lg, v, th);
			S[S_BLAS1 + th - 1].t[r] = bench_now_ms() - t0;
			side_check(&S[S_BLAS1 + th - 1], B, lg, v);
		}
		if (S[S_BLAS21].on) {
			t0 = bench_now_ms();
			hand_et_run_blas(&B->he, B->tok, NB, DT, 1, lg, v, 2);
			S[S_BLAS21].t[r] = bench_now_ms() - t0;
		}
		printf("    pass %d:", r + 1);
		for (int k = 0; k < S_N; k++)
			if (S[k].on)
				printf("  %s %.1f", S[k].name, S[k].t[r]);
		printf(" ms\n");
		fflush(stdout);
	}
	free(v);
	return 0;
}

static void bench_report(Bench *B, Side *S, const double *tc)
{
	double n = (double)B->nsteps;
	printf("  FLOPs per Euler step per string F = 4D(L+M) + 3D + 8L + 3M = %.0f\n",
	       flops_per_step(B->D, B->L, B->M));
	for (int k = 0; k < S_N; k++)
		if (k != S_DAMC1 && k != S_BATCH1 && k != S_BATCH21 && k != S_BLAS21)
			side_print(&S[k], B, &S[S_HAND]);
	double t1 = median(S[S_DAMC1].t, B->reps), tn = median(S[S_DAMC].t, B->reps);
	printf("    damc, 1 step per run:  median %.2f ms (%.1f us per dam_run: setup + 1 step)\n", t1,
	       1e3 * t1 / NB);
	if (B->nsteps > 1)
		printf("    damc, steps alone: (T(%lld) - T(1)) / (64 x %lld) = %.1f ns/step/string, %.2f GFLOP/s\n",
		       (long long)B->nsteps, (long long)B->nsteps - 1, 1e6 * (tn - t1) / (NB * (n - 1)),
		       flops_per_step(B->D, B->L, B->M) * NB * (n - 1) / ((tn - t1) * 1e6));
	double b1 = median(S[S_BATCH1].t, B->reps), bn = median(S[S_BATCH].t, B->reps);
	if (S[S_BATCH].on && B->nsteps > 1)
		printf("    damc batch, steps alone: (T(%lld) - T(1)) / (64 x %lld) = %.1f ns/step/string, %.2f GFLOP/s"
		       " (1-step pass %.2f ms: setup, packing, checks)\n",
		       (long long)B->nsteps, (long long)B->nsteps - 1, 1e6 * (bn - b1) / (NB * (n - 1)),
		       flops_per_step(B->D, B->L, B->M) * NB * (n - 1) / ((bn - b1) * 1e6), b1);
	if (S[S_BATCH2].on && S[S_BLAS21].on && B->nsteps > 1) {
		double d = median(S[S_BATCH2].t, B->reps) - median(S[S_BATCH21].t, B->reps);
		double o = median(S[S_BLAS2].t, B->reps) - median(S[S_BLAS21].t, B->reps);
		printf("    steps alone on 2 threads, (T(%lld) - T(1)) / (64 x %lld): damc batch %.1f ns/step/string"
		       " (%.2f GFLOP/s), OpenBLAS %.1f (%.2f GFLOP/s)\n", (long long)B->nsteps, (long long)B->nsteps - 1,
		       1e6 * d / (NB * (n - 1)), flops_per_step(B->D, B->L, B->M) * NB * (n - 1) / (d * 1e6),
		       1e6 * o / (NB * (n - 1)), flops_per_step(B->D, B->L, B->M) * NB * (n - 1) / (o * 1e6));
	}
	printf("    compile (dam_compile_file, .dam + weights to native code): median %.1f ms of %d\n",
	       median(tc, B->creps), B->creps);
	printf("row D=%lld compile ms=%.1f\n", (long long)B->D, median(tc, B->creps));
}

static int cmd_bench(Bench *B)
{
	char err[512];
	bench_defs(B);
	bench_tokens(B);
	if (hand_et_load(&B->he, B->npz, B->D, B->L, B->M, err, sizeof err)) {
		fprintf(stderr, "et_scale: %s\n", err);
		return 1;
	}
	B->ref_v = malloc((size_t)(NB * B->D) * sizeof *B->ref_v);
	printf("D = M = %lld, L = %lld: %d strings, Euler dt %g, %lld steps, %d passes\n",
	       (long long)B->D, (long long)B->L, NB, DT, (long long)B->nsteps, B->reps);
	double tc[MAXREPS];
	for (int r = 0; r < B->creps; r++) {
		if (B->m)
			dam_model_free(B->m);
		if (!(B->m = bench_compile(B, &tc[r])))
			return 1;
	}
	const char *w = dam_warnings(B->m);
	if (w && *w)
		printf("    damc warnings: %.*s\n", (int)strcspn(w, "\n"), w);
	Batch T;
	batch_open(&T, B);
	if (T.jit)
		printf("    batch kernel compile: front end %.1f ms, JIT (with JIT_BATCH) %.1f ms: code generation "
		       "%.1f ms, the static block (packed weights) and the rest %.1f ms\n", T.fe_ms, T.jit_ms,
		       jit_kernels(T.jit)->codegen_ms, T.jit_ms - jit_kernels(T.jit)->codegen_ms);
	if (T.model) {               /* the one-string kernels alone, as dam_compile_file makes them */
		JitOptions jo = { .opt_level = 3 };
		char err[512] = "";
		Jit *one = jit_compile(T.model, &jo, err, sizeof err);
		if (one) {
			printf("    one-string kernels: code generation %.1f ms\n", jit_kernels(one)->codegen_ms);
			printf("row D=%lld codegen ms=%.1f\n", (long long)B->D, jit_kernels(one)->codegen_ms);
			jit_free(one);
		}
	}
	Side S[S_N] = {
		[S_DAMC] = { "damc (dam_run)", .on = 1 }, [S_DAMC1] = { "damc 1 step" },
		[S_BATCH] = { "damc batch (internal)", .on = T.ok }, [S_BATCH1] = { "damc batch 1 step", .on = T.ok },
		[S_BATCH2] = { "damc batch 2 threads", .on = T.ok }, [S_HAND] = { "plain C", .on = 1 },
		[S_AXPY] = { "plain C axpy", .on = 1 }, [S_BLAS1] = { "OpenBLAS 1 thread", .on = 1 },
		[S_BLAS2] = { "OpenBLAS 2 threads", .on = !getenv("DAM_ET_NO_BLAS2") },
		[S_BATCH21] = { "damc batch 1 step 2 thr", .on = T.ok },
		[S_BLAS21] = { "OpenBLAS 1 step 2 thr", .on = !getenv("DAM_ET_NO_BLAS2") },
	};
	int rc = bench_passes(B, S, &T);
	if (!rc)
		bench_report(B, S, tc);
	printf("    peak RSS of this process: %.0f MB\n", max_rss_mb());
	batch_close(&T);
	dam_model_free(B->m);
	hand_et_free(&B->he);
	free(B->tok);
	free(B->ref_v);
	return rc ? 1 : 0;
}

/* ---- mem: one pass of one step, then the peak RSS -------------------------------- */

static int cmd_mem(Bench *B, const char *what)
{
	char err[512];
	double ms, lg[2 * NB];
	bench_defs(B);
	bench_tokens(B);
	double *v = malloc((size_t)(NB * B->D) * sizeof *v);
	if (!strcmp(what, "damc")) {
		if (!(B->m = bench_compile(B, &ms)) || damc_pass(B, 1, lg, v))
			return 1;
		dam_model_free(B->m);
	} else {
		if (hand_et_load(&B->he, B->npz, B->D, B->L, B->M, err, sizeof err)) {
			fprintf(stderr, "et_scale: %s\n", err);
			return 1;
		}
		if (!strcmp(what, "hand"))
			hand_et_run(&B->he, B->tok, NB, DT, 1, lg, v);
		else
			hand_et_run_blas(&B->he, B->tok, NB, DT, 1, lg, v, 1);
		hand_et_free(&B->he);
	}
	printf("row D=%lld mem %s maxrss_mb=%.0f\n", (long long)B->D, what, max_rss_mb());
	free(v);
	free(B->tok);
	return 0;
}

/* ---- end to end: parity_et on a dataset, by hand --------------------------------- */

static int read_rows(const char *path, int tok[][8], int max)
{
	FILE *f = fopen(path, "r");
	int n = 0;
	if (!f)
		return -1;
	while (n < max) {
		int k = 0;
		while (k < 8 && fscanf(f, "%d", &tok[n][k]) == 1)
			k++;
		if (k < 8)
			break;
		n++;
	}
	fclose(f);
	return n;
}

/* The "logits":[x,y] of each JSON line of damc run --json, in order. */
static int read_damc_json(const char *path, double (*lg)[2], int max)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int n = 0;
	if (!f)
		return -1;
	while (n < max && fgets(line, sizeof line, f)) {
		char *p = strstr(line, "\"logits\":[");
		if (!p)
			continue;
		p += 10;
		lg[n][0] = strtod(p, &p);
		lg[n][1] = strtod(p + 1, NULL);
		n++;
	}
	fclose(f);
	return n;
}

static int cmd_e2e(const char *npz, const char *data, const char *json)
{
	static int tok[1024][8];
	static double lg[1024][2], dj[1024][2];
	HandParity hp;
	char err[512];
	if (hand_parity_load(&hp, npz, err, sizeof err)) {
		fprintf(stderr, "et_scale: %s\n", err);
		return 1;
	}
	int n = read_rows(data, tok, 1024);
	if (n <= 0) {
		fprintf(stderr, "et_scale: %s: no rows\n", data);
		return 1;
	}
	for (int s = 0; s < n; s++)
		hand_parity_run(&hp, tok[s], 1e-4, 10000, lg[s]);
	if (!json) {
		printf("%d strings, logit[0] of the first %.17g\n", n, lg[0][0]);
		return 0;
	}
	int nj = read_damc_json(json, dj, 1024);
	double d = 0, r = 0;
	int agree = 0;
	for (int s = 0; s < n && s < nj; s++) {
		for (int k = 0; k < 2; k++) {
			d = fmax(d, fabs(dj[s][k] - lg[s][k]));
			r = fmax(r, fabs(dj[s][k] - lg[s][k]) / fmax(1.0, fabs(lg[s][k])));
		}
		agree += (dj[s][1] > dj[s][0]) == (lg[s][1] > lg[s][0]);
	}
	printf("    max |logit_damc - logit_hand| = %.2e (relative %.2e) over %d strings (damc printed %d);"
	       " same prediction on %d/%d\n", d, r, n, nj, agree, n);
	return nj == n ? 0 : 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: et_scale weights OUT.npz D L M SEED\n"
	                "       et_scale bench D L M NSTEPS REPS CREPS NPZ\n"
	                "       et_scale mem damc|hand|blas D L M NPZ\n"
	                "       et_scale e2e-hand NPZ DATASET | e2e-cmp NPZ DATASET DAMC.json\n");
	return 2;
}

int main(int argc, char **argv)
{
	static Bench B;
	if (argc == 7 && !strcmp(argv[1], "weights"))
		return cmd_weights(argv[2], atoll(argv[3]), atoll(argv[4]), atoll(argv[5]),
		                   (uint64_t)atoll(argv[6]));
	if (argc == 9 && !strcmp(argv[1], "bench")) {
		B.D = atoll(argv[2]), B.L = atoll(argv[3]), B.M = atoll(argv[4]);
		B.nsteps = atoll(argv[5]), B.reps = atoi(argv[6]), B.creps = atoi(argv[7]);
		B.npz = argv[8];
		if (B.D < 1 || B.L < 1 || B.M < 1 || B.nsteps < 1 || B.reps < 1 || B.reps > MAXREPS ||
		    B.creps < 1 || B.creps > MAXREPS)
			return usage();
		return cmd_bench(&B);
	}
	if (argc == 7 && !strcmp(argv[1], "mem")) {
		B.D = atoll(argv[3]), B.L = atoll(argv[4]), B.M = atoll(argv[5]);
		B.npz = argv[6];
		return cmd_mem(&B, argv[2]);
	}
	if (argc == 4 && !strcmp(argv[1], "e2e-hand"))
		return cmd_e2e(argv[2], argv[3], NULL);
	if (argc == 5 && !strcmp(argv[1], "e2e-cmp"))
		return cmd_e2e(argv[2], argv[3], argv[4]);
	return usage();
}
