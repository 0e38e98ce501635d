/* speaker: the language model's side of Shop answers, for every call at
 * once.
 *
 * A call's prompt is its own (the request and its products), but the
 * instructions in front of it are the same for every call: with a chat
 * model they are the system turn, prefilled once at start, and each call's
 * session begins from a copy of that KV cache. Prompts are then read in
 * batches on the caller's thread. Decoding is where the weights are read
 * once per token: one scheduler thread steps every live answer together
 * (up to MODEL_BATCH per forward pass), so five sub-agents or five
 * concurrent calls cost about one sequence's weight traffic per step, and
 * no call waits behind another's whole answer. Decoded text goes back to
 * each caller's thread, which does the sending, so a slow client never
 * holds up the batch. */
#ifndef AISLE_SPEAKER_H
#define AISLE_SPEAKER_H

#include <stddef.h>

#include "model/gen.h"
#include "model/model.h"
#include "model/tok.h"
#include "model/tpool.h"

typedef struct speaker speaker;

/* A speaker for model m with tokenizer t on pool (all borrowed; they must
 * outlive it). instructions is the fixed part of every prompt (copied).
 * chat_template names a template (NULL: the file's own, if it is a chat
 * model; none for llama2.c files, whose prompts are plain text). Returns
 * AISLE_OK, or a code with err set (an unknown template names the
 * --chat-template flag). Free with speaker_free. */
int speaker_new(const model *m, const tok_tokenizer *t, tpool *pool, const char *instructions,
                const char *chat_template, speaker **out, char *err, size_t errlen);
void speaker_free(speaker *sp); /* NULL is a no-op; waits for nothing: call after the last say */

/* Whether prompts are rendered with a chat template (then request is the
 * user's turn), and its name. */
const char *speaker_template(const speaker *sp);

/* Writes one answer to request (the call's own prompt text) through piece,
 * on the calling thread, until p's budget, a stop token or string, p's
 * deadline or cancel flag, or piece returning non-zero. Blocks. Returns
 * AISLE_OK with st->reason set, or a code (no room for the prompt:
 * AISLE_EFULL; AISLE_ENOMEM). */
int speaker_say(speaker *sp, const char *request, const gen_params *p, gen_piece_fn piece,
                void *ud, gen_stats *st);

/* Decoding steps run so far and sequences they carried, for benches. */
void speaker_counts(speaker *sp, unsigned long *steps, unsigned long *seqs);

#endif
