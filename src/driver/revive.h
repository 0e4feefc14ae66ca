/* revive.h - dead ReLU units brought back during training (train.revive,
 * docs/training.md).
 *
 * A unit of a ReLU layer is dead when its state (the pre-activation) is <= 0
 * at the end of the run on every training row: it gets no gradient and never
 * comes back.  A revival move gives a dead unit mu the pattern of a live unit
 * nu of the same layer (row nu of the learned tensor the coupling is made
 * from) and a bias that puts mu's kink between the worst-fit training row and
 * every other input, on the side where only that row is active:
 *
 *   h_mu(r) = h_nu(r) - c_nu + c_mu,   c_mu = c_nu - (h_nu(r*) + h_2) / 2
 *
 * (h_2: the largest h_nu over the rows whose inputs differ from r*'s; nu is
 * a candidate when h_nu(r*) > h_2), so that mu is a detector of r* alone.
 * The pattern may be taken scaled (rv_apply), the bias scaled with it.
 * The caller evaluates each candidate's loss and keeps the best one only if
 * it lowers the loss.  Only the tensors of the model's IR and the gradient
 * module's flat parameter vector are read.
 */
#ifndef DAM_REVIVE_H
#define DAM_REVIVE_H

#include <stddef.h>

#include "grad.h"
#include "model.h"

/* A ReLU layer that can be revived: its bias is the learned vector c[j], and
 * a block with the layer as its rows is made elementwise from a learned
 * tensor P of the block's shape. */
typedef struct RvLayer {
	int layer;
	int c_param, p_param;  /* grad_param indices of c and P */
	int64_t n, cols;       /* units; columns of P */
	TensorId w;            /* the block's weights */
} RvLayer;

typedef struct RvMove {
	int layer;             /* index into the RvLayer array */
	int64_t dead, from;    /* unit revived, live unit whose pattern it takes */
	double mid;            /* where the kink goes, on from's pre-activation: (h(r*) + h_2) / 2 */
	size_t row;            /* the worst-fit row it detects (index into the rows given) */
	double scale;          /* row `dead` of P = scale x row `from` */
} RvMove;

/* The revivable layers of m (*n of them; NULL when none; free with dam_free).
 * G is used to check that copying a row of P copies that row of the block's
 * weights (its parameter values are changed and must be set again). */
RvLayer *rv_plan(const Model *m, DamGrad *G, int *n);

/* The candidate moves for the state x (nrows x state size, row r at
 * x + r * nx) of the rows, their losses and their input classes (cls[r] ==
 * cls[s]: the same inputs, cls[r] <= r): for each of the nworst worst-fit
 * inputs and each layer with a dead unit, one move per live unit that is
 * higher on that input than on any other.  Returns the number written to
 * out (at most max). */
int rv_candidates(const Model *m, const RvLayer *L, int nl, const double *x, size_t nx, const double *loss,
                  const size_t *cls, size_t nrows, int nworst, RvMove *out, int max);

/* Apply a move to theta (grad_size doubles): row `dead` of P becomes scale
 * x row `from`, and with alpha = W[dead, k] / W[from, k] (the rows must be
 * proportional; read off G, whose P it sets) the bias c_dead = alpha (c_from
 * - mid), so that h_dead = alpha (h_from - c_from) + c_dead is 0 at mid.
 * Zeroes the optimiser moments m1, m2 (may be NULL) of the entries it
 * changes.  -1 (theta partly changed) when the rows are not proportional. */
int rv_apply(DamGrad *G, const RvLayer *L, const RvMove *mv, double *theta, double *m1, double *m2);

#endif
