/* fuzz_frontend.c - libFuzzer harness: the whole front end on .dam text.
 *
 * Each input is the text of a main .dam file.  It is registered in memory
 * (diag_add_text) under a name inside tests/errors/, so that relative
 * `load("data/...")` and `import "x.dam"` resolve against the error corpus'
 * fixtures, while `import "name"` resolves against the stdlib directory.
 * dam_frontend_compile runs parse, imports, sema, derive and the checks;
 * when it succeeds, the derivation report is printed in both styles
 * (text and LaTeX) into a memory stream, and the diagnostics are rendered
 * in every case.  Everything is freed per input, so LeakSanitizer sees any
 * leak.  Built by `scripts/build.sh --fuzz` (build-fuzz/fuzz/fuzz_frontend).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "frontend.h"

#define FUZZ_NAME DAM_STDLIB_DIR "/../tests/errors/fuzz_input.dam"
#define FUZZ_MAX_LEN 16384

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Run the report printer into a memory stream and drop the text. */
static void fuzz_print(const Model *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return;
	model_print(m, SYM_TEXT, f);
	model_print(m, SYM_LATEX, f);
	fclose(f);
	free(buf);
}

static void fuzz_render(const Diags *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return;
	diag_render(d, f);
	fclose(f);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FUZZ_MAX_LEN)
		return -1;                 /* keep executions fast; not added to the corpus */
	Arena a;
	Diags d;
	arena_init(&a);
	diags_init(&d, &a);
	diag_add_text(&d, FUZZ_NAME, (const char *)data, size);
	/* 2^24 nodes evaluated per tensor, and 2^24 elements per tensor (2^26 in
	 * all, even for a constant fill): a few seconds under the sanitizers
	 * (libFuzzer's timeout is 10 s); the default allows 2^31. */
	FrontendOptions fo = { NULL, 0, DAM_STDLIB_DIR, NULL, (int64_t)1 << 24 };
	Model *m = dam_frontend_compile(FUZZ_NAME, &fo, &d, &a);
	if (m)
		fuzz_print(m);
	fuzz_render(&d);
	diags_free(&d);
	arena_free(&a);
	return 0;
}
