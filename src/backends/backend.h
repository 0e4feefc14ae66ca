/* backend.h - the one small interface every file-producing backend offers.
 *
 * A backend turns a checked Model IR into bytes: the SPICE netlist
 * (src/backends/spice) and the crossbar programming image (src/backends/xbar).
 * It reads only the Model IR, the options below and a device profile, and
 * reports problems to the diagnostics sink located at the declaration of the
 * layer or block concerned (MLoc).  Backends never include llvm-c: the JIT is
 * the simulator provider behind the driver's DamSim, not a Backend, so a
 * program that only emits netlists or images links no LLVM (in the spirit of
 * QBE's Target and PostgreSQL's jit_provider).
 *
 * The driver looks a backend up by name (backend_find in the driver) and
 * calls emit() with an open stream; the driver owns atomic output.
 */
#ifndef DAM_BACKEND_H
#define DAM_BACKEND_H

#include <stdio.h>

#include "../frontend/diag.h"
#include "model.h"

/* A technology: one Lua table under examples/devices/ (docs/netlist.md).
 * The amplifier part is what `--level amplifier` and `damc report` use; the
 * crossbar part bounds what one physical array holds.  Fields <= 0 are unset. */
typedef struct DevAmp {
	double gain;           /* open-loop DC gain A0 (V/V) */
	double gbw;            /* gain-bandwidth product (Hz) */
	double slew;           /* slew rate (V/s) */
	double vmax, vmin;     /* output swing (V) */
	double power;          /* static power of one amplifier (W) */
} DevAmp;

typedef enum { DEV_ENC_UNSET, DEV_ENC_DIFFERENTIAL, DEV_ENC_OFFSET } DevEncoding;
typedef enum { DEV_SCALE_UNSET, DEV_SCALE_GLOBAL, DEV_SCALE_TILE } DevScale;

typedef struct DevXbar {
	double rows, cols;     /* largest array: lines of each side (0: unlimited) */
	double gmin, gmax;     /* usable conductance range (S) */
	double bits;           /* bits per cell: 2^bits levels (docs/image-format.md) */
	double dac_bits, adc_bits;   /* resolution of the row drivers and the readout */
	DevEncoding encoding;  /* signed weights: differential pair or offset column */
	DevScale scale;        /* one g0 for the chip, or each tile's largest weight at gmax */
} DevXbar;

/* Statistical non-idealities, drawn per Monte Carlo run (`damc run --mc`). */
typedef struct DevNoise {
	double program;        /* relative sigma of each programmed conductance */
	double read;           /* sigma of the readout, added to every output value (model units) */
	double stuck_min, stuck_max;   /* probability that a cell is stuck at Gmin / Gmax */
	double tau;            /* relative sigma of each neuron's R2*C1 (time-constant mismatch) */
	double drift;          /* conductance drift exponent nu: G(t) = G(t0) (t/t0)^-nu, t0 = 1 s */
	double drift_sigma;    /* sigma of nu from cell to cell */
	double drift_time;     /* t: seconds between programming and the inference (> 1 to drift) */
} DevNoise;

typedef struct DevProfile {
	const char *name;      /* e.g. "discrete" */
	const char *path;      /* where it was read from */
	const char *what;      /* one-line description */
	DevAmp amp;
	DevXbar xbar;
	DevNoise noise;
} DevProfile;

typedef enum { LEVEL_BEHAVIOURAL, LEVEL_AMPLIFIER } BackendLevel;

typedef struct BackendOptions {
	const double *inputs;  /* all inputs' values concatenated (model order); NULL if none */
	double dt, t_end;      /* the run's step and end time, model time units */
	BackendLevel level;
	double volts_per_unit;          /* <= 0: the backend's default */
	double seconds_per_time_unit;   /* <= 0: the backend's default */
	double g0;                      /* conductance of a unit weight (S); <= 0: default */
	const DevProfile *device;       /* NULL: ideal parts, unlimited arrays */
	const char *title;              /* first line of the output (NULL: model path) */
} BackendOptions;

typedef struct Backend {
	const char *name;      /* "spice" */
	const char *what;      /* one line for --help */
	/* Write the output for m to out. Returns 0, or -1 after reporting to d. */
	int (*emit)(const Model *m, const BackendOptions *opt, Diags *d, FILE *out);
} Backend;

/* Turn a declaration place of the Model IR into a diagnostics location. */
static inline Loc backend_loc(MLoc l)
{
	return (Loc){ l.file, l.line, l.col };
}

#endif
