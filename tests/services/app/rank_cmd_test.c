/* Tests for `aisle rank train` and `aisle rank check` on length-delimited
 * files: a model is trained, written and loads; a corrupted copy is
 * refused; bad flags exit 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/app/rank.h"
#include "services/base/status.h"
#include "services/experiment/report.h"
#include "tests/test.h"

static char dir[] = "/tmp/aisle-rank-XXXXXX", pe[64], ps[64], pm[64];

/* 3,000 pages of 5 items over three days; items with f0 > 0.6 get clicked,
 * while the logged (current) score is f1. */
static void generate(void) {
    FILE *fe = fopen(pe, "wb"), *fs = fopen(ps, "wb");
    if (!fe || !fs) return;
    uint64_t rng = 99;
    for (int p = 0; p < 3000; p++) {
        char user[16], ids[5][32], ev[48];
        float f[5][2];
        Aisle__V1__Exposure e;
        Aisle__V1__ExposureItem it[5], *ip[5];
        aisle__v1__exposure__init(&e);
        snprintf(user, sizeof(user), "u%d", p % 300);
        e.user_id = user;
        e.ts_ms = (int64_t)p * 3 * 86400000LL / 3000;
        for (int i = 0; i < 5; i++) {
            for (int k = 0; k < 2; k++) {
                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                f[i][k] = (float)(rng >> 40) / (float)(1 << 24);
            }
            snprintf(ids[i], sizeof(ids[i]), "p%d-%d", p, i);
            aisle__v1__exposure_item__init(&it[i]);
            it[i].item_id = ids[i];
            it[i].position = (uint32_t)i;
            it[i].score = f[i][1];
            it[i].features = f[i];
            it[i].n_features = 2;
            ip[i] = &it[i];
        }
        e.items = ip;
        e.n_items = 5;
        exp_delim_write(fe, &e.base);
        for (int i = 0; i < 5; i++) {
            if (f[i][0] <= 0.6f || (p + i) % 3 == 0) continue;
            Aisle__V1__Signal s;
            aisle__v1__signal__init(&s);
            snprintf(ev, sizeof(ev), "e%d-%d", p, i);
            s.event_id = ev;
            s.user_id = user;
            s.item_id = ids[i];
            s.kind = AISLE__V1__SIGNAL_KIND__CLICK;
            s.ts_ms = e.ts_ms + 1000;
            exp_delim_write(fs, &s.base);
        }
    }
    fclose(fe);
    fclose(fs);
}

static void test_train_and_check(void) {
    generate();
    char *train[] = {"rank", "train", "--exposures", pe, "--signals", ps, "--out", pm,
                     "--rounds", "30", NULL};
    TEST_CHECK(rank_main(10, train) == 0);
    char *check[] = {"rank", "check", pm, NULL};
    TEST_CHECK(rank_main(3, check) == 0);
    /* Corrupt one byte in the middle: refused. */
    FILE *f = fopen(pm, "r+b");
    TEST_REQUIRE(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, n / 2, SEEK_SET);
    int c = fgetc(f);
    fseek(f, n / 2, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    TEST_CHECK(rank_main(3, check) == 1);
}

static void test_bad_flags(void) {
    char *none[] = {"rank", NULL};
    char *noout[] = {"rank", "train", "--exposures", pe, "--signals", ps, NULL};
    char *rounds[] = {"rank", "train", "--kafka-brokers", "x", "--out", pm, "--rounds", "0", NULL};
    TEST_CHECK(rank_main(1, none) == 2);
    TEST_CHECK(rank_main(6, noout) == 2);
    TEST_CHECK(rank_main(8, rounds) == 2);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    snprintf(pe, sizeof(pe), "%s/exposures", dir);
    snprintf(ps, sizeof(ps), "%s/signals", dir);
    snprintf(pm, sizeof(pm), "%s/model", dir);
    TEST_RUN(test_train_and_check);
    TEST_RUN(test_bad_flags);
    unlink(pe), unlink(ps), unlink(pm), rmdir(dir);
    return test_summary();
}
