/* grpcstatus: the one mapping from Aisle's status codes to gRPC's. */
#ifndef AISLE_GRPCSTATUS_H
#define AISLE_GRPCSTATUS_H

#include <grpc/status.h>

/* AISLE_OK → OK; bad input → INVALID_ARGUMENT; a store or server down →
 * UNAVAILABLE; missing → NOT_FOUND; memory or capacity → RESOURCE_EXHAUSTED;
 * cancelled → CANCELLED; no or unknown credentials → UNAUTHENTICATED; the
 * wrong role → PERMISSION_DENIED; deadline passed → DEADLINE_EXCEEDED;
 * anything else → INTERNAL. */
grpc_status_code grpcstatus_of(int code);

#endif
