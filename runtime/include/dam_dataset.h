/* dam_dataset.h - numeric dataset text files (libdam runtime).
 *
 * A dataset file holds one run per line: numbers separated by spaces, tabs
 * and/or single commas ("1 0 1", "1,0,1", "1, 0, 1").  Blank lines and lines
 * whose first non-blank character is '#' are skipped.  Every row must have
 * the same number of values.  Errors carry the 1-based line and column of
 * the problem (col 0 when the whole row is at fault, line 0 for the file as
 * a whole) and a one-line message without the file name, e.g.
 *   line 3 col 5: "expected a number, found 'x1'"
 *   line 4:       "row has 7 values, expected 8"
 */
#ifndef DAM_DATASET_H
#define DAM_DATASET_H

#include <stddef.h>

typedef struct DamDataset {
	size_t rows, cols;
	double *v;             /* malloc'd, row-major: v[r * cols + c] */
} DamDataset;

typedef struct DamDatasetError {
	int line, col;
	char msg[256];
} DamDatasetError;

/* Reads path; expected_cols 0 takes the first row's count.  0 on success,
 * -1 with *err filled (and *out empty) on failure. */
int dam_dataset_read(const char *path, size_t expected_cols, DamDataset *out, DamDatasetError *err);
/* One row given as text (e.g. "1,0,1" from the command line), same rules;
 * the result has rows = 1.  Errors report line 1. */
int dam_dataset_parse_row(const char *text, size_t expected_cols, DamDataset *out, DamDatasetError *err);
void dam_dataset_free(DamDataset *d);

#endif
