/* run.h - what `damc run` shares with the commands built on it (netlist,
 * verify, report): the common flags, the Lua config merged under them, the
 * compiled model and the list of input rows.
 */
#ifndef DAM_RUN_H
#define DAM_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "dam_integrate.h"
#include "frontend.h"
#include "jit.h"
#include "report.h"
#include "runcfg.h"

#define RUN_EXIT_OK 0
#define RUN_EXIT_INPUT 1
#define RUN_EXIT_USAGE 2
#define RUN_EXIT_DIVERGED 3

typedef struct RunArgs {
	const char *model;
	const char *config;
	RunConfig cli;         /* what the flags set */
	bool dump_ir, help, have_inputs_flag;
	int opt_level;         /* LLVM optimisation level, default 3 */
	bool bake_weights;     /* --bake-weights: weights compiled in as constants */
	const char *image;     /* --image chip.img: run the weights it holds */
	bool force;            /* --force: run an image written for another model */
	long mc;               /* --mc N: Monte Carlo draws of the device's non-idealities (0: none) */
	unsigned long long seed;   /* --seed S */
	const char *labels;    /* --labels FILE: one class per row, for the draws' accuracy */
	long check_every;      /* steps between energy/divergence checks, 0 default (1) */
	int batch;             /* --batch on|off|auto: 1, 0, -1 (default auto) */
	bool fast_exp;         /* --fast-exp: exp inline and vectorisable (JitOptions.fast_exp) */
} RunArgs;

/* One row of input values (all inputs concatenated). */
typedef struct RunRow {
	double *v;
} RunRow;

/* Everything the parallel jobs read and write. */
typedef struct RunBatch {
	const Model *m;
	const Jit *jit;
	DamRunOpts opts;
	RunRow *rows; size_t nrows;
	uint32_t file;         /* dataset file the rows came from (0: none) */
	size_t nin;            /* values per row */
	size_t nout;           /* output values per run */
	double *outputs;       /* nrows * nout */
	DamRunResult *res;
	char (*msg)[256];
	unsigned char *refused; /* per row: an input setter refused a value (msg says why) */
	const double **inputs;  /* nrows * ninputs pointers into rows */
	RepTrace *trace;       /* first run only; NULL: none */
	const struct RunImage *img;   /* --image: weights to program each simulator with */
	bool batched;          /* run the rows through the batched Euler kernel (JIT_BATCH) */
	bool split;            /* one row: each Euler step split over two threads (JIT_SPLIT) */
	struct RunPool *pool;  /* while rows run: simulators reused from row to row (run.c) */
} RunBatch;

void *run_xcalloc(size_t n, size_t size);
char *run_strdup(const char *s);
int run_usage_error(const char *fmt, const char *arg);
int run_parse_number(const char *flag, const char *s, double *out);
/* One flag shared with `damc run` at argv[*i] (-c, -D, --input, --dataset, --dt,
 * --t-end, --solver, ...); returns 0 or an exit status. */
int run_parse_flag(RunArgs *ra, int argc, char **argv, int *i);
void run_merge(RunConfig *rc, RunConfig *cli, bool cli_inputs);
void run_add_define(RunConfig *rc, const char *def);   /* -D NAME=VALUE */
int run_make_opts(const RunConfig *rc, DamRunOpts *o, Diags *d);
/* Refuse a fixed step that the leak of some free layer of m makes unstable
 * (sim_check_step), with a note naming the flags that fix it; 0 or -1. */
int run_check_step(const Model *m, const DamRunOpts *o, Diags *d);
Model *run_compile(const char *path, const RunConfig *rc, Diags *d, Arena *a);
size_t run_input_width(const Model *m);
/* The rows to run (dataset file, inline rows or named inputs), every value
 * checked as the input setter checks it (counts, finite, token indices)
 * before anything runs; errors are located in a dataset file. 0 or -1. */
int run_build_rows(const Model *m, const RunConfig *rc, RunBatch *b, Diags *d);
/* The outputs to report: rc->outputs by name (errors for unknown names), or
 * all of them; *sel (malloc'd) receives *nsel model output numbers. 0 or -1. */
int run_select_outputs(const Model *m, const RunConfig *rc, int **sel, int *nsel, Diags *d);
/* Without an end time in rc: run until m settles (t_end and steady_tol of o
 * set from the slowest tau, docs/cli.md). */
void run_settle_defaults(const Model *m, const RunConfig *rc, DamRunOpts *o);
/* The steps between checks of a fixed-step run without --check-every (run.c). */
long run_check_interval(const Model *m, const DamRunOpts *o);
/* What the options of one run of m take from the model, as damc run does:
 * --check-every, else run_check_interval (1 when tracing), and without an
 * end time the settling defaults (run_settle_defaults).  After run_make_opts. */
void run_model_defaults(const RunArgs *ra, const RunConfig *rc, const Model *m, DamRunOpts *o);
/* A command's body, called with the Lua config of ra merged under its flags. */
typedef int (*RunBody)(const RunArgs *ra, const RunConfig *rc, Diags *d, Arena *a, void *user);
/* Load ra->config, merge ra->cli (its values move into the merged config),
 * call body, render the diagnostics; returns body's status (1 if the config
 * failed to load).  ra->cli is still the caller's to free. */
int run_configured(RunArgs *ra, RunBody body, void *user);
void run_batch_free(RunBatch *b);
/* Run every row of b (allocated by the caller) on the given number of threads (0: all). */
void run_batch_run(RunBatch *b, int threads);

#endif
