/* outfile.c - atomic output files (see outfile.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outfile.h"

FILE *outfile_open(OutFile *of, const char *path)
{
	memset(of, 0, sizeof *of);
	of->path = path;
	if (!path || !strcmp(path, "-")) {
		of->f = stdout;
		return of->f;
	}
	size_t n = strlen(path) + 32;
	of->tmp = malloc(n);
	if (!of->tmp)
		return NULL;
	snprintf(of->tmp, n, "%s.tmp.%ld", path, (long)getpid());
	of->f = fopen(of->tmp, "wb");
	if (!of->f) {
		fprintf(stderr, "damc: error: cannot write '%s': ", path);
		perror(NULL);
		free(of->tmp);
		of->tmp = NULL;
	}
	return of->f;
}

int outfile_close(OutFile *of)
{
	if (!of->tmp) {
		if (of->f)
			fflush(of->f);
		return of->f && ferror(of->f) ? -1 : 0;
	}
	int bad = ferror(of->f) != 0;
	bad |= fclose(of->f) != 0;
	if (!bad && rename(of->tmp, of->path) != 0)
		bad = 1;
	if (bad) {
		fprintf(stderr, "damc: error: cannot write '%s'\n", of->path);
		remove(of->tmp);
	}
	free(of->tmp);
	of->tmp = NULL;
	return bad ? -1 : 0;
}

void outfile_abort(OutFile *of)
{
	if (of->tmp) {
		fclose(of->f);
		remove(of->tmp);
		free(of->tmp);
		of->tmp = NULL;
	}
}
