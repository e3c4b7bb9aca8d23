/* raft.c: lifecycle, the event entry points, message dispatch, the output batch and
 * introspection. The protocol itself lives in election.c, replication.c, membership.c and
 * readindex.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

/* ---- errors and names ---- */

const char *raft_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define RAFT_ERR_CASE_(name, value, msg)                                                           \
    case RAFT_##name:                                                                              \
        return msg;
        RAFT_ERRNO_MAP(RAFT_ERR_CASE_)
#undef RAFT_ERR_CASE_
    }
    return "unknown error";
}

const char *raft_msg_type_name(int type)
{
    switch (type) {
    case RAFT_MSG_APPEND:
        return "append";
    case RAFT_MSG_APPEND_RESP:
        return "append_resp";
    case RAFT_MSG_VOTE:
        return "vote";
    case RAFT_MSG_VOTE_RESP:
        return "vote_resp";
    case RAFT_MSG_PREVOTE:
        return "prevote";
    case RAFT_MSG_PREVOTE_RESP:
        return "prevote_resp";
    case RAFT_MSG_TIMEOUT_NOW:
        return "timeout_now";
    }
    return "unknown";
}

const char *raft_role_name(int role)
{
    switch (role) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_PRECANDIDATE:
        return "precandidate";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "leader";
    }
    return "unknown";
}

/* ---- allocation and trace ---- */

static void *libc_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n);
}

static void *libc_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return realloc(p, n);
}

static void libc_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

void *raft_malloc_(raft_t *r, size_t n)
{
    return r->alloc.malloc(r->alloc.ctx, n);
}

void *raft_realloc_(raft_t *r, void *p, size_t n)
{
    return r->alloc.realloc(r->alloc.ctx, p, n);
}

void raft_free_(raft_t *r, void *p)
{
    if (p)
        r->alloc.free(r->alloc.ctx, p);
}

void raft_trace_(raft_t *r, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    r->cfg.trace(r->cfg.trace_ctx, r->id, r->now, line);
}

/* Grows an output array of `size`-byte elements so one more fits. */
static bool grow(raft_t *r, void **arr, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *na = raft_realloc_(r, *arr, ncap * size);
    if (!na)
        return false;
    *arr = na;
    *cap = ncap;
    return true;
}

/* ---- small helpers used by every module ---- */

static uint64_t rng_next(raft_t *r)
{
    /* splitmix64: good enough for jitter, deterministic from the seed */
    uint64_t z = (r->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void raft_reset_election_timer_(raft_t *r)
{
    uint64_t t = r->cfg.election_timeout_ms;
    r->election_deadline = r->now + t + rng_next(r) % t;
}

/* Gives up the log, commit and applied state as if this process had restarted empty (a
 * recovering voter with its term and vote): see raft_tick_election_ for when. A new incarnation
 * makes a leader forget what it knew of our log, as after a real restart; the configuration
 * kept is the one in effect at our commit index (an uncommitted one goes with the log). */
void raft_forfeit_(raft_t *r)
{
    raft_members_t m;
    raft_index_t at = r->commit;
    if (raft_members_at_(r, at, &m) != 0) {
        m = r->base_members;
        at = r->log.base_index;
    }
    TRACE(r, "forfeit: giving up the log (commit %llu) so that the voters can escape",
          (unsigned long long)r->commit);
    raft_log_wipe_(r, 0, 0);
    r->commit = r->applied = 0;
    r->base_members = m;
    r->host_members = m;
    r->host_members_at = at;
    r->host_members_epoch = r->reset_term;
    raft_members_recompute_(r);
    r->reset_pending = true;
    r->resets++;
    r->forfeits++;
    r->state_lost = false;
    r->recovering = true;
    uint64_t inc;
    do
        inc = rng_next(r);
    while (inc == 0 || inc == r->incarnation);
    r->incarnation = inc;
    r->role = RAFT_FOLLOWER;
    r->leader = 0;
}

const raft_peer_t *raft_peer_c_(const raft_t *r, raft_id_t id)
{
    for (uint32_t i = 0; i < r->n_peers; i++)
        if (r->peers[i].id == id)
            return &r->peers[i];
    return NULL;
}

raft_peer_t *raft_peer_(raft_t *r, raft_id_t id)
{
    return (raft_peer_t *)raft_peer_c_(r, id);
}

/* Leader stickiness: a server that heard from a live leader within the election timeout
 * ignores (pre)vote requests. Part of Check-Quorum. */
bool raft_in_lease_(const raft_t *r)
{
    if (r->cfg.disable_check_quorum || r->leader == 0)
        return false;
    if (r->role == RAFT_LEADER)
        return true;
    return r->now < r->last_leader_contact + r->cfg.election_timeout_ms;
}

raft_message_t *raft_msg_new_(raft_t *r, uint8_t type, raft_id_t to)
{
    raft_out_t *o = &r->pending;
    if (o->n_msgs >= r->cfg.max_pending_messages ||
        !grow(r, (void **)&o->msgs, o->n_msgs, &o->cap_msgs, sizeof(*o->msgs))) {
        TRACE(r, "drop outgoing %s to %llu (queue full or no memory)", raft_msg_type_name(type),
              (unsigned long long)to);
        return NULL;
    }
    raft_message_t *m = &o->msgs[o->n_msgs++];
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = r->id;
    m->to = to;
    m->term = r->term;
    m->incarnation = r->incarnation;
    m->epoch = r->reset_term;
    if (r->recovering)
        m->flags |= RAFT_MSGF_RECOVERING;
    if (!r->can_vote)
        m->flags |= RAFT_MSGF_NOVOTE;
    if (r->state_lost)
        m->flags |= RAFT_MSGF_STATE_LOST;
    return m;
}

void raft_become_follower_(raft_t *r, raft_term_t term, raft_id_t leader)
{
    bool was_leader = r->role == RAFT_LEADER;
    if (term > r->term) {
        r->term = term;
        r->vote = 0;
        r->hard_dirty = true;
    }
    if (r->role != RAFT_FOLLOWER || r->leader != leader)
        TRACE(r, "follower term=%llu leader=%llu", (unsigned long long)r->term,
              (unsigned long long)leader);
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
    r->escape_campaign = false;
    r->transfer_campaign = false;
    if (leader != 0) {
        r->last_leader_contact = r->now;
        r->leaderless_timeouts = 0;
    }
    raft_reset_election_timer_(r);
    if (was_leader) {
        raft_reads_fail_all_(r, RAFT_ESTEPPEDDOWN);
        r->transferee = 0;
    }
}

/* ---- lifecycle ---- */

static void config_defaults(raft_config_t *c)
{
    if (!c->election_timeout_ms)
        c->election_timeout_ms = 1000;
    if (!c->heartbeat_ms)
        c->heartbeat_ms = c->election_timeout_ms / 10 ? c->election_timeout_ms / 10 : 1;
    if (!c->max_entries_per_msg)
        c->max_entries_per_msg = 64;
    if (!c->max_bytes_per_msg)
        c->max_bytes_per_msg = 1u << 20;
    if (!c->max_inflight)
        c->max_inflight = 8;
    if (c->max_inflight > RAFT_INFLIGHT_MAX)
        c->max_inflight = RAFT_INFLIGHT_MAX;
    if (!c->max_log_entries)
        c->max_log_entries = 65536;
    if (!c->max_log_bytes)
        c->max_log_bytes = 64ull << 20;
    if (!c->max_pending_reads)
        c->max_pending_reads = 1024;
    if (!c->max_pending_messages)
        c->max_pending_messages = 4096;
    if (!c->recovery_timeouts)
        c->recovery_timeouts = 3;
}

static bool members_valid(const raft_members_t *m)
{
    if (m->n > RAFT_MAX_MEMBERS)
        return false;
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->m[i].id == 0 || (m->m[i].role != RAFT_VOTER && m->m[i].role != RAFT_LEARNER))
            return false;
        for (uint32_t j = 0; j < i; j++)
            if (m->m[j].id == m->m[i].id)
                return false;
    }
    return true;
}

int raft_new(raft_t **out, const raft_config_t *cfg, const raft_start_t *start, uint64_t now)
{
    *out = NULL;
    raft_config_t c = {0};
    if (cfg)
        c = *cfg;
    config_defaults(&c);
    raft_alloc_t a = {libc_malloc, libc_realloc, libc_free, NULL};
    if (c.alloc)
        a = *c.alloc;
    if (!start || start->id == 0 || !members_valid(&start->members))
        return RAFT_EINVAL;
    if (start->mode < RAFT_START_BOOTSTRAP || start->mode > RAFT_START_AMNESIA)
        return RAFT_EINVAL;
    if (start->mode == RAFT_START_BOOTSTRAP) {
        bool voter = false;
        for (uint32_t i = 0; i < start->members.n; i++)
            voter |= start->members.m[i].role == RAFT_VOTER;
        if (!voter)
            return RAFT_EINVAL;
    }
    raft_t *r = a.malloc(a.ctx, sizeof(*r));
    if (!r)
        return RAFT_ENOMEM;
    memset(r, 0, sizeof(*r));
    r->cfg = c;
    r->alloc = a;
    r->id = start->id;
    r->incarnation = start->incarnation;
    r->rng = start->seed ^ (start->id * 0x9E3779B97F4A7C15ull);
    r->now = now;
    r->role = RAFT_FOLLOWER;
    r->seq = 1;
    r->can_vote = start->mode != RAFT_START_AMNESIA &&
                  !(start->mode == RAFT_START_RESTART && start->hard_state.novote);
    r->hard_dirty = start->mode == RAFT_START_AMNESIA; /* the host persists novote first */
    r->recovering = start->mode != RAFT_START_BOOTSTRAP &&
                    !(start->mode == RAFT_START_JOIN && (c.debug_bugs & RAFT_BUG_JOIN_VOTES));
    if (start->mode == RAFT_START_RESTART || start->mode == RAFT_START_BOOTSTRAP) {
        r->term = start->hard_state.term;
        r->vote = start->hard_state.vote;
    }
    r->base_members = start->members;
    r->host_members = start->members;
    if (start->mode != RAFT_START_BOOTSTRAP) {
        r->host_members_at = start->members_index;
        r->host_members_epoch = start->members_epoch;
    }
    raft_members_set_(r, &start->members, 0);
    if (start->mode == RAFT_START_BOOTSTRAP) {
        unsigned char buf[4 + RAFT_MAX_MEMBERS * 9];
        raft_members_encode(&start->members, buf);
        if (raft_log_append_(r, 0, RAFT_ENTRY_CONFIG, buf,
                             raft_members_encoded_size(&start->members)) != 0) {
            raft_free(r);
            return RAFT_ENOMEM;
        }
        r->members_index = 1;
        r->commit = 1;
    }
    r->last_leader_contact = now;
    raft_reset_election_timer_(r);
    r->rep_role = r->role;
    r->rep_term = r->term;
    r->rep_leader = r->leader;
    TRACE(r, "start mode=%d term=%llu vote=%llu incarnation=%llx", (int)start->mode,
          (unsigned long long)r->term, (unsigned long long)r->vote,
          (unsigned long long)r->incarnation);
    *out = r;
    return 0;
}

static void out_release(raft_t *r, raft_out_t *o)
{
    for (size_t i = 0; i < o->n_msgs; i++) {
        raft_message_t *m = &o->msgs[i];
        if (m->type == RAFT_MSG_APPEND && m->append.entries) {
            for (size_t j = 0; j < m->append.n_entries; j++)
                raft_entry_release_(r, &m->append.entries[j]);
            raft_free_(r, (void *)m->append.entries);
        }
    }
    for (size_t i = 0; i < o->n_apply; i++)
        raft_entry_release_(r, &o->apply[i]);
    raft_free_(r, o->apply);
    o->apply = NULL;
    o->n_apply = 0;
    o->n_msgs = o->n_reads = o->n_snaps = 0;
}

static void out_free(raft_t *r, raft_out_t *o)
{
    out_release(r, o);
    raft_free_(r, o->msgs);
    raft_free_(r, o->reads);
    raft_free_(r, o->snaps);
    memset(o, 0, sizeof(*o));
}

void raft_free(raft_t *r)
{
    if (!r)
        return;
    out_free(r, &r->pending);
    out_free(r, &r->handed);
    raft_reads_free_(r);
    raft_log_free_(r);
    r->alloc.free(r->alloc.ctx, r);
}

/* ---- output ---- */

/* Reads and snapshot requests are queued by the modules through these. */
bool raft_out_read_(raft_t *r, raft_out_t *o, uint64_t ctx, raft_index_t index, int status)
{
    if (!grow(r, (void **)&o->reads, o->n_reads, &o->cap_reads, sizeof(*o->reads)))
        return false;
    o->reads[o->n_reads++] = (raft_read_t){ctx, index, status};
    return true;
}

bool raft_out_snapshot_(raft_t *r, raft_id_t to, raft_index_t index)
{
    raft_out_t *o = &r->pending;
    if (!grow(r, (void **)&o->snaps, o->n_snaps, &o->cap_snaps, sizeof(*o->snaps)))
        return false;
    o->snaps[o->n_snaps++] = (raft_snapshot_req_t){to, index};
    return true;
}

static uint64_t next_deadline(const raft_t *r)
{
    if (r->role != RAFT_LEADER)
        return r->election_deadline;
    uint64_t d = r->heartbeat_deadline;
    if (!r->cfg.disable_check_quorum && r->cq_deadline < d)
        d = r->cq_deadline;
    if (r->transferee && r->transfer_deadline < d)
        d = r->transfer_deadline;
    for (size_t i = 0; i < r->n_reads; i++)
        if (r->reads[i].deadline < d)
            d = r->reads[i].deadline;
    return d;
}

int raft_ready(raft_t *r, raft_update_t *u)
{
    int rv = 0;
    memset(u, 0, sizeof(*u));
    if (r->role == RAFT_LEADER)
        raft_flush_leader_(r);

    /* what the host saw last time is released now */
    out_release(r, &r->handed);
    raft_out_t tmp = r->handed;
    r->handed = r->pending;
    r->pending = tmp;
    raft_out_t *o = &r->handed;

    u->reset = r->reset_pending;
    r->reset_pending = false;

    if (r->commit > r->applied && !r->state_lost) {
        size_t n = (size_t)(r->commit - r->applied);
        o->apply = raft_malloc_(r, n * sizeof(*o->apply));
        if (o->apply) {
            for (size_t i = 0; i < n; i++) {
                raft_entry_view_(&r->log, r->applied + 1 + i, &o->apply[i]);
                raft_lentry_t *le = raft_log_get_(&r->log, r->applied + 1 + i);
                raft_buf_ref_(le->buf);
            }
            o->n_apply = n;
            r->applied = r->commit;
        } else {
            rv = RAFT_ENOMEM;
        }
    }
    /* reads answered after the entries they depend on are applied; queued straight into the
     * handed-out generation */
    raft_reads_release_(r, o);

    u->entries = o->apply;
    u->n_entries = o->n_apply;
    u->reads = o->reads;
    u->n_reads = o->n_reads;
    u->messages = o->msgs;
    u->n_messages = o->n_msgs;
    u->snapshots = o->snaps;
    u->n_snapshots = o->n_snaps;

    u->hard_state_changed = r->hard_dirty;
    u->hard_state.term = r->term;
    u->hard_state.vote = r->vote;
    u->hard_state.novote = !r->can_vote;
    r->hard_dirty = false;

    u->state_changed =
        r->rep_role != r->role || r->rep_term != r->term || r->rep_leader != r->leader;
    r->rep_role = r->role;
    r->rep_term = r->term;
    r->rep_leader = r->leader;
    u->role = r->role;
    u->term = r->term;
    u->leader = r->leader;
    u->members_changed = r->members_dirty;
    r->members_dirty = false;
    u->commit = r->commit;
    u->deadline = next_deadline(r);
    return rv;
}

/* ---- events ---- */

static void observe(raft_t *r, const raft_message_t *m)
{
    raft_peer_t *p = raft_peer_(r, m->from);
    if (!p)
        return;
    p->last_heard = r->now ? r->now : 1;
    p->last_flags = m->flags;
    if ((m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE) &&
        (m->flags & RAFT_MSGF_RECOVERING) && m->vote.n_claim > 0 &&
        m->vote.n_claim <= RAFT_MAX_MEMBERS) {
        p->claim_heard = p->last_heard;
        p->claim_index = m->vote.claim_index;
        p->claim_epoch = m->vote.claim_epoch;
        p->n_claim = m->vote.n_claim;
        memcpy(p->claim, m->vote.claim, m->vote.n_claim * sizeof(raft_id_t));
    }
    if (r->role != RAFT_LEADER)
        p->incarnation = m->incarnation;
}

static void advance(raft_t *r, uint64_t now)
{
    if (now > r->now)
        r->now = now;
}

int raft_step(raft_t *r, uint64_t now, const raft_message_t *m)
{
    advance(r, now);
    if (!m || m->to != r->id || m->from == 0 || m->from == r->id)
        return RAFT_EINVAL;
    if (m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_TIMEOUT_NOW)
        return RAFT_EINVAL;
    if (m->type == RAFT_MSG_APPEND && m->append.n_entries > 0 && !m->append.entries)
        return RAFT_EINVAL;
    observe(r, m);

    bool is_vote = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE;
    if (m->term > r->term) {
        if (is_vote && !(m->flags & RAFT_MSGF_TRANSFER) && raft_in_lease_(r)) {
            TRACE(r, "ignore %s from %llu term=%llu: leader %llu is live",
                  raft_msg_type_name(m->type), (unsigned long long)m->from,
                  (unsigned long long)m->term, (unsigned long long)r->leader);
            return 0;
        }
        if (m->type == RAFT_MSG_PREVOTE ||
            (m->type == RAFT_MSG_PREVOTE_RESP && m->vote_resp.granted)) {
            /* Pre-Vote never moves terms */
        } else {
            raft_id_t leader = m->type == RAFT_MSG_APPEND ? m->from : 0;
            raft_become_follower_(r, m->term, leader);
        }
    } else if (m->term < r->term) {
        if (m->type == RAFT_MSG_APPEND) {
            /* tell a stale leader about the newer term so it steps down (with Pre-Vote or
             * Check-Quorum our term may have moved without it hearing) */
            raft_message_t *resp = raft_msg_new_(r, RAFT_MSG_APPEND_RESP, m->from);
            if (resp) {
                resp->append_resp.success = false;
                resp->append_resp.index = m->append.prev_index;
                resp->append_resp.last_index = raft_log_last_(&r->log);
                resp->append_resp.seq = m->append.seq;
            }
        } else if (m->type == RAFT_MSG_PREVOTE) {
            raft_message_t *resp = raft_msg_new_(r, RAFT_MSG_PREVOTE_RESP, m->from);
            if (resp)
                resp->vote_resp.granted = false;
        }
        return 0;
    }

    switch (m->type) {
    case RAFT_MSG_APPEND:
        raft_recv_append_(r, m);
        break;
    case RAFT_MSG_APPEND_RESP:
        raft_recv_append_resp_(r, m);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        raft_recv_vote_(r, m);
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        raft_recv_vote_resp_(r, m);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        raft_recv_timeout_now_(r, m);
        break;
    }
    return 0;
}

int raft_tick(raft_t *r, uint64_t now)
{
    advance(r, now);
    if (r->role == RAFT_LEADER)
        raft_tick_leader_(r);
    else
        raft_tick_election_(r);
    return 0;
}

int raft_propose(raft_t *r, uint64_t now, const void *data, size_t len, raft_index_t *index,
                 raft_term_t *term)
{
    advance(r, now);
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transferee)
        return RAFT_ETRANSFER;
    if (len > r->cfg.max_bytes_per_msg || (len > 0 && !data))
        return len > 0 && !data ? RAFT_EINVAL : RAFT_ETOOBIG;
    if (r->log.n + 1 > r->cfg.max_log_entries || r->log.bytes + len > r->cfg.max_log_bytes)
        return RAFT_EFULL;
    int rv = raft_log_append_(r, r->term, RAFT_ENTRY_NORMAL, data, len);
    if (rv)
        return rv;
    if (index)
        *index = raft_log_last_(&r->log);
    if (term)
        *term = r->term;
    raft_maybe_commit_(r);
    return 0;
}

/* ---- introspection ---- */

const raft_members_t *raft_members(const raft_t *r)
{
    return &r->members;
}

bool raft_is_recovering(const raft_t *r)
{
    return r->recovering;
}

void raft_status(const raft_t *r, raft_status_t *s)
{
    memset(s, 0, sizeof(*s));
    s->id = r->id;
    s->incarnation = r->incarnation;
    s->role = r->role;
    s->term = r->term;
    s->vote = r->vote;
    s->leader = r->leader;
    s->commit = r->commit;
    s->applied = r->applied;
    s->first_index = r->log.base_index + 1;
    s->last_index = raft_log_last_(&r->log);
    s->snapshot_index = r->log.base_index;
    s->snapshot_term = r->log.base_term;
    s->log_bytes = r->log.bytes;
    s->recovering = r->recovering;
    s->can_vote = r->can_vote;
    s->state_lost = r->state_lost;
    s->transferee = r->transferee;
    s->resets = r->resets;
    s->epoch = r->reset_term;
    s->forfeits = r->forfeits;
    s->pending_reads = (uint32_t)r->n_reads;
    s->members = r->members;
    s->members_index = r->members_index;
    s->members_committed = r->members_index <= r->commit;
    s->n_peers = r->n_peers;
    for (uint32_t i = 0; i < r->n_peers; i++) {
        const raft_peer_t *p = &r->peers[i];
        raft_peer_status_t *ps = &s->peers[i];
        ps->id = p->id;
        ps->member_role = p->member_role;
        ps->recovering = (p->last_flags & RAFT_MSGF_RECOVERING) != 0;
        ps->novote = (p->last_flags & RAFT_MSGF_NOVOTE) != 0;
        ps->incarnation = p->incarnation;
        ps->last_heard_ms = p->last_heard;
        if (r->role == RAFT_LEADER) {
            ps->recovering = p->recovering;
            ps->match = p->match;
            ps->next = p->next;
            ps->inflight = p->inflight_n;
            ps->progress_state = p->state;
            ps->counted = p->member_role == RAFT_VOTER && p->inc_known && !p->recovering;
        }
    }
}

int raft_debug_entry(const raft_t *r, raft_index_t index, raft_entry_t *out)
{
    if (index <= r->log.base_index)
        return RAFT_ECOMPACTED;
    if (index > raft_log_last_(&r->log))
        return RAFT_ENOENT;
    raft_entry_view_(&r->log, index, out);
    return 0;
}

int raft_state_lost(raft_t *r, uint64_t now)
{
    if (now > r->now)
        r->now = now;
    if (r->role == RAFT_LEADER) {
        /* the host decided it has no quorum (it may know before check-quorum does) */
        TRACE(r, "stepping down: the state machine is lost");
        raft_become_follower_(r, r->term, 0);
    }
    if (!r->state_lost)
        TRACE(r, "state machine lost at applied %llu: waiting for a snapshot",
              (unsigned long long)r->applied);
    r->state_lost = true;
    return 0;
}
