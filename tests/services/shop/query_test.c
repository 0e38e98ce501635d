/* Tests for services/query: price phrasings in three currencies, catalog
 * categories and brands (stems, negation), garbage, huge numbers and
 * non-ASCII text, and the words that say the constraints back. */
#include "services/shop/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"

static catalog *make_catalog(void) {
    static const struct {
        const char *cat, *brand, *creator;
    } rows[] = {{"running", "Stride", "c0001"}, {"coffee", "Bean & Co", "c0002"},
                {"yoga", "Lotus", "c0003"},     {"books", "Pagebound", "c0004"},
                {"camping", "Ridge", "c0005"},  {"running", "Pacer", "c0001"}};
    catalog *c;
    catalog_config cfg;
    char err[256], id[16];
    float v[2] = {1, 0};
    catalog_config_default(&cfg);
    cfg.dim = 2;
    if (catalog_new(&cfg, &c, err, sizeof(err))) return NULL;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        snprintf(id, sizeof(id), "p%zu", i);
        catalog_item it = {id, id, (char *)rows[i].creator, (char *)rows[i].cat,
                           (char *)rows[i].brand, 1000, 1, ""};
        if (catalog_upsert(c, &it, v, 2, err, sizeof(err))) return NULL;
    }
    return c;
}

static query_vocab *vocab;

static query_constraints parse(const char *text) {
    query_constraints q;
    query_parse(text, vocab, &q);
    return q;
}

static void test_vocab_has_distinct_names(void) {
    TEST_REQUIRE(vocab != NULL);
    TEST_CHECK(query_vocab_count(vocab, QUERY_CATEGORY) == 5);
    TEST_CHECK(query_vocab_count(vocab, QUERY_BRAND) == 6);
    TEST_CHECK(query_vocab_count(vocab, QUERY_CREATOR) == 5);
    TEST_CHECK(query_vocab_max_words(vocab) == 3); /* "Bean & Co" */
    TEST_CHECK(query_vocab_count(NULL, QUERY_BRAND) == 0);
}

static void test_price_ceilings(void) {
    static const struct {
        const char *text;
        long long cents;
        const char *cur;
    } cases[] = {
        {"a gift for a runner under $50", 5000, "$"},
        {"below 30 dollars please", 3000, "$"},
        {"less than \xe2\x82\xac" "20", 2000, "\xe2\x82\xac"},
        {"less than 20\xe2\x82\xac", 2000, "\xe2\x82\xac"},
        {"UNDER $1,299.50", 129950, "$"},
        {"no more than 15 bucks", 1500, "$"},
        {"something nice, $25 or less", 2500, "$"},
        {"at most \xc2\xa3" "12.5", 1250, "\xc2\xa3"},
        {"up to 40", 4000, "$"},
        {"<$10", 1000, "$"},
        {"budget of $75", 7500, "$"},
        {"cheaper than 9.99 euros", 999, "\xe2\x82\xac"},
        {"$60 max", 6000, "$"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        query_constraints q = parse(cases[i].text);
        if (q.max_price_cents != cases[i].cents || strcmp(q.currency, cases[i].cur))
            fprintf(stderr, "  case %zu '%s': got %lld %s\n", i, cases[i].text,
                    (long long)q.max_price_cents, q.currency);
        TEST_CHECK(q.max_price_cents == cases[i].cents);
        TEST_CHECK_STR(q.currency, cases[i].cur);
        TEST_CHECK(q.min_price_cents == 0);
    }
}

static void test_price_floors_and_ranges(void) {
    query_constraints q = parse("over $20");
    TEST_CHECK(q.min_price_cents == 2000 && q.max_price_cents == 0);
    q = parse("at least 100 dollars");
    TEST_CHECK(q.min_price_cents == 10000);
    q = parse("between $20 and $50");
    TEST_CHECK(q.min_price_cents == 2000 && q.max_price_cents == 5000);
    q = parse("$20-$40 range");
    TEST_CHECK(q.min_price_cents == 2000 && q.max_price_cents == 4000);
    q = parse("from $15 to 30");
    TEST_CHECK(q.min_price_cents == 1500 && q.max_price_cents == 3000);
    q = parse("$30 or more");
    TEST_CHECK(q.min_price_cents == 3000);
    q = parse("between $50 and $20"); /* backwards: the ceiling wins */
    TEST_CHECK(q.max_price_cents == 2000 && q.min_price_cents == 0);
}

static void test_numbers_that_are_not_prices(void) {
    static const char *texts[] = {
        "a 3rd pair of socks", "50mm lens", "size 10 shoes", "from 1990", "c0086 stuff",
        "under-5 kids", "over 9000", /* no currency after "over": a floor anyway */
    };
    for (size_t i = 0; i < 6; i++) {
        query_constraints q = parse(texts[i]);
        TEST_CHECK(q.max_price_cents == 0 && q.min_price_cents == 0);
    }
    TEST_CHECK(parse(texts[6]).min_price_cents == 900000);
    TEST_CHECK(parse("under $0").max_price_cents == 0);
    TEST_CHECK(parse("under -5 dollars").max_price_cents == 0);
}

static void test_huge_numbers_are_ignored(void) {
    query_constraints q = parse("under $99999999999999999999999999999");
    TEST_CHECK(q.max_price_cents == 0);
    q = parse("under $999999999.99"); /* within range: kept */
    TEST_CHECK(q.max_price_cents == 99999999999LL);
    q = parse("under $1000000000.01");
    TEST_CHECK(q.max_price_cents == 0);
}

static void test_categories_brands_and_stems(void) {
    query_constraints q = parse("A gift for a RUNNER under $50");
    TEST_CHECK_STR(q.category, "running");
    TEST_CHECK(q.max_price_cents == 5000);
    q = parse("coffee from bean & co");
    TEST_CHECK_STR(q.category, "coffee");
    TEST_CHECK_STR(q.brand, "Bean & Co");
    q = parse("Stride socks");
    TEST_CHECK_STR(q.brand, "Stride");
    TEST_CHECK_STR(q.category, "");
    q = parse("a book, or yoga"); /* the first mention wins */
    TEST_CHECK_STR(q.category, "books");
    q = parse("decaffeinated coffeemaker"); /* no whole word or stem */
    TEST_CHECK_STR(q.category, "");
    q = parse("something by c0003");
    TEST_CHECK_STR(q.creator_id, "c0003");
}

static void test_negated_categories_are_excluded(void) {
    query_constraints q = parse("anything but coffee, not yoga");
    TEST_CHECK_STR(q.category, "");
    TEST_REQUIRE(q.n_exclude == 2);
    TEST_CHECK_STR(q.exclude[0], "coffee");
    TEST_CHECK_STR(q.exclude[1], "yoga");
    q = parse("camping gear without coffee");
    TEST_CHECK_STR(q.category, "camping");
    TEST_CHECK(q.n_exclude == 1);
}

static void test_garbage_and_unicode(void) {
    static const char *texts[] = {
        "", "$", "$$$", "under", "under $", "between $ and", "[1] [2]", "$.", "\xff\xfe\xfd",
        "caf\xc3\xa9" "coffee", "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", "under \xe2\x82",
        "\xe2\x82\xac", ",,,,", "1,2,3,4", "9.", ".5",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        query_constraints q = parse(texts[i]);
        TEST_CHECK(q.max_price_cents == 0 && q.min_price_cents == 0);
        TEST_CHECK_STR(q.category, "");
    }
    /* Words touching non-ASCII text are not words of their own. */
    TEST_CHECK_STR(parse("\xc3\xa9running").category, "");
    TEST_CHECK_STR(parse("\xe2\x80\x9c" "coffee\xe2\x80\x9d").category, "");
    TEST_CHECK_STR(parse("\xe2\x80\x94 coffee \xe2\x80\x94").category, "coffee");
    query_constraints q;
    query_parse(NULL, vocab, &q);
    TEST_CHECK(!query_constrained(&q));
}

static void test_long_query_is_read_up_to_the_limit(void) {
    char *text = malloc(5000);
    TEST_REQUIRE(text != NULL);
    memset(text, 'x', 4999);
    text[4999] = '\0';
    memcpy(text + 10, " under $5 ", 10);
    memcpy(text + 4000, " coffee ", 8); /* past QUERY_MAX_BYTES: not read */
    query_constraints q = parse(text);
    TEST_CHECK(q.max_price_cents == 500);
    TEST_CHECK_STR(q.category, "");
    free(text);
}

static void test_describe_and_filter(void) {
    char buf[256];
    query_filter qf;
    query_constraints q = parse("running from Pacer under $50, no coffee");
    TEST_CHECK(query_describe(&q, buf, sizeof(buf)) > 0);
    TEST_CHECK_STR(buf, "in running, from Pacer, not in coffee, under $50");
    q = parse("between 19.99 and 40 euros");
    query_describe_price(&q, buf, sizeof(buf));
    TEST_CHECK_STR(buf, "between \xe2\x82\xac" "19.99 and \xe2\x82\xac" "40");
    q = parse("running under $50, not coffee");
    query_to_filter(&q, &qf);
    TEST_CHECK(qf.f.max_price_cents == 5000);
    TEST_CHECK_STR(qf.f.category, "running");
    TEST_CHECK(qf.f.n_exclude_categories == 1);
    TEST_CHECK_STR(qf.f.exclude_categories[0], "coffee");
    q = parse("nothing in particular");
    TEST_CHECK(query_describe(&q, buf, sizeof(buf)) == 0 && buf[0] == '\0');
    /* A short buffer gets a cut, terminated description. */
    q = parse("running from Pacer under $50");
    TEST_CHECK(query_describe(&q, buf, 12) == 11 && strlen(buf) == 11);
}

static void test_amount_scanner(void) {
    query_amount a;
    TEST_CHECK(query_amount_at("for $5 only", 4, &a) == 0 && a.money && a.cents == 500);
    TEST_CHECK(a.end == 6);
    TEST_CHECK(query_amount_at("5 Dollars", 0, &a) == 0 && a.money && a.end == 9);
    TEST_CHECK(query_amount_at("5 socks", 0, &a) == 0 && !a.money);
    TEST_CHECK(query_amount_at("x5", 1, &a) == -1);
}

int main(void) {
    catalog *c = make_catalog();
    if (!c || query_vocab_build(c, &vocab) != 0) {
        fprintf(stderr, "cannot build the test catalog\n");
        return 1;
    }
    TEST_RUN(test_vocab_has_distinct_names);
    TEST_RUN(test_price_ceilings);
    TEST_RUN(test_price_floors_and_ranges);
    TEST_RUN(test_numbers_that_are_not_prices);
    TEST_RUN(test_huge_numbers_are_ignored);
    TEST_RUN(test_categories_brands_and_stems);
    TEST_RUN(test_negated_categories_are_excluded);
    TEST_RUN(test_garbage_and_unicode);
    TEST_RUN(test_long_query_is_read_up_to_the_limit);
    TEST_RUN(test_describe_and_filter);
    TEST_RUN(test_amount_scanner);
    query_vocab_free(vocab);
    catalog_free(c);
    return test_summary();
}
