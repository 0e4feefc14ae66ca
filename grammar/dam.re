/* dam.re - the lexer of the .dam language (re2c 3.0 source of dam.lex.c).
 *
 * It scans the NUL-terminated text of one registered source with the
 * free-form generic API and an end-of-input rule: a NUL byte before the end
 * of the text is an ordinary (bad) character, the one at text[len] is the
 * end.  Tokens:
 *   - NEWLINE ends a statement, except inside ( ) or [ ] where newlines are
 *     skipped (the lexer keeps a stack of open brackets; braces do not
 *     suppress newlines because a block body is a statement list);
 *   - identifiers, possibly qualified (`attn.h` is ONE token), interned;
 *   - numbers (12, 1.5, .5, 3., 1e-3) as doubles; `1e`, `1.2.3`, `2x` are
 *     malformed numbers;
 *   - strings "..." with the escapes \\ \" \n \t;
 *   - keywords, punctuation, and `--`, the connection token.  Being a token
 *     of its own, `a--b` lexes as `a -- b`, and `x - -y` needs the blank.
 *   - '#' starts a comment that runs to the end of the line.
 * The lexer reports its own errors.  A bad character is skipped and YYerror
 * is returned, so the parser enters recovery without a second message; bad
 * numbers and strings are reported and still returned as tokens.  After one
 * error in a statement, further errors of that statement are not reported.
 * Columns count bytes from 1 (a tab is one column).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dam.tab.h"

/* Scanner configuration, shared by the blocks below. */
/*!re2c
	re2c:api = custom;
	re2c:api:style = free-form;
	re2c:define:YYCTYPE = "unsigned char";
	re2c:define:YYPEEK = "*lx->cur";
	re2c:define:YYSKIP = "++lx->cur;";
	re2c:define:YYBACKUP = "lx->mar = lx->cur;";
	re2c:define:YYRESTORE = "lx->cur = lx->mar;";
	re2c:define:YYLESSTHAN = "lx->lim - lx->cur < @@{len}";
	re2c:yyfill:enable = 0;
	re2c:eof = 0;

*/

enum { LEX_NEST_MAX = (int)sizeof(((Lexer *)0)->nest) };

void lex_init(Lexer *lx, Diags *d, Interner *in, uint32_t file)
{
	memset(lx, 0, sizeof *lx);
	const Source *src = diag_source(d, file);
	lx->d = d;
	lx->in = in;
	lx->arena = d->arena;
	lx->file = file;
	lx->base = lx->cur = lx->tok = lx->bol = (const unsigned char *)src->text;
	lx->lim = lx->base + src->len;
	lx->line = 1;
	lx->top = ast_stmts_new(lx->arena);
}

void lex_free(Lexer *lx)
{
	dam_free(lx->sb);
	lx->sb = NULL;
}

static Loc lex_loc(const Lexer *lx, const unsigned char *p)
{
	return (Loc){ lx->file, lx->line, (uint32_t)(p - lx->bol) + 1 };
}

/* Report "MSG 'PREFIX<c>'" unless this statement already has an error;
 * an unprintable byte c is shown as \xNN. */
static void lex_error(Lexer *lx, Loc loc, const char *msg, const char *prefix, unsigned c)
{
	if (lx->stmt_err)
		return;
	lx->stmt_err = true;
	if (c >= 32 && c < 127)
		diag_error(lx->d, loc, "%s '%s%c'", msg, prefix, (int)c);
	else
		diag_error(lx->d, loc, "%s '%s\\x%02X'", msg, prefix, c);
}

static void lex_putc(Lexer *lx, char c)
{
	if (lx->sn + 1 >= lx->scap) {
		lx->scap = lx->scap ? 2 * lx->scap : 64;
		lx->sb = dam_xrealloc(lx->sb, lx->scap);
	}
	lx->sb[lx->sn++] = c;
	lx->sb[lx->sn] = 0;
}

/* ------------------------------------------------------------------------
 * Bracket nesting: newlines are skipped while the innermost open bracket is
 * ( or [.  Past LEX_NEST_MAX levels the brackets are only counted.
 */

static int lex_top(const Lexer *lx)
{
	if (lx->depth == 0)
		return 0;
	return lx->depth <= LEX_NEST_MAX ? lx->nest[lx->depth - 1] : '(';
}

static bool lex_in_parens(const Lexer *lx)
{
	int t = lex_top(lx);
	return t == '(' || t == '[';
}

/* Forget the ( and [ opened since the innermost '{'. */
static void lex_drop_parens(Lexer *lx)
{
	int d = lx->depth < LEX_NEST_MAX ? lx->depth : LEX_NEST_MAX;
	while (d > 0 && lx->nest[d - 1] != '{')
		d--;
	lx->depth = d;
}

static void lex_open(Lexer *lx, int c)
{
	if (c == '{')
		lex_drop_parens(lx);     /* braces never sit inside ( or [ */
	if (lx->depth < LEX_NEST_MAX)
		lx->nest[lx->depth] = (unsigned char)c;
	lx->depth++;
}

/* ')' and ']' close the innermost ( or [ (whichever it is: mismatches are
 * the parser's business); '}' closes up to the innermost '{'. */
static void lex_close(Lexer *lx, int c)
{
	if (c != '}') {
		if (lex_in_parens(lx))
			lx->depth--;
		return;
	}
	lex_drop_parens(lx);
	if (lx->depth > 0)
		lx->depth--;
}

/* A keyword that starts a line inside ( or [ means a bracket was left open:
 * drop the open brackets and end the statement at the skipped newline. */
static int lex_keyword(Lexer *lx, int kw, Loc *lloc)
{
	if (!lx->nl_swallowed || !lex_in_parens(lx))
		return kw;
	lex_drop_parens(lx);
	lx->pending = kw;
	lx->pending_loc = *lloc;
	*lloc = lx->nl_loc;
	return NEWLINE;
}

/* ------------------------------------------------------------------------
 * Numbers and strings
 */

static int lex_number(Lexer *lx, YYSTYPE *lval, bool bad, Loc loc)
{
	lx->sn = 0;
	for (const unsigned char *p = lx->tok; p < lx->cur; p++)
		lex_putc(lx, (char)*p);
	if (bad) {
		if (!lx->stmt_err)
			diag_error(lx->d, loc, "malformed number '%s'", lx->sb);
		lx->stmt_err = true;
	}
	lval->num = strtod(lx->sb, NULL);
	return NUMBER;
}

static void lex_unterminated(Lexer *lx, Loc open)
{
	if (!lx->stmt_err)
		diag_error(lx->d, open, "unterminated string");
	lx->stmt_err = true;
}

/* Scan the body of a string after its opening quote into lx->sb. */
static void lex_string_body(Lexer *lx, Loc open)
{
	for (;;) {
		const unsigned char *s = lx->cur;
		/*!re2c
		["]               { return; }
		[^"\\\n]          { lex_putc(lx, (char)*s); continue; }
		"\\\\"            { lex_putc(lx, '\\'); continue; }
		"\\\""            { lex_putc(lx, '"'); continue; }
		"\\n"             { lex_putc(lx, '\n'); continue; }
		"\\t"             { lex_putc(lx, '\t'); continue; }
		"\\" [^\n]        {
			lex_error(lx, lex_loc(lx, s), "unknown escape sequence", "\\", s[1]);
			continue;
		}
		"\n"              { lx->cur = s; lex_unterminated(lx, open); return; }
		$                 { lex_unterminated(lx, open); return; }
		*                 { lex_unterminated(lx, open); return; }   /* '\\' at the end of a line */
		*/
	}
}

static int lex_string(Lexer *lx, YYSTYPE *lval, Loc loc)
{
	lx->sn = 0;
	lex_putc(lx, 0);
	lx->sn = 0;
	lex_string_body(lx, loc);
	lval->str = arena_strndup(lx->arena, lx->sb, lx->sn);
	return STRING;
}

/* ------------------------------------------------------------------------
 * The scanner
 */

static int lex_scan(Lexer *lx, YYSTYPE *lval, Loc *lloc)
{
	for (;;) {
		lx->tok = lx->cur;
		*lloc = lex_loc(lx, lx->tok);
		/*!re2c
		id   = [A-Za-z_][A-Za-z0-9_]*;
		dig  = [0-9];
		num  = (dig+ ("." dig*)? | "." dig+) ([eE] [+-]? dig+)?;
		junk = [A-Za-z0-9_.]*;

		$                 { return END; }
		[ \t\r]+          { continue; }
		"#" [^\n]*        { continue; }
		"\n"              {
			lx->line++;
			lx->bol = lx->cur;
			if (!lex_in_parens(lx))
				return NEWLINE;
			lx->nl_swallowed = true;
			lx->nl_loc = *lloc;
			continue;
		}

		"import"          { return lex_keyword(lx, IMPORT, lloc); }
		"param"           { return lex_keyword(lx, PARAM, lloc); }
		"tensor"          { return lex_keyword(lx, TENSOR, lloc); }
		"learn"           { return lex_keyword(lx, LEARN, lloc); }
		"lagrangian"      { return lex_keyword(lx, LAGRANGIAN, lloc); }
		"layer"           { return lex_keyword(lx, LAYER, lloc); }
		"weights"         { return lex_keyword(lx, WEIGHTS, lloc); }
		"bias"            { return lex_keyword(lx, BIAS, lloc); }
		"init"            { return lex_keyword(lx, INIT, lloc); }
		"clamp"           { return lex_keyword(lx, CLAMP, lloc); }
		"input"           { return lex_keyword(lx, INPUT, lloc); }
		"output"          { return lex_keyword(lx, OUTPUT, lloc); }
		"block"           { return lex_keyword(lx, BLOCK, lloc); }
		"use"             { return lex_keyword(lx, USE, lloc); }

		id ("." id)*      {
			lval->str = intern(lx->in, (const char *)lx->tok, (size_t)(lx->cur - lx->tok));
			return IDENT;
		}
		num               { return lex_number(lx, lval, false, *lloc); }
		(dig | "." dig) junk { return lex_number(lx, lval, true, *lloc); }
		["]               { return lex_string(lx, lval, *lloc); }

		"--"              { return DASHDASH; }
		[([{]             { lex_open(lx, *lx->tok); return *lx->tok; }
		[)\]}]            { lex_close(lx, *lx->tok); return *lx->tok; }
		[-+*/^,;:=]       { return *lx->tok; }

		*                 {
			lex_error(lx, *lloc, "unexpected character", "", *lx->tok);
			return YYerror;
		}
		*/
	}
}

/* The parser's yylex: hands out a held-back token first, and tracks
 * statement boundaries for the one-error-per-statement rule. */
int lex_token(YYSTYPE *lval, Loc *lloc, Lexer *lx)
{
	int t;
	if (lx->after_term)
		lx->stmt_err = false;
	if (lx->pending) {
		t = lx->pending;
		*lloc = lx->pending_loc;
		lx->pending = 0;
	} else {
		lx->nl_swallowed = false;
		t = lex_scan(lx, lval, lloc);
	}
	lx->text = lx->tok;
	lx->textlen = (size_t)(lx->cur - lx->tok);
	lx->after_term = t == NEWLINE || t == '{' || t == '}'
	              || (t == ';' && !lex_in_parens(lx));
	return t;
}
