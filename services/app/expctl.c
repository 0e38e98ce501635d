/* expctl: `aisle exp set|list|delete|toggle|holdout|assign|params` (see
 * expctl.h). Edits go through services/experiment/store.h, so they are
 * validated as a whole and refused with the reason, and replicas apply
 * them within a second. Output is for people, or JSON with --json. */
#include "services/app/expctl.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/app/cli.h"
#include "services/base/buf.h"
#include "services/base/status.h"
#include "services/experiment/format.h"
#include "services/experiment/spec.h"
#include "services/experiment/store.h"

static const char expctl_usage[] =
    "Usage: aisle exp COMMAND --redis HOST:PORT [--json] ARGS\n"
    "\n"
    "Experiment definitions and run-time toggles, stored in Redis; every serve replica\n"
    "applies a change within a second. An invalid change is refused with the reason and\n"
    "the running definitions stay.\n"
    "\n"
    "  set WORDS...          add or replace an experiment, e.g.\n"
    "                        set name=mmr layer=rank share=20% variant=control\n"
    "                            variant=low rank.mmr_lambda=0.3 allow=u00007:low\n"
    "  list                  the stored definitions\n"
    "  delete NAME           remove an experiment\n"
    "  toggle PARAM [VALUE]  set a parameter for everyone (no VALUE: clear it)\n"
    "  holdout SALT SHARE%   users who see no experiment (0% to end it)\n"
    "  assign USER           the user's variants and parameters\n"
    "  params                the parameters variants and toggles may set\n"
    "\n"
    "  --redis HOST:PORT     the store (a Redis server or cluster seed)\n"
    "  --json                print JSON\n";

static void expctl_print_params(void) {
    size_t n;
    const param_def *d = param_registry(&n);
    static const char *const types[] = {"float", "int", "enum", "path", "name"};
    for (size_t i = 0; i < n; i++) {
        char range[64] = "";
        if (d[i].type == PARAM_FLOAT || d[i].type == PARAM_INT)
            snprintf(range, sizeof(range), "%g..%g", d[i].min, d[i].max);
        else if (d[i].choices)
            snprintf(range, sizeof(range), "%s", d[i].choices);
        printf("%-22s %-5s %-19s %s\n", d[i].name, types[d[i].type], range, d[i].help);
    }
}

/* Runs one edit or read; s is the set to print on success. */
static int expctl_run(exp_store *st, const char *cmd, int argc, char **argv, exp_set **s,
                      char *err, size_t errlen) {
    if (strcmp(cmd, "set") == 0) {
        Aisle__V1__Experiment *e;
        int rc = exp_spec_parse((const char *const *)argv, (size_t)argc, &e, err, errlen);
        if (rc != AISLE_OK) return rc;
        rc = exp_store_put_experiment(st, e, s, err, errlen);
        aisle__v1__experiment__free_unpacked(e, NULL);
        return rc;
    }
    if (strcmp(cmd, "delete") == 0 && argc == 1)
        return exp_store_delete_experiment(st, argv[0], s, err, errlen);
    if (strcmp(cmd, "toggle") == 0 && (argc == 1 || argc == 2))
        return exp_store_put_toggle(st, argv[0], argc == 2 ? argv[1] : NULL, s, err, errlen);
    if (strcmp(cmd, "holdout") == 0 && argc == 2) {
        int zero = strcmp(argv[1], "0%") == 0 || strcmp(argv[1], "0") == 0;
        long bp = zero ? 0 : exp_spec_share(argv[1]);
        if (bp < 0)
            return status_fail(AISLE_EINVAL, err, errlen, "'%s' is not a share like 5%%", argv[1]);
        return exp_store_put_holdout(st, argv[0], (uint32_t)bp, s, err, errlen);
    }
    if ((strcmp(cmd, "list") == 0 && argc == 0) || (strcmp(cmd, "assign") == 0 && argc == 1))
        return exp_store_load(st, s, NULL, err, errlen);
    return status_fail(AISLE_EINVAL, err, errlen, "usage");
}

int expctl_main(int argc, char **argv) {
    static const struct option opts[] = {{"redis", required_argument, 0, 'r'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *redis = NULL;
    int json = 0, c;
    optind = 1;
    /* '+': stop at the command, so the words after it are not flags. */
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': redis = optarg; break;
        case 'j': json = 1; break;
        case 'h': fputs(expctl_usage, stdout); return 0;
        default: return cli_usage_error("exp", "unknown or incomplete flag");
        }
    }
    if (optind >= argc)
        return cli_usage_error("exp", "give a command: set, list, delete, toggle, holdout, "
                                      "assign, params");
    const char *cmd = argv[optind++];
    if (strcmp(cmd, "params") == 0) return expctl_print_params(), 0;
    if (!redis) return cli_usage_error("exp", "--redis is required");
    char err[512];
    exp_store *st;
    exp_set *s = NULL;
    if (exp_store_open(redis, &st, err, sizeof(err)) != AISLE_OK)
        return cli_usage_error("exp", "--redis: %s", err);
    int rc = expctl_run(st, cmd, argc - optind, argv + optind, &s, err, sizeof(err));
    exp_store_close(st);
    if (rc == AISLE_EINVAL && strcmp(err, "usage") == 0)
        return cli_usage_error("exp", "bad arguments for '%s'", cmd);
    if (rc != AISLE_OK) {
        if (json) {
            buf b = {0};
            buf_puts(&b, "{\"error\":");
            exp_format_json_str(&b, err);
            buf_printf(&b, ",\"code\":\"%s\"}\n", status_str(rc));
            fputs(buf_str(&b), stdout);
            buf_free(&b);
        }
        fprintf(stderr, "aisle exp %s: %s\n", cmd, err);
        return 1;
    }
    buf b = {0};
    if (strcmp(cmd, "assign") == 0) {
        exp_assignment a;
        exp_assign(s, argv[optind], &a);
        (json ? exp_format_assignment_json : exp_format_assignment_text)(&a, argv[optind], &b);
    } else {
        if (!json && strcmp(cmd, "list")) printf("stored: ");
        (json ? exp_format_set_json : exp_format_set_text)(s, &b);
    }
    fputs(buf_str(&b), stdout);
    buf_free(&b);
    exp_set_release(s);
    return 0;
}
