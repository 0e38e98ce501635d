/* model.c — loading llama2.c and GGUF weights, and the forward pass.
 *
 * Loading maps the file read-only and points kern_mat descriptors into the
 * mapping; the product matrices are then copied once per model onto huge
 * pages (Q8_0, Q4_K and Q6_K repacked for the AVX-512 decode tiles,
 * kern_repack; the rest as they are), which every session of the model
 * shares, and the embedding's rows are read from the mapping. Every extent
 * is checked against the file size with overflow-checked arithmetic
 * before a pointer is formed. The forward pass follows llama2.c's run.c
 * step for step (the same RMSNorm, pairwise RoPE, attention and SwiGLU
 * arithmetic) so greedy decoding reproduces llama2.c's tokens; the matrix
 * products, which are nearly all the time, are split across the
 * session's thread pool. */
#include "model/model.h"

#include "model/gemm.h"
#include "model/quant.h"
#include "services/base/status.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define AK42_MAGIC 0x616b3432u
#define AK42_HEADER 256
#define LEGACY_HEADER 28

/* Sanity limits: far above any llama model, low enough that no size
 * computed from them can overflow 64 bits. */
#define MAX_DIM (1 << 16)
#define MAX_HIDDEN (1 << 18)
#define MAX_LAYERS 1024
#define MAX_HEADS 1024
#define MAX_VOCAB (1 << 22)
#define MAX_SEQ (1 << 20)

#define N_LAYER_W 7 /* Q K V O GATE DOWN UP */

struct model {
    model_config cfg;
    int format;
    gguf_image img;         /* the file, mapped read-only */
    gguf_file *gguf;
    kern_mat embed, cls;
    kern_mat *w;            /* n_layers * N_LAYER_W */
    const float **norm_att; /* n_layers pointers */
    const float **norm_ffn;
    const float *norm_final;
    const float **bias;     /* n_layers * 3 (Q, K, V); NULL entries: none */
    const float **qk_norm;  /* n_layers * 2 (Q, K), qwen3 only */
    /* GGUF RoPE scaling: angles times rope_scale (linear scaling), pair i's
     * divided by rope_freqs[i] (llama's rope_freqs.weight, Llama 3.1/3.2;
     * NULL: none). */
    float rope_scale;
    const float *rope_freqs;
    void *rp; /* the product matrices' copies (model_repack); owned */
};

/* A session's pushed tokens run up to MODEL_PREFILL at a time: each
 * weight row then comes from DRAM once per batch instead of once per
 * token, and a prompt's products are compute-bound. A batch of at least
 * MODEL_PREFILL_MIN of them runs its products in gemm.h's orders; shorter
 * ones, decoding and model_batch_step keep kern.h's, so a sequence decodes
 * the same alone or in a batch. */
#define MODEL_PREFILL 64
#define MODEL_PREFILL_MIN 16
_Static_assert(MODEL_PREFILL >= MODEL_BATCH, "a step's rows fit a session's");
#define MM_ROWS 16 /* rows a product keeps in cache while it serves a batch */

/* Per-row working memory of a forward pass over up to MODEL_PREFILL rows:
 * residual stream, normed input (also the attention output), product
 * output, FFN halves, query, new keys and values, RoPE factors, the int8
 * copy of a product's input, and logits for nlog rows. */
typedef struct scratch {
    float *x, *xb, *xb2, *hb, *hb2, *q, *k, *v, *rope;
    int8_t *aq;
    float *as, *asum;
    void *gbuf; /* gemm_prepare's buffer for a prompt's products */
    float *logits;
    int nlog;
} scratch;

struct model_session {
    const model *m;
    tpool *pool;
    int cap;
    scratch sc;              /* sc.logits (one row) are the session's */
    float *att;
    /* The K/V caches (kv_at): run.c's floats for llama2.c files (kc, vc),
     * llama.cpp's halves for GGUF (kh, vh; half the bytes attention
     * reads); the other pair is NULL. */
    float *kc, *vc;
    uint16_t *kh, *vh;
    int kv;                  /* positions held in the KV cache */
    int pend[MODEL_PREFILL]; /* pushed tokens not yet run */
    int npend;
    int last;
    int logits_ok;
};

struct model_batch {
    const model *m;
    tpool *pool;
    scratch sc; /* MODEL_BATCH rows of logits */
};

/* ------------------------------------------------------------ accessors */

const model_config *model_get_config(const model *m) { return &m->cfg; }
int model_format(const model *m) { return m->format; }
const gguf_file *model_gguf(const model *m) { return m->gguf; }

const kern_mat *model_weight(const model *m, int kind, int layer) {
    if (kind == MODEL_W_EMBED)
        return &m->embed;
    if (kind == MODEL_W_CLS)
        return &m->cls;
    return &m->w[(size_t)layer * N_LAYER_W + (size_t)(kind - MODEL_W_Q)];
}

const float *model_norm(const model *m, int kind, int layer) {
    switch (kind) {
    case MODEL_N_FINAL: return m->norm_final;
    case MODEL_N_ATT: return m->norm_att[layer];
    case MODEL_N_FFN: return m->norm_ffn[layer];
    default: return m->qk_norm[(size_t)layer * 2 + (size_t)(kind - MODEL_N_Q)];
    }
}

const float *model_bias(const model *m, int kind, int layer) {
    return m->bias[(size_t)layer * 3 + (size_t)kind];
}

const char *model_arch_name(int arch) {
    static const char *const names[] = {"llama", "qwen2", "qwen3"};
    return arch >= 0 && arch <= MODEL_ARCH_QWEN3 ? names[arch] : "?";
}

size_t model_bytes_per_token(const model *m) {
    size_t b = kern_mat_read_bytes(&m->cls);
    for (int i = 0; i < m->cfg.n_layers * N_LAYER_W; i++)
        b += kern_mat_read_bytes(&m->w[i]);
    if (!m->cfg.shared_classifier)
        b += kern_mat_bytes(&m->embed) / (size_t)m->embed.rows;
    return b;
}

/* -------------------------------------------------------------- loading */

static int cfg_check(model_config *c, char *err, size_t errlen) {
    if (c->dim <= 0 || c->dim > MAX_DIM || c->hidden_dim <= 0 ||
        c->hidden_dim > MAX_HIDDEN || c->n_layers <= 0 ||
        c->n_layers > MAX_LAYERS || c->n_heads <= 0 || c->n_heads > MAX_HEADS ||
        c->n_kv_heads <= 0 || c->n_kv_heads > c->n_heads ||
        c->vocab_size <= 0 || c->vocab_size > MAX_VOCAB || c->seq_len <= 0 ||
        c->seq_len > MAX_SEQ) {
        status_fmt(err, errlen,
                  "bad model config (dim %d hidden %d layers %d heads %d/%d "
                  "vocab %d seq %d)",
                  c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                  c->vocab_size, c->seq_len);
        return AISLE_EFORMAT;
    }
    /* A head size of 0 means dim / n_heads, as llama2.c files imply. */
    if ((!c->head_size && c->dim % c->n_heads) || c->n_heads % c->n_kv_heads ||
        (c->head_size ? c->head_size : c->dim / c->n_heads) % 2 ||
        c->head_size < 0 || c->head_size > MAX_DIM) {
        status_fmt(err, errlen,
                  "bad model config: dim %d, %d heads, %d kv heads do not "
                  "divide into even head sizes",
                  c->dim, c->n_heads, c->n_kv_heads);
        return AISLE_EFORMAT;
    }
    if (!c->head_size)
        c->head_size = c->dim / c->n_heads;
    c->kv_dim = c->head_size * c->n_kv_heads;
    c->q_dim = c->head_size * c->n_heads;
    return 0;
}

/* A bounds-checked walk through the mapped file. */
typedef struct mcur {
    const uint8_t *base;
    size_t size, off;
    int bad;
} mcur;

static const void *cur_take(mcur *c, uint64_t count, size_t elem) {
    uint64_t n;
    const void *p;
    if (c->bad || __builtin_mul_overflow(count, (uint64_t)elem, &n) ||
        c->off % elem || n > c->size - c->off) {
        c->bad = 1;
        return NULL;
    }
    p = c->base + c->off;
    c->off += (size_t)n;
    return p;
}

static const float *cur_f32(mcur *c, uint64_t n) { return cur_take(c, n, 4); }

static int model_alloc_layers(model *m) {
    size_t L = (size_t)m->cfg.n_layers;
    m->w = calloc(L * N_LAYER_W, sizeof *m->w);
    m->norm_att = calloc(L, sizeof *m->norm_att);
    m->norm_ffn = calloc(L, sizeof *m->norm_ffn);
    m->bias = calloc(L * 3, sizeof *m->bias);
    m->qk_norm = calloc(L * 2, sizeof *m->qk_norm);
    return m->w && m->norm_att && m->norm_ffn && m->bias && m->qk_norm
               ? 0
               : AISLE_ENOMEM;
}

static kern_mat *lw(model *m, int kind, int l) {
    return &m->w[(size_t)l * N_LAYER_W + (size_t)(kind - MODEL_W_Q)];
}

/* Rows and columns of each matrix kind. */
static void kind_shape(const model_config *c, int kind, int *rows, int *cols) {
    switch (kind) {
    case MODEL_W_Q: *rows = c->q_dim; *cols = c->dim; break;
    case MODEL_W_O: *rows = c->dim; *cols = c->q_dim; break;
    case MODEL_W_K: case MODEL_W_V: *rows = c->kv_dim; *cols = c->dim; break;
    case MODEL_W_GATE: case MODEL_W_UP:
        *rows = c->hidden_dim; *cols = c->dim; break;
    case MODEL_W_DOWN: *rows = c->dim; *cols = c->hidden_dim; break;
    default: *rows = c->vocab_size; *cols = c->dim; break;
    }
}

static kern_mat mat_f32(const model_config *c, int kind, const float *p) {
    kern_mat w = {.type = KERN_F32, .q = p};
    kind_shape(c, kind, &w.rows, &w.cols);
    return w;
}

/* n_layers fp32 matrices of one kind stored back to back. */
static void take_layers_f32(model *m, mcur *c, int kind) {
    int rows, cols;
    const float *p;
    kind_shape(&m->cfg, kind, &rows, &cols);
    p = cur_f32(c, (uint64_t)m->cfg.n_layers * (uint64_t)rows * cols);
    for (int l = 0; p && l < m->cfg.n_layers; l++)
        *lw(m, kind, l) = mat_f32(&m->cfg, kind, p + (size_t)l * rows * cols);
}

static void take_norms(model *m, mcur *c, const float **dst) {
    const float *p = cur_f32(c, (uint64_t)m->cfg.n_layers * m->cfg.dim);
    for (int l = 0; p && l < m->cfg.n_layers; l++)
        dst[l] = p + (size_t)l * m->cfg.dim;
}

static const int layer_order[] = {MODEL_W_Q,    MODEL_W_K,    MODEL_W_V,
                                  MODEL_W_O,    MODEL_W_GATE, MODEL_W_DOWN,
                                  MODEL_W_UP};

static int size_error(const mcur *c, const char *path, char *err,
                      size_t errlen) {
    if (c->bad)
        status_fmt(err, errlen,
                  "%s: truncated or corrupt: weights extend past the end of "
                  "the %zu-byte file (or are misaligned)",
                  path, c->size);
    else
        status_fmt(err, errlen,
                  "%s: corrupt: %zu bytes of weights expected, file has %zu",
                  path, c->off, c->size);
    return AISLE_EFORMAT;
}

static int load_legacy(model *m, const char *path, char *err, size_t errlen) {
    mcur c = {m->img.data, m->img.size, LEGACY_HEADER, 0};
    model_config *cfg = &m->cfg;
    int32_t h[7];
    int rc;

    memcpy(h, m->img.data, sizeof h);
    *cfg = (model_config){h[0], h[1], h[2], h[3], h[4], h[5], h[6],
                          0, 0, h[5] > 0, 10000.0f, 1e-5f,
                          MODEL_ARCH_LLAMA, 0, 0};
    /* Negative vocab_size flags a separate classifier; guard the negation. */
    cfg->vocab_size = h[5] == INT32_MIN ? 0 : abs(h[5]);
    if ((rc = cfg_check(cfg, err, errlen)))
        return rc;
    if ((rc = model_alloc_layers(m)))
        return rc;
    m->format = MODEL_FMT_LEGACY;

    m->embed = mat_f32(cfg, MODEL_W_EMBED,
                       cur_f32(&c, (uint64_t)cfg->vocab_size * cfg->dim));
    take_norms(m, &c, m->norm_att);
    take_layers_f32(m, &c, MODEL_W_Q);
    take_layers_f32(m, &c, MODEL_W_K);
    take_layers_f32(m, &c, MODEL_W_V);
    take_layers_f32(m, &c, MODEL_W_O);
    take_norms(m, &c, m->norm_ffn);
    take_layers_f32(m, &c, MODEL_W_GATE);
    take_layers_f32(m, &c, MODEL_W_DOWN);
    take_layers_f32(m, &c, MODEL_W_UP);
    m->norm_final = cur_f32(&c, (uint64_t)cfg->dim);
    /* Precomputed RoPE tables that run.c skips too. */
    cur_f32(&c, (uint64_t)cfg->seq_len * cfg->head_size);
    m->cls = cfg->shared_classifier
                 ? m->embed
                 : mat_f32(cfg, MODEL_W_CLS,
                           cur_f32(&c, (uint64_t)cfg->vocab_size * cfg->dim));
    if (c.bad || c.off != c.size)
        return size_error(&c, path, err, errlen);
    return 0;
}

/* One int8 tensor of the version 2 export: values, then group scales. */
static kern_mat take_q8(model *m, mcur *c, int kind, int gs) {
    kern_mat w = {.type = KERN_Q8, .gs = gs};
    uint64_t n;
    kind_shape(&m->cfg, kind, &w.rows, &w.cols);
    n = (uint64_t)w.rows * (uint64_t)w.cols;
    w.q = cur_take(c, n, 1);
    w.s = cur_f32(c, n / (uint64_t)gs);
    return w;
}

static int load_ak42(model *m, const char *path, char *err, size_t errlen) {
    const uint8_t *b = m->img.data;
    mcur c = {m->img.data, m->img.size, AK42_HEADER, 0};
    model_config *cfg = &m->cfg;
    int32_t version, h[7], gs = 0;
    int rc;

    if (m->img.size < AK42_HEADER) {
        status_fmt(err, errlen, "%s: truncated header (%zu bytes)", path,
                  m->img.size);
        return AISLE_EFORMAT;
    }
    memcpy(&version, b + 4, 4);
    memcpy(h, b + 8, sizeof h);
    if (version != 1 && version != 2) {
        status_fmt(err, errlen, "%s: unsupported llama2.c export version %d",
                  path, version);
        return AISLE_EFORMAT;
    }
    if (b[36] > 1) {
        status_fmt(err, errlen, "%s: corrupt header (shared flag %u)", path,
                  b[36]);
        return AISLE_EFORMAT;
    }
    *cfg = (model_config){h[0], h[1], h[2], h[3], h[4], h[5], h[6],
                          0, 0, b[36], 10000.0f, 1e-5f,
                          MODEL_ARCH_LLAMA, 0, 0};
    if ((rc = cfg_check(cfg, err, errlen)))
        return rc;
    if ((rc = model_alloc_layers(m)))
        return rc;
    m->format = version == 1 ? MODEL_FMT_AK42_V1 : MODEL_FMT_AK42_V2;

    take_norms(m, &c, m->norm_att);
    take_norms(m, &c, m->norm_ffn);
    m->norm_final = cur_f32(&c, (uint64_t)cfg->dim);
    if (version == 1) {
        m->embed = mat_f32(cfg, MODEL_W_EMBED,
                           cur_f32(&c, (uint64_t)cfg->vocab_size * cfg->dim));
        for (size_t k = 0; k < N_LAYER_W; k++)
            take_layers_f32(m, &c, layer_order[k]);
        m->cls = cfg->shared_classifier
                     ? m->embed
                     : mat_f32(cfg, MODEL_W_CLS,
                               cur_f32(&c, (uint64_t)cfg->vocab_size * cfg->dim));
    } else {
        memcpy(&gs, b + 37, 4);
        /* Every product's input length is dim or hidden_dim; a group must
         * not straddle rows. */
        if (gs <= 0 || cfg->dim % gs || cfg->hidden_dim % gs) {
            status_fmt(err, errlen,
                      "%s: group size %d does not divide dim %d and "
                      "hidden_dim %d",
                      path, gs, cfg->dim, cfg->hidden_dim);
            return AISLE_EFORMAT;
        }
        m->embed = take_q8(m, &c, MODEL_W_EMBED, gs);
        for (size_t k = 0; k < N_LAYER_W; k++)
            for (int l = 0; l < cfg->n_layers; l++)
                *lw(m, layer_order[k], l) = take_q8(m, &c, layer_order[k], gs);
        m->cls = cfg->shared_classifier ? m->embed
                                        : take_q8(m, &c, MODEL_W_CLS, gs);
    }
    if (c.bad || c.off != c.size)
        return size_error(&c, path, err, errlen);
    return 0;
}

/* Metadata key "<arch>.<name>" of the model's architecture. */
static const char *arch_key(const model *m, const char *name, char *buf,
                            size_t len) {
    snprintf(buf, len, "%s.%s", model_arch_name(m->cfg.arch), name);
    return buf;
}

static int gguf_cfg_int(const model *m, const char *name, int *out,
                        int required, char *err, size_t errlen) {
    char key[96];
    uint32_t v;
    if (gguf_get_u32(m->gguf, arch_key(m, name, key, sizeof key), &v)) {
        if (!required)
            return 0;
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "GGUF metadata %s missing or invalid", key);
    }
    *out = v > INT32_MAX ? INT32_MAX : (int)v;
    return 0;
}

static void gguf_cfg_f32(const model *m, const char *name, float *out) {
    char key[96];
    gguf_get_f32(m->gguf, arch_key(m, name, key, sizeof key), out);
}

#define SUPPORTED_TYPES \
    "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K"

static int gguf_mat(model *m, const char *name, int kind, kern_mat *out,
                    char *err, size_t errlen) {
    const gguf_tensor *t = gguf_find_tensor(m->gguf, name);
    const char *tname;
    int rows, cols, kt;
    uint32_t be, bb;

    kind_shape(&m->cfg, kind, &rows, &cols);
    if (!t)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "GGUF tensor %s missing", name);
    if (t->ne[0] != (uint64_t)cols || t->ne[1] != (uint64_t)rows ||
        t->ne[2] != 1 || t->ne[3] != 1)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "GGUF tensor %s has shape %llux%llu, want %dx%d",
                           name, (unsigned long long)t->ne[0],
                           (unsigned long long)t->ne[1], cols, rows);
    kt = quant_kern_type(t->type);
    if (kt >= 0 && !t->data && !gguf_type_block(t->type, &be, &bb))
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "GGUF tensor %s: rows of %d values are not whole "
                           "%s blocks of %u", name, cols,
                           gguf_type_name(t->type), be);
    if (kt < 0 || !t->data) {
        tname = gguf_type_name(t->type);
        if (tname)
            return status_fail(AISLE_EFORMAT, err, errlen,
                               "GGUF tensor %s has type %s, which is not "
                               "supported (" SUPPORTED_TYPES ")",
                               name, tname);
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "GGUF tensor %s has unknown type %u (supported: "
                           SUPPORTED_TYPES ")", name, t->type);
    }
    gguf_type_block(t->type, &be, &bb);
    /* llama.cpp repacks the Q4_0 matrices it multiplies (not the
     * embedding, which it also gathers rows of, nor a classifier tied to
     * it) when their rows come in eights. */
    *out = (kern_mat){.type = kt, .rows = rows, .cols = cols,
                      .gs = be > 1 ? (int)be : 0, .q = t->data,
                      .x8 = kt == KERN_Q4_0 && kind != MODEL_W_EMBED &&
                            rows % 8 == 0};
    if ((uintptr_t)t->data % (kt == KERN_F32 ? 4 : 2))
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "GGUF tensor %s is misaligned", name);
    return 0;
}

/* An F32 vector of n floats; a missing optional one leaves *out NULL. */
static int gguf_vec(model *m, const char *name, int n, int required,
                    const float **out, char *err, size_t errlen) {
    const gguf_tensor *t = gguf_find_tensor(m->gguf, name);
    if (!t && !required)
        return 0;
    if (!t || t->type != GGUF_T_F32 || !t->data ||
        t->ne[0] != (uint64_t)n || t->ne[1] != 1 || t->ne[2] != 1 ||
        t->ne[3] != 1 || (uintptr_t)t->data % 4)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "GGUF tensor %s missing or not F32[%d]", name, n);
    *out = t->data;
    return 0;
}

/* general.architecture, refused unless this engine runs it. */
static int gguf_arch(model *m, const char *path, char *err, size_t errlen) {
    gguf_str a;
    if (gguf_get_str(m->gguf, "general.architecture", &a))
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s: GGUF general.architecture missing", path);
    for (int i = MODEL_ARCH_LLAMA; i <= MODEL_ARCH_QWEN3; i++) {
        const char *n = model_arch_name(i);
        if (a.len == strlen(n) && !memcmp(a.p, n, a.len)) {
            m->cfg.arch = i;
            m->cfg.rope_neox = i != MODEL_ARCH_LLAMA;
            return 0;
        }
    }
    return status_fail(AISLE_EFORMAT, err, errlen,
                       "%s: GGUF architecture '%.*s' is not supported "
                       "(llama, qwen2, qwen3)",
                       path, (int)(a.len > 64 ? 64 : a.len), a.p);
}

/* RoPE scaling as llama.cpp reads it: `rope.scaling.type` none or linear
 * (the default), the angles then divided by `rope.scaling.factor` (or the
 * older `rope.scale_linear`); YaRN and the others are refused. */
static int gguf_rope_scaling(model *m, const char *path, char *err,
                             size_t errlen) {
    char key[96];
    gguf_str type = {0};
    float factor = 0.0f;

    m->rope_scale = 1.0f;
    if (!gguf_get_str(m->gguf, arch_key(m, "rope.scaling.type", key,
                                        sizeof key), &type) &&
        !(type.len == 4 && !memcmp(type.p, "none", 4)) &&
        !(type.len == 6 && !memcmp(type.p, "linear", 6)))
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s: RoPE scaling '%.*s' is not supported (none, "
                           "linear)", path, (int)(type.len > 32 ? 32 : type.len),
                           type.p);
    gguf_cfg_f32(m, "rope.scale_linear", &factor);
    gguf_cfg_f32(m, "rope.scaling.factor", &factor);
    if (factor != 0.0f) {
        if (!(factor > 0.0f))
            return status_fail(AISLE_EFORMAT, err, errlen,
                               "%s: bad RoPE scaling factor", path);
        m->rope_scale = 1.0f / factor;
    }
    return 0;
}

/* Shapes and constants from "<arch>.*" metadata. */
static int gguf_config(model *m, const char *path, char *err, size_t errlen) {
    model_config *cfg = &m->cfg;
    const gguf_tensor *emb;
    int rope_dims = 0, rc;

    cfg->rope_theta = 10000.0f;
    cfg->norm_eps = 1e-5f;
    if ((rc = gguf_cfg_int(m, "embedding_length", &cfg->dim, 1, err, errlen)) ||
        (rc = gguf_cfg_int(m, "feed_forward_length", &cfg->hidden_dim, 1, err,
                           errlen)) ||
        (rc = gguf_cfg_int(m, "block_count", &cfg->n_layers, 1, err, errlen)) ||
        (rc = gguf_cfg_int(m, "attention.head_count", &cfg->n_heads, 1, err,
                           errlen)) ||
        (rc = gguf_cfg_int(m, "context_length", &cfg->seq_len, 1, err,
                           errlen)))
        return rc;
    cfg->n_kv_heads = cfg->n_heads;
    gguf_cfg_int(m, "attention.head_count_kv", &cfg->n_kv_heads, 0, err,
                 errlen);
    gguf_cfg_int(m, "attention.key_length", &cfg->head_size, 0, err, errlen);
    gguf_cfg_int(m, "rope.dimension_count", &rope_dims, 0, err, errlen);
    gguf_cfg_f32(m, "rope.freq_base", &cfg->rope_theta);
    gguf_cfg_f32(m, "attention.layer_norm_rms_epsilon", &cfg->norm_eps);
    emb = gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!emb || emb->ne[1] > MAX_VOCAB)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s: GGUF tensor token_embd.weight missing", path);
    cfg->vocab_size = (int)emb->ne[1];
    if ((rc = cfg_check(cfg, err, errlen)))
        return rc;
    if (!(cfg->rope_theta > 0.0f) || !(cfg->norm_eps >= 0.0f))
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s: bad rope base or norm epsilon", path);
    if (rope_dims && rope_dims != cfg->head_size)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s: partial rotary embeddings unsupported", path);
    return gguf_rope_scaling(m, path, err, errlen);
}

/* One layer's tensors; biases are optional (qwen2 has them), the Q/K
 * norms are required for qwen3. */
static int gguf_layer(model *m, int l, char *err, size_t errlen) {
    static const char *const names[N_LAYER_W] = {
        "attn_q", "attn_k", "attn_v", "attn_output",
        "ffn_gate", "ffn_down", "ffn_up"};
    static const char *const bias[3] = {"attn_q", "attn_k", "attn_v"};
    const model_config *c = &m->cfg;
    int blen[3] = {c->q_dim, c->kv_dim, c->kv_dim}, qk = c->arch == MODEL_ARCH_QWEN3;
    char name[64];
    int rc;

    snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
    if ((rc = gguf_vec(m, name, c->dim, 1, &m->norm_att[l], err, errlen)))
        return rc;
    snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
    if ((rc = gguf_vec(m, name, c->dim, 1, &m->norm_ffn[l], err, errlen)))
        return rc;
    for (int k = 0; k < N_LAYER_W; k++) {
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, names[k]);
        if ((rc = gguf_mat(m, name, layer_order[k], lw(m, layer_order[k], l),
                           err, errlen)))
            return rc;
    }
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "blk.%d.%s.bias", l, bias[k]);
        if ((rc = gguf_vec(m, name, blen[k], 0, &m->bias[(size_t)l * 3 + k],
                           err, errlen)))
            return rc;
    }
    snprintf(name, sizeof name, "blk.%d.attn_q_norm.weight", l);
    if ((rc = gguf_vec(m, name, c->head_size, qk, &m->qk_norm[(size_t)l * 2],
                       err, errlen)))
        return rc;
    snprintf(name, sizeof name, "blk.%d.attn_k_norm.weight", l);
    return gguf_vec(m, name, c->head_size, qk, &m->qk_norm[(size_t)l * 2 + 1],
                    err, errlen);
}

static int load_gguf(model *m, const char *path, char *err, size_t errlen) {
    model_config *cfg = &m->cfg;
    int rc;

    if ((rc = gguf_open(m->img.data, m->img.size, &m->gguf, err, errlen)) ||
        (rc = gguf_arch(m, path, err, errlen)) ||
        (rc = gguf_config(m, path, err, errlen)) ||
        (rc = model_alloc_layers(m)))
        return rc;
    m->format = MODEL_FMT_GGUF;
    if ((rc = gguf_mat(m, "token_embd.weight", MODEL_W_EMBED, &m->embed, err,
                       errlen)) ||
        (rc = gguf_vec(m, "output_norm.weight", cfg->dim, 1, &m->norm_final,
                       err, errlen)))
        return rc;
    /* Only llama's graph reads the factors (llama.cpp refuses them in a
     * qwen file as an unused tensor; so do we). */
    if (cfg->arch == MODEL_ARCH_LLAMA &&
        (rc = gguf_vec(m, "rope_freqs.weight", cfg->head_size / 2, 0,
                       &m->rope_freqs, err, errlen)))
        return rc;
    if (cfg->arch != MODEL_ARCH_LLAMA &&
        gguf_find_tensor(m->gguf, "rope_freqs.weight"))
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s: rope_freqs.weight in a %s file", path,
                           model_arch_name(cfg->arch));
    cfg->shared_classifier = !gguf_find_tensor(m->gguf, "output.weight");
    if (cfg->shared_classifier)
        m->cls = m->embed;
    else if ((rc = gguf_mat(m, "output.weight", MODEL_W_CLS, &m->cls, err,
                            errlen)))
        return rc;
    for (int l = 0; l < cfg->n_layers; l++)
        if ((rc = gguf_layer(m, l, err, errlen)))
            return rc;
    return 0;
}

/* Places the matrices that products read (every layer's and the
 * classifier, but not the embedding, whose rows are gathered) in one
 * buffer the model owns: Q8_0, Q4_K and Q6_K repacked for the AVX-512
 * decode tiles (kern_repack), and every other matrix read straight from
 * the mapped file copied as it is. The buffer asks for transparent huge
 * pages: decoding streams every matrix once per token, and on the
 * mapping's 4 KiB pages (the kernel maps page cache this way: no
 * MADV_COLLAPSE for it here) each page's start stalls the stream. On
 * 4 KiB pages the Q8_0 copy decoded slower than from the mapped file,
 * on 2 MiB pages faster; the 110M F32 file at 1 thread decodes
 * 1.03-1.14x (median 1.11) from its copy (model/README.md, session 20). */
#define MODEL_RP_ALIGN ((size_t)2 << 20)
#define MODEL_COPY_ALIGN ((size_t)64) /* each matrix's start in the buffer */

/* Whether w's rows lie in the mapped file (not in a buffer a loader
 * made, as the llama2.c int8 loaders do). */
static int model_in_image(const model *m, const kern_mat *w) {
    const char *q = w->q, *base = m->img.data;
    return q >= base && q < base + m->img.size;
}

/* The bytes w takes in the buffer (0: it stays where it is). */
static size_t model_copy_bytes(const model *m, const kern_mat *w) {
    size_t b = kern_repack_bytes(w);
    if (!b && model_in_image(m, w))
        b = kern_mat_bytes(w);
    return (b + MODEL_COPY_ALIGN - 1) & ~(MODEL_COPY_ALIGN - 1);
}

/* Copies w as it is to dst and points w at it. The mapping's whole pages
 * under the source leave this process's resident set (advice: the page
 * cache keeps them, and a later read maps them again), so the model is
 * resident once, not twice. A classifier tied to the embedding takes the
 * embedding along: the copy holds the same bytes in the same layout, so
 * its rows are gathered from there (a repacked classifier's layout is
 * not the embedding's, which then stays in the mapping). */
static void model_copy(model *m, kern_mat *w, void *dst) {
    size_t bytes = kern_mat_bytes(w), page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t)w->q + page - 1) & ~(uintptr_t)(page - 1),
              to = ((uintptr_t)w->q + bytes) & ~(uintptr_t)(page - 1);
    memcpy(dst, w->q, bytes);
    if (w->q == m->embed.q) {
        assert(w->type == m->embed.type && w->rows == m->embed.rows &&
               w->cols == m->embed.cols);
        m->embed.q = dst;
    }
    if (to > from)
        (void)madvise((void *)from, to - from, MADV_DONTNEED);
    w->q = dst;
}

static int model_repack(model *m, char *err, size_t errlen) {
    size_t n = (size_t)m->cfg.n_layers * N_LAYER_W, total = 0, at = 0;

    for (size_t k = 0; k <= n; k++)
        total += model_copy_bytes(m, k < n ? &m->w[k] : &m->cls);
    if (!total)
        return 0;
    m->rp = aligned_alloc(MODEL_RP_ALIGN,
                          (total + MODEL_RP_ALIGN - 1) & ~(MODEL_RP_ALIGN - 1));
    if (!m->rp)
        return status_fail(AISLE_ENOMEM, err, errlen,
                           "out of memory for %zu bytes of repacked weights",
                           total);
#ifdef MADV_HUGEPAGE
    /* advice only: without huge pages the copy still works */
    (void)madvise(m->rp, total, MADV_HUGEPAGE);
#endif
    for (size_t k = 0; k <= n; k++) {
        kern_mat *w = k < n ? &m->w[k] : &m->cls;
        size_t bytes = model_copy_bytes(m, w);
        if (!bytes)
            continue;
        if (kern_repack_bytes(w))
            kern_repack(w, (char *)m->rp + at);
        else
            model_copy(m, w, (char *)m->rp + at);
        at += bytes;
    }
    assert(at == total);
    return 0;
}

int model_load(const char *path, model **out, char *err, size_t errlen) {
    model *m = calloc(1, sizeof *m); /* the caller's on success */
    uint32_t magic = 0;
    int rc;

    *out = NULL;
    if (!m)
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if ((rc = gguf_map(path, &m->img, err, errlen)))
        goto fail;
    if (m->img.size < LEGACY_HEADER) {
        rc = status_fail(AISLE_EFORMAT, err, errlen,
                         "%s: truncated: %zu bytes is too short for a model "
                         "header", path, m->img.size);
        goto fail;
    }
    memcpy(&magic, m->img.data, 4);
    if (magic == GGUF_MAGIC)
        rc = load_gguf(m, path, err, errlen);
    else if (magic == AK42_MAGIC)
        rc = load_ak42(m, path, err, errlen);
    else
        rc = load_legacy(m, path, err, errlen);
    if (rc || (rc = model_repack(m, err, errlen)))
        goto fail;
    *out = m;
    return 0;

fail:
    model_free(m);
    return rc;
}

void model_free(model *m) {
    if (!m)
        return;
    gguf_close(m->gguf);
    gguf_unmap(&m->img);
    free(m->w);
    free(m->norm_att);
    free(m->norm_ffn);
    free(m->bias);
    free(m->qk_norm);
    free(m->rp);
    free(m);
}

/* ------------------------------------------------------------- sessions */

/* Widest row of xb: the normed input (dim) or the attention output (q_dim). */
static size_t xb_width(const model_config *c) {
    return (size_t)(c->dim > c->q_dim ? c->dim : c->q_dim);
}

static void scratch_free(scratch *sc) {
    free(sc->x);
    free(sc->xb);
    free(sc->xb2);
    free(sc->hb);
    free(sc->hb2);
    free(sc->q);
    free(sc->k);
    free(sc->v);
    free(sc->rope);
    free(sc->aq);
    free(sc->as);
    free(sc->asum);
    free(sc->gbuf);
    free(sc->logits);
    memset(sc, 0, sizeof *sc);
}

/* Allocates sc for `rows` rows (MODEL_PREFILL for a session, MODEL_BATCH
 * for a model_batch) and nlog rows of logits. */
static int scratch_new(const model_config *c, int rows, int nlog,
                       scratch *sc) {
    size_t B = (size_t)rows, dim = (size_t)c->dim, xd = xb_width(c),
           hid = (size_t)c->hidden_dim, kvd = (size_t)c->kv_dim,
           big = xd > hid ? xd : hid;

    memset(sc, 0, sizeof *sc);
    sc->x = calloc(B * dim, sizeof(float));
    sc->xb = calloc(B * xd, sizeof(float));
    sc->xb2 = calloc(B * dim, sizeof(float));
    sc->hb = calloc(B * hid, sizeof(float));
    sc->hb2 = calloc(B * hid, sizeof(float));
    sc->q = calloc(B * (size_t)c->q_dim, sizeof(float));
    sc->k = calloc(B * kvd, sizeof(float));
    sc->v = calloc(B * kvd, sizeof(float));
    sc->rope = calloc(B * (size_t)c->head_size, sizeof(float));
    sc->aq = calloc(B * big, 1);
    sc->as = calloc(B * big, sizeof(float));
    sc->asum = calloc(B * big, sizeof(float));
    /* gemm_buf_bytes is a multiple of 64, as aligned_alloc needs. */
    sc->gbuf = aligned_alloc(64, gemm_buf_bytes((int)big, rows));
    sc->logits = calloc((size_t)nlog * (size_t)c->vocab_size, sizeof(float));
    sc->nlog = nlog;
    if (!sc->x || !sc->xb || !sc->xb2 || !sc->hb || !sc->hb2 || !sc->q ||
        !sc->k || !sc->v || !sc->rope || !sc->aq || !sc->as || !sc->asum ||
        !sc->gbuf || !sc->logits) {
        scratch_free(sc);
        return AISLE_ENOMEM;
    }
    return AISLE_OK;
}

/* Floats per head of a session's scores: its capacity rounded up to 8,
 * so kern_round_f16 runs whole vectors (its scalar tail converts in
 * software). */
static size_t att_stride(const model_session *s) {
    return ((size_t)s->cap + 7) & ~(size_t)7;
}

/* Where layer l's KV head h holds position pos in a session's caches:
 * layer by layer, head by head, cap positions of head_size values each.
 * A head's attention then reads one contiguous stream (with the positions
 * kv_dim apart it read 128 bytes of every 1.5 KiB row, which the hardware
 * prefetcher does not follow, and five sequences spent about an eighth of
 * a step there). */
static size_t kv_at(const model_session *s, int l, int h, int pos) {
    const model_config *c = &s->m->cfg;
    return (((size_t)l * (size_t)c->n_kv_heads + (size_t)h) * (size_t)s->cap +
            (size_t)pos) *
           (size_t)c->head_size;
}

/* Whether the forward pass follows llama.cpp's arithmetic, as for GGUF
 * files (llama2.c files keep run.c's): attention on half-precision K, V,
 * query and weights (its K/V cache is F16, and it converts the other
 * operand of those products to half), its exp, softmax, RMSNorm, RoPE
 * angles and SiLU, and the order of its sums. A last-bit difference in an
 * activation flips int8 roundings in the next product, and random-weight
 * models amplify them (model/README.md, conformance). */
static int ggml_math(const model *m) { return m->format == MODEL_FMT_GGUF; }

int model_session_new(const model *m, tpool *pool, int max_seq,
                      model_session **out) {
    const model_config *c = &m->cfg;
    model_session *s = calloc(1, sizeof *s); /* the caller's on success */
    size_t cap, kv;

    *out = NULL;
    if (!s)
        return AISLE_ENOMEM;
    s->m = m;
    s->pool = pool;
    s->cap = max_seq > 0 && max_seq < c->seq_len ? max_seq : c->seq_len;
    cap = (size_t)s->cap;
    kv = (size_t)c->n_layers * cap * (size_t)c->kv_dim;
    s->att = calloc((size_t)c->n_heads * att_stride(s), sizeof(float));
    if (ggml_math(m)) {
        s->kh = calloc(kv, sizeof *s->kh);
        s->vh = calloc(kv, sizeof *s->vh);
    } else {
        s->kc = calloc(kv, sizeof *s->kc);
        s->vc = calloc(kv, sizeof *s->vc);
    }
    if (!s->att || (ggml_math(m) ? !s->kh || !s->vh : !s->kc || !s->vc) ||
        scratch_new(c, MODEL_PREFILL, 1, &s->sc)) {
        model_session_free(s);
        return AISLE_ENOMEM;
    }
    model_session_reset(s);
    *out = s;
    return 0;
}

void model_session_free(model_session *s) {
    if (!s)
        return;
    scratch_free(&s->sc);
    free(s->att);
    free(s->kc);
    free(s->vc);
    free(s->kh);
    free(s->vh);
    free(s);
}

void model_session_reset(model_session *s) {
    s->kv = 0;
    s->npend = 0;
    s->last = -1;
    s->logits_ok = 0;
}

const model *model_session_model(const model_session *s) { return s->m; }

int model_session_pos(const model_session *s) {
    return s->kv + s->npend;
}
int model_session_last(const model_session *s) { return s->last; }
int model_session_capacity(const model_session *s) { return s->cap; }

/* ---------------------------------------------------------- forward pass */

typedef struct mm_job {
    const kern_mat *w[3];
    float *out[3];   /* row t of the batch at out[k] + t * stride[k] */
    size_t stride[3];
    int n;
    const kern_act *x; /* one activation per batch row */
    int nx;
    const void *gbuf; /* a prompt's: gemm_prepare's buffer; else NULL */
} mm_job;

/* Rows r0..r1 of product k of j: gemm.h's form for a prompt where it has
 * one; else, for a batch, one call where the kernel serves every batch
 * row in one pass over the rows (kern_one_pass: one sequence, a decode
 * step's few on the AVX-512 forms), or slices of MM_ROWS rows, each
 * serving every batch row (KERN_MAX_ACTS at a time) while it is cached. */
static void mm_rows(const mm_job *j, int k, int64_t r0, int64_t r1) {
    int64_t step = kern_one_pass(j->w[k], j->nx) ? r1 - r0 : MM_ROWS;

    if (j->gbuf && gemm_handles(j->w[k], j->nx)) {
        if (r0 < r1)
            gemm_rows(j->w[k], j->nx, j->gbuf, j->out[k], j->stride[k],
                      (int)r0, (int)r1);
        return;
    }
    for (int64_t r = r0; r < r1; r += step) {
        int64_t e = r + step < r1 ? r + step : r1;
        for (int t = 0; t < j->nx; t += KERN_MAX_ACTS)
            kern_matvec_n(j->w[k], j->x + t,
                          j->nx - t < KERN_MAX_ACTS ? j->nx - t : KERN_MAX_ACTS,
                          j->out[k] + j->stride[k] * (size_t)t, j->stride[k],
                          (int)r, (int)e);
    }
}

/* A cut at row x of a product of `rows` rows, moved down to a whole run
 * of KERN_RP_ROWS: the repacked kernels take whole runs by tiles and the
 * rows around them one at a time, far slower (a Qwen2.5-0.5B-shaped
 * prompt's 896- and 1,152-row products cut in 16 parts ran at 2 threads
 * at a quarter of 1 thread's speed). Both parts beside a cut move it
 * alike, so the parts still cover every row once. */
static int64_t mm_cut(int64_t x, int64_t rows) {
    if (x <= 0)
        return 0;
    return x >= rows ? rows : x / KERN_RP_ROWS * KERN_RP_ROWS;
}

/* Part `part` of the rows of up to three products sharing one input, so
 * Q/K/V and gate/up each take a single trip through the pool. */
static void mm_part(void *arg, int part, int nparts) {
    const mm_job *j = arg;
    int64_t total = 0, lo, hi, base = 0;

    for (int k = 0; k < j->n; k++)
        total += j->w[k]->rows;
    lo = total * part / nparts;
    hi = total * (part + 1) / nparts;
    for (int k = 0; k < j->n; k++) {
        int64_t rows = j->w[k]->rows;
        mm_rows(j, k, mm_cut(lo - base, rows), mm_cut(hi - base, rows));
        base += rows;
    }
}

/* One forward pass: the model, its pool, the scratch it runs in, and
 * whether its rows are a prompt's (MODEL_PREFILL_MIN or more tokens of one
 * session), whose products may take gemm.h's orders. */
typedef struct fwd {
    const model *m;
    tpool *pool;
    scratch *sc;
    int prefill;
} fwd;

/* A batch row: the sequence it extends and its position there. */
typedef struct fwd_row {
    model_session *s;
    int pos;
} fwd_row;

/* Per-row work of a forward pass: fn(j, t) for every row t < n of layer l.
 * A prompt's batch splits it over the pool (a trip costs microseconds,
 * the serial work it spreads milliseconds at 64 rows); a decode step's
 * few rows run inline. */
typedef struct rows_job {
    const fwd *f;
    int l, n;
    const fwd_row *rows; /* NULL where fn needs none */
    void (*fn)(const struct rows_job *j, int t);
    void *ctx;           /* fn's */
} rows_job;

static void rows_part(void *arg, int part, int nparts) {
    const rows_job *j = arg;
    for (int t = j->n * part / nparts; t < j->n * (part + 1) / nparts; t++)
        j->fn(j, t);
}

static void for_rows(const fwd *f, int l, const fwd_row *rows, int n,
                     void (*fn)(const rows_job *, int), void *ctx) {
    rows_job j = {f, l, n, rows, fn, ctx};
    if (f->prefill)
        tpool_run(f->pool, rows_part, &j);
    else
        rows_part(&j, 0, 1);
}

/* A product's input rows: quantized as `code` (0: none) and, for a
 * prompt's forms, prepared in gbuf (NULL: none). */
typedef struct mm_prep {
    kern_act *act;
    int code;
    void *gbuf;
} mm_prep;

static void prep_row(const rows_job *j, int t) {
    const mm_prep *p = j->ctx;
    if (p->code)
        kern_act_quantize(&p->act[t], p->code);
    if (p->gbuf)
        gemm_prepare(p->act, j->n, t, t + 1, p->code, p->gbuf);
}

/* Runs up to three products over the n batch rows of x (rows of length
 * len, `xstride` floats apart). Products whose weights want the activation
 * quantized differently (kern_needs_act) run one at a time. */
static void matmul(const fwd *f, const float *x, size_t xstride, int len,
                   int n, mm_job *j) {
    const model_config *c = &f->m->cfg;
    kern_act act[MODEL_PREFILL];
    size_t hid = (size_t)c->hidden_dim, xd = xb_width(c),
           big = xd > hid ? xd : hid;
    int code = kern_needs_act(j->w[0]);

    assert(n <= MODEL_PREFILL);
    for (int k = 1; k < j->n; k++)
        if (kern_needs_act(j->w[k]) != code) {
            for (k = 0; k < j->n; k++) {
                mm_job one = {{j->w[k]}, {j->out[k]}, {j->stride[k]}, 1,
                              NULL, 0, NULL};
                matmul(f, x, xstride, len, n, &one);
            }
            return;
        }
    for (int t = 0; t < n; t++)
        act[t] = (kern_act){x + xstride * t, len, f->sc->aq + big * t,
                            f->sc->as + big * t, f->sc->asum + big * t, 0};
    j->x = act;
    j->nx = n;
    j->gbuf = NULL;
    for (int k = 0; f->prefill && k < j->n; k++)
        if (gemm_handles(j->w[k], n))
            j->gbuf = f->sc->gbuf;
    for_rows(f, 0, NULL, n, prep_row, &(mm_prep){act, code, (void *)j->gbuf});
    tpool_run(f->pool, mm_part, j);
}

/* Attention for n rows of one session at positions pos..pos+n-1 (a
 * prompt's batch, or one row), split over heads: one trip through the
 * pool for all the rows. */
typedef struct att_job {
    model_session *s;
    int l;          /* the layer */
    int pos, n;
    const float *q; /* the rows' queries, all heads, q_dim apart */
    float *out;     /* their attention outputs, xb_width apart */
} att_job;

/* One head's attention as llama.cpp computes it: scores of the half query
 * against the half keys, scaled inside its softmax, weights rounded to
 * half, and the values mixed over its cache of pos + 1 positions padded to
 * 32. The cache holds `avail` >= pos + 1 keys (a prompt's batch has
 * written the later rows' too): the scores of up to 15 of them past pos
 * are computed as scratch, so whole runs of 16 keys take the vector form
 * (each key's score is the same in either form). */
static void att_ggml(const model_session *s, const float *q, size_t hoff,
                     int pos, int avail, float *att, float *out) {
    int hs = s->m->cfg.head_size, n = pos + 1, ns = (n + 15) & ~15;

    assert(avail >= n && avail <= s->cap);
    kern_scores_half(q, s->kh + hoff, (size_t)hs, ns < avail ? ns : avail, hs,
                     att);
    kern_softmax_ggml(att, n, 1.0f / sqrtf((float)hs));
    /* whole vectors: the scores past n are scratch (att_stride) */
    kern_round_f16(att, (n + 7) & ~7);
    kern_mix_half(att, s->vh + hoff, (size_t)hs, n, (n + 31) & ~31, hs, out);
}

/* Head h's attention for row t of j: llama.cpp's or run.c's. */
static void att_row(const att_job *j, int h, int t) {
    model_session *s = j->s;
    const model_config *c = &s->m->cfg;
    int hs = c->head_size, pos = j->pos + t;
    float *att = s->att + (size_t)h * att_stride(s);
    size_t hoff = kv_at(s, j->l, h / (c->n_heads / c->n_kv_heads), 0);
    const float *q = j->q + (size_t)c->q_dim * t + (size_t)h * hs;
    float *out = j->out + xb_width(c) * t + (size_t)h * hs;

    if (ggml_math(s->m)) {
        att_ggml(s, q, hoff, pos, j->pos + j->n, att, out);
        return;
    }
    /* scores are divided by sqrt(hs), as run.c does */
    kern_scores(q, s->kc + hoff, (size_t)hs, pos + 1, hs, sqrtf((float)hs),
                att);
    kern_softmax(att, pos + 1);
    kern_mix(att, s->vc + hoff, (size_t)hs, pos + 1, hs, out);
}

/* Asks for KV head kh's keys and values at positions 0..pos+n-1 of j's
 * layer into L2. A step's weights stream through the caches between one
 * layer's attention and the next, so every head's cache comes from DRAM:
 * a few KiB in runs too short for the hardware prefetcher to ramp up, and
 * five sequences spent about a sixth of a step waiting on them. */
static void att_prefetch(const att_job *j, int kh) {
    const model_session *s = j->s;
    size_t off = kv_at(s, j->l, kh, 0),
           bytes = (size_t)(j->pos + j->n) * (size_t)s->m->cfg.head_size;

    if (s->kh) {
        kern_prefetch(s->kh + off, bytes * sizeof *s->kh);
        kern_prefetch(s->vh + off, bytes * sizeof *s->vh);
    } else {
        kern_prefetch(s->kc + off, bytes * sizeof *s->kc);
        kern_prefetch(s->vc + off, bytes * sizeof *s->vc);
    }
}

/* Heads of part `part`, each KV head's cache asked for while the one
 * before it runs. */
static void att_part(void *arg, int part, int nparts) {
    const att_job *j = arg;
    const model_config *c = &j->s->m->cfg;
    int nh = c->n_heads, g = c->n_heads / c->n_kv_heads,
        h0 = nh * part / nparts, h1 = nh * (part + 1) / nparts;

    if (h0 < h1)
        att_prefetch(j, h0 / g);
    for (int h = h0; h < h1; h++) {
        if (h + 1 < h1 && (h + 1) / g != h / g)
            att_prefetch(j, (h + 1) / g);
        for (int t = 0; t < j->n; t++)
            att_row(j, h, t);
    }
}

/* o = x / rms(x) * w: run.c's float sum of squares, or with ggml
 * llama.cpp's, in double. */
static void rmsnorm(float *o, const float *x, const float *w, int n,
                    float eps, int ggml) {
    float ss = 0.0f;
    if (ggml) {
        double sum = 0.0;
        for (int i = 0; i < n; i++)
            sum += (double)(x[i] * x[i]);
        ss = (float)(sum / n);
    } else {
        for (int i = 0; i < n; i++)
            ss += x[i] * x[i];
        ss /= n;
    }
    ss = 1.0f / sqrtf(ss + eps);
    for (int i = 0; i < n; i++)
        o[i] = w[i] * (ss * x[i]);
}

static void add_vec(float *x, const float *b, int n) {
    if (b)
        for (int i = 0; i < n; i++)
            x[i] += b[i];
}

/* Embeds each row's token and computes its RoPE factors: pair i turns by
 * pos * theta^(-2i/hs), as run.c computes it or, with ggml, as llama.cpp
 * does (the angle multiplied by theta^(-2/hs) from one pair to the next). */
static void fwd_embed(const fwd *f, const int *tokens, const fwd_row *rows,
                      int n) {
    const model_config *c = &f->m->cfg;
    size_t dim = (size_t)c->dim, hs = (size_t)c->head_size;
    float step = powf(c->rope_theta, -2.0f / (float)hs);

    for (int t = 0; t < n; t++) {
        float *cs = f->sc->rope + hs * t, angle = (float)rows[t].pos;
        kern_mat_row(&f->m->embed, tokens[t], f->sc->x + dim * t);
        for (size_t i = 0; i < hs; i += 2, angle *= step) {
            const float *ff = f->m->rope_freqs;
            float val = f->m->rope_scale * (ff ? angle / ff[i / 2] : angle);
            if (!ggml_math(f->m))
                val = rows[t].pos *
                      (1.0f / powf(c->rope_theta, (float)i / (float)hs));
            cs[i] = cosf(val);
            cs[i + 1] = sinf(val);
        }
    }
}

/* Biases, Q/K norms and RoPE on row t's new query and key, then its key and
 * value into the row's cache. */
static void fwd_qk(const rows_job *j, int t) {
    const fwd *f = j->f;
    const fwd_row *row = &j->rows[t];
    const model *m = f->m;
    int l = j->l;
    const model_config *c = &m->cfg;
    size_t kvd = (size_t)c->kv_dim, hs = (size_t)c->head_size;
    float *q = f->sc->q + (size_t)c->q_dim * t, *k = f->sc->k + kvd * t,
          *v = f->sc->v + kvd * t;
    const float *qn = model_norm(m, MODEL_N_Q, l), *kn = model_norm(m, MODEL_N_K, l);

    add_vec(q, model_bias(m, MODEL_B_Q, l), c->q_dim);
    add_vec(k, model_bias(m, MODEL_B_K, l), c->kv_dim);
    add_vec(v, model_bias(m, MODEL_B_V, l), c->kv_dim);
    for (int h = 0; qn && h < c->n_heads; h++)
        rmsnorm(q + hs * h, q + hs * h, qn, c->head_size, c->norm_eps,
                ggml_math(m));
    for (int h = 0; kn && h < c->n_kv_heads; h++)
        rmsnorm(k + hs * h, k + hs * h, kn, c->head_size, c->norm_eps,
                ggml_math(m));
    /* RoPE (kern.h); with ggml fused as gcc contracts llama.cpp's: a
     * last-bit difference here flips the half rounding of the cached key
     * now and then. */
    kern_rope(q, c->q_dim, c->head_size, f->sc->rope + hs * t, c->rope_neox,
              ggml_math(m));
    kern_rope(k, c->kv_dim, c->head_size, f->sc->rope + hs * t, c->rope_neox,
              ggml_math(m));
    if (ggml_math(m))
        kern_round_f16(q, c->q_dim);
    for (int h = 0; h < c->n_kv_heads; h++) {
        size_t at = kv_at(row->s, l, h, row->pos);
        if (ggml_math(m)) {
            kern_to_f16(k + hs * h, row->s->kh + at, c->head_size);
            kern_to_f16(v + hs * h, row->s->vh + at, c->head_size);
        } else {
            memcpy(row->s->kc + at, k + hs * h, hs * sizeof *k);
            memcpy(row->s->vc + at, v + hs * h, hs * sizeof *v);
        }
    }
}

/* Row t's residual: x += xb2 (the block's output). */
static void residual_row(const rows_job *j, int t) {
    const model_config *c = &j->f->m->cfg;
    float *x = j->f->sc->x + (size_t)c->dim * t;
    const float *o = j->f->sc->xb2 + (size_t)c->dim * t;
    for (int i = 0; i < c->dim; i++)
        x[i] += o[i];
}

/* Row t's input to the attention block: x normed into xb. */
static void att_in_row(const rows_job *j, int t) {
    const model *m = j->f->m;
    const model_config *c = &m->cfg;
    rmsnorm(j->f->sc->xb + xb_width(c) * t, j->f->sc->x + (size_t)c->dim * t,
            m->norm_att[j->l], c->dim, c->norm_eps, ggml_math(m));
}

/* Row t's attention residual, then its input to the FFN block. */
static void ffn_in_row(const rows_job *j, int t) {
    const model *m = j->f->m;
    const model_config *c = &m->cfg;
    residual_row(j, t);
    rmsnorm(j->f->sc->xb + xb_width(c) * t, j->f->sc->x + (size_t)c->dim * t,
            m->norm_ffn[j->l], c->dim, c->norm_eps, ggml_math(m));
}

/* Row t's SwiGLU: hb = silu(hb) * hb2, llama.cpp's or run.c's. */
static void swiglu_row(const rows_job *j, int t) {
    const model *m = j->f->m;
    size_t hid = (size_t)m->cfg.hidden_dim;
    float *g = j->f->sc->hb + hid * t;
    const float *u = j->f->sc->hb2 + hid * t;

    if (ggml_math(m)) {
        kern_swiglu_ggml(g, u, (int)hid);
        return;
    }
    for (size_t i = 0; i < hid; i++)
        g[i] = g[i] * (1.0f / (1.0f + expf(-g[i]))) * u[i];
}

/* Attention block of layer l for n rows; its residual is added by the
 * FFN block's first step. */
static void fwd_attention(const fwd *f, int l, const fwd_row *rows, int n) {
    const model *m = f->m;
    const model_config *c = &m->cfg;
    scratch *sc = f->sc;
    size_t dim = (size_t)c->dim, xd = xb_width(c), kvd = (size_t)c->kv_dim,
           qd = (size_t)c->q_dim;
    mm_job qkv = {{model_weight(m, MODEL_W_Q, l), model_weight(m, MODEL_W_K, l),
                   model_weight(m, MODEL_W_V, l)},
                  {sc->q, sc->k, sc->v}, {qd, kvd, kvd}, 3, NULL, 0,
                  NULL};
    mm_job o = {{model_weight(m, MODEL_W_O, l)}, {sc->xb2}, {dim}, 1,
                NULL, 0, NULL};

    for_rows(f, l, rows, n, att_in_row, NULL);
    matmul(f, sc->xb, xd, c->dim, n, &qkv);
    for_rows(f, l, rows, n, fwd_qk, NULL);
    /* Causal: a row sees its cache up to its own position, which includes
     * the rows of its sequence before it in this batch. Each session's
     * rows (consecutive positions: a prompt's batch, or a step's one row)
     * take one job. */
    for (int t = 0, e; t < n; t = e) {
        att_job aj;
        for (e = t + 1; e < n && rows[e].s == rows[t].s; e++)
            assert(rows[e].pos == rows[t].pos + (e - t));
        aj = (att_job){rows[t].s, l, rows[t].pos, e - t, sc->q + qd * t,
                       sc->xb + xd * t};
        tpool_run(f->pool, att_part, &aj);
    }
    matmul(f, sc->xb, xd, c->q_dim, n, &o);
}

/* The attention block's residual, then the SwiGLU feed-forward block of
 * layer l for n rows, its residual included. */
static void fwd_ffn(const fwd *f, int l, int n) {
    const model *m = f->m;
    const model_config *c = &m->cfg;
    scratch *sc = f->sc;
    size_t dim = (size_t)c->dim, xd = xb_width(c), hid = (size_t)c->hidden_dim;
    mm_job up = {{model_weight(m, MODEL_W_GATE, l), model_weight(m, MODEL_W_UP, l)},
                 {sc->hb, sc->hb2}, {hid, hid}, 2, NULL, 0, NULL};
    mm_job down = {{model_weight(m, MODEL_W_DOWN, l)}, {sc->xb2}, {dim}, 1,
                   NULL, 0, NULL};

    for_rows(f, l, NULL, n, ffn_in_row, NULL);
    matmul(f, sc->xb, xd, c->dim, n, &up);
    for_rows(f, l, NULL, n, swiglu_row, NULL);
    matmul(f, sc->hb, hid, c->hidden_dim, n, &down);
    for_rows(f, l, NULL, n, residual_row, NULL);
}

/* Runs tokens[t] at rows[t] for t < n (n <= MODEL_PREFILL, positions within
 * each session's capacity), and the logits of rows from..n-1 into
 * sc->logits (from == n: none). */
static void forward(const fwd *f, const int *tokens, const fwd_row *rows,
                    int n, int from) {
    const model_config *c = &f->m->cfg;
    scratch *sc = f->sc;
    size_t dim = (size_t)c->dim, xd = xb_width(c);

    assert(n >= 1 && n <= MODEL_PREFILL && n - from <= sc->nlog);
    fwd_embed(f, tokens, rows, n);
    for (int l = 0; l < c->n_layers; l++) {
        fwd_attention(f, l, rows, n);
        fwd_ffn(f, l, n);
    }
    if (from < n) {
        mm_job cls = {{&f->m->cls}, {sc->logits}, {(size_t)c->vocab_size}, 1,
                      NULL, 0, NULL};
        for (int t = from; t < n; t++)
            rmsnorm(sc->xb + xd * (size_t)(t - from), sc->x + dim * t,
                    f->m->norm_final, c->dim, c->norm_eps, ggml_math(f->m));
        matmul(f, sc->xb, xd, c->dim, n - from, &cls);
    }
}

/* Runs every pending token; 0 or AISLE_EFULL. */
static int flush(model_session *s, int want_logits) {
    fwd f = {s->m, s->pool, &s->sc, s->npend >= MODEL_PREFILL_MIN};
    fwd_row rows[MODEL_PREFILL];

    if (s->kv + s->npend > s->cap)
        return AISLE_EFULL;
    for (int t = 0; t < s->npend; t++)
        rows[t] = (fwd_row){s, s->kv + t};
    forward(&f, s->pend, rows, s->npend, want_logits ? s->npend - 1 : s->npend);
    s->kv += s->npend;
    s->npend = 0;
    return 0;
}

int model_session_push(model_session *s, int token) {
    int rc;
    if (token < 0 || token >= s->m->cfg.vocab_size)
        return AISLE_EINVAL;
    /* A token one past the context may wait (its logits will be refused);
     * a second one cannot. */
    if (s->kv + s->npend > s->cap)
        return AISLE_EFULL;
    if (s->npend == MODEL_PREFILL && (rc = flush(s, 0)))
        return rc;
    s->pend[s->npend++] = token;
    s->last = token;
    s->logits_ok = 0;
    return 0;
}

float *model_session_logits(model_session *s) {
    if (s->npend) {
        if (flush(s, 1))
            return NULL;
        s->logits_ok = 1;
    }
    return s->logits_ok ? s->sc.logits : NULL;
}

float *model_forward(model_session *s, int token, int pos) {
    fwd f = {s->m, s->pool, &s->sc, 0};
    fwd_row row = {s, pos};

    if (token < 0 || token >= s->m->cfg.vocab_size || pos < 0 ||
        pos >= s->cap)
        return NULL;
    forward(&f, &token, &row, 1, 0);
    s->kv = pos + 1;
    s->npend = 0;
    s->last = token;
    s->logits_ok = 1;
    return s->sc.logits;
}

/* ------------------------------------------- batches and shared prefixes */

int model_batch_new(const model *m, tpool *pool, model_batch **out) {
    model_batch *b = calloc(1, sizeof *b); /* the caller's on success */

    *out = NULL;
    if (!b || scratch_new(&m->cfg, MODEL_BATCH, MODEL_BATCH, &b->sc)) {
        free(b);
        return AISLE_ENOMEM;
    }
    b->m = m;
    b->pool = pool;
    *out = b;
    return AISLE_OK;
}

void model_batch_free(model_batch *b) {
    if (!b)
        return;
    scratch_free(&b->sc);
    free(b);
}

/* Checks a step's arguments before anything changes. */
static int batch_check(const model_batch *b, model_session *const *seqs,
                       const int *tokens, int n) {
    if (n < 1 || n > MODEL_BATCH)
        return AISLE_EINVAL;
    for (int i = 0; i < n; i++) {
        if (seqs[i]->m != b->m || tokens[i] < 0 ||
            tokens[i] >= b->m->cfg.vocab_size)
            return AISLE_EINVAL;
        if (seqs[i]->kv + seqs[i]->npend >= seqs[i]->cap)
            return AISLE_EFULL;
        for (int j = 0; j < i; j++)
            if (seqs[j] == seqs[i])
                return AISLE_EINVAL; /* one row per sequence and step */
    }
    return AISLE_OK;
}

int model_batch_step(model_batch *b, model_session *const *seqs,
                     const int *tokens, int n) {
    fwd f = {b->m, b->pool, &b->sc, 0};
    fwd_row rows[MODEL_BATCH];
    size_t vocab = (size_t)b->m->cfg.vocab_size;
    int rc = batch_check(b, seqs, tokens, n);

    if (rc)
        return rc;
    for (int i = 0; i < n; i++) {
        /* Prompt tokens still pending run first, in the session's own
         * batches; then every sequence is at its cache's end. */
        if (seqs[i]->npend && (rc = flush(seqs[i], 0)))
            return rc;
        rows[i] = (fwd_row){seqs[i], seqs[i]->kv};
    }
    forward(&f, tokens, rows, n, 0);
    for (int i = 0; i < n; i++) {
        model_session *s = seqs[i];
        memcpy(s->sc.logits, b->sc.logits + vocab * (size_t)i,
               vocab * sizeof(float));
        s->kv++;
        s->last = tokens[i];
        s->logits_ok = 1;
    }
    return AISLE_OK;
}

int model_session_copy_prefix(model_session *dst, const model_session *src,
                               int n) {
    const model_config *c = &src->m->cfg;
    size_t len = (size_t)n * (size_t)c->head_size; /* values per layer, head */

    if (dst->m != src->m || n < 0 || n > src->kv || n > dst->cap)
        return AISLE_EINVAL;
    for (int l = 0; l < c->n_layers; l++)
        for (int h = 0; h < c->n_kv_heads; h++) {
            size_t so = kv_at(src, l, h, 0), d = kv_at(dst, l, h, 0);
            if (src->kh) {
                memcpy(dst->kh + d, src->kh + so, len * sizeof *src->kh);
                memcpy(dst->vh + d, src->vh + so, len * sizeof *src->vh);
            } else {
                memcpy(dst->kc + d, src->kc + so, len * sizeof *src->kc);
                memcpy(dst->vc + d, src->vc + so, len * sizeof *src->vc);
            }
        }
    model_session_reset(dst);
    dst->kv = n;
    if (n == src->kv && !src->npend) {
        /* The whole sequence: its last token and prediction come too. */
        dst->last = src->last;
        dst->logits_ok = src->logits_ok;
        memcpy(dst->sc.logits, src->sc.logits,
               (size_t)c->vocab_size * sizeof(float));
    }
    return AISLE_OK;
}
