/* tls: PEM files checked with OpenSSL, served to gRPC by a config fetcher. */
#include "services/serve/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/buf.h"
#include "services/base/log.h"
#include "services/base/status.h"

#define TLS_MAX_FILE (1 << 20) /* PEM files are a few KiB; refuse anything huge */

/* The files' contents at one moment. */
typedef struct tls_pem {
    char *cert, *key, *ca; /* owned, NUL-terminated; ca NULL without mTLS */
} tls_pem;

struct tls {
    tls_config cfg;       /* paths, copied */
    char *paths;          /* owns cfg's strings */
    tls_pem pem;          /* what the last successful load read */
    volatile sig_atomic_t reload;
    atomic_uint generation;
};

static void tls_pem_clear(tls_pem *p) {
    if (p->key) OPENSSL_cleanse(p->key, strlen(p->key));
    free(p->cert);
    free(p->key);
    free(p->ca);
    memset(p, 0, sizeof(*p));
}

int tls_read(const char *what, const char *path, char **out, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    buf b = {0};
    char chunk[4096];
    size_t n;
    *out = NULL;
    if (!f)
        return status_fail(AISLE_EIO, err, errlen, "cannot read the TLS %s %s: %s", what, path,
                           strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len <= TLS_MAX_FILE) buf_put(&b, chunk, n);
    fclose(f);
    if (b.len > TLS_MAX_FILE) {
        buf_free(&b);
        return status_fail(AISLE_EFORMAT, err, errlen, "the TLS %s %s is over 1 MiB", what, path);
    }
    if (!(*out = buf_take(&b))) return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    return AISLE_OK;
}

/* The first certificate of pem, or NULL. */
static X509 *tls_first_cert(const char *pem) {
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return x;
}

/* Whether the key parses and belongs to the chain's first certificate. */
static int tls_check(const tls_pem *p, const tls_config *cfg, char *err, size_t errlen) {
    BIO *bio = BIO_new_mem_buf(p->key, -1);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    X509 *cert = tls_first_cert(p->cert), *ca = p->ca ? tls_first_cert(p->ca) : NULL;
    int rc = AISLE_OK;
    BIO_free(bio);
    if (!cert)
        rc = status_fail(AISLE_EFORMAT, err, errlen, "%s holds no PEM certificate", cfg->cert);
    else if (!key)
        rc = status_fail(AISLE_EFORMAT, err, errlen, "%s holds no PEM private key", cfg->key);
    else if (X509_check_private_key(cert, key) != 1)
        rc = status_fail(AISLE_EFORMAT, err, errlen, "the key in %s does not match the certificate in %s",
                         cfg->key, cfg->cert);
    else if (p->ca && !ca)
        rc = status_fail(AISLE_EFORMAT, err, errlen, "%s holds no PEM certificate", cfg->client_ca);
    ERR_clear_error();
    X509_free(cert);
    X509_free(ca);
    EVP_PKEY_free(key);
    return rc;
}

static int tls_load(const tls_config *cfg, tls_pem *p, char *err, size_t errlen) {
    int rc;
    memset(p, 0, sizeof(*p));
    if ((rc = tls_read("certificate", cfg->cert, &p->cert, err, errlen)) ||
        (rc = tls_read("key", cfg->key, &p->key, err, errlen)) ||
        (cfg->client_ca && (rc = tls_read("client CA", cfg->client_ca, &p->ca, err, errlen))) ||
        (rc = tls_check(p, cfg, err, errlen)))
        tls_pem_clear(p);
    return rc;
}

int tls_open(const tls_config *cfg, tls **out, char *err, size_t errlen) {
    tls *t = calloc(1, sizeof(*t));
    size_t lc = strlen(cfg->cert) + 1, lk = strlen(cfg->key) + 1;
    size_t la = cfg->client_ca ? strlen(cfg->client_ca) + 1 : 0;
    int rc;
    *out = NULL;
    if (!t || !(t->paths = malloc(lc + lk + la + 1))) {
        free(t);
        return status_fail(AISLE_ENOMEM, err, errlen, "out of memory");
    }
    memcpy(t->paths, cfg->cert, lc);
    memcpy(t->paths + lc, cfg->key, lk);
    if (la) memcpy(t->paths + lc + lk, cfg->client_ca, la);
    t->cfg = (tls_config){t->paths, t->paths + lc, la ? t->paths + lc + lk : NULL};
    if ((rc = tls_load(&t->cfg, &t->pem, err, errlen)) != AISLE_OK) {
        tls_free(t);
        return rc;
    }
    *out = t;
    return AISLE_OK;
}

void tls_free(tls *t) {
    if (!t) return;
    tls_pem_clear(&t->pem);
    free(t->paths);
    free(t);
}

static grpc_ssl_server_certificate_config *tls_grpc_config(const tls_pem *p) {
    grpc_ssl_pem_key_cert_pair pair = {p->key, p->cert};
    /* gRPC 1.51's reloading path asserts that a root bundle is present even
     * when no client certificate is asked for; the server's own chain
     * stands in then, and is never used to verify anything. */
    return grpc_ssl_server_certificate_config_create(p->ca ? p->ca : p->cert, &pair, 1);
}

/* gRPC's fetcher: the current files, read again when a reload was asked. */
static grpc_ssl_certificate_config_reload_status tls_fetch(
    void *ud, grpc_ssl_server_certificate_config **config) {
    tls *t = ud;
    tls_pem fresh;
    char err[512];
    unsigned gen = atomic_load(&t->generation);
    if (gen > 0 && !t->reload) return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    if (gen > 0) {
        t->reload = 0;
        if (tls_load(&t->cfg, &fresh, err, sizeof(err)) != AISLE_OK) {
            log_error("tls", "certificate reload refused, keeping the current ones: %s", err);
            return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
        }
        tls_pem_clear(&t->pem);
        t->pem = fresh;
        log_info("tls", "certificates reloaded from %s", t->cfg.cert);
    }
    *config = tls_grpc_config(&t->pem);
    atomic_fetch_add(&t->generation, 1);
    return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

grpc_server_credentials *tls_credentials(tls *t) {
    grpc_ssl_server_credentials_options *o =
        grpc_ssl_server_credentials_create_options_using_config_fetcher(
            t->cfg.client_ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                             : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
            tls_fetch, t);
    return grpc_ssl_server_credentials_create_with_options(o);
}

void tls_reload(tls *t) { t->reload = 1; }

unsigned tls_generation(tls *t) { return atomic_load(&t->generation); }
