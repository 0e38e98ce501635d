/* gen.c — the sampling loop and the text stream (gen_text) handed to
 * callbacks.
 *
 * Pieces pass through two stages before the callback: a UTF-8 assembler
 * (a token may carry one byte of a multi-byte character) and a stop-string
 * holdback (a stop string may span several tokens and must not be shown
 * in part). Stop conditions are checked before each forward pass, which is
 * where the time goes, so a deadline is overrun by at most one token. */
#include "model/gen.h"

#include "model/sampler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *gen_stop_name(int reason) {
    static const char *const names[] = {"none",     "budget",   "eos",
                                        "stop string", "callback", "cancel",
                                        "deadline", "context full"};
    return reason >= 0 && reason <= GEN_STOP_CONTEXT ? names[reason] : "?";
}

void gen_params_init(gen_params *p) { memset(p, 0, sizeof *p); }

int64_t gen_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A stop condition the caller controls, or GEN_STOP_NONE. */
static int gen_interrupted(const gen_params *p) {
    if (!p)
        return GEN_STOP_NONE;
    if (p->cancel && atomic_load(p->cancel))
        return GEN_STOP_CANCEL;
    if (p->deadline_ns && gen_now_ns() >= p->deadline_ns)
        return GEN_STOP_DEADLINE;
    return GEN_STOP_NONE;
}

static void text_bad_seq(gen_text *o) {
    static const char fffd[] = "\xef\xbf\xbd";
    buf_put(&o->text, fffd, 3);
    o->seq_len = o->seq_need = 0;
}

/* Feeds one byte through the UTF-8 assembler into buf. */
/* Whether c may follow lead byte `lead` as the second byte: excludes
 * overlong forms, UTF-16 surrogates and code points past U+10FFFF, which
 * strict consumers (protobuf strings) reject. */
static int text_second_ok(unsigned char lead, unsigned char c) {
    switch (lead) {
    case 0xe0: return c >= 0xa0;
    case 0xed: return c < 0xa0;
    case 0xf0: return c >= 0x90;
    case 0xf4: return c < 0x90;
    default: return 1;
    }
}

static void text_byte(gen_text *o, unsigned char c) {
    if (c >= 0x80 && c < 0xc0) { /* continuation */
        /* A bad second byte ends the lead's sequence and is then stray
         * itself: one U+FFFD each, as the WHATWG decoder does. */
        if (o->seq_len == 1 && !text_second_ok(o->seq[0], c))
            text_bad_seq(o);
        if (!o->seq_need) {
            text_bad_seq(o);
            return;
        }
        o->seq[o->seq_len++] = c;
        if (o->seq_len == o->seq_need) {
            buf_put(&o->text, o->seq, (size_t)o->seq_len);
            o->seq_len = o->seq_need = 0;
        }
        return;
    }
    if (o->seq_need)
        text_bad_seq(o);
    if (c < 0x80) {
        buf_put(&o->text, &c, 1);
    } else if (c >= 0xc2 && c <= 0xf4) {
        o->seq[0] = c;
        o->seq_len = 1;
        o->seq_need = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    } else {
        text_bad_seq(o);
    }
}

static int text_emit(gen_text *o, size_t n) {
    if (!n)
        return 0;
    if (o->cb && o->cb(o->ud, o->text.data, n)) {
        o->stopped = GEN_STOP_CALLBACK;
        return -1;
    }
    /* The held-back tail moves to the front; a shrink cannot fail. */
    memmove(o->text.data, o->text.data + n, o->text.len - n + 1);
    o->text.len -= n;
    return 0;
}

/* Emits what can no longer be part of a stop string. */
static void text_flush(gen_text *o, size_t old_len) {
    const char *b = buf_str(&o->text);
    size_t len = o->text.len, hold = 0, first = len;

    for (int i = 0; i < o->n_stop; i++) {
        const char *st = o->stop[i];
        size_t sl = strlen(st), from;
        if (!sl)
            continue;
        /* A match must end in the new bytes. */
        from = old_len + 1 > sl ? old_len + 1 - sl : 0;
        for (size_t at = from; at + sl <= len; at++) {
            if (at < first && !memcmp(b + at, st, sl)) {
                first = at;
                break;
            }
        }
        for (size_t k = sl - 1; k > hold; k--) {
            if (k <= len && !memcmp(b + len - k, st, k)) {
                hold = k;
                break;
            }
        }
    }
    if (first < len) {
        if (!text_emit(o, first))
            o->stopped = GEN_STOP_STRING;
        return;
    }
    text_emit(o, len - hold);
}

void gen_text_init(gen_text *o, const char *const *stop, int n_stop,
                   gen_piece_fn cb, void *ud) {
    memset(o, 0, sizeof *o);
    o->stop = stop;
    o->n_stop = n_stop;
    o->cb = cb;
    o->ud = ud;
}

int gen_text_push(gen_text *o, const char *piece, size_t n) {
    size_t old_len = o->text.len;
    unsigned char c = n ? (unsigned char)piece[0] : 0;

    if (o->stopped)
        return o->stopped;
    /* llama2.c's safe_printf: a lone control byte is not text. */
    if (n == 1 && c < 0x80 && !(c >= 0x20 && c < 0x7f) &&
        !(c >= '\t' && c <= '\r'))
        return 0;
    for (size_t i = 0; i < n; i++)
        text_byte(o, (unsigned char)piece[i]);
    if (buf_status(&o->text))
        return AISLE_ENOMEM;
    text_flush(o, old_len);
    return o->stopped;
}

int gen_text_finish(gen_text *o) {
    int rc = o->stopped;

    /* Held-back text was not a stop string after all: deliver it. */
    if (!o->stopped && !buf_status(&o->text)) {
        if (o->seq_need)
            text_bad_seq(o);
        if (!buf_status(&o->text))
            text_emit(o, o->text.len);
        rc = o->stopped;
    }
    if (buf_status(&o->text))
        rc = AISLE_ENOMEM;
    buf_free(&o->text);
    return rc;
}

int gen_feed_tokens(model_session *s, const int *tokens, int n,
                    const gen_params *p, gen_stats *st) {
    gen_stats local;
    int64_t t0 = gen_now_ns();
    int rc = 0;

    if (!st)
        st = &local;
    memset(st, 0, sizeof *st);
    for (int i = 0; i < n; i++) {
        st->reason = gen_interrupted(p);
        if (st->reason)
            break;
        rc = model_session_push(s, tokens[i]);
        if (rc)
            break;
        st->n_tokens++;
    }
    st->elapsed_ns = gen_now_ns() - t0;
    return rc;
}

int gen_feed_text(model_session *s, const tok_tokenizer *t, const char *text,
                  int bos, const gen_params *p, gen_stats *st) {
    size_t cap = tok_max_tokens(text), n;
    int *tokens = malloc(cap * sizeof *tokens);
    int rc;

    if (!tokens)
        return AISLE_ENOMEM;
    rc = tok_encode(t, text, bos, 0, tokens, cap, &n);
    if (rc == 0)
        rc = n > INT32_MAX ? AISLE_EINVAL
                           : gen_feed_tokens(s, tokens, (int)n, p, st);
    else
        rc = AISLE_ENOMEM;
    free(tokens);
    return rc;
}

int gen_run(model_session *s, const tok_tokenizer *t, const gen_params *p,
            gen_piece_fn cb, void *ud, gen_stats *st) {
    const model_config *c = model_get_config(model_session_model(s));
    gen_text o;
    gen_stats local;
    sampler sam;
    int64_t t0 = gen_now_ns();
    int rc, frc, prev = model_session_last(s);

    if (!st)
        st = &local;
    memset(st, 0, sizeof *st);
    if (prev < 0)
        return AISLE_EINVAL;
    rc = sampler_init(&sam, c->vocab_size, p->temperature, p->topp, p->topk,
                      p->seed);
    if (rc)
        return rc;
    gen_text_init(&o, p->stop, p->n_stop, cb, ud);

    for (;;) {
        const char *piece;
        size_t len;
        float *logits;
        int next;

        if (p->max_tokens > 0 && st->n_tokens >= p->max_tokens) {
            st->reason = GEN_STOP_BUDGET;
            break;
        }
        if ((st->reason = gen_interrupted(p)))
            break;
        logits = model_session_logits(s);
        if (!logits) {
            st->reason = GEN_STOP_CONTEXT;
            break;
        }
        next = sampler_sample(&sam, logits);
        if (next == tok_bos(t) || tok_is_eog(t, next)) {
            st->reason = GEN_STOP_EOS;
            break;
        }
        if ((rc = model_session_push(s, next)))
            break;
        st->n_tokens++;
        piece = tok_decode(t, prev, next, &len);
        prev = next;
        rc = gen_text_push(&o, piece, len);
        if (rc) {
            st->reason = rc > 0 ? rc : GEN_STOP_NONE;
            break;
        }
    }
    /* A callback stop while flushing changes nothing: it is over anyway. */
    frc = gen_text_finish(&o);
    if (rc >= 0)
        rc = frc < 0 ? frc : 0;
    sampler_free(&sam);
    st->elapsed_ns = gen_now_ns() - t0;
    return rc;
}
