/* tls.c: TLS 1.3 mutual authentication over memory BIOs for peer links (see tls.h). */
#include "tls.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "hacache.h"

struct hc_tls_ctx {
    atomic_int refs;
    SSL_CTX *server;       /* presented to peers that dial us, verifies them with CA_CLIENT */
    SSL_CTX *client;       /* presented when dialing, verifies the acceptor with CA_SERVER */
    char *validate_domain; /* CACHE_TLS_CLIENT_VALIDATE_DOMAIN or NULL */
    char *sni;             /* CACHE_TLS_SNI_OVERWRITE or NULL */
    char subject[256];
};

struct hc_tls_conn {
    hc_tls_ctx_t *ctx;
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    int done;
    char expected[256]; /* name the peer certificate must carry (dialer) */
    char err[512];
    char subject[256];
};

/* SAN checks only: a certificate without a matching SAN is refused even if its CN matches. */
#define NAME_FLAGS (X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS)

static int is_ip_literal(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* The last OpenSSL error as text, for configuration errors. */
static const char *ssl_err_text(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0) {
        snprintf(buf, len, "unknown error");
    } else {
        ERR_error_string_n(e, buf, len);
    }
    ERR_clear_error();
    return buf;
}

/* One role's SSL_CTX. Returns NULL with err set. */
static SSL_CTX *build_ctx(int server, const char *cert, const char *cert_var, const char *key,
                          const char *key_var, const char *ca, const char *ca_var, char *err,
                          size_t errlen)
{
    char e[256];
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "TLS: cannot create context: %s", ssl_err_text(e, sizeof(e)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    /* No resumption: tickets leaked memory in h2o/OpenSSL 3, and every link does a full
     * handshake with fresh certificates anyway (which is what makes reloads take effect). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (cert == NULL || key == NULL || ca == NULL) {
        snprintf(err, errlen, "%s: not set",
                 cert == NULL  ? cert_var
                 : key == NULL ? key_var
                               : ca_var);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, errlen, "%s: cannot load %s: %s", cert_var, cert, ssl_err_text(e, sizeof(e)));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
            snprintf(err, errlen, "%s: key %s does not match the certificate %s", key_var, key,
                     cert);
            ERR_clear_error();
        } else {
            snprintf(err, errlen, "%s: cannot load %s: %s", key_var, key,
                     ssl_err_text(e, sizeof(e)));
        }
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "%s: key does not match the certificate %s", key_var, cert);
        ERR_clear_error();
        goto fail;
    }
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        snprintf(err, errlen, "%s: cannot load CA bundle %s: %s", ca_var, ca,
                 ssl_err_text(e, sizeof(e)));
        goto fail;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int hc_tls_ctx_new(const hc_config_t *cfg, hc_tls_ctx_t **out, char *err, size_t errlen)
{
    *out = NULL;
    hc_tls_ctx_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(err, errlen, "TLS: out of memory");
        return HC_EINVAL;
    }
    atomic_init(&t->refs, 1);
    const char *ca_client = cfg->tls_ca_client ? cfg->tls_ca_client : cfg->tls_ca_server;
    const char *ca_client_var = cfg->tls_ca_client ? "CACHE_TLS_CA_CLIENT" : "CACHE_TLS_CA_SERVER";
    int own_client = cfg->tls_client_cert != NULL && cfg->tls_client_key != NULL;
    t->server = build_ctx(1, cfg->tls_server_cert, "CACHE_TLS_SERVER_CERT", cfg->tls_server_key,
                          "CACHE_TLS_SERVER_KEY", ca_client, ca_client_var, err, errlen);
    if (t->server == NULL) {
        goto fail;
    }
    t->client = build_ctx(0, own_client ? cfg->tls_client_cert : cfg->tls_server_cert,
                          own_client ? "CACHE_TLS_CLIENT_CERT" : "CACHE_TLS_SERVER_CERT",
                          own_client ? cfg->tls_client_key : cfg->tls_server_key,
                          own_client ? "CACHE_TLS_CLIENT_KEY" : "CACHE_TLS_SERVER_KEY",
                          cfg->tls_ca_server, "CACHE_TLS_CA_SERVER", err, errlen);
    if (t->client == NULL) {
        goto fail;
    }
    if ((cfg->tls_client_validate_domain != NULL &&
         (t->validate_domain = strdup(cfg->tls_client_validate_domain)) == NULL) ||
        (cfg->tls_sni_overwrite != NULL && (t->sni = strdup(cfg->tls_sni_overwrite)) == NULL)) {
        snprintf(err, errlen, "TLS: out of memory");
        goto fail;
    }
    X509 *own = SSL_CTX_get0_certificate(t->server);
    if (own != NULL) {
        X509_NAME_oneline(X509_get_subject_name(own), t->subject, sizeof(t->subject));
    }
    *out = t;
    return 0;
fail:
    SSL_CTX_free(t->server);
    SSL_CTX_free(t->client);
    free(t->validate_domain);
    free(t->sni);
    free(t);
    return HC_EINVAL;
}

hc_tls_ctx_t *hc_tls_ctx_ref(hc_tls_ctx_t *ctx)
{
    if (ctx != NULL) {
        atomic_fetch_add(&ctx->refs, 1);
    }
    return ctx;
}

void hc_tls_ctx_unref(hc_tls_ctx_t *ctx)
{
    if (ctx == NULL || atomic_fetch_sub(&ctx->refs, 1) != 1) {
        return;
    }
    SSL_CTX_free(ctx->server);
    SSL_CTX_free(ctx->client);
    free(ctx->validate_domain);
    free(ctx->sni);
    free(ctx);
}

const char *hc_tls_ctx_subject(const hc_tls_ctx_t *ctx)
{
    return ctx->subject;
}

/* ---- certificate facts and reload validation ---- */

static int64_t asn1_epoch(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
        return 0;
    }
    return (int64_t)timegm(&tm);
}

void hc_tls_x509_info(const struct x509_st *cx, hc_tls_cert_info_t *info)
{
    memset(info, 0, sizeof(*info));
    X509 *x = (X509 *)cx; /* the OpenSSL getters below do not modify it */
    if (x == NULL) {
        return;
    }
    info->present = 1;
    X509_NAME_oneline(X509_get_subject_name(x), info->subject, sizeof(info->subject));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    snprintf(info->serial, sizeof(info->serial), "%s", hex ? hex : "");
    OPENSSL_free(hex);
    BN_free(bn);
    info->not_before = asn1_epoch(X509_get0_notBefore(x));
    info->not_after = asn1_epoch(X509_get0_notAfter(x));
    ERR_clear_error();
}

void hc_tls_ctx_info(const hc_tls_ctx_t *ctx, int client, hc_tls_cert_info_t *info)
{
    SSL_CTX *s = ctx == NULL ? NULL : client ? ctx->client : ctx->server;
    hc_tls_x509_info(s ? SSL_CTX_get0_certificate(s) : NULL, info);
}

static int names_host(X509 *x, const char *name)
{
    int ok = is_ip_literal(name) ? X509_check_ip_asc(x, name, 0) == 1
                                 : X509_check_host(x, name, strlen(name), NAME_FLAGS, NULL) == 1;
    ERR_clear_error();
    return ok;
}

/* One leaf of a new context: dates, chain to `store`, SAN. */
static int validate_leaf(SSL_CTX *own, X509_STORE *store, const char *purpose, const char *var,
                         const char *ca_var, const char *name, const char *name_from, int64_t now,
                         char *err, size_t errlen)
{
    X509 *leaf = SSL_CTX_get0_certificate(own);
    if (leaf == NULL) {
        snprintf(err, errlen, "%s: no certificate loaded", var);
        return HC_EINVAL;
    }
    time_t t = (time_t)now;
    if (X509_cmp_time(X509_get0_notAfter(leaf), &t) < 0) {
        snprintf(err, errlen, "%s: certificate expired (notAfter in the past)", var);
        return HC_EINVAL;
    }
    if (X509_cmp_time(X509_get0_notBefore(leaf), &t) > 0) {
        snprintf(err, errlen, "%s: certificate is not valid yet (notBefore in the future)", var);
        return HC_EINVAL;
    }
    STACK_OF(X509) *chain = NULL;
    SSL_CTX_get0_chain_certs(own, &chain);
    X509_STORE_CTX *sc = X509_STORE_CTX_new();
    int rv = 0;
    if (sc == NULL || X509_STORE_CTX_init(sc, store, leaf, chain) != 1) {
        snprintf(err, errlen, "%s: out of memory", var);
        rv = HC_EINVAL;
        goto out;
    }
    X509_STORE_CTX_set_default(sc, purpose);
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(sc), t);
    if (X509_verify_cert(sc) != 1) {
        snprintf(err, errlen, "%s: certificate does not chain to %s: %s", var, ca_var,
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(sc)));
        rv = HC_EINVAL;
        goto out;
    }
    if (!names_host(leaf, name)) {
        snprintf(err, errlen, "%s: certificate has no subjectAltName matching \"%s\" (%s)", var,
                 name, name_from);
        rv = HC_EINVAL;
    }
out:
    X509_STORE_CTX_free(sc);
    ERR_clear_error();
    return rv;
}

int hc_tls_ctx_validate(const hc_tls_ctx_t *ctx, const hc_config_t *cfg, int64_t now, char *err,
                        size_t errlen)
{
    if (cfg->self_index < 0 || (size_t)cfg->self_index >= cfg->hosts.n) {
        snprintf(err, errlen, "HA_HOSTS: this node is not identified");
        return HC_EINVAL;
    }
    const char *name =
        ctx->validate_domain ? ctx->validate_domain : cfg->hosts.v[cfg->self_index].host;
    const char *from =
        ctx->validate_domain ? "CACHE_TLS_CLIENT_VALIDATE_DOMAIN" : "this node's host in HA_HOSTS";
    int own_client = cfg->tls_client_cert != NULL && cfg->tls_client_key != NULL;
    const char *ca_client_var = cfg->tls_ca_client ? "CACHE_TLS_CA_CLIENT" : "CACHE_TLS_CA_SERVER";
    /* peers verify our server leaf with their CA_SERVER (our client context holds ours) and
     * our client leaf with their CA_CLIENT (our server context holds ours) */
    int rv =
        validate_leaf(ctx->server, SSL_CTX_get_cert_store(ctx->client), "ssl_server",
                      "CACHE_TLS_SERVER_CERT", "CACHE_TLS_CA_SERVER", name, from, now, err, errlen);
    if (rv == 0) {
        rv = validate_leaf(ctx->client, SSL_CTX_get_cert_store(ctx->server), "ssl_client",
                           own_client ? "CACHE_TLS_CLIENT_CERT" : "CACHE_TLS_SERVER_CERT",
                           ca_client_var, name, from, now, err, errlen);
    }
    return rv;
}

int hc_tls_conn_recheck(const hc_tls_conn_t *c, const hc_tls_ctx_t *ctx, char *err, size_t errlen)
{
    int server = SSL_is_server(c->ssl);
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    if (peer == NULL) {
        snprintf(err, errlen, "no peer certificate to check");
        return HC_EAUTH;
    }
    /* the acceptor verifies dialers with CA_CLIENT (server context), a dialer the acceptor with
     * CA_SERVER (client context) */
    X509_STORE *store = SSL_CTX_get_cert_store(server ? ctx->server : ctx->client);
    X509_STORE_CTX *sc = X509_STORE_CTX_new();
    int rv = 0;
    if (sc == NULL || X509_STORE_CTX_init(sc, store, peer, SSL_get_peer_cert_chain(c->ssl)) != 1) {
        snprintf(err, errlen, "out of memory");
        rv = HC_EAUTH;
    } else {
        X509_STORE_CTX_set_default(sc, server ? "ssl_client" : "ssl_server");
        if (X509_verify_cert(sc) != 1) {
            snprintf(err, errlen, "peer certificate no longer accepted: %s",
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(sc)));
            rv = HC_EAUTH;
        }
    }
    X509_STORE_CTX_free(sc);
    ERR_clear_error();
    return rv;
}

int hc_tls_conn_new(hc_tls_ctx_t *ctx, int dialer, const char *peer_host, hc_tls_conn_t **out)
{
    *out = NULL;
    hc_tls_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return HC_ENOMEM;
    }
    c->ssl = SSL_new(dialer ? ctx->client : ctx->server);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
        SSL_free(c->ssl);
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        free(c);
        ERR_clear_error();
        return HC_ENOMEM;
    }
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    c->ctx = hc_tls_ctx_ref(ctx);
    if (dialer) {
        const char *name = ctx->validate_domain ? ctx->validate_domain : peer_host;
        snprintf(c->expected, sizeof(c->expected), "%s", name ? name : "");
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        X509_VERIFY_PARAM_set_hostflags(vp, NAME_FLAGS);
        if (is_ip_literal(c->expected)) {
            X509_VERIFY_PARAM_set1_ip_asc(vp, c->expected);
        } else {
            X509_VERIFY_PARAM_set1_host(vp, c->expected, 0);
        }
        const char *sni = ctx->sni ? ctx->sni : peer_host;
        if (sni != NULL && sni[0] != '\0' && !is_ip_literal(sni)) {
            SSL_set_tlsext_host_name(c->ssl, sni);
        }
        SSL_set_connect_state(c->ssl);
    } else {
        SSL_set_accept_state(c->ssl);
    }
    ERR_clear_error();
    *out = c;
    return 0;
}

void hc_tls_conn_free(hc_tls_conn_t *c)
{
    if (c == NULL) {
        return;
    }
    SSL_free(c->ssl);
    hc_tls_ctx_unref(c->ctx);
    free(c);
}

int hc_tls_conn_feed(hc_tls_conn_t *c, const void *data, size_t len)
{
    size_t written = 0;
    if (len > 0 && (BIO_write_ex(c->rbio, data, len, &written) != 1 || written != len)) {
        ERR_clear_error();
        return HC_ENOMEM;
    }
    return 0;
}

size_t hc_tls_conn_pending(const hc_tls_conn_t *c)
{
    return BIO_ctrl_pending(c->wbio);
}

size_t hc_tls_conn_take(hc_tls_conn_t *c, void *buf, size_t cap)
{
    size_t got = 0;
    if (cap == 0 || BIO_read_ex(c->wbio, buf, cap, &got) != 1) {
        return 0;
    }
    return got;
}

/* Explains why a certificate failed verification on our side. */
static void verify_reason(hc_tls_conn_t *c, long v)
{
    switch (v) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        snprintf(c->err, sizeof(c->err),
                 "peer certificate is not signed by a trusted CA (unknown CA: %s)",
                 X509_verify_cert_error_string(v));
        break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        snprintf(c->err, sizeof(c->err), "peer certificate expired");
        break;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        snprintf(c->err, sizeof(c->err), "peer certificate is not yet valid");
        break;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        snprintf(c->err, sizeof(c->err),
                 "peer certificate does not match the expected name %s (no such SAN)", c->expected);
        break;
    default:
        snprintf(c->err, sizeof(c->err), "peer certificate rejected: %s",
                 X509_verify_cert_error_string(v));
    }
}

/* Fills c->err after a failed SSL call that returned `ret`. */
static void fail_reason(hc_tls_conn_t *c, int ret)
{
    int se = SSL_get_error(c->ssl, ret);
    long v = SSL_get_verify_result(c->ssl);
    unsigned long e = ERR_peek_last_error();
    int reason = ERR_GET_REASON(e);
    /* OpenSSL 3 may drop the peer certificate after a failed verify: the result stays */
    if (v != X509_V_OK) {
        verify_reason(c, v);
    } else if (e == 0) {
        snprintf(c->err, sizeof(c->err), "TLS connection failed (%s)",
                 se == SSL_ERROR_SYSCALL ? "unexpected end of stream" : "protocol error");
    } else {
        switch (reason) {
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
            snprintf(c->err, sizeof(c->err), "peer sent no client certificate");
            break;
        case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
            snprintf(c->err, sizeof(c->err), "peer requires a client certificate and got none");
            break;
        case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
            snprintf(c->err, sizeof(c->err),
                     "peer rejected our certificate: not signed by a CA it trusts (unknown CA)");
            break;
        case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
            snprintf(c->err, sizeof(c->err), "peer rejected our certificate: expired");
            break;
        case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
            snprintf(c->err, sizeof(c->err), "peer rejected our certificate (%s)",
                     ERR_reason_error_string(e));
            break;
        case SSL_R_WRONG_VERSION_NUMBER:
        case SSL_R_PACKET_LENGTH_TOO_LONG:
        case SSL_R_RECORD_LENGTH_MISMATCH:
        case SSL_R_HTTP_REQUEST:
            snprintf(c->err, sizeof(c->err),
                     "peer does not speak TLS (plaintext peer? check CACHE_TLS on both sides)");
            break;
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
            snprintf(c->err, sizeof(c->err), "peer does not speak TLS 1.3");
            break;
        default: {
            const char *rs = ERR_reason_error_string(e);
            snprintf(c->err, sizeof(c->err), "TLS error: %s", rs ? rs : "unknown");
        }
        }
    }
    ERR_clear_error();
}

static void note_peer(hc_tls_conn_t *c)
{
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    if (peer != NULL) {
        X509_NAME_oneline(X509_get_subject_name(peer), c->subject, sizeof(c->subject));
    }
}

int hc_tls_conn_handshake(hc_tls_conn_t *c)
{
    if (c->done) {
        return 1;
    }
    ERR_clear_error();
    int ret = SSL_do_handshake(c->ssl);
    if (ret == 1) {
        c->done = 1;
        note_peer(c);
        return 1;
    }
    int se = SSL_get_error(c->ssl, ret);
    if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    fail_reason(c, ret);
    return HC_EAUTH;
}

int hc_tls_conn_done(const hc_tls_conn_t *c)
{
    return c->done;
}

long hc_tls_conn_read(hc_tls_conn_t *c, void *buf, size_t cap)
{
    size_t got = 0;
    ERR_clear_error();
    int ret = SSL_read_ex(c->ssl, buf, cap, &got);
    if (ret == 1) {
        return (long)got;
    }
    int se = SSL_get_error(c->ssl, ret);
    if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    if (se == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return HC_EUNAVAILABLE;
    }
    fail_reason(c, ret);
    return HC_EAUTH;
}

int hc_tls_conn_write(hc_tls_conn_t *c, const void *buf, size_t len)
{
    if (len == 0) {
        return 0;
    }
    size_t written = 0;
    ERR_clear_error();
    int ret = SSL_write_ex(c->ssl, buf, len, &written);
    if (ret == 1 && written == len) {
        return 0;
    }
    fail_reason(c, ret);
    return HC_EAUTH;
}

int hc_tls_conn_check_name(hc_tls_conn_t *c, const char *host)
{
    const char *name = c->ctx->validate_domain ? c->ctx->validate_domain : host;
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    if (peer == NULL) {
        snprintf(c->err, sizeof(c->err), "peer sent no client certificate");
        return HC_EAUTH;
    }
    int ok = is_ip_literal(name) ? X509_check_ip_asc(peer, name, 0) == 1
                                 : X509_check_host(peer, name, strlen(name), NAME_FLAGS, NULL) == 1;
    ERR_clear_error();
    if (!ok) {
        snprintf(c->err, sizeof(c->err),
                 "peer certificate does not match the expected name %s (no such SAN)", name);
        return HC_EAUTH;
    }
    return 0;
}

const char *hc_tls_conn_error(const hc_tls_conn_t *c)
{
    return c->err;
}

const char *hc_tls_conn_peer_subject(const hc_tls_conn_t *c)
{
    return c->subject;
}

void hc_tls_conn_peer_info(const hc_tls_conn_t *c, hc_tls_cert_info_t *info)
{
    hc_tls_x509_info(c->done ? SSL_get0_peer_certificate(c->ssl) : NULL, info);
}

int hc_tls_conn_close_notify(hc_tls_conn_t *c)
{
    ERR_clear_error();
    int ret = SSL_shutdown(c->ssl); /* 0: sent, the peer's close_notify not seen (fine) */
    ERR_clear_error();
    return ret >= 0 ? 0 : HC_EAUTH;
}

int hc_tls_conn_exporter(hc_tls_conn_t *c, uint8_t out[HC_TLS_EXPORTER_BYTES])
{
    static const char label[] = "EXPORTER-hacache-peer-auth-v1";
    if (!c->done || SSL_export_keying_material(c->ssl, out, HC_TLS_EXPORTER_BYTES, label,
                                               sizeof(label) - 1, NULL, 0, 0) != 1) {
        ERR_clear_error();
        return HC_EINVAL;
    }
    return 0;
}

int hc_tls_looks_like_tls(uint8_t b)
{
    return b == 0x16;
}
