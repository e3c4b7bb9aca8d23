/* admit.c: admission control for the listeners (see admit.h).
 *
 * A gate keeps two lists, pending and admitted, each ordered by deadline: every deadline of a
 * list is now + the same timeout when it is set, and a touched connection moves to the tail,
 * so the head is always the first to expire and the oldest pending connection is the one to
 * evict. Everything is O(1) per event. */
#include "admit.h"

#include <string.h>

#include "hacache.h"
#include "log.h"

#define LOG_INTERVAL_MS 10000
#define PLAN_BASE_FDS   32 /* stdio, the loop, listeners, data and credential files, inotify */
#define PLAN_PEER_FDS   3  /* per peer: dialed, accepted and replacement links */

static const char *const reason_labels[] = {
#define HC_ADMIT_REASON_LABEL_(name, label) label,
    HC_ADMIT_REASONS(HC_ADMIT_REASON_LABEL_)
#undef HC_ADMIT_REASON_LABEL_
};

/* ---- lists ---- */

static void list_init(hc_admit_conn_t *head)
{
    head->prev = head->next = head;
}

static int list_empty(const hc_admit_conn_t *head)
{
    return head->next == head;
}

static void list_unlink(hc_admit_conn_t *c)
{
    c->prev->next = c->next;
    c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void list_append(hc_admit_conn_t *head, hc_admit_conn_t *c)
{
    c->prev = head->prev;
    c->next = head;
    head->prev->next = c;
    head->prev = c;
}

/* ---- the gate ---- */

void hc_admit_init(hc_admit_t *a, const char *name, const hc_admit_limits_t *lim,
                   hc_admit_pool_t *pool)
{
    memset(a, 0, sizeof(*a));
    a->name = name;
    a->lim = *lim;
    if (a->lim.max_pending == 0) {
        a->lim.max_pending = 1;
    }
    a->pool = pool;
    list_init(&a->pending);
    list_init(&a->admitted);
}

int hc_admit_has_room(const hc_admit_t *a)
{
    if (a->lim.max_admitted > 0 && a->n_admitted >= a->lim.max_admitted) {
        return 0;
    }
    return a->pool == NULL || a->pool->used < a->pool->cap;
}

hc_admit_conn_t *hc_admit_add_pending(hc_admit_t *a, hc_admit_conn_t *c, uint64_t now_ms)
{
    hc_admit_conn_t *evicted = NULL;
    if (a->n_pending >= a->lim.max_pending && !list_empty(&a->pending)) {
        evicted = a->pending.next;
        hc_admit_release(a, evicted);
    }
    hc_admit_release(a, c);
    c->state = HC_ADMIT_PENDING;
    c->deadline_ms = now_ms + a->lim.pending_timeout_ms;
    list_append(&a->pending, c);
    a->n_pending++;
    if (evicted != NULL) {
        hc_admit_refuse(a, HC_ADMIT_UNAUTH_FULL, now_ms);
    }
    return evicted;
}

int hc_admit_admit(hc_admit_t *a, hc_admit_conn_t *c, uint64_t now_ms)
{
    if (c->state == HC_ADMIT_ADMITTED) {
        return 0;
    }
    if (!hc_admit_has_room(a)) {
        return HC_EBUSY;
    }
    hc_admit_release(a, c);
    c->state = HC_ADMIT_ADMITTED;
    c->deadline_ms = a->lim.idle_timeout_ms ? now_ms + a->lim.idle_timeout_ms : 0;
    list_append(&a->admitted, c);
    a->n_admitted++;
    if (a->pool != NULL) {
        a->pool->used++;
    }
    return 0;
}

void hc_admit_refuse(hc_admit_t *a, hc_admit_reason_t why, uint64_t now_ms)
{
    a->refused[why]++;
    if (now_ms < a->log_next_ms) {
        a->log_quiet++;
        return;
    }
    hc_log(HC_LOG_WARN, "connection limit reached: refusing or closing connections",
           HC_LS("listener", a->name), HC_LS("reason", reason_labels[why]),
           HC_LU("admitted", a->n_admitted), HC_LU("max_admitted", a->lim.max_admitted),
           HC_LU("pending", a->n_pending), HC_LU("max_pending", a->lim.max_pending),
           HC_LU(a->pool != NULL ? "clients" : NULL, a->pool != NULL ? a->pool->used : 0),
           HC_LU(a->pool != NULL ? "max_clients" : NULL, a->pool != NULL ? a->pool->cap : 0),
           HC_LU("not_logged_since_last_line", a->log_quiet));
    a->log_quiet = 0;
    a->log_next_ms = now_ms + LOG_INTERVAL_MS;
}

void hc_admit_touch(hc_admit_t *a, hc_admit_conn_t *c, uint64_t now_ms)
{
    if (c->state != HC_ADMIT_ADMITTED || a->lim.idle_timeout_ms == 0) {
        return;
    }
    list_unlink(c);
    c->deadline_ms = now_ms + a->lim.idle_timeout_ms;
    list_append(&a->admitted, c);
}

void hc_admit_release(hc_admit_t *a, hc_admit_conn_t *c)
{
    if (c->state == HC_ADMIT_PENDING) {
        a->n_pending--;
    } else if (c->state == HC_ADMIT_ADMITTED) {
        a->n_admitted--;
        if (a->pool != NULL) {
            a->pool->used--;
        }
    } else {
        return;
    }
    list_unlink(c);
    c->state = HC_ADMIT_NONE;
    c->deadline_ms = 0;
}

hc_admit_conn_t *hc_admit_expired(const hc_admit_t *a, uint64_t now_ms)
{
    hc_admit_conn_t *p = list_empty(&a->pending) ? NULL : a->pending.next;
    if (p != NULL && p->deadline_ms <= now_ms) {
        return p;
    }
    hc_admit_conn_t *i = list_empty(&a->admitted) ? NULL : a->admitted.next;
    if (i != NULL && i->deadline_ms != 0 && i->deadline_ms <= now_ms) {
        return i;
    }
    return NULL;
}

void hc_admit_timed_out(hc_admit_t *a, hc_admit_conn_t *c, uint64_t now_ms)
{
    hc_admit_state_t was = c->state;
    hc_admit_release(a, c);
    if (was == HC_ADMIT_PENDING) {
        hc_admit_refuse(a, HC_ADMIT_UNAUTH_TIMEOUT, now_ms);
    } else if (was == HC_ADMIT_ADMITTED) {
        a->idle_closed++;
    }
}

uint64_t hc_admit_next_deadline(const hc_admit_t *a)
{
    uint64_t next = 0;
    if (!list_empty(&a->pending)) {
        next = a->pending.next->deadline_ms;
    }
    if (!list_empty(&a->admitted) && a->admitted.next->deadline_ms != 0 &&
        (next == 0 || a->admitted.next->deadline_ms < next)) {
        next = a->admitted.next->deadline_ms;
    }
    return next;
}

/* ---- metrics ---- */

/* One gauge family by listener and state: the open connections, or (limits) the caps. */
static void render_states(const hc_admit_t *const *gates, size_t n, hc_buf_t *b, const char *name,
                          const char *help, int limits)
{
    hc_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
    for (size_t i = 0; i < n; i++) {
        const hc_admit_t *g = gates[i];
        if (g == NULL) {
            continue;
        }
        if (g->lim.max_admitted > 0) { /* the peer port caps only its pending connections */
            hc_buf_printf(b, "%s{listener=\"%s\",state=\"admitted\"} %u\n", name, g->name,
                          (unsigned)(limits ? g->lim.max_admitted : g->n_admitted));
        }
        hc_buf_printf(b, "%s{listener=\"%s\",state=\"pending\"} %u\n", name, g->name,
                      (unsigned)(limits ? g->lim.max_pending : g->n_pending));
    }
}

void hc_admit_render_metrics(const hc_admit_t *const *gates, size_t n, hc_buf_t *b)
{
    render_states(gates, n, b, "hacache_connections",
                  "Open connections by listener; pending = not authenticated yet (RESP AUTH, a "
                  "first complete HTTP request, the peer handshake).",
                  0);
    render_states(gates, n, b, "hacache_connections_limit",
                  "Connection limits in force (after fitting CACHE_MAX_CLIENTS and "
                  "CACHE_UNAUTH_MAX into the file limit).",
                  1);
    hc_buf_puts(b, "# HELP hacache_connections_refused_total Connections refused or closed by a "
                   "connection limit.\n# TYPE hacache_connections_refused_total counter\n");
    for (size_t i = 0; i < n; i++) {
        for (int r = 0; gates[i] != NULL && r < HC_ADMIT__NREASONS; r++) {
            hc_buf_printf(b,
                          "hacache_connections_refused_total{listener=\"%s\",reason=\"%s\"} "
                          "%llu\n",
                          gates[i]->name, reason_labels[r],
                          (unsigned long long)gates[i]->refused[r]);
        }
    }
    hc_buf_puts(b, "# HELP hacache_connections_idle_closed_total Admitted connections closed "
                   "after the idle timeout.\n# TYPE hacache_connections_idle_closed_total "
                   "counter\n");
    for (size_t i = 0; i < n; i++) {
        if (gates[i] != NULL) {
            hc_buf_printf(b, "hacache_connections_idle_closed_total{listener=\"%s\"} %llu\n",
                          gates[i]->name, (unsigned long long)gates[i]->idle_closed);
        }
    }
}

/* ---- sizing ---- */

static uint32_t min_u32(uint64_t a, uint64_t b)
{
    uint64_t m = a < b ? a : b;
    return m > UINT32_MAX ? UINT32_MAX : (uint32_t)m;
}

void hc_admit_plan(const hc_admit_plan_in_t *in, hc_admit_plan_t *out)
{
    uint64_t listeners = 1 + (in->resp != 0) + (in->peers > 0) + (in->health != 0);
    uint64_t fixed = PLAN_BASE_FDS + (uint64_t)PLAN_PEER_FDS * in->peers +
                     (in->health != 0 ? HC_ADMIT_HEALTH_MAX : 0);
    uint64_t room = in->nofile > fixed ? in->nofile - fixed : 0;
    uint64_t pending_room = room / (4 * listeners);
    out->unauth_max = min_u32(in->unauth_max, pending_room > 0 ? pending_room : 1);
    uint64_t pending_all = (uint64_t)out->unauth_max * listeners;
    uint64_t avail = room > pending_all ? room - pending_all : 0;
    out->max_clients = min_u32(in->max_clients, avail > 0 ? avail : 1);
    if (out->max_clients == 0) {
        out->max_clients = 1;
    }
    out->reserve = (uint32_t)fixed;
    out->health_max = in->health != 0 ? HC_ADMIT_HEALTH_MAX : 0;
    out->http_max = out->max_clients;
    out->resp_max = 0;
    if (in->resp) {
        /* each keeps an eighth (at least one) for itself; a single slot is shared */
        uint32_t floor = out->max_clients >= 2 ? out->max_clients / 8 : 0;
        if (floor == 0 && out->max_clients >= 2) {
            floor = 1;
        }
        out->http_max = out->max_clients - floor;
        out->resp_max = out->max_clients - floor;
    }
}

/* ---- the deadline timer ---- */

static void on_timer(uv_timer_t *handle)
{
    hc_admit_timer_t *t = handle->data;
    uint64_t now = uv_now(handle->loop);
    t->due = 0;
    /* bounded: every callback releases or touches the connection it gets */
    uint64_t budget = (uint64_t)t->admit->n_pending + t->admit->n_admitted;
    hc_admit_conn_t *c;
    while (budget-- > 0 && (c = hc_admit_expired(t->admit, now)) != NULL) {
        t->expire(t->ud, c);
    }
    hc_admit_timer_arm(t);
}

void hc_admit_timer_init(hc_admit_timer_t *t, uv_loop_t *loop, hc_admit_t *a,
                         void (*expire)(void *ud, hc_admit_conn_t *c), void *ud)
{
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    t->due = 0;
    t->admit = a;
    t->expire = expire;
    t->ud = ud;
}

void hc_admit_timer_arm(hc_admit_timer_t *t)
{
    uint64_t next = hc_admit_next_deadline(t->admit);
    if (next == 0 || (t->due != 0 && t->due <= next) || uv_is_closing((uv_handle_t *)&t->timer)) {
        return; /* nothing due, or the timer fires early enough already */
    }
    uint64_t now = uv_now(t->timer.loop);
    t->due = next;
    uv_timer_start(&t->timer, on_timer, next > now ? next - now : 0, 0);
}

void hc_admit_timer_close(hc_admit_timer_t *t)
{
    if (!uv_is_closing((uv_handle_t *)&t->timer)) {
        uv_timer_stop(&t->timer);
        uv_close((uv_handle_t *)&t->timer, NULL);
    }
}
