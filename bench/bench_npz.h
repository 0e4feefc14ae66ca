/* bench_npz.h - the hand-written baselines of bench/ read their weights with
 * the runtime's .npz reader: one float64 array of a known size. */
#ifndef DAM_BENCH_NPZ_H
#define DAM_BENCH_NPZ_H

#include <stdio.h>

#include "dam_npy.h"

/* Array `key` of npz, which must hold n values, into *out (malloc'd: free
 * it); 0, or -1 with a message in err. */
static inline int bench_npz_array(const char *npz, const char *key, size_t n, double **out, char *err,
                                  size_t errlen)
{
	DamArray arr;
	char msg[256];
	if (dam_npz_read(npz, key, &arr, msg, sizeof msg)) {
		snprintf(err, errlen, "%s: %s", npz, msg);
		return -1;
	}
	if (arr.count != n) {
		snprintf(err, errlen, "%s: '%s' has %zu values, expected %zu", npz, key, arr.count, n);
		dam_array_free(&arr);
		return -1;
	}
	*out = arr.data;                  /* malloc'd by dam_npz_read */
	return 0;
}

#endif
