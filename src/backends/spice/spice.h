/* spice.h - the SPICE backend: a Model IR as an ngspice netlist.
 *
 * The circuit is the paper's (arXiv:2512.15002 Sec. 4, Fig. 1, Eq. 3):
 * every weight block is a resistive crossbar (one resistor of conductance
 * G0*|w| per non-zero crosspoint), every neuron an RC integrator whose
 * capacitor voltage is the state, driven by a summing amplifier that senses
 * the crossbar current on the neuron's line, cancels the self-term
 * s = g * sum |w| and adds the bias; activations are behavioural blocks that
 * drive the neuron's line.  docs/netlist.md describes the mapping.
 *
 * The backend works in two steps that the netlist and `damc report` share:
 * spice_plan() evaluates everything numeric for one input set (weights,
 * dynamic rows, biases, initial and clamped values, self-terms, line
 * polarities) and checks that the model's derived right-hand sides are
 * exactly what the crossbar computes; spice_write() prints the deck.
 */
#ifndef DAM_SPICE_H
#define DAM_SPICE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../backend.h"

extern const Backend spice_backend;

/* Defaults of the physical scales (docs/netlist.md). */
#define SPICE_VOLTS_PER_UNIT 0.1           /* 1 model unit = 100 mV */
#define SPICE_SECONDS_PER_TIME_UNIT 1e-6   /* 1 model time unit = 1 us */
#define SPICE_R0 1e5                       /* unit weight 1/R0 = 10 uS; R2 = R0 */

typedef struct SpiceNeuron {
	int layer;
	int64_t i;
	bool clamped;          /* held by a voltage source at value */
	double value;          /* clamp value, else the initial state (model units) */
	double bias;
	double self;           /* self-path gain: sum |w| on its lines + self-block diagonal */
	double absum;          /* sum |w| of its crosspoints (noise gain 1 + absum) */
	bool line, nline;      /* drives a crossbar line / an inverted line */
} SpiceNeuron;

typedef struct SpiceXp {
	int64_t a, b;          /* flat neuron numbers: row side, column side */
	double w;              /* signed weight (conductance G0*|w|) */
	int block;
} SpiceXp;

typedef struct SpiceBlockInfo {
	int64_t nonzero, negative;
	double wmin, wmax;     /* over non-zero entries, |w| */
	bool differential;     /* has negative entries: the column side drives an inverted line */
} SpiceBlockInfo;

typedef struct SpicePlan {
	const Model *m;
	BackendOptions opt;
	double vpu, spu, g0, r2;
	int64_t n;             /* neurons (model_state_size) */
	SpiceNeuron *nr;
	SpiceXp *xp; size_t nxp;
	SpiceBlockInfo *blk;   /* per block */
	char **lname;          /* per layer: the node-name prefix ("attn_h") */
	ModelEval ev;          /* inputs set; scratch for activations */
} SpicePlan;

/* Build the plan for one input set; NULL after reporting to d. */
SpicePlan *spice_plan(const Model *m, const BackendOptions *opt, Diags *d);
void spice_plan_free(SpicePlan *p);
/* Print the deck. Returns 0, or -1 after reporting to d. */
int spice_write(SpicePlan *p, FILE *out, Diags *d);

/* The state node of flat neuron k: "<layer>_<i>" with '.' turned into '_'. */
void spice_node(const SpicePlan *p, int64_t k, char *buf, size_t len);

/* What the circuit is made of. */
typedef struct SpiceCensus {
	int64_t crosspoints;   /* resistors of the crossbars */
	int64_t resistors;     /* crosspoints + leak resistors R2 */
	int64_t capacitors;    /* C1, one per free neuron */
	int64_t amplifiers;    /* activation buffers, inverting buffers, summing amplifiers */
	int64_t dac;           /* clamp sources + dynamic crosspoints programmed per inference */
	int64_t adc;           /* state channels read out (every neuron an output depends on) */
	int64_t dynamic_xp;    /* crosspoints of dynamic blocks */
	double gmin, gmax;     /* conductance range used (S) */
} SpiceCensus;
void spice_census(const SpicePlan *p, SpiceCensus *c);

/* Power at model state x (flat, model units), in watts: dissipated in the
 * crossbar conductances and in the leak resistors R2 of the integrators. */
void spice_power(SpicePlan *p, const double *x, double *p_xbar, double *p_leak);

#endif
