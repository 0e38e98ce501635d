/* gemm.h — products for a prompt: many tokens of one sequence at once.
 *
 * A prefilled prompt (model.c runs it in batches of up to MODEL_BATCH
 * tokens) may sum in an order of its own, as llama.cpp's own prefill
 * does; decoding and model_batch_step keep kern.h's order. Where this
 * module has a faster form for a weight type at the current kernel level
 * (the block types but Q6_K on AMX tiles, amx.h; F32 by an AVX-512
 * register-blocked kernel)
 * gemm_rows runs it, and everything else stays on kern_matvec_n. Every
 * form sums each (row, token) product independently of the other rows and
 * tokens, of the split over threads and of the batch size:
 *   block types (AMX): amx.h's order.
 *   Q8_0 (AVX-512 VNNI without AMX, a repacked copy, GEMM_Q8_MIN_TOKENS or
 *   more tokens): amx.h's order too, so the same bits as on AMX.
 *   F32 (AVX-512, GEMM_F32_MIN_TOKENS or more tokens): one fmaf chain,
 *   acc = fmaf(w[k], x[k], acc) in order of k from 0. With fewer tokens
 *   (a prompt's classifier row) gemm_handles says no and the product
 *   keeps kern.h's order, as decoding. */
#ifndef AISLE_MODEL_GEMM_H
#define AISLE_MODEL_GEMM_H

#include "model/kern.h"

#include <stddef.h>

#define GEMM_MAX_TOKENS 64 /* activations per product */
#define GEMM_F32_MIN_TOKENS 16 /* F32's form: below, a vector of tokens idles */
#define GEMM_Q8_MIN_TOKENS 16 /* Q8_0 without AMX: below, kern.h's tiles */

/* Bytes of the buffer gemm_prepare fills, for nx activations of up to cols
 * values. */
size_t gemm_buf_bytes(int cols, int nx);

/* Whether gemm_rows has a prompt form of its own for w and nx activations
 * at the current kernel level (kern_set_level, AISLE_KERNEL). */
int gemm_handles(const kern_mat *w, int nx);

/* Readies activations t0 <= t < t1 of nx <= GEMM_MAX_TOKENS, quantized as
 * `code` (kern_needs_act) for every matrix gemm_rows will multiply them
 * with: once ranges covering 0..nx are done (in any split, by any
 * threads), buf (gemm_buf_bytes(x[0].n, nx), 64-byte aligned, the
 * caller's) holds what those forms read, e.g. the AMX tile layout. */
void gemm_prepare(const kern_act *x, int nx, int t0, int t1, int code,
                  void *buf);

/* out[t * stride + i] = row i of w times activation t, t < nx,
 * r0 <= i < r1, for a w that gemm_handles with nx, from the buf that
 * gemm_prepare filled. */
void gemm_rows(const kern_mat *w, int nx, const void *buf, float *out,
               size_t stride, int r0, int r1);

#endif
