/* fuzz_image.c - libFuzzer harness: the crossbar image reader (dam_image.h).
 *
 * The first input byte selects what the rest is:
 *   byte % 2 == 0  the file's bytes, as they are: dam_image_read must refuse
 *                  or accept them without reading out of bounds or leaking
 *   byte % 2 == 1  the same bytes with their checksums made right first: each
 *                  section table entry's CRC-32 recomputed over the bytes it
 *                  points at (when they lie in the file) and then the header
 *                  CRC, so that mutations get past the CRCs and exercise the
 *                  inner checks (counts, layout, levels, strings)
 * An image that is accepted is used as a controller would: the dequantised
 * weights of every static block and every token table cell are computed and
 * must be finite.  The header fields are little-endian at the offsets of
 * docs/image-format.md (section table at 56, 24 bytes an entry).  Built by
 * `scripts/build.sh --fuzz` (build-fuzz/fuzz/fuzz_image).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dam_image.h"

#define FUZZ_MAX_LEN (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int k = n - 1; k >= 0; k--)
		v = v << 8 | p[k];
	return v;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int k = 0; k < 4; k++)
		p[k] = (uint8_t)(v >> (8 * k));
}

/* Recompute the section CRCs and the header CRC where the layout allows. */
static void fix_crcs(uint8_t *b, size_t len)
{
	if (len < 56)
		return;
	uint64_t hsize = get_le(b + 12, 4), nsec = get_le(b + 48, 4);
	if (nsec > 64 || hsize < 60 || hsize > len || 56 + 24 * nsec > hsize - 4)
		return;
	for (uint64_t k = 0; k < nsec; k++) {
		uint8_t *e = b + 56 + 24 * k;
		uint64_t off = get_le(e + 4, 8), n = get_le(e + 12, 8);
		if (off <= len && n <= len - off)
			put_le32(e + 20, (uint32_t)crc32(0L, b + off, (uInt)n));
	}
	put_le32(b + hsize - 4, (uint32_t)crc32(0L, b, (uInt)(hsize - 4)));
}

/* What a controller does with an accepted image: every weight it holds. */
static void check_finite(const double *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(w[i]))
			abort();   /* the reader let a weight through that is not a number */
}

static void use_image(const DamImage *img)
{
	for (uint32_t k = 0; k < img->nblocks + img->ndyn; k++) {
		bool dyn = k >= img->nblocks;
		const DamImgBlock *b = dyn ? &img->dyn[k - img->nblocks] : &img->blocks[k];
		size_t n = dyn ? (b->kind == 1 ? (size_t)(b->vocab * b->cols) : 0) : (size_t)(b->rows * b->cols);
		double *w = malloc((n + 1) * sizeof *w);
		if (!w)
			abort();
		if (dyn)
			dam_image_table_weights(img, k - img->nblocks, w);
		else
			dam_image_block_weights(img, k, w);
		check_finite(w, n);
		free(w);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > FUZZ_MAX_LEN)
		return 0;
	size_t len = size - 1;
	uint8_t *b = malloc(len ? len : 1);
	if (!b)
		abort();
	memcpy(b, data + 1, len);
	if (data[0] & 1)
		fix_crcs(b, len);
	DamImage *img = NULL;
	char err[512];
	if (dam_image_read(b, len, &img, err, sizeof err) == 0) {
		use_image(img);
		dam_image_free(img);
	} else if (img != NULL || !err[0]) {
		abort();                   /* a refusal returns no image and says why */
	}
	free(b);
	return 0;
}
