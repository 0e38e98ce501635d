/* tok.h — the tokenizers of llama-family models, as llama.cpp runs them.
 *
 * Vocabularies come from llama2.c tokenizer.bin files or from the
 * tokenizer.ggml.* metadata of a GGUF file (a model, or a vocab-only file).
 * Two kinds:
 *  - SentencePiece (tokenizer.ggml.model "llama", and every llama2.c
 *    file): a dummy-prefix space, one symbol per UTF-8 character, then
 *    repeated merging of the adjacent pair whose merged piece has the best
 *    score (leftmost on ties); characters left outside the vocabulary
 *    become byte tokens <0xXX>.
 *  - Byte-level BPE ("gpt2"): the text is split by the pre-tokenizer that
 *    tokenizer.ggml.pre names (llama.cpp's regular expressions), each
 *    piece's bytes are spelled as GPT-2's printable characters and merged
 *    by the ranks of tokenizer.ggml.merges.
 * Before either, control, user-defined and unknown tokens are split out of
 * the text: user-defined ones always, the others when special parsing is
 * asked for. A loaded tokenizer is read-only: any number of threads may
 * encode and decode with it at once. */
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

enum tok_kind { TOK_SPM = 0, TOK_BPE = 1 };

/* Flags of tok_encode_ex. */
#define TOK_ADD_BOS 1  /* BOS first, if the vocabulary adds one */
#define TOK_ADD_EOS 2  /* EOS last, if the vocabulary adds one */
#define TOK_SPECIAL 4  /* control tokens written in the text are parsed */

typedef struct tok_tokenizer tok_tokenizer;

/* Loads a llama2.c tokenizer.bin: int max_token_length, then per token a
 * float score, an int length and the bytes. vocab_size entries are read
 * (the model's vocabulary size, as llama2.c does); vocab_size <= 0 reads
 * every entry in the file. On success the caller owns *out (tok_free). On
 * failure returns a negative code and writes a message into err. */
int tok_load_file(const char *path, int vocab_size, tok_tokenizer **out,
                  char *err, size_t errlen);

/* Builds a tokenizer from GGUF metadata (tokenizer.ggml.model "llama" or
 * "gpt2"; another model or an unknown tokenizer.ggml.pre is refused with a
 * message naming it). Pieces are copied: the result does not refer to g
 * afterwards. */
int tok_load_gguf(const gguf_file *g, tok_tokenizer **out, char *err,
                  size_t errlen);

/* The vocabulary of the GGUF file at path (a model or vocab-only). */
int tok_load_path(const char *path, tok_tokenizer **out, char *err,
                  size_t errlen);

void tok_free(tok_tokenizer *t); /* NULL is a no-op */

int tok_vocab_size(const tok_tokenizer *t);
int tok_kind(const tok_tokenizer *t);       /* enum tok_kind */
const char *tok_pre(const tok_tokenizer *t); /* BPE pre-tokenizer name */
int tok_bos(const tok_tokenizer *t);
int tok_eos(const tok_tokenizer *t);
/* Whether encoding with TOK_ADD_BOS adds BOS (the file's add_bos_token). */
int tok_adds_bos(const tok_tokenizer *t);
/* End of generation: EOS, the end-of-turn token, and control tokens that
 * end a turn in the common chat formats (<|im_end|>, <|eot_id|>, ...). */
int tok_is_eog(const tok_tokenizer *t, int id);
/* The id whose piece is exactly text[0..len), or -1. */
int tok_lookup(const tok_tokenizer *t, const char *text, size_t len);

/* Raw vocabulary entry (pointer valid while t lives); id must be in range. */
const char *tok_piece(const tok_tokenizer *t, int id, size_t *len);
float tok_score(const tok_tokenizer *t, int id);
int tok_type(const tok_tokenizer *t, int id);

/* Room tok_encode may need for text: 2 * strlen(text) + 3 tokens. */
size_t tok_max_tokens(const char *text);

/* Encodes text[0..len) into tokens[0..*n_tokens) with TOK_* flags.
 * Returns 0, AISLE_EFULL when cap is too small (see tok_max_tokens), or
 * AISLE_ENOMEM. */
int tok_encode_ex(const tok_tokenizer *t, const char *text, size_t len,
                  int flags, int *tokens, size_t cap, size_t *n_tokens);

/* tok_encode_ex of NUL-terminated text; bos and eos as the flags, control
 * tokens in the text parsed as text. */
int tok_encode(const tok_tokenizer *t, const char *text, int bos, int eos,
               int *tokens, size_t cap, size_t *n_tokens);

/* Text of `token` following `prev`, as llama2.c's decode(): the leading
 * space is dropped right after BOS (SentencePiece), byte tokens yield their
 * raw byte, BPE pieces their bytes, and control tokens nothing. The result points into t (not NUL-terminated
 * in general; *len bytes). Out-of-range ids decode to nothing. */
const char *tok_decode(const tok_tokenizer *t, int prev, int token,
                       size_t *len);

#endif
