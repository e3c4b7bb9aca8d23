/* node.c: the node. Standalone, writes are applied to the store in the order they arrive, each
 * with the next index as its version; room for a write is made first by applying the EVICT /
 * EXPIRE commands that hc_store_plan_put() proposes, and a timer reclaims expired entries by
 * applying EXPIRE commands. In cluster mode (node_cluster.c-style second half of this file) the
 * leader proposes exactly that sequence through raft instead, and every replica applies the
 * committed log. */
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "codec.h"
#include "hacache.pb-c.h"
#include "log.h"
#include "peer.h"
#include "raft.h"

/* Entries reclaimed per expiry tick at most, so a mass expiry never stalls the loop. */
#define EXPIRE_BATCH 1024
/* request ids a standalone node remembers (the same window as a cluster's, see DEDUPE_WINDOW) */
#define STANDALONE_DEDUPE_WINDOW 8192

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

typedef struct cluster cluster_t;

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
    cluster_t *cl;       /* cluster mode state, NULL standalone */
    int read_stale;      /* the local read being answered comes from data kept after quorum loss */
    hc_dedupe_t *dedupe; /* standalone: request ids already applied (the cluster's is in cl) */
};

/* cluster-mode entry points (second half of this file) */
static int cluster_new(hc_node_t *n);
static int cluster_start(hc_node_t *n);
static void cluster_expiry_tick(hc_node_t *n);
static void cluster_close(hc_node_t *n);
static void cluster_free(hc_node_t *n);
static hc_node_op_t *cluster_write(hc_node_t *n, const hc_cmd_t *cmd, const uint8_t rid[16],
                                   uint64_t ttl_ms, hc_ack_t ack, hc_write_cb cb, void *ud);
static hc_node_op_t *cluster_read(hc_node_t *n, const char *cache, size_t cache_len,
                                  const void *key, size_t klen, hc_consistency_t consistency,
                                  hc_read_cb cb, void *ud);
static void cluster_cancel(hc_node_t *n, hc_node_op_t *op);
static void cluster_status(hc_node_t *n, hc_node_status_t *out);
static void cluster_handover(hc_node_t *n, void (*cb)(void *ud), void *ud);
static void cluster_render_metrics(hc_node_t *n, hc_buf_t *out);
static int cluster_local_read(hc_node_t *n, const char *cache, size_t cache_len, const void *key,
                              size_t klen, hc_entry_view_t *out);
static uint64_t cluster_invalidations(hc_node_t *n);

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
    if (cfg->ha_mode ? cluster_new(n) != 0
                     : (n->dedupe = hc_dedupe_new(STANDALONE_DEDUPE_WINDOW)) == NULL) {
        hc_store_free(n->store);
        free(n);
        return NULL;
    }
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
    if (n->cl != NULL) {
        cluster_expiry_tick(n);
        return;
    }
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
    if (n->cl != NULL) {
        return cluster_start(n);
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
        cluster_close(n);
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
    if (n->cl != NULL) {
        cluster_free(n);
    }
    hc_dedupe_free(n->dedupe);
    hc_store_free(n->store);
    free(n);
}

static hc_node_op_t *standalone_write(hc_node_t *n, const hc_cmd_t *cmd, const uint8_t rid[16],
                                      uint64_t ttl_ms, hc_ack_t ack, hc_write_cb cb, void *ud);

hc_node_op_t *hc_node_write(hc_node_t *n, const hc_cmd_t *cmd, uint64_t ttl_ms, hc_ack_t ack,
                            hc_write_cb cb, void *ud)
{
    uint8_t rid[HC_REQUEST_ID_BYTES];
    randombytes_buf(rid, sizeof(rid));
    return hc_node_write_rid(n, cmd, rid, ttl_ms, ack, cb, ud);
}

hc_node_op_t *hc_node_write_rid(hc_node_t *n, const hc_cmd_t *cmd, const uint8_t rid[16],
                                uint64_t ttl_ms, hc_ack_t ack, hc_write_cb cb, void *ud)
{
    if (n->cl != NULL) {
        return cluster_write(n, cmd, rid, ttl_ms, ack, cb, ud);
    }
    return standalone_write(n, cmd, rid, ttl_ms, ack, cb, ud);
}

hc_node_op_t *hc_node_read_async(hc_node_t *n, const char *cache, size_t cache_len, const void *key,
                                 size_t klen, hc_consistency_t consistency, hc_read_cb cb, void *ud)
{
    if (n->cl != NULL && consistency != HC_READ_LOCAL) {
        return cluster_read(n, cache, cache_len, key, klen, consistency, cb, ud);
    }
    hc_entry_view_t v;
    int rv = n->cl != NULL ? cluster_local_read(n, cache, cache_len, key, klen, &v)
                           : hc_store_get(n->store, cache, cache_len, key, klen, hc_wall_ms(), &v);
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
        cluster_cancel(n, op);
    }
}

void hc_node_handover(hc_node_t *n, void (*cb)(void *ud), void *ud)
{
    if (n->cl != NULL) {
        cluster_handover(n, cb, ud);
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
    if (hc_dedupe_find(n->dedupe, rid, &prev)) {
        /* a retry of a write already applied: the first outcome, applied once */
        cb(ud, prev.status, &prev.res);
        return NULL;
    }
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
            return NULL;
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
    hc_dedupe_result_t r = {.index = n->index, .status = rv, .res = res};
    hc_dedupe_add(n->dedupe, rid, &r);
    cb(ud, rv, &res);
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
    if (n->cl != NULL) {
        return cluster_local_read(n, cache, cache_len, key, klen, out);
    }
    return hc_store_get(n->store, cache, cache_len, key, klen, hc_wall_ms(), out);
}

void hc_node_status(hc_node_t *n, hc_node_status_t *out)
{
    memset(out, 0, sizeof(*out));
    if (n->cl != NULL) {
        cluster_status(n, out);
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

hc_store_t *hc_node_store(hc_node_t *n)
{
    return n->store;
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
        hc_store_digest(f->n->store, name, name_len, d);
    }
    f->cb(f->ud, name, name_len, settings, st, f->want_digest ? d : NULL);
}

void hc_node_foreach_cache(hc_node_t *n, int want_digest, hc_node_cache_cb cb, void *ud)
{
    foreach_cache_t f = {.n = n, .want_digest = want_digest, .cb = cb, .ud = ud};
    hc_store_foreach_cache(n->store, foreach_cache_one, &f);
}

void hc_node_memory(hc_node_t *n, uint64_t *used, uint64_t *max)
{
    *used = hc_store_memory(n->store);
    *max = hc_store_max_memory(n->store);
}

const char *hc_node_name(hc_node_t *n)
{
    return n->name;
}

static hc_peers_t *cluster_peers(hc_node_t *n);

struct hc_peers *hc_node_peers(hc_node_t *n)
{
    return n->cl != NULL ? cluster_peers(n) : NULL;
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
    hc_cache_stats_t tot;
    hc_store_totals(n->store, &tot);
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
        n->cl != NULL ? cluster_invalidations(n) : 0);
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
        cluster_render_metrics(n, out);
    }
    /* Prometheus wants each family's samples in one group: one pass per family. */
    hc_store_t *ms = n->store;
    cache_series_t cs = {.out = out, .memory = 0};
    hc_buf_puts(out, "# HELP hacache_cache_entries Entries per cache.\n"
                     "# TYPE hacache_cache_entries gauge\n");
    hc_store_foreach_cache(ms, render_cache_series, &cs);
    cs.memory = 1;
    hc_buf_puts(out, "# HELP hacache_cache_memory_bytes Accounted bytes per cache.\n"
                     "# TYPE hacache_cache_memory_bytes gauge\n");
    hc_store_foreach_cache(ms, render_cache_series, &cs);
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

/* ============================================================================================
 * Cluster mode.
 *
 * Ids: every HA_HOSTS entry's raft id is hc_node_id_of(host:port), so every node derives the
 * same ids from the same list. Each process start picks a random incarnation and PRNG seed.
 * The raft hard state (term, vote) lives in CACHE_DATA_DIR/raft-<host>_<port>.state and is
 * written durably before any message of the update that changed it is sent. Start mode:
 * RESTART when that file exists, else BOOTSTRAP with every HA_HOSTS entry as a voter.
 * Snapshots: a follower that needs entries the leader compacted away gets a node snapshot
 * (hc_node_snapshot_encode: store + request-id window, captured at the leader's applied index)
 * streamed as SnapshotChunk frames on the peer link; every node compacts its own log after
 * applying (see COMPACT_*).
 * Quorum loss: see "quorum loss" below (local invalidation, raft_state_lost, then a snapshot
 * from the next leader).
 * Not done yet (next step): amnesia detection (a node whose file vanished rejoins as a fresh id
 * through JOIN) and membership changes that follow HA_HOSTS.
 * ========================================================================================== */

#define DEDUPE_WINDOW      8192
#define CLOCK_PERIOD_MS    5000   /* clock comparison with each peer */
#define CLOCK_WARN_MS      500    /* offsets above this are logged */
#define RETRY_PAUSE_MS     20     /* a parked write refused by a former leader waits this long */
#define CL_MAX_LOG_ENTRIES 65536u /* raft refuses proposals (EFULL) beyond */
#define CL_MAX_LOG_BYTES   ((uint64_t)256 << 20) /* ... or this many retained data bytes */
/* Compaction: after applying, when the retained log holds more than COMPACT_ENTRIES entries
 * the log is cut at applied - COMPACT_KEEP (the tail stays for followers that lag a little);
 * when it holds more than COMPACT_BYTES data bytes it is cut at applied. Nothing has to be
 * captured at the cut: a snapshot is always taken from the live store at the applied index,
 * which is >= every cut. HACACHE_TEST_COMPACT_ENTRIES (tests only) lowers COMPACT_ENTRIES
 * (COMPACT_KEEP becomes a fifth of it). */
#define COMPACT_ENTRIES  10000u
#define COMPACT_KEEP     2000u
#define COMPACT_BYTES    ((uint64_t)64 << 20)
#define SNAP_CHUNK       ((size_t)1 << 20)    /* SnapshotChunk data bytes at most */
#define SNAP_QUEUE_HIGH  ((size_t)8 << 20)    /* stop queueing chunks above this link queue */
#define SNAP_PUMP_MS     5                    /* retry interval while a transfer waits */
#define SNAP_STAGE_SLACK ((uint64_t)64 << 20) /* staging bound: 2 * CACHE_MAX_MEMORY + this */

/* Leader side: one snapshot transfer per follower. */
typedef struct {
    int active;
    uint8_t *data; /* the node snapshot, owned */
    size_t len, off;
    uint64_t index, term, leader_term;
    uint8_t *members; /* raft_members_encode(), owned */
    size_t members_len;
    uint64_t started_ns;
    /* kept across transfers: compaction stays at or below hold_index until the follower
     * acknowledged it or hold_until (loop ms) passed, so the entries after a snapshot are still
     * there when the follower asks for them */
    uint64_t hold_index, hold_until;
} snap_tx_t;

/* Follower side: the snapshot being staged. */
typedef struct {
    int active;
    int peer;
    uint64_t index, term, leader_term;
    hc_buf_t buf;
    uint8_t *members;
    size_t members_len;
    uint64_t started_ns;
} snap_rx_t;

typedef enum {
    OP_LEADER_WRITE = 1, /* proposed here, waiting for its ack level (local or for a follower) */
    OP_FWD_WRITE,        /* forwarded to the leader, waiting for ForwardResult */
    OP_FWD_READ,         /* leader read or ReadIndex request sent to the leader */
    OP_READ_INDEX,       /* raft_read_index on this (leader) node, ctx = op->ctx */
    OP_RETRY_WRITE,      /* a local write whose fate became unknown, parked until a leader is
                            known; sent again with its request id (retry_parked_writes) */
    OP_TRANSFER,         /* admin leadership transfer: answered once this node stops leading */
} op_kind_t;

struct hc_node_op {
    struct hc_node_op *prev, *next;
    op_kind_t kind;
    hc_write_cb wcb; /* NULL: detached (cancelled) or remote */
    hc_read_cb rcb;
    void *ud;
    hc_ack_t ack;
    uint64_t index, term;
    int wait_apply;  /* answer once applied >= index */
    int remote_peer; /* OP_LEADER_WRITE / OP_READ_INDEX on behalf of this peer, else -1 */
    int peer;        /* OP_FWD_*: the leader we asked */
    uint8_t rid[HC_REQUEST_ID_BYTES];
    uint64_t ctx;      /* read correlation id */
    int linearizable;  /* OP_FWD_READ: ReadIndex rather than a leader read */
    uint64_t deadline; /* loop ms, 0: none */
    char *cache;
    size_t cache_len;
    void *key;
    size_t klen;
    hc_apply_result_t res; /* OP_FWD_WRITE waiting for the local apply: the leader's answer */
    uint64_t remote_id;    /* OP_READ_INDEX for a follower: its correlation id */
    /* local writes: what it takes to send the write again after a leader change */
    uint8_t *enc; /* the command as forwarded (relative TTL in ttl_ms), NULL: no retry */
    size_t enc_len;
    uint64_t ttl_ms;
    uint64_t retry_until; /* loop ms: after this, an unknown fate is reported as such */
    uint64_t retry_after; /* loop ms: not sent again before (a refusal from a former leader) */
};

struct cluster {
    hc_node_t *n;
    raft_t *raft;
    hc_peers_t *peers;
    hc_tls_ctx_t *tls;
    size_t nhosts; /* my HA_HOSTS entries: peer slots 0..nhosts-1 */
    size_t npeers; /* slots in use: HA_HOSTS, then peers that only list me (peer_known) */
    size_t cap;    /* slots allocated */
    int self;
    uint64_t *ids;
    char (*names)[HC_NODE_NAME_MAX + 1];
    uint64_t *last_frame; /* loop ms of the last frame from each peer, 0: never */
    char state_path[4096];
    char members_path[4200];      /* state_path + ".members" (hc_members_save) */
    raft_members_t members_saved; /* what members_path holds; n == 0: nothing yet */
    uint64_t members_saved_epoch;
    int members_check; /* the configuration or epoch changed: save once committed */
    uv_timer_t raft_timer;
    uv_idle_t idle;
    uv_timer_t handover_timer;
    int handles_open;
    int idle_active;
    int closing;
    raft_role_t role;
    uint64_t term;
    uint64_t leader; /* raft id, 0 unknown */
    int leader_idx;  /* host index of the leader, -1 unknown */
    uint64_t leader_changes;
    uint64_t commit_heard;
    uint64_t applied;
    uint64_t next_ctx;
    uint64_t expire_barrier; /* no new EXPIRE batch until this index is applied */
    hc_dedupe_t *dedupe;
    hc_node_op_t *ops; /* doubly linked list of every op in flight */
    void (*handover_cb)(void *ud);
    void *handover_ud;
    snap_tx_t *tx; /* per host index */
    snap_rx_t rx;
    uv_timer_t snap_timer;
    uint64_t compact_entries, compact_keep;
    uint64_t compact_hold_max; /* never hold more than this many entries back for followers */
    uint64_t snapshots_sent, snapshots_installed, snapshots_failed, compactions;
    uint64_t last_snapshot_bytes, last_snapshot_ms;
    /* quorum loss (see on_ql_timer, "quorum loss") */
    uv_timer_t ql_timer;
    uint64_t ql_deadline;    /* loop ms: invalidate at this instant without fresh contact */
    uint64_t ql_last_tick;   /* loop ms of the last check, to notice a suspended process */
    int ql_armed;            /* quorum was seen since raft (re)started */
    int ql_hold;             /* resumed after a stall: not serving until a fresh quorum contact */
    int ql_tripped;          /* invalidated: not serving until caught up again */
    uint64_t ql_reset_index; /* leading while tripped: the HC_OP_INVALIDATE proposed (index, */
    uint64_t ql_reset_term;  /* term); applying it ends the trip */
    uint64_t invalidations;
    uint64_t write_retries; /* local writes sent again after a leader change */
    /* membership (see "membership") */
    int discovering;          /* no raft yet: asking the peers whether a cluster exists */
    uint8_t *info_state;      /* per peer slot: 0 no answer, 1 not established, 2 established */
    raft_members_t found;     /* configuration reported by an established peer */
    int found_leader;         /* its leader's slot, -1 unknown */
    int joining;              /* started RAFT_START_JOIN, not yet in the configuration */
    uint64_t member_tick_at;  /* loop ms of the next membership step */
    uint64_t members_changes; /* configuration changes this node proposed as leader */
    /* clocks (see "clock skew") */
    int64_t *clock_offset; /* per peer slot: its wall clock minus mine, ms */
    uint64_t *clock_rtt;   /* per peer slot: round trip of the last comparison, 0: none yet */
    uint8_t *clock_warned; /* per peer slot: a skew warning was logged */
    uint64_t clock_tick_at;
};

/* ---- ids, hard state, dedupe window (exported for tests) ---- */

uint64_t hc_node_id_of(const char *hostport)
{
    static const char ctx[] = "hacache-node-id-v1";
    size_t hl = strlen(hostport);
    uint8_t buf[sizeof(ctx) - 1 + HC_NODE_NAME_MAX + 16];
    if (hl > HC_NODE_NAME_MAX + 15) {
        hl = HC_NODE_NAME_MAX + 15;
    }
    memcpy(buf, ctx, sizeof(ctx) - 1);
    for (size_t i = 0; i < hl; i++) {
        char c = hostport[i];
        buf[sizeof(ctx) - 1 + i] = (uint8_t)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    }
    uint8_t h[32];
    crypto_generichash(h, sizeof(h), buf, sizeof(ctx) - 1 + hl, NULL, 0);
    uint64_t id = 0;
    for (int i = 7; i >= 0; i--) {
        id = (id << 8) | h[i];
    }
    return id ? id : 1;
}

int hc_hardstate_path(const char *dir, const char *host, uint16_t port, char *out, size_t cap)
{
    char h[300];
    size_t i = 0;
    for (; host[i] && i < sizeof(h) - 1; i++) {
        char c = host[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-';
        h[i] = ok ? c : '_';
    }
    h[i] = '\0';
    int k = snprintf(out, cap, "%s/raft-%s_%u.state", dir, h, (unsigned)port);
    return k < 0 || (size_t)k >= cap ? HC_ETOOLARGE : 0;
}

static int fsync_dir_of(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        return -1;
    }
    int rv = fsync(fd);
    close(fd);
    return rv;
}

/* Replaces path with body durably: temp file, fsync, rename, fsync of the directory. */
static int write_durably(const char *path, const char *body, int len)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return HC_EINTERNAL;
    }
    ssize_t w = write(fd, body, (size_t)len);
    if (w != len || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return HC_EINTERNAL;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0 || fsync_dir_of(path) != 0) {
        return HC_EINTERNAL;
    }
    return 0;
}

int hc_hardstate_save(const char *path, uint64_t term, uint64_t vote, bool novote)
{
    char body[128];
    int len = snprintf(body, sizeof(body),
                       "hacache raft hard state v1\nterm %" PRIu64 "\nvote %" PRIu64 "\n%s", term,
                       vote, novote ? "novote 1\n" : "");
    return write_durably(path, body, len);
}

int hc_members_save(const char *path, uint64_t index, uint64_t epoch, const raft_members_t *m)
{
    char body[64 + RAFT_MAX_MEMBERS * 32];
    int len =
        snprintf(body, sizeof(body),
                 "hacache raft members v1\nindex %" PRIu64 "\nepoch %" PRIu64 "\n", index, epoch);
    for (uint32_t i = 0; i < m->n && i < RAFT_MAX_MEMBERS; i++) {
        len += snprintf(body + len, sizeof(body) - (size_t)len, "%s %016" PRIx64 "\n",
                        m->m[i].role == RAFT_VOTER ? "voter" : "learner", m->m[i].id);
    }
    return write_durably(path, body, len);
}

int hc_members_load(const char *path, uint64_t *index, uint64_t *epoch, raft_members_t *m)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return errno == ENOENT ? HC_ENOTFOUND : HC_EINTERNAL;
    }
    char buf[64 + (RAFT_MAX_MEMBERS + 1) * 32];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    int more = fgetc(f) != EOF;
    fclose(f);
    if (more) {
        return HC_EINVAL; /* longer than any file we write */
    }
    buf[n] = '\0';
    unsigned long long ix, ep;
    int used = 0;
    if (sscanf(buf, "hacache raft members v1\nindex %llu\nepoch %llu\n%n", &ix, &ep, &used) != 2 ||
        used == 0) {
        return HC_EINVAL;
    }
    raft_members_t out;
    memset(&out, 0, sizeof(out));
    const char *p = buf + used;
    while (*p != '\0') {
        char role[8];
        unsigned long long id;
        int k = 0;
        if (out.n == RAFT_MAX_MEMBERS || sscanf(p, "%7s %16llx\n%n", role, &id, &k) != 2 ||
            k == 0 || p[k - 1] != '\n' || id == 0) {
            return HC_EINVAL;
        }
        if (strcmp(role, "voter") == 0) {
            out.m[out.n].role = RAFT_VOTER;
        } else if (strcmp(role, "learner") == 0) {
            out.m[out.n].role = RAFT_LEARNER;
        } else {
            return HC_EINVAL;
        }
        out.m[out.n++].id = id;
        p += k;
    }
    if (out.n == 0) {
        return HC_EINVAL;
    }
    *index = ix;
    *epoch = ep;
    *m = out;
    return 0;
}

int hc_hardstate_load(const char *path, uint64_t *term, uint64_t *vote, bool *novote)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return errno == ENOENT ? HC_ENOTFOUND : HC_EINTERNAL;
    }
    char buf[256];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char tail;
    unsigned long long t, v;
    int used = 0;
    if (sscanf(buf, "hacache raft hard state v1\nterm %llu\nvote %llu%c%n", &t, &v, &tail, &used) !=
            3 ||
        tail != '\n') {
        return HC_EINVAL;
    }
    const char *rest = buf + used;
    if (rest[0] != '\0' && strcmp(rest, "novote 1\n") != 0) {
        return HC_EINVAL;
    }
    *term = t;
    *vote = v;
    *novote = rest[0] != '\0';
    return 0;
}

typedef struct {
    uint8_t id[16];
    hc_dedupe_result_t r;
    int32_t next; /* bucket chain, -1 ends */
    int used;
} dd_slot_t;

struct hc_dedupe {
    size_t cap, head, count; /* ring: slots[head] is the oldest when count == cap */
    dd_slot_t *slots;
    int32_t *buckets;
    size_t nbuckets;
};

static size_t dd_hash(const hc_dedupe_t *d, const uint8_t id[16])
{
    uint64_t h;
    memcpy(&h, id, sizeof(h)); /* request ids are random bytes */
    return (size_t)(h % d->nbuckets);
}

hc_dedupe_t *hc_dedupe_new(size_t cap)
{
    hc_dedupe_t *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return NULL;
    }
    d->cap = cap ? cap : 1;
    d->nbuckets = d->cap * 2;
    d->slots = calloc(d->cap, sizeof(*d->slots));
    d->buckets = malloc(d->nbuckets * sizeof(*d->buckets));
    if (d->slots == NULL || d->buckets == NULL) {
        hc_dedupe_free(d);
        return NULL;
    }
    hc_dedupe_clear(d);
    return d;
}

void hc_dedupe_free(hc_dedupe_t *d)
{
    if (d != NULL) {
        free(d->slots);
        free(d->buckets);
        free(d);
    }
}

void hc_dedupe_clear(hc_dedupe_t *d)
{
    memset(d->slots, 0, d->cap * sizeof(*d->slots));
    for (size_t i = 0; i < d->nbuckets; i++) {
        d->buckets[i] = -1;
    }
    d->head = d->count = 0;
}

int hc_dedupe_find(const hc_dedupe_t *d, const uint8_t id[16], hc_dedupe_result_t *out)
{
    for (int32_t i = d->buckets[dd_hash(d, id)]; i >= 0; i = d->slots[i].next) {
        if (memcmp(d->slots[i].id, id, 16) == 0) {
            if (out) {
                *out = d->slots[i].r;
            }
            return 1;
        }
    }
    return 0;
}

void hc_dedupe_add(hc_dedupe_t *d, const uint8_t id[16], const hc_dedupe_result_t *r)
{
    size_t slot;
    if (d->count == d->cap) {
        slot = d->head; /* evict the oldest */
        dd_slot_t *old = &d->slots[slot];
        int32_t *pp = &d->buckets[dd_hash(d, old->id)];
        while (*pp >= 0 && *pp != (int32_t)slot) {
            pp = &d->slots[*pp].next;
        }
        if (*pp == (int32_t)slot) {
            *pp = old->next;
        }
        d->head = (d->head + 1) % d->cap;
    } else {
        slot = (d->head + d->count) % d->cap;
        d->count++;
    }
    dd_slot_t *e = &d->slots[slot];
    memcpy(e->id, id, 16);
    e->r = *r;
    e->used = 1;
    size_t b = dd_hash(d, id);
    e->next = d->buckets[b];
    d->buckets[b] = (int32_t)slot;
}

static void le_put(hc_buf_t *b, uint64_t v, int bytes)
{
    uint8_t p[8];
    for (int i = 0; i < bytes; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
    hc_buf_append(b, p, (size_t)bytes);
}

static uint64_t le_get(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

#define DD_REC_BYTES (16 + 8 + 4 + 8 + 8 + 4 + 8)

void hc_dedupe_serialize(const hc_dedupe_t *d, hc_buf_t *out)
{
    le_put(out, d->count, 4);
    for (size_t k = 0; k < d->count; k++) {
        const dd_slot_t *e = &d->slots[(d->head + k) % d->cap];
        hc_buf_append(out, e->id, 16);
        le_put(out, e->r.index, 8);
        le_put(out, (uint32_t)e->r.status, 4);
        le_put(out, e->r.res.version, 8);
        le_put(out, (uint64_t)e->r.res.integer, 8);
        le_put(out, (uint32_t)e->r.res.existed, 4);
        le_put(out, e->r.res.removed, 8);
    }
}

int hc_dedupe_load(hc_dedupe_t *d, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    hc_dedupe_clear(d);
    if (len < 4) {
        return HC_EINVAL;
    }
    uint64_t count = le_get(p, 4);
    if (count > d->cap || (len - 4) / DD_REC_BYTES != count || (len - 4) % DD_REC_BYTES != 0) {
        return HC_EINVAL;
    }
    for (uint64_t k = 0; k < count; k++) {
        const uint8_t *q = p + 4 + k * DD_REC_BYTES;
        if (hc_dedupe_find(d, q, NULL)) {
            hc_dedupe_clear(d);
            return HC_EINVAL; /* duplicate id */
        }
        hc_dedupe_result_t r;
        memset(&r, 0, sizeof(r));
        r.index = le_get(q + 16, 8);
        r.status = (int32_t)(uint32_t)le_get(q + 24, 4);
        r.res.version = le_get(q + 28, 8);
        r.res.integer = (int64_t)le_get(q + 36, 8);
        r.res.existed = (int32_t)(uint32_t)le_get(q + 44, 4);
        r.res.removed = le_get(q + 48, 8);
        hc_dedupe_add(d, q, &r);
    }
    return 0;
}

#define NODE_SNAP_MAGIC   "HCNS"
#define NODE_SNAP_VERSION 1

void hc_node_snapshot_encode(hc_store_t *s, const hc_dedupe_t *d, hc_buf_t *out)
{
    uint8_t v = NODE_SNAP_VERSION;
    hc_buf_append(out, NODE_SNAP_MAGIC, 4);
    hc_buf_append(out, &v, 1);
    size_t at = out->len;
    le_put(out, 0, 8); /* store length, patched below */
    hc_store_serialize(s, out);
    if (out->failed) {
        return;
    }
    uint64_t slen = out->len - at - 8;
    for (int i = 0; i < 8; i++) {
        out->data[at + (size_t)i] = (char)(uint8_t)(slen >> (8 * i));
    }
    at = out->len;
    le_put(out, 0, 8);
    hc_dedupe_serialize(d, out);
    if (out->failed) {
        return;
    }
    uint64_t dlen = out->len - at - 8;
    for (int i = 0; i < 8; i++) {
        out->data[at + (size_t)i] = (char)(uint8_t)(dlen >> (8 * i));
    }
}

int hc_node_snapshot_decode(const void *buf, size_t len, hc_store_t *s, hc_dedupe_t *d)
{
    const uint8_t *p = buf;
    if (p == NULL || len < 13 || memcmp(p, NODE_SNAP_MAGIC, 4) != 0 || p[4] != NODE_SNAP_VERSION) {
        return HC_EINVAL;
    }
    uint64_t slen = le_get(p + 5, 8);
    size_t off = 13;
    if (slen > len - off) {
        return HC_EINVAL;
    }
    const uint8_t *sp = p + off;
    off += (size_t)slen;
    if (len - off < 8) {
        return HC_EINVAL;
    }
    uint64_t dlen = le_get(p + off, 8);
    off += 8;
    if (dlen != len - off) {
        return HC_EINVAL;
    }
    int rv = hc_dedupe_load(d, p + off, (size_t)dlen);
    if (rv == 0) {
        rv = hc_store_load(s, sp, (size_t)slen);
    }
    if (rv != 0) {
        hc_dedupe_clear(d);
    }
    return rv;
}

/* ---- helpers ---- */

static uint64_t cl_now(const cluster_t *c)
{
    return uv_now(c->n->loop);
}

static int peer_of_id(const cluster_t *c, uint64_t id)
{
    for (size_t i = 0; i < c->npeers; i++) {
        if (c->ids[i] == id) {
            return (int)i;
        }
    }
    return -1;
}

static void cl_kick(cluster_t *c);
static void retry_parked_writes(cluster_t *c);
static int cl_ql_serving(cluster_t *c);
static void ql_lead_tripped(cluster_t *c);
static void cl_invalidate(cluster_t *c, uint64_t now);
static void on_ql_timer(uv_timer_t *t);
static uint64_t ql_grace(const cluster_t *c);
static void on_raft_timer(uv_timer_t *t);
static void cl_maybe_compact(cluster_t *c);
static void snap_start(cluster_t *c, const raft_snapshot_req_t *req);
static void snap_tx_drop_all(cluster_t *c);

static void op_link(cluster_t *c, hc_node_op_t *op)
{
    op->prev = NULL;
    op->next = c->ops;
    if (c->ops) {
        c->ops->prev = op;
    }
    c->ops = op;
}

static void op_unlink(cluster_t *c, hc_node_op_t *op)
{
    if (op->prev) {
        op->prev->next = op->next;
    } else {
        c->ops = op->next;
    }
    if (op->next) {
        op->next->prev = op->prev;
    }
    op->prev = op->next = NULL;
}

static void op_free(hc_node_op_t *op)
{
    free(op->enc);
    free(op->cache);
    free(op->key);
    free(op);
}

static hc_node_op_t *op_new(op_kind_t kind)
{
    hc_node_op_t *op = calloc(1, sizeof(*op));
    if (op) {
        op->kind = kind;
        op->remote_peer = -1;
        op->peer = -1;
    }
    return op;
}

static int send_pm(cluster_t *c, int peer, const Hacache__PeerMessage *pm)
{
    size_t len = hacache__peer_message__get_packed_size(pm);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        return HC_ENOMEM;
    }
    hacache__peer_message__pack(pm, buf);
    int rv = c->peers ? hc_peers_send(c->peers, peer, buf, len) : HC_EUNAVAILABLE;
    free(buf);
    return rv;
}

static void send_fwd_result(cluster_t *c, int peer, const uint8_t rid[16], int status,
                            uint64_t index, const hc_apply_result_t *res)
{
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__ForwardResult fr = HACACHE__FORWARD_RESULT__INIT;
    fr.request_id.data = (uint8_t *)rid;
    fr.request_id.len = HC_REQUEST_ID_BYTES;
    fr.status = status;
    fr.index = index;
    if (res) {
        fr.version = res->version;
        fr.integer = res->integer;
        fr.existed = res->existed != 0;
        fr.removed = res->removed;
    }
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_FWD_RESULT;
    pm.fwd_result = &fr;
    send_pm(c, peer, &pm);
}

static void send_read_resp(cluster_t *c, int peer, uint64_t id, int status, uint64_t read_index,
                           const hc_entry_view_t *v)
{
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__ReadResponse rr = HACACHE__READ_RESPONSE__INIT;
    rr.id = id;
    rr.status = status;
    rr.read_index = read_index;
    if (v) {
        rr.value.data = (uint8_t *)v->data;
        rr.value.len = v->len;
        rr.version = v->version;
        rr.expire_at_ms = v->expire_at_ms;
    }
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_READ_RESP;
    pm.read_resp = &rr;
    send_pm(c, peer, &pm);
}

/* Completes a write op: answers the local caller or the follower, then frees it. */
/* A local write whose fate is unknown (the leader changed or stepped down with it in flight), or
 * that a former leader refused: it carries a request id, so sending it again to the current
 * leader is safe (applied once: the dedupe window answers a retry of an applied write with its
 * first outcome) and gives the real outcome. Parked until a leader is known, at most until
 * retry_until; then reported as unknown_outcome. */
static int op_park_for_retry(cluster_t *c, hc_node_op_t *op, int status)
{
    if (op->enc == NULL || op->remote_peer >= 0 || c->closing || cl_now(c) >= op->retry_until ||
        !(status == HC_EUNKNOWN_OUTCOME ||
          (status == HC_EUNAVAILABLE && op->kind == OP_FWD_WRITE))) {
        return 0;
    }
    op->kind = OP_RETRY_WRITE;
    op->wait_apply = 0;
    op->index = op->term = 0;
    op->peer = -1;
    op->deadline = op->retry_until;
    /* a node that said "not the leader" is not asked again at once (the next leader may not be
     * known yet); retried on a later state change or expiry tick */
    op->retry_after = cl_now(c) + (status == HC_EUNAVAILABLE ? RETRY_PAUSE_MS : 0);
    c->write_retries++;
    cl_kick(c);
    return 1;
}

static void op_finish_write(cluster_t *c, hc_node_op_t *op, int status,
                            const hc_apply_result_t *res)
{
    if (op_park_for_retry(c, op, status)) {
        return;
    }
    op_unlink(c, op);
    hc_apply_result_t zero;
    memset(&zero, 0, sizeof(zero));
    if (res == NULL) {
        res = &zero;
    }
    if (op->remote_peer >= 0) {
        send_fwd_result(c, op->remote_peer, op->rid, status, op->index, res);
    } else if (op->wcb) {
        op->wcb(op->ud, status, res);
    }
    op_free(op);
}

/* Completes a read op with a local read (status 0) or an error. */
static void op_finish_read(cluster_t *c, hc_node_op_t *op, int status)
{
    op_unlink(c, op);
    if (op->remote_peer >= 0) {
        /* ReadIndex on behalf of a follower: it reads locally once applied >= index */
        send_read_resp(c, op->remote_peer, op->remote_id, status, op->index, NULL);
    } else if (op->rcb) {
        if (status == 0) {
            hc_entry_view_t v;
            int rv = hc_store_get(c->n->store, op->cache, op->cache_len, op->key, op->klen,
                                  hc_wall_ms(), &v);
            op->rcb(op->ud, rv, rv == 0 ? &v : NULL);
        } else {
            op->rcb(op->ud, status, NULL);
        }
    }
    op_free(op);
}

static void op_finish(cluster_t *c, hc_node_op_t *op, int status)
{
    if (op->kind == OP_LEADER_WRITE || op->kind == OP_FWD_WRITE || op->kind == OP_RETRY_WRITE ||
        op->kind == OP_TRANSFER) {
        op_finish_write(c, op, status, NULL);
    } else {
        op_finish_read(c, op, status);
    }
}

/* ---- applying the log ---- */

static void apply_entry(cluster_t *c, const raft_entry_t *e)
{
    int status = 0;
    hc_apply_result_t res;
    memset(&res, 0, sizeof(res));
    int counted = 0;
    if (e->type == RAFT_ENTRY_NORMAL) {
        hc_cmd_decoded_t d;
        int rv = hc_cmd_decode(e->data, e->len, HC_CMD_MAX_ENCODED, &d);
        if (rv != 0) {
            hc_log(HC_LOG_ERROR, "undecodable log entry skipped", HC_LU("index", e->index));
            status = HC_EINTERNAL;
        } else {
            hc_dedupe_result_t prev;
            if (d.meta.has_request_id && hc_dedupe_find(c->dedupe, d.meta.request_id, &prev)) {
                /* a retried write: applied once, every retry gets the first outcome */
                status = prev.status;
                res = prev.res;
            } else {
                uint64_t now = d.meta.now_ms ? d.meta.now_ms : hc_wall_ms();
                status = hc_store_apply(c->n->store, &d.cmd, e->index, now, &res);
                counted = 1;
                if (d.meta.has_request_id) {
                    hc_dedupe_result_t r = {.index = e->index, .status = status, .res = res};
                    hc_dedupe_add(c->dedupe, d.meta.request_id, &r);
                }
                if (status != 0 && d.cmd.op != HC_OP_EVICT && d.cmd.op != HC_OP_EXPIRE) {
                    hc_log(HC_LOG_DEBUG, "log entry refused by the store", HC_LU("index", e->index),
                           HC_LS("error", hc_strerror(status)));
                }
            }
            hc_cmd_decoded_free(&d);
        }
    }
    (void)counted;
    c->applied = e->index;
    if (c->ql_tripped && c->ql_reset_index == e->index) {
        if (e->term == c->ql_reset_term) {
            /* every replica drops the same data here: this node is consistent again */
            c->ql_tripped = 0;
            hc_log(HC_LOG_INFO, "invalidation applied on every node, serving again",
                   HC_LU("index", e->index));
        }
        c->ql_reset_index = 0;
    }
    /* waiters on this index */
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        if (op->kind != OP_LEADER_WRITE || op->index != e->index) {
            continue;
        }
        if (op->term != e->term) {
            op_finish_write(c, op, HC_EUNKNOWN_OUTCOME, NULL);
        } else if (op->ack == HC_ACK_QUORUM || op->ack == HC_ACK_ONCE) {
            op_finish_write(c, op, status, &res);
        }
    }
}

/* Ops that wait for this node to apply up to an index. */
static void check_applied_waiters(cluster_t *c)
{
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        if (!op->wait_apply || c->applied < op->index) {
            continue;
        }
        if (op->kind == OP_FWD_WRITE) {
            hc_apply_result_t r = op->res;
            op_finish_write(c, op, 0, &r);
        } else {
            op_finish_read(c, op, 0);
        }
    }
}

/* `once`: stored on the leader and at least one follower. */
static void check_once_waiters(cluster_t *c)
{
    int any = 0;
    for (hc_node_op_t *op = c->ops; op; op = op->next) {
        if (op->kind == OP_LEADER_WRITE && op->ack == HC_ACK_ONCE) {
            any = 1;
            break;
        }
    }
    if (!any) {
        return;
    }
    raft_status_t st;
    raft_status(c->raft, &st);
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        if (op->kind != OP_LEADER_WRITE || op->ack != HC_ACK_ONCE || op->term != st.term) {
            continue;
        }
        for (uint32_t i = 0; i < st.n_peers; i++) {
            if (st.peers[i].match >= op->index) {
                hc_apply_result_t r;
                memset(&r, 0, sizeof(r));
                r.version = op->index;
                op_finish_write(c, op, 0, &r);
                break;
            }
        }
    }
}

static void on_leader_lost(cluster_t *c)
{
    /* Proposals of a term that is over (or that this node no longer leads) may or may not
     * commit under the next leader: their fate is unknown. */
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        if (op->kind == OP_LEADER_WRITE && (c->role != RAFT_LEADER || op->term != c->term)) {
            op_finish_write(c, op, HC_EUNKNOWN_OUTCOME, NULL);
        } else if (op->kind == OP_TRANSFER && c->role != RAFT_LEADER && c->leader_idx >= 0 &&
                   c->leader_idx != c->self) {
            op_finish_write(c, op, 0, NULL); /* leadership moved, and we know where */
        }
    }
}

static void on_leader_changed(cluster_t *c)
{
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        if (op->wait_apply) {
            continue; /* the leader answered; only the local apply is missing */
        }
        if (op->kind == OP_FWD_WRITE) {
            op_finish_write(c, op, HC_EUNKNOWN_OUTCOME, NULL);
        } else if (op->kind == OP_FWD_READ) {
            op_finish_read(c, op, HC_EUNAVAILABLE);
        }
    }
}

/* ---- snapshots and compaction ---- */

static void cl_maybe_compact(cluster_t *c)
{
    raft_status_t st;
    raft_status(c->raft, &st);
    uint64_t retained = st.last_index >= st.first_index ? st.last_index - st.first_index + 1 : 0;
    uint64_t to = 0;
    if (st.log_bytes > COMPACT_BYTES) {
        to = c->applied;
    } else if (retained > c->compact_entries) {
        to = c->applied > c->compact_keep ? c->applied - c->compact_keep : 0;
    }
    /* Leader: do not cut below a snapshot being streamed (or just sent) or the match index of
     * a follower that is connected and replicating, while that costs fewer than
     * compact_hold_max retained entries: a follower that needs a snapshot again because the log
     * moved on during the transfer might never catch up under a steady write load. */
    uint64_t now = cl_now(c);
    if (c->role == RAFT_LEADER && to > st.snapshot_index) {
        uint64_t floor = to;
        for (size_t i = 0; i < c->npeers; i++) {
            const snap_tx_t *t = &c->tx[i];
            uint64_t h = t->active ? t->index : 0;
            if (!t->active && t->hold_index != 0 && now < t->hold_until) {
                h = t->hold_index;
                for (uint32_t j = 0; j < st.n_peers; j++) {
                    if (st.peers[j].id == c->ids[i] && st.peers[j].match >= t->hold_index) {
                        h = 0; /* acknowledged */
                    }
                }
            }
            if (h != 0 && h < floor) {
                floor = h;
            }
        }
        for (uint32_t j = 0; j < st.n_peers; j++) {
            const raft_peer_status_t *ps = &st.peers[j];
            int pi = peer_of_id(c, ps->id);
            if (ps->match != 0 && ps->match < floor &&
                ps->progress_state == RAFT_PROGRESS_REPLICATE && pi >= 0 && c->peers != NULL &&
                hc_peers_is_up(c->peers, pi)) {
                floor = ps->match;
            }
        }
        if (floor < to && c->applied - floor <= c->compact_hold_max &&
            st.log_bytes <= COMPACT_BYTES) {
            to = floor;
        }
    }
    if (to <= st.snapshot_index) {
        return;
    }
    int rv = raft_snapshot_taken(c->raft, to);
    if (rv != 0) {
        hc_log(HC_LOG_WARN, "log compaction refused", HC_LU("index", to),
               HC_LS("error", raft_strerror(rv)));
        return;
    }
    c->compactions++;
    hc_log(HC_LOG_DEBUG, "log compacted", HC_LU("index", to), HC_LU("retained", retained));
}

static void snap_tx_free(snap_tx_t *t)
{
    uint64_t hi = t->hold_index, hu = t->hold_until;
    free(t->data);
    free(t->members);
    memset(t, 0, sizeof(*t));
    t->hold_index = hi;
    t->hold_until = hu;
}

/* Ends the transfer to `peer`; ok=false lets raft ask again later. */
static void snap_tx_end(cluster_t *c, int peer, int ok, const char *why)
{
    snap_tx_t *t = &c->tx[peer];
    if (!t->active) {
        return;
    }
    uint64_t ms = (hc_mono_ns() - t->started_ns) / 1000000;
    if (ok) {
        t->hold_index = t->index;
        t->hold_until = cl_now(c) + 2 * (uint64_t)c->n->cfg->election_timeout_ms;
        c->snapshots_sent++;
        hc_log(HC_LOG_INFO, "snapshot sent", HC_LS("peer", c->names[peer]),
               HC_LU("index", t->index), HC_LU("bytes", t->len), HC_LU("ms", ms));
    } else {
        c->snapshots_failed++;
        hc_log(HC_LOG_WARN, "snapshot transfer aborted", HC_LS("peer", c->names[peer]),
               HC_LU("index", t->index), HC_LS("reason", why));
    }
    if (c->role == RAFT_LEADER && c->term == t->leader_term) {
        raft_snapshot_sent(c->raft, cl_now(c), c->ids[peer], t->index, ok != 0);
        cl_kick(c);
    }
    snap_tx_free(t);
}

static void snap_tx_drop_all(cluster_t *c)
{
    for (size_t i = 0; c->tx != NULL && i < c->npeers; i++) {
        if (c->tx[i].active) {
            snap_tx_end(c, (int)i, 0, "leadership lost");
        }
    }
}

static void on_snap_timer(uv_timer_t *t);

/* Queues chunks of every active transfer while the link's queue is below SNAP_QUEUE_HIGH, so
 * raft traffic still gets through; the rest goes on a later turn (snap_timer). raft hears
 * ok=true once the last chunk is queued: the link delivers frames in order, so the follower
 * sees every chunk before any later AppendEntries; if the link drops before, the follower never
 * installs, rejects the next AppendEntries and the leader asks for a snapshot again. */
static void snap_pump(cluster_t *c)
{
    int waiting = 0;
    for (size_t p = 0; c->tx != NULL && p < c->npeers; p++) {
        snap_tx_t *t = &c->tx[p];
        if (!t->active) {
            continue;
        }
        if (c->peers == NULL || !hc_peers_is_up(c->peers, (int)p)) {
            snap_tx_end(c, (int)p, 0, "link down");
            continue;
        }
        int done = 0, failed = 0;
        while (!done && hc_peers_queued(c->peers, (int)p) < SNAP_QUEUE_HIGH) {
            size_t n = t->len - t->off < SNAP_CHUNK ? t->len - t->off : SNAP_CHUNK;
            Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
            Hacache__SnapshotChunk sc = HACACHE__SNAPSHOT_CHUNK__INIT;
            sc.index = t->index;
            sc.term = t->term;
            sc.members.data = t->members;
            sc.members.len = t->members_len;
            sc.leader_term = t->leader_term;
            sc.offset = t->off;
            sc.last = t->off + n == t->len;
            sc.data.data = t->data + t->off;
            sc.data.len = n;
            pm.body_case = HACACHE__PEER_MESSAGE__BODY_SNAPSHOT;
            pm.snapshot = &sc;
            int rv = send_pm(c, (int)p, &pm);
            if (rv == HC_EBUSY) {
                break;
            }
            if (rv != 0) {
                failed = 1;
                break;
            }
            t->off += n;
            done = sc.last;
        }
        if (failed) {
            snap_tx_end(c, (int)p, 0, "send failed");
        } else if (done) {
            snap_tx_end(c, (int)p, 1, NULL);
        } else {
            waiting = 1;
        }
    }
    if (c->closing || !c->handles_open) {
        return;
    }
    if (waiting) {
        if (!uv_is_active((uv_handle_t *)&c->snap_timer)) {
            uv_timer_start(&c->snap_timer, on_snap_timer, SNAP_PUMP_MS, SNAP_PUMP_MS);
        }
    } else {
        uv_timer_stop(&c->snap_timer);
    }
}

static void on_snap_timer(uv_timer_t *t)
{
    cluster_t *c = t->data;
    if (!c->closing) {
        snap_pump(c);
    }
}

/* Leader: raft wants `req->to` to get a snapshot at an index >= req->index. */
static void snap_start(cluster_t *c, const raft_snapshot_req_t *req)
{
    int peer = peer_of_id(c, req->to);
    if (peer < 0 || peer == c->self || c->tx[peer].active) {
        return; /* one transfer per follower at a time */
    }
    uint64_t now = cl_now(c);
    uint64_t A = c->applied;
    raft_term_t term = 0;
    raft_members_t m;
    const char *why = NULL;
    if (c->role != RAFT_LEADER) {
        return;
    }
    if (c->peers == NULL || !hc_peers_is_up(c->peers, peer)) {
        why = "link down";
    } else if (A < req->index || raft_snapshot_meta(c->raft, A, &term, &m) != 0) {
        why = "applied index not available";
    }
    snap_tx_t *t = &c->tx[peer];
    if (why == NULL && t->hold_index >= req->index && now < t->hold_until) {
        /* A snapshot at hold_index went out on this link moments ago and is ahead of any later
         * message in the link's FIFO: raft asks again when a heartbeat answer the follower
         * sent before it installed arrives after raft_snapshot_sent (raft core: the answer
         * moves next back to match + 1, see the report of issue 4). Point raft at that one
         * instead of streaming the whole state again. */
        hc_log(HC_LOG_DEBUG, "snapshot requested again, pointing at the one just sent",
               HC_LS("peer", c->names[peer]), HC_LU("index", t->hold_index));
        raft_snapshot_sent(c->raft, now, req->to, t->hold_index, true);
        cl_kick(c);
        return;
    }
    uint64_t t0 = hc_mono_ns();
    if (why == NULL) {
        hc_buf_t b;
        hc_buf_init(&b);
        hc_node_snapshot_encode(c->n->store, c->dedupe, &b);
        size_t ml = raft_members_encoded_size(&m);
        t->members = malloc(ml ? ml : 1);
        if (b.failed || t->members == NULL) {
            hc_buf_free(&b);
            free(t->members);
            t->members = NULL;
            why = "out of memory";
        } else {
            raft_members_encode(&m, t->members);
            t->members_len = ml;
            t->data = (uint8_t *)b.data;
            t->len = b.len;
        }
    }
    if (why != NULL) {
        hc_log(HC_LOG_WARN, "snapshot not sent", HC_LS("peer", c->names[peer]),
               HC_LS("reason", why));
        c->snapshots_failed++;
        raft_snapshot_sent(c->raft, now, req->to, A, false);
        cl_kick(c);
        return;
    }
    t->active = 1;
    t->off = 0;
    t->index = A;
    t->term = term;
    t->leader_term = c->term;
    t->started_ns = t0;
    c->last_snapshot_bytes = t->len;
    hc_log(HC_LOG_INFO, "snapshot transfer started", HC_LS("peer", c->names[peer]),
           HC_LU("index", A), HC_LU("requested", req->index), HC_LU("bytes", t->len),
           HC_LU("serialize_ms", (hc_mono_ns() - t0) / 1000000));
    snap_pump(c);
}

static void snap_rx_reset(cluster_t *c)
{
    snap_rx_t *r = &c->rx;
    hc_buf_free(&r->buf);
    free(r->members);
    memset(r, 0, sizeof(*r));
    hc_buf_init(&r->buf);
    r->peer = -1;
}

static void check_applied_waiters(cluster_t *c);

/* Follower: the last chunk arrived; load it into a fresh store and let raft decide. */
static void snap_install(cluster_t *c)
{
    snap_rx_t *r = &c->rx;
    raft_members_t m;
    hc_store_t *fresh = hc_store_new(c->n->cfg->max_memory);
    hc_dedupe_t *dd = hc_dedupe_new(DEDUPE_WINDOW);
    int rv = HC_ENOMEM;
    if (fresh != NULL && dd != NULL) {
        rv = raft_members_decode(r->members, r->members_len, &m) == 0 ? 0 : HC_EINVAL;
        if (rv == 0) {
            rv = hc_node_snapshot_decode(r->buf.data, r->buf.len, fresh, dd);
        }
    }
    if (rv != 0) {
        hc_log(HC_LOG_WARN, "snapshot rejected", HC_LS("peer", c->names[r->peer]),
               HC_LU("index", r->index), HC_LS("error", hc_strerror(rv)));
        hc_store_free(fresh);
        hc_dedupe_free(dd);
        snap_rx_reset(c);
        return;
    }
    int st = raft_snapshot_installed(c->raft, cl_now(c), r->leader_term, r->index, r->term, &m);
    if (st != 0) {
        hc_log(HC_LOG_INFO, "snapshot discarded", HC_LU("index", r->index),
               HC_LS("reason", raft_strerror(st)));
        hc_store_free(fresh);
        hc_dedupe_free(dd);
        snap_rx_reset(c);
        cl_kick(c);
        return;
    }
    hc_store_free(c->n->store);
    c->n->store = fresh;
    hc_dedupe_free(c->dedupe);
    c->dedupe = dd;
    c->applied = r->index;
    if (c->commit_heard < r->index) {
        c->commit_heard = r->index;
    }
    c->expire_barrier = 0;
    c->snapshots_installed++;
    c->last_snapshot_bytes = r->buf.len;
    c->last_snapshot_ms = (hc_mono_ns() - r->started_ns) / 1000000;
    hc_cache_stats_t tot;
    hc_store_totals(fresh, &tot);
    hc_log(HC_LOG_INFO, "snapshot installed", HC_LS("peer", c->names[r->peer]),
           HC_LU("index", r->index), HC_LU("term", r->term), HC_LU("bytes", r->buf.len),
           HC_LU("entries", tot.entries), HC_LU("ms", c->last_snapshot_ms));
    snap_rx_reset(c);
    check_applied_waiters(c);
    cl_kick(c);
}

static void on_snapshot_chunk(cluster_t *c, int peer, const Hacache__SnapshotChunk *sc)
{
    snap_rx_t *r = &c->rx;
    if (c->role == RAFT_LEADER || c->raft == NULL) {
        return;
    }
    if (sc->offset == 0) {
        snap_rx_reset(c);
        r->members = malloc(sc->members.len ? sc->members.len : 1);
        if (r->members == NULL) {
            return;
        }
        memcpy(r->members, sc->members.data, sc->members.len);
        r->members_len = sc->members.len;
        r->active = 1;
        r->peer = peer;
        r->index = sc->index;
        r->term = sc->term;
        r->leader_term = sc->leader_term;
        r->started_ns = hc_mono_ns();
    } else if (!r->active || r->peer != peer || r->index != sc->index || r->term != sc->term ||
               r->leader_term != sc->leader_term || sc->offset != r->buf.len) {
        if (r->active) {
            hc_log(HC_LOG_WARN, "snapshot chunk out of order, staging reset",
                   HC_LS("peer", c->names[peer]), HC_LU("offset", sc->offset));
        }
        snap_rx_reset(c);
        return;
    }
    uint64_t max = c->n->cfg->max_memory;
    uint64_t bound = max != 0 && max < (UINT64_MAX - SNAP_STAGE_SLACK) / 2
                         ? 2 * max + SNAP_STAGE_SLACK
                         : UINT64_MAX;
    if (sc->data.len > bound - r->buf.len) {
        hc_log(HC_LOG_WARN, "snapshot larger than the staging bound, staging reset",
               HC_LS("peer", c->names[peer]), HC_LU("bound", bound));
        snap_rx_reset(c);
        return;
    }
    hc_buf_append(&r->buf, sc->data.data, sc->data.len);
    if (r->buf.failed) {
        hc_log(HC_LOG_WARN, "out of memory staging a snapshot");
        snap_rx_reset(c);
        return;
    }
    if (sc->last) {
        snap_install(c);
    }
}

static void persist_or_die(cluster_t *c, const raft_hard_state_t *hs)
{
    if (hc_hardstate_save(c->state_path, hs->term, hs->vote, hs->novote) != 0) {
        /* Sending without the hard state on disk could make this node vote twice in a term
         * after a restart: stop instead. */
        hc_log(HC_LOG_ERROR, "cannot persist the raft hard state, stopping",
               HC_LS("path", c->state_path), HC_LS("error", strerror(errno)));
        fprintf(stderr, "hacached: CACHE_DATA_DIR: cannot write %s: %s\n", c->state_path,
                strerror(errno));
        _exit(1);
    }
}

/* Keeps members_path equal to the configuration in effect at the commit index (raft restart
 * rule 6): saved when it or the epoch changed, once it is committed. A failed write is logged
 * and retried on the next change; the file is an optimisation of the restart, not a vote. */
static void save_committed_members(cluster_t *c)
{
    raft_status_t st;
    raft_status(c->raft, &st);
    if (!st.members_committed || st.commit == 0) {
        return; /* again on the next update */
    }
    c->members_check = 0;
    const raft_members_t *m = &st.members;
    int same = c->members_saved.n == m->n && c->members_saved_epoch == st.epoch;
    for (uint32_t i = 0; same && i < m->n; i++) {
        same = c->members_saved.m[i].id == m->m[i].id && c->members_saved.m[i].role == m->m[i].role;
    }
    if (same) {
        return;
    }
    if (hc_members_save(c->members_path, st.commit, st.epoch, m) != 0) {
        hc_log(HC_LOG_WARN, "cannot write the committed configuration file",
               HC_LS("path", c->members_path), HC_LS("error", strerror(errno)));
        return;
    }
    c->members_saved = *m;
    c->members_saved_epoch = st.epoch;
}

static void send_raft_msg(cluster_t *c, const raft_message_t *m)
{
    int peer = peer_of_id(c, m->to);
    if (peer < 0 || peer == c->self || c->peers == NULL || !hc_peers_is_up(c->peers, peer)) {
        return;
    }
    uint8_t *buf;
    size_t len;
    if (hc_raft_msg_encode(m, &buf, &len) != 0) {
        return;
    }
    hc_peers_send(c->peers, peer, buf, len); /* best effort: raft retransmits */
    free(buf);
}

static void cl_process(cluster_t *c)
{
    if (c->raft == NULL) {
        return; /* discovering: nothing to drive yet */
    }
    raft_update_t u;
    if (raft_ready(c->raft, &u) != 0) {
        cl_kick(c);
        return;
    }
    if (u.hard_state_changed) {
        persist_or_die(c, &u.hard_state);
    }
    if (u.reset) {
        hc_log(HC_LOG_WARN, "raft reset: the cluster restarted from an empty log, store cleared");
        hc_store_t *fresh = hc_store_new(c->n->cfg->max_memory);
        if (fresh != NULL) {
            hc_store_free(c->n->store);
            c->n->store = fresh;
        }
        hc_dedupe_clear(c->dedupe);
        c->applied = 0;
        c->expire_barrier = 0;
    }
    for (size_t i = 0; i < u.n_entries; i++) {
        apply_entry(c, &u.entries[i]);
    }
    if (u.n_entries > 0) {
        cl_maybe_compact(c);
    }
    if (u.members_changed || u.reset) {
        c->members_check = 1;
    }
    if (c->members_check) {
        save_committed_members(c);
    }
    if (u.commit > c->commit_heard) {
        c->commit_heard = u.commit;
    }
    for (size_t i = 0; i < u.n_reads; i++) {
        const raft_read_t *rd = &u.reads[i];
        for (hc_node_op_t *op = c->ops; op; op = op->next) {
            if (op->kind == OP_READ_INDEX && op->ctx == rd->ctx) {
                op->index = rd->index;
                op_finish_read(c, op, rd->status == 0 ? 0 : HC_EUNAVAILABLE);
                break;
            }
        }
    }
    for (size_t i = 0; i < u.n_messages; i++) {
        send_raft_msg(c, &u.messages[i]);
    }
    int was_leader = c->role == RAFT_LEADER;
    if (u.state_changed) {
        int term_moved = u.term != c->term;
        int role_moved = u.role != c->role;
        uint64_t old_leader = c->leader;
        c->role = u.role;
        c->term = u.term;
        c->leader = u.leader;
        c->leader_idx = u.leader ? peer_of_id(c, u.leader) : -1;
        if (u.leader != 0 && u.leader != old_leader) {
            c->leader_changes++;
        }
        if (term_moved || role_moved || u.leader != old_leader) {
            hc_log(HC_LOG_INFO, "raft state", HC_LS("role", raft_role_name(u.role)),
                   HC_LU("term", u.term),
                   HC_LS("leader", c->leader_idx >= 0 ? c->names[c->leader_idx] : "unknown"));
        }
        on_leader_lost(c);
        if (c->role != RAFT_LEADER || term_moved) {
            snap_tx_drop_all(c);
        }
        if (u.leader != old_leader) {
            on_leader_changed(c);
        }
    }
    if (c->ql_tripped && c->role == RAFT_LEADER) {
        ql_lead_tripped(c);
    } else if (c->ql_tripped && was_leader && c->role != RAFT_LEADER) {
        /* it led with what it kept and lost leadership before its invalidation was applied:
         * its state may differ from the others', so it is dropped again and caught up */
        cl_invalidate(c, cl_now(c));
    }
    /* after the state update: a leadership won in this very update is already known */
    for (size_t i = 0; i < u.n_snapshots; i++) {
        snap_start(c, &u.snapshots[i]);
    }
    check_applied_waiters(c);
    if (c->role == RAFT_LEADER) {
        check_once_waiters(c);
    }
    retry_parked_writes(c);
    if (c->handover_cb && c->role != RAFT_LEADER) {
        void (*cb)(void *) = c->handover_cb;
        c->handover_cb = NULL;
        uv_timer_stop(&c->handover_timer);
        cb(c->handover_ud);
    }
    if (!c->closing) {
        uint64_t now = cl_now(c);
        uint64_t delay = u.deadline > now ? u.deadline - now : 0;
        uv_timer_start(&c->raft_timer, on_raft_timer, delay, 0);
    }
}

static void on_idle(uv_idle_t *h)
{
    cluster_t *c = h->data;
    uv_idle_stop(h);
    c->idle_active = 0;
    if (!c->closing) {
        cl_process(c);
    }
}

/* Something was fed to raft: collect its output on the next loop turn (events of one turn share
 * one raft_ready, hence one batch of AppendEntries). */
static void cl_kick(cluster_t *c)
{
    if (!c->idle_active && !c->closing) {
        c->idle_active = 1;
        uv_idle_start(&c->idle, on_idle);
    }
}

static void on_raft_timer(uv_timer_t *t)
{
    cluster_t *c = t->data;
    if (c->closing || c->raft == NULL) {
        return;
    }
    raft_tick(c->raft, cl_now(c));
    cl_process(c);
}

/* ---- writes ---- */

static int map_raft_err(int rv)
{
    switch (rv) {
    case RAFT_ETOOBIG:
        return HC_ETOOLARGE;
    case RAFT_ENOMEM:
        return HC_EINTERNAL;
    default: /* not leader, transfer in progress, log full: retry later / elsewhere */
        return HC_EUNAVAILABLE;
    }
}

static int propose_cmd(cluster_t *c, const hc_cmd_t *cmd, const hc_cmd_meta_t *meta,
                       uint64_t *index, uint64_t *term)
{
    uint8_t *buf;
    size_t len;
    if (hc_cmd_encode_meta(cmd, meta, &buf, &len) != 0) {
        return HC_EINTERNAL;
    }
    raft_index_t i = 0;
    raft_term_t t = 0;
    int rv = raft_propose(c->raft, cl_now(c), buf, len, &i, &t);
    free(buf);
    if (rv != 0) {
        return map_raft_err(rv);
    }
    cl_kick(c);
    if (index) {
        *index = i;
    }
    if (term) {
        *term = t;
    }
    return 0;
}

/* Leader: proposes the EVICT/EXPIRE entries that make room for a PUT/INCR, then the write.
 * `cmd` has its absolute expiry already. */
static int leader_propose_write(cluster_t *c, const hc_cmd_t *cmd, const uint8_t rid[16],
                                uint64_t *index, uint64_t *term)
{
    uint64_t now = hc_wall_ms();
    hc_cmd_meta_t meta = {.has_request_id = 1, .now_ms = now};
    memcpy(meta.request_id, rid, HC_REQUEST_ID_BYTES);
    if (cmd->op == HC_OP_PUT || cmd->op == HC_OP_INCR) {
        victims_t vs = {0};
        int rv = hc_store_plan_put(c->n->store, cmd, now, victims_add, &vs);
        if (rv == 0 && vs.failed) {
            rv = HC_ENOMEM;
        }
        hc_cmd_meta_t vmeta = {.has_request_id = 0, .now_ms = now};
        for (size_t i = 0; rv == 0 && i < vs.n; i++) {
            hc_cmd_t v = {.op = vs.v[i].expired ? HC_OP_EXPIRE : HC_OP_EVICT,
                          .cache = vs.v[i].cache,
                          .cache_len = vs.v[i].cache_len,
                          .key = vs.v[i].key,
                          .klen = vs.v[i].klen,
                          .expire_at_ms = vs.v[i].expired ? now : 0};
            rv = propose_cmd(c, &v, &vmeta, NULL, NULL);
        }
        victims_free(&vs);
        if (rv != 0) {
            return rv;
        }
    }
    return propose_cmd(c, cmd, &meta, index, term);
}

/* Leader: a write (local when remote_peer < 0). Returns the op still waiting, or NULL when it
 * was answered already. */
static hc_node_op_t *leader_write(cluster_t *c, const hc_cmd_t *cmd, const uint8_t rid[16],
                                  hc_ack_t ack, int remote_peer, hc_write_cb cb, void *ud)
{
    hc_apply_result_t res;
    memset(&res, 0, sizeof(res));
    hc_dedupe_result_t prev;
    if (hc_dedupe_find(c->dedupe, rid, &prev)) {
        /* a retry of a write already applied */
        if (remote_peer >= 0) {
            send_fwd_result(c, remote_peer, rid, prev.status, prev.index, &prev.res);
        } else {
            cb(ud, prev.status, &prev.res);
        }
        return NULL;
    }
    uint64_t index = 0, term = 0;
    int rv = leader_propose_write(c, cmd, rid, &index, &term);
    if (rv == 0 && (ack == HC_ACK_LEADER || ack == HC_ACK_NONE)) {
        res.version = (cmd->op == HC_OP_PUT || cmd->op == HC_OP_INCR) ? index : 0;
    }
    if (rv != 0 || ack == HC_ACK_LEADER || ack == HC_ACK_NONE) {
        if (remote_peer >= 0) {
            if (ack != HC_ACK_NONE) {
                send_fwd_result(c, remote_peer, rid, rv, index, &res);
            }
        } else {
            cb(ud, rv, &res);
        }
        return NULL;
    }
    hc_node_op_t *op = op_new(OP_LEADER_WRITE);
    if (op == NULL) {
        /* proposed, but nobody can wait for it */
        if (remote_peer >= 0) {
            send_fwd_result(c, remote_peer, rid, HC_EUNKNOWN_OUTCOME, index, NULL);
        } else {
            cb(ud, HC_EUNKNOWN_OUTCOME, &res);
        }
        return NULL;
    }
    op->ack = ack;
    op->index = index;
    op->term = term;
    op->remote_peer = remote_peer;
    memcpy(op->rid, rid, HC_REQUEST_ID_BYTES);
    op->wcb = cb;
    op->ud = ud;
    op_link(c, op);
    return remote_peer >= 0 ? NULL : op;
}

static int send_fwd(cluster_t *c, int leader, const uint8_t rid[16], hc_ack_t ack, uint64_t ttl_ms,
                    uint8_t *enc, size_t enclen)
{
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__ForwardWrite fw = HACACHE__FORWARD_WRITE__INIT;
    fw.request_id.data = (uint8_t *)rid;
    fw.request_id.len = HC_REQUEST_ID_BYTES;
    fw.ack = ack;
    fw.ttl_ms = ttl_ms;
    fw.command.data = enc;
    fw.command.len = enclen;
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_FWD;
    pm.fwd = &fw;
    int rv = send_pm(c, leader, &pm);
    return rv == 0 ? 0 : rv == HC_ETOOLARGE ? HC_ETOOLARGE : HC_EUNAVAILABLE;
}

static hc_node_op_t *cluster_write(hc_node_t *n, const hc_cmd_t *cmd, const uint8_t rid[16],
                                   uint64_t ttl_ms, hc_ack_t ack, hc_write_cb cb, void *ud)
{
    cluster_t *c = n->cl;
    hc_apply_result_t res;
    memset(&res, 0, sizeof(res));
    if (!cl_ql_serving(c)) {
        cb(ud, HC_EUNAVAILABLE, &res);
        return NULL;
    }
    hc_cmd_t w = *cmd;
    w.expire_at_ms = 0;
    uint8_t *enc;
    size_t enclen;
    if (hc_cmd_encode(&w, &enc, &enclen) != 0) {
        cb(ud, HC_EINTERNAL, &res);
        return NULL;
    }
    hc_node_op_t *op = NULL;
    if (c->role == RAFT_LEADER) {
        w.expire_at_ms = ttl_ms ? hc_wall_ms() + ttl_ms : 0;
        op = leader_write(c, &w, rid, ack, -1, cb, ud);
    } else {
        int leader = c->leader_idx;
        int rv = leader < 0 || leader == c->self || !hc_peers_is_up(c->peers, leader)
                     ? HC_EUNAVAILABLE
                     : send_fwd(c, leader, rid, ack, ttl_ms, enc, enclen);
        if (rv != 0 || ack == HC_ACK_NONE) {
            free(enc);
            cb(ud, rv, &res);
            return NULL;
        }
        op = op_new(OP_FWD_WRITE);
        if (op == NULL) {
            free(enc);
            cb(ud, HC_EUNKNOWN_OUTCOME, &res);
            return NULL;
        }
        op->ack = ack;
        op->peer = leader;
        memcpy(op->rid, rid, HC_REQUEST_ID_BYTES);
        op->deadline = cl_now(c) + 2 * (uint64_t)n->cfg->election_timeout_ms;
        op->wcb = cb;
        op->ud = ud;
        op_link(c, op);
    }
    if (op == NULL) {
        free(enc); /* answered already */
        return NULL;
    }
    op->enc = enc;
    op->enc_len = enclen;
    op->ttl_ms = ttl_ms;
    op->retry_until = cl_now(c) + 2 * (uint64_t)n->cfg->election_timeout_ms;
    return op;
}

/* Sends the parked writes again once a leader is known (see op_park_for_retry). */
static void retry_parked_writes(cluster_t *c)
{
    int leader = c->leader_idx;
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        if (op->kind != OP_RETRY_WRITE || cl_now(c) < op->retry_after) {
            continue;
        }
        if (c->role == RAFT_LEADER) {
            hc_dedupe_result_t prev;
            if (hc_dedupe_find(c->dedupe, op->rid, &prev)) {
                op_finish_write(c, op, prev.status, &prev.res);
                continue;
            }
            hc_cmd_decoded_t d;
            if (hc_cmd_decode(op->enc, op->enc_len, HC_CMD_MAX_ENCODED, &d) != 0) {
                op_finish_write(c, op, HC_EUNKNOWN_OUTCOME, NULL);
                continue;
            }
            d.cmd.expire_at_ms = op->ttl_ms ? hc_wall_ms() + op->ttl_ms : 0;
            uint64_t index = 0, term = 0;
            int rv = leader_propose_write(c, &d.cmd, op->rid, &index, &term);
            int versioned = d.cmd.op == HC_OP_PUT || d.cmd.op == HC_OP_INCR;
            hc_cmd_decoded_free(&d);
            if (rv == HC_EUNAVAILABLE) {
                continue; /* e.g. a transfer under way: stays parked until retry_until */
            }
            if (rv != 0 || op->ack == HC_ACK_LEADER || op->ack == HC_ACK_NONE) {
                hc_apply_result_t r;
                memset(&r, 0, sizeof(r));
                r.version = rv == 0 && versioned ? index : 0;
                op->retry_until = 0; /* answered for real */
                op_finish_write(c, op, rv, &r);
                continue;
            }
            op->kind = OP_LEADER_WRITE;
            op->index = index;
            op->term = term;
            op->deadline = 0;
        } else if (leader >= 0 && leader != c->self && hc_peers_is_up(c->peers, leader)) {
            if (send_fwd(c, leader, op->rid, op->ack, op->ttl_ms, op->enc, op->enc_len) == 0) {
                op->kind = OP_FWD_WRITE;
                op->peer = leader;
            }
        }
    }
}

static void on_fwd(cluster_t *c, int peer, const Hacache__ForwardWrite *fw)
{
    if (fw->request_id.len != HC_REQUEST_ID_BYTES) {
        return;
    }
    hc_ack_t ack = fw->ack <= HC_ACK_NONE ? (hc_ack_t)fw->ack : HC_ACK_QUORUM;
    if (c->role != RAFT_LEADER) {
        if (ack != HC_ACK_NONE) {
            send_fwd_result(c, peer, fw->request_id.data, HC_EUNAVAILABLE, 0, NULL);
        }
        return;
    }
    hc_cmd_decoded_t d;
    int rv = hc_cmd_decode(fw->command.data, fw->command.len, HC_CMD_MAX_ENCODED, &d);
    if (rv != 0) {
        if (ack != HC_ACK_NONE) {
            send_fwd_result(c, peer, fw->request_id.data, HC_EINVAL, 0, NULL);
        }
        return;
    }
    d.cmd.expire_at_ms = fw->ttl_ms ? hc_wall_ms() + fw->ttl_ms : 0;
    leader_write(c, &d.cmd, fw->request_id.data, ack, peer, NULL, NULL);
    hc_cmd_decoded_free(&d);
}

static void on_fwd_result(cluster_t *c, int peer, const Hacache__ForwardResult *fr)
{
    if (fr->request_id.len != HC_REQUEST_ID_BYTES) {
        return;
    }
    for (hc_node_op_t *op = c->ops; op; op = op->next) {
        if (op->kind != OP_FWD_WRITE || op->wait_apply ||
            memcmp(op->rid, fr->request_id.data, HC_REQUEST_ID_BYTES) != 0) {
            continue;
        }
        hc_apply_result_t r = {.version = fr->version,
                               .integer = fr->integer,
                               .existed = fr->existed,
                               .removed = fr->removed};
        if (fr->status == 0 && op->ack == HC_ACK_QUORUM && c->applied < fr->index) {
            /* read-your-writes on the answering node: wait for the local apply */
            op->wait_apply = 1;
            op->index = fr->index;
            op->res = r;
            return;
        }
        op_finish_write(c, op, fr->status, &r);
        return;
    }
}

/* ---- reads ---- */

static hc_node_op_t *cluster_read(hc_node_t *n, const char *cache, size_t cache_len,
                                  const void *key, size_t klen, hc_consistency_t consistency,
                                  hc_read_cb cb, void *ud)
{
    cluster_t *c = n->cl;
    if (!cl_ql_serving(c)) {
        cb(ud, HC_EUNAVAILABLE, NULL);
        return NULL;
    }
    if (c->role == RAFT_LEADER && consistency == HC_READ_LEADER) {
        hc_entry_view_t v;
        int rv = hc_store_get(n->store, cache, cache_len, key, klen, hc_wall_ms(), &v);
        cb(ud, rv, rv == 0 ? &v : NULL);
        return NULL;
    }
    hc_node_op_t *op = op_new(c->role == RAFT_LEADER ? OP_READ_INDEX : OP_FWD_READ);
    if (op != NULL) {
        op->cache = malloc(cache_len ? cache_len : 1);
        op->key = malloc(klen ? klen : 1);
    }
    if (op == NULL || op->cache == NULL || op->key == NULL) {
        if (op) {
            op_free(op);
        }
        cb(ud, HC_EINTERNAL, NULL);
        return NULL;
    }
    memcpy(op->cache, cache, cache_len);
    op->cache_len = cache_len;
    memcpy(op->key, key, klen);
    op->klen = klen;
    op->rcb = cb;
    op->ud = ud;
    op->ctx = ++c->next_ctx;
    op->linearizable = consistency == HC_READ_LINEARIZABLE;
    op->deadline = cl_now(c) + 2 * (uint64_t)n->cfg->election_timeout_ms;
    if (c->role == RAFT_LEADER) {
        int rv = raft_read_index(c->raft, cl_now(c), op->ctx);
        if (rv != 0) {
            op_free(op);
            cb(ud, HC_EUNAVAILABLE, NULL);
            return NULL;
        }
        cl_kick(c);
        op_link(c, op);
        return op;
    }
    int leader = c->leader_idx;
    if (leader < 0 || leader == c->self || !hc_peers_is_up(c->peers, leader)) {
        op_free(op);
        cb(ud, HC_EUNAVAILABLE, NULL);
        return NULL;
    }
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__ReadRequest rq = HACACHE__READ_REQUEST__INIT;
    rq.id = op->ctx;
    rq.read_index = op->linearizable;
    if (!op->linearizable) {
        rq.cache.data = (uint8_t *)op->cache;
        rq.cache.len = cache_len;
        rq.key.data = op->key;
        rq.key.len = klen;
    }
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_READ_REQ;
    pm.read_req = &rq;
    if (send_pm(c, leader, &pm) != 0) {
        op_free(op);
        cb(ud, HC_EUNAVAILABLE, NULL);
        return NULL;
    }
    op->peer = leader;
    op_link(c, op);
    return op;
}

static void on_read_req(cluster_t *c, int peer, const Hacache__ReadRequest *rq)
{
    if (c->role != RAFT_LEADER) {
        send_read_resp(c, peer, rq->id, HC_EUNAVAILABLE, 0, NULL);
        return;
    }
    if (!rq->read_index) {
        hc_entry_view_t v;
        int rv = hc_store_get(c->n->store, (const char *)rq->cache.data, rq->cache.len,
                              rq->key.data, rq->key.len, hc_wall_ms(), &v);
        send_read_resp(c, peer, rq->id, rv, 0, rv == 0 ? &v : NULL);
        return;
    }
    hc_node_op_t *op = op_new(OP_READ_INDEX);
    uint64_t ctx = ++c->next_ctx;
    if (op == NULL || raft_read_index(c->raft, cl_now(c), ctx) != 0) {
        free(op);
        send_read_resp(c, peer, rq->id, HC_EUNAVAILABLE, 0, NULL);
        return;
    }
    cl_kick(c);
    /* op->ctx is matched against raft's read ctx; the follower's id goes back in the answer */
    op->ctx = ctx;
    op->remote_peer = peer;
    op->remote_id = rq->id;
    op_link(c, op);
}

static void on_read_resp(cluster_t *c, const Hacache__ReadResponse *rr)
{
    for (hc_node_op_t *op = c->ops; op; op = op->next) {
        if (op->kind != OP_FWD_READ || op->wait_apply || op->ctx != rr->id) {
            continue;
        }
        if (rr->status != 0 && rr->status != HC_ENOTFOUND) {
            op_finish_read(c, op, HC_EUNAVAILABLE);
        } else if (op->linearizable) {
            op->index = rr->read_index;
            if (c->applied >= op->index) {
                op_finish_read(c, op, 0);
            } else {
                op->wait_apply = 1;
            }
        } else {
            op_unlink(c, op);
            if (op->rcb) {
                hc_entry_view_t v = {.data = rr->value.data,
                                     .len = rr->value.len,
                                     .version = rr->version,
                                     .expire_at_ms = rr->expire_at_ms};
                op->rcb(op->ud, rr->status, rr->status == 0 ? &v : NULL);
            }
            op_free(op);
        }
        return;
    }
}

static void cluster_cancel(hc_node_t *n, hc_node_op_t *op)
{
    (void)n;
    op->wcb = NULL;
    op->rcb = NULL;
}

/* ---- peer callbacks ---- */

static void send_info_req(cluster_t *c, int peer);
static const char *name_of_id(const cluster_t *c, uint64_t id);
static void send_cluster_info(cluster_t *c, int peer);
static void on_cluster_info(cluster_t *c, int peer, const Hacache__ClusterInfo *ci);
static void on_join_request(cluster_t *c, int peer, const Hacache__JoinRequest *jr);
static int slot_of_name(const cluster_t *c, const char *name);
static int in_my_hosts(const cluster_t *c, uint64_t id);
static void on_time_sync(cluster_t *c, int peer, const Hacache__TimeSync *ts);
static void send_time(cluster_t *c, int peer, uint64_t t0, uint64_t t1);

/* A peer slot: my HA_HOSTS entries have theirs from the start; a peer that only lists me (a
 * node added by a membership change that my HA_HOSTS does not name yet) gets one here, with
 * the raft id of its name. 0 when the slot cannot be used. */
static int peer_known(cluster_t *c, int peer)
{
    if (peer < 0 || (size_t)peer >= c->cap) {
        return 0;
    }
    if ((size_t)peer < c->npeers) {
        return 1;
    }
    const char *name = c->peers ? hc_peers_name(c->peers, peer) : NULL;
    if (name == NULL) {
        return 0;
    }
    for (size_t i = c->npeers; i <= (size_t)peer; i++) {
        const char *nm = hc_peers_name(c->peers, (int)i);
        snprintf(c->names[i], sizeof(c->names[i]), "%s", nm ? nm : "");
        c->ids[i] = nm ? hc_node_id_of(nm) : 0;
    }
    c->npeers = (size_t)peer + 1;
    hc_log(HC_LOG_INFO, "peer outside my HA_HOSTS", HC_LS("peer", c->names[peer]));
    return 1;
}

static void on_peer_up(void *ud, int peer, uint32_t version)
{
    cluster_t *c = ud;
    if (peer_known(c, peer)) {
        c->last_frame[peer] = cl_now(c);
        if (c->discovering || c->joining) {
            send_info_req(c, peer);
        }
        send_time(c, peer, hc_wall_ms(), 0);
    }
    (void)version;
    cl_kick(c);
}

static void on_peer_down(void *ud, int peer, const char *reason)
{
    cluster_t *c = ud;
    (void)reason;
    if (peer_known(c, peer) && c->tx != NULL) {
        if (c->tx[peer].active) {
            snap_tx_end(c, peer, 0, "link down");
        }
        c->tx[peer].hold_index = 0; /* what was queued on that link is gone */
    }
    if (c->rx.active && c->rx.peer == peer) {
        snap_rx_reset(c);
    }
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        if (op->peer != peer || op->wait_apply) {
            continue;
        }
        if (op->kind == OP_FWD_WRITE) {
            op_finish_write(c, op, HC_EUNKNOWN_OUTCOME, NULL);
        } else if (op->kind == OP_FWD_READ) {
            op_finish_read(c, op, HC_EUNAVAILABLE);
        }
    }
}

static void on_peer_frame(void *ud, int peer, const uint8_t *data, size_t len)
{
    cluster_t *c = ud;
    if (c->closing || !peer_known(c, peer)) {
        return;
    }
    c->last_frame[peer] = cl_now(c);
    Hacache__PeerMessage *pm = hacache__peer_message__unpack(NULL, len, data);
    if (pm == NULL) {
        hc_log(HC_LOG_WARN, "undecodable peer message dropped", HC_LS("peer", c->names[peer]));
        return;
    }
    switch (pm->body_case) {
    case HACACHE__PEER_MESSAGE__BODY_RAFT: {
        hc_raft_msg_decoded_t d;
        if (hc_raft_msg_from_pb(pm->raft, &d) == 0) {
            if (d.msg.from == c->ids[peer]) {
                if (c->raft != NULL) {
                    raft_step(c->raft, cl_now(c), &d.msg);
                }
                cl_kick(c);
            }
            free(d.entries);
        }
        break;
    }
    case HACACHE__PEER_MESSAGE__BODY_FWD:
        on_fwd(c, peer, pm->fwd);
        break;
    case HACACHE__PEER_MESSAGE__BODY_FWD_RESULT:
        on_fwd_result(c, peer, pm->fwd_result);
        break;
    case HACACHE__PEER_MESSAGE__BODY_READ_REQ:
        on_read_req(c, peer, pm->read_req);
        break;
    case HACACHE__PEER_MESSAGE__BODY_READ_RESP:
        on_read_resp(c, pm->read_resp);
        break;
    case HACACHE__PEER_MESSAGE__BODY_SNAPSHOT:
        on_snapshot_chunk(c, peer, pm->snapshot);
        break;
    case HACACHE__PEER_MESSAGE__BODY_INFO_REQ:
        send_cluster_info(c, peer);
        break;
    case HACACHE__PEER_MESSAGE__BODY_INFO:
        on_cluster_info(c, peer, pm->info);
        break;
    case HACACHE__PEER_MESSAGE__BODY_JOIN:
        on_join_request(c, peer, pm->join);
        break;
    case HACACHE__PEER_MESSAGE__BODY_TIME:
        on_time_sync(c, peer, pm->time);
        break;
    default:
        break;
    }
    hacache__peer_message__free_unpacked(pm, NULL);
}

/* ---- lifecycle ---- */

static int cluster_new(hc_node_t *n)
{
    const hc_config_t *cfg = n->cfg;
    cluster_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return HC_ENOMEM;
    }
    n->cl = c;
    c->n = n;
    c->nhosts = c->npeers = cfg->hosts.n;
    c->cap = c->nhosts + RAFT_MAX_MEMBERS;
    c->self = cfg->self_index;
    c->leader_idx = -1;
    c->ids = calloc(c->cap, sizeof(*c->ids));
    c->names = calloc(c->cap, sizeof(*c->names));
    c->last_frame = calloc(c->cap, sizeof(*c->last_frame));
    c->dedupe = hc_dedupe_new(DEDUPE_WINDOW);
    c->tx = calloc(c->cap, sizeof(*c->tx));
    c->info_state = calloc(c->cap, 1);
    c->clock_offset = calloc(c->cap, sizeof(*c->clock_offset));
    c->clock_rtt = calloc(c->cap, sizeof(*c->clock_rtt));
    c->clock_warned = calloc(c->cap, 1);
    c->found_leader = -1;
    hc_buf_init(&c->rx.buf);
    c->rx.peer = -1;
    c->compact_entries = COMPACT_ENTRIES;
    c->compact_keep = COMPACT_KEEP;
    c->compact_hold_max = CL_MAX_LOG_ENTRIES / 2;
    const char *ce = getenv("HACACHE_TEST_COMPACT_ENTRIES"); /* tests only, see COMPACT_* */
    uint64_t cev = 0;
    if (ce != NULL && hc_parse_u64(ce, strlen(ce), &cev) == 0 && cev >= 10) {
        c->compact_entries = cev;
        c->compact_keep = cev / 5;
        c->compact_hold_max = cev * 10 < CL_MAX_LOG_ENTRIES / 2 ? cev * 10 : CL_MAX_LOG_ENTRIES / 2;
    }
    if (c->ids == NULL || c->names == NULL || c->last_frame == NULL || c->dedupe == NULL ||
        c->info_state == NULL || c->clock_offset == NULL || c->clock_rtt == NULL ||
        c->clock_warned == NULL || c->tx == NULL || c->self < 0 || (size_t)c->self >= c->nhosts ||
        c->nhosts > RAFT_MAX_MEMBERS) {
        cluster_free(n);
        return HC_EINVAL;
    }
    for (size_t i = 0; i < c->nhosts; i++) {
        hc_host_format(&cfg->hosts.v[i], c->names[i], sizeof(c->names[i]));
        c->ids[i] = hc_node_id_of(c->names[i]);
    }
    snprintf(n->name, sizeof(n->name), "%s", c->names[c->self]);
    return 0;
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
        return -1;
    }
    return 0;
}

/* CACHE_DATA_DIR exists (created 0700 if missing) and takes a file. */
static int prepare_data_dir(const char *dir)
{
    if (dir == NULL || dir[0] == '\0') {
        fprintf(stderr, "hacached: CACHE_DATA_DIR: must be set in cluster mode\n");
        return HC_EINVAL;
    }
    if (mkdir_p(dir) != 0) {
        fprintf(stderr, "hacached: CACHE_DATA_DIR: cannot create %s: %s\n", dir, strerror(errno));
        return HC_EINVAL;
    }
    char probe[4200];
    snprintf(probe, sizeof(probe), "%s/.hacache-write-test", dir);
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, "x", 1) != 1 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
        }
        fprintf(stderr, "hacached: CACHE_DATA_DIR: %s is not writable: %s\n", dir, strerror(e));
        return HC_EINVAL;
    }
    close(fd);
    unlink(probe);
    return 0;
}

static void on_handover_timeout(uv_timer_t *t)
{
    cluster_t *c = t->data;
    if (c->handover_cb) {
        void (*cb)(void *) = c->handover_cb;
        c->handover_cb = NULL;
        hc_log(HC_LOG_WARN, "leadership transfer did not complete in time, stopping anyway");
        cb(c->handover_ud);
    }
}

/* members_index/epoch: where `members` was seen committed (hc_members_load), 0/0 unknown. */
static int cl_raft_create(cluster_t *c, raft_start_mode_t mode, const raft_hard_state_t *hs,
                          const raft_members_t *members, uint64_t members_index,
                          uint64_t members_epoch)
{
    const hc_config_t *cfg = c->n->cfg;
    raft_start_t start;
    memset(&start, 0, sizeof(start));
    start.id = c->ids[c->self];
    randombytes_buf(&start.incarnation, sizeof(start.incarnation));
    randombytes_buf(&start.seed, sizeof(start.seed));
    if (start.incarnation == 0) {
        start.incarnation = 1;
    }
    start.mode = mode;
    if (mode == RAFT_START_RESTART && hs != NULL) {
        start.hard_state = *hs;
    }
    c->members_check = 1; /* save the first configuration seen committed */
    if (members != NULL) {
        start.members = *members;
        start.members_index = members_index;
        start.members_epoch = members_epoch;
    } else {
        start.members.n = (uint32_t)c->nhosts;
        for (size_t i = 0; i < c->nhosts; i++) {
            start.members.m[i].id = c->ids[i];
            start.members.m[i].role = RAFT_VOTER;
        }
    }
    raft_config_t rc;
    memset(&rc, 0, sizeof(rc));
    rc.election_timeout_ms = cfg->election_timeout_ms;
    rc.heartbeat_ms = cfg->heartbeat_ms;
    rc.max_log_entries = CL_MAX_LOG_ENTRIES;
    rc.max_log_bytes = CL_MAX_LOG_BYTES;
    return raft_new(&c->raft, &rc, &start, uv_now(c->n->loop));
}

static int cluster_start(hc_node_t *n)
{
    cluster_t *c = n->cl;
    const hc_config_t *cfg = n->cfg;
    int rv = prepare_data_dir(cfg->data_dir);
    if (rv != 0) {
        return rv;
    }
    const hc_host_t *me = &cfg->hosts.v[c->self];
    if (hc_hardstate_path(cfg->data_dir, me->host, me->port, c->state_path,
                          sizeof(c->state_path)) != 0) {
        fprintf(stderr, "hacached: CACHE_DATA_DIR: path too long\n");
        return HC_EINVAL;
    }
    snprintf(c->members_path, sizeof(c->members_path), "%s.members", c->state_path);
    raft_hard_state_t hs = {0, 0, false};
    rv = hc_hardstate_load(c->state_path, &hs.term, &hs.vote, &hs.novote);
    if (rv == 0) {
        if (hs.novote) {
            hc_log(HC_LOG_WARN, "this node once lost its raft state (CACHE_DATA_DIR): it follows "
                                "and serves but never votes again");
        }
        /* the configuration last seen committed, rather than HA_HOSTS, until a leader tells */
        raft_members_t m;
        uint64_t mi = 0, mep = 0;
        int mrv = hc_members_load(c->members_path, &mi, &mep, &m);
        if (mrv == 0) {
            c->members_saved = m;
            c->members_saved_epoch = mep;
            hc_log(HC_LOG_INFO, "restarting with the configuration last seen committed",
                   HC_LU("members", m.n), HC_LU("index", mi), HC_LU("epoch", mep));
        } else if (mrv != HC_ENOTFOUND) {
            hc_log(HC_LOG_WARN,
                   "ignoring an unreadable committed configuration file, using HA_HOSTS",
                   HC_LS("path", c->members_path));
        }
        rv = cl_raft_create(c, RAFT_START_RESTART, &hs, mrv == 0 ? &m : NULL, mi, mep);
        if (rv != 0) {
            hc_log(HC_LOG_ERROR, "raft_new failed", HC_LS("error", raft_strerror(rv)));
            return HC_EINTERNAL;
        }
    } else if (rv == HC_ENOTFOUND) {
        /* no raft state: ask the peers first (see "membership") */
        c->discovering = 1;
    } else {
        fprintf(stderr, "hacached: CACHE_DATA_DIR: cannot read the raft hard state %s (%s)\n",
                c->state_path, rv == HC_EINVAL ? "corrupt" : strerror(errno));
        return HC_EINVAL;
    }
    if (cfg->tls) {
        char err[512];
        if (hc_tls_ctx_new(cfg, &c->tls, err, sizeof(err)) != 0) {
            fprintf(stderr, "hacached: %s\n", err);
            return HC_EINVAL;
        }
    }
    hc_peers_opts_t po;
    memset(&po, 0, sizeof(po));
    po.cfg = cfg;
    po.tls = c->tls;
    po.cb.up = on_peer_up;
    po.cb.down = on_peer_down;
    po.cb.frame = on_peer_frame;
    po.ud = c;
    rv = hc_peers_new(n->loop, &po, &c->peers);
    if (rv != 0) {
        hc_log(HC_LOG_ERROR, "cannot create the peer layer", HC_LS("error", hc_strerror(rv)));
        return HC_EINTERNAL;
    }
    uv_timer_init(n->loop, &c->raft_timer);
    c->raft_timer.data = c;
    uv_idle_init(n->loop, &c->idle);
    c->idle.data = c;
    uv_timer_init(n->loop, &c->handover_timer);
    c->handover_timer.data = c;
    uv_timer_init(n->loop, &c->snap_timer);
    c->snap_timer.data = c;
    uv_timer_init(n->loop, &c->ql_timer);
    c->ql_timer.data = c;
    c->handles_open = 1;
    uint64_t qp = ql_grace(c) / 4 ? ql_grace(c) / 4 : 1;
    c->ql_last_tick = uv_now(n->loop);
    c->ql_deadline = c->ql_last_tick + ql_grace(c);
    uv_timer_start(&c->ql_timer, on_ql_timer, qp, qp);
    rv = hc_peers_start(c->peers);
    if (rv != 0) {
        return HC_EINTERNAL;
    }
    hc_log(HC_LOG_INFO, "node started", HC_LS("node", n->name), HC_LS("role", "follower"),
           HC_LS("start", c->discovering ? "discovering" : "restart"), HC_LU("term", hs.term),
           HC_LU("peers", c->nhosts - 1), HC_LS("data_dir", cfg->data_dir),
           HC_LU("max_memory", cfg->max_memory));
    cl_kick(c);
    return 0;
}

static void membership_tick(cluster_t *c);
static void clock_tick(cluster_t *c);

static void cluster_expiry_tick(hc_node_t *n)
{
    cluster_t *c = n->cl;
    if (!c->closing) {
        membership_tick(c);
        clock_tick(c);
    }
    if (c->closing || c->raft == NULL) {
        return;
    }
    uint64_t now = cl_now(c);
    /* deadlines of requests waiting on the leader */
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        if (op->deadline != 0 && now >= op->deadline) {
            /* a parked retry may have been applied by a leader before it was lost */
            op_finish(c, op, op->kind == OP_RETRY_WRITE ? HC_EUNKNOWN_OUTCOME : HC_ETIMEDOUT);
        }
    }
    retry_parked_writes(c);
    /* expiry is decided by the leader only; one batch in flight at a time */
    if (c->role != RAFT_LEADER || c->applied < c->expire_barrier) {
        return;
    }
    uint64_t wall = hc_wall_ms();
    victims_t vs = {0};
    hc_store_collect_expired(n->store, wall, EXPIRE_BATCH, victims_add, &vs);
    hc_cmd_meta_t meta = {.has_request_id = 0, .now_ms = wall};
    for (size_t i = 0; i < vs.n; i++) {
        hc_cmd_t e = {.op = HC_OP_EXPIRE,
                      .cache = vs.v[i].cache,
                      .cache_len = vs.v[i].cache_len,
                      .key = vs.v[i].key,
                      .klen = vs.v[i].klen,
                      .expire_at_ms = wall};
        uint64_t idx = 0;
        if (propose_cmd(c, &e, &meta, &idx, NULL) != 0) {
            break;
        }
        c->expire_barrier = idx;
    }
    victims_free(&vs);
}

static void on_cluster_handle_closed(uv_handle_t *h)
{
    hc_node_t *n = h->data;
    if (--n->closing_handles == 0 && n->close_cb) {
        n->close_cb(n->close_ud);
    }
}

static void on_peers_closed(void *ud)
{
    hc_node_t *n = ud;
    n->cl->peers = NULL;
    if (--n->closing_handles == 0 && n->close_cb) {
        n->close_cb(n->close_ud);
    }
}

static void cluster_close(hc_node_t *n)
{
    cluster_t *c = n->cl;
    c->closing = 1;
    /* Whoever still waits was abandoned by its adapter (HTTP is closed by now). */
    while (c->ops) {
        hc_node_op_t *op = c->ops;
        op_unlink(c, op);
        op_free(op);
    }
    c->handover_cb = NULL;
    if (c->handles_open) {
        c->handles_open = 0;
        uv_handle_t *hs[] = {(uv_handle_t *)&c->raft_timer, (uv_handle_t *)&c->idle,
                             (uv_handle_t *)&c->handover_timer, (uv_handle_t *)&c->snap_timer,
                             (uv_handle_t *)&c->ql_timer};
        for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++) {
            hs[i]->data = n;
            n->closing_handles++;
            uv_close(hs[i], on_cluster_handle_closed);
        }
    }
    if (c->peers) {
        n->closing_handles++;
        hc_peers_close(c->peers, on_peers_closed, n);
    }
}

static void cluster_free(hc_node_t *n)
{
    cluster_t *c = n->cl;
    while (c->ops) {
        hc_node_op_t *op = c->ops;
        op_unlink(c, op);
        op_free(op);
    }
    raft_free(c->raft);
    hc_tls_ctx_unref(c->tls);
    hc_dedupe_free(c->dedupe);
    for (size_t i = 0; c->tx != NULL && i < c->npeers; i++) {
        snap_tx_free(&c->tx[i]);
    }
    free(c->tx);
    hc_buf_free(&c->rx.buf);
    free(c->rx.members);
    free(c->ids);
    free(c->names);
    free(c->last_frame);
    free(c->info_state);
    free(c->clock_offset);
    free(c->clock_rtt);
    free(c->clock_warned);
    free(c);
    n->cl = NULL;
}

hc_node_op_t *hc_node_transfer(hc_node_t *n, const char *to, hc_write_cb cb, void *ud)
{
    hc_apply_result_t res;
    memset(&res, 0, sizeof(res));
    cluster_t *c = n->cl;
    if (c == NULL || c->raft == NULL || c->role != RAFT_LEADER || c->closing) {
        cb(ud, HC_EUNAVAILABLE, &res);
        return NULL;
    }
    uint64_t id = 0;
    if (to != NULL && to[0] != '\0') {
        int p = slot_of_name(c, to);
        if (p < 0) {
            cb(ud, HC_ENOTFOUND, &res);
            return NULL;
        }
        id = c->ids[p];
    }
    int rv = raft_transfer(c->raft, cl_now(c), id);
    if (rv != 0) {
        cb(ud,
           rv == RAFT_EINVAL      ? HC_EINVAL
           : rv == RAFT_ETRANSFER ? HC_EBUSY
                                  : HC_ENOTFOUND,
           &res);
        return NULL;
    }
    hc_node_op_t *op = op_new(OP_TRANSFER);
    if (op == NULL) {
        cb(ud, HC_EINTERNAL, &res);
        return NULL;
    }
    op->wcb = cb;
    op->ud = ud;
    op->deadline = cl_now(c) + (uint64_t)n->cfg->election_timeout_ms + 200;
    op_link(c, op);
    hc_log(HC_LOG_INFO, "leadership transfer requested", HC_LS("to", to && to[0] ? to : "any"));
    cl_kick(c);
    return op;
}

hc_node_op_t *hc_node_member_change(hc_node_t *n, int add, const char *node, hc_write_cb cb,
                                    void *ud)
{
    hc_apply_result_t res;
    memset(&res, 0, sizeof(res));
    cluster_t *c = n->cl;
    if (c == NULL || c->raft == NULL || c->role != RAFT_LEADER || c->closing) {
        cb(ud, HC_EUNAVAILABLE, &res);
        return NULL;
    }
    uint64_t id = hc_node_id_of(node);
    const raft_members_t *m = raft_members(c->raft);
    int member = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        member |= m->m[i].id == id;
    }
    if (add && !in_my_hosts(c, id)) {
        cb(ud, HC_EINVAL, &res);
        return NULL;
    }
    if (!add && !member) {
        cb(ud, HC_ENOTFOUND, &res);
        return NULL;
    }
    raft_index_t idx = 0;
    int rv = raft_change(c->raft, cl_now(c), add ? RAFT_CHANGE_ADD_LEARNER : RAFT_CHANGE_REMOVE, id,
                         &idx);
    if (rv != 0) {
        cb(ud,
           rv == RAFT_EBUSY || rv == RAFT_ETRANSFER ? HC_EBUSY
           : rv == RAFT_ENOQUORUM                   ? HC_EUNAVAILABLE
                                                    : HC_EINVAL,
           &res);
        return NULL;
    }
    c->members_changes++;
    hc_log(HC_LOG_INFO,
           add ? "membership: adding a learner (admin call)"
               : "membership: removing a member (admin call)",
           HC_LS("node", node), HC_LU("index", idx));
    hc_node_op_t *op = op_new(OP_LEADER_WRITE);
    if (op == NULL) {
        cb(ud, HC_EUNKNOWN_OUTCOME, &res);
        return NULL;
    }
    op->ack = HC_ACK_QUORUM; /* answered when the configuration entry is applied */
    op->index = idx;
    op->term = c->term;
    op->wcb = cb;
    op->ud = ud;
    op_link(c, op);
    cl_kick(c);
    return op;
}

/* The voter to hand leadership to: the most up-to-date one this node lists in HA_HOSTS, else 0
 * (raft's choice). During a scale-down roll the stopping node has the new, shorter list; a
 * leader chosen among the members about to leave lists them all and would never remove them. */
static raft_id_t handover_target(cluster_t *c)
{
    raft_status_t st;
    raft_status(c->raft, &st);
    raft_id_t best = 0;
    raft_index_t best_match = 0;
    for (uint32_t i = 0; i < st.n_peers; i++) {
        const raft_peer_status_t *p = &st.peers[i];
        int voter = 0;
        for (uint32_t k = 0; k < st.members.n; k++) {
            voter |= st.members.m[k].id == p->id && st.members.m[k].role == RAFT_VOTER;
        }
        if (voter && !p->recovering && in_my_hosts(c, p->id) &&
            (best == 0 || p->match > best_match)) {
            best = p->id;
            best_match = p->match;
        }
    }
    return best;
}

static void cluster_handover(hc_node_t *n, void (*cb)(void *ud), void *ud)
{
    cluster_t *c = n->cl;
    if (c->raft == NULL || c->role != RAFT_LEADER || c->nhosts < 2) {
        cb(ud);
        return;
    }
    int rv = raft_transfer(c->raft, cl_now(c), handover_target(c));
    if (rv != 0) {
        hc_log(HC_LOG_WARN, "leadership transfer refused", HC_LS("error", raft_strerror(rv)));
        cb(ud);
        return;
    }
    hc_log(HC_LOG_INFO, "handing leadership over before stopping");
    c->handover_cb = cb;
    c->handover_ud = ud;
    uv_timer_start(&c->handover_timer, on_handover_timeout, n->cfg->election_timeout_ms, 0);
    cl_kick(c);
}

/* ---- quorum loss ----
 * A uv_timer checks every grace/4 whether this node is in contact with a quorum (cl_quorum_st:
 * a leader heard from a majority of voters within the election timeout, a follower from its
 * leader). Once quorum was seen since the start, CACHE_QUORUM_LOSS_GRACE_MS without it trips the
 * node (cl_invalidate): every `invalidate` cache is cleared locally (HC_OP_INVALIDATE applied
 * here only, never proposed), `serve_stale` caches keep their data (read, marked stale, for at
 * most max_stale_ms after the last instant quorum was seen), reads and writes answer
 * "unavailable", and raft is told the state machine is gone (raft_state_lost): the node keeps
 * its log, term and vote (it still votes: a tripped node must never be what keeps the others
 * from electing a leader), stops applying, and the next leader that hears from it streams it a
 * snapshot. It serves again (cl_ql_serving) once that snapshot is installed, it hears from its
 * leader and it applied everything it heard committed. A leader that trips steps down first
 * (it may notice before raft's check-quorum does).
 * If the tripped node itself becomes leader (only once the voters that kept their data gave up
 * waiting for one of them to lead, raft.h), there is no one to catch up from: it proposes one
 * HC_OP_INVALIDATE so that every replica drops the same data at the same log index (stale data
 * is not brought back), and serves once that entry is applied.
 * A process that was suspended (SIGSTOP, a frozen VM) sees a tick late by far more than its
 * period: it must not invalidate on the stale contact times it wakes up with (if every member
 * did, the whole cluster would drop its data), so it instead stops serving (ql_hold) until it
 * hears from a quorum again, and invalidates only if that takes another grace period. */

static int cl_quorum_st(cluster_t *c, uint64_t now, const raft_status_t *st)
{
    uint64_t T = c->n->cfg->election_timeout_ms;
    if (c->role == RAFT_LEADER) {
        uint32_t voters = 0, heard = 1;
        for (uint32_t i = 0; i < st->members.n; i++) {
            voters += st->members.m[i].role == RAFT_VOTER;
        }
        for (uint32_t i = 0; i < st->n_peers; i++) {
            if (st->peers[i].member_role == RAFT_VOTER && st->peers[i].last_heard_ms != 0 &&
                now - st->peers[i].last_heard_ms <= T) {
                heard++;
            }
        }
        return heard * 2 > voters;
    }
    if (c->leader_idx >= 0 && c->leader_idx != c->self) {
        uint64_t lf = c->last_frame[c->leader_idx];
        return lf != 0 && now - lf <= T;
    }
    return 0;
}

static int cl_quorum(cluster_t *c, uint64_t now)
{
    if (c->raft == NULL) {
        return 0;
    }
    raft_status_t st;
    raft_status(c->raft, &st);
    return cl_quorum_st(c, now, &st);
}

static uint64_t ql_grace(const cluster_t *c)
{
    uint64_t g = c->n->cfg->quorum_loss_grace_ms;
    return g ? g : c->n->cfg->election_timeout_ms;
}

/* 1 when the node serves normally; clears the hold / the trip once that is true again. */
static int cl_ql_serving(cluster_t *c)
{
    if (!c->ql_tripped && !c->ql_hold) {
        return 1;
    }
    if (c->raft == NULL || c->closing) {
        return 0;
    }
    uint64_t now = cl_now(c);
    raft_status_t st;
    raft_status(c->raft, &st);
    if (!cl_quorum_st(c, now, &st)) {
        return 0;
    }
    if (c->ql_hold) {
        c->ql_hold = 0;
        hc_log(HC_LOG_INFO, "quorum contact regained after a stall");
    }
    if (c->ql_tripped) {
        if (c->leader_idx < 0 || st.state_lost || c->applied < c->commit_heard) {
            return 0;
        }
        if (c->role == RAFT_LEADER) {
            return 0; /* until its HC_OP_INVALIDATE is applied (apply_entry) */
        }
        c->ql_tripped = 0;
        c->ql_reset_index = 0;
        hc_log(HC_LOG_INFO, "quorum regained and caught up, serving again",
               HC_LU("applied", c->applied));
    }
    return 1;
}

/* This node leads while tripped: make every replica drop what it dropped (see above). */
static void ql_lead_tripped(cluster_t *c)
{
    if (!c->ql_tripped || c->role != RAFT_LEADER || c->ql_reset_index != 0) {
        return;
    }
    hc_cmd_t inv = {.op = HC_OP_INVALIDATE};
    hc_cmd_meta_t meta;
    memset(&meta, 0, sizeof(meta));
    meta.now_ms = hc_wall_ms();
    uint64_t index = 0, term = 0;
    int rv = propose_cmd(c, &inv, &meta, &index, &term);
    if (rv == 0) {
        c->ql_reset_index = index;
        c->ql_reset_term = term;
        hc_log(HC_LOG_WARN, "leading after a quorum loss: invalidating on every node",
               HC_LU("index", index));
    }
}

typedef struct {
    uint64_t entries;
    size_t dropped, kept;
} ql_count_t;

static void ql_count(void *ud, const char *name, size_t name_len,
                     const hc_cache_settings_t *settings, const hc_cache_stats_t *stats)
{
    ql_count_t *q = ud;
    (void)name;
    (void)name_len;
    if (settings->policy == HC_POLICY_SERVE_STALE) {
        q->kept++;
    } else {
        q->dropped++;
        q->entries += stats->entries;
    }
}

static void cl_invalidate(cluster_t *c, uint64_t now)
{
    hc_node_t *n = c->n;
    ql_count_t q;
    memset(&q, 0, sizeof(q));
    hc_store_foreach_cache(n->store, ql_count, &q);
    /* local only: this node is cut off; raft no longer hands it entries to apply */
    hc_cmd_t inv = {.op = HC_OP_INVALIDATE};
    hc_apply_result_t r;
    hc_store_apply(n->store, &inv, c->applied, hc_wall_ms(), &r);
    int rv = raft_state_lost(c->raft, now);
    if (rv != 0) {
        hc_log(HC_LOG_ERROR, "raft refused the state-machine loss",
               HC_LS("error", raft_strerror(rv)));
    }
    if (!c->ql_tripped) {
        c->invalidations++;
        hc_log(HC_LOG_WARN, "quorum lost, invalidating", HC_LU("grace_ms", ql_grace(c)),
               HC_LU("caches_dropped", q.dropped), HC_LU("entries_dropped", q.entries),
               HC_LU("serve_stale_caches", q.kept),
               HC_LU("without_quorum_ms", now - (c->ql_deadline - ql_grace(c))));
    }
    c->ql_tripped = 1;
    c->ql_reset_index = 0;
    c->ql_hold = 0;
    c->ql_armed = 0;
    /* reads waiting for this node to apply will not be answered from dropped data */
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        if (op->wait_apply && op->kind != OP_FWD_WRITE) {
            op_finish_read(c, op, HC_EUNAVAILABLE);
        }
    }
    cl_kick(c);
}

static int cmp_desc_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The instant this node invalidates at, from what it heard so far: grace after the last instant
 * it heard (directly, any frame) from a majority of voters counting itself, or, for a follower,
 * grace after the last instant its leader counted as alive (last frame + election timeout + one
 * heartbeat: a follower cannot tell a dead leader from an election under way, whose first
 * (pre)vote reaches the other followers within 2T). 0: no contact at all. */
static uint64_t ql_contact_deadline(cluster_t *c, uint64_t now)
{
    uint64_t T = c->n->cfg->election_timeout_ms, grace = ql_grace(c);
    raft_status_t st;
    raft_status(c->raft, &st);
    uint64_t times[RAFT_MAX_MEMBERS];
    uint32_t voters = 0;
    for (uint32_t i = 0; i < st.members.n && voters < RAFT_MAX_MEMBERS; i++) {
        if (st.members.m[i].role != RAFT_VOTER) {
            continue;
        }
        uint64_t id = st.members.m[i].id, t = 0;
        int pi = peer_of_id(c, id);
        if (pi == c->self) {
            t = now;
        } else if (pi >= 0) {
            t = c->last_frame[pi];
        }
        for (uint32_t j = 0; j < st.n_peers; j++) {
            if (st.peers[j].id == id && st.peers[j].last_heard_ms > t) {
                t = st.peers[j].last_heard_ms;
            }
        }
        times[voters++] = t;
    }
    uint64_t d = 0;
    if (voters > 0) {
        qsort(times, voters, sizeof(times[0]), cmp_desc_u64);
        uint64_t t = times[voters / 2];
        d = t != 0 ? t + grace : 0;
    }
    if (c->role != RAFT_LEADER && c->leader_idx >= 0 && c->leader_idx != c->self &&
        c->last_frame[c->leader_idx] != 0) {
        /* + one heartbeat: the first (pre)vote of the next election comes before lf + 2T */
        uint64_t dl = c->last_frame[c->leader_idx] + T + c->n->cfg->heartbeat_ms + grace;
        d = dl > d ? dl : d;
    }
    return d;
}

static void on_ql_timer(uv_timer_t *t)
{
    cluster_t *c = t->data;
    if (c->closing || c->raft == NULL) {
        return;
    }
    uint64_t now = cl_now(c);
    uint64_t grace = ql_grace(c);
    uint64_t period = grace / 4 ? grace / 4 : 1;
    if (now - c->ql_last_tick > period + grace / 2) {
        /* the process did not run for a while: the contact times are stale, start over */
        if (c->ql_armed && !c->ql_tripped) {
            c->ql_hold = 1;
            hc_log(HC_LOG_WARN, "process was suspended, waiting for a quorum before serving",
                   HC_LU("stalled_ms", now - c->ql_last_tick));
        }
        c->ql_deadline = now + grace;
    }
    c->ql_last_tick = now;
    if (cl_quorum(c, now)) {
        c->ql_armed = 1;
    }
    uint64_t d = ql_contact_deadline(c, now);
    if (d > c->ql_deadline) {
        c->ql_deadline = d;
    }
    if (c->ql_armed && now >= c->ql_deadline) {
        cl_invalidate(c, now);
    }
    (void)cl_ql_serving(c);
}

static int cluster_local_read(hc_node_t *n, const char *cache, size_t cache_len, const void *key,
                              size_t klen, hc_entry_view_t *out)
{
    cluster_t *c = n->cl;
    n->read_stale = 0;
    if (cl_ql_serving(c)) {
        return hc_store_get(n->store, cache, cache_len, key, klen, hc_wall_ms(), out);
    }
    /* tripped or held: only serve_stale caches answer, marked stale, for max_stale_ms after the
     * last instant a quorum was seen */
    hc_cache_settings_t set;
    if (hc_store_cache_info(n->store, cache, cache_len, &set, NULL) != 0 ||
        set.policy != HC_POLICY_SERVE_STALE ||
        cl_now(c) + ql_grace(c) - c->ql_deadline > set.max_stale_ms) {
        return HC_EUNAVAILABLE;
    }
    int rv = hc_store_get(n->store, cache, cache_len, key, klen, hc_wall_ms(), out);
    n->read_stale = rv == 0;
    return rv;
}

static uint64_t cluster_invalidations(hc_node_t *n)
{
    return n->cl->invalidations;
}

/* ---- membership ----
 * Who is a member is raft's configuration (a log entry), never HA_HOSTS directly. HA_HOSTS is
 * the desired membership, which a leader steers the configuration toward one committed change
 * at a time (raft_change: add a learner, promote it, remove a member), so two majorities never
 * exist:
 *  - Start. A node with a hard state file restarts (RAFT_START_RESTART). A node without one
 *    cannot tell a new cluster from an existing one, so it runs no raft yet ("discovering") and
 *    asks every peer it links to for a ClusterInfo (again every second). If an established
 *    peer's configuration does not hold my id, I am a new member: RAFT_START_JOIN with that
 *    configuration, then a JoinRequest to its leader every second until a configuration holds
 *    me. If it holds my id, this node lost its CACHE_DATA_DIR: RAFT_START_AMNESIA (it follows
 *    and serves but never votes again: it may have voted in any term; replacing it with a
 *    fresh id is not done yet). If every other HA_HOSTS entry (or CACHE_BOOTSTRAP_EXPECT - 1
 *    of them) answered and none is established, this is a new cluster: RAFT_START_BOOTSTRAP
 *    with all of HA_HOSTS as the first configuration (every founder computes the same one,
 *    whoever was there). A founder absent at that moment comes later to an established
 *    cluster that holds its id, which it cannot tell from a lost CACHE_DATA_DIR: it follows
 *    and never votes (hence the default: wait for every founder).
 *  - Leader (membership_tick, every 500 ms, once the configuration is committed and no change
 *    is pending): a JoinRequest from a node in my HA_HOSTS adds it as a learner; a learner in
 *    my HA_HOSTS that caught up (match >= commit) is promoted; a member not in my HA_HOSTS is
 *    removed. A node that joined never asks again once it was in a configuration, so a node
 *    removed while a leader with an older HA_HOSTS list... is not added back by it.
 * Scaling therefore works by rolling restarts with the new HA_HOSTS (README, "Scaling"): new
 * nodes join as soon as a leader lists them; members leave as soon as a leader no longer
 * lists them. A leader with an old list does not undo a change, except that it removes members
 * it does not list: roll the new list out before starting or stopping nodes. */

static int in_my_hosts(const cluster_t *c, uint64_t id)
{
    for (size_t i = 0; i < c->nhosts; i++) {
        if (c->ids[i] == id) {
            return 1;
        }
    }
    return 0;
}

static void send_info_req(cluster_t *c, int peer)
{
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__ClusterInfoRequest rq = HACACHE__CLUSTER_INFO_REQUEST__INIT;
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_INFO_REQ;
    pm.info_req = &rq;
    send_pm(c, peer, &pm);
}

static void send_cluster_info(cluster_t *c, int peer)
{
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__ClusterInfo ci = HACACHE__CLUSTER_INFO__INIT;
    uint8_t buf[4 + RAFT_MAX_MEMBERS * 9];
    /* a founder that bootstrapped moments ago (term 0, nothing voted) is not established yet:
     * the founders that are still discovering must bootstrap too, not join */
    if (c->raft != NULL && c->term > 0) {
        const raft_members_t *m = raft_members(c->raft);
        ci.established = 1;
        ci.term = c->term;
        raft_members_encode(m, buf);
        ci.members.data = buf;
        ci.members.len = raft_members_encoded_size(m);
        ci.leader = c->leader_idx >= 0 ? c->names[c->leader_idx] : "";
    } else {
        ci.leader = "";
    }
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_INFO;
    pm.info = &ci;
    send_pm(c, peer, &pm);
}

static int slot_of_name(const cluster_t *c, const char *name)
{
    for (size_t i = 0; i < c->npeers; i++) {
        if (strcasecmp(c->names[i], name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int self_in(const cluster_t *c, const raft_members_t *m)
{
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->m[i].id == c->ids[c->self]) {
            return 1;
        }
    }
    return 0;
}

static void start_raft_after_discovery(cluster_t *c, raft_start_mode_t mode,
                                       const raft_members_t *members)
{
    int rv = cl_raft_create(c, mode, NULL, members, 0, 0);
    if (rv != 0) {
        hc_log(HC_LOG_ERROR, "raft_new failed", HC_LS("error", raft_strerror(rv)));
        return; /* stays discovering; tried again on the next answer */
    }
    c->discovering = 0;
    c->joining = mode == RAFT_START_JOIN;
    if (mode == RAFT_START_BOOTSTRAP) {
        /* a founder that restarts now must come back as one (RESTART), not as a node that
         * lost its state: it never voted, so (0, no vote) is its true hard state */
        raft_hard_state_t hs = {0, 0, false};
        persist_or_die(c, &hs);
    }
    hc_log(mode == RAFT_START_AMNESIA ? HC_LOG_WARN : HC_LOG_INFO,
           mode == RAFT_START_BOOTSTRAP ? "new cluster: bootstrapping from HA_HOSTS"
           : mode == RAFT_START_JOIN
               ? "joining the existing cluster as a new member"
               : "this node is a member but lost its raft state (CACHE_DATA_DIR): it follows "
                 "and serves but never votes again",
           HC_LU("members", members ? members->n : c->nhosts));
    cl_kick(c);
}

static void on_cluster_info(cluster_t *c, int peer, const Hacache__ClusterInfo *ci)
{
    if (!c->discovering && !c->joining) {
        return;
    }
    c->info_state[peer] = ci->established ? 2 : 1;
    if (!ci->established) {
        return;
    }
    raft_members_t m;
    if (raft_members_decode(ci->members.data, ci->members.len, &m) != 0) {
        return;
    }
    c->found = m;
    c->found_leader = ci->leader != NULL && ci->leader[0] ? slot_of_name(c, ci->leader) : -1;
    if (c->discovering) {
        start_raft_after_discovery(c, self_in(c, &m) ? RAFT_START_AMNESIA : RAFT_START_JOIN, &m);
    }
}

static void on_join_request(cluster_t *c, int peer, const Hacache__JoinRequest *jr)
{
    (void)peer;
    if (c->raft == NULL || c->role != RAFT_LEADER || jr->node == NULL) {
        return;
    }
    uint64_t id = hc_node_id_of(jr->node);
    if (!in_my_hosts(c, id)) {
        hc_log(HC_LOG_DEBUG, "join request from a node not in my HA_HOSTS ignored",
               HC_LS("node", jr->node));
        return;
    }
    const raft_members_t *m = raft_members(c->raft);
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->m[i].id == id) {
            return; /* a member already */
        }
    }
    raft_index_t idx = 0;
    int rv = raft_change(c->raft, cl_now(c), RAFT_CHANGE_ADD_LEARNER, id, &idx);
    if (rv == 0) {
        c->members_changes++;
        hc_log(HC_LOG_INFO, "membership: adding a learner", HC_LS("node", jr->node),
               HC_LU("index", idx));
        cl_kick(c);
    }
}

static const char *name_of_id(const cluster_t *c, uint64_t id)
{
    int p = peer_of_id(c, id);
    return p >= 0 ? c->names[p] : "unknown";
}

/* The leader's step toward HA_HOSTS: at most one change, when none is pending. */
static void leader_reconcile(cluster_t *c)
{
    raft_status_t st;
    raft_status(c->raft, &st);
    if (!st.members_committed) {
        return;
    }
    raft_change_t kind = 0;
    uint64_t id = 0;
    for (uint32_t i = 0; i < st.members.n && kind == 0; i++) {
        const raft_member_t *mm = &st.members.m[i];
        if (mm->id == st.id) {
            continue;
        }
        if (!in_my_hosts(c, mm->id)) {
            kind = RAFT_CHANGE_REMOVE;
            id = mm->id;
        } else if (mm->role == RAFT_LEARNER) {
            for (uint32_t j = 0; j < st.n_peers; j++) {
                const raft_peer_status_t *ps = &st.peers[j];
                if (ps->id == mm->id && ps->match >= st.commit && !ps->recovering) {
                    kind = RAFT_CHANGE_PROMOTE;
                    id = mm->id;
                }
            }
        }
    }
    if (kind == 0) {
        return;
    }
    raft_index_t idx = 0;
    int rv = raft_change(c->raft, cl_now(c), kind, id, &idx);
    if (rv == 0) {
        c->members_changes++;
        hc_log(HC_LOG_INFO,
               kind == RAFT_CHANGE_REMOVE ? "membership: removing a member not in HA_HOSTS"
                                          : "membership: promoting a caught-up learner",
               HC_LS("node", name_of_id(c, id)), HC_LU("index", idx));
        cl_kick(c);
    } else if (rv != RAFT_EBUSY && rv != RAFT_ENOQUORUM) {
        hc_log(HC_LOG_DEBUG, "membership change refused", HC_LS("error", raft_strerror(rv)));
    } /* EBUSY / ENOQUORUM (too few caught-up, reachable voters for it yet): next tick */
}

static void membership_tick(cluster_t *c)
{
    uint64_t now = cl_now(c);
    if (now < c->member_tick_at) {
        return;
    }
    c->member_tick_at = now + 500;
    if (c->discovering) {
        size_t answered = 0, others = 0;
        for (size_t i = 0; i < c->nhosts; i++) {
            if ((int)i == c->self) {
                continue;
            }
            others++;
            answered += c->info_state[i] == 1;
            if (c->peers != NULL && hc_peers_is_up(c->peers, (int)i) && c->info_state[i] == 0) {
                send_info_req(c, (int)i);
            }
        }
        size_t expect = c->n->cfg->bootstrap_expect ? c->n->cfg->bootstrap_expect : others + 1;
        if (answered + 1 >= expect) {
            start_raft_after_discovery(c, RAFT_START_BOOTSTRAP, NULL);
        }
        return;
    }
    if (c->raft == NULL) {
        return;
    }
    if (c->joining) {
        if (self_in(c, raft_members(c->raft))) {
            c->joining = 0;
            hc_log(HC_LOG_INFO, "joined: this node is in the cluster configuration");
            return;
        }
        /* ask again who leads, and ask it to add me */
        for (size_t i = 0; i < c->npeers; i++) {
            if ((int)i != c->self && c->peers != NULL && hc_peers_is_up(c->peers, (int)i)) {
                send_info_req(c, (int)i);
            }
        }
        int l = c->found_leader;
        if (l >= 0 && l != c->self && c->peers != NULL && hc_peers_is_up(c->peers, l)) {
            Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
            Hacache__JoinRequest jr = HACACHE__JOIN_REQUEST__INIT;
            jr.node = c->names[c->self];
            pm.body_case = HACACHE__PEER_MESSAGE__BODY_JOIN;
            pm.join = &jr;
            send_pm(c, l, &pm);
        }
        return;
    }
    if (c->role == RAFT_LEADER && !c->closing) {
        leader_reconcile(c);
    }
}

/* ---- clock skew ----
 * Every CLOCK_PERIOD_MS each node asks every linked peer for its wall clock (TimeSync) and
 * estimates the peer's offset as t1 - (t0 + t2) / 2, good to about half the round trip. TTL
 * instants are fixed by the leader's clock and checked by each node's own, so an offset is how
 * early (negative) or late an entry expires on that node compared with the leader. Shown per
 * peer in /v1/status (clock_offset_ms) and hacache_peer_clock_offset_seconds; an offset above
 * CLOCK_WARN_MS logs one warning per peer (and one line when it is back under). */

static void send_time(cluster_t *c, int peer, uint64_t t0, uint64_t t1)
{
    Hacache__PeerMessage pm = HACACHE__PEER_MESSAGE__INIT;
    Hacache__TimeSync ts = HACACHE__TIME_SYNC__INIT;
    ts.t0 = t0;
    ts.t1 = t1;
    pm.body_case = HACACHE__PEER_MESSAGE__BODY_TIME;
    pm.time = &ts;
    send_pm(c, peer, &pm);
}

static void clock_tick(cluster_t *c)
{
    uint64_t now = cl_now(c);
    if (now < c->clock_tick_at || c->peers == NULL) {
        return;
    }
    c->clock_tick_at = now + CLOCK_PERIOD_MS;
    uint64_t wall = hc_wall_ms();
    for (size_t i = 0; i < c->npeers; i++) {
        if ((int)i != c->self && hc_peers_is_up(c->peers, (int)i)) {
            send_time(c, (int)i, wall, 0);
        }
    }
}

static void on_time_sync(cluster_t *c, int peer, const Hacache__TimeSync *ts)
{
    uint64_t t2 = hc_wall_ms();
    if (ts->t1 == 0) {
        send_time(c, peer, ts->t0, t2 ? t2 : 1); /* a question: answer with my clock */
        return;
    }
    if (ts->t0 > t2 || t2 - ts->t0 > 60000) {
        return; /* not an answer to a recent question of mine (or my clock stepped back) */
    }
    int64_t offset = (int64_t)ts->t1 - (int64_t)(ts->t0 + (t2 - ts->t0) / 2);
    c->clock_offset[peer] = offset;
    c->clock_rtt[peer] = t2 - ts->t0 ? t2 - ts->t0 : 1;
    int64_t mag = offset < 0 ? -offset : offset;
    if (mag > CLOCK_WARN_MS && !c->clock_warned[peer]) {
        c->clock_warned[peer] = 1;
        hc_log(HC_LOG_WARN, "clock skew with a peer: TTLs expire at different instants",
               HC_LS("peer", c->names[peer]), HC_LI("offset_ms", offset),
               HC_LU("rtt_ms", c->clock_rtt[peer]));
    } else if (mag <= CLOCK_WARN_MS / 2 && c->clock_warned[peer]) {
        c->clock_warned[peer] = 0;
        hc_log(HC_LOG_INFO, "clock skew with a peer back to normal", HC_LS("peer", c->names[peer]),
               HC_LI("offset_ms", offset));
    }
}

static hc_peers_t *cluster_peers(hc_node_t *n)
{
    return n->cl->peers;
}

static void cluster_status(hc_node_t *n, hc_node_status_t *out)
{
    cluster_t *c = n->cl;
    uint64_t now = cl_now(c);
    uint64_t T = n->cfg->election_timeout_ms;
    raft_status_t st;
    memset(&st, 0, sizeof(st));
    if (c->raft) {
        raft_status(c->raft, &st);
    }
    switch (c->role) {
    case RAFT_LEADER:
        out->role = "leader";
        break;
    case RAFT_FOLLOWER:
        out->role = "follower";
        break;
    default:
        out->role = "candidate";
        break;
    }
    out->term = c->term;
    out->commit_index = st.commit;
    out->applied_index = c->applied;
    out->leader = c->leader_idx >= 0 ? c->names[c->leader_idx] : NULL;
    out->leader_changes = c->leader_changes;
    (void)T;
    int quorum = cl_quorum_st(c, now, &st);
    out->quorum = quorum;
    int serving = cl_ql_serving(c);
    const char *why = NULL;
    if (n->shutting_down) {
        why = "shutting_down";
    } else if (!serving && !quorum) {
        why = "no_quorum";
    } else if (c->discovering) {
        why = "discovering";
    } else if (c->joining) {
        why = "joining";
    } else if (c->leader_idx < 0) {
        why = "no_leader";
    } else if (st.recovering) {
        why = "recovering";
    } else if (c->applied < c->commit_heard || !serving) {
        why = "catching_up";
    }
    out->ready = why == NULL;
    out->not_ready_reason = why;
    size_t k = 0;
    for (size_t i = 0; i < c->npeers && k < HC_NODE_MAX_PEERS; i++) {
        if ((int)i == c->self) {
            continue;
        }
        hc_node_peer_status_t *p = &out->peers[k++];
        p->node = c->names[i];
        p->connected = c->peers ? hc_peers_is_up(c->peers, (int)i) : 0;
        p->last_contact_ms = c->last_frame[i] ? (int64_t)(now - c->last_frame[i]) : -1;
        p->protocol_version = c->peers ? hc_peers_version(c->peers, (int)i) : 0;
        p->has_clock = c->clock_rtt[i] != 0;
        p->clock_offset_ms = c->clock_offset[i];
        p->clock_rtt_ms = c->clock_rtt[i];
        if (c->role == RAFT_LEADER) {
            for (uint32_t j = 0; j < st.n_peers; j++) {
                if (st.peers[j].id == c->ids[i]) {
                    p->has_match = 1;
                    p->match_index = st.peers[j].match;
                }
            }
        }
    }
    out->n_peers = k;
    out->n_members = 0;
    out->members_committed = st.members_committed;
    for (uint32_t i = 0; i < st.members.n && out->n_members < HC_NODE_MAX_PEERS; i++) {
        size_t j = out->n_members++;
        out->members[j].node = st.members.m[i].id == c->ids[c->self]
                                   ? c->names[c->self]
                                   : name_of_id(c, st.members.m[i].id);
        out->members[j].role = st.members.m[i].role == RAFT_VOTER ? "voter" : "learner";
    }
}

static void cluster_render_metrics(hc_node_t *n, hc_buf_t *out)
{
    cluster_t *c = n->cl;
    raft_status_t st;
    memset(&st, 0, sizeof(st));
    if (c->raft) {
        raft_status(c->raft, &st);
    }
    uint64_t retained = st.last_index >= st.first_index ? st.last_index - st.first_index + 1 : 0;
    hc_buf_printf(
        out,
        "# HELP hacache_raft_log_entries Retained raft log entries.\n"
        "# TYPE hacache_raft_log_entries gauge\nhacache_raft_log_entries %" PRIu64 "\n"
        "# HELP hacache_raft_log_bytes Retained raft log data bytes.\n"
        "# TYPE hacache_raft_log_bytes gauge\nhacache_raft_log_bytes %" PRIu64 "\n"
        "# HELP hacache_raft_snapshot_index Index the log was last compacted at.\n"
        "# TYPE hacache_raft_snapshot_index gauge\nhacache_raft_snapshot_index %" PRIu64 "\n"
        "# HELP hacache_raft_compactions_total Log compactions.\n"
        "# TYPE hacache_raft_compactions_total counter\n"
        "hacache_raft_compactions_total %" PRIu64 "\n"
        "# HELP hacache_snapshots_sent_total Snapshots streamed to followers.\n"
        "# TYPE hacache_snapshots_sent_total counter\nhacache_snapshots_sent_total %" PRIu64 "\n"
        "# HELP hacache_snapshots_failed_total Snapshot transfers aborted.\n"
        "# TYPE hacache_snapshots_failed_total counter\n"
        "hacache_snapshots_failed_total %" PRIu64 "\n"
        "# HELP hacache_snapshots_installed_total Snapshots installed from the leader.\n"
        "# TYPE hacache_snapshots_installed_total counter\n"
        "hacache_snapshots_installed_total %" PRIu64 "\n"
        "# HELP hacache_snapshot_last_bytes Size of the last snapshot sent or installed.\n"
        "# TYPE hacache_snapshot_last_bytes gauge\nhacache_snapshot_last_bytes %" PRIu64 "\n"
        "# HELP hacache_write_retries_total Writes sent again to a new leader after a leader "
        "change left their outcome unknown.\n"
        "# TYPE hacache_write_retries_total counter\nhacache_write_retries_total %" PRIu64 "\n",
        retained, st.log_bytes, st.snapshot_index, c->compactions, c->snapshots_sent,
        c->snapshots_failed, c->snapshots_installed, c->last_snapshot_bytes, c->write_retries);
    uint64_t voters = 0, learners = 0;
    for (uint32_t i = 0; i < st.members.n; i++) {
        voters += st.members.m[i].role == RAFT_VOTER;
        learners += st.members.m[i].role == RAFT_LEARNER;
    }
    hc_buf_printf(out,
                  "# HELP hacache_raft_members Members of the raft configuration this node "
                  "knows, by role.\n"
                  "# TYPE hacache_raft_members gauge\n"
                  "hacache_raft_members{role=\"voter\"} %" PRIu64 "\n"
                  "hacache_raft_members{role=\"learner\"} %" PRIu64 "\n"
                  "# HELP hacache_raft_members_committed 1 when that configuration is committed.\n"
                  "# TYPE hacache_raft_members_committed gauge\n"
                  "hacache_raft_members_committed %d\n"
                  "# HELP hacache_raft_member_info One series per member of the configuration.\n"
                  "# TYPE hacache_raft_member_info gauge\n",
                  voters, learners, st.members_committed ? 1 : 0);
    for (uint32_t i = 0; i < st.members.n; i++) {
        hc_buf_printf(out, "hacache_raft_member_info{node=\"%s\",role=\"%s\"} 1\n",
                      name_of_id(c, st.members.m[i].id),
                      st.members.m[i].role == RAFT_VOTER ? "voter" : "learner");
    }
}
