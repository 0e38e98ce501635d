/* compose: the deterministic answer, the model prompt and the slot filter. */
#include "services/shop/compose.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "services/base/buf.h"

#define COMPOSE_PROMPT_QUERY 200 /* request bytes quoted in the prompt */
#define COMPOSE_MAX_SLOT 9999

/* "Title ($12.99, Brand, by Mia Chen)": how every answer names an item
 * (the creator id while the catalog has no name). */
static void compose_item(buf *b, const rank_hit *h) {
    char price[48];
    query_money(h->item.price_cents, "$", 0, price, sizeof(price));
    buf_printf(b, "%s (%s", *h->item.title ? h->item.title : h->item.item_id, price);
    if (*h->item.brand) buf_printf(b, ", %s", h->item.brand);
    if (*h->item.creator_id) buf_printf(b, ", by %s", rank_creator_label(&h->item));
    buf_puts(b, ")");
}

/* How item breaks q ("not in running, above $5"); nothing when it does not. */
static void compose_outside(buf *b, const query_constraints *q, const catalog_item *it) {
    char m[48];
    size_t start = b->len;
#define COMPOSE_SEP (b->len > start ? ", " : "")
    if (*q->category && strcmp(q->category, it->category))
        buf_printf(b, "%snot in %s", COMPOSE_SEP, q->category);
    if (*q->brand && strcmp(q->brand, it->brand))
        buf_printf(b, "%snot from %s", COMPOSE_SEP, q->brand);
    if (*q->creator_id && strcmp(q->creator_id, it->creator_id))
        buf_printf(b, "%snot by %s", COMPOSE_SEP, q->creator_id);
    for (size_t i = 0; i < q->n_exclude; i++)
        if (strcmp(q->exclude[i], it->category) == 0)
            buf_printf(b, "%sin %s", COMPOSE_SEP, it->category);
    if (q->max_price_cents && it->price_cents > q->max_price_cents) {
        query_money(q->max_price_cents, q->currency, 1, m, sizeof(m));
        buf_printf(b, "%sabove %s", COMPOSE_SEP, m);
    }
    if (q->min_price_cents && it->price_cents < q->min_price_cents) {
        query_money(q->min_price_cents, q->currency, 1, m, sizeof(m));
        buf_printf(b, "%sbelow %s", COMPOSE_SEP, m);
    }
#undef COMPOSE_SEP
}

/* A ranker reason reads as the second half of a sentence: "similar to ...". */
static void compose_reason(buf *b, const rank_hit *h) {
    const char *r = h->n_reasons ? h->reasons[0] : "";
    if (!*r) return;
    buf_puts(b, " \xe2\x80\x94 ");
    if (r[0] >= 'A' && r[0] <= 'Z') {
        char c = (char)(r[0] + 32);
        buf_put(b, &c, 1);
        r++;
    }
    buf_puts(b, r);
}

char *compose_answer(const compose_input *in) {
    buf b = {0};
    char desc[512];
    size_t agents = 0;

    query_describe(in->q, desc, sizeof(desc));
    for (size_t i = 0; in->angles && i < in->n; i++) {
        size_t j = 0;
        while (j < i && strcmp(in->angles[j], in->angles[i])) j++;
        agents += j == i;
    }
    if (in->n == 0) {
        buf_printf(&b, "Nothing%s%s is in the catalog right now.\n", *desc ? " " : "",
                       desc);
        return buf_take(&b);
    }
    if (in->fit != COMPOSE_FIT)
        buf_printf(&b,
                       "Nothing %s is available right now. The closest %s, outside "
                       "what you asked:\n",
                       desc, in->n == 1 ? "item" : "items");
    else if (in->n == 1)
        buf_printf(&b, "Here is one pick%s%s", *desc ? " " : "", desc);
    else
        buf_printf(&b, "Here are %zu picks%s%s", in->n, *desc ? " " : "", desc);
    if (in->fit == COMPOSE_FIT && agents > 1)
        buf_printf(&b, ", from %zu angles:\n", agents);
    else if (in->fit == COMPOSE_FIT)
        buf_puts(&b, ":\n");
    for (size_t i = 0; i < in->n; i++) {
        const rank_hit *h = in->items[i];
        buf_puts(&b, "- ");
        if (in->angles) {
            const char *a = in->angles[i];
            buf_printf(&b, "%c%s: ", a[0] >= 'a' && a[0] <= 'z' ? a[0] - 32 : a[0], a + 1);
        }
        compose_item(&b, h);
        if (in->fit != COMPOSE_FIT) {
            buf why = {0};
            compose_outside(&why, in->q, &h->item);
            if (buf_status(&why)) b.oom = 1;
            else if (why.len) buf_printf(&b, " (%s)", why.data);
            buf_free(&why);
        }
        compose_reason(&b, h);
        buf_puts(&b, ".\n");
    }
    return buf_take(&b);
}

char *compose_request(const compose_input *in, const char *query) {
    buf b = {0};
    size_t n = 0;

    buf_puts(&b, "A shopper asks: ");
    /* The request is the shopper's text: it must not look like a slot or
     * break the prompt's layout. */
    for (; query[n] && n < COMPOSE_PROMPT_QUERY; n++) {
        char c = query[n] == '[' || query[n] == ']' || query[n] == '\n' ? ' ' : query[n];
        buf_put(&b, &c, 1);
    }
    buf_puts(&b, "\nProducts:\n");
    for (size_t i = 0; i < in->n; i++) {
        char price[48];
        const catalog_item *it = &in->items[i]->item;
        query_money(it->price_cents, "$", 0, price, sizeof(price));
        buf_printf(&b, "[%zu] %s, %s%s%s\n", i + 1, *it->title ? it->title : it->item_id,
                       price, *it->brand ? ", " : "", it->brand);
    }
    return buf_take(&b);
}

/* --- the slot filter --- */

struct compose_filter {
    const compose_input *in;
    compose_emit_fn emit;
    void *ud;
    const char **forbidden; /* catalog names not among the chosen items' */
    size_t n_forbidden;
    int hold_words;  /* trailing words held until the next piece */
    buf raw; /* model text not yet looked at */
    buf out; /* repaired text not yet emitted */
    char last;       /* last byte of repaired text, or 0 at the start */
    int cited, repairs;
};

int compose_filter_repairs(const compose_filter *f) { return f->repairs; }
int compose_filter_cited(const compose_filter *f) { return f->cited; }

void compose_filter_free(compose_filter *f) {
    if (!f) return;
    free(f->forbidden);
    buf_free(&f->raw);
    buf_free(&f->out);
    free(f);
}

/* Whether the chosen items carry name (as the field of one, kind-wise). */
static int compose_chosen_name(const compose_input *in, int kind, const char *name) {
    for (size_t i = 0; i < in->n; i++) {
        const catalog_item *it = &in->items[i]->item;
        const char *have = kind == QUERY_BRAND ? it->brand : it->creator_id;
        if (strcasecmp(have, name) == 0) return 1;
    }
    return 0;
}

int compose_filter_new(const compose_input *in, const query_vocab *v, compose_emit_fn emit,
                       void *ud, compose_filter **out) {
    compose_filter *f = calloc(1, sizeof(*f));
    size_t cap = query_vocab_count(v, QUERY_BRAND) + query_vocab_count(v, QUERY_CREATOR);

    *out = NULL;
    if (!f) return AISLE_ENOMEM;
    f->in = in;
    f->emit = emit;
    f->ud = ud;
    /* Enough trailing words stay held for the longest name or an amount
     * with its currency word ("30 dollars") to be seen whole. */
    f->hold_words = query_vocab_max_words(v) > 2 ? query_vocab_max_words(v) + 1 : 3;
    if (cap && !(f->forbidden = malloc(cap * sizeof(*f->forbidden)))) goto fail;
    for (int kind = QUERY_BRAND; kind <= QUERY_CREATOR; kind++)
        for (size_t i = 0; i < query_vocab_count(v, kind); i++) {
            const char *name = query_vocab_at(v, kind, i);
            if (!compose_chosen_name(in, kind, name)) f->forbidden[f->n_forbidden++] = name;
        }
    *out = f;
    return 0;
fail:
    compose_filter_free(f);
    return AISLE_ENOMEM;
}

/* Whether the word s[0..n) appears as a word in the chosen items' facts. */
static int compose_word_known(const compose_input *in, const char *s, size_t n) {
    for (size_t i = 0; i < in->n; i++) {
        const catalog_item *it = &in->items[i]->item;
        const char *fields[] = {it->title,    it->brand,    it->creator_id,
                                it->item_id,  it->category, rank_creator_label(it)};
        for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++)
            for (const char *p = fields[k]; *p; p++)
                if (strncasecmp(p, s, n) == 0 &&
                    (p == fields[k] || !query_wordc((unsigned char)p[-1])) &&
                    !query_wordc((unsigned char)p[n]))
                    return 1;
    }
    return 0;
}

/* Letters and digits mixed ("XR500", "c0086") look like a product code or
 * id; ordinals and decades ("3rd", "90s") do not. */
static int compose_codelike(const char *s, size_t n) {
    size_t digits = 0, i = 0;
    for (size_t k = 0; k < n; k++) digits += s[k] >= '0' && s[k] <= '9';
    if (digits == 0 || digits == n) return 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    return !(i == digits && (n - i == 1 || n - i == 2) &&
             (strncasecmp(s + i, "st", 2) == 0 || strncasecmp(s + i, "nd", 2) == 0 ||
              strncasecmp(s + i, "rd", 2) == 0 || strncasecmp(s + i, "th", 2) == 0 ||
              strncasecmp(s + i, "s", n - i) == 0));
}

static int compose_price_allowed(const compose_input *in, int64_t cents) {
    if (cents > 0 && (cents == in->q->max_price_cents || cents == in->q->min_price_cents))
        return 1;
    for (size_t i = 0; i < in->n; i++)
        if (in->items[i]->item.price_cents == cents) return 1;
    return 0;
}

static void compose_out(compose_filter *f, const char *s, size_t n) {
    /* An answer starts at its first visible character. */
    while (!f->last && n && (*s == ' ' || *s == '\n' || *s == '\t')) s++, n--;
    if (!n) return;
    buf_put(&f->out, s, n);
    f->last = s[n - 1];
}

/* Drops what was just skipped, and a space after it when the text
 * already ends in one, so stripping leaves no double spaces. */
static size_t compose_strip(compose_filter *f, const char *raw, size_t next) {
    f->repairs++;
    if (raw[next] == ' ' && (!f->last || f->last == ' ' || f->last == '(')) next++;
    return next;
}

/* The slot "[n]" at raw+i: its number, or -1; *end after the ']'. */
static long compose_slot_at(const char *raw, size_t i, size_t *end) {
    long n = 0;
    size_t j = i + 1;
    if (raw[i] != '[' || raw[j] < '0' || raw[j] > '9') return -1;
    for (; raw[j] >= '0' && raw[j] <= '9'; j++)
        if ((n = n * 10 + (raw[j] - '0')) > COMPOSE_MAX_SLOT) n = COMPOSE_MAX_SLOT + 1;
    if (raw[j] != ']') return -1;
    *end = j + 1;
    return n;
}

/* Repairs f->raw from the start until at least upto; returns how far it
 * got (constructs starting before upto are taken whole). */
static size_t compose_process(compose_filter *f, size_t upto) {
    const char *raw = f->raw.data;
    size_t i = 0, e = 0;
    while (i < upto) {
        long slot = compose_slot_at(raw, i, &e);
        query_amount a;
        size_t j;
        if (slot >= 0) {
            if (slot >= 1 && (size_t)slot <= f->in->n) {
                compose_item(&f->out, f->in->items[slot - 1]);
                f->last = ')';
                f->cited++;
                i = e;
            } else {
                i = compose_strip(f, raw, e);
            }
            continue;
        }
        if (i > 0 && query_wordc((unsigned char)raw[i - 1])) {
            compose_out(f, raw + i, 1);
            i++;
            continue;
        }
        if (query_amount_at(raw, i, &a) == 0 && a.money) {
            if (compose_price_allowed(f->in, a.cents))
                compose_out(f, raw + i, a.end - i);
            else
                a.end = compose_strip(f, raw, a.end);
            i = a.end;
            continue;
        }
        for (j = 0; j < f->n_forbidden && !(e = query_phrase_at(raw, i, f->forbidden[j])); j++) {
        }
        if (j < f->n_forbidden) {
            i = compose_strip(f, raw, e);
            continue;
        }
        for (j = i; query_wordc((unsigned char)raw[j]); j++) {
        }
        if (j > i && compose_codelike(raw + i, j - i) && !compose_word_known(f->in, raw + i, j - i)) {
            i = compose_strip(f, raw, j);
            continue;
        }
        j = j > i ? j : i + 1;
        compose_out(f, raw + i, j - i);
        i = j;
    }
    return i;
}

/* Emits the repaired text once the answer has cited a product. */
static int compose_release(compose_filter *f) {
    int rc = 0;
    if (buf_status(&f->out) || buf_status(&f->raw)) return AISLE_ENOMEM;
    if (f->cited && f->out.len) {
        rc = f->emit(f->ud, f->out.data, f->out.len);
        buf_reset(&f->out);
    }
    return rc;
}

/* Drops the first n bytes of raw. */
static void compose_consume(compose_filter *f, size_t n) {
    memmove(f->raw.data, f->raw.data + n, f->raw.len - n + 1);
    f->raw.len -= n;
}

int compose_filter_feed(compose_filter *f, const char *text, size_t len) {
    size_t cut, words = 0;
    buf_put(&f->raw, text, len);
    if (buf_status(&f->raw)) return AISLE_ENOMEM;
    /* Hold the last hold_words words (the last may be incomplete), which
     * also holds a slot still waiting for its ']'. */
    cut = f->raw.len;
    while (cut > 0 && words < (size_t)f->hold_words) {
        while (cut > 0 && f->raw.data[cut - 1] == ' ') cut--;
        while (cut > 0 && f->raw.data[cut - 1] != ' ' && f->raw.data[cut - 1] != '\n') cut--;
        words++;
    }
    compose_consume(f, compose_process(f, cut));
    return compose_release(f);
}

int compose_filter_finish(compose_filter *f) {
    int rc;
    if (f->raw.len) compose_consume(f, compose_process(f, f->raw.len));
    if ((rc = compose_release(f)) != 0) return rc;
    return f->cited ? 0 : 1;
}
