/* rcluster: slot routing, pipelines per node and redirections (see
 * rcluster.h for the model). */
#include "services/profile/rcluster.h"

#include <assert.h>
#include <hiredis/read.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/clock.h"
#include "services/base/status.h"
#include "services/obs/hooks.h"

#define RCLUSTER_NONE 0xffff      /* a slot no known node serves */
#define RCLUSTER_MAX_ROUNDS 8     /* redirections followed per command */
#define RCLUSTER_TRYAGAIN_MS 20   /* wait before resending after TRYAGAIN */
#define RCLUSTER_MAX_NODES 1024

typedef struct rcluster_node {
    char host[256];
    int port;
    redisContext *ctx; /* NULL while disconnected */
    int needs_scripts; /* answered NOSCRIPT this round */
} rcluster_node;

typedef struct rcluster_cmd {
    char *buf; /* RESP-formatted command (rcluster_format), owned */
    long len;
    int slot;
    int ask_node;      /* node an ASK sent it to for one try, or -1 */
    int sent_to;       /* node whose pipeline holds it this round, or -1 */
    int asking;        /* sent after ASKING this round */
    redisReply *reply; /* NULL until answered */
} rcluster_cmd;

struct rcluster {
    char seed_host[256];
    int seed_port;
    const char *const *scripts;
    size_t n_scripts;
    char sha[RCLUSTER_MAX_SCRIPTS][41];
    int have_sha;
    int cluster;
    int mapped; /* slot_node is valid */
    rcluster_node *nodes;
    size_t n_nodes;
    uint16_t slot_node[RCLUSTER_SLOTS];
    rcluster_cmd *cmds;
    size_t n_cmds, cap_cmds;
    int executed; /* the queue holds the last exec's commands and replies */
    int sent;     /* the queue's first round is in the sockets (rcluster_send) */
    redisReply **replies; /* view handed to the caller of rcluster_exec */
};

uint16_t rcluster_crc16(const char *buf, size_t len) {
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

int rcluster_keyslot(const char *key, size_t len) {
    size_t s, e;
    for (s = 0; s < len && key[s] != '{'; s++) {
    }
    if (s < len) {
        for (e = s + 1; e < len && key[e] != '}'; e++) {
        }
        if (e < len && e > s + 1) return rcluster_crc16(key + s + 1, e - s - 1) & 16383;
    }
    return rcluster_crc16(key, len) & 16383;
}

/* Splits "host:port" into host (hostlen bytes) and *port. */
static int rcluster_parse_addr(const char *addr, char *host, size_t hostlen, int *port) {
    const char *colon = strrchr(addr, ':');
    char *end;
    long p;
    if (!colon || colon == addr || (size_t)(colon - addr) >= hostlen) return AISLE_EINVAL;
    p = strtol(colon + 1, &end, 10);
    if (*end || p <= 0 || p > 65535) return AISLE_EINVAL;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    *port = (int)p;
    return AISLE_OK;
}

int rcluster_open(const char *addr, const char *const *scripts, size_t n_scripts,
                  rcluster **out, char *err, size_t errlen) {
    rcluster *c;
    *out = NULL;
    if (n_scripts > RCLUSTER_MAX_SCRIPTS)
        return status_fail(AISLE_EINVAL, err, errlen, "too many scripts");
    c = calloc(1, sizeof(*c));
    if (!c) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if (rcluster_parse_addr(addr, c->seed_host, sizeof(c->seed_host), &c->seed_port)) {
        free(c);
        return status_fail(AISLE_EINVAL, err, errlen, "redis address '%s' is not HOST:PORT",
                           addr);
    }
    c->scripts = scripts;
    c->n_scripts = n_scripts;
    *out = c;
    return AISLE_OK;
}

static void rcluster_drop(rcluster_node *n) {
    if (n->ctx) redisFree(n->ctx);
    n->ctx = NULL;
}

/* Drops every connection: after a failed exchange the pipelines still open
 * elsewhere hold replies nobody will read. */
static void rcluster_drop_all(rcluster *c) {
    for (size_t i = 0; i < c->n_nodes; i++) rcluster_drop(&c->nodes[i]);
    c->mapped = 0;
}

void rcluster_reset(rcluster *c) {
    for (size_t i = 0; i < c->n_cmds; i++) {
        free(c->cmds[i].buf);
        if (c->cmds[i].reply) freeReplyObject(c->cmds[i].reply);
    }
    c->n_cmds = 0;
    c->executed = 0;
    c->sent = 0;
}

void rcluster_close(rcluster *c) {
    if (!c) return;
    rcluster_reset(c);
    for (size_t i = 0; i < c->n_nodes; i++) rcluster_drop(&c->nodes[i]);
    free(c->nodes);
    free(c->cmds);
    free(c->replies);
    free(c);
}

/* The index of node host:port, added when new; -1 when the table is full. */
static int rcluster_node_index(rcluster *c, const char *host, int port) {
    rcluster_node *grown;
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].port == port && strcmp(c->nodes[i].host, host) == 0) return (int)i;
    if (c->n_nodes >= RCLUSTER_MAX_NODES || strlen(host) >= sizeof(grown->host)) return -1;
    grown = realloc(c->nodes, (c->n_nodes + 1) * sizeof(*grown));
    if (!grown) return -1;
    c->nodes = grown;
    memset(&grown[c->n_nodes], 0, sizeof(*grown));
    strcpy(grown[c->n_nodes].host, host);
    grown[c->n_nodes].port = port;
    return (int)c->n_nodes++;
}

/* AUTH on a new connection when the environment names credentials
 * (AISLE_REDIS_PASSWORD, and AISLE_REDIS_USER for an ACL user): every node
 * of a cluster, every connection. Neither value is ever printed. */
static int rcluster_auth(rcluster_node *n, char *err, size_t errlen) {
    const char *user = getenv("AISLE_REDIS_USER"), *pass = getenv("AISLE_REDIS_PASSWORD");
    redisReply *r;
    int ok;
    if (!pass || !*pass) return AISLE_OK;
    r = user && *user ? redisCommand(n->ctx, "AUTH %s %s", user, pass)
                      : redisCommand(n->ctx, "AUTH %s", pass);
    ok = r && r->type == REDIS_REPLY_STATUS;
    if (!ok)
        status_fmt(err, errlen, "redis %s:%d: AUTH refused%s%s", n->host, n->port,
                   r && r->type == REDIS_REPLY_ERROR ? ": " : "",
                   r && r->type == REDIS_REPLY_ERROR ? r->str : "");
    if (r) freeReplyObject(r);
    if (ok) return AISLE_OK;
    rcluster_drop(n);
    return AISLE_EIO;
}

/* hiredis 0.14 allocates an array reply's element table from the count a
 * server sends, before any element arrives, and has no limit of its own: a
 * garbled or hostile "*2092678366" would be a 16 GB calloc. Every reader
 * rcluster uses creates arrays through this cap instead; past it the reader
 * fails as out of memory, which the caller sees as the connection failing. */
static redisReplyObjectFunctions rcluster_reply_fns;
static void *(*rcluster_default_array)(const redisReadTask *, int);
static pthread_once_t rcluster_fns_once = PTHREAD_ONCE_INIT;

static void *rcluster_create_array(const redisReadTask *task, int elements) {
    if (elements < 0 || elements > RCLUSTER_MAX_ARRAY) return NULL;
    return rcluster_default_array(task, elements);
}

/* The defaults are hiredis's own, taken from a reader it made (they are not
 * exported), with createArray wrapped. */
static void rcluster_fns_init(void) {
    redisReader *r = redisReaderCreate();
    assert(r && r->fn); /* hiredis aborts on out of memory at this size anyway */
    rcluster_reply_fns = *r->fn;
    rcluster_default_array = r->fn->createArray;
    rcluster_reply_fns.createArray = rcluster_create_array;
    redisReaderFree(r);
}

void rcluster_guard_reader(redisReader *r) {
    pthread_once(&rcluster_fns_once, rcluster_fns_init);
    r->fn = &rcluster_reply_fns;
}

static int rcluster_node_connect(rcluster *c, int i, char *err, size_t errlen) {
    rcluster_node *n = &c->nodes[i];
    struct timeval tv = {2, 0};
    if (n->ctx) return AISLE_OK;
    n->ctx = redisConnectWithTimeout(n->host, n->port, tv);
    if (!n->ctx || n->ctx->err) {
        status_fmt(err, errlen, "redis %s:%d: %s", n->host, n->port,
                   n->ctx ? n->ctx->errstr : "out of memory");
        rcluster_drop(n);
        return AISLE_EIO;
    }
    redisSetTimeout(n->ctx, tv);
    rcluster_guard_reader(n->ctx->reader);
    return rcluster_auth(n, err, errlen);
}

/* Loads every script on node i, learning their hashes the first time. */
static int rcluster_load_scripts(rcluster *c, int i, char *err, size_t errlen) {
    rcluster_node *n = &c->nodes[i];
    for (size_t s = 0; s < c->n_scripts; s++) {
        redisReply *r = redisCommand(n->ctx, "SCRIPT LOAD %s", c->scripts[s]);
        if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
            status_fmt(err, errlen, "redis %s:%d: loading a script: %s", n->host, n->port,
                       r && r->type == REDIS_REPLY_ERROR ? r->str : n->ctx->errstr);
            if (r) freeReplyObject(r);
            rcluster_drop(n);
            return AISLE_EIO;
        }
        memcpy(c->sha[s], r->str, 41);
        freeReplyObject(r);
    }
    c->have_sha = 1;
    n->needs_scripts = 0;
    return AISLE_OK;
}

/* Whether r is an integer reply within [lo, hi]. */
static int rcluster_int_in(const redisReply *r, long long lo, long long hi) {
    return r->type == REDIS_REPLY_INTEGER && r->integer >= lo && r->integer <= hi;
}

int rcluster_slots_parse(rcluster *c, const redisReply *r, const char *from_host) {
    int rc = AISLE_EFORMAT;
    for (size_t s = 0; s < RCLUSTER_SLOTS; s++) c->slot_node[s] = RCLUSTER_NONE;
    if (r->type != REDIS_REPLY_ARRAY) goto fail;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *range = r->element[i], *master, *host;
        int idx;
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) goto fail;
        master = range->element[2];
        if (!rcluster_int_in(range->element[0], 0, RCLUSTER_SLOTS - 1) ||
            !rcluster_int_in(range->element[1], range->element[0]->integer,
                             RCLUSTER_SLOTS - 1) ||
            master->type != REDIS_REPLY_ARRAY || master->elements < 2 ||
            !rcluster_int_in(master->element[1], 1, 65535))
            goto fail;
        host = master->element[0];
        /* A host with a NUL inside would name another node than it says. */
        if (host->type != REDIS_REPLY_STRING || strlen(host->str) != host->len) goto fail;
        /* An empty host means "the address you reached me at". */
        idx = rcluster_node_index(c, host->len ? host->str : from_host,
                                  (int)master->element[1]->integer);
        if (idx < 0) {
            rc = AISLE_EFULL;
            goto fail;
        }
        for (long long s = range->element[0]->integer; s <= range->element[1]->integer; s++)
            c->slot_node[s] = (uint16_t)idx;
    }
    return AISLE_OK;
fail:
    for (size_t s = 0; s < RCLUSTER_SLOTS; s++) c->slot_node[s] = RCLUSTER_NONE;
    return rc;
}

/* Asks node i for the topology. Returns 0, or -1 with err set. */
static int rcluster_refresh_from(rcluster *c, int i, char *err, size_t errlen) {
    redisReply *r;
    int rc = AISLE_EIO;
    if ((rc = rcluster_node_connect(c, i, err, errlen)) != 0) return rc;
    if (!c->have_sha && (rc = rcluster_load_scripts(c, i, err, errlen)) != 0) return rc;
    r = redisCommand(c->nodes[i].ctx, "CLUSTER SLOTS");
    if (!r) {
        status_fmt(err, errlen, "redis %s:%d: %s", c->nodes[i].host, c->nodes[i].port,
                   c->nodes[i].ctx->errstr);
        rcluster_drop(&c->nodes[i]);
        return AISLE_EIO;
    }
    if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "cluster support disabled")) {
        /* Standalone: this node owns every slot. */
        for (size_t s = 0; s < RCLUSTER_SLOTS; s++) c->slot_node[s] = (uint16_t)i;
        c->cluster = 0;
        rc = 0;
    } else if (rcluster_slots_parse(c, r, c->nodes[i].host) == 0) {
        c->cluster = 1;
        rc = 0;
    } else {
        rc = AISLE_EIO;
        status_fmt(err, errlen, "redis %s:%d: CLUSTER SLOTS: %s", c->nodes[i].host,
                   c->nodes[i].port, r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
    }
    freeReplyObject(r);
    c->mapped = rc == 0;
    return rc;
}

int rcluster_connect(rcluster *c, char *err, size_t errlen) {
    int seed;
    if (c->mapped) return AISLE_OK;
    /* The seed first, then every node seen before: any of them may be the
     * one still up. */
    seed = rcluster_node_index(c, c->seed_host, c->seed_port);
    if (seed < 0) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    if (rcluster_refresh_from(c, seed, err, errlen) == 0) return AISLE_OK;
    for (size_t i = 0; i < c->n_nodes; i++)
        if ((int)i != seed && rcluster_refresh_from(c, (int)i, err, errlen) == 0)
            return AISLE_OK;
    return AISLE_EIO;
}

const char *rcluster_sha(const rcluster *c, size_t i) { return c->sha[i]; }

int rcluster_one_node(const rcluster *c) { return c->mapped && !c->cluster; }


/* Writes v in decimal at p; returns the end. */
static char *rcluster_put_uint(char *p, size_t v) {
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

/* A command in RESP, into a new buffer *out (free with free). Returns its
 * length, or -1 when out of memory. hiredis's redisFormatCommandArgv does
 * the same through sprintf, one call an argument: most of a busy worker's
 * time, with a script call of thousands of arguments. */
static long rcluster_format(char **out, int argc, const char **argv, const size_t *lens) {
    size_t total = 1 + 20 + 2;
    char *buf, *p;
    for (int i = 0; i < argc; i++) total += 1 + 20 + 2 + (lens ? lens[i] : strlen(argv[i])) + 2;
    if (!(buf = malloc(total))) return -1;
    p = buf;
    *p++ = '*';
    p = rcluster_put_uint(p, (size_t)argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        size_t len = lens ? lens[i] : strlen(argv[i]);
        *p++ = '$';
        p = rcluster_put_uint(p, len);
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, argv[i], len);
        p += len;
        *p++ = '\r';
        *p++ = '\n';
    }
    assert((size_t)(p - buf) <= total);
    *out = buf;
    return (long)(p - buf);
}

int rcluster_append(rcluster *c, const char *key, int argc, const char **argv,
                    const size_t *argvlen) {
    rcluster_cmd *cmd;
    assert(!c->sent); /* a sent queue is read by rcluster_exec first */
    if (c->executed) rcluster_reset(c);
    if (c->n_cmds == c->cap_cmds) {
        size_t cap = c->cap_cmds ? c->cap_cmds * 2 : 64;
        rcluster_cmd *grown = realloc(c->cmds, cap * sizeof(*grown));
        redisReply **view = realloc(c->replies, cap * sizeof(*view));
        if (grown) c->cmds = grown;
        if (view) c->replies = view;
        if (!grown || !view) return AISLE_ENOMEM;
        c->cap_cmds = cap;
    }
    cmd = &c->cmds[c->n_cmds];
    memset(cmd, 0, sizeof(*cmd));
    cmd->len = rcluster_format(&cmd->buf, argc, argv, argvlen);
    if (cmd->len < 0) return AISLE_ENOMEM;
    cmd->slot = rcluster_keyslot(key, strlen(key));
    cmd->ask_node = cmd->sent_to = -1;
    c->n_cmds++;
    return AISLE_OK;
}

/* The node a pending command goes to this round, or -1. */
static int rcluster_target(const rcluster *c, const rcluster_cmd *cmd) {
    if (cmd->ask_node >= 0) return cmd->ask_node;
    return c->slot_node[cmd->slot] == RCLUSTER_NONE ? -1 : c->slot_node[cmd->slot];
}

int rcluster_redirect_parse(const char *msg, int *slot, char *host, size_t hostlen,
                           int *port) {
    char addr[300], tail;
    int kind;
    if (strncmp(msg, "MOVED ", 6) == 0)
        kind = RCLUSTER_MOVED;
    else if (strncmp(msg, "ASK ", 4) == 0)
        kind = RCLUSTER_ASK;
    else
        return 0;
    /* Exactly "SLOT HOST:PORT": a longer address or trailing words are not
     * a redirection we understand. */
    if (sscanf(strchr(msg, ' ') + 1, "%d %299s%c", slot, addr, &tail) != 2 || *slot < 0 ||
        *slot >= RCLUSTER_SLOTS || strlen(addr) >= sizeof(addr) - 1 ||
        rcluster_parse_addr(addr, host, hostlen, port))
        return AISLE_EFORMAT;
    return kind;
}

/* Handles a redirection or NOSCRIPT reply to cmd, which stays pending.
 * Returns 1 when it was one (*moved or *tryagain may be set), 0 when r is
 * the command's answer. */
static int rcluster_redirect(rcluster *c, rcluster_cmd *cmd, int node, const redisReply *r,
                             int *moved, int *tryagain) {
    char host[256];
    int slot, port, idx, kind;
    if (r->type != REDIS_REPLY_ERROR) return 0;
    if (strncmp(r->str, "NOSCRIPT", 8) == 0) {
        c->nodes[node].needs_scripts = 1;
        return 1;
    }
    if (strncmp(r->str, "TRYAGAIN", 8) == 0) {
        *tryagain = 1;
        return 1;
    }
    kind = rcluster_redirect_parse(r->str, &slot, host, sizeof(host), &port);
    if (kind <= 0 || (idx = rcluster_node_index(c, host, port)) < 0) return 0;
    if (kind == RCLUSTER_MOVED) {
        c->slot_node[slot] = (uint16_t)idx;
        *moved = 1;
    } else {
        cmd->ask_node = idx;
    }
    return 1;
}

/* Queues the pending commands of node i on its connection; with flush,
 * writes them out too (else the first read does). Returns how many, or
 * AISLE_EIO with err set. */
static int rcluster_send_node(rcluster *c, int i, int flush, char *err, size_t errlen) {
    rcluster_node *n = &c->nodes[i];
    int sent = 0, done = 0;
    for (size_t k = 0; k < c->n_cmds; k++) {
        rcluster_cmd *cmd = &c->cmds[k];
        if (cmd->reply || rcluster_target(c, cmd) != i) continue;
        if (!sent++ && rcluster_node_connect(c, i, err, errlen)) return AISLE_EIO;
        cmd->asking = cmd->ask_node >= 0;
        if (cmd->asking) redisAppendCommand(n->ctx, "ASKING");
        redisAppendFormattedCommand(n->ctx, cmd->buf, (size_t)cmd->len);
        cmd->sent_to = i;
    }
    while (flush && sent && !done)
        if (redisBufferWrite(n->ctx, &done) != REDIS_OK)
            return status_fail(AISLE_EIO, err, errlen, "redis %s:%d: %s", n->host, n->port,
                               n->ctx->errstr);
    return sent;
}

/* Reads the replies of the commands sent to node i. Returns 0, or -1 with
 * err set when the exchange failed. */
static int rcluster_recv_node(rcluster *c, int i, int *moved, int *tryagain, char *err,
                              size_t errlen) {
    rcluster_node *n = &c->nodes[i];
    /* Replies are matched by sent_to, not by target: a MOVED read here can
     * re-route later commands of this very pipeline. */
    for (size_t k = 0; k < c->n_cmds; k++) {
        rcluster_cmd *cmd = &c->cmds[k];
        redisReply *r = NULL;
        if (cmd->sent_to != i) continue;
        cmd->sent_to = -1;
        if (cmd->asking) {
            if (redisGetReply(n->ctx, (void **)&r) != REDIS_OK) goto fail;
            freeReplyObject(r);
            r = NULL;
        }
        if (redisGetReply(n->ctx, (void **)&r) != REDIS_OK || !r) goto fail;
        /* An ASK holds for one try: whatever came back, route by slot next. */
        cmd->ask_node = -1;
        if (rcluster_redirect(c, cmd, i, r, moved, tryagain))
            freeReplyObject(r);
        else
            cmd->reply = r;
    }
    if (n->needs_scripts && rcluster_load_scripts(c, i, err, errlen)) return AISLE_EIO;
    return AISLE_OK;
fail:
    return status_fail(AISLE_EIO, err, errlen, "redis %s:%d: %s", n->host, n->port,
                       n->ctx->err ? n->ctx->errstr : "no reply");
}

int rcluster_send(rcluster *c, char *err, size_t errlen) {
    assert(!c->sent && !c->executed);
    if (rcluster_connect(c, err, errlen)) goto fail;
    for (size_t k = 0; k < c->n_cmds; k++)
        if (rcluster_target(c, &c->cmds[k]) < 0) {
            status_fmt(err, errlen, "redis cluster: slot %d is not served", c->cmds[k].slot);
            goto fail;
        }
    for (size_t i = 0; i < c->n_nodes; i++)
        if (rcluster_send_node(c, (int)i, 1, err, errlen) < 0) goto fail;
    c->sent = 1;
    return AISLE_OK;
fail:
    rcluster_drop_all(c);
    rcluster_reset(c);
    return AISLE_EIO;
}

int rcluster_exec(rcluster *c, redisReply ***replies, size_t *n, char *err,
                  size_t errlen) {
    int64_t start_us = clock_mono_us();
    *replies = NULL;
    *n = 0;
    if (rcluster_connect(c, err, errlen)) goto fail;
    for (int round = 0; round < RCLUSTER_MAX_ROUNDS; round++) {
        int moved = 0, tryagain = 0, pending = 0;
        /* Nodes can be added while a round runs (redirections): each new
         * one is served in the next round. */
        size_t n_nodes = c->n_nodes;
        for (size_t k = 0; k < c->n_cmds; k++) {
            if (c->cmds[k].reply) continue;
            if (rcluster_target(c, &c->cmds[k]) < 0) {
                status_fmt(err, errlen, "redis cluster: slot %d is not served",
                           c->cmds[k].slot);
                goto fail;
            }
            pending = 1;
        }
        if (!pending) {
            for (size_t k = 0; k < c->n_cmds; k++) c->replies[k] = c->cmds[k].reply;
            c->executed = 1;
            *replies = c->replies;
            *n = c->n_cmds;
            obs_redis_done(1, start_us);
            return AISLE_OK;
        }
        for (size_t i = 0; i < n_nodes; i++)
            if ((!c->sent && rcluster_send_node(c, (int)i, 0, err, errlen) < 0) ||
                rcluster_recv_node(c, (int)i, &moved, &tryagain, err, errlen))
                goto fail;
        c->sent = 0; /* later rounds send what is still pending */
        /* The MOVED reply already fixed its slot; a fresh map fixes the
         * others that moved with it. */
        if (moved && c->cluster) {
            c->mapped = 0;
            if (rcluster_connect(c, err, errlen)) goto fail;
        }
        if (tryagain) clock_sleep_ms(RCLUSTER_TRYAGAIN_MS);
    }
    status_fmt(err, errlen, "redis cluster: still redirected after %d rounds",
               RCLUSTER_MAX_ROUNDS);
fail:
    obs_redis_done(0, start_us);
    rcluster_drop_all(c);
    rcluster_reset(c);
    return AISLE_EIO;
}
