/* hooks: Aisle's RPC and Redis metrics, named here once. */
#include "services/obs/hooks.h"

#include <pthread.h>
#include <string.h>

#include "services/base/clock.h"
#include "services/base/log.h"
#include "services/obs/metrics.h"

static _Thread_local const char *hooks_method;
static _Thread_local int64_t hooks_start_us;

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
static metrics_family *hooks_rpc, *hooks_first, *hooks_redis, *hooks_redis_errors;
static metrics_family *hooks_tokens, *hooks_gen_seconds;

static void hooks_init(void) {
    hooks_rpc = metrics_histogram("aisle_rpc_duration_seconds",
                                  "gRPC calls by method and status code, from the call's "
                                  "match to its status sent",
                                  "method,code", metrics_latency_bounds,
                                  metrics_n_latency_bounds);
    hooks_first = metrics_histogram("aisle_rpc_first_message_seconds",
                                    "Time from a streaming call's start to its first message "
                                    "(Shop: time to first chunk)",
                                    "method", metrics_latency_bounds, metrics_n_latency_bounds);
    hooks_redis = metrics_histogram("aisle_redis_request_duration_seconds",
                                    "Redis round trips (one pipeline each), failures included",
                                    NULL, metrics_latency_bounds, metrics_n_latency_bounds);
    hooks_redis_errors = metrics_counter("aisle_redis_errors_total",
                                         "Redis round trips that failed (connection, protocol "
                                         "or cluster routing)",
                                         NULL);
    metrics_add(hooks_redis_errors, NULL, 0); /* a rate needs the zero too */
    hooks_tokens = metrics_counter("aisle_model_generated_tokens_total",
                                   "Tokens the language model sampled for Shop answers", NULL);
    hooks_gen_seconds = metrics_counter("aisle_model_generation_seconds_total",
                                        "Time the language model spent sampling them", NULL);
    metrics_add(hooks_tokens, NULL, 0);
    metrics_add(hooks_gen_seconds, NULL, 0);
}

/* The names gRPC gives its status codes, by number. */
static const char *hooks_code_name(int code) {
    static const char *const names[] = {
        "OK",           "CANCELLED",  "UNKNOWN",       "INVALID_ARGUMENT",  "DEADLINE_EXCEEDED",
        "NOT_FOUND",    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
        "UNAVAILABLE",  "DATA_LOSS",  "UNAUTHENTICATED"};
    return code >= 0 && code < (int)(sizeof(names) / sizeof(names[0])) ? names[code]
                                                                         : "UNKNOWN";
}

static double hooks_seconds_since(int64_t start_us) {
    return (double)(clock_mono_us() - start_us) / 1e6;
}

void obs_hooks_register(void) { pthread_once(&hooks_once, hooks_init); }

void obs_rpc_begin(const char *path) {
    const char *slash = path ? strrchr(path, '/') : NULL;
    pthread_once(&hooks_once, hooks_init);
    hooks_method = slash ? slash + 1 : "unknown";
    hooks_start_us = clock_mono_us();
}

void obs_rpc_first_message(void) {
    metrics_observe(hooks_first, (const char *const[]){hooks_method},
                    hooks_seconds_since(hooks_start_us));
}

void obs_rpc_end(int grpc_code) {
    metrics_observe(hooks_rpc, (const char *const[]){hooks_method, hooks_code_name(grpc_code)},
                    hooks_seconds_since(hooks_start_us));
    log_set_request_id(NULL);
}

void obs_redis_done(int ok, int64_t start_us) {
    pthread_once(&hooks_once, hooks_init);
    metrics_observe(hooks_redis, NULL, hooks_seconds_since(start_us));
    if (!ok) metrics_add(hooks_redis_errors, NULL, 1);
}

void obs_model_generated(int n_tokens, int64_t elapsed_ns) {
    pthread_once(&hooks_once, hooks_init);
    metrics_add(hooks_tokens, NULL, n_tokens > 0 ? n_tokens : 0);
    metrics_add(hooks_gen_seconds, NULL, elapsed_ns > 0 ? (double)elapsed_ns / 1e9 : 0);
}
