/* quant.h — ggml's block-quantized weight formats, decoded in plain C.
 *
 * GGUF files store most matrices as blocks: a run of 32 (or, for the
 * K-quants, 256) values sharing half-precision scales, with the values in
 * 4, 5, 6 or 8 bits. This module knows each layout and turns blocks back
 * into floats. It is the reference the SIMD kernels in kern.c are tested
 * against, and the scalar fallback for CPUs without them. */
#ifndef AISLE_MODEL_QUANT_H
#define AISLE_MODEL_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* Values and bytes per block of a block type (enum kern_type); AISLE_OK,
 * or AISLE_ENOTFOUND for a type that is not made of blocks. */
int quant_block(int type, int *elems, int *bytes);

/* Decodes the n values (a whole number of blocks) that start at blocks. */
void quant_dequant(int type, const uint8_t *blocks, size_t n, float *y);

/* Group g (values 32g..32g+31) of a row of blocks as 32 small integers w
 * with two scales and an offset: value j = a[j / 16] * w[j] + b. This is
 * what an int8 dot product with a quantized activation multiplies (the
 * scalar kernel, and the reference for the SIMD ones). */
void quant_unpack32(int type, const uint8_t *row, int g, int8_t *w, float *a,
                    float *b);

/* A K-quant block's scales as integers, which is how ggml multiplies them
 * (an int32 sum per block, then one float product): sc[j] for values
 * 16j..16j+15 (Q4_K and Q5_K repeat each 32-value scale), the 32-value
 * groups' mins m (Q6_K: 0), and the block's half scales d and dmin. */
typedef struct quant_kscales {
    int sc[16], m[8];
    float d, dmin;
} quant_kscales;

/* The header of the Q4_K, Q5_K or Q6_K block at blk. */
void quant_k_header(int type, const uint8_t *blk, quant_kscales *h);

/* The engine's type (enum kern_type) for a GGUF tensor type; -1 when it
 * has none. */
int quant_kern_type(uint32_t gguf_type);

/* Encodes n values (whole blocks) as Q8_0, Q4_K or Q6_K into out: plain
 * round-to-nearest against each block's range (llama.cpp's quantizer
 * searches for better scales; this one is for tests and benchmarks).
 * AISLE_OK, or AISLE_EINVAL for another type or partial blocks. */
int quant_encode(int type, const float *x, size_t n, uint8_t *out);

/* Scale and min of sub-block j (0..7) of a Q4_K or Q5_K block from its 12
 * packed bytes q: the first four pairs are the low 6 bits of bytes 0-7;
 * the last four take their low 4 bits from bytes 8-11 and their top 2 bits
 * from bytes 0-7. */
static inline void quant_k_scale_min(int j, const uint8_t *q, int *sc,
                                     int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}


#endif
