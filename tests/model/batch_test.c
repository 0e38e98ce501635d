/* batch_test.c — the serving API: sequences decoded together in one
 * batch give each one exactly the logits it gets alone, and a session
 * started from a copied prefix (a prefilled system prompt) continues
 * exactly like one that ran the whole prompt. On stories260K and on a
 * qwen2-shaped GGUF (biases, neox RoPE, GQA) from the shared data. */
#include "tests/test.h"
#include "tests/model/util.h"

#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSEQ 5
#define STEPS 12

static float max_diff(const float *a, const float *b, int n) {
    float d = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(a[i] - b[i]) > d)
            d = fabsf(a[i] - b[i]);
    return d;
}

/* Greedy continuations of NSEQ different prompts, alone and batched. */
static void check_batch(const model *m, tpool *pool) {
    int vocab = model_get_config(m)->vocab_size;
    model_session *alone[NSEQ], *tog[NSEQ];
    model_batch *b = NULL;
    float *want = malloc((size_t)NSEQ * STEPS * vocab * sizeof(float));
    float worst = 0.0f;

    TEST_REQUIRE(want && model_batch_new(m, pool, &b) == 0);
    for (int i = 0; i < NSEQ; i++) {
        TEST_REQUIRE(model_session_new(m, pool, 64, &alone[i]) == 0);
        TEST_REQUIRE(model_session_new(m, pool, 64, &tog[i]) == 0);
        /* Prompts of different lengths: 1 + i tokens. */
        for (int k = 0; k <= i; k++) {
            TEST_CHECK(model_session_push(alone[i], (7 * k + 3 * i + 1) % vocab) == 0);
            TEST_CHECK(model_session_push(tog[i], (7 * k + 3 * i + 1) % vocab) == 0);
        }
        for (int s = 0; s < STEPS; s++) {
            const float *lg = model_session_logits(alone[i]);
            TEST_REQUIRE(lg);
            memcpy(want + ((size_t)i * STEPS + s) * vocab, lg,
                   (size_t)vocab * sizeof(float));
            TEST_CHECK(model_session_push(alone[i], tu_argmax(lg, vocab)) == 0);
        }
    }
    {
        int tokens[NSEQ];
        /* The prompts' predictions, then STEPS - 1 steps together. */
        for (int i = 0; i < NSEQ; i++) {
            const float *lg = model_session_logits(tog[i]);
            TEST_REQUIRE(lg);
            worst = fmaxf(worst, max_diff(lg, want + (size_t)i * STEPS * vocab, vocab));
            tokens[i] = tu_argmax(lg, vocab);
        }
        for (int s = 1; s < STEPS; s++) {
            TEST_REQUIRE(model_batch_step(b, tog, tokens, NSEQ) == 0);
            for (int i = 0; i < NSEQ; i++) {
                const float *lg = model_session_logits(tog[i]);
                worst = fmaxf(worst, max_diff(lg, want + ((size_t)i * STEPS + s) * vocab, vocab));
                tokens[i] = tu_argmax(lg, vocab);
            }
        }
    }
    TEST_CHECK(worst < 1e-4f);
    if (worst >= 1e-4f)
        fprintf(stderr, "batched logits differ by %g\n", worst);
    /* The same session twice in a step, or a bad token, changes nothing. */
    {
        model_session *two[2] = {tog[0], tog[0]};
        int t2[2] = {1, 2}, pos = model_session_pos(tog[0]);
        TEST_CHECK(model_batch_step(b, two, t2, 2) == AISLE_EINVAL);
        t2[1] = vocab;
        two[1] = tog[1];
        TEST_CHECK(model_batch_step(b, two, t2, 2) == AISLE_EINVAL);
        TEST_CHECK(model_session_pos(tog[0]) == pos);
    }
    for (int i = 0; i < NSEQ; i++) {
        model_session_free(alone[i]);
        model_session_free(tog[i]);
    }
    model_batch_free(b);
    free(want);
}

/* A system prompt prefilled once and copied, then a user part. */
static void check_prefix(const model *m, tpool *pool) {
    int vocab = model_get_config(m)->vocab_size, nsys = 21, nuser = 9;
    model_session *sys, *a, *full;
    float worst;

    TEST_REQUIRE(model_session_new(m, pool, 64, &sys) == 0);
    TEST_REQUIRE(model_session_new(m, pool, 64, &a) == 0);
    TEST_REQUIRE(model_session_new(m, pool, 64, &full) == 0);
    for (int k = 0; k < nsys; k++) {
        TEST_CHECK(model_session_push(sys, (11 * k + 5) % vocab) == 0);
        TEST_CHECK(model_session_push(full, (11 * k + 5) % vocab) == 0);
    }
    /* Both run the system prompt as one batch (a prompt's batch sums in an
     * order of its own, model/gemm.h), then the user part as another. */
    TEST_REQUIRE(model_session_logits(sys) && model_session_logits(full));
    TEST_CHECK(model_session_copy_prefix(a, sys, nsys) == 0);
    TEST_CHECK(model_session_pos(a) == nsys);
    /* The whole prefix: its prediction comes along. */
    TEST_CHECK(model_session_logits(a) &&
               max_diff(model_session_logits(a), model_session_logits(sys), vocab) == 0.0f);
    for (int k = 0; k < nuser; k++) {
        TEST_CHECK(model_session_push(a, (13 * k + 2) % vocab) == 0);
        TEST_CHECK(model_session_push(full, (13 * k + 2) % vocab) == 0);
    }
    worst = max_diff(model_session_logits(a), model_session_logits(full), vocab);
    TEST_CHECK(worst < 1e-4f);
    TEST_CHECK(model_session_copy_prefix(a, sys, nsys + 1) == AISLE_EINVAL);
    model_session_free(sys);
    model_session_free(a);
    model_session_free(full);
}

static void check_model(const char *path) {
    char err[256] = "";
    model *m = NULL;
    tpool *pool = NULL;

    if (model_load(path, &m, err, sizeof err))
        fprintf(stderr, "%s: %s\n", path, err);
    TEST_REQUIRE(m);
    check_batch(m, NULL);
    check_prefix(m, NULL);
    TEST_REQUIRE(tpool_new(2, &pool) == 0);
    check_batch(m, pool);
    check_prefix(m, pool);
    tpool_free(pool);
    model_free(m);
}

static void test_stories(void) {
    if (tu_stories_dir())
        check_model(tu_stories("stories260K.bin"));
}

static void test_qwen2(void) {
    char path[4096];
    if (!tu_gguf_dir())
        return;
    snprintf(path, sizeof path, "%s/qwen2-Q8_0.gguf", tu_gguf_dir());
    check_model(path);
    snprintf(path, sizeof path, "%s/qwen2-Q4_K_M.gguf", tu_gguf_dir());
    check_model(path);
}

int main(void) {
    TEST_RUN(test_stories);
    TEST_RUN(test_qwen2);
    return test_summary();
}
