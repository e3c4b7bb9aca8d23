/* http.h: the HTTP/1.1 + HTTP/2 API adapter (h2o 2.2.5 on libuv): routing, token auth, input
 * bounds, JSON errors, metrics, graceful drain; and the same adapter as the health listener
 * (CACHE_HEALTH_ADDR: probes and metrics only). */
#ifndef HC_HTTP_H
#define HC_HTTP_H

#include <uv.h>

#include "admit.h"
#include "auth.h"
#include "config.h"
#include "creds.h"
#include "http_tls.h"
#include "metrics.h"
#include "node.h"

typedef struct hc_http hc_http_t;

/* What the API server serves with. Everything is borrowed and must outlive the server (creds
 * until hc_http_drop_creds). */
typedef struct {
    const hc_config_t *cfg;
    hc_node_t *node;
    hc_auth_t *auth;       /* the API tokens (shared with RESP; the credential reload swaps them) */
    hc_http_tls_t *tls;    /* the listener's TLS context, or NULL for plain HTTP */
    hc_metrics_t *metrics; /* request counters (shared with RESP), rendered by /metrics */
    /* credential reloads: POST /v1/admin/tls/reload, the "tls" object of /v1/status and the
     * reload metrics; NULL when no watcher runs (the admin call then reloads only the HTTP
     * certificate) */
    hc_creds_t *creds;
    /* Connection limits (required): a connection is pending until its first complete request,
     * then admitted if there is room; one that is not gets 503 (max_clients) for everything but
     * /healthz and /readyz (health listener: everything is answered), and is closed after the
     * answer. */
    hc_admit_t *admit;
    /* every listener's gate, this one's included, rendered by /metrics (with the peer port's);
     * NULL entries are skipped, at most HC_HTTP_MAX_GATES */
    const hc_admit_t *const *gates;
    size_t n_gates;
    /* 1: the health listener on CACHE_HEALTH_ADDR instead of the API on CACHE_HTTP_ADDR: plain
     * HTTP (tls and auth unused), GET/HEAD /healthz, /readyz and /metrics without a token, 404
     * for every other path, request bodies over 1 KiB refused by h2o */
    int health;
    /* health listener only: the API listener whose open connections /metrics reports, or NULL
     * (the HTTP API is off); borrowed */
    const hc_http_t *api;
} hc_http_opts_t;

#define HC_HTTP_MAX_GATES 4

/* Binds CACHE_HTTP_ADDR (the health listener: CACHE_HEALTH_ADDR) and starts serving on `loop`.
 * Every request's headers and body (and an idle keep-alive connection's next request) must arrive
 * within CACHE_UNAUTH_TIMEOUT_MS. 0, or HC_ENOMEM / HC_EUNAVAILABLE (bind or listen failed) /
 * HC_EINVAL (unresolvable address) after logging one line with the reason; when *out is set on
 * error, close and free it as usual. */
int hc_http_start(uv_loop_t *loop, const hc_http_opts_t *opts, hc_http_t **out);

/* Stops accepting, lets in-flight requests finish and asks keep-alive connections to close
 * (HTTP/2 GOAWAY). cb runs once every connection is gone, or after timeout_ms at the latest
 * (remaining connections are then abandoned to process exit, and counted in the log). */
void hc_http_shutdown(hc_http_t *h, uint64_t timeout_ms, void (*cb)(void *ud), void *ud);

/* Stops using the credential watcher (before it closes): later requests see creds = NULL. */
void hc_http_drop_creds(hc_http_t *h);

/* Disposes the h2o context and closes the remaining handles (after hc_http_shutdown's cb).
 * The caller then runs the loop until it has no more handles and calls hc_http_free. */
void hc_http_close(hc_http_t *h);
void hc_http_free(hc_http_t *h);

/* Frees what h2o keeps recycled for the calling thread (socket buffers, memory-pool chunks), so
 * a thread that served HTTP can end without leaking it (an embedded node's own thread, after its
 * loop closed). Not for HTTP/2 write buffers: h2o keeps those in a bin it does not expose. */
void hc_http_thread_cleanup(void);
/* Number of open API connections. */
size_t hc_http_open_connections(const hc_http_t *h);

#endif
