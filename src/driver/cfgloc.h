/* cfgloc.h - locations inside a Lua config's table constructors.
 *
 * Lua reports where a statement is, not where a key inside `sweep = { ... }`
 * or `train = { ... }` is written; this small scanner tokenises the config's
 * text (names, strings, numbers, brackets with their brace depth; comments
 * and long strings skipped) so that a command can locate its errors at the
 * key (file:line:col of the diagnostics).
 */
#ifndef DAM_CFGLOC_H
#define DAM_CFGLOC_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"

typedef struct LxTok {
	char kind;             /* 'n' name, 's' string, '0' number, 'E' a two-char operator, else the char */
	int depth;             /* brace depth ({ counts after itself) */
	uint32_t line, col;
	size_t off, len;
} LxTok;

typedef struct Lx {
	const char *s;
	LxTok *t; size_t n, cap;
	uint32_t file;
} Lx;

void lx_scan(Lx *lx, const char *s);     /* lx->file set by the caller; lx zeroed first */
void lx_free(Lx *lx);
/* The directory of a config file (malloc'd; "" for a bare name): what its
 * relative paths are resolved against. */
char *lx_dirname(const char *path);
/* Where TOP.K1[.K2] is written (k1, k2 may be NULL); the nearest enclosing key
 * if not found; line 0 when TOP is not assigned in the text. */
Loc lx_key_loc(const Lx *lx, const char *top, const char *k1, const char *k2);
/* Where row `row` (0-based) of `dataset = { {..}, .. }` starts. */
Loc lx_row_loc(const Lx *lx, size_t row);

#endif
