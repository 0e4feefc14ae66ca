/* t_jit_fastexp.c - the JIT's inline exp (JitOptions.fast_exp) against glibc.
 *
 * One identity layer x[N] with the outputs exp(x[o]) and the softmax-style
 * logsumexp over x, compiled twice: by default (exp is the C library's, so
 * the outputs must equal glibc's exp bit for bit) and with fast_exp (exp is
 * inline straight-line code, jit_emit.c "exp").  The outputs() kernel is run
 * on 2 * 10^6 points: 1.6 * 10^6 spread evenly (plus a jitter) over [-745.2,
 * 709.8], which covers overflow, the subnormal results below -708.4 and
 * underflow, 4 * 10^5 in [-1, 1], and special values (+-0, +-inf, NaN, the
 * overflow and underflow thresholds and their neighbours, tiny arguments).
 * Stated bound: at most 1 ulp from glibc's exp (the distance of the bit
 * patterns, so subnormal results count in their own ulps) and less than 1 ulp
 * from the exact value (expl, long double: fractional ulps); the observed
 * maxima are printed.  The optimised IR of the fast compile must call no exp.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jit.h"
#include "tap.h"

enum { N = 4096 };

typedef struct FxModel {
	Arena arena;
	Model m;
	SymCtx *c;
} FxModel;

static void fx_build(FxModel *F)
{
	memset(F, 0, sizeof *F);
	arena_init(&F->arena);
	F->m.arena = &F->arena;
	F->m.sym = F->c = sym_new(&F->arena);
	SymCtx *c = F->c;
	int64_t n = N;
	TensorId x = sym_tensor_new(c, "x", 1, &n), g = sym_tensor_new(c, "g", 1, &n);
	IdxId j = sym_index_new(c, "j", N), k = sym_index_new(c, "k", N);
	IdxId i = sym_index_new(c, "i", N), o = sym_index_new(c, "o", N);
	Model *m = &F->m;
	m->ntensors = sym_tensor_count(c);
	m->tensors = arena_alloc(&F->arena, m->ntensors * sizeof *m->tensors);
	m->tensors[x] = (MTensor){.kind = MT_STATE, .layer = 0};
	m->tensors[g] = (MTensor){.kind = MT_ACT, .layer = 0};
	m->nlayers = 1;
	m->layers = arena_alloc(&F->arena, sizeof *m->layers);
	SymId xj = sym_idx(c, j), xo = sym_idx(c, o), xi = sym_idx(c, i);
	m->layers[0] = (MLayer){.name = "x", .n = N, .tau = 1, .x = x, .g = g, .j = j, .k = k,
	                        .act = sym_at(c, x, 1, &xj), .rhs = sym_neg(c, sym_at(c, x, 1, &xj))};
	m->noutputs = 2;
	m->outputs = arena_alloc(&F->arena, 2 * sizeof *m->outputs);
	m->outputs[0] = (MOutput){.name = "exp", .rank = 1, .n = N, .i = o,
	                          .expr = sym_fn(c, SYMFN_EXP, sym_at(c, x, 1, &xo))};
	m->outputs[1] = (MOutput){.name = "lse", .rank = 0, .n = 1,
	                          .expr = sym_reduce(c, SYM_LSE, i, sym_at(c, x, 1, &xi))};
	m->energy = sym_const(c, 0);
}

/* Distance of a and b in ulps: their bit patterns as ordered integers. */
static uint64_t ulp_dist(double a, double b)
{
	if (a != a || b != b)
		return (a != a) == (b != b) ? 0 : UINT64_MAX;
	int64_t ia, ib;
	memcpy(&ia, &a, sizeof ia);
	memcpy(&ib, &b, sizeof ib);
	if (ia < 0)
		ia = INT64_MIN - ia;
	if (ib < 0)
		ib = INT64_MIN - ib;
	return ia > ib ? (uint64_t)ia - (uint64_t)ib : (uint64_t)ib - (uint64_t)ia;
}

/* |got - exp(x)| in ulps of the double nearest exp(x), from expl; finite only. */
static double ulp_exact(double x, double got)
{
	long double want = expl((long double)x);
	double w = (double)want;
	if (!isfinite(w) || !isfinite(got))
		return 0;
	double ulp = nextafter(w, INFINITY) - w;
	return (double)(fabsl((long double)got - want) / (long double)ulp);
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double urand(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * 0x1p-53;
}

/* Point number p of the sweep (p < NPOINTS). */
enum { NSPREAD = 1600000, NSMALL = 400000, NPOINTS = NSPREAD + NSMALL };
static double sweep_point(long p, uint64_t *s)
{
	const double lo = -745.2, hi = 709.8;
	if (p < NSPREAD)
		return lo + (hi - lo) * ((double)p + urand(s)) / NSPREAD;
	return 2 * urand(s) - 1;
}

static const double special[] = {
	0.0, -0.0, INFINITY, -INFINITY, NAN, 1.0, -1.0, 0x1p-1074, -0x1p-1074, 1e-300, -1e-300,
	0x1p-54, -0x1p-54, 1e-9, 0.34657359027997264, -0.34657359027997264, 0.5, 2.0, 10.0, -10.0,
	0x1.62e42fefa39efp+9, 0x1.62e42fefa39f0p+9, 709.0, 710.0, 711.0, 1000.0, 1e300, -1e300,
	-0x1.74910d52d3051p+9, -0x1.74910d52d3052p+9, -0x1.74910d52d3050p+9, -745.0, -746.0,
	-1000.0, -708.3964185322641, -708.4, -708.39, -720.0, -744.44007192138122, -0x1.6232bdd7abcd2p+9,
	0x1.86bc88e2f7ed2p+8,
};

typedef struct Stats {
	uint64_t ulp_glibc;        /* fast vs glibc, max */
	double x_glibc;
	double ulp_exact;          /* fast vs expl, max (fractional) */
	double x_exact;
	long default_diff;         /* default compile: points that differ from glibc at all */
	long special_bad;          /* special values outside the bound */
} Stats;

static void check_one(Stats *S, double x, double fast, double dflt, bool is_special)
{
	double want = exp(x);
	uint64_t d = ulp_dist(fast, want);
	double fe = ulp_exact(x, fast);
	if (d > S->ulp_glibc) {
		S->ulp_glibc = d;
		S->x_glibc = x;
	}
	if (fe > S->ulp_exact) {
		S->ulp_exact = fe;
		S->x_exact = x;
	}
	if (memcmp(&dflt, &want, sizeof want) && !(dflt != dflt && want != want))
		S->default_diff++;
	if (is_special && d > 1) {
		S->special_bad++;
		diag("special x = %a: fast %a, glibc %a", x, fast, want);
	}
}

static Jit *fx_compile(FxModel *F, int fast, FILE *dump, char *err, size_t errlen)
{
	JitOptions o = {.opt_level = 3, .dump_ir = dump, .fast_exp = fast};
	return jit_compile(&F->m, &o, err, errlen);
}

/* The optimised IR of the fast compile: no exp call, and the width of the
 * vector code around the exponent bits (the exp's 2^k). */
static void check_ir(const char *ir)
{
	const char *call = strstr(ir, "@exp(");
	if (!call)
		call = strstr(ir, "@llvm.exp.");
	if (!ok(!call, "--fast-exp: the optimised IR calls no exp"))
		diag("%.*s", 120, call > ir + 60 ? call - 60 : ir);
	const char *w = strstr(ir, "<8 x double>") ? "8" : strstr(ir, "<4 x double>") ? "4"
	              : strstr(ir, "<2 x double>") ? "2" : NULL;
	ok(w != NULL, "--fast-exp: the exp loop is vectorised (<%s x double>)", w ? w : "none");
}

int main(void)
{
	FxModel F;
	char err[256] = "";
	plan(8);
	fx_build(&F);
	char *ir = NULL;
	size_t irlen = 0;
	FILE *dump = open_memstream(&ir, &irlen);
	Jit *jd = fx_compile(&F, 0, NULL, err, sizeof err);
	Jit *jf = fx_compile(&F, 1, dump, err, sizeof err);
	fclose(dump);
	if (!ok(jd && jf, "jit_compile with and without fast_exp"))
		diag("%s", err);
	if (!jd || !jf)
		return done_testing();
	const JitKernels *kd = jit_kernels(jd), *kf = jit_kernels(jf);
	double *wsd = calloc(kd->ws_size + 1, sizeof *wsd), *wsf = calloc(kf->ws_size + 1, sizeof *wsf);
	double *x = malloc(N * sizeof *x), *od = malloc(kd->noutput * sizeof *od);
	double *of = malloc(kf->noutput * sizeof *of);
	jit_ws_init(jd, &F.m, wsd);
	jit_ws_init(jf, &F.m, wsf);

	Stats S = {0};
	uint64_t seed = 0x9e3779b97f4a7c15u;
	long nspecial = (long)(sizeof special / sizeof *special), total = NPOINTS + nspecial, done = 0;
	double lse_rel = 0;
	while (done < total) {
		long n = total - done < N ? total - done : N;
		for (long i = 0; i < N; i++) {
			long p = done + (i < n ? i : 0);
			x[i] = p < nspecial ? special[p] : sweep_point(p - nspecial, &seed);
		}
		kd->outputs(wsd, x, od);
		kf->outputs(wsf, x, of);
		for (long i = 0; i < n; i++)
			check_one(&S, x[i], of[kf->output_off[0] + (size_t)i], od[kd->output_off[0] + (size_t)i],
			          done + i < nspecial);
		double ld = od[kd->output_off[1]], lf = of[kf->output_off[1]];
		if (isfinite(ld))
			lse_rel = fmax(lse_rel, fabs(lf - ld) / fmax(1, fabs(ld)));
		done += n;
	}
	diag("%ld points: max %llu ulp from glibc exp (at x = %.17g), max %.3f ulp from expl (at x = %.17g)",
	     done, (unsigned long long)S.ulp_glibc, S.x_glibc, S.ulp_exact, S.x_exact);
	ok(S.default_diff == 0, "default: exp is glibc's bit for bit (%ld of %ld differ)", S.default_diff, done);
	ok(S.ulp_glibc <= 1, "fast_exp: at most 1 ulp from glibc exp (max %llu)", (unsigned long long)S.ulp_glibc);
	ok(S.ulp_exact < 1.0, "fast_exp: under 1 ulp from the exact value (max %.3f)", S.ulp_exact);
	ok(S.special_bad == 0, "fast_exp: %ld special values (inf, NaN, thresholds, tiny) within 1 ulp",
	   nspecial);
	ok(lse_rel <= 1e-14, "fast_exp: logsumexp of the sweep's blocks within 1e-14 relative (%.3g)", lse_rel);
	check_ir(ir ? ir : "");
	free(ir);
	free(x);
	free(od);
	free(of);
	free(wsd);
	free(wsf);
	jit_free(jd);
	jit_free(jf);
	arena_free(&F.arena);
	return done_testing();
}
