/* cli.c — command-line front ends for generation and conversion.
 *
 * Flags are --name VALUE or --name=VALUE. Numbers are parsed strictly (the
 * whole argument, in range) so a typo is a usage error rather than a
 * silently different run. */
#include "model/cli.h"

#include "model/chat.h"
#include "model/export.h"
#include "model/gen.h"
#include "model/model.h"
#include "model/tok.h"
#include "model/tpool.h"
#include "services/base/buf.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CLI_USAGE 2
#define CLI_FAIL 1

static const char generate_usage[] =
    "usage: aisle generate --model PATH [--tokenizer PATH] --prompt TEXT\n"
    "                      [--steps N] [--temperature T] [--topp P]\n"
    "                      [--topk K] [--seed S] [--threads K]\n"
    "\n"
    "Continues TEXT with a llama-architecture model and prints the prompt\n"
    "and the continuation to stdout, as llama2.c's run does.\n"
    "\n"
    "  --model PATH        llama2.c checkpoint (.bin), llama2.c int8 export,\n"
    "                      or GGUF file (llama architecture)\n"
    "  --tokenizer PATH    llama2.c tokenizer.bin; optional for a GGUF model\n"
    "                      that carries its vocabulary\n"
    "  --prompt TEXT       text to continue (default: empty)\n"
    "  --steps N           positions to run, prompt tokens included; 0 or\n"
    "                      more than the context length means the context\n"
    "                      length (default 256)\n"
    "  --temperature T     0 is greedy decoding; higher is more random\n"
    "                      (default 1.0)\n"
    "  --topp P            nucleus sampling: sample from the smallest set of\n"
    "                      tokens whose probability exceeds P; 0 or 1 turns\n"
    "                      it off (default 0.9)\n"
    "  --topk K            sample only among the K most likely tokens;\n"
    "                      0 turns it off (default 0)\n"
    "  --seed S            random seed; the same seed gives the same text\n"
    "                      (default: the current time)\n"
    "  --threads K         worker threads for the matrix products\n"
    "                      (default: the number of CPUs, at most 8)\n"
    "\n"
    "Generation stops at the step limit or when the model ends the text.\n"
    "Speed is reported on stderr.\n";

static const char convert_usage[] =
    "usage: aisle model convert --in CKPT --out FILE\n"
    "                           [--type f32|f16|q8_0|q4_k_m]\n"
    "                           [--format gguf|llama2c] [--tokenizer PATH]\n"
    "                           [--group-size N]\n"
    "\n"
    "Rewrites a model in another format.\n"
    "\n"
    "  --in CKPT           input: llama2.c checkpoint or export, or GGUF\n"
    "  --out FILE          output file (replaced if it exists)\n"
    "  --type T            weight type: f32 (default), f16 (GGUF only),\n"
    "                      q8_0 (int8 groups; GGUF Q8_0 or llama2.c v2) or\n"
    "                      q4_k_m (GGUF only: Q4_K matrices, Q6_K embedding\n"
    "                      and classifier)\n"
    "  --format F          gguf (default) or llama2c (the ak42 export:\n"
    "                      version 1 for f32, version 2 for q8_0)\n"
    "  --tokenizer PATH    llama2.c tokenizer.bin to embed in a GGUF file\n"
    "                      (a GGUF input's own vocabulary is kept anyway)\n"
    "  --group-size N      llama2c q8_0 values per scale (default: the\n"
    "                      largest of 64 or less dividing the model)\n";

typedef struct cli_flag {
    const char *name;
    const char *val;
} cli_flag;

/* The initial value of a switch (a flag without a value): after parsing,
 * a switch given on the command line holds "1", one left out cli_off. */
static const char cli_off[] = "";

/* Fills flags[].val from argv; returns 0, CLI_USAGE, or -1 for --help. */
static int cli_parse(const char *cmd, int argc, char **argv, cli_flag *flags,
                     int n) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *eq, *val;
        size_t len;
        int f;

        if (!strcmp(arg, "--help") || !strcmp(arg, "-h"))
            return -1;
        if (strncmp(arg, "--", 2)) {
            fprintf(stderr, "aisle %s: unexpected argument '%s' (see --help)\n",
                    cmd, arg);
            return CLI_USAGE;
        }
        arg += 2;
        eq = strchr(arg, '=');
        len = eq ? (size_t)(eq - arg) : strlen(arg);
        for (f = 0; f < n; f++)
            if (strlen(flags[f].name) == len && !strncmp(flags[f].name, arg, len))
                break;
        if (f == n) {
            fprintf(stderr, "aisle %s: unknown flag '--%.*s' (see --help)\n",
                    cmd, (int)len, arg);
            return CLI_USAGE;
        }
        if (flags[f].val == cli_off && !eq) {
            val = "1";
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "aisle %s: --%s needs a value\n", cmd,
                    flags[f].name);
            return CLI_USAGE;
        }
        flags[f].val = val;
    }
    return 0;
}

static int cli_long(const char *cmd, const char *flag, const char *s,
                    long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    if (!*s || *end || errno || *out < lo || *out > hi) {
        fprintf(stderr, "aisle %s: --%s wants an integer in [%lld, %lld], "
                "got '%s'\n", cmd, flag, lo, hi, s);
        return CLI_USAGE;
    }
    return 0;
}

static int cli_float(const char *cmd, const char *flag, const char *s,
                     float lo, float hi, float *out) {
    char *end;
    errno = 0;
    *out = strtof(s, &end);
    if (!*s || *end || errno || !(*out >= lo && *out <= hi)) {
        fprintf(stderr, "aisle %s: --%s wants a number in [%g, %g], got '%s'\n",
                cmd, flag, lo, hi, s);
        return CLI_USAGE;
    }
    return 0;
}

static int cli_stdout(void *ud, const char *text, size_t len) {
    (void)ud;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static int default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

enum { G_MODEL, G_TOK, G_PROMPT, G_STEPS, G_TEMP, G_TOPP, G_TOPK, G_SEED,
       G_THREADS, G_N };

typedef struct gen_opts {
    const char *model, *tok, *prompt;
    long long steps, topk, seed, threads;
    float temp, topp;
} gen_opts;

/* Fills o from argv; 0, CLI_USAGE, or -1 after printing --help. */
static int gen_parse(int argc, char **argv, gen_opts *o) {
    cli_flag fl[G_N] = {{"model", NULL},  {"tokenizer", NULL},
                        {"prompt", NULL}, {"steps", NULL},
                        {"temperature", NULL}, {"topp", NULL},
                        {"topk", NULL},   {"seed", NULL},
                        {"threads", NULL}};
    const char *cmd = "generate";
    int rc = cli_parse(cmd, argc, argv, fl, G_N);

    *o = (gen_opts){NULL, NULL, NULL, 256, 0, 0, default_threads(), 1.0f,
                    0.9f};
    if (rc < 0)
        fputs(generate_usage, stdout);
    if (rc)
        return rc;
    if (!fl[G_MODEL].val) {
        fprintf(stderr, "aisle generate: --model is required (see --help)\n");
        return CLI_USAGE;
    }
    if ((fl[G_STEPS].val &&
         cli_long(cmd, "steps", fl[G_STEPS].val, 0, INT_MAX, &o->steps)) ||
        (fl[G_TEMP].val &&
         cli_float(cmd, "temperature", fl[G_TEMP].val, 0.0f, 1e6f, &o->temp)) ||
        (fl[G_TOPP].val &&
         cli_float(cmd, "topp", fl[G_TOPP].val, 0.0f, 1.0f, &o->topp)) ||
        (fl[G_TOPK].val &&
         cli_long(cmd, "topk", fl[G_TOPK].val, 0, INT_MAX, &o->topk)) ||
        (fl[G_SEED].val &&
         cli_long(cmd, "seed", fl[G_SEED].val, 0, LLONG_MAX, &o->seed)) ||
        (fl[G_THREADS].val &&
         cli_long(cmd, "threads", fl[G_THREADS].val, 1, 256, &o->threads)))
        return CLI_USAGE;
    o->model = fl[G_MODEL].val;
    o->tok = fl[G_TOK].val;
    o->prompt = fl[G_PROMPT].val ? fl[G_PROMPT].val : "";
    if (!fl[G_SEED].val || o->seed == 0)
        o->seed = (long long)time(NULL);
    return 0;
}

/* Loads the model and its tokenizer (tok_path, or the GGUF's own
 * vocabulary). 0, CLI_USAGE or CLI_FAIL after a message; the caller frees
 * *m and *t either way. */
static int cli_load(const char *cmd, const char *model_path,
                    const char *tok_path, model **m, tok_tokenizer **t) {
    char err[512] = "";

    if (model_load(model_path, m, err, sizeof err)) {
        fprintf(stderr, "aisle %s: %s\n", cmd, err);
        return CLI_FAIL;
    }
    if (tok_path) {
        if (tok_load_file(tok_path, model_get_config(*m)->vocab_size, t, err,
                          sizeof err)) {
            fprintf(stderr, "aisle %s: %s\n", cmd, err);
            return CLI_FAIL;
        }
    } else if (!model_gguf(*m)) {
        fprintf(stderr, "aisle %s: --tokenizer is required for a llama2.c "
                "model (see --help)\n", cmd);
        return CLI_USAGE;
    } else if (tok_load_gguf(model_gguf(*m), t, err, sizeof err)) {
        fprintf(stderr, "aisle %s: %s (pass --tokenizer)\n", cmd, err);
        return CLI_FAIL;
    }
    if (tok_vocab_size(*t) != model_get_config(*m)->vocab_size) {
        fprintf(stderr, "aisle %s: tokenizer has %d tokens, model %d\n", cmd,
                tok_vocab_size(*t), model_get_config(*m)->vocab_size);
        return CLI_FAIL;
    }
    return 0;
}

/* Echoes the prompt's pieces for the positions it runs, as run.c does,
 * then samples up to the step limit. */
static int gen_stream(const gen_opts *o, const tok_tokenizer *t,
                      model_session *s, const int *tokens, size_t n,
                      gen_stats *st) {
    gen_params p;

    for (size_t i = 1; i < n && i <= (size_t)o->steps; i++) {
        size_t len;
        const char *piece = tok_decode(t, tokens[i - 1], tokens[i], &len);
        fwrite(piece, 1, len, stdout);
    }
    fflush(stdout);
    if ((size_t)o->steps < n)
        return 0;
    gen_params_init(&p);
    p.temperature = o->temp;
    p.topp = o->topp;
    p.topk = (int)o->topk;
    p.seed = (uint64_t)o->seed;
    p.max_tokens = (int)(o->steps - (long long)n + 1);
    if (gen_feed_tokens(s, tokens, (int)n, NULL, NULL) ||
        gen_run(s, t, &p, cli_stdout, NULL, st)) {
        fprintf(stderr, "\naisle generate: generation failed\n");
        return CLI_FAIL;
    }
    return 0;
}

int model_cli_generate(int argc, char **argv) {
    gen_opts o;
    model *m = NULL;
    tok_tokenizer *t = NULL;
    tpool *pool = NULL;
    model_session *s = NULL;
    int *tokens = NULL; /* the prompt's ids, owned here */
    size_t n = 0, cap;
    gen_stats st = {0};
    int rc = gen_parse(argc, argv, &o);

    if (rc)
        return rc < 0 ? 0 : rc;
    if ((rc = cli_load("generate", o.model, o.tok, &m, &t)))
        goto fail;
    rc = CLI_FAIL;
    if (o.steps == 0 || o.steps > model_get_config(m)->seq_len)
        o.steps = model_get_config(m)->seq_len;
    if (o.threads > 1 && tpool_new((int)o.threads, &pool)) {
        fprintf(stderr, "aisle generate: cannot start %lld threads\n",
                o.threads);
        goto fail;
    }
    cap = tok_max_tokens(o.prompt);
    tokens = malloc(cap * sizeof *tokens);
    if (!tokens || model_session_new(m, pool, (int)o.steps, &s) ||
        tok_encode(t, o.prompt, 1, 0, tokens, cap, &n)) {
        fprintf(stderr, "aisle generate: out of memory\n");
        goto fail;
    }
    if ((rc = gen_stream(&o, t, s, tokens, n, &st)))
        goto fail;
    printf("\n");
    if (st.n_tokens > 0 && st.elapsed_ns > 0)
        fprintf(stderr, "generate: %d tokens in %.3f s, %.2f tok/s "
                "(%lld thread%s, stop: %s)\n", st.n_tokens,
                st.elapsed_ns / 1e9, st.n_tokens / (st.elapsed_ns / 1e9),
                o.threads, o.threads == 1 ? "" : "s", gen_stop_name(st.reason));

fail:
    free(tokens);
    model_session_free(s);
    tpool_free(pool);
    tok_free(t);
    model_free(m);
    return rc;
}

enum { C_IN, C_OUT, C_TYPE, C_FORMAT, C_TOK, C_GS, C_N };

int model_cli_convert(int argc, char **argv) {
    cli_flag fl[C_N] = {{"in", NULL},     {"out", NULL},
                        {"type", NULL},   {"format", NULL},
                        {"tokenizer", NULL}, {"group-size", NULL}};
    const char *cmd = "model convert", *type = "f32", *format = "gguf";
    char err[512] = "";
    long long gs = 0;
    model *m = NULL;
    tok_tokenizer *t = NULL;
    uint32_t gtype = GGUF_T_F32;
    struct stat sb;
    int rc = cli_parse(cmd, argc, argv, fl, C_N);

    if (rc < 0) {
        fputs(convert_usage, stdout);
        return 0;
    }
    if (rc)
        return rc;
    if (!fl[C_IN].val || !fl[C_OUT].val) {
        fprintf(stderr, "aisle model convert: --in and --out are required "
                "(see --help)\n");
        return CLI_USAGE;
    }
    if (fl[C_TYPE].val)
        type = fl[C_TYPE].val;
    if (fl[C_FORMAT].val)
        format = fl[C_FORMAT].val;
    if (!strcmp(type, "f16"))
        gtype = GGUF_T_F16;
    else if (!strcmp(type, "q8_0"))
        gtype = GGUF_T_Q8_0;
    else if (!strcmp(type, "q4_k_m"))
        gtype = GGUF_T_Q4_K;
    else if (strcmp(type, "f32")) {
        fprintf(stderr, "aisle model convert: --type must be f32, f16, "
                "q8_0 or q4_k_m, got '%s'\n", type);
        return CLI_USAGE;
    }
    if (strcmp(format, "gguf") && strcmp(format, "llama2c")) {
        fprintf(stderr, "aisle model convert: --format must be gguf or "
                "llama2c, got '%s'\n", format);
        return CLI_USAGE;
    }
    if (!strcmp(format, "llama2c") &&
        (gtype == GGUF_T_F16 || gtype == GGUF_T_Q4_K || fl[C_TOK].val)) {
        fprintf(stderr, "aisle model convert: --format llama2c takes --type "
                "f32 or q8_0 and no --tokenizer\n");
        return CLI_USAGE;
    }
    if (fl[C_GS].val &&
        cli_long(cmd, "group-size", fl[C_GS].val, 1, 4096, &gs))
        return CLI_USAGE;

    rc = CLI_FAIL;
    if (model_load(fl[C_IN].val, &m, err, sizeof err)) {
        fprintf(stderr, "aisle model convert: %s\n", err);
        goto done;
    }
    if (fl[C_TOK].val &&
        tok_load_file(fl[C_TOK].val, model_get_config(m)->vocab_size, &t, err,
                      sizeof err)) {
        fprintf(stderr, "aisle model convert: %s\n", err);
        goto done;
    }
    if (!t && model_gguf(m))
        tok_load_gguf(model_gguf(m), &t, NULL, 0); /* no vocabulary is fine */
    if (!strcmp(format, "gguf"))
        rc = export_gguf(m, t, fl[C_OUT].val, gtype, err, sizeof err);
    else
        rc = export_llama2c(m, fl[C_OUT].val, gtype == GGUF_T_F32 ? 1 : 2,
                            (int)gs, err, sizeof err);
    if (rc) {
        fprintf(stderr, "aisle model convert: %s\n", err);
        rc = CLI_FAIL;
        goto done;
    }
    if (!stat(fl[C_OUT].val, &sb))
        fprintf(stderr, "wrote %s (%lld bytes)\n", fl[C_OUT].val,
                (long long)sb.st_size);
    rc = 0;

done:
    tok_free(t);
    model_free(m);
    return rc;
}

/* ------------------------------------------- tokenize, logits and info */

static const char tokenize_usage[] =
    "usage: aisle model tokenize --model FILE (--text TEXT | --text-file F)\n"
    "                            [--no-bos] [--special]\n"
    "\n"
    "Prints the token ids of the text on one line, space-separated.\n"
    "\n"
    "  --model FILE        GGUF model or vocab-only GGUF file\n"
    "  --text TEXT         the text\n"
    "  --text-file F       the text is the whole of file F\n"
    "  --no-bos            no BOS even where the vocabulary adds one\n"
    "  --special           parse control tokens written in the text\n"
    "                      (<|im_start|>, <s>, ...) as those tokens\n";

static const char logits_usage[] =
    "usage: aisle model logits --model FILE --tokens-file FILE [--top K]\n"
    "                          [--threads N]\n"
    "\n"
    "Feeds the ids of the tokens file one at a time from position 0 and\n"
    "prints one JSON line per position: {\"pos\": i, \"top\": [[id, logit],\n"
    "...]} with the K highest logits, highest first.\n"
    "\n"
    "  --model FILE        model (GGUF or llama2.c)\n"
    "  --tokens-file FILE  whitespace-separated token ids\n"
    "  --top K             logits per line (default 40)\n"
    "  --threads N         worker threads (default 1)\n";

static const char info_usage[] =
    "usage: aisle model info --model FILE\n"
    "\n"
    "Prints the architecture, shapes, tensor types, tokenizer, chat\n"
    "template and the weight bytes read per decoded token.\n";

/* The whole file at path as a NUL-terminated string (caller frees). */
static char *cli_slurp(const char *cmd, const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    buf b = {0};
    char chunk[65536];
    size_t n;

    if (!f) {
        fprintf(stderr, "aisle %s: %s: %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_put(&b, chunk, n);
    if (ferror(f))
        fprintf(stderr, "aisle %s: %s: read error\n", cmd, path);
    *len = b.len;
    if (ferror(f) || buf_status(&b)) {
        fclose(f);
        buf_free(&b);
        return NULL;
    }
    fclose(f);
    if (!b.data)
        return strdup(""); /* an empty file is empty text */
    return buf_take(&b);
}

enum { T_MODEL, T_TEXT, T_FILE, T_NOBOS, T_SPECIAL, T_N };

static int cli_tokenize(int argc, char **argv) {
    cli_flag fl[T_N] = {{"model", NULL}, {"text", NULL}, {"text-file", NULL},
                        {"no-bos", cli_off}, {"special", cli_off}};
    const char *cmd = "model tokenize";
    char err[512] = "", *text = NULL;
    tok_tokenizer *t = NULL;
    int *ids = NULL, rc = cli_parse(cmd, argc, argv, fl, T_N), flags;
    size_t len = 0, n = 0;

    if (rc < 0)
        fputs(tokenize_usage, stdout);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!fl[T_MODEL].val || !fl[T_TEXT].val == !fl[T_FILE].val) {
        fprintf(stderr, "aisle %s: --model and one of --text or --text-file "
                "are required (see --help)\n", cmd);
        return CLI_USAGE;
    }
    rc = CLI_FAIL;
    if (fl[T_TEXT].val) {
        len = strlen(fl[T_TEXT].val);
        text = strdup(fl[T_TEXT].val);
    } else {
        text = cli_slurp(cmd, fl[T_FILE].val, &len);
    }
    if (!text)
        goto fail;
    if (tok_load_path(fl[T_MODEL].val, &t, err, sizeof err)) {
        fprintf(stderr, "aisle %s: %s\n", cmd, err);
        goto fail;
    }
    flags = (fl[T_NOBOS].val == cli_off ? TOK_ADD_BOS : 0) |
            (fl[T_SPECIAL].val == cli_off ? 0 : TOK_SPECIAL);
    if (!(ids = malloc((2 * len + 3) * sizeof *ids)) ||
        tok_encode_ex(t, text, len, flags, ids, 2 * len + 3, &n)) {
        fprintf(stderr, "aisle %s: out of memory\n", cmd);
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    rc = 0;

fail:
    free(ids);
    free(text);
    tok_free(t);
    return rc;
}

/* Parses whitespace-separated ids below vocab into *ids (caller frees). */
static int cli_ids(const char *cmd, const char *text, int vocab, int **ids,
                   int *n) {
    int cap = 0;
    const char *p = text;
    char *end;

    *ids = NULL;
    *n = 0;
    for (;; p = end) {
        long v;
        errno = 0;
        v = strtol(p, &end, 10);
        if (end == p)
            break;
        if (errno || v < 0 || v >= vocab) {
            fprintf(stderr, "aisle %s: token id %.20s is outside the "
                    "vocabulary (%d tokens)\n", cmd, p, vocab);
            return CLI_FAIL;
        }
        if (*n == cap) {
            int *g = realloc(*ids, (size_t)(cap = cap ? 2 * cap : 256) *
                                       sizeof *g);
            if (!g)
                return CLI_FAIL;
            *ids = g;
        }
        (*ids)[(*n)++] = (int)v;
    }
    while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
        p++;
    if (*p) {
        fprintf(stderr, "aisle %s: tokens file has '%.20s' where an id "
                "belongs\n", cmd, p);
        return CLI_FAIL;
    }
    return 0;
}

/* Prints the k highest of n logits as a JSON line for position pos; top
 * has room for k ids. */
static void print_top(int pos, const float *lg, int n, int k, int *top) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        int j = m < k ? m++ : k;
        if (j == k && lg[i] <= lg[top[k - 1]])
            continue;
        if (j == k)
            j = k - 1;
        /* Insertion keeps top sorted, highest first (ties: lower id). */
        while (j > 0 && lg[top[j - 1]] < lg[i]) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = i;
    }
    printf("{\"pos\": %d, \"top\": [", pos);
    for (int i = 0; i < m; i++)
        printf("%s[%d, %.5f]", i ? ", " : "", top[i], lg[top[i]]);
    printf("]}\n");
}

enum { L_MODEL, L_TOKENS, L_TOP, L_THREADS, L_N };

static int cli_logits(int argc, char **argv) {
    cli_flag fl[L_N] = {{"model", NULL}, {"tokens-file", NULL},
                        {"top", NULL}, {"threads", NULL}};
    const char *cmd = "model logits";
    char err[512] = "", *text = NULL;
    long long k = 40, threads = 1;
    model *m = NULL;
    model_session *s = NULL;
    tpool *pool = NULL;
    int *ids = NULL, *top = NULL, n = 0, vocab;
    size_t len;
    int rc = cli_parse(cmd, argc, argv, fl, L_N);

    if (rc < 0)
        fputs(logits_usage, stdout);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!fl[L_MODEL].val || !fl[L_TOKENS].val) {
        fprintf(stderr, "aisle %s: --model and --tokens-file are required "
                "(see --help)\n", cmd);
        return CLI_USAGE;
    }
    if ((fl[L_TOP].val &&
         cli_long(cmd, "top", fl[L_TOP].val, 1, 1 << 22, &k)) ||
        (fl[L_THREADS].val &&
         cli_long(cmd, "threads", fl[L_THREADS].val, 1, 256, &threads)))
        return CLI_USAGE;
    rc = CLI_FAIL;
    if (model_load(fl[L_MODEL].val, &m, err, sizeof err)) {
        fprintf(stderr, "aisle %s: %s\n", cmd, err);
        goto fail;
    }
    vocab = model_get_config(m)->vocab_size;
    if (!(text = cli_slurp(cmd, fl[L_TOKENS].val, &len)) ||
        cli_ids(cmd, text, vocab, &ids, &n))
        goto fail;
    if (n > model_get_config(m)->seq_len) {
        fprintf(stderr, "aisle %s: %d tokens exceed the context of %d\n", cmd,
                n, model_get_config(m)->seq_len);
        goto fail;
    }
    if (k > vocab)
        k = vocab;
    if ((threads > 1 && tpool_new((int)threads, &pool)) ||
        model_session_new(m, pool, n, &s) ||
        !(top = malloc((size_t)k * sizeof *top))) {
        fprintf(stderr, "aisle %s: out of memory\n", cmd);
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        const float *lg;
        if (model_session_push(s, ids[i]) || !(lg = model_session_logits(s)))
            goto fail;
        print_top(i, lg, vocab, (int)k, top);
    }
    rc = 0;

fail:
    free(top);
    free(ids);
    free(text);
    model_session_free(s);
    tpool_free(pool);
    model_free(m);
    return rc;
}

/* "F32 x2, Q8_0 x7" for the matrices of m. */
static void print_types(const model *m) {
    const model_config *c = model_get_config(m);
    int count[KERN_Q6_K + 1] = {0}, first = 1;

    count[model_weight(m, MODEL_W_EMBED, 0)->type]++;
    if (!c->shared_classifier)
        count[model_weight(m, MODEL_W_CLS, 0)->type]++;
    for (int l = 0; l < c->n_layers; l++)
        for (int k = MODEL_W_Q; k <= MODEL_W_UP; k++)
            count[model_weight(m, k, l)->type]++;
    printf("matrix types:");
    for (int t = 0; t <= KERN_Q6_K; t++)
        if (count[t]) {
            printf("%s %s x%d", first ? "" : ",", kern_type_name(t), count[t]);
            first = 0;
        }
    printf(" (norms and biases F32)\n");
}

static void print_tokenizer(const tok_tokenizer *t) {
    if (!t) {
        printf("tokenizer: none in the file\n");
        return;
    }
    if (tok_kind(t) == TOK_BPE)
        printf("tokenizer: byte-level BPE (gpt2), pre-tokenizer %s",
               tok_pre(t));
    else
        printf("tokenizer: SentencePiece (llama)");
    printf(", %d tokens, BOS %d%s, EOS %d\n", tok_vocab_size(t), tok_bos(t),
           tok_adds_bos(t) ? " (added)" : " (not added)", tok_eos(t));
}

static void print_template(const model *m) {
    int fmt;
    if (chat_select(model_gguf(m), NULL, "--template", &fmt, NULL, 0))
        printf("chat template: none recognised\n");
    else
        printf("chat template: %s\n", chat_name(fmt));
}

static int cli_info(int argc, char **argv) {
    cli_flag fl[1] = {{"model", NULL}};
    const char *cmd = "model info";
    char err[512] = "";
    model *m = NULL;
    tok_tokenizer *t = NULL;
    int rc = cli_parse(cmd, argc, argv, fl, 1);
    const model_config *c;

    if (rc < 0)
        fputs(info_usage, stdout);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!fl[0].val) {
        fprintf(stderr, "aisle %s: --model is required (see --help)\n", cmd);
        return CLI_USAGE;
    }
    if (model_load(fl[0].val, &m, err, sizeof err)) {
        fprintf(stderr, "aisle %s: %s\n", cmd, err);
        return CLI_FAIL;
    }
    c = model_get_config(m);
    if (model_gguf(m))
        tok_load_gguf(model_gguf(m), &t, NULL, 0); /* none is fine here */
    printf("architecture: %s\n", model_arch_name(c->arch));
    printf("shape: dim %d, ffn %d, layers %d, heads %d, kv heads %d, head "
           "size %d, vocab %d, context %d\n", c->dim, c->hidden_dim,
           c->n_layers, c->n_heads, c->n_kv_heads, c->head_size,
           c->vocab_size, c->seq_len);
    printf("rope: theta %g, %s pairs; rms norm eps %g; output %s\n",
           c->rope_theta, c->rope_neox ? "neox (i, i+d/2)" : "adjacent",
           c->norm_eps, c->shared_classifier ? "tied to the embedding"
                                              : "separate");
    print_types(m);
    print_tokenizer(t);
    print_template(m);
    printf("bytes per token: %zu\n", model_bytes_per_token(m));
    tok_free(t);
    model_free(m);
    return 0;
}

int model_cli_model(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"convert", model_cli_convert}, {"tokenize", cli_tokenize},
                {"logits", cli_logits},         {"info", cli_info}};

    for (size_t i = 0; argc >= 2 && i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "aisle model: unknown command '%s' (convert, tokenize, "
            "logits, info)\n", argc >= 2 ? argv[1] : "");
    return CLI_USAGE;
}
