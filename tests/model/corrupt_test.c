/* corrupt_test.c — truncated and corrupted model and tokenizer files must
 * be refused with a message, never read out of bounds (this suite runs
 * under ASan/UBSan). A file that still loads after a change the format
 * cannot detect (a weight value, a score) must run without faults. */
#include "tests/test.h"
#include "tests/model/util.h"

#include "model/export.h"
#include "model/gguf.h"
#include "model/model.h"
#include "model/tok.h"

#include <limits.h>
#include <unistd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Loads path; if it loads, runs two positions and the GGUF vocabulary, so a
 * bad pointer would be touched. Returns the load's code. */
static int load_and_poke(const char *path, char *err, size_t errlen) {
    model *m = NULL;
    model_session *s = NULL;
    int rc;

    err[0] = '\0';
    rc = model_load(path, &m, err, errlen);
    if (rc)
        return rc;
    if (!model_session_new(m, NULL, 4, &s)) {
        model_forward(s, 1, 0);
        model_forward(s, 2, 1);
        model_session_free(s);
    }
    if (model_gguf(m)) {
        tok_tokenizer *t = NULL;
        if (!tok_load_gguf(model_gguf(m), &t, NULL, 0)) {
            int ids[64];
            size_t n;
            tok_encode(t, "Once upon a time \xc3\xa9", 1, 1, ids, 64, &n);
            for (size_t i = 1; i < n; i++) {
                size_t len;
                tok_decode(t, ids[i - 1], ids[i], &len);
            }
            tok_free(t);
        }
    }
    model_free(m);
    return 0;
}

/* Truncations must be refused with a message: at every byte of the first
 * 64, every `dense`-th byte up to `header` bytes (where the parsers do
 * their work), at 200 points spread over the rest, and the last four. The
 * copy is cut shorter in place rather than rewritten each time. */
static void check_truncations(const char *src, size_t header, size_t dense) {
    size_t size, *points, np = 0, step;
    unsigned char *buf = tu_read(src, &size);
    const char *path = tu_tmp("truncated.bin");
    char err[256];
    size_t refused = 0;

    TEST_REQUIRE(buf && size > header + 8);
    points = malloc((header + 300) * sizeof *points);
    TEST_REQUIRE(points);
    step = (size - header) / 200 + 1;
    for (size_t back = 1; back <= 4; back++)
        points[np++] = size - back;
    for (size_t n = size - 5; n > header && n < size; n -= step)
        points[np++] = n;
    for (size_t n = header + 1; n-- > 0;)
        if (n < 64 || n % dense == 0)
            points[np++] = n;
    TEST_REQUIRE(tu_write(path, buf, size) == 0);
    for (size_t i = 0; i < np; i++) {
        TEST_REQUIRE(truncate(path, (off_t)points[i]) == 0);
        if (load_and_poke(path, err, sizeof err) != 0 && err[0])
            refused++;
        else
            fprintf(stderr, "truncated at %zu of %zu: accepted\n", points[i],
                    size);
    }
    TEST_CHECK(refused == np);
    free(points);
    free(buf);
}

/* Overwrites len bytes at off of the file at path. */
static void patch(const char *path, size_t off, const void *p, size_t len) {
    FILE *f = fopen(path, "r+b");
    if (!f)
        return;
    if (fseek(f, (long)off, SEEK_SET) == 0)
        fwrite(p, 1, len, f);
    fclose(f);
}

/* Loads path with the int32 at off replaced by v, then restores it from
 * buf (the file's original bytes). */
static int load_with_i32(const char *path, const unsigned char *buf,
                         size_t off, int32_t v, char *err, size_t errlen) {
    int rc;
    patch(path, off, &v, 4);
    rc = load_and_poke(path, err, errlen);
    patch(path, off, buf + off, 4);
    return rc;
}

static const int32_t bad_values[] = {0, -1, -7, 3, 1000, 65537, INT32_MAX,
                                     INT32_MIN};

/* The seven config ints at `first`: impossible values are refused, and so
 * are plausible ones that disagree with the file size. An ak42 export has
 * nothing sized by seq_len (it only sizes the KV cache), so `free_seq`
 * accepts plausible seq_len values there. */
static void check_header_flips(const char *src, size_t first, int free_seq) {
    size_t size;
    unsigned char *buf = tu_read(src, &size);
    const char *path = tu_tmp("flipped.bin");
    char err[256];

    TEST_REQUIRE(buf);
    TEST_REQUIRE(tu_write(path, buf, size) == 0);
    for (int f = 0; f < 7; f++) {
        size_t off = first + 4 * (size_t)f;
        int32_t orig;
        memcpy(&orig, buf + off, 4);
        for (size_t k = 0; k < sizeof bad_values / sizeof bad_values[0]; k++) {
            int32_t v = bad_values[k];
            int rc;
            if (v == orig || (f == 6 && free_seq && v > 0 && v <= 1 << 20))
                continue;
            rc = load_with_i32(path, buf, off, v, err, sizeof err);
            TEST_CHECK(rc != 0 && err[0]);
            if (rc == 0)
                fprintf(stderr, "field %d = %d accepted\n", f, v);
        }
        if (orig > 0 && orig < INT32_MAX / 2 && !(f == 6 && free_seq))
            TEST_CHECK(load_with_i32(path, buf, off, orig * 2, err,
                                     sizeof err) != 0);
    }
    free(buf);
}

static void test_legacy_checkpoint(void) {
    const char *src;
    char err[256];

    if (!tu_stories_dir())
        return;
    src = tu_stories("stories260K.bin");
    TEST_CHECK(load_and_poke(src, err, sizeof err) == 0);
    check_truncations(src, 512, 4);
    check_header_flips(src, 0, 0);
    TEST_CHECK(load_and_poke(tu_tmp("does-not-exist.bin"), err, sizeof err) ==
               AISLE_EIO);
    TEST_CHECK(strstr(err, "does-not-exist") != NULL);
}

static void test_int8_export(void) {
    char err[256];
    model *m;
    const char *path = tu_tmp("q8.bin");
    size_t size;
    unsigned char *buf;

    if (!tu_stories_dir())
        return;
    TEST_REQUIRE(model_load(tu_stories("stories260K.bin"), &m, err,
                            sizeof err) == 0);
    TEST_REQUIRE(export_llama2c(m, path, 2, 0, err, sizeof err) == 0);
    model_free(m);
    TEST_CHECK(load_and_poke(path, err, sizeof err) == 0);
    check_truncations(path, 512, 4);
    check_header_flips(path, 8, 1);
    buf = tu_read(path, &size);
    TEST_REQUIRE(buf);
    /* version, group size (at the unaligned offset 37) and shared flag */
    TEST_CHECK(load_with_i32(path, buf, 4, 3, err, sizeof err) != 0);
    TEST_CHECK(strstr(err, "version") != NULL);
    for (size_t k = 0; k < sizeof bad_values / sizeof bad_values[0]; k++)
        TEST_CHECK(load_with_i32(path, buf, 37, bad_values[k], err,
                                 sizeof err) != 0);
    TEST_CHECK(load_with_i32(path, buf, 37, 2, err, sizeof err) != 0);
    patch(path, 36, "\x07", 1);
    TEST_CHECK(load_and_poke(path, err, sizeof err) != 0);
    free(buf);
}

/* Offset of the first occurrence of needle in buf, or 0. */
static size_t find(const unsigned char *buf, size_t size, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= size; i++)
        if (!memcmp(buf + i, needle, n))
            return i;
    return 0;
}

static void write_u64_at(unsigned char *b, size_t off, uint64_t v) {
    memcpy(b + off, &v, 8);
}

static void test_gguf(void) {
    char err[256];
    model *m;
    tok_tokenizer *t;
    const char *path = tu_tmp("c.gguf"), *mod = tu_tmp("mod.gguf");
    size_t size, at, hdr;
    unsigned char *buf, *copy;
    int accepted = 0;

    if (!tu_stories_dir())
        return;
    TEST_REQUIRE(model_load(tu_stories("stories260K.bin"), &m, err,
                            sizeof err) == 0);
    TEST_REQUIRE(tok_load_file(tu_stories("tok512.bin"), 512, &t, err,
                               sizeof err) == 0);
    TEST_REQUIRE(export_gguf(m, t, path, GGUF_T_Q8_0, err, sizeof err) == 0);
    tok_free(t);
    model_free(m);
    TEST_CHECK(load_and_poke(path, err, sizeof err) == 0);
    check_truncations(path, 16384, 13);

    buf = tu_read(path, &size);
    TEST_REQUIRE(buf);
    copy = malloc(size);
    TEST_REQUIRE(copy);
    TEST_REQUIRE(tu_write(mod, buf, size) == 0);
    /* Everything mutated lies in the metadata and tensor table, so each
     * case rewrites just that prefix of the file from a fresh copy. */
    hdr = find(buf, size, "output_norm.weight") + 64;
    TEST_REQUIRE(hdr > 64 && hdr < size);
#define MUTATE(stmt)                                                          \
    do {                                                                      \
        memcpy(copy, buf, hdr);                                               \
        stmt;                                                                 \
        patch(mod, 0, copy, hdr);                                             \
    } while (0)

    /* Header counts, a string length, an array count. */
    MUTATE(write_u64_at(copy, 8, UINT64_MAX));
    TEST_CHECK(load_and_poke(mod, err, sizeof err) != 0 && err[0]);
    MUTATE(write_u64_at(copy, 16, (uint64_t)1 << 40));
    TEST_CHECK(load_and_poke(mod, err, sizeof err) != 0 && err[0]);
    MUTATE(write_u64_at(copy, 24, UINT64_MAX - 3)); /* first key's length */
    TEST_CHECK(load_and_poke(mod, err, sizeof err) != 0 && err[0]);
    MUTATE(copy[4] = 1);
    TEST_CHECK(load_and_poke(mod, err, sizeof err) != 0 &&
               strstr(err, "version"));
    at = find(buf, size, "tokenizer.ggml.tokens");
    TEST_REQUIRE(at);
    /* key, then value type (4), item type (4), item count (8) */
    MUTATE(write_u64_at(copy, at + 21 + 8, UINT64_MAX / 2));
    TEST_CHECK(load_and_poke(mod, err, sizeof err) != 0 && err[0]);
    MUTATE(write_u64_at(copy, at + 21 + 8, 3)); /* fewer tokens: misparse */
    TEST_CHECK(load_and_poke(mod, err, sizeof err) != 0 && err[0]);

    /* Tensor table: dims, type and offset of token_embd. */
    at = find(buf, size, "token_embd.weight");
    TEST_REQUIRE(at);
    at += strlen("token_embd.weight");
    MUTATE(memcpy(copy + at, &(uint32_t){5}, 4));
    TEST_CHECK(load_and_poke(mod, err, sizeof err) != 0 && err[0]);
    MUTATE(write_u64_at(copy, at + 4, UINT64_MAX / 16));
    TEST_CHECK(load_and_poke(mod, err, sizeof err) != 0 && err[0]);
    MUTATE(write_u64_at(copy, at + 4 + 16 + 4, (uint64_t)size));
    TEST_CHECK(load_and_poke(mod, err, sizeof err) != 0 && err[0]);
    MUTATE(memcpy(copy + at + 4 + 16, &(uint32_t){99}, 4));
    TEST_CHECK(load_and_poke(mod, err, sizeof err) != 0 &&
               strstr(err, "type"));
    /* A type the engine does not compute with is refused by name; a K-quant
     * whose 64-value rows are not whole 256-value blocks, as a shape. */
    MUTATE(memcpy(copy + at + 4 + 16, &(uint32_t){GGUF_T_Q8_K + 1}, 4));
    TEST_CHECK(load_and_poke(mod, err, sizeof err) != 0 &&
               strstr(err, "IQ2_XXS"));
    MUTATE(memcpy(copy + at + 4 + 16, &(uint32_t){GGUF_T_Q4_K}, 4));
    TEST_CHECK(load_and_poke(mod, err, sizeof err) != 0 &&
               strstr(err, "whole Q4_K blocks"));
    at = find(buf, size, "general.architecture");
    TEST_REQUIRE(at);
    /* key, value type (4), string length (8), then "llama" */
    MUTATE(memcpy(copy + at + strlen("general.architecture") + 12, "mamba", 5));
    TEST_CHECK(load_and_poke(mod, err, sizeof err) != 0 &&
               strstr(err, "'mamba' is not supported"));

    /* Every byte of the metadata and tensor table overwritten in turn:
     * refused or harmless, never a fault. */
    for (size_t i = 0; i < hdr; i += 11) {
        MUTATE(copy[i] ^= 0xa5);
        accepted += load_and_poke(mod, err, sizeof err) == 0;
    }
    TEST_CHECK(accepted > 0); /* e.g. a changed score still loads */
#undef MUTATE
    free(copy);
    free(buf);
}

static void test_tokenizer_file(void) {
    const char *src, *path = tu_tmp("tok.bin");
    tok_tokenizer *t = NULL;
    char err[256];
    size_t size;
    unsigned char *buf;
    int refused = 0, tried = 0;

    if (!tu_stories_dir())
        return;
    src = tu_stories("tok512.bin");
    buf = tu_read(src, &size);
    TEST_REQUIRE(buf);
    for (size_t n = 0; n < size; n += 1 + n % 11) {
        TEST_REQUIRE(tu_write(path, buf, n) == 0);
        tried++;
        err[0] = '\0';
        if (tok_load_file(path, 512, &t, err, sizeof err) == 0)
            tok_free(t);
        else
            refused += err[0] != '\0';
    }
    TEST_CHECK(refused == tried);

    /* max_token_length, and the length of the first token. */
    for (size_t k = 0; k < sizeof bad_values / sizeof bad_values[0]; k++) {
        unsigned char *copy = malloc(size);
        memcpy(copy, buf, size);
        memcpy(copy + 8, &bad_values[k], 4);
        TEST_REQUIRE(tu_write(path, copy, size) == 0);
        if (tok_load_file(path, 512, &t, err, sizeof err) == 0) {
            /* length 3 only regroups bytes; still decode safely */
            size_t len;
            tok_decode(t, 0, 5, &len);
            tok_free(t);
            TEST_CHECK(bad_values[k] == 3 || bad_values[k] == 0);
        }
        memcpy(copy, buf, size);
        memcpy(copy, &bad_values[k], 4);
        TEST_REQUIRE(tu_write(path, copy, size) == 0);
        if (tok_load_file(path, 512, &t, err, sizeof err) == 0) {
            tok_free(t);
            TEST_CHECK(bad_values[k] >= 7); /* the real longest piece is 7 */
        }
        free(copy);
    }
    /* More tokens asked for than the file has. */
    TEST_CHECK(tok_load_file(src, 513, &t, err, sizeof err) != 0);
    free(buf);
}

int main(void) {
    TEST_RUN(test_legacy_checkpoint);
    TEST_RUN(test_int8_export);
    TEST_RUN(test_gguf);
    TEST_RUN(test_tokenizer_file);
    return test_summary();
}
