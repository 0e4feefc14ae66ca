/* revive.c - dead ReLU units brought back during training (revive.h). */
#include "revive.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

static int rv_param(const DamGrad *G, TensorId t)
{
	for (int i = 0; i < grad_nparams(G); i++)
		if (grad_param(G, i) == t)
			return i;
	return -1;
}

/* The layer's activation is relu(x[j]) and its bias the learned c[j]: c's
 * parameter index, else -1. */
static int rv_relu_bias(const Model *m, const DamGrad *G, const MLayer *L)
{
	const SymNode *a = sym_node(m->sym, L->act), *b = sym_node(m->sym, L->bias);
	if (a->kind != SYM_FN || a->fn != SYMFN_RELU || b->kind != SYM_TENSOR || b->nkids != 1)
		return -1;
	const SymNode *j = sym_node(m->sym, b->kids[0]);
	TensorId c = (TensorId)b->aux;
	if (j->kind != SYM_IDX || j->aux != L->j || m->tensors[c].kind != MT_LEARN ||
	    sym_tensor_size(m->sym, c) != L->n)
		return -1;
	return rv_param(G, c);
}

/* Is row mu of the block's weights w a function of row mu of parameter P
 * alone?  Tried on G: rows 0 and 1 of P made equal must make rows 0 and 1
 * of w equal, made different, different, and leave the other rows of w as
 * they were. */
static bool rv_rowwise(const Model *m, DamGrad *G, int p, TensorId w, int64_t rows, int64_t cols)
{
	TensorId t = grad_param(G, p);
	size_t len = (size_t)sym_tensor_size(m->sym, t), rest = (size_t)((rows - 2) * cols);
	double *v = run_xcalloc(len, sizeof *v), *other = run_xcalloc(rest + 1, sizeof *other);
	bool ok = true;
	for (int trial = 0; trial < 2 && ok; trial++) {
		memcpy(v, m->tensors[t].data, len * sizeof *v);
		for (int64_t k = 0; k < cols; k++) {
			v[k] = 0.25 + 0.125 * (double)k;
			v[cols + k] = v[k] + (trial ? 0.5 : 0.0);
		}
		grad_set_tensor(G, t, v);
		const double *wv = grad_eval_tensor(G, w);
		ok = wv && (memcmp(wv, wv + cols, (size_t)cols * sizeof *wv) == 0) == (trial == 0);
		if (ok && trial == 0)
			memcpy(other, wv + 2 * cols, rest * sizeof *other);
		else if (ok)
			ok = memcmp(other, wv + 2 * cols, rest * sizeof *other) == 0;
	}
	grad_set_tensor(G, t, m->tensors[t].data);
	free(other);
	free(v);
	return ok;
}

RvLayer *rv_plan(const Model *m, DamGrad *G, int *n)
{
	VEC(RvLayer) out = { 0 };
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		int c = L->n >= 2 ? rv_relu_bias(m, G, L) : -1;
		if (c < 0)
			continue;
		for (int b = 0; b < m->nblocks; b++) {
			const MBlock *B = &m->blocks[b];
			if (B->a != l || B->self || B->dynamic)
				continue;
			int64_t cols = m->layers[B->b].n;
			const MTensor *W = &m->tensors[B->w];
			int p = -1;
			for (int i = 0; i < grad_nparams(G) && p < 0; i++) {
				TensorId t = grad_param(G, i);
				const int64_t *sh = sym_tensor_shape(m->sym, t);
				if (sym_tensor_rank(m->sym, t) == 2 && sh[0] == L->n && sh[1] == cols &&
				    (t == B->w || (W->def && sym_uses_tensor(m->sym, W->def, t))) &&
				    rv_rowwise(m, G, i, B->w, L->n, cols))
					p = i;
			}
			if (p < 0)
				continue;
			vec_push(&out, ((RvLayer){ l, c, p, L->n, cols, B->w }));
			break;
		}
	}
	*n = (int)out.n;
	return out.v;
}

int rv_candidates(const Model *m, const RvLayer *L, int nl, const double *x, size_t nx, const double *loss,
                  const size_t *cls, size_t nrows, int nworst, RvMove *out, int max)
{
	/* per layer: which units are live on some row, and the first dead one */
	size_t units = 0;
	for (int i = 0; i < nl; i++)
		units += (size_t)L[i].n;
	bool *live = run_xcalloc(units + 1, sizeof *live);
	int64_t *dead = run_xcalloc((size_t)nl + 1, sizeof *dead);
	for (int i = 0, off = 0; i < nl; off += (int)L[i].n, i++) {
		const double *h = x + model_layer_offset(m, L[i].layer);
		dead[i] = -1;
		for (int64_t u = 0; u < L[i].n; u++) {
			for (size_t r = 0; r < nrows && !live[off + u]; r++)
				live[off + u] = h[r * nx + (size_t)u] > 0;
			if (!live[off + u] && dead[i] < 0)
				dead[i] = u;
		}
	}
	int k = 0;
	bool *seen = run_xcalloc(nrows + 1, sizeof *seen);   /* classes already taken as a worst row */
	for (int w = 0; w < nworst && k < max; w++) {
		size_t worst = nrows;
		for (size_t r = 0; r < nrows; r++)
			if (!seen[cls[r]] && (worst == nrows || loss[r] > loss[worst]))
				worst = r;
		if (worst == nrows)
			break;
		seen[cls[worst]] = true;
		for (int i = 0, off = 0; i < nl && k < max; off += (int)L[i].n, i++) {
			const double *h = x + model_layer_offset(m, L[i].layer);
			for (int64_t u = 0; u < L[i].n && dead[i] >= 0 && k < max; u++) {
				if (!live[off + u])
					continue;
				double top = h[worst * nx + (size_t)u], second = -INFINITY;
				for (size_t r = 0; r < nrows; r++)
					if (cls[r] != cls[worst] && h[r * nx + (size_t)u] > second)
						second = h[r * nx + (size_t)u];
				if (top > second && isfinite(second))
					out[k++] = (RvMove){ i, dead[i], u, 0.5 * (top + second), worst, 1.0 };
			}
		}
	}
	free(seen);
	free(dead);
	free(live);
	return k;
}

int rv_apply(DamGrad *G, const RvLayer *L, const RvMove *mv, double *theta, double *m1, double *m2)
{
	const RvLayer *l = &L[mv->layer];
	TensorId pt = grad_param(G, l->p_param);
	size_t po = grad_param_offset(G, l->p_param), co = grad_param_offset(G, l->c_param);
	size_t cols = (size_t)l->cols, d = (size_t)mv->dead, f = (size_t)mv->from;
	for (size_t k = 0; k < cols; k++)
		theta[po + d * cols + k] = mv->scale * theta[po + f * cols + k];
	/* alpha: row `dead` of W over row `from` (1 for scale 1), read off the
	 * module; the move needs the two rows proportional */
	grad_set_tensor(G, pt, theta + po);
	const double *w = grad_eval_tensor(G, l->w);
	if (!w)
		return -1;
	size_t big = 0;
	for (size_t k = 1; k < cols; k++)
		if (fabs(w[f * cols + k]) > fabs(w[f * cols + big]))
			big = k;
	if (!(fabs(w[f * cols + big]) > 0))
		return -1;
	double alpha = w[d * cols + big] / w[f * cols + big];
	for (size_t k = 0; k < cols; k++)
		if (fabs(w[d * cols + k] - alpha * w[f * cols + k]) > 1e-12 * fabs(w[f * cols + big]))
			return -1;
	/* h_dead(r) = alpha (h_from(r) - c_from) + c_dead, zero at mid */
	theta[co + d] = alpha * (theta[co + f] - mv->mid);
	double *mom[2] = { m1, m2 };
	for (int i = 0; i < 2; i++)
		if (mom[i]) {
			memset(mom[i] + po + d * cols, 0, cols * sizeof *mom[i]);
			mom[i][co + d] = 0;
		}
	return 0;
}
