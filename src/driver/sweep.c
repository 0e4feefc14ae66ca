/* sweep.c - `damc sweep MODEL.dam -c SWEEP.lua -o runs.jsonl`: many runs of
 * one model over a grid or a random sample of its params and run options.
 *
 * The config is an ordinary run config (runcfg.c reads solver, dt, t_end,
 * params, dataset, outputs, ...) plus one table, `sweep`, read here through
 * cfg_load_lua_extra:
 *
 *     sweep = { grid = { beta = { 2, 4, 8 }, dt = { 1e-3, 5e-4 } } }
 *     sweep = { random = { beta = { min = 1, max = 16, log = true },
 *                          solver = { "euler", "rk4" } },
 *               samples = 50, seed = 7 }
 *
 * A name is a model `param` (the model is compiled again for each distinct
 * combination of param values, as with -D) or a run option (solver, dt,
 * t_end, rtol, atol, steady_tol, diverge_limit).  The axes are ordered params
 * first, then options, each by name; the last varies fastest, and every
 * point runs every input row (the dataset or the inputs) innermost.  So run
 * i is point i / nrows, row i % nrows, and the runs of one param combination
 * are contiguous: a "group", compiled once.
 *
 * The command is a flat list of steps: flags, the config, the base model
 * (which names are params), the axes, every point checked before anything
 * runs (front end and rows for each param combination, options for each
 * point), a hash of the plan, the output opened (resuming a `.part` file),
 * then the runs in units of at most SW_UNIT runs of one group: each unit runs
 * on all cores (one fresh simulator per run, so results do not depend on
 * the thread count) and its lines are appended and flushed in run order.
 * Built with MPI and started by mpirun, unit u runs on rank u % size and rank
 * 0 writes every line in order, so the output is byte-identical to a single
 * process's.  Every line carries the plan hash; a restarted sweep keeps the
 * complete lines of the `.part` that carry it, drops a truncated last line
 * and continues with the next run.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#ifdef DAM_HAVE_MPI
#include <mpi.h>
#endif

#include "cfgloc.h"
#include "commands.h"
#include "frontend.h"
#include "jit.h"
#include "report.h"
#include "run.h"
#include "runcfg.h"
#include "sim.h"

#define SW_UNIT      16                /* runs per unit of work (and per flush) */
#define SW_MAX_RUNS  10000000u
#define SW_MAX_AXES  64
#define SW_TAG       7

static const char sw_usage[] =
	"usage: damc sweep MODEL.dam -c SWEEP.lua [-o runs.jsonl] [options]\n"
	"\n"
	"Run MODEL.dam over a grid or a random sample of its params and run options\n"
	"(the `sweep` table of SWEEP.lua, docs/cli.md), every point on every input row;\n"
	"one JSON line per run, in run order.\n"
	"\n"
	"  -c SWEEP.lua           the sweep (and the run settings it shares with damc run)\n"
	"  -o FILE                write FILE (appended to FILE.part, renamed when complete;\n"
	"                         an interrupted sweep resumes from FILE.part); default stdout\n"
	"  -D, --input, --dataset, --solver, --dt, --t-end, --rtol, --atol, --steady-tol,\n"
	"  --diverge-limit        as for damc run: the base every point starts from\n"
	"  --threads N            worker threads (default: all cores, shared by the MPI ranks)\n"
	"  --check-every N, -O0 .. -O3, --bake-weights   as for damc run\n"
	"  --no-progress          no progress bar on a terminal\n"
	"  --stop-after K         (tests) stop after the unit that completes K runs, as if\n"
	"                         killed: FILE.part stays, exit status 130\n"
	"  -h, --help             show this help\n"
	"\n"
#ifdef DAM_HAVE_MPI
	"Started by mpirun (mpirun -n N damc sweep ...), the runs are spread over the ranks\n"
	"and rank 0 writes the same bytes a single process writes.\n"
#else
	"This damc was built without MPI: a sweep runs locally only (all cores).\n"
#endif
	"\n"
	"Exit status: 0 the sweep is complete (each run's status is in its line), 1 input\n"
	"errors (nothing written), 2 usage.\n";

static const char *const sw_option_names[] = {
	"atol", "diverge_limit", "dt", "rtol", "solver", "steady_tol", "t_end",
};
#define SW_NOPTIONS (sizeof sw_option_names / sizeof sw_option_names[0])

/* ---- the sweep as read from Lua ------------------------------------------ */

typedef struct SwVal {
	double num;
	const char *str;       /* non-NULL: a string value */
} SwVal;

typedef struct SwAxis {
	char *name;
	bool param;            /* a model param (else a run option) */
	SwVal *v; size_t n;    /* grid values, or random choices */
	char **strs;           /* owned strings of v */
	bool range, log;       /* random: uniform (log-uniform) in [lo, hi] */
	double lo, hi;
	Loc loc;               /* the key in the config */
} SwAxis;

typedef struct SwSpec {
	bool random;
	SwAxis ax[SW_MAX_AXES]; size_t nax;
	size_t samples;
	unsigned long long *seeds; size_t nseeds;
	Loc loc;               /* the `sweep` key */
} SwSpec;

/* ---- reading the sweep table (inside the config's sandbox) ---------------------- */

typedef struct SwLoad {
	SwSpec *sp;
	Diags *d;
	const Lx *lx;
	const char *dir;       /* the config's directory ("" current) */
	bool quiet;            /* not rank 0: no diagnostics */
} SwLoad;

static int sw_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The string keys of the table at the top, sorted (NULL if some key is not a string). */
static char **sw_keys(lua_State *L, size_t *n)
{
	size_t cap = 8, k = 0;
	char **v = run_xcalloc(cap, sizeof *v);
	bool bad = false;
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		if (lua_type(L, -2) != LUA_TSTRING) {
			bad = true;
		} else {
			if (k == cap) {
				v = realloc(v, (cap *= 2) * sizeof *v);
				if (!v)
					exit(3);
			}
			v[k++] = run_strdup(lua_tostring(L, -2));
		}
		lua_pop(L, 1);
	}
	qsort(v, k, sizeof *v, sw_cmp_str);
	*n = k;
	if (bad) {
		for (size_t i = 0; i < k; i++)
			free(v[i]);
		free(v);
		return NULL;
	}
	return v;
}

static void sw_free_keys(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static char *sw_resolve(const char *dir, const char *p)
{
	if (p[0] == '/' || !dir[0])
		return run_strdup(p);
	size_t n = strlen(dir) + strlen(p) + 2;
	char *s = run_xcalloc(n, 1);
	snprintf(s, n, "%s/%s", dir, p);
	return s;
}

/* The values of the array at the top into ax (numbers or strings). */
static int sw_read_values(lua_State *L, SwLoad *ld, SwAxis *ax, const char *table)
{
	size_t n = lua_rawlen(L, -1);
	if (n == 0) {
		diag_error(ld->d, ax->loc, "%s.%s is empty: give it at least one value", table, ax->name);
		return -1;
	}
	ax->v = run_xcalloc(n, sizeof *ax->v);
	ax->strs = run_xcalloc(n, sizeof *ax->strs);
	ax->n = n;
	for (size_t i = 0; i < n; i++) {
		int t = lua_rawgeti(L, -1, (lua_Integer)i + 1);
		if (t == LUA_TNUMBER && isfinite(lua_tonumber(L, -1))) {
			ax->v[i].num = lua_tonumber(L, -1);
		} else if (t == LUA_TSTRING) {
			ax->strs[i] = run_strdup(lua_tostring(L, -1));
			ax->v[i].str = ax->strs[i];
		} else {
			diag_error(ld->d, ax->loc, "%s.%s value %zu must be a finite number or a string, got %s",
			           table, ax->name, i + 1, t == LUA_TNUMBER ? "a non-finite number" :
			           luaL_typename(L, -1));
			lua_pop(L, 1);
			return -1;
		}
		lua_pop(L, 1);
	}
	return 0;
}

static int sw_field_number(lua_State *L, const char *key, double *out)
{
	int t = lua_getfield(L, -1, key);
	*out = lua_tonumber(L, -1);
	lua_pop(L, 1);
	return t == LUA_TNUMBER && isfinite(*out) ? 0 : -1;
}

static bool sw_has_field(lua_State *L, const char *k1, const char *k2)
{
	int t1 = lua_getfield(L, -1, k1);
	int t2 = lua_getfield(L, -2, k2);
	lua_pop(L, 2);
	return t1 != LUA_TNIL || t2 != LUA_TNIL;
}

/* random.NAME = { min = a, max = b [, log = true] } */
static int sw_read_range(lua_State *L, SwLoad *ld, SwAxis *ax)
{
	ax->range = true;
	if (sw_field_number(L, "min", &ax->lo) < 0 || sw_field_number(L, "max", &ax->hi) < 0 ||
	    !(ax->lo <= ax->hi)) {
		diag_error(ld->d, ax->loc, "random.%s must have finite numbers min <= max", ax->name);
		return -1;
	}
	int t = lua_getfield(L, -1, "log");
	ax->log = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (t != LUA_TNIL && t != LUA_TBOOLEAN) {
		diag_error(ld->d, ax->loc, "random.%s.log must be a boolean", ax->name);
		return -1;
	}
	if (ax->log && !(ax->lo > 0)) {
		diag_error(ld->d, ax->loc, "random.%s: a log range needs min > 0, got %g", ax->name, ax->lo);
		return -1;
	}
	return 0;
}

/* grid = { NAME = {..}, .. } or random = { NAME = range | {..}, .. } at the top. */
static int sw_read_axes(lua_State *L, SwLoad *ld, const char *table)
{
	SwSpec *sp = ld->sp;
	Loc tloc = lx_key_loc(ld->lx, "sweep", table, NULL);
	if (lua_type(L, -1) != LUA_TTABLE) {
		diag_error(ld->d, tloc, "sweep.%s must be a table of NAME = { values }, got %s", table,
		           luaL_typename(L, -1));
		return -1;
	}
	size_t n;
	char **keys = sw_keys(L, &n);
	if (!keys) {
		diag_error(ld->d, tloc, "sweep.%s keys must be names", table);
		return -1;
	}
	int bad = 0;
	if (n == 0) {
		diag_error(ld->d, tloc, "the %s is empty: give at least one NAME = { V1, V2, ... }",
		           !strcmp(table, "grid") ? "grid" : "random sample");
		bad = -1;
	} else if (n > SW_MAX_AXES) {
		diag_error(ld->d, tloc, "sweep.%s has %zu names, at most %d", table, n, SW_MAX_AXES);
		bad = -1;
	}
	for (size_t i = 0; i < n && !bad; i++) {
		SwAxis *ax = &sp->ax[sp->nax++];
		ax->name = run_strdup(keys[i]);
		ax->loc = lx_key_loc(ld->lx, "sweep", table, keys[i]);
		int t = lua_getfield(L, -1, keys[i]);
		if (t != LUA_TTABLE) {
			diag_error(ld->d, ax->loc, "%s.%s must be %s, got %s", table, keys[i],
			           sp->random ? "{ min = A, max = B } or a list of values" : "a list of values",
			           luaL_typename(L, -1));
			bad = -1;
		} else if (sp->random && sw_has_field(L, "min", "max")) {
			bad = sw_read_range(L, ld, ax);
		} else {
			bad = sw_read_values(L, ld, ax, table);
		}
		lua_pop(L, 1);
	}
	sw_free_keys(keys, n);
	return bad;
}

/* seed = S or { S1, S2, .. } (non-negative integers); default 0. */
static int sw_read_seeds(lua_State *L, SwLoad *ld)
{
	SwSpec *sp = ld->sp;
	int t = lua_getfield(L, -1, "seed");
	size_t n = t == LUA_TTABLE ? lua_rawlen(L, -1) : 1;
	sp->seeds = run_xcalloc(n ? n : 1, sizeof *sp->seeds);
	sp->nseeds = n;
	int bad = t == LUA_TTABLE && n == 0;
	for (size_t i = 0; i < n && !bad && t != LUA_TNIL; i++) {
		if (t == LUA_TTABLE)
			lua_rawgeti(L, -1, (lua_Integer)i + 1);
		else
			lua_pushvalue(L, -1);
		lua_Integer v = lua_tointeger(L, -1);
		bad = !lua_isinteger(L, -1) || v < 0;
		sp->seeds[i] = (unsigned long long)v;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	if (bad)
		diag_error(ld->d, lx_key_loc(ld->lx, "sweep", "seed", NULL), "sweep.seed must be a non-negative "
		           "integer or a non-empty list of them");
	return bad ? -1 : 0;
}

static int sw_read_samples(lua_State *L, SwLoad *ld)
{
	int t = lua_getfield(L, -1, "samples");
	lua_Integer v = lua_tointeger(L, -1);
	bool isint = lua_isinteger(L, -1);
	lua_pop(L, 1);
	Loc loc = lx_key_loc(ld->lx, "sweep", "samples", NULL);
	if (!ld->sp->random) {
		if (t != LUA_TNIL) {
			diag_error(ld->d, loc, "sweep.samples is for random sweeps (a grid runs every combination)");
			return -1;
		}
		return 0;
	}
	if (!isint || v < 1 || v > (lua_Integer)SW_MAX_RUNS) {
		diag_error(ld->d, t == LUA_TNIL ? ld->sp->loc : loc, "a random sweep needs sweep.samples, an "
		           "integer in 1..%u", SW_MAX_RUNS);
		return -1;
	}
	ld->sp->samples = (size_t)v;
	return 0;
}

static int sw_read_table(lua_State *L, void *user)
{
	SwLoad *ld = user;
	SwSpec *sp = ld->sp;
	static const char *const known[] = { "grid", "random", "samples", "seed" };
	sp->loc = lx_key_loc(ld->lx, "sweep", NULL, NULL);
	if (lua_type(L, -1) == LUA_TNIL) {
		diag_error(ld->d, (Loc){ 0, 0, 0 }, "the config sets no 'sweep' table (sweep = { grid = "
		           "{ NAME = { V1, V2, ... } } } or sweep = { random = { ... }, samples = N })");
		return -1;
	}
	if (lua_type(L, -1) != LUA_TTABLE) {
		diag_error(ld->d, sp->loc, "'sweep' must be a table, got %s", luaL_typename(L, -1));
		return -1;
	}
	size_t n;
	char **keys = sw_keys(L, &n);
	int bad = keys ? 0 : -1;
	for (size_t i = 0; keys && i < n; i++) {
		size_t k = 0;
		while (k < 4 && strcmp(known[k], keys[i]))
			k++;
		if (k == 4) {
			diag_error(ld->d, lx_key_loc(ld->lx, "sweep", keys[i], NULL), "unknown key '%s' in 'sweep' "
			           "(known: grid, random, samples, seed)", keys[i]);
			bad = -1;
		}
	}
	sw_free_keys(keys, n);
	if (bad)
		return bad;
	int tg = lua_getfield(L, -1, "grid");
	lua_pop(L, 1);
	int tr = lua_getfield(L, -1, "random");
	lua_pop(L, 1);
	if ((tg == LUA_TNIL) == (tr == LUA_TNIL)) {
		diag_error(ld->d, sp->loc, "'sweep' must set exactly one of 'grid' (every combination) and "
		           "'random' (a sample)");
		return -1;
	}
	sp->random = tr != LUA_TNIL;
	lua_getfield(L, -1, sp->random ? "random" : "grid");
	bad = sw_read_axes(L, ld, sp->random ? "random" : "grid");
	lua_pop(L, 1);
	bad |= sw_read_samples(L, ld);
	bad |= sw_read_seeds(L, ld);
	return bad ? -1 : 0;
}

static void sw_spec_free(SwSpec *sp)
{
	for (size_t i = 0; i < sp->nax; i++) {
		SwAxis *ax = &sp->ax[i];
		for (size_t k = 0; ax->strs && k < ax->n; k++)
			free(ax->strs[k]);
		free(ax->strs);
		free(ax->v);
		free(ax->name);
	}
	free(sp->seeds);
}

/* ---- the plan: points, groups, options -------------------------------------------- */

typedef struct Sweep {
	SwSpec sp;
	const RunArgs *ra;
	RunConfig *rc;         /* the base every point starts from */
	const char *dir;       /* the config's directory */
	char **base; size_t nbase;   /* rc->defines that are not swept */
	size_t npar;           /* ax[0..npar) are params */
	size_t nrows, npoints, nruns;
	size_t *gstart; size_t ngroups;   /* first point of each group; gstart[ngroups] = npoints */
	char hash[17];
	int rank, size, threads;
	bool mpi;              /* MPI_Init was called */
	bool idle;             /* a copy that mpirun started of a damc without MPI */
	bool quiet;            /* not rank 0: no diagnostics */
} Sweep;

static uint64_t sw_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

/* Value of axis j at point p. */
static SwVal sw_value(const Sweep *w, size_t p, size_t j)
{
	const SwAxis *ax = &w->sp.ax[j];
	if (!w->sp.random) {
		size_t stride = 1;
		for (size_t k = j + 1; k < w->sp.nax; k++)
			stride *= w->sp.ax[k].n;
		return ax->v[(p / stride) % ax->n];
	}
	uint64_t seed = w->sp.seeds[p / w->sp.samples], k = p % w->sp.samples;
	uint64_t x = sw_mix(sw_mix(sw_mix(seed) ^ k) ^ (uint64_t)j);
	double u = (double)(x >> 11) * 0x1.0p-53;
	if (!ax->range) {
		size_t i = (size_t)(u * (double)ax->n);
		return ax->v[i < ax->n ? i : ax->n - 1];
	}
	double v = ax->log ? exp(log(ax->lo) + u * (log(ax->hi) - log(ax->lo)))
	                   : ax->lo + u * (ax->hi - ax->lo);
	return (SwVal){ fmin(fmax(v, ax->lo), ax->hi), NULL };
}

static bool sw_same(SwVal a, SwVal b)
{
	if (a.str || b.str)
		return a.str && b.str && !strcmp(a.str, b.str);
	return a.num == b.num;
}

static void sw_format_num(char *buf, size_t n, double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		snprintf(buf, n, "%.0f", v == 0 ? 0.0 : v);
	else
		snprintf(buf, n, "%.17g", v);
}

/* The -D list of point p: the base defines, then the swept params (malloc'd strings). */
static char **sw_defines(const Sweep *w, size_t p, size_t *n)
{
	char **v = run_xcalloc(w->nbase + w->npar, sizeof *v);
	size_t k = 0;
	for (size_t i = 0; i < w->nbase; i++)
		v[k++] = run_strdup(w->base[i]);
	for (size_t j = 0; j < w->npar; j++) {
		SwVal x = sw_value(w, p, j);
		char num[64], *val;
		if (x.str) {
			val = sw_resolve(w->dir, x.str);
		} else {
			sw_format_num(num, sizeof num, x.num);
			val = run_strdup(num);
		}
		size_t len = strlen(w->sp.ax[j].name) + strlen(val) + 2;
		v[k] = run_xcalloc(len, 1);
		snprintf(v[k++], len, "%s=%s", w->sp.ax[j].name, val);
		free(val);
	}
	*n = k;
	return v;
}

static void sw_free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* "beta = 8, dt = 0.001": point p in words, for notes. */
static void sw_point_text(const Sweep *w, size_t p, RepBuf *b)
{
	for (size_t j = 0; j < w->sp.nax; j++) {
		SwVal x = sw_value(w, p, j);
		rep_printf(b, "%s%s = ", j ? ", " : "", w->sp.ax[j].name);
		if (x.str)
			rep_printf(b, "'%s'", x.str);
		else
			rep_printf(b, "%.17g", x.num);
	}
}

static void sw_note_point(const Sweep *w, Diags *d, size_t p)
{
	RepBuf b;
	rep_init(&b);
	sw_point_text(w, p, &b);
	Loc loc = w->sp.ax[0].loc;
	if (loc.file)                      /* d is a group's own sink: its own file ids */
		loc.file = diag_add_file(d, w->ra->config);
	diag_note(d, loc, "in the sweep point %s", b.s ? b.s : "");
	rep_free(&b);
}

/* The run options of point p: the base with the swept options set. */
static int sw_point_opts(const Sweep *w, const Model *m, size_t p, DamRunOpts *o, Diags *d)
{
	RunConfig pc = *w->rc;             /* shallow: nothing of it is freed */
	double *num[] = { &pc.atol, &pc.diverge_limit, &pc.dt, &pc.rtol, NULL, &pc.steady_tol, &pc.t_end };
	for (size_t j = w->npar; j < w->sp.nax; j++) {
		size_t k = 0;
		while (strcmp(sw_option_names[k], w->sp.ax[j].name))
			k++;
		SwVal x = sw_value(w, p, j);
		if (num[k])
			*num[k] = x.num;
		else
			pc.solver = (char *)x.str;
	}
	if (run_make_opts(&pc, o, d) < 0)
		return -1;
	if (m)                             /* as damc run: the same point gives the same line */
		run_model_defaults(w->ra, &pc, m, o);
	else if (w->ra->check_every > 0)
		o->check_every = w->ra->check_every;
	return 0;
}

/* ---- checking the plan ---------------------------------------------------------- */

static int sw_find_param(const Model *m, const char *name)
{
	for (int i = 0; i < m->nparams; i++)
		if (!strcmp(m->params[i].name, name))
			return i;
	return -1;
}

static int sw_cmp_axis(const void *a, const void *b)
{
	const SwAxis *x = a, *y = b;
	if (x->param != y->param)
		return x->param ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Params or options: every name must be one; options' values must fit. */
static int sw_classify(Sweep *w, const Model *m, Diags *d)
{
	int bad = 0;
	for (size_t j = 0; j < w->sp.nax; j++) {
		SwAxis *ax = &w->sp.ax[j];
		size_t k = 0;
		while (k < SW_NOPTIONS && strcmp(sw_option_names[k], ax->name))
			k++;
		ax->param = k == SW_NOPTIONS;
		if (ax->param && sw_find_param(m, ax->name) < 0) {
			RepBuf b;
			rep_init(&b);
			for (int i = 0; i < m->nparams; i++)
				rep_printf(&b, "%s%s", i ? ", " : "", m->params[i].name);
			diag_error(d, ax->loc, "unknown sweep parameter '%s': not a param of %s (params: %s) "
			           "nor a run option (atol, diverge_limit, dt, rtol, solver, steady_tol, t_end)",
			           ax->name, w->ra->model, b.s ? b.s : "none");
			rep_free(&b);
			bad = -1;
			continue;
		}
		bool is_solver = !ax->param && !strcmp(ax->name, "solver");
		for (size_t i = 0; !ax->param && i < ax->n; i++) {
			DamSolver s;
			if (is_solver && (!ax->v[i].str || dam_solver_parse(ax->v[i].str, &s) < 0)) {
				diag_error(d, ax->loc, "solver value %zu must be one of \"euler\", \"rk4\", \"dopri5\", "
				           "\"expeuler\"", i + 1);
				bad = -1;
				break;
			}
			if (!is_solver && (ax->v[i].str || !(ax->v[i].num >= 0))) {
				diag_error(d, ax->loc, "%s value %zu must be a non-negative number", ax->name, i + 1);
				bad = -1;
				break;
			}
		}
		if (ax->range && (!ax->param && (is_solver || ax->lo < 0))) {
			diag_error(d, ax->loc, "%s: a range needs a numeric option with min >= 0", ax->name);
			bad = -1;
		}
	}
	qsort(w->sp.ax, w->sp.nax, sizeof w->sp.ax[0], sw_cmp_axis);
	while (w->npar < w->sp.nax && w->sp.ax[w->npar].param)
		w->npar++;
	return bad;
}

/* The base defines that no axis overrides. */
static void sw_base_defines(Sweep *w)
{
	w->base = run_xcalloc(w->rc->ndefines, sizeof *w->base);
	for (size_t i = 0; i < w->rc->ndefines; i++) {
		const char *def = w->rc->defines[i];
		size_t n = strcspn(def, "=");
		bool swept = false;
		for (size_t j = 0; j < w->npar && !swept; j++)
			swept = strlen(w->sp.ax[j].name) == n && !strncmp(w->sp.ax[j].name, def, n);
		if (!swept)
			w->base[w->nbase++] = w->rc->defines[i];
	}
}

static int sw_count(Sweep *w, Diags *d)
{
	double pts = 1;
	if (w->sp.random)
		pts = (double)w->sp.samples * (double)w->sp.nseeds;
	else
		for (size_t j = 0; j < w->sp.nax; j++)
			pts *= (double)w->sp.ax[j].n;
	if (pts * (double)w->nrows > SW_MAX_RUNS) {
		diag_error(d, w->sp.loc, "the sweep has %.0f runs (%.0f points x %zu rows), at most %u", pts *
		           (double)w->nrows, pts, w->nrows, SW_MAX_RUNS);
		return -1;
	}
	w->npoints = (size_t)pts;
	w->nruns = w->npoints * w->nrows;
	return 0;
}

/* Groups: maximal runs of points with the same param values. */
static void sw_groups(Sweep *w)
{
	w->gstart = run_xcalloc(w->npoints + 1, sizeof *w->gstart);
	for (size_t p = 0; p < w->npoints; p++) {
		bool same = p > 0;
		for (size_t j = 0; j < w->npar && same; j++)
			same = sw_same(sw_value(w, p, j), sw_value(w, p - 1, j));
		if (!same)
			w->gstart[w->ngroups++] = p;
	}
	w->gstart[w->ngroups] = w->npoints;
}

/* Rows of a Lua dataset whose width does not fit: located at the row. */
static int sw_check_width(const Sweep *w, const Model *m, const Lx *lx, Diags *d)
{
	const RunConfig *rc = w->rc;
	size_t width = run_input_width(m);
	if (rc->dataset_path || !rc->dataset_rows || rc->dataset_cols == width)
		return 0;
	RepBuf b;
	rep_init(&b);
	for (int i = 0; i < m->ninputs; i++)
		rep_printf(&b, "%s%s[%lld]", i ? ", " : "", m->inputs[i].name, (long long)m->inputs[i].n);
	diag_error(d, lx_row_loc(lx, 0), "dataset row 1 has %zu values, but the inputs (%s) take %zu",
	           rc->dataset_cols, b.s ? b.s : "none", width);
	rep_free(&b);
	return -1;
}

/* The front end and the rows of every group, the options of every point. */
static int sw_check_points(Sweep *w, Diags *d)
{
	for (size_t g = 0; g < w->ngroups; g++) {
		Arena a;
		Diags gd;
		arena_init(&a);
		diags_init(&gd, &a);
		size_t nd;
		char **defs = sw_defines(w, w->gstart[g], &nd);
		FrontendOptions fo = { (const char *const *)defs, (int)nd, NULL, NULL, 0 };
		Model *m = dam_frontend_compile(w->ra->model, &fo, &gd, &a);
		RunBatch b;
		memset(&b, 0, sizeof b);
		int bad = !m || diag_errors(&gd) || run_build_rows(m, w->rc, &b, &gd) < 0;
		if (!bad && b.nrows != w->nrows) {
			diag_error(&gd, (Loc){ 0, 0, 0 }, "this point has %zu input rows, the first %zu",
			           b.nrows, w->nrows);
			bad = 1;
		}
		size_t badp = w->gstart[g];
		for (size_t p = w->gstart[g]; p < w->gstart[g + 1] && !bad; p++) {
			DamRunOpts o;
			if (sw_point_opts(w, m, p, &o, &gd) < 0) {
				badp = p;
				bad = 1;
			}
		}
		if (bad && !w->quiet) {
			sw_note_point(w, &gd, badp);
			diag_render(&gd, stderr);
		}
		run_batch_free(&b);
		sw_free_strv(defs, nd);
		diags_free(&gd);
		arena_free(&a);
		if (bad) {
			if (!diag_errors(d))
				diag_error(d, w->sp.loc, "the sweep has a point that cannot run (above)");
			return -1;
		}
	}
	return 0;
}

/* FNV-1a over the plan: the model's text, the base settings, the axes, the rows. */
static void sw_hash(Sweep *w, const Model *m, const RunBatch *rows, const int *sel, int nsel, Diags *d)
{
	RepBuf b;
	rep_init(&b);
	const RunConfig *rc = w->rc;
	rep_printf(&b, "damc sweep 1 %s\n", DAM_VERSION);
	uint32_t f = diag_add_file(d, w->ra->model);
	const Source *src = f ? diag_source(d, f) : NULL;
	rep_printf(&b, "%zu\n", src ? src->len : 0);
	for (size_t i = 0; i < w->nbase; i++)
		rep_printf(&b, "D %s\n", w->base[i]);
	rep_printf(&b, "solver %s dt %.17g t_end %.17g rtol %.17g atol %.17g steady %.17g div %.17g "
	           "check %ld O%d bake %d\n", rc->solver ? rc->solver : "-", rc->dt, rc->t_end, rc->rtol,
	           rc->atol, rc->steady_tol, rc->diverge_limit, w->ra->check_every, w->ra->opt_level,
	           (int)w->ra->bake_weights);
	for (int k = 0; k < nsel; k++)
		rep_printf(&b, "out %s\n", m->outputs[sel[k]].name);
	for (size_t j = 0; j < w->sp.nax; j++) {
		const SwAxis *ax = &w->sp.ax[j];
		rep_printf(&b, "axis %s %d %d %d %.17g %.17g:", ax->name, ax->param, ax->range, ax->log,
		           ax->lo, ax->hi);
		for (size_t i = 0; i < ax->n; i++)
			if (ax->v[i].str)
				rep_printf(&b, " '%s'", ax->v[i].str);
			else
				rep_printf(&b, " %.17g", ax->v[i].num);
		rep_printf(&b, "\n");
	}
	rep_printf(&b, "random %d samples %zu seeds", w->sp.random, w->sp.samples);
	for (size_t i = 0; i < w->sp.nseeds; i++)
		rep_printf(&b, " %llu", w->sp.seeds[i]);
	size_t width = run_input_width(m);
	for (size_t r = 0; r < rows->nrows; r++)
		for (size_t c = 0; c < width; c++)
			rep_printf(&b, "%s%.17g", c ? " " : "\nrow ", rows->rows[r].v[c]);
	uint64_t h = 0xcbf29ce484222325u;
	for (int pass = 0; pass < 2; pass++) {
		const char *s = pass ? (src ? src->text : "") : (b.s ? b.s : "");
		size_t n = pass ? (src ? src->len : 0) : b.n;
		for (size_t i = 0; i < n; i++)
			h = (h ^ (unsigned char)s[i]) * 0x100000001b3u;
	}
	snprintf(w->hash, sizeof w->hash, "%016llx", (unsigned long long)h);
	rep_free(&b);
}

/* ---- running a unit ----------------------------------------------------------- */

/* What one rank holds for the group it is running. */
typedef struct SwGroup {
	size_t g;              /* (size_t)-1: none */
	Arena a;
	Diags d;
	Model *m;
	Jit *jit;
	RunBatch rows;
	int *sel; int nsel;
} SwGroup;

typedef struct SwJob {
	const SwGroup *grp;
	const Sweep *w;
	size_t lo;             /* first run */
	const DamRunOpts *opts;   /* per run */
	size_t nout;
	double *out;
	DamRunResult *res;
	char (*msg)[256];
} SwJob;

static void sw_group_free(SwGroup *gr)
{
	if (gr->g == (size_t)-1)
		return;
	if (gr->jit)
		jit_free(gr->jit);
	run_batch_free(&gr->rows);
	free(gr->sel);
	diags_free(&gr->d);
	arena_free(&gr->a);
	gr->g = (size_t)-1;
}

static int sw_group_load(const Sweep *w, SwGroup *gr, size_t g, char *err, size_t errlen)
{
	if (gr->g == g)
		return 0;
	sw_group_free(gr);
	memset(gr, 0, sizeof *gr);
	gr->g = g;
	arena_init(&gr->a);
	diags_init(&gr->d, &gr->a);
	size_t nd;
	char **defs = sw_defines(w, w->gstart[g], &nd);
	FrontendOptions fo = { (const char *const *)defs, (int)nd, NULL, NULL, 0 };
	gr->m = dam_frontend_compile(w->ra->model, &fo, &gr->d, &gr->a);
	sw_free_strv(defs, nd);
	if (!gr->m || diag_errors(&gr->d) || run_build_rows(gr->m, w->rc, &gr->rows, &gr->d) < 0 ||
	    run_select_outputs(gr->m, w->rc, &gr->sel, &gr->nsel, &gr->d) < 0) {
		snprintf(err, errlen, "the model no longer compiles for group %zu", g);
		return -1;
	}
	JitOptions jo = { .opt_level = w->ra->opt_level, .bake_weights = w->ra->bake_weights, .cache = 1 };
	gr->jit = jit_compile(gr->m, &jo, err, errlen);
	return gr->jit ? 0 : -1;
}

static void sw_job(int64_t idx, void *user)
{
	SwJob *j = user;
	size_t k = (size_t)idx, r = (j->lo + k) % j->w->nrows;
	const Model *m = j->grp->m;
	DamSim *s = sim_new(m, j->grp->jit);
	const double *row = j->grp->rows.rows[r].v;
	size_t off = 0;
	for (int i = 0; i < m->ninputs; i++) {
		/* the rows were checked as the setter checks them: this cannot refuse */
		sim_set_input(s, i, row + off, (size_t)m->inputs[i].n, j->msg[k], sizeof j->msg[k]);
		off += (size_t)m->inputs[i].n;
	}
	sim_run(s, &j->opts[k], &j->res[k], NULL, NULL, j->msg[k], sizeof j->msg[k]);
	sim_outputs(s, j->out + k * j->nout);
	sim_free(s);
}

/* The line of run i: the sweep's fields, then those of damc run --json. */
static void sw_line(const Sweep *w, const SwJob *j, size_t k, RepBuf *b)
{
	size_t i = j->lo + k, p = i / w->nrows, r = i % w->nrows;
	const SwGroup *gr = j->grp;
	rep_printf(b, "{\"run\":%zu,\"sweep\":\"%s\",\"params\":{", i, w->hash);
	for (size_t a = 0; a < w->sp.nax; a++) {
		SwVal x = sw_value(w, p, a);
		rep_printf(b, "%s", a ? "," : "");
		rep_json_string(b, w->sp.ax[a].name);
		rep_printf(b, ":");
		if (x.str)
			rep_json_string(b, x.str);
		else
			rep_json_number(b, x.num);
	}
	rep_printf(b, "}");
	if (w->sp.random)
		rep_printf(b, ",\"seed\":%llu", w->sp.seeds[p / w->sp.samples]);
	rep_printf(b, ",\"row\":%zu,", r);
	ReportRun rr = {
		(int64_t)r, (const double *const *)gr->rows.inputs + r * (size_t)gr->m->ninputs,
		j->out + k * j->nout, jit_kernels(gr->jit)->output_off, gr->sel, gr->nsel, &j->res[k],
		j->msg[k],
	};
	RepBuf one;
	rep_init(&one);
	report_json_run(&one, gr->m, &rr);
	const char *rest = one.s ? strchr(one.s, ',') : NULL;   /* after {"index":R, */
	rep_printf(b, "%s", rest ? rest + 1 : "}\n");
	rep_free(&one);
}

/* Runs [lo, hi) of group g: their lines in b.  -1 with err on failure. */
static int sw_unit(const Sweep *w, SwGroup *gr, size_t g, size_t lo, size_t hi, RepBuf *b, char *err,
                   size_t errlen)
{
	if (sw_group_load(w, gr, g, err, errlen) < 0)
		return -1;
	size_t n = hi - lo;
	SwJob j = { gr, w, lo, NULL, jit_kernels(gr->jit)->noutput, NULL, NULL, NULL };
	DamRunOpts *opts = run_xcalloc(n, sizeof *opts);
	for (size_t k = 0; k < n; k++)
		if (sw_point_opts(w, gr->m, (lo + k) / w->nrows, &opts[k], &gr->d) < 0) {
			snprintf(err, errlen, "the options of run %zu are refused", lo + k);
			free(opts);
			return -1;
		}
	j.opts = opts;
	j.out = run_xcalloc(n * (j.nout ? j.nout : 1), sizeof *j.out);
	j.res = run_xcalloc(n, sizeof *j.res);
	j.msg = run_xcalloc(n, sizeof *j.msg);
	dam_parallel_for((int64_t)n, w->threads, sw_job, &j);
	for (size_t k = 0; k < n; k++)
		sw_line(w, &j, k, b);
	free(opts);
	free(j.out);
	free(j.res);
	free(j.msg);
	return 0;
}

/* ---- the output: FILE.part, resumed ------------------------------------------------ */

typedef struct SwOut {
	const char *path;      /* NULL: stdout */
	char *part;
	int fd;
	size_t done;           /* complete runs in the file */
} SwOut;

static int sw_read_fd(int fd, RepBuf *b)
{
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		rep_printf(b, "%.*s", (int)n, buf);
	return n < 0 ? -1 : 0;
}

/* Keep the complete lines of this sweep (run 0, 1, ...); drop a truncated last one. */
static int sw_resume(const Sweep *w, SwOut *o)
{
	RepBuf b;
	rep_init(&b);
	if (sw_read_fd(o->fd, &b) < 0) {
		fprintf(stderr, "damc sweep: error: cannot read '%s': %s\n", o->part, strerror(errno));
		rep_free(&b);
		return -1;
	}
	size_t pos = 0, line = 0;
	while (pos < b.n) {
		const char *s = b.s + pos, *nl = memchr(s, '\n', b.n - pos);
		if (!nl)
			break;                       /* cut by the kill: dropped */
		char want[96];
		int wn = snprintf(want, sizeof want, "{\"run\":%zu,\"sweep\":\"%s\",", o->done, w->hash);
		if (o->done >= w->nruns || (size_t)(nl - s) < (size_t)wn || memcmp(s, want, (size_t)wn) ||
		    nl[-1] != '}') {
			fprintf(stderr, "%s:%zu:1: error: this line is not run %zu of this sweep (the model, the "
			        "config or the flags changed since it was written): delete '%s' to start over\n",
			        o->part, line + 1, o->done, o->part);
			rep_free(&b);
			return -1;
		}
		o->done++;
		line++;
		pos = (size_t)(nl - b.s) + 1;
	}
	rep_free(&b);
	if (ftruncate(o->fd, (off_t)pos) < 0 || lseek(o->fd, 0, SEEK_END) < 0) {
		fprintf(stderr, "damc sweep: error: cannot write '%s': %s\n", o->part, strerror(errno));
		return -1;
	}
	if (o->done && !w->quiet)
		fprintf(stderr, "damc sweep: resuming '%s' at run %zu of %zu\n", o->part, o->done, w->nruns);
	return 0;
}

static int sw_out_open(const Sweep *w, SwOut *o, const char *path)
{
	memset(o, 0, sizeof *o);
	o->fd = -1;
	if (!path || !strcmp(path, "-"))
		return 0;
	o->path = path;
	size_t n = strlen(path) + 6;
	o->part = run_xcalloc(n, 1);
	snprintf(o->part, n, "%s.part", path);
	o->fd = open(o->part, O_RDWR | O_CREAT, 0644);
	if (o->fd < 0) {
		fprintf(stderr, "damc sweep: error: cannot write '%s': %s\n", o->part, strerror(errno));
		return -1;
	}
	if (flock(o->fd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "damc sweep: error: another damc sweep is writing '%s'\n", o->part);
		return -1;
	}
	return sw_resume(w, o);
}

static int sw_out_write(SwOut *o, const RepBuf *b)
{
	if (o->fd < 0) {
		fwrite(b->s ? b->s : "", 1, b->n, stdout);
		return fflush(stdout) == 0 ? 0 : -1;
	}
	size_t off = 0;
	while (off < b->n) {
		ssize_t k = write(o->fd, b->s + off, b->n - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			fprintf(stderr, "damc sweep: error: cannot write '%s': %s\n", o->part, strerror(errno));
			return -1;
		}
		off += (size_t)k;
	}
	return 0;
}

/* Complete: FILE.part becomes FILE. */
static int sw_out_finish(SwOut *o, bool complete)
{
	int bad = 0;
	if (o->fd >= 0) {
		if (complete && rename(o->part, o->path) != 0) {
			fprintf(stderr, "damc sweep: error: cannot rename '%s' to '%s': %s\n", o->part, o->path,
			        strerror(errno));
			bad = -1;
		}
		close(o->fd);
	}
	free(o->part);
	o->part = NULL;
	o->fd = -1;
	return bad;
}

/* ---- progress ---------------------------------------------------------------- */

typedef struct SwProgress {
	bool on;
	double t0, last;
	size_t first;          /* runs done when this process started */
} SwProgress;

static double sw_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sw_progress(SwProgress *pg, size_t done, size_t total, bool end)
{
	if (!pg->on)
		return;
	double t = sw_now();
	if (!end && t - pg->last < 0.2)
		return;
	pg->last = t;
	int width = 30, fill = total ? (int)((double)width * (double)done / (double)total) : width;
	char bar[32];
	for (int i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[width] = '\0';
	double rate = (double)(done - pg->first) / fmax(t - pg->t0, 1e-9);
	double eta = done > pg->first ? (double)(total - done) / rate : 0;
	fprintf(stderr, "\r[%s] %zu/%zu runs  ETA %4.0fs ", bar, done, total, eta);
	if (end)
		fputc('\n', stderr);
	fflush(stderr);
}

/* ---- ranks ---------------------------------------------------------------------- */

#ifdef DAM_HAVE_MPI
/* Started by mpirun (Open MPI, or a PMI launcher): without it damc never calls MPI_Init. */
static bool sw_launched_by_mpirun(void)
{
	return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}
#endif

static void sw_comm_init(Sweep *w)
{
	w->rank = 0;
	w->size = 1;
#ifdef DAM_HAVE_MPI
	if (sw_launched_by_mpirun()) {
		MPI_Init(NULL, NULL);
		MPI_Comm_rank(MPI_COMM_WORLD, &w->rank);
		MPI_Comm_size(MPI_COMM_WORLD, &w->size);
		w->mpi = true;
	}
#else
	const char *r = getenv("OMPI_COMM_WORLD_RANK");
	w->idle = r && strtol(r, NULL, 10) > 0;    /* the copy started as rank 0 runs it all */
	if (r && !w->idle)
		fputs("damc sweep: note: this damc was built without MPI: the sweep runs locally only, "
		      "in rank 0\n", stderr);
#endif
	w->quiet = w->rank != 0 || w->idle;
}

static void sw_comm_fini(const Sweep *w)
{
#ifdef DAM_HAVE_MPI
	if (w->mpi)
		MPI_Finalize();
#else
	(void)w;
#endif
}

/* Rank 0's start index (or (size_t)-1: stop) to every rank. */
static size_t sw_bcast(const Sweep *w, size_t v)
{
#ifdef DAM_HAVE_MPI
	if (w->size > 1) {
		unsigned long long x = v;
		MPI_Bcast(&x, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
		return (size_t)x;
	}
#else
	(void)w;
#endif
	return v;
}

static void sw_abort(const Sweep *w)
{
#ifdef DAM_HAVE_MPI
	if (w->size > 1)
		MPI_Abort(MPI_COMM_WORLD, 1);
#else
	(void)w;
#endif
}

/* The threads of one rank: --threads, else the cores shared by the local ranks. */
static int sw_threads(const RunConfig *rc)
{
	if (rc->threads > 0)
		return rc->threads;
	const char *ls = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
	long local = ls ? strtol(ls, NULL, 10) : 1;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (local <= 1 || cores <= 0)
		return 0;
	return cores / local > 1 ? (int)(cores / local) : 1;
}

/* ---- the loop over units ----------------------------------------------------------- */

typedef struct SwUnit {
	size_t g, lo, hi;
} SwUnit;

static SwUnit *sw_units(const Sweep *w, size_t start, size_t *n)
{
	size_t cap = 64;
	SwUnit *u = run_xcalloc(cap, sizeof *u);
	*n = 0;
	for (size_t g = 0; g < w->ngroups; g++) {
		size_t lo = w->gstart[g] * w->nrows, hi = w->gstart[g + 1] * w->nrows;
		for (size_t a = lo > start ? lo : start; a < hi; a += SW_UNIT) {
			if (*n == cap) {
				u = realloc(u, (cap *= 2) * sizeof *u);
				if (!u)
					exit(3);
			}
			u[(*n)++] = (SwUnit){ g, a, a + SW_UNIT < hi ? a + SW_UNIT : hi };
		}
	}
	return u;
}

/* Rank 0: every unit in order (its own, or received), written and flushed. */
static int sw_loop_root(const Sweep *w, SwOut *o, long stop_after, bool progress)
{
	size_t nu;
	SwUnit *u = sw_units(w, o->done, &nu);
	SwGroup gr = { .g = (size_t)-1 };
	SwProgress pg = { progress && isatty(STDERR_FILENO), sw_now(), 0, o->done };
	int status = 0;
	size_t done = o->done;
	for (size_t k = 0; k < nu && !status; k++) {
		RepBuf b;
		rep_init(&b);
		char err[1024] = "";
		int owner = (int)(k % (size_t)w->size);
		if (owner == 0) {
			if (sw_unit(w, &gr, u[k].g, u[k].lo, u[k].hi, &b, err, sizeof err) < 0)
				status = 1;
		}
#ifdef DAM_HAVE_MPI
		else {
			MPI_Status st;
			int len;
			MPI_Probe(owner, SW_TAG, MPI_COMM_WORLD, &st);
			MPI_Get_count(&st, MPI_CHAR, &len);
			char *s = run_xcalloc((size_t)len + 1, 1);
			MPI_Recv(s, len, MPI_CHAR, owner, SW_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			if (len > 0 && s[0] == '\001') {
				snprintf(err, sizeof err, "rank %d: %s", owner, s + 1);
				status = 1;
			} else {
				rep_printf(&b, "%.*s", len, s);
			}
			free(s);
		}
#endif
		if (!status && sw_out_write(o, &b) < 0)
			status = 1;
		if (status && err[0])
			fprintf(stderr, "damc sweep: error: %s\n", err);
		rep_free(&b);
		if (!status)
			done = u[k].hi;
		sw_progress(&pg, done, w->nruns, false);
		if (!status && stop_after > 0 && done >= (size_t)stop_after && done < w->nruns)
			status = 130;
	}
	sw_progress(&pg, done, w->nruns, true);
	sw_group_free(&gr);
	free(u);
	if (status == 1)
		sw_abort(w);
	o->done = done;
	return status;
}

#ifdef DAM_HAVE_MPI
/* Other ranks: their units, sent to rank 0 as they finish. */
static int sw_loop_worker(const Sweep *w, size_t start)
{
	size_t nu, mine = 0;
	SwUnit *u = sw_units(w, start, &nu);
	MPI_Request *req = run_xcalloc(nu / (size_t)w->size + 1, sizeof *req);
	char **bufs = run_xcalloc(nu / (size_t)w->size + 1, sizeof *bufs);
	SwGroup gr = { .g = (size_t)-1 };
	for (size_t k = (size_t)w->rank; k < nu; k += (size_t)w->size) {
		RepBuf b;
		rep_init(&b);
		char err[1024];
		if (sw_unit(w, &gr, u[k].g, u[k].lo, u[k].hi, &b, err, sizeof err) < 0) {
			rep_free(&b);
			rep_init(&b);
			rep_printf(&b, "\001%s", err);
		}
		bufs[mine] = b.s ? b.s : run_strdup("");
		MPI_Isend(bufs[mine], (int)b.n, MPI_CHAR, 0, SW_TAG, MPI_COMM_WORLD, &req[mine]);
		mine++;
	}
	MPI_Waitall((int)mine, req, MPI_STATUSES_IGNORE);
	for (size_t i = 0; i < mine; i++)
		free(bufs[i]);
	free(bufs);
	free(req);
	sw_group_free(&gr);
	free(u);
	return 0;
}
#endif

/* ---- the command --------------------------------------------------------------- */

typedef struct SwArgs {
	RunArgs ra;
	const char *out;
	long stop_after;
	bool no_progress;
} SwArgs;

static int sw_usage_error(const char *fmt, const char *arg)
{
	fputs("damc sweep: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\ntry 'damc sweep --help'\n", stderr);
	return RUN_EXIT_USAGE;
}

static int sw_parse_long(const char *flag, const char *v, long min, long *out)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (end == v || *end || errno || x < min) {
		fprintf(stderr, "damc sweep: %s expects an integer >= %ld, got '%s'\n", flag, min, v);
		return RUN_EXIT_USAGE;
	}
	*out = x;
	return 0;
}

static int sw_parse_args(SwArgs *sa, int argc, char **argv)
{
	RunArgs *ra = &sa->ra;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *next = i + 1 < argc ? argv[i + 1] : "";
		int rc = 0;
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			ra->help = true;
		else if (!strcmp(a, "-o")) {
			if (!*next)
				return sw_usage_error("%s expects a file", "-o");
			sa->out = argv[++i];
		} else if (!strcmp(a, "--stop-after")) {
			i++;
			rc = sw_parse_long(a, next, 1, &sa->stop_after);
		} else if (!strcmp(a, "--check-every")) {
			i++;
			rc = sw_parse_long(a, next, 1, &ra->check_every);
		} else if (!strcmp(a, "--no-progress"))
			sa->no_progress = true;
		else if (!strcmp(a, "--bake-weights"))
			ra->bake_weights = true;
		else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3])
			ra->opt_level = a[2] - '0';
		else if (!strcmp(a, "--json"))
			;                                   /* the output is JSON anyway */
		else if (a[0] == '-' && a[1] != '\0')
			rc = run_parse_flag(ra, argc, argv, &i);
		else if (!ra->model)
			ra->model = a;
		else
			rc = sw_usage_error("more than one model given ('%s')", a);
		if (rc)
			return rc;
	}
	if (ra->help)
		return 0;
	if (!ra->model)
		return sw_usage_error("%s", "no model given");
	if (!ra->config)
		return sw_usage_error("%s", "no sweep given (-c SWEEP.lua)");
	if (ra->cli.trace_path || ra->cli.plot_path || ra->cli.device)
		return sw_usage_error("%s", "--trace, --plot and --device are not sweep options");
	return 0;
}

/* Everything up to the first run: 0, or an exit status. */
static int sw_prepare(Sweep *w, const Lx *lx, Diags *d, Arena *a)
{
	Model *m = run_compile(w->ra->model, w->rc, d, a);
	if (!m || diag_errors(d))
		return RUN_EXIT_INPUT;
	if (m->nlayers == 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "'%s' declares no layers: there is nothing to simulate",
		           w->ra->model);
		return RUN_EXIT_INPUT;
	}
	if (sw_classify(w, m, d) < 0 || sw_check_width(w, m, lx, d) < 0)
		return RUN_EXIT_INPUT;
	sw_base_defines(w);
	RunBatch rows;
	int *sel = NULL, nsel = 0;
	memset(&rows, 0, sizeof rows);
	int status = 0;
	if (run_select_outputs(m, w->rc, &sel, &nsel, d) < 0 || run_build_rows(m, w->rc, &rows, d) < 0)
		status = RUN_EXIT_INPUT;
	w->nrows = rows.nrows;
	if (!status && (sw_count(w, d) < 0 || (sw_groups(w), sw_check_points(w, d) < 0)))
		status = RUN_EXIT_INPUT;
	if (!status)
		sw_hash(w, m, &rows, sel, nsel, d);
	free(sel);
	run_batch_free(&rows);
	return status;
}

static int sw_execute(Sweep *w, const SwArgs *sa)
{
	SwOut o;
	size_t start = 0;
	memset(&o, 0, sizeof o);
	o.fd = -1;
	int status = 0;
	if (w->rank == 0) {
		status = sw_out_open(w, &o, sa->out) < 0 ? RUN_EXIT_INPUT : 0;
		start = status ? (size_t)-1 : o.done;
	}
	start = sw_bcast(w, start);
	if (start == (size_t)-1) {
		if (w->rank == 0)
			sw_out_finish(&o, false);
		return RUN_EXIT_INPUT;
	}
#ifdef DAM_HAVE_MPI
	if (w->rank != 0)
		return sw_loop_worker(w, start);
#endif
	status = sw_loop_root(w, &o, sa->stop_after, !sa->no_progress);
	if (sw_out_finish(&o, status == 0) < 0 && !status)
		status = RUN_EXIT_INPUT;
	return status;
}

int cmd_sweep(int argc, char **argv)
{
	Sweep w;
	SwArgs sa;
	memset(&w, 0, sizeof w);
	memset(&sa, 0, sizeof sa);
	sa.ra.opt_level = 3;
	runcfg_init(&sa.ra.cli);
	sw_comm_init(&w);
	if (w.idle)
		return 0;
	int status = sw_parse_args(&sa, argc, argv);
	if (sa.ra.help && !status && w.rank == 0)
		fputs(sw_usage, stdout);
	if (status || sa.ra.help) {
		runcfg_free(&sa.ra.cli);
		sw_comm_fini(&w);
		return w.rank == 0 ? status : 0;
	}
	if (sa.stop_after && w.size > 1) {
		runcfg_free(&sa.ra.cli);
		sw_comm_fini(&w);
		return w.rank == 0 ? sw_usage_error("%s", "--stop-after is for single-process tests") : 0;
	}
	Arena a;
	Diags d;
	RunConfig rc;
	Lx lx;
	memset(&lx, 0, sizeof lx);
	arena_init(&a);
	diags_init(&d, &a);
	runcfg_init(&rc);
	w.ra = &sa.ra;
	w.rc = &rc;
	char *dir = lx_dirname(sa.ra.config);
	w.dir = dir;
	lx.file = diag_add_file(&d, sa.ra.config);
	if (lx.file)
		lx_scan(&lx, diag_source(&d, lx.file)->text);
	SwLoad ld = { &w.sp, &d, &lx, dir, w.quiet };
	CfgExtra ex = { "sweep", sw_read_table, &ld };
	if (cfg_load_lua_extra(sa.ra.config, &rc, &ex, &d) < 0) {
		status = RUN_EXIT_INPUT;
	} else {
		run_merge(&rc, &sa.ra.cli, sa.ra.have_inputs_flag);
		w.threads = sw_threads(&rc);
		status = sw_prepare(&w, &lx, &d, &a);
	}
	if (!w.quiet)
		diag_render(&d, stderr);
	if (!status)
		status = sw_execute(&w, &sa);
	sw_spec_free(&w.sp);
	free(w.base);
	free(w.gstart);
	lx_free(&lx);
	free(dir);
	diags_free(&d);
	arena_free(&a);
	runcfg_free(&rc);
	runcfg_free(&sa.ra.cli);
	sw_comm_fini(&w);
	return w.rank == 0 ? status : 0;
}
