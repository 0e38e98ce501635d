/* gen.h — streaming text generation on a model session.
 *
 * This is the API a request handler uses: load a model and tokenizer once,
 * create a session per request, feed the prompt, then gen_run, which
 * samples tokens and hands each piece of decoded text to a callback until
 * a stop condition: EOS/BOS, a stop string, the token budget, a deadline,
 * a cancellation flag, a full context, or the callback asking to stop.
 *
 *   model *m; tok_tokenizer *t;              // shared, read-only
 *   model_session *s; model_session_new(m, pool, 0, &s);
 *   gen_params p; gen_params_init(&p); p.max_tokens = 128; ...
 *   gen_feed_text(s, t, "Once upon a time", 1, &p, &st);
 *   gen_run(s, t, &p, on_piece, ctx, &st);
 *   model_session_free(s);
 *
 * Text reaches the callback as valid UTF-8: bytes of a character split
 * across tokens are held until it is complete (a broken sequence becomes
 * U+FFFD), single control bytes are dropped as llama2.c does, and text
 * that might begin a stop string is held back until it is known not to. */
#ifndef AISLE_MODEL_GEN_H
#define AISLE_MODEL_GEN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "model/tok.h"
#include "services/base/buf.h"

/* Receives len bytes of text (not NUL-terminated, valid only during the
 * call). Returning non-zero stops generation (GEN_STOP_CALLBACK). */
typedef int (*gen_piece_fn)(void *ud, const char *text, size_t len);

typedef struct gen_params {
    float temperature;        /* 0 = greedy */
    float topp;               /* nucleus cut when 0 < topp < 1 */
    int topk;                 /* top-k cut when > 0 */
    uint64_t seed;            /* sampler seed (see sampler_init) */
    int max_tokens;           /* tokens to sample; <= 0: until context full */
    int64_t deadline_ns;      /* absolute gen_now_ns() time; 0 = none */
    const atomic_int *cancel; /* stop once *cancel != 0; NULL = never */
    const char *const *stop;  /* stop strings (not emitted); caller-owned */
    int n_stop;
} gen_params;

enum gen_stop {
    GEN_STOP_NONE = 0,  /* feeding finished normally */
    GEN_STOP_BUDGET,    /* max_tokens sampled */
    GEN_STOP_EOS,       /* model produced EOS or BOS (not emitted) */
    GEN_STOP_STRING,    /* a stop string appeared */
    GEN_STOP_CALLBACK,  /* the callback returned non-zero */
    GEN_STOP_CANCEL,
    GEN_STOP_DEADLINE,
    GEN_STOP_CONTEXT,   /* the session's context is full */
};

typedef struct gen_stats {
    int reason;       /* enum gen_stop */
    int n_tokens;     /* tokens fed (feed) or sampled and kept (run) */
    int64_t elapsed_ns;
} gen_stats;

const char *gen_stop_name(int reason);

/* The text stage between decoded pieces and the callback, usable on its
 * own (gen_run uses one per call). Fields are private. */
typedef struct gen_text {
    buf text;  /* valid UTF-8 not yet handed to the callback */
    unsigned char seq[4]; /* incomplete character */
    int seq_len, seq_need;
    const char *const *stop;
    int n_stop;
    gen_piece_fn cb;
    void *ud;
    int stopped; /* GEN_STOP_STRING or GEN_STOP_CALLBACK once ended */
} gen_text;

/* stop (n_stop strings, caller-owned, must outlive o) may be NULL. */
void gen_text_init(gen_text *o, const char *const *stop, int n_stop,
                   gen_piece_fn cb, void *ud);
/* Adds a decoded piece; returns 0 to go on, GEN_STOP_STRING or
 * GEN_STOP_CALLBACK once the stream has ended, or AISLE_ENOMEM. */
int gen_text_push(gen_text *o, const char *piece, size_t len);
/* Delivers held-back text (an unfinished character becomes U+FFFD) unless
 * the stream ended, and frees o's buffer. Returns like gen_text_push. */
int gen_text_finish(gen_text *o);

/* Greedy, no budget, no deadline, no cancel flag, no stop strings. */
void gen_params_init(gen_params *p);

int64_t gen_now_ns(void); /* CLOCK_MONOTONIC */

/* Pushes tokens into the session, checking p's cancel flag and deadline
 * between tokens (p may be NULL). Returns 0 (st->reason NONE, CANCEL or
 * DEADLINE) or a negative AISLE_* code. st may be NULL. */
int gen_feed_tokens(model_session *s, const int *tokens, int n,
                    const gen_params *p, gen_stats *st);

/* Encodes text (with BOS first when bos is non-zero) and feeds it. */
int gen_feed_text(model_session *s, const tok_tokenizer *t, const char *text,
                  int bos, const gen_params *p, gen_stats *st);

/* Samples until a stop condition; see the file comment. cb receives the
 * text as it is decoded (NULL: none is wanted). Sampled tokens
 * stay in the session, so a later feed continues the same sequence.
 * Returns 0 with the reason in st (may be NULL), or a negative MODEL_E*
 * code (AISLE_EINVAL when nothing was fed, AISLE_ENOMEM). */
int gen_run(model_session *s, const tok_tokenizer *t, const gen_params *p,
            gen_piece_fn cb, void *ud, gen_stats *st);

#endif
