/* dam_npy.h - NumPy .npy / .npz tensor files (read and write).
 *
 * Format: NumPy's "NPY format" v1/v2/v3 (magic "\x93NUMPY", header dict with
 * 'descr', 'fortran_order', 'shape').  .npz is a zip archive of .npy members
 * (stored or deflated).  Values are converted to double on read.
 */
#ifndef DAM_NPY_H
#define DAM_NPY_H

#include <stddef.h>
#include <stdint.h>

#define DAM_NPY_MAX_RANK 8

typedef struct DamArray {
	int rank;
	int64_t shape[DAM_NPY_MAX_RANK];
	size_t count;          /* product of shape (1 for rank 0) */
	double *data;          /* malloc'd, row-major (C order) */
	char dtype[16];        /* the file's descr, e.g. "<f4" */
} DamArray;

/* Each returns 0 on success; on failure -1 with a one-line message in err
 * (no file name prefix: the caller knows the file), e.g.
 *   "unsupported dtype '<c16'", "no array named 'xi' (has: a, b, W_dec)". */
int  dam_npy_read(const char *path, DamArray *out, char *err, size_t errlen);
int  dam_npz_read(const char *path, const char *key, DamArray *out, char *err, size_t errlen);
/* List the member names of an .npz (without ".npy"), malloc'd array of malloc'd strings. */
int  dam_npz_list(const char *path, char ***names, int *count, char *err, size_t errlen);
void dam_array_free(DamArray *a);

/* Write a little-endian float64 .npy atomically (temp file + rename). */
int  dam_npy_write(const char *path, int rank, const int64_t *shape, const double *data,
                   char *err, size_t errlen);

#endif
