/* scorer: the surfaces' settings (budgets, feature weights, MMR, caps) from
 * a versioned text file, so they can be changed, and later trained,
 * without a rebuild.
 *
 * Format, version 1: one directive a line; '#' starts a comment.
 *   aisle-scorer 1              first line: the format and its version
 *   surface home                the settings that follow are home's; they
 *                               start from the built-in home (a new name
 *                               starts from the exact settings)
 *   weight SOURCE W             SOURCE is a ScoredItem.sources name
 *   budget SOURCE N             0..2000 candidates
 *   affinity category|brand W
 *   mmr LAMBDA                  0..1; 1 = off
 *   cap creator|brand|category N   per page; 0 = none
 *   seed_nprobe N               index lists a seed item's search probes,
 *                               0..65536; 0 = the catalog's
 *   end                         last line: a file cut short is refused
 * Weights are finite numbers in [-100, 100]. Anything else (an unknown
 * directive, a value out of range, a missing header or end) refuses the
 * whole file with the line that is wrong. */
#ifndef AISLE_SCORER_H
#define AISLE_SCORER_H

#include <stddef.h>

#include "ranker/rank.h"

#define SCORER_VERSION 1
#define SCORER_MAX_SURFACES 16
#define SCORER_MAX_NAME 32
#define SCORER_MAX_NPROBE 65536

typedef struct scorer {
    rank_settings surfaces[SCORER_MAX_SURFACES];
    char names[SCORER_MAX_SURFACES][SCORER_MAX_NAME]; /* surfaces[i].name points here */
    size_t n;
} scorer;

/* Reads path into *out (the caller frees it with free()). Returns AISLE_OK,
 * AISLE_EIO (cannot be read), AISLE_EFORMAT (refused, err names the line)
 * or AISLE_ENOMEM. */
int scorer_load(const char *path, scorer **out, char *err, size_t errlen);

/* The file's settings for name, else the built-in ones (rank_surface);
 * NULL when neither knows it. sc may be NULL. */
const rank_settings *scorer_surface(const scorer *sc, const char *name);

#endif
