/* election.c: randomised election timeouts, Pre-Vote, votes (once per term, up-to-date logs
 * only), leader stickiness, TimeoutNow, and the escape election of a recovering majority. */
#include "raft_int.h"

static uint32_t quorum(const raft_t *r)
{
    return raft_n_voters_(r) / 2 + 1;
}

/* May this server stand for election (or vote)? Restarted-empty servers may not until a leader
 * caught them up; servers that lost their hard state never may. */
static bool may_vote(const raft_t *r)
{
    if (!r->can_vote || !raft_is_voter_(r, r->id))
        return false;
    return !r->recovering || (r->cfg.debug_bugs & RAFT_BUG_RECOVERING_VOTES);
}

/* A recovering voter that has seen no leader for N election timeouts and knows that a majority
 * of the voters (itself included) are recovering too may start an escape election. */
static bool escape_allowed(const raft_t *r)
{
    uint64_t t = r->cfg.election_timeout_ms;
    if (!r->recovering || !r->can_vote || !raft_is_voter_(r, r->id))
        return false;
    if (r->now < r->last_leader_contact + (uint64_t)r->cfg.recovery_timeouts * t)
        return false;
    uint32_t n = 1;
    for (uint32_t i = 0; i < r->n_peers; i++) {
        const raft_peer_t *p = &r->peers[i];
        if (p->member_role != RAFT_VOTER || p->last_heard == 0 || r->now >= p->last_heard + 4 * t)
            continue;
        if ((p->last_flags & RAFT_MSGF_RECOVERING) && !(p->last_flags & RAFT_MSGF_NOVOTE))
            n++;
    }
    return n >= quorum(r);
}

static void send_requests(raft_t *r, bool pre, uint32_t flags)
{
    for (uint32_t i = 0; i < r->n_peers; i++) {
        const raft_peer_t *p = &r->peers[i];
        if (p->member_role != RAFT_VOTER)
            continue;
        raft_message_t *m = raft_msg_new_(r, pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE, p->id);
        if (!m)
            continue;
        m->term = pre ? r->term + 1 : r->term;
        m->flags |= flags;
        m->vote.last_index = raft_log_last_(&r->log);
        m->vote.last_term = raft_log_last_term_(&r->log);
    }
}

void raft_campaign_(raft_t *r, bool pre, bool transfer, bool escape)
{
    for (uint32_t i = 0; i < r->n_peers; i++)
        r->peers[i].vote_responded = r->peers[i].vote_granted = false;
    r->leader = 0;
    r->escape_campaign = escape;
    r->transfer_campaign = transfer;
    raft_reset_election_timer_(r);
    if (pre) {
        r->role = RAFT_PRECANDIDATE;
        TRACE(r, "pre-campaign for term %llu", (unsigned long long)r->term + 1);
    } else {
        r->role = RAFT_CANDIDATE;
        r->term++;
        r->vote = r->id;
        r->hard_dirty = true;
        TRACE(r, "campaign term=%llu%s%s", (unsigned long long)r->term,
              transfer ? " (transfer)" : "", escape ? " (escape: majority recovering)" : "");
    }
    if (quorum(r) <= 1) {
        if (pre)
            raft_campaign_(r, false, transfer, escape);
        else
            raft_become_leader_(r);
        return;
    }
    uint32_t flags = (transfer ? RAFT_MSGF_TRANSFER : 0) | (escape ? RAFT_MSGF_ESCAPE : 0);
    send_requests(r, pre, flags);
}

void raft_tick_election_(raft_t *r)
{
    if (r->now < r->election_deadline)
        return;
    if (may_vote(r)) {
        raft_campaign_(r, !r->cfg.disable_pre_vote, false, false);
        return;
    }
    raft_reset_election_timer_(r);
    if (escape_allowed(r)) {
        raft_campaign_(r, false, false, true);
        return;
    }
    if (r->recovering && r->can_vote && raft_is_voter_(r, r->id)) {
        /* no leader in sight: probe the voters with a Pre-Vote nobody grants (we are
         * recovering) so that everybody learns who else is recovering */
        if (r->role != RAFT_FOLLOWER)
            r->role = RAFT_FOLLOWER;
        r->leader = 0;
        send_requests(r, true, 0);
    }
}

static bool log_up_to_date(const raft_t *r, const raft_message_t *m)
{
    raft_term_t lt = raft_log_last_term_(&r->log);
    return m->vote.last_term > lt ||
           (m->vote.last_term == lt && m->vote.last_index >= raft_log_last_(&r->log));
}

void raft_recv_vote_(raft_t *r, const raft_message_t *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE;
    bool free_vote = r->vote == 0 || r->vote == m->from;
    bool grant;
    if (r->cfg.debug_bugs & RAFT_BUG_VOTE_TWICE)
        free_vote = true;
    if (pre) {
        grant = m->term > r->term && may_vote(r) && log_up_to_date(r, m) &&
                !(m->flags & (RAFT_MSGF_RECOVERING | RAFT_MSGF_NOVOTE));
    } else if (m->flags & RAFT_MSGF_ESCAPE) {
        /* escape votes come only from recovering voters, so a candidate that collects a
         * quorum of them proves a majority of the voters lost their memory */
        grant = m->term == r->term && free_vote && r->recovering && r->can_vote &&
                raft_is_voter_(r, r->id) && !raft_in_lease_(r);
    } else {
        grant = m->term == r->term && free_vote && may_vote(r) && log_up_to_date(r, m);
    }
    if (grant && !pre) {
        r->vote = m->from;
        r->hard_dirty = true;
        raft_reset_election_timer_(r);
    }
    TRACE(r, "%s %s from %llu term=%llu (last %llu/%llu)", grant ? "grant" : "reject",
          raft_msg_type_name(m->type), (unsigned long long)m->from, (unsigned long long)m->term,
          (unsigned long long)m->vote.last_index, (unsigned long long)m->vote.last_term);
    raft_message_t *resp =
        raft_msg_new_(r, pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP, m->from);
    if (!resp)
        return;
    resp->term = pre && grant ? m->term : r->term;
    resp->vote_resp.granted = grant;
}

void raft_recv_vote_resp_(raft_t *r, const raft_message_t *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE_RESP;
    if (pre ? r->role != RAFT_PRECANDIDATE : r->role != RAFT_CANDIDATE)
        return;
    if (pre && m->vote_resp.granted && m->term != r->term + 1)
        return;
    raft_peer_t *p = raft_peer_(r, m->from);
    if (!p || p->member_role != RAFT_VOTER || p->vote_responded)
        return;
    p->vote_responded = true;
    p->vote_granted = m->vote_resp.granted;
    uint32_t granted = 1, rejected = 0;
    for (uint32_t i = 0; i < r->n_peers; i++) {
        if (r->peers[i].member_role != RAFT_VOTER || !r->peers[i].vote_responded)
            continue;
        if (r->peers[i].vote_granted)
            granted++;
        else
            rejected++;
    }
    if (granted >= quorum(r)) {
        if (pre)
            raft_campaign_(r, false, r->transfer_campaign, false);
        else
            raft_become_leader_(r);
    } else if (rejected >= quorum(r)) {
        TRACE(r, "lost %s in term %llu", pre ? "pre-vote" : "election",
              (unsigned long long)r->term);
        raft_become_follower_(r, r->term, 0);
    }
}

void raft_recv_timeout_now_(raft_t *r, const raft_message_t *m)
{
    if (r->role == RAFT_LEADER || !may_vote(r))
        return;
    TRACE(r, "timeout_now from %llu", (unsigned long long)m->from);
    raft_campaign_(r, false, true, false);
}
