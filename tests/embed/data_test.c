/* Parsing of the three interaction formats, their refusal of malformed
 * lines, and the determinism of the holdout split. */
#include <stdlib.h>
#include <string.h>

#include "embed/data.h"
#include "services/base/status.h"
#include "tests/embed/util.h"
#include "tests/test.h"

static const char *dir;

/* Loads text as fmt into fresh maps; returns the loader's status. */
static int load(const char *text, embed_format fmt, embed_idmap *u, embed_idmap *i,
                embed_data *d, char *err, size_t errlen) {
    embed_idmap_init(u);
    embed_idmap_init(i);
    const char *path = tu_write(dir, "in.txt", text);
    return path ? embed_data_load(path, fmt, u, i, d, err, errlen) : AISLE_EIO;
}

static void free_all(embed_idmap *u, embed_idmap *i, embed_data *d) {
    embed_idmap_free(u);
    embed_idmap_free(i);
    embed_data_free(d);
}

static void test_lightgcn(void) {
    embed_idmap u, i;
    embed_data d;
    char err[512];
    TEST_REQUIRE(load("0 5 7 9\n1 7\r\n\n# comment\n2\n", EMBED_FMT_LIGHTGCN, &u, &i, &d, err, sizeof(err)) == 0);
    TEST_CHECK(d.n_users == 3 && d.n_items == 3 && d.n_lines == 4);
    TEST_CHECK(d.off[1] == 3 && d.off[2] == 4 && d.off[3] == 4);
    TEST_CHECK_STR(i.names[d.item[3]], "7");
    TEST_CHECK(d.weight[0] == 1.0f);
    free_all(&u, &i, &d);
}

static void test_tsv_aggregates(void) {
    embed_idmap u, i;
    embed_data d;
    char err[512];
    TEST_REQUIRE(load("a x 2\na y\na x 0.5\nb y\t3\n", EMBED_FMT_TSV, &u, &i, &d, err, sizeof(err)) == 0);
    TEST_CHECK(d.n_users == 2 && d.n_items == 2 && d.n_lines == 4);
    TEST_CHECK(d.off[1] == 2); /* a: x (2 + 0.5), y (1) */
    uint32_t x;
    TEST_REQUIRE(embed_idmap_find(&i, "x", 1, &x) == AISLE_OK);
    TEST_CHECK(d.item[0] == x && d.weight[0] == 2.5f);
    TEST_CHECK(d.weight[2] == 3.0f);
    free_all(&u, &i, &d);
}

static void test_csv_header_and_kinds(void) {
    embed_idmap u, i;
    embed_data d;
    char err[512];
    /* Columns found by name, in any order; dismiss rows are skipped. */
    TEST_REQUIRE(load("kind,item_id,user_id,ts\nclick,i1,u1,10\npurchase,i2,u1,11\n"
                      "dismiss,i3,u1,12\n,i1,u2,\n",
                      EMBED_FMT_CSV, &u, &i, &d, err, sizeof(err)) == 0);
    TEST_CHECK(d.n_users == 2 && d.n_lines == 3);
    TEST_CHECK(d.off[1] == 2 && d.weight[0] == 2.0f && d.weight[1] == 8.0f);
    uint32_t row;
    TEST_CHECK(embed_idmap_find(&i, "i3", 2, &row) == AISLE_ENOTFOUND);
    free_all(&u, &i, &d);
    /* Positional when the header names nothing known. */
    TEST_REQUIRE(load("a,b,c,d,e\nu,i,5,view,3\n", EMBED_FMT_CSV, &u, &i, &d, err, sizeof(err)) == 0);
    TEST_CHECK(d.n_lines == 1 && d.weight[0] == 3.0f);
    free_all(&u, &i, &d);
    /* MovieLens: rating is a weight, timestamps are integers. */
    TEST_REQUIRE(load("userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n", EMBED_FMT_CSV, &u,
                      &i, &d, err, sizeof(err)) == 0);
    TEST_CHECK(d.weight[0] == 2.5f);
    free_all(&u, &i, &d);
}

static void test_malformed(void) {
    static const struct {
        const char *text;
        embed_format fmt;
        const char *want;
    } cases[] = {
        {"u i\nu i x\n", EMBED_FMT_TSV, ":2: weight"},
        {"u i 1 2\n", EMBED_FMT_TSV, ":1: expected"},
        {"u\n", EMBED_FMT_TSV, ":1: expected"},
        {"u i -1\n", EMBED_FMT_TSV, ":1: weight"},
        {"u i nan\n", EMBED_FMT_TSV, ":1: weight"},
        {"user,item\nu1\n", EMBED_FMT_CSV, ":2: expected"},
        {"user,item\n,i\n", EMBED_FMT_CSV, ":2: empty user"},
        {"user,item,ts\nu,i,12x\n", EMBED_FMT_CSV, ":2: timestamp"},
        {"user,item,ts,kind\nu,i,1,teleport\n", EMBED_FMT_CSV, ":2: unknown kind"},
        {"user,item\n\"u\",i\n", EMBED_FMT_CSV, ":2: quoted"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        embed_idmap u, i;
        embed_data d;
        char err[512] = "";
        TEST_CHECK(load(cases[k].text, cases[k].fmt, &u, &i, &d, err, sizeof(err)) == AISLE_EFORMAT);
        TEST_CHECK(d.off == NULL);
        if (!strstr(err, cases[k].want)) fprintf(stderr, "case %zu: got '%s'\n", k, err);
        TEST_CHECK(strstr(err, cases[k].want) != NULL);
        embed_idmap_free(&u);
        embed_idmap_free(&i);
    }
    /* An over-long id and a missing file. */
    char *big = malloc(3000);
    TEST_REQUIRE(big);
    memset(big, 'x', 2000);
    strcpy(big + 2000, " 1\n");
    embed_idmap u, i;
    embed_data d;
    char err[512];
    TEST_CHECK(load(big, EMBED_FMT_LIGHTGCN, &u, &i, &d, err, sizeof(err)) == AISLE_EFORMAT && strstr(err, "longer"));
    free(big);
    embed_idmap_free(&u);
    embed_idmap_free(&i);
    embed_idmap_init(&u);
    embed_idmap_init(&i);
    TEST_CHECK(embed_data_load("/nonexistent/x", EMBED_FMT_TSV, &u, &i, &d, err, sizeof(err)) == AISLE_EIO);
    TEST_CHECK(strstr(err, "/nonexistent/x") != NULL);
}

static void test_holdout(void) {
    enum { N = 4000 };
    uint32_t *us = malloc(N * sizeof(*us)), *is = malloc(N * sizeof(*is));
    TEST_REQUIRE(us && is);
    for (uint32_t k = 0; k < N; k++) {
        us[k] = k / 40; /* 100 users with 40 items each */
        is[k] = (k * 7919) % 1000;
    }
    embed_data all, tr1, va1, tr2, va2, tr3, va3;
    TEST_REQUIRE(embed_data_from_triples(100, 1000, N, us, is, NULL, &all) == 0);
    TEST_REQUIRE(embed_data_holdout(&all, 0.2, 7, &tr1, &va1) == 0);
    TEST_REQUIRE(embed_data_holdout(&all, 0.2, 7, &tr2, &va2) == 0);
    TEST_REQUIRE(embed_data_holdout(&all, 0.2, 8, &tr3, &va3) == 0);
    TEST_CHECK(va1.off[100] == 100 * 8 && tr1.off[100] == 100 * 32);
    TEST_CHECK(memcmp(va1.item, va2.item, va1.off[100] * sizeof(uint32_t)) == 0);
    TEST_CHECK(memcmp(tr1.item, tr2.item, tr1.off[100] * sizeof(uint32_t)) == 0);
    TEST_CHECK(memcmp(va1.item, va3.item, va1.off[100] * sizeof(uint32_t)) != 0);
    /* Disjoint and complete per user. */
    for (uint32_t u = 0; u < 100; u++)
        for (uint64_t a = va1.off[u]; a < va1.off[u + 1]; a++)
            for (uint64_t b = tr1.off[u]; b < tr1.off[u + 1]; b++) TEST_CHECK(va1.item[a] != tr1.item[b]);
    embed_data_free(&all);
    embed_data_free(&tr1);
    embed_data_free(&va1);
    embed_data_free(&tr2);
    embed_data_free(&va2);
    embed_data_free(&tr3);
    embed_data_free(&va3);
    free(us);
    free(is);
}

int main(void) {
    dir = tu_mkdtemp();
    if (!dir) return 1;
    char keep[4096];
    snprintf(keep, sizeof(keep), "%s", dir);
    dir = keep;
    TEST_RUN(test_lightgcn);
    TEST_RUN(test_tsv_aggregates);
    TEST_RUN(test_csv_header_and_kinds);
    TEST_RUN(test_malformed);
    TEST_RUN(test_holdout);
    tu_rmtree(dir);
    return test_summary();
}
