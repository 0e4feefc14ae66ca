/* spice_emit.c - print a SpicePlan as a self-contained ngspice deck.
 *
 * Per neuron k of layer x (node names in docs/netlist.md):
 *     CI_k   x_i    0      C1 = tau * seconds_per_time_unit / R2
 *     RI_k   x_i_u  x_i    R2 = 1/G0               (leak and integration resistor)
 *     BU_k   x_i_u  0      V = R2*(i(VS_k) - i(VN_k)) + self*V(x_i_g) + vpu*bias
 *     BG_k   x_i_g  0      V = vpu * g(V(x_.)/vpu)     (activation block)
 *     VS_k   x_i_lp x_i_g  0                        (senses the line current)
 *     BN_k   x_i_gn 0      V = -V(x_i_g)            (inverted line, signed blocks)
 *     VN_k   x_i_ln x_i_gn 0
 * so that C1 dV(x)/dt = (V(u) - V(x))/R2, i.e. R2 C1 dx/dt = sum w g + b - x
 * (paper Eq. 3; this is the Thevenin form of Fig. 1's current-driven RC
 * neuron).  Crossbars are resistors between lines; clamped neurons are DC
 * sources; initial states are .ic.  At --level amplifier the ideal sources
 * BG, BN and BU become targets followed by an op-amp macromodel (finite
 * gain, gain-bandwidth product, slew rate and output swing from the device
 * profile); the summing amplifier runs at its noise gain 1 + sum |w|.
 *
 * Collective activations (softmax, layernorm) reduce over the layer: each
 * reduction with no free index is computed once, by an auxiliary behavioural
 * node of the layer (x_r0, ...; values in model units), and the neurons'
 * activations refer to it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spice.h"

/* Shortest decimal that reads back as v (-0 prints as 0). */
static const char *num(char *buf, double v)
{
	if (v == 0)
		v = 0;
	for (int prec = 12; prec <= 17; prec++) {
		snprintf(buf, 40, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

/* A component value: 15 significant digits (far below any tolerance) read better. */
static const char *part(char *buf, double v)
{
	snprintf(buf, 40, "%.15g", v);
	return buf;
}

/* ---- activations through the SPICE printing style -------------------------- */

typedef struct EmitCtx {
	SpicePlan *p;
	int layer;
	SymId *red; int nred;     /* hoisted reductions of the layer, by id */
	SymId *def;               /* what each aux node computes (red[r] itself, or its rewrite) */
	SymId defining;           /* the reduction being defined (printed in place) */
	char text[64];
} EmitCtx;

static int emit_tensor(void *user, TensorId t, int n, const int64_t *idx, char *buf, size_t len)
{
	EmitCtx *E = user;
	const Model *m = E->p->m;
	const MTensor *mt = &m->tensors[t];
	char nb[40];
	if (mt->kind == MT_STATE) {
		int64_t k = model_layer_offset(m, mt->layer) + (n ? idx[0] : 0);
		char node[160];
		spice_node(E->p, k, node, sizeof node);
		snprintf(buf, len, "(V(%s)/%s)", node, num(nb, E->p->vpu));
		return 0;
	}
	if (mt->kind == MT_ACT || mt->kind == MT_FORMAL || !E->p->ev.data[t])
		return -1;
	const int64_t *sh = sym_tensor_shape(m->sym, t);
	int64_t off = 0;
	for (int d = 0; d < n; d++)
		off = off * sh[d] + idx[d];
	double v = E->p->ev.data[t][off];
	snprintf(buf, len, v < 0 ? "(%s)" : "%s", num(nb, v));
	return 0;
}

static const char *emit_reduction(void *user, SymId e)
{
	EmitCtx *E = user;
	if (e == E->defining)
		return NULL;
	for (int r = 0; r < E->nred; r++)
		if (E->red[r] == e) {
			snprintf(E->text, sizeof E->text, "V(%s_r%d)", E->p->lname[E->layer], r);
			return E->text;
		}
	return NULL;
}

static void push_aux(EmitCtx *E, SymId id, SymId def)
{
	for (int r = 0; r < E->nred; r++)
		if (E->red[r] == id)
			return;
	E->red = realloc(E->red, (size_t)(E->nred + 1) * sizeof *E->red);
	E->def = realloc(E->def, (size_t)(E->nred + 1) * sizeof *E->def);
	if (!E->red || !E->def)
		abort();
	E->red[E->nred] = id;
	E->def[E->nred++] = def;
}

/* Reductions of e that have no free index, innermost first (ids ascend). */
static void collect_reductions(const SymCtx *c, SymId e, EmitCtx *E)
{
	uint32_t n = sym_count(c);
	uint8_t *live = calloc(n, 1);
	if (!live)
		abort();
	live[e] = 1;
	for (SymId x = e; x > 0; x--) {
		if (!live[x])
			continue;
		const SymNode *nd = sym_node(c, x);
		for (int i = 0; i < nd->nkids; i++)
			live[nd->kids[i]] = 1;
	}
	for (SymId x = 1; x <= e; x++) {
		const SymNode *nd = sym_node(c, x);
		if (!live[x] || nd->nfree != 0 ||
		    (nd->kind != SYM_SUM && nd->kind != SYM_LSE && nd->kind != SYM_MAX))
			continue;
		if (nd->kind != SYM_LSE) {
			push_aux(E, x, x);
			continue;
		}
		/* logsumexp(i, b) = m + log(sum(i, exp(b - m))) with m = max(i, b) its own
		 * node, so the deck computes the maximum once, not once per term. */
		SymCtx *cx = E->p->m->sym;
		SymId body = nd->kids[0];
		SymId mx = sym_reduce(cx, SYM_MAX, nd->aux, body);
		SymId sum = sym_reduce(cx, SYM_SUM, nd->aux, sym_fn(cx, SYMFN_EXP, sym_sub(cx, body, mx)));
		push_aux(E, mx, mx);
		push_aux(E, x, sym_add(cx, mx, sym_fn(cx, SYMFN_LOG, sum)));
	}
	free(live);
}

static char *emit_expr(EmitCtx *E, SymId e, IdxId j, int64_t jv, Arena *a, Diags *d)
{
	const Model *m = E->p->m;
	int64_t *idx = calloc(sym_index_count(m->sym) + 1, sizeof *idx);
	if (!idx)
		abort();
	if (j)
		idx[j] = jv;
	SymSpiceHooks h = { E, emit_tensor, emit_reduction, (const double *const *)E->p->ev.data };
	char err[256] = "";
	char *s = sym_to_spice(m->sym, e, idx, &h, a, err, sizeof err);
	free(idx);
	if (!s)
		diag_error(d, backend_loc(m->layers[E->layer].loc), "the activation of layer '%s' has no "
		           "SPICE form: %s", m->layers[E->layer].name, err[0] ? err : "unsupported term");
	return s;
}

/* ---- pieces of the deck ------------------------------------------------------- */

static void emit_header(const SpicePlan *p, FILE *out)
{
	char a[40], b[40], c[40];
	const Model *m = p->m;
	fprintf(out, "%s\n", p->opt.title ? p->opt.title : (m->path ? m->path : "damc netlist"));
	fprintf(out, "* damc: volts_per_unit=%s seconds_per_time_unit=%s\n", num(a, p->vpu), num(b, p->spu));
	fprintf(out, "* generated by damc %s from %s (level %s)\n", DAM_VERSION, m->path ? m->path : "?",
	        p->opt.level == LEVEL_AMPLIFIER ? "amplifier" : "behavioural");
	fprintf(out, "* unit weight G0 = %s S; leak/integration resistor R2 = 1/G0 = %s Ohm; "
	        "C1 = tau * %s s / R2\n", part(a, p->g0), part(b, p->r2), part(c, p->spu));
	fprintf(out, "* node <layer>_<i> = capacitor voltage of neuron i = volts_per_unit * x_i "
	        "(docs/netlist.md)\n");
	if (p->opt.level == LEVEL_AMPLIFIER && p->opt.device) {
		const DevAmp *A = &p->opt.device->amp;
		fprintf(out, "* amplifiers: device '%s': A0 = %g, GBW = %g Hz, SR = %g V/s, swing %g..%g V\n",
		        p->opt.device->name, A->gain, A->gbw, A->slew, A->vmin, A->vmax);
	}
}

static void emit_amp_subckt(const SpicePlan *p, FILE *out)
{
	const DevAmp *A = &p->opt.device->amp;
	char s1[40], s2[40], s3[40], s4[40], s5[40], s6[40];
	double cp = 1e-12, gm = 2 * 3.14159265358979323846 * A->gbw * cp, ro = A->gain / gm, isr = A->slew * cp;
	fprintf(out, "\n* single-pole op-amp macromodel: open-loop gain gm*ro = A0, pole at GBW/A0,\n"
	        "* slew rate isr/cp (tanh-limited input stage), output clipped to the swing\n");
	fprintf(out, ".subckt damc_amp inp inn out\n");
	fprintf(out, "B1 0 n1 I=%s*tanh(%s*(V(inp)-V(inn)))\n", num(s1, isr), num(s2, gm / isr));
	fprintf(out, "R1 n1 0 %s\nC1 n1 0 %s\n", part(s3, ro), part(s4, cp));
	fprintf(out, "B2 out 0 V=max(%s, min(%s, V(n1)))\n", num(s5, A->vmin), num(s6, A->vmax));
	fprintf(out, ".ends damc_amp\n");
}

/* A voltage source: ideal, or at the amplifier level a target and a
 * follower of closed-loop gain k. */
static void emit_driver(const SpicePlan *p, FILE *out, const char *elem, const char *node,
                        const char *expr, double k)
{
	char a[40];
	if (p->opt.level != LEVEL_AMPLIFIER) {
		fprintf(out, "B%s %s 0 V=%s\n", elem, node, expr);
		return;
	}
	if (k == 1) {
		fprintf(out, "B%s %s_t 0 V=%s\n", elem, node, expr);
		fprintf(out, "X%s %s_t %s %s damc_amp\n", elem, node, node, node);
		return;
	}
	fprintf(out, "B%s %s_t 0 V=(%s)/%s\n", elem, node, expr, num(a, k));
	fprintf(out, "E%s %s_f 0 %s 0 %s\n", elem, node, node, num(a, 1 / k));
	fprintf(out, "X%s %s_t %s_f %s damc_amp\n", elem, node, node, node);
}

static int emit_layer_aux(EmitCtx *E, FILE *out, Arena *a, Diags *d)
{
	const MLayer *L = &E->p->m->layers[E->layer];
	collect_reductions(E->p->m->sym, L->act, E);
	for (int r = 0; r < E->nred; r++) {
		E->defining = E->red[r];
		char *s = emit_expr(E, E->def[r], 0, 0, a, d);
		if (!s)
			return -1;
		fprintf(out, "BR_%s_r%d %s_r%d 0 V=%s\n", E->p->lname[E->layer], r, E->p->lname[E->layer],
		        r, s);
	}
	E->defining = 0;
	return 0;
}

static int emit_neuron(EmitCtx *E, int64_t k, FILE *out, Arena *a, Diags *d)
{
	SpicePlan *p = E->p;
	const SpiceNeuron *nr = &p->nr[k];
	const MLayer *L = &p->m->layers[nr->layer];
	char node[160], v1[40], v2[40], v3[40];
	spice_node(p, k, node, sizeof node);
	if (nr->clamped)
		fprintf(out, "VC_%s %s 0 DC %s\n", node, node, num(v1, p->vpu * nr->value));
	if (nr->line) {
		char *act = emit_expr(E, L->act, L->j, nr->i, a, d);
		if (!act)
			return -1;
		char expr[64], elem[200], gnode[200];
		size_t n = strlen(act) + 64;
		char *full = malloc(n);
		if (!full)
			abort();
		snprintf(full, n, "%s*%s", num(v1, p->vpu), act);
		snprintf(elem, sizeof elem, "G_%s", node);
		snprintf(gnode, sizeof gnode, "%s_g", node);
		emit_driver(p, out, elem, gnode, full, 1);
		free(full);
		fprintf(out, "VS_%s %s_lp %s_g 0\n", node, node, node);
		if (nr->nline) {
			snprintf(elem, sizeof elem, "N_%s", node);
			snprintf(gnode, sizeof gnode, "%s_gn", node);
			snprintf(expr, sizeof expr, "-V(%.40s_g)", node);
			emit_driver(p, out, elem, gnode, expr, 1);
			fprintf(out, "VN_%s %s_ln %s_gn 0\n", node, node, node);
		}
	}
	if (nr->clamped)
		return 0;
	/* Summing amplifier: line current (TIA), self-term cancellation, bias. */
	char sum[600], elem[200], unode[200];
	int len = snprintf(sum, sizeof sum, "%s", num(v1, p->vpu * nr->bias));
	if (nr->line) {
		len += snprintf(sum + len, sizeof sum - (size_t)len, "+%s*(i(VS_%s)%s%s%s)", num(v2, p->r2),
		                node, nr->nline ? "-i(VN_" : "", nr->nline ? node : "", nr->nline ? ")" : "");
		if (nr->self != 0)
			snprintf(sum + len, sizeof sum - (size_t)len, "+%s*V(%s_g)", num(v3, nr->self), node);
	}
	snprintf(elem, sizeof elem, "U_%s", node);
	snprintf(unode, sizeof unode, "%s_u", node);
	emit_driver(p, out, elem, unode, sum, 1 + nr->absum);
	fprintf(out, "RI_%s %s_u %s %s\n", node, node, node, part(v1, p->r2));
	fprintf(out, "CI_%s %s 0 %s\n", node, node, part(v2, L->tau * p->spu / p->r2));
	return 0;
}

static int emit_layers(SpicePlan *p, FILE *out, Arena *a, Diags *d)
{
	const Model *m = p->m;
	char t1[40], t2[40];
	for (int l = 0; l < m->nlayers; l++) {
		const MLayer *L = &m->layers[l];
		fprintf(out, "\n* ---- layer %s[%lld]: %s, tau = %s (%s s)\n", L->name, (long long)L->n,
		        L->lagr_name ? L->lagr_name : "?", num(t1, L->tau), num(t2, L->tau * p->spu));
		EmitCtx E = { p, l, NULL, 0, NULL, 0, "" };
		int rc = emit_layer_aux(&E, out, a, d);
		for (int64_t i = 0; i < L->n && rc == 0; i++)
			rc = emit_neuron(&E, model_layer_offset(m, l) + i, out, a, d);
		free(E.red);
		free(E.def);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static void emit_blocks(const SpicePlan *p, FILE *out)
{
	const Model *m = p->m;
	char g[40], na[160], nb[160];
	size_t e = 0;
	for (int b = 0; b < m->nblocks; b++) {
		const MBlock *B = &m->blocks[b];
		const SpiceBlockInfo *bi = &p->blk[b];
		fprintf(out, "\n* ---- weight block %s : %s -- %s (%lldx%lld, %lld resistors%s)\n", B->name,
		        m->layers[B->a].name, m->layers[B->b].name, (long long)m->layers[B->a].n,
		        (long long)m->layers[B->b].n, (long long)bi->nonzero,
		        B->dynamic ? ", dynamic rows: programmed for this input" : "");
		if (B->self)
			fprintf(out, "* symmetric self-coupling: one resistor joins neurons j < k; the diagonal "
			        "is part of the self path\n");
		if (bi->differential)
			fprintf(out, "* signed: %lld negative weights; encoding: differential pair (layer '%s' "
			        "drives an inverted line -V(g); a negative weight is a resistor G0*|w| to it), "
			        "chosen because it keeps one resistor per crosspoint\n", (long long)bi->negative,
			        m->layers[B->b].name);
		else
			fprintf(out, "* non-negative: one resistor G0*w per crosspoint\n");
		for (; e < p->nxp && p->xp[e].block == b; e++) {
			const SpiceXp *x = &p->xp[e];
			spice_node(p, x->a, na, sizeof na);
			spice_node(p, x->b, nb, sizeof nb);
			fprintf(out, "RX_%s_%s %s_lp %s_%s %s\n", na, nb, na, nb, x->w < 0 ? "ln" : "lp",
			        part(g, p->r2 / fabs(x->w)));
		}
	}
}

static void emit_analysis(const SpicePlan *p, FILE *out)
{
	char a[40], b[40], node[160];
	fprintf(out, "\n* ---- initial state, analysis\n");
	for (int64_t k = 0; k < p->n; k++) {
		if (p->nr[k].clamped)
			continue;
		spice_node(p, k, node, sizeof node);
		fprintf(out, ".ic V(%s)=%s\n", node, num(a, p->vpu * p->nr[k].value));
	}
	fprintf(out, ".save time");
	for (int64_t k = 0; k < p->n; k++) {
		spice_node(p, k, node, sizeof node);
		fprintf(out, " V(%s)", node);
	}
	fprintf(out, "\n.options reltol=1e-6 abstol=1e-15 vntol=1e-9 chgtol=1e-20 itl4=100\n");
	double step = p->opt.dt * p->spu;
	fprintf(out, ".tran %s %s 0 %s uic\n", part(a, step), part(b, p->opt.t_end * p->spu), part(a, step));
	fprintf(out, ".end\n");
}

int spice_write(SpicePlan *p, FILE *out, Diags *d)
{
	Arena a;
	arena_init(&a);
	emit_header(p, out);
	if (p->opt.level == LEVEL_AMPLIFIER) {
		if (!p->opt.device) {
			diag_error(d, (Loc){ 0, 0, 0 }, "--level amplifier needs a device profile (--device NAME)");
			arena_free(&a);
			return -1;
		}
		emit_amp_subckt(p, out);
	}
	int rc = emit_layers(p, out, &a, d);
	if (rc == 0) {
		emit_blocks(p, out);
		emit_analysis(p, out);
	}
	arena_free(&a);
	return rc;
}

static int spice_emit(const Model *m, const BackendOptions *opt, Diags *d, FILE *out)
{
	SpicePlan *p = spice_plan(m, opt, d);
	if (!p)
		return -1;
	int rc = spice_write(p, out, d);
	spice_plan_free(p);
	return rc;
}

const Backend spice_backend = {
	"spice", "an ngspice netlist of the analog circuit (crossbars, RC neurons, activation blocks)",
	spice_emit,
};
