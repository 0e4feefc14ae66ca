/* outfile.h - atomic output files: write to PATH.tmp.PID, rename on success.
 * A NULL path means standard output. */
#ifndef DAM_OUTFILE_H
#define DAM_OUTFILE_H

#include <stdio.h>

typedef struct OutFile {
	const char *path;
	char *tmp;
	FILE *f;
} OutFile;

FILE *outfile_open(OutFile *of, const char *path);   /* prints an error and returns NULL on failure */
int   outfile_close(OutFile *of);                    /* 0 ok; on error removes the temp file */
void  outfile_abort(OutFile *of);                    /* discard */

#endif
