/* load: a gRPC load generator on gRPC core for Aisle's unary methods. It
 * builds varied request bodies with protobuf-c before the clock starts (a
 * random user per call, a surface, an optional filter, query vector and
 * context item), keeps calls in flight over several channels from one
 * completion queue per thread, closed loop (a fixed number in flight) or
 * open loop (calls started at a target rate, each within about 0.2 ms of
 * its time, and each call's latency counted from the moment it was due,
 * so a server that falls behind shows it), and
 * prints calls/s, latency percentiles and errors by status code as one
 * "key=value" line. A Python client cannot keep up with the server on a
 * shared machine; this one spends one batch and one event per call.
 *
 *   load --addr HOST:PORT [--method recommend|health|/pkg.Svc/Method]
 *        [--users N | --users-file FILE] [--items N] [--surface S] [--limit N]
 *        [--filter] [--query-dim D] [--context] [--channels K] [--inflight M]
 *        [--rate R] [--seconds S | --calls N] [--warmup N] [--threads T]
 *        [--bodies B] [--seed S] [--label TEXT] */
#include <getopt.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aisle/v1/aisle.pb-c.h"
#include "services/base/clock.h"
#include "services/base/grow.h"

#define LOAD_CODES 17        /* gRPC status codes 0..16 */
#define LOAD_MAX_CHANNELS 64
#define LOAD_DEADLINE_MS 10000
#define LOAD_POLL_US 200 /* open loop: the longest sleep between polls near a call's time */
#define LOAD_MIN(a, b) ((a) < (b) ? (a) : (b))

typedef struct load_opts {
    const char *addr, *method, *surface, *users_file, *label;
    int users, items, limit, filter, query_dim, context;
    int channels, inflight, threads, bodies, warmup;
    double rate, seconds;
    long calls;
    unsigned seed;
} load_opts;

/* The pre-built bodies and the user ids they name. */
typedef struct load_bodies {
    grpc_slice *s; /* n slices, shared by every thread (refcounted) */
    size_t n;
} load_bodies;

/* One call in flight: the single batch's buffers. */
typedef struct load_call {
    grpc_call *call;
    grpc_byte_buffer *send, *recv;
    grpc_metadata_array md_initial, md_trailing;
    grpc_status_code status;
    grpc_slice details;
    int64_t due_us; /* when the call was due to start (open loop) or started */
    int busy;
} load_call;

/* What one phase measured (one thread's, then the merged total). */
typedef struct load_stats {
    int64_t *lat_us;
    size_t n, cap;
    long codes[LOAD_CODES + 1]; /* the last counts codes outside 0..16 */
    int64_t start_us, end_us;
    long late; /* open loop: calls that started after their time (all slots busy) */
} load_stats;

/* One sending thread: its queue, channels and calls. */
typedef struct load_thread {
    const load_opts *o;
    const load_bodies *b;
    grpc_completion_queue *cq;
    grpc_channel *ch[LOAD_MAX_CHANNELS];
    int nch;
    load_call *calls; /* inflight slots */
    int nslots, inflight;
    size_t next_body;
    long issued, limit;    /* calls started; at most limit (or unbounded: -1) */
    double rate;           /* this thread's share, 0 = closed loop */
    int64_t end_us;        /* no call starts after this (0 = none) */
    load_stats st;
    pthread_t tid;
} load_thread;

static uint64_t load_rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double load_gauss(uint64_t *s) {
    double u = ((double)(load_rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    double v = ((double)(load_rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static const char *load_method_path(const char *m) {
    if (strcmp(m, "recommend") == 0) return "/aisle.v1.Recommender/Recommend";
    if (strcmp(m, "health") == 0) return "/grpc.health.v1.Health/Check";
    return m;
}

/* Reads user ids, the first word of each line (a LightGCN file works);
 * *out is malloc'ed with each id (owned by it). Returns the count, or -1. */
static long load_read_users(const char *path, char ***out) {
    FILE *f = fopen(path, "r");
    char line[1 << 16], **ids = NULL;
    size_t n = 0, cap = 0;
    if (!f) return -1;
    while (fgets(line, sizeof(line), f)) {
        char *w = strtok(line, " \t\r\n");
        if (!w) continue;
        if (GROW_ROOM(ids, n, cap, 1024) || !(ids[n] = strdup(w))) break;
        n++;
    }
    fclose(f);
    *out = ids;
    return (long)n;
}

/* One request's bytes as a slice (owned by the caller). */
static grpc_slice load_body(const load_opts *o, char **ids, long nids, uint64_t *rng) {
    Aisle__V1__RecommendRequest rq = AISLE__V1__RECOMMEND_REQUEST__INIT;
    Aisle__V1__Filter f = AISLE__V1__FILTER__INIT;
    static char *exclude[] = {"coffee"};
    char user[32], ctx[32];
    float qv[4096];
    size_t len;
    grpc_slice s;
    if (ids) rq.user_id = ids[load_rng_next(rng) % (uint64_t)nids];
    else snprintf(rq.user_id = user, sizeof(user), "u%05d", (int)(load_rng_next(rng) % (uint64_t)o->users));
    rq.limit = o->limit;
    rq.surface = (char *)o->surface;
    if (o->filter) {
        /* The bench's filter: a price ceiling and one excluded category. */
        f.max_price_cents = 20000;
        f.exclude_categories = exclude;
        f.n_exclude_categories = 1;
        rq.filter = &f;
    }
    for (int j = 0; j < o->query_dim; j++) qv[j] = (float)load_gauss(rng);
    rq.query_vector = qv;
    rq.n_query_vector = (size_t)o->query_dim;
    if (o->context) snprintf(rq.context_item_id = ctx, sizeof(ctx), "p%06d",
                             (int)(load_rng_next(rng) % (uint64_t)o->items));
    len = aisle__v1__recommend_request__get_packed_size(&rq);
    s = grpc_slice_malloc(len);
    aisle__v1__recommend_request__pack(&rq, GRPC_SLICE_START_PTR(s));
    return s;
}

/* Builds o->bodies bodies (the health method takes an empty one). */
static int load_bodies_build(const load_opts *o, load_bodies *b) {
    char **ids = NULL;
    long nids = 0;
    uint64_t rng = 0x9E3779B97F4A7C15ULL ^ o->seed;
    int health = strcmp(load_method_path(o->method), "/grpc.health.v1.Health/Check") == 0;
    if (o->users_file && !health && (nids = load_read_users(o->users_file, &ids)) <= 0) {
        fprintf(stderr, "load: no user ids in %s\n", o->users_file);
        return -1;
    }
    b->n = health ? 1 : (size_t)o->bodies;
    if (!(b->s = malloc(b->n * sizeof(*b->s)))) return -1;
    for (size_t i = 0; i < b->n; i++)
        b->s[i] = health ? grpc_empty_slice() : load_body(o, ids, nids, &rng);
    for (long i = 0; i < nids; i++) free(ids[i]);
    free(ids);
    return 0;
}

static int load_stats_add(load_stats *st, int64_t us) {
    if (GROW_ROOM(st->lat_us, st->n, st->cap, 1 << 16)) return -1;
    st->lat_us[st->n++] = us;
    return 0;
}

/* Starts the next body on slot c over the thread's next channel. */
static int load_start(load_thread *t, load_call *c, int64_t due_us) {
    grpc_op ops[6];
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(LOAD_DEADLINE_MS, GPR_TIMESPAN));
    grpc_slice body = t->b->s[t->next_body++ % t->b->n];
    memset(ops, 0, sizeof(ops));
    memset(c, 0, sizeof(*c));
    grpc_metadata_array_init(&c->md_initial);
    grpc_metadata_array_init(&c->md_trailing);
    c->send = grpc_raw_byte_buffer_create(&body, 1); /* refs the shared slice */
    c->call = grpc_channel_create_call(t->ch[t->issued % t->nch], NULL, GRPC_PROPAGATE_DEFAULTS,
                                       t->cq, grpc_slice_from_static_string(
                                                  load_method_path(t->o->method)),
                                       NULL, deadline, NULL);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = c->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->md_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &c->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &c->md_trailing;
    ops[5].data.recv_status_on_client.status = &c->status;
    ops[5].data.recv_status_on_client.status_details = &c->details;
    c->due_us = due_us;
    c->busy = 1;
    t->issued++;
    t->inflight++;
    if (grpc_call_start_batch(c->call, ops, 6, c, NULL) != GRPC_CALL_OK) {
        fprintf(stderr, "load: a call could not start\n");
        return -1;
    }
    return 0;
}

/* Records a finished call and frees its buffers. */
static int load_finish(load_thread *t, load_call *c, int ok) {
    int code = ok ? (int)c->status : GRPC_STATUS_INTERNAL;
    int rc = load_stats_add(&t->st, clock_mono_us() - c->due_us);
    t->st.codes[code >= 0 && code < LOAD_CODES ? code : LOAD_CODES]++;
    grpc_byte_buffer_destroy(c->send);
    if (c->recv) grpc_byte_buffer_destroy(c->recv);
    grpc_metadata_array_destroy(&c->md_initial);
    grpc_metadata_array_destroy(&c->md_trailing);
    grpc_slice_unref(c->details);
    grpc_call_unref(c->call);
    c->busy = 0;
    t->inflight--;
    return rc;
}

static load_call *load_free_slot(load_thread *t) {
    for (int i = 0; i < t->nslots; i++)
        if (!t->calls[i].busy) return &t->calls[i];
    return NULL;
}

static int load_more(const load_thread *t, int64_t now) {
    return (t->limit < 0 || t->issued < t->limit) && (!t->end_us || now < t->end_us);
}

/* Starts every call that is due: closed loop, until every slot is busy;
 * open loop, those whose time has come (late ones when a slot frees).
 * Returns when the next one is due (INT64_MAX: on a completion), or -1. */
static int64_t load_fill(load_thread *t) {
    int64_t now = clock_mono_us();
    load_call *c;
    while (load_more(t, now) && (c = load_free_slot(t))) {
        int64_t due = t->rate > 0 ? t->st.start_us + (int64_t)(t->issued * 1e6 / t->rate) : now;
        if (due > now) return due;
        if (now - due > 1000) t->st.late++;
        if (load_start(t, c, due) != 0) return -1;
    }
    return INT64_MAX;
}

/* How long to wait in the completion queue for a call due at next (µs;
 * INT64_MAX: none is due, wait for a completion). A queue's wait ends on
 * whole milliseconds (gRPC 1.51 rounds its deadline up and epoll waits in
 * ms), which at 2,400 calls/s started a sixth of the open loop's calls
 * over 1 ms late and doubled the empty method's median. So with more
 * than 2 ms to go the queue waits all but the last millisecond (its
 * rounding up then ends it before the call's time), and the rest is
 * spent polling it between high-resolution sleeps of at most LOAD_POLL_US:
 * a call starts, and a completion is seen, within that of its time (for
 * +4 to +8 % of a core at 2,000 to 2,400 calls/s). */
static gpr_timespec load_wait(int64_t next) {
    int64_t now = clock_mono_us(), wait = next == INT64_MAX ? 1000000 : next - now;
    if (wait > 2000)
        return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                            gpr_time_from_micros(wait - 1000, GPR_TIMESPAN));
    return gpr_inf_past(GPR_CLOCK_MONOTONIC);
}

static void *load_thread_main(void *arg) {
    load_thread *t = arg;
    t->st.start_us = clock_mono_us();
    for (;;) {
        int64_t next = load_fill(t);
        grpc_event ev;
        if (next < 0) break;
        if (t->inflight == 0 && !load_more(t, clock_mono_us())) break;
        ev = grpc_completion_queue_next(t->cq, load_wait(next), NULL);
        if (ev.type == GRPC_OP_COMPLETE && load_finish(t, ev.tag, ev.success) != 0) break;
        if (ev.type == GRPC_QUEUE_TIMEOUT && next != INT64_MAX)
            clock_sleep_until_us(LOAD_MIN(next, clock_mono_us() + LOAD_POLL_US));
    }
    t->st.end_us = clock_mono_us();
    return NULL;
}

/* K channels, each with a connection of its own (a local subchannel pool:
 * channels with the same target would otherwise share one). */
static int load_connect(load_thread *t, int nch) {
    grpc_arg a = {GRPC_ARG_INTEGER, GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, {.integer = 1}};
    grpc_channel_args args = {1, &a};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    t->nch = nch;
    for (int i = 0; i < nch; i++) t->ch[i] = grpc_channel_create(t->o->addr, creds, &args);
    grpc_channel_credentials_release(creds);
    t->cq = grpc_completion_queue_create_for_next(NULL);
    t->calls = calloc((size_t)t->nslots, sizeof(*t->calls));
    return t->calls ? 0 : -1;
}

/* Every call has finished: frees the threads, channels and bodies. */
static void load_close(const load_opts *o, load_thread *ts, load_bodies *b) {
    for (int i = 0; i < o->threads; i++) {
        load_thread *t = &ts[i];
        for (int k = 0; k < t->nch; k++) grpc_channel_destroy(t->ch[k]);
        grpc_completion_queue_shutdown(t->cq);
        while (grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(t->cq);
        free(t->calls);
        free(t->st.lat_us);
    }
    free(ts);
    for (size_t i = 0; i < b->n; i++) grpc_slice_unref(b->s[i]);
    free(b->s);
    grpc_shutdown();
}

static int load_cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double load_pct(const load_stats *st, double p) {
    size_t i = (size_t)(st->n * p / 100);
    return st->n ? st->lat_us[i < st->n ? i : st->n - 1] / 1000.0 : 0;
}

/* Merges the threads' figures and prints them. */
static void load_report(const load_opts *o, load_thread *ts, const char *phase) {
    load_stats all = {0};
    long ok;
    all.start_us = INT64_MAX;
    for (int i = 0; i < o->threads; i++) {
        load_stats *st = &ts[i].st;
        for (size_t k = 0; k < st->n; k++) load_stats_add(&all, st->lat_us[k]);
        for (int k = 0; k <= LOAD_CODES; k++) all.codes[k] += st->codes[k];
        all.late += st->late;
        if (st->start_us < all.start_us) all.start_us = st->start_us;
        if (st->end_us > all.end_us) all.end_us = st->end_us;
    }
    qsort(all.lat_us, all.n, sizeof(*all.lat_us), load_cmp64);
    ok = all.codes[0];
    printf("%s%s phase=%s calls=%zu ok=%ld seconds=%.3f calls_per_s=%.1f p50_ms=%.3f "
           "p99_ms=%.3f p999_ms=%.3f max_ms=%.3f late=%ld errors=",
           o->label ? "label=" : "", o->label ? o->label : "", phase, all.n, ok,
           (all.end_us - all.start_us) / 1e6, all.n * 1e6 / (double)(all.end_us - all.start_us + 1),
           load_pct(&all, 50), load_pct(&all, 99), load_pct(&all, 99.9),
           all.n ? all.lat_us[all.n - 1] / 1000.0 : 0, all.late);
    for (int k = 1, first = 1; k <= LOAD_CODES; k++)
        if (all.codes[k]) {
            printf("%s%d:%ld", first ? "" : ",", k, all.codes[k]);
            first = 0;
        }
    if (all.n == (size_t)ok) printf("none");
    printf("\n");
    fflush(stdout);
    free(all.lat_us);
}

/* Runs one phase on every thread: calls (or, with 0, seconds) in all. */
static void load_phase(const load_opts *o, load_thread *ts, long calls, double seconds) {
    int64_t end = seconds > 0 ? clock_mono_us() + (int64_t)(seconds * 1e6) : 0;
    for (int i = 0; i < o->threads; i++) {
        load_thread *t = &ts[i];
        t->issued = 0;
        t->limit = calls > 0 ? calls / o->threads + (i < calls % o->threads) : -1;
        t->rate = o->rate / o->threads;
        t->end_us = end;
        t->st.n = 0;
        memset(t->st.codes, 0, sizeof(t->st.codes));
        t->st.late = 0;
        pthread_create(&t->tid, NULL, load_thread_main, t);
    }
    for (int i = 0; i < o->threads; i++) pthread_join(ts[i].tid, NULL);
}

static void load_usage(void) {
    fprintf(stderr,
            "usage: load --addr HOST:PORT [--method recommend|health|PATH] [--users N]\n"
            "  [--users-file FILE] [--items N] [--surface S] [--limit N] [--filter]\n"
            "  [--query-dim D] [--context] [--channels K] [--inflight M] [--rate R]\n"
            "  [--seconds S | --calls N] [--warmup N] [--threads T] [--bodies B]\n"
            "  [--seed S] [--label TEXT]\n");
}

static int load_parse(int argc, char **argv, load_opts *o) {
    static const struct option lo[] = {
        {"addr", 1, 0, 'a'},     {"method", 1, 0, 'm'},   {"users", 1, 0, 'u'},
        {"users-file", 1, 0, 'U'}, {"items", 1, 0, 'i'},  {"surface", 1, 0, 's'},
        {"limit", 1, 0, 'l'},    {"filter", 0, 0, 'f'},   {"query-dim", 1, 0, 'q'},
        {"context", 0, 0, 'x'},  {"channels", 1, 0, 'k'}, {"inflight", 1, 0, 'n'},
        {"rate", 1, 0, 'r'},     {"seconds", 1, 0, 'd'},  {"calls", 1, 0, 'c'},
        {"warmup", 1, 0, 'w'},   {"threads", 1, 0, 't'},  {"bodies", 1, 0, 'b'},
        {"seed", 1, 0, 'S'},     {"label", 1, 0, 'L'},    {0, 0, 0, 0}};
    int ch;
    *o = (load_opts){.method = "recommend", .surface = "", .users = 100000, .items = 100000,
                     .limit = 10, .channels = 4, .inflight = 64, .threads = 1,
                     .bodies = 65536, .warmup = 2000, .seed = 1};
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'a': o->addr = optarg; break;
        case 'm': o->method = optarg; break;
        case 'u': o->users = atoi(optarg); break;
        case 'U': o->users_file = optarg; break;
        case 'i': o->items = atoi(optarg); break;
        case 's': o->surface = optarg; break;
        case 'l': o->limit = atoi(optarg); break;
        case 'f': o->filter = 1; break;
        case 'q': o->query_dim = atoi(optarg); break;
        case 'x': o->context = 1; break;
        case 'k': o->channels = atoi(optarg); break;
        case 'n': o->inflight = atoi(optarg); break;
        case 'r': o->rate = atof(optarg); break;
        case 'd': o->seconds = atof(optarg); break;
        case 'c': o->calls = atol(optarg); break;
        case 'w': o->warmup = atoi(optarg); break;
        case 't': o->threads = atoi(optarg); break;
        case 'b': o->bodies = atoi(optarg); break;
        case 'S': o->seed = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'L': o->label = optarg; break;
        default: return -1;
        }
    }
    if (!o->seconds && !o->calls) o->seconds = 10;
    return o->addr && o->users > 0 && o->items > 0 && o->threads > 0 &&
                   o->channels >= o->threads && o->channels / o->threads <= LOAD_MAX_CHANNELS &&
                   o->inflight >= o->threads && o->bodies > 0 && o->query_dim >= 0 &&
                   o->query_dim <= 4096 && o->rate >= 0
               ? 0
               : -1;
}

int main(int argc, char **argv) {
    load_opts o;
    load_bodies b;
    load_thread *ts;
    if (load_parse(argc, argv, &o) != 0) {
        load_usage();
        return 2;
    }
    grpc_init();
    if (load_bodies_build(&o, &b) != 0 || !(ts = calloc((size_t)o.threads, sizeof(*ts)))) return 1;
    for (int i = 0; i < o.threads; i++) {
        ts[i] = (load_thread){.o = &o, .b = &b, .next_body = (size_t)i * b.n / (size_t)o.threads,
                              .nslots = o.inflight / o.threads + (i < o.inflight % o.threads)};
        if (load_connect(&ts[i], o.channels / o.threads) != 0) return 1;
    }
    if (o.warmup > 0) {
        /* Connects every channel and warms the server, closed loop. */
        double rate = o.rate;
        o.rate = 0;
        load_phase(&o, ts, o.warmup, 0);
        o.rate = rate;
    }
    load_phase(&o, ts, o.calls, o.calls ? 0 : o.seconds);
    load_report(&o, ts, o.rate > 0 ? "open" : "closed");
    load_close(&o, ts, &b);
    return 0;
}
