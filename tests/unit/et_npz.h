/* et_npz.h - random weights for examples/parity_et.dam at any size, as an .npz.
 *
 * et_npz_write() writes the seven arrays parity_et.dam loads
 * (xi_attn_embed_raw [V,D], xi_hopf_raw [M,D], a [D], b [L], c [M],
 * W_dec [2,D], b_dec [2]) as a stored (uncompressed) zip of little-endian
 * float64 .npy members, drawn from a fixed seed.  The raw coupling weights
 * are squared by the model, so their scale is chosen to keep the spectral
 * norm of the Hopfield block near 0.5 (a bounded energy at every size):
 * raw uniform in [-r, r] with r^2 = 1.5 / sqrt(M D).  Header-only, for the
 * tests and the benchmarks (t_jit_large.c, bench/et_scale_jit.c).
 */
#ifndef DAM_ET_NPZ_H
#define DAM_ET_NPZ_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static double et_urand(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(*s >> 11) / 9007199254740992.0;
}

static void et_le(FILE *f, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		fputc((int)((v >> (8 * i)) & 0xff), f);
}

typedef struct EtMember {
	char name[32];
	unsigned char *b;          /* the .npy bytes */
	size_t n;
} EtMember;

/* The .npy bytes of a float64 array of rank 1 or 2 (d1 = 0: rank 1). */
static void et_npy(EtMember *m, const char *name, int64_t d0, int64_t d1, const double *v)
{
	char hdr[128];
	int64_t count = d1 ? d0 * d1 : d0;
	int h = d1 ? snprintf(hdr, sizeof hdr, "{'descr': '<f8', 'fortran_order': False, 'shape': (%lld, %lld), }",
	                      (long long)d0, (long long)d1)
	           : snprintf(hdr, sizeof hdr, "{'descr': '<f8', 'fortran_order': False, 'shape': (%lld,), }",
	                      (long long)d0);
	int total = 10 + h + 1, pad = (64 - total % 64) % 64;
	size_t hl = (size_t)(h + pad + 1);
	snprintf(m->name, sizeof m->name, "%s.npy", name);
	m->n = 10 + hl + (size_t)count * 8;
	m->b = malloc(m->n);
	memcpy(m->b, "\x93NUMPY\x01\x00", 8);
	m->b[8] = (unsigned char)(hl & 0xff);
	m->b[9] = (unsigned char)(hl >> 8);
	memcpy(m->b + 10, hdr, (size_t)h);
	memset(m->b + 10 + h, ' ', (size_t)pad);
	m->b[10 + hl - 1] = '\n';
	memcpy(m->b + 10 + hl, v, (size_t)count * 8);   /* little-endian host */
}

static int et_zip(const char *path, EtMember *m, int nm)
{
	FILE *f = fopen(path, "wb");
	uint32_t off[8], crc[8], pos = 0;
	if (!f)
		return -1;
	for (int pass = 0; pass < 2; pass++) {
		uint32_t cd = pos;
		for (int i = 0; i < nm; i++) {
			size_t nl = strlen(m[i].name);
			if (!pass) {
				off[i] = pos;
				crc[i] = (uint32_t)crc32(0L, m[i].b, (uInt)m[i].n);
			}
			et_le(f, pass ? 0x02014b50u : 0x04034b50u, 4);
			if (pass)
				et_le(f, 20, 2);
			et_le(f, 20, 2);
			et_le(f, 0, 2);
			et_le(f, 0, 2);
			et_le(f, 0, 4);
			et_le(f, crc[i], 4);
			et_le(f, m[i].n, 4);
			et_le(f, m[i].n, 4);
			et_le(f, nl, 2);
			et_le(f, 0, 2);
			if (pass) {
				et_le(f, 0, 2);
				et_le(f, 0, 2);
				et_le(f, 0, 2);
				et_le(f, 0, 4);
				et_le(f, off[i], 4);
			}
			fwrite(m[i].name, 1, nl, f);
			pos += (uint32_t)((pass ? 46 : 30) + nl);
			if (!pass) {
				fwrite(m[i].b, 1, m[i].n, f);
				pos += (uint32_t)m[i].n;
			}
		}
		if (pass) {
			et_le(f, 0x06054b50u, 4);
			et_le(f, 0, 4);
			et_le(f, (uint64_t)nm, 2);
			et_le(f, (uint64_t)nm, 2);
			et_le(f, pos - cd, 4);
			et_le(f, cd, 4);
			et_le(f, 0, 2);
		}
	}
	return fclose(f) == 0 ? 0 : -1;
}

static double *et_fill(size_t n, double lo, double hi, uint64_t *seed)
{
	double *v = malloc((n ? n : 1) * sizeof *v);
	for (size_t i = 0; i < n; i++)
		v[i] = lo + (hi - lo) * et_urand(seed);
	return v;
}

/* Writes the weights of parity_et.dam at D, M, L (V = 2) to path; 0 on success. */
static int et_npz_write(const char *path, int64_t D, int64_t M, int64_t L, uint64_t seed)
{
	const int64_t V = 2;
	double r = sqrt(1.5 / sqrt((double)M * (double)D));
	double *v[7] = {
		et_fill((size_t)(V * D), -r, r, &seed), et_fill((size_t)(M * D), -r, r, &seed),
		et_fill((size_t)D, -0.5, 0.5, &seed), et_fill((size_t)L, -0.5, 0.5, &seed),
		et_fill((size_t)M, -0.5, 0.5, &seed), et_fill((size_t)(2 * D), -1, 1, &seed),
		et_fill(2, -1, 1, &seed),
	};
	EtMember m[7];
	et_npy(&m[0], "xi_attn_embed_raw", V, D, v[0]);
	et_npy(&m[1], "xi_hopf_raw", M, D, v[1]);
	et_npy(&m[2], "a", D, 0, v[2]);
	et_npy(&m[3], "b", L, 0, v[3]);
	et_npy(&m[4], "c", M, 0, v[4]);
	et_npy(&m[5], "W_dec", 2, D, v[5]);
	et_npy(&m[6], "b_dec", 2, 0, v[6]);
	int rc = et_zip(path, m, 7);
	for (int i = 0; i < 7; i++) {
		free(m[i].b);
		free(v[i]);
	}
	return rc;
}

#endif
