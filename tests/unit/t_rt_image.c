/* t_rt_image.c - tests of the crossbar image reader (dam_image.h).
 *
 * Builds a small image in memory with the container writer and the section
 * layout of docs/image-format.md (two layers, a 2x3 static block split into
 * two 2x2 tiles, a token-table dynamic block), or reads the image named by
 * DAM_IMAGE (written by damc) when set.  Checks that a valid image round
 * trips (values, dequantised weights, the stored .npz reads back), and that
 * every single-byte corruption (XOR 0xFF and XOR 0x01 at each position),
 * every truncation, an empty buffer, a wrong version and an out-of-range
 * level are all refused with a message naming the section and offset; with
 * the CRCs recomputed after each corruption, the inner checks (counts,
 * shapes, tile grid) still refuse what is inconsistent and nothing crashes.
 */
#include "dam_image.h"
#include "dam_npy.h"
#include "tap.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static void sec_device(DamBuf *b, uint32_t bits)
{
	dam_buf_str(b, "test");
	dam_buf_u32(b, bits);
	dam_buf_u32(b, DAM_ENC_DIFFERENTIAL);
	dam_buf_u32(b, DAM_SCALE_GLOBAL);
	dam_buf_u32(b, 8);
	dam_buf_u32(b, 10);
	dam_buf_f64(b, 1e-6);
	dam_buf_f64(b, 15e-6);     /* bits 4: step 1e-6 S, G(l) = l uS */
	dam_buf_f64(b, 1e-6);      /* g0: a unit weight is 1 uS */
	dam_buf_u32(b, 2);
	dam_buf_u32(b, 2);
}

static void sec_layers(DamBuf *b)
{
	const char *names[2] = { "v", "h" };
	for (uint32_t l = 0, n = 2; l < 2; l++, n++) {
		if (!l)
			dam_buf_u32(b, 2);
		dam_buf_str(b, names[l]);
		dam_buf_u64(b, n);
		dam_buf_str(b, l ? "softmax(beta=8)" : "identity");
		dam_buf_f64(b, l ? 0.1 : 1.0);
		for (uint32_t i = 0; i < n; i++)
			dam_buf_f64(b, -0.5 * i);
		for (uint32_t i = 0; i < n; i++)
			dam_buf_f64(b, 0.25 * i);
		for (uint32_t i = 0; i < n; i++)
			dam_buf_u8(b, l == 0 && i == 0);
	}
}

/* Block v -- h (2x3), tiles [0,0] 2x2 and [0,2] 2x1; P and N planes. */
static const int16_t wq[2][3] = { { 1, -2, 3 }, { 0, 15, -15 } };

static void put_tile(DamBuf *b, uint32_t c0, uint32_t cols)
{
	dam_buf_u32(b, 0);
	dam_buf_u32(b, 0);
	dam_buf_u32(b, c0);
	dam_buf_u32(b, 2);
	dam_buf_u32(b, cols);
	dam_buf_f64(b, 0);
	dam_buf_f64(b, 1e-6);      /* gain: the global g0 */
	for (int p = 0; p < 2; p++)
		for (int r = 0; r < 2; r++)
			for (uint32_t c = c0; c < c0 + cols; c++) {
				int v = wq[r][c];
				dam_buf_u16(b, (uint16_t)(p == 0 ? (v > 0 ? v : 0) : (v < 0 ? -v : 0)));
			}
}

static void sec_tiles(DamBuf *b)
{
	dam_buf_u32(b, 1);
	dam_buf_u32(b, 0);
	dam_buf_u32(b, 0);
	dam_buf_u32(b, 1);
	dam_buf_u64(b, 2);
	dam_buf_u64(b, 3);
	dam_buf_u32(b, 2);
	put_tile(b, 0, 2);
	put_tile(b, 2, 1);
}

static void sec_dynamic(DamBuf *b, uint16_t level)
{
	dam_buf_u32(b, 1);
	dam_buf_u32(b, 1);
	dam_buf_u32(b, 1);
	dam_buf_u32(b, 1);
	dam_buf_u64(b, 3);
	dam_buf_u64(b, 3);
	dam_buf_u32(b, 1);       /* token table */
	dam_buf_u32(b, 0);
	dam_buf_u64(b, 2);
	dam_buf_f64(b, 0);
	dam_buf_f64(b, 1e-6);
	for (int i = 0; i < 2 * 2 * 3; i++)
		dam_buf_u16(b, (uint16_t)(i == 5 ? level : i % 3));
}

static void sec_names(DamBuf *b)
{
	dam_buf_u32(b, 2);
	dam_buf_str(b, "xi");
	dam_buf_str(b, "xi");
	dam_buf_str(b, "keys");
	dam_buf_str(b, "keys");
}

static uint8_t *build(size_t *len, uint32_t bits, uint16_t dynlevel)
{
	DamBuf s[DAM_IMG_NSECTIONS] = { 0 };
	sec_device(&s[0], bits);
	sec_layers(&s[1]);
	sec_tiles(&s[2]);
	sec_dynamic(&s[3], dynlevel);
	sec_names(&s[4]);
	const uint8_t *p[DAM_IMG_NSECTIONS];
	size_t n[DAM_IMG_NSECTIONS];
	for (int k = 0; k < DAM_IMG_NSECTIONS; k++) {
		p[k] = s[k].p;
		n[k] = s[k].len;
	}
	uint8_t hash[32];
	dam_image_hash("layer v 2\n", 10, hash);
	uint8_t *out = NULL;
	if (dam_image_assemble(hash, p, n, &out, len) < 0)
		*len = 0;
	for (int k = 0; k < DAM_IMG_NSECTIONS; k++)
		free(s[k].p);
	return out;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *p = malloc(n > 0 ? (size_t)n : 1);
	*len = n > 0 && p ? fread(p, 1, (size_t)n, f) : 0;
	fclose(f);
	return p;
}

static void check_valid(const uint8_t *img, size_t len, bool mine)
{
	char err[256] = "";
	DamImage *im = NULL;
	int rc = dam_image_read(img, len, &im, err, sizeof err);
	ok(rc == 0 && im, "a valid image is accepted (%zu bytes) %s", len, err);
	if (!im || !mine) {
		dam_image_free(im);
		return;
	}
	is_str(im->dev.name, "test", "device name");
	ok(im->nlayers == 2 && im->layers[1].n == 3 && im->layers[0].clamped[0] == 1 &&
	   im->layers[1].bias[2] == -1.0 && im->layers[1].tau == 0.1, "layers round-trip");
	is_str(im->layers[1].lagrangian, "softmax(beta=8)", "lagrangian");
	ok(im->nblocks == 1 && im->ntiles == 2 && im->tiles[1].col0 == 2 && im->tiles[1].cols == 1,
	   "block split into two tiles");
	double w[6];
	dam_image_block_weights(im, 0, w);
	int good = 1;
	for (int r = 0; r < 2; r++)
		for (int c = 0; c < 3; c++)
			good &= fabs(w[r * 3 + c] - wq[r][c]) < 1e-9;
	ok(good, "dequantised weights: G(l) = gmin + (l-1) step, w = (G(P) - G(N))/g0");
	ok(im->ndyn == 1 && im->dyn[0].kind == 1 && im->dyn[0].vocab == 2, "dynamic token table");
	is_str(im->dyn[0].tensor, "keys", "names");
	char path[64];
	snprintf(path, sizeof path, "/tmp/t_rt_image.%ld.npz", (long)getpid());
	const char *names[1] = { "xi" };
	int rank[1] = { 2 };
	int64_t shp[2] = { 2, 3 };
	const int64_t *shape[1] = { shp };
	const double *data[1] = { w };
	DamArray a = { 0 };
	ok(dam_npz_write(path, 1, names, rank, shape, data, err, sizeof err) == 0 &&
	   dam_npz_read(path, "xi", &a, err, sizeof err) == 0 && a.count == 6 && a.shape[1] == 3 &&
	   a.data[5] == w[5], "stored .npz written and read back %s", err);
	dam_array_free(&a);
	remove(path);
	dam_image_free(im);
}

static int rejects(const uint8_t *p, size_t len, char *err, size_t errlen)
{
	DamImage *im = NULL;
	err[0] = 0;
	int rc = dam_image_read(p, len, &im, err, errlen);
	dam_image_free(im);
	return rc < 0 && im == NULL && strstr(err, "offset ") != NULL;
}

static void check_corruptions(const uint8_t *img, size_t len)
{
	uint8_t *p = malloc(len);
	char err[256], first[256] = "";
	size_t bad = 0, where = 0;
	for (int x = 0; x < 2; x++)
		for (size_t i = 0; i < len; i++) {
			memcpy(p, img, len);
			p[i] ^= x ? 0x01 : 0xFF;
			if (!rejects(p, len, err, sizeof err) && !bad++)
				where = i;
			if (i == 400 && x == 0)
				snprintf(first, sizeof first, "%s", err);
		}
	ok(bad == 0, "every single-byte corruption (x2 values, %zu positions) is refused", len);
	if (bad)
		diag("%zu accepted, first at byte %zu", bad, where);
	diag("e.g. byte 400: %s", first);
	bad = 0;
	for (size_t n = 0; n < len; n++)
		bad += !rejects(img, n, err, sizeof err);
	ok(bad == 0, "every truncation (%zu lengths) is refused", len);
	ok(rejects(NULL, 0, err, sizeof err), "an empty file is refused: %s", err);
	memcpy(p, img, len);
	p[8] = 1;
	uLong c = crc32(0, p, 56 + 24 * 5);
	for (int k = 0; k < 4; k++)
		p[56 + 24 * 5 + k] = (uint8_t)(c >> (8 * k));
	ok(rejects(p, len, err, sizeof err), "version 1 is refused (header CRC fixed)");
	is_str(err, "header at offset 8: version 1, expected 2", "version message");
	free(p);
}

static void put32(uint8_t *p, uLong v)
{
	for (int k = 0; k < 4; k++)
		p[k] = (uint8_t)(v >> (8 * k));
}

/* Recompute every section CRC and the header CRC (the table as stored). */
static void fix_crcs(uint8_t *p, size_t len)
{
	size_t h = 56 + 24 * 5;
	for (int k = 0; k < 5; k++) {
		uint8_t *e = p + 56 + 24 * k;
		uint64_t off = 0, n = 0;
		for (int b = 7; b >= 0; b--) {
			off = off << 8 | e[4 + b];
			n = n << 8 | e[12 + b];
		}
		if (off <= len && n <= len - off)
			put32(e + 20, crc32(0, p + off, (uInt)n));
	}
	put32(p + h, crc32(0, p, (uInt)h));
}

/* Corruptions that the CRCs do not catch (they are recomputed): the inner
 * checks must refuse what is inconsistent, and nothing may crash (ASan). */
static void check_inner(const uint8_t *img, size_t len)
{
	uint8_t *p = malloc(len);
	char err[256];
	size_t refused = 0, total = 0;
	for (size_t i = 56 + 24 * 5 + 4; i < len; i++)
		for (int x = 0; x < 3; x++) {
			static const uint8_t val[3] = { 0xFF, 0x01, 0x80 };
			memcpy(p, img, len);
			p[i] ^= val[x];
			fix_crcs(p, len);
			refused += rejects(p, len, err, sizeof err);
			total++;
		}
	ok(refused > 0, "corruptions with CRCs recomputed: none crashes, %zu of %zu refused by the "
	   "inner checks", refused, total);
	memcpy(p, img, len);
	size_t layers = (size_t)(img[56 + 24 + 4] | img[56 + 24 + 5] << 8);
	p[layers] = 3;          /* LAYERS count 2 -> 3 */
	fix_crcs(p, len);
	ok(rejects(p, len, err, sizeof err), "a layer count beyond the section is refused: %s", err);
	memcpy(p, img, len);
	size_t tiles = (size_t)(img[56 + 48 + 4] | img[56 + 48 + 5] << 8);
	p[tiles + 4 + 28] = 1;  /* ntiles 2 -> 1 */
	fix_crcs(p, len);
	ok(rejects(p, len, err, sizeof err) && strstr(err, "1 tiles, the blocks need 2"),
	   "a tile count that does not match the blocks is refused: %s", err);
	free(p);
}

int main(void)
{
	size_t len = 0;
	uint8_t *img = build(&len, 4, 3);
	ok(img && len > 0, "image built in memory");
	check_valid(img, len, true);
	check_corruptions(img, len);
	check_inner(img, len);
	free(img);

	img = build(&len, 4, 16);
	char err[256];
	ok(rejects(img, len, err, sizeof err), "level 16 with 4 bits is refused");
	ok(strstr(err, "section DYNAMIC at offset ") && strstr(err, "level 16 >= 2^4"), "%s", err);
	free(img);

	const char *env = getenv("DAM_IMAGE");
	uint8_t *file = env && *env ? slurp(env, &len) : NULL;
	if (file) {
		check_valid(file, len, false);
		check_corruptions(file, len > 4096 ? 4096 : len);
	} else {
		skip(6, "DAM_IMAGE not set: no image written by damc");
	}
	free(file);
	return done_testing();
}
