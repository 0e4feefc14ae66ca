/* npy.c - NumPy .npy and .npz tensor files for the libdam runtime (dam_npy.h).
 *
 * Reading maps the file (mmap, read-only; a file that cannot be mapped is
 * read into memory instead), so a stored .npz member is parsed in place and
 * only the pages of the members asked for are touched; it checks the "\x93NUMPY" magic and version
 * (1.0 with a 2-byte header length, 2.0 and 3.0 with a 4-byte one), parses
 * the header dict strictly ('descr', 'fortran_order' and 'shape', each once,
 * nothing else), and converts the data to double in C order (Fortran-order
 * arrays are transposed).  Supported dtypes are little- and big-endian
 * f4/f8, signed and unsigned integers of 1-8 bytes, and bools (as 0/1).
 * An .npz is a zip archive: the end-of-central-directory record leads to the
 * central directory, whose entries give each member's method, sizes, CRC-32
 * and local header; members are stored or raw-deflated (zlib), and their
 * CRC is checked.  Writing produces a little-endian float64 v1.0 file whose
 * data starts at a multiple of 64 bytes, through a temp file and rename().
 * Every error is one line without the file name: the caller adds it.
 */
#include "dam_npy.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static int npy_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int npy_fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* A whole file's bytes: mapped read-only, or (when it cannot be mapped: an
 * empty file, a pipe) read into a malloc'd buffer.  npy_unmap releases it. */
typedef struct NpyFile {
	unsigned char *buf;
	size_t len;
	bool mapped;
} NpyFile;

static int npy_map(const char *path, NpyFile *f, char *err, size_t errlen)
{
	memset(f, 0, sizeof *f);
	FILE *fp = fopen(path, "rb");
	struct stat st;
	if (!fp)
		return npy_fail(err, errlen, "cannot open file: %s", strerror(errno));
	if (fstat(fileno(fp), &st) != 0 || st.st_size < 0) {
		fclose(fp);
		return npy_fail(err, errlen, "cannot read file: %s", strerror(errno));
	}
	size_t n = (size_t)st.st_size;
	if (n && S_ISREG(st.st_mode)) {
		void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fileno(fp), 0);
		if (p != MAP_FAILED) {
			fclose(fp);
			f->buf = p;
			f->len = n;
			f->mapped = true;
			return 0;
		}
	}
	f->buf = malloc(n ? n : 1);
	if (!f->buf) {
		fclose(fp);
		return npy_fail(err, errlen, "out of memory reading %zu bytes", n);
	}
	size_t got = fread(f->buf, 1, n, fp);
	fclose(fp);
	if (got != n) {
		free(f->buf);
		f->buf = NULL;
		return npy_fail(err, errlen, "cannot read file: short read");
	}
	f->len = n;
	return 0;
}

static void npy_unmap(NpyFile *f)
{
	if (f->mapped)
		munmap(f->buf, f->len);
	else
		free(f->buf);
	memset(f, 0, sizeof *f);
}

static uint64_t npy_load_le(const unsigned char *p, int size)
{
	uint64_t v = 0;
	for (int i = size - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t npy_load_be(const unsigned char *p, int size)
{
	uint64_t v = 0;
	for (int i = 0; i < size; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- dtypes ------------------------------------------------------------ */

typedef struct NpyType {
	char kind;      /* 'f', 'i', 'u', 'b' */
	int size;       /* bytes */
	int big;        /* big-endian */
} NpyType;

static int npy_type_parse(const char *descr, NpyType *t, char *err, size_t errlen)
{
	char order = descr[0], kind = descr[0] ? descr[1] : 0;
	char *end = NULL;
	long size = kind ? strtol(descr + 2, &end, 10) : 0;
	if (kind == 'O')
		return npy_fail(err, errlen, "object arrays are not supported (dtype '%s')", descr);
	int known = end && *end == 0 && end != descr + 2 &&
	            ((kind == 'f' && (size == 4 || size == 8)) ||
	             ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
	             (kind == 'b' && size == 1));
	int order_ok = order == '<' || order == '>' || (order == '|' && size == 1);
	if (!known || !order_ok)
		return npy_fail(err, errlen, "unsupported dtype '%s'", descr);
	t->kind = kind;
	t->size = (int)size;
	t->big = order == '>';
	return 0;
}

static double npy_convert(const NpyType *t, const unsigned char *p)
{
	uint64_t u = t->big ? npy_load_be(p, t->size) : npy_load_le(p, t->size);
	int bits = 8 * t->size;
	switch (t->kind) {
	case 'f':
		if (t->size == 4) {
			uint32_t u32 = (uint32_t)u;
			float f;
			memcpy(&f, &u32, sizeof f);
			return (double)f;
		} else {
			double d;
			memcpy(&d, &u, sizeof d);
			return d;
		}
	case 'i':
		if (bits == 64) {
			int64_t s;
			memcpy(&s, &u, sizeof s);
			return (double)s;
		}
		/* Two's complement of a narrower integer: exact in a double. */
		return u >> (bits - 1) ? (double)u - ldexp(1.0, bits) : (double)u;
	case 'b':
		return u != 0 ? 1.0 : 0.0;
	default:
		return (double)u;
	}
}

/* ---- header dict ------------------------------------------------------- */

typedef struct NpyHdr {
	const char *p, *end;
	char descr[16];
	int fortran;
	int rank;
	int64_t shape[DAM_NPY_MAX_RANK];
	char *err;
	size_t errlen;
} NpyHdr;

static void hdr_space(NpyHdr *h)
{
	while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
		h->p++;
}

static int hdr_expected(NpyHdr *h, const char *what)
{
	if (h->p >= h->end)
		return npy_fail(h->err, h->errlen, "malformed .npy header: expected %s, found the end", what);
	return npy_fail(h->err, h->errlen, "malformed .npy header: expected %s, found '%c'", what, *h->p);
}

static int hdr_char(NpyHdr *h, char c, const char *what)
{
	hdr_space(h);
	if (h->p < h->end && *h->p == c) {
		h->p++;
		return 0;
	}
	return hdr_expected(h, what);
}

/* A quoted string (single or double quotes, no escapes) into buf. */
static int hdr_string(NpyHdr *h, char *buf, size_t size, const char *what)
{
	hdr_space(h);
	if (h->p >= h->end || (*h->p != '\'' && *h->p != '"'))
		return hdr_expected(h, what);
	char q = *h->p++;
	const char *s = h->p;
	while (h->p < h->end && *h->p != q)
		h->p++;
	if (h->p >= h->end)
		return npy_fail(h->err, h->errlen, "malformed .npy header: unterminated string");
	size_t n = (size_t)(h->p - s);
	h->p++;
	if (n >= size)
		return npy_fail(h->err, h->errlen, "malformed .npy header: %s '%.*s' is too long", what, (int)n, s);
	memcpy(buf, s, n);
	buf[n] = 0;
	return 0;
}

static int hdr_word(NpyHdr *h, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(h->end - h->p) >= n && memcmp(h->p, w, n) == 0) {
		h->p += n;
		return 1;
	}
	return 0;
}

static int hdr_descr(NpyHdr *h)
{
	hdr_space(h);
	if (h->p < h->end && *h->p == '[')
		return npy_fail(h->err, h->errlen, "structured dtypes are not supported");
	return hdr_string(h, h->descr, sizeof h->descr, "a dtype string");
}

static int hdr_fortran(NpyHdr *h)
{
	hdr_space(h);
	if (hdr_word(h, "False"))
		h->fortran = 0;
	else if (hdr_word(h, "True"))
		h->fortran = 1;
	else
		return hdr_expected(h, "True or False");
	return 0;
}

static int hdr_dim(NpyHdr *h)
{
	if (h->rank >= DAM_NPY_MAX_RANK)
		return npy_fail(h->err, h->errlen, "array rank exceeds the supported maximum of %d", DAM_NPY_MAX_RANK);
	hdr_space(h);
	int64_t v = 0;
	const char *s = h->p;
	while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
		if (v > (INT64_MAX - 9) / 10)
			return npy_fail(h->err, h->errlen, "malformed .npy header: dimension too large");
		v = v * 10 + (*h->p++ - '0');
	}
	if (h->p == s)
		return hdr_expected(h, "a dimension");
	if (h->p < h->end && *h->p == 'L')
		h->p++;
	h->shape[h->rank++] = v;
	return 0;
}

/* (), (n,), (a, b) and (a, b,). */
static int hdr_shape(NpyHdr *h)
{
	if (hdr_char(h, '(', "'(' to open the shape"))
		return -1;
	hdr_space(h);
	h->rank = 0;
	while (h->p < h->end && *h->p != ')') {
		if (hdr_dim(h))
			return -1;
		hdr_space(h);
		if (h->p < h->end && *h->p == ',') {
			h->p++;
			hdr_space(h);
		} else if (h->p < h->end && *h->p != ')') {
			return hdr_expected(h, "',' or ')' in the shape");
		}
	}
	return hdr_char(h, ')', "')' to close the shape");
}

static int hdr_entry(NpyHdr *h, unsigned *seen)
{
	char key[32];
	if (hdr_string(h, key, sizeof key, "a key") || hdr_char(h, ':', "':' after the key"))
		return -1;
	static const char *const keys[3] = {"descr", "fortran_order", "shape"};
	for (unsigned k = 0; k < 3; k++) {
		if (strcmp(key, keys[k]) != 0)
			continue;
		if (*seen & 1u << k)
			return npy_fail(h->err, h->errlen, "malformed .npy header: key '%s' appears twice", key);
		*seen |= 1u << k;
		return k == 0 ? hdr_descr(h) : k == 1 ? hdr_fortran(h) : hdr_shape(h);
	}
	return npy_fail(h->err, h->errlen, "malformed .npy header: unexpected key '%s'", key);
}

static int hdr_parse(NpyHdr *h)
{
	unsigned seen = 0;
	if (hdr_char(h, '{', "'{'"))
		return -1;
	hdr_space(h);
	while (h->p < h->end && *h->p != '}') {
		if (hdr_entry(h, &seen))
			return -1;
		hdr_space(h);
		if (h->p < h->end && *h->p == ',')
			h->p++;
		else if (h->p < h->end && *h->p != '}')
			return hdr_expected(h, "',' or '}'");
		hdr_space(h);
	}
	if (hdr_char(h, '}', "'}'"))
		return -1;
	hdr_space(h);
	if (h->p != h->end)
		return hdr_expected(h, "the end of the header");
	if (seen != 7)
		return npy_fail(h->err, h->errlen, "malformed .npy header: missing key '%s'",
		                !(seen & 1) ? "descr" : !(seen & 2) ? "fortran_order" : "shape");
	return 0;
}

/* ---- .npy from a buffer ------------------------------------------------ */

/* The header: magic, version, dict.  *data_off receives the data offset. */
static int npy_header(const unsigned char *buf, size_t len, NpyHdr *h, size_t *data_off)
{
	if (len < 8 || memcmp(buf, "\x93NUMPY", 6) != 0)
		return npy_fail(h->err, h->errlen, "not a .npy file (bad magic)");
	int major = buf[6], minor = buf[7];
	size_t lenbytes = major == 1 ? 2 : (major == 2 || major == 3) ? 4 : 0;
	if (!lenbytes || minor != 0)
		return npy_fail(h->err, h->errlen, "unsupported .npy format version %d.%d", major, minor);
	if (len < 8 + lenbytes)
		return npy_fail(h->err, h->errlen, "file is truncated: the header is incomplete");
	size_t hlen = (size_t)npy_load_le(buf + 8, (int)lenbytes);
	size_t start = 8 + lenbytes;
	if (hlen > len - start)
		return npy_fail(h->err, h->errlen, "file is truncated: the header is incomplete");
	h->p = (const char *)buf + start;
	h->end = h->p + hlen;
	*data_off = start + hlen;
	return hdr_parse(h);
}

static int npy_count(const NpyHdr *h, size_t itemsize, size_t *count, char *err, size_t errlen)
{
	size_t c = 1;
	for (int k = 0; k < h->rank; k++) {
		uint64_t d = (uint64_t)h->shape[k];
		if (d && c > SIZE_MAX / itemsize / d)
			return npy_fail(err, errlen, "array is too large");
		c *= (size_t)d;
	}
	*count = c;
	return 0;
}

/* Element j of the C-order result comes from this Fortran-order offset. */
static size_t npy_fortran_offset(const NpyHdr *h, size_t j)
{
	size_t off = 0, stride = 1;
	size_t idx[DAM_NPY_MAX_RANK];
	for (int k = h->rank - 1; k >= 0; k--) {
		size_t d = (size_t)h->shape[k];
		idx[k] = j % d;
		j /= d;
	}
	for (int k = 0; k < h->rank; k++) {
		off += idx[k] * stride;
		stride *= (size_t)h->shape[k];
	}
	return off;
}

static int npy_parse(const unsigned char *buf, size_t len, DamArray *out, char *err, size_t errlen)
{
	NpyHdr h = {.err = err, .errlen = errlen};
	NpyType t = {0};
	size_t off = 0, count = 0;
	memset(out, 0, sizeof *out);
	if (npy_header(buf, len, &h, &off) || npy_type_parse(h.descr, &t, err, errlen) ||
	    npy_count(&h, (size_t)t.size, &count, err, errlen))
		return -1;
	size_t need = count * (size_t)t.size, have = len - off;
	if (have < need)
		return npy_fail(err, errlen, "file is truncated: expected %zu bytes of data, found %zu", need, have);
	out->data = malloc((count ? count : 1) * sizeof(double));
	if (!out->data)
		return npy_fail(err, errlen, "out of memory for %zu values", count);
	const unsigned char *d = buf + off;
	for (size_t j = 0; j < count; j++) {
		size_t src = h.fortran ? npy_fortran_offset(&h, j) : j;
		out->data[j] = npy_convert(&t, d + src * (size_t)t.size);
	}
	out->rank = h.rank;
	memcpy(out->shape, h.shape, sizeof h.shape);
	out->count = count;
	snprintf(out->dtype, sizeof out->dtype, "%s", h.descr);
	return 0;
}

int dam_npy_read(const char *path, DamArray *out, char *err, size_t errlen)
{
	NpyFile f;
	memset(out, 0, sizeof *out);
	if (npy_map(path, &f, err, errlen))
		return -1;
	int rc = npy_parse(f.buf, f.len, out, err, errlen);
	npy_unmap(&f);
	return rc;
}

void dam_array_free(DamArray *a)
{
	free(a->data);
	a->data = NULL;
	a->count = 0;
}

/* ---- .npz (zip) -------------------------------------------------------- */

typedef struct ZipEntry {
	char name[256];
	unsigned method, flags;
	uint32_t crc, csize, usize, local_off;
} ZipEntry;

typedef struct Zip {
	const unsigned char *buf;
	size_t len;
	ZipEntry *ent;
	int count;
} Zip;

static uint32_t zip_u32(const unsigned char *p) { return (uint32_t)npy_load_le(p, 4); }
static unsigned zip_u16(const unsigned char *p) { return (unsigned)npy_load_le(p, 2); }

/* The end-of-central-directory record: search backwards over the comment. */
static int zip_find_eocd(const Zip *z, size_t *pos, char *err, size_t errlen)
{
	if (z->len < 22)
		return npy_fail(err, errlen, "not an .npz file (too short for a zip archive)");
	size_t lo = z->len - 22 > 65535 ? z->len - 22 - 65535 : 0;
	for (size_t p = z->len - 22 + 1; p-- > lo;) {
		if (zip_u32(z->buf + p) == 0x06054b50u && p + 22 + zip_u16(z->buf + p + 20) == z->len) {
			*pos = p;
			return 0;
		}
	}
	return npy_fail(err, errlen, "not an .npz file (no zip end-of-central-directory record)");
}

static int zip_entry(const Zip *z, size_t *p, ZipEntry *e, char *err, size_t errlen)
{
	const unsigned char *c = z->buf + *p;
	if (*p + 46 > z->len || zip_u32(c) != 0x02014b50u)
		return npy_fail(err, errlen, "corrupt .npz: bad central directory entry");
	unsigned nlen = zip_u16(c + 28), xlen = zip_u16(c + 30), clen = zip_u16(c + 32);
	if (*p + 46 + nlen + xlen + clen > z->len)
		return npy_fail(err, errlen, "corrupt .npz: central directory entry runs past the end");
	e->flags = zip_u16(c + 8);
	e->method = zip_u16(c + 10);
	e->crc = zip_u32(c + 16);
	e->csize = zip_u32(c + 20);
	e->usize = zip_u32(c + 24);
	e->local_off = zip_u32(c + 42);
	if (e->csize == 0xffffffffu || e->usize == 0xffffffffu || e->local_off == 0xffffffffu)
		return npy_fail(err, errlen, "ZIP64 archives are not supported");
	if (nlen >= sizeof e->name)
		return npy_fail(err, errlen, "corrupt .npz: member name too long");
	memcpy(e->name, c + 46, nlen);
	e->name[nlen] = 0;
	*p += 46 + nlen + xlen + clen;
	return 0;
}

static int zip_open(Zip *z, char *err, size_t errlen)
{
	size_t eocd = 0;
	if (zip_find_eocd(z, &eocd, err, errlen))
		return -1;
	const unsigned char *r = z->buf + eocd;
	unsigned total = zip_u16(r + 10);
	uint32_t cd_off = zip_u32(r + 16);
	if (total == 0xffffu || cd_off == 0xffffffffu || zip_u32(r + 12) == 0xffffffffu ||
	    (eocd >= 20 && zip_u32(z->buf + eocd - 20) == 0x07064b50u))
		return npy_fail(err, errlen, "ZIP64 archives are not supported");
	if (zip_u16(r + 4) != 0 || zip_u16(r + 6) != 0 || zip_u16(r + 8) != total)
		return npy_fail(err, errlen, "multi-disk zip archives are not supported");
	z->ent = calloc(total ? total : 1, sizeof *z->ent);
	if (!z->ent)
		return npy_fail(err, errlen, "out of memory");
	size_t p = cd_off;
	for (z->count = 0; z->count < (int)total; z->count++)
		if (zip_entry(z, &p, &z->ent[z->count], err, errlen))
			return -1;
	return 0;
}

/* The member's name as a key: without a trailing ".npy". */
static size_t zip_key_len(const char *name)
{
	size_t n = strlen(name);
	return n >= 4 && strcmp(name + n - 4, ".npy") == 0 ? n - 4 : n;
}

static int zip_find(const Zip *z, const char *key)
{
	size_t klen = strlen(key);
	for (int i = 0; i < z->count; i++) {
		const char *name = z->ent[i].name;
		if (strcmp(name, key) == 0 || (zip_key_len(name) == klen && strncmp(name, key, klen) == 0))
			return i;
	}
	return -1;
}

static int zip_missing(const Zip *z, const char *key, char *err, size_t errlen)
{
	size_t cap = 64;
	for (int i = 0; i < z->count; i++)
		cap += strlen(z->ent[i].name) + 2;
	char *list = malloc(cap);
	if (!list)
		return npy_fail(err, errlen, "no array named '%s'", key);
	size_t at = 0;
	for (int i = 0; i < z->count; i++) {
		size_t n = zip_key_len(z->ent[i].name);
		at += (size_t)snprintf(list + at, cap - at, "%s%.*s", i ? ", " : "", (int)n, z->ent[i].name);
	}
	list[at] = 0;
	npy_fail(err, errlen, "no array named '%s' (has: %s)", key, z->count ? list : "nothing");
	free(list);
	return -1;
}

static int zip_inflate(const unsigned char *src, size_t slen, unsigned char *dst, size_t dlen)
{
	z_stream s;
	memset(&s, 0, sizeof s);
	if (inflateInit2(&s, -15) != Z_OK)
		return -1;
	s.next_in = (Bytef *)(uintptr_t)src;   /* zlib does not write through next_in */
	s.avail_in = (uInt)slen;
	s.next_out = dst;
	s.avail_out = (uInt)dlen;
	int rc = inflate(&s, Z_FINISH);
	int good = rc == Z_STREAM_END && s.total_out == dlen;
	inflateEnd(&s);
	return good ? 0 : -1;
}

/* The member's uncompressed bytes: *out points into the archive for a
 * stored member (*owned NULL), at a malloc'd buffer (*owned) for a deflated
 * one. */
static int zip_extract(const Zip *z, const ZipEntry *e, const unsigned char **out, unsigned char **owned,
                       char *err, size_t errlen)
{
	*out = *owned = NULL;
	size_t lo = e->local_off;
	if (lo + 30 > z->len || zip_u32(z->buf + lo) != 0x04034b50u)
		return npy_fail(err, errlen, "corrupt .npz: bad local header for member '%s'", e->name);
	size_t data = lo + 30 + zip_u16(z->buf + lo + 26) + zip_u16(z->buf + lo + 28);
	if (data > z->len || e->csize > z->len - data)
		return npy_fail(err, errlen, "corrupt .npz: member '%s' runs past the end of the file", e->name);
	if (e->flags & 1u)
		return npy_fail(err, errlen, "member '%s' is encrypted", e->name);
	if (e->method != 0 && e->method != 8)
		return npy_fail(err, errlen, "member '%s' uses unsupported compression method %u", e->name, e->method);
	if (e->method == 0 && e->csize != e->usize)
		return npy_fail(err, errlen, "corrupt .npz: stored member '%s' has mismatched sizes", e->name);
	/* Deflate expands at most 1032:1 (a 258-byte match per 2 bits, RFC 1951),
	 * so a declared size beyond that is a lie: refuse it before allocating. */
	if (e->method == 8 && (uint64_t)e->usize > (uint64_t)e->csize * 1032u + 64u)
		return npy_fail(err, errlen, "corrupt .npz: member '%s' declares %u bytes from %u "
		                "compressed (more than deflate can expand)", e->name, e->usize, e->csize);
	int bad = 0;
	if (e->method == 0) {
		*out = z->buf + data;
	} else {
		*out = *owned = malloc(e->usize ? e->usize : 1);
		if (!*owned)
			return npy_fail(err, errlen, "out of memory");
		bad = zip_inflate(z->buf + data, e->csize, *owned, e->usize);
	}
	if (!bad && crc32(0L, *out, (uInt)e->usize) != e->crc)
		bad = 2;
	if (bad) {
		free(*owned);
		*out = *owned = NULL;
		return npy_fail(err, errlen, "corrupt .npz: member '%s' %s", e->name,
		                bad == 2 ? "fails its CRC-32 check" : "does not inflate");
	}
	return 0;
}

static int zip_load(const char *path, Zip *z, NpyFile *f, char *err, size_t errlen)
{
	memset(z, 0, sizeof *z);
	if (npy_map(path, f, err, errlen))
		return -1;
	z->buf = f->buf;
	z->len = f->len;
	if (zip_open(z, err, errlen)) {
		free(z->ent);
		npy_unmap(f);
		return -1;
	}
	return 0;
}

int dam_npz_read(const char *path, const char *key, DamArray *out, char *err, size_t errlen)
{
	Zip z;
	NpyFile f;
	const unsigned char *member = NULL;
	unsigned char *owned = NULL;
	memset(out, 0, sizeof *out);
	if (zip_load(path, &z, &f, err, errlen))
		return -1;
	int i = zip_find(&z, key);
	int rc = i < 0 ? zip_missing(&z, key, err, errlen) : zip_extract(&z, &z.ent[i], &member, &owned, err, errlen);
	if (rc == 0) {
		rc = npy_parse(member, z.ent[i].usize, out, err, errlen);
		if (rc) {
			/* Say which member was bad. */
			char inner[256];
			snprintf(inner, sizeof inner, "%s", err ? err : "");
			npy_fail(err, errlen, "member '%s': %s", z.ent[i].name, inner);
		}
	}
	free(owned);
	free(z.ent);
	npy_unmap(&f);
	return rc;
}

int dam_npz_list(const char *path, char ***names, int *count, char *err, size_t errlen)
{
	Zip z;
	NpyFile f;
	*names = NULL;
	*count = 0;
	if (zip_load(path, &z, &f, err, errlen))
		return -1;
	char **v = calloc((size_t)(z.count ? z.count : 1), sizeof *v);
	int rc = v ? 0 : npy_fail(err, errlen, "out of memory");
	for (int i = 0; rc == 0 && i < z.count; i++) {
		size_t n = zip_key_len(z.ent[i].name);
		v[i] = malloc(n + 1);
		if (!v[i]) {
			rc = npy_fail(err, errlen, "out of memory");
			break;
		}
		memcpy(v[i], z.ent[i].name, n);
		v[i][n] = 0;
	}
	if (rc == 0) {
		*names = v;
		*count = z.count;
	} else if (v) {
		for (int i = 0; i < z.count; i++)
			free(v[i]);
		free(v);
	}
	free(z.ent);
	npy_unmap(&f);
	return rc;
}

/* ---- writing ------------------------------------------------------------ */

/* The v1.0 header, padded with spaces so the data starts at a multiple of 64. */
static size_t npy_write_header(char *h, size_t cap, int rank, const int64_t *shape)
{
	char dims[DAM_NPY_MAX_RANK * 24 + 4];
	size_t at = 0;
	for (int k = 0; k < rank; k++)
		at += (size_t)snprintf(dims + at, sizeof dims - at, "%s%lld", k ? ", " : "", (long long)shape[k]);
	dims[at] = 0;
	int n = snprintf(h + 10, cap - 10, "{'descr': '<f8', 'fortran_order': False, 'shape': (%s%s), }", dims,
	                 rank == 1 ? "," : "");
	size_t total = 10 + (size_t)n + 1;
	size_t padded = (total + 63) / 64 * 64;
	memset(h + 10 + n, ' ', padded - total);
	h[padded - 1] = '\n';
	memcpy(h, "\x93NUMPY\x01\x00", 8);
	size_t hlen = padded - 10;
	h[8] = (char)(hlen & 0xff);
	h[9] = (char)(hlen >> 8);
	return padded;
}

static int npy_write_body(FILE *f, size_t count, const double *data)
{
	unsigned char le[8];
	for (size_t j = 0; j < count; j++) {
		uint64_t u;
		memcpy(&u, &data[j], sizeof u);
		for (int b = 0; b < 8; b++)
			le[b] = (unsigned char)(u >> (8 * b));
		if (fwrite(le, 1, 8, f) != 8)
			return -1;
	}
	return 0;
}

int dam_npy_write(const char *path, int rank, const int64_t *shape, const double *data, char *err,
                  size_t errlen)
{
	if (rank < 0 || rank > DAM_NPY_MAX_RANK)
		return npy_fail(err, errlen, "cannot write an array of rank %d (maximum %d)", rank, DAM_NPY_MAX_RANK);
	size_t count = 1;
	for (int k = 0; k < rank; k++) {
		if (shape[k] < 0)
			return npy_fail(err, errlen, "cannot write an array with negative dimension %lld",
			                (long long)shape[k]);
		count *= (size_t)shape[k];
	}
	char header[DAM_NPY_MAX_RANK * 24 + 192];
	size_t hlen = npy_write_header(header, sizeof header, rank, shape);
	size_t plen = strlen(path) + 32;
	char *tmp = malloc(plen);
	if (!tmp)
		return npy_fail(err, errlen, "out of memory");
	snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "wb");
	if (!f) {
		npy_fail(err, errlen, "cannot create file: %s", strerror(errno));
		free(tmp);
		return -1;
	}
	int bad = fwrite(header, 1, hlen, f) != hlen || npy_write_body(f, count, data) != 0;
	bad |= fclose(f) != 0;
	if (bad || rename(tmp, path) != 0) {
		npy_fail(err, errlen, "cannot write file: %s", strerror(errno));
		remove(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}
