/* Fuzz target: what a Redis node says to rcluster, as RESP bytes read by
 * hiredis's own reader: a CLUSTER SLOTS reply (an array) fills a slot map,
 * an error or status is parsed as a MOVED / ASK redirection, and the raw
 * bytes are hashed as a key. Anything must end as a map, a refusal or "no
 * redirection", never a crash or a slot outside the map. */
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <stdint.h>
#include <stdlib.h>

#include "services/profile/rcluster.h"

static void rcluster_fuzz_reply(const redisReply *r) {
    static rcluster *c;
    char err[128], host[256];
    int slot, port;
    if (!c && rcluster_open("127.0.0.1:6379", NULL, 0, &c, err, sizeof(err))) return;
    if (r->type == REDIS_REPLY_ARRAY) {
        (void)rcluster_slots_parse(c, r, "127.0.0.1");
    } else if (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS) {
        /* abort, not assert: the check must hold in optimized builds too. */
        if (rcluster_redirect_parse(r->str, &slot, host, sizeof(host), &port) > 0 &&
            (slot < 0 || slot >= RCLUSTER_SLOTS || port <= 0 || port > 65535))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;
    int slot = rcluster_keyslot((const char *)data, size);
    if (slot < 0 || slot >= RCLUSTER_SLOTS) abort();
    if (!rd) return 0;
    rcluster_guard_reader(rd); /* as every connection's reader */
    if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK &&
        redisReaderGetReply(rd, &reply) == REDIS_OK && reply) {
        rcluster_fuzz_reply(reply);
        freeReplyObject(reply);
    }
    redisReaderFree(rd);
    return 0;
}
