/* train.c - `damc train MODEL.dam -c TRAIN.lua -o ckpt.npz`: training of the
 * learned tensors of a model by backpropagation through its compiled
 * forward-Euler dynamics (workshop App. C; docs/training.md).
 *
 * The config is an ordinary run config (params, solver = "euler", dt, t_end,
 * threads) plus a `train` table read here through cfg_load_lua_extra:
 *
 *     train = {
 *       data       = { inputs = "train_X.txt", labels = "train_y.txt" },
 *       validation = { inputs = "test_X.txt",  labels = "test_y.txt" },
 *       output = "logits", loss = "cross_entropy",          -- or "squared"
 *       settle = { weight = 0.01, layers = { "v" } },       -- |dx/dt|^2 at T
 *       epochs = 300, batch = 0,                            -- 0: full batch
 *       optimizer = { name = "adamw", lr = 0.02, weight_decay = 1e-4, clip = 1 },
 *       schedule  = { name = "cosine", warmup = 10, min_lr = 1e-4 },
 *       init = { seed = 1, std = 0.1, tensors = { a = 0 } }, -- or "model"
 *       stability = { mode = "project", margin = 0.95 },
 *       eval_every = 10,
 *     }
 *
 * One epoch is a pass over the training rows in mini-batches (shuffled per
 * epoch from the seed) or one full batch.  A batch's rows are cut into
 * chunks of TR_CHUNK rows; each chunk runs on whichever thread is free, with
 * one gradient module (grad.h) per thread, and sums its rows' gradients in
 * row order; the chunk sums are then added in chunk order.  So the gradient,
 * and every checkpoint, is the same bytes for any thread count.
 *
 * Stability: for every block the boundedness check covers (check.c: a static
 * block coupling a ReLU layer to an identity layer, bounded below when its
 * spectral norm is <= 1) whose weights are computed from learned tensors,
 * each optimiser step is followed by a projection: when sigma_max(W) exceeds
 * the margin, the learned tensors W's definition reads are scaled by the
 * largest factor s in (0, 1] (bisection) that brings sigma_max(W) to the
 * margin.  A projection, not a penalty, because it holds at every step: every
 * checkpoint passes `damc check` without the unbounded warning.
 *
 * Checkpoints (.npz, written to a temporary file and renamed) hold every
 * learned tensor under its load() key, so `damc run -D weights=ckpt.npz`
 * runs them, plus the optimiser state (train.m1.KEY, train.m2.KEY,
 * train.epoch, train.step, train.seed) that --resume reads.  They are written
 * every checkpoint_every epochs, at the end, after a NaN (the last good
 * parameters) and on Ctrl-C (the state at the end of the last full epoch, so
 * a resumed run gives the same bytes as an uninterrupted one).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "cfgloc.h"
#include "commands.h"
#include "dam_dataset.h"
#include "dam_image.h"
#include "dam_integrate.h"
#include "dam_npy.h"
#include "grad.h"
#include "report.h"
#include "revive.h"
#include "run.h"
#include "sema.h"
#include "train.h"

#define TR_CHUNK 4
#define TR_PI 3.14159265358979323846
#define TR_MAX_EPOCHS 10000000L

static const char train_usage[] =
	"usage: damc train MODEL.dam -c TRAIN.lua -o CKPT.npz [options]\n"
	"\n"
	"Train the model's learned tensors by backpropagation through its compiled\n"
	"forward-Euler dynamics (docs/training.md).  The config's `train` table names the\n"
	"data, the loss, the optimiser and the schedule.\n"
	"\n"
	"  -o FILE.npz            the checkpoint: learned tensors under their load() keys\n"
	"  --epochs N             override train.epochs\n"
	"  --seed S               override train.init.seed (initialisation and shuffling)\n"
	"  --resume CKPT.npz      continue from a checkpoint damc train wrote\n"
	"  --json                 one JSON object per evaluation on stdout\n"
	"  --plot FILE            loss and accuracy against epoch (.png or .svg, gnuplot)\n"
	"  --threads N            worker threads (default: all cores)\n"
	"  -c FILE, -D NAME=VALUE, --dt, --t-end   as for damc run\n";

/* ---- the train table ------------------------------------------------------------ */

typedef struct TrInit {
	char *name;
	double mean, std;      /* std 0: the constant mean */
	VEC(double) values;    /* or explicit values (row-major), from the config */
	Loc loc;               /* of init.tensors in the config */
} TrInit;

typedef struct TrScale {   /* optimizer.lr_scale.NAME = f */
	char *name;
	double f;
	Loc loc;
} TrScale;

/* Rows of inputs and of labels: files, or tables (or functions returning
 * them) in the config. */
typedef struct TrSrc {
	char *path[2];         /* inputs, labels; NULL: given inline */
	double *v[2];
	size_t rows[2], cols[2];
	bool set;
} TrSrc;

typedef struct TrainSpec {
	TrSrc data, val;
	char *output;
	GradLossKind loss;
	double settle;
	long settle_start, settle_ramp;   /* epochs: 0 before start, a cosine ramp to settle over ramp */
	char **settle_layers; size_t nsettle;
	long epochs, batch, eval_every, checkpoint_every;
	TrainOpt opt;
	bool init_model;       /* init = "model": start from the values the model loads */
	unsigned long long seed;
	double init_std;
	TrInit *tinit; size_t ntinit;
	TrScale *lrs; size_t nlrs;
	bool project;
	double margin;
	double *readout; size_t nreadout;   /* train.readout: earlier readout times of the data term */
	int64_t *readout_steps;              /* ... as Euler steps (tr_readout_steps) */
	long *revive; size_t nrevive;        /* train.revive.at: epochs after which dead ReLU units are revived */
	Loc revive_loc;
} TrainSpec;

typedef struct TrLoad {
	TrainSpec *sp;
	Diags *d;
	const Lx *lx;
	const char *dir;
} TrLoad;

static char *tr_resolve(const char *dir, const char *p)
{
	if (p[0] == '/' || !dir[0])
		return run_strdup(p);
	size_t n = strlen(dir) + strlen(p) + 2;
	char *s = run_xcalloc(n, 1);
	snprintf(s, n, "%s/%s", dir, p);
	return s;
}

static Loc tr_loc(const TrLoad *ld, const char *k1, const char *k2)
{
	return lx_key_loc(ld->lx, "train", k1, k2);
}

/* Keys of the table on top that are not in `known` (NULL-terminated): errors. */
static int tr_unknown(lua_State *L, TrLoad *ld, const char *table, const char *const *known)
{
	int bad = 0;
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		lua_pop(L, 1);
		const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
		bool ok = false;
		for (size_t i = 0; k && known[i]; i++)
			ok |= !strcmp(k, known[i]);
		if (!ok) {
			diag_error(ld->d, tr_loc(ld, table ? table : k, table ? k : NULL), "unknown key '%s' in 'train%s%s'",
			           k ? k : "(not a name)", table ? "." : "", table ? table : "");
			bad = -1;
		}
	}
	return bad;
}

/* Field `key` of the table on top: a number (set *out; 1), absent (0), or an error (-1). */
static int tr_number(lua_State *L, TrLoad *ld, const char *table, const char *key, double *out)
{
	int t = lua_getfield(L, -1, key);
	int r = 0;
	if (t == LUA_TNUMBER && isfinite(lua_tonumber(L, -1))) {
		*out = lua_tonumber(L, -1);
		r = 1;
	} else if (t != LUA_TNIL) {
		diag_error(ld->d, tr_loc(ld, table ? table : key, table ? key : NULL), "train.%s%s%s must be a finite "
		           "number", table ? table : "", table ? "." : "", key);
		r = -1;
	}
	lua_pop(L, 1);
	return r;
}

static int tr_count(lua_State *L, TrLoad *ld, const char *table, const char *key, long lo, long hi, long *out)
{
	double v;
	int r = tr_number(L, ld, table, key, &v);
	if (r == 1 && (v != floor(v) || v < (double)lo || v > (double)hi)) {
		diag_error(ld->d, tr_loc(ld, table ? table : key, table ? key : NULL), "train.%s%s%s must be an integer "
		           "in %ld..%ld", table ? table : "", table ? "." : "", key, lo, hi);
		return -1;
	}
	if (r == 1)
		*out = (long)v;
	return r;
}

static int tr_string(lua_State *L, TrLoad *ld, const char *table, const char *key, char **out)
{
	int t = lua_getfield(L, -1, key);
	int r = 0;
	if (t == LUA_TSTRING) {
		free(*out);
		*out = run_strdup(lua_tostring(L, -1));
		r = 1;
	} else if (t != LUA_TNIL) {
		diag_error(ld->d, tr_loc(ld, table ? table : key, table ? key : NULL), "train.%s%s%s must be a string",
		           table ? table : "", table ? "." : "", key);
		r = -1;
	}
	lua_pop(L, 1);
	return r;
}

/* A number in [lo, hi] (positive when lo_open). */
static int tr_range(lua_State *L, TrLoad *ld, const char *table, const char *key, double lo, double hi,
                    bool lo_open, double *out)
{
	double v;
	int r = tr_number(L, ld, table, key, &v);
	if (r == 1 && (v < lo || v > hi || (lo_open && v <= lo))) {
		diag_error(ld->d, tr_loc(ld, table ? table : key, table ? key : NULL), "train.%s%s%s must be in %s%g, %g]",
		           table ? table : "", table ? "." : "", key, lo_open ? "(" : "[", lo, hi);
		return -1;
	}
	if (r == 1)
		*out = v;
	return r < 0 ? -1 : 0;
}

/* One of data.inputs / data.labels: a file, or rows (a table of rows, or of
 * numbers for labels; or a function returning one). */
static int tr_read_rows(lua_State *L, TrLoad *ld, const char *key, const char *what, TrSrc *src, int w)
{
	int t = lua_getfield(L, -1, what);
	int bad = 0;
	if (t == LUA_TFUNCTION) {
		if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
			diag_error(ld->d, tr_loc(ld, key, what), "train.%s.%s: %s", key, what, lua_tostring(L, -1));
			lua_pop(L, 1);
			return -1;
		}
		t = lua_type(L, -1);
	}
	if (t == LUA_TSTRING) {
		src->path[w] = tr_resolve(ld->dir, lua_tostring(L, -1));
	} else if (t == LUA_TTABLE) {
		size_t n = lua_rawlen(L, -1), cols = 0;
		src->v[w] = run_xcalloc(1, sizeof(double));
		size_t cap = 0, len = 0;
		for (size_t r = 0; r < n && !bad; r++) {
			int tr = lua_rawgeti(L, -1, (lua_Integer)r + 1);
			size_t c = tr == LUA_TTABLE ? lua_rawlen(L, -1) : 1;
			if ((tr != LUA_TTABLE && tr != LUA_TNUMBER) || c == 0 || (r && c != cols)) {
				diag_error(ld->d, tr_loc(ld, key, what), "train.%s.%s row %zu must be %s%s", key, what, r + 1,
				           w ? "a number or " : "", r && c != cols ? "as long as the first row" : "an array of numbers");
				bad = -1;
			}
			cols = c;
			for (size_t k = 0; k < c && !bad; k++) {
				if (tr == LUA_TTABLE)
					lua_rawgeti(L, -1, (lua_Integer)k + 1);
				else
					lua_pushvalue(L, -1);
				if (lua_type(L, -1) != LUA_TNUMBER || !isfinite(lua_tonumber(L, -1))) {
					diag_error(ld->d, tr_loc(ld, key, what), "train.%s.%s row %zu value %zu must be a finite number",
					           key, what, r + 1, k + 1);
					bad = -1;
				}
				if (len == cap) {
					cap = cap ? 2 * cap : 64;
					src->v[w] = realloc(src->v[w], cap * sizeof(double));
					if (!src->v[w])
						exit(3);
				}
				src->v[w][len++] = lua_tonumber(L, -1);
				lua_pop(L, 1);
			}
			lua_pop(L, 1);
		}
		if (!n && !bad) {
			diag_error(ld->d, tr_loc(ld, key, what), "train.%s.%s has no rows", key, what);
			bad = -1;
		}
		src->rows[w] = n;
		src->cols[w] = cols;
	} else {
		diag_error(ld->d, tr_loc(ld, key, t == LUA_TNIL ? NULL : what), "train.%s needs %s = FILE (or a table of "
		           "rows)", key, what);
		bad = -1;
	}
	lua_pop(L, 1);
	return bad;
}

/* The rows of dataset file path (`what`: "inputs" or "labels"; want columns,
 * 0 any), its problems located at file:line:col with hint appended. */
static int tr_read_file(Diags *d, const char *path, const char *what, size_t want, const char *hint, DamDataset *ds)
{
	uint32_t file = diag_add_file(d, path);
	if (!file) {
		diag_error(d, (Loc){ 0, 0, 0 }, "cannot read %s '%s': %s", what, path, strerror(errno));
		return -1;
	}
	DamDatasetError e;
	if (dam_dataset_read(path, want, ds, &e) < 0) {
		if (e.line > 0)
			diag_error(d, (Loc){ file, (uint32_t)e.line, e.col > 0 ? (uint32_t)e.col : 1 }, "%s%s", e.msg, hint);
		else
			diag_error(d, (Loc){ 0, 0, 0 }, "%s: %s", path, e.msg);
		return -1;
	}
	return 0;
}

/* Source w of src as rows in memory: a file is read here, then held as
 * inline rows. */
static int tr_load_rows(TrLoad *ld, TrSrc *src, int w)
{
	DamDataset ds;
	if (!src->path[w])
		return 0;
	if (tr_read_file(ld->d, src->path[w], w ? "labels" : "inputs", 0, "", &ds) < 0)
		return -1;
	free(src->path[w]);
	src->path[w] = NULL;
	src->v[w] = ds.v;
	src->rows[w] = ds.rows;
	src->cols[w] = ds.cols;
	return 0;
}

/* data.copies = function(inputs, label) return n end: each row (inputs as an
 * array, label a number, or an array for several values) taken n times in a
 * row (0 drops it), in order, before anything else sees the rows. */
static int tr_copy_rows(lua_State *L, TrLoad *ld, const char *key, TrSrc *src)
{
	if (tr_load_rows(ld, src, 0) < 0 || tr_load_rows(ld, src, 1) < 0)
		return -1;
	if (src->rows[0] != src->rows[1]) {
		diag_error(ld->d, tr_loc(ld, key, "copies"), "train.%s: %zu rows of inputs and %zu of labels", key,
		           src->rows[0], src->rows[1]);
		return -1;
	}
	size_t n = src->rows[0], len = 0, cap = n + 1;
	double *v[2] = { run_xcalloc(cap * src->cols[0] + 1, sizeof(double)),
	                 run_xcalloc(cap * src->cols[1] + 1, sizeof(double)) };
	int bad = 0;
	for (size_t r = 0; r < n && !bad; r++) {
		lua_pushvalue(L, -1);
		for (int w = 0; w < 2; w++) {
			const double *row = src->v[w] + r * src->cols[w];
			if (w == 1 && src->cols[1] == 1) {
				lua_pushnumber(L, row[0]);
				continue;
			}
			lua_createtable(L, (int)src->cols[w], 0);
			for (size_t c = 0; c < src->cols[w]; c++) {
				lua_pushnumber(L, row[c]);
				lua_rawseti(L, -2, (lua_Integer)c + 1);
			}
		}
		lua_Integer times = 0;
		if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
			diag_error(ld->d, tr_loc(ld, key, "copies"), "train.%s.copies: %s", key, lua_tostring(L, -1));
			bad = -1;
		} else if (!lua_isinteger(L, -1) || (times = lua_tointeger(L, -1)) < 0 || times > 1000000) {
			diag_error(ld->d, tr_loc(ld, key, "copies"), "train.%s.copies must return a whole number of times "
			           "(0 to 1000000) for row %zu", key, r + 1);
			bad = -1;
		}
		lua_pop(L, 1);
		for (lua_Integer k = 0; k < times && !bad; k++, len++) {
			if (len == cap) {
				cap *= 2;
				for (int w = 0; w < 2; w++)
					if (!(v[w] = realloc(v[w], (cap * src->cols[w] + 1) * sizeof(double))))
						exit(3);
			}
			for (int w = 0; w < 2; w++)
				memcpy(v[w] + len * src->cols[w], src->v[w] + r * src->cols[w], src->cols[w] * sizeof(double));
		}
	}
	if (!bad && len == 0) {
		diag_error(ld->d, tr_loc(ld, key, "copies"), "train.%s.copies leaves no rows", key);
		bad = -1;
	}
	for (int w = 0; w < 2; w++) {
		free(src->v[w]);
		src->v[w] = v[w];
		src->rows[w] = len;
	}
	return bad;
}

/* data = { inputs = FILE | rows, labels = FILE | rows, copies = function } */
static int tr_read_data(lua_State *L, TrLoad *ld, const char *key, TrSrc *src)
{
	int t = lua_getfield(L, -1, key);
	int bad = 0;
	if (t == LUA_TTABLE) {
		static const char *const known[] = { "inputs", "labels", "copies", NULL };
		bad |= tr_unknown(L, ld, key, known);
		bad |= tr_read_rows(L, ld, key, "inputs", src, 0);
		bad |= tr_read_rows(L, ld, key, "labels", src, 1);
		int tf = lua_getfield(L, -1, "copies");
		if (tf == LUA_TFUNCTION && !bad) {
			bad |= tr_copy_rows(L, ld, key, src);
		} else if (tf != LUA_TNIL && tf != LUA_TFUNCTION) {
			diag_error(ld->d, tr_loc(ld, key, "copies"), "train.%s.copies must be a function(inputs, label)", key);
			bad = -1;
		}
		lua_pop(L, 1);
		src->set = true;
	} else if (t != LUA_TNIL) {
		diag_error(ld->d, tr_loc(ld, key, NULL), "train.%s must be a table { inputs = FILE, labels = FILE }", key);
		bad = -1;
	}
	lua_pop(L, 1);
	return bad ? -1 : 0;
}

static int tr_read_settle(lua_State *L, TrLoad *ld, TrainSpec *sp)
{
	int t = lua_getfield(L, -1, "settle");
	int bad = 0;
	if (t == LUA_TNUMBER) {
		lua_pop(L, 1);
		bad = tr_range(L, ld, NULL, "settle", 0, 1e300, false, &sp->settle);
		return bad;
	}
	if (t == LUA_TTABLE) {
		static const char *const known[] = { "weight", "layers", "start", "ramp", NULL };
		bad |= tr_unknown(L, ld, "settle", known);
		bad |= tr_range(L, ld, "settle", "weight", 0, 1e300, false, &sp->settle);
		bad |= tr_count(L, ld, "settle", "start", 0, TR_MAX_EPOCHS, &sp->settle_start) < 0;
		bad |= tr_count(L, ld, "settle", "ramp", 0, TR_MAX_EPOCHS, &sp->settle_ramp) < 0;
		int tl = lua_getfield(L, -1, "layers");
		if (tl == LUA_TTABLE) {
			size_t n = lua_rawlen(L, -1);
			sp->settle_layers = run_xcalloc(n + 1, sizeof *sp->settle_layers);
			for (size_t i = 0; i < n; i++) {
				if (lua_rawgeti(L, -1, (lua_Integer)i + 1) == LUA_TSTRING)
					sp->settle_layers[sp->nsettle++] = run_strdup(lua_tostring(L, -1));
				else {
					diag_error(ld->d, tr_loc(ld, "settle", "layers"), "train.settle.layers must be a list of "
					           "layer names");
					bad = -1;
				}
				lua_pop(L, 1);
			}
		} else if (tl != LUA_TNIL) {
			diag_error(ld->d, tr_loc(ld, "settle", "layers"), "train.settle.layers must be a list of layer names");
			bad = -1;
		}
		lua_pop(L, 1);
	} else if (t != LUA_TNIL) {
		diag_error(ld->d, tr_loc(ld, "settle", NULL), "train.settle must be a number (the weight) or "
		           "{ weight = W, layers = { ... } }");
		bad = -1;
	}
	lua_pop(L, 1);
	return bad ? -1 : 0;
}

/* optimizer.lr_scale = { NAME = factor, ... }: tensor NAME's learning rate is
 * factor times the schedule's. */
static int tr_read_lr_scale(lua_State *L, TrLoad *ld, TrainSpec *sp)
{
	int t = lua_getfield(L, -1, "lr_scale"), bad = 0;
	if (t == LUA_TTABLE) {
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
			double f = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
			Loc loc = tr_loc(ld, "optimizer", "lr_scale");
			if (!k || !(f >= 0 && f <= 1e6)) {
				diag_error(ld->d, loc, "train.optimizer.lr_scale.%s must be a number in [0, 1e6]", k ? k : "?");
				bad = -1;
			} else {
				sp->lrs = realloc(sp->lrs, (sp->nlrs + 1) * sizeof *sp->lrs);
				if (!sp->lrs)
					exit(3);
				sp->lrs[sp->nlrs++] = (TrScale){ run_strdup(k), f, loc };
			}
			lua_pop(L, 1);
		}
	} else if (t != LUA_TNIL) {
		diag_error(ld->d, tr_loc(ld, "optimizer", "lr_scale"), "train.optimizer.lr_scale must be a table "
		           "{ TENSOR = factor, ... }");
		bad = -1;
	}
	lua_pop(L, 1);
	return bad;
}

static int tr_read_opt(lua_State *L, TrLoad *ld, TrainSpec *sp)
{
	int bad = 0;
	char *name = NULL;
	if (lua_getfield(L, -1, "optimizer") == LUA_TTABLE) {
		static const char *const known[] = { "name", "lr", "beta1", "beta2", "eps", "weight_decay", "clip",
		                                     "lr_scale", NULL };
		bad |= tr_unknown(L, ld, "optimizer", known);
		bad |= tr_string(L, ld, "optimizer", "name", &name) < 0;
		if (name && !strcmp(name, "adamw"))
			sp->opt.kind = OPT_ADAMW;
		else if (name && !strcmp(name, "adam"))
			sp->opt.kind = OPT_ADAM;
		else if (name && !strcmp(name, "sgd"))
			sp->opt.kind = OPT_SGD;
		else if (name) {
			diag_error(ld->d, tr_loc(ld, "optimizer", "name"), "unknown optimizer '%s' (adamw, adam or sgd)",
			           name);
			bad = -1;
		}
		bad |= tr_range(L, ld, "optimizer", "lr", 0, 1e6, true, &sp->opt.lr);
		bad |= tr_range(L, ld, "optimizer", "beta1", 0, 0.999999, false, &sp->opt.beta1);
		bad |= tr_range(L, ld, "optimizer", "beta2", 0, 0.999999999, false, &sp->opt.beta2);
		bad |= tr_range(L, ld, "optimizer", "eps", 0, 1, true, &sp->opt.eps);
		bad |= tr_range(L, ld, "optimizer", "weight_decay", 0, 1e6, false, &sp->opt.weight_decay);
		bad |= tr_range(L, ld, "optimizer", "clip", 0, 1e300, false, &sp->opt.clip);
		bad |= tr_read_lr_scale(L, ld, sp);
	} else if (lua_type(L, -1) != LUA_TNIL) {
		diag_error(ld->d, tr_loc(ld, "optimizer", NULL), "train.optimizer must be a table, e.g. "
		           "{ name = \"adamw\", lr = 0.01 }");
		bad = -1;
	}
	lua_pop(L, 1);
	free(name);
	name = NULL;
	if (lua_getfield(L, -1, "schedule") == LUA_TTABLE) {
		static const char *const known[] = { "name", "warmup", "min_lr", NULL };
		bad |= tr_unknown(L, ld, "schedule", known);
		bad |= tr_string(L, ld, "schedule", "name", &name) < 0;
		if (name && !strcmp(name, "cosine"))
			sp->opt.cosine = 1;
		else if (name && strcmp(name, "constant")) {
			diag_error(ld->d, tr_loc(ld, "schedule", "name"), "unknown schedule '%s' (constant or cosine)", name);
			bad = -1;
		}
		bad |= tr_count(L, ld, "schedule", "warmup", 0, TR_MAX_EPOCHS, &sp->opt.warmup) < 0;
		bad |= tr_range(L, ld, "schedule", "min_lr", 0, 1e6, false, &sp->opt.min_lr);
	} else if (lua_type(L, -1) != LUA_TNIL) {
		diag_error(ld->d, tr_loc(ld, "schedule", NULL), "train.schedule must be a table, e.g. "
		           "{ name = \"cosine\", warmup = 10 }");
		bad = -1;
	}
	lua_pop(L, 1);
	free(name);
	return bad ? -1 : 0;
}

static bool tr_has(lua_State *L, const char *key)   /* table at the top has key */
{
	bool has = lua_getfield(L, -1, key) != LUA_TNIL;
	lua_pop(L, 1);
	return has;
}

/* Appends the numbers of a (nested) Lua array at the top of the stack to
 * ti->values, row-major. */
static int tr_flatten(lua_State *L, TrInit *ti)
{
	if (lua_type(L, -1) == LUA_TNUMBER) {
		double x = lua_tonumber(L, -1);
		if (!isfinite(x))
			return -1;
		vec_push(&ti->values, x);
		return 0;
	}
	if (lua_type(L, -1) != LUA_TTABLE || !lua_checkstack(L, 4))
		return -1;
	size_t len = lua_rawlen(L, -1);
	for (size_t i = 1; i <= len; i++) {
		lua_rawgeti(L, -1, (lua_Integer)i);
		int r = tr_flatten(L, ti);
		lua_pop(L, 1);
		if (r < 0)
			return -1;
	}
	return 0;
}

static int tr_read_init(lua_State *L, TrLoad *ld, TrainSpec *sp)
{
	int t = lua_getfield(L, -1, "init");
	int bad = 0;
	if (t == LUA_TSTRING) {
		if (!strcmp(lua_tostring(L, -1), "model"))
			sp->init_model = true;
		else if (strcmp(lua_tostring(L, -1), "random")) {
			diag_error(ld->d, tr_loc(ld, "init", NULL), "train.init must be \"model\", \"random\" or a table");
			bad = -1;
		}
	} else if (t == LUA_TTABLE) {
		static const char *const known[] = { "seed", "std", "tensors", NULL };
		bad |= tr_unknown(L, ld, "init", known);
		double seed;
		int r = tr_number(L, ld, "init", "seed", &seed);
		if (r == 1 && (seed < 0 || seed != floor(seed) || seed > 9007199254740992.0)) {
			diag_error(ld->d, tr_loc(ld, "init", "seed"), "train.init.seed must be a non-negative integer");
			bad = -1;
		} else if (r == 1) {
			sp->seed = (unsigned long long)seed;
		}
		bad |= r < 0;
		bad |= tr_range(L, ld, "init", "std", 0, 1e6, false, &sp->init_std);
		if (lua_getfield(L, -1, "tensors") == LUA_TTABLE) {
			lua_pushnil(L);
			while (lua_next(L, -2)) {
				const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
				TrInit ti = { k ? run_strdup(k) : NULL, 0, 0, { NULL, 0, 0 }, tr_loc(ld, "init", "tensors") };
				bool okv = k != NULL;
				if (lua_type(L, -1) == LUA_TNUMBER) {
					ti.mean = lua_tonumber(L, -1);
				} else if (lua_type(L, -1) == LUA_TTABLE && tr_has(L, "values")) {
					lua_getfield(L, -1, "values");
					okv &= tr_flatten(L, &ti) == 0 && ti.values.n > 0;
					lua_pop(L, 1);
				} else if (lua_type(L, -1) == LUA_TTABLE) {
					lua_getfield(L, -1, "mean");
					ti.mean = lua_tonumber(L, -1);
					okv &= lua_isnil(L, -1) || lua_type(L, -1) == LUA_TNUMBER;
					lua_getfield(L, -2, "std");
					ti.std = lua_tonumber(L, -1);
					okv &= lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TNUMBER && ti.std >= 0);
					lua_pop(L, 2);
				} else {
					okv = false;
				}
				if (!okv || !isfinite(ti.mean) || !isfinite(ti.std)) {
					diag_error(ld->d, ti.loc, "train.init.tensors.%s must be a number, "
					           "{ mean = M, std = S } or { values = { finite numbers, row-major } }", k ? k : "?");
					bad = -1;
					free(ti.name);
					vec_free(&ti.values);
				} else {
					sp->tinit = realloc(sp->tinit, (sp->ntinit + 1) * sizeof *sp->tinit);
					if (!sp->tinit)
						exit(3);
					sp->tinit[sp->ntinit++] = ti;
				}
				lua_pop(L, 1);
			}
		} else if (lua_type(L, -1) != LUA_TNIL) {
			diag_error(ld->d, tr_loc(ld, "init", "tensors"), "train.init.tensors must be a table");
			bad = -1;
		}
		lua_pop(L, 1);
	} else if (t != LUA_TNIL) {
		diag_error(ld->d, tr_loc(ld, "init", NULL), "train.init must be \"model\", \"random\" or a table");
		bad = -1;
	}
	lua_pop(L, 1);
	return bad ? -1 : 0;
}

static int tr_read_stability(lua_State *L, TrLoad *ld, TrainSpec *sp)
{
	int t = lua_getfield(L, -1, "stability");
	int bad = 0;
	char *mode = NULL;
	if (t == LUA_TSTRING) {
		mode = run_strdup(lua_tostring(L, -1));
	} else if (t == LUA_TTABLE) {
		static const char *const known[] = { "mode", "margin", NULL };
		bad |= tr_unknown(L, ld, "stability", known);
		bad |= tr_string(L, ld, "stability", "mode", &mode) < 0;
		bad |= tr_range(L, ld, "stability", "margin", 0, 1, true, &sp->margin);
	} else if (t != LUA_TNIL) {
		diag_error(ld->d, tr_loc(ld, "stability", NULL), "train.stability must be \"project\", \"off\" or "
		           "{ mode = ..., margin = ... }");
		bad = -1;
	}
	if (mode && !strcmp(mode, "off"))
		sp->project = false;
	else if (mode && strcmp(mode, "project")) {
		diag_error(ld->d, tr_loc(ld, "stability", NULL), "unknown stability mode '%s' (project or off)", mode);
		bad = -1;
	}
	free(mode);
	lua_pop(L, 1);
	return bad ? -1 : 0;
}

/* train.readout = { t1, t2, ... }: times before t_end at which the data term
 * is read as well (the loss is the mean over them and t_end). */
static int tr_read_readout(lua_State *L, TrLoad *ld, TrainSpec *sp)
{
	int t = lua_getfield(L, -1, "readout"), bad = 0;
	if (t == LUA_TTABLE) {
		size_t n = (size_t)lua_rawlen(L, -1);
		sp->readout = run_xcalloc(n + 1, sizeof *sp->readout);
		for (size_t i = 1; i <= n && !bad; i++) {
			if (lua_rawgeti(L, -1, (lua_Integer)i) != LUA_TNUMBER || !(lua_tonumber(L, -1) > 0) ||
			    !isfinite(lua_tonumber(L, -1)))
				bad = -1;
			else
				sp->readout[sp->nreadout++] = lua_tonumber(L, -1);
			lua_pop(L, 1);
		}
	} else if (t != LUA_TNIL) {
		bad = -1;
	}
	if (bad)
		diag_error(ld->d, tr_loc(ld, "readout", NULL), "train.readout must be a list of positive times");
	lua_pop(L, 1);
	return bad;
}

/* The readout times as steps of dt: each in [1, nsteps) and after the one
 * before. */
static int tr_readout_steps(TrainSpec *sp, const Lx *lx, double dt, int64_t nsteps, Diags *d)
{
	sp->readout_steps = run_xcalloc(sp->nreadout + 1, sizeof *sp->readout_steps);
	for (size_t i = 0; i < sp->nreadout; i++) {
		int64_t n = (int64_t)llround(sp->readout[i] / dt);
		if (n < 1 || n >= nsteps || (i > 0 && n <= sp->readout_steps[i - 1])) {
			diag_error(d, lx_key_loc(lx, "train", "readout", NULL), "train.readout: time %g is not %s", sp->readout[i],
			           n < 1 ? "at least one step (dt)" : n >= nsteps ? "before t_end" : "after the time before it");
			return -1;
		}
		sp->readout_steps[i] = n;
	}
	return 0;
}

/* train.revive = { at = { E1, E2, ... } }: ascending epochs (revive.h). */
static int tr_read_revive(lua_State *L, TrLoad *ld, TrainSpec *sp)
{
	int t = lua_getfield(L, -1, "revive"), bad = 0;
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		return 0;
	}
	sp->revive_loc = tr_loc(ld, "revive", NULL);
	static const char *const known[] = { "at", NULL };
	if (t == LUA_TTABLE && tr_unknown(L, ld, "revive", known) < 0) {
		lua_pop(L, 1);
		return -1;
	}
	if (t != LUA_TTABLE || lua_getfield(L, -1, "at") != LUA_TTABLE) {
		lua_pop(L, t == LUA_TTABLE ? 2 : 1);   /* at (when read), revive */
		diag_error(ld->d, sp->revive_loc, "train.revive must be { at = { EPOCH, ... } }");
		return -1;
	}
	size_t n = (size_t)lua_rawlen(L, -1);
	sp->revive = run_xcalloc(n + 1, sizeof *sp->revive);
	for (size_t i = 1; i <= n && !bad; i++) {
		lua_Integer e = 0;
		if (lua_rawgeti(L, -1, (lua_Integer)i) != LUA_TNUMBER || !lua_isinteger(L, -1) ||
		    (e = lua_tointeger(L, -1)) < 1 || e > TR_MAX_EPOCHS ||
		    (sp->nrevive && e <= sp->revive[sp->nrevive - 1]))
			bad = -1;
		else
			sp->revive[sp->nrevive++] = (long)e;
		lua_pop(L, 1);
	}
	if (bad || !n) {
		diag_error(ld->d, tr_loc(ld, "revive", "at"), "train.revive.at must list epochs (integers >= 1), ascending");
		bad = -1;
	}
	lua_pop(L, 2);
	return bad;
}

static int tr_read_table(lua_State *L, void *user)
{
	TrLoad *ld = user;
	TrainSpec *sp = ld->sp;
	if (lua_type(L, -1) != LUA_TTABLE) {
		diag_error(ld->d, tr_loc(ld, NULL, NULL), "%s", lua_isnil(L, -1) ? "the config sets no 'train' table "
		           "(docs/training.md)" : "'train' must be a table");
		return -1;
	}
	static const char *const known[] = { "data", "validation", "output", "loss", "settle", "epochs", "batch",
	                                     "eval_every", "checkpoint_every", "optimizer", "schedule", "init",
	                                     "stability", "readout", "revive", NULL };
	int bad = tr_unknown(L, ld, NULL, known);
	bad |= tr_read_data(L, ld, "data", &sp->data);
	bad |= tr_read_data(L, ld, "validation", &sp->val);
	if (!sp->data.set && !bad) {
		diag_error(ld->d, tr_loc(ld, NULL, NULL), "train.data = { inputs = FILE, labels = FILE } is required");
		bad = -1;
	}
	bad |= tr_string(L, ld, NULL, "output", &sp->output) < 0;
	char *loss = NULL;
	bad |= tr_string(L, ld, NULL, "loss", &loss) < 0;
	if (loss && !strcmp(loss, "squared"))
		sp->loss = GRAD_LOSS_SQUARED;
	else if (loss && strcmp(loss, "cross_entropy")) {
		diag_error(ld->d, tr_loc(ld, "loss", NULL), "unknown loss '%s' (cross_entropy or squared)", loss);
		bad = -1;
	}
	free(loss);
	bad |= tr_read_settle(L, ld, sp);
	bad |= tr_read_readout(L, ld, sp);
	bad |= tr_read_revive(L, ld, sp);
	bad |= tr_count(L, ld, NULL, "epochs", 1, TR_MAX_EPOCHS, &sp->epochs) < 0;
	bad |= tr_count(L, ld, NULL, "batch", 0, 1L << 30, &sp->batch) < 0;
	bad |= tr_count(L, ld, NULL, "eval_every", 1, TR_MAX_EPOCHS, &sp->eval_every) < 0;
	bad |= tr_count(L, ld, NULL, "checkpoint_every", 1, TR_MAX_EPOCHS, &sp->checkpoint_every) < 0;
	bad |= tr_read_opt(L, ld, sp);
	bad |= tr_read_init(L, ld, sp);
	bad |= tr_read_stability(L, ld, sp);
	return bad ? -1 : 0;
}

static void tr_spec_default(TrainSpec *sp)
{
	memset(sp, 0, sizeof *sp);
	sp->loss = GRAD_LOSS_XENT;
	sp->epochs = 100;
	sp->eval_every = 10;
	sp->opt = (TrainOpt){ OPT_ADAMW, 1e-2, 0.9, 0.999, 1e-8, 1e-4, 1.0, 0, 0, 0, 0, NULL };
	sp->seed = 1;
	sp->init_std = 0.1;
	sp->project = true;
	sp->margin = 0.95;
}

static void tr_spec_free(TrainSpec *sp)
{
	for (int w = 0; w < 2; w++) {
		free(sp->data.path[w]);
		free(sp->data.v[w]);
		free(sp->val.path[w]);
		free(sp->val.v[w]);
	}
	free(sp->output);
	free(sp->readout);
	free(sp->readout_steps);
	free(sp->revive);
	for (size_t i = 0; i < sp->nsettle; i++)
		free(sp->settle_layers[i]);
	free(sp->settle_layers);
	for (size_t i = 0; i < sp->ntinit; i++) {
		free(sp->tinit[i].name);
		vec_free(&sp->tinit[i].values);
	}
	free(sp->tinit);
	for (size_t i = 0; i < sp->nlrs; i++)
		free(sp->lrs[i].name);
	free(sp->lrs);
	free(sp->opt.lr_scale);
}

/* ---- the optimiser (train.h) ------------------------------------------------------ */

double train_lr(const TrainOpt *o, long step)
{
	if (o->warmup > 0 && step < o->warmup)
		return o->lr * (double)(step + 1) / (double)o->warmup;
	if (!o->cosine)
		return o->lr;
	long span = o->total_steps - o->warmup;
	double u = span > 1 ? (double)(step - o->warmup) / (double)(span - 1) : 1.0;
	if (u > 1)
		u = 1;
	return o->min_lr + 0.5 * (o->lr - o->min_lr) * (1.0 + cos(TR_PI * u));
}

double train_clip(const TrainOpt *o, double *g, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += g[i] * g[i];
	double norm = sqrt(s);
	if (o->clip > 0 && norm > o->clip)
		for (size_t i = 0; i < n; i++)
			g[i] *= o->clip / norm;
	return norm;
}

void train_opt_step(const TrainOpt *o, long step, double *theta, const double *g, double *m1, double *m2,
                    size_t n)
{
	double lr0 = train_lr(o, step), lr = lr0;
	if (o->kind == OPT_SGD) {
		for (size_t i = 0; i < n; i++) {
			if (o->lr_scale)
				lr = lr0 * o->lr_scale[i];
			theta[i] -= lr * (g[i] + o->weight_decay * theta[i]);
		}
		return;
	}
	double c1 = 1.0 - pow(o->beta1, (double)(step + 1)), c2 = 1.0 - pow(o->beta2, (double)(step + 1));
	double wd = o->kind == OPT_ADAMW ? o->weight_decay : 0.0;
	for (size_t i = 0; i < n; i++) {
		m1[i] = o->beta1 * m1[i] + (1.0 - o->beta1) * g[i];
		m2[i] = o->beta2 * m2[i] + (1.0 - o->beta2) * g[i] * g[i];
		double mh = m1[i] / c1, vh = m2[i] / c2;
		if (o->lr_scale)
			lr = lr0 * o->lr_scale[i];
		theta[i] -= lr * (mh / (sqrt(vh) + o->eps) + wd * theta[i]);   /* decoupled decay (AdamW) */
	}
}

/* ---- data ---------------------------------------------------------------------- */

typedef struct TrData {
	RunBatch rb;           /* rows and their per-input pointers */
	double *labels;        /* nrows * lcols */
	size_t lcols;
} TrData;

/* The rows (checked as damc run checks a dataset: widths, token indices,
 * located in a file) and their labels: one class per row for cross-entropy,
 * the output's values for squared error. */
static int tr_data(const Model *m, const TrSrc *src, const char *what, int out, GradLossKind loss, TrData *td,
                   Diags *d)
{
	memset(td, 0, sizeof *td);
	RunConfig tmp;
	runcfg_init(&tmp);
	tmp.dataset_path = src->path[0];
	if (!src->path[0]) {
		tmp.dataset = src->v[0];
		tmp.dataset_rows = src->rows[0];
		tmp.dataset_cols = src->cols[0];
	}
	int r = run_build_rows(m, &tmp, &td->rb, d);
	tmp.dataset_path = NULL;
	tmp.dataset = NULL;
	runcfg_free(&tmp);
	if (r < 0) {
		diag_note(d, (Loc){ 0, 0, 0 }, "in the rows of train.%s.inputs", what);
		return -1;
	}
	const MOutput *O = &m->outputs[out];
	size_t ny = (size_t)(O->rank == 0 ? 1 : O->n), want = loss == GRAD_LOSS_XENT ? 1 : ny;
	const char *lname = src->path[1] ? src->path[1] : "the inline labels";
	double *v;
	size_t rows;
	if (src->path[1]) {
		DamDataset ds;
		if (tr_read_file(d, src->path[1], "labels", want, loss == GRAD_LOSS_XENT ? " (one class per row)" : "",
		                 &ds) < 0)
			return -1;
		v = ds.v;
		rows = ds.rows;
	} else {
		if (src->cols[1] != want) {
			diag_error(d, (Loc){ 0, 0, 0 }, "train.%s.labels rows have %zu values; output '%s' needs %zu", what,
			           src->cols[1], O->name, want);
			return -1;
		}
		rows = src->rows[1];
		v = run_xcalloc(rows * want + 1, sizeof *v);
		memcpy(v, src->v[1], rows * want * sizeof *v);
	}
	if (rows != td->rb.nrows) {
		diag_error(d, (Loc){ 0, 0, 0 }, "%s has %zu rows of labels for %zu rows of inputs (train.%s)", lname, rows,
		           td->rb.nrows, what);
		free(v);
		return -1;
	}
	for (size_t i = 0; loss == GRAD_LOSS_XENT && i < rows; i++) {
		double c = v[i];
		if (c != floor(c) || c < 0 || c >= (double)ny) {
			diag_error(d, (Loc){ 0, 0, 0 }, "%s: row %zu: label %g is not a class of output '%s' (0..%zu)", lname,
			           i + 1, c, O->name, ny - 1);
			free(v);
			return -1;
		}
	}
	td->labels = v;
	td->lcols = want;
	return 0;
}

static void tr_data_free(TrData *td)
{
	run_batch_free(&td->rb);
	free(td->labels);
}

/* ---- workers ------------------------------------------------------------------- */

typedef struct TrRow {
	double data, penalty;
	bool correct, finite;
} TrRow;

typedef struct Trainer {
	const Model *m;
	TrainSpec *sp;
	DamGrad **G;
	bool *busy;
	int nG;
	pthread_mutex_t lock;
	size_t ng;             /* gradient size */
	double *theta;
	int out;
	double dt;
	int64_t nsteps, ckpt;  /* steps; checkpoint interval (nsteps: the whole trajectory kept) */
	unsigned char *settle_on;
	double settle_w;       /* the penalty's weight this epoch (tr_settle_weight) */
	/* the current batch */
	const TrData *td;
	const size_t *rows; size_t nrows;
	bool backward;
	double *chunk_grad;    /* nchunks * ng */
	double **scratch;      /* per module: ng */
	TrRow *res;            /* per batch row */
	double *states;        /* NULL, or per batch row the state the run ends at (nx doubles) */
	size_t nx;             /* model_state_size */
} Trainer;

static int tr_acquire(Trainer *T)
{
	pthread_mutex_lock(&T->lock);
	int k = 0;
	while (k < T->nG && T->busy[k])
		k++;
	T->busy[k] = true;
	pthread_mutex_unlock(&T->lock);
	return k;
}

static void tr_release(Trainer *T, int k)
{
	pthread_mutex_lock(&T->lock);
	T->busy[k] = false;
	pthread_mutex_unlock(&T->lock);
}

static bool tr_finite(const double *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(v[i]))
			return false;
	return true;
}

static void tr_job(int64_t c, void *user)
{
	Trainer *T = user;
	int k = tr_acquire(T);
	DamGrad *G = T->G[k];
	const Model *m = T->m;
	size_t lo = (size_t)c * TR_CHUNK, hi = lo + TR_CHUNK < T->nrows ? lo + TR_CHUNK : T->nrows;
	double *acc = T->backward ? T->chunk_grad + (size_t)c * T->ng : NULL;
	double *out = run_xcalloc(grad_output_size(G) + 1, sizeof *out);
	const MOutput *O = &m->outputs[T->out];
	size_t ny = (size_t)(O->rank == 0 ? 1 : O->n), ooff = grad_kernels(G)->fwd.output_off[T->out];
	for (size_t i = lo; i < hi; i++) {
		size_t r = T->rows[i];
		for (int in = 0; in < m->ninputs; in++)
			grad_set_input(G, in, T->td->rb.inputs[r * (size_t)m->ninputs + (size_t)in], (size_t)m->inputs[in].n);
		const double *lab = T->td->labels + r * T->td->lcols;
		GradLoss L = { T->out, T->sp->loss, lab, T->settle_w, T->settle_on, T->sp->readout_steps,
		               (int)T->sp->nreadout };
		double parts[2];
		if (T->backward) {
			grad_run_ex(G, T->dt, T->nsteps, T->ckpt, &L, T->scratch[k], parts);
			if (i == lo)
				memcpy(acc, T->scratch[k], T->ng * sizeof *acc);
			else
				for (size_t j = 0; j < T->ng; j++)
					acc[j] += T->scratch[k][j];
		} else {
			grad_loss_ex(G, T->dt, T->nsteps, &L, parts);
		}
		grad_outputs(G, out);
		if (T->states)
			memcpy(T->states + i * T->nx, grad_state(G), T->nx * sizeof *T->states);
		const double *y = out + ooff;
		TrRow *res = &T->res[i];
		res->data = parts[0];
		res->penalty = parts[1];
		res->finite = isfinite(parts[0]) && isfinite(parts[1]) && tr_finite(y, ny);
		if (T->sp->loss == GRAD_LOSS_XENT) {
			size_t best = 0;
			for (size_t j = 1; j < ny; j++)
				if (y[j] > y[best])
					best = j;
			res->correct = (double)best == lab[0];
		} else {
			/* squared error: right when every value is within 0.5 of its target */
			bool okr = true;
			for (size_t j = 0; j < ny; j++)
				okr &= fabs(y[j] - lab[j]) < 0.5;
			res->correct = okr;
		}
	}
	free(out);
	tr_release(T, k);
}

/* The settling penalty's weight at epoch e (1-based): 0 before settle.start,
 * then w (1 - cos(pi u)) / 2 over settle.ramp epochs, then w (the schedule
 * of the published training: a penalty from the start keeps the model from
 * learning the task). */
static double tr_settle_weight(const TrainSpec *sp, long e)
{
	if (e <= sp->settle_start)
		return sp->settle_start ? 0.0 : sp->settle;
	if (sp->settle_ramp <= 0 || e >= sp->settle_start + sp->settle_ramp)
		return sp->settle;
	double u = (double)(e - sp->settle_start) / (double)sp->settle_ramp;
	return sp->settle * 0.5 * (1.0 - cos(TR_PI * u));
}

/* Put theta into module G. */
static void tr_put_theta(const Trainer *T, DamGrad *G)
{
	for (int i = 0; i < grad_nparams(G); i++)
		grad_set_tensor(G, grad_param(G, i), T->theta + grad_param_offset(G, i));
}

/* Put theta into every module. */
static void tr_set_theta(Trainer *T)
{
	for (int k = 0; k < T->nG; k++)
		tr_put_theta(T, T->G[k]);
}

/* Run rows[0..n) of td: losses, accuracy and (backward) the summed gradient into g. */
static void tr_pass(Trainer *T, const TrData *td, const size_t *rows, size_t n, bool backward, double *g,
                    int threads)
{
	size_t nchunks = (n + TR_CHUNK - 1) / TR_CHUNK;
	T->td = td;
	T->rows = rows;
	T->nrows = n;
	T->backward = backward;
	T->res = run_xcalloc(n + 1, sizeof *T->res);
	if (backward)
		T->chunk_grad = run_xcalloc(nchunks * T->ng + 1, sizeof *T->chunk_grad);
	tr_set_theta(T);
	dam_parallel_for((int64_t)nchunks, threads, tr_job, T);
	if (backward) {
		memset(g, 0, T->ng * sizeof *g);
		for (size_t c = 0; c < nchunks; c++)
			for (size_t j = 0; j < T->ng; j++)
				g[j] += T->chunk_grad[c * T->ng + j];
		free(T->chunk_grad);
		T->chunk_grad = NULL;
	}
}

/* ---- stability ------------------------------------------------------------------- */

typedef struct TrProj {
	int block;
	TensorId w;
	int *params; int nparams;   /* grad params the definition of w reads */
} TrProj;

static double tr_sigma(Trainer *T, const TrProj *p)
{
	const Model *m = T->m;
	const MBlock *B = &m->blocks[p->block];
	tr_put_theta(T, T->G[0]);    /* the other modules get theta before the next pass */
	const double *w = grad_eval_tensor(T->G[0], p->w);
	return check_spectral_norm(w, m->layers[B->a].n, m->layers[B->b].n);
}

/* Blocks to keep bounded: covered by the check and computed from parameters. */
static TrProj *tr_proj_plan(Trainer *T, int *n)
{
	const Model *m = T->m;
	TrProj *pl = run_xcalloc((size_t)m->nblocks + 1, sizeof *pl);
	*n = 0;
	for (int b = 0; b < m->nblocks; b++) {
		TensorId w = m->blocks[b].w;
		if (!check_bound_block(m, b) || !m->tensors[w].def || !grad_eval_tensor(T->G[0], w))
			continue;
		TrProj p = { b, w, run_xcalloc((size_t)grad_nparams(T->G[0]) + 1, sizeof(int)), 0 };
		for (int i = 0; i < grad_nparams(T->G[0]); i++)
			if (sym_uses_tensor(m->sym, m->tensors[w].def, grad_param(T->G[0], i)))
				p.params[p.nparams++] = i;
		if (p.nparams)
			pl[(*n)++] = p;
		else
			free(p.params);
	}
	return pl;
}

static void tr_scale(Trainer *T, const TrProj *p, const double *base, double s)
{
	const Model *m = T->m;
	for (int k = 0; k < p->nparams; k++) {
		int i = p->params[k];
		size_t off = grad_param_offset(T->G[0], i), len = (size_t)sym_tensor_size(m->sym, grad_param(T->G[0], i));
		for (size_t j = 0; j < len; j++)
			T->theta[off + j] = s * base[off + j];
	}
}

/* Scale the parameters of each planned block so that sigma_max(W) <= margin. */
static void tr_project(Trainer *T, const TrProj *pl, int n, double *base)
{
	for (int b = 0; b < n; b++) {
		double sigma = tr_sigma(T, &pl[b]);
		if (sigma <= T->sp->margin)
			continue;
		memcpy(base, T->theta, T->ng * sizeof *base);
		double lo = 0, hi = 1;
		for (int it = 0; it < 60 && hi - lo > 1e-12; it++) {
			double mid = 0.5 * (lo + hi);
			tr_scale(T, &pl[b], base, mid);
			if (tr_sigma(T, &pl[b]) <= T->sp->margin)
				lo = mid;
			else
				hi = mid;
		}
		tr_scale(T, &pl[b], base, lo);
	}
}

/* ---- revival of dead units (revive.h) ----------------------------------------------- */

enum { TR_REVIVE_ROWS = 8 };   /* the worst-fit inputs a revival tries to detect */
#define TR_REVIVE_GUARD 2.0      /* a move whose projected loss is above this x the loss is refused */

/* Mean loss of the training rows at the current theta (forward only); per
 * row data terms into loss and end states into x when they are not NULL. */
static double tr_forward(Trainer *T, const TrData *td, const size_t *rows, size_t n, double *loss, double *x,
                         int threads)
{
	T->states = x;
	tr_pass(T, td, rows, n, false, NULL, threads);
	T->states = NULL;
	double sum = 0;
	for (size_t i = 0; i < n; i++) {
		sum += T->res[i].data + T->res[i].penalty;
		if (loss)
			loss[i] = T->res[i].data;
	}
	free(T->res);
	T->res = NULL;
	return sum / (double)n;
}

/* After epoch `epoch` of train.revive.at: try every candidate move, its
 * pattern at 1, 0.5 and 0.25 times the live unit's, on the training rows,
 * and keep the one that lowers the loss most (none when none lowers it);
 * its optimiser moments start again from 0.  The losses are compared
 * before the stability projection (a copied pattern raises sigma_max, and
 * the rescaling of the whole block would hide the move's own effect, which
 * training then undoes), but a move whose projected loss is above
 * TR_REVIVE_GUARD x the loss is refused: its pattern lies along the block's
 * top singular direction, and the rescaling would undo the training so far
 * (docs/training.md). */
static void tr_revive(Trainer *T, const TrData *td, const size_t *rows, size_t n, double *m1, double *m2,
                      const RvLayer *rl, int nrl, const TrProj *proj, int nproj, double *base, int threads,
                      long epoch, bool tty)
{
	const Model *m = T->m;
	double *x = run_xcalloc(n * T->nx + 1, sizeof *x), *loss = run_xcalloc(n + 1, sizeof *loss);
	size_t *cls = run_xcalloc(n + 1, sizeof *cls);
	double cur = tr_forward(T, td, rows, n, loss, x, threads);
	for (size_t r = 0; r < n; r++) {   /* a row's class: the first row with the same inputs */
		cls[r] = r;
		for (size_t q = 0; q < r && cls[r] == r; q++) {
			bool same = true;
			for (int in = 0; in < m->ninputs && same; in++)
				same = !memcmp(td->rb.inputs[rows[q] * (size_t)m->ninputs + (size_t)in],
				               td->rb.inputs[rows[r] * (size_t)m->ninputs + (size_t)in],
				               (size_t)m->inputs[in].n * sizeof(double));
			if (same)
				cls[r] = q;
		}
	}
	int max = 0;
	for (int i = 0; i < nrl; i++)
		max += (int)rl[i].n * TR_REVIVE_ROWS;
	RvMove *mv = run_xcalloc((size_t)max + 1, sizeof *mv);
	int nmv = rv_candidates(m, rl, nrl, x, T->nx, loss, cls, n, TR_REVIVE_ROWS, mv, max);
	double *keep = run_xcalloc(T->ng + 1, sizeof *keep), best = cur;
	memcpy(keep, T->theta, T->ng * sizeof *keep);
	int bi = -1;
	static const double scales[] = { 1.0, 0.5, 0.25 };
	for (int k = 0; k < nmv; k++)
		for (size_t si = 0; si < sizeof scales / sizeof *scales; si++) {
			RvMove cand = mv[k];
			cand.scale = scales[si];
			tr_put_theta(T, T->G[0]);   /* rv_apply reads W off G[0]: all of it from theta */
			if (rv_apply(T->G[0], rl, &cand, T->theta, NULL, NULL) == 0) {
				double own = tr_forward(T, td, rows, n, NULL, NULL, threads), proj_l = own;
				if (nproj) {
					tr_project(T, proj, nproj, base);
					proj_l = tr_forward(T, td, rows, n, NULL, NULL, threads);
				}
				if (isfinite(own) && own < best && isfinite(proj_l) && proj_l <= TR_REVIVE_GUARD * cur) {
					best = own;
					bi = k;
					mv[k].scale = scales[si];
				}
			}
			memcpy(T->theta, keep, T->ng * sizeof *keep);
		}
	if (tty)
		fputc('\n', stderr);
	if (bi >= 0) {
		tr_put_theta(T, T->G[0]);
		rv_apply(T->G[0], rl, &mv[bi], T->theta, m1, m2);
		if (nproj)
			tr_project(T, proj, nproj, base);
		fprintf(stderr, "damc train: epoch %ld: revived %s unit %lld with the pattern of unit %lld (x %g), active "
		        "on the worst-fit training row alone (", epoch, m->layers[rl[mv[bi].layer].layer].name,
		        (long long)mv[bi].dead, (long long)mv[bi].from, mv[bi].scale);
		for (int in = 0; in < m->ninputs; in++) {
			const double *v = td->rb.inputs[rows[mv[bi].row] * (size_t)m->ninputs + (size_t)in];
			fprintf(stderr, "%s%s =", in ? ", " : "", m->inputs[in].name);
			for (int64_t j = 0; j < m->inputs[in].n && j < 16; j++)
				fprintf(stderr, " %g", v[j]);
			if (m->inputs[in].n > 16)
				fputs(" ...", stderr);
		}
		fprintf(stderr, "); loss %.6g -> %.6g\n", cur, best);
	} else {
		fprintf(stderr, "damc train: epoch %ld: no revival lowers the loss (%d candidate%s)\n", epoch, nmv,
		        nmv == 1 ? "" : "s");
	}
	free(keep);
	free(mv);
	free(cls);
	free(loss);
	free(x);
}

/* ---- checkpoints ------------------------------------------------------------------ */

typedef struct TrState {
	long epoch, step;
	double *theta, *m1, *m2;
} TrState;

static void tr_state_copy(TrState *dst, const TrState *src, size_t ng)
{
	memcpy(dst->theta, src->theta, ng * sizeof *dst->theta);
	memcpy(dst->m1, src->m1, ng * sizeof *dst->m1);
	memcpy(dst->m2, src->m2, ng * sizeof *dst->m2);
	dst->epoch = src->epoch;
	dst->step = src->step;
}

/* The checkpoint key of learned tensor t (sema sets it; its name otherwise). */
static const char *tr_key(const Model *m, TensorId t)
{
	return m->tensors[t].key ? m->tensors[t].key : sym_tensor_name(m->sym, t);
}

/* The learned tensors of m (values from theta for parameters) and, with st, the
 * optimiser state, as one .npz. */
static int tr_save(const Trainer *T, const char *path, const TrState *st, char *err, size_t errlen)
{
	const Model *m = T->m;
	const DamGrad *G = T->G[0];
	int cap = 3 * (int)m->ntensors + 4, n = 0;
	const char **names = run_xcalloc((size_t)cap, sizeof *names);
	int *rank = run_xcalloc((size_t)cap, sizeof *rank);
	const int64_t **shape = run_xcalloc((size_t)cap, sizeof *shape);
	const double **data = run_xcalloc((size_t)cap, sizeof *data);
	char **owned = run_xcalloc((size_t)cap, sizeof *owned);
	int nowned = 0;
	static int64_t one = 1;
	double *scal = run_xcalloc(3, sizeof *scal);
	for (TensorId t = 1; t < m->ntensors; t++) {
		const MTensor *mt = &m->tensors[t];
		if (mt->kind != MT_LEARN)
			continue;
		int pi = -1;
		for (int i = 0; i < grad_nparams(G); i++)
			if (grad_param(G, i) == t)
				pi = i;
		const char *key = tr_key(m, t);
		int base = n;
		names[n] = key;
		rank[n] = sym_tensor_rank(m->sym, t);
		shape[n] = sym_tensor_shape(m->sym, t);
		data[n] = pi >= 0 ? st->theta + grad_param_offset(G, pi) : mt->data;
		n++;
		if (pi < 0)
			continue;
		for (int w = 0; w < 2; w++) {
			size_t len = strlen(key) + 16;
			owned[nowned] = run_xcalloc(len, 1);
			snprintf(owned[nowned], len, "train.m%d.%s", w + 1, key);
			names[n] = owned[nowned++];
			rank[n] = rank[base];
			shape[n] = shape[base];
			data[n] = (w ? st->m2 : st->m1) + grad_param_offset(G, pi);
			n++;
		}
	}
	scal[0] = (double)st->epoch;
	scal[1] = (double)st->step;
	scal[2] = (double)T->sp->seed;
	static const char *const sn[3] = { "train.epoch", "train.step", "train.seed" };
	for (int i = 0; i < 3; i++) {
		names[n] = sn[i];
		rank[n] = 1;
		shape[n] = &one;
		data[n] = scal + i;
		n++;
	}
	int rc = dam_npz_write(path, n, names, rank, shape, data, err, errlen);
	for (int i = 0; i < nowned; i++)
		free(owned[i]);
	free(owned);
	free(names);
	free(rank);
	free(shape);
	free(data);
	free(scal);
	return rc;
}

/* Read one array of a checkpoint into dst (n values); 0, or -1 with a diagnostic. */
static int tr_read_array(const char *path, const char *key, double *dst, size_t n, Diags *d)
{
	DamArray a;
	char err[512];
	if (dam_npz_read(path, key, &a, err, sizeof err) < 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "--resume %s: %s (not a checkpoint damc train wrote for this model?)", path,
		           err);
		return -1;
	}
	int rc = 0;
	if (a.count != n || !tr_finite(a.data, n)) {
		diag_error(d, (Loc){ 0, 0, 0 }, "--resume %s: array '%s' has %zu values, expected %zu finite ones", path,
		           key, a.count, n);
		rc = -1;
	} else {
		memcpy(dst, a.data, n * sizeof *dst);
	}
	dam_array_free(&a);
	return rc;
}

static int tr_resume(const Trainer *T, const char *path, TrState *st, Diags *d)
{
	const Model *m = T->m;
	const DamGrad *G = T->G[0];
	double sc[3];
	static const char *const sn[3] = { "train.epoch", "train.step", "train.seed" };
	for (int i = 0; i < 3; i++)
		if (tr_read_array(path, sn[i], sc + i, 1, d) < 0)
			return -1;
	for (int i = 0; i < grad_nparams(G); i++) {
		TensorId t = grad_param(G, i);
		const char *key = tr_key(m, t);
		size_t off = grad_param_offset(G, i), len = (size_t)sym_tensor_size(m->sym, t);
		char k1[512], k2[512];
		snprintf(k1, sizeof k1, "train.m1.%s", key);
		snprintf(k2, sizeof k2, "train.m2.%s", key);
		if (tr_read_array(path, key, st->theta + off, len, d) < 0 ||
		    tr_read_array(path, k1, st->m1 + off, len, d) < 0 || tr_read_array(path, k2, st->m2 + off, len, d) < 0)
			return -1;
	}
	st->epoch = (long)sc[0];
	st->step = (long)sc[1];
	if ((unsigned long long)sc[2] != T->sp->seed)
		diag_warning(d, (Loc){ 0, 0, 0 }, "--resume %s: the checkpoint was trained with seed %.0f, this run has "
		             "seed %llu (shuffling from here on follows %llu)", path, sc[2], T->sp->seed, T->sp->seed);
	return 0;
}

/* ---- initialisation --------------------------------------------------------------- */

static uint64_t tr_mix(uint64_t x)       /* splitmix64's finaliser */
{
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

static double tr_uniform(uint64_t *s)    /* (0, 1) */
{
	*s = tr_mix(*s);
	return ((double)(*s >> 11) + 0.5) * 0x1.0p-53;
}

static double tr_normal(uint64_t *s)     /* Box-Muller */
{
	double u = tr_uniform(s), v = tr_uniform(s);
	return sqrt(-2.0 * log(u)) * cos(2.0 * TR_PI * v);
}

/* sp->opt.lr_scale: the factor of each parameter's learning rate
 * (optimizer.lr_scale), freed with sp; -1 with an error located at the table
 * for a name that is not trained. */
static int tr_lr_scale(const Model *m, const DamGrad *G, TrainSpec *sp, Diags *d)
{
	double *f = run_xcalloc(grad_size(G) + 1, sizeof *f);
	for (size_t j = 0; j < grad_size(G); j++)
		f[j] = 1;
	for (size_t k = 0; k < sp->nlrs; k++) {
		int i = 0;
		while (i < grad_nparams(G) && strcmp(sym_tensor_name(m->sym, grad_param(G, i)), sp->lrs[k].name))
			i++;
		if (i == grad_nparams(G)) {
			diag_error(d, sp->lrs[k].loc, "train.optimizer.lr_scale.%s: the model trains no tensor '%s'",
			           sp->lrs[k].name, sp->lrs[k].name);
			free(f);
			return -1;
		}
		size_t off = grad_param_offset(G, i), len = (size_t)sym_tensor_size(m->sym, grad_param(G, i));
		for (size_t j = 0; j < len; j++)
			f[off + j] = sp->lrs[k].f;
	}
	sp->opt.lr_scale = f;
	return 0;
}

/* theta from the model's values, or random: N(mean, std^2) per tensor, each
 * tensor from its own stream (seed, tensor name), so adding a tensor to a
 * model does not change the others' initial values. */
static int tr_init(Trainer *T, double *theta, Diags *d)
{
	const Model *m = T->m;
	const DamGrad *G = T->G[0];
	for (int i = 0; i < grad_nparams(G); i++) {
		TensorId t = grad_param(G, i);
		size_t off = grad_param_offset(G, i), len = (size_t)sym_tensor_size(m->sym, t);
		const char *name = sym_tensor_name(m->sym, t);
		if (T->sp->init_model || !m->tensors[t].data) {
			if (m->tensors[t].data)
				memcpy(theta + off, m->tensors[t].data, len * sizeof *theta);
			continue;
		}
		double mean = 0, std = T->sp->init_std;
		const TrInit *ti = NULL;
		for (size_t k = 0; k < T->sp->ntinit; k++)
			if (!strcmp(T->sp->tinit[k].name, name))
				ti = &T->sp->tinit[k], mean = ti->mean, std = ti->std;
		if (ti && ti->values.n) {
			if (ti->values.n != len) {
				diag_error(d, ti->loc, "train.init.tensors.%s.values has %zu numbers; %s has %zu",
				           name, ti->values.n, name, len);
				return -1;
			}
			memcpy(theta + off, ti->values.v, len * sizeof *theta);
			continue;
		}
		uint64_t s = tr_mix(T->sp->seed);
		for (const char *p = name; *p; p++)
			s = tr_mix(s ^ (uint8_t)*p);
		for (size_t j = 0; j < len; j++)
			theta[off + j] = mean + (std > 0 ? std * tr_normal(&s) : 0.0);
	}
	return 0;
}

/* ---- progress ---------------------------------------------------------------------- */

static double tr_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct TrEval {
	long epoch;
	double loss, data, penalty, train_acc, val_acc, lr;
	size_t train_ok, val_ok;
} TrEval;

static void tr_progress(const TrainSpec *sp, const TrEval *e, long first, double t0, bool tty, bool final,
                        size_t ntrain, size_t nval)
{
	double el = tr_now() - t0, per = e->epoch > first ? el / (double)(e->epoch - first) : 0;
	double eta = per * (double)(sp->epochs - e->epoch);
	char val[64] = "";
	if (nval)
		snprintf(val, sizeof val, "  val %zu/%zu", e->val_ok, nval);
	if (tty) {
		int w = 24, filled = (int)((double)w * (double)e->epoch / (double)sp->epochs);
		char bar[32];
		for (int i = 0; i < w; i++)
			bar[i] = i < filled ? '#' : '.';
		bar[w] = 0;
		fprintf(stderr, "\r\033[Kepoch %ld/%ld [%s] loss %.4g  train %zu/%zu%s  %.3g s/epoch  ETA %ld:%02ld%s",
		        e->epoch, sp->epochs, bar, e->loss, e->train_ok, ntrain, val, per, (long)eta / 60, (long)eta % 60,
		        final ? "\n" : "");
	} else {
		fprintf(stderr, "epoch %ld/%ld  loss %.6g (data %.6g, settle %.3g)  train %zu/%zu%s  lr %.3g  %.3g s/epoch\n",
		        e->epoch, sp->epochs, e->loss, e->data, e->penalty, e->train_ok, ntrain, val, e->lr, per);
	}
	fflush(stderr);
}

static void tr_json(const TrEval *e, size_t ntrain, size_t nval)
{
	printf("{\"epoch\":%ld,\"loss\":%.17g,\"data_loss\":%.17g,\"settle_penalty\":%.17g,\"lr\":%.17g,"
	       "\"train_correct\":%zu,\"train_rows\":%zu,\"train_accuracy\":%.17g", e->epoch, e->loss, e->data,
	       e->penalty, e->lr, e->train_ok, ntrain, e->train_acc);
	if (nval)
		printf(",\"val_correct\":%zu,\"val_rows\":%zu,\"val_accuracy\":%.17g", e->val_ok, nval, e->val_acc);
	printf("}\n");
	fflush(stdout);
}

static int tr_plot(const char *path, const TrEval *ev, size_t n, bool have_val, char *err, size_t errlen)
{
	RepBuf data, body;
	rep_init(&data);
	rep_init(&body);
	for (size_t i = 0; i < n; i++)
		rep_printf(&data, "%ld %.17g %.17g %.17g %.17g\n", ev[i].epoch, ev[i].loss, ev[i].data, ev[i].train_acc,
		           have_val ? ev[i].val_acc : ev[i].train_acc);
	rep_printf(&body, "set multiplot layout 2,1\nset grid\nset xlabel 'epoch'\nset ylabel 'loss'\n"
	           "set logscale y\nplot 'trace.dat' using 1:2 with lines title 'loss', "
	           "'trace.dat' using 1:3 with lines title 'data term'\nunset logscale y\n"
	           "set ylabel 'accuracy'\nset yrange [0:1.05]\n"
	           "plot 'trace.dat' using 1:4 with lines title 'train'%s\nunset multiplot\n",
	           have_val ? ", 'trace.dat' using 1:5 with lines title 'validation'" : "");
	int rc = report_gnuplot(path, body.s, data.s ? data.s : "", data.n, err, errlen);
	rep_free(&data);
	rep_free(&body);
	return rc;
}

/* ---- the command --------------------------------------------------------------------- */

typedef struct TrainArgs {
	RunArgs ra;
	const char *out, *resume, *plot;
	long epochs;
	long long seed;        /* -1: the config's */
} TrainArgs;

static volatile sig_atomic_t tr_interrupted;

static void tr_on_sigint(int sig)
{
	(void)sig;
	tr_interrupted = 1;
}

static int tr_parse(TrainArgs *t, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			t->ra.help = true;
		} else if (!strcmp(a, "--json")) {
			t->ra.cli.json = true;
		} else if (!strcmp(a, "-o") || !strcmp(a, "--resume") || !strcmp(a, "--plot") || !strcmp(a, "--epochs") ||
		           !strcmp(a, "--seed")) {
			if (!v || !*v)
				return run_usage_error("%s expects a value", a);
			i++;
			if (!strcmp(a, "-o")) {
				t->out = v;
			} else if (!strcmp(a, "--resume")) {
				t->resume = v;
			} else if (!strcmp(a, "--plot")) {
				t->plot = v;
			} else if (!strcmp(a, "--epochs")) {
				t->epochs = strtol(v, &end, 10);
				if (end == v || *end || t->epochs < 1 || t->epochs > TR_MAX_EPOCHS)
					return run_usage_error("--epochs expects a number in 1..10000000, got '%s'", v);
			} else {
				t->seed = strtoll(v, &end, 10);
				if (end == v || *end || t->seed < 0)
					return run_usage_error("--seed expects a non-negative integer, got '%s'", v);
			}
		} else if (a[0] == '-' && a[1]) {
			int rc = run_parse_flag(&t->ra, argc, argv, &i);
			if (rc)
				return rc;
		} else if (!t->ra.model) {
			t->ra.model = a;
		} else {
			return run_usage_error("unexpected argument '%s'", a);
		}
	}
	if (t->ra.help)
		return 0;
	if (!t->ra.model)
		return run_usage_error("%s", "no model file given");
	if (!t->ra.config)
		return run_usage_error("%s", "a config with a 'train' table is required: -c TRAIN.lua");
	if (!t->out)
		return run_usage_error("%s", "-o CKPT.npz is required");
	size_t n = strlen(t->out);
	if (n < 5 || strcmp(t->out + n - 4, ".npz"))
		return run_usage_error("-o expects a file ending in .npz, got '%s'", t->out);
	return 0;
}

/* The loss's output and the penalised layers, checked against the model. */
static int tr_check_model(const Model *m, TrainSpec *sp, const Lx *lx, int *out, unsigned char *on, Diags *d)
{
	*out = -1;
	if (sp->output) {
		*out = model_find(m, MODEL_OUTPUT, sp->output);
		if (*out < 0) {
			diag_error(d, lx_key_loc(lx, "train", "output", NULL), "the loss is on output '%s', which the model "
			           "does not declare", sp->output);
			return -1;
		}
	} else {
		for (int o = 0; o < m->noutputs && *out < 0; o++)
			if (sp->loss != GRAD_LOSS_XENT || (m->outputs[o].rank == 1 && m->outputs[o].n >= 2))
				*out = o;
		if (*out < 0) {
			diag_error(d, lx_key_loc(lx, "train", NULL, NULL), "the model has no %s output to train on; set "
			           "train.output", sp->loss == GRAD_LOSS_XENT ? "vector (logits)" : "");
			return -1;
		}
	}
	const MOutput *O = &m->outputs[*out];
	if (sp->loss == GRAD_LOSS_XENT && (O->rank != 1 || O->n < 2)) {
		diag_error(d, lx_key_loc(lx, "train", sp->output ? "output" : "loss", NULL), "cross-entropy needs a "
		           "vector output of at least two logits; '%s' has %lld value(s)", O->name, (long long)O->n);
		return -1;
	}
	for (int l = 0; l < m->nlayers; l++)
		on[l] = 0;
	if (sp->nsettle) {
		for (size_t i = 0; i < sp->nsettle; i++) {
			int l = model_find(m, MODEL_LAYER, sp->settle_layers[i]);
			if (l < 0) {
				diag_error(d, lx_key_loc(lx, "train", "settle", "layers"), "train.settle.layers: the model has no "
				           "layer '%s'", sp->settle_layers[i]);
				return -1;
			}
			on[l] = 1;
		}
	} else {
		/* the layers the output reads (the paper's v-dot) */
		for (int l = 0; l < m->nlayers; l++)
			on[l] = sym_uses_tensor(m->sym, O->expr, m->layers[l].x) || sym_uses_tensor(m->sym, O->expr, m->layers[l].g);
	}
	return 0;
}

/* Learned tensors that no kernel reads (so no output depends on them), or that
 * are scalars (compiled in, not trained): warnings at their declarations. */
static void tr_warn_unused(const Model *m, const DamGrad *G, Diags *d)
{
	for (TensorId t = 1; t < m->ntensors; t++) {
		const MTensor *mt = &m->tensors[t];
		if (mt->kind != MT_LEARN)
			continue;
		bool param = false;
		for (int i = 0; i < grad_nparams(G); i++)
			param |= grad_param(G, i) == t;
		if (param)
			continue;
		Loc loc = { mt->loc.file, mt->loc.line, mt->loc.col };
		if (sym_tensor_rank(m->sym, t) == 0)
			diag_warning(d, loc, "learned scalar '%s' is compiled into the kernels and is not trained; make it a "
			             "vector of one value to train it", sym_tensor_name(m->sym, t));
		else
			diag_warning(d, loc, "no output depends on learned tensor '%s': training leaves it as it is",
			             sym_tensor_name(m->sym, t));
	}
}

/* Report a non-finite value: which row, or which tensor's gradient. */
static bool tr_nan(const Trainer *T, const TrRow *res, size_t n, const double *g, long epoch, Diags *d)
{
	for (size_t i = 0; i < n; i++)
		if (!res[i].finite) {
			diag_error(d, (Loc){ 0, 0, 0 }, "epoch %ld: the loss of training row %zu is not finite (NaN or inf); "
			           "stopped, the checkpoint holds the parameters after epoch %ld", epoch, T->rows[i] + 1,
			           epoch - 1);
			return true;
		}
	const DamGrad *G = T->G[0];
	for (int i = 0; g && i < grad_nparams(G); i++) {
		TensorId t = grad_param(G, i);
		size_t off = grad_param_offset(G, i), len = (size_t)sym_tensor_size(T->m->sym, t);
		if (!tr_finite(g + off, len)) {
			diag_error(d, (Loc){ 0, 0, 0 }, "epoch %ld: the gradient of '%s' is not finite (NaN or inf); stopped, "
			           "the checkpoint holds the parameters after epoch %ld", epoch, sym_tensor_name(T->m->sym, t),
			           epoch - 1);
			return true;
		}
	}
	return false;
}

/* The boundedness warnings of the front end are about the values the model
 * loads; when training starts elsewhere (train.init, --resume) they say
 * nothing about what is trained, so they are dropped with their notes. */
static void tr_drop_value_warnings(Diags *d, size_t from)
{
	size_t k = from;
	bool dropping = false;
	for (size_t i = from; i < d->n; i++) {
		const Diag *g = &d->v[i];
		if (g->sev != DIAG_NOTE)
			dropping = g->sev == DIAG_WARNING && strstr(g->msg, "unbounded below");
		if (dropping) {
			if (g->sev == DIAG_WARNING)
				d->nwarnings--;
			continue;
		}
		d->v[k++] = *g;
	}
	d->n = k;
}

static int tr_threads(const RunConfig *rc)
{
	long n = rc->threads > 0 ? rc->threads : sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

static int tr_body(TrainArgs *ta, TrainSpec *sp, const Lx *lx, const RunConfig *rc, Diags *d, Arena *a)
{
	const RunArgs *ra = &ta->ra;
	if (ta->epochs > 0)
		sp->epochs = ta->epochs;
	if (ta->seed >= 0)
		sp->seed = (unsigned long long)ta->seed;
	if (!sp->checkpoint_every)
		sp->checkpoint_every = sp->eval_every;
	if (rc->solver && strcmp(rc->solver, "euler")) {
		diag_error(d, (Loc){ 0, 0, 0 }, "damc train differentiates forward Euler runs; the config asks for solver "
		           "'%s'", rc->solver);
		return RUN_EXIT_INPUT;
	}
	DamRunOpts opts;
	if (run_make_opts(rc, &opts, d) < 0)
		return RUN_EXIT_INPUT;
	size_t nd0 = d->n;
	Model *m = run_compile(ra->model, rc, d, a);
	if (!m || diag_errors(d))
		return RUN_EXIT_INPUT;
	if (!sp->init_model || ta->resume)
		tr_drop_value_warnings(d, nd0);
	if (run_check_step(m, &opts, d) < 0)
		return RUN_EXIT_INPUT;
	int out;
	unsigned char *on = run_xcalloc((size_t)m->nlayers + 1, 1);
	TrData tdat, vdat;
	memset(&vdat, 0, sizeof vdat);
	bool have_val = sp->val.set;
	if (tr_check_model(m, sp, lx, &out, on, d) < 0 ||
	    tr_data(m, &sp->data, "data", out, sp->loss, &tdat, d) < 0) {
		free(on);
		return RUN_EXIT_INPUT;
	}
	if (have_val && tr_data(m, &sp->val, "validation", out, sp->loss, &vdat, d) < 0) {
		tr_data_free(&tdat);
		free(on);
		return RUN_EXIT_INPUT;
	}
	int threads = tr_threads(rc);
	Trainer T;
	memset(&T, 0, sizeof T);
	T.m = m;
	T.sp = sp;
	T.out = out;
	T.dt = opts.dt;
	T.nsteps = (int64_t)llround(opts.t_end / opts.dt);
	T.settle_on = on;
	T.nx = (size_t)model_state_size(m);
	if (tr_readout_steps(sp, lx, opts.dt, T.nsteps, d) < 0) {
		tr_data_free(&tdat);
		tr_data_free(&vdat);
		free(on);
		return RUN_EXIT_INPUT;
	}
	T.nG = threads;
	T.G = run_xcalloc((size_t)threads, sizeof *T.G);
	T.busy = run_xcalloc((size_t)threads, sizeof *T.busy);
	T.scratch = run_xcalloc((size_t)threads, sizeof *T.scratch);
	pthread_mutex_init(&T.lock, NULL);
	int status = RUN_EXIT_OK;
	char err[1024] = "";
	for (int k = 0; k < threads; k++) {
		T.G[k] = grad_new(m, 0, err, sizeof err);
		if (!T.G[k]) {
			diag_error(d, (Loc){ 0, 0, 0 }, "%s: the gradient module does not compile: %s", ra->model, err);
			status = RUN_EXIT_INPUT;
			T.nG = k;
			goto done;
		}
	}
	T.ng = grad_size(T.G[0]);
	/* keep the whole trajectory when it fits in 64 MB (no recomputation), else checkpoint every sqrt(N) */
	T.ckpt = (double)T.nsteps * (double)model_state_size(m) * 8.0 <= 64e6 ? T.nsteps : 0;
	for (int k = 0; k < threads; k++)
		T.scratch[k] = run_xcalloc(T.ng + 1, sizeof(double));
	tr_warn_unused(m, T.G[0], d);
	if (grad_nparams(T.G[0]) == 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "%s: the model has no learned tensor that an output depends on; nothing to "
		           "train", ra->model);
		status = RUN_EXIT_INPUT;
		goto done;
	}
	if (sp->nlrs && tr_lr_scale(m, T.G[0], sp, d) < 0) {
		status = RUN_EXIT_INPUT;
		goto done;
	}
	size_t ng = T.ng, ntr = tdat.rb.nrows, nval = have_val ? vdat.rb.nrows : 0;
	size_t bsz = sp->batch > 0 && (size_t)sp->batch < ntr ? (size_t)sp->batch : ntr;
	long per_epoch = (long)((ntr + bsz - 1) / bsz);
	sp->opt.total_steps = per_epoch * sp->epochs;
	TrState st = { 0, 0, run_xcalloc(ng + 1, sizeof(double)), run_xcalloc(ng + 1, sizeof(double)),
	               run_xcalloc(ng + 1, sizeof(double)) };
	TrState good = { 0, 0, run_xcalloc(ng + 1, sizeof(double)), run_xcalloc(ng + 1, sizeof(double)),
	                 run_xcalloc(ng + 1, sizeof(double)) };
	double *g = run_xcalloc(ng + 1, sizeof *g), *base = run_xcalloc(ng + 1, sizeof *base);
	size_t *order = run_xcalloc(ntr + 1, sizeof *order), *vrows = run_xcalloc(nval + 1, sizeof *vrows);
	for (size_t i = 0; i < nval; i++)
		vrows[i] = i;
	TrEval *hist = run_xcalloc((size_t)sp->epochs + 2, sizeof *hist);
	size_t nhist = 0;
	T.theta = st.theta;
	int nproj = 0, nrl = 0;
	size_t ri = 0;   /* the next train.revive.at epoch */
	RvLayer *rl = NULL;
	TrProj *proj = NULL;
	if (ta->resume) {
		if (tr_resume(&T, ta->resume, &st, d) < 0) {
			status = RUN_EXIT_INPUT;
			goto free_state;
		}
	} else {
		if (tr_init(&T, st.theta, d) < 0) {
			status = RUN_EXIT_INPUT;
			goto free_state;
		}
	}
	if (sp->project) {
		proj = tr_proj_plan(&T, &nproj);
		if (!ta->resume)
			tr_project(&T, proj, nproj, base);
	}
	if (sp->nrevive) {
		rl = rv_plan(m, T.G[0], &nrl);
		if (!nrl) {
			diag_error(d, sp->revive_loc, "train.revive: %s has no ReLU layer with a learned bias c[j] and a "
			           "block made elementwise from a learned tensor, so no unit can be revived", ra->model);
			status = RUN_EXIT_INPUT;
			goto free_state;
		}
		while (ri < sp->nrevive && sp->revive[ri] <= st.epoch)
			ri++;
	}
	bool tty = isatty(2) != 0;
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = tr_on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	tr_interrupted = 0;
	double t0 = tr_now();
	long first = st.epoch;
	tr_state_copy(&good, &st, ng);
	bool stopped = false;
	for (long epoch = st.epoch + 1; epoch <= sp->epochs && !stopped; epoch++) {
		for (size_t i = 0; i < ntr; i++)
			order[i] = i;
		if (bsz < ntr) {                 /* Fisher-Yates from (seed, epoch) */
			uint64_t s = tr_mix(tr_mix(sp->seed) ^ (uint64_t)epoch);
			for (size_t i = ntr - 1; i > 0; i--) {
				size_t j = (size_t)(tr_uniform(&s) * (double)(i + 1));
				size_t tmp = order[i];
				order[i] = order[j > i ? i : j];
				order[j > i ? i : j] = tmp;
			}
		}
		TrEval ev = { .epoch = epoch };
		T.settle_w = tr_settle_weight(sp, epoch);
		for (size_t b0 = 0; b0 < ntr && !stopped; b0 += bsz) {
			size_t nb = b0 + bsz < ntr ? bsz : ntr - b0;
			ev.lr = train_lr(&sp->opt, st.step);
			tr_pass(&T, &tdat, order + b0, nb, true, g, threads);
			for (size_t i = 0; i < nb; i++) {
				ev.data += T.res[i].data / (double)ntr;
				ev.penalty += T.res[i].penalty / (double)ntr;
				ev.train_ok += T.res[i].correct;
			}
			bool bad = tr_nan(&T, T.res, nb, g, epoch, d);
			free(T.res);
			T.res = NULL;
			if (bad) {           /* `good` is what gets saved */
				status = RUN_EXIT_DIVERGED;
				stopped = true;
				break;
			}
			for (size_t j = 0; j < ng; j++)
				g[j] /= (double)nb;
			train_clip(&sp->opt, g, ng);
			train_opt_step(&sp->opt, st.step, st.theta, g, st.m1, st.m2, ng);
			st.step++;
			if (nproj)
				tr_project(&T, proj, nproj, base);
			if (tr_interrupted) {
				stopped = true;
				break;
			}
		}
		if (stopped)
			break;
		st.epoch = epoch;
		if (nrl && ri < sp->nrevive && sp->revive[ri] == epoch) {
			ri++;
			tr_revive(&T, &tdat, order, ntr, st.m1, st.m2, rl, nrl, proj, nproj, base, threads, epoch, tty);
		}
		tr_state_copy(&good, &st, ng);
		ev.loss = ev.data + ev.penalty;
		ev.train_acc = (double)ev.train_ok / (double)ntr;
		bool last = epoch == sp->epochs;
		if (epoch % sp->eval_every == 0 || last || epoch == first + 1) {
			if (have_val) {
				tr_pass(&T, &vdat, vrows, nval, false, NULL, threads);
				for (size_t i = 0; i < nval; i++)
					ev.val_ok += T.res[i].correct;
				free(T.res);
				T.res = NULL;
				ev.val_acc = (double)ev.val_ok / (double)nval;
			}
			hist[nhist++] = ev;
			if (rc->json)
				tr_json(&ev, ntr, nval);
			tr_progress(sp, &ev, first, t0, tty, last, ntr, nval);
		} else if (tty) {
			tr_progress(sp, &ev, first, t0, tty, false, ntr, nval);
		}
		if ((epoch % sp->checkpoint_every == 0 || last) && tr_save(&T, ta->out, &st, err, sizeof err) < 0) {
			diag_error(d, (Loc){ 0, 0, 0 }, "cannot write the checkpoint: %s", err);
			status = RUN_EXIT_INPUT;
			break;
		}
		if (tr_interrupted)
			break;
	}
	if (stopped || tr_interrupted) {
		if (tty)
			fputc('\n', stderr);
		/* the last full epoch's state: resuming repeats nothing and loses nothing */
		if (tr_save(&T, ta->out, &good, err, sizeof err) < 0) {
			diag_error(d, (Loc){ 0, 0, 0 }, "cannot write the checkpoint: %s", err);
			status = RUN_EXIT_INPUT;
		} else if (tr_interrupted && status == RUN_EXIT_OK) {
			diag_error(d, (Loc){ 0, 0, 0 }, "interrupted after epoch %ld; %s holds that state: resume with "
			           "--resume %s", good.epoch, ta->out, ta->out);
			status = 130;
		}
	}
	sigaction(SIGINT, &old, NULL);
	double wall = tr_now() - t0;
	if (status == RUN_EXIT_OK) {
		const TrEval *e = nhist ? &hist[nhist - 1] : NULL;
		long done_epochs = st.epoch - first;
		if (!rc->json && e) {
			printf("trained %ld epochs: loss %.6g, train %zu/%zu", st.epoch, e->loss, e->train_ok, ntr);
			if (have_val)
				printf(", validation %zu/%zu", e->val_ok, nval);
			printf("; checkpoint %s\n", ta->out);
		}
		fprintf(stderr, "damc train: %ld epochs in %.2f s (%.4f s/epoch, %d threads)\n", done_epochs, wall,
		        done_epochs ? wall / (double)done_epochs : 0.0, threads);
		if (ta->plot && tr_plot(ta->plot, hist, nhist, have_val, err, sizeof err) < 0) {
			diag_error(d, (Loc){ 0, 0, 0 }, "%s", err);
			status = RUN_EXIT_INPUT;
		}
	}
free_state:
	dam_free(rl);
	for (int b = 0; b < nproj; b++)
		free(proj[b].params);
	free(proj);
	free(hist);
	free(order);
	free(vrows);
	free(g);
	free(base);
	free(st.theta);
	free(st.m1);
	free(st.m2);
	free(good.theta);
	free(good.m1);
	free(good.m2);
done:
	for (int k = 0; k < T.nG; k++)
		grad_free(T.G[k]);
	for (int k = 0; k < threads; k++)
		free(T.scratch[k]);
	free(T.scratch);
	free(T.G);
	free(T.busy);
	pthread_mutex_destroy(&T.lock);
	tr_data_free(&tdat);
	if (have_val)
		tr_data_free(&vdat);
	free(on);
	return status;
}

int cmd_train(int argc, char **argv)
{
	TrainArgs t;
	memset(&t, 0, sizeof t);
	t.ra.opt_level = 3;
	t.seed = -1;
	runcfg_init(&t.ra.cli);
	int status = tr_parse(&t, argc, argv);
	if (status || t.ra.help) {
		if (t.ra.help && !status)
			fputs(train_usage, stdout);
		runcfg_free(&t.ra.cli);
		return status;
	}
	Arena a;
	Diags d;
	RunConfig rc;
	Lx lx;
	TrainSpec sp;
	arena_init(&a);
	diags_init(&d, &a);
	runcfg_init(&rc);
	memset(&lx, 0, sizeof lx);
	tr_spec_default(&sp);
	char *dir = lx_dirname(t.ra.config);
	lx.file = diag_add_file(&d, t.ra.config);
	if (lx.file)
		lx_scan(&lx, diag_source(&d, lx.file)->text);
	TrLoad ld = { &sp, &d, &lx, dir };
	CfgExtra ex = { "train", tr_read_table, &ld };
	if (cfg_load_lua_extra(t.ra.config, &rc, &ex, &d) < 0) {
		status = RUN_EXIT_INPUT;
	} else {
		run_merge(&rc, &t.ra.cli, t.ra.have_inputs_flag);
		status = tr_body(&t, &sp, &lx, &rc, &d, &a);
	}
	diag_render(&d, stderr);
	free(dir);
	lx_free(&lx);
	tr_spec_free(&sp);
	diags_free(&d);
	arena_free(&a);
	runcfg_free(&rc);
	runcfg_free(&t.ra.cli);
	return status;
}
