/* embed_score_user on a model small enough to check by hand, and the batch
 * form agreeing with it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embed/model.h"
#include "tests/test.h"

#define NEAR(a, b) (fabsf((a) - (b)) < 1e-5f)

static int make_model(embed_model *m) {
    static const float P[] = {1, 0, 0, 1, 1, 1}, Q[] = {1, 2, 3, 4, 5, 6};
    static const uint64_t off[] = {0, 1, 2, 2};
    static const uint32_t nb[] = {2, 0};
    static const float nw[] = {0.5f, 2.0f};
    if (embed_model_alloc(m, 3, 2, 1) != 0) return -1;
    memcpy(m->P, P, sizeof(P));
    memcpy(m->Q, Q, sizeof(Q));
    memcpy(m->nb_off, off, sizeof(off));
    m->nb_item = malloc(sizeof(nb));
    m->nb_weight = malloc(sizeof(nw));
    if (!m->nb_item || !m->nb_weight) return -1;
    memcpy(m->nb_item, nb, sizeof(nb));
    memcpy(m->nb_weight, nw, sizeof(nw));
    m->bias[0] = 0.1f;
    m->bias[1] = 0.2f;
    m->bias[2] = 0.3f;
    return 0;
}

static void test_formula(void) {
    embed_model m;
    TEST_REQUIRE(make_model(&m) == 0);
    /* u = 1*P0 + 2*P1 = (1,2); u.Q = (5,11,17); lists: 0 -> 2 (+0.5*1),
     * 1 -> 0 (+2*2); row 7 is unknown to the model and ignored. */
    const uint32_t items[] = {0, 1, 7};
    const float w[] = {1, 2, 9};
    float s[3], u[2];
    TEST_REQUIRE(embed_score_user(&m, 3, items, w, s) == 0);
    TEST_CHECK(NEAR(s[0], 9.1f) && NEAR(s[1], 11.2f) && NEAR(s[2], 17.8f));
    embed_model_query(&m, 3, items, w, u);
    TEST_CHECK(NEAR(u[0], 1) && NEAR(u[1], 2));
    /* Empty profile: bias only. */
    TEST_REQUIRE(embed_score_user(&m, 0, items, w, s) == 0);
    TEST_CHECK(NEAR(s[0], 0.1f) && NEAR(s[2], 0.3f));
    embed_model_free(&m);
}

static void test_batch_matches_single(void) {
    embed_model m;
    TEST_REQUIRE(make_model(&m) == 0);
    const uint64_t off[] = {0, 1, 3, 3};
    const uint32_t items[] = {2, 0, 1};
    const float w[] = {0.5f, 1, 3};
    float batch[9], one[3];
    TEST_REQUIRE(embed_score_batch(&m, 3, off, items, w, batch) == 0);
    for (int r = 0; r < 3; r++) {
        TEST_REQUIRE(embed_score_user(&m, off[r + 1] - off[r], items + off[r], w + off[r], one) == 0);
        for (int j = 0; j < 3; j++) TEST_CHECK(NEAR(batch[r * 3 + j], one[j]));
    }
    embed_model_free(&m);
}

int main(void) {
    TEST_RUN(test_formula);
    TEST_RUN(test_batch_matches_single);
    return test_summary();
}
