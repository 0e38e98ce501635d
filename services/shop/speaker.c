/* speaker: a prefilled system turn, per-call prompts, one batched decoder. */
#include "services/shop/speaker.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "model/chat.h"
#include "model/sampler.h"
#include "services/base/buf.h"
#include "services/base/log.h"
#include "services/base/status.h"

/* One answer being written. The scheduler owns the session and sampler
 * while the sequence is live; the caller reads text and finished under the
 * speaker's lock. */
typedef struct speaker_seq {
    model_session *s;
    sampler smp;
    const gen_params *p;
    int prev;          /* last token, for decoding the next piece */
    int n_sampled;
    buf text;          /* decoded, not yet taken by the caller */
    int finished;      /* set by the scheduler; then the caller owns it all */
    int reason;        /* enum gen_stop, once finished */
    atomic_int stop;   /* the caller wants no more (a stop string, gone) */
    struct speaker_seq *next;
} speaker_seq;

struct speaker {
    const model *m;
    const tok_tokenizer *t;
    tpool *pool;
    int fmt;               /* enum chat_format, or -1 for plain prompts */
    char *instructions;    /* owned */
    model_session *sys;    /* the system turn, prefilled; NULL without a template */
    int *sys_tokens;       /* its tokens, to check a prompt starts with them */
    size_t n_sys;
    model_batch *batch;    /* the scheduler's */
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t work;   /* the scheduler waits for live sequences */
    pthread_cond_t news;   /* callers wait for text or the end */
    speaker_seq *live;
    int stopping;
    unsigned long steps, stepped;
};

/* The rendered prompt of a call: system turn and user turn, or plain. */
static int speaker_render(const speaker *sp, const char *request, int with_user, buf *out) {
    if (sp->fmt < 0) {
        buf_puts(out, request);
        buf_puts(out, sp->instructions);
        buf_puts(out, "\nAnswer:");
        return buf_status(out);
    }
    chat_msg msgs[2] = {{"system", sp->instructions}, {"user", request}};
    return chat_render(sp->fmt, msgs, with_user ? 2 : 1, with_user, out);
}

/* Encodes text into a malloc'ed token array (*out, *n). */
static int speaker_encode(const speaker *sp, const char *text, size_t len, int **out, size_t *n) {
    size_t cap = tok_max_tokens(text) + 4;
    int *ids = malloc(cap * sizeof(*ids)), rc;
    *out = NULL;
    if (!ids) return AISLE_ENOMEM;
    if ((rc = tok_encode_ex(sp->t, text, len, TOK_ADD_BOS | TOK_SPECIAL, ids, cap, n))) {
        free(ids);
        return rc;
    }
    *out = ids;
    return AISLE_OK;
}

/* Prefills the system turn once, so calls copy its KV cache. */
static int speaker_prefill(speaker *sp, char *err, size_t errlen) {
    buf text = {0};
    int rc = speaker_render(sp, "", 0, &text);
    if (rc == AISLE_OK)
        rc = speaker_encode(sp, buf_str(&text), text.len, &sp->sys_tokens, &sp->n_sys);
    buf_free(&text);
    if (rc == AISLE_OK)
        rc = model_session_new(sp->m, sp->pool, (int)sp->n_sys + 1, &sp->sys);
    if (rc == AISLE_OK) rc = gen_feed_tokens(sp->sys, sp->sys_tokens, (int)sp->n_sys, NULL, NULL);
    if (rc == AISLE_OK && !model_session_logits(sp->sys)) rc = AISLE_EFULL;
    if (rc != AISLE_OK)
        return status_fail(rc, err, errlen, "cannot prefill the system prompt: %s",
                           status_str(rc));
    return AISLE_OK;
}

/* Marks seq finished (lock held): the caller owns it from here. */
static void speaker_finish_locked(speaker *sp, speaker_seq *q, int reason) {
    speaker_seq **pp = &sp->live;
    while (*pp && *pp != q) pp = &(*pp)->next;
    assert(*pp == q);
    *pp = q->next;
    q->finished = 1;
    q->reason = reason;
}

/* Why seq must stop before its next token, or GEN_STOP_NONE. */
static int speaker_should_stop(const speaker_seq *q) {
    if (atomic_load(&q->stop)) return GEN_STOP_CALLBACK;
    if (q->p->cancel && atomic_load(q->p->cancel)) return GEN_STOP_CANCEL;
    if (q->p->deadline_ns && gen_now_ns() >= q->p->deadline_ns) return GEN_STOP_DEADLINE;
    return GEN_STOP_NONE;
}

/* Samples the next token of q into *tok and appends its text; returns
 * GEN_STOP_NONE when q steps on with *tok, else why it ends here. */
static int speaker_next(speaker *sp, speaker_seq *q, int *tok) {
    float *logits;
    const char *piece;
    size_t len;
    int why = speaker_should_stop(q);
    if (why != GEN_STOP_NONE) return why;
    if (!(logits = model_session_logits(q->s))) return GEN_STOP_CONTEXT;
    *tok = sampler_sample(&q->smp, logits);
    if (tok_is_eog(sp->t, *tok)) return GEN_STOP_EOS;
    piece = tok_decode(sp->t, q->prev, *tok, &len);
    pthread_mutex_lock(&sp->lock);
    buf_put(&q->text, piece, len);
    pthread_mutex_unlock(&sp->lock);
    q->prev = *tok;
    if (++q->n_sampled >= q->p->max_tokens && q->p->max_tokens > 0) return GEN_STOP_BUDGET;
    if (model_session_pos(q->s) + 1 >= model_session_capacity(q->s)) return GEN_STOP_CONTEXT;
    return GEN_STOP_NONE;
}

/* One scheduler round: a token for each live sequence, one forward pass. */
static void speaker_round(speaker *sp, speaker_seq **seqs, int n) {
    model_session *step[MODEL_BATCH];
    int tokens[MODEL_BATCH], m = 0, why[MODEL_BATCH];
    for (int i = 0; i < n; i++)
        if ((why[i] = speaker_next(sp, seqs[i], &tokens[m])) == GEN_STOP_NONE)
            step[m++] = seqs[i]->s;
    if (m > 0 && model_batch_step(sp->batch, step, tokens, m) != AISLE_OK)
        for (int i = 0; i < n; i++) why[i] = why[i] ? why[i] : GEN_STOP_CONTEXT;
    pthread_mutex_lock(&sp->lock);
    sp->steps += m > 0;
    sp->stepped += (unsigned long)m;
    for (int i = 0; i < n; i++)
        if (why[i] != GEN_STOP_NONE) speaker_finish_locked(sp, seqs[i], why[i]);
    pthread_cond_broadcast(&sp->news);
    pthread_mutex_unlock(&sp->lock);
}

static void *speaker_main(void *arg) {
    speaker *sp = arg;
    for (;;) {
        speaker_seq *seqs[MODEL_BATCH];
        int n = 0;
        pthread_mutex_lock(&sp->lock);
        while (!sp->live && !sp->stopping) pthread_cond_wait(&sp->work, &sp->lock);
        if (!sp->live) {
            pthread_mutex_unlock(&sp->lock);
            return NULL;
        }
        /* The oldest MODEL_BATCH; the rest wait for a place. */
        for (speaker_seq *q = sp->live; q && n < MODEL_BATCH; q = q->next) seqs[n++] = q;
        pthread_mutex_unlock(&sp->lock);
        speaker_round(sp, seqs, n);
    }
}

int speaker_new(const model *m, const tok_tokenizer *t, tpool *pool, const char *instructions,
                const char *chat_template, speaker **out, char *err, size_t errlen) {
    speaker *sp = calloc(1, sizeof(*sp));
    int rc;
    *out = NULL;
    if (!sp || !(sp->instructions = strdup(instructions))) {
        free(sp);
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    sp->m = m;
    sp->t = t;
    sp->pool = pool;
    sp->fmt = -1;
    pthread_mutex_init(&sp->lock, NULL);
    pthread_cond_init(&sp->work, NULL);
    pthread_cond_init(&sp->news, NULL);
    if (model_gguf(m) || chat_template) {
        rc = chat_select(model_gguf(m), chat_template, "--chat-template", &sp->fmt, err, errlen);
        /* A GGUF file without a known template writes plain prompts, unless
         * a template was asked for by name. */
        if (rc == AISLE_ENOTFOUND && !chat_template) sp->fmt = -1, rc = AISLE_OK;
        if (rc == AISLE_OK && sp->fmt >= 0) rc = speaker_prefill(sp, err, errlen);
        if (rc != AISLE_OK) goto fail;
    }
    if ((rc = model_batch_new(m, pool, &sp->batch)) != AISLE_OK) {
        status_fmt(err, errlen, "out of memory");
        goto fail;
    }
    if (pthread_create(&sp->thread, NULL, speaker_main, sp) != 0) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "cannot start the decoding thread");
        goto fail;
    }
    sp->started = 1;
    *out = sp;
    return AISLE_OK;
fail:
    speaker_free(sp);
    return rc;
}

void speaker_free(speaker *sp) {
    if (!sp) return;
    if (sp->started) {
        pthread_mutex_lock(&sp->lock);
        sp->stopping = 1;
        pthread_cond_broadcast(&sp->work);
        pthread_mutex_unlock(&sp->lock);
        pthread_join(sp->thread, NULL);
    }
    assert(!sp->live);
    model_batch_free(sp->batch);
    model_session_free(sp->sys);
    free(sp->sys_tokens);
    free(sp->instructions);
    pthread_mutex_destroy(&sp->lock);
    pthread_cond_destroy(&sp->work);
    pthread_cond_destroy(&sp->news);
    free(sp);
}

const char *speaker_template(const speaker *sp) { return sp->fmt < 0 ? NULL : chat_name(sp->fmt); }

/* A session holding the call's prompt, from the system turn's copy when
 * the prompt starts with it. Returns AISLE_OK with *out set, st->reason
 * GEN_STOP_DEADLINE/CANCEL when time ran out while reading it, or a code. */
static int speaker_prompt(speaker *sp, const char *request, const gen_params *p,
                          model_session **out, gen_stats *st) {
    buf text = {0};
    int *ids = NULL, rc;
    size_t n = 0, from = 0;
    *out = NULL;
    if ((rc = speaker_render(sp, request, 1, &text)) == AISLE_OK)
        rc = speaker_encode(sp, buf_str(&text), text.len, &ids, &n);
    buf_free(&text);
    if (rc == AISLE_OK)
        rc = model_session_new(sp->m, sp->pool, (int)n + (p->max_tokens > 0 ? p->max_tokens : 256) + 1, out);
    if (rc == AISLE_OK && sp->sys && n > sp->n_sys &&
        memcmp(ids, sp->sys_tokens, sp->n_sys * sizeof(int)) == 0 &&
        model_session_copy_prefix(*out, sp->sys, (int)sp->n_sys) == AISLE_OK)
        from = sp->n_sys;
    if (rc == AISLE_OK) rc = gen_feed_tokens(*out, ids + from, (int)(n - from), p, st);
    /* Read the whole prompt here, on the caller's thread, not the batch's. */
    if (rc == AISLE_OK && st->reason == GEN_STOP_NONE && !model_session_logits(*out))
        rc = AISLE_EFULL;
    free(ids);
    if (rc != AISLE_OK) {
        model_session_free(*out);
        *out = NULL;
    }
    return rc;
}

/* Waits for the scheduler and hands q's text to the caller's stage until
 * q finishes. */
static int speaker_relay(speaker *sp, speaker_seq *q, gen_text *gt) {
    buf got = {0};
    int finished = 0, rc = AISLE_OK;
    while (!finished) {
        pthread_mutex_lock(&sp->lock);
        while (!q->finished && q->text.len == 0) pthread_cond_wait(&sp->news, &sp->lock);
        finished = q->finished;
        buf_reset(&got);
        buf_put(&got, buf_str(&q->text), q->text.len);
        buf_reset(&q->text);
        pthread_mutex_unlock(&sp->lock);
        if (got.len && !atomic_load(&q->stop)) {
            int r = gen_text_push(gt, buf_str(&got), got.len);
            if (r < 0) rc = r;
            if (r != 0) atomic_store(&q->stop, r < 0 ? GEN_STOP_CALLBACK : r);
        }
    }
    buf_free(&got);
    return rc;
}

int speaker_say(speaker *sp, const char *request, const gen_params *p, gen_piece_fn piece,
                void *ud, gen_stats *st) {
    speaker_seq q;
    gen_text gt;
    int64_t t0 = gen_now_ns();
    int rc, text_rc;

    memset(st, 0, sizeof(*st));
    memset(&q, 0, sizeof(q));
    if ((rc = speaker_prompt(sp, request, p, &q.s, st)) != AISLE_OK) return rc;
    if (st->reason != GEN_STOP_NONE) { /* out of time while reading the prompt */
        model_session_free(q.s);
        return AISLE_OK;
    }
    if ((rc = sampler_init(&q.smp, tok_vocab_size(sp->t), p->temperature, p->topp, p->topk,
                           p->seed)) != AISLE_OK) {
        model_session_free(q.s);
        return rc;
    }
    q.p = p;
    q.prev = model_session_last(q.s);
    gen_text_init(&gt, p->stop, p->n_stop, piece, ud);
    pthread_mutex_lock(&sp->lock);
    speaker_seq **tail = &sp->live;
    while (*tail) tail = &(*tail)->next;
    *tail = &q;
    pthread_cond_signal(&sp->work);
    pthread_mutex_unlock(&sp->lock);

    rc = speaker_relay(sp, &q, &gt);
    text_rc = gen_text_finish(&gt);
    st->reason = atomic_load(&q.stop) > GEN_STOP_NONE ? atomic_load(&q.stop) : q.reason;
    if (text_rc > 0) st->reason = text_rc;
    st->n_tokens = q.n_sampled;
    st->elapsed_ns = gen_now_ns() - t0;
    buf_free(&q.text);
    sampler_free(&q.smp);
    model_session_free(q.s);
    return rc < 0 ? rc : text_rc < 0 ? text_rc : AISLE_OK;
}

void speaker_counts(speaker *sp, unsigned long *steps, unsigned long *seqs) {
    pthread_mutex_lock(&sp->lock);
    *steps = sp->steps;
    *seqs = sp->stepped;
    pthread_mutex_unlock(&sp->lock);
}
