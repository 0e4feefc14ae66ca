/* commands.h - the damc subcommands, dispatched from main.c.
 *
 * Each takes the arguments after the command name (argv[0] is the command)
 * and returns the process exit status: 0 success, 1 errors in the input
 * (diagnostics were printed), 2 usage errors.
 */
#ifndef DAM_COMMANDS_H
#define DAM_COMMANDS_H

int cmd_check(int argc, char **argv);
int cmd_derive(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_netlist(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_sweep(int argc, char **argv);   /* sweep.c: linked into damc only (MPI) */

#endif
