/* param: the registry of pipeline parameters an experiment variant or a
 * run-time toggle may override, with their types and ranges.
 *
 * A variant names parameters as text ("rank.mmr_lambda" = "0.3"), so a typo
 * or an out-of-range value must be caught when the definition is stored,
 * not when a request reads it: every override is parsed here, once, into a
 * typed value. The registry is one table in param.c; a new parameter is one
 * line there. A name may hold one '*' segment ("sources.*.budget"), which
 * matches one lower-case identifier ([a-z0-9_]+). */
#ifndef AISLE_EXP_PARAM_H
#define AISLE_EXP_PARAM_H

#include <stddef.h>

typedef enum {
    PARAM_FLOAT, /* a finite number in [min, max] */
    PARAM_INT,   /* an integer in [min, max] */
    PARAM_ENUM,  /* one of the '|'-separated choices */
    PARAM_PATH,  /* a file path: non-empty, no control bytes, at most 1024 bytes */
} param_type;

typedef struct param_def {
    const char *name;    /* "rank.mmr_lambda", "sources.*.budget" */
    param_type type;
    double min, max;     /* FLOAT and INT */
    const char *choices; /* ENUM: "fast|contemplating" */
    const char *help;
} param_def;

/* A parsed value: the parameter's name as given ("sources.similar.budget"),
 * the registry entry it matched, the number (FLOAT and INT; for ENUM the
 * index of the choice) and the text as given. */
typedef struct param_value {
    char *name; /* owned */
    const param_def *def;
    double num;
    char *text; /* owned */
} param_value;

/* The registry: n entries, static. */
const param_def *param_registry(size_t *n);
/* The entry name matches, or NULL. */
const param_def *param_find(const char *name);
/* Parses value for the parameter name into *out (out's strings owned by
 * the caller: param_value_free). AISLE_EINVAL with err naming the parameter and
 * the accepted values, for an unknown name or a bad value. */
int param_parse(const char *name, const char *value, param_value *out, char *err,
                size_t errlen);
void param_value_free(param_value *v);

#endif
