/* data: interaction data sets: parsing and the per-user sparse matrix.
 *
 * Three text formats are read:
 *   lightgcn  `user item item ...` per line (whitespace separated)
 *   tsv       `user item [weight]` per line (whitespace separated)
 *   csv       a header line, then `user,item[,timestamp[,kind[,weight]]]`;
 *             columns are found by header name when it names them
 *             (user/userId, item/itemId/movieId, timestamp/ts, kind,
 *             weight/rating), else taken in that order.
 * A malformed line refuses the whole file with "path:line: reason".
 *
 * An interaction's weight is its weight column (absent or 0 = 1) times the
 * default weight of its kind; lines of the same (user, item) add up. Kinds
 * that are not item interactions (follow_creator) or negative (dismiss) are
 * skipped. The result is a CSR matrix by user with sorted, distinct items. */
#ifndef AISLE_EMBED_DATA_H
#define AISLE_EMBED_DATA_H

#include <stdint.h>

#include "embed/idmap.h"

typedef enum {
    EMBED_FMT_LIGHTGCN,
    EMBED_FMT_TSV,
    EMBED_FMT_CSV,
} embed_format;

typedef struct embed_data {
    uint32_t n_users;  /* rows; users beyond a row range have no items */
    uint32_t n_items;  /* item rows are < n_items */
    uint64_t *off;     /* n_users + 1 offsets into item/weight */
    uint32_t *item;    /* sorted and distinct within a user */
    float *weight;     /* aggregated interaction weight, > 0 */
    uint64_t n_lines;  /* interactions read (before aggregation) */
} embed_data;

/* Parses "lightgcn", "tsv" or "csv"; AISLE_EINVAL for anything else. */
int embed_format_parse(const char *name, embed_format *out);

/* Default weight of a signal kind given by name (view, click, add_to_cart,
 * purchase, like, follow_creator, dismiss) or proto number; 0 for kinds that
 * are not positive item interactions, -1 for an unknown kind. */
float embed_kind_weight(const char *kind, size_t len);

/* Reads path into *out, interning ids into users and items (which may
 * already hold rows, e.g. from a train file, so that a test file shares
 * them). n_users/n_items are the map sizes after reading. On success *out
 * owns its arrays (embed_data_free); on failure *out is zeroed, err
 * (errlen bytes) says why and the maps may hold ids from the lines read
 * before the error. Returns AISLE_OK, AISLE_EIO (the file), AISLE_EFORMAT
 * (a bad line) or AISLE_ENOMEM. */
int embed_data_load(const char *path, embed_format fmt, embed_idmap *users,
                    embed_idmap *items, embed_data *out, char *err, size_t errlen);

/* Builds *out from n (user, item, weight) triples (weight may be NULL for
 * all ones); rows must be below n_users/n_items (else AISLE_EINVAL).
 * Duplicates add up. AISLE_OK or AISLE_ENOMEM otherwise. Used by the
 * loader and by tests. */
int embed_data_from_triples(uint32_t n_users, uint32_t n_items, uint64_t n,
                            const uint32_t *user, const uint32_t *item,
                            const float *weight, embed_data *out);

/* Splits src per user: round(frac * n) of each user's n items, chosen by a
 * PRNG seeded from (seed, user row), go to *valid, the rest to *train. A
 * user keeps at least one train item. Deterministic for a given seed and
 * independent of the order users are processed in. frac is in [0, 1]. Both
 * outputs are owned by the caller. AISLE_OK or AISLE_ENOMEM. */
int embed_data_holdout(const embed_data *src, double frac, uint64_t seed,
                       embed_data *train, embed_data *valid);

/* Reads a catalog CSV with a header and `item,creator[,...]` columns (by
 * header name item/item_id and creator/creator_id when present). Items not
 * in `items` are ignored; *item_creator (n_items entries, UINT32_MAX for
 * none, caller frees) maps item rows to creator rows interned in creators.
 * AISLE_OK, or a code with err (errlen bytes) naming the file and line. */
int embed_catalog_load(const char *path, const embed_idmap *items,
                       embed_idmap *creators, uint32_t **item_creator,
                       char *err, size_t errlen);

void embed_data_free(embed_data *d);

#endif
