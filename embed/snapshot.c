/* See snapshot.h. Every file is produced through one writer that tracks
 * size and CRC as it goes, and read back through one bounds-checked cursor,
 * so a damaged byte anywhere surfaces as a refused load, never as a wild
 * read. */
#include "embed/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <faiss/c_api/MetaIndexes_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include "embed/crc32c.h"
#include "embed/err.h"

#define SNAP_MAGIC_LEN 8
#define SNAP_MAX_FILES 16
#define SNAP_MAX_MANIFEST 65536
#define SNAP_MAX_NAME 1024

static const char *const snap_required[] = {"meta.txt", "items.bin", "P.f32", "Q.faiss",
                                            "neighbors.bin", "creators.bin"};
#define SNAP_N_REQUIRED (sizeof(snap_required) / sizeof(snap_required[0]))
static const char snap_optional[] = "bias.f32";

typedef struct {
    char name[32];
    uint64_t size;
    uint32_t crc;
} snap_entry;

/* dir/name into out (PATH_MAX bytes); -1, with err set, when too long. */
static int path_join(char *out, const char *dir, const char *name, char *err) {
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_MAX) {
        embed_err_set(err, "%s/%s: path too long", dir, name);
        return -1;
    }
    return 0;
}

/* ---- writing ---------------------------------------------------------- */

typedef struct {
    FILE *f;
    uint64_t size;
    uint32_t crc;
    int bad;
} snap_out;

static void out_bytes(snap_out *o, const void *p, size_t n) {
    if (o->bad || n == 0) return;
    if (fwrite(p, 1, n, o->f) != n) o->bad = 1;
    o->crc = embed_crc32c(o->crc, p, n);
    o->size += n;
}

static void out_u32(snap_out *o, uint32_t v) { out_bytes(o, &v, 4); }
static void out_u64(snap_out *o, uint64_t v) { out_bytes(o, &v, 8); }

static void out_header(snap_out *o, const char *magic) {
    out_bytes(o, magic, SNAP_MAGIC_LEN);
    out_u32(o, EMBED_SNAPSHOT_FORMAT);
}

static void out_name(snap_out *o, const char *s) {
    uint32_t len = (uint32_t)strlen(s);
    out_u32(o, len);
    out_bytes(o, s, len);
}

static int snap_open(snap_out *o, const char *dir, const char *name, char *err) {
    char path[PATH_MAX];
    memset(o, 0, sizeof(*o));
    if (path_join(path, dir, name, err)) return -1;
    o->f = fopen(path, "wb");
    if (!o->f) {
        embed_err_set(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Flushes, fsyncs and closes; records the entry. */
static int snap_close(snap_out *o, const char *dir, const char *name, snap_entry *ent,
                      char *err) {
    int bad = o->bad || fflush(o->f) != 0 || fsync(fileno(o->f)) != 0;
    if (fclose(o->f) != 0) bad = 1;
    o->f = NULL;
    if (bad) {
        embed_err_set(err, "%s/%s: write failed: %s", dir, name, strerror(errno));
        return -1;
    }
    snprintf(ent->name, sizeof(ent->name), "%s", name);
    ent->size = o->size;
    ent->crc = o->crc;
    return 0;
}

static int fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Reads back a file written by someone else (FAISS) for its entry. */
static int snap_checksum_file(const char *dir, const char *name, snap_entry *ent, char *err) {
    char path[PATH_MAX], buf[65536];
    if (path_join(path, dir, name, err)) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) {
        embed_err_set(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    snprintf(ent->name, sizeof(ent->name), "%s", name);
    ent->size = 0;
    ent->crc = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        ent->crc = embed_crc32c(ent->crc, buf, n);
        ent->size += n;
    }
    int bad = ferror(f) || fsync(fileno(f)) != 0;
    fclose(f);
    if (bad) {
        embed_err_set(err, "%s: read back failed", path);
        return -1;
    }
    return 0;
}

static int write_index(const char *dir, const embed_model *m, snap_entry *ent, char *err) {
    FaissIndex *idx = NULL;
    int64_t *ids = malloc(((size_t)m->n_items + 1) * sizeof(*ids));
    char path[PATH_MAX];
    int rc = -1;
    if (path_join(path, dir, "Q.faiss", err)) goto done;
    if (!ids) {
        embed_err_set(err, "out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < m->n_items; i++) ids[i] = i;
    if (faiss_index_factory(&idx, (int)m->dim, "IDMap2,Flat", METRIC_INNER_PRODUCT) ||
        faiss_Index_add_with_ids(idx, m->n_items, m->Q, ids) ||
        faiss_write_index_fname(idx, path)) {
        embed_err_set(err, "%s: faiss: %s", path, faiss_get_last_error());
        goto done;
    }
    rc = snap_checksum_file(dir, "Q.faiss", ent, err);
done:
    if (idx) faiss_Index_free(idx);
    free(ids);
    return rc;
}

static int rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    char path[PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (path_join(path, dir, e->d_name, NULL) == 0) unlink(path);
    }
    closedir(d);
    return rmdir(dir);
}

int embed_snapshot_write(const char *root, const embed_snapshot_parts *parts, char *out,
                         size_t outlen, char *err) {
    const embed_model *m = parts->model;
    snap_entry ent[SNAP_MAX_FILES];
    int nent = 0;
    snap_out o = {0};
    char tmp[PATH_MAX], final[PATH_MAX], name[64];
    float *cvec = NULL;
    uint32_t *ccount = NULL;
    uint32_t n_creators = parts->creators ? parts->creators->count : 0;
    int made_tmp = 0;

    if (parts->items->count < m->n_items) {
        embed_err_set(err, "snapshot: %u item ids for %u items", parts->items->count, m->n_items);
        return -1;
    }
    if (mkdir(root, 0755) != 0 && errno != EEXIST) {
        embed_err_set(err, "%s: %s", root, strerror(errno));
        return -1;
    }
    /* Names sort by time; on a clash within the same millisecond, wait
     * for the next one rather than invent a suffix that might not sort. */
    for (;;) {
        struct timespec ts, nap = {0, 1000000};
        struct tm tm;
        char stamp[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
        snprintf(name, sizeof(name), "snap-%s-%03ld", stamp, ts.tv_nsec / 1000000);
        if (path_join(final, root, name, err)) return -1;
        if (access(final, F_OK) != 0) break;
        nanosleep(&nap, NULL);
    }
    char tmpname[96];
    snprintf(tmpname, sizeof(tmpname), ".tmp-%s-%ld", name, (long)getpid());
    if (path_join(tmp, root, tmpname, err)) return -1;
    if (mkdir(tmp, 0755) != 0) {
        embed_err_set(err, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    made_tmp = 1;

    if (snap_open(&o, tmp, "meta.txt", err)) goto fail;
    if (parts->meta) out_bytes(&o, parts->meta, strlen(parts->meta));
    if (snap_close(&o, tmp, "meta.txt", &ent[nent++], err)) goto fail;

    if (snap_open(&o, tmp, "items.bin", err)) goto fail;
    out_header(&o, "AISLEITM");
    out_u32(&o, m->n_items);
    for (uint32_t i = 0; i < m->n_items; i++) out_name(&o, parts->items->names[i]);
    for (uint32_t i = 0; i < m->n_items; i++)
        out_u32(&o, parts->item_creator ? parts->item_creator[i] : UINT32_MAX);
    if (snap_close(&o, tmp, "items.bin", &ent[nent++], err)) goto fail;

    if (snap_open(&o, tmp, "P.f32", err)) goto fail;
    out_header(&o, "AISLEVEC");
    out_u32(&o, m->n_items);
    out_u32(&o, m->dim);
    out_bytes(&o, m->P, (size_t)m->n_items * m->dim * sizeof(float));
    if (snap_close(&o, tmp, "P.f32", &ent[nent++], err)) goto fail;

    if (write_index(tmp, m, &ent[nent++], err)) goto fail;

    if (snap_open(&o, tmp, "neighbors.bin", err)) goto fail;
    out_header(&o, "AISLENBR");
    out_u32(&o, m->n_items);
    out_u64(&o, m->nb_off[m->n_items]);
    out_bytes(&o, m->nb_off, ((size_t)m->n_items + 1) * sizeof(uint64_t));
    out_bytes(&o, m->nb_item, m->nb_off[m->n_items] * sizeof(uint32_t));
    out_bytes(&o, m->nb_weight, m->nb_off[m->n_items] * sizeof(float));
    if (snap_close(&o, tmp, "neighbors.bin", &ent[nent++], err)) goto fail;

    /* A creator's vector is the mean query vector of its items, so that
     * following a creator acts like liking an average item of theirs. */
    cvec = calloc((size_t)n_creators * m->dim + 1, sizeof(*cvec));
    ccount = calloc((size_t)n_creators + 1, sizeof(*ccount));
    if (!cvec || !ccount) {
        embed_err_set(err, "out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < m->n_items && parts->item_creator; i++) {
        uint32_t c = parts->item_creator[i];
        if (c >= n_creators) continue;
        ccount[c]++;
        for (uint32_t d = 0; d < m->dim; d++) cvec[(size_t)c * m->dim + d] += m->P[(size_t)i * m->dim + d];
    }
    for (uint32_t c = 0; c < n_creators; c++)
        for (uint32_t d = 0; d < m->dim && ccount[c]; d++) cvec[(size_t)c * m->dim + d] /= (float)ccount[c];
    if (snap_open(&o, tmp, "creators.bin", err)) goto fail;
    out_header(&o, "AISLECRE");
    out_u32(&o, n_creators);
    out_u32(&o, m->dim);
    for (uint32_t c = 0; c < n_creators; c++) out_name(&o, parts->creators->names[c]);
    out_bytes(&o, cvec, (size_t)n_creators * m->dim * sizeof(float));
    if (snap_close(&o, tmp, "creators.bin", &ent[nent++], err)) goto fail;

    if (m->bias) {
        if (snap_open(&o, tmp, snap_optional, err)) goto fail;
        out_header(&o, "AISLEBIA");
        out_u32(&o, m->n_items);
        out_bytes(&o, m->bias, (size_t)m->n_items * sizeof(float));
        if (snap_close(&o, tmp, snap_optional, &ent[nent++], err)) goto fail;
    }

    /* The manifest goes last: its presence marks the other files done. */
    char man[SNAP_MAX_MANIFEST];
    int len = snprintf(man, sizeof(man), "aisle-embed-snapshot %d\n", EMBED_SNAPSHOT_FORMAT);
    for (int k = 0; k < nent; k++)
        len += snprintf(man + len, sizeof(man) - (size_t)len, "file %s %llu %08x\n", ent[k].name,
                        (unsigned long long)ent[k].size, ent[k].crc);
    len += snprintf(man + len, sizeof(man) - (size_t)len, "manifest-crc %08x\n",
                    embed_crc32c(0, man, (size_t)len));
    if (snap_open(&o, tmp, "MANIFEST", err)) goto fail;
    out_bytes(&o, man, (size_t)len);
    snap_entry ment;
    if (snap_close(&o, tmp, "MANIFEST", &ment, err)) goto fail;
    if (fsync_path(tmp) != 0 || rename(tmp, final) != 0 || fsync_path(root) != 0) {
        embed_err_set(err, "%s: publishing failed: %s", final, strerror(errno));
        goto fail;
    }
    free(cvec);
    free(ccount);
    snprintf(out, outlen, "%s", final);
    return 0;
fail:
    if (o.f) fclose(o.f);
    if (made_tmp) rm_tree(tmp);
    free(cvec);
    free(ccount);
    return -1;
}

/* ---- reading ---------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n, pos;
    int bad;
} snap_in;

static const void *in_bytes(snap_in *r, size_t n) {
    if (r->bad || n > r->n - r->pos) {
        r->bad = 1;
        return NULL;
    }
    const void *p = r->p + r->pos;
    r->pos += n;
    return p;
}

static uint32_t in_u32(snap_in *r) {
    uint32_t v = 0;
    const void *p = in_bytes(r, 4);
    if (p) memcpy(&v, p, 4);
    return v;
}

static uint64_t in_u64(snap_in *r) {
    uint64_t v = 0;
    const void *p = in_bytes(r, 8);
    if (p) memcpy(&v, p, 8);
    return v;
}

/* Checks magic and format; returns 0 when both match. */
static int in_header(snap_in *r, const char *magic) {
    const void *p = in_bytes(r, SNAP_MAGIC_LEN);
    uint32_t fmt = in_u32(r);
    return (!p || memcmp(p, magic, SNAP_MAGIC_LEN) != 0 || fmt != EMBED_SNAPSHOT_FORMAT) ? -1 : 0;
}

/* Copies count*size bytes of array data, refusing overflowing counts. */
static void *in_array(snap_in *r, uint64_t count, size_t size) {
    if (count > (SIZE_MAX - 1) / size) {
        r->bad = 1;
        return NULL;
    }
    const void *p = in_bytes(r, (size_t)count * size);
    if (!p) return NULL;
    void *dst = malloc((size_t)count * size + 1);
    if (!dst) {
        r->bad = 1;
        return NULL;
    }
    memcpy(dst, p, (size_t)count * size);
    return dst;
}

static int all_finite(const float *v, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (!isfinite(v[k])) return 0;
    return 1;
}

/* Reads dir/name whole after checking its manifest size; verifies CRC. */
static int read_checked(const char *dir, const snap_entry *ent, uint8_t **buf, char *err) {
    char path[PATH_MAX];
    struct stat st;
    *buf = NULL;
    if (path_join(path, dir, ent->name, err)) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) {
        embed_err_set(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || (uint64_t)st.st_size != ent->size || ent->size > SIZE_MAX - 1) {
        embed_err_set(err, "%s: size %lld, manifest says %llu", path, (long long)st.st_size,
                      (unsigned long long)ent->size);
        fclose(f);
        return -1;
    }
    *buf = malloc((size_t)ent->size + 1);
    if (!*buf) {
        embed_err_set(err, "%s: out of memory", path);
        fclose(f);
        return -1;
    }
    size_t got = fread(*buf, 1, (size_t)ent->size, f);
    fclose(f);
    if (got != ent->size || embed_crc32c(0, *buf, got) != ent->crc) {
        embed_err_set(err, "%s: checksum mismatch (corrupt snapshot)", path);
        free(*buf);
        *buf = NULL;
        return -1;
    }
    return 0;
}

static int parse_manifest(const char *dir, snap_entry *ent, int *nent, char *err) {
    char path[PATH_MAX], buf[SNAP_MAX_MANIFEST + 1];
    if (path_join(path, dir, "MANIFEST", err)) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) {
        embed_err_set(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = fread(buf, 1, SNAP_MAX_MANIFEST + 1, f);
    fclose(f);
    if (len > SNAP_MAX_MANIFEST) {
        embed_err_set(err, "%s: too large", path);
        return -1;
    }
    buf[len] = '\0';
    if (strlen(buf) != len) goto bad;
    char *tail = NULL;
    for (char *p = buf; (p = strstr(p, "manifest-crc ")) != NULL; p++)
        if (p == buf || p[-1] == '\n') tail = p;
    unsigned crc;
    char end;
    if (!tail || sscanf(tail, "manifest-crc %8x%c", &crc, &end) != 2 || end != '\n' ||
        strchr(tail, '\n')[1] != '\0' || embed_crc32c(0, buf, (size_t)(tail - buf)) != crc)
        goto bad;
    *tail = '\0';
    int fmt;
    char *save, *line = strtok_r(buf, "\n", &save);
    if (!line || sscanf(line, "aisle-embed-snapshot %d%c", &fmt, &end) != 1) goto bad;
    if (fmt != EMBED_SNAPSHOT_FORMAT) {
        embed_err_set(err, "%s: format %d, this build reads %d", path, fmt, EMBED_SNAPSHOT_FORMAT);
        return -1;
    }
    *nent = 0;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        snap_entry e;
        unsigned long long size;
        unsigned c;
        if (*nent == SNAP_MAX_FILES || sscanf(line, "file %31s %llu %8x%c", e.name, &size, &c, &end) != 3)
            goto bad;
        e.size = size;
        e.crc = c;
        /* Only known names: a manifest must not point outside the dir. */
        int known = strcmp(e.name, snap_optional) == 0;
        for (size_t k = 0; k < SNAP_N_REQUIRED; k++) known |= strcmp(e.name, snap_required[k]) == 0;
        for (int k = 0; k < *nent; k++) known &= strcmp(e.name, ent[k].name) != 0;
        if (!known) goto bad;
        ent[(*nent)++] = e;
    }
    for (size_t k = 0; k < SNAP_N_REQUIRED; k++) {
        int found = 0;
        for (int q = 0; q < *nent; q++) found |= strcmp(ent[q].name, snap_required[k]) == 0;
        if (!found) {
            embed_err_set(err, "%s: %s is not listed", path, snap_required[k]);
            return -1;
        }
    }
    return 0;
bad:
    embed_err_set(err, "%s: malformed or corrupt manifest", path);
    return -1;
}

static const snap_entry *find_entry(const snap_entry *ent, int nent, const char *name) {
    for (int k = 0; k < nent; k++)
        if (strcmp(ent[k].name, name) == 0) return &ent[k];
    return NULL;
}

/* Each parser gets the verified bytes of one file and fills its part of
 * snap; they return -1 with err set on any inconsistency. */

static int parse_items(const uint8_t *buf, size_t n, embed_snapshot *s, char *err) {
    snap_in r = {buf, n, 0, 0};
    if (in_header(&r, "AISLEITM") != 0) goto bad;
    uint32_t count = in_u32(&r);
    if (r.bad || count > n / 4) goto bad;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len = in_u32(&r);
        const char *name = len <= SNAP_MAX_NAME ? in_bytes(&r, len) : NULL;
        if (!name || memchr(name, '\0', len)) goto bad;
        int64_t row = embed_idmap_intern(&s->items, name, len);
        if (row != (int64_t)i) goto bad; /* duplicate id or out of memory */
    }
    s->item_creator = in_array(&r, count, sizeof(uint32_t));
    if (r.bad || r.pos != n) goto bad;
    return 0;
bad:
    embed_err_set(err, "%s/items.bin: malformed", s->dir);
    return -1;
}

static int parse_vectors(const uint8_t *buf, size_t n, embed_snapshot *s, char *err) {
    snap_in r = {buf, n, 0, 0};
    if (in_header(&r, "AISLEVEC") != 0) goto bad;
    uint32_t rows = in_u32(&r), dim = in_u32(&r);
    if (r.bad || rows != s->items.count || dim == 0 || dim > 65536) goto bad;
    s->model.n_items = rows;
    s->model.dim = dim;
    s->model.P = in_array(&r, (uint64_t)rows * dim, sizeof(float));
    if (r.bad || r.pos != n || !all_finite(s->model.P, (size_t)rows * dim)) goto bad;
    return 0;
bad:
    embed_err_set(err, "%s/P.f32: malformed", s->dir);
    return -1;
}

static int parse_neighbors(const uint8_t *buf, size_t n, embed_snapshot *s, char *err) {
    snap_in r = {buf, n, 0, 0};
    embed_model *m = &s->model;
    if (in_header(&r, "AISLENBR") != 0) goto bad;
    uint32_t rows = in_u32(&r);
    uint64_t nnz = in_u64(&r);
    if (r.bad || rows != m->n_items || nnz > n) goto bad;
    m->nb_off = in_array(&r, (uint64_t)rows + 1, sizeof(uint64_t));
    m->nb_item = in_array(&r, nnz, sizeof(uint32_t));
    m->nb_weight = in_array(&r, nnz, sizeof(float));
    if (r.bad || r.pos != n || m->nb_off[0] != 0 || m->nb_off[rows] != nnz) goto bad;
    for (uint32_t i = 0; i < rows; i++)
        if (m->nb_off[i] > m->nb_off[i + 1]) goto bad;
    for (uint64_t e = 0; e < nnz; e++)
        if (m->nb_item[e] >= rows) goto bad;
    if (!all_finite(m->nb_weight, nnz)) goto bad;
    return 0;
bad:
    embed_err_set(err, "%s/neighbors.bin: malformed", s->dir);
    return -1;
}

static int parse_creators(const uint8_t *buf, size_t n, embed_snapshot *s, char *err) {
    snap_in r = {buf, n, 0, 0};
    if (in_header(&r, "AISLECRE") != 0) goto bad;
    uint32_t count = in_u32(&r), dim = in_u32(&r);
    if (r.bad || dim != s->model.dim || count > n / 4) goto bad;
    for (uint32_t c = 0; c < count; c++) {
        uint32_t len = in_u32(&r);
        const char *name = len <= SNAP_MAX_NAME ? in_bytes(&r, len) : NULL;
        if (!name || memchr(name, '\0', len)) goto bad;
        if (embed_idmap_intern(&s->creators, name, len) != (int64_t)c) goto bad;
    }
    s->creator_vec = in_array(&r, (uint64_t)count * dim, sizeof(float));
    if (r.bad || r.pos != n || !all_finite(s->creator_vec, (size_t)count * dim)) goto bad;
    for (uint32_t i = 0; i < s->model.n_items; i++)
        if (s->item_creator[i] != UINT32_MAX && s->item_creator[i] >= count) goto bad;
    return 0;
bad:
    embed_err_set(err, "%s/creators.bin: malformed", s->dir);
    return -1;
}

static int parse_bias(const uint8_t *buf, size_t n, embed_snapshot *s, char *err) {
    snap_in r = {buf, n, 0, 0};
    if (in_header(&r, "AISLEBIA") != 0 || in_u32(&r) != s->model.n_items) goto bad;
    s->model.bias = in_array(&r, s->model.n_items, sizeof(float));
    if (r.bad || r.pos != n || !all_finite(s->model.bias, s->model.n_items)) goto bad;
    return 0;
bad:
    embed_err_set(err, "%s/bias.f32: malformed", s->dir);
    return -1;
}

/* Reads the index from memory and takes Q back out of it, so the vectors
 * scored exactly are the ones the index searches. */
static int parse_index(const uint8_t *buf, size_t n, embed_snapshot *s, char *err) {
    embed_model *m = &s->model;
    FILE *f = fmemopen((void *)buf, n, "rb");
    if (!f || faiss_read_index(f, 0, &s->index) != 0) {
        embed_err_set(err, "%s/Q.faiss: %s", s->dir, f ? faiss_get_last_error() : strerror(errno));
        if (f) fclose(f);
        s->index = NULL;
        return -1;
    }
    fclose(f);
    if (faiss_Index_d(s->index) != (int)m->dim || faiss_Index_ntotal(s->index) != m->n_items ||
        faiss_Index_metric_type(s->index) != METRIC_INNER_PRODUCT) {
        embed_err_set(err, "%s/Q.faiss: dimension, size or metric does not match", s->dir);
        return -1;
    }
    m->Q = malloc((size_t)m->n_items * m->dim * sizeof(float) + 1);
    if (!m->Q) {
        embed_err_set(err, "%s/Q.faiss: out of memory", s->dir);
        return -1;
    }
    for (uint32_t i = 0; i < m->n_items; i++) {
        if (faiss_Index_reconstruct(s->index, i, m->Q + (size_t)i * m->dim) != 0) {
            embed_err_set(err, "%s/Q.faiss: item row %u missing", s->dir, i);
            return -1;
        }
    }
    if (!all_finite(m->Q, (size_t)m->n_items * m->dim)) {
        embed_err_set(err, "%s/Q.faiss: non-finite vector", s->dir);
        return -1;
    }
    return 0;
}

int embed_snapshot_load(const char *dir, embed_snapshot *snap, char *err) {
    typedef int (*parser)(const uint8_t *, size_t, embed_snapshot *, char *);
    /* Order matters: later parsers check counts set by earlier ones. */
    static const struct {
        const char *name;
        parser fn;
    } steps[] = {{"items.bin", parse_items},         {"P.f32", parse_vectors},
                 {"Q.faiss", parse_index},           {"neighbors.bin", parse_neighbors},
                 {"creators.bin", parse_creators},   {"bias.f32", parse_bias}};
    snap_entry ent[SNAP_MAX_FILES];
    int nent = 0;
    uint8_t *buf = NULL;
    memset(snap, 0, sizeof(*snap));
    embed_idmap_init(&snap->items);
    embed_idmap_init(&snap->creators);
    snap->dir = strdup(dir);
    const char *base = strrchr(dir, '/');
    snap->version = strdup(base && base[1] ? base + 1 : dir);
    if (!snap->dir || !snap->version) {
        embed_err_set(err, "out of memory");
        goto fail;
    }
    if (parse_manifest(dir, ent, &nent, err) != 0) goto fail;
    const snap_entry *meta = find_entry(ent, nent, "meta.txt");
    if (read_checked(dir, meta, &buf, err) != 0) goto fail;
    buf[meta->size] = '\0';
    snap->meta = (char *)buf;
    buf = NULL;
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        const snap_entry *e = find_entry(ent, nent, steps[k].name);
        if (!e) continue; /* only the optional file can be absent here */
        if (read_checked(dir, e, &buf, err) != 0) goto fail;
        if (steps[k].fn(buf, (size_t)e->size, snap, err) != 0) goto fail;
        free(buf);
        buf = NULL;
    }
    return 0;
fail:
    free(buf);
    embed_snapshot_free(snap);
    return -1;
}

void embed_snapshot_free(embed_snapshot *snap) {
    free(snap->dir);
    free(snap->version);
    embed_model_free(&snap->model);
    embed_idmap_free(&snap->items);
    embed_idmap_free(&snap->creators);
    free(snap->item_creator);
    free(snap->creator_vec);
    if (snap->index) faiss_Index_free(snap->index);
    free(snap->meta);
    memset(snap, 0, sizeof(*snap));
}

static int name_desc(const struct dirent **a, const struct dirent **b) {
    return strcmp((*b)->d_name, (*a)->d_name);
}

static int is_snapshot(const struct dirent *e) { return strncmp(e->d_name, "snap-", 5) == 0; }

int embed_snapshot_load_newest(const char *root, embed_snapshot *snap, int quiet, char *err) {
    struct dirent **list = NULL;
    int n = scandir(root, &list, is_snapshot, name_desc);
    int rc = -1;
    memset(snap, 0, sizeof(*snap));
    if (n < 0) {
        embed_err_set(err, "%s: %s", root, strerror(errno));
        return -1;
    }
    embed_err_set(err, "%s: no snapshot found", root);
    for (int k = 0; k < n && rc != 0; k++) {
        char path[PATH_MAX], why[EMBED_ERR_LEN];
        if (path_join(path, root, list[k]->d_name, why) == 0 &&
            embed_snapshot_load(path, snap, why) == 0) {
            rc = 0;
        } else {
            if (!quiet) fprintf(stderr, "skipping snapshot: %s\n", why);
            embed_err_set(err, "%s: no valid snapshot (newest failure: %s)", root, why);
        }
    }
    for (int k = 0; k < n; k++) free(list[k]);
    free(list);
    return rc;
}

int embed_snapshot_meta_get(const char *meta, const char *key, char *out, size_t outlen) {
    size_t klen = strlen(key);
    for (const char *p = meta; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
            const char *v = p + klen + 1, *e = strchr(v, '\n');
            size_t len = e ? (size_t)(e - v) : strlen(v);
            if (len >= outlen) return -1;
            memcpy(out, v, len);
            out[len] = '\0';
            return 0;
        }
    }
    return -1;
}
