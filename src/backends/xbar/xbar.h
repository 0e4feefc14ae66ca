/* xbar.h - the image backend: a Model IR as a crossbar programming image.
 *
 * The image (docs/image-format.md) holds, for one model, one device profile
 * and one input set, what a controller programs into the chip: the
 * profile's quantisation, each layer's neurons (bias, initial or clamped
 * value, tau), every static weight block quantised to conductance levels
 * and split into tiles of the profile's array size, and the per-token rows
 * of dynamic blocks.  It reads only the Model IR (weights through
 * model_eval) and the profile; the container and the reader are libdam's
 * (runtime/include/dam_image.h).
 */
#ifndef DAM_XBAR_H
#define DAM_XBAR_H

#include <stdint.h>

#include "../backend.h"

extern const Backend xbar_backend;

#define XBAR_G0 1e-5     /* conductance of a unit weight (S): the netlist's 1/R0 */

/* The model hash an image carries (docs/image-format.md), so that `damc run
 * --image` can tell whether an image was written for this model. */
void xbar_model_hash(const Model *m, uint8_t out[32]);

/* Build the image bytes (malloc'd). Returns 0, or -1 after reporting to d. */
int xbar_build(const Model *m, const BackendOptions *opt, Diags *d, unsigned char **out, size_t *len);

#endif
