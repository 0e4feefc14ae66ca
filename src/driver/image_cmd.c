/* image_cmd.c - `damc image`: write, dump and extract crossbar programming
 * images (docs/image-format.md).
 *
 *   damc image MODEL.dam --device P [run options] [--row N] -o chip.img
 *   damc image --dump chip.img [--json]
 *   damc image --extract chip.img -o weights.npz
 *
 * Writing reuses the session of `damc netlist` (net_main: config, model,
 * input rows, device) and hands one row to the image backend; the file is
 * written atomically and removed on any error.  Dump and extract only read
 * the image through libdam's validating reader (dam_image.h): dump prints
 * the sections, layers, blocks, tiles and a histogram of the levels, in
 * text or JSON, the same bytes for the same image; extract writes the
 * dequantised weights of every static block under the model's tensor name
 * (and the token table of a dynamic block as NAME_table) as a stored .npz.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "dam_image.h"
#include "netlist.h"
#include "outfile.h"
#include "xbar.h"

/* ---- writing -------------------------------------------------------------------- */

static int image_body(NetSession *s, Diags *d, void *user)
{
	(void)user;
	if (s->hi - s->lo != 1) {
		diag_error(d, (Loc){ 0, 0, 0 }, "an image is programmed for one input set: choose one row "
		           "with --row N");
		return RUN_EXIT_INPUT;
	}
	if (!s->args->out) {
		diag_error(d, (Loc){ 0, 0, 0 }, "an image is binary: give the output file with -o FILE");
		return RUN_EXIT_INPUT;
	}
	s->bo.inputs = s->batch.rows[s->lo].v;
	OutFile of;
	FILE *out = outfile_open(&of, s->args->out);
	if (!out)
		return RUN_EXIT_INPUT;
	if (xbar_backend.emit(s->m, &s->bo, d, out) < 0) {
		outfile_abort(&of);
		return RUN_EXIT_INPUT;
	}
	return outfile_close(&of) ? RUN_EXIT_INPUT : 0;
}

/* ---- dump ------------------------------------------------------------------------ */

#define IMAGE_BINS 16

typedef struct ImageHist {
	uint64_t open, bin[IMAGE_BINS];
	unsigned lo[IMAGE_BINS], hi[IMAGE_BINS];
} ImageHist;

static void image_hist_add(ImageHist *h, const DamImage *img, const uint16_t *lv, size_t n)
{
	unsigned top = (1u << img->dev.bits) - 1;
	for (size_t i = 0; i < n; i++) {
		if (!lv[i]) {
			h->open++;
			continue;
		}
		h->bin[(size_t)(lv[i] - 1) * IMAGE_BINS / top]++;
	}
}

static void image_hist(const DamImage *img, ImageHist *h)
{
	unsigned top = (1u << img->dev.bits) - 1, planes = dam_image_planes(img);
	memset(h, 0, sizeof *h);
	for (unsigned b = 0; b < IMAGE_BINS; b++) {
		h->lo[b] = 1 + (unsigned)((uint64_t)b * top / IMAGE_BINS);
		h->hi[b] = (unsigned)((uint64_t)(b + 1) * top / IMAGE_BINS);
	}
	for (uint32_t t = 0; t < img->ntiles; t++)
		image_hist_add(h, img, img->tiles[t].levels, (size_t)planes * img->tiles[t].rows *
		               img->tiles[t].cols);
	for (uint32_t k = 0; k < img->ndyn; k++)
		if (img->dyn[k].kind == 1)
			image_hist_add(h, img, img->dyn[k].levels, planes * img->dyn[k].vocab * img->dyn[k].cols);
}

static const char *image_enc(const DamImage *img)
{
	return img->dev.encoding == DAM_ENC_DIFFERENTIAL ? "differential" : "offset";
}

static const char *image_scale(const DamImage *img)
{
	return img->dev.scale == DAM_SCALE_TILE ? "tile" : "global";
}

static void image_hex(const uint8_t *h, char *out)
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static uint64_t image_clamped(const DamImgLayer *L)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < L->n; i++)
		n += L->clamped[i];
	return n;
}

static void image_dump_text(const char *path, const DamImage *img, const ImageHist *h)
{
	const DamImgDevice *d = &img->dev;
	char hash[65];
	image_hex(img->hash, hash);
	printf("image %s: %llu bytes, format %u, model hash %s\n", path, (unsigned long long)img->size,
	       img->version, hash);
	printf("device '%s': %u bits (%u levels, 0 = open cell), %s, dac %u bits, adc %u bits, "
	       "G %.6g .. %.6g S, g0 %.6g S, %s scale, tiles %ux%u\n", d->name, d->bits, 1u << d->bits,
	       image_enc(img), d->dac_bits, d->adc_bits, d->gmin, d->gmax, d->g0, image_scale(img),
	       d->tile_rows, d->tile_cols);
	printf("sections:\n");
	for (int k = 0; k < DAM_IMG_NSECTIONS; k++)
		printf("  %-8s offset %8llu  length %8llu  crc 0x%08x\n", dam_image_section_name(k + 1),
		       (unsigned long long)img->sec[k].offset, (unsigned long long)img->sec[k].length,
		       img->sec[k].crc);
	printf("layers:\n");
	for (uint32_t l = 0; l < img->nlayers; l++)
		printf("  %-12s %6llu neurons  %-20s tau %.6g  clamped %llu\n", img->layers[l].name,
		       (unsigned long long)img->layers[l].n, img->layers[l].lagrangian, img->layers[l].tau,
		       (unsigned long long)image_clamped(&img->layers[l]));
	printf("static blocks:\n");
	for (uint32_t k = 0; k < img->nblocks; k++) {
		const DamImgBlock *b = &img->blocks[k];
		printf("  %-12s %s -- %s  %llux%llu  %u tile%s  tensor %s\n", b->name,
		       img->layers[b->row_layer].name, img->layers[b->col_layer].name,
		       (unsigned long long)b->rows, (unsigned long long)b->cols, b->ntiles,
		       b->ntiles == 1 ? "" : "s", b->tensor);
	}
	printf("tiles:\n");
	for (uint32_t t = 0; t < img->ntiles; t++) {
		const DamImgTile *T = &img->tiles[t];
		printf("  %4u  %-12s [%u, %u]  %ux%u  offset %.6g  gain %.6g S\n", t,
		       img->blocks[T->entry].name, T->row0, T->col0, T->rows, T->cols, T->offset, T->gain);
	}
	printf("dynamic blocks:\n");
	for (uint32_t k = 0; k < img->ndyn; k++) {
		const DamImgBlock *b = &img->dyn[k];
		printf("  %-12s %s -- %s  %llux%llu  ", b->name, img->layers[b->row_layer].name,
		       img->layers[b->col_layer].name, (unsigned long long)b->rows, (unsigned long long)b->cols);
		if (b->kind == 1)
			printf("token table: input %u, %llu rows, offset %.6g, gain %.6g S\n", b->input,
			       (unsigned long long)b->vocab, b->offset, b->gain);
		else
			printf("computed by the host per inference\n");
	}
	printf("levels (all planes):\n  open (0)      %10llu\n", (unsigned long long)h->open);
	for (int b = 0; b < IMAGE_BINS; b++)
		if (h->hi[b] >= h->lo[b])
			printf("  %5u..%-5u   %10llu\n", h->lo[b], h->hi[b], (unsigned long long)h->bin[b]);
}

static void image_json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void image_json_block(const DamImage *img, const DamImgBlock *b, bool dyn)
{
	printf("{\"name\": ");
	image_json_str(b->name);
	printf(", \"tensor\": ");
	image_json_str(b->tensor);
	printf(", \"rows_layer\": ");
	image_json_str(img->layers[b->row_layer].name);
	printf(", \"cols_layer\": ");
	image_json_str(img->layers[b->col_layer].name);
	printf(", \"rows\": %llu, \"cols\": %llu", (unsigned long long)b->rows, (unsigned long long)b->cols);
	if (!dyn)
		printf(", \"tiles\": %u}", b->ntiles);
	else if (b->kind == 1)
		printf(", \"kind\": \"table\", \"input\": %u, \"vocab\": %llu, \"offset\": %.17g, "
		       "\"gain\": %.17g}", b->input, (unsigned long long)b->vocab, b->offset, b->gain);
	else
		printf(", \"kind\": \"host\"}");
}

static void image_dump_json(const DamImage *img, const ImageHist *h)
{
	const DamImgDevice *d = &img->dev;
	char hash[65];
	image_hex(img->hash, hash);
	printf("{\"format\": %u, \"bytes\": %llu, \"model_hash\": \"%s\",\n \"device\": {\"name\": ",
	       img->version, (unsigned long long)img->size, hash);
	image_json_str(d->name);
	printf(", \"bits\": %u, \"encoding\": \"%s\", \"scale\": \"%s\", \"dac_bits\": %u, "
	       "\"adc_bits\": %u, \"gmin\": %.17g, \"gmax\": %.17g, \"g0\": %.17g, \"tile_rows\": %u, "
	       "\"tile_cols\": %u},\n \"sections\": [", d->bits, image_enc(img), image_scale(img),
	       d->dac_bits, d->adc_bits, d->gmin, d->gmax, d->g0, d->tile_rows, d->tile_cols);
	for (int k = 0; k < DAM_IMG_NSECTIONS; k++)
		printf("%s{\"type\": \"%s\", \"offset\": %llu, \"length\": %llu, \"crc32\": %u}", k ? ", " : "",
		       dam_image_section_name(k + 1), (unsigned long long)img->sec[k].offset,
		       (unsigned long long)img->sec[k].length, img->sec[k].crc);
	printf("],\n \"layers\": [");
	for (uint32_t l = 0; l < img->nlayers; l++) {
		printf("%s{\"name\": ", l ? ", " : "");
		image_json_str(img->layers[l].name);
		printf(", \"n\": %llu, \"lagrangian\": ", (unsigned long long)img->layers[l].n);
		image_json_str(img->layers[l].lagrangian);
		printf(", \"tau\": %.17g, \"clamped\": %llu}", img->layers[l].tau,
		       (unsigned long long)image_clamped(&img->layers[l]));
	}
	printf("],\n \"blocks\": [");
	for (uint32_t k = 0; k < img->nblocks; k++) {
		printf("%s", k ? ", " : "");
		image_json_block(img, &img->blocks[k], false);
	}
	printf("],\n \"tiles\": [");
	for (uint32_t t = 0; t < img->ntiles; t++) {
		const DamImgTile *T = &img->tiles[t];
		printf("%s{\"block\": %u, \"row0\": %u, \"col0\": %u, \"rows\": %u, \"cols\": %u, \"offset\": "
		       "%.17g, \"gain\": %.17g}", t ? ", " : "", T->entry, T->row0, T->col0, T->rows, T->cols,
		       T->offset, T->gain);
	}
	printf("],\n \"dynamic\": [");
	for (uint32_t k = 0; k < img->ndyn; k++) {
		printf("%s", k ? ", " : "");
		image_json_block(img, &img->dyn[k], true);
	}
	printf("],\n \"histogram\": {\"open\": %llu, \"bins\": [", (unsigned long long)h->open);
	for (int b = 0, first = 1; b < IMAGE_BINS; b++)
		if (h->hi[b] >= h->lo[b]) {
			printf("%s{\"lo\": %u, \"hi\": %u, \"count\": %llu}", first ? "" : ", ", h->lo[b], h->hi[b],
			       (unsigned long long)h->bin[b]);
			first = 0;
		}
	printf("]}}\n");
}

/* ---- extract ------------------------------------------------------------------------ */

static int image_extract(const DamImage *img, const char *out, char *err, size_t errlen)
{
	uint32_t n = img->nblocks + img->ndyn, k = 0;
	const char **names = calloc(n + 1, sizeof *names);
	char **own = calloc(n + 1, sizeof *own);
	int *rank = calloc(n + 1, sizeof *rank);
	int64_t *shp = calloc(2 * (size_t)n + 2, sizeof *shp);
	const int64_t **shape = calloc(n + 1, sizeof *shape);
	double **data = calloc(n + 1, sizeof *data);
	if (!names || !own || !rank || !shp || !shape || !data)
		abort();
	for (uint32_t b = 0; b < img->nblocks; b++) {
		const DamImgBlock *B = &img->blocks[b];
		bool dup = false;
		for (uint32_t j = 0; j < k; j++)
			dup |= !strcmp(names[j], B->tensor);
		if (dup)
			continue;
		names[k] = B->tensor;
		data[k] = calloc(B->rows * B->cols + 1, sizeof **data);
		if (!data[k])
			abort();
		dam_image_block_weights(img, b, data[k]);
		shp[2 * k] = (int64_t)B->rows;
		shp[2 * k + 1] = (int64_t)B->cols;
		k++;
	}
	for (uint32_t b = 0; b < img->ndyn; b++) {
		const DamImgBlock *B = &img->dyn[b];
		if (B->kind != 1)
			continue;
		size_t len = strlen(B->tensor) + 8, cells = B->vocab * B->cols;
		own[k] = malloc(len);
		data[k] = calloc(cells + 1, sizeof **data);
		if (!own[k] || !data[k])
			abort();
		snprintf(own[k], len, "%s_table", B->tensor);
		names[k] = own[k];
		dam_image_table_weights(img, b, data[k]);
		shp[2 * k] = (int64_t)B->vocab;
		shp[2 * k + 1] = (int64_t)B->cols;
		k++;
	}
	for (uint32_t j = 0; j < k; j++) {
		rank[j] = 2;
		shape[j] = shp + 2 * j;
	}
	int rc = dam_npz_write(out, (int)k, names, rank, shape, (const double *const *)data, err, errlen);
	for (uint32_t j = 0; j < k; j++) {
		free(data[j]);
		free(own[j]);
	}
	free(names);
	free(own);
	free(rank);
	free(shp);
	free(shape);
	free(data);
	return rc;
}

/* ---- the command ------------------------------------------------------------------------ */

static const char image_help[] =
	"usage: damc image MODEL.dam --device P [options] -o chip.img\n"
	"       damc image --dump chip.img [--json]\n"
	"       damc image --extract chip.img -o weights.npz\n\n"
	"Write the crossbar programming image of MODEL.dam for one input set under a\n"
	"device profile (docs/image-format.md), print one, or extract its dequantised\n"
	"weights.\n\n%s"
	"  -o FILE               the output file (written atomically; required)\n"
	"  --dump IMG            print the sections, layers, blocks, tiles, level histogram\n"
	"  --json                with --dump: the same as JSON\n"
	"  --extract IMG         write the dequantised weights as .npz (-o)\n"
	"  -h, --help            show this help\n";

typedef struct ImageArgs {
	const char *dump, *extract, *out;
	bool json;
} ImageArgs;

static int image_read_args(int argc, char **argv, ImageArgs *ia)
{
	memset(ia, 0, sizeof *ia);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = !strcmp(a, "--dump") ? &ia->dump : !strcmp(a, "--extract") ? &ia->extract
		                    : !strcmp(a, "-o") ? &ia->out : NULL;
		if (slot) {
			if (i + 1 >= argc || !*argv[i + 1])
				return run_usage_error("%s expects a file", a);
			*slot = argv[++i];
		} else if (!strcmp(a, "--json")) {
			ia->json = true;
		} else {
			return run_usage_error("unexpected argument '%s' with --dump or --extract", a);
		}
	}
	if (ia->dump && ia->extract)
		return run_usage_error("%s", "give either --dump or --extract");
	if (ia->extract && !ia->out)
		return run_usage_error("%s", "--extract needs -o FILE.npz");
	if (ia->dump && ia->out)
		return run_usage_error("%s", "--dump prints to standard output (no -o)");
	return 0;
}

static int image_read_cmd(int argc, char **argv)
{
	ImageArgs ia;
	int rc = image_read_args(argc, argv, &ia);
	if (rc)
		return rc;
	const char *path = ia.dump ? ia.dump : ia.extract;
	char err[512];
	DamImage *img = NULL;
	if (dam_image_open(path, &img, err, sizeof err) < 0) {
		fprintf(stderr, "%s: error: %s\n", path, err);
		return RUN_EXIT_INPUT;
	}
	if (ia.dump) {
		ImageHist h;
		image_hist(img, &h);
		if (ia.json)
			image_dump_json(img, &h);
		else
			image_dump_text(path, img, &h);
	} else if (image_extract(img, ia.out, err, sizeof err) < 0) {
		fprintf(stderr, "damc image: error: %s\n", err);
		rc = RUN_EXIT_INPUT;
	}
	dam_image_free(img);
	return rc;
}

int cmd_image(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--dump") || !strcmp(argv[i], "--extract"))
			return image_read_cmd(argc, argv);
	NetCommand c = { image_help, false, NULL, image_body, NULL, false };
	return net_main("image", argc, argv, &c);
}
