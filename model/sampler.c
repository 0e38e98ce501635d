/* sampler.c — greedy, multinomial, top-k and top-p selection.
 *
 * Candidates are ordered by probability and then by id so that equal
 * probabilities never make a seeded run depend on qsort's tie order. */
#include "model/sampler.h"

#include "model/kern.h"
#include "services/base/status.h"

#include <errno.h>
#include <stdlib.h>

#define SAMPLER_SEED0 0x9e3779b97f4a7c15ull

int sampler_init(sampler *s, int vocab_size, float temperature, float topp,
                 int topk, uint64_t seed) {
    s->cand = NULL;
    if (vocab_size < 1 || !(temperature >= 0.0f))
        return AISLE_EINVAL;
    s->vocab_size = vocab_size;
    s->temperature = temperature;
    s->topp = topp;
    s->topk = topk;
    s->rng = seed ? seed : SAMPLER_SEED0;
    s->cand = malloc((size_t)vocab_size * sizeof *s->cand);
    return s->cand ? 0 : AISLE_ENOMEM;
}

void sampler_free(sampler *s) {
    free(s->cand);
    s->cand = NULL;
}

uint32_t sampler_rand_u32(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545f4914f6cdd1dull) >> 32);
}

float sampler_rand_f32(uint64_t *state) {
    return (sampler_rand_u32(state) >> 8) / 16777216.0f;
}

int sampler_argmax(const float *v, int n) { return kern_argmax(v, n); }

/* a ranks before b: more probable, or as probable with a smaller id. */
static int prob_before(const sampler_prob *a, const sampler_prob *b) {
    return a->p > b->p || (a->p == b->p && a->id < b->id);
}

static int prob_cmp(const void *a, const void *b) {
    return prob_before(a, b) ? -1 : prob_before(b, a) ? 1 : 0;
}

/* Keeps the k best of probs in c[0..k) using a heap whose root is the worst
 * kept candidate. */
static void top_k(const float *probs, int n, int k, sampler_prob *c) {
    for (int i = 0; i < n; i++) {
        sampler_prob x = {probs[i], i};
        int at;
        if (i < k) {
            at = i; /* sift up */
            while (at > 0 && prob_before(&c[(at - 1) / 2], &x)) {
                c[at] = c[(at - 1) / 2];
                at = (at - 1) / 2;
            }
            c[at] = x;
            continue;
        }
        if (!prob_before(&x, &c[0]))
            continue;
        at = 0; /* replace the root, sift down */
        for (;;) {
            int l = 2 * at + 1, r = l + 1, worst = at;
            const sampler_prob *w = &x;
            if (l < k && prob_before(w, &c[l])) {
                worst = l;
                w = &c[l];
            }
            if (r < k && prob_before(w, &c[r]))
                worst = r;
            if (worst == at)
                break;
            c[at] = c[worst];
            at = worst;
        }
        c[at] = x;
    }
}

/* Draws from sorted candidates c[0..n), cut to the shortest prefix whose
 * mass exceeds topp (all of them when topp is off), as llama2.c does. */
static int draw_sorted(const sampler_prob *c, int n, float topp, float coin) {
    float cum = 0.0f, cdf = 0.0f, r;
    int last = n - 1;

    for (int i = 0; i < n; i++) {
        cum += c[i].p;
        if (topp > 0.0f && topp < 1.0f && cum > topp) {
            last = i;
            break;
        }
    }
    r = coin * cum;
    for (int i = 0; i <= last; i++) {
        cdf += c[i].p;
        if (r < cdf)
            return c[i].id;
    }
    return c[last].id;
}

int sampler_sample(sampler *s, float *logits) {
    int n = s->vocab_size, m = 0;
    float coin;

    if (s->temperature == 0.0f || n == 1)
        return sampler_argmax(logits, n);
    for (int i = 0; i < n; i++)
        logits[i] /= s->temperature;
    kern_softmax(logits, n);
    coin = sampler_rand_f32(&s->rng);

    if (s->topk > 0 && s->topk < n) {
        m = s->topk;
        top_k(logits, n, m, s->cand);
    } else if (s->topp > 0.0f && s->topp < 1.0f) {
        /* Tokens below this cannot be in the nucleus; dropping them first
         * keeps the sort short (llama2.c's cutoff). */
        const float cutoff = (1.0f - s->topp) / (float)(n - 1);
        for (int i = 0; i < n; i++)
            if (logits[i] >= cutoff)
                s->cand[m++] = (sampler_prob){logits[i], i};
        if (m == 0)
            return sampler_argmax(logits, n);
    } else {
        float cdf = 0.0f;
        for (int i = 0; i < n; i++) {
            cdf += logits[i];
            if (coin < cdf)
                return i;
        }
        return n - 1;
    }
    qsort(s->cand, (size_t)m, sizeof *s->cand, prob_cmp);
    return draw_sorted(s->cand, m, s->topp, coin);
}
