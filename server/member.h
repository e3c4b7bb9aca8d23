/* member.h: one cluster member: the node, the HTTP and RESP adapters, the credential watcher and
 * the connection plan, started on a loop the caller runs, and its orderly stop (leadership
 * handover, drain, node close) within CACHE_SHUTDOWN_TIMEOUT_MS. Both ways of running a node
 * use it: hacached (main.c) and the embedded API (embed.c). A member is a good library guest: it
 * installs no signal handler, changes no process limit and never exits the process; the
 * caller owns all of that.
 * Threads: every call on the loop's thread. */
#ifndef HC_MEMBER_H
#define HC_MEMBER_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "node.h"

typedef struct hc_member hc_member_t;

typedef struct {
    int http; /* 1: serve the HTTP API on CACHE_HTTP_ADDR */
    int resp; /* 1: serve RESP on CACHE_RESP_ADDR (ignored when that is off) */
    /* the file descriptor limit the connection limits are fitted into (hacached: after raising
     * its soft limit; embedded: the process's soft limit as it is) */
    uint64_t nofile;
    /* message of the "starting" log line ("hacached starting") */
    const char *banner;
    /* Optional: one more adapter to drain after the handover, alongside HTTP and RESP (the
     * embedded API's calls in flight). drain must call done(done_ud) once, on the loop, within
     * left_ms (never from inside drain itself: on a later callback). */
    void (*drain)(void *ud, uint64_t left_ms, void (*done)(void *done_ud), void *done_ud);
    /* Runs once on the loop when every handle of the member is closed: after hc_member_stop, or
     * after a failed hc_member_start. Required. */
    void (*closed)(void *ud);
    void *ud;
} hc_member_opts_t;

/* Creates a member on `loop`. cfg must be validated (hc_config_validate), outlives the member,
 * and is changed once: the connection plan lowers max_clients and unauth_max to fit nofile.
 * opts is copied. 0, or HC_ENOMEM. */
int hc_member_new(uv_loop_t *loop, hc_config_t *cfg, const hc_member_opts_t *opts,
                  hc_member_t **out);
/* Starts the node, then what the adapters share, the credential watcher and the adapters.
 * 0: running until hc_member_stop. Otherwise the error (HC_EINVAL: a configuration problem
 * found only now, such as CACHE_DATA_DIR or TLS material; others: runtime failures, logged),
 * and the member is already closing what it started: opts.closed runs on a later loop turn. */
int hc_member_start(hc_member_t *m);
/* Begins the orderly stop (idempotent): /readyz turns 503, leadership is handed over, the API
 * adapters drain within what is left of CACHE_SHUTDOWN_TIMEOUT_MS, the node closes; then
 * opts.closed runs. why is logged. */
void hc_member_stop(hc_member_t *m, const char *why);
int hc_member_stopping(const hc_member_t *m);
/* Re-reads every credential (SIGHUP): 0 reloaded, HC_ENOTFOUND nothing configured, HC_EBUSY
 * stopping, other codes rejected (the old credentials stay). Logged either way. */
int hc_member_reload_creds(hc_member_t *m, const char *trigger);
/* 1 when hc_member_start failed on a configuration problem the node found only at its start
 * (CACHE_DATA_DIR, TLS material: hacached exits 2); 0 for runtime failures (bind, ...). */
int hc_member_config_error(const hc_member_t *m);
/* The node (valid until hc_member_free; usable for requests until opts.closed runs). */
hc_node_t *hc_member_node(hc_member_t *m);
/* 1 when API connections were still open at the drain deadline: h2o still references the loop
 * and the configuration from them, so the loop must not be closed nor the member freed (hacached
 * exits as it is). */
int hc_member_abandoned(const hc_member_t *m);
/* Frees a member after opts.closed ran (or one never started). NULL is a no-op. */
void hc_member_free(hc_member_t *m);

#endif
