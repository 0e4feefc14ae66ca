/* train.h - the pieces of `damc train` (train.c) that tests reach directly.
 *
 * The optimiser is AdamW (Loshchilov & Hutter: decoupled weight decay) with
 * Adam's bias correction; "adam" is the same without decay, "sgd" plain
 * gradient steps.  Gradients are clipped to a global L2 norm first.  The
 * learning rate follows a schedule: a linear warm-up over `warmup` steps,
 * then constant or a cosine from lr down to min_lr at the last step.
 */
#ifndef DAM_TRAIN_H
#define DAM_TRAIN_H

#include <stddef.h>

typedef enum { OPT_ADAMW, OPT_ADAM, OPT_SGD } TrainOptKind;

typedef struct TrainOpt {
	TrainOptKind kind;
	double lr, beta1, beta2, eps, weight_decay, clip;   /* clip <= 0: none */
	int cosine;            /* 0 constant, 1 cosine to min_lr */
	long warmup;           /* steps */
	double min_lr;
	long total_steps;      /* for the cosine */
	double *lr_scale;      /* per parameter: a factor of the learning rate, or NULL */
} TrainOpt;

/* The learning rate at step `step` (0-based). */
double train_lr(const TrainOpt *o, long step);
/* Scale g to global norm o->clip when it is larger; returns the norm before. */
double train_clip(const TrainOpt *o, double *g, size_t n);
/* One step of the optimiser at step `step` (0-based) on n parameters: theta,
 * its gradient g and the moment estimates m1, m2 (zero at the start). */
void train_opt_step(const TrainOpt *o, long step, double *theta, const double *g, double *m1, double *m2,
                    size_t n);

#endif
