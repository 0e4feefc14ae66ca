/* xbar.c - the image backend: quantise a model's weights onto the crossbar
 * tiles of a device profile and write the image of docs/image-format.md.
 *
 * Weights are evaluated with the reference evaluator (model_eval) for the
 * given input set.  A weight w wants the conductance g0*|w| (differential
 * encoding: on the positive or the negative plane) or g0*(w + offset)
 * (offset encoding, offset per tile), and gets the nearest of the levels
 * 0 (open cell) and G(l) = gmin + (l-1)*step.  A block that needs more than
 * gmax is a located error naming the block, the range it needs and the
 * device's.  Dynamic blocks shaped like a token table (w[r, i] = T[tok[r],
 * i]) get their table quantised: the block is evaluated once per token
 * value with every position set to it, row 0 kept, and the shape is checked
 * at a pseudo-random token sequence.  The container (header, section table,
 * CRCs) is libdam's dam_image_assemble.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dam_image.h"
#include "xbar.h"

typedef struct XQuant {
	const DevProfile *dev;
	const Model *m;
	double g0, gmin, gmax, step;
	unsigned bits, levels, planes;
	DevEncoding enc;
	bool tile_scale;       /* a gain per tile (crossbar.scale = "tile") */
	Diags *d;
} XQuant;

static void *xbar_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		abort();
	return p;
}

/* ---- quantisation ----------------------------------------------------------- */

static int xbar_setup(XQuant *q, const Model *m, const BackendOptions *opt, Diags *d)
{
	const DevProfile *dev = opt->device;
	memset(q, 0, sizeof *q);
	q->m = m;
	q->d = d;
	q->dev = dev;
	if (!dev) {
		diag_error(d, (Loc){ 0, 0, 0 }, "an image needs a device profile: --device NAME (shipped: %s)",
		           DAM_DEVICE_NAMES);
		return -1;
	}
	const DevXbar *x = &dev->xbar;
	if (!(x->bits >= 2 && x->bits <= 16 && x->bits == floor(x->bits)) || !(x->gmax > x->gmin)) {
		diag_error(d, (Loc){ 0, 0, 0 }, "device profile '%s' (%s) needs crossbar.bits (an integer "
		           "2..16) and 0 <= crossbar.gmin < crossbar.gmax for an image (bits = %g, gmin = %g, "
		           "gmax = %g)", dev->name, dev->path, x->bits, x->gmin, x->gmax);
		return -1;
	}
	if ((x->rows > 65536 || x->cols > 65536)) {
		diag_error(d, (Loc){ 0, 0, 0 }, "device profile '%s': crossbar arrays of %gx%g lines are "
		           "larger than an image tile can be (65536)", dev->name, x->rows, x->cols);
		return -1;
	}
	q->bits = (unsigned)x->bits;
	q->levels = 1u << q->bits;
	q->gmin = x->gmin;
	q->gmax = x->gmax;
	q->step = (q->gmax - q->gmin) / (double)(q->levels - 2);
	q->g0 = opt->g0 > 0 ? opt->g0 : XBAR_G0;
	q->enc = x->encoding == DEV_ENC_OFFSET ? DEV_ENC_OFFSET : DEV_ENC_DIFFERENTIAL;
	q->planes = q->enc == DEV_ENC_DIFFERENTIAL ? 2 : 1;
	q->tile_scale = x->scale != DEV_SCALE_GLOBAL;   /* default: a gain per tile */
	return 0;
}

static uint16_t xbar_level(const XQuant *q, double g)
{
	if (!(g > 0))
		return 0;
	double l = floor((g - q->gmin) / q->step + 0.5) + 1;
	if (l < 1)
		l = 1;
	if (l > q->levels - 1)
		l = q->levels - 1;
	double gl = q->gmin + (l - 1) * q->step;
	return g <= fabs(g - gl) ? 0 : (uint16_t)l;
}

/* The conductances a block (or table) needs: check them against the device. */
static int xbar_range(const XQuant *q, const MBlock *B, const double *w, size_t n, double offset,
                      double gain)
{
	double lo = INFINITY, hi = 0;
	for (size_t k = 0; k < n; k++) {
		if (!isfinite(w[k])) {
			diag_error(q->d, backend_loc(B->loc), "weight block '%s' has a non-finite value for this "
			           "input", B->name);
			return -1;
		}
		double g = gain * (q->enc == DEV_ENC_OFFSET ? w[k] + offset : fabs(w[k]));
		if (g > 0) {
			lo = fmin(lo, g);
			hi = fmax(hi, g);
		}
	}
	if (hi > q->gmax + q->step / 2) {
		diag_error(q->d, backend_loc(B->loc), "weight block '%s' needs conductances %.3g .. %.3g S "
		           "(g0 = %g S per unit weight%s), but device '%s' offers %.3g .. %.3g S", B->name, lo,
		           hi, gain, q->enc == DEV_ENC_OFFSET ? ", offset encoding" : "", q->dev->name,
		           q->gmin, q->gmax);
		return -1;
	}
	return 0;
}

static double xbar_offset(const XQuant *q, const double *w, size_t rows, size_t cols, size_t stride)
{
	double lo = 0;
	if (q->enc != DEV_ENC_OFFSET)
		return 0;
	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < cols; c++)
			lo = fmin(lo, w[r * stride + c]);
	return -lo;
}

/* The conductance of a unit weight in a rows x cols window of w (row
 * stride `stride`): the device's g0, or under the tile scale the gain that
 * puts the window's largest target at gmax (g0 for an all-zero window). */
static double xbar_gain(const XQuant *q, const double *w, size_t rows, size_t cols, size_t stride,
                        double offset)
{
	double hi = 0;
	if (!q->tile_scale)
		return q->g0;
	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < cols; c++) {
			double v = w[r * stride + c];
			hi = fmax(hi, q->enc == DEV_ENC_OFFSET ? v + offset : fabs(v));
		}
	return hi > 0 && isfinite(hi) ? q->gmax / hi : q->g0;
}

/* The planes of a rows x cols window of w (row stride `stride`). */
static void xbar_planes(const XQuant *q, DamBuf *b, const double *w, size_t rows, size_t cols,
                        size_t stride, double offset, double gain)
{
	for (unsigned p = 0; p < q->planes; p++)
		for (size_t r = 0; r < rows; r++)
			for (size_t c = 0; c < cols; c++) {
				double v = w[r * stride + c], g;
				if (q->enc == DEV_ENC_OFFSET)
					g = gain * (v + offset);
				else
					g = (p == 0 ? v > 0 : v < 0) ? gain * fabs(v) : 0;
				dam_buf_u16(b, xbar_level(q, g));
			}
}

/* ---- sections ------------------------------------------------------------------ */

static void xbar_device(const XQuant *q, DamBuf *b, size_t trows, size_t tcols)
{
	dam_buf_str(b, q->dev->name);
	dam_buf_u32(b, q->bits);
	dam_buf_u32(b, q->enc == DEV_ENC_OFFSET ? DAM_ENC_OFFSET : DAM_ENC_DIFFERENTIAL);
	dam_buf_u32(b, q->tile_scale ? DAM_SCALE_TILE : DAM_SCALE_GLOBAL);
	dam_buf_u32(b, (uint32_t)q->dev->xbar.dac_bits);
	dam_buf_u32(b, (uint32_t)q->dev->xbar.adc_bits);
	dam_buf_f64(b, q->gmin);
	dam_buf_f64(b, q->gmax);
	dam_buf_f64(b, q->g0);
	dam_buf_u32(b, (uint32_t)trows);
	dam_buf_u32(b, (uint32_t)tcols);
}

static int xbar_segs(ModelEval *ev, const MLayer *L, const MSeg *seg, int nseg, double *val,
                     uint8_t *flag, Diags *d)
{
	for (int s = 0; s < nseg; s++) {
		int64_t lo = seg[s].lo < 0 ? 0 : seg[s].lo, hi = seg[s].hi > L->n ? L->n : seg[s].hi;
		for (int64_t i = lo; i < hi; i++) {
			val[i] = model_eval_expr(ev, seg[s].value, L->j, i);
			if (!isfinite(val[i])) {
				diag_error(d, backend_loc(L->loc), "the value of layer '%s' neuron %lld is not finite",
				           L->name, (long long)i);
				return -1;
			}
			if (flag)
				flag[i] = 1;
		}
	}
	return 0;
}

static int xbar_layers(const Model *m, ModelEval *ev, DamBuf *b, Diags *d)
{
	dam_buf_u32(b, (uint32_t)m->nlayers);
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		size_t n = (size_t)L->n;
		double *val = xbar_xcalloc(n, sizeof *val);
		uint8_t *flag = xbar_xcalloc(n, 1);
		dam_buf_str(b, L->name);
		dam_buf_u64(b, (uint64_t)n);
		dam_buf_str(b, L->lagr_name && *L->lagr_name ? L->lagr_name : "?");
		dam_buf_f64(b, L->tau);
		int bad = 0;
		for (size_t i = 0; i < n; i++) {
			double v = model_eval_expr(ev, L->bias, L->j, (int64_t)i);
			if (!isfinite(v) && !bad++)
				diag_error(d, backend_loc(L->loc), "the bias of layer '%s' neuron %zu is not finite",
				           L->name, i);
			dam_buf_f64(b, v);
		}
		bad |= xbar_segs(ev, L, L->init, L->ninit, val, NULL, d) < 0 ||
		       xbar_segs(ev, L, L->clamp, L->nclamp, val, flag, d) < 0;
		for (size_t i = 0; i < n; i++)
			dam_buf_f64(b, val[i]);
		for (size_t i = 0; i < n; i++)
			dam_buf_u8(b, flag[i]);
		free(val);
		free(flag);
		if (bad)
			return -1;
	}
	return 0;
}

static void xbar_block_head(const Model *m, DamBuf *b, int k)
{
	const MBlock *B = &m->blocks[k];
	dam_buf_u32(b, (uint32_t)k);
	dam_buf_u32(b, (uint32_t)B->a);
	dam_buf_u32(b, (uint32_t)B->b);
	dam_buf_u64(b, (uint64_t)m->layers[B->a].n);
	dam_buf_u64(b, (uint64_t)m->layers[B->b].n);
}

static int xbar_tiles(const XQuant *q, ModelEval *ev, DamBuf *b, size_t tr, size_t tc)
{
	const Model *m = q->m;
	uint32_t nstatic = 0, ntiles = 0;
	for (int k = 0; k < m->nblocks; k++)
		if (!m->blocks[k].dynamic) {
			size_t r = (size_t)m->layers[m->blocks[k].a].n, c = (size_t)m->layers[m->blocks[k].b].n;
			nstatic++;
			ntiles += (uint32_t)(((r + tr - 1) / tr) * ((c + tc - 1) / tc));
		}
	dam_buf_u32(b, nstatic);
	for (int k = 0; k < m->nblocks; k++)
		if (!m->blocks[k].dynamic)
			xbar_block_head(m, b, k);
	dam_buf_u32(b, ntiles);
	uint32_t entry = 0;
	for (int k = 0; k < m->nblocks; k++) {
		const MBlock *B = &m->blocks[k];
		if (B->dynamic)
			continue;
		size_t rows = (size_t)m->layers[B->a].n, cols = (size_t)m->layers[B->b].n;
		const double *w = ev->data[B->w];
		if (q->enc != DEV_ENC_OFFSET && !q->tile_scale && xbar_range(q, B, w, rows * cols, 0, q->g0) < 0)
			return -1;
		for (size_t r0 = 0; r0 < rows; r0 += tr)
			for (size_t c0 = 0; c0 < cols; c0 += tc) {
				size_t nr = rows - r0 < tr ? rows - r0 : tr, nc = cols - c0 < tc ? cols - c0 : tc;
				const double *win = w + r0 * cols + c0;
				double off = xbar_offset(q, win, nr, nc, cols);
				double gain = xbar_gain(q, win, nr, nc, cols, off);
				for (size_t r = 0; r < nr; r++)
					if (xbar_range(q, B, win + r * cols, nc, off, gain) < 0)
						return -1;
				dam_buf_u32(b, entry);
				dam_buf_u32(b, (uint32_t)r0);
				dam_buf_u32(b, (uint32_t)c0);
				dam_buf_u32(b, (uint32_t)nr);
				dam_buf_u32(b, (uint32_t)nc);
				dam_buf_f64(b, off);
				dam_buf_f64(b, gain);
				xbar_planes(q, b, win, nr, nc, cols, off, gain);
			}
		entry++;
	}
	return 0;
}

/* ---- dynamic blocks: token tables -------------------------------------------------- */

static int64_t xbar_input_offset(const Model *m, int input)
{
	int64_t off = 0;
	for (int i = 0; i < input; i++)
		off += m->inputs[i].n;
	return off;
}

/* The token input a table-shaped block follows, or -1. */
static int xbar_table_input(const Model *m, const MBlock *B)
{
	for (int i = 0; i < m->ninputs; i++)
		if (m->inputs[i].is_index && m->inputs[i].n == m->layers[B->a].n && m->inputs[i].vocab > 0 &&
		    m->inputs[i].vocab <= 65536)
			return i;
	return -1;
}

/* Evaluate block B with input `in` set to tok[] (others as given); rows*cols into out. */
static void xbar_eval_with(const Model *m, const MBlock *B, const double *base, size_t ni, int in,
                           const double *tok, double *out)
{
	double *x = xbar_xcalloc(ni, sizeof *x);
	if (ni)
		memcpy(x, base, ni * sizeof *x);
	memcpy(x + xbar_input_offset(m, in), tok, (size_t)m->inputs[in].n * sizeof *x);
	ModelEval ev;
	model_eval_init(&ev, m, x);
	memcpy(out, ev.data[B->w], (size_t)(m->layers[B->a].n * m->layers[B->b].n) * sizeof *out);
	model_eval_free(&ev);
	free(x);
}

/* The table T[t, :] (vocab x cols) if w[r, :] = T[tok[r], :], else NULL. */
static double *xbar_table(const Model *m, const MBlock *B, const double *base, size_t ni, int in)
{
	size_t rows = (size_t)m->layers[B->a].n, cols = (size_t)m->layers[B->b].n;
	size_t vocab = (size_t)m->inputs[in].vocab;
	double *tok = xbar_xcalloc(rows, sizeof *tok), *w = xbar_xcalloc(rows * cols, sizeof *w);
	double *T = xbar_xcalloc(vocab * cols, sizeof *T);
	for (size_t t = 0; t < vocab; t++) {
		for (size_t r = 0; r < rows; r++)
			tok[r] = (double)t;
		xbar_eval_with(m, B, base, ni, in, tok, w);
		memcpy(T + t * cols, w, cols * sizeof *T);
	}
	for (size_t r = 0; r < rows; r++)
		tok[r] = (double)((r * 7 + 3) % vocab);
	xbar_eval_with(m, B, base, ni, in, tok, w);
	bool same = true;
	for (size_t r = 0; r < rows && same; r++)
		for (size_t c = 0; c < cols && same; c++) {
			double a = w[r * cols + c], e = T[(size_t)tok[r] * cols + c];
			same = fabs(a - e) <= 1e-12 * fmax(1, fabs(e));
		}
	free(tok);
	free(w);
	if (!same) {
		free(T);
		return NULL;
	}
	return T;
}

static int xbar_dynamic(const XQuant *q, const double *inputs, size_t ni, DamBuf *b)
{
	const Model *m = q->m;
	uint32_t n = 0;
	for (int k = 0; k < m->nblocks; k++)
		n += m->blocks[k].dynamic;
	dam_buf_u32(b, n);
	for (int k = 0; k < m->nblocks; k++) {
		const MBlock *B = &m->blocks[k];
		if (!B->dynamic)
			continue;
		xbar_block_head(m, b, k);
		int in = xbar_table_input(m, B);
		double *T = in >= 0 ? xbar_table(m, B, inputs, ni, in) : NULL;
		dam_buf_u32(b, T ? 1 : 0);
		if (!T)
			continue;
		size_t vocab = (size_t)m->inputs[in].vocab, cols = (size_t)m->layers[B->b].n;
		double off = xbar_offset(q, T, vocab, cols, cols);
		double gain = xbar_gain(q, T, vocab, cols, cols, off);
		if (xbar_range(q, B, T, vocab * cols, off, gain) < 0) {
			free(T);
			return -1;
		}
		dam_buf_u32(b, (uint32_t)in);
		dam_buf_u64(b, (uint64_t)vocab);
		dam_buf_f64(b, off);
		dam_buf_f64(b, gain);
		xbar_planes(q, b, T, vocab, cols, cols, off, gain);
		free(T);
	}
	return 0;
}

static void xbar_names(const Model *m, DamBuf *b)
{
	uint32_t n = (uint32_t)m->nblocks;
	dam_buf_u32(b, n);
	for (int pass = 0; pass < 2; pass++)
		for (int k = 0; k < m->nblocks; k++)
			if (m->blocks[k].dynamic == (pass == 1)) {
				const char *t = sym_tensor_name(m->sym, m->blocks[k].w);
				dam_buf_str(b, m->blocks[k].name);
				dam_buf_str(b, t && *t ? t : m->blocks[k].name);
			}
}

/* ---- the model hash and the image ------------------------------------------------------- */

void xbar_model_hash(const Model *m, uint8_t out[32])
{
	DamBuf t = { 0 };
	char line[512];
	for (int l = 0; l < m->nlayers; l++) {
		int n = snprintf(line, sizeof line, "layer %s %lld\n", m->layers[l].name,
		                 (long long)m->layers[l].n);
		for (int i = 0; i < n && i < (int)sizeof line - 1; i++)
			dam_buf_u8(&t, (uint8_t)line[i]);
	}
	for (int k = 0; k < m->nblocks; k++) {
		const MBlock *B = &m->blocks[k];
		int n = snprintf(line, sizeof line, "block %s %s %s %lld %lld %s\n", B->name,
		                 m->layers[B->a].name, m->layers[B->b].name, (long long)m->layers[B->a].n,
		                 (long long)m->layers[B->b].n, B->dynamic ? "dynamic" : "static");
		for (int i = 0; i < n && i < (int)sizeof line - 1; i++)
			dam_buf_u8(&t, (uint8_t)line[i]);
	}
	dam_image_hash((const char *)t.p, t.len, out);
	free(t.p);
}

static size_t xbar_side(double lim, const Model *m, bool rows)
{
	if (lim > 0)
		return (size_t)lim;
	int64_t big = 1;
	for (int k = 0; k < m->nblocks; k++) {
		int64_t n = m->layers[rows ? m->blocks[k].a : m->blocks[k].b].n;
		big = n > big ? n : big;
	}
	return (size_t)(big > 65536 ? 65536 : big);
}

int xbar_build(const Model *m, const BackendOptions *opt, Diags *d, unsigned char **out, size_t *len)
{
	XQuant q;
	if (xbar_setup(&q, m, opt, d) < 0)
		return -1;
	size_t ni = 0;
	for (int i = 0; i < m->ninputs; i++)
		ni += (size_t)m->inputs[i].n;
	double *inputs = xbar_xcalloc(ni, sizeof *inputs);
	if (opt->inputs && ni)
		memcpy(inputs, opt->inputs, ni * sizeof *inputs);
	size_t tr = xbar_side(q.dev->xbar.rows, m, true), tc = xbar_side(q.dev->xbar.cols, m, false);
	ModelEval ev;
	model_eval_init(&ev, m, inputs);
	DamBuf s[DAM_IMG_NSECTIONS] = { { 0 } };
	xbar_device(&q, &s[0], tr, tc);
	int rc = xbar_layers(m, &ev, &s[1], d);
	if (!rc)
		rc = xbar_tiles(&q, &ev, &s[2], tr, tc);
	if (!rc)
		rc = xbar_dynamic(&q, inputs, ni, &s[3]);
	xbar_names(m, &s[4]);
	model_eval_free(&ev);
	free(inputs);
	const uint8_t *p[DAM_IMG_NSECTIONS];
	size_t n[DAM_IMG_NSECTIONS];
	for (int k = 0; k < DAM_IMG_NSECTIONS; k++) {
		p[k] = s[k].p;
		n[k] = s[k].len;
	}
	uint8_t hash[32];
	xbar_model_hash(m, hash);
	if (!rc && dam_image_assemble(hash, p, n, out, len) < 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "the image is too large");
		rc = -1;
	}
	for (int k = 0; k < DAM_IMG_NSECTIONS; k++)
		free(s[k].p);
	return rc;
}

static int xbar_emit(const Model *m, const BackendOptions *opt, Diags *d, FILE *out)
{
	unsigned char *img = NULL;
	size_t len = 0;
	if (xbar_build(m, opt, d, &img, &len) < 0)
		return -1;
	size_t put = fwrite(img, 1, len, out);
	free(img);
	if (put != len) {
		diag_error(d, (Loc){ 0, 0, 0 }, "cannot write the image");
		return -1;
	}
	return 0;
}

const Backend xbar_backend = { "xbar", "crossbar programming image (docs/image-format.md)", xbar_emit };
