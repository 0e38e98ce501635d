/* precord: the profile record's format (see precord.h). Every field is
 * read and written through memcpy and an explicit byte order, so the
 * record reads the same on any host and no access needs alignment (a
 * Redis string's bytes have none). */
#include "services/profile/precord.h"

#include <assert.h>
#include <endian.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static const unsigned char precord_magic[4] = {'A', 'I', 'P', 'R'};

enum {
    PRECORD_AT_VERSION = 4,
    PRECORD_AT_COUNT = 8,
    PRECORD_AT_MARKS = 12,
    PRECORD_AT_HEAP = 16,
    PRECORD_AT_META = 24,
};

/* Little-endian fields at any alignment: a memcpy and a byte-order
 * conversion, which compile to one load or store on a little-endian host. */
static uint64_t precord_get(const unsigned char *p, int bytes) {
    uint64_t v8;
    uint32_t v4;
    uint16_t v2;
    switch (bytes) {
    case 2:
        memcpy(&v2, p, 2);
        return le16toh(v2);
    case 4:
        memcpy(&v4, p, 4);
        return le32toh(v4);
    default:
        assert(bytes == 8);
        memcpy(&v8, p, 8);
        return le64toh(v8);
    }
}

static void precord_put(unsigned char *p, int bytes, uint64_t v) {
    uint64_t v8 = htole64(v);
    uint32_t v4 = htole32((uint32_t)v);
    uint16_t v2 = htole16((uint16_t)v);
    switch (bytes) {
    case 2:
        memcpy(p, &v2, 2);
        break;
    case 4:
        memcpy(p, &v4, 4);
        break;
    default:
        assert(bytes == 8);
        memcpy(p, &v8, 8);
    }
}

static double precord_get_f64(const unsigned char *p) {
    uint64_t u = precord_get(p, 8);
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static void precord_put_f64(unsigned char *p, double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    precord_put(p, 8, u);
}

static unsigned char *precord_entry(unsigned char *r, size_t i) {
    return r + PRECORD_HEAD + PRECORD_ENTRY * i;
}

static const unsigned char *precord_centry(const unsigned char *r, size_t i) {
    return r + PRECORD_HEAD + PRECORD_ENTRY * i;
}

size_t precord_count(const unsigned char *r) { return precord_get(r + PRECORD_AT_COUNT, 4); }
size_t precord_marks(const unsigned char *r) { return precord_get(r + PRECORD_AT_MARKS, 4); }

static size_t precord_heap(const unsigned char *r) { return precord_get(r + PRECORD_AT_HEAP, 4); }

size_t precord_size(const unsigned char *r) {
    return PRECORD_HEAD + PRECORD_ENTRY * precord_count(r) + precord_heap(r);
}

double precord_meta(const unsigned char *r, int which) {
    assert(which >= 0 && which < PRECORD_NMETA);
    return precord_get_f64(r + PRECORD_AT_META + 8 * which);
}

void precord_set_meta(unsigned char *r, int which, double v) {
    assert(which >= 0 && which < PRECORD_NMETA);
    precord_put_f64(r + PRECORD_AT_META + 8 * which, v);
}

/* Field i, its name read through heap (the start of the names). */
static void precord_read(const unsigned char *r, const unsigned char *heap, size_t i,
                         precord_field *f) {
    const unsigned char *e = precord_centry(r, i);
    f->name = (const char *)heap + precord_get(e, 4);
    f->len = precord_get(e + 4, 2);
    f->kind = (char)e[6];
    f->v = precord_get_f64(e + 8);
}

void precord_field_at(const unsigned char *r, size_t i, precord_field *f) {
    assert(i < precord_count(r));
    precord_read(r, precord_centry(r, precord_count(r)), i, f);
}

void precord_set_value(unsigned char *r, size_t i, double v) {
    assert(i < precord_count(r));
    precord_put_f64(precord_entry(r, i) + 8, v);
}

int precord_cmp(const precord_field *a, const precord_field *b) {
    int c;
    if (a->kind != b->kind) return (unsigned char)a->kind - (unsigned char)b->kind;
    c = memcmp(a->name, b->name, a->len < b->len ? a->len : b->len);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

int precord_check_bounds(const unsigned char *r, size_t len) {
    size_t count, heap;
    if (len < PRECORD_HEAD || memcmp(r, precord_magic, 4) != 0 ||
        r[PRECORD_AT_VERSION] != PRECORD_VERSION)
        return -1;
    count = precord_count(r);
    heap = precord_heap(r);
    /* 64-bit sizes: neither product nor sum of two u32s can wrap. */
    if (PRECORD_HEAD + PRECORD_ENTRY * count + heap != len) return -1;
    for (size_t i = 0; i < count; i++) {
        const unsigned char *e = precord_centry(r, i);
        if (precord_get(e, 4) + precord_get(e + 4, 2) > heap || e[6] == 0 || e[7] != 0)
            return -1;
    }
    return 0;
}

int precord_check(const unsigned char *r, size_t len) {
    const unsigned char *names;
    precord_field prev = {0}, f;
    size_t marks = 0;
    if (precord_check_bounds(r, len) != 0) return -1;
    names = precord_centry(r, precord_count(r));
    for (size_t i = 0; i < precord_count(r); i++) {
        precord_read(r, names, i, &f);
        if (i > 0 && precord_cmp(&prev, &f) >= 0) return -1;
        marks += f.kind == 'o';
        prev = f;
    }
    return marks == precord_marks(r) ? 0 : -1;
}

void precord_init(unsigned char *r, double erased) {
    memset(r, 0, PRECORD_HEAD);
    memcpy(r, precord_magic, 4);
    r[PRECORD_AT_VERSION] = PRECORD_VERSION;
    precord_set_meta(r, PRECORD_ERASED, erased);
    precord_set_meta(r, PRECORD_LM, NAN);
}

int precord_find(const unsigned char *r, char kind, const char *name, size_t len, size_t *at) {
    const unsigned char *heap = precord_centry(r, precord_count(r));
    precord_field key = {.kind = kind, .name = name, .len = len}, f;
    size_t lo = 0, hi = precord_count(r);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c;
        precord_read(r, heap, mid, &f);
        c = precord_cmp(&f, &key);
        if (c == 0) {
            *at = mid;
            return 1;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *at = lo;
    return 0;
}

/* Writes entry i: name at offset off of the heap. */
static void precord_put_entry(unsigned char *r, size_t i, size_t off, const precord_field *f) {
    unsigned char *e = precord_entry(r, i);
    assert(f->len <= PRECORD_MAX_NAME);
    precord_put(e, 4, off);
    precord_put(e + 4, 2, f->len);
    e[6] = (unsigned char)f->kind;
    e[7] = 0;
    precord_put_f64(e + 8, f->v);
}

void precord_insert(unsigned char *r, size_t at, char kind, const char *name, size_t len,
                    double v) {
    size_t count = precord_count(r), heap = precord_heap(r);
    precord_field f = {.kind = kind, .name = name, .len = len, .v = v};
    assert(at <= count && len <= PRECORD_MAX_NAME);
    /* The heap moves up by one entry, then the index tail, then the new
     * entry and its name (appended to the heap) go in. */
    memmove(precord_entry(r, count + 1), precord_entry(r, count), heap);
    memmove(precord_entry(r, at + 1), precord_entry(r, at), PRECORD_ENTRY * (count - at));
    precord_put_entry(r, at, heap, &f);
    memcpy(precord_entry(r, count + 1) + heap, name, len);
    precord_put(r + PRECORD_AT_COUNT, 4, count + 1);
    precord_put(r + PRECORD_AT_HEAP, 4, heap + len);
    if (kind == 'o') precord_put(r + PRECORD_AT_MARKS, 4, precord_marks(r) + 1);
}

size_t precord_build_size(const precord_field *f, size_t n) {
    size_t size = PRECORD_HEAD + PRECORD_ENTRY * n;
    for (size_t i = 0; i < n; i++) size += f[i].len;
    return size;
}

void precord_build(unsigned char *out, const double *meta, const precord_field *f, size_t n) {
    unsigned char *heap = precord_entry(out, n);
    size_t off = 0, marks = 0;
    precord_init(out, 0);
    for (int k = 0; k < PRECORD_NMETA; k++) precord_set_meta(out, k, meta[k]);
    for (size_t i = 0; i < n; i++) {
        assert(i == 0 || precord_cmp(&f[i - 1], &f[i]) < 0);
        precord_put_entry(out, i, off, &f[i]);
        memcpy(heap + off, f[i].name, f[i].len);
        off += f[i].len;
        marks += f[i].kind == 'o';
    }
    precord_put(out + PRECORD_AT_COUNT, 4, n);
    precord_put(out + PRECORD_AT_MARKS, 4, marks);
    precord_put(out + PRECORD_AT_HEAP, 4, off);
}
