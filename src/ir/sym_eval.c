/* sym_eval.c - the reference evaluator of symbolic expressions.
 *
 * A plain recursive interpreter (no memo): it is the reference for tests,
 * constant folding and semantic checks, never the simulation path.
 * Reductions loop over the extent of their bound index, setting
 * env->idx[bound] and restoring it afterwards; logsumexp is computed in one
 * max-shifted (online) pass.  Tensor index arguments are rounded to the
 * nearest integer; out-of-range or non-finite indices, and tensors without
 * data, evaluate to NaN.  DELTA compares rounded integers, EQ compares reals
 * exactly.  step(0) = 0 and sign(0) = 0.
 */
#include "sym.h"
#include "sym_impl.h"

#include <math.h>

static double sym_eval_tensor(const SymCtx *c, const SymNode *n, SymEnv *env)
{
	const int64_t *shape = sym_tensor_shape(c, n->aux);
	int64_t off = 0;
	for (int r = 0; r < n->nkids; r++) {
		double v = sym_eval(c, n->kids[r], env);
		if (!isfinite(v))
			return NAN;
		long long i = llround(v);
		if (i < 0 || i >= shape[r])
			return NAN;
		off = off * shape[r] + i;
	}
	const double *data = env->data ? env->data[n->aux] : NULL;
	return data ? data[off] : NAN;
}

static double sym_eval_reduce(const SymCtx *c, const SymNode *n, SymEnv *env)
{
	int64_t saved = env->idx[n->aux], extent = sym_index_extent(c, n->aux);
	double acc = n->kind == SYM_SUM ? 0 : -INFINITY, s = 0;
	for (int64_t i = 0; i < extent; i++) {
		env->idx[n->aux] = i;
		double v = sym_eval(c, n->kids[0], env);
		if (n->kind == SYM_SUM)
			acc += v;
		else if (n->kind == SYM_MAX)
			acc = v > acc || isnan(v) ? v : acc;
		else if (v > acc) {                /* LSE: acc = running max */
			s = s * exp(acc - v) + 1;
			acc = v;
		} else
			s += exp(v - acc);
	}
	env->idx[n->aux] = saved;
	if (n->kind == SYM_LSE && isfinite(acc))
		return acc + log(s);
	return acc;
}

static double sym_eval_nary(const SymCtx *c, const SymNode *n, SymEnv *env)
{
	double acc = n->kind == SYM_ADD ? 0 : 1;
	for (int i = 0; i < n->nkids; i++) {
		double v = sym_eval(c, n->kids[i], env);
		acc = n->kind == SYM_ADD ? acc + v : acc * v;
	}
	return acc;
}

double sym_eval(const SymCtx *c, SymId e, SymEnv *env)
{
	const SymNode *n = sym_node(c, e);
	switch ((SymKind)n->kind) {
	case SYM_CONST: return n->val;
	case SYM_IDX: return (double)env->idx[n->aux];
	case SYM_TENSOR: return sym_eval_tensor(c, n, env);
	case SYM_ADD:
	case SYM_MUL: return sym_eval_nary(c, n, env);
	case SYM_DIV: return sym_eval(c, n->kids[0], env) / sym_eval(c, n->kids[1], env);
	case SYM_POW: return sym_pow_value(sym_eval(c, n->kids[0], env), sym_eval(c, n->kids[1], env));
	case SYM_FN: return sym_apply_fn((SymFn)n->fn, sym_eval(c, n->kids[0], env));
	case SYM_SUM:
	case SYM_LSE:
	case SYM_MAX: return sym_eval_reduce(c, n, env);
	case SYM_DELTA: {
		double a = sym_eval(c, n->kids[0], env), b = sym_eval(c, n->kids[1], env);
		if (!isfinite(a) || !isfinite(b))
			return NAN;
		return llround(a) == llround(b) ? 1 : 0;
	}
	case SYM_EQ:
		return sym_eval(c, n->kids[0], env) == sym_eval(c, n->kids[1], env) ? 1 : 0;
	case SYM_NKINDS: break;
	}
	return NAN;
}
