/* http.h: the HTTP/1.1 + HTTP/2 API adapter (h2o 2.2.5 on libuv): routing, token auth, input
 * bounds, JSON errors, metrics, graceful drain. */
#ifndef HC_HTTP_H
#define HC_HTTP_H

#include <uv.h>

#include "config.h"
#include "metrics.h"
#include "node.h"
#include "tls.h"

typedef struct hc_http hc_http_t;

/* Binds CACHE_HTTP_ADDR and starts serving on `loop`. cfg and node are borrowed and must outlive
 * the server. Returns 0, or HC_EINVAL (bad address / TLS material) / HC_EUNAVAILABLE (bind or
 * listen failed) after logging one line with the reason. */
int hc_http_start(uv_loop_t *loop, const hc_config_t *cfg, hc_node_t *node, hc_http_t **out);

/* Stops accepting, lets in-flight requests finish and asks keep-alive connections to close
 * (HTTP/2 GOAWAY). cb runs once every connection is gone, or after timeout_ms at the latest
 * (remaining connections are then abandoned to process exit, and counted in the log). */
void hc_http_shutdown(hc_http_t *h, uint64_t timeout_ms, void (*cb)(void *ud), void *ud);

/* Disposes the h2o context and closes the remaining handles (after hc_http_shutdown's cb).
 * The caller then runs the loop until it has no more handles and calls hc_http_free. */
void hc_http_close(hc_http_t *h);
void hc_http_free(hc_http_t *h);

/* Number of open API connections. */
size_t hc_http_open_connections(const hc_http_t *h);

/* Re-reads CACHE_HTTP_TLS_CERT/KEY into a new TLS context and swaps it in for new connections;
 * the old one stays on error. 0, HC_EINVAL (bad material, logged) or HC_ENOTFOUND (no HTTP TLS
 * configured). */
int hc_http_reload_tls(hc_http_t *h);

/* The credential reload path (creds.h) uses these. hc_http_load_tls builds a context from
 * CACHE_HTTP_TLS_CERT/KEY, checks it (key matches, valid at `now`) and swaps it in for new
 * connections; nothing is logged. 0, HC_EINVAL with the reason in err (the old context stays),
 * HC_ENOTFOUND when HTTP TLS is not configured. */
int hc_http_load_tls(hc_http_t *h, int64_t now, char *err, size_t errlen);
/* The certificate new connections get (present = 0 without TLS). */
void hc_http_tls_info(const hc_http_t *h, hc_tls_cert_info_t *info);
/* Replaces the accepted API tokens (copied as hashes; n may be 0: no token required). 0 or
 * HC_ENOMEM (the old ones stay). */
int hc_http_set_api_tokens(hc_http_t *h, char *const *tokens, size_t n);
/* 1 when the API requires a token (at least one is configured; follows reloads). */
int hc_http_auth_required(const hc_http_t *h);
/* 1 when token (len bytes) is one of the accepted API tokens, compared in constant time with
 * every one (their BLAKE2b hashes), else 0. Also used by the RESP adapter's AUTH. */
int hc_http_check_token(const hc_http_t *h, const void *token, size_t len);
/* The request counters of the API; the RESP adapter records its commands here too. */
hc_metrics_t *hc_http_metrics(hc_http_t *h);

/* Routes /v1/status "tls", the reload metrics and POST /v1/admin/tls/reload through the
 * credential watcher (NULL detaches it, e.g. before it closes). */
struct hc_creds;
void hc_http_set_creds(hc_http_t *h, struct hc_creds *c);

#endif
