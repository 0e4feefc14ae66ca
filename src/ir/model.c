/* model.c - Model IR helpers: state layout, the derivation report, the verifier.
 *
 * The flat state vector of a model concatenates the layers' states in
 * declaration order; every backend and the runtime use that layout.
 */
#include <stdlib.h>
#include <string.h>

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

/* Every table's entries start with their `const char *name`. */
int model_find(const Model *m, ModelTable table, const char *name)
{
	const void *base = NULL;
	size_t size = 0;
	int n = 0;
	switch (table) {
	case MODEL_LAYER:  base = m->layers;  size = sizeof *m->layers;  n = m->nlayers;  break;
	case MODEL_BLOCK:  base = m->blocks;  size = sizeof *m->blocks;  n = m->nblocks;  break;
	case MODEL_INPUT:  base = m->inputs;  size = sizeof *m->inputs;  n = m->ninputs;  break;
	case MODEL_OUTPUT: base = m->outputs; size = sizeof *m->outputs; n = m->noutputs; break;
	}
	for (int i = 0; name && i < n; i++) {
		const char *const *entry = (const char *const *)(const void *)((const char *)base + (size_t)i * size);
		if (strcmp(*entry, name) == 0)
			return i;
	}
	return -1;
}

/* Shortest of %.15g/%.16g/%.17g that reads back exactly. */
static const char *num(double v, char *buf, size_t n)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, n, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

static void print_expr(const Model *m, SymId e, SymStyle st, FILE *out)
{
	sym_print(m->sym, e, st, out);
}

static void print_seg(const Model *m, const MLayer *L, const MSeg *s, const char *what, SymStyle st, FILE *out)
{
	if (st == SYM_LATEX)
		fprintf(out, "%s_{%s}[%lld{:}%lld] &= ", what, L->name, (long long)s->lo, (long long)s->hi);
	else
		fprintf(out, "  %s %s[%lld:%lld] = ", what, L->name, (long long)s->lo, (long long)s->hi);
	/* A small literal vector is shown by value: [0, 0, 0.5][j]. */
	const SymNode *nd = sym_node(m->sym, s->value);
	if (st == SYM_TEXT && nd->kind == SYM_TENSOR && nd->nkids == 1 && m->tensors[nd->aux].kind == MT_CONST &&
	    !m->tensors[nd->aux].def && sym_tensor_shape(m->sym, nd->aux)[0] <= 16) {
		char nb[40];
		const double *v = m->tensors[nd->aux].data;
		for (int64_t i = 0; i < sym_tensor_shape(m->sym, nd->aux)[0]; i++)
			fprintf(out, "%s%s", i ? ", " : "[", num(v[i], nb, sizeof nb));
		fputs("][", out);
		print_expr(m, nd->kids[0], st, out);
		fputs("]\n", out);
		return;
	}
	print_expr(m, s->value, st, out);
	fputs(st == SYM_LATEX ? " \\\\\n" : "\n", out);
}

/* Biases folded into constant tensors: show their definitions. */
static void print_biases(const Model *m, FILE *out)
{
	bool header = false;
	for (int l = 0; l < m->nlayers; l++) {
		const SymNode *nd = sym_node(m->sym, m->layers[l].bias);
		if (nd->kind != SYM_TENSOR || m->tensors[nd->aux].kind != MT_CONST || !m->tensors[nd->aux].def)
			continue;
		const MTensor *t = &m->tensors[nd->aux];
		if (!header)
			fputs("biases\n", out);
		header = true;
		fprintf(out, "  %s[%s] = ", sym_tensor_name(m->sym, nd->aux), sym_index_name(m->sym, t->idx[0]));
		print_expr(m, t->def, SYM_TEXT, out);
		fputc('\n', out);
	}
}

static void print_text(const Model *m, FILE *out)
{
	SymStyle st = SYM_TEXT;
	char nb[40];
	fprintf(out, "model %s\n", m->path ? m->path : "(memory)");
	if (m->nparams) {
		fputs("params\n", out);
		for (int i = 0; i < m->nparams; i++) {
			if (m->params[i].is_string)
				fprintf(out, "  %s = \"%s\"\n", m->params[i].name, m->params[i].str);
			else
				fprintf(out, "  %s = %s\n", m->params[i].name, num(m->params[i].num, nb, sizeof nb));
		}
	}
	fputs("layers\n", out);
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		fprintf(out, "  %s[%lld] : %s  tau = %s%s\n", L->name, (long long)L->n, L->lagr_name, num(L->tau, nb, sizeof nb),
		        L->convex ? "" : "  (convexity not shown)");
	}
	if (m->ninputs) {
		fputs("inputs\n", out);
		for (int i = 0; i < m->ninputs; i++) {
			const MInput *in = &m->inputs[i];
			if (in->is_index)
				fprintf(out, "  %s[%lld] : index(%lld)\n", in->name, (long long)in->n, (long long)in->vocab);
			else
				fprintf(out, "  %s[%lld]\n", in->name, (long long)in->n);
		}
	}
	if (m->nblocks) {
		fputs("weights\n", out);
		for (int b = 0; b < m->nblocks; b++) {
			const MBlock *B = &m->blocks[b];
			fprintf(out, "  %s : %s -- %s  [%lld x %lld]  %s%s\n", B->name, m->layers[B->a].name,
			        m->layers[B->b].name, (long long)m->layers[B->a].n, (long long)m->layers[B->b].n,
			        B->dynamic ? "dynamic" : "static", B->self ? ", symmetric self-coupling" : "");
			if (B->dynamic) {
				const MTensor *wt = &m->tensors[B->w];
				fprintf(out, "    %s[%s, %s] = ", B->name, sym_index_name(m->sym, wt->idx[0]),
				        sym_index_name(m->sym, wt->idx[1]));
				print_expr(m, m->tensors[B->w].def, st, out);
				fputc('\n', out);
			}
		}
	}
	print_biases(m, out);
	fputs("lagrangians\n", out);
	for (int l = 0; l < m->nlayers; l++) {
		fprintf(out, "  L_%s = ", m->layers[l].name);
		print_expr(m, m->layers[l].L, st, out);
		fputc('\n', out);
	}
	fputs("activations\n", out);
	for (int l = 0; l < m->nlayers; l++) {
		fprintf(out, "  g_%s[j] = ", m->layers[l].name);
		print_expr(m, m->layers[l].act, st, out);
		fputc('\n', out);
	}
	fputs("hessians\n", out);
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		fprintf(out, "  d g_%s[j] / d %s[k] = ", L->name, L->name);
		if (!L->hess_structured) {
			print_expr(m, L->hdense, st, out);
			fputs("   (dense)\n", out);
			continue;
		}
		double one;
		if (sym_is_const(m->sym, L->hess.diag, &one) && one == 1) {
			fputs("delta(j, k)", out);
		} else {
			fputs("delta(j, k)*(", out);
			print_expr(m, L->hess.diag, st, out);
			fputc(')', out);
		}
		for (int r = 0; r < L->hess.nterms; r++) {
			fputs(" + (", out);
			print_expr(m, L->hess.u[r], st, out);
			fputs(")*(", out);
			print_expr(m, L->hess.v[r], st, out);
			fputc(')', out);
		}
		fprintf(out, "   (diagonal + rank %d)\n", L->hess.nterms);
	}
	fputs("energy\n  E = ", out);
	print_expr(m, m->energy, st, out);
	fputs("\ndynamics\n", out);
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		if (L->tau == 1)
			fprintf(out, "  d %s[j]/dt = ", L->name);
		else
			fprintf(out, "  %s * d %s[j]/dt = ", num(L->tau, nb, sizeof nb), L->name);
		print_expr(m, L->rhs, st, out);
		fputc('\n', out);
	}
	bool any = false;
	for (int l = 0; l < m->nlayers; l++)
		any = any || m->layers[l].ninit || m->layers[l].nclamp;
	if (any) {
		fputs("initial state (default 0) and clamps\n", out);
		for (int l = 0; l < m->nlayers; l++) {
			const MLayer *L = &m->layers[l];
			for (int s = 0; s < L->ninit; s++)
				print_seg(m, L, &L->init[s], "init", st, out);
			for (int s = 0; s < L->nclamp; s++)
				print_seg(m, L, &L->clamp[s], "clamp", st, out);
		}
	}
	if (m->noutputs) {
		fputs("outputs\n", out);
		for (int o = 0; o < m->noutputs; o++) {
			const MOutput *O = &m->outputs[o];
			if (O->rank)
				fprintf(out, "  %s[%s] = ", O->name, sym_index_name(m->sym, O->i));
			else
				fprintf(out, "  %s = ", O->name);
			print_expr(m, O->expr, st, out);
			fputc('\n', out);
		}
	}
}

static void print_latex(const Model *m, FILE *out)
{
	SymStyle st = SYM_LATEX;
	char nb[40];
	fputs("% damc derive --latex\n\\begin{align}\n", out);
	for (int l = 0; l < m->nlayers; l++) {
		fprintf(out, "\\mathcal{L}_{%s} &= ", m->layers[l].name);
		print_expr(m, m->layers[l].L, st, out);
		fputs(" \\\\\n", out);
	}
	for (int l = 0; l < m->nlayers; l++) {
		fprintf(out, "g^{%s}_{j} &= ", m->layers[l].name);
		print_expr(m, m->layers[l].act, st, out);
		fputs(" \\\\\n", out);
	}
	fputs("E &= ", out);
	print_expr(m, m->energy, st, out);
	fputs(" \\\\\n", out);
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		if (L->tau == 1)
			fprintf(out, "\\frac{d %s_{j}}{dt} &= ", L->name);
		else
			fprintf(out, "%s \\, \\frac{d %s_{j}}{dt} &= ", num(L->tau, nb, sizeof nb), L->name);
		print_expr(m, L->rhs, st, out);
		fputs(l + 1 < m->nlayers ? " \\\\\n" : "\n", out);
	}
	fputs("\\end{align}\n", out);
}

void model_print(const Model *m, SymStyle style, FILE *out)
{
	if (style == SYM_LATEX)
		print_latex(m, out);
	else
		print_text(m, out);
}

/* Free indices of e must be a subset of {a, b} (0 = none allowed). */
static int verify_free(const Model *m, SymId e, IdxId a, IdxId b, const char *what, const char *name, FILE *out)
{
	if (!e) {
		fprintf(out, "verify: %s of '%s' is missing\n", what, name);
		return 1;
	}
	const SymNode *nd = sym_node(m->sym, e);
	for (int i = 0; i < nd->nfree; i++) {
		if (nd->free[i] != a && nd->free[i] != b) {
			fprintf(out, "verify: %s of '%s' has the stray free index '%s'\n", what, name,
			        sym_index_name(m->sym, nd->free[i]));
			return 1;
		}
	}
	return 0;
}

int model_verify(const Model *m, FILE *out)
{
	int bad = 0;
	if (m->ntensors != sym_tensor_count(m->sym)) {
		fprintf(out, "verify: tensor table has %u entries, sym has %u\n", m->ntensors, sym_tensor_count(m->sym));
		bad++;
	}
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		bad += verify_free(m, L->L, 0, 0, "Lagrangian", L->name, out);
		bad += verify_free(m, L->act, L->j, 0, "activation", L->name, out);
		bad += verify_free(m, L->rhs, L->j, 0, "right-hand side", L->name, out);
		bad += verify_free(m, L->bias, L->j, 0, "bias", L->name, out);
		for (int s = 0; s < L->ninit; s++)
			bad += verify_free(m, L->init[s].value, L->j, 0, "init", L->name, out);
		for (int s = 0; s < L->nclamp; s++)
			bad += verify_free(m, L->clamp[s].value, L->j, 0, "clamp", L->name, out);
		if (L->hess_structured) {
			bad += verify_free(m, L->hess.diag, L->j, 0, "Hessian diagonal", L->name, out);
			for (int r = 0; r < L->hess.nterms; r++) {
				bad += verify_free(m, L->hess.u[r], L->j, 0, "Hessian u", L->name, out);
				bad += verify_free(m, L->hess.v[r], L->k, 0, "Hessian v", L->name, out);
			}
		}
	}
	for (int b = 0; b < m->nblocks; b++) {
		const MBlock *B = &m->blocks[b];
		const MTensor *t = &m->tensors[B->w];
		if (B->dynamic ? t->kind != MT_DYN || !t->def : !t->data) {
			fprintf(out, "verify: weights of block '%s' are inconsistent\n", B->name);
			bad++;
		}
	}
	bad += verify_free(m, m->energy, 0, 0, "energy", "model", out);
	for (int o = 0; o < m->noutputs; o++)
		bad += verify_free(m, m->outputs[o].expr, m->outputs[o].rank ? m->outputs[o].i : 0, 0, "output",
		                   m->outputs[o].name, out);
	return bad;
}
