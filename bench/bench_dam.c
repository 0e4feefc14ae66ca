/* bench_dam.c - timings of damc (not a test: run by bench/bench.sh).
 *
 *   bench_dam [--quick] [--only jit|hand] [--reps N] WEIGHTS.npz DATA_DIR
 *
 * (a) parity_et over all 256 8-bit strings, forward Euler dt = 1e-4, T = 1,
 *     one thread: the JIT through the public API (dam_run, fused Euler
 *     kernel, checks only at the end) against the same model by hand in
 *     plain C (hand_parity.c, -O3 -march=native), alternating in the same
 *     process; medians of N passes (default 5), their ratio, the largest
 *     logit difference and the accuracy of both on the 52 validation strings.
 * (b) XOR and Hamming(7,4) end to end through the API: compile, then 4 / 112
 *     runs (Euler dt 1e-3, T = 5, the examples' Lua settings); median of 10.
 * (c) compile time from .dam to ready native code: front end ms and JIT ms
 *     (dam_frontend_compile, jit_compile), median of 10, for the examples.
 *
 * --quick: (a) only, on 8 strings with T = 0.1 and one pass (for valgrind
 * --tool=callgrind: bench.sh counts instructions with --toggle-collect on
 * dam_run and hand_parity_run).  --only runs (a) alone, for one side (perf).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "dam.h"
#include "frontend.h"
#include "hand_parity.h"
#include "jit.h"

#define NSTR 256
#define MAXREPS 32

typedef struct Bench {
	const char *weights, *data, *only;
	int quick, reps;
	char def[4200];
} Bench;

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void bits_of(int s, int tok[8])
{
	for (int i = 0; i < 8; i++)
		tok[i] = (s >> (7 - i)) & 1;   /* most significant first, as the dataset */
}

/* ---- (a) parity ------------------------------------------------------------- */

static DamModel *compile_parity(Bench *B)
{
	snprintf(B->def, sizeof B->def, "weights=%s", B->weights);
	const char *defs[] = { B->def };
	const char *bake = getenv("DAM_BAKE_WEIGHTS"), *fexp = getenv("DAM_FAST_EXP");
	DamCompileOptions co = { .defines = defs, .ndefines = 1, .opt_level = -1,
	                         .bake_weights = bake && *bake == '1', .fast_exp = fexp && *fexp == '1' };
	char *err = NULL;
	DamModel *m = dam_compile_file("examples/parity_et.dam", &co, &err);
	if (!m) {
		fprintf(stderr, "%s", err ? err : "compile failed\n");
		dam_string_free(err);
	}
	return m;
}

static int jit_pass(DamModel *m, int n, double t_end, double *logits)
{
	DamRunOptions o;
	dam_run_options_default(&o);
	o.dt = 1e-4;
	o.t_end = t_end;
	o.check_every = (int64_t)llround(t_end / o.dt);   /* one fused call, checks at the end */
	o.diverge_limit = 1e6;
	for (int s = 0; s < n; s++) {
		int tok[8];
		bits_of(s, tok);
		if (dam_set_tokens(m, "tok", tok, 8) || dam_run(m, &o, NULL) ||
		    dam_get_output(m, "logits", logits + 2 * s, 2)) {
			fprintf(stderr, "bench: run %d: %s\n", s, dam_errmsg(m));
			return -1;
		}
	}
	return 0;
}

typedef void (*HandFn)(const HandParity *, const int *, double, int64_t, double *);

static void hand_pass(HandFn fn, const HandParity *hp, int n, double t_end, double *logits)
{
	int64_t nsteps = llround(t_end / 1e-4);
	for (int s = 0; s < n; s++) {
		int tok[8];
		bits_of(s, tok);
		fn(hp, tok, 1e-4, nsteps, logits + 2 * s);
	}
}

/* Accuracy on the validation strings (DATA/parity_data_test_{X,y}.txt). */
static int accuracy(const Bench *B, const double *logits, int *total)
{
	char px[4096], py[4096];
	snprintf(px, sizeof px, "%s/parity_data_test_X.txt", B->data);
	snprintf(py, sizeof py, "%s/parity_data_test_y.txt", B->data);
	FILE *fx = fopen(px, "r"), *fy = fopen(py, "r");
	int right = 0, n = 0;
	*total = 0;
	if (!fx || !fy) {
		if (fx) fclose(fx);
		if (fy) fclose(fy);
		return -1;
	}
	for (;;) {
		int bits[8], y, s = 0, k;
		for (k = 0; k < 8 && fscanf(fx, "%d", &bits[k]) == 1; k++)
			s = 2 * s + bits[k];
		if (k < 8 || fscanf(fy, "%d", &y) != 1)
			break;
		right += (logits[2 * s + 1] > logits[2 * s]) == y;
		n++;
	}
	fclose(fx);
	fclose(fy);
	*total = n;
	return right;
}

static int bench_parity(Bench *B)
{
	HandParity hp;
	char err[512];
	if (hand_parity_load(&hp, B->weights, err, sizeof err)) {
		fprintf(stderr, "bench: %s\n", err);
		return -1;
	}
	DamModel *m = compile_parity(B);
	if (!m)
		return -1;
	int n = B->quick ? 8 : NSTR, reps = B->quick ? 1 : B->reps;
	double t_end = B->quick ? 0.1 : 1.0;
	static double lj[2 * NSTR], lh[2 * NSTR], ln[2 * NSTR];
	double tj[MAXREPS], th[MAXREPS], tn[MAXREPS];
	int do_jit = !B->only || !strcmp(B->only, "jit"), do_hand = !B->only || !strcmp(B->only, "hand");
	printf("(a) parity_et: %d strings, Euler dt 1e-4, T = %g (%lld steps each), 1 thread, %d passes\n",
	       n, t_end, llround(t_end / 1e-4), reps);
	for (int r = 0; r < reps; r++) {
		double t0 = bench_now_ms();
		if (do_jit && jit_pass(m, n, t_end, lj)) {
			dam_model_free(m);
			return -1;
		}
		double t1 = bench_now_ms();
		if (do_hand)
			hand_pass(hand_parity_run, &hp, n, t_end, lh);
		double t2 = bench_now_ms();
		if (do_hand && !B->quick)
			hand_pass(hand_parity_run_axpy, &hp, n, t_end, ln);
		double t3 = bench_now_ms();
		tj[r] = t1 - t0;
		th[r] = t2 - t1;
		tn[r] = t3 - t2;
		printf("    pass %d: jit %8.1f ms   hand C %8.1f ms   hand C axpy %8.1f ms\n", r + 1, tj[r],
		       th[r], tn[r]);
	}
	double mj = median(tj, reps), mh = median(th, reps), mn = median(tn, reps);
	if (do_jit)
		printf("    jit    median %8.1f ms  (%.3f us per run, %.1f ns per Euler step)\n", mj,
		       1e3 * mj / n, 1e6 * mj / n / (double)llround(t_end / 1e-4));
	if (do_hand)
		printf("    hand C median %8.1f ms  (%.3f us per run, %.1f ns per Euler step)\n", mh,
		       1e3 * mh / n, 1e6 * mh / n / (double)llround(t_end / 1e-4));
	if (do_jit && do_hand) {
		double d = 0;
		for (int i = 0; i < 2 * n; i++)
			d = fmax(d, fabs(lj[i] - lh[i]));
		int agree = 0;
		for (int s = 0; s < n; s++)
			agree += (lj[2 * s + 1] > lj[2 * s]) == (lh[2 * s + 1] > lh[2 * s]);
		if (!B->quick)
			printf("    hand C axpy median %8.1f ms (loops in axpy order, see hand_parity.c)\n", mn);
		printf("    ratio jit / hand C = %.3f", mj / mh);
		if (!B->quick)
			printf("   (jit / hand C axpy = %.3f)", mj / mn);
		printf("\n");
		printf("    max |logit_jit - logit_hand| = %.3g over %d strings; same prediction on %d/%d\n",
		       d, n, agree, n);
		if (!B->quick) {
			double dn = 0;
			for (int i = 0; i < 2 * n; i++)
				dn = fmax(dn, fabs(lj[i] - ln[i]));
			printf("    max |logit_jit - logit_hand_axpy| = %.3g\n", dn);
		}
		if (!B->quick) {
			int tot, aj = accuracy(B, lj, &tot), ah = accuracy(B, lh, &tot);
			printf("    accuracy on the %d validation strings: jit %d/%d, hand C %d/%d\n", tot, aj,
			       tot, ah, tot);
			int all = 0;
			for (int s = 0; s < n; s++) {
				int p = __builtin_popcount((unsigned)s) & 1;
				all += (lj[2 * s + 1] > lj[2 * s]) == p;
			}
			printf("    accuracy on all 256 strings (parity rule): jit %d/256\n", all);
		}
	}
	if (do_jit && !B->quick && !B->only) {
		/* The same pass with the default checks (energy etc. every step). */
		DamRunOptions o;
		dam_run_options_default(&o);
		o.dt = 1e-4;
		double t0 = bench_now_ms();
		for (int s = 0; s < n; s++) {
			int tok[8];
			bits_of(s, tok);
			dam_set_tokens(m, "tok", tok, 8);
			dam_run(m, &o, NULL);
		}
		printf("    jit with check_every = 1 (energy/divergence checked every step): %.1f ms (1 pass)\n",
		       bench_now_ms() - t0);
	}
	dam_model_free(m);
	return 0;
}

/* ---- (b) end to end ------------------------------------------------------------ */

static void hamming_word(int r, double w[7])
{
	int d = r / 7, bit = r % 7;
	int d1 = (d >> 3) & 1, d2 = (d >> 2) & 1, d3 = (d >> 1) & 1, d4 = d & 1;
	int c[7] = { d1, d2, d3, d4, d2 ^ d3 ^ d4, d1 ^ d3 ^ d4, d1 ^ d2 ^ d4 };
	c[bit] ^= 1;
	for (int i = 0; i < 7; i++)
		w[i] = c[i];
}

/* Compile + runs; returns ms, or -1.  *good counts correct answers. */
static double e2e_once(const char *path, int hamming, int *good)
{
	double t0 = bench_now_ms();
	char *err = NULL;
	DamModel *m = dam_compile_file(path, NULL, &err);
	if (!m) {
		fprintf(stderr, "%s", err ? err : "");
		dam_string_free(err);
		return -1;
	}
	DamRunOptions o;
	dam_run_options_default(&o);
	o.t_end = 5;
	*good = 0;
	int runs = hamming ? 112 : 4;
	for (int r = 0; r < runs; r++) {
		double in[7], out[7];
		if (hamming)
			hamming_word(r, in);
		else {
			in[0] = r >> 1;
			in[1] = r & 1;
		}
		if (dam_set_input(m, hamming ? "word" : "bits", in, hamming ? 7 : 2) ||
		    dam_run(m, &o, NULL) || dam_get_output(m, hamming ? "code" : "y", out, hamming ? 7 : 1)) {
			fprintf(stderr, "bench: %s\n", dam_errmsg(m));
			break;
		}
		if (hamming) {
			double c[7];
			hamming_word(r, c);
			c[r % 7] = 1 - c[r % 7];      /* the codeword before the flip */
			int right = 1;
			for (int i = 0; i < 7; i++)
				right &= fabs(out[i] - c[i]) < 0.05;
			*good += right;
		} else {
			*good += fabs(out[0] - (double)((r >> 1) ^ (r & 1))) < 0.05;
		}
	}
	dam_model_free(m);
	return bench_now_ms() - t0;
}

static void bench_e2e(void)
{
	const char *name[2] = { "xor", "hamming74" };
	for (int h = 0; h < 2; h++) {
		char path[256];
		double t[10];
		int good = 0;
		snprintf(path, sizeof path, "examples/%s.dam", name[h]);
		for (int r = 0; r < 10; r++)
			t[r] = e2e_once(path, h, &good);
		double med = median(t, 10);
		printf("(b) %-9s compile + %3d runs (Euler dt 1e-3, T = 5): median %.1f ms over 10 "
		       "(min %.1f); %d/%d correct\n", name[h], h ? 112 : 4, med, t[0], good,
		       h ? 112 : 4);
	}
}

/* ---- (c) compile time ------------------------------------------------------------ */

static void bench_compile(Bench *B)
{
	const char *files[3] = { "examples/xor.dam", "examples/hamming74.dam", "examples/parity_et.dam" };
	for (int f = 0; f < 3; f++) {
		double tf[20], tj[20];
		const char *defs[] = { B->def };
		for (int r = 0; r < 20; r++) {   /* 10 compiles, then 10 with the object cache */
			Arena a;
			Diags d;
			arena_init(&a);
			diags_init(&d, &a);
			FrontendOptions fo = { .defines = defs, .ndefines = f == 2 };
			double t0 = bench_now_ms();
			Model *m = dam_frontend_compile(files[f], &fo, &d, &a);
			double t1 = bench_now_ms();
			char err[256];
			JitOptions jo = { .opt_level = 3, .cache = r >= 10 };   /* r = 10 fills it */
			Jit *j = m ? jit_compile(m, &jo, err, sizeof err) : NULL;
			double t2 = bench_now_ms();
			if (!j)
				diag_render(&d, stderr);
			jit_free(j);
			diags_free(&d);
			arena_free(&a);
			tf[r] = t1 - t0;
			tj[r] = t2 - t1;
		}
		double mf = median(tf, 10), mj = median(tj, 10), mc = median(tj + 11, 9);
		printf("(c) %-24s front end %6.2f ms   JIT %6.1f ms   total %6.1f ms  (median of 10)"
		       "   from the object cache: JIT %5.1f ms (median of 9)\n", files[f], mf, mj, mf + mj, mc);
	}
}

int main(int argc, char **argv)
{
	Bench B = { .reps = 5 };
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--quick"))
			B.quick = 1;
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			B.only = argv[++i];
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			B.reps = atoi(argv[++i]);
		else
			break;
	}
	if (argc - i != 2 || B.reps < 1 || B.reps > MAXREPS) {
		fprintf(stderr, "usage: bench_dam [--quick] [--only jit|hand] [--reps N] WEIGHTS.npz DATA_DIR\n");
		return 2;
	}
	B.weights = argv[i];
	B.data = argv[i + 1];
	if (bench_parity(&B))
		return 1;
	if (B.quick || B.only)
		return 0;
	bench_e2e();
	bench_compile(&B);
	return 0;
}
