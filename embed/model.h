/* model: the servable item model and the one scoring formula everybody uses.
 *
 * A user is a profile of (item row, weight) pairs. With per-item query
 * vectors P, item vectors Q (what the FAISS index holds), sparse neighbour
 * lists N_i and an optional per-item bias b:
 *
 *     u        = sum_i w_i * P[i]                        (dim k)
 *     score(j) = u . Q[j] + sum_i w_i * N_i(j) + b[j]
 *
 * embed_score_batch() is the reference implementation over all items; the
 * offline evaluation calls it, and the server must compute exactly this for
 * every candidate it considers. */
#ifndef AISLE_EMBED_MODEL_H
#define AISLE_EMBED_MODEL_H

#include <stdint.h>

typedef struct embed_model {
    uint32_t n_items;
    uint32_t dim;
    float *P;          /* n_items x dim, row major: query side */
    float *Q;          /* n_items x dim, row major: item side */
    uint64_t *nb_off;  /* n_items + 1: N_i is entries nb_off[i] .. nb_off[i+1]-1 */
    uint32_t *nb_item; /* neighbour rows, each < n_items, sorted by weight desc */
    float *nb_weight;
    float *bias;       /* n_items entries, or NULL for none */
} embed_model;

/* Allocates P, Q (zeroed), nb_off (zeroed) and, when with_bias, bias;
 * nb_item/nb_weight are left NULL for the caller to fill. Owned by *m.
 * AISLE_OK or AISLE_ENOMEM (then *m is empty). */
int embed_model_alloc(embed_model *m, uint32_t n_items, uint32_t dim, int with_bias);
void embed_model_free(embed_model *m);

/* u = sum_i w_i P[i] over a profile of n entries; rows >= n_items are
 * unknown to the model and contribute nothing. u has m->dim floats. */
void embed_model_query(const embed_model *m, uint64_t n, const uint32_t *item,
                       const float *weight, float *u);

/* Scores n_users profiles (CSR: profile r is entries off[r]..off[r+1]-1 of
 * item/weight) against every item: scores is n_users x n_items, row major,
 * written by this call. Returns AISLE_OK or AISLE_ENOMEM. */
int embed_score_batch(const embed_model *m, uint32_t n_users, const uint64_t *off,
                      const uint32_t *item, const float *weight, float *scores);

/* One profile of n entries; scores has n_items entries. */
int embed_score_user(const embed_model *m, uint64_t n, const uint32_t *item,
                     const float *weight, float *scores);

#endif
