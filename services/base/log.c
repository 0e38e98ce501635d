/* log: formats a whole line first and writes it with one call, so lines
 * from concurrent threads never interleave. */
#include "services/base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { LOG_LINE_MAX = 4096, LOG_ID_MAX = 64 };

static atomic_int log_level = LOG_INFO;
static atomic_int log_format = LOG_FORMAT_JSON;
static _Thread_local char log_request_id[LOG_ID_MAX];

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(int level) { atomic_store(&log_level, level); }
void log_set_format(int format) { atomic_store(&log_format, format); }

int log_parse_level(const char *s, int *level) {
    for (int i = LOG_DEBUG; i <= LOG_ERROR; i++)
        if (strcmp(s, log_level_names[i]) == 0) {
            *level = i;
            return 0;
        }
    return -1;
}

int log_parse_format(const char *s, int *format) {
    if (strcmp(s, "json") == 0)
        *format = LOG_FORMAT_JSON;
    else if (strcmp(s, "text") == 0)
        *format = LOG_FORMAT_TEXT;
    else
        return -1;
    return 0;
}

void log_set_request_id(const char *id) {
    snprintf(log_request_id, sizeof(log_request_id), "%s", id ? id : "");
}

/* Appends s to line[*n..cap) as the inside of a JSON string: quotes,
 * backslashes and control bytes escaped; bytes >= 0x80 pass through (the
 * messages are UTF-8). Stops, unterminated, when the line is full. */
static void log_put_json(char *line, size_t cap, size_t *n, const char *s) {
    for (; *s && *n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            line[(*n)++] = '\\';
            line[(*n)++] = (char)c;
        } else if (c < 0x20) {
            *n += (size_t)snprintf(line + *n, cap - *n, "\\u%04x", c);
        } else {
            line[(*n)++] = (char)c;
        }
    }
}

static void log_put(char *line, size_t cap, size_t *n, const char *s) {
    size_t len = strlen(s);
    if (len > cap - *n - 1) len = cap - *n - 1;
    memcpy(line + *n, s, len);
    *n += len;
}

/* The line without its newline into line (cap bytes, cap - 2 used at most). */
static size_t log_format_line(char *line, size_t cap, int level, const char *component,
                              const char *msg) {
    char stamp[96], upper[8];
    struct timespec ts;
    struct tm tm;
    size_t n = 0;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             ts.tv_nsec / 1000000);
    cap -= 2; /* room for "}" or the newline */
    if (atomic_load(&log_format) == LOG_FORMAT_TEXT) {
        size_t i = 0;
        for (; log_level_names[level][i]; i++) upper[i] = (char)(log_level_names[level][i] & ~0x20);
        upper[i] = '\0';
        n = (size_t)snprintf(line, cap, "%s %s %s: ", stamp, upper, component);
        if (log_request_id[0]) n += (size_t)snprintf(line + n, cap - n, "[%s] ", log_request_id);
        log_put(line, cap, &n, msg);
        return n;
    }
    n = (size_t)snprintf(line, cap, "{\"time\":\"%s\",\"level\":\"%s\",\"component\":\"",
                         stamp, log_level_names[level]);
    log_put_json(line, cap, &n, component);
    if (log_request_id[0]) {
        log_put(line, cap, &n, "\",\"request_id\":\"");
        log_put_json(line, cap, &n, log_request_id);
    }
    log_put(line, cap, &n, "\",\"message\":\"");
    log_put_json(line, cap, &n, msg);
    line[n++] = '"';
    line[n++] = '}';
    return n;
}

void log_msg(int level, const char *component, const char *fmt, ...) {
    char msg[LOG_LINE_MAX / 2], line[LOG_LINE_MAX];
    va_list ap;
    size_t n;

    if (level < atomic_load(&log_level)) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    n = log_format_line(line, sizeof(line), level, component, msg);
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* Nowhere left to report a failed log write. */
    }
}
