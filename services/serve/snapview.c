/* snapview: embed_snapshot → catalog_snapshot, no copies. */
#include "services/serve/snapview.h"

#include <string.h>

#include "embed/err.h"
#include "services/base/status.h"

int snapview_open_newest(const char *dir, snapview *sv, char *err, size_t errlen) {
    char why[EMBED_ERR_LEN];
    const embed_model *m = &sv->snap.model;
    memset(sv, 0, sizeof(*sv));
    if (embed_snapshot_load_newest(dir, &sv->snap, 0, why) != 0)
        return status_fail(AISLE_ENOTFOUND, err, errlen, "%s", why);
    sv->view = (catalog_snapshot){
        .version = sv->snap.version,
        .n_items = m->n_items,
        .dim = m->dim,
        .item_ids = (const char *const *)sv->snap.items.names,
        .P = m->P,
        .Q = m->Q,
        .nb_off = m->nb_off,
        .nb_item = m->nb_item,
        .nb_weight = m->nb_weight,
        .bias = m->bias,
    };
    return AISLE_OK;
}

void snapview_close(snapview *sv) {
    embed_snapshot_free(&sv->snap);
    memset(sv, 0, sizeof(*sv));
}
