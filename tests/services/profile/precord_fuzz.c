/* Fuzz target: bytes read as a profile record (services/profile/precord.h),
 * as the module reads a stored value before editing it and the store does
 * on a read. What precord_check_bounds accepts must be safe to walk and
 * search; precord_check must refuse anything malformed, and whatever it
 * accepts must find every field at its own index, rebuild
 * into a record that checks, and take an insert that keeps it valid. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/profile/precord.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t n, at;
    precord_field *f;
    unsigned char *out;
    double meta[PRECORD_NMETA];
    if (precord_check_bounds(data, size) != 0) return 0;
    /* What passes the bounds alone is safe to walk and search, in any order. */
    for (size_t i = 0; i < precord_count(data); i++) {
        precord_field g;
        precord_field_at(data, i, &g);
        (void)precord_find(data, g.kind, g.name, g.len, &at);
    }
    if (precord_check(data, size) != 0) return 0;
    n = precord_count(data);
    if (!(f = calloc(n + 1, sizeof(*f)))) return 0;
    for (size_t i = 0; i < n; i++) {
        precord_field_at(data, i, &f[i]);
        /* abort, not assert: the check must hold in optimized builds too. */
        if (!precord_find(data, f[i].kind, f[i].name, f[i].len, &at) || at != i) abort();
    }
    for (int k = 0; k < PRECORD_NMETA; k++) meta[k] = precord_meta(data, k);
    out = malloc(precord_build_size(f, n) + PRECORD_ENTRY + 3);
    if (out) {
        precord_build(out, meta, f, n);
        if (precord_check(out, precord_size(out)) != 0 || precord_count(out) != n) abort();
        if (!precord_find(out, 'z', "zzz", 3, &at)) {
            precord_insert(out, at, 'z', "zzz", 3, 1.0);
            if (precord_check(out, precord_size(out)) != 0 || precord_count(out) != n + 1)
                abort();
        }
    }
    free(out);
    free(f);
    return 0;
}
