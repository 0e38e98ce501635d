/* lexical: one pass for the statistics, one over the matches for scores. */
#include "ranker/lexical.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/grow.h"
#include "services/base/status.h"

#define LEXICAL_K1 1.2f
#define LEXICAL_B 0.75f
#define LEXICAL_MAX_WORD 64

typedef struct lexical_terms {
    char w[LEXICAL_MAX_TERMS][LEXICAL_MAX_WORD];
    size_t len[LEXICAL_MAX_TERMS];
    int n;
} lexical_terms;

static int lexical_is_word(unsigned char ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           ch >= 0x80;
}

/* The next word of s at or after *pos, lower-cased and singular, into w
 * (LEXICAL_MAX_WORD); returns its length, 0 at the end. */
static size_t lexical_next(const char *s, size_t *pos, char *w) {
    size_t i = *pos, n = 0;
    while (s[i] && !lexical_is_word((unsigned char)s[i])) i++;
    for (; s[i] && lexical_is_word((unsigned char)s[i]); i++)
        if (n < LEXICAL_MAX_WORD - 1) {
            char ch = s[i];
            w[n++] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
        }
    *pos = i;
    /* "shoes" finds "shoe", "mugs" finds "mug"; "glass" stays. */
    if (n > 3 && w[n - 1] == 's' && w[n - 2] != 's') n--;
    w[n] = 0;
    return n;
}

static void lexical_parse(const char *query, lexical_terms *t) {
    char w[LEXICAL_MAX_WORD];
    size_t pos = 0, n;
    t->n = 0;
    while (t->n < LEXICAL_MAX_TERMS && (n = lexical_next(query, &pos, w)) > 0) {
        int dup = 0;
        for (int k = 0; k < t->n && !dup; k++) dup = t->len[k] == n && !memcmp(t->w[k], w, n);
        if (dup) continue;
        memcpy(t->w[t->n], w, n + 1);
        t->len[t->n++] = n;
    }
}

/* Adds field's words to the document's length and term counts. */
static void lexical_count(const char *field, const lexical_terms *t, uint8_t *tf,
                          unsigned *dl) {
    char w[LEXICAL_MAX_WORD];
    size_t pos = 0, n;
    while ((n = lexical_next(field, &pos, w)) > 0) {
        (*dl)++;
        for (int k = 0; k < t->n; k++)
            if (t->len[k] == n && !memcmp(t->w[k], w, n) && tf[k] < UINT8_MAX) tf[k]++;
    }
}

typedef struct lexical_match {
    size_t slot;
    unsigned dl;
    uint8_t tf[LEXICAL_MAX_TERMS];
} lexical_match;

long lexical_score(const catalog *c, const char *query, float *scores) {
    lexical_terms t;
    lexical_match *m = NULL, cur;
    size_t limit = catalog_slot_limit(c), nm = 0, cap = 0, ndocs = 0;
    unsigned df[LEXICAL_MAX_TERMS] = {0};
    double total_len = 0, avgdl;

    memset(scores, 0, limit * sizeof(*scores));
    lexical_parse(query, &t);
    if (t.n == 0) return 0;
    for (size_t slot = 0; slot < limit; slot++) {
        const catalog_item *it = catalog_at(c, slot);
        int hit = 0;
        if (!it) continue;
        memset(&cur, 0, sizeof(cur));
        cur.slot = slot;
        lexical_count(it->title, &t, cur.tf, &cur.dl);
        lexical_count(it->brand, &t, cur.tf, &cur.dl);
        lexical_count(it->category, &t, cur.tf, &cur.dl);
        lexical_count(it->creator_id, &t, cur.tf, &cur.dl);
        ndocs++;
        total_len += cur.dl;
        for (int k = 0; k < t.n; k++)
            if (cur.tf[k]) {
                df[k]++;
                hit = 1;
            }
        if (!hit) continue;
        if (GROW_ROOM(m, nm, cap, 256)) {
            free(m);
            return AISLE_ENOMEM;
        }
        m[nm++] = cur;
    }
    avgdl = ndocs && total_len > 0 ? total_len / (double)ndocs : 1;
    for (size_t i = 0; i < nm; i++) {
        double s = 0;
        for (int k = 0; k < t.n; k++) {
            double tf = m[i].tf[k], idf;
            if (!tf) continue;
            idf = log(1.0 + ((double)ndocs - df[k] + 0.5) / (df[k] + 0.5));
            s += idf * tf * (LEXICAL_K1 + 1) /
                 (tf + LEXICAL_K1 * (1 - LEXICAL_B + LEXICAL_B * m[i].dl / avgdl));
        }
        /* Every match scores above 0, even a word in every document. */
        scores[m[i].slot] = (float)s > 0 ? (float)s : 1e-6f;
    }
    free(m);
    return (long)nm;
}
