/* ingest: batch loop of the signal consumer (see ingest.h for guarantees). */
#include "services/ingest/ingest.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aisle/v1/events.pb-c.h"
#include "services/base/clock.h"
#include "services/base/log.h"
#include "services/base/status.h"
#include "services/ingest/facts.h"
#include "services/ingest/signal.h"
#include "services/kafka/kafka.h"

#define INGEST_FLUSH_MS 5000
#define INGEST_CATALOG_WAIT_MS 10000 /* catalog read before signals, at most */
#define INGEST_ORIGIN_MAX 300        /* "topic:partition" */
#define INGEST_WHY_MAX 512           /* a dead letter's reason (a refusal names two keys) */
#define INGEST_BACKOFF_MAX_MS 5000
/* Commits sent and not answered yet, at most: past it a batch waits for
 * the answers (a slow coordinator then paces the worker). */
#define INGEST_COMMITS_IN_FLIGHT 16
/* Popularity summed this long before it is written (profile.h): a busy
 * worker then writes each popular list about 5 times a second, not once a
 * batch; an idle one writes it at once. */
#define INGEST_POPULAR_DELAY_MS 200
#define INGEST_IDLE_WAIT_MS 100 /* for a first message, with nothing in hand */

typedef struct ingest_batch {
    rd_kafka_message_t **msgs;
    Aisle__V1__Signal **sigs; /* decoded good signals, sigs[i] from msgs[at[i]] */
    size_t *at;
    profile_event *events;    /* one per good signal */
    char *refused;            /* per good signal, profile_apply's verdict */
    char (*origins)[INGEST_ORIGIN_MAX];
    /* Per message: why it is a dead letter ("" for a good one), and whether
     * its dead letter's delivery is confirmed (set by the report). */
    char (*why)[INGEST_WHY_MAX];
    unsigned char *delivered;
    size_t n_msgs, n_sigs;
} ingest_batch;

typedef struct ingest_worker {
    const ingest_config *cfg;
    ingest_stats *stats;
    atomic_int *stop;
    rd_kafka_t *consumer;
    rd_kafka_t *dlq;
    profile_store *profiles;
    facts *facts; /* NULL without a catalog topic */
    ingest_batch *batch;  /* the batch in hand, for the delivery reports */
    int waiting;          /* partitions paused (Redis or the dead-letter topic is
                           * away): partitions assigned meanwhile are paused too */
    rd_kafka_queue_t *commits; /* where the answers to our commits arrive */
    int commits_in_flight;
    int popular_failing; /* the last popularity write failed (logged once) */
    int64_t next_stats_ms;
    uint64_t last_consumed;
} ingest_worker;

void ingest_config_default(ingest_config *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->group = "aisle-ingest";
    cfg->topic = KAFKA_TOPIC_SIGNALS;
    cfg->dlq_topic = KAFKA_TOPIC_DLQ;
    cfg->catalog_topic = KAFKA_TOPIC_CATALOG;
    cfg->batch_max = 500;
    cfg->stats_interval_ms = 10000;
    profile_config_default(&cfg->profile);
    cfg->profile.popular_delay_ms = INGEST_POPULAR_DELAY_MS;
}

int ingest_check_kafka_opt(const char *opt, char *err, size_t errlen) {
    const char *eq = strchr(opt, '=');
    if (!eq || eq == opt)
        return status_fail(AISLE_EINVAL, err, errlen, "'%s' is not KEY=VALUE", opt);
    return AISLE_OK;
}

static void ingest_batch_reset(ingest_batch *b) {
    for (size_t i = 0; i < b->n_msgs; i++) rd_kafka_message_destroy(b->msgs[i]);
    for (size_t i = 0; i < b->n_sigs; i++)
        aisle__v1__signal__free_unpacked(b->sigs[i], NULL);
    b->n_msgs = b->n_sigs = 0;
}

/* Room for nb messages in b. Returns AISLE_OK or AISLE_ENOMEM (free b
 * with ingest_batch_free either way). */
static int ingest_batch_alloc(ingest_batch *b, size_t nb) {
    b->msgs = calloc(nb, sizeof(*b->msgs));
    b->sigs = calloc(nb, sizeof(*b->sigs));
    b->at = calloc(nb, sizeof(*b->at));
    b->events = calloc(nb, sizeof(*b->events));
    b->refused = calloc(nb, 1);
    b->origins = calloc(nb, sizeof(*b->origins));
    b->why = calloc(nb, sizeof(*b->why));
    b->delivered = calloc(nb, 1);
    return b->msgs && b->sigs && b->at && b->events && b->refused && b->origins && b->why &&
                   b->delivered
               ? AISLE_OK
               : AISLE_ENOMEM;
}

static void ingest_batch_free(ingest_batch *b) {
    ingest_batch_reset(b);
    free(b->msgs);
    free(b->sigs);
    free(b->at);
    free(b->events);
    free(b->refused);
    free(b->origins);
    free(b->why);
    free(b->delivered);
}

/* The number of dead letters in the batch: the messages refused on
 * decoding, and those whose user's profile could not be read. */
static size_t ingest_n_dead(const ingest_batch *b) {
    size_t n = 0;
    for (size_t i = 0; i < b->n_msgs; i++) n += b->why[i][0] != 0;
    return n;
}

/* Queues message i of the batch for the dead-letter topic, with where it
 * came from and why it was refused in its headers; its delivery report
 * finds it again by i. A value too large for the producer goes without it
 * (the headers say so); a full queue is waited out. Returns AISLE_OK, or
 * AISLE_EIO when the producer refused it otherwise. */
static int ingest_dead_letter(ingest_worker *w, const ingest_batch *b, size_t i) {
    const rd_kafka_message_t *m = b->msgs[i];
    char part[16], off[24], why[INGEST_WHY_MAX + 96];
    const void *value = m->payload;
    size_t len = m->len;
    rd_kafka_resp_err_t e;
    snprintf(part, sizeof(part), "%d", (int)m->partition);
    snprintf(off, sizeof(off), "%lld", (long long)m->offset);
    snprintf(why, sizeof(why), "%s", b->why[i]);
    log_warn("ingest", "dead-lettering %s[%d]@%lld: %s", rd_kafka_topic_name(m->rkt),
             (int)m->partition, (long long)m->offset, b->why[i]);
    for (;;) {
        e = rd_kafka_producev(
            w->dlq, RD_KAFKA_V_TOPIC(w->cfg->dlq_topic), RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)i),
            RD_KAFKA_V_HEADER("aisle-origin-topic", rd_kafka_topic_name(m->rkt), -1),
            RD_KAFKA_V_HEADER("aisle-origin-partition", part, -1),
            RD_KAFKA_V_HEADER("aisle-origin-offset", off, -1),
            RD_KAFKA_V_HEADER("aisle-error", why, -1), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(w->dlq, 100); /* deliveries make room */
        } else if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && value) {
            snprintf(why, sizeof(why), "%s; value of %zu bytes left out: too large for %s",
                     b->why[i], m->len, w->cfg->dlq_topic);
            value = NULL;
            len = 0;
        } else {
            break;
        }
    }
    if (e) {
        log_error("ingest", "dead-letter send refused: %s", rd_kafka_err2str(e));
        return AISLE_EIO;
    }
    return AISLE_OK;
}

/* Delivery report of a dead letter: marks it delivered; one that failed
 * stays undelivered and is sent again before the batch is committed. A
 * report after a stop gave the batch up (the final flush) changes nothing:
 * that batch is not committed and will be read again. */
static void ingest_dlq_report(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    ingest_worker *w = opaque;
    size_t i = (size_t)(uintptr_t)m->_private;
    const rd_kafka_message_t *src;
    (void)rk;
    if (!w->batch) return;
    assert(i < w->batch->n_msgs);
    src = w->batch->msgs[i];
    if (m->err)
        log_warn("ingest", "dead letter of %s[%d]@%lld not delivered: %s",
                 rd_kafka_topic_name(src->rkt), (int)src->partition, (long long)src->offset,
                 rd_kafka_err2str(m->err));
    else
        w->batch->delivered[i] = 1;
}

/* Fills the batch's profile events: origin and offset, and the item's
 * category and brand as the catalog has them now. A fetch hands over a
 * partition's messages together, so an event shares the origin text of
 * the one before when they come from the same partition (formatting it
 * for each was a few per cent of the worker's time). */
static void ingest_events(ingest_worker *w, ingest_batch *b) {
    for (size_t i = 0; i < b->n_sigs; i++) {
        const rd_kafka_message_t *m = b->msgs[b->at[i]], *prev = i ? b->msgs[b->at[i - 1]] : NULL;
        profile_event *e = &b->events[i];
        e->origin = b->origins[i];
        if (prev && prev->rkt == m->rkt && prev->partition == m->partition)
            e->origin = b->events[i - 1].origin;
        else
            snprintf(b->origins[i], INGEST_ORIGIN_MAX, "%s:%d", rd_kafka_topic_name(m->rkt),
                     (int)m->partition);
        e->sig = b->sigs[i];
        e->offset = m->offset;
        e->produced_ms = rd_kafka_message_timestamp(m, NULL);
        e->category = e->brand = NULL;
        if (w->facts && e->sig->item_id && *e->sig->item_id)
            facts_lookup(w->facts, e->sig->item_id, &e->category, &e->brand);
    }
}

/* Decodes and checks each message (services/ingest/signal.h): good ones
 * join the batch's signals, bad ones get the reason they are refused. */
static void ingest_decode(ingest_worker *w, ingest_batch *b) {
    int64_t now = clock_wall_ms();
    for (size_t i = 0; i < b->n_msgs; i++) {
        const rd_kafka_message_t *m = b->msgs[i];
        Aisle__V1__Signal *s;
        b->why[i][0] = 0;
        b->delivered[i] = 0;
        if (signal_decode(m->payload, m->len, now, &s, b->why[i], INGEST_WHY_MAX) != AISLE_OK)
            continue;
        b->at[b->n_sigs] = i;
        b->sigs[b->n_sigs++] = s;
    }
    ingest_events(w, b);
}

/* Queues the dead letters of the batch not delivered yet. Returns AISLE_OK,
 * or AISLE_EIO when the producer refused one. */
static int ingest_send_dead_letters(ingest_worker *w, ingest_batch *b) {
    for (size_t i = 0; i < b->n_msgs; i++)
        if (b->why[i][0] && !b->delivered[i] && ingest_dead_letter(w, b, i)) return AISLE_EIO;
    return AISLE_OK;
}

/* Pauses or resumes all assigned partitions, so an outage does not pile up
 * messages in memory while the consumer keeps its group membership. */
static void ingest_pause(ingest_worker *w, int pause) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    w->waiting = pause;
    if (rd_kafka_assignment(w->consumer, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
    if (pause)
        rd_kafka_pause_partitions(w->consumer, parts);
    else
        rd_kafka_resume_partitions(w->consumer, parts);
    rd_kafka_topic_partition_list_destroy(parts);
}

/* Takes a rebalance's partitions (eagerly or incrementally, as the group's
 * protocol says). While the worker waits, what it is given is paused at
 * once: a message read now would be dropped and later committed past;
 * otherwise it is resumed. */
static void ingest_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                             rd_kafka_topic_partition_list_t *parts, void *opaque) {
    ingest_worker *w = opaque;
    int cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t fail = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            fail = rd_kafka_assign(rk, parts);
        /* librdkafka keeps a partition's pause across assignments: one
         * paused during an earlier wait and revoked before the resume
         * would come back paused for good. */
        if (w->waiting)
            rd_kafka_pause_partitions(rk, parts);
        else
            rd_kafka_resume_partitions(rk, parts);
        log_info("ingest", "assigned %d partitions%s", parts->cnt,
                 w->waiting ? " (paused while Redis is away)" : "");
    } else if (cooperative) {
        error = rd_kafka_incremental_unassign(rk, parts);
    } else {
        fail = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        log_error("ingest", "rebalance: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (fail) {
        log_error("ingest", "rebalance: %s", rd_kafka_err2str(fail));
    }
}

/* Waits ms, serving group events (rebalances) meanwhile; the partitions are
 * paused, so a message that comes anyway was fetched before the pause: its
 * partition is set back to it, to be read again after the resume. Returns
 * AISLE_OK, or AISLE_ECANCELED as soon as a stop is asked for. */
static int ingest_wait(ingest_worker *w, int64_t ms) {
    for (int64_t waited = 0; waited < ms; waited += 100) {
        rd_kafka_message_t *m;
        if (atomic_load(w->stop)) return AISLE_ECANCELED;
        m = rd_kafka_consumer_poll(w->consumer, 100);
        if (!m) continue;
        if (!m->err) {
            rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(at, rd_kafka_topic_name(m->rkt), m->partition)
                ->offset = m->offset;
            rd_kafka_pause_partitions(w->consumer, at);
            rd_kafka_error_t *error = rd_kafka_seek_partitions(w->consumer, at, 5000);
            if (error) {
                log_error("ingest", "rewinding %s[%d]: %s", rd_kafka_topic_name(m->rkt),
                          (int)m->partition, rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
            }
            rd_kafka_topic_partition_list_destroy(at);
        }
        rd_kafka_message_destroy(m);
    }
    return AISLE_OK;
}

/* Turns the signals whose user's profile the apply refused (a key no write
 * can read) into dead letters naming the key and the check, and queues
 * them; the rest of the batch is applied, so the partition moves on, and
 * they are confirmed with the others before the commit (a send refused
 * now is retried there). Returns how many. */
static size_t ingest_refuse(ingest_worker *w, ingest_batch *b) {
    size_t n = 0;
    for (size_t i = 0; i < b->n_sigs; i++) {
        size_t m = b->at[i];
        if (!b->refused[i]) continue;
        profile_refusal(b->sigs[i]->user_id, b->refused[i], b->why[m], INGEST_WHY_MAX);
        (void)ingest_dead_letter(w, b, m);
        n++;
    }
    return n;
}

/* Applies the batch's signals, retrying with backoff until Redis takes them
 * or a stop is asked for; sent: their first write is in flight
 * (profile_apply_send), to be finished first. Returns AISLE_OK when
 * applied, AISLE_ECANCELED when stopped first. */
static int ingest_apply(ingest_worker *w, ingest_batch *b, int sent) {
    int64_t backoff = 100;
    char err[512];
    for (;;) {
        int n = sent ? profile_apply_finish(w->profiles, b->events, b->n_sigs, b->refused, err,
                                            sizeof(err))
                     : profile_apply(w->profiles, b->events, b->n_sigs, b->refused, err,
                                     sizeof(err));
        sent = 0;
        if (n >= 0) {
            size_t refused = ingest_refuse(w, b);
            if (w->stats) {
                atomic_fetch_add(&w->stats->applied, (uint64_t)n);
                atomic_fetch_add(&w->stats->duplicates, b->n_sigs - refused - (uint64_t)n);
            }
            if (w->waiting) {
                ingest_pause(w, 0);
                log_info("ingest", "profile store is back; resuming");
            }
            return AISLE_OK;
        }
        if (w->stats) atomic_fetch_add(&w->stats->redis_retries, 1);
        if (!w->waiting) ingest_pause(w, 1);
        log_warn("ingest", "%s; retrying in %lld ms", err, (long long)backoff);
        if (ingest_wait(w, backoff)) return AISLE_ECANCELED;
        backoff = backoff * 2 > INGEST_BACKOFF_MAX_MS ? INGEST_BACKOFF_MAX_MS : backoff * 2;
    }
}

/* Waits until every dead letter of the batch is confirmed by its delivery
 * report; those refused or not delivered are sent again with backoff, the
 * partitions paused meanwhile. Returns AISLE_OK, or AISLE_ECANCELED when a
 * stop came first. */
static int ingest_confirm_dead_letters(ingest_worker *w, ingest_batch *b) {
    int64_t backoff = 100;
    for (;;) {
        size_t missing = 0;
        while (rd_kafka_outq_len(w->dlq) > 0) {
            if (rd_kafka_flush(w->dlq, INGEST_FLUSH_MS) == RD_KAFKA_RESP_ERR_NO_ERROR) break;
            log_warn("ingest", "dead-letter topic is not acknowledging; still trying");
            if (atomic_load(w->stop)) return AISLE_ECANCELED;
        }
        for (size_t i = 0; i < b->n_msgs; i++) missing += b->why[i][0] && !b->delivered[i];
        if (missing == 0) {
            if (w->waiting) ingest_pause(w, 0);
            return AISLE_OK;
        }
        if (!w->waiting) ingest_pause(w, 1);
        log_warn("ingest", "%zu dead letters not delivered; sending again in %lld ms", missing,
                 (long long)backoff);
        if (ingest_wait(w, backoff)) return AISLE_ECANCELED;
        backoff = backoff * 2 > INGEST_BACKOFF_MAX_MS ? INGEST_BACKOFF_MAX_MS : backoff * 2;
        (void)ingest_send_dead_letters(w, b); /* a refusal is counted as missing above */
    }
}

/* The answer to one commit (served from w->commits): opaque carries the
 * number of messages it covers. */
static void ingest_committed(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque) {
    ingest_worker *w = rd_kafka_opaque(rk);
    (void)offsets;
    assert(w->commits_in_flight > 0);
    w->commits_in_flight--;
    if (e) {
        /* After a rebalance the new owner replays these; de-duplication
         * keeps that harmless. */
        log_warn("ingest", "commit failed: %s", rd_kafka_err2str(e));
        atomic_fetch_add(&w->stats->commit_failures, 1);
        return;
    }
    atomic_fetch_add(&w->stats->committed, (uint64_t)(uintptr_t)opaque);
}

/* Serves the answers to commits; waits up to ms for them while more than
 * max are outstanding. */
static void ingest_serve_commits(ingest_worker *w, int max, int64_t ms) {
    int64_t deadline = clock_mono_ms() + ms;
    rd_kafka_queue_poll_callback(w->commits, 0);
    while (w->commits_in_flight > max && clock_mono_ms() < deadline)
        rd_kafka_queue_poll_callback(w->commits, 100);
}

/* Commits the offsets after the last message of each partition in b,
 * without waiting for the answer: the profile writes it follows are done,
 * so an answer lost to a crash only means a replay, which de-duplication
 * makes harmless, and the next batch need not wait a round trip to the
 * group coordinator (on a busy broker, as long as the batch's writes). */
static void ingest_commit(ingest_worker *w, ingest_batch *b) {
    rd_kafka_topic_partition_list_t *offs =
        rd_kafka_topic_partition_list_new((int)b->n_msgs);
    rd_kafka_resp_err_t e;
    for (size_t i = 0; i < b->n_msgs; i++) {
        const rd_kafka_message_t *m = b->msgs[i];
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(
            offs, rd_kafka_topic_name(m->rkt), m->partition);
        if (!tp)
            tp = rd_kafka_topic_partition_list_add(offs, rd_kafka_topic_name(m->rkt),
                                                   m->partition);
        if (m->offset + 1 > tp->offset) tp->offset = m->offset + 1;
    }
    ingest_serve_commits(w, INGEST_COMMITS_IN_FLIGHT - 1, INGEST_FLUSH_MS);
    e = rd_kafka_commit_queue(w->consumer, offs, w->commits, ingest_committed,
                              (void *)(uintptr_t)b->n_msgs);
    rd_kafka_topic_partition_list_destroy(offs);
    if (e) {
        log_warn("ingest", "commit refused: %s", rd_kafka_err2str(e));
        atomic_fetch_add(&w->stats->commit_failures, 1);
        return;
    }
    w->commits_in_flight++;
}

/* Takes up to batch_max messages, waiting at most wait_ms for the first. */
static void ingest_fill(ingest_worker *w, ingest_batch *b, int wait_ms) {
    int timeout = wait_ms;
    while (b->n_msgs < (size_t)w->cfg->batch_max) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, timeout);
        if (!m) break;
        timeout = 0;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn("ingest", "consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        b->msgs[b->n_msgs++] = m;
    }
    if (w->stats) atomic_fetch_add(&w->stats->consumed, b->n_msgs);
}

/* Reads a batch into the empty b, waiting at most wait_ms for its first
 * message, and decodes it. */
static void ingest_take(ingest_worker *w, ingest_batch *b, int wait_ms) {
    assert(b->n_msgs == 0);
    ingest_fill(w, b, wait_ms);
    if (b->n_msgs) ingest_decode(w, b);
}

/* One decoded batch: queue the dead letters (they travel while Redis
 * works), send the signals' writes and, while Redis works on them, read
 * and decode the next batch into the empty `next` (not while Redis is
 * away); then finish the writes, confirm every dead letter, commit. The
 * next batch's writes go only after this one's are done, so a user's
 * events still reach Redis in log order. A step that fails waits and
 * retries; only a stop ends a batch early, and then nothing of it is
 * committed: the next owner of its partitions reads it again. */
static void ingest_process(ingest_worker *w, ingest_batch *b, ingest_batch *next) {
    char err[512];
    int sent;
    w->batch = b;
    (void)ingest_send_dead_letters(w, b); /* a refusal is retried when confirming */
    sent = !w->waiting &&
           profile_apply_send(w->profiles, b->events, b->n_sigs, err, sizeof(err)) == AISLE_OK;
    /* Only what has already arrived: waiting here for a fetch to answer
     * would hold this batch's finish, and so its events' delay, that long
     * (a fetch cycle, 20 ms and more, on every batch of a steady stream). */
    if (sent && !atomic_load(w->stop)) ingest_take(w, next, 0);
    if (ingest_apply(w, b, sent) == AISLE_OK && ingest_confirm_dead_letters(w, b) == AISLE_OK) {
        atomic_fetch_add(&w->stats->dead_lettered, ingest_n_dead(b));
        ingest_commit(w, b);
    }
    w->batch = NULL;
}

/* Writes the popularity summed so far (force: all of it, else what is
 * due); a failure is logged once until a write succeeds, and the sums are
 * kept for the next try. */
static void ingest_flush_popular(ingest_worker *w, int force) {
    char err[512];
    if (profile_flush(w->profiles, force, err, sizeof(err)) == AISLE_OK) {
        w->popular_failing = 0;
    } else if (!w->popular_failing) {
        w->popular_failing = 1;
        log_warn("ingest", "%s; popularity kept for the next try", err);
    }
}

/* Logs the counters every stats_interval_ms, for operators and tests. */
static void ingest_log_stats(ingest_worker *w, int force) {
    ingest_stats *s = w->stats;
    int64_t now = clock_mono_ms();
    uint64_t consumed;
    if (!w->cfg->stats_interval_ms || (!force && now < w->next_stats_ms)) return;
    consumed = atomic_load(&s->consumed);
    log_info("ingest",
             "stats: consumed %llu (%.0f/s), applied %llu, duplicates %llu, "
             "dead-lettered %llu, committed %llu, redis retries %llu, commit failures %llu, "
             "catalog items %zu",
             (unsigned long long)consumed,
             (double)(consumed - w->last_consumed) * 1000.0 / w->cfg->stats_interval_ms,
             (unsigned long long)atomic_load(&s->applied),
             (unsigned long long)atomic_load(&s->duplicates),
             (unsigned long long)atomic_load(&s->dead_lettered),
             (unsigned long long)atomic_load(&s->committed),
             (unsigned long long)atomic_load(&s->redis_retries),
             (unsigned long long)atomic_load(&s->commit_failures),
             w->facts ? facts_count(w->facts) : (size_t)0);
    w->last_consumed = consumed;
    w->next_stats_ms = now + w->cfg->stats_interval_ms;
}

/* Builds the consumer: Aisle's settings, then the operator's. */
static rd_kafka_t *ingest_consumer(const ingest_config *cfg, ingest_worker *w, char *err,
                                   size_t errlen) {
    rd_kafka_conf_t *conf = kafka_conf_new(cfg->brokers, err, errlen);
    rd_kafka_t *rk;
    char why[512];
    if (!conf || kafka_conf_set(conf, "group.id", cfg->group, err, errlen) ||
        kafka_conf_set(conf, "enable.auto.commit", "false", err, errlen) ||
        kafka_conf_set(conf, "auto.offset.reset", "earliest", err, errlen) ||
        /* Freshness: brokers that cannot wake a waiting fetch early (the
         * mock cluster) would otherwise hold signals for up to 500 ms. */
        kafka_conf_set(conf, "fetch.wait.max.ms", "20", err, errlen) ||
        /* A worker that dies holds its partitions until its session times
         * out: 10 s (Kafka's pre-3.0 default, not librdkafka's 45 s) keeps
         * that stall short; heartbeats come from a thread of their own, so
         * a long batch does not end the session. */
        kafka_conf_set(conf, "session.timeout.ms", "10000", err, errlen) ||
        kafka_conf_set(conf, "heartbeat.interval.ms", "1000", err, errlen))
        goto fail;
    rd_kafka_conf_set_opaque(conf, w);
    rd_kafka_conf_set_rebalance_cb(conf, ingest_rebalance);
    for (size_t i = 0; i < cfg->n_kafka_opts; i++) {
        char key[256];
        const char *opt = cfg->kafka_opts[i], *eq = strchr(opt, '=');
        if (ingest_check_kafka_opt(opt, err, errlen)) goto fail;
        snprintf(key, sizeof(key), "%.*s", (int)(eq - opt), opt);
        if (kafka_conf_set(conf, key, eq + 1, err, errlen)) goto fail;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!rk) {
        status_fmt(err, errlen, "kafka consumer: %s", why);
        goto fail;
    }
    return rk;
fail:
    if (conf) rd_kafka_conf_destroy(conf);
    return NULL;
}

/* The dead-letter producer, whose delivery reports reach w. */
static rd_kafka_t *ingest_dlq_producer(const ingest_config *cfg, ingest_worker *w, char *err,
                                       size_t errlen) {
    rd_kafka_conf_t *conf = kafka_producer_conf(cfg->brokers, err, errlen);
    rd_kafka_t *rk;
    char why[512];
    if (!conf) return NULL;
    rd_kafka_conf_set_opaque(conf, w);
    rd_kafka_conf_set_dr_msg_cb(conf, ingest_dlq_report);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!rk) {
        status_fmt(err, errlen, "kafka producer: %s", why);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Reads the catalog before the first signal, so early signals get their
 * categories too; gives up waiting after INGEST_CATALOG_WAIT_MS. */
static void ingest_learn_catalog(ingest_worker *w) {
    int64_t deadline = clock_mono_ms() + INGEST_CATALOG_WAIT_MS;
    while (!facts_caught_up(w->facts) && clock_mono_ms() < deadline && !atomic_load(w->stop))
        facts_poll(w->facts, 100);
    log_info("ingest", "catalog %s: %zu items known", facts_caught_up(w->facts)
             ? "read" : "not read to its end yet (reading on)", facts_count(w->facts));
}

int ingest_run(const ingest_config *cfg, ingest_stats *stats, atomic_int *stop,
               char *err, size_t errlen) {
    ingest_stats own = {0};
    ingest_worker w = {.cfg = cfg, .stats = stats ? stats : &own, .stop = stop};
    ingest_batch b[2] = {{0}}, *cur = &b[0], *next = &b[1], *t;
    size_t nb = cfg->batch_max > 0 ? (size_t)cfg->batch_max : 1;
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_resp_err_t e;
    int rc;

    if (cfg->batch_max <= 0)
        return status_fail(AISLE_EINVAL, err, errlen, "batch size must be positive");
    if (ingest_batch_alloc(&b[0], nb) || ingest_batch_alloc(&b[1], nb)) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto out;
    }
    if ((rc = profile_store_open(cfg->redis, &cfg->profile, &w.profiles, err, errlen)))
        goto out;
    rc = AISLE_EINVAL; /* what the Kafka set-up fails with: settings refused */
    if (!(w.dlq = ingest_dlq_producer(cfg, &w, err, errlen))) goto out;
    if (cfg->catalog_topic &&
        (rc = facts_open(cfg->brokers, cfg->catalog_topic, &w.facts, err, errlen)))
        goto out;
    rc = AISLE_EINVAL;
    if (!(w.consumer = ingest_consumer(cfg, &w, err, errlen))) goto out;
    rd_kafka_poll_set_consumer(w.consumer);
    if (!(w.commits = rd_kafka_queue_new(w.consumer))) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto out;
    }
    if (w.facts) ingest_learn_catalog(&w);
    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, cfg->topic, RD_KAFKA_PARTITION_UA);
    e = rd_kafka_subscribe(w.consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        rc = status_fail(AISLE_EIO, err, errlen, "subscribing to %s: %s", cfg->topic,
                         rd_kafka_err2str(e));
        goto out;
    }
    log_info("ingest", "consuming %s as group %s into redis %s", cfg->topic,
             cfg->group, cfg->redis);
    w.next_stats_ms = clock_mono_ms() + cfg->stats_interval_ms;

    while (!atomic_load(stop)) {
        if (w.facts) facts_poll(w.facts, 0);
        ingest_serve_commits(&w, INGEST_COMMITS_IN_FLIGHT, 0);
        ingest_log_stats(&w, 0);
        /* Else read while the last was written. */
        if (cur->n_msgs == 0) ingest_take(&w, cur, INGEST_IDLE_WAIT_MS);
        if (cur->n_msgs == 0) {
            ingest_flush_popular(&w, 1); /* idle: what is summed goes now */
            continue;
        }
        ingest_process(&w, cur, next);
        ingest_batch_reset(cur);
        t = cur;
        cur = next;
        next = t;
    }
    rc = AISLE_OK;
    ingest_flush_popular(&w, 1);
    ingest_serve_commits(&w, 0, INGEST_FLUSH_MS); /* the last answers, before leaving */
    ingest_log_stats(&w, 1);
    log_info("ingest", "stopping: leaving group %s", cfg->group);
out:
    ingest_batch_free(&b[0]);
    ingest_batch_free(&b[1]);
    if (w.consumer) {
        rd_kafka_consumer_close(w.consumer);
        if (w.commits) rd_kafka_queue_destroy(w.commits); /* before the handle it holds */
        rd_kafka_destroy(w.consumer);
    }
    facts_close(w.facts);
    if (w.dlq) {
        rd_kafka_flush(w.dlq, INGEST_FLUSH_MS);
        rd_kafka_destroy(w.dlq);
    }
    profile_store_close(w.profiles);
    return rc;
}
