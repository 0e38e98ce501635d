/* amx.h — Q8_0 products of a prompt's batch on AMX tiles (TDPBSSD).
 *
 * A prefilled prompt (gemm.h) multiplies each Q8_0 weight block with up to
 * 16 tokens' Q8_0 activation blocks at once: a 16-row weight tile times a
 * tile of the tokens' int8 values gives every (row, token) block sum in
 * int32, which is then scaled once. The order of each product is its own
 * (not the decode kernels'): for row n and token m, over blocks b in order,
 *     acc = fmaf((float)isum(n, m, b), d_w(n, b) * d_a(m, b), acc)
 * from acc = 0, isum the exact int32 dot product of the two blocks. */
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

/* Bytes of nx packed activations of rows of `cols` values (a multiple of
 * 64, and never 0). */
size_t amx_pack_bytes(int cols, int nx);

/* Packs nx <= AMX_MAX_TOKENS activations quantized as KERN_ACT_Q8_0 (all
 * of x[t].n values) into buf (amx_pack_bytes(x[0].n, nx) bytes, 64-byte
 * aligned, the caller's), in groups of AMX_TOKENS: per group and 32-value
 * block, TDPBSSD's B operand (8 rows of 64 bytes, row k holding token m's
 * values 4k..4k+3 at bytes 4m..4m+3), then the group's 16 scales per
 * block; tokens past nx are zero. */
void amx_pack_q8_0(const kern_act *x, int nx, void *buf);

/* out[t * stride + i] for t < nx, r0 <= i < r1: row i of the Q8_0 matrix w
 * (w->rows >= 16) times token t of buf, in amx.h's order. Needs
 * amx_detect(); each call configures and releases the calling thread's
 * tiles. */
void amx_q8_0_rows(const kern_mat *w, const void *buf, int nx, float *out,
                   size_t stride, int r0, int r1);

#endif
