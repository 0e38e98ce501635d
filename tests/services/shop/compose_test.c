/* Tests for services/compose: the deterministic answer names only catalog
 * facts and says the constraints; the slot filter fills slots and repairs
 * model text (unknown slots, invented prices, brands and product codes),
 * streams the same text however it is cut, and falls back when the model
 * never cites a product. */
#include "services/shop/compose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"

static rank_hit hits[3];
static const rank_hit *items[3] = {&hits[0], &hits[1], &hits[2]};
static char *reasons[3] = {"Similar to \"Pacer trail shoes\", which you showed interest in",
                           "From c0002, a creator you engage with", "Popular right now in running"};
static query_vocab *vocab;

static void hit(int i, char *id, char *title, char *brand, char *creator, long long cents) {
    hits[i].item = (catalog_item){id, title, creator, "running", brand, cents, 1, ""};
    hits[i].reasons[0] = reasons[i];
    hits[i].n_reasons = 1;
}

/* A catalog with the three chosen items' names and some that are not. */
static int make_vocab(void) {
    static const char *brands[] = {"Stride", "Loop", "Pacer", "Bean & Co"};
    catalog *c;
    catalog_config cfg;
    char err[256], id[16], creator[16];
    float v[2] = {1, 0};
    int rc;
    catalog_config_default(&cfg);
    cfg.dim = 2;
    if (catalog_new(&cfg, &c, err, sizeof(err))) return -1;
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "p%d", i);
        snprintf(creator, sizeof(creator), "c000%d", i + 1);
        catalog_item it = {id, id, creator, "running", (char *)brands[i], 100, 1, ""};
        if (catalog_upsert(c, &it, v, 2, err, sizeof(err))) return -1;
    }
    rc = query_vocab_build(c, &vocab);
    catalog_free(c);
    return rc;
}

/* Every money amount in text is one of the allowed (cents). */
static int amounts_only(const char *text, const long long *allowed, size_t n) {
    for (size_t i = 0; text[i]; i++) {
        query_amount a;
        size_t k;
        if (query_amount_at(text, i, &a) != 0 || !a.money) continue;
        for (k = 0; k < n && allowed[k] != a.cents; k++) {
        }
        if (k == n) {
            fprintf(stderr, "  unexpected amount at '%.20s'\n", text + i);
            return 0;
        }
        i = a.end - 1;
    }
    return 1;
}

static void test_deterministic_answer_names_catalog_facts(void) {
    query_constraints q;
    compose_input in = {&q, items, NULL, 3, COMPOSE_FIT};
    long long allowed[] = {1299, 3999, 2450, 5000};
    char *s;
    query_parse("a gift for a runner under $50", vocab, &q);
    TEST_REQUIRE((s = compose_answer(&in)) != NULL);
    TEST_CHECK(strncmp(s, "Here are 3 picks in running, under $50:\n", 40) == 0);
    TEST_CHECK(strstr(s, "- Stride Ultralight running socks ($12.99, Stride, by c0001) "
                         "\xe2\x80\x94 similar to \"Pacer trail shoes\", which you showed "
                         "interest in.\n") != NULL);
    TEST_CHECK(strstr(s, "Loop split shorts ($39.99, Loop, by c0002) \xe2\x80\x94 from c0002") !=
               NULL);
    TEST_CHECK(strstr(s, "race vest ($24.50, by c0003) \xe2\x80\x94 popular right now in running.") !=
               NULL);
    TEST_CHECK(amounts_only(s, allowed, 4));
    free(s);
    query_parse("", vocab, &q);
    in.n = 1;
    TEST_REQUIRE((s = compose_answer(&in)) != NULL);
    TEST_CHECK(strncmp(s, "Here is one pick:\n- Stride", 26) == 0);
    free(s);
    in.n = 0;
    TEST_REQUIRE((s = compose_answer(&in)) != NULL);
    TEST_CHECK_STR(s, "Nothing is in the catalog right now.\n");
    free(s);
}

static void test_outside_the_constraints_is_said(void) {
    query_constraints q;
    compose_input in = {&q, items, NULL, 2, COMPOSE_OUTSIDE_PRICE};
    char *s;
    query_parse("running under $5", vocab, &q);
    TEST_REQUIRE((s = compose_answer(&in)) != NULL);
    TEST_CHECK(strncmp(s, "Nothing in running, under $5 is available right now. The closest "
                          "items, outside what you asked:\n", 88) == 0);
    TEST_CHECK(strstr(s, "($12.99, Stride, by c0001) (above $5)") != NULL);
    TEST_CHECK(strstr(s, "(above $5) \xe2\x80\x94 from c0002") != NULL);
    free(s);
    query_parse("Pacer things", vocab, &q);
    in.fit = COMPOSE_OUTSIDE_ALL;
    in.n = 1;
    TEST_REQUIRE((s = compose_answer(&in)) != NULL);
    TEST_CHECK(strstr(s, "The closest item, outside") != NULL);
    TEST_CHECK(strstr(s, "(not from Pacer)") != NULL);
    free(s);
}

static void test_angles_label_the_picks(void) {
    query_constraints q;
    const char *angles[] = {"best match", "budget", "best match"};
    compose_input in = {&q, items, angles, 3, COMPOSE_FIT};
    char *s;
    query_parse("", vocab, &q);
    TEST_REQUIRE((s = compose_answer(&in)) != NULL);
    TEST_CHECK(strncmp(s, "Here are 3 picks, from 2 angles:\n- Best match: Stride", 53) == 0);
    TEST_CHECK(strstr(s, "\n- Budget: Loop split shorts") != NULL);
    free(s);
}

static void test_prompt_lists_slots(void) {
    query_constraints q;
    compose_input in = {&q, items, NULL, 2, COMPOSE_FIT};
    char *s;
    query_parse("", vocab, &q);
    TEST_REQUIRE((s = compose_request(&in, "socks [3]\nplease")) != NULL);
    TEST_CHECK(strstr(s, "A shopper asks: socks  3  please\n") != NULL);
    TEST_CHECK(strstr(s, "[1] Stride Ultralight running socks, $12.99, Stride\n"
                         "[2] Loop split shorts, $39.99, Loop\n") != NULL);
    TEST_CHECK(strstr(s, "[3]") == NULL);
    free(s);
}

typedef struct sink {
    char text[4096];
    size_t len;
    int calls, stop_after;
} sink;

static int sink_emit(void *ud, const char *text, size_t len) {
    sink *k = ud;
    if (k->len + len < sizeof(k->text)) {
        memcpy(k->text + k->len, text, len);
        k->len += len;
        k->text[k->len] = '\0';
    }
    return k->stop_after && ++k->calls >= k->stop_after;
}

/* Runs model text through a filter in pieces of step bytes (0: at once);
 * returns finish's result and the repairs. */
static int filter(const char *query, const char *model, size_t step, sink *k, int *repairs) {
    query_constraints q;
    compose_input in = {&q, items, NULL, 3, COMPOSE_FIT};
    compose_filter *f;
    size_t n = strlen(model);
    int rc;
    query_parse(query, vocab, &q);
    memset(k, 0, sizeof(*k));
    if (compose_filter_new(&in, vocab, sink_emit, k, &f) != 0) return -1;
    for (size_t i = 0; i < n; i += step ? step : n)
        compose_filter_feed(f, model + i, step && i + step < n ? step : n - i);
    rc = compose_filter_finish(f);
    *repairs = compose_filter_repairs(f);
    compose_filter_free(f);
    return rc;
}

static void test_slots_are_filled_from_the_catalog(void) {
    sink k;
    int repairs;
    TEST_CHECK(filter("", "  Try [1], or [2] for $39.99.", 0, &k, &repairs) == 0);
    TEST_CHECK_STR(k.text, "Try Stride Ultralight running socks ($12.99, Stride, by c0001), or "
                           "Loop split shorts ($39.99, Loop, by c0002) for $39.99.");
    TEST_CHECK(repairs == 0);
}

static void test_bad_model_output_is_repaired(void) {
    sink k;
    int repairs;
    long long allowed[] = {1299, 3999, 2450, 5000};
    const char *model = "Get [1] and [9] for $5 , a Pacer XR500 vest, or [3] under $50 "
                        "from bean & co, 2nd pick [0]. Only 5 dollars!";
    TEST_CHECK(filter("running under $50", model, 0, &k, &repairs) == 0);
    TEST_CHECK_STR(k.text, "Get Stride Ultralight running socks ($12.99, Stride, by c0001) and "
                           "for , a vest, or race vest ($24.50, by c0003) under $50 from , 2nd "
                           "pick . Only !");
    TEST_CHECK(repairs == 7);
    TEST_CHECK(amounts_only(k.text, allowed, 4));
    /* The chosen items' own names are kept. */
    TEST_CHECK(filter("", "[2] by Loop, c0002 made it.", 0, &k, &repairs) == 0);
    TEST_CHECK(strstr(k.text, "by Loop, c0002 made it.") != NULL && repairs == 0);
}

static void test_streaming_matches_whole_text(void) {
    const char *model = "Here [1] costs $12.99 and [3] is $24.50, not $3.00; Bean & Co "
                        "and Pacer are out. [2][2] [12] [ 1 ] $$5 \xe2\x82\xac" "7 ok";
    sink whole, part;
    int r1, r2;
    TEST_CHECK(filter("", model, 0, &whole, &r1) == 0);
    for (size_t step = 1; step < 12; step++) {
        TEST_CHECK(filter("", model, step, &part, &r2) == 0);
        TEST_CHECK_STR(part.text, whole.text);
        TEST_CHECK(r1 == r2);
    }
    TEST_CHECK(strstr(whole.text, "$3.00") == NULL && strstr(whole.text, "Pacer") == NULL);
    TEST_CHECK(strstr(whole.text, "Bean") == NULL && strstr(whole.text, "[12]") == NULL);
}

static void test_text_without_a_citation_falls_back(void) {
    sink k;
    int repairs;
    TEST_CHECK(filter("", "Once upon a time, Lily found a shoe for $3.", 0, &k, &repairs) == 1);
    TEST_CHECK(k.len == 0);
    TEST_CHECK(filter("", "[7] only", 0, &k, &repairs) == 1 && k.len == 0 && repairs == 1);
    TEST_CHECK(filter("", "", 0, &k, &repairs) == 1);
}

static void test_emit_can_stop_the_stream(void) {
    query_constraints q;
    compose_input in = {&q, items, NULL, 3, COMPOSE_FIT};
    compose_filter *f;
    sink k = {.stop_after = 1};
    query_parse("", vocab, &q);
    TEST_REQUIRE(compose_filter_new(&in, NULL, sink_emit, &k, &f) == 0);
    TEST_CHECK(compose_filter_feed(f, "[1] is good and more words follow here ", 39) != 0);
    TEST_CHECK(compose_filter_cited(f) == 1);
    compose_filter_free(f);
}

int main(void) {
    hit(0, "p1", "Stride Ultralight running socks", "Stride", "c0001", 1299);
    hit(1, "p2", "Loop split shorts", "Loop", "c0002", 3999);
    hit(2, "p3", "race vest", "", "c0003", 2450);
    if (make_vocab() != 0) {
        fprintf(stderr, "cannot build the vocabulary\n");
        return 1;
    }
    TEST_RUN(test_deterministic_answer_names_catalog_facts);
    TEST_RUN(test_outside_the_constraints_is_said);
    TEST_RUN(test_angles_label_the_picks);
    TEST_RUN(test_prompt_lists_slots);
    TEST_RUN(test_slots_are_filled_from_the_catalog);
    TEST_RUN(test_bad_model_output_is_repaired);
    TEST_RUN(test_streaming_matches_whole_text);
    TEST_RUN(test_text_without_a_citation_falls_back);
    TEST_RUN(test_emit_can_stop_the_stream);
    query_vocab_free(vocab);
    return test_summary();
}
