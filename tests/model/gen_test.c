/* gen_test.c — sampling and the stop conditions of gen_run: seeds,
 * budget, stop strings, callback stop, cancellation, deadline, full
 * context. Every outcome checked here is deterministic: waits are made to
 * happen inside callbacks, never raced against generation speed. */
#include "tests/test.h"
#include "tests/model/util.h"

#include "model/gen.h"
#include "model/sampler.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static model *m;
static tok_tokenizer *t;

typedef struct sink {
    char s[8192];
    size_t n;
    int calls;
    int stop_at;                 /* return 1 on this call (1-based) */
    atomic_int *cancel_at_flag;  /* set on call cancel_at */
    int cancel_at;
    int64_t sleep_past;          /* on call sleep_at, wait until this time */
    int sleep_at;
    const atomic_int *wait_flag; /* first call waits until it is set */
    atomic_int *started;         /* set on the first call */
} sink;

static int on_text(void *ud, const char *text, size_t len) {
    sink *k = ud;
    k->calls++;
    if (len > sizeof k->s - 1 - k->n)
        len = sizeof k->s - 1 - k->n;
    memcpy(k->s + k->n, text, len);
    k->n += len;
    k->s[k->n] = '\0';
    if (k->cancel_at_flag && k->calls == k->cancel_at)
        atomic_store(k->cancel_at_flag, 1);
    if (k->sleep_at && k->calls == k->sleep_at)
        while (gen_now_ns() < k->sleep_past)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    if (k->started && k->calls == 1) atomic_store(k->started, 1);
    if (k->wait_flag && k->calls == 1)
        while (!atomic_load(k->wait_flag))
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    return k->stop_at && k->calls == k->stop_at;
}

/* Feeds "Once upon a time" into a fresh session (ignoring p's stop
 * conditions) and runs gen with p. */
static int generate(const gen_params *p, sink *k, gen_stats *st, int max_seq) {
    model_session *s;
    int rc;
    if (model_session_new(m, NULL, max_seq, &s))
        return -1;
    rc = gen_feed_text(s, t, "Once upon a time", 1, NULL, NULL);
    if (!rc)
        rc = gen_run(s, t, p, on_text, k, st);
    model_session_free(s);
    return rc;
}

static const char greedy_start[] =
    ", there was a little girl named Lily. She loved to play outside";

static void test_greedy_budget(void) {
    gen_params p;
    gen_stats st;
    sink k = {0};

    gen_params_init(&p);
    p.max_tokens = 10;
    TEST_CHECK(generate(&p, &k, &st, 0) == 0);
    TEST_CHECK(st.reason == GEN_STOP_BUDGET && st.n_tokens == 10);
    TEST_CHECK(!strncmp(k.s, greedy_start, k.n) && k.n > 20);
}

static void test_seeded_sampling_reproduces(void) {
    gen_params p;
    gen_stats st;
    sink a = {0}, b = {0}, c = {0}, g = {0}, k1 = {0}, tiny = {0};

    gen_params_init(&p);
    p.max_tokens = 60;
    TEST_CHECK(generate(&p, &g, &st, 0) == 0);
    p.temperature = 1.0f;
    p.topp = 0.9f;
    p.seed = 42;
    TEST_CHECK(generate(&p, &a, &st, 0) == 0);
    TEST_CHECK(generate(&p, &b, &st, 0) == 0);
    TEST_CHECK_STR(a.s, b.s);
    p.seed = 4242;
    TEST_CHECK(generate(&p, &c, &st, 0) == 0);
    TEST_CHECK(strcmp(a.s, c.s) != 0);
    TEST_CHECK(strcmp(a.s, g.s) != 0);
    /* top-k 1 and a vanishing nucleus are greedy whatever the seed. */
    p.topk = 1;
    TEST_CHECK(generate(&p, &k1, &st, 0) == 0);
    TEST_CHECK_STR(k1.s, g.s);
    p.topk = 0;
    p.topp = 1e-6f;
    TEST_CHECK(generate(&p, &tiny, &st, 0) == 0);
    TEST_CHECK_STR(tiny.s, g.s);
}

static void test_sampler_distribution(void) {
    sampler s;
    float logits[4];
    int counts[4] = {0}, n = 20000;
    uint64_t state = 7;

    for (int i = 0; i < 1000; i++) {
        float f = sampler_rand_f32(&state);
        TEST_CHECK(f >= 0.0f && f < 1.0f);
    }
    /* probabilities 0.1 0.2 0.3 0.4 */
    TEST_REQUIRE(sampler_init(&s, 4, 1.0f, 0.0f, 0, 99) == 0);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 4; j++)
            logits[j] = logf(0.1f * (j + 1));
        counts[sampler_sample(&s, logits)]++;
    }
    for (int j = 0; j < 4; j++)
        TEST_CHECK(fabs(counts[j] / (double)n - 0.1 * (j + 1)) < 0.02);
    sampler_free(&s);
    /* top-k 2 keeps only the two likeliest; top-p 0.5 keeps 0.4 + 0.3. */
    for (int mode = 0; mode < 2; mode++) {
        TEST_REQUIRE(sampler_init(&s, 4, 1.0f, mode ? 0.5f : 0.0f,
                                  mode ? 0 : 2, 5) == 0);
        for (int i = 0; i < 2000; i++) {
            int id;
            for (int j = 0; j < 4; j++)
                logits[j] = logf(0.1f * (j + 1));
            id = sampler_sample(&s, logits);
            TEST_CHECK(id == 2 || id == 3);
        }
        sampler_free(&s);
    }
    TEST_CHECK(sampler_init(&s, 0, 1.0f, 0.9f, 0, 1) < 0);
    TEST_CHECK(sampler_init(&s, 4, -1.0f, 0.9f, 0, 1) < 0);
}

static void test_stop_strings(void) {
    static const char *const one[] = {"Lily"};
    static const char *const spanning[] = {"zebra", "girl named", "little"};
    gen_params p;
    gen_stats st;
    sink a = {0}, b = {0};

    gen_params_init(&p);
    p.max_tokens = 100;
    p.stop = one;
    p.n_stop = 1;
    TEST_CHECK(generate(&p, &a, &st, 0) == 0);
    TEST_CHECK(st.reason == GEN_STOP_STRING);
    TEST_CHECK_STR(a.s, ", there was a little girl named ");
    /* The earliest of several, here spanning several tokens. */
    p.stop = spanning;
    p.n_stop = 3;
    TEST_CHECK(generate(&p, &b, &st, 0) == 0);
    TEST_CHECK(st.reason == GEN_STOP_STRING);
    TEST_CHECK_STR(b.s, ", there was a ");
}

static void test_callback_stop(void) {
    gen_params p;
    gen_stats st;
    sink k = {0};

    gen_params_init(&p);
    k.stop_at = 3;
    TEST_CHECK(generate(&p, &k, &st, 0) == 0);
    TEST_CHECK(st.reason == GEN_STOP_CALLBACK && k.calls == 3);
    TEST_CHECK(st.n_tokens == 3);
}

static void test_cancel(void) {
    atomic_int flag = 1;
    gen_params p;
    gen_stats st;
    sink k = {0}, k2 = {0};

    gen_params_init(&p);
    p.cancel = &flag;
    /* Already cancelled: the prompt is not even fed. */
    {
        model_session *s;
        TEST_REQUIRE(model_session_new(m, NULL, 0, &s) == 0);
        TEST_CHECK(gen_feed_text(s, t, "Once upon a time", 1, &p, &st) == 0);
        TEST_CHECK(st.reason == GEN_STOP_CANCEL && st.n_tokens == 0);
        model_session_free(s);
    }
    atomic_store(&flag, 0);
    k.cancel_at_flag = &flag;
    k.cancel_at = 5;
    TEST_CHECK(generate(&p, &k, &st, 0) == 0);
    TEST_CHECK(st.reason == GEN_STOP_CANCEL && st.n_tokens == 5);
    atomic_store(&flag, 1);
    TEST_CHECK(generate(&p, &k2, &st, 0) == 0);
    TEST_CHECK(st.reason == GEN_STOP_CANCEL && st.n_tokens == 0 && k2.n == 0);
}

typedef struct cancel_pair {
    atomic_int started, flag;
} cancel_pair;

/* Cancels once the first piece is out, however slow the run up to it (a
 * fixed sleep could fire while the prompt is still being fed). */
static void *cancel_later(void *arg) {
    cancel_pair *cp = arg;
    while (!atomic_load(&cp->started)) nanosleep(&(struct timespec){0, 1000000}, NULL);
    atomic_store(&cp->flag, 1);
    return NULL;
}

static void test_cancel_from_another_thread(void) {
    cancel_pair cp = {0, 0};
    gen_params p;
    gen_stats st;
    sink k = {0};
    pthread_t th;

    gen_params_init(&p);
    p.cancel = &cp.flag;
    k.started = &cp.started;
    k.wait_flag = &cp.flag; /* the first piece waits for the other thread */
    TEST_REQUIRE(pthread_create(&th, NULL, cancel_later, &cp) == 0);
    TEST_CHECK(generate(&p, &k, &st, 0) == 0);
    pthread_join(th, NULL);
    TEST_CHECK(st.reason == GEN_STOP_CANCEL && st.n_tokens == 1);
}

static void test_deadline(void) {
    gen_params p;
    gen_stats st;
    sink k = {0}, k2 = {0};

    gen_params_init(&p);
    p.deadline_ns = gen_now_ns() - 1;
    TEST_CHECK(generate(&p, &k, &st, 0) == 0);
    TEST_CHECK(st.reason == GEN_STOP_DEADLINE && k.n == 0);
    /* The third piece takes until past the deadline. */
    p.deadline_ns = gen_now_ns() + 200 * 1000000LL;
    k2.sleep_at = 3;
    k2.sleep_past = p.deadline_ns + 1;
    TEST_CHECK(generate(&p, &k2, &st, 0) == 0);
    TEST_CHECK(st.reason == GEN_STOP_DEADLINE && st.n_tokens == 3);
}

static void test_context_and_continuation(void) {
    model_session *s;
    gen_params p;
    gen_stats st;
    sink k = {0}, k2 = {0};
    int n_prompt;

    gen_params_init(&p);
    TEST_REQUIRE(model_session_new(m, NULL, 24, &s) == 0);
    TEST_CHECK(gen_run(s, t, &p, on_text, &k, &st) == AISLE_EINVAL);
    TEST_CHECK(gen_feed_text(s, t, "Once upon a time", 1, &p, &st) == 0);
    n_prompt = st.n_tokens;
    TEST_CHECK(gen_run(s, t, &p, on_text, &k, &st) == 0);
    /* As llama2.c: positions 0..23 run, each predicting one token. */
    TEST_CHECK(st.reason == GEN_STOP_CONTEXT);
    TEST_CHECK(st.n_tokens == 24 - n_prompt + 1);
    model_session_free(s);

    /* A second turn continues the same sequence. */
    TEST_REQUIRE(model_session_new(m, NULL, 0, &s) == 0);
    p.max_tokens = 5;
    TEST_CHECK(gen_feed_text(s, t, "Once upon a time", 1, &p, NULL) == 0);
    TEST_CHECK(gen_run(s, t, &p, on_text, &k2, &st) == 0);
    TEST_CHECK(gen_feed_text(s, t, " The dog", 0, &p, NULL) == 0);
    TEST_CHECK(gen_run(s, t, &p, on_text, &k2, &st) == 0);
    TEST_CHECK(st.reason == GEN_STOP_BUDGET && st.n_tokens == 5);
    TEST_CHECK(model_session_pos(s) > 10);
    /* Without a callback the tokens are sampled all the same. */
    TEST_CHECK(gen_run(s, t, &p, NULL, NULL, &st) == 0);
    TEST_CHECK(st.reason == GEN_STOP_BUDGET && st.n_tokens == 5);
    model_session_free(s);
}

/* ------------------------------------------------------------ gen_text */

static void test_text_stream_utf8(void) {
    gen_text o;
    sink k = {0};

    gen_text_init(&o, NULL, 0, on_text, &k);
    /* A character split over three byte tokens arrives whole. */
    TEST_CHECK(gen_text_push(&o, "\xe2", 1) == 0 && k.n == 0);
    TEST_CHECK(gen_text_push(&o, "\x82", 1) == 0 && k.n == 0);
    TEST_CHECK(gen_text_push(&o, "\xac", 1) == 0);
    TEST_CHECK_STR(k.s, "\xe2\x82\xac");
    /* Stray continuation, truncated sequence, invalid lead: U+FFFD each. */
    TEST_CHECK(gen_text_push(&o, "\x80", 1) == 0);
    TEST_CHECK(gen_text_push(&o, "\xc3", 1) == 0);
    TEST_CHECK(gen_text_push(&o, "a", 1) == 0);
    TEST_CHECK(gen_text_push(&o, "\xff", 1) == 0);
    /* A lone control byte is dropped; whitespace is text. */
    TEST_CHECK(gen_text_push(&o, "\x01", 1) == 0);
    TEST_CHECK(gen_text_push(&o, "\n", 1) == 0);
    /* A surrogate (ED A0 80) is not UTF-8: one U+FFFD for the lead, one
     * for each orphaned continuation byte. */
    TEST_CHECK(gen_text_push(&o, "\xed\xa0\x80", 3) == 0);
    TEST_CHECK(gen_text_push(&o, "\xf0\x9f", 2) == 0);
    TEST_CHECK(gen_text_finish(&o) == 0);
    TEST_CHECK_STR(k.s, "\xe2\x82\xac\xef\xbf\xbd\xef\xbf\xbd"
                        "a\xef\xbf\xbd\n"
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                        "\xef\xbf\xbd");
}

static void test_text_stream_stops(void) {
    static const char *const stops[] = {"END", "\n\n"};
    gen_text o;
    sink k = {0}, k2 = {0}, k3 = {0};

    gen_text_init(&o, stops, 2, on_text, &k);
    TEST_CHECK(gen_text_push(&o, "abcE", 4) == 0);
    TEST_CHECK_STR(k.s, "abc"); /* "E" might start "END" */
    TEST_CHECK(gen_text_push(&o, "x E", 3) == 0);
    TEST_CHECK_STR(k.s, "abcEx ");
    TEST_CHECK(gen_text_push(&o, "N", 1) == 0);
    TEST_CHECK(gen_text_push(&o, "Dtail", 5) == GEN_STOP_STRING);
    TEST_CHECK(gen_text_push(&o, "more", 4) == GEN_STOP_STRING);
    TEST_CHECK(gen_text_finish(&o) == GEN_STOP_STRING);
    TEST_CHECK_STR(k.s, "abcEx ");

    /* Held text that never completes a stop string is delivered. */
    gen_text_init(&o, stops, 2, on_text, &k2);
    TEST_CHECK(gen_text_push(&o, "line\n", 5) == 0);
    TEST_CHECK_STR(k2.s, "line");
    TEST_CHECK(gen_text_finish(&o) == 0);
    TEST_CHECK_STR(k2.s, "line\n");

    /* The callback can end the stream. */
    k3.stop_at = 2;
    gen_text_init(&o, NULL, 0, on_text, &k3);
    TEST_CHECK(gen_text_push(&o, "a", 1) == 0);
    TEST_CHECK(gen_text_push(&o, "b", 1) == GEN_STOP_CALLBACK);
    TEST_CHECK(gen_text_finish(&o) == GEN_STOP_CALLBACK);
    TEST_CHECK(k3.calls == 2);
}

int main(void) {
    char err[256];
    if (tu_stories_dir()) {
        if (model_load(tu_stories("stories260K.bin"), &m, err, sizeof err) ||
            tok_load_file(tu_stories("tok512.bin"), 512, &t, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        TEST_RUN(test_greedy_budget);
        TEST_RUN(test_seeded_sampling_reproduces);
        TEST_RUN(test_stop_strings);
        TEST_RUN(test_callback_stop);
        TEST_RUN(test_cancel);
        TEST_RUN(test_cancel_from_another_thread);
        TEST_RUN(test_deadline);
        TEST_RUN(test_context_and_continuation);
        tok_free(t);
        model_free(m);
    }
    TEST_RUN(test_sampler_distribution);
    TEST_RUN(test_text_stream_utf8);
    TEST_RUN(test_text_stream_stops);
    return test_summary();
}
