/* sim.c - the simulator object (sim.h): a compiled model and one workspace.
 *
 * sim_run() is the whole life of one run: the inputs already sit in the
 * workspace at the JIT's input offsets; setup() computes the dynamic
 * tensors and biases from them, init_state() writes the initial state, and
 * dam_integrate() advances it with a DamSystem whose callbacks are the JIT
 * kernels and whose tau[] holds each layer's time constant for each of its
 * neurons.  When a run goes bad the flat component index the integrator
 * reports is mapped back to a layer name and neuron for the message.
 * Before integrating, sim_check_step() refuses a fixed step that the leak
 * of some free layer makes unstable (Euler dt >= 2 tau, RK4 dt >= 2.785 tau),
 * and after it a run whose outputs are not finite is not reported OK.
 */
#include "sim.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A run diverges when some |x_i| exceeds this many times its initial scale
 * (unless the caller sets opts->diverge_limit): a circuit's rails are a
 * fixed multiple of its signal levels. */
#define SIM_DIVERGE_FACTOR 100.0

/* Strings per call of the batched kernel: its blocks of 64 columns of 32
 * strings' buffers fill half an L1 data cache (jit_axpy.c). */
#define SIM_BATCH_GROUP 64

struct DamSim {
	const Model *m;
	const Jit *jit;
	const JitKernels *k;
	double *ws;            /* k->ws_size */
	double *x;             /* state, k->nstate */
	double *g;             /* activation scratch for traces, k->nstate */
	double *tau;           /* per component */
	double **inputs;       /* per input: the values set (NULL: not set) */
	double **dynamic;      /* per tensor: values programmed over an MT_DYN tensor (or NULL) */
	double **own;          /* per tensor held by reference (jit_ws_by_ref): this simulator's
	                        * values after sim_set_tensor (NULL: the Model's, shared) */
	double *own_static;    /* this simulator's static block (jit_static_size) after
	                        * sim_set_tensor; NULL: the Jit's, for the model's weights */
	bool static_ready;     /* the caches of static tensors in ws are current (setup ran since
	                        * the last sim_set_tensor): later runs need setup_run only */
	bool weights_model;    /* the static tensors hold the model's values (no sim_set_tensor) */
	bool split;            /* Euler runs split every step over two threads (sim_set_split) */
	SimTraceFn trace;
	void *trace_user;
	/* A batch (sim_batch_block) computes what the next check asks for, for
	 * all its strings at once: the energy at the current state, and with a
	 * steady-state test dx/dt in ws + dx_off.  The callbacks use each once. */
	bool energy_given, rhs_given;
	double energy_next;
};

static void *sim_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p) {
		fputs("damc: out of memory\n", stderr);
		exit(3);
	}
	return p;
}

static void sim_fill_tau(DamSim *s)
{
	size_t i = 0;
	for (int l = 0; l < s->m->nlayers; l++)
		for (int64_t j = 0; j < s->m->layers[l].n && i < s->k->nstate; j++)
			s->tau[i++] = s->m->layers[l].tau;
}

DamSim *sim_new(const Model *m, const Jit *jit)
{
	DamSim *s = sim_xcalloc(1, sizeof *s);
	s->m = m;
	s->jit = jit;
	s->k = jit_kernels(jit);
	s->ws = sim_xcalloc(s->k->ws_size, sizeof *s->ws);
	jit_ws_init(jit, m, s->ws);              /* the weights are run-time data */
	s->weights_model = true;
	s->x = sim_xcalloc(s->k->nstate, sizeof *s->x);
	s->g = sim_xcalloc(s->k->nstate, sizeof *s->g);
	s->tau = sim_xcalloc(s->k->nstate, sizeof *s->tau);
	s->inputs = sim_xcalloc((size_t)m->ninputs, sizeof *s->inputs);
	s->dynamic = sim_xcalloc(m->ntensors, sizeof *s->dynamic);
	s->own = sim_xcalloc(m->ntensors, sizeof *s->own);
	sim_fill_tau(s);
	return s;
}

DamSim *sim_clone(const DamSim *src)
{
	DamSim *s = sim_new(src->m, src->jit);
	int bad = 0;
	for (int i = 0; i < src->m->ninputs && !bad; i++)
		if (src->inputs[i])
			bad = sim_set_input(s, i, src->inputs[i], (size_t)src->m->inputs[i].n, NULL, 0);
	for (uint32_t t = 0; t < src->m->ntensors && !bad; t++) {
		if (src->dynamic[t])
			bad = sim_set_dynamic(s, t, src->dynamic[t]);
		const double *v = jit_ws_values(src->jit, src->ws, t);
		MTensorKind kind = src->m->tensors[t].kind;
		if (!bad && !src->weights_model && (kind == MT_CONST || kind == MT_LEARN) && v)
			bad = sim_set_tensor(s, t, v);   /* weights as programmed */
	}
	if (!bad)
		sim_set_tau(s, src->tau);          /* time constants as built */
	if (bad) {                 /* the source accepted these values: cannot happen */
		sim_free(s);
		return NULL;
	}
	return s;
}

void sim_free(DamSim *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->m->ninputs; i++)
		free(s->inputs[i]);
	free(s->inputs);
	sim_clear_dynamic(s, 0);
	free(s->dynamic);
	for (uint32_t t = 0; t < s->m->ntensors; t++)
		free(s->own[t]);
	free(s->own);
	free(s->own_static);
	free(s->ws);
	free(s->x);
	free(s->g);
	free(s->tau);
	free(s);
}

const Model *sim_model(const DamSim *s) { return s->m; }
size_t sim_state_size(const DamSim *s) { return s->k->nstate; }
size_t sim_output_size(const DamSim *s) { return s->k->noutput; }

int sim_find_input(const Model *m, const char *name)
{
	return model_find(m, MODEL_INPUT, name);
}

int sim_find_output(const Model *m, const char *name)
{
	return model_find(m, MODEL_OUTPUT, name);
}

/* ---- inputs ----------------------------------------------------------- */

int sim_check_input(const MInput *in, const double *v, size_t n, size_t *bad, char *err,
                    size_t errlen)
{
	char buf[256];
	if (!err) {
		err = buf;
		errlen = sizeof buf;
	}
	if ((int64_t)n != in->n) {
		snprintf(err, errlen, "input '%s' expects %lld value%s, got %zu", in->name,
		         (long long)in->n, in->n == 1 ? "" : "s", n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (bad)
			*bad = i;
		if (!isfinite(v[i])) {
			/* never print the value itself: "nan" is not a user's word */
			snprintf(err, errlen, "input '%s' value at position %zu is %s", in->name, i,
			         isnan(v[i]) ? "not a number" : "infinite");
			return -2;
		}
		if (in->is_index && (v[i] != floor(v[i]) || v[i] < 0 || v[i] >= (double)in->vocab)) {
			snprintf(err, errlen, "input '%s' value %.17g at position %zu is not a token "
			         "index in 0..%lld", in->name, v[i], i, (long long)(in->vocab - 1));
			return -2;
		}
	}
	return 0;
}

int sim_set_input(DamSim *s, int input, const double *v, size_t n, char *err, size_t errlen)
{
	char buf[256];
	if (!err) {
		err = buf;
		errlen = sizeof buf;
	}
	if (input < 0 || input >= s->m->ninputs) {
		snprintf(err, errlen, "no input number %d", input);
		return -1;
	}
	const MInput *in = &s->m->inputs[input];
	int rc = sim_check_input(in, v, n, NULL, err, errlen);
	if (rc < 0)
		return rc;
	if (!s->inputs[input])
		s->inputs[input] = sim_xcalloc(n, sizeof(double));
	if (n) {
		memcpy(s->inputs[input], v, n * sizeof *v);
		memcpy(s->ws + s->k->input_off[input], v, n * sizeof *v);
	}
	return 0;
}

const double *sim_input(const DamSim *s, int input)
{
	return input >= 0 && input < s->m->ninputs ? s->inputs[input] : NULL;
}

int sim_missing_input(const DamSim *s)
{
	for (int i = 0; i < s->m->ninputs; i++)
		if (!s->inputs[i])
			return i;
	return -1;
}

/* ---- dynamic tensors programmed by the host ---------------------------------- */

double *sim_tensor(DamSim *s, TensorId t)
{
	return t < s->m->ntensors ? jit_ws_values(s->jit, s->ws, t) : NULL;
}

int sim_set_dynamic(DamSim *s, TensorId t, const double *v)
{
	if (t == 0 || t >= s->m->ntensors || s->m->tensors[t].kind != MT_DYN || !sim_tensor(s, t))
		return -1;
	size_t n = (size_t)sym_tensor_size(s->m->sym, t);
	if (!s->dynamic[t])
		s->dynamic[t] = sim_xcalloc(n, sizeof(double));
	memcpy(s->dynamic[t], v, n * sizeof *v);
	return 0;
}

void sim_set_tau(DamSim *s, const double *tau)
{
	memcpy(s->tau, tau, s->k->nstate * sizeof *tau);
	memcpy(s->ws + s->k->tau_off, tau, s->k->nstate * sizeof *tau);
}

const double *sim_tau(const DamSim *s)
{
	return s->tau;
}

int sim_set_tensor(DamSim *s, TensorId t, const double *v)
{
	if (t == 0 || t >= s->m->ntensors)
		return -1;
	MTensorKind kind = s->m->tensors[t].kind;
	if ((kind != MT_CONST && kind != MT_LEARN) || jit_ws_offset(s->jit, t) < 0)
		return -1;
	size_t n = (size_t)sym_tensor_size(s->m->sym, t);
	if (jit_ws_by_ref(s->jit, t) && !s->own[t]) {   /* copy on first write */
		s->own[t] = sim_xcalloc(n, sizeof(double));
		jit_ws_point(s->jit, s->ws, t, s->own[t]);
	}
	memcpy(sim_tensor(s, t), v, n * sizeof *v);
	size_t nsb = jit_static_size(s->jit);
	if (nsb && !s->own_static) {   /* the caches of these weights: a block of its own */
		s->own_static = sim_xcalloc(nsb, sizeof(double));
		jit_ws_point_static(s->jit, s->ws, s->own_static);
	}
	s->static_ready = false;
	s->weights_model = false;
	return 0;
}

void sim_clear_dynamic(DamSim *s, TensorId t)
{
	for (uint32_t u = 0; u < s->m->ntensors; u++)
		if (t == 0 || u == t) {
			free(s->dynamic[u]);
			s->dynamic[u] = NULL;
		}
}

/* setup() computes the dynamic tensors from the inputs (and the caches of
 * the static tensors, the first time and after they changed: setup_run
 * otherwise); programmed values then replace them (a controller writing
 * crossbar rows itself). */
static void sim_setup(DamSim *s)
{
	bool programmed = false;
	if (!s->static_ready && s->own_static)   /* its own weights' static block */
		s->k->setup_static(s->ws);
	if (s->static_ready && s->k->setup_run)
		s->k->setup_run(s->ws);
	else
		s->k->setup(s->ws);
	s->static_ready = true;
	for (uint32_t t = 0; t < s->m->ntensors; t++)
		if (s->dynamic[t]) {
			memcpy(sim_tensor(s, t), s->dynamic[t], (size_t)sym_tensor_size(s->m->sym, t) * sizeof(double));
			programmed = true;
		}
	if (s->k->keyed_off >= 0)  /* programmed rows need not follow their keys */
		s->ws[s->k->keyed_off] = programmed ? 0.0 : 1.0;
	if (programmed)            /* the kernels' transposed copies of what was programmed */
		s->k->relayout(s->ws);
}

/* ---- the DamSystem callbacks ---------------------------------------------- */

static void sim_rhs(void *ctx, const double *x, double *dxdt)
{
	DamSim *s = ctx;
	if (s->rhs_given && x == s->x) {
		s->rhs_given = false;
		memcpy(dxdt, s->ws + s->k->dx_off, s->k->nstate * sizeof *dxdt);
		return;
	}
	s->k->rhs(s->ws, x, dxdt);
}

static double sim_energy_cb(void *ctx, const double *x)
{
	DamSim *s = ctx;
	if (s->energy_given && x == s->x) {
		s->energy_given = false;
		return s->energy_next;
	}
	return s->k->energy(s->ws, x);
}

static void sim_euler_steps(void *ctx, double *x, double dt, int64_t nsteps)
{
	DamSim *s = ctx;
	s->k->euler(s->ws, x, dt, nsteps);
}

/* ---- one run on two threads (JIT_SPLIT) ---------------------------------- */

typedef struct SimSplit {
	DamSim *s;
	double *x, dt;
	int64_t nsteps;
	pthread_barrier_t bar;
} SimSplit;

/* Thread h's part of the steps; between the phases both threads wait at the
 * barrier: acts (thread 0) | rhs halves | update halves | the next step. */
static void sim_split_steps(SimSplit *S, int h)
{
	const JitKernels *k = S->s->k;
	for (int64_t i = 0; i < S->nsteps; i++) {
		if (h == 0)
			k->acts(S->s->ws, S->x, S->s->g);
		pthread_barrier_wait(&S->bar);
		k->rhs_half[h](S->s->ws, S->x);
		pthread_barrier_wait(&S->bar);
		k->update_half[h](S->s->ws, S->x, S->dt, 0);
		pthread_barrier_wait(&S->bar);
	}
}

static void *sim_split_worker(void *p)
{
	sim_split_steps(p, 1);
	return NULL;
}

static void sim_euler_steps_split(void *ctx, double *x, double dt, int64_t nsteps)
{
	DamSim *s = ctx;
	SimSplit S = { .s = s, .x = x, .dt = dt, .nsteps = nsteps };
	pthread_t th;
	if (pthread_barrier_init(&S.bar, NULL, 2) == 0) {
		if (pthread_create(&th, NULL, sim_split_worker, &S) == 0) {
			sim_split_steps(&S, 0);
			pthread_join(th, NULL);
			pthread_barrier_destroy(&S.bar);
			return;
		}
		pthread_barrier_destroy(&S.bar);
	}
	s->k->euler(s->ws, x, dt, nsteps);      /* no thread: the same steps on one */
}

bool sim_set_split(DamSim *s, bool on)
{
	s->split = on && s->k->rhs_half[0] && s->k->update_half[0];
	return s->split;
}

static void sim_trace_cb(void *user, double t, const double *x, double energy)
{
	DamSim *s = user;
	s->k->acts(s->ws, x, s->g);
	s->trace(s->trace_user, t, x, s->g, energy);
}

/* ---- running ------------------------------------------------------------- */

void sim_locate(const Model *m, int64_t i, int *layer, int64_t *neuron)
{
	int64_t off = 0;
	for (int l = 0; l < m->nlayers; l++) {
		if (i < off + m->layers[l].n) {
			*layer = l;
			*neuron = i - off;
			return;
		}
		off += m->layers[l].n;
	}
	*layer = -1;
	*neuron = i;
}

/* What a non-finite number is, in words ("nan" is not printed anywhere). */
static const char *sim_nonfinite(double v)
{
	return isnan(v) ? "not a number" : "infinite";
}

static void sim_message(const DamSim *s, const DamRunResult *r, char *msg, size_t len)
{
	if (!msg || !len)
		return;
	msg[0] = '\0';
	if (r->status == DAM_OK)
		return;
	if (r->status == DAM_STEP_FAIL) {
		snprintf(msg, len, "the step size underflowed (or too many steps) at t = %g", r->t);
		return;
	}
	if (r->status == DAM_NAN && r->bad_index < 0) {      /* the state is finite, E is not */
		snprintf(msg, len, "the energy is %s at t = %g", sim_nonfinite(r->energy_end), r->t_bad);
		return;
	}
	int layer;
	int64_t neuron;
	sim_locate(s->m, r->bad_index, &layer, &neuron);
	const char *what = "diverged";
	if (r->status == DAM_NAN && (size_t)r->bad_index < s->k->nstate) {
		double x = s->x[r->bad_index];
		what = isinf(x) ? "became infinite" : isnan(x) ? "became not a number"
		                                             : "has a rate of change that is not finite";
	}
	if (layer >= 0)
		snprintf(msg, len, "layer '%s' neuron %lld %s at t = %g", s->m->layers[layer].name,
		         (long long)neuron, what, r->t_bad);
	else
		snprintf(msg, len, "state component %lld %s at t = %g", (long long)neuron, what,
		         r->t_bad);
}

/* The scale of x and of tau f + x, f = dx/dt at x (0 for clamped neurons). */
static double sim_scale_of(const DamSim *s, const double *f)
{
	double scale = 1.0;
	for (size_t i = 0; i < s->k->nstate; i++) {
		scale = fmax(scale, fabs(s->x[i]));
		scale = fmax(scale, fabs(s->tau[i] * f[i] + s->x[i]));
	}
	return isfinite(scale) ? scale : 1.0;
}

/* The scale a run starts at: max(1, |x(0)|, |tau f(x(0)) + x(0)|), the
 * initial state and what the leak pulls it towards. */
static double sim_initial_scale(DamSim *s)
{
	double *f = sim_xcalloc(s->k->nstate, sizeof *f);
	s->k->rhs(s->ws, s->x, f);
	double scale = sim_scale_of(s, f);
	free(f);
	return scale;
}

/* ---- the stability of fixed steps ---------------------------------------- */

/* Largest h/tau for which the solver's step on dx/dt = -x/tau stays bounded
 * (0: no limit).  Euler: |1 - z| <= 1, z <= 2.  RK4: |1 - z + z^2/2 - z^3/6
 * + z^4/24| <= 1 up to the real root of z^3 - 4z^2 + 12z - 24 = 0. */
static double sim_leak_limit(DamSolver solver)
{
	switch (solver) {
	case DAM_EULER: return 2.0;
	case DAM_RK4: return 2.785293563405282;
	case DAM_DOPRI5: case DAM_EXPEULER: return 0.0;   /* adaptive; exact on the leak */
	}
	return 0.0;
}

static bool sim_has_free_neuron(const MLayer *L)
{
	for (int64_t j = 0; j < L->n; j++) {
		bool held = false;
		for (int c = 0; c < L->nclamp && !held; c++)
			held = j >= L->clamp[c].lo && j < L->clamp[c].hi;
		if (!held)
			return true;
	}
	return false;
}

/* dt_max with %g, rounded down: a step the message names is below the bound. */
static void sim_format_step(double dt_max, char *buf, size_t len)
{
	double v = dt_max;
	for (int k = 0; k < 4; k++) {
		snprintf(buf, len, "%g", v);
		if (strtod(buf, NULL) <= dt_max)
			return;
		v = dt_max * (1.0 - 1e-6 * (k + 1));
	}
	snprintf(buf, len, "%.17g", dt_max);
}

int sim_check_step(const Model *m, const DamRunOpts *o, SimStepLimit *lim, char *msg, size_t len)
{
	SimStepLimit l = { -1, 0.0, 0.0 };
	double z = sim_leak_limit(o->solver), h = fmin(o->dt, o->t_end);
	if (msg && len)
		msg[0] = '\0';
	if (z > 0.0 && h > 0.0)
		for (int i = 0; i < m->nlayers; i++)
			if ((l.layer < 0 || m->layers[i].tau < l.tau) && sim_has_free_neuron(&m->layers[i])) {
				l.layer = i;
				l.tau = m->layers[i].tau;
			}
	if (lim)
		*lim = l;
	if (l.layer < 0 || !(h >= z * l.tau))          /* at the bound the leak does not decay */
		return 0;
	l.dt_max = z * l.tau;
	if (lim)
		*lim = l;
	if (msg && len) {
		char best[64], step[96];
		sim_format_step(l.dt_max, best, sizeof best);
		if (h < o->dt)
			snprintf(step, sizeof step, "one step of t_end = %g", h);
		else
			snprintf(step, sizeof step, "dt = %g", h);
		snprintf(msg, len, "solver '%s' is unstable with %s on layer '%s' (tau = %g): its leak "
		         "is stable only for dt < %s (%.4g tau)", dam_solver_name(o->solver), step,
		         m->layers[l.layer].name, l.tau, best, z);
	}
	return -1;
}

/* A step sim_check_step refuses: nothing is integrated, the result is the
 * initial state with status STEP_FAIL. */
static DamStatus sim_refuse(DamSim *s, DamRunResult *res, const char *why, char *msg, size_t len)
{
	memset(res, 0, sizeof *res);
	res->status = DAM_STEP_FAIL;
	res->t_converged = res->t_converged_tau = res->t_energy_rise = res->t_bad = -1.0;
	res->bad_index = -1;
	res->energy_start = res->energy_end = s->k->energy(s->ws, s->x);
	if (msg && len)
		snprintf(msg, len, "%s; use a dt well below it, or the solver dopri5 (adaptive) or "
		         "expeuler (exact on the leak)", why);
	return res->status;
}

/* An OK run whose outputs are not all finite is a NAN run (bad_index -1). */
static void sim_check_outputs(DamSim *s, DamRunResult *res, char *msg, size_t len)
{
	if (res->status != DAM_OK || !s->k->noutput)
		return;
	double *out = sim_xcalloc(s->k->noutput, sizeof *out);
	s->k->outputs(s->ws, s->x, out);
	for (int o = 0; o < s->m->noutputs; o++)
		for (int64_t j = 0; j < s->m->outputs[o].n; j++) {
			double v = out[s->k->output_off[o] + (size_t)j];
			if (isfinite(v) || res->status != DAM_OK)
				continue;
			res->status = DAM_NAN;
			res->t_bad = res->t;
			if (msg && len)
				snprintf(msg, len, "output '%s' value %lld is %s at t = %g", s->m->outputs[o].name,
				         (long long)j, sim_nonfinite(v), res->t);
		}
	free(out);
}

DamStatus sim_run(DamSim *s, const DamRunOpts *opts, DamRunResult *res, SimTraceFn trace,
                  void *user, char *message, size_t msglen)
{
	DamRunOpts o = *opts;
	DamSystem sys = {
		.n = s->k->nstate, .tau = s->tau, .ctx = s,
		.rhs = sim_rhs, .energy = sim_energy_cb,
		.euler_steps = s->split ? sim_euler_steps_split : sim_euler_steps,
	};
	s->trace = trace;
	s->trace_user = user;
	o.trace = trace ? sim_trace_cb : NULL;
	o.trace_user = s;
	sim_setup(s);
	memset(s->x, 0, s->k->nstate * sizeof *s->x);
	s->k->init_state(s->ws, s->x);
	char why[256];
	if (sim_check_step(s->m, &o, NULL, why, sizeof why) < 0)
		return sim_refuse(s, res, why, message, msglen);
	if (!(o.diverge_limit > 0))
		o.diverge_limit = SIM_DIVERGE_FACTOR * sim_initial_scale(s);
	dam_integrate(&sys, s->x, &o, res);
	sim_message(s, res, message, msglen);
	sim_check_outputs(s, res, message, msglen);
	return res->status;
}

/* ---- batches in lockstep (sim_run_batch) ------------------------------------ */

/* May the strings share the weights of s[0] in the batched kernel? */
static bool sim_batchable(DamSim *const *s, size_t n, const DamRunOpts *o)
{
	const JitKernels *k = s[0]->k;
	if (o->solver != DAM_EULER || !k->euler_batch)
		return false;
	for (size_t i = 1; i < n; i++)
		if (s[i]->jit != s[0]->jit)
			return false;
	for (uint32_t t = 0; t < s[0]->m->ntensors; t++) {
		MTensorKind kind = s[0]->m->tensors[t].kind;
		const double *w0 = jit_ws_values(s[0]->jit, s[0]->ws, t);
		if ((kind != MT_CONST && kind != MT_LEARN) || !w0)
			continue;
		size_t bytes = (size_t)sym_tensor_size(s[0]->m->sym, t) * sizeof(double);
		for (size_t i = 1; i < n; i++) {   /* the model's own values in both: equal without looking */
			const double *wi = jit_ws_values(s[i]->jit, s[i]->ws, t);
			if (!(s[i]->weights_model && s[0]->weights_model) && wi != w0 && memcmp(wi, w0, bytes) != 0)
				return false;
		}
	}
	return true;
}

typedef struct SimBatch {
	DamSim *const *s;
	size_t n, nblocks;
	const DamRunOpts *opts;
	DamRunResult *res;
	char *msg;
	size_t msglen;
	bool batched;
} SimBatch;

static char *sim_batch_msg(const SimBatch *B, size_t i)
{
	return B->msg ? B->msg + i * B->msglen : NULL;
}

/* What sim_run does before dam_integrate; false if the step is refused
 * (res and the message are then final). */
static bool sim_batch_prologue(DamSim *s, const DamRunOpts *opts, DamRunOpts *o, DamRunResult *res,
                               char *msg, size_t msglen)
{
	*o = *opts;
	o->trace = NULL;
	o->trace_user = s;
	s->trace = NULL;
	sim_setup(s);
	memset(s->x, 0, s->k->nstate * sizeof *s->x);
	s->k->init_state(s->ws, s->x);
	char why[256];
	if (sim_check_step(s->m, o, NULL, why, sizeof why) < 0) {
		sim_refuse(s, res, why, msg, msglen);
		return false;
	}
	return true;                /* the divergence limit: sim_batch_first */
}

/* What the next check of strings s[idx[0..m)] asks for, for all of them at
 * once through the batched kernels (a row of the weights read once for
 * the group): the energy, and with a steady-state test dx/dt. */
static void sim_batch_checks(DamSim *const *s, const size_t *idx, size_t m, bool rhs, double *scratch)
{
	const JitKernels *k = s[0]->k;
	double **wsv = sim_xcalloc(m, sizeof *wsv), **xv = sim_xcalloc(m, sizeof *xv);
	double *e = sim_xcalloc(m, sizeof *e);
	for (size_t q = 0; q < m; q++) {
		wsv[q] = s[idx[q]]->ws;
		xv[q] = s[idx[q]]->x;
	}
	for (size_t g = 0; g < m; g += SIM_BATCH_GROUP) {
		int64_t ng = (int64_t)(m - g < SIM_BATCH_GROUP ? m - g : SIM_BATCH_GROUP);
		k->energy_batch(wsv + g, xv + g, ng, e + g, scratch);
		if (rhs)
			k->rhs_batch(wsv + g, xv + g, ng, 0.0, 1, scratch);
	}
	for (size_t q = 0; q < m; q++) {
		s[idx[q]]->energy_next = e[q];
		s[idx[q]]->energy_given = true;
		s[idx[q]]->rhs_given = rhs;
	}
	free(wsv);
	free(xv);
	free(e);
}

/* Before the first check: the default divergence limits of the strings
 * that need one (as sim_run computes them: SIM_DIVERGE_FACTOR times
 * sim_initial_scale, from dx/dt at the initial state) and what the check
 * at t = 0 asks for, from the batched kernels. */
static void sim_batch_first(DamSim *const *s, DamRunOpts *o, const bool *ok, size_t n, double *scratch)
{
	const JitKernels *k = s[0]->k;
	size_t *idx = sim_xcalloc(n, sizeof *idx), m = 0;
	bool rhs = false;
	for (size_t i = 0; i < n; i++)
		if (ok[i]) {
			memset(s[i]->ws + k->dx_off, 0, k->nstate * sizeof(double));   /* clamped: 0 */
			rhs = rhs || !(o[i].diverge_limit > 0) || o[i].steady_tol > 0;
			idx[m++] = i;
		}
	sim_batch_checks(s, idx, m, rhs, scratch);
	for (size_t q = 0; q < m; q++) {
		DamSim *si = s[idx[q]];
		if (!(o[idx[q]].diverge_limit > 0))
			o[idx[q]].diverge_limit = SIM_DIVERGE_FACTOR * sim_scale_of(si, si->ws + k->dx_off);
		si->rhs_given = o[idx[q]].steady_tol > 0;
	}
	free(idx);
}

/* Strings [lo, hi) in lockstep: each chunk of steps for all strings still
 * running in one call of the batched kernel, then each one's checks. */
static void sim_batch_block(const SimBatch *B, size_t lo, size_t hi)
{
	size_t n = hi - lo, na = 0;
	DamRunOpts *o = sim_xcalloc(n, sizeof *o);
	DamSystem *sys = sim_xcalloc(n, sizeof *sys);
	DamEulerRun **run = sim_xcalloc(n, sizeof *run);
	double **wsv = sim_xcalloc(n, sizeof *wsv), **xv = sim_xcalloc(n, sizeof *xv);
	size_t *act = sim_xcalloc(n, sizeof *act);
	double *scratch = sim_xcalloc(B->s[lo]->k->batch_pack +
	                              (n < SIM_BATCH_GROUP ? n : SIM_BATCH_GROUP) * B->s[lo]->k->batch_scratch,
	                              sizeof *scratch);
	bool *ok = sim_xcalloc(n, sizeof *ok);
	for (size_t i = 0; i < n; i++)
		ok[i] = sim_batch_prologue(B->s[lo + i], B->opts, &o[i], &B->res[lo + i], sim_batch_msg(B, lo + i),
		                           B->msglen);
	sim_batch_first(B->s + lo, o, ok, n, scratch);
	for (size_t i = 0; i < n; i++) {
		DamSim *s = B->s[lo + i];
		if (!ok[i])
			continue;
		sys[i] = (DamSystem){ .n = s->k->nstate, .tau = s->tau, .ctx = s, .rhs = sim_rhs,
		                      .energy = sim_energy_cb, .euler_steps = sim_euler_steps };
		run[i] = dam_euler_begin(&sys[i], s->x, &o[i], &B->res[lo + i]);
		if (run[i])
			act[na++] = i;
	}
	const JitKernels *k = B->s[lo]->k;
	while (na > 0) {
		int64_t full = 0;
		double last = 0.0;
		size_t m = 0;
		for (size_t a = 0; a < na; a++)            /* the same plan for every string */
			if (dam_euler_chunk(run[act[a]], &full, &last))
				act[m++] = act[a];
			else
				dam_euler_end(run[act[a]]), run[act[a]] = NULL;
		na = m;
		if (!na)
			break;
		for (size_t a = 0; a < na; a++) {
			wsv[a] = B->s[lo + act[a]]->ws;
			xv[a] = B->s[lo + act[a]]->x;
		}
		for (size_t g = 0; g < na; g += SIM_BATCH_GROUP) {   /* L1-sized groups */
			int64_t ng = (int64_t)(na - g < SIM_BATCH_GROUP ? na - g : SIM_BATCH_GROUP);
			if (full > 0)
				k->euler_batch(wsv + g, xv + g, ng, B->opts->dt, full, scratch);
			if (last > 0.0)
				k->euler_batch(wsv + g, xv + g, ng, last, 1, scratch);
		}
		sim_batch_checks(B->s + lo, act, na, B->opts->steady_tol > 0, scratch);
		for (size_t a = 0; a < na; a++)
			dam_euler_after(run[act[a]]);
	}
	for (size_t i = 0; i < n; i++) {
		DamSim *s = B->s[lo + i];
		if (!run[i] && !sys[i].ctx)
			continue;                          /* refused, or out of memory */
		sim_message(s, &B->res[lo + i], sim_batch_msg(B, lo + i), B->msglen);
		sim_check_outputs(s, &B->res[lo + i], sim_batch_msg(B, lo + i), B->msglen);
	}
	for (size_t i = 0; i < n; i++)
		B->s[lo + i]->energy_given = B->s[lo + i]->rhs_given = false;
	free(o);
	free(sys);
	free(run);
	free(wsv);
	free(xv);
	free(act);
	free(ok);
	free(scratch);
}

static void sim_batch_job(int64_t i, void *user)
{
	const SimBatch *B = user;
	size_t lo = (size_t)i * B->n / B->nblocks, hi = (size_t)(i + 1) * B->n / B->nblocks;
	if (B->batched) {
		sim_batch_block(B, lo, hi);
		return;
	}
	for (size_t r = lo; r < hi; r++)
		sim_run(B->s[r], B->opts, &B->res[r], NULL, NULL, sim_batch_msg(B, r), B->msglen);
}

int sim_run_batch(DamSim *const *s, size_t n, const DamRunOpts *opts, DamRunResult *res, char *msg,
                  size_t msglen, int nthreads)
{
	if (!n)
		return 0;
	SimBatch B = { s, n, 1, opts, res, msg, msg ? msglen : 0, sim_batchable(s, n, opts) };
	int nt = nthreads > 0 ? nthreads : 0;
	if (nt == 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		nt = c > 0 ? (int)c : 1;
	}
	B.nblocks = (size_t)nt < n ? (size_t)nt : n;
	dam_parallel_for((int64_t)B.nblocks, nt, sim_batch_job, &B);
	return B.batched;
}

const double *sim_state(const DamSim *s) { return s->x; }

void sim_acts(DamSim *s, double *g) { s->k->acts(s->ws, s->x, g); }

void sim_outputs(DamSim *s, double *out) { s->k->outputs(s->ws, s->x, out); }

double sim_energy(DamSim *s) { return s->k->energy(s->ws, s->x); }
