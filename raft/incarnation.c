/* incarnation.c: identity per incarnation, the pure join / bootstrap / replace policy (see
 * incarnation.h for the contract and raft/README.md for the argument). */
#include "incarnation.h"

#include <string.h>

#define ID_RANDOM_MASK ((1ull << 48) - 1)

raft_id_t inc_id_make(uint16_t host_tag, uint64_t random)
{
    uint64_t r = random & ID_RANDOM_MASK;
    if (r == 0)
        r = 1; /* 0 is the placeholder */
    return ((raft_id_t)host_tag << 48) | r;
}

uint16_t inc_id_tag(raft_id_t id)
{
    return (uint16_t)(id >> 48);
}

raft_id_t inc_placeholder_id(uint16_t host_tag)
{
    return (raft_id_t)host_tag << 48;
}

bool inc_id_older(raft_id_t a, raft_id_t b)
{
    return inc_id_tag(a) == inc_id_tag(b) && (a & ID_RANDOM_MASK) < (b & ID_RANDOM_MASK);
}

bool inc_replaced(const raft_members_t *members, raft_id_t self_id)
{
    bool newer = false;
    for (uint32_t i = 0; i < members->n && i < RAFT_MAX_MEMBERS; i++) {
        if (members->m[i].id == self_id)
            return false;
        newer |= inc_id_older(self_id, members->m[i].id);
    }
    return newer;
}

uint64_t inc_lifetime_id(const raft_members_t *first)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a, 64 bits */
    for (uint32_t i = 0; i < first->n && i < RAFT_MAX_MEMBERS; i++) {
        uint64_t id = first->m[i].id;
        for (int k = 0; k < 8; k++) {
            h = (h ^ ((id >> (8 * k)) & 0xff)) * 1099511628211ull;
        }
        h = (h ^ first->m[i].role) * 1099511628211ull;
    }
    return h ? h : 1;
}

uint32_t inc_quorum(uint32_t n)
{
    return n / 2 + 1;
}

static bool valid_view(const inc_view_t *v)
{
    return v->n_hosts >= 1 && v->n_hosts <= INC_MAX_HOSTS && v->self < v->n_hosts &&
           v->members.n <= RAFT_MAX_MEMBERS;
}

/* Member i is gone on evidence: another incarnation answers for its host (a placeholder is
 * gone as soon as anyone answers for its host). A member whose host this node does not list
 * is not gone: during a scaling roll it may be alive and well under another node's list. */
static bool member_gone(const inc_view_t *v, uint32_t i)
{
    int32_t h = v->member_host[i];
    if (h < 0 || (uint32_t)h >= v->n_hosts)
        return false;
    raft_id_t y = v->hosts[h].id;
    return y != 0 && (y != v->members.m[i].id || v->hosts[h].other_lifetime);
}

uint32_t inc_voters_gone(const inc_view_t *v)
{
    if (!valid_view(v))
        return 0;
    uint32_t gone = 0;
    for (uint32_t i = 0; i < v->members.n; i++)
        gone += v->members.m[i].role == RAFT_VOTER && member_gone(v, i);
    return gone;
}

bool inc_majority_gone(const inc_view_t *v)
{
    if (!valid_view(v))
        return false;
    uint32_t voters = 0;
    for (uint32_t i = 0; i < v->members.n; i++)
        voters += v->members.m[i].role == RAFT_VOTER;
    if (voters == 0)
        return false;
    /* the voters not gone cannot reach a quorum */
    return voters - inc_voters_gone(v) < inc_quorum(voters);
}

/* Lowest-indexed host that answers, and how many answer. */
static uint32_t answering(const inc_view_t *v, int32_t *lowest)
{
    uint32_t n = 0;
    *lowest = -1;
    for (uint32_t h = 0; h < v->n_hosts; h++)
        if (v->hosts[h].id != 0) {
            if (*lowest < 0)
                *lowest = (int32_t)h;
            n++;
        }
    return n;
}

static bool any_established(const inc_view_t *v)
{
    for (uint32_t h = 0; h < v->n_hosts; h++)
        if (v->hosts[h].id != 0 && v->hosts[h].established)
            return true;
    return false;
}

inc_decision_t inc_decide_start(const inc_view_t *v, const uint16_t *tags, raft_members_t *out)
{
    if (!valid_view(v))
        return INC_WAIT;
    if (v->members.n > 0 && inc_majority_gone(v))
        return INC_RECOVER;
    /* a node that heard of an established cluster never takes part in a bootstrap */
    raft_id_t self = v->hosts[v->self].id;
    for (uint32_t i = 0; self != 0 && i < v->members.n; i++) {
        if (v->members.m[i].id == self && v->members.m[i].role == RAFT_VOTER) {
            *out = v->members;
            return INC_ADOPT;
        }
    }
    if (v->members.n > 0 || any_established(v) || v->hosts[v->self].established)
        return INC_JOIN;
    int32_t lowest;
    uint32_t n = answering(v, &lowest);
    uint32_t need = v->founders > inc_quorum(v->n_hosts) ? v->founders : inc_quorum(v->n_hosts);
    if (need > v->n_hosts)
        need = v->n_hosts;
    if (v->hosts[v->self].id == 0 || n < need || lowest != (int32_t)v->self)
        return INC_WAIT;
    memset(out, 0, sizeof *out);
    for (uint32_t h = 0; h < v->n_hosts; h++) {
        uint16_t tag = tags ? tags[h] : (uint16_t)(h + 1);
        raft_id_t id = v->hosts[h].id ? v->hosts[h].id : inc_placeholder_id(tag);
        out->m[out->n++] = (raft_member_t){id, RAFT_VOTER};
    }
    return INC_BOOTSTRAP;
}

bool inc_accept_bootstrap(const inc_view_t *v, uint32_t from, const raft_members_t *offer)
{
    if (!valid_view(v) || from >= v->n_hosts || v->members.n > 0 || any_established(v) ||
        v->hosts[v->self].established || v->hosts[v->self].id == 0)
        return false;
    int32_t lowest;
    answering(v, &lowest);
    if (lowest != (int32_t)from || offer->n != v->n_hosts)
        return false;
    bool self_voter = false;
    for (uint32_t i = 0; i < offer->n; i++) {
        if (offer->m[i].role != RAFT_VOTER)
            return false;
        self_voter |= offer->m[i].id == v->hosts[v->self].id;
        for (uint32_t k = 0; k < i; k++)
            if (offer->m[k].id == offer->m[i].id)
                return false;
    }
    return self_voter;
}

/* Members of host h other than `keep`, learners first: index or -1. */
static int32_t other_member_of(const inc_view_t *v, uint32_t h, raft_id_t keep, bool learner_only)
{
    int32_t voter = -1;
    for (uint32_t i = 0; i < v->members.n; i++) {
        if (v->member_host[i] != (int32_t)h || v->members.m[i].id == keep)
            continue;
        if (v->members.m[i].role == RAFT_LEARNER)
            return (int32_t)i;
        if (voter < 0)
            voter = (int32_t)i;
    }
    return learner_only ? -1 : voter;
}

static int32_t member_index(const inc_view_t *v, raft_id_t id)
{
    for (uint32_t i = 0; i < v->members.n; i++)
        if (v->members.m[i].id == id)
            return (int32_t)i;
    return -1;
}

static int change(raft_change_t k, raft_id_t target, raft_change_t *kind, raft_id_t *id)
{
    *kind = k;
    *id = target;
    return 1;
}

int inc_next_change(const inc_view_t *v, raft_change_t *kind, raft_id_t *id)
{
    if (!valid_view(v) || !v->committed)
        return 0;
    raft_id_t self = v->hosts[v->self].id;
    /* 1. members that are not listed hosts */
    for (uint32_t i = 0; i < v->members.n; i++) {
        int32_t h = v->member_host[i];
        if ((h < 0 || (uint32_t)h >= v->n_hosts) && v->members.m[i].id != self)
            return change(RAFT_CHANGE_REMOVE, v->members.m[i].id, kind, id);
    }
    /* 2. replace gone incarnations, one host and one step at a time */
    for (uint32_t h = 0; h < v->n_hosts; h++) {
        raft_id_t y = v->hosts[h].id;
        if (y == 0)
            continue; /* silence is no evidence */
        /* the leader's own host answering with another id: a stale report (one process per
         * host), never act on it */
        if (h == v->self && y != self)
            continue;
        int32_t yi = member_index(v, y);
        if (yi >= 0 && v->member_host[yi] != (int32_t)h)
            continue; /* id claimed by two hosts: a tag collision, refuse to act */
        if (yi < 0) {
            if (v->members.n >= RAFT_MAX_MEMBERS || !v->hosts[h].joining)
                continue; /* only an incarnation that asked this cluster to add it */
            return change(RAFT_CHANGE_ADD_LEARNER, y, kind, id);
        }
        bool y_learner = v->members.m[yi].role == RAFT_LEARNER;
        bool ready = v->caught_up[yi] || (v->bugs & INC_BUG_VOTE_BEFORE_CAUGHT_UP);
        int32_t x = other_member_of(v, h, y, false);
        int32_t xl = other_member_of(v, h, y, true);
        if (x >= 0 && v->members.m[x].id == self)
            continue; /* never remove the leader itself here */
        if (y_learner && !ready) {
            if (xl >= 0)
                return change(RAFT_CHANGE_REMOVE, v->members.m[xl].id, kind, id);
            if (x >= 0 && (v->bugs & INC_BUG_SWAP_TWO_VOTERS))
                return change(RAFT_CHANGE_REMOVE, v->members.m[x].id, kind, id);
            continue; /* wait for the catch-up */
        }
        if (x >= 0)
            return change(RAFT_CHANGE_REMOVE, v->members.m[x].id, kind, id);
        if (y_learner)
            return change(RAFT_CHANGE_PROMOTE, y, kind, id);
    }
    return 0;
}

bool inc_self_ready(const inc_view_t *v, raft_id_t self_id)
{
    if (!valid_view(v) || !v->committed)
        return false;
    int32_t i = member_index(v, self_id);
    if (i < 0 || v->members.m[i].role != RAFT_VOTER)
        return false;
    return other_member_of(v, v->self, self_id, false) < 0;
}
