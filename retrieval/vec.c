/* vec: one inner-product body, compiled twice (AVX2+FMA and the baseline)
 * and picked per call from the CPU's features. */
#include "retrieval/vec.h"

#include <string.h>

/* Eight floats: GCC and clang lower it to one AVX register or two SSE ones. */
typedef float vec_v8 __attribute__((vector_size(32)));

/* Two accumulators hide the add latency; loads go through memcpy since rows
 * need not be 32-byte aligned. */
static inline __attribute__((always_inline)) float vec_dot_body(const float *a, const float *b,
                                                                int d) {
    vec_v8 s0 = {0}, s1 = {0}, x, y;
    float s = 0;
    int j = 0;
    for (; j + 16 <= d; j += 16) {
        memcpy(&x, a + j, sizeof(x));
        memcpy(&y, b + j, sizeof(y));
        s0 += x * y;
        memcpy(&x, a + j + 8, sizeof(x));
        memcpy(&y, b + j + 8, sizeof(y));
        s1 += x * y;
    }
    if (j + 8 <= d) {
        memcpy(&x, a + j, sizeof(x));
        memcpy(&y, b + j, sizeof(y));
        s0 += x * y;
        j += 8;
    }
    s0 += s1;
    for (int l = 0; l < 8; l++) s += s0[l];
    for (; j < d; j++) s += a[j] * b[j];
    return s;
}

__attribute__((target("avx2,fma"))) static void vec_dots_avx2(const float *q, const float *rows,
                                                               size_t n, int d, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = vec_dot_body(q, rows + i * (size_t)d, d);
}

static void vec_dots_base(const float *q, const float *rows, size_t n, int d, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = vec_dot_body(q, rows + i * (size_t)d, d);
}

void vec_dots(const float *q, const float *rows, size_t n, int d, float *out) {
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        vec_dots_avx2(q, rows, n, d, out);
    else
        vec_dots_base(q, rows, n, d, out);
}

float vec_dot(const float *a, const float *b, int d) {
    float s;
    vec_dots(a, b, 1, d, &s);
    return s;
}
