/* runcfg.h - a run configuration: what `damc run` does, from flags and Lua.
 *
 * The command line and a Lua file (-c RUN.lua) fill the same RunConfig; flags
 * given on the command line override the file.  Lua configures runs (solver,
 * time span, tolerances, inputs, datasets, parameter overrides, outputs); it
 * never defines models.
 */
#ifndef DAM_RUNCFG_H
#define DAM_RUNCFG_H

#include <stdbool.h>
#include <stddef.h>

#include "backend.h"
#include "diag.h"

typedef struct CfgValues {
	char *name;            /* input name (malloc'd) */
	double *v;             /* values (malloc'd) */
	size_t n;
} CfgValues;

typedef struct RunConfig {
	/* NULL / negative / false means "not set" (the defaults apply later). */
	char *solver;          /* "euler", "rk4", "dopri5", "expeuler" */
	double dt, t_end, rtol, atol, steady_tol;     /* < 0: not set */
	double diverge_limit;                         /* < 0: not set (0: relative default) */
	char **defines; size_t ndefines;              /* "name=value" parameter overrides */
	CfgValues *inputs; size_t ninputs;            /* named inputs */
	char *dataset_path;                           /* dataset file (rows of input values) */
	double *dataset; size_t dataset_rows, dataset_cols;   /* rows given inline / by a Lua function */
	char **outputs; size_t noutputs;              /* outputs to report (all when 0) */
	char *trace_path, *plot_path;
	bool json;
	int threads;                                  /* 0: all cores */
	/* netlist / verify / report (docs/netlist.md) */
	double volts_per_unit, seconds_per_time_unit; /* < 0: not set */
	char *device;                                 /* device profile name or path */
	char *level;                                  /* "behavioural" or "amplifier" */
} RunConfig;

void runcfg_init(RunConfig *rc);
void runcfg_free(RunConfig *rc);

/* Run the Lua file `path` in a sandbox and merge what it sets into rc.
 * Errors (syntax, runtime, wrong types, instruction limit) are reported to d
 * located at the config file and line; returns 0 on success, -1 on error. */
int cfg_load_lua(const char *path, RunConfig *rc, Diags *d);

/* A global that a command reads itself (`damc sweep`'s `sweep` table):
 * cfg_load_lua_extra runs the config as cfg_load_lua does, then, still in
 * the sandbox's protected call, calls read with the global's value on top of
 * the Lua stack (nil when the config does not set it); read may leave values
 * on the stack (the caller restores it), reports its own errors to its Diags
 * and returns 0 or -1.
 * The key is then not an unknown setting. */
struct lua_State;
typedef struct CfgExtra {
	const char *key;
	int (*read)(struct lua_State *L, void *user);
	void *user;
} CfgExtra;
int cfg_load_lua_extra(const char *path, RunConfig *rc, const CfgExtra *ex, Diags *d);

/* Read a device profile (docs/netlist.md): NAME is NAME.lua in $DAMC_DEVICES or
 * in the shipped examples/devices/; a name with a '/' or ending in .lua is a
 * path.  The same sandbox as configs; unknown keys are errors located in the
 * file.  Strings live in a. Returns 0, or -1 after reporting to d. */
int cfg_load_device(const char *name, DevProfile *dp, Arena *a, Diags *d);

#endif
