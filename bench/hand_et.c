/* hand_et.c - the Analog ET family (examples/parity_et.dam with -D D=.. -D
 * L=.. -D M=..) by hand, compiled -O3 -march=native by bench/et_scale.sh: what
 * an engineer would write without damc.  The same integrator and formulas as
 * the model the JIT compiles:
 *
 *   keys[A][i] = embed_raw[tok[A]][i]^2,   W = hopf_raw^2            (L x D, M x D)
 *   g_v = v,  g_a = softmax(beta * h_a),  g_h = relu(h_h)
 *   tau_v dv/dt   = a + keys^T g_a + W^T g_h - v
 *   tau_h dh_a/dt = b + keys v - h_a
 *   tau_h dh_h/dt = c + W v - h_h
 *
 * v(0) = 0, h_a(0) = b, h_h(0) = c; forward Euler; logits = W_dec v + b_dec.
 * No -ffast-math: the compiler keeps every sum in source order.
 */
#include "hand_et.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_npz.h"

static void *he_alloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "hand_et: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

static int he_read(const char *npz, const char *key, double **dst, size_t n, char *err,
                   size_t errlen)
{
	return bench_npz_array(npz, key, n, dst, err, errlen);
}

int hand_et_load(HandEt *p, const char *npz, int64_t D, int64_t L, int64_t M, char *err,
                 size_t errlen)
{
	memset(p, 0, sizeof *p);
	p->D = D, p->L = L, p->M = M, p->V = 2;
	size_t d = (size_t)D, m = (size_t)M;
	if (he_read(npz, "xi_attn_embed_raw", &p->emb2, 2 * d, err, errlen) ||
	    he_read(npz, "xi_hopf_raw", &p->W, m * d, err, errlen) ||
	    he_read(npz, "a", &p->a, d, err, errlen) || he_read(npz, "b", &p->b, (size_t)L, err, errlen) ||
	    he_read(npz, "c", &p->c, m, err, errlen) ||
	    he_read(npz, "W_dec", &p->Wdec, 2 * d, err, errlen) ||
	    he_read(npz, "b_dec", &p->bdec, 2, err, errlen))
		return -1;
	for (size_t k = 0; k < 2 * d; k++)
		p->emb2[k] *= p->emb2[k];
	for (size_t k = 0; k < m * d; k++)
		p->W[k] *= p->W[k];
	p->WT = he_alloc(m * d * sizeof *p->WT);
	for (size_t r = 0; r < m; r++)
		for (size_t i = 0; i < d; i++)
			p->WT[i * m + r] = p->W[r * d + i];
	p->beta = 0.1;
	p->tau_v = 0.1;
	p->tau_h = 0.01;
	return 0;
}

void hand_et_free(HandEt *p)
{
	free(p->emb2);
	free(p->W);
	free(p->WT);
	free(p->a);
	free(p->b);
	free(p->c);
	free(p->Wdec);
	free(p->bdec);
	memset(p, 0, sizeof *p);
}

/* g = softmax(beta h) over n values, as exp(beta h - max) / sum. */
static void he_softmax(const double *h, int64_t n, double beta, double *g)
{
	double mx = -INFINITY, sum = 0;
	for (int64_t A = 0; A < n; A++)
		mx = fmax(mx, beta * h[A]);
	for (int64_t A = 0; A < n; A++)
		sum += g[A] = exp(beta * h[A] - mx);
	for (int64_t A = 0; A < n; A++)
		g[A] /= sum;
}

static void he_logits(const HandEt *p, const double *v, double *logits)
{
	for (int k = 0; k < 2; k++) {
		double s = p->bdec[k];
		for (int64_t i = 0; i < p->D; i++)
			s += p->Wdec[k * p->D + i] * v[i];
		logits[k] = s;
	}
}

static void he_keys(const HandEt *p, const int *tok, double *K)
{
	for (int64_t A = 0; A < p->L; A++)
		memcpy(K + A * p->D, p->emb2 + (int64_t)tok[A] * p->D, (size_t)p->D * sizeof *K);
}

/* Scratch of one string: state and right-hand sides. */
typedef struct HeStr {
	double *K, *v, *ha, *hh, *ga, *gh, *fv, *fa, *fh;
} HeStr;

static void he_str_new(HeStr *s, const HandEt *p)
{
	size_t D = (size_t)p->D, L = (size_t)p->L, M = (size_t)p->M;
	s->K = he_alloc(L * D * sizeof(double));
	s->v = he_alloc(D * sizeof(double));
	s->fv = he_alloc(D * sizeof(double));
	s->ha = he_alloc(L * sizeof(double));
	s->ga = he_alloc(L * sizeof(double));
	s->fa = he_alloc(L * sizeof(double));
	s->hh = he_alloc(M * sizeof(double));
	s->gh = he_alloc(M * sizeof(double));
	s->fh = he_alloc(M * sizeof(double));
}

static void he_str_free(HeStr *s)
{
	free(s->K), free(s->v), free(s->fv), free(s->ha), free(s->ga), free(s->fa);
	free(s->hh), free(s->gh), free(s->fh);
}

static void he_str_init(HeStr *s, const HandEt *p, const int *tok)
{
	he_keys(p, tok, s->K);
	memset(s->v, 0, (size_t)p->D * sizeof *s->v);
	memcpy(s->ha, p->b, (size_t)p->L * sizeof *s->ha);
	memcpy(s->hh, p->c, (size_t)p->M * sizeof *s->hh);
}

/* The activations and the leak/bias terms of one string; fv = a - v etc. */
static void he_prologue(const HandEt *p, HeStr *s)
{
	const int64_t D = p->D, L = p->L, M = p->M;
	he_softmax(s->ha, L, p->beta, s->ga);
	for (int64_t m = 0; m < M; m++)
		s->gh[m] = s->hh[m] > 0 ? s->hh[m] : 0;
	for (int64_t j = 0; j < D; j++)
		s->fv[j] = p->a[j] - s->v[j];
	for (int64_t A = 0; A < L; A++)
		s->fa[A] = p->b[A] - s->ha[A];
	for (int64_t m = 0; m < M; m++)
		s->fh[m] = p->c[m] - s->hh[m];
}

/* fv += K^T ga + W^T gh, in axpy order over the rows. */
static void he_back(const HandEt *p, HeStr *s)
{
	const int64_t D = p->D, L = p->L, M = p->M;
	double *restrict fv = s->fv;
	for (int64_t A = 0; A < L; A++) {
		const double *restrict k = s->K + A * D, g = s->ga[A];
		for (int64_t j = 0; j < D; j++)
			fv[j] += k[j] * g;
	}
	for (int64_t m = 0; m < M; m++) {
		const double *restrict w = p->W + m * D, g = s->gh[m];
		for (int64_t j = 0; j < D; j++)
			fv[j] += w[j] * g;
	}
}

static void he_update(const HandEt *p, HeStr *s, double dt)
{
	const double kv = dt / p->tau_v, kh = dt / p->tau_h;
	for (int64_t j = 0; j < p->D; j++)
		s->v[j] += kv * s->fv[j];
	for (int64_t A = 0; A < p->L; A++)
		s->ha[A] += kh * s->fa[A];
	for (int64_t m = 0; m < p->M; m++)
		s->hh[m] += kh * s->fh[m];
}

static void he_finish(const HandEt *p, const HeStr *s, int64_t b, double *logits, double *vout)
{
	he_logits(p, s->v, logits + 2 * b);
	if (vout)
		memcpy(vout + b * p->D, s->v, (size_t)p->D * sizeof *vout);
}

void hand_et_run(const HandEt *p, const int *tok, int64_t nb, double dt, int64_t nsteps,
                 double *logits, double *vout)
{
	const int64_t D = p->D, L = p->L, M = p->M;
	HeStr s;
	he_str_new(&s, p);
	for (int64_t b = 0; b < nb; b++) {
		he_str_init(&s, p, tok + b * L);
		for (int64_t t = 0; t < nsteps; t++) {
			he_prologue(p, &s);
			he_back(p, &s);
			for (int64_t A = 0; A < L; A++) {       /* scores: dot products */
				const double *k = s.K + A * D;
				double acc = s.fa[A];
				for (int64_t i = 0; i < D; i++)
					acc += k[i] * s.v[i];
				s.fa[A] = acc;
			}
			for (int64_t m = 0; m < M; m++) {
				const double *w = p->W + m * D;
				double acc = s.fh[m];
				for (int64_t i = 0; i < D; i++)
					acc += w[i] * s.v[i];
				s.fh[m] = acc;
			}
			he_update(p, &s, dt);
		}
		he_finish(p, &s, b, logits, vout);
	}
	he_str_free(&s);
}

void hand_et_run_axpy(const HandEt *p, const int *tok, int64_t nb, double dt, int64_t nsteps,
                      double *logits, double *vout)
{
	const int64_t D = p->D, L = p->L, M = p->M;
	HeStr s;
	he_str_new(&s, p);
	double *KT = he_alloc((size_t)(L * D) * sizeof *KT);
	for (int64_t b = 0; b < nb; b++) {
		he_str_init(&s, p, tok + b * L);
		for (int64_t A = 0; A < L; A++)
			for (int64_t i = 0; i < D; i++)
				KT[i * L + A] = s.K[A * D + i];
		for (int64_t t = 0; t < nsteps; t++) {
			he_prologue(p, &s);
			he_back(p, &s);
			double *restrict fa = s.fa, *restrict fh = s.fh;
			for (int64_t i = 0; i < D; i++) {         /* scores: axpy over KT rows */
				const double *restrict k = KT + i * L, vi = s.v[i];
				for (int64_t A = 0; A < L; A++)
					fa[A] += k[A] * vi;
			}
			for (int64_t i = 0; i < D; i++) {
				const double *restrict w = p->WT + i * M, vi = s.v[i];
				for (int64_t m = 0; m < M; m++)
					fh[m] += w[m] * vi;
			}
			he_update(p, &s, dt);
		}
		he_finish(p, &s, b, logits, vout);
	}
	free(KT);
	he_str_free(&s);
}

void hand_et_run_blas(const HandEt *p, const int *tok, int64_t nb, double dt, int64_t nsteps,
                      double *logits, double *vout, int threads)
{
	const int64_t D = p->D, L = p->L, M = p->M;
	const int nD = (int)D, nL = (int)L, nM = (int)M, nB = (int)nb;
	openblas_set_num_threads(threads);
	size_t bd = (size_t)(nb * D), bl = (size_t)(nb * L), bm = (size_t)(nb * M);
	double *K = he_alloc(bl * (size_t)D * sizeof *K);
	double *V = he_alloc(bd * sizeof *V), *FV = he_alloc(bd * sizeof *FV);
	double *HA = he_alloc(bl * sizeof *HA), *GA = he_alloc(bl * sizeof *GA), *FA = he_alloc(bl * sizeof *FA);
	double *HH = he_alloc(bm * sizeof *HH), *GH = he_alloc(bm * sizeof *GH), *FH = he_alloc(bm * sizeof *FH);
	for (int64_t b = 0; b < nb; b++) {
		he_keys(p, tok + b * L, K + b * L * D);
		memcpy(HA + b * L, p->b, (size_t)L * sizeof *HA);
		memcpy(HH + b * M, p->c, (size_t)M * sizeof *HH);
	}
	memset(V, 0, bd * sizeof *V);
	const double kv = dt / p->tau_v, kh = dt / p->tau_h;
	for (int64_t t = 0; t < nsteps; t++) {
		for (int64_t b = 0; b < nb; b++)
			he_softmax(HA + b * L, L, p->beta, GA + b * L);
		for (size_t k = 0; k < bm; k++)
			GH[k] = HH[k] > 0 ? HH[k] : 0;
		/* FH = V W^T (nb x M), FV = GH W (nb x D): the shared Hopfield block. */
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nB, nM, nD, 1.0, V, nD, p->W, nD, 0.0,
		            FH, nM);
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nB, nD, nM, 1.0, GH, nM, p->W, nD, 0.0,
		            FV, nD);
		/* The attention rows differ per string: FA_b = K_b v_b, FV_b += K_b^T g_b. */
		for (int64_t b = 0; b < nb; b++) {
			const double *Kb = K + b * L * D;
			cblas_dgemv(CblasRowMajor, CblasNoTrans, nL, nD, 1.0, Kb, nD, V + b * D, 1, 0.0,
			            FA + b * L, 1);
			cblas_dgemv(CblasRowMajor, CblasTrans, nL, nD, 1.0, Kb, nD, GA + b * L, 1, 1.0,
			            FV + b * D, 1);
		}
		for (int64_t b = 0; b < nb; b++) {
			double *v = V + b * D, *fv = FV + b * D, *ha = HA + b * L, *fa = FA + b * L;
			double *hh = HH + b * M, *fh = FH + b * M;
			for (int64_t j = 0; j < D; j++)
				v[j] += kv * (p->a[j] + fv[j] - v[j]);
			for (int64_t A = 0; A < L; A++)
				ha[A] += kh * (p->b[A] + fa[A] - ha[A]);
			for (int64_t m = 0; m < M; m++)
				hh[m] += kh * (p->c[m] + fh[m] - hh[m]);
		}
	}
	for (int64_t b = 0; b < nb; b++) {
		he_logits(p, V + b * D, logits + 2 * b);
		if (vout)
			memcpy(vout + b * D, V + b * D, (size_t)D * sizeof *vout);
	}
	free(K), free(V), free(FV), free(HA), free(GA), free(FA), free(HH), free(GH), free(FH);
}
