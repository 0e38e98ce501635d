/* Tests for retrieval/catalog: the FAISS-backed table under upserts,
 * updates, deletes and invalid input. */
#include "retrieval/catalog.h"

#include <math.h>
#include <string.h>

#include "tests/test.h"

#define DIM 4

static int put(catalog *c, const char *id, float x, float y, int in_stock) {
    float v[DIM] = {x, y, 0, 0};
    char err[256];
    catalog_item it = {(char *)id, "title", "creator", "cat", "brand", 100, in_stock};
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
    char err[256];
    size_t slot;
    TEST_REQUIRE(catalog_new(DIM, &c, err, sizeof(err)) == 0);
    TEST_CHECK(put(c, "east", 1, 0, 1) == 0);
    TEST_CHECK(put(c, "north", 0, 1, 1) == 0);
    TEST_CHECK(catalog_count(c) == 2);
    TEST_CHECK_STR(best(c, 1, 0.1f), "east");
    TEST_CHECK_STR(best(c, 0.1f, 1), "north");
    /* An update moves the vector; the count stays. */
    TEST_CHECK(put(c, "east", 0, 2, 1) == 0);
    TEST_CHECK(catalog_count(c) == 2);
    TEST_CHECK_STR(best(c, 0.1f, 1), "east");
    TEST_CHECK(catalog_delete(c, "east") == 0);
    TEST_CHECK(catalog_delete(c, "east") == -1);
    TEST_CHECK_STR(best(c, 0.1f, 1), "north");
    TEST_CHECK(catalog_lookup(c, "east", &slot) == -1);
    /* The freed slot is reused. */
    TEST_CHECK(put(c, "west", -1, 0, 0) == 0);
    TEST_CHECK(catalog_slot_limit(c) == 2);
    TEST_CHECK(catalog_lookup(c, "west", &slot) == 0 && !catalog_at(c, slot)->in_stock);
    catalog_free(c);
}

static void test_invalid_items_are_refused(void) {
    catalog *c;
    char err[256];
    float v[DIM + 1] = {1, 0, 0, 0, 0};
    catalog_item it = {"x", "t", "", "", "", 5, 1};
    TEST_CHECK(catalog_new(0, &c, err, sizeof(err)) == -1);
    TEST_REQUIRE(catalog_new(DIM, &c, err, sizeof(err)) == 0);
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
    char err[256];
    float q[DIM] = {1, 0, 0, 0}, sc[10];
    size_t slots[10];
    TEST_REQUIRE(catalog_new(DIM, &c, err, sizeof(err)) == 0);
    TEST_CHECK(catalog_search(c, q, 10, slots, sc) == 0);
    put(c, "a", 1, 0, 1);
    put(c, "b", 0.5f, 0, 1);
    TEST_CHECK(catalog_search(c, q, 10, slots, sc) == 2);
    TEST_CHECK(sc[0] >= sc[1]);
    catalog_free(c);
}

int main(void) {
    TEST_RUN(test_upsert_search_update_delete);
    TEST_RUN(test_invalid_items_are_refused);
    TEST_RUN(test_search_with_fewer_items_than_k);
    return test_summary();
}
