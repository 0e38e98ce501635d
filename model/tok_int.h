/* tok_int.h — the tokenizer's private state, shared by tok.c (loading,
 * special tokens, SentencePiece, decoding) and tok_bpe.c (byte-level BPE
 * and its pre-tokenizers). Not for use outside model/tok*.c. */
#ifndef AISLE_MODEL_TOK_INT_H
#define AISLE_MODEL_TOK_INT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "model/tok.h"
#include "services/base/strmap.h"

#define TOK_MAX_REGEX 6

struct tok_tokenizer {
    int n;
    int kind;          /* TOK_SPM or TOK_BPE */
    char *arena;       /* every piece, each NUL-terminated */
    size_t arena_len;
    size_t *off;       /* piece i starts at arena + off[i] */
    uint32_t *len;
    float *score;
    uint8_t *type;
    strmap ids;        /* piece -> lowest id spelling it */
    int bos, eos, unk, eot;
    int add_bos, add_eos;
    int space;         /* " " token used as the dummy prefix; -1 if none */
    int add_prefix;
    int llama2c;       /* from a tokenizer.bin: llama2.c's character split */
    int byte_id[256];  /* token of each raw byte; -1 if none */
    char bytes[256];   /* storage decode returns for byte tokens */
    int *special;      /* control, user-defined and unknown ids, longest
                          text first: split out of text before encoding */
    int n_special;
    /* Byte-level BPE only. */
    strmap ranks;      /* "left right" -> merge rank */
    char *text;        /* decoded bytes of every piece (arena layout) */
    size_t *text_off;
    uint32_t *text_len;
    void *re[TOK_MAX_REGEX]; /* pcre2_code *, applied in order */
    int n_re;
    int ignore_merges; /* a word that is a token is taken whole */
    char pre[32];      /* tokenizer.ggml.pre */
};

/* Lowest id whose piece is exactly p[0..len), or -1. */
int tok_find(const tok_tokenizer *t, const char *p, size_t len);

/* An output buffer for encoders: AISLE_EFULL once cap is reached. */
typedef struct tok_out {
    int *ids;
    size_t n, cap;
} tok_out;

int tok_out_put(tok_out *o, int id);

/* A symbol of a word being merged: its span of the text and the priority
 * of merging it with the next symbol (lowest first; TOK_NO_MERGE: none). */
typedef struct tok_sym {
    size_t off, len;
    double pri;
} tok_sym;

#define TOK_NO_MERGE INFINITY

/* Sets s[i].pri for merging s[i] with s[i + 1] (i + 1 < n). */
typedef void (*tok_rescore_fn)(void *ctx, tok_sym *s, size_t i);

/* Merges the n symbols at s, the pair of lowest priority first (the
 * leftmost on ties), as SentencePiece (by score) and BPE (by merge rank)
 * both do, rescoring the pairs each merge changes; s[i].pri must be set
 * for i + 1 < n. Returns the number of symbols left. */
size_t tok_merge(tok_sym *s, size_t n, tok_rescore_fn rescore, void *ctx);

/* BPE: sets up the pre-tokenizer named by pre (NULL: "default"), the
 * merges and the decoded texts. AISLE_OK, AISLE_EFORMAT with a message
 * naming an unknown pre-tokenizer, or AISLE_ENOMEM. */
int tok_bpe_init(tok_tokenizer *t, const char *pre, size_t pre_len,
                 const gguf_str *merges, uint64_t n_merges, char *err,
                 size_t errlen);
/* Fills the decoded bytes of every piece, once all are added. */
int tok_bpe_texts(tok_tokenizer *t);
void tok_bpe_free(tok_tokenizer *t);
/* Encodes text[0..len) (no special tokens in it) onto o. */
int tok_bpe_encode(const tok_tokenizer *t, const char *text, size_t len,
                   tok_out *o);

#endif
