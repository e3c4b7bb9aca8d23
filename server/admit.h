/* admit.h: admission control for the listeners (HTTP, RESP, the peer port): how many admitted
 * connections each may hold, the pool of connections that have not authenticated yet (their own
 * cap, the oldest evicted first, a deadline), the idle deadline of admitted ones, refusal
 * counters with a rate-limited log line, and the plan that sizes it all from the file limit.
 *
 * The gate itself (hc_admit_t) touches no socket and reads no clock: adapters pass uv_now() and
 * close what they are told to. hc_admit_timer_t is the small libuv part that fires at the
 * earliest deadline of a gate. */
#ifndef HC_ADMIT_H
#define HC_ADMIT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util.h"

/* Why a connection was refused or closed by a limit: the `reason` label of
 * hacache_connections_refused_total. */
#define HC_ADMIT_REASONS(X)                                                                        \
    X(MAX_CLIENTS, "max_clients")       /* the listener's share of CACHE_MAX_CLIENTS is full */    \
    X(UNAUTH_FULL, "unauth_full")       /* CACHE_UNAUTH_MAX pending: the oldest made room */       \
    X(UNAUTH_TIMEOUT, "unauth_timeout") /* not authenticated within CACHE_UNAUTH_TIMEOUT_MS */

typedef enum {
#define HC_ADMIT_REASON_ENUM_(name, label) HC_ADMIT_##name,
    HC_ADMIT_REASONS(HC_ADMIT_REASON_ENUM_)
#undef HC_ADMIT_REASON_ENUM_
        HC_ADMIT__NREASONS
} hc_admit_reason_t;

typedef enum {
    HC_ADMIT_NONE = 0, /* not tracked (new, refused, or released) */
    HC_ADMIT_PENDING,  /* not authenticated yet: counted against max_pending, has a deadline */
    HC_ADMIT_ADMITTED, /* counted against max_admitted (and the shared pool) */
} hc_admit_state_t;

/* One connection's record, embedded in the adapter's connection (zeroed = HC_ADMIT_NONE). */
typedef struct hc_admit_conn {
    struct hc_admit_conn *prev, *next;
    uint64_t deadline_ms; /* pending: authenticate by then; admitted: idle deadline (0 = none) */
    hc_admit_state_t state;
} hc_admit_conn_t;

/* A cap shared by several gates (HTTP and RESP share CACHE_MAX_CLIENTS). */
typedef struct {
    uint32_t cap, used;
} hc_admit_pool_t;

typedef struct {
    uint32_t max_admitted;       /* this listener's own cap; 0 = none (the peer port) */
    uint32_t max_pending;        /* unauthenticated connections at once (at least 1) */
    uint32_t pending_timeout_ms; /* how long one may stay unauthenticated */
    uint32_t idle_timeout_ms;    /* an admitted connection idle this long is closed; 0 = never */
} hc_admit_limits_t;

/* One listener's gate. Not movable once initialised (its lists point at themselves). */
typedef struct {
    const char *name; /* the `listener` label: "http", "resp", "peer" */
    hc_admit_limits_t lim;
    hc_admit_pool_t *pool;             /* shared cap of admitted connections, or NULL */
    hc_admit_conn_t pending, admitted; /* list heads; each list is ordered by deadline */
    uint32_t n_pending, n_admitted;
    uint64_t refused[HC_ADMIT__NREASONS];
    uint64_t idle_closed;
    uint64_t log_next_ms; /* no refusal line before this */
    uint64_t log_quiet;   /* refusals not logged since the last line */
} hc_admit_t;

/* Sets up a gate with limits `lim` and the shared pool (NULL: none; borrowed). */
void hc_admit_init(hc_admit_t *a, const char *name, const hc_admit_limits_t *lim,
                   hc_admit_pool_t *pool);

/* 1 when one more connection may be admitted now (own cap and pool). */
int hc_admit_has_room(const hc_admit_t *a);

/* A new connection that must authenticate first: tracked as pending until `now_ms` +
 * pending_timeout_ms. When max_pending connections are pending already, the oldest is released
 * and counted (unauth_full) to make room, and returned: the caller closes it. NULL otherwise. */
hc_admit_conn_t *hc_admit_add_pending(hc_admit_t *a, hc_admit_conn_t *c, uint64_t now_ms);

/* c (new or pending) becomes admitted. 0, or HC_EBUSY when there is no room (c unchanged and
 * nothing counted: refuse it with hc_admit_refuse, or keep it pending). Admitted again: 0. */
int hc_admit_admit(hc_admit_t *a, hc_admit_conn_t *c, uint64_t now_ms);

/* Counts one refusal and logs it, at most one warn line per gate every 10 s (the line says how
 * many were not logged since the previous one). */
void hc_admit_refuse(hc_admit_t *a, hc_admit_reason_t why, uint64_t now_ms);

/* Activity on an admitted connection: its idle deadline moves to now + idle_timeout_ms. */
void hc_admit_touch(hc_admit_t *a, hc_admit_conn_t *c, uint64_t now_ms);

/* The connection is closing: it leaves the gate. Safe on a connection not tracked. */
void hc_admit_release(hc_admit_t *a, hc_admit_conn_t *c);

/* The tracked connection whose deadline passed first (still tracked), or NULL. The caller
 * either times it out (hc_admit_timed_out, then closes it) or touches it (busy, not idle). */
hc_admit_conn_t *hc_admit_expired(const hc_admit_t *a, uint64_t now_ms);

/* Releases c and counts why: unauth_timeout (pending) or an idle close (admitted). */
void hc_admit_timed_out(hc_admit_t *a, hc_admit_conn_t *c, uint64_t now_ms);

/* The earliest deadline of the gate, 0 when nothing is due. */
uint64_t hc_admit_next_deadline(const hc_admit_t *a);

/* Renders hacache_connections{listener,state}, hacache_connections_limit{listener,state},
 * hacache_connections_refused_total{listener,reason} and
 * hacache_connections_idle_closed_total{listener} for the n gates (NULL entries skipped). */
void hc_admit_render_metrics(const hc_admit_t *const *gates, size_t n, hc_buf_t *b);

/* ---- sizing from the file limit (hacached's main) ---- */

typedef struct {
    uint64_t nofile;      /* the soft RLIMIT_NOFILE in force */
    uint32_t max_clients; /* CACHE_MAX_CLIENTS */
    uint32_t unauth_max;  /* CACHE_UNAUTH_MAX, per listener */
    int resp;             /* the RESP listener is on */
    int health;           /* the health listener (CACHE_HEALTH_ADDR) is on */
    uint32_t peers;       /* other HA_HOSTS entries (0: standalone) */
} hc_admit_plan_in_t;

/* Keep-alive connections the health listener admits at once (kubelet probes, Prometheus
 * scrapes): a fixed number outside CACHE_MAX_CLIENTS, so a flood of API clients never reaches
 * the probes. Past it a probe is still answered, then its connection closed. */
#define HC_ADMIT_HEALTH_MAX 16

typedef struct {
    uint32_t max_clients;        /* admitted HTTP + RESP connections, at most the knob */
    uint32_t unauth_max;         /* pending per listener, at most the knob */
    uint32_t http_max, resp_max; /* each listener's cap (RESP off: HTTP gets all of it) */
    uint32_t health_max;         /* the health listener's cap (0: off) */
    uint32_t reserve;            /* descriptors kept for the rest: peers, files, reloads */
} hc_admit_plan_t;

/* Fits the knobs into the file limit: a reserve for the process (32 descriptors: stdio, the
 * loop, listeners, data and credential files, inotify), 3 per peer (dialed, accepted and
 * replacement links) and HC_ADMIT_HEALTH_MAX for the health listener when it is on, then at most a
 * quarter of the rest for the pending pools (one per listener), the remainder for admitted clients.
 * With RESP on, each of HTTP and RESP keeps an eighth of max_clients for itself: neither can take
 * more than the other leaves. */
void hc_admit_plan(const hc_admit_plan_in_t *in, hc_admit_plan_t *out);

/* ---- the deadline timer of a gate (libuv) ---- */

typedef struct {
    uv_timer_t timer;
    uint64_t due; /* when it fires (uv_now scale); 0 = not armed */
    hc_admit_t *admit;
    /* Called for each connection past its deadline, still tracked: time it out
     * (hc_admit_timed_out) and close it, or hc_admit_touch it when it is busy. */
    void (*expire)(void *ud, hc_admit_conn_t *c);
    void *ud;
} hc_admit_timer_t;

void hc_admit_timer_init(hc_admit_timer_t *t, uv_loop_t *loop, hc_admit_t *a,
                         void (*expire)(void *ud, hc_admit_conn_t *c), void *ud);
/* After a connection was added or touched: makes sure the timer fires by the gate's earliest
 * deadline. */
void hc_admit_timer_arm(hc_admit_timer_t *t);
/* Closes the timer handle (run the loop before freeing t). */
void hc_admit_timer_close(hc_admit_timer_t *t);

#endif
