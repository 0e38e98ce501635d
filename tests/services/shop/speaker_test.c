/* Tests for services/shop/speaker on a shared GGUF chat model (random
 * weights, so the text is noise, but the tokens are what matter): five
 * answers written at once come out exactly as each does alone (the batch
 * never changes a sequence), they share decoding steps, the system turn
 * is prefilled, and a budget, a stop from the callback and a deadline end
 * an answer. */
#include "services/shop/speaker.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "services/base/status.h"
#include "tests/model/util.h"
#include "tests/test.h"

#define N_CALLS 5

typedef struct answer {
    speaker *sp;
    char request[64];
    char text[4096];
    size_t len;
    int stop_after; /* pieces; 0: never */
    int pieces;
    gen_stats st;
    int rc;
} answer;

static int collect(void *ud, const char *text, size_t len) {
    answer *a = ud;
    if (a->len + len < sizeof(a->text)) {
        memcpy(a->text + a->len, text, len);
        a->len += len;
    }
    return a->stop_after && ++a->pieces >= a->stop_after;
}

static void *say(void *arg) {
    answer *a = arg;
    gen_params p;
    gen_params_init(&p); /* greedy: the same tokens every time */
    p.max_tokens = 12;
    a->rc = speaker_say(a->sp, a->request, &p, collect, a, &a->st);
    return NULL;
}

static void test_batched_equals_alone(void) {
    char path[4096], err[256];
    model *m;
    tok_tokenizer *t;
    speaker *sp;
    answer solo[N_CALLS], together[N_CALLS];
    pthread_t th[N_CALLS];
    unsigned long steps, seqs;
    snprintf(path, sizeof(path), "%s/qwen2-Q8_0.gguf", tu_gguf_dir());
    TEST_REQUIRE(model_load(path, &m, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(tok_load_gguf(model_gguf(m), &t, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(speaker_new(m, t, NULL, "Answer briefly.", NULL, &sp, err, sizeof(err)) ==
                 AISLE_OK);
    TEST_CHECK_STR(speaker_template(sp), "chatml");
    for (int i = 0; i < N_CALLS; i++) {
        memset(&solo[i], 0, sizeof(solo[i]));
        solo[i].sp = sp;
        snprintf(solo[i].request, sizeof(solo[i].request), "Shopper %d wants shoes", i);
        together[i] = solo[i];
        say(&solo[i]);
        TEST_CHECK(solo[i].rc == AISLE_OK && solo[i].st.n_tokens > 0);
    }
    speaker_counts(sp, &steps, &seqs);
    unsigned long solo_steps = steps;
    for (int i = 0; i < N_CALLS; i++) pthread_create(&th[i], NULL, say, &together[i]);
    for (int i = 0; i < N_CALLS; i++) pthread_join(th[i], NULL);
    speaker_counts(sp, &steps, &seqs);
    for (int i = 0; i < N_CALLS; i++) {
        TEST_CHECK(together[i].rc == AISLE_OK);
        TEST_CHECK(together[i].st.n_tokens == solo[i].st.n_tokens);
        TEST_CHECK(together[i].len == solo[i].len &&
                   memcmp(together[i].text, solo[i].text, solo[i].len) == 0);
    }
    /* Some steps carried more than one answer. */
    TEST_CHECK(steps - solo_steps < seqs - solo_steps || N_CALLS == 1);

    /* The callback's stop and the deadline end an answer early. */
    answer a = solo[0];
    a.len = 0;
    a.stop_after = 2;
    say(&a);
    TEST_CHECK(a.rc == AISLE_OK && a.st.reason == GEN_STOP_CALLBACK && a.pieces == 2);
    gen_params p;
    gen_params_init(&p);
    p.max_tokens = 50;
    p.deadline_ns = gen_now_ns() - 1;
    a.len = 0;
    a.stop_after = 0;
    TEST_CHECK(speaker_say(sp, "late", &p, collect, &a, &a.st) == AISLE_OK);
    TEST_CHECK(a.st.reason == GEN_STOP_DEADLINE && a.st.n_tokens == 0);
    speaker_free(sp);
    tok_free(t);
    model_free(m);
}

static void test_unknown_template_names_the_flag(void) {
    char path[4096], err[256];
    model *m;
    tok_tokenizer *t;
    speaker *sp;
    snprintf(path, sizeof(path), "%s/qwen2-Q8_0.gguf", tu_gguf_dir());
    TEST_REQUIRE(model_load(path, &m, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(tok_load_gguf(model_gguf(m), &t, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(speaker_new(m, t, NULL, "x", "vicuna", &sp, err, sizeof(err)) == AISLE_EINVAL);
    TEST_CHECK(strstr(err, "--chat-template") != NULL);
    tok_free(t);
    model_free(m);
}

int main(void) {
    TEST_RUN(test_batched_equals_alone);
    TEST_RUN(test_unknown_template_names_the_flag);
    return test_summary();
}
