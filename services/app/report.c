/* report: `aisle report` (see report.h): reads every exposure and signal,
 * computes the per-variant results with services/experiment/report.h, and
 * prints them (and writes them as HTML with --html). */
#include "services/app/report.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/app/cli.h"
#include "services/base/buf.h"
#include "services/base/clock.h"
#include "services/base/log.h"
#include "services/base/status.h"
#include "services/experiment/exposure.h"
#include "services/experiment/report.h"
#include "services/kafka/kafka.h"
#include "services/kafka/tail.h"

#define REPORT_CATCHUP_MS 120000

static const char report_usage[] =
    "Usage: aisle report (--kafka-brokers LIST | --exposures FILE --signals FILE) [FLAGS]\n"
    "\n"
    "Per experiment and variant: users, pages, and the share of users who clicked, added\n"
    "to cart or purchased an item an exposure showed them (attributed to the latest such\n"
    "exposure within the window), with 95 % intervals; relative lift against 'control'\n"
    "with its interval, the fixed-horizon z-test p-value and the mSPRT always-valid\n"
    "p-value, which decides 'significant' and stays valid when the report is read daily;\n"
    "and a sample-ratio-mismatch check (chi-square, flagged below p 0.001).\n"
    "\n"
    "  --kafka-brokers LIST  read aisle.exposures and aisle.signals to their end\n"
    "  --exposures FILE      length-delimited Exposure messages instead\n"
    "  --signals FILE        length-delimited Signal messages instead\n"
    "  --window-h H          attribution window in hours (default 24)\n"
    "  --alpha A             verdict level (default 0.05)\n"
    "  --mixing-lift L       mSPRT prior scale, as a relative lift (default 0.1)\n"
    "  --expect EXP:VAR=W,.. expected relative weights for the ratio check (default equal)\n"
    "  --until-ms T          only events up to time T (a report as of then)\n"
    "  --html FILE           also write the report as a page with plots\n";

/* Decodes one message of a topic or file and hands it to sink; is_signal
 * tells which kind. */
static int report_decode(const report_sink *sink, int is_signal, const uint8_t *data,
                         size_t len) {
    int rc = AISLE_EFORMAT;
    if (is_signal) {
        Aisle__V1__Signal *m = aisle__v1__signal__unpack(NULL, len, data);
        if (m) rc = sink->signal(sink->ctx, m);
        aisle__v1__signal__free_unpacked(m, NULL);
    } else {
        Aisle__V1__Exposure *m = aisle__v1__exposure__unpack(NULL, len, data);
        if (m) rc = sink->exposure(sink->ctx, m);
        aisle__v1__exposure__free_unpacked(m, NULL);
    }
    return rc;
}

/* Adds every message of a file; a message that does not parse is counted
 * and skipped, a truncated file is an error. */
static int report_file(const report_sink *sink, int is_signal, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        log_error("report", "cannot open %s", path);
        return -1;
    }
    buf b = {0};
    long n = 0, bad = 0;
    int rc;
    while ((rc = exp_delim_read(f, &b)) == 1) {
        int a = report_decode(sink, is_signal, (const uint8_t *)b.data, b.len);
        if (a == AISLE_ENOMEM) break;
        bad += a != AISLE_OK;
        n++;
    }
    buf_free(&b);
    fclose(f);
    if (rc != 0) log_error("report", "%s: %s after %ld messages", path,
                           rc == AISLE_EFORMAT ? "truncated" : "out of memory", n);
    else if (bad) log_warn("report", "%s: %ld of %ld messages did not parse", path, bad, n);
    return rc == 0 ? 0 : -1;
}

/* Adds every message of topic, reading until each partition's end. */
static int report_topic(const report_sink *sink, int is_signal, const char *brokers) {
    const char *topic = is_signal ? KAFKA_TOPIC_SIGNALS : EXPOSURE_TOPIC;
    char err[512];
    tail *t;
    if (tail_open(brokers, topic, RD_KAFKA_OFFSET_BEGINNING, "report", &t, err, sizeof(err))) {
        log_error("report", "%s", err);
        return -1;
    }
    long n = 0, bad = 0;
    int64_t deadline = clock_mono_ms() + REPORT_CATCHUP_MS;
    for (;;) {
        rd_kafka_message_t *m = tail_poll(t, 200);
        if (m) {
            bad += report_decode(sink, is_signal, m->payload, m->len) != AISLE_OK;
            n++;
            rd_kafka_message_destroy(m);
        } else if (tail_caught_up(t)) {
            break;
        } else if (clock_mono_ms() > deadline) {
            log_error("report", "%s: not read to its end within %d s", topic,
                      REPORT_CATCHUP_MS / 1000);
            tail_close(t);
            return -1;
        }
    }
    tail_close(t);
    log_info("report", "%s: %ld messages%s", topic, n, bad ? " (some did not parse)" : "");
    return 0;
}

int report_read(const char *brokers, const char *exposures, const char *signals,
                const report_sink *sink) {
    int rc = brokers ? report_topic(sink, 0, brokers) : report_file(sink, 0, exposures);
    if (rc == 0) rc = brokers ? report_topic(sink, 1, brokers) : report_file(sink, 1, signals);
    return rc;
}

static int report_sink_exposure(void *r, const Aisle__V1__Exposure *e) {
    return exp_report_add_exposure(r, e);
}

static int report_sink_signal(void *r, const Aisle__V1__Signal *s) {
    return exp_report_add_signal(r, s);
}

/* "EXP:VAR=W,EXP:VAR=W". */
static int report_expect(exp_report *r, const char *spec) {
    char *copy = strdup(spec), *save = NULL;
    int rc = copy ? 0 : -1;
    for (char *w = copy ? strtok_r(copy, ",", &save) : NULL; w && rc == 0;
         w = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(w, ':'), *eq = colon ? strchr(colon, '=') : NULL, *end;
        double weight = eq ? strtod(eq + 1, &end) : 0;
        if (!eq || *end || weight <= 0) {
            rc = cli_usage_error("report", "--expect: '%s' is not EXP:VAR=WEIGHT", w);
            break;
        }
        *colon = *eq = 0;
        if (exp_report_expect(r, w, colon + 1, weight) != AISLE_OK) rc = -1;
    }
    free(copy);
    return rc;
}

static int report_write_html(const exp_report *r, const char *path) {
    buf b = {0};
    exp_report_html(r, &b);
    FILE *f = fopen(path, "w");
    int ok = f && buf_status(&b) == AISLE_OK && fwrite(b.data, 1, b.len, f) == b.len;
    if (f && fclose(f) != 0) ok = 0;
    buf_free(&b);
    if (!ok) log_error("report", "cannot write %s", path);
    return ok ? 0 : -1;
}

int report_main(int argc, char **argv) {
    static const struct option opts[] = {
        {"kafka-brokers", required_argument, 0, 'k'}, {"exposures", required_argument, 0, 'e'},
        {"signals", required_argument, 0, 's'},       {"window-h", required_argument, 0, 'w'},
        {"alpha", required_argument, 0, 'a'},         {"mixing-lift", required_argument, 0, 'm'},
        {"expect", required_argument, 0, 'x'},        {"until-ms", required_argument, 0, 'u'},
        {"html", required_argument, 0, 'H'},          {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *brokers = NULL, *exposures = NULL, *signals = NULL, *expect = NULL, *html = NULL;
    exp_report_config cfg = {0};
    double hours = 24;
    long long until = INT64_MAX;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': brokers = optarg; break;
        case 'e': exposures = optarg; break;
        case 's': signals = optarg; break;
        case 'x': expect = optarg; break;
        case 'H': html = optarg; break;
        case 'w':
            if (cli_double("report", "window-h", optarg, 0.001, 24 * 365, &hours))
                return CLI_EXIT_USAGE;
            break;
        case 'a':
            if (cli_double("report", "alpha", optarg, 1e-6, 0.5, &cfg.alpha)) return CLI_EXIT_USAGE;
            break;
        case 'm':
            if (cli_double("report", "mixing-lift", optarg, 1e-4, 10, &cfg.mixing_lift))
                return CLI_EXIT_USAGE;
            break;
        case 'u':
            if (cli_int("report", "until-ms", optarg, 0, INT64_MAX, &until)) return CLI_EXIT_USAGE;
            break;
        case 'h': fputs(report_usage, stdout); return 0;
        default: return cli_usage_error("report", "unknown or incomplete flag");
        }
    }
    if (optind != argc) return cli_usage_error("report", "unexpected argument '%s'", argv[optind]);
    if (!brokers == !(exposures || signals) || (!brokers && !(exposures && signals)))
        return cli_usage_error("report", "give --kafka-brokers, or both --exposures and --signals");
    cfg.window_ms = (int64_t)(hours * 3600 * 1000);
    exp_report *r;
    if (exp_report_new(&cfg, &r) != AISLE_OK) return 1;
    int rc = expect ? report_expect(r, expect) : 0;
    report_sink sink = {r, report_sink_exposure, report_sink_signal};
    if (rc == 0) rc = report_read(brokers, exposures, signals, &sink);
    const exp_report_exp *res;
    size_t n;
    if (rc == 0 && exp_report_compute(r, until, &res, &n) != AISLE_OK) rc = -1;
    if (rc == 0) {
        buf text = {0};
        exp_report_text(r, &text);
        fputs(n ? buf_str(&text) : "no exposures with experiment variants\n", stdout);
        buf_free(&text);
        if (html) rc = report_write_html(r, html);
    }
    exp_report_free(r);
    return rc == 0 ? 0 : rc == CLI_EXIT_USAGE ? CLI_EXIT_USAGE : 1;
}
