/* model_eval.c - reference evaluation of a Model with sym_eval.
 *
 * Slow and simple on purpose: it is the oracle the tests compare the
 * derivation (hand-written formulas) and the JIT against.  Dynamic tensors are
 * evaluated once from the inputs; activations are materialised per state.
 */
#include <stdlib.h>
#include <string.h>

#include "model.h"

static void eval_dyn(ModelEval *ev, TensorId t)
{
	const Model *m = ev->m;
	const MTensor *mt = &m->tensors[t];
	int r = sym_tensor_rank(m->sym, t);
	const int64_t *sh = sym_tensor_shape(m->sym, t);
	int64_t n = sym_tensor_size(m->sym, t);
	double *out = dam_xrealloc(NULL, (size_t)(n ? n : 1) * sizeof *out);
	SymEnv env = { ev->data, ev->idx };
	for (int64_t f = 0; f < n; f++) {
		int64_t rem = f;
		for (int d = r - 1; d >= 0; d--) {
			ev->idx[mt->idx[d]] = rem % sh[d];
			rem /= sh[d];
		}
		out[f] = sym_eval(m->sym, mt->def, &env);
	}
	ev->dyn[t] = out;
	ev->data[t] = out;
}

void model_eval_init(ModelEval *ev, const Model *m, const double *inputs)
{
	memset(ev, 0, sizeof *ev);
	ev->m = m;
	int64_t ns = model_state_size(m);
	ev->data = dam_xrealloc(NULL, (m->ntensors + 1) * sizeof *ev->data);
	ev->dyn = dam_xrealloc(NULL, (m->ntensors + 1) * sizeof *ev->dyn);
	memset(ev->dyn, 0, (m->ntensors + 1) * sizeof *ev->dyn);
	ev->state = dam_xrealloc(NULL, (size_t)(ns + 1) * sizeof(double));
	ev->act = dam_xrealloc(NULL, (size_t)(ns + 1) * sizeof(double));
	memset(ev->state, 0, (size_t)(ns + 1) * sizeof(double));
	int64_t ni = 0;
	for (int i = 0; i < m->ninputs; i++)
		ni += m->inputs[i].n;
	ev->inputs = dam_xrealloc(NULL, (size_t)(ni + 1) * sizeof(double));
	if (ni)
		memcpy(ev->inputs, inputs, (size_t)ni * sizeof(double));
	ev->idx = dam_xrealloc(NULL, (sym_index_count(m->sym) + 1) * sizeof *ev->idx);
	memset(ev->idx, 0, (sym_index_count(m->sym) + 1) * sizeof *ev->idx);
	int64_t ioff = 0;
	for (uint32_t t = 0; t < m->ntensors; t++) {
		const MTensor *mt = &m->tensors[t];
		ev->data[t] = mt->data;
		if (mt->kind == MT_STATE)
			ev->data[t] = ev->state + model_layer_offset(m, mt->layer);
		else if (mt->kind == MT_ACT)
			ev->data[t] = ev->act + model_layer_offset(m, mt->layer);
	}
	for (int i = 0; i < m->ninputs; i++) {
		ev->data[m->inputs[i].t] = ev->inputs + ioff;
		ioff += m->inputs[i].n;
	}
	/* Dynamic tensors may depend on each other: they were declared in order. */
	for (uint32_t t = 1; t < m->ntensors; t++)
		if (m->tensors[t].kind == MT_DYN)
			eval_dyn(ev, t);
}

void model_eval_free(ModelEval *ev)
{
	for (uint32_t t = 0; t < ev->m->ntensors; t++)
		dam_free(ev->dyn[t]);
	dam_free(ev->dyn);
	dam_free(ev->data);
	dam_free(ev->state);
	dam_free(ev->act);
	dam_free(ev->inputs);
	dam_free(ev->idx);
}

double model_eval_expr(ModelEval *ev, SymId e, IdxId i, int64_t iv)
{
	if (i)
		ev->idx[i] = iv;
	SymEnv env = { ev->data, ev->idx };
	return sym_eval(ev->m->sym, e, &env);
}

void model_eval_state(ModelEval *ev, const double *x)
{
	const Model *m = ev->m;
	memcpy(ev->state, x, (size_t)model_state_size(m) * sizeof(double));
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		double *g = ev->act + model_layer_offset(m, l);
		for (int64_t j = 0; j < L->n; j++)
			g[j] = model_eval_expr(ev, L->act, L->j, j);
	}
}

void model_eval_rhs(ModelEval *ev, double *dxdt)
{
	const Model *m = ev->m;
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		double *f = dxdt + model_layer_offset(m, l);
		for (int64_t j = 0; j < L->n; j++)
			f[j] = model_eval_expr(ev, L->rhs, L->j, j) / L->tau;
	}
}

double model_eval_energy(ModelEval *ev)
{
	return model_eval_expr(ev, ev->m->energy, 0, 0);
}

void model_eval_hess_mv(ModelEval *ev, int layer, const double *u, double *out)
{
	const MLayer *L = &ev->m->layers[layer];
	int64_t n = L->n;
	for (int64_t j = 0; j < n; j++)
		out[j] = 0;
	if (!L->hess_structured) {
		for (int64_t j = 0; j < n; j++)
			for (int64_t k = 0; k < n; k++) {
				ev->idx[L->k] = k;
				out[j] += model_eval_expr(ev, L->hdense, L->j, j) * u[k];
			}
		return;
	}
	for (int64_t j = 0; j < n; j++)
		out[j] = model_eval_expr(ev, L->hess.diag, L->j, j) * u[j];
	for (int r = 0; r < L->hess.nterms; r++) {
		double dot = 0;
		for (int64_t k = 0; k < n; k++)
			dot += model_eval_expr(ev, L->hess.v[r], L->k, k) * u[k];
		for (int64_t j = 0; j < n; j++)
			out[j] += model_eval_expr(ev, L->hess.u[r], L->j, j) * dot;
	}
}
