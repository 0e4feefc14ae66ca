/* t_fe_parse.c - the lexer and parser: ASTs, syntax errors, robustness.
 *
 * Every statement form and the operator precedences are checked through
 * ast_print against exact S-expressions; the fixtures in tests/parse/
 * (xor.dam, block.dam, parity_et.dam) against their .ast goldens.  Syntax
 * and lexer errors are checked by their exact rendered text (message,
 * line:col, source line and caret), several per file.  Finally random byte
 * strings and mutated valid programs are parsed to show that nothing
 * crashes (meant for the ASan+UBSan build).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "tap.h"

typedef struct Parsed {
	Arena arena;
	Diags d;
	Module *m;
	char *ast, *errs;
} Parsed;

/* Run a parse of text and capture the AST dump and the rendered errors. */
static void parse_text(Parsed *p, const char *text, size_t len)
{
	arena_init(&p->arena);
	diags_init(&p->d, &p->arena);
	Interner *in = intern_new(&p->arena);
	uint32_t f = diag_add_text(&p->d, "t.dam", text, len);
	p->m = parse_module(&p->d, in, f);
	size_t n;
	FILE *out = open_memstream(&p->ast, &n);
	ast_print(p->m, out);
	fclose(out);
	out = open_memstream(&p->errs, &n);
	diag_render(&p->d, out);
	fclose(out);
}

static void parsed_free(Parsed *p)
{
	free(p->ast);
	free(p->errs);
	diags_free(&p->d);
	arena_free(&p->arena);
}

/* The source parses without errors to exactly `want`. */
static void check_ast(const char *src, const char *want, const char *what)
{
	Parsed p;
	parse_text(&p, src, strlen(src));
	if (!is_str(p.errs, "", what))
		diag("unexpected errors:\n%s", p.errs);
	else
		is_str(p.ast, want, what);
	parsed_free(&p);
}

/* The source renders exactly the diagnostics `want`. */
static void check_errs(const char *src, const char *want, const char *what)
{
	Parsed p;
	parse_text(&p, src, strlen(src));
	is_str(p.errs, want, what);
	parsed_free(&p);
}

/* ------------------------------------------------------------------------ */

static void test_statements(void)
{
	check_ast("import \"lagrangians\"\n", "(import \"lagrangians\")\n", "import");
	check_ast("param beta = 8, n = 2\n", "(param beta = 8)\n(param n = 2)\n", "param pairs");
	check_ast("tensor K[2, 3] = 0\ntensor s = \"a\\\"b\\\\c\\n\\t\"",
	          "(tensor K [2 3] = 0)\n(tensor s = \"a\\\"b\\\\c\\n\\t\")\n", "tensor, string escapes");
	check_ast("learn W[2, D] = 0.5, b[D]\n",
	          "(learn W [2 D] = 0.5)\n(learn b [D])\n", "learn list, optional value");
	check_ast("lagrangian softmax(x; beta) = logsumexp(i, beta * x[i]) / beta\n"
	          "lagrangian identity(x) = 0.5 * sum(i, x[i]^2)\n",
	          "(lagrangian softmax (x ; beta) = (/ (call logsumexp i (* beta (index x i))) beta))\n"
	          "(lagrangian identity (x) = (* 0.5 (call sum i (^ (index x i) 2))))\n", "lagrangian");
	check_ast("layer h[4] : softmax(beta) tau = 0.1 bias = b init = 0\n",
	          "(layer h [4] : (call softmax beta) (tau 0.1) (bias b) (init 0))\n", "layer");
	check_ast("weights xa : ha[A] -- v[i] = embed_raw[tok[A], i]^2\n"
	          "weights J : s--s = K tied = 1\nweights P : a -- b gain = 2",
	          "(weights xa : (index ha A) -- (index v i) = (^ (index embed_raw (index tok A) i) 2))\n"
	          "(weights J : s -- s = K (tied 1))\n(weights P : a -- b (gain 2))\n", "weights");
	check_ast("bias h[mu] = -0.5 * sum(i, xi[mu,i]^2); init v = [0, 0, 0.5]; clamp v[0:2] = bits",
	          "(bias (index h mu) = (* (- 0.5) (call sum i (^ (index xi mu i) 2))))\n"
	          "(init v = (list 0 0 0.5))\n(clamp (index v (: 0 2)) = bits)\n", "bias, init, clamp");
	check_ast("input tok[L] : index(V)\ninput bits[2]\n",
	          "(input tok [L] : (call index V))\n(input bits [2])\n", "input");
	check_ast("output y = v[2]\noutput logits[k] = sum(i, Wdec[k,i]*v[i]) + bdec[k]\n",
	          "(output y = (index v 2))\n"
	          "(output logits [k] = (+ (call sum i (* (index Wdec k i) (index v i))) (index bdec k)))\n",
	          "output");
	check_ast("use hh = hopfield(v, M; hopf_raw^2, 0.01, c)\n",
	          "(use hh = (call hopfield v M ; (^ hopf_raw 2) 0.01 c))\n", "use");
	check_ast("block b() { layer h[2] : relu }\nblock c(;) {\n}\n",
	          "(block b ()\n  (layer h [2] : relu))\n(block c (;))\n", "block on one line, empty");
	check_ast("\n\n;;  # only comments\n\n;param a = 1;;\n\n", "(param a = 1)\n", "empty statements");
	check_ast("param a = f(x,\n  y)\nparam b = [[1, 2],\n  [3, 4],\n]\n",
	          "(param a = (call f x y))\n(param b = (list (list 1 2) (list 3 4)))\n",
	          "newlines inside ( and [");
	check_ast("layer x.y[3] : relu", "(layer x.y [3] : relu)\n", "qualified name, no final newline");
	check_ast("block c(y)\n\n{\n}\nimport \"\"\n", "(block c (y))\n(import \"\")\n",
	          "block brace on its own line, empty string");
}

static void test_expressions(void)
{
	check_ast("param x = -x^2 + 2^-1\n", "(param x = (+ (- (^ x 2)) (^ 2 (- 1))))\n",
	          "unary minus binds looser than ^, exponent may be unary");
	check_ast("param x = a - b - c, y = a / b / c * d\n",
	          "(param x = (- (- a b) c))\n(param y = (* (/ (/ a b) c) d))\n", "left associative");
	check_ast("param x = 2^3^4 + (a - b) * c\n", "(param x = (+ (^ 2 (^ 3 4)) (* (- a b) c)))\n",
	          "^ right associative, parentheses");
	check_ast("param x = a + b * c - -d + +e\n", "(param x = (+ (- (+ a (* b c)) (- d)) e))\n",
	          "precedence of + and *, unary plus");
	check_ast("param x = q[k: 2, :3, 1:, :] + attn.h[1][2]\n",
	          "(param x = (+ (index q (: k 2) (: _ 3) (: 1 _) (: _ _)) (index (index attn.h 1) 2)))\n",
	          "ranges, chained indexing");
	check_ast("param x = f() + g(;) + h(a;) + k(;b) + [1][0]\n",
	          "(param x = (+ (+ (+ (+ (call f) (call g ;)) (call h a ;)) (call k ; b)) (index (list 1) 0)))\n",
	          "calls with ';', index of a list");
	check_ast("param n = 12 + 1.5 + .5 + 3. + 1e-3 + 2.5E+4\n",
	          "(param n = (+ (+ (+ (+ (+ 12 1.5) 0.5) 3) 0.001) 25000))\n", "number forms");
}

/* Fields the printer does not show: locations, nsemi, ndims. */
static void test_fields(void)
{
	Parsed p;
	const char *src = "param a = 1\n  layer h[4] : f(x; y) tau = b + c\ntensor t = 2\n";
	parse_text(&p, src, strlen(src));
	ok(p.m->nstmts == 3, "three statements");
	if (p.m->nstmts == 3) {
		Stmt *l = p.m->stmts[1], *t = p.m->stmts[2];
		ok(l->loc.line == 2 && l->loc.col == 3, "statement loc is the keyword's");
		ok(l->name_loc.line == 2 && l->name_loc.col == 9, "name_loc");
		ok(l->type->nsemi == 1 && l->type->nargs == 2, "call nsemi");
		ok(l->nattrs == 1 && l->attrs[0].loc.col == 24, "attr loc");
		ok(l->attrs[0].value->loc.col == 32, "binop loc is the operator's");
		ok(t->ndims == -1 && p.m->stmts[0]->ndims == -1, "ndims -1 without brackets");
		ok(l->file == p.m->file && l->loc.file == p.m->file, "file ids");
	}
	parsed_free(&p);
}

/* ------------------------------------------------------------------------ */

static void test_errors(void)
{
	check_errs("param x =\n", "t.dam:1:10: error: unexpected end of line, expected expression\n"
	           "param x =\n         ^\n", "missing expression");
	check_errs("param = 3\n", "t.dam:1:7: error: unexpected '=', expected identifier\n"
	           "param = 3\n      ^\n", "missing name");
	check_errs("param 3 = 3\n", "t.dam:1:7: error: unexpected number '3', expected identifier\n"
	           "param 3 = 3\n      ^\n", "number instead of name");
	check_errs("layer h[4] : relu tau\n", "t.dam:1:22: error: unexpected end of line, expected '='\n"
	           "layer h[4] : relu tau\n                     ^\n", "attribute without value");
	check_errs("weights w : a - b\n",
	           "t.dam:1:15: error: unexpected '-', expected '--' or '['\n"
	           "weights w : a - b\n              ^\n", "weights without --");
	check_errs("param y = 3 @ 4 @\n", "t.dam:1:13: error: unexpected character '@'\n"
	           "param y = 3 @ 4 @\n            ^\n", "bad character, once per statement");
	check_errs("param q = \"ab\\qc\" + 1e\n", "t.dam:1:14: error: unknown escape sequence '\\q'\n"
	           "param q = \"ab\\qc\" + 1e\n             ^\n", "unknown escape");
	check_errs("param r = 1.2.3\nparam s = 1e\n",
	           "t.dam:1:11: error: malformed number '1.2.3'\nparam r = 1.2.3\n          ^\n"
	           "t.dam:2:11: error: malformed number '1e'\nparam s = 1e\n          ^\n", "malformed numbers");
	check_errs("import \"abc\nparam a = 1\n", "t.dam:1:8: error: unterminated string\n"
	           "import \"abc\n       ^\n", "unterminated string");
	check_errs("x = 1\n", "t.dam:1:1: error: unexpected identifier 'x', expected statement\n"
	           "x = 1\n^\n", "not a statement");
	check_errs("}\n", "t.dam:1:1: error: unexpected '}', expected statement\n}\n^\n", "stray brace");
	check_errs("\tparam\tk = 2 $\n", "t.dam:1:14: error: unexpected character '$'\n"
	           "\tparam\tk = 2 $\n\t     \t      ^\n", "tabs copied into the caret line");
	check_errs("param w = \x01\n", "t.dam:1:11: error: unexpected character '\\x01'\n"
	           "param w = \x01\n          ^\n", "unprintable character");
	check_errs("param z = f(a; b; c)\n", "t.dam:1:17: error: unexpected ';'\n"
	           "param z = f(a; b; c)\n                ^\n", "two ';' in a call");
	check_errs("param x = (1 +", "t.dam:1:15: error: unexpected end of file, expected expression\n"
	           "param x = (1 +\n              ^\n", "end of file");
	check_errs("layer h[2] : relu\nparam p = [1, 2\nlayer g[2] : relu\n",
	           "t.dam:2:16: error: unexpected end of line\n"
	           "param p = [1, 2\n               ^\n", "unclosed bracket ends at the next keyword");
	check_errs("param x = a--b\n", "t.dam:1:12: error: unexpected '--'\n"
	           "param x = a--b\n           ^\n", "-- is one token");
	check_errs("block b(x) {\n layer h[2] : relu\n param 3\n}\n",
	           "t.dam:3:8: error: unexpected number '3', expected identifier\n"
	           " param 3\n       ^\n", "error inside a block");
	check_errs("param s = \"abcdefghijklmnopqrstuvwxyz0123456789abcdef\" 1\n",
	           "t.dam:1:56: error: unexpected number '1'\nparam s = \"abcdefghijklmnopqrstuvwxyz0123456789abcdef\" 1\n"
	           "                                                       ^\n", "unexpected token with many expected");
	check_errs("import 3\n", "t.dam:1:8: error: unexpected number '3', expected string\n"
	           "import 3\n       ^\n", "import needs a string");
	check_errs("import \"a\" \"bcdefghijklmnopqrstuvwxyz0123456789abcdefghij\"\n",
	           "t.dam:1:12: error: unexpected string \"bcdefghijklmnopqrstuvwxyz0123456789a..., "
	           "expected end of file or end of line or ';'\n"
	           "import \"a\" \"bcdefghijklmnopqrstuvwxyz0123456789abcdefghij\"\n           ^\n",
	           "long token text is shortened");
}

static void test_several_errors(void)
{
	const char *src =
		"param x =\n"
		"layer h[4] : relu\n"
		"param = 3\n"
		"block b(v) {\n"
		"  weights w : h - v\n"
		"  layer g[2] : relu\n"
		"}\n"
		"output y = v[2] @\n"
		"init v = 0\n";
	Parsed p;
	parse_text(&p, src, strlen(src));
	is_str(p.errs,
	       "t.dam:1:10: error: unexpected end of line, expected expression\nparam x =\n         ^\n"
	       "t.dam:3:7: error: unexpected '=', expected identifier\nparam = 3\n      ^\n"
	       "t.dam:5:17: error: unexpected '-', expected '--' or '['\n  weights w : h - v\n                ^\n"
	       "t.dam:8:17: error: unexpected character '@'\noutput y = v[2] @\n                ^\n",
	       "four independent errors, one each");
	is_str(p.ast, "(layer h [4] : relu)\n(block b (v)\n  (layer g [2] : relu))\n(init v = 0)\n",
	       "the good statements survive");
	ok(diag_errors(&p.d) == 4, "error count");
	parsed_free(&p);
}

static void test_recovery(void)
{
	check_errs("block b(x {\n  layer h[2] : relu\n  param 3\n}\nparam ok = 1\n",
	           "t.dam:1:11: error: unexpected '{', expected ',' or ';' or ')'\nblock b(x {\n          ^\n"
	           "t.dam:3:9: error: unexpected number '3', expected identifier\n  param 3\n        ^\n",
	           "a bad block header does not make its body and '}' errors");
	check_errs("param a = f(1,\nlayer h[2] : relu )\n",
	           "t.dam:1:15: error: unexpected end of line, expected expression\n"
	           "param a = f(1,\n              ^\n"
	           "t.dam:2:19: error: unexpected ')'\nlayer h[2] : relu )\n                  ^\n",
	           "a keyword at line start closes an open parenthesis");

	char big[2000];
	size_t n = 0;
	for (int i = 0; i < 60; i++)
		n += (size_t)snprintf(big + n, sizeof big - n, "param = %d\n", i);
	Parsed p;
	parse_text(&p, big, n);
	ok(p.d.n == 51 && strstr(p.errs, "t.dam:50:7: error:")
	   && strstr(p.errs, "\ndamc: error: too many errors, stopping\n") && !strstr(p.errs, "t.dam:51:"),
	   "50 errors, then stop");
	parsed_free(&p);
}

/* ------------------------------------------------------------------------ */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t cap = 0;
	FILE *out = open_memstream(&buf, &cap);
	int c;
	while ((c = fgetc(f)) != EOF)
		fputc(c, out);
	fclose(out);
	fclose(f);
	*len = cap;
	return buf;
}

/* tests/parse/NAME.dam parses (through diag_add_file) to NAME.ast. */
static void test_fixture(const char *name)
{
	char dir[1024], path[1100];
	snprintf(dir, sizeof dir, "%s", __FILE__);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	snprintf(path, sizeof path, "%s/../parse/%s.ast", slash ? dir : ".", name);
	size_t wlen;
	char *want = slurp(path, &wlen);
	snprintf(path, sizeof path, "%s/../parse/%s.dam", slash ? dir : ".", name);
	Arena a;
	arena_init(&a);
	Diags d;
	diags_init(&d, &a);
	uint32_t f = diag_add_file(&d, path);
	ok(f != 0 && want, "fixture %s readable", name);
	if (f && want) {
		Module *m = parse_module(&d, intern_new(&a), f);
		char *got;
		size_t n;
		FILE *out = open_memstream(&got, &n);
		ast_print(m, out);
		diag_render(&d, out);
		fclose(out);
		is_str(got, want, name);
		free(got);
	} else {
		skip(1, "no fixture");
	}
	free(want);
	diags_free(&d);
	arena_free(&a);
}

/* ------------------------------------------------------------------------
 * Robustness: random bytes and mutated programs must never crash.
 */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static const char fuzz_base[] =
	"import \"lagrangians\"\nparam beta = 8, n = 2\ninput bits[2]\n"
	"layer v[3] : identity tau = 1.0\nlayer h[4] : softmax(beta) tau = 0.1\n"
	"weights xi : h -- v = [[0,0,0], [0,1,1], [1,0,1], [1,1,0]]\n"
	"bias h[mu] = -0.5 * sum(i, xi[mu,i]^2)\nclamp v[0:2] = bits\ninit  v = [0, 0, 0.5]\n"
	"output y = v[2]\nblock hb(vis, m; p, tau) {\n  layer h[m] : relu tau = tau\n"
	"  weights xi : h -- vis = p\n}\nuse hh = hb(v, 3; K^2, 0.01)\n"
	"lagrangian softmax(x; beta) = logsumexp(i, beta * x[i]) / beta\n"
	"tensor s = \"a\\tb\"  # comment\n";

/* Flip bytes, delete a line or duplicate a span of the base program. */
static size_t fuzz_mutate(char *buf, size_t cap)
{
	size_t n = sizeof fuzz_base - 1;
	memcpy(buf, fuzz_base, n);
	int k = 1 + (int)(rng() % 4);
	for (int j = 0; j < k; j++) {
		uint32_t op = rng() % 3;
		size_t at = rng() % n;
		if (op == 0) {
			buf[at] = (char)(rng() & 0xFF);
		} else if (op == 1) {
			char *nl = memchr(buf + at, '\n', n - at);
			size_t end = nl ? (size_t)(nl - buf) + 1 : n;
			size_t start = at;
			while (start > 0 && buf[start - 1] != '\n')
				start--;
			memmove(buf + start, buf + end, n - end);
			n -= end - start;
			if (n == 0)
				break;
		} else {
			size_t len = rng() % 16;
			if (at + len > n || n + len > cap)
				continue;
			memmove(buf + at + len, buf + at, n - at);
			n += len;
		}
	}
	return n;
}

static void test_fuzz(void)
{
	static const char alphabet[] = "()[]{}=:;,-+*/^\n #\"\\.0123456789e layer param x weights -- ";
	char buf[4096];
	int survived = 0, errors = 0;
	for (int it = 0; it < 2000; it++) {
		size_t n = rng() % 200;
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)(it % 2 ? rng() & 0xFF : (unsigned)alphabet[rng() % (sizeof alphabet - 1)]);
		Parsed p;
		parse_text(&p, buf, n);
		errors += diag_errors(&p.d) > 0;
		parsed_free(&p);
		n = fuzz_mutate(buf, sizeof buf);
		parse_text(&p, buf, n);
		parsed_free(&p);
		survived++;
	}
	ok(survived == 2000, "2000 random and 2000 mutated inputs parsed without a crash");
	ok(errors > 1000, "random inputs are mostly rejected (%d)", errors);

	/* Deep nesting hits the parser's stack limit, not the C stack. */
	size_t n = 0;
	static char deep[40100];
	n += (size_t)snprintf(deep, sizeof deep, "param x = ");
	while (n < sizeof deep - 20)
		deep[n++] = '(';
	Parsed p;
	parse_text(&p, deep, n);
	ok(diag_errors(&p.d) == 1 && strstr(p.errs, "program nested too deeply"), "deep nesting");
	parsed_free(&p);
}

int main(void)
{
	test_statements();
	test_expressions();
	test_fields();
	test_errors();
	test_several_errors();
	test_recovery();
	test_fixture("xor");
	test_fixture("block");
	test_fixture("parity_et");
	test_fuzz();
	return done_testing();
}
