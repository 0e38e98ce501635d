/* serveprobe: the serving setting of a learned snapshot, chosen from the
 * training job's validation carve through the server's own path.
 *
 * `aisle embed train` (embed/cli.c) hands the model it is about to publish
 * and a carve to this probe, which loads them into a catalog as the server
 * would (IVF at its --ivf-threshold), ranks a sample of validation users'
 * profiles with rank_recommend (the exact surface, a page of 50 as the
 * quality bench's online pass asks for) and measures its Recall@20: first with every IVF list probed, then with 1, 2, 4, ...
 * lists, and chooses the fewest whose figure is within 0.2 % of every
 * list's. embed/ cannot include the ranker (includes point down only), so
 * the aisle binary passes this function in. */
#ifndef AISLE_APP_SERVEPROBE_H
#define AISLE_APP_SERVEPROBE_H

#include <stddef.h>

#include "embed/cli.h"

/* Validation users ranked per probe count, at most (every one when fewer):
 * the comparison is paired (the same users at every count), so a sample
 * of this size settles differences of 0.2 % at a few seconds a count. */
#define SERVEPROBE_USERS 4000u

/* An embed_serve_probe. With a catalog below the IVF threshold, or no
 * validation user with both a profile and an answer, out is all 0
 * (nothing to choose). AISLE_OK, or AISLE_ENOMEM /
 * AISLE_EINTERNAL / AISLE_EINVAL from the catalog or ranker, err set. */
int serveprobe_choose(const embed_serve_carve *carve, embed_serve_choice *out, char *err,
                      size_t errlen);

#endif
