/* council: sub-agents working on one shopping request in parallel.
 *
 * Contemplating mode looks at a request from several angles at once (best
 * match, budget, favourite creators, something new ...). Each angle is an
 * agent on its own thread with its own retrieval; the request waits for
 * them until its merge deadline and then builds one answer from those
 * that finished. An agent still running at the deadline is dropped: the
 * request never reads it again, and the agent's thread finishes on its
 * own. The council is shared by the request and its threads and freed by
 * whichever lets go last, so a request never waits past its deadline for a
 * slow agent. A council_group counts the threads still running, so their
 * owner can wait for them before freeing what they use (the catalog, the
 * Redis connections). */
#ifndef AISLE_COUNCIL_H
#define AISLE_COUNCIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "ranker/rank.h"
#include "services/recommend/recommend.h"
#include "services/shop/query.h"

typedef struct council_agent {
    /* Set by the caller before council_start. */
    const char *angle;      /* "best match", "budget" ... (static) */
    int kind;               /* the caller's tag */
    int skip;               /* nothing to do (no favourite creator yet ...):
                               finished at once, with summary set */
    catalog *cat;           /* borrowed; outlives the group */
    const recommend_user *user; /* the call's one read of the profile, owned
                                   by the council: every agent sees the same */
    query_constraints want; /* the request's constraints plus the angle's */
    int limit;
    /* Written by the agent's thread; read only once it finished in time. */
    rank_result found;      /* best first; the agent's picks are the first n_picks */
    size_t n_picks;
    char summary[512];      /* its draft, in one sentence */
    int finished;           /* done before the merge (or skipped) */
    int used;               /* the merged answer took one of its picks */
} council_agent;

/* Runs on the agent's thread; fills a->found, a->n_picks and a->summary. */
typedef void (*council_fn)(council_agent *a, void *arg);

typedef struct council_group {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int running;     /* agent threads not yet finished */
    int max_running; /* at most this many at once; 0: no cap */
} council_group;

/* max_running caps the agent threads of every council of the group, late
 * ones included, so a burst of requests cannot start threads without
 * bound; 0 means no cap. */
void council_group_init(council_group *g, int max_running);
/* Waits until no agent thread of the group runs, then destroys it. */
void council_group_drain(council_group *g);

typedef struct council council;

/* A council of n zeroed agents, each pointing at user. The council takes
 * user (malloc'ed, loaded) and frees it with the council, so agents that
 * outlive the request can still read it. Returns AISLE_OK, or AISLE_ENOMEM
 * (user is then freed too). */
int council_new(size_t n, recommend_user *user, council **out);
size_t council_size(const council *c);
council_agent *council_agent_at(council *c, size_t i);

/* Starts a thread per agent that is not skipped, running fn(agent, arg);
 * arg must stay valid until council_group_drain(g) returns. An agent that
 * would pass the group's cap is not run: it finishes at once with nothing
 * found and a summary that says so. An agent whose thread cannot start
 * just never finishes. */
void council_start(council *c, council_group *g, council_fn fn, void *arg);

/* Waits until every agent finished, deadline_ms (clock_mono_ms) passes or
 * stop(stop_arg) is non-zero (polled every few milliseconds; stop may be
 * NULL). Afterwards the agents that finished are fixed and may be read;
 * the others are never finished. Returns how many finished. */
size_t council_wait(council *c, int64_t deadline_ms, int (*stop)(void *), void *stop_arg);

/* One answer from the finished agents: their picks round-robin, in agent
 * order, without repeating an item, up to limit. picks[i] points into an
 * agent's result and angles[i] is its angle (both valid until
 * council_release). Marks the agents whose picks were taken as used.
 * Returns the number of picks. */
size_t council_merge(council *c, size_t limit, const rank_hit **picks, const char **angles);

/* The request lets go; the last running agent frees the council. */
void council_release(council *c);

#endif
