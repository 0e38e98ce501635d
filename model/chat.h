/* chat.h — chat templates: turning a conversation into the prompt text a
 * chat model was trained on.
 *
 * GGUF files carry their template as Jinja text (tokenizer.chat_template).
 * The engine does not run Jinja: it recognises the common formats by their
 * marker tokens and renders them itself, or takes a format named by the
 * caller (a command-line flag). The rendered text holds the formats'
 * control tokens as text; encode it with TOK_SPECIAL. */
#ifndef AISLE_MODEL_CHAT_H
#define AISLE_MODEL_CHAT_H

#include <stddef.h>

#include "model/gguf.h"
#include "services/base/buf.h"

enum chat_format {
    CHAT_CHATML = 0, /* <|im_start|>role\n...<|im_end|> (Qwen, SmolLM) */
    CHAT_LLAMA3,     /* <|start_header_id|>role<|end_header_id|> */
    CHAT_ZEPHYR,     /* <|role|>\n...</s> (TinyLlama-Chat) */
    CHAT_MISTRAL,    /* [INST] ... [/INST] */
    CHAT_GEMMA,      /* <start_of_turn>user|model */
    CHAT_PHI3,       /* <|role|>\n...<|end|> */
    CHAT_N,
};

typedef struct chat_msg {
    const char *role; /* "system", "user" or "assistant" */
    const char *content;
} chat_msg;

/* "chatml", "llama3", "zephyr", "mistral", "gemma", "phi3". */
const char *chat_name(int fmt);

/* The format of template text; AISLE_ENOTFOUND when it is none of these. */
int chat_detect(const char *tmpl, size_t len, int *fmt);

/* The format to use: the one called name (flag is the option that named
 * it, for the message), else the one g's tokenizer.chat_template shows.
 * AISLE_EINVAL for an unknown name, AISLE_ENOTFOUND when the file has no
 * template or an unknown one; the message names the flag either way. */
int chat_select(const gguf_file *g, const char *name, const char *flag,
                int *fmt, char *err, size_t errlen);

/* Appends the conversation to out, then, with add_generation, the opening
 * of the assistant's turn. Returns buf_status(out). */
int chat_render(int fmt, const chat_msg *msgs, int n, int add_generation,
                buf *out);

#endif
