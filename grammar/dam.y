/* dam.y - the Bison grammar of the .dam language.
 *
 * A pure, location-tracking LALR(1) parser with LAC, so that the "expected"
 * lists of syntax errors are exact.  Actions are thin: they call the ast_*
 * constructors of src/frontend/ast.c.  A program is a list of statements;
 * statements end at an end of line, ';', the end of the file, or just before
 * the '}' that closes a block.  Error recovery works at statement level: an
 * `error` production skips to the next terminator, so each statement yields
 * at most one diagnostic and several errors in one file are all reported.
 *
 * Syntax errors are worded by parse_report (parse.error custom):
 *     unexpected number '3', expected identifier
 *     unexpected end of line, expected '='
 * When every token that can start an expression is acceptable, they are
 * shown together as "expression".  The lexer reports its own errors and
 * returns YYerror, which enters recovery without a second message.
 *
 * Bison's stack bounds the nesting of brackets; parse_bounded bounds what it
 * does not see, a left-associative chain such as 1+1+...+1, which the parser
 * reduces as it goes but which makes a tree as deep as it is long.  Every
 * node is checked against the bounds of ast.h as it is built, so no later
 * recursive pass can run out of C stack.
 */
%require "3.8"
%define api.pure full
%define api.location.type {Loc}
%define parse.error custom
%define parse.lac full
%locations
%expect 0
%param {Lexer *lx}

%code requires {
#include "ast.h"
#include "diag.h"

/* Lexer state, shared by the scanner (grammar/dam.re) and the parser. */
typedef struct Lexer {
	Diags *d;
	Interner *in;
	Arena *arena;                 /* AST nodes and strings */
	uint32_t file;
	const unsigned char *base, *cur, *lim, *mar, *tok, *bol;
	uint32_t line;
	const unsigned char *text;    /* text and length of the last token returned */
	size_t textlen;
	unsigned char nest[256];      /* open ( [ { brackets, innermost last */
	int depth;
	bool nl_swallowed;            /* a newline was skipped inside ( or [ */
	Loc nl_loc;
	bool after_term;              /* the last token ended a statement */
	bool stmt_err;                /* an error was reported for this statement */
	int pending;                  /* token held back (0: none) */
	Loc pending_loc;
	char *sb; size_t sn, scap;    /* scratch buffer for strings and numbers */
	StmtList *top;                /* top-level statements */
} Lexer;
}

%code provides {
void lex_init(Lexer *lx, Diags *d, Interner *in, uint32_t file);
void lex_free(Lexer *lx);
int  lex_token(YYSTYPE *lval, Loc *lloc, Lexer *lx);
}

%code {
#include <string.h>

#define yylex lex_token
#define P (lx->arena)

/* A rule's location is that of its first symbol (or of the previous one
 * for empty rules). */
#define YYLLOC_DEFAULT(Cur, Rhs, N) \
	do { (Cur) = (N) ? YYRHSLOC(Rhs, 1) : YYRHSLOC(Rhs, 0); } while (0)

static void yyerror(const Loc *loc, Lexer *lx, const char *msg);
static Expr *parse_bounded(Lexer *lx, Expr *e);

/* Every node with children is built through B, which keeps the tree within
 * the bounds of ast.h (AST_MAX_OPS, AST_MAX_NEST). */
#define B(e) parse_bounded(lx, (e))
}

%union {
	double num;
	const char *str;
	Expr *expr;
	ExprList *exprs;
	NameList *names;
	Attr attr;
	AttrList *attrs;
	Stmt *stmt;
	StmtList *stmts;
}

%token END 0 "end of file"
%token NEWLINE "end of line"
%token <str> IDENT "identifier"
%token <num> NUMBER "number"
%token <str> STRING "string"
%token IMPORT "'import'" PARAM "'param'" TENSOR "'tensor'" LEARN "'learn'"
       LAGRANGIAN "'lagrangian'" LAYER "'layer'" WEIGHTS "'weights'"
       BIAS "'bias'" INIT "'init'" CLAMP "'clamp'" INPUT "'input'"
       OUTPUT "'output'" BLOCK "'block'" USE "'use'"
%token DASHDASH "'--'"
%token '=' ':' ',' ';' '(' ')' '[' ']' '{' '}'

%left '+' '-'
%left '*' '/'
%precedence UNARY
%right '^'

%type <expr> expr postfix primary call item ref opt_value opt_type carg
%type <exprs> exprs items args list_elems opt_dims cargs
%type <str> name softkw
%type <names> names opt_names params
%type <attr> attr
%type <attrs> attrs
%type <stmt> simple block_stmt learn_def
%type <stmts> stmt param_defs learn_defs blk_stmts block_body

%start module

%%

module
	: top_stmts
	| top_stmts stmt        { ast_stmts_append(P, lx->top, $2); }
	| top_stmts error
	| top_stmts skipped_block
	;

top_stmts
	: %empty
	| top_stmts term
	| top_stmts stmt term   { ast_stmts_append(P, lx->top, $2); }
	| top_stmts error term  { yyerrok; }
	| top_stmts skipped_block term { yyerrok; }
	;

/* After an error in a block header, still parse (and check) the body, so
 * that its statements and its '}' do not cause more errors. */
skipped_block
	: error '{' block_body '}'
	;

term: NEWLINE | ';' ;

/* Block bodies repeat the statement list so that their states are not
 * merged with the top level ones (recovery then stops at the right '}'). */
block_body
	: blk_stmts
	| blk_stmts stmt        { ast_stmts_append(P, $1, $2); $$ = $1; }
	| blk_stmts error
	;

blk_stmts
	: %empty                { $$ = ast_stmts_new(P); }
	| blk_stmts term
	| blk_stmts stmt term   { ast_stmts_append(P, $1, $2); $$ = $1; }
	| blk_stmts error term  { yyerrok; $$ = $1; }
	;

stmt
	: simple                { $$ = ast_stmts_one(P, $1); }
	| PARAM param_defs      { $$ = $2; ast_stmts_set_loc($$, @1); }
	| LEARN learn_defs      { $$ = $2; ast_stmts_set_loc($$, @1); }
	;

param_defs
	: name '=' expr
		{ $$ = ast_stmts_one(P, ast_stmt_named(P, S_PARAM, @$, $1, @1)); $$->v[0]->value = $3; }
	| param_defs ',' name '=' expr
		{ Stmt *s = ast_stmt_named(P, S_PARAM, @$, $3, @3); s->value = $5;
		  ast_stmts_push(P, $1, s); $$ = $1; }
	;

learn_defs
	: learn_def             { $$ = ast_stmts_one(P, $1); }
	| learn_defs ',' learn_def { ast_stmts_push(P, $1, $3); $$ = $1; }
	;

learn_def
	: name '[' items ']' opt_value
		{ $$ = ast_stmt_named(P, S_LEARN, @$, $1, @1); ast_stmt_dims($$, $3); $$->value = $5; }
	;

simple
	: IMPORT STRING
		{ $$ = ast_stmt(P, S_IMPORT, @1); $$->str = $2; }
	| TENSOR name opt_dims '=' expr
		{ $$ = ast_stmt_named(P, S_TENSOR, @1, $2, @2); ast_stmt_dims($$, $3); $$->value = $5; }
	| LAGRANGIAN IDENT '(' params ')' '=' expr
		{ $$ = ast_stmt_named(P, S_LAGRANGIAN, @1, $2, @2); ast_stmt_params($$, $4); $$->value = $7; }
	| LAYER IDENT '[' items ']' ':' expr attrs
		{ $$ = ast_stmt_named(P, S_LAYER, @1, $2, @2); ast_stmt_dims($$, $4);
		  $$->type = $7; ast_stmt_attrs($$, $8); }
	| WEIGHTS IDENT ':' ref DASHDASH ref opt_value attrs
		{ $$ = ast_stmt_named(P, S_WEIGHTS, @1, $2, @2); $$->lhs = $4; $$->rhs = $6;
		  $$->value = $7; ast_stmt_attrs($$, $8); }
	| BIAS ref '=' expr     { $$ = ast_stmt(P, S_BIAS, @1); $$->target = $2; $$->value = $4; }
	| INIT ref '=' expr     { $$ = ast_stmt(P, S_INIT, @1); $$->target = $2; $$->value = $4; }
	| CLAMP ref '=' expr    { $$ = ast_stmt(P, S_CLAMP, @1); $$->target = $2; $$->value = $4; }
	| INPUT IDENT '[' items ']' opt_type
		{ $$ = ast_stmt_named(P, S_INPUT, @1, $2, @2); ast_stmt_dims($$, $4); $$->type = $6; }
	| OUTPUT IDENT opt_dims '=' expr
		{ $$ = ast_stmt_named(P, S_OUTPUT, @1, $2, @2); ast_stmt_dims($$, $3); $$->value = $5; }
	| USE IDENT '=' call
		{ $$ = ast_stmt_named(P, S_USE, @1, $2, @2); $$->value = $4; }
	| block_stmt
	;

block_stmt
	: BLOCK IDENT '(' params ')' newlines '{' block_body '}'
		{ $$ = ast_stmt_named(P, S_BLOCK, @1, $2, @2); ast_stmt_params($$, $4); ast_stmt_body($$, $8); }
	;

/* The '{' of a block may also start the next line. */
newlines
	: %empty
	| newlines NEWLINE
	;

opt_dims
	: %empty                { $$ = NULL; }
	| '[' items ']'         { $$ = $2; }
	;

opt_value
	: %empty                { $$ = NULL; }
	| '=' expr              { $$ = $2; }
	;

opt_type
	: %empty                { $$ = NULL; }
	| ':' expr              { $$ = $2; }
	;

/* A layer reference: `h` or `h[mu]` (weights ends, bias/init/clamp targets). */
ref
	: IDENT                 { $$ = ast_ident(P, @1, $1); }
	| IDENT '[' items ']'   { $$ = B(ast_index(P, @1, ast_ident(P, @1, $1), $3)); }
	;

attrs
	: %empty                { $$ = NULL; }
	| attrs attr            { $$ = ast_attrs_push(P, $1, $2); }
	;

attr
	: IDENT '=' expr        { $$ = (Attr){ $1, @1, $3 }; }
	| BIAS '=' expr         { $$ = (Attr){ intern(lx->in, "bias", 4), @1, $3 }; }
	| INIT '=' expr         { $$ = (Attr){ intern(lx->in, "init", 4), @1, $3 }; }
	;

/* Parameter lists of lagrangians and blocks: `(x; beta, gamma)`. */
params
	: opt_names             { $$ = $1; $$->nsemi = -1; }
	| opt_names ';' opt_names { $$ = ast_names_join(P, $1, $3); }
	;

opt_names
	: %empty                { $$ = ast_names_new(P); }
	| names
	;

names
	: IDENT                 { $$ = ast_names_push(P, ast_names_new(P), $1, @1); }
	| names ',' IDENT       { $$ = ast_names_push(P, $1, $3, @3); }
	;

/* Bracket lists: expressions or ranges lo:hi (either side optional). */
items
	: item                  { $$ = ast_exprs_push(P, ast_exprs_new(P), $1); }
	| items ',' item        { $$ = ast_exprs_push(P, $1, $3); }
	;

item
	: expr
	| expr ':' expr         { $$ = B(ast_range(P, @2, $1, $3)); }
	| expr ':'              { $$ = B(ast_range(P, @2, $1, NULL)); }
	| ':' expr              { $$ = B(ast_range(P, @1, NULL, $2)); }
	| ':'                   { $$ = ast_range(P, @1, NULL, NULL); }
	;

expr
	: expr '+' expr         { $$ = B(ast_binop(P, @2, '+', $1, $3)); }
	| expr '-' expr         { $$ = B(ast_binop(P, @2, '-', $1, $3)); }
	| expr '*' expr         { $$ = B(ast_binop(P, @2, '*', $1, $3)); }
	| expr '/' expr         { $$ = B(ast_binop(P, @2, '/', $1, $3)); }
	| expr '^' expr         { $$ = B(ast_binop(P, @2, '^', $1, $3)); }
	| '-' expr %prec UNARY  { $$ = B(ast_neg(P, @1, $2)); }
	| '+' expr %prec UNARY  { $$ = $2; }
	| postfix
	;

postfix
	: primary
	| call
	| postfix '[' items ']' { $$ = B(ast_index(P, $1->loc, $1, $3)); }
	;

call
	: IDENT '(' args ')'    { $$ = B(ast_call(P, @1, $1, $3)); }
	;

/* Call arguments: positional ones, optionally ';' and the rest.  An
 * argument may be `name: extent` (the index of a reduction: sum(i: 4, ...)). */
args
	: %empty                { $$ = ast_exprs_new(P); }
	| cargs
	| cargs ';'             { $$ = $1; $$->nsemi = $1->n; }
	| cargs ';' cargs       { $$ = ast_exprs_join(P, $1, $3); }
	| ';' cargs             { $$ = $2; $$->nsemi = 0; }
	| ';'                   { $$ = ast_exprs_new(P); $$->nsemi = 0; }
	;

cargs
	: carg                  { $$ = ast_exprs_push(P, ast_exprs_new(P), $1); }
	| cargs ',' carg        { $$ = ast_exprs_push(P, $1, $3); }
	;

carg
	: expr
	| expr ':' expr         { $$ = B(ast_range(P, @2, $1, $3)); }
	;

/* Statement keywords that are not reserved where a name is expected:
 * `param weights = "ckpt.npz"` and `load(weights, "a")` are fine. */
name
	: IDENT
	| softkw
	;

softkw
	: WEIGHTS               { $$ = intern(lx->in, "weights", 7); }
	| INPUT                 { $$ = intern(lx->in, "input", 5); }
	| OUTPUT                { $$ = intern(lx->in, "output", 6); }
	| BIAS                  { $$ = intern(lx->in, "bias", 4); }
	| INIT                  { $$ = intern(lx->in, "init", 4); }
	| CLAMP                 { $$ = intern(lx->in, "clamp", 5); }
	| LEARN                 { $$ = intern(lx->in, "learn", 5); }
	| BLOCK                 { $$ = intern(lx->in, "block", 5); }
	;

exprs
	: expr                  { $$ = ast_exprs_push(P, ast_exprs_new(P), $1); }
	| exprs ',' expr        { $$ = ast_exprs_push(P, $1, $3); }
	;

primary
	: NUMBER                { $$ = ast_num(P, @1, $1); }
	| STRING                { $$ = ast_str(P, @1, $1); }
	| name                  { $$ = ast_ident(P, @1, $1); }
	| '(' expr ')'          { $$ = $2; }
	| '[' list_elems ']'    { $$ = B(ast_list(P, @1, $2)); }
	;

list_elems
	: exprs
	| exprs ','
	;

%%

/* ------------------------------------------------------------------------
 * Error messages
 */

enum { PARSE_MAX_EXPECTED = 4 };

/* The tokens that can start an expression; when all are acceptable they
 * are listed as one "expression". */
static bool parse_starts_expr(yysymbol_kind_t k)
{
	return k == YYSYMBOL_IDENT || k == YYSYMBOL_NUMBER || k == YYSYMBOL_STRING
	    || k == YYTRANSLATE('(') || k == YYTRANSLATE('[')
	    || k == YYTRANSLATE('-') || k == YYTRANSLATE('+');
}

/* The statement keywords; when all are acceptable the message says
 * "expected statement". */
static bool parse_starts_stmt(yysymbol_kind_t k)
{
	return k >= YYSYMBOL_IMPORT && k <= YYSYMBOL_USE;
}

/* Append the unexpected token's name, with its text for tokens that have
 * one: identifier 'foo', number '3', string "abc" (long texts shortened,
 * unprintable bytes as \xNN). */
static size_t parse_describe(char *buf, size_t cap, yysymbol_kind_t k, const Lexer *lx)
{
	size_t n = (size_t)snprintf(buf, cap, "%s", yysymbol_name(k));
	if (k != YYSYMBOL_IDENT && k != YYSYMBOL_NUMBER && k != YYSYMBOL_STRING)
		return n;
	char q = k == YYSYMBOL_STRING ? 0 : '\'';
	size_t len = lx->textlen > 40 ? 37 : lx->textlen;
	n += (size_t)snprintf(buf + n, cap - n, q ? " %c" : " ", q);
	for (size_t i = 0; i < len && n + 8 < cap; i++) {
		unsigned c = lx->text[i];
		n += (size_t)snprintf(buf + n, cap - n, c >= 32 && c < 127 ? "%c" : "\\x%02X", c);
	}
	n += (size_t)snprintf(buf + n, cap - n, "%s%.1s", len < lx->textlen ? "..." : "", q ? "'" : "");
	return n;
}

/* Statement keywords that may also be names (the `softkw` rule). */
static bool parse_soft_kw(yysymbol_kind_t k)
{
	return k == YYSYMBOL_WEIGHTS || k == YYSYMBOL_INPUT || k == YYSYMBOL_OUTPUT || k == YYSYMBOL_BIAS
	    || k == YYSYMBOL_INIT || k == YYSYMBOL_CLAMP || k == YYSYMBOL_LEARN || k == YYSYMBOL_BLOCK;
}

/* Is a whole statement expected (all statement keywords)? Then keep them. */
static bool parse_starts_stmt_only(const yysymbol_kind_t *all, int n)
{
	int nkw = 0;
	for (int i = 0; i < n; i++)
		nkw += parse_starts_stmt(all[i]);
	return nkw == YYSYMBOL_USE - YYSYMBOL_IMPORT + 1;
}

/* "unexpected X, expected A or B": at most four expected tokens. */
static int yyreport_syntax_error(const yypcontext_t *ctx, Lexer *lx)
{
	if (lx->stmt_err)
		return 0;               /* one diagnostic per statement */
	lx->stmt_err = true;
	yysymbol_kind_t all[YYNTOKENS];
	int n = yypcontext_expected_tokens(ctx, all, YYNTOKENS);
	if (n < 0)
		return n;
	/* Soft keywords (usable as names) are not listed where a name fits. */
	bool ident = false;
	for (int i = 0; i < n; i++)
		ident = ident || all[i] == YYSYMBOL_IDENT;
	int kept = 0;
	for (int i = 0; i < n; i++)
		if (!ident || !parse_soft_kw(all[i]) || parse_starts_stmt_only(all, n))
			all[kept++] = all[i];
	n = kept;
	const char *names[YYNTOKENS + 1];
	int m = 0, nexpr = 0, nkw = 0;
	for (int i = 0; i < n; i++) {
		nexpr += parse_starts_expr(all[i]);
		nkw += parse_starts_stmt(all[i]);
	}
	if (nkw == YYSYMBOL_USE - YYSYMBOL_IMPORT + 1)
		names[m++] = "statement";     /* the terminators are not worth listing */
	else if (nexpr == 7)
		names[m++] = "expression";
	for (int i = 0; i < n && nkw != YYSYMBOL_USE - YYSYMBOL_IMPORT + 1; i++)
		if (nexpr != 7 || !parse_starts_expr(all[i]))
			names[m++] = yysymbol_name(all[i]);
	char buf[512];
	size_t len = (size_t)snprintf(buf, sizeof buf, "unexpected ");
	len += parse_describe(buf + len, sizeof buf - len, yypcontext_token(ctx), lx);
	for (int i = 0; m <= PARSE_MAX_EXPECTED && i < m; i++)
		len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s",
		                        i ? " or " : ", expected ", names[i]);
	diag_error(lx->d, *yypcontext_location(ctx), "%s", buf);
	return 0;
}

/* Past the bounds of ast.h, report the node (once per statement: for a long
 * chain it is the first operator too many) and put a 0 in its place, so the
 * tree that later passes walk stays bounded even after the error. */
static Expr *parse_bounded(Lexer *lx, Expr *e)
{
	if (e->ops <= AST_MAX_OPS && e->nest <= AST_MAX_NEST)
		return e;
	if (!lx->stmt_err) {
		if (e->nest > AST_MAX_NEST)
			diag_error(lx->d, e->loc, "expression is nested too deeply: more than %d levels", AST_MAX_NEST);
		else
			diag_error(lx->d, e->loc, "expression is too long: more than %d operators in one chain",
			           AST_MAX_OPS);
		lx->stmt_err = true;
	}
	return ast_num(P, e->loc, 0);
}

/* Only reached when the parser stack overflows. */
static void yyerror(const Loc *loc, Lexer *lx, const char *msg)
{
	if (strcmp(msg, "memory exhausted") == 0)
		msg = "program nested too deeply";
	diag_error(lx->d, *loc, "%s", msg);
}

Module *parse_module(Diags *d, Interner *in, uint32_t file)
{
	Module *m = arena_alloc(d->arena, sizeof *m);
	m->file = file;
	if (!diag_source(d, file))
		return m;
	Lexer lx;
	lex_init(&lx, d, in, file);
	yyparse(&lx);
	m->stmts = lx.top->v;
	m->nstmts = lx.top->n;
	lex_free(&lx);
	return m;
}
