/* prefill_test.c — a prompt run in batches (gemm.h's orders) against the
 * same tokens decoded one at a time (kern.h's), on the shared GGUF files
 * and stories260K: the top token agrees at >= 94 % of positions and the
 * mean |difference| of the logits is small next to their spread, both for
 * the prefill's own logits (the last row of each batch) and for a token
 * decoded on the KV cache the prefill left (every position); then
 * generation continues from a prefilled prompt. */
#include "tests/test.h"
#include "tests/model/util.h"

#include "model/gen.h"
#include "model/model.h"
#include "model/tok.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Agreement of logits with the decoded ones, summed over positions. */
typedef struct agree {
    int positions, top1;
    double mad, spread; /* mean |a - b| over the vocabulary; max - min of b */
} agree;

static void agree_add(agree *a, const float *got, const float *want, int n) {
    double d = 0.0;
    float lo = want[0], hi = want[0];
    for (int i = 0; i < n; i++) {
        d += fabs((double)got[i] - want[i]);
        lo = fminf(lo, want[i]);
        hi = fmaxf(hi, want[i]);
    }
    a->positions++;
    a->top1 += tu_argmax(got, n) == tu_argmax(want, n);
    a->mad += d / n;
    a->spread += hi - lo;
}

static void agree_check(const agree *a, const char *name, const char *what) {
    fprintf(stderr, "%s, %s: top-1 agrees at %d/%d (%.1f%%), mean |diff| "
            "%.5f, spread %.2f\n", name, what, a->top1, a->positions,
            100.0 * a->top1 / a->positions, a->mad / a->positions,
            a->spread / a->positions);
    TEST_CHECK(a->positions > 0);
    /* The goal is 98 %; on these random-weight files, where a last-bit
     * change flips int8 roundings downstream, the AMX forms measure
     * 95-98 % (model/README.md, Conformance), so this holds them at 94 %. */
    TEST_CHECK(a->top1 * 100 >= a->positions * 94);
    TEST_CHECK(a->mad < 0.005 * a->spread);
}

/* Counts the generated text's bytes. */
static int on_piece(void *ud, const char *text, size_t len) {
    (void)text;
    *(size_t *)ud += len;
    return 0;
}

/* Token ids: a file's NAME.tokens, or n made-up ones. */
static int *ids_for(const char *tokens_path, int vocab, int *n) {
    size_t size;
    char *text = tokens_path ? (char *)tu_read(tokens_path, &size) : NULL,
         *p, *end;
    int *ids = malloc(512 * sizeof *ids);

    *n = 0;
    if (!text) {
        for (; ids && *n < 150; (*n)++)
            ids[*n] = (*n * 37 + 11) % vocab;
        return ids;
    }
    text[size] = '\0';
    for (p = text; ids && *n < 512; p = end) {
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        ids[(*n)++] = (int)v;
    }
    free(text);
    return ids;
}

static void check_model(const char *path, const char *tokens_path,
                        const char *name, tpool *pool) {
    char err[256] = "";
    model *m = NULL;
    model_session *dec = NULL, *pre = NULL, *one = NULL;
    int vocab, n, *ids;
    float *want;
    agree own = {0}, cached = {0};

    if (model_load(path, &m, err, sizeof err))
        fprintf(stderr, "%s: %s\n", path, err);
    TEST_REQUIRE(m);
    vocab = model_get_config(m)->vocab_size;
    ids = ids_for(tokens_path, vocab, &n);
    want = malloc((size_t)n * (size_t)vocab * sizeof *want);
    TEST_REQUIRE(ids && want && n > 16);
    TEST_REQUIRE(model_session_new(m, pool, n + 16, &dec) == 0 &&
                 model_session_new(m, pool, n + 16, &pre) == 0 &&
                 model_session_new(m, pool, n + 16, &one) == 0);
    for (int p = 0; p < n; p++) { /* decoded one at a time */
        const float *lg = model_forward(dec, ids[p], p);
        TEST_REQUIRE(lg);
        memcpy(want + (size_t)p * vocab, lg, (size_t)vocab * sizeof *lg);
    }
    /* The whole prompt prefilled; then at every position p >= 15 the
     * prefill's own logits, as the last row of a batch of 16 (p - 15 .. p)
     * on the prefilled cache of the positions before it, and at every
     * position a token decoded on that cache. */
    TEST_REQUIRE(gen_feed_tokens(pre, ids, n, NULL, NULL) == 0);
    TEST_REQUIRE(model_session_logits(pre));
    for (int p = 0; p < n; p++) {
        TEST_REQUIRE(model_session_copy_prefix(one, pre, p) == 0 &&
                     model_session_push(one, ids[p]) == 0 &&
                     model_session_logits(one));
        agree_add(&cached, model_session_logits(one), want + (size_t)p * vocab,
                  vocab);
        if (p < 15)
            continue;
        TEST_REQUIRE(model_session_copy_prefix(one, pre, p - 15) == 0);
        TEST_REQUIRE(gen_feed_tokens(one, ids + p - 15, 16, NULL, NULL) == 0 &&
                     model_session_logits(one));
        agree_add(&own, model_session_logits(one), want + (size_t)p * vocab,
                  vocab);
    }
    agree_check(&own, name, "prefill logits");
    agree_check(&cached, name, "decoded on the prefilled cache");
    /* Generation goes on from the prefilled prompt. */
    if (model_gguf(m)) {
        tok_tokenizer *t = NULL;
        gen_params gp;
        gen_stats st;
        size_t bytes = 0;
        gen_params_init(&gp);
        gp.max_tokens = 8;
        TEST_REQUIRE(tok_load_gguf(model_gguf(m), &t, err, sizeof err) == 0);
        TEST_CHECK(gen_run(pre, t, &gp, on_piece, &bytes, &st) == 0);
        TEST_CHECK(st.reason == GEN_STOP_BUDGET || st.reason == GEN_STOP_EOS);
        TEST_CHECK(st.n_tokens >= 1 || st.reason == GEN_STOP_EOS);
        TEST_CHECK(model_session_pos(pre) == n + st.n_tokens);
        tok_free(t);
    }
    model_session_free(dec);
    model_session_free(pre);
    model_session_free(one);
    free(want);
    free(ids);
    model_free(m);
}

/* Every file at one thread; at two, stories260K and a Q8_0 and a Q4_K_M
 * file (the AMX forms split over the pool). */
static void check_all(tpool *pool) {
    static const char *const names[] = {"qwen2-Q8_0", "qwen2-Q4_K_M",
                                        "qwen2-F16", "smollm-Q8_0",
                                        "smollm-Q4_K_M", "tinyllama-Q8_0"};
    char path[4096], tokens[4096];

    if (tu_stories_dir())
        check_model(tu_stories("stories260K.bin"), NULL, "stories260K", pool);
    if (!tu_gguf_dir())
        return;
    for (size_t i = 0; i < (pool ? 2 : sizeof names / sizeof *names); i++) {
        snprintf(path, sizeof path, "%s/%s.gguf", tu_gguf_dir(), names[i]);
        snprintf(tokens, sizeof tokens, "%s/%s.tokens", tu_gguf_dir(),
                 names[i]);
        check_model(path, tokens, names[i], pool);
    }
}

static void test_one_thread(void) { check_all(NULL); }

static void test_two_threads(void) {
    tpool *pool = NULL;
    TEST_REQUIRE(tpool_new(2, &pool) == 0);
    check_all(pool);
    tpool_free(pool);
}

int main(void) {
    TEST_RUN(test_one_thread);
    TEST_RUN(test_two_threads);
    return test_summary();
}
