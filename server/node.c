/* node.c: the node's front door: lifecycle, mode dispatch and standalone writes. It owns the
 * replicated state machine (fsm.h). Standalone, writes are applied in the order they arrive,
 * each with the next index as its version; room for a write is made first by applying the
 * EVICT / EXPIRE commands that hc_fsm_plan_put() plans, and a timer reclaims expired entries by
 * applying EXPIRE commands. In cluster mode (cluster/cluster.h) the leader proposes exactly
 * that sequence through raft instead, and every replica applies the committed log. */
#include "node.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cluster/cluster.h"
#include "fsm.h"
#include "log.h"

struct hc_node {
    uv_loop_t *loop;
    const hc_config_t *cfg;
    hc_fsm_t *fsm; /* the replicated state machine (store + request-id window) */
    uv_timer_t expiry_timer;
    int timer_started;
    uint64_t index; /* last applied index; the standalone log */
    int shutting_down;
    int closing_handles;
    void (*close_cb)(void *ud);
    void *close_ud;
    char name[300];
    hc_cluster_t *cl; /* cluster mode, NULL standalone */
    int read_stale;   /* the local read being answered comes from data kept after quorum loss */
    uint8_t rid_prefix[8]; /* request ids drawn by this node: a random prefix and a counter */
    uint64_t rid_next;
};

hc_node_t *hc_node_new(uv_loop_t *loop, const hc_config_t *cfg)
{
    hc_node_t *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return NULL;
    }
    n->loop = loop;
    n->cfg = cfg;
    randombytes_buf(n->rid_prefix, sizeof(n->rid_prefix));
    n->fsm = hc_fsm_new(cfg->max_memory, HC_FSM_WINDOW);
    if (n->fsm == NULL || (cfg->ha_mode && hc_cluster_new(loop, cfg, n->fsm, &n->cl) != 0)) {
        hc_fsm_free(n->fsm);
        free(n);
        return NULL;
    }
    snprintf(n->name, sizeof(n->name), "%s",
             n->cl != NULL    ? hc_cluster_name(n->cl)
             : cfg->http_addr ? cfg->http_addr
                              : "standalone");
    return n;
}

/* Applies planned EVICT/EXPIRE commands at the next indexes, as a leader would propose them. */
static void apply_planned(hc_node_t *n, const hc_cmd_list_t *l, uint64_t now)
{
    for (size_t i = 0; i < l->n; i++) {
        hc_apply_result_t r;
        int rv = hc_fsm_apply(n->fsm, &l->v[i], NULL, ++n->index, now, &r);
        if (rv != 0) {
            hc_log(HC_LOG_WARN, "eviction command failed", HC_LS("error", hc_strerror(rv)));
        }
    }
}

static void on_expiry_tick(uv_timer_t *t)
{
    hc_node_t *n = t->data;
    if (n->cl != NULL) {
        hc_cluster_tick(n->cl);
        return;
    }
    uint64_t now = hc_wall_ms();
    hc_cmd_list_t expired = {0};
    hc_fsm_plan_expiry(n->fsm, now, HC_FSM_EXPIRE_BATCH, &expired);
    apply_planned(n, &expired, now);
    if (expired.n > 0) {
        hc_log(HC_LOG_TRACE, "expired entries reclaimed", HC_LU("count", expired.n));
    }
    hc_cmd_list_free(&expired);
}

int hc_node_start(hc_node_t *n)
{
    int rv = uv_timer_init(n->loop, &n->expiry_timer);
    if (rv != 0) {
        return HC_EINTERNAL;
    }
    n->expiry_timer.data = n;
    n->timer_started = 1;
    uint64_t period = n->cfg->expiry_interval_ms ? n->cfg->expiry_interval_ms : 100;
    uv_timer_start(&n->expiry_timer, on_expiry_tick, period, period);
    if (n->cl != NULL) {
        return hc_cluster_start(n->cl);
    }
    hc_log(HC_LOG_INFO, "node started", HC_LS("node", n->name), HC_LS("role", "standalone"),
           HC_LU("max_memory", n->cfg->max_memory));
    return 0;
}

void hc_node_begin_shutdown(hc_node_t *n)
{
    n->shutting_down = 1;
}

static void on_timer_closed(uv_handle_t *h)
{
    hc_node_t *n = h->data;
    if (--n->closing_handles == 0 && n->close_cb) {
        n->close_cb(n->close_ud);
    }
}

static void on_cluster_closed(void *ud)
{
    hc_node_t *n = ud;
    if (--n->closing_handles == 0 && n->close_cb) {
        n->close_cb(n->close_ud);
    }
}

void hc_node_close(hc_node_t *n, void (*cb)(void *ud), void *ud)
{
    n->close_cb = cb;
    n->close_ud = ud;
    n->closing_handles++; /* held until every handle below was asked to close */
    if (n->timer_started) {
        n->closing_handles++;
        uv_close((uv_handle_t *)&n->expiry_timer, on_timer_closed);
        n->timer_started = 0;
    }
    if (n->cl != NULL) {
        n->closing_handles++;
        hc_cluster_close(n->cl, on_cluster_closed, n);
    }
    if (--n->closing_handles == 0 && cb) {
        cb(ud);
    }
}

void hc_node_free(hc_node_t *n)
{
    if (n == NULL) {
        return;
    }
    hc_cluster_free(n->cl);
    hc_fsm_free(n->fsm);
    free(n);
}

static hc_node_op_t *standalone_write(hc_node_t *n, const hc_cmd_t *cmd, const uint8_t rid[16],
                                      uint64_t ttl_ms, hc_ack_t ack, hc_write_cb cb, void *ud);

/* A request id nobody else uses: 8 random bytes drawn at start, then a counter (a random id per
 * write costs a getrandom call, which showed as a third of a pipelined SET's time). */
static void next_rid(hc_node_t *n, uint8_t rid[HC_REQUEST_ID_BYTES])
{
    memcpy(rid, n->rid_prefix, 8);
    uint64_t v = ++n->rid_next;
    for (int i = 0; i < 8; i++) {
        rid[8 + i] = (uint8_t)(v >> (8 * i));
    }
}

hc_node_op_t *hc_node_write(hc_node_t *n, const hc_cmd_t *cmd, uint64_t ttl_ms, hc_ack_t ack,
                            hc_write_cb cb, void *ud)
{
    return hc_node_write_seq(n, cmd, ttl_ms, ack, NULL, cb, ud);
}

hc_node_op_t *hc_node_write_seq(hc_node_t *n, const hc_cmd_t *cmd, uint64_t ttl_ms, hc_ack_t ack,
                                const void *seq, hc_write_cb cb, void *ud)
{
    uint8_t rid[HC_REQUEST_ID_BYTES];
    next_rid(n, rid);
    if (n->cl != NULL) {
        return hc_cluster_write(n->cl, cmd, rid, ttl_ms, ack, seq, cb, ud);
    }
    /* standalone, an id nobody else knows can never come back: no window entry for it */
    return standalone_write(n, cmd, NULL, ttl_ms, ack, cb, ud);
}

hc_node_op_t *hc_node_write_rid(hc_node_t *n, const hc_cmd_t *cmd, const uint8_t rid[16],
                                uint64_t ttl_ms, hc_ack_t ack, hc_write_cb cb, void *ud)
{
    if (n->cl != NULL) {
        return hc_cluster_write(n->cl, cmd, rid, ttl_ms, ack, NULL, cb, ud);
    }
    return standalone_write(n, cmd, rid, ttl_ms, ack, cb, ud);
}

hc_node_op_t *hc_node_read_async(hc_node_t *n, const char *cache, size_t cache_len, const void *key,
                                 size_t klen, hc_consistency_t consistency, hc_read_cb cb, void *ud)
{
    if (n->cl != NULL && consistency != HC_READ_LOCAL) {
        return hc_cluster_read(n->cl, cache, cache_len, key, klen, consistency, cb, ud);
    }
    hc_entry_view_t v;
    int rv = hc_node_read(n, cache, cache_len, key, klen, HC_READ_LOCAL, &v);
    cb(ud, rv, rv == 0 ? &v : NULL);
    n->read_stale = 0;
    return NULL;
}

int hc_node_read_stale(hc_node_t *n)
{
    return n->read_stale;
}

void hc_node_cancel(hc_node_t *n, hc_node_op_t *op)
{
    if (n->cl != NULL && op != NULL) {
        hc_cluster_cancel(n->cl, op);
    }
}

void hc_node_handover(hc_node_t *n, void (*cb)(void *ud), void *ud)
{
    if (n->cl != NULL) {
        hc_cluster_handover(n->cl, cb, ud);
        return;
    }
    cb(ud);
}

static hc_node_op_t *standalone_write(hc_node_t *n, const hc_cmd_t *cmd, const uint8_t rid[16],
                                      uint64_t ttl_ms, hc_ack_t ack, hc_write_cb cb, void *ud)
{
    hc_apply_result_t res;
    memset(&res, 0, sizeof(res));
    hc_dedupe_result_t prev;
    if (rid != NULL && hc_fsm_find_request(n->fsm, rid, &prev)) {
        /* a retry of a write already applied: the first outcome, applied once */
        cb(ud, prev.status, &prev.res);
        return NULL;
    }
    /* A standalone node keeps applying writes while it drains: they are requests that were
     * in flight when the stop began (the listener is closed by then). */
    uint64_t now = hc_wall_ms();
    hc_cmd_t c = *cmd;
    c.expire_at_ms = ttl_ms ? now + ttl_ms : 0;
    hc_cmd_list_t room = {0};
    int rv = hc_fsm_plan_put(n->fsm, &c, now, &room);
    if (rv != 0) {
        hc_cmd_list_free(&room);
        cb(ud, rv, &res);
        return NULL;
    }
    apply_planned(n, &room, now);
    hc_cmd_list_free(&room);
    /* The standalone node answers every ack level once the write is applied locally. */
    (void)ack;
    hc_buf_t vals;
    hc_buf_init(&vals);
    rv = hc_fsm_apply_vals(n->fsm, &c, rid, n->index + 1, now, &res, &vals);
    if (rv == 0 || c.op == HC_OP_BATCH) {
        n->index++;
    }
    cb(ud, rv, &res);
    hc_buf_free(&vals);
    return NULL;
}

int hc_node_read(hc_node_t *n, const char *cache, size_t cache_len, const void *key, size_t klen,
                 hc_consistency_t consistency, hc_entry_view_t *out)
{
    /* Standalone: this node is its own leader, so every consistency is served locally. The
     * cluster serves leader / linearizable reads through hc_node_read_async only. */
    if (n->cl != NULL && consistency != HC_READ_LOCAL) {
        return HC_EUNAVAILABLE;
    }
    n->read_stale = 0;
    if (n->cl != NULL) {
        return hc_cluster_local_read(n->cl, cache, cache_len, key, klen, out, &n->read_stale);
    }
    return hc_store_get(hc_fsm_store(n->fsm), cache, cache_len, key, klen, hc_wall_ms(), out);
}

int hc_node_scan(hc_node_t *n, const char *cache, size_t cache_len, uint64_t cursor, size_t count,
                 hc_scan_cb cb, void *ud, uint64_t *next)
{
    *next = 0;
    if (n->cl != NULL) {
        int stale;
        int rv = hc_cluster_local_read_ok(n->cl, cache, cache_len, &stale);
        if (rv != 0) {
            return rv;
        }
    }
    *next =
        hc_store_scan(hc_fsm_store(n->fsm), cache, cache_len, cursor, count, hc_wall_ms(), cb, ud);
    return 0;
}

void hc_node_status(hc_node_t *n, hc_node_status_t *out)
{
    memset(out, 0, sizeof(*out));
    if (n->cl != NULL) {
        hc_cluster_status(n->cl, n->shutting_down, out);
        return;
    }
    out->role = "standalone";
    out->term = 0;
    out->quorum = 1;
    out->ready = !n->shutting_down;
    out->not_ready_reason = n->shutting_down ? "shutting_down" : NULL;
    out->commit_index = n->index;
    out->applied_index = n->index;
}

typedef struct {
    hc_node_t *n;
    int want_digest;
    hc_node_cache_cb cb;
    void *ud;
} foreach_cache_t;

static void foreach_cache_one(void *ud, const char *name, size_t name_len,
                              const hc_cache_settings_t *settings, const hc_cache_stats_t *st)
{
    foreach_cache_t *f = ud;
    uint8_t d[HC_DIGEST_BYTES];
    if (f->want_digest) {
        hc_store_digest(hc_fsm_store(f->n->fsm), name, name_len, d);
    }
    f->cb(f->ud, name, name_len, settings, st, f->want_digest ? d : NULL);
}

void hc_node_foreach_cache(hc_node_t *n, int want_digest, hc_node_cache_cb cb, void *ud)
{
    foreach_cache_t f = {.n = n, .want_digest = want_digest, .cb = cb, .ud = ud};
    hc_store_foreach_cache(hc_fsm_store(n->fsm), foreach_cache_one, &f);
}

void hc_node_memory(hc_node_t *n, uint64_t *used, uint64_t *max)
{
    *used = hc_store_memory(hc_fsm_store(n->fsm));
    *max = hc_store_max_memory(hc_fsm_store(n->fsm));
}

const char *hc_node_name(hc_node_t *n)
{
    return n->name;
}

struct hc_peers *hc_node_peers(hc_node_t *n)
{
    return n->cl != NULL ? hc_cluster_peers(n->cl) : NULL;
}

hc_node_op_t *hc_node_transfer(hc_node_t *n, const char *to, hc_write_cb cb, void *ud)
{
    if (n->cl == NULL) {
        hc_apply_result_t res;
        memset(&res, 0, sizeof(res));
        cb(ud, HC_EUNAVAILABLE, &res);
        return NULL;
    }
    return hc_cluster_transfer(n->cl, to, cb, ud);
}

hc_node_op_t *hc_node_member_change(hc_node_t *n, int add, const char *node, hc_write_cb cb,
                                    void *ud)
{
    if (n->cl == NULL) {
        hc_apply_result_t res;
        memset(&res, 0, sizeof(res));
        cb(ud, HC_EUNAVAILABLE, &res);
        return NULL;
    }
    return hc_cluster_member_change(n->cl, add, node, cb, ud);
}

typedef struct {
    hc_buf_t *out;
    int memory; /* 0: entries family, 1: memory family */
} cache_series_t;

static void render_cache_series(void *ud, const char *name, size_t name_len,
                                const hc_cache_settings_t *settings, const hc_cache_stats_t *st)
{
    cache_series_t *cs = ud;
    hc_buf_puts(cs->out, cs->memory ? "hacache_cache_memory_bytes{cache=\""
                                    : "hacache_cache_entries{cache=\"");
    hc_buf_prom_label(cs->out, name, name_len);
    hc_buf_printf(cs->out, "\"} %" PRIu64 "\n", cs->memory ? st->memory : st->entries);
}

void hc_node_render_metrics(hc_node_t *n, hc_buf_t *out)
{
    hc_node_status_t st;
    hc_node_status(n, &st);
    int is_leader = n->cl == NULL || strcmp(st.role, "leader") == 0;
    hc_store_t *ms = hc_fsm_store(n->fsm);
    hc_cache_stats_t tot;
    hc_store_totals(ms, &tot);
    hc_buf_printf(
        out,
        "# HELP hacache_up 1 while the node runs.\n# TYPE hacache_up gauge\n"
        "hacache_up 1\n"
        "# HELP hacache_raft_term Current raft term (0 in standalone).\n"
        "# TYPE hacache_raft_term gauge\nhacache_raft_term %" PRIu64 "\n"
        "# HELP hacache_raft_is_leader 1 when this node leads (standalone leads "
        "itself).\n# TYPE hacache_raft_is_leader gauge\nhacache_raft_is_leader %d\n"
        "# HELP hacache_raft_leader_changes_total Leader changes seen.\n"
        "# TYPE hacache_raft_leader_changes_total counter\n"
        "hacache_raft_leader_changes_total %" PRIu64 "\n"
        "# HELP hacache_raft_commit_index Highest committed index.\n"
        "# TYPE hacache_raft_commit_index gauge\nhacache_raft_commit_index %" PRIu64 "\n"
        "# HELP hacache_raft_applied_index Highest applied index.\n"
        "# TYPE hacache_raft_applied_index gauge\nhacache_raft_applied_index %" PRIu64 "\n"
        "# HELP hacache_quorum 1 while in contact with a quorum.\n"
        "# TYPE hacache_quorum gauge\nhacache_quorum %d\n"
        "# HELP hacache_invalidations_total Quorum-loss invalidation events.\n"
        "# TYPE hacache_invalidations_total counter\nhacache_invalidations_total %" PRIu64 "\n",
        st.term, is_leader, st.leader_changes, st.commit_index, st.applied_index, st.quorum,
        n->cl != NULL ? hc_cluster_invalidations(n->cl) : 0);
    if (n->cl != NULL) {
        hc_buf_puts(out, "# HELP hacache_peer_connected 1 while the link to a peer is up.\n"
                         "# TYPE hacache_peer_connected gauge\n");
        for (size_t i = 0; i < st.n_peers; i++) {
            hc_buf_puts(out, "hacache_peer_connected{peer=\"");
            hc_buf_prom_label(out, st.peers[i].node, strlen(st.peers[i].node));
            hc_buf_printf(out, "\"} %d\n", st.peers[i].connected);
        }
        hc_buf_puts(out, "# HELP hacache_peer_clock_offset_seconds The peer's wall clock minus "
                         "this node's (estimate, good to half a round trip).\n"
                         "# TYPE hacache_peer_clock_offset_seconds gauge\n");
        for (size_t i = 0; i < st.n_peers; i++) {
            if (!st.peers[i].has_clock) {
                continue;
            }
            hc_buf_puts(out, "hacache_peer_clock_offset_seconds{peer=\"");
            hc_buf_prom_label(out, st.peers[i].node, strlen(st.peers[i].node));
            hc_buf_printf(out, "\"} %.3f\n", (double)st.peers[i].clock_offset_ms / 1000.0);
        }
        hc_cluster_render_metrics(n->cl, out);
    }
    /* Prometheus wants each family's samples in one group: one pass per family. */
    cache_series_t cs = {.out = out, .memory = 0};
    hc_buf_puts(out, "# HELP hacache_cache_entries Entries per cache.\n"
                     "# TYPE hacache_cache_entries gauge\n");
    hc_store_foreach_cache(ms, render_cache_series, &cs);
    cs.memory = 1;
    hc_buf_puts(out, "# HELP hacache_cache_memory_bytes Accounted bytes per cache.\n"
                     "# TYPE hacache_cache_memory_bytes gauge\n");
    hc_store_foreach_cache(ms, render_cache_series, &cs);
    hc_buf_printf(out,
                  "# HELP hacache_cache_hits_total Reads that found a live entry.\n"
                  "# TYPE hacache_cache_hits_total counter\nhacache_cache_hits_total %" PRIu64 "\n"
                  "# HELP hacache_cache_misses_total Reads that found nothing.\n"
                  "# TYPE hacache_cache_misses_total counter\nhacache_cache_misses_total %" PRIu64
                  "\n"
                  "# HELP hacache_cache_evictions_total Entries evicted for memory.\n"
                  "# TYPE hacache_cache_evictions_total counter\n"
                  "hacache_cache_evictions_total %" PRIu64 "\n"
                  "# HELP hacache_cache_expirations_total Expired entries reclaimed.\n"
                  "# TYPE hacache_cache_expirations_total counter\n"
                  "hacache_cache_expirations_total %" PRIu64 "\n"
                  "# HELP hacache_memory_max_bytes CACHE_MAX_MEMORY.\n"
                  "# TYPE hacache_memory_max_bytes gauge\nhacache_memory_max_bytes %" PRIu64 "\n",
                  tot.hits, tot.misses, tot.evictions, tot.expirations, hc_store_max_memory(ms));
}
