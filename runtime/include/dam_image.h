/* dam_image.h - crossbar programming images (docs/image-format.md): read,
 * validate, dequantise; and the container writer the image backend uses.
 *
 * dam_image_read() checks every byte before it returns an image: magic,
 * version, header and section CRC-32s, the canonical section layout, zero
 * padding, every inner count against its section's length, level values
 * below 2^bits.  Errors name the section and the file offset.
 */
#ifndef DAM_IMAGE_H
#define DAM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define DAM_IMG_VERSION 2
enum { DAM_IMG_DEVICE = 1, DAM_IMG_LAYERS, DAM_IMG_TILES, DAM_IMG_DYNAMIC, DAM_IMG_NAMES,
       DAM_IMG_NSECTIONS = 5 };
enum { DAM_ENC_DIFFERENTIAL = 1, DAM_ENC_OFFSET = 2 };
/* How weights map to conductances: one g0 for the chip, or a gain per tile. */
enum { DAM_SCALE_GLOBAL = 1, DAM_SCALE_TILE = 2 };

typedef struct DamImgDevice {
	char *name;
	uint32_t bits, encoding, scale, dac_bits, adc_bits;
	double gmin, gmax, g0;
	uint32_t tile_rows, tile_cols;
} DamImgDevice;

typedef struct DamImgLayer {
	char *name, *lagrangian;
	uint64_t n;
	double tau;
	double *bias, *value;
	uint8_t *clamped;
} DamImgLayer;

typedef struct DamImgBlock {
	uint32_t block, row_layer, col_layer;
	uint64_t rows, cols;
	uint32_t kind;           /* dynamic: 0 host computes, 1 token table */
	uint32_t input;          /* kind 1 */
	uint64_t vocab;          /* kind 1 */
	double offset;           /* kind 1 */
	double gain;             /* kind 1: conductance of a unit weight in this table (S) */
	uint16_t *levels;        /* kind 1: planes*vocab*cols */
	char *name, *tensor;     /* from NAMES */
	uint32_t first_tile, ntiles;   /* static blocks */
} DamImgBlock;

typedef struct DamImgTile {
	uint32_t entry, row0, col0, rows, cols;
	double offset;
	double gain;             /* conductance of a unit weight in this tile (S) */
	uint16_t *levels;        /* planes*rows*cols */
} DamImgTile;

typedef struct DamImage {
	uint16_t version;
	uint8_t hash[32];
	DamImgDevice dev;
	uint32_t nlayers; DamImgLayer *layers;
	uint32_t nblocks; DamImgBlock *blocks;   /* static blocks (TILES) */
	uint32_t ntiles;  DamImgTile *tiles;
	uint32_t ndyn;    DamImgBlock *dyn;      /* dynamic blocks */
	struct { uint32_t type; uint64_t offset, length; uint32_t crc; } sec[DAM_IMG_NSECTIONS];
	uint64_t size;
} DamImage;

const char *dam_image_section_name(uint32_t type);   /* "TILES"; "?" if unknown */

/* Validate and decode; 0, or -1 with a message in err. */
int  dam_image_read(const void *buf, size_t len, DamImage **out, char *err, size_t errlen);
int  dam_image_open(const char *path, DamImage **out, char *err, size_t errlen);
void dam_image_free(DamImage *img);

unsigned dam_image_planes(const DamImage *img);      /* 2 differential, 1 offset */
double dam_image_level_g(const DamImgDevice *d, unsigned level);   /* G(l), S */
/* The weight a cell holds: planes levels p[0] (and p[stride]), the tile's
 * (or table's) offset and gain. */
double dam_image_cell_weight(const DamImage *img, const uint16_t *p, size_t stride, double offset,
                             double gain);
/* Dequantised weights of static block k (rows*cols doubles, row-major). */
void dam_image_block_weights(const DamImage *img, uint32_t k, double *out);
/* Dequantised token table of dynamic block k (vocab*cols doubles, row t =
 * the row programmed for token t); nothing for a block of kind 0. */
void dam_image_table_weights(const DamImage *img, uint32_t k, double *out);

/* The model hash of docs/image-format.md over a canonical text. */
void dam_image_hash(const char *text, size_t len, uint8_t out[32]);

/* Container writer: given the five section payloads (in type order), the
 * whole file (malloc'd). Returns 0, or -1 on overflow. */
int dam_image_assemble(const uint8_t hash[32], const uint8_t *const sec[DAM_IMG_NSECTIONS],
                       const size_t seclen[DAM_IMG_NSECTIONS], uint8_t **out, size_t *outlen);

/* A growable little-endian byte buffer (writer side). */
typedef struct DamBuf {
	uint8_t *p;
	size_t len, cap;
} DamBuf;
void dam_buf_u8(DamBuf *b, uint8_t v);
void dam_buf_u16(DamBuf *b, uint16_t v);
void dam_buf_u32(DamBuf *b, uint32_t v);
void dam_buf_u64(DamBuf *b, uint64_t v);
void dam_buf_f64(DamBuf *b, double v);
void dam_buf_str(DamBuf *b, const char *s);

/* Write a stored (uncompressed) .npz of float64 arrays atomically. */
int dam_npz_write(const char *path, int n, const char *const *names, const int *rank,
                  const int64_t *const *shape, const double *const *data, char *err, size_t errlen);

#endif
