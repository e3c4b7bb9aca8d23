/* member.c: one cluster member on a caller's loop: the node, what the API adapters share
 * (metrics, tokens, HTTP TLS, connection gates), the credential watcher, the adapters (HTTP,
 * RESP, the health listener), and the orderly stop: handover -> drain -> node close (see
 * member.h). */
#include "member.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "auth.h"
#include "creds.h"
#include "hacache.h"
#include "http.h"
#include "http_tls.h"
#include "log.h"
#include "metrics.h"
#include "resp.h"

struct hc_member {
    uv_loop_t *loop;
    hc_config_t *cfg;
    hc_member_opts_t opts;
    hc_node_t *node;
    /* what HTTP and RESP share, owned here: the request counters, the API tokens, and (HTTP only)
     * the listener's TLS context; the credential watcher reloads the last two */
    hc_metrics_t metrics;
    hc_auth_t *auth;
    hc_http_tls_t *http_tls;
    /* connection limits of the API listeners: HTTP and RESP share CACHE_MAX_CLIENTS */
    hc_admit_pool_t clients;
    hc_admit_t http_admit, resp_admit;
    hc_admit_t health_admit;    /* outside the pool: the health listener has a fixed cap */
    const hc_admit_t *gates[3]; /* the gates of the listeners that run, for /metrics */
    size_t n_gates;
    hc_http_t *http;   /* CACHE_HTTP_ADDR listener, or NULL (opts.http == 0) */
    hc_resp_t *resp;   /* CACHE_RESP_ADDR listener, or NULL */
    hc_http_t *health; /* CACHE_HEALTH_ADDR listener, or NULL */
    int draining;      /* adapters still draining */
    hc_creds_t *creds; /* credential watcher and reloads (SIGHUP, admin call, file changes) */
    int stopping;
    int failed;       /* the start failed: no "stopped" line */
    int config_error; /* ... on a configuration problem found by the node's start */
    int abandoned;    /* connections left open after the drain deadline */
    uint64_t stop_started_ms;
};

static void on_node_closed(void *ud)
{
    hc_member_t *m = ud;
    if ((m->http && hc_http_open_connections(m->http) > 0) ||
        (m->health && hc_http_open_connections(m->health) > 0)) {
        /* drain timed out: the remaining connections are abandoned to the caller (hacached:
         * process exit) */
        m->abandoned = 1;
    }
    if (!m->failed) {
        uv_update_time(m->loop);
        hc_log(HC_LOG_INFO, "stopped", HC_LU("shutdown_ms", uv_now(m->loop) - m->stop_started_ms));
    }
    m->opts.closed(m->opts.ud);
}

static void stop_creds(hc_member_t *m)
{
    if (m->creds != NULL) {
        if (m->http != NULL) {
            hc_http_drop_creds(m->http);
        }
        if (m->health != NULL) {
            hc_http_drop_creds(m->health);
        }
        hc_creds_close(m->creds); /* before the node closes the peer layer it uses */
        m->creds = NULL;
    }
}

static void on_adapters_drained(hc_member_t *m)
{
    stop_creds(m);
    if (m->http != NULL) {
        hc_http_close(m->http);
    }
    if (m->health != NULL) {
        hc_http_close(m->health);
    }
    hc_resp_close(m->resp);
    hc_node_close(m->node, on_node_closed, m);
}

static void on_adapter_drained(void *ud)
{
    hc_member_t *m = ud;
    if (--m->draining == 0) {
        on_adapters_drained(m);
    }
}

/* Leadership moved (or was never here, or the transfer timed out): drain HTTP, RESP, the health
 * listener and the caller's adapter within what is left of CACHE_SHUTDOWN_TIMEOUT_MS, then close
 * the node (and its peer links). */
static void on_handover_done(void *ud)
{
    hc_member_t *m = ud;
    uv_update_time(m->loop);
    uint64_t spent = uv_now(m->loop) - m->stop_started_ms;
    uint64_t left = m->cfg->shutdown_timeout_ms > spent ? m->cfg->shutdown_timeout_ms - spent : 1;
    /* every adapter is counted before the first is asked, so none finishes the count early */
    m->draining =
        1 + (m->http != NULL) + (m->resp != NULL) + (m->health != NULL) + (m->opts.drain != NULL);
    if (m->http != NULL) {
        hc_http_shutdown(m->http, left, on_adapter_drained, m);
    }
    if (m->health != NULL) {
        hc_http_shutdown(m->health, left, on_adapter_drained, m);
    }
    if (m->resp != NULL) {
        hc_resp_shutdown(m->resp, left, on_adapter_drained, m);
    }
    if (m->opts.drain != NULL) {
        m->opts.drain(m->opts.ud, left, on_adapter_drained, m);
    }
    on_adapter_drained(m);
}

void hc_member_stop(hc_member_t *m, const char *why)
{
    if (m->stopping) {
        return;
    }
    m->stopping = 1;
    uv_update_time(m->loop);
    m->stop_started_ms = uv_now(m->loop);
    hc_log(HC_LOG_INFO, "shutting down", HC_LS("reason", why),
           HC_LU("timeout_ms", m->cfg->shutdown_timeout_ms));
    hc_node_begin_shutdown(m->node);
    hc_node_handover(m->node, on_handover_done, m);
}

int hc_member_stopping(const hc_member_t *m)
{
    return m->stopping;
}

int hc_member_reload_creds(hc_member_t *m, const char *trigger)
{
    if (m->creds == NULL) {
        return HC_ENOTFOUND;
    }
    if (m->stopping) {
        return HC_EBUSY;
    }
    char err[512], msg[96];
    int rv = hc_creds_reload(m->creds, trigger, NULL, err, sizeof(err));
    snprintf(msg, sizeof(msg), "%s: credentials reload", trigger);
    hc_log(rv == 0 || rv == HC_ENOTFOUND ? HC_LOG_INFO : HC_LOG_WARN, msg,
           HC_LS("result", rv == 0              ? "reloaded"
                           : rv == HC_ENOTFOUND ? "nothing configured"
                                                : "rejected, the old credentials stay"));
    return rv;
}

/* Creates what the adapters share, the credential watcher over it (and over the node's peer
 * layer), then HTTP, RESP and the health listener, each handed what it uses. 0, or the first
 * error (logged where it happened); whatever was started is then stopped by
 * on_adapters_drained. */
static int start_adapters(hc_member_t *m)
{
    hc_metrics_init(&m->metrics);
    int rv = hc_auth_new(m->cfg->api_tokens, m->cfg->n_api_tokens, &m->auth);
    if (rv == 0) {
        rv = hc_http_tls_new(m->cfg, &m->http_tls);
    }
    if (rv != 0) {
        return rv;
    }
    hc_creds_opts_t co = {.cfg = m->cfg,
                          .peers = hc_node_peers(m->node),
                          .http_tls = m->http_tls,
                          .api_auth = m->auth};
    if (hc_creds_start(m->loop, &co, &m->creds) != 0) {
        hc_log(HC_LOG_WARN, "cannot watch credentials; SIGHUP and file changes reload only "
                            "the HTTP certificate");
    }
    int resp = m->opts.resp && m->cfg->resp_addr != NULL;
    int health = m->cfg->health_addr != NULL;
    m->n_gates = 0;
    if (m->opts.http) {
        m->gates[m->n_gates++] = &m->http_admit;
    }
    if (resp) {
        m->gates[m->n_gates++] = &m->resp_admit;
    }
    if (health) {
        m->gates[m->n_gates++] = &m->health_admit;
    }
    hc_http_opts_t ho = {.cfg = m->cfg,
                         .node = m->node,
                         .auth = m->auth,
                         .tls = m->http_tls,
                         .metrics = &m->metrics,
                         .creds = m->creds,
                         .admit = &m->http_admit,
                         .gates = m->gates,
                         .n_gates = m->n_gates};
    if (m->opts.http) {
        rv = hc_http_start(m->loop, &ho, &m->http);
    }
    if (rv == 0 && resp) {
        rv =
            hc_resp_start(m->loop, m->cfg, m->node, m->auth, &m->metrics, &m->resp_admit, &m->resp);
    }
    if (rv == 0 && health) {
        ho.admit = &m->health_admit;
        ho.health = 1;
        ho.api = m->http;
        rv = hc_http_start(m->loop, &ho, &m->health);
    }
    return rv;
}

/* Fits CACHE_MAX_CLIENTS and CACHE_UNAUTH_MAX into the file limit (the lowered values go back
 * into the configuration, so the peer layer sees them too) and sets up the API gates. */
static void plan_connections(hc_member_t *m)
{
    hc_config_t *cfg = m->cfg;
    uint64_t nofile = m->opts.nofile;
    hc_admit_plan_in_t in = {.nofile = nofile,
                             .max_clients = cfg->max_clients,
                             .unauth_max = cfg->unauth_max,
                             .resp = m->opts.resp && cfg->resp_addr != NULL,
                             .health = cfg->health_addr != NULL,
                             .peers =
                                 cfg->ha_mode && cfg->hosts.n > 0 ? (uint32_t)cfg->hosts.n - 1 : 0};
    hc_admit_plan_t plan;
    hc_admit_plan(&in, &plan);
    if (plan.max_clients < cfg->max_clients || plan.unauth_max < cfg->unauth_max) {
        hc_log(HC_LOG_WARN, "connection limits lowered to fit the file descriptor limit",
               HC_LU("CACHE_MAX_CLIENTS", cfg->max_clients), HC_LU("max_clients", plan.max_clients),
               HC_LU("CACHE_UNAUTH_MAX", cfg->unauth_max), HC_LU("unauth_max", plan.unauth_max),
               HC_LU("nofile", nofile));
    }
    cfg->max_clients = plan.max_clients;
    cfg->unauth_max = plan.unauth_max;
    m->clients.cap = plan.max_clients;
    m->clients.used = 0;
    hc_admit_limits_t http = {.max_admitted = plan.http_max,
                              .max_pending = plan.unauth_max,
                              .pending_timeout_ms = cfg->unauth_timeout_ms};
    hc_admit_limits_t resp = {.max_admitted = plan.resp_max,
                              .max_pending = plan.unauth_max,
                              .pending_timeout_ms = cfg->unauth_timeout_ms,
                              .idle_timeout_ms = cfg->resp_idle_timeout_ms};
    hc_admit_limits_t health = {.max_admitted = plan.health_max,
                                .max_pending = plan.unauth_max,
                                .pending_timeout_ms = cfg->unauth_timeout_ms};
    hc_admit_init(&m->http_admit, "http", &http, &m->clients);
    hc_admit_init(&m->resp_admit, "resp", &resp, &m->clients);
    hc_admit_init(&m->health_admit, "health", &health, NULL);
    hc_log(HC_LOG_INFO, "connection limits", HC_LU("max_clients", plan.max_clients),
           HC_LU("http_max", plan.http_max), HC_LU("resp_max", plan.resp_max),
           HC_LU("unauth_max_per_listener", plan.unauth_max),
           HC_LU("unauth_timeout_ms", cfg->unauth_timeout_ms),
           HC_LU("resp_idle_timeout_ms", cfg->resp_idle_timeout_ms),
           HC_LU("reserved_fds", plan.reserve));
}

int hc_member_new(uv_loop_t *loop, hc_config_t *cfg, const hc_member_opts_t *opts,
                  hc_member_t **out)
{
    *out = NULL;
    hc_member_t *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return HC_ENOMEM;
    }
    m->loop = loop;
    m->cfg = cfg;
    m->opts = *opts;
    if (m->opts.banner == NULL) {
        m->opts.banner = "hacache node starting";
    }
    plan_connections(m);
    m->node = hc_node_new(loop, cfg);
    if (m->node == NULL) {
        free(m);
        return HC_ENOMEM;
    }
    *out = m;
    return 0;
}

int hc_member_start(hc_member_t *m)
{
    if (m->cfg->ha_mode && !m->cfg->tls) {
        hc_log(HC_LOG_WARN, "CACHE_TLS=false: peer traffic is not encrypted or authenticated by "
                            "certificates (the token handshake still runs)");
    }
    int rv = hc_node_start(m->node);
    if (rv != 0) {
        hc_log(HC_LOG_ERROR, "cannot start node", HC_LS("error", hc_strerror(rv)));
        m->stopping = 1;
        m->failed = 1;
        m->config_error = rv == HC_EINVAL;
        hc_node_close(m->node, on_node_closed, m);
        return rv;
    }
    hc_log(HC_LOG_INFO, m->opts.banner, HC_LS("version", HC_VERSION_STRING),
           HC_LS("mode", m->cfg->ha_mode ? "cluster" : "standalone"),
           HC_LS("node", hc_node_name(m->node)),
           HC_LS("http", m->opts.http ? m->cfg->http_addr : "off"),
           HC_LS("health", m->cfg->health_addr ? m->cfg->health_addr : "off"));
    rv = start_adapters(m);
    if (rv != 0) {
        m->stopping = 1;
        m->failed = 1;
        on_adapters_drained(m);
        return rv;
    }
    return 0;
}

hc_node_t *hc_member_node(hc_member_t *m)
{
    return m->node;
}

int hc_member_config_error(const hc_member_t *m)
{
    return m->config_error;
}

int hc_member_abandoned(const hc_member_t *m)
{
    return m->abandoned;
}

void hc_member_free(hc_member_t *m)
{
    if (m == NULL) {
        return;
    }
    hc_http_free(m->http);
    hc_http_free(m->health);
    hc_resp_free(m->resp);
    hc_http_tls_free(m->http_tls);
    hc_auth_free(m->auth);
    hc_node_free(m->node);
    free(m);
}
