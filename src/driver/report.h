/* report.h - what `damc run` writes: result lines, traces and plots.
 *
 * Results are formatted into a growable text buffer (RepBuf), one line per
 * run, either as a JSON object (keys in a fixed order, numbers with %.17g,
 * non-finite numbers as null) or as a row of a readable table.  A trace
 * records t, the state, the activations and the energy of one run; it is
 * written as CSV or as a .npy matrix, or drawn with gnuplot in three
 * stacked panels (visible states, hidden activations, energy).  Every file
 * is written atomically (temp file + rename).
 */
#ifndef DAM_REPORT_H
#define DAM_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "dam_integrate.h"
#include "model.h"

typedef struct RepBuf {
	char *s;
	size_t n, cap;
} RepBuf;

void rep_init(RepBuf *b);
void rep_free(RepBuf *b);
void rep_printf(RepBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rep_json_string(RepBuf *b, const char *s);
void rep_json_number(RepBuf *b, double v);

/* One finished run, as the report sees it. */
typedef struct ReportRun {
	int64_t index;
	const double *const *inputs;   /* per model input, model order */
	const double *outputs;         /* all outputs, concatenated */
	const size_t *output_off;      /* offset of each output in outputs[] */
	const int *sel; int nsel;      /* outputs to show (model numbers) */
	const DamRunResult *res;
	const char *message;           /* "" when none */
} ReportRun;

/* What the table shows for a non-finite number (JSON: null; CSV: empty). */
#define REPORT_NOT_A_VALUE "n/a"

const char *report_status_name(DamStatus s);
/* Append one JSON object and a newline. */
void report_json_run(RepBuf *b, const Model *m, const ReportRun *r);
/* The readable table: a header, then one line per run. */
void report_text_header(RepBuf *b);
void report_text_run(RepBuf *b, const Model *m, const ReportRun *r);

/* Write len bytes to path atomically.  Returns 0, or -1 with err set. */
int report_write_file(const char *path, const char *data, size_t len, char *err, size_t errlen);

/* A trace: rows of  t, x[0..n), g[0..n), E. */
typedef struct RepTrace {
	size_t nstate, ncols, nrows, cap;
	double *rows;
} RepTrace;

void report_trace_init(RepTrace *t, size_t nstate);
void report_trace_free(RepTrace *t);
void report_trace_add(RepTrace *t, double time, const double *x, const double *g, double energy);
/* By extension: .csv (header t,v[0],...,g_v[0],...,E) or .npy (float64 matrix). */
int report_trace_write(const char *path, const Model *m, const RepTrace *t, char *err,
                       size_t errlen);
/* Run gnuplot to draw the trace into a .png or .svg file. */
int report_plot(const char *path, const Model *m, const RepTrace *t, char *err, size_t errlen);
/* Run gnuplot on body (which reads 'trace.dat', holding data) and write the
 * picture to path (.png or .svg; the terminal lines are added here). */
int report_gnuplot(const char *path, const char *body, const char *data, size_t ndata, char *err,
                   size_t errlen);

#endif
