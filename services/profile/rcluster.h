/* rcluster: one pipelined interface to Redis, whether the address names a
 * standalone server or a seed of a Redis Cluster.
 *
 * Commands are queued with the key that decides their slot, then sent
 * together: one pipeline per node. A standalone server is a cluster of one
 * node that owns every slot, so callers never branch on the mode. In a
 * cluster the slot map comes from CLUSTER SLOTS; a MOVED reply updates the
 * map, re-reads the topology and resends; an ASK reply resends once to the
 * importing node after ASKING, without touching the map; TRYAGAIN (a
 * multi-key command caught half-way through a slot migration) resends after
 * a short wait. EVALSHA of a registered script that a node does not know
 * (NOSCRIPT: a new or restarted node) loads the script there and resends.
 *
 * An rcluster is not thread-safe: use one per thread. */
#ifndef AISLE_RCLUSTER_H
#define AISLE_RCLUSTER_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "services/base/status.h"

#define RCLUSTER_SLOTS 16384
#define RCLUSTER_MAX_SCRIPTS 4

typedef struct rcluster rcluster;

/* CRC16-CCITT (XModem), the checksum Redis Cluster hashes keys with. */
uint16_t rcluster_crc16(const char *buf, size_t len);
/* The slot of a key: CRC16 of its hash tag (the part between the first '{'
 * and the next '}', when that part is not empty) or of the whole key,
 * modulo 16384. */
int rcluster_keyslot(const char *key, size_t len);

/* The most elements an array reply may announce (a profile's HGETALL, the
 * popular list with scores and CLUSTER SLOTS are far below it). */
#define RCLUSTER_MAX_ARRAY (1 << 20)

/* Makes reader r (a context's, or one of its own) refuse an array reply
 * announcing more than RCLUSTER_MAX_ARRAY elements, as out of memory,
 * before hiredis allocates for them. Every rcluster connection has it. */
void rcluster_guard_reader(redisReader *r);

/* The decoders of what a node says (outside input, so they are public for
 * tests and fuzzing). */

/* Fills c's slot map from a CLUSTER SLOTS reply r given by the node at
 * from_host (what an empty host in r stands for). Every range must be
 * integers 0 <= first <= last < RCLUSTER_SLOTS and its master a host string
 * and a port 1-65535. Returns AISLE_OK; AISLE_EFORMAT for any other shape or
 * AISLE_EFULL for too many nodes, the map then empty. */
int rcluster_slots_parse(rcluster *c, const redisReply *r, const char *from_host);

enum { RCLUSTER_MOVED = 1, RCLUSTER_ASK = 2 };
/* Parses an error reply's text "MOVED SLOT HOST:PORT" or "ASK SLOT
 * HOST:PORT" into *slot, host (hostlen bytes) and *port. Returns
 * RCLUSTER_MOVED or RCLUSTER_ASK, 0 when msg is no redirection, or
 * AISLE_EFORMAT when it starts like one but does not check out. */
int rcluster_redirect_parse(const char *msg, int *slot, char *host, size_t hostlen,
                           int *port);

/* Prepares a connection to "host:port" (a standalone server or any node of
 * a cluster). scripts (may be NULL) lists up to RCLUSTER_MAX_SCRIPTS Lua
 * sources, borrowed and kept alive by the caller, that rcluster_sha names
 * and that are loaded on each node as needed. Nothing is connected yet.
 * Returns AISLE_OK, or AISLE_EINVAL (a bad address) or AISLE_ENOMEM with err
 * set. Free with rcluster_close. */
int rcluster_open(const char *addr, const char *const *scripts, size_t n_scripts,
                  rcluster **out, char *err, size_t errlen);
void rcluster_close(rcluster *c);

/* Connects when needed, learns whether the server is a cluster and its slot
 * map, and the scripts' hashes. Returns AISLE_OK, or AISLE_EIO with err set. */
int rcluster_connect(rcluster *c, char *err, size_t errlen);
/* The SHA1 of script i; valid after rcluster_connect succeeded once. */
const char *rcluster_sha(const rcluster *c, size_t i);
/* Non-zero when connected to a standalone server, which serves every slot:
 * one command may then name keys of any slots (a batching caller's
 * business; everything else routes the same either way). */
int rcluster_one_node(const rcluster *c);

/* Queues a command routed by key (one of its keys; all keys of one command
 * must share a slot). The arguments are copied; argvlen may be NULL when
 * every argument is a NUL-terminated string. Returns AISLE_OK, or
 * AISLE_ENOMEM (the queue is then unusable until rcluster_exec or reset). */
int rcluster_append(rcluster *c, const char *key, int argc, const char **argv,
                    const size_t *argvlen);

/* Sends every queued command and waits for all replies, following
 * redirections. On AISLE_OK, *replies holds one reply per queued command, in queue
 * order (error replies included), owned by c until the next rcluster_exec
 * or rcluster_reset. On AISLE_EIO, err says why (a node unreachable, too many
 * redirections); some commands may have run, and the connections involved
 * are dropped and reconnected on the next call. The queue is empty after
 * either. */
int rcluster_exec(rcluster *c, redisReply ***replies, size_t *n, char *err,
                  size_t errlen);
/* Writes every queued command to its node without waiting for the
 * replies, so the caller can work while Redis does; the next call must be
 * rcluster_exec, which reads them (and follows redirections as always) or
 * rcluster_reset. Returns AISLE_OK, or AISLE_EIO with err set: the
 * connections are then dropped and the queue emptied, as after a failed
 * rcluster_exec. */
int rcluster_send(rcluster *c, char *err, size_t errlen);
/* Empties the queue and frees the last replies. */
void rcluster_reset(rcluster *c);

#endif
