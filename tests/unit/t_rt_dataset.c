/* t_rt_dataset.c - tests of the dataset text reader (dam_dataset.h).
 *
 * The published parity validation split (52 rows of 8 bits and 52 labels),
 * when present in the shared data directory; files with mixed separators,
 * comments, blank lines and CRLF endings; malformed files whose errors are
 * compared word for word with their line and column; and single rows as
 * typed on the command line.
 */
#include "dam_dataset.h"
#include "tap.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];
static char tmpfile_path[128];

static const char *write_text(const char *text)
{
	snprintf(tmpfile_path, sizeof tmpfile_path, "%s/data.txt", tmpdir);
	FILE *f = fopen(tmpfile_path, "wb");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	return tmpfile_path;
}

static void repo_root(char *out, size_t size)
{
	const char *env = getenv("DAM_SRC");
	if (env && *env) {
		snprintf(out, size, "%s", env);
		return;
	}
	snprintf(out, size, "%s", __FILE__);
	char *cut = strstr(out, "/tests/unit/");
	if (cut)
		*cut = 0;
	else
		snprintf(out, size, ".");
}

static void published_path(char *out, size_t size, const char *name)
{
	char root[512];
	repo_root(root, sizeof root);
	snprintf(out, size, "%s/../shared/data/published/analog-denseam-parity/%s", root, name);
}

static int all_bits(const DamDataset *d)
{
	for (size_t i = 0; i < d->rows * d->cols; i++)
		if (d->v[i] != 0.0 && d->v[i] != 1.0)
			return 0;
	return 1;
}

static void test_published(void)
{
	char px[768], py[768];
	struct stat st;
	published_path(px, sizeof px, "parity_data_test_X.txt");
	published_path(py, sizeof py, "parity_data_test_y.txt");
	if (stat(px, &st) != 0 || stat(py, &st) != 0) {
		skip(3, "published parity_data_test_*.txt not found");
		return;
	}
	DamDataset x, y;
	DamDatasetError e;
	int rx = dam_dataset_read(px, 8, &x, &e);
	if (rx)
		diag("X: line %d col %d: %s", e.line, e.col, e.msg);
	static const double row0[8] = {1, 1, 1, 0, 0, 0, 1, 1};
	ok(rx == 0 && x.rows == 52 && x.cols == 8 && all_bits(&x) && memcmp(x.v, row0, sizeof row0) == 0,
	   "parity_data_test_X: 52 rows of 8 bits, first row 1 1 1 0 0 0 1 1");
	int ry = dam_dataset_read(py, 0, &y, &e);
	if (ry)
		diag("y: line %d col %d: %s", e.line, e.col, e.msg);
	ok(ry == 0 && y.rows == 52 && y.cols == 1 && all_bits(&y), "parity_data_test_y: 52 rows of 1 bit");
	/* The labels are the parity of the inputs. */
	int parity_ok = rx == 0 && ry == 0;
	for (size_t r = 0; parity_ok && r < 52; r++) {
		double s = 0.0;
		for (size_t c = 0; c < 8; c++)
			s += x.v[r * 8 + c];
		parity_ok = fmod(s, 2.0) == y.v[r];
	}
	ok(parity_ok, "every label is the parity of its row");
	if (rx == 0)
		dam_dataset_free(&x);
	if (ry == 0)
		dam_dataset_free(&y);
}

static void test_separators(void)
{
	DamDataset d;
	DamDatasetError e;
	const char *p = write_text("# inputs\n\n1, 2,3\r\n4\t5 ,6\r\n   # indented comment\n  7 8 9\n-1e-3,+2.5,0x10");
	int r = dam_dataset_read(p, 3, &d, &e);
	static const double want[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, -1e-3, 2.5, 16};
	ok(r == 0 && d.rows == 4 && d.cols == 3 && memcmp(d.v, want, sizeof want) == 0,
	   "commas, tabs, spaces, CRLF, comments, blank lines, no final newline");
	if (r == 0)
		dam_dataset_free(&d);
	r = dam_dataset_read(p, 0, &d, &e);
	ok(r == 0 && d.cols == 3 && d.rows == 4, "expected_cols 0 takes the first row's count");
	if (r == 0)
		dam_dataset_free(&d);
}

/* Reads text and compares the error's line, column and message. */
static void expect_error(const char *text, size_t cols, int line, int col, const char *msg, const char *what)
{
	DamDataset d;
	DamDatasetError e = {0};
	int r = dam_dataset_read(write_text(text), cols, &d, &e);
	ok(r == -1 && e.line == line && e.col == col && d.v == NULL, "%s: fails at line %d col %d (got %d, %d)", what,
	   line, col, e.line, e.col);
	is_str(e.msg, msg, what);
	if (r == 0)
		dam_dataset_free(&d);
}

static void test_errors(void)
{
	expect_error("# c\n1 0 1 1\n1 0 x1 1\n", 0, 3, 5, "expected a number, found 'x1'", "bad token");
	expect_error("1 2 3 4 5 6 7 8\n1 1 1 1 1 1 1 1\n\n1 2 3 4 5 6 7\n", 8, 4, 0, "row has 7 values, expected 8",
	             "short row");
	expect_error("1 0 1\n", 8, 1, 0, "row has 3 values, expected 8", "first row against expected_cols");
	expect_error("1 0\n1 0 1\n", 0, 2, 0, "row has 3 values, expected 2", "row wider than the first");
	expect_error("1,,2\n", 0, 1, 3, "expected a number, found ','", "empty field");
	expect_error("1, 2,\n", 0, 1, 5, "expected a number after ',', found the end of the line", "trailing comma");
	expect_error("\n  ,1\n", 0, 2, 3, "expected a number, found ','", "leading comma");
	expect_error("1 nan 0\n", 0, 1, 3, "expected a number, found 'nan'", "nan is not a value");
	expect_error("1 2.5.1\n", 0, 1, 3, "expected a number, found '2.5.1'", "partial number");
	expect_error("# only a comment\n\n", 0, 0, 0, "the file has no data rows", "no data");

	DamDataset d;
	DamDatasetError e;
	char missing[128];
	snprintf(missing, sizeof missing, "%s/nope.txt", tmpdir);
	ok(dam_dataset_read(missing, 0, &d, &e) == -1 && e.line == 0, "missing file fails");
	is_str(e.msg, "cannot open file: No such file or directory", "missing file message");
}

static void test_parse_row(void)
{
	DamDataset d;
	DamDatasetError e = {0};
	int r = dam_dataset_parse_row("1,0,1", 3, &d, &e);
	ok(r == 0 && d.rows == 1 && d.cols == 3 && d.v[0] == 1 && d.v[1] == 0 && d.v[2] == 1, "parse_row \"1,0,1\"");
	if (r == 0)
		dam_dataset_free(&d);
	r = dam_dataset_parse_row(" 0.5 -2 ", 0, &d, &e);
	ok(r == 0 && d.cols == 2 && d.v[0] == 0.5 && d.v[1] == -2.0, "parse_row \" 0.5 -2 \" with any width");
	if (r == 0)
		dam_dataset_free(&d);
	r = dam_dataset_parse_row("1,0", 3, &d, &e);
	ok(r == -1 && e.line == 1 && e.col == 0, "parse_row: too few values fails");
	is_str(e.msg, "row has 2 values, expected 3", "parse_row: width message");
	r = dam_dataset_parse_row("1,a", 2, &d, &e);
	ok(r == -1 && e.col == 3, "parse_row: bad value at col 3 (got %d)", e.col);
	is_str(e.msg, "expected a number, found 'a'", "parse_row: bad value message");
	r = dam_dataset_parse_row("  ", 2, &d, &e);
	ok(r == -1 && e.col == 1, "parse_row: blank text fails");
	is_str(e.msg, "expected a number, found the end of the row", "parse_row: blank text message");
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/t_rt_dataset.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! cannot create a temp directory\n");
		return 1;
	}
	plan(35);
	test_published();
	test_separators();
	test_errors();
	test_parse_row();
	remove(tmpfile_path);
	rmdir(tmpdir);
	return done_testing();
}
