/* diag.h - source files and the one diagnostics sink of a compilation.
 *
 * Every front-end pass reports through diag_error/diag_warning with a Loc;
 * the driver renders them clang-style:
 *
 *     examples/bad.dam:3:14: error: layer 'h' has 4 neurons but weight block 'xi' has 5 rows
 *         weights xi : h -- v = [[0,0,0]]
 *                      ^
 *
 * Diagnostics are rendered in the order they were reported.  A pass that
 * needs to know whether to go on asks diag_errors().
 */
#ifndef DAM_DIAG_H
#define DAM_DIAG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../ir/arena.h"

typedef struct Loc {
	uint32_t file;         /* index into the source table; 0 = no location */
	uint32_t line, col;    /* 1-based; col counts bytes */
} Loc;

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagSeverity;

typedef struct Diag {
	DiagSeverity sev;
	Loc loc;
	char *msg;
} Diag;

typedef struct Source {
	const char *path;      /* as given (used in messages) */
	const char *text;      /* NUL-terminated contents */
	size_t len;
} Source;

typedef struct Diags {
	Arena *arena;
	Source *files;  uint32_t nfiles, capfiles;   /* [0] unused */
	Diag *v;        size_t n, cap;
	int nerrors, nwarnings;
	int max_errors;        /* stop recording errors past this (default 50) */
	bool dropped_last;     /* the last error/warning was a duplicate: drop its notes */
} Diags;

void diags_init(Diags *d, Arena *a);
void diags_free(Diags *d);

/* Read a file into the source table. Returns its id, or 0 if it cannot be
 * read (errno is left set).  The same path twice yields the same id. */
uint32_t diag_add_file(Diags *d, const char *path);
/* Register in-memory text (tests, -e). */
uint32_t diag_add_text(Diags *d, const char *name, const char *text, size_t len);
const Source *diag_source(const Diags *d, uint32_t file);

void diag_error(Diags *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warning(Diags *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diags *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int  diag_errors(const Diags *d);

/* Render all diagnostics: "file:line:col: severity: msg", then the source
 * line (a very long one cut to the part around the column) and a caret
 * under the column. */
void diag_render(const Diags *d, FILE *out);

#endif
