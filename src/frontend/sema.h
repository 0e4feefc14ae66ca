/* sema.h - internal interface between the front-end passes.
 *
 *   parse (ast.h)  ->  sema_program: names, imports, blocks, shapes, constant
 *   evaluation, lowering of every expression to the symbolic IR; it fills a
 *   Model skeleton (tensors, layers with L/bias/init/clamp, blocks, inputs,
 *   outputs, params)  ->  derive_model: activations, Hessians, ODE right-hand
 *   sides and the energy  ->  check_model: convexity, symmetry and
 *   boundedness warnings.
 */
#ifndef DAM_SEMA_H
#define DAM_SEMA_H

#include "ast.h"
#include "diag.h"
#include "model.h"

typedef struct SemaOptions {
	const char *const *defines;
	int ndefines;
	const char *stdlib_dir;
	FILE *dump_ast;
	int64_t eval_limit;           /* FrontendOptions.eval_limit */
} SemaOptions;

/* Returns the Model skeleton; errors are reported to d (the Model is then
 * incomplete and must not be used). Lagrangian source locations are kept in
 * layer_locs[l] for later diagnostics. */
Model *sema_program(const char *path, const SemaOptions *o, Diags *d, Arena *a, Loc **layer_locs,
                    Loc **block_locs);

/* Derivation (derive.c): fills act, hess, rhs of every layer and the energy. */
void derive_model(Model *m, Diags *d, const Loc *layer_locs);

/* Static checks (check.c): convexity of Lagrangians, symmetric
 * self-couplings, energy bounded below.  Only warnings. */
void check_model(Model *m, Diags *d, const Loc *layer_locs, const Loc *block_locs);

/* Curvature classification used by check.c (exposed for tests). */
typedef enum { CURV_CONST, CURV_AFFINE, CURV_CONVEX, CURV_CONCAVE, CURV_UNKNOWN } Curvature;
Curvature check_curvature(const Model *m, SymId e, TensorId x);

/* Is block b one that the boundedness check covers (static, coupling a ReLU
 * layer to an identity layer: bounded below when sigma_max(W) <= 1)? */
bool check_bound_block(const Model *m, int b);

/* Largest singular value of a rows x cols row-major matrix (power iteration). */
double check_spectral_norm(const double *w, int64_t rows, int64_t cols);

#endif
