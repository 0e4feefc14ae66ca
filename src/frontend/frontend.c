/* frontend.c - the front end as a flat list of passes (QBE main.c style):
 *
 *   sema_program   text -> tokens -> AST -> checked names/shapes -> Model skeleton
 *   derive_model   activations, Hessians, right-hand sides, energy
 *   model_verify   structural verifier of the Model IR (debug builds)
 *   check_model    convexity, symmetry and boundedness warnings
 *
 * A pass runs only if the previous ones reported no error, so errors never
 * cascade into the derivation.
 */
#include "frontend.h"
#include "sema.h"

Model *dam_frontend_compile(const char *path, const FrontendOptions *opt, Diags *d, Arena *a)
{
	SemaOptions so = {0};
	if (opt) {
		so.defines = opt->defines;
		so.ndefines = opt->ndefines;
		so.stdlib_dir = opt->stdlib_dir;
		so.dump_ast = opt->dump_ast;
		so.eval_limit = opt->eval_limit;
	}
	Loc *layer_locs = NULL, *block_locs = NULL;
	Model *m = sema_program(path, &so, d, a, &layer_locs, &block_locs);
	if (!m || diag_errors(d))
		return NULL;
	for (int p = 0; p < m->nlayers; p++)
		m->layers[p].loc = (MLoc){ layer_locs[p].file, layer_locs[p].line, layer_locs[p].col };
	for (int b = 0; b < m->nblocks; b++)
		m->blocks[b].loc = (MLoc){ block_locs[b].file, block_locs[b].line, block_locs[b].col };
	derive_model(m, d, layer_locs);
	if (diag_errors(d))
		return NULL;
#ifndef NDEBUG
	if (model_verify(m, stderr))
		diag_error(d, (Loc){0, 0, 0}, "internal error: the derived Model IR failed verification");
#endif
	if (diag_errors(d))
		return NULL;
	check_model(m, d, layer_locs, block_locs);
	return m;
}
