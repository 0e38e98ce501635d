/* snaprank: the ranker alone (rank_recommend in this process, no transport,
 * no Redis) on an embedding snapshot, with each user's profile read from a
 * LightGCN-style interaction file ("user item item ..."), every item viewed
 * once: the quality bench's online pass without its servers. Times the
 * exact surface's calls (limit 20) by the calling thread's CPU clock in
 * rounds over a sample of users, prints the median and best round's µs a
 * call and a checksum of the pages (items and reasons), so two builds can be compared on speed
 * and on answers alike.
 *
 *   snaprank SNAPSHOT_ROOT TRAIN [USERS [ROUNDS [MAX_NEIGHBORS [NPROBE]]]]  # 2000 5 0 0
 *
 * NPROBE 0 keeps the catalog's default (IVF lists / 16, at least 8). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/recommend/pagesum.h"
#include "ranker/rank.h"
#include "retrieval/catalog.h"
#include "services/base/clock.h"
#include "services/serve/snapview.h"

#define MAX_ROUNDS 32

/* One user's profile view over the ids it owns. */
typedef struct snap_user {
    rank_entry *items; /* owned; ids owned too */
    rank_profile p;
} snap_user;

/* Reads up to max users of path; returns how many, or -1. */
static long snap_users(const char *path, snap_user *u, long max) {
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    long n = 0;
    if (!f) return -1;
    while (n < max && getline(&line, &cap, f) > 0) {
        size_t got = 0, room = 16;
        char *save = NULL, *tok = strtok_r(line, " \t\n", &save); /* the user */
        u[n].items = malloc(room * sizeof(rank_entry));
        while (u[n].items && (tok = strtok_r(NULL, " \t\n", &save))) {
            if (got == room) u[n].items = realloc(u[n].items, (room *= 2) * sizeof(rank_entry));
            if (!u[n].items) break;
            u[n].items[got++] = (rank_entry){strdup(tok), 1.0};
        }
        if (!u[n].items) break;
        /* Every item viewed once: weighted items and seen alike. */
        u[n].p = (rank_profile){.items = u[n].items, .n_items = got, .seen = u[n].items,
                                .n_seen = got};
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

static int snap_dcmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long want = argc > 3 ? atol(argv[3]) : 2000;
    int rounds = argc > 4 ? atoi(argv[4]) : 5;
    catalog_config cfg;
    snapview sv;
    catalog *c;
    char err[512];
    double us[MAX_ROUNDS];
    uint64_t sum = 0;
    snap_user *users;
    long n;
    if (argc < 3 || want < 1 || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: snaprank SNAPSHOT_ROOT TRAIN [USERS [ROUNDS [MAX_NEIGHBORS [NPROBE]]]]\n");
        return 2;
    }
    if (snapview_open_newest(argv[1], &sv, err, sizeof(err)) != 0) {
        fprintf(stderr, "snaprank: %s\n", err);
        return 1;
    }
    catalog_config_default(&cfg);
    cfg.dim = (int)sv.view.dim;
    cfg.max_neighbours = argc > 5 ? (size_t)atol(argv[5]) : 0;
    cfg.nprobe = argc > 6 ? atoi(argv[6]) : 0;
    if (catalog_new(&cfg, &c, err, sizeof(err)) != 0 ||
        catalog_load_snapshot(c, &sv.view, err, sizeof(err)) != 0) {
        fprintf(stderr, "snaprank: %s\n", err);
        return 1;
    }
    snapview_close(&sv);
    if (!(users = calloc((size_t)want, sizeof(*users))) ||
        (n = snap_users(argv[2], users, want)) <= 0) {
        fprintf(stderr, "snaprank: cannot read users from %s\n", argv[2]);
        return 1;
    }
    for (int r = 0; r < rounds; r++) {
        double t0 = (double)clock_thread_cpu_us();
        for (long i = 0; i < n; i++) {
            rank_result out;
            rank_request rq = {.profile = &users[i].p, .limit = 20, .settings = rank_surface("")};
            if (rank_recommend(c, &rq, &out, err, sizeof(err)) != 0) {
                fprintf(stderr, "snaprank: %s\n", err);
                return 1;
            }
            if (r == 0) sum = pagesum_add(sum, &out);
            rank_result_free(&out);
        }
        us[r] = ((double)clock_thread_cpu_us() - t0) / (double)n;
    }
    double best = us[0];
    for (int r = 1; r < rounds; r++) best = us[r] < best ? us[r] : best;
    qsort(us, (size_t)rounds, sizeof(double), snap_dcmp);
    printf("snapshot users=%ld rounds=%d max_neighbors=%zu nprobe=%d us_median=%.1f "
           "us_best=%.1f pages=%016llx\n",
           n, rounds, cfg.max_neighbours, cfg.nprobe, us[rounds / 2], best, (unsigned long long)sum);
    for (long i = 0; i < n; i++) {
        for (size_t k = 0; k < users[i].p.n_items; k++) free((char *)users[i].items[k].id);
        free(users[i].items);
    }
    free(users);
    catalog_free(c);
    return 0;
}
