/* t_fe_diag.c - the source table and the diagnostics sink (diag.h).
 *
 * Checks the exact clang-style rendering (location, severity, source line,
 * caret, tabs), diagnostics without a location or past the last line, the
 * error limit, and binary-safe file reading.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "tap.h"

static char *render(const Diags *d)
{
	char *s;
	size_t n;
	FILE *out = open_memstream(&s, &n);
	diag_render(d, out);
	fclose(out);
	return s;
}

static void test_render(void)
{
	Arena a;
	arena_init(&a);
	Diags d;
	diags_init(&d, &a);
	const char *text = "layer h[4] : relu\n\tweights xi : h -- v\nlast";
	uint32_t f = diag_add_text(&d, "m.dam", text, strlen(text));
	ok(f == 1, "first file id is 1");
	ok(diag_source(&d, 0) == NULL && diag_source(&d, 7) == NULL, "no source for ids 0 and 7");
	diag_error(&d, (Loc){ f, 2, 15 }, "layer '%s' has %d neurons", "h", 4);
	diag_warning(&d, (Loc){ f, 1, 1 }, "unused layer");
	diag_note(&d, (Loc){ f, 3, 5 }, "just past the end");
	diag_error(&d, (Loc){ 0, 0, 0 }, "no location");
	diag_note(&d, (Loc){ f, 9, 1 }, "no such line");
	diag_error(&d, (Loc){ f, 1, 400 }, "column far past the end");
	char *s = render(&d);
	is_str(s,
	       "m.dam:2:15: error: layer 'h' has 4 neurons\n"
	       "\tweights xi : h -- v\n"
	       "\t             ^\n"
	       "m.dam:1:1: warning: unused layer\n"
	       "layer h[4] : relu\n"
	       "^\n"
	       "m.dam:3:5: note: just past the end\n"
	       "last\n"
	       "    ^\n"
	       "damc: error: no location\n"
	       "m.dam:9:1: note: no such line\n"
	       "m.dam:1:400: error: column far past the end\n"
	       "layer h[4] : relu\n"
	       "                 ^\n",
	       "rendering");
	free(s);
	ok(diag_errors(&d) == 3 && d.nwarnings == 1, "counts");
	diags_free(&d);
	arena_free(&a);
}

static void test_trailing_newline(void)
{
	Arena a;
	arena_init(&a);
	Diags d;
	diags_init(&d, &a);
	uint32_t f = diag_add_text(&d, "n.dam", "a\n", 2);
	diag_error(&d, (Loc){ f, 2, 1 }, "at end of file");
	diag_error(&d, (Loc){ f, 1, 2 }, "at the newline");
	char *s = render(&d);
	is_str(s, "n.dam:1:2: error: at end of file\na\n ^\nn.dam:1:2: error: at the newline\na\n ^\n",
	       "the end of file after a final newline is shown at the end of the last line");
	free(s);
	diags_free(&d);
	arena_free(&a);
}

static void test_limit(void)
{
	Arena a;
	arena_init(&a);
	Diags d;
	diags_init(&d, &a);
	ok(d.max_errors == 50, "default limit 50");
	d.max_errors = 2;
	for (int i = 1; i <= 5; i++) {
		diag_error(&d, (Loc){ 0, 0, 0 }, "e%d", i);
		diag_note(&d, (Loc){ 0, 0, 0 }, "n%d", i);
	}
	diag_warning(&d, (Loc){ 0, 0, 0 }, "late warning");
	char *s = render(&d);
	is_str(s, "damc: error: e1\ndamc: note: n1\ndamc: error: e2\ndamc: note: n2\n"
	          "damc: error: too many errors, stopping\n", "stops after max_errors");
	free(s);
	ok(diag_errors(&d) > 2, "errors still counted");
	diags_free(&d);
	arena_free(&a);
}

static void test_files(void)
{
	char path[] = "/tmp/t_fe_diag_XXXXXX";
	int fd = mkstemp(path);
	static const char bytes[] = "ab\0cd\nline 2 \0 x\n";
	ok(fd >= 0 && write(fd, bytes, sizeof bytes - 1) == (ssize_t)(sizeof bytes - 1), "temp file");
	if (fd >= 0)
		close(fd);
	Arena a;
	arena_init(&a);
	Diags d;
	diags_init(&d, &a);
	uint32_t f = diag_add_file(&d, path);
	const Source *src = diag_source(&d, f);
	ok(f == 1 && src && src->len == sizeof bytes - 1, "file with NUL bytes keeps its length");
	ok(src && memcmp(src->text, bytes, sizeof bytes) == 0, "contents and final NUL");
	ok(diag_add_file(&d, path) == f, "same path, same id");
	diag_error(&d, (Loc){ f, 2, 8 }, "nul");
	char *s = render(&d);
	size_t want_len = strlen(path) + strlen(":2:8: error: nul\n") + 12 + 9;
	ok(strlen(s) < want_len && memcmp(s + strlen(path), ":2:8: error: nul\nline 2 ", 24) == 0,
	   "source line with a NUL byte is written verbatim");
	free(s);
	errno = 0;
	ok(diag_add_file(&d, "/nonexistent/dir/x.dam") == 0 && errno == ENOENT, "unreadable file: 0, errno");
	ok(diag_add_file(&d, "/tmp") == 0, "a directory is not readable as a source");
	unlink(path);
	diags_free(&d);
	arena_free(&a);
}

int main(void)
{
	test_render();
	test_trailing_newline();
	test_limit();
	test_files();
	return done_testing();
}
