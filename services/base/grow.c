/* grow: doubling a caller's array by one shared rule (grow.h). */
#include "services/base/grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"

int grow_room(void *p, size_t *cap, size_t n, size_t size, size_t first) {
    void *old, *grown;
    size_t next = *cap ? *cap * 2 : first;
    if (n < *cap) return AISLE_OK;
    if (next < *cap || next > SIZE_MAX / size) return AISLE_ENOMEM;
    /* p holds some T*: its bytes are copied rather than read through a
     * void ** lvalue, which would alias the caller's pointer type. */
    memcpy(&old, p, sizeof(old));
    if (!(grown = realloc(old, next * size))) return AISLE_ENOMEM;
    memcpy(p, &grown, sizeof(grown));
    *cap = next;
    return AISLE_OK;
}
