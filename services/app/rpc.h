/* rpc: a small gRPC client on gRPC core's C API, for `aisle ctl` and the
 * admin console: unary calls and server-streaming calls with protobuf-c
 * messages, over an insecure channel.
 *
 * A call returns the gRPC status code it ended with (0 is OK) and the
 * status message; a transport failure (server unreachable) is
 * UNAVAILABLE, a deadline DEADLINE_EXCEEDED, as gRPC reports them. One
 * rpc_client may be used from several threads at once. */
#ifndef AISLE_RPC_H
#define AISLE_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

enum { RPC_OK = 0, RPC_DEADLINE_EXCEEDED = 4, RPC_NOT_FOUND = 5, RPC_UNAVAILABLE = 14,
       RPC_INTERNAL = 13 };

typedef struct rpc_client rpc_client;

/* A channel to addr (HOST:PORT). Connection is lazy: an unreachable
 * server shows at the first call. Returns NULL only when out of memory. */
rpc_client *rpc_open(const char *addr);
void rpc_close(rpc_client *c);

/* Calls method ("/aisle.v1.Recommender/Recommend") with req; on OK, *resp
 * is the answer decoded as resp_desc (free with protobuf_c_message_free_unpacked).
 * Returns the gRPC status code, with its message in msg. */
int rpc_unary(rpc_client *c, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
              ProtobufCMessage **resp, char *msg, size_t msglen);

/* A server-streaming call: fn(arg, message) for each message as it
 * arrives (the message is freed after fn returns); fn returns non-zero to
 * cancel the call. Returns the gRPC status code, as rpc_unary. */
typedef int (*rpc_on_message)(void *arg, const ProtobufCMessage *m);
int rpc_stream(rpc_client *c, const char *method, const ProtobufCMessage *req,
               const ProtobufCMessageDescriptor *resp_desc, int timeout_ms, rpc_on_message fn,
               void *arg, char *msg, size_t msglen);

/* The name gRPC gives status code ("NOT_FOUND"). */
const char *rpc_code_name(int code);

#endif
