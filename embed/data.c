/* Parsers for the interaction formats and the CSR builder (see data.h).
 *
 * Every line is tokenised in place; ids are interned as soon as the line is
 * known to be well formed, so a bad line never leaves half an interaction
 * behind. Aggregation happens once, after reading, by a counting sort. */
#include "embed/data.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "services/base/status.h"

#define DATA_MAX_ID 1024 /* longest id accepted, in bytes */

typedef struct {
    uint32_t *user, *item;
    float *weight;
    uint64_t n, cap;
} data_triples;

static int triples_push(data_triples *t, uint32_t u, uint32_t i, float w) {
    if (t->n == t->cap) {
        uint64_t cap = t->cap ? t->cap * 2 : 65536;
        uint32_t *nu = realloc(t->user, cap * sizeof(*nu));
        if (!nu) return AISLE_ENOMEM;
        t->user = nu;
        uint32_t *ni = realloc(t->item, cap * sizeof(*ni));
        if (!ni) return AISLE_ENOMEM;
        t->item = ni;
        float *nw = realloc(t->weight, cap * sizeof(*nw));
        if (!nw) return AISLE_ENOMEM;
        t->weight = nw;
        t->cap = cap;
    }
    t->user[t->n] = u;
    t->item[t->n] = i;
    t->weight[t->n] = w;
    t->n++;
    return AISLE_OK;
}

static void triples_free(data_triples *t) {
    free(t->user);
    free(t->item);
    free(t->weight);
}

int embed_format_parse(const char *name, embed_format *out) {
    if (strcmp(name, "lightgcn") == 0) *out = EMBED_FMT_LIGHTGCN;
    else if (strcmp(name, "tsv") == 0) *out = EMBED_FMT_TSV;
    else if (strcmp(name, "csv") == 0) *out = EMBED_FMT_CSV;
    else return AISLE_EINVAL;
    return AISLE_OK;
}

/* Kept in step with aisle.v1.SignalKind; the weights are the defaults the
 * online profile uses for the same kinds. */
static const struct {
    const char *name;
    float weight;
} data_kinds[] = {
    {"unspecified", 1.0f}, {"view", 1.0f},           {"click", 2.0f},
    {"add_to_cart", 4.0f}, {"purchase", 8.0f},       {"like", 3.0f},
    {"follow_creator", 0}, {"dismiss", 0},
};

float embed_kind_weight(const char *kind, size_t len) {
    if (len == 0) return 1.0f;
    if (len == 1 && kind[0] >= '0' && kind[0] <= '7') return data_kinds[kind[0] - '0'].weight;
    for (size_t k = 0; k < sizeof(data_kinds) / sizeof(data_kinds[0]); k++) {
        if (strlen(data_kinds[k].name) == len && strncasecmp(data_kinds[k].name, kind, len) == 0)
            return data_kinds[k].weight;
    }
    return -1.0f;
}

/* Parses a whole token as a finite, non-negative number. */
static int parse_weight(const char *s, size_t len, float *out) {
    char buf[64];
    if (len == 0 || len >= sizeof(buf)) return AISLE_EFORMAT;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end != '\0' || errno || !isfinite(v) || v < 0 || v > 1e30) return AISLE_EFORMAT;
    *out = (float)v;
    return AISLE_OK;
}

static int parse_int64(const char *s, size_t len) {
    size_t i = (len > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    if (i == len || len - i > 19) return AISLE_EFORMAT;
    for (; i < len; i++)
        if (!isdigit((unsigned char)s[i])) return AISLE_EFORMAT;
    return AISLE_OK;
}

typedef struct {
    const char *s;
    size_t len;
} data_tok;

/* Splits on runs of blanks; returns the count, or -1 past max tokens (a
 * count, not a status: the caller grows the array and retries). */
static int split_ws(char *line, data_tok *tok, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0') return n;
        if (n == max) return -1;
        tok[n].s = p;
        while (*p && *p != ' ' && *p != '\t') p++;
        tok[n].len = (size_t)(p - tok[n].s);
        n++;
    }
}

/* Splits on commas, trimming blanks around each field; the count, or -1
 * past max fields. */
static int split_csv(char *line, data_tok *tok, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return -1;
        while (*p == ' ' || *p == '\t') p++;
        char *start = p;
        while (*p && *p != ',') p++;
        char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
        tok[n].s = start;
        tok[n].len = (size_t)(end - start);
        n++;
        if (*p == '\0') return n;
        p++;
    }
}

enum { COL_USER, COL_ITEM, COL_TS, COL_KIND, COL_WEIGHT, COL_N };

static int header_role(const data_tok *t) {
    static const struct {
        const char *name;
        int role;
    } names[] = {
        {"user", COL_USER},   {"user_id", COL_USER},      {"userid", COL_USER},
        {"item", COL_ITEM},   {"item_id", COL_ITEM},      {"itemid", COL_ITEM},
        {"movieid", COL_ITEM}, {"timestamp", COL_TS},     {"ts", COL_TS},
        {"ts_ms", COL_TS},    {"kind", COL_KIND},         {"weight", COL_WEIGHT},
        {"rating", COL_WEIGHT},
    };
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
        if (strlen(names[k].name) == t->len && strncasecmp(names[k].name, t->s, t->len) == 0)
            return names[k].role;
    return -1;
}

/* Maps header fields to roles; positional when the header names neither a
 * user nor an item column. col[role] = field index or -1. */
static void csv_columns(const data_tok *tok, int n, int col[COL_N]) {
    for (int r = 0; r < COL_N; r++) col[r] = -1;
    for (int f = 0; f < n; f++) {
        int r = header_role(&tok[f]);
        if (r >= 0 && col[r] < 0) col[r] = f;
    }
    if (col[COL_USER] < 0 || col[COL_ITEM] < 0)
        for (int r = 0; r < COL_N; r++) col[r] = r < n ? r : -1;
}

#define DATA_MAX_FIELDS 64

/* One file being read: where, into what, and the reason when it fails. */
typedef struct {
    const char *path;
    uint64_t lineno;
    char *err;
    size_t errlen;
    embed_idmap *users, *items;
    data_triples t;
    data_tok fixed[DATA_MAX_FIELDS];
    data_tok *tok; /* fixed, or grown for long lightgcn lines (owned) */
    int tokcap;
    int col[COL_N]; /* csv: field of each role, from the header */
    int have_header;
} data_reader;

/* Fills err with "path:line: reason" and returns code. */
static int reader_fail(data_reader *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int reader_fail(data_reader *r, int code, const char *fmt, ...) {
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    status_fmt(r->err, r->errlen, "%s:%llu: %s", r->path, (unsigned long long)r->lineno, why);
    return code;
}

static int check_id(data_reader *r, const data_tok *t, const char *what) {
    if (t->len == 0) return reader_fail(r, AISLE_EFORMAT, "empty %s id", what);
    if (t->len > DATA_MAX_ID)
        return reader_fail(r, AISLE_EFORMAT, "%s id longer than %d bytes", what, DATA_MAX_ID);
    return AISLE_OK;
}

/* Interns both ids and records the interaction. */
static int reader_push(data_reader *r, const data_tok *user, const data_tok *item, float w) {
    uint32_t u, i;
    if (embed_idmap_intern(r->users, user->s, user->len, &u) != AISLE_OK ||
        embed_idmap_intern(r->items, item->s, item->len, &i) != AISLE_OK ||
        triples_push(&r->t, u, i, w) != 0)
        return reader_fail(r, AISLE_ENOMEM, "out of memory");
    return AISLE_OK;
}

/* The weight of a csv row: its kind's default times its weight column. */
static int csv_weight(data_reader *r, const data_tok *tok, int n, float *w) {
    const int *col = r->col;
    *w = 1.0f;
    if (col[COL_KIND] >= 0 && col[COL_KIND] < n) {
        const data_tok *k = &tok[col[COL_KIND]];
        *w = embed_kind_weight(k->s, k->len);
        if (*w < 0) return reader_fail(r, AISLE_EFORMAT, "unknown kind '%.*s'", (int)k->len, k->s);
    }
    if (col[COL_WEIGHT] >= 0 && col[COL_WEIGHT] < n && tok[col[COL_WEIGHT]].len) {
        float x;
        if (parse_weight(tok[col[COL_WEIGHT]].s, tok[col[COL_WEIGHT]].len, &x) != 0)
            return reader_fail(r, AISLE_EFORMAT, "weight is not a non-negative number");
        if (x > 0) *w *= x;
    }
    return AISLE_OK;
}

static int reader_csv_line(data_reader *r, char *line) {
    data_tok *tok = r->fixed;
    const int *col = r->col;
    if (strchr(line, '"'))
        return reader_fail(r, AISLE_EFORMAT, "quoted CSV fields are not supported");
    int n = split_csv(line, tok, DATA_MAX_FIELDS);
    if (n < 0) return reader_fail(r, AISLE_EFORMAT, "more than %d fields", DATA_MAX_FIELDS);
    if (!r->have_header) {
        csv_columns(tok, n, r->col);
        r->have_header = 1;
        return AISLE_OK;
    }
    if (n < 2 || col[COL_USER] >= n || col[COL_ITEM] >= n)
        return reader_fail(r, AISLE_EFORMAT, "expected user,item[,timestamp[,kind[,weight]]]");
    const data_tok *ut = &tok[col[COL_USER]], *it = &tok[col[COL_ITEM]];
    int rc = check_id(r, ut, "user");
    if (rc == AISLE_OK) rc = check_id(r, it, "item");
    if (rc != AISLE_OK) return rc;
    if (col[COL_TS] >= 0 && col[COL_TS] < n && tok[col[COL_TS]].len &&
        parse_int64(tok[col[COL_TS]].s, tok[col[COL_TS]].len) != 0)
        return reader_fail(r, AISLE_EFORMAT, "timestamp is not an integer");
    float w;
    if ((rc = csv_weight(r, tok, n, &w)) != AISLE_OK) return rc;
    return w == 0 ? AISLE_OK : reader_push(r, ut, it, w);
}

/* Splits line into r->tok, growing it for long lines; the field count. */
static int reader_split_ws(data_reader *r, char *line, int *n) {
    while ((*n = split_ws(line, r->tok, r->tokcap)) < 0) {
        if (r->tokcap > (1 << 24)) return reader_fail(r, AISLE_EFORMAT, "line has too many fields");
        data_tok *grown = malloc((size_t)r->tokcap * 2 * sizeof(*grown));
        if (!grown) return reader_fail(r, AISLE_ENOMEM, "out of memory");
        if (r->tok != r->fixed) free(r->tok);
        r->tok = grown;
        r->tokcap *= 2;
    }
    return AISLE_OK;
}

/* lightgcn `user item item ...` or tsv `user item [weight]`. */
static int reader_ws_line(data_reader *r, char *line, embed_format fmt) {
    int n, rc = reader_split_ws(r, line, &n);
    if (rc != AISLE_OK) return rc;
    const data_tok *tok = r->tok;
    if (fmt == EMBED_FMT_TSV && (n < 2 || n > 3))
        return reader_fail(r, AISLE_EFORMAT, "expected 'user item [weight]'");
    for (int k = 0; k < n; k++)
        if ((rc = check_id(r, &tok[k], k == 0 ? "user" : "item")) != AISLE_OK) return rc;
    float w = 1.0f;
    int last = n;
    if (fmt == EMBED_FMT_TSV && n == 3) {
        if (parse_weight(tok[2].s, tok[2].len, &w) != 0)
            return reader_fail(r, AISLE_EFORMAT, "weight is not a non-negative number");
        if (w == 0) w = 1.0f;
        last = 2;
    }
    if (n == 1) { /* a user without items still gets a row */
        uint32_t u;
        if (embed_idmap_intern(r->users, tok[0].s, tok[0].len, &u) != AISLE_OK)
            return reader_fail(r, AISLE_ENOMEM, "out of memory");
    }
    for (int k = 1; k < last; k++)
        if ((rc = reader_push(r, &tok[0], &tok[k], w)) != AISLE_OK) return rc;
    return AISLE_OK;
}

/* Reads every line of f; AISLE_OK at the end of the file. */
static int reader_lines(data_reader *r, FILE *f, embed_format fmt) {
    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;
    int rc = AISLE_OK;
    while (rc == AISLE_OK && (len = getline(&line, &linecap, f)) >= 0) {
        r->lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if ((size_t)len != strlen(line)) {
            rc = reader_fail(r, AISLE_EFORMAT, "NUL byte in line");
            break;
        }
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0' || *p == '#') continue;
        rc = fmt == EMBED_FMT_CSV ? reader_csv_line(r, line) : reader_ws_line(r, line, fmt);
    }
    if (rc == AISLE_OK && ferror(f))
        rc = status_fail(AISLE_EIO, r->err, r->errlen, "%s: read error: %s", r->path, strerror(errno));
    free(line);
    return rc;
}

int embed_data_load(const char *path, embed_format fmt, embed_idmap *users, embed_idmap *items,
                    embed_data *out, char *err, size_t errlen) {
    data_reader r = {.path = path, .err = err, .errlen = errlen, .users = users, .items = items};
    int rc;
    memset(out, 0, sizeof(*out));
    r.tok = r.fixed;
    r.tokcap = DATA_MAX_FIELDS;
    FILE *f = fopen(path, "r");
    if (!f) return status_fail(AISLE_EIO, err, errlen, "%s: %s", path, strerror(errno));
    rc = reader_lines(&r, f, fmt);
    if (rc != AISLE_OK) goto fail;
    if (embed_data_from_triples(users->count, items->count, r.t.n, r.t.user, r.t.item,
                                r.t.weight, out) != AISLE_OK) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "%s: out of memory", path);
        goto fail;
    }
    out->n_lines = r.t.n;
fail:
    if (r.tok != r.fixed) free(r.tok);
    fclose(f);
    triples_free(&r.t);
    return rc;
}

typedef struct {
    uint32_t item;
    float weight;
} data_entry;

static int entry_cmp(const void *a, const void *b) {
    uint32_t x = ((const data_entry *)a)->item, y = ((const data_entry *)b)->item;
    return (x > y) - (x < y);
}

int embed_data_from_triples(uint32_t n_users, uint32_t n_items, uint64_t n,
                            const uint32_t *user, const uint32_t *item,
                            const float *weight, embed_data *out) {
    memset(out, 0, sizeof(*out));
    data_entry *ent = NULL;
    int rc = AISLE_ENOMEM;
    uint64_t *off = calloc((size_t)n_users + 1, sizeof(*off));
    if (!off) goto fail;
    for (uint64_t k = 0; k < n; k++) {
        if (user[k] >= n_users || item[k] >= n_items) {
            rc = AISLE_EINVAL;
            goto fail;
        }
        off[user[k] + 1]++;
    }
    for (uint32_t u = 0; u < n_users; u++) off[u + 1] += off[u];
    ent = malloc((n ? n : 1) * sizeof(*ent));
    uint64_t *pos = malloc(((size_t)n_users + 1) * sizeof(*pos));
    if (!ent || !pos) {
        free(pos);
        goto fail;
    }
    memcpy(pos, off, ((size_t)n_users + 1) * sizeof(*pos));
    for (uint64_t k = 0; k < n; k++) {
        data_entry *e = &ent[pos[user[k]]++];
        e->item = item[k];
        e->weight = weight ? weight[k] : 1.0f;
    }
    free(pos);
    /* Sort each user's run and merge duplicates, compacting in place. */
    uint64_t w = 0;
    for (uint32_t u = 0; u < n_users; u++) {
        uint64_t a = off[u], b = off[u + 1];
        qsort(ent + a, b - a, sizeof(*ent), entry_cmp);
        off[u] = w;
        for (uint64_t k = a; k < b; k++) {
            if (w > off[u] && ent[w - 1].item == ent[k].item) ent[w - 1].weight += ent[k].weight;
            else ent[w++] = ent[k];
        }
    }
    off[n_users] = w;
    out->item = malloc((w ? w : 1) * sizeof(*out->item));
    out->weight = malloc((w ? w : 1) * sizeof(*out->weight));
    if (!out->item || !out->weight) goto fail;
    for (uint64_t k = 0; k < w; k++) {
        out->item[k] = ent[k].item;
        out->weight[k] = ent[k].weight;
    }
    free(ent);
    out->off = off;
    out->n_users = n_users;
    out->n_items = n_items;
    out->n_lines = n;
    return AISLE_OK;
fail:
    free(ent);
    free(off);
    free(out->item);
    free(out->weight);
    memset(out, 0, sizeof(*out));
    return rc;
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int embed_data_holdout(const embed_data *src, double frac, uint64_t seed,
                       embed_data *train, embed_data *valid) {
    memset(train, 0, sizeof(*train));
    memset(valid, 0, sizeof(*valid));
    uint64_t nnz = src->off[src->n_users];
    uint8_t *held = calloc(nnz ? nnz : 1, 1);
    uint64_t *perm = NULL;
    uint64_t maxdeg = 1;
    assert(frac >= 0 && frac <= 1);
    if (!held) goto fail;
    for (uint32_t u = 0; u < src->n_users; u++)
        if (src->off[u + 1] - src->off[u] > maxdeg) maxdeg = src->off[u + 1] - src->off[u];
    perm = malloc(maxdeg * sizeof(*perm));
    if (!perm) goto fail;
    uint64_t n_valid = 0;
    for (uint32_t u = 0; u < src->n_users; u++) {
        uint64_t a = src->off[u], n = src->off[u + 1] - a;
        uint64_t h = (uint64_t)(frac * (double)n + 0.5);
        if (n == 0) continue;
        if (h > n - 1) h = n - 1;
        uint64_t state = seed ^ (0xd1b54a32d192ed03ULL * (u + 1));
        for (uint64_t k = 0; k < n; k++) perm[k] = k;
        for (uint64_t k = 0; k < h; k++) { /* partial Fisher-Yates */
            uint64_t j = k + splitmix64(&state) % (n - k);
            uint64_t tmp = perm[k];
            perm[k] = perm[j];
            perm[j] = tmp;
            held[a + perm[k]] = 1;
        }
        n_valid += h;
    }
    embed_data *parts[2] = {train, valid};
    for (int p = 0; p < 2; p++) {
        embed_data *d = parts[p];
        uint64_t cnt = p ? n_valid : nnz - n_valid;
        d->n_users = src->n_users;
        d->n_items = src->n_items;
        d->n_lines = cnt;
        d->off = malloc(((size_t)src->n_users + 1) * sizeof(*d->off));
        d->item = malloc((cnt ? cnt : 1) * sizeof(*d->item));
        d->weight = malloc((cnt ? cnt : 1) * sizeof(*d->weight));
        if (!d->off || !d->item || !d->weight) goto fail;
        uint64_t w = 0;
        for (uint32_t u = 0; u < src->n_users; u++) {
            d->off[u] = w;
            for (uint64_t k = src->off[u]; k < src->off[u + 1]; k++) {
                if (held[k] != p) continue;
                d->item[w] = src->item[k];
                d->weight[w++] = src->weight[k];
            }
        }
        d->off[src->n_users] = w;
    }
    free(held);
    free(perm);
    return AISLE_OK;
fail:
    free(held);
    free(perm);
    embed_data_free(train);
    embed_data_free(valid);
    return AISLE_ENOMEM;
}

/* Finds the item and creator columns in a catalog header. */
static void catalog_columns(const data_tok *tok, int n, int *icol, int *ccol) {
    for (int k = 0; k < n; k++) {
        if (tok[k].len == 4 && !strncasecmp(tok[k].s, "item", 4)) *icol = k;
        if (tok[k].len == 7 && !strncasecmp(tok[k].s, "item_id", 7)) *icol = k;
        if (tok[k].len == 7 && !strncasecmp(tok[k].s, "creator", 7)) *ccol = k;
        if (tok[k].len == 10 && !strncasecmp(tok[k].s, "creator_id", 10)) *ccol = k;
    }
}

/* Reads the catalog rows of f into map. */
static int catalog_lines(data_reader *r, FILE *f, const embed_idmap *items,
                         embed_idmap *creators, uint32_t *map) {
    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;
    int icol = 0, ccol = 1, rc = AISLE_OK;
    while (rc == AISLE_OK && (len = getline(&line, &linecap, f)) >= 0) {
        r->lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (line[0] == '\0' || line[0] == '#') continue;
        data_tok *tok = r->fixed;
        int n = split_csv(line, tok, DATA_MAX_FIELDS);
        if (!r->have_header) {
            catalog_columns(tok, n, &icol, &ccol);
            r->have_header = 1;
            continue;
        }
        if (n < 0 || n <= icol || n <= ccol || tok[icol].len == 0 ||
            tok[icol].len > DATA_MAX_ID || tok[ccol].len > DATA_MAX_ID) {
            rc = reader_fail(r, AISLE_EFORMAT, "expected item,creator");
            break;
        }
        uint32_t i, c;
        if (tok[ccol].len == 0 || embed_idmap_find(items, tok[icol].s, tok[icol].len, &i) != AISLE_OK)
            continue;
        if (embed_idmap_intern(creators, tok[ccol].s, tok[ccol].len, &c) != AISLE_OK)
            rc = reader_fail(r, AISLE_ENOMEM, "out of memory");
        else
            map[i] = c;
    }
    free(line);
    return rc;
}

int embed_catalog_load(const char *path, const embed_idmap *items, embed_idmap *creators,
                       uint32_t **item_creator, char *err, size_t errlen) {
    data_reader r = {.path = path, .err = err, .errlen = errlen};
    int rc;
    *item_creator = NULL;
    uint32_t *map = malloc(((size_t)items->count + 1) * sizeof(*map));
    if (!map) return status_fail(AISLE_ENOMEM, err, errlen, "%s: out of memory", path);
    FILE *f = fopen(path, "r");
    if (!f) {
        rc = status_fail(AISLE_EIO, err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    for (uint32_t i = 0; i < items->count; i++) map[i] = UINT32_MAX;
    rc = catalog_lines(&r, f, items, creators, map);
    fclose(f);
    if (rc != AISLE_OK) goto fail;
    *item_creator = map;
    return AISLE_OK;
fail:
    free(map);
    return rc;
}

void embed_data_free(embed_data *d) {
    free(d->off);
    free(d->item);
    free(d->weight);
    memset(d, 0, sizeof(*d));
}
