/* End to end: training on a synthetic clustered data set must find the
 * clusters; the CLI trains, snapshots and evaluates; and, when the shared
 * data sets are beside the workspace, Last.fm trains and evaluates to a
 * sane quality. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/cli.h"
#include "embed/blend.h"
#include "embed/compress.h"
#include "embed/data.h"
#include "embed/eval.h"
#include "embed/probe.h"
#include "embed/snapshot.h"
#include "embed/train.h"
#include "embed/tune.h"
#include "services/base/status.h"
#include "tests/embed/util.h"
#include "tests/test.h"

static char dir[4096];

/* 400 users in 4 taste clusters of 25 items; each user has 10 items from
 * their cluster and one random item. Written as `user item` lines. */
static const char *write_clusters(void) {
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap);
    if (!text) return NULL;
    uint64_t s = 12345;
    for (int u = 0; u < 400; u++) {
        int c = u % 4, used[25] = {0};
        for (int k = 0; k < 10; k++) {
            int j;
            do {
                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                j = (int)((s >> 33) % 25);
            } while (used[j]);
            used[j] = 1;
            len += (size_t)snprintf(text + len, cap - len, "u%d i%d\n", u, c * 25 + j);
        }
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        len += (size_t)snprintf(text + len, cap - len, "u%d i%d\n", u, (int)((s >> 33) % 100));
    }
    const char *path = tu_write(dir, "clusters.tsv", text);
    free(text);
    return path;
}

/* The clusters, loaded and carved 80/20 (seed 1); 1 on success. Free with
 * free_clusters. */
static int load_clusters(embed_idmap *users, embed_idmap *items, embed_data *all,
                         embed_data *tr, embed_data *va) {
    char err[512];
    const char *path = write_clusters();
    embed_idmap_init(users);
    embed_idmap_init(items);
    return path &&
           embed_data_load(path, EMBED_FMT_TSV, users, items, all, err, sizeof(err)) ==
               AISLE_OK &&
           embed_data_holdout(all, 0.2, 1, tr, va) == AISLE_OK;
}

static void free_clusters(embed_idmap *users, embed_idmap *items, embed_data *all,
                          embed_data *tr, embed_data *va) {
    embed_data_free(all);
    embed_data_free(tr);
    embed_data_free(va);
    embed_idmap_free(users);
    embed_idmap_free(items);
}

/* The popularity bias of a model trained with p.pop > 0 grows with an
 * item's degree and is zero for an item nobody has. */
static void check_pop_bias(const embed_data *tr, embed_train_params p) {
    embed_model m;
    p.pop = 0.5;
    TEST_REQUIRE(embed_train(tr, &p, &m, 1) == AISLE_OK);
    TEST_REQUIRE(m.bias != NULL);
    uint32_t *deg = calloc(tr->n_items, sizeof(*deg));
    TEST_REQUIRE(deg != NULL);
    for (uint64_t e = 0; e < tr->off[tr->n_users]; e++) deg[tr->item[e]]++;
    for (uint32_t i = 0; i < tr->n_items; i++) {
        TEST_CHECK(deg[i] ? m.bias[i] > 0 : m.bias[i] == 0);
        for (uint32_t j = 0; j < tr->n_items; j++)
            if (deg[i] < deg[j]) TEST_CHECK(m.bias[i] < m.bias[j]);
    }
    free(deg);
    embed_model_free(&m);
}

static void test_learns_clusters(void) {
    embed_idmap users, items;
    embed_data all, tr, va;
    TEST_REQUIRE(load_clusters(&users, &items, &all, &tr, &va));
    embed_train_params p;
    embed_train_defaults(&p, EMBED_METHOD_SHARPENED);
    p.dim = 8;
    p.neighbors = 30;
    embed_model m;
    TEST_REQUIRE(embed_train(&tr, &p, &m, 1) == 0);
    TEST_CHECK(m.dim == 16 && m.n_items == 100);
    const int ks[] = {10};
    embed_eval_result res;
    TEST_REQUIRE(embed_eval_run(&m, &tr, &va, ks, 1, 1, &res, NULL) == 0);
    /* Ranking within the right cluster gives about 10/17; chance ~0.11. */
    printf("clusters: recall@10 %.3f ndcg@10 %.3f\n", res.recall[0], res.ndcg[0]);
    TEST_CHECK(res.n_users == 400 && res.recall[0] > 0.4);
    /* No bias unless asked for. */
    TEST_CHECK(m.bias == NULL);
    embed_model_free(&m);
    check_pop_bias(&tr, p);
    /* Small data lowers the rank instead of failing. */
    p.dim = 500;
    TEST_REQUIRE(embed_train(&tr, &p, &m, 1) == 0);
    TEST_CHECK(p.dim + p.svd_oversample <= 100 && m.dim == 2 * p.dim);
    embed_model_free(&m);
    free_clusters(&users, &items, &all, &tr, &va);
}

/* Every method finds the clusters, in the dimension it announces, and the
 * search keeps a point at least as good as where it started. */
static void test_methods_and_tune(void) {
    embed_idmap users, items;
    embed_data all, tr, va;
    TEST_REQUIRE(load_clusters(&users, &items, &all, &tr, &va));
    const embed_method methods[] = {EMBED_METHOD_CHEBY, EMBED_METHOD_BSPM, EMBED_METHOD_SHARPENED};
    for (int k = 0; k < 3; k++) {
        embed_train_params p;
        embed_train_defaults(&p, methods[k]);
        p.dim = 8;
        p.neighbors = 30;
        embed_model m;
        TEST_REQUIRE(embed_train(&tr, &p, &m, 1) == AISLE_OK);
        TEST_CHECK(m.dim == embed_train_model_dim(&p));
        const int ks[] = {10};
        embed_eval_result res;
        TEST_REQUIRE(embed_eval_run(&m, &tr, &va, ks, 1, 1, &res, NULL) == AISLE_OK);
        printf("%s: recall@10 %.3f\n", embed_method_name(methods[k]), res.recall[0]);
        TEST_CHECK(res.recall[0] > 0.4);
        embed_model_free(&m);
    }
    embed_train_params p;
    embed_train_defaults(&p, EMBED_METHOD_CHEBY);
    p.dim = 8;
    p.neighbors = 30;
    /* A budget of six points: the start and five steps, whatever the clock. */
    embed_tune_opts o = {.holdout = 0.2, .seed = 1, .quiet = 1};
    embed_data tc, vc;
    TEST_REQUIRE(embed_data_holdout(&all, 0.2, 1, &tc, &vc) == AISLE_OK);
    uint32_t vusers = 0;
    for (uint32_t u = 0; u < vc.n_users; u++) vusers += vc.off[u + 1] > vc.off[u];
    o.work = 6.5 * vusers * all.n_items;
    embed_data_free(&tc);
    embed_data_free(&vc);
    embed_tune_result res;
    TEST_REQUIRE(embed_tune(&all, &p, &o, &res) == AISLE_OK);
    TEST_CHECK(res.evals == 6 && !res.out_of_time && res.best.n_users > 0);
    TEST_CHECK(res.best.recall[0] + res.best.ndcg[0] >= res.start.recall[0] + res.start.ndcg[0]);
    TEST_CHECK(res.spectrum && res.spectrum_k == p.dim);
    embed_tune_result_free(&res);
    free_clusters(&users, &items, &all, &tr, &va);
}

/* A search starts sharpened at the wide rank only on a matrix whose
 * smaller side is at least EMBED_TUNE_WIDE_SIDE, never lowers a rank, and
 * leaves the other methods' rank alone. */
static void test_tune_rank(void) {
    embed_train_params p;
    embed_data big = {.n_users = EMBED_TUNE_WIDE_SIDE, .n_items = 40981};
    embed_data narrow = {.n_users = 610, .n_items = 9724};
    embed_train_defaults(&p, EMBED_METHOD_SHARPENED);
    TEST_CHECK(embed_tune_rank(&big, &p) == EMBED_TUNE_WIDE_RANK);
    TEST_CHECK(embed_tune_rank(&narrow, &p) == p.dim);
    big.n_items = EMBED_TUNE_WIDE_SIDE - 1; /* the smaller side decides */
    TEST_CHECK(embed_tune_rank(&big, &p) == p.dim);
    big.n_items = 40981;
    p.dim = 768;
    TEST_CHECK(embed_tune_rank(&big, &p) == 768);
    embed_train_defaults(&p, EMBED_METHOD_CHEBY);
    TEST_CHECK(embed_tune_rank(&big, &p) == p.dim);
}

/* The tuner's probe scores a point as its model does, from the cache for
 * points sharing the base's rank and user-side exponents and by the model
 * otherwise, whichever order they come in. */
static void test_probe_matches_models(void) {
    embed_idmap users, items;
    embed_data all, tr, va;
    TEST_REQUIRE(load_clusters(&users, &items, &all, &tr, &va));
    embed_train_params base;
    embed_train_defaults(&base, EMBED_METHOD_SHARPENED);
    base.dim = 8;
    base.neighbors = 30;
    embed_trainer *t;
    embed_probe *pr;
    TEST_REQUIRE(embed_trainer_new(&tr, &base, NULL, 1, &t) == AISLE_OK);
    TEST_REQUIRE(embed_probe_new(t, &tr, &va, 2, &pr) == AISLE_OK);
    embed_probe_set_base(pr, &base);
    /* alpha, sharpen, curve, beta, lin_user, pop: cached; lin_item: half
     * cached; dim: by the model. */
    embed_train_params pts[11];
    for (int k = 0; k < 11; k++) pts[k] = base;
    pts[1].alpha = 0.1;
    pts[2].sharpen = 0;
    pts[2].curve = 0;
    pts[3].curve = -0.3;
    pts[4].beta = -0.1;
    pts[5].lin_user = 0.6;
    pts[6].dim = 4;
    pts[7].lin_item = 0.3;
    pts[8].lin_item = 0.5;
    pts[8].curve = 0.3;
    pts[9].pop = 0.5;
    pts[10].pop = 2;
    pts[10].dim = 4;
    const int ks[] = {20, 10, 50};
    for (int k = 0; k < 11; k++) {
        embed_eval_result got, want;
        embed_model m;
        TEST_REQUIRE(embed_probe_eval(pr, &pts[k], &got) == AISLE_OK);
        TEST_REQUIRE(embed_trainer_model(t, &pts[k], &m) == AISLE_OK);
        TEST_REQUIRE(embed_eval_run(&m, &tr, &va, ks, 3, 2, &want, NULL) == AISLE_OK);
        embed_model_free(&m);
        TEST_CHECK(got.n_users == want.n_users && got.n_users > 0);
        for (int q = 0; q < 3; q++)
            TEST_CHECK(fabs(got.recall[q] - want.recall[q]) < 1e-6 &&
                       fabs(got.ndcg[q] - want.ndcg[q]) < 1e-6);
    }
    embed_probe_free(pr);
    embed_trainer_free(t);
    free_clusters(&users, &items, &all, &tr, &va);
}

/* Compression at the full rank is an exact change of basis; below it the
 * scores move, and the columns come best first. */
static void test_compress(void) {
    embed_model m;
    TEST_REQUIRE(embed_model_alloc(&m, 50, 6, 0) == AISLE_OK);
    uint64_t s = 99;
    for (size_t e = 0; e < 50 * 6; e++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        m.P[e] = (float)((double)(s >> 40) / (1 << 24) - 0.5);
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        m.Q[e] = (float)((double)(s >> 40) / (1 << 24) - 0.5);
    }
    const uint32_t items[] = {3, 17, 42};
    const float w[] = {1, 2, 0.5f};
    float before[50], after[50];
    TEST_REQUIRE(embed_score_user(&m, 3, items, w, before) == AISLE_OK);
    TEST_REQUIRE(embed_model_compress(&m, 6) == AISLE_OK && m.dim == 6);
    TEST_REQUIRE(embed_score_user(&m, 3, items, w, after) == AISLE_OK);
    double err = 0;
    for (int j = 0; j < 50; j++) err = fmax(err, fabs(before[j] - after[j]));
    TEST_CHECK(err < 1e-4);
    /* A blend scores as the weighted sum, lists merged by item. */
    m.nb_item = malloc(2 * sizeof(*m.nb_item));
    m.nb_weight = malloc(2 * sizeof(*m.nb_weight));
    TEST_REQUIRE(m.nb_item && m.nb_weight);
    m.nb_item[0] = 7; /* item 3's list: 7 and 9 */
    m.nb_item[1] = 9;
    m.nb_weight[0] = 2;
    m.nb_weight[1] = 1;
    for (int i = 4; i <= 50; i++) m.nb_off[i] = 2;
    TEST_REQUIRE(embed_score_user(&m, 3, items, w, after) == AISLE_OK);
    embed_model sum;
    TEST_REQUIRE(embed_model_blend(&m, &m, 0.5f, 100, &sum) == AISLE_OK && sum.dim == 12);
    float blended[50];
    TEST_REQUIRE(embed_score_user(&sum, 3, items, w, blended) == AISLE_OK);
    err = 0;
    for (int j = 0; j < 50; j++) err = fmax(err, fabs(1.5 * after[j] - blended[j]));
    TEST_CHECK(err < 1e-4);
    embed_model_free(&sum);
    TEST_REQUIRE(embed_model_compress(&m, 3) == AISLE_OK && m.dim == 3);
    TEST_REQUIRE(embed_score_user(&m, 3, items, w, after) == AISLE_OK);
    err = 0;
    for (int j = 0; j < 50; j++) err = fmax(err, fabs(before[j] - after[j]));
    TEST_CHECK(err > 1e-3);
    embed_model_free(&m);
}

static void test_cli(void) {
    char path[4200], out[4200];
    const char *data = write_clusters();
    TEST_REQUIRE(data);
    snprintf(path, sizeof(path), "%s", data);
    snprintf(out, sizeof(out), "%s/snapshots", dir);
    char *train[] = {"train", "--input", path, "--format", "tsv", "--out", out, "--holdout", "0.2",
                     "--seed", "3", "--dim", "8", "--neighbors", "20", "--quiet", NULL};
    TEST_CHECK(embed_cli_train(16, train) == 0);
    char *eval[] = {"eval", "--train", path, "--format", "tsv", "--holdout", "0.2", "--seed", "3",
                    "--model", out, "--k", "5,10", "--quiet", NULL};
    TEST_CHECK(embed_cli_eval(14, eval) == 0);
    /* A catalog maps items to creators, whose vectors are published. */
    char cat[4200], croot[4200], err[512];
    snprintf(cat, sizeof(cat), "%s", tu_write(dir, "catalog.csv", "item_id,title,creator_id\ni1,x,c1\ni2,y,c1\nzz,z,c2\n"));
    snprintf(croot, sizeof(croot), "%s/with-catalog", dir);
    char *withcat[] = {"train", "--input", path, "--format", "tsv", "--catalog", cat, "--out", croot,
                       "--dim", "4", "--quiet", NULL};
    TEST_CHECK(embed_cli_train(12, withcat) == 0);
    embed_snapshot s;
    TEST_REQUIRE(embed_snapshot_load_newest(croot, &s, 1, err, sizeof(err)) == 0);
    uint32_t i1;
    TEST_REQUIRE(embed_idmap_find(&s.items, "i1", 2, &i1) == AISLE_OK);
    TEST_CHECK(s.creators.count == 1 && s.item_creator[i1] == 0);
    TEST_CHECK(s.creator_vec[0] != 0 || s.creator_vec[1] != 0);
    embed_snapshot_free(&s);
    char *bad[] = {"train", "--input", path, "--out", out, "--dim", "x", NULL};
    TEST_CHECK(embed_cli_train(7, bad) == 2);
    char *tuned[] = {"train", "--input", path, "--format", "tsv", "--out", out, "--method", "cheby",
                     "--tune", "--tune-work", "2e5", "--dim", "8", "--quiet", NULL};
    TEST_CHECK(embed_cli_train(15, tuned) == 0);
    TEST_REQUIRE(embed_snapshot_load_newest(out, &s, 1, err, sizeof(err)) == AISLE_OK);
    char v[64];
    TEST_CHECK(embed_snapshot_meta_get(s.meta, "method", v, sizeof(v)) == AISLE_OK && strcmp(v, "cheby") == 0);
    TEST_CHECK(embed_snapshot_meta_get(s.meta, "tune.valid.recall@20", v, sizeof(v)) == AISLE_OK);
    /* 400 validation users x 100 items a point: the budget holds five. */
    TEST_CHECK(embed_snapshot_meta_get(s.meta, "tune.points", v, sizeof(v)) == AISLE_OK && strcmp(v, "5") == 0);
    embed_snapshot_free(&s);
    char *cut[] = {"eval", "--train", path, "--format", "tsv", "--holdout", "0.2", "--seed", "3",
                   "--model", out, "--serve-dim", "4", "--serve-neighbors", "5", "--quiet", NULL};
    TEST_CHECK(embed_cli_eval(16, cut) == 0);
    /* Two snapshots of the same items blend into one, its vectors side by
     * side, compressed on request. */
    char broot[4200];
    snprintf(broot, sizeof(broot), "%s/blended", dir);
    char *blend[] = {"blend", "--model", out, "--with", croot, "--weight", "0.5", "--out", broot,
                     "--quiet", NULL};
    TEST_CHECK(embed_cli_blend(10, blend) == 0);
    TEST_REQUIRE(embed_snapshot_load_newest(broot, &s, 1, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(embed_snapshot_meta_get(s.meta, "method", v, sizeof(v)) == AISLE_OK && strcmp(v, "blend") == 0);
    TEST_CHECK(embed_snapshot_meta_get(s.meta, "a.method", v, sizeof(v)) == AISLE_OK && strcmp(v, "cheby") == 0);
    embed_snapshot_free(&s);
    char *blendcut[] = {"blend", "--model", out, "--with", croot, "--serve-dim", "3", "--out", broot,
                        "--quiet", NULL};
    TEST_CHECK(embed_cli_blend(10, blendcut) == 0);
    TEST_REQUIRE(embed_snapshot_load_newest(broot, &s, 1, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(s.model.dim == 3);
    embed_snapshot_free(&s);
    /* --tune under --holdout searches on the carve's train part alone and
     * validates what it chose on the carve's held-out part. */
    char *both[] = {"train", "--input", path, "--format", "tsv", "--out", out, "--tune",
                    "--tune-work", "2e5", "--holdout", "0.2", "--dim", "8", "--quiet", NULL};
    TEST_CHECK(embed_cli_train(15, both) == 0);
    TEST_REQUIRE(embed_snapshot_load_newest(out, &s, 1, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(embed_snapshot_meta_get(s.meta, "tune.valid.recall@20", v, sizeof(v)) == AISLE_OK);
    TEST_CHECK(embed_snapshot_meta_get(s.meta, "valid.recall@20", v, sizeof(v)) == AISLE_OK);
    embed_snapshot_free(&s);
    char *badmethod[] = {"train", "--input", path, "--out", out, "--method", "nope", NULL};
    TEST_CHECK(embed_cli_train(7, badmethod) == 2);
    char *missing[] = {"eval", "--train", path, "--model", out, NULL};
    TEST_CHECK(embed_cli_eval(5, missing) == 2);
    char *nofile[] = {"train", "--input", "/nonexistent", "--out", out, "--quiet", NULL};
    TEST_CHECK(embed_cli_train(6, nofile) == 1);
}

static void test_lastfm(void) {
    const char *shared = tu_shared_dir("tests/embed/train_test.c");
    if (!shared) return;
    char trainp[4200], testp[4200], err[512];
    snprintf(trainp, sizeof(trainp), "%s/datasets/lastfm/train.txt", shared);
    snprintf(testp, sizeof(testp), "%s/datasets/lastfm/test.txt", shared);
    embed_idmap users, items;
    embed_idmap_init(&users);
    embed_idmap_init(&items);
    embed_data tr, te;
    TEST_REQUIRE(embed_data_load(trainp, EMBED_FMT_TSV, &users, &items, &tr, err, sizeof(err)) == 0);
    TEST_REQUIRE(embed_data_load(testp, EMBED_FMT_TSV, &users, &items, &te, err, sizeof(err)) == 0);
    embed_train_params p;
    embed_train_defaults(&p, EMBED_METHOD_SHARPENED);
    p.dim = 64;
    p.neighbors = 200;
    embed_model m;
    TEST_REQUIRE(embed_train(&tr, &p, &m, 1) == 0);
    const int ks[] = {20};
    embed_eval_result res;
    TEST_REQUIRE(embed_eval_run(&m, &tr, &te, ks, 1, 1, &res, NULL) == 0);
    printf("lastfm: %u users, recall@20 %.4f ndcg@20 %.4f\n", res.n_users, res.recall[0], res.ndcg[0]);
    TEST_CHECK(res.n_users > 1000 && res.recall[0] > 0.15);
    embed_model_free(&m);
    embed_data_free(&tr);
    embed_data_free(&te);
    embed_idmap_free(&users);
    embed_idmap_free(&items);
}

int main(void) {
    const char *d = tu_mkdtemp();
    if (!d) return 1;
    snprintf(dir, sizeof(dir), "%s", d);
    TEST_RUN(test_learns_clusters);
    TEST_RUN(test_methods_and_tune);
    TEST_RUN(test_probe_matches_models);
    TEST_RUN(test_tune_rank);
    TEST_RUN(test_compress);
    TEST_RUN(test_cli);
    TEST_RUN(test_lastfm);
    tu_rmtree(dir);
    return test_summary();
}
