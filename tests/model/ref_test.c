/* ref_test.c — conformance with llama.cpp on the reference data in
 * shared/models/gguf (see its README): for every NAME.gguf there with a
 * NAME.ref.jsonl, the teacher-forced logits of NAME.tokens must pick
 * llama.cpp's top token at >= 98% of positions and stay close to its
 * top-40 logits. Files are found by listing the directory, so held-back
 * files of the same kinds are checked the same way; AISLE_REF_DIR names
 * one more directory to check.
 *
 * Quantized files need llama.cpp's own arithmetic to the last bit (the
 * activation types of its products, its half-precision attention, the
 * order of its sums: model.c, ggml_math), because the tiny random models'
 * top two logits are often closer than one int8 rounding moves them. */
#include "tests/test.h"
#include "tests/model/util.h"

#include "model/model.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF_TOP 40

/* Whitespace-separated ids of a file into a malloc'd array; NULL on error. */
static int *read_ids(const char *path, int *n) {
    size_t size;
    char *text = (char *)tu_read(path, &size), *p, *end;
    int *ids = NULL, cap = 0;

    *n = 0;
    if (!text)
        return NULL;
    text[size] = '\0';
    for (p = text;; p = end) {
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            ids = realloc(ids, (size_t)cap * sizeof *ids);
            if (!ids)
                break;
        }
        ids[(*n)++] = (int)v;
    }
    free(text);
    return ids;
}

/* Parses the "top" list of one reference line: up to REF_TOP (id, logit). */
static int parse_top(const char *line, int *ids, double *vals) {
    const char *p = strstr(line, "\"top\"");
    int n = 0;
    char *end;

    if (!p || !(p = strchr(p, '[')))
        return 0;
    p++;
    while (n < REF_TOP && (p = strchr(p, '['))) {
        ids[n] = (int)strtol(p + 1, &end, 10);
        p = strchr(end, ',');
        if (!p)
            break;
        vals[n++] = strtod(p + 1, &end);
        p = end;
    }
    return n;
}

typedef struct ref_stats {
    int positions, agree;
    double mad, spread; /* sums over positions */
} ref_stats;

/* Teacher-forces name's tokens and compares each position with the
 * reference line for it. */
static void check_model(const char *dir, const char *name) {
    char path[4096], err[512] = "", *line = NULL;
    size_t cap = 0;
    model *m = NULL;
    model_session *s = NULL;
    int *ids, n;
    FILE *ref;
    ref_stats st = {0};

    snprintf(path, sizeof path, "%s/%s.tokens", dir, name);
    ids = read_ids(path, &n);
    TEST_REQUIRE(ids && n > 0);
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    if (model_load(path, &m, err, sizeof err))
        fprintf(stderr, "%s: %s\n", name, err);
    TEST_REQUIRE(m);
    TEST_REQUIRE(model_session_new(m, NULL, n, &s) == 0);
    snprintf(path, sizeof path, "%s/%s.ref.jsonl", dir, name);
    ref = fopen(path, "r");
    TEST_REQUIRE(ref);
    for (int pos = 0; pos < n && getline(&line, &cap, ref) > 0; pos++) {
        int rid[REF_TOP], k, best = 0;
        double rv[REF_TOP], d = 0.0;
        const float *lg;

        TEST_REQUIRE(model_session_push(s, ids[pos]) == 0);
        TEST_REQUIRE((lg = model_session_logits(s)) != NULL);
        k = parse_top(line, rid, rv);
        TEST_REQUIRE(k > 1);
        for (int i = 1; i < model_get_config(m)->vocab_size; i++)
            if (lg[i] > lg[best])
                best = i;
        for (int i = 0; i < k; i++)
            d += fabs(lg[rid[i]] - rv[i]);
        st.positions++;
        st.agree += best == rid[0];
        st.mad += d / k;
        st.spread += rv[0] - rv[k - 1];
    }
    TEST_CHECK(st.positions == n);
    fprintf(stderr, "%s: top-1 agrees at %d/%d positions (%.1f%%), mean |diff| "
            "over llama.cpp's top-40 %.4f, their spread (top1 - top40) %.3f\n",
            name, st.agree, st.positions, 100.0 * st.agree / st.positions,
            st.mad / st.positions, st.spread / st.positions);
    TEST_CHECK(st.agree * 100 >= st.positions * 98);
    TEST_CHECK(st.mad < 0.01 * st.spread);
    fclose(ref);
    free(line);
    free(ids);
    model_session_free(s);
    model_free(m);
}

/* Checks every NAME.ref.jsonl in dir; returns how many. */
static int check_dir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int checked = 0;

    TEST_CHECK(d != NULL);
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name), sl = strlen(".ref.jsonl");
        char name[256];
        if (len <= sl || len - sl >= sizeof name ||
            strcmp(e->d_name + len - sl, ".ref.jsonl"))
            continue;
        memcpy(name, e->d_name, len - sl);
        name[len - sl] = '\0';
        check_model(dir, name);
        checked++;
    }
    if (d)
        closedir(d);
    return checked;
}

/* The shared files, and those of AISLE_REF_DIR when set (more files laid
 * out the same way, such as other weight types made with llama.cpp). */
static void test_logits_match_llama_cpp(void) {
    const char *dir = tu_gguf_dir(), *extra = getenv("AISLE_REF_DIR");

    if (extra && *extra)
        TEST_CHECK(check_dir(extra) > 0);
    if (dir)
        TEST_CHECK(check_dir(dir) > 0);
}

int main(void) {
    TEST_RUN(test_logits_match_llama_cpp);
    return test_summary();
}
