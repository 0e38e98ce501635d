/* forward_test.c — the engine against llama2.c's output and against a
 * reference forward pass written here from the checkpoint layout, plus the
 * int8 and GGUF copies of the same model. */
#include "tests/test.h"
#include "tests/model/util.h"

#include "model/export.h"
#include "model/gen.h"
#include "model/model.h"
#include "model/tok.h"
#include "model/tpool.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* llama2.c run.c, greedy, "Once upon a time", 200 steps. */
static const char expected_start[] =
    "Once upon a time, there was a little girl named Lily. She loved to play "
    "outside in the park. One day, she saw a big, red ball.";

typedef struct text_buf {
    char s[8192];
    size_t n;
} text_buf;

static int collect(void *ud, const char *text, size_t len) {
    text_buf *b = ud;
    if (len > sizeof b->s - 1 - b->n)
        len = sizeof b->s - 1 - b->n;
    memcpy(b->s + b->n, text, len);
    b->n += len;
    b->s[b->n] = '\0';
    return 0;
}

/* Greedy llama2.c-style run: the prompt's pieces then the continuation,
 * `steps` positions in all; sampled ids go to ids[] when non-NULL. */
static int run_greedy(const model *m, const tok_tokenizer *t, tpool *pool,
                      const char *prompt, int steps, text_buf *out) {
    int tokens[256];
    size_t n;
    model_session *s;
    gen_params p;
    gen_stats st;
    int rc;

    out->n = 0;
    out->s[0] = '\0';
    if (tok_encode(t, prompt, 1, 0, tokens, 256, &n) ||
        model_session_new(m, pool, steps, &s))
        return -1;
    for (size_t i = 1; i < n; i++) {
        size_t len;
        const char *piece = tok_decode(t, tokens[i - 1], tokens[i], &len);
        collect(out, piece, len);
    }
    gen_params_init(&p);
    p.max_tokens = steps - (int)n + 1;
    rc = gen_feed_tokens(s, tokens, (int)n, NULL, NULL);
    if (!rc)
        rc = gen_run(s, t, &p, collect, out, &st);
    model_session_free(s);
    return rc;
}

static model *load(const char *path) {
    char err[256] = "";
    model *m = NULL;
    if (model_load(path, &m, err, sizeof err))
        fprintf(stderr, "model_load %s: %s\n", path, err);
    return m;
}

static tok_tokenizer *load_tok(int vocab) {
    char err[256] = "";
    tok_tokenizer *t = NULL;
    if (tok_load_file(tu_stories("tok512.bin"), vocab, &t, err, sizeof err))
        fprintf(stderr, "tok_load_file: %s\n", err);
    return t;
}

static void test_greedy_matches_llama2c(void) {
    model *m;
    tok_tokenizer *t;
    tpool *pool = NULL;
    text_buf out;

    if (!tu_stories_dir())
        return;
    m = load(tu_stories("stories260K.bin"));
    TEST_REQUIRE(m);
    t = load_tok(512);
    TEST_REQUIRE(t);
    TEST_CHECK(model_get_config(m)->n_kv_heads == 4);
    TEST_CHECK(model_get_config(m)->shared_classifier);

    TEST_CHECK(run_greedy(m, t, NULL, "Once upon a time", 200, &out) == 0);
    TEST_CHECK(strncmp(out.s, expected_start, strlen(expected_start)) == 0);
    if (strncmp(out.s, expected_start, strlen(expected_start)))
        fprintf(stderr, "got: %s\n", out.s);

    /* Same tokens with every kernel level and with two threads. */
    {
        text_buf other;
        for (int level = KERN_SCALAR_LEVEL; level < KERN_VNNI_LEVEL; level++) {
            kern_set_level(level);
            TEST_CHECK(run_greedy(m, t, NULL, "Once upon a time", 200,
                                  &other) == 0);
            TEST_CHECK_STR(other.s, out.s);
        }
        kern_set_level(KERN_VNNI_LEVEL);
        TEST_REQUIRE(tpool_new(2, &pool) == 0);
        TEST_CHECK(run_greedy(m, t, pool, "Once upon a time", 200, &other) == 0);
        TEST_CHECK_STR(other.s, out.s);
        tpool_free(pool);
    }
    tok_free(t);
    model_free(m);
}

/* ------------------------------------------------------------ reference */

/* The checkpoint read directly from its bytes in llama2.c's legacy order,
 * and a forward pass in double precision with plain loops. */
typedef struct ref {
    int dim, hid, L, H, KV, V, seq, hs, kvd;
    const float *emb, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3,
        *rms_final;
    double *kc, *vc;
} ref;

static int ref_open(ref *r, const unsigned char *file) {
    int32_t h[7];
    const float *p;
    memcpy(h, file, sizeof h);
    r->dim = h[0]; r->hid = h[1]; r->L = h[2]; r->H = h[3]; r->KV = h[4];
    r->V = abs(h[5]); r->seq = h[6];
    r->hs = r->dim / r->H;
    r->kvd = r->hs * r->KV;
    p = (const float *)(file + 28);
    r->emb = p; p += (size_t)r->V * r->dim;
    r->rms_att = p; p += (size_t)r->L * r->dim;
    r->wq = p; p += (size_t)r->L * r->dim * r->dim;
    r->wk = p; p += (size_t)r->L * r->dim * r->kvd;
    r->wv = p; p += (size_t)r->L * r->dim * r->kvd;
    r->wo = p; p += (size_t)r->L * r->dim * r->dim;
    r->rms_ffn = p; p += (size_t)r->L * r->dim;
    r->w1 = p; p += (size_t)r->L * r->dim * r->hid;
    r->w2 = p; p += (size_t)r->L * r->dim * r->hid;
    r->w3 = p; p += (size_t)r->L * r->dim * r->hid;
    r->rms_final = p;
    r->kc = calloc((size_t)r->L * r->seq * r->kvd, sizeof(double));
    r->vc = calloc((size_t)r->L * r->seq * r->kvd, sizeof(double));
    return h[5] > 0 && r->kc && r->vc ? 0 : -1;
}

/* out[rows] = W[rows x cols] * x */
static void ref_mv(double *out, const float *w, const double *x, int rows,
                   int cols) {
    for (int i = 0; i < rows; i++) {
        double s = 0;
        for (int j = 0; j < cols; j++)
            s += (double)w[(size_t)i * cols + j] * x[j];
        out[i] = s;
    }
}

static void ref_norm(double *out, const double *x, const float *w, int n) {
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    ss = 1.0 / sqrt(ss / n + 1e-5);
    for (int i = 0; i < n; i++)
        out[i] = w[i] * x[i] * ss;
}

static void ref_forward(ref *r, int token, int pos, double *logits) {
    int D = r->dim, hs = r->hs;
    double x[512], xb[512], q[512], k[512], v[512], o[512], h1[1024],
        h3[1024], att[512];

    for (int i = 0; i < D; i++)
        x[i] = r->emb[(size_t)token * D + i];
    for (int l = 0; l < r->L; l++) {
        double *kc = r->kc + (size_t)l * r->seq * r->kvd;
        double *vc = r->vc + (size_t)l * r->seq * r->kvd;
        ref_norm(xb, x, r->rms_att + (size_t)l * D, D);
        ref_mv(q, r->wq + (size_t)l * D * D, xb, D, D);
        ref_mv(k, r->wk + (size_t)l * D * r->kvd, xb, r->kvd, D);
        ref_mv(v, r->wv + (size_t)l * D * r->kvd, xb, r->kvd, D);
        /* Rotate each (even, odd) pair within a head by pos * theta_i. */
        for (int i = 0; i < D; i += 2) {
            double th = pos * pow(10000.0, -(double)(i % hs) / hs);
            double c = cos(th), s = sin(th), a, b;
            a = q[i]; b = q[i + 1];
            q[i] = a * c - b * s; q[i + 1] = a * s + b * c;
            if (i < r->kvd) {
                a = k[i]; b = k[i + 1];
                k[i] = a * c - b * s; k[i + 1] = a * s + b * c;
            }
        }
        memcpy(kc + (size_t)pos * r->kvd, k, sizeof(double) * r->kvd);
        memcpy(vc + (size_t)pos * r->kvd, v, sizeof(double) * r->kvd);
        for (int h = 0; h < r->H; h++) {
            int kvh = h / (r->H / r->KV);
            double max = -1e300, sum = 0;
            for (int t = 0; t <= pos; t++) {
                double s = 0;
                for (int i = 0; i < hs; i++)
                    s += q[h * hs + i] * kc[(size_t)t * r->kvd + kvh * hs + i];
                att[t] = s / sqrt((double)hs);
                if (att[t] > max)
                    max = att[t];
            }
            for (int t = 0; t <= pos; t++)
                sum += att[t] = exp(att[t] - max);
            for (int i = 0; i < hs; i++) {
                double s = 0;
                for (int t = 0; t <= pos; t++)
                    s += att[t] / sum * vc[(size_t)t * r->kvd + kvh * hs + i];
                xb[h * hs + i] = s;
            }
        }
        ref_mv(o, r->wo + (size_t)l * D * D, xb, D, D);
        for (int i = 0; i < D; i++)
            x[i] += o[i];
        ref_norm(xb, x, r->rms_ffn + (size_t)l * D, D);
        ref_mv(h1, r->w1 + (size_t)l * D * r->hid, xb, r->hid, D);
        ref_mv(h3, r->w3 + (size_t)l * D * r->hid, xb, r->hid, D);
        for (int i = 0; i < r->hid; i++)
            h1[i] = h1[i] / (1 + exp(-h1[i])) * h3[i];
        ref_mv(o, r->w2 + (size_t)l * D * r->hid, h1, D, r->hid);
        for (int i = 0; i < D; i++)
            x[i] += o[i];
    }
    ref_norm(xb, x, r->rms_final, D);
    ref_mv(logits, r->emb, xb, r->V, D);
}

static const int ref_tokens[] = {1, 403, 407, 261, 378, 275, 500, 30, 95,
                                 290, 403, 267, 411, 2, 290, 300, 7};
#define N_REF (int)(sizeof ref_tokens / sizeof ref_tokens[0])

/* Largest |engine - reference| over the logits of every position. */
static double max_logit_error(const model *m, tpool *pool, double *scale) {
    size_t size;
    unsigned char *file = tu_read(tu_stories("stories260K.bin"), &size);
    ref r = {0};
    model_session *s = NULL;
    double *want = NULL, worst = -1;

    *scale = 0;
    if (!file || ref_open(&r, file) || model_session_new(m, pool, 0, &s))
        goto done;
    want = malloc((size_t)r.V * sizeof *want);
    if (!want)
        goto done;
    worst = 0;
    for (int pos = 0; pos < N_REF; pos++) {
        const float *got = model_forward(s, ref_tokens[pos], pos);
        ref_forward(&r, ref_tokens[pos], pos, want);
        if (!got) {
            worst = 1e9;
            break;
        }
        for (int i = 0; i < r.V; i++) {
            if (fabs(want[i]) > *scale)
                *scale = fabs(want[i]);
            if (!(fabs(got[i] - want[i]) <= worst))
                worst = fabs(got[i] - want[i]);
        }
    }
done:
    model_session_free(s);
    free(want);
    free(r.kc);
    free(r.vc);
    free(file);
    return worst;
}

static void test_logits_match_reference(void) {
    model *m;
    tpool *pool;
    double scale, err;

    if (!tu_stories_dir())
        return;
    m = load(tu_stories("stories260K.bin"));
    TEST_REQUIRE(m);
    err = max_logit_error(m, NULL, &scale);
    TEST_CHECK(err >= 0 && err < 1e-3);
    TEST_CHECK(scale > 1.0); /* the comparison saw real logits */
    kern_set_level(KERN_SCALAR_LEVEL);
    err = max_logit_error(m, NULL, &scale);
    kern_set_level(KERN_VNNI_LEVEL);
    TEST_CHECK(err >= 0 && err < 1e-3);
    TEST_REQUIRE(tpool_new(2, &pool) == 0);
    err = max_logit_error(m, pool, &scale);
    TEST_CHECK(err >= 0 && err < 1e-3);
    tpool_free(pool);
    model_free(m);
}

/* ----------------------------------------------------- exported copies */

/* Greedy ids of `steps` positions after BOS + "Once upon a time". */
static int greedy_ids(const model *m, const tok_tokenizer *t, int *ids,
                      int n) {
    model_session *s;
    int tokens[64];
    size_t nt;
    int got = 0;

    if (tok_encode(t, "Once upon a time", 1, 0, tokens, 64, &nt) ||
        model_session_new(m, NULL, 0, &s))
        return -1;
    gen_feed_tokens(s, tokens, (int)nt, NULL, NULL);
    for (; got < n; got++) {
        float *logits = model_session_logits(s);
        int best = 0;
        if (!logits)
            break;
        for (int i = 1; i < model_get_config(m)->vocab_size; i++)
            if (logits[i] > logits[best])
                best = i;
        ids[got] = best;
        if (model_session_push(s, best))
            break;
    }
    model_session_free(s);
    return got;
}

static int same_prefix(const int *a, const int *b, int n) {
    int i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

static void test_int8_export_stays_close(void) {
    char err[256] = "";
    model *m, *q = NULL;
    tok_tokenizer *t;
    int a[120], b[120];
    const char *path;

    if (!tu_stories_dir())
        return;
    m = load(tu_stories("stories260K.bin"));
    TEST_REQUIRE(m);
    t = load_tok(512);
    TEST_REQUIRE(t);
    /* 64 does not divide hidden_dim 172: refused, not written wrongly. */
    TEST_CHECK(export_llama2c(m, tu_tmp("bad.bin"), 2, 64, err, sizeof err) < 0);
    TEST_CHECK(strstr(err, "group size") != NULL);

    path = tu_tmp("s260_q8.bin");
    TEST_REQUIRE(export_llama2c(m, path, 2, 0, err, sizeof err) == 0);
    q = load(path);
    TEST_REQUIRE(q);
    TEST_CHECK(model_format(q) == MODEL_FMT_AK42_V2);
    TEST_CHECK(model_weight(q, MODEL_W_Q, 0)->type == KERN_Q8);
    TEST_CHECK(model_bytes_per_token(q) < model_bytes_per_token(m) * 3 / 4);
    TEST_REQUIRE(greedy_ids(m, t, a, 120) == 120);
    TEST_REQUIRE(greedy_ids(q, t, b, 120) == 120);
    TEST_CHECK(same_prefix(a, b, 120) >= 40);

    /* Logits stay close position by position. */
    {
        model_session *sm, *sq;
        double worst = 0, scale = 0;
        TEST_REQUIRE(model_session_new(m, NULL, 0, &sm) == 0);
        TEST_REQUIRE(model_session_new(q, NULL, 0, &sq) == 0);
        for (int pos = 0; pos < N_REF; pos++) {
            const float *x = model_forward(sm, ref_tokens[pos], pos);
            const float *y = model_forward(sq, ref_tokens[pos], pos);
            for (int i = 0; i < 512; i++) {
                if (fabs(x[i]) > scale)
                    scale = fabs(x[i]);
                if (fabs(x[i] - y[i]) > worst)
                    worst = fabs(x[i] - y[i]);
            }
        }
        TEST_CHECK(worst < 0.05 * scale);
        model_session_free(sm);
        model_session_free(sq);
    }
    model_free(q);

    /* Version 1 holds the same floats: identical logits. */
    path = tu_tmp("s260_v1.bin");
    TEST_REQUIRE(export_llama2c(m, path, 1, 0, err, sizeof err) == 0);
    q = load(path);
    TEST_REQUIRE(q);
    TEST_CHECK(model_format(q) == MODEL_FMT_AK42_V1);
    TEST_CHECK(greedy_ids(q, t, b, 120) == 120 && same_prefix(a, b, 120) == 120);
    model_free(q);
    tok_free(t);
    model_free(m);
}

static void test_gguf_round_trip(void) {
    static const char *const texts[] = {
        "Once upon a time", "Lily saw a big dog. It was happy!", "",
        " leading space", "caf\xc3\xa9 \xf0\x9f\x98\x80 <0x41>\n\ttab"};
    char err[256] = "";
    model *m, *g;
    tok_tokenizer *t, *gt = NULL;
    int a[196], b[196];
    const char *path = tu_tmp("s260.gguf");

    if (!tu_stories_dir())
        return;
    m = load(tu_stories("stories260K.bin"));
    TEST_REQUIRE(m);
    t = load_tok(512);
    TEST_REQUIRE(t);
    TEST_REQUIRE(export_gguf(m, t, path, GGUF_T_F32, err, sizeof err) == 0);
    g = load(path);
    TEST_REQUIRE(g);
    TEST_CHECK(model_format(g) == MODEL_FMT_GGUF);
    TEST_CHECK(model_get_config(g)->shared_classifier);
    TEST_CHECK(model_get_config(g)->n_kv_heads == 4);
    TEST_REQUIRE(tok_load_gguf(model_gguf(g), &gt, err, sizeof err) == 0);
    TEST_CHECK(tok_vocab_size(gt) == 512);

    /* Both vocabularies encode alike. */
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int x[128], y[128];
        size_t nx, ny;
        TEST_CHECK(tok_encode(t, texts[i], 1, 1, x, 128, &nx) == 0);
        TEST_CHECK(tok_encode(gt, texts[i], 1, 1, y, 128, &ny) == 0);
        TEST_CHECK(nx == ny && !memcmp(x, y, nx * sizeof *x));
    }
    /* Same greedy tokens, and the same text through the GGUF vocabulary. */
    TEST_CHECK(greedy_ids(m, t, a, 196) == 196);
    TEST_CHECK(greedy_ids(g, gt, b, 196) == 196);
    TEST_CHECK(same_prefix(a, b, 196) == 196);
    {
        text_buf x, y;
        TEST_CHECK(run_greedy(m, t, NULL, "Once upon a time", 200, &x) == 0);
        TEST_CHECK(run_greedy(g, gt, NULL, "Once upon a time", 200, &y) == 0);
        TEST_CHECK_STR(x.s, y.s);
    }
    model_free(g);
    tok_free(gt);
    gt = NULL;

    /* F16 and Q8_0 copies load and stay close to the fp32 tokens. */
    TEST_REQUIRE(export_gguf(m, t, path, GGUF_T_F16, err, sizeof err) == 0);
    g = load(path);
    TEST_REQUIRE(g);
    TEST_CHECK(model_weight(g, MODEL_W_Q, 0)->type == KERN_F16);
    TEST_CHECK(greedy_ids(g, t, b, 196) == 196 && same_prefix(a, b, 196) >= 60);
    model_free(g);
    TEST_REQUIRE(export_gguf(m, t, path, GGUF_T_Q8_0, err, sizeof err) == 0);
    g = load(path);
    TEST_REQUIRE(g);
    TEST_CHECK(model_weight(g, MODEL_W_Q, 0)->type == KERN_Q8_0);
    /* hidden_dim 172 is not whole Q8_0 blocks: that matrix stays F32. */
    TEST_CHECK(model_weight(g, MODEL_W_DOWN, 0)->type == KERN_F32);
    TEST_CHECK(greedy_ids(g, t, b, 196) == 196 && same_prefix(a, b, 196) >= 40);
    model_free(g);
    tok_free(t);
    model_free(m);
}

/* ------------------------------------------------------ batched prompts */

/* Logits after pushing n tokens (run in batches) vs. running them one
 * position at a time: the same arithmetic per row, so the same floats. */
static double batch_vs_steps(const model *m, tpool *pool, const int *ids,
                             int n) {
    model_session *a, *b;
    const float *x = NULL, *y;
    double worst = 0;
    int vocab = model_get_config(m)->vocab_size;

    if (model_session_new(m, pool, 0, &a))
        return 1e9;
    if (model_session_new(m, NULL, 0, &b)) {
        model_session_free(a);
        return 1e9;
    }
    for (int i = 0; i < n; i++)
        if (model_session_push(a, ids[i]))
            worst = 1e9;
    y = model_session_logits(a);
    for (int i = 0; i < n; i++)
        x = model_forward(b, ids[i], i);
    for (int i = 0; x && y && i < vocab; i++)
        if (fabs(x[i] - y[i]) > worst)
            worst = fabs(x[i] - y[i]);
    if (!x || !y)
        worst = 1e9;
    model_session_free(a);
    model_session_free(b);
    return worst;
}

static void test_batched_prompt_matches_stepwise(void) {
    char err[256];
    model *m, *q;
    tpool *pool;
    int ids[45];

    if (!tu_stories_dir())
        return;
    m = load(tu_stories("stories260K.bin"));
    TEST_REQUIRE(m);
    for (int i = 0; i < 45; i++) /* three batches, the last one partial */
        ids[i] = (ref_tokens[i % N_REF] + i) % 512;
    TEST_REQUIRE(tpool_new(2, &pool) == 0);
    TEST_CHECK(batch_vs_steps(m, NULL, ids, 45) < 1e-5);
    TEST_CHECK(batch_vs_steps(m, pool, ids, 45) < 1e-5);
    TEST_CHECK(batch_vs_steps(m, NULL, ids, 16) < 1e-5);
    TEST_REQUIRE(export_gguf(m, NULL, tu_tmp("b.gguf"), GGUF_T_Q8_0, err,
                             sizeof err) == 0);
    q = load(tu_tmp("b.gguf"));
    TEST_REQUIRE(q);
    TEST_CHECK(batch_vs_steps(q, pool, ids, 45) < 1e-5);
    model_free(q);
    tpool_free(pool);

    /* A batch never runs past the context: capacity 20 takes 20 tokens
     * and holds one more whose logits are refused. */
    {
        model_session *s;
        TEST_REQUIRE(model_session_new(m, NULL, 20, &s) == 0);
        for (int i = 0; i < 21; i++)
            TEST_CHECK(model_session_push(s, ids[i]) == 0);
        TEST_CHECK(model_session_push(s, ids[21]) == AISLE_EFULL);
        TEST_CHECK(model_session_logits(s) == NULL);
        TEST_CHECK(model_session_pos(s) == 21);
        model_session_free(s);
    }
    model_free(m);
}

/* ---------------------------------------------------------- concurrency */

typedef struct worker {
    const model *m;
    const tok_tokenizer *t;
    tpool *pool;
    text_buf out;
    int rc;
} worker;

static void *worker_main(void *arg) {
    worker *w = arg;
    w->rc = run_greedy(w->m, w->t, w->pool, "Once upon a time", 200, &w->out);
    return NULL;
}

static void test_concurrent_sessions_share_weights(void) {
    model *m;
    tok_tokenizer *t;
    tpool *pool;
    worker w[3];
    pthread_t th[3];
    text_buf solo;

    if (!tu_stories_dir())
        return;
    m = load(tu_stories("stories260K.bin"));
    TEST_REQUIRE(m);
    t = load_tok(512);
    TEST_REQUIRE(t);
    TEST_REQUIRE(tpool_new(2, &pool) == 0);
    TEST_REQUIRE(run_greedy(m, t, NULL, "Once upon a time", 200, &solo) == 0);
    /* Two sessions share a pool, one runs on its own thread only. */
    for (int i = 0; i < 3; i++) {
        w[i] = (worker){m, t, i < 2 ? pool : NULL, {{0}, 0}, -1};
        TEST_REQUIRE(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        TEST_CHECK(w[i].rc == 0);
        TEST_CHECK_STR(w[i].out.s, solo.s);
    }
    tpool_free(pool);
    tok_free(t);
    model_free(m);
}

int main(void) {
    TEST_RUN(test_greedy_matches_llama2c);
    TEST_RUN(test_logits_match_reference);
    TEST_RUN(test_int8_export_stays_close);
    TEST_RUN(test_gguf_round_trip);
    TEST_RUN(test_batched_prompt_matches_stepwise);
    TEST_RUN(test_concurrent_sessions_share_weights);
    return test_summary();
}
