/* tool.c — `aisle-model COMMAND ...`: the model commands as a program of
 * their own (see model_cli_model). */
#include "model/cli.h"

int main(int argc, char **argv) { return model_cli_model(argc, argv); }
