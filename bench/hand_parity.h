/* hand_parity.h - the parity Analog Energy Transformer written by hand in
 * plain C (bench/hand_parity.c), the baseline the JIT is measured against.
 */
#ifndef DAM_HAND_PARITY_H
#define DAM_HAND_PARITY_H

#include <stddef.h>
#include <stdint.h>

enum { HP_D = 16, HP_L = 8, HP_M = 16, HP_V = 2 };

typedef struct HandParity {
	double emb2[HP_V][HP_D];   /* squared embedding rows: keys = emb2[tok] */
	double W[HP_M][HP_D];      /* squared Hopfield patterns */
	double a[HP_D], b[HP_L], c[HP_M];
	double Wdec[2][HP_D], bdec[2];
	double beta, tau_v, tau_h;
} HandParity;

/* Read the checkpoint (.npz with xi_attn_embed_raw, xi_hopf_raw, a, b, c,
 * W_dec, b_dec); 0 or -1 with a message in err. */
int hand_parity_load(HandParity *p, const char *npz, char *err, size_t errlen);
/* One inference: v(0) = 0, hidden states at their biases, nsteps forward
 * Euler steps of dt, logits = W_dec v + b_dec. */
void hand_parity_run(const HandParity *p, const int tok[HP_L], double dt, int64_t nsteps,
                     double logits[2]);
/* The same with the loops in axpy order (see hand_parity.c). */
void hand_parity_run_axpy(const HandParity *p, const int tok[HP_L], double dt, int64_t nsteps,
                           double logits[2]);

#endif
