/* Tests for services/serve/grpcstatus: every Aisle code has its gRPC status,
 * and a Redis failure (AISLE_EIO) is UNAVAILABLE, never INTERNAL. */
#include "services/serve/grpcstatus.h"

#include "services/base/status.h"
#include "tests/test.h"

static void test_mapping(void) {
    TEST_CHECK(grpcstatus_of(AISLE_OK) == GRPC_STATUS_OK);
    TEST_CHECK(grpcstatus_of(AISLE_EINVAL) == GRPC_STATUS_INVALID_ARGUMENT);
    TEST_CHECK(grpcstatus_of(AISLE_EFORMAT) == GRPC_STATUS_INVALID_ARGUMENT);
    TEST_CHECK(grpcstatus_of(AISLE_EIO) == GRPC_STATUS_UNAVAILABLE);
    TEST_CHECK(grpcstatus_of(AISLE_EUNAVAIL) == GRPC_STATUS_UNAVAILABLE);
    TEST_CHECK(grpcstatus_of(AISLE_ENOTFOUND) == GRPC_STATUS_NOT_FOUND);
    TEST_CHECK(grpcstatus_of(AISLE_ENOMEM) == GRPC_STATUS_RESOURCE_EXHAUSTED);
    TEST_CHECK(grpcstatus_of(AISLE_EFULL) == GRPC_STATUS_RESOURCE_EXHAUSTED);
    TEST_CHECK(grpcstatus_of(AISLE_ECANCELED) == GRPC_STATUS_CANCELLED);
    TEST_CHECK(grpcstatus_of(AISLE_EINTERNAL) == GRPC_STATUS_INTERNAL);
    TEST_CHECK(grpcstatus_of(AISLE_EUNAUTH) == GRPC_STATUS_UNAUTHENTICATED);
    TEST_CHECK(grpcstatus_of(AISLE_EDENIED) == GRPC_STATUS_PERMISSION_DENIED);
    TEST_CHECK(grpcstatus_of(AISLE_ETIMEDOUT) == GRPC_STATUS_DEADLINE_EXCEEDED);
    TEST_CHECK(grpcstatus_of(-1000) == GRPC_STATUS_INTERNAL);
}

static void test_names(void) {
    TEST_CHECK_STR(status_str(AISLE_EIO), "input/output error");
    TEST_CHECK_STR(status_str(12345), "unknown status");
}

int main(void) {
    TEST_RUN(test_mapping);
    TEST_RUN(test_names);
    return test_summary();
}
