/* council: parallel sub-agents, a merge deadline and shared ownership. */
#include "services/shop/council.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "services/base/clock.h"
#include "services/base/status.h"

#define COUNCIL_POLL_MS 5 /* how often a waiting request checks for cancellation */

struct council {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs;   /* the request, plus each thread still running */
    int closed; /* the request merged: late agents no longer finish */
    council_agent *agents;
    size_t n;
    recommend_user *user; /* owned */
};

typedef struct council_job {
    council *c;
    council_agent *a;
    council_group *g;
    council_fn fn;
    void *arg;
} council_job;

void council_group_init(council_group *g, int max_running) {
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->running = 0;
    g->max_running = max_running;
}

/* Takes a place in the group for one more thread, unless it is full. */
static int council_group_enter(council_group *g) {
    int ok;
    pthread_mutex_lock(&g->lock);
    ok = !g->max_running || g->running < g->max_running;
    g->running += ok;
    pthread_mutex_unlock(&g->lock);
    return ok;
}

static void council_group_leave(council_group *g) {
    pthread_mutex_lock(&g->lock);
    g->running--;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

void council_group_drain(council_group *g) {
    pthread_mutex_lock(&g->lock);
    while (g->running) pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
}

static void council_user_free(recommend_user *u) {
    if (!u) return;
    recommend_user_clear(u);
    free(u);
}

int council_new(size_t n, recommend_user *user, council **out) {
    council *c = calloc(1, sizeof(*c));
    *out = NULL;
    if (!c || !(c->agents = calloc(n ? n : 1, sizeof(*c->agents)))) {
        free(c);
        council_user_free(user);
        return AISLE_ENOMEM;
    }
    c->user = user;
    for (size_t i = 0; i < n; i++) c->agents[i].user = user;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->refs = 1;
    c->n = n;
    *out = c;
    return AISLE_OK;
}

size_t council_size(const council *c) { return c->n; }
council_agent *council_agent_at(council *c, size_t i) { return &c->agents[i]; }

/* Drops one reference; the last frees everything. */
static void council_unref(council *c) {
    int last;
    pthread_mutex_lock(&c->lock);
    last = --c->refs == 0;
    pthread_mutex_unlock(&c->lock);
    if (!last) return;
    for (size_t i = 0; i < c->n; i++) rank_result_free(&c->agents[i].found);
    council_user_free(c->user);
    free(c->agents);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}

static void *council_thread(void *arg) {
    council_job *j = arg;
    council_group *g = j->g;
    j->fn(j->a, j->arg);
    pthread_mutex_lock(&j->c->lock);
    if (!j->c->closed) j->a->finished = 1;
    pthread_cond_broadcast(&j->c->cond);
    pthread_mutex_unlock(&j->c->lock);
    council_unref(j->c);
    free(j);
    council_group_leave(g);
    return NULL;
}

void council_start(council *c, council_group *g, council_fn fn, void *arg) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (size_t i = 0; i < c->n; i++) {
        council_job *j;
        pthread_t t;
        council_agent *a = &c->agents[i];
        if (!a->skip && !council_group_enter(g)) {
            a->skip = 1;
            snprintf(a->summary, sizeof(a->summary), "%s: not run, too many sub-agents busy.",
                     a->angle);
        }
        if (a->skip) {
            a->finished = 1;
            continue;
        }
        if (!(j = malloc(sizeof(*j)))) {
            council_group_leave(g);
            continue;
        }
        *j = (council_job){c, a, g, fn, arg};
        pthread_mutex_lock(&c->lock);
        c->refs++;
        pthread_mutex_unlock(&c->lock);
        if (pthread_create(&t, &attr, council_thread, j) != 0) {
            council_group_leave(g);
            free(j);
            council_unref(c); /* never the last: the request holds one */
        }
    }
    pthread_attr_destroy(&attr);
}

static size_t council_finished(const council *c) {
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++) n += c->agents[i].finished;
    return n;
}

size_t council_wait(council *c, int64_t deadline_ms, int (*stop)(void *), void *stop_arg) {
    size_t n;
    pthread_mutex_lock(&c->lock);
    while ((n = council_finished(c)) < c->n) {
        int64_t now = clock_mono_ms(), wake;
        struct timespec ts;
        if (now >= deadline_ms) break;
        /* Cancellation cannot signal this condition; poll it. */
        if (stop) {
            pthread_mutex_unlock(&c->lock);
            int stopped = stop(stop_arg);
            pthread_mutex_lock(&c->lock);
            if (stopped) break;
        }
        wake = deadline_ms - now < COUNCIL_POLL_MS || !stop ? deadline_ms : now + COUNCIL_POLL_MS;
        clock_gettime(CLOCK_REALTIME, &ts);
        wake -= now; /* the condition waits on the realtime clock */
        ts.tv_sec += wake / 1000;
        ts.tv_nsec += (long)(wake % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->cond, &c->lock, &ts);
    }
    n = council_finished(c);
    c->closed = 1;
    pthread_mutex_unlock(&c->lock);
    return n;
}

static int council_taken(const rank_hit **picks, size_t n, const char *id) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(picks[i]->item.item_id, id) == 0) return 1;
    return 0;
}

size_t council_merge(council *c, size_t limit, const rank_hit **picks, const char **angles) {
    size_t n = 0, *next = calloc(c->n ? c->n : 1, sizeof(*next));
    int progress = 1;
    if (!next) return 0;
    /* Round-robin: each angle gets its best remaining pick in turn, so the
     * answer shows every angle that found something before any gets two. */
    while (n < limit && progress) {
        progress = 0;
        for (size_t i = 0; i < c->n && n < limit; i++) {
            council_agent *a = &c->agents[i];
            if (!a->finished) continue;
            while (next[i] < a->n_picks &&
                   council_taken(picks, n, a->found.hits[next[i]].item.item_id))
                next[i]++;
            if (next[i] == a->n_picks) continue;
            picks[n] = &a->found.hits[next[i]++];
            angles[n++] = a->angle;
            a->used = 1;
            progress = 1;
        }
    }
    free(next);
    return n;
}

void council_release(council *c) { council_unref(c); }
