/* redisproc: a private redis-server child for the demo.
 *
 * The demo must run on a bare machine with nothing configured, so it starts
 * its own Redis on a free loopback port, without persistence, and stops it
 * on the way out. The child is put in its own process group and asked to
 * die with its parent, so even a crashed demo leaves no stray server. With
 * AISLE_REDIS_MODULE set it loads that module (aisle_redis.so). */
#ifndef AISLE_REDISPROC_H
#define AISLE_REDISPROC_H

#include <stddef.h>
#include <sys/types.h>

typedef struct redisproc {
    pid_t pid;
    int port;
    char addr[32]; /* "127.0.0.1:PORT" */
} redisproc;

/* Starts redis-server (found on PATH) and waits until it answers PING.
 * Returns 0, or -1 with err set. Stop with redisproc_stop. */
int redisproc_start(redisproc *rp, char *err, size_t errlen);
void redisproc_stop(redisproc *rp);

#endif
