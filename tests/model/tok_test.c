/* tok_test.c — the tokenizer against a literal transcription of llama2.c's
 * encode() (rescanning every pair after each merge), and decode round
 * trips. */
#include "tests/test.h"
#include "tests/model/util.h"

#include "model/tok.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama2.c's encode(), slow and simple: piece lookup by linear scan. */
static int naive_find(const tok_tokenizer *t, const char *s, size_t len) {
    for (int i = 0; i < tok_vocab_size(t); i++) {
        size_t pl;
        const char *p = tok_piece(t, i, &pl);
        if (pl == len && !memcmp(p, s, len))
            return i;
    }
    return -1;
}

static size_t naive_encode(const tok_tokenizer *t, const char *text, int *out) {
    size_t n = 0, len = strlen(text);
    char buf[64];

    out[n++] = 1;
    if (text[0])
        out[n++] = naive_find(t, " ", 1);
    for (size_t i = 0; i < len;) {
        size_t j = i + 1;
        int id;
        while (j < len && ((unsigned char)text[j] & 0xc0) == 0x80 && j - i < 4)
            j++;
        id = naive_find(t, text + i, j - i);
        if (id >= 0)
            out[n++] = id;
        else
            for (size_t k = i; k < j; k++)
                out[n++] = (unsigned char)text[k] + 3;
        i = j;
    }
    for (;;) {
        float best = -1e10f;
        int best_id = -1;
        size_t best_i = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            size_t la, lb;
            const char *a = tok_piece(t, out[i], &la);
            const char *b = tok_piece(t, out[i + 1], &lb);
            int id;
            if (la + lb > sizeof buf)
                continue;
            memcpy(buf, a, la);
            memcpy(buf + la, b, lb);
            id = naive_find(t, buf, la + lb);
            if (id >= 0 && tok_score(t, id) > best) {
                best = tok_score(t, id);
                best_id = id;
                best_i = i;
            }
        }
        if (best_id < 0)
            break;
        out[best_i] = best_id;
        memmove(out + best_i + 1, out + best_i + 2,
                (n - best_i - 2) * sizeof *out);
        n--;
    }
    return n;
}

static const char *const samples[] = {
    "Once upon a time",
    "",
    " ",
    "  two  spaces  ",
    "Lily and Ben went to the park. They saw a big, red ball!\n\"Hi,\" she said.",
    "caf\xc3\xa9 na\xc3\xafve \xe2\x82\xac 5 \xf0\x9f\x98\x80",
    "\xff\xfe broken \x80 utf8 \xe2\x82",
    "<0x41> <s> </s>\ttab\r\n",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};

static tok_tokenizer *load(void) {
    tok_tokenizer *t = NULL;
    char err[256];
    if (tok_load_file(tu_stories("tok512.bin"), 512, &t, err, sizeof err))
        fprintf(stderr, "tok_load_file: %s\n", err);
    return t;
}

static void check_same_as_naive(const tok_tokenizer *t, const char *text) {
    int got[512], want[512];
    size_t n, wn;

    TEST_REQUIRE(strlen(text) + 3 <= 512);
    TEST_CHECK(tok_encode(t, text, 1, 0, got, 512, &n) == 0);
    wn = naive_encode(t, text, want);
    TEST_CHECK(n == wn && !memcmp(got, want, n * sizeof *got));
    if (n != wn || memcmp(got, want, n * sizeof *got))
        fprintf(stderr, "encode mismatch for \"%s\"\n", text);
}

/* Concatenated pieces after BOS reproduce the text exactly. */
static void check_round_trip(const tok_tokenizer *t, const char *text) {
    int ids[512];
    char out[2048];
    size_t n, at = 0;

    TEST_REQUIRE(tok_encode(t, text, 1, 1, ids, 512, &n) == 0);
    TEST_CHECK(ids[0] == tok_bos(t) && ids[n - 1] == tok_eos(t));
    for (size_t i = 1; i < n; i++) {
        size_t len;
        const char *p = tok_decode(t, ids[i - 1], ids[i], &len);
        TEST_REQUIRE(at + len < sizeof out);
        memcpy(out + at, p, len);
        at += len;
    }
    out[at] = '\0';
    TEST_CHECK_STR(out, text);
}

static void test_encode_matches_llama2c(void) {
    tok_tokenizer *t;
    uint64_t rng = 88172645463325252ull;
    char text[200];

    if (!tu_stories_dir())
        return;
    t = load();
    TEST_REQUIRE(t);
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
        check_same_as_naive(t, samples[i]);
    /* Random strings over letters, spaces, punctuation and UTF-8. */
    for (int k = 0; k < 60; k++) {
        static const char *const atoms[] = {"a", "e", "t", "h", " ", "the",
                                            ".", ",", "Lily", "\xc3\xa9",
                                            "\xe2\x82\xac", "\n", "ing"};
        size_t len = 0;
        for (int j = 0; j < 30; j++) {
            const char *a;
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            a = atoms[rng % (sizeof atoms / sizeof atoms[0])];
            if (len + strlen(a) + 1 > sizeof text)
                break;
            memcpy(text + len, a, strlen(a));
            len += strlen(a);
        }
        text[len] = '\0';
        check_same_as_naive(t, text);
        check_round_trip(t, text);
    }
    tok_free(t);
}

static void test_round_trips_and_bytes(void) {
    tok_tokenizer *t;
    int ids[64];
    size_t n, len;
    const char *p;

    if (!tu_stories_dir())
        return;
    t = load();
    TEST_REQUIRE(t);
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
        if (samples[i][0] != ' ') /* a leading space is eaten after BOS */
            check_round_trip(t, samples[i]);

    /* An empty prompt is BOS alone: no dummy prefix. */
    TEST_CHECK(tok_encode(t, "", 1, 0, ids, 64, &n) == 0 && n == 1);
    /* U+4E2D is not in the 512-token vocabulary: three byte tokens after
     * the dummy prefix. */
    TEST_CHECK(tok_encode(t, "\xe4\xb8\xad", 0, 0, ids, 64, &n) == 0);
    TEST_CHECK(n == 4 && ids[1] == 0xe4 + 3 && ids[2] == 0xb8 + 3 &&
               ids[3] == 0xad + 3);
    p = tok_decode(t, ids[2], ids[3], &len);
    TEST_CHECK(len == 1 && (unsigned char)p[0] == 0xad);
    TEST_CHECK(tok_type(t, 0xad + 3) == TOK_BYTE);
    /* Control tokens and out-of-range ids decode to nothing. */
    tok_decode(t, 0, tok_bos(t), &len);
    TEST_CHECK(len == 0);
    tok_decode(t, 0, tok_eos(t), &len);
    TEST_CHECK(len == 0);
    tok_decode(t, 0, 512, &len);
    TEST_CHECK(len == 0);
    tok_decode(t, 0, -1, &len);
    TEST_CHECK(len == 0);
    /* The leading space goes only right after BOS. */
    TEST_CHECK(tok_encode(t, "Once", 1, 0, ids, 64, &n) == 0 && n == 2);
    p = tok_decode(t, tok_bos(t), ids[1], &len);
    TEST_CHECK(len == 4 && !memcmp(p, "Once", 4));
    p = tok_decode(t, 300, ids[1], &len);
    TEST_CHECK(len == 5 && !memcmp(p, " Once", 5));
    /* Too little room is reported, not overrun. */
    TEST_CHECK(tok_encode(t, "Once upon", 1, 0, ids, 5, &n) == AISLE_EFULL);
    tok_free(t);
}

int main(void) {
    TEST_RUN(test_encode_matches_llama2c);
    TEST_RUN(test_round_trips_and_bytes);
    return test_summary();
}
