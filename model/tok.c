/* tok.c — vocabulary loading, BPE encoding and piece decoding.
 *
 * llama2.c's encoder rescans every adjacent pair after each merge. This one
 * keeps the merged id and score of each pair and recomputes only the two
 * pairs next to a merge, which picks exactly the same merges (best score,
 * leftmost on ties) at a fraction of the lookups. Pieces live in one arena
 * and are found through the shared byte-string map (strmap). */
#include "model/tok.h"
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

struct tok_tokenizer {
    int n;
    char *arena;       /* every piece, each NUL-terminated */
    size_t arena_len;
    size_t *off;       /* piece i starts at arena + off[i] */
    uint32_t *len;
    float *score;
    uint8_t *type;
    strmap ids;        /* piece -> lowest id spelling it */
    uint32_t max_len;  /* longest piece */
    int bos, eos, unk;
    int space;         /* " " token used as the dummy prefix; -1 if none */
    int add_prefix;
    int byte_id[256];  /* token of each raw byte; -1 if none */
    char bytes[256];   /* storage decode returns for byte tokens */
};

/* Lowest id whose piece is exactly p[0..len), or -1. */
static int tok_find(const tok_tokenizer *t, const char *p, size_t len) {
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
    strmap_free(&t->ids);
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

/* Indexes the pieces once all are added; AISLE_OK or AISLE_ENOMEM. */
static int tok_finish(tok_tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        t->byte_id[b] = -1;
        t->bytes[b] = (char)b;
    }
    for (int id = 0; id < t->n; id++) {
        const char *p = t->arena + t->off[id];
        int b = tok_byte_value(p, t->len[id]);

        if (t->len[id] > t->max_len)
            t->max_len = t->len[id];
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
    return AISLE_OK;
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

int tok_load_gguf(const gguf_file *g, tok_tokenizer **out, char *err,
                  size_t errlen) {
    gguf_str *pieces = NULL, model;
    const void *scores = NULL, *types = NULL;
    uint64_t n = 0, ns = 0, nt = 0;
    uint32_t st, tt, v;
    tok_tokenizer *t = NULL;
    size_t arena = 0;
    int rc = AISLE_EFORMAT, flag;

    *out = NULL;
    if (!gguf_get_str(g, "tokenizer.ggml.model", &model) &&
        !(model.len == 5 && !memcmp(model.p, "llama", 5))) {
        status_fmt(err, errlen, "unsupported GGUF tokenizer model %.*s (want llama)",
                (int)(model.len > 32 ? 32 : model.len), model.p);
        goto fail;
    }
    if (gguf_get_strs(g, "tokenizer.ggml.tokens", &pieces, &n) || n == 0 ||
        n > TOK_MAX_VOCAB) {
        status_fmt(err, errlen, "GGUF file has no usable tokenizer.ggml.tokens");
        goto fail;
    }
    if (gguf_get_arr(g, "tokenizer.ggml.scores", &st, &ns, &scores) ||
        st != GGUF_FLOAT32 || ns != n) {
        status_fmt(err, errlen, "GGUF tokenizer.ggml.scores missing or mismatched");
        goto fail;
    }
    if (!gguf_get_arr(g, "tokenizer.ggml.token_type", &tt, &nt, &types) &&
        (tt != GGUF_INT32 || nt != n)) {
        status_fmt(err, errlen, "GGUF tokenizer.ggml.token_type mismatched");
        goto fail;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (pieces[i].len > TOK_MAX_PIECE) {
            status_fmt(err, errlen, "GGUF token %llu too long",
                    (unsigned long long)i);
            goto fail;
        }
        arena += (size_t)pieces[i].len;
    }
    t = tok_alloc((int)n, arena);
    if (!t) {
        rc = AISLE_ENOMEM;
        status_fmt(err, errlen, "out of memory");
        goto fail;
    }
    if (!gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &v))
        t->bos = v < n ? (int)v : -1;
    if (!gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &v))
        t->eos = v < n ? (int)v : -1;
    if (!gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &v))
        t->unk = v < n ? (int)v : 0;
    if (!gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &flag))
        t->add_prefix = flag;
    for (uint64_t i = 0; i < n; i++) {
        float score;
        int32_t type = TOK_NORMAL;
        memcpy(&score, (const uint8_t *)scores + i * 4, 4);
        if (types)
            memcpy(&type, (const uint8_t *)types + i * 4, 4);
        if (type < TOK_NORMAL || type > TOK_BYTE)
            type = TOK_NORMAL;
        if ((int)i == t->bos || (int)i == t->eos)
            type = TOK_CONTROL;
        tok_add(t, pieces[i].p, (size_t)pieces[i].len, score, type, 1);
    }
    if ((rc = tok_finish(t))) {
        status_fmt(err, errlen, "out of memory");
        goto fail;
    }
    free(pieces);
    *out = t;
    return 0;

fail:
    free(pieces);
    tok_free(t);
    return rc;
}

int tok_vocab_size(const tok_tokenizer *t) { return t->n; }
int tok_bos(const tok_tokenizer *t) { return t->bos; }
int tok_eos(const tok_tokenizer *t) { return t->eos; }

const char *tok_piece(const tok_tokenizer *t, int id, size_t *len) {
    *len = t->len[id];
    return t->arena + t->off[id];
}

float tok_score(const tok_tokenizer *t, int id) { return t->score[id]; }
int tok_type(const tok_tokenizer *t, int id) { return t->type[id]; }

size_t tok_max_tokens(const char *text) { return strlen(text) + 3; }

/* Id of the merge of a and b, or -1; buf holds 2 * max_len bytes. */
static int tok_pair(const tok_tokenizer *t, int a, int b, char *buf) {
    memcpy(buf, t->arena + t->off[a], t->len[a]);
    memcpy(buf + t->len[a], t->arena + t->off[b], t->len[b]);
    return tok_find(t, buf, (size_t)t->len[a] + t->len[b]);
}

int tok_encode(const tok_tokenizer *t, const char *text, int bos, int eos,
               int *tokens, size_t cap, size_t *n_tokens) {
    size_t n = 0, len = strlen(text);
    int *pair = NULL;
    char *buf = NULL;
    int rc = AISLE_ENOMEM;

    *n_tokens = 0;
    if (cap < len + 3)
        return AISLE_EFULL;
    buf = malloc((size_t)t->max_len * 2 + 4);
    pair = malloc((len + 3) * sizeof *pair);
    if (!buf || !pair)
        goto fail;

    if (bos && t->bos >= 0)
        tokens[n++] = t->bos;
    if (text[0] && t->add_prefix) {
        if (t->space >= 0)
            tokens[n++] = t->space;
        else
            tokens[n++] = t->byte_id[' '] >= 0 ? t->byte_id[' '] : t->unk;
    }
    /* One token per UTF-8 character: a lead byte and up to three
     * continuation bytes, as llama2.c groups them. */
    for (size_t i = 0; i < len;) {
        size_t j = i + 1;
        int id;
        while (j < len && ((uint8_t)text[j] & 0xc0) == 0x80 && j - i < 4)
            j++;
        id = tok_find(t, text + i, j - i);
        if (id >= 0) {
            tokens[n++] = id;
        } else {
            for (size_t k = i; k < j; k++) {
                int b = t->byte_id[(uint8_t)text[k]];
                tokens[n++] = b >= 0 ? b : t->unk;
            }
        }
        i = j;
    }

    for (size_t i = 0; i + 1 < n; i++)
        pair[i] = tok_pair(t, tokens[i], tokens[i + 1], buf);
    for (;;) {
        float best = -1e10f;
        size_t at = 0;
        int found = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            if (pair[i] >= 0 && t->score[pair[i]] > best) {
                best = t->score[pair[i]];
                at = i;
                found = 1;
            }
        }
        if (!found)
            break;
        tokens[at] = pair[at];
        memmove(tokens + at + 1, tokens + at + 2,
                (n - at - 2) * sizeof *tokens);
        if (at + 2 < n)
            memmove(pair + at + 1, pair + at + 2, (n - at - 3) * sizeof *pair);
        n--;
        if (at > 0)
            pair[at - 1] = tok_pair(t, tokens[at - 1], tokens[at], buf);
        if (at + 1 < n)
            pair[at] = tok_pair(t, tokens[at], tokens[at + 1], buf);
    }
    if (eos && t->eos >= 0)
        tokens[n++] = t->eos;
    *n_tokens = n;
    rc = 0;

fail:
    free(buf);
    free(pair);
    return rc;
}

const char *tok_decode(const tok_tokenizer *t, int prev, int token,
                       size_t *len) {
    const char *p;

    *len = 0;
    if (token < 0 || token >= t->n || t->type[token] == TOK_CONTROL)
        return "";
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
