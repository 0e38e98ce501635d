/* mockctl: the kafka-mock subcommand (see mockctl.h). */
#include "services/app/mockctl.h"

#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "services/app/cli.h"
#include "services/base/clock.h"
#include "services/kafka/kafka.h"
#include "services/base/log.h"

/* After rdkafka.h (through kafka.h), as it demands. */
#include <librdkafka/rdkafka_mock.h>

static const char kafka_mock_usage[] =
    "Usage: aisle kafka-mock [FLAGS]\n"
    "\n"
    "Runs librdkafka's mock Kafka cluster (the real protocol on loopback) with Aisle's\n"
    "topics, prints 'bootstrap=HOST:PORT,...' on stdout, and serves until stopped.\n"
    "For development and tests: it keeps only a few MiB per partition.\n"
    "\n"
    "  --brokers N      brokers in the cluster (default 1)\n"
    "  --partitions N   partitions of the signal and catalog topics (default 16)\n"
    "  -h, --help       show this help\n"
    "\n"
    "Faults for tests, one command a line on stdin, each answered 'ok' or 'error: ...':\n"
    "  down ID                      broker ID (1..N) stops answering\n"
    "  up ID                        broker ID is back\n"
    "  errors API ERR [ERR...]      the next requests of API (Produce, Fetch, OffsetCommit,\n"
    "                               JoinGroup, ... or its number) fail with these errors\n"
    "                               (names as in RD_KAFKA_RESP_ERR_, or numbers), in order\n";

/* Request types tests fail on purpose, by name (Kafka protocol ApiKeys). */
static const struct {
    const char *name;
    int16_t key;
} mockctl_apis[] = {
    {"Produce", 0},        {"Fetch", 1},          {"ListOffsets", 2},
    {"Metadata", 3},       {"OffsetCommit", 8},   {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},   {"Heartbeat", 12},
    {"LeaveGroup", 13},    {"SyncGroup", 14},     {"InitProducerId", 22},
};

/* A number, or the name of a request type in mockctl_apis. */
static int mockctl_lookup(const char *s, long *out) {
    char *end;
    *out = strtol(s, &end, 10);
    if (*s && !*end) return 0;
    for (size_t i = 0; i < sizeof(mockctl_apis) / sizeof(mockctl_apis[0]); i++)
        if (strcasecmp(s, mockctl_apis[i].name) == 0) {
            *out = mockctl_apis[i].key;
            return 0;
        }
    return -1;
}

/* An error code by number or by name ("NOT_COORDINATOR"). */
static int mockctl_error(const char *s, rd_kafka_resp_err_t *out) {
    const struct rd_kafka_err_desc *descs;
    size_t n;
    char *end;
    long v = strtol(s, &end, 10);
    if (*s && !*end) {
        *out = (rd_kafka_resp_err_t)v;
        return 0;
    }
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++)
        if (descs[i].name && strcasecmp(descs[i].name, s) == 0) {
            *out = descs[i].code;
            return 0;
        }
    return -1;
}

/* Runs one stdin command against the cluster; answers on stdout. */
static void mockctl_command(rd_kafka_mock_cluster_t *mc, char *line) {
    char *words[66];
    int n = 0;
    long v;
    rd_kafka_resp_err_t errs[64], e = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (char *w = strtok(line, " \t\r\n"); w && n < 66; w = strtok(NULL, " \t\r\n"))
        words[n++] = w;
    if (n == 0) return;
    if (n == 2 && (!strcmp(words[0], "down") || !strcmp(words[0], "up")) &&
        mockctl_lookup(words[1], &v) == 0) {
        e = words[0][0] == 'd' ? rd_kafka_mock_broker_set_down(mc, (int32_t)v)
                               : rd_kafka_mock_broker_set_up(mc, (int32_t)v);
    } else if (n >= 3 && !strcmp(words[0], "errors") && mockctl_lookup(words[1], &v) == 0) {
        for (int i = 2; i < n; i++)
            if (mockctl_error(words[i], &errs[i - 2])) {
                printf("error: unknown error '%s'\n", words[i]);
                fflush(stdout);
                return;
            }
        rd_kafka_mock_push_request_errors_array(mc, (int16_t)v, (size_t)(n - 2), errs);
    } else {
        printf("error: expected 'down ID', 'up ID' or 'errors API ERR...'\n");
        fflush(stdout);
        return;
    }
    if (e)
        printf("error: %s\n", rd_kafka_err2str(e));
    else
        printf("ok\n");
    fflush(stdout);
    log_info("kafka-mock", "fault command: %s%s", words[0], e ? " (failed)" : "");
}

int mockctl_main(int argc, char **argv) {
    static const struct option opts[] = {{"brokers", required_argument, 0, 'b'},
                                         {"partitions", required_argument, 0, 'p'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    long long brokers = 1, parts = 16;
    kafka_mock *m;
    atomic_int *stop;
    char err[512];
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (cli_int("kafka-mock", "brokers", optarg, 1, 16, &brokers)) return CLI_EXIT_USAGE;
            break;
        case 'p':
            if (cli_int("kafka-mock", "partitions", optarg, 1, 1024, &parts))
                return CLI_EXIT_USAGE;
            break;
        case 'h': fputs(kafka_mock_usage, stdout); return 0;
        default: return cli_usage_error("kafka-mock", "unknown or incomplete flag");
        }
    }
    if (optind < argc)
        return cli_usage_error("kafka-mock", "unexpected argument '%s'", argv[optind]);
    stop = cli_stop_flag();
    if (kafka_mock_start((int)brokers, (int)parts, &m, err, sizeof(err)) != 0) {
        log_error("kafka-mock", "%s", err);
        return 1;
    }
    printf("bootstrap=%s\n", kafka_mock_bootstraps(m));
    fflush(stdout);
    while (!atomic_load(stop)) {
        struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
        char line[1024];
        /* stdin at its end (or none) just means no fault commands. */
        if (poll(&pfd, 1, 100) == 1 && (pfd.revents & POLLIN)) {
            if (fgets(line, sizeof(line), stdin))
                mockctl_command(kafka_mock_cluster(m), line);
            else
                while (!atomic_load(stop)) clock_sleep_ms(100);
        }
    }
    kafka_mock_stop(m);
    return 0;
}

