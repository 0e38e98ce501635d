/* tls: the server's TLS credentials, reloadable without a restart.
 *
 * The certificate chain and key (and, for mTLS, the CA that client
 * certificates must chain to) are read from files and checked with OpenSSL
 * before gRPC sees them, so a wrong path, a key that does not match its
 * certificate or a CA file with no certificate fails at start with a clear
 * message instead of at the first handshake. gRPC asks for the
 * configuration through a fetcher before handshakes; after tls_reload is
 * called (on SIGHUP) the next fetch reads the files again, and keeps the
 * old configuration if the new files do not check out. */
#ifndef AISLE_TLS_H
#define AISLE_TLS_H

#include <grpc/grpc_security.h>
#include <stddef.h>

typedef struct tls_config {
    const char *cert;      /* PEM certificate chain */
    const char *key;       /* PEM private key */
    const char *client_ca; /* PEM CA bundle: client certificates required; NULL: none asked */
} tls_config;

typedef struct tls tls;

/* Reads and checks the files. Returns AISLE_OK, or AISLE_EIO / AISLE_EFORMAT
 * with err naming the file (never a key's content). Free with tls_free
 * after the server that uses it has stopped. */
int tls_open(const tls_config *cfg, tls **out, char *err, size_t errlen);
void tls_free(tls *t); /* NULL is a no-op */

/* Server credentials whose certificates come from t (borrowed: t must
 * outlive the server). The caller releases them after adding the port. */
grpc_server_credentials *tls_credentials(tls *t);

/* Asks for the files to be read again before the next handshake. Safe
 * from a signal handler. */
void tls_reload(tls *t);

/* The whole PEM file at path into *out (NUL-terminated, at most 1 MiB;
 * the caller frees it); what ("certificate", "CA") names it in err.
 * AISLE_OK, AISLE_EIO, AISLE_EFORMAT or AISLE_ENOMEM. Clients use it too. */
int tls_read(const char *what, const char *path, char **out, char *err, size_t errlen);

/* How many reloads took effect; for logs and tests. */
unsigned tls_generation(tls *t);

#endif
