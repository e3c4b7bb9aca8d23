/* cluster.c: cluster mode's lifecycle (new, start, close, free) and its periodic tick. */
#include "cluster_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datadir.h"
#include "log.h"

int hc_cluster_new(struct uv_loop_s *loop, const hc_config_t *cfg, hc_fsm_t *fsm,
                   hc_cluster_t **out)
{
    cluster_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return HC_ENOMEM;
    }
    c->cfg = cfg;
    c->fsm = fsm;
    c->nhosts = c->npeers = cfg->hosts.n;
    c->cap = c->nhosts + RAFT_MAX_MEMBERS;
    c->self = cfg->self_index;
    c->leader_idx = -1;
    c->ids = calloc(c->cap, sizeof(*c->ids));
    c->answer_id = calloc(c->cap, sizeof(*c->answer_id));
    c->answer_lifetime = calloc(c->cap, sizeof(*c->answer_lifetime));
    c->tags = calloc(c->cap, sizeof(*c->tags));
    c->names = calloc(c->cap, sizeof(*c->names));
    c->last_frame = calloc(c->cap, sizeof(*c->last_frame));
    c->proto_seen = calloc(c->cap, sizeof(*c->proto_seen));
    hc_buf_init(&c->apply_vals);
    c->tx = calloc(c->cap, sizeof(*c->tx));
    c->info_state = calloc(c->cap, 1);
    c->clock_offset = calloc(c->cap, sizeof(*c->clock_offset));
    c->clock_rtt = calloc(c->cap, sizeof(*c->clock_rtt));
    c->clock_warned = calloc(c->cap, 1);
    c->stale_told_at = calloc(c->cap, sizeof(*c->stale_told_at));
    c->tell_stale = calloc(c->cap, 1);
    c->unlisted_at = calloc(c->cap, sizeof(*c->unlisted_at));
    c->join_id = calloc(c->cap, sizeof(*c->join_id));
    c->unlisted_id = calloc(c->cap, sizeof(*c->unlisted_id));
    c->found_leader = -1;
    c->found_from = -1;
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
    if (c->ids == NULL || c->answer_id == NULL || c->tags == NULL || c->names == NULL ||
        c->last_frame == NULL || c->proto_seen == NULL || c->info_state == NULL ||
        c->clock_offset == NULL || c->stale_told_at == NULL || c->tell_stale == NULL ||
        c->unlisted_at == NULL || c->unlisted_id == NULL || c->join_id == NULL ||
        c->answer_lifetime == NULL || c->clock_rtt == NULL || c->clock_warned == NULL ||
        c->tx == NULL || c->self < 0 || (size_t)c->self >= c->nhosts ||
        c->nhosts > RAFT_MAX_MEMBERS || cl_io_uv_new(c, loop) != 0) {
        hc_cluster_free(c);
        return HC_EINVAL;
    }
    for (size_t i = 0; i < c->nhosts; i++) {
        hc_host_format(&cfg->hosts.v[i], c->names[i], sizeof(c->names[i]));
        c->ids[i] = hc_node_id_of(c->names[i]);
        c->tags[i] = cl_tag_of_name(c->names[i]);
    }
    /* fresh ids name their host by its tag: only when every tag is nonzero and distinct (two
     * HA_HOSTS entries sharing one, odds about n^2 / 131072, keep the legacy ids) */
    c->fresh_ids = 1;
    for (size_t i = 0; i < c->nhosts; i++) {
        for (size_t j = 0; j < i; j++) {
            c->fresh_ids &= c->tags[i] != c->tags[j];
        }
        c->fresh_ids &= c->tags[i] != 0;
    }
    if (!c->fresh_ids) {
        hc_log(HC_LOG_WARN, "two HA_HOSTS entries share a host tag: a node that restarts without "
                            "its raft state follows but cannot be replaced by a voter");
    }
    snprintf(c->name, sizeof(c->name), "%s", c->names[c->self]);
    *out = c;
    return 0;
}

const char *hc_cluster_name(const hc_cluster_t *c)
{
    return c->name;
}

struct hc_peers *hc_cluster_peers(hc_cluster_t *c)
{
    return cl_io_uv_peers(c);
}

/* Loads what CACHE_DATA_DIR holds: 0 with *hs when this node restarts with its raft state (its
 * id, its committed configuration), HC_ENOTFOUND when it starts without (a new incarnation),
 * HC_EINVAL when the directory or its files are unusable (one line printed). */
static int load_state(cluster_t *c, raft_hard_state_t *hs, raft_members_t *m, int *have_m,
                      uint64_t *mi, uint64_t *mep)
{
    const hc_config_t *cfg = c->cfg;
    if (cfg->data_dir == NULL || cfg->data_dir[0] == '\0') {
        return HC_ENOTFOUND; /* no data dir: every start is a new incarnation */
    }
    int rv = cl_prepare_data_dir(cfg->data_dir);
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
    snprintf(c->id_path, sizeof(c->id_path), "%s.id", c->state_path);
    snprintf(c->lifetime_path, sizeof(c->lifetime_path), "%s.lifetime", c->state_path);
    rv = hc_hardstate_load(c->state_path, &hs->term, &hs->vote, &hs->novote);
    if (rv == HC_ENOTFOUND) {
        return rv;
    }
    if (rv != 0) {
        fprintf(stderr, "hacached: CACHE_DATA_DIR: cannot read the raft hard state %s (%s)\n",
                c->state_path, rv == HC_EINVAL ? "corrupt" : strerror(errno));
        return HC_EINVAL;
    }
    if (hs->novote && c->fresh_ids) {
        /* an older build left this node following without a vote: it is replaced like a node
         * that lost its state, by a new incarnation */
        hc_log(HC_LOG_WARN, "this node once lost its raft state: starting as a new incarnation");
        return HC_ENOTFOUND;
    }
    if (hs->novote) {
        hc_log(HC_LOG_WARN, "this node once lost its raft state (CACHE_DATA_DIR): it follows "
                            "and serves but never votes again");
    }
    uint64_t id = 0;
    int irv = hc_id_load(c->id_path, &id);
    if (irv == 0 && inc_id_tag(id) == c->tags[c->self]) {
        c->ids[c->self] = id; /* joined as a new incarnation earlier */
    } else if (irv != HC_ENOTFOUND) {
        fprintf(stderr, "hacached: CACHE_DATA_DIR: unusable raft id file %s\n", c->id_path);
        return HC_EINVAL;
    }
    uint64_t lt = 0;
    if (hc_lifetime_load(c->lifetime_path, &lt) == 0) {
        c->lifetime = lt; /* absent (an older build founded it): 0, accepts every lifetime */
    }
    /* the configuration last seen committed, rather than HA_HOSTS, until a leader tells */
    int mrv = hc_members_load(c->members_path, mi, mep, m);
    *have_m = mrv == 0;
    if (mrv == 0) {
        c->members_saved = *m;
        c->members_saved_epoch = *mep;
        hc_log(HC_LOG_INFO, "restarting with the configuration last seen committed",
               HC_LU("members", m->n), HC_LU("index", *mi), HC_LU("epoch", *mep));
    } else if (mrv != HC_ENOTFOUND) {
        hc_log(HC_LOG_WARN, "ignoring an unreadable committed configuration file, using HA_HOSTS",
               HC_LS("path", c->members_path));
    }
    return 0;
}

int hc_cluster_start(hc_cluster_t *c)
{
    const hc_config_t *cfg = c->cfg;
    raft_hard_state_t hs = {0, 0, false};
    raft_members_t m;
    int have_m = 0;
    uint64_t mi = 0, mep = 0;
    int rv = load_state(c, &hs, &m, &have_m, &mi, &mep);
    if (rv == 0) {
        rv = cl_raft_create(c, RAFT_START_RESTART, &hs, have_m ? &m : NULL, mi, mep);
        if (rv != 0) {
            hc_log(HC_LOG_ERROR, "raft_new failed", HC_LS("error", raft_strerror(rv)));
            return HC_EINTERNAL;
        }
    } else if (rv == HC_ENOTFOUND) {
        /* no raft state: ask the peers first (see "membership") */
        hs = (raft_hard_state_t){0, 0, false};
        cl_discovery_begin(c);
    } else {
        return rv;
    }
    hc_ql_init(&c->ql, cl_ql_grace(c), cl_now(c));
    rv = cl_io_uv_start(c);
    if (rv != 0) {
        return rv;
    }
    c->io.timer_start(c->io.ud, CL_TIMER_QUORUM, c->ql.period, c->ql.period);
    hc_log(HC_LOG_INFO, "node started", HC_LS("node", c->name), HC_LS("role", "follower"),
           HC_LS("start", c->discovering ? "discovering" : "restart"), HC_LU("term", hs.term),
           HC_LU("peers", c->nhosts - 1),
           HC_LS("data_dir", cfg->data_dir && cfg->data_dir[0] ? cfg->data_dir : "none"),
           HC_LU("max_memory", cfg->max_memory));
    cl_kick(c);
    return 0;
}

void hc_cluster_tick(hc_cluster_t *c)
{
    if (!c->closing) {
        cl_membership_tick(c);
        cl_clock_tick(c);
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
            cl_op_finish(c, op, op->kind == OP_RETRY_WRITE ? HC_EUNKNOWN_OUTCOME : HC_ETIMEDOUT);
        }
    }
    cl_retry_parked_writes(c);
    /* expiry is decided by the leader only; one batch in flight at a time */
    if (c->role != RAFT_LEADER || c->applied < c->expire_barrier) {
        return;
    }
    uint64_t wall = hc_wall_ms();
    hc_cmd_list_t expired = {0};
    hc_fsm_plan_expiry(c->fsm, wall, HC_FSM_EXPIRE_BATCH, &expired);
    hc_cmd_meta_t meta = {.has_request_id = 0, .now_ms = wall};
    for (size_t i = 0; i < expired.n; i++) {
        uint64_t idx = 0;
        if (cl_propose_cmd(c, &expired.v[i], &meta, &idx, NULL) != 0) {
            break;
        }
        c->expire_barrier = idx;
        hc_fsm_plan_proposed(c->fsm, &(hc_cmd_list_t){.v = &expired.v[i], .n = 1}, NULL, 0, wall);
    }
    hc_cmd_list_free(&expired);
}

void hc_cluster_close(hc_cluster_t *c, void (*cb)(void *ud), void *ud)
{
    c->closing = 1;
    /* Whoever still waits was abandoned by its adapter (HTTP is closed by now). */
    while (c->ops) {
        hc_node_op_t *op = c->ops;
        cl_op_unlink(c, op);
        cl_op_free(op);
    }
    c->handover_cb = NULL;
    cl_io_uv_close(c, cb, ud);
}

void hc_cluster_free(hc_cluster_t *c)
{
    if (c == NULL) {
        return;
    }
    while (c->ops) {
        hc_node_op_t *op = c->ops;
        cl_op_unlink(c, op);
        cl_op_free(op);
    }
    raft_free(c->raft);
    cl_io_uv_free(c);
    for (size_t i = 0; c->tx != NULL && i < c->npeers; i++) {
        cl_snap_tx_free(&c->tx[i]);
    }
    free(c->tx);
    hc_buf_free(&c->rx.buf);
    free(c->rx.members);
    cl_snap_load_free(c->loading);
    free(c->ids);
    free(c->answer_id);
    free(c->tags);
    free(c->names);
    free(c->last_frame);
    free(c->proto_seen);
    hc_buf_free(&c->apply_vals);
    free(c->info_state);
    free(c->stale_told_at);
    free(c->tell_stale);
    free(c->unlisted_at);
    free(c->join_id);
    free(c->answer_lifetime);
    free(c->unlisted_id);
    free(c->clock_offset);
    free(c->clock_rtt);
    free(c->clock_warned);
    free(c);
}
