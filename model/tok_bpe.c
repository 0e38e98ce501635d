/* tok_bpe.c — byte-level BPE (tokenizer.ggml.model "gpt2") as llama.cpp
 * runs it.
 *
 * Text is first cut into words by the pre-tokenizer's regular expressions,
 * applied in turn, each splitting every piece the previous ones left into
 * matches and the gaps between them. The expressions are llama.cpp's,
 * chosen by the name in tokenizer.ggml.pre; PCRE2 with Unicode properties
 * runs them. Each word's bytes are spelled as GPT-2's printable characters
 * (bytes_to_unicode), then adjacent symbols are merged, lowest merge rank
 * first and leftmost on ties, until no pair has a rank. */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "model/tok_int.h"

#include "services/base/grow.h"
#include "services/base/status.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama.cpp's pre-tokenizer expressions (llama-vocab.cpp), by family. */
#define RE_GPT2                                                              \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"     \
    "\\s+(?!\\S)"
#define RE_LLAMA3_HEAD                                                       \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|"            \
    "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
#define RE_LLAMA3_TAIL                                                       \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_PORO " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81" \
                "\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+"

typedef struct pre_family {
    const char *re[TOK_MAX_REGEX];
    int ignore_merges, add_bos;
} pre_family;

static const pre_family F_DEFAULT = {
    {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, 0, 0};
static const pre_family F_GPT2 = {{RE_GPT2}, 0, 0};
static const pre_family F_LLAMA3 = {
    {RE_LLAMA3_HEAD "\\p{N}{1,3}" RE_LLAMA3_TAIL}, 1, 1};
static const pre_family F_LLAMA3_REGEX = {
    {RE_LLAMA3_HEAD "\\p{N}{1,3}" RE_LLAMA3_TAIL}, 0, 0};
static const pre_family F_QWEN2 = {{RE_LLAMA3_HEAD "\\p{N}" RE_LLAMA3_TAIL},
                                   0, 0};
static const pre_family F_STARCODER = {{"\\p{N}", RE_GPT2}, 0, 0};
static const pre_family F_FALCON = {
    {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}, 0, 0};
static const pre_family F_PORO = {{RE_PORO}, 0, 0};
static const pre_family F_VIKING = {{RE_PORO, "\\p{N}"}, 0, 0};
/* llama.cpp runs the expressions without \p{..} through std::wregex on
 * the text with every non-ASCII space turned into \v: still \s, but no
 * longer in a range of the character classes. (?!\s) keeps them out of
 * the classes whose ranges span one (U+3000 and the U+2000 spaces). */
#define RE_NOT_SPACE "(?!\\s)"
/* The CJK ranges both DeepSeek splitters give words of their own. */
#define RE_DEEPSEEK_CJK                                                      \
    "(?:" RE_NOT_SPACE "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff])+"
static const pre_family F_DEEPSEEK_LLM = {
    {"[\r\n]",
     "\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf"
     "\u01c4-\u0293\u0295-\u02af\u0370-\u0373\u0376\u0377\u037b-\u037d"
     "\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5"
     "\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5"
     "\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77"
     "\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d"
     "\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4"
     "\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3"
     "\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107"
     "\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d"
     "\u212f-\u2134\u2139\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184"
     "\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d"
     "\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf"
     "\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a"
     "\U00010400-\U0001044f\U000104b0-\U000104d3\U000104d8-\U000104fb"
     "\U00010c80-\U00010cb2\U00010cc0-\U00010cf2\U000118a0-\U000118df"
     "\U0001e900-\U0001e943]+",
     "\\s?(?:" RE_NOT_SPACE
     "[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002])+",
     "\\s+$", RE_DEEPSEEK_CJK, "\\p{N}+"},
    0, 0};
static const pre_family F_DEEPSEEK_CODER = {
    {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_DEEPSEEK_CJK, "\\p{N}"}, 0, 0};
/* llama.cpp runs this one on text whose ASCII characters keep its own
 * categories, in which '~' is neither punctuation nor a symbol. */
#define RE_NOT_TILDE_PS "(?:(?!~)[\\p{P}\\p{S}])"
static const pre_family F_DEEPSEEK3 = {
    {"\\p{N}{1,3}", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
     "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|"
     "(?:~|[^\r\n\\p{L}\\p{P}\\p{S}])?[\\p{L}\\p{M}]+|"
     " ?" RE_NOT_TILDE_PS "+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
    0, 0};
static const pre_family F_TEKKEN = {
    {"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|"
     "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|"
     "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    1, 1};
static const pre_family F_CHAMELEON = {
    {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
     "([\\t\\n]|    |  )", "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2},
    0, 1};

/* tokenizer.ggml.pre names and the expressions llama.cpp maps them to. */
static const struct {
    const char *name;
    const pre_family *f;
} pre_names[] = {
    {"default", &F_DEFAULT},
    {"llama3", &F_LLAMA3},       {"llama-v3", &F_LLAMA3},
    {"llama-bpe", &F_LLAMA3},    {"falcon3", &F_LLAMA3},
    {"dbrx", &F_LLAMA3_REGEX},   {"smaug-bpe", &F_LLAMA3_REGEX},
    {"chatglm-bpe", &F_LLAMA3_REGEX},
    {"gpt-2", &F_GPT2},          {"mpt", &F_GPT2},
    {"olmo", &F_GPT2},           {"jais", &F_GPT2},
    {"phi-2", &F_GPT2},          {"jina-es", &F_GPT2},
    {"jina-de", &F_GPT2},        {"gigachat", &F_GPT2},
    {"jina-v1-en", &F_GPT2},     {"jina-v2-es", &F_GPT2},
    {"jina-v2-de", &F_GPT2},     {"jina-v2-code", &F_GPT2},
    {"roberta-bpe", &F_GPT2},
    {"starcoder", &F_STARCODER}, {"refact", &F_STARCODER},
    {"command-r", &F_STARCODER}, {"smollm", &F_STARCODER},
    {"codeshell", &F_STARCODER}, {"exaone", &F_STARCODER},
    {"minerva-7b", &F_STARCODER},
    {"qwen2", &F_QWEN2},         {"stablelm2", &F_QWEN2},
    {"deepseek-r1-qwen", &F_QWEN2}, {"megrez", &F_QWEN2},
    {"falcon", &F_FALCON},
    {"poro-chat", &F_PORO},      {"bloom", &F_PORO},
    {"gpt3-finnish", &F_PORO},
    {"viking", &F_VIKING},
    {"deepseek-llm", &F_DEEPSEEK_LLM},
    {"deepseek-coder", &F_DEEPSEEK_CODER},
    {"deepseek-v3", &F_DEEPSEEK3},
    {"tekken", &F_TEKKEN},       {"chameleon", &F_CHAMELEON},
};

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
 * the other 68 take code points from 256 up, in byte order. */
static unsigned byte_cp(int b) {
    static unsigned cp[256];
    static int ready;
    if (!ready) { /* idempotent: racing threads write the same values */
        unsigned next = 256;
        for (int i = 0; i < 256; i++)
            cp[i] = (i >= 33 && i <= 126) || (i >= 161 && i <= 172) ||
                            (i >= 174 && i <= 255)
                        ? (unsigned)i
                        : next++;
        ready = 1;
    }
    return cp[b];
}

/* The byte GPT-2 spells as code point cp (< 0x200), or -1. */
static int cp_byte(unsigned cp) {
    static int byte[0x200];
    static int ready;
    if (!ready) { /* idempotent, as in byte_cp */
        for (int i = 0; i < 0x200; i++)
            byte[i] = -1;
        for (int b = 0; b < 256; b++)
            byte[byte_cp(b)] = b;
        ready = 1;
    }
    return byte[cp];
}

/* UTF-8 of code point c (< 0x800) into p; returns its length. */
static size_t put_cp(char *p, unsigned c) {
    if (c < 0x80) {
        p[0] = (char)c;
        return 1;
    }
    p[0] = (char)(0xc0 | (c >> 6));
    p[1] = (char)(0x80 | (c & 0x3f));
    return 2;
}

static const pre_family *pre_lookup(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof pre_names / sizeof pre_names[0]; i++)
        if (strlen(pre_names[i].name) == len &&
            !memcmp(pre_names[i].name, name, len))
            return pre_names[i].f;
    return NULL;
}

int tok_bpe_init(tok_tokenizer *t, const char *pre, size_t pre_len,
                 const gguf_str *merges, uint64_t n_merges, char *err,
                 size_t errlen) {
    const pre_family *f;

    if (!pre) {
        pre = "default";
        pre_len = 7;
    }
    if (!(f = pre_lookup(pre, pre_len)))
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "unsupported BPE pre-tokenizer '%.*s' "
                           "(tokenizer.ggml.pre)",
                           (int)(pre_len > 31 ? 31 : pre_len), pre);
    snprintf(t->pre, sizeof t->pre, "%.*s", (int)pre_len, pre);
    t->ignore_merges = f->ignore_merges;
    t->add_bos = f->add_bos;
    for (int i = 0; i < TOK_MAX_REGEX && f->re[i]; i++) {
        int ec;
        PCRE2_SIZE eo;
        t->re[i] = pcre2_compile((PCRE2_SPTR)f->re[i], PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF |
                                     PCRE2_DOLLAR_ENDONLY,
                                 &ec, &eo, NULL);
        if (!t->re[i])
            return status_fail(AISLE_EINTERNAL, err, errlen,
                               "pre-tokenizer %s: expression %d does not "
                               "compile (PCRE2 error %d)", t->pre, i, ec);
        t->n_re = i + 1;
    }
    for (uint64_t r = 0; r < n_merges; r++)
        if (strmap_put(&t->ranks, merges[r].p, (size_t)merges[r].len,
                       (size_t)r) != AISLE_OK)
            return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    return AISLE_OK;
}

/* Decodes GPT-2 characters back to bytes; other characters (in added
 * tokens) stay as they are. dst has room for len bytes. */
static size_t unspell(const char *p, size_t len, char *dst) {
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)p[i];
        unsigned cp = c;
        size_t l = 1;
        if (c >= 0xc0 && c < 0xe0 && i + 1 < len) {
            cp = ((c & 0x1fu) << 6) | ((unsigned char)p[i + 1] & 0x3fu);
            l = 2;
        }
        int b = cp < 0x200 ? cp_byte(cp) : -1;
        if (b >= 0 && (l == 2 || cp < 0x80)) {
            dst[k++] = (char)b;
        } else {
            memcpy(dst + k, p + i, l);
            k += l;
        }
        i += l;
    }
    return k;
}

int tok_bpe_texts(tok_tokenizer *t) {
    size_t at = 0;
    t->text = malloc(t->arena_len ? t->arena_len : 1);
    t->text_off = malloc((size_t)t->n * sizeof *t->text_off);
    t->text_len = malloc((size_t)t->n * sizeof *t->text_len);
    if (!t->text || !t->text_off || !t->text_len)
        return AISLE_ENOMEM;
    for (int id = 0; id < t->n; id++) {
        const char *p = t->arena + t->off[id];
        t->text_off[id] = at;
        /* User-defined tokens are raw text, not GPT-2 spelling. */
        if (t->type[id] == TOK_USER) {
            memcpy(t->text + at, p, t->len[id]);
            t->text_len[id] = t->len[id];
        } else {
            t->text_len[id] = (uint32_t)unspell(p, t->len[id], t->text + at);
        }
        at += t->text_len[id];
    }
    return AISLE_OK;
}

void tok_bpe_free(tok_tokenizer *t) {
    for (int i = 0; i < t->n_re; i++)
        pcre2_code_free(t->re[i]);
    strmap_free(&t->ranks);
    free(t->text);
    free(t->text_off);
    free(t->text_len);
}

/* A word: a span of the text. */
typedef struct span {
    size_t off, len;
} span;

typedef struct spans {
    span *v;
    size_t n, cap;
} spans;

static int spans_put(spans *s, size_t off, size_t len) {
    if (!len)
        return AISLE_OK;
    if (GROW_ROOM(s->v, s->n, s->cap, 16))
        return AISLE_ENOMEM;
    s->v[s->n++] = (span){off, len};
    return AISLE_OK;
}

/* Splits each span of in by re into matches and gaps, appended to out. */
static int split_re(const pcre2_code *re, const char *text, const spans *in,
                    spans *out, pcre2_match_data *md) {
    int rc = AISLE_OK;
    for (size_t i = 0; i < in->n && !rc; i++) {
        PCRE2_SPTR subj = (PCRE2_SPTR)(text + in->v[i].off);
        size_t len = in->v[i].len, pos = 0;
        while (pos < len && !rc) {
            PCRE2_SIZE *ov;
            int m = pcre2_match(re, subj, len, pos, 0, md, NULL);
            if (m < 0)
                break;
            ov = pcre2_get_ovector_pointer(md);
            if (ov[1] == ov[0]) { /* no expression here matches empty */
                pos = ov[0] + 1;
                continue;
            }
            rc = spans_put(out, in->v[i].off + pos, ov[0] - pos);
            if (!rc)
                rc = spans_put(out, in->v[i].off + ov[0], ov[1] - ov[0]);
            pos = ov[1];
        }
        if (!rc && pos < len)
            rc = spans_put(out, in->v[i].off + pos, len - pos);
    }
    return rc;
}

/* The pre-tokenizer's words of text[0..len) into *words (caller frees v). */
static int pre_split(const tok_tokenizer *t, const char *text, size_t len,
                     spans *words) {
    spans a = {0}, b = {0};
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    int rc = md ? spans_put(&a, 0, len) : AISLE_ENOMEM;

    for (int i = 0; i < t->n_re && !rc; i++) {
        spans tmp;
        b.n = 0;
        rc = split_re(t->re[i], text, &a, &b, md);
        tmp = a;
        a = b;
        b = tmp;
    }
    pcre2_match_data_free(md);
    free(b.v);
    if (rc) {
        free(a.v);
        return rc;
    }
    *words = a;
    return AISLE_OK;
}

/* Merge rank of the adjacent symbols [a0, a0+al) and [a0+al, +bl) of the
 * spelled word w, or -1; key has room for the word plus one byte. */
static long pair_rank(const tok_tokenizer *t, const char *w, size_t a0,
                      size_t al, size_t bl, char *key) {
    size_t r;
    memcpy(key, w + a0, al);
    key[al] = ' ';
    memcpy(key + al + 1, w + a0 + al, bl);
    return strmap_get(&t->ranks, key, al + 1 + bl, &r) == AISLE_OK ? (long)r
                                                                   : -1;
}

/* What BPE's rescoring needs: the tokenizer, the spelled word and a
 * scratch key. */
typedef struct bpe_ctx {
    const tok_tokenizer *t;
    const char *w;
    char *key;
} bpe_ctx;

/* A pair's priority: its merge rank. */
static void bpe_pair(void *arg, tok_sym *s, size_t i) {
    const bpe_ctx *c = arg;
    long r = pair_rank(c->t, c->w, s[i].off, s[i].len, s[i + 1].len, c->key);
    s[i].pri = r >= 0 ? (double)r : TOK_NO_MERGE;
}

/* Emits a final symbol: its token, or a token per byte character. */
static int bpe_emit(const tok_tokenizer *t, const char *p, size_t len,
                    tok_out *o) {
    int id = tok_find(t, p, len), rc = AISLE_OK;
    if (id >= 0)
        return tok_out_put(o, id);
    for (size_t k = 0; k < len && !rc;) {
        size_t l = ((unsigned char)p[k] & 0xe0) == 0xc0 ? 2 : 1;
        id = tok_find(t, p + k, l);
        if (id >= 0 || t->unk >= 0)
            rc = tok_out_put(o, id >= 0 ? id : t->unk);
        k += l;
    }
    return rc;
}

/* BPE over one spelled word w[0..len) (each byte 1 or 2 characters). */
static int bpe_word(const tok_tokenizer *t, const char *w, size_t len,
                    tok_sym *s, char *key, tok_out *o) {
    bpe_ctx c = {t, w, key};
    size_t n = 0;
    int rc = AISLE_OK, id;

    if (t->ignore_merges && (id = tok_find(t, w, len)) >= 0)
        return tok_out_put(o, id);
    for (size_t i = 0; i < len; n++) {
        s[n].off = i;
        s[n].len = ((unsigned char)w[i] & 0xe0) == 0xc0 ? 2 : 1;
        i += s[n].len;
    }
    for (size_t i = 0; i + 1 < n; i++)
        bpe_pair(&c, s, i);
    n = tok_merge(s, n, bpe_pair, &c);
    for (size_t i = 0; i < n && !rc; i++)
        rc = bpe_emit(t, w + s[i].off, s[i].len, o);
    return rc;
}

int tok_bpe_encode(const tok_tokenizer *t, const char *text, size_t len,
                   tok_out *o) {
    spans words = {0};
    /* Scratch sized for the longest word: spelled (2 bytes a byte), its
     * symbols, and a pair key. Freed here. */
    char *w = malloc(2 * len + 1), *key = malloc(2 * len + 2);
    tok_sym *s = malloc((2 * len + 1) * sizeof *s);
    int rc = w && key && s ? pre_split(t, text, len, &words) : AISLE_ENOMEM;

    for (size_t i = 0; i < words.n && !rc; i++) {
        size_t wl = 0;
        for (size_t k = 0; k < words.v[i].len; k++)
            wl += put_cp(w + wl,
                         byte_cp((unsigned char)text[words.v[i].off + k]));
        rc = bpe_word(t, w, wl, s, key, o);
    }
    free(words.v);
    free(w);
    free(key);
    free(s);
    return rc;
}
