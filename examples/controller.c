/* controller.c - a crossbar controller's first step: read and validate a
 * chip image written by `damc image`, then walk what it would program.
 *
 *   controller IMAGE.img             summary: device, neurons, tiles, levels
 *   controller IMAGE.img --weights   also every dequantised weight, one per line:
 *                                    "w BLOCK ROW COL VALUE" (static blocks) and
 *                                    "t BLOCK TOKEN COL VALUE" (token tables)
 *
 * It uses only the runtime's image reader (dam_image.h, libdam-runtime: no
 * compiler, no LLVM), as firmware on a controller board would: the reader
 * checks every byte (CRCs, layout, counts, level ranges) before anything is
 * used, and an image it refuses gives its message and exit status 1.  A real
 * controller would send each tile's levels to the array drivers where this
 * program counts them.  Built by CMake (controller_example) and, against an
 * installed libdam, by tests/install.t with
 *   cc controller.c $(pkg-config --cflags --libs dam-runtime)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dam_image.h"

/* Cells a tile programs on each plane (level > 0), as a controller would
 * count the write pulses it is about to issue. */
static void count_cells(const DamImage *img, const DamImgTile *t, unsigned long long *on)
{
	size_t cells = (size_t)t->rows * t->cols;
	for (unsigned p = 0; p < dam_image_planes(img); p++)
		for (size_t c = 0; c < cells; c++)
			on[p] += t->levels[p * cells + c] != 0;
}

static void print_summary(const DamImage *img)
{
	const DamImgDevice *d = &img->dev;
	printf("device %s: %u bits per cell, %s encoding, %s scale, tiles %ux%u\n", d->name, d->bits,
	       d->encoding == DAM_ENC_DIFFERENTIAL ? "differential" : "offset",
	       d->scale == DAM_SCALE_TILE ? "tile" : "global", d->tile_rows, d->tile_cols);
	for (uint32_t l = 0; l < img->nlayers; l++)
		printf("layer %s: %llu neurons, %s, tau %.17g\n", img->layers[l].name,
		       (unsigned long long)img->layers[l].n, img->layers[l].lagrangian, img->layers[l].tau);
	for (uint32_t k = 0; k < img->nblocks; k++) {
		const DamImgBlock *b = &img->blocks[k];
		unsigned long long on[2] = { 0, 0 };
		for (uint32_t t = b->first_tile; t < b->first_tile + b->ntiles; t++)
			count_cells(img, &img->tiles[t], on);
		printf("block %s: %llux%llu in %u tiles, %llu cells to program (%llu positive, %llu "
		       "negative plane)\n", b->name, (unsigned long long)b->rows, (unsigned long long)b->cols,
		       b->ntiles, on[0] + on[1], on[0], on[1]);
	}
	for (uint32_t k = 0; k < img->ndyn; k++) {
		const DamImgBlock *b = &img->dyn[k];
		if (b->kind == 1)
			printf("dynamic %s: token table, %llu tokens x %llu columns, rows follow input %u\n",
			       b->name, (unsigned long long)b->vocab, (unsigned long long)b->cols, b->input);
		else
			printf("dynamic %s: rows computed by the host per inference\n", b->name);
	}
}

static int print_weights(const DamImage *img)
{
	for (uint32_t k = 0; k < img->nblocks; k++) {
		const DamImgBlock *b = &img->blocks[k];
		double *w = malloc((size_t)(b->rows * b->cols + 1) * sizeof *w);
		if (!w)
			return -1;
		dam_image_block_weights(img, k, w);
		for (uint64_t r = 0; r < b->rows; r++)
			for (uint64_t c = 0; c < b->cols; c++)
				printf("w %s %llu %llu %.17g\n", b->name, (unsigned long long)r,
				       (unsigned long long)c, w[r * b->cols + c]);
		free(w);
	}
	for (uint32_t k = 0; k < img->ndyn; k++) {
		const DamImgBlock *b = &img->dyn[k];
		if (b->kind != 1)
			continue;
		size_t cells = (size_t)(b->vocab * b->cols);
		double *t = malloc((cells + 1) * sizeof *t);
		if (!t)
			return -1;
		dam_image_table_weights(img, k, t);
		for (size_t c = 0; c < cells; c++)
			printf("t %s %zu %zu %.17g\n", b->name, c / b->cols, c % b->cols, t[c]);
		free(t);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--weights"))) {
		fprintf(stderr, "usage: controller IMAGE.img [--weights]\n");
		return 2;
	}
	DamImage *img = NULL;
	char err[512];
	if (dam_image_open(argv[1], &img, err, sizeof err) < 0) {
		fprintf(stderr, "controller: %s: %s\n", argv[1], err);
		return 1;
	}
	print_summary(img);
	int rc = argc == 3 ? print_weights(img) : 0;
	dam_image_free(img);
	return rc < 0 ? 1 : 0;
}
