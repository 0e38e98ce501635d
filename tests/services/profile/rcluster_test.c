/* Tests for services/rcluster's slot computation: the CRC16 of Redis
 * Cluster and hash tags, on the vectors the Redis Cluster specification
 * gives. Routing against a real cluster is tests/integration/cluster_test. */
#include "services/profile/rcluster.h"

#include <string.h>

#include "tests/test.h"

static int slot(const char *key) { return rcluster_keyslot(key, strlen(key)); }

static void test_crc16_vector(void) {
    TEST_CHECK(rcluster_crc16("123456789", 9) == 0x31C3);
    TEST_CHECK(rcluster_crc16("", 0) == 0);
}

static void test_hash_tags(void) {
    TEST_CHECK(slot("{user1000}.following") == slot("{user1000}.followers"));
    TEST_CHECK(slot("{user1000}.following") == slot("user1000"));
    TEST_CHECK(slot("foo{}{bar}") == (rcluster_crc16("foo{}{bar}", 10) & 16383)); /* empty tag */
    TEST_CHECK(slot("foo{{bar}}zap") == slot("{bar")); /* tag is "{bar" */
    TEST_CHECK(slot("foo{bar}{zap}") == slot("bar"));  /* first tag only */
    TEST_CHECK(slot("no-close{tag") == (rcluster_crc16("no-close{tag", 12) & 16383));
    /* Slots of well-known keys, as CLUSTER KEYSLOT reports them. */
    TEST_CHECK(slot("foo") == 12182);
    TEST_CHECK(slot("bar") == 5061);
    TEST_CHECK(slot("aisle:u:{alice}:items") == slot("aisle:u:{alice}:meta"));
}

int main(void) {
    TEST_RUN(test_crc16_vector);
    TEST_RUN(test_hash_tags);
    return test_summary();
}
