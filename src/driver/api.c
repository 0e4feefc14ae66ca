/* api.c - the public C API (runtime/include/dam.h) over the front end, the
 * JIT and the runtime integrators.
 *
 * A DamModel handle is one simulator instance (the driver's DamSim, which
 * `damc run` uses too) on a shared DamCode: the compilation arena with the
 * Model IR and the JIT's native kernels, reference counted so that clones
 * share the code.  Inputs and programmed weight rows live in the DamSim;
 * dam_run() is sim_run(): setup() computes the dynamic tensors, programmed
 * rows replace them, then the initial state and dam_integrate() with the JIT
 * kernels (the fused Euler loop included).
 *
 * Every failure is a DamError plus a one-line message kept in the handle;
 * nothing here exits or aborts on bad arguments.
 */
#include "dam.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dam_integrate.h"
#include "frontend.h"
#include "jit.h"
#include "sim.h"

#define API_MAX_FIXED_STEPS 1e10

_Static_assert((int)DAM_SOLVER_EULER == (int)DAM_EULER && (int)DAM_SOLVER_RK4 == (int)DAM_RK4 &&
               (int)DAM_SOLVER_DOPRI5 == (int)DAM_DOPRI5 &&
               (int)DAM_SOLVER_EXPEULER == (int)DAM_EXPEULER, "solver numbering");
_Static_assert((int)DAM_RUN_OK == (int)DAM_OK && (int)DAM_RUN_DIVERGED == (int)DAM_DIVERGED &&
               (int)DAM_RUN_NAN == (int)DAM_NAN && (int)DAM_RUN_STEP_FAIL == (int)DAM_STEP_FAIL,
               "status numbering");

typedef struct DamCode {
	atomic_int refs;
	Arena arena;           /* the Model IR and its strings */
	Model *m;
	Jit *jit;
	const JitKernels *k;
	char *warnings;        /* rendered; "" if none */
} DamCode;

struct DamModel {
	DamCode *c;
	const Model *m;        /* == c->m */
	const JitKernels *k;   /* == c->k */
	DamSim *sim;           /* workspace, state, inputs, programmed rows */
	double *g;             /* k->nstate: activations */
	double *out;           /* k->noutput */
	bool ran;              /* a run has happened (the state is meaningful) */
	DamRunInfo last;
	char err[512];
};

static pthread_mutex_t api_compile_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- errors --------------------------------------------------------------- */

static DamError api_fail(DamModel *h, DamError e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static DamError api_fail(DamModel *h, DamError e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(h->err, sizeof h->err, fmt, ap);
	va_end(ap);
	return e;
}

const char *dam_errmsg(const DamModel *h)
{
	return h ? h->err : "no model (NULL handle)";
}

#define DAM_ERRORS(X) X(DAM_E_OK) X(DAM_E_NAME) X(DAM_E_COUNT) X(DAM_E_VALUE) X(DAM_E_STATIC) \
	X(DAM_E_MISSING) X(DAM_E_OPTIONS) X(DAM_E_RUN) X(DAM_E_NORUN) X(DAM_E_ARG)

const char *dam_error_name(DamError e)
{
	switch (e) {
#define API_NAME(n) case n: return #n;
	DAM_ERRORS(API_NAME)
#undef API_NAME
	}
	return "DAM_E_UNKNOWN";
}

void dam_string_free(char *s)
{
	free(s);
}

static char *api_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

/* ---- compiling -------------------------------------------------------------- */

/* The diagnostics of d rendered into a malloc'd string. */
static char *api_render(const Diags *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return api_strdup("damc: out of memory rendering diagnostics\n");
	diag_render(d, f);
	fclose(f);
	return buf;
}

static void api_code_free(DamCode *c)
{
	if (!c)
		return;
	jit_free(c->jit);
	arena_free(&c->arena);
	free(c->warnings);
	free(c);
}

/* Front end then JIT; NULL with *err set on failure. */
static DamCode *api_compile_code(const char *path, const char *text, const DamCompileOptions *o,
                                 char **err)
{
	DamCode *c = calloc(1, sizeof *c);
	if (!c) {
		*err = api_strdup("damc: out of memory\n");
		return NULL;
	}
	atomic_init(&c->refs, 1);
	arena_init(&c->arena);
	Diags d;
	diags_init(&d, &c->arena);
	if (text)
		diag_add_text(&d, path, text, strlen(text));
	FrontendOptions fo = { 0 };
	if (o) {
		fo.defines = o->defines;
		fo.ndefines = o->ndefines;
		fo.stdlib_dir = o->stdlib_dir;
	}
	c->m = dam_frontend_compile(path, &fo, &d, &c->arena);
	char *rendered = api_render(&d);
	diags_free(&d);
	if (!c->m) {
		*err = rendered;
		api_code_free(c);
		return NULL;
	}
	c->warnings = rendered ? rendered : api_strdup("");
	JitOptions jo = { .opt_level = o && o->opt_level >= 0 ? o->opt_level : 3,
	                  .bake_weights = o ? o->bake_weights : 0, .fast_exp = o ? o->fast_exp : 0,
	                  .cache = o ? o->cache : 0 };
	char jerr[512] = "";
	c->jit = jit_compile(c->m, &jo, jerr, sizeof jerr);
	if (!c->jit) {
		size_t n = strlen(path) + strlen(jerr) + 16;
		*err = malloc(n);
		if (*err)
			snprintf(*err, n, "%s: error: %s\n", path, jerr);
		api_code_free(c);
		return NULL;
	}
	c->k = jit_kernels(c->jit);
	return c;
}

/* A new instance on c; sim is the simulator to use (NULL: a fresh one). */
static DamModel *api_instance(DamCode *c, DamSim *sim)
{
	DamModel *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->c = c;
	h->m = c->m;
	h->k = c->k;
	h->sim = sim ? sim : sim_new(c->m, c->jit);
	h->g = calloc(c->k->nstate ? c->k->nstate : 1, sizeof *h->g);
	h->out = calloc(c->k->noutput ? c->k->noutput : 1, sizeof *h->out);
	if (!h->g || !h->out) {
		sim_free(h->sim);
		free(h->g);
		free(h->out);
		free(h);
		return NULL;
	}
	return h;
}

static DamModel *api_compile(const char *path, const char *text, const DamCompileOptions *o,
                             char **err)
{
	char *dummy = NULL;
	if (!err)
		err = &dummy;
	*err = NULL;
	if (!path) {
		*err = api_strdup("error: no model file given (NULL path)\n");
		free(dummy);
		return NULL;
	}
	pthread_mutex_lock(&api_compile_lock);
	DamCode *c = api_compile_code(path, text, o, err);
	pthread_mutex_unlock(&api_compile_lock);
	DamModel *h = c ? api_instance(c, NULL) : NULL;
	if (c && !h) {
		api_code_free(c);
		*err = api_strdup("damc: out of memory\n");
	}
	free(dummy);
	return h;
}

DamModel *dam_compile_file(const char *path, const DamCompileOptions *opts, char **err)
{
	return api_compile(path, NULL, opts, err);
}

DamModel *dam_compile_string(const char *name, const char *text, const DamCompileOptions *opts,
                             char **err)
{
	if (!text) {
		if (err)
			*err = api_strdup("error: no model text given (NULL)\n");
		return NULL;
	}
	return api_compile(name ? name : "<string>", text, opts, err);
}

const char *dam_warnings(const DamModel *h)
{
	return h && h->c->warnings ? h->c->warnings : "";
}

static size_t api_block_size(const Model *m, int b)
{
	const MBlock *B = &m->blocks[b];
	return (size_t)m->layers[B->a].n * (size_t)m->layers[B->b].n;
}

DamModel *dam_model_clone(const DamModel *src)
{
	if (!src)
		return NULL;
	DamModel *h = api_instance(src->c, sim_clone(src->sim));   /* inputs and programmed rows too */
	if (!h)
		return NULL;
	atomic_fetch_add(&src->c->refs, 1);
	return h;
}

void dam_model_free(DamModel *h)
{
	if (!h)
		return;
	sim_free(h->sim);
	free(h->g);
	free(h->out);
	if (atomic_fetch_sub(&h->c->refs, 1) == 1)
		api_code_free(h->c);
	free(h);
}

/* ---- what the model declares -------------------------------------------------- */

int dam_input_count(const DamModel *h) { return h ? h->m->ninputs : 0; }
int dam_output_count(const DamModel *h) { return h ? h->m->noutputs : 0; }
int dam_layer_count(const DamModel *h) { return h ? h->m->nlayers : 0; }
int dam_weights_count(const DamModel *h) { return h ? h->m->nblocks : 0; }
size_t dam_state_size(const DamModel *h) { return h ? h->k->nstate : 0; }

const char *dam_input_name(const DamModel *h, int i)
{
	return h && i >= 0 && i < h->m->ninputs ? h->m->inputs[i].name : NULL;
}

const char *dam_output_name(const DamModel *h, int i)
{
	return h && i >= 0 && i < h->m->noutputs ? h->m->outputs[i].name : NULL;
}

const char *dam_layer_name(const DamModel *h, int i)
{
	return h && i >= 0 && i < h->m->nlayers ? h->m->layers[i].name : NULL;
}

const char *dam_weights_name(const DamModel *h, int i)
{
	return h && i >= 0 && i < h->m->nblocks ? h->m->blocks[i].name : NULL;
}

size_t dam_input_size(const DamModel *h, const char *name)
{
	int i = h ? model_find(h->m, MODEL_INPUT, name) : -1;
	return i < 0 ? 0 : (size_t)h->m->inputs[i].n;
}

size_t dam_output_size(const DamModel *h, const char *name)
{
	int i = h ? model_find(h->m, MODEL_OUTPUT, name) : -1;
	return i < 0 ? 0 : (size_t)h->m->outputs[i].n;
}

size_t dam_layer_size(const DamModel *h, const char *name)
{
	int i = h ? model_find(h->m, MODEL_LAYER, name) : -1;
	return i < 0 ? 0 : (size_t)h->m->layers[i].n;
}

int64_t dam_input_vocab(const DamModel *h, const char *name)
{
	int i = h ? model_find(h->m, MODEL_INPUT, name) : -1;
	return i < 0 || !h->m->inputs[i].is_index ? 0 : h->m->inputs[i].vocab;
}

double dam_layer_tau(const DamModel *h, const char *name)
{
	int i = h ? model_find(h->m, MODEL_LAYER, name) : -1;
	return i < 0 ? 0.0 : h->m->layers[i].tau;
}

/* Workspace offset of a block that can be reprogrammed, or -1. */
static int64_t api_block_ws(const DamModel *h, int b)
{
	const MBlock *B = &h->m->blocks[b];
	if (!B->dynamic || h->m->tensors[B->w].kind != MT_DYN)
		return -1;
	return jit_ws_offset(h->c->jit, B->w);
}

int dam_weights_shape(const DamModel *h, const char *name, size_t *rows, size_t *cols)
{
	int b = h ? model_find(h->m, MODEL_BLOCK, name) : -1;
	if (b < 0)
		return -1;
	const MBlock *B = &h->m->blocks[b];
	if (rows)
		*rows = (size_t)h->m->layers[B->a].n;
	if (cols)
		*cols = (size_t)h->m->layers[B->b].n;
	return api_block_ws(h, b) >= 0;
}

/* ---- inputs and weights ------------------------------------------------------------ */

DamError dam_set_input(DamModel *h, const char *name, const double *v, size_t n)
{
	if (!h)
		return DAM_E_ARG;
	int i = model_find(h->m, MODEL_INPUT, name);
	if (i < 0)
		return api_fail(h, DAM_E_NAME, "the model has no input '%s'", name ? name : "(null)");
	if (n && !v)
		return api_fail(h, DAM_E_ARG, "input '%s': no values (NULL)", name);
	char msg[256];
	int rc = sim_set_input(h->sim, i, v, n, msg, sizeof msg);
	if (rc < 0)
		return api_fail(h, rc == -1 ? DAM_E_COUNT : DAM_E_VALUE, "%s", msg);
	return DAM_E_OK;
}

DamError dam_set_tokens(DamModel *h, const char *name, const int *tok, size_t n)
{
	if (!h)
		return DAM_E_ARG;
	if (n && !tok)
		return api_fail(h, DAM_E_ARG, "input '%s': no values (NULL)", name ? name : "(null)");
	double *v = malloc((n ? n : 1) * sizeof *v);
	if (!v)
		return api_fail(h, DAM_E_ARG, "out of memory");
	for (size_t i = 0; i < n; i++)
		v[i] = tok[i];
	DamError e = dam_set_input(h, name, v, n);
	free(v);
	return e;
}

/* The block named `name`, or an error. */
static DamError api_block(DamModel *h, const char *name, int *bp)
{
	int b = model_find(h->m, MODEL_BLOCK, name);
	if (b < 0)
		return api_fail(h, DAM_E_NAME, "the model has no weight block '%s'", name ? name : "(null)");
	*bp = b;
	return DAM_E_OK;
}

/* A static block's values are the kernels' run-time data unless they were
 * compiled in (bake_weights): sim_tensor() is then NULL. */
static bool api_static_ws(DamModel *h, int b)
{
	const MBlock *B = &h->m->blocks[b];
	const MTensor *T = &h->m->tensors[B->w];
	return api_block_ws(h, b) < 0 && (T->kind == MT_CONST || T->kind == MT_LEARN) &&
	       sim_tensor(h->sim, B->w) != NULL;
}

static DamError api_baked(DamModel *h, int b)
{
	return api_fail(h, DAM_E_STATIC, "weight block '%s' is compiled into the code (bake_weights); "
	                "compile without it to reprogram the block", h->m->blocks[b].name);
}

DamError dam_set_weights(DamModel *h, const char *block, const double *data, size_t n)
{
	if (!h)
		return DAM_E_ARG;
	int b = -1;
	DamError e = api_block(h, block, &b);
	if (e)
		return e;
	const MBlock *B = &h->m->blocks[b];
	bool dyn = api_block_ws(h, b) >= 0;
	if (!dyn && !api_static_ws(h, b))
		return api_baked(h, b);
	size_t want = api_block_size(h->m, b);
	if (n != want)
		return api_fail(h, DAM_E_COUNT, "weight block '%s' is %lld x %lld and expects %zu values, "
		                "got %zu", block, (long long)h->m->layers[B->a].n,
		                (long long)h->m->layers[B->b].n, want, n);
	if (n && !data)
		return api_fail(h, DAM_E_ARG, "weight block '%s': no values (NULL)", block);
	for (size_t i = 0; i < n; i++)
		if (!isfinite(data[i]))
			return api_fail(h, DAM_E_VALUE, "weight block '%s' value at position %zu is not a "
			                "finite number", block, i);
	if (dyn)
		sim_set_dynamic(h->sim, B->w, data);
	else
		sim_set_tensor(h->sim, B->w, data);
	return DAM_E_OK;
}

/* Back to the model's own values: a static block's from the Model IR. */
static void api_restore(DamModel *h, int b)
{
	const MTensor *T = &h->m->tensors[h->m->blocks[b].w];
	if (api_block_ws(h, b) >= 0)
		sim_clear_dynamic(h->sim, h->m->blocks[b].w);
	else if (api_static_ws(h, b) && T->data)
		sim_set_tensor(h->sim, h->m->blocks[b].w, T->data);
}

DamError dam_clear_weights(DamModel *h, const char *block)
{
	if (!h)
		return DAM_E_ARG;
	if (!block) {
		for (int b = 0; b < h->m->nblocks; b++)
			api_restore(h, b);
		return DAM_E_OK;
	}
	int b = -1;
	DamError e = api_block(h, block, &b);
	if (e)
		return e;
	if (api_block_ws(h, b) < 0 && !api_static_ws(h, b))
		return api_baked(h, b);
	api_restore(h, b);
	return DAM_E_OK;
}

DamError dam_get_weights(DamModel *h, const char *block, double *out, size_t n)
{
	if (!h)
		return DAM_E_ARG;
	int b = model_find(h->m, MODEL_BLOCK, block);
	if (b < 0)
		return api_fail(h, DAM_E_NAME, "the model has no weight block '%s'", block ? block : "(null)");
	size_t want = api_block_size(h->m, b);
	if (n != want)
		return api_fail(h, DAM_E_COUNT, "weight block '%s' has %zu values, asked for %zu", block,
		                want, n);
	if (n && !out)
		return api_fail(h, DAM_E_ARG, "weight block '%s': no output buffer (NULL)", block);
	int64_t off = api_block_ws(h, b);
	const MTensor *T = &h->m->tensors[h->m->blocks[b].w];
	if (off >= 0) {
		if (!h->ran)
			return api_fail(h, DAM_E_NORUN, "weight block '%s' is computed at run time; no run "
			                "yet", block);
		memcpy(out, sim_tensor(h->sim, h->m->blocks[b].w), n * sizeof *out);
	} else if (api_static_ws(h, b)) {
		memcpy(out, sim_tensor(h->sim, h->m->blocks[b].w), n * sizeof *out);
	} else if ((T->kind == MT_CONST || T->kind == MT_LEARN) && T->data) {
		memcpy(out, T->data, n * sizeof *out);
	} else {
		return api_fail(h, DAM_E_STATIC, "weight block '%s' is folded into the code and cannot "
		                "be read back", block);
	}
	return DAM_E_OK;
}

/* ---- running ------------------------------------------------------------------------ */

void dam_run_options_default(DamRunOptions *o)
{
	if (!o)
		return;
	DamRunOpts r;
	dam_run_opts_default(&r);
	memset(o, 0, sizeof *o);
	o->solver = (DamSolverKind)r.solver;
	o->dt = r.dt;
	o->t_end = r.t_end;
	o->rtol = r.rtol;
	o->atol = r.atol;
	o->steady_tol = 0.0;
	o->diverge_limit = 0.0;
	o->max_steps = 0;
	o->check_every = r.check_every;
}

static DamError api_make_opts(DamModel *h, const DamRunOptions *in, DamRunOpts *o)
{
	DamRunOptions d;
	if (!in) {
		dam_run_options_default(&d);
		in = &d;
	}
	dam_run_opts_default(o);
	if ((int)in->solver < DAM_SOLVER_EULER || (int)in->solver > DAM_SOLVER_EXPEULER)
		return api_fail(h, DAM_E_OPTIONS, "unknown solver number %d (solvers: euler 0, rk4 1, "
		                "dopri5 2, expeuler 3)", (int)in->solver);
	o->solver = (DamSolver)in->solver;
	bool fixed = o->solver != DAM_DOPRI5;
	if (!(in->t_end >= 0) || !isfinite(in->t_end))
		return api_fail(h, DAM_E_OPTIONS, "t_end must be a finite time >= 0, got %g", in->t_end);
	if (fixed ? !(in->dt > 0) || !isfinite(in->dt) : !(in->dt >= 0) || !isfinite(in->dt))
		return api_fail(h, DAM_E_OPTIONS, "the step dt must be positive for solver '%s', got %g",
		                dam_solver_name(o->solver), in->dt);
	if (fixed && in->t_end / in->dt > API_MAX_FIXED_STEPS)
		return api_fail(h, DAM_E_OPTIONS, "t_end / dt = %g steps is too many", in->t_end / in->dt);
	if (!(in->rtol > 0) || !(in->atol > 0))
		return api_fail(h, DAM_E_OPTIONS, "rtol and atol must be positive, got %g and %g",
		                in->rtol, in->atol);
	o->dt = in->dt;
	o->t_end = in->t_end;
	o->rtol = in->rtol;
	o->atol = in->atol;
	o->steady_tol = in->steady_tol > 0 ? in->steady_tol : 0.0;
	o->diverge_limit = in->diverge_limit > 0 ? in->diverge_limit : 0.0;
	o->max_steps = in->max_steps > 0 ? in->max_steps : 0;
	o->check_every = in->check_every > 0 ? in->check_every : 1;
	return DAM_E_OK;
}

DamError dam_run(DamModel *h, const DamRunOptions *opts, DamRunInfo *info)
{
	if (!h)
		return DAM_E_ARG;
	int missing = sim_missing_input(h->sim);
	if (missing >= 0)
		return api_fail(h, DAM_E_MISSING, "input '%s' was not set", h->m->inputs[missing].name);
	DamRunOpts o;
	DamError e = api_make_opts(h, opts, &o);
	if (e)
		return e;
	DamRunResult r;
	char msg[256];
	sim_run(h->sim, &o, &r, NULL, NULL, msg, sizeof msg);
	h->ran = true;
	h->last = (DamRunInfo){
		.status = (DamRunStatus)r.status, .t = r.t, .t_converged = r.t_converged,
		.steps = r.steps, .rhs_evals = r.rhs_evals, .energy_start = r.energy_start,
		.energy_end = r.energy_end, .max_energy_rise = r.max_energy_rise,
	};
	if (info)
		*info = h->last;
	if (r.status != DAM_OK)
		return api_fail(h, DAM_E_RUN, "%s", msg);
	h->err[0] = '\0';
	return DAM_E_OK;
}

DamError dam_last_run(const DamModel *h, DamRunInfo *info)
{
	if (!h || !info)
		return DAM_E_ARG;
	if (!h->ran)
		return DAM_E_NORUN;
	*info = h->last;
	return DAM_E_OK;
}

/* ---- readouts -------------------------------------------------------------------------- */

static DamError api_readout(DamModel *h, const char *what, const char *name, size_t want,
                            size_t n, const double *out)
{
	if (n != want)
		return api_fail(h, DAM_E_COUNT, "%s '%s' has %zu value%s, asked for %zu", what, name,
		                want, want == 1 ? "" : "s", n);
	if (n && !out)
		return api_fail(h, DAM_E_ARG, "%s '%s': no output buffer (NULL)", what, name);
	if (!h->ran)
		return api_fail(h, DAM_E_NORUN, "no run yet: call dam_run before reading %s '%s'", what, name);
	return DAM_E_OK;
}

DamError dam_get_output(DamModel *h, const char *name, double *out, size_t n)
{
	if (!h)
		return DAM_E_ARG;
	int i = model_find(h->m, MODEL_OUTPUT, name);
	if (i < 0)
		return api_fail(h, DAM_E_NAME, "the model has no output '%s'", name ? name : "(null)");
	DamError e = api_readout(h, "output", name, (size_t)h->m->outputs[i].n, n, out);
	if (e)
		return e;
	sim_outputs(h->sim, h->out);
	memcpy(out, h->out + h->k->output_off[i], n * sizeof *out);
	return DAM_E_OK;
}

static DamError api_layer_readout(DamModel *h, const char *layer, double *out, size_t n, bool acts)
{
	if (!h)
		return DAM_E_ARG;
	int l = model_find(h->m, MODEL_LAYER, layer);
	if (l < 0)
		return api_fail(h, DAM_E_NAME, "the model has no layer '%s'", layer ? layer : "(null)");
	DamError e = api_readout(h, "layer", layer, (size_t)h->m->layers[l].n, n, out);
	if (e)
		return e;
	const double *src = sim_state(h->sim);
	if (acts) {
		sim_acts(h->sim, h->g);
		src = h->g;
	}
	memcpy(out, src + model_layer_offset(h->m, l), n * sizeof *out);
	return DAM_E_OK;
}

DamError dam_get_state(DamModel *h, const char *layer, double *out, size_t n)
{
	return api_layer_readout(h, layer, out, n, false);
}

DamError dam_get_activations(DamModel *h, const char *layer, double *out, size_t n)
{
	return api_layer_readout(h, layer, out, n, true);
}

DamError dam_get_state_all(DamModel *h, double *out, size_t n)
{
	if (!h)
		return DAM_E_ARG;
	DamError e = api_readout(h, "the state of", "all layers", h->k->nstate, n, out);
	if (e)
		return e;
	memcpy(out, sim_state(h->sim), n * sizeof *out);
	return DAM_E_OK;
}

double dam_energy(DamModel *h)
{
	if (!h || !h->ran)
		return NAN;
	return sim_energy(h->sim);
}
