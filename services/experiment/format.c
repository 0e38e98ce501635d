/* format: text and JSON renderings of experiment sets and assignments (see
 * format.h). */
#include "services/experiment/format.h"

void exp_format_json_str(buf *out, const char *s) {
    buf_putc(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') buf_printf(out, "\\%c", *p);
        else if (*p < 0x20) buf_printf(out, "\\u%04x", *p);
        else buf_putc(out, (char)*p);
    }
    buf_putc(out, '"');
}

static void exp_format_overrides_json(buf *out, Aisle__V1__ParamOverride **o, size_t n) {
    buf_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) buf_putc(out, ',');
        exp_format_json_str(out, o[i]->param);
        buf_putc(out, ':');
        exp_format_json_str(out, o[i]->value);
    }
    buf_putc(out, '}');
}

static void exp_format_overrides_text(buf *out, Aisle__V1__ParamOverride **o, size_t n) {
    for (size_t i = 0; i < n; i++) buf_printf(out, " %s=%s", o[i]->param, o[i]->value);
}

void exp_format_set_text(const exp_set *s, buf *out) {
    const Aisle__V1__ExperimentSet *d = exp_set_def(s);
    buf_printf(out, "experiment set version %llu: %zu experiments\n",
               (unsigned long long)d->version, d->n_experiments);
    for (size_t i = 0; i < d->n_experiments; i++) {
        const Aisle__V1__Experiment *e = d->experiments[i];
        buf_printf(out, "\n%s  layer %s, %.2f %% of users (buckets %u..%u), salt %s\n", e->name,
                   e->layer[0] ? e->layer : "default", e->share_bp / 100.0, e->offset_bp,
                   e->offset_bp + e->share_bp - 1, e->salt);
        if (e->description[0]) buf_printf(out, "  %s\n", e->description);
        for (size_t v = 0; v < e->n_variants; v++) {
            buf_printf(out, "  variant %s weight %u", e->variants[v]->name,
                       e->variants[v]->weight ? e->variants[v]->weight : 1);
            exp_format_overrides_text(out, e->variants[v]->overrides, e->variants[v]->n_overrides);
            buf_putc(out, '\n');
        }
        for (size_t a = 0; a < e->n_allowlist; a++)
            buf_printf(out, "  allow %s -> %s\n", e->allowlist[a]->user_id,
                       e->allowlist[a]->variant);
    }
    if (d->holdout && d->holdout->share_bp)
        buf_printf(out, "\nholdout %.2f %% (salt %s)\n", d->holdout->share_bp / 100.0,
                   d->holdout->salt);
    if (d->n_toggles) {
        buf_puts(out, "\ntoggles:");
        exp_format_overrides_text(out, d->toggles, d->n_toggles);
        buf_putc(out, '\n');
    }
}

void exp_format_set_json(const exp_set *s, buf *out) {
    const Aisle__V1__ExperimentSet *d = exp_set_def(s);
    buf_printf(out, "{\"version\":%llu,\"experiments\":[", (unsigned long long)d->version);
    for (size_t i = 0; i < d->n_experiments; i++) {
        const Aisle__V1__Experiment *e = d->experiments[i];
        buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
        exp_format_json_str(out, e->name);
        buf_puts(out, ",\"layer\":");
        exp_format_json_str(out, e->layer[0] ? e->layer : "default");
        buf_puts(out, ",\"salt\":");
        exp_format_json_str(out, e->salt);
        buf_puts(out, ",\"description\":");
        exp_format_json_str(out, e->description);
        buf_printf(out, ",\"share_pct\":%.2f,\"offset_pct\":%.2f,\"variants\":[",
                   e->share_bp / 100.0, e->offset_bp / 100.0);
        for (size_t v = 0; v < e->n_variants; v++) {
            buf_puts(out, v ? ",{\"name\":" : "{\"name\":");
            exp_format_json_str(out, e->variants[v]->name);
            buf_printf(out, ",\"weight\":%u,\"overrides\":",
                       e->variants[v]->weight ? e->variants[v]->weight : 1);
            exp_format_overrides_json(out, e->variants[v]->overrides, e->variants[v]->n_overrides);
            buf_putc(out, '}');
        }
        buf_puts(out, "],\"allowlist\":{");
        for (size_t a = 0; a < e->n_allowlist; a++) {
            if (a) buf_putc(out, ',');
            exp_format_json_str(out, e->allowlist[a]->user_id);
            buf_putc(out, ':');
            exp_format_json_str(out, e->allowlist[a]->variant);
        }
        buf_puts(out, "}}");
    }
    buf_puts(out, "],\"holdout\":{\"salt\":");
    exp_format_json_str(out, d->holdout ? d->holdout->salt : "");
    buf_printf(out, ",\"share_pct\":%.2f},\"toggles\":",
               d->holdout ? d->holdout->share_bp / 100.0 : 0.0);
    exp_format_overrides_json(out, d->toggles, d->n_toggles);
    buf_puts(out, "}\n");
}

static void exp_format_params(const exp_assignment *a, buf *out, int json) {
    const param_value *v[256];
    size_t n = exp_assignment_params(a, v, 256);
    for (size_t i = 0; i < n && i < 256; i++) {
        if (!json) {
            buf_printf(out, "  %s = %s\n", v[i]->name, v[i]->text);
            continue;
        }
        if (i) buf_putc(out, ',');
        exp_format_json_str(out, v[i]->name);
        buf_putc(out, ':');
        exp_format_json_str(out, v[i]->text);
    }
}

void exp_format_assignment_text(const exp_assignment *a, const char *user, buf *out) {
    buf_printf(out, "%s (experiment set version %llu)%s\n", user,
               (unsigned long long)exp_set_version(a->set), a->holdout ? ": in the holdout" : "");
    for (size_t i = 0; i < a->n; i++)
        buf_printf(out, "  layer %s: %s = %s%s\n", a->picks[i].layer, a->picks[i].experiment,
                   a->picks[i].variant, a->picks[i].forced ? " (allowlist)" : "");
    if (a->n == 0) buf_puts(out, "  no experiment\n");
    exp_format_params(a, out, 0);
}

void exp_format_assignment_json(const exp_assignment *a, const char *user, buf *out) {
    buf_puts(out, "{\"user_id\":");
    exp_format_json_str(out, user);
    buf_printf(out, ",\"version\":%llu,\"holdout\":%s,\"variants\":[",
               (unsigned long long)exp_set_version(a->set), a->holdout ? "true" : "false");
    for (size_t i = 0; i < a->n; i++) {
        buf_puts(out, i ? ",{\"layer\":" : "{\"layer\":");
        exp_format_json_str(out, a->picks[i].layer);
        buf_puts(out, ",\"experiment\":");
        exp_format_json_str(out, a->picks[i].experiment);
        buf_puts(out, ",\"variant\":");
        exp_format_json_str(out, a->picks[i].variant);
        buf_printf(out, ",\"forced\":%s}", a->picks[i].forced ? "true" : "false");
    }
    buf_puts(out, "],\"params\":{");
    exp_format_params(a, out, 1);
    buf_puts(out, "}}\n");
}
