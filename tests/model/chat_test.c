/* chat_test.c — template recognition, the flag that overrides it, and
 * rendering: ChatML must give exactly the reference prompt.txt (the
 * conversation the llama.cpp references were made from). */
#include "tests/test.h"
#include "tests/model/util.h"

#include "model/chat.h"
#include "services/base/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_detect(void) {
    static const struct {
        const char *tmpl;
        int fmt;
    } cases[] = {
        {"{% for m in messages %}<|im_start|>{{ m['role'] }}", CHAT_CHATML},
        {"<|start_header_id|>' + message['role'] + '<|end_header_id|>",
         CHAT_LLAMA3},
        {"{{ '<|user|>\\n' + message['content'] + eos_token }}", CHAT_ZEPHYR},
        {"{{'<|user|>' + '\\n' + message['content'] + '<|end|>'}}", CHAT_PHI3},
        {"{{ '<start_of_turn>' + role + '\\n' }}", CHAT_GEMMA},
        {"{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}",
         CHAT_MISTRAL},
    };
    int fmt;
    char err[256];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TEST_CHECK(chat_detect(cases[i].tmpl, strlen(cases[i].tmpl), &fmt) ==
                   AISLE_OK);
        TEST_CHECK(fmt == cases[i].fmt);
    }
    TEST_CHECK(chat_detect("{{ messages }}", 14, &fmt) == AISLE_ENOTFOUND);
    TEST_CHECK(chat_select(NULL, "gemma", "--template", &fmt, err,
                           sizeof err) == AISLE_OK && fmt == CHAT_GEMMA);
    TEST_CHECK(chat_select(NULL, "jinja", "--template", &fmt, err,
                           sizeof err) == AISLE_EINVAL);
    TEST_CHECK(strstr(err, "--template") != NULL);
    TEST_CHECK(chat_select(NULL, NULL, "--template", &fmt, err, sizeof err) ==
               AISLE_ENOTFOUND);
    TEST_CHECK(strstr(err, "--template") != NULL);
}

static void test_render_formats(void) {
    chat_msg m[] = {{"system", "S"}, {"user", "U"}, {"assistant", "A"},
                    {"user", "V"}};
    static const char *const want[CHAT_N] = {
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
        "<|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\nV<|im_end|>\n"
        "<|im_start|>assistant\n",
        "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nV<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        "<|system|>\nS</s>\n<|user|>\nU</s>\n<|assistant|>\nA</s>\n"
        "<|user|>\nV</s>\n<|assistant|>\n",
        "[INST] S\n\nU [/INST]A</s>[INST] V [/INST]",
        "<start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\n"
        "A<end_of_turn>\n<start_of_turn>user\nV<end_of_turn>\n"
        "<start_of_turn>model\n",
        "<|system|>\nS<|end|>\n<|user|>\nU<|end|>\n<|assistant|>\nA<|end|>\n"
        "<|user|>\nV<|end|>\n<|assistant|>\n",
    };

    for (int f = 0; f < CHAT_N; f++) {
        buf b = {0};
        TEST_CHECK(chat_render(f, m, 4, 1, &b) == AISLE_OK);
        TEST_CHECK_STR(buf_str(&b), want[f]);
        buf_free(&b);
    }
}

static void test_chatml_is_the_reference_prompt(void) {
    const char *dir = tu_gguf_dir();
    char path[4096];
    unsigned char *prompt;
    size_t n;
    buf b = {0};
    char *sys, *user, *end;

    if (!dir)
        return;
    snprintf(path, sizeof path, "%s/prompt.txt", dir);
    TEST_REQUIRE((prompt = tu_read(path, &n)) != NULL);
    prompt[n] = '\0';
    /* The two messages, cut out of the rendered text itself. */
    sys = strstr((char *)prompt, "system\n");
    user = strstr((char *)prompt, "<|im_start|>user\n");
    TEST_REQUIRE(sys && user);
    {
        size_t sl = (size_t)(strstr(sys, "<|im_end|>") - sys) - 7;
        char *s = strndup(sys + 7, sl);
        char *u;
        user += strlen("<|im_start|>user\n");
        end = strstr(user, "<|im_end|>");
        u = strndup(user, (size_t)(end - user));
        chat_msg m[] = {{"system", s}, {"user", u}};
        TEST_CHECK(chat_render(CHAT_CHATML, m, 2, 1, &b) == AISLE_OK);
        TEST_CHECK_STR(buf_str(&b), (char *)prompt);
        free(s);
        free(u);
    }
    buf_free(&b);
    free(prompt);
}

int main(void) {
    TEST_RUN(test_detect);
    TEST_RUN(test_render_formats);
    TEST_RUN(test_chatml_is_the_reference_prompt);
    return test_summary();
}
