/* t_stdlib.c - every stdlib Lagrangian, through the real stdlib/lagrangians.dam.
 *
 * A model with one layer per Lagrangian (5 neurons each) is compiled by the
 * front end; at seeded random states the derived activation is compared with
 * a central finite difference of L (tolerance 1e-7) and the derived Hessian
 * (structured form, applied to unit vectors) with a central finite
 * difference of the activation (tolerance 1e-6).  The symbolic DAG must not
 * grow with layer sizes: the same model with 5 and 5000 neurons per layer
 * has the same number of expression nodes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend.h"
#include "tap.h"

static const char *const lagr[] = {
	"identity", "relu", "softmax(2)", "sigmoid", "tanh", "layernorm(1.5, 0.1)", "repu(3)",
};
enum { NL = sizeof lagr / sizeof lagr[0] };

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(double lo, double hi)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return lo + (hi - lo) * (double)(rng >> 11) / 9007199254740992.0;
}

static const char *write_model(int n)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/t_stdlib_%d_%ld.dam", n, (long)getpid());
	FILE *f = fopen(path, "w");
	if (!f)
		return NULL;
	fputs("import \"lagrangians\"\n", f);
	for (int l = 0; l < NL; l++)
		fprintf(f, "layer l%d[%d] : %s\n", l, n, lagr[l]);
	fclose(f);
	return path;
}

static Model *compile(const char *path, Arena *a, Diags *d)
{
	FrontendOptions fo = { NULL, 0, DAM_SOURCE_DIR "/stdlib", NULL, 0 };
	diags_init(d, a);
	Model *m = dam_frontend_compile(path, &fo, d, a);
	if (!m)
		diag_render(d, stdout);
	return m;
}

int main(void)
{
	Arena a;
	arena_init(&a);
	Diags d;
	const char *path = write_model(5);
	Model *m = path ? compile(path, &a, &d) : NULL;
	ok(m != NULL, "a model with every stdlib Lagrangian compiles");
	if (!m)
		return done_testing();
	int64_t ns = model_state_size(m);
	double *x = calloc((size_t)ns, sizeof *x), *xp = calloc((size_t)ns, sizeof *xp);
	double *gp = calloc((size_t)ns, sizeof *gp), *gm = calloc((size_t)ns, sizeof *gm);
	double *e = calloc((size_t)ns, sizeof *e), *hv = calloc((size_t)ns, sizeof *hv);
	ModelEval ev;
	model_eval_init(&ev, m, NULL);
	for (int l = 0; l < NL; l++) {
		const MLayer *L = &m->layers[l];
		int64_t off = model_layer_offset(m, l), n = L->n;
		double worst_g = 0, worst_h = 0;
		for (int trial = 0; trial < 20; trial++) {
			for (int64_t i = 0; i < ns; i++)
				x[i] = urand(-2, 2);
			for (int64_t j = 0; j < n; j++) {
				double h = 1e-5;
				memcpy(xp, x, (size_t)ns * sizeof *x);
				xp[off + j] = x[off + j] + h;
				model_eval_state(&ev, xp);
				double Lp = model_eval_expr(&ev, L->L, 0, 0);
				memcpy(gp, ev.act, (size_t)ns * sizeof *gp);
				xp[off + j] = x[off + j] - h;
				model_eval_state(&ev, xp);
				double Lm = model_eval_expr(&ev, L->L, 0, 0);
				memcpy(gm, ev.act, (size_t)ns * sizeof *gm);
				model_eval_state(&ev, x);
				double fd = (Lp - Lm) / (2 * h);
				worst_g = fmax(worst_g, fabs(ev.act[off + j] - fd) / fmax(1, fabs(fd)));
				/* column j of the Hessian: H e_j vs (g(x+h e_j) - g(x-h e_j)) / 2h */
				memset(e, 0, (size_t)ns * sizeof *e);
				e[j] = 1;
				model_eval_hess_mv(&ev, l, e, hv);
				for (int64_t k = 0; k < n; k++) {
					double fdh = (gp[off + k] - gm[off + k]) / (2 * h);
					worst_h = fmax(worst_h, fabs(hv[k] - fdh) / fmax(1, fabs(fdh)));
				}
			}
		}
		ok(worst_g <= 1e-7, "%s: activation = dL/dx (max rel err vs central difference %.3g, tol 1e-7)", lagr[l],
		   worst_g);
		ok(worst_h <= 1e-6, "%s: Hessian (%s, rank %d) = dg/dx (max rel err %.3g, tol 1e-6)", lagr[l],
		   L->hess_structured ? "diagonal + low rank" : "dense", L->hess.nterms, worst_h);
		ok(L->convex, "%s: shown convex", lagr[l]);
	}
	ok(m->layers[2].hess_structured && m->layers[2].hess.nterms == 1, "softmax Hessian is diagonal + rank 1");
	ok(m->layers[5].hess_structured && m->layers[5].hess.nterms <= 3, "layernorm Hessian is diagonal + rank %d",
	   m->layers[5].hess.nterms);
	uint32_t small = sym_count(m->sym);
	model_eval_free(&ev);
	remove(path);
	Arena a2;
	arena_init(&a2);
	Diags d2;
	path = write_model(5000);
	Model *big = path ? compile(path, &a2, &d2) : NULL;
	ok(big && sym_count(big->sym) <= small + 16, "expression DAG size does not grow with layer size (%u nodes at n=5, %u at n=5000; constants may fold differently)",
	   small, big ? sym_count(big->sym) : 0);
	if (path)
		remove(path);
	diags_free(&d2);
	arena_free(&a2);
	free(x);
	free(xp);
	free(gp);
	free(gm);
	free(e);
	free(hv);
	diags_free(&d);
	arena_free(&a);
	return done_testing();
}
