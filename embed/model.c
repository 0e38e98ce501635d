/* model: the scoring formula (see model.h). The dense part is one SGEMM for a batch of users,
 * which is what makes a full-catalogue evaluation affordable; the sparse
 * part walks each profile item's neighbour list. */
#include "embed/model.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"

int embed_model_alloc(embed_model *m, uint32_t n_items, uint32_t dim, int with_bias) {
    memset(m, 0, sizeof(*m));
    size_t cells = (size_t)n_items * dim;
    m->n_items = n_items;
    m->dim = dim;
    m->P = calloc(cells ? cells : 1, sizeof(float));
    m->Q = calloc(cells ? cells : 1, sizeof(float));
    m->nb_off = calloc((size_t)n_items + 1, sizeof(uint64_t));
    if (with_bias) m->bias = calloc(n_items ? n_items : 1, sizeof(float));
    if (!m->P || !m->Q || !m->nb_off || (with_bias && !m->bias)) {
        embed_model_free(m);
        return AISLE_ENOMEM;
    }
    return AISLE_OK;
}

void embed_model_free(embed_model *m) {
    free(m->P);
    free(m->Q);
    free(m->nb_off);
    free(m->nb_item);
    free(m->nb_weight);
    free(m->bias);
    memset(m, 0, sizeof(*m));
}

void embed_model_query(const embed_model *m, uint64_t n, const uint32_t *item,
                       const float *weight, float *u) {
    memset(u, 0, (size_t)m->dim * sizeof(float));
    for (uint64_t k = 0; k < n; k++) {
        if (item[k] >= m->n_items) continue;
        const float *p = m->P + (size_t)item[k] * m->dim;
        for (uint32_t d = 0; d < m->dim; d++) u[d] += weight[k] * p[d];
    }
}

int embed_score_batch(const embed_model *m, uint32_t n_users, const uint64_t *off,
                      const uint32_t *item, const float *weight, float *scores) {
    size_t ni = m->n_items;
    if (n_users == 0) return AISLE_OK;
    if (m->dim > 0) {
        float *U = malloc((size_t)n_users * m->dim * sizeof(float));
        if (!U) return AISLE_ENOMEM;
        for (uint32_t r = 0; r < n_users; r++)
            embed_model_query(m, off[r + 1] - off[r], item + off[r], weight + off[r],
                              U + (size_t)r * m->dim);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n_users, (int)ni,
                    (int)m->dim, 1.0f, U, (int)m->dim, m->Q, (int)m->dim, 0.0f, scores,
                    (int)ni);
        free(U);
    } else {
        memset(scores, 0, (size_t)n_users * ni * sizeof(float));
    }
    for (uint32_t r = 0; r < n_users; r++) {
        float *s = scores + (size_t)r * ni;
        if (m->bias)
            for (size_t j = 0; j < ni; j++) s[j] += m->bias[j];
        for (uint64_t k = off[r]; k < off[r + 1]; k++) {
            uint32_t i = item[k];
            if (i >= m->n_items) continue;
            float w = weight[k];
            for (uint64_t e = m->nb_off[i]; e < m->nb_off[i + 1]; e++)
                s[m->nb_item[e]] += w * m->nb_weight[e];
        }
    }
    return AISLE_OK;
}

int embed_score_user(const embed_model *m, uint64_t n, const uint32_t *item,
                     const float *weight, float *scores) {
    uint64_t off[2] = {0, n};
    return embed_score_batch(m, 1, off, item, weight, scores);
}
