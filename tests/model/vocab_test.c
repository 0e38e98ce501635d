/* vocab_test.c — the GGUF tokenizers against llama.cpp's own ids, on the
 * reference data in shared/models/gguf: every case of llama.cpp's
 * tokenizer tests in vocab/ (ggml-vocab-NAME.gguf with .inp and .out),
 * and each model's NAME.tokens from prompt.txt (BOS where the vocabulary
 * adds one, special tokens parsed). Files are found by listing the
 * directories, so held-back vocabularies are checked the same way.
 * AISLE_VOCAB_DIR names one more directory of vocab test files (such as
 * llama.cpp's models/): files there without an .inp are skipped, and a
 * vocabulary of a kind the engine does not implement must be refused
 * with a message. */
#include "tests/test.h"
#include "tests/model/util.h"

#include "model/gguf.h"
#include "model/tok.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEP "\n__ggml_vocab_test__\n"

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Encodes text and compares with the ids written in want (a line of
 * space-separated numbers); prints both on a mismatch. */
static int same_ids(const tok_tokenizer *t, const char *text, size_t len,
                    int flags, const char *want, const char *what) {
    size_t cap = 2 * len + 8, n = 0, k = 0;
    int *ids = malloc(cap * sizeof *ids), ok;
    const char *p = want;
    char *end;

    if (!ids || tok_encode_ex(t, text, len, flags, ids, cap, &n)) {
        free(ids);
        return 0;
    }
    for (ok = 1;; p = end, k++) {
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        if (k >= n || ids[k] != v)
            ok = 0;
    }
    ok = ok && k == n;
    if (!ok) {
        fprintf(stderr, "%s: \"%.*s\"\n  want%s\n  got ", what, (int)len,
                text, want);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return ok;
}

/* Whether the GGUF file at path names a tokenizer the engine implements
 * (tokenizer.ggml.model llama or gpt2); a file that does not parse
 * counts as one, so that loading it reports the error. */
static int known_kind(const char *path) {
    gguf_image img = {0};
    gguf_file *g = NULL;
    gguf_str kind = {0};
    char err[256];
    int known = 1;

    if (!gguf_map(path, &img, err, sizeof err) &&
        !gguf_open(img.data, img.size, &g, err, sizeof err) &&
        !gguf_get_str(g, "tokenizer.ggml.model", &kind))
        known = (kind.len == 5 && !memcmp(kind.p, "llama", 5)) ||
                (kind.len == 4 && !memcmp(kind.p, "gpt2", 4));
    gguf_close(g);
    gguf_unmap(&img);
    return known;
}

/* Every case of one vocab test: .inp texts against .out lines. */
static void check_vocab(const char *dir, const char *file) {
    char path[4096 + 512], err[512] = "";
    tok_tokenizer *t = NULL;
    unsigned char *inp, *out;
    size_t ni, no;
    char *text, *line;
    int cases = 0, good = 0;

    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (!known_kind(path)) {
        TEST_CHECK(tok_load_path(path, &t, err, sizeof err) != 0 && !t &&
                   err[0]);
        fprintf(stderr, "%s: refused: %s\n", file, err);
        return;
    }
    if (tok_load_path(path, &t, err, sizeof err))
        fprintf(stderr, "%s: %s\n", file, err);
    TEST_REQUIRE(t);
    snprintf(path, sizeof path, "%s/%s.inp", dir, file);
    inp = tu_read(path, &ni);
    snprintf(path, sizeof path, "%s/%s.out", dir, file);
    out = tu_read(path, &no);
    TEST_REQUIRE(inp && out);
    inp[ni] = out[no] = '\0';
    text = (char *)inp;
    line = (char *)out;
    for (char *sep; (sep = strstr(text, SEP)); text = sep + strlen(SEP)) {
        char *nl = strchr(line, '\n');
        TEST_REQUIRE(nl);
        *nl = '\0';
        cases++;
        good += same_ids(t, text, (size_t)(sep - text), 0, line, file);
        line = nl + 1;
    }
    fprintf(stderr, "%s: %d/%d cases give llama.cpp's ids\n", file, good,
            cases);
    TEST_CHECK(cases > 0 && good == cases);
    free(inp);
    free(out);
    tok_free(t);
}

/* Checks every vocab file in dir; with `all`, each must have its test
 * texts (the shared directory), else those without are skipped. */
static int check_vocab_dir(const char *dir, int all) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    TEST_CHECK(d != NULL);
    while (d && (e = readdir(d))) {
        char inp[4096 + 512];
        FILE *f;
        if (!ends_with(e->d_name, ".gguf"))
            continue;
        snprintf(inp, sizeof inp, "%s/%s.inp", dir, e->d_name);
        if (!all && !(f = fopen(inp, "r"))) {
            fprintf(stderr, "%s: no test texts, skipped\n", e->d_name);
            continue;
        }
        if (!all)
            fclose(f);
        check_vocab(dir, e->d_name);
        n++;
    }
    if (d)
        closedir(d);
    return n;
}

static void test_vocab_cases_match_llama_cpp(void) {
    const char *gguf = tu_gguf_dir(), *extra = getenv("AISLE_VOCAB_DIR");
    char dir[4096];

    if (extra && *extra)
        TEST_CHECK(check_vocab_dir(extra, 0) > 0);
    if (!gguf)
        return;
    snprintf(dir, sizeof dir, "%s/vocab", gguf);
    TEST_CHECK(check_vocab_dir(dir, 1) > 0);
}

static void test_prompt_tokens_match_llama_cpp(void) {
    const char *dir = tu_gguf_dir();
    char path[4096], err[512];
    unsigned char *prompt;
    size_t np;
    DIR *d;
    struct dirent *e;
    int n = 0;

    if (!dir)
        return;
    snprintf(path, sizeof path, "%s/prompt.txt", dir);
    TEST_REQUIRE((prompt = tu_read(path, &np)) != NULL);
    TEST_REQUIRE((d = opendir(dir)) != NULL);
    while ((e = readdir(d))) {
        tok_tokenizer *t = NULL;
        unsigned char *want;
        size_t nw, len = strlen(e->d_name);
        if (!ends_with(e->d_name, ".tokens"))
            continue;
        snprintf(path, sizeof path, "%s/%.*s.gguf", dir,
                 (int)(len - strlen(".tokens")), e->d_name);
        err[0] = '\0';
        if (tok_load_path(path, &t, err, sizeof err))
            fprintf(stderr, "%s: %s\n", path, err);
        TEST_CHECK(t != NULL);
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        want = tu_read(path, &nw);
        TEST_CHECK(want != NULL);
        if (t && want) {
            want[nw] = '\0';
            TEST_CHECK(same_ids(t, (const char *)prompt, np,
                                TOK_ADD_BOS | TOK_SPECIAL, (char *)want,
                                e->d_name));
            n++;
        }
        free(want);
        tok_free(t);
    }
    closedir(d);
    free(prompt);
    TEST_CHECK(n > 0);
}

int main(void) {
    TEST_RUN(test_vocab_cases_match_llama_cpp);
    TEST_RUN(test_prompt_tokens_match_llama_cpp);
    return test_summary();
}
