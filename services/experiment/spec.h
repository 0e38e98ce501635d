/* spec: an experiment written as key=value words, for shells and tests.
 *
 *   name=mmr layer=rank share=50% salt=mmr-2 description=...
 *   variant=control variant=low rank.mmr_lambda=0.3 weight=2
 *   allow=u00007:low
 *
 * `variant=NAME` opens a variant; the words after it up to the next
 * `variant=` belong to it: `weight=N` and overrides (any key with a dot,
 * checked later against the registry). `share=` takes a percentage with up
 * to two decimals ("12.5%"; the % is optional). This is the text form
 * `aisle ctl exp set` takes; the Admin service takes the Experiment message
 * itself. */
#ifndef AISLE_EXP_SPEC_H
#define AISLE_EXP_SPEC_H

#include <stddef.h>

#include "aisle/v1/experiments.pb-c.h"

/* Parses the n words into a new Experiment (*out; free with
 * aisle__v1__experiment__free_unpacked(*out, NULL)). AISLE_EINVAL with err
 * naming the word that is wrong. */
int exp_spec_parse(const char *const *words, size_t n, Aisle__V1__Experiment **out, char *err,
                   size_t errlen);
/* The same for one string of words separated by blanks. */
int exp_spec_parse_line(const char *line, Aisle__V1__Experiment **out, char *err, size_t errlen);
/* A share "12.5%" in basis points (1250), or -1 when it is not a
 * percentage in (0, 100] with at most two decimals. */
long exp_spec_share(const char *s);

#endif
