/* exposure: the bounded queue and the Kafka producer thread of the
 * exposure log (see exposure.h). */
#include "services/experiment/exposure.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/clock.h"
#include "services/base/log.h"
#include "services/base/status.h"
#include "services/kafka/kafka.h"

#define EXPOSURE_BATCH 512
/* How often the thread drains a queue holding fewer than wake_at. A record
 * waits up to this long here and then linger.ms (20) in librdkafka: the
 * thread is woken early only when wake_at wait, not for each record, since
 * a wake-up for every served page cost the serving cores a context switch
 * a call for nothing that librdkafka would send sooner. */
#define EXPOSURE_TICK_MS 10

typedef struct exposure_rec {
    uint8_t *bytes; /* owned until handed to librdkafka */
    size_t len;
    char *key;      /* owned */
} exposure_rec;

struct exposure_log {
    rd_kafka_t *rk;
    char *topic;
    pthread_mutex_t lock; /* guards the ring and the counters below it */
    pthread_cond_t wake;
    exposure_rec *ring;
    size_t cap, head, n;
    /* Records that wake the thread: a batch, or a quarter of a queue too
     * small for one (at least 1), which then drains as each record comes,
     * so a full queue drops only what found no room. */
    size_t wake_at;
    uint64_t submitted, dropped;
    atomic_uint_fast64_t delivered, failed; /* from librdkafka's callback thread */
    atomic_int stop;
    pthread_t thread;
};

static void exposure_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    exposure_log *l = opaque;
    atomic_fetch_add(m->err ? &l->failed : &l->delivered, 1);
}

int exposure_log_submit(exposure_log *l, const Aisle__V1__Exposure *e) {
    size_t len = aisle__v1__exposure__get_packed_size(e);
    exposure_rec r = {malloc(len ? len : 1), len, strdup(e->user_id)};
    int rc = r.bytes && r.key ? AISLE_OK : AISLE_EFULL;
    if (rc == AISLE_OK) aisle__v1__exposure__pack(e, r.bytes);
    pthread_mutex_lock(&l->lock);
    if (rc == AISLE_OK && l->n < l->cap) {
        l->ring[(l->head + l->n++) % l->cap] = r;
        l->submitted++;
        if (l->n == l->wake_at) pthread_cond_signal(&l->wake);
    } else {
        rc = AISLE_EFULL;
        l->dropped++;
    }
    pthread_mutex_unlock(&l->lock);
    if (rc != AISLE_OK) {
        free(r.bytes);
        free(r.key);
    }
    return rc;
}

void exposure_log_get_stats(exposure_log *l, exposure_log_stats *out) {
    pthread_mutex_lock(&l->lock);
    *out = (exposure_log_stats){l->submitted, l->dropped, atomic_load(&l->delivered),
                                atomic_load(&l->failed), l->n};
    pthread_mutex_unlock(&l->lock);
}

/* Hands r to librdkafka, waiting while its own queue is full (only this
 * thread waits, never a caller). Returns 0, or -1 (r freed) at stop or on
 * an error. */
static int exposure_produce(exposure_log *l, exposure_rec *r) {
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            l->rk, RD_KAFKA_V_TOPIC(l->topic), RD_KAFKA_V_KEY(r->key, strlen(r->key)),
            RD_KAFKA_V_VALUE(r->bytes, r->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
            RD_KAFKA_V_OPAQUE(NULL), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            free(r->key);
            return 0;
        }
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || atomic_load(&l->stop)) {
            log_warn("exposure", "dropping an exposure: %s", rd_kafka_err2str(e));
            free(r->bytes);
            free(r->key);
            return -1;
        }
        rd_kafka_poll(l->rk, 50);
    }
}

static void *exposure_main(void *arg) {
    exposure_log *l = arg;
    exposure_rec batch[EXPOSURE_BATCH];
    for (;;) {
        pthread_mutex_lock(&l->lock);
        if (l->n < l->wake_at && !atomic_load(&l->stop)) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += EXPOSURE_TICK_MS * 1000000L;
            if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&l->wake, &l->lock, &until);
        }
        size_t k = 0;
        for (; k < EXPOSURE_BATCH && l->n; k++, l->n--, l->head = (l->head + 1) % l->cap)
            batch[k] = l->ring[l->head];
        int done = k == 0 && atomic_load(&l->stop);
        pthread_mutex_unlock(&l->lock);
        if (done) return NULL;
        uint64_t lost = 0;
        for (size_t i = 0; i < k; i++) lost += exposure_produce(l, &batch[i]) != 0;
        if (lost) {
            pthread_mutex_lock(&l->lock);
            l->dropped += lost;
            pthread_mutex_unlock(&l->lock);
        }
        rd_kafka_poll(l->rk, 0); /* delivery callbacks */
    }
}

static rd_kafka_t *exposure_producer(const char *brokers, exposure_log *l, char *err,
                                     size_t errlen) {
    char why[512];
    rd_kafka_conf_t *conf = kafka_conf_new(brokers, err, errlen);
    if (!conf) return NULL;
    /* Exposures are analytics: acks from the leader suffice, and batching
     * matters more than latency. */
    if (kafka_conf_set(conf, "acks", "1", err, errlen) ||
        kafka_conf_set(conf, "linger.ms", "20", err, errlen) ||
        kafka_conf_set(conf, "compression.type", "lz4", err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, exposure_delivered);
    rd_kafka_conf_set_opaque(conf, l);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!rk) {
        status_fmt(err, errlen, "exposure producer: %s", why);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

int exposure_log_start(const char *brokers, const char *topic, size_t capacity,
                       exposure_log **out, char *err, size_t errlen) {
    exposure_log *l = calloc(1, sizeof(*l));
    if (!l) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    l->cap = capacity ? capacity : EXPOSURE_QUEUE_DEFAULT;
    l->wake_at = l->cap / 4 < 1 ? 1 : l->cap / 4 > EXPOSURE_BATCH ? EXPOSURE_BATCH : l->cap / 4;
    l->ring = calloc(l->cap, sizeof(*l->ring));
    l->topic = strdup(topic ? topic : EXPOSURE_TOPIC);
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->wake, NULL);
    int rc = l->ring && l->topic ? AISLE_OK
                                 : status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if (rc == AISLE_OK && !(l->rk = exposure_producer(brokers, l, err, errlen))) rc = AISLE_EIO;
    if (rc == AISLE_OK && pthread_create(&l->thread, NULL, exposure_main, l) != 0)
        rc = status_fail(AISLE_EINTERNAL, err, errlen, "cannot start the exposure thread");
    if (rc != AISLE_OK) goto fail;
    *out = l;
    return AISLE_OK;
fail:
    if (l->rk) rd_kafka_destroy(l->rk);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->lock);
    free(l->topic);
    free(l->ring);
    free(l);
    return rc;
}

void exposure_log_stop(exposure_log *l, int flush_ms) {
    if (!l) return;
    pthread_mutex_lock(&l->lock);
    atomic_store(&l->stop, 1);
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thread, NULL);
    if (rd_kafka_flush(l->rk, flush_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("exposure", "%d exposures not confirmed by Kafka at stop",
                 rd_kafka_outq_len(l->rk));
    rd_kafka_destroy(l->rk);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->lock);
    free(l->topic);
    free(l->ring);
    free(l);
}

void exposure_set_variants(Aisle__V1__Exposure *e, const exp_assignment *a,
                           Aisle__V1__VariantAssignment *storage,
                           Aisle__V1__VariantAssignment **ptrs) {
    for (size_t i = 0; i < a->n; i++) {
        aisle__v1__variant_assignment__init(&storage[i]);
        storage[i].layer = (char *)a->picks[i].layer;
        storage[i].experiment = (char *)a->picks[i].experiment;
        storage[i].variant = (char *)a->picks[i].variant;
        ptrs[i] = &storage[i];
    }
    e->variants = ptrs;
    e->n_variants = a->n;
    e->holdout = a->holdout;
    e->experiments_version = exp_set_version(a->set);
}
