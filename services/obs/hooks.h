/* hooks: the measurements lower layers record with one call each, so the
 * transport and the profile store need no metric names of their own.
 *
 * A gRPC call is a scope on the worker thread that runs it: obs_rpc_begin
 * when the call is matched, obs_rpc_first_message when its first message
 * goes out (a stream's time to first chunk), obs_rpc_end with the status
 * it finished with. The scope is thread-local, so the hooks take no handle;
 * obs_rpc_end also clears the log's request id (services/base/log.h), which
 * the transport set for the call. */
#ifndef AISLE_OBS_HOOKS_H
#define AISLE_OBS_HOOKS_H

#include <stdint.h>

/* Creates the hooks' families now, so a scrape lists them (with their
 * help) before the first call; the hooks create them anyway. */
void obs_hooks_register(void);

/* path: "/package.Service/Method" (borrowed until obs_rpc_end), or NULL for
 * a method the server does not serve (labelled "unknown", so a client
 * cannot create series at will). */
void obs_rpc_begin(const char *path);
void obs_rpc_first_message(void);
/* grpc_code: the grpc_status_code the call ended with. */
void obs_rpc_end(int grpc_code);

/* One Redis round trip (a pipeline) that started at clock_mono_us()
 * start_us and succeeded or not. */
void obs_redis_done(int ok, int64_t start_us);

/* One model generation: n tokens sampled in elapsed_ns (tokens per second
 * is the ratio of the two counters' rates). */
void obs_model_generated(int n_tokens, int64_t elapsed_ns);

#endif
