/* export.c — GGUF and llama2.c writers for a loaded model.
 *
 * Both writers stream one row at a time so converting a model needs memory
 * for a row, not for the model. llama2.c's version 2 layout puts a
 * tensor's scales after all of its int8 values, so those scales (one per
 * group) are the only per-tensor buffer. */
#include "model/export.h"

#include "model/gguf.h"
#include "services/base/status.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AK42_MAGIC 0x616b3432u
#define AK42_HEADER 256

/* ------------------------------------------------------------------ GGUF */

static int row_mat(void *ud, uint64_t row, float *dst) {
    kern_mat_row(ud, (int)row, dst);
    return 0;
}

typedef struct norm_src {
    const float *p;
    int n;
} norm_src;

static int row_norm(void *ud, uint64_t row, float *dst) {
    const norm_src *s = ud;
    (void)row;
    memcpy(dst, s->p, (size_t)s->n * sizeof *dst);
    return 0;
}

/* The type a matrix is written as: the requested one, or the next one
 * whose blocks its rows fill (Q4_K or Q6_K, then Q8_0, then F32). */
static uint32_t fit_type(uint32_t type, int cols) {
    if ((type == GGUF_T_Q4_K || type == GGUF_T_Q6_K) && cols % 256)
        type = GGUF_T_Q8_0;
    if (type == GGUF_T_Q8_0 && cols % KERN_Q8_0_BLOCK)
        type = GGUF_T_F32;
    return type;
}

static int add_mat(gguf_writer *w, const char *name, const kern_mat *m,
                   uint32_t type) {
    uint64_t ne[2] = {(uint64_t)m->cols, (uint64_t)m->rows};
    return gguf_writer_tensor(w, name, fit_type(type, m->cols), 2, ne, row_mat,
                              (void *)m);
}

static int add_norm(gguf_writer *w, const char *name, norm_src *src) {
    uint64_t ne = (uint64_t)src->n;
    return gguf_writer_tensor(w, name, GGUF_T_F32, 1, &ne, row_norm, src);
}

/* Vocabulary in GGUF's spelling: spaces as U+2581 and control tokens
 * without the newlines llama2.c's exporter puts around them. */
static int add_vocab(gguf_writer *w, const tok_tokenizer *t) {
    int n = tok_vocab_size(t), rc = AISLE_ENOMEM;
    gguf_str *strs = calloc((size_t)n, sizeof *strs);
    float *scores = calloc((size_t)n, sizeof *scores);
    int32_t *types = calloc((size_t)n, sizeof *types);
    char *arena = NULL;
    size_t total = 0, at = 0;

    for (int i = 0; i < n; i++) {
        size_t len;
        tok_piece(t, i, &len);
        total += len * 3;
    }
    arena = malloc(total + 1);
    if (!strs || !scores || !types || !arena)
        goto done;
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *p = tok_piece(t, i, &len);
        types[i] = tok_type(t, i);
        scores[i] = tok_score(t, i);
        if (types[i] == TOK_CONTROL) {
            while (len && *p == '\n') {
                p++;
                len--;
            }
            while (len && p[len - 1] == '\n')
                len--;
        }
        strs[i].p = arena + at;
        for (size_t k = 0; k < len; k++) {
            if (p[k] == ' ') {
                memcpy(arena + at, "\xe2\x96\x81", 3);
                at += 3;
            } else {
                arena[at++] = p[k];
            }
        }
        strs[i].len = (uint64_t)(arena + at - strs[i].p);
    }
    if (gguf_writer_str(w, "tokenizer.ggml.model", "llama") ||
        gguf_writer_strs(w, "tokenizer.ggml.tokens", strs, (uint64_t)n) ||
        gguf_writer_f32s(w, "tokenizer.ggml.scores", scores, (uint64_t)n) ||
        gguf_writer_i32s(w, "tokenizer.ggml.token_type", types, (uint64_t)n) ||
        gguf_writer_u32(w, "tokenizer.ggml.bos_token_id",
                        (uint32_t)tok_bos(t)) ||
        gguf_writer_u32(w, "tokenizer.ggml.eos_token_id",
                        (uint32_t)tok_eos(t)) ||
        gguf_writer_bool(w, "tokenizer.ggml.add_space_prefix", 1))
        goto done;
    rc = 0;

done:
    free(strs);
    free(scores);
    free(types);
    free(arena);
    return rc;
}

int export_gguf(const model *m, const tok_tokenizer *t, const char *path,
                uint32_t type, char *err, size_t errlen) {
    static const struct {
        int kind;
        const char *name;
    } mats[] = {{MODEL_W_Q, "attn_q"},      {MODEL_W_K, "attn_k"},
                {MODEL_W_V, "attn_v"},      {MODEL_W_O, "attn_output"},
                {MODEL_W_GATE, "ffn_gate"}, {MODEL_W_DOWN, "ffn_down"},
                {MODEL_W_UP, "ffn_up"}};
    const model_config *c = model_get_config(m);
    gguf_writer *w = gguf_writer_new();
    norm_src *norms = calloc((size_t)c->n_layers * 2 + 1, sizeof *norms);
    char name[64];
    int rc = AISLE_ENOMEM;

    if (type != GGUF_T_F32 && type != GGUF_T_F16 && type != GGUF_T_Q8_0 &&
        type != GGUF_T_Q4_K) {
        status_fmt(err, errlen, "unsupported GGUF tensor type %u", type);
        rc = AISLE_EINVAL;
        goto done;
    }
    if (c->arch != MODEL_ARCH_LLAMA || c->q_dim != c->dim) {
        /* Biases, Q/K norms and neox RoPE have no place in what this
         * writes: refuse rather than write a different model. */
        status_fmt(err, errlen, "only llama-architecture models can be "
                   "converted (this one is %s)", model_arch_name(c->arch));
        rc = AISLE_EINVAL;
        goto done;
    }
    if (!w || !norms)
        goto oom;
    if (gguf_writer_str(w, "general.architecture", "llama") ||
        gguf_writer_str(w, "general.name", "aisle export") ||
        gguf_writer_u32(w, "general.file_type",
                        type == GGUF_T_F32   ? 0
                        : type == GGUF_T_F16 ? 1
                        : type == GGUF_T_Q8_0 ? 7
                                              : 15) ||
        gguf_writer_u32(w, "llama.context_length", (uint32_t)c->seq_len) ||
        gguf_writer_u32(w, "llama.embedding_length", (uint32_t)c->dim) ||
        gguf_writer_u32(w, "llama.block_count", (uint32_t)c->n_layers) ||
        gguf_writer_u32(w, "llama.feed_forward_length",
                        (uint32_t)c->hidden_dim) ||
        gguf_writer_u32(w, "llama.rope.dimension_count",
                        (uint32_t)c->head_size) ||
        gguf_writer_u32(w, "llama.attention.head_count", (uint32_t)c->n_heads) ||
        gguf_writer_u32(w, "llama.attention.head_count_kv",
                        (uint32_t)c->n_kv_heads) ||
        gguf_writer_u32(w, "llama.vocab_size", (uint32_t)c->vocab_size) ||
        gguf_writer_f32(w, "llama.attention.layer_norm_rms_epsilon",
                        c->norm_eps) ||
        gguf_writer_f32(w, "llama.rope.freq_base", c->rope_theta))
        goto oom;
    if (t && (rc = add_vocab(w, t)))
        goto oom;

    /* Q4_K_M keeps the embedding and the classifier in Q6_K. */
    rc = add_mat(w, "token_embd.weight", model_weight(m, MODEL_W_EMBED, 0),
                 type == GGUF_T_Q4_K ? GGUF_T_Q6_K : type);
    for (int l = 0; !rc && l < c->n_layers; l++) {
        norms[2 * l] = (norm_src){model_norm(m, MODEL_N_ATT, l), c->dim};
        norms[2 * l + 1] = (norm_src){model_norm(m, MODEL_N_FFN, l), c->dim};
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        rc = add_norm(w, name, &norms[2 * l]);
        for (size_t k = 0; !rc && k < sizeof mats / sizeof mats[0]; k++) {
            if (mats[k].kind == MODEL_W_GATE) {
                snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
                if ((rc = add_norm(w, name, &norms[2 * l + 1])))
                    break;
            }
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, mats[k].name);
            rc = add_mat(w, name, model_weight(m, mats[k].kind, l), type);
        }
    }
    norms[2 * c->n_layers] = (norm_src){model_norm(m, MODEL_N_FINAL, 0), c->dim};
    if (!rc)
        rc = add_norm(w, "output_norm.weight", &norms[2 * c->n_layers]);
    if (!rc && !c->shared_classifier)
        rc = add_mat(w, "output.weight", model_weight(m, MODEL_W_CLS, 0),
                     type == GGUF_T_Q4_K ? GGUF_T_Q6_K : type);
    if (rc)
        goto oom;
    rc = gguf_writer_write(w, path, err, errlen);
    goto done;

oom:
    status_fmt(err, errlen, "out of memory");
    rc = AISLE_ENOMEM;
done:
    gguf_writer_free(w);
    free(norms);
    return rc;
}

/* -------------------------------------------------------------- llama2.c */

typedef struct ak42_out {
    FILE *f;
    float *row;
    int8_t *q;
    float *s;
    size_t s_cap;
    int gs; /* 0 = fp32 */
} ak42_out;

static int write_all(ak42_out *o, const void *p, size_t n) {
    return fwrite(p, 1, n, o->f) == n ? 0 : AISLE_EIO;
}

static int write_mat(ak42_out *o, const kern_mat *w) {
    size_t cols = (size_t)w->cols, ng = 0;
    int rc = 0;

    if (o->gs && (size_t)w->rows * cols / (size_t)o->gs > o->s_cap) {
        float *ns = realloc(o->s, (size_t)w->rows * cols / (size_t)o->gs *
                                      sizeof *ns);
        if (!ns)
            return AISLE_ENOMEM;
        o->s = ns;
        o->s_cap = (size_t)w->rows * cols / (size_t)o->gs;
    }
    for (int r = 0; !rc && r < w->rows; r++) {
        kern_mat_row(w, r, o->row);
        if (!o->gs) {
            rc = write_all(o, o->row, cols * sizeof(float));
            continue;
        }
        kern_quantize(o->row, (int)cols, o->gs, o->q, o->s + ng);
        ng += cols / (size_t)o->gs;
        rc = write_all(o, o->q, cols);
    }
    if (!rc && o->gs)
        rc = write_all(o, o->s, ng * sizeof(float));
    return rc;
}

static int write_norms(ak42_out *o, const model *m, int kind) {
    const model_config *c = model_get_config(m);
    int rc = 0;
    for (int l = 0; !rc && l < c->n_layers; l++)
        rc = write_all(o, model_norm(m, kind, l), (size_t)c->dim * sizeof(float));
    return rc;
}

int export_llama2c(const model *m, const char *path, int version, int gs,
                   char *err, size_t errlen) {
    static const int kinds[] = {MODEL_W_Q,    MODEL_W_K,    MODEL_W_V,
                                MODEL_W_O,    MODEL_W_GATE, MODEL_W_DOWN,
                                MODEL_W_UP};
    const model_config *c = model_get_config(m);
    uint8_t head[AK42_HEADER] = {0};
    int32_t h[7] = {c->dim,        c->hidden_dim, c->n_layers, c->n_heads,
                    c->n_kv_heads, c->vocab_size, c->seq_len};
    uint32_t magic = AK42_MAGIC;
    ak42_out o = {0};
    int rc = AISLE_EINVAL, created = 0;

    if (version != 1 && version != 2) {
        status_fmt(err, errlen, "llama2.c export version must be 1 or 2");
        return AISLE_EINVAL;
    }
    if (c->rope_theta != 10000.0f || c->norm_eps != 1e-5f) {
        status_fmt(err, errlen,
                   "llama2.c format cannot express rope base %g / norm eps %g",
                   c->rope_theta, c->norm_eps);
        return AISLE_EINVAL;
    }
    if (version == 2 && gs == 0)
        for (gs = 64; gs > 1 && (c->dim % gs || c->hidden_dim % gs); gs--)
            ;
    /* dim % 4 keeps each tensor's scales 4-byte aligned in the file. */
    if (version == 2 && (gs <= 0 || c->dim % gs || c->hidden_dim % gs ||
                         c->dim % 4)) {
        status_fmt(err, errlen,
                   "group size %d must divide dim %d and hidden_dim %d "
                   "(and dim must be a multiple of 4)",
                   gs, c->dim, c->hidden_dim);
        return AISLE_EINVAL;
    }
    o.gs = version == 2 ? gs : 0;
    o.row = malloc((size_t)(c->dim > c->hidden_dim ? c->dim : c->hidden_dim) *
                   sizeof *o.row);
    o.q = malloc((size_t)(c->dim > c->hidden_dim ? c->dim : c->hidden_dim));
    if (!o.row || !o.q) {
        rc = AISLE_ENOMEM;
        status_fmt(err, errlen, "out of memory");
        goto fail;
    }
    o.f = fopen(path, "wb");
    if (!o.f) {
        rc = AISLE_EIO;
        status_fmt(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    created = 1;
    memcpy(head, &magic, 4);
    memcpy(head + 4, &version, 4);
    memcpy(head + 8, h, sizeof h);
    head[36] = (uint8_t)c->shared_classifier;
    if (version == 2)
        memcpy(head + 37, &gs, 4);
    rc = write_all(&o, head, sizeof head);
    if (!rc)
        rc = write_norms(&o, m, MODEL_N_ATT);
    if (!rc)
        rc = write_norms(&o, m, MODEL_N_FFN);
    if (!rc)
        rc = write_all(&o, model_norm(m, MODEL_N_FINAL, 0),
                       (size_t)c->dim * sizeof(float));
    if (!rc)
        rc = write_mat(&o, model_weight(m, MODEL_W_EMBED, 0));
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (int l = 0; !rc && l < c->n_layers; l++)
            rc = write_mat(&o, model_weight(m, kinds[k], l));
    if (!rc && !c->shared_classifier)
        rc = write_mat(&o, model_weight(m, MODEL_W_CLS, 0));
    if (rc) {
        status_fmt(err, errlen, "%s: write failed: %s", path,
                   rc == AISLE_ENOMEM ? "out of memory" : strerror(errno));
        goto fail;
    }
    rc = fclose(o.f) ? AISLE_EIO : 0;
    o.f = NULL;
    if (rc) {
        status_fmt(err, errlen, "%s: write failed: %s", path, strerror(errno));
        goto fail;
    }
    free(o.row);
    free(o.q);
    free(o.s);
    return 0;

fail:
    if (o.f)
        fclose(o.f);
    if (created)
        unlink(path);
    free(o.row);
    free(o.q);
    free(o.s);
    return rc;
}
