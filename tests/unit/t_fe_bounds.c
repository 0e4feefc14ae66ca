/* t_fe_bounds.c - the parser keeps every expression tree bounded (ast.h).
 *
 * Each Expr records `ops` (the most binary operators on a path to a leaf)
 * and `nest` (the same with a flat chain of + - or * / counted once); the
 * parser rejects a node past AST_MAX_OPS or AST_MAX_NEST with one located
 * error per statement and puts a 0 in its place.  Checked here: the exact
 * ops and nest of small expressions, the limits (accepted at the limit,
 * rejected one past it, with the exact rendered message), and that after
 * the error the tree handed to later passes is still within the bounds, so
 * ast_print of a 300000-term chain returns.
 */
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "tap.h"

typedef struct Parsed {
	Arena arena;
	Diags d;
	Module *m;
	char *errs;
} Parsed;

static void parse_text(Parsed *p, const char *text)
{
	arena_init(&p->arena);
	diags_init(&p->d, &p->arena);
	Interner *in = intern_new(&p->arena);
	uint32_t f = diag_add_text(&p->d, "t.dam", text, strlen(text));
	p->m = parse_module(&p->d, in, f);
	size_t n;
	FILE *out = open_memstream(&p->errs, &n);
	diag_render(&p->d, out);
	fclose(out);
}

static void parsed_free(Parsed *p)
{
	free(p->errs);
	diags_free(&p->d);
	arena_free(&p->arena);
}

/* "param p = EXPR" has ops and nest as expected, without errors. */
static void check_bounds(const char *expr, int ops, int nest)
{
	char src[256];
	snprintf(src, sizeof src, "param p = %s\n", expr);
	Parsed p;
	parse_text(&p, src);
	const Expr *v = p.m->nstmts == 1 ? p.m->stmts[0]->value : NULL;
	ok(v && !diag_errors(&p.d) && v->ops == ops && v->nest == nest, "%s: ops %d, nest %d (got %d, %d)", expr,
	   ops, nest, v ? v->ops : -1, v ? v->nest : -1);
	parsed_free(&p);
}

/* "param p = " + head + body * count + tail, in a fresh buffer. */
static char *repeat(const char *head, const char *body, int count, const char *tail)
{
	size_t hl = strlen(head), bl = strlen(body), tl = strlen(tail);
	char *s = malloc(hl + bl * (size_t)count + tl + 1), *q = s;
	memcpy(q, head, hl), q += hl;
	for (int i = 0; i < count; i++)
		memcpy(q, body, bl), q += bl;
	memcpy(q, tail, tl + 1);
	return s;
}

static void test_small(void)
{
	check_bounds("1", 0, 0);
	check_bounds("1 + 2", 1, 1);
	check_bounds("1 + 2 - 3 + 4", 3, 1);         /* one chain */
	check_bounds("(1 + 2) + (3 + 4)", 2, 1);     /* IR flattens it too */
	check_bounds("1 * 2 / 3", 2, 1);
	check_bounds("1 + 2 * 3", 2, 2);             /* a product inside a sum */
	check_bounds("(1 + 2) * 3", 2, 2);
	check_bounds("2 ^ 3 ^ 4", 2, 2);             /* ^ is no chain */
	check_bounds("-(1 + 2)", 1, 2);
	check_bounds("exp(exp(1))", 0, 2);
	check_bounds("x[1 + 2]", 1, 2);
	check_bounds("[1, 2 * 3 + 4]", 2, 3);
}

/* A chain of `count` operators; want_err: the expected first error line. */
static void test_chain(const char *what, const char *body, int count, const char *want_err)
{
	char *src = repeat("param p = 1", body, count, "\n");
	Parsed p;
	parse_text(&p, src);
	const Expr *v = p.m->nstmts == 1 ? p.m->stmts[0]->value : NULL;
	if (!want_err) {
		ok(v && !diag_errors(&p.d) && v->ops == count, "%s: accepted, ops %d (got %d)", what, count,
		   v ? v->ops : -1);
	} else {
		size_t n = strcspn(p.errs, "\n");
		ok(diag_errors(&p.d) == 1 && n == strlen(want_err) && !strncmp(p.errs, want_err, n),
		   "%s: one error: %.*s", what, (int)(n < 200 ? n : 200), p.errs);
		ok(v && v->ops <= AST_MAX_OPS && v->nest <= AST_MAX_NEST, "%s: the tree left is bounded (ops %d, nest %d)",
		   what, v ? v->ops : -1, v ? v->nest : -1);
		char *dump;
		size_t len;
		FILE *out = open_memstream(&dump, &len);
		ast_print(p.m, out);
		fclose(out);
		ok(len > 0 && !strncmp(dump, "(param p = ", 11), "%s: ast_print returns (%zu bytes)", what, len);
		free(dump);
	}
	parsed_free(&p);
	free(src);
}

static void test_nest(int levels, bool want_err)
{
	char *src = repeat("param p = ", "- ", levels, "3\n");
	Parsed p;
	parse_text(&p, src);
	const Expr *v = p.m->nstmts == 1 ? p.m->stmts[0]->value : NULL;
	const char *msg = "t.dam:1:11: error: expression is nested too deeply: more than 1000 levels\n";
	if (want_err)
		ok(diag_errors(&p.d) == 1 && !strncmp(p.errs, msg, strlen(msg)) && v && v->nest <= AST_MAX_NEST,
		   "%d unary minus: %.*s", levels, (int)strcspn(p.errs, "\n"), p.errs);
	else
		ok(!diag_errors(&p.d) && v && v->nest == levels, "%d unary minus: accepted, nest %d", levels,
		   v ? v->nest : -1);
	parsed_free(&p);
	free(src);
}

/* Two long statements: one error each (the limit resets per statement). */
static void test_two_statements(void)
{
	char *a = repeat("param p = 1", "+1", 20000, "\n");
	char *b = repeat(a, "", 0, "param q = 1");
	char *src = repeat(b, "*2", 20000, "\n");
	Parsed p;
	parse_text(&p, src);
	int n = 0;
	for (const char *s = p.errs; (s = strstr(s, "error: expression is too long")); s++)
		n++;
	ok(diag_errors(&p.d) == 2 && n == 2 && strstr(p.errs, "t.dam:2:20012: error:"),
	   "two long statements: two errors (%d), the second at 2:20012", diag_errors(&p.d));
	parsed_free(&p);
	free(src);
	free(b);
	free(a);
}

int main(void)
{
	test_small();
	test_chain("10000 additions", "+1", AST_MAX_OPS, NULL);
	test_chain("10001 additions", "+1", AST_MAX_OPS + 1,
	           "t.dam:1:20012: error: expression is too long: more than 10000 operators in one chain");
	test_chain("300000 additions", "+1", 300000,
	           "t.dam:1:20012: error: expression is too long: more than 10000 operators in one chain");
	test_nest(AST_MAX_NEST, false);
	test_nest(AST_MAX_NEST + 1, true);
	test_two_statements();
	return done_testing();
}
