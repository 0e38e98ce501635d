/* cli.h — `aisle generate` and `aisle model convert`.
 *
 * Entry points for the aisle binary's subcommands. argv[0] is the
 * subcommand name and is skipped. Both return 0 on success, 2 for a usage
 * error (bad or missing flag, after a message on stderr) and 1 when the
 * work itself fails (message on stderr). */
#ifndef AISLE_MODEL_CLI_H
#define AISLE_MODEL_CLI_H

/* aisle generate --model PATH [--tokenizer PATH] --prompt TEXT --steps N
 *   [--temperature T --topp P --topk K --seed S --threads K]
 * Prints the prompt and its continuation to stdout as llama2.c's run does
 * (steps counts positions including the prompt) and speed to stderr. */
int model_cli_generate(int argc, char **argv);

/* aisle model convert --in CKPT --out FILE [--type f32|f16|q8_0|q4_k_m]
 *   [--format gguf|llama2c] [--tokenizer PATH] [--group-size N] */
int model_cli_convert(int argc, char **argv);

/* aisle model convert|tokenize|logits|info ...: argv[1] names the
 * command (see each one's --help). */
int model_cli_model(int argc, char **argv);

#endif
