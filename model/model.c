/* model.c — loading llama2.c and GGUF weights, and the forward pass.
 *
 * Loading maps the file read-only and points kern_mat descriptors into the
 * mapping; nothing is copied, so concurrent sessions (and processes) share
 * one copy of the weights through the page cache. Every extent is checked
 * against the file size with overflow-checked arithmetic before a pointer
 * is formed. The forward pass follows llama2.c's run.c step for step (the
 * same RMSNorm, pairwise RoPE, attention and SwiGLU arithmetic) so greedy
 * decoding reproduces llama2.c's tokens; the matrix products, which are
 * nearly all the time, are split across the session's thread pool. */
#include "model/model.h"
#include "services/base/status.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
    void *map;
    size_t map_size;
    gguf_file *gguf;
    kern_mat embed, cls;
    kern_mat *w;            /* n_layers * N_LAYER_W */
    const float **norm_att; /* n_layers pointers */
    const float **norm_ffn;
    const float *norm_final;
    int act_gs;             /* activation group size for int8 weights */
};

/* Prompt tokens run MODEL_BATCH at a time: each weight row then comes
 * from DRAM once per batch instead of once per token. */
#define MODEL_BATCH 16
#define MM_ROWS 16 /* rows a product keeps in cache while it serves a batch */

struct model_session {
    const model *m;
    tpool *pool;
    int cap;
    /* Per batch row (MODEL_BATCH rows each): residual stream, scratch,
     * query, FFN halves, RoPE factors, and the int8 copy of the input of
     * the product being run. */
    float *x, *xb, *xb2, *hb, *hb2, *q, *rope;
    int8_t *aq;
    float *as;
    float *att, *logits, *kc, *vc;
    int kv;                  /* positions held in the KV cache */
    int pend[MODEL_BATCH];   /* pushed tokens not yet run */
    int npend;
    int last;
    int logits_ok;
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
    if (kind == MODEL_N_FINAL)
        return m->norm_final;
    return kind == MODEL_N_ATT ? m->norm_att[layer] : m->norm_ffn[layer];
}

size_t model_bytes_per_token(const model *m) {
    size_t b = kern_mat_bytes(&m->cls);
    for (int i = 0; i < m->cfg.n_layers * N_LAYER_W; i++)
        b += kern_mat_bytes(&m->w[i]);
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
    if (c->dim % c->n_heads || c->n_heads % c->n_kv_heads ||
        (c->dim / c->n_heads) % 2) {
        status_fmt(err, errlen,
                  "bad model config: dim %d, %d heads, %d kv heads do not "
                  "divide into even head sizes",
                  c->dim, c->n_heads, c->n_kv_heads);
        return AISLE_EFORMAT;
    }
    c->head_size = c->dim / c->n_heads;
    c->kv_dim = c->head_size * c->n_kv_heads;
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
    return m->w && m->norm_att && m->norm_ffn ? 0 : AISLE_ENOMEM;
}

static kern_mat *lw(model *m, int kind, int l) {
    return &m->w[(size_t)l * N_LAYER_W + (size_t)(kind - MODEL_W_Q)];
}

/* Rows and columns of each matrix kind. */
static void kind_shape(const model_config *c, int kind, int *rows, int *cols) {
    switch (kind) {
    case MODEL_W_Q: case MODEL_W_O: *rows = c->dim; *cols = c->dim; break;
    case MODEL_W_K: case MODEL_W_V: *rows = c->kv_dim; *cols = c->dim; break;
    case MODEL_W_GATE: case MODEL_W_UP:
        *rows = c->hidden_dim; *cols = c->dim; break;
    case MODEL_W_DOWN: *rows = c->dim; *cols = c->hidden_dim; break;
    default: *rows = c->vocab_size; *cols = c->dim; break;
    }
}

static kern_mat mat_f32(const model_config *c, int kind, const float *p) {
    kern_mat w = {KERN_F32, 0, 0, 0, p, NULL};
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
    mcur c = {m->map, m->map_size, LEGACY_HEADER, 0};
    model_config *cfg = &m->cfg;
    int32_t h[7];
    int rc;

    memcpy(h, m->map, sizeof h);
    *cfg = (model_config){h[0], h[1], h[2], h[3], h[4], h[5], h[6],
                          0, 0, h[5] > 0, 10000.0f, 1e-5f};
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
    kern_mat w = {KERN_Q8, 0, 0, gs, NULL, NULL};
    uint64_t n;
    kind_shape(&m->cfg, kind, &w.rows, &w.cols);
    n = (uint64_t)w.rows * (uint64_t)w.cols;
    w.q = cur_take(c, n, 1);
    w.s = cur_f32(c, n / (uint64_t)gs);
    return w;
}

static int load_ak42(model *m, const char *path, char *err, size_t errlen) {
    const uint8_t *b = m->map;
    mcur c = {m->map, m->map_size, AK42_HEADER, 0};
    model_config *cfg = &m->cfg;
    int32_t version, h[7], gs = 0;
    int rc;

    if (m->map_size < AK42_HEADER) {
        status_fmt(err, errlen, "%s: truncated header (%zu bytes)", path,
                  m->map_size);
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
                          0, 0, b[36], 10000.0f, 1e-5f};
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
        m->act_gs = gs;
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

static int gguf_cfg_int(const gguf_file *g, const char *key, int *out,
                        int required, char *err, size_t errlen) {
    uint32_t v;
    if (gguf_get_u32(g, key, &v)) {
        if (!required)
            return 0;
        status_fmt(err, errlen, "GGUF metadata %s missing or invalid", key);
        return AISLE_EFORMAT;
    }
    *out = v > INT32_MAX ? INT32_MAX : (int)v;
    return 0;
}

static int gguf_mat(model *m, const char *name, int kind, kern_mat *out,
                    char *err, size_t errlen) {
    const gguf_tensor *t = gguf_find_tensor(m->gguf, name);
    int rows, cols;

    kind_shape(&m->cfg, kind, &rows, &cols);
    if (!t) {
        status_fmt(err, errlen, "GGUF tensor %s missing", name);
        return AISLE_EFORMAT;
    }
    if (t->ne[0] != (uint64_t)cols || t->ne[1] != (uint64_t)rows ||
        t->ne[2] != 1 || t->ne[3] != 1) {
        status_fmt(err, errlen, "GGUF tensor %s has shape %llux%llu, want %dx%d",
                  name, (unsigned long long)t->ne[0],
                  (unsigned long long)t->ne[1], cols, rows);
        return AISLE_EFORMAT;
    }
    if (!t->data) {
        status_fmt(err, errlen,
                  "GGUF tensor %s has unsupported type %u (F32, F16, Q8_0 "
                  "supported)",
                  name, t->type);
        return AISLE_EFORMAT;
    }
    *out = (kern_mat){KERN_F32, rows, cols, 0, t->data, NULL};
    if (t->type == GGUF_T_F16) {
        out->type = KERN_F16;
    } else if (t->type == GGUF_T_Q8_0) {
        out->type = KERN_Q8_0;
        out->gs = KERN_Q8_0_BLOCK;
        m->act_gs = KERN_Q8_0_BLOCK;
    }
    if ((uintptr_t)t->data % (out->type == KERN_F32 ? 4 : 2)) {
        status_fmt(err, errlen, "GGUF tensor %s is misaligned", name);
        return AISLE_EFORMAT;
    }
    return 0;
}

static int gguf_norm(model *m, const char *name, const float **out, char *err,
                     size_t errlen) {
    const gguf_tensor *t = gguf_find_tensor(m->gguf, name);
    if (!t || t->type != GGUF_T_F32 || !t->data ||
        t->ne[0] != (uint64_t)m->cfg.dim || t->ne[1] != 1 || t->ne[2] != 1 ||
        t->ne[3] != 1 || (uintptr_t)t->data % 4) {
        status_fmt(err, errlen, "GGUF tensor %s missing or not F32[%d]", name,
                  m->cfg.dim);
        return AISLE_EFORMAT;
    }
    *out = t->data;
    return 0;
}

static int load_gguf(model *m, const char *path, char *err, size_t errlen) {
    static const char *const names[N_LAYER_W] = {
        "attn_q", "attn_k", "attn_v", "attn_output",
        "ffn_gate", "ffn_down", "ffn_up"};
    model_config *cfg = &m->cfg;
    const gguf_tensor *emb;
    gguf_str arch;
    uint32_t rope_dims;
    char name[64];
    int rc;

    if ((rc = gguf_open(m->map, m->map_size, &m->gguf, err, errlen)))
        return rc;
    if (gguf_get_str(m->gguf, "general.architecture", &arch) ||
        !(arch.len == 5 && !memcmp(arch.p, "llama", 5))) {
        status_fmt(err, errlen, "%s: GGUF architecture is not llama", path);
        return AISLE_EFORMAT;
    }
    *cfg = (model_config){0};
    cfg->rope_theta = 10000.0f;
    cfg->norm_eps = 1e-5f;
    if ((rc = gguf_cfg_int(m->gguf, "llama.embedding_length", &cfg->dim, 1, err,
                           errlen)) ||
        (rc = gguf_cfg_int(m->gguf, "llama.feed_forward_length",
                           &cfg->hidden_dim, 1, err, errlen)) ||
        (rc = gguf_cfg_int(m->gguf, "llama.block_count", &cfg->n_layers, 1, err,
                           errlen)) ||
        (rc = gguf_cfg_int(m->gguf, "llama.attention.head_count",
                           &cfg->n_heads, 1, err, errlen)) ||
        (rc = gguf_cfg_int(m->gguf, "llama.context_length", &cfg->seq_len, 1,
                           err, errlen)))
        return rc;
    cfg->n_kv_heads = cfg->n_heads;
    gguf_cfg_int(m->gguf, "llama.attention.head_count_kv", &cfg->n_kv_heads, 0,
                 err, errlen);
    gguf_get_f32(m->gguf, "llama.rope.freq_base", &cfg->rope_theta);
    gguf_get_f32(m->gguf, "llama.attention.layer_norm_rms_epsilon",
                 &cfg->norm_eps);
    emb = gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!emb || emb->ne[1] > MAX_VOCAB) {
        status_fmt(err, errlen, "%s: GGUF tensor token_embd.weight missing",
                  path);
        return AISLE_EFORMAT;
    }
    cfg->vocab_size = (int)emb->ne[1];
    if ((rc = cfg_check(cfg, err, errlen)))
        return rc;
    if (!(cfg->rope_theta > 0.0f) || !(cfg->norm_eps >= 0.0f)) {
        status_fmt(err, errlen, "%s: bad rope base or norm epsilon", path);
        return AISLE_EFORMAT;
    }
    if (!gguf_get_u32(m->gguf, "llama.rope.dimension_count", &rope_dims) &&
        rope_dims != (uint32_t)cfg->head_size) {
        status_fmt(err, errlen, "%s: partial rotary embeddings unsupported",
                  path);
        return AISLE_EFORMAT;
    }
    if ((rc = model_alloc_layers(m)))
        return rc;
    m->format = MODEL_FMT_GGUF;

    if ((rc = gguf_mat(m, "token_embd.weight", MODEL_W_EMBED, &m->embed, err,
                       errlen)) ||
        (rc = gguf_norm(m, "output_norm.weight", &m->norm_final, err, errlen)))
        return rc;
    cfg->shared_classifier = !gguf_find_tensor(m->gguf, "output.weight");
    if (cfg->shared_classifier)
        m->cls = m->embed;
    else if ((rc = gguf_mat(m, "output.weight", MODEL_W_CLS, &m->cls, err,
                            errlen)))
        return rc;
    for (int l = 0; l < cfg->n_layers; l++) {
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        if ((rc = gguf_norm(m, name, &m->norm_att[l], err, errlen)))
            return rc;
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        if ((rc = gguf_norm(m, name, &m->norm_ffn[l], err, errlen)))
            return rc;
        for (int k = 0; k < N_LAYER_W; k++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, names[k]);
            if ((rc = gguf_mat(m, name, layer_order[k],
                               lw(m, layer_order[k], l), err, errlen)))
                return rc;
        }
    }
    return 0;
}

int model_load(const char *path, model **out, char *err, size_t errlen) {
    model *m = NULL;
    struct stat st;
    uint32_t magic = 0;
    int fd, rc = AISLE_EIO;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        status_fmt(err, errlen, "%s: %s", path, strerror(errno));
        return AISLE_EIO;
    }
    m = calloc(1, sizeof *m);
    if (!m) {
        rc = AISLE_ENOMEM;
        status_fmt(err, errlen, "out of memory");
        goto fail;
    }
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        status_fmt(err, errlen, "%s: not a regular file", path);
        goto fail;
    }
    if (st.st_size < LEGACY_HEADER) {
        rc = AISLE_EFORMAT;
        status_fmt(err, errlen, "%s: truncated: %lld bytes is too short for a "
                  "model header", path, (long long)st.st_size);
        goto fail;
    }
    m->map_size = (size_t)st.st_size;
    m->map = mmap(NULL, m->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m->map == MAP_FAILED) {
        m->map = NULL;
        status_fmt(err, errlen, "%s: mmap: %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;

    memcpy(&magic, m->map, 4);
    if (magic == GGUF_MAGIC)
        rc = load_gguf(m, path, err, errlen);
    else if (magic == AK42_MAGIC)
        rc = load_ak42(m, path, err, errlen);
    else
        rc = load_legacy(m, path, err, errlen);
    if (rc)
        goto fail;
    *out = m;
    return 0;

fail:
    if (fd >= 0)
        close(fd);
    model_free(m);
    return rc;
}

void model_free(model *m) {
    if (!m)
        return;
    gguf_close(m->gguf);
    if (m->map)
        munmap(m->map, m->map_size);
    free(m->w);
    free(m->norm_att);
    free(m->norm_ffn);
    free(m);
}

/* ------------------------------------------------------------- sessions */

int model_session_new(const model *m, tpool *pool, int max_seq,
                      model_session **out) {
    const model_config *c = &m->cfg;
    model_session *s;
    size_t cap, kv, B = MODEL_BATCH, dim = (size_t)c->dim,
                    hid = (size_t)c->hidden_dim, big = dim > hid ? dim : hid;

    *out = NULL;
    s = calloc(1, sizeof *s);
    if (!s)
        return AISLE_ENOMEM;
    s->m = m;
    s->pool = pool;
    s->cap = max_seq > 0 && max_seq < c->seq_len ? max_seq : c->seq_len;
    cap = (size_t)s->cap;
    kv = (size_t)c->n_layers * cap * (size_t)c->kv_dim;
    s->x = calloc(B * dim, sizeof(float));
    s->xb = calloc(B * dim, sizeof(float));
    s->xb2 = calloc(B * dim, sizeof(float));
    s->hb = calloc(B * hid, sizeof(float));
    s->hb2 = calloc(B * hid, sizeof(float));
    s->q = calloc(B * dim, sizeof(float));
    s->rope = calloc(B * (size_t)c->head_size, sizeof(float));
    s->aq = calloc(B * big, 1);
    s->as = calloc(B * big, sizeof(float));
    s->att = calloc((size_t)c->n_heads * cap, sizeof(float));
    s->logits = calloc((size_t)c->vocab_size, sizeof(float));
    s->kc = calloc(kv, sizeof(float));
    s->vc = calloc(kv, sizeof(float));
    if (!s->x || !s->xb || !s->xb2 || !s->hb || !s->hb2 || !s->q || !s->att ||
        !s->logits || !s->kc || !s->vc || !s->rope || !s->aq || !s->as) {
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
    free(s->x);
    free(s->xb);
    free(s->xb2);
    free(s->hb);
    free(s->hb2);
    free(s->q);
    free(s->att);
    free(s->logits);
    free(s->kc);
    free(s->vc);
    free(s->rope);
    free(s->aq);
    free(s->as);
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
} mm_job;

/* Part `part` of the rows of up to three products sharing one input, so
 * Q/K/V and gate/up each take a single trip through the pool. For a batch,
 * each slice of MM_ROWS rows serves every batch row while it is cached. */
static void mm_part(void *arg, int part, int nparts) {
    const mm_job *j = arg;
    int64_t total = 0, lo, hi, base = 0;

    for (int k = 0; k < j->n; k++)
        total += j->w[k]->rows;
    lo = total * part / nparts;
    hi = total * (part + 1) / nparts;
    for (int k = 0; k < j->n; k++) {
        int64_t rows = j->w[k]->rows;
        int64_t r0 = lo - base < 0 ? 0 : lo - base;
        int64_t r1 = hi - base > rows ? rows : hi - base;
        int64_t step = j->nx == 1 ? r1 - r0 : MM_ROWS;
        for (int64_t r = r0; r < r1; r += step) {
            int64_t e = r + step < r1 ? r + step : r1;
            for (int t = 0; t < j->nx; t++)
                kern_matvec(j->w[k], &j->x[t], j->out[k] + j->stride[k] * t,
                            (int)r, (int)e);
        }
        base += rows;
    }
}

/* Runs up to three products over the n batch rows of x (rows of length
 * len, `xstride` floats apart). */
static void matmul(model_session *s, const float *x, size_t xstride, int len,
                   int n, mm_job *j) {
    kern_act act[MODEL_BATCH];
    size_t big = (size_t)(s->m->cfg.dim > s->m->cfg.hidden_dim
                              ? s->m->cfg.dim
                              : s->m->cfg.hidden_dim);
    int quant = 0;

    for (int k = 0; k < j->n; k++)
        quant |= j->w[k]->type == KERN_Q8 || j->w[k]->type == KERN_Q8_0;
    for (int t = 0; t < n; t++) {
        act[t] = (kern_act){x + xstride * t, len, s->aq + big * t,
                            s->as + big * t, 0};
        if (quant)
            kern_act_quantize(&act[t], s->m->act_gs);
    }
    j->x = act;
    j->nx = n;
    tpool_run(s->pool, mm_part, j);
}

typedef struct att_job {
    model_session *s;
    size_t loff;    /* this layer's offset in the caches */
    int pos;
    const float *q; /* the token's query, all heads */
    float *out;     /* its attention output, all heads */
} att_job;

static void att_part(void *arg, int part, int nparts) {
    const att_job *j = arg;
    model_session *s = j->s;
    const model_config *c = &s->m->cfg;
    int hs = c->head_size, kv_mul = c->n_heads / c->n_kv_heads;
    int h0 = c->n_heads * part / nparts, h1 = c->n_heads * (part + 1) / nparts;
    float root = sqrtf((float)hs); /* scores are divided by it, as run.c does */

    for (int h = h0; h < h1; h++) {
        float *att = s->att + (size_t)h * s->cap;
        size_t hoff = j->loff + (size_t)(h / kv_mul) * hs;

        kern_scores(j->q + (size_t)h * hs, s->kc + hoff, (size_t)c->kv_dim,
                    j->pos + 1, hs, root, att);
        kern_softmax(att, j->pos + 1);
        kern_mix(att, s->vc + hoff, (size_t)c->kv_dim, j->pos + 1, hs,
                 j->out + (size_t)h * hs);
    }
}

static void rmsnorm(float *o, const float *x, const float *w, int n,
                    float eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    ss = 1.0f / sqrtf(ss / n + eps);
    for (int i = 0; i < n; i++)
        o[i] = w[i] * (ss * x[i]);
}

/* Rotates consecutive pairs (v[i], v[i+1]) by the position's angle for
 * their index within the head, as llama2.c does. */
static void rope(float *v, int n, int hs, const float *cs) {
    for (int i = 0; i < n; i += 2) {
        int k = i % hs;
        float v0 = v[i], v1 = v[i + 1];
        v[i] = v0 * cs[k] - v1 * cs[k + 1];
        v[i + 1] = v0 * cs[k + 1] + v1 * cs[k];
    }
}

/* Runs tokens[0..n) at positions pos0.. (n <= MODEL_BATCH, all within the
 * session's capacity); with want_logits, the last one's logits. */
static void forward(model_session *s, const int *tokens, int n, int pos0,
                    int want_logits) {
    const model *m = s->m;
    const model_config *c = &m->cfg;
    size_t dim = (size_t)c->dim, hid = (size_t)c->hidden_dim,
           hs = (size_t)c->head_size, kvd = (size_t)c->kv_dim;

    for (int t = 0; t < n; t++) {
        kern_mat_row(&m->embed, tokens[t], s->x + dim * t);
        for (size_t i = 0; i < hs; i += 2) {
            float freq = 1.0f / powf(c->rope_theta, (float)i / (float)hs);
            float val = (pos0 + t) * freq;
            s->rope[hs * t + i] = cosf(val);
            s->rope[hs * t + i + 1] = sinf(val);
        }
    }

    for (int l = 0; l < c->n_layers; l++) {
        size_t loff = (size_t)l * s->cap * kvd;
        float *k = s->kc + loff + (size_t)pos0 * kvd;
        float *v = s->vc + loff + (size_t)pos0 * kvd;
        mm_job qkv = {{model_weight(m, MODEL_W_Q, l),
                       model_weight(m, MODEL_W_K, l),
                       model_weight(m, MODEL_W_V, l)},
                      {s->q, k, v}, {dim, kvd, kvd}, 3, NULL, 0};
        mm_job o = {{model_weight(m, MODEL_W_O, l)}, {s->xb2}, {dim}, 1,
                    NULL, 0};
        mm_job up = {{model_weight(m, MODEL_W_GATE, l),
                      model_weight(m, MODEL_W_UP, l)},
                     {s->hb, s->hb2}, {hid, hid}, 2, NULL, 0};
        mm_job down = {{model_weight(m, MODEL_W_DOWN, l)}, {s->xb}, {dim}, 1,
                       NULL, 0};

        for (int t = 0; t < n; t++)
            rmsnorm(s->xb + dim * t, s->x + dim * t, m->norm_att[l], c->dim,
                    c->norm_eps);
        matmul(s, s->xb, dim, c->dim, n, &qkv);
        for (int t = 0; t < n; t++) {
            att_job aj = {s, loff, pos0 + t, s->q + dim * t, s->xb + dim * t};
            rope(s->q + dim * t, c->dim, c->head_size, s->rope + hs * t);
            rope(k + kvd * t, c->kv_dim, c->head_size, s->rope + hs * t);
            /* Causal: token t sees the cache up to its own position, which
             * includes the batch rows before it. */
            tpool_run(s->pool, att_part, &aj);
        }
        matmul(s, s->xb, dim, c->dim, n, &o);
        for (size_t i = 0; i < dim * (size_t)n; i++)
            s->x[i] += s->xb2[i];

        for (int t = 0; t < n; t++)
            rmsnorm(s->xb + dim * t, s->x + dim * t, m->norm_ffn[l], c->dim,
                    c->norm_eps);
        matmul(s, s->xb, dim, c->dim, n, &up);
        for (size_t i = 0; i < hid * (size_t)n; i++) {
            float a = s->hb[i];
            s->hb[i] = a * (1.0f / (1.0f + expf(-a))) * s->hb2[i];
        }
        matmul(s, s->hb, hid, c->hidden_dim, n, &down);
        for (size_t i = 0; i < dim * (size_t)n; i++)
            s->x[i] += s->xb[i];
    }
    if (want_logits) {
        float *x = s->x + dim * (size_t)(n - 1);
        mm_job cls = {{&m->cls}, {s->logits}, {0}, 1, NULL, 0};
        rmsnorm(x, x, m->norm_final, c->dim, c->norm_eps);
        matmul(s, x, dim, c->dim, 1, &cls);
    }
}

/* Runs every pending token; 0 or AISLE_EFULL. */
static int flush(model_session *s, int want_logits) {
    if (s->kv + s->npend > s->cap)
        return AISLE_EFULL;
    forward(s, s->pend, s->npend, s->kv, want_logits);
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
    if (s->npend == MODEL_BATCH && (rc = flush(s, 0)))
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
    return s->logits_ok ? s->logits : NULL;
}

float *model_forward(model_session *s, int token, int pos) {
    if (token < 0 || token >= s->m->cfg.vocab_size || pos < 0 ||
        pos >= s->cap)
        return NULL;
    forward(s, &token, 1, pos, 1);
    s->kv = pos + 1;
    s->npend = 0;
    s->last = token;
    s->logits_ok = 1;
    return s->logits;
}
