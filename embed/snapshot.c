/* snapshot: writing and validating snapshot directories (see snapshot.h).
 * Every file is produced through one writer that tracks
 * size and CRC as it goes, and read back through one bounds-checked cursor,
 * so a damaged byte anywhere surfaces as a refused load, never as a wild
 * read. */
#include "embed/snapshot.h"

#include <assert.h>
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
#include "services/base/status.h"

#define SNAP_MAGIC_LEN 8
#define SNAP_MAX_FILES 16
#define SNAP_MAX_MANIFEST 65536
#define SNAP_MAX_NAME 1024
/* IVF lists a serving setting may name (the catalog builds at most 2·√n). */
#define SNAP_MAX_LISTS 65536u

static const char *const snap_required[] = {"meta.txt", "items.bin", "P.f32", "Q.faiss",
                                            "neighbors.bin", "creators.bin"};
#define SNAP_N_REQUIRED (sizeof(snap_required) / sizeof(snap_required[0]))
static const char snap_optional[] = "bias.f32";

typedef struct {
    char name[32];
    uint64_t size;
    uint32_t crc;
} snap_entry;

/* dir/name into out (PATH_MAX bytes); AISLE_EINVAL, with err set, when
 * too long. */
static int path_join(char *out, const char *dir, const char *name, char *err, size_t errlen) {
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_MAX)
        return status_fail(AISLE_EINVAL, err, errlen, "%s/%s: path too long", dir, name);
    return AISLE_OK;
}

/* ---- writing ---------------------------------------------------------- */

/* One file being written: size and CRC are tracked as bytes go out. */
typedef struct {
    FILE *f;
    uint64_t size;
    uint32_t crc;
    int bad;
} snap_out;

/* A snapshot being assembled in its temporary directory. */
typedef struct {
    char tmp[PATH_MAX];
    snap_entry ent[SNAP_MAX_FILES];
    int nent;
    snap_out o;
    char *err;
    size_t errlen;
} snap_writer;

static void out_bytes(snap_out *o, const void *p, size_t n) {
    if (o->bad || n == 0) return;
    if (fwrite(p, 1, n, o->f) != n) o->bad = 1;
    o->crc = embed_crc32c(o->crc, p, n);
    o->size += n;
}

static void out_u32(snap_out *o, uint32_t v) { out_bytes(o, &v, 4); }
static void out_u64(snap_out *o, uint64_t v) { out_bytes(o, &v, 8); }

static void out_name(snap_out *o, const char *s) {
    uint32_t len = (uint32_t)strlen(s);
    out_u32(o, len);
    out_bytes(o, s, len);
}

/* Opens w->tmp/name and, for binary files, writes magic and format. */
static int file_open(snap_writer *w, const char *name, const char *magic) {
    char path[PATH_MAX];
    snap_out *o = &w->o;
    assert(!o->f && w->nent < SNAP_MAX_FILES);
    memset(o, 0, sizeof(*o));
    int rc = path_join(path, w->tmp, name, w->err, w->errlen);
    if (rc != AISLE_OK) return rc;
    o->f = fopen(path, "wb");
    if (!o->f) return status_fail(AISLE_EIO, w->err, w->errlen, "%s: %s", path, strerror(errno));
    if (magic) {
        out_bytes(o, magic, SNAP_MAGIC_LEN);
        out_u32(o, EMBED_SNAPSHOT_FORMAT);
    }
    return AISLE_OK;
}

/* Flushes, fsyncs and closes the open file; records its entry (ent may be
 * NULL for the manifest, which lists the others). */
static int file_close(snap_writer *w, const char *name, snap_entry *ent) {
    snap_out *o = &w->o;
    int bad = o->bad || fflush(o->f) != 0 || fsync(fileno(o->f)) != 0;
    if (fclose(o->f) != 0) bad = 1;
    o->f = NULL;
    if (bad)
        return status_fail(AISLE_EIO, w->err, w->errlen, "%s/%s: write failed: %s", w->tmp, name,
                           strerror(errno));
    if (ent) {
        snprintf(ent->name, sizeof(ent->name), "%s", name);
        ent->size = o->size;
        ent->crc = o->crc;
    }
    return AISLE_OK;
}

static int file_done(snap_writer *w, const char *name) {
    return file_close(w, name, &w->ent[w->nent++]);
}

static int fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return AISLE_EIO;
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? AISLE_OK : AISLE_EIO;
}

/* Reads back a file written by someone else (FAISS) for its entry. */
static int file_checksum(snap_writer *w, const char *name) {
    char path[PATH_MAX], buf[65536];
    snap_entry *ent = &w->ent[w->nent];
    int rc = path_join(path, w->tmp, name, w->err, w->errlen);
    if (rc != AISLE_OK) return rc;
    FILE *f = fopen(path, "rb");
    if (!f) return status_fail(AISLE_EIO, w->err, w->errlen, "%s: %s", path, strerror(errno));
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
    if (bad) return status_fail(AISLE_EIO, w->err, w->errlen, "%s: read back failed", path);
    w->nent++;
    return AISLE_OK;
}

static int write_meta(snap_writer *w, const char *meta) {
    int rc = file_open(w, "meta.txt", NULL);
    if (rc != AISLE_OK) return rc;
    if (meta) out_bytes(&w->o, meta, strlen(meta));
    return file_done(w, "meta.txt");
}

static int write_items(snap_writer *w, const embed_snapshot_parts *parts) {
    uint32_t n = parts->model->n_items;
    int rc = file_open(w, "items.bin", "AISLEITM");
    if (rc != AISLE_OK) return rc;
    out_u32(&w->o, n);
    for (uint32_t i = 0; i < n; i++) out_name(&w->o, parts->items->names[i]);
    for (uint32_t i = 0; i < n; i++)
        out_u32(&w->o, parts->item_creator ? parts->item_creator[i] : UINT32_MAX);
    return file_done(w, "items.bin");
}

static int write_vectors(snap_writer *w, const embed_model *m) {
    int rc = file_open(w, "P.f32", "AISLEVEC");
    if (rc != AISLE_OK) return rc;
    out_u32(&w->o, m->n_items);
    out_u32(&w->o, m->dim);
    out_bytes(&w->o, m->P, (size_t)m->n_items * m->dim * sizeof(float));
    return file_done(w, "P.f32");
}

static int write_index(snap_writer *w, const embed_model *m) {
    FaissIndex *idx = NULL;
    int64_t *ids = malloc(((size_t)m->n_items + 1) * sizeof(*ids));
    char path[PATH_MAX];
    int rc = path_join(path, w->tmp, "Q.faiss", w->err, w->errlen);
    if (rc != AISLE_OK) goto done;
    rc = AISLE_ENOMEM;
    if (!ids) goto done;
    for (uint32_t i = 0; i < m->n_items; i++) ids[i] = i;
    rc = AISLE_EINTERNAL;
    if (faiss_index_factory(&idx, (int)m->dim, "IDMap2,Flat", METRIC_INNER_PRODUCT) ||
        faiss_Index_add_with_ids(idx, m->n_items, m->Q, ids) ||
        faiss_write_index_fname(idx, path)) {
        status_fmt(w->err, w->errlen, "%s: faiss: %s", path, faiss_get_last_error());
        goto done;
    }
    rc = file_checksum(w, "Q.faiss");
done:
    if (idx) faiss_Index_free(idx);
    free(ids);
    return rc;
}

static int write_neighbors(snap_writer *w, const embed_model *m) {
    uint64_t nnz = m->nb_off[m->n_items];
    int rc = file_open(w, "neighbors.bin", "AISLENBR");
    if (rc != AISLE_OK) return rc;
    out_u32(&w->o, m->n_items);
    out_u64(&w->o, nnz);
    out_bytes(&w->o, m->nb_off, ((size_t)m->n_items + 1) * sizeof(uint64_t));
    out_bytes(&w->o, m->nb_item, nnz * sizeof(uint32_t));
    out_bytes(&w->o, m->nb_weight, nnz * sizeof(float));
    return file_done(w, "neighbors.bin");
}

/* A creator's vector is the mean query vector of its items, so that
 * following a creator acts like liking an average item of theirs.
 * Returns the n_creators x dim block (caller frees) or NULL. */
static float *creator_means(const embed_snapshot_parts *parts, uint32_t n_creators) {
    const embed_model *m = parts->model;
    size_t dim = m->dim;
    float *cvec = calloc((size_t)n_creators * dim + 1, sizeof(*cvec));
    uint32_t *count = calloc((size_t)n_creators + 1, sizeof(*count));
    if (!cvec || !count) {
        free(cvec);
        free(count);
        return NULL;
    }
    for (uint32_t i = 0; i < m->n_items && parts->item_creator; i++) {
        uint32_t c = parts->item_creator[i];
        if (c >= n_creators) continue;
        count[c]++;
        for (size_t d = 0; d < dim; d++) cvec[c * dim + d] += m->P[i * dim + d];
    }
    for (uint32_t c = 0; c < n_creators; c++)
        for (size_t d = 0; d < dim && count[c]; d++) cvec[c * dim + d] /= (float)count[c];
    free(count);
    return cvec;
}

static int write_creators(snap_writer *w, const embed_snapshot_parts *parts) {
    uint32_t n_creators = parts->creators ? parts->creators->count : 0;
    uint32_t dim = parts->model->dim;
    float *cvec = creator_means(parts, n_creators);
    if (!cvec) return status_fail(AISLE_ENOMEM, w->err, w->errlen, "out of memory");
    int rc = file_open(w, "creators.bin", "AISLECRE");
    if (rc == AISLE_OK) {
        out_u32(&w->o, n_creators);
        out_u32(&w->o, dim);
        for (uint32_t c = 0; c < n_creators; c++) out_name(&w->o, parts->creators->names[c]);
        out_bytes(&w->o, cvec, (size_t)n_creators * dim * sizeof(float));
        rc = file_done(w, "creators.bin");
    }
    free(cvec);
    return rc;
}

static int write_bias(snap_writer *w, const embed_model *m) {
    if (!m->bias) return AISLE_OK;
    int rc = file_open(w, snap_optional, "AISLEBIA");
    if (rc != AISLE_OK) return rc;
    out_u32(&w->o, m->n_items);
    out_bytes(&w->o, m->bias, (size_t)m->n_items * sizeof(float));
    return file_done(w, snap_optional);
}

/* The manifest goes last: its presence marks the other files done. */
static int write_manifest(snap_writer *w) {
    char man[SNAP_MAX_MANIFEST];
    int len = snprintf(man, sizeof(man), "aisle-embed-snapshot %d\n", EMBED_SNAPSHOT_FORMAT);
    for (int k = 0; k < w->nent; k++)
        len += snprintf(man + len, sizeof(man) - (size_t)len, "file %s %llu %08x\n",
                        w->ent[k].name, (unsigned long long)w->ent[k].size, w->ent[k].crc);
    len += snprintf(man + len, sizeof(man) - (size_t)len, "manifest-crc %08x\n",
                    embed_crc32c(0, man, (size_t)len));
    int rc = file_open(w, "MANIFEST", NULL);
    if (rc != AISLE_OK) return rc;
    out_bytes(&w->o, man, (size_t)len);
    return file_close(w, "MANIFEST", NULL);
}

/* Picks root/snap-<UTC time> that does not exist yet. Names sort by time;
 * on a clash within the same millisecond it waits for the next one rather
 * than invent a suffix that might not sort. */
static int pick_name(const char *root, char *name, size_t namelen, char *final, char *err,
                     size_t errlen) {
    for (;;) {
        struct timespec ts, nap = {0, 1000000};
        struct tm tm;
        char stamp[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
        snprintf(name, namelen, "snap-%s-%03ld", stamp, ts.tv_nsec / 1000000);
        int rc = path_join(final, root, name, err, errlen);
        if (rc != AISLE_OK) return rc;
        if (access(final, F_OK) != 0) return AISLE_OK;
        nanosleep(&nap, NULL);
    }
}

static void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (path_join(path, dir, e->d_name, NULL, 0) == AISLE_OK) unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* Every file, in the order a reader validates them. */
static int write_files(snap_writer *w, const embed_snapshot_parts *parts) {
    int rc = write_meta(w, parts->meta);
    if (rc == AISLE_OK) rc = write_items(w, parts);
    if (rc == AISLE_OK) rc = write_vectors(w, parts->model);
    if (rc == AISLE_OK) rc = write_index(w, parts->model);
    if (rc == AISLE_OK) rc = write_neighbors(w, parts->model);
    if (rc == AISLE_OK) rc = write_creators(w, parts);
    if (rc == AISLE_OK) rc = write_bias(w, parts->model);
    if (rc == AISLE_OK) rc = write_manifest(w);
    return rc;
}

int embed_snapshot_write(const char *root, const embed_snapshot_parts *parts, char *out,
                         size_t outlen, char *err, size_t errlen) {
    snap_writer *w = calloc(1, sizeof(*w));
    char final[PATH_MAX], name[64], tmpname[96];
    int rc, made_tmp = 0;
    if (!w) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    w->err = err;
    w->errlen = errlen;
    if (parts->items->count < parts->model->n_items) {
        rc = status_fail(AISLE_EINVAL, err, errlen, "snapshot: %u item ids for %u items",
                         parts->items->count, parts->model->n_items);
        goto fail;
    }
    if (mkdir(root, 0755) != 0 && errno != EEXIST) {
        rc = status_fail(AISLE_EIO, err, errlen, "%s: %s", root, strerror(errno));
        goto fail;
    }
    if ((rc = pick_name(root, name, sizeof(name), final, err, errlen)) != AISLE_OK) goto fail;
    snprintf(tmpname, sizeof(tmpname), ".tmp-%s-%ld", name, (long)getpid());
    if ((rc = path_join(w->tmp, root, tmpname, err, errlen)) != AISLE_OK) goto fail;
    if (mkdir(w->tmp, 0755) != 0) {
        rc = status_fail(AISLE_EIO, err, errlen, "%s: %s", w->tmp, strerror(errno));
        goto fail;
    }
    made_tmp = 1;
    if ((rc = write_files(w, parts)) != AISLE_OK) goto fail;
    if (fsync_path(w->tmp) != AISLE_OK || rename(w->tmp, final) != 0 ||
        fsync_path(root) != AISLE_OK) {
        rc = status_fail(AISLE_EIO, err, errlen, "%s: publishing failed: %s", final,
                         strerror(errno));
        goto fail;
    }
    snprintf(out, outlen, "%s", final);
    free(w);
    return AISLE_OK;
fail:
    if (w->o.f) fclose(w->o.f);
    if (made_tmp) rm_tree(w->tmp);
    free(w);
    return rc;
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

/* Checks magic and format: AISLE_OK when both match. */
static int in_header(snap_in *r, const char *magic) {
    const void *p = in_bytes(r, SNAP_MAGIC_LEN);
    uint32_t fmt = in_u32(r);
    return (!p || memcmp(p, magic, SNAP_MAGIC_LEN) != 0 || fmt != EMBED_SNAPSHOT_FORMAT)
               ? AISLE_EFORMAT
               : AISLE_OK;
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

/* Reads dir/name whole after checking its manifest size; verifies CRC.
 * *buf (caller frees) has one spare byte for a terminator. */
static int read_checked(const char *dir, const snap_entry *ent, uint8_t **buf, char *err,
                        size_t errlen) {
    char path[PATH_MAX];
    struct stat st;
    int rc = path_join(path, dir, ent->name, err, errlen);
    *buf = NULL;
    if (rc != AISLE_OK) return rc;
    FILE *f = fopen(path, "rb");
    if (!f) return status_fail(AISLE_EIO, err, errlen, "%s: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || (uint64_t)st.st_size != ent->size ||
        ent->size > SIZE_MAX - 1) {
        rc = status_fail(AISLE_EFORMAT, err, errlen, "%s: size %lld, manifest says %llu", path,
                         (long long)st.st_size, (unsigned long long)ent->size);
        goto fail;
    }
    *buf = malloc((size_t)ent->size + 1);
    if (!*buf) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "%s: out of memory", path);
        goto fail;
    }
    size_t got = fread(*buf, 1, (size_t)ent->size, f);
    if (got != ent->size || embed_crc32c(0, *buf, got) != ent->crc) {
        rc = status_fail(AISLE_EFORMAT, err, errlen, "%s: checksum mismatch (corrupt snapshot)",
                         path);
        goto fail;
    }
    fclose(f);
    return AISLE_OK;
fail:
    fclose(f);
    free(*buf);
    *buf = NULL;
    return rc;
}

/* Reads the manifest into buf (SNAP_MAX_MANIFEST + 1 bytes) and checks its
 * own CRC; on success buf holds the lines before "manifest-crc". */
static int manifest_read(const char *path, char *buf, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return status_fail(AISLE_EIO, err, errlen, "%s: %s", path, strerror(errno));
    size_t len = fread(buf, 1, SNAP_MAX_MANIFEST + 1, f);
    fclose(f);
    if (len > SNAP_MAX_MANIFEST) return status_fail(AISLE_EFORMAT, err, errlen, "%s: too large", path);
    buf[len] = '\0';
    char *tail = NULL;
    for (char *p = buf; (p = strstr(p, "manifest-crc ")) != NULL; p++)
        if (p == buf || p[-1] == '\n') tail = p;
    unsigned crc;
    char end;
    if (strlen(buf) != len || !tail || sscanf(tail, "manifest-crc %8x%c", &crc, &end) != 2 ||
        end != '\n' || strchr(tail, '\n')[1] != '\0' ||
        embed_crc32c(0, buf, (size_t)(tail - buf)) != crc)
        return status_fail(AISLE_EFORMAT, err, errlen, "%s: malformed or corrupt manifest", path);
    *tail = '\0';
    return AISLE_OK;
}

/* One "file NAME SIZE CRC" line; only known names, each once, so that a
 * manifest cannot point outside the directory. */
static int manifest_entry(const char *line, snap_entry *ent, int *nent) {
    snap_entry e;
    unsigned long long size;
    unsigned c;
    char end;
    if (*nent == SNAP_MAX_FILES || sscanf(line, "file %31s %llu %8x%c", e.name, &size, &c, &end) != 3)
        return AISLE_EFORMAT;
    e.size = size;
    e.crc = c;
    int known = strcmp(e.name, snap_optional) == 0;
    for (size_t k = 0; k < SNAP_N_REQUIRED; k++) known |= strcmp(e.name, snap_required[k]) == 0;
    for (int k = 0; k < *nent; k++) known &= strcmp(e.name, ent[k].name) != 0;
    if (!known) return AISLE_EFORMAT;
    ent[(*nent)++] = e;
    return AISLE_OK;
}

static int parse_manifest(const char *dir, snap_entry *ent, int *nent, char *err, size_t errlen) {
    char path[PATH_MAX], buf[SNAP_MAX_MANIFEST + 1];
    int rc = path_join(path, dir, "MANIFEST", err, errlen);
    if (rc == AISLE_OK) rc = manifest_read(path, buf, err, errlen);
    if (rc != AISLE_OK) return rc;
    int fmt;
    char end, *save, *line = strtok_r(buf, "\n", &save);
    if (!line || sscanf(line, "aisle-embed-snapshot %d%c", &fmt, &end) != 1) goto bad;
    /* A snapshot of another format version is refused by name, never
     * half-read. */
    if (fmt != EMBED_SNAPSHOT_FORMAT)
        return status_fail(AISLE_EFORMAT, err, errlen, "%s: snapshot format %d, this build reads %d",
                           path, fmt, EMBED_SNAPSHOT_FORMAT);
    *nent = 0;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL)
        if (manifest_entry(line, ent, nent) != AISLE_OK) goto bad;
    for (size_t k = 0; k < SNAP_N_REQUIRED; k++) {
        int found = 0;
        for (int q = 0; q < *nent; q++) found |= strcmp(ent[q].name, snap_required[k]) == 0;
        if (!found)
            return status_fail(AISLE_EFORMAT, err, errlen, "%s: %s is not listed", path,
                               snap_required[k]);
    }
    return AISLE_OK;
bad:
    return status_fail(AISLE_EFORMAT, err, errlen, "%s: malformed or corrupt manifest", path);
}

static const snap_entry *find_entry(const snap_entry *ent, int nent, const char *name) {
    for (int k = 0; k < nent; k++)
        if (strcmp(ent[k].name, name) == 0) return &ent[k];
    return NULL;
}

/* Each parser gets the verified bytes of one file and fills its part of
 * snap; they return AISLE_EFORMAT with err set on any inconsistency. */

static int parse_items(const uint8_t *buf, size_t n, embed_snapshot *s, char *err, size_t errlen) {
    snap_in r = {buf, n, 0, 0};
    if (in_header(&r, "AISLEITM") != 0) goto bad;
    uint32_t count = in_u32(&r);
    if (r.bad || count > n / 4) goto bad;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len = in_u32(&r);
        const char *name = len <= SNAP_MAX_NAME ? in_bytes(&r, len) : NULL;
        if (!name || memchr(name, '\0', len)) goto bad;
        uint32_t row;
        /* A duplicate id gets an earlier row. */
        if (embed_idmap_intern(&s->items, name, len, &row) != AISLE_OK || row != i) goto bad;
    }
    s->item_creator = in_array(&r, count, sizeof(uint32_t));
    if (r.bad || r.pos != n) goto bad;
    return AISLE_OK;
bad:
    return status_fail(AISLE_EFORMAT, err, errlen, "%s/items.bin: malformed", s->dir);
}

static int parse_vectors(const uint8_t *buf, size_t n, embed_snapshot *s, char *err, size_t errlen) {
    snap_in r = {buf, n, 0, 0};
    if (in_header(&r, "AISLEVEC") != 0) goto bad;
    uint32_t rows = in_u32(&r), dim = in_u32(&r);
    if (r.bad || rows != s->items.count || dim == 0 || dim > 65536) goto bad;
    s->model.n_items = rows;
    s->model.dim = dim;
    s->model.P = in_array(&r, (uint64_t)rows * dim, sizeof(float));
    if (r.bad || r.pos != n || !all_finite(s->model.P, (size_t)rows * dim)) goto bad;
    return AISLE_OK;
bad:
    return status_fail(AISLE_EFORMAT, err, errlen, "%s/P.f32: malformed", s->dir);
}

static int parse_neighbors(const uint8_t *buf, size_t n, embed_snapshot *s, char *err, size_t errlen) {
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
    return AISLE_OK;
bad:
    return status_fail(AISLE_EFORMAT, err, errlen, "%s/neighbors.bin: malformed", s->dir);
}

static int parse_creators(const uint8_t *buf, size_t n, embed_snapshot *s, char *err, size_t errlen) {
    snap_in r = {buf, n, 0, 0};
    if (in_header(&r, "AISLECRE") != 0) goto bad;
    uint32_t count = in_u32(&r), dim = in_u32(&r);
    if (r.bad || dim != s->model.dim || count > n / 4) goto bad;
    for (uint32_t c = 0; c < count; c++) {
        uint32_t len = in_u32(&r);
        const char *name = len <= SNAP_MAX_NAME ? in_bytes(&r, len) : NULL;
        if (!name || memchr(name, '\0', len)) goto bad;
        uint32_t row;
        if (embed_idmap_intern(&s->creators, name, len, &row) != AISLE_OK || row != c) goto bad;
    }
    s->creator_vec = in_array(&r, (uint64_t)count * dim, sizeof(float));
    if (r.bad || r.pos != n || !all_finite(s->creator_vec, (size_t)count * dim)) goto bad;
    for (uint32_t i = 0; i < s->model.n_items; i++)
        if (s->item_creator[i] != UINT32_MAX && s->item_creator[i] >= count) goto bad;
    return AISLE_OK;
bad:
    return status_fail(AISLE_EFORMAT, err, errlen, "%s/creators.bin: malformed", s->dir);
}

static int parse_bias(const uint8_t *buf, size_t n, embed_snapshot *s, char *err, size_t errlen) {
    snap_in r = {buf, n, 0, 0};
    if (in_header(&r, "AISLEBIA") != 0 || in_u32(&r) != s->model.n_items) goto bad;
    s->model.bias = in_array(&r, s->model.n_items, sizeof(float));
    if (r.bad || r.pos != n || !all_finite(s->model.bias, s->model.n_items)) goto bad;
    return AISLE_OK;
bad:
    return status_fail(AISLE_EFORMAT, err, errlen, "%s/bias.f32: malformed", s->dir);
}

/* Whether the index header at r reads fourcc, then dimension dim and
 * n entries, trained, inner product: FAISS's write_index_header. */
static int index_header_is(snap_in *r, const char *fourcc, uint32_t dim, uint64_t n) {
    const uint8_t *fc = in_bytes(r, 4);
    uint32_t d = in_u32(r);
    uint64_t total = in_u64(r);
    in_u64(r); /* two unused words FAISS writes as 1 << 20 */
    in_u64(r);
    const uint8_t *trained = in_bytes(r, 1);
    uint32_t metric = in_u32(r);
    return fc && trained && memcmp(fc, fourcc, 4) == 0 && d == dim && total == n &&
           *trained == 1 && metric == 0;
}

/* FAISS's reader trusts the sizes in its file (a forged one makes it
 * allocate or read whatever they say), so the file must first have exactly
 * the layout that write_index gives the "IDMap2,Flat" inner-product index
 * this snapshot was written with: the IDMap2 header, the flat index's
 * header, its n x dim floats, and the n ids. */
static int index_layout_ok(const uint8_t *buf, size_t n, const embed_model *m) {
    snap_in r = {buf, n, 0, 0};
    uint64_t cells = (uint64_t)m->n_items * m->dim;
    if (cells > SIZE_MAX / sizeof(float) || !index_header_is(&r, "IxM2", m->dim, m->n_items) ||
        !index_header_is(&r, "IxFI", m->dim, m->n_items) || in_u64(&r) != cells ||
        !in_bytes(&r, (size_t)cells * sizeof(float)) || in_u64(&r) != m->n_items ||
        !in_bytes(&r, (size_t)m->n_items * sizeof(int64_t)))
        return 0;
    return !r.bad && r.pos == n;
}

/* Reads the index from memory and takes Q back out of it, so the vectors
 * scored exactly are the ones the index searches. */
static int parse_index(const uint8_t *buf, size_t n, embed_snapshot *s, char *err, size_t errlen) {
    embed_model *m = &s->model;
    if (!index_layout_ok(buf, n, m))
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s/Q.faiss: not an IDMap2,Flat inner-product index of %u x %u",
                           s->dir, m->n_items, m->dim);
    FILE *f = fmemopen((void *)buf, n, "rb");
    if (!f || faiss_read_index(f, 0, &s->index) != 0) {
        status_fmt(err, errlen, "%s/Q.faiss: %s", s->dir, f ? faiss_get_last_error() : strerror(errno));
        if (f) fclose(f);
        s->index = NULL;
        return AISLE_EFORMAT;
    }
    fclose(f);
    if (faiss_Index_d(s->index) != (int)m->dim || faiss_Index_ntotal(s->index) != m->n_items ||
        faiss_Index_metric_type(s->index) != METRIC_INNER_PRODUCT)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s/Q.faiss: dimension, size or metric does not match", s->dir);
    m->Q = malloc((size_t)m->n_items * m->dim * sizeof(float) + 1);
    if (!m->Q) return status_fail(AISLE_ENOMEM, err, errlen, "%s/Q.faiss: out of memory", s->dir);
    for (uint32_t i = 0; i < m->n_items; i++)
        if (faiss_Index_reconstruct(s->index, i, m->Q + (size_t)i * m->dim) != 0)
            return status_fail(AISLE_EFORMAT, err, errlen, "%s/Q.faiss: item row %u missing",
                               s->dir, i);
    if (!all_finite(m->Q, (size_t)m->n_items * m->dim))
        return status_fail(AISLE_EFORMAT, err, errlen, "%s/Q.faiss: non-finite vector", s->dir);
    return AISLE_OK;
}

/* meta key as a count in 1..max into *out; absent leaves *out 0. */
static int meta_count(const char *meta, const char *key, uint32_t max, uint32_t *out) {
    char v[16], *end;
    int rc = embed_snapshot_meta_get(meta, key, v, sizeof(v));
    if (rc == AISLE_ENOTFOUND) return AISLE_OK;
    if (rc != AISLE_OK || v[0] < '1' || v[0] > '9') return AISLE_EFORMAT;
    unsigned long n = strtoul(v, &end, 10);
    if (*end || n > max) return AISLE_EFORMAT;
    *out = (uint32_t)n;
    return AISLE_OK;
}

/* The serving setting, both keys or neither (a probe count means nothing
 * without the lists it was chosen for). */
static int parse_serving(embed_snapshot *s, char *err, size_t errlen) {
    if (meta_count(s->meta, "serve_nprobe", SNAP_MAX_LISTS, &s->serve_nprobe) != AISLE_OK ||
        meta_count(s->meta, "serve_lists", SNAP_MAX_LISTS, &s->serve_lists) != AISLE_OK ||
        !s->serve_nprobe != !s->serve_lists || s->serve_nprobe > s->serve_lists)
        return status_fail(AISLE_EFORMAT, err, errlen,
                           "%s/meta.txt: malformed serve_nprobe / serve_lists", s->dir);
    return AISLE_OK;
}

/* Reads every listed file through its parser, in an order where later
 * parsers check counts set by earlier ones. */
static int load_files(const char *dir, const snap_entry *ent, int nent, embed_snapshot *snap,
                      char *err, size_t errlen) {
    typedef int (*parser)(const uint8_t *, size_t, embed_snapshot *, char *, size_t);
    static const struct {
        const char *name;
        parser fn;
    } steps[] = {{"items.bin", parse_items},       {"P.f32", parse_vectors},
                 {"Q.faiss", parse_index},         {"neighbors.bin", parse_neighbors},
                 {"creators.bin", parse_creators}, {"bias.f32", parse_bias}};
    uint8_t *buf = NULL;
    const snap_entry *meta = find_entry(ent, nent, "meta.txt");
    int rc = read_checked(dir, meta, &buf, err, errlen);
    if (rc != AISLE_OK) return rc;
    buf[meta->size] = '\0';
    snap->meta = (char *)buf;
    if ((rc = parse_serving(snap, err, errlen)) != AISLE_OK) return rc;
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]) && rc == AISLE_OK; k++) {
        const snap_entry *e = find_entry(ent, nent, steps[k].name);
        if (!e) continue; /* only the optional file can be absent here */
        rc = read_checked(dir, e, &buf, err, errlen);
        if (rc == AISLE_OK) rc = steps[k].fn(buf, (size_t)e->size, snap, err, errlen);
        free(buf);
    }
    return rc;
}

int embed_snapshot_load(const char *dir, embed_snapshot *snap, char *err, size_t errlen) {
    snap_entry ent[SNAP_MAX_FILES];
    int nent = 0, rc;
    memset(snap, 0, sizeof(*snap));
    embed_idmap_init(&snap->items);
    embed_idmap_init(&snap->creators);
    snap->dir = strdup(dir);
    const char *base = strrchr(dir, '/');
    snap->version = strdup(base && base[1] ? base + 1 : dir);
    if (!snap->dir || !snap->version) {
        rc = status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
        goto fail;
    }
    rc = parse_manifest(dir, ent, &nent, err, errlen);
    if (rc == AISLE_OK) rc = load_files(dir, ent, nent, snap, err, errlen);
    if (rc != AISLE_OK) goto fail;
    return AISLE_OK;
fail:
    embed_snapshot_free(snap);
    return rc;
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

int embed_snapshot_load_newest(const char *root, embed_snapshot *snap, int quiet, char *err,
                               size_t errlen) {
    struct dirent **list = NULL;
    int n = scandir(root, &list, is_snapshot, name_desc);
    int rc = AISLE_ENOTFOUND;
    memset(snap, 0, sizeof(*snap));
    if (n < 0) return status_fail(AISLE_EIO, err, errlen, "%s: %s", root, strerror(errno));
    status_fmt(err, errlen, "%s: no snapshot found", root);
    for (int k = 0; k < n && rc != AISLE_OK; k++) {
        char path[PATH_MAX], why[512];
        if (path_join(path, root, list[k]->d_name, why, sizeof(why)) == AISLE_OK &&
            embed_snapshot_load(path, snap, why, sizeof(why)) == AISLE_OK) {
            rc = AISLE_OK;
            continue;
        }
        if (!quiet) fprintf(stderr, "skipping snapshot: %s\n", why);
        /* The newest snapshot's reason is the one worth reporting. */
        if (rc == AISLE_ENOTFOUND)
            status_fmt(err, errlen, "%s: no valid snapshot (newest failure: %s)", root, why);
        rc = AISLE_EFORMAT;
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
            if (len >= outlen) return AISLE_EFULL;
            memcpy(out, v, len);
            out[len] = '\0';
            return AISLE_OK;
        }
    }
    return AISLE_ENOTFOUND;
}
