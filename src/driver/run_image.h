/* run_image.h - the weights a chip image holds, ready to program simulators
 * (`damc run --image`, run_image.c). */
#ifndef DAM_RUN_IMAGE_H
#define DAM_RUN_IMAGE_H

#include <stdbool.h>

#include "diag.h"
#include "model.h"
#include "run.h"
#include "sim.h"

typedef struct RunImageW {
	TensorId t;            /* a static block's weight tensor, or a bias vector */
	double *w;             /* its dequantised values */
	bool bias;             /* a layer's bias vector (not conductances: no cell noise) */
} RunImageW;

typedef struct RunImageDyn {
	TensorId t;            /* a dynamic block's weight tensor: rows from a token table */
	int input;             /* the token input */
	int64_t rows, cols, vocab;
	double *table;         /* vocab x cols, dequantised */
} RunImageDyn;

typedef struct RunImage {
	RunImageW *st; int nst;
	RunImageDyn *dy; int ndy;
	double *tau;           /* per state component, or NULL: the model's */
} RunImage;

/* Read and check the image (hash against m unless force). 0, or -1 after reporting to d. */
int run_image_load(const Model *m, const char *path, bool force, RunImage *ri, Diags *d);
/* Program simulator s for one run whose inputs are row (all inputs concatenated). */
int run_image_apply(const RunImage *ri, const Model *m, DamSim *s, const double *row);
void run_image_free(RunImage *ri);

/* Monte Carlo draws of the device's noise (run_mc.c): prints the outputs' mean
 * and spread per row, or with --labels every draw's accuracy and a summary. */
struct RunArgs;
int run_mc(const Model *m, const Jit *jit, const RunConfig *rc, const struct RunArgs *ra, RunBatch *b,
           const RunImage *img, const int *sel, int nsel, Diags *d, Arena *a);

#endif
