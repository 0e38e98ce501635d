/* gguf.h — reading and writing GGUF files (versions 2 and 3).
 *
 * The reader parses a GGUF image that the caller has mapped into memory and
 * checks every length, count and tensor extent against the image size, so a
 * corrupt file is refused instead of read out of bounds. Keys, strings and
 * tensor data returned by the getters point into the caller's image and
 * live as long as it does. The writer builds a file from metadata and
 * tensors whose rows it pulls through a callback, converting each row to
 * the requested tensor type (F32, F16, Q8_0, Q4_K or Q6_K). */
#ifndef AISLE_MODEL_GGUF_H
#define AISLE_MODEL_GGUF_H

#include <stddef.h>
#include <stdint.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" read as little-endian uint32 */

enum gguf_vtype {
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3,
    GGUF_UINT32 = 4, GGUF_INT32 = 5, GGUF_FLOAT32 = 6, GGUF_BOOL = 7,
    GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_UINT64 = 10, GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12,
};

/* ggml tensor type codes (the numbers are ggml's). The reader knows the
 * block layout of those marked *, which the engine computes with; other
 * tensors parse but have no data pointer, and a model that needs one is
 * refused with the type's name. The writer writes F32, F16, Q8_0, Q4_K and
 * Q6_K. */
enum gguf_ttype {
    GGUF_T_F32 = 0,   /* * */
    GGUF_T_F16 = 1,   /* * */
    GGUF_T_Q4_0 = 2,  /* * 32 values: f16 scale, 16 bytes of nibbles */
    GGUF_T_Q4_1 = 3,  /* * 32: f16 scale, f16 min, 16 bytes */
    GGUF_T_Q5_0 = 6,  /* * 32: f16 scale, 4 bytes of 5th bits, 16 bytes */
    GGUF_T_Q5_1 = 7,  /* * 32: f16 scale, f16 min, 4 + 16 bytes */
    GGUF_T_Q8_0 = 8,  /* * 32: f16 scale, 32 int8 */
    GGUF_T_Q8_1 = 9,
    GGUF_T_Q2_K = 10,
    GGUF_T_Q3_K = 11,
    GGUF_T_Q4_K = 12, /* * 256: f16 d, f16 dmin, 12 bytes of 6-bit scales, 128 */
    GGUF_T_Q5_K = 13, /* * 256: as Q4_K plus 32 bytes of 5th bits */
    GGUF_T_Q6_K = 14, /* * 256: 128 low nibbles, 64 of high bits, 16 scales, f16 d */
    GGUF_T_Q8_K = 15,
    GGUF_T_BF16 = 30, /* * */
    GGUF_T_COUNT = 40,
};

/* The type's name as ggml spells it ("Q4_K"); "type N" style for unknown
 * codes is the caller's job: NULL then. */
const char *gguf_type_name(uint32_t type);
/* Values per block and bytes per block of a type the reader knows
 * (AISLE_OK), else AISLE_ENOTFOUND. */
int gguf_type_block(uint32_t type, uint32_t *elems, uint32_t *bytes);

#define GGUF_MAX_DIMS 4

typedef struct gguf_str {
    const char *p; /* not NUL-terminated */
    uint64_t len;
} gguf_str;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the row length; unused dims 1 */
    uint32_t type;              /* enum gguf_ttype */
    uint64_t offset;            /* in the data section, as the file says */
    const void *data;           /* inside the image, bounds-checked; NULL
                                   for a type of unknown layout */
    uint64_t nbytes;
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* A whole file mapped read-only (any file: model_load maps llama2.c
 * checkpoints with it too). */
typedef struct gguf_image {
    const void *data;
    size_t size;
} gguf_image;

/* Maps path; AISLE_OK, or AISLE_EIO / AISLE_EFORMAT (empty or not a
 * regular file) with a message. Undo with gguf_unmap. */
int gguf_map(const char *path, gguf_image *img, char *err, size_t errlen);
void gguf_unmap(gguf_image *img); /* an unmapped image is a no-op */

/* Parses the image [data, data+size). On success *out is a new gguf_file
 * that the caller frees with gguf_close (the image itself stays the
 * caller's). On failure returns a negative code and writes a message. */
int gguf_open(const void *data, size_t size, gguf_file **out, char *err,
              size_t errlen);
void gguf_close(gguf_file *g);

uint32_t gguf_version(const gguf_file *g);

/* Metadata getters return 0, or -1 when the key is absent or its type does
 * not convert (integers convert between widths when the value fits). */
int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out);
int gguf_get_f32(const gguf_file *g, const char *key, float *out);
int gguf_get_bool(const gguf_file *g, const char *key, int *out);
int gguf_get_str(const gguf_file *g, const char *key, gguf_str *out);
/* Arrays of numbers: element type and a pointer to n packed elements
 * (unaligned: copy them out with memcpy). */
int gguf_get_arr(const gguf_file *g, const char *key, uint32_t *type,
                 uint64_t *n, const void **items);
/* Arrays of strings: *out is a malloc'd array of n gguf_str pointing into
 * the image; the caller frees the array with free(). */
int gguf_get_strs(const gguf_file *g, const char *key, gguf_str **out,
                  uint64_t *n);

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);

/* ------------------------------------------------------------ writer */

typedef struct gguf_writer gguf_writer;

/* Produces row `row` (ne[0] floats) of a tensor into dst; 0 or negative. */
typedef int (*gguf_row_fn)(void *ud, uint64_t row, float *dst);

gguf_writer *gguf_writer_new(void); /* NULL on OOM; free with _free */
void gguf_writer_free(gguf_writer *w);

/* Metadata setters copy key and value; 0 or AISLE_ENOMEM. */
int gguf_writer_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_bool(gguf_writer *w, const char *key, int v);
int gguf_writer_str(gguf_writer *w, const char *key, const char *v);
int gguf_writer_strs(gguf_writer *w, const char *key, const gguf_str *v,
                     uint64_t n);
int gguf_writer_f32s(gguf_writer *w, const char *key, const float *v,
                     uint64_t n);
int gguf_writer_i32s(gguf_writer *w, const char *key, const int32_t *v,
                     uint64_t n);

/* Adds a tensor of n_dims dims (ne[0] = row length) written as `type`;
 * rows come from fn(ud, ...) during gguf_writer_write, so ud must stay
 * valid until then. Q8_0 needs ne[0] % 32 == 0. 0 or negative. */
int gguf_writer_tensor(gguf_writer *w, const char *name, uint32_t type,
                       uint32_t n_dims, const uint64_t *ne, gguf_row_fn fn,
                       void *ud);

/* Writes the file (GGUF v3, 32-byte alignment). 0 or negative + message. */
int gguf_writer_write(gguf_writer *w, const char *path, char *err,
                      size_t errlen);

#endif
