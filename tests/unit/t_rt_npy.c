/* t_rt_npy.c - tests of the .npy/.npz reader and writer (dam_npy.h).
 *
 * Round trips through dam_npy_write for ranks 0-3; .npy files built byte by
 * byte here (little- and big-endian floats, integers, bools, a Fortran-order
 * array, a version 2.0 header); a zip archive built here with one stored
 * and one deflated member (CRCs from zlib) for the .npz reader; the exact
 * text of the errors; and, when present, the published parity checkpoint
 * in the shared data directory.
 */
#include "dam_npy.h"
#include "tap.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[64];

static const char *tmp_path(const char *name)
{
	static char buf[4][128];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
	return buf[k];
}

static void write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n)
		diag("cannot write %s", path);
	if (f)
		fclose(f);
}

/* ---- building .npy images by hand ------------------------------------ */

typedef struct Buf {
	unsigned char b[4096];
	size_t n;
} Buf;

static void buf_put(Buf *b, const void *p, size_t n)
{
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void buf_le(Buf *b, uint64_t v, int size)
{
	for (int i = 0; i < size; i++)
		b->b[b->n++] = (unsigned char)(v >> (8 * i));
}

static void buf_be(Buf *b, uint64_t v, int size)
{
	for (int i = size - 1; i >= 0; i--)
		b->b[b->n++] = (unsigned char)(v >> (8 * i));
}

/* Magic, version and the dict (padded to 16 bytes, newline-terminated). */
static void npy_begin(Buf *b, int major, const char *dict)
{
	size_t lenbytes = major == 1 ? 2 : 4;
	size_t hlen = strlen(dict) + 1;
	size_t pad = (16 - (8 + lenbytes + hlen) % 16) % 16;
	b->n = 0;
	buf_put(b, "\x93NUMPY", 6);
	b->b[b->n++] = (unsigned char)major;
	b->b[b->n++] = 0;
	buf_le(b, hlen + pad, (int)lenbytes);
	buf_put(b, dict, strlen(dict));
	for (size_t i = 0; i < pad; i++)
		b->b[b->n++] = ' ';
	b->b[b->n++] = '\n';
}

static uint64_t bits_of_double(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof u);
	return u;
}

static uint32_t bits_of_float(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

static int same_values(const DamArray *a, const double *want, size_t n)
{
	if (a->count != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (a->data[i] != want[i])
			return 0;
	return 1;
}

/* Reads img as a .npy file; 0 when it parsed. */
static int read_image(const Buf *b, const char *name, DamArray *a, char *err, size_t errlen)
{
	const char *path = tmp_path(name);
	write_bytes(path, b->b, b->n);
	return dam_npy_read(path, a, err, errlen);
}

/* ---- round trips --------------------------------------------------------- */

static void test_round_trip(void)
{
	static const int64_t shapes[4][3] = {{0}, {5}, {2, 3}, {2, 3, 4}};
	double v[24];
	for (int i = 0; i < 24; i++)
		v[i] = (i - 7.25) * 1e-3 + (i % 3 == 0 ? 1e300 : 0.0);
	for (int rank = 0; rank < 4; rank++) {
		char err[256] = "", name[32];
		DamArray a;
		snprintf(name, sizeof name, "rt%d.npy", rank);
		const char *path = tmp_path(name);
		size_t n = 1;
		for (int k = 0; k < rank; k++)
			n *= (size_t)shapes[rank][k];
		int w = dam_npy_write(path, rank, shapes[rank], v, err, sizeof err);
		int r = w == 0 ? dam_npy_read(path, &a, err, sizeof err) : -1;
		int good = r == 0 && a.rank == rank && strcmp(a.dtype, "<f8") == 0 && same_values(&a, v, n);
		for (int k = 0; good && k < rank; k++)
			good = a.shape[k] == shapes[rank][k];
		ok(good, "round trip of a rank-%d array (%zu values, bit-exact)", rank, n);
		if (!good)
			diag("error: %s", err);
		if (r == 0)
			dam_array_free(&a);

		/* The data starts at a multiple of 64 and no temp file is left. */
		FILE *f = fopen(path, "rb");
		unsigned char head[10] = {0};
		if (f) {
			if (fread(head, 1, 10, f) != 10)
				head[8] = head[9] = 0;
			fclose(f);
		}
		char tmp[160];
		snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
		size_t start = 10 + (size_t)(head[8] | head[9] << 8);
		ok(start % 64 == 0 && access(tmp, F_OK) != 0, "rank %d: data at offset %zu (multiple of 64), temp file gone",
		   rank, start);
	}
}

/* ---- hand-built files ---------------------------------------------------- */

static void test_f4(void)
{
	static const float v[6] = {1.5f, -2.25f, 0.1f, 3e30f, -0.0f, 7.0f};
	Buf b;
	DamArray a;
	char err[256] = "";
	npy_begin(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
	for (int i = 0; i < 6; i++)
		buf_le(&b, bits_of_float(v[i]), 4);
	double want[6];
	for (int i = 0; i < 6; i++)
		want[i] = (double)v[i];
	int r = read_image(&b, "f4.npy", &a, err, sizeof err);
	ok(r == 0 && a.rank == 2 && a.shape[0] == 2 && a.shape[1] == 3 && strcmp(a.dtype, "<f4") == 0 &&
	   same_values(&a, want, 6), "'<f4' (2, 3) is read exactly (%s)", err);
	if (r == 0)
		dam_array_free(&a);
}

static void test_i8(void)
{
	static const int64_t v[3] = {-5, 1099511627776LL, -9007199254740992LL};
	Buf b;
	DamArray a;
	char err[256] = "";
	npy_begin(&b, 1, "{\"descr\": \"<i8\", \"fortran_order\": False, \"shape\": (3,)}");
	for (int i = 0; i < 3; i++) {
		uint64_t u;
		memcpy(&u, &v[i], sizeof u);
		buf_le(&b, u, 8);
	}
	double want[3] = {-5.0, 1099511627776.0, -9007199254740992.0};
	int r = read_image(&b, "i8.npy", &a, err, sizeof err);
	ok(r == 0 && a.rank == 1 && a.shape[0] == 3 && same_values(&a, want, 3),
	   "'<i8' (3,) with negatives, double quotes, no trailing comma (%s)", err);
	if (r == 0)
		dam_array_free(&a);
}

static void test_be_f8(void)
{
	Buf b;
	DamArray a;
	char err[256] = "";
	npy_begin(&b, 1, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }");
	buf_be(&b, bits_of_double(3.141592653589793), 8);
	buf_be(&b, bits_of_double(-1e-300), 8);
	double want[2] = {3.141592653589793, -1e-300};
	int r = read_image(&b, "be.npy", &a, err, sizeof err);
	ok(r == 0 && same_values(&a, want, 2) && strcmp(a.dtype, ">f8") == 0, "big-endian '>f8' is read exactly (%s)", err);
	if (r == 0)
		dam_array_free(&a);
}

static void test_small_ints(void)
{
	Buf b;
	DamArray a;
	char err[256] = "";
	npy_begin(&b, 2, "{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }");
	buf_le(&b, 0xffff, 2);      /* -1 */
	buf_le(&b, 0x8000, 2);      /* -32768 */
	buf_le(&b, 0x7fff, 2);
	double wi2[3] = {-1.0, -32768.0, 32767.0};
	int r = read_image(&b, "i2.npy", &a, err, sizeof err);
	ok(r == 0 && same_values(&a, wi2, 3), "'<i2' in a version 2.0 file, sign-extended (%s)", err);
	if (r == 0)
		dam_array_free(&a);

	npy_begin(&b, 3, "{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }");
	buf_put(&b, "\x00\x01\x01\x00", 4);
	double wb[4] = {0, 1, 1, 0};
	r = read_image(&b, "b1.npy", &a, err, sizeof err);
	ok(r == 0 && same_values(&a, wb, 4), "'|b1' in a version 3.0 file reads as 0/1 (%s)", err);
	if (r == 0)
		dam_array_free(&a);

	npy_begin(&b, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (), }");
	buf_put(&b, "\xff", 1);
	r = read_image(&b, "u1.npy", &a, err, sizeof err);
	ok(r == 0 && a.rank == 0 && a.count == 1 && a.data[0] == 255.0, "'|u1' scalar of shape () (%s)", err);
	if (r == 0)
		dam_array_free(&a);

	npy_begin(&b, 1, "{'descr': '>u4', 'fortran_order': False, 'shape': (1,), }");
	buf_be(&b, 0xfffffffeu, 4);
	r = read_image(&b, "u4.npy", &a, err, sizeof err);
	ok(r == 0 && a.data[0] == 4294967294.0, "'>u4' big-endian unsigned (%s)", err);
	if (r == 0)
		dam_array_free(&a);
}

static void test_fortran(void)
{
	Buf b;
	DamArray a;
	char err[256] = "";
	/* C-order [[1,2,3],[4,5,6]] is stored column by column: 1 4 2 5 3 6. */
	npy_begin(&b, 1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }");
	static const double col[6] = {1, 4, 2, 5, 3, 6};
	for (int i = 0; i < 6; i++)
		buf_le(&b, bits_of_double(col[i]), 8);
	double want[6] = {1, 2, 3, 4, 5, 6};
	int r = read_image(&b, "fortran.npy", &a, err, sizeof err);
	ok(r == 0 && a.shape[0] == 2 && a.shape[1] == 3 && same_values(&a, want, 6),
	   "a Fortran-order (2, 3) array is transposed into C order (%s)", err);
	if (r == 0)
		dam_array_free(&a);
}

/* ---- errors ------------------------------------------------------------- */

static void expect_error(const Buf *b, const char *want, const char *what)
{
	DamArray a;
	char err[256] = "";
	int r = read_image(b, "bad.npy", &a, err, sizeof err);
	ok(r == -1, "%s: fails", what);
	is_str(err, want, what);
	if (r == 0)
		dam_array_free(&a);
}

static void test_errors(void)
{
	Buf b;
	b.n = 0;
	static const char notnpy[] = "PK\x03\x04 this is not numpy";
	buf_put(&b, notnpy, sizeof notnpy - 1);
	expect_error(&b, "not a .npy file (bad magic)", "bad magic");

	npy_begin(&b, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }");
	for (int i = 0; i < 3; i++)
		buf_le(&b, bits_of_double(i), 8);
	expect_error(&b, "file is truncated: expected 32 bytes of data, found 24", "truncated data");

	npy_begin(&b, 1, "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }");
	expect_error(&b, "unsupported dtype '<c16'", "complex dtype");

	npy_begin(&b, 1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }");
	expect_error(&b, "object arrays are not supported (dtype '|O')", "object array");

	npy_begin(&b, 1, "{'descr': '<f8', 'fortran_order': False, }");
	expect_error(&b, "malformed .npy header: missing key 'shape'", "missing shape");

	npy_begin(&b, 1, "{'descr': '<f8', 'fortran_order': Maybe, 'shape': (1,), }");
	expect_error(&b, "malformed .npy header: expected True or False, found 'M'", "bad fortran_order");

	npy_begin(&b, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'extra': 1}");
	expect_error(&b, "malformed .npy header: unexpected key 'extra'", "unknown key");

	char err[256] = "";
	DamArray a;
	ok(dam_npy_read(tmp_path("does-not-exist.npy"), &a, err, sizeof err) == -1 &&
	   strcmp(err, "cannot open file: No such file or directory") == 0, "missing file: '%s'", err);
}

/* ---- .npz built by hand ------------------------------------------------ */

typedef struct Member {
	const char *name;
	const Buf *data;
	int deflate;
} Member;

/* Raw deflate (no zlib header) of src into dst; returns the size. */
static size_t raw_deflate(const Buf *src, unsigned char *dst, size_t cap)
{
	z_stream s;
	memset(&s, 0, sizeof s);
	if (deflateInit2(&s, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	s.next_in = (Bytef *)(uintptr_t)src->b;
	s.avail_in = (uInt)src->n;
	s.next_out = dst;
	s.avail_out = (uInt)cap;
	int rc = deflate(&s, Z_FINISH);
	size_t n = rc == Z_STREAM_END ? s.total_out : 0;
	deflateEnd(&s);
	return n;
}

/* A zip archive of the members, local headers first, then the central
 * directory and the end record. */
static void build_zip(const Member *m, int nm, Buf *zip)
{
	static Buf central;
	uint32_t offsets[8];
	zip->n = 0;
	central.n = 0;
	for (int i = 0; i < nm; i++) {
		unsigned char packed[4096];
		size_t usize = m[i].data->n;
		size_t csize = m[i].deflate ? raw_deflate(m[i].data, packed, sizeof packed) : usize;
		const unsigned char *body = m[i].deflate ? packed : m[i].data->b;
		uint32_t crc = (uint32_t)crc32(0L, m[i].data->b, (uInt)usize);
		size_t nlen = strlen(m[i].name);
		offsets[i] = (uint32_t)zip->n;
		for (int pass = 0; pass < 2; pass++) {
			Buf *o = pass ? &central : zip;
			buf_le(o, pass ? 0x02014b50u : 0x04034b50u, 4);
			if (pass)
				buf_le(o, 20, 2);                     /* version made by */
			buf_le(o, 20, 2);                             /* version needed */
			buf_le(o, 0, 2);                              /* flags */
			buf_le(o, m[i].deflate ? 8 : 0, 2);
			buf_le(o, 0, 4);                              /* time, date */
			buf_le(o, crc, 4);
			buf_le(o, csize, 4);
			buf_le(o, usize, 4);
			buf_le(o, nlen, 2);
			buf_le(o, 0, 2);                              /* extra */
			if (pass) {
				buf_le(o, 0, 2);                      /* comment */
				buf_le(o, 0, 2);                      /* disk */
				buf_le(o, 0, 2);                      /* internal attributes */
				buf_le(o, 0, 4);                      /* external attributes */
				buf_le(o, offsets[i], 4);
			}
			buf_put(o, m[i].name, nlen);
			if (!pass)
				buf_put(o, body, csize);
		}
	}
	uint32_t cd_off = (uint32_t)zip->n;
	buf_put(zip, central.b, central.n);
	buf_le(zip, 0x06054b50u, 4);
	buf_le(zip, 0, 4);
	buf_le(zip, (uint64_t)nm, 2);
	buf_le(zip, (uint64_t)nm, 2);
	buf_le(zip, central.n, 4);
	buf_le(zip, cd_off, 4);
	buf_le(zip, 0, 2);
}

static void test_npz(void)
{
	static Buf w, a1, b1, xi, zip;
	npy_begin(&w, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }");
	for (int i = 0; i < 4; i++)
		buf_le(&w, bits_of_double(i + 0.5), 8);
	npy_begin(&a1, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }");
	for (int i = 0; i < 3; i++)
		buf_le(&a1, bits_of_float((float)i * 0.25f), 4);
	npy_begin(&b1, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (), }");
	buf_le(&b1, (uint32_t)-42, 4);
	npy_begin(&xi, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (16, 16), }");
	for (int i = 0; i < 256; i++)
		buf_le(&xi, bits_of_double((double)(i % 17) / 8.0), 8);
	Member m[4] = {{"W_dec.npy", &w, 0}, {"a.npy", &a1, 0}, {"b.npy", &b1, 0}, {"xi.npy", &xi, 1}};
	build_zip(m, 4, &zip);
	const char *path = tmp_path("hand.npz");
	write_bytes(path, zip.b, zip.n);

	char err[256] = "";
	DamArray a;
	int r = dam_npz_read(path, "W_dec", &a, err, sizeof err);
	double ww[4] = {0.5, 1.5, 2.5, 3.5};
	ok(r == 0 && a.rank == 2 && same_values(&a, ww, 4), "npz: stored member 'W_dec' (%s)", err);
	if (r == 0)
		dam_array_free(&a);
	r = dam_npz_read(path, "b.npy", &a, err, sizeof err);
	ok(r == 0 && a.rank == 0 && a.data[0] == -42.0, "npz: stored scalar 'b' by its member name 'b.npy' (%s)", err);
	if (r == 0)
		dam_array_free(&a);
	r = dam_npz_read(path, "xi", &a, err, sizeof err);
	int good = r == 0 && a.count == 256 && a.shape[0] == 16 && a.shape[1] == 16;
	for (int i = 0; good && i < 256; i++)
		good = a.data[i] == (double)(i % 17) / 8.0;
	ok(good, "npz: deflated member 'xi' (%zu bytes packed into a %zu-byte archive) (%s)", xi.n, zip.n, err);
	if (r == 0)
		dam_array_free(&a);

	r = dam_npz_read(path, "q", &a, err, sizeof err);
	ok(r == -1, "npz: a missing key fails");
	is_str(err, "no array named 'q' (has: W_dec, a, b, xi)", "npz: missing key lists the members in order");

	char **names;
	int count;
	r = dam_npz_list(path, &names, &count, err, sizeof err);
	ok(r == 0 && count == 4 && strcmp(names[0], "W_dec") == 0 && strcmp(names[3], "xi") == 0,
	   "dam_npz_list gives the four names without '.npy'");
	for (int i = 0; r == 0 && i < count; i++)
		free(names[i]);
	if (r == 0)
		free(names);

	/* Flip one data byte of the stored 'a' member: its CRC no longer matches. */
	zip.b[30 + 9 + w.n + 30 + 5 + a1.n - 1] ^= 0x40;
	write_bytes(path, zip.b, zip.n);
	r = dam_npz_read(path, "a", &a, err, sizeof err);
	ok(r == -1, "npz: a corrupted member fails");
	is_str(err, "corrupt .npz: member 'a.npy' fails its CRC-32 check", "npz: CRC mismatch message");
}

/* ---- the published checkpoint ------------------------------------------ */

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

static void test_fixture(void)
{
	char root[512], path[768];
	repo_root(root, sizeof root);
	snprintf(path, sizeof path, "%s/../shared/data/published/analog-denseam-parity/model_best.npz", root);
	struct stat st;
	if (stat(path, &st) != 0) {
		skip(3, "published checkpoint model_best.npz not found");
		return;
	}
	char err[256] = "";
	DamArray a;
	int r = dam_npz_read(path, "xi_hopf_raw", &a, err, sizeof err);
	ok(r == 0 && a.rank == 2 && a.shape[0] == 16 && a.shape[1] == 16 && strcmp(a.dtype, "<f4") == 0,
	   "checkpoint: xi_hopf_raw is (16, 16) <f4 (%s)", err);
	if (r == 0)
		dam_array_free(&a);
	r = dam_npz_read(path, "a", &a, err, sizeof err);
	ok(r == 0 && a.rank == 1 && a.shape[0] == 16, "checkpoint: a is (16,) (%s)", err);
	if (r == 0)
		dam_array_free(&a);
	r = dam_npz_read(path, "W_dec", &a, err, sizeof err);
	ok(r == 0 && a.rank == 2 && a.shape[0] == 2 && a.shape[1] == 16, "checkpoint: W_dec is (2, 16) (%s)", err);
	if (r == 0)
		dam_array_free(&a);
}

static void cleanup(void)
{
	static const char *const files[] = {"rt0.npy", "rt1.npy", "rt2.npy", "rt3.npy", "f4.npy", "i8.npy",
	                                    "be.npy", "i2.npy", "b1.npy", "u1.npy", "u4.npy", "fortran.npy",
	                                    "bad.npy", "hand.npz"};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		remove(tmp_path(files[i]));
	rmdir(tmpdir);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/t_rt_npy.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! cannot create a temp directory\n");
		return 1;
	}
	plan(42);
	test_round_trip();
	test_f4();
	test_i8();
	test_be_f8();
	test_small_ints();
	test_fortran();
	test_errors();
	test_npz();
	test_fixture();
	cleanup();
	return done_testing();
}
