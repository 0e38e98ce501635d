/* Snapshot round trip, and refusal of every kind of damage: flipped bytes,
 * truncation, missing files, a forged manifest over bad contents. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "embed/crc32c.h"
#include "embed/snapshot.h"
#include "services/base/status.h"
#include "tests/embed/util.h"
#include "tests/test.h"

static char root[4096];

/* Three items a, b, c; a and c by creator "cr". */
typedef struct {
    embed_model m;
    embed_idmap items, creators;
    uint32_t item_creator[3];
} fixture;

static int fixture_init(fixture *f) {
    static const float P[] = {1, 0, 0, 1, 1, 1}, Q[] = {1, 2, 3, 4, 5, 6};
    static const uint64_t off[] = {0, 1, 2, 2};
    memset(f, 0, sizeof(*f));
    embed_idmap_init(&f->items);
    embed_idmap_init(&f->creators);
    if (embed_model_alloc(&f->m, 3, 2, 1) != 0) return -1;
    memcpy(f->m.P, P, sizeof(P));
    memcpy(f->m.Q, Q, sizeof(Q));
    memcpy(f->m.nb_off, off, sizeof(off));
    f->m.nb_item = malloc(2 * sizeof(uint32_t));
    f->m.nb_weight = malloc(2 * sizeof(float));
    if (!f->m.nb_item || !f->m.nb_weight) return -1;
    f->m.nb_item[0] = 2;
    f->m.nb_item[1] = 0;
    f->m.nb_weight[0] = 0.5f;
    f->m.nb_weight[1] = 2.0f;
    f->m.bias[1] = 0.25f;
    uint32_t row;
    if (embed_idmap_intern(&f->items, "a", 1, &row) || embed_idmap_intern(&f->items, "b", 1, &row) ||
        embed_idmap_intern(&f->items, "c", 1, &row) || embed_idmap_intern(&f->creators, "cr", 2, &row))
        return -1;
    f->item_creator[0] = 0;
    f->item_creator[1] = UINT32_MAX;
    f->item_creator[2] = 0;
    return 0;
}

static void fixture_free(fixture *f) {
    embed_model_free(&f->m);
    embed_idmap_free(&f->items);
    embed_idmap_free(&f->creators);
}

static int write_snapshot_meta(const char *dir, char *out, const char *meta) {
    fixture f;
    char err[512];
    int rc = -1;
    if (fixture_init(&f) == 0) {
        embed_snapshot_parts parts = {&f.m, &f.items, f.item_creator, &f.creators, meta};
        rc = embed_snapshot_write(dir, &parts, out, 4096, err, sizeof(err));
        if (rc) fprintf(stderr, "write: %s\n", err);
    }
    fixture_free(&f);
    return rc;
}

static int write_snapshot(const char *dir, char *out) {
    return write_snapshot_meta(dir, out, "k=v\nx=1\n");
}

static void test_round_trip(void) {
    char dir[4096], err[512], v[16];
    TEST_REQUIRE(write_snapshot(root, dir) == 0);
    embed_snapshot s;
    TEST_REQUIRE(embed_snapshot_load(dir, &s, err, sizeof(err)) == 0);
    TEST_CHECK(s.model.n_items == 3 && s.model.dim == 2);
    TEST_CHECK(s.model.P[3] == 1 && s.model.Q[5] == 6);
    TEST_CHECK(s.model.nb_off[3] == 2 && s.model.nb_item[1] == 0 && s.model.nb_weight[1] == 2.0f);
    TEST_CHECK(s.model.bias && s.model.bias[1] == 0.25f);
    uint32_t row;
    TEST_CHECK(s.items.count == 3 && embed_idmap_find(&s.items, "c", 1, &row) == AISLE_OK && row == 2);
    TEST_CHECK(s.creators.count == 1 && s.item_creator[2] == 0 && s.item_creator[1] == UINT32_MAX);
    TEST_CHECK(s.creator_vec[0] == 1.0f && s.creator_vec[1] == 0.5f); /* mean of P[a], P[c] */
    TEST_CHECK(s.index != NULL && faiss_Index_ntotal(s.index) == 3);
    TEST_CHECK(embed_snapshot_meta_get(s.meta, "x", v, sizeof(v)) == 0 && strcmp(v, "1") == 0);
    TEST_CHECK(embed_snapshot_meta_get(s.meta, "y", v, sizeof(v)) != AISLE_OK);
    TEST_CHECK(strncmp(s.version, "snap-", 5) == 0);
    TEST_CHECK(s.serve_nprobe == 0 && s.serve_lists == 0); /* written before the setting */
    embed_snapshot_free(&s);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int flip_byte(const char *path, long at) {
    FILE *f = fopen(path, "r+b");
    if (!f) return -1;
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
    return 0;
}

static void expect_refused(const char *dir, const char *want) {
    embed_snapshot s;
    char err[512] = "";
    TEST_CHECK(embed_snapshot_load(dir, &s, err, sizeof(err)) != AISLE_OK);
    TEST_CHECK(s.index == NULL && s.model.P == NULL);
    if (!strstr(err, want)) fprintf(stderr, "wanted '%s' in '%s'\n", want, err);
    TEST_CHECK(strstr(err, want) != NULL);
}

static void test_damage_refused(void) {
    static const char *files[] = {"meta.txt", "items.bin", "P.f32", "Q.faiss",
                                  "neighbors.bin", "creators.bin", "bias.f32", "MANIFEST"};
    for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k++) {
        char dir[4096], path[4200];
        TEST_REQUIRE(write_snapshot(root, dir) == 0);
        snprintf(path, sizeof(path), "%s/%s", dir, files[k]);
        long n = file_size(path);
        TEST_REQUIRE(n > 0);
        /* A flipped byte anywhere, then the same file cut short. */
        for (long at = 0; at < n; at += n / 7 + 1) {
            TEST_REQUIRE(flip_byte(path, at) == 0);
            expect_refused(dir, files[k]);
            TEST_REQUIRE(flip_byte(path, at) == 0);
        }
        TEST_REQUIRE(truncate(path, n - 3) == 0);
        expect_refused(dir, files[k]);
        TEST_REQUIRE(unlink(path) == 0);
        expect_refused(dir, files[k]);
        tu_rmtree(dir);
    }
}

static void test_forged_contents_refused(void) {
    char dir[4096], path[4200];
    /* neighbors.bin: header 8 + 4 + 4 + 8, offsets 4 x 8, then item rows:
     * point the first neighbour past the last item. */
    TEST_REQUIRE(write_snapshot(root, dir) == 0);
    snprintf(path, sizeof(path), "%s/neighbors.bin", dir);
    TEST_REQUIRE(flip_byte(path, 24 + 32 + 3) == 0);
    TEST_REQUIRE(tu_reseal(dir) == 0);
    expect_refused(dir, "neighbors.bin: malformed");
    tu_rmtree(dir);
    /* items.bin: an item count larger than the file can hold. */
    TEST_REQUIRE(write_snapshot(root, dir) == 0);
    snprintf(path, sizeof(path), "%s/items.bin", dir);
    TEST_REQUIRE(flip_byte(path, 15) == 0);
    TEST_REQUIRE(tu_reseal(dir) == 0);
    expect_refused(dir, "items.bin: malformed");
    tu_rmtree(dir);
    /* Q.faiss: the flat index's vector count (after two 37-byte headers)
     * made huge, which FAISS's own reader would try to allocate. */
    TEST_REQUIRE(write_snapshot(root, dir) == 0);
    snprintf(path, sizeof(path), "%s/Q.faiss", dir);
    TEST_REQUIRE(flip_byte(path, 74 + 6) == 0);
    TEST_REQUIRE(tu_reseal(dir) == 0);
    expect_refused(dir, "Q.faiss: not an IDMap2,Flat");
    tu_rmtree(dir);
    /* P.f32: a NaN vector component. */
    TEST_REQUIRE(write_snapshot(root, dir) == 0);
    snprintf(path, sizeof(path), "%s/P.f32", dir);
    FILE *f = fopen(path, "r+b");
    TEST_REQUIRE(f);
    float nan = NAN;
    fseek(f, 20, SEEK_SET);
    fwrite(&nan, sizeof(nan), 1, f);
    fclose(f);
    TEST_REQUIRE(tu_reseal(dir) == 0);
    expect_refused(dir, "P.f32: malformed");
    tu_rmtree(dir);
}

/* A snapshot written by another format version is refused by name. */
static void test_other_version_refused(void) {
    char dir[4096], path[4200];
    TEST_REQUIRE(write_snapshot(root, dir) == 0);
    snprintf(path, sizeof(path), "%s/MANIFEST", dir);
    char man[] = "aisle-embed-snapshot 2\n";
    char text[128];
    snprintf(text, sizeof(text), "%smanifest-crc %08x\n", man, embed_crc32c(0, man, strlen(man)));
    TEST_REQUIRE(tu_write(dir, "MANIFEST", text) != NULL);
    expect_refused(dir, "snapshot format 2, this build reads 1");
    tu_rmtree(dir);
}

/* The serving setting loads when whole; a half or malformed one refuses
 * the snapshot. */
static void test_serving_setting(void) {
    static const char *const bad[] = {
        "serve_nprobe=2\n",                  "serve_lists=256\nserve_nprobe=0\n",
        "serve_lists=256\nserve_nprobe=2x\n", "serve_lists=4\nserve_nprobe=8\n",
        "serve_lists=-1\nserve_nprobe=1\n",
    };
    char dir[4096], err[512];
    embed_snapshot s;
    TEST_REQUIRE(write_snapshot_meta(root, dir, "x=1\nserve_lists=256\nserve_nprobe=2\n") == 0);
    TEST_REQUIRE(embed_snapshot_load(dir, &s, err, sizeof(err)) == 0);
    TEST_CHECK(s.serve_nprobe == 2 && s.serve_lists == 256);
    embed_snapshot_free(&s);
    tu_rmtree(dir);
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        TEST_REQUIRE(write_snapshot_meta(root, dir, bad[k]) == 0);
        expect_refused(dir, "malformed serve_nprobe");
        tu_rmtree(dir);
    }
}

static void test_newest_skips_broken(void) {
    char sub[4200], older[4096], newer[4096], err[512], path[4200];
    snprintf(sub, sizeof(sub), "%s/newest", root);
    embed_snapshot s;
    TEST_CHECK(embed_snapshot_load_newest(sub, &s, 1, err, sizeof(err)) != AISLE_OK);
    TEST_REQUIRE(write_snapshot(sub, older) == 0);
    TEST_REQUIRE(write_snapshot(sub, newer) == 0);
    TEST_CHECK(strcmp(newer, older) > 0);
    TEST_REQUIRE(embed_snapshot_load_newest(sub, &s, 1, err, sizeof(err)) == 0);
    TEST_CHECK(strcmp(s.dir, newer) == 0);
    embed_snapshot_free(&s);
    snprintf(path, sizeof(path), "%s/P.f32", newer);
    TEST_REQUIRE(truncate(path, 10) == 0);
    TEST_REQUIRE(embed_snapshot_load_newest(sub, &s, 1, err, sizeof(err)) == 0);
    TEST_CHECK(strcmp(s.dir, older) == 0);
    embed_snapshot_free(&s);
    snprintf(path, sizeof(path), "%s/MANIFEST", older);
    TEST_REQUIRE(unlink(path) == 0);
    TEST_CHECK(embed_snapshot_load_newest(sub, &s, 1, err, sizeof(err)) != AISLE_OK);
    TEST_CHECK(strstr(err, "no valid snapshot") != NULL);
}

int main(void) {
    const char *d = tu_mkdtemp();
    if (!d) return 1;
    snprintf(root, sizeof(root), "%s", d);
    TEST_RUN(test_round_trip);
    TEST_RUN(test_damage_refused);
    TEST_RUN(test_forged_contents_refused);
    TEST_RUN(test_other_version_refused);
    TEST_RUN(test_serving_setting);
    TEST_RUN(test_newest_skips_broken);
    tu_rmtree(root);
    return test_summary();
}
