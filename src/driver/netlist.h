/* netlist.h - the session that `damc netlist`, `verify` and `report` share:
 * the flags of `damc run` plus the circuit's own (row, level, device,
 * scales), the merged config, the compiled model, its input rows and the
 * backend options for one row.
 */
#ifndef DAM_NETLIST_H
#define DAM_NETLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "backend.h"
#include "run.h"
#include "spice.h"

typedef struct NetArgs {
	RunArgs ra;            /* model, -c, and the flags `damc run` has */
	const char *cmd;
	const char *out;       /* -o */
	const char *plot;      /* --plot FILE (.png / .svg) */
	long row_lo, row_hi;   /* --row A[:B]; row_lo < 0: not given; row_hi < 0: to the end */
	double tol;            /* verify: fraction of the state scale (< 0: default) */
	bool json, sweep;
} NetArgs;

typedef struct NetSession {
	NetArgs *args;
	bool multi;            /* the command may take several rows */
	RunConfig rc;
	DamRunOpts opts;
	Model *m;
	RunBatch batch;
	size_t lo, hi;         /* selected rows */
	DevProfile dev;
	BackendOptions bo;
} NetSession;

int net_parse_args(NetArgs *na, const char *cmd, int argc, char **argv);
void net_args_free(NetArgs *na);
/* A command built on the session (netlist, verify, report). */
typedef struct NetCommand {
	const char *help;      /* printf format; %s receives the common flags' help */
	bool multi;            /* may take several rows */
	void (*prepare)(NetArgs *na, void *user);          /* after parsing, before the session; may be NULL */
	int (*body)(NetSession *s, Diags *d, void *user);  /* returns the exit status */
	void *user;
	bool help_shown;       /* set: --help was given */
} NetCommand;

/* Parse, print help or open the session, run the body, render diagnostics. */
int net_main(const char *cmd, int argc, char **argv, NetCommand *c);

/* Load the config, compile, build and select rows, load the device. Returns 0 or an exit status. */
int net_open(NetSession *s, NetArgs *na, bool multi, Diags *d, Arena *a);
void net_close(NetSession *s);
/* The session's model JIT-compiled (NULL after reporting to d). */
Jit *net_jit(NetSession *s, Diags *d);
/* Run the JIT on one row with a trace of every step (check_every = 1);
 * outputs (may be NULL) receives the outputs. Returns the run's status. */
DamStatus net_run_jit(NetSession *s, const Jit *jit, size_t row, const DamRunOpts *opts, RepTrace *tr,
                      DamRunResult *res, char *msg, size_t msglen, double *outputs);
/* The circuit plan for one row (NULL after reporting to d). */
SpicePlan *net_plan(NetSession *s, size_t row, Diags *d);

#endif
