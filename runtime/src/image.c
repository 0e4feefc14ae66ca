/* image.c - crossbar programming images (docs/image-format.md).
 *
 * The reader validates a whole image before handing it out: the header
 * (magic, version, flags, size, CRC-32), the canonical section layout
 * (type order, 8-byte alignment, zero padding, the file ending at the last
 * section), each section's CRC-32, and then decodes every section through a
 * bounds-checked cursor, so every count is checked against the bytes that
 * remain before anything is allocated.  Errors name the section and the
 * file offset.  The writer half is the container (header, table, padding,
 * CRCs) and a little-endian byte buffer; what goes into the sections is the
 * image backend's business (src/backends/xbar).  A stored .npz writer serves
 * `damc image --extract`.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "dam_image.h"

static const uint8_t img_magic[8] = { 'D', 'A', 'M', 'I', 'M', 'G', 0, 1 };
#define IMG_FIXED 56u
#define IMG_ENTRY 24u
#define IMG_MAXSTR 4096u

const char *dam_image_section_name(uint32_t type)
{
	static const char *const names[] = { "?", "DEVICE", "LAYERS", "TILES", "DYNAMIC", "NAMES" };
	return type >= 1 && type <= DAM_IMG_NSECTIONS ? names[type] : "?";
}

static uint32_t img_crc(const uint8_t *p, size_t n)
{
	uLong c = crc32(0L, Z_NULL, 0);
	while (n) {
		uInt k = n > 1u << 30 ? 1u << 30 : (uInt)n;
		c = crc32(c, p, k);
		p += k;
		n -= k;
	}
	return (uint32_t)c;
}

static uint64_t rd(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ---- the cursor ------------------------------------------------------------ */

typedef struct Cur {
	const uint8_t *base;   /* file start */
	size_t pos, end;       /* file offsets */
	const char *sec;
	char *err; size_t errlen;
	int bad;
} Cur;

static int cur_fail(Cur *c, size_t at, const char *fmt, ...)
{
	if (c->bad)
		return -1;
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s%s at offset %zu: %s", c->sec[0] == 'h' ? "" : "section ", c->sec,
	         at, msg);
	c->bad = 1;
	return -1;
}

static int cur_need(Cur *c, uint64_t n)
{
	if (c->bad)
		return -1;
	if (n > c->end - c->pos)
		return cur_fail(c, c->pos, "truncated: %llu bytes needed, %zu left", (unsigned long long)n,
		                c->end - c->pos);
	return 0;
}

static uint64_t cur_int(Cur *c, int n)
{
	if (cur_need(c, (uint64_t)n) < 0)
		return 0;
	uint64_t v = rd(c->base + c->pos, n);
	c->pos += (size_t)n;
	return v;
}

static uint32_t cur_u32(Cur *c) { return (uint32_t)cur_int(c, 4); }
static uint64_t cur_u64(Cur *c) { return cur_int(c, 8); }

static double cur_f64(Cur *c, bool finite)
{
	size_t at = c->pos;
	uint64_t u = cur_int(c, 8);
	double v;
	memcpy(&v, &u, sizeof v);
	if (!c->bad && finite && !isfinite(v))
		cur_fail(c, at, "value is not finite");
	return c->bad ? 0 : v;
}

static char *cur_str(Cur *c)
{
	size_t at = c->pos;
	uint32_t n = cur_u32(c);
	if (c->bad)
		return NULL;
	if (n < 1 || n > IMG_MAXSTR) {
		cur_fail(c, at, "string length %u is not in 1..%u", n, IMG_MAXSTR);
		return NULL;
	}
	if (cur_need(c, n) < 0)
		return NULL;
	if (memchr(c->base + c->pos, 0, n)) {
		cur_fail(c, c->pos, "string contains a NUL byte");
		return NULL;
	}
	char *s = malloc((size_t)n + 1);
	if (!s)
		abort();
	memcpy(s, c->base + c->pos, n);
	s[n] = 0;
	c->pos += n;
	return s;
}

/* A count of items of at least `each` bytes, checked against what is left. */
static uint64_t cur_count(Cur *c, int width, uint64_t each, const char *what)
{
	size_t at = c->pos;
	uint64_t n = cur_int(c, width);
	if (!c->bad && each && n > (c->end - c->pos) / each)
		cur_fail(c, at, "%llu %s do not fit in the %zu bytes left", (unsigned long long)n, what,
		         c->end - c->pos);
	return c->bad ? 0 : n;
}

static void *img_calloc(uint64_t n, size_t size)
{
	void *p = calloc(n ? (size_t)n : 1, size);
	if (!p)
		abort();
	return p;
}

static double *cur_f64s(Cur *c, uint64_t n)
{
	if (n > (c->end - c->pos) / 8) {
		cur_need(c, n * 8);
		return NULL;
	}
	double *v = img_calloc(n, sizeof *v);
	for (uint64_t i = 0; i < n && !c->bad; i++)
		v[i] = cur_f64(c, true);
	return v;
}

static uint16_t *cur_levels(Cur *c, uint64_t n, uint32_t bits)
{
	if (n > (c->end - c->pos) / 2) {
		cur_need(c, n * 2);
		return NULL;
	}
	uint16_t *v = img_calloc(n, sizeof *v);
	for (uint64_t i = 0; i < n && !c->bad; i++) {
		size_t at = c->pos;
		v[i] = (uint16_t)cur_int(c, 2);
		if (bits < 16 && v[i] >> bits)
			cur_fail(c, at, "level %u >= 2^%u", v[i], bits);
	}
	return v;
}

static int cur_done(Cur *c)
{
	if (!c->bad && c->pos != c->end)
		cur_fail(c, c->pos, "%zu unexpected bytes at the end of the section", c->end - c->pos);
	return c->bad ? -1 : 0;
}

/* ---- sections ---------------------------------------------------------------- */

static int img_device(Cur *c, DamImgDevice *d)
{
	d->name = cur_str(c);
	size_t at = c->pos;
	d->bits = cur_u32(c);
	if (!c->bad && (d->bits < 2 || d->bits > 16))
		return cur_fail(c, at, "bits %u is not in 2..16", d->bits);
	at = c->pos;
	d->encoding = cur_u32(c);
	if (!c->bad && d->encoding != DAM_ENC_DIFFERENTIAL && d->encoding != DAM_ENC_OFFSET)
		return cur_fail(c, at, "encoding %u is neither 1 (differential) nor 2 (offset)", d->encoding);
	at = c->pos;
	d->scale = cur_u32(c);
	if (!c->bad && d->scale != DAM_SCALE_GLOBAL && d->scale != DAM_SCALE_TILE)
		return cur_fail(c, at, "scale %u is neither 1 (global) nor 2 (tile)", d->scale);
	d->dac_bits = cur_u32(c);
	d->adc_bits = cur_u32(c);
	at = c->pos;
	d->gmin = cur_f64(c, true);
	d->gmax = cur_f64(c, true);
	d->g0 = cur_f64(c, true);
	if (!c->bad && !(d->gmin >= 0 && d->gmax > d->gmin && d->g0 > 0))
		return cur_fail(c, at, "conductances need 0 <= gmin < gmax and g0 > 0");
	at = c->pos;
	d->tile_rows = cur_u32(c);
	d->tile_cols = cur_u32(c);
	if (!c->bad && (d->tile_rows < 1 || d->tile_cols < 1 || d->tile_rows > 65536 ||
	                d->tile_cols > 65536))
		return cur_fail(c, at, "tile size %ux%u is not in 1..65536", d->tile_rows, d->tile_cols);
	return cur_done(c);
}

static int img_layers(Cur *c, DamImage *img)
{
	img->nlayers = (uint32_t)cur_count(c, 4, 4 + 1 + 8 + 4 + 1 + 8 + 17, "layers");
	img->layers = img_calloc(img->nlayers, sizeof *img->layers);
	for (uint32_t l = 0; l < img->nlayers && !c->bad; l++) {
		DamImgLayer *L = &img->layers[l];
		L->name = cur_str(c);
		size_t at = c->pos;
		L->n = cur_count(c, 8, 17, "neurons");
		if (!c->bad && L->n == 0)
			return cur_fail(c, at, "layer '%s' has no neurons", L->name);
		L->lagrangian = cur_str(c);
		at = c->pos;
		L->tau = cur_f64(c, true);
		if (!c->bad && !(L->tau > 0))
			return cur_fail(c, at, "tau of layer '%s' is not positive", L->name);
		L->bias = cur_f64s(c, L->n);
		L->value = cur_f64s(c, L->n);
		if (cur_need(c, L->n) < 0)
			break;
		L->clamped = img_calloc(L->n, 1);
		for (uint64_t i = 0; i < L->n && !c->bad; i++) {
			at = c->pos;
			L->clamped[i] = (uint8_t)cur_int(c, 1);
			if (L->clamped[i] > 1)
				return cur_fail(c, at, "clamp flag %u is neither 0 nor 1", L->clamped[i]);
		}
	}
	return cur_done(c);
}

/* The header of a block entry (TILES and DYNAMIC): numbers and sizes checked against LAYERS. */
static int img_block_head(Cur *c, const DamImage *img, DamImgBlock *b)
{
	size_t at = c->pos;
	b->block = cur_u32(c);
	b->row_layer = cur_u32(c);
	b->col_layer = cur_u32(c);
	b->rows = cur_u64(c);
	b->cols = cur_u64(c);
	if (c->bad)
		return -1;
	if (b->row_layer >= img->nlayers || b->col_layer >= img->nlayers)
		return cur_fail(c, at, "block %u refers to layer %u or %u, there are %u", b->block,
		                b->row_layer, b->col_layer, img->nlayers);
	if (b->rows != img->layers[b->row_layer].n || b->cols != img->layers[b->col_layer].n)
		return cur_fail(c, at, "block %u is %llux%llu, its layers have %llu and %llu neurons",
		                b->block, (unsigned long long)b->rows, (unsigned long long)b->cols,
		                (unsigned long long)img->layers[b->row_layer].n,
		                (unsigned long long)img->layers[b->col_layer].n);
	return 0;
}

static uint64_t img_ceil(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

/* A tile's (table's) gain: the device's g0 under the global scale, any
 * positive finite conductance per unit weight under the tile scale. */
static double img_gain(Cur *c, const DamImage *img, const char *what, double offset)
{
	double g = cur_f64(c, true);
	if (!c->bad && !(g > 0 && (img->dev.scale == DAM_SCALE_TILE || g == img->dev.g0)))
		cur_fail(c, c->pos - 8, "%s gain %g S is not allowed here (%s)", what, g,
		         img->dev.scale == DAM_SCALE_TILE ? "it must be positive" : "the global scale needs g0");
	else if (!c->bad && !isfinite(img->dev.gmax / g + offset))
		cur_fail(c, c->pos - 8, "%s gain %g S makes the weight of gmax %g S infinite", what, g,
		         img->dev.gmax);
	return g;
}

static int img_tile(Cur *c, DamImage *img, DamImgTile *t, uint32_t entry, uint64_t r0, uint64_t c0)
{
	const DamImgBlock *b = &img->blocks[entry];
	size_t at = c->pos;
	t->entry = cur_u32(c);
	t->row0 = cur_u32(c);
	t->col0 = cur_u32(c);
	t->rows = cur_u32(c);
	t->cols = cur_u32(c);
	uint64_t er = b->rows - r0 < img->dev.tile_rows ? b->rows - r0 : img->dev.tile_rows;
	uint64_t ec = b->cols - c0 < img->dev.tile_cols ? b->cols - c0 : img->dev.tile_cols;
	if (!c->bad && (t->entry != entry || t->row0 != r0 || t->col0 != c0 || t->rows != er ||
	                t->cols != ec))
		return cur_fail(c, at, "tile of block %u at [%u, %u] size %ux%u, expected block %u at "
		                "[%llu, %llu] size %llux%llu", t->entry, t->row0, t->col0, t->rows, t->cols,
		                entry, (unsigned long long)r0, (unsigned long long)c0,
		                (unsigned long long)er, (unsigned long long)ec);
	t->offset = cur_f64(c, true);
	if (!c->bad && !(t->offset >= 0 && (t->offset == 0 || img->dev.encoding == DAM_ENC_OFFSET)))
		return cur_fail(c, c->pos - 8, "tile offset %g is not allowed here", t->offset);
	t->gain = img_gain(c, img, "tile", t->offset);
	t->levels = cur_levels(c, (uint64_t)dam_image_planes(img) * t->rows * t->cols, img->dev.bits);
	return c->bad ? -1 : 0;
}

static int img_tiles(Cur *c, DamImage *img)
{
	img->nblocks = (uint32_t)cur_count(c, 4, 28, "blocks");
	img->blocks = img_calloc(img->nblocks, sizeof *img->blocks);
	for (uint32_t k = 0; k < img->nblocks && !c->bad; k++)
		if (img_block_head(c, img, &img->blocks[k]) < 0)
			return -1;
	img->ntiles = (uint32_t)cur_count(c, 4, 28 + 2, "tiles");
	uint64_t want = 0;
	for (uint32_t k = 0; k < img->nblocks; k++)
		want += img_ceil(img->blocks[k].rows, img->dev.tile_rows) *
		        img_ceil(img->blocks[k].cols, img->dev.tile_cols);
	if (!c->bad && want != img->ntiles)
		return cur_fail(c, c->pos - 4, "%u tiles, the blocks need %llu", img->ntiles,
		                (unsigned long long)want);
	img->tiles = img_calloc(img->ntiles, sizeof *img->tiles);
	uint32_t t = 0;
	for (uint32_t k = 0; k < img->nblocks && !c->bad; k++) {
		DamImgBlock *b = &img->blocks[k];
		b->first_tile = t;
		for (uint64_t r0 = 0; r0 < b->rows && !c->bad; r0 += img->dev.tile_rows)
			for (uint64_t c0 = 0; c0 < b->cols && !c->bad; c0 += img->dev.tile_cols)
				img_tile(c, img, &img->tiles[t++], k, r0, c0);
		b->ntiles = t - b->first_tile;
	}
	return cur_done(c);
}

static int img_dynamic(Cur *c, DamImage *img)
{
	img->ndyn = (uint32_t)cur_count(c, 4, 32, "dynamic blocks");
	img->dyn = img_calloc(img->ndyn, sizeof *img->dyn);
	for (uint32_t k = 0; k < img->ndyn && !c->bad; k++) {
		DamImgBlock *b = &img->dyn[k];
		if (img_block_head(c, img, b) < 0)
			return -1;
		size_t at = c->pos;
		b->kind = cur_u32(c);
		if (c->bad || b->kind == 0)
			continue;
		if (b->kind != 1)
			return cur_fail(c, at, "dynamic kind %u is neither 0 nor 1", b->kind);
		b->input = cur_u32(c);
		at = c->pos;
		b->vocab = cur_u64(c);
		if (!c->bad && (b->vocab == 0 || b->vocab > (c->end - c->pos) / 2))
			return cur_fail(c, at, "vocabulary %llu does not fit the section",
			                (unsigned long long)b->vocab);
		b->offset = cur_f64(c, true);
		if (!c->bad && !(b->offset >= 0 && (b->offset == 0 || img->dev.encoding == DAM_ENC_OFFSET)))
			return cur_fail(c, c->pos - 8, "table offset %g is not allowed here", b->offset);
		b->gain = img_gain(c, img, "table", b->offset);
		uint64_t cells = b->vocab * b->cols;   /* both bounded by the file size */
		if (!c->bad && b->cols && cells / b->cols != b->vocab)
			return cur_fail(c, at, "table too large");
		b->levels = cur_levels(c, (uint64_t)dam_image_planes(img) * cells, img->dev.bits);
	}
	return cur_done(c);
}

static int img_names(Cur *c, DamImage *img)
{
	size_t at = c->pos;
	uint32_t n = (uint32_t)cur_count(c, 4, 10, "names");
	if (!c->bad && n != img->nblocks + img->ndyn)
		return cur_fail(c, at, "%u names for %u blocks", n, img->nblocks + img->ndyn);
	for (uint32_t k = 0; k < n && !c->bad; k++) {
		DamImgBlock *b = k < img->nblocks ? &img->blocks[k] : &img->dyn[k - img->nblocks];
		b->name = cur_str(c);
		b->tensor = cur_str(c);
	}
	return cur_done(c);
}

/* ---- header and layout ----------------------------------------------------------- */

static int img_header(Cur *c, DamImage *img, size_t len)
{
	if (len < IMG_FIXED + 4)
		return cur_fail(c, 0, "%zu bytes is too short for an image header", len);
	if (memcmp(c->base, img_magic, 8))
		return cur_fail(c, 0, "bad magic (not a damc crossbar image)");
	img->version = (uint16_t)rd(c->base + 8, 2);
	if (img->version != DAM_IMG_VERSION)
		return cur_fail(c, 8, "version %u, expected %u", img->version, DAM_IMG_VERSION);
	if (rd(c->base + 10, 2))
		return cur_fail(c, 10, "flags %llu, expected 0", (unsigned long long)rd(c->base + 10, 2));
	uint64_t hsize = rd(c->base + 12, 4), count = rd(c->base + 48, 4);
	if (count != DAM_IMG_NSECTIONS)
		return cur_fail(c, 48, "%llu sections, expected %d", (unsigned long long)count,
		                DAM_IMG_NSECTIONS);
	if (hsize != IMG_FIXED + IMG_ENTRY * count + 4)
		return cur_fail(c, 12, "header size %llu, expected %llu", (unsigned long long)hsize,
		                (unsigned long long)(IMG_FIXED + IMG_ENTRY * count + 4));
	if (hsize > len)
		return cur_fail(c, 12, "header size %llu exceeds the file (%zu bytes)",
		                (unsigned long long)hsize, len);
	if (rd(c->base + 52, 4))
		return cur_fail(c, 52, "reserved field is not zero");
	if (img_crc(c->base, hsize - 4) != rd(c->base + hsize - 4, 4))
		return cur_fail(c, hsize - 4, "header CRC mismatch");
	memcpy(img->hash, c->base + 16, 32);
	return 0;
}

static int img_layout(Cur *c, DamImage *img, size_t len)
{
	uint64_t at = IMG_FIXED + IMG_ENTRY * DAM_IMG_NSECTIONS + 4;
	for (uint32_t k = 0; k < DAM_IMG_NSECTIONS; k++) {
		const uint8_t *e = c->base + IMG_FIXED + IMG_ENTRY * k;
		size_t eo = IMG_FIXED + IMG_ENTRY * k;
		uint64_t start = (at + 7) & ~(uint64_t)7;
		img->sec[k].type = (uint32_t)rd(e, 4);
		img->sec[k].offset = rd(e + 4, 8);
		img->sec[k].length = rd(e + 12, 8);
		img->sec[k].crc = (uint32_t)rd(e + 20, 4);
		if (img->sec[k].type != k + 1)
			return cur_fail(c, eo, "section %u has type %u, expected %u (%s)", k, img->sec[k].type,
			                k + 1, dam_image_section_name(k + 1));
		if (img->sec[k].offset != start)
			return cur_fail(c, eo + 4, "section %s starts at %llu, expected %llu",
			                dam_image_section_name(k + 1), (unsigned long long)img->sec[k].offset,
			                (unsigned long long)start);
		if (start > len || img->sec[k].length > len - start)
			return cur_fail(c, eo + 12, "section %s (%llu bytes at %llu) runs past the end of the "
			                "file (%zu bytes)", dam_image_section_name(k + 1),
			                (unsigned long long)img->sec[k].length, (unsigned long long)start, len);
		for (uint64_t p = at; p < start; p++)
			if (c->base[p])
				return cur_fail(c, (size_t)p, "padding byte is not zero");
		at = start + img->sec[k].length;
	}
	if (at != len)
		return cur_fail(c, (size_t)at, "%llu bytes after the last section",
		                (unsigned long long)(len - at));
	return 0;
}

int dam_image_read(const void *buf, size_t len, DamImage **out, char *err, size_t errlen)
{
	static int (*const dec[DAM_IMG_NSECTIONS])(Cur *, DamImage *) = {
		NULL, img_layers, img_tiles, img_dynamic, img_names };
	*out = NULL;
	DamImage *img = img_calloc(1, sizeof *img);
	Cur c = { buf, 0, len, "header", err, errlen, 0 };
	if (!buf && len)
		len = 0;
	if (img_header(&c, img, len) < 0 || img_layout(&c, img, len) < 0)
		goto fail;
	for (uint32_t k = 0; k < DAM_IMG_NSECTIONS; k++) {
		c.sec = dam_image_section_name(k + 1);
		c.pos = (size_t)img->sec[k].offset;
		c.end = c.pos + (size_t)img->sec[k].length;
		if (img_crc(c.base + c.pos, c.end - c.pos) != img->sec[k].crc) {
			cur_fail(&c, c.pos, "CRC mismatch");
			goto fail;
		}
	}
	for (uint32_t k = 0; k < DAM_IMG_NSECTIONS; k++) {
		c.sec = dam_image_section_name(k + 1);
		c.pos = (size_t)img->sec[k].offset;
		c.end = c.pos + (size_t)img->sec[k].length;
		if ((k == 0 ? img_device(&c, &img->dev) : dec[k](&c, img)) < 0 || c.bad)
			goto fail;
	}
	img->size = len;
	*out = img;
	return 0;
fail:
	dam_image_free(img);
	return -1;
}

int dam_image_open(const char *path, DamImage **out, char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "cannot open: %s", strerror(errno));
		return -1;
	}
	size_t cap = 1 << 16, len = 0, got;
	uint8_t *buf = malloc(cap);
	if (!buf)
		abort();
	while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
		len += got;
		if (len == cap && !(buf = realloc(buf, cap *= 2)))
			abort();
	}
	int bad = ferror(f);
	fclose(f);
	int rc = bad ? (snprintf(err, errlen, "read error"), -1) : dam_image_read(buf, len, out, err, errlen);
	free(buf);
	return rc;
}

static void img_block_free(DamImgBlock *b)
{
	free(b->levels);
	free(b->name);
	free(b->tensor);
}

void dam_image_free(DamImage *img)
{
	if (!img)
		return;
	free(img->dev.name);
	for (uint32_t l = 0; img->layers && l < img->nlayers; l++) {
		DamImgLayer *L = &img->layers[l];
		free(L->name);
		free(L->lagrangian);
		free(L->bias);
		free(L->value);
		free(L->clamped);
	}
	free(img->layers);
	for (uint32_t k = 0; img->blocks && k < img->nblocks; k++)
		img_block_free(&img->blocks[k]);
	free(img->blocks);
	for (uint32_t k = 0; img->dyn && k < img->ndyn; k++)
		img_block_free(&img->dyn[k]);
	free(img->dyn);
	for (uint32_t t = 0; img->tiles && t < img->ntiles; t++)
		free(img->tiles[t].levels);
	free(img->tiles);
	free(img);
}

/* ---- dequantisation ----------------------------------------------------------------- */

unsigned dam_image_planes(const DamImage *img)
{
	return img->dev.encoding == DAM_ENC_DIFFERENTIAL ? 2 : 1;
}

double dam_image_level_g(const DamImgDevice *d, unsigned level)
{
	if (!level)
		return 0;
	double step = (d->gmax - d->gmin) / (double)((1u << d->bits) - 2);
	return d->gmin + (double)(level - 1) * step;
}

double dam_image_cell_weight(const DamImage *img, const uint16_t *p, size_t stride, double offset,
                             double gain)
{
	const DamImgDevice *d = &img->dev;
	if (d->encoding == DAM_ENC_DIFFERENTIAL)
		return (dam_image_level_g(d, p[0]) - dam_image_level_g(d, p[stride])) / gain;
	return dam_image_level_g(d, p[0]) / gain - offset;
}

void dam_image_block_weights(const DamImage *img, uint32_t k, double *out)
{
	const DamImgBlock *b = &img->blocks[k];
	for (uint32_t t = b->first_tile; t < b->first_tile + b->ntiles; t++) {
		const DamImgTile *T = &img->tiles[t];
		size_t plane = (size_t)T->rows * T->cols;
		for (uint32_t r = 0; r < T->rows; r++)
			for (uint32_t q = 0; q < T->cols; q++)
				out[(T->row0 + r) * b->cols + T->col0 + q] =
					dam_image_cell_weight(img, T->levels + (size_t)r * T->cols + q, plane, T->offset,
					                      T->gain);
	}
}

void dam_image_table_weights(const DamImage *img, uint32_t k, double *out)
{
	const DamImgBlock *b = &img->dyn[k];
	if (b->kind != 1)
		return;
	size_t cells = (size_t)(b->vocab * b->cols);
	size_t stride = dam_image_planes(img) == 2 ? cells : 0;
	for (size_t c = 0; c < cells; c++)
		out[c] = dam_image_cell_weight(img, b->levels + c, stride, b->offset, b->gain);
}

/* ---- writer side --------------------------------------------------------------------- */

void dam_image_hash(const char *text, size_t len, uint8_t out[32])
{
	for (int k = 0; k < 4; k++) {
		uint64_t h = 0xcbf29ce484222325ull;
		h = (h ^ (uint64_t)k) * 0x100000001b3ull;
		for (size_t i = 0; i < len; i++)
			h = (h ^ (uint8_t)text[i]) * 0x100000001b3ull;
		for (int b = 0; b < 8; b++)
			out[8 * k + b] = (uint8_t)(h >> (8 * b));
	}
}

static void buf_grow(DamBuf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return;
	while (b->cap - b->len < n)
		b->cap = b->cap ? 2 * b->cap : 256;
	b->p = realloc(b->p, b->cap);
	if (!b->p)
		abort();
}

static void buf_le(DamBuf *b, uint64_t v, int n)
{
	buf_grow(b, (size_t)n);
	for (int i = 0; i < n; i++)
		b->p[b->len++] = (uint8_t)(v >> (8 * i));
}

void dam_buf_u8(DamBuf *b, uint8_t v) { buf_le(b, v, 1); }
void dam_buf_u16(DamBuf *b, uint16_t v) { buf_le(b, v, 2); }
void dam_buf_u32(DamBuf *b, uint32_t v) { buf_le(b, v, 4); }
void dam_buf_u64(DamBuf *b, uint64_t v) { buf_le(b, v, 8); }

void dam_buf_f64(DamBuf *b, double v)
{
	uint64_t u;
	memcpy(&u, &v, sizeof u);
	buf_le(b, u, 8);
}

void dam_buf_str(DamBuf *b, const char *s)
{
	size_t n = strlen(s);
	dam_buf_u32(b, (uint32_t)n);
	buf_grow(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

int dam_image_assemble(const uint8_t hash[32], const uint8_t *const sec[DAM_IMG_NSECTIONS],
                       const size_t seclen[DAM_IMG_NSECTIONS], uint8_t **out, size_t *outlen)
{
	DamBuf b = { 0 };
	size_t hsize = IMG_FIXED + IMG_ENTRY * DAM_IMG_NSECTIONS + 4, at = hsize;
	buf_grow(&b, 8);
	memcpy(b.p, img_magic, 8);
	b.len = 8;
	dam_buf_u16(&b, DAM_IMG_VERSION);
	dam_buf_u16(&b, 0);
	dam_buf_u32(&b, (uint32_t)hsize);
	buf_grow(&b, 32);
	memcpy(b.p + b.len, hash, 32);
	b.len += 32;
	dam_buf_u32(&b, DAM_IMG_NSECTIONS);
	dam_buf_u32(&b, 0);
	for (uint32_t k = 0; k < DAM_IMG_NSECTIONS; k++) {
		at = (at + 7) & ~(size_t)7;
		dam_buf_u32(&b, k + 1);
		dam_buf_u64(&b, at);
		dam_buf_u64(&b, seclen[k]);
		dam_buf_u32(&b, img_crc(sec[k], seclen[k]));
		if (seclen[k] > SIZE_MAX / 2 - at) {
			free(b.p);
			return -1;
		}
		at += seclen[k];
	}
	dam_buf_u32(&b, img_crc(b.p, b.len));
	for (uint32_t k = 0; k < DAM_IMG_NSECTIONS; k++) {
		while (b.len % 8)
			dam_buf_u8(&b, 0);
		buf_grow(&b, seclen[k]);
		if (seclen[k])
			memcpy(b.p + b.len, sec[k], seclen[k]);
		b.len += seclen[k];
	}
	*out = b.p;
	*outlen = b.len;
	return 0;
}

/* ---- a stored .npz ----------------------------------------------------------------------- */

/* One float64 .npy member in memory (format 1.0, header padded to 64 bytes). */
static void npz_member(DamBuf *m, int rank, const int64_t *shape, const double *data)
{
	char hdr[512], sh[400] = "";
	size_t count = 1;
	for (int i = 0; i < rank; i++) {
		snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "%lld%s", (long long)shape[i],
		         rank == 1 ? "," : i + 1 < rank ? ", " : "");
		count *= (size_t)shape[i];
	}
	int n = snprintf(hdr, sizeof hdr, "{'descr': '<f8', 'fortran_order': False, 'shape': (%s), }", sh);
	size_t total = 10 + (size_t)n + 1;
	size_t pad = (64 - total % 64) % 64;
	static const uint8_t magic[8] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0 };
	buf_grow(m, 8);
	memcpy(m->p + m->len, magic, 8);
	m->len += 8;
	dam_buf_u16(m, (uint16_t)((size_t)n + pad + 1));
	for (int i = 0; i < n; i++)
		dam_buf_u8(m, (uint8_t)hdr[i]);
	for (size_t i = 0; i < pad; i++)
		dam_buf_u8(m, ' ');
	dam_buf_u8(m, '\n');
	for (size_t i = 0; i < count; i++)
		dam_buf_f64(m, data[i]);
}

static void zip_name(DamBuf *z, const char *name)
{
	for (const char *s = name; *s; s++)
		dam_buf_u8(z, (uint8_t)*s);
	for (const char *s = ".npy"; *s; s++)
		dam_buf_u8(z, (uint8_t)*s);
}

static void zip_header(DamBuf *z, bool central, uint32_t crc, size_t size, size_t nlen, size_t off)
{
	dam_buf_u32(z, central ? 0x02014b50u : 0x04034b50u);
	if (central)
		dam_buf_u16(z, 20);               /* version made by */
	dam_buf_u16(z, 20);                   /* version needed */
	dam_buf_u16(z, 0);                    /* flags */
	dam_buf_u16(z, 0);                    /* stored */
	dam_buf_u16(z, 0);                    /* time */
	dam_buf_u16(z, 0x21);                 /* date: 1980-01-01 */
	dam_buf_u32(z, crc);
	dam_buf_u32(z, (uint32_t)size);
	dam_buf_u32(z, (uint32_t)size);
	dam_buf_u16(z, (uint16_t)nlen);
	dam_buf_u16(z, 0);                    /* extra */
	if (central) {
		dam_buf_u16(z, 0);                /* comment */
		dam_buf_u16(z, 0);                /* disk */
		dam_buf_u16(z, 0);                /* internal attributes */
		dam_buf_u32(z, 0);                /* external attributes */
		dam_buf_u32(z, (uint32_t)off);
	}
}

int dam_npz_write(const char *path, int n, const char *const *names, const int *rank,
                  const int64_t *const *shape, const double *const *data, char *err, size_t errlen)
{
	DamBuf z = { 0 }, cd = { 0 };
	for (int k = 0; k < n; k++) {
		DamBuf m = { 0 };
		npz_member(&m, rank[k], shape[k], data[k]);
		uint32_t crc = img_crc(m.p, m.len);
		size_t off = z.len, nlen = strlen(names[k]) + 4;
		zip_header(&z, false, crc, m.len, nlen, 0);
		zip_name(&z, names[k]);
		buf_grow(&z, m.len);
		memcpy(z.p + z.len, m.p, m.len);
		z.len += m.len;
		zip_header(&cd, true, crc, m.len, nlen, off);
		zip_name(&cd, names[k]);
		free(m.p);
	}
	size_t cdoff = z.len;
	buf_grow(&z, cd.len);
	if (cd.len)
		memcpy(z.p + z.len, cd.p, cd.len);
	z.len += cd.len;
	dam_buf_u32(&z, 0x06054b50u);
	dam_buf_u16(&z, 0);
	dam_buf_u16(&z, 0);
	dam_buf_u16(&z, (uint16_t)n);
	dam_buf_u16(&z, (uint16_t)n);
	dam_buf_u32(&z, (uint32_t)cd.len);
	dam_buf_u32(&z, (uint32_t)cdoff);
	dam_buf_u16(&z, 0);
	free(cd.p);
	size_t plen = strlen(path) + 32;
	char *tmp = malloc(plen);
	if (!tmp)
		abort();
	snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "wb");
	int bad = !f || fwrite(z.p, 1, z.len, f) != z.len;
	if (f)
		bad |= fclose(f) != 0;
	if (bad || rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
		remove(tmp);
		bad = 1;
	}
	free(tmp);
	free(z.p);
	return bad ? -1 : 0;
}
