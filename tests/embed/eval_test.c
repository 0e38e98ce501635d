/* Recall/NDCG on hand-computed examples, and the protocol details of
 * embed_eval_run: train items excluded, users without a profile skipped. */
#include <math.h>
#include <stdlib.h>

#include "embed/eval.h"
#include "services/base/status.h"
#include "tests/test.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-4)

static void test_user_metrics(void) {
    const uint32_t ranked[] = {3, 1, 4, 0, 2};
    const uint32_t test[] = {1, 2};
    const int ks[] = {1, 2, 5};
    double r[3] = {0}, n[3] = {0};
    embed_eval_user(ranked, 5, test, 2, ks, 3, r, n);
    TEST_CHECK(NEAR(r[0], 0) && NEAR(n[0], 0));
    TEST_CHECK(NEAR(r[1], 0.5) && NEAR(n[1], 0.38685)); /* 1/log2(3) / (1 + 1/log2(3)) */
    TEST_CHECK(NEAR(r[2], 1.0) && NEAR(n[2], 0.62405)); /* + 1/log2(6) */
}

static void test_run_protocol(void) {
    embed_model m;
    TEST_REQUIRE(embed_model_alloc(&m, 5, 0, 1) == 0);
    for (int j = 0; j < 5; j++) m.bias[j] = (float)(5 - j); /* item 0 ranks first */
    const uint32_t tu[] = {0, 1}, ti[] = {0, 1};
    const uint32_t vu[] = {0, 1, 2}, vi[] = {1, 4, 3};
    embed_data train, test;
    TEST_REQUIRE(embed_data_from_triples(2, 5, 2, tu, ti, NULL, &train) == 0);
    TEST_REQUIRE(embed_data_from_triples(3, 5, 3, vu, vi, NULL, &test) == 0);
    const int ks[] = {1, 5};
    embed_eval_result res;
    TEST_REQUIRE(embed_eval_run(&m, &train, &test, ks, 2, 1, &res, NULL) == 0);
    TEST_CHECK(res.n_users == 2 && res.n_skipped == 1);
    TEST_CHECK(NEAR(res.recall[0], 0.5) && NEAR(res.ndcg[0], 0.5));
    TEST_CHECK(NEAR(res.recall[1], 1.0) && NEAR(res.ndcg[1], (1 + 1 / log2(5.0)) / 2));
    const int bad[] = {0};
    TEST_CHECK(embed_eval_run(&m, &train, &test, bad, 1, 1, &res, NULL) == AISLE_EINVAL);
    embed_data_free(&train);
    embed_data_free(&test);
    embed_model_free(&m);
}

static void test_parse_ks(void) {
    int ks[EMBED_EVAL_MAXK], nk;
    TEST_CHECK(embed_eval_parse_ks("10,20,50", ks, &nk) == AISLE_OK && nk == 3 && ks[2] == 50);
    TEST_CHECK(embed_eval_parse_ks("", ks, &nk) == AISLE_EINVAL);
    TEST_CHECK(embed_eval_parse_ks("10,x", ks, &nk) == AISLE_EINVAL);
    TEST_CHECK(embed_eval_parse_ks("0", ks, &nk) == AISLE_EINVAL);
    TEST_CHECK(embed_eval_parse_ks("1,2,3,4,5,6,7,8,9", ks, &nk) == AISLE_EINVAL);
}

int main(void) {
    TEST_RUN(test_user_metrics);
    TEST_RUN(test_run_protocol);
    TEST_RUN(test_parse_ks);
    return test_summary();
}
