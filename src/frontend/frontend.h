/* frontend.h - the front end as one call: .dam text -> checked Model IR.
 *
 * dam_frontend_compile runs the passes in order (parse, imports, sema,
 * derive, checks) and returns the Model, or NULL when any error was
 * reported to d.  Warnings (convexity, unbounded energy, asymmetric
 * self-coupling) are reported to d as well; the caller renders d.
 */
#ifndef DAM_FRONTEND_H
#define DAM_FRONTEND_H

#include "diag.h"
#include "model.h"

typedef struct FrontendOptions {
	const char *const *defines;   /* "name=value" overrides of params (-D) */
	int ndefines;
	const char *stdlib_dir;       /* NULL: $DAMC_STDLIB, else the built-in path */
	FILE *dump_ast;               /* non-NULL: print the AST of the main file */
	int64_t eval_limit;           /* work (elements x expression nodes) of evaluating one
	                               * tensor at compile time, and its elements (4x that for
	                               * all such tensors together); 0: the default, 2^31 */
} FrontendOptions;

Model *dam_frontend_compile(const char *path, const FrontendOptions *opt, Diags *d, Arena *a);

#endif
