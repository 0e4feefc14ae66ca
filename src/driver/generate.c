/* generate.c - `damc generate`: autoregressive generation with a compiled
 * model (paper Sec. 6.2).
 *
 *   damc generate MODEL.dam [-c CFG.lua] [-D ...] --context TOKENS --steps N
 *                 [--temperature T] [--seed S] [--output NAME] [--json] [run options]
 *
 * The model has one token input (index(V), L positions: the context window)
 * and a vector output of V values (the logits).  Each step relaxes the
 * circuit on the window (one run of the compiled simulator: the attention
 * rows are the embeddings of the window's tokens), decodes the logits, picks
 * the next token (argmax, or with --temperature T > 0 a sample of
 * softmax(logits / T) from a splitmix64 generator seeded with S), and slides
 * the window: the oldest token drops out and the new one takes the last
 * position, so its embedding is what the freed attention row holds at the
 * next relaxation.  Text output: the context and the generated tokens;
 * --json: one line per step (window, logits, token, status, t_converged).
 * The same flags and seed give the same bytes.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "report.h"
#include "run.h"
#include "sim.h"

static const char gen_usage[] =
	"usage: damc generate MODEL.dam --context TOKENS --steps N [options]\n"
	"\n"
	"Autoregressive generation (paper Sec. 6.2): relax on the context window, decode the\n"
	"logits, pick the next token, slide the window, relax again.\n"
	"\n"
	"  --context TOKENS       the first window: digits (e.g. 11100011) or a comma-separated\n"
	"                         list of token ids, as many as the model's token input holds\n"
	"  --steps N              tokens to generate (1..100000)\n"
	"  --temperature T        0 (default): greedy argmax; T > 0: sample softmax(logits / T)\n"
	"  --seed S               the sampler's seed (default 1)\n"
	"  --output NAME          the logits output (default: the first vector output of V values)\n"
	"  --json                 one JSON object per step\n"
	"  -c FILE, -D NAME=VALUE, --solver, --dt, --t-end, ...   as for damc run (each step is one run)\n";

typedef struct GenArgs {
	RunArgs ra;
	const char *context;
	long steps;
	double temperature;
	unsigned long long seed;
	const char *output;
} GenArgs;

static int gen_parse(GenArgs *g, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			g->ra.help = true;
		} else if (!strcmp(a, "--json")) {
			g->ra.cli.json = true;
		} else if (!strcmp(a, "--context") || !strcmp(a, "--steps") || !strcmp(a, "--temperature") ||
		           !strcmp(a, "--seed") || !strcmp(a, "--output")) {
			if (!v)
				return run_usage_error("%s expects a value", a);
			i++;
			if (!strcmp(a, "--context")) {
				g->context = v;
			} else if (!strcmp(a, "--output")) {
				g->output = v;
			} else if (!strcmp(a, "--steps")) {
				g->steps = strtol(v, &end, 10);
				if (end == v || *end || g->steps < 1 || g->steps > 100000)
					return run_usage_error("--steps expects a number in 1..100000, got '%s'", v);
			} else if (!strcmp(a, "--seed")) {
				g->seed = strtoull(v, &end, 10);
				if (end == v || *end || *v == '-')
					return run_usage_error("--seed expects a non-negative integer, got '%s'", v);
			} else {
				g->temperature = strtod(v, &end);
				if (end == v || *end || !(g->temperature >= 0) || !isfinite(g->temperature))
					return run_usage_error("--temperature expects a number >= 0, got '%s'", v);
			}
		} else if (a[0] == '-' && a[1]) {
			int rc = run_parse_flag(&g->ra, argc, argv, &i);
			if (rc)
				return rc;
		} else if (!g->ra.model) {
			g->ra.model = a;
		} else {
			return run_usage_error("unexpected argument '%s'", a);
		}
	}
	if (g->ra.help)
		return 0;
	if (!g->ra.model)
		return run_usage_error("%s", "no model file given");
	if (!g->context)
		return run_usage_error("%s", "--context is required");
	if (!g->steps)
		return run_usage_error("%s", "--steps is required");
	return 0;
}

/* The token input and the logits output of the model, or an error. */
static int gen_find_io(const Model *m, const GenArgs *g, int *in, int *out, Diags *d)
{
	*in = -1;
	for (int i = 0; i < m->ninputs; i++)
		if (m->inputs[i].is_index) {
			if (*in >= 0 || m->ninputs != 1) {
				diag_error(d, (Loc){ 0, 0, 0 }, "damc generate needs a model with exactly one input, a "
				           "token input (index(V)); '%s' has %d inputs", m->path, m->ninputs);
				return -1;
			}
			*in = i;
		}
	if (*in < 0) {
		diag_error(d, (Loc){ 0, 0, 0 }, "damc generate needs a token input (index(V)); '%s' has none",
		           m->path);
		return -1;
	}
	int64_t vocab = m->inputs[*in].vocab;
	*out = -1;
	for (int o = 0; o < m->noutputs && *out < 0; o++)
		if (g->output ? !strcmp(m->outputs[o].name, g->output)
		              : m->outputs[o].rank == 1 && m->outputs[o].n == vocab)
			*out = o;
	if (*out < 0 || m->outputs[*out].rank != 1 || m->outputs[*out].n != vocab) {
		if (g->output)
			diag_error(d, (Loc){ 0, 0, 0 }, "output '%s' is not a vector of %lld logits (the token "
			           "vocabulary)", g->output, (long long)vocab);
		else
			diag_error(d, (Loc){ 0, 0, 0 }, "the model has no vector output of %lld logits (the token "
			           "vocabulary)", (long long)vocab);
		return -1;
	}
	return 0;
}

/* --context: digits, or comma-separated ids; exactly n tokens below vocab. */
static int gen_context(const char *s, int64_t n, int64_t vocab, double *tok, Diags *d)
{
	int64_t k = 0;
	bool list = strchr(s, ',') != NULL || vocab > 10;
	const char *p = s;
	while (*p) {
		char *end;
		long v = list ? strtol(p, &end, 10) : (*p >= '0' && *p <= '9' ? *p - '0' : -1);
		if (!list)
			end = (char *)p + 1;
		if ((list && end == p) || v < 0 || v >= vocab) {
			diag_error(d, (Loc){ 0, 0, 0 }, "--context '%s': position %lld is not a token in 0..%lld",
			           s, (long long)k, (long long)vocab - 1);
			return -1;
		}
		if (k < n)
			tok[k] = (double)v;
		k++;
		p = end;
		if (list && *p == ',')
			p++;
		else if (list && *p) {
			diag_error(d, (Loc){ 0, 0, 0 }, "--context '%s': expected a comma after token %lld", s,
			           (long long)k - 1);
			return -1;
		}
	}
	if (k != n) {
		diag_error(d, (Loc){ 0, 0, 0 }, "--context '%s' has %lld tokens; the model's window holds %lld",
		           s, (long long)k, (long long)n);
		return -1;
	}
	return 0;
}

static uint64_t gen_next(uint64_t *s)            /* splitmix64 */
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* argmax (T = 0; the first of equal maxima) or a sample of softmax(l / T). */
static int64_t gen_pick(const double *l, int64_t v, double T, uint64_t *rng)
{
	int64_t best = 0;
	for (int64_t k = 1; k < v; k++)
		if (l[k] > l[best])
			best = k;
	if (!(T > 0))
		return best;
	double sum = 0, u = ((double)(gen_next(rng) >> 11) + 0.5) / 9007199254740992.0;
	for (int64_t k = 0; k < v; k++)
		sum += exp((l[k] - l[best]) / T);
	double acc = 0;
	for (int64_t k = 0; k < v; k++) {
		acc += exp((l[k] - l[best]) / T) / sum;
		if (u < acc)
			return k;
	}
	return v - 1;
}

static void gen_tokens(RepBuf *b, const double *t, int64_t n, bool comma)
{
	for (int64_t k = 0; k < n; k++)
		rep_printf(b, "%s%lld", comma && k ? "," : "", (long long)t[k]);
}

static void gen_json_step(RepBuf *b, long step, const double *win, int64_t n, const double *logits,
                          int64_t v, int64_t tok, const DamRunResult *res)
{
	rep_printf(b, "{\"step\":%ld,\"window\":[", step);
	gen_tokens(b, win, n, true);
	rep_printf(b, "],\"logits\":[");
	for (int64_t k = 0; k < v; k++)
		rep_printf(b, "%s%.17g", k ? "," : "", logits[k]);
	rep_printf(b, "],\"token\":%lld,\"status\":\"%s\",\"t_end\":%.17g,\"t_converged\":", (long long)tok,
	           report_status_name(res->status), res->t);
	if (res->t_converged >= 0)
		rep_printf(b, "%.17g}\n", res->t_converged);
	else
		rep_printf(b, "null}\n");
}

static int gen_run(const RunArgs *ra, const RunConfig *rc, Diags *d, Arena *a, void *user)
{
	const GenArgs *g = user;
	DamRunOpts opts;
	if (run_make_opts(rc, &opts, d) < 0)
		return RUN_EXIT_INPUT;
	Model *m = run_compile(ra->model, rc, d, a);
	if (!m || diag_errors(d))
		return RUN_EXIT_INPUT;
	int in, out;
	if (gen_find_io(m, g, &in, &out, d) < 0)
		return RUN_EXIT_INPUT;
	run_model_defaults(ra, rc, m, &opts);
	if (run_check_step(m, &opts, d) < 0)
		return RUN_EXIT_INPUT;
	int64_t n = m->inputs[in].n, vocab = m->inputs[in].vocab;
	double *win = run_xcalloc((size_t)n, sizeof *win);
	if (gen_context(g->context, n, vocab, win, d) < 0) {
		free(win);
		return RUN_EXIT_INPUT;
	}
	char err[1024];
	JitOptions jo = { .opt_level = ra->opt_level, .bake_weights = ra->bake_weights, .cache = 1 };
	Jit *jit = jit_compile(m, &jo, err, sizeof err);
	if (!jit) {
		fprintf(stderr, "%s: error: %s\n", ra->model, err);
		free(win);
		return RUN_EXIT_INPUT;
	}
	DamSim *s = sim_new(m, jit);
	double *outs = run_xcalloc(jit_kernels(jit)->noutput, sizeof *outs);
	double *gen = run_xcalloc((size_t)g->steps, sizeof *gen);
	const double *logits = outs + jit_kernels(jit)->output_off[out];
	uint64_t rng = g->seed * 0x2545f4914f6cdd1du + 1;
	RepBuf b;
	rep_init(&b);
	int status = RUN_EXIT_OK;
	long done = 0;
	for (long step = 0; step < g->steps; step++) {
		char msg[256] = "";
		DamRunResult res;
		sim_set_input(s, in, win, (size_t)n, msg, sizeof msg);   /* checked by gen_context */
		sim_run(s, &opts, &res, NULL, NULL, msg, sizeof msg);
		sim_outputs(s, outs);
		if (res.status != DAM_OK) {
			diag_error(d, (Loc){ 0, 0, 0 }, "step %ld (window %s...): %s; stopped after %ld tokens", step,
			           g->context, msg[0] ? msg : report_status_name(res.status), done);
			status = RUN_EXIT_DIVERGED;
			break;
		}
		int64_t tok = gen_pick(logits, vocab, g->temperature, &rng);
		if (rc->json)
			gen_json_step(&b, step, win, n, logits, vocab, tok, &res);
		gen[done++] = (double)tok;
		memmove(win, win + 1, (size_t)(n - 1) * sizeof *win);
		win[n - 1] = (double)tok;
	}
	if (!rc->json) {
		bool comma = vocab > 10;
		rep_printf(&b, "context   %s\ngenerated ", g->context);
		gen_tokens(&b, gen, done, comma);
		rep_printf(&b, "\n");
	}
	fwrite(b.s ? b.s : "", 1, b.n, stdout);
	fflush(stdout);
	rep_free(&b);
	free(gen);
	free(outs);
	free(win);
	sim_free(s);
	jit_free(jit);
	return status;
}

int cmd_generate(int argc, char **argv)
{
	GenArgs g;
	memset(&g, 0, sizeof g);
	g.ra.opt_level = 3;
	g.seed = 1;
	runcfg_init(&g.ra.cli);
	int status = gen_parse(&g, argc, argv);
	if (status || g.ra.help) {
		if (g.ra.help && !status)
			fputs(gen_usage, stdout);
		runcfg_free(&g.ra.cli);
		return status;
	}
	status = run_configured(&g.ra, gen_run, &g);
	runcfg_free(&g.ra.cli);
	return status;
}
