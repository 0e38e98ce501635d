/* blend: sum of two servable models (see blend.h). The vectors are a
 * concatenation; the neighbour lists are merged per item by sorting the
 * union by item row, adding duplicates, and keeping the heaviest. */
#include "embed/blend.h"

#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"

typedef struct {
    uint32_t j;
    float w;
} blend_nb;

static int by_item(const void *x, const void *y) {
    uint32_t a = ((const blend_nb *)x)->j, b = ((const blend_nb *)y)->j;
    return (a > b) - (a < b);
}

static int by_weight_desc(const void *x, const void *y) {
    const blend_nb *a = x, *b = y;
    if (a->w != b->w) return a->w < b->w ? 1 : -1;
    return (a->j > b->j) - (a->j < b->j);
}

static void blend_vectors(const embed_model *a, const embed_model *b, float wb, embed_model *out) {
    for (size_t i = 0; i < a->n_items; i++) {
        float *P = out->P + i * out->dim, *Q = out->Q + i * out->dim;
        memcpy(P, a->P + i * a->dim, a->dim * sizeof(float));
        memcpy(Q, a->Q + i * a->dim, a->dim * sizeof(float));
        for (uint32_t c = 0; c < b->dim; c++) {
            P[a->dim + c] = wb * b->P[i * b->dim + c];
            Q[a->dim + c] = b->Q[i * b->dim + c];
        }
    }
}

/* Item i's merged list into out (room for keep); returns its length. c has
 * room for both lists. */
static uint32_t merge_item(const embed_model *a, const embed_model *b, float wb, uint32_t keep,
                           uint32_t i, blend_nb *c, blend_nb *out) {
    uint32_t n = 0, w = 0;
    for (uint64_t e = a->nb_off[i]; e < a->nb_off[i + 1]; e++)
        c[n++] = (blend_nb){a->nb_item[e], a->nb_weight[e]};
    for (uint64_t e = b->nb_off[i]; e < b->nb_off[i + 1]; e++)
        c[n++] = (blend_nb){b->nb_item[e], wb * b->nb_weight[e]};
    qsort(c, n, sizeof(*c), by_item);
    for (uint32_t k = 0; k < n; k++) {
        if (w > 0 && c[w - 1].j == c[k].j) c[w - 1].w += c[k].w;
        else c[w++] = c[k];
    }
    qsort(c, w, sizeof(*c), by_weight_desc);
    if (w > keep) w = keep;
    memcpy(out, c, w * sizeof(*out));
    return w;
}

static int blend_lists(const embed_model *a, const embed_model *b, float wb, uint32_t keep,
                       embed_model *out) {
    uint32_t n = a->n_items, maxlen = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t len = (a->nb_off[i + 1] - a->nb_off[i]) + (b->nb_off[i + 1] - b->nb_off[i]);
        if (len > maxlen) maxlen = (uint32_t)len;
    }
    if (keep > maxlen) keep = maxlen;
    blend_nb *lists = malloc(((size_t)n * keep + 1) * sizeof(*lists));
    uint32_t *count = calloc((size_t)n + 1, sizeof(*count));
    int fail = !lists || !count;
#pragma omp parallel reduction(| : fail)
    {
        blend_nb *c = malloc(((size_t)maxlen + 1) * sizeof(*c));
        if (!c) fail = 1;
#pragma omp for schedule(dynamic, 64)
        for (uint32_t i = 0; i < n; i++)
            if (c && !fail) count[i] = merge_item(a, b, wb, keep, i, c, lists + (size_t)i * keep);
        free(c);
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < n && !fail; i++) total += count[i];
    out->nb_item = fail ? NULL : malloc((total + 1) * sizeof(*out->nb_item));
    out->nb_weight = fail ? NULL : malloc((total + 1) * sizeof(*out->nb_weight));
    int rc = AISLE_ENOMEM;
    if (out->nb_item && out->nb_weight) {
        uint64_t o = 0;
        for (uint32_t i = 0; i < n; i++) {
            out->nb_off[i] = o;
            for (uint32_t t = 0; t < count[i]; t++, o++) {
                out->nb_item[o] = lists[(size_t)i * keep + t].j;
                out->nb_weight[o] = lists[(size_t)i * keep + t].w;
            }
        }
        out->nb_off[n] = o;
        rc = AISLE_OK;
    }
    free(lists);
    free(count);
    return rc;
}

int embed_model_blend(const embed_model *a, const embed_model *b, float wb, uint32_t keep,
                      embed_model *out) {
    memset(out, 0, sizeof(*out));
    if (a->n_items != b->n_items) return AISLE_EINVAL;
    int rc = embed_model_alloc(out, a->n_items, a->dim + b->dim, a->bias || b->bias);
    if (rc != AISLE_OK) return rc;
    blend_vectors(a, b, wb, out);
    for (uint32_t i = 0; out->bias && i < a->n_items; i++)
        out->bias[i] = (a->bias ? a->bias[i] : 0) + wb * (b->bias ? b->bias[i] : 0);
    rc = blend_lists(a, b, wb, keep, out);
    if (rc != AISLE_OK) embed_model_free(out);
    return rc;
}
