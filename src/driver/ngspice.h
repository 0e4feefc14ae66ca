/* ngspice.h - run ngspice (the binary, batch mode) on a deck and read its raw file.
 *
 * This is how damc checks its SPICE netlists against a real simulator: ng_run
 * starts `ngspice -b -r RAW DECK` as a child process (no shell, stdin from
 * /dev/null, stdout and stderr captured into one log, killed after a
 * timeout) and counts the log lines that report trouble; ng_raw_read loads
 * the raw file it wrote (binary, or ASCII "Values:") after validating the
 * header against the file's length.  Memory goes through dam_alloc_hook
 * (arena.h); free it with ng_run_free / ng_raw_free.
 */
#ifndef DAM_NGSPICE_H
#define DAM_NGSPICE_H

#include <stddef.h>

typedef struct NgRaw {
	size_t nvars, npoints;
	char **names;        /* as in the raw file, lower-cased: "time", "v(xor_v_2)", "i(vs_v_0)" */
	double *data;        /* npoints * nvars, row-major (point-major); column 0 is time */
} NgRaw;

typedef struct NgRun {
	int status;          /* ngspice exit status (or -1: could not run / killed by timeout) */
	char *log;           /* ngspice's stdout+stderr (NUL-terminated) */
	int warnings;        /* number of log lines that are warnings or errors */
} NgRun;

/* Find the ngspice program: $DAMC_NGSPICE if set (and non-empty), else "ngspice"
 * on PATH.  Returns NULL if it is not an executable file. */
const char *ng_program(void);

/* Run `ngspice -b -r RAW DECK` with stdin from /dev/null, capturing stdout and
 * stderr; kill it (SIGKILL) after timeout_s seconds.  A stale RAW is removed
 * first.  Fills *run in every case (free it with ng_run_free).  Returns 0 when
 * ngspice exited 0 and RAW exists, else -1 with a message in err.
 * Warnings: log lines containing (any case) "warning", "error", "unknown",
 * "floating" or "singular", except the batch-mode banners and lines that only
 * echo the user's names (the "Circuit: TITLE" line, the raw file's name, the
 * node/value table of the initial solution). */
int ng_run(const char *deck, const char *raw, double timeout_s, NgRun *run,
           char *err, size_t errlen);
void ng_run_free(NgRun *run);

/* Read a binary (or ASCII "Values:") ngspice raw file with one real plot.
 * Validates the header (No. Variables, No. Points, Flags real, the variable
 * list), sizes and file length; never reads out of bounds.  A further plot
 * after the first is ignored.  Returns 0, or -1 with err (raw is then empty). */
int ng_raw_read(const char *path, NgRaw *raw, char *err, size_t errlen);

/* Column of variable `name`: matches the bare name, else "v(name)",
 * case-insensitively.  -1 if absent. */
int ng_raw_find(const NgRaw *raw, const char *name);

/* Linear interpolation of column `col` at time t (column 0), clamped to the
 * first/last point.  NaN if col is out of range. */
double ng_raw_at(const NgRaw *raw, int col, double t);

void ng_raw_free(NgRaw *raw);

#endif
