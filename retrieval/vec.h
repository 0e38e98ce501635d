/* vec: inner products of float vectors on the CPU's vector unit (AVX2 when
 * the CPU has it, chosen at run time), for the index scans and the ranker.
 * Debian's FAISS is built without SIMD and OpenBLAS may not recognise the
 * CPU (it then runs its generic kernels), so neither is fast enough for the
 * thousands of short products a Recommend call needs. */
#ifndef AISLE_VEC_H
#define AISLE_VEC_H

#include <stddef.h>
#include <stdint.h>

/* a·b over d values. */
float vec_dot(const float *a, const float *b, int d);

/* out[i] = q·rows[i] for the n rows of d values stored one after another. */
void vec_dots(const float *q, const float *rows, size_t n, int d, float *out);

/* The same for n rows given by pointer (scattered over a table): the bits
 * of vec_dot(q, rows[i], d), four rows at a time. */
void vec_dots_at(const float *q, const float *const *rows, size_t n, int d, float *out);

/* out[i] = q·rows[i] for n rows of d IEEE half floats (binary16): half
 * the bytes of a float row, for scans that memory bounds. */
void vec_dots_half(const float *q, const uint16_t *rows, size_t n, int d, float *out);

/* The same products for n rows of d half floats stored by column in
 * blocks of VEC_COLS rows: row r's value j at blocks[(r / VEC_COLS) · d ·
 * VEC_COLS + j · VEC_COLS + r % VEC_COLS], the last block whole (lanes
 * past n are read, not written). A block's VEC_COLS scores build side by
 * side in one register, so a short row costs no lane sum (most of what a
 * row-major scan of 32 values pays). Each score is the fused multiply-add
 * chain over j = 0, 1, ... from 0, the same bits on every kernel; _isa
 * runs the given one (≤ vec_best_isa(); VEC_ISA_VNNI: the AVX-512 one,
 * which CPUs with VNNI run). */
#define VEC_COLS 16
void vec_dots_half_cols(const float *q, const uint16_t *blocks, size_t n, int d, float *out);

/* Quantized rows, for scans that read a quarter of a float row's bytes:
 * v ≈ scale · c with c in -127..127 (vec_q8; scale = max|v| / 127, 0 for
 * a zero or non-finite vector, whose codes are then 0). A stored row keeps
 * its codes biased by 128 (c + 128, one unsigned byte each: the form
 * AVX-512 VNNI's unsigned-by-signed product takes), a query plain. */
float vec_q8(const float *v, int d, int8_t *codes);

/* The kernels vec_dots_q8 can run; each gives the same (exact) sums. */
typedef enum vec_isa { VEC_ISA_BASE, VEC_ISA_AVX2, VEC_ISA_VNNI } vec_isa;
/* The fastest of them this CPU runs (asked once). */
vec_isa vec_best_isa(void);

/* out[i] = Σ_j q[j] · (rows[i][j] - 128), exactly, for n biased rows of d
 * codes stored one after another; the scores are the caller's scale
 * products, so every kernel ranks the same. _isa runs the given kernel
 * (≤ vec_best_isa(); the tests compare them). */
void vec_dots_q8(const int8_t *q, const uint8_t *rows, size_t n, int d, int32_t *out);
void vec_dots_q8_isa(vec_isa isa, const int8_t *q, const uint8_t *rows, size_t n, int d,
                     int32_t *out);
void vec_dots_half_cols_isa(vec_isa isa, const float *q, const uint16_t *blocks, size_t n,
                            int d, float *out);

/* f as the nearest half float (ties to even; past the largest finite
 * half, that half), and back (exact). */
uint16_t vec_to_half(float f);
float vec_from_half(uint16_t h);

/* A score and what it scores (an index row's slot, a ranker pool's
 * place): what the index scans and the ranker sort. */
typedef struct vec_hit {
    float score;
    uint32_t id;
} vec_hit;

/* qsort's order for hits: best first, equal scores by id, so every sort
 * of the same hits gives the same order (inline: index selection calls it
 * per row). */
static inline int vec_hit_desc(const void *a, const void *b) {
    const vec_hit *x = a, *y = b;
    if (x->score != y->score) return (x->score < y->score) - (x->score > y->score);
    return (x->id > y->id) - (x->id < y->id);
}

/* Sorts h[0..n) into vec_hit_desc's order, as qsort would, with the
 * comparison inlined: the index's selections and the ranker's pools sort
 * a few hundred hits a search, where qsort's call per comparison and its
 * merge buffer cost more than the comparisons. */
void vec_hits_sort(vec_hit *h, size_t n);

/* Arranges h[0..n) as a heap whose pops (vec_hits_pop) come in
 * vec_hits_sort's order: for a consumer that usually stops after the first
 * few of thousands, O(n) up front and O(log n) a pop instead of a sort. */
void vec_hits_heap(vec_hit *h, size_t n);
/* The best hit of the heap h of *n (> 0) hits, which loses it. */
vec_hit vec_hits_pop(vec_hit *h, size_t *n);

#endif
