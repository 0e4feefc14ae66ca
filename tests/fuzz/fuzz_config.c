/* fuzz_config.c - libFuzzer harness: the Lua readers of run configurations
 * and device profiles (src/driver/runcfg.c).
 *
 * Each input is the text of a Lua file.  It is registered in memory
 * (diag_add_text) under a path inside examples/, which is where
 * cfg_load_lua and cfg_load_device then read it from (the diagnostics
 * table is consulted before the file system), so no file is written.  The
 * text is read as a run configuration into a RunConfig (then runcfg_free)
 * and, through the same sandbox, as a device profile; the diagnostics are
 * rendered into a memory stream.  Everything is freed per input, so
 * LeakSanitizer sees any leak.  Built by `scripts/build.sh --fuzz`
 * (build-fuzz/fuzz/fuzz_config).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "runcfg.h"

#define FUZZ_NAME DAM_STDLIB_DIR "/../examples/fuzz_input.lua"
#define FUZZ_MAX_LEN 16384

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
		return -1;
	Arena a;
	Diags d;
	arena_init(&a);
	diags_init(&d, &a);
	diag_add_text(&d, FUZZ_NAME, (const char *)data, size);
	RunConfig rc;
	runcfg_init(&rc);
	(void)cfg_load_lua(FUZZ_NAME, &rc, &d);
	runcfg_free(&rc);
	DevProfile dp;
	(void)cfg_load_device(FUZZ_NAME, &dp, &a, &d);
	fuzz_render(&d);
	diags_free(&d);
	arena_free(&a);
	return 0;
}
