/* model: the checked model file, XGBoost scoring and the hot-swap slot
 * (see model.h). */
#include "ranker/ltr/model.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xgboost/c_api.h>

#include "services/base/status.h"

#define LTR_MAGIC "AISLELTR"
#define LTR_FORMAT 1
#define LTR_HEADER 28 /* magic 8, format 4, features 4, length 8, crc 4 */
#define LTR_MAX_BODY (1ull << 30)

struct ltr_model {
    atomic_int refs;
    BoosterHandle booster;
    uint32_t n_features;
    pthread_mutex_t lock; /* scoring */
};

struct ltr_slot {
    pthread_mutex_t lock; /* guards cur */
    ltr_model *cur;
};

static uint32_t ltr_crc_table[256];
static pthread_once_t ltr_crc_once = PTHREAD_ONCE_INIT;

static void ltr_crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        ltr_crc_table[i] = c;
    }
}

uint32_t ltr_crc32c(const void *data, size_t len) {
    pthread_once(&ltr_crc_once, ltr_crc_init);
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < len; i++) c = ltr_crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

int ltr_xgb_fail(int code, char *err, size_t errlen, const char *context) {
    const char *msg = XGBGetLastError();
    return status_fail(code, err, errlen, "%s: %.*s", context, (int)strcspn(msg, "\n"), msg);
}

static void ltr_put(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t ltr_get(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

int ltr_model_write(const char *path, const void *body, size_t len, uint32_t n_features,
                    char *err, size_t errlen) {
    uint8_t head[LTR_HEADER];
    memcpy(head, LTR_MAGIC, 8);
    ltr_put(head + 8, LTR_FORMAT, 4);
    ltr_put(head + 12, n_features, 4);
    ltr_put(head + 16, len, 8);
    ltr_put(head + 24, ltr_crc32c(body, len), 4);
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return status_fail(AISLE_EINVAL, err, errlen, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return status_fail(AISLE_EIO, err, errlen, "cannot create %s", tmp);
    int ok = write(fd, head, sizeof(head)) == (ssize_t)sizeof(head) &&
             write(fd, body, len) == (ssize_t)len && fsync(fd) == 0;
    ok &= close(fd) == 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return status_fail(AISLE_EIO, err, errlen, "cannot write %s", path);
    }
    return AISLE_OK;
}

static int ltr_model_wrap(BoosterHandle b, uint32_t n_features, ltr_model **out, char *err,
                          size_t errlen) {
    ltr_model *m = calloc(1, sizeof(*m));
    if (!m) {
        XGBoosterFree(b);
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    /* Scoring runs on serve's worker threads: no OpenMP team of its own. */
    if (XGBoosterSetParam(b, "nthread", "1") != 0) {
        XGBoosterFree(b);
        free(m);
        return ltr_xgb_fail(AISLE_EINTERNAL, err, errlen, "xgboost");
    }
    atomic_init(&m->refs, 1);
    m->booster = b;
    m->n_features = n_features;
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return AISLE_OK;
}

int ltr_model_from_booster(void *booster, uint32_t n_features, ltr_model **out, char *err,
                           size_t errlen) {
    return ltr_model_wrap(booster, n_features, out, err, errlen);
}

/* Checks the header and body of a file's bytes. */
static int ltr_check(const char *path, const uint8_t *data, size_t n, uint32_t *features,
                     char *err, size_t errlen) {
    if (n < LTR_HEADER || memcmp(data, LTR_MAGIC, 8) != 0)
        return status_fail(AISLE_EFORMAT, err, errlen, "%s: not an Aisle ranker model", path);
    if (ltr_get(data + 8, 4) != LTR_FORMAT)
        return status_fail(AISLE_EFORMAT, err, errlen, "%s: model format %u, not %d", path,
                           (unsigned)ltr_get(data + 8, 4), LTR_FORMAT);
    uint64_t len = ltr_get(data + 16, 8);
    *features = (uint32_t)ltr_get(data + 12, 4);
    if (len != n - LTR_HEADER || *features == 0)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s: truncated or padded (%llu body bytes, header says %llu)", path,
                           (unsigned long long)(n - LTR_HEADER), (unsigned long long)len);
    if (ltr_crc32c(data + LTR_HEADER, len) != ltr_get(data + 24, 4))
        return status_fail(AISLE_EFORMAT, err, errlen, "%s: checksum mismatch (corrupt)", path);
    return AISLE_OK;
}

static int ltr_read_file(const char *path, uint8_t **data, size_t *n, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return status_fail(AISLE_EIO, err, errlen, "cannot open %s", path);
    int rc = AISLE_OK;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size < 0 || (unsigned long long)size > LTR_MAX_BODY + LTR_HEADER) rc = AISLE_EFORMAT;
    *data = rc == AISLE_OK ? malloc(size ? (size_t)size : 1) : NULL;
    if (rc == AISLE_OK && (!*data || fseek(f, 0, SEEK_SET) ||
                           fread(*data, 1, (size_t)size, f) != (size_t)size))
        rc = AISLE_EIO;
    fclose(f);
    if (rc != AISLE_OK) {
        free(*data);
        return status_fail(rc, err, errlen, "cannot read %s", path);
    }
    *n = (size_t)size;
    return AISLE_OK;
}

int ltr_model_load(const char *path, ltr_model **out, char *err, size_t errlen) {
    uint8_t *data = NULL;
    size_t n = 0;
    uint32_t features = 0;
    BoosterHandle b = NULL;
    int rc = ltr_read_file(path, &data, &n, err, errlen);
    if (rc != AISLE_OK) return rc;
    rc = ltr_check(path, data, n, &features, err, errlen);
    if (rc == AISLE_OK &&
        (XGBoosterCreate(NULL, 0, &b) != 0 ||
         XGBoosterLoadModelFromBuffer(b, data + LTR_HEADER, n - LTR_HEADER) != 0)) {
        char what[512];
        snprintf(what, sizeof(what), "%s: XGBoost refused the model", path);
        rc = ltr_xgb_fail(AISLE_EFORMAT, err, errlen, what);
    }
    free(data);
    if (rc != AISLE_OK) goto fail;
    return ltr_model_wrap(b, features, out, err, errlen);
fail:
    if (b) XGBoosterFree(b);
    return rc;
}

uint32_t ltr_model_features(const ltr_model *m) { return m->n_features; }

int ltr_model_save(ltr_model *m, const char *path, char *err, size_t errlen) {
    bst_ulong len;
    const char *body;
    pthread_mutex_lock(&m->lock);
    int rc = XGBoosterSaveModelToBuffer(m->booster, "{\"format\": \"json\"}", &len, &body) == 0
                 ? ltr_model_write(path, body, len, m->n_features, err, errlen)
                 : ltr_xgb_fail(AISLE_EINTERNAL, err, errlen, "xgboost");
    pthread_mutex_unlock(&m->lock); /* body is the booster's until its next call */
    return rc;
}

int ltr_model_score(ltr_model *m, const float *rows, size_t n, float *out, char *err,
                    size_t errlen) {
    /* In-place prediction over the caller's rows: no DMatrix per call. */
    static const char config[] = "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
                                 "\"iteration_end\": 0, \"strict_shape\": false, \"cache_id\": 0, "
                                 "\"missing\": NaN}";
    char values[160];
    const bst_ulong *shape;
    bst_ulong dim;
    const float *res;
    if (n == 0) return AISLE_OK;
    snprintf(values, sizeof(values),
             "{\"data\": [%llu, true], \"shape\": [%zu, %u], \"typestr\": \"<f4\", "
             "\"version\": 3}",
             (unsigned long long)(uintptr_t)rows, n, m->n_features);
    pthread_mutex_lock(&m->lock);
    int rc = XGBoosterPredictFromDense(m->booster, values, config, NULL, &shape, &dim, &res) == 0
                 ? AISLE_OK
                 : ltr_xgb_fail(AISLE_EINTERNAL, err, errlen, "xgboost");
    if (rc == AISLE_OK) memcpy(out, res, n * sizeof(*out)); /* res is the booster's */
    pthread_mutex_unlock(&m->lock);
    return rc;
}

ltr_model *ltr_model_ref(ltr_model *m) {
    atomic_fetch_add(&m->refs, 1);
    return m;
}

void ltr_model_release(ltr_model *m) {
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1) return;
    XGBoosterFree(m->booster);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

int ltr_slot_new(ltr_slot **out) {
    ltr_slot *s = calloc(1, sizeof(*s));
    if (!s) return AISLE_ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return AISLE_OK;
}

void ltr_slot_free(ltr_slot *s) {
    if (!s) return;
    ltr_model_release(s->cur);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void ltr_slot_put(ltr_slot *s, ltr_model *m) {
    pthread_mutex_lock(&s->lock);
    ltr_model *old = s->cur;
    s->cur = m;
    pthread_mutex_unlock(&s->lock);
    ltr_model_release(old);
}

int ltr_slot_load(ltr_slot *s, const char *path, char *err, size_t errlen) {
    ltr_model *m;
    int rc = ltr_model_load(path, &m, err, errlen);
    if (rc != AISLE_OK) return rc;
    ltr_slot_put(s, m);
    return AISLE_OK;
}

ltr_model *ltr_slot_acquire(ltr_slot *s) {
    pthread_mutex_lock(&s->lock);
    ltr_model *m = s->cur ? ltr_model_ref(s->cur) : NULL;
    pthread_mutex_unlock(&s->lock);
    return m;
}
