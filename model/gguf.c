/* gguf.c — bounds-checked GGUF parser and a streaming GGUF writer.
 *
 * The parser walks the header once with a cursor that refuses to step past
 * the image; every count is checked against the bytes left before anything
 * is allocated for it, so a forged count cannot cause a huge allocation.
 * Tensor extents are checked with overflow-safe arithmetic. */
#include "model/gguf.h"

#include "model/kern.h"
#include "model/quant.h"
#include "services/base/buf.h"
#include "services/base/status.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_ALIGN_DEFAULT 32
#define GGUF_MAX_DEPTH 4 /* nesting of arrays of arrays we accept */

typedef struct gguf_kv {
    gguf_str key;
    uint32_t type;
    const uint8_t *val; /* scalar value, string, or first array item */
    uint32_t arr_type;
    uint64_t arr_n;
} gguf_kv;

struct gguf_file {
    uint32_t version;
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
};

typedef struct gguf_rd {
    const uint8_t *p;
    size_t size, off;
} gguf_rd;

static int rd_take(gguf_rd *r, uint64_t n, const uint8_t **at) {
    if (n > r->size - r->off)
        return -1;
    *at = r->p + r->off;
    r->off += (size_t)n;
    return 0;
}

static int rd_u32(gguf_rd *r, uint32_t *v) {
    const uint8_t *at;
    if (rd_take(r, 4, &at))
        return -1;
    memcpy(v, at, 4);
    return 0;
}

static int rd_u64(gguf_rd *r, uint64_t *v) {
    const uint8_t *at;
    if (rd_take(r, 8, &at))
        return -1;
    memcpy(v, at, 8);
    return 0;
}

static int rd_str(gguf_rd *r, gguf_str *s) {
    const uint8_t *at;
    if (rd_u64(r, &s->len) || rd_take(r, s->len, &at))
        return -1;
    s->p = (const char *)at;
    return 0;
}

/* Size of a fixed-size value type; 0 for strings, arrays and unknowns. */
static size_t gguf_vsize(uint32_t t) {
    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < sizeof sz / sizeof sz[0] ? sz[t] : 0;
}

static int gguf_vtype_ok(uint32_t t) { return t <= GGUF_FLOAT64; }

static int rd_skip_value(gguf_rd *r, uint32_t type, int depth);

static int rd_skip_array(gguf_rd *r, uint32_t *atype, uint64_t *n, int depth) {
    const uint8_t *at;
    size_t es;

    if (depth > GGUF_MAX_DEPTH || rd_u32(r, atype) || rd_u64(r, n) ||
        !gguf_vtype_ok(*atype))
        return -1;
    es = gguf_vsize(*atype);
    if (es) {
        if (*n > (r->size - r->off) / es)
            return -1;
        return rd_take(r, *n * es, &at);
    }
    for (uint64_t i = 0; i < *n; i++)
        if (rd_skip_value(r, *atype, depth + 1))
            return -1;
    return 0;
}

static int rd_skip_value(gguf_rd *r, uint32_t type, int depth) {
    const uint8_t *at;
    gguf_str s;
    uint32_t atype;
    uint64_t n;

    if (type == GGUF_STRING)
        return rd_str(r, &s);
    if (type == GGUF_ARRAY)
        return rd_skip_array(r, &atype, &n, depth);
    if (!gguf_vsize(type))
        return -1;
    return rd_take(r, gguf_vsize(type), &at);
}

typedef struct gguf_tinfo {
    const char *name;
    uint32_t elems, bytes; /* block; 0 = layout not known here */
} gguf_tinfo;

static const gguf_tinfo gguf_types[GGUF_T_COUNT] = {
    [0] = {"F32", 1, 4},      [1] = {"F16", 1, 2},
    [2] = {"Q4_0", 32, 18},   [3] = {"Q4_1", 32, 20},
    [6] = {"Q5_0", 32, 22},   [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},   [9] = {"Q8_1", 0, 0},
    [10] = {"Q2_K", 0, 0},    [11] = {"Q3_K", 0, 0},
    [12] = {"Q4_K", 256, 144}, [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210}, [15] = {"Q8_K", 0, 0},
    [16] = {"IQ2_XXS", 0, 0}, [17] = {"IQ2_XS", 0, 0},
    [18] = {"IQ3_XXS", 0, 0}, [19] = {"IQ1_S", 0, 0},
    [20] = {"IQ4_NL", 0, 0},  [21] = {"IQ3_S", 0, 0},
    [22] = {"IQ2_S", 0, 0},   [23] = {"IQ4_XS", 0, 0},
    [24] = {"I8", 0, 0},      [25] = {"I16", 0, 0},
    [26] = {"I32", 0, 0},     [27] = {"I64", 0, 0},
    [28] = {"F64", 0, 0},     [29] = {"IQ1_M", 0, 0},
    [30] = {"BF16", 1, 2},    [34] = {"TQ1_0", 0, 0},
    [35] = {"TQ2_0", 0, 0},
};

const char *gguf_type_name(uint32_t type) {
    return type < GGUF_T_COUNT ? gguf_types[type].name : NULL;
}

int gguf_type_block(uint32_t type, uint32_t *elems, uint32_t *bytes) {
    if (type >= GGUF_T_COUNT || !gguf_types[type].elems)
        return AISLE_ENOTFOUND;
    *elems = gguf_types[type].elems;
    *bytes = gguf_types[type].bytes;
    return AISLE_OK;
}

/* Bytes of a tensor; -1 for types of unknown layout, overflow or rows
 * that are not whole blocks. */
static int gguf_tensor_bytes(const gguf_tensor *t, uint64_t *out) {
    uint32_t be, bb;
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++)
        if (t->ne[d] == 0 || __builtin_mul_overflow(n, t->ne[d], &n))
            return -1;
    if (gguf_type_block(t->type, &be, &bb) || t->ne[0] % be)
        return -1;
    return __builtin_mul_overflow(n / be, (uint64_t)bb, out) ? -1 : 0;
}

static const gguf_kv *gguf_find_kv(const gguf_file *g, const char *key) {
    size_t len = strlen(key);
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key.len == len && !memcmp(g->kv[i].key.p, key, len))
            return &g->kv[i];
    return NULL;
}

int gguf_map(const char *path, gguf_image *img, char *err, size_t errlen) {
    struct stat st;
    void *p;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = AISLE_EIO;

    img->data = NULL;
    img->size = 0;
    if (fd < 0)
        return status_fail(AISLE_EIO, err, errlen, "%s: %s", path,
                           strerror(errno));
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size == 0) {
        rc = status_fail(AISLE_EFORMAT, err, errlen,
                         "%s: not a regular, non-empty file", path);
        goto fail;
    }
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        status_fmt(err, errlen, "%s: mmap: %s", path, strerror(errno));
        goto fail;
    }
    img->data = p;
    img->size = (size_t)st.st_size;
    rc = AISLE_OK;
fail:
    close(fd);
    return rc;
}

void gguf_unmap(gguf_image *img) {
    if (img->data)
        munmap((void *)img->data, img->size);
    img->data = NULL;
    img->size = 0;
}

/* Up to 64 bytes of a name for messages. */
#define GGUF_NAME(s) (int)((s).len > 64 ? 64 : (s).len), (s).p

static int gguf_read_header(gguf_rd *r, gguf_file *g, char *err,
                            size_t errlen) {
    uint32_t magic;
    if (rd_u32(r, &magic) || magic != GGUF_MAGIC)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "not a GGUF file (bad magic)");
    if (rd_u32(r, &g->version) || (g->version != 2 && g->version != 3))
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "unsupported GGUF version %u (want 2 or 3)",
                           g->version);
    /* Each key-value pair takes at least 13 bytes and each tensor info 24,
     * so larger counts cannot fit: refuse before allocating for them. */
    if (rd_u64(r, &g->n_tensors) || rd_u64(r, &g->n_kv) ||
        g->n_kv > (r->size - r->off) / 13 ||
        g->n_tensors > (r->size - r->off) / 24)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "truncated GGUF header");
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors)
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    return AISLE_OK;
}

static int gguf_read_kvs(gguf_rd *r, gguf_file *g, char *err, size_t errlen) {
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        size_t before;
        if (rd_str(r, &kv->key) || rd_u32(r, &kv->type) ||
            !gguf_vtype_ok(kv->type))
            goto bad;
        before = r->off;
        if (kv->type == GGUF_ARRAY) {
            if (rd_skip_array(r, &kv->arr_type, &kv->arr_n, 1))
                goto bad;
            kv->val = r->p + before + 12; /* past item type and count */
        } else {
            kv->val = r->p + before;
            if (rd_skip_value(r, kv->type, 0))
                goto bad;
        }
    }
    return AISLE_OK;
bad:
    return status_fail(AISLE_EFORMAT, err, errlen,
                       "corrupt or truncated GGUF metadata");
}

static int gguf_read_infos(gguf_rd *r, gguf_file *g, char *err,
                           size_t errlen) {
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        if (rd_str(r, &t->name) || rd_u32(r, &t->n_dims))
            goto bad;
        if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
            return status_fail(AISLE_EFORMAT, err, errlen,
                               "tensor %.*s: %u dimensions",
                               GGUF_NAME(t->name), t->n_dims);
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
            t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++)
            if (rd_u64(r, &t->ne[d]))
                goto bad;
        if (rd_u32(r, &t->type) || rd_u64(r, &t->offset))
            goto bad;
    }
    return AISLE_OK;
bad:
    return status_fail(AISLE_EFORMAT, err, errlen,
                       "corrupt or truncated GGUF tensor table");
}

/* Points each tensor of a known type into the data section that starts at
 * the aligned end of the header, checking that it lies inside the image. */
static int gguf_place(gguf_rd *r, gguf_file *g, char *err, size_t errlen) {
    uint32_t align = GGUF_ALIGN_DEFAULT;
    size_t data_off;

    if (gguf_find_kv(g, "general.alignment") &&
        (gguf_get_u32(g, "general.alignment", &align) || align == 0 ||
         (align & (align - 1)) || align > 65536))
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "bad general.alignment");
    data_off = (r->off + align - 1) / align * align;
    /* A vocab-only file may end with its metadata, unpadded. */
    if (data_off > r->size && g->n_tensors)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "truncated GGUF header");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        if (gguf_tensor_bytes(t, &t->nbytes))
            continue; /* unknown layout: refused if a caller needs it */
        if (t->offset % align || t->offset > r->size - data_off ||
            t->nbytes > r->size - data_off - t->offset)
            return status_fail(AISLE_EFORMAT, err, errlen,
                               "tensor %.*s lies outside the file",
                               GGUF_NAME(t->name));
        t->data = r->p + data_off + t->offset;
    }
    return AISLE_OK;
}

int gguf_open(const void *data, size_t size, gguf_file **out, char *err,
              size_t errlen) {
    gguf_rd r = {data, size, 0};
    gguf_file *g = calloc(1, sizeof *g); /* the caller's on success */
    int rc;

    *out = NULL;
    if (!g)
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if ((rc = gguf_read_header(&r, g, err, errlen)) ||
        (rc = gguf_read_kvs(&r, g, err, errlen)) ||
        (rc = gguf_read_infos(&r, g, err, errlen)) ||
        (rc = gguf_place(&r, g, err, errlen)))
        goto fail;
    *out = g;
    return AISLE_OK;

fail:
    gguf_close(g);
    return rc;
}

void gguf_close(gguf_file *g) {
    if (!g)
        return;
    free(g->kv);
    free(g->tensors);
    free(g);
}

uint32_t gguf_version(const gguf_file *g) { return g->version; }

/* An integer value of any width, as signed 64 bits plus a flag for uint64
 * values above INT64_MAX. */
static int gguf_int(const gguf_kv *kv, int64_t *v, int *big) {
    uint8_t u8; int8_t i8; uint16_t u16; int16_t i16;
    uint32_t u32; int32_t i32; uint64_t u64;

    *big = 0;
    switch (kv->type) {
    case GGUF_UINT8: memcpy(&u8, kv->val, 1); *v = u8; return 0;
    case GGUF_INT8: memcpy(&i8, kv->val, 1); *v = i8; return 0;
    case GGUF_UINT16: memcpy(&u16, kv->val, 2); *v = u16; return 0;
    case GGUF_INT16: memcpy(&i16, kv->val, 2); *v = i16; return 0;
    case GGUF_UINT32: memcpy(&u32, kv->val, 4); *v = u32; return 0;
    case GGUF_INT32: memcpy(&i32, kv->val, 4); *v = i32; return 0;
    case GGUF_INT64: memcpy(v, kv->val, 8); return 0;
    case GGUF_UINT64:
        memcpy(&u64, kv->val, 8);
        *big = u64 > INT64_MAX;
        *v = *big ? 0 : (int64_t)u64;
        return 0;
    default: return -1;
    }
}

int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out) {
    const gguf_kv *kv = gguf_find_kv(g, key);
    int64_t v;
    int big;
    if (!kv || gguf_int(kv, &v, &big) || big || v < 0 || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int gguf_get_f32(const gguf_file *g, const char *key, float *out) {
    const gguf_kv *kv = gguf_find_kv(g, key);
    double d;
    if (kv && kv->type == GGUF_FLOAT32) {
        memcpy(out, kv->val, 4);
        return 0;
    }
    if (kv && kv->type == GGUF_FLOAT64) {
        memcpy(&d, kv->val, 8);
        *out = (float)d;
        return 0;
    }
    return -1;
}

int gguf_get_bool(const gguf_file *g, const char *key, int *out) {
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv || kv->type != GGUF_BOOL)
        return -1;
    *out = kv->val[0] != 0;
    return 0;
}

int gguf_get_str(const gguf_file *g, const char *key, gguf_str *out) {
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv || kv->type != GGUF_STRING)
        return -1;
    memcpy(&out->len, kv->val, 8);
    out->p = (const char *)kv->val + 8;
    return 0;
}

int gguf_get_arr(const gguf_file *g, const char *key, uint32_t *type,
                 uint64_t *n, const void **items) {
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv || kv->type != GGUF_ARRAY || !gguf_vsize(kv->arr_type))
        return -1;
    *type = kv->arr_type;
    *n = kv->arr_n;
    *items = kv->val;
    return 0;
}

int gguf_get_strs(const gguf_file *g, const char *key, gguf_str **out,
                  uint64_t *n) {
    const gguf_kv *kv = gguf_find_kv(g, key);
    const uint8_t *p;
    gguf_str *s;

    if (!kv || kv->type != GGUF_ARRAY || kv->arr_type != GGUF_STRING)
        return -1;
    /* The parse already walked these strings within bounds. */
    s = malloc((kv->arr_n ? kv->arr_n : 1) * sizeof *s);
    if (!s)
        return -1;
    p = kv->val;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        memcpy(&s[i].len, p, 8);
        s[i].p = (const char *)p + 8;
        p += 8 + s[i].len;
    }
    *out = s;
    *n = kv->arr_n;
    return 0;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name) {
    size_t len = strlen(name);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        if (t->name.len == len && !memcmp(t->name.p, name, len))
            return t;
    }
    return NULL;
}

/* ---------------------------------------------------------------- writer */

typedef struct gguf_wtensor {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    gguf_row_fn fn;
    void *ud;
    uint64_t nbytes, offset;
} gguf_wtensor;

struct gguf_writer {
    buf kv; /* serialized key-value section; OOM is sticky */
    uint64_t n_kv;
    gguf_wtensor *t;
    size_t n_t, cap_t;
};

gguf_writer *gguf_writer_new(void) {
    gguf_writer *w = calloc(1, sizeof *w);
    if (w && gguf_writer_u32(w, "general.alignment", GGUF_ALIGN_DEFAULT)) {
        gguf_writer_free(w);
        return NULL;
    }
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w)
        return;
    for (size_t i = 0; i < w->n_t; i++)
        free(w->t[i].name);
    free(w->t);
    buf_free(&w->kv);
    free(w);
}

static int wr_put(gguf_writer *w, const void *p, size_t n) {
    buf_put(&w->kv, p, n);
    return buf_status(&w->kv);
}

static int wr_u32(gguf_writer *w, uint32_t v) { return wr_put(w, &v, 4); }
static int wr_u64(gguf_writer *w, uint64_t v) { return wr_put(w, &v, 8); }

static int wr_str(gguf_writer *w, const char *p, uint64_t len) {
    return wr_u64(w, len) || wr_put(w, p, (size_t)len) ? AISLE_ENOMEM : 0;
}

/* Starts a pair: key and value type; the value follows. */
static int wr_key(gguf_writer *w, const char *key, uint32_t type) {
    w->n_kv++;
    return wr_str(w, key, strlen(key)) || wr_u32(w, type) ? AISLE_ENOMEM : 0;
}

int gguf_writer_u32(gguf_writer *w, const char *key, uint32_t v) {
    return wr_key(w, key, GGUF_UINT32) || wr_u32(w, v) ? AISLE_ENOMEM : 0;
}

int gguf_writer_f32(gguf_writer *w, const char *key, float v) {
    return wr_key(w, key, GGUF_FLOAT32) || wr_put(w, &v, 4) ? AISLE_ENOMEM : 0;
}

int gguf_writer_bool(gguf_writer *w, const char *key, int v) {
    uint8_t b = v != 0;
    return wr_key(w, key, GGUF_BOOL) || wr_put(w, &b, 1) ? AISLE_ENOMEM : 0;
}

int gguf_writer_str(gguf_writer *w, const char *key, const char *v) {
    return wr_key(w, key, GGUF_STRING) || wr_str(w, v, strlen(v)) ? AISLE_ENOMEM
                                                                   : 0;
}

static int wr_arr(gguf_writer *w, const char *key, uint32_t type,
                  const void *v, uint64_t n, size_t es) {
    if (wr_key(w, key, GGUF_ARRAY) || wr_u32(w, type) || wr_u64(w, n))
        return AISLE_ENOMEM;
    return wr_put(w, v, (size_t)n * es);
}

int gguf_writer_strs(gguf_writer *w, const char *key, const gguf_str *v,
                     uint64_t n) {
    if (wr_key(w, key, GGUF_ARRAY) || wr_u32(w, GGUF_STRING) || wr_u64(w, n))
        return AISLE_ENOMEM;
    for (uint64_t i = 0; i < n; i++)
        if (wr_str(w, v[i].p, v[i].len))
            return AISLE_ENOMEM;
    return 0;
}

int gguf_writer_f32s(gguf_writer *w, const char *key, const float *v,
                     uint64_t n) {
    return wr_arr(w, key, GGUF_FLOAT32, v, n, 4);
}

int gguf_writer_i32s(gguf_writer *w, const char *key, const int32_t *v,
                     uint64_t n) {
    return wr_arr(w, key, GGUF_INT32, v, n, 4);
}

int gguf_writer_tensor(gguf_writer *w, const char *name, uint32_t type,
                       uint32_t n_dims, const uint64_t *ne, gguf_row_fn fn,
                       void *ud) {
    gguf_wtensor *t;

    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS ||
        (type != GGUF_T_F32 && type != GGUF_T_F16 && type != GGUF_T_Q8_0 &&
         type != GGUF_T_Q4_K && type != GGUF_T_Q6_K))
        return AISLE_EINVAL; /* gguf_encode_row writes only these */
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 16;
        gguf_wtensor *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt)
            return AISLE_ENOMEM;
        w->t = nt;
        w->cap_t = cap;
    }
    t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    {
        gguf_tensor probe = {.n_dims = n_dims, .type = type};
        memcpy(probe.ne, t->ne, sizeof probe.ne);
        if (gguf_tensor_bytes(&probe, &t->nbytes))
            return AISLE_EINVAL;
    }
    t->name = strdup(name);
    if (!t->name)
        return AISLE_ENOMEM;
    t->fn = fn;
    t->ud = ud;
    w->n_t++;
    return 0;
}

static int gguf_pad(FILE *f, uint64_t pos) {
    static const uint8_t zero[GGUF_ALIGN_DEFAULT];
    size_t pad = (size_t)((GGUF_ALIGN_DEFAULT - pos % GGUF_ALIGN_DEFAULT) %
                          GGUF_ALIGN_DEFAULT);
    return fwrite(zero, 1, pad, f) == pad ? 0 : -1;
}

/* Converts one float row to the tensor's type in out. */
static void gguf_encode_row(uint32_t type, const float *row, uint64_t n,
                            uint8_t *out) {
    if (type == GGUF_T_F32) {
        memcpy(out, row, (size_t)n * 4);
    } else if (type == GGUF_T_F16) {
        for (uint64_t j = 0; j < n; j++) {
            uint16_t h = kern_f32_to_f16(row[j]);
            memcpy(out + j * 2, &h, 2);
        }
    } else {
        int rc = quant_encode(quant_kern_type(type), row, (size_t)n, out);
        assert(rc == AISLE_OK); /* gguf_writer_tensor checked type and row */
        (void)rc;
    }
}

int gguf_writer_write(gguf_writer *w, const char *path, char *err,
                      size_t errlen) {
    FILE *f = NULL;
    float *row = NULL;
    uint8_t *enc = NULL;
    uint64_t pos, off = 0, maxrow = 1;
    uint32_t head[2] = {GGUF_MAGIC, 3};
    int rc = AISLE_EIO, created = 0;

    for (size_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        off = (off + w->t[i].nbytes + GGUF_ALIGN_DEFAULT - 1) /
              GGUF_ALIGN_DEFAULT * GGUF_ALIGN_DEFAULT;
        if (w->t[i].ne[0] > maxrow)
            maxrow = w->t[i].ne[0];
    }
    row = malloc((size_t)maxrow * sizeof *row);
    enc = malloc((size_t)maxrow * sizeof *row);
    if (!row || !enc) {
        status_fmt(err, errlen, "out of memory");
        rc = AISLE_ENOMEM;
        goto fail;
    }
    f = fopen(path, "wb");
    if (!f) {
        status_fmt(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    created = 1;
    if (fwrite(head, 4, 2, f) != 2 || fwrite(&(uint64_t){w->n_t}, 8, 1, f) != 1 ||
        fwrite(&w->n_kv, 8, 1, f) != 1 ||
        fwrite(w->kv.data, 1, w->kv.len, f) != w->kv.len)
        goto io;
    pos = 24 + w->kv.len;
    for (size_t i = 0; i < w->n_t; i++) {
        gguf_wtensor *t = &w->t[i];
        uint64_t len = strlen(t->name);
        if (fwrite(&len, 8, 1, f) != 1 || fwrite(t->name, 1, len, f) != len ||
            fwrite(&t->n_dims, 4, 1, f) != 1 ||
            fwrite(t->ne, 8, t->n_dims, f) != t->n_dims ||
            fwrite(&t->type, 4, 1, f) != 1 || fwrite(&t->offset, 8, 1, f) != 1)
            goto io;
        pos += 8 + len + 4 + 8 * t->n_dims + 4 + 8;
    }
    if (gguf_pad(f, pos))
        goto io;
    for (size_t i = 0; i < w->n_t; i++) {
        gguf_wtensor *t = &w->t[i];
        uint64_t rows = t->ne[1] * t->ne[2] * t->ne[3]; /* checked above */
        uint64_t rbytes = t->nbytes / rows;
        for (uint64_t r = 0; r < rows; r++) {
            rc = t->fn(t->ud, r, row);
            if (rc) {
                status_fmt(err, errlen, "cannot produce tensor %s", t->name);
                goto fail;
            }
            gguf_encode_row(t->type, row, t->ne[0], enc);
            if (fwrite(enc, 1, (size_t)rbytes, f) != rbytes)
                goto io;
        }
        if (gguf_pad(f, t->nbytes))
            goto io;
    }
    if (fclose(f)) {
        f = NULL;
        goto io;
    }
    free(row);
    free(enc);
    return 0;

io:
    status_fmt(err, errlen, "%s: write failed: %s", path, strerror(errno));
    rc = AISLE_EIO;
fail:
    if (f)
        fclose(f);
    if (created)
        unlink(path); /* never leave a half-written model behind */
    free(row);
    free(enc);
    return rc;
}
