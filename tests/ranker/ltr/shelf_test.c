/* Tests for the shelf of learned rankers: a path loads on first use; a
 * changed file is loaded again after the check interval; a corrupt file,
 * or one over another number of features, is refused with the model in
 * use kept; a path that never loaded gives no model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xgboost/c_api.h>

#include "ranker/ltr/model.h"
#include "ranker/ltr/shelf.h"
#include "services/base/status.h"
#include "tests/test.h"

#define NF 3
#define ROWS 64

static char err[512];
static char path[] = "/tmp/aisle-shelf-XXXXXX";

/* Writes a small regression model of sign · (first feature) to path. */
static void write_model(double sign) {
    float x[ROWS * NF], y[ROWS];
    for (int i = 0; i < ROWS; i++) {
        for (int j = 0; j < NF; j++) x[i * NF + j] = (float)((i * 7 + j * 3) % ROWS) / ROWS;
        y[i] = (float)(sign * x[i * NF]);
    }
    DMatrixHandle m;
    BoosterHandle b;
    TEST_REQUIRE(XGDMatrixCreateFromMat(x, ROWS, NF, -1e30f, &m) == 0);
    TEST_REQUIRE(XGDMatrixSetFloatInfo(m, "label", y, ROWS) == 0);
    TEST_REQUIRE(XGBoosterCreate(&m, 1, &b) == 0);
    XGBoosterSetParam(b, "verbosity", "0");
    for (int i = 0; i < 5; i++) TEST_REQUIRE(XGBoosterUpdateOneIter(b, i, m) == 0);
    XGDMatrixFree(m);
    ltr_model *lm;
    TEST_REQUIRE(ltr_model_from_booster(b, NF, &lm, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(ltr_model_save(lm, path, err, sizeof(err)) == AISLE_OK);
    ltr_model_release(lm);
}

/* The model's score of a row (0.9, 0, 0) minus that of (0.1, 0, 0). */
static float rise(ltr_model *m) {
    float rows[2 * NF] = {0.9f, 0, 0, 0.1f, 0, 0}, out[2] = {0, 0};
    TEST_CHECK(ltr_model_score(m, rows, 2, out, err, sizeof(err)) == AISLE_OK);
    return out[0] - out[1];
}

static void test_reload_and_refusals(void) {
    ltr_shelf *s, *wrong;
    int64_t t = 1000;
    write_model(1);
    TEST_REQUIRE(ltr_shelf_new(NF, 100, &s) == AISLE_OK);
    ltr_model *up = ltr_shelf_get(s, path, t);
    TEST_REQUIRE(up);
    TEST_CHECK(rise(up) > 0);

    write_model(-1);
    ltr_model *same = ltr_shelf_get(s, path, t + 50); /* not looked at yet */
    TEST_CHECK(same == up);
    ltr_model_release(same);
    ltr_model *down = ltr_shelf_get(s, path, t += 100);
    TEST_REQUIRE(down && down != up);
    TEST_CHECK(rise(down) < 0);
    TEST_CHECK(rise(up) > 0); /* a call holding the old one keeps it */
    ltr_model_release(up);

    FILE *f = fopen(path, "wb"); /* corrupt: the model in use stays */
    TEST_REQUIRE(f);
    fputs("AISLELTR and then nothing sensible", f);
    fclose(f);
    ltr_model *kept = ltr_shelf_get(s, path, t += 100);
    TEST_CHECK(kept == down);
    ltr_model_release(kept);
    ltr_model_release(down);

    write_model(1); /* the wrong shape for a shelf over NF + 1 features */
    TEST_REQUIRE(ltr_shelf_new(NF + 1, 0, &wrong) == AISLE_OK);
    TEST_CHECK(ltr_shelf_get(wrong, path, t) == NULL);
    TEST_CHECK(ltr_shelf_get(s, "/nonexistent/model", t) == NULL);
    ltr_shelf_free(wrong);
    ltr_shelf_free(s);
}

int main(void) {
    int fd = mkstemp(path);
    if (fd < 0) return 1;
    close(fd);
    TEST_RUN(test_reload_and_refusals);
    unlink(path);
    return test_summary();
}
