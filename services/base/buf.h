/* buf: a growable byte buffer, always NUL-terminated.
 *
 * Answers, generated text and files being assembled all grow by appends of
 * unknown total size. A failed allocation is sticky: later appends do
 * nothing and buf_status reports AISLE_ENOMEM, so a caller builds the whole
 * text and checks once at the end instead of after every append. */
#ifndef AISLE_BUF_H
#define AISLE_BUF_H

#include <stddef.h>

typedef struct buf {
    char *data; /* owned; NULL until the first append */
    size_t len; /* bytes in data, the terminator not counted */
    size_t cap;
    int oom;    /* an append failed: contents are incomplete */
} buf;

/* Zero-initialising a buf (buf b = {0}) is the same as buf_init. */
void buf_init(buf *b);
void buf_free(buf *b);
/* Keeps the memory, drops the contents and the failure. */
void buf_reset(buf *b);

void buf_put(buf *b, const void *p, size_t n);
void buf_puts(buf *b, const char *s);
void buf_putc(buf *b, char c);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for n more bytes without adding them; returns AISLE_OK or
 * AISLE_ENOMEM (then sticky). */
int buf_reserve(buf *b, size_t n);

/* AISLE_OK, or AISLE_ENOMEM when an append failed. */
int buf_status(const buf *b);
/* The contents: "" for an empty buffer; valid until the next change. */
const char *buf_str(const buf *b);
/* Hands the contents to the caller (free() them) and empties b. Returns
 * NULL when an append failed (the partial contents are freed). */
char *buf_take(buf *b);

#endif
