/* config: one YAML file (libyaml) for the settings of serve, ingest, ctl,
 * synth and demo; command-line flags override it; secrets come from the
 * environment.
 *
 * Every key of the file names one flag of one or more commands (the table
 * in config.c), so the file is read by turning it into flags: `aisle serve
 * --config FILE --threads 8` runs serve's own flag parser over
 * "--kafka-brokers=... --threads=2 ... --threads 8", file first, so a flag
 * on the command line wins. The checks are the flag parser's own; an error
 * in a value from the file is reported with the file, line and key (see
 * cli_set_origins). The file itself is checked here: YAML syntax, unknown
 * keys, a mapping or a list where a value belongs, and secrets, which the
 * file must never hold.
 *
 * Secrets: AISLE_KAFKA_SASL_USERNAME and AISLE_KAFKA_SASL_PASSWORD become
 * librdkafka settings of ingest's consumer (with sasl.mechanism and
 * security.protocol set in the file's ingest.kafka_options); they never
 * appear in the effective configuration printed, nor in the log. */
#ifndef AISLE_CONFIG_H
#define AISLE_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#define CONFIG_ENV_SASL_USERNAME "AISLE_KAFKA_SASL_USERNAME"
#define CONFIG_ENV_SASL_PASSWORD "AISLE_KAFKA_SASL_PASSWORD"

typedef struct config config;

/* Reads and checks path. Returns AISLE_OK, or AISLE_EIO (unreadable),
 * AISLE_EFORMAT (not YAML) or AISLE_EINVAL (a bad key or value) with err
 * set to "FILE:LINE: reason". */
int config_load(const char *path, config **out, char *err, size_t errlen);
void config_free(config *c);

/* For command cmd ("serve", "ingest", "ctl", "synth", "demo"): when argv holds --config FILE
 * (or --config=FILE), loads FILE and replaces *argc and *argv with argv[0], the
 * file's flags for cmd, then the rest of argv without --config, and tells
 * cli_set_origins where each came from. The new argv lives until the
 * process exits. Returns 0, or the exit status after printing the error. */
int config_apply(const char *cmd, int *argc, char ***argv);

/* The flags c gives cmd and their origins (for cli_set_origins), as
 * config_apply would put them, for checking without running. They live as
 * long as c. Returns AISLE_OK or AISLE_ENOMEM. */
int config_argv(const config *c, const char *cmd, int *argc, char ***argv,
                const char ***origins);

/* Prints a file with every key: its default, or commented out when it has
 * none, each with a comment saying what it does. */
void config_print_example(FILE *out);
/* Prints the effective configuration: each key's value and whether it came
 * from the file (with its line) or is the default. Secrets are named, not shown. */
void config_print_effective(const config *c, FILE *out);

#endif
