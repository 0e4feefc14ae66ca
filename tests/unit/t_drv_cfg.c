/* t_drv_cfg.c - Lua run configurations: settings, types, locations, sandbox.
 *
 * Each case writes a small config into a temp directory, loads it with
 * cfg_load_lua and checks the RunConfig fields or the exact diagnostic text
 * and line.  The sandbox cases check that io, os, dofile, binary chunks,
 * runaway loops and huge allocations are all refused with a located error.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runcfg.h"
#include "tap.h"

static char tmpdir[] = "/tmp/t_drv_cfg-XXXXXX";

static const char *write_cfg(const char *name, const char *text)
{
	static char path[256];
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		return path;
	fputs(text, f);
	fclose(f);
	return path;
}

typedef struct Loaded {
	Arena a;
	Diags d;
	RunConfig rc;
	int rc_status;
} Loaded;

static void load(Loaded *L, const char *name, const char *text)
{
	arena_init(&L->a);
	diags_init(&L->d, &L->a);
	runcfg_init(&L->rc);
	L->rc_status = cfg_load_lua(write_cfg(name, text), &L->rc, &L->d);
}

static void unload(Loaded *L)
{
	runcfg_free(&L->rc);
	diags_free(&L->d);
	arena_free(&L->a);
}

/* The first error: its message, and its line. */
static const char *first_error(const Loaded *L, uint32_t *line)
{
	for (size_t i = 0; i < L->d.n; i++)
		if (L->d.v[i].sev == DIAG_ERROR) {
			*line = L->d.v[i].loc.line;
			return L->d.v[i].msg;
		}
	*line = 0;
	return NULL;
}

static void expect_error(const char *name, const char *text, const char *msg, uint32_t line)
{
	Loaded L;
	load(&L, name, text);
	uint32_t got_line;
	const char *got = first_error(&L, &got_line);
	ok(L.rc_status == -1, "%s: load fails", name);
	if (strstr(msg, "%") == NULL)
		is_str(got, msg, name);
	ok(got_line == line, "%s: located at line %u (got %u)", name, line, got_line);
	unload(&L);
}

static void expect_error_has(const char *name, const char *text, const char *prefix,
                                uint32_t line)
{
	Loaded L;
	load(&L, name, text);
	uint32_t got_line;
	const char *got = first_error(&L, &got_line);
	ok(L.rc_status == -1 && got && strstr(got, prefix) != NULL,
	   "%s: error mentions \"%s\"", name, prefix);
	if (got)
		diag("message: %s", got);
	ok(line == 0 || got_line == line, "%s: located at line %u (got %u)", name, line, got_line);
	unload(&L);
}

static void test_good(void)
{
	Loaded L;
	load(&L, "good.lua",
	     "solver = 'rk4'\n"
	     "dt = 1e-4; t_end = 2\n"
	     "steady_tol = 1e-8\n"
	     "params = { beta = 8, weights = 'w.npz', scale = 0.5 }\n"
	     "inputs = { bits = {1, 0} }\n"
	     "local function rows()\n"
	     "  local r = {}\n"
	     "  for i = 0, 3 do r[#r + 1] = { i // 2, i % 2 } end\n"
	     "  return r\n"
	     "end\n"
	     "dataset = rows\n"
	     "outputs = { 'y' }\n"
	     "threads = 1\n"
	     "trace = 'out/t.csv'\n"
	     "json = true\n");
	ok(L.rc_status == 0, "good config loads");
	is_str(L.rc.solver, "rk4", "solver");
	ok(L.rc.dt == 1e-4 && L.rc.t_end == 2 && L.rc.steady_tol == 1e-8, "numbers");
	ok(L.rc.rtol < 0 && L.rc.atol < 0, "unset numbers stay unset");
	ok(L.rc.ndefines == 3, "three params (%zu)", L.rc.ndefines);
	if (L.rc.ndefines == 3) {
		is_str(L.rc.defines[0], "beta=8", "integer param");
		is_str(L.rc.defines[1], "scale=0.5", "real param");
		char want[300];
		snprintf(want, sizeof want, "weights=%s/w.npz", tmpdir);
		is_str(L.rc.defines[2], want, "string param resolved against the config dir");
	} else {
		skip(3, "params missing");
	}
	ok(L.rc.ninputs == 1 && strcmp(L.rc.inputs[0].name, "bits") == 0 && L.rc.inputs[0].n == 2 &&
	   L.rc.inputs[0].v[0] == 1 && L.rc.inputs[0].v[1] == 0, "inputs.bits = {1, 0}");
	ok(L.rc.dataset_rows == 4 && L.rc.dataset_cols == 2, "dataset function: 4 rows of 2");
	ok(L.rc.dataset && L.rc.dataset[6] == 1 && L.rc.dataset[7] == 1, "last row is {1, 1}");
	ok(L.rc.noutputs == 1 && strcmp(L.rc.outputs[0], "y") == 0, "outputs");
	ok(L.rc.threads == 1 && L.rc.json, "threads, json");
	char want[300];
	snprintf(want, sizeof want, "%s/out/t.csv", tmpdir);
	is_str(L.rc.trace_path, want, "trace path resolved against the config dir");
	ok(L.d.nwarnings == 0, "no warnings");
	unload(&L);
}

static void test_dataset_forms(void)
{
	Loaded L;
	load(&L, "ds.lua", "dataset = 'data/x.txt'\n");
	char want[300];
	snprintf(want, sizeof want, "%s/data/x.txt", tmpdir);
	ok(L.rc_status == 0, "dataset path loads");
	is_str(L.rc.dataset_path, want, "dataset path relative to the config");
	unload(&L);

	load(&L, "ds2.lua", "dataset = { {1, 2, 3}, {4, 5, 6} }\n");
	ok(L.rc_status == 0 && L.rc.dataset_rows == 2 && L.rc.dataset_cols == 3 &&
	   L.rc.dataset[5] == 6, "inline dataset");
	unload(&L);

	load(&L, "typo.lua", "dt = 0.01\nt_edn = 3\n");
	ok(L.rc_status == 0 && L.d.nwarnings == 1, "unknown setting is a warning");
	if (L.d.n)
		is_str(L.d.v[0].msg, "unknown setting 't_edn' (ignored)", "warning text");
	else
		skip(1, "no warning");
	unload(&L);
}

static void test_errors(void)
{
	expect_error("type.lua", "solver = 'euler'\n\ndt = 'small'\n",
	             "'dt' must be a number, got string", 3);
	expect_error("type2.lua", "x = 1\nsolver = 4 > 3\n", "'solver' must be a string, got boolean", 2);
	expect_error("rows.lua", "dataset = {\n {1, 2},\n {3}\n}\n",
	             "dataset row 2 has 1 values, expected 2 (like row 1)", 4);
	expect_error("row_elem.lua", "dataset = { {1, 'a'} }\n",
	             "dataset row 1 element 2 must be a number, got string", 1);
	expect_error("inputs.lua", "\ninputs = { bits = 3 }\n",
	             "inputs.bits must be an array of numbers, got number", 2);
	expect_error("params.lua", "params = { w = {} }\n",
	             "params.w must be a number or a string, got table", 1);
	expect_error("neg.lua", "t_end = -1\n", "'t_end' must be a non-negative number", 1);
	expect_error("threads.lua", "threads = 1.5\n", "'threads' must be an integer in 0..1024, got number", 1);
	expect_error("syntax.lua", "dt = 1e-3\nt_end = = 2\n", "unexpected symbol near '='", 2);
	expect_error("runtime.lua", "dt = 1\nlocal x = nil\nt_end = x + 1\n",
	             "attempt to perform arithmetic on a nil value (local 'x')", 3);
	expect_error("err.lua", "\n\nerror('no dataset for you')\n", "no dataset for you", 3);
	expect_error("dsfn.lua", "dataset = function()\n  return 42\nend\n",
	             "the 'dataset' function must return an array of rows, got number", 3);
	expect_error("dsfn_err.lua", "dataset = function()\n  error('bad rows')\nend\n", "bad rows", 2);
}

static void test_sandbox(void)
{
	expect_error("os.lua", "os.execute('touch /tmp/pwned')\n",
	             "attempt to index a nil value (global 'os')", 1);
	expect_error("io.lua", "local f = io.popen('ls')\n",
	             "attempt to index a nil value (global 'io')", 1);
	expect_error("dofile.lua", "dofile('/etc/passwd')\n",
	             "attempt to call a nil value (global 'dofile')", 1);
	expect_error("require.lua", "local m = require('os')\n",
	             "attempt to call a nil value (global 'require')", 1);
	expect_error("debug.lua", "debug.sethook()\n",
	             "attempt to index a nil value (global 'debug')", 1);
	expect_error("dump.lua", "local s = string.dump(print)\n",
	             "attempt to call a nil value (field 'dump')", 1);
	expect_error_has("loop.lua", "dt = 1\nwhile true do end\n", "instruction limit exceeded", 2);
	expect_error_has("loopfn.lua", "dataset = function()\n  while true do end\nend\n",
	                    "instruction limit exceeded", 2);
	expect_error_has("mem.lua", "local s = string.rep('x', 1 << 30)\n", "not enough memory", 0);
	expect_error("binary.lua", "local f, e = load('\\27Lua')\nerror(e)\n",
	             "attempt to load a binary chunk (mode is 't')", 2);
	expect_error_has("missing.dir/none.lua", "", "cannot read config file", 0);
}

static void test_load_text(void)
{
	Loaded L;
	load(&L, "load.lua", "local f = load('return 1e-2')\ndt = f()\n");
	ok(L.rc_status == 0 && L.rc.dt == 1e-2, "load of text chunks still works");
	unload(&L);
	load(&L, "print.lua", "print('hello from config')\n");
	ok(L.rc_status == 0, "print is allowed (to stderr)");
	unload(&L);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! cannot create a temp dir\n");
		return 1;
	}
	test_good();
	test_dataset_forms();
	test_errors();
	test_sandbox();
	test_load_text();
	int status = done_testing();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		diag("could not remove %s", tmpdir);
	return status;
}
