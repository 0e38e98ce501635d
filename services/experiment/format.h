/* format: experiment sets and assignments as human text and as JSON, for
 * `aisle exp` and for the Admin service's answers. */
#ifndef AISLE_EXP_FORMAT_H
#define AISLE_EXP_FORMAT_H

#include "services/base/buf.h"
#include "services/experiment/expset.h"

/* One experiment per paragraph: layer, buckets, salt, variants with their
 * weights and overrides, allowlist; then the holdout and the toggles. */
void exp_format_set_text(const exp_set *s, buf *out);
/* {"version":N,"experiments":[{"name":..,"layer":..,"salt":..,"share_pct":..,
 * "offset_pct":..,"variants":[{"name":..,"weight":..,"overrides":{..}}],
 * "allowlist":{"user":"variant"}}],"holdout":{..},"toggles":{..}} */
void exp_format_set_json(const exp_set *s, buf *out);
/* The user's variants (and whether forced or in the holdout) and the
 * effective value of every overridden parameter. */
void exp_format_assignment_text(const exp_assignment *a, const char *user, buf *out);
void exp_format_assignment_json(const exp_assignment *a, const char *user, buf *out);
/* s as a JSON string literal, quotes included. */
void exp_format_json_str(buf *out, const char *s);

#endif
