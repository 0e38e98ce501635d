/* blend: the servable sum of two models' scores.
 *
 * Two filters of different normalisations make different errors, and a
 * weighted sum of their scores ranks better than either (an ensemble).
 * Because every model scores as u.Q + sum w.N, the sum of two is one
 * model too: P and Q side by side (P_b scaled by the weight) and the
 * neighbour lists merged item by item, so the server computes it with the
 * same formula. The merged lists keep the `keep` heaviest entries. */
#ifndef AISLE_EMBED_BLEND_H
#define AISLE_EMBED_BLEND_H

#include <stdint.h>

#include "embed/model.h"

/* *out (allocated here, owned by the caller) scores as a + wb * b over the
 * same item rows. AISLE_OK, AISLE_EINVAL (different item counts) or
 * AISLE_ENOMEM. */
int embed_model_blend(const embed_model *a, const embed_model *b, float wb, uint32_t keep,
                      embed_model *out);

#endif
