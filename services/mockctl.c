/* mockctl: the kafka-mock subcommand (see mockctl.h). */
#include "services/mockctl.h"

#include <getopt.h>
#include <stdio.h>

#include "services/cli.h"
#include "services/clock.h"
#include "services/kafka.h"
#include "services/log.h"

static const char kafka_mock_usage[] =
    "Usage: aisle kafka-mock [FLAGS]\n"
    "\n"
    "Runs librdkafka's mock Kafka cluster (the real protocol on loopback) with Aisle's\n"
    "topics, prints 'bootstrap=HOST:PORT,...' on stdout, and serves until stopped.\n"
    "For development and tests: it keeps only a few MiB per partition.\n"
    "\n"
    "  --brokers N      brokers in the cluster (default 1)\n"
    "  --partitions N   partitions of the signal and catalog topics (default 16)\n"
    "  -h, --help       show this help\n";

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
    while (!atomic_load(stop)) clock_sleep_ms(100);
    kafka_mock_stop(m);
    return 0;
}

