/* chat.c — recognising and rendering the common chat templates (see
 * chat.h). Detection looks for each format's marker tokens in the Jinja
 * text, in an order that keeps formats sharing a marker apart (Phi-3 and
 * Zephyr both write <|user|>). */
#include "model/chat.h"

#include "services/base/status.h"

#include <string.h>

static const char *const names[CHAT_N] = {"chatml", "llama3", "zephyr",
                                          "mistral", "gemma", "phi3"};

const char *chat_name(int fmt) {
    return fmt >= 0 && fmt < CHAT_N ? names[fmt] : "?";
}

static int has(const char *t, size_t len, const char *marker) {
    return memmem(t, len, marker, strlen(marker)) != NULL;
}

int chat_detect(const char *t, size_t len, int *fmt) {
    if (has(t, len, "<|im_start|>"))
        *fmt = CHAT_CHATML;
    else if (has(t, len, "<|start_header_id|>"))
        *fmt = CHAT_LLAMA3;
    else if (has(t, len, "<|user|>") && has(t, len, "<|end|>"))
        *fmt = CHAT_PHI3;
    else if (has(t, len, "<|user|>"))
        *fmt = CHAT_ZEPHYR;
    else if (has(t, len, "<start_of_turn>"))
        *fmt = CHAT_GEMMA;
    else if (has(t, len, "[INST]"))
        *fmt = CHAT_MISTRAL;
    else
        return AISLE_ENOTFOUND;
    return AISLE_OK;
}

int chat_select(const gguf_file *g, const char *name, const char *flag,
                int *fmt, char *err, size_t errlen) {
    gguf_str t;

    if (name) {
        for (int i = 0; i < CHAT_N; i++)
            if (!strcmp(name, names[i])) {
                *fmt = i;
                return AISLE_OK;
            }
        return status_fail(AISLE_EINVAL, err, errlen,
                           "unknown chat template '%s' for %s (chatml, "
                           "llama3, zephyr, mistral, gemma, phi3)",
                           name, flag);
    }
    if (!g || gguf_get_str(g, "tokenizer.chat_template", &t))
        return status_fail(AISLE_ENOTFOUND, err, errlen,
                           "the model has no tokenizer.chat_template: "
                           "choose one with %s", flag);
    if (chat_detect(t.p, (size_t)t.len, fmt))
        return status_fail(AISLE_ENOTFOUND, err, errlen,
                           "the model's chat template is not one this "
                           "engine knows: choose one with %s (chatml, "
                           "llama3, zephyr, mistral, gemma, phi3)", flag);
    return AISLE_OK;
}

/* One turn in the formats that write "open role sep content close". */
static void turn(buf *o, const char *open, const char *role, const char *sep,
                 const char *content, const char *close) {
    buf_puts(o, open);
    buf_puts(o, role);
    buf_puts(o, sep);
    buf_puts(o, content);
    buf_puts(o, close);
}

/* Mistral and Gemma have no system turn: the system text opens the first
 * user turn. */
static void render_folded(int fmt, const chat_msg *m, int n, int gen, buf *o) {
    const char *sys = NULL;
    for (int i = 0; i < n; i++) {
        int user = strcmp(m[i].role, "assistant") != 0;
        if (!strcmp(m[i].role, "system")) {
            sys = m[i].content;
            continue;
        }
        if (fmt == CHAT_GEMMA)
            buf_puts(o, user ? "<start_of_turn>user\n"
                             : "<start_of_turn>model\n");
        else
            buf_puts(o, user ? "[INST] " : "");
        if (user && sys) {
            buf_puts(o, sys);
            buf_puts(o, "\n\n");
            sys = NULL;
        }
        buf_puts(o, m[i].content);
        if (fmt == CHAT_GEMMA)
            buf_puts(o, "<end_of_turn>\n");
        else
            buf_puts(o, user ? " [/INST]" : "</s>");
    }
    if (gen && fmt == CHAT_GEMMA)
        buf_puts(o, "<start_of_turn>model\n");
}

int chat_render(int fmt, const chat_msg *m, int n, int gen, buf *o) {
    for (int i = 0; fmt != CHAT_MISTRAL && fmt != CHAT_GEMMA && i < n; i++) {
        switch (fmt) {
        case CHAT_CHATML:
            turn(o, "<|im_start|>", m[i].role, "\n", m[i].content,
                 "<|im_end|>\n");
            break;
        case CHAT_LLAMA3:
            turn(o, "<|start_header_id|>", m[i].role, "<|end_header_id|>\n\n",
                 m[i].content, "<|eot_id|>");
            break;
        case CHAT_ZEPHYR:
            turn(o, "<|", m[i].role, "|>\n", m[i].content, "</s>\n");
            break;
        default: /* CHAT_PHI3 */
            turn(o, "<|", m[i].role, "|>\n", m[i].content, "<|end|>\n");
            break;
        }
    }
    if (fmt == CHAT_MISTRAL || fmt == CHAT_GEMMA)
        render_folded(fmt, m, n, gen, o);
    else if (gen)
        buf_puts(o, fmt == CHAT_CHATML   ? "<|im_start|>assistant\n"
                    : fmt == CHAT_LLAMA3 ? "<|start_header_id|>assistant"
                                           "<|end_header_id|>\n\n"
                                         : "<|assistant|>\n");
    return buf_status(o);
}
