/* query: price, category and brand constraints from free text. */
#include "services/shop/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "services/base/status.h"
#include "services/base/strmap.h"

struct query_vocab {
    char **names[QUERY_KINDS]; /* owned strings */
    size_t n[QUERY_KINDS];
    size_t cap[QUERY_KINDS];
    int max_words;
};

void query_vocab_free(query_vocab *v) {
    if (!v) return;
    for (int k = 0; k < QUERY_KINDS; k++) {
        for (size_t i = 0; i < v->n[k]; i++) free(v->names[k][i]);
        free(v->names[k]);
    }
    free(v);
}

static int query_vocab_add(query_vocab *v, strmap *seen, int kind, const char *name) {
    size_t dummy;
    int words = 1;
    if (!*name || strlen(name) >= QUERY_MAX_NAME || strmap_get(seen, name, strlen(name), &dummy) == 0)
        return 0;
    if (v->n[kind] == v->cap[kind]) {
        size_t cap = v->cap[kind] ? 2 * v->cap[kind] : 64;
        char **grown = realloc(v->names[kind], cap * sizeof(*grown));
        if (!grown) return -1;
        v->names[kind] = grown;
        v->cap[kind] = cap;
    }
    if (!(v->names[kind][v->n[kind]] = strdup(name))) return -1;
    v->n[kind]++;
    for (const char *p = name; *p; p++) words += *p == ' ';
    if (words > v->max_words) v->max_words = words;
    return strmap_put(seen, name, strlen(name), v->n[kind] - 1);
}

int query_vocab_build(catalog *c, query_vocab **out) {
    query_vocab *v = calloc(1, sizeof(*v));
    strmap seen[QUERY_KINDS];
    int rc = 0;

    *out = NULL;
    if (!v) return AISLE_ENOMEM;
    v->max_words = 1;
    for (int k = 0; k < QUERY_KINDS; k++) strmap_init(&seen[k]);
    catalog_read_begin(c);
    for (size_t s = 0; s < catalog_slot_limit(c) && rc == 0; s++) {
        const catalog_item *it = catalog_at(c, s);
        if (!it) continue;
        rc = query_vocab_add(v, &seen[QUERY_CATEGORY], QUERY_CATEGORY, it->category) ||
             query_vocab_add(v, &seen[QUERY_BRAND], QUERY_BRAND, it->brand) ||
             query_vocab_add(v, &seen[QUERY_CREATOR], QUERY_CREATOR, it->creator_id);
    }
    catalog_read_end(c);
    for (int k = 0; k < QUERY_KINDS; k++) strmap_free(&seen[k]);
    if (rc) {
        query_vocab_free(v);
        return AISLE_ENOMEM;
    }
    *out = v;
    return AISLE_OK;
}

size_t query_vocab_count(const query_vocab *v, int kind) { return v ? v->n[kind] : 0; }
const char *query_vocab_at(const query_vocab *v, int kind, size_t i) {
    return v->names[kind][i];
}
int query_vocab_max_words(const query_vocab *v) { return v ? v->max_words : 1; }

/* --- text helpers (on the lower-cased copy) --- */

int query_wordc(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c >= 0x80;
}

static int query_digit(char c) { return c >= '0' && c <= '9'; }

static size_t query_skip_spaces(const char *s, size_t i) {
    while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') i++;
    return i;
}

static int query_alnum(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

size_t query_phrase_at(const char *s, size_t i, const char *w) {
    size_t n = strlen(w);
    if (n == 0 || strncasecmp(s + i, w, n) != 0) return 0;
    if (query_alnum((unsigned char)w[0]) && i > 0 && query_wordc((unsigned char)s[i - 1]))
        return 0;
    if (query_alnum((unsigned char)w[n - 1]) && query_wordc((unsigned char)s[i + n])) return 0;
    return i + n;
}

static const struct {
    const char *text;
    const char *cur;
} query_currencies[] = {
    {"$", "$"}, {"\xe2\x82\xac", "\xe2\x82\xac"}, {"\xc2\xa3", "\xc2\xa3"},
    {"usd", "$"}, {"eur", "\xe2\x82\xac"}, {"gbp", "\xc2\xa3"},
    {"dollars", "$"}, {"dollar", "$"}, {"bucks", "$"}, {"euros", "\xe2\x82\xac"},
    {"euro", "\xe2\x82\xac"}, {"pounds", "\xc2\xa3"}, {"quid", "\xc2\xa3"},
};

/* A currency symbol or word at s+i: returns the index after it (0 when
 * none) and its symbol in *cur. Words only count as suffixes (prefix_ok 0). */
static size_t query_currency_at(const char *s, size_t i, int prefix, const char **cur) {
    size_t n = sizeof(query_currencies) / sizeof(query_currencies[0]);
    for (size_t k = 0; k < n; k++) {
        size_t e;
        if (prefix && k >= 6) break; /* "dollars 50" is not how anyone writes */
        if ((e = query_phrase_at(s, i, query_currencies[k].text))) {
            *cur = query_currencies[k].cur;
            return e;
        }
    }
    return 0;
}

int query_amount_at(const char *s, size_t i, query_amount *a) {
    size_t j, e;
    int64_t whole = 0, frac = 0;
    int digits = 0, big = 0;

    memset(a, 0, sizeof(*a));
    a->cur = "$";
    /* "c0086", "-5" and "1.5" hold no amount that starts here; "20-40"
     * does, after the dash. */
    if (i > 0 && (query_alnum((unsigned char)s[i - 1]) || s[i - 1] == '.' ||
                  (s[i - 1] == '-' && (i < 2 || !query_digit(s[i - 2])))))
        return -1;
    j = i;
    if ((e = query_currency_at(s, j, 1, &a->cur))) {
        a->money = 1;
        j = query_skip_spaces(s, e);
    }
    if (!query_digit(s[j])) return -1;
    for (; query_digit(s[j]) || (s[j] == ',' && query_digit(s[j + 1]) &&
                                 query_digit(s[j + 2]) && query_digit(s[j + 3]) &&
                                 !query_digit(s[j + 4]));
         j++) {
        if (s[j] == ',') continue;
        if (++digits > 13) big = 1; /* past QUERY_MAX_PRICE_CENTS anyway */
        if (!big) whole = whole * 10 + (s[j] - '0');
    }
    if (s[j] == '.' && query_digit(s[j + 1])) {
        frac = (s[j + 1] - '0') * 10;
        j += 2;
        if (query_digit(s[j])) frac += s[j++] - '0';
        while (query_digit(s[j])) j++;
    }
    if (query_alnum((unsigned char)s[j])) return -1; /* "50mm", "3rd": not an amount */
    e = query_skip_spaces(s, j);
    if ((e = query_currency_at(s, e, 0, &a->cur))) {
        a->money = 1;
        j = e;
    }
    a->end = j;
    a->cents = big || whole * 100 + frac > QUERY_MAX_PRICE_CENTS ? -1 : whole * 100 + frac;
    return 0;
}

static const char *const query_ceilings[] = {
    "under", "below", "less than", "cheaper than", "lower than", "at most", "up to",
    "no more than", "not more than", "no higher than", "not over", "max", "maximum",
    "within", "budget of", "budget is", "budget", "<=", "<", "\xe2\x89\xa4",
};
static const char *const query_floors[] = {
    "over", "above", "more than", "at least", "higher than", "pricier than",
    "starting at", "min", "minimum", ">=", ">", "\xe2\x89\xa5", "from",
};
static const char *const query_ceiling_suffixes[] = {
    "or less", "or under", "or below", "or cheaper", "max", "at most", "tops",
};
static const char *const query_floor_suffixes[] = {"or more", "or above", "or over", "and up", "+"};

/* Index after one of the n phrases at s+i, or 0. */
static size_t query_one_of(const char *s, size_t i, const char *const *ph, size_t n) {
    for (size_t k = 0; k < n; k++) {
        size_t e = query_phrase_at(s, i, ph[k]);
        if (e) return e;
    }
    return 0;
}

#define QUERY_N(a) (sizeof(a) / sizeof((a)[0]))

static void query_set_price(query_constraints *q, int ceiling, const query_amount *a) {
    if (a->cents <= 0) return; /* "under $0" or absurd: no constraint */
    if (ceiling)
        q->max_price_cents = a->cents;
    else
        q->min_price_cents = a->cents;
    if (a->money) snprintf(q->currency, sizeof(q->currency), "%s", a->cur);
}

/* After the amount a: "to $50", "- $50" or (after "between") "and $50".
 * Returns 0 and fills b when a range goes on. */
static int query_range_end(const char *lc, const query_amount *a, int between,
                           query_amount *b) {
    size_t k = query_skip_spaces(lc, a->end), f;
    if (!(f = query_phrase_at(lc, k, "to")) && !(f = query_phrase_at(lc, k, "-")) &&
        !(between && (f = query_phrase_at(lc, k, "and"))))
        return -1;
    return query_amount_at(lc, query_skip_spaces(lc, f), b);
}

enum { QUERY_BARE, QUERY_CEILING, QUERY_FLOOR, QUERY_BETWEEN };

/* Reads the price constraints of lc. */
static void query_prices(const char *lc, query_constraints *q) {
    size_t i = 0, e, k;
    query_amount a, b;

    while (lc[i]) {
        int kind = QUERY_BARE, range;
        size_t start = i;
        if ((e = query_phrase_at(lc, i, "between")))
            kind = QUERY_BETWEEN;
        else if ((e = query_one_of(lc, i, query_ceilings, QUERY_N(query_ceilings))))
            kind = QUERY_CEILING;
        else if ((e = query_one_of(lc, i, query_floors, QUERY_N(query_floors))))
            kind = QUERY_FLOOR;
        if (kind != QUERY_BARE) start = query_skip_spaces(lc, e);
        if (query_amount_at(lc, start, &a) != 0) {
            i = kind != QUERY_BARE ? e : i + 1;
            continue;
        }
        range = kind != QUERY_CEILING &&
                query_range_end(lc, &a, kind == QUERY_BETWEEN, &b) == 0 &&
                (a.money || b.money || kind == QUERY_BETWEEN);
        /* A bare number is a price only with a currency; after a price word
         * it is one anyway ("under 50"), except after "from" ("from 1990"). */
        if (!a.money && !range && (kind == QUERY_BARE || strncmp(lc + i, "from", 4) == 0)) {
            i = a.end;
            continue;
        }
        if (range) {
            if (!a.money && b.money) a.cur = b.cur;
            if (!b.money && a.money) b.cur = a.cur;
            a.money = b.money = a.money || b.money;
            query_set_price(q, 0, &a);
            query_set_price(q, 1, &b);
            i = b.end;
            continue;
        }
        k = query_skip_spaces(lc, a.end);
        if (kind == QUERY_CEILING ||
            (kind == QUERY_BARE &&
             query_one_of(lc, k, query_ceiling_suffixes, QUERY_N(query_ceiling_suffixes))))
            query_set_price(q, 1, &a);
        else if (kind == QUERY_FLOOR ||
                 (kind == QUERY_BARE &&
                  query_one_of(lc, k, query_floor_suffixes, QUERY_N(query_floor_suffixes))))
            query_set_price(q, 0, &a);
        i = a.end;
    }
    /* "between $50 and $20" or a floor above the ceiling: keep the ceiling. */
    if (q->max_price_cents && q->min_price_cents > q->max_price_cents) q->min_price_cents = 0;
}

/* Whether the words just before position i negate what follows. */
static int query_negated(const char *lc, size_t i) {
    static const char *const neg[] = {"not", "no", "except", "without", "besides",
                                      "excluding", "other than", "anything but", "but not",
                                      "non"};
    size_t end = i;
    while (end > 0 && (lc[end - 1] == ' ' || lc[end - 1] == '-')) end--;
    for (size_t k = 0; k < QUERY_N(neg); k++) {
        size_t n = strlen(neg[k]);
        if (end >= n && strncmp(lc + end - n, neg[k], n) == 0 &&
            (end == n || !query_wordc((unsigned char)lc[end - n - 1])))
            return 1;
    }
    return 0;
}

/* Stems match when they share a prefix of at least four letters that
 * leaves at most three letters of either word: "runner" and "running". */
static int query_stem_match(const char *w, size_t wn, const char *name, size_t nn) {
    size_t cp = 0;
    while (cp < wn && cp < nn && w[cp] == name[cp]) cp++;
    return cp >= 4 && cp + 3 >= nn && cp + 3 >= wn;
}

/* The first place name occurs in lc (as a phrase, or for categories as a
 * word of the same stem), or -1. Sets *neg when negated there. */
static long query_find(const char *lc, const char *name, int stem, int *neg) {
    char low[QUERY_MAX_NAME];
    size_t nn = strlen(name), i = 0;

    for (size_t k = 0; k <= nn; k++)
        low[k] = (char)(name[k] >= 'A' && name[k] <= 'Z' ? name[k] + 32 : name[k]);
    stem = stem && !strchr(low, ' ');
    while (lc[i]) {
        if (i == 0 || !query_wordc((unsigned char)lc[i - 1])) {
            size_t wn = 0;
            while (query_wordc((unsigned char)lc[i + wn])) wn++;
            if (query_phrase_at(lc, i, low) ||
                (stem && wn && query_stem_match(lc + i, wn, low, nn))) {
                *neg = query_negated(lc, i);
                return (long)i;
            }
            if (wn) {
                i += wn;
                continue;
            }
        }
        i++;
    }
    return -1;
}

/* Sets dst to the earliest non-negated name of kind in lc; negated
 * categories become exclusions. */
static void query_names(const char *lc, const query_vocab *v, int kind, query_constraints *q,
                        char *dst) {
    long best = -1;
    size_t best_len = 0;
    for (size_t k = 0; k < query_vocab_count(v, kind); k++) {
        const char *name = query_vocab_at(v, kind, k);
        int neg = 0;
        long at = query_find(lc, name, kind == QUERY_CATEGORY, &neg);
        if (at < 0) continue;
        if (neg) {
            if (kind == QUERY_CATEGORY) query_exclude(q, name);
        } else if (best < 0 || at < best || (at == best && strlen(name) > best_len)) {
            best = at;
            best_len = strlen(name);
            /* The vocabulary holds only names shorter than QUERY_MAX_NAME. */
            memcpy(dst, name, best_len + 1);
        }
    }
}

void query_parse(const char *text, const query_vocab *v, query_constraints *out) {
    char lc[QUERY_MAX_BYTES + 1];
    size_t n = 0;

    memset(out, 0, sizeof(*out));
    strcpy(out->currency, "$");
    if (!text) return;
    for (; text[n] && n < QUERY_MAX_BYTES; n++)
        lc[n] = (char)(text[n] >= 'A' && text[n] <= 'Z' ? text[n] + 32 : text[n]);
    lc[n] = '\0';
    query_prices(lc, out);
    if (!v) return;
    query_names(lc, v, QUERY_CATEGORY, out, out->category);
    query_names(lc, v, QUERY_BRAND, out, out->brand);
    query_names(lc, v, QUERY_CREATOR, out, out->creator_id);
    /* "coffee, but not coffee pods": an exclusion of the wanted category
     * would leave nothing; the positive mention wins. */
    for (size_t i = 0; i < out->n_exclude; i++)
        if (strcmp(out->exclude[i], out->category) == 0) {
            memmove(out->exclude[i], out->exclude[i + 1],
                    (out->n_exclude - i - 1) * sizeof(out->exclude[0]));
            out->n_exclude--;
            break;
        }
}

int query_exclude(query_constraints *q, const char *category) {
    if (q->n_exclude == QUERY_MAX_EXCLUDE || strlen(category) >= QUERY_MAX_NAME)
        return AISLE_EFULL;
    for (size_t i = 0; i < q->n_exclude; i++)
        if (strcmp(q->exclude[i], category) == 0) return 0;
    strcpy(q->exclude[q->n_exclude++], category);
    return 0;
}

void query_to_filter(const query_constraints *q, query_filter *qf) {
    memset(qf, 0, sizeof(*qf));
    qf->f.max_price_cents = q->max_price_cents;
    qf->f.min_price_cents = q->min_price_cents;
    qf->f.category = q->category;
    qf->f.brand = q->brand;
    qf->f.creator_id = q->creator_id;
    for (size_t i = 0; i < q->n_exclude; i++) qf->exclude[i] = q->exclude[i];
    qf->f.exclude_categories = qf->exclude;
    qf->f.n_exclude_categories = q->n_exclude;
}

int query_constrained(const query_constraints *q) {
    return q->max_price_cents || q->min_price_cents || *q->category || *q->brand ||
           *q->creator_id || q->n_exclude;
}

void query_money(int64_t cents, const char *cur, int short_form, char *buf, size_t len) {
    if (short_form && cents % 100 == 0)
        snprintf(buf, len, "%s%lld", cur, (long long)(cents / 100));
    else
        snprintf(buf, len, "%s%lld.%02lld", cur, (long long)(cents / 100),
                 (long long)(cents % 100));
}

size_t query_describe_price(const query_constraints *q, char *buf, size_t len) {
    char lo[48], hi[48];
    int n;
    query_money(q->min_price_cents, q->currency, 1, lo, sizeof(lo));
    query_money(q->max_price_cents, q->currency, 1, hi, sizeof(hi));
    if (q->min_price_cents && q->max_price_cents)
        n = snprintf(buf, len, "between %s and %s", lo, hi);
    else if (q->max_price_cents)
        n = snprintf(buf, len, "under %s", hi);
    else if (q->min_price_cents)
        n = snprintf(buf, len, "over %s", lo);
    else
        n = snprintf(buf, len, "%s", "");
    return n < 0 ? 0 : (size_t)n >= len ? len - 1 : (size_t)n;
}

/* Appends ", " (unless first) and the formatted part; keeps buf terminated
 * and *n within it when the text is cut short. */
static void query_part(char *buf, size_t len, size_t *n, const char *fmt, const char *arg) {
    int w = snprintf(buf + *n, len - *n, "%s", *n ? ", " : "");
    if (w > 0) *n = *n + (size_t)w >= len ? len - 1 : *n + (size_t)w;
    w = snprintf(buf + *n, len - *n, fmt, arg);
    if (w > 0) *n = *n + (size_t)w >= len ? len - 1 : *n + (size_t)w;
}

size_t query_describe(const query_constraints *q, char *buf, size_t len) {
    size_t n = 0;
    char price[128];
    if (!len) return 0;
    buf[0] = '\0';
    if (*q->category) query_part(buf, len, &n, "in %s", q->category);
    if (*q->brand) query_part(buf, len, &n, "from %s", q->brand);
    if (*q->creator_id) query_part(buf, len, &n, "by %s", q->creator_id);
    for (size_t i = 0; i < q->n_exclude; i++) query_part(buf, len, &n, "not in %s", q->exclude[i]);
    if (query_describe_price(q, price, sizeof(price))) query_part(buf, len, &n, "%s", price);
    return n;
}
