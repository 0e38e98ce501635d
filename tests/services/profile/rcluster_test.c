/* Tests for services/rcluster's slot computation (the CRC16 of Redis
 * Cluster and hash tags, on the vectors the Redis Cluster specification
 * gives) and its decoders of CLUSTER SLOTS and MOVED / ASK replies, fed
 * through hiredis's reader as a node would send them. Routing against a
 * real cluster is tests/integration/cluster_test. */
#include "services/profile/rcluster.h"

#include <hiredis/hiredis.h>
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

/* The reply hiredis reads from RESP bytes (caller frees it). */
static redisReply *resp(const char *bytes, size_t len) {
    redisReader *rd = redisReaderCreate();
    void *r = NULL;
    if (!rd) return NULL;
    TEST_CHECK(redisReaderFeed(rd, bytes, len) == REDIS_OK);
    TEST_CHECK(redisReaderGetReply(rd, &r) == REDIS_OK);
    redisReaderFree(rd);
    return r;
}

/* rcluster_slots_parse's verdict on the RESP bytes of a reply (a string
 * literal, NULs included). */
#define slots(c, lit) slots_n((c), (lit), sizeof(lit) - 1)
static int slots_n(rcluster *c, const char *bytes, size_t len) {
    redisReply *r = resp(bytes, len);
    int rc;
    TEST_CHECK(r != NULL);
    if (!r) return AISLE_EINTERNAL; /* a test's own mistake: fails every check */
    rc = rcluster_slots_parse(c, r, "10.0.0.9");
    freeReplyObject(r);
    return rc;
}

static void test_cluster_slots(void) {
    rcluster *c;
    char err[128];
    TEST_REQUIRE(rcluster_open("127.0.0.1:7000", NULL, 0, &c, err, sizeof(err)) == 0);
    TEST_CHECK(slots(c, "*2\r\n*3\r\n:0\r\n:8191\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n"
                        "*3\r\n:8192\r\n:16383\r\n*2\r\n$0\r\n\r\n:7001\r\n") == AISLE_OK);
    /* A reversed range, a slot past the map, a port out of range, a range
     * bound given as a string and a host with a NUL inside are refused. */
    TEST_CHECK(slots(c, "*1\r\n*3\r\n:5\r\n:2\r\n*2\r\n$1\r\nh\r\n:1\r\n") == AISLE_EFORMAT);
    TEST_CHECK(slots(c, "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n") ==
               AISLE_EFORMAT);
    TEST_CHECK(slots(c, "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:-4\r\n") == AISLE_EFORMAT);
    TEST_CHECK(slots(c, "*1\r\n*3\r\n$1\r\n0\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n") ==
               AISLE_EFORMAT);
    TEST_CHECK(slots(c, "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$3\r\nh\0x\r\n:1\r\n") == AISLE_EFORMAT);
    TEST_CHECK(slots(c, ":1\r\n") == AISLE_EFORMAT);
    rcluster_close(c);
}

/* A reply announcing more array elements than RCLUSTER_MAX_ARRAY fails
 * before hiredis allocates for them (a 16 GB calloc, found by fuzzing). */
static void test_huge_array_refused(void) {
    static const char huge[] = "*2092678366\r\n:1\r\n", fine[] = "*2\r\n:1\r\n:2\r\n";
    redisReader *rd = redisReaderCreate();
    void *r = NULL;
    TEST_REQUIRE(rd != NULL);
    rcluster_guard_reader(rd);
    TEST_CHECK(redisReaderFeed(rd, fine, sizeof(fine) - 1) == REDIS_OK);
    TEST_CHECK(redisReaderGetReply(rd, &r) == REDIS_OK && r != NULL);
    if (r) freeReplyObject(r);
    r = NULL;
    TEST_CHECK(redisReaderFeed(rd, huge, sizeof(huge) - 1) == REDIS_OK);
    TEST_CHECK(redisReaderGetReply(rd, &r) == REDIS_ERR && r == NULL);
    redisReaderFree(rd);
}

static void test_redirects(void) {
    char host[256];
    int slot = -1, port = -1;
    TEST_CHECK(rcluster_redirect_parse("MOVED 3999 127.0.0.1:6381", &slot, host, sizeof(host),
                                       &port) == RCLUSTER_MOVED);
    TEST_CHECK(slot == 3999 && port == 6381);
    TEST_CHECK_STR(host, "127.0.0.1");
    TEST_CHECK(rcluster_redirect_parse("ASK 12182 redis-2:7002", &slot, host, sizeof(host),
                                       &port) == RCLUSTER_ASK);
    TEST_CHECK(slot == 12182 && port == 7002);
    TEST_CHECK_STR(host, "redis-2");
    TEST_CHECK(rcluster_redirect_parse("ERR unknown command", &slot, host, sizeof(host), &port) ==
               0);
    TEST_CHECK(rcluster_redirect_parse("MOVED 16384 h:1", &slot, host, sizeof(host), &port) ==
               AISLE_EFORMAT);
    TEST_CHECK(rcluster_redirect_parse("MOVED 1 h:0", &slot, host, sizeof(host), &port) ==
               AISLE_EFORMAT);
    TEST_CHECK(rcluster_redirect_parse("ASK 1 h:1 extra", &slot, host, sizeof(host), &port) ==
               AISLE_EFORMAT);
    TEST_CHECK(rcluster_redirect_parse("MOVED", &slot, host, sizeof(host), &port) == 0);
}

int main(void) {
    TEST_RUN(test_crc16_vector);
    TEST_RUN(test_hash_tags);
    TEST_RUN(test_cluster_slots);
    TEST_RUN(test_redirects);
    TEST_RUN(test_huge_array_refused);
    return test_summary();
}
