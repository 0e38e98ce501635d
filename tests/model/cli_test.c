/* cli_test.c — `aisle generate` and `aisle model convert` through their
 * entry points, with stdout captured in a file. */
#include "tests/test.h"
#include "tests/model/util.h"

#include "model/cli.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char captured[16384];

/* Runs fn(argv) with stdout (and stderr, kept quiet) sent to files;
 * stdout's text lands in `captured`. */
static int run(int (*fn)(int, char **), char **argv) {
    const char *out = tu_tmp("stdout.txt"), *errp = tu_tmp("stderr.txt");
    int argc = 0, rc, saved_out, saved_err, fo, fe;
    size_t n = 0;
    unsigned char *text;

    while (argv[argc])
        argc++;
    fflush(stdout);
    fflush(stderr);
    saved_out = dup(1);
    saved_err = dup(2);
    fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fo, 1);
    dup2(fe, 2);
    rc = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(fo);
    close(fe);
    close(saved_out);
    close(saved_err);
    captured[0] = '\0';
    text = tu_read(out, &n);
    if (text) {
        if (n >= sizeof captured)
            n = sizeof captured - 1;
        memcpy(captured, text, n);
        captured[n] = '\0';
        free(text);
    }
    return rc;
}

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})

static const char expected_start[] =
    "Once upon a time, there was a little girl named Lily. She loved to play "
    "outside in the park. One day, she saw a big, red ball.";

static void test_generate_usage_errors(void) {
    TEST_CHECK(run(model_cli_generate, ARGV("generate", "--help")) == 0);
    TEST_CHECK(strstr(captured, "--temperature") && strstr(captured, "--topp") &&
               strstr(captured, "--threads"));
    TEST_CHECK(run(model_cli_generate, ARGV("generate", "--bogus", "1")) == 2);
    TEST_CHECK(run(model_cli_generate, ARGV("generate", "--prompt", "x")) == 2);
    TEST_CHECK(run(model_cli_generate,
                   ARGV("generate", "--model", "m", "--steps", "ten")) == 2);
    TEST_CHECK(run(model_cli_generate,
                   ARGV("generate", "--model", "m", "--temperature", "-1")) == 2);
    TEST_CHECK(run(model_cli_generate,
                   ARGV("generate", "--model", "m", "--topp", "1.5")) == 2);
    TEST_CHECK(run(model_cli_generate, ARGV("generate", "--model")) == 2);
    TEST_CHECK(run(model_cli_generate,
                   ARGV("generate", "--model", "m", "stray")) == 2);
    TEST_CHECK(run(model_cli_generate,
                   ARGV("generate", "--model", (char *)tu_tmp("missing.bin"))) ==
               1);
    TEST_CHECK(run(model_cli_convert, ARGV("convert", "--help")) == 0);
    TEST_CHECK(strstr(captured, "--type") != NULL);
    TEST_CHECK(run(model_cli_convert, ARGV("convert", "--in", "x")) == 2);
    TEST_CHECK(run(model_cli_convert,
                   ARGV("convert", "--in", "x", "--out", "y", "--type", "q4")) ==
               2);
}

static void test_generate_and_convert(void) {
    char model[4096], tok[4096];
    char *gguf = strdup(tu_tmp("cli.gguf")), *q8 = strdup(tu_tmp("cli_q8.bin"));

    if (!tu_stories_dir())
        goto done;
    snprintf(model, sizeof model, "%s", tu_stories("stories260K.bin"));
    snprintf(tok, sizeof tok, "%s", tu_stories("tok512.bin"));
    TEST_CHECK(run(model_cli_generate,
                   ARGV("generate", "--model", model, "--tokenizer", tok,
                        "--prompt", "Once upon a time", "--steps", "200",
                        "--temperature", "0", "--threads", "2")) == 0);
    TEST_CHECK(!strncmp(captured, expected_start, strlen(expected_start)));
    TEST_CHECK(captured[strlen(captured) - 1] == '\n');
    /* A llama2.c model needs its tokenizer. */
    TEST_CHECK(run(model_cli_generate, ARGV("generate", "--model", model)) == 2);
    /* Sampling with a seed repeats itself. */
    {
        char first[16384];
        TEST_CHECK(run(model_cli_generate,
                       ARGV("generate", "--model", model, "--tokenizer", tok,
                            "--prompt", "Lily", "--steps", "60", "--seed",
                            "7", "--topk", "20")) == 0);
        snprintf(first, sizeof first, "%s", captured);
        TEST_CHECK(run(model_cli_generate,
                       ARGV("generate", "--model", model, "--tokenizer", tok,
                            "--prompt", "Lily", "--steps", "60", "--seed",
                            "7", "--topk", "20")) == 0);
        TEST_CHECK_STR(first, captured);
        TEST_CHECK(!strncmp(captured, "Lily", 4));
    }

    /* GGUF with the vocabulary inside: no --tokenizer needed. */
    TEST_CHECK(run(model_cli_convert,
                   ARGV("convert", "--in", model, "--out", gguf, "--tokenizer",
                        tok)) == 0);
    TEST_CHECK(run(model_cli_generate,
                   ARGV("generate", "--model", gguf, "--prompt",
                        "Once upon a time", "--steps", "200", "--temperature",
                        "0")) == 0);
    TEST_CHECK(!strncmp(captured, expected_start, strlen(expected_start)));
    TEST_CHECK(run(model_cli_convert,
                   ARGV("convert", "--in", model, "--out", q8, "--format",
                        "llama2c", "--type", "q8_0")) == 0);
    TEST_CHECK(run(model_cli_generate,
                   ARGV("generate", "--model", q8, "--tokenizer", tok,
                        "--prompt", "Once upon a time", "--steps", "20",
                        "--temperature", "0")) == 0);
    TEST_CHECK(!strncmp(captured, "Once upon a time, there was", 27));
done:
    free(gguf);
    free(q8);
}

/* Path of a file in shared/models/gguf; static storage rotated among 4. */
static char *gguf(const char *name) {
    static char slots[4][4096];
    static int next;
    char *p = slots[next++ % 4];
    snprintf(p, 4096, "%s/%s", tu_gguf_dir(), name);
    return p;
}

static void test_model_commands(void) {
    char tokens[4096]; /* tu_tmp's slots are reused by run() */

    snprintf(tokens, sizeof tokens, "%s", tu_tmp("ids.txt"));
    if (!tu_gguf_dir())
        return;
    /* "Hello world" in Llama 2's vocabulary; --special parses <s>. */
    TEST_CHECK(run(model_cli_model,
                   ARGV("model", "tokenize", "--model",
                        gguf("vocab/ggml-vocab-llama-spm.gguf"), "--text",
                        "Hello world<s>", "--special")) == 0);
    TEST_CHECK_STR(captured, "1 15043 3186 1\n");
    TEST_CHECK(run(model_cli_model,
                   ARGV("model", "tokenize", "--model",
                        gguf("vocab/ggml-vocab-llama-spm.gguf"), "--text",
                        "Hello world", "--no-bos")) == 0);
    TEST_CHECK_STR(captured, "15043 3186\n");
    TEST_CHECK(run(model_cli_model,
                   ARGV("model", "tokenize", "--model",
                        gguf("vocab/ggml-vocab-llama-spm.gguf"))) == 2);

    TEST_REQUIRE(tu_write(tokens, "27 91\n", 6) == 0);
    TEST_CHECK(run(model_cli_model,
                   ARGV("model", "logits", "--model", gguf("qwen2-F16.gguf"),
                        "--tokens-file", tokens, "--top", "2")) == 0);
    TEST_CHECK(strstr(captured, "{\"pos\": 0, \"top\": [[1887, 18.98") ==
               captured);
    TEST_CHECK(strstr(captured, "\n{\"pos\": 1, \"top\": [[") != NULL);
    TEST_REQUIRE(tu_write(tokens, "27 99999999\n", 12) == 0);
    TEST_CHECK(run(model_cli_model,
                   ARGV("model", "logits", "--model", gguf("qwen2-F16.gguf"),
                        "--tokens-file", tokens)) == 1);

    TEST_CHECK(run(model_cli_model,
                   ARGV("model", "info", "--model",
                        gguf("qwen2-Q4_K_M.gguf"))) == 0);
    TEST_CHECK(strstr(captured, "architecture: qwen2\n") != NULL);
    TEST_CHECK(strstr(captured, "Q4_K x") != NULL);
    TEST_CHECK(strstr(captured, "pre-tokenizer qwen2") != NULL);
    TEST_CHECK(strstr(captured, "chat template: chatml") != NULL);
    TEST_CHECK(run(model_cli_model, ARGV("model", "nope")) == 2);
}

int main(void) {
    TEST_RUN(test_generate_usage_errors);
    TEST_RUN(test_generate_and_convert);
    TEST_RUN(test_model_commands);
    return test_summary();
}
