/* main.c: hacached — configuration, the loop, signals and an orderly shutdown around the node
 * and its adapters. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

#include <openssl/ssl.h>
#include <sodium.h>

#include "admit.h"
#include "auth.h"
#include "config.h"
#include "creds.h"
#include "hacache.h"
#include "http.h"
#include "http_tls.h"
#include "log.h"
#include "metrics.h"
#include "node.h"
#include "resp.h"

typedef struct {
    uv_loop_t loop;
    hc_config_t cfg;
    hc_node_t *node;
    /* what HTTP and RESP share, owned here: the request counters, the API tokens, and (HTTP only)
     * the listener's TLS context; the credential watcher reloads the last two */
    hc_metrics_t metrics;
    hc_auth_t *auth;
    hc_http_tls_t *http_tls;
    /* connection limits of the API listeners: HTTP and RESP share CACHE_MAX_CLIENTS */
    hc_admit_pool_t clients;
    hc_admit_t http_admit, resp_admit;
    hc_http_t *http;
    hc_resp_t *resp;   /* CACHE_RESP_ADDR listener, or NULL */
    int draining;      /* API adapters still draining */
    hc_creds_t *creds; /* credential watcher and reloads (SIGHUP, admin call, file changes) */
    uv_signal_t sigterm, sigint, sighup;
    int stopping;
    int abandoned; /* connections left open after the drain deadline */
    uint64_t stop_started_ms;
} daemon_t;

static void print_errors(const hc_config_errors_t *errs)
{
    for (size_t i = 0; i < errs->n; i++) {
        fprintf(stderr, "hacached: %s\n", errs->line[i]);
    }
}

static void close_signal(uv_signal_t *s)
{
    if (!uv_is_closing((uv_handle_t *)s)) {
        uv_close((uv_handle_t *)s, NULL);
    }
}

static void on_node_closed(void *ud)
{
    daemon_t *d = ud;
    close_signal(&d->sigterm);
    close_signal(&d->sigint);
    close_signal(&d->sighup);
    if (d->http && hc_http_open_connections(d->http) > 0) {
        /* drain timed out: the remaining connections are abandoned to process exit */
        d->abandoned = 1;
        uv_stop(&d->loop);
    }
}

static void stop_creds(daemon_t *d)
{
    if (d->creds != NULL) {
        if (d->http != NULL) {
            hc_http_drop_creds(d->http);
        }
        hc_creds_close(d->creds); /* before the node closes the peer layer it uses */
        d->creds = NULL;
    }
}

static void on_http_drained(void *ud)
{
    daemon_t *d = ud;
    stop_creds(d);
    hc_http_close(d->http);
    hc_resp_close(d->resp);
    hc_node_close(d->node, on_node_closed, d);
}

static void on_adapter_drained(void *ud)
{
    daemon_t *d = ud;
    if (--d->draining == 0) {
        on_http_drained(d);
    }
}

/* Leadership moved (or was never here, or the transfer timed out): drain HTTP and RESP within
 * what is left of CACHE_SHUTDOWN_TIMEOUT_MS, then close the node (and its peer links). */
static void on_handover_done(void *ud)
{
    daemon_t *d = ud;
    uv_update_time(&d->loop);
    uint64_t spent = uv_now(&d->loop) - d->stop_started_ms;
    uint64_t left = d->cfg.shutdown_timeout_ms > spent ? d->cfg.shutdown_timeout_ms - spent : 1;
    if (d->http == NULL) {
        on_http_drained(d);
        return;
    }
    d->draining = 1 + (d->resp != NULL);
    hc_http_shutdown(d->http, (uint32_t)left, on_adapter_drained, d);
    if (d->resp != NULL) {
        hc_resp_shutdown(d->resp, left, on_adapter_drained, d);
    }
}

static void begin_stop(daemon_t *d, const char *why)
{
    if (d->stopping) {
        return;
    }
    d->stopping = 1;
    d->stop_started_ms = uv_now(&d->loop);
    hc_log(HC_LOG_INFO, "shutting down", HC_LS("reason", why),
           HC_LU("timeout_ms", d->cfg.shutdown_timeout_ms));
    hc_node_begin_shutdown(d->node);
    hc_node_handover(d->node, on_handover_done, d);
}

static void on_signal(uv_signal_t *s, int signum)
{
    daemon_t *d = s->data;
    if (signum == SIGHUP) {
        if (d->creds == NULL || d->stopping) {
            return;
        }
        char err[512];
        int rv = hc_creds_reload(d->creds, "SIGHUP", NULL, err, sizeof(err));
        hc_log(rv == 0 || rv == HC_ENOTFOUND ? HC_LOG_INFO : HC_LOG_WARN,
               "SIGHUP: credentials reload",
               HC_LS("result", rv == 0              ? "reloaded"
                               : rv == HC_ENOTFOUND ? "nothing configured"
                                                    : "rejected, the old credentials stay"));
        return;
    }
    if (d->stopping) {
        hc_log(HC_LOG_WARN, "second signal during shutdown, exiting now");
        exit(1);
    }
    begin_stop(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* Creates what the adapters share, the credential watcher over it (and over the node's peer
 * layer), then HTTP and RESP, each handed what it uses. 0, or the first error (logged where it
 * happened); whatever was started is then stopped by on_http_drained. */
static int start_adapters(daemon_t *d)
{
    hc_metrics_init(&d->metrics);
    int rv = hc_auth_new(d->cfg.api_tokens, d->cfg.n_api_tokens, &d->auth);
    if (rv == 0) {
        rv = hc_http_tls_new(&d->cfg, &d->http_tls);
    }
    if (rv != 0) {
        return rv;
    }
    hc_creds_opts_t co = {.cfg = &d->cfg,
                          .peers = hc_node_peers(d->node),
                          .http_tls = d->http_tls,
                          .api_auth = d->auth};
    if (hc_creds_start(&d->loop, &co, &d->creds) != 0) {
        hc_log(HC_LOG_WARN, "cannot watch credentials; SIGHUP and file changes reload only "
                            "the HTTP certificate");
    }
    hc_http_opts_t ho = {.cfg = &d->cfg,
                         .node = d->node,
                         .auth = d->auth,
                         .tls = d->http_tls,
                         .metrics = &d->metrics,
                         .creds = d->creds,
                         .admit = &d->http_admit,
                         .admit_resp = d->cfg.resp_addr != NULL ? &d->resp_admit : NULL};
    rv = hc_http_start(&d->loop, &ho, &d->http);
    if (rv == 0 && d->cfg.resp_addr != NULL) {
        rv = hc_resp_start(&d->loop, &d->cfg, d->node, d->auth, &d->metrics, &d->resp_admit,
                           &d->resp);
    }
    return rv;
}

/* Raises the soft file limit to the hard one (hacached only: an embedded node leaves its
 * process's limits alone) and returns the soft limit in force. */
static uint64_t raise_file_limit(void)
{
    const uint64_t infinite = 1u << 20; /* what Linux allows at most by default (nr_open) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        hc_log(HC_LOG_WARN, "cannot read the file descriptor limit, assuming 1024");
        return 1024;
    }
    uint64_t was = rl.rlim_cur == RLIM_INFINITY ? infinite : (uint64_t)rl.rlim_cur;
    uint64_t hard = rl.rlim_max == RLIM_INFINITY ? infinite : (uint64_t)rl.rlim_max;
    uint64_t now = was;
    if (was < hard) {
        struct rlimit want = rl;
        want.rlim_cur = (rlim_t)hard;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) {
            now = hard;
        } else {
            hc_log(HC_LOG_WARN, "cannot raise the file descriptor limit", HC_LU("soft", was),
                   HC_LU("hard", hard));
        }
    }
    hc_log(HC_LOG_INFO, "file descriptor limit", HC_LU("soft", now), HC_LU("hard", hard),
           HC_LU("soft_at_start", was));
    return now;
}

/* Fits CACHE_MAX_CLIENTS and CACHE_UNAUTH_MAX into the file limit (the lowered values go back
 * into the configuration, so the peer layer sees them too) and sets up the API gates. */
static void plan_connections(daemon_t *d, uint64_t nofile)
{
    hc_admit_plan_in_t in = {
        .nofile = nofile,
        .max_clients = d->cfg.max_clients,
        .unauth_max = d->cfg.unauth_max,
        .resp = d->cfg.resp_addr != NULL,
        .peers = d->cfg.ha_mode && d->cfg.hosts.n > 0 ? (uint32_t)d->cfg.hosts.n - 1 : 0};
    hc_admit_plan_t plan;
    hc_admit_plan(&in, &plan);
    if (plan.max_clients < d->cfg.max_clients || plan.unauth_max < d->cfg.unauth_max) {
        hc_log(HC_LOG_WARN, "connection limits lowered to fit the file descriptor limit",
               HC_LU("CACHE_MAX_CLIENTS", d->cfg.max_clients),
               HC_LU("max_clients", plan.max_clients), HC_LU("CACHE_UNAUTH_MAX", d->cfg.unauth_max),
               HC_LU("unauth_max", plan.unauth_max), HC_LU("nofile", nofile));
    }
    d->cfg.max_clients = plan.max_clients;
    d->cfg.unauth_max = plan.unauth_max;
    d->clients.cap = plan.max_clients;
    d->clients.used = 0;
    hc_admit_limits_t http = {.max_admitted = plan.http_max,
                              .max_pending = plan.unauth_max,
                              .pending_timeout_ms = d->cfg.unauth_timeout_ms};
    hc_admit_limits_t resp = {.max_admitted = plan.resp_max,
                              .max_pending = plan.unauth_max,
                              .pending_timeout_ms = d->cfg.unauth_timeout_ms,
                              .idle_timeout_ms = d->cfg.resp_idle_timeout_ms};
    hc_admit_init(&d->http_admit, "http", &http, &d->clients);
    hc_admit_init(&d->resp_admit, "resp", &resp, &d->clients);
    hc_log(HC_LOG_INFO, "connection limits", HC_LU("max_clients", plan.max_clients),
           HC_LU("http_max", plan.http_max), HC_LU("resp_max", plan.resp_max),
           HC_LU("unauth_max_per_listener", plan.unauth_max),
           HC_LU("unauth_timeout_ms", d->cfg.unauth_timeout_ms),
           HC_LU("resp_idle_timeout_ms", d->cfg.resp_idle_timeout_ms),
           HC_LU("reserved_fds", plan.reserve));
}

static int start_signal(daemon_t *d, uv_signal_t *s, int signum)
{
    uv_signal_init(&d->loop, s);
    s->data = d;
    return uv_signal_start(s, on_signal, signum);
}

int main(int argc, char **argv)
{
    static daemon_t d; /* static: reachable from the signal handlers' handles until exit */
    hc_config_errors_t errs;
    memset(&errs, 0, sizeof(errs));
    hc_config_init(&d.cfg);
    int load_rv = hc_config_load(&d.cfg, argc, argv, NULL, NULL, NULL, &errs);
    if (d.cfg.cmd_help) {
        hc_config_print_help(stdout);
        hc_config_free(&d.cfg);
        return 0;
    }
    if (d.cfg.cmd_version) {
        printf("hacached %s\n", HC_VERSION_STRING);
        hc_config_free(&d.cfg);
        return 0;
    }
    /* --check-config reports every problem (syntax and semantics) at once; the daemon fails
     * fast on the first. */
    if (load_rv != 0 && !d.cfg.cmd_check_config) {
        errs.n = 1;
        print_errors(&errs);
        hc_config_free(&d.cfg);
        return 2;
    }
    if (hc_config_validate(&d.cfg, (int64_t)time(NULL), &errs) != 0 || load_rv != 0) {
        if (!d.cfg.cmd_check_config) {
            errs.n = errs.n > 0 ? 1 : 0;
        }
        print_errors(&errs);
        hc_config_free(&d.cfg);
        return 2;
    }
    if (d.cfg.cmd_check_config) {
        printf("configuration OK\n");
        hc_config_free(&d.cfg);
        return 0;
    }
    hc_log_setup(d.cfg.log_level, d.cfg.log_format, stderr);
    if (sodium_init() < 0) {
        fprintf(stderr, "hacached: libsodium failed to initialise\n");
        hc_config_free(&d.cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    plan_connections(&d, raise_file_limit());

    int exit_code = 0;
    uv_loop_init(&d.loop);
    if (d.cfg.ha_mode && !d.cfg.tls) {
        hc_log(HC_LOG_WARN, "CACHE_TLS=false: peer traffic is not encrypted or authenticated by "
                            "certificates (the token handshake still runs)");
    }
    d.node = hc_node_new(&d.loop, &d.cfg);
    int start_rv = d.node == NULL ? HC_ENOMEM : hc_node_start(d.node);
    if (start_rv != 0) {
        hc_log(HC_LOG_ERROR, "cannot start node", HC_LS("error", hc_strerror(start_rv)));
        /* a configuration problem found only now (CACHE_DATA_DIR, TLS files) exits 2 */
        exit_code = start_rv == HC_EINVAL ? 2 : 1;
        if (d.node != NULL) {
            d.stopping = 1;
            hc_node_close(d.node, NULL, NULL);
            uv_run(&d.loop, UV_RUN_DEFAULT);
        }
        goto out;
    }
    start_signal(&d, &d.sigterm, SIGTERM);
    start_signal(&d, &d.sigint, SIGINT);
    start_signal(&d, &d.sighup, SIGHUP);
    hc_log(HC_LOG_INFO, "hacached starting", HC_LS("version", HC_VERSION_STRING),
           HC_LS("mode", d.cfg.ha_mode ? "cluster" : "standalone"),
           HC_LS("node", hc_node_name(d.node)), HC_LS("http", d.cfg.http_addr));
    if (start_adapters(&d) != 0) {
        exit_code = 1;
        d.stopping = 1;
        on_http_drained(&d);
    }
    uv_run(&d.loop, UV_RUN_DEFAULT);

    if (d.stopping && exit_code == 0) {
        hc_log(HC_LOG_INFO, "stopped", HC_LU("shutdown_ms", uv_now(&d.loop) - d.stop_started_ms));
    }
out:
    if (d.abandoned) {
        /* h2o still references the loop and its config from those connections: exit as is */
        return exit_code;
    }
    hc_http_free(d.http);
    hc_resp_free(d.resp);
    hc_http_tls_free(d.http_tls);
    hc_auth_free(d.auth);
    if (uv_loop_close(&d.loop) != 0) {
        hc_log(HC_LOG_ERROR, "handles still open at exit");
        uv_print_all_handles(&d.loop, stderr);
        exit_code = exit_code ? exit_code : 1;
    }
    hc_node_free(d.node);
    hc_config_free(&d.cfg);
    return exit_code;
}
