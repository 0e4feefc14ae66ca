/* check.c - static checks on a derived model: only warnings.
 *
 * 1. Convexity of Lagrangians.  The energy decreases along trajectories when
 *    every Lagrangian is convex (paper Sec. 2).  We try to *show* convexity
 *    with disciplined-convex-programming rules: convex atoms (affine, x^2 of
 *    affine, relu/softplus/exp of convex, logcosh/abs of affine, logsumexp
 *    and max of convex, sqrt of a sum of squares plus a constant (a norm)),
 *    closed under sums, non-negative scaling and reductions.  What cannot be
 *    shown is reported as such, not as "non-convex".
 * 2. Self-couplings must be symmetric (-1/2 g^T W g needs W = W^T).
 * 3. Boundedness.  With an identity layer v and a ReLU layer h coupled by a
 *    non-negative W, the effective energy along v = t u (u the top right
 *    singular vector of W, also non-negative) is
 *        E ~ 1/2 t^2 - 1/2 |relu(t W u + c)|^2 ~ 1/2 t^2 (1 - sigma_max(W)^2),
 *    unbounded below when sigma_max > 1 (workshop App. B Eq. 22; DESIGN.md).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sema.h"

typedef struct Cv {
	Curvature c;
	bool nonneg;
	bool sos;          /* sum of squares of affine terms plus a non-negative constant */
} Cv;

typedef struct CvCtx {
	const Model *m;
	TensorId x;
	Cv *memo;
	unsigned char *done;
} CvCtx;

static Cv cv_of(CvCtx *k, SymId e);

static Cv cv_make(Curvature c, bool nonneg, bool sos)
{
	Cv r = { c, nonneg, sos };
	return r;
}

static bool convexish(Curvature c) { return c == CURV_CONVEX || c == CURV_AFFINE || c == CURV_CONST; }
static bool concaveish(Curvature c) { return c == CURV_CONCAVE || c == CURV_AFFINE || c == CURV_CONST; }

static Curvature cv_add(Curvature a, Curvature b)
{
	if (a == CURV_UNKNOWN || b == CURV_UNKNOWN)
		return CURV_UNKNOWN;
	if (a == CURV_CONST)
		return b;
	if (b == CURV_CONST)
		return a;
	if (a == CURV_AFFINE)
		return b;
	if (b == CURV_AFFINE)
		return a;
	return a == b ? a : CURV_UNKNOWN;
}

static Curvature cv_flip(Curvature a)
{
	return a == CURV_CONVEX ? CURV_CONCAVE : a == CURV_CONCAVE ? CURV_CONVEX : a;
}

/* Sign of a constant factor: 1 non-negative, -1 non-positive, 0 unknown. */
static int const_sign(CvCtx *k, SymId e)
{
	double v;
	if (sym_is_const(k->m->sym, e, &v))
		return v >= 0 ? 1 : -1;
	return cv_of(k, e).nonneg ? 1 : 0;
}

static Cv cv_mul(CvCtx *k, const SymNode *nd)
{
	int sign = 1, nvar = 0;
	Cv var = cv_make(CURV_CONST, true, true);
	for (int i = 0; i < nd->nkids; i++) {
		Cv f = cv_of(k, nd->kids[i]);
		if (f.c == CURV_CONST) {
			int s = const_sign(k, nd->kids[i]);
			sign = s == 0 || sign == 0 ? 0 : sign * s;
			continue;
		}
		nvar++;
		var = f;
	}
	if (nvar == 0)
		return cv_make(CURV_CONST, sign > 0, sign > 0);
	if (nvar > 1)
		return cv_make(CURV_UNKNOWN, false, false);
	if (var.c == CURV_AFFINE)
		return cv_make(CURV_AFFINE, false, false);
	if (sign > 0)
		return var;
	if (sign < 0)
		return cv_make(cv_flip(var.c), false, false);
	return cv_make(CURV_UNKNOWN, false, false);
}

static Cv cv_pow(CvCtx *k, const SymNode *nd)
{
	Cv a = cv_of(k, nd->kids[0]);
	double p;
	if (!sym_is_const(k->m->sym, nd->kids[1], &p))
		return cv_make(cv_of(k, nd->kids[1]).c == CURV_CONST && a.c == CURV_CONST ? CURV_CONST : CURV_UNKNOWN,
		               false, false);
	if (a.c == CURV_CONST)
		return cv_make(CURV_CONST, a.nonneg || fmod(p, 2) == 0, false);
	if (p == 1)
		return a;
	bool even = p == floor(p) && fmod(p, 2) == 0 && p > 0;
	if (a.c == CURV_AFFINE && even)
		return cv_make(CURV_CONVEX, true, p == 2);
	if (a.nonneg && convexish(a.c) && p >= 1)
		return cv_make(CURV_CONVEX, true, false);
	if (a.nonneg && concaveish(a.c) && p > 0 && p < 1)
		return cv_make(CURV_CONCAVE, true, false);
	return cv_make(CURV_UNKNOWN, false, false);
}

static Cv cv_fn(CvCtx *k, const SymNode *nd)
{
	Cv a = cv_of(k, nd->kids[0]);
	if (a.c == CURV_CONST)
		return cv_make(CURV_CONST, nd->fn == SYMFN_EXP || nd->fn == SYMFN_RELU || nd->fn == SYMFN_SOFTPLUS ||
		                               nd->fn == SYMFN_SQRT || nd->fn == SYMFN_ABS || nd->fn == SYMFN_SIGMOID ||
		                               nd->fn == SYMFN_STEP || nd->fn == SYMFN_LOGCOSH, false);
	switch (nd->fn) {
	case SYMFN_EXP:
	case SYMFN_RELU:
	case SYMFN_SOFTPLUS:
		return convexish(a.c) ? cv_make(CURV_CONVEX, true, false) : cv_make(CURV_UNKNOWN, false, false);
	case SYMFN_LOGCOSH:
	case SYMFN_ABS:
		return a.c == CURV_AFFINE ? cv_make(CURV_CONVEX, true, false) : cv_make(CURV_UNKNOWN, false, false);
	case SYMFN_LOG:
		return concaveish(a.c) ? cv_make(CURV_CONCAVE, false, false) : cv_make(CURV_UNKNOWN, false, false);
	case SYMFN_SQRT:
		if (a.sos)
			return cv_make(CURV_CONVEX, true, false);
		return concaveish(a.c) ? cv_make(CURV_CONCAVE, true, false) : cv_make(CURV_UNKNOWN, false, false);
	default:
		return cv_make(CURV_UNKNOWN, false, false);
	}
}

static Cv cv_compute(CvCtx *k, SymId e)
{
	const SymNode *nd = sym_node(k->m->sym, e);
	switch (nd->kind) {
	case SYM_CONST:
		return cv_make(CURV_CONST, nd->val >= 0, nd->val >= 0);
	case SYM_IDX:
	case SYM_DELTA:
	case SYM_EQ:
		return cv_make(CURV_CONST, true, true);
	case SYM_TENSOR: {
		bool arg_x = false;
		for (int i = 0; i < nd->nkids; i++)
			if (sym_uses_tensor(k->m->sym, nd->kids[i], k->x))
				arg_x = true;
		if (arg_x)
			return cv_make(CURV_UNKNOWN, false, false);
		if (nd->aux == k->x)
			return cv_make(CURV_AFFINE, false, false);
		return cv_make(CURV_CONST, false, false);
	}
	case SYM_ADD: {
		Cv r = cv_make(CURV_CONST, true, true);
		for (int i = 0; i < nd->nkids; i++) {
			Cv f = cv_of(k, nd->kids[i]);
			r.c = cv_add(r.c, f.c);
			r.nonneg = r.nonneg && f.nonneg;
			r.sos = r.sos && f.sos;
		}
		return r;
	}
	case SYM_MUL:
		return cv_mul(k, nd);
	case SYM_DIV: {
		Cv b = cv_of(k, nd->kids[1]);
		if (b.c != CURV_CONST)
			return cv_make(CURV_UNKNOWN, false, false);
		Cv a = cv_of(k, nd->kids[0]);
		int s = const_sign(k, nd->kids[1]);
		if (a.c == CURV_CONST)
			return cv_make(CURV_CONST, a.nonneg && s > 0, false);
		if (a.c == CURV_AFFINE)
			return cv_make(CURV_AFFINE, false, false);
		if (s > 0)
			return a;
		if (s < 0)
			return cv_make(cv_flip(a.c), false, false);
		return cv_make(CURV_UNKNOWN, false, false);
	}
	case SYM_POW:
		return cv_pow(k, nd);
	case SYM_FN:
		return cv_fn(k, nd);
	case SYM_SUM:
		return cv_of(k, nd->kids[0]);
	case SYM_LSE:
	case SYM_MAX: {
		Cv b = cv_of(k, nd->kids[0]);
		if (b.c == CURV_CONST)
			return b;
		return convexish(b.c) ? cv_make(CURV_CONVEX, false, false) : cv_make(CURV_UNKNOWN, false, false);
	}
	}
	return cv_make(CURV_UNKNOWN, false, false);
}

static Cv cv_of(CvCtx *k, SymId e)
{
	if (!k->done[e]) {
		k->memo[e] = cv_compute(k, e);
		k->done[e] = 1;
	}
	return k->memo[e];
}

Curvature check_curvature(const Model *m, SymId e, TensorId x)
{
	uint32_t n = sym_count(m->sym);
	CvCtx k = { m, x, dam_xrealloc(NULL, n * sizeof(Cv)), dam_xrealloc(NULL, n) };
	memset(k.done, 0, n);
	Curvature c = cv_of(&k, e).c;
	dam_free(k.memo);
	dam_free(k.done);
	return c;
}

/* Power iteration on W^T W.  One pass over the rows per iteration: row r
 * gives u_r = w_r . v and, while it is in cache, adds u_r w_r to the next v
 * (axpy order, contiguous, so the inner loops vectorise; the transposed
 * product read column by column took a second of damc's start-up at
 * D = M = 4096).  sigma = |W v| for the unit vector v of the iteration. */
double check_spectral_norm(const double *w, int64_t rows, int64_t cols)
{
	double *v = dam_xrealloc(NULL, (size_t)cols * sizeof *v);
	double *nx = dam_xrealloc(NULL, (size_t)cols * sizeof *nx);
	uint64_t s = 0x2545F4914F6CDD1Dull;
	for (int64_t i = 0; i < cols; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		v[i] = 0.5 + (double)(s >> 11) / 9007199254740992.0;
	}
	double sigma = 0, prev = -1;
	for (int it = 0; it < 5000; it++) {
		double nv = 0;
		for (int64_t i = 0; i < cols; i++)
			nv += v[i] * v[i];
		nv = sqrt(nv);
		if (nv == 0)
			break;
		for (int64_t i = 0; i < cols; i++) {
			v[i] /= nv;
			nx[i] = 0;
		}
		double nu = 0;
		for (int64_t r = 0; r < rows; r++) {
			const double *wr = w + r * cols;
			double acc = 0;
			for (int64_t c = 0; c < cols; c++)
				acc += wr[c] * v[c];
			nu += acc * acc;
			for (int64_t c = 0; c < cols; c++)
				nx[c] += acc * wr[c];
		}
		sigma = sqrt(nu);
		double *t = v;
		v = nx;
		nx = t;
		if (fabs(sigma - prev) <= 1e-15 * sigma)
			break;
		prev = sigma;
	}
	dam_free(nx);
	dam_free(v);
	return sigma;
}

/* Is the activation of layer L exactly x[j] (identity) / relu(x[j]) (ReLU)? */
static bool act_is(const Model *m, const MLayer *L, int fn)
{
	const SymNode *nd = sym_node(m->sym, L->act);
	if (fn >= 0) {
		if (nd->kind != SYM_FN || nd->fn != fn)
			return false;
		nd = sym_node(m->sym, nd->kids[0]);
	}
	return nd->kind == SYM_TENSOR && nd->aux == L->x && nd->nkids == 1 &&
	       sym_node(m->sym, nd->kids[0])->kind == SYM_IDX && sym_node(m->sym, nd->kids[0])->aux == L->j;
}

static void check_convexity(Model *m, Diags *d, const Loc *layer_locs)
{
	for (int p = 0; p < m->nlayers; p++) {
		MLayer *L = &m->layers[p];
		if (!L->L)
			continue;
		Curvature c = check_curvature(m, L->L, L->x);
		L->convex = c == CURV_CONVEX || c == CURV_AFFINE || c == CURV_CONST;
		if (L->convex)
			continue;
		if (c == CURV_CONCAVE)
			diag_warning(d, layer_locs[p], "the Lagrangian %s of layer '%s' is concave, not convex: the energy may increase",
			             L->lagr_name, L->name);
		else
			diag_warning(d, layer_locs[p],
			             "cannot show that the Lagrangian %s of layer '%s' is convex: the energy may increase",
			             L->lagr_name, L->name);
	}
}

static void check_symmetry(Model *m, Diags *d, const Loc *block_locs)
{
	for (int b = 0; b < m->nblocks; b++) {
		MBlock *B = &m->blocks[b];
		if (!B->self || B->dynamic)
			continue;
		const double *w = m->tensors[B->w].data;
		int64_t n = m->layers[B->a].n;
		double worst = 0;
		int64_t wi = 0, wj = 0;
		for (int64_t i = 0; i < n; i++)
			for (int64_t j = i + 1; j < n; j++) {
				double diff = fabs(w[i * n + j] - w[j * n + i]);
				if (diff > worst) {
					worst = diff;
					wi = i;
					wj = j;
				}
			}
		if (worst > 0)
			diag_warning(d, block_locs[b],
			             "self-coupling '%s' of layer '%s' is not symmetric: W[%lld,%lld] - W[%lld,%lld] = %g "
			             "(the energy assumes W = W^T)",
			             B->name, m->layers[B->a].name, (long long)wi, (long long)wj, (long long)wj, (long long)wi,
			             w[wi * n + wj] - w[wj * n + wi]);
	}
}

bool check_bound_block(const Model *m, int b)
{
	const MBlock *B = &m->blocks[b];
	if (B->self || B->dynamic)
		return false;
	const MLayer *A = &m->layers[B->a], *C = &m->layers[B->b];
	return (act_is(m, A, SYMFN_RELU) && act_is(m, C, -1)) || (act_is(m, C, SYMFN_RELU) && act_is(m, A, -1));
}

static void check_bounded(Model *m, Diags *d, const Loc *block_locs)
{
	for (int b = 0; b < m->nblocks; b++) {
		if (!check_bound_block(m, b))
			continue;
		MBlock *B = &m->blocks[b];
		const MLayer *A = &m->layers[B->a], *C = &m->layers[B->b];
		bool a_relu = act_is(m, A, SYMFN_RELU);
		const MLayer *relu_l = a_relu ? A : C, *id_l = a_relu ? C : A;
		const double *w = m->tensors[B->w].data;
		int64_t rows = A->n, cols = C->n;
		double sigma = check_spectral_norm(w, rows, cols);
		if (sigma <= 1.0)
			continue;
		bool nonneg = true;
		for (int64_t i = 0; i < rows * cols; i++)
			if (w[i] < 0)
				nonneg = false;
		diag_warning(d, block_locs[b],
		             "the energy is %sunbounded below: weight block '%s' couples ReLU layer '%s' to identity "
		             "layer '%s' with spectral norm %.4g > 1",
		             nonneg ? "" : "possibly ", B->name, relu_l->name, id_l->name, sigma);
		diag_note(d, block_locs[b],
		          "along the top singular vector u of '%s', E(t u) ~ (1 - %.4g^2) t^2 / 2 -> -inf; trajectories "
		          "can diverge for long run times",
		          B->name, sigma);
	}
}

void check_model(Model *m, Diags *d, const Loc *layer_locs, const Loc *block_locs)
{
	check_convexity(m, d, layer_locs);
	check_symmetry(m, d, block_locs);
	check_bounded(m, d, block_locs);
}
