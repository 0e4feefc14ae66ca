/* model.h - the Model IR: what every backend reads.
 *
 * The front end (sema + derive) turns a checked .dam program into a Model:
 * a table of tensors, layers with their Lagrangian, derived activation,
 * structured Hessian, bias, initial state, clamps and ODE right-hand side,
 * weight blocks, inputs, outputs and the global energy (DESIGN.md, paper
 * Eq. 1-2 generalised).  All expressions live in model->sym.
 *
 * Conventions
 *  - Every layer P of n neurons has a state tensor x_P (rank 1, MT_STATE)
 *    and an activation tensor g_P (rank 1, MT_ACT).  Expressions refer to
 *    activations through g_P, which a backend materialises once per
 *    evaluation from layer->act.
 *  - layer->j and layer->k are index variables of extent n reserved for the
 *    layer; act, bias, rhs and hdiag/hu have free index j (at most), hv and
 *    hdense have k (and j).
 *  - rhs[j] is  tau * dx_j/dt = sum_blocks (W g_other)_j + bias_j - x_j
 *    (paper Eq. 1, 9-11); clamped neurons do not move.
 *  - A weight block couples rows (layer a) and columns (layer b) through
 *    the rank-2 tensor w[a_index, b_index]; a self block (a == b) stands for
 *    the symmetric energy term -1/2 g^T W g.  w is MT_CONST (static, data
 *    known at compile time) or MT_DYN (recomputed from the inputs before each
 *    run, e.g. the Analog ET's attention rows).
 */
#ifndef DAM_MODEL_H
#define DAM_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "sym.h"

typedef enum {
	MT_CONST,   /* data known at compile time */
	MT_LEARN,   /* trainable; data holds the current values */
	MT_INPUT,   /* set per run by the user (real values or token indices) */
	MT_DYN,     /* def[idx...] computed from inputs and constants before a run */
	MT_STATE,   /* state x of layer `layer` */
	MT_ACT,     /* activation g of layer `layer` */
	MT_FORMAL,  /* formal argument of a Lagrangian (derivation only) */
} MTensorKind;

typedef struct MTensor {
	MTensorKind kind;
	double *data;          /* MT_CONST / MT_LEARN: row-major values (arena) */
	SymId def;             /* MT_DYN: definition with free indices idx[] */
	IdxId idx[SYM_MAX_RANK];
	int layer;             /* MT_STATE / MT_ACT: layer number */
	int input;             /* MT_INPUT: input number */
	const char *key;       /* declared tensors: checkpoint key (load's array name, else the name) */
	struct MLoc { uint32_t file, line, col; } loc;   /* declared tensors: where (0 = unknown) */
} MTensor;

/* A range [lo, hi) of a layer's neurons set to value[j] (free index j). */
typedef struct MSeg {
	int64_t lo, hi;
	SymId value;
} MSeg;

/* Where a layer or block was declared (the front end's file, line, column:
 * the same numbers as its diagnostics' Loc; 0 = unknown), so that backends
 * can locate their errors in the user's source. */
typedef struct MLoc MLoc;   /* declared with MTensor above */

typedef struct MLayer {
	const char *name;
	MLoc loc;
	int64_t n;
	double tau;
	TensorId x, g;         /* state and activation tensors */
	IdxId j, k;            /* index variables over 0..n-1 */
	const char *lagr_name; /* e.g. "softmax(beta=8)" for reports */
	SymId L;               /* Lagrangian (scalar) in terms of x */
	SymId act;             /* g[j] = dL/dx[j], in terms of x */
	SymStruct hess;        /* d g[j] / d x[k] = delta(j,k) hdiag[j] + sum u[j] v[k] */
	bool hess_structured;
	SymId hdense;          /* when !hess_structured: d g[j]/d x[k] */
	SymId bias;            /* bias[j]; constant 0 when absent */
	SymId rhs;             /* tau * dx[j]/dt, in terms of x, g of all layers */
	MSeg *init;  int ninit;    /* initial state, later segments override; default 0 */
	MSeg *clamp; int nclamp;   /* clamped ranges: held at value for the whole run */
	int convex;            /* 1 shown convex, 0 not shown */
} MLayer;

typedef struct MBlock {
	const char *name;
	int a, b;              /* layer numbers: rows, columns */
	TensorId w;            /* rank 2: [n_a, n_b] */
	bool self;             /* a == b: symmetric self-coupling */
	bool dynamic;          /* w is MT_DYN */
	MLoc loc;
} MBlock;

typedef struct MInput {
	const char *name;
	int64_t n;
	bool is_index;         /* token indices in 0..vocab-1 */
	int64_t vocab;
	TensorId t;            /* rank-1 MT_INPUT tensor */
} MInput;

typedef struct MOutput {
	const char *name;
	int rank;              /* 0 or 1 */
	int64_t n;             /* number of values (1 for rank 0) */
	IdxId i;               /* free index of expr when rank == 1 */
	SymId expr;
} MOutput;

typedef struct MParam {
	const char *name;
	bool is_string;
	double num;
	const char *str;
} MParam;

typedef struct Model {
	Arena *arena;
	SymCtx *sym;
	const char *path;      /* source file */
	MTensor *tensors;      /* indexed by TensorId; [0] unused */
	uint32_t ntensors;     /* == sym_tensor_count(sym) */
	MLayer *layers;  int nlayers;
	MBlock *blocks;  int nblocks;
	MInput *inputs;  int ninputs;
	MOutput *outputs; int noutputs;
	MParam *params;  int nparams;
	SymId energy;          /* global energy, scalar (paper Eq. 2 generalised) */
} Model;

/* Total number of state variables (sum of layer sizes) and the offset of
 * each layer's state in the flat state vector (layers in declaration order). */
int64_t model_state_size(const Model *m);
int64_t model_layer_offset(const Model *m, int layer);

/* Index of the layer / block / input / output called `name`, or -1. */
typedef enum { MODEL_LAYER, MODEL_BLOCK, MODEL_INPUT, MODEL_OUTPUT } ModelTable;
int model_find(const Model *m, ModelTable table, const char *name);

/* The derivation report printed by `damc derive` (text or LaTeX). */
void model_print(const Model *m, SymStyle style, FILE *out);

/* Structural verifier (debug builds run it after derivation): every
 * expression refers to existing tensors and has only the free indices its
 * slot allows.  Returns the number of problems and prints them. */
int model_verify(const Model *m, FILE *out);


/* ---- reference evaluation (tests and checks; never the simulation path) ----
 * Evaluates the derived expressions with sym_eval at a given flat state x and
 * flat inputs (model->inputs order, token ids as doubles). */
typedef struct ModelEval {
	const Model *m;
	const double **data;   /* per tensor */
	double *state;         /* flat state (copy of x) */
	double *act;           /* flat activations */
	double *inputs;        /* flat inputs */
	double **dyn;          /* per tensor: evaluated MT_DYN data (NULL otherwise) */
	int64_t *idx;
} ModelEval;

void   model_eval_init(ModelEval *ev, const Model *m, const double *inputs);
void   model_eval_free(ModelEval *ev);
void   model_eval_state(ModelEval *ev, const double *x);       /* sets x, computes activations */
double model_eval_expr(ModelEval *ev, SymId e, IdxId i, int64_t iv);  /* e with free index i := iv */
void   model_eval_rhs(ModelEval *ev, double *dxdt);             /* rhs/tau, unclamped */
double model_eval_energy(ModelEval *ev);
/* Hessian-vector product H_l u for layer l using the structured (or dense) form. */
void   model_eval_hess_mv(ModelEval *ev, int layer, const double *u, double *out);

#endif
