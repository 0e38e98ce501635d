/* tok.c — vocabulary loading, special tokens, SentencePiece encoding and
 * decoding (byte-level BPE is in tok_bpe.c).
 *
 * The SentencePiece encoder keeps the current symbols as spans of the
 * text and, for each adjacent pair, the id and score of the piece their
 * concatenation spells, recomputing only the two pairs next to a merge.
 * That picks exactly llama.cpp's merges (best score, leftmost on ties) at
 * a fraction of the lookups. Pieces live in one arena and are found
 * through the shared byte-string map (strmap). */
#include "model/tok.h"

#include "model/tok_int.h"
#include "services/base/status.h"
#include "services/base/strmap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOK_MAX_VOCAB (1 << 22)
#define TOK_MAX_PIECE 4096
#define TOK_MAX_FILE ((size_t)256 << 20)


int tok_find(const tok_tokenizer *t, const char *p, size_t len) {
    size_t id;
    return strmap_get(&t->ids, p, len, &id) == AISLE_OK ? (int)id : -1;
}

void tok_free(tok_tokenizer *t) {
    if (!t)
        return;
    free(t->arena);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->special);
    strmap_free(&t->ids);
    tok_bpe_free(t);
    free(t);
}

/* Allocates a tokenizer for n pieces totalling at most arena bytes. */
static tok_tokenizer *tok_alloc(int n, size_t arena) {
    tok_tokenizer *t = calloc(1, sizeof *t);

    if (!t)
        return NULL;
    t->arena = malloc(arena + (size_t)n);
    t->off = malloc((size_t)n * sizeof *t->off);
    t->len = malloc((size_t)n * sizeof *t->len);
    t->score = malloc((size_t)n * sizeof *t->score);
    t->type = malloc((size_t)n);
    if (!t->arena || !t->off || !t->len || !t->score || !t->type) {
        tok_free(t);
        return NULL;
    }
    t->bos = 1;
    t->eos = 2;
    t->unk = 0;
    t->eot = -1;
    t->add_bos = 1;
    t->add_prefix = 1;
    return t;
}

/* Appends piece `id` (ids must come in order). GGUF vocabularies spell the
 * space as U+2581; sp turns it back into ' ' as llama2.c's files have it. */
static void tok_add(tok_tokenizer *t, const char *p, size_t len, float score,
                    int type, int sp) {
    char *dst = t->arena + t->arena_len;
    size_t k = 0;

    for (size_t i = 0; i < len; i++) {
        if (sp && i + 2 < len && (uint8_t)p[i] == 0xe2 &&
            (uint8_t)p[i + 1] == 0x96 && (uint8_t)p[i + 2] == 0x81) {
            dst[k++] = ' ';
            i += 2;
        } else {
            dst[k++] = p[i];
        }
    }
    dst[k] = '\0';
    t->off[t->n] = t->arena_len;
    t->len[t->n] = (uint32_t)k;
    t->score[t->n] = score;
    t->type[t->n] = (uint8_t)type;
    t->arena_len += k + 1;
    t->n++;
}

static int tok_hex(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Value of a "<0xXX>" piece, or -1. */
static int tok_byte_value(const char *p, size_t len) {
    if (len != 6 || memcmp(p, "<0x", 3) || p[5] != '>' || tok_hex(p[3]) < 0 ||
        tok_hex(p[4]) < 0)
        return -1;
    return tok_hex(p[3]) * 16 + tok_hex(p[4]);
}

static int by_length_desc(const void *a, const void *b, void *t) {
    const tok_tokenizer *tk = t;
    uint32_t la = tk->len[*(const int *)a], lb = tk->len[*(const int *)b];
    if (la != lb)
        return la > lb ? -1 : 1;
    return *(const int *)a - *(const int *)b;
}

/* The tokens split out of text before encoding, longest first so a token
 * that contains another wins. */
static int tok_index_special(tok_tokenizer *t) {
    t->special = malloc((size_t)t->n * sizeof *t->special);
    if (!t->special)
        return AISLE_ENOMEM;
    for (int id = 0; id < t->n; id++)
        if (t->len[id] && (t->type[id] == TOK_CONTROL ||
                           t->type[id] == TOK_USER ||
                           t->type[id] == TOK_UNKNOWN))
            t->special[t->n_special++] = id;
    qsort_r(t->special, (size_t)t->n_special, sizeof *t->special,
            by_length_desc, t);
    return AISLE_OK;
}

/* Indexes the pieces once all are added; AISLE_OK or AISLE_ENOMEM. */
static int tok_finish(tok_tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        t->byte_id[b] = -1;
        t->bytes[b] = (char)b;
    }
    for (int id = 0; id < t->n; id++) {
        const char *p = t->arena + t->off[id];
        int b = t->kind == TOK_SPM ? tok_byte_value(p, t->len[id]) : -1;

        if (b >= 0 && t->type[id] != TOK_CONTROL) {
            t->type[id] = TOK_BYTE;
            if (t->byte_id[b] < 0)
                t->byte_id[b] = id;
        } else if (b < 0 && t->type[id] == TOK_BYTE) {
            t->type[id] = TOK_NORMAL; /* decode relies on the <0xXX> form */
        }
        /* Keep the first id of duplicate pieces: lookups return it. */
        if (tok_find(t, p, t->len[id]) < 0 &&
            strmap_put(&t->ids, p, t->len[id], (size_t)id) != AISLE_OK)
            return AISLE_ENOMEM;
    }
    t->space = tok_find(t, " ", 1);
    return tok_index_special(t);
}

/* Reads the whole file at path into *data (malloc'd, the caller frees). */
static int tok_read_all(const char *path, uint8_t **data, size_t *size,
                        char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    long fsize;
    int rc = AISLE_EIO;

    *data = NULL;
    if (!f)
        return status_fail(AISLE_EIO, err, errlen, "%s: %s", path,
                           strerror(errno));
    if (fseek(f, 0, SEEK_END) || (fsize = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET)) {
        status_fmt(err, errlen, "%s: cannot size file", path);
        goto fail;
    }
    *size = (size_t)fsize;
    if (*size > TOK_MAX_FILE) {
        rc = status_fail(AISLE_EFORMAT, err, errlen,
                         "%s: tokenizer file too large", path);
        goto fail;
    }
    *data = malloc(*size ? *size : 1);
    if (!*data) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto fail;
    }
    if (fread(*data, 1, *size, f) != *size) {
        status_fmt(err, errlen, "%s: read error", path);
        goto fail;
    }
    fclose(f);
    return AISLE_OK;

fail:
    fclose(f);
    free(*data);
    *data = NULL;
    return rc;
}

/* Validates a tokenizer.bin image: the header and every entry (vocab_size
 * of them, or all when <= 0). Sets the entry count and their total bytes. */
static int tok_bin_scan(const uint8_t *buf, size_t size, int vocab_size,
                        const char *path, int *count, size_t *arena,
                        char *err, size_t errlen) {
    int32_t max_len;
    size_t off;
    int n = 0;

    *arena = 0;
    if (size < 4)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s: truncated tokenizer header", path);
    memcpy(&max_len, buf, 4);
    if (max_len <= 0 || max_len > TOK_MAX_PIECE)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s: bad max_token_length %d", path, max_len);
    if (vocab_size > TOK_MAX_VOCAB)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s: vocabulary size %d too large", path,
                           vocab_size);
    for (off = 4; vocab_size > 0 ? n < vocab_size : off < size; n++) {
        int32_t len;
        if (size - off < 8)
            return status_fail(AISLE_EFORMAT, err, errlen,
                               "%s: truncated at token %d", path, n);
        memcpy(&len, buf + off + 4, 4);
        if (len < 0 || len > max_len || (size_t)len > size - off - 8)
            return status_fail(AISLE_EFORMAT, err, errlen,
                               "%s: token %d has bad length %d", path, n, len);
        off += 8 + (size_t)len;
        *arena += (size_t)len;
        if (n >= TOK_MAX_VOCAB)
            return status_fail(AISLE_EFORMAT, err, errlen,
                               "%s: too many tokens", path);
    }
    if (n == 0)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s: empty vocabulary", path);
    *count = n;
    return AISLE_OK;
}

/* Adds the n entries of a scanned tokenizer.bin image to t. */
static void tok_bin_add(tok_tokenizer *t, const uint8_t *buf, int n) {
    for (size_t off = 4; t->n < n;) {
        float score;
        int32_t len;
        memcpy(&score, buf + off, 4);
        memcpy(&len, buf + off + 4, 4);
        /* llama2.c's exporter spells BOS/EOS "\n<s>\n" and "\n</s>\n". */
        tok_add(t, (const char *)buf + off + 8, (size_t)len, score,
                t->n == t->bos || t->n == t->eos ? TOK_CONTROL : TOK_NORMAL, 0);
        off += 8 + (size_t)len;
    }
}

int tok_load_file(const char *path, int vocab_size, tok_tokenizer **out,
                  char *err, size_t errlen) {
    uint8_t *buf = NULL; /* the file, owned here */
    tok_tokenizer *t = NULL;
    size_t size = 0, arena = 0;
    int n = 0, rc;

    *out = NULL;
    if ((rc = tok_read_all(path, &buf, &size, err, errlen)) ||
        (rc = tok_bin_scan(buf, size, vocab_size, path, &n, &arena, err,
                           errlen)))
        goto fail;
    rc = AISLE_ENOMEM;
    if (!(t = tok_alloc(n, arena)))
        goto fail;
    t->llama2c = 1;
    tok_bin_add(t, buf, n);
    if ((rc = tok_finish(t)))
        goto fail;
    free(buf);
    *out = t;
    return AISLE_OK;

fail:
    if (rc == AISLE_ENOMEM)
        status_fmt(err, errlen, "out of memory");
    free(buf);
    tok_free(t);
    return rc;
}

/* The vocabulary arrays of g, checked against each other. */
typedef struct gguf_vocab {
    gguf_str model, pre;
    gguf_str *pieces; /* malloc'd array pointing into g */
    uint64_t n;
    const void *scores, *types; /* float32 / int32 items, or NULL */
    gguf_str *merges; /* malloc'd, BPE only */
    uint64_t n_merges;
} gguf_vocab;

static int str_is(gguf_str s, const char *lit) {
    return s.len == strlen(lit) && !memcmp(s.p, lit, s.len);
}

static int gguf_vocab_read(const gguf_file *g, gguf_vocab *v, char *err,
                           size_t errlen) {
    uint32_t st, tt;
    uint64_t ns, nt;

    if (gguf_get_str(g, "tokenizer.ggml.model", &v->model))
        v->model = (gguf_str){"llama", 5};
    if (!str_is(v->model, "llama") && !str_is(v->model, "gpt2"))
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "unsupported GGUF tokenizer model '%.*s' (llama "
                           "and gpt2 are supported)",
                           (int)(v->model.len > 32 ? 32 : v->model.len),
                           v->model.p);
    if (gguf_get_str(g, "tokenizer.ggml.pre", &v->pre))
        v->pre = (gguf_str){NULL, 0};
    if (gguf_get_strs(g, "tokenizer.ggml.tokens", &v->pieces, &v->n) ||
        v->n == 0 || v->n > TOK_MAX_VOCAB)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "GGUF file has no usable tokenizer.ggml.tokens");
    if (!gguf_get_arr(g, "tokenizer.ggml.scores", &st, &ns, &v->scores) &&
        (st != GGUF_FLOAT32 || ns != v->n))
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "GGUF tokenizer.ggml.scores mismatched");
    if (!v->scores && str_is(v->model, "llama"))
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "GGUF tokenizer.ggml.scores missing");
    if (!gguf_get_arr(g, "tokenizer.ggml.token_type", &tt, &nt, &v->types) &&
        (tt != GGUF_INT32 || nt != v->n))
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "GGUF tokenizer.ggml.token_type mismatched");
    if (str_is(v->model, "gpt2") &&
        gguf_get_strs(g, "tokenizer.ggml.merges", &v->merges, &v->n_merges))
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "GGUF tokenizer.ggml.merges missing");
    for (uint64_t i = 0; i < v->n; i++)
        if (v->pieces[i].len > TOK_MAX_PIECE)
            return status_fail(AISLE_EFORMAT, err, errlen,
                               "GGUF token %llu too long",
                               (unsigned long long)i);
    return AISLE_OK;
}

/* Special ids and flags from the metadata; an id out of range is none. */
static void gguf_vocab_ids(const gguf_file *g, uint64_t n, tok_tokenizer *t) {
    static const struct {
        const char *key;
        size_t at;
    } ids[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(tok_tokenizer, bos)},
        {"tokenizer.ggml.eos_token_id", offsetof(tok_tokenizer, eos)},
        {"tokenizer.ggml.unknown_token_id", offsetof(tok_tokenizer, unk)},
        {"tokenizer.ggml.eot_token_id", offsetof(tok_tokenizer, eot)},
    };
    uint32_t v;
    int flag;

    if (t->kind == TOK_BPE) {
        /* llama.cpp's defaults for gpt2 vocabularies. */
        t->bos = t->eos = 11;
        t->unk = -1;
        t->add_bos = 0;
        t->add_prefix = 0;
    }
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (!gguf_get_u32(g, ids[i].key, &v))
            *(int *)((char *)t + ids[i].at) = v < n ? (int)v : -1;
    if (!gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &flag))
        t->add_prefix = flag;
    if (!gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &flag))
        t->add_bos = flag;
    if (!gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &flag))
        t->add_eos = flag;
}

static int gguf_vocab_build(const gguf_file *g, const gguf_vocab *v,
                            tok_tokenizer *t, char *err, size_t errlen) {
    int rc;

    t->kind = str_is(v->model, "gpt2") ? TOK_BPE : TOK_SPM;
    gguf_vocab_ids(g, v->n, t);
    /* The pre-tokenizer may force BOS (llama3): before the metadata. */
    if (t->kind == TOK_BPE &&
        (rc = tok_bpe_init(t, v->pre.p, (size_t)v->pre.len, v->merges,
                           v->n_merges, err, errlen)))
        return rc;
    if (t->kind == TOK_BPE) {
        int flag;
        if (!gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &flag))
            t->add_bos = flag;
    }
    for (uint64_t i = 0; i < v->n; i++) {
        float score = 0.0f;
        int32_t type = TOK_NORMAL;
        if (v->scores)
            memcpy(&score, (const uint8_t *)v->scores + i * 4, 4);
        if (v->types)
            memcpy(&type, (const uint8_t *)v->types + i * 4, 4);
        if (type < TOK_NORMAL || type > TOK_BYTE)
            type = TOK_NORMAL;
        tok_add(t, v->pieces[i].p, (size_t)v->pieces[i].len, score, type,
                t->kind == TOK_SPM);
    }
    if ((rc = tok_finish(t)) || (t->kind == TOK_BPE &&
                                 (rc = tok_bpe_texts(t))))
        return status_fail(rc, err, errlen, "out of memory");
    return AISLE_OK;
}

int tok_load_gguf(const gguf_file *g, tok_tokenizer **out, char *err,
                  size_t errlen) {
    gguf_vocab v = {0};
    tok_tokenizer *t = NULL; /* the caller's on success */
    size_t arena = 0;
    int rc;

    *out = NULL;
    if ((rc = gguf_vocab_read(g, &v, err, errlen)))
        goto fail;
    for (uint64_t i = 0; i < v.n; i++)
        arena += (size_t)v.pieces[i].len;
    rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if (!(t = tok_alloc((int)v.n, arena)) ||
        (rc = gguf_vocab_build(g, &v, t, err, errlen)))
        goto fail;
    free(v.pieces);
    free(v.merges);
    *out = t;
    return AISLE_OK;

fail:
    free(v.pieces);
    free(v.merges);
    tok_free(t);
    return rc;
}

int tok_load_path(const char *path, tok_tokenizer **out, char *err,
                  size_t errlen) {
    gguf_image img;
    gguf_file *g = NULL;
    int rc;

    *out = NULL;
    if ((rc = gguf_map(path, &img, err, errlen)))
        return rc;
    if (!(rc = gguf_open(img.data, img.size, &g, err, errlen)))
        rc = tok_load_gguf(g, out, err, errlen);
    gguf_close(g);
    gguf_unmap(&img);
    return rc;
}

int tok_vocab_size(const tok_tokenizer *t) { return t->n; }
int tok_kind(const tok_tokenizer *t) { return t->kind; }
const char *tok_pre(const tok_tokenizer *t) { return t->pre; }
int tok_bos(const tok_tokenizer *t) { return t->bos; }
int tok_eos(const tok_tokenizer *t) { return t->eos; }
int tok_adds_bos(const tok_tokenizer *t) { return t->add_bos && t->bos >= 0; }

int tok_lookup(const tok_tokenizer *t, const char *text, size_t len) {
    return tok_find(t, text, len);
}

int tok_is_eog(const tok_tokenizer *t, int id) {
    /* Turn ends of the chat formats in chat.c, which llama.cpp also stops at. */
    static const char *const ends[] = {"<|im_end|>", "<|eot_id|>",
                                       "<|end|>", "<end_of_turn>",
                                       "<|endoftext|>", "<|eom_id|>",
                                       "</s>"};
    if (id < 0 || id >= t->n)
        return 0;
    if (id == t->eos || id == t->eot)
        return 1;
    if (t->type[id] != TOK_CONTROL && t->type[id] != TOK_USER)
        return 0;
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
        if (t->len[id] == strlen(ends[i]) &&
            !memcmp(t->arena + t->off[id], ends[i], t->len[id]))
            return 1;
    return 0;
}

const char *tok_piece(const tok_tokenizer *t, int id, size_t *len) {
    *len = t->len[id];
    return t->arena + t->off[id];
}

float tok_score(const tok_tokenizer *t, int id) { return t->score[id]; }
int tok_type(const tok_tokenizer *t, int id) { return t->type[id]; }

size_t tok_max_tokens(const char *text) { return 2 * strlen(text) + 3; }

int tok_out_put(tok_out *o, int id) {
    if (o->n == o->cap)
        return AISLE_EFULL;
    o->ids[o->n++] = id;
    return AISLE_OK;
}

/* ------------------------------------------------------ SentencePiece */

/* Bytes of the UTF-8 character whose first byte is c (1 for a stray
 * continuation byte), as llama.cpp splits text into symbols. */
static size_t utf8_len(unsigned char c) {
    return c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* llama2.c's grouping: a byte and the continuation bytes after it, at
 * most 4 in all (it differs from llama.cpp's only on broken UTF-8). */
static size_t llama2c_char_len(const char *p, size_t len) {
    size_t j = 1;
    while (j < len && j < 4 && ((uint8_t)p[j] & 0xc0) == 0x80)
        j++;
    return j;
}

size_t tok_merge(tok_sym *s, size_t n, tok_rescore_fn rescore, void *ctx) {
    if (n)
        s[n - 1].pri = TOK_NO_MERGE;
    for (;;) {
        size_t at = 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (s[i].pri < s[at].pri)
                at = i;
        if (n < 2 || s[at].pri == TOK_NO_MERGE)
            return n;
        s[at].len += s[at + 1].len;
        memmove(s + at + 1, s + at + 2, (n - at - 2) * sizeof *s);
        n--;
        if (at + 1 < n)
            rescore(ctx, s, at);
        else
            s[at].pri = TOK_NO_MERGE;
        if (at > 0)
            rescore(ctx, s, at - 1);
    }
}

/* What SentencePiece's rescoring needs: the tokenizer and the text. */
typedef struct spm_ctx {
    const tok_tokenizer *t;
    const char *text;
} spm_ctx;

/* A pair's priority: minus the score of the token spelling it. */
static void spm_pair(void *arg, tok_sym *s, size_t i) {
    const spm_ctx *c = arg;
    int id = tok_find(c->t, c->text + s[i].off, s[i].len + s[i + 1].len);
    s[i].pri = id >= 0 ? -(double)c->t->score[id] : TOK_NO_MERGE;
}

/* Emits a final symbol: its token, or its bytes as byte tokens. */
static int spm_emit(const tok_tokenizer *t, const char *p, size_t len,
                    tok_out *o) {
    int id = tok_find(t, p, len), rc = AISLE_OK;
    if (id >= 0)
        return tok_out_put(o, id);
    for (size_t k = 0; k < len && !rc; k++) {
        int b = t->byte_id[(uint8_t)p[k]];
        rc = tok_out_put(o, b >= 0 ? b : t->unk);
    }
    return rc;
}

/* Encodes text[0..len) (spaces as ' ', the prefix already added). */
static int spm_encode(const tok_tokenizer *t, const char *text, size_t len,
                      tok_out *o) {
    tok_sym *s = malloc((len ? len : 1) * sizeof *s); /* freed here */
    spm_ctx c = {t, text};
    size_t n = 0;
    int rc = AISLE_OK;

    if (!s)
        return AISLE_ENOMEM;
    for (size_t i = 0; i < len; n++) {
        size_t l = t->llama2c ? llama2c_char_len(text + i, len - i)
                              : utf8_len((uint8_t)text[i]);
        s[n].off = i;
        s[n].len = l < len - i ? l : len - i;
        i += s[n].len;
    }
    for (size_t i = 0; i + 1 < n; i++)
        spm_pair(&c, s, i);
    n = tok_merge(s, n, spm_pair, &c);
    for (size_t i = 0; i < n && !rc; i++)
        rc = spm_emit(t, text + s[i].off, s[i].len, o);
    free(s);
    return rc;
}

/* A SentencePiece fragment with the dummy prefix when it starts the text
 * or follows a special token, as llama.cpp does. */
static int spm_fragment(const tok_tokenizer *t, const char *text, size_t len,
                        int prefix, tok_out *o) {
    char *buf;
    int rc;

    if (!prefix || !t->add_prefix)
        return spm_encode(t, text, len, o);
    if (!(buf = malloc(len + 1)))
        return AISLE_ENOMEM;
    buf[0] = ' ';
    memcpy(buf + 1, text, len);
    rc = spm_encode(t, buf, len + 1, o);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------- encode */

/* A piece of the text being encoded: raw text, or a special token. */
typedef struct frag {
    size_t off, len;
    int id; /* -1 for raw text */
} frag;

/* Splits the raw fragments of f (n, room for cap) at every occurrence of
 * token id, as llama.cpp does for each special token in turn. */
static int split_at(const tok_tokenizer *t, const char *text, int id,
                    frag **f, size_t *n, size_t *cap) {
    const char *p = t->arena + t->off[id];
    size_t plen = t->len[id];

    for (size_t i = 0; i < *n; i++) {
        const char *base, *hit;
        frag cur = (*f)[i];
        if (cur.id >= 0 || !(hit = memmem(text + cur.off, cur.len, p, plen)))
            continue;
        if (*n + 2 > *cap) {
            frag *g = realloc(*f, (*cap * 2 + 4) * sizeof *g);
            if (!g)
                return AISLE_ENOMEM;
            *f = g;
            *cap = *cap * 2 + 4;
        }
        base = text + cur.off;
        /* [before][token][after]; the after part is scanned next. */
        memmove(*f + i + 3, *f + i + 1, (*n - i - 1) * sizeof **f);
        (*f)[i] = (frag){cur.off, (size_t)(hit - base), -1};
        (*f)[i + 1] = (frag){cur.off + (size_t)(hit - base), plen, id};
        (*f)[i + 2] = (frag){cur.off + (size_t)(hit - base) + plen,
                             cur.len - (size_t)(hit - base) - plen, -1};
        *n += 2;
        i++;
    }
    return AISLE_OK;
}

/* text as raw fragments and special tokens (those flags allow). The
 * caller frees *out. */
static int partition(const tok_tokenizer *t, const char *text, size_t len,
                     int flags, frag **out, size_t *n) {
    size_t cap = 4;
    frag *f = malloc(cap * sizeof *f);
    int rc = AISLE_OK;

    *out = NULL;
    if (!f)
        return AISLE_ENOMEM;
    f[0] = (frag){0, len, -1};
    *n = 1;
    for (int i = 0; i < t->n_special && !rc; i++) {
        int id = t->special[i];
        if (t->type[id] == TOK_USER || (flags & TOK_SPECIAL))
            rc = split_at(t, text, id, &f, n, &cap);
    }
    if (rc) {
        free(f);
        return rc;
    }
    *out = f;
    return AISLE_OK;
}

int tok_encode_ex(const tok_tokenizer *t, const char *text, size_t len,
                  int flags, int *tokens, size_t cap, size_t *n_tokens) {
    tok_out o = {tokens, 0, cap};
    frag *f = NULL; /* owned here */
    size_t nf = 0;
    int prev_special = 1, rc;

    *n_tokens = 0;
    if (cap < 2 * len + 3)
        return AISLE_EFULL; /* the bound tok_max_tokens promises */
    if ((rc = partition(t, text, len, flags, &f, &nf)))
        return rc;
    if ((flags & TOK_ADD_BOS) && tok_adds_bos(t))
        rc = tok_out_put(&o, t->bos);
    for (size_t i = 0; i < nf && !rc; i++) {
        if (f[i].id >= 0) {
            rc = tok_out_put(&o, f[i].id);
            prev_special = 1;
        } else if (f[i].len) {
            rc = t->kind == TOK_BPE
                     ? tok_bpe_encode(t, text + f[i].off, f[i].len, &o)
                     : spm_fragment(t, text + f[i].off, f[i].len,
                                    prev_special, &o);
            prev_special = 0;
        }
    }
    if (!rc && (flags & TOK_ADD_EOS) && t->eos >= 0)
        rc = tok_out_put(&o, t->eos);
    free(f);
    *n_tokens = o.n;
    return rc;
}

int tok_encode(const tok_tokenizer *t, const char *text, int bos, int eos,
               int *tokens, size_t cap, size_t *n_tokens) {
    return tok_encode_ex(t, text, strlen(text),
                         (bos ? TOK_ADD_BOS : 0) | (eos ? TOK_ADD_EOS : 0),
                         tokens, cap, n_tokens);
}

const char *tok_decode(const tok_tokenizer *t, int prev, int token,
                       size_t *len) {
    const char *p;

    *len = 0;
    if (token < 0 || token >= t->n || t->type[token] == TOK_CONTROL)
        return "";
    if (t->kind == TOK_BPE) {
        *len = t->text_len[token];
        return t->text + t->text_off[token];
    }
    p = t->arena + t->off[token];
    *len = t->len[token];
    if (t->type[token] == TOK_BYTE) {
        *len = 1;
        return &t->bytes[tok_byte_value(p, 6)];
    }
    if (prev == t->bos && p[0] == ' ') {
        p++;
        (*len)--;
    }
    return p;
}
