/* mockctl: `aisle kafka-mock`, librdkafka's mock Kafka cluster as a
 * process of its own, for development, tests and benchmarks that need a
 * Kafka on a machine without one. */
#ifndef AISLE_MOCKCTL_H
#define AISLE_MOCKCTL_H

int mockctl_main(int argc, char **argv);

#endif
