/* synth: synthetic catalog and shoppers with taste structure. */
#include "services/devtools/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    const char *brands[3];
    const char *nouns[4];
    int64_t price_cents; /* typical price */
} synth_cats[] = {
    {"running", {"Stride", "Pacer", "Loop"}, {"trail shoes", "running socks", "race vest", "split shorts"}, 6500},
    {"yoga", {"Lotus", "Asana", "Breathe"}, {"mat", "block set", "strap", "leggings"}, 4000},
    {"coffee", {"Crema", "Roastwell", "Bean & Co"}, {"pour-over kettle", "burr grinder", "espresso beans", "dripper"}, 3500},
    {"cookware", {"Ironside", "Panora", "Chefline"}, {"cast-iron skillet", "chef knife", "dutch oven", "saucepan"}, 7000},
    {"audio", {"Sonic", "Earwave", "Hush"}, {"wireless earbuds", "headphones", "speaker", "DAC"}, 9000},
    {"skincare", {"Glow", "Dermal", "Pure Leaf"}, {"serum", "moisturizer", "sunscreen", "cleanser"}, 2500},
    {"books", {"Pagebound", "Inkwell", "Northstar"}, {"novel", "cookbook", "travel guide", "poetry collection"}, 1800},
    {"toys", {"Wonder", "Blocksy", "Tinker"}, {"building set", "puzzle", "plush bear", "marble run"}, 3000},
    {"garden", {"Greenhand", "Bloom", "Rootwise"}, {"pruning shears", "seed kit", "planter", "watering can"}, 2800},
    {"camping", {"Ridge", "Basecamp", "Ember"}, {"tent", "sleeping bag", "camp stove", "headlamp"}, 8000},
    {"streetwear", {"Kerb", "Undertone", "Mainline"}, {"hoodie", "sneakers", "cap", "cargo pants"}, 6000},
    {"jewelry", {"Aurum", "Lumen", "Facet"}, {"necklace", "ring", "earrings", "bracelet"}, 5500},
};
static const char *synth_adjs[] = {"Classic", "Ultralight", "Everyday", "Pro",
                                   "Essential", "Signature", "Compact", "Deluxe"};

#define SYNTH_NCATS ((int)(sizeof(synth_cats) / sizeof(synth_cats[0])))

/* Creators' display names, first × last: 256 distinct ones before a
 * number is added. */
static const char *synth_first[] = {"Mia",  "Leo",  "Ava",   "Noah", "Zoe",  "Omar", "Ines", "Kai",
                                    "Lena", "Ravi", "Sofia", "Theo", "Yuki", "Ezra", "Nora", "Jonas"};
static const char *synth_last[] = {"Chen",   "Okafor", "Rossi",  "Silva", "Nakamura", "Berg",
                                   "Haddad", "Novak",  "Moreau", "Kaur",  "Lindqvist", "Osei",
                                   "Vargas", "Adler",  "Quinn",  "Sato"};
#define SYNTH_NFIRST (sizeof(synth_first) / sizeof(synth_first[0]))
#define SYNTH_NLAST (sizeof(synth_last) / sizeof(synth_last[0]))

/* Derived from c alone (no draw from the generator, so worlds stay what
 * they were). */
void synth_creator_name(size_t c, char *buf, size_t len) {
    size_t round = c / (SYNTH_NFIRST * SYNTH_NLAST);
    if (round)
        snprintf(buf, len, "%s %s %zu", synth_first[c % SYNTH_NFIRST],
                 synth_last[c / SYNTH_NFIRST % SYNTH_NLAST], round + 1);
    else
        snprintf(buf, len, "%s %s", synth_first[c % SYNTH_NFIRST],
                 synth_last[c / SYNTH_NFIRST % SYNTH_NLAST]);
}

uint64_t synth_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double synth_unit(uint64_t *s) { return (synth_rand(s) >> 11) * 0x1.0p-53; }

static size_t synth_below(uint64_t *s, size_t n) { return (size_t)(synth_unit(s) * (double)n); }

static double synth_gauss(uint64_t *s) {
    double u = synth_unit(s), v = synth_unit(s);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static void synth_random_unit(uint64_t *s, float *v, int d) {
    double n = 0;
    for (int i = 0; i < d; i++) {
        v[i] = (float)synth_gauss(s);
        n += (double)v[i] * v[i];
    }
    n = sqrt(n) + 1e-12;
    for (int i = 0; i < d; i++) v[i] = (float)(v[i] / n);
}

void synth_config_default(synth_config *cfg) {
    cfg->n_items = 5000;
    cfg->n_creators = 200;
    cfg->n_users = 200;
    cfg->dim = 32;
    cfg->seed = 1;
}

const char *synth_category(const synth_world *w, int k) {
    (void)w;
    return k >= 0 && k < SYNTH_NCATS ? synth_cats[k].name : "";
}

void synth_world_free(synth_world *w) {
    if (!w) return;
    free(w->items);
    free(w->users);
    free(w->vecs);
    free(w->by_cat);
    free(w->by_creator);
    free(w->creator_start);
    free(w);
}

/* Groups item indexes by key (category or creator) into idx, counting-sort
 * style, with start offsets. Returns 0, or -1 when out of memory. */
static int synth_group(const synth_world *w, size_t nkeys, int by_cat,
                       size_t *idx, size_t *start) {
    memset(start, 0, (nkeys + 1) * sizeof(*start));
    for (size_t i = 0; i < w->cfg.n_items; i++) {
        size_t k = by_cat ? (size_t)w->items[i].cat
                          : (size_t)strtoul(w->items[i].creator_id + 1, NULL, 10);
        start[k + 1]++;
    }
    for (size_t k = 0; k < nkeys; k++) start[k + 1] += start[k];
    size_t *fill = calloc(nkeys, sizeof(*fill));
    if (!fill) return -1;
    for (size_t i = 0; i < w->cfg.n_items; i++) {
        size_t k = by_cat ? (size_t)w->items[i].cat
                          : (size_t)strtoul(w->items[i].creator_id + 1, NULL, 10);
        idx[start[k] + fill[k]++] = i;
    }
    free(fill);
    return 0;
}

int synth_world_new(const synth_config *cfg, synth_world **out, char *err,
                    size_t errlen) {
    synth_world *w = NULL;
    float *cat_dir = NULL, *style = NULL;
    int *creator_cat = NULL;
    uint64_t rng = cfg->seed;
    int d = cfg->dim;

    *out = NULL;
    if (cfg->n_items == 0 || cfg->n_items > 10000000 || cfg->n_creators == 0 ||
        cfg->n_creators > 1000000 || cfg->n_users > 10000000 || d <= 0 || d > 4096) {
        snprintf(err, errlen, "synthetic world sizes are out of range");
        return -1;
    }
    w = calloc(1, sizeof(*w));
    if (!w) goto oom;
    w->cfg = *cfg;
    w->n_cats = SYNTH_NCATS;
    w->items = calloc(cfg->n_items, sizeof(*w->items));
    w->users = calloc(cfg->n_users ? cfg->n_users : 1, sizeof(*w->users));
    w->vecs = malloc(cfg->n_items * (size_t)d * sizeof(float));
    w->by_cat = malloc(cfg->n_items * sizeof(size_t));
    w->by_creator = malloc(cfg->n_items * sizeof(size_t));
    w->creator_start = malloc((cfg->n_creators + 1) * sizeof(size_t));
    cat_dir = malloc((size_t)SYNTH_NCATS * d * sizeof(float));
    style = malloc(cfg->n_creators * (size_t)d * sizeof(float));
    creator_cat = malloc(cfg->n_creators * sizeof(int));
    if (!w->items || !w->users || !w->vecs || !w->by_cat || !w->by_creator ||
        !w->creator_start || !cat_dir || !style || !creator_cat)
        goto oom;

    for (int k = 0; k < SYNTH_NCATS; k++) synth_random_unit(&rng, cat_dir + k * d, d);
    for (size_t c = 0; c < cfg->n_creators; c++) {
        synth_random_unit(&rng, style + c * d, d);
        creator_cat[c] = (int)(c % SYNTH_NCATS);
    }
    for (size_t i = 0; i < cfg->n_items; i++) {
        synth_item *it = &w->items[i];
        size_t c = synth_below(&rng, cfg->n_creators);
        int k = synth_below(&rng, 10) < 8 ? creator_cat[c] : (int)synth_below(&rng, SYNTH_NCATS);
        double norm = 0;
        it->cat = k;
        it->category = synth_cats[k].name;
        it->brand = synth_cats[k].brands[synth_below(&rng, 3)];
        snprintf(it->id, sizeof(it->id), "p%06zu", i);
        snprintf(it->creator_id, sizeof(it->creator_id), "c%04zu", c);
        synth_creator_name(c, it->creator_name, sizeof(it->creator_name));
        snprintf(it->title, sizeof(it->title), "%s %s %s", it->brand,
                 synth_adjs[synth_below(&rng, sizeof(synth_adjs) / sizeof(synth_adjs[0]))],
                 synth_cats[k].nouns[synth_below(&rng, 4)]);
        /* Log-normal prices around the category's typical price. */
        it->price_cents = (int64_t)(synth_cats[k].price_cents * exp(0.5 * synth_gauss(&rng)));
        it->price_cents -= it->price_cents % 100 - 99;
        it->in_stock = synth_below(&rng, 100) < 95;
        it->vec = w->vecs + i * (size_t)d;
        for (int j = 0; j < d; j++) {
            it->vec[j] = (float)(cat_dir[k * d + j] + 0.5 * style[c * d + j] +
                                 0.35 * synth_gauss(&rng) / sqrt(d));
            norm += (double)it->vec[j] * it->vec[j];
        }
        norm = sqrt(norm);
        for (int j = 0; j < d; j++) it->vec[j] = (float)(it->vec[j] / norm);
    }
    if (synth_group(w, SYNTH_NCATS, 1, w->by_cat, w->cat_start) ||
        synth_group(w, cfg->n_creators, 0, w->by_creator, w->creator_start))
        goto oom;
    for (size_t u = 0; u < cfg->n_users; u++) {
        synth_user *us = &w->users[u];
        snprintf(us->id, sizeof(us->id), "u%05zu", u);
        us->cats[0] = (int)synth_below(&rng, SYNTH_NCATS);
        us->cats[1] = (int)((us->cats[0] + 1 + synth_below(&rng, SYNTH_NCATS - 1)) % SYNTH_NCATS);
        /* A favourite creator from the first favourite category. */
        us->fav_creator = (size_t)us->cats[0];
        while (us->fav_creator + SYNTH_NCATS < cfg->n_creators && synth_below(&rng, 2))
            us->fav_creator += SYNTH_NCATS;
        us->budget_cents = (int64_t)(synth_cats[us->cats[0]].price_cents *
                                     (0.8 + synth_unit(&rng)));
    }
    free(cat_dir);
    free(style);
    free(creator_cat);
    *out = w;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    free(cat_dir);
    free(style);
    free(creator_cat);
    synth_world_free(w);
    return -1;
}

void synth_catalog_item(const synth_world *w, size_t i, Aisle__V1__CatalogItem *msg) {
    const synth_item *it = &w->items[i];
    msg->item_id = (char *)it->id;
    msg->title = (char *)it->title;
    msg->creator_id = (char *)it->creator_id;
    msg->creator_name = (char *)it->creator_name;
    msg->category = (char *)it->category;
    msg->brand = (char *)it->brand;
    msg->price_cents = it->price_cents;
    msg->in_stock = it->in_stock;
    msg->n_embedding = (size_t)w->cfg.dim;
    msg->embedding = it->vec;
}

static void synth_fill_signal(const synth_world *w, size_t u, size_t item,
                              uint64_t *rng, int64_t ts_ms, char *event_id,
                              Aisle__V1__Signal *msg) {
    const synth_item *it = &w->items[item];
    size_t r = synth_below(rng, 100);
    msg->user_id = (char *)w->users[u].id;
    msg->item_id = (char *)it->id;
    msg->creator_id = (char *)it->creator_id;
    msg->ts_ms = ts_ms;
    msg->kind = r < 60   ? AISLE__V1__SIGNAL_KIND__VIEW
                : r < 80 ? AISLE__V1__SIGNAL_KIND__CLICK
                : r < 88 ? AISLE__V1__SIGNAL_KIND__ADD_TO_CART
                : r < 92 ? AISLE__V1__SIGNAL_KIND__PURCHASE
                : r < 98 ? AISLE__V1__SIGNAL_KIND__LIKE
                         : AISLE__V1__SIGNAL_KIND__FOLLOW_CREATOR;
    /* Shoppers rarely buy over budget. */
    if (msg->kind == AISLE__V1__SIGNAL_KIND__PURCHASE &&
        it->price_cents > w->users[u].budget_cents)
        msg->kind = AISLE__V1__SIGNAL_KIND__VIEW;
    if (msg->kind == AISLE__V1__SIGNAL_KIND__FOLLOW_CREATOR) msg->item_id = "";
    snprintf(event_id, 32, "e%016llx", (unsigned long long)synth_rand(rng));
    msg->event_id = event_id;
}

void synth_signal_in_category(const synth_world *w, size_t u, int k, uint64_t *rng,
                              int64_t ts_ms, char *event_id, Aisle__V1__Signal *msg) {
    size_t lo = w->cat_start[k], hi = w->cat_start[k + 1];
    size_t item = hi > lo ? w->by_cat[lo + synth_below(rng, hi - lo)]
                          : synth_below(rng, w->cfg.n_items);
    synth_fill_signal(w, u, item, rng, ts_ms, event_id, msg);
}

void synth_next_signal(const synth_world *w, size_t u, uint64_t *rng, int64_t ts_ms,
                       char *event_id, Aisle__V1__Signal *msg) {
    const synth_user *us = &w->users[u];
    size_t r = synth_below(rng, 100), c = us->fav_creator;
    if (r < 25 && w->creator_start[c + 1] > w->creator_start[c]) {
        size_t lo = w->creator_start[c], hi = w->creator_start[c + 1];
        synth_fill_signal(w, u, w->by_creator[lo + synth_below(rng, hi - lo)], rng,
                          ts_ms, event_id, msg);
    } else if (r < 90) {
        synth_signal_in_category(w, u, us->cats[r < 65 ? 0 : 1], rng, ts_ms,
                                 event_id, msg);
    } else {
        synth_fill_signal(w, u, synth_below(rng, w->cfg.n_items), rng, ts_ms,
                          event_id, msg);
    }
}

int synth_write_tastes(const synth_world *w, FILE *f) {
    for (size_t u = 0; u < w->cfg.n_users; u++) {
        const synth_user *us = &w->users[u];
        if (fprintf(f, "%s %s %s c%04zu %lld\n", us->id, synth_category(w, us->cats[0]),
                    synth_category(w, us->cats[1]), us->fav_creator,
                    (long long)us->budget_cents) < 0)
            return -1;
    }
    return fflush(f) == 0 ? 0 : -1;
}
