/* rope_test.c — GGUF RoPE metadata on tiny random llama files written
 * here with the engine's own GGUF writer: llama's per-pair frequency
 * factors (rope_freqs.weight, as Llama 3.1/3.2 files carry) and linear
 * scaling act as llama.cpp applies them (a factor of 2 on every pair is
 * linear scaling by 2, to the bit; factors of 1 change nothing), and the
 * scalings the engine does not implement are refused with a message
 * naming them. */
#include "tests/test.h"
#include "tests/model/util.h"

#include "model/gguf.h"
#include "model/model.h"
#include "services/base/status.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DIM = 64, HID = 96, HEADS = 2, KV_HEADS = 1, VOCAB = 48, HS = 32 };

/* Rows of one tensor: deterministic noise seeded by `seed`, or all `fill`
 * when it is non-zero (norms, frequency factors). */
typedef struct rows {
    uint32_t seed;
    uint64_t width;
    float fill;
} rows;

static int row_fn(void *ud, uint64_t row, float *dst) {
    const rows *r = ud;
    for (uint64_t j = 0; j < r->width; j++) {
        uint32_t h = r->seed * 2654435761u ^ (uint32_t)(row * 40503u + j);
        h ^= h >> 15;
        h *= 2246822519u;
        h ^= h >> 13;
        dst[j] = r->fill != 0.0f ? r->fill
                                 : ((float)(h % 2001u) / 1000.0f - 1.0f) * 0.3f;
    }
    return 0;
}

/* What a file gets beyond the plain model. */
typedef struct variant {
    const char *arch;         /* "llama" or "qwen2" */
    float freqs;              /* rope_freqs.weight all this; 0: none */
    const char *scaling_type; /* rope.scaling.type; NULL: none written */
    float factor;             /* rope.scaling.factor; 0: none written */
} variant;

static int meta(gguf_writer *w, const variant *v) {
    static const struct {
        const char *name;
        uint32_t val;
    } u[] = {{"embedding_length", DIM}, {"feed_forward_length", HID},
             {"block_count", 1},        {"attention.head_count", HEADS},
             {"attention.head_count_kv", KV_HEADS}, {"context_length", 64}};
    char key[64];
    int rc = gguf_writer_str(w, "general.architecture", v->arch);

    for (size_t i = 0; i < sizeof u / sizeof u[0] && !rc; i++) {
        snprintf(key, sizeof key, "%s.%s", v->arch, u[i].name);
        rc = gguf_writer_u32(w, key, u[i].val);
    }
    snprintf(key, sizeof key, "%s.rope.scaling.type", v->arch);
    if (!rc && v->scaling_type)
        rc = gguf_writer_str(w, key, v->scaling_type);
    snprintf(key, sizeof key, "%s.rope.scaling.factor", v->arch);
    if (!rc && v->factor != 0.0f)
        rc = gguf_writer_f32(w, key, v->factor);
    return rc;
}

/* Writes the variant's model to path; 0 or negative. */
static int write_model(const char *path, const variant *v) {
    static const struct {
        const char *name;
        uint64_t ne0, ne1;
        float fill;
    } t[] = {
        {"token_embd.weight", DIM, VOCAB, 0}, {"output_norm.weight", DIM, 1, 1},
        {"blk.0.attn_norm.weight", DIM, 1, 1}, {"blk.0.ffn_norm.weight", DIM, 1, 1},
        {"blk.0.attn_q.weight", DIM, DIM, 0},
        {"blk.0.attn_k.weight", DIM, HS * KV_HEADS, 0},
        {"blk.0.attn_v.weight", DIM, HS * KV_HEADS, 0},
        {"blk.0.attn_output.weight", DIM, DIM, 0},
        {"blk.0.ffn_gate.weight", DIM, HID, 0}, {"blk.0.ffn_up.weight", DIM, HID, 0},
        {"blk.0.ffn_down.weight", HID, DIM, 0},
    };
    enum { NT = sizeof t / sizeof t[0] };
    rows r[NT + 1];
    char err[256];
    gguf_writer *w = gguf_writer_new(); /* freed here */
    int rc = w ? meta(w, v) : AISLE_ENOMEM;

    for (int i = 0; i < NT && !rc; i++) {
        uint64_t ne[2] = {t[i].ne0, t[i].ne1};
        r[i] = (rows){(uint32_t)i + 1, t[i].ne0, t[i].fill};
        rc = gguf_writer_tensor(w, t[i].name, GGUF_T_F32, t[i].ne1 > 1 ? 2 : 1,
                                ne, row_fn, &r[i]);
    }
    if (!rc && v->freqs != 0.0f) {
        uint64_t ne[1] = {HS / 2};
        r[NT] = (rows){0, HS / 2, v->freqs};
        rc = gguf_writer_tensor(w, "rope_freqs.weight", GGUF_T_F32, 1, ne,
                                row_fn, &r[NT]);
    }
    if (!rc && (rc = gguf_writer_write(w, path, err, sizeof err)))
        fprintf(stderr, "%s: %s\n", path, err);
    gguf_writer_free(w);
    return rc;
}

/* Logits after each of 12 tokens into out (12 * VOCAB); 0 or negative. */
static int run(const variant *v, const char *name, float *out) {
    const char *path = tu_tmp(name);
    char err[256] = "";
    model *m = NULL;
    model_session *s = NULL;
    int rc = write_model(path, v);

    if (!rc && (rc = model_load(path, &m, err, sizeof err)))
        fprintf(stderr, "%s: %s\n", name, err);
    if (!rc)
        rc = model_session_new(m, NULL, 16, &s);
    for (int i = 0; i < 12 && !rc; i++) {
        const float *lg;
        rc = model_session_push(s, (5 * i + 3) % VOCAB);
        if (!rc && !(lg = model_session_logits(s)))
            rc = -1;
        if (!rc)
            memcpy(out + (size_t)i * VOCAB, lg, VOCAB * sizeof *out);
    }
    model_session_free(s);
    model_free(m);
    return rc;
}

static void test_freq_factors_and_linear_scaling(void) {
    static float plain[12 * VOCAB], ones[12 * VOCAB], twos[12 * VOCAB],
        linear[12 * VOCAB];
    variant v = {"llama", 0, NULL, 0};

    TEST_REQUIRE(run(&v, "plain.gguf", plain) == 0);
    v.freqs = 1.0f;
    TEST_REQUIRE(run(&v, "ones.gguf", ones) == 0);
    v.freqs = 2.0f;
    TEST_REQUIRE(run(&v, "twos.gguf", twos) == 0);
    v = (variant){"llama", 0, "linear", 2.0f};
    TEST_REQUIRE(run(&v, "linear.gguf", linear) == 0);
    TEST_CHECK(!memcmp(plain, ones, sizeof plain));
    TEST_CHECK(!memcmp(twos, linear, sizeof twos));
    /* Position 0 has no rotation; later ones must feel the scaling. */
    TEST_CHECK(!memcmp(plain, twos, VOCAB * sizeof *plain));
    TEST_CHECK(memcmp(plain, twos, sizeof plain) != 0);
}

/* Loading the variant fails with a message containing want. */
static void check_refused(const variant *v, const char *name,
                          const char *want) {
    const char *path = tu_tmp(name);
    char err[256] = "";
    model *m = NULL;

    TEST_REQUIRE(write_model(path, v) == 0);
    TEST_CHECK(model_load(path, &m, err, sizeof err) == AISLE_EFORMAT && !m);
    fprintf(stderr, "%s: %s\n", name, err);
    TEST_CHECK(strstr(err, want) != NULL);
}

static void test_unsupported_scaling_is_refused(void) {
    variant yarn = {"llama", 0, "yarn", 4.0f}, qwen = {"qwen2", 2.0f, NULL, 0};
    variant bad = {"llama", 0, "linear", -1.0f};

    check_refused(&yarn, "yarn.gguf", "'yarn'");
    check_refused(&qwen, "qwen_freqs.gguf", "rope_freqs.weight");
    check_refused(&bad, "bad_factor.gguf", "factor");
}

int main(void) {
    TEST_RUN(test_freq_factors_and_linear_scaling);
    TEST_RUN(test_unsupported_scaling_is_refused);
    return test_summary();
}
