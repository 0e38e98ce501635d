/* snapview: the embedding job's snapshots on disk, as the catalog sees them.
 *
 * retrieval/ must not know how embed/ stores a snapshot, and embed/ must
 * not know the catalog; this adapter, above both, reads a snapshot with
 * embed's loader and points a catalog_snapshot at its arrays. */
#ifndef AISLE_SNAPVIEW_H
#define AISLE_SNAPVIEW_H

#include <stddef.h>

#include "embed/snapshot.h"
#include "retrieval/catalog.h"

typedef struct snapview {
    embed_snapshot snap;   /* owned */
    catalog_snapshot view; /* points into snap */
} snapview;

/* Loads the newest snapshot under dir that validates (newer broken ones
 * are reported and skipped). Returns AISLE_OK, or AISLE_ENOTFOUND /
 * AISLE_EFORMAT with err saying why. Close with snapview_close. */
int snapview_open_newest(const char *dir, snapview *sv, char *err, size_t errlen);
void snapview_close(snapview *sv);

/* After c has loaded sv: makes c probe the count the trainer chose for the
 * snapshot (serve_nprobe; 0, the catalog's default, for an older one),
 * unless the operator fixed one (fixed > 0: serve's --nprobe). Logs a
 * warning when the snapshot's count was measured on another number of
 * lists than c built (another IVF threshold or item count), since it may
 * then not serve the measured Recall. Returns the count now set (0: the
 * default). */
int snapview_apply_nprobe(const snapview *sv, catalog *c, int fixed);

#endif
