/* amx.h — a prompt's block-quantized products on AMX tiles (TDPBSSD).
 *
 * A prefilled prompt (gemm.h) multiplies each weight block with up to 64
 * tokens' int8 activation blocks: a tile of 16 weight rows × 32 int8
 * values times a tile of 16 tokens' values gives every (row, token) block
 * sum in int32, which is then scaled once. The weight types are Q8_0 and
 * Q4_K, whose 32-value groups are, as quant_unpack32 gives them, value_j =
 * a * w_j + b with small integers w_j (Q4_K: a = d * sc, b = -dmin * m);
 * the activation's group is d_a * q_j (KERN_ACT_Q8_0 or KERN_ACT_Q8_K).
 * The order of each product is its own, not the decode kernels': for row
 * n and token m, over the groups g in order,
 *     acc = fmaf((float)isum, a * d_a, acc)            isum = sum w_j q_j
 *     acc = fmaf(b, d_a * (float)qsum, acc)            qsum = sum q_j
 * from acc = 0, the second for Q4_K only (Q8_0's b is 0). */
#ifndef AISLE_MODEL_AMX_H
#define AISLE_MODEL_AMX_H

#include "model/kern.h"

#include <stddef.h>
#include <stdint.h>

#define AMX_TOKENS 16 /* activations per tile: the tile's 16 columns */
#define AMX_MAX_TOKENS 64 /* activations per product: four tiles' worth */

/* Whether the CPU and kernel let this process use AMX-INT8: CPUID, the OS
 * enabling the tile state (XCR0), and the kernel granting it (Linux
 * arch_prctl ARCH_REQ_XCOMP_PERM), asked once per process. 0 elsewhere. */
int amx_detect(void);

/* Whether amx_rows multiplies matrices of this type (enum kern_type). */
int amx_type(int type);

/* Bytes of nx packed activations of rows of `cols` values (a multiple of
 * 64, and never 0). */
size_t amx_pack_bytes(int cols, int nx);

/* Packs activations t0 <= t < t1 of nx <= AMX_MAX_TOKENS, quantized as
 * KERN_ACT_Q8_0 or KERN_ACT_Q8_K (all of x[t].n values, a multiple of
 * 32), into buf (amx_pack_bytes(x[0].n, nx) bytes, 64-byte aligned, the
 * caller's), in groups of AMX_TOKENS: per group and 32-value block,
 * TDPBSSD's B operand (8 rows of 64 bytes, row k holding token m's values
 * 4k..4k+3 at bytes 4m..4m+3), then the 16 tokens' d_a per block, then
 * their d_a * qsum; tokens past nx are zero (written by the range that
 * ends at nx). Ranges that cover 0..nx fill buf whatever their split, so
 * threads may pack disjoint ranges at once. */
void amx_pack(const kern_act *x, int nx, int t0, int t1, void *buf);

/* out[t * stride + i] for t < nx, r0 <= i < r1: row i of w (amx_type, at
 * least 16 rows) times token t of buf, in amx.h's order. Needs
 * amx_detect(); each call configures and releases the calling thread's
 * tiles. */
void amx_rows(const kern_mat *w, const void *buf, int nx, float *out,
              size_t stride, int r0, int r1);

#endif
