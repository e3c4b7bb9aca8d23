/* replication.c: the leader's side (progress per follower, pipelined AppendEntries, fast
 * backtracking, heartbeats, commit by counting, incarnation resets, check-quorum, transfer,
 * snapshot requests) and the follower's side (log matching, truncation, commit). */
#include <string.h>

#include "raft_int.h"

static uint32_t quorum(const raft_t *r)
{
    return raft_n_voters_(r) / 2 + 1;
}

void raft_progress_init_(raft_t *r, raft_peer_t *p)
{
    p->match = 0;
    p->next = raft_log_last_(&r->log) + 1;
    p->state = RAFT_PROGRESS_PROBE;
    p->inflight_head = p->inflight_n = 0;
    p->probe_sent = false;
    p->inc_known = false;
    p->recovering = true; /* unknown until it answers: not counted */
    p->caught_up_notify = false;
    p->need_reset = false;
    p->reset_seq = r->seq - 1;
    p->acked_seq = 0;
    p->sent_commit = 0;
    p->sent_seq = 0;
    p->active = false;
}

void raft_transfer_abort_(raft_t *r, const char *why)
{
    if (!r->transferee)
        return;
    TRACE(r, "leadership transfer to %llu aborted: %s", (unsigned long long)r->transferee, why);
    r->transferee = 0;
}

static void send_timeout_now(raft_t *r, raft_peer_t *p)
{
    TRACE(r, "transfer: %llu is up to date, timeout_now", (unsigned long long)p->id);
    raft_msg_new_(r, RAFT_MSG_TIMEOUT_NOW, p->id);
}

void raft_become_leader_(raft_t *r)
{
    bool escape = r->escape_campaign;
    r->role = RAFT_LEADER;
    r->leader = r->id;
    r->transferee = 0;
    r->escape_campaign = r->transfer_campaign = false;
    r->leaderless_timeouts = 0; /* we are the leader: counted again from when we step down */
    r->seq++;
    TRACE(r, "leader term=%llu%s", (unsigned long long)r->term,
          escape ? " (escape: the cluster restarts from an empty log)" : "");
    if (escape) {
        raft_log_wipe_(r, 0, 0);
        r->commit = r->applied = 0;
        r->base_members = r->members;
        r->reset_pending = true;
        r->resets++;
        r->reset_term = r->term;
        raft_members_recompute_(r);
    }
    if (r->state_lost) {
        /* nobody to stream a snapshot from: go on from what the host kept (raft.h) */
        TRACE(r, "leading without a state machine: applying resumes after %llu",
              (unsigned long long)r->applied);
        r->state_lost = false;
    }
    r->recovering = false;
    for (uint32_t i = 0; i < r->n_peers; i++) {
        raft_progress_init_(r, &r->peers[i]);
        r->peers[i].need_reset = escape;
    }
    /* the term-start entry: nothing is acknowledged (reads included) before it commits; an
     * escape leader writes its configuration there so the new log is self-describing */
    int rv;
    if (escape) {
        unsigned char buf[4 + RAFT_MAX_MEMBERS * 9];
        raft_members_encode(&r->members, buf);
        rv = raft_log_append_(r, r->term, RAFT_ENTRY_CONFIG, buf,
                              raft_members_encoded_size(&r->members));
        if (rv == 0)
            raft_members_recompute_(r);
    } else {
        rv = raft_log_append_(r, r->term, RAFT_ENTRY_NOOP, NULL, 0);
    }
    if (rv != 0) {
        TRACE(r, "no memory for the term-start entry: stepping down");
        raft_become_follower_(r, r->term, 0);
        return;
    }
    r->term_start = raft_log_last_(&r->log);
    r->heartbeat_deadline = r->now + r->cfg.heartbeat_ms;
    r->cq_deadline = r->now + r->cfg.election_timeout_ms;
    raft_maybe_commit_(r);
}

/* ---- leader: sending ---- */

static void fill_append_common(raft_t *r, raft_peer_t *p, raft_message_t *m)
{
    m->append.commit = r->commit;
    m->append.seq = r->seq;
    m->append.to_incarnation = p->incarnation;
    if (p->need_reset)
        m->flags |= RAFT_MSGF_RESET;
    if (p->caught_up_notify)
        m->flags |= RAFT_MSGF_CAUGHT_UP;
    /* what the follower can learn from it: commit up to the end of what it matches */
    raft_index_t known = m->append.prev_index + m->append.n_entries;
    if (known > r->commit)
        known = r->commit;
    if (known > p->sent_commit)
        p->sent_commit = known;
    p->sent_seq = r->seq;
}

void raft_send_heartbeat_(raft_t *r, raft_peer_t *p)
{
    raft_message_t *m = raft_msg_new_(r, RAFT_MSG_APPEND, p->id);
    if (!m)
        return;
    /* prev = what it is known to hold, so a heartbeat never fails on a pipelined gap */
    raft_term_t t = 0;
    if (p->match >= r->log.base_index && raft_log_term_(&r->log, p->match, &t)) {
        m->append.prev_index = p->match;
        m->append.prev_term = t;
    }
    fill_append_common(r, p, m);
    /* When its match point was compacted away the heartbeat cannot name it (prev = 0) and so
     * cannot teach it any commit index: count the commit as told anyway, or every
     * raft_ready() would send another useless heartbeat (one per response: a message storm). */
    raft_index_t useful = p->match < r->commit ? p->match : r->commit;
    if (p->sent_commit < useful)
        p->sent_commit = useful;
}

/* Sends one AppendEntries from p->next; returns whether it sent entries. */
static bool send_append(raft_t *r, raft_peer_t *p, bool allow_empty)
{
    if (p->state == RAFT_PROGRESS_SNAPSHOT)
        return false;
    if (p->state == RAFT_PROGRESS_PROBE && p->probe_sent)
        return false;
    if (p->state == RAFT_PROGRESS_REPLICATE && p->inflight_n >= r->cfg.max_inflight)
        return false;
    raft_index_t prev = p->next - 1;
    if (p->next <= r->log.base_index) {
        /* what it needs was compacted: ask the host to stream a snapshot */
        if (raft_out_snapshot_(r, p->id, r->log.base_index)) {
            TRACE(r, "%llu needs %llu, compacted: snapshot", (unsigned long long)p->id,
                  (unsigned long long)p->next);
            p->state = RAFT_PROGRESS_SNAPSHOT;
            p->snapshot_index = r->log.base_index;
        } else {
            p->probe_sent = true;
            p->probe_sent_at = r->now;
        }
        return false;
    }
    raft_term_t prev_term = 0;
    raft_log_term_(&r->log, prev, &prev_term);
    raft_index_t last = raft_log_last_(&r->log);
    size_t n = 0;
    uint64_t bytes = 0;
    while (prev + n + 1 <= last && n < r->cfg.max_entries_per_msg) {
        const raft_lentry_t *e = raft_log_get_(&r->log, prev + n + 1);
        size_t len = e->buf ? e->buf->len : 0;
        if (n > 0 && bytes + len > r->cfg.max_bytes_per_msg)
            break;
        bytes += len;
        n++;
    }
    if (n == 0 && !allow_empty)
        return false;
    raft_entry_t *ents = NULL;
    if (n > 0) {
        ents = raft_malloc_(r, n * sizeof(*ents));
        if (!ents)
            return false;
    }
    raft_message_t *m = raft_msg_new_(r, RAFT_MSG_APPEND, p->id);
    if (!m) {
        raft_free_(r, ents);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        raft_entry_view_(&r->log, prev + 1 + i, &ents[i]);
        raft_buf_ref_(raft_log_get_(&r->log, prev + 1 + i)->buf);
    }
    m->append.prev_index = prev;
    m->append.prev_term = prev_term;
    m->append.entries = ents;
    m->append.n_entries = n;
    fill_append_common(r, p, m);
    if (p->state == RAFT_PROGRESS_REPLICATE && n > 0) {
        p->next = prev + n + 1;
        p->inflight[(p->inflight_head + p->inflight_n) % RAFT_INFLIGHT_MAX] = prev + n;
        p->inflight_n++;
    } else if (p->state == RAFT_PROGRESS_PROBE) {
        p->probe_sent = true;
        p->probe_sent_at = r->now;
    }
    return n > 0;
}

void raft_send_append_(raft_t *r, raft_peer_t *p, bool allow_empty)
{
    send_append(r, p, allow_empty);
}

/* Called once per raft_ready(): fills every follower's pipeline, then makes sure each one has
 * seen the latest commit index and ReadIndex round (batching for free). */
void raft_flush_leader_(raft_t *r)
{
    raft_index_t last = raft_log_last_(&r->log);
    for (uint32_t i = 0; i < r->n_peers && r->role == RAFT_LEADER; i++) {
        raft_peer_t *p = &r->peers[i];
        if (p->state == RAFT_PROGRESS_REPLICATE) {
            while (p->next <= last && send_append(r, p, false))
                ;
        } else if (p->state == RAFT_PROGRESS_PROBE && !p->probe_sent) {
            send_append(r, p, true);
        }
        raft_index_t useful = p->match < r->commit ? p->match : r->commit;
        if (p->sent_commit < useful || p->sent_seq < r->seq)
            raft_send_heartbeat_(r, p);
    }
}

/* ---- leader: commit ---- */

static void maybe_caught_up(raft_t *r, raft_peer_t *p)
{
    /* A restarted follower votes and counts again once it holds everything committed: what
     * this leader committed in its term (its commit index) and every entry committed in
     * earlier terms, which by leader completeness lies below the leader's first entry of its
     * term. (Waiting for the commit index to cover earlier terms instead, i.e. for an entry of
     * this term to commit, deadlocks when that needs this very follower: 4 voters, 2 of them
     * recovering.) */
    if (p->recovering && p->inc_known && p->match >= r->commit && p->match + 1 >= r->term_start) {
        TRACE(r, "%llu caught up at %llu: counted again", (unsigned long long)p->id,
              (unsigned long long)p->match);
        p->recovering = false;
        p->caught_up_notify = true;
    }
}

static void on_commit(raft_t *r)
{
    raft_reads_on_commit_(r);
    for (uint32_t i = 0; i < r->n_peers; i++)
        maybe_caught_up(r, &r->peers[i]);
    if (r->members_index > 0 && r->members_index <= r->commit)
        r->members_dirty = true;
    raft_check_self_removal_(r);
}

void raft_maybe_commit_(raft_t *r)
{
    if (r->role != RAFT_LEADER)
        return;
    raft_index_t last = raft_log_last_(&r->log), n;
    if (r->cfg.debug_bugs & RAFT_BUG_COMMIT_WITHOUT_MAJORITY) {
        n = last;
    } else {
        raft_index_t m[RAFT_MAX_MEMBERS];
        uint32_t k = 0;
        if (raft_is_voter_(r, r->id))
            m[k++] = last;
        for (uint32_t i = 0; i < r->n_peers; i++) {
            const raft_peer_t *p = &r->peers[i];
            if (p->member_role == RAFT_VOTER)
                m[k++] = p->inc_known && !p->recovering ? p->match : 0;
        }
        uint32_t q = quorum(r);
        if (k == 0 || q > k)
            return;
        /* q-th largest: insertion sort, k <= 32 */
        for (uint32_t i = 1; i < k; i++)
            for (uint32_t j = i; j > 0 && m[j - 1] < m[j]; j--) {
                raft_index_t t = m[j];
                m[j] = m[j - 1];
                m[j - 1] = t;
            }
        n = m[q - 1];
    }
    if (n <= r->commit)
        return;
    raft_term_t t = 0;
    raft_log_term_(&r->log, n, &t);
    /* Figure 8: only entries of the current term commit by counting replicas */
    if (t != r->term && !(r->cfg.debug_bugs & RAFT_BUG_COMMIT_OLD_TERM))
        return;
    r->commit = n;
    on_commit(r);
}

/* ---- leader: receiving ---- */

static void inflight_free_to(raft_peer_t *p, raft_index_t index)
{
    while (p->inflight_n > 0 && p->inflight[p->inflight_head] <= index) {
        p->inflight_head = (p->inflight_head + 1) % RAFT_INFLIGHT_MAX;
        p->inflight_n--;
    }
}

static void become_probe(raft_peer_t *p)
{
    p->state = RAFT_PROGRESS_PROBE;
    p->probe_sent = false;
    p->inflight_head = p->inflight_n = 0;
}

/* p dropped its state machine (raft_state_lost): stream it one captured at our commit index or
 * later, which covers everything it applied. Not again within an election timeout of the last
 * transfer to it (its answers sent while the chunks were on the way still carry the flag). */
static void snapshot_for_lost_state(raft_t *r, raft_peer_t *p, const raft_message_t *m)
{
    if (!(m->flags & RAFT_MSGF_STATE_LOST) || p->state == RAFT_PROGRESS_SNAPSHOT ||
        r->now < p->lost_snap_at)
        return;
    raft_index_t at = r->commit > r->log.base_index ? r->commit : r->log.base_index;
    if (!raft_out_snapshot_(r, p->id, at))
        return;
    TRACE(r, "%llu lost its state machine: snapshot at %llu", (unsigned long long)p->id,
          (unsigned long long)at);
    p->state = RAFT_PROGRESS_SNAPSHOT;
    p->snapshot_index = at;
    p->lost_snap_at = r->now + r->cfg.election_timeout_ms;
}

void raft_recv_append_resp_(raft_t *r, const raft_message_t *m)
{
    if (r->role != RAFT_LEADER)
        return;
    raft_peer_t *p = raft_peer_(r, m->from);
    if (!p)
        return;
    p->active = true;
    if (m->append_resp.seq <= p->reset_seq)
        return; /* answers something sent before its progress was last reset */
    bool rec = (m->flags & RAFT_MSGF_RECOVERING) != 0;
    if (!p->inc_known) {
        p->inc_known = true;
        p->incarnation = m->incarnation;
        p->recovering = rec;
    } else if (m->incarnation != p->incarnation) {
        /* A new process: whatever it acknowledged before is gone, so matchIndex restarts at 0
         * (Raft assumes it never decreases) and it is not counted until caught up. */
        TRACE(r, "%llu restarted (incarnation %llx -> %llx): progress reset",
              (unsigned long long)p->id, (unsigned long long)p->incarnation,
              (unsigned long long)m->incarnation);
        raft_progress_init_(r, p);
        p->inc_known = true;
        p->incarnation = m->incarnation;
        p->recovering = rec;
        p->active = true;
        p->reset_seq = r->seq;
        r->seq++;
        raft_index_t n = m->append_resp.last_index + 1;
        if (n < p->next)
            p->next = n;
        if (r->transferee == p->id)
            raft_transfer_abort_(r, "transferee restarted");
        raft_maybe_commit_(r);
        return;
    } else {
        p->recovering = p->recovering && rec;
    }
    if (!rec)
        p->caught_up_notify = false;
    if (m->append_resp.seq > p->acked_seq)
        p->acked_seq = m->append_resp.seq;

    raft_index_t idx = m->append_resp.index;
    if (m->append_resp.success && idx > raft_log_last_(&r->log)) {
        /* it cannot hold more of our log than we have: its state is from another history (a
         * missed escape election); never count it (it discards that state on our next append) */
        TRACE(r, "%llu claims %llu beyond our last %llu: ignored", (unsigned long long)p->id,
              (unsigned long long)idx, (unsigned long long)raft_log_last_(&r->log));
        return;
    }
    if (m->append_resp.success) {
        if (p->need_reset) { /* it discarded its state for this term: a fresh follower */
            p->need_reset = false;
            p->recovering = false;
        }
        if (idx > p->match) {
            p->match = idx;
            p->progress_at = r->now;
        }
        if (p->next < p->match + 1)
            p->next = p->match + 1;
        inflight_free_to(p, idx);
        if (p->state == RAFT_PROGRESS_PROBE ||
            (p->state == RAFT_PROGRESS_SNAPSHOT && p->match >= p->snapshot_index)) {
            p->state = RAFT_PROGRESS_REPLICATE;
            p->progress_at = r->now;
            p->probe_sent = false;
            p->inflight_head = p->inflight_n = 0;
            p->next = p->match + 1;
        }
        maybe_caught_up(r, p);
        raft_maybe_commit_(r);
        if (r->role == RAFT_LEADER && r->transferee == p->id && p->match == raft_log_last_(&r->log))
            send_timeout_now(r, p);
        if (r->role == RAFT_LEADER)
            snapshot_for_lost_state(r, p, m);
        return;
    }
    /* rejected. A follower of this incarnation never loses an entry it acknowledged in this
     * term (it truncates only on a conflict with this leader's entries), so a rejection at or
     * below match is stale in every state (a late or duplicated answer to an older probe);
     * acting on it would re-probe at the same next forever. Any other rejection moves next
     * strictly down: next <= idx < next before. */
    if (idx <= p->match || (p->state == RAFT_PROGRESS_PROBE && idx != p->next - 1) ||
        p->state == RAFT_PROGRESS_SNAPSHOT)
        return; /* stale */
    raft_index_t c =
        raft_log_find_conflict_(&r->log, m->append_resp.hint_index, m->append_resp.hint_term);
    raft_index_t next = c + 1 < idx ? c + 1 : idx;
    if (next < p->match + 1)
        next = p->match + 1;
    TRACE(r, "%llu rejected %llu (hint %llu/%llu): next %llu -> %llu", (unsigned long long)p->id,
          (unsigned long long)idx, (unsigned long long)m->append_resp.hint_index,
          (unsigned long long)m->append_resp.hint_term, (unsigned long long)p->next,
          (unsigned long long)next);
    become_probe(p);
    p->next = next;
    snapshot_for_lost_state(r, p, m);
}

void raft_tick_leader_(raft_t *r)
{
    uint64_t t = r->cfg.election_timeout_ms;
    if (!r->cfg.disable_check_quorum && r->now >= r->cq_deadline) {
        uint32_t active = raft_is_voter_(r, r->id) ? 1 : 0;
        for (uint32_t i = 0; i < r->n_peers; i++) {
            raft_peer_t *p = &r->peers[i];
            if (p->member_role == RAFT_VOTER && p->active)
                active++;
            p->active = false;
        }
        if (active < quorum(r)) {
            TRACE(r, "check-quorum: heard from %u of %u voters in %llu ms: stepping down", active,
                  raft_n_voters_(r), (unsigned long long)t);
            raft_become_follower_(r, r->term, 0);
            return;
        }
        r->cq_deadline = r->now + t;
    }
    if (r->transferee && r->now >= r->transfer_deadline)
        raft_transfer_abort_(r, "timed out");
    if (r->now >= r->heartbeat_deadline) {
        r->heartbeat_deadline = r->now + r->cfg.heartbeat_ms;
        for (uint32_t i = 0; i < r->n_peers; i++) {
            raft_peer_t *p = &r->peers[i];
            if (p->state == RAFT_PROGRESS_PROBE && p->probe_sent &&
                r->now >= p->probe_sent_at + r->cfg.heartbeat_ms)
                p->probe_sent = false; /* probe lost? try again */
            /* pipelined messages lost (a reconnect): no progress for two heartbeats while
             * entries are outstanding -> probe again from the match point */
            if (p->state == RAFT_PROGRESS_REPLICATE && p->match + 1 < p->next &&
                r->now >= p->progress_at + 2 * (uint64_t)r->cfg.heartbeat_ms) {
                TRACE(r, "%llu: no progress at %llu, re-probing", (unsigned long long)p->id,
                      (unsigned long long)p->match);
                become_probe(p);
                p->next = p->match + 1;
            }
            if (p->state == RAFT_PROGRESS_PROBE && !p->probe_sent)
                send_append(r, p, true);
            else
                raft_send_heartbeat_(r, p);
        }
    }
    raft_reads_tick_(r);
}

/* ---- follower ---- */

static void reset_state(raft_t *r, const char *why)
{
    TRACE(r, "discarding all state: %s", why);
    raft_log_wipe_(r, 0, 0);
    r->commit = r->applied = 0;
    r->base_members = r->members;
    raft_members_recompute_(r);
    r->reset_pending = true;
    r->resets++;
    r->state_lost = false; /* the whole state machine restarts empty anyway */
}

static void respond(raft_t *r, const raft_message_t *m, bool ok, raft_index_t index,
                    raft_index_t hint_index, raft_term_t hint_term)
{
    raft_message_t *resp = raft_msg_new_(r, RAFT_MSG_APPEND_RESP, m->from);
    if (!resp)
        return;
    resp->append_resp.success = ok;
    resp->append_resp.index = index;
    resp->append_resp.hint_index = hint_index;
    resp->append_resp.hint_term = hint_term;
    resp->append_resp.last_index = raft_log_last_(&r->log);
    resp->append_resp.seq = m->append.seq;
}

void raft_recv_append_(raft_t *r, const raft_message_t *m)
{
    if (r->role == RAFT_LEADER) {
        TRACE(r, "BUG? append from %llu in my own term %llu", (unsigned long long)m->from,
              (unsigned long long)r->term);
        return;
    }
    if (r->role != RAFT_FOLLOWER || r->leader != m->from)
        raft_become_follower_(r, r->term, m->from);
    r->last_leader_contact = r->now;
    r->leaderless_timeouts = 0;
    raft_reset_election_timer_(r);
    r->leader_seq = m->append.seq;

    if ((m->flags & RAFT_MSGF_RESET) && r->reset_term < m->term) {
        r->reset_term = m->term;
        reset_state(r, "the leader was elected by a majority that lost its memory");
        /* a fresh member of the new log: it never acknowledged anything in it */
        r->recovering = false;
    } else if (m->epoch > r->reset_term) {
        /* The leader's log started with an escape election we missed (it stopped leading
         * before resetting us, or a later leader of its epoch reached us first). Our log,
         * commit index and applied state are from the dead history: nothing of it may be
         * matched against the new log (a committed prefix would be claimed as the leader's),
         * so it all goes. Not if there is nothing to discard, or if what we hold is a
         * snapshot this very leader sent (same term: one leader per term). */
        bool empty = raft_log_last_(&r->log) == 0 && r->commit == 0 && r->applied == 0;
        raft_term_t epoch = m->epoch;
        if (!empty && r->snap_term != m->term)
            reset_state(r, "the leader's log started with an escape election we missed");
        r->reset_term = epoch;
    }
    if ((m->flags & RAFT_MSGF_CAUGHT_UP) && m->append.to_incarnation == r->incarnation &&
        r->recovering) {
        TRACE(r, "caught up: voting again");
        r->recovering = false;
    }

    raft_index_t prev = m->append.prev_index;
    raft_term_t prev_term = m->append.prev_term;
    const raft_entry_t *ents = m->append.entries;
    size_t n = m->append.n_entries;
    if (prev < r->commit) {
        /* entries up to our commit index are the leader's (state machine safety) */
        raft_index_t skip = r->commit - prev;
        if (skip >= n) {
            respond(r, m, true, r->commit, 0, 0);
            return;
        }
        ents += skip;
        n -= (size_t)skip;
        prev = r->commit;
        raft_log_term_(&r->log, prev, &prev_term);
    }
    raft_term_t t = 0;
    if (!raft_log_term_(&r->log, prev, &t) || t != prev_term) {
        raft_index_t last = raft_log_last_(&r->log);
        raft_index_t hi = raft_log_find_conflict_(&r->log, prev < last ? prev : last, prev_term);
        raft_term_t ht = 0;
        raft_log_term_(&r->log, hi, &ht);
        respond(r, m, false, m->append.prev_index, hi, ht);
        return;
    }
    size_t done = 0;
    bool config = false;
    for (; done < n; done++) {
        const raft_entry_t *e = &ents[done];
        raft_index_t idx = prev + 1 + done;
        if (raft_log_term_(&r->log, idx, &t)) {
            if (t == e->term)
                continue;
            if (idx <= r->commit) { /* cannot happen unless a safety property is broken */
                TRACE(r, "BUG? conflict at committed %llu", (unsigned long long)idx);
                break;
            }
            TRACE(r, "conflict at %llu (term %llu vs %llu): truncate", (unsigned long long)idx,
                  (unsigned long long)t, (unsigned long long)e->term);
            raft_log_truncate_(r, idx);
            config = true;
        }
        if (raft_log_append_(r, e->term, e->type, e->data, e->len) != 0)
            break;
        config |= e->type == RAFT_ENTRY_CONFIG;
    }
    if (config)
        raft_members_recompute_(r);
    raft_index_t matched = prev + done;
    raft_index_t c = m->append.commit < matched ? m->append.commit : matched;
    if (c > r->commit)
        r->commit = c;
    respond(r, m, true, matched, 0, 0);
}

/* ---- snapshots ---- */

int raft_snapshot_taken(raft_t *r, raft_index_t index)
{
    if (index > r->applied)
        return RAFT_EINVAL;
    if (index <= r->log.base_index)
        return 0;
    raft_members_t m;
    int rv = raft_members_at_(r, index, &m);
    if (rv)
        return rv;
    r->base_members = m;
    raft_log_compact_(r, index);
    return 0;
}

int raft_snapshot_meta(const raft_t *r, raft_index_t index, raft_term_t *term,
                       raft_members_t *members)
{
    raft_term_t t;
    if (index < r->log.base_index)
        return RAFT_ECOMPACTED;
    if (!raft_log_term_(&r->log, index, &t))
        return RAFT_ENOENT;
    if (members) {
        int rv = raft_members_at_(r, index, members);
        if (rv)
            return rv;
    }
    if (term)
        *term = t;
    return 0;
}

int raft_snapshot_sent(raft_t *r, uint64_t now, raft_id_t to, raft_index_t index, bool ok)
{
    if (now > r->now)
        r->now = now;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    raft_peer_t *p = raft_peer_(r, to);
    if (!p)
        return RAFT_ENOENT;
    if (p->state != RAFT_PROGRESS_SNAPSHOT)
        return 0;
    p->lost_snap_at = r->now + r->cfg.election_timeout_ms;
    become_probe(p);
    if (ok && index >= r->log.base_index && index <= raft_log_last_(&r->log)) {
        p->next = index + 1;
    } else {
        p->probe_sent = true; /* retry on a later heartbeat */
        p->probe_sent_at = r->now;
    }
    TRACE(r, "snapshot to %llu at %llu %s", (unsigned long long)to, (unsigned long long)index,
          ok ? "sent" : "failed");
    return 0;
}

static void send_installed_ack(raft_t *r, raft_index_t index)
{
    if (r->leader != 0 && r->role == RAFT_FOLLOWER) {
        raft_message_t *resp = raft_msg_new_(r, RAFT_MSG_APPEND_RESP, r->leader);
        if (resp) {
            resp->append_resp.success = true;
            resp->append_resp.index = index;
            resp->append_resp.last_index = raft_log_last_(&r->log);
            resp->append_resp.seq = r->leader_seq;
        }
    }
}

int raft_snapshot_installed(raft_t *r, uint64_t now, raft_term_t leader_term, raft_index_t index,
                            raft_term_t term, const raft_members_t *members)
{
    if (now > r->now)
        r->now = now;
    if (!members || members->n > RAFT_MAX_MEMBERS)
        return RAFT_EINVAL;
    if (leader_term < r->term || (r->state_lost ? index < r->applied : index <= r->commit))
        return RAFT_ESTALE;
    if (leader_term > r->term)
        raft_become_follower_(r, leader_term, 0);
    raft_term_t have = 0;
    if (r->state_lost && raft_log_term_(&r->log, index, &have) && have == term) {
        /* The host lost its state machine, not its log: the snapshot replaces the state up to
         * index; the log after it (which may hold committed entries: index may be below our
         * commit index) stays, and is applied from index + 1 on. */
        TRACE(r, "install snapshot %llu/%llu for the lost state machine (commit %llu)",
              (unsigned long long)index, (unsigned long long)term, (unsigned long long)r->commit);
        if (index > r->log.base_index)
            raft_log_compact_(r, index);
        r->applied = index;
        if (r->commit < index)
            r->commit = index;
        r->state_lost = false;
        r->snap_term = leader_term;
        r->base_members = *members;
        r->members_index = (raft_index_t)-1; /* force the recompute to install base_members */
        raft_members_recompute_(r);
        send_installed_ack(r, index);
        return 0;
    }
    r->state_lost = false;
    if (raft_log_term_(&r->log, index, &have) && have == term && index > r->log.base_index) {
        /* Our log holds the snapshot's last entry: by log matching everything up to it is the
         * leader's, and what follows may be acknowledged already (even counted toward a
         * commit), so it is kept (Raft's InstallSnapshot rule); only the prefix goes. */
        TRACE(r, "install snapshot %llu/%llu (keeping %llu entries after it)",
              (unsigned long long)index, (unsigned long long)term,
              (unsigned long long)(raft_log_last_(&r->log) - index));
        raft_log_compact_(r, index);
    } else {
        TRACE(r, "install snapshot %llu/%llu", (unsigned long long)index, (unsigned long long)term);
        raft_log_wipe_(r, index, term);
    }
    r->commit = r->applied = index;
    r->snap_term = leader_term;
    r->base_members = *members;
    r->members_index = (raft_index_t)-1; /* force the recompute to install base_members */
    raft_members_recompute_(r);
    send_installed_ack(r, index);
    return 0;
}

/* ---- transfer ---- */

int raft_transfer(raft_t *r, uint64_t now, raft_id_t to)
{
    if (now > r->now)
        r->now = now;
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transferee)
        return RAFT_ETRANSFER;
    if (to == r->id)
        return RAFT_EINVAL;
    raft_peer_t *best = NULL;
    for (uint32_t i = 0; i < r->n_peers; i++) {
        raft_peer_t *p = &r->peers[i];
        if (p->member_role != RAFT_VOTER || !p->inc_known || p->recovering ||
            (p->last_flags & RAFT_MSGF_NOVOTE))
            continue;
        if (to ? p->id == to : (!best || p->match > best->match))
            best = p;
    }
    if (!best)
        return RAFT_ENOENT;
    r->transferee = best->id;
    r->transfer_deadline = r->now + r->cfg.election_timeout_ms;
    TRACE(r, "transfer leadership to %llu", (unsigned long long)best->id);
    if (best->match == raft_log_last_(&r->log))
        send_timeout_now(r, best);
    return 0;
}
