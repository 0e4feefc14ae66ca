/* model.c - Model IR helpers: state layout, the derivation report, the verifier.
 *
 * The flat state vector of a model concatenates the layers' states in
 * declaration order; every backend and the runtime use that layout.
 */
#include "model.h"

int64_t model_state_size(const Model *m)
{
	int64_t n = 0;
	for (int l = 0; l < m->nlayers; l++)
		n += m->layers[l].n;
	return n;
}

int64_t model_layer_offset(const Model *m, int layer)
{
	int64_t off = 0;
	for (int l = 0; l < layer && l < m->nlayers; l++)
		off += m->layers[l].n;
	return off;
}
