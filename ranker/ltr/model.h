/* model: a learned ranker (XGBoost LambdaMART, rank:ndcg) in a checked
 * file, scored by serve and swapped in without a restart.
 *
 * File: "AISLELTR" | u32 format (1) | u32 features | u64 length | u32
 * CRC32C of the body | body (XGBoost's JSON model), little-endian. A file
 * that is short, of another format, of the wrong length or checksum, or
 * that XGBoost refuses, is refused with a message naming the file and the
 * fault; ltr_slot_load then keeps the model it had. Files are written to a
 * temporary name, synced and renamed, so a reader never sees half a file.
 *
 * A model is shared by reference count; scoring takes the model's own
 * lock (XGBoost's predictor keeps per-booster state). */
#ifndef AISLE_LTR_MODEL_H
#define AISLE_LTR_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct ltr_model ltr_model;

/* Fills err with context and the first line of XGBoost's last error (the
 * rest is a stack trace) and returns code. */
int ltr_xgb_fail(int code, char *err, size_t errlen, const char *context);
/* CRC32C (Castagnoli) of data. */
uint32_t ltr_crc32c(const void *data, size_t len);

/* Writes body (an XGBoost model) for n_features features to path,
 * atomically. AISLE_OK or AISLE_EIO with err set. */
int ltr_model_write(const char *path, const void *body, size_t len, uint32_t n_features,
                    char *err, size_t errlen);
/* Reads and checks path. AISLE_OK with *out (refcount 1), AISLE_EIO (cannot
 * read) or AISLE_EFORMAT (corrupt) with err set. */
int ltr_model_load(const char *path, ltr_model **out, char *err, size_t errlen);
/* The same from a booster handle just trained (takes it over). */
int ltr_model_from_booster(void *booster, uint32_t n_features, ltr_model **out, char *err,
                           size_t errlen);
/* Writes m to path (XGBoost's JSON form in the checked file). */
int ltr_model_save(ltr_model *m, const char *path, char *err, size_t errlen);
uint32_t ltr_model_features(const ltr_model *m);
/* Scores n rows of ltr_model_features floats each into out[n]. AISLE_OK or
 * AISLE_EINTERNAL with err set. Thread-safe. */
int ltr_model_score(ltr_model *m, const float *rows, size_t n, float *out, char *err,
                    size_t errlen);
ltr_model *ltr_model_ref(ltr_model *m);
void ltr_model_release(ltr_model *m);

/* The model a replica scores with now. */
typedef struct ltr_slot ltr_slot;

int ltr_slot_new(ltr_slot **out);
void ltr_slot_free(ltr_slot *s);
/* Loads path and swaps it in; on any error the current model stays. */
int ltr_slot_load(ltr_slot *s, const char *path, char *err, size_t errlen);
/* Swaps m in (the slot takes the caller's reference). */
void ltr_slot_put(ltr_slot *s, ltr_model *m);
/* The current model (NULL when none was loaded): a reference to release. */
ltr_model *ltr_slot_acquire(ltr_slot *s);

#endif
