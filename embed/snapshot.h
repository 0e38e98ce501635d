/* snapshot: versioned model snapshots on disk.
 *
 * A snapshot is a directory <root>/snap-YYYYMMDD-HHMMSS-mmm (UTC, so names
 * sort by age) holding:
 *   MANIFEST       format line, then "file NAME SIZE CRC32C" per file and a
 *                  final "manifest-crc" over the lines before it
 *   meta.txt       key=value lines: counts, training parameters, timings,
 *                  evaluation figures when known
 *   items.bin      external item ids by row, and each item's creator row
 *   P.f32          query-side vectors, n_items x dim
 *   Q.faiss        FAISS "IDMap2,Flat" inner-product index of the item-side
 *                  vectors, id = row (supports remove_ids/add_with_ids)
 *   neighbors.bin  CSR neighbour lists
 *   creators.bin   creator ids and vectors (mean of their items' P rows)
 *   bias.f32       per-item additive bias, only when the model has one
 * Binary files are little endian with a magic and a version up front.
 * Writing goes to a hidden temporary directory whose files and itself are
 * fsync'ed before the rename, so a reader sees a whole snapshot or none.
 * Loading checks every size and checksum before parsing, then every count
 * and row, and refuses anything inconsistent with a message. */
#ifndef AISLE_EMBED_SNAPSHOT_H
#define AISLE_EMBED_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include <faiss/c_api/Index_c.h>

#include "embed/idmap.h"
#include "embed/model.h"

#define EMBED_SNAPSHOT_FORMAT 1

typedef struct embed_snapshot {
    char *dir;              /* path of the snapshot directory */
    char *version;          /* its name, e.g. snap-20250101-120000-000 */
    embed_model model;      /* P, Q (read back from the index), lists, bias */
    embed_idmap items;      /* external item id <-> row */
    uint32_t *item_creator; /* n_items creator rows, UINT32_MAX for none */
    embed_idmap creators;   /* creator id <-> row */
    float *creator_vec;     /* creators.count x dim, query side */
    FaissIndex *index;      /* over Q, ids = item rows */
    char *meta;             /* meta.txt, NUL terminated */
    uint32_t serve_nprobe;  /* meta's serving probe count, chosen for */
    uint32_t serve_lists;   /* this many IVF lists; both 0 when absent */
} embed_snapshot;

/* What a trainer publishes. item_creator and creators may be NULL. */
typedef struct embed_snapshot_parts {
    const embed_model *model;
    const embed_idmap *items; /* rows 0..model->n_items-1 are published */
    const uint32_t *item_creator;
    const embed_idmap *creators;
    const char *meta;         /* key=value lines; may be NULL */
} embed_snapshot_parts;

/* Writes a new snapshot under root (created if missing). On success the
 * directory path is copied into out (outlen bytes). Returns AISLE_OK, or
 * AISLE_EIO / AISLE_ENOMEM / AISLE_EINVAL / AISLE_EINTERNAL (FAISS) with
 * the reason in err (errlen bytes); nothing is published on failure. */
int embed_snapshot_write(const char *root, const embed_snapshot_parts *parts, char *out,
                         size_t outlen, char *err, size_t errlen);

/* Loads and validates the snapshot directory dir into *snap, which the
 * caller releases with embed_snapshot_free(). On failure *snap is empty and
 * err (errlen bytes) says which file is wrong and how; AISLE_EFORMAT for a
 * corrupt snapshot or one of another format version (the message names
 * it), AISLE_EIO or AISLE_ENOMEM. meta.txt's serving setting (serve_nprobe
 * and serve_lists, written since the trainer chooses them) is optional: an
 * older snapshot has none and loads with both 0; a malformed one is
 * refused. */
int embed_snapshot_load(const char *dir, embed_snapshot *snap, char *err, size_t errlen);

void embed_snapshot_free(embed_snapshot *snap);

/* Loads the newest snapshot under root that validates, skipping (and
 * reporting on stderr unless quiet) newer ones that do not. AISLE_OK,
 * AISLE_ENOTFOUND (none there), AISLE_EFORMAT (none valid; err has the
 * newest one's reason) or AISLE_EIO (root unreadable). */
int embed_snapshot_load_newest(const char *root, embed_snapshot *snap, int quiet, char *err,
                               size_t errlen);

/* Value of key in meta ("key=value" lines) copied into out: AISLE_OK,
 * AISLE_ENOTFOUND, or AISLE_EFULL when it does not fit in outlen. */
int embed_snapshot_meta_get(const char *meta, const char *key, char *out, size_t outlen);

#endif
