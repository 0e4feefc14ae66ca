/* tap.h - a one-header TAP producer for the unit tests (run by prove).
 *
 *   plan(3); ok(x == 1, "x is one"); is_close(a, b, 1e-12, "close");
 *   is_close_rel(big, want, 1e-9, "within 1e-9 of |want| (absolute below 1)");
 *   diag("observed error %g", err); return done_testing();
 */
#ifndef DAM_TAP_H
#define DAM_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed, tap_planned = -1;

static inline void plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
}

static inline void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("# ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
}

static inline int ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int ok(int cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%s %d - ", cond ? "ok" : "not ok", ++tap_n);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	if (!cond)
		tap_failed++;
	fflush(stdout);
	return cond;
}

/* Absolute tolerance: |got - want| <= tol (a NaN never passes). */
static inline int is_close(double got, double want, double tol, const char *what)
{
	double err = fabs(got - want);
	int good = err <= tol && got == got;
	ok(good, "%s (got %.17g, want %.17g, err %.3g, tol %.3g)", what, got, want, err, tol);
	return good;
}

/* Relative tolerance: |got - want| <= tol * max(1, |want|), so values near
 * zero are compared absolutely (a NaN or an infinite got never passes). */
static inline int is_close_rel(double got, double want, double tol, const char *what)
{
	double err = fabs(got - want), scale = fmax(1.0, fabs(want));
	int good = isfinite(got) && err <= tol * scale;
	ok(good, "%s (got %.17g, want %.17g, rel err %.3g, tol %.3g)", what, got, want, err / scale,
	   tol);
	return good;
}

static inline int is_str(const char *got, const char *want, const char *what)
{
	int good = got && want && strcmp(got, want) == 0;
	ok(good, "%s", what);
	if (!good) {
		diag("got:  %s", got ? got : "(null)");
		diag("want: %s", want ? want : "(null)");
	}
	return good;
}

static inline void skip(int n, const char *why)
{
	for (int i = 0; i < n; i++)
		printf("ok %d # skip %s\n", ++tap_n, why);
}

static inline int done_testing(void)
{
	if (tap_planned < 0)
		printf("1..%d\n", tap_n);
	else if (tap_planned != tap_n)
		diag("planned %d tests but ran %d", tap_planned, tap_n);
	return tap_failed != 0 || (tap_planned >= 0 && tap_planned != tap_n);
}

#endif
