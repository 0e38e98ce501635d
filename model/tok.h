/* tok.h — SentencePiece-style BPE tokenizer with llama2.c semantics.
 *
 * Vocabularies come from llama2.c tokenizer.bin files or from the
 * tokenizer.ggml.* metadata of a GGUF file. Encoding follows llama2.c's
 * encode(): optional BOS, a dummy-prefix space, one token per UTF-8
 * character (byte tokens <0xXX> when the character is not in the
 * vocabulary), then repeated merging of the adjacent pair whose merged
 * piece has the best score. A loaded tokenizer is read-only: any number of
 * threads may encode and decode with it at once. */
#ifndef AISLE_MODEL_TOK_H
#define AISLE_MODEL_TOK_H

#include <stddef.h>

#include "model/gguf.h"
#include "services/base/status.h"

/* Token kinds; the values are GGUF's tokenizer.ggml.token_type codes. */
enum tok_type {
    TOK_NORMAL = 1,
    TOK_UNKNOWN = 2,
    TOK_CONTROL = 3, /* BOS, EOS: decode to nothing */
    TOK_USER = 4,
    TOK_UNUSED = 5,
    TOK_BYTE = 6,    /* <0xXX>: decodes to the raw byte */
};

typedef struct tok_tokenizer tok_tokenizer;

/* Loads a llama2.c tokenizer.bin: int max_token_length, then per token a
 * float score, an int length and the bytes. vocab_size entries are read
 * (the model's vocabulary size, as llama2.c does); vocab_size <= 0 reads
 * every entry in the file. On success the caller owns *out (tok_free). On
 * failure returns a negative code and writes a message into err. */
int tok_load_file(const char *path, int vocab_size, tok_tokenizer **out,
                  char *err, size_t errlen);

/* Builds a tokenizer from GGUF metadata (tokenizer.ggml.model "llama").
 * Pieces are copied: the result does not refer to g afterwards. */
int tok_load_gguf(const gguf_file *g, tok_tokenizer **out, char *err,
                  size_t errlen);

void tok_free(tok_tokenizer *t); /* NULL is a no-op */

int tok_vocab_size(const tok_tokenizer *t);
int tok_bos(const tok_tokenizer *t);
int tok_eos(const tok_tokenizer *t);

/* Raw vocabulary entry (pointer valid while t lives); id must be in range. */
const char *tok_piece(const tok_tokenizer *t, int id, size_t *len);
float tok_score(const tok_tokenizer *t, int id);
int tok_type(const tok_tokenizer *t, int id);

/* Room tok_encode may need for text: strlen(text) + 3 tokens. */
size_t tok_max_tokens(const char *text);

/* Encodes NUL-terminated text into tokens[0..*n_tokens). Returns 0,
 * AISLE_EFULL when cap is too small (see tok_max_tokens), or AISLE_ENOMEM. */
int tok_encode(const tok_tokenizer *t, const char *text, int bos, int eos,
               int *tokens, size_t cap, size_t *n_tokens);

/* Text of `token` following `prev`, as llama2.c's decode(): the leading
 * space is dropped right after BOS, byte tokens yield their raw byte and
 * control tokens nothing. The result points into t (not NUL-terminated
 * in general; *len bytes). Out-of-range ids decode to nothing. */
const char *tok_decode(const tok_tokenizer *t, int prev, int token,
                       size_t *len);

#endif
