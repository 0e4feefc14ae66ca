/* grad.c - the discrete adjoint of forward Euler (grad.h).
 *
 * The host side of training: it drives the forward kernels of the gradient
 * module (setup, init_state, euler, outputs) and its vector-Jacobian
 * products (jit_grad.h) over a checkpointed trajectory.  All derivatives are
 * the compiler's (sym_diff_at, emitted by the JIT); nothing here
 * differentiates numerically.  Clamped neurons: the adjoint fed to the
 * right-hand side's VJP is masked (their f is 0), while their own adjoint
 * component accumulates what the free neurons' dynamics owe them, which the
 * init / clamp VJP at n = 0 turns into the gradient of a clamp value.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grad.h"

struct DamGrad {
	Model *m;
	JitGrad *jit;
	const JitGradKernels *k;
	double *ws, *x;
	double *freem;             /* 1 on free state components, 0 on clamped */
	int *owner;                /* per state component: the seg (k.seg index) that sets x_0, -1 none */
	double *lam, *lam2, *dx, *tmp, *out;
	size_t n, nout;
};

/* 1 on the free components, 0 on the clamped ones. */
static void grad_masks(DamGrad *g)
{
	const Model *m = g->m;
	for (size_t i = 0; i < g->n; i++)
		g->freem[i] = 1.0, g->owner[i] = -1;
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		size_t off = (size_t)model_layer_offset(m, l);
		for (int s = 0; s < L->nclamp; s++)
			for (int64_t j = L->clamp[s].lo < 0 ? 0 : L->clamp[s].lo; j < L->clamp[s].hi && j < L->n; j++)
				g->freem[off + (size_t)j] = 0.0;
	}
}

/* Which segment sets neuron j of layer l at t = 0: the last init segment
 * covering it, overridden by the last clamp; as (clamp, index), -1 none. */
static void grad_seg_owner(const MLayer *L, int64_t j, int *clamp, int *index)
{
	*clamp = 0, *index = -1;
	for (int s = 0; s < L->ninit; s++)
		if (j >= L->init[s].lo && j < L->init[s].hi)
			*index = s;
	for (int s = 0; s < L->nclamp; s++)
		if (j >= L->clamp[s].lo && j < L->clamp[s].hi)
			*clamp = 1, *index = s;
}

static void grad_owners(DamGrad *g)
{
	const Model *m = g->m;
	for (int k = 0; k < g->k->nseg; k++) {
		const JitGradSeg *sg = &g->k->seg[k];
		const MLayer *L = &m->layers[sg->layer];
		size_t off = (size_t)model_layer_offset(m, sg->layer);
		for (int64_t j = sg->lo; j < sg->hi; j++) {
			int clamp, index;
			grad_seg_owner(L, j, &clamp, &index);
			if (index == sg->index && clamp == (sg->clamp ? 1 : 0))
				g->owner[off + (size_t)j] = k;
		}
	}
}

DamGrad *grad_new(Model *m, unsigned flags, char *err, size_t errlen)
{
	JitOptions o = { .opt_level = 2 };
	JitGrad *j = jit_grad_compile(m, &o, flags, err, errlen);
	if (!j)
		return NULL;
	DamGrad *g = dam_xrealloc(NULL, sizeof *g);
	memset(g, 0, sizeof *g);
	g->m = m;
	g->jit = j;
	g->k = jit_grad_kernels(j);
	g->n = g->k->fwd.nstate;
	g->nout = g->k->fwd.noutput;
	size_t nn = g->n ? g->n : 1;
	g->ws = dam_xrealloc(NULL, g->k->fwd.ws_size * sizeof *g->ws + sizeof *g->ws);
	g->x = dam_xrealloc(NULL, nn * sizeof *g->x);
	g->freem = dam_xrealloc(NULL, nn * sizeof *g->freem);
	g->owner = dam_xrealloc(NULL, nn * sizeof *g->owner);
	g->lam = dam_xrealloc(NULL, nn * sizeof *g->lam);
	g->lam2 = dam_xrealloc(NULL, nn * sizeof *g->lam2);
	g->dx = dam_xrealloc(NULL, nn * sizeof *g->dx);
	g->tmp = dam_xrealloc(NULL, (g->k->ntheta_total + 1) * sizeof *g->tmp);
	g->out = dam_xrealloc(NULL, (g->nout + 1) * sizeof *g->out);
	jit_grad_ws_init(j, m, g->ws);
	memset(g->x, 0, nn * sizeof *g->x);
	grad_masks(g);
	grad_owners(g);
	return g;
}

void grad_free(DamGrad *g)
{
	if (!g)
		return;
	jit_grad_free(g->jit);
	dam_free(g->ws);
	dam_free(g->x);
	dam_free(g->freem);
	dam_free(g->owner);
	dam_free(g->lam);
	dam_free(g->lam2);
	dam_free(g->dx);
	dam_free(g->tmp);
	dam_free(g->out);
	dam_free(g);
}

const JitGradKernels *grad_kernels(const DamGrad *g) { return g->k; }
int grad_nparams(const DamGrad *g) { return g->k->ntheta; }
TensorId grad_param(const DamGrad *g, int i) { return g->k->theta[i]; }
size_t grad_param_offset(const DamGrad *g, int i) { return g->k->theta_off[i]; }
size_t grad_size(const DamGrad *g) { return g->k->ntheta_total; }
const double *grad_state(const DamGrad *g) { return g->x; }

int grad_set_input(DamGrad *g, int input, const double *v, size_t n)
{
	if (input < 0 || input >= g->m->ninputs || (int64_t)n != g->m->inputs[input].n)
		return -1;
	memcpy(g->ws + g->k->fwd.input_off[input], v, n * sizeof *v);
	return 0;
}

int grad_set_tensor(DamGrad *g, TensorId t, const double *v)
{
	int64_t off = jit_grad_ws_offset(g->jit, t);
	if (t == 0 || t >= g->m->ntensors || off < 0 ||
	    (g->m->tensors[t].kind != MT_CONST && g->m->tensors[t].kind != MT_LEARN))
		return -1;
	memcpy(g->ws + off, v, (size_t)sym_tensor_size(g->m->sym, t) * sizeof *v);
	return 0;
}

/* Setup and x_0. */
static void grad_start(DamGrad *g)
{
	g->k->fwd.setup(g->ws);
	g->k->fwd.init_state(g->ws, g->x);
}

/* The data term at state x on the output and, when mu is non-NULL, dL/dy
 * into mu (all outputs, 0 off the loss's output). */
static double grad_data_loss_at(DamGrad *g, const GradLoss *L, const double *x, double *mu)
{
	g->k->fwd.outputs(g->ws, (double *)x, g->out);
	size_t off = g->k->fwd.output_off[L->output];
	const MOutput *O = &g->m->outputs[L->output];
	size_t ny = (size_t)(O->rank == 0 ? 1 : O->n);
	const double *y = g->out + off;
	double loss = 0;
	if (mu)
		memset(mu, 0, g->nout * sizeof *mu);
	if (L->kind == GRAD_LOSS_XENT) {
		/* -log softmax(y)_c = logsumexp(y) - y_c; dL/dy = softmax(y) - e_c */
		size_t c = (size_t)L->target[0];
		double ymax = y[0];
		for (size_t i = 1; i < ny; i++)
			ymax = fmax(ymax, y[i]);
		double z = 0;
		for (size_t i = 0; i < ny; i++)
			z += exp(y[i] - ymax);
		loss = ymax + log(z) - y[c];
		if (mu)
			for (size_t i = 0; i < ny; i++)
				mu[off + i] = exp(y[i] - ymax) / z - (i == c ? 1.0 : 0.0);
		return loss;
	}
	for (size_t i = 0; i < ny; i++) {
		double e = y[i] - L->target[i];
		loss += e * e;
		if (mu)
			mu[off + i] = 2.0 * e;
	}
	return loss;
}

/* The settling penalty at g->x: w * sum over the penalised layers' free
 * neurons of (dx/dt)^2; with lam non-NULL, 2 w dx/dt there (0 elsewhere). */
static double grad_settle(DamGrad *g, const GradLoss *L, double *lam)
{
	if (L->settle <= 0)
		return 0;
	g->k->fwd.rhs(g->ws, g->x, g->dx);
	double p = 0;
	for (int l = 0; l < g->m->nlayers; l++) {
		size_t off = (size_t)model_layer_offset(g->m, l), n = (size_t)g->m->layers[l].n;
		bool on = !L->settle_layers || L->settle_layers[l];
		for (size_t j = off; j < off + n; j++) {
			double f = on ? g->dx[j] * g->freem[j] : 0.0;
			p += f * f;
			if (lam)
				lam[j] = 2.0 * L->settle * f;
		}
	}
	return L->settle * p;
}

static double grad_data_loss(DamGrad *g, const GradLoss *L, double *mu)
{
	return grad_data_loss_at(g, L, g->x, mu);
}

/* The weight of each readout of the data term (the mean over them). */
static double grad_readout_weight(const GradLoss *L)
{
	return 1.0 / (double)(L->nreadout + 1);
}

/* The data term at the readouts before the last, read on the way forward:
 * advances g->x from step *at to step `to`, adding the data term at each
 * readout step passed (readout weight included) to *sum. */
static void grad_forward_to(DamGrad *g, const GradLoss *L, double dt, int64_t *at, int64_t to, int *next,
                            double *sum)
{
	while (*at < to) {
		int64_t stop = to;
		if (*next < L->nreadout && L->readout[*next] <= to)
			stop = L->readout[*next];
		if (stop > *at)
			g->k->fwd.euler(g->ws, g->x, dt, stop - *at);
		*at = stop;
		if (*next < L->nreadout && L->readout[*next] == stop) {
			*sum += grad_readout_weight(L) * grad_data_loss(g, L, NULL);
			++*next;
		}
	}
}

static double grad_total(DamGrad *g, const GradLoss *L, double d0, double *parts)
{
	double d = d0 + grad_readout_weight(L) * grad_data_loss(g, L, NULL), p = grad_settle(g, L, NULL);
	if (parts)
		parts[0] = d, parts[1] = p;
	return d + p;
}

double grad_loss(DamGrad *g, double dt, int64_t nsteps, int output, const double *target)
{
	GradLoss L = { .output = output, .kind = GRAD_LOSS_SQUARED, .target = target };
	return grad_loss_ex(g, dt, nsteps, &L, NULL);
}

double grad_loss_ex(DamGrad *g, double dt, int64_t nsteps, const GradLoss *L, double *parts)
{
	int64_t at = 0;
	int next = 0;
	double d0 = 0;
	grad_start(g);
	grad_forward_to(g, L, dt, &at, nsteps, &next, &d0);
	return grad_total(g, L, d0, parts);
}

/* acc += a * v (n values). */
static void grad_axpy(double *acc, double a, const double *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		acc[i] += a * v[i];
}

/* The right-hand side's VJP at x with the adjoint lam (masked to the free
 * neurons): grad += a * J_theta^T M lam, lamacc += a * J_x^T M lam. */
static void grad_vjp_rhs(DamGrad *g, const double *x, const double *lam, double a, double *grad, double *lamacc)
{
	const JitGradKernels *k = g->k;
	double *lamws = g->ws + k->lam_off;
	for (size_t i = 0; i < g->n; i++)
		lamws[i] = lam[i] * g->freem[i];
	k->f.pre(g->ws, x);
	k->f.dtheta(g->ws, x, g->tmp);
	k->f.dx(g->ws, x, g->dx);
	grad_axpy(grad, a, g->tmp, k->ntheta_total);
	grad_axpy(lamacc, a, g->dx, g->n);
}

/* One step back at x_n: theta gradient and lam_{n+1} -> lam_n. */
static void grad_step_back(DamGrad *g, const double *xn, double dt, double *grad)
{
	memcpy(g->lam2, g->lam, g->n * sizeof *g->lam);
	grad_vjp_rhs(g, xn, g->lam2, dt, grad, g->lam);
}

/* The data term at state x with its readout weight w, and its direct
 * gradients: w dL/dtheta (through the output) into gtheta, w dL/dx into gx. */
static double grad_readout(DamGrad *g, const GradLoss *L, const double *x, double w, double *gtheta, double *gx)
{
	const JitGradKernels *k = g->k;
	double *mu = g->ws + k->mu_off;
	memset(g->ws + k->lam_off, 0, g->n * sizeof *g->ws);
	double d = grad_data_loss_at(g, L, x, mu);
	for (size_t i = 0; i < g->nout; i++)
		mu[i] *= w;
	k->o.pre(g->ws, (double *)x);
	k->o.dtheta(g->ws, (double *)x, gtheta);
	k->o.dx(g->ws, (double *)x, gx);
	memset(mu, 0, g->nout * sizeof *mu);
	return w * d;
}

/* The direct part of dL/dtheta and lam_N = dL/dx_N, at x_N = g->x: the data
 * term through the output, the settling penalty through the right-hand side.
 * d0: the data term of the earlier readouts. */
static double grad_final(DamGrad *g, const GradLoss *L, double d0, double *grad, double *parts)
{
	double d = d0 + grad_readout(g, L, g->x, grad_readout_weight(L), grad, g->lam);
	double p = grad_settle(g, L, g->lam2);
	if (L->settle > 0)
		grad_vjp_rhs(g, g->x, g->lam2, 1.0, grad, g->lam);
	if (parts)
		parts[0] = d, parts[1] = p;
	return d + p;
}

/* (d x_0 / d theta)^T lam_0 through the init and clamp values. */
static void grad_initial(DamGrad *g, const double *x0, double *grad)
{
	const JitGradKernels *k = g->k;
	if (!k->nseg)
		return;
	for (int s = 0; s < k->nseg; s++) {
		const JitGradSeg *sg = &k->seg[s];
		size_t off = (size_t)model_layer_offset(g->m, sg->layer);
		for (int64_t j = sg->lo; j < sg->hi; j++) {
			size_t i = off + (size_t)j;
			g->ws[sg->ws_off + (size_t)(j - sg->lo)] = g->owner[i] == s ? g->lam[i] : 0.0;
		}
	}
	k->i.pre(g->ws, x0);
	k->i.dtheta(g->ws, x0, g->tmp);
	grad_axpy(grad, 1.0, g->tmp, k->ntheta_total);
}

double grad_run(DamGrad *g, double dt, int64_t nsteps, int64_t kk, int output, const double *target,
                double *grad)
{
	GradLoss L = { .output = output, .kind = GRAD_LOSS_SQUARED, .target = target };
	return grad_run_ex(g, dt, nsteps, kk, &L, grad, NULL);
}

/* traj[0..len) = the states x0, x1, ... of one segment, one Euler step each
 * (the same kernel calls forward and recomputed, so the same bits). */
static void grad_segment(DamGrad *g, const double *x0, double *traj, int64_t len, double dt)
{
	size_t n = g->n, sz = n * sizeof(double);
	memcpy(traj, x0, sz);
	for (int64_t s = 1; s < len; s++) {
		memcpy(traj + (size_t)s * n, traj + (size_t)(s - 1) * n, sz);
		g->k->fwd.euler(g->ws, traj + (size_t)s * n, dt, 1);
	}
}

double grad_run_ex(DamGrad *g, double dt, int64_t nsteps, int64_t kk, const GradLoss *L, double *grad,
                   double *parts)
{
	if (nsteps < 0)
		nsteps = 0;
	if (kk <= 0)
		kk = (int64_t)ceil(sqrt((double)(nsteps > 1 ? nsteps : 1)));
	int64_t nck = nsteps ? (nsteps + kk - 1) / kk : 1;
	size_t n = g->n, sz = n * sizeof(double);
	double *ck = dam_xrealloc(NULL, (size_t)nck * sz + sizeof(double));
	double *traj = dam_xrealloc(NULL, (size_t)kk * sz + sizeof(double));
	grad_start(g);
	bool whole = nck == 1;                         /* one segment: kept on the way forward */
	int64_t at = 0;
	int next = 0;
	double d0 = 0;
	for (int64_t c = 0; c < nck; c++) {           /* forward, keeping the checkpoints */
		memcpy(ck + (size_t)c * n, g->x, sz);
		int64_t len = nsteps - c * kk < kk ? nsteps - c * kk : kk;
		if (whole && len > 0) {
			grad_segment(g, g->x, traj, len, dt);
			for (; next < L->nreadout; next++)     /* the earlier readouts, from the kept states */
				d0 += grad_readout_weight(L) * grad_data_loss_at(g, L, traj + (size_t)L->readout[next] * n, NULL);
			memcpy(g->x, traj + (size_t)(len - 1) * n, sz);
			g->k->fwd.euler(g->ws, g->x, dt, 1);
		} else if (len > 0) {
			grad_forward_to(g, L, dt, &at, c * kk + len, &next, &d0);
		}
	}
	double loss = grad_final(g, L, d0, grad, parts);
	next = L->nreadout - 1;
	for (int64_t c = nck - 1; c >= 0 && nsteps > 0; c--) {
		int64_t len = nsteps - c * kk < kk ? nsteps - c * kk : kk;
		if (!whole)                                /* the segment again, forward */
			grad_segment(g, ck + (size_t)c * n, traj, len, dt);
		for (int64_t s = len - 1; s >= 0; s--) {
			const double *xn = traj + (size_t)s * n;
			grad_step_back(g, xn, dt, grad);   /* lam = dL/dx_n through the later steps */
			if (next >= 0 && L->readout[next] == c * kk + s) {   /* ... and the readout at n */
				grad_readout(g, L, xn, grad_readout_weight(L), g->tmp, g->dx);
				grad_axpy(grad, 1.0, g->tmp, g->k->ntheta_total);
				grad_axpy(g->lam, 1.0, g->dx, n);
				next--;
			}
		}
	}
	grad_initial(g, ck, grad);
	dam_free(ck);
	dam_free(traj);
	return loss;
}

void grad_outputs(DamGrad *g, double *out)
{
	g->k->fwd.outputs(g->ws, g->x, out);
}

size_t grad_output_size(const DamGrad *g) { return g->nout; }

const double *grad_eval_tensor(DamGrad *g, TensorId t)
{
	int64_t off = jit_grad_ws_offset(g->jit, t);
	if (t == 0 || off < 0)
		return NULL;
	g->k->fwd.setup(g->ws);
	return g->ws + off;
}
