/* quorum.c: quorum loss, the cluster glue around the state machine of quorum_state.h: what
 * counts as contact with a quorum, when the contact runs out, and what an invalidation does.
 *
 * A periodic check (every grace/4) asks whether this node is in contact with a quorum
 * (cl_quorum_st: a leader heard from a majority of voters within the election timeout, a
 * follower from its leader). Once quorum was seen since the start, CACHE_QUORUM_LOSS_GRACE_MS
 * without it trips the node: every `invalidate` cache is cleared locally (HC_OP_INVALIDATE
 * applied here only, never proposed), `serve_stale` caches keep their data (read, marked stale,
 * for at most max_stale_ms after the last instant quorum was seen), reads and writes answer
 * "unavailable", and raft is told the state machine is gone (raft_state_lost): the node keeps
 * its log, term and vote (it still votes: a tripped node must never be what keeps the others
 * from electing a leader), stops applying, and the next leader that hears from it streams it a
 * snapshot. It serves again once that snapshot is installed, it hears from its leader and it
 * applied everything it heard committed. A leader that trips steps down first (it may notice
 * before raft's check-quorum does).
 * If the tripped node itself becomes leader (only once the voters that kept their data gave up
 * waiting for one of them to lead, raft.h), there is no one to catch up from: it proposes one
 * HC_OP_INVALIDATE so that every replica drops the same data at the same log index (stale data
 * is not brought back), and serves once that entry is applied.
 * A process that was suspended (SIGSTOP, a frozen VM) sees a check late by far more than its
 * period: it must not invalidate on the stale contact times it wakes up with (if every member
 * did, the whole cluster would drop its data), so it instead stops serving (HELD) until it hears
 * from a quorum again, and invalidates only if that takes another grace period. */
#include "cluster_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

int cl_quorum_st(cluster_t *c, uint64_t now, const raft_status_t *st, uint64_t after)
{
    uint64_t T = c->cfg->election_timeout_ms;
    if (c->role == RAFT_LEADER) {
        uint32_t voters = 0, heard = 1;
        for (uint32_t i = 0; i < st->members.n; i++) {
            voters += st->members.m[i].role == RAFT_VOTER;
        }
        for (uint32_t i = 0; i < st->n_peers; i++) {
            uint64_t t = st->peers[i].last_heard_ms;
            if (st->peers[i].member_role == RAFT_VOTER && t != 0 && t > after && now - t <= T) {
                heard++;
            }
        }
        return heard * 2 > voters;
    }
    if (c->leader_idx >= 0 && c->leader_idx != c->self) {
        if (after != 0) {
            /* after a stall, frames that were queued during it prove nothing: the leader must
             * answer a question asked since, and what it had committed then must be applied */
            uint64_t t = c->held_answer_at;
            return t > after && now - t <= T && c->applied >= c->held_answer_commit;
        }
        uint64_t lf = cl_last_frame_of(c, c->leader_idx, c->leader);
        return lf != 0 && now - lf <= T;
    }
    return 0;
}

uint64_t cl_ql_grace(const cluster_t *c)
{
    uint64_t g = c->cfg->quorum_loss_grace_ms;
    return g ? g : c->cfg->election_timeout_ms;
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
static uint64_t contact_deadline(cluster_t *c, uint64_t now, const raft_status_t *st)
{
    uint64_t T = c->cfg->election_timeout_ms, grace = cl_ql_grace(c);
    uint64_t times[RAFT_MAX_MEMBERS];
    uint32_t voters = 0;
    for (uint32_t i = 0; i < st->members.n && voters < RAFT_MAX_MEMBERS; i++) {
        if (st->members.m[i].role != RAFT_VOTER) {
            continue;
        }
        uint64_t id = st->members.m[i].id, t = 0;
        int pi = cl_peer_of_id(c, id);
        if (pi == c->self) {
            t = now;
        } else if (pi >= 0) {
            t = cl_last_frame_of(c, pi, id);
        }
        for (uint32_t j = 0; j < st->n_peers; j++) {
            if (st->peers[j].id == id && st->peers[j].last_heard_ms > t) {
                t = st->peers[j].last_heard_ms;
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
    uint64_t lf = c->role != RAFT_LEADER && c->leader_idx >= 0 && c->leader_idx != c->self
                      ? cl_last_frame_of(c, c->leader_idx, c->leader)
                      : 0;
    if (lf != 0) {
        /* + one heartbeat: the first (pre)vote of the next election comes before lf + 2T */
        uint64_t dl = lf + T + c->cfg->heartbeat_ms + grace;
        d = dl > d ? dl : d;
    }
    return d;
}

typedef struct {
    uint64_t entries;
    size_t dropped, kept;
} ql_count_t;

static void count_caches(void *ud, const char *name, size_t name_len,
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

/* HC_QL_INVALIDATE: the state machine already moved to TRIPPED; `first` when it was serving. */
static void invalidate(cluster_t *c, uint64_t now, int first, uint64_t last_contact)
{
    ql_count_t q;
    memset(&q, 0, sizeof(q));
    hc_store_foreach_cache(hc_fsm_store(c->fsm), count_caches, &q);
    /* local only: this node is cut off; raft no longer hands it entries to apply */
    hc_fsm_invalidate_local(c->fsm, c->applied, hc_wall_ms());
    int rv = raft_state_lost(c->raft, now);
    if (rv != 0) {
        hc_log(HC_LOG_ERROR, "raft refused the state-machine loss",
               HC_LS("error", raft_strerror(rv)));
    }
    if (first) {
        c->invalidations++;
        hc_log(HC_LOG_WARN, "quorum lost, invalidating", HC_LU("grace_ms", cl_ql_grace(c)),
               HC_LU("caches_dropped", q.dropped), HC_LU("entries_dropped", q.entries),
               HC_LU("serve_stale_caches", q.kept), HC_LU("without_quorum_ms", now - last_contact));
    }
    /* reads waiting for this node to apply will not be answered from dropped data */
    hc_node_op_t *op = c->ops, *next;
    for (; op; op = next) {
        next = op->next;
        if (op->wait_apply && op->kind != OP_FWD_WRITE) {
            cl_op_finish_read(c, op, HC_EUNAVAILABLE);
        }
    }
    cl_kick(c);
}

/* This node leads while tripped: make every replica drop what it dropped (see above). */
static void propose_reset(cluster_t *c)
{
    hc_cmd_t inv = {.op = HC_OP_INVALIDATE};
    hc_cmd_meta_t meta;
    memset(&meta, 0, sizeof(meta));
    meta.now_ms = hc_wall_ms();
    uint64_t index = 0, term = 0;
    if (cl_propose_cmd(c, &inv, &meta, &index, &term) == 0) {
        hc_ql_reset_proposed(&c->ql, index, term);
        hc_log(HC_LOG_WARN, "leading after a quorum loss: invalidating on every node",
               HC_LU("index", index));
    }
}

static void input_of(cluster_t *c, uint64_t now, hc_ql_input_t *in, raft_status_t *st)
{
    memset(in, 0, sizeof(*in));
    raft_status(c->raft, st);
    in->now = now;
    in->quorum = cl_quorum_st(c, now, st, c->ql.state == HC_QL_HELD ? c->ql.held_since : 0);
    in->leading = c->role == RAFT_LEADER;
    in->caught_up = c->leader_idx >= 0 && !st->state_lost && c->applied >= c->commit_heard &&
                    c->role != RAFT_LEADER;
}

/* Carries out an action of the state machine and logs the transition from `before`. */
static void run(cluster_t *c, hc_ql_state_t before, hc_ql_action_t act, uint64_t now,
                uint64_t last_contact)
{
    hc_ql_state_t after = c->ql.state;
    if (act == HC_QL_INVALIDATE) {
        invalidate(c, now, before != HC_QL_TRIPPED && before != HC_QL_RECOVERING, last_contact);
    } else if (act == HC_QL_PROPOSE_RESET) {
        propose_reset(c);
    } else if (before == HC_QL_HELD && after == HC_QL_ARMED) {
        hc_log(HC_LOG_INFO, "quorum contact regained after a stall");
    } else if ((before == HC_QL_TRIPPED || before == HC_QL_RECOVERING) && hc_ql_serving(&c->ql)) {
        hc_log(HC_LOG_INFO, "quorum regained and caught up, serving again",
               HC_LU("applied", c->applied));
    }
}

/* While HELD, a follower asks its leader (TimeSync) for proof that it is alive and for its
 * commit index; questions carry this node's wall clock, answers to questions asked before the
 * hold began are ignored (cl_ql_on_answer). */
static void ask_leader(cluster_t *c)
{
    if (c->ql.state == HC_QL_HELD && c->role != RAFT_LEADER && c->leader_idx >= 0 &&
        c->leader_idx != c->self && cl_link_up(c, c->leader_idx)) {
        cl_send_time(c, c->leader_idx, hc_wall_ms(), 0);
    }
}

static void on_hold(cluster_t *c, uint64_t stalled)
{
    hc_log(HC_LOG_WARN, "process was suspended, waiting for a quorum before serving",
           HC_LU("stalled_ms", stalled));
    c->held_wall = hc_wall_ms();
    c->held_answer_at = 0;
    c->held_answer_commit = 0;
    ask_leader(c);
}

void cl_ql_on_answer(cluster_t *c, int peer, uint64_t t0, uint64_t raft_id, uint64_t commit)
{
    if (c->ql.state != HC_QL_HELD || c->raft == NULL || peer != c->leader_idx ||
        t0 < c->held_wall || (raft_id != 0 && raft_id != c->leader)) {
        return;
    }
    c->held_answer_at = cl_now(c);
    c->held_answer_commit = commit;
    cl_ql_observe(c, 0);
}

void cl_ql_notice_stall(cluster_t *c)
{
    uint64_t late = c->io.overslept(c->io.ud);
    uint64_t limit = 2 * (uint64_t)c->cfg->heartbeat_ms;
    if (c->raft == NULL || c->closing || late <= (limit > 100 ? limit : 100)) {
        return;
    }
    if (hc_ql_stall(&c->ql, cl_now(c))) {
        on_hold(c, late);
    }
}

void cl_ql_observe(cluster_t *c, int lost_leadership)
{
    /* serving (UNARMED, ARMED): hc_ql_observe has nothing to do, so no raft_status per update */
    if (c->raft == NULL || c->closing || hc_ql_serving(&c->ql)) {
        return;
    }
    uint64_t now = cl_now(c);
    hc_ql_input_t in;
    raft_status_t st;
    input_of(c, now, &in, &st);
    in.lost_leadership = lost_leadership;
    hc_ql_state_t before = c->ql.state;
    uint64_t last_contact = c->ql.deadline - c->ql.grace;
    run(c, before, hc_ql_observe(&c->ql, &in), now, last_contact);
}

void cl_ql_check(cluster_t *c)
{
    if (c->closing || c->raft == NULL) {
        return;
    }
    uint64_t now = cl_now(c);
    hc_ql_input_t in;
    raft_status_t st;
    input_of(c, now, &in, &st);
    in.contact_deadline = contact_deadline(c, now, &st);
    hc_ql_state_t before = c->ql.state;
    uint64_t stalled = now - c->ql.last_check;
    hc_ql_action_t act = hc_ql_check(&c->ql, &in);
    if (before != HC_QL_HELD && c->ql.state == HC_QL_HELD) {
        on_hold(c, stalled);
    } else {
        ask_leader(c);
    }
    run(c, before, act, now, c->ql.deadline - c->ql.grace);
}

void cl_ql_applied(cluster_t *c, uint64_t index, uint64_t term)
{
    int was = hc_ql_tripped(&c->ql);
    hc_ql_applied(&c->ql, index, term);
    if (was && !hc_ql_tripped(&c->ql)) {
        hc_log(HC_LOG_INFO, "invalidation applied on every node, serving again",
               HC_LU("index", index));
    }
}

uint64_t hc_cluster_invalidations(const hc_cluster_t *c)
{
    return c->invalidations;
}

/* Local reads are served while the quorum-loss state serves and the node is current; while
 * tripped or held only serve_stale caches answer, marked stale, for max_stale_ms after the last
 * instant a quorum was seen. */
int hc_cluster_local_read_ok(hc_cluster_t *c, const char *cache, size_t cache_len, int *stale)
{
    *stale = 0;
    cl_ql_notice_stall(c); /* woken from a suspension: not current until a quorum is heard */
    if (hc_ql_serving(&c->ql)) {
        /* a node that is starting, joining or catching up holds less than the cluster does:
         * "not found" or an old value would be a wrong answer, not a cache miss */
        return hc_cluster_not_current(c) != NULL ? HC_EUNAVAILABLE : 0;
    }
    hc_cache_settings_t set;
    if (hc_store_cache_info(hc_fsm_store(c->fsm), cache, cache_len, &set, NULL) != 0 ||
        set.policy != HC_POLICY_SERVE_STALE ||
        cl_now(c) + c->ql.grace - c->ql.deadline > set.max_stale_ms) {
        return HC_EUNAVAILABLE;
    }
    *stale = 1;
    return 0;
}

int hc_cluster_local_read(hc_cluster_t *c, const char *cache, size_t cache_len, const void *key,
                          size_t klen, hc_entry_view_t *out, int *stale)
{
    int rv = hc_cluster_local_read_ok(c, cache, cache_len, stale);
    if (rv != 0) {
        return rv;
    }
    rv = hc_store_get(hc_fsm_store(c->fsm), cache, cache_len, key, klen, hc_wall_ms(), out);
    *stale = *stale && rv == 0;
    return rv;
}
