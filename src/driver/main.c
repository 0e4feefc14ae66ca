/* main.c - the damc command line: dispatch to the subcommands.
 *
 *   damc check  FILE [-D name=value]...     parse, check, derive; diagnostics only
 *   damc derive FILE [--latex] [-D ...]     print activations, energy, ODEs
 *   damc run    FILE [options]              JIT-compile and simulate
 *   damc netlist FILE [options]             the analog circuit as an ngspice deck
 *   damc verify FILE [options]              ngspice against the JIT, neuron by neuron
 *   damc report FILE [options]              hardware, latency and energy under a device
 *   damc image FILE --device P -o IMG       the crossbar programming image (--dump, --extract)
 *   damc generate FILE --context T --steps N  autoregressive generation (paper Sec. 6.2)
 *   damc train FILE -c TRAIN.lua -o CKPT.npz  training by backpropagation through the dynamics
 *   damc sweep FILE -c SWEEP.lua -o OUT     a grid or random sample of runs (MPI if built with it)
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"

/* An installed damc (cmake --install: PREFIX/bin/damc) finds its standard
 * library and device profiles in PREFIX/share/damc/{stdlib,devices}, unless
 * DAMC_STDLIB / DAMC_DEVICES say otherwise; a damc run from its build tree
 * finds neither there and keeps the source tree's (compiled in). */
static void find_share(void)
{
	char exe[PATH_MAX], dir[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return;
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (!slash)
		return;
	*slash = 0;
	static const char *const sub[][2] = { { "DAMC_STDLIB", "stdlib" }, { "DAMC_DEVICES", "devices" } };
	for (int k = 0; k < 2; k++) {
		struct stat st;
		snprintf(dir, sizeof dir, "%s/../share/damc/%s", exe, sub[k][1]);
		const char *cur = getenv(sub[k][0]);
		if ((!cur || !*cur) && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			setenv(sub[k][0], dir, 1);
	}
}

static void usage(FILE *out)
{
	fputs("usage: damc COMMAND [options] FILE.dam\n"
	      "\n"
	      "Compile energy-based analog circuit models (Dense Associative Memories).\n"
	      "\n"
	      "commands:\n"
	      "  check    parse and check a model, derive its equations, report diagnostics\n"
	      "  derive   print the derived activations, Hessians, energy and ODEs\n"
	      "  run      compile the model to native code (LLVM) and simulate it\n"
	      "  netlist  write the analog circuit as an ngspice netlist (docs/netlist.md)\n"
	      "  verify   simulate the netlist in ngspice and compare it with the JIT\n"
	      "  report   the hardware a model needs, its latency and energy per inference\n"
	      "  image    write, dump or extract a crossbar programming image (docs/image-format.md)\n"
	      "  generate autoregressive generation: relax, decode, slide the window, relax again\n"
	      "  train    train the learned tensors (backpropagation through the compiled dynamics)\n"
	      "  sweep    run a grid or a random sample of params and run options, one JSON line per run\n"
	      "\n"
	      "options:\n"
	      "  -h, --help     show this help (damc COMMAND --help for a command)\n"
	      "  --version      print the version\n"
	      "\n"
	      "exit status: 0 success, 1 errors in the input, 2 usage errors, 3 a simulation diverged\n",
	      out);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	find_share();
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf("damc %s\n", DAM_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(cmd, "derive"))
		return cmd_derive(argc - 1, argv + 1);
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "netlist"))
		return cmd_netlist(argc - 1, argv + 1);
	if (!strcmp(cmd, "verify"))
		return cmd_verify(argc - 1, argv + 1);
	if (!strcmp(cmd, "report"))
		return cmd_report(argc - 1, argv + 1);
	if (!strcmp(cmd, "image"))
		return cmd_image(argc - 1, argv + 1);
	if (!strcmp(cmd, "generate"))
		return cmd_generate(argc - 1, argv + 1);
	if (!strcmp(cmd, "train"))
		return cmd_train(argc - 1, argv + 1);
	if (!strcmp(cmd, "sweep"))
		return cmd_sweep(argc - 1, argv + 1);
	fprintf(stderr, "damc: error: unknown command '%s'\n\n", cmd);
	usage(stderr);
	return 2;
}
