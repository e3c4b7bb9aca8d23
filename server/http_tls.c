/* http_tls.c: the HTTP listener's TLS context (http_tls.h). */
#include "http_tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <h2o.h>
#include <h2o/http2.h>

#include "hacache.h"
#include "log.h"

struct hc_http_tls {
    const hc_config_t *cfg;
    SSL_CTX *ssl_ctx; /* NULL: plain HTTP */
};

/* Builds a server context from the HTTP TLS pair; NULL with the reason in err on any problem
 * (unreadable, key not matching, expired or not yet valid at `now`). */
static SSL_CTX *build_ssl_ctx(const hc_config_t *cfg, int64_t now, char *errbuf, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    /* No TLS 1.3 session tickets: h2o 2.2.5 leaks the connection of a client that resets
     * right after the handshake while the tickets are being written (seen with OpenSSL 3);
     * API clients gain little from resumption anyway. */
    SSL_CTX_set_num_tickets(ctx, 0);
    const char *what = NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->http_tls_cert) != 1) {
        what = "cannot load CACHE_HTTP_TLS_CERT";
    } else {
        /* read the key ourselves so a mismatch is reported as such, not as a load error */
        EVP_PKEY *pkey = NULL;
        FILE *f = fopen(cfg->http_tls_key, "r");
        if (f != NULL) {
            pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
            fclose(f);
        }
        time_t t = (time_t)now;
        X509 *leaf = SSL_CTX_get0_certificate(ctx);
        if (pkey == NULL) {
            what = "cannot load CACHE_HTTP_TLS_KEY";
        } else if (X509_check_private_key(leaf, pkey) != 1) {
            what = "CACHE_HTTP_TLS_KEY does not match CACHE_HTTP_TLS_CERT";
        } else if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
            what = "cannot use CACHE_HTTP_TLS_KEY";
        } else if (X509_cmp_time(X509_get0_notAfter(leaf), &t) < 0) {
            what = "CACHE_HTTP_TLS_CERT: certificate expired (notAfter in the past)";
        } else if (X509_cmp_time(X509_get0_notBefore(leaf), &t) > 0) {
            what = "CACHE_HTTP_TLS_CERT: certificate is not valid yet (notBefore in the future)";
        }
        EVP_PKEY_free(pkey);
    }
    if (what) {
        char err[256] = "";
        unsigned long e = ERR_get_error();
        if (e != 0) {
            ERR_error_string_n(e, err, sizeof(err));
        }
        ERR_clear_error();
        snprintf(errbuf, errlen, "%s%s%s", what, err[0] ? ": " : "", err);
        SSL_CTX_free(ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
}

static void log_cert(const char *msg, SSL_CTX *ctx)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    if (x == NULL) {
        return;
    }
    char subject[256] = "", serial[80] = "", not_after[64] = "";
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    if (bn) {
        char *hex = BN_bn2hex(bn);
        if (hex) {
            snprintf(serial, sizeof(serial), "%s", hex);
            OPENSSL_free(hex);
        }
        BN_free(bn);
    }
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
        strftime(not_after, sizeof(not_after), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    hc_log(HC_LOG_INFO, msg, HC_LS("subject", subject), HC_LS("serial", serial),
           HC_LS("not_after", not_after));
}

int hc_http_tls_new(const hc_config_t *cfg, hc_http_tls_t **out)
{
    *out = NULL;
    hc_http_tls_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return HC_ENOMEM;
    }
    t->cfg = cfg;
    if (cfg->http_tls_cert && cfg->http_tls_key) {
        char err[512];
        t->ssl_ctx = build_ssl_ctx(cfg, (int64_t)time(NULL), err, sizeof(err));
        if (t->ssl_ctx == NULL) {
            hc_log(HC_LOG_ERROR, "http tls material rejected", HC_LS("reason", err));
            free(t);
            return HC_EINVAL;
        }
        log_cert("http tls loaded", t->ssl_ctx);
    }
    *out = t;
    return 0;
}

void hc_http_tls_free(hc_http_tls_t *t)
{
    if (t == NULL) {
        return;
    }
    SSL_CTX_free(t->ssl_ctx);
    free(t);
}

struct ssl_ctx_st *hc_http_tls_ctx(const hc_http_tls_t *t)
{
    return t->ssl_ctx;
}

int hc_http_tls_load(hc_http_tls_t *t, int64_t now, char *err, size_t errlen)
{
    if (t->cfg->http_tls_cert == NULL || t->cfg->http_tls_key == NULL) {
        snprintf(err, errlen, "no HTTP TLS configured");
        return HC_ENOTFOUND;
    }
    SSL_CTX *ctx = build_ssl_ctx(t->cfg, now, err, errlen);
    if (ctx == NULL) {
        return HC_EINVAL;
    }
    /* connections hold their own reference to the context they were accepted with */
    SSL_CTX_free(t->ssl_ctx);
    t->ssl_ctx = ctx;
    return 0;
}

int hc_http_tls_reload(hc_http_tls_t *t)
{
    char err[512];
    int rv = hc_http_tls_load(t, (int64_t)time(NULL), err, sizeof(err));
    if (rv == HC_EINVAL) {
        hc_log(HC_LOG_ERROR, "http tls material rejected", HC_LS("reason", err));
    } else if (rv == 0) {
        log_cert("http tls reloaded", t->ssl_ctx);
    }
    return rv;
}

void hc_http_tls_info(const hc_http_tls_t *t, hc_tls_cert_info_t *info)
{
    hc_tls_x509_info(t->ssl_ctx ? SSL_CTX_get0_certificate(t->ssl_ctx) : NULL, info);
}

void hc_http_tls_status_json(const hc_http_tls_t *t, hc_buf_t *b)
{
    X509 *x = t != NULL && t->ssl_ctx ? SSL_CTX_get0_certificate(t->ssl_ctx) : NULL;
    if (x == NULL) {
        hc_buf_puts(b, "null");
        return;
    }
    char subject[256] = "";
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
    struct tm tm;
    char not_after[64] = "";
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
        strftime(not_after, sizeof(not_after), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    hc_buf_puts(b, "{\"http\":{\"subject\":");
    hc_buf_json_string(b, subject, strlen(subject));
    hc_buf_puts(b, ",\"not_after\":");
    hc_buf_json_string(b, not_after, strlen(not_after));
    hc_buf_puts(b, "}}");
}
