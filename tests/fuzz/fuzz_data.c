/* fuzz_data.c - libFuzzer harness: the runtime's data readers.
 *
 * The first input byte selects the reader, the rest is the file's bytes:
 *   byte % 4 == 0  dam_dataset_read (expected columns: (byte >> 2) % 8, 0 = first row's)
 *   byte % 4 == 1  dam_dataset_parse_row on the rest as one NUL-terminated row
 *   byte % 4 == 2  dam_npy_read
 *   byte % 4 == 3  dam_npz_list, then dam_npz_read of every member (at most
 *                  8) and of a member that is not there
 * The readers take a path, so the bytes are written to one temporary file
 * per process (created once under $TMPDIR, rewritten for every input,
 * removed at exit).  Everything is freed per input, so LeakSanitizer sees
 * any leak.  Built by `scripts/build.sh --fuzz` (build-fuzz/fuzz/fuzz_data).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dam_dataset.h"
#include "dam_npy.h"

#define FUZZ_MAX_LEN 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_path[4096];

static void fuzz_cleanup(void)
{
	if (fuzz_path[0])
		unlink(fuzz_path);
}

/* The per-process temporary file, created on first use. */
static const char *fuzz_tmp(void)
{
	if (fuzz_path[0])
		return fuzz_path;
	const char *dir = getenv("TMPDIR");
	snprintf(fuzz_path, sizeof fuzz_path, "%s/dam_fuzz_data.XXXXXX", dir && *dir ? dir : "/tmp");
	int fd = mkstemp(fuzz_path);
	if (fd < 0) {
		perror("fuzz_data: mkstemp");
		abort();
	}
	close(fd);
	atexit(fuzz_cleanup);
	return fuzz_path;
}

static const char *fuzz_write(const uint8_t *data, size_t size)
{
	const char *path = fuzz_tmp();
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
		perror("fuzz_data: writing the temporary file");
		abort();
	}
	return path;
}

static void fuzz_dataset(const char *path, size_t cols)
{
	DamDataset ds;
	DamDatasetError e;
	if (dam_dataset_read(path, cols, &ds, &e) == 0)
		dam_dataset_free(&ds);
}

static void fuzz_row(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	DamDataset ds;
	DamDatasetError e;
	if (dam_dataset_parse_row(text, 0, &ds, &e) == 0)
		dam_dataset_free(&ds);
	free(text);
}

static void fuzz_npy(const char *path)
{
	DamArray a;
	char err[256];
	if (dam_npy_read(path, &a, err, sizeof err) == 0)
		dam_array_free(&a);
}

static void fuzz_npz(const char *path)
{
	char **names = NULL;
	int count = 0;
	char err[256];
	DamArray a;
	if (dam_npz_list(path, &names, &count, err, sizeof err) == 0) {
		for (int i = 0; i < count; i++) {
			if (i < 8 && dam_npz_read(path, names[i], &a, err, sizeof err) == 0)
				dam_array_free(&a);
			free(names[i]);
		}
		free(names);
	}
	if (dam_npz_read(path, "no_such_member", &a, err, sizeof err) == 0)
		dam_array_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > FUZZ_MAX_LEN)
		return -1;
	unsigned sel = data[0];
	data++;
	size--;
	if (sel % 4 == 1) {
		fuzz_row(data, size);
		return 0;
	}
	const char *path = fuzz_write(data, size);
	if (sel % 4 == 0)
		fuzz_dataset(path, (sel >> 2) % 8);
	else if (sel % 4 == 2)
		fuzz_npy(path);
	else
		fuzz_npz(path);
	return 0;
}
