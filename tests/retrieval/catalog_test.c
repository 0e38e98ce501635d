/* Tests for retrieval/catalog: the FAISS-backed table under upserts,
 * updates, deletes and invalid input. */
#include "retrieval/catalog.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

#include "services/base/clock.h"
#include "services/base/status.h"
#include "tests/test.h"

#define DIM 4

static int new_catalog(int dim, size_t ivf_threshold, catalog **c) {
    catalog_config cfg;
    char err[256];
    catalog_config_default(&cfg);
    cfg.dim = dim;
    cfg.ivf_threshold = ivf_threshold;
    return catalog_new(&cfg, c, err, sizeof(err));
}

static int put(catalog *c, const char *id, float x, float y, int in_stock) {
    float v[DIM] = {x, y, 0, 0};
    char err[256];
    catalog_item it = {(char *)id, "title", "creator", "cat", "brand", 100, in_stock, ""};
    return catalog_upsert(c, &it, v, DIM, err, sizeof(err));
}

static const char *best(catalog *c, float x, float y) {
    float q[DIM] = {x, y, 0, 0}, sc[1];
    size_t slot[1];
    const char *id = NULL;
    catalog_read_begin(c);
    if (catalog_search(c, q, 1, slot, sc) == 1) id = catalog_at(c, slot[0])->item_id;
    catalog_read_end(c);
    return id;
}

static void test_upsert_search_update_delete(void) {
    catalog *c;
    size_t slot;
    uint64_t gen;
    TEST_REQUIRE(new_catalog(DIM, 0, &c) == 0);
    TEST_CHECK(put(c, "east", 1, 0, 1) == 0);
    TEST_CHECK(put(c, "north", 0, 1, 1) == 0);
    TEST_CHECK(catalog_count(c) == 2);
    TEST_CHECK_STR(best(c, 1, 0.1f), "east");
    TEST_CHECK_STR(best(c, 0.1f, 1), "north");
    /* An update moves the vector; the count and the ids' slots stay. */
    gen = catalog_id_generation(c);
    TEST_CHECK(put(c, "east", 0, 2, 1) == 0);
    TEST_CHECK(catalog_count(c) == 2);
    TEST_CHECK(catalog_id_generation(c) == gen);
    TEST_CHECK_STR(best(c, 0.1f, 1), "east");
    TEST_CHECK(catalog_delete(c, "east") == 0);
    TEST_CHECK(catalog_id_generation(c) != gen);
    gen = catalog_id_generation(c);
    TEST_CHECK(catalog_delete(c, "east") == AISLE_ENOTFOUND);
    TEST_CHECK_STR(best(c, 0.1f, 1), "north");
    TEST_CHECK(catalog_lookup(c, "east", &slot) == AISLE_ENOTFOUND);
    /* The freed slot is reused. */
    TEST_CHECK(put(c, "west", -1, 0, 0) == 0);
    TEST_CHECK(catalog_id_generation(c) != gen);
    TEST_CHECK(catalog_slot_limit(c) == 2);
    TEST_CHECK(catalog_lookup(c, "west", &slot) == 0 && !catalog_at(c, slot)->in_stock);
    catalog_free(c);
}

static void test_invalid_items_are_refused(void) {
    catalog *c;
    char err[256];
    float v[DIM + 1] = {1, 0, 0, 0, 0};
    catalog_item it = {"x", "t", "", "", "", 5, 1, ""};
    TEST_CHECK(new_catalog(0, 0, &c) == -1);
    TEST_CHECK(new_catalog(DIM, 10, &c) == -1);
    TEST_REQUIRE(new_catalog(DIM, 0, &c) == 0);
    TEST_CHECK(catalog_upsert(c, &it, v, DIM + 1, err, sizeof(err)) == -1);
    TEST_CHECK(strstr(err, "embedding has 5 values") != NULL);
    v[2] = NAN;
    TEST_CHECK(catalog_upsert(c, &it, v, DIM, err, sizeof(err)) == -1);
    TEST_CHECK(strstr(err, "not finite") != NULL);
    v[2] = 0;
    it.item_id = "";
    TEST_CHECK(catalog_upsert(c, &it, v, DIM, err, sizeof(err)) == -1);
    it.item_id = "x";
    it.price_cents = -1;
    TEST_CHECK(catalog_upsert(c, &it, v, DIM, err, sizeof(err)) == -1);
    TEST_CHECK(catalog_count(c) == 0);
    catalog_free(c);
}

static void test_search_with_fewer_items_than_k(void) {
    catalog *c;
    float q[DIM] = {1, 0, 0, 0}, sc[10];
    size_t slots[10];
    TEST_REQUIRE(new_catalog(DIM, 0, &c) == 0);
    TEST_CHECK(catalog_search(c, q, 10, slots, sc) == 0);
    put(c, "a", 1, 0, 1);
    put(c, "b", 0.5f, 0, 1);
    TEST_CHECK(catalog_search(c, q, 10, slots, sc) == 2);
    TEST_CHECK(sc[0] >= sc[1]);
    catalog_free(c);
}

/* How many of exact's k nearest ivf also finds, summed over nq queries:
 * the rows 0, 97, 194 ... of vecs (d floats each). */
static int search_agreement(catalog *exact, catalog *ivf, const float *vecs, int d, int nq, int k) {
    size_t a[16], b[16];
    float sa[16], sb[16];
    int agree = 0;
    assert(k <= 16);
    for (int q = 0; q < nq; q++) {
        const float *v = vecs + (size_t)q * 97 * (size_t)d;
        int na = catalog_search(exact, v, k, a, sa), nb = catalog_search(ivf, v, k, b, sb);
        TEST_CHECK(na == k && nb == k);
        for (int i = 0; i < na; i++)
            for (int j = 0; j < nb; j++) agree += a[i] == b[j];
    }
    return agree;
}

/* Past the threshold the index becomes IVF; its answers stay close to the
 * exact ones, and updates and deletes keep working. */
static void test_switch_to_ivf(void) {
    enum { N = 12000, D = 16, CL = 40, Q = 50, K = 10 };
    catalog *exact, *ivf;
    static float vecs[N][D];
    uint64_t rng = 12345;
    char id[16], err[256];
    int agree = 0;
    TEST_REQUIRE(new_catalog(D, 0, &exact) == 0);
    TEST_REQUIRE(new_catalog(D, 10000, &ivf) == 0);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            float noise = (float)((rng >> 40) & 0xffff) / 65536.0f - 0.5f;
            vecs[i][j] = (j == (i % CL) % D ? 1.0f : 0.0f) + ((i % CL) / D) * 0.3f * (j == 0) +
                         0.3f * noise;
        }
        snprintf(id, sizeof(id), "i%d", i);
        catalog_item it = {id, "", "", "", "", 1, 1, ""};
        TEST_REQUIRE(catalog_upsert(exact, &it, vecs[i], D, err, sizeof(err)) == 0);
        TEST_REQUIRE(catalog_upsert(ivf, &it, vecs[i], D, err, sizeof(err)) == 0);
    }
    TEST_CHECK(catalog_ivf_lists(exact) == 0);
    TEST_CHECK(catalog_ivf_lists(ivf) >= 16);
    agree = search_agreement(exact, ivf, &vecs[0][0], D, Q, K);
    TEST_CHECK(agree >= Q * K * 8 / 10); /* recall@10 of at least 0.8 */
    /* The probe count changes on the built index: every list finds at
     * least what one does, and nearly all of the exact answers. */
    catalog_set_nprobe(ivf, 1);
    int one = search_agreement(exact, ivf, &vecs[0][0], D, Q, K);
    catalog_set_nprobe(ivf, catalog_ivf_lists(ivf));
    int all = search_agreement(exact, ivf, &vecs[0][0], D, Q, K);
    TEST_CHECK(all >= one && all >= agree && all >= Q * K * 95 / 100);
    catalog_set_nprobe(ivf, 0); /* back to the default */
    TEST_CHECK(search_agreement(exact, ivf, &vecs[0][0], D, Q, K) == agree);
    /* Updates and deletes after the switch. */
    float far[D] = {0};
    far[D - 1] = 50;
    catalog_item moved = {"i5", "", "", "", "", 1, 1, ""};
    TEST_CHECK(catalog_upsert(ivf, &moved, far, D, err, sizeof(err)) == 0);
    TEST_CHECK(catalog_delete(ivf, "i6") == 0);
    size_t slot[1];
    float sc[1];
    TEST_CHECK(catalog_search(ivf, far, 1, slot, sc) == 1 &&
               strcmp(catalog_at(ivf, slot[0])->item_id, "i5") == 0);
    TEST_CHECK(catalog_count(ivf) == N - 1);
    catalog_free(exact);
    catalog_free(ivf);
}

/* A snapshot trained before an item was deleted must not bring it back,
 * in stock at price 0, on a reload; an item added again after the
 * deletion is served again. Neighbour lists lose entries that point at
 * the deleted item. */
static void test_snapshot_keeps_deletions(void) {
    static const char *ids[] = {"keep", "gone", "never-seen"};
    static const float P[3 * DIM] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
    static const uint64_t nb_off[4] = {0, 1, 2, 2};
    static const uint32_t nb_item[2] = {1, 0};
    static const float nb_w[2] = {0.5f, 0.5f};
    catalog_snapshot snap = {"snap-1", 3, DIM, ids, P, P, nb_off, nb_item, nb_w, NULL};
    catalog *c;
    size_t slot, n;
    const uint32_t *nb;
    const float *w;
    char err[256];
    TEST_REQUIRE(new_catalog(DIM, 0, &c) == 0);
    TEST_REQUIRE(put(c, "keep", 1, 0, 1) == 0);
    TEST_REQUIRE(put(c, "gone", 0, 1, 1) == 0);
    TEST_CHECK(catalog_delete(c, "gone") == AISLE_OK);
    TEST_CHECK(catalog_load_snapshot(c, &snap, err, sizeof(err)) == AISLE_OK);
    catalog_read_begin(c);
    TEST_CHECK(catalog_lookup(c, "gone", &slot) == AISLE_ENOTFOUND);
    TEST_CHECK(catalog_lookup(c, "never-seen", &slot) == AISLE_OK); /* snapshot-only: kept */
    TEST_REQUIRE(catalog_lookup(c, "keep", &slot) == AISLE_OK);
    catalog_neighbours(c, slot, &nb, &w, &n);
    TEST_CHECK(n == 0); /* its one neighbour was the deleted item */
    catalog_read_end(c);
    TEST_CHECK(catalog_count(c) == 2);
    /* Deleting an item the catalog never had still keeps it out. */
    TEST_CHECK(catalog_delete(c, "never-seen") == AISLE_OK);
    TEST_CHECK(catalog_load_snapshot(c, &snap, err, sizeof(err)) == AISLE_OK);
    catalog_read_begin(c);
    TEST_CHECK(catalog_lookup(c, "never-seen", &slot) == AISLE_ENOTFOUND);
    catalog_read_end(c);
    /* Upserted again: back for good. */
    TEST_REQUIRE(put(c, "gone", 0, 1, 1) == 0);
    TEST_CHECK(catalog_load_snapshot(c, &snap, err, sizeof(err)) == AISLE_OK);
    catalog_read_begin(c);
    TEST_CHECK(catalog_lookup(c, "gone", &slot) == AISLE_OK);
    catalog_read_end(c);
    catalog_free(c);
}

/* max_neighbours keeps the first (heaviest) entries of each list that
 * still point at live items; packed facets follow stock, price and
 * deletion. */
static void test_neighbour_cap_and_facets(void) {
    static const char *ids[] = {"a", "b", "c", "d"};
    static const float P[4 * DIM] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    static const uint64_t nb_off[5] = {0, 3, 3, 3, 3};
    static const uint32_t nb_item[3] = {3, 1, 2};
    static const float nb_w[3] = {0.9f, 0.5f, 0.1f};
    catalog_snapshot snap = {"snap-1", 4, DIM, ids, P, P, nb_off, nb_item, nb_w, NULL};
    catalog_config cfg;
    catalog *c;
    size_t slot, sb, n;
    const uint32_t *nb;
    const float *w;
    char err[256];
    catalog_config_default(&cfg);
    cfg.dim = DIM;
    cfg.ivf_threshold = 0;
    cfg.max_neighbours = 2;
    TEST_REQUIRE(catalog_new(&cfg, &c, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(put(c, "d", 0, 1, 0) == 0);
    TEST_CHECK(catalog_delete(c, "d") == AISLE_OK);
    TEST_REQUIRE(put(c, "b", 0, 1, 0) == 0);
    TEST_CHECK(catalog_load_snapshot(c, &snap, err, sizeof(err)) == AISLE_OK);
    catalog_read_begin(c);
    TEST_REQUIRE(catalog_lookup(c, "a", &slot) == AISLE_OK && catalog_lookup(c, "b", &sb) == 0);
    catalog_neighbours(c, slot, &nb, &w, &n);
    TEST_CHECK(n == 2 && nb[0] == sb && w[0] == 0.5f && w[1] == 0.1f); /* d is gone */
    TEST_CHECK(catalog_facets_at(c, slot)->live && catalog_facets_at(c, slot)->in_stock);
    TEST_CHECK(catalog_facets_at(c, sb)->live && !catalog_facets_at(c, sb)->in_stock &&
               catalog_facets_at(c, sb)->price_cents == 100);
    catalog_read_end(c);
    TEST_CHECK(catalog_delete(c, "b") == AISLE_OK);
    catalog_read_begin(c);
    TEST_CHECK(!catalog_facets_at(c, sb)->live);
    catalog_read_end(c);
    catalog_free(c);
}

/* Readers that keep the read lock held in overlapping turns (requests
 * under load) must not keep a catalog event out for good. */
typedef struct reader_arg {
    catalog *c;
    atomic_int *stop, *done;
} reader_arg;

static void *overlapping_reader(void *arg) {
    reader_arg *r = arg;
    while (!atomic_load(r->stop)) {
        catalog_read_begin(r->c);
        usleep(2000);
        catalog_read_end(r->c);
    }
    return NULL;
}

static void *twenty_updates(void *arg) {
    reader_arg *r = arg;
    for (int i = 0; i < 20; i++) put(r->c, "w", (float)i, 1, 1);
    atomic_store(r->done, 1);
    return NULL;
}

static void test_writer_is_not_starved(void) {
    enum { READERS = 4 };
    catalog *c;
    pthread_t t[READERS], writer;
    atomic_int stop = 0, done = 0;
    reader_arg ra = {NULL, &stop, &done};
    int64_t t0;
    TEST_REQUIRE(new_catalog(DIM, 0, &c) == 0);
    ra.c = c;
    for (int i = 0; i < READERS; i++) pthread_create(&t[i], NULL, overlapping_reader, &ra);
    usleep(20000);
    pthread_create(&writer, NULL, twenty_updates, &ra);
    /* With readers preferred the updates wait as long as the readers run;
     * the bound is far above the few lock waits they need. */
    for (t0 = clock_mono_ms(); !atomic_load(&done) && clock_mono_ms() - t0 < 10000;)
        usleep(1000);
    TEST_CHECK(atomic_load(&done));
    atomic_store(&stop, 1);
    for (int i = 0; i < READERS; i++) pthread_join(t[i], NULL);
    pthread_join(writer, NULL);
    catalog_free(c);
}

int main(void) {
    TEST_RUN(test_snapshot_keeps_deletions);
    TEST_RUN(test_neighbour_cap_and_facets);
    TEST_RUN(test_writer_is_not_starved);
    TEST_RUN(test_upsert_search_update_delete);
    TEST_RUN(test_invalid_items_are_refused);
    TEST_RUN(test_search_with_fewer_items_than_k);
    TEST_RUN(test_switch_to_ivf);
    return test_summary();
}
