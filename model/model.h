/* model.h — the transformer: weights, forward pass, sessions, batches.
 *
 * A model is loaded once from a llama2.c checkpoint (legacy header, or the
 * "ak42" version 1 fp32 / version 2 int8 exports) or a GGUF file (llama,
 * qwen2 or qwen3 architecture; F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
 * Q5_1, Q4_K, Q5_K or Q6_K matrices). Weights stay in a read-only mmap of
 * the file and the model is never written after model_load returns, so any
 * number of threads may run sessions on it concurrently.
 *
 * A session is one sequence: its own KV cache and scratch buffers. It is
 * used by one thread at a time. Tokens are pushed into it and run lazily,
 * in batches of up to 16 (a prompt reads the weights once per batch), when
 * the batch is full or model_session_logits asks for the prediction that
 * follows the last one. */
#ifndef AISLE_MODEL_MODEL_H
#define AISLE_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "model/gguf.h"
#include "services/base/status.h"
#include "model/kern.h"
#include "model/tpool.h"

/* Errors are negative AISLE_* codes (services/base/status.h): AISLE_EIO
 * (cannot open, size or map a file), AISLE_EFORMAT (corrupt, truncated or
 * unsupported file), AISLE_ENOMEM, AISLE_EINVAL (bad argument such as a
 * token id out of range), AISLE_EFULL (the session's context is full). */

enum model_format {
    MODEL_FMT_LEGACY = 0, /* llama2.c header of 7 ints, fp32 */
    MODEL_FMT_AK42_V1 = 1, /* llama2.c export version 1, fp32 */
    MODEL_FMT_AK42_V2 = 2, /* llama2.c export version 2, int8 groups */
    MODEL_FMT_GGUF = 3,
};

typedef struct model_config {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int head_size;         /* dim / n_heads */
    int kv_dim;            /* n_kv_heads * head_size */
    int shared_classifier; /* classifier is the embedding table */
    float rope_theta;      /* 10000 for llama2.c files */
    float norm_eps;        /* 1e-5 for llama2.c files */
    int arch;              /* enum model_arch */
    int q_dim;             /* n_heads * head_size: dim unless the file says */
    int rope_neox;         /* RoPE rotates (i, i + head_size/2), not (2i, 2i+1) */
} model_config;

/* Architectures: llama (also every llama2.c file); qwen2 adds Q/K/V
 * biases and rotates halves; qwen3 drops the biases for per-head RMSNorm
 * of Q and K. */
enum model_arch { MODEL_ARCH_LLAMA = 0, MODEL_ARCH_QWEN2, MODEL_ARCH_QWEN3 };

/* "llama", "qwen2", "qwen3". */
const char *model_arch_name(int arch);

/* Weight matrices, for exporters and reference checks. */
enum model_wkind {
    MODEL_W_EMBED, /* vocab x dim; one row read per token */
    MODEL_W_Q, MODEL_W_K, MODEL_W_V, MODEL_W_O,
    MODEL_W_GATE, /* w1 */
    MODEL_W_DOWN, /* w2 */
    MODEL_W_UP,   /* w3 */
    MODEL_W_CLS,  /* vocab x dim; same memory as EMBED when shared */
};

enum model_nkind { MODEL_N_ATT, MODEL_N_FFN, MODEL_N_FINAL,
                   MODEL_N_Q, MODEL_N_K /* qwen3's per-head norms */ };

/* Bias vectors of the Q, K and V projections (qwen2), or NULL. */
enum model_bkind { MODEL_B_Q, MODEL_B_K, MODEL_B_V };

/* Rows one forward pass runs together: prompt tokens of one session, or
 * one token each of up to this many sessions (model_batch_step). */
#define MODEL_BATCH 16

typedef struct model model;
typedef struct model_session model_session;

/* Maps and validates the file at path. On success *out is a new model the
 * caller frees with model_free (after every session on it). On failure
 * returns a negative AISLE_* code and writes a message into err. */
int model_load(const char *path, model **out, char *err, size_t errlen);
void model_free(model *m); /* NULL is a no-op */

const model_config *model_get_config(const model *m);
int model_format(const model *m);
/* The parsed GGUF file (owned by m) for tok_load_gguf, or NULL. */
const gguf_file *model_gguf(const model *m);
/* layer is ignored for EMBED, CLS and FINAL. */
const kern_mat *model_weight(const model *m, int kind, int layer);
const float *model_norm(const model *m, int kind, int layer);
const float *model_bias(const model *m, int kind, int layer);
/* Weight bytes one decoding step streams: every matrix (a repacked Q8_0,
 * Q4_K or Q6_K one as its copy, kern_mat_read_bytes) plus one embedding
 * row (the embedding counts in full when it is the classifier). */
size_t model_bytes_per_token(const model *m);

/* Creates a session for at most max_seq positions (<= 0 or more than the
 * model's seq_len: seq_len). pool may be NULL (single-threaded) and may be
 * shared by sessions; it must outlive the session. The caller frees *out
 * with model_session_free. Returns 0 or AISLE_ENOMEM. */
int model_session_new(const model *m, tpool *pool, int max_seq,
                      model_session **out);
void model_session_free(model_session *s); /* NULL is a no-op */

/* Forgets every token: the session starts a new sequence. */
void model_session_reset(model_session *s);

/* Appends a token; a full batch of pending tokens is run first (without
 * computing logits). Returns 0, AISLE_EINVAL for an id outside the
 * vocabulary or AISLE_EFULL when the context is full (one token past the
 * capacity is still accepted, but its logits are refused). */
int model_session_push(model_session *s, int token);

/* Logits (vocab_size floats) predicting the token after the last pushed
 * one, computing them if needed. Valid until the next push or reset; the
 * caller may modify them (samplers do). NULL when nothing was pushed or
 * the context is full. */
float *model_session_logits(model_session *s);

const model *model_session_model(const model_session *s);
int model_session_pos(const model_session *s);  /* tokens pushed */
int model_session_last(const model_session *s); /* last token or -1 */
int model_session_capacity(const model_session *s);

/* Runs token at position pos (0 <= pos < capacity, after positions
 * 0..pos-1) and returns its logits. A lower-level view of push+logits for
 * tests and tools; it resets the push state to pos+1 tokens. NULL on bad
 * arguments. */
float *model_forward(model_session *s, int token, int pos);

/* ------------------------------------------------------------------
 * Serving many sequences: a shared prefix and batched decoding.
 *
 * A system prompt is prefilled once into its own session; each request's
 * session then starts from a copy of that KV cache instead of running the
 * prompt again. Sequences that are decoding at the same time (Shop's
 * sub-agents, concurrent calls) step together: one forward pass runs one
 * token of each, so every weight row is read once per step for all of
 * them instead of once per sequence. */

/* Copies the first n positions (n <= model_session_pos(src), which must
 * have nothing pending beyond them) of src's KV cache into dst, which
 * forgets its own sequence and continues from position n. When n is the
 * whole of src, src's last token and logits come too, so dst can be
 * sampled from at once. src is only read: many sessions may copy from one
 * prefilled session concurrently. 0, or AISLE_EINVAL (another model, n out
 * of range). */
int model_session_copy_prefix(model_session *dst, const model_session *src,
                               int n);

/* Working memory for steps of up to MODEL_BATCH sequences of model m on
 * pool (may be NULL; must outlive b). One thread at a time; free with
 * model_batch_free. 0 or AISLE_ENOMEM. */
typedef struct model_batch model_batch;
int model_batch_new(const model *m, tpool *pool, model_batch **out);
void model_batch_free(model_batch *b); /* NULL is a no-op */

/* One decoding step for n sequences (1 <= n <= MODEL_BATCH, distinct
 * sessions of b's model): appends tokens[i] to seqs[i] and runs all n in
 * one forward pass; then model_session_logits(seqs[i]) is the prediction
 * after tokens[i]. Tokens a session has pending (a prompt) run first in
 * its own batches. Returns 0, AISLE_EINVAL (bad token, a session twice,
 * another model, n out of range) or AISLE_EFULL (a session is full);
 * on an error nothing is appended. The caller owns the sessions for the
 * step's duration. */
int model_batch_step(model_batch *b, model_session *const *seqs,
                     const int *tokens, int n);

#endif
