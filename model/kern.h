/* kern.h — numeric kernels of the inference engine.
 *
 * A weight matrix is described by a kern_mat that points into memory the
 * caller owns (usually the read-only mmap of a model file); kernels never
 * allocate and never write to weights. An activation vector that multiplies
 * int8 weights is quantized once into a kern_act and reused by every matrix
 * that reads it. Every kernel has a portable scalar version and, on x86-64,
 * SIMD versions (AVX2/FMA/F16C, AVX-VNNI, AVX-512) selected at run time from the
 * CPU's features. */
#ifndef AISLE_MODEL_KERN_H
#define AISLE_MODEL_KERN_H

#include <stddef.h>
#include <stdint.h>

enum kern_type {
    KERN_F32 = 0,  /* float rows */
    KERN_F16 = 1,  /* IEEE half rows */
    KERN_Q8 = 2,   /* int8 rows plus a separate float scale per gs values
                      (llama2.c version 2 export) */
    KERN_Q8_0 = 3, /* GGUF Q8_0 blocks: half scale followed by 32 int8 */
    KERN_BF16 = 4, /* bfloat16 rows: the top half of a float */
    /* GGUF block formats, decoded by quant.c (layouts there). */
    KERN_Q4_0 = 5,
    KERN_Q4_1 = 6,
    KERN_Q5_0 = 7,
    KERN_Q5_1 = 8,
    KERN_Q4_K = 9,
    KERN_Q5_K = 10,
    KERN_Q6_K = 11,
};

#define KERN_Q8_0_BLOCK 32
#define KERN_Q8_0_BYTES 34 /* bytes of one Q8_0 block */

typedef struct kern_mat {
    int type;        /* enum kern_type */
    int rows, cols;  /* out_features x in_features, row-major */
    int gs;          /* KERN_Q8: values per scale; block types: values per
                        block (32, or 256 for the K-quants) */
    const void *q;   /* row data; 4-byte aligned for KERN_F32 */
    const float *s;  /* KERN_Q8 scales, rows*cols/gs floats; else NULL */
    int x8;          /* KERN_Q4_0 only: sum as llama.cpp does the Q4_0 it
                        repacks to 8-row interleaved blocks on AVX2 CPUs:
                        per block, its whole integer dot product times both
                        scales in one float FMA chain */
    const void *rp;  /* KERN_Q8_0, KERN_Q4_K and KERN_Q6_K only:
                        kern_repack's copy of the rows, or NULL */
} kern_mat;

/* An activation vector and its int8 copy. f, q, s and sum belong to the
 * caller; q holds n bytes, s and sum n / kern_act_group(code) floats for
 * the codes in use, s n floats where F16 weights are multiplied
 * (KERN_ACT_F16). */
typedef struct kern_act {
    const float *f;
    int n;
    int8_t *q;
    float *s;
    float *sum; /* per group, for weights with an offset: s * (sum of q);
                   KERN_ACT_Q8_0: that as a half; KERN_ACT_Q8_K: the
                   integer sum of q itself */
    int gs; /* kern_needs_act code q/s were computed for; 0 = not yet */
} kern_act;

/* How the activation is quantized for w (kern_needs_act, kern_act.gs): 0
 * for float types, KERN_Q8's group size, or one of ggml's activation types,
 * so products give llama.cpp's numbers: ggml multiplies a GGUF block type
 * with the activation quantized as its vec_dot_type, and on random-weight
 * models a different rounding of it already changes the top token. */
#define KERN_ACT_Q8_0 (-1) /* Q8_0 / Q8_1 (the 32-value types): per 32,
                              d = amax/127 as a half, q = rint(x * 127/amax),
                              the group sum as a half of d * sum(q) */
#define KERN_ACT_Q8_K (-2) /* Q8_K (the K-quants): per 256, d = max/-127
                              with max the value of largest magnitude,
                              q = min(127, rint(x * -127/max)), float d */
#define KERN_ACT_F16 (-3) /* F16: the values rounded to half precision,
                             written to s (which must hold n floats), and
                             f then points to them */
#define KERN_ACT_BF16 (-4) /* BF16: the values rounded to bfloat16 (to
                              nearest even), in s as for KERN_ACT_F16 */
int kern_needs_act(const kern_mat *w);

/* Values per entry of kern_act.s and .sum for a kern_needs_act code: the
 * group size for KERN_Q8, else 32 (a Q8_K block's scale repeated for each
 * of its eight groups), which is what every block kernel reads. */
int kern_act_group(int code);

/* "Q4_K", ... */
const char *kern_type_name(int type);

/* Bytes the matrix occupies, which is what one product streams from memory. */
size_t kern_mat_bytes(const kern_mat *w);

/* Quantizes a->f as kern_needs_act code `code` asks (the group must divide
 * a->n); a no-op when already quantized that way. Every matrix type but
 * F32, F16 and BF16 needs it before kern_matvec. */
void kern_act_quantize(kern_act *a, int code);

/* out[i] = dot(row i of w, x) for rows r0 <= i < r1. out is indexed by row
 * number, so parts of one product can run on different threads. */
void kern_matvec(const kern_mat *w, const kern_act *x, float *out, int r0,
                 int r1);

/* kern_matvec for nx activations x[0..nx) (nx <= KERN_MAX_ACTS), the
 * product with x[t] into out + t * stride: block-quantized rows are then
 * unpacked once for all of them, which is what makes a prompt's batch
 * cheaper than its tokens one by one. */
#define KERN_MAX_ACTS 16
void kern_matvec_n(const kern_mat *w, const kern_act *x, int nx, float *out,
                   size_t stride, int r0, int r1);

/* Whether kern_matvec_n(w, x, nx, ...) reads each row of w once for all
 * nx activations (rows outer): a caller may then give it a whole range of
 * rows in one call, and what it forms from the activations alone (the
 * K-quants' mins terms) is formed once per call. Else (0) it passes over
 * the rows once per group of activations, and a caller keeps the rows
 * cached between passes by giving it a few at a time. */
int kern_one_pass(const kern_mat *w, int nx);

/* Load-time repacking of Q8_0, Q4_K and Q6_K matrices for the AVX-512
 * tiles: each run of KERN_RP_ROWS rows is stored with its blocks side by
 * side. Q8_0: the rows' half scales side by side, then per block their
 * values offset by 128 as vpdpbusd wants them, four values of each of the
 * 16 rows to a 64-byte register, so a tile reads one contiguous stream
 * instead of 16 rows 34 bytes a block apart, picks no half scale out of a
 * block, and has each of ggml's int32 lanes in a register of its own.
 * Q4_K, Q6_K: quads of four rows, one row to each 128-bit lane of a
 * register (their value bytes as in the file, the same bits), each
 * block's scales as bytes (Q4_K's 6-bit scales and mins decoded at load)
 * and its half scales side by side, so what a block costs all the
 * activations together is a few masks and shifts and a shuffle per group
 * (kern.c). The products are the row kernels' to the bit; rows past the
 * last whole run, and every product below the AVX-512 level or of a
 * prompt on AMX (gemm.h), read w->q as before.
 *
 * kern_repack_bytes: the bytes the copy takes (Q8_0: the matrix's, each
 * run's scales padded to a 64-byte line; Q4_K: 1.03-1.04x the matrix's;
 * Q6_K: the matrix's and a line's padding per quad), or 0 where none is
 * made (another type, fewer than KERN_RP_ROWS rows, or a level below
 * AVX-512 in effect). kern_repack writes it to dst (that many bytes,
 * 64-byte aligned; the caller owns it and keeps it as long as w is used)
 * and points w->rp at it. */
#define KERN_RP_ROWS 16
size_t kern_repack_bytes(const kern_mat *w);
void kern_repack(kern_mat *w, void *dst);

/* Run `run` of w's repacked Q8_0 copy (w->rp set): its values (per block the
 * eight 64-byte registers) and, in *scales, its half scales (16 per
 * block). For a prompt's form that reads the copy (gemm.c). */
const uint8_t *kern_rp_run(const kern_mat *w, int run,
                           const uint16_t **scales);

/* Bytes a decoding product of w streams: kern_mat_bytes, or with a
 * repacked copy the copy's bytes and the rows past its last run. */
size_t kern_mat_read_bytes(const kern_mat *w);

/* Row `row` of w as floats (dequantized), cols values into dst. */
void kern_mat_row(const kern_mat *w, int row, float *dst);

/* Attention for one head over n cached positions, k and v rows `stride`
 * floats apart: out[t] = dot(q, k_t) / div, and out = sum_t w[t] * v_t
 * (out overwritten, hs floats). */
void kern_scores(const float *q, const float *k, size_t stride, int n,
                 int hs, float div, float *out);
void kern_mix(const float *w, const float *v, size_t stride, int n, int hs,
              float *out);

/* x[0..n) = exp(x - max) / sum, in place (n >= 1). */
void kern_softmax(float *x, int n);

/* llama.cpp's own arithmetic for what the products leave in float, as its
 * CPU backend does it in the AVX-512 build that made the reference outputs
 * in shared/models/gguf; GGUF models run on these so that the int8
 * roundings of the next product see its values to the last bit. Each is
 * plain C (the order of every sum fixed), so it gives the same bits on
 * every CPU. */

/* ggml_v_expf: exp by a degree-5 polynomial after a power-of-two split
 * (within 2 ulps of expf, flushing below -103.97 and above 88.38). */
float kern_expf_ggml(float x);

/* ggml_vec_dot_f16 of half-precision values held as floats (so each
 * product is exact): 64-value steps into 64 float lanes folded as
 * _mm512_reduce_add_ps folds them, the rest added in double. */
float kern_dot_half(const float *x, const float *y, int n);

/* out[t] = kern_dot_half(q, k + t * stride as floats, hs) for t < n: a
 * head's scores against n keys of an F16 cache, sixteen keys at a time
 * where the CPU has AVX-512 and hs is a multiple of 64. */
void kern_scores_half(const float *q, const uint16_t *k, size_t stride, int n,
                      int hs, float *out);

/* ggml_soft_max_ext over n scores x * scale (n >= 1), in place: max,
 * kern_expf_ggml in runs of 16 summed per run then in double, times the
 * float reciprocal of the sum. */
void kern_softmax_ggml(float *x, int n, float scale);

/* out[j] = sum over t < n of w[t] * v[t * stride + j] for j < hs (v an
 * F16 cache), in ggml_vec_dot_f16's order over a cache of n_kv >= n
 * positions (the rest weighted 0): llama.cpp multiplies the transposed V
 * cache this way. */
void kern_mix_half(const float *w, const uint16_t *v, size_t stride, int n,
                   int n_kv, int hs, float *out);

/* g[i] = silu(g[i]) * u[i] as ggml_vec_silu_f32 then ggml_mul compute it:
 * kern_expf_ggml for each run of 16, expf for the rest. */
void kern_swiglu_ggml(float *g, const float *u, int n);

/* Symmetric int8 quantization of n values (n % gs == 0): per group,
 * scale = max|x| / 127 and q = round(x / scale). */
void kern_quantize(const float *x, int n, int gs, int8_t *q, float *s);

float kern_f16_to_f32(uint16_t h);
float kern_bf16_to_f32(uint16_t h);
uint16_t kern_f32_to_f16(float f); /* round to nearest even */

/* x[i] = kern_f16_to_f32(kern_f32_to_f16(x[i])) for i < n, in place (F16C
 * where the CPU has it: the same values, NaNs aside, which stay NaNs). */
void kern_round_f16(float *x, int n);

/* The index of the largest of v[0..n) (n >= 1), the first of equal ones;
 * a NaN never wins, and a NaN at v[0] is kept (nothing compares above it):
 * the scalar loop `v[i] > v[best]`'s answer at every level. */
int kern_argmax(const float *v, int n);

/* Asks for the `bytes` bytes at p into L2 (no effect on any result): for a
 * stream whose use is a little way off, such as the next head's cache. */
void kern_prefetch(const void *p, size_t bytes);

/* h[i] = kern_f32_to_f16(x[i]) for i < n (F16C where the CPU has it):
 * llama.cpp's F16 K/V cache entries. */
void kern_to_f16(const float *x, uint16_t *h, int n);

/* Rotates the n values of v (whole heads of hs, hs even) by a position's
 * angles cs (cos, sin per pair index i < hs/2): the pairs (2i, 2i+1), or
 * with neox the halves (i, i + hs/2). With ggml, v0's products are fused
 * into the sums (v0 * co - v1 * si as fmaf(v0, co, -(v1 * si)), v0 * si +
 * v1 * co as fmaf(v0, si, v1 * co)), as gcc contracts llama.cpp's rope;
 * else two rounded products and their sum. The same values at every
 * level. */
void kern_rope(float *v, int n, int hs, const float *cs, int neox, int ggml);

/* Kernel levels, each including the ones below. */
#define KERN_SCALAR_LEVEL 0
#define KERN_AVX2_LEVEL 1 /* AVX2 + FMA + F16C */
#define KERN_VNNI_LEVEL 2 /* AVX2 + AVX-VNNI int8 dot products (AVX2's on
                             a CPU without AVX-VNNI) */
#define KERN_AVX512_LEVEL 3 /* + AVX-512 F/BW/VL/VNNI, which is all it needs
                               (Ice Lake, Cascade Lake: no AVX-VNNI): 512-bit
                               tiles of rows x activations for F32, Q8_0 and
                               the K-quants; other types as the VNNI level */
#define KERN_AMX_LEVEL 4 /* + AMX-INT8 tiles, granted by the OS (amx.h):
                            only a prompt's Q8_0 and Q4_K products use
                            them (gemm.h) */

/* Caps the kernel level (the CPU's best level is the default, or the cap
 * that the environment variable AISLE_KERNEL names: scalar, avx2, vnni,
 * avx512 or amx) so tests can compare every path; returns the level now in
 * effect. Call it while no product runs. */
int kern_set_level(int level);

/* The level in effect. */
int kern_get_level(void);

#endif
