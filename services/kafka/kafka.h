/* kafka: what every Kafka client in Aisle shares: topic names, base
 * configuration, librdkafka's logs routed into ours, and the embedded mock
 * cluster used by the demo, by tests and for local development. */
#ifndef AISLE_KAFKA_H
#define AISLE_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "services/base/status.h"

#define KAFKA_TOPIC_SIGNALS "aisle.signals"
#define KAFKA_TOPIC_CATALOG "aisle.catalog"
#define KAFKA_TOPIC_DLQ "aisle.signals.dlq"
#define KAFKA_TOPIC_CONTROL "aisle.control"
#define KAFKA_TOPIC_EXPOSURES "aisle.exposures"

/* A configuration with bootstrap.servers = brokers and Aisle's defaults.
 * Returns NULL with err set. The caller passes it to rd_kafka_new (which
 * takes ownership on success) or frees it with rd_kafka_conf_destroy. */
rd_kafka_conf_t *kafka_conf_new(const char *brokers, char *err, size_t errlen);
/* Settings (each "key=value", copied) that every Kafka client this process
 * makes gets after Aisle's own: security.protocol, SASL and SSL settings
 * reach the consumer, the producers, the catalog and control readers and
 * ctl alike. AISLE_KAFKA_SASL_USERNAME / _PASSWORD from the environment
 * become sasl.username / sasl.password. Call before making clients.
 * Returns AISLE_OK, AISLE_EINVAL or AISLE_ENOMEM with err set. */
int kafka_client_opts_set(const char *const *opts, size_t n, char *err, size_t errlen);

/* Sets one property; returns AISLE_OK, or AISLE_EINVAL with err set (a
 * secret's value is never in the message). */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                   char *err, size_t errlen);
/* A producer with acks=all and idempotence, so a retried send is written
 * once. Returns NULL with err set; free with rd_kafka_destroy. */
rd_kafka_t *kafka_producer_new(const char *brokers, char *err, size_t errlen);
/* kafka_producer_new's configuration, for a producer that also wants
 * callbacks of its own (delivery reports). Returns NULL with err set. */
rd_kafka_conf_t *kafka_producer_conf(const char *brokers, char *err, size_t errlen);

/* Serializes msg and queues it on topic with key, waiting while the local
 * queue is full. Returns AISLE_OK, or AISLE_ENOMEM or AISLE_EIO (refused) with
 * err set. Delivery is confirmed by a
 * later rd_kafka_flush. */
int kafka_produce_msg(rd_kafka_t *rk, const char *topic, const char *key,
                      const ProtobufCMessage *msg, char *err, size_t errlen);

typedef struct kafka_mock kafka_mock;

/* Starts an in-process mock cluster of n brokers on loopback with Aisle's
 * topics created, the signal and catalog topics with `partitions`
 * partitions each (the mock keeps only a few MiB per partition, so large
 * replays need many). Returns AISLE_OK, or AISLE_EINVAL (bad counts) or
 * AISLE_EINTERNAL with err set; stop with
 * kafka_mock_stop. */
int kafka_mock_start(int n, int partitions, kafka_mock **out, char *err,
                     size_t errlen);
/* The librdkafka mock cluster itself, for fault injection
 * (rdkafka_mock.h: brokers down and up, request errors). */
struct rd_kafka_mock_cluster_s *kafka_mock_cluster(kafka_mock *m);
/* "host:port,..." for bootstrap.servers; valid until kafka_mock_stop. */
const char *kafka_mock_bootstraps(const kafka_mock *m);
void kafka_mock_stop(kafka_mock *m);

#endif
