/* rpc: each call gets its own completion queue and is driven with
 * grpc_completion_queue_pluck, one batch at a time. */
#include "services/app/rpc.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/status.h"
#include "services/serve/tls.h"

struct rpc_client {
    grpc_channel *ch;
};

/* One call in flight: its queue, the call and what the status batch fills. */
typedef struct rpc_call {
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_metadata_array md_initial, md_trailing;
    grpc_status_code status;
    grpc_slice details;
    grpc_byte_buffer *send;
    char *path;
    grpc_metadata auth; /* "authorization: Bearer ..." when a token is sent */
} rpc_call;

const char *rpc_code_name(int code) {
    static const char *const names[] = {
        "OK",           "CANCELLED",  "UNKNOWN",       "INVALID_ARGUMENT",  "DEADLINE_EXCEEDED",
        "NOT_FOUND",    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
        "UNAVAILABLE",  "DATA_LOSS",  "UNAUTHENTICATED"};
    return code >= 0 && code < (int)(sizeof(names) / sizeof(names[0])) ? names[code] : "UNKNOWN";
}

/* TLS channel credentials from opt's files, or NULL with err set. */
static grpc_channel_credentials *rpc_tls_credentials(const rpc_options *opt, char *err,
                                                     size_t errlen) {
    char *ca = NULL, *cert = NULL, *key = NULL;
    grpc_channel_credentials *creds = NULL;
    grpc_ssl_pem_key_cert_pair pair;
    if (!opt->tls_cert != !opt->tls_key) {
        status_fmt(err, errlen, "a client certificate needs its key, and a key its certificate");
        return NULL;
    }
    if (tls_read("CA", opt->tls_ca, &ca, err, errlen) != AISLE_OK) goto done;
    if (opt->tls_cert && (tls_read("certificate", opt->tls_cert, &cert, err, errlen) != AISLE_OK ||
                          tls_read("key", opt->tls_key, &key, err, errlen) != AISLE_OK))
        goto done;
    pair = (grpc_ssl_pem_key_cert_pair){key, cert};
    /* gRPC copies the PEM strings. */
    creds = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
    if (!creds) status_fmt(err, errlen, "TLS credentials refused");
done:
    free(ca);
    free(cert);
    if (key) memset(key, 0, strlen(key)); /* a private key does not linger in freed memory */
    free(key);
    return creds;
}

int rpc_open(const char *addr, const rpc_options *opt, rpc_client **out, char *err,
             size_t errlen) {
    rpc_client *c = calloc(1, sizeof(*c));
    grpc_channel_credentials *creds;
    grpc_arg arg;
    grpc_channel_args args = {0, &arg};
    *out = NULL;
    if (!c) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    grpc_init();
    creds = opt && opt->tls_ca ? rpc_tls_credentials(opt, err, errlen)
                               : grpc_insecure_credentials_create();
    if (!creds) {
        free(c);
        grpc_shutdown();
        return AISLE_EIO;
    }
    if (opt && opt->server_name) {
        arg = (grpc_arg){GRPC_ARG_STRING, GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                         {.string = (char *)opt->server_name}};
        args.num_args = 1;
    }
    c->ch = grpc_channel_create(addr, creds, &args);
    grpc_channel_credentials_release(creds);
    *out = c;
    return AISLE_OK;
}

void rpc_close(rpc_client *c) {
    if (!c) return;
    grpc_channel_destroy(c->ch);
    free(c);
    /* Blocking: plain grpc_shutdown finishes on a thread of its own, and a
     * command that exits right after (ctl) would leave the TLS channel's
     * OpenSSL objects unfreed, which LeakSanitizer reports at exit. Where
     * the process holds other references (serve) it only drops this one. */
    grpc_shutdown_blocking();
}

/* Runs one batch and waits for it. Returns whether it succeeded. */
static int rpc_batch(rpc_call *rc, const grpc_op *ops, size_t n) {
    grpc_event ev;
    if (grpc_call_start_batch(rc->call, ops, n, rc, NULL) != GRPC_CALL_OK) return 0;
    ev = grpc_completion_queue_pluck(rc->cq, rc, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* Fills rc->auth with the bearer token (its slices released in
 * rpc_finish). Returns 0, or -1 when out of memory. */
static int rpc_bearer(rpc_call *rc, const char *token) {
    size_t n = strlen(token);
    char *v = malloc(n + 8);
    if (!v) return -1;
    memcpy(v, "Bearer ", 7);
    memcpy(v + 7, token, n + 1);
    rc->auth.key = grpc_slice_from_static_string("authorization");
    rc->auth.value = grpc_slice_from_copied_buffer(v, n + 7);
    memset(v, 0, n + 7);
    free(v);
    return 0;
}

/* Starts the call and sends req with the client's half-close. Returns 0,
 * or -1 when out of memory or the call could not start. */
static int rpc_start(rpc_client *c, rpc_call *rc, const char *token, const char *method,
                     const ProtobufCMessage *req, int timeout_ms) {
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *body = malloc(len ? len : 1);
    grpc_slice s;
    grpc_op ops[3];
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                         gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));

    memset(rc, 0, sizeof(*rc));
    grpc_metadata_array_init(&rc->md_initial);
    grpc_metadata_array_init(&rc->md_trailing);
    rc->details = grpc_empty_slice();
    if (!body) return -1;
    protobuf_c_message_pack(req, body);
    s = grpc_slice_new(body, len, free);
    rc->send = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    rc->cq = grpc_completion_queue_create_for_pluck(NULL);
    rc->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, rc->cq,
                                        grpc_slice_from_static_string(method), NULL, deadline,
                                        NULL);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (token && rpc_bearer(rc, token) == 0) {
        ops[0].data.send_initial_metadata.count = 1;
        ops[0].data.send_initial_metadata.metadata = &rc->auth;
    }
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = rc->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    /* A failed send shows in the status, which is always received. */
    rpc_batch(rc, ops, 3);
    return 0;
}

/* The next message into *out (NULL at the end of the stream). Returns 0,
 * or -1 when the bytes do not decode. */
static int rpc_recv(rpc_call *rc, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out) {
    grpc_byte_buffer *bb = NULL;
    grpc_byte_buffer_reader rd;
    grpc_op op;
    grpc_slice s;

    *out = NULL;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &bb;
    if (!rpc_batch(rc, &op, 1) || !bb) return 0;
    if (!grpc_byte_buffer_reader_init(&rd, bb)) {
        grpc_byte_buffer_destroy(bb);
        return -1;
    }
    s = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    grpc_byte_buffer_destroy(bb);
    *out = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    return *out ? 0 : -1;
}

/* Waits for the status (cancelling first when asked) and frees the call.
 * Returns the code, with the message in msg. */
static int rpc_finish(rpc_call *rc, int cancel, char *msg, size_t msglen) {
    grpc_op op;
    char *details;
    int code;

    if (rc->call) {
        if (cancel) grpc_call_cancel(rc->call, NULL);
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        op.data.recv_status_on_client.trailing_metadata = &rc->md_trailing;
        op.data.recv_status_on_client.status = &rc->status;
        op.data.recv_status_on_client.status_details = &rc->details;
        if (!rpc_batch(rc, &op, 1)) rc->status = GRPC_STATUS_INTERNAL;
    } else {
        rc->status = GRPC_STATUS_INTERNAL;
    }
    code = (int)rc->status;
    details = grpc_slice_to_c_string(rc->details);
    snprintf(msg, msglen, "%s", details && *details ? details : rpc_code_name(code));
    gpr_free(details);
    grpc_slice_unref(rc->details);
    grpc_metadata_array_destroy(&rc->md_initial);
    grpc_metadata_array_destroy(&rc->md_trailing);
    grpc_slice_unref(rc->auth.value);
    if (rc->send) grpc_byte_buffer_destroy(rc->send);
    if (rc->call) grpc_call_unref(rc->call);
    if (rc->cq) {
        grpc_completion_queue_shutdown(rc->cq);
        while (grpc_completion_queue_pluck(rc->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                   .type != GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(rc->cq);
    }
    return code;
}

/* Receives the initial metadata: the server's answer has begun. */
static void rpc_recv_initial(rpc_call *rc) {
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_INITIAL_METADATA;
    op.data.recv_initial_metadata.recv_initial_metadata = &rc->md_initial;
    rpc_batch(rc, &op, 1);
}

int rpc_unary(rpc_client *c, const char *token, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
              ProtobufCMessage **resp, char *msg, size_t msglen) {
    rpc_call rc;
    int bad = 0, code;

    *resp = NULL;
    if (rpc_start(c, &rc, token, method, req, timeout_ms) == 0) {
        rpc_recv_initial(&rc);
        bad = rpc_recv(&rc, resp_desc, resp) != 0;
    }
    code = rpc_finish(&rc, bad, msg, msglen);
    if (code == RPC_OK && !*resp) {
        code = RPC_INTERNAL;
        snprintf(msg, msglen, "the answer did not decode as %s", resp_desc->name);
    }
    if (code != RPC_OK && *resp) {
        protobuf_c_message_free_unpacked(*resp, NULL);
        *resp = NULL;
    }
    return code;
}

int rpc_stream(rpc_client *c, const char *token, const char *method, const ProtobufCMessage *req,
               const ProtobufCMessageDescriptor *resp_desc, int timeout_ms, rpc_on_message fn,
               void *arg, char *msg, size_t msglen) {
    rpc_call rc;
    ProtobufCMessage *m = NULL;
    int stop = 0, bad = 0, code;

    if (rpc_start(c, &rc, token, method, req, timeout_ms) == 0) {
        rpc_recv_initial(&rc);
        while (!stop && !(bad = rpc_recv(&rc, resp_desc, &m) != 0) && m) {
            stop = fn(arg, m);
            protobuf_c_message_free_unpacked(m, NULL);
        }
    }
    code = rpc_finish(&rc, stop || bad, msg, msglen);
    if (bad && code == RPC_OK) {
        code = RPC_INTERNAL;
        snprintf(msg, msglen, "a message did not decode as %s", resp_desc->name);
    }
    return code;
}
