/* log: one-line, timestamped messages on stderr, safe from any thread.
 * Operators grep these, so every line starts with the time, the level and
 * the component: "2026-11-23T05:48:37.123Z INFO ingest: ...". */
#ifndef AISLE_LOG_H
#define AISLE_LOG_H

enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Messages below level are dropped; default LOG_INFO. */
void log_set_level(int level);
void log_msg(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(c, ...) log_msg(LOG_DEBUG, c, __VA_ARGS__)
#define log_info(c, ...) log_msg(LOG_INFO, c, __VA_ARGS__)
#define log_warn(c, ...) log_msg(LOG_WARN, c, __VA_ARGS__)
#define log_error(c, ...) log_msg(LOG_ERROR, c, __VA_ARGS__)

#endif
