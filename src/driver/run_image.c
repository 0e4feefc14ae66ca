/* run_image.c - `damc run --image chip.img`: simulate what a programmed chip
 * computes, not the ideal model.
 *
 * The image is read and validated by libdam's reader (dam_image_open).  Its
 * model hash must match the model being run (xbar_model_hash), unless
 * --force.  Every static block's weights are replaced by the image's
 * dequantised conductances (dam_image_block_weights) through
 * sim_set_tensor: the weights are run-time data of the compiled kernels, so
 * nothing is recompiled.  A dynamic block stored as a token table (the
 * Analog ET's attention rows) is programmed per run from the quantised row
 * of each context token (sim_set_dynamic); a dynamic block the host
 * computes keeps the model's own rows.  Time constants are the image's (each
 * layer's tau, from LAYERS, as the chip's R2*C1 codes set it; sim_set_tau),
 * and so are biases that the model declares as a plain static or learn
 * vector (bias = a: the tensor a is programmed from the image).  A bias the
 * model computes from other quantities (XOR's -|xi|^2/2) is evaluated when
 * the model is compiled; the image holds the same numbers (both from the
 * ideal weights), so it is the model's.  Initial and clamped values come
 * from the run's inputs, as on the chip, where the controller drives them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dam_image.h"
#include "run_image.h"
#include "xbar.h"

static int ri_block(const Model *m, const char *name, const DamImgBlock *b, Diags *d, const char *path)
{
	int k = model_find(m, MODEL_BLOCK, name);
	if (k < 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "%s: the image has weight block '%s', which the model does "
		           "not declare", path, name);
		return -1;
	}
	const MBlock *B = &m->blocks[k];
	if ((int64_t)b->rows != m->layers[B->a].n || (int64_t)b->cols != m->layers[B->b].n) {
		diag_error(d, (Loc){ 0, 0, 0 }, "%s: block '%s' is %llux%llu in the image but %lldx%lld in "
		           "the model", path, name, (unsigned long long)b->rows, (unsigned long long)b->cols,
		           (long long)m->layers[B->a].n, (long long)m->layers[B->b].n);
		return -1;
	}
	return k;
}

/* The image layer that is model layer l (same name and size), or NULL. */
static const DamImgLayer *ri_layer(const Model *m, const DamImage *img, int l)
{
	for (uint32_t k = 0; k < img->nlayers; k++)
		if (!strcmp(img->layers[k].name, m->layers[l].name) &&
		    (int64_t)img->layers[k].n == m->layers[l].n)
			return &img->layers[k];
	return NULL;
}

/* A bias declared as a plain vector t[j] of a static or learn tensor: t. */
static TensorId ri_bias_tensor(const Model *m, const MLayer *L)
{
	const SymNode *b = sym_node(m->sym, L->bias);
	if (b->kind != SYM_TENSOR || b->nkids != 1 || sym_tensor_rank(m->sym, b->aux) != 1 ||
	    sym_tensor_shape(m->sym, b->aux)[0] != L->n)
		return 0;
	const SymNode *i = sym_node(m->sym, b->kids[0]);
	MTensorKind kind = m->tensors[b->aux].kind;
	return i->kind == SYM_IDX && i->aux == L->j && (kind == MT_CONST || kind == MT_LEARN) ? b->aux : 0;
}

/* Time constants and plain bias vectors from the image's LAYERS section. */
static void ri_neurons(const Model *m, const DamImage *img, RunImage *ri)
{
	ri->tau = calloc((size_t)model_state_size(m) + 1, sizeof *ri->tau);
	ri->st = realloc(ri->st, ((size_t)ri->nst + (size_t)m->nlayers + 1) * sizeof *ri->st);
	if (!ri->tau || !ri->st)
		abort();
	int64_t at = 0;
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		const DamImgLayer *I = ri_layer(m, img, l);
		for (int64_t j = 0; j < L->n; j++)
			ri->tau[at + j] = I && I->tau > 0 && isfinite(I->tau) ? I->tau : L->tau;
		at += L->n;
		TensorId t = I ? ri_bias_tensor(m, L) : 0;
		for (int k = 0; k < ri->nst && t; k++)
			t = ri->st[k].t == t ? 0 : t;     /* a vector shared by two layers: the first's */
		if (!t)
			continue;
		RunImageW *w = &ri->st[ri->nst++];
		w->t = t;
		w->bias = true;
		w->w = calloc((size_t)L->n + 1, sizeof *w->w);
		if (!w->w)
			abort();
		memcpy(w->w, I->bias, (size_t)L->n * sizeof *w->w);
	}
}

int run_image_load(const Model *m, const char *path, bool force, RunImage *ri, Diags *d)
{
	memset(ri, 0, sizeof *ri);
	DamImage *img;
	char err[512];
	if (dam_image_open(path, &img, err, sizeof err) < 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "%s: %s", path, err);
		return -1;
	}
	uint8_t h[32];
	xbar_model_hash(m, h);
	if (memcmp(h, img->hash, sizeof h) && !force) {
		diag_error(d, (Loc){ 0, 0, 0 }, "%s was written for another model (its model hash differs "
		           "from %s's layers and blocks); use --force to run it anyway", path, m->path);
		dam_image_free(img);
		return -1;
	}
	int bad = 0;
	ri->st = calloc(img->nblocks + 1, sizeof *ri->st);
	ri->dy = calloc(img->ndyn + 1, sizeof *ri->dy);
	if (!ri->st || !ri->dy)
		abort();
	for (uint32_t k = 0; k < img->nblocks && !bad; k++) {
		const DamImgBlock *b = &img->blocks[k];
		int blk = ri_block(m, b->name, b, d, path);
		if (blk < 0 || m->blocks[blk].dynamic) {
			if (blk >= 0)
				diag_error(d, (Loc){ 0, 0, 0 }, "%s: block '%s' is static in the image but dynamic "
				           "in the model", path, b->name);
			bad = 1;
			break;
		}
		RunImageW *w = &ri->st[ri->nst++];
		w->t = m->blocks[blk].w;
		w->w = calloc(b->rows * b->cols + 1, sizeof *w->w);
		if (!w->w)
			abort();
		dam_image_block_weights(img, k, w->w);
	}
	for (uint32_t k = 0; k < img->ndyn && !bad; k++) {
		const DamImgBlock *b = &img->dyn[k];
		int blk = ri_block(m, b->name, b, d, path);
		if (blk < 0) {
			bad = 1;
			break;
		}
		if (b->kind != 1 || (int)b->input >= m->ninputs)
			continue;                  /* the host computes these rows: the model's own */
		RunImageDyn *y = &ri->dy[ri->ndy++];
		y->t = m->blocks[blk].w;
		y->input = (int)b->input;
		y->rows = (int64_t)b->rows;
		y->cols = (int64_t)b->cols;
		y->vocab = (int64_t)b->vocab;
		size_t cells = b->vocab * b->cols;
		y->table = calloc(cells + 1, sizeof *y->table);
		if (!y->table)
			abort();
		dam_image_table_weights(img, k, y->table);
	}
	if (!bad)
		ri_neurons(m, img, ri);
	dam_image_free(img);
	if (bad) {
		run_image_free(ri);
		return -1;
	}
	return 0;
}

int run_image_apply(const RunImage *ri, const Model *m, DamSim *s, const double *row)
{
	if (ri->tau)
		sim_set_tau(s, ri->tau);
	for (int k = 0; k < ri->nst; k++)
		if (sim_set_tensor(s, ri->st[k].t, ri->st[k].w) < 0)
			return -1;
	for (int k = 0; k < ri->ndy; k++) {
		const RunImageDyn *y = &ri->dy[k];
		size_t off = 0;
		for (int i = 0; i < y->input; i++)
			off += (size_t)m->inputs[i].n;
		double *rows = calloc((size_t)(y->rows * y->cols) + 1, sizeof *rows);
		if (!rows)
			abort();
		for (int64_t r = 0; r < y->rows && r < m->inputs[y->input].n; r++) {
			int64_t tok = (int64_t)row[off + (size_t)r];
			if (tok < 0 || tok >= y->vocab)
				tok = 0;           /* rows are checked before any run */
			memcpy(rows + r * y->cols, y->table + tok * y->cols, (size_t)y->cols * sizeof *rows);
		}
		int rc = sim_set_dynamic(s, y->t, rows);
		free(rows);
		if (rc < 0)
			return -1;
	}
	return 0;
}

void run_image_free(RunImage *ri)
{
	for (int k = 0; k < ri->nst; k++)
		free(ri->st[k].w);
	for (int k = 0; k < ri->ndy; k++)
		free(ri->dy[k].table);
	free(ri->st);
	free(ri->dy);
	free(ri->tau);
	memset(ri, 0, sizeof *ri);
}
