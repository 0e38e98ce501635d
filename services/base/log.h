/* log: one line per message on stderr, safe from any thread.
 *
 * By default each line is one JSON object, for log pipelines:
 *   {"time":"2026-11-23T05:48:37.123Z","level":"info","component":"ingest",
 *    "request_id":"6a1f03c2-00002a","message":"..."}
 * (request_id only while the thread runs a gRPC call). The text format is
 * the one operators grep at a terminal:
 *   2026-11-23T05:48:37.123Z INFO ingest: [6a1f03c2-00002a] ...  */
#ifndef AISLE_LOG_H
#define AISLE_LOG_H

enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum { LOG_FORMAT_JSON, LOG_FORMAT_TEXT };

/* Messages below level are dropped; default LOG_INFO. */
void log_set_level(int level);
/* LOG_FORMAT_JSON (the default) or LOG_FORMAT_TEXT. */
void log_set_format(int format);
/* Parses "debug".."error" and "json"/"text". Return 0, or -1 for another word. */
int log_parse_level(const char *s, int *level);
int log_parse_format(const char *s, int *format);

/* The request id this thread's lines carry from now on (copied; NULL or ""
 * for none). The gRPC transport sets it per call. */
void log_set_request_id(const char *id);

void log_msg(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(c, ...) log_msg(LOG_DEBUG, c, __VA_ARGS__)
#define log_info(c, ...) log_msg(LOG_INFO, c, __VA_ARGS__)
#define log_warn(c, ...) log_msg(LOG_WARN, c, __VA_ARGS__)
#define log_error(c, ...) log_msg(LOG_ERROR, c, __VA_ARGS__)

#endif
