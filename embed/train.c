/* train: builds the normalised graph once, takes its truncated SVD, fills
 * the low-rank columns of P and Q the method asks for, and computes the
 * neighbour lists by one sparse co-occurrence pass (see train.h). Both
 * halves are linear in the data apart from sum_u d_u^2 for the
 * co-occurrences. */
#include "embed/train.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embed/filter.h"
#include "embed/svd.h"
#include "services/base/status.h"

static const char *const train_method_names[] = {"sharpened", "cheby", "bspm"};

int embed_method_parse(const char *name, embed_method *out) {
    for (int k = 0; k < 3; k++)
        if (strcmp(name, train_method_names[k]) == 0) {
            *out = (embed_method)k;
            return AISLE_OK;
        }
    return AISLE_EINVAL;
}

const char *embed_method_name(embed_method m) {
    assert(m >= EMBED_METHOD_SHARPENED && m <= EMBED_METHOD_BSPM);
    return train_method_names[m];
}

void embed_train_defaults(embed_train_params *p, embed_method method) {
    memset(p, 0, sizeof(*p));
    p->method = method;
    p->neighbors = 1000;
    p->svd_iters = 4;
    p->svd_oversample = 64;
    p->seed = 1;
    p->norm_user = 0.5;
    p->norm_item = 0.5;
    p->lp_left = 0.5;
    p->lp_right = 0.5;
    p->lin_user = 1.0;
    p->lin_item = 0.5;
    p->order = 8;
    p->flat = 1.5;
    p->sharpen_time = 2.5;
    switch (method) {
    case EMBED_METHOD_SHARPENED:
        p->dim = 256;
        p->alpha = 0.3;
        p->sharpen = 0.5;
        p->norm_item = 0.4;
        p->lin_item = 0.4;
        /* Below 2 norm_user: heavy users' co-occurrences count for more
         * than the spectrum gives them (better on two Gowalla carves, and
         * --tune reaches the same point on Last.fm and MovieLens from
         * here as from 1.0). */
        p->lin_user = 0.8;
        break;
    case EMBED_METHOD_CHEBY: /* ChebyCF's Gowalla config: K 8, phi 1.5, eta 512, alpha 0.2, beta 0.4 */
        p->dim = 512;
        p->alpha = 0.2;
        p->degnorm = 0.4;
        break;
    case EMBED_METHOD_BSPM: /* BSPM-EM's Gowalla run: factor_dim 448, idl_beta 0.2, rk4 T_s 2.5 */
        p->dim = 448;
        p->alpha = 0.2;
        break;
    }
}

uint32_t embed_train_model_dim(const embed_train_params *p) {
    if (p->method == EMBED_METHOD_CHEBY) return p->dim;
    if (p->method == EMBED_METHOD_SHARPENED && p->sharpen == 0 && p->curve == 0) return p->dim;
    return 2 * p->dim;
}

/* d^x with empty rows treated as degree 1: they have no entries anyway. */
static double deg_pow(uint32_t d, double x) { return pow(d ? (double)d : 1.0, x); }

/* ---- the normalised graph ---------------------------------------------- */

/* R~ in both orientations, and the degrees. Owns every array. */
typedef struct {
    uint32_t *deg;   /* item degrees */
    uint64_t *toff;  /* item-major transpose: users of each item */
    uint32_t *tusers;
    double *val;     /* R~ values, user major (the data's order) */
    double *tval;    /* R~ values, item major */
    embed_sparse A;  /* users x items */
    embed_sparse At; /* items x users */
} train_graph;

static void graph_free(train_graph *g) {
    free(g->deg);
    free(g->toff);
    free(g->tusers);
    free(g->val);
    free(g->tval);
    memset(g, 0, sizeof(*g));
}

static uint32_t user_deg(const embed_data *d, uint32_t u) {
    return (uint32_t)(d->off[u + 1] - d->off[u]);
}

/* Counting sort of the pattern by item. */
static void graph_transpose(const embed_data *d, train_graph *g, uint64_t *pos) {
    uint64_t nnz = d->off[d->n_users];
    for (uint64_t e = 0; e < nnz; e++) g->toff[d->item[e] + 1]++;
    for (uint32_t i = 0; i < d->n_items; i++) g->toff[i + 1] += g->toff[i];
    memcpy(pos, g->toff, ((size_t)d->n_items + 1) * sizeof(*pos));
    for (uint32_t u = 0; u < d->n_users; u++)
        for (uint64_t e = d->off[u]; e < d->off[u + 1]; e++) g->tusers[pos[d->item[e]]++] = u;
}

static int graph_build(const embed_data *d, double nu, double ni, train_graph *g) {
    uint64_t nnz = d->off[d->n_users];
    uint64_t *pos = NULL;
    memset(g, 0, sizeof(*g));
    g->deg = calloc(d->n_items ? d->n_items : 1, sizeof(*g->deg));
    g->toff = calloc((size_t)d->n_items + 1, sizeof(*g->toff));
    g->tusers = malloc((nnz ? nnz : 1) * sizeof(*g->tusers));
    g->val = malloc((nnz ? nnz : 1) * sizeof(*g->val));
    g->tval = malloc((nnz ? nnz : 1) * sizeof(*g->tval));
    pos = malloc(((size_t)d->n_items + 1) * sizeof(*pos));
    if (!g->deg || !g->toff || !g->tusers || !g->val || !g->tval || !pos) goto fail;
    for (uint64_t e = 0; e < nnz; e++) g->deg[d->item[e]]++;
    graph_transpose(d, g, pos);
    for (uint32_t u = 0; u < d->n_users; u++) {
        double su = deg_pow(user_deg(d, u), -nu);
        for (uint64_t e = d->off[u]; e < d->off[u + 1]; e++)
            g->val[e] = su * deg_pow(g->deg[d->item[e]], -ni);
    }
    for (uint32_t i = 0; i < d->n_items; i++) {
        double si = deg_pow(g->deg[i], -ni);
        for (uint64_t e = g->toff[i]; e < g->toff[i + 1]; e++)
            g->tval[e] = si * deg_pow(user_deg(d, g->tusers[e]), -nu);
    }
    g->A = (embed_sparse){d->n_users, d->n_items, d->off, d->item, g->val};
    g->At = (embed_sparse){d->n_items, d->n_users, g->toff, g->tusers, g->tval};
    free(pos);
    return AISLE_OK;
fail:
    free(pos);
    graph_free(g);
    return AISLE_ENOMEM;
}

/* ---- low-rank blocks ----------------------------------------------------- */

/* The spectrum the low-rank blocks are built from. */
typedef struct {
    uint32_t k;
    const double *sigma; /* k values, descending */
    const double *V;     /* n_items x k, row major */
} train_spectrum;

/* t = S^2 / S_1^2 of component c. */
static double spec_t(const train_spectrum *s, uint32_t c) {
    double s1 = s->sigma[0] > 0 ? s->sigma[0] : 1;
    return s->sigma[c] * s->sigma[c] / (s1 * s1);
}

/* Writes block columns [col, col + k) of P and Q for item i:
 * P = pa * V[i] * G, Q = qa * V[i] (G may be NULL for ones). */
static void block_row(embed_model *m, uint32_t i, uint32_t col, const train_spectrum *s,
                      const double *G, double pa, double qa) {
    const double *v = s->V + (size_t)i * s->k;
    float *P = m->P + (size_t)i * m->dim + col, *Q = m->Q + (size_t)i * m->dim + col;
    for (uint32_t c = 0; c < s->k; c++) {
        P[c] = (float)(pa * (G ? G[c] : 1.0) * v[c]);
        Q[c] = (float)(qa * v[c]);
    }
}

void embed_sharpened_blocks(const embed_train_params *p, embed_sharp_blocks *b) {
    double sh = p->norm_item - p->lin_item;
    *b = (embed_sharp_blocks){{-p->lp_left, sh}, {p->lp_right - p->beta, sh - p->beta}};
}

static void fill_sharpened(const embed_train_params *p, const uint32_t *deg,
                           const train_spectrum *s, double *G, embed_model *m) {
    embed_sharp_blocks b;
    embed_sharpened_blocks(p, &b);
    for (uint32_t c = 0; c < s->k; c++)
        G[c] = s->sigma[c] * s->sigma[c] * (p->curve * spec_t(s, c) - p->sharpen);
    for (uint32_t i = 0; i < m->n_items; i++) {
        /* Items nobody interacted with get zero vectors on the item side. */
        double seen = deg[i] ? 1.0 : 0.0;
        block_row(m, i, 0, s, NULL, p->alpha * deg_pow(deg[i], b.user_exp[0]),
                  seen * deg_pow(deg[i], b.item_exp[0]));
        if (m->dim == 2 * s->k)
            block_row(m, i, s->k, s, G, deg_pow(deg[i], b.user_exp[1]),
                      seen * deg_pow(deg[i], b.item_exp[1]));
    }
}

static void fill_cheby(const embed_train_params *p, const uint32_t *deg, const train_spectrum *s,
                       double *G, embed_model *m) {
    embed_cheby ch;
    embed_cheby_fit(&ch, p->order, p->flat);
    double h0 = embed_cheby_h0(&ch), h1 = embed_cheby_h1(&ch);
    for (uint32_t c = 0; c < s->k; c++) {
        double t = spec_t(s, c);
        G[c] = p->alpha + embed_cheby_eval(&ch, t) - h0 - (1 + p->sharpen) * h1 * t;
    }
    for (uint32_t i = 0; i < m->n_items; i++) {
        double seen = deg[i] ? 1.0 : 0.0;
        block_row(m, i, 0, s, G, deg_pow(deg[i], -p->degnorm), seen * deg_pow(deg[i], p->degnorm));
    }
}

/* Z = p(L) Y for BSPM's sharpening polynomial, by Horner's rule over
 * L Z = R~^T (R~ Z): four sparse round trips, exact. tmp: n_users x k. */
static void bspm_apply(const train_graph *g, double T, uint32_t k, const double *Y, double *Z,
                       double *W, double *tmp) {
    double c[5];
    size_t n = (size_t)g->At.rows * k;
    embed_bspm_coef(T, c);
    for (size_t e = 0; e < n; e++) Z[e] = c[4] * Y[e];
    for (int j = 3; j >= 0; j--) {
        embed_sparse_mul(&g->A, Z, k, tmp);
        embed_sparse_mul(&g->At, tmp, k, W);
        for (size_t e = 0; e < n; e++) Z[e] = c[j] * Y[e] + W[e];
    }
}

static int fill_bspm(const embed_train_params *p, const train_graph *g, const train_spectrum *s,
                     double *G, embed_model *m) {
    uint32_t k = s->k, n = m->n_items;
    size_t cells = (size_t)n * k;
    double *Y = malloc((cells ? cells : 1) * sizeof(*Y));
    double *Z = malloc((cells ? cells : 1) * sizeof(*Z));
    double *W = malloc((cells ? cells : 1) * sizeof(*W));
    double *tmp = malloc(((size_t)g->A.rows * k + 1) * sizeof(*tmp));
    int rc = AISLE_ENOMEM;
    if (!Y || !Z || !W || !tmp) goto done;
    for (uint32_t c = 0; c < k; c++) {
        double t = spec_t(s, c);
        G[c] = t * embed_bspm_sharpen(p->sharpen_time, t) - t;
    }
    for (uint32_t i = 0; i < n; i++) {
        double sq = g->deg[i] ? deg_pow(g->deg[i], p->norm_item) : 0.0;
        for (uint32_t c = 0; c < k; c++) Y[(size_t)i * k + c] = sq * s->V[(size_t)i * k + c];
    }
    bspm_apply(g, p->sharpen_time, k, Y, Z, W, tmp);
    for (uint32_t i = 0; i < n; i++) {
        block_row(m, i, 0, s, G, 1.0, g->deg[i] ? 1.0 : 0.0);
        float *P = m->P + (size_t)i * m->dim + k, *Q = m->Q + (size_t)i * m->dim + k;
        double pa = p->alpha * deg_pow(g->deg[i], -p->norm_item);
        for (uint32_t c = 0; c < k; c++) {
            P[c] = (float)(pa * s->V[(size_t)i * k + c]);
            Q[c] = (float)Z[(size_t)i * k + c];
        }
    }
    rc = AISLE_OK;
done:
    free(Y);
    free(Z);
    free(W);
    free(tmp);
    return rc;
}

/* ---- neighbour lists ----------------------------------------------------- */

/* The co-occurrence term: scale * d_i^-el sum_u d_u^-lin_user d_j^-er. */
typedef struct {
    double lin_user, el, er, scale;
    uint32_t keep;
    int sorted; /* each list heaviest first (else the same entries in any order) */
} train_cooc;

static train_cooc cooc_of(const embed_train_params *p, double sigma1) {
    train_cooc c = {p->lin_user, p->lin_item, p->lin_item + p->beta, 1.0, p->neighbors, 1};
    if (p->method == EMBED_METHOD_CHEBY) {
        embed_cheby ch;
        embed_cheby_fit(&ch, p->order, p->flat);
        double s2 = sigma1 > 0 ? sigma1 * sigma1 : 1;
        c = (train_cooc){2 * p->norm_user, p->norm_item + p->degnorm, p->norm_item - p->degnorm,
                         embed_cheby_h1(&ch) / s2, p->neighbors, 1};
    } else if (p->method == EMBED_METHOD_BSPM) {
        c = (train_cooc){2 * p->norm_user, p->norm_item, p->norm_item, 1.0, p->neighbors, 1};
    }
    return c;
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

/* Per-thread scratch of the co-occurrence pass. */
typedef struct {
    double *acc;       /* n_items, zero between items */
    uint32_t *touched; /* items with acc != 0 */
    train_nb *cand;
} nb_scratch;

/* Item i's list, best first, into out (room for c->keep); returns its
 * length. uw[u] = d_u^-lin_user, left/right the item exponents' powers. */
static uint32_t nb_item_list(const embed_data *d, const train_graph *g, const train_cooc *c,
                             const double *uw, const double *left, const double *right,
                             uint32_t i, nb_scratch *s, train_nb *out) {
    uint32_t nt = 0, nc = 0;
    for (uint64_t e = g->toff[i]; e < g->toff[i + 1]; e++) {
        uint32_t u = g->tusers[e];
        for (uint64_t f = d->off[u]; f < d->off[u + 1]; f++) {
            uint32_t j = d->item[f];
            if (s->acc[j] == 0) s->touched[nt++] = j;
            s->acc[j] += uw[u];
        }
    }
    for (uint32_t t = 0; t < nt; t++) {
        uint32_t j = s->touched[t];
        if (j != i) s->cand[nc++] = (train_nb){(float)(c->scale * left[i] * s->acc[j] * right[j]), j};
        s->acc[j] = 0;
    }
    uint32_t keep = nc < c->keep ? nc : c->keep;
    nb_select(s->cand, nc, keep);
    if (c->sorted) qsort(s->cand, keep, sizeof(*s->cand), nb_desc);
    memcpy(out, s->cand, keep * sizeof(*out));
    return keep;
}

/* Packs the per-item lists (stride keep) into m's CSR arrays. */
static int nb_pack(const train_nb *lists, const uint32_t *count, uint32_t n, uint32_t keep,
                   embed_model *m) {
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        m->nb_off[i] = total;
        total += count[i];
    }
    for (uint32_t i = n; i <= m->n_items; i++) m->nb_off[i] = total;
    m->nb_item = malloc((total ? total : 1) * sizeof(*m->nb_item));
    m->nb_weight = malloc((total ? total : 1) * sizeof(*m->nb_weight));
    if (!m->nb_item || !m->nb_weight) return AISLE_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t t = 0; t < count[i]; t++) {
            m->nb_item[m->nb_off[i] + t] = lists[(size_t)i * keep + t].j;
            m->nb_weight[m->nb_off[i] + t] = lists[(size_t)i * keep + t].w;
        }
    return AISLE_OK;
}

/* Every item's list, in parallel; count[i] its length. */
static int nb_all_lists(const embed_data *d, const train_graph *g, const train_cooc *c,
                        const double *uw, const double *left, const double *right,
                        train_nb *lists, uint32_t *count, embed_progress *prog) {
    uint32_t n = d->n_items;
    uint64_t done_items = 0;
    int fail = 0;
#pragma omp parallel reduction(| : fail)
    {
        nb_scratch s = {calloc(n, sizeof(double)), malloc((size_t)n * sizeof(uint32_t)),
                        malloc((size_t)n * sizeof(train_nb))};
        if (!s.acc || !s.touched || !s.cand) fail = 1;
#pragma omp for schedule(dynamic, 16)
        for (uint32_t i = 0; i < n; i++) {
            if (!s.acc || !s.touched || !s.cand) continue;
            count[i] = nb_item_list(d, g, c, uw, left, right, i, &s, lists + (size_t)i * c->keep);
            uint64_t k;
#pragma omp atomic capture
            k = ++done_items;
            if ((k & 255) == 0) {
#pragma omp critical
                embed_progress_set(prog, k);
            }
        }
        free(s.acc);
        free(s.touched);
        free(s.cand);
    }
    return fail ? AISLE_ENOMEM : AISLE_OK;
}

/* Fills the neighbour lists of m (empty ones when c->keep is 0). */
static int train_neighbors(const embed_data *d, const train_graph *g, const train_cooc *c,
                           embed_model *m, embed_progress *prog) {
    uint32_t n = d->n_items;
    train_nb *lists = NULL;
    uint32_t *count = NULL;
    double *uw = NULL, *left = NULL, *right = NULL;
    int rc = AISLE_ENOMEM;
    assert(!m->nb_item && !m->nb_weight && c->keep > 0);
    if (n == 0) return AISLE_OK;
    lists = malloc((size_t)n * c->keep * sizeof(*lists));
    count = calloc(n, sizeof(*count));
    uw = malloc(((size_t)d->n_users + 1) * sizeof(*uw));
    left = malloc((size_t)n * sizeof(*left));
    right = malloc((size_t)n * sizeof(*right));
    if (!lists || !count || !uw || !left || !right) goto done;
    for (uint32_t u = 0; u < d->n_users; u++) uw[u] = deg_pow(user_deg(d, u), -c->lin_user);
    for (uint32_t j = 0; j < n; j++) {
        left[j] = deg_pow(g->deg[j], -c->el);
        right[j] = deg_pow(g->deg[j], -c->er);
    }
    embed_progress_start(prog, "neighbours", "items", n, prog->quiet);
    rc = nb_all_lists(d, g, c, uw, left, right, lists, count, prog);
    if (rc != AISLE_OK) goto done;
    embed_progress_set(prog, n);
    embed_progress_end(prog);
    rc = nb_pack(lists, count, n, c->keep, m);
done:
    free(lists);
    free(count);
    free(uw);
    free(left);
    free(right);
    return rc;
}

/* ---- the staged trainer ------------------------------------------------ */

struct embed_trainer {
    const embed_data *d;  /* borrowed */
    double norm_user, norm_item;
    train_graph g;
    uint32_t k;           /* spectrum size */
    double *sigma, *V;    /* k values, n_items x k vectors */
    train_cooc cached[2];    /* what each nb_cache was computed for */
    embed_model nb_cache[2]; /* only the neighbour arrays are used */
    int pinned;              /* the slot a miss must not replace (-1: none) */
    int unordered;           /* lists need no order (embed_trainer_unordered_lists) */
    int quiet;
};

/* Lowers the rank to what the data can support. */
static void train_fit_rank(const embed_data *d, embed_train_params *p) {
    uint32_t room = d->n_users < d->n_items ? d->n_users : d->n_items;
    if (p->dim + p->svd_oversample > room) {
        p->svd_oversample = room / 4 < p->svd_oversample ? room / 4 : p->svd_oversample;
        if (p->dim > room - p->svd_oversample) p->dim = room - p->svd_oversample;
    }
}

/* Subspace iterations: fewer from a warm start, which begins close to the
 * answer. */
static uint32_t train_svd_iters(const embed_train_params *p, const embed_svd_start *warm) {
    return warm && warm->V && p->svd_iters > EMBED_WARM_ITERS ? EMBED_WARM_ITERS : p->svd_iters;
}

int embed_trainer_new(const embed_data *d, embed_train_params *p, const embed_svd_start *warm,
                      int quiet, embed_trainer **out) {
    embed_trainer *t = calloc(1, sizeof(*t));
    embed_progress prog = {.quiet = quiet};
    int rc = AISLE_ENOMEM;
    *out = NULL;
    if (!t) return rc;
    train_fit_rank(d, p);
    t->d = d;
    t->quiet = quiet;
    t->pinned = -1;
    t->norm_user = p->norm_user;
    t->norm_item = p->norm_item;
    t->k = p->dim;
    if ((rc = graph_build(d, p->norm_user, p->norm_item, &t->g)) != AISLE_OK) goto fail;
    if (t->k > 0) {
        rc = AISLE_ENOMEM;
        t->sigma = malloc((size_t)t->k * sizeof(*t->sigma));
        t->V = malloc(((size_t)d->n_items * t->k + 1) * sizeof(*t->V));
        if (!t->sigma || !t->V) goto fail;
        rc = embed_svd_topk(&t->g.A, &t->g.At, t->k, p->svd_oversample, train_svd_iters(p, warm),
                            p->seed, warm, t->sigma, t->V, &prog);
        if (rc != AISLE_OK) goto fail;
    }
    *out = t;
    return AISLE_OK;
fail:
    embed_trainer_free(t);
    return rc;
}

void embed_trainer_take_spectrum(embed_trainer *t, double **V, uint32_t *k) {
    *V = t->V;
    *k = t->k;
    t->V = NULL;
}

void embed_trainer_free(embed_trainer *t) {
    if (!t) return;
    graph_free(&t->g);
    free(t->sigma);
    free(t->V);
    embed_model_free(&t->nb_cache[0]);
    embed_model_free(&t->nb_cache[1]);
    free(t);
}

/* The first k columns of the trainer's spectrum, as a block of its own
 * (the spectrum is stored n x K; a narrower view needs its own copy). */
static int spectrum_view(const embed_trainer *t, uint32_t k, train_spectrum *s, double **own) {
    *own = NULL;
    if (k == t->k) {
        *s = (train_spectrum){k, t->sigma, t->V};
        return AISLE_OK;
    }
    uint32_t n = t->d->n_items;
    *own = malloc(((size_t)n * k + 1) * sizeof(**own));
    if (!*own) return AISLE_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        memcpy(*own + (size_t)i * k, t->V + (size_t)i * t->k, k * sizeof(double));
    *s = (train_spectrum){k, t->sigma, *own};
    return AISLE_OK;
}

static int fill_lowrank(const embed_trainer *t, const embed_train_params *p, embed_model *m) {
    train_spectrum s;
    double *own = NULL, *G = malloc(((size_t)p->dim + 1) * sizeof(*G));
    int rc = G ? spectrum_view(t, p->dim, &s, &own) : AISLE_ENOMEM;
    if (rc == AISLE_OK) {
        switch (p->method) {
        case EMBED_METHOD_SHARPENED: fill_sharpened(p, t->g.deg, &s, G, m); break;
        case EMBED_METHOD_CHEBY: fill_cheby(p, t->g.deg, &s, G, m); break;
        case EMBED_METHOD_BSPM: rc = fill_bspm(p, &t->g, &s, G, m); break;
        }
    }
    free(own);
    free(G);
    return rc;
}

static int cooc_same_lists(const train_cooc *a, const train_cooc *b) {
    return a->lin_user == b->lin_user && a->el == b->el && a->er == b->er && a->keep == b->keep;
}

/* Copies the lists of slot into m, scaled to c (same lists, other scale). */
static int nb_copy(const embed_trainer *t, int slot, const train_cooc *c, embed_model *m) {
    const embed_model *src = &t->nb_cache[slot];
    uint64_t nnz = src->nb_off[src->n_items];
    float f = (float)(c->scale / t->cached[slot].scale);
    memcpy(m->nb_off, src->nb_off, ((size_t)m->n_items + 1) * sizeof(*m->nb_off));
    m->nb_item = malloc((nnz ? nnz : 1) * sizeof(*m->nb_item));
    m->nb_weight = malloc((nnz ? nnz : 1) * sizeof(*m->nb_weight));
    if (!m->nb_item || !m->nb_weight) return AISLE_ENOMEM;
    memcpy(m->nb_item, src->nb_item, nnz * sizeof(*m->nb_item));
    for (uint64_t e = 0; e < nnz; e++) m->nb_weight[e] = f * src->nb_weight[e];
    return AISLE_OK;
}

/* The slot holding c's lists, or -1. */
static int nb_slot(const embed_trainer *t, const train_cooc *c) {
    for (int s = 0; s < 2; s++)
        if (t->nb_cache[s].nb_item && cooc_same_lists(c, &t->cached[s])) return s;
    return -1;
}

static train_cooc trainer_cooc(const embed_trainer *t, const embed_train_params *p) {
    /* Without a spectrum the scale of L is taken as 1, which it is under
     * the symmetric normalisation. */
    train_cooc c = cooc_of(p, t->k > 0 ? t->sigma[0] : 1.0);
    c.sorted = !t->unordered;
    return c;
}

void embed_trainer_unordered_lists(embed_trainer *t) {
    assert(!t->nb_cache[0].nb_item && !t->nb_cache[1].nb_item);
    t->unordered = 1;
}

/* Adds p's neighbour lists to m (nothing when p has none). Two sets are
 * kept, so a search returning to its best point after a losing one that
 * recounted (another lin_user) does not recount again. */
static int trainer_lists(embed_trainer *t, const embed_train_params *p, embed_model *m) {
    embed_progress prog = {.quiet = t->quiet};
    train_cooc c = trainer_cooc(t, p);
    if (c.keep == 0 || c.scale <= 0) return AISLE_OK;
    int slot = nb_slot(t, &c);
    if (slot < 0) {
        slot = t->pinned == 0 ? 1 : 0;
        embed_model_free(&t->nb_cache[slot]);
        t->cached[slot] = c;
        int rc = embed_model_alloc(&t->nb_cache[slot], t->d->n_items, 0, 0);
        if (rc == AISLE_OK) rc = train_neighbors(t->d, &t->g, &c, &t->nb_cache[slot], &prog);
        if (rc != AISLE_OK) {
            embed_model_free(&t->nb_cache[slot]);
            return rc;
        }
    }
    return nb_copy(t, slot, &c, m);
}

void embed_trainer_pin(embed_trainer *t, const embed_train_params *p) {
    train_cooc c = trainer_cooc(t, p);
    t->pinned = nb_slot(t, &c);
}

/* b_j = pop * s * log(1 + d_j) / log(1 + d_max), s the mean over items of
 * their heaviest neighbour weight times the mean interaction weight (what
 * one profile entry adds at most, in the data's own weight units): a
 * user-independent popularity prior whose share of the score shrinks as
 * the profile grows (the other terms are sums over it), so it mostly ranks
 * light users' pages. */
static void trainer_bias(const embed_trainer *t, const embed_train_params *p, embed_model *m) {
    uint32_t n = m->n_items, dmax = 1, lists = 0;
    uint64_t nnz = t->d->off[t->d->n_users];
    double s = 0, w = 0;
    for (uint64_t e = 0; e < nnz; e++) w += t->d->weight[e];
    w = nnz ? w / (double)nnz : 1.0;
    for (uint32_t i = 0; i < n; i++) {
        float top = 0;
        for (uint64_t e = m->nb_off[i]; e < m->nb_off[i + 1]; e++)
            if (m->nb_weight[e] > top) top = m->nb_weight[e];
        s += top;
        lists += m->nb_off[i + 1] > m->nb_off[i];
        if (t->g.deg[i] > dmax) dmax = t->g.deg[i];
    }
    s = w * (lists ? s / lists : 1.0);
    double f = p->pop * s / log1p((double)dmax);
    for (uint32_t i = 0; i < n; i++) m->bias[i] = (float)(f * log1p((double)t->g.deg[i]));
}

int embed_trainer_model(embed_trainer *t, const embed_train_params *p, embed_model *m) {
    int rc;
    assert(p->dim <= t->k && p->norm_user == t->norm_user && p->norm_item == t->norm_item);
    assert(t->V || t->k == 0);
    rc = embed_model_alloc(m, t->d->n_items, embed_train_model_dim(p), p->pop != 0);
    if (rc != AISLE_OK) return rc;
    if (p->dim > 0 && (rc = fill_lowrank(t, p, m)) != AISLE_OK) goto fail;
    if ((rc = trainer_lists(t, p, m)) != AISLE_OK) goto fail;
    if (m->bias) trainer_bias(t, p, m);
    return AISLE_OK;
fail:
    embed_model_free(m);
    return rc;
}

int embed_trainer_neighbors(embed_trainer *t, const embed_train_params *p, embed_model *m) {
    assert(p->norm_user == t->norm_user && p->norm_item == t->norm_item);
    int rc = embed_model_alloc(m, t->d->n_items, 0, p->pop != 0);
    if (rc == AISLE_OK && (rc = trainer_lists(t, p, m)) != AISLE_OK) embed_model_free(m);
    if (rc == AISLE_OK && m->bias) trainer_bias(t, p, m);
    return rc;
}

embed_trainer_view embed_trainer_spectrum(const embed_trainer *t) {
    return (embed_trainer_view){t->k, t->sigma, t->V, t->g.deg};
}

int embed_train(const embed_data *d, embed_train_params *p, embed_model *m, int quiet) {
    return embed_train_warm(d, p, NULL, m, quiet);
}

int embed_train_warm(const embed_data *d, embed_train_params *p, const embed_svd_start *warm,
                     embed_model *m, int quiet) {
    embed_trainer *t;
    memset(m, 0, sizeof(*m));
    int rc = embed_trainer_new(d, p, warm, quiet, &t);
    if (rc != AISLE_OK) return rc;
    rc = embed_trainer_model(t, p, m);
    embed_trainer_free(t);
    return rc;
}
