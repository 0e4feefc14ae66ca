/* dataset.c - numeric dataset text files for the libdam runtime (dam_dataset.h).
 *
 * A dataset is read whole and cut into lines; each data line is split into
 * tokens at runs of blanks holding at most one comma, and every token must
 * be a finite number in full (strtod, C locale).  Rows must all have the
 * caller's column count (or the first row's).  The first problem stops the
 * read and is reported with its 1-based line and column.  The same line
 * parser serves single rows typed on the command line.
 */
#include "dam_dataset.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct DsVec {
	double *v;
	size_t n, cap;
} DsVec;

static int ds_fail(DamDatasetError *err, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int ds_fail(DamDatasetError *err, int line, int col, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		err->line = line;
		err->col = col;
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int ds_push(DsVec *d, double x)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 64;
		double *v = realloc(d->v, cap * sizeof *v);
		if (!v)
			return -1;
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n++] = x;
	return 0;
}

static int ds_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static int ds_token_char(char c)
{
	return c != ',' && !ds_blank(c);
}

/* Skips blanks and commas from i, stopping at a second comma.  *ncomma
 * is the number of commas seen (0-2), *comma_at the index of the last. */
static size_t ds_separator(const char *s, size_t len, size_t i, int *ncomma, size_t *comma_at)
{
	*ncomma = 0;
	while (i < len && (ds_blank(s[i]) || s[i] == ',')) {
		if (s[i] == ',') {
			*comma_at = i;
			if (++*ncomma == 2)
				break;
		}
		i++;
	}
	return i;
}

/* One token as a finite number. */
static int ds_number(const char *tok, size_t n, double *out)
{
	char buf[128], *end;
	if (n >= sizeof buf)
		return -1;
	memcpy(buf, tok, n);
	buf[n] = 0;
	*out = strtod(buf, &end);
	return end == buf + n && isfinite(*out) ? 0 : -1;
}

static int ds_bad_token(DamDatasetError *err, int line, size_t col, const char *tok, size_t n)
{
	if (n > 40)
		return ds_fail(err, line, (int)col + 1, "expected a number, found '%.40s...'", tok);
	return ds_fail(err, line, (int)col + 1, "expected a number, found '%.*s'", (int)n, tok);
}

/* Appends the values of one data line (s, len; no newline) to d. */
static int ds_parse_line(const char *s, size_t len, int line, DsVec *d, size_t *count, DamDatasetError *err)
{
	int ncomma;
	size_t comma_at = 0, before = d->n;
	size_t i = ds_separator(s, len, 0, &ncomma, &comma_at);
	if (ncomma)
		return ds_fail(err, line, (int)comma_at + 1, "expected a number, found ','");
	while (i < len) {
		size_t start = i;
		double x;
		while (i < len && ds_token_char(s[i]))
			i++;
		if (ds_number(s + start, i - start, &x))
			return ds_bad_token(err, line, start, s + start, i - start);
		if (ds_push(d, x))
			return ds_fail(err, line, 0, "out of memory");
		i = ds_separator(s, len, i, &ncomma, &comma_at);
		if (ncomma == 2)
			return ds_fail(err, line, (int)comma_at + 1, "expected a number, found ','");
		if (ncomma && i == len)
			return ds_fail(err, line, (int)comma_at + 1, "expected a number after ',', found the end of the line");
	}
	*count = d->n - before;
	return 0;
}

static int ds_skip_line(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && ds_blank(s[i]))
		i++;
	return i == len || s[i] == '#';
}

/* Parses a data line and checks its width against *cols (0: set it). */
static int ds_row(const char *s, size_t len, int line, DsVec *d, size_t *cols, DamDatasetError *err)
{
	size_t n = 0;
	if (ds_parse_line(s, len, line, d, &n, err))
		return -1;
	if (*cols == 0)
		*cols = n;
	if (n != *cols)
		return ds_fail(err, line, 0, "row has %zu value%s, expected %zu", n, n == 1 ? "" : "s", *cols);
	return 0;
}

static void ds_finish(DsVec *d, size_t cols, DamDataset *out)
{
	out->cols = cols;
	out->rows = cols ? d->n / cols : 0;
	out->v = d->v;
}

/* Parses the text of a whole file. */
static int ds_parse_text(const char *text, size_t len, size_t cols, DamDataset *out, DamDatasetError *err)
{
	DsVec d = {0};
	int line = 0;
	for (size_t i = 0; i < len;) {
		size_t end = i;
		while (end < len && text[end] != '\n')
			end++;
		line++;
		if (!ds_skip_line(text + i, end - i) && ds_row(text + i, end - i, line, &d, &cols, err)) {
			free(d.v);
			return -1;
		}
		i = end + 1;
	}
	if (d.n == 0 && cols == 0) {
		free(d.v);
		return ds_fail(err, 0, 0, "the file has no data rows");
	}
	if (d.n == 0) {
		free(d.v);
		return ds_fail(err, 0, 0, "the file has no data rows (expected rows of %zu values)", cols);
	}
	ds_finish(&d, cols, out);
	return 0;
}

static int ds_slurp(const char *path, char **text, size_t *len, DamDatasetError *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return ds_fail(err, 0, 0, "cannot open file: %s", strerror(errno));
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		char *grown = realloc(buf, 2 * cap);
		if (!grown)
			free(buf);
		buf = grown;
		cap *= 2;
	}
	int bad = !buf || ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return ds_fail(err, 0, 0, "cannot read file");
	}
	*text = buf;
	*len = n;
	return 0;
}

int dam_dataset_read(const char *path, size_t expected_cols, DamDataset *out, DamDatasetError *err)
{
	char *text = NULL;
	size_t len = 0;
	memset(out, 0, sizeof *out);
	if (err)
		memset(err, 0, sizeof *err);
	if (ds_slurp(path, &text, &len, err))
		return -1;
	int rc = ds_parse_text(text, len, expected_cols, out, err);
	free(text);
	return rc;
}

int dam_dataset_parse_row(const char *text, size_t expected_cols, DamDataset *out, DamDatasetError *err)
{
	DsVec d = {0};
	size_t cols = expected_cols, len = strlen(text);
	memset(out, 0, sizeof *out);
	if (err)
		memset(err, 0, sizeof *err);
	if (text[strspn(text, " \t\r")] == 0)
		return ds_fail(err, 1, 1, "expected a number, found the end of the row");
	if (ds_row(text, len, 1, &d, &cols, err)) {
		free(d.v);
		return -1;
	}
	ds_finish(&d, cols, out);
	return 0;
}

void dam_dataset_free(DamDataset *d)
{
	free(d->v);
	d->v = NULL;
	d->rows = d->cols = 0;
}
