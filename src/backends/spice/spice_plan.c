/* spice_plan.c - everything numeric the netlist needs, for one input set.
 *
 * The plan evaluates the Model IR with the reference evaluator (model_eval):
 * the weights of every block (dynamic rows from the given inputs), each
 * neuron's bias, initial or clamped value, and from the crosspoints the
 * self-term gain of paper Sec. 4 (s_mu = f_mu sum_i xi_mu_i, here with |xi|
 * because a negative weight is a resistor to the other side's inverted
 * line).  It then checks, at a pseudo-random state, that the derived
 * right-hand side of every layer is exactly what the circuit computes,
 *     tau dx_j/dt = sum_crosspoints w g_other + self-diagonal + bias_j - x_j
 * (paper Eq. 3), so a model whose dynamics are not a crossbar sum is refused
 * instead of being simulated wrongly.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spice.h"

static void *spice_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		abort();
	return p;
}

static int64_t flat(const SpicePlan *p, int layer, int64_t i)
{
	return model_layer_offset(p->m, layer) + i;
}

void spice_node(const SpicePlan *p, int64_t k, char *buf, size_t len)
{
	snprintf(buf, len, "%s_%lld", p->lname[p->nr[k].layer], (long long)p->nr[k].i);
}

/* ---- scales and names ---------------------------------------------------- */

static int plan_scales(SpicePlan *p, const BackendOptions *o, Diags *d)
{
	p->vpu = o->volts_per_unit > 0 ? o->volts_per_unit : SPICE_VOLTS_PER_UNIT;
	p->spu = o->seconds_per_time_unit > 0 ? o->seconds_per_time_unit : SPICE_SECONDS_PER_TIME_UNIT;
	p->r2 = o->g0 > 0 ? 1 / o->g0 : SPICE_R0;
	p->g0 = 1 / p->r2;
	if (!isfinite(p->vpu) || !isfinite(p->spu) || !isfinite(p->g0) || !isfinite(p->r2)) {
		diag_error(d, (Loc){ 0, 0, 0 }, "the netlist scales must be finite and positive");
		return -1;
	}
	if (!(o->dt > 0) || !(o->t_end > 0) || !isfinite(o->t_end) || o->t_end / o->dt > 1e8) {
		diag_error(d, (Loc){ 0, 0, 0 }, "the netlist needs 0 < dt <= t_end with at most 1e8 steps "
		           "(dt = %g, t_end = %g)", o->dt, o->t_end);
		return -1;
	}
	return 0;
}

static int plan_names(SpicePlan *p, Diags *d)
{
	const Model *m = p->m;
	p->lname = spice_xcalloc((size_t)m->nlayers, sizeof *p->lname);
	for (int l = 0; l < m->nlayers; l++) {
		size_t n = strlen(m->layers[l].name);
		char *s = spice_xcalloc(n + 1, 1);
		for (size_t k = 0; k < n; k++)
			s[k] = m->layers[l].name[k] == '.' ? '_' : m->layers[l].name[k];
		p->lname[l] = s;
	}
	/* ngspice folds case: layers must differ after mangling and folding. */
	for (int l = 0; l < m->nlayers; l++)
		for (int o = 0; o < l; o++)
			if (!strcasecmp(p->lname[l], p->lname[o])) {
				diag_error(d, backend_loc(m->layers[l].loc), "layer '%s' and layer '%s' get the same "
				           "SPICE node names ('%s_0', ...): ngspice ignores case and '.' becomes '_'",
				           m->layers[l].name, m->layers[o].name, p->lname[l]);
				return -1;
			}
	return 0;
}

/* ---- neurons ------------------------------------------------------------- */

static int plan_segs(SpicePlan *p, int l, const MSeg *seg, int nseg, bool clamp, Diags *d)
{
	const MLayer *L = &p->m->layers[l];
	for (int s = 0; s < nseg; s++) {
		int64_t lo = seg[s].lo < 0 ? 0 : seg[s].lo, hi = seg[s].hi > L->n ? L->n : seg[s].hi;
		for (int64_t i = lo; i < hi; i++) {
			double v = model_eval_expr(&p->ev, seg[s].value, L->j, i);
			if (!isfinite(v)) {
				diag_error(d, backend_loc(L->loc), "the %s value of layer '%s' neuron %lld is not "
				           "finite", clamp ? "clamped" : "initial", L->name, (long long)i);
				return -1;
			}
			SpiceNeuron *nr = &p->nr[flat(p, l, i)];
			nr->value = v;
			nr->clamped |= clamp;
		}
	}
	return 0;
}

static int plan_neurons(SpicePlan *p, Diags *d)
{
	const Model *m = p->m;
	p->n = model_state_size(m);
	p->nr = spice_xcalloc((size_t)p->n, sizeof *p->nr);
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		for (int64_t i = 0; i < L->n; i++) {
			SpiceNeuron *nr = &p->nr[flat(p, l, i)];
			nr->layer = l;
			nr->i = i;
			nr->bias = model_eval_expr(&p->ev, L->bias, L->j, i);
			if (!isfinite(nr->bias)) {
				diag_error(d, backend_loc(L->loc), "the bias of layer '%s' neuron %lld is not finite",
				           L->name, (long long)i);
				return -1;
			}
		}
		if (plan_segs(p, l, L->init, L->ninit, false, d) < 0 ||
		    plan_segs(p, l, L->clamp, L->nclamp, true, d) < 0)
			return -1;
	}
	return 0;
}

/* ---- crosspoints ----------------------------------------------------------- */

static void plan_push_xp(SpicePlan *p, size_t *cap, SpiceXp x)
{
	if (p->nxp == *cap) {
		*cap = *cap ? 2 * *cap : 256;
		p->xp = realloc(p->xp, *cap * sizeof *p->xp);
		if (!p->xp)
			abort();
	}
	p->xp[p->nxp++] = x;
}

static int plan_block_limits(const SpicePlan *p, int b, Diags *d)
{
	const MBlock *B = &p->m->blocks[b];
	const DevProfile *dev = p->opt.device;
	int64_t ra = p->m->layers[B->a].n, cb = p->m->layers[B->b].n;
	if (!dev || (dev->xbar.rows <= 0 && dev->xbar.cols <= 0))
		return 0;
	if ((dev->xbar.rows > 0 && (double)ra > dev->xbar.rows) ||
	    (dev->xbar.cols > 0 && (double)cb > dev->xbar.cols)) {
		diag_error(d, backend_loc(B->loc), "weight block '%s' needs a %lldx%lld crossbar (layer '%s' "
		           "x layer '%s'), but a crossbar of device '%s' has at most %gx%g lines", B->name,
		           (long long)ra, (long long)cb, p->m->layers[B->a].name, p->m->layers[B->b].name,
		           dev->name, dev->xbar.rows, dev->xbar.cols);
		return -1;
	}
	return 0;
}

static int plan_block(SpicePlan *p, int b, size_t *cap, Diags *d)
{
	const MBlock *B = &p->m->blocks[b];
	const double *w = p->ev.data[B->w];
	int64_t na = p->m->layers[B->a].n, nb = p->m->layers[B->b].n;
	SpiceBlockInfo *bi = &p->blk[b];
	bi->wmin = INFINITY;
	for (int64_t r = 0; r < na; r++)
		for (int64_t c = B->self ? r : 0; c < nb; c++) {
			double v = w[r * nb + c];
			if (!isfinite(v)) {
				diag_error(d, backend_loc(B->loc), "weight block '%s' has a non-finite value at "
				           "[%lld, %lld] for this input", B->name, (long long)r, (long long)c);
				return -1;
			}
			if (B->self && fabs(v - w[c * nb + r]) > 1e-12 * fmax(1, fabs(v))) {
				diag_error(d, backend_loc(B->loc), "self-coupling '%s' is not symmetric ([%lld, %lld] "
				           "= %g but [%lld, %lld] = %g): one resistor couples both neurons",
				           B->name, (long long)r, (long long)c, v, (long long)c, (long long)r,
				           w[c * nb + r]);
				return -1;
			}
			int64_t fa = flat(p, B->a, r), fb = flat(p, B->b, c);
			if (v == 0)
				continue;
			if (B->self && r == c) {           /* no resistor: the self path adds w g */
				p->nr[fa].self += v;
				continue;
			}
			bi->nonzero++;
			bi->negative += v < 0;
			bi->wmin = fmin(bi->wmin, fabs(v));
			bi->wmax = fmax(bi->wmax, fabs(v));
			plan_push_xp(p, cap, (SpiceXp){ fa, fb, v, b });
			p->nr[fa].line = p->nr[fb].line = true;
			p->nr[fb].nline |= v < 0;
			p->nr[fa].self += fabs(v);
			p->nr[fb].self += fabs(v);
			p->nr[fa].absum += fabs(v);
			p->nr[fb].absum += fabs(v);
		}
	bi->differential = bi->negative > 0;
	if (!bi->nonzero)
		bi->wmin = 0;
	return 0;
}

static int plan_blocks(SpicePlan *p, Diags *d)
{
	size_t cap = 0;
	p->blk = spice_xcalloc((size_t)p->m->nblocks, sizeof *p->blk);
	for (int b = 0; b < p->m->nblocks; b++)
		if (plan_block_limits(p, b, d) < 0 || plan_block(p, b, &cap, d) < 0)
			return -1;
	/* Neurons with a self-path but no line (a diagonal-only self block) still
	 * need their activation: they drive a line of their own. */
	for (int64_t k = 0; k < p->n; k++)
		p->nr[k].line |= p->nr[k].self != 0;
	return 0;
}

/* ---- the crossbar form of the dynamics ------------------------------------ */

/* tau dx/dt as the circuit computes it, from activations g. */
static void plan_circuit_rhs(const SpicePlan *p, const double *x, const double *g, double *out)
{
	for (int64_t k = 0; k < p->n; k++)
		out[k] = p->nr[k].bias - x[k];
	for (size_t e = 0; e < p->nxp; e++) {
		const SpiceXp *c = &p->xp[e];
		out[c->a] += c->w * g[c->b];
		out[c->b] += c->w * g[c->a];
	}
	for (int b = 0; b < p->m->nblocks; b++) {     /* self-block diagonals */
		const MBlock *B = &p->m->blocks[b];
		if (!B->self)
			continue;
		const double *w = p->ev.data[B->w];
		int64_t n = p->m->layers[B->a].n;
		for (int64_t r = 0; r < n; r++) {
			int64_t f = flat(p, B->a, r);
			out[f] += w[r * n + r] * g[f];
		}
	}
}

static int plan_check_form(SpicePlan *p, Diags *d)
{
	const Model *m = p->m;
	double *x = spice_xcalloc((size_t)p->n, sizeof *x), *want = spice_xcalloc((size_t)p->n, sizeof *want);
	double *got = spice_xcalloc((size_t)p->n, sizeof *got);
	uint64_t s = 0x9e3779b97f4a7c15u;
	for (int64_t k = 0; k < p->n; k++) {
		s = s * 6364136223846793005u + 1442695040888963407u;
		x[k] = p->nr[k].value + ((double)(s >> 11) / 9007199254740992.0 - 0.5);
	}
	model_eval_state(&p->ev, x);
	plan_circuit_rhs(p, x, p->ev.act, got);
	int bad = 0;
	for (int l = 0; l < m->nlayers && !bad; l++) {
		const MLayer *L = &m->layers[l];
		for (int64_t i = 0; i < L->n; i++) {
			int64_t f = flat(p, l, i);
			want[f] = model_eval_expr(&p->ev, L->rhs, L->j, i);
			double tol = 1e-9 * (1 + fabs(want[f]));
			if (!(fabs(want[f] - got[f]) <= tol)) {
				diag_error(d, backend_loc(L->loc), "the dynamics of layer '%s' are not a crossbar sum "
				           "(neuron %lld: the model gives tau dx/dt = %.9g, the circuit %.9g): "
				           "the netlist backend cannot map this model", L->name, (long long)i,
				           want[f], got[f]);
				bad = 1;
				break;
			}
		}
	}
	free(x);
	free(want);
	free(got);
	return bad ? -1 : 0;
}

/* ---- entry points ---------------------------------------------------------- */

SpicePlan *spice_plan(const Model *m, const BackendOptions *opt, Diags *d)
{
	if (m->nlayers == 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "'%s' declares no layers: there is no circuit to emit",
		           m->path ? m->path : "the model");
		return NULL;
	}
	SpicePlan *p = spice_xcalloc(1, sizeof *p);
	p->m = m;
	p->opt = *opt;
	static const double none = 0;
	model_eval_init(&p->ev, m, opt->inputs ? opt->inputs : &none);
	if (plan_scales(p, opt, d) < 0 || plan_names(p, d) < 0 || plan_neurons(p, d) < 0 ||
	    plan_blocks(p, d) < 0 || plan_check_form(p, d) < 0) {
		spice_plan_free(p);
		return NULL;
	}
	return p;
}

void spice_plan_free(SpicePlan *p)
{
	if (!p)
		return;
	model_eval_free(&p->ev);
	for (int l = 0; p->lname && l < p->m->nlayers; l++)
		free(p->lname[l]);
	free(p->lname);
	free(p->nr);
	free(p->xp);
	free(p->blk);
	free(p);
}

void spice_census(const SpicePlan *p, SpiceCensus *c)
{
	memset(c, 0, sizeof *c);
	c->gmin = INFINITY;
	for (size_t e = 0; e < p->nxp; e++) {
		double g = p->g0 * fabs(p->xp[e].w);
		c->gmin = fmin(c->gmin, g);
		c->gmax = fmax(c->gmax, g);
		c->crosspoints++;
		if (p->m->blocks[p->xp[e].block].dynamic)
			c->dynamic_xp++;
	}
	if (!p->nxp)
		c->gmin = 0;
	for (int64_t k = 0; k < p->n; k++) {
		const SpiceNeuron *nr = &p->nr[k];
		c->amplifiers += nr->line + nr->nline + !nr->clamped;
		c->capacitors += !nr->clamped;
		c->resistors += !nr->clamped;
		c->dac += nr->clamped;
	}
	c->resistors += c->crosspoints;
	c->dac += c->dynamic_xp;
	/* Readout: the neurons some output depends on (one ADC channel each). */
	for (int l = 0; l < p->m->nlayers; l++) {
		bool used = false;
		for (int o = 0; o < p->m->noutputs && !used; o++)
			used = sym_uses_tensor(p->m->sym, p->m->outputs[o].expr, p->m->layers[l].x) ||
			       sym_uses_tensor(p->m->sym, p->m->outputs[o].expr, p->m->layers[l].g);
		if (used)
			c->adc += p->m->layers[l].n;
	}
}

void spice_power(SpicePlan *p, const double *x, double *p_xbar, double *p_leak)
{
	model_eval_state(&p->ev, x);
	const double *g = p->ev.act;
	double xb = 0, lk = 0;
	for (size_t e = 0; e < p->nxp; e++) {
		const SpiceXp *c = &p->xp[e];
		double va = g[c->a], vb = c->w < 0 ? -g[c->b] : g[c->b];
		double dv = p->vpu * (va - vb);
		xb += p->g0 * fabs(c->w) * dv * dv;
	}
	double *r = spice_xcalloc((size_t)p->n, sizeof *r);
	plan_circuit_rhs(p, x, g, r);
	for (int64_t k = 0; k < p->n; k++) {
		if (p->nr[k].clamped)
			continue;
		double dv = p->vpu * r[k];       /* across R2: V(u) - V(x) = vpu * tau dx/dt */
		lk += dv * dv / p->r2;
	}
	free(r);
	*p_xbar = xb;
	*p_leak = lk;
}
