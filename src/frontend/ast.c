/* ast.c - syntax tree constructors, the identifier interner and ast_print.
 *
 * The parser (grammar/dam.y) builds the tree only through the ast_*
 * constructors below; every node, list and string lives in the compilation
 * arena, so nothing here is ever freed individually.  Lists grow by
 * doubling inside the arena (the old array is simply abandoned).
 *
 * ast_print writes one S-expression per statement, the form the parser's
 * golden tests compare against:
 *     (layer h [4] : (call softmax beta) (tau 0.1) (bias b))
 *     (weights xi : h -- v = (list (list 0 0 0) (list 0 1 1)))
 *     (lagrangian softmax (x ; beta) = (/ (call logsumexp i (* beta (index x i))) beta))
 * Numbers use the shortest of %.15g/%.16g/%.17g that reads back exactly;
 * ranges print as (: lo hi) with `_` for an omitted bound; block bodies
 * follow their header on indented lines.
 *
 * Each constructor also records the ops and nest of its node (ast.h), so
 * the parser can bound them without walking the tree.
 */
#include "ast.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Interner: open addressing, power-of-two table in the arena.
 */

typedef struct InternEntry {
	const char *s;
	size_t n;
	uint32_t hash;
} InternEntry;

struct Interner {
	Arena *arena;
	InternEntry *tab;
	uint32_t cap, count;
};

static uint32_t intern_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;              /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

Interner *intern_new(Arena *a)
{
	Interner *in = arena_alloc(a, sizeof *in);
	in->arena = a;
	in->cap = 256;
	in->tab = arena_alloc(a, in->cap * sizeof *in->tab);
	return in;
}

static void intern_grow(Interner *in)
{
	uint32_t cap = in->cap * 2;
	InternEntry *tab = arena_alloc(in->arena, cap * sizeof *tab);
	for (uint32_t i = 0; i < in->cap; i++) {
		InternEntry e = in->tab[i];
		if (!e.s)
			continue;
		uint32_t j = e.hash & (cap - 1);
		while (tab[j].s)
			j = (j + 1) & (cap - 1);
		tab[j] = e;
	}
	in->tab = tab;
	in->cap = cap;
}

const char *intern(Interner *in, const char *s, size_t n)
{
	if (2 * (in->count + 1) > in->cap)
		intern_grow(in);
	uint32_t h = intern_hash(s, n);
	uint32_t i = h & (in->cap - 1);
	for (; in->tab[i].s; i = (i + 1) & (in->cap - 1)) {
		InternEntry *e = &in->tab[i];
		if (e->hash == h && e->n == n && memcmp(e->s, s, n) == 0)
			return e->s;
	}
	in->tab[i] = (InternEntry){ arena_strndup(in->arena, s, n), n, h };
	in->count++;
	return in->tab[i].s;
}

/* ------------------------------------------------------------------------
 * Expressions
 */

static Expr *ast_expr(Arena *a, ExprKind kind, Loc loc)
{
	Expr *e = arena_alloc(a, sizeof *e);
	e->kind = kind;
	e->loc = loc;
	e->nsemi = -1;
	return e;
}

/* 1 for + and -, 2 for * and /: the chains that sym_addn and sym_muln
 * flatten; 0 for ^. */
static int ast_op_class(int op)
{
	return op == '+' || op == '-' ? 1 : op == '*' || op == '/' ? 2 : 0;
}

/* Account for child `kid` (may be NULL) in the ops and nest of e; a binary
 * operator of the same class as e continues e's chain. */
static void ast_kid(Expr *e, const Expr *kid)
{
	if (!kid)
		return;
	bool binop = e->kind == E_BINOP;
	bool chain = binop && kid->kind == E_BINOP && ast_op_class(e->op) &&
	             ast_op_class(e->op) == ast_op_class(kid->op);
	int o = kid->ops + binop, n = kid->nest + !chain;
	e->ops = o > e->ops ? o : e->ops;
	e->nest = n > e->nest ? n : e->nest;
}

static void ast_kids(Expr *e)
{
	ast_kid(e, e->a);
	ast_kid(e, e->b);
	for (int i = 0; i < e->nargs; i++)
		ast_kid(e, e->args[i]);
}

Expr *ast_num(Arena *a, Loc loc, double v)
{
	Expr *e = ast_expr(a, E_NUM, loc);
	e->num = v;
	return e;
}

Expr *ast_str(Arena *a, Loc loc, const char *s)
{
	Expr *e = ast_expr(a, E_STR, loc);
	e->str = s;
	return e;
}

Expr *ast_ident(Arena *a, Loc loc, const char *name)
{
	Expr *e = ast_expr(a, E_IDENT, loc);
	e->str = name;
	return e;
}

Expr *ast_binop(Arena *a, Loc loc, int op, Expr *l, Expr *r)
{
	Expr *e = ast_expr(a, E_BINOP, loc);
	e->op = op;
	e->a = l;
	e->b = r;
	ast_kids(e);
	return e;
}

Expr *ast_neg(Arena *a, Loc loc, Expr *x)
{
	Expr *e = ast_expr(a, E_NEG, loc);
	e->a = x;
	ast_kids(e);
	return e;
}

static void ast_take_args(Expr *e, const ExprList *l)
{
	e->args = l->v;
	e->nargs = l->n;
	e->nsemi = l->nsemi;
}

Expr *ast_call(Arena *a, Loc loc, const char *name, ExprList *args)
{
	Expr *e = ast_expr(a, E_CALL, loc);
	e->str = name;
	ast_take_args(e, args);
	ast_kids(e);
	return e;
}

Expr *ast_index(Arena *a, Loc loc, Expr *base, ExprList *items)
{
	Expr *e = ast_expr(a, E_INDEX, loc);
	e->a = base;
	ast_take_args(e, items);
	e->nsemi = -1;
	ast_kids(e);
	return e;
}

Expr *ast_list(Arena *a, Loc loc, ExprList *elems)
{
	Expr *e = ast_expr(a, E_LIST, loc);
	ast_take_args(e, elems);
	e->nsemi = -1;
	ast_kids(e);
	return e;
}

Expr *ast_range(Arena *a, Loc loc, Expr *lo, Expr *hi)
{
	Expr *e = ast_expr(a, E_RANGE, loc);
	e->a = lo;
	e->b = hi;
	ast_kids(e);
	return e;
}

/* ------------------------------------------------------------------------
 * Lists
 */

/* Make room for one more item of size sz in *v (n used, *cap allocated). */
static void *ast_grow(Arena *a, void *v, int n, int *cap, size_t sz)
{
	if (n < *cap)
		return v;
	int ncap = *cap ? 2 * *cap : 4;
	void *nv = arena_alloc(a, (size_t)ncap * sz);
	if (n)
		memcpy(nv, v, (size_t)n * sz);
	*cap = ncap;
	return nv;
}

ExprList *ast_exprs_new(Arena *a)
{
	ExprList *l = arena_alloc(a, sizeof *l);
	l->nsemi = -1;
	return l;
}

ExprList *ast_exprs_push(Arena *a, ExprList *l, Expr *e)
{
	l->v = ast_grow(a, l->v, l->n, &l->cap, sizeof *l->v);
	l->v[l->n++] = e;
	return l;
}

ExprList *ast_exprs_join(Arena *a, ExprList *l, ExprList *r)
{
	int nsemi = l->n;
	for (int i = 0; i < r->n; i++)
		ast_exprs_push(a, l, r->v[i]);
	l->nsemi = nsemi;
	return l;
}

NameList *ast_names_new(Arena *a)
{
	NameList *l = arena_alloc(a, sizeof *l);
	l->nsemi = -1;
	return l;
}

NameList *ast_names_push(Arena *a, NameList *l, const char *name, Loc loc)
{
	int cap = l->cap;
	l->v = ast_grow(a, l->v, l->n, &cap, sizeof *l->v);
	l->locs = ast_grow(a, l->locs, l->n, &l->cap, sizeof *l->locs);
	l->v[l->n] = name;
	l->locs[l->n++] = loc;
	return l;
}

NameList *ast_names_join(Arena *a, NameList *l, NameList *r)
{
	int nsemi = l->n;
	for (int i = 0; i < r->n; i++)
		ast_names_push(a, l, r->v[i], r->locs[i]);
	l->nsemi = nsemi;
	return l;
}

AttrList *ast_attrs_push(Arena *a, AttrList *l, Attr at)
{
	if (!l)
		l = arena_alloc(a, sizeof *l);
	l->v = ast_grow(a, l->v, l->n, &l->cap, sizeof *l->v);
	l->v[l->n++] = at;
	return l;
}

StmtList *ast_stmts_new(Arena *a)
{
	return arena_alloc(a, sizeof(StmtList));
}

void ast_stmts_push(Arena *a, StmtList *l, Stmt *s)
{
	l->v = ast_grow(a, l->v, l->n, &l->cap, sizeof *l->v);
	l->v[l->n++] = s;
}

StmtList *ast_stmts_one(Arena *a, Stmt *s)
{
	StmtList *l = ast_stmts_new(a);
	ast_stmts_push(a, l, s);
	return l;
}

void ast_stmts_append(Arena *a, StmtList *l, const StmtList *more)
{
	for (int i = 0; i < more->n; i++)
		ast_stmts_push(a, l, more->v[i]);
}

void ast_stmts_set_loc(StmtList *l, Loc loc)
{
	for (int i = 0; i < l->n; i++)
		l->v[i]->loc = loc;
}

/* ------------------------------------------------------------------------
 * Statements
 */

Stmt *ast_stmt(Arena *a, StmtKind kind, Loc loc)
{
	Stmt *s = arena_alloc(a, sizeof *s);
	s->kind = kind;
	s->loc = loc;
	s->file = loc.file;
	s->ndims = -1;
	s->nsemi = -1;
	return s;
}

Stmt *ast_stmt_named(Arena *a, StmtKind kind, Loc loc, const char *name, Loc name_loc)
{
	Stmt *s = ast_stmt(a, kind, loc);
	s->name = name;
	s->name_loc = name_loc;
	return s;
}

void ast_stmt_dims(Stmt *s, const ExprList *dims)
{
	s->dims = dims ? dims->v : NULL;
	s->ndims = dims ? dims->n : -1;
}

void ast_stmt_params(Stmt *s, const NameList *params)
{
	s->params = params->v;
	s->param_locs = params->locs;
	s->nparams = params->n;
	s->nsemi = params->nsemi;
}

void ast_stmt_attrs(Stmt *s, const AttrList *attrs)
{
	s->attrs = attrs ? attrs->v : NULL;
	s->nattrs = attrs ? attrs->n : 0;
}

void ast_stmt_body(Stmt *s, const StmtList *body)
{
	s->body = body->v;
	s->nbody = body->n;
}

/* ------------------------------------------------------------------------
 * Printing
 */

static void ast_print_num(double v, FILE *out)
{
	char buf[40];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, out);
}

static void ast_print_string(const char *s, FILE *out)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c < 32 || c == 127)
			fprintf(out, "\\x%02X", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void ast_print_opt(const Expr *e, FILE *out)
{
	if (e)
		ast_print_expr(e, out);
	else
		fputc('_', out);
}

/* " a b ; c": the items of a call, index or list, with the ';' if any. */
static void ast_print_args(const Expr *e, FILE *out)
{
	for (int i = 0; i < e->nargs; i++) {
		if (i == e->nsemi)
			fputs(" ;", out);
		fputc(' ', out);
		ast_print_expr(e->args[i], out);
	}
	if (e->nsemi == e->nargs)
		fputs(" ;", out);
}

void ast_print_expr(const Expr *e, FILE *out)
{
	switch (e->kind) {
	case E_NUM:   ast_print_num(e->num, out); break;
	case E_STR:   ast_print_string(e->str, out); break;
	case E_IDENT: fputs(e->str, out); break;
	case E_BINOP:
		fprintf(out, "(%c ", e->op);
		ast_print_expr(e->a, out);
		fputc(' ', out);
		ast_print_expr(e->b, out);
		fputc(')', out);
		break;
	case E_NEG:
		fputs("(- ", out);
		ast_print_expr(e->a, out);
		fputc(')', out);
		break;
	case E_CALL:
		fprintf(out, "(call %s", e->str);
		ast_print_args(e, out);
		fputc(')', out);
		break;
	case E_INDEX:
		fputs("(index ", out);
		ast_print_expr(e->a, out);
		ast_print_args(e, out);
		fputc(')', out);
		break;
	case E_LIST:
		fputs("(list", out);
		ast_print_args(e, out);
		fputc(')', out);
		break;
	case E_RANGE:
		fputs("(: ", out);
		ast_print_opt(e->a, out);
		fputc(' ', out);
		ast_print_opt(e->b, out);
		fputc(')', out);
		break;
	}
}

static const char *const ast_stmt_names[] = {
	[S_IMPORT] = "import", [S_PARAM] = "param", [S_TENSOR] = "tensor",
	[S_LEARN] = "learn", [S_LAGRANGIAN] = "lagrangian", [S_LAYER] = "layer",
	[S_WEIGHTS] = "weights", [S_BIAS] = "bias", [S_INIT] = "init",
	[S_CLAMP] = "clamp", [S_INPUT] = "input", [S_OUTPUT] = "output",
	[S_BLOCK] = "block", [S_USE] = "use",
};

static void ast_print_dims(const Stmt *s, FILE *out)
{
	if (s->ndims < 0)
		return;
	fputs(" [", out);
	for (int i = 0; i < s->ndims; i++) {
		if (i)
			fputc(' ', out);
		ast_print_expr(s->dims[i], out);
	}
	fputc(']', out);
}

static void ast_print_params(const Stmt *s, FILE *out)
{
	fputs(" (", out);
	for (int i = 0; i < s->nparams; i++) {
		if (i == s->nsemi)
			fputs(i ? " ;" : ";", out);
		fprintf(out, i ? " %s" : "%s", s->params[i]);
	}
	if (s->nsemi == s->nparams)
		fputs(s->nparams ? " ;" : ";", out);
	fputc(')', out);
}

static void ast_print_tagged(const char *tag, const Expr *e, FILE *out)
{
	if (!e)
		return;
	fprintf(out, " %s ", tag);
	ast_print_expr(e, out);
}

static void ast_print_stmt(const Stmt *s, int indent, FILE *out);

static void ast_print_body(const Stmt *s, int indent, FILE *out)
{
	for (int i = 0; i < s->nbody; i++) {
		fputc('\n', out);
		ast_print_stmt(s->body[i], indent + 2, out);
	}
}

static void ast_print_stmt(const Stmt *s, int indent, FILE *out)
{
	fprintf(out, "%*s(%s", indent, "", ast_stmt_names[s->kind]);
	if (s->kind == S_IMPORT) {
		fputc(' ', out);
		ast_print_string(s->str, out);
	}
	if (s->name)
		fprintf(out, " %s", s->name);
	ast_print_dims(s, out);
	if (s->kind == S_LAGRANGIAN || s->kind == S_BLOCK)
		ast_print_params(s, out);
	if (s->target) {
		fputc(' ', out);
		ast_print_expr(s->target, out);
	}
	ast_print_tagged(":", s->lhs, out);
	ast_print_tagged("--", s->rhs, out);
	ast_print_tagged(":", s->type, out);
	ast_print_tagged("=", s->value, out);
	for (int i = 0; i < s->nattrs; i++) {
		fprintf(out, " (%s ", s->attrs[i].name);
		ast_print_expr(s->attrs[i].value, out);
		fputc(')', out);
	}
	ast_print_body(s, indent, out);
	fputc(')', out);
}

void ast_print(const Module *m, FILE *out)
{
	for (int i = 0; i < m->nstmts; i++) {
		ast_print_stmt(m->stmts[i], 0, out);
		fputc('\n', out);
	}
}
