/* config_validate.c: hc_config_validate, the semantic checks hacached --check-config runs, and
 * the token, certificate and key files they read (also hc_config_read_tokens for reloads). */
#include "config_int.h"

#include "hacache.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define TOKEN_MIN_LEN  16          /* bytes, peer and API tokens alike */
#define TOKEN_FILE_MAX (64 * 1024) /* a token file is a handful of lines */
#define PEM_FILE_MAX   (1 << 20)   /* certificate chains and CA bundles */

/* ---------------------------------------------------------------------------------------- */
/* files: tokens, certificates, keys */

/* Reads at most `max` bytes of a regular file into a NUL-terminated buffer (caller frees).
 * NULL with the reason in `why` when the file is missing, unreadable or too large. */
static char *read_small_file(const char *path, size_t max, size_t *len, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) != 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
        goto fail;
    }
    buf = malloc(max + 1);
    if (buf == NULL) {
        snprintf(why, whylen, "out of memory");
        goto fail;
    }
    size_t n = 0;
    for (;;) {
        ssize_t got = read(fd, buf + n, max + 1 - n);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            snprintf(why, whylen, "%s", strerror(errno));
            goto fail;
        }
        if (got == 0) {
            break;
        }
        n += (size_t)got;
        if (n > max) {
            snprintf(why, whylen, "larger than %zu bytes", max);
            goto fail;
        }
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;

fail:
    free(buf);
    close(fd);
    return NULL;
}

/* API tokens travel in "Authorization: Bearer" and RESP AUTH: no blanks or control bytes. */
static int token_has_bad_byte(const char *t, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (ch <= 0x20 || ch == 0x7f) {
            return 1;
        }
    }
    return 0;
}

/* Reads a token file (one token per line; blank lines and a trailing \r ignored) and, when every
 * line is acceptable, replaces the token list with its lines. */
static void read_token_file(const char *var, const char *path, int api, char ***tokens, size_t *n,
                            report_t *r)
{
    char why[128];
    size_t len;
    char *buf = read_small_file(path, TOKEN_FILE_MAX, &len, why, sizeof(why));
    if (buf == NULL) {
        config__report(r, "%s: cannot read %s: %s", var, path, why);
        return;
    }
    size_t n_lines = 1;
    for (size_t i = 0; i < len; i++) {
        n_lines += buf[i] == '\n';
    }
    char **v = calloc(n_lines, sizeof(*v));
    size_t nv = 0;
    int bad = v == NULL;
    if (v == NULL) {
        config__report(r, "%s: out of memory", var);
    }
    char *line = buf;
    for (size_t lineno = 1; !bad && line < buf + len; lineno++) {
        char *nl = memchr(line, '\n', (size_t)(buf + len - line));
        char *end = nl ? nl : buf + len;
        char *next = nl ? nl + 1 : buf + len;
        if (end > line && end[-1] == '\r') {
            end--;
        }
        int blank = 1;
        for (char *p = line; p < end; p++) {
            blank &= isspace((unsigned char)*p) != 0;
        }
        size_t tl = (size_t)(end - line);
        if (!blank) {
            if (tl < TOKEN_MIN_LEN) {
                config__report(r, "%s: token on line %zu of %s is %zu bytes, at least %d required",
                               var, lineno, path, tl, TOKEN_MIN_LEN);
                bad = 1;
            } else if (memchr(line, '\0', tl) != NULL || (api && token_has_bad_byte(line, tl))) {
                config__report(
                    r, "%s: token on line %zu of %s contains whitespace or a control character",
                    var, lineno, path);
                bad = 1;
            } else if ((v[nv++] = strndup(line, tl)) == NULL) {
                config__report(r, "%s: out of memory", var);
                bad = 1;
            }
        }
        line = next;
    }
    if (!bad && nv == 0) {
        config__report(r, "%s: %s holds no token (one token per line)", var, path);
        bad = 1;
    }
    if (bad) {
        config__tokens_free(&v, &nv);
    } else {
        config__tokens_free(tokens, n);
        *tokens = v;
        *n = nv;
    }
    OPENSSL_cleanse(buf, len);
    free(buf);
}

int hc_config_read_tokens(const char *var, const char *path, int api, char ***tokens, size_t *n,
                          char *err, size_t errlen)
{
    hc_config_errors_t errs;
    errs.n = 0;
    report_t r = {.errs = &errs};
    char **v = NULL;
    size_t nv = 0;
    read_token_file(var, path, api, &v, &nv, &r);
    if (r.n > 0 || nv == 0) {
        config__tokens_free(&v, &nv);
        snprintf(err, errlen, "%s", errs.n > 0 ? errs.line[0] : "no token");
        return HC_EINVAL;
    }
    *tokens = v;
    *n = nv;
    return 0;
}

void hc_config_tokens_free(char **tokens, size_t n)
{
    for (size_t i = 0; tokens != NULL && i < n; i++) {
        OPENSSL_cleanse(tokens[i], strlen(tokens[i]));
    }
    config__tokens_free(&tokens, &n);
}

/* Peer or API tokens: read the file form, then check every token given inline. */
static void check_tokens(const knob_t *k_inline, const knob_t *k_file, hc_config_t *c, int api,
                         report_t *r)
{
    char ***tokens = FIELD(c, k_inline, char **);
    size_t *n = (size_t *)(void *)((char *)c + k_inline->off_n);
    const char *file = *FIELD(c, k_file, char *);
    if (file != NULL) {
        read_token_file(k_file->env, file, api, tokens, n, r);
        return;
    }
    for (size_t i = 0; i < *n; i++) {
        size_t tl = strlen((*tokens)[i]);
        if (tl < TOKEN_MIN_LEN) {
            config__report(r, "%s: token is %zu bytes, at least %d required", k_inline->env, tl,
                           TOKEN_MIN_LEN);
        } else if (api && token_has_bad_byte((*tokens)[i], tl)) {
            config__report(r, "%s: token contains whitespace or a control character",
                           k_inline->env);
        }
    }
}

/* Refuses to prompt for a passphrase: a daemon has no terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static BIO *bio_of_file(const char *var, const char *path, report_t *r, char **buf)
{
    char why[128];
    size_t len;
    *buf = read_small_file(path, PEM_FILE_MAX, &len, why, sizeof(why));
    if (*buf == NULL) {
        config__report(r, "%s: cannot read %s: %s", var, path, why);
        return NULL;
    }
    BIO *bio = BIO_new_mem_buf(*buf, (int)len);
    if (bio == NULL) {
        config__report(r, "%s: out of memory", var);
        free(*buf);
        *buf = NULL;
    }
    return bio;
}

/* Every PEM certificate of a file, in order; NULL after reporting why there is none. */
static STACK_OF(X509) * load_certs(const char *var, const char *path, report_t *r)
{
    char *buf;
    BIO *bio = bio_of_file(var, path, r, &buf);
    if (bio == NULL) {
        return NULL;
    }
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509 *x;
    ERR_clear_error();
    while (certs != NULL && (x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) != NULL) {
        if (sk_X509_push(certs, x) <= 0) {
            X509_free(x);
            break;
        }
    }
    /* running out of input ends the loop with "no start line"; anything else is damage */
    unsigned long e = ERR_peek_last_error();
    int damaged =
        e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE);
    ERR_clear_error();
    BIO_free(bio);
    free(buf);
    if (certs == NULL || sk_X509_num(certs) == 0) {
        config__report(r, "%s: %s holds no PEM certificate", var, path);
        sk_X509_pop_free(certs, X509_free);
        return NULL;
    }
    if (damaged) {
        config__report(r, "%s: %s has a malformed PEM certificate after certificate %d", var, path,
                       sk_X509_num(certs));
        sk_X509_pop_free(certs, X509_free);
        return NULL;
    }
    return certs;
}

static EVP_PKEY *load_key(const char *var, const char *path, report_t *r)
{
    char *buf;
    BIO *bio = bio_of_file(var, path, r, &buf);
    if (bio == NULL) {
        return NULL;
    }
    ERR_clear_error();
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    ERR_clear_error();
    BIO_free(bio);
    OPENSSL_cleanse(buf, strlen(buf));
    free(buf);
    if (key == NULL) {
        config__report(r, "%s: %s is not a PEM private key (encrypted keys are not supported)", var,
                       path);
    }
    return key;
}

static void format_asn1_time(const ASN1_TIME *t, char *out, size_t outlen)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
        strftime(out, outlen, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
        snprintf(out, outlen, "(unreadable date)");
    }
}

/* Checks a certificate/key pair: each file that is set is readable and PEM, the key belongs to
 * the leaf, the leaf is valid at `now`. Either path may be NULL (its absence is reported by the
 * caller). Returns the chain (caller frees) or NULL when there is no usable certificate. */
static STACK_OF(X509) * check_pair(const char *cert_var, const char *cert, const char *key_var,
                                   const char *key, int64_t now, report_t *r)
{
    STACK_OF(X509) *chain = cert ? load_certs(cert_var, cert, r) : NULL;
    EVP_PKEY *pkey = key ? load_key(key_var, key, r) : NULL;
    if (chain != NULL) {
        X509 *leaf = sk_X509_value(chain, 0);
        time_t t = (time_t)now;
        char date[64];
        if (pkey != NULL && X509_check_private_key(leaf, pkey) != 1) {
            config__report(r, "%s: %s does not match the certificate in %s %s", key_var, key,
                           cert_var, cert);
        }
        if (X509_cmp_time(X509_get0_notAfter(leaf), &t) < 0) {
            format_asn1_time(X509_get0_notAfter(leaf), date, sizeof(date));
            config__report(r, "%s: %s expired on %s (notAfter)", cert_var, cert, date);
        } else if (X509_cmp_time(X509_get0_notBefore(leaf), &t) > 0) {
            format_asn1_time(X509_get0_notBefore(leaf), date, sizeof(date));
            config__report(r, "%s: %s is not valid before %s (notBefore)", cert_var, cert, date);
        }
    }
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    return chain;
}

/* The leaf must chain to the CA bundle at `now` (the peers verify it against the same bundle).
 * The leaf's own dates were reported by check_pair already. */
static void check_chains_to(const char *cert_var, const char *cert, STACK_OF(X509) * chain,
                            const char *ca_var, const char *ca, STACK_OF(X509) * cas, int64_t now,
                            report_t *r)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    if (store == NULL || ctx == NULL || untrusted == NULL) {
        config__report(r, "%s: out of memory", cert_var);
        goto out;
    }
    for (int i = 0; i < sk_X509_num(cas); i++) {
        X509_STORE_add_cert(store, sk_X509_value(cas, i));
    }
    for (int i = 1; i < sk_X509_num(chain); i++) {
        sk_X509_push(untrusted, sk_X509_value(chain, i));
    }
    if (X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0), untrusted) != 1) {
        config__report(r, "%s: out of memory", cert_var);
        goto out;
    }
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, (time_t)now);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
    if (X509_verify_cert(ctx) != 1) {
        int e = X509_STORE_CTX_get_error(ctx);
        int depth = X509_STORE_CTX_get_error_depth(ctx);
        int dates = e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID;
        if (!(dates && depth == 0)) {
            config__report(r, "%s: %s does not verify against %s %s: %s", cert_var, cert, ca_var,
                           ca, X509_verify_cert_error_string(e));
        }
    }
out:
    ERR_clear_error();
    sk_X509_free(untrusted); /* borrowed certificates: free the stack only */
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
}

/* Peers dialing this node check its certificate for this name (SPEC: in the SAN). */
static void check_san(const char *cert, X509 *leaf, const char *name, int from_knob, report_t *r)
{
    int ok;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1) {
        ok = X509_check_ip_asc(leaf, name, 0) == 1;
    } else {
        ok = X509_check_host(leaf, name, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) == 1;
    }
    ERR_clear_error();
    if (!ok) {
        config__report(
            r,
            "CACHE_TLS_SERVER_CERT: %s has no subjectAltName matching \"%s\", which peers "
            "verify (%s)",
            cert, name,
            from_knob ? "from CACHE_TLS_CLIENT_VALIDATE_DOMAIN"
                      : "this node's host in HA_HOSTS; or set CACHE_TLS_CLIENT_VALIDATE_DOMAIN");
    }
}

static int str_eq(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The peer TLS material of cluster mode with CACHE_TLS=true. */
static void check_peer_tls(const hc_config_t *c, int64_t now, report_t *r)
{
    static const char *const need[] = {"CACHE_TLS_SERVER_CERT", "CACHE_TLS_SERVER_KEY",
                                       "CACHE_TLS_CA_SERVER"};
    const char *have[] = {c->tls_server_cert, c->tls_server_key, c->tls_ca_server};
    for (size_t i = 0; i < 3; i++) {
        if (have[i] == NULL) {
            config__report(
                r, "%s: required when HA_MODE=true and CACHE_TLS=true (or set CACHE_TLS=false)",
                need[i]);
        }
    }
    STACK_OF(X509) *server = NULL, *client = NULL, *ca_s = NULL, *ca_c = NULL;
    server = check_pair("CACHE_TLS_SERVER_CERT", c->tls_server_cert, "CACHE_TLS_SERVER_KEY",
                        c->tls_server_key, now, r);
    /* the client pair defaults to the server pair (load copies it): check it only when it is
     * another one, so a problem of the server pair is reported once */
    const char *ccert = c->tls_client_cert, *ckey = c->tls_client_key;
    int client_is_server = (ccert == NULL && ckey == NULL) ||
                           (str_eq(ccert, c->tls_server_cert) && str_eq(ckey, c->tls_server_key));
    if (!client_is_server) {
        if ((ccert == NULL) != (ckey == NULL)) {
            config__report(r, "%s: set together with %s",
                           ccert ? "CACHE_TLS_CLIENT_KEY" : "CACHE_TLS_CLIENT_CERT",
                           ccert ? "CACHE_TLS_CLIENT_CERT" : "CACHE_TLS_CLIENT_KEY");
        }
        client = check_pair("CACHE_TLS_CLIENT_CERT", ccert, "CACHE_TLS_CLIENT_KEY", ckey, now, r);
    }
    if (c->tls_ca_server != NULL) {
        ca_s = load_certs("CACHE_TLS_CA_SERVER", c->tls_ca_server, r);
    }
    const char *ca_client = c->tls_ca_client ? c->tls_ca_client : c->tls_ca_server;
    const char *ca_client_var = c->tls_ca_client ? "CACHE_TLS_CA_CLIENT" : "CACHE_TLS_CA_SERVER";
    int ca_same =
        ca_client == NULL || c->tls_ca_server == NULL || strcmp(ca_client, c->tls_ca_server) == 0;
    if (!ca_same) {
        ca_c = load_certs("CACHE_TLS_CA_CLIENT", ca_client, r);
    }

    /* peers verify our server certificate with their CA_SERVER, our client one with CA_CLIENT */
    if (server != NULL && ca_s != NULL) {
        check_chains_to("CACHE_TLS_SERVER_CERT", c->tls_server_cert, server, "CACHE_TLS_CA_SERVER",
                        c->tls_ca_server, ca_s, now, r);
    }
    STACK_OF(X509) *client_chain = client_is_server ? server : client;
    STACK_OF(X509) *client_ca = ca_same ? ca_s : ca_c;
    if (client_chain != NULL && client_ca != NULL) {
        check_chains_to(client_is_server ? "CACHE_TLS_SERVER_CERT" : "CACHE_TLS_CLIENT_CERT",
                        client_is_server ? c->tls_server_cert : ccert, client_chain,
                        ca_same ? "CACHE_TLS_CA_SERVER" : ca_client_var,
                        ca_same ? c->tls_ca_server : ca_client, client_ca, now, r);
    }
    if (server != NULL && c->self_index >= 0 && c->tls_server_key != NULL) {
        const char *domain = c->tls_client_validate_domain;
        check_san(c->tls_server_cert, sk_X509_value(server, 0),
                  domain ? domain : c->hosts.v[c->self_index].host, domain != NULL, r);
    }
    sk_X509_pop_free(server, X509_free);
    sk_X509_pop_free(client, X509_free);
    sk_X509_pop_free(ca_s, X509_free);
    sk_X509_pop_free(ca_c, X509_free);
}

/* ---------------------------------------------------------------------------------------- */
/* validate */

static int host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0) {
        return 1;
    }
    if (inet_pton(AF_INET, host, &a4) == 1) {
        return (ntohl(a4.s_addr) >> 24) == 127;
    }
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6)) {
            return 1;
        }
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return 0;
}

static int host_is_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || strcmp(host, "[::]") == 0;
}

typedef struct {
    int set, ok;
    char host[HOST_MAX_LEN + 8];
    uint16_t port;
} addr_t;

static addr_t check_addr(const char *var, const char *value, report_t *r)
{
    addr_t a = {.set = value != NULL};
    if (!a.set) {
        return a;
    }
    char why[128];
    int v6;
    a.ok = config__split_hostport(value, strlen(value), a.host, sizeof(a.host), &a.port, &v6, why,
                                  sizeof(why)) == 0;
    if (!a.ok) {
        config__report(r, "%s: \"%.*s\" %s", var, VALUE_TEXT_MAX, value, why);
    }
    return a;
}

/* Both or neither of an API certificate and key, then the pair like the peer pair. */
static void check_http_tls(const hc_config_t *c, int64_t now, report_t *r)
{
    if (c->http_tls_cert == NULL && c->http_tls_key == NULL) {
        return;
    }
    if (c->http_tls_cert == NULL || c->http_tls_key == NULL) {
        config__report(r, "%s: set together with %s",
                       c->http_tls_cert ? "CACHE_HTTP_TLS_KEY" : "CACHE_HTTP_TLS_CERT",
                       c->http_tls_cert ? "CACHE_HTTP_TLS_CERT" : "CACHE_HTTP_TLS_KEY");
    }
    STACK_OF(X509) *chain = check_pair("CACHE_HTTP_TLS_CERT", c->http_tls_cert,
                                       "CACHE_HTTP_TLS_KEY", c->http_tls_key, now, r);
    sk_X509_pop_free(chain, X509_free);
}

static void check_cluster(hc_config_t *c, int64_t now, report_t *r, const addr_t *http,
                          const addr_t *resp, const addr_t *health)
{
    char err[512];
    if (c->ha_hosts_raw == NULL) {
        config__report(
            r, "HA_HOSTS: required when HA_MODE=true (host:port of every node, comma-separated)");
    } else if (c->hosts.n > 0) {
        const char *name = c->hostname_overwrite ? c->hostname_overwrite : c->hostname;
        const char *var = c->hostname_overwrite ? "HOSTNAME_OVERWRITE" : "HOSTNAME";
        const char *from =
            c->hostname_overwrite ? "HOSTNAME_OVERWRITE" : "HOSTNAME or gethostname()";
        if (name == NULL) {
            config__report(r, "HOSTNAME: unknown (HOSTNAME unset and gethostname() failed); set "
                              "HOSTNAME_OVERWRITE to this node's HA_HOSTS entry");
        } else {
            int idx = config__find_self(&c->hosts, name, var, from, err, sizeof(err));
            if (idx >= 0) {
                c->self_index = idx;
            } else {
                config__report(r, "%s", err);
            }
        }
        for (size_t i = 0; i < c->hosts.n; i++) {
            const hc_host_t *h = &c->hosts.v[i];
            char hn[300];
            hc_host_format(h, hn, sizeof(hn));
            if (strcmp(h->scheme, "https") == 0 && !c->tls) {
                config__report(r,
                               "HA_HOSTS: entry %zu \"https://%s\" needs CACHE_TLS=true (or write "
                               "http:// or no scheme)",
                               i + 1, hn);
            } else if (strcmp(h->scheme, "http") == 0 && c->tls) {
                config__report(
                    r,
                    "HA_HOSTS: entry %zu \"http://%s\" disagrees with CACHE_TLS=true (write "
                    "https:// or no scheme, or set CACHE_TLS=false)",
                    i + 1, hn);
            }
        }
    }

    check_tokens(config__knob_by_field(F(auth_tokens)), config__knob_by_field(F(auth_token_file)),
                 c, 0, r);
    if (c->n_auth_tokens == 0 && c->auth_token_file == NULL) {
        config__report(r,
                       "CACHE_AUTH_TOKEN: required when HA_MODE=true (at least %d bytes; or "
                       "CACHE_AUTH_TOKEN_FILE)",
                       TOKEN_MIN_LEN);
    }

    if (c->tls) {
        check_peer_tls(c, now, r);
    }

    /* the peer port of this node must not be taken by an API or the health listener */
    if (c->self_index >= 0) {
        const hc_host_t *me = &c->hosts.v[c->self_index];
        const addr_t *apis[] = {http, resp, health};
        static const char *const vars[] = {"CACHE_HTTP_ADDR", "CACHE_RESP_ADDR",
                                           "CACHE_HEALTH_ADDR"};
        for (size_t i = 0; i < 3; i++) {
            if (apis[i]->ok && apis[i]->port == me->port && c->listen_addr != NULL &&
                (host_is_wildcard(c->listen_addr) || host_is_wildcard(apis[i]->host) ||
                 strcasecmp(c->listen_addr, apis[i]->host) == 0)) {
                config__report(r, "%s: port %u is also this node's peer port in HA_HOSTS", vars[i],
                               (unsigned)me->port);
            }
        }
    }
}

int hc_config_validate(hc_config_t *c, int64_t now, hc_config_errors_t *errs)
{
    report_t r = {.errs = errs};
    c->self_index = -1;

    config__check_ranges(c, &r);

    if (c->listen_addr == NULL) {
        config__report(&r, "CACHE_LISTEN_ADDR: not set");
    } else {
        struct in_addr a4;
        struct in6_addr a6;
        if (inet_pton(AF_INET, c->listen_addr, &a4) != 1 &&
            inet_pton(AF_INET6, c->listen_addr, &a6) != 1) {
            config__report(&r, "CACHE_LISTEN_ADDR: \"%.*s\" is not an IPv4 or IPv6 address",
                           VALUE_TEXT_MAX, c->listen_addr);
        }
    }

    /* client API: addresses, then the token rule off loopback */
    addr_t http = check_addr("CACHE_HTTP_ADDR", c->http_addr, &r);
    addr_t resp = check_addr("CACHE_RESP_ADDR", c->resp_addr, &r);
    if (!http.set) {
        config__report(&r, "CACHE_HTTP_ADDR: not set");
    }
    if (http.ok && resp.ok && http.port == resp.port && strcasecmp(http.host, resp.host) == 0) {
        config__report(&r, "CACHE_RESP_ADDR: same address as CACHE_HTTP_ADDR");
    }
    /* the health listener needs no token (it serves nothing but probes and metrics), but a
     * port of its own */
    addr_t health = check_addr("CACHE_HEALTH_ADDR", c->health_addr, &r);
    const addr_t *others[] = {&http, &resp};
    static const char *const other_vars[] = {"CACHE_HTTP_ADDR", "CACHE_RESP_ADDR"};
    for (size_t i = 0; health.ok && i < 2; i++) {
        if (others[i]->ok && others[i]->port == health.port &&
            (strcasecmp(others[i]->host, health.host) == 0 || host_is_wildcard(health.host) ||
             host_is_wildcard(others[i]->host))) {
            config__report(&r, "CACHE_HEALTH_ADDR: port %u is also %s's", (unsigned)health.port,
                           other_vars[i]);
        }
    }
    check_tokens(config__knob_by_field(F(api_tokens)), config__knob_by_field(F(api_token_file)), c,
                 1, &r);
    if (c->n_api_tokens == 0 && c->api_token_file == NULL && !c->api_insecure) {
        const addr_t *apis[] = {&http, &resp};
        static const char *const vars[] = {"CACHE_HTTP_ADDR", "CACHE_RESP_ADDR"};
        for (size_t i = 0; i < 2; i++) {
            if (apis[i]->ok && !host_is_loopback(apis[i]->host)) {
                config__report(&r,
                               "CACHE_API_TOKEN: required because %s %s:%u is not loopback (or set "
                               "CACHE_API_INSECURE=true)",
                               vars[i], apis[i]->host, (unsigned)apis[i]->port);
            }
        }
    }
    check_http_tls(c, now, &r);

    /* HA_HOSTS is checked whenever it is set, even standalone */
    if (c->ha_hosts_raw != NULL && c->hosts.n == 0) {
        char err[512];
        if (hc_hosts_parse(c->ha_hosts_raw, &c->hosts, err, sizeof(err)) != 0) {
            config__report(&r, "%s", err);
        }
    }
    if (c->ha_mode) {
        check_cluster(c, now, &r, &http, &resp, &health);
    }
    return r.n ? HC_EINVAL : 0;
}
