/* node.c: the standalone node. Writes are applied to the store in the order they arrive, each
 * with the next index as its version; room for a write is made first by applying the EVICT /
 * EXPIRE commands that hc_store_plan_put() proposes, and a timer reclaims expired entries by
 * applying EXPIRE commands. That is exactly the sequence a raft leader will propose, so the
 * cluster version replicates the same commands instead of applying them directly. */
#include "node.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Entries reclaimed per expiry tick at most, so a mass expiry never stalls the loop. */
#define EXPIRE_BATCH 1024

typedef struct {
    char *cache;
    size_t cache_len;
    void *key;
    size_t klen;
    int expired;
} victim_t;

typedef struct {
    victim_t *v;
    size_t n, cap;
    int failed;
} victims_t;

struct hc_node {
    uv_loop_t *loop;
    const hc_config_t *cfg;
    hc_store_t *store;
    uv_timer_t expiry_timer;
    int timer_started;
    uint64_t index; /* last applied index; the standalone log */
    int shutting_down;
    int closing_handles;
    void (*close_cb)(void *ud);
    void *close_ud;
    char name[300];
};

hc_node_t *hc_node_new(uv_loop_t *loop, const hc_config_t *cfg)
{
    hc_node_t *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return NULL;
    }
    n->loop = loop;
    n->cfg = cfg;
    n->store = hc_store_new(cfg->max_memory);
    if (n->store == NULL) {
        free(n);
        return NULL;
    }
    snprintf(n->name, sizeof(n->name), "%s", cfg->http_addr ? cfg->http_addr : "standalone");
    return n;
}

static void victims_add(void *ud, const char *cache, size_t cache_len, const void *key, size_t klen,
                        int expired)
{
    victims_t *vs = ud;
    if (vs->failed) {
        return;
    }
    if (vs->n == vs->cap) {
        size_t cap = vs->cap ? vs->cap * 2 : 16;
        victim_t *p = realloc(vs->v, cap * sizeof(*p));
        if (p == NULL) {
            vs->failed = 1;
            return;
        }
        vs->v = p;
        vs->cap = cap;
    }
    victim_t *v = &vs->v[vs->n];
    v->cache = malloc(cache_len ? cache_len : 1);
    v->key = malloc(klen ? klen : 1);
    if (v->cache == NULL || v->key == NULL) {
        free(v->cache);
        free(v->key);
        vs->failed = 1;
        return;
    }
    memcpy(v->cache, cache, cache_len);
    memcpy(v->key, key, klen);
    v->cache_len = cache_len;
    v->klen = klen;
    v->expired = expired;
    vs->n++;
}

static void victims_free(victims_t *vs)
{
    for (size_t i = 0; i < vs->n; i++) {
        free(vs->v[i].cache);
        free(vs->v[i].key);
    }
    free(vs->v);
    memset(vs, 0, sizeof(*vs));
}

/* Applies EVICT/EXPIRE for each victim, as the leader will propose them. */
static void apply_victims(hc_node_t *n, const victims_t *vs, uint64_t now)
{
    for (size_t i = 0; i < vs->n; i++) {
        hc_cmd_t c = {.op = vs->v[i].expired ? HC_OP_EXPIRE : HC_OP_EVICT,
                      .cache = vs->v[i].cache,
                      .cache_len = vs->v[i].cache_len,
                      .key = vs->v[i].key,
                      .klen = vs->v[i].klen,
                      /* guard: an EXPIRE never removes an entry rewritten with a later expiry */
                      .expire_at_ms = vs->v[i].expired ? now : 0};
        hc_apply_result_t r;
        int rv = hc_store_apply(n->store, &c, ++n->index, now, &r);
        if (rv != 0) {
            hc_log(HC_LOG_WARN, "eviction command failed", HC_LS("error", hc_strerror(rv)));
        }
    }
}

static void on_expiry_tick(uv_timer_t *t)
{
    hc_node_t *n = t->data;
    uint64_t now = hc_wall_ms();
    victims_t vs = {0};
    hc_store_collect_expired(n->store, now, EXPIRE_BATCH, victims_add, &vs);
    apply_victims(n, &vs, now);
    if (vs.n > 0) {
        hc_log(HC_LOG_TRACE, "expired entries reclaimed", HC_LU("count", vs.n));
    }
    victims_free(&vs);
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

void hc_node_close(hc_node_t *n, void (*cb)(void *ud), void *ud)
{
    n->close_cb = cb;
    n->close_ud = ud;
    if (n->timer_started) {
        n->closing_handles++;
        uv_close((uv_handle_t *)&n->expiry_timer, on_timer_closed);
        n->timer_started = 0;
    } else if (cb) {
        cb(ud);
    }
}

void hc_node_free(hc_node_t *n)
{
    if (n == NULL) {
        return;
    }
    hc_store_free(n->store);
    free(n);
}

void hc_node_write(hc_node_t *n, const hc_cmd_t *cmd, uint64_t ttl_ms, hc_ack_t ack, hc_write_cb cb,
                   void *ud)
{
    hc_apply_result_t res;
    memset(&res, 0, sizeof(res));
    /* A standalone node keeps applying writes while it drains: they are requests that were
     * in flight when the stop began (the listener is closed by then). */
    uint64_t now = hc_wall_ms();
    hc_cmd_t c = *cmd;
    c.expire_at_ms = ttl_ms ? now + ttl_ms : 0;

    if (c.op == HC_OP_PUT || c.op == HC_OP_INCR) {
        victims_t vs = {0};
        int rv = hc_store_plan_put(n->store, &c, now, victims_add, &vs);
        if (rv == 0 && vs.failed) {
            rv = HC_ENOMEM;
        }
        if (rv != 0) {
            victims_free(&vs);
            cb(ud, rv, &res);
            return;
        }
        apply_victims(n, &vs, now);
        victims_free(&vs);
    }
    /* The standalone node answers every ack level once the write is applied locally. */
    (void)ack;
    int rv = hc_store_apply(n->store, &c, n->index + 1, now, &res);
    if (rv == 0) {
        n->index++;
    }
    cb(ud, rv, &res);
}

int hc_node_read(hc_node_t *n, const char *cache, size_t cache_len, const void *key, size_t klen,
                 hc_consistency_t consistency, hc_entry_view_t *out)
{
    /* Standalone: this node is its own leader, so every consistency is served locally. */
    (void)consistency;
    return hc_store_get(n->store, cache, cache_len, key, klen, hc_wall_ms(), out);
}

void hc_node_status(hc_node_t *n, hc_node_status_t *out)
{
    memset(out, 0, sizeof(*out));
    out->role = "standalone";
    out->term = 0;
    out->quorum = 1;
    out->ready = !n->shutting_down;
    out->not_ready_reason = n->shutting_down ? "shutting_down" : NULL;
    out->commit_index = n->index;
    out->applied_index = n->index;
}

hc_store_t *hc_node_store(hc_node_t *n)
{
    return n->store;
}

const char *hc_node_name(hc_node_t *n)
{
    return n->name;
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
    hc_cache_stats_t tot;
    hc_store_totals(n->store, &tot);
    hc_buf_printf(out,
                  "# HELP hacache_up 1 while the node runs.\n# TYPE hacache_up gauge\n"
                  "hacache_up 1\n"
                  "# HELP hacache_raft_term Current raft term (0 in standalone).\n"
                  "# TYPE hacache_raft_term gauge\nhacache_raft_term %" PRIu64 "\n"
                  "# HELP hacache_raft_is_leader 1 when this node leads (standalone leads "
                  "itself).\n# TYPE hacache_raft_is_leader gauge\nhacache_raft_is_leader 1\n"
                  "# HELP hacache_raft_leader_changes_total Leader changes seen.\n"
                  "# TYPE hacache_raft_leader_changes_total counter\n"
                  "hacache_raft_leader_changes_total 0\n"
                  "# HELP hacache_raft_commit_index Highest committed index.\n"
                  "# TYPE hacache_raft_commit_index gauge\nhacache_raft_commit_index %" PRIu64 "\n"
                  "# HELP hacache_raft_applied_index Highest applied index.\n"
                  "# TYPE hacache_raft_applied_index gauge\nhacache_raft_applied_index %" PRIu64
                  "\n"
                  "# HELP hacache_quorum 1 while in contact with a quorum.\n"
                  "# TYPE hacache_quorum gauge\nhacache_quorum %d\n"
                  "# HELP hacache_invalidations_total Caches dropped after quorum loss.\n"
                  "# TYPE hacache_invalidations_total counter\nhacache_invalidations_total 0\n",
                  st.term, st.commit_index, st.applied_index, st.quorum);
    /* Prometheus wants each family's samples in one group: one pass per family. */
    cache_series_t cs = {.out = out, .memory = 0};
    hc_buf_puts(out, "# HELP hacache_cache_entries Entries per cache.\n"
                     "# TYPE hacache_cache_entries gauge\n");
    hc_store_foreach_cache(n->store, render_cache_series, &cs);
    cs.memory = 1;
    hc_buf_puts(out, "# HELP hacache_cache_memory_bytes Accounted bytes per cache.\n"
                     "# TYPE hacache_cache_memory_bytes gauge\n");
    hc_store_foreach_cache(n->store, render_cache_series, &cs);
    hc_buf_printf(
        out,
        "# HELP hacache_cache_hits_total Reads that found a live entry.\n"
        "# TYPE hacache_cache_hits_total counter\nhacache_cache_hits_total %" PRIu64 "\n"
        "# HELP hacache_cache_misses_total Reads that found nothing.\n"
        "# TYPE hacache_cache_misses_total counter\nhacache_cache_misses_total %" PRIu64 "\n"
        "# HELP hacache_cache_evictions_total Entries evicted for memory.\n"
        "# TYPE hacache_cache_evictions_total counter\n"
        "hacache_cache_evictions_total %" PRIu64 "\n"
        "# HELP hacache_cache_expirations_total Expired entries reclaimed.\n"
        "# TYPE hacache_cache_expirations_total counter\n"
        "hacache_cache_expirations_total %" PRIu64 "\n"
        "# HELP hacache_memory_max_bytes CACHE_MAX_MEMORY.\n"
        "# TYPE hacache_memory_max_bytes gauge\nhacache_memory_max_bytes %" PRIu64 "\n",
        tot.hits, tot.misses, tot.evictions, tot.expirations, hc_store_max_memory(n->store));
}
