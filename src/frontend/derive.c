/* derive.c - activations, Hessians, ODE right-hand sides and the global energy.
 *
 * For every layer P with Lagrangian L_P(x) (DESIGN.md, paper Eq. 1-2):
 *
 *   g_P[j]      = dL_P / dx[j]                       (activation, derived)
 *   H_P[j,k]    = d g_P[j] / d x[k]                  (Hessian of L, structured:
 *                 delta(j,k) diag[j] + sum_r u_r[j] v_r[k] where possible)
 *   tau_P dx_P[j]/dt = sum_(blocks W, P rows) sum_i W[j,i] g_other[i]
 *                    + sum_(blocks W, P cols) sum_mu W[mu,j] g_other[mu]
 *                    + bias_P[j] - x_P[j]                       (paper Eq. 1, 9-11)
 *
 *   E = sum_P [ sum_j g_P[j] (x_P[j] - bias_P[j]) - L_P ]
 *       - sum_(blocks A--B) sum_(mu,i) g_A[mu] W[mu,i] g_B[i]
 *       - 1/2 sum_(self blocks) sum_(j,i) g_P[j] W[j,i] g_P[i]         (paper Eq. 2, 6)
 *
 * so that tau_P dx_P/dt = -dE/dg_P and dE/dt = -sum_P tau_P xdot^T H_P xdot <= 0
 * for convex L.  Everything is symbolic and array-shaped: nothing here loops
 * over neurons.
 */
#include <string.h>

#include "sema.h"

static SymId layer_rhs(Model *m, int p)
{
	SymCtx *c = m->sym;
	MLayer *L = &m->layers[p];
	SymId j = sym_idx(c, L->j);
	VEC(SymId) acc = {0};
	for (int b = 0; b < m->nblocks; b++) {
		MBlock *B = &m->blocks[b];
		if (B->a == p) {
			/* P indexes the rows: sum_i W[j,i] g_b[i] */
			MLayer *O = &m->layers[B->b];
			IdxId i = sym_index_new(c, "i", O->n);
			SymId ii = sym_idx(c, i);
			SymId wa[2] = { j, ii };
			SymId term = sym_mul(c, sym_at(c, B->w, 2, wa), sym_at(c, O->g, 1, &ii));
			vec_push(&acc, sym_reduce(c, SYM_SUM, i, term));
		}
		if (B->b == p && !B->self) {
			/* P indexes the columns: sum_mu W[mu,j] g_a[mu] */
			MLayer *O = &m->layers[B->a];
			IdxId mu = sym_index_new(c, "mu", O->n);
			SymId mm = sym_idx(c, mu);
			SymId wa[2] = { mm, j };
			SymId term = sym_mul(c, sym_at(c, B->w, 2, wa), sym_at(c, O->g, 1, &mm));
			vec_push(&acc, sym_reduce(c, SYM_SUM, mu, term));
		}
	}
	vec_push(&acc, L->bias);
	vec_push(&acc, sym_neg(c, sym_at(c, L->x, 1, &j)));
	SymId r = sym_addn(c, (int)acc.n, acc.v);
	vec_free(&acc);
	return r;
}

static SymId model_energy(Model *m)
{
	SymCtx *c = m->sym;
	VEC(SymId) acc = {0};
	for (int p = 0; p < m->nlayers; p++) {
		MLayer *L = &m->layers[p];
		SymId j = sym_idx(c, L->j);
		SymId legendre = sym_mul(c, sym_at(c, L->g, 1, &j), sym_sub(c, sym_at(c, L->x, 1, &j), L->bias));
		vec_push(&acc, sym_reduce(c, SYM_SUM, L->j, legendre));
		vec_push(&acc, sym_neg(c, L->L));
	}
	for (int b = 0; b < m->nblocks; b++) {
		MBlock *B = &m->blocks[b];
		MLayer *A = &m->layers[B->a], *O = &m->layers[B->b];
		IdxId mu = sym_index_new(c, "mu", A->n);
		IdxId i = sym_index_new(c, "i", O->n);
		SymId mm = sym_idx(c, mu), ii = sym_idx(c, i);
		SymId wa[2] = { mm, ii };
		SymId f[3] = { sym_at(c, A->g, 1, &mm), sym_at(c, B->w, 2, wa), sym_at(c, O->g, 1, &ii) };
		SymId inner = sym_reduce(c, SYM_SUM, mu, sym_reduce(c, SYM_SUM, i, sym_muln(c, 3, f)));
		double scale = B->self ? -0.5 : -1.0;
		vec_push(&acc, sym_mul(c, sym_const(c, scale), inner));
	}
	SymId e = sym_addn(c, (int)acc.n, acc.v);
	vec_free(&acc);
	return e;
}

void derive_model(Model *m, Diags *d, const Loc *layer_locs)
{
	SymCtx *c = m->sym;
	for (int p = 0; p < m->nlayers; p++) {
		MLayer *L = &m->layers[p];
		if (!L->L)
			continue;
		L->act = sym_diff(c, L->L, L->x, L->j);
		const SymNode *an = sym_node(c, L->act);
		if (an->nfree > 1 || (an->nfree == 1 && an->free[0] != L->j)) {
			diag_error(d, layer_locs[p], "the activation of layer '%s' has unexpected free indices", L->name);
			continue;
		}
		SymId h = sym_diff(c, L->act, L->x, L->k);
		L->hess_structured = sym_structure(c, h, L->j, L->k, &L->hess);
		if (!L->hess_structured)
			L->hdense = h;
	}
	for (int p = 0; p < m->nlayers; p++)
		m->layers[p].rhs = layer_rhs(m, p);
	m->energy = model_energy(m);
}
