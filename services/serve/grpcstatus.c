/* grpcstatus: AISLE_* → grpc_status_code. */
#include "services/serve/grpcstatus.h"

#include "services/base/status.h"

grpc_status_code grpcstatus_of(int code) {
    switch (code) {
    case AISLE_OK: return GRPC_STATUS_OK;
    case AISLE_EINVAL:
    case AISLE_EFORMAT: return GRPC_STATUS_INVALID_ARGUMENT;
    case AISLE_EIO:
    case AISLE_EUNAVAIL: return GRPC_STATUS_UNAVAILABLE;
    case AISLE_ENOTFOUND: return GRPC_STATUS_NOT_FOUND;
    case AISLE_ENOMEM:
    case AISLE_EFULL: return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case AISLE_ECANCELED: return GRPC_STATUS_CANCELLED;
    case AISLE_EUNAUTH: return GRPC_STATUS_UNAUTHENTICATED;
    case AISLE_EDENIED: return GRPC_STATUS_PERMISSION_DENIED;
    case AISLE_ETIMEDOUT: return GRPC_STATUS_DEADLINE_EXCEEDED;
    default: return GRPC_STATUS_INTERNAL;
    }
}
