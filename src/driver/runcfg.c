/* runcfg.c - run configurations written in Lua 5.4, run in a sandbox.
 *
 * A config file (-c RUN.lua) is an ordinary Lua chunk that sets globals
 * (solver, dt, t_end, params, inputs, dataset, ...).  It runs in a fresh
 * lua_State with only the base (minus dofile/loadfile, and with a load that
 * accepts text chunks only), string, table and math libraries; io, os,
 * package and debug are absent.  Run time is bounded by an instruction-count
 * hook and memory by a custom lua_Alloc, so a config can neither touch the
 * system nor hang the compiler.  The chunk's _ENV is a proxy table whose
 * __newindex remembers the line of each global assignment, so a type error
 * is reported where the value was set ("run.lua:3: 'dt' must be a number,
 * got string").  Lua's own errors carry "config:LINE:" prefixes (the chunk
 * is named "=config"), which are turned into diagnostics located in the
 * config file.  Every call into Lua goes through lua_pcall with a message
 * handler.  Numbers are checked as the command line checks its flags: a
 * setting or an input value that is not finite (0/0, 1/0, 1e400) is an
 * error at the line of its global, before anything runs.
 */
#include "runcfg.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define CFG_MEM_LIMIT   ((size_t)64 << 20)     /* bytes */
#define CFG_INSN_LIMIT  10000000L              /* VM instructions */
#define CFG_HOOK_EVERY  1000
#define CFG_CHUNK       "config"
#define CFG_MAX_ROWS    10000000u

typedef struct RepLine {
	char s[512];
} RepLine;

/* A device profile being read. */
typedef struct DevLoad {
	DevProfile *dp;
	char *name, *what;
} DevLoad;

typedef struct CfgState {
	size_t used, limit;
	long insns;
	const char *path;      /* config file as given */
	char *dir;             /* its directory ("" for the current one) */
	uint32_t file;         /* diagnostics source id */
	Diags *d;
	int store, lines;      /* registry refs: global values, assignment lines */
} CfgState;

/* ---- RunConfig ----------------------------------------------------------- */

void runcfg_init(RunConfig *rc)
{
	memset(rc, 0, sizeof *rc);
	rc->dt = rc->t_end = rc->rtol = rc->atol = rc->steady_tol = rc->diverge_limit = -1;
	rc->volts_per_unit = rc->seconds_per_time_unit = -1;
	rc->threads = -1;
}

static void cfg_free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void runcfg_free(RunConfig *rc)
{
	free(rc->solver);
	cfg_free_strv(rc->defines, rc->ndefines);
	for (size_t i = 0; i < rc->ninputs; i++) {
		free(rc->inputs[i].name);
		free(rc->inputs[i].v);
	}
	free(rc->inputs);
	free(rc->dataset_path);
	free(rc->dataset);
	cfg_free_strv(rc->outputs, rc->noutputs);
	free(rc->trace_path);
	free(rc->plot_path);
	free(rc->device);
	free(rc->level);
	runcfg_init(rc);
}

static void *cfg_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fputs("damc: out of memory\n", stderr);
		exit(3);
	}
	return p;
}

static char *cfg_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(cfg_xmalloc(n), s, n);
}

/* ---- the sandbox ----------------------------------------------------------- */

static void *cfg_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	CfgState *cs = ud;
	size_t old = ptr ? osize : 0;
	if (nsize == 0) {
		free(ptr);
		cs->used -= old;
		return NULL;
	}
	if (nsize > old && cs->used - old + nsize > cs->limit)
		return NULL;                       /* Lua raises "not enough memory" */
	void *p = realloc(ptr, nsize);
	if (p)
		cs->used = cs->used - old + nsize;
	return p;
}

static CfgState *cfg_state(lua_State *L)
{
	void *ud;
	lua_getallocf(L, &ud);
	return ud;
}

static void cfg_hook(lua_State *L, lua_Debug *ar)
{
	CfgState *cs = cfg_state(L);
	(void)ar;
	cs->insns += CFG_HOOK_EVERY;
	if (cs->insns <= CFG_INSN_LIMIT)
		return;
	lua_Debug here;
	if (lua_getstack(L, 0, &here) && lua_getinfo(L, "Sl", &here) && here.currentline > 0)
		lua_pushfstring(L, "%s:%d: instruction limit exceeded (%d)", here.short_src,
		                here.currentline, (int)CFG_INSN_LIMIT);
	else
		lua_pushfstring(L, "instruction limit exceeded (%d)", (int)CFG_INSN_LIMIT);
	lua_error(L);
}

/* Message handler for every lua_pcall: make sure the error is a string. */
static int cfg_msgh(lua_State *L)
{
	if (lua_type(L, 1) == LUA_TSTRING)
		return 1;
	if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
		return 1;
	lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	return 1;
}

/* load() restricted to text chunks (binary chunks can crash the VM). */
static int cfg_safe_load(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	const char *name = luaL_optstring(L, 2, "=(load)");
	int has_env = !lua_isnone(L, 4);
	if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
		luaL_pushfail(L);
		lua_insert(L, -2);
		return 2;
	}
	if (has_env) {
		lua_pushvalue(L, 4);
		if (!lua_setupvalue(L, -2, 1))
			lua_pop(L, 1);
	}
	return 1;
}

/* print() goes to stderr: stdout belongs to the results (--json). */
static int cfg_print(lua_State *L)
{
	int n = lua_gettop(L);
	for (int i = 1; i <= n; i++) {
		size_t len;
		const char *s = luaL_tolstring(L, i, &len);
		if (i > 1)
			fputc('\t', stderr);
		fwrite(s, 1, len, stderr);
		lua_pop(L, 1);
	}
	fputc('\n', stderr);
	return 0;
}

/* _ENV.__index: configuration globals first, then the libraries. */
static int cfg_env_index(lua_State *L)
{
	lua_pushvalue(L, 2);
	if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
		return 1;
	lua_pop(L, 1);
	lua_pushvalue(L, 2);
	lua_rawget(L, lua_upvalueindex(2));
	return 1;
}

/* _ENV.__newindex: store the value and remember the line of the assignment. */
static int cfg_env_newindex(lua_State *L)
{
	lua_Debug ar;
	int line = 0;
	if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar))
		line = ar.currentline;
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_rawset(L, lua_upvalueindex(1));
	if (lua_type(L, 2) == LUA_TSTRING && line > 0) {
		lua_pushvalue(L, 2);
		lua_pushinteger(L, line);
		lua_rawset(L, lua_upvalueindex(2));
	}
	return 0;
}

static void cfg_open_libs(lua_State *L)
{
	static const luaL_Reg libs[] = {
		{ LUA_GNAME, luaopen_base }, { LUA_STRLIBNAME, luaopen_string },
		{ LUA_TABLIBNAME, luaopen_table }, { LUA_MATHLIBNAME, luaopen_math },
		{ NULL, NULL },
	};
	for (const luaL_Reg *l = libs; l->func; l++) {
		luaL_requiref(L, l->name, l->func, 1);
		lua_pop(L, 1);
	}
	static const char *const drop[] = { "dofile", "loadfile", "require", NULL };
	for (const char *const *k = drop; *k; k++) {
		lua_pushnil(L);
		lua_setglobal(L, *k);
	}
	lua_pushcfunction(L, cfg_safe_load);
	lua_setglobal(L, "load");
	lua_pushcfunction(L, cfg_print);
	lua_setglobal(L, "print");
	lua_getglobal(L, LUA_STRLIBNAME);
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");
	lua_pop(L, 1);
}

/* Build the proxy _ENV; leaves it on the stack and records the refs. */
static void cfg_push_env(lua_State *L, CfgState *cs)
{
	lua_newtable(L);                       /* store */
	lua_pushvalue(L, -1);
	cs->store = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_newtable(L);                       /* lines */
	lua_pushvalue(L, -1);
	cs->lines = luaL_ref(L, LUA_REGISTRYINDEX);
	int store = lua_gettop(L) - 1, lines = lua_gettop(L);

	lua_newtable(L);                       /* env (stays empty) */
	lua_newtable(L);                       /* its metatable */
	lua_pushvalue(L, store);
	lua_pushglobaltable(L);
	lua_pushcclosure(L, cfg_env_index, 2);
	lua_setfield(L, -2, "__index");
	lua_pushvalue(L, store);
	lua_pushvalue(L, lines);
	lua_pushcclosure(L, cfg_env_newindex, 2);
	lua_setfield(L, -2, "__newindex");
	lua_setmetatable(L, -2);
	lua_remove(L, lines);
	lua_remove(L, store);
}

/* ---- diagnostics ----------------------------------------------------------- */

/* Column of the first non-blank character of a line of the config. */
static uint32_t cfg_first_col(const CfgState *cs, uint32_t line)
{
	const Source *src = diag_source(cs->d, cs->file);
	const char *p = src->text, *end = src->text + src->len;
	for (uint32_t l = 1; l < line && p < end; p++)
		if (*p == '\n')
			l++;
	uint32_t col = 1;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++, col++;
	return p < end && *p != '\n' ? col : 1;
}

/* Report at a line of the config; without one, name the file in the text. */
static void cfg_vreport(CfgState *cs, DiagSeverity sev, uint32_t line, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof msg, fmt, ap);
	Loc loc = { cs->file, line, line ? cfg_first_col(cs, line) : 0 };
	if (!line)
		loc.file = 0;
	if (sev == DIAG_WARNING)
		diag_warning(cs->d, loc, "%s%s%s", line ? "" : cs->path, line ? "" : ": ", msg);
	else
		diag_error(cs->d, loc, "%s%s%s", line ? "" : cs->path, line ? "" : ": ", msg);
}

static void cfg_report(CfgState *cs, uint32_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void cfg_report(CfgState *cs, uint32_t line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cfg_vreport(cs, DIAG_ERROR, line, fmt, ap);
	va_end(ap);
}

/* Turn "config:12: message" into a diagnostic at line 12 of the file. */
static void cfg_report_lua_error(CfgState *cs, const char *msg)
{
	const char *p = msg;
	size_t pre = strlen(CFG_CHUNK);
	uint32_t line = 0;
	if (strncmp(p, CFG_CHUNK ":", pre + 1) == 0) {
		char *end;
		long l = strtol(p + pre + 1, &end, 10);
		if (end != p + pre + 1 && *end == ':' && l > 0 && l < INT32_MAX) {
			line = (uint32_t)l;
			p = end + 1;
			while (*p == ' ')
				p++;
		}
	}
	cfg_report(cs, line, "%s", p);
}

/* The line where the global `key` was last assigned (0: unknown). */
static uint32_t cfg_line_of(lua_State *L, CfgState *cs, const char *key)
{
	uint32_t line = 0;
	lua_rawgeti(L, LUA_REGISTRYINDEX, cs->lines);
	lua_getfield(L, -1, key);
	if (lua_isinteger(L, -1))
		line = (uint32_t)lua_tointeger(L, -1);
	lua_pop(L, 2);
	return line;
}

static void cfg_error(lua_State *L, CfgState *cs, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void cfg_error(lua_State *L, CfgState *cs, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cfg_vreport(cs, DIAG_ERROR, cfg_line_of(L, cs, key), fmt, ap);
	va_end(ap);
}

static void cfg_warning(lua_State *L, CfgState *cs, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void cfg_warning(lua_State *L, CfgState *cs, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cfg_vreport(cs, DIAG_WARNING, cfg_line_of(L, cs, key), fmt, ap);
	va_end(ap);
}

static int cfg_type_error(lua_State *L, CfgState *cs, const char *key, const char *want, int idx)
{
	cfg_error(L, cs, key, "'%s' must be %s, got %s", key, want,
	           luaL_typename(L, idx));
	return -1;
}

/* ---- reading settings -------------------------------------------------------- */

static char *cfg_resolve(const CfgState *cs, const char *p)
{
	if (p[0] == '/' || cs->dir[0] == '\0')
		return cfg_strdup(p);
	size_t n = strlen(cs->dir) + strlen(p) + 2;
	char *s = cfg_xmalloc(n);
	snprintf(s, n, "%s/%s", cs->dir, p);
	return s;
}

/* Push store[key]; returns its Lua type. */
static int cfg_get(lua_State *L, CfgState *cs, const char *key)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, cs->store);
	int t = lua_getfield(L, -1, key);
	lua_remove(L, -2);
	return t;
}

static int cfg_read_number(lua_State *L, CfgState *cs, const char *key, double *out)
{
	int t = cfg_get(L, cs, key), rc = 0;
	if (t == LUA_TNUMBER)
		*out = lua_tonumber(L, -1);
	else if (t != LUA_TNIL)
		rc = cfg_type_error(L, cs, key, "a number", -1);
	if (rc == 0 && t == LUA_TNUMBER && !(*out >= 0)) {
		cfg_error(L, cs, key, "'%s' must be a non-negative number", key);
		rc = -1;
	} else if (rc == 0 && t == LUA_TNUMBER && isinf(*out)) {   /* as the flags: finite */
		cfg_error(L, cs, key, "'%s' must be a finite number, got an infinite one", key);
		rc = -1;
	}
	lua_pop(L, 1);
	return rc;
}

static int cfg_read_string(lua_State *L, CfgState *cs, const char *key, char **out, bool path)
{
	int t = cfg_get(L, cs, key), rc = 0;
	if (t == LUA_TSTRING) {
		free(*out);
		*out = path ? cfg_resolve(cs, lua_tostring(L, -1)) : cfg_strdup(lua_tostring(L, -1));
	} else if (t != LUA_TNIL) {
		rc = cfg_type_error(L, cs, key, "a string", -1);
	}
	lua_pop(L, 1);
	return rc;
}

static int cfg_read_threads(lua_State *L, CfgState *cs, RunConfig *rc)
{
	int t = cfg_get(L, cs, "threads"), r = 0;
	if (t == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0 &&
	    lua_tointeger(L, -1) <= 1024)
		rc->threads = (int)lua_tointeger(L, -1);
	else if (t != LUA_TNIL)
		r = cfg_type_error(L, cs, "threads", "an integer in 0..1024", -1);
	lua_pop(L, 1);
	return r;
}

static int cfg_read_bool(lua_State *L, CfgState *cs, const char *key, bool *out)
{
	int t = cfg_get(L, cs, key), r = 0;
	if (t == LUA_TBOOLEAN)
		*out = lua_toboolean(L, -1);
	else if (t != LUA_TNIL)
		r = cfg_type_error(L, cs, key, "a boolean", -1);
	lua_pop(L, 1);
	return r;
}

/* What a non-finite number is, in words (a message never prints "nan"). */
static const char *cfg_nonfinite(double v)
{
	return isnan(v) ? "not a number" : "infinite";
}

/* Read the array at idx into a malloc'd vector of numbers.  On a bad element
 * report "'what' element N must be a number, got T" at key's line; a value
 * that is not finite (0/0, 1/0, 1e400) is refused here, before anything
 * runs, as the command line and dataset files refuse 'nan' and 'inf':
 * "dataset row 1 element 1 is not a number (inputs must be finite)". */
static int cfg_read_numbers(lua_State *L, CfgState *cs, int idx, const char *key,
                            const char *what, double **out, size_t *n)
{
	idx = lua_absindex(L, idx);
	lua_Integer len = luaL_len(L, idx);
	double *v = cfg_xmalloc((size_t)(len > 0 ? len : 1) * sizeof *v);
	for (lua_Integer i = 1; i <= len; i++) {
		int t = lua_geti(L, idx, i);
		double x = t == LUA_TNUMBER ? lua_tonumber(L, -1) : 0.0;
		if (t != LUA_TNUMBER)
			cfg_error(L, cs, key, "%s element %lld must be a number, got %s",
			           what, (long long)i, luaL_typename(L, -1));
		else if (!isfinite(x))
			cfg_error(L, cs, key, "%s element %lld is %s (inputs must be finite)", what,
			          (long long)i, cfg_nonfinite(x));
		lua_pop(L, 1);
		if (t != LUA_TNUMBER || !isfinite(x)) {
			free(v);
			return -1;
		}
		v[i - 1] = x;
	}
	*out = v;
	*n = (size_t)len;
	return 0;
}

/* Collect the string keys of the table at idx, sorted (deterministic order). */
static int cfg_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **cfg_sorted_keys(lua_State *L, CfgState *cs, int idx, const char *key, size_t *n)
{
	idx = lua_absindex(L, idx);
	size_t cap = 8, k = 0;
	char **v = cfg_xmalloc(cap * sizeof *v);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_type(L, -2) != LUA_TSTRING) {
			cfg_error(L, cs, key, "'%s' keys must be names, got %s", key,
			           luaL_typename(L, -2));
			lua_pop(L, 2);
			cfg_free_strv(v, k);
			return NULL;
		}
		if (k == cap)
			v = realloc(v, (cap *= 2) * sizeof *v);
		if (!v)
			exit(3);
		v[k++] = cfg_strdup(lua_tostring(L, -2));
		lua_pop(L, 1);
	}
	qsort(v, k, sizeof *v, cfg_cmp_str);
	*n = k;
	return v;
}

static void cfg_add_define(RunConfig *rc, const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 2;
	char *s = cfg_xmalloc(n);
	snprintf(s, n, "%s=%s", name, value);
	rc->defines = realloc(rc->defines, (rc->ndefines + 1) * sizeof *rc->defines);
	if (!rc->defines)
		exit(3);
	rc->defines[rc->ndefines++] = s;
}

/* params = { name = number | string }; relative string values are paths
 * resolved against the config file's directory. */
static int cfg_read_params(lua_State *L, CfgState *cs, RunConfig *rc)
{
	int t = cfg_get(L, cs, "params"), r = 0;
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		return 0;
	}
	if (t != LUA_TTABLE) {
		r = cfg_type_error(L, cs, "params", "a table", -1);
		lua_pop(L, 1);
		return r;
	}
	size_t n;
	char **keys = cfg_sorted_keys(L, cs, -1, "params", &n);
	for (size_t i = 0; keys && i < n && r == 0; i++) {
		int vt = lua_getfield(L, -1, keys[i]);
		if (vt == LUA_TNUMBER && !isfinite(lua_tonumber(L, -1))) {
			cfg_error(L, cs, "params", "params.%s is %s (a param must be a finite number or a "
			          "string)", keys[i], cfg_nonfinite(lua_tonumber(L, -1)));
			r = -1;
		} else if (vt == LUA_TNUMBER) {
			char buf[64];
			if (lua_isinteger(L, -1))
				snprintf(buf, sizeof buf, "%lld", (long long)lua_tointeger(L, -1));
			else
				snprintf(buf, sizeof buf, "%.17g", lua_tonumber(L, -1));
			cfg_add_define(rc, keys[i], buf);
		} else if (vt == LUA_TSTRING) {
			char *p = cfg_resolve(cs, lua_tostring(L, -1));
			cfg_add_define(rc, keys[i], p);
			free(p);
		} else {
			cfg_error(L, cs, "params", "params.%s must be a number or a string, got %s", keys[i],
			           luaL_typename(L, -1));
			r = -1;
		}
		lua_pop(L, 1);
	}
	if (keys)
		cfg_free_strv(keys, n);
	lua_pop(L, 1);
	return keys ? r : -1;
}

/* inputs = { name = {v1, v2, ...} } */
static int cfg_read_inputs(lua_State *L, CfgState *cs, RunConfig *rc)
{
	int t = cfg_get(L, cs, "inputs"), r = 0;
	if (t != LUA_TTABLE) {
		if (t != LUA_TNIL)
			r = cfg_type_error(L, cs, "inputs", "a table", -1);
		lua_pop(L, 1);
		return r;
	}
	size_t n;
	char **keys = cfg_sorted_keys(L, cs, -1, "inputs", &n);
	for (size_t i = 0; keys && i < n && r == 0; i++) {
		char what[160];
		snprintf(what, sizeof what, "inputs.%s", keys[i]);
		if (lua_getfield(L, -1, keys[i]) != LUA_TTABLE) {
			cfg_error(L, cs, "inputs", "%s must be an array of numbers, got %s",
			           what, luaL_typename(L, -1));
			r = -1;
		} else {
			CfgValues cv = { cfg_strdup(keys[i]), NULL, 0 };
			r = cfg_read_numbers(L, cs, -1, "inputs", what, &cv.v, &cv.n);
			if (r == 0) {
				rc->inputs = realloc(rc->inputs, (rc->ninputs + 1) * sizeof *rc->inputs);
				if (!rc->inputs)
					exit(3);
				rc->inputs[rc->ninputs++] = cv;
			} else {
				free(cv.name);
			}
		}
		lua_pop(L, 1);
	}
	if (keys)
		cfg_free_strv(keys, n);
	lua_pop(L, 1);
	return keys ? r : -1;
}

/* An array of rows (each an array of numbers, all the same length). */
static int cfg_read_rows(lua_State *L, CfgState *cs, int idx, RunConfig *rc)
{
	idx = lua_absindex(L, idx);
	lua_Integer nrows = luaL_len(L, idx);
	if (nrows < 0 || (lua_Unsigned)nrows > CFG_MAX_ROWS) {
		cfg_error(L, cs, "dataset", "dataset has too many rows");
		return -1;
	}
	double *all = NULL;
	size_t cols = 0;
	for (lua_Integer i = 1; i <= nrows; i++) {
		char what[64];
		snprintf(what, sizeof what, "dataset row %lld", (long long)i);
		if (lua_geti(L, idx, i) != LUA_TTABLE) {
			cfg_error(L, cs, "dataset", "%s must be an array of numbers, got %s",
			           what, luaL_typename(L, -1));
			goto fail;
		}
		double *v;
		size_t n;
		if (cfg_read_numbers(L, cs, -1, "dataset", what, &v, &n) < 0)
			goto fail;
		lua_pop(L, 1);
		if (i == 1) {
			cols = n;
			all = cfg_xmalloc((size_t)nrows * (cols ? cols : 1) * sizeof *all);
		} else if (n != cols) {
			cfg_error(L, cs, "dataset", "%s has %zu values, expected %zu "
			           "(like row 1)", what, n, cols);
			free(v);
			free(all);
			return -1;
		}
		if (n)
			memcpy(all + (size_t)(i - 1) * cols, v, n * sizeof *v);
		free(v);
	}
	free(rc->dataset);
	rc->dataset = all;
	rc->dataset_rows = (size_t)nrows;
	rc->dataset_cols = cols;
	return 0;
fail:
	lua_pop(L, 1);
	free(all);
	return -1;
}

/* dataset = "path" | { rows } | function() return { rows } end */
static int cfg_read_dataset(lua_State *L, CfgState *cs, RunConfig *rc)
{
	int t = cfg_get(L, cs, "dataset"), r = 0;
	if (t == LUA_TFUNCTION) {
		lua_pushcfunction(L, cfg_msgh);
		lua_insert(L, -2);
		if (lua_pcall(L, 0, 1, -2) != LUA_OK) {
			cfg_report_lua_error(cs, lua_tostring(L, -1));
			lua_pop(L, 2);
			return -1;
		}
		lua_remove(L, -2);
		t = lua_type(L, -1);
		if (t != LUA_TTABLE) {
			cfg_error(L, cs, "dataset", "the 'dataset' function must return an array of rows, got %s",
			           luaL_typename(L, -1));
			lua_pop(L, 1);
			return -1;
		}
	}
	if (t == LUA_TSTRING) {
		free(rc->dataset_path);
		rc->dataset_path = cfg_resolve(cs, lua_tostring(L, -1));
	} else if (t == LUA_TTABLE) {
		r = cfg_read_rows(L, cs, -1, rc);
	} else if (t != LUA_TNIL) {
		r = cfg_type_error(L, cs, "dataset", "a path, an array of rows or a function", -1);
	}
	lua_pop(L, 1);
	return r;
}

static int cfg_read_outputs(lua_State *L, CfgState *cs, RunConfig *rc)
{
	int t = cfg_get(L, cs, "outputs"), r = 0;
	if (t != LUA_TTABLE) {
		if (t != LUA_TNIL)
			r = cfg_type_error(L, cs, "outputs", "an array of output names", -1);
		lua_pop(L, 1);
		return r;
	}
	lua_Integer n = luaL_len(L, -1);
	for (lua_Integer i = 1; i <= n && r == 0; i++) {
		if (lua_geti(L, -1, i) != LUA_TSTRING) {
			cfg_error(L, cs, "outputs", "outputs element %lld must be a string, got %s", (long long)i,
			           luaL_typename(L, -1));
			r = -1;
		} else {
			rc->outputs = realloc(rc->outputs, (rc->noutputs + 1) * sizeof *rc->outputs);
			if (!rc->outputs)
				exit(3);
			rc->outputs[rc->noutputs++] = cfg_strdup(lua_tostring(L, -1));
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return r;
}

static const char *const cfg_known[] = {
	"solver", "dt", "t_end", "rtol", "atol", "steady_tol", "diverge_limit", "params", "inputs", "dataset",
	"outputs", "trace", "plot", "threads", "json", "volts_per_unit", "seconds_per_time_unit",
	"device", "level", NULL,
};

/* Warn about globals that are not settings (likely typos); functions are
 * helpers and stay quiet. */
static void cfg_warn_unknown(lua_State *L, CfgState *cs, const CfgExtra *ex)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, cs->store);
	size_t n;
	char **keys = cfg_sorted_keys(L, cs, -1, "config", &n);
	for (size_t i = 0; keys && i < n; i++) {
		bool known = false;
		for (const char *const *k = cfg_known; *k && !known; k++)
			known = strcmp(*k, keys[i]) == 0;
		known |= ex && strcmp(ex->key, keys[i]) == 0;
		lua_getfield(L, -1, keys[i]);
		if (!known && lua_type(L, -1) != LUA_TFUNCTION)
			cfg_warning(L, cs, keys[i], "unknown setting '%s' (ignored)",
			             keys[i]);
		lua_pop(L, 1);
	}
	if (keys)
		cfg_free_strv(keys, n);
	lua_pop(L, 1);
}

static int cfg_read_all(lua_State *L, CfgState *cs, RunConfig *rc, const CfgExtra *ex)
{
	static const struct { const char *key; size_t off; } nums[] = {
		{ "dt", offsetof(RunConfig, dt) }, { "t_end", offsetof(RunConfig, t_end) },
		{ "rtol", offsetof(RunConfig, rtol) }, { "atol", offsetof(RunConfig, atol) },
		{ "steady_tol", offsetof(RunConfig, steady_tol) },
		{ "diverge_limit", offsetof(RunConfig, diverge_limit) },
		{ "volts_per_unit", offsetof(RunConfig, volts_per_unit) },
		{ "seconds_per_time_unit", offsetof(RunConfig, seconds_per_time_unit) },
	};
	int bad = 0;
	bad |= cfg_read_string(L, cs, "device", &rc->device, false);
	bad |= cfg_read_string(L, cs, "level", &rc->level, false);
	bad |= cfg_read_string(L, cs, "solver", &rc->solver, false);
	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
		bad |= cfg_read_number(L, cs, nums[i].key, (double *)((char *)rc + nums[i].off));
	bad |= cfg_read_params(L, cs, rc);
	bad |= cfg_read_inputs(L, cs, rc);
	bad |= cfg_read_dataset(L, cs, rc);
	bad |= cfg_read_outputs(L, cs, rc);
	bad |= cfg_read_string(L, cs, "trace", &rc->trace_path, true);
	bad |= cfg_read_string(L, cs, "plot", &rc->plot_path, true);
	bad |= cfg_read_threads(L, cs, rc);
	bad |= cfg_read_bool(L, cs, "json", &rc->json);
	if (ex) {
		int top = lua_gettop(L);
		cfg_get(L, cs, ex->key);
		bad |= ex->read(L, ex->user);
		lua_settop(L, top);
	}
	cfg_warn_unknown(L, cs, ex);
	return bad ? -1 : 0;
}

/* What a chunk's globals are read into: a RunConfig or a device profile. */
typedef int (*CfgReader)(lua_State *L, CfgState *cs, void *out);

typedef struct CfgJob {
	CfgReader read;
	void *out;
} CfgJob;

typedef struct CfgRunJob {
	RunConfig *rc;
	const CfgExtra *ex;
} CfgRunJob;

static int cfg_read_run(lua_State *L, CfgState *cs, void *out)
{
	CfgRunJob *j = out;
	return cfg_read_all(L, cs, j->rc, j->ex);
}

/* Runs inside lua_pcall: everything that may raise a Lua error. */
static int cfg_main(lua_State *L)
{
	CfgState *cs = cfg_state(L);
	CfgJob *job = lua_touserdata(L, 1);
	const Source *src = diag_source(cs->d, cs->file);
	cfg_open_libs(L);
	if (luaL_loadbufferx(L, src->text, src->len, "=" CFG_CHUNK, "t") != LUA_OK)
		return lua_error(L);
	lua_pushstring(L, cs->dir[0] ? cs->dir : ".");
	lua_setglobal(L, "config_dir");
	cfg_push_env(L, cs);
	lua_setupvalue(L, -2, 1);
	lua_call(L, 0, 0);
	lua_pushboolean(L, job->read(L, cs, job->out) == 0);
	return 1;
}

static char *cfg_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return cfg_strdup("");
	size_t n = slash == path ? 1 : (size_t)(slash - path);
	char *d = cfg_xmalloc(n + 1);
	memcpy(d, path, n);
	d[n] = '\0';
	return d;
}

static int cfg_run(const char *path, const char *what, CfgJob *job, Diags *d)
{
	CfgState cs = { 0, CFG_MEM_LIMIT, 0, path, NULL, 0, d, LUA_NOREF, LUA_NOREF };
	cs.file = diag_add_file(d, path);
	if (!cs.file) {
		diag_error(d, (Loc){ 0, 0, 0 }, "cannot read %s '%s': %s", what, path,
		           strerror(errno));
		return -1;
	}
	cs.dir = cfg_dirname(path);
	lua_State *L = lua_newstate(cfg_alloc, &cs);
	if (!L) {
		free(cs.dir);
		diag_error(d, (Loc){ 0, 0, 0 }, "%s: cannot create a Lua state", path);
		return -1;
	}
	lua_sethook(L, cfg_hook, LUA_MASKCOUNT, CFG_HOOK_EVERY);
	lua_pushcfunction(L, cfg_msgh);
	lua_pushcfunction(L, cfg_main);
	lua_pushlightuserdata(L, job);
	int ok = 0;
	if (lua_pcall(L, 1, 1, 1) != LUA_OK)
		cfg_report_lua_error(&cs, lua_tostring(L, -1));
	else
		ok = lua_toboolean(L, -1);
	lua_close(L);
	free(cs.dir);
	return ok ? 0 : -1;
}

int cfg_load_lua(const char *path, RunConfig *rc, Diags *d)
{
	return cfg_load_lua_extra(path, rc, NULL, d);
}

int cfg_load_lua_extra(const char *path, RunConfig *rc, const CfgExtra *ex, Diags *d)
{
	CfgRunJob rj = { rc, ex };
	CfgJob job = { cfg_read_run, &rj };
	return cfg_run(path, "config file", &job, d);
}

/* ---- device profiles ------------------------------------------------------------ */

typedef struct DevField {
	const char *key;
	size_t off;
} DevField;

#define DEV_STRING_FIELD ((size_t)-1)

/* Read table `key` (absent: left as is) whose fields must all be known numbers
 * (except those marked DEV_STRING_FIELD, which the caller reads). */
static int dev_read_table(lua_State *L, CfgState *cs, const char *key, const DevField *f, size_t nf,
                          char *base)
{
	int t = cfg_get(L, cs, key), bad = 0;
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		return 0;
	}
	if (t != LUA_TTABLE) {
		bad = cfg_type_error(L, cs, key, "a table", -1);
		lua_pop(L, 1);
		return bad;
	}
	size_t n;
	char **keys = cfg_sorted_keys(L, cs, -1, key, &n);
	for (size_t i = 0; keys && i < n; i++) {
		size_t k = 0;
		while (k < nf && strcmp(f[k].key, keys[i]))
			k++;
		if (k == nf) {
			RepLine names = { 0 };
			for (size_t j = 0; j < nf; j++)
				snprintf(names.s + strlen(names.s), sizeof names.s - strlen(names.s), "%s%s",
				         j ? ", " : "", f[j].key);
			cfg_error(L, cs, key, "unknown key '%s' in '%s' (known: %s)", keys[i], key, names.s);
			bad = -1;
			continue;
		}
		if (f[k].off == DEV_STRING_FIELD)    /* read by its owner (crossbar.encoding, .scale) */
			continue;
		lua_getfield(L, -1, keys[i]);
		double v = lua_tonumber(L, -1);
		if (lua_type(L, -1) != LUA_TNUMBER || !(v >= 0 || !strcmp(keys[i], "vmin")) || v != v) {
			cfg_error(L, cs, key, "'%s.%s' must be a %snumber, got %s", key, keys[i],
			           strcmp(keys[i], "vmin") ? "non-negative " : "", luaL_typename(L, -1));
			bad = -1;
		} else {
			*(double *)(base + f[k].off) = v;
		}
		lua_pop(L, 1);
	}
	if (keys)
		cfg_free_strv(keys, n);
	lua_pop(L, 1);
	return bad;
}

/* A string key of the crossbar table with two allowed values: 1 or 2 into
 * *out (absent: left as it is). */
static int dev_read_choice(lua_State *L, CfgState *cs, const char *key, const char *a, const char *b,
                           int *out)
{
	int bad = 0;
	if (cfg_get(L, cs, "crossbar") == LUA_TTABLE) {
		int t = lua_getfield(L, -1, key);
		const char *v = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
		if (v && (!strcmp(v, a) || !strcmp(v, b)))
			*out = strcmp(v, a) ? 2 : 1;
		else if (t != LUA_TNIL) {
			cfg_error(L, cs, "crossbar", "'crossbar.%s' must be \"%s\" or \"%s\", got %s%s%s", key, a,
			          b, v ? "'" : "", v ? v : luaL_typename(L, -1), v ? "'" : "");
			bad = -1;
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return bad;
}

/* crossbar.encoding ("differential" | "offset") and crossbar.scale ("global" | "tile"). */
static int dev_read_encoding(lua_State *L, CfgState *cs, DevXbar *x)
{
	int enc = 0, scale = 0;
	int bad = dev_read_choice(L, cs, "encoding", "differential", "offset", &enc);
	bad |= dev_read_choice(L, cs, "scale", "global", "tile", &scale);
	x->encoding = enc == 2 ? DEV_ENC_OFFSET : enc == 1 ? DEV_ENC_DIFFERENTIAL : DEV_ENC_UNSET;
	x->scale = scale == 2 ? DEV_SCALE_TILE : scale == 1 ? DEV_SCALE_GLOBAL : DEV_SCALE_UNSET;
	return bad;
}

static int dev_read(lua_State *L, CfgState *cs, void *out)
{
	static const char *const known[] = { "name", "description", "amplifier", "crossbar", "noise" };
	static const DevField noise[] = {
		{ "program", offsetof(DevNoise, program) }, { "read", offsetof(DevNoise, read) },
		{ "stuck_min", offsetof(DevNoise, stuck_min) }, { "stuck_max", offsetof(DevNoise, stuck_max) },
		{ "tau", offsetof(DevNoise, tau) }, { "drift", offsetof(DevNoise, drift) },
		{ "drift_sigma", offsetof(DevNoise, drift_sigma) },
		{ "drift_time", offsetof(DevNoise, drift_time) },
	};
	static const DevField amp[] = {
		{ "gain", offsetof(DevAmp, gain) }, { "gbw", offsetof(DevAmp, gbw) },
		{ "slew", offsetof(DevAmp, slew) }, { "vmax", offsetof(DevAmp, vmax) },
		{ "vmin", offsetof(DevAmp, vmin) }, { "power", offsetof(DevAmp, power) },
	};
	static const DevField xbar[] = {
		{ "rows", offsetof(DevXbar, rows) }, { "cols", offsetof(DevXbar, cols) },
		{ "gmin", offsetof(DevXbar, gmin) }, { "gmax", offsetof(DevXbar, gmax) },
		{ "bits", offsetof(DevXbar, bits) }, { "encoding", DEV_STRING_FIELD },
		{ "scale", DEV_STRING_FIELD },
		{ "dac_bits", offsetof(DevXbar, dac_bits) }, { "adc_bits", offsetof(DevXbar, adc_bits) },
	};
	DevLoad *dl = out;
	int bad = 0;
	lua_rawgeti(L, LUA_REGISTRYINDEX, cs->store);
	size_t n;
	char **keys = cfg_sorted_keys(L, cs, -1, "profile", &n);
	lua_pop(L, 1);
	for (size_t i = 0; keys && i < n; i++) {
		size_t k = 0;
		while (k < sizeof known / sizeof *known && strcmp(known[k], keys[i]))
			k++;
		if (k == sizeof known / sizeof *known) {
			cfg_error(L, cs, keys[i], "unknown device profile key '%s' (known: name, description, "
			          "amplifier, crossbar, noise)", keys[i]);
			bad = -1;
		}
	}
	if (keys)
		cfg_free_strv(keys, n);
	bad |= cfg_read_string(L, cs, "name", &dl->name, false);
	bad |= cfg_read_string(L, cs, "description", &dl->what, false);
	bad |= dev_read_table(L, cs, "amplifier", amp, sizeof amp / sizeof *amp, (char *)&dl->dp->amp);
	bad |= dev_read_table(L, cs, "crossbar", xbar, sizeof xbar / sizeof *xbar, (char *)&dl->dp->xbar);
	bad |= dev_read_encoding(L, cs, &dl->dp->xbar);
	bad |= dev_read_table(L, cs, "noise", noise, sizeof noise / sizeof *noise, (char *)&dl->dp->noise);
	return bad;
}

static bool dev_is_path(const char *s)
{
	size_t n = strlen(s);
	return strchr(s, '/') || (n > 4 && !strcmp(s + n - 4, ".lua"));
}

int cfg_load_device(const char *name, DevProfile *dp, Arena *a, Diags *d)
{
	memset(dp, 0, sizeof *dp);
	char path[4096];
	const char *env = getenv("DAMC_DEVICES");
	if (dev_is_path(name)) {
		snprintf(path, sizeof path, "%s", name);
	} else {
		bool ok = false;
		for (int k = 0; k < 2 && !ok; k++) {
			const char *dir = k == 0 ? env : DAM_DEVICES_DIR;
			if (!dir || !*dir)
				continue;
			snprintf(path, sizeof path, "%s/%s.lua", dir, name);
			FILE *f = fopen(path, "r");
			ok = f != NULL;
			if (f)
				fclose(f);
		}
		if (!ok) {
			diag_error(d, (Loc){ 0, 0, 0 }, "unknown device profile '%s' (shipped: %s; or give the "
			           "path of a .lua profile)", name, DAM_DEVICE_NAMES);
			return -1;
		}
	}
	DevLoad dl = { dp, NULL, NULL };
	CfgJob job = { dev_read, &dl };
	int rc = cfg_run(path, "device profile", &job, d);
	dp->name = arena_strdup(a, dl.name ? dl.name : name);
	dp->what = arena_strdup(a, dl.what ? dl.what : "");
	dp->path = arena_strdup(a, path);
	free(dl.name);
	free(dl.what);
	return rc;
}
