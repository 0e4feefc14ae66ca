/* hand_et.h - the Analog ET family (examples/parity_et.dam at any D, L, M) by
 * hand: a plain C loop and an OpenBLAS baseline (bench/hand_et.c), the
 * references bench/et_scale.c measures the JIT against.
 */
#ifndef DAM_HAND_ET_H
#define DAM_HAND_ET_H

#include <stddef.h>
#include <stdint.h>

typedef struct HandEt {
	int64_t D, L, M, V;
	double *emb2;       /* [V][D] squared embedding rows: keys[A] = emb2[tok[A]] */
	double *W;          /* [M][D] squared Hopfield patterns, row-major */
	double *WT;         /* [D][M] its transpose (for the axpy-only variant) */
	double *a, *b, *c;  /* [D], [L], [M] */
	double *Wdec, *bdec;/* [2][D], [2] */
	double beta, tau_v, tau_h;
} HandEt;

/* Read the seven arrays of parity_et.dam from an .npz and square the raw
 * couplings; 0, or -1 with a message in err. */
int hand_et_load(HandEt *p, const char *npz, int64_t D, int64_t L, int64_t M, char *err,
                 size_t errlen);
void hand_et_free(HandEt *p);

/* nb strings (tok: nb * L token ids), each from v = 0, h_attn = b,
 * h_hopf = c through nsteps forward-Euler steps of dt; logits: nb * 2;
 * vout (may be NULL): the final v, nb * D. */
/* Plain C, one string after the other: the products with the row-major
 * weights (scores K v, Hopfield W v) as dot products, the transposed ones
 * (K^T g_attn, W^T g_hopf) in axpy order over the rows. */
void hand_et_run(const HandEt *p, const int *tok, int64_t nb, double dt, int64_t nsteps,
                 double *logits, double *vout);
/* The same, but W v also in axpy order over the transposed copy WT, so every
 * inner loop runs across the output index (vectorisable without
 * reassociation; the same sums in the same order as hand_et_run). */
void hand_et_run_axpy(const HandEt *p, const int *tok, int64_t nb, double dt, int64_t nsteps,
                      double *logits, double *vout);
/* OpenBLAS: the nb states as the rows of one matrix; the Hopfield products
 * as two cblas_dgemm over the batch per step, the attention products (each
 * string has its own keys) as cblas_dgemv per string.  threads: the
 * OpenBLAS thread count (openblas_set_num_threads). */
void hand_et_run_blas(const HandEt *p, const int *tok, int64_t nb, double dt, int64_t nsteps,
                      double *logits, double *vout, int threads);

#endif
