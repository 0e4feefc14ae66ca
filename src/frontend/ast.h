/* ast.h - the syntax tree the parser builds (grammar/dam.y) and sema reads.
 *
 * The grammar is deliberately a little lax (STYLE.md): e.g. the bracket list
 * after a declared name is a list of expressions, and sema decides whether
 * `[D]` is a size, `[mu]` a fresh index or `[k: 2]` an index with an extent.
 * All nodes live in the compilation arena; names are interned (pointer
 * equality means name equality).
 */
#ifndef DAM_AST_H
#define DAM_AST_H

#include <stdbool.h>

#include "diag.h"

typedef enum {
	E_NUM,     /* num */
	E_STR,     /* str (unescaped) */
	E_IDENT,   /* str: name, may be qualified "inst.name" */
	E_BINOP,   /* op is one of + - * / ^; a op b */
	E_NEG,     /* -a */
	E_CALL,    /* str(args[0..nargs)); args before nsemi are positional, after ';' the rest
	              (nsemi == -1: no ';' was written) */
	E_INDEX,   /* a[args] */
	E_LIST,    /* [args] literal */
	E_RANGE,   /* a : b   (slice lo:hi, or index-with-extent name:extent); a or b may be NULL */
} ExprKind;

typedef struct Expr Expr;
struct Expr {
	ExprKind kind;
	Loc loc;
	double num;
	const char *str;
	int op;
	Expr *a, *b;
	Expr **args;
	int nargs;
	int nsemi;
	int ops;       /* the most binary operators on a path from this node to a leaf */
	int nest;      /* the most levels on such a path, where a flat chain of + - or of * / counts
	                  once (the symbolic IR flattens it): about the depth of its IR */
};

/* The tree below an Expr is at most ops + nest deep.  Every recursive pass
 * over expressions (sema's lowering and constant evaluation, ast_print, the
 * IR walks of derive, check and the backends) relies on these bounds, which
 * the parser enforces as each node is built (parse_bounded, grammar/dam.y):
 * a chain such as 1+1+...+1 of more than AST_MAX_OPS operators, or a nest
 * such as exp(exp(...)) more than AST_MAX_NEST levels deep, is an error. */
enum { AST_MAX_OPS = 10000, AST_MAX_NEST = 1000 };

typedef enum {
	S_IMPORT,      /* import "path"                       str */
	S_PARAM,       /* param name = value                  name, value */
	S_TENSOR,      /* tensor name[dims] = value           name, dims, value */
	S_LEARN,       /* learn name[dims] (= value)?         name, dims, value (may be NULL) */
	S_LAGRANGIAN,  /* lagrangian name(params) = value     name, params (nsemi splits arg/params), value */
	S_LAYER,       /* layer name[dims] : type attrs       name, dims, type, attrs */
	S_WEIGHTS,     /* weights name : lhs -- rhs = value   name, lhs, rhs, value, attrs */
	S_BIAS,        /* bias target = value                 target, value */
	S_INIT,        /* init target = value                 target, value */
	S_CLAMP,       /* clamp target = value                target, value */
	S_INPUT,       /* input name[dims] (: type)?          name, dims, type (may be NULL) */
	S_OUTPUT,      /* output name[dims]? = value          name, dims, value */
	S_BLOCK,       /* block name(params) { body }         name, params, body */
	S_USE,         /* use inst = block(args)              name (instance), value (E_CALL) */
} StmtKind;

typedef struct Attr {
	const char *name;
	Loc loc;
	Expr *value;
} Attr;

typedef struct Stmt Stmt;
struct Stmt {
	StmtKind kind;
	Loc loc;               /* of the keyword */
	const char *name;      /* declared name (interned) */
	Loc name_loc;
	const char *str;       /* S_IMPORT: path */
	Expr **dims; int ndims;  /* bracket list after the name; ndims = -1 when absent */
	Expr *value;           /* right-hand side after '=' (NULL when absent) */
	Expr *type;            /* S_LAYER: Lagrangian (ident or call); S_INPUT: e.g. index(V) */
	Expr *target;          /* S_BIAS/S_INIT/S_CLAMP: ident or index expression */
	Expr *lhs, *rhs;       /* S_WEIGHTS: the two layer references (ident or ident[idx]) */
	const char **params; Loc *param_locs; int nparams;
	int nsemi;             /* S_LAGRANGIAN/S_BLOCK: params before ';' (-1: no ';') */
	Attr *attrs; int nattrs;
	Stmt **body; int nbody;  /* S_BLOCK */
	uint32_t file;         /* source file id of this statement */
};

typedef struct Module {
	uint32_t file;
	Stmt **stmts;
	int nstmts;
} Module;

/* Interning: same bytes -> same pointer, for the lifetime of the arena. */
typedef struct Interner Interner;
Interner   *intern_new(Arena *a);
const char *intern(Interner *in, const char *s, size_t n);

/* Parse a registered source file (diag_add_file) into a Module.  Syntax
 * errors are reported to d; the parser recovers at statement boundaries and
 * returns the statements it could build (never NULL). */
Module *parse_module(Diags *d, Interner *in, uint32_t file);

/* Debug: print the AST in an S-expression form (golden tests of the parser). */
void ast_print(const Module *m, FILE *out);
void ast_print_expr(const Expr *e, FILE *out);

/* --- Constructors, used by the parser (grammar/dam.y) -----------------------
 * Locations: every Expr carries the loc of its first token, except the infix
 * operators E_BINOP and E_RANGE, which carry the loc of the operator ('+',
 * ':').  Lists grow inside the arena; nsemi is -1 unless a ';' was written. */
typedef struct ExprList { Expr **v; int n, cap, nsemi; } ExprList;
typedef struct NameList { const char **v; Loc *locs; int n, cap, nsemi; } NameList;
typedef struct AttrList { Attr *v; int n, cap; } AttrList;
typedef struct StmtList { Stmt **v; int n, cap; } StmtList;

Expr *ast_num(Arena *a, Loc loc, double v);
Expr *ast_str(Arena *a, Loc loc, const char *s);
Expr *ast_ident(Arena *a, Loc loc, const char *name);
Expr *ast_binop(Arena *a, Loc loc, int op, Expr *l, Expr *r);
Expr *ast_neg(Arena *a, Loc loc, Expr *e);
Expr *ast_call(Arena *a, Loc loc, const char *name, ExprList *args);
Expr *ast_index(Arena *a, Loc loc, Expr *base, ExprList *items);
Expr *ast_list(Arena *a, Loc loc, ExprList *elems);
Expr *ast_range(Arena *a, Loc loc, Expr *lo, Expr *hi);

ExprList *ast_exprs_new(Arena *a);
ExprList *ast_exprs_push(Arena *a, ExprList *l, Expr *e);
ExprList *ast_exprs_join(Arena *a, ExprList *l, ExprList *r);   /* l ';' r */
NameList *ast_names_new(Arena *a);
NameList *ast_names_push(Arena *a, NameList *l, const char *name, Loc loc);
NameList *ast_names_join(Arena *a, NameList *l, NameList *r);   /* l ';' r */
AttrList *ast_attrs_push(Arena *a, AttrList *l, Attr at);        /* l may be NULL */
StmtList *ast_stmts_new(Arena *a);
StmtList *ast_stmts_one(Arena *a, Stmt *s);
void      ast_stmts_push(Arena *a, StmtList *l, Stmt *s);
void      ast_stmts_append(Arena *a, StmtList *l, const StmtList *more);
void      ast_stmts_set_loc(StmtList *l, Loc loc);

Stmt *ast_stmt(Arena *a, StmtKind kind, Loc loc);
Stmt *ast_stmt_named(Arena *a, StmtKind kind, Loc loc, const char *name, Loc name_loc);
void  ast_stmt_dims(Stmt *s, const ExprList *dims);       /* NULL: ndims = -1 */
void  ast_stmt_params(Stmt *s, const NameList *params);
void  ast_stmt_attrs(Stmt *s, const AttrList *attrs);     /* NULL: none */
void  ast_stmt_body(Stmt *s, const StmtList *body);

#endif
