/* snapview: embed_snapshot → catalog_snapshot, no copies. */
#include "services/serve/snapview.h"

#include <string.h>

#include "services/base/log.h"
#include "services/base/status.h"

int snapview_open_newest(const char *dir, snapview *sv, char *err, size_t errlen) {
    const embed_model *m = &sv->snap.model;
    int rc;
    memset(sv, 0, sizeof(*sv));
    if ((rc = embed_snapshot_load_newest(dir, &sv->snap, 0, err, errlen)) != AISLE_OK) return rc;
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

int snapview_apply_nprobe(const snapview *sv, catalog *c, int fixed) {
    int lists = catalog_ivf_lists(c), nprobe = fixed > 0 ? fixed : (int)sv->snap.serve_nprobe;
    catalog_set_nprobe(c, nprobe);
    if (fixed <= 0 && sv->snap.serve_lists && (uint32_t)lists != sv->snap.serve_lists)
        log_warn("serve", "snapshot %s chose nprobe %u on %u IVF lists, but this catalog built "
                 "%d lists; give --nprobe to choose the count here", sv->view.version,
                 sv->snap.serve_nprobe, sv->snap.serve_lists, lists);
    return nprobe;
}
