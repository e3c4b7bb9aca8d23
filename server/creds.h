/* creds.h: credential rotation without restart (issue 5): watches the peer certificate, key and
 * CA bundle files, the HTTP certificate and key, and the peer and API token files, and reloads
 * them through one path, whatever asked for it: a file change (libuv fs events on the directories
 * that hold them, plus a content check every second, because Kubernetes swaps a "..data" symlink
 * that a watch on the file itself misses), SIGHUP, or POST /v1/admin/tls/reload.
 *
 * The material is handled in four sets, each loaded, validated and swapped on its own: peer TLS
 * (server pair, client pair, CA bundles: tls.h), HTTP TLS, peer tokens (CACHE_AUTH_TOKEN_FILE)
 * and API tokens (CACHE_API_TOKEN_FILE). A set whose files changed is loaded into new objects and
 * validated first (parses, key matches, not expired / not yet valid, chains to the configured
 * CA, SAN names this node); only then is it swapped in. Files land one at a time, so a set that
 * fails is retried every 200 ms for up to 3 s; then it is rejected: the old material stays, one
 * error line is logged, hacache_tls_reloads_total{result="error"} counts it, and the same content
 * is not tried again (a later change is). A reload asked for explicitly is tried once, at once.
 * Success logs one info line (subject, serial, expiry for certificates; the number of tokens for
 * token files) and counts {result="success"}. Peer material that changed is handed to
 * hc_peers_reload, which replaces every link authenticated with the old credentials
 * make-before-break (peer.h). Certificates closer to expiry than CACHE_TLS_EXPIRY_WARN_DAYS log a
 * warning at load and once a day, and show expires_soon in /v1/status. */
#ifndef HC_CREDS_H
#define HC_CREDS_H

#include <stdint.h>
#include <uv.h>

#include "auth.h"
#include "config.h"
#include "http_tls.h"
#include "util.h"

typedef struct hc_creds hc_creds_t;
struct hc_peers;

typedef struct {
    const hc_config_t *cfg;  /* borrowed, outlives the watcher */
    struct hc_peers *peers;  /* peer layer (cluster mode), or NULL */
    hc_http_tls_t *http_tls; /* the HTTP listener's TLS context, or NULL (set not watched) */
    hc_auth_t *api_auth;     /* the API tokens, or NULL (set not watched) */
    /* 0 = default: content check period 1000 ms, retry period 200 ms, retry window 3000 ms */
    uint32_t check_ms, retry_ms, window_ms;
} hc_creds_opts_t;

/* Starts watching on `loop`; the material in use at this point is taken to be what the files
 * hold now. Logs an expiry warning for certificates that are close to expiry. 0, HC_ENOMEM. */
int hc_creds_start(uv_loop_t *loop, const hc_creds_opts_t *opts, hc_creds_t **out);

/* Reloads every configured set now (SIGHUP, admin call), whether its files changed or not; a set
 * that fails is rejected at once. `trigger` names the cause in the log lines. When json is not
 * NULL, an object describing each set's outcome is appended. Returns 0 when every set loaded,
 * HC_ENOTFOUND when nothing is configured, HC_EINVAL when a set was rejected (first reason in
 * err). */
int hc_creds_reload(hc_creds_t *c, const char *trigger, hc_buf_t *json, char *err, size_t errlen);

/* Runs the file check now, as the watcher does (changed sets only, with retries). For tests. */
void hc_creds_check(hc_creds_t *c);

/* The "tls" object of /v1/status: certificates in use (subject, serial, not_before, not_after,
 * expires_soon), reload counters, the credential generation and each peer's active link (its
 * id, generation, whether it still waits for a replacement, addresses). */
void hc_creds_status_json(hc_creds_t *c, hc_buf_t *b);

/* hacache_tls_reloads_total{result}, hacache_tls_cert_expiry_timestamp_seconds{cert} and the
 * peer link replacement counters, in Prometheus text format. */
void hc_creds_render_metrics(hc_creds_t *c, hc_buf_t *b);

/* Reload counters, for tests. */
void hc_creds_counts(const hc_creds_t *c, uint64_t *success, uint64_t *error);

/* Stops watching and closes every handle; the watcher frees itself once they are closed (the
 * loop must run). Neither peers, http_tls nor api_auth is used after this call. NULL is ignored. */
void hc_creds_close(hc_creds_t *c);

#endif
