/* export.h — writing a loaded model back out in another format.
 *
 * Used by `aisle model convert` and by tests that need int8 or GGUF copies
 * of a checkpoint. Weights are read through kern_mat_row, so any loaded
 * format can be written as any output format (quantized inputs are
 * dequantized first). Files are written whole or not at all. */
#ifndef AISLE_MODEL_EXPORT_H
#define AISLE_MODEL_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "model/tok.h"

/* Writes m (llama architecture) as GGUF v3, with matrices stored as `type`
 * (GGUF_T_F32, GGUF_T_F16, GGUF_T_Q8_0, or GGUF_T_Q4_K for a Q4_K_M-style
 * mix: Q4_K matrices, Q6_K embedding and classifier; a matrix whose rows
 * are not whole blocks falls back to Q8_0, then F32). Norms are always F32. When t is non-NULL
 * its vocabulary is embedded as tokenizer.ggml.* metadata. Returns 0 or a
 * negative code with a message in err. */
int export_gguf(const model *m, const tok_tokenizer *t, const char *path,
                uint32_t type, char *err, size_t errlen);

/* Writes m as a llama2.c "ak42" export: version 1 (fp32) or version 2
 * (int8 with one float scale per gs values). gs 0 picks the largest group
 * size up to 64 that divides dim and hidden_dim. */
int export_llama2c(const model *m, const char *path, int version, int gs,
                   char *err, size_t errlen);

#endif
