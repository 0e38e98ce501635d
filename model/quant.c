/* quant.c — decoding ggml's quantized blocks (see quant.h).
 *
 * Layouts, all little-endian with half-precision (f16) scales:
 *   Q4_0  d, 16 bytes: value j is (low nibble of byte j) - 8 for j < 16,
 *         (high nibble of byte j-16) - 8 after; times d.
 *   Q4_1  d, m, 16 bytes: d * nibble + m.
 *   Q5_0  d, 32 fifth bits (uint32), 16 bytes: (nibble | bit << 4) - 16.
 *   Q5_1  d, m, 32 fifth bits, 16 bytes: d * (nibble | bit << 4) + m.
 *   Q8_0  d, 32 int8.
 *   Q4_K  d, dmin, 12 bytes of eight 6-bit (scale, min) pairs, 128 bytes:
 *         each 64 values take 32 bytes, low nibbles first then high;
 *         value = d * scale * q - dmin * min for its 32-value sub-block.
 *   Q5_K  as Q4_K with 32 bytes of fifth bits before the nibbles.
 *   Q6_K  128 bytes of low nibbles, 64 of high 2-bit pairs, 16 int8 scales
 *         (one per 16 values), then d: value = d * scale * (q - 32). */
#include "model/quant.h"

#include "model/gguf.h"
#include "model/kern.h"
#include "services/base/status.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#define QK 32
#define QK_K 256

static float f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2); /* blocks are not aligned */
    return kern_f16_to_f32(h);
}

static void dq_q4_0(const uint8_t *b, float *y) {
    float d = f16(b);
    for (int j = 0; j < QK / 2; j++) {
        y[j] = ((b[2 + j] & 0x0f) - 8) * d;
        y[j + QK / 2] = ((b[2 + j] >> 4) - 8) * d;
    }
}

static void dq_q4_1(const uint8_t *b, float *y) {
    float d = f16(b), m = f16(b + 2);
    for (int j = 0; j < QK / 2; j++) {
        y[j] = (b[4 + j] & 0x0f) * d + m;
        y[j + QK / 2] = (b[4 + j] >> 4) * d + m;
    }
}

/* The 32 five-bit values of a Q5 block: nibbles at qs, fifth bits in qh. */
static void q5_values(const uint8_t *qh_p, const uint8_t *qs, int *v) {
    uint32_t qh;
    memcpy(&qh, qh_p, 4);
    for (int j = 0; j < QK / 2; j++) {
        v[j] = (qs[j] & 0x0f) | (int)(((qh >> j) & 1) << 4);
        v[j + QK / 2] = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
    }
}

static void dq_q5_0(const uint8_t *b, float *y) {
    float d = f16(b);
    int v[QK];
    q5_values(b + 2, b + 6, v);
    for (int j = 0; j < QK; j++)
        y[j] = (v[j] - 16) * d;
}

static void dq_q5_1(const uint8_t *b, float *y) {
    float d = f16(b), m = f16(b + 2);
    int v[QK];
    q5_values(b + 4, b + 8, v);
    for (int j = 0; j < QK; j++)
        y[j] = v[j] * d + m;
}

static void dq_q8_0(const uint8_t *b, float *y) {
    float d = f16(b);
    for (int j = 0; j < QK; j++)
        y[j] = (int8_t)b[2 + j] * d;
}

/* Q4_K and Q5_K share everything but the fifth bit (qh NULL for Q4_K). */
static void dq_k45(const uint8_t *b, const uint8_t *qh, const uint8_t *qs,
                   float *y) {
    float d = f16(b), dmin = f16(b + 2);
    const uint8_t *scales = b + 4;

    for (int j = 0; j < QK_K / 64; j++) {
        int sc0, m0, sc1, m1;
        quant_k_scale_min(2 * j, scales, &sc0, &m0);
        quant_k_scale_min(2 * j + 1, scales, &sc1, &m1);
        for (int l = 0; l < 32; l++) {
            int lo = qs[l] & 0x0f, hi = qs[l] >> 4;
            if (qh) {
                lo |= ((qh[l] >> (2 * j)) & 1) << 4;
                hi |= ((qh[l] >> (2 * j + 1)) & 1) << 4;
            }
            y[l] = d * sc0 * lo - dmin * m0;
            y[l + 32] = d * sc1 * hi - dmin * m1;
        }
        qs += 32;
        y += 64;
    }
}

static void dq_q4_k(const uint8_t *b, float *y) { dq_k45(b, NULL, b + 16, y); }
static void dq_q5_k(const uint8_t *b, float *y) {
    dq_k45(b, b + 16, b + 48, y);
}

static void dq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = f16(b + 208);

    for (int half = 0; half < 2; half++) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

typedef struct quant_fmt {
    int elems, bytes;
    void (*dq)(const uint8_t *blk, float *y);
} quant_fmt;

/* Indexed by enum kern_type; unset entries are not block types. */
static const quant_fmt fmts[] = {
    [KERN_Q8_0] = {QK, 34, dq_q8_0},   [KERN_Q4_0] = {QK, 18, dq_q4_0},
    [KERN_Q4_1] = {QK, 20, dq_q4_1},   [KERN_Q5_0] = {QK, 22, dq_q5_0},
    [KERN_Q5_1] = {QK, 24, dq_q5_1},   [KERN_Q4_K] = {QK_K, 144, dq_q4_k},
    [KERN_Q5_K] = {QK_K, 176, dq_q5_k}, [KERN_Q6_K] = {QK_K, 210, dq_q6_k},
};

static const quant_fmt *fmt_of(int type) {
    if (type < 0 || (size_t)type >= sizeof fmts / sizeof fmts[0] ||
        !fmts[type].dq)
        return NULL;
    return &fmts[type];
}

int quant_block(int type, int *elems, int *bytes) {
    const quant_fmt *f = fmt_of(type);
    if (!f)
        return AISLE_ENOTFOUND;
    *elems = f->elems;
    *bytes = f->bytes;
    return AISLE_OK;
}

void quant_dequant(int type, const uint8_t *blocks, size_t n, float *y) {
    const quant_fmt *f = fmt_of(type);
    assert(f && n % (size_t)f->elems == 0);
    for (size_t i = 0; i < n; i += (size_t)f->elems, blocks += f->bytes)
        f->dq(blocks, y + i);
}

/* Group g (values 32g..32g+31) of a row as int8 values w with scales a[0]
 * (first 16 values) and a[1] (last 16) and offset b: value = a * w + b. */
void quant_unpack32(int type, const uint8_t *row, int g, int8_t *w, float *a,
                    float *b) {
    const quant_fmt *f = fmt_of(type);
    const uint8_t *blk;
    int sub;

    assert(f);
    blk = row + (size_t)(g * QK / f->elems) * (size_t)f->bytes;
    sub = g % (f->elems / QK); /* 32-value group within a K-quant block */
    *b = 0.0f;
    switch (type) {
    case KERN_Q8_0:
        for (int j = 0; j < QK; j++)
            w[j] = (int8_t)blk[2 + j];
        a[0] = f16(blk);
        break;
    case KERN_Q4_0:
    case KERN_Q4_1: {
        const uint8_t *qs = blk + (type == KERN_Q4_0 ? 2 : 4);
        int off = type == KERN_Q4_0 ? 8 : 0;
        for (int j = 0; j < QK / 2; j++) {
            w[j] = (int8_t)((qs[j] & 0x0f) - off);
            w[j + QK / 2] = (int8_t)((qs[j] >> 4) - off);
        }
        a[0] = f16(blk);
        if (type == KERN_Q4_1)
            *b = f16(blk + 2);
        break;
    }
    case KERN_Q5_0:
    case KERN_Q5_1: {
        int v[QK], one = type == KERN_Q5_1;
        q5_values(blk + (one ? 4 : 2), blk + (one ? 8 : 6), v);
        for (int j = 0; j < QK; j++)
            w[j] = (int8_t)(v[j] - (one ? 0 : 16));
        a[0] = f16(blk);
        if (one)
            *b = f16(blk + 2);
        break;
    }
    case KERN_Q4_K:
    case KERN_Q5_K: {
        const uint8_t *qs = blk + (type == KERN_Q4_K ? 16 : 48) + 32 * (sub / 2);
        const uint8_t *qh = type == KERN_Q5_K ? blk + 16 : NULL;
        int sc, m, hi = sub & 1;
        quant_k_scale_min(sub, blk + 4, &sc, &m);
        for (int l = 0; l < 32; l++) {
            int q = hi ? qs[l] >> 4 : qs[l] & 0x0f;
            if (qh)
                q |= ((qh[l] >> sub) & 1) << 4;
            w[l] = (int8_t)q;
        }
        a[0] = f16(blk) * sc;
        *b = -f16(blk + 2) * m;
        break;
    }
    default: { /* KERN_Q6_K: group sub of 8; halves of 128 values */
        int half = sub / 4, k = sub % 4;
        const uint8_t *ql = blk + 64 * half + (k & 1) * 32;
        const uint8_t *qh = blk + 128 + 32 * half;
        const int8_t *sc = (const int8_t *)(blk + 192) + 8 * half + 2 * k;
        float d = f16(blk + 208);
        for (int l = 0; l < 32; l++) {
            int lo = k < 2 ? ql[l] & 0x0f : ql[l] >> 4;
            w[l] = (int8_t)((lo | (((qh[l] >> (2 * k)) & 3) << 4)) - 32);
        }
        a[0] = d * sc[0];
        a[1] = d * sc[1];
        return;
    }
    }
    a[1] = a[0];
}

void quant_k_header(int type, const uint8_t *blk, quant_kscales *h) {
    if (type == KERN_Q6_K) {
        for (int j = 0; j < 16; j++)
            h->sc[j] = ((const int8_t *)blk)[192 + j];
        for (int j = 0; j < 8; j++)
            h->m[j] = 0;
        h->d = f16(blk + 208);
        h->dmin = 0.0f;
        return;
    }
    assert(type == KERN_Q4_K || type == KERN_Q5_K);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        quant_k_scale_min(j, blk + 4, &sc, &m);
        h->sc[2 * j] = h->sc[2 * j + 1] = sc;
        h->m[j] = m;
    }
    h->d = f16(blk);
    h->dmin = f16(blk + 2);
}

int quant_kern_type(uint32_t gguf_type) {
    switch (gguf_type) {
    case GGUF_T_F32: return KERN_F32;
    case GGUF_T_F16: return KERN_F16;
    case GGUF_T_BF16: return KERN_BF16;
    case GGUF_T_Q8_0: return KERN_Q8_0;
    case GGUF_T_Q4_0: return KERN_Q4_0;
    case GGUF_T_Q4_1: return KERN_Q4_1;
    case GGUF_T_Q5_0: return KERN_Q5_0;
    case GGUF_T_Q5_1: return KERN_Q5_1;
    case GGUF_T_Q4_K: return KERN_Q4_K;
    case GGUF_T_Q5_K: return KERN_Q5_K;
    case GGUF_T_Q6_K: return KERN_Q6_K;
    default: return -1;
    }
}

static void put_f16(uint8_t *p, float v) {
    uint16_t h = kern_f32_to_f16(v);
    memcpy(p, &h, 2);
}

static int clampi(float v, int lo, int hi) {
    int q = (int)lrintf(v);
    return q < lo ? lo : q > hi ? hi : q;
}

static void enc_q8_0(const float *x, uint8_t *b) {
    float d;
    kern_quantize(x, QK, QK, (int8_t *)(b + 2), &d);
    put_f16(b, d);
}

/* Q4_K by each sub-block's range: scale (max - min) / 15 and offset -min
 * (min clipped to <= 0, as the format's offset is never positive), both
 * then quantized to 6 bits against the block's largest. */
static void enc_q4_k(const float *x, uint8_t *b) {
    float scale[8], mins[8], ms = 0.0f, mm = 0.0f, d, dmin;
    int sc[8], m[8];

    for (int j = 0; j < 8; j++) {
        float lo = 0.0f, hi = x[32 * j];
        for (int l = 0; l < 32; l++) {
            lo = fminf(lo, x[32 * j + l]);
            hi = fmaxf(hi, x[32 * j + l]);
        }
        scale[j] = (hi - lo) / 15.0f;
        mins[j] = -lo;
        ms = fmaxf(ms, scale[j]);
        mm = fmaxf(mm, mins[j]);
    }
    put_f16(b, ms / 63.0f);
    put_f16(b + 2, mm / 63.0f);
    d = f16(b);
    dmin = f16(b + 2);
    for (int j = 0; j < 8; j++) {
        sc[j] = d > 0.0f ? clampi(scale[j] / d, 0, 63) : 0;
        m[j] = dmin > 0.0f ? clampi(mins[j] / dmin, 0, 63) : 0;
    }
    for (int j = 0; j < 4; j++) {
        b[4 + j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        b[8 + j] = (uint8_t)(m[j] | ((m[j + 4] >> 4) << 6));
        b[12 + j] = (uint8_t)((sc[j + 4] & 0x0f) | ((m[j + 4] & 0x0f) << 4));
    }
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            int q[2];
            for (int h = 0; h < 2; h++) {
                int j = 2 * c + h;
                float ds = d * sc[j];
                q[h] = ds > 0.0f
                           ? clampi((x[32 * j + l] + dmin * m[j]) / ds, 0, 15)
                           : 0;
            }
            b[16 + 32 * c + l] = (uint8_t)(q[0] | (q[1] << 4));
        }
}

/* Q6_K: a scale per 16 values, quantized to int8 against the block's
 * largest. */
static void enc_q6_k(const float *x, uint8_t *b) {
    float scale[16], mx = 0.0f, d;
    int8_t *sc = (int8_t *)(b + 192);
    int q[256];

    for (int s = 0; s < 16; s++) {
        float v = 0.0f; /* the value of largest magnitude, signed */
        for (int l = 0; l < 16; l++)
            if (fabsf(x[16 * s + l]) > fabsf(v))
                v = x[16 * s + l];
        /* It maps to -32, the end of the range that has no +32. */
        scale[s] = -v / 32.0f;
        mx = fmaxf(mx, fabsf(scale[s]));
    }
    put_f16(b + 208, mx / 127.0f);
    d = f16(b + 208);
    for (int s = 0; s < 16; s++) {
        float ds;
        sc[s] = (int8_t)(d > 0.0f ? clampi(scale[s] / d, -127, 127) : 0);
        ds = d * sc[s];
        for (int l = 0; l < 16; l++)
            q[16 * s + l] = ds != 0.0f ? clampi(x[16 * s + l] / ds, -32, 31) + 32
                                       : 32;
    }
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const int *v = q + 128 * h + l;
            b[64 * h + l] = (uint8_t)((v[0] & 0x0f) | ((v[64] & 0x0f) << 4));
            b[64 * h + 32 + l] =
                (uint8_t)((v[32] & 0x0f) | ((v[96] & 0x0f) << 4));
            b[128 + 32 * h + l] = (uint8_t)((v[0] >> 4) | ((v[32] >> 4) << 2) |
                                            ((v[64] >> 4) << 4) |
                                            ((v[96] >> 4) << 6));
        }
}

int quant_encode(int type, const float *x, size_t n, uint8_t *out) {
    const quant_fmt *f = fmt_of(type);
    void (*enc)(const float *, uint8_t *) =
        type == KERN_Q8_0 ? enc_q8_0
        : type == KERN_Q4_K ? enc_q4_k
        : type == KERN_Q6_K ? enc_q6_k
                            : NULL;

    if (!enc || n % (size_t)f->elems)
        return AISLE_EINVAL;
    for (size_t i = 0; i < n; i += (size_t)f->elems, out += f->bytes)
        enc(x + i, out);
    return AISLE_OK;
}
