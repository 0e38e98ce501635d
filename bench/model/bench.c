/* bench.c — model_bench: the pieces of bench/model/run.sh.
 *
 *   model_bench mkckpt OUT [dim hidden layers heads kv_heads vocab seq]
 *       writes a llama2.c legacy checkpoint with random weights
 *   model_bench bw THREADS
 *       streaming-read memory bandwidth, GB/s, best of several passes
 *   model_bench gen MODEL THREADS TOKENS
 *       greedy decoding speed from BOS: tok/s over the run and from the
 *       10th-percentile token time, weight and KV bytes per token; then
 *       the speed of a TOKENS-long prompt (run in batches)
 *   model_bench batch MODEL THREADS TOKENS NSEQ
 *       NSEQ sequences decoded together (model_batch_step): tokens/s of
 *       all of them over TOKENS steps (after 4 untimed ones, as in gen)
 *   model_bench prompt MODEL THREADS TOKENS REPEAT
 *       prompt speed alone: the best of REPEAT runs of a TOKENS-long
 *       prompt (after one unmeasured run that faults the weights in)
 *   model_bench kern MODEL KIND NX REPS
 *       one product of layer 0's matrix KIND with NX activations, best of
 *       REPS, in ns per row, and a hash of the outputs' bits
 *   model_bench ttft MODEL THREADS PROMPT SHARED
 *       time to the first token after a PROMPT-token prompt, cold and
 *       with its first SHARED tokens (a system prompt) copied from a
 *       prefilled session
 *
 * Output lines are "key value" pairs so the script can pick them up. */
#include "model/cli.h"
#include "model/gen.h"
#include "model/model.h"
#include "model/sampler.h"
#include "model/tpool.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BENCH_X86 1
#endif

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static float rand_uniform(void) { /* [-1, 1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((rng_state * 0x2545f4914f6cdd1dull) >> 40) / 8388608.0f -
           1.0f;
}

/* n floats of uniform noise scaled by `scale` (or the constant 1 for norm
 * weights when scale is 0), written in chunks. */
static int write_floats(FILE *f, uint64_t n, float scale) {
    float buf[4096];
    while (n) {
        size_t k = n < 4096 ? (size_t)n : 4096;
        for (size_t i = 0; i < k; i++)
            buf[i] = scale ? rand_uniform() * scale : 1.0f;
        if (fwrite(buf, sizeof *buf, k, f) != k)
            return -1;
        n -= k;
    }
    return 0;
}

static int cmd_mkckpt(int argc, char **argv) {
    int32_t c[7] = {768, 2048, 12, 12, 12, 32000, 1024};
    uint64_t dim, hid, L, kvd, V, seq, hs;
    float win, whid;
    FILE *f;
    int rc = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: model_bench mkckpt OUT [dim hidden layers "
                "heads kv_heads vocab seq]\n");
        return 2;
    }
    for (int i = 0; i < 7 && 3 + i < argc; i++)
        c[i] = atoi(argv[3 + i]);
    if (c[0] <= 0 || c[1] <= 0 || c[2] <= 0 || c[3] <= 0 || c[4] <= 0 ||
        c[5] <= 0 || c[6] <= 0) {
        fprintf(stderr, "model_bench mkckpt: sizes must be positive\n");
        return 2;
    }
    dim = (uint64_t)c[0];
    hid = (uint64_t)c[1];
    L = (uint64_t)c[2];
    hs = dim / (uint64_t)c[3];
    kvd = hs * (uint64_t)c[4];
    V = (uint64_t)c[5];
    seq = (uint64_t)c[6];
    win = 1.7f / sqrtf((float)dim);
    whid = 1.7f / sqrtf((float)hid);
    f = fopen(argv[2], "wb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    /* llama2.c's legacy order; weights of size ~1/sqrt(fan_in) keep the
     * activations finite through the layers. */
    rc |= fwrite(c, sizeof c, 1, f) != 1;
    rc |= write_floats(f, V * dim, 0.5f);
    rc |= write_floats(f, L * dim, 0);
    rc |= write_floats(f, L * dim * dim, win);
    rc |= write_floats(f, L * dim * kvd, win);
    rc |= write_floats(f, L * dim * kvd, win);
    rc |= write_floats(f, L * dim * dim, win);
    rc |= write_floats(f, L * dim, 0);
    rc |= write_floats(f, L * dim * hid, win);
    rc |= write_floats(f, L * dim * hid, whid);
    rc |= write_floats(f, L * dim * hid, win);
    rc |= write_floats(f, dim, 0);
    rc |= write_floats(f, seq * hs, 0.0f); /* unused RoPE tables */
    rc |= fclose(f) != 0;
    if (rc) {
        fprintf(stderr, "model_bench: writing %s failed\n", argv[2]);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ bandwidth */

typedef struct bw_job {
    const uint8_t *buf;
    size_t size;
    uint64_t sink[64];
} bw_job;

#ifdef BENCH_X86
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p,
                                                          size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1,
                              _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2,
                              _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3,
                              _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    return (uint64_t)_mm256_extract_epi64(a0, 0) ^
           (uint64_t)_mm256_extract_epi64(a0, 3);
}
#endif

static uint64_t read_scalar(const uint8_t *p, size_t n) {
    const uint64_t *q = (const uint64_t *)p;
    uint64_t a = 0, b = 0;
    for (size_t i = 0; i + 2 <= n / 8; i += 2) {
        a ^= q[i];
        b ^= q[i + 1];
    }
    return a ^ b;
}

static void bw_part(void *arg, int part, int nparts) {
    bw_job *j = arg;
    size_t chunk = j->size / (size_t)nparts / 4096 * 4096;
    const uint8_t *p = j->buf + chunk * (size_t)part;
#ifdef BENCH_X86
    if (__builtin_cpu_supports("avx2")) {
        j->sink[part % 64] += read_avx2(p, chunk);
        return;
    }
#endif
    j->sink[part % 64] += read_scalar(p, chunk);
}

static int cmd_bw(int argc, char **argv) {
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    size_t size = (size_t)1 << 30;
    tpool *pool = NULL;
    bw_job j = {0};
    double best = 0;

    if (threads < 1 || (threads > 1 && tpool_new(threads, &pool))) {
        fprintf(stderr, "model_bench bw: bad thread count\n");
        return 2;
    }
    j.buf = aligned_alloc(4096, size);
    if (!j.buf) {
        fprintf(stderr, "model_bench bw: out of memory\n");
        tpool_free(pool);
        return 1;
    }
    madvise((void *)j.buf, size, MADV_HUGEPAGE);
    memset((void *)j.buf, 1, size);
    j.size = size;
    for (int pass = 0; pass < 6; pass++) {
        int64_t t0 = gen_now_ns();
        double gbs;
        tpool_run(pool, bw_part, &j);
        gbs = (double)(j.size / (size_t)threads / 4096 * 4096 * (size_t)threads) /
              (double)(gen_now_ns() - t0);
        if (gbs > best)
            best = gbs;
    }
    printf("bandwidth_gbs %.2f\n", best);
    printf("sink %llu\n", (unsigned long long)(j.sink[0] & 1));
    free((void *)j.buf);
    tpool_free(pool);
    return 0;
}

/* ------------------------------------------------------------ generation */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmd_gen(int argc, char **argv) {
    char err[512];
    model *m = NULL;
    model_session *s = NULL;
    tpool *pool = NULL;
    int threads, tokens, warm = 4, rc = 1, token = 1;
    int64_t t0 = 0, t0_end, *dt = NULL;

    if (argc < 5) {
        fprintf(stderr, "usage: model_bench gen MODEL THREADS TOKENS\n");
        return 2;
    }
    threads = atoi(argv[3]);
    tokens = atoi(argv[4]);
    if (tokens < 1 || !(dt = calloc((size_t)tokens, sizeof *dt))) {
        fprintf(stderr, "model_bench gen: bad token count\n");
        return 2;
    }
    if (model_load(argv[2], &m, err, sizeof err)) {
        fprintf(stderr, "model_bench gen: %s\n", err);
        return 1;
    }
    if (threads < 1 ||
        (threads > 1 && tpool_new(threads, &pool)) ||
        model_session_new(m, pool, warm + tokens + 1, &s) ||
        model_session_push(s, token)) {
        fprintf(stderr, "model_bench gen: setup failed\n");
        goto done;
    }
    for (int i = 0, vocab = model_get_config(m)->vocab_size; i < warm + tokens;
         i++) {
        const float *logits;
        int64_t t1 = gen_now_ns();
        if (i == warm)
            t0 = t1;
        logits = model_session_logits(s);
        if (!logits)
            goto done;
        if (model_session_push(s, sampler_argmax(logits, vocab)))
            goto done;
        if (i >= warm)
            dt[i - warm] = gen_now_ns() - t1;
    }
    t0_end = gen_now_ns();
    /* Prompt speed: the same number of tokens pushed at once, which runs
     * them in batches. */
    {
        int64_t p0;
        model_session_reset(s);
        p0 = gen_now_ns();
        for (int i = 0; i < tokens; i++)
            if (model_session_push(s, (i * 7919) % model_get_config(m)->vocab_size))
                goto done;
        if (!model_session_logits(s))
            goto done;
        printf("prompt_tok_per_s %.3f\n", tokens / ((gen_now_ns() - p0) / 1e9));
    }
    {
        double secs = (double)(t0_end - t0) / 1e9;
        const model_config *c = model_get_config(m);
        /* Attention reads the K and V rows of every earlier position. */
        double kv = 2.0 * c->n_layers * c->kv_dim * 4.0 *
                    (warm + 1 + (tokens - 1) / 2.0);
        printf("tok_per_s %.3f\n", tokens / secs);
        /* On a shared machine some tokens lose the CPU to other work; the
         * 10th-percentile token time estimates the undisturbed speed. */
        qsort(dt, (size_t)tokens, sizeof *dt, cmp_i64);
        printf("tok_per_s_p10 %.3f\n", 1e9 / (double)dt[tokens / 10]);
        printf("weight_bytes_per_token %zu\n", model_bytes_per_token(m));
        printf("kv_bytes_per_token %.0f\n", kv);
    }
    rc = 0;
done:
    free(dt);
    model_session_free(s);
    tpool_free(pool);
    model_free(m);
    return rc;
}

static int load_for(const char *cmd, const char *path, int threads,
                    model **m, tpool **pool) {
    char err[512];
    if (model_load(path, m, err, sizeof err)) {
        fprintf(stderr, "model_bench %s: %s\n", cmd, err);
        return 1;
    }
    if (threads < 1 || (threads > 1 && tpool_new(threads, pool))) {
        fprintf(stderr, "model_bench %s: bad thread count\n", cmd);
        return 1;
    }
    return 0;
}

static int cmd_batch(int argc, char **argv) {
    model *m = NULL;
    tpool *pool = NULL;
    model_batch *b = NULL;
    model_session *s[MODEL_BATCH] = {0};
    int threads, tokens, nseq, rc = 1, ids[MODEL_BATCH], vocab, warm = 4;
    int64_t t0 = 0;

    if (argc < 6) {
        fprintf(stderr, "usage: model_bench batch MODEL THREADS TOKENS NSEQ\n");
        return 2;
    }
    threads = atoi(argv[3]);
    tokens = atoi(argv[4]);
    nseq = atoi(argv[5]);
    if (tokens < 1 || nseq < 1 || nseq > MODEL_BATCH)
        return 2;
    if (load_for("batch", argv[2], threads, &m, &pool) ||
        model_batch_new(m, pool, &b))
        goto done;
    vocab = model_get_config(m)->vocab_size;
    for (int i = 0; i < nseq; i++)
        if (model_session_new(m, pool, warm + tokens + 2, &s[i]))
            goto done;
    for (int i = 0; i < nseq; i++)
        ids[i] = (1 + 977 * i) % vocab;
    for (int k = 0; k < warm + tokens; k++) {
        /* As in gen, the first steps are not timed: they fault the
         * mapped weights in and warm the caches. */
        if (k == warm)
            t0 = gen_now_ns();
        if (model_batch_step(b, s, ids, nseq))
            goto done;
        for (int i = 0; i < nseq; i++)
            ids[i] = sampler_argmax(model_session_logits(s[i]), vocab);
    }
    printf("batch_tok_per_s %.3f\n",
           (double)tokens * nseq / ((gen_now_ns() - t0) / 1e9));
    rc = 0;
done:
    for (int i = 0; i < nseq && i < MODEL_BATCH; i++)
        model_session_free(s[i]);
    model_batch_free(b);
    tpool_free(pool);
    model_free(m);
    return rc;
}

/* Pushes ids[from..to) into s. */
static int push_range(model_session *s, int from, int to, int vocab) {
    for (int i = from; i < to; i++)
        if (model_session_push(s, (i * 7919 + 3) % vocab))
            return -1;
    return 0;
}

static int cmd_ttft(int argc, char **argv) {
    model *m = NULL;
    tpool *pool = NULL;
    model_session *sys = NULL, *s = NULL;
    int threads, n, shared, rc = 1, vocab;
    int64_t t0;

    if (argc < 6) {
        fprintf(stderr, "usage: model_bench ttft MODEL THREADS PROMPT SHARED\n");
        return 2;
    }
    threads = atoi(argv[3]);
    n = atoi(argv[4]);
    shared = atoi(argv[5]);
    if (n < 1 || shared < 0 || shared >= n)
        return 2;
    if (load_for("ttft", argv[2], threads, &m, &pool) ||
        model_session_new(m, pool, n + 1, &sys) ||
        model_session_new(m, pool, n + 1, &s))
        goto done;
    vocab = model_get_config(m)->vocab_size;
    t0 = gen_now_ns();
    if (push_range(s, 0, n, vocab) || !model_session_logits(s))
        goto done;
    printf("ttft_cold_ms %.2f\n", (gen_now_ns() - t0) / 1e6);
    /* The system prompt once, outside the timed part, then a request. */
    if (push_range(sys, 0, shared, vocab) || !model_session_logits(sys))
        goto done;
    t0 = gen_now_ns();
    if (model_session_copy_prefix(s, sys, shared) ||
        push_range(s, shared, n, vocab) || !model_session_logits(s))
        goto done;
    printf("ttft_cached_ms %.2f\n", (gen_now_ns() - t0) / 1e6);
    rc = 0;
done:
    model_session_free(sys);
    model_session_free(s);
    tpool_free(pool);
    model_free(m);
    return rc;
}

static int cmd_prompt(int argc, char **argv) {
    model *m = NULL;
    tpool *pool = NULL;
    model_session *s = NULL;
    int threads, n, repeat, rc = 1;
    double best = 0;

    if (argc < 6) {
        fprintf(stderr, "usage: model_bench prompt MODEL THREADS TOKENS REPEAT\n");
        return 2;
    }
    threads = atoi(argv[3]);
    n = atoi(argv[4]);
    repeat = atoi(argv[5]);
    if (n < 1 || repeat < 1)
        return 2;
    if (load_for("prompt", argv[2], threads, &m, &pool) ||
        model_session_new(m, pool, n + 1, &s))
        goto done;
    for (int r = 0; r <= repeat; r++) {
        int64_t t0 = gen_now_ns();
        double tps;
        model_session_reset(s);
        if (push_range(s, 0, n, model_get_config(m)->vocab_size) ||
            !model_session_logits(s))
            goto done;
        tps = n / ((gen_now_ns() - t0) / 1e9);
        if (r > 0 && tps > best)
            best = tps;
    }
    printf("prompt_tok_per_s %.3f\n", best);
    rc = 0;
done:
    model_session_free(s);
    tpool_free(pool);
    model_free(m);
    return rc;
}

/* One product of layer 0's matrix KIND (q k v o gate down up, or cls)
 * with NX random activations, on 1 thread, best of REPS: the kernel's
 * speed on rows in cache, the one figure that a machine shared with
 * other work still gives to a few per cent. NX > 1 runs in slices of 16
 * rows as model_batch_step does. The hash of the outputs (their bits)
 * shows whether two builds compute the same numbers. */
static int cmd_kern(int argc, char **argv) {
    static const char *const kinds[] = {"q", "k", "v", "o", "gate", "down",
                                        "up", "cls"};
    static const int kind_ids[] = {MODEL_W_Q, MODEL_W_K, MODEL_W_V,
                                   MODEL_W_O, MODEL_W_GATE, MODEL_W_DOWN,
                                   MODEL_W_UP, MODEL_W_CLS};
    model *m = NULL;
    tpool *pool = NULL;
    const kern_mat *w;
    int kind = -1, nx, reps, rc = 1, n;
    float *x = NULL, *xs = NULL, *xsum = NULL, *out = NULL;
    int8_t *xq = NULL;
    kern_act act[KERN_MAX_ACTS];
    double best = 1e30;
    uint64_t hash = 1469598103934665603ull;

    if (argc < 6) {
        fprintf(stderr, "usage: model_bench kern MODEL KIND NX REPS\n");
        return 2;
    }
    for (int k = 0; k < 8; k++)
        if (!strcmp(argv[3], kinds[k]))
            kind = kind_ids[k];
    nx = atoi(argv[4]);
    reps = atoi(argv[5]);
    if (kind < 0 || nx < 1 || nx > KERN_MAX_ACTS || reps < 1)
        return 2;
    if (load_for("kern", argv[2], 1, &m, &pool))
        goto done;
    w = model_weight(m, kind, 0);
    n = w->cols;
    x = malloc((size_t)nx * n * sizeof *x);
    xs = malloc((size_t)nx * n * sizeof *xs);
    xsum = malloc((size_t)nx * n * sizeof *xsum);
    xq = malloc((size_t)nx * n);
    out = malloc((size_t)nx * w->rows * sizeof *out);
    if (!x || !xs || !xsum || !xq || !out)
        goto done;
    for (int t = 0; t < nx; t++) {
        for (int j = 0; j < n; j++)
            x[(size_t)t * n + j] = rand_uniform();
        act[t] = (kern_act){x + (size_t)t * n, n, xq + (size_t)t * n,
                            xs + (size_t)t * n, xsum + (size_t)t * n, 0};
        if (kern_needs_act(w))
            kern_act_quantize(&act[t], kern_needs_act(w));
    }
    for (int r = 0; r < reps; r++) {
        int64_t t0 = gen_now_ns();
        for (int r0 = 0; r0 < w->rows; r0 += nx > 1 ? 16 : w->rows) {
            int r1 = nx > 1 && r0 + 16 < w->rows ? r0 + 16 : w->rows;
            kern_matvec_n(w, act, nx, out, (size_t)w->rows, r0, r1);
        }
        t0 = gen_now_ns() - t0;
        best = (double)t0 < best ? (double)t0 : best;
    }
    for (size_t k = 0; k < (size_t)nx * w->rows; k++) {
        uint32_t u;
        memcpy(&u, &out[k], 4);
        hash = (hash ^ u) * 1099511628211ull;
    }
    printf("matrix %s %dx%d %s\n", argv[3], w->rows, n,
           kern_type_name(w->type));
    printf("ns_per_row %.2f\n", best / w->rows);
    printf("ns_per_row_act %.2f\n", best / w->rows / nx);
    printf("out_hash %016llx\n", (unsigned long long)hash);
    rc = 0;
done:
    free(x);
    free(xs);
    free(xsum);
    free(xq);
    free(out);
    tpool_free(pool);
    model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "mkckpt"))
        return cmd_mkckpt(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "bw"))
        return cmd_bw(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "gen"))
        return cmd_gen(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "batch"))
        return cmd_batch(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "ttft"))
        return cmd_ttft(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "prompt"))
        return cmd_prompt(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "kern"))
        return cmd_kern(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "convert"))
        return model_cli_convert(argc - 1, argv + 1);
    fprintf(stderr,
            "usage: model_bench mkckpt|bw|gen|batch|ttft|prompt|kern|convert ...\n");
    return 2;
}
