/* diag.c - the source table and the diagnostics sink (see diag.h).
 *
 * Sources are read whole into the compilation arena, NUL-terminated but
 * binary safe (len is the real length even if the text holds NUL bytes).
 * Diagnostics are kept in report order and rendered clang-style: the
 * location, the severity and the message, then the source line verbatim
 * and a caret under the column.  Tabs before the column are copied into the
 * caret line so that the caret lines up whatever the tab width.  A line
 * longer than DIAG_WIDE bytes (a generated one-line model) is shown as the
 * DIAG_CONTEXT bytes on each side of the column, cut ends marked "...".  After
 * max_errors errors nothing more is recorded except one final
 * "too many errors, stopping".
 */
#include "diag.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

void diags_init(Diags *d, Arena *a)
{
	memset(d, 0, sizeof *d);
	d->arena = a;
	d->max_errors = 50;
	d->capfiles = 8;
	d->files = dam_xrealloc(NULL, d->capfiles * sizeof *d->files);
	memset(&d->files[0], 0, sizeof d->files[0]);
	d->nfiles = 1;                       /* id 0 means "no file" */
}

void diags_free(Diags *d)
{
	dam_free(d->files);
	dam_free(d->v);
	d->files = NULL;
	d->v = NULL;
	d->nfiles = d->capfiles = 0;
	d->n = d->cap = 0;
}

/* ------------------------------------------------------------------------
 * Source table
 */

static uint32_t diag_find(const Diags *d, const char *path)
{
	for (uint32_t i = 1; i < d->nfiles; i++)
		if (strcmp(d->files[i].path, path) == 0)
			return i;
	return 0;
}

static uint32_t diag_register(Diags *d, const char *path, const char *text, size_t len)
{
	if (d->nfiles == d->capfiles) {
		d->capfiles *= 2;
		d->files = dam_xrealloc(d->files, d->capfiles * sizeof *d->files);
	}
	d->files[d->nfiles] = (Source){ arena_strdup(d->arena, path), text, len };
	return d->nfiles++;
}

/* Read all of f into a dam_xrealloc buffer; NULL on a read error. */
static char *diag_slurp(FILE *f, size_t *len)
{
	size_t n = 0, cap = 4096;
	char *buf = dam_xrealloc(NULL, cap);
	for (;;) {
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		cap *= 2;
		buf = dam_xrealloc(buf, cap);
	}
	if (ferror(f)) {
		int err = errno;
		dam_free(buf);
		errno = err ? err : EIO;
		return NULL;
	}
	*len = n;
	return buf;
}

uint32_t diag_add_file(Diags *d, const char *path)
{
	uint32_t id = diag_find(d, path);
	if (id)
		return id;
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	size_t len = 0;
	char *buf = diag_slurp(f, &len);
	int err = errno;
	fclose(f);
	if (!buf) {
		errno = err;
		return 0;
	}
	char *text = arena_strndup(d->arena, buf, len);
	dam_free(buf);
	return diag_register(d, path, text, len);
}

uint32_t diag_add_text(Diags *d, const char *name, const char *text, size_t len)
{
	return diag_register(d, name, arena_strndup(d->arena, text, len), len);
}

const Source *diag_source(const Diags *d, uint32_t file)
{
	if (file == 0 || file >= d->nfiles)
		return NULL;
	return &d->files[file];
}

/* ------------------------------------------------------------------------
 * Reporting
 */

static void diag_push(Diags *d, DiagSeverity sev, Loc loc, char *msg)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 16;
		d->v = dam_xrealloc(d->v, d->cap * sizeof *d->v);
	}
	d->v[d->n++] = (Diag){ sev, loc, msg };
}

static char *diag_vformat(Arena *a, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	size_t size = (size_t)(n < 0 ? 0 : n) + 1;
	char *s = arena_alloc(a, size);
	vsnprintf(s, size, fmt, ap2);
	va_end(ap2);
	return s;
}

static bool diag_line(const Source *src, uint32_t line, size_t *start, size_t *len);

/* A location past the last line (the end of file after a final newline)
 * moves to the end of the last line, so it gets a source line and a caret. */
static Loc diag_clamp(const Diags *d, Loc loc)
{
	const Source *src = loc.file ? diag_source(d, loc.file) : NULL;
	size_t start, len;
	if (!src || loc.line <= 1 || diag_line(src, loc.line, &start, &len))
		return loc;
	if (diag_line(src, loc.line - 1, &start, &len) && loc.col == 1) {
		loc.line--;
		loc.col = (uint32_t)len + 1;
	}
	return loc;
}

/* The same error at the same place is reported once (e.g. a block argument
 * used twice in the block's body); its notes are dropped with it. */
static bool diag_seen(Diags *d, DiagSeverity sev, Loc loc, const char *msg)
{
	if (sev == DIAG_NOTE)
		return d->n && d->dropped_last;
	d->dropped_last = false;
	for (size_t i = 0; i < d->n; i++) {
		const Diag *g = &d->v[i];
		if (g->sev == sev && g->loc.file == loc.file && g->loc.line == loc.line && g->loc.col == loc.col &&
		    strcmp(g->msg, msg) == 0) {
			d->dropped_last = true;
			return true;
		}
	}
	return false;
}

/* Past the error limit nothing is recorded (notes of dropped errors
 * included); the first error over it records the "stopping" line. */
static void diag_vreport(Diags *d, DiagSeverity sev, Loc loc, const char *fmt, va_list ap)
{
	if (d->nerrors > d->max_errors)
		return;
	if (sev == DIAG_ERROR && d->nerrors == d->max_errors) {
		d->nerrors++;
		diag_push(d, DIAG_ERROR, (Loc){ 0, 0, 0 },
		          arena_strdup(d->arena, "too many errors, stopping"));
		return;
	}
	char *msg = diag_vformat(d->arena, fmt, ap);
	loc = diag_clamp(d, loc);
	if (diag_seen(d, sev, loc, msg))
		return;
	if (sev == DIAG_ERROR)
		d->nerrors++;
	else if (sev == DIAG_WARNING)
		d->nwarnings++;
	diag_push(d, sev, loc, msg);
}

void diag_error(Diags *d, Loc loc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_vreport(d, DIAG_ERROR, loc, fmt, ap);
	va_end(ap);
}

void diag_warning(Diags *d, Loc loc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_vreport(d, DIAG_WARNING, loc, fmt, ap);
	va_end(ap);
}

void diag_note(Diags *d, Loc loc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_vreport(d, DIAG_NOTE, loc, fmt, ap);
	va_end(ap);
}

int diag_errors(const Diags *d)
{
	return d->nerrors;
}

/* ------------------------------------------------------------------------
 * Rendering
 */

static const char *const diag_sev_names[] = {
	[DIAG_ERROR] = "error", [DIAG_WARNING] = "warning", [DIAG_NOTE] = "note",
};

/* Find line `line` (1-based) of src: its start and length without the
 * newline.  False when the text has no such line. */
static bool diag_line(const Source *src, uint32_t line, size_t *start, size_t *len)
{
	size_t p = 0;
	for (uint32_t l = 1; l < line; l++) {
		const char *nl = memchr(src->text + p, '\n', src->len - p);
		if (!nl)
			return false;
		p = (size_t)(nl - src->text) + 1;
	}
	if (line == 0 || p >= src->len)
		return false;
	const char *nl = memchr(src->text + p, '\n', src->len - p);
	*start = p;
	*len = nl ? (size_t)(nl - src->text) - p : src->len - p;
	return true;
}

enum { DIAG_WIDE = 200, DIAG_CONTEXT = 80 };

static bool diag_utf8_cont(char c)
{
	return ((unsigned char)c & 0xC0) == 0x80;
}

static void diag_render_source(const Source *src, Loc loc, FILE *out)
{
	size_t start, len;
	if (!diag_line(src, loc.line, &start, &len))
		return;
	const char *s = src->text + start;
	size_t col = loc.col ? loc.col - 1 : 0;
	if (col > len)
		col = len;                    /* at most just past the end */
	size_t from = 0, to = len;        /* the part of the line shown */
	if (len > DIAG_WIDE) {
		from = col > DIAG_CONTEXT ? col - DIAG_CONTEXT : 0;
		to = len - col > DIAG_CONTEXT ? col + DIAG_CONTEXT : len;
		while (from > 0 && diag_utf8_cont(s[from]))
			from--;
		while (to < len && diag_utf8_cont(s[to]))
			to++;
	}
	const char *cut = from ? "..." : "";
	fputs(cut, out);
	fwrite(s + from, 1, to - from, out);
	fputs(to < len ? "...\n" : "\n", out);
	fprintf(out, "%*s", (int)strlen(cut), "");
	for (size_t i = from; i < col; i++)
		fputc(s[i] == '\t' ? '\t' : ' ', out);
	fputs("^\n", out);
}

static void diag_render_one(const Diags *d, const Diag *g, FILE *out)
{
	const Source *src = diag_source(d, g->loc.file);
	const char *sev = diag_sev_names[g->sev];
	if (!src) {
		fprintf(out, "damc: %s: %s\n", sev, g->msg);
		return;
	}
	fprintf(out, "%s:%u:%u: %s: %s\n", src->path, g->loc.line, g->loc.col, sev, g->msg);
	diag_render_source(src, g->loc, out);
}

void diag_render(const Diags *d, FILE *out)
{
	for (size_t i = 0; i < d->n; i++)
		diag_render_one(d, &d->v[i], out);
}
