/* eval: the offline evaluation (see eval.h). Users are scored in batches so the dense part of the formula
 * is one matrix product per batch; the top-K cut of each user's row is a
 * bounded min-heap, run in parallel across the batch. */
#include "embed/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"

#define EVAL_BATCH 256

typedef struct {
    float s;
    uint32_t j;
} eval_cand;

/* a ranks below b: lower score, or same score and higher row. */
static int eval_worse(eval_cand a, eval_cand b) {
    return a.s < b.s || (a.s == b.s && a.j > b.j);
}

static void heap_sift_down(eval_cand *h, uint32_t n, uint32_t i) {
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && eval_worse(h[l], h[m])) m = l;
        if (r < n && eval_worse(h[r], h[m])) m = r;
        if (m == i) return;
        eval_cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Best `want` rows of s (skipping -inf), best first, into out; returns the
 * count. heap has room for want entries. */
static uint32_t eval_top(const float *s, uint32_t n, uint32_t want, eval_cand *heap,
                         uint32_t *out) {
    uint32_t h = 0;
    for (uint32_t j = 0; j < n; j++) {
        if (s[j] == -INFINITY) continue;
        eval_cand c = {s[j], j};
        if (h < want) {
            uint32_t i = h++;
            heap[i] = c;
            while (i > 0 && eval_worse(heap[i], heap[(i - 1) / 2])) {
                eval_cand t = heap[i];
                heap[i] = heap[(i - 1) / 2];
                heap[(i - 1) / 2] = t;
                i = (i - 1) / 2;
            }
        } else if (eval_worse(heap[0], c)) {
            heap[0] = c;
            heap_sift_down(heap, h, 0);
        }
    }
    uint32_t cnt = h;
    while (h > 0) { /* pop worst first, fill from the back */
        out[--h] = heap[0].j;
        heap[0] = heap[h];
        heap_sift_down(heap, h, 0);
    }
    return cnt;
}

static int eval_contains(const uint32_t *set, uint32_t n, uint32_t x) {
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (set[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && set[lo] == x;
}

void embed_eval_user(const uint32_t *ranked, uint32_t n_ranked, const uint32_t *test,
                     uint32_t n_test, const int *ks, int nk, double *recall, double *ndcg) {
    if (n_test == 0) return;
    for (int q = 0; q < nk; q++) {
        uint32_t k = (uint32_t)ks[q], hits = 0;
        double dcg = 0, idcg = 0;
        for (uint32_t p = 0; p < k && p < n_ranked; p++) {
            if (eval_contains(test, n_test, ranked[p])) {
                hits++;
                dcg += 1.0 / log2((double)p + 2.0);
            }
        }
        for (uint32_t p = 0; p < k && p < n_test; p++) idcg += 1.0 / log2((double)p + 2.0);
        recall[q] += (double)hits / (double)n_test;
        ndcg[q] += dcg / idcg;
    }
}

int embed_eval_parse_ks(const char *s, int *ks, int *nk) {
    int n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 10000 || n == EMBED_EVAL_MAXK) return AISLE_EINVAL;
        ks[n++] = (int)v;
        if (*end == ',') end++;
        else if (*end != '\0') return AISLE_EINVAL;
        s = end;
    }
    *nk = n;
    return n > 0 ? AISLE_OK : AISLE_EINVAL;
}

/* The batch being scored: its users' profiles gathered into one CSR so
 * the whole batch is one embed_score_batch call. */
typedef struct {
    uint64_t off[EVAL_BATCH + 1];
    uint32_t *item;
    float *weight;
    uint64_t cap;
} eval_batch;

static int batch_gather(eval_batch *b, const embed_data *train, const uint32_t *users,
                        uint32_t nb) {
    uint64_t need = 0;
    for (uint32_t r = 0; r < nb; r++) {
        b->off[r] = need;
        need += train->off[users[r] + 1] - train->off[users[r]];
    }
    b->off[nb] = need;
    if (need > b->cap) {
        uint32_t *ni = realloc(b->item, need * sizeof(*ni));
        if (!ni) return AISLE_ENOMEM;
        b->item = ni;
        float *nw = realloc(b->weight, need * sizeof(*nw));
        if (!nw) return AISLE_ENOMEM;
        b->weight = nw;
        b->cap = need;
    }
    for (uint32_t r = 0; r < nb; r++) {
        uint32_t u = users[r];
        size_t n = train->off[u + 1] - train->off[u];
        memcpy(b->item + b->off[r], train->item + train->off[u], n * sizeof(*b->item));
        memcpy(b->weight + b->off[r], train->weight + train->off[u], n * sizeof(*b->weight));
    }
    return AISLE_OK;
}

/* Ranks each scored row of the batch without the user's train items and
 * adds its metrics into res's sums. */
static int batch_rank(uint32_t n_items, const embed_data *train, const embed_data *test,
                      const uint32_t *users, uint32_t nb, float *scores, uint32_t kmax,
                      embed_eval_result *res) {
    double rsum[EMBED_EVAL_MAXK] = {0}, nsum[EMBED_EVAL_MAXK] = {0};
    int fail = 0, nk = res->nk;
    const int *ks = res->k;
#pragma omp parallel reduction(+ : rsum[:EMBED_EVAL_MAXK], nsum[:EMBED_EVAL_MAXK]) reduction(| : fail)
    {
        eval_cand *heap = malloc(kmax * sizeof(*heap));
        uint32_t *ranked = malloc(kmax * sizeof(*ranked));
        if (!heap || !ranked) fail = 1;
#pragma omp for schedule(dynamic, 8)
        for (uint32_t r = 0; r < nb; r++) {
            if (!heap || !ranked) continue;
            uint32_t u = users[r];
            float *s = scores + (size_t)r * n_items;
            for (uint64_t e = train->off[u]; e < train->off[u + 1]; e++)
                if (train->item[e] < n_items) s[train->item[e]] = -INFINITY;
            uint32_t got = eval_top(s, n_items, kmax, heap, ranked);
            embed_eval_user(ranked, got, test->item + test->off[u],
                            (uint32_t)(test->off[u + 1] - test->off[u]), ks, nk, rsum, nsum);
        }
        free(heap);
        free(ranked);
    }
    for (int q = 0; q < nk; q++) {
        res->recall[q] += rsum[q];
        res->ndcg[q] += nsum[q];
    }
    return fail ? AISLE_ENOMEM : AISLE_OK;
}

uint32_t embed_eval_users(const embed_data *train, const embed_data *test, uint32_t stride,
                          uint32_t *users, uint32_t *skipped) {
    uint32_t n = 0, seen = 0;
    *skipped = 0;
    for (uint32_t u = 0; u < test->n_users; u++) {
        if (test->off[u + 1] == test->off[u]) continue;
        if (u >= train->n_users || train->off[u + 1] == train->off[u]) ++*skipped;
        else if (seen++ % stride == 0) users[n++] = u;
    }
    return n;
}

/* The model's own scorer: the reference formula. */
static int eval_model_scorer(void *ctx, uint32_t first, uint32_t n, const uint64_t *off,
                             const uint32_t *item, const float *weight, float *scores) {
    (void)first;
    return embed_score_batch(ctx, n, off, item, weight, scores);
}

int embed_eval_run(const embed_model *m, const embed_data *train, const embed_data *test,
                   const int *ks, int nk, uint32_t stride, embed_eval_result *res,
                   embed_progress *prog) {
    embed_eval_scorer sc = {eval_model_scorer, (void *)m, m->n_items};
    return embed_eval_run_scorer(&sc, train, test, ks, nk, stride, res, prog);
}

int embed_eval_run_scorer(const embed_eval_scorer *sc, const embed_data *train,
                          const embed_data *test, const int *ks, int nk, uint32_t stride,
                          embed_eval_result *res, embed_progress *prog) {
    memset(res, 0, sizeof(*res));
    uint32_t kmax = 0, n_items = sc->n_items;
    if (nk < 1 || nk > EMBED_EVAL_MAXK || stride < 1) return AISLE_EINVAL;
    for (int q = 0; q < nk; q++) {
        if (ks[q] < 1 || ks[q] > 10000) return AISLE_EINVAL;
        res->k[q] = ks[q];
        if ((uint32_t)ks[q] > kmax) kmax = (uint32_t)ks[q];
    }
    res->nk = nk;
    uint32_t *users = malloc(((size_t)test->n_users + 1) * sizeof(*users));
    float *scores = malloc((size_t)EVAL_BATCH * (n_items ? n_items : 1) * sizeof(float));
    eval_batch *b = calloc(1, sizeof(*b));
    int rc = AISLE_ENOMEM;
    if (!users || !scores || !b) goto done;
    uint32_t n_eval = embed_eval_users(train, test, stride, users, &res->n_skipped);
    embed_progress_start(prog, "eval", "users", n_eval, prog ? prog->quiet : 1);
    for (uint32_t b0 = 0; b0 < n_eval; b0 += EVAL_BATCH) {
        uint32_t nb = n_eval - b0 < EVAL_BATCH ? n_eval - b0 : EVAL_BATCH;
        if ((rc = batch_gather(b, train, users + b0, nb)) != AISLE_OK ||
            (rc = sc->score(sc->ctx, b0, nb, b->off, b->item, b->weight, scores)) != AISLE_OK ||
            (rc = batch_rank(n_items, train, test, users + b0, nb, scores, kmax, res)) != AISLE_OK)
            goto done;
        embed_progress_set(prog, b0 + nb);
    }
    embed_progress_end(prog);
    res->n_users = n_eval;
    for (int q = 0; q < nk && n_eval; q++) {
        res->recall[q] /= n_eval;
        res->ndcg[q] /= n_eval;
    }
    rc = AISLE_OK;
done:
    free(users);
    free(scores);
    if (b) {
        free(b->item);
        free(b->weight);
    }
    free(b);
    return rc;
}

void embed_eval_print(const embed_eval_result *res, FILE *out) {
    fprintf(out, "%6s  %9s  %9s\n", "K", "Recall@K", "NDCG@K");
    for (int q = 0; q < res->nk; q++)
        fprintf(out, "%6d  %9.4f  %9.4f\n", res->k[q], res->recall[q], res->ndcg[q]);
    fprintf(out, "users evaluated: %u", res->n_users);
    if (res->n_skipped) fprintf(out, " (%u test users without train items skipped)", res->n_skipped);
    fprintf(out, "\n");
}
