/* election.c: randomised election timeouts, Pre-Vote, votes (once per term, up-to-date logs
 * only), leader stickiness, TimeoutNow, and the escape election of a recovering majority. */
#include "raft_int.h"

static uint32_t quorum(const raft_t *r)
{
    return raft_n_voters_(r) / 2 + 1;
}

/* May this server grant (pre)votes? Restarted-empty servers may not until a leader caught them
 * up; servers that lost their hard state never may. This is about the server's own state only:
 * as in the Raft thesis it does not consult its own configuration (a server not in its latest
 * configuration may be needed to elect the leader that commits its removal, and a learner
 * promoted by an entry it has not received yet must vote). The candidate counts only the
 * voters of its configuration. */
static bool may_grant(const raft_t *r)
{
    if (!r->can_vote)
        return false;
    return !r->recovering || (r->cfg.debug_bugs & RAFT_BUG_RECOVERING_VOTES);
}

/* Was this server a voter just before its latest configuration entry, which is not known to
 * be committed? (A leader appended its own removal or demotion and lost leadership before it
 * committed: its log may be the only up-to-date one, so the others cannot elect anyone
 * without its vote, which it refuses them. Raft thesis 4.2.2: such a server manages a cluster
 * that does not include itself until the change commits; it then steps down.) */
static bool pending_self_removal(const raft_t *r)
{
    raft_members_t prev;
    if (r->members_index == 0 || r->members_index <= r->commit ||
        raft_members_at_(r, r->members_index - 1, &prev) != 0)
        return false;
    const raft_member_t *me = raft_member_find_(&prev, r->id);
    return me && me->role == RAFT_VOTER;
}

/* May this server stand for election? It must also be a voter of its configuration, or have
 * been one until an uncommitted change of it. It counts only the votes of the voters of its
 * latest configuration (its own only if it is one of them). */
static bool may_campaign(const raft_t *r)
{
    return may_grant(r) && (raft_is_voter_(r, r->id) || pending_self_removal(r));
}

/* Its own vote counts only if it is a voter of its configuration. */
static uint32_t self_votes(const raft_t *r)
{
    return raft_is_voter_(r, r->id) ? 1 : 0;
}

/* Voters that must be recovering before an escape is allowed: enough that the others (the only
 * ones that may grant normal votes) cannot form a majority, i.e. n - quorum + 1 (a majority for
 * an odd number of voters, exactly half for an even number). */
static uint32_t escape_threshold(const raft_t *r)
{
    return raft_n_voters_(r) - quorum(r) + 1;
}

/* Was p heard from within 4 election timeouts with flag f? */
static bool heard_with(const raft_t *r, const raft_peer_t *p, uint32_t f)
{
    uint64_t t = r->cfg.election_timeout_ms;
    return p->member_role == RAFT_VOTER && p->last_heard != 0 && r->now < p->last_heard + 4 * t &&
           (p->last_flags & f);
}

/* Was p heard from within 4 election timeouts with flag f (whatever its role in our
 * configuration)? */
static bool heard_any(const raft_t *r, const raft_peer_t *p, uint32_t f)
{
    uint64_t t = r->cfg.election_timeout_ms;
    return p->last_heard != 0 && r->now < p->last_heard + 4 * t && (p->last_flags & f);
}

/* Voters of our configuration known to be unable to grant a normal vote: ourselves if we are
 * recovering, and those whose last message within 4 election timeouts said they are recovering
 * or lost their hard state (RAFT_MSGF_NOVOTE: such a server never votes again). */
static uint32_t unable_voters(const raft_t *r)
{
    uint32_t n = (r->recovering || !r->can_vote) && raft_is_voter_(r, r->id) ? 1 : 0;
    for (uint32_t i = 0; i < r->n_peers; i++)
        n += heard_with(r, &r->peers[i], RAFT_MSGF_RECOVERING | RAFT_MSGF_NOVOTE);
    return n;
}

/* A recovering voter that has seen no leader for N election timeouts and knows that so many
 * voters (itself included) are unable to vote that the others cannot form a majority may start
 * an escape election. */
static bool escape_allowed(const raft_t *r)
{
    uint64_t t = r->cfg.election_timeout_ms;
    if (!r->recovering || !r->can_vote || !raft_is_voter_(r, r->id))
        return false;
    if (r->now < r->last_leader_contact + (uint64_t)r->cfg.recovery_timeouts * t)
        return false;
    return unable_voters(r) >= escape_threshold(r);
}

/* Does a recovering voter's claim (heard within 4 T) show a configuration, committed after
 * ours in our epoch and naming us as a voter, in which so many voters are unable that no
 * normal election can succeed? (raft-sim seed 205365: we hold {1,3,4,5,7} committed at 323;
 * 3 and 5 restarted and their hosts had seen {3,4,5,8} committed later; 1 and 7 are gone.
 * In our view only 2 of 5 are unable, in theirs 3 of 4 are, and they need us to prove it.)
 * Only voters we hear from count as unable: the claim itself is not believed beyond that. */
static bool claim_proves_no_election(const raft_t *r)
{
    uint64_t t = r->cfg.election_timeout_ms;
    for (uint32_t i = 0; i < r->n_peers; i++) {
        const raft_peer_t *c = &r->peers[i];
        if (c->n_claim == 0 || c->claim_heard == 0 || r->now >= c->claim_heard + 4 * t)
            continue;
        /* newer than ours in our epoch; or from an older epoch while we know nothing of ours
         * committed, not even its first configuration (raft-sim seed 218597: an escape in term
         * 3 wrote {1,2,3,4,5}, naming a gone server, and lost its leader before committing;
         * the others never heard of it and their hosts had seen {1,3,4,5} committed) */
        bool newer = c->claim_epoch == r->reset_term && c->claim_index > r->members_index &&
                     c->claim_index > r->commit;
        bool ours_unknown = c->claim_epoch < r->reset_term && r->commit == 0;
        if (!newer && !ours_unknown)
            continue;
        bool me = false;
        uint32_t unable = 0;
        for (uint32_t k = 0; k < c->n_claim; k++) {
            if (c->claim[k] == r->id) {
                me = true;
                continue;
            }
            const raft_peer_t *q = raft_peer_c_(r, c->claim[k]);
            unable += q && heard_any(r, q, RAFT_MSGF_RECOVERING | RAFT_MSGF_NOVOTE);
        }
        if (me && unable >= c->n_claim - (c->n_claim / 2 + 1) + 1)
            return true;
    }
    return false;
}

/* A voter that kept its log gives it up (raft_forfeit_) when it has seen no leader for 2N
 * election timeouts and its own configuration shows so many voters unable to vote that the
 * others, itself included, cannot form a majority: then no normal election can succeed, and the
 * recovering voters need it on their side to prove an escape. Views differ exactly here (raft-sim
 * seed 2252: it holds an uncommitted promotion {1,2,3,7} that the voters it needs never saw, so
 * it needs 3 votes of which 2 are recovering, while they count {1,2,3} and see a majority that
 * kept its memory). It only does what a restart would: an escape would discard its log anyway. */
static bool forfeit_due(const raft_t *r)
{
    if (r->recovering || !r->can_vote || r->role == RAFT_LEADER)
        return false;
    /* A voter, or one that campaigns on its own uncommitted removal (raft-sim seed 203586: a
     * former leader holding {1,3,4,5} without itself kept campaigning and refusing votes while
     * the recovering voters needed it to prove an escape). */
    if (!raft_is_voter_(r, r->id) && !pending_self_removal(r))
        return false;
    if (r->leaderless_timeouts < 2 * r->cfg.recovery_timeouts)
        return false;
    return unable_voters(r) >= escape_threshold(r) || claim_proves_no_election(r);
}

/* The configuration our host saw committed, as a claim in our requests while recovering. */
static void add_claim(const raft_t *r, raft_message_t *m)
{
    if (!r->recovering || r->host_members_at == 0)
        return;
    for (uint32_t i = 0; i < r->host_members.n; i++)
        if (r->host_members.m[i].role == RAFT_VOTER)
            m->vote.claim[m->vote.n_claim++] = r->host_members.m[i].id;
    m->vote.claim_index = r->host_members_at;
    m->vote.claim_epoch = r->host_members_epoch;
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
        add_claim(r, m);
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
    if (quorum(r) <= self_votes(r)) {
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
    if (r->leaderless_timeouts < UINT32_MAX)
        r->leaderless_timeouts++;
    if (forfeit_due(r))
        raft_forfeit_(r);
    if (may_campaign(r)) {
        raft_campaign_(r, !r->cfg.disable_pre_vote, false, false);
        return;
    }
    raft_reset_election_timer_(r);
    if (escape_allowed(r)) {
        /* with Pre-Vote, a pre-escape first: an escape that cannot win must not move terms
         * (raft-sim seed 108811: a recovering voter with a stale configuration ran 30 escapes
         * in a row, each one a term the three voters with their memory had to follow, and
         * their own elections never completed) */
        raft_campaign_(r, !r->cfg.disable_pre_vote, false, true);
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

/* A candidate whose host dropped its state machine (raft_state_lost) would, as leader, make
 * every replica drop the same data: a voter that kept its state refuses it for recovery_timeouts
 * expired election timeouts without a leader (counted, not timed: a process waking from a
 * long pause counts one), so that a candidate with its state wins first when there is one. A
 * refusal only delays: liveness is kept by the bound. Leadership transfers are not refused. */
static bool refuse_state_lost(const raft_t *r, const raft_message_t *m)
{
    return (m->flags & RAFT_MSGF_STATE_LOST) && !(m->flags & RAFT_MSGF_TRANSFER) &&
           !r->state_lost && r->leaderless_timeouts < r->cfg.recovery_timeouts;
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
    if (pre && (m->flags & RAFT_MSGF_ESCAPE)) {
        /* pre-escape: would we grant the escape vote below in the next term? */
        grant = m->term > r->term && r->can_vote && !raft_in_lease_(r) &&
                (m->flags & RAFT_MSGF_RECOVERING) && unable_voters(r) >= escape_threshold(r);
    } else if (pre) {
        grant = m->term > r->term && may_grant(r) && log_up_to_date(r, m) &&
                !(m->flags & (RAFT_MSGF_RECOVERING | RAFT_MSGF_NOVOTE)) && !refuse_state_lost(r, m);
    } else if (m->flags & RAFT_MSGF_ESCAPE) {
        /* Any server with its hard state grants escape votes (once per term as always, not
         * while it hears from a live leader): the candidate wins only with a majority of the
         * voters of which at least escape_threshold() answered recovering, which proves that
         * the servers that kept their memory could not form a majority (see README.md). A
         * voter, recovering or not, checks that claim against its own configuration (the
         * candidate may know the voters only from a stale host view: raft-sim seed 1200 had
         * a candidate with {1,2,3} win an escape with a recovering voter whose configuration
         * was {1..5}, while 3 of those 5 elected a normal leader in the same term). A
         * recovering candidate is by construction not up to date, so no log check. */
        grant = m->term == r->term && free_vote && r->can_vote && !raft_in_lease_(r) &&
                (m->flags & RAFT_MSGF_RECOVERING) && unable_voters(r) >= escape_threshold(r);
    } else {
        grant = m->term == r->term && free_vote && may_grant(r) && log_up_to_date(r, m) &&
                !refuse_state_lost(r, m);
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
    p->vote_recovering = (m->flags & RAFT_MSGF_RECOVERING) != 0;
    uint32_t granted = self_votes(r), rejected = 0, unable = r->recovering ? 1 : 0;
    for (uint32_t i = 0; i < r->n_peers; i++) {
        const raft_peer_t *q = &r->peers[i];
        if (q->member_role != RAFT_VOTER)
            continue;
        /* unable to vote normally: answered this term saying it is recovering, or lost its
         * hard state (permanent) */
        unable += (q->vote_responded && q->vote_recovering) || heard_with(r, q, RAFT_MSGF_NOVOTE);
        if (!q->vote_responded)
            continue;
        if (q->vote_granted)
            granted++;
        else
            rejected++;
    }
    /* an escape leader must prove that the voters able to vote normally were no majority */
    bool proven = !r->escape_campaign || unable >= escape_threshold(r);
    if (granted >= quorum(r) && proven) {
        if (pre)
            raft_campaign_(r, false, r->transfer_campaign, r->escape_campaign);
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
    if (r->role == RAFT_LEADER || !may_campaign(r))
        return;
    TRACE(r, "timeout_now from %llu", (unsigned long long)m->from);
    raft_campaign_(r, false, true, false);
}
