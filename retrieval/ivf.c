/* ivf: inverted lists in slot space, a slot → (list, position) map for
 * removal in O(1), a linear-time selection of the k best, and with lists
 * of long rows a two-step search: quantized rows pick a short list, half
 * rows score it; short rows are kept by column in blocks (vec.h), which
 * scan without a lane sum a row. */
#include "retrieval/ivf.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "retrieval/vec.h"
#include "services/base/status.h"

#define IVF_ABSENT UINT32_MAX
#define IVF_CHUNK 256 /* rows a kernel call, a multiple of VEC_COLS; the scores stay on the stack */
#define IVF_ROOM 4    /* the top's buffer, in multiples of k */
/* Candidates the quantized scan keeps for a search of k, re-scored from
 * the half rows. The codes' error is about 1 % of the scores' spread on
 * clustered rows (tests/retrieval/ivf_test: the half top, whole), but on
 * the dim-512 Gowalla snapshot the profile vector's scores spread over a
 * third of that error, and 11 % of the half top falls outside twice k
 * (1 % at dim 256), and Recall@20 online is still the half rows' to four
 * decimals at both (embed/README.md), since the catalog re-scores in
 * float and the neighbour sums carry most of a page. */
#define IVF_Q8_DEEP(k) (2 * (k) + 16)
/* The shortest rows scanned as codes. Below it a row is a cache line or
 * less and the scan is bound by the work per row (a reduction, the score's
 * scaling, the re-score), not its bytes: on the synthetic shop (dim 32)
 * the codes' search took about twice the half rows' CPU. */
#define IVF_Q8_MIN_DIM 128

typedef struct ivf_list {
    /* n * dim floats, or halves when the index has lists: by column in
     * blocks of VEC_COLS rows without codes (cap a multiple of VEC_COLS),
     * else a row after another (the re-score reads single rows); owned */
    void *v;
    uint8_t *code;  /* with codes (ivf.q8): n * dim biased codes (vec_q8), owned; else NULL */
    float *scale;   /* with codes: n code scales, owned; else NULL */
    uint32_t *slot; /* n, owned */
    size_t n, cap;
} ivf_list;

struct ivf {
    int dim, nlist, nprobe;
    int q8; /* whether rows are also kept as codes and scanned as those */
    int cols; /* whether half rows are kept by column (lists, no codes) */
    size_t row; /* bytes a row takes: dim floats, or dim halves with more than one list */
    float *centroids; /* nlist * dim, owned; NULL with one list */
    ivf_list *lists;
    uint32_t *list_of, *pos; /* by slot: its list (IVF_ABSENT) and place in it */
    size_t map_cap, count;
};

/* The k best hits seen so far: a buffer of IVF_ROOM·k that is cut back to
 * its k best when full, after which only scores above the k-th best
 * enter. Each row costs a compare; a cut costs O(k), so the whole is
 * linear (a heap paid log k for every row that beat its root). A roomier
 * buffer cuts less often; its floor lags a little more. */
typedef struct ivf_top {
    vec_hit *h; /* 2k, owned; id: the slot */
    size_t n, k;
    /* The k-th best hit at the last cut (by vec_hit_desc, ties by slot, so
     * the k best do not depend on the order rows arrive in: a batch scans
     * lists in another order than a lone search); -INF before. */
    vec_hit floor;
} ivf_top;

#define IVF_TOP_INIT(k_) {NULL, 0, (size_t)(k_), {-INFINITY, UINT32_MAX}}


/* Whether x goes before y in vec_hit_desc's order, as a value rather
 * than a jump. */
static inline size_t ivf_before(vec_hit x, vec_hit y) {
    return (size_t)((x.score > y.score) | ((x.score == y.score) & (x.id < y.id)));
}

/* Puts the median of h[a], h[b], h[c] at h[c]. */
static void ivf_median_last(vec_hit *h, size_t a, size_t b, size_t c) {
    vec_hit t;
    if (ivf_before(h[b], h[a])) t = h[a], h[a] = h[b], h[b] = t;
    if (ivf_before(h[c], h[b])) t = h[b], h[b] = h[c], h[c] = t;
    if (ivf_before(h[b], h[a])) t = h[a], h[a] = h[b], h[b] = t;
    t = h[b], h[b] = h[c], h[c] = t;
}

/* Moves the k best of h[0..n) to the front, k < n: quickselect with a
 * median-of-three pivot and a branch-free Lomuto partition. The scores
 * come in no order, so a partition that jumped on each comparison
 * mispredicted about half of them; here each step swaps unconditionally
 * and advances by the comparison's value. */
static void ivf_select(vec_hit *h, size_t n, size_t k) {
    size_t lo = 0, hi = n; /* the k-th place lies in [lo, hi) */
    while (hi - lo > 2) {
        size_t store = lo;
        ivf_median_last(h, lo, lo + (hi - lo) / 2, hi - 1);
        vec_hit pivot = h[hi - 1], t;
        for (size_t i = lo; i < hi - 1; i++) {
            vec_hit x = h[i];
            size_t b = ivf_before(x, pivot);
            h[i] = h[store];
            h[store] = x;
            store += b;
        }
        /* [lo, store) go before the pivot, which goes to store. */
        t = h[store], h[store] = h[hi - 1], h[hi - 1] = t;
        if (store == k || store + 1 == k) return;
        if (k < store) hi = store;
        else lo = store + 1;
    }
    if (hi - lo == 2 && ivf_before(h[lo + 1], h[lo])) {
        vec_hit t = h[lo];
        h[lo] = h[lo + 1];
        h[lo + 1] = t;
    }
}

/* Whether (s, slot) goes before the floor. */
static inline int ivf_top_beats(const ivf_top *t, float s, uint32_t slot) {
    return s > t->floor.score || (s == t->floor.score && slot < t->floor.id);
}

static void ivf_top_push(ivf_top *t, float s, uint32_t slot) {
    if (!ivf_top_beats(t, s, slot)) return;
    if (t->n == IVF_ROOM * t->k) {
        ivf_select(t->h, t->n, t->k);
        t->n = t->k;
        t->floor = t->h[0];
        for (size_t i = 1; i < t->k; i++)
            if (vec_hit_desc(&t->h[i], &t->floor) > 0) t->floor = t->h[i];
        if (!ivf_top_beats(t, s, slot)) return;
    }
    t->h[t->n++] = (vec_hit){s, slot};
}

/* The k best, best first unless any_order, into slots and scores;
 * returns how many. */
static int ivf_top_take(ivf_top *t, int any_order, size_t *slots, float *scores) {
    size_t n = t->n < t->k ? t->n : t->k;
    if (t->n > t->k) ivf_select(t->h, t->n, t->k);
    if (!any_order) vec_hits_sort(t->h, n);
    for (size_t i = 0; i < n; i++) {
        slots[i] = t->h[i].id;
        scores[i] = t->h[i].score;
    }
    return (int)n;
}

void ivf_set_nprobe(ivf *x, int nprobe) {
    x->nprobe = nprobe < 1 ? 1 : nprobe > x->nlist ? x->nlist : nprobe;
}

int ivf_new(int dim, int nlist, const float *centroids, int nprobe, ivf **out) {
    ivf *x = calloc(1, sizeof(*x));
    assert(dim > 0 && nlist > 0 && (nlist == 1 || centroids));
    *out = NULL;
    if (!x) return AISLE_ENOMEM;
    x->dim = dim;
    x->nlist = nlist;
    x->row = (size_t)dim * (nlist > 1 ? sizeof(uint16_t) : sizeof(float));
    ivf_set_nprobe(x, nprobe);
    x->q8 = nlist > 1 && dim >= IVF_Q8_MIN_DIM;
    x->cols = nlist > 1 && !x->q8;
    x->lists = calloc((size_t)nlist, sizeof(*x->lists));
    if (nlist > 1 && (x->centroids = malloc((size_t)nlist * (size_t)dim * sizeof(float))))
        memcpy(x->centroids, centroids, (size_t)nlist * (size_t)dim * sizeof(float));
    if (!x->lists || (nlist > 1 && !x->centroids)) {
        ivf_free(x);
        return AISLE_ENOMEM;
    }
    *out = x;
    return AISLE_OK;
}

void ivf_free(ivf *x) {
    if (!x) return;
    for (int l = 0; x->lists && l < x->nlist; l++) {
        free(x->lists[l].v);
        free(x->lists[l].code);
        free(x->lists[l].scale);
        free(x->lists[l].slot);
    }
    free(x->lists);
    free(x->centroids);
    free(x->list_of);
    free(x->pos);
    free(x);
}

size_t ivf_count(const ivf *x) { return x->count; }

int ivf_exact(const ivf *x) { return x->nlist == 1; }

/* The list whose centroid has the largest inner product with v. */
static int ivf_nearest(const ivf *x, const float *v) {
    int best = 0;
    float bs = 0;
    for (int l = 0; x->nlist > 1 && l < x->nlist; l++) {
        float s = vec_dot(v, x->centroids + (size_t)l * (size_t)x->dim, x->dim);
        if (l == 0 || s > bs) {
            bs = s;
            best = l;
        }
    }
    return best;
}

/* Room for slot in the slot map and one more row in list l (each array
 * grown on its own: one that failed keeps the old, still large enough). */
static int ivf_reserve(ivf *x, size_t slot, ivf_list *l) {
    if (slot >= x->map_cap) {
        size_t cap = x->map_cap ? x->map_cap : 1024;
        while (cap <= slot) cap *= 2;
        uint32_t *lo = realloc(x->list_of, cap * sizeof(*lo));
        if (lo) x->list_of = lo;
        uint32_t *po = lo ? realloc(x->pos, cap * sizeof(*po)) : NULL;
        if (!po) return AISLE_ENOMEM;
        x->pos = po;
        memset(x->list_of + x->map_cap, 0xff, (cap - x->map_cap) * sizeof(*lo));
        x->map_cap = cap;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : VEC_COLS;
        void *v = realloc(l->v, cap * x->row);
        if (v) l->v = v;
        uint32_t *s = v ? realloc(l->slot, cap * sizeof(*s)) : NULL;
        if (s) l->slot = s;
        if (s && x->q8) {
            uint8_t *c = realloc(l->code, cap * (size_t)x->dim);
            if (c) l->code = c;
            float *sc = c ? realloc(l->scale, cap * sizeof(*sc)) : NULL;
            if (sc) l->scale = sc;
            else s = NULL;
        }
        if (!s) return AISLE_ENOMEM;
        l->cap = cap;
    }
    return AISLE_OK;
}

/* Where value j of row p lies among a list's halves. */
static size_t ivf_half_at(const ivf *x, size_t p, int j) {
    if (!x->cols) return p * (size_t)x->dim + (size_t)j;
    return (p / VEC_COLS) * (size_t)x->dim * VEC_COLS + (size_t)j * VEC_COLS + p % VEC_COLS;
}

/* Copies list l's row from into place to, in either layout. */
static void ivf_move_row(const ivf *x, ivf_list *l, size_t from, size_t to) {
    uint16_t *h = l->v;
    if (!x->cols) {
        memcpy((char *)l->v + to * x->row, (char *)l->v + from * x->row, x->row);
        return;
    }
    for (int j = 0; j < x->dim; j++) h[ivf_half_at(x, to, j)] = h[ivf_half_at(x, from, j)];
}

int ivf_add(ivf *x, size_t slot, const float *v) {
    ivf_list *l;
    if (slot >= IVF_ABSENT) return AISLE_EINVAL;
    ivf_remove(x, slot);
    l = &x->lists[ivf_nearest(x, v)];
    if (ivf_reserve(x, slot, l) != AISLE_OK) return AISLE_ENOMEM;
    if (x->nlist > 1) {
        uint16_t *h = l->v;
        for (int j = 0; j < x->dim; j++) h[ivf_half_at(x, l->n, j)] = vec_to_half(v[j]);
        if (x->q8) {
            uint8_t *c = l->code + l->n * (size_t)x->dim;
            l->scale[l->n] = vec_q8(v, x->dim, (int8_t *)c);
            for (int j = 0; j < x->dim; j++) c[j] = (uint8_t)(c[j] + 128u);
        }
    } else {
        memcpy((char *)l->v + l->n * x->row, v, x->row);
    }
    l->slot[l->n] = (uint32_t)slot;
    x->list_of[slot] = (uint32_t)(l - x->lists);
    x->pos[slot] = (uint32_t)l->n++;
    x->count++;
    return AISLE_OK;
}

/* The last row takes the removed one's place. */
void ivf_remove(ivf *x, size_t slot) {
    ivf_list *l;
    size_t p, last;
    if (slot >= x->map_cap || x->list_of[slot] == IVF_ABSENT) return;
    l = &x->lists[x->list_of[slot]];
    p = x->pos[slot];
    last = --l->n;
    if (p != last) {
        ivf_move_row(x, l, last, p);
        if (l->code) {
            memcpy(l->code + p * (size_t)x->dim, l->code + last * (size_t)x->dim,
                   (size_t)x->dim);
            l->scale[p] = l->scale[last];
        }
        l->slot[p] = l->slot[last];
        x->pos[l->slot[p]] = (uint32_t)p;
    }
    x->list_of[slot] = IVF_ABSENT;
    x->count--;
}

/* Offers a chunk's m scores s (rows from slot) to t. Most rows score
 * below the floor once the first lists are in: a branch-free pass over
 * the scores (compared with the floor as the chunk starts, which only
 * rises) lists the few that may enter, and only those pay for a push and
 * the query's keep. */
static void ivf_top_chunk(ivf_top *t, const ivf_query *q, const float *s, const uint32_t *slot,
                          size_t m) {
    uint16_t pass[IVF_CHUNK];
    size_t n = 0;
    float floor = t->floor.score;
    assert(m <= IVF_CHUNK);
    for (size_t j = 0; j < m; j++) {
        pass[n] = (uint16_t)j;
        n += s[j] >= floor;
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = pass[i];
        if (ivf_top_beats(t, s[j], slot[j]) && (!q->keep || q->keep(q->keep_arg, slot[j])))
            ivf_top_push(t, s[j], slot[j]);
    }
}

/* A query's codes for the quantized scan (with lists), in two parts:
 * q ≈ scale[0] · code[0] + scale[1] · code[1], the second coding what the
 * first leaves. A profile vector is dominated by a few large values (the
 * model's leading directions), so one code of it would give the rest a
 * handful of levels each; two give the query some 14 bits, and the rows'
 * own codes are the error left. */
typedef struct ivf_qcode {
    int8_t *code[2]; /* dim each, slices of the batch's scratch */
    float scale[2];
} ivf_qcode;

/* q's two-part codes into c, with res as dim floats of scratch. */
static void ivf_qcode_of(const float *q, int dim, float *res, ivf_qcode *c) {
    c->scale[0] = vec_q8(q, dim, c->code[0]);
    for (int j = 0; j < dim; j++) res[j] = q[j] - c->scale[0] * (float)c->code[0][j];
    c->scale[1] = vec_q8(res, dim, c->code[1]);
}

/* Scores list l's rows against each query whose bit is in mask, into
 * its top: a chunk of rows is read from memory once and stays in the
 * first-level cache for the queries after the first. With codes the rows
 * read are those (a quarter of a float row), scored as the two
 * scales times the exact integer sum, the same bits on every kernel. */
static void ivf_scan(const ivf *x, const ivf_list *l, const ivf_query *qs,
                     const ivf_qcode *qc, uint32_t mask, ivf_top *tops) {
    float s[IVF_CHUNK];
    int32_t dot[2][IVF_CHUNK];
    size_t d = (size_t)x->dim;
    for (size_t i = 0; i < l->n; i += IVF_CHUNK) {
        size_t m = l->n - i < IVF_CHUNK ? l->n - i : IVF_CHUNK;
        for (uint32_t left = mask; left; left &= left - 1) {
            int b = __builtin_ctz(left);
            if (x->q8) {
                const ivf_qcode *c = &qc[b];
                vec_dots_q8(c->code[0], l->code + i * d, m, x->dim, dot[0]);
                vec_dots_q8(c->code[1], l->code + i * d, m, x->dim, dot[1]);
                for (size_t j = 0; j < m; j++)
                    s[j] = l->scale[i + j] *
                           (c->scale[0] * (float)dot[0][j] + c->scale[1] * (float)dot[1][j]);
            } else if (x->cols) {
                /* i is a multiple of VEC_COLS: its block starts at i·d. */
                vec_dots_half_cols(qs[b].q, (const uint16_t *)l->v + i * d, m, x->dim, s);
            } else {
                vec_dots(qs[b].q, (const float *)l->v + i * d, m, x->dim, s);
            }
            ivf_top_chunk(&tops[b], &qs[b], s, l->slot + i, m);
        }
    }
}

/* Re-scores the quantized scan's candidates t from their half rows into
 * a top of k: the answer the half rows alone would give whenever their k
 * best are among the candidates. */
static int ivf_rescore(const ivf *x, ivf_top *t, const float *q, size_t k) {
    ivf_top best = IVF_TOP_INIT(k);
    assert(!x->cols); /* with codes, half rows lie a row after another */
    size_t n = t->n < t->k ? t->n : t->k;
    if (!(best.h = malloc(IVF_ROOM * k * sizeof(vec_hit)))) return AISLE_ENOMEM;
    if (t->n > t->k) ivf_select(t->h, t->n, t->k);
    /* The rows lie scattered over the lists: ask for them all first, so
     * their cache misses overlap. */
    for (size_t i = 0; i < n; i++) {
        uint32_t slot = t->h[i].id;
        __builtin_prefetch((const uint16_t *)x->lists[x->list_of[slot]].v +
                           x->pos[slot] * (size_t)x->dim);
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t slot = t->h[i].id;
        const ivf_list *l = &x->lists[x->list_of[slot]];
        float s;
        vec_dots_half(q, (const uint16_t *)l->v + x->pos[slot] * (size_t)x->dim, 1, x->dim, &s);
        ivf_top_push(&best, s, slot);
    }
    free(t->h);
    *t = best;
    return AISLE_OK;
}

/* How many lists q probes: its nprobe, else the index's, at most all. */
static size_t ivf_nprobe_of(const ivf *x, const ivf_query *q) {
    size_t n = (size_t)(q->nprobe > 0 ? q->nprobe : x->nprobe);
    return x->nlist == 1 ? 1 : n < (size_t)x->nlist ? n : (size_t)x->nlist;
}

/* The lists nearest q.q (its nprobe, else the index's), into probe (best
 * first), ivf_nprobe_of of them. All the centroids are scored at once, then one
 * selection keeps the nearest (an incremental top would cut its buffer
 * every nprobe lists). cs is scratch for nlist floats, h for nlist hits. */
static void ivf_probes(const ivf *x, const ivf_query *q, size_t *probe, float *cs, vec_hit *h) {
    size_t n = ivf_nprobe_of(x, q);
    if (x->nlist == 1) {
        probe[0] = 0;
        return;
    }
    vec_dots(q->q, x->centroids, (size_t)x->nlist, x->dim, cs);
    for (int l = 0; l < x->nlist; l++) h[l] = (vec_hit){cs[l], (uint32_t)l};
    if (n < (size_t)x->nlist) ivf_select(h, (size_t)x->nlist, n);
    vec_hits_sort(h, n);
    for (size_t p = 0; p < n; p++) probe[p] = h[p].id;
}

/* Each query's probes, and for each list the mask of queries probing it;
 * order gets the lists by the best place any query gives them (every
 * query's nearest list, then every query's second, ...), so each query
 * meets its own nearest lists early, its top's floor rises at once, and
 * fewer rows of the lists after pass it (a query whose lists came after
 * another's met that query's lists first, and kept most of their rows). */
static int ivf_plan(const ivf *x, const ivf_query *qs, size_t nq, uint32_t *mask,
                    size_t *order, size_t *n_order) {
    size_t most = 0, np[IVF_MAX_BATCH];
    for (size_t b = 0; b < nq; b++) {
        np[b] = qs[b].k > 0 ? ivf_nprobe_of(x, &qs[b]) : 0;
        if (np[b] > most) most = np[b];
    }
    size_t *probe = malloc((nq * most + 1) * sizeof(*probe));
    float *cs = malloc((size_t)x->nlist * sizeof(*cs));
    vec_hit *h = malloc((size_t)x->nlist * sizeof(*h));
    int rc = probe && cs && h ? AISLE_OK : AISLE_ENOMEM;
    *n_order = 0;
    for (size_t b = 0; b < nq && rc == AISLE_OK; b++)
        if (np[b]) ivf_probes(x, &qs[b], probe + b * most, cs, h);
    for (size_t p = 0; p < most && rc == AISLE_OK; p++)
        for (size_t b = 0; b < nq; b++) {
            size_t l;
            if (p >= np[b]) continue;
            l = probe[b * most + p];
            if (!mask[l]) order[(*n_order)++] = l;
            mask[l] |= 1u << b;
        }
    free(probe);
    free(cs);
    free(h);
    return rc;
}

int ivf_search_batch(const ivf *x, ivf_query *qs, size_t nq) {
    ivf_top tops[IVF_MAX_BATCH];
    ivf_qcode qc[IVF_MAX_BATCH];
    int coded = x->q8;
    uint32_t *mask = calloc((size_t)x->nlist, sizeof(*mask));
    size_t *order = malloc((size_t)x->nlist * sizeof(*order)), n_order = 0;
    /* With codes: each query's two codes, and one query's residual. */
    int8_t *codes = coded ? malloc(2 * nq * (size_t)x->dim) : NULL;
    float *res = coded ? malloc((size_t)x->dim * sizeof(*res)) : NULL;
    int rc = mask && order && ((codes && res) || !coded) ? AISLE_OK : AISLE_ENOMEM;
    assert(nq <= IVF_MAX_BATCH);
    for (size_t b = 0; b < nq; b++) {
        size_t k = qs[b].k > 0 ? (size_t)qs[b].k : 0;
        tops[b] = (ivf_top)IVF_TOP_INIT(coded && k ? IVF_Q8_DEEP(k) : k);
        qs[b].n = 0;
        if (k && !(tops[b].h = malloc(IVF_ROOM * tops[b].k * sizeof(vec_hit)))) rc = AISLE_ENOMEM;
        if (rc == AISLE_OK && coded && k) {
            qc[b].code[0] = codes + 2 * b * (size_t)x->dim;
            qc[b].code[1] = qc[b].code[0] + x->dim;
            ivf_qcode_of(qs[b].q, x->dim, res, &qc[b]);
        }
    }
    if (rc == AISLE_OK) rc = ivf_plan(x, qs, nq, mask, order, &n_order);
    for (size_t i = 0; rc == AISLE_OK && i < n_order; i++)
        ivf_scan(x, &x->lists[order[i]], qs, qc, mask[order[i]], tops);
    for (size_t b = 0; b < nq; b++) {
        if (rc == AISLE_OK && coded && qs[b].k > 0)
            rc = ivf_rescore(x, &tops[b], qs[b].q, (size_t)qs[b].k);
        if (rc == AISLE_OK && qs[b].k > 0)
            qs[b].n = ivf_top_take(&tops[b], qs[b].any_order, qs[b].slots, qs[b].scores);
        free(tops[b].h);
    }
    free(mask);
    free(order);
    free(codes);
    free(res);
    return rc;
}

int ivf_search(const ivf *x, const float *q, int k, size_t *slots, float *scores) {
    ivf_query one = {.q = q, .k = k, .slots = slots, .scores = scores};
    int rc = ivf_search_batch(x, &one, 1);
    return rc < 0 ? rc : one.n;
}
