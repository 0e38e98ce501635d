/* rank: the ranker alone (rank_recommend in this process, no transport, no
 * Redis) on the synthetic shop of bench/recommend: 100,000 items with
 * facts and vectors (IVF), profiles drawn from each shopper's signals, a
 * popular list and three trending lists. Times each surface's calls by the
 * calling thread's CPU clock in rounds that interleave the surfaces, so a
 * busy machine slows them alike; prints one "key=value" line a surface
 * with the median and best round's µs a call, and a digest of the first
 * round's pages (pagesum.h), the same for two builds that answer alike.
 * Build it at two commits to compare them on the same machine minutes
 * (the figures are per process). Last, what home's seed_nprobe changes on
 * its pages: the share of each page that searching the seeds through the
 * catalog's own nprobe also gives.
 *
 *   rank [ITEMS [USERS [CALLS [ROUNDS]]]]   # 100000 2000 500 7 by default */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/recommend/pagesum.h"
#include "ranker/rank.h"
#include "retrieval/catalog.h"
#include "services/base/clock.h"
#include "services/devtools/synth.h"

#define DIM 32
#define SIGNALS 10 /* per shopper, as bench/recommend's synth run */
#define MAX_ROUNDS 32

/* One shopper's profile view and the entries it points into. */
typedef struct rank_user {
    rank_entry items[SIGNALS], seen[SIGNALS], creators[SIGNALS], cats[SIGNALS];
    rank_profile p;
} rank_user;

/* Adds weight to id in list (n entries), keeping the list heaviest first. */
static void rank_add(rank_entry *list, size_t *n, const char *id, double w) {
    size_t i = 0;
    while (i < *n && strcmp(list[i].id, id) != 0) i++;
    if (i == *n) list[(*n)++] = (rank_entry){id, 0};
    list[i].weight += w;
    for (; i > 0 && list[i].weight > list[i - 1].weight; i--) {
        rank_entry t = list[i];
        list[i] = list[i - 1];
        list[i - 1] = t;
    }
}

static void rank_user_build(const synth_world *w, size_t u, rank_user *ru) {
    static const double kind_w[] = {0, 1, 2, 3, 4, 5, 8, 4};
    uint64_t rng = 1000 + u;
    char event_id[32];
    memset(ru, 0, sizeof(*ru));
    for (int s = 0; s < SIGNALS; s++) {
        Aisle__V1__Signal msg = AISLE__V1__SIGNAL__INIT;
        synth_next_signal(w, u, &rng, 0, event_id, &msg);
        if (!msg.item_id || !*msg.item_id) continue;
        double wt = (size_t)msg.kind < sizeof(kind_w) / sizeof(kind_w[0]) ? kind_w[msg.kind] : 1;
        size_t i = (size_t)atol(msg.item_id + 1);
        if (i >= w->cfg.n_items) continue;
        rank_add(ru->items, &ru->p.n_items, w->items[i].id, wt);
        rank_add(ru->seen, &ru->p.n_seen, w->items[i].id, 1);
        rank_add(ru->creators, &ru->p.n_creators, w->items[i].creator_id, wt);
        rank_add(ru->cats, &ru->p.n_categories, w->items[i].category, wt);
    }
    ru->p.items = ru->items;
    ru->p.seen = ru->seen;
    ru->p.creators = ru->creators;
    ru->p.categories = ru->cats;
}

/* The popular list, resolved to slots once as the server's cached lists are. */
static rank_list popular;

static int rank_popular(void *arg, rank_list *out, char *err, size_t errlen) {
    (void)arg, (void)err, (void)errlen;
    *out = popular;
    return 0;
}

static int rank_dcmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Share of a's items that b also holds (pages of one request). */
static double rank_overlap(const rank_result *a, const rank_result *b) {
    size_t same = 0;
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < b->n; j++)
            same += strcmp(a->hits[i].item.item_id, b->hits[j].item.item_id) == 0;
    return a->n ? (double)same / (double)a->n : 1.0;
}

/* What home's seed_nprobe costs its pages: calls requests of home, each
 * also ranked with the seeds searched through the catalog's own nprobe;
 * prints the mean share of each page the full search's page also holds. */
static int rank_seed_quality(catalog *c, rank_user *users, size_t n_users, int calls,
                             const rank_filter *filter, const rank_trending *tr) {
    rank_settings full = *rank_surface("home");
    double overlap = 0;
    uint64_t rng = 11;
    char err[256];
    full.seed_nprobe = 0;
    for (int i = 0; i < calls; i++) {
        size_t u = (size_t)(synth_rand(&rng) % n_users);
        rank_result got, ref;
        rank_request rq = {.profile = &users[u].p, .popular = rank_popular, .limit = 10,
                           .filter = filter, .settings = rank_surface("home"), .creators = 3,
                           .trending = tr, .n_trending = 3};
        if (rank_recommend(c, &rq, &got, err, sizeof(err)) != 0) goto fail;
        rq.settings = &full;
        if (rank_recommend(c, &rq, &ref, err, sizeof(err)) != 0) {
            rank_result_free(&got);
            goto fail;
        }
        overlap += rank_overlap(&got, &ref);
        rank_result_free(&got);
        rank_result_free(&ref);
    }
    printf("quality=home seed_nprobe=%d calls=%d page_overlap_with_full_seed_search=%.4f\n",
           rank_surface("home")->seed_nprobe, calls, overlap / calls);
    return 0;
fail:
    fprintf(stderr, "rank: %s\n", err);
    return 1;
}

int main(int argc, char **argv) {
    size_t n_items = argc > 1 ? (size_t)atol(argv[1]) : 100000;
    size_t n_users = argc > 2 ? (size_t)atol(argv[2]) : 2000;
    int calls = argc > 3 ? atoi(argv[3]) : 500, rounds = argc > 4 ? atoi(argv[4]) : 7;
    synth_config sc;
    synth_world *w;
    catalog_config cfg;
    catalog *c;
    char err[256];
    static const char *exclude[] = {"coffee"};
    rank_filter filter = {.max_price_cents = 20000, .exclude_categories = exclude,
                          .n_exclude_categories = 1};
    if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
    synth_config_default(&sc);
    sc.n_items = n_items;
    sc.n_users = n_users;
    sc.dim = DIM;
    catalog_config_default(&cfg);
    cfg.dim = DIM;
    if (synth_world_new(&sc, &w, err, sizeof(err)) != 0 ||
        catalog_new(&cfg, &c, err, sizeof(err)) != 0) {
        fprintf(stderr, "rank: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < n_items; i++) {
        const synth_item *s = &w->items[i];
        catalog_item it = {.item_id = (char *)s->id, .title = (char *)s->title,
                           .creator_id = (char *)s->creator_id, .category = (char *)s->category,
                           .brand = (char *)s->brand, .price_cents = s->price_cents,
                           .in_stock = s->in_stock, .creator_name = (char *)s->creator_name};
        if (catalog_upsert(c, &it, s->vec, DIM, err, sizeof(err)) != 0) {
            fprintf(stderr, "rank: %s\n", err);
            return 1;
        }
    }
    rank_user *users = calloc(n_users, sizeof(*users));
    rank_entry *pop = calloc(200, sizeof(*pop)), *trend = calloc(3 * 100, sizeof(*trend));
    size_t *slots = calloc(200 + 3 * 100, sizeof(*slots));
    float *qv = calloc((size_t)n_users * DIM, sizeof(float));
    if (!users || !pop || !trend || !slots || !qv) return 1;
    for (size_t u = 0; u < n_users; u++) rank_user_build(w, u, &users[u]);
    for (size_t i = 0; i < 200; i++) pop[i] = (rank_entry){w->items[(i * 7919) % n_items].id, 200.0 - (double)i};
    popular = (rank_list){.items = pop, .n = 200};
    rank_list_resolve(c, &popular, slots);
    rank_trending tr[3];
    for (int k = 0; k < 3; k++) {
        size_t lo = w->cat_start[k], n = w->cat_start[k + 1] - lo;
        for (size_t i = 0; i < 100 && i < n; i++)
            trend[k * 100 + i] = (rank_entry){w->items[w->by_cat[lo + i * 13 % n]].id, 100.0 - (double)i};
        tr[k] = (rank_trending){synth_category(w, k), {.items = trend + k * 100, .n = n < 100 ? n : 100}};
        rank_list_resolve(c, &tr[k].list, slots + 200 + k * 100);
    }
    uint64_t rng = 3;
    for (size_t j = 0; j < (size_t)n_users * DIM; j++) qv[j] = (float)(synth_rand(&rng) % 2001) / 1000.0f - 1.0f;
    const struct {
        const char *name, *surface;
        int filter, extra;
    } rows[] = {{"exact", "", 0, 0}, {"home", "home", 1, 0}, {"home_qv_ctx", "home", 1, 1}};
    enum { NROWS = sizeof(rows) / sizeof(rows[0]) };
    double us[NROWS][MAX_ROUNDS];
    uint64_t sum[NROWS] = {0}; /* the first round's pages, per row */
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < NROWS; k++) {
            double t0 = (double)clock_thread_cpu_us();
            for (int i = 0; i < calls; i++) {
                size_t u = (size_t)(synth_rand(&rng) % n_users);
                char ctx[24];
                rank_result out;
                snprintf(ctx, sizeof(ctx), "p%06zu", (size_t)(synth_rand(&rng) % n_items));
                rank_request rq = {.profile = &users[u].p, .popular = rank_popular, .limit = 10,
                                   .filter = rows[k].filter ? &filter : NULL,
                                   .settings = rank_surface(rows[k].surface),
                                   .query_vector = rows[k].extra ? qv + u * DIM : NULL,
                                   .context_item_id = rows[k].extra ? ctx : NULL,
                                   .creators = 3, .trending = tr, .n_trending = 3};
                if (rank_recommend(c, &rq, &out, err, sizeof(err)) != 0) {
                    fprintf(stderr, "rank: %s\n", err);
                    return 1;
                }
                if (r == 0) sum[k] = pagesum_add(sum[k], &out);
                rank_result_free(&out);
            }
            us[k][r] = ((double)clock_thread_cpu_us() - t0) / calls;
        }
    for (int k = 0; k < NROWS; k++) {
        double best = us[k][0];
        for (int r = 1; r < rounds; r++) best = us[k][r] < best ? us[k][r] : best;
        qsort(us[k], (size_t)rounds, sizeof(double), rank_dcmp);
        printf("surface=%s items=%zu users=%zu calls=%d rounds=%d us_median=%.1f us_best=%.1f "
               "pages=%016llx\n",
               rows[k].name, n_items, n_users, calls, rounds, us[k][rounds / 2], best,
               (unsigned long long)sum[k]);
    }
    if (rank_seed_quality(c, users, n_users, calls, &filter, tr) != 0) return 1;
    free(users);
    free(pop);
    free(trend);
    free(slots);
    free(qv);
    catalog_free(c);
    synth_world_free(w);
    return 0;
}
