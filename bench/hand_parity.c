/* hand_parity.c - the parity Analog ET (paper Sec. 6, Eq. 9-11) by hand:
 * what an engineer would write in plain C without damc, compiled with
 * -O3 -march=native by bench/bench.sh.  Same integrator and formulas as the
 * model the JIT compiles (examples/parity_et.dam):
 *
 *   keys[A][i] = embed_raw[tok[A]][i]^2,   W = hopf_raw^2
 *   g_v = v,  g_a = softmax(beta * h_a),  g_h = relu(h_h)
 *   tau_v dv/dt   = a + keys^T g_a + W^T g_h - v
 *   tau_h dh_a/dt = b + keys v - h_a
 *   tau_h dh_h/dt = c + W v - h_h
 *
 * v(0) = 0, h_a(0) = b, h_h(0) = c; forward Euler; logits = W_dec v + b_dec.
 */
#include "hand_parity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_npz.h"

static int hp_read(const char *npz, const char *key, double *dst, size_t n, char *err, size_t errlen)
{
	double *v;
	if (bench_npz_array(npz, key, n, &v, err, errlen))
		return -1;
	memcpy(dst, v, n * sizeof *dst);
	free(v);
	return 0;
}

int hand_parity_load(HandParity *p, const char *npz, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	if (hp_read(npz, "xi_attn_embed_raw", &p->emb2[0][0], HP_V * HP_D, err, errlen) ||
	    hp_read(npz, "xi_hopf_raw", &p->W[0][0], HP_M * HP_D, err, errlen) ||
	    hp_read(npz, "a", p->a, HP_D, err, errlen) || hp_read(npz, "b", p->b, HP_L, err, errlen) ||
	    hp_read(npz, "c", p->c, HP_M, err, errlen) ||
	    hp_read(npz, "W_dec", &p->Wdec[0][0], 2 * HP_D, err, errlen) ||
	    hp_read(npz, "b_dec", p->bdec, 2, err, errlen))
		return -1;
	for (int t = 0; t < HP_V; t++)
		for (int i = 0; i < HP_D; i++)
			p->emb2[t][i] *= p->emb2[t][i];
	for (int m = 0; m < HP_M; m++)
		for (int i = 0; i < HP_D; i++)
			p->W[m][i] *= p->W[m][i];
	p->beta = 0.1;
	p->tau_v = 0.1;
	p->tau_h = 0.01;
	return 0;
}

/* A variant with the loops ordered for vectorisation over the output index
 * (axpy form, the same sums in the same order) and transposed row blocks.
 * Measured slower: GCC 12 -O3 -march=native vectorises these 8/16-long
 * loops badly (about 3x slower than hand_parity_run, and faster than it
 * with -fno-tree-vectorize); kept as a data point in bench/README.md. */
void hand_parity_run_axpy(const HandParity *p, const int tok[HP_L], double dt, int64_t nsteps,
                     double logits[2])
{
	double K[HP_L][HP_D], KT[HP_D][HP_L], WT[HP_D][HP_M];
	double v[HP_D] = { 0 }, ha[HP_L], hh[HP_M];
	for (int A = 0; A < HP_L; A++)
		for (int i = 0; i < HP_D; i++)
			KT[i][A] = K[A][i] = p->emb2[tok[A]][i];
	for (int m = 0; m < HP_M; m++)
		for (int i = 0; i < HP_D; i++)
			WT[i][m] = p->W[m][i];
	memcpy(ha, p->b, sizeof ha);
	memcpy(hh, p->c, sizeof hh);
	const double kv = dt / p->tau_v, kh = dt / p->tau_h, beta = p->beta;
	for (int64_t s = 0; s < nsteps; s++) {
		double ga[HP_L], gh[HP_M], mx = beta * ha[0], sum = 0;
		for (int A = 1; A < HP_L; A++)
			mx = beta * ha[A] > mx ? beta * ha[A] : mx;
		for (int A = 0; A < HP_L; A++)
			sum += ga[A] = exp(beta * ha[A] - mx);
		double inv = 1.0 / sum;
		for (int A = 0; A < HP_L; A++)
			ga[A] *= inv;
		for (int m = 0; m < HP_M; m++)
			gh[m] = hh[m] > 0 ? hh[m] : 0;
		double fv[HP_D], fa[HP_L], fh[HP_M];
		for (int j = 0; j < HP_D; j++)
			fv[j] = p->a[j] - v[j];
		for (int A = 0; A < HP_L; A++)
			for (int j = 0; j < HP_D; j++)
				fv[j] += K[A][j] * ga[A];
		for (int m = 0; m < HP_M; m++)
			for (int j = 0; j < HP_D; j++)
				fv[j] += p->W[m][j] * gh[m];
		for (int A = 0; A < HP_L; A++)
			fa[A] = p->b[A] - ha[A];
		for (int i = 0; i < HP_D; i++)
			for (int A = 0; A < HP_L; A++)
				fa[A] += KT[i][A] * v[i];
		for (int m = 0; m < HP_M; m++)
			fh[m] = p->c[m] - hh[m];
		for (int i = 0; i < HP_D; i++)
			for (int m = 0; m < HP_M; m++)
				fh[m] += WT[i][m] * v[i];
		for (int j = 0; j < HP_D; j++)
			v[j] += kv * fv[j];
		for (int A = 0; A < HP_L; A++)
			ha[A] += kh * fa[A];
		for (int m = 0; m < HP_M; m++)
			hh[m] += kh * fh[m];
	}
	for (int k = 0; k < 2; k++) {
		double s1 = p->bdec[k];
		for (int i = 0; i < HP_D; i++)
			s1 += p->Wdec[k][i] * v[i];
		logits[k] = s1;
	}
}

/* The baseline: textbook loops, dot products over the inner index (no
 * -ffast-math, so the compiler keeps the summation order). */
void hand_parity_run(const HandParity *p, const int tok[HP_L], double dt, int64_t nsteps,
                     double logits[2])
{
	double K[HP_L][HP_D], v[HP_D] = { 0 }, ha[HP_L], hh[HP_M];
	for (int A = 0; A < HP_L; A++)
		memcpy(K[A], p->emb2[tok[A]], sizeof K[A]);
	memcpy(ha, p->b, sizeof ha);
	memcpy(hh, p->c, sizeof hh);
	const double kv = dt / p->tau_v, kh = dt / p->tau_h;
	for (int64_t s = 0; s < nsteps; s++) {
		double ga[HP_L], gh[HP_M], mx = -INFINITY, sum = 0;
		for (int A = 0; A < HP_L; A++)
			mx = fmax(mx, p->beta * ha[A]);
		for (int A = 0; A < HP_L; A++)
			sum += ga[A] = exp(p->beta * ha[A] - mx);
		for (int A = 0; A < HP_L; A++)
			ga[A] /= sum;
		for (int m = 0; m < HP_M; m++)
			gh[m] = hh[m] > 0 ? hh[m] : 0;
		double fv[HP_D], fa[HP_L], fh[HP_M];
		for (int j = 0; j < HP_D; j++) {
			double s1 = p->a[j] - v[j];
			for (int A = 0; A < HP_L; A++)
				s1 += K[A][j] * ga[A];
			for (int m = 0; m < HP_M; m++)
				s1 += p->W[m][j] * gh[m];
			fv[j] = s1;
		}
		for (int A = 0; A < HP_L; A++) {
			double s1 = p->b[A] - ha[A];
			for (int i = 0; i < HP_D; i++)
				s1 += K[A][i] * v[i];
			fa[A] = s1;
		}
		for (int m = 0; m < HP_M; m++) {
			double s1 = p->c[m] - hh[m];
			for (int i = 0; i < HP_D; i++)
				s1 += p->W[m][i] * v[i];
			fh[m] = s1;
		}
		for (int j = 0; j < HP_D; j++)
			v[j] += kv * fv[j];
		for (int A = 0; A < HP_L; A++)
			ha[A] += kh * fa[A];
		for (int m = 0; m < HP_M; m++)
			hh[m] += kh * fh[m];
	}
	for (int k = 0; k < 2; k++) {
		double s1 = p->bdec[k];
		for (int i = 0; i < HP_D; i++)
			s1 += p->Wdec[k][i] * v[i];
		logits[k] = s1;
	}
}
