/* rpc: a small gRPC client on gRPC core's C API, for `aisle ctl` and the
 * admin console: unary calls and server-streaming calls with protobuf-c
 * messages, in plaintext or over TLS (with a client certificate for mTLS),
 * with a bearer token in each call's metadata when the server wants one.
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

typedef struct rpc_options {
    const char *tls_ca;      /* PEM roots the server's certificate must chain to:
                                TLS; NULL: plaintext */
    const char *tls_cert;    /* PEM client certificate (mTLS), with tls_key; or NULL */
    const char *tls_key;
    const char *server_name; /* name the certificate must carry, when it is not
                                addr's host; or NULL */
} rpc_options;

/* A channel to addr (HOST:PORT, or unix:PATH) with opt (NULL: plaintext).
 * Connection is lazy: an unreachable server shows at the first call.
 * Returns AISLE_OK, or AISLE_EIO / AISLE_EFORMAT (a PEM file that cannot
 * be read) or AISLE_ENOMEM with err set; *out is then NULL. Free with
 * rpc_close. */
int rpc_open(const char *addr, const rpc_options *opt, rpc_client **out, char *err,
             size_t errlen);
void rpc_close(rpc_client *c);

/* Calls method ("/aisle.v1.Recommender/Recommend") with req, sending
 * "authorization: Bearer TOKEN" when token is not NULL (the token is never
 * kept or logged); on OK, *resp is the answer decoded as resp_desc (free
 * with protobuf_c_message_free_unpacked). Returns the gRPC status code,
 * with its message in msg. */
int rpc_unary(rpc_client *c, const char *token, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
              ProtobufCMessage **resp, char *msg, size_t msglen);

/* A server-streaming call: fn(arg, message) for each message as it
 * arrives (the message is freed after fn returns); fn returns non-zero to
 * cancel the call. Returns the gRPC status code, as rpc_unary. */
typedef int (*rpc_on_message)(void *arg, const ProtobufCMessage *m);
int rpc_stream(rpc_client *c, const char *token, const char *method, const ProtobufCMessage *req,
               const ProtobufCMessageDescriptor *resp_desc, int timeout_ms, rpc_on_message fn,
               void *arg, char *msg, size_t msglen);

/* The name gRPC gives status code ("NOT_FOUND"). */
const char *rpc_code_name(int code);

#endif
