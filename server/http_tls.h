/* http_tls.h: the TLS context of the HTTP listener (CACHE_HTTP_TLS_CERT/KEY): built and checked at
 * start, rebuilt and swapped in for new connections on a reload. */
#ifndef HC_HTTP_TLS_H
#define HC_HTTP_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "tls.h"
#include "util.h"

typedef struct hc_http_tls hc_http_tls_t;

/* Builds the context when CACHE_HTTP_TLS_CERT/KEY are set and logs "http tls loaded" (subject,
 * serial, expiry); without them the object holds no context and the API is plain HTTP. cfg is
 * borrowed and outlives the object; the caller owns *out (hc_http_tls_free). 0, HC_ENOMEM, or
 * HC_EINVAL after logging "http tls material rejected" with the reason (*out is then NULL). */
int hc_http_tls_new(const hc_config_t *cfg, hc_http_tls_t **out);

/* Drops this object's reference to the context (connections keep theirs). NULL is ignored. */
void hc_http_tls_free(hc_http_tls_t *t);

/* The OpenSSL context (SSL_CTX) to hand a newly accepted connection, or NULL for plain HTTP.
 * Borrowed: valid until the next load; a connection takes its own reference when it starts its
 * handshake, so a later swap leaves it alone. */
struct ssl_ctx_st;
struct ssl_ctx_st *hc_http_tls_ctx(const hc_http_tls_t *t);

/* Builds a context from CACHE_HTTP_TLS_CERT/KEY, checks it (key matches, valid at `now`) and
 * swaps it in for new connections; nothing is logged (the credential reload path logs).
 * 0, HC_EINVAL with the reason in err (the old context stays), HC_ENOTFOUND when HTTP TLS is not
 * configured. */
int hc_http_tls_load(hc_http_tls_t *t, int64_t now, char *err, size_t errlen);

/* hc_http_tls_load at the current time, with its own log line ("http tls reloaded" or "http tls
 * material rejected"): the admin reload when no credential watcher runs. Same return values. */
int hc_http_tls_reload(hc_http_tls_t *t);

/* The certificate new connections get (present = 0 without TLS). */
void hc_http_tls_info(const hc_http_tls_t *t, hc_tls_cert_info_t *info);

/* The "tls" object of /v1/status when no credential watcher runs: {"http":{"subject",
 * "not_after"}}, or null without TLS. */
void hc_http_tls_status_json(const hc_http_tls_t *t, hc_buf_t *b);

#endif
