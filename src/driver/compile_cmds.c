/* compile_cmds.c - `damc check` and `damc derive`: the front end alone.
 *
 * Both run every front-end pass (parse, sema, derive, checks) and render the
 * diagnostics; derive then prints the Model IR as readable math or LaTeX.
 * The printout goes to a temp file that is renamed into place when -o is
 * given, so an interrupted run never leaves half a file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "frontend.h"
#include "outfile.h"

typedef struct CompileArgs {
	const char *file;
	const char **defines;
	int ndefines;
	const char *out;
	const char *stdlib_dir;
	int latex;
	int dump_ast;
	int werror;
} CompileArgs;

static void compile_usage(const char *cmd, FILE *out)
{
	fprintf(out,
	        "usage: damc %s [options] FILE.dam\n"
	        "\n"
	        "%s\n"
	        "\n"
	        "options:\n"
	        "  -D name=value    override a param of the model (numbers or strings)\n"
	        "  --stdlib DIR     where `import \"name\"` looks for name.dam (default: $DAMC_STDLIB,\n"
	        "                   then the stdlib/ directory of the source tree)\n"
	        "  -Werror          treat warnings as errors\n"
	        "  --dump-ast       print the syntax tree of FILE\n"
	        "%s"
	        "  -h, --help       show this help\n",
	        cmd,
	        !strcmp(cmd, "check") ? "Parse and check a model and derive its equations; print diagnostics only."
	                              : "Print the derived Lagrangians, activations, Hessians, energy and ODEs.",
	        !strcmp(cmd, "derive") ? "  --latex          print LaTeX (align environment) instead of plain text\n"
	                                 "  -o FILE          write to FILE (atomically) instead of standard output\n"
	                               : "");
}

/* Returns -1 to continue, else an exit status. */
static int parse_compile_args(const char *cmd, int argc, char **argv, CompileArgs *a)
{
	memset(a, 0, sizeof *a);
	a->defines = calloc((size_t)argc + 1, sizeof *a->defines);
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
			compile_usage(cmd, stdout);
			return 0;
		} else if (!strcmp(s, "-D") && i + 1 < argc) {
			a->defines[a->ndefines++] = argv[++i];
		} else if (!strncmp(s, "-D", 2) && s[2]) {
			a->defines[a->ndefines++] = s + 2;
		} else if (!strcmp(s, "--stdlib") && i + 1 < argc) {
			a->stdlib_dir = argv[++i];
		} else if (!strcmp(s, "-Werror")) {
			a->werror = 1;
		} else if (!strcmp(s, "--dump-ast")) {
			a->dump_ast = 1;
		} else if (!strcmp(cmd, "derive") && !strcmp(s, "--latex")) {
			a->latex = 1;
		} else if (!strcmp(cmd, "derive") && !strcmp(s, "-o") && i + 1 < argc) {
			a->out = argv[++i];
		} else if (s[0] == '-' && s[1]) {
			fprintf(stderr, "damc %s: error: unknown or incomplete option '%s'\n", cmd, s);
			compile_usage(cmd, stderr);
			return 2;
		} else if (a->file) {
			fprintf(stderr, "damc %s: error: more than one input file ('%s' and '%s')\n", cmd, a->file, s);
			return 2;
		} else {
			a->file = s;
		}
	}
	if (!a->file) {
		fprintf(stderr, "damc %s: error: no input file\n", cmd);
		compile_usage(cmd, stderr);
		return 2;
	}
	return -1;
}

static int compile_main(const char *cmd, int argc, char **argv)
{
	CompileArgs a;
	int rc = parse_compile_args(cmd, argc, argv, &a);
	if (rc >= 0) {
		free(a.defines);
		return rc;
	}
	Arena arena;
	arena_init(&arena);
	Diags d;
	diags_init(&d, &arena);
	FrontendOptions fo = { a.defines, a.ndefines, a.stdlib_dir, a.dump_ast ? stdout : NULL, 0 };
	Model *m = dam_frontend_compile(a.file, &fo, &d, &arena);
	diag_render(&d, stderr);
	rc = (!m || diag_errors(&d) || (a.werror && d.nwarnings)) ? 1 : 0;
	if (rc == 0 && !strcmp(cmd, "derive")) {
		OutFile of;
		FILE *out = outfile_open(&of, a.out);
		if (!out) {
			rc = 1;
		} else {
			model_print(m, a.latex ? SYM_LATEX : SYM_TEXT, out);
			rc = outfile_close(&of) ? 1 : 0;
		}
	}
	diags_free(&d);
	arena_free(&arena);
	free(a.defines);
	return rc;
}

int cmd_check(int argc, char **argv)
{
	return compile_main("check", argc, argv);
}

int cmd_derive(int argc, char **argv)
{
	return compile_main("derive", argc, argv);
}
