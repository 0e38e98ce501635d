/* buf: doubling growth; one allocation failure poisons the buffer. */
#include "services/base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"

void buf_init(buf *b) { memset(b, 0, sizeof(*b)); }

void buf_free(buf *b) {
    free(b->data);
    buf_init(b);
}

void buf_reset(buf *b) {
    b->len = 0;
    b->oom = 0;
    if (b->data) b->data[0] = '\0';
}

int buf_reserve(buf *b, size_t n) {
    if (b->oom) return AISLE_ENOMEM;
    if (n > (size_t)-1 / 2 - b->len) goto fail;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *g;
        while (cap < b->len + n + 1) cap *= 2;
        if (!(g = realloc(b->data, cap))) goto fail;
        b->data = g;
        b->cap = cap;
    }
    return AISLE_OK;
fail:
    b->oom = 1;
    return AISLE_ENOMEM;
}

void buf_put(buf *b, const void *p, size_t n) {
    if (buf_reserve(b, n) != AISLE_OK) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_puts(buf *b, const char *s) { buf_put(b, s, strlen(s)); }

void buf_putc(buf *b, char c) { buf_put(b, &c, 1); }

void buf_printf(buf *b, const char *fmt, ...) {
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) != AISLE_OK) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

int buf_status(const buf *b) { return b->oom ? AISLE_ENOMEM : AISLE_OK; }

const char *buf_str(const buf *b) { return b->data ? b->data : ""; }

char *buf_take(buf *b) {
    char *s = b->data;
    if (b->oom) {
        buf_free(b);
        return NULL;
    }
    if (!s) s = calloc(1, 1);
    buf_init(b);
    return s;
}
