/* See train.h. Two independent halves: a randomized SVD for the low-rank
 * part and a sparse co-occurrence pass for the neighbour lists; both are
 * linear in the data apart from sum_u d_u^2 for the co-occurrences. */
#include "embed/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embed/svd.h"

void embed_train_defaults(embed_train_params *p) {
    memset(p, 0, sizeof(*p));
    p->dim = 256;
    p->alpha = 0.3;
    p->sharpen = 0.5;
    p->norm_user = 0.5;
    p->norm_item = 0.4;
    p->lp_left = 0.5;
    p->lp_right = 0.5;
    p->lin_user = 1.0;
    p->lin_item = 0.4;
    p->beta = 0.0;
    p->neighbors = 1000;
    p->svd_iters = 4;
    p->svd_oversample = 64;
    p->seed = 1;
}

uint32_t *embed_train_degrees(const embed_data *d) {
    uint32_t *deg = calloc(d->n_items ? d->n_items : 1, sizeof(*deg));
    if (!deg) return NULL;
    for (uint64_t e = 0; e < d->off[d->n_users]; e++) deg[d->item[e]]++;
    return deg;
}

/* d^-x with empty rows treated as degree 1: they have no entries anyway. */
static double deg_pow(uint32_t d, double x) { return pow(d ? (double)d : 1.0, x); }

/* The item-major transpose of d's pattern: users of each item. */
static int train_transpose(const embed_data *d, uint64_t **off, uint32_t **users) {
    uint64_t nnz = d->off[d->n_users];
    *off = calloc((size_t)d->n_items + 1, sizeof(**off));
    *users = malloc((nnz ? nnz : 1) * sizeof(**users));
    uint64_t *pos = malloc(((size_t)d->n_items + 1) * sizeof(*pos));
    if (!*off || !*users || !pos) {
        free(*off);
        free(*users);
        free(pos);
        return -1;
    }
    for (uint64_t e = 0; e < nnz; e++) (*off)[d->item[e] + 1]++;
    for (uint32_t i = 0; i < d->n_items; i++) (*off)[i + 1] += (*off)[i];
    memcpy(pos, *off, ((size_t)d->n_items + 1) * sizeof(*pos));
    for (uint32_t u = 0; u < d->n_users; u++)
        for (uint64_t e = d->off[u]; e < d->off[u + 1]; e++) (*users)[pos[d->item[e]]++] = u;
    free(pos);
    return 0;
}

int embed_train_spectrum(const embed_data *d, const embed_train_params *p, double **sigma,
                         double **V, embed_progress *prog) {
    *sigma = NULL;
    *V = NULL;
    uint64_t nnz = d->off[d->n_users];
    uint64_t *toff = NULL;
    uint32_t *tusers = NULL;
    double *val = malloc((nnz ? nnz : 1) * sizeof(double));
    double *tval = malloc((nnz ? nnz : 1) * sizeof(double));
    uint32_t *deg = embed_train_degrees(d);
    int rc = -1;
    if (!val || !tval || !deg || train_transpose(d, &toff, &tusers) != 0) goto done;
    for (uint32_t u = 0; u < d->n_users; u++) {
        double su = deg_pow((uint32_t)(d->off[u + 1] - d->off[u]), -p->norm_user);
        for (uint64_t e = d->off[u]; e < d->off[u + 1]; e++)
            val[e] = su * deg_pow(deg[d->item[e]], -p->norm_item);
    }
    for (uint32_t i = 0; i < d->n_items; i++) {
        double si = deg_pow(deg[i], -p->norm_item);
        for (uint64_t e = toff[i]; e < toff[i + 1]; e++) {
            uint32_t u = tusers[e];
            tval[e] = si * deg_pow((uint32_t)(d->off[u + 1] - d->off[u]), -p->norm_user);
        }
    }
    embed_sparse A = {d->n_users, d->n_items, d->off, d->item, val};
    embed_sparse At = {d->n_items, d->n_users, toff, tusers, tval};
    *sigma = malloc((size_t)p->dim * sizeof(double));
    *V = malloc((size_t)d->n_items * p->dim * sizeof(double));
    if (!*sigma || !*V) goto done;
    rc = embed_svd_topk(&A, &At, p->dim, p->svd_oversample, p->svd_iters, p->seed, *sigma, *V,
                        prog);
done:
    if (rc != 0) {
        free(*sigma);
        free(*V);
        *sigma = NULL;
        *V = NULL;
    }
    free(val);
    free(tval);
    free(deg);
    free(toff);
    free(tusers);
    return rc;
}

uint32_t embed_train_model_dim(const embed_train_params *p) {
    return p->sharpen != 0 ? 2 * p->dim : p->dim;
}

void embed_train_lowpass(const embed_train_params *p, const uint32_t *deg,
                         const double *sigma, const double *V, embed_model *m) {
    uint32_t k = p->dim, D = m->dim;
    double s = p->norm_item - p->lin_item;
    for (uint32_t i = 0; i < m->n_items; i++) {
        /* Items nobody interacted with get zero vectors on the item side. */
        double seen = deg[i] ? 1.0 : 0.0;
        double pa = p->alpha * deg_pow(deg[i], -p->lp_left);
        double qa = seen * deg_pow(deg[i], p->lp_right - p->beta);
        double pb = -p->sharpen * deg_pow(deg[i], s);
        double qb = seen * deg_pow(deg[i], s - p->beta);
        const double *v = V + (size_t)i * k;
        float *P = m->P + (size_t)i * D, *Q = m->Q + (size_t)i * D;
        for (uint32_t c = 0; c < k; c++) {
            P[c] = (float)(pa * v[c]);
            Q[c] = (float)(qa * v[c]);
            if (D == 2 * k) {
                P[k + c] = (float)(pb * sigma[c] * sigma[c] * v[c]);
                Q[k + c] = (float)(qb * v[c]);
            }
        }
    }
}

typedef struct {
    float w;
    uint32_t j;
} train_nb;

static int nb_desc(const void *a, const void *b) {
    const train_nb *x = a, *y = b;
    if (x->w != y->w) return x->w < y->w ? 1 : -1;
    return (x->j > y->j) - (x->j < y->j);
}

/* Moves the `keep` largest of c[0..n) to the front, in any order: Hoare's
 * selection for position keep - 1. */
static void nb_select(train_nb *c, int64_t n, int64_t keep) {
    int64_t lo = 0, hi = n - 1, k = keep - 1;
    if (keep <= 0 || keep >= n) return;
    while (lo < hi) {
        float pivot = c[lo + (hi - lo) / 2].w;
        int64_t a = lo, b = hi;
        while (a <= b) {
            while (c[a].w > pivot) a++;
            while (c[b].w < pivot) b--;
            if (a <= b) {
                train_nb t = c[a];
                c[a] = c[b];
                c[b] = t;
                a++;
                b--;
            }
        }
        if (k <= b) hi = b;
        else if (k >= a) lo = a;
        else return;
    }
}

int embed_train_neighbors(const embed_data *d, const embed_train_params *p,
                          const uint32_t *deg, embed_model *m, embed_progress *prog) {
    uint32_t n = d->n_items, M = p->neighbors;
    uint64_t *toff = NULL;
    uint32_t *tusers = NULL;
    train_nb *lists = NULL;
    uint32_t *count = NULL;
    double *uw = NULL, *col = NULL;
    int rc = -1, fail = 0;
    free(m->nb_item);
    free(m->nb_weight);
    m->nb_item = NULL;
    m->nb_weight = NULL;
    memset(m->nb_off, 0, ((size_t)m->n_items + 1) * sizeof(uint64_t));
    if (M == 0 || n == 0) return 0;
    lists = malloc((size_t)n * M * sizeof(*lists));
    count = calloc(n, sizeof(*count));
    uw = malloc(((size_t)d->n_users + 1) * sizeof(*uw));
    col = malloc((size_t)n * sizeof(*col));
    if (!lists || !count || !uw || !col || train_transpose(d, &toff, &tusers) != 0) goto done;
    for (uint32_t u = 0; u < d->n_users; u++)
        uw[u] = deg_pow((uint32_t)(d->off[u + 1] - d->off[u]), -p->lin_user);
    for (uint32_t j = 0; j < n; j++) col[j] = deg_pow(deg[j], -p->lin_item);

    uint64_t done_items = 0;
    embed_progress_start(prog, "neighbours", "items", n, prog ? prog->quiet : 1);
#pragma omp parallel reduction(| : fail)
    {
        double *acc = calloc(n, sizeof(*acc));
        uint32_t *touched = malloc((size_t)n * sizeof(*touched));
        train_nb *cand = malloc((size_t)n * sizeof(*cand));
        if (!acc || !touched || !cand) fail = 1;
#pragma omp for schedule(dynamic, 16)
        for (uint32_t i = 0; i < n; i++) {
            if (!acc || !touched || !cand) continue;
            uint32_t nt = 0;
            for (uint64_t e = toff[i]; e < toff[i + 1]; e++) {
                uint32_t u = tusers[e];
                for (uint64_t f = d->off[u]; f < d->off[u + 1]; f++) {
                    uint32_t j = d->item[f];
                    if (acc[j] == 0) touched[nt++] = j;
                    acc[j] += uw[u];
                }
            }
            /* The de-biased weight decides which neighbours are kept. */
            double ri = col[i];
            uint32_t nc = 0;
            for (uint32_t t = 0; t < nt; t++) {
                uint32_t j = touched[t];
                if (j != i)
                    cand[nc++] = (train_nb){(float)(ri * acc[j] * col[j] * deg_pow(deg[j], -p->beta)), j};
                acc[j] = 0;
            }
            uint32_t keep = nc < M ? nc : M;
            nb_select(cand, nc, keep);
            qsort(cand, keep, sizeof(*cand), nb_desc);
            memcpy(lists + (size_t)i * M, cand, keep * sizeof(*cand));
            count[i] = keep;
            if (prog) {
                uint64_t k;
#pragma omp atomic capture
                k = ++done_items;
                if ((k & 255) == 0) {
#pragma omp critical
                    embed_progress_set(prog, k);
                }
            }
        }
        free(acc);
        free(touched);
        free(cand);
    }
    if (fail) goto done;
    embed_progress_set(prog, n);
    embed_progress_end(prog);
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        m->nb_off[i] = total;
        total += count[i];
    }
    for (uint32_t i = n; i <= m->n_items; i++) m->nb_off[i] = total;
    m->nb_item = malloc((total ? total : 1) * sizeof(*m->nb_item));
    m->nb_weight = malloc((total ? total : 1) * sizeof(*m->nb_weight));
    if (!m->nb_item || !m->nb_weight) goto done;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t t = 0; t < count[i]; t++) {
            m->nb_item[m->nb_off[i] + t] = lists[(size_t)i * M + t].j;
            m->nb_weight[m->nb_off[i] + t] = lists[(size_t)i * M + t].w;
        }
    rc = 0;
done:
    if (rc != 0) {
        free(m->nb_item);
        free(m->nb_weight);
        m->nb_item = NULL;
        m->nb_weight = NULL;
        memset(m->nb_off, 0, ((size_t)m->n_items + 1) * sizeof(uint64_t));
    }
    free(lists);
    free(count);
    free(uw);
    free(col);
    free(toff);
    free(tusers);
    return rc;
}

int embed_train(const embed_data *d, embed_train_params *p, embed_model *m, int quiet) {
    embed_progress prog;
    double *sigma = NULL, *V = NULL;
    uint32_t *deg = embed_train_degrees(d);
    int rc = -1;
    memset(m, 0, sizeof(*m));
    prog.quiet = quiet;
    uint32_t room = d->n_users < d->n_items ? d->n_users : d->n_items;
    if (p->dim + p->svd_oversample > room) {
        p->svd_oversample = room / 4 < p->svd_oversample ? room / 4 : p->svd_oversample;
        if (p->dim > room - p->svd_oversample) p->dim = room - p->svd_oversample;
    }
    if (!deg || embed_model_alloc(m, d->n_items, embed_train_model_dim(p), 0) != 0) goto done;
    if (p->dim > 0) {
        if (embed_train_spectrum(d, p, &sigma, &V, &prog) != 0) goto done;
        embed_train_lowpass(p, deg, sigma, V, m);
    }
    if (embed_train_neighbors(d, p, deg, m, &prog) != 0) goto done;
    rc = 0;
done:
    if (rc != 0) embed_model_free(m);
    free(sigma);
    free(V);
    free(deg);
    return rc;
}
