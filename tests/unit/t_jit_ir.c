/* t_jit_ir.c - shape of the JIT's LLVM IR: named kernels, size-independent code, errors.
 *
 * A DenseAM with visible v[n] (identity, v[0:2] clamped to an input), hidden
 * h[n] (softmax) and a dense n x n constant weight block is compiled for
 * n = 600 and n = 1000.  The unoptimised module must define every kernel by
 * name and have the same number of lines for both sizes (the weights are
 * run-time data; code is loops, never unrolled per neuron).  Both sizes are
 * above the size from which the interchanged sums are accumulated with fused
 * multiply-adds (jit_axpy.c: n x n >= 4096), from which the weights are held
 * by reference (JIT_BY_REF_MIN = 65536 elements) and from which loops around
 * long inner loops carry unroll-and-jam metadata (jit_emit.c: JIT_JAM_INNER =
 * 512), each of which changes the code once at a smaller size.
 * The big model must still run (finite energy, clamped neurons at rest).
 * A model that reads the state in a dynamic tensor's definition must fail to
 * compile with a message naming the tensor.
 */
#include <stdlib.h>
#include <string.h>

#include "jit.h"
#include "tap.h"

typedef struct Net {
	Arena arena;
	Model m;
	SymCtx *c;
	TensorId w, bits, xv, gv, xh, gh, bad;
	IdxId jv, kv, jh, kh, i, mu, bi;
} Net;

static SymId at1(Net *N, TensorId t, IdxId i)
{
	SymId a = sym_idx(N->c, i);
	return sym_at(N->c, t, 1, &a);
}

static SymId at2(Net *N, TensorId t, IdxId a, IdxId b)
{
	SymId k[2] = {sym_idx(N->c, a), sym_idx(N->c, b)};
	return sym_at(N->c, t, 2, k);
}

static void net_tensors(Net *N, int64_t n, bool bad)
{
	int64_t s2[2] = {n, n}, s1 = n, sb = 2;
	SymCtx *c = N->c;
	N->w = sym_tensor_new(c, "W", 2, s2);
	N->bits = sym_tensor_new(c, "bits", 1, &sb);
	N->xv = sym_tensor_new(c, "x_v", 1, &s1);
	N->gv = sym_tensor_new(c, "g_v", 1, &s1);
	N->xh = sym_tensor_new(c, "x_h", 1, &s1);
	N->gh = sym_tensor_new(c, "g_h", 1, &s1);
	N->bad = bad ? sym_tensor_new(c, "bad", 1, &s1) : 0;
	N->jv = sym_index_new(c, "j", n);
	N->kv = sym_index_new(c, "k", n);
	N->jh = sym_index_new(c, "mu_j", n);
	N->kh = sym_index_new(c, "mu_k", n);
	N->i = sym_index_new(c, "i", n);
	N->mu = sym_index_new(c, "mu", n);
	N->bi = sym_index_new(c, "b", n);

	Model *m = &N->m;
	m->ntensors = sym_tensor_count(c);
	m->tensors = arena_alloc(&N->arena, m->ntensors * sizeof *m->tensors);
	double *w = arena_alloc(&N->arena, (size_t)(n * n) * sizeof *w);
	unsigned s = 1;
	for (int64_t k = 0; k < n * n; k++) {
		s = s * 1103515245u + 12345u;
		w[k] = (double)((s >> 8) & 0xffff) / 65536.0;
	}
	m->tensors[N->w] = (MTensor){.kind = MT_CONST, .data = w};
	m->tensors[N->bits] = (MTensor){.kind = MT_INPUT};
	m->tensors[N->xv] = (MTensor){.kind = MT_STATE, .layer = 0};
	m->tensors[N->gv] = (MTensor){.kind = MT_ACT, .layer = 0};
	m->tensors[N->xh] = (MTensor){.kind = MT_STATE, .layer = 1};
	m->tensors[N->gh] = (MTensor){.kind = MT_ACT, .layer = 1};
	if (bad)
		m->tensors[N->bad] = (MTensor){.kind = MT_DYN, .idx = {N->bi}, .def = at1(N, N->xv, N->bi)};
}

static SymId net_lse(Net *N)
{
	return sym_reduce(N->c, SYM_LSE, N->mu, at1(N, N->xh, N->mu));
}

static void net_layers(Net *N, int64_t n)
{
	SymCtx *c = N->c;
	Model *m = &N->m;
	m->nlayers = 2;
	m->layers = arena_alloc(&N->arena, 2 * sizeof *m->layers);
	MLayer *v = &m->layers[0], *h = &m->layers[1];
	*v = (MLayer){.name = "v", .n = n, .tau = 1, .x = N->xv, .g = N->gv, .j = N->jv, .k = N->kv};
	v->act = at1(N, N->xv, N->jv);
	v->rhs = sym_sub(c, sym_reduce(c, SYM_SUM, N->mu, sym_mul(c, at2(N, N->w, N->mu, N->jv), at1(N, N->gh, N->mu))),
	                 at1(N, N->xv, N->jv));
	v->clamp = arena_alloc(&N->arena, sizeof *v->clamp);
	v->clamp[0] = (MSeg){0, 2, at1(N, N->bits, N->jv)};
	v->nclamp = 1;
	*h = (MLayer){.name = "h", .n = n, .tau = 0.1, .x = N->xh, .g = N->gh, .j = N->jh, .k = N->kh};
	h->act = sym_fn(c, SYMFN_EXP, sym_sub(c, at1(N, N->xh, N->jh), net_lse(N)));
	h->bias = sym_mul(c, sym_const(c, -0.5),
	                  sym_reduce(c, SYM_SUM, N->i, sym_pow(c, at2(N, N->w, N->jh, N->i), sym_const(c, 2))));
	SymId drive = sym_reduce(c, SYM_SUM, N->i, sym_mul(c, at2(N, N->w, N->jh, N->i), at1(N, N->gv, N->i)));
	h->rhs = sym_sub(c, sym_add(c, drive, h->bias), at1(N, N->xh, N->jh));
	SymId ev = sym_reduce(c, SYM_SUM, N->i, sym_mul(c, sym_const(c, 0.5), sym_pow(c, at1(N, N->xv, N->i), sym_const(c, 2))));
	SymId inter = sym_reduce(c, SYM_SUM, N->mu, sym_mul(c, at1(N, N->gh, N->mu), sym_reduce(c, SYM_SUM, N->i,
	                         sym_mul(c, at2(N, N->w, N->mu, N->i), at1(N, N->gv, N->i)))));
	m->energy = sym_sub(c, sym_sub(c, ev, net_lse(N)), inter);
	m->noutputs = 1;
	m->outputs = arena_alloc(&N->arena, sizeof *m->outputs);
	SymId last = sym_const(c, (double)(n - 1));
	m->outputs[0] = (MOutput){.name = "y", .rank = 0, .n = 1, .expr = sym_at(c, N->xv, 1, &last)};
	m->ninputs = 1;
	m->inputs = arena_alloc(&N->arena, sizeof *m->inputs);
	m->inputs[0] = (MInput){.name = "bits", .n = 2, .t = N->bits};
}

static void net_build(Net *N, int64_t n, bool bad)
{
	memset(N, 0, sizeof *N);
	arena_init(&N->arena);
	N->m.arena = &N->arena;
	N->m.sym = N->c = sym_new(&N->arena);
	net_tensors(N, n, bad);
	net_layers(N, n);
}

/* Compiles the size-n net; returns its unoptimised IR (malloc) or NULL. */
static char *net_ir(int64_t n, Jit **out)
{
	Net N;
	char err[256] = "", *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	net_build(&N, n, false);
	JitOptions opt = {.opt_level = 3, .dump_ir_unopt = f};
	Jit *j = jit_compile(&N.m, &opt, err, sizeof err);
	fclose(f);
	if (!j)
		diag("n = %lld: %s", (long long)n, err);
	*out = j;
	arena_free(&N.arena);
	return buf;
}

static void count_lines(const char *s, int *code, int *globals)
{
	*code = *globals = 0;
	for (const char *p = s; p && *p;) {
		const char *e = strchr(p, '\n');
		if (*p == '@')
			++*globals;
		else
			++*code;
		p = e ? e + 1 : p + strlen(p);
	}
}

static void test_sizes(void)
{
	Jit *j10, *j1000;   /* "10": the smaller size, n = 600 (weights by reference and loops jammed at both) */
	char *ir10 = net_ir(600, &j10), *ir1000 = net_ir(1000, &j1000);
	static const char *const fns[] = {"define void @dam_setup(", "define void @dam_init_state(",
	                                  "define void @dam_rhs(", "define double @dam_energy(",
	                                  "define void @dam_acts(", "define void @dam_outputs(",
	                                  "define void @dam_euler("};
	int named = ir10 != NULL;
	for (size_t k = 0; k < sizeof fns / sizeof *fns && named; k++)
		named = strstr(ir10, fns[k]) != NULL;
	ok(j10 && j1000, "both sizes compile");
	ok(named, "the unoptimised dump defines every kernel by name");
	int c10, g10, c1000, g1000;
	count_lines(ir10, &c10, &g10);
	count_lines(ir1000, &c1000, &g1000);
	diag("IR lines: n = 600: %d code + %d globals, n = 1000: %d code + %d globals (%zu vs %zu bytes)",
	     c10, g10, c1000, g1000, ir10 ? strlen(ir10) : 0, ir1000 ? strlen(ir1000) : 0);
	ok(c10 == c1000 && g10 == g1000 && c10 > 0, "IR line count does not depend on layer size");

	if (j1000) {
		const JitKernels *k = jit_kernels(j1000);
		double *ws = calloc(k->ws_size, sizeof *ws), *x = calloc(k->nstate, sizeof *x),
		       *d = calloc(k->nstate, sizeof *d), *zero = calloc(1000 * 1000, sizeof *zero);
		for (size_t i = 0; i < k->nstate; i++)      /* the model is gone: its taus are 1 */
			ws[k->tau_off + i] = 1;
		for (TensorId t = 1; t < 64; t++)           /* and its weights zero */
			jit_ws_point(j1000, ws, t, zero);
		double *sb = calloc(jit_static_size(j1000) + 1, sizeof *sb);
		jit_ws_point_static(j1000, ws, sb);         /* the static caches: setup_static fills them */
		k->setup_static(ws);
		ws[k->input_off[0]] = 1;
		k->setup(ws);
		k->init_state(ws, x);
		k->euler(ws, x, 1e-3, 20);
		k->rhs(ws, x, d);
		double e = k->energy(ws, x);
		ok(isfinite(e) && x[0] == 1 && x[1] == 0 && d[0] == 0 && d[1] == 0,
		   "n = 1000 runs: energy %g finite, clamped v[0:2] = (1, 0) at rest", e);
		free(ws), free(x), free(d), free(zero), free(sb);
	} else {
		ok(0, "n = 1000 runs");
	}
	jit_free(j10);
	jit_free(j1000);
	free(ir10);
	free(ir1000);
}

static void test_error(void)
{
	Net N;
	char err[256] = "";
	net_build(&N, 5, true);
	Jit *j = jit_compile(&N.m, NULL, err, sizeof err);
	ok(j == NULL && strstr(err, "'x_v'") != NULL, "reading the state in a dynamic tensor is an error");
	diag("message: %s", err);
	jit_free(j);
	arena_free(&N.arena);
}

int main(void)
{
	plan(5);
	test_sizes();
	test_error();
	return done_testing();
}
