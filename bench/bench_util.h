/* bench_util.h - what the timing programs of bench/ share: a monotonic
 * clock in milliseconds and a comparison for qsort of doubles (medians).
 * Needs _POSIX_C_SOURCE (clock_gettime), as the scripts compile them. */
#ifndef DAM_BENCH_UTIL_H
#define DAM_BENCH_UTIL_H

#include <stdio.h>
#include <time.h>

static inline double bench_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

#endif
