/* embed.c - a controller program that embeds the damc simulator through the
 * public C API (dam.h) only.
 *
 *   embed [-e EXAMPLES_DIR] WEIGHTS.npz [BITS8 ...]
 *
 * 1. XOR (examples/xor.dam): the four inputs, v[2] after T = 5.
 * 2. Parity Analog Energy Transformer (examples/parity_et.dam with the
 *    weights from WEIGHTS.npz): classify each 8-bit string given on the
 *    command line (most significant first), printing the logits, the
 *    prediction and the parity.
 * 3. The autoregressive loop of the paper's Sec. 6.2 from the first string
 *    (or 10110010): relax the circuit on the context window, decode the
 *    logits, pick the argmax token, slide the window (drop the oldest token,
 *    append the new one) and relax again.  Each generated token should be the
 *    parity of the window it was read from; the program counts how often it is.
 *
 * The controller also shows the low-level path: in step 3 it programs the
 * attention rows itself (dam_set_weights: row A = squared embedding of the
 * token at position A, read once from a run) instead of setting the tokens,
 * as a host driving the crossbar rows directly would.  Output lines are
 * meant to be parsed by tests/embed.t.  Exit status 0 if every call
 * succeeded (the predictions are reported, not enforced), 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dam.h"

#define L 8        /* context length of parity_et */
#define GEN_STEPS 8

static int fail(DamModel *m, const char *what)
{
	fprintf(stderr, "embed: %s: %s\n", what, dam_errmsg(m));
	return 1;
}

static int run_xor(const char *dir)
{
	char path[4096], *err = NULL;
	snprintf(path, sizeof path, "%s/xor.dam", dir);
	DamModel *m = dam_compile_file(path, NULL, &err);
	if (!m) {
		fprintf(stderr, "%s", err);
		dam_string_free(err);
		return 1;
	}
	DamRunOptions o;
	dam_run_options_default(&o);
	o.t_end = 5;
	for (int a = 0; a < 2; a++)
		for (int b = 0; b < 2; b++) {
			double bits[2] = { a, b }, y;
			if (dam_set_input(m, "bits", bits, 2) || dam_run(m, &o, NULL) ||
			    dam_get_output(m, "y", &y, 1)) {
				int r = fail(m, "xor");
				dam_model_free(m);
				return r;
			}
			printf("xor %d %d y=%.6f\n", a, b, y);
		}
	dam_model_free(m);
	return 0;
}

static int parse_bits(const char *s, int *tok)
{
	if (strlen(s) != L)
		return -1;
	for (int i = 0; i < L; i++) {
		if (s[i] != '0' && s[i] != '1')
			return -1;
		tok[i] = s[i] - '0';
	}
	return 0;
}

static int parity(const int *tok)
{
	int p = 0;
	for (int i = 0; i < L; i++)
		p ^= tok[i];
	return p;
}

static void bits_str(const int *tok, char *s)
{
	for (int i = 0; i < L; i++)
		s[i] = (char)('0' + tok[i]);
	s[L] = '\0';
}

/* Relax on the current inputs / rows and decode: argmax of the logits. */
static int relax_decode(DamModel *m, const DamRunOptions *o, double logits[2])
{
	if (dam_run(m, o, NULL) || dam_get_output(m, "logits", logits, 2))
		return -1;
	return logits[1] > logits[0];
}

static int classify(DamModel *m, const DamRunOptions *o, const char *s)
{
	int tok[L];
	double lg[2];
	if (parse_bits(s, tok)) {
		fprintf(stderr, "embed: '%s' is not 8 bits\n", s);
		return 1;
	}
	int pred;
	if (dam_set_tokens(m, "tok", tok, L) || (pred = relax_decode(m, o, lg)) < 0)
		return fail(m, "classify");
	printf("parity %s logits=%.10f,%.10f pred=%d want=%d\n", s, lg[0], lg[1], pred, parity(tok));
	return 0;
}

/* Row of the attention block for each token value: run once on a context
 * holding both tokens and read the rows back. */
static int token_rows(DamModel *m, const DamRunOptions *o, double rows[2][16], size_t D)
{
	int tok[L] = { 0, 1, 0, 0, 0, 0, 0, 0 };
	double all[L * 16];
	if (D > 16 || dam_set_tokens(m, "tok", tok, L) || dam_run(m, o, NULL) ||
	    dam_get_weights(m, "attn.xi", all, L * D))
		return -1;
	memcpy(rows[0], all, D * sizeof(double));
	memcpy(rows[1], all + D, D * sizeof(double));
	return 0;
}

static int generate(DamModel *m, const DamRunOptions *o, const char *seed)
{
	int win[L], gen[GEN_STEPS], good = 0;
	double rows[2][16], W[L * 16], lg[2];
	size_t R = 0, D = 0;
	if (parse_bits(seed, win) || dam_weights_shape(m, "attn.xi", &R, &D) != 1 || R != L)
		return fail(m, "generate: the model has no dynamic 8-row block 'attn.xi'");
	if (token_rows(m, o, rows, D))
		return fail(m, "generate: reading the token rows");
	char s[L + 1];
	bits_str(win, s);
	printf("generate seed=%s\n", s);
	for (int step = 0; step < GEN_STEPS; step++) {
		/* Program the crossbar: row A is the embedding of the token at A. */
		for (int a = 0; a < L; a++)
			memcpy(W + (size_t)a * D, rows[win[a]], D * sizeof(double));
		int tok;
		if (dam_set_weights(m, "attn.xi", W, L * D) || (tok = relax_decode(m, o, lg)) < 0)
			return fail(m, "generate");
		int want = parity(win);
		good += tok == want;
		bits_str(win, s);
		printf("gen %d window=%s logits=%.10f,%.10f token=%d parity=%d\n", step, s, lg[0], lg[1],
		       tok, want);
		gen[step] = tok;
		memmove(win, win + 1, (L - 1) * sizeof *win);
		win[L - 1] = tok;
	}
	dam_clear_weights(m, NULL);
	printf("generated");
	for (int i = 0; i < GEN_STEPS; i++)
		printf(" %d", gen[i]);
	printf("\ngen_parity_ok %d/%d\n", good, GEN_STEPS);
	return 0;
}

static int run_parity(const char *dir, const char *weights, int nstr, char **strs)
{
	char path[4096], def[4200], *err = NULL;
	snprintf(path, sizeof path, "%s/parity_et.dam", dir);
	snprintf(def, sizeof def, "weights=%s", weights);
	const char *defs[] = { def };
	DamCompileOptions co = { .defines = defs, .ndefines = 1, .opt_level = -1 };
	DamModel *m = dam_compile_file(path, &co, &err);
	if (!m) {
		fprintf(stderr, "%s", err);
		dam_string_free(err);
		return 1;
	}
	/* The settings the checkpoint was trained with: Euler, dt = 1e-3, T = 1. */
	DamRunOptions o;
	dam_run_options_default(&o);
	o.dt = 1e-3;
	o.t_end = 1;
	o.check_every = 100;
	int r = 0;
	for (int i = 0; i < nstr && !r; i++)
		r = classify(m, &o, strs[i]);
	if (!r)
		r = generate(m, &o, nstr > 0 ? strs[0] : "10110010");
	dam_model_free(m);
	return r;
}

int main(int argc, char **argv)
{
	const char *dir = "examples";
	int i = 1;
	if (i + 1 < argc && !strcmp(argv[i], "-e")) {
		dir = argv[i + 1];
		i += 2;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: embed [-e EXAMPLES_DIR] WEIGHTS.npz [BITS8 ...]\n");
		return 2;
	}
	const char *weights = argv[i++];
	if (run_xor(dir))
		return 1;
	return run_parity(dir, weights, argc - i, argv + i) ? 1 : 0;
}
