/* shelf: the learned ranker models a serve replica scores with, by file
 * path (the configured default and whatever an experiment's variants name),
 * each kept in a slot (model.h) and reloaded without a restart.
 *
 * A path is loaded on first use and loaded again when its file's time,
 * size or inode (a new file renamed over it) changes, looked at no more than once per check interval. A file
 * that is refused (corrupt, unreadable, or over another number of features
 * than the ranker computes) is logged and the model loaded before from that
 * path stays; a path that never loaded gives no model (the caller scores
 * with hand weights). Loading runs on the calling thread under the shelf's
 * lock: a call that finds a changed file pays for the load, once. */
#ifndef AISLE_LTR_SHELF_H
#define AISLE_LTR_SHELF_H

#include <stdint.h>

#include "ranker/ltr/model.h"

#define LTR_SHELF_MAX 16         /* paths kept; more are refused (logged) */
#define LTR_SHELF_CHECK_MS 1000  /* the default check interval */

typedef struct ltr_shelf ltr_shelf;

/* A shelf of models over n_features features, checking files every
 * check_ms (0: LTR_SHELF_CHECK_MS). AISLE_OK or AISLE_ENOMEM. */
int ltr_shelf_new(uint32_t n_features, int check_ms, ltr_shelf **out);
void ltr_shelf_free(ltr_shelf *s);

/* The model at path as of now_ms (clock_mono_ms()), loading or reloading
 * it as above: a reference to release with ltr_model_release, or NULL.
 * Thread-safe. */
ltr_model *ltr_shelf_get(ltr_shelf *s, const char *path, int64_t now_ms);

#endif
