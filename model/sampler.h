/* sampler.h — picks the next token from logits.
 *
 * Temperature 0 is greedy (first maximum). Otherwise the logits are divided
 * by the temperature and softmaxed, optionally cut to the top-k tokens and
 * then to the smallest set whose probability exceeds top-p, and a token is
 * drawn with llama2.c's xorshift generator, so a seed reproduces llama2.c's
 * choices when top-k is off. A sampler is per sequence (not thread-safe). */
#ifndef AISLE_MODEL_SAMPLER_H
#define AISLE_MODEL_SAMPLER_H

#include <stdint.h>

typedef struct sampler_prob {
    float p;
    int id;
} sampler_prob;

typedef struct sampler {
    int vocab_size;
    float temperature; /* 0 = greedy */
    float topp;        /* nucleus sampling when 0 < topp < 1 */
    int topk;          /* keep the k most likely when 0 < topk < vocab */
    uint64_t rng;      /* xorshift state, never 0 */
    sampler_prob *cand; /* scratch, vocab_size entries */
} sampler;

/* Initializes s; seed 0 is replaced by a fixed non-zero constant because a
 * zero xorshift state never changes. Returns 0, AISLE_EINVAL for a bad vocab
 * size or negative temperature, or AISLE_ENOMEM. Free with sampler_free. */
int sampler_init(sampler *s, int vocab_size, float temperature, float topp,
                 int topk, uint64_t seed);
void sampler_free(sampler *s);

/* Returns the chosen token id. Overwrites logits with probabilities unless
 * sampling greedily. */
int sampler_sample(sampler *s, float *logits);

int sampler_argmax(const float *v, int n);

/* llama2.c's generator: xorshift64* upper bits, and a float in [0, 1). */
uint32_t sampler_rand_u32(uint64_t *state);
float sampler_rand_f32(uint64_t *state);

#endif
